//! The rules of a chat request a type cannot say, checked before anything is reserved
//! or sent upstream: value ranges, the bounds on the work one request can cause, and
//! the rules across fields (a tool message answers an earlier tool call, a named tool
//! choice is among the tools). They run on the typed request, whichever surface it
//! came from ([`super::read`] reads a chat body; other surfaces convert into it), and
//! name the field of the chat request: `messages[2].tool_call_id: ...`.
//!
//! Bounds on the work one request can cause (documented in the README):
//! nesting depth [`MAX_DEPTH`], [`MAX_MESSAGES`] messages, [`MAX_PARTS`] content parts
//! in all, [`MAX_TOOLS`] tools, [`MAX_STOP`] stop sequences of at most
//! [`MAX_STOP_BYTES`] bytes, [`MAX_MODELS`] fallback models, `n` up to [`MAX_N`]; the
//! body itself is capped by `MAX_BODY_BYTES`, which bounds the total string bytes.

use std::collections::HashSet;

use serde_json::{Map, Value};

use super::read::shown;
use super::{ChatRequest, Content, Message, Role, ToolChoice};
use crate::error::{Error, Result};

pub const MAX_DEPTH: usize = 64;
pub const MAX_MESSAGES: usize = 10_000;
pub const MAX_PARTS: usize = 20_000;
pub const MAX_TOOLS: usize = 512;
pub const MAX_STOP: usize = 16;
pub const MAX_STOP_BYTES: usize = 1024;
pub const MAX_MODELS: usize = 8;
pub const MAX_N: u64 = 16;
pub const MAX_ID_BYTES: usize = 256;
/// No endpoint generates more than this in one reply; a larger budget is a typo.
pub const MAX_OUTPUT_TOKENS: u64 = 10_000_000;

fn bad(path: &str, rule: impl std::fmt::Display) -> Error {
    Error::BadRequest(format!("{path}: {rule}"))
}

/// Refuses bodies nested deeper than [`MAX_DEPTH`] before they are parsed, with a
/// single pass over the bytes (strings and escapes skipped).
pub fn check_depth(body: &[u8]) -> Result<()> {
    let (mut depth, mut in_string, mut escaped) = (0usize, false, false);
    for &b in body {
        if in_string {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'{' | b'[' => {
                depth = depth.saturating_add(1);
                if depth > MAX_DEPTH {
                    return Err(Error::bad_request(format!(
                        "The body nests deeper than {MAX_DEPTH} levels"
                    )));
                }
            }
            b'}' | b']' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    Ok(())
}

pub(super) fn valid_tool_name(name: &str) -> bool {
    (1..=128).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
}

/// Checks a typed request.
pub fn check(r: &ChatRequest) -> Result<()> {
    models(r)?;
    let names = tools(r)?;
    messages(&r.messages)?;
    tool_choice(r, &names)?;
    sampling(r)?;
    passed_on(&r.extra)?;
    super::service_tier::check(r)?;
    Ok(())
}

fn model_id(path: &str, m: &str) -> Result<()> {
    if m.trim().is_empty() {
        return Err(bad(path, "must not be empty"));
    }
    if m.len() > MAX_ID_BYTES {
        return Err(bad(path, format!("must be at most {MAX_ID_BYTES} bytes")));
    }
    Ok(())
}

fn models(r: &ChatRequest) -> Result<()> {
    if let Some(m) = &r.model {
        model_id("model", m)?;
    }
    let list = r.models.as_deref().unwrap_or_default();
    if list.len() > MAX_MODELS {
        let n = list.len();
        return Err(bad(
            "models",
            format!("at most {MAX_MODELS} models, not {n}"),
        ));
    }
    for (i, m) in list.iter().enumerate() {
        model_id(&format!("models[{i}]"), m)?;
    }
    // A request that names a preset (`preset`) may take its model from it.
    if r.model.is_none() && list.is_empty() && !r.extra.contains_key("preset") {
        return Err(bad("model", "is required"));
    }
    Ok(())
}

/// The names of the offered tools.
fn tools(r: &ChatRequest) -> Result<HashSet<&str>> {
    let list = r.tools.as_deref().unwrap_or_default();
    if list.len() > MAX_TOOLS {
        let n = list.len();
        return Err(bad("tools", format!("at most {MAX_TOOLS} tools, not {n}")));
    }
    let mut names = HashSet::new();
    for (i, t) in list.iter().enumerate() {
        let name = t.function.name.as_str();
        let path = || format!("tools[{i}].function.name");
        if !valid_tool_name(name) {
            return Err(bad(
                &path(),
                format!("must be 1 to 128 letters, digits, '_', '-' or '.', not {name:?}"),
            ));
        }
        let kind = t.function.parameters.as_ref().and_then(|p| p.get("type"));
        if let Some(kind) = kind.filter(|k| k.as_str() != Some("object")) {
            return Err(bad(
                &format!("tools[{i}].function.parameters.type"),
                format!("a tool's parameters must be a JSON schema of type \"object\", not {kind}"),
            ));
        }
        if !names.insert(name) {
            return Err(bad(&path(), format!("tool {name:?} is defined twice")));
        }
    }
    Ok(names)
}

fn messages(list: &[Message]) -> Result<()> {
    if list.is_empty() {
        return Err(bad("messages", "must not be empty"));
    }
    if list.len() > MAX_MESSAGES {
        let n = list.len();
        return Err(bad(
            "messages",
            format!("at most {MAX_MESSAGES} messages, not {n}"),
        ));
    }
    let mut parts = 0usize;
    let mut call_ids: HashSet<&str> = HashSet::new();
    for (i, m) in list.iter().enumerate() {
        // Paths are written only for an error: this runs for every message.
        let path = || format!("messages[{i}]");
        if let Some(Content::Parts(ps)) = &m.content {
            parts = parts.saturating_add(ps.len());
            if parts > MAX_PARTS {
                return Err(bad(
                    &format!("{}.content", path()),
                    format!("at most {MAX_PARTS} content parts in all messages"),
                ));
            }
            for (j, p) in ps.iter().enumerate() {
                part(|| format!("{}.content[{j}]", path()), m.role, p)?;
            }
        }
        for (j, c) in m.tool_calls.iter().flatten().enumerate() {
            if c.id.is_empty() {
                return Err(bad(
                    &format!("{}.tool_calls[{j}].id", path()),
                    "must not be empty",
                ));
            }
            call_ids.insert(&c.id);
        }
        if let Some(id) = &m.tool_call_id {
            if !call_ids.contains(id.as_str()) {
                return Err(bad(
                    &format!("{}.tool_call_id", path()),
                    format!("{id:?} answers no tool call of an earlier assistant message"),
                ));
            }
        }
    }
    Ok(())
}

/// Only user messages carry media; a URL is http(s) or data:.
fn part(path: impl Fn() -> String, role: Role, p: &super::ContentPart) -> Result<()> {
    let Some(image) = p.image_url() else {
        return Ok(());
    };
    if role != Role::User {
        return Err(bad(
            &format!("{}.type", path()),
            format!(
                "{} messages cannot carry {:?} parts (expected text)",
                role.as_str(),
                p.kind()
            ),
        ));
    }
    if !super::read::media_url(&image.url) {
        return Err(bad(
            &format!("{}.image_url.url", path()),
            "must be an http(s) URL or a data: URL",
        ));
    }
    Ok(())
}

fn tool_choice(r: &ChatRequest, tools: &HashSet<&str>) -> Result<()> {
    match &r.tool_choice {
        Some(ToolChoice::Required) if tools.is_empty() => Err(bad(
            "tool_choice",
            "\"required\" needs at least one tool in `tools`",
        )),
        Some(ToolChoice::Function(name)) if !tools.contains(name.as_str()) => Err(bad(
            "tool_choice.function.name",
            format!("{name:?} is not one of the tools offered in `tools`"),
        )),
        _ => Ok(()),
    }
}

fn number(path: &str, v: Option<f64>, min: f64, max: f64) -> Result<()> {
    match v {
        Some(n) if !(min..=max).contains(&n) => Err(bad(
            path,
            format!("must be between {min} and {max}, not {n}"),
        )),
        _ => Ok(()),
    }
}

fn integer(path: &str, v: Option<u64>, min: u64, max: u64) -> Result<()> {
    match v {
        Some(n) if !(min..=max).contains(&n) => Err(bad(
            path,
            format!("must be a whole number from {min} to {max}, not {n}"),
        )),
        _ => Ok(()),
    }
}

fn sampling(r: &ChatRequest) -> Result<()> {
    number("temperature", r.temperature, 0.0, 2.0)?;
    number("top_p", r.top_p, 0.0, 1.0)?;
    integer("top_k", r.top_k, 0, 1_000_000)?;
    integer("max_tokens", r.max_tokens, 1, MAX_OUTPUT_TOKENS)?;
    integer(
        "max_completion_tokens",
        r.max_completion_tokens,
        1,
        MAX_OUTPUT_TOKENS,
    )?;
    let budget = r.reasoning.as_ref().and_then(|c| c.max_tokens);
    integer("reasoning.max_tokens", budget, 0, MAX_OUTPUT_TOKENS)?;
    let stops = r.stop.as_ref().map(super::Stop::to_vec).unwrap_or_default();
    if stops.len() > MAX_STOP {
        let n = stops.len();
        return Err(bad(
            "stop",
            format!("at most {MAX_STOP} stop sequences, not {n}"),
        ));
    }
    for (i, s) in stops.iter().enumerate() {
        if s.len() > MAX_STOP_BYTES {
            let one = matches!(r.stop, Some(super::Stop::One(_)));
            return Err(bad(
                &if one {
                    "stop".into()
                } else {
                    format!("stop[{i}]")
                },
                format!("must be at most {MAX_STOP_BYTES} bytes"),
            ));
        }
    }
    Ok(())
}

/// The fields OpenAI defines that the gateway passes on as sent, in `extra`: their
/// types and ranges.
fn passed_on(extra: &Map<String, Value>) -> Result<()> {
    let get = |name: &str| extra.get(name).filter(|v| !v.is_null());
    let typed = |name: &str, check: fn(&Value) -> super::read::Read<()>| match get(name) {
        Some(v) => check(v).map_err(|b| bad(name, b.rule())),
        None => Ok(()),
    };
    typed("parallel_tool_calls", super::read::check_bool)?;
    typed("logprobs", super::read::check_bool)?;
    typed("user", super::read::check_string)?;
    typed("metadata", |v| match v {
        Value::Object(_) => Ok(()),
        other => Err(super::read::Bad::new(format!(
            "must be an object, not {}",
            super::read::kind_of(other)
        ))),
    })?;
    for (name, min, max) in [
        ("frequency_penalty", -2.0, 2.0),
        ("presence_penalty", -2.0, 2.0),
        ("repetition_penalty", 0.0, 2.0),
        ("min_p", 0.0, 1.0),
        ("top_a", 0.0, 1.0),
    ] {
        if let Some(v) = get(name) {
            let n = super::read::number(v.clone()).map_err(|b| bad(name, b.rule()))?;
            number(name, Some(n), min, max)?;
        }
    }
    for (name, min, max) in [("top_logprobs", 0, 20), ("n", 1, MAX_N)] {
        if let Some(v) = get(name) {
            let n = v.as_u64().ok_or_else(|| {
                bad(
                    name,
                    format!(
                        "must be a whole number from {min} to {max}, not {}",
                        shown(v)
                    ),
                )
            })?;
            integer(name, Some(n), min, max)?;
        }
    }
    if let Some(seed) = get("seed").filter(|s| !(s.is_i64() || s.is_u64())) {
        return Err(bad(
            "seed",
            format!("must be an integer, not {}", shown(seed)),
        ));
    }
    if let Some(bias) = get("logit_bias") {
        let Value::Object(bias) = bias else {
            let kind = super::read::kind_of(bias);
            return Err(bad("logit_bias", format!("must be an object, not {kind}")));
        };
        for (k, v) in bias {
            if !v.as_f64().is_some_and(|b| (-100.0..=100.0).contains(&b)) {
                return Err(bad(
                    &format!("logit_bias.{k}"),
                    format!("must be a number from -100 to 100, not {}", shown(v)),
                ));
            }
        }
    }
    modalities(get("modalities"))
}

fn modalities(list: Option<&Value>) -> Result<()> {
    let Some(list) = list else {
        return Ok(());
    };
    let Value::Array(list) = list else {
        let kind = super::read::kind_of(list);
        return Err(bad("modalities", format!("must be an array, not {kind}")));
    };
    for (i, m) in list.iter().enumerate() {
        if !matches!(m.as_str(), Some("text" | "image" | "audio")) {
            return Err(bad(
                &format!("modalities[{i}]"),
                format!("must be \"text\", \"image\" or \"audio\", not {}", shown(m)),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    impl ChatRequest {
        /// A body read as the surface reads it: from its bytes.
        fn from_value(v: Value) -> Result<Self> {
            Self::parse(v.to_string().as_bytes())
        }
    }

    fn base() -> Value {
        json!({"model": "a/b", "messages": [{"role": "user", "content": "hi"}]})
    }

    /// `base()` with `field` set to `value` (a `messages` value replaces the list).
    fn with(field: &str, value: Value) -> Value {
        let mut v = base();
        v[field] = value;
        v
    }

    fn user(content: Value) -> Value {
        with("messages", json!([{"role": "user", "content": content}]))
    }

    #[test]
    fn valid_requests_pass() {
        for body in [
            base(),
            json!({"models": ["a/b", "c/d"], "messages": [{"role": "user", "content": "x"}]}),
            user(json!([
                {"type": "text", "text": "look"},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA", "detail": "low"}},
                {"type": "file", "file": {"filename": "a.pdf", "file_data": "data:application/pdf;base64,AA"}},
                {"type": "input_audio", "input_audio": {"data": "AA", "format": "wav"}},
                {"type": "text", "text": "x", "cache_control": {"type": "ephemeral"}}
            ])),
            json!({"model": "a/b", "tools": [{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}],
            "tool_choice": {"type": "function", "function": {"name": "get_weather"}},
            "messages": [
                {"role": "system", "content": "be brief"},
                {"role": "user", "content": "weather?"},
                {"role": "assistant", "content": null, "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "get_weather", "arguments": "{}"}}]},
                {"role": "tool", "tool_call_id": "c1", "content": "sunny"}
            ]}),
            with("temperature", json!(0)),
            with("stop", json!(["a", "b"])),
            with(
                "response_format",
                json!({"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "object"}}}),
            ),
            with("reasoning", json!({"effort": "xhigh", "exclude": true})),
            with(
                "provider",
                json!({"order": ["openai"], "allow_fallbacks": false}),
            ),
            with("seed", json!(-3)),
            with("unknown_field", json!({"anything": [1, 2]})),
            with("max_tokens", json!(null)),
        ] {
            ChatRequest::from_value(body.clone()).unwrap_or_else(|e| panic!("{body}: {e}"));
        }
    }

    #[test]
    fn invalid_values_name_the_field() {
        let table: Vec<(Value, &str)> = vec![
            (json!([1]), "The body must be a JSON object"),
            (
                json!({"messages": [{"role": "user", "content": "x"}]}),
                "model: is required",
            ),
            (
                with("model", json!(5)),
                "model: must be a string, not a number",
            ),
            (with("model", json!("")), "model: must not be empty"),
            (
                with("models", json!(vec!["a"; 9])),
                "models: at most 8 models",
            ),
            (with("messages", json!([])), "messages: must not be empty"),
            (with("messages", json!("hi")), "messages: must be an array"),
            (
                with(
                    "messages",
                    json!([{"role": "user", "content": "a"}, {"role": "user", "content": "b"}, {"role": "wizard", "content": "x"}]),
                ),
                "messages[2].role: unknown role \"wizard\"",
            ),
            (
                with("messages", json!([{"content": "x"}])),
                "messages[0].role: is required",
            ),
            (
                with("messages", json!([{"role": "user"}])),
                "messages[0].content: is required",
            ),
            (
                with("messages", json!([5])),
                "messages[0]: must be an object",
            ),
            (
                user(json!(7)),
                "messages[0].content: must be a string or an array of content parts",
            ),
            (
                user(json!([{"type": "hologram"}])),
                "messages[0].content[0].type: unknown content part type \"hologram\"",
            ),
            (
                user(json!([{"type": "image_url"}])),
                "messages[0].content[0].image_url: is required",
            ),
            (
                user(json!([{"type": "image_url", "image_url": {}}])),
                "messages[0].content[0].image_url.url: is required",
            ),
            (
                user(json!([{"type": "image_url", "image_url": {"url": "file:///etc/passwd"}}])),
                "image_url.url: must be an http(s) URL",
            ),
            (
                user(json!([{"type": "text"}])),
                "messages[0].content[0].text: is required",
            ),
            (
                user(json!([{"type": "text", "text": 3}])),
                "messages[0].content[0].text: must be a string",
            ),
            (
                with(
                    "messages",
                    json!([{"role": "system", "content": [{"type": "image_url", "image_url": {"url": "https://x"}}]}]),
                ),
                "system messages cannot carry \"image_url\" parts",
            ),
            (
                with("messages", json!([{"role": "tool", "content": "x"}])),
                "messages[0].tool_call_id: is required",
            ),
            (
                with(
                    "messages",
                    json!([{"role": "tool", "tool_call_id": "nope", "content": "x"}]),
                ),
                "messages[0].tool_call_id: \"nope\" answers no tool call",
            ),
            (
                with(
                    "messages",
                    json!([{"role": "user", "content": "x", "tool_calls": []}]),
                ),
                "only assistant messages carry tool calls",
            ),
            (
                with(
                    "messages",
                    json!([{"role": "assistant", "content": "x", "tool_calls": [{"type": "function", "function": {"name": "f"}}]}]),
                ),
                "messages[0].tool_calls[0].id: is required",
            ),
            (
                with(
                    "tools",
                    json!([{"type": "function", "function": {"name": "bad name!"}}]),
                ),
                "tools[0].function.name: must be 1 to 128",
            ),
            (
                with("tools", json!([{"type": "retrieval"}])),
                "tools[0].type: must be \"function\"",
            ),
            (
                with("tools", json!([{"type": "function"}])),
                "tools[0].function: is required",
            ),
            (
                with(
                    "tools",
                    json!([{"type": "function", "function": {"name": "f", "parameters": {"type": "string"}}}]),
                ),
                "tools[0].function.parameters.type",
            ),
            (
                with(
                    "tools",
                    json!([{"type": "function", "function": {"name": "f", "parameters": []}}]),
                ),
                "tools[0].function.parameters: must be an object",
            ),
            (
                with(
                    "tool_choice",
                    json!({"type": "function", "function": {"name": "ghost"}}),
                ),
                "tool_choice.function.name: \"ghost\" is not one of the tools",
            ),
            (
                with("tool_choice", json!("required")),
                "tool_choice: \"required\" needs at least one tool",
            ),
            (
                with("tool_choice", json!("sometimes")),
                "tool_choice: must be",
            ),
            (
                with("response_format", json!({"type": "yaml"})),
                "response_format.type: must be one of text, json_object, json_schema, not \"yaml\"",
            ),
            (
                with("response_format", json!({"type": "json_schema"})),
                "response_format.json_schema: is required",
            ),
            (
                with("response_format", json!("json")),
                "response_format: must be an object",
            ),
            (
                with("temperature", json!(3)),
                "temperature: must be between 0 and 2",
            ),
            (
                with("temperature", json!("hot")),
                "temperature: must be a number",
            ),
            (with("top_p", json!(1.5)), "top_p: must be between 0 and 1"),
            (
                with("frequency_penalty", json!(-3)),
                "frequency_penalty: must be between -2 and 2",
            ),
            (
                with("top_logprobs", json!(21)),
                "top_logprobs: must be a whole number from 0 to 20",
            ),
            (
                with("n", json!(100000)),
                "n: must be a whole number from 1 to 16, not 100000",
            ),
            (
                with("n", json!(0)),
                "n: must be a whole number from 1 to 16",
            ),
            (
                with("max_tokens", json!(1000000000000000u64)),
                "max_tokens: must be a whole number from 1 to 10000000",
            ),
            (
                with("max_tokens", json!(-1)),
                "max_tokens: must be a whole number",
            ),
            (
                with("max_tokens", json!(1.5)),
                "max_tokens: must be a whole number",
            ),
            (with("seed", json!(1.5)), "seed: must be an integer"),
            (
                with("stop", json!(vec!["a"; 17])),
                "stop: at most 16 stop sequences",
            ),
            (with("stop", json!([1])), "stop[0]: must be a string"),
            (
                with("stop", json!("x".repeat(2000))),
                "stop: must be at most 1024 bytes",
            ),
            (
                with("logit_bias", json!({"50256": 500})),
                "logit_bias.50256: must be a number from -100 to 100",
            ),
            (
                with("reasoning", json!({"effort": "max"})),
                "reasoning.effort: must be one of",
            ),
            (
                with("reasoning_effort", json!("ultra")),
                "reasoning_effort: must be one of",
            ),
            (with("stream", json!("yes")), "stream: must be a boolean"),
            (
                with("provider", json!({"order": "openai"})),
                "provider.order: must be an array, not a string",
            ),
            (
                with("provider", json!([])),
                "provider: must be an object, not an array",
            ),
            (
                with("provider", json!({"sorting": "price"})),
                "provider.sorting: unknown preference",
            ),
            (
                with("provider", json!({"preferred_max_latency": {"p95": 2}})),
                "provider.preferred_max_latency.p95: unknown percentile",
            ),
            (
                with("modalities", json!(["smell"])),
                "modalities[0]: must be",
            ),
        ];
        for (body, want) in table {
            let e = ChatRequest::from_value(body.clone()).expect_err(&body.to_string());
            assert_eq!(e.status(), 400);
            assert!(
                e.to_string().contains(want),
                "{body}\n  got:  {e}\n  want: {want}"
            );
        }
    }

    #[test]
    fn depth_is_capped_outside_strings() {
        let deep = format!("{}{}", "[".repeat(MAX_DEPTH + 1), "]".repeat(MAX_DEPTH + 1));
        assert!(check_depth(deep.as_bytes()).is_err());
        let ok = format!("{}{}", "[".repeat(MAX_DEPTH), "]".repeat(MAX_DEPTH));
        assert!(check_depth(ok.as_bytes()).is_ok());
        let in_string = format!("{{\"a\": \"{}\\\"{}\"}}", "[".repeat(500), "{".repeat(500));
        assert!(check_depth(in_string.as_bytes()).is_ok());
    }
}
