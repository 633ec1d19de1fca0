//! Anthropic's token counting (`POST /v1/messages/count_tokens`): the prompt of a
//! request, built from the chat request ([`super::request::build_count`]) or passed
//! through from a Messages body as the caller wrote it, and the `{"input_tokens": N}`
//! it answers. Counting is free on Anthropic's side and generates nothing.

use serde_json::Value;

use super::API_VERSION;
use crate::api::ChatRequest;
use crate::error::{Error, Result};
use crate::providers::{Target, UpstreamRequest};

/// The fields `count_tokens` takes (Anthropic's `MessageCountTokensParams`): it
/// refuses any other ("Extra inputs are not permitted"), `max_tokens` and `stream`
/// included.
const FIELDS: [&str; 10] = [
    "model",
    "messages",
    "system",
    "tools",
    "tool_choice",
    "thinking",
    "mcp_servers",
    "context_management",
    "output_config",
    "output_format",
];

/// A count request of `body` (its fields `count_tokens` does not take left out) at
/// `target`, with `headers` (the API version, betas) after the key and before the
/// provider's own.
fn request(
    target: &Target,
    body: &Value,
    headers: Vec<(String, String)>,
) -> Result<UpstreamRequest> {
    let mut all = vec![("x-api-key".to_string(), target.key()?.to_string())];
    all.extend(headers);
    all.extend(target.extra_headers());
    let url = format!("{}/messages/count_tokens", target.base_url);
    UpstreamRequest::post_json(url, &counted_fields(body), all)
}

/// `body` with only the top-level fields `count_tokens` takes. The body stays opaque:
/// only its top-level names are read.
fn counted_fields(body: &Value) -> Value {
    match body.as_object() {
        Some(o) => Value::Object(
            o.iter()
                .filter(|(k, _)| FIELDS.contains(&k.as_str()))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        ),
        None => body.clone(),
    }
}

/// A Messages body (from [`crate::api::messages::native_body`]) counted as the caller
/// wrote it, with the caller's `anthropic-version` and `anthropic-beta` headers.
pub fn build_native(
    target: &Target,
    body: &Value,
    client_headers: &[(String, String)],
) -> Result<UpstreamRequest> {
    request(target, body, super::native_headers(client_headers))
}

/// The prompt of a chat request counted: the body a generation of it would send
/// (messages, system, tools, thinking), less what `count_tokens` refuses. Built by
/// the one request builder, so that the count is of what a generation sends.
pub fn build_chat(target: &Target, req: &ChatRequest) -> Result<UpstreamRequest> {
    let up = super::build_request(target, req, false)?;
    let body: Value =
        serde_json::from_slice(&up.body).map_err(|e| Error::Internal(e.to_string()))?;
    let version = vec![("anthropic-version".to_string(), API_VERSION.to_string())];
    request(target, &body, version)
}

/// The tokens a `count_tokens` reply counted.
pub fn parse(provider: &str, body: &[u8]) -> Result<u64> {
    crate::providers::Counted::read(provider, body)?
        .tokens
        .ok_or_else(|| crate::providers::invalid_reply(provider, "no input_tokens", body))
}
