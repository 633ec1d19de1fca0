//! Anthropic's `web_search_*` server tool on a translated route, run by the gateway's
//! tool loop as `openrouter:web_search`: the tool's fields read into the loop's search
//! parameters, and the loop's searches written back as Anthropic writes its own
//! (`server_tool_use` and `web_search_tool_result` blocks before the text, the text's
//! `web_search_result_location` citations, `usage.server_tool_use`). Blocks of a reply
//! a client sends back in its next turn become text for the model.

use base64::Engine;
use serde::Serialize;
use serde_json::json;

use super::reply::{ContentBlock, Message};
use super::request::ResultParam;
use crate::api::read::{whole, Bad, Fields, Read};
use crate::api::server_tools::{
    domains, user_location, ServerTool, WebSearchParams, MAX_TOOL_CALLS,
};
use crate::api::server_turn::{Fetched, Turn};
use crate::api::ChatCompletion;

/// How much of a result a citation quotes (Anthropic: up to 150 characters).
const CITED_CHARS: usize = 150;

/// One result of a `web_search_tool_result` block.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SearchResult {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub url: String,
    pub title: String,
    /// What the model read of the page, opaque to the client (base64), for the
    /// next turn.
    pub encrypted_content: String,
    /// The search engine does not say how old a page is.
    pub page_age: Option<String>,
}

/// A `web_search_result_location` citation on a text block.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TextCitation {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub url: String,
    pub title: String,
    pub encrypted_index: String,
    pub cited_text: String,
}

fn b64(s: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s)
}

/// What an `encrypted_content` made by this gateway holds; `None` for another's.
pub(super) fn unseal(s: &str) -> Option<String> {
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(s)
        .ok()?;
    String::from_utf8(bytes).ok()
}

/// A `web_search_*` tool's fields (`type`, `name`, `cache_control` dropped):
/// `max_uses`, `allowed_domains`, `blocked_domains`, `user_location`; anything else is
/// a 400 naming it, as is giving both domain lists (Anthropic's rule).
pub(super) fn web_search_tool(mut f: Fields) -> Read<ServerTool> {
    let params = WebSearchParams {
        // Anthropic bounds it by 1 only: more than the loop runs is what it runs.
        max_uses: f
            .read("max_uses", &at_least_one)?
            .map_or(super::DEFAULT_MAX_SEARCHES, |n| n.min(MAX_TOOL_CALLS)),
        allowed_domains: f.read("allowed_domains", &domains)?.unwrap_or_default(),
        excluded_domains: f.read("blocked_domains", &domains)?.unwrap_or_default(),
        user_location: f.read("user_location", &user_location)?,
        ..WebSearchParams::default()
    };
    if !params.allowed_domains.is_empty() && !params.excluded_domains.is_empty() {
        return Err(Bad::new("cannot be given with allowed_domains").in_field("blocked_domains"));
    }
    match f.0.keys().next() {
        Some(k) => Err(Bad::new("is not a field of the web_search tool").in_field(k)),
        None => Ok(ServerTool::WebSearch(params)),
    }
}

fn at_least_one(v: serde_json::Value) -> Read<u64> {
    match whole(v)? {
        0 => Err(Bad::new("must be at least 1")),
        n => Ok(n),
    }
}

/// The `server_tool_use` block and the result block of each search and fetch the loop
/// ran, in the order they ran; IDs numbered after the message's (a model may reuse a
/// call ID).
pub fn search_blocks(turn: &Turn, id: &str) -> Vec<ContentBlock> {
    let mut out = Vec::new();
    let mut fetches = turn.fetches.iter().peekable();
    let mut n = 0usize;
    let mut next_id = || {
        n = n.saturating_add(1);
        format!("srvtoolu_{id}_{}", n.saturating_sub(1))
    };
    for (k, s) in turn.searches.iter().enumerate() {
        while let Some(f) = fetches.next_if(|f| f.after_searches <= k) {
            out.extend(fetch_blocks(&f.page, next_id()));
        }
        let id = next_id();
        out.push(ContentBlock::ServerToolUse {
            id: id.clone(),
            name: "web_search",
            input: json!({"query": s.query}),
        });
        let content = s
            .results
            .iter()
            .map(|r| SearchResult {
                kind: "web_search_result",
                url: r.url.clone(),
                title: r.title.clone(),
                encrypted_content: b64(&r.content),
                page_age: None,
            })
            .collect();
        out.push(ContentBlock::WebSearchToolResult {
            tool_use_id: id,
            content,
        });
    }
    for f in fetches {
        out.extend(fetch_blocks(&f.page, next_id()));
    }
    out
}

/// A fetch's blocks: the call, and the page as Anthropic's `web_fetch_result` (a text
/// document) or its `web_fetch_tool_error`.
fn fetch_blocks(page: &Fetched, id: String) -> [ContentBlock; 2] {
    let content = match (&page.content, page.status.as_str()) {
        (Some(text), "completed") => json!({
            "type": "web_fetch_result",
            "url": page.url,
            "content": {"type": "document", "title": page.title,
                "source": {"type": "text", "media_type": "text/plain", "data": text}},
            "retrieved_at": page.retrieved_at,
        }),
        _ => json!({"type": "web_fetch_tool_error", "error_code": "url_not_accessible"}),
    };
    [
        ContentBlock::ServerToolUse {
            id: id.clone(),
            name: "web_fetch",
            input: json!({"url": page.url}),
        },
        ContentBlock::WebFetchToolResult {
            tool_use_id: id,
            content,
        },
    ]
}

/// The citations of the answer's text, each search result it cites once (a fetched
/// page is not a search result: Anthropic cites those by `char_location` only when
/// asked, which the loop does not do).
pub fn citations(turn: &Turn) -> Vec<TextCitation> {
    let searched = |url: &str| {
        turn.searches
            .iter()
            .any(|s| s.results.iter().any(|r| r.url == url))
    };
    turn.cited
        .iter()
        .filter(|c| searched(&c.url))
        .map(|c| TextCitation {
            kind: "web_search_result_location",
            url: c.url.clone(),
            title: c.title.clone(),
            encrypted_index: b64(&c.url),
            cited_text: c.content.chars().take(CITED_CHARS).collect(),
        })
        .collect()
}

/// The loop's answer as a message: the search blocks before its content, and its
/// first text block with the citations.
pub fn message_with(c: &ChatCompletion, turn: &Turn) -> Message {
    let mut m = Message::from(c);
    let cites = citations(turn);
    if let Some(ContentBlock::Text { citations, .. }) = m
        .content
        .iter_mut()
        .find(|b| matches!(b, ContentBlock::Text { .. }))
    {
        *citations = (!cites.is_empty()).then_some(cites);
    }
    let at = m
        .content
        .iter()
        .position(|b| !matches!(b, ContentBlock::Thinking { .. }))
        .unwrap_or(m.content.len());
    let id = m.id.trim_start_matches("msg_").to_string();
    m.content.splice(at..at, search_blocks(turn, &id));
    m
}

/// A `web_search_tool_result` block a client sends back, as text the model reads:
/// each result's title and URL, with what it read of it where this gateway made it.
pub(super) fn result_text(results: &[ResultParam]) -> String {
    let mut out = String::from("Web search results:");
    for r in results {
        out.push_str(&format!("\n- {} ({})", r.title, r.url));
        if let Some(text) = unseal(&r.encrypted_content).filter(|t| !t.is_empty()) {
            out.push_str(&format!(": {text}"));
        }
    }
    out
}

#[cfg(test)]
#[path = "search_tests.rs"]
mod tests;
