//! Exa (`POST /search`, `x-api-key`): results with their text, and the request's cost
//! in `costDollars.total`.

use serde::{Deserialize, Serialize};

use super::{Hit, Query};
use crate::error::Result;
use crate::providers::UpstreamRequest;

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Body<'a> {
    query: &'a str,
    num_results: u64,
    #[serde(rename = "type")]
    kind: &'static str,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    include_domains: &'a [String],
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    exclude_domains: &'a [String],
    #[serde(skip_serializing_if = "Option::is_none")]
    user_location: Option<&'a str>,
    contents: Contents,
}

#[derive(Serialize)]
struct Contents {
    text: Text,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Text {
    max_characters: usize,
}

pub(super) fn build(base: &str, key: &str, q: &Query<'_>) -> Result<UpstreamRequest> {
    let p = q.params;
    let body = Body {
        query: q.text,
        num_results: q.count,
        kind: "auto",
        include_domains: &p.allowed_domains,
        exclude_domains: &p.excluded_domains,
        user_location: p.user_location.as_ref().and_then(|l| l.country.as_deref()),
        contents: Contents {
            text: Text {
                max_characters: p.search_context_size.chars_per_result(),
            },
        },
    };
    UpstreamRequest::post_json(
        format!("{base}/search"),
        &body,
        vec![("x-api-key".into(), key.into())],
    )
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Reply {
    #[serde(default)]
    results: Vec<Result1>,
    #[serde(default)]
    cost_dollars: Option<Cost>,
}

#[derive(Deserialize)]
struct Result1 {
    url: String,
    #[serde(default)]
    title: Option<String>,
    #[serde(default)]
    text: Option<String>,
}

#[derive(Deserialize)]
struct Cost {
    total: serde_json::Number,
}

pub(super) fn parse(body: &[u8]) -> serde_json::Result<(Vec<Hit>, u64)> {
    let r: Reply = serde_json::from_slice(body)?;
    let cost = r
        .cost_dollars
        .and_then(|c| crate::money::picos_from_usd_text(&c.total.to_string()))
        .unwrap_or(0);
    let hits = r
        .results
        .into_iter()
        .map(|x| Hit {
            title: x.title.unwrap_or_else(|| x.url.clone()),
            url: x.url,
            text: x.text.unwrap_or_default(),
        })
        .collect();
    Ok((hits, cost))
}
