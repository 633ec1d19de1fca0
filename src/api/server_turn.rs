//! What a server-tool loop did in the turn it answers, for the surfaces' reply writers
//! (Responses' `web_search_call` items and `url_citation` annotations): the searches
//! run, in order, with the results each gave, and each cited result's span in the
//! answer. Made by the loop ([`super::tool_loop::Loop::turn`]), never read back from
//! the answer's text.

use serde::{Deserialize, Serialize};

use super::server_tools::Citation;

/// One search the loop ran.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Search {
    /// The model's call ID.
    pub id: String,
    /// What the model searched for.
    pub query: String,
    /// The results it read.
    pub results: Vec<Citation>,
}

/// A result the answer cites, with its span in the answer (in characters).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Cited {
    pub url: String,
    pub title: String,
    pub content: String,
    pub start_index: usize,
    pub end_index: usize,
}

/// One fetch the loop ran: what the model read (`openrouter:web_fetch`'s result).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Fetch {
    /// The model's call ID.
    pub id: String,
    /// How many searches ran before it (for the surfaces that interleave them).
    pub after_searches: usize,
    pub page: Fetched,
}

/// The result the model read of a fetch (`{url, title, content, status, retrieved_at}`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct Fetched {
    #[serde(default)]
    pub url: String,
    pub title: Option<String>,
    pub content: Option<String>,
    /// `completed` or `failed`.
    #[serde(default)]
    pub status: String,
    pub retrieved_at: Option<String>,
}

impl Fetch {
    /// The fetch a web_fetch call's output says (`None` if it does not read).
    pub fn of(id: &str, after_searches: usize, output: &str) -> Option<Self> {
        let page = serde_json::from_slice(output.as_bytes()).ok()?;
        Some(Fetch {
            id: id.to_string(),
            after_searches,
            page,
        })
    }
}

/// The server part of the turn the client's reply answers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Turn {
    pub searches: Vec<Search>,
    pub cited: Vec<Cited>,
    /// The fetches run, in order.
    pub fetches: Vec<Fetch>,
    /// The MCP servers' listings and calls.
    pub mcp: McpTurn,
}

/// The citations the answer `text` used, once each: where the answer names a result's
/// URL, its span; a citation it does not name spans the whole answer.
pub fn spans(text: &str, citations: &[Citation]) -> Vec<Cited> {
    let chars = |byte: usize| text.get(..byte).map_or(0, |s| s.chars().count());
    let mut out = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for c in citations {
        if !seen.insert(c.url.as_str()) {
            continue;
        }
        let (start_index, end_index) = match text.find(&c.url) {
            Some(b) => (chars(b), chars(b.saturating_add(c.url.len()))),
            None => (0, text.chars().count()),
        };
        out.push(Cited {
            url: c.url.clone(),
            title: c.title.clone(),
            content: c.content.clone(),
            start_index,
            end_index,
        });
    }
    out
}

impl Cited {
    /// The chat reply's annotation of this citation: `{type: "url_citation",
    /// url_citation: {url, title, content, start_index, end_index}}`.
    pub fn annotation(&self) -> serde_json::Value {
        serde_json::json!({"type": "url_citation", "url_citation": self})
    }
}

/// The `type` of the annotation a provider's own search (native) leaves in an inner
/// call's reply for each query it ran (`{type, query}`): read by the loop for the
/// surfaces' search items, never shown to a client ([`strip_queries`]).
pub const QUERY_ANNOTATION: &str = "modelmux_web_search_query";

/// The annotation that says a provider searched for `query`.
pub fn query_annotation(query: &str) -> serde_json::Value {
    serde_json::json!({"type": QUERY_ANNOTATION, "query": query})
}

/// `annotations` without the [`QUERY_ANNOTATION`]s (`None` if nothing is left).
pub fn strip_queries(annotations: Option<serde_json::Value>) -> Option<serde_json::Value> {
    let serde_json::Value::Array(mut list) = annotations? else {
        return None;
    };
    list.retain(|a| a.get("type").and_then(serde_json::Value::as_str) != Some(QUERY_ANNOTATION));
    (!list.is_empty()).then_some(serde_json::Value::Array(list))
}

/// What a provider's own search left in a chat reply's annotations: its sources (the
/// `url_citation`s, once each by URL) as the loop's citations, and the queries its
/// [`QUERY_ANNOTATION`]s name, in order; other annotations (`file`) are left out.
pub fn found_in(annotations: &serde_json::Value) -> (Vec<Citation>, Vec<String>) {
    #[derive(Deserialize)]
    struct Annotation {
        #[serde(rename = "type")]
        kind: String,
        url_citation: Option<UrlCitation>,
        #[serde(default)]
        query: String,
    }
    #[derive(Deserialize)]
    struct UrlCitation {
        url: String,
        #[serde(default)]
        title: Option<String>,
        #[serde(default)]
        content: Option<String>,
    }
    let list: Vec<Annotation> = Vec::deserialize(annotations).unwrap_or_default();
    let (mut cited, mut queries): (Vec<Citation>, Vec<String>) = (Vec::new(), Vec::new());
    for a in list {
        match (a.kind.as_str(), a.url_citation) {
            (QUERY_ANNOTATION, _) => queries.push(a.query),
            ("url_citation", Some(u)) if !cited.iter().any(|c| c.url == u.url) => {
                cited.push(Citation {
                    url: u.url,
                    title: u.title.unwrap_or_default(),
                    content: u.content.unwrap_or_default(),
                });
            }
            _ => {}
        }
    }
    (cited, queries)
}

/// An MCP server's tools as the loop offered them (OpenAI's `mcp_list_tools` item).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct McpList {
    pub server_label: String,
    pub tools: Vec<McpListed>,
}

/// One tool an MCP server listed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct McpListed {
    pub name: String,
    pub description: Option<String>,
    pub input_schema: serde_json::Value,
    pub annotations: Option<serde_json::Value>,
}

/// One call the loop made of an MCP server's tool, and what it gave: its `output`, or
/// the `error` the server (or the gateway) said.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct McpCall {
    pub server_label: String,
    /// The server's name of the tool (not the `mcp__` function).
    pub name: String,
    pub arguments: String,
    pub output: Option<String>,
    pub error: Option<String>,
}

/// The MCP part of a turn: the servers' listings and the calls made.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct McpTurn {
    pub lists: Vec<McpList>,
    pub calls: Vec<McpCall>,
}

/// The listings of the MCP `servers` (labels) the loop offered `functions` of, with
/// the annotations the servers gave their tools.
pub fn mcp_lists(
    servers: &[&str],
    functions: &[crate::api::FunctionDef],
    annotations: &[(String, serde_json::Value)],
) -> Vec<McpList> {
    servers
        .iter()
        .map(|label| McpList {
            server_label: (*label).to_string(),
            tools: functions
                .iter()
                .filter_map(|f| {
                    let name = super::server_tools::mcp_tool_of(&f.name, label)?;
                    Some(McpListed {
                        name: name.to_string(),
                        description: f.description.clone(),
                        input_schema: f
                            .parameters
                            .clone()
                            .unwrap_or_else(|| serde_json::json!({"type": "object"})),
                        annotations: annotations
                            .iter()
                            .find(|(n, _)| *n == f.name)
                            .map(|(_, a)| a.clone()),
                    })
                })
                .collect(),
        })
        .collect()
}

#[cfg(test)]
pub mod fixtures;
