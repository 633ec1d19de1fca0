//! Tavily (`POST /search`, bearer key): results with their `content`.

use serde::{Deserialize, Serialize};

use super::{Hit, Query};
use crate::api::server_tools::ContextSize;
use crate::error::Result;
use crate::providers::UpstreamRequest;

#[derive(Serialize)]
struct Body<'a> {
    query: &'a str,
    max_results: u64,
    search_depth: &'static str,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    include_domains: &'a [String],
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    exclude_domains: &'a [String],
}

pub(super) fn build(base: &str, key: &str, q: &Query<'_>) -> Result<UpstreamRequest> {
    let p = q.params;
    let body = Body {
        query: q.text,
        // Tavily returns at most 20 results a request.
        max_results: q.count.min(20),
        search_depth: match p.search_context_size {
            ContextSize::High => "advanced",
            ContextSize::Low | ContextSize::Medium => "basic",
        },
        include_domains: &p.allowed_domains,
        exclude_domains: &p.excluded_domains,
    };
    UpstreamRequest::post_json(
        format!("{base}/search"),
        &body,
        vec![("Authorization".into(), format!("Bearer {key}"))],
    )
}

#[derive(Deserialize)]
struct Reply {
    #[serde(default)]
    results: Vec<Result1>,
}

#[derive(Deserialize)]
struct Result1 {
    url: String,
    #[serde(default)]
    title: String,
    #[serde(default)]
    content: String,
}

pub(super) fn parse(body: &[u8]) -> serde_json::Result<Vec<Hit>> {
    let r: Reply = serde_json::from_slice(body)?;
    Ok(r.results
        .into_iter()
        .map(|x| Hit {
            url: x.url,
            title: x.title,
            text: x.content,
        })
        .collect())
}
