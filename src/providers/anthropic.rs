//! Anthropic's Messages API (`POST /v1/messages`): system prompts lifted out, tool
//! calls and results as content blocks, images as base64 or URL sources, reasoning as
//! extended thinking, and its typed stream events turned into OpenAI chunks.

use std::borrow::Cow;
use std::collections::HashMap;

use serde::Deserialize;

use serde_json::{json, Map, Value};

use super::media::{Kind, Media, Source};
use super::{
    ended_early, invalid_event, invalid_reply, parse_arguments, stream_error, wants_json,
    Reasoning, Target, UpstreamRequest,
};
use crate::api::{
    AssistantMessage, ChatChunk, ChatCompletion, ChatRequest, Choice, ContentPart, Delta,
    FunctionCall, FunctionCallDelta, GenerationMeta, Message, PromptTokensDetails, ToolCall,
    ToolCallDelta, ToolChoice, Usage,
};
use crate::catalog::{Endpoint, Model};
use crate::error::{Error, Result};

pub const API_VERSION: &str = "2023-06-01";
/// `max_tokens` is required by Anthropic; used when neither caller nor catalogue set it.
const DEFAULT_MAX_TOKENS: u64 = 4096;
/// Structured output is a forced call of this tool; its input comes back as the content.
pub const JSON_TOOL: &str = "modelmux_json_response";

/// `stream`: whether to ask for a stream (the caller's wish, or the gateway's when it
/// gathers a stream into the one reply its caller wants).
pub fn build_request(target: &Target, req: &ChatRequest, stream: bool) -> Result<UpstreamRequest> {
    let mut body = Map::new();
    body.insert("model".into(), json!(target.endpoint.upstream_model));
    let (mut system, mut messages) = convert_messages(&req.messages)?;
    // A top-level cache_control marks the last cacheable block, as OpenRouter applies it.
    if let Some(cc) = req.extra.get("cache_control").filter(|c| c.is_object()) {
        let last = messages
            .last_mut()
            .and_then(|m| m.get_mut("content"))
            .and_then(Value::as_array_mut)
            .and_then(|blocks| blocks.last_mut());
        if let Some(block) = last {
            mark_cache(block, cc);
        }
    }
    if wants_json(req) && req.json_schema_format().is_none() {
        // `json_object` has no Anthropic counterpart: ask for it in the system prompt.
        system.push(json!({"type": "text", "text": "Respond with a single valid JSON object and nothing else."}));
    }
    if !system.is_empty() {
        body.insert("system".into(), Value::Array(system));
    }
    body.insert("messages".into(), Value::Array(messages));
    let limits = output_limits(req, target.model, target.endpoint);
    body.insert("max_tokens".into(), json!(limits.max_tokens));
    if let Some(budget) = limits.thinking_budget {
        body.insert(
            "thinking".into(),
            json!({"type": "enabled", "budget_tokens": budget}),
        );
    } else {
        // Anthropic refuses sampling parameters together with thinking.
        if let Some(t) = req.temperature {
            body.insert("temperature".into(), json!(t.min(1.0)));
        }
        if let Some(p) = req.top_p {
            body.insert("top_p".into(), json!(p));
        }
        if let Some(k) = req.top_k {
            body.insert("top_k".into(), json!(k));
        }
    }
    if let Some(stop) = &req.stop {
        body.insert("stop_sequences".into(), json!(stop.to_vec()));
    }
    let mut tools: Vec<Value> = req
        .tools
        .iter()
        .flatten()
        .map(|t| {
            let mut tool = json!({
                "name": t.function.name,
                "input_schema": t.function.parameters.clone()
                    .unwrap_or_else(|| json!({"type": "object", "properties": {}})),
            });
            if let Some(d) = &t.function.description {
                crate::api::set_field(&mut tool, "description", json!(d));
            }
            tool
        })
        .collect();
    let mut tool_choice = req.tool_choice.as_ref().map(convert_tool_choice);
    if tools.is_empty() {
        if let Some((_, schema)) = req.json_schema_format() {
            tools.push(json!({"name": JSON_TOOL, "description": "Respond with the answer as this tool's input.", "input_schema": schema}));
            tool_choice = Some(json!({"type": "tool", "name": JSON_TOOL}));
        }
    }
    if !tools.is_empty() {
        body.insert("tools".into(), Value::Array(tools));
        if let Some(mut tc) = tool_choice {
            if req.extra.get("parallel_tool_calls") == Some(&json!(false))
                && tc.get("type").and_then(Value::as_str) != Some("none")
            {
                crate::api::set_field(&mut tc, "disable_parallel_tool_use", json!(true));
            }
            body.insert("tool_choice".into(), tc);
        }
    }
    if let Some(user) = req.extra.get("user").and_then(Value::as_str) {
        body.insert("metadata".into(), json!({"user_id": user}));
    }
    if stream {
        body.insert("stream".into(), json!(true));
    }
    let mut headers = vec![
        ("x-api-key".to_string(), target.key()?.to_string()),
        ("anthropic-version".to_string(), API_VERSION.to_string()),
    ];
    headers.extend(target.extra_headers());
    UpstreamRequest::post_json(
        format!("{}/messages", target.base_url),
        &Value::Object(body),
        headers,
    )
}

/// A Messages-surface request sent to an Anthropic endpoint as the caller wrote it
/// (`body` from [`crate::api::messages::native_body`]), with the caller's
/// `anthropic-version` and `anthropic-beta` headers.
pub fn build_native(
    target: &Target,
    body: &Value,
    client_headers: &[(String, String)],
) -> Result<UpstreamRequest> {
    let mut headers = vec![("x-api-key".to_string(), target.key()?.to_string())];
    let version = client_headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("anthropic-version"))
        .map_or(API_VERSION.to_string(), |(_, v)| v.clone());
    headers.push(("anthropic-version".to_string(), version));
    for (k, v) in client_headers {
        if k.eq_ignore_ascii_case("anthropic-beta") {
            headers.push(("anthropic-beta".to_string(), v.clone()));
        }
    }
    headers.extend(target.extra_headers());
    UpstreamRequest::post_json(format!("{}/messages", target.base_url), body, headers)
}

/// An Anthropic endpoint's own reply to a Messages-surface request, as it came, but
/// naming the catalogue's model.
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

fn convert_tool_choice(tc: &ToolChoice) -> Value {
    match tc {
        ToolChoice::Auto => json!({"type": "auto"}),
        ToolChoice::None => json!({"type": "none"}),
        ToolChoice::Required => json!({"type": "any"}),
        ToolChoice::Function(name) => json!({"type": "tool", "name": name}),
    }
}

/// An image or a document as Anthropic takes it: images and PDFs inline or by URL,
/// text files inline as plain text. Audio and video it does not take (routing keeps
/// such requests away from it).
fn media_block(m: &Media) -> Option<Value> {
    let source = match (m.kind, m.source) {
        (Kind::File, Source::Inline(data)) if m.mime.starts_with("text/") => {
            use base64::Engine;
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(data)
                .ok()?;
            json!({"type": "text", "media_type": "text/plain",
                   "data": String::from_utf8_lossy(&bytes)})
        }
        (Kind::Image | Kind::File, Source::Inline(data)) => {
            json!({"type": "base64", "media_type": m.mime, "data": data})
        }
        (Kind::Image | Kind::File, Source::Url(url)) => json!({"type": "url", "url": url}),
        (Kind::Audio | Kind::Video, _) => return None,
    };
    Some(match (m.kind, m.filename) {
        (Kind::Image, _) => json!({"type": "image", "source": source}),
        (_, Some(name)) => json!({"type": "document", "source": source, "title": name}),
        (_, None) => json!({"type": "document", "source": source}),
    })
}

fn content_blocks(parts: &[ContentPart]) -> Vec<Value> {
    parts
        .iter()
        .filter_map(|p| {
            let mut block = match p.kind.as_str() {
                "text" => json!({"type": "text", "text": p.text.clone().unwrap_or_default()}),
                _ => media_block(&Media::of(p)?)?,
            };
            if let Some(cc) = p.extra.get("cache_control") {
                crate::api::set_field(&mut block, "cache_control", cc.clone());
            }
            Some(block)
        })
        .collect()
}

/// Sets `cache_control` on a block that has none and can carry one (thinking cannot).
fn mark_cache(block: &mut Value, cc: &Value) {
    let kind = block
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if block.get("cache_control").is_none() && !kind.contains("thinking") {
        crate::api::set_field(block, "cache_control", cc.clone());
    }
}

/// OpenAI messages → (system blocks, Anthropic messages), merging consecutive turns of
/// the same role (tool results become user turns) as the API requires.
fn convert_messages(messages: &[Message]) -> Result<(Vec<Value>, Vec<Value>)> {
    let mut system = Vec::new();
    let mut out: Vec<(String, Vec<Value>)> = Vec::new();
    for m in messages {
        let (role, blocks) = match m.role.as_str() {
            "system" | "developer" => {
                let mut blocks =
                    content_blocks(&m.content.as_ref().map(|c| c.parts()).unwrap_or_default());
                if let (Some(cc), Some(last)) = (
                    m.extra.get("cache_control").filter(|c| c.is_object()),
                    blocks.last_mut(),
                ) {
                    mark_cache(last, cc);
                }
                system.extend(blocks);
                continue;
            }
            "assistant" => {
                // Thinking first, as Anthropic wants it, with its signature.
                let mut blocks = thinking_blocks(m.extra.get("reasoning_details"));
                let mut said =
                    content_blocks(&m.content.as_ref().map(|c| c.parts()).unwrap_or_default());
                said.retain(|b| b["type"] != "text" || b["text"] != "");
                blocks.extend(said);
                for call in m.tool_calls.iter().flatten() {
                    blocks.push(json!({
                        "type": "tool_use",
                        "id": call.id,
                        "name": call.function.name,
                        "input": parse_arguments(&call.function.arguments)?,
                    }));
                }
                ("assistant", blocks)
            }
            "tool" => {
                let id = m
                    .tool_call_id
                    .clone()
                    .ok_or_else(|| Error::bad_request("a tool message needs tool_call_id"))?;
                (
                    "user",
                    vec![json!({"type": "tool_result", "tool_use_id": id, "content": m.text()})],
                )
            }
            _ => (
                "user",
                content_blocks(&m.content.as_ref().map(|c| c.parts()).unwrap_or_default()),
            ),
        };
        if blocks.is_empty() {
            continue;
        }
        // A message's own cache_control (string content has nowhere else to put it)
        // marks its last block.
        let mut blocks = blocks;
        if let (Some(cc), Some(last)) = (
            m.extra.get("cache_control").filter(|c| c.is_object()),
            blocks.last_mut(),
        ) {
            mark_cache(last, cc);
        }
        match out.last_mut() {
            Some((r, b)) if r == role => b.extend(blocks),
            _ => out.push((role.to_string(), blocks)),
        }
    }
    if out.is_empty() {
        return Err(Error::bad_request(
            "at least one user or assistant message is required",
        ));
    }
    let messages = out
        .into_iter()
        .map(|(role, content)| json!({"role": role, "content": content}))
        .collect();
    Ok((system, messages))
}

/// Anthropic's usage object; counts it leaves out (or sends as null) are 0.
#[derive(Debug, Default, Deserialize)]
struct UsageIn {
    #[serde(default)]
    input_tokens: Option<u64>,
    #[serde(default)]
    output_tokens: Option<u64>,
    #[serde(default)]
    cache_read_input_tokens: Option<u64>,
    #[serde(default)]
    cache_creation_input_tokens: Option<u64>,
    /// The writes by TTL.
    #[serde(default)]
    cache_creation: Option<CacheCreationIn>,
    #[serde(default)]
    server_tool_use: Option<ServerToolUseIn>,
}

#[derive(Debug, Deserialize, Default)]
struct ServerToolUseIn {
    #[serde(default)]
    web_search_requests: u64,
}

#[derive(Debug, Deserialize, Default)]
struct CacheCreationIn {
    #[serde(default)]
    ephemeral_1h_input_tokens: Option<u64>,
}

fn usage_from(u: &Value) -> Usage {
    UsageIn::deserialize(u).unwrap_or_default().usage()
}

impl UsageIn {
    fn usage(&self) -> Usage {
        let (read, written) = (
            self.cache_read_input_tokens.unwrap_or(0),
            self.cache_creation_input_tokens.unwrap_or(0),
        );
        let mut usage = Usage::new(
            self.input_tokens
                .unwrap_or(0)
                .saturating_add(read)
                .saturating_add(written),
            self.output_tokens.unwrap_or(0),
        );
        usage.web_searches = self
            .server_tool_use
            .as_ref()
            .map_or(0, |s| s.web_search_requests);
        if read > 0 || written > 0 {
            usage.prompt_tokens_details = Some(PromptTokensDetails {
                cached_tokens: read,
                cache_write_tokens: Some(written),
                cache_write_1h_tokens: self
                    .cache_creation
                    .as_ref()
                    .and_then(|c| c.ephemeral_1h_input_tokens)
                    .unwrap_or(0)
                    .min(written),
            });
        }
        usage
    }
}

/// The format OpenRouter names Anthropic's reasoning items with.
const REASONING_FORMAT: &str = "anthropic-claude-v1";

/// A thinking block (or a streamed piece of one) as OpenRouter's `reasoning.text` item:
/// its text and, once known, the signature Anthropic needs to see it again.
fn reasoning_text(index: usize, text: &str, signature: Option<&str>) -> Value {
    let mut v =
        json!({"type": "reasoning.text", "text": text, "format": REASONING_FORMAT, "index": index});
    if let Some(sig) = signature.filter(|s| !s.is_empty()) {
        crate::api::set_field(&mut v, "signature", json!(sig));
    }
    v
}

/// A redacted thinking block as a `reasoning.encrypted` item.
fn reasoning_encrypted(index: usize, data: Option<&Value>) -> Value {
    json!({"type": "reasoning.encrypted", "data": data.cloned().unwrap_or_default(),
           "format": REASONING_FORMAT, "index": index})
}

/// Anthropic's thinking blocks from the `reasoning_details` a caller sends back on an
/// assistant message (as this gateway or OpenRouter gave them, streamed pieces
/// included: items of one index are joined). Items of another provider's format are
/// left out, since Anthropic could not verify them.
fn thinking_blocks(details: Option<&Value>) -> Vec<Value> {
    let mut out: Vec<(Option<u64>, Value)> = Vec::new();
    for d in details.and_then(Value::as_array).into_iter().flatten() {
        let format = d
            .get("format")
            .and_then(Value::as_str)
            .unwrap_or(REASONING_FORMAT);
        if !format.starts_with("anthropic") {
            continue;
        }
        let index = d.get("index").and_then(Value::as_u64);
        let same = |o: &(Option<u64>, Value)| index.is_some() && o.0 == index;
        match d.get("type").and_then(Value::as_str) {
            Some("reasoning.text") => {
                let text = d.get("text").and_then(Value::as_str).unwrap_or("");
                let sig = d.get("signature").and_then(Value::as_str).unwrap_or("");
                let thinking =
                    |b: &Value| b.get("type").and_then(Value::as_str) == Some("thinking");
                match out.last_mut().filter(|o| same(o) && thinking(&o.1)) {
                    Some((_, b)) => {
                        let so_far = b.get("thinking").and_then(Value::as_str).unwrap_or("");
                        let joined = format!("{so_far}{text}");
                        crate::api::set_field(b, "thinking", json!(joined));
                        if !sig.is_empty() {
                            crate::api::set_field(b, "signature", json!(sig));
                        }
                    }
                    None => out.push((
                        index,
                        json!({"type": "thinking", "thinking": text, "signature": sig}),
                    )),
                }
            }
            Some("reasoning.encrypted") => {
                if let Some(data) = d.get("data").filter(|d| d.is_string()) {
                    out.push((index, json!({"type": "redacted_thinking", "data": data})));
                }
            }
            _ => {}
        }
    }
    out.into_iter().map(|(_, b)| b).collect()
}

pub fn parse_response(
    provider: &str,
    meta: &GenerationMeta,
    body: &[u8],
) -> Result<ChatCompletion> {
    let v: Value = serde_json::from_slice(body).map_err(|e| invalid_reply(provider, e, body))?;
    let blocks = v
        .get("content")
        .and_then(Value::as_array)
        .ok_or_else(|| invalid_reply(provider, "no content", body))?;
    let mut text = String::new();
    let mut reasoning = String::new();
    let mut details = Vec::new();
    let mut calls = Vec::new();
    let mut json_answer = false;
    for (i, b) in blocks.iter().enumerate() {
        match b.get("type").and_then(Value::as_str) {
            Some("text") => text.push_str(b.get("text").and_then(Value::as_str).unwrap_or("")),
            Some("thinking") => {
                let thinking = b.get("thinking").and_then(Value::as_str).unwrap_or("");
                reasoning.push_str(thinking);
                details.push(reasoning_text(
                    i,
                    thinking,
                    b.get("signature").and_then(Value::as_str),
                ));
            }
            Some("redacted_thinking") => details.push(reasoning_encrypted(i, b.get("data"))),
            Some("tool_use") => {
                let name = b.get("name").and_then(Value::as_str).unwrap_or_default();
                let input = b.get("input").cloned().unwrap_or_else(|| json!({}));
                if name == JSON_TOOL {
                    text.push_str(&input.to_string());
                    json_answer = true;
                } else {
                    calls.push(ToolCall {
                        id: b
                            .get("id")
                            .and_then(Value::as_str)
                            .unwrap_or_default()
                            .to_string(),
                        kind: "function".into(),
                        function: FunctionCall {
                            name: name.to_string(),
                            arguments: input.to_string(),
                        },
                    });
                }
            }
            _ => {}
        }
    }
    let native = v
        .get("stop_reason")
        .and_then(Value::as_str)
        .unwrap_or("end_turn");
    let finish = if json_answer {
        "stop"
    } else {
        super::normalize_finish_reason(native)
    };
    let usage = v.get("usage").map(usage_from);
    let message = AssistantMessage {
        role: "assistant".into(),
        content: (!text.is_empty() || calls.is_empty()).then_some(text),
        refusal: None,
        reasoning: (!reasoning.is_empty()).then_some(reasoning),
        tool_calls: (!calls.is_empty()).then_some(calls),
        reasoning_details: (!details.is_empty()).then_some(Value::Array(details)),
        ..Default::default()
    };
    Ok(meta.completion(
        vec![Choice {
            index: 0,
            message,
            finish_reason: Some(finish.into()),
            native_finish_reason: Some(native.into()),
            logprobs: None,
        }],
        usage,
    ))
}

/// What one content block of the stream is, by its index.
#[derive(Debug, Clone)]
enum Block {
    Text,
    Thinking,
    /// A tool call, with its position among the reply's tool calls.
    Tool(u32),
    JsonAnswer,
    Other,
}

#[derive(Debug, Default)]
pub struct StreamState {
    provider: String,
    blocks: HashMap<u64, Block>,
    tools: u32,
    usage: Usage,
    stopped: bool,
    json_answer: bool,
}

impl StreamState {
    pub fn new(provider: &str) -> Self {
        StreamState {
            provider: provider.to_string(),
            ..Default::default()
        }
    }

    /// The stream ended: it must have reached `message_stop`.
    pub fn end(&mut self, _out: &mut Vec<ChatChunk>) -> Result<()> {
        if self.stopped {
            Ok(())
        } else {
            Err(ended_early(&self.provider))
        }
    }

    pub fn provider(&self) -> &str {
        &self.provider
    }

    /// The usage `message_start` reported (the prompt exactly, cache reads and writes
    /// included) with the output `message_delta` counted so far; none before it.
    pub fn usage_so_far(&self) -> Option<Usage> {
        (self.usage != Usage::default()).then(|| self.usage.clone())
    }

    fn chunk(&self, delta: Delta, finish: Option<String>) -> ChatChunk {
        ChatChunk::bare(delta, finish)
    }

    /// One event's data; the chunk it makes, if any, goes to `out`.
    pub fn event(&mut self, data: &str, out: &mut Vec<ChatChunk>) -> Result<()> {
        match self.read(data)? {
            Made::Text(text) => out.push(self.chunk(
                Delta {
                    content: Some(text.into_owned()),
                    ..Default::default()
                },
                None,
            )),
            Made::Chunk(chunk) => out.extend(chunk),
        }
        Ok(())
    }

    /// A `content_block_start`: the block's kind is remembered by its index; a tool
    /// call and a redacted thinking block make a chunk at once.
    fn block_start(
        &mut self,
        cb: BlockStart<'_>,
        index: u64,
        position: usize,
    ) -> Option<ChatChunk> {
        let (block, chunk) = match cb.kind.as_deref() {
            Some("text") => (Block::Text, None),
            Some("thinking") => (Block::Thinking, None),
            Some("redacted_thinking") => {
                let details = json!([reasoning_encrypted(position, cb.data.as_ref())]);
                let delta = Delta {
                    reasoning_details: Some(details),
                    ..Default::default()
                };
                (Block::Other, Some(self.chunk(delta, None)))
            }
            Some("tool_use") if cb.name.as_deref() == Some(JSON_TOOL) => {
                self.json_answer = true;
                (Block::JsonAnswer, None)
            }
            Some("tool_use") => {
                let i = self.tools;
                self.tools = self.tools.saturating_add(1);
                let delta = Delta {
                    tool_calls: Some(vec![ToolCallDelta {
                        index: i,
                        id: Some(owned(cb.id)),
                        kind: Some("function".into()),
                        function: Some(FunctionCallDelta {
                            name: Some(owned(cb.name)),
                            arguments: Some(String::new()),
                        }),
                    }]),
                    ..Default::default()
                };
                (Block::Tool(i), Some(self.chunk(delta, None)))
            }
            _ => (Block::Other, None),
        };
        self.blocks.insert(index, block);
        chunk
    }

    /// A `content_block_delta`, read by its type and the kind of its block.
    fn block_delta(&self, d: EventDelta<'_>, index: u64, position: usize) -> Option<ChatChunk> {
        let delta = match (self.blocks.get(&index), d.kind.as_deref()) {
            (_, Some("thinking_delta")) => {
                let thinking = owned(d.text);
                Delta {
                    reasoning_details: Some(json!([reasoning_text(position, &thinking, None)])),
                    reasoning: Some(thinking),
                    ..Default::default()
                }
            }
            (_, Some("signature_delta")) => Delta {
                reasoning_details: Some(json!([reasoning_text(position, "", d.text.as_deref())])),
                ..Default::default()
            },
            (Some(Block::JsonAnswer), Some("input_json_delta")) => Delta {
                content: Some(owned(d.text)),
                ..Default::default()
            },
            (Some(Block::Tool(i)), Some("input_json_delta")) => Delta {
                tool_calls: Some(vec![ToolCallDelta {
                    index: *i,
                    function: Some(FunctionCallDelta {
                        name: None,
                        arguments: Some(owned(d.text)),
                    }),
                    ..Default::default()
                }]),
                ..Default::default()
            },
            _ => return None,
        };
        Some(self.chunk(delta, None))
    }

    /// A `message_delta`: the output counted so far, and the stop reason (a JSON
    /// answer given as a tool call ends its turn).
    fn message_delta(
        &mut self,
        usage: Option<Box<UsageIn>>,
        delta: Option<EventDelta<'_>>,
    ) -> Option<ChatChunk> {
        if let Some(u) = usage {
            if let Some(out) = u.output_tokens {
                self.usage.completion_tokens = out;
                self.usage.total_tokens = self.usage.prompt_tokens.saturating_add(out);
            }
            // A server tool's searches, billed apart, are counted at the end.
            if let Some(tools) = &u.server_tool_use {
                self.usage.web_searches = tools.web_search_requests;
            }
        }
        let native = delta.and_then(|d| d.stop_reason).filter(|r| !r.is_empty());
        native.map(|n| {
            let n = if self.json_answer && n == "tool_use" {
                "end_turn".to_string()
            } else {
                n.into_owned()
            };
            self.chunk(Delta::default(), Some(n))
        })
    }

    /// One event's data read: a text delta's text (borrowed from the event where it has
    /// no escapes), or the chunk any other event makes, if any.
    pub fn read<'a>(&mut self, data: &'a str) -> Result<Made<'a>> {
        let ev: Event<'a> =
            serde_json::from_str(data).map_err(|e| invalid_event(&self.provider, e, data))?;
        let index = ev.index;
        let position = usize::try_from(index).unwrap_or(usize::MAX);
        Ok(Made::Chunk(match ev.kind.as_ref() {
            "message_start" => {
                if let Some(u) = ev.message.and_then(|m| m.usage) {
                    self.usage = u.usage();
                }
                Some(self.chunk(
                    Delta {
                        role: Some("assistant".into()),
                        content: Some(String::new()),
                        ..Default::default()
                    },
                    None,
                ))
            }
            "content_block_start" => {
                let cb = ev.content_block.map(|b| *b).unwrap_or_default();
                self.block_start(cb, index, position)
            }
            "content_block_delta" => {
                let d = ev.delta.unwrap_or_default();
                // Whatever its block: most of a stream, read without building a chunk.
                if d.kind.as_deref() == Some("text_delta") {
                    return Ok(Made::Text(d.text.unwrap_or_default()));
                }
                self.block_delta(d, index, position)
            }
            "message_delta" => self.message_delta(ev.usage, ev.delta),
            "message_stop" => {
                self.stopped = true;
                Some(ChatChunk::usage_only(self.usage.clone()))
            }
            "error" => {
                let err = ev.error.map(|e| *e).unwrap_or_default();
                return Err(stream_error(&self.provider, &err));
            }
            // ping, content_block_stop, and event types added later
            _ => None,
        }))
    }
}

/// What one stream event makes ([`StreamState::read`]). Returned once per event and
/// never kept, so the chunk is not boxed (that would be an allocation per event).
#[allow(clippy::large_enum_variant)]
pub enum Made<'a> {
    /// A text delta: a chunk whose delta is only this content.
    Text(Cow<'a, str>),
    Chunk(Option<ChatChunk>),
}

/// An event's string, owned (empty where absent).
fn owned(s: Option<Cow<'_, str>>) -> String {
    s.map(Cow::into_owned).unwrap_or_default()
}

/// One streamed event, every type in one shape (what a type lacks is absent), read
/// with its strings borrowed from the event where they have no escapes. Kept small,
/// the parts of rare events boxed: it is read once per streamed token.
#[derive(Debug, Deserialize)]
struct Event<'a> {
    #[serde(rename = "type", default, borrow)]
    kind: Cow<'a, str>,
    #[serde(default)]
    index: u64,
    #[serde(default, borrow)]
    delta: Option<EventDelta<'a>>,
    #[serde(default, borrow)]
    content_block: Option<Box<BlockStart<'a>>>,
    #[serde(default)]
    message: Option<Box<MessageStart>>,
    #[serde(default)]
    usage: Option<Box<UsageIn>>,
    #[serde(default)]
    error: Option<Box<Value>>,
}

/// A `content_block_delta`'s delta, or a `message_delta`'s. A content delta carries
/// one string, named by its type (`text`, `thinking`, `partial_json`, `signature`).
#[derive(Debug, Default, Deserialize)]
struct EventDelta<'a> {
    #[serde(rename = "type", default, borrow)]
    kind: Option<Cow<'a, str>>,
    #[serde(
        default,
        borrow,
        alias = "thinking",
        alias = "partial_json",
        alias = "signature"
    )]
    text: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    stop_reason: Option<Cow<'a, str>>,
}

#[derive(Debug, Default, Deserialize)]
struct BlockStart<'a> {
    #[serde(rename = "type", default, borrow)]
    kind: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    id: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    name: Option<Cow<'a, str>>,
    /// A redacted thinking block's opaque data.
    #[serde(default)]
    data: Option<Value>,
}

#[derive(Debug, Deserialize)]
struct MessageStart {
    #[serde(default)]
    usage: Option<UsageIn>,
}

/// Anthropic's Messages API, which also takes the Messages surface's requests as the
/// caller wrote them.
pub struct Anthropic;

impl super::Family for Anthropic {
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
}

#[cfg(test)]
mod tests;
