//! Anthropic's token counting (`POST /v1/messages/count_tokens`): the prompt of a
//! request, built from the chat request ([`super::request::build_count`]) or passed
//! through from a Messages body as the caller wrote it, and the `{"input_tokens": N}`
//! it answers. Counting is free on Anthropic's side and generates nothing.

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::Value;

use super::API_VERSION;
use crate::api::ChatRequest;
use crate::error::{Error, Result};
use crate::providers::{Target, UpstreamRequest};

/// The fields `count_tokens` takes (Anthropic's `MessageCountTokensParams`), each kept
/// as it was written (`T`: a borrowed raw value, or a value of an opaque Messages
/// body). Anthropic refuses any other ("Extra inputs are not permitted"), `max_tokens`
/// and `stream` included, so every other field of the body is left out.
#[derive(Serialize, Deserialize)]
struct CountBody<T> {
    model: T,
    messages: T,
    #[serde(default = "none", skip_serializing_if = "Option::is_none")]
    system: Option<T>,
    #[serde(default = "none", skip_serializing_if = "Option::is_none")]
    tools: Option<T>,
    #[serde(default = "none", skip_serializing_if = "Option::is_none")]
    tool_choice: Option<T>,
    #[serde(default = "none", skip_serializing_if = "Option::is_none")]
    thinking: Option<T>,
    #[serde(default = "none", skip_serializing_if = "Option::is_none")]
    mcp_servers: Option<T>,
    #[serde(default = "none", skip_serializing_if = "Option::is_none")]
    context_management: Option<T>,
    #[serde(default = "none", skip_serializing_if = "Option::is_none")]
    output_config: Option<T>,
    #[serde(default = "none", skip_serializing_if = "Option::is_none")]
    output_format: Option<T>,
}

fn none<T>() -> Option<T> {
    None
}

/// The fields of a Messages body written as JSON that `count_tokens` takes.
fn counted(body: &[u8]) -> Result<CountBody<&RawValue>> {
    serde_json::from_slice(body).map_err(|e| Error::Internal(e.to_string()))
}

/// A count request of `body` at `target`, with `headers` (the API version, betas)
/// after the key and before the provider's own.
fn request<T: Serialize>(
    target: &Target,
    body: &CountBody<T>,
    headers: Vec<(String, String)>,
) -> Result<UpstreamRequest> {
    let mut all = vec![("x-api-key".to_string(), target.key()?.to_string())];
    all.extend(headers);
    all.extend(target.extra_headers());
    let url = format!("{}/messages/count_tokens", target.base_url);
    UpstreamRequest::post_json(url, body, all)
}

/// A Messages body (from [`crate::api::messages::native_body`]) counted as the caller
/// wrote it, with the caller's `anthropic-version` and `anthropic-beta` headers.
pub fn build_native(
    target: &Target,
    body: &Value,
    client_headers: &[(String, String)],
) -> Result<UpstreamRequest> {
    let raw = serde_json::to_vec(body).map_err(|e| Error::Internal(e.to_string()))?;
    request(
        target,
        &counted(&raw)?,
        super::native_headers(client_headers),
    )
}

/// The prompt of a chat request counted: the body a generation of it would send
/// (messages, system, tools, thinking), less what `count_tokens` refuses. Built by
/// the one request builder, so that the count is of what a generation sends.
pub fn build_chat(target: &Target, req: &ChatRequest) -> Result<UpstreamRequest> {
    let up = super::build_request(target, req, false)?;
    let version = vec![("anthropic-version".to_string(), API_VERSION.to_string())];
    request(target, &counted(&up.body)?, version)
}

/// The tokens a `count_tokens` reply counted.
pub fn parse(provider: &str, body: &[u8]) -> Result<u64> {
    crate::providers::Counted::read(provider, body)?
        .tokens
        .ok_or_else(|| crate::providers::invalid_reply(provider, "no input_tokens", body))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn only_the_fields_count_tokens_takes_are_sent() {
        let body = json!({"model": "m", "messages": [{"role": "user", "content": "hi"}],
            "system": "s", "max_tokens": 5, "stream": true, "metadata": {"user_id": "u"},
            "thinking": {"type": "enabled", "budget_tokens": 1024}});
        let raw = serde_json::to_vec(&body).unwrap();
        assert_eq!(
            serde_json::to_value(counted(&raw).unwrap()).unwrap(),
            json!({"model": "m", "messages": [{"role": "user", "content": "hi"}],
                "system": "s", "thinking": {"type": "enabled", "budget_tokens": 1024}})
        );
    }
}
