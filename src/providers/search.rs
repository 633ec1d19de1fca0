//! Search engines, providers like the model ones: each a pure request builder and
//! reply reader (Exa, Brave, Tavily by their public APIs), and what the model reads of
//! the results. The edge sends what these build (`edge::tools::search`).

mod brave;
mod exa;
mod tavily;

use serde::Deserialize;

use super::UpstreamRequest;
use crate::api::server_tools::{Citation, Engine, ServerToolUse, ToolOutput, WebSearchParams};
use crate::error::{Error, Result};

/// A search engine the gateway calls itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SearchEngine {
    Exa,
    Brave,
    Tavily,
}

impl SearchEngine {
    pub const ALL: [SearchEngine; 3] =
        [SearchEngine::Exa, SearchEngine::Brave, SearchEngine::Tavily];

    pub fn slug(self) -> &'static str {
        match self {
            SearchEngine::Exa => "exa",
            SearchEngine::Brave => "brave",
            SearchEngine::Tavily => "tavily",
        }
    }

    /// The secret holding the engine's key (`EXA_API_KEY`, ...).
    pub fn key_secret(self) -> String {
        format!("{}_API_KEY", self.slug().to_ascii_uppercase())
    }

    /// The var that overrides the engine's base URL (`EXA_BASE_URL`, ...; tests).
    pub fn base_url_var(self) -> String {
        format!("{}_BASE_URL", self.slug().to_ascii_uppercase())
    }

    pub fn default_base_url(self) -> &'static str {
        match self {
            SearchEngine::Exa => "https://api.exa.ai",
            SearchEngine::Brave => "https://api.search.brave.com",
            SearchEngine::Tavily => "https://api.tavily.com",
        }
    }

    /// The engine a tool's `engine` names; `auto` and `native` (once no native search
    /// serves) fall to the deployment's `SEARCH_ENGINE`, else Exa as on OpenRouter.
    pub fn of(asked: Engine, deployment: Option<&str>) -> SearchEngine {
        let chosen = match asked {
            Engine::Exa => return SearchEngine::Exa,
            Engine::Brave => return SearchEngine::Brave,
            Engine::Tavily => return SearchEngine::Tavily,
            Engine::Auto | Engine::Native => deployment,
        };
        SearchEngine::ALL
            .into_iter()
            .find(|e| Some(e.slug()) == chosen)
            .unwrap_or(SearchEngine::Exa)
    }
}

/// One search as an engine is asked it.
#[derive(Debug, Clone, PartialEq)]
pub struct Query<'a> {
    pub text: &'a str,
    /// Results to ask for (within what is left of `max_total_results`).
    pub count: u64,
    pub params: &'a WebSearchParams,
}

/// One result as every engine gives it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct Hit {
    pub url: String,
    pub title: String,
    pub text: String,
}

/// The request for `q` to `engine` at `base_url` with `key`.
pub fn build(
    engine: SearchEngine,
    base_url: &str,
    key: &str,
    q: &Query<'_>,
) -> Result<UpstreamRequest> {
    let base = base_url.trim_end_matches('/');
    match engine {
        SearchEngine::Exa => exa::build(base, key, q),
        SearchEngine::Brave => Ok(brave::build(base, key, q)),
        SearchEngine::Tavily => tavily::build(base, key, q),
    }
}

/// The results in `engine`'s reply, with what the engine charged (picodollars) where
/// it says.
pub fn parse(engine: SearchEngine, body: &[u8]) -> Result<(Vec<Hit>, u64)> {
    let bad = |e: serde_json::Error| {
        Error::upstream(engine.slug(), format!("unreadable search reply: {e}"))
    };
    match engine {
        SearchEngine::Exa => exa::parse(body).map_err(bad),
        SearchEngine::Brave => brave::parse(body).map_err(bad).map(|h| (h, 0)),
        SearchEngine::Tavily => tavily::parse(body).map_err(bad).map(|h| (h, 0)),
    }
}

/// The host of an http(s) URL, lower-cased.
fn host_of(url: &str) -> Option<String> {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))?;
    let host = rest.split(['/', '?', '#']).next()?;
    let host = host.rsplit('@').next()?.split(':').next()?;
    Some(host.to_ascii_lowercase())
}

/// Whether `host` is `domain` or under it.
fn under(host: &str, domain: &str) -> bool {
    host == domain || host.strip_suffix(domain).is_some_and(|h| h.ends_with('.'))
}

/// Whether a result's URL may be shown under the tool's domain rules (engines are
/// asked to filter; this holds them to it).
pub fn allowed(url: &str, p: &WebSearchParams) -> bool {
    let Some(host) = host_of(url) else {
        return false;
    };
    let allowed = p.allowed_domains.is_empty() || p.allowed_domains.iter().any(|d| under(&host, d));
    allowed && !p.excluded_domains.iter().any(|d| under(&host, d))
}

/// At most `max` characters of `s`, cut at a character boundary.
fn clip(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", s.get(..i).unwrap_or(s).trim_end()),
        None => s.to_string(),
    }
}

/// What the model reads of a search's results, and the citations they give.
pub fn output(query: &str, hits: Vec<Hit>, q: &Query<'_>, engine_cost: u64) -> ToolOutput {
    let per = q.params.search_context_size.chars_per_result();
    let hits: Vec<Hit> = hits
        .into_iter()
        .filter(|h| allowed(&h.url, q.params))
        .take(usize::try_from(q.count).unwrap_or(usize::MAX))
        .collect();
    let mut content = format!("Web search results for {query:?}:\n");
    if hits.is_empty() {
        content.push_str("No results.\n");
    }
    let mut citations = Vec::with_capacity(hits.len());
    for (i, h) in hits.into_iter().enumerate() {
        let text = clip(h.text.trim(), per);
        content.push_str(&format!(
            "\n[{}] {}\nURL: {}\n{}\n",
            i.saturating_add(1),
            h.title,
            h.url,
            text
        ));
        citations.push(Citation {
            url: h.url,
            title: h.title,
            content: text,
        });
    }
    ToolOutput {
        content,
        citations,
        usage: ServerToolUse {
            web_search_requests: 1,
            ..ServerToolUse::default()
        },
        cost: engine_cost,
        is_error: false,
    }
}

#[cfg(test)]
#[path = "search/tests.rs"]
mod tests;
