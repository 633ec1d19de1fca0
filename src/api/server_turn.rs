//! What a server-tool loop did in the turn it answers, for the surfaces' reply writers
//! (Responses' `web_search_call` items and `url_citation` annotations): the searches
//! run, in order, with the results each gave, and each cited result's span in the
//! answer. Made by the loop ([`super::tool_loop::Loop::turn`]), never read back from
//! the answer's text.

use serde::Serialize;

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

/// The server part of the turn the client's reply answers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Turn {
    pub searches: Vec<Search>,
    pub cited: Vec<Cited>,
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
