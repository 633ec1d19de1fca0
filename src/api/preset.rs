//! Presets (OpenRouter's): a named, versioned set of model(s), provider preferences,
//! system prompt, parameters and tools, kept per account, that a request names in one of
//! three ways (`model: "@preset/slug"`, `preset: "slug"`, `model: "m@preset/slug"`).
//! This module owns the pure parts: reading the reference from a request, checking a
//! preset's `config` when it is written, and merging a preset into a request (the
//! request's fields win field by field, tools are joined, the system prompt goes first).
//! The versions and the account's list of them are kept by the accounts layer
//! (`accounts::presets`).

use serde_json::{Map, Value};

use super::{ChatRequest, Content, Message, Role, Tool};
use crate::error::{Error, Result};

/// The longest slug.
pub const MAX_SLUG_BYTES: usize = 64;
/// The largest `config` object, as JSON.
pub const MAX_CONFIG_BYTES: usize = 16 * 1024;
/// The longest system prompt.
pub const MAX_SYSTEM_PROMPT_BYTES: usize = 32 * 1024;

/// The `model` prefix that names a preset, and the separator of `m@preset/slug`.
const PREFIX: &str = "@preset/";

/// Request fields a preset never holds: what one conversation sends, not its setup.
const TRANSIENT: [&str; 8] = [
    "messages",
    "stream",
    "stream_options",
    "preset",
    "prompt",
    "input",
    "session_id",
    "session_limits",
];

/// A request's reference to a preset: its slug, and the model the request names
/// besides it (`m@preset/slug`, or `model` beside `preset`), which wins over the
/// preset's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PresetRef {
    pub slug: String,
    pub model: Option<String>,
}

/// Whether `s` is a slug: 1 to 64 lowercase letters, digits, `-` and `_`.
pub fn is_slug(s: &str) -> bool {
    (1..=MAX_SLUG_BYTES).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}

/// Checks a slug, naming `field` when it is not one.
pub fn check_slug(s: &str, field: &str) -> Result<()> {
    if is_slug(s) {
        return Ok(());
    }
    Err(Error::bad_request(format!(
        "{field}: must be 1 to {MAX_SLUG_BYTES} lowercase letters, digits, '-' or '_'"
    )))
}

/// The preset a request names, if any: `model: "@preset/slug"`, `model:
/// "m@preset/slug"` or `preset: "slug"` (with `model` beside it). Naming two different
/// presets is a 400, as is a slug that is not one.
pub fn reference(chat: &ChatRequest) -> Result<Option<PresetRef>> {
    let from_model = chat
        .model
        .as_deref()
        .and_then(|m| match m.split_once(PREFIX) {
            Some(("", slug)) => Some((None, slug)),
            Some((model, slug)) => Some((Some(model), slug)),
            None => None,
        });
    let field = match chat.extra.get("preset") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.as_str()),
        Some(_) => return Err(Error::bad_request("preset: must be a string")),
    };
    let found = match (from_model, field) {
        (None, None) => return Ok(None),
        (Some((model, slug)), None) => {
            check_slug(slug, "model")?;
            (model.map(str::to_string), slug)
        }
        (None, Some(slug)) => {
            check_slug(slug, "preset")?;
            (chat.model.clone(), slug)
        }
        (Some((model, a)), Some(b)) => {
            if a != b {
                return Err(Error::bad_request(
                    "preset: names another preset than model does",
                ));
            }
            check_slug(a, "preset")?;
            (model.map(str::to_string), a)
        }
    };
    Ok(Some(PresetRef {
        slug: found.1.to_string(),
        model: found.0,
    }))
}

/// Drops from a request body what one conversation sends and a preset does not keep
/// (`messages`, `stream`, ...): what a preset made from a request keeps of it.
pub fn drop_transient(body: &mut Map<String, Value>) {
    for k in TRANSIENT {
        body.remove(k);
    }
}

/// Checks a preset's `config` as it is written: an object of request fields (model,
/// models, provider, parameters, tools, ...) that the request reader and its checks
/// accept, without what one conversation sends (`messages`, `stream`, ...), at most
/// [`MAX_CONFIG_BYTES`] as JSON. Errors name the field as `config.<field>`.
pub fn check_config(config: &Map<String, Value>) -> Result<()> {
    if let Some(k) = TRANSIENT.iter().find(|k| config.contains_key(**k)) {
        return Err(Error::bad_request(format!(
            "config.{k}: a preset holds a request's setup, not its {k}"
        )));
    }
    let size = serde_json::to_vec(config).map_or(usize::MAX, |v| v.len());
    if size > MAX_CONFIG_BYTES {
        return Err(Error::bad_request(format!(
            "config: must be at most {MAX_CONFIG_BYTES} bytes as JSON"
        )));
    }
    if let Some(m) = config.get("model").and_then(Value::as_str) {
        if m.contains(PREFIX) {
            return Err(Error::bad_request(
                "config.model: a preset cannot name another preset",
            ));
        }
    }
    as_request(config).map(|_| ())
}

/// A stored `config` as the request it describes (no messages; no model when it names
/// none), read and checked as a request's fields are.
pub fn as_request(config: &Map<String, Value>) -> Result<ChatRequest> {
    let mut body = config.clone();
    let placeholder = !body.contains_key("model") && !body.contains_key("models");
    if placeholder {
        body.insert("model".into(), Value::String("preset/placeholder".into()));
    }
    let mut user = Map::new();
    user.insert("role".into(), "user".into());
    user.insert("content".into(), ".".into());
    body.insert("messages".into(), Value::Array(vec![Value::Object(user)]));
    let in_config = |e: Error| match e {
        Error::BadRequest(m) => Error::BadRequest(format!("config.{m}")),
        other => other,
    };
    let mut req = super::read::chat(Value::Object(body)).map_err(in_config)?;
    super::validate::check(&req).map_err(in_config)?;
    req.messages.clear();
    if placeholder {
        req.model = None;
    }
    Ok(req)
}

/// Merges preset `p` (its config read by [`as_request`]) and its system prompt into
/// `req`, which named it by `r`. The request's fields win field by field (OpenRouter's
/// shallow merge: a `provider` object sent replaces the preset's whole); a completion
/// budget sent under either name replaces the preset's; tools are joined (the preset's
/// in order, a request tool of the same function name in its place, the request's
/// others after); the system prompt is put before the request's messages. The model is
/// the one the request names besides the preset, else the preset's.
pub fn apply(req: &mut ChatRequest, p: ChatRequest, system_prompt: Option<&str>, r: &PresetRef) {
    req.extra.remove("preset");
    req.model = r.model.clone().or(p.model);
    req.models = req.models.take().or(p.models);
    if req.max_tokens.is_none() && req.max_completion_tokens.is_none() {
        req.max_tokens = p.max_tokens;
        req.max_completion_tokens = p.max_completion_tokens;
    }
    macro_rules! keep_or_take {
        ($($f:ident),*) => {$( if req.$f.is_none() { req.$f = p.$f; } )*};
    }
    keep_or_take!(
        temperature,
        top_p,
        top_k,
        stop,
        tool_choice,
        response_format,
        reasoning,
        reasoning_effort,
        provider
    );
    req.tools = join_tools(p.tools, req.tools.take());
    for (k, v) in p.extra {
        req.extra.entry(k).or_insert(v);
    }
    if let Some(s) = system_prompt.filter(|s| !s.is_empty()) {
        let system = Message {
            role: Role::System,
            content: Some(Content::Text(s.to_string())),
            ..Default::default()
        };
        req.messages.insert(0, system);
    }
}

/// The preset's tools with the request's joined to them: a request tool of the same
/// function name replaces the preset's in its place; the request's others follow.
fn join_tools(preset: Option<Vec<Tool>>, request: Option<Vec<Tool>>) -> Option<Vec<Tool>> {
    let Some(mut out) = preset else {
        return request;
    };
    for t in request.into_iter().flatten() {
        match out.iter_mut().find(|p| p.function.name == t.function.name) {
            Some(slot) => *slot = t,
            None => out.push(t),
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn chat(v: Value) -> ChatRequest {
        ChatRequest::parse(v.to_string().as_bytes()).unwrap()
    }

    fn config(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    fn tool(name: &str, description: &str) -> Value {
        json!({"type": "function", "function": {"name": name, "description": description}})
    }

    #[test]
    fn the_three_ways_of_naming_a_preset() {
        let with = |body: Value| reference(&chat(body)).unwrap();
        let msgs = json!([{"role": "user", "content": "hi"}]);
        assert_eq!(
            with(json!({"model": "@preset/email-writer", "messages": msgs})),
            Some(PresetRef {
                slug: "email-writer".into(),
                model: None
            })
        );
        assert_eq!(
            with(json!({"model": "openai/gpt-4o@preset/email-writer", "messages": msgs})),
            Some(PresetRef {
                slug: "email-writer".into(),
                model: Some("openai/gpt-4o".into())
            })
        );
        assert_eq!(
            with(json!({"model": "a/b", "preset": "p_1", "messages": msgs})),
            Some(PresetRef {
                slug: "p_1".into(),
                model: Some("a/b".into())
            })
        );
        // `preset` alone needs no model.
        assert_eq!(
            with(json!({"preset": "p", "messages": msgs})),
            Some(PresetRef {
                slug: "p".into(),
                model: None
            })
        );
        assert_eq!(with(json!({"model": "a/b", "messages": msgs})), None);
    }

    #[test]
    fn bad_references_are_400s_naming_the_field() {
        let msgs = json!([{"role": "user", "content": "hi"}]);
        for (body, message) in [
            (
                json!({"model": "@preset/", "messages": msgs}),
                "model: must be 1 to 64 lowercase letters, digits, '-' or '_'",
            ),
            (
                json!({"model": "@preset/Has Space", "messages": msgs}),
                "model: must be 1 to 64 lowercase letters, digits, '-' or '_'",
            ),
            (
                json!({"model": "a/b", "preset": "x/y", "messages": msgs}),
                "preset: must be 1 to 64 lowercase letters, digits, '-' or '_'",
            ),
            (
                json!({"model": "@preset/a", "preset": "b", "messages": msgs}),
                "preset: names another preset than model does",
            ),
            (
                json!({"model": "a/b", "preset": 5, "messages": msgs}),
                "preset: must be a string",
            ),
        ] {
            let e = reference(&chat(body.clone())).unwrap_err();
            assert_eq!(e.status(), 400, "{body}");
            assert_eq!(e.public_message(), message, "{body}");
        }
    }

    #[test]
    fn configs_are_checked_as_request_fields() {
        check_config(&config(json!({
            "model": "openai/gpt-4o", "temperature": 0.2, "provider": {"sort": "price"},
            "tools": [tool("lookup", "finds")], "seed": 7
        })))
        .unwrap();
        check_config(&config(json!({"temperature": 1}))).unwrap();
        for (c, message) in [
            (
                json!({"messages": []}),
                "config.messages: a preset holds a request's setup, not its messages",
            ),
            (
                json!({"stream": true}),
                "config.stream: a preset holds a request's setup, not its stream",
            ),
            (
                json!({"temperature": 3}),
                "config.temperature: must be between 0 and 2, not 3",
            ),
            (
                json!({"model": "@preset/other"}),
                "config.model: a preset cannot name another preset",
            ),
            (
                json!({"temperature": "hot"}),
                "config.temperature: must be a number, not a string",
            ),
        ] {
            let e = check_config(&config(c.clone())).unwrap_err();
            assert_eq!(e.public_message(), message, "{c}");
        }
        let big = json!({"model": "a/b", "metadata": {"x": "y".repeat(MAX_CONFIG_BYTES)}});
        assert_eq!(
            check_config(&config(big)).unwrap_err().public_message(),
            "config: must be at most 16384 bytes as JSON"
        );
    }

    #[test]
    fn request_fields_override_the_preset_field_by_field() {
        let preset = as_request(&config(json!({
            "model": "openai/gpt-4o", "models": ["a/fallback"], "temperature": 0.2, "top_p": 0.5,
            "max_tokens": 100, "provider": {"sort": "price"}, "seed": 7, "frequency_penalty": 0.1,
            "tools": [tool("search", "preset's search"), tool("lookup", "finds")]
        })))
        .unwrap();
        let mut req = chat(json!({
            "model": "@preset/p", "temperature": 0.9, "max_completion_tokens": 20,
            "seed": 1, "tools": [tool("search", "request's search"), tool("calc", "adds")],
            "messages": [{"role": "system", "content": "mine"}, {"role": "user", "content": "hi"}]
        }));
        let r = reference(&req).unwrap().unwrap();
        apply(&mut req, preset, Some("You are terse."), &r);
        crate::api::validate::check(&req).unwrap();
        assert_eq!(
            serde_json::to_value(&req).unwrap(),
            json!({
                "model": "openai/gpt-4o", "models": ["a/fallback"],
                "messages": [
                    {"role": "system", "content": "You are terse."},
                    {"role": "system", "content": "mine"},
                    {"role": "user", "content": "hi"}
                ],
                "max_completion_tokens": 20, "temperature": 0.9, "top_p": 0.5,
                "tools": [tool("search", "request's search"), tool("lookup", "finds"), tool("calc", "adds")],
                "seed": 1, "frequency_penalty": 0.1
            })
        );
        // The provider preferences are the preset's (read by routing, not sent).
        let sent = as_request(&config(json!({"provider": {"sort": "price"}}))).unwrap();
        assert_eq!(req.provider, sent.provider);
        assert!(req.provider.is_some());
    }

    #[test]
    fn the_model_beside_the_preset_wins_and_the_preset_field_goes() {
        let preset = || as_request(&config(json!({"model": "openai/gpt-4o", "top_k": 3}))).unwrap();
        for body in [
            json!({"model": "x/y@preset/p", "messages": [{"role": "user", "content": "hi"}]}),
            json!({"model": "x/y", "preset": "p", "messages": [{"role": "user", "content": "hi"}]}),
        ] {
            let mut req = chat(body);
            let r = reference(&req).unwrap().unwrap();
            apply(&mut req, preset(), None, &r);
            assert_eq!(
                serde_json::to_value(&req).unwrap(),
                json!({"model": "x/y", "messages": [{"role": "user", "content": "hi"}], "top_k": 3})
            );
        }
        // A preset without a model and a request without one: no model (the check after the merge says so).
        let mut req = chat(json!({"preset": "p", "messages": [{"role": "user", "content": "hi"}]}));
        let r = reference(&req).unwrap().unwrap();
        apply(
            &mut req,
            as_request(&config(json!({"top_k": 3}))).unwrap(),
            None,
            &r,
        );
        assert_eq!(req.model, None);
        assert_eq!(req.top_k, Some(3));
    }

    #[test]
    fn preset_routes() {
        use crate::api::route::{route, Method::*, PresetRoute as P, Route};
        let r = |m, p: &str| route(m, p).map_err(|e| e.status());
        let slug = || "my-preset".to_string();
        assert_eq!(r(Get, "/api/v1/presets"), Ok(Route::Presets(P::List)));
        assert_eq!(r(Post, "/api/v1/presets/"), Ok(Route::Presets(P::Create)));
        assert_eq!(
            r(Get, "/api/v1/presets/my-preset"),
            Ok(Route::Presets(P::Get(slug())))
        );
        assert_eq!(
            r(Patch, "/api/v1/presets/my-preset"),
            Ok(Route::Presets(P::Update(slug())))
        );
        assert_eq!(
            r(Delete, "/api/v1/presets/my-preset"),
            Ok(Route::Presets(P::Delete(slug())))
        );
        assert_eq!(
            r(Get, "/api/v1/presets/my-preset/versions"),
            Ok(Route::Presets(P::Versions(slug())))
        );
        assert_eq!(
            r(Post, "/api/v1/presets/my-preset/chat/completions"),
            Ok(Route::Presets(P::FromChat(slug())))
        );
        assert_eq!(r(Delete, "/api/v1/presets"), Err(405));
        assert_eq!(r(Post, "/api/v1/presets/my-preset/versions"), Err(405));
        assert_eq!(r(Get, "/api/v1/presets/my-preset/other"), Err(404));
        assert_eq!(r(Get, "/api/v1/presets//versions"), Err(404));
    }

    #[test]
    fn tools_join_without_a_preset_list_or_a_request_list() {
        let t = |n: &str| serde_json::from_value::<Tool>(tool(n, n)).unwrap();
        assert_eq!(join_tools(None, Some(vec![t("a")])), Some(vec![t("a")]));
        assert_eq!(join_tools(Some(vec![t("a")]), None), Some(vec![t("a")]));
        assert_eq!(join_tools(None, None), None);
        assert_eq!(
            join_tools(Some(vec![t("a"), t("b")]), Some(vec![t("c"), t("a")])),
            Some(vec![t("a"), t("b"), t("c")])
        );
    }
}
