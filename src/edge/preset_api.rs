//! The presets API (`/presets...`): each call one message to the caller's account
//! object, which keeps the presets ([`crate::accounts::presets`]); and what a request
//! that names a preset gets of it.

use serde_json::Value;
use worker::{Env, Response};

use super::account::{self, Op};
use super::account_api::{caller_of, json_body};
use super::request::ClientRequest;
use super::{config, http};
use crate::accounts::presets::{PresetCall, PresetDraft, PresetUse, MAX_PRESETS_LISTED};
use crate::api::preset::check_slug;
use crate::api::route::{query_param, PresetRoute};
use crate::error::Error;

/// One call of the presets API by the caller's key.
pub async fn route(mut req: ClientRequest, env: &Env, r: PresetRoute) -> Result<Response, Error> {
    let (acc, caller) = caller_of(&mut req, env).await?;
    let slugged = |s: String| check_slug(&s, "slug").map(|_| s);
    let (call, status) = match r {
        PresetRoute::List => {
            let q = req.query();
            let limit = number(q, "limit", MAX_PRESETS_LISTED)?.unwrap_or(MAX_PRESETS_LISTED);
            let offset = number(q, "offset", u32::MAX)?.unwrap_or(0);
            (PresetCall::List { limit, offset }, 200)
        }
        PresetRoute::Get(s) => (PresetCall::Get(slugged(s)?), 200),
        PresetRoute::Versions(s) => (PresetCall::Versions(slugged(s)?), 200),
        PresetRoute::Delete(s) => (PresetCall::Delete(slugged(s)?), 200),
        PresetRoute::Create => {
            let body = json_body(&mut req).await?;
            let slug = match body.get("slug").or_else(|| body.get("name")) {
                Some(Value::String(s)) => s.clone(),
                _ => return Err(Error::bad_request("slug: is required (a string)")),
            };
            (PresetCall::Put(slugged(slug)?, draft(&body)?), 201)
        }
        PresetRoute::Update(s) => {
            let body = json_body(&mut req).await?;
            (PresetCall::Update(slugged(s)?, draft(&body)?), 200)
        }
        PresetRoute::FromChat(s) => {
            let cfg = config::settings(env);
            let bytes = http::read_body(&mut req, cfg.max_body_bytes).await?;
            (PresetCall::Put(slugged(s)?, from_chat(&bytes)?), 201)
        }
    };
    let answer: Value = account::call(env, &acc, Op::Presets { caller, call }).await?;
    http::json_value(&serde_json::json!({ "data": answer }), status)
}

/// The newest version of preset `slug` of the caller's account, for a request that
/// names it (404 when the account has none by that slug).
pub async fn used(env: &Env, acc: &str, caller: &str, slug: &str) -> Result<PresetUse, Error> {
    let call = PresetCall::Use(slug.to_string());
    let caller = caller.to_string();
    account::call(env, acc, Op::Presets { caller, call }).await
}

/// Query parameter `name` as a whole number up to `max`, if given.
fn number(query: &str, name: &str, max: u32) -> Result<Option<u32>, Error> {
    let Some(v) = query_param(query, name).filter(|v| !v.is_empty()) else {
        return Ok(None);
    };
    v.parse::<u32>()
        .ok()
        .filter(|n| *n <= max)
        .map(Some)
        .ok_or_else(|| {
            Error::bad_request(format!("{name}: must be a whole number from 0 to {max}"))
        })
}

/// A string field of a write: absent (unchanged), null (cleared) or set.
fn text(body: &Value, name: &str, clear: &mut Vec<String>) -> Result<Option<String>, Error> {
    match body.get(name) {
        None => Ok(None),
        Some(Value::Null) => {
            clear.push(name.to_string());
            Ok(None)
        }
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(Error::bad_request(format!(
            "{name}: must be a string or null"
        ))),
    }
}

/// The fields of a `POST /presets` or `PATCH /presets/{slug}` body: `name`,
/// `description`, `system_prompt`, `config` (an object of request fields).
fn draft(body: &Value) -> Result<PresetDraft, Error> {
    let mut clear = Vec::new();
    let config = match body.get("config") {
        None => None,
        Some(Value::Object(m)) => Some(m.clone()),
        Some(_) => return Err(Error::bad_request("config: must be an object")),
    };
    let d = PresetDraft {
        name: text(body, "name", &mut Vec::new())?,
        description: text(body, "description", &mut clear)?,
        system_prompt: text(body, "system_prompt", &mut clear)?,
        config,
        clear,
        new_id: new_id()?,
    };
    d.check()?;
    Ok(d)
}

/// A preset's version from a chat completions body, as OpenRouter makes one: the
/// request's setup is kept (what is not one conversation's: messages, stream, ...
/// are dropped) and its system messages become the system prompt.
fn from_chat(bytes: &[u8]) -> Result<PresetDraft, Error> {
    let chat = crate::api::ChatRequest::parse(bytes)?;
    let system: Vec<String> = chat
        .messages
        .iter()
        .filter(|m| {
            matches!(
                m.role,
                crate::api::Role::System | crate::api::Role::Developer
            )
        })
        .map(|m| m.text())
        .collect();
    let Value::Object(mut config) = crate::api::parse_json(bytes)? else {
        return Err(Error::bad_request("The body must be a JSON object"));
    };
    crate::api::preset::drop_transient(&mut config);
    let d = PresetDraft {
        system_prompt: (!system.is_empty()).then(|| system.join("\n\n")),
        config: Some(config),
        new_id: new_id()?,
        ..Default::default()
    };
    d.check()?;
    Ok(d)
}

/// A fresh preset ID (what `id` shows; the slug names it in paths).
fn new_id() -> Result<String, Error> {
    let bytes = config::secure_random::<16>()?;
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    Ok(format!("pre_{hex}"))
}
