//! Brave Search (`GET /res/v1/web/search`, `X-Subscription-Token`): domains go into the
//! query as `site:` operators, as Brave has no field for them.

use serde::Deserialize;

use super::{Hit, Query};
use crate::providers::UpstreamRequest;

/// `s` percent-encoded for a query string.
fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(char::from(b))
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// The query with the tool's domain rules as operators.
fn query_text(q: &Query<'_>) -> String {
    let p = q.params;
    let mut text = q.text.to_string();
    let sites: Vec<String> = p
        .allowed_domains
        .iter()
        .map(|d| format!("site:{d}"))
        .collect();
    if !sites.is_empty() {
        text.push_str(&format!(" ({})", sites.join(" OR ")));
    }
    for d in &p.excluded_domains {
        text.push_str(&format!(" -site:{d}"));
    }
    text
}

pub(super) fn build(base: &str, key: &str, q: &Query<'_>) -> UpstreamRequest {
    // Brave returns at most 20 results a request.
    let mut url = format!(
        "{base}/res/v1/web/search?q={}&count={}&extra_snippets=true",
        encode(&query_text(q)),
        q.count.min(20)
    );
    if let Some(c) = q
        .params
        .user_location
        .as_ref()
        .and_then(|l| l.country.as_deref())
    {
        url.push_str(&format!("&country={}", encode(&c.to_ascii_lowercase())));
    }
    UpstreamRequest {
        method: "GET",
        url,
        headers: vec![
            ("Accept".into(), "application/json".into()),
            ("X-Subscription-Token".into(), key.into()),
        ],
        body: Vec::new(),
    }
}

#[derive(Deserialize)]
struct Reply {
    #[serde(default)]
    web: Option<Web>,
}

#[derive(Deserialize)]
struct Web {
    #[serde(default)]
    results: Vec<Result1>,
}

#[derive(Deserialize)]
struct Result1 {
    url: String,
    #[serde(default)]
    title: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    extra_snippets: Vec<String>,
}

/// Brave marks query words in descriptions with `<strong>`: the model reads plain text.
fn plain(s: &str) -> String {
    s.replace("<strong>", "").replace("</strong>", "")
}

pub(super) fn parse(body: &[u8]) -> serde_json::Result<Vec<Hit>> {
    let r: Reply = serde_json::from_slice(body)?;
    let results = r.web.map(|w| w.results).unwrap_or_default();
    Ok(results
        .into_iter()
        .map(|x| {
            let mut text = plain(&x.description);
            for s in &x.extra_snippets {
                text.push(' ');
                text.push_str(&plain(s));
            }
            Hit {
                url: x.url,
                title: plain(&x.title),
                text,
            }
        })
        .collect())
}
