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
mod tests {
    use super::*;
    use crate::providers::stream::Translator;
    use crate::providers::testutil::*;

    const MODEL: &str = "google/gemini-2.5-flash";

    #[test]
    fn request_shape() {
        let (up, body) = built(
            MODEL,
            json!({
                "model": MODEL,
                "messages": [
                    {"role": "system", "content": "Be brief."},
                    {"role": "user", "content": [
                        {"type": "text", "text": "Weather where this photo was taken?"},
                        {"type": "image_url", "image_url": {"url": "data:image/jpeg;base64,/9j/4AAQ"}}
                    ]},
                    {"role": "assistant", "tool_calls": [{"id": "call_a", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}}]},
                    {"role": "tool", "tool_call_id": "call_a", "content": "{\"temp\": 18}"},
                    {"role": "tool", "tool_call_id": "call_a", "content": "plain text"}
                ],
                "tools": [{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}],
                "tool_choice": {"type": "function", "function": {"name": "get_weather"}},
                "temperature": 0.3, "top_p": 0.9, "top_k": 40, "max_tokens": 500, "stop": ["END"], "seed": 5,
                "presence_penalty": 0.1,
                "response_format": {"type": "json_schema", "json_schema": {"name": "w", "schema": {"type": "object"}}}
            }),
        );
        assert_eq!(
            up.url,
            "http://up/v1/models/gemini-2.5-flash:generateContent"
        );
        assert_eq!(up.header("x-goog-api-key"), Some("sk-test"));
        assert_eq!(
            body["systemInstruction"],
            json!({"parts": [{"text": "Be brief."}]})
        );
        let c = body["contents"].as_array().unwrap();
        assert_eq!(c.len(), 3);
        assert_eq!(
            c[0]["parts"][1],
            json!({"inlineData": {"mimeType": "image/jpeg", "data": "/9j/4AAQ"}})
        );
        assert_eq!(
            c[1],
            json!({"role": "model", "parts": [{"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}}]})
        );
        assert_eq!(
            c[2]["parts"][0]["functionResponse"],
            json!({"name": "get_weather", "response": {"temp": 18}})
        );
        assert_eq!(
            c[2]["parts"][1]["functionResponse"]["response"],
            json!({"content": "plain text"})
        );
        let g = &body["generationConfig"];
        assert_eq!(
            (
                g["temperature"].as_f64(),
                g["topP"].as_f64(),
                g["topK"].as_u64()
            ),
            (Some(0.3), Some(0.9), Some(40))
        );
        assert_eq!(
            (g["maxOutputTokens"].as_u64(), g["seed"].as_u64()),
            (Some(500), Some(5))
        );
        assert_eq!(g["stopSequences"], json!(["END"]));
        assert_eq!(g["presencePenalty"], 0.1);
        assert_eq!(g["responseMimeType"], "application/json");
        assert_eq!(g["responseJsonSchema"], json!({"type": "object"}));
        assert_eq!(
            body["tools"][0]["functionDeclarations"][0]["name"],
            "get_weather"
        );
        assert_eq!(
            body["toolConfig"]["functionCallingConfig"],
            json!({"mode": "ANY", "allowedFunctionNames": ["get_weather"]})
        );
    }

    #[test]
    fn stream_url_and_thinking() {
        let (up, body) = built(
            MODEL,
            json!({"model": MODEL, "stream": true, "max_tokens": 4000,
            "reasoning": {"effort": "low"}, "messages": [{"role": "user", "content": "hi"}]}),
        );
        assert_eq!(
            up.url,
            "http://up/v1/models/gemini-2.5-flash:streamGenerateContent?alt=sse"
        );
        assert_eq!(
            body["generationConfig"]["thinkingConfig"],
            json!({"thinkingBudget": 1024, "includeThoughts": true})
        );
    }

    #[test]
    fn orphan_tool_result_is_a_400() {
        // Validation refuses it first; the translator must still not pass it on.
        let req: ChatRequest = serde_json::from_value(json!({"model": MODEL, "messages": [
            {"role": "user", "content": "x"}, {"role": "tool", "tool_call_id": "nope", "content": "y"}]})).unwrap();
        let e = with_target(MODEL, |t| build_request(t, &req, false)).unwrap_err();
        assert_eq!(e.status(), 400);
    }

    #[test]
    fn parses_function_call_reply() {
        let body = include_bytes!("../../tests/fixtures/gemini/generate_function_call.json");
        let c = parse_response("google-ai-studio", &meta(MODEL), body).unwrap();
        let m = &c.choices[0].message;
        assert_eq!(
            m.reasoning.as_deref(),
            Some("Let me think about which tool fits.")
        );
        assert!(m.content.is_none());
        let call = &m.tool_calls.as_ref().unwrap()[0];
        assert_eq!(call.id, "call_abc_0");
        assert_eq!(
            serde_json::from_str::<Value>(&call.function.arguments).unwrap(),
            json!({"city": "Paris", "unit": "celsius"})
        );
        assert_eq!(c.choices[0].finish_reason.as_deref(), Some("tool_calls"));
        assert_eq!(c.choices[0].native_finish_reason.as_deref(), Some("STOP"));
        let u = c.usage.unwrap();
        assert_eq!((u.prompt_tokens, u.completion_tokens), (72, 68));
        assert_eq!(u.completion_tokens_details.unwrap().reasoning_tokens, 50);
    }

    #[test]
    fn thought_signatures_come_back_as_reasoning_details() {
        let body = include_bytes!("../../tests/fixtures/gemini/generate_function_call.json");
        let c = parse_response("google-ai-studio", &meta(MODEL), body).unwrap();
        let d = c.choices[0].message.reasoning_details.clone().unwrap();
        assert_eq!(
            d,
            json!([
                {"type": "reasoning.text", "text": "Let me think about which tool fits.",
                 "format": "google-gemini-v1", "index": 0},
                {"type": "reasoning.encrypted", "data": "CiQB0e2Kb0Zx5HRJ", "id": "call_abc_0",
                 "format": "google-gemini-v1", "index": 1}
            ])
        );
    }

    #[test]
    fn signatures_go_back_on_their_calls() {
        let turn = |model: &str, details: Value| {
            built(
                model,
                json!({"model": model, "messages": [
                    {"role": "user", "content": "Weather in Paris and Lyon?"},
                    {"role": "assistant", "content": "Checking.", "tool_calls": [
                        {"id": "call_a", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}},
                        {"id": "call_b", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Lyon\"}"}}],
                     "reasoning_details": details},
                    {"role": "tool", "tool_call_id": "call_a", "content": "18C"},
                    {"role": "tool", "tool_call_id": "call_b", "content": "21C"}
                ]}),
            )
            .1["contents"][1]["parts"]
                .clone()
        };
        let g3 = "google/gemini-3-pro-preview";
        // As this gateway (or OpenRouter) returned them: the signature is the first call's.
        let parts = turn(
            g3,
            json!([
                {"type": "reasoning.text", "text": "plan", "format": "google-gemini-v1", "index": 0},
                {"type": "reasoning.encrypted", "data": "SIG_A", "id": "call_a", "format": "google-gemini-v1", "index": 1},
                {"type": "reasoning.encrypted", "data": "ANTHROPIC", "format": "anthropic-claude-v1", "index": 2}
            ]),
        );
        assert_eq!(parts[0], json!({"text": "Checking."}));
        assert_eq!(parts[1]["thoughtSignature"], "SIG_A");
        assert_eq!(parts[2].get("thoughtSignature"), None);
        // A turn without signatures (another model wrote it): Gemini 3 gets the
        // documented placeholder on the first call; Gemini 2.5 needs none.
        let parts = turn(g3, json!(null));
        assert_eq!(
            parts[1]["thoughtSignature"],
            "skip_thought_signature_validator"
        );
        assert_eq!(parts[2].get("thoughtSignature"), None);
        let parts = turn(MODEL, json!(null));
        assert!(parts
            .as_array()
            .unwrap()
            .iter()
            .all(|p| p.get("thoughtSignature").is_none()));
        // A signature without a call goes on the turn's last part.
        let parts = turn(
            g3,
            json!([{"type": "reasoning.encrypted", "data": "SIG_T", "format": "google-gemini-v1", "index": 0}]),
        );
        assert_eq!(parts[0]["thoughtSignature"], "SIG_T");
        assert_eq!(
            parts[1]["thoughtSignature"],
            "skip_thought_signature_validator"
        );
    }

    #[test]
    fn files_audio_and_video_parts() {
        let (_, body) = built(
            "google/gemini-3-pro-preview",
            json!({"model": "google/gemini-3-pro-preview", "messages": [{"role": "user", "content": [
                {"type": "file", "file": {"filename": "paper.pdf", "file_data": "data:application/pdf;base64,JVBERi0x"}},
                {"type": "input_audio", "input_audio": {"data": "UklGRg==", "format": "wav"}},
                {"type": "video_url", "video_url": {"url": "https://www.youtube.com/watch?v=9hE5-98ZeCg"}},
                {"type": "video_url", "video_url": {"url": "data:video/mp4;base64,AAAAIGZ0eXA="}},
                {"type": "file", "file": {"filename": "f.pdf", "file_data": "https://generativelanguage.googleapis.com/v1beta/files/abc-123"}},
                {"type": "text", "text": "Summarise all of it."}
            ]}]}),
        );
        let parts = &body["contents"][0]["parts"];
        assert_eq!(
            parts,
            &json!([
                {"inlineData": {"mimeType": "application/pdf", "data": "JVBERi0x"}},
                {"inlineData": {"mimeType": "audio/wav", "data": "UklGRg=="}},
                {"fileData": {"fileUri": "https://www.youtube.com/watch?v=9hE5-98ZeCg"}},
                {"inlineData": {"mimeType": "video/mp4", "data": "AAAAIGZ0eXA="}},
                {"fileData": {"mimeType": "application/pdf", "fileUri": "https://generativelanguage.googleapis.com/v1beta/files/abc-123"}},
                {"text": "Summarise all of it."}
            ])
        );
    }

    #[test]
    fn image_output() {
        let model = "google/gemini-2.5-flash-image";
        let (_, body) = built(
            model,
            json!({"model": model, "modalities": ["image", "text"],
                   "image_config": {"aspect_ratio": "16:9"},
                   "messages": [{"role": "user", "content": "A banana"}]}),
        );
        assert_eq!(
            body["generationConfig"]["responseModalities"],
            json!(["IMAGE", "TEXT"])
        );
        assert_eq!(
            body["generationConfig"]["imageConfig"],
            json!({"aspectRatio": "16:9"})
        );
        let c = parse_response(
            "google-ai-studio",
            &meta(model),
            include_bytes!("../../tests/fixtures/gemini/generate_image.json"),
        )
        .unwrap();
        let m = &c.choices[0].message;
        assert_eq!(
            m.content.as_deref(),
            Some("Here is a nano banana on a plate.")
        );
        let images = m.images.as_ref().unwrap();
        assert_eq!(images[0]["type"], "image_url");
        assert!(images[0]["image_url"]["url"]
            .as_str()
            .unwrap()
            .starts_with("data:image/png;base64,iVBOR"));
        let u = c.usage.clone().unwrap();
        assert_eq!(u.completion_tokens, 1299);
        assert_eq!(
            u.completion_tokens_details.unwrap().image_tokens,
            Some(1290)
        );
        // Priced at the image output price: 9 text tokens and 1290 image tokens.
        let cat = catalog();
        let pricing = &cat.model(model).unwrap().endpoints[0].pricing;
        let u = c.usage.clone().unwrap();
        assert_eq!(
            pricing.cost_picos(&u),
            9 * 300_000 + 9 * 2_500_000 + 1290 * 30_000_000
        );
    }

    #[test]
    fn stream_images() {
        let events = translate_everywhere(
            &make,
            "google/gemini-2.5-flash-image",
            include_bytes!("../../tests/fixtures/gemini/stream_image.sse"),
        );
        let images = delta_items(&events, "images");
        assert_eq!(images.len(), 1);
        assert!(images[0]["image_url"]["url"]
            .as_str()
            .unwrap()
            .starts_with("data:image/png;base64,"));
        assert_eq!(content(&events), "A banana, coming up.");
        let u = &events.last().unwrap()["usage"];
        assert_eq!(u["completion_tokens_details"]["image_tokens"], 1290);
    }

    #[test]
    fn stream_thought_signatures() {
        let events = translate_everywhere(
            &make,
            "google/gemini-3-pro-preview",
            include_bytes!("../../tests/fixtures/gemini/stream_thought_signature.sse"),
        );
        let details = delta_items(&events, "reasoning_details");
        // The thought text's pieces share one index; the signature has its own and
        // names the first call.
        let texts: Vec<_> = details
            .iter()
            .filter(|d| d["type"] == "reasoning.text")
            .collect();
        assert_eq!(texts.len(), 2);
        assert!(texts
            .iter()
            .all(|d| d["index"] == 0 && d["format"] == "google-gemini-v1"));
        let sig: Vec<_> = details
            .iter()
            .filter(|d| d["type"] == "reasoning.encrypted")
            .collect();
        assert_eq!(sig.len(), 1);
        assert_eq!(
            (
                sig[0]["data"].as_str(),
                sig[0]["id"].as_str(),
                sig[0]["index"].as_u64()
            ),
            (
                Some("EjQKMgG+Pvb7sigPart1Paris"),
                Some("call_abc_0"),
                Some(1)
            )
        );
        assert_eq!(arguments(&events, 1), r#"{"city":"Lyon"}"#);
    }

    #[test]
    fn nulls_where_gemini_may_leave_them() {
        let body = br#"{"candidates":[{"content":{"parts":null},"finishReason":"MAX_TOKENS"}],
            "usageMetadata":{"promptTokenCount":null,"candidatesTokenCount":3,"candidatesTokensDetails":null}}"#;
        let c = parse_response("google-ai-studio", &meta(MODEL), body).unwrap();
        assert_eq!(c.choices[0].finish_reason.as_deref(), Some("length"));
        assert_eq!(c.usage.unwrap().completion_tokens, 3);
        let e = parse_response("google-ai-studio", &meta(MODEL), br#"{"candidates":null}"#);
        assert_eq!(e.unwrap_err().status(), 502);
    }

    #[test]
    fn blocked_prompt_is_content_filter() {
        let body = include_bytes!("../../tests/fixtures/gemini/generate_blocked.json");
        let c = parse_response("google-ai-studio", &meta(MODEL), body).unwrap();
        assert_eq!(
            c.choices[0].finish_reason.as_deref(),
            Some("content_filter")
        );
        assert_eq!(c.choices[0].message.content.as_deref(), Some(""));
        assert_eq!(
            parse_response("google-ai-studio", &meta(MODEL), b"{}")
                .unwrap_err()
                .status(),
            502
        );
    }

    fn make() -> Translator {
        Translator::Gemini(StreamState::new("google-ai-studio", "gen-1-abc"))
    }

    #[test]
    fn stream_text_at_every_split() {
        let events = translate_everywhere(
            &make,
            MODEL,
            include_bytes!("../../tests/fixtures/gemini/stream_text.sse"),
        );
        assert_eq!(events[0]["choices"][0]["delta"]["role"], "assistant");
        assert_eq!(
            content(&events),
            "The capital of France is Paris — «Paris» ✓.\n"
        );
        let fin = events
            .iter()
            .find(|e| e["choices"][0]["finish_reason"].is_string())
            .unwrap();
        assert_eq!(fin["choices"][0]["finish_reason"], "stop");
        assert_eq!(fin["choices"][0]["native_finish_reason"], "STOP");
        let u = &events.last().unwrap()["usage"];
        assert_eq!(
            (u["prompt_tokens"].as_u64(), u["completion_tokens"].as_u64()),
            (Some(8), Some(12))
        );
    }

    #[test]
    fn stream_function_call() {
        let events = translate_everywhere(
            &make,
            MODEL,
            include_bytes!("../../tests/fixtures/gemini/stream_function_call.sse"),
        );
        let call = events
            .iter()
            .find_map(|e| e["choices"][0]["delta"]["tool_calls"].get(0).cloned())
            .unwrap();
        assert_eq!(call["id"], "call_abc_0");
        assert_eq!(call["function"]["name"], "get_weather");
        assert_eq!(arguments(&events, 0), r#"{"city":"Paris"}"#);
        assert!(events
            .iter()
            .any(|e| e["choices"][0]["finish_reason"] == "tool_calls"));
    }

    #[test]
    fn stream_safety_stop() {
        let events = translate_everywhere(
            &make,
            MODEL,
            include_bytes!("../../tests/fixtures/gemini/stream_safety.sse"),
        );
        assert!(events
            .iter()
            .any(|e| e["choices"][0]["finish_reason"] == "content_filter"));
        assert_eq!(content(&events), "Here is how");
    }

    #[test]
    fn stream_without_finish_is_an_error() {
        let fixture = include_bytes!("../../tests/fixtures/gemini/stream_text.sse");
        let cut = &fixture[..fixture.len() - 300];
        let text = translate(&make, MODEL, cut, 0);
        assert!(text.contains(r#""finish_reason":"error""#), "{text}");
    }
}
