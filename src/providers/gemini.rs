//! Google's Gemini API (`models/{model}:generateContent`, and
//! `:streamGenerateContent?alt=sse`): roles user/model, `systemInstruction`,
//! `generationConfig`, function declarations and calls, inline images, usage metadata,
//! finish reasons and safety blocks.

use std::borrow::Cow;
use std::collections::HashMap;

use serde_json::{json, Map, Value};

use super::media::{self, Media, Source};
use super::{
    ended_early, invalid_event, invalid_reply, parse_arguments, stream_error, wants_json,
    Reasoning, Target, UpstreamRequest,
};
use crate::api::{
    AssistantMessage, ChatChunk, ChatCompletion, ChatRequest, Choice, CompletionTokensDetails,
    ContentPart, Delta, FunctionCall, FunctionCallDelta, GenerationMeta, Message,
    PromptTokensDetails, ToolCall, ToolCallDelta, ToolChoice, Usage,
};
use crate::error::{Error, Result};

/// `stream`: whether to ask for a stream (the caller's wish, or the gateway's when it
/// gathers a stream into the one reply its caller wants).
pub fn build_request(target: &Target, req: &ChatRequest, stream: bool) -> Result<UpstreamRequest> {
    let mut body = Map::new();
    let needs_sigs = needs_signatures(&target.endpoint.upstream_model);
    let (system, contents) = convert_messages(&req.messages, needs_sigs)?;
    if !system.is_empty() {
        body.insert("systemInstruction".into(), json!({"parts": system}));
    }
    body.insert("contents".into(), Value::Array(contents));

    let mut gen = Map::new();
    let mut set = |k: &str, v: Option<Value>| {
        if let Some(v) = v {
            gen.insert(k.into(), v);
        }
    };
    set("temperature", req.temperature.map(|t| json!(t)));
    set("topP", req.top_p.map(|t| json!(t)));
    set("topK", req.top_k.map(|t| json!(t)));
    let max_output = target
        .endpoint
        .cap_output(target.model, req.max_output_tokens());
    set("maxOutputTokens", max_output.map(|t| json!(t)));
    set(
        "stopSequences",
        req.stop.as_ref().map(|s| json!(s.to_vec())),
    );
    for (ours, theirs) in [
        ("presence_penalty", "presencePenalty"),
        ("frequency_penalty", "frequencyPenalty"),
        ("seed", "seed"),
    ] {
        set(theirs, req.extra.get(ours).cloned());
    }
    if wants_json(req) {
        set("responseMimeType", Some(json!("application/json")));
        set(
            "responseJsonSchema",
            req.json_schema_format().map(|(_, schema)| schema),
        );
    }
    if let Some(r) = Reasoning::from_request(req) {
        let budget = r.budget(
            max_output
                .or(target.endpoint.max_completion_tokens)
                .unwrap_or(8192),
        );
        set(
            "thinkingConfig",
            Some(json!({"thinkingBudget": budget, "includeThoughts": !r.exclude})),
        );
    }
    if req.wants_image_output() {
        let modalities: Vec<Value> = req
            .extra
            .get("modalities")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .map(|m| json!(m.to_ascii_uppercase()))
            .collect();
        set("responseModalities", Some(Value::Array(modalities)));
        if let Some(ic) = req.extra.get("image_config").and_then(Value::as_object) {
            let mut cfg = Map::new();
            for (ours, theirs) in [("aspect_ratio", "aspectRatio"), ("image_size", "imageSize")] {
                if let Some(v) = ic.get(ours) {
                    cfg.insert(theirs.into(), v.clone());
                }
            }
            set("imageConfig", Some(Value::Object(cfg)));
        }
    }
    if !gen.is_empty() {
        body.insert("generationConfig".into(), Value::Object(gen));
    }

    let decls: Vec<Value> = req
        .tools
        .iter()
        .flatten()
        .map(|t| {
            let mut d = json!({"name": t.function.name});
            if let Some(desc) = &t.function.description {
                crate::api::set_field(&mut d, "description", json!(desc));
            }
            if let Some(p) = &t.function.parameters {
                crate::api::set_field(&mut d, "parametersJsonSchema", p.clone());
            }
            d
        })
        .collect();
    if !decls.is_empty() {
        body.insert("tools".into(), json!([{"functionDeclarations": decls}]));
        if let Some(cfg) = req.tool_choice.as_ref().map(convert_tool_choice) {
            body.insert("toolConfig".into(), json!({"functionCallingConfig": cfg}));
        }
    }

    let action = if stream {
        "streamGenerateContent?alt=sse"
    } else {
        "generateContent"
    };
    let mut headers = vec![("x-goog-api-key".to_string(), target.key()?.to_string())];
    headers.extend(target.extra_headers());
    UpstreamRequest::post_json(
        format!(
            "{}/models/{}:{action}",
            target.base_url, target.endpoint.upstream_model
        ),
        &Value::Object(body),
        headers,
    )
}

fn convert_tool_choice(tc: &ToolChoice) -> Value {
    match tc {
        ToolChoice::Auto => json!({"mode": "AUTO"}),
        ToolChoice::None => json!({"mode": "NONE"}),
        ToolChoice::Required => json!({"mode": "ANY"}),
        ToolChoice::Function(name) => json!({"mode": "ANY", "allowedFunctionNames": [name]}),
    }
}

/// A content part as a Gemini part: text, or media inline (`inlineData`) or by URI
/// (`fileData`: YouTube videos, Files API uploads, and what the edge did not inline).
fn part(p: &ContentPart) -> Option<Value> {
    if p.kind == "text" {
        return Some(json!({"text": p.text.clone().unwrap_or_default()}));
    }
    let m = Media::of(p)?;
    Some(match m.source {
        Source::Inline(data) => json!({"inlineData": {"mimeType": m.mime, "data": data}}),
        Source::Url(url) if media::is_youtube(url) => json!({"fileData": {"fileUri": url}}),
        Source::Url(url) => json!({"fileData": {"mimeType": m.mime, "fileUri": url}}),
    })
}

fn parts(content: &[ContentPart]) -> Vec<Value> {
    content.iter().filter_map(part).collect()
}

/// The format OpenRouter names Gemini's reasoning items with.
const REASONING_FORMAT: &str = "google-gemini-v1";

/// What Gemini's documentation says to send as the signature of a function call that
/// has none (a turn written by another model, or by the caller).
const NO_SIGNATURE: &str = "skip_thought_signature_validator";

/// Gemini 3 and later refuse a function call in the current turn without its thought
/// signature; earlier models take one but do not need it.
fn needs_signatures(upstream_model: &str) -> bool {
    let version = upstream_model
        .strip_prefix("gemini-")
        .and_then(|v| v.split(['.', '-']).next())
        .and_then(|v| v.parse::<u32>().ok());
    version.is_none_or(|v| v >= 3)
}

/// The thought signatures a caller sends back in an assistant message's
/// `reasoning_details`: (the tool call ID it belongs to, if any; the signature).
fn signatures(details: Option<&Value>) -> Vec<(Option<&str>, &str)> {
    details
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|d| d.get("format").and_then(Value::as_str) == Some(REASONING_FORMAT))
        .filter(|d| d.get("type").and_then(Value::as_str) == Some("reasoning.encrypted"))
        .filter_map(|d| {
            let data = d.get("data").and_then(Value::as_str)?;
            Some((d.get("id").and_then(Value::as_str), data))
        })
        .collect()
}

/// An assistant message as a model turn, thought signatures back where Gemini put them:
/// on their function calls, and one without a call on the turn's last part. A turn
/// whose calls carry none gets Gemini's placeholder on its first call when the model
/// needs signatures.
fn model_turn<'m>(
    m: &'m Message,
    content: &[ContentPart],
    needs_sigs: bool,
    names: &mut HashMap<&'m str, &'m str>,
) -> Result<Vec<Value>> {
    let sigs = signatures(m.extra.get("reasoning_details"));
    let mut ps = parts(content);
    ps.retain(|p| p.get("text").is_none_or(|t| t != ""));
    if let (Some(last), Some((_, sig))) = (ps.last_mut(), sigs.iter().find(|(id, _)| id.is_none()))
    {
        crate::api::set_field(last, "thoughtSignature", json!(sig));
    }
    let mut signed = false;
    for call in m.tool_calls.iter().flatten() {
        names.insert(&call.id, &call.function.name);
        let mut p = json!({"functionCall": {
            "name": call.function.name,
            "args": parse_arguments(&call.function.arguments)?,
        }});
        if let Some((_, sig)) = sigs.iter().find(|(id, _)| *id == Some(call.id.as_str())) {
            crate::api::set_field(&mut p, "thoughtSignature", json!(sig));
            signed = true;
        }
        ps.push(p);
    }
    if needs_sigs && !signed {
        if let Some(first) = ps.iter_mut().find(|p| p.get("functionCall").is_some()) {
            crate::api::set_field(first, "thoughtSignature", json!(NO_SIGNATURE));
        }
    }
    Ok(ps)
}

/// OpenAI messages → (system parts, Gemini contents). Tool results need the function's
/// name, which Gemini keys them by: it comes from the assistant turn that called it.
fn convert_messages(messages: &[Message], needs_sigs: bool) -> Result<(Vec<Value>, Vec<Value>)> {
    let mut system = Vec::new();
    let mut names: HashMap<&str, &str> = HashMap::new();
    let mut out: Vec<(&str, Vec<Value>)> = Vec::new();
    for m in messages {
        let content = m.content.as_ref().map(|c| c.parts()).unwrap_or_default();
        let (role, ps) = match m.role.as_str() {
            "system" | "developer" => {
                system.extend(parts(&content));
                continue;
            }
            "assistant" => ("model", model_turn(m, &content, needs_sigs, &mut names)?),
            "tool" => {
                let id = m.tool_call_id.as_deref().unwrap_or_default();
                let name = names
                    .get(id)
                    .copied()
                    .or(m.name.as_deref())
                    .ok_or_else(|| {
                        Error::bad_request(format!(
                            "tool message {id:?} answers no earlier tool call"
                        ))
                    })?;
                let text = m.text();
                let response = match serde_json::from_slice::<Value>(text.as_bytes()) {
                    Ok(v @ Value::Object(_)) => v,
                    _ => json!({"content": text}),
                };
                (
                    "user",
                    vec![json!({"functionResponse": {"name": name, "response": response}})],
                )
            }
            _ => ("user", parts(&content)),
        };
        if ps.is_empty() {
            continue;
        }
        match out.last_mut() {
            Some((r, p)) if *r == role => p.extend(ps),
            _ => out.push((role, ps)),
        }
    }
    if out.is_empty() {
        return Err(Error::bad_request(
            "at least one user or assistant message is required",
        ));
    }
    Ok((
        system,
        out.into_iter()
            .map(|(role, parts)| json!({"role": role, "parts": parts}))
            .collect(),
    ))
}

/// A `GenerateContentResponse` (or one stream event), read with its strings borrowed
/// where they have no escapes: only what the translation uses.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct Reply<'a> {
    #[serde(default, borrow)]
    candidates: Option<Vec<Candidate<'a>>>,
    #[serde(default)]
    usage_metadata: Option<UsageMetadata>,
    #[serde(default, borrow)]
    prompt_feedback: Option<Feedback<'a>>,
    #[serde(default)]
    error: Option<Value>,
}

#[derive(Debug, Default, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct Candidate<'a> {
    #[serde(default, borrow)]
    content: Option<ReplyContent<'a>>,
    #[serde(default, borrow)]
    finish_reason: Option<Cow<'a, str>>,
}

#[derive(Debug, Default, serde::Deserialize)]
struct ReplyContent<'a> {
    #[serde(default, borrow)]
    parts: Option<Vec<ReplyPart<'a>>>,
}

#[derive(Debug, Default, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct ReplyPart<'a> {
    #[serde(default, borrow)]
    text: Option<Cow<'a, str>>,
    #[serde(default)]
    thought: Option<bool>,
    #[serde(default, borrow)]
    thought_signature: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    function_call: Option<ReplyCall<'a>>,
    #[serde(default, borrow)]
    inline_data: Option<ReplyBlob<'a>>,
}

#[derive(Debug, Default, serde::Deserialize)]
struct ReplyCall<'a> {
    #[serde(default, borrow)]
    name: Option<Cow<'a, str>>,
    #[serde(default)]
    args: Option<Value>,
}

#[derive(Debug, Default, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct ReplyBlob<'a> {
    #[serde(default, borrow)]
    mime_type: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    data: Option<Cow<'a, str>>,
}

#[derive(Debug, Default, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct Feedback<'a> {
    #[serde(default, borrow)]
    block_reason: Option<Cow<'a, str>>,
}

#[derive(Debug, Default, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct UsageMetadata {
    #[serde(default, deserialize_with = "null_as_zero")]
    prompt_token_count: u64,
    #[serde(default, deserialize_with = "null_as_zero")]
    tool_use_prompt_token_count: u64,
    #[serde(default, deserialize_with = "null_as_zero")]
    candidates_token_count: u64,
    #[serde(default, deserialize_with = "null_as_zero")]
    thoughts_token_count: u64,
    #[serde(default, deserialize_with = "null_as_zero")]
    cached_content_token_count: u64,
    #[serde(default)]
    candidates_tokens_details: Option<Vec<ModalityCount>>,
}

#[derive(Debug, Default, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct ModalityCount {
    #[serde(default)]
    modality: Option<String>,
    #[serde(default)]
    token_count: Option<u64>,
}

/// A count that may come as `null`.
fn null_as_zero<'de, D: serde::Deserializer<'de>>(d: D) -> std::result::Result<u64, D::Error> {
    Ok(<Option<u64> as serde::Deserialize>::deserialize(d)?.unwrap_or(0))
}

fn usage_from(u: &UsageMetadata) -> Usage {
    let thoughts = u.thoughts_token_count;
    let mut usage = Usage::new(
        u.prompt_token_count
            .saturating_add(u.tool_use_prompt_token_count),
        u.candidates_token_count.saturating_add(thoughts),
    );
    if u.cached_content_token_count > 0 {
        usage.prompt_tokens_details = Some(PromptTokensDetails {
            cached_tokens: u.cached_content_token_count,
            ..Default::default()
        });
    }
    let images = u
        .candidates_tokens_details
        .iter()
        .flatten()
        .filter(|d| d.modality.as_deref() == Some("IMAGE"))
        .fold(0u64, |n, d| n.saturating_add(d.token_count.unwrap_or(0)));
    if thoughts > 0 || images > 0 {
        usage.completion_tokens_details = Some(CompletionTokensDetails {
            reasoning_tokens: thoughts,
            image_tokens: (images > 0).then_some(images),
        });
    }
    usage
}

/// What the first candidate of a response (or of one stream event) holds.
#[derive(Debug, Default)]
struct Pieces {
    text: String,
    thought: String,
    /// Function calls: (name, arguments as JSON, thought signature).
    calls: Vec<(String, String, Option<String>)>,
    /// Generated images as OpenRouter returns them (`image_url` items with data URLs).
    images: Vec<Value>,
    /// A thought signature on a part that is not a function call.
    signature: Option<String>,
}

impl Pieces {
    fn of(response: &Reply) -> Pieces {
        let mut out = Pieces::default();
        let parts = response
            .candidates
            .as_deref()
            .and_then(<[Candidate]>::first)
            .and_then(|c| c.content.as_ref())
            .and_then(|c| c.parts.as_deref());
        for p in parts.into_iter().flatten() {
            let signature = p.thought_signature.as_deref().map(str::to_string);
            let thought = p.thought == Some(true);
            if let Some(fc) = &p.function_call {
                let args = fc
                    .args
                    .as_ref()
                    .map_or_else(|| "{}".to_string(), Value::to_string);
                let name = fc.name.as_deref().unwrap_or_default().to_string();
                out.calls.push((name, args, signature));
                continue;
            }
            if signature.is_some() {
                out.signature = signature;
            }
            if let Some(t) = &p.text {
                if thought {
                    out.thought.push_str(t);
                } else {
                    out.text.push_str(t);
                }
            } else if let Some(img) = p.inline_data.as_ref().filter(|_| !thought) {
                let mime = img.mime_type.as_deref().unwrap_or("image/png");
                out.images.push(json!({"type": "image_url",
                    "image_url": {"url": format!("data:{mime};base64,{}",
                        img.data.as_deref().unwrap_or_default())}}));
            }
        }
        out
    }

    /// OpenRouter's reasoning items: the thought text, then each signature (a call's
    /// with the call's ID), numbered from `next` on; the thought text at `thought_index`
    /// when given (a stream keeps one index for all its pieces).
    fn details(&self, ids: &[String], thought_index: Option<u32>, next: &mut u32) -> Vec<Value> {
        let mut take = || {
            let i = *next;
            *next = next.saturating_add(1);
            i
        };
        let mut out = Vec::new();
        if !self.thought.is_empty() {
            let index = thought_index.unwrap_or_else(&mut take);
            out.push(json!({"type": "reasoning.text", "text": self.thought,
                "format": REASONING_FORMAT, "index": index}));
        }
        for ((_, _, sig), id) in self.calls.iter().zip(ids) {
            if let Some(sig) = sig {
                out.push(json!({"type": "reasoning.encrypted", "data": sig, "id": id,
                    "format": REASONING_FORMAT, "index": take()}));
            }
        }
        if let Some(sig) = &self.signature {
            out.push(json!({"type": "reasoning.encrypted", "data": sig,
                "format": REASONING_FORMAT, "index": take()}));
        }
        out
    }
}

/// Gemini's finish reason, or the block reason of a refused prompt.
fn native_finish(v: &Reply) -> Option<String> {
    v.candidates
        .as_deref()
        .and_then(<[Candidate]>::first)
        .and_then(|c| c.finish_reason.as_deref())
        .map(str::to_string)
        .or_else(|| {
            v.prompt_feedback
                .as_ref()
                .and_then(|f| f.block_reason.as_ref())
                .map(|_| "SAFETY".to_string())
        })
}

fn finish(native: &str, has_calls: bool) -> &'static str {
    match super::normalize_finish_reason(native) {
        "stop" if has_calls => "tool_calls",
        other => other,
    }
}

/// Gemini gives calls no IDs; ours are unique per generation and position.
fn call_id(gen: &str, i: usize) -> String {
    format!("call_{}_{i}", gen.rsplit('-').next().unwrap_or(gen))
}

pub fn parse_response(
    provider: &str,
    meta: &GenerationMeta,
    body: &[u8],
) -> Result<ChatCompletion> {
    let bad = |what: &str| invalid_reply(provider, what, body);
    let v: Reply = serde_json::from_slice(body).map_err(|e| bad(&e.to_string()))?;
    let native = native_finish(&v).ok_or_else(|| bad("no candidates and no block reason"))?;
    let pieces = Pieces::of(&v);
    let tool_calls: Vec<ToolCall> = pieces
        .calls
        .iter()
        .enumerate()
        .map(|(i, (name, arguments, _))| ToolCall {
            id: call_id(&meta.id, i),
            kind: "function".into(),
            function: FunctionCall {
                name: name.clone(),
                arguments: arguments.clone(),
            },
        })
        .collect();
    let ids: Vec<String> = tool_calls.iter().map(|c| c.id.clone()).collect();
    let details = pieces.details(&ids, None, &mut 0);
    let Pieces {
        text,
        thought,
        images,
        ..
    } = pieces;
    let reason = finish(&native, !tool_calls.is_empty());
    Ok(meta.completion(
        vec![Choice {
            index: 0,
            message: AssistantMessage {
                role: "assistant".into(),
                content: (!text.is_empty() || tool_calls.is_empty() && images.is_empty())
                    .then_some(text),
                refusal: None,
                reasoning: (!thought.is_empty()).then_some(thought),
                tool_calls: (!tool_calls.is_empty()).then_some(tool_calls),
                images: (!images.is_empty()).then_some(Value::Array(images)),
                reasoning_details: (!details.is_empty()).then_some(Value::Array(details)),
                ..Default::default()
            },
            finish_reason: Some(reason.into()),
            native_finish_reason: Some(native),
            logprobs: None,
        }],
        v.usage_metadata.as_ref().map(usage_from),
    ))
}

/// Each SSE event is a whole `GenerateContentResponse` holding the next piece.
#[derive(Debug, Default)]
pub struct StreamState {
    provider: String,
    /// The generation ID, from which tool-call IDs are derived.
    generation: String,
    started: bool,
    tools: usize,
    usage: Option<Usage>,
    finished: bool,
    /// The index of the thought text's reasoning item, once it has one.
    thought_index: Option<u32>,
    /// The next reasoning item's index.
    next_index: u32,
}

impl StreamState {
    pub fn new(provider: &str, generation: &str) -> Self {
        StreamState {
            provider: provider.to_string(),
            generation: generation.to_string(),
            ..Default::default()
        }
    }

    /// The stream ended: it must have given a finish reason. Then comes the usage.
    pub fn end(&mut self, out: &mut Vec<ChatChunk>) -> Result<()> {
        if !self.finished {
            return Err(ended_early(&self.provider));
        }
        if let Some(u) = self.usage.take() {
            out.push(ChatChunk::usage_only(u));
        }
        Ok(())
    }

    pub fn provider(&self) -> &str {
        &self.provider
    }

    /// The latest `usageMetadata` (Gemini reports it, growing, on every chunk).
    pub fn usage_so_far(&self) -> Option<Usage> {
        self.usage.clone()
    }

    /// One event's data (a whole `GenerateContentResponse`); its chunks go to `out`.
    pub fn event(&mut self, data: &str, out: &mut Vec<ChatChunk>) -> Result<()> {
        let v: Reply = serde_json::from_slice(data.as_bytes())
            .map_err(|e| invalid_event(&self.provider, e, data))?;
        if let Some(err) = &v.error {
            return Err(stream_error(&self.provider, err));
        }
        if let Some(u) = &v.usage_metadata {
            self.usage = Some(usage_from(u));
        }
        let pieces = Pieces::of(&v);
        let mut delta = Delta::default();
        if !self.started {
            self.started = true;
            delta.role = Some("assistant".into());
        }
        if !pieces.text.is_empty() || delta.role.is_some() {
            delta.content = Some(pieces.text.clone());
        }
        if !pieces.thought.is_empty() {
            delta.reasoning = Some(pieces.thought.clone());
            if self.thought_index.is_none() {
                self.thought_index = Some(self.next_index);
                self.next_index = self.next_index.saturating_add(1);
            }
        }
        let first_call = self.tools;
        let ids: Vec<String> = (0..pieces.calls.len())
            .map(|i| call_id(&self.generation, first_call.saturating_add(i)))
            .collect();
        let details = pieces.details(&ids, self.thought_index, &mut self.next_index);
        if !details.is_empty() {
            delta.reasoning_details = Some(Value::Array(details));
        }
        if !pieces.images.is_empty() {
            delta.images = Some(Value::Array(pieces.images));
        }
        if !pieces.calls.is_empty() {
            let deltas = pieces
                .calls
                .into_iter()
                .zip(ids)
                .map(|((name, args, _), id)| {
                    let i = self.tools;
                    self.tools = self.tools.saturating_add(1);
                    ToolCallDelta {
                        index: i as u32,
                        id: Some(id),
                        kind: Some("function".into()),
                        function: Some(FunctionCallDelta {
                            name: Some(name),
                            arguments: Some(args),
                        }),
                    }
                })
                .collect();
            delta.tool_calls = Some(deltas);
        }
        let native = native_finish(&v);
        let has_content = delta.role.is_some()
            || delta.content.as_ref().is_some_and(|c| !c.is_empty())
            || delta.reasoning.is_some()
            || delta.reasoning_details.is_some()
            || delta.images.is_some()
            || delta.tool_calls.is_some();
        if has_content {
            out.push(ChatChunk::bare(delta, None));
        }
        if let Some(n) = native {
            self.finished = true;
            let reason = finish(&n, self.tools > 0);
            let mut c = ChatChunk::bare(Delta::default(), Some(reason.to_string()));
            if let Some(first) = c.choices.first_mut() {
                first.native_finish_reason = Some(n);
            }
            out.push(c);
        }
        Ok(())
    }
}

/// Google's Gemini API.
pub struct Gemini;

impl super::Family for Gemini {
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

    fn translator(
        &self,
        target: &Target,
        meta: &GenerationMeta,
    ) -> Option<super::stream::Translator> {
        Some(super::stream::Translator::Gemini(StreamState::new(
            &target.provider.slug,
            &meta.id,
        )))
    }

    /// Gemini reads YouTube videos and its own uploaded files; any other URL is
    /// fetched and sent inline.
    fn remote_media(&self, req: &ChatRequest) -> Vec<media::Remote> {
        media::remote_for_gemini(req)
    }

    fn build_embeddings(
        &self,
        target: &Target,
        req: &crate::api::embeddings::EmbeddingsRequest,
    ) -> Result<UpstreamRequest> {
        super::embeddings::gemini_request(target, req)
    }

    fn parse_embeddings(
        &self,
        provider: &str,
        req: &crate::api::embeddings::EmbeddingsRequest,
        v: &Value,
        body: &[u8],
    ) -> Result<(Vec<Value>, Option<u64>)> {
        super::embeddings::gemini_items(provider, req, v, body)
    }
}

#[cfg(test)]
mod tests;
