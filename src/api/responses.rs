//! The OpenAI Responses surface (`POST /responses`), stateless as on OpenRouter: the
//! whole conversation comes in `input` every time. A request is converted to a chat
//! request (one pipeline: routing, admission, translation, billing), and the chat reply
//! or chunks are converted back into a `response` object or the Responses event
//! sequence (`response.created` ... `response.completed`), each event numbered.

use serde_json::{json, Map, Value};

use super::{set_field, ChatChunk, ChatCompletion, ChatRequest, Usage};
use crate::error::{Error, Result};

fn bad(path: &str, rule: impl std::fmt::Display) -> Error {
    Error::BadRequest(format!("{path}: {rule}"))
}

/// Request fields echoed in the `response` object, as OpenAI does.
const ECHOED: &[&str] = &[
    "instructions",
    "max_output_tokens",
    "metadata",
    "parallel_tool_calls",
    "temperature",
    "tool_choice",
    "tools",
    "top_p",
    "text",
    "reasoning",
    "user",
];

/// What a reply needs of its request: the fields it echoes.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Echo(pub Map<String, Value>);

impl Echo {
    pub fn of(body: &Value) -> Echo {
        let mut m = Map::new();
        for k in ECHOED {
            if let Some(v) = body.get(*k).filter(|v| !v.is_null()) {
                m.insert((*k).to_string(), v.clone());
            }
        }
        Echo(m)
    }
}

/// The chat request a Responses body asks for.
pub fn to_chat(body: &Value) -> Result<ChatRequest> {
    let obj = body
        .as_object()
        .ok_or_else(|| Error::bad_request("The body must be a JSON object"))?;
    if obj
        .get("previous_response_id")
        .is_some_and(|v| !v.is_null())
    {
        return Err(bad(
            "previous_response_id",
            "this gateway is stateless: send the whole conversation in `input`",
        ));
    }
    if obj.get("conversation").is_some_and(|v| !v.is_null()) {
        return Err(bad(
            "conversation",
            "this gateway is stateless: send the whole conversation in `input`",
        ));
    }
    let mut messages: Vec<Value> = Vec::new();
    match obj.get("instructions") {
        None | Some(Value::Null) => {}
        Some(Value::String(s)) => messages.push(json!({"role": "system", "content": s})),
        Some(_) => return Err(bad("instructions", "must be a string")),
    }
    match obj.get("input") {
        Some(Value::String(s)) => messages.push(json!({"role": "user", "content": s})),
        Some(Value::Array(items)) => {
            for (i, item) in items.iter().enumerate() {
                input_item(&format!("input[{i}]"), item, &mut messages)?;
            }
        }
        None | Some(Value::Null) => return Err(bad("input", "is required")),
        Some(_) => return Err(bad("input", "must be a string or an array of items")),
    }
    let mut chat = Map::new();
    for k in [
        "model",
        "models",
        "temperature",
        "top_p",
        "top_k",
        "parallel_tool_calls",
        "metadata",
        "user",
        "stream",
        "provider",
        "seed",
        "frequency_penalty",
        "presence_penalty",
        "top_logprobs",
    ] {
        if let Some(v) = obj.get(k).filter(|v| !v.is_null()) {
            chat.insert(k.to_string(), v.clone());
        }
    }
    if let Some(v) = obj.get("max_output_tokens").filter(|v| !v.is_null()) {
        chat.insert("max_tokens".into(), v.clone());
    }
    if let Some(tools) = obj.get("tools").filter(|v| !v.is_null()) {
        chat.insert("tools".into(), convert_tools(tools)?);
    }
    if let Some(tc) = obj.get("tool_choice").filter(|v| !v.is_null()) {
        chat.insert("tool_choice".into(), convert_tool_choice(tc)?);
    }
    if let Some(format) = obj.get("text").and_then(|t| t.get("format")) {
        if let Some(rf) = convert_format(format)? {
            chat.insert("response_format".into(), rf);
        }
    }
    if let Some(r) = obj.get("reasoning").filter(|v| !v.is_null()) {
        let effort = r.get("effort").cloned().unwrap_or(Value::Null);
        if !effort.is_null() {
            chat.insert("reasoning".into(), json!({ "effort": effort }));
        }
    }
    // Reasoning that no text or call followed has no turn to go back with.
    messages.retain(|m| {
        m.get("role") != Some(&json!("assistant"))
            || m.get("content").is_some_and(|c| !c.is_null())
            || m.get("tool_calls").is_some()
    });
    chat.insert("messages".into(), Value::Array(messages));
    ChatRequest::from_value(Value::Object(chat))
}

/// One `input` item appended to the chat messages.
fn input_item(path: &str, item: &Value, out: &mut Vec<Value>) -> Result<()> {
    let o = item
        .as_object()
        .ok_or_else(|| bad(path, "must be an object"))?;
    let ty = o
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or(if o.contains_key("role") {
            "message"
        } else {
            ""
        });
    match ty {
        "message" => {
            let role = o
                .get("role")
                .and_then(Value::as_str)
                .ok_or_else(|| bad(&format!("{path}.role"), "is required"))?;
            if !matches!(role, "user" | "assistant" | "system" | "developer") {
                return Err(bad(
                    &format!("{path}.role"),
                    format!("unknown role {role:?} (expected user, assistant, system or developer)"),
                ));
            }
            let content = match o.get("content") {
                Some(Value::String(s)) => json!(s),
                Some(Value::Array(parts)) => {
                    let mut out_parts = Vec::new();
                    for (j, p) in parts.iter().enumerate() {
                        if let Some(p) = content_part(&format!("{path}.content[{j}]"), p)? {
                            out_parts.push(p);
                        }
                    }
                    Value::Array(out_parts)
                }
                _ => return Err(bad(&format!("{path}.content"), "must be a string or an array of parts")),
            };
            match out.last_mut() {
                // The text of a turn whose reasoning came first.
                Some(Value::Object(last))
                    if role == "assistant"
                        && last.get("role") == Some(&json!("assistant"))
                        && last.get("content").is_none_or(Value::is_null)
                        && last.get("tool_calls").is_none() =>
                {
                    last.insert("content".into(), content);
                }
                _ => out.push(json!({"role": role, "content": content})),
            }
        }
        "function_call" => {
            let s = |k: &str| -> Result<String> {
                o.get(k)
                    .and_then(Value::as_str)
                    .map(str::to_string)
                    .ok_or_else(|| bad(&format!("{path}.{k}"), "is required"))
            };
            let call = json!({
                "id": s("call_id")?,
                "type": "function",
                "function": {"name": s("name")?, "arguments": o.get("arguments").and_then(Value::as_str).unwrap_or("{}")},
            });
            // Calls after an assistant message belong to it, as chat keeps them.
            match out.last_mut() {
                Some(Value::Object(last)) if last.get("role") == Some(&json!("assistant")) => {
                    let calls = last.entry("tool_calls").or_insert_with(|| json!([]));
                    if let Value::Array(a) = calls {
                        a.push(call);
                    }
                }
                _ => out.push(json!({"role": "assistant", "content": null, "tool_calls": [call]})),
            }
        }
        "function_call_output" => {
            let id = o
                .get("call_id")
                .and_then(Value::as_str)
                .ok_or_else(|| bad(&format!("{path}.call_id"), "is required"))?;
            let output = match o.get("output") {
                Some(Value::String(s)) => s.clone(),
                Some(Value::Array(parts)) => parts
                    .iter()
                    .filter_map(|p| p.get("text").and_then(Value::as_str))
                    .collect::<Vec<_>>()
                    .join("\n"),
                _ => return Err(bad(&format!("{path}.output"), "must be a string or an array of parts")),
            };
            out.push(json!({"role": "tool", "tool_call_id": id, "content": output}));
        }
        // Reasoning of an earlier turn goes back with the assistant turn it belongs to,
        // as `reasoning_details` (thinking signatures and the like that providers need).
        "reasoning" => {
            let details = reasoning_details_of(o);
            if details.is_empty() {
                return Ok(());
            }
            match out.last_mut() {
                Some(Value::Object(last))
                    if last.get("role") == Some(&json!("assistant"))
                        && last.get("content").is_none_or(Value::is_null) =>
                {
                    let d = last
                        .entry("reasoning_details")
                        .or_insert_with(|| json!([]));
                    if let Value::Array(a) = d {
                        a.extend(details);
                    }
                }
                _ => out.push(
                    json!({"role": "assistant", "content": null, "reasoning_details": details}),
                ),
            }
        }
        "" => return Err(bad(&format!("{path}.type"), "is required")),
        other => {
            return Err(bad(
                &format!("{path}.type"),
                format!("item type {other:?} is not supported (message, function_call, function_call_output, reasoning)"),
            ))
        }
    }
    Ok(())
}

/// The `reasoning_details` a Responses reasoning item carries: what this gateway packed
/// into its `encrypted_content`; otherwise an encrypted blob of its provider's
/// (OpenAI's, with `format` when the item names one), and its text with a signature
/// when it has one (OpenRouter's own reasoning items).
fn reasoning_details_of(o: &Map<String, Value>) -> Vec<Value> {
    let blob = o.get("encrypted_content").and_then(Value::as_str);
    if let Some(details) = blob.and_then(crate::api::unpack_reasoning) {
        return details;
    }
    let format = o
        .get("format")
        .and_then(Value::as_str)
        .unwrap_or("openai-responses-v1");
    let mut out = Vec::new();
    let text: String = ["content", "summary"]
        .iter()
        .filter_map(|k| o.get(*k).and_then(Value::as_array))
        .find(|parts| !parts.is_empty())
        .into_iter()
        .flatten()
        .filter_map(|p| p.get("text").and_then(Value::as_str))
        .collect();
    if let Some(sig) = o.get("signature").and_then(Value::as_str) {
        out.push(
            json!({"type": "reasoning.text", "text": text, "signature": sig,
                        "format": format, "index": 0}),
        );
    }
    if let Some(data) = blob {
        let mut d = json!({"type": "reasoning.encrypted", "data": data, "format": format,
                           "index": out.len()});
        if let Some(id) = o.get("id") {
            set_field(&mut d, "id", id.clone());
        }
        out.push(d);
    }
    out
}

fn content_part(path: &str, p: &Value) -> Result<Option<Value>> {
    let ty = p
        .get("type")
        .and_then(Value::as_str)
        .ok_or_else(|| bad(&format!("{path}.type"), "is required"))?;
    let text = |k: &str| -> Result<Value> {
        p.get(k)
            .and_then(Value::as_str)
            .map(|t| json!({"type": "text", "text": t}))
            .ok_or_else(|| bad(&format!("{path}.{k}"), "is required"))
    };
    Ok(Some(match ty {
        "input_text" | "output_text" | "text" => text("text")?,
        "refusal" => return Ok(None),
        "input_image" => {
            let url = p.get("image_url").and_then(Value::as_str).ok_or_else(|| {
                bad(
                    &format!("{path}.image_url"),
                    "is required (file_id is not supported)",
                )
            })?;
            let mut img = json!({"url": url});
            if let Some(d) = p.get("detail").filter(|d| !d.is_null()) {
                set_field(&mut img, "detail", d.clone());
            }
            json!({"type": "image_url", "image_url": img})
        }
        "input_file" => {
            let data = p.get("file_data").and_then(Value::as_str).ok_or_else(|| {
                bad(
                    &format!("{path}.file_data"),
                    "is required (file_id and file_url are not supported)",
                )
            })?;
            let filename = p
                .get("filename")
                .and_then(Value::as_str)
                .unwrap_or("file.pdf");
            json!({"type": "file", "file": {"filename": filename, "file_data": data}})
        }
        other => {
            return Err(bad(
                &format!("{path}.type"),
                format!("unknown content part type {other:?}"),
            ))
        }
    }))
}

fn convert_tools(tools: &Value) -> Result<Value> {
    let list = tools
        .as_array()
        .ok_or_else(|| bad("tools", "must be an array"))?;
    let mut out = Vec::with_capacity(list.len());
    for (i, t) in list.iter().enumerate() {
        let ty = t.get("type").and_then(Value::as_str).unwrap_or("function");
        if ty != "function" {
            return Err(bad(
                &format!("tools[{i}].type"),
                format!("only function tools are supported, not {ty:?}"),
            ));
        }
        let mut f = Map::new();
        for k in ["name", "description", "parameters", "strict"] {
            if let Some(v) = t.get(k).filter(|v| !v.is_null()) {
                f.insert(k.to_string(), v.clone());
            }
        }
        out.push(json!({"type": "function", "function": f}));
    }
    Ok(Value::Array(out))
}

fn convert_tool_choice(tc: &Value) -> Result<Value> {
    match tc {
        Value::String(_) => Ok(tc.clone()),
        Value::Object(o) => match o.get("type").and_then(Value::as_str) {
            Some("function") => {
                let name = o
                    .get("name")
                    .and_then(Value::as_str)
                    .ok_or_else(|| bad("tool_choice.name", "is required"))?;
                Ok(json!({"type": "function", "function": {"name": name}}))
            }
            Some(other) => Err(bad(
                "tool_choice.type",
                format!("{other:?} is not supported"),
            )),
            None => Err(bad("tool_choice.type", "is required")),
        },
        _ => Err(bad("tool_choice", "must be a string or an object")),
    }
}

fn convert_format(format: &Value) -> Result<Option<Value>> {
    match format.get("type").and_then(Value::as_str) {
        None | Some("text") => Ok(None),
        Some("json_object") => Ok(Some(json!({"type": "json_object"}))),
        Some("json_schema") => {
            let mut js = Map::new();
            for k in ["name", "schema", "strict", "description"] {
                if let Some(v) = format.get(k).filter(|v| !v.is_null()) {
                    js.insert(k.to_string(), v.clone());
                }
            }
            Ok(Some(json!({"type": "json_schema", "json_schema": js})))
        }
        Some(other) => Err(bad(
            "text.format.type",
            format!("must be text, json_object or json_schema, not {other:?}"),
        )),
    }
}

// ------------------------------------------------------------------ replies

fn usage(u: &Usage) -> Value {
    json!({
        "input_tokens": u.prompt_tokens,
        "input_tokens_details": {"cached_tokens": u.prompt_tokens_details.as_ref().map_or(0, |d| d.cached_tokens)},
        "output_tokens": u.completion_tokens,
        "output_tokens_details": {"reasoning_tokens": u.completion_tokens_details.as_ref().map_or(0, |d| d.reasoning_tokens)},
        "total_tokens": u.prompt_tokens.saturating_add(u.completion_tokens),
        "cost": u.cost.map(|c| crate::money::tagged(c.0)),
    })
}

/// `status` and `incomplete_details` of a finished response.
fn status(finish_reason: Option<&str>) -> (&'static str, Value) {
    match finish_reason {
        Some("length") => ("incomplete", json!({"reason": "max_output_tokens"})),
        Some("content_filter") => ("incomplete", json!({"reason": "content_filter"})),
        _ => ("completed", Value::Null),
    }
}

/// The `response` object around `output`.
fn response(
    id: &str,
    created: u64,
    model: &str,
    echo: &Echo,
    status: &str,
    output: Vec<Value>,
) -> Value {
    let mut v = json!({
        "id": id,
        "object": "response",
        "created_at": created,
        "status": status,
        "model": model,
        "output": output,
        "error": null,
        "incomplete_details": null,
        "parallel_tool_calls": true,
        "tool_choice": "auto",
        "tools": [],
    });
    for (k, val) in &echo.0 {
        set_field(&mut v, k, val.clone());
    }
    v
}

fn message_item(id: &str, text: &str, status: &str) -> Value {
    json!({
        "type": "message",
        "id": id,
        "status": status,
        "role": "assistant",
        "content": [{"type": "output_text", "text": text, "annotations": []}],
    })
}

/// A reasoning output item: its text as the summary, and the turn's `reasoning_details`
/// packed into `encrypted_content`, to come back on the next turn.
fn reasoning_item(id: &str, text: &str, details: &[Value]) -> Value {
    let summary = if text.is_empty() {
        json!([])
    } else {
        json!([{"type": "summary_text", "text": text}])
    };
    let mut item = json!({"type": "reasoning", "id": id, "summary": summary});
    if !details.is_empty() {
        set_field(
            &mut item,
            "encrypted_content",
            json!(crate::api::pack_reasoning(details)),
        );
    }
    item
}

fn call_item(id: &str, call_id: &str, name: &str, arguments: &str, status: &str) -> Value {
    json!({
        "type": "function_call",
        "id": id,
        "call_id": call_id,
        "name": name,
        "arguments": arguments,
        "status": status,
    })
}

/// A chat completion as a `response` object.
pub fn reply(c: &ChatCompletion, echo: &Echo) -> Value {
    let mut output = Vec::new();
    let first = c.choices.first();
    let message = first.map(|ch| &ch.message);
    let reasoning = message.and_then(|m| m.reasoning.as_deref()).unwrap_or("");
    let details = message
        .and_then(|m| m.reasoning_details.as_ref())
        .and_then(Value::as_array)
        .map_or(&[][..], Vec::as_slice);
    if !reasoning.is_empty() || !details.is_empty() {
        output.push(reasoning_item(&format!("rs_{}", c.id), reasoning, details));
    }
    let text = message.and_then(|m| m.content.as_deref()).unwrap_or("");
    if !text.is_empty() {
        output.push(message_item(&format!("msg_{}", c.id), text, "completed"));
    }
    for (i, call) in message
        .and_then(|m| m.tool_calls.as_ref())
        .into_iter()
        .flatten()
        .enumerate()
    {
        output.push(call_item(
            &format!("fc_{}_{i}", c.id),
            &call.id,
            &call.function.name,
            &call.function.arguments,
            "completed",
        ));
    }
    let (st, incomplete) = status(first.and_then(|ch| ch.finish_reason.as_deref()));
    let mut v = response(&c.id, c.created, &c.model, echo, st, output);
    set_field(&mut v, "incomplete_details", incomplete);
    set_field(&mut v, "output_text", json!(text));
    if let Some(u) = &c.usage {
        set_field(&mut v, "usage", usage(u));
    }
    if let Some(p) = &c.provider {
        set_field(&mut v, "provider", json!(p));
    }
    v
}

// ------------------------------------------------------------------ streams

/// An output item being streamed.
#[derive(Debug, Clone)]
struct Open {
    index: usize,
    id: String,
    text: String,
    /// For function calls: (call ID, name).
    call: Option<(String, String)>,
}

/// Turns stamped chat chunks into the Responses event sequence.
#[derive(Debug)]
pub struct StreamEncoder {
    echo: Echo,
    seq: u64,
    started: bool,
    id: String,
    created: u64,
    model: String,
    next_index: usize,
    reasoning: Option<Open>,
    /// Reasoning items opened so far (for unique IDs).
    reasonings: usize,
    /// The stream's `reasoning_details`; each reasoning item takes those since the last.
    details: crate::api::ReasoningLog,
    message: Option<Open>,
    /// Open function calls by the chat chunk's tool-call index.
    calls: Vec<(u32, Open)>,
    /// Finished items, in output order.
    done: Vec<(usize, Value)>,
    finish_reason: Option<String>,
}

impl StreamEncoder {
    pub fn new(echo: Echo) -> Self {
        StreamEncoder {
            echo,
            seq: 0,
            started: false,
            id: String::new(),
            created: 0,
            model: String::new(),
            next_index: 0,
            reasoning: None,
            reasonings: 0,
            details: crate::api::ReasoningLog::default(),
            message: None,
            calls: Vec::new(),
            done: Vec::new(),
            finish_reason: None,
        }
    }

    fn event(&mut self, ty: &str, mut data: Value) -> Vec<u8> {
        set_field(&mut data, "type", json!(ty));
        set_field(&mut data, "sequence_number", json!(self.seq));
        self.seq = self.seq.saturating_add(1);
        let mut out = format!("event: {ty}\ndata: ").into_bytes();
        if serde_json::to_writer(&mut out, &crate::money::Exact(&data)).is_err() {
            out.extend_from_slice(b"{}");
        }
        out.extend_from_slice(b"\n\n");
        out
    }

    fn skeleton(&self, status: &str) -> Value {
        response(
            &self.id,
            self.created,
            &self.model,
            &self.echo,
            status,
            Vec::new(),
        )
    }

    fn start(&mut self, c: &ChatChunk) -> Vec<u8> {
        if self.started {
            return Vec::new();
        }
        self.started = true;
        self.id = c.id.clone();
        self.created = c.created;
        self.model = c.model.clone();
        let r = self.skeleton("in_progress");
        let mut out = self.event("response.created", json!({"response": r}));
        out.extend(self.event("response.in_progress", json!({"response": r})));
        out
    }

    fn open(&mut self, id: String, call: Option<(String, String)>) -> Open {
        let index = self.next_index;
        self.next_index = self.next_index.saturating_add(1);
        Open {
            index,
            id,
            text: String::new(),
            call,
        }
    }

    fn close_reasoning(&mut self) -> Vec<u8> {
        let Some(r) = self.reasoning.take() else {
            return Vec::new();
        };
        let item = reasoning_item(&r.id, &r.text, self.details.take_fresh());
        let mut out = self.event(
            "response.reasoning_summary_text.done",
            json!({"item_id": r.id, "output_index": r.index, "summary_index": 0, "text": r.text}),
        );
        out.extend(self.event(
            "response.reasoning_summary_part.done",
            json!({"item_id": r.id, "output_index": r.index, "summary_index": 0, "part": {"type": "summary_text", "text": r.text}}),
        ));
        out.extend(self.event(
            "response.output_item.done",
            json!({"output_index": r.index, "item": item}),
        ));
        self.done.push((r.index, item));
        out
    }

    fn close_message(&mut self) -> Vec<u8> {
        let Some(m) = self.message.take() else {
            return Vec::new();
        };
        let part = json!({"type": "output_text", "text": m.text, "annotations": []});
        let item = message_item(&m.id, &m.text, "completed");
        let mut out = self.event(
            "response.output_text.done",
            json!({"item_id": m.id, "output_index": m.index, "content_index": 0, "text": m.text, "logprobs": []}),
        );
        out.extend(self.event(
            "response.content_part.done",
            json!({"item_id": m.id, "output_index": m.index, "content_index": 0, "part": part}),
        ));
        out.extend(self.event(
            "response.output_item.done",
            json!({"output_index": m.index, "item": item}),
        ));
        self.done.push((m.index, item));
        out
    }

    fn close_calls(&mut self) -> Vec<u8> {
        let mut out = Vec::new();
        for (_, c) in std::mem::take(&mut self.calls) {
            let (call_id, name) = c.call.clone().unwrap_or_default();
            let item = call_item(&c.id, &call_id, &name, &c.text, "completed");
            out.extend(self.event(
                "response.function_call_arguments.done",
                json!({"item_id": c.id, "output_index": c.index, "arguments": c.text}),
            ));
            out.extend(self.event(
                "response.output_item.done",
                json!({"output_index": c.index, "item": item}),
            ));
            self.done.push((c.index, item));
        }
        out
    }

    /// One stamped chat chunk.
    pub fn chunk(&mut self, c: &ChatChunk) -> Vec<u8> {
        let mut out = self.start(c);
        for ch in &c.choices {
            let d = &ch.delta;
            let details = d.reasoning_details.as_ref().and_then(Value::as_array);
            self.details.add(details);
            let thinking = d.reasoning.as_deref().filter(|r| !r.is_empty());
            if self.reasoning.is_none() && (thinking.is_some() || details.is_some()) {
                let id = match self.reasonings {
                    0 => format!("rs_{}", self.id),
                    n => format!("rs_{}_{n}", self.id),
                };
                self.reasonings = self.reasonings.saturating_add(1);
                let open = self.open(id, None);
                out.extend(self.event(
                    "response.output_item.added",
                    json!({"output_index": open.index, "item": {"type": "reasoning", "id": open.id, "summary": []}}),
                ));
                out.extend(self.event(
                    "response.reasoning_summary_part.added",
                    json!({"item_id": open.id, "output_index": open.index, "summary_index": 0, "part": {"type": "summary_text", "text": ""}}),
                ));
                self.reasoning = Some(open);
            }
            if let Some(r) = thinking {
                if let Some(open) = self.reasoning.as_mut() {
                    open.text.push_str(r);
                    let (id, index) = (open.id.clone(), open.index);
                    out.extend(self.event(
                        "response.reasoning_summary_text.delta",
                        json!({"item_id": id, "output_index": index, "summary_index": 0, "delta": r}),
                    ));
                }
            }
            if let Some(t) = d.content.as_deref().filter(|t| !t.is_empty()) {
                out.extend(self.close_reasoning());
                if self.message.is_none() {
                    let open = self.open(format!("msg_{}", self.id), None);
                    out.extend(self.event(
                        "response.output_item.added",
                        json!({"output_index": open.index, "item": {"type": "message", "id": open.id, "status": "in_progress", "role": "assistant", "content": []}}),
                    ));
                    out.extend(self.event(
                        "response.content_part.added",
                        json!({"item_id": open.id, "output_index": open.index, "content_index": 0, "part": {"type": "output_text", "text": "", "annotations": []}}),
                    ));
                    self.message = Some(open);
                }
                if let Some(open) = self.message.as_mut() {
                    open.text.push_str(t);
                    let (id, index) = (open.id.clone(), open.index);
                    out.extend(self.event(
                        "response.output_text.delta",
                        json!({"item_id": id, "output_index": index, "content_index": 0, "delta": t, "logprobs": []}),
                    ));
                }
            }
            for tc in d.tool_calls.iter().flatten() {
                out.extend(self.close_reasoning());
                out.extend(self.close_message());
                let known = self.calls.iter().position(|(i, _)| *i == tc.index);
                let pos = match known {
                    Some(p) => p,
                    None => {
                        let n = self.calls.len();
                        let call_id = tc
                            .id
                            .clone()
                            .unwrap_or_else(|| format!("call_{}_{n}", self.id));
                        let name = tc
                            .function
                            .as_ref()
                            .and_then(|f| f.name.clone())
                            .unwrap_or_default();
                        let open = self.open(
                            format!("fc_{}_{n}", self.id),
                            Some((call_id.clone(), name.clone())),
                        );
                        out.extend(self.event(
                            "response.output_item.added",
                            json!({"output_index": open.index, "item": call_item(&open.id, &call_id, &name, "", "in_progress")}),
                        ));
                        self.calls.push((tc.index, open));
                        n
                    }
                };
                let args = tc
                    .function
                    .as_ref()
                    .and_then(|f| f.arguments.clone())
                    .unwrap_or_default();
                if args.is_empty() {
                    continue;
                }
                let Some((_, open)) = self.calls.get_mut(pos) else {
                    continue;
                };
                open.text.push_str(&args);
                let (id, index) = (open.id.clone(), open.index);
                out.extend(self.event(
                    "response.function_call_arguments.delta",
                    json!({"item_id": id, "output_index": index, "delta": args}),
                ));
            }
            if let Some(f) = &ch.finish_reason {
                self.finish_reason = Some(f.clone());
            }
        }
        out
    }

    /// The stream ended well: close every item, then `response.completed` with usage.
    pub fn close(&mut self, last: &ChatChunk, u: &Usage) -> Vec<u8> {
        let mut out = self.start(last);
        out.extend(self.close_reasoning());
        out.extend(self.close_message());
        out.extend(self.close_calls());
        let (st, incomplete) = status(self.finish_reason.as_deref());
        let mut r = self.skeleton(st);
        self.done.sort_by_key(|(i, _)| *i);
        let text: String = self
            .done
            .iter()
            .filter(|(_, item)| item.get("type").and_then(Value::as_str) == Some("message"))
            .filter_map(|(_, item)| item.pointer("/content/0/text").and_then(Value::as_str))
            .collect();
        set_field(
            &mut r,
            "output",
            Value::Array(self.done.iter().map(|(_, v)| v.clone()).collect()),
        );
        set_field(&mut r, "incomplete_details", incomplete);
        set_field(&mut r, "output_text", json!(text));
        set_field(&mut r, "usage", usage(u));
        let ty = if st == "completed" {
            "response.completed"
        } else {
            "response.incomplete"
        };
        out.extend(self.event(ty, json!({"response": r})));
        out
    }

    /// The stream failed: `response.failed` with the error.
    pub fn fail(&mut self, last: &ChatChunk, err: &Error) -> Vec<u8> {
        let mut out = self.start(last);
        let mut r = self.skeleton("failed");
        set_field(
            &mut r,
            "error",
            json!({"code": if err.status() == 408 { "timeout" } else { "server_error" }, "message": err.public_message()}),
        );
        out.extend(self.event("response.failed", json!({"response": r})));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{
        AssistantMessage, Choice, Delta, FunctionCall, FunctionCallDelta, GenerationMeta, ToolCall,
        ToolCallDelta,
    };

    fn meta() -> GenerationMeta {
        GenerationMeta {
            id: "gen-1-x".into(),
            created: 7,
            model: "a/b".into(),
            provider: "P".into(),
        }
    }

    #[test]
    fn input_items_become_chat_messages() {
        let body = json!({
            "model": "a/b",
            "instructions": "be brief",
            "input": [
                {"role": "user", "content": [{"type": "input_text", "text": "weather?"}, {"type": "input_image", "image_url": "https://x/y.png", "detail": "low"}]},
                {"type": "reasoning", "id": "rs_1", "summary": []},
                {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "checking"}]},
                {"type": "function_call", "call_id": "c1", "name": "get_weather", "arguments": "{\"city\":\"Paris\"}"},
                {"type": "function_call_output", "call_id": "c1", "output": "sunny"},
            ],
            "tools": [{"type": "function", "name": "get_weather", "parameters": {"type": "object", "properties": {}}}],
            "tool_choice": {"type": "function", "name": "get_weather"},
            "max_output_tokens": 50,
            "text": {"format": {"type": "json_schema", "name": "w", "schema": {"type": "object"}}},
            "reasoning": {"effort": "low", "summary": "auto"},
            "store": false,
        });
        let r = to_chat(&body).unwrap();
        let roles: Vec<&str> = r.messages.iter().map(|m| m.role.as_str()).collect();
        assert_eq!(roles, ["system", "user", "assistant", "tool"]);
        assert_eq!(
            r.messages[2].tool_calls.as_ref().unwrap()[0].function.name,
            "get_weather"
        );
        assert_eq!(r.messages[2].text(), "checking");
        assert_eq!(r.messages[3].tool_call_id.as_deref(), Some("c1"));
        assert_eq!(r.max_tokens, Some(50));
        assert_eq!(r.tools.as_ref().unwrap()[0].function.name, "get_weather");
        assert_eq!(
            serde_json::to_value(&r.tool_choice).unwrap()["function"]["name"],
            "get_weather"
        );
        assert_eq!(
            serde_json::to_value(&r.response_format).unwrap()["json_schema"]["name"],
            "w"
        );
        assert_eq!(
            serde_json::to_value(&r.reasoning).unwrap(),
            json!({"effort": "low"})
        );
        let p = r.messages[1].content.as_ref().unwrap().parts();
        assert_eq!(p[1].image_url.as_ref().unwrap().url, "https://x/y.png");
        assert_eq!(
            to_chat(&json!({"model": "a/b", "input": "hi"}))
                .unwrap()
                .messages[0]
                .text(),
            "hi"
        );
    }

    #[test]
    fn unsupported_input_names_the_field() {
        for (body, want) in [
            (json!({"model": "a/b"}), "input: is required"),
            (
                json!({"model": "a/b", "input": 5}),
                "input: must be a string or an array",
            ),
            (
                json!({"model": "a/b", "input": [{"type": "item_reference", "id": "x"}]}),
                "input[0].type: item type \"item_reference\"",
            ),
            (
                json!({"model": "a/b", "input": "x", "previous_response_id": "resp_1"}),
                "previous_response_id",
            ),
            (
                json!({"model": "a/b", "input": "x", "tools": [{"type": "web_search"}]}),
                "tools[0].type: only function tools",
            ),
            (
                json!({"model": "a/b", "input": [{"role": "wizard", "content": "x"}]}),
                "input[0].role: unknown role",
            ),
            (
                json!({"model": "a/b", "input": [{"role": "user", "content": [{"type": "input_image", "file_id": "f"}]}]}),
                "input[0].content[0].image_url",
            ),
            (
                json!({"model": "a/b", "input": "x", "text": {"format": {"type": "yaml"}}}),
                "text.format.type",
            ),
            (
                json!({"model": "a/b", "input": [{"type": "function_call_output", "call_id": "nope", "output": "x"}]}),
                "answers no tool call",
            ),
        ] {
            let e = to_chat(&body).unwrap_err();
            assert_eq!(e.status(), 400, "{body}");
            assert!(e.to_string().contains(want), "{e}");
        }
    }

    /// The call to `f` (ID `c9`) the reply tests make.
    fn call_f() -> ToolCall {
        ToolCall {
            id: "c9".into(),
            kind: "function".into(),
            function: FunctionCall {
                name: "f".into(),
                arguments: "{}".into(),
            },
        }
    }

    /// A completion of `msg` that stopped for its tool calls.
    fn stopped_for_calls(msg: AssistantMessage, usage: Option<Usage>) -> ChatCompletion {
        meta().completion(
            vec![Choice {
                index: 0,
                message: msg,
                finish_reason: Some("tool_calls".into()),
                native_finish_reason: None,
                logprobs: None,
            }],
            usage,
        )
    }

    #[test]
    fn replies_have_output_items() {
        let mut msg = AssistantMessage::text("Paris is sunny");
        msg.reasoning = Some("think".into());
        msg.tool_calls = Some(vec![call_f()]);
        let c = stopped_for_calls(msg, Some(Usage::new(10, 5)));
        let v = reply(
            &c,
            &Echo::of(&json!({"temperature": 0.5, "tools": [], "max_output_tokens": 9})),
        );
        assert_eq!(v["object"], "response");
        assert_eq!(v["status"], "completed");
        let types: Vec<&str> = v["output"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["type"].as_str().unwrap())
            .collect();
        assert_eq!(types, ["reasoning", "message", "function_call"]);
        assert_eq!(v["output"][2]["call_id"], "c9");
        assert_eq!(v["output_text"], "Paris is sunny");
        assert_eq!(v["usage"]["input_tokens"], 10);
        assert_eq!(v["usage"]["total_tokens"], 15);
        assert_eq!(v["temperature"], 0.5);
        assert_eq!(v["max_output_tokens"], 9);
    }

    #[test]
    fn reasoning_details_round_trip_through_reasoning_items() {
        let details = json!([
            {"type": "reasoning.text", "text": "I should call f.", "signature": "EqQBsig",
             "format": "anthropic-claude-v1", "index": 0},
            {"type": "reasoning.encrypted", "data": "c2ln", "id": "c9",
             "format": "google-gemini-v1", "index": 1}
        ]);
        let msg = AssistantMessage {
            role: "assistant".into(),
            reasoning: Some("I should call f.".into()),
            reasoning_details: Some(details.clone()),
            tool_calls: Some(vec![call_f()]),
            ..Default::default()
        };
        let c = stopped_for_calls(msg, None);
        let out = reply(&c, &Echo::default())["output"].clone();
        assert_eq!(out[0]["type"], "reasoning");
        assert!(out[0]["encrypted_content"]
            .as_str()
            .unwrap()
            .starts_with("mmx1."));
        // The next turn sends the output items back: the details return with the call.
        let mut input = vec![json!({"role": "user", "content": "go"})];
        input.extend(out.as_array().unwrap().iter().cloned());
        input.push(json!({"type": "function_call_output", "call_id": "c9", "output": "ok"}));
        let r = to_chat(&json!({"model": "a/b", "input": input})).unwrap();
        let roles: Vec<&str> = r.messages.iter().map(|m| m.role.as_str()).collect();
        assert_eq!(roles, ["user", "assistant", "tool"]);
        assert_eq!(r.messages[1].extra["reasoning_details"], details);
        assert_eq!(r.messages[1].tool_calls.as_ref().unwrap()[0].id, "c9");
        // OpenAI's own reasoning items and OpenRouter's signed ones are kept too; one
        // that no turn followed is dropped.
        let r = to_chat(&json!({"model": "a/b", "input": [
            {"role": "user", "content": "go"},
            {"type": "reasoning", "id": "rs_x", "summary": [], "encrypted_content": "gAAAAB-openai"},
            {"type": "reasoning", "id": "rs_y", "format": "anthropic-claude-v1", "signature": "EqSig",
             "summary": [{"type": "summary_text", "text": "hm"}]},
            {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "done"}]},
            {"role": "user", "content": "again"},
            {"type": "reasoning", "id": "rs_z", "summary": [], "encrypted_content": "gAAAAB-dangling"}
        ]}))
        .unwrap();
        assert_eq!(r.messages.len(), 3);
        assert_eq!(r.messages[1].text(), "done");
        assert_eq!(
            r.messages[1].extra["reasoning_details"],
            json!([
                {"type": "reasoning.encrypted", "data": "gAAAAB-openai", "format": "openai-responses-v1", "index": 0, "id": "rs_x"},
                {"type": "reasoning.text", "text": "hm", "signature": "EqSig", "format": "anthropic-claude-v1", "index": 0}
            ])
        );
    }

    #[test]
    fn streamed_reasoning_items_carry_the_joined_details() {
        let m = meta();
        let mut enc = StreamEncoder::new(Echo::default());
        let mut out = Vec::new();
        for (text, sig) in [("I should ", None), ("call f.", Some("EqQBsig"))] {
            let mut d = json!({"type": "reasoning.text", "text": text, "format": "anthropic-claude-v1", "index": 0});
            if let Some(sig) = sig {
                d["signature"] = json!(sig);
            }
            out.extend(enc.chunk(&m.delta_chunk(
                Delta {
                    reasoning: Some(text.into()),
                    reasoning_details: Some(json!([d])),
                    ..Default::default()
                },
                None,
            )));
        }
        // A signature that comes with a call, after the reasoning item closed.
        out.extend(enc.chunk(&m.delta_chunk(said("ok"), None)));
        out.extend(enc.chunk(&m.delta_chunk(
            Delta {
                reasoning_details: Some(json!([{"type": "reasoning.encrypted", "data": "c2ln", "id": "c1", "format": "google-gemini-v1", "index": 1}])),
                ..call(0, Some(("c1", "f")), "{}")
            },
            Some("tool_calls"),
        )));
        out.extend(enc.close(&m.chunk(Vec::new()), &Usage::new(3, 4)));
        let evs = events(&out);
        let output = evs.last().unwrap()["response"]["output"].clone();
        let types: Vec<&str> = output
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["type"].as_str().unwrap())
            .collect();
        assert_eq!(
            types,
            ["reasoning", "message", "reasoning", "function_call"]
        );
        let unpack = |i: usize| {
            crate::api::unpack_reasoning(output[i]["encrypted_content"].as_str().unwrap()).unwrap()
        };
        assert_eq!(
            unpack(0),
            vec![
                json!({"type": "reasoning.text", "text": "I should call f.", "signature": "EqQBsig",
                        "format": "anthropic-claude-v1", "index": 0})
            ]
        );
        assert_eq!(unpack(2)[0]["id"], "c1");
        assert_ne!(output[0]["id"], output[2]["id"]);
        assert_eq!(output[0]["summary"][0]["text"], "I should call f.");
    }

    /// A delta of text.
    fn said(text: &str) -> Delta {
        Delta {
            content: Some(text.into()),
            ..Default::default()
        }
    }

    /// A delta of tool call `index`: its start (with `id` and `name`) or more arguments.
    fn call(index: u32, start: Option<(&str, &str)>, args: &str) -> Delta {
        Delta {
            tool_calls: Some(vec![ToolCallDelta {
                index,
                id: start.map(|(id, _)| id.into()),
                kind: start.map(|_| "function".into()),
                function: Some(FunctionCallDelta {
                    name: start.map(|(_, name)| name.into()),
                    arguments: Some(args.into()),
                }),
            }]),
            ..Default::default()
        }
    }

    fn events(bytes: &[u8]) -> Vec<Value> {
        String::from_utf8(bytes.to_vec())
            .unwrap()
            .split("\n\n")
            .filter_map(|e| e.lines().find_map(|l| l.strip_prefix("data: ")))
            .map(|d| serde_json::from_str(d).unwrap())
            .collect()
    }

    #[test]
    fn streams_follow_the_event_sequence() {
        let m = meta();
        let mut enc = StreamEncoder::new(Echo::default());
        let mut out = Vec::new();
        out.extend(enc.chunk(&m.delta_chunk(
            Delta {
                role: Some("assistant".into()),
                content: Some(String::new()),
                ..Default::default()
            },
            None,
        )));
        out.extend(enc.chunk(&m.delta_chunk(said("Hel"), None)));
        out.extend(enc.chunk(&m.delta_chunk(said("lo"), None)));
        out.extend(enc.chunk(&m.delta_chunk(call(0, Some(("c1", "f")), "{\"a\""), None)));
        out.extend(enc.chunk(&m.delta_chunk(call(0, None, ":1}"), Some("tool_calls"))));
        out.extend(enc.close(&m.chunk(Vec::new()), &Usage::new(3, 4)));
        let evs = events(&out);
        let types: Vec<&str> = evs.iter().map(|e| e["type"].as_str().unwrap()).collect();
        assert_eq!(
            types,
            [
                "response.created",
                "response.in_progress",
                "response.output_item.added",
                "response.content_part.added",
                "response.output_text.delta",
                "response.output_text.delta",
                "response.output_text.done",
                "response.content_part.done",
                "response.output_item.done",
                "response.output_item.added",
                "response.function_call_arguments.delta",
                "response.function_call_arguments.delta",
                "response.function_call_arguments.done",
                "response.output_item.done",
                "response.completed",
            ]
        );
        for (i, e) in evs.iter().enumerate() {
            assert_eq!(e["sequence_number"], i as u64);
        }
        let done = evs.last().unwrap();
        assert_eq!(done["response"]["output"][0]["content"][0]["text"], "Hello");
        assert_eq!(done["response"]["output"][1]["arguments"], "{\"a\":1}");
        assert_eq!(done["response"]["output"][1]["call_id"], "c1");
        assert_eq!(done["response"]["usage"]["output_tokens"], 4);
        let mut enc = StreamEncoder::new(Echo::default());
        let failed = events(&enc.fail(&m.chunk(Vec::new()), &Error::upstream("p", "boom")));
        assert_eq!(failed.last().unwrap()["type"], "response.failed");
        assert_eq!(failed.last().unwrap()["response"]["status"], "failed");
    }
}
