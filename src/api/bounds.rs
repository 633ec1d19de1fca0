//! The rules a type cannot express, checked on a typed chat request that another
//! surface converted (the Messages surface): value ranges, the bounds on the work one
//! request can cause ([`super::validate`] documents them), and the rules across fields
//! (a tool message answers an earlier tool call, a named tool choice is among the
//! tools). Paths name the field of the chat request, as [`super::validate`] does for a
//! chat body.

use std::collections::HashSet;

use super::validate::{
    valid_tool_name, MAX_ID_BYTES, MAX_MESSAGES, MAX_MODELS, MAX_OUTPUT_TOKENS, MAX_PARTS,
    MAX_STOP, MAX_STOP_BYTES, MAX_TOOLS,
};
use super::{ChatRequest, Content, Message};
use crate::error::{Error, Result};

fn bad(path: &str, rule: impl std::fmt::Display) -> Error {
    Error::BadRequest(format!("{path}: {rule}"))
}

/// Checks a converted request.
pub fn check(r: &ChatRequest) -> Result<()> {
    models(r)?;
    let names = tools(r)?;
    messages(&r.messages)?;
    tool_choice(r, &names)?;
    sampling(r)?;
    if let Some(p) = &r.provider {
        super::validate::provider(p)?;
    }
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
    if r.model.is_none() && list.is_empty() {
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
                part(|| format!("{}.content[{j}]", path()), &m.role, p)?;
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
fn part(path: impl Fn() -> String, role: &str, p: &super::ContentPart) -> Result<()> {
    let Some(image) = &p.image_url else {
        return Ok(());
    };
    if role != "user" {
        return Err(bad(
            &format!("{}.type", path()),
            format!(
                "{role} messages cannot carry {:?} parts (expected text)",
                p.kind
            ),
        ));
    }
    let url = image.url.as_str();
    if !(url.starts_with("https://") || url.starts_with("http://") || url.starts_with("data:")) {
        return Err(bad(
            &format!("{}.image_url.url", path()),
            "must be an http(s) URL or a data: URL",
        ));
    }
    Ok(())
}

fn tool_choice(r: &ChatRequest, tools: &HashSet<&str>) -> Result<()> {
    let Some(tc) = &r.tool_choice else {
        return Ok(());
    };
    if tc.as_str() == Some("required") && tools.is_empty() {
        return Err(bad(
            "tool_choice",
            "\"required\" needs at least one tool in `tools`",
        ));
    }
    let named = tc.pointer("/function/name").and_then(|n| n.as_str());
    if let Some(name) = named.filter(|n| !tools.contains(n)) {
        return Err(bad(
            "tool_choice.function.name",
            format!("{name:?} is not one of the tools offered in `tools`"),
        ));
    }
    Ok(())
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
    let budget = r.extra.get("reasoning").and_then(|v| v.get("max_tokens"));
    integer(
        "reasoning.max_tokens",
        budget.and_then(|b| b.as_u64()),
        0,
        MAX_OUTPUT_TOKENS,
    )?;
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
            return Err(bad(
                &format!("stop[{i}]"),
                format!("must be at most {MAX_STOP_BYTES} bytes"),
            ));
        }
    }
    Ok(())
}
