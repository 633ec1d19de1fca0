//! The `response` object a chat completion becomes, and the output items it and the
//! stream's events share.

use serde_json::{json, Value};

use super::Echo;
use crate::api::{set_field, ChatCompletion, Usage};

pub(super) fn usage(u: &Usage) -> Value {
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
pub(super) fn status(finish_reason: Option<&str>) -> (&'static str, Value) {
    match finish_reason {
        Some("length") => ("incomplete", json!({"reason": "max_output_tokens"})),
        Some("content_filter") => ("incomplete", json!({"reason": "content_filter"})),
        _ => ("completed", Value::Null),
    }
}

/// The `response` object around `output`.
pub(super) fn response(
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

pub(super) fn message_item(id: &str, text: &str, status: &str) -> Value {
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
pub(super) fn reasoning_item(id: &str, text: &str, details: &[Value]) -> Value {
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

pub(super) fn call_item(
    id: &str,
    call_id: &str,
    name: &str,
    arguments: &str,
    status: &str,
) -> Value {
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
