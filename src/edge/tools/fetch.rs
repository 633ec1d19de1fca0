//! `openrouter:web_fetch`: the model's `web_fetch(url)` fetched by the media
//! fetcher's rules ([`super::super::media::get`]: public hosts, each redirect checked,
//! within a byte and a time cap), with the tool's `allowed_domains` and
//! `blocked_domains` checked on every hop, and read as text
//! ([`crate::providers::web_page`]). A fetch that fails is the model's to read (a
//! `failed` result), never the request's failure.

use std::pin::pin;

use futures_util::future::{select, Either};

use super::ToolEnv;
use crate::api::server_tools::{
    Citation, ServerCall, ServerToolUse, ToolOutput, WebFetchParams, MAX_CONTENT_TOKENS,
};
use crate::edge::budget::{self, Hold};
use crate::edge::config;
use crate::edge::media::{self, Egress, Refused};
use crate::error::Error;
use crate::providers::web_page::{self, FetchResult, Kind};

/// The most bytes of one page read (README "Server tools").
pub const MAX_PAGE_BYTES: usize = 5 * 1024 * 1024;
/// What a page's citation quotes of it.
const CITED_CHARS: usize = 300;
/// What the gateway says it is, and what it reads.
const HEADERS: [(&str, &str); 2] = [
    (
        "user-agent",
        "modelmux-web-fetch/1.0 (+https://github.com/modelmux)",
    ),
    (
        "accept",
        "text/html, application/xhtml+xml, text/plain;q=0.9, application/json;q=0.8, */*;q=0.5",
    ),
];

pub async fn run(
    call: &ServerCall,
    params: &WebFetchParams,
    ctx: &ToolEnv<'_>,
) -> Result<ToolOutput, Error> {
    let result = match call.string_arg("url") {
        Some(url) => fetch(&url, params, ctx).await,
        None => FetchResult::failed("", "web_fetch needs a \"url\" string argument"),
    };
    let citations = match (&result.content, result.status) {
        (Some(text), "completed") => vec![Citation {
            url: result.url.clone(),
            title: result.title.clone().unwrap_or_else(|| result.url.clone()),
            content: text.chars().take(CITED_CHARS).collect(),
        }],
        _ => Vec::new(),
    };
    Ok(ToolOutput {
        content: result.to_json(),
        citations,
        usage: ServerToolUse {
            web_fetch_requests: 1,
            ..ServerToolUse::default()
        },
        cost: 0,
        is_error: false,
    })
}

async fn fetch(url: &str, params: &WebFetchParams, ctx: &ToolEnv<'_>) -> FetchResult {
    let cfg = ctx.settings;
    let timeout_ms = ctx.timeout_ms.min(cfg.media_fetch_timeout_ms);
    let isolate_limit = cfg.isolate_media_bytes;
    let mut hold = Hold::of(&budget::MEDIA);
    let room = hold.take_room(MAX_PAGE_BYTES as u64, isolate_limit);
    if room == 0 {
        return FetchResult::failed(
            url,
            budget::busy("fetching pages of", isolate_limit).to_string(),
        );
    }
    let cap = usize::try_from(room).unwrap_or(MAX_PAGE_BYTES);
    let egress = Egress::of(cfg, ctx.env);
    let domains = |hop: &str| {
        let host = url::Url::parse(hop)
            .ok()
            .and_then(|u| u.host_str().map(str::to_string))
            .unwrap_or_default();
        if web_page::domain_allowed(&host, &params.allowed_domains, &params.blocked_domains) {
            Ok(())
        } else {
            Err(format!(
                "is on a domain this tool's allowed_domains or blocked_domains refuse ({host})"
            ))
        }
    };
    let get = media::get(
        url,
        &cfg.media_fetch_allow_hosts,
        &egress,
        cap,
        &HEADERS,
        &domains,
    );
    let got = match select(pin!(get), pin!(config::sleep(timeout_ms))).await {
        Either::Left((got, _)) => got,
        Either::Right(_) => {
            return FetchResult::failed(url, format!("not fetched within {timeout_ms} ms"))
        }
    };
    let got = match got {
        Ok(got) => got,
        Err(Refused::Url(why)) => return FetchResult::failed(url, format!("the URL {why}")),
        Err(Refused::Failed(why)) => return FetchResult::failed(url, format!("the page {why}")),
        Err(Refused::TooLarge) => {
            return FetchResult::failed(url, format!("the page is larger than {cap} bytes"))
        }
    };
    let Some(kind) = Kind::of(got.mime.as_deref()) else {
        return FetchResult::failed(
            &got.url,
            format!(
                "unsupported content type {}: web_fetch reads HTML and text",
                got.mime.as_deref().unwrap_or_default()
            ),
        );
    };
    if kind == Kind::Pdf {
        return FetchResult::failed(
            &got.url,
            "unsupported content type application/pdf: this gateway does not extract text from PDFs fetched by web_fetch",
        );
    }
    let body = String::from_utf8_lossy(&got.bytes.to_vec()).into_owned();
    let max_tokens = params.max_content_tokens.unwrap_or(MAX_CONTENT_TOKENS);
    let now_ms = ctx.now_secs.saturating_mul(1000);
    FetchResult::read(
        &got.url,
        kind,
        &body,
        max_tokens,
        crate::accounts::ledger::iso8601(now_ms),
    )
}
