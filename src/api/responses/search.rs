//! OpenAI's `web_search` tool on Responses, run by the gateway's tool loop as
//! `openrouter:web_search` for any model: the tool's fields read into the loop's
//! search parameters, and the loop's searches written back as OpenAI writes its own
//! (`web_search_call` items before the message, `url_citation` annotations on its
//! `output_text`).

use crate::api::read::{named, object, Bad, Fields, Read};
use crate::api::server_tools::{
    domains, no_unknown, user_location, ContextSize, ServerTool, WebSearchParams,
};
use crate::api::server_turn::Turn;
use crate::api::ChatCompletion;

use super::reply::{response, Annotation, OutputItem, Response, SearchAction, Status};
use super::Echo;

/// The `type`s OpenAI's web search tool is sent as.
pub const WEB_SEARCH_TYPES: [&str; 4] = [
    "web_search",
    "web_search_2025_08_26",
    "web_search_preview",
    "web_search_preview_2025_03_11",
];

/// A `web_search` tool's fields (`type` read): `search_context_size`, `user_location`
/// and `filters.allowed_domains`; anything else is a 400 naming it.
pub(super) fn web_search_tool(mut f: Fields) -> Read<ServerTool> {
    let size = f.read("search_context_size", &|v| {
        named(v, &ContextSize::ALL.map(ContextSize::as_str))
    })?;
    let allowed = f.read("filters", &|v| {
        let mut filters = object(v)?;
        let allowed = filters.read("allowed_domains", &domains)?;
        no_unknown(filters)?;
        Ok(allowed)
    })?;
    let params = WebSearchParams {
        search_context_size: size
            .and_then(|i| ContextSize::ALL.get(i).copied())
            .unwrap_or_default(),
        user_location: f.read("user_location", &user_location)?,
        allowed_domains: allowed.flatten().unwrap_or_default(),
        ..WebSearchParams::default()
    };
    match f.0.keys().next() {
        Some(k) => Err(Bad::new("is not a field of the web_search tool").in_field(k)),
        None => Ok(ServerTool::WebSearch(params)),
    }
}

/// The loop's answer as a `response` object: its MCP items (listings, calls) and a
/// `web_search_call` item for each search before the message, and the message's `output_text` annotated with the citations.
pub fn response_with(c: &ChatCompletion, echo: &Echo, turn: &Turn) -> Response {
    let mut r = response(c, echo);
    let at = r
        .output
        .iter()
        .position(|o| matches!(o, OutputItem::Message { .. }))
        .unwrap_or(r.output.len());
    let mut items = super::mcp_items::mcp_items(turn, &c.id);
    items.extend(search_items(turn, &c.id));
    r.output.splice(at..at, items);
    for item in &mut r.output {
        if let OutputItem::Message { content, .. } = item {
            if let Some(part) = content.first_mut() {
                part.annotations = Some(annotations(turn));
            }
        }
    }
    r
}

/// A `web_search_call` item for each search the loop ran, completed, numbered after
/// the response `id` (a model may reuse a call ID from one step to the next).
pub fn search_items(turn: &Turn, id: &str) -> Vec<OutputItem> {
    turn.searches
        .iter()
        .enumerate()
        .map(|(n, s)| OutputItem::WebSearchCall {
            id: format!("ws_{id}_{n}"),
            status: Status::Completed,
            action: SearchAction::Search {
                query: s.query.clone(),
            },
        })
        .collect()
}

/// The `url_citation` annotations of the answer's text.
pub fn annotations(turn: &Turn) -> Vec<Annotation> {
    turn.cited
        .iter()
        .map(|c| Annotation::UrlCitation {
            url: c.url.clone(),
            title: c.title.clone(),
            start_index: c.start_index,
            end_index: c.end_index,
        })
        .collect()
}

#[cfg(test)]
#[path = "search_tests.rs"]
mod tests;
