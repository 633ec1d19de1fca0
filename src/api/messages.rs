//! The Anthropic Messages surface (`POST /messages`, `POST /messages/count_tokens`), as
//! Claude Code and the `anthropic` SDKs speak it. For an Anthropic endpoint the body
//! goes upstream as sent (cache_control, thinking signatures and betas intact) and the
//! reply comes back as Anthropic sent it; for every other family the request becomes a
//! chat request and the chat reply or chunks become Anthropic's message and events.
//! Errors have Anthropic's shape: `{"type":"error","error":{"type":..,"message":..}}`.

use serde_json::{json, Map, Value};

use super::{set_field, ChatChunk, ChatCompletion, ChatRequest, Usage};
use crate::error::{Error, Result};

fn bad(path: &str, rule: impl std::fmt::Display) -> Error {
    Error::BadRequest(format!("{path}: {rule}"))
}

/// The string field `key` of `v`, or a 400 naming `path.key`.
fn required<'a>(v: &'a Value, path: &str, key: &str) -> Result<&'a str> {
    v.get(key)
        .and_then(Value::as_str)
        .ok_or_else(|| bad(&format!("{path}.{key}"), "is required"))
}

/// Anthropic's error type for one of our errors.
pub fn error_type(e: &Error) -> &'static str {
    match e.status() {
        400 | 413 => "invalid_request_error",
        401 => "authentication_error",
        402 => "billing_error",
        403 => "permission_error",
        404 => "not_found_error",
        408 => "timeout_error",
        429 => "rate_limit_error",
        503 | 529 => "overloaded_error",
        _ => "api_error",
    }
}

/// Anthropic's error body.
pub fn error_body(e: &Error) -> Value {
    json!({"type": "error", "error": {"type": error_type(e), "message": e.public_message()}})
}

/// Block types that only an Anthropic endpoint understands (server tools' calls and
/// results, search results, containers): kept for Anthropic endpoints, refused by the
/// others.
const ANTHROPIC_ONLY_BLOCKS: &[&str] = &[
    "server_tool_use",
    "web_search_tool_result",
    "web_fetch_tool_result",
    "code_execution_tool_result",
    "bash_code_execution_tool_result",
    "text_editor_code_execution_tool_result",
    "mcp_tool_use",
    "mcp_tool_result",
    "search_result",
    "container_upload",
    "tool_reference",
];

/// The chat request a Messages body asks for (for endpoints of other families).
pub fn to_chat(body: &Value) -> Result<ChatRequest> {
    convert(body).map(|(chat, _)| chat)
}

/// The chat request a Messages body asks for, and the first thing in it that only an
/// Anthropic endpoint can serve (a server tool, a block of an Anthropic-only type),
/// which is left out of the chat request.
pub fn convert(body: &Value) -> Result<(ChatRequest, Option<String>)> {
    let mut anthropic_only: Option<String> = None;
    let obj = body
        .as_object()
        .ok_or_else(|| Error::bad_request("The body must be a JSON object"))?;
    let mut messages: Vec<Value> = Vec::new();
    match obj.get("system") {
        None | Some(Value::Null) => {}
        Some(Value::String(s)) => messages.push(json!({"role": "system", "content": s})),
        Some(Value::Array(blocks)) => {
            let parts = text_parts("system", blocks)?;
            if !parts.is_empty() {
                messages.push(json!({"role": "system", "content": parts}));
            }
        }
        Some(_) => return Err(bad("system", "must be a string or an array of text blocks")),
    }
    let list = match obj.get("messages") {
        Some(Value::Array(l)) => l,
        None | Some(Value::Null) => return Err(bad("messages", "is required")),
        Some(_) => return Err(bad("messages", "must be an array")),
    };
    for (i, m) in list.iter().enumerate() {
        message(
            &format!("messages[{i}]"),
            m,
            &mut messages,
            &mut anthropic_only,
        )?;
    }
    let mut chat = Map::new();
    for k in [
        "model",
        "models",
        "temperature",
        "top_p",
        "top_k",
        "stream",
        "provider",
        "max_tokens",
    ] {
        if let Some(v) = obj.get(k).filter(|v| !v.is_null()) {
            chat.insert(k.to_string(), v.clone());
        }
    }
    if obj.get("max_tokens").is_none_or(Value::is_null) {
        return Err(bad("max_tokens", "is required"));
    }
    if let Some(stop) = obj.get("stop_sequences").filter(|v| !v.is_null()) {
        chat.insert("stop".into(), stop.clone());
    }
    if let Some(user) = obj
        .get("metadata")
        .and_then(|m| m.get("user_id"))
        .and_then(Value::as_str)
    {
        chat.insert("user".into(), json!(user));
    }
    let mut searches = 0;
    if let Some(tools) = obj.get("tools").filter(|v| !v.is_null()) {
        chat.insert(
            "tools".into(),
            convert_tools(tools, &mut anthropic_only, &mut searches)?,
        );
    }
    if let Some(tc) = obj.get("tool_choice").filter(|v| !v.is_null()) {
        let (choice, parallel) = convert_tool_choice(tc)?;
        if let Some(c) = choice {
            chat.insert("tool_choice".into(), c);
        }
        if parallel == Some(false) {
            chat.insert("parallel_tool_calls".into(), json!(false));
        }
    }
    match obj
        .get("thinking")
        .and_then(|t| t.get("type"))
        .and_then(Value::as_str)
    {
        Some("enabled") => {
            let budget = obj
                .get("thinking")
                .and_then(|t| t.get("budget_tokens"))
                .cloned()
                .unwrap_or(Value::Null);
            let r = if budget.is_null() {
                json!({"effort": "medium"})
            } else {
                json!({"max_tokens": budget})
            };
            chat.insert("reasoning".into(), r);
        }
        Some("adaptive") => {
            chat.insert("reasoning".into(), json!({"effort": "medium"}));
        }
        _ => {}
    }
    chat.insert("messages".into(), Value::Array(messages));
    let mut req = ChatRequest::from_value(Value::Object(chat))?;
    req.server_searches = searches;
    Ok((req, anthropic_only))
}

/// Text blocks (with their cache_control) as chat text parts.
fn text_parts(path: &str, blocks: &[Value]) -> Result<Vec<Value>> {
    let mut out = Vec::new();
    for (i, b) in blocks.iter().enumerate() {
        let text = required(b, &format!("{path}[{i}]"), "text")?;
        let mut part = json!({"type": "text", "text": text});
        if let Some(cc) = b.get("cache_control").filter(|v| !v.is_null()) {
            set_field(&mut part, "cache_control", cc.clone());
        }
        out.push(part);
    }
    Ok(out)
}

/// An image or document source as a URL (data: URL for base64).
fn source_url(path: &str, b: &Value) -> Result<String> {
    let src = b
        .get("source")
        .ok_or_else(|| bad(&format!("{path}.source"), "is required"))?;
    let at = format!("{path}.source");
    match src.get("type").and_then(Value::as_str) {
        Some("base64") => {
            let mime = required(src, &at, "media_type")?;
            let data = required(src, &at, "data")?;
            Ok(format!("data:{mime};base64,{data}"))
        }
        Some("url") => required(src, &at, "url").map(str::to_string),
        other => Err(bad(
            &format!("{path}.source.type"),
            format!("must be base64 or url, not {}", other.unwrap_or("missing")),
        )),
    }
}

fn message(
    path: &str,
    m: &Value,
    out: &mut Vec<Value>,
    anthropic_only: &mut Option<String>,
) -> Result<()> {
    let role = required(m, path, "role")?;
    if !matches!(role, "user" | "assistant" | "system") {
        return Err(bad(
            &format!("{path}.role"),
            format!("unknown role {role:?} (expected user or assistant)"),
        ));
    }
    let blocks = match m.get("content") {
        Some(Value::String(s)) => {
            out.push(json!({"role": role, "content": s}));
            return Ok(());
        }
        Some(Value::Array(b)) => b,
        _ => {
            return Err(bad(
                &format!("{path}.content"),
                "must be a string or an array of blocks",
            ))
        }
    };
    let mut parts: Vec<Value> = Vec::new();
    let mut calls: Vec<Value> = Vec::new();
    let mut reasoning = String::new();
    let mut details: Vec<Value> = Vec::new();
    // Tool results go first, as tool messages; the rest of the turn follows them.
    let mut results: Vec<Value> = Vec::new();
    for (j, b) in blocks.iter().enumerate() {
        let bp = format!("{path}.content[{j}]");
        let ty = required(b, &bp, "type")?;
        match ty {
            "text" => parts.extend(text_parts(
                &format!("{path}.content"),
                std::slice::from_ref(b),
            )?),
            "image" => {
                let url = source_url(&bp, b)?;
                parts.push(json!({"type": "image_url", "image_url": {"url": url}}));
            }
            "document" => {
                let src_type = b
                    .get("source")
                    .and_then(|s| s.get("type"))
                    .and_then(Value::as_str);
                if src_type == Some("text") {
                    let data = b
                        .pointer("/source/data")
                        .and_then(Value::as_str)
                        .unwrap_or_default();
                    parts.push(json!({"type": "text", "text": data}));
                } else {
                    // PDFs travel as image_url parts with a PDF data: URL, which every
                    // family's translator sends as a document.
                    let url = source_url(&bp, b)?;
                    parts.push(json!({"type": "image_url", "image_url": {"url": url}}));
                }
            }
            "tool_use" => {
                let id = required(b, &bp, "id")?;
                let name = required(b, &bp, "name")?;
                let input = b.get("input").cloned().unwrap_or_else(|| json!({}));
                calls.push(json!({"id": id, "type": "function", "function": {"name": name, "arguments": input.to_string()}}));
            }
            "tool_result" => {
                let id = required(b, &bp, "tool_use_id")?;
                let mut text = match b.get("content") {
                    None | Some(Value::Null) => String::new(),
                    Some(Value::String(s)) => s.clone(),
                    Some(Value::Array(inner)) => {
                        let mut t = Vec::new();
                        for (k, ib) in inner.iter().enumerate() {
                            match ib.get("type").and_then(Value::as_str) {
                                Some("text") => t.push(
                                    ib.get("text")
                                        .and_then(Value::as_str)
                                        .unwrap_or_default()
                                        .to_string(),
                                ),
                                Some("image") => {
                                    let url = source_url(&format!("{bp}.content[{k}]"), ib)?;
                                    parts.push(
                                        json!({"type": "image_url", "image_url": {"url": url}}),
                                    );
                                }
                                _ => {}
                            }
                        }
                        t.join("\n")
                    }
                    Some(_) => {
                        return Err(bad(
                            &format!("{bp}.content"),
                            "must be a string or an array of blocks",
                        ))
                    }
                };
                if b.get("is_error").and_then(Value::as_bool) == Some(true) {
                    text = format!("Error: {text}");
                }
                results.push(json!({"role": "tool", "tool_call_id": id, "content": text}));
            }
            "thinking" => {
                reasoning.push_str(
                    b.get("thinking")
                        .and_then(Value::as_str)
                        .unwrap_or_default(),
                );
                // What this gateway packed into the signature on a translated route
                // (another provider's signatures) goes back as reasoning_details.
                let sig = b.get("signature").and_then(Value::as_str).unwrap_or("");
                details.extend(crate::api::unpack_reasoning(sig).unwrap_or_default());
            }
            // Encrypted reasoning only an Anthropic endpoint can read.
            "redacted_thinking" => {}
            other if ANTHROPIC_ONLY_BLOCKS.contains(&other) => {
                anthropic_only.get_or_insert_with(|| {
                    format!(
                        "{bp}.type: {other:?} blocks are only understood by Anthropic endpoints"
                    )
                });
            }
            other => {
                return Err(bad(
                    &format!("{bp}.type"),
                    format!("unknown content block type {other:?}"),
                ))
            }
        }
    }
    out.extend(results);
    if role == "assistant" {
        let mut msg = json!({"role": "assistant", "content": if parts.is_empty() { Value::Null } else { Value::Array(parts) }});
        if !calls.is_empty() {
            set_field(&mut msg, "tool_calls", Value::Array(calls));
        }
        if !reasoning.is_empty() {
            set_field(&mut msg, "reasoning", json!(reasoning));
        }
        if !details.is_empty() {
            set_field(&mut msg, "reasoning_details", Value::Array(details));
        }
        out.push(msg);
    } else if !parts.is_empty() {
        out.push(json!({"role": role, "content": parts}));
    }
    Ok(())
}

/// What a `web_search_*` server tool without `max_uses` may run here: the gateway sets
/// it (Anthropic's own default is unbounded, which no reservation can cover).
pub const DEFAULT_MAX_SEARCHES: u64 = 10;

/// The most searches `t` (a tool of a Messages request) may run, if it is a web search
/// server tool.
fn searches_of(t: &Value) -> Option<u64> {
    let ty = t.get("type").and_then(Value::as_str)?;
    ty.starts_with("web_search_").then(|| {
        t.get("max_uses")
            .and_then(Value::as_u64)
            .unwrap_or(DEFAULT_MAX_SEARCHES)
    })
}

fn convert_tools(
    tools: &Value,
    anthropic_only: &mut Option<String>,
    searches: &mut u64,
) -> Result<Value> {
    let list = tools
        .as_array()
        .ok_or_else(|| bad("tools", "must be an array"))?;
    let mut out = Vec::with_capacity(list.len());
    for (i, t) in list.iter().enumerate() {
        *searches = searches.saturating_add(searches_of(t).unwrap_or(0));
        match t.get("type").and_then(Value::as_str) {
            None | Some("custom") => {}
            Some(other) => {
                anthropic_only.get_or_insert_with(|| {
                    format!("tools[{i}].type: server tool {other:?} is only available on Anthropic endpoints")
                });
                continue;
            }
        }
        let name = t
            .get("name")
            .and_then(Value::as_str)
            .ok_or_else(|| bad(&format!("tools[{i}].name"), "is required"))?;
        let mut f = json!({"name": name, "parameters": t.get("input_schema").cloned().unwrap_or_else(|| json!({"type": "object"}))});
        if let Some(d) = t.get("description").filter(|v| !v.is_null()) {
            set_field(&mut f, "description", d.clone());
        }
        out.push(json!({"type": "function", "function": f}));
    }
    Ok(Value::Array(out))
}

/// (chat tool_choice, parallel tool calls allowed).
fn convert_tool_choice(tc: &Value) -> Result<(Option<Value>, Option<bool>)> {
    let parallel = tc
        .get("disable_parallel_tool_use")
        .and_then(Value::as_bool)
        .map(|d| !d);
    let choice = match tc.get("type").and_then(Value::as_str) {
        Some("auto") => Some(json!("auto")),
        Some("any") => Some(json!("required")),
        Some("none") => Some(json!("none")),
        Some("tool") => {
            let name = tc
                .get("name")
                .and_then(Value::as_str)
                .ok_or_else(|| bad("tool_choice.name", "is required"))?;
            Some(json!({"type": "function", "function": {"name": name}}))
        }
        _ => return Err(bad("tool_choice.type", "must be auto, any, tool or none")),
    };
    Ok((choice, parallel))
}

/// An estimate of the prompt's tokens for `count_tokens`.
pub fn count_tokens(body: &Value) -> Result<Value> {
    let mut b = body.clone();
    // count_tokens takes no max_tokens; any value will do for the conversion.
    set_field(&mut b, "max_tokens", json!(1));
    let chat = to_chat(&b)?;
    let tools = chat
        .tools
        .as_ref()
        .and_then(|t| serde_json::to_string(t).ok())
        .map_or(0, |s| crate::providers::estimate_tokens(&s));
    Ok(
        json!({"input_tokens": crate::providers::estimate_prompt_tokens(&chat).saturating_add(tools)}),
    )
}

// ------------------------------------------------------------------ replies

fn stop_reason(finish: Option<&str>, native: Option<&str>) -> Value {
    match (finish, native) {
        (
            _,
            Some(
                n @ ("end_turn" | "max_tokens" | "stop_sequence" | "tool_use" | "pause_turn"
                | "refusal"),
            ),
        ) => json!(n),
        (Some("length"), _) => json!("max_tokens"),
        (Some("tool_calls"), _) => json!("tool_use"),
        (Some("content_filter"), _) => json!("refusal"),
        (Some(_), _) => json!("end_turn"),
        (None, _) => Value::Null,
    }
}

fn usage(u: &Usage) -> Value {
    let (read, written) = u.prompt_tokens_details.as_ref().map_or((0, 0), |d| {
        (d.cached_tokens, d.cache_write_tokens.unwrap_or(0))
    });
    json!({
        "input_tokens": u.prompt_tokens.saturating_sub(read).saturating_sub(written),
        "output_tokens": u.completion_tokens,
        "cache_read_input_tokens": read,
        "cache_creation_input_tokens": written,
    })
}

fn message_id(gen_id: &str) -> String {
    format!("msg_{gen_id}")
}

/// A chat completion as an Anthropic message.
pub fn reply(c: &ChatCompletion) -> Value {
    let first = c.choices.first();
    let mut content = Vec::new();
    if let Some(m) = first.map(|ch| &ch.message) {
        let r = m.reasoning.as_deref().unwrap_or("");
        let details = m.reasoning_details.as_ref().and_then(Value::as_array);
        if !r.is_empty() || details.is_some_and(|d| !d.is_empty()) {
            // Another provider's reasoning items ride in the signature, to come back.
            let signature = details
                .filter(|d| !d.is_empty())
                .map_or_else(String::new, |d| crate::api::pack_reasoning(d));
            content.push(json!({"type": "thinking", "thinking": r, "signature": signature}));
        }
        if let Some(t) = m.content.as_deref().filter(|t| !t.is_empty()) {
            content.push(json!({"type": "text", "text": t}));
        }
        for call in m.tool_calls.iter().flatten() {
            let input: Value =
                serde_json::from_str(&call.function.arguments).unwrap_or_else(|_| json!({}));
            content.push(json!({"type": "tool_use", "id": call.id, "name": call.function.name, "input": input}));
        }
    }
    json!({
        "id": message_id(&c.id),
        "type": "message",
        "role": "assistant",
        "model": c.model,
        "content": content,
        "stop_reason": stop_reason(first.and_then(|ch| ch.finish_reason.as_deref()), first.and_then(|ch| ch.native_finish_reason.as_deref())),
        "stop_sequence": null,
        "usage": usage(&c.usage.clone().unwrap_or_default()),
    })
}

// ------------------------------------------------------------------ streams

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Block {
    Thinking,
    Text,
    Tool(u32),
}

/// Turns stamped chat chunks into Anthropic's stream events.
#[derive(Debug, Default)]
pub struct StreamEncoder {
    started: bool,
    prompt_estimate: u64,
    /// The open content block and its index.
    open: Option<(Block, usize)>,
    next_index: usize,
    /// The stream's reasoning items; those since the last thinking block go out as the
    /// signature of the next when it closes.
    details: crate::api::ReasoningLog,
    finish: Option<String>,
    native: Option<String>,
}

fn event(ty: &str, data: &Value) -> Vec<u8> {
    let mut out = format!("event: {ty}\ndata: ").into_bytes();
    if serde_json::to_writer(&mut out, data).is_err() {
        out.extend_from_slice(b"{}");
    }
    out.extend_from_slice(b"\n\n");
    out
}

impl StreamEncoder {
    pub fn new(prompt_estimate: u64) -> Self {
        StreamEncoder {
            prompt_estimate,
            ..Default::default()
        }
    }

    fn start(&mut self, c: &ChatChunk) -> Vec<u8> {
        if self.started {
            return Vec::new();
        }
        self.started = true;
        event(
            "message_start",
            &json!({"type": "message_start", "message": {
                "id": message_id(&c.id), "type": "message", "role": "assistant", "model": c.model,
                "content": [], "stop_reason": null, "stop_sequence": null,
                "usage": {"input_tokens": self.prompt_estimate, "output_tokens": 0},
            }}),
        )
    }

    fn stop_block(&mut self) -> Vec<u8> {
        let mut out = Vec::new();
        let Some((block, index)) = self.open.take() else {
            return out;
        };
        let fresh = match block {
            Block::Thinking => self.details.take_fresh(),
            _ => &[],
        };
        if !fresh.is_empty() {
            let signature = crate::api::pack_reasoning(fresh);
            out.extend(Self::delta(
                index,
                json!({"type": "signature_delta", "signature": signature}),
            ));
        }
        out.extend(event(
            "content_block_stop",
            &json!({"type": "content_block_stop", "index": index}),
        ));
        out
    }

    /// Makes `block` the open one (closing another), with its start event.
    fn ensure(&mut self, block: Block, start: Value) -> (Vec<u8>, usize) {
        if let Some((b, i)) = self.open {
            if b == block {
                return (Vec::new(), i);
            }
        }
        let mut out = self.stop_block();
        let index = self.next_index;
        self.next_index = self.next_index.saturating_add(1);
        out.extend(event(
            "content_block_start",
            &json!({"type": "content_block_start", "index": index, "content_block": start}),
        ));
        self.open = Some((block, index));
        (out, index)
    }

    fn delta(index: usize, delta: Value) -> Vec<u8> {
        event(
            "content_block_delta",
            &json!({"type": "content_block_delta", "index": index, "delta": delta}),
        )
    }

    pub fn chunk(&mut self, c: &ChatChunk) -> Vec<u8> {
        let mut out = self.start(c);
        for ch in &c.choices {
            let d = &ch.delta;
            let details = d.reasoning_details.as_ref().and_then(Value::as_array);
            self.details.add(details);
            let thinking = d.reasoning.as_deref().filter(|r| !r.is_empty());
            if thinking.is_some() || details.is_some_and(|d| !d.is_empty()) {
                let (o, i) = self.ensure(
                    Block::Thinking,
                    json!({"type": "thinking", "thinking": "", "signature": ""}),
                );
                out.extend(o);
                if let Some(r) = thinking {
                    out.extend(Self::delta(
                        i,
                        json!({"type": "thinking_delta", "thinking": r}),
                    ));
                }
            }
            if let Some(t) = d.content.as_deref().filter(|t| !t.is_empty()) {
                let (o, i) = self.ensure(Block::Text, json!({"type": "text", "text": ""}));
                out.extend(o);
                out.extend(Self::delta(i, json!({"type": "text_delta", "text": t})));
            }
            for tc in d.tool_calls.iter().flatten() {
                let id = tc
                    .id
                    .clone()
                    .unwrap_or_else(|| format!("toolu_{}_{}", c.id, tc.index));
                let name = tc
                    .function
                    .as_ref()
                    .and_then(|f| f.name.clone())
                    .unwrap_or_default();
                let (o, i) = self.ensure(
                    Block::Tool(tc.index),
                    json!({"type": "tool_use", "id": id, "name": name, "input": {}}),
                );
                out.extend(o);
                if let Some(a) = tc
                    .function
                    .as_ref()
                    .and_then(|f| f.arguments.as_deref())
                    .filter(|a| !a.is_empty())
                {
                    out.extend(Self::delta(
                        i,
                        json!({"type": "input_json_delta", "partial_json": a}),
                    ));
                }
            }
            if let Some(f) = &ch.finish_reason {
                self.finish = Some(f.clone());
                self.native = ch.native_finish_reason.clone();
            }
        }
        out
    }

    pub fn close(&mut self, last: &ChatChunk, u: &Usage) -> Vec<u8> {
        let mut out = self.start(last);
        out.extend(self.stop_block());
        let reason = stop_reason(
            self.finish.as_deref().or(Some("stop")),
            self.native.as_deref(),
        );
        out.extend(event(
            "message_delta",
            &json!({"type": "message_delta", "delta": {"stop_reason": reason, "stop_sequence": null}, "usage": usage(u)}),
        ));
        out.extend(event("message_stop", &json!({"type": "message_stop"})));
        out
    }

    pub fn fail(&mut self, last: &ChatChunk, err: &Error) -> Vec<u8> {
        let mut out = self.start(last);
        out.extend(self.stop_block());
        out.extend(error_event(err));
        out
    }
}

/// Anthropic's `error` stream event.
pub fn error_event(err: &Error) -> Vec<u8> {
    event("error", &error_body(err))
}

/// The body an Anthropic endpoint gets for a Messages request: the caller's own,
/// with the upstream model ID and without the gateway's fields. A `max_tokens` above
/// `ceiling` (what the endpoint generates at most) is lowered to it, and a thinking
/// budget with it, so that the budget stays below `max_tokens` as Anthropic requires.
pub fn native_body(body: &Value, upstream_model: &str, ceiling: u64) -> Value {
    let mut b = body.clone();
    if let Some(o) = b.as_object_mut() {
        o.insert("model".into(), json!(upstream_model));
        crate::providers::strip_gateway_fields(o);
        // A web search tool runs at most what was reserved for it.
        for t in o
            .get_mut("tools")
            .and_then(Value::as_array_mut)
            .into_iter()
            .flatten()
        {
            if searches_of(t).is_some() && t.get("max_uses").is_none() {
                set_field(t, "max_uses", json!(DEFAULT_MAX_SEARCHES));
            }
        }
        let asked = o.get("max_tokens").and_then(Value::as_u64);
        if asked.is_some_and(|a| a > ceiling) {
            o.insert("max_tokens".into(), json!(ceiling));
            let budget = o
                .get_mut("thinking")
                .and_then(|t| t.get_mut("budget_tokens"));
            if let Some(bt) = budget {
                if bt.as_u64().is_some_and(|b| b >= ceiling) {
                    *bt = json!(ceiling.saturating_sub(1).max(1024));
                }
            }
        }
    }
    b
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{
        AssistantMessage, Choice, Delta, FunctionCallDelta, GenerationMeta, ToolCallDelta,
    };

    #[test]
    fn web_search_server_tools_are_bounded_and_counted() {
        let body = json!({"model": "a/b", "max_tokens": 5, "messages": [{"role": "user", "content": "x"}],
            "tools": [{"type": "web_search_20250305", "name": "web_search", "max_uses": 3},
                      {"type": "web_search_20250305", "name": "more"}, {"name": "f", "input_schema": {"type": "object"}}]});
        let (chat, _) = convert(&body).unwrap();
        assert_eq!(chat.server_searches, 3 + DEFAULT_MAX_SEARCHES);
        let sent = native_body(&body, "up", 64000);
        assert_eq!(sent["tools"][0]["max_uses"], 3);
        assert_eq!(sent["tools"][1]["max_uses"], DEFAULT_MAX_SEARCHES);
        assert!(sent["tools"][2].get("max_uses").is_none());
    }

    #[test]
    fn native_body_lowers_max_tokens_and_the_thinking_budget_to_the_endpoint() {
        let body = json!({"model": "a/b", "max_tokens": 32000, "messages": [],
            "thinking": {"type": "enabled", "budget_tokens": 10000}});
        let b = native_body(&body, "up", 4096);
        assert_eq!(b["model"], "up");
        assert_eq!(b["max_tokens"], 4096);
        assert_eq!(b["thinking"]["budget_tokens"], 4095);
        let within = native_body(&body, "up", 64000);
        assert_eq!(within["max_tokens"], 32000);
        assert_eq!(within["thinking"]["budget_tokens"], 10000);
    }

    #[test]
    fn messages_become_chat() {
        let body = json!({
            "model": "a/b", "max_tokens": 100,
            "system": [{"type": "text", "text": "You are Claude Code.", "cache_control": {"type": "ephemeral"}}],
            "messages": [
                {"role": "user", "content": [{"type": "text", "text": "read a.txt"}, {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "AAAA"}}]},
                {"role": "assistant", "content": [{"type": "thinking", "thinking": "hmm", "signature": "sig"}, {"type": "text", "text": "ok"}, {"type": "tool_use", "id": "toolu_1", "name": "Read", "input": {"path": "a.txt"}}]},
                {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": [{"type": "text", "text": "hello"}]}, {"type": "text", "text": "and?"}]},
                {"role": "system", "content": "reminder"},
            ],
            "tools": [{"name": "Read", "description": "read a file", "input_schema": {"type": "object", "properties": {"path": {"type": "string"}}}}],
            "tool_choice": {"type": "auto", "disable_parallel_tool_use": true},
            "thinking": {"type": "enabled", "budget_tokens": 2000},
            "stop_sequences": ["END"],
            "metadata": {"user_id": "u1"},
            "context_management": {"edits": []},
        });
        let r = to_chat(&body).unwrap();
        let roles: Vec<&str> = r.messages.iter().map(|m| m.role.as_str()).collect();
        assert_eq!(
            roles,
            ["system", "user", "assistant", "tool", "user", "system"]
        );
        let sys = r.messages[0].content.as_ref().unwrap().parts();
        assert_eq!(sys[0].extra["cache_control"], json!({"type": "ephemeral"}));
        let user = r.messages[1].content.as_ref().unwrap().parts();
        assert_eq!(
            user[1].image_url.as_ref().unwrap().url,
            "data:image/png;base64,AAAA"
        );
        let calls = r.messages[2].tool_calls.as_ref().unwrap();
        assert_eq!(calls[0].function.arguments, "{\"path\":\"a.txt\"}");
        assert_eq!(r.messages[2].extra["reasoning"], "hmm");
        assert_eq!(r.messages[3].text(), "hello");
        assert_eq!(r.tool_choice, Some(json!("auto")));
        assert_eq!(r.extra["parallel_tool_calls"], json!(false));
        assert_eq!(r.extra["reasoning"], json!({"max_tokens": 2000}));
        assert_eq!(r.max_tokens, Some(100));
        assert!(!r.extra.contains_key("context_management"));
        let n = count_tokens(
            &json!({"model": "a/b", "messages": [{"role": "user", "content": "hello world"}]}),
        )
        .unwrap();
        assert!(n["input_tokens"].as_u64().unwrap() > 0);
    }

    #[test]
    fn bad_messages_name_the_field() {
        for (body, want) in [
            (
                json!({"model": "a/b", "messages": [{"role": "user", "content": "x"}]}),
                "max_tokens: is required",
            ),
            (
                json!({"model": "a/b", "max_tokens": 5}),
                "messages: is required",
            ),
            (
                json!({"model": "a/b", "max_tokens": 5, "messages": [{"role": "user", "content": [{"type": "hologram"}]}]}),
                "messages[0].content[0].type: unknown content block type",
            ),
            (
                json!({"model": "a/b", "max_tokens": 5, "messages": [{"role": "user", "content": [{"type": "image", "source": {"type": "file"}}]}]}),
                "messages[0].content[0].source.type",
            ),
            (
                json!({"model": "a/b", "max_tokens": 5, "messages": [{"role": "wizard", "content": "x"}]}),
                "messages[0].role: unknown role",
            ),
        ] {
            let e = to_chat(&body).unwrap_err();
            assert_eq!(e.status(), 400);
            assert!(e.to_string().contains(want), "{e}");
        }
        let (_, only) = convert(&json!({"model": "a/b", "max_tokens": 5, "messages": [{"role": "user", "content": "x"}], "tools": [{"type": "web_search_20250305", "name": "web_search"}]})).unwrap();
        assert!(only.unwrap().contains("tools[0].type: server tool"));
        let (_, only) = convert(&json!({"model": "a/b", "max_tokens": 5, "messages": [{"role": "assistant", "content": [{"type": "server_tool_use", "id": "s", "name": "web_search", "input": {}}]}]})).unwrap();
        assert!(only.unwrap().contains("messages[0].content[0].type"));
        let e = Error::Unauthorized("User not found.".into());
        assert_eq!(
            error_body(&e),
            json!({"type": "error", "error": {"type": "authentication_error", "message": "User not found."}})
        );
    }

    fn meta() -> GenerationMeta {
        GenerationMeta {
            id: "gen-1-x".into(),
            created: 1,
            model: "a/b".into(),
            provider: "P".into(),
        }
    }

    #[test]
    fn replies_and_streams_in_anthropic_shape() {
        let mut msg = AssistantMessage::text("hi");
        msg.tool_calls = Some(vec![crate::api::ToolCall {
            id: "c1".into(),
            kind: "function".into(),
            function: crate::api::FunctionCall {
                name: "f".into(),
                arguments: "{\"a\":1}".into(),
            },
        }]);
        let c = meta().completion(
            vec![Choice {
                index: 0,
                message: msg,
                finish_reason: Some("tool_calls".into()),
                native_finish_reason: Some("tool_calls".into()),
                logprobs: None,
            }],
            Some(Usage::new(10, 3)),
        );
        let v = reply(&c);
        assert_eq!(v["type"], "message");
        assert_eq!(
            v["content"][1],
            json!({"type": "tool_use", "id": "c1", "name": "f", "input": {"a": 1}})
        );
        assert_eq!(v["stop_reason"], "tool_use");
        assert_eq!(v["usage"]["input_tokens"], 10);

        let m = meta();
        let mut enc = StreamEncoder::new(5);
        let mut out = enc.chunk(&m.delta_chunk(
            Delta {
                content: Some("Hi".into()),
                ..Default::default()
            },
            None,
        ));
        out.extend(enc.chunk(&m.delta_chunk(
            Delta {
                tool_calls: Some(vec![ToolCallDelta {
                    index: 0,
                    id: Some("c1".into()),
                    kind: None,
                    function: Some(FunctionCallDelta {
                        name: Some("f".into()),
                        arguments: Some("{}".into()),
                    }),
                }]),
                ..Default::default()
            },
            Some("tool_calls"),
        )));
        out.extend(enc.close(&m.chunk(Vec::new()), &Usage::new(5, 2)));
        let text = String::from_utf8(out).unwrap();
        let types: Vec<&str> = text
            .lines()
            .filter_map(|l| l.strip_prefix("event: "))
            .collect();
        assert_eq!(
            types,
            [
                "message_start",
                "content_block_start",
                "content_block_delta",
                "content_block_stop",
                "content_block_start",
                "content_block_delta",
                "content_block_stop",
                "message_delta",
                "message_stop"
            ]
        );
        assert!(text.contains("\"stop_reason\":\"tool_use\""));
        assert!(text.contains("\"partial_json\":\"{}\""));
    }
}
