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
