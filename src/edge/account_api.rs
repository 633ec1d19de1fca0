//! The account endpoints (`/key`, `/keys`, `/credits`, `/generation`, `/activity`) and
//! the operator's admin API (`/admin/v1/...`, authorized by the `ADMIN_KEY` secret).

use serde_json::{json, Value};
use worker::{Env, Response};

use super::account::{self, KeyPatch, Op, Privacy};
use super::request::ClientRequest;
use super::{config, http};
use crate::accounts::keys;
use crate::accounts::ledger::{self, picos_from_usd_text, LimitReset};
use crate::accounts::records::{KeyKind, KeyRecord};
use crate::api::route::{query_param, AdminRoute, Route};
use crate::api::session::{LimitsPatch, SessionLimits};
use crate::error::Error;
use crate::limits::Window;
use crate::settings::Settings;

/// The free-model windows configured for this deployment.
pub fn free_windows(env: &Env) -> Vec<Window> {
    let s = config::settings(env);
    vec![
        Window::requests(s.free_requests_per_minute, 60),
        Window::requests(s.free_requests_per_day, 86_400),
    ]
}

/// The deployment's key-tagging secret.
pub fn key_secret(cfg: &Settings) -> Result<&[u8], Error> {
    cfg.key_secret.as_deref().map(str::as_bytes).ok_or_else(|| {
        Error::Misconfigured(
            "This gateway is not configured: the KEY_SECRET secret is not set.".into(),
        )
    })
}

/// The caller's account ID and key hash, from `Authorization: Bearer` (or Anthropic's
/// `x-api-key`). The key's check tag is verified here, before the body is read or any
/// Durable Object is touched: a key this deployment did not issue goes no further.
pub fn caller(req: &ClientRequest, env: &Env) -> Result<(String, String), Error> {
    let header = |name: &str| req.headers().get(name).ok().flatten();
    let auth = header("Authorization");
    let x_api_key = header("x-api-key");
    let key = match (&auth, &x_api_key) {
        (None, Some(k)) => k.trim(),
        _ => keys::bearer(auth.as_deref())?,
    };
    let cfg = config::settings(env);
    let account = keys::verify(key, key_secret(&cfg)?)
        .ok_or_else(|| Error::Unauthorized("User not found.".into()))?;
    Ok((account.to_string(), keys::hash_key(key)))
}

/// [`caller`], draining a small unread body when the key is refused.
pub async fn caller_of(req: &mut ClientRequest, env: &Env) -> Result<(String, String), Error> {
    match caller(req, env) {
        Ok(c) => Ok(c),
        Err(e) => {
            http::discard_body(req).await;
            Err(e)
        }
    }
}

/// Bodies of the account and admin calls are small JSON objects.
const MAX_ACCOUNT_BODY: usize = 64 * 1024;

pub(super) async fn json_body(req: &mut ClientRequest) -> Result<Value, Error> {
    let bytes = http::read_body(req, MAX_ACCOUNT_BODY).await?;
    if bytes.is_empty() {
        return Ok(json!({}));
    }
    crate::api::validate::check_depth(&bytes)?;
    let v: Value = serde_json::from_slice(&bytes)?;
    if !v.is_object() {
        return Err(Error::bad_request("The body must be a JSON object"));
    }
    Ok(v)
}

/// A USD amount (a JSON number or a decimal string) in picodollars, exactly: the
/// number's decimal text is parsed, never multiplied as a float.
fn usd_field(v: &Value, name: &str) -> Result<u64, Error> {
    let text = match v {
        Value::Number(n) => n.to_string(),
        Value::String(s) => s.clone(),
        _ => String::new(),
    };
    picos_from_usd_text(&text).ok_or_else(|| {
        Error::bad_request(format!(
            "{name}: must be a number of USD from 0 to 1000000 with at most 12 decimals"
        ))
    })
}

fn data(v: Value) -> Result<Response, Error> {
    http::json_value(&json!({ "data": v }), 200)
}

/// `limit` (USD or null), `limit_reset`, `session_limits_default` (or null) and
/// `require_session_id` of a create or update body: absent is `None`, null is
/// `Some(None)`.
struct LimitFields {
    limit: Option<Option<u64>>,
    reset: Option<Option<LimitReset>>,
    session_default: Option<Option<SessionLimits>>,
    require_session: Option<bool>,
    include_byok: Option<bool>,
}

fn limit_fields(body: &Value) -> Result<LimitFields, Error> {
    let limit = match body.get("limit") {
        None => None,
        Some(Value::Null) => Some(None),
        Some(v) => Some(Some(usd_field(v, "limit")?)),
    };
    let reset = match body.get("limit_reset") {
        None => None,
        Some(Value::Null) => Some(None),
        Some(v) => Some(Some(v.as_str().and_then(LimitReset::parse).ok_or_else(
            || {
                Error::bad_request(
                    "`limit_reset` must be \"daily\", \"weekly\", \"monthly\" or null",
                )
            },
        )?)),
    };
    let session_default = match body.get("session_limits_default") {
        None => None,
        Some(Value::Null) => Some(None),
        // `{}` sets none: the same as null.
        Some(v) => Some(
            Some(LimitsPatch::from_body(v, "session_limits_default")?.set)
                .filter(|l| !l.is_empty()),
        ),
    };
    Ok(LimitFields {
        limit,
        reset,
        session_default,
        require_session: opt_bool(body, "require_session_id")?,
        include_byok: opt_bool(body, "include_byok_in_limit")?,
    })
}

fn str_field(body: &Value, name: &str) -> Result<Option<String>, Error> {
    match body.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(Error::bad_request(format!("`{name}` must be a string"))),
    }
}

/// A fresh key for `account`: (raw key, its record). The raw key is shown once.
fn mint_key(
    env: &Env,
    account: &str,
    name: String,
    kind: KeyKind,
    body: &Value,
) -> Result<(String, KeyRecord), Error> {
    let raw = keys::new_key(
        key_secret(&config::settings(env))?,
        account,
        &config::secure_random::<16>()?,
    );
    let f = limit_fields(body)?;
    let record = KeyRecord {
        hash: keys::hash_key(&raw),
        name,
        label: keys::label(&raw),
        kind,
        disabled: false,
        limit_picos: f.limit.flatten(),
        limit_reset: f.reset.flatten(),
        created_ms: config::now_ms() as u64,
        updated_ms: None,
        session_limits_default: f.session_default.flatten(),
        require_session_id: f.require_session.unwrap_or(false),
        include_byok_in_limit: f.include_byok.unwrap_or(false),
    };
    Ok((raw, record))
}

/// Checks that `caller` is a live key of `account` (not disabled, not deleted), for a
/// call that is not admitted like a generation, and answers the account's privacy
/// setting (whether providers that train on prompts may see them): at once when this
/// isolate holds a fresh lease for it (at most `KEY_CACHE_MS` old, the revocation
/// bound), else by asking the account's object. The unread body is drained when the
/// key is refused.
pub async fn live_key(
    req: &mut ClientRequest,
    env: &Env,
    account: &str,
    caller: &str,
) -> Result<bool, Error> {
    if let Some(allow_training) = super::admission::usable(env, caller) {
        return Ok(allow_training);
    }
    let op = Op::Privacy {
        caller: caller.to_string(),
        allow_training: None,
    };
    match account::call::<Privacy>(env, account, op).await {
        Ok(p) => Ok(p.allow_training),
        Err(e) => {
            http::discard_body(req).await;
            Err(e)
        }
    }
}

/// The privacy setting of the calling key's account (`/models/user`).
pub async fn allow_training(req: &mut ClientRequest, env: &Env) -> Result<bool, Error> {
    let (acc, caller) = caller_of(req, env).await?;
    let op = Op::Privacy {
        caller,
        allow_training: None,
    };
    let p: Privacy = account::call(env, &acc, op).await?;
    Ok(p.allow_training)
}

/// The account routes of `/api/v1` (`/key`, `/keys...`, `/credits`, `/generation`,
/// `/activity`, `/sessions...`).
pub async fn route(mut req: ClientRequest, env: &Env, route: Route) -> Result<Response, Error> {
    if route.is_byok() {
        return super::byok::route(req, env, route).await;
    }
    let (acc, caller) = caller_of(&mut req, env).await?;
    // One read of the body, for the routes that take one.
    let body = match route {
        Route::CreateKey | Route::PrivacyUpdate | Route::KeyUpdate(_) | Route::SessionUpdate(_) => {
            json_body(&mut req).await?
        }
        _ => Value::Null,
    };
    // Views of the account's object alone, which go to the client as they are.
    let op = match route {
        Route::Key => Op::WhoAmI {
            caller,
            free_windows: free_windows(env),
        },
        Route::Credits => Op::Credits { caller },
        Route::Keys => Op::Keys {
            caller: Some(caller),
        },
        Route::Privacy => Op::Privacy {
            caller,
            allow_training: None,
        },
        Route::PrivacyUpdate => match body.get("allow_training") {
            Some(Value::Bool(b)) => Op::Privacy {
                caller,
                allow_training: Some(*b),
            },
            _ => return Err(Error::bad_request("allow_training: must be a boolean")),
        },
        Route::KeyGet(hash) => Op::KeyGet { caller, hash },
        Route::Sessions | Route::SessionGet(_) | Route::SessionUpdate(_) => {
            super::session_api::op(req.query(), &body, caller, route)?
        }
        other => return changes_and_history(&req, env, &acc, caller, other, body).await,
    };
    data(account::call::<Value>(env, &acc, op).await?)
}

/// The account routes that are more than a view of the object: keys made, changed and
/// deleted, and the history (read from the day shards).
async fn changes_and_history(
    req: &ClientRequest,
    env: &Env,
    acc: &str,
    caller: String,
    route: Route,
    body: Value,
) -> Result<Response, Error> {
    let q = req.query();
    match route {
        Route::CreateKey => {
            let name =
                str_field(&body, "name")?.ok_or_else(|| Error::bad_request("name: is required"))?;
            let (raw, record) = mint_key(env, acc, name, KeyKind::Api, &body)?;
            let op = Op::KeyCreate {
                caller,
                key: record,
            };
            let created = account::call::<Value>(env, acc, op).await?;
            http::json_value(&json!({ "data": created, "key": raw }), 201)
        }
        Route::Generation => {
            let id = query_param(q, "id")
                .filter(|id| !id.is_empty())
                .ok_or_else(|| Error::bad_request("id: is required"))?;
            data(super::history::generation(env, acc, caller, id).await?)
        }
        Route::Activity => data(super::history::activity(env, acc, caller, day_param(q)?).await?),
        Route::Generations => {
            let (limit, session) = (limit_param(q)?, session_param(q)?);
            data(super::history::generations(env, acc, caller, limit, session).await?)
        }
        Route::KeyUpdate(hash) => update_key(env, acc, Some(caller), hash, key_patch(&body)?).await,
        Route::KeyDelete(hash) => delete_key(env, acc, Some(caller), hash).await,
        _ => Err(Error::MethodNotAllowed),
    }
}

/// `/activity`'s `date` (days since 1970-01-01), if given.
fn day_param(query: &str) -> Result<Option<i64>, Error> {
    match query_param(query, "date").filter(|d| !d.is_empty()) {
        None => Ok(None),
        Some(d) => ledger::parse_day(&d).map(Some).ok_or_else(|| {
            Error::bad_request("date: must be a date as YYYY-MM-DD (years 0000 to 9999)")
        }),
    }
}

/// `/generations`' `session_id`, if given: a session's generations only.
fn session_param(query: &str) -> Result<Option<String>, Error> {
    let Some(id) = query_param(query, "session_id").filter(|s| !s.is_empty()) else {
        return Ok(None);
    };
    crate::api::session::check_id(&id, "session_id")?;
    Ok(Some(id))
}

/// `/generations`' `limit` (50 if not given).
pub(super) fn limit_param(query: &str) -> Result<u32, Error> {
    let Some(l) = query_param(query, "limit").filter(|l| !l.is_empty()) else {
        return Ok(50);
    };
    l.parse::<u32>()
        .ok()
        .filter(|n| (1..=account::MAX_GENERATIONS_LISTED).contains(n))
        .ok_or_else(|| {
            Error::bad_request(format!(
                "limit: must be a whole number from 1 to {}",
                account::MAX_GENERATIONS_LISTED
            ))
        })
}

/// The fields of a key update.
fn key_patch(body: &Value) -> Result<KeyPatch, Error> {
    let f = limit_fields(body)?;
    let disabled = match body.get("disabled") {
        None | Some(Value::Null) => None,
        Some(Value::Bool(b)) => Some(*b),
        Some(_) => return Err(Error::bad_request("disabled: must be a boolean")),
    };
    Ok(KeyPatch {
        name: str_field(body, "name")?,
        disabled,
        limit: f.limit,
        limit_reset: f.reset,
        session_limits_default: f.session_default,
        require_session_id: f.require_session,
        include_byok_in_limit: f.include_byok,
    })
}

/// Updates key `hash` of account `acc` for `caller` (None: the operator). The object
/// decides whether the caller may manage the key; only then does this isolate act on
/// the change, so a caller who only knows a key's hash changes nothing, here or there.
async fn update_key(
    env: &Env,
    acc: &str,
    caller: Option<String>,
    hash: String,
    patch: KeyPatch,
) -> Result<Response, Error> {
    let restricts = patch.restricts();
    let updated: Value = account::call(
        env,
        acc,
        Op::KeyUpdate {
            caller,
            hash: hash.clone(),
            patch,
        },
    )
    .await?;
    if restricts {
        stop_leasing(env, &hash).await;
    }
    data(updated)
}

async fn delete_key(
    env: &Env,
    acc: &str,
    caller: Option<String>,
    hash: String,
) -> Result<Response, Error> {
    // `{"deleted": true}` ([`crate::accounts::ops::Deleted`]), for the client.
    let deleted: Value = account::call(
        env,
        acc,
        Op::KeyDelete {
            caller,
            hash: hash.clone(),
        },
    )
    .await?;
    stop_leasing(env, &hash).await;
    http::json_value(&deleted, 200)
}

/// After a key was disabled, deleted or its limit changed: this isolate stops admitting
/// it from its lease at once and gives the lease back, which keeps holding what the
/// requests still running against it may spend until each settles; other isolates do
/// the same at their next renewal (within `KEY_CACHE_MS`).
async fn stop_leasing(env: &Env, hash: &str) {
    super::admission::surrender(env, hash).await;
}

/// Checks the operator's `ADMIN_KEY` (constant time) before any admin route is matched.
pub fn authorize_admin(req: &ClientRequest, env: &Env) -> Result<(), Error> {
    let admin_key = config::settings(env).admin_key.clone().ok_or_else(|| {
        Error::Forbidden("The admin API is off: set the ADMIN_KEY secret.".into())
    })?;
    let auth = req.headers().get("Authorization").ok().flatten();
    if !keys::same(keys::bearer(auth.as_deref())?, &admin_key) {
        return Err(Error::Unauthorized("Not the admin key.".into()));
    }
    Ok(())
}

/// `POST /admin/v1/accounts`: a new account with its credits, an API key and a
/// provisioning key (both shown once).
async fn create_account(mut req: ClientRequest, env: &Env) -> Result<Response, Error> {
    let body = json_body(&mut req).await?;
    let id = keys::new_account_id(&config::secure_random::<8>()?);
    let name = str_field(&body, "name")?.unwrap_or_else(|| id.clone());
    let credits = match body.get("credits") {
        None | Some(Value::Null) => 0,
        Some(v) => usd_field(v, "credits")?,
    };
    let allow_training = opt_bool(&body, "allow_training")?.unwrap_or(false);
    let (api_key, api) = mint_key(env, &id, "default".into(), KeyKind::Api, &json!({}))?;
    let (prov_key, prov) = mint_key(
        env,
        &id,
        "provisioning".into(),
        KeyKind::Provisioning,
        &json!({}),
    )?;
    let acc: Value = account::call(
        env,
        &id,
        Op::Init {
            id: id.clone(),
            name,
            allow_training,
            credits,
            keys: vec![api, prov],
        },
    )
    .await?;
    http::json_value(
        &json!({ "data": acc, "api_key": api_key, "provisioning_key": prov_key }),
        201,
    )
}

/// Boolean field `name` of `body`, if set (null: unset).
fn opt_bool(body: &Value, name: &str) -> Result<Option<bool>, Error> {
    match body.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(_) => Err(Error::bad_request(format!("{name}: must be a boolean"))),
    }
}

/// The operator's API under `/admin/v1` (authorized by [`authorize_admin`]).
pub async fn admin(
    mut req: ClientRequest,
    env: &Env,
    route: AdminRoute,
) -> Result<Response, Error> {
    match route {
        AdminRoute::CreateAccount => create_account(req, env).await,
        AdminRoute::Account(id) => data(account::call(env, &id, Op::Account).await?),
        AdminRoute::Ledger(id) => data(account::call(env, &id, Op::Ledger).await?),
        AdminRoute::UpdateAccount(id) => {
            let body = json_body(&mut req).await?;
            let allow_training = opt_bool(&body, "allow_training")?;
            data(
                account::call(
                    env,
                    &id,
                    Op::Update {
                        name: str_field(&body, "name")?,
                        allow_training,
                    },
                )
                .await?,
            )
        }
        AdminRoute::Grant(id) => {
            let body = json_body(&mut req).await?;
            let picos = usd_field(
                body.get("amount")
                    .ok_or_else(|| Error::bad_request("amount: is required"))?,
                "amount",
            )?;
            let note = str_field(&body, "note")?.unwrap_or_default();
            data(account::call(env, &id, Op::Grant { picos, note }).await?)
        }
        AdminRoute::CreateKey(id) => {
            let body = json_body(&mut req).await?;
            let kind = match body.get("kind").and_then(Value::as_str) {
                None | Some("api") => KeyKind::Api,
                Some("provisioning") => KeyKind::Provisioning,
                Some(_) => {
                    return Err(Error::bad_request(
                        "kind: must be \"api\" or \"provisioning\"",
                    ))
                }
            };
            let name = str_field(&body, "name")?.unwrap_or_else(|| "key".into());
            let (raw, record) = mint_key(env, &id, name, kind, &body)?;
            let created: Value = account::call(env, &id, Op::AddKey { key: record }).await?;
            http::json_value(&json!({ "data": created, "key": raw }), 201)
        }
        AdminRoute::Keys(id) => data(account::call(env, &id, Op::Keys { caller: None }).await?),
        AdminRoute::UpdateKey(id, hash) => {
            let patch = key_patch(&json_body(&mut req).await?)?;
            update_key(env, &id, None, hash, patch).await
        }
        AdminRoute::DeleteKey(id, hash) => delete_key(env, &id, None, hash).await,
    }
}
