//! Provider families: each module is a pure translator between our OpenAI-shaped
//! types and one upstream wire format. It builds the upstream request and parses
//! the upstream reply or stream; the edge does the actual `fetch`.

pub mod anthropic;
pub mod continuation;
pub mod echo;
pub mod embeddings;
mod error_body;
pub mod family;
pub mod file_parser;
#[cfg(test)]
mod fixtures;
pub mod gemini;
pub mod mcp;
pub mod media;
#[cfg(test)]
mod native_search_tests;
pub mod ocr;
pub mod openai_compat;
pub mod pdf;
pub mod search;
pub mod stream;
#[cfg(test)]
mod testutil;
pub mod web_page;

use serde_json::{Map, Value};

use crate::api::{ChatCompletion, ChatRequest, Effort, GenerationMeta};
use crate::catalog::{ApiFamily, Endpoint, Model, Provider};
use crate::error::{truncate, Error, Result};
pub use family::{all_native, family, Family};

// The size estimates and the gateway's own fields are the wire format's (`api`); the
// providers use them under their old names.
pub use crate::api::{
    estimate_prompt_tokens, estimate_tokens, parse_data_url, strip_gateway_fields, CacheWrite,
    PromptSize, IMAGE_TOKENS, MEDIA_BYTES_PER_TOKEN,
};

/// Everything a translator needs to know about where a request goes.
#[derive(Debug, Clone)]
pub struct Target<'a> {
    pub provider: &'a Provider,
    pub model: &'a Model,
    pub endpoint: &'a Endpoint,
    /// The catalogue's base URL or the deployment's override, without trailing `/`.
    pub base_url: String,
    pub api_key: Option<String>,
}

impl Target<'_> {
    pub fn key(&self) -> Result<&str> {
        self.api_key.as_deref().ok_or_else(|| {
            Error::NoProvider(format!(
                "Provider {} is not configured on this gateway (secret {} is not set)",
                self.provider.slug,
                self.provider.key_secret()
            ))
        })
    }

    fn extra_headers(&self) -> impl Iterator<Item = (String, String)> + '_ {
        self.provider
            .headers
            .iter()
            .filter_map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_string())))
    }
}

/// What a token count asks of an upstream: the prompt as a chat request, and, from
/// the Messages surface, the caller's own body (for a family that takes it as it is,
/// [`Family::native_passthrough`]) with the caller's headers that go with it.
#[derive(Debug, Clone, Copy)]
pub struct CountAsk<'a> {
    pub chat: &'a ChatRequest,
    pub native: Option<&'a Value>,
    pub client_headers: &'a [(String, String)],
}

/// A token count reply of any family that counts: Anthropic's `input_tokens`, Gemini's
/// `totalTokens` (one reader for both: each would be a kilobyte of wasm).
#[derive(Debug, Default, serde::Deserialize)]
pub struct Counted {
    #[serde(default, rename = "input_tokens", alias = "totalTokens")]
    pub tokens: Option<u64>,
}

impl Counted {
    pub fn read(provider: &str, body: &[u8]) -> Result<Counted> {
        serde_json::from_slice(body).map_err(|e| invalid_reply(provider, e, body))
    }
}

/// An HTTP request to send upstream. Holds the provider key: never log it.
#[derive(Clone, PartialEq)]
pub struct UpstreamRequest {
    pub method: &'static str,
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl std::fmt::Debug for UpstreamRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self.headers.iter().map(|(k, _)| k.as_str()).collect();
        f.debug_struct("UpstreamRequest")
            .field("method", &self.method)
            .field("url", &self.url)
            .field("header_names", &names)
            .field("body_len", &self.body.len())
            .finish()
    }
}

impl UpstreamRequest {
    /// A POST of `body` as JSON (serialised here, once: the generic part is only that).
    pub fn post_json<T: serde::Serialize + ?Sized>(
        url: String,
        body: &T,
        headers: Vec<(String, String)>,
    ) -> Result<Self> {
        let body = serde_json::to_vec(body).map_err(|e| Error::Internal(e.to_string()))?;
        Ok(Self::post(url, body, headers))
    }

    /// A POST of a JSON body already written.
    pub fn post(url: String, body: Vec<u8>, headers: Vec<(String, String)>) -> Self {
        let mut all = vec![("Content-Type".to_string(), "application/json".to_string())];
        all.extend(headers);
        UpstreamRequest {
            method: "POST",
            url,
            headers: all,
            body,
        }
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Builds the upstream request for `req` at `target`.
pub fn build_request(target: &Target, req: &ChatRequest) -> Result<UpstreamRequest> {
    build(target, req, req.is_stream())
}

/// Builds the upstream request for `req` at `target` as a stream, whatever the caller
/// asked: a reply gathered from a stream (`ChatStream::gathering`) still shows what was
/// generated when the exchange ends early.
pub fn build_streamed(target: &Target, req: &ChatRequest) -> Result<UpstreamRequest> {
    build(target, req, true)
}

fn build(target: &Target, req: &ChatRequest, stream: bool) -> Result<UpstreamRequest> {
    family(target.provider.api).build_request(target, req, stream)
}

/// Parses a successful (2xx) non-streamed upstream reply.
pub fn parse_response(
    api: ApiFamily,
    provider: &str,
    meta: &GenerationMeta,
    body: &[u8],
) -> Result<ChatCompletion> {
    family(api).parse_response(provider, meta, body)
}

/// Maps an upstream non-2xx reply to our error, keeping the upstream's message.
pub fn upstream_error(
    provider: &str,
    status: u16,
    body: &[u8],
    retry_after: Option<&str>,
) -> Error {
    let raw = truncate(&String::from_utf8_lossy(body), 2048).to_string();
    let parsed = error_body::ErrorBody::read(body);
    let detail = parsed.message().unwrap_or_else(|| format!("HTTP {status}"));
    // Google answers a bad API key with 400 INVALID_ARGUMENT and the reason in its
    // structured details (read there, not in a message that may echo the request).
    let bad_key = status == 400 && parsed.bad_key();
    let status = if bad_key { 401 } else { status };
    // The header (seconds), else the delay Google's RetryInfo detail asks for.
    let retry_after_secs = retry_after
        .and_then(|s| s.trim().parse().ok())
        .or_else(|| parsed.retry_delay_secs());
    match status {
        429 => Error::RateLimited {
            message: format!("Provider {provider} is rate limited: {detail}"),
            retry_after_secs,
            provider: Some(provider.to_string()),
            raw: Some(raw),
        },
        408 | 504 => Error::Timeout {
            provider: provider.to_string(),
        },
        // Our own provider key was refused: the operator must fix it, and what the
        // upstream said about our key is not the caller's business.
        401 | 403 => Error::Misconfigured(format!(
            "Provider {provider} is misconfigured on this gateway (it refused the gateway's credentials)"
        )),
        _ => Error::Upstream {
            provider: provider.to_string(),
            message: format!("Provider returned error: {detail}"),
            status: Some(status),
            raw: Some(raw),
            // Overloaded (503, Anthropic's 529): when to come back, as it said.
            retry_after_secs: retry_after_secs
                .filter(|_| matches!(status, 503 | 529))
                .and_then(|s| u32::try_from(s).ok()),
        },
    }
}

/// An upstream reply we could not understand (502, with the raw reply).
pub fn invalid_reply(provider: &str, what: impl std::fmt::Display, body: &[u8]) -> Error {
    Error::Upstream {
        provider: provider.to_string(),
        message: format!("Provider returned an invalid response: {what}"),
        status: None,
        raw: Some(truncate(&String::from_utf8_lossy(body), 2048).to_string()),
        retry_after_secs: None,
    }
}

/// A stream event we could not understand.
pub fn invalid_event(provider: &str, what: impl std::fmt::Display, data: &str) -> Error {
    Error::Upstream {
        provider: provider.to_string(),
        message: format!("Provider sent an invalid stream event: {what}"),
        status: None,
        raw: Some(truncate(data, 2048).to_string()),
        retry_after_secs: None,
    }
}

/// An error an upstream reported inside its stream, in any family's shape (an object
/// with a `message`, or anything else): its message, and the error's JSON.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ErrorEvent {
    pub message: Option<String>,
    /// The error's JSON (for `metadata.raw`).
    pub raw: String,
}

impl<'de> serde::Deserialize<'de> for ErrorEvent {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        // Read whole (it is rare): `raw` is written as it always was, keys in order.
        let v = Value::deserialize(d)?;
        Ok(ErrorEvent {
            message: v.get("message").and_then(Value::as_str).map(str::to_string),
            raw: v.to_string(),
        })
    }
}

/// An error the upstream reported inside its stream.
pub fn stream_error(provider: &str, err: &ErrorEvent) -> Error {
    let message = err.message.as_deref().unwrap_or("stream error");
    Error::Upstream {
        provider: provider.to_string(),
        message: format!("Provider returned error: {message}"),
        status: None,
        raw: Some(err.raw.clone()),
        retry_after_secs: None,
    }
}

/// A stream that stopped before saying it was finished.
pub fn ended_early(provider: &str) -> Error {
    Error::upstream(
        provider,
        "Provider stream ended before the completion finished",
    )
}

/// Finish reasons of every family, mapped onto OpenRouter's five.
pub fn normalize_finish_reason(native: &str) -> &'static str {
    match native {
        "stop" | "end_turn" | "stop_sequence" | "STOP" | "pause_turn" => "stop",
        "length" | "max_tokens" | "MAX_TOKENS" | "model_context_window_exceeded" => "length",
        "tool_calls" | "function_call" | "tool_use" => "tool_calls",
        "content_filter" | "refusal" | "SAFETY" | "RECITATION" | "BLOCKLIST"
        | "PROHIBITED_CONTENT" | "SPII" | "IMAGE_SAFETY" => "content_filter",
        _ => "error",
    }
}

/// The completion tokens of a reply that came without usage: a token per four bytes of
/// its content, reasoning and tool calls, in every choice.
pub fn estimate_completion_tokens(c: &crate::api::ChatCompletion) -> u64 {
    c.choices.iter().fold(0u64, |acc, ch| {
        let m = &ch.message;
        let calls = m.tool_calls.iter().flatten().fold(0u64, |a, t| {
            a.saturating_add(estimate_tokens(&t.function.name))
                .saturating_add(estimate_tokens(&t.function.arguments))
        });
        acc.saturating_add(estimate_tokens(m.content.as_deref().unwrap_or_default()))
            .saturating_add(estimate_tokens(m.reasoning.as_deref().unwrap_or_default()))
            .saturating_add(calls)
    })
}

/// Tool-call arguments as JSON (opaque: the caller's tool defines them): what a model
/// sent as a string, parsed.
pub fn parse_arguments(args: &str) -> Result<Value> {
    if args.trim().is_empty() {
        return Ok(Value::Object(Map::new()));
    }
    serde_json::from_slice(args.as_bytes())
        .map_err(|e| Error::bad_request(format!("tool call arguments are not valid JSON: {e}")))
}

/// Whether the request asks for any JSON output (`json_object` or `json_schema`).
pub fn wants_json(req: &ChatRequest) -> bool {
    req.response_format
        .as_ref()
        .is_some_and(|rf| *rf != crate::api::ResponseFormat::Text)
}

/// Reasoning settings from OpenRouter's `reasoning` object or `reasoning_effort`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Reasoning {
    /// An effort other than `none` (which turns reasoning off).
    pub effort: Option<Effort>,
    pub max_tokens: Option<u64>,
    /// Reasoning happens but is not returned.
    pub exclude: bool,
}

impl Reasoning {
    pub fn from_request(req: &ChatRequest) -> Option<Reasoning> {
        if let Some(r) = &req.reasoning {
            if r.enabled == Some(false) || r.effort == Some(Effort::None) {
                return None;
            }
            return Some(Reasoning {
                effort: r.effort,
                max_tokens: r.max_tokens,
                exclude: r.exclude.unwrap_or(false),
            });
        }
        req.reasoning_effort
            .filter(|e| *e != Effort::None)
            .map(|e| Reasoning {
                effort: Some(e),
                max_tokens: None,
                exclude: false,
            })
    }

    /// A thinking-token budget out of `max_output` for budget-based APIs.
    pub fn budget(&self, max_output: u64) -> u64 {
        if let Some(n) = self.max_tokens {
            return n;
        }
        let share = match self.effort {
            Some(Effort::Minimal) => 0.1,
            Some(Effort::Low) => 0.2,
            Some(Effort::High) => 0.8,
            Some(Effort::Xhigh) => 0.95,
            _ => 0.5,
        };
        ((max_output as f64 * share) as u64).max(1024)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::MediaMaxTokens;

    #[test]
    fn a_stream_error_keeps_its_message_and_its_json() {
        #[derive(serde::Deserialize)]
        struct Event {
            error: ErrorEvent,
        }
        let read = |s: &str| serde_json::from_str::<Event>(s).unwrap().error;
        let e = read(r#"{"error": {"type": "overloaded_error", "message": "Overloaded"}}"#);
        assert_eq!(e.message.as_deref(), Some("Overloaded"));
        assert_eq!(
            e.raw,
            r#"{"message":"Overloaded","type":"overloaded_error"}"#
        );
        let Error::Upstream { message, raw, .. } = stream_error("p", &e) else {
            panic!("not an upstream error");
        };
        assert_eq!(message, "Provider returned error: Overloaded");
        assert_eq!(raw.as_deref(), Some(e.raw.as_str()));
        for other in [r#"{"error": "boom"}"#, r#"{"error": {"message": 5}}"#] {
            let Error::Upstream { message, .. } = stream_error("p", &read(other)) else {
                panic!("not an upstream error");
            };
            assert_eq!(message, "Provider returned error: stream error", "{other}");
        }
    }

    #[test]
    fn media_the_gateway_cannot_size_are_reserved_at_what_they_can_be_billed() {
        use serde_json::json;
        let req = |part: Value| {
            testutil::request(json!({"model": "a/b", "messages": [{"role": "user",
                "content": [{"type": "text", "text": "what is in it"}, part]}]}))
        };
        let size = |part: Value| PromptSize::of(&req(part));
        let text_only = size(json!({"type": "text", "text": ""}));
        let base = text_only.worst_tokens(100_000, None);
        // A video by URL (a 45-minute one is billed hundreds of thousands of tokens).
        let video = size(json!({"type": "video_url", "video_url": {"url": "https://youtu.be/x"}}));
        assert_eq!(video.videos, 1);
        assert_eq!(video.worst_tokens(100_000, None), 100_000);
        let capped = MediaMaxTokens {
            video: Some(30_000),
            ..Default::default()
        };
        assert_eq!(video.worst_tokens(100_000, Some(&capped)), base + 30_000);
        // PDFs inline or by URL, and files by URL: pages the gateway does not count.
        for part in [
            json!({"type": "file", "file": {"filename": "a.pdf", "file_data": "data:application/pdf;base64,JVBERi0="}}),
            json!({"type": "file", "file": {"filename": "a.pdf", "file_data": "https://x.test/a.pdf"}}),
            json!({"type": "image_url", "image_url": {"url": "data:application/pdf;base64,JVBERi0="}}),
        ] {
            let s = size(part.clone());
            assert_eq!(s.files, 1, "{part}");
            assert_eq!(s.worst_tokens(100_000, None), 100_000, "{part}");
        }
        // A text file inline is sized by its bytes; an image at the per-image maximum.
        let txt = size(
            json!({"type": "file", "file": {"filename": "a.txt", "file_data": "data:text/plain;base64,aGVsbG8="}}),
        );
        assert_eq!(
            (txt.files, txt.worst_tokens(100_000, None)),
            (0, base + IMAGE_TOKENS)
        );
        let img = size(json!({"type": "image_url", "image_url": {"url": "https://x.test/a.png"}}));
        assert_eq!(img.worst_tokens(100_000, None), base + IMAGE_TOKENS);
        let big_images = MediaMaxTokens {
            image: Some(3_800),
            ..Default::default()
        };
        assert_eq!(img.worst_tokens(100_000, Some(&big_images)), base + 3_800);
        // Never less than what is known, never past the context for what is not.
        assert_eq!(video.worst_tokens(10, None), base.max(10));
    }

    #[test]
    fn every_family_lowers_a_max_tokens_past_the_endpoint_to_its_maximum() {
        use super::testutil::built;
        use serde_json::json;
        // (model, its endpoint's max_completion_tokens, where the family puts the budget)
        let cases = [
            ("openai/gpt-4o-mini", 16384, "/max_tokens"),
            ("anthropic/claude-3.5-haiku", 8192, "/max_tokens"),
            (
                "google/gemini-2.0-flash-001",
                8192,
                "/generationConfig/maxOutputTokens",
            ),
        ];
        for (model, most, at) in cases {
            let ask = |n: u64| {
                let (_, body) = built(
                    model,
                    json!({"model": model, "max_tokens": n, "messages": [{"role": "user", "content": "hi"}]}),
                );
                body.pointer(at).and_then(Value::as_u64)
            };
            assert_eq!(ask(32000), Some(most), "{model}: lowered");
            assert_eq!(ask(100), Some(100), "{model}: within the limit, as asked");
        }
    }

    #[test]
    fn upstream_errors_map_to_openrouter_codes() {
        let e = upstream_error("groq", 429, br#"{"error":{"message":"slow"}}"#, Some("12"));
        assert_eq!((e.status(), e.retry_after_secs()), (429, Some(12)));
        // Gemini says how long to wait in its RetryInfo detail, not in a header (issue 23).
        let body = std::fs::read("tests/fixtures/gemini/error/error-429.json").unwrap();
        let e = upstream_error("google-ai-studio", 429, &body, None);
        assert_eq!((e.status(), e.retry_after_secs()), (429, Some(37)));
        assert_eq!(e.headers(), vec![("Retry-After", "37".to_string())]);
        let e = upstream_error("google-ai-studio", 429, &body, Some("5"));
        assert_eq!(e.retry_after_secs(), Some(5), "the header wins");
        assert!(e.is_retryable());
        let e = upstream_error("openai", 500, b"<html>oops</html>", None);
        assert_eq!(e.status(), 502);
        let raw = e.body().error.metadata.and_then(|m| m.raw);
        assert_eq!(raw.as_deref(), Some("<html>oops</html>"));
        let e = upstream_error(
            "anthropic",
            400,
            br#"{"type":"error","error":{"type":"invalid_request_error","message":"bad"}}"#,
            None,
        );
        assert_eq!(e.status(), 400);
        assert!(e.to_string().contains("bad"));
        assert!(!e.is_retryable());
        assert_eq!(upstream_error("x", 504, b"", None).status(), 408);
    }

    #[test]
    fn a_google_400_for_a_bad_api_key_is_the_endpoint_failing() {
        let bad_key = br#"{"error":{"code":400,"message":"API key not valid. Please pass a valid API key.","status":"INVALID_ARGUMENT","details":[{"@type":"type.googleapis.com/google.rpc.ErrorInfo","reason":"API_KEY_INVALID","domain":"googleapis.com"}]}}"#;
        let e = upstream_error("google-ai-studio", 400, bad_key, None);
        assert_eq!(e.status(), 503);
        assert!(e.is_retryable());
        assert!(!e.to_string().contains("API key not valid"));
        // Only the structured reason counts, not a message that echoes the request.
        let echoed = br#"{"error":{"code":400,"message":"Invalid value API_KEY_INVALID","status":"INVALID_ARGUMENT"}}"#;
        assert_eq!(
            upstream_error("google-ai-studio", 400, echoed, None).status(),
            400
        );
    }

    #[test]
    fn data_urls_and_mimes() {
        assert_eq!(
            parse_data_url("data:image/png;base64,AAA"),
            Some(("image/png", "AAA"))
        );
        assert_eq!(parse_data_url("https://x/y.png"), None);
        assert_eq!(
            media::mime_from_name("https://x/y.WEBP?size=2"),
            Some("image/webp")
        );
    }

    #[test]
    fn reasoning_settings() {
        let req = |v: serde_json::Value| ChatRequest::parse(v.to_string().as_bytes()).unwrap();
        let base =
            serde_json::json!({"model": "m", "messages": [{"role": "user", "content": "x"}]});
        let mut v = base.clone();
        v["reasoning"] = serde_json::json!({"effort": "high"});
        let r = Reasoning::from_request(&req(v)).unwrap();
        assert_eq!(r.budget(10_000), 8_000);
        let mut v = base.clone();
        v["reasoning_effort"] = serde_json::json!("low");
        assert_eq!(Reasoning::from_request(&req(v)).unwrap().budget(1000), 1024);
        let mut v = base.clone();
        v["reasoning"] = serde_json::json!({"enabled": false});
        assert!(Reasoning::from_request(&req(v)).is_none());
        let mut v = base.clone();
        v["reasoning"] = serde_json::json!({"effort": "none"});
        assert!(Reasoning::from_request(&req(v)).is_none());
        let mut v = base.clone();
        v["reasoning"] = serde_json::json!({"effort": "xhigh"});
        assert_eq!(
            Reasoning::from_request(&req(v)).unwrap().budget(10_000),
            9_500
        );
        assert!(Reasoning::from_request(&req(base)).is_none());
    }

    #[test]
    fn finish_reasons() {
        assert_eq!(normalize_finish_reason("end_turn"), "stop");
        assert_eq!(normalize_finish_reason("MAX_TOKENS"), "length");
        assert_eq!(normalize_finish_reason("tool_use"), "tool_calls");
        assert_eq!(normalize_finish_reason("SAFETY"), "content_filter");
        assert_eq!(normalize_finish_reason("weird"), "error");
    }
}
