//! Validation of a chat request before anything is reserved or sent upstream. It reads
//! the parsed JSON (not the typed request) so that every message names the field and
//! the rule: `messages[2].role: unknown role "wizard"`. Unknown *fields* are tolerated
//! (they are passed on or dropped per provider); invalid *values* of known fields are
//! refused with a 400.
//!
//! Bounds on the work one request can cause (documented in the README):
//! nesting depth [`MAX_DEPTH`], [`MAX_MESSAGES`] messages, [`MAX_PARTS`] content parts
//! in all, [`MAX_TOOLS`] tools, [`MAX_STOP`] stop sequences of at most
//! [`MAX_STOP_BYTES`] bytes, [`MAX_MODELS`] fallback models, `n` up to [`MAX_N`]; the
//! body itself is capped by `MAX_BODY_BYTES`, which bounds the total string bytes.

use std::collections::HashSet;

use serde_json::{Map, Value};

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

pub const ROLES: &[&str] = &["system", "developer", "user", "assistant", "tool"];
const EFFORTS: &[&str] = &["xhigh", "high", "medium", "low", "minimal", "none"];

fn bad(path: &str, rule: impl std::fmt::Display) -> Error {
    Error::BadRequest(format!("{path}: {rule}"))
}

/// A short, safe rendering of a value the caller sent, for error messages.
fn shown(v: &Value) -> String {
    let s = match v {
        Value::String(s) => format!("{s:?}"),
        other => other.to_string(),
    };
    if s.len() > 64 {
        format!("{}...", crate::error::truncate(&s, 61))
    } else {
        s
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
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

/// Reads the fields of one JSON object, naming them by path in errors.
struct Obj<'a> {
    path: String,
    map: &'a Map<String, Value>,
}

impl<'a> Obj<'a> {
    fn new(path: impl Into<String>, v: &'a Value) -> Result<Self> {
        let path = path.into();
        match v {
            Value::Object(map) => Ok(Obj { path, map }),
            other => Err(bad(
                &path,
                format!("must be an object, not {}", kind(other)),
            )),
        }
    }

    fn at(&self, field: &str) -> String {
        if self.path.is_empty() {
            field.to_string()
        } else {
            format!("{}.{field}", self.path)
        }
    }

    /// The field, if present and not null.
    fn get(&self, field: &str) -> Option<&'a Value> {
        self.map.get(field).filter(|v| !v.is_null())
    }

    fn string(&self, field: &str) -> Result<Option<&'a str>> {
        match self.get(field) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(other) => Err(bad(
                &self.at(field),
                format!("must be a string, not {}", kind(other)),
            )),
        }
    }

    fn required_string(&self, field: &str) -> Result<&'a str> {
        self.string(field)?
            .ok_or_else(|| bad(&self.at(field), "is required"))
    }

    fn bool(&self, field: &str) -> Result<Option<bool>> {
        match self.get(field) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(other) => Err(bad(
                &self.at(field),
                format!("must be a boolean, not {}", kind(other)),
            )),
        }
    }

    fn number(&self, field: &str, min: f64, max: f64) -> Result<Option<f64>> {
        match self.get(field) {
            None => Ok(None),
            Some(v) => {
                let n = v.as_f64().ok_or_else(|| {
                    bad(
                        &self.at(field),
                        format!("must be a number, not {}", kind(v)),
                    )
                })?;
                if !(min..=max).contains(&n) {
                    return Err(bad(
                        &self.at(field),
                        format!("must be between {min} and {max}, not {}", shown(v)),
                    ));
                }
                Ok(Some(n))
            }
        }
    }

    fn integer(&self, field: &str, min: u64, max: u64) -> Result<Option<u64>> {
        match self.get(field) {
            None => Ok(None),
            Some(v) => {
                let n = v.as_u64().ok_or_else(|| {
                    bad(
                        &self.at(field),
                        format!(
                            "must be a whole number from {min} to {max}, not {}",
                            shown(v)
                        ),
                    )
                })?;
                if !(min..=max).contains(&n) {
                    return Err(bad(
                        &self.at(field),
                        format!("must be a whole number from {min} to {max}, not {n}"),
                    ));
                }
                Ok(Some(n))
            }
        }
    }

    fn one_of(&self, field: &str, allowed: &[&str]) -> Result<Option<&'a str>> {
        match self.string(field)? {
            Some(s) if !allowed.contains(&s) => Err(bad(
                &self.at(field),
                format!("must be one of {}, not {s:?}", allowed.join(", ")),
            )),
            other => Ok(other),
        }
    }

    fn array(&self, field: &str) -> Result<Option<&'a Vec<Value>>> {
        match self.get(field) {
            None => Ok(None),
            Some(Value::Array(a)) => Ok(Some(a)),
            Some(other) => Err(bad(
                &self.at(field),
                format!("must be an array, not {}", kind(other)),
            )),
        }
    }

    fn object(&self, field: &str) -> Result<Option<Obj<'a>>> {
        self.get(field)
            .map(|v| Obj::new(self.at(field), v))
            .transpose()
    }
}

/// Validates a parsed chat-completions body.
pub fn chat(body: &Value) -> Result<()> {
    let req =
        Obj::new("", body).map_err(|_| Error::bad_request("The body must be a JSON object"))?;
    models(&req)?;
    let tools = tools(&req)?;
    messages(&req)?;
    tool_choice(&req, &tools)?;
    sampling(&req)?;
    response_format(&req)?;
    reasoning(&req)?;
    if let Some(p) = req.get("provider") {
        provider(p)?;
    }
    if let Some(o) = req.object("stream_options")? {
        o.bool("include_usage")?;
    }
    req.bool("stream")?;
    req.bool("parallel_tool_calls")?;
    req.bool("logprobs")?;
    req.string("user")?;
    req.object("metadata")?;
    Ok(())
}

/// Provider preferences, as routing will read them.
pub(super) fn provider(p: &Value) -> Result<()> {
    crate::routing::prefs::ProviderPrefs::parse(Some(p)).map(drop)
}

fn model_id(path: &str, v: &Value) -> Result<()> {
    match v {
        Value::String(s) if s.trim().is_empty() => Err(bad(path, "must not be empty")),
        Value::String(s) if s.len() > MAX_ID_BYTES => {
            Err(bad(path, format!("must be at most {MAX_ID_BYTES} bytes")))
        }
        Value::String(_) => Ok(()),
        other => Err(bad(path, format!("must be a string, not {}", kind(other)))),
    }
}

fn models(req: &Obj) -> Result<()> {
    if let Some(m) = req.get("model") {
        model_id("model", m)?;
    }
    let list = req.array("models")?;
    if let Some(list) = list {
        if list.len() > MAX_MODELS {
            return Err(bad(
                "models",
                format!("at most {MAX_MODELS} models, not {}", list.len()),
            ));
        }
        for (i, m) in list.iter().enumerate() {
            model_id(&format!("models[{i}]"), m)?;
        }
    }
    if req.get("model").is_none() && list.is_none_or(|l| l.is_empty()) {
        return Err(bad("model", "is required"));
    }
    Ok(())
}

/// Names of the offered function tools.
fn tools(req: &Obj) -> Result<HashSet<String>> {
    let mut names = HashSet::new();
    let Some(list) = req.array("tools")? else {
        return Ok(names);
    };
    if list.len() > MAX_TOOLS {
        return Err(bad(
            "tools",
            format!("at most {MAX_TOOLS} tools, not {}", list.len()),
        ));
    }
    for (i, t) in list.iter().enumerate() {
        let t = Obj::new(format!("tools[{i}]"), t)?;
        if let Some(ty) = t.string("type")? {
            if ty != "function" {
                return Err(bad(
                    &t.at("type"),
                    format!("must be \"function\", not {ty:?}"),
                ));
            }
        }
        let f = t
            .object("function")?
            .ok_or_else(|| bad(&t.at("function"), "is required"))?;
        let name = f.required_string("name")?;
        if !valid_tool_name(name) {
            return Err(bad(
                &f.at("name"),
                format!("must be 1 to 128 letters, digits, '_', '-' or '.', not {name:?}"),
            ));
        }
        f.string("description")?;
        f.bool("strict")?;
        if let Some(p) = f.object("parameters")? {
            if let Some(ty) = p.string("type")? {
                if ty != "object" {
                    return Err(bad(
                        &p.at("type"),
                        format!("a tool's parameters must be a JSON schema of type \"object\", not {ty:?}"),
                    ));
                }
            }
        }
        if !names.insert(name.to_string()) {
            return Err(bad(
                &f.at("name"),
                format!("tool {name:?} is defined twice"),
            ));
        }
    }
    Ok(names)
}

pub(super) fn valid_tool_name(name: &str) -> bool {
    (1..=128).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
}

fn messages(req: &Obj) -> Result<()> {
    let list = req
        .array("messages")?
        .ok_or_else(|| bad("messages", "is required"))?;
    if list.is_empty() {
        return Err(bad("messages", "must not be empty"));
    }
    if list.len() > MAX_MESSAGES {
        return Err(bad(
            "messages",
            format!("at most {MAX_MESSAGES} messages, not {}", list.len()),
        ));
    }
    let mut parts = 0usize;
    let mut call_ids: HashSet<&str> = HashSet::new();
    for (i, m) in list.iter().enumerate() {
        let m = Obj::new(format!("messages[{i}]"), m)?;
        let role = m.required_string("role")?;
        let allowed: &[&str] = match role {
            "system" | "developer" => &["text"],
            "user" => &["text", "image_url", "input_audio", "file", "video_url"],
            "assistant" => &["text", "refusal"],
            "tool" => &["text"],
            other => {
                return Err(bad(
                    &m.at("role"),
                    format!("unknown role {other:?} (expected {})", ROLES.join(", ")),
                ))
            }
        };
        m.string("name")?;
        match m.get("content") {
            None if role == "assistant" => {}
            None => return Err(bad(&m.at("content"), "is required")),
            Some(Value::String(_)) => {}
            Some(Value::Array(ps)) => {
                parts = parts.saturating_add(ps.len());
                if parts > MAX_PARTS {
                    return Err(bad(
                        &m.at("content"),
                        format!("at most {MAX_PARTS} content parts in all messages"),
                    ));
                }
                for (j, p) in ps.iter().enumerate() {
                    part(&format!("{}[{j}]", m.at("content")), p, allowed, role)?;
                }
            }
            Some(other) => {
                return Err(bad(
                    &m.at("content"),
                    format!(
                        "must be a string or an array of content parts, not {}",
                        kind(other)
                    ),
                ))
            }
        }
        if let Some(calls) = m.array("tool_calls")? {
            if role != "assistant" {
                return Err(bad(
                    &m.at("tool_calls"),
                    "only assistant messages carry tool calls",
                ));
            }
            for (j, c) in calls.iter().enumerate() {
                let c = Obj::new(format!("{}[{j}]", m.at("tool_calls")), c)?;
                let id = c.required_string("id")?;
                if id.is_empty() {
                    return Err(bad(&c.at("id"), "must not be empty"));
                }
                c.one_of("type", &["function"])?;
                let f = c
                    .object("function")?
                    .ok_or_else(|| bad(&c.at("function"), "is required"))?;
                f.required_string("name")?;
                f.string("arguments")?;
                call_ids.insert(id);
            }
        }
        if role == "tool" {
            let id = m.required_string("tool_call_id")?;
            if !call_ids.contains(id) {
                return Err(bad(
                    &m.at("tool_call_id"),
                    format!("{id:?} answers no tool call of an earlier assistant message"),
                ));
            }
        } else if m.get("tool_call_id").is_some() {
            return Err(bad(
                &m.at("tool_call_id"),
                "only tool messages carry a tool_call_id",
            ));
        }
    }
    Ok(())
}

fn part(path: &str, p: &Value, allowed: &[&str], role: &str) -> Result<()> {
    let p = Obj::new(path, p)?;
    let ty = p.required_string("type")?;
    if !allowed.contains(&ty) {
        let known = [
            "text",
            "image_url",
            "input_audio",
            "file",
            "video_url",
            "refusal",
        ];
        let why = if known.contains(&ty) {
            format!("{role} messages cannot carry {ty:?} parts")
        } else {
            format!("unknown content part type {ty:?}")
        };
        return Err(bad(
            &p.at("type"),
            format!("{why} (expected {})", allowed.join(", ")),
        ));
    }
    match ty {
        "text" => {
            p.required_string("text")?;
        }
        "refusal" => {
            p.required_string("refusal")?;
        }
        "image_url" | "video_url" => {
            let u = p.object(ty)?.ok_or_else(|| bad(&p.at(ty), "is required"))?;
            let url = u.required_string("url")?;
            if !(url.starts_with("https://")
                || url.starts_with("http://")
                || url.starts_with("data:"))
            {
                return Err(bad(&u.at("url"), "must be an http(s) URL or a data: URL"));
            }
            if ty == "image_url" {
                u.one_of("detail", &["auto", "low", "high"])?;
            }
        }
        "input_audio" => {
            let a = p
                .object("input_audio")?
                .ok_or_else(|| bad(&p.at("input_audio"), "is required"))?;
            a.required_string("data")?;
            a.required_string("format")?;
        }
        "file" => {
            let f = p
                .object("file")?
                .ok_or_else(|| bad(&p.at("file"), "is required"))?;
            let data = f.string("file_data")?;
            let id = f.string("file_id")?;
            f.string("filename")?;
            if data.is_none() && id.is_none() {
                return Err(bad(&f.at("file_data"), "is required (or file_id)"));
            }
        }
        _ => {}
    }
    Ok(())
}

fn tool_choice(req: &Obj, tools: &HashSet<String>) -> Result<()> {
    let Some(tc) = req.get("tool_choice") else {
        return Ok(());
    };
    match tc {
        Value::String(s) => match s.as_str() {
            "none" | "auto" => Ok(()),
            "required" if tools.is_empty() => Err(bad(
                "tool_choice",
                "\"required\" needs at least one tool in `tools`",
            )),
            "required" => Ok(()),
            other => Err(bad(
                "tool_choice",
                format!("must be \"none\", \"auto\", \"required\" or a function, not {other:?}"),
            )),
        },
        Value::Object(_) => {
            let o = Obj::new("tool_choice", tc)?;
            o.one_of("type", &["function"])?;
            let f = o
                .object("function")?
                .ok_or_else(|| bad("tool_choice.function", "is required"))?;
            let name = f.required_string("name")?;
            if !tools.contains(name) {
                return Err(bad(
                    "tool_choice.function.name",
                    format!("{name:?} is not one of the tools offered in `tools`"),
                ));
            }
            Ok(())
        }
        other => Err(bad(
            "tool_choice",
            format!("must be a string or an object, not {}", kind(other)),
        )),
    }
}

fn sampling(req: &Obj) -> Result<()> {
    req.number("temperature", 0.0, 2.0)?;
    req.number("top_p", 0.0, 1.0)?;
    req.integer("top_k", 0, 1_000_000)?;
    req.number("frequency_penalty", -2.0, 2.0)?;
    req.number("presence_penalty", -2.0, 2.0)?;
    req.number("repetition_penalty", 0.0, 2.0)?;
    req.number("min_p", 0.0, 1.0)?;
    req.number("top_a", 0.0, 1.0)?;
    req.integer("top_logprobs", 0, 20)?;
    req.integer("n", 1, MAX_N)?;
    req.integer("max_tokens", 1, MAX_OUTPUT_TOKENS)?;
    req.integer("max_completion_tokens", 1, MAX_OUTPUT_TOKENS)?;
    if let Some(seed) = req.get("seed") {
        if !(seed.is_i64() || seed.is_u64()) {
            return Err(bad(
                "seed",
                format!("must be an integer, not {}", shown(seed)),
            ));
        }
    }
    if let Some(bias) = req.object("logit_bias")? {
        for (k, v) in bias.map {
            let ok = v.as_f64().is_some_and(|b| (-100.0..=100.0).contains(&b));
            if !ok {
                return Err(bad(
                    &bias.at(k),
                    format!("must be a number from -100 to 100, not {}", shown(v)),
                ));
            }
        }
    }
    match req.get("stop") {
        None => {}
        Some(Value::String(s)) if s.len() > MAX_STOP_BYTES => {
            return Err(bad(
                "stop",
                format!("must be at most {MAX_STOP_BYTES} bytes"),
            ))
        }
        Some(Value::String(_)) => {}
        Some(Value::Array(list)) => {
            if list.len() > MAX_STOP {
                return Err(bad(
                    "stop",
                    format!("at most {MAX_STOP} stop sequences, not {}", list.len()),
                ));
            }
            for (i, s) in list.iter().enumerate() {
                let path = format!("stop[{i}]");
                match s {
                    Value::String(s) if s.len() > MAX_STOP_BYTES => {
                        return Err(bad(
                            &path,
                            format!("must be at most {MAX_STOP_BYTES} bytes"),
                        ))
                    }
                    Value::String(_) => {}
                    other => {
                        return Err(bad(&path, format!("must be a string, not {}", kind(other))))
                    }
                }
            }
        }
        Some(other) => {
            return Err(bad(
                "stop",
                format!(
                    "must be a string or an array of strings, not {}",
                    kind(other)
                ),
            ))
        }
    }
    if let Some(mods) = req.array("modalities")? {
        for (i, m) in mods.iter().enumerate() {
            if !matches!(m.as_str(), Some("text" | "image" | "audio")) {
                return Err(bad(
                    &format!("modalities[{i}]"),
                    format!("must be \"text\", \"image\" or \"audio\", not {}", shown(m)),
                ));
            }
        }
    }
    Ok(())
}

fn response_format(req: &Obj) -> Result<()> {
    let Some(rf) = req.object("response_format")? else {
        return Ok(());
    };
    let ty = rf
        .one_of("type", &["text", "json_object", "json_schema"])?
        .ok_or_else(|| bad(&rf.at("type"), "is required"))?;
    if ty == "json_schema" {
        let js = rf
            .object("json_schema")?
            .ok_or_else(|| bad(&rf.at("json_schema"), "is required"))?;
        js.string("name")?;
        js.object("schema")?;
        js.bool("strict")?;
    }
    Ok(())
}

fn reasoning(req: &Obj) -> Result<()> {
    req.one_of("reasoning_effort", EFFORTS)?;
    if let Some(r) = req.object("reasoning")? {
        r.one_of("effort", EFFORTS)?;
        r.integer("max_tokens", 0, MAX_OUTPUT_TOKENS)?;
        r.bool("exclude")?;
        r.bool("enabled")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

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
            chat(&body).unwrap_or_else(|e| panic!("{body}: {e}"));
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
                "provider.order must be an array of strings",
            ),
            (with("provider", json!([])), "`provider` must be an object"),
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
            let e = chat(&body).expect_err(&body.to_string());
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
