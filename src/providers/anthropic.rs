//! Anthropic's Messages API (`POST /v1/messages`): the request built in [`request`],
//! replies read in [`reply`], stream events translated in [`stream`]; and the Messages
//! surface's own requests passed through as the caller wrote them.

mod count;
mod reply;
mod request;
mod stream;

use serde_json::{json, Value};

use super::{invalid_reply, CountAsk, Reasoning, Target, UpstreamRequest};
use crate::api::count::PromptFormula;
use crate::api::{ChatCompletion, ChatRequest, GenerationMeta};
use crate::catalog::{Endpoint, Model};
use crate::error::Result;
pub use reply::parse_response;
pub use request::build_request;
#[cfg(test)]
use request::thinking_blocks;
pub use stream::{Made, StreamState};

pub const API_VERSION: &str = "2023-06-01";
/// `max_tokens` is required by Anthropic; used when neither caller nor catalogue set it.
const DEFAULT_MAX_TOKENS: u64 = 4096;
/// Structured output is a forced call of this tool; its input comes back as the content.
pub const JSON_TOOL: &str = "modelmux_json_response";
/// The format OpenRouter names Anthropic's reasoning items with.
const REASONING_FORMAT: &str = "anthropic-claude-v1";

/// A Messages-surface request sent to an Anthropic endpoint as the caller wrote it
/// (`body` from [`crate::api::messages::native_body`], passed through opaque), with the
/// caller's `anthropic-version` and `anthropic-beta` headers.
pub fn build_native(
    target: &Target,
    body: &Value,
    client_headers: &[(String, String)],
) -> Result<UpstreamRequest> {
    let mut headers = vec![("x-api-key".to_string(), target.key()?.to_string())];
    headers.extend(native_headers(client_headers));
    headers.extend(target.extra_headers());
    UpstreamRequest::post_json(format!("{}/messages", target.base_url), body, headers)
}

/// The caller's `anthropic-version` (else ours) and `anthropic-beta` headers.
fn native_headers(client_headers: &[(String, String)]) -> Vec<(String, String)> {
    let version = client_headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("anthropic-version"))
        .map_or(API_VERSION.to_string(), |(_, v)| v.clone());
    let mut headers = vec![("anthropic-version".to_string(), version)];
    for (k, v) in client_headers {
        if k.eq_ignore_ascii_case("anthropic-beta") {
            headers.push(("anthropic-beta".to_string(), v.clone()));
        }
    }
    headers
}

/// An Anthropic endpoint's own reply to a Messages-surface request, as it came (opaque:
/// the Messages surface passes it on), but naming the catalogue's model.
pub fn native_reply(provider: &str, body: &[u8], model: &str) -> Result<Value> {
    let mut v: Value =
        serde_json::from_slice(body).map_err(|e| invalid_reply(provider, e, body))?;
    crate::api::set_field(&mut v, "model", json!(model));
    Ok(v)
}

/// What an Anthropic request generates at most: `max_tokens` (thinking included) and
/// the thinking budget, if reasoning is on.
pub struct OutputLimits {
    pub max_tokens: u64,
    pub thinking_budget: Option<u64>,
}

/// The `max_tokens` and thinking budget sent for `req` to `endpoint`: the reservation
/// reads the same numbers. An ask above what the endpoint generates is lowered to its
/// maximum; `max_tokens` grows (up to that maximum) when the thinking budget would
/// leave no room for the answer.
pub fn output_limits(req: &ChatRequest, model: &Model, endpoint: &Endpoint) -> OutputLimits {
    let ceiling = endpoint.output_ceiling(model);
    let asked = req
        .max_output_tokens()
        .or(endpoint.max_completion_tokens)
        .unwrap_or(DEFAULT_MAX_TOKENS)
        .min(ceiling);
    match Reasoning::from_request(req) {
        Some(r) => {
            // The budget must leave room for the answer: at most max_tokens - 1.
            let budget = r.budget(asked).min(asked.saturating_sub(1)).max(1024);
            let max_tokens = if budget >= asked {
                budget.saturating_add(DEFAULT_MAX_TOKENS).min(ceiling)
            } else {
                asked
            };
            OutputLimits {
                max_tokens,
                thinking_budget: Some(budget),
            }
        }
        None => OutputLimits {
            max_tokens: asked,
            thinking_budget: None,
        },
    }
}

/// Anthropic's Messages API, which also takes the Messages surface's requests as the
/// caller wrote them.
pub struct Anthropic;

impl super::Family for Anthropic {
    fn native_search(&self) -> Option<crate::api::native_search::NativeTool> {
        Some(crate::api::native_search::NativeTool {
            allowed_domains: true,
            excluded_domains: true,
            per_request: false,
        })
    }

    fn continues_assistant_turn(&self) -> bool {
        true
    }

    fn build_request(
        &self,
        target: &Target,
        req: &ChatRequest,
        stream: bool,
    ) -> Result<UpstreamRequest> {
        build_request(target, req, stream)
    }

    fn parse_response(
        &self,
        provider: &str,
        meta: &GenerationMeta,
        body: &[u8],
    ) -> Result<ChatCompletion> {
        parse_response(provider, meta, body)
    }

    fn translator(&self, target: &Target, _: &GenerationMeta) -> Option<super::stream::Translator> {
        Some(super::stream::Translator::Anthropic(StreamState::new(
            &target.provider.slug,
        )))
    }

    /// `max_tokens` as sent: raised for a thinking budget.
    fn output_tokens(&self, req: &ChatRequest, model: &Model, endpoint: &Endpoint) -> Option<u64> {
        Some(output_limits(req, model, endpoint).max_tokens)
    }

    fn native_passthrough(&self) -> bool {
        true
    }

    fn build_native(
        &self,
        target: &Target,
        body: &Value,
        client_headers: &[(String, String)],
    ) -> Result<UpstreamRequest> {
        build_native(target, body, client_headers)
    }

    fn native_reply(&self, provider: &str, body: &[u8], model: &str) -> Result<Value> {
        native_reply(provider, body, model)
    }

    fn counts_tokens(&self) -> bool {
        true
    }

    fn build_count(&self, target: &Target, ask: &CountAsk) -> Result<UpstreamRequest> {
        match ask.native {
            Some(body) => count::build_native(target, body, ask.client_headers),
            None => count::build_chat(target, ask.chat),
        }
    }

    fn parse_count(&self, provider: &str, body: &[u8]) -> Result<u64> {
        count::parse(provider, body)
    }

    fn prompt_formula(&self) -> PromptFormula {
        PromptFormula::Anthropic
    }
}

#[cfg(test)]
mod tests;
