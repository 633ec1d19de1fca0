//! OpenAI's chat completions wire format, spoken by OpenAI and by most other vendors
//! (Groq, Together, DeepSeek, Mistral, vLLM, ...). The request passes through nearly
//! as sent, but with only the fields the endpoint takes (see [`keeps`]), since strict
//! hosts refuse anything else ("Unrecognized request argument supplied"); replies
//! are re-stamped with our identity.

use std::borrow::Cow;

use serde::de::IgnoredAny;
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{json, Value};

use super::stream::Sent;

use super::{
    ended_early, invalid_event, invalid_reply, normalize_finish_reason, stream_error,
    strip_gateway_fields, ErrorEvent, Target, UpstreamRequest,
};
use crate::api::chat::JsonOut;
use crate::api::{ChatChunk, ChatCompletion, ChatRequest, ChunkHead, GenerationMeta, Usage};
use crate::error::{Error, Result};

/// The request body OpenAI's chat completions API defines, less `service_tier`: a
/// `priority` tier is billed at about twice the catalogue's price, which the gateway
/// would charge at the catalogue's, so every request goes at the default tier.
const SCHEMA: [&str; 30] = [
    "model",
    "messages",
    "stream",
    "stream_options",
    "temperature",
    "top_p",
    "n",
    "stop",
    "max_tokens",
    "max_completion_tokens",
    "presence_penalty",
    "frequency_penalty",
    "logit_bias",
    "logprobs",
    "top_logprobs",
    "user",
    "seed",
    "tools",
    "tool_choice",
    "parallel_tool_calls",
    "response_format",
    "reasoning_effort",
    "metadata",
    "store",
    "modalities",
    "audio",
    "prediction",
    "web_search_options",
    "verbosity",
    "prompt_cache_key",
];

/// Sampling parameters OpenRouter sends an endpoint only if it lists them in its
/// `supported_parameters` ("providers receive only the parameters they support"); a
/// reasoning model refuses `temperature`, OpenAI refuses `top_k`.
const OPTIONAL: [&str; 14] = [
    "temperature",
    "top_p",
    "top_k",
    "min_p",
    "top_a",
    "frequency_penalty",
    "presence_penalty",
    "repetition_penalty",
    "seed",
    "logit_bias",
    "logprobs",
    "top_logprobs",
    "stop",
    "parallel_tool_calls",
];

/// Whether a top-level field goes to an endpoint that supports `supported`: a sampling
/// parameter only if supported; another field of OpenAI's schema always; anything else
/// (`session_id`, a host's own extension) only if the endpoint lists it.
pub fn keeps(field: &str, supported: &[String]) -> bool {
    let listed = || supported.iter().any(|s| s == field);
    if field == "reasoning_effort" {
        // OpenRouter's `reasoning`, for the models that reason.
        return supported.iter().any(|s| s == "reasoning");
    }
    if OPTIONAL.contains(&field) {
        listed()
    } else {
        SCHEMA.contains(&field) || listed()
    }
}

/// The fields OpenAI's schema gives a message, and a content part (besides the part's
/// own payload, named by its type).
const MESSAGE_FIELDS: [&str; 8] = [
    "role",
    "content",
    "name",
    "tool_calls",
    "tool_call_id",
    "refusal",
    "audio",
    "function_call",
];

/// A message as OpenAI's schema has it: what the gateway or another family uses
/// (`reasoning_details`, `reasoning`, `cache_control`) is left out, unless the endpoint
/// lists the field in its `supported_parameters` (a host that takes it back).
fn trim_message(m: &mut Value, supported: &[String]) {
    let listed = |k: &str| supported.iter().any(|s| s == k);
    let Some(o) = m.as_object_mut() else {
        return;
    };
    o.retain(|k, _| MESSAGE_FIELDS.contains(&k.as_str()) || listed(k));
    let parts = o.get_mut("content").and_then(Value::as_array_mut);
    for part in parts.into_iter().flatten() {
        if let Some(p) = part.as_object_mut() {
            let own = p
                .get("type")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string();
            p.retain(|k, _| k == "type" || *k == own || listed(k));
        }
    }
}

/// `stream`: whether to ask for a stream (the caller's wish, or the gateway's when it
/// gathers a stream into the one reply its caller wants).
/// OpenAI's own web search for a search model (`web_search_options`).
fn web_search_options(n: &crate::api::native_search::NativeSearch) -> Value {
    let mut o = json!({"search_context_size": n.params.search_context_size.as_str()});
    if let Some(at) = &n.params.user_location {
        let at = json!({"type": "approximate", "approximate": at});
        crate::api::set_field(&mut o, "user_location", at);
    }
    o
}

pub fn build_request(target: &Target, req: &ChatRequest, stream: bool) -> Result<UpstreamRequest> {
    let mut body = match serde_json::to_value(req) {
        Ok(Value::Object(m)) => m,
        _ => {
            return Err(Error::Internal(
                "request did not serialize to an object".into(),
            ))
        }
    };
    strip_gateway_fields(&mut body);
    // OpenRouter's `reasoning` object is `reasoning_effort` in OpenAI's dialect.
    if let Some(r) = body.remove("reasoning") {
        if let Some(effort) = r
            .get("effort")
            .filter(|_| !body.contains_key("reasoning_effort"))
        {
            body.insert("reasoning_effort".into(), effort.clone());
        }
    }
    body.remove("include_reasoning");
    let supported = target
        .endpoint
        .supported_parameters
        .as_ref()
        .unwrap_or(&target.model.supported_parameters);
    body.retain(|k, _| keeps(k, supported));
    if let Some(n) = crate::api::native_search::sent(req) {
        body.insert("web_search_options".into(), web_search_options(n));
    }
    // A tier's endpoint is asked for its tier; any other goes at the default one.
    if let Some(t) = target.endpoint.service_tier {
        body.insert("service_tier".into(), json!(t.as_str()));
    }
    if let Some(Value::Array(messages)) = body.get_mut("messages") {
        for m in messages {
            trim_message(m, supported);
        }
    }
    body.insert("model".into(), json!(target.endpoint.upstream_model));
    let ceiling = target.endpoint.output_ceiling(target.model);
    for field in ["max_tokens", "max_completion_tokens"] {
        if let Some(v) = body.get_mut(field) {
            if v.as_u64().is_some_and(|asked| asked > ceiling) {
                *v = json!(ceiling);
            }
        }
    }
    if stream {
        body.insert("stream".into(), json!(true));
        // Ask for the usage chunk so that streams are billed on real counts.
        let opts = body.entry("stream_options").or_insert_with(|| json!({}));
        if let Value::Object(o) = opts {
            o.insert("include_usage".into(), json!(true));
        }
    }
    let mut headers = vec![(
        "Authorization".to_string(),
        format!("Bearer {}", target.key()?),
    )];
    headers.extend(target.extra_headers());
    UpstreamRequest::post_json(
        format!("{}/chat/completions", target.base_url),
        &body,
        headers,
    )
}

pub fn parse_response(
    provider: &str,
    meta: &GenerationMeta,
    body: &[u8],
) -> Result<ChatCompletion> {
    let mut c: ChatCompletion =
        serde_json::from_slice(body).map_err(|e| invalid_reply(provider, e, body))?;
    if c.choices.is_empty() {
        return Err(invalid_reply(provider, "no choices", body));
    }
    for choice in &mut c.choices {
        if let Some(native) = choice.finish_reason.take() {
            choice.finish_reason = Some(normalize_finish_reason(&native).to_string());
            choice.native_finish_reason = Some(native);
        }
    }
    let fresh = meta.completion(c.choices, c.usage);
    Ok(ChatCompletion {
        system_fingerprint: c.system_fingerprint,
        service_tier: c.service_tier,
        ..fresh
    })
}

/// Translator for OpenAI-format stream events.
#[derive(Debug, Default)]
pub struct StreamState {
    provider: String,
    done: bool,
    finished: bool,
}

impl StreamState {
    pub fn new(provider: &str) -> Self {
        StreamState {
            provider: provider.to_string(),
            ..Default::default()
        }
    }

    /// One event's data; chunks it completes go to `out`.
    pub fn event(&mut self, data: &str, out: &mut Vec<ChatChunk>) -> Result<()> {
        let data = data.trim();
        if data == "[DONE]" {
            self.done = true;
        }
        if data.is_empty() || self.done {
            return Ok(());
        }
        // Straight into the typed chunk; only an event that may carry an error is read
        // for it first (twice the work, and rare).
        if data.contains("\"error\"") {
            #[derive(Deserialize)]
            struct Errored {
                #[serde(default)]
                error: Option<ErrorEvent>,
            }
            let e: Errored = serde_json::from_slice(data.as_bytes())
                .map_err(|e| invalid_event(&self.provider, e, data))?;
            if let Some(err) = e.error {
                return Err(stream_error(&self.provider, &err));
            }
        }
        let chunk: ChatChunk = serde_json::from_slice(data.as_bytes())
            .map_err(|e| invalid_event(&self.provider, e, data))?;
        self.finished |= chunk.choices.iter().any(|c| c.finish_reason.is_some());
        out.push(chunk);
        Ok(())
    }

    /// The stream ended: it must have said it was done.
    pub fn end(&mut self, _out: &mut Vec<ChatChunk>) -> Result<()> {
        if self.done || self.finished {
            Ok(())
        } else {
            Err(ended_early(&self.provider))
        }
    }

    pub fn provider(&self) -> &str {
        &self.provider
    }
}

impl StreamState {
    /// The chat surface's fast lane: a chunk the client can have as the upstream wrote
    /// it goes out re-stamped (our identity, the finish reason normalised), its deltas
    /// copied byte for byte, with only what billing needs read. Returns false, having
    /// written nothing, for whatever needs the typed path: `[DONE]`, errors, a delta
    /// with a field the chat schema does not have (or names otherwise, as
    /// `reasoning_content`), JSON spread over several lines.
    pub fn restamp(
        &mut self,
        data: &str,
        head: &ChunkHead,
        sent: &mut Sent,
        usage: &mut Option<Usage>,
        out: &mut Vec<u8>,
    ) -> bool {
        if self.done
            || memchr::memmem::find(data.as_bytes(), b"\"error\"").is_some()
            || memchr::memchr2(b'\n', b'\r', data.as_bytes()).is_some()
        {
            return false;
        }
        let Ok(mut view) = serde_json::from_slice::<ChunkView>(data.as_bytes()) else {
            return false;
        };
        let mut deltas = Vec::with_capacity(view.choices.len());
        for c in &view.choices {
            match serde_json::from_slice::<DeltaView>(c.delta.get().as_bytes()) {
                // Tool calls go through the typed chunks, where each is numbered apart.
                Ok(d) if d.tool_calls.is_some() => return false,
                Ok(d) => deltas.push(d),
                Err(_) => return false,
            }
        }
        if let Some(u) = view.usage.take() {
            *usage = Some(u);
        }
        if let Some(t) = view.service_tier.as_deref() {
            sent.tier(t);
        }
        if view.choices.is_empty() {
            return true;
        }
        for d in &deltas {
            let calls = d.tool_calls.iter().flatten().map(|t| {
                let f = t.function.as_ref();
                (
                    f.and_then(|f| f.name.as_deref()),
                    f.and_then(|f| f.arguments.as_deref()),
                )
            });
            sent.delta(
                [d.content.as_deref(), d.reasoning.as_deref()],
                d.images.is_some(),
                calls,
            );
        }
        head.write_fields(out, |out| self.write_choices(&view, sent, out));
        true
    }

    /// The re-stamped chunk's own fields after its head: the fingerprint, and each
    /// choice with its delta's bytes as they came and the finish reason normalised.
    fn write_choices(&mut self, view: &ChunkView<'_>, sent: &mut Sent, out: &mut Vec<u8>) -> bool {
        let mut w = JsonOut::new(out);
        w.raw("{");
        if let Some(fp) = &view.system_fingerprint {
            w.key_str("system_fingerprint", fp);
            w.raw(",");
        }
        w.raw("\"choices\":[");
        for (i, c) in view.choices.iter().enumerate() {
            if i > 0 {
                w.raw(",");
            }
            w.raw("{\"index\":");
            w.value(&c.index);
            w.raw(",\"delta\":");
            w.raw(c.delta.get());
            w.raw(",\"finish_reason\":");
            let native = match &c.finish_reason {
                Some(native) => {
                    self.finished = true;
                    w.value(sent.finish(native));
                    c.native_finish_reason.as_ref().or(Some(native))
                }
                None => {
                    w.raw("null");
                    c.native_finish_reason.as_ref()
                }
            };
            if let Some(native) = native {
                w.raw(",");
                w.key_str("native_finish_reason", native);
            }
            if let Some(lp) = c.logprobs {
                w.raw(",\"logprobs\":");
                w.raw(lp.get());
            }
            w.raw("}");
        }
        w.raw("]}");
        w.ok
    }
}

/// A chunk as the fast lane reads it: what the typed [`ChatChunk`] requires, so that
/// what one refuses the other does too, and the choices' deltas left unread.
#[derive(Deserialize)]
struct ChunkView<'a> {
    #[serde(borrow)]
    #[allow(dead_code)]
    id: Cow<'a, str>,
    #[allow(dead_code)]
    created: u64,
    #[serde(borrow)]
    #[allow(dead_code)]
    model: Cow<'a, str>,
    #[serde(borrow)]
    choices: Vec<ChoiceView<'a>>,
    #[serde(default)]
    usage: Option<Usage>,
    #[serde(default, borrow)]
    system_fingerprint: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    service_tier: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct ChoiceView<'a> {
    index: u32,
    #[serde(borrow)]
    delta: &'a RawValue,
    #[serde(default, borrow)]
    finish_reason: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    native_finish_reason: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    logprobs: Option<&'a RawValue>,
}

/// A delta with only the chat schema's fields (as [`crate::api::Delta`] names them),
/// read for what it bills.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DeltaView<'a> {
    #[serde(default, borrow)]
    #[allow(dead_code)]
    role: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    content: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    reasoning: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    tool_calls: Option<Vec<CallView<'a>>>,
    #[serde(default)]
    images: Option<IgnoredAny>,
    #[serde(default)]
    #[allow(dead_code)]
    annotations: Option<IgnoredAny>,
    #[serde(default)]
    #[allow(dead_code)]
    reasoning_details: Option<IgnoredAny>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CallView<'a> {
    #[allow(dead_code)]
    index: u32,
    #[serde(default, borrow)]
    #[allow(dead_code)]
    id: Option<Cow<'a, str>>,
    #[serde(rename = "type", default, borrow)]
    #[allow(dead_code)]
    kind: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    function: Option<FunctionView<'a>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FunctionView<'a> {
    #[serde(default, borrow)]
    name: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    arguments: Option<Cow<'a, str>>,
}

/// OpenAI's chat completions and every vendor that copies it.
pub struct OpenAiCompat;

impl super::Family for OpenAiCompat {
    fn native_search(&self) -> Option<crate::api::native_search::NativeTool> {
        Some(crate::api::native_search::NativeTool {
            allowed_domains: false,
            excluded_domains: false,
            per_request: true,
        })
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
        Some(super::stream::Translator::OpenAi(StreamState::new(
            &target.provider.slug,
        )))
    }

    fn build_embeddings(
        &self,
        target: &Target,
        req: &crate::api::embeddings::EmbeddingsRequest,
    ) -> Result<UpstreamRequest> {
        super::embeddings::openai_request(target, req)
    }

    fn parse_embeddings(
        &self,
        provider: &str,
        _: &crate::api::embeddings::EmbeddingsRequest,
        body: &[u8],
    ) -> Result<(Vec<crate::api::embeddings::EmbeddingItem>, Option<u64>)> {
        super::embeddings::openai_items(provider, body)
    }
}

#[cfg(test)]
mod tests;
