//! Anthropic's token counting (`POST /v1/messages/count_tokens`): the prompt of a
//! request, built from the chat request ([`super::request::build_count`]) or passed
//! through from a Messages body as the caller wrote it, and the `{"input_tokens": N}`
//! it answers. Counting is free on Anthropic's side and generates nothing.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::Result;
use crate::providers::{invalid_reply, Target, UpstreamRequest};

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

/// A count request of `body` at `target`, with `headers` (the API version, betas)
/// after the key and before the provider's own.
pub(super) fn request<T: Serialize + ?Sized>(
    target: &Target,
    body: &T,
    headers: Vec<(String, String)>,
) -> Result<UpstreamRequest> {
    let mut all = vec![("x-api-key".to_string(), target.key()?.to_string())];
    all.extend(headers);
    all.extend(target.extra_headers());
    let url = format!("{}/messages/count_tokens", target.base_url);
    UpstreamRequest::post_json(url, body, all)
}

/// A Messages body (from [`crate::api::messages::native_body`]) counted as the caller
/// wrote it, less the fields `count_tokens` does not take, with the caller's
/// `anthropic-version` and `anthropic-beta` headers. The body stays opaque: only its
/// top-level names are read.
pub fn build_native(
    target: &Target,
    body: &Value,
    client_headers: &[(String, String)],
) -> Result<UpstreamRequest> {
    let kept = match body.as_object() {
        Some(o) => Value::Object(
            o.iter()
                .filter(|(k, _)| FIELDS.contains(&k.as_str()))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        ),
        None => body.clone(),
    };
    request(target, &kept, super::native_headers(client_headers))
}

#[derive(Deserialize)]
struct Counted {
    input_tokens: u64,
}

/// The tokens a `count_tokens` reply counted.
pub fn parse(provider: &str, body: &[u8]) -> Result<u64> {
    serde_json::from_slice::<Counted>(body)
        .map(|c| c.input_tokens)
        .map_err(|e| invalid_reply(provider, e, body))
}
