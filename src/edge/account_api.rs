//! The account endpoints (`/key`, `/keys`, `/credits`, `/generation`, `/activity`) and
//! the operator's admin API (`/admin/v1/...`, authorized by the `ADMIN_KEY` secret).

use serde_json::{json, Value};
use worker::{Env, Method, Request, Response};

use super::account::{self, KeyPatch, Op};
use super::{config, http};
use crate::accounts::keys;
use crate::accounts::ledger::{picos_from_usd, LimitReset};
use crate::accounts::records::{KeyKind, KeyRecord};
use crate::catalog::listing::percent_decode;
use crate::error::Error;
use crate::limits::Window;

/// The free-model windows configured for this deployment.
pub fn free_windows(env: &Env) -> Vec<Window> {
    vec![
        Window::requests(config::u64(env, "FREE_REQUESTS_PER_MINUTE", 20), 60),
        Window::requests(config::u64(env, "FREE_REQUESTS_PER_DAY", 200), 86_400),
    ]
}

/// The caller's account ID and key hash, from `Authorization: Bearer`.
pub fn caller(req: &Request) -> Result<(String, String), Error> {
    let auth = req.headers().get("Authorization").ok().flatten();
    let key = keys::bearer(auth.as_deref())?;
    let account =
        keys::account_of(key).ok_or_else(|| Error::Unauthorized("User not found.".into()))?;
    Ok((account.to_string(), keys::hash_key(key)))
}

fn query_param(req: &Request, name: &str) -> Option<String> {
    let url = req.url().ok()?;
    let q = url.query()?.to_string();
    q.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (k == name).then(|| percent_decode(v))
    })
}

async fn json_body(req: &mut Request) -> Result<Value, Error> {
    let bytes = req
        .bytes()
        .await
        .map_err(|e| Error::bad_request(format!("Could not read the body: {e}")))?;
    if bytes.is_empty() {
        return Ok(json!({}));
    }
    let v: Value = serde_json::from_slice(&bytes)?;
    if !v.is_object() {
        return Err(Error::bad_request("The body must be a JSON object"));
    }
    Ok(v)
}

fn data(v: Value) -> Result<Response, Error> {
    http::json(&json!({ "data": v }), 200)
}

/// `limit` (USD or null) and `limit_reset` of a create or update body: absent is
/// `None`, null is `Some(None)`.
struct LimitFields {
    limit: Option<Option<u64>>,
    reset: Option<Option<LimitReset>>,
}

fn limit_fields(body: &Value) -> Result<LimitFields, Error> {
    let limit = match body.get("limit") {
        None => None,
        Some(Value::Null) => Some(None),
        Some(v) => Some(Some(v.as_f64().and_then(picos_from_usd).ok_or_else(
            || Error::bad_request("`limit` must be a non-negative number of USD"),
        )?)),
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
    Ok(LimitFields { limit, reset })
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
    account: &str,
    name: String,
    kind: KeyKind,
    body: &Value,
) -> Result<(String, KeyRecord), Error> {
    let raw = keys::new_key(account, &config::secure_random::<24>()?);
    let LimitFields { limit, reset } = limit_fields(body)?;
    let record = KeyRecord {
        hash: keys::hash_key(&raw),
        name,
        label: keys::label(&raw),
        kind,
        disabled: false,
        limit_picos: limit.flatten(),
        limit_reset: reset.flatten(),
        created_ms: config::now_ms() as u64,
        updated_ms: None,
    };
    Ok((raw, record))
}

/// Routes `/api/v1` account paths; `None` when `path` is not one of them.
pub async fn route(mut req: Request, env: &Env, path: &str) -> Option<Result<Response, Error>> {
    let method = req.method();
    let known = matches!(
        path,
        "/key" | "/keys" | "/credits" | "/generation" | "/activity"
    ) || path.starts_with("/keys/");
    if !known {
        return None;
    }
    Some(
        async {
            let (acc, caller) = caller(&req)?;
            match (method, path) {
                (Method::Get, "/key") => data(
                    account::call(
                        env,
                        &acc,
                        &Op::WhoAmI {
                            caller,
                            free_windows: free_windows(env),
                        },
                    )
                    .await?,
                ),
                (Method::Get, "/credits") => {
                    data(account::call(env, &acc, &Op::Credits { caller }).await?)
                }
                (Method::Get, "/keys") => {
                    data(account::call(env, &acc, &Op::Keys { caller }).await?)
                }
                (Method::Post, "/keys") => {
                    let body = json_body(&mut req).await?;
                    let name = str_field(&body, "name")?
                        .ok_or_else(|| Error::bad_request("`name` is required"))?;
                    let (raw, record) = mint_key(&acc, name, KeyKind::Api, &body)?;
                    let created = account::call(
                        env,
                        &acc,
                        &Op::KeyCreate {
                            caller,
                            key: record,
                        },
                    )
                    .await?;
                    http::json(&json!({ "data": created, "key": raw }), 201)
                }
                (Method::Get, "/generation") => {
                    let id = query_param(&req, "id")
                        .ok_or_else(|| Error::bad_request("`id` is required"))?;
                    data(account::call(env, &acc, &Op::Generation { caller, id }).await?)
                }
                (Method::Get, "/activity") => {
                    let date = query_param(&req, "date").filter(|d| !d.is_empty());
                    data(account::call(env, &acc, &Op::Activity { caller, date }).await?)
                }
                (m, p) if p.starts_with("/keys/") => {
                    let hash = p["/keys/".len()..].to_string();
                    match m {
                        Method::Get => {
                            data(account::call(env, &acc, &Op::KeyGet { caller, hash }).await?)
                        }
                        Method::Patch => {
                            let body = json_body(&mut req).await?;
                            let LimitFields {
                                limit,
                                reset: limit_reset,
                            } = limit_fields(&body)?;
                            let disabled = match body.get("disabled") {
                                None | Some(Value::Null) => None,
                                Some(Value::Bool(b)) => Some(*b),
                                Some(_) => {
                                    return Err(Error::bad_request("`disabled` must be a boolean"))
                                }
                            };
                            let patch = KeyPatch {
                                name: str_field(&body, "name")?,
                                disabled,
                                limit,
                                limit_reset,
                            };
                            data(
                                account::call(
                                    env,
                                    &acc,
                                    &Op::KeyUpdate {
                                        caller,
                                        hash,
                                        patch,
                                    },
                                )
                                .await?,
                            )
                        }
                        Method::Delete => http::json(
                            &account::call(env, &acc, &Op::KeyDelete { caller, hash }).await?,
                            200,
                        ),
                        _ => Err(Error::MethodNotAllowed),
                    }
                }
                _ => Err(Error::MethodNotAllowed),
            }
        }
        .await,
    )
}

/// The operator's API under `/admin/v1`.
pub async fn admin(mut req: Request, env: &Env, path: &str) -> Result<Response, Error> {
    let admin_key = config::string(env, "ADMIN_KEY").ok_or_else(|| {
        Error::Forbidden("The admin API is off: set the ADMIN_KEY secret.".into())
    })?;
    let auth = req.headers().get("Authorization").ok().flatten();
    if !keys::same(keys::bearer(auth.as_deref())?, &admin_key) {
        return Err(Error::Unauthorized("Not the admin key.".into()));
    }
    let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
    let method = req.method();
    match (method, parts.as_slice()) {
        (Method::Post, ["accounts"]) => {
            let body = json_body(&mut req).await?;
            let id = keys::new_account_id(&config::secure_random::<8>()?);
            let name = str_field(&body, "name")?.unwrap_or_else(|| id.clone());
            let credits = match body.get("credits") {
                None | Some(Value::Null) => 0,
                Some(v) => v.as_f64().and_then(picos_from_usd).ok_or_else(|| {
                    Error::bad_request("`credits` must be a non-negative number of USD")
                })?,
            };
            let allow_training = body
                .get("allow_training")
                .and_then(Value::as_bool)
                .unwrap_or(false);
            let (api_key, api) = mint_key(&id, "default".into(), KeyKind::Api, &json!({}))?;
            let (prov_key, prov) = mint_key(
                &id,
                "provisioning".into(),
                KeyKind::Provisioning,
                &json!({}),
            )?;
            let acc = account::call(
                env,
                &id,
                &Op::Init {
                    id: id.clone(),
                    name,
                    allow_training,
                    credits,
                    keys: vec![api, prov],
                },
            )
            .await?;
            http::json(
                &json!({ "data": acc, "api_key": api_key, "provisioning_key": prov_key }),
                201,
            )
        }
        (m, ["accounts", id, rest @ ..]) if keys::is_account_id(id) => {
            let id = id.to_string();
            match (m, rest) {
                (Method::Get, []) => data(account::call(env, &id, &Op::Account).await?),
                (Method::Patch, []) => {
                    let body = json_body(&mut req).await?;
                    let allow_training = match body.get("allow_training") {
                        None | Some(Value::Null) => None,
                        Some(Value::Bool(b)) => Some(*b),
                        Some(_) => {
                            return Err(Error::bad_request("`allow_training` must be a boolean"))
                        }
                    };
                    data(
                        account::call(
                            env,
                            &id,
                            &Op::Update {
                                name: str_field(&body, "name")?,
                                allow_training,
                            },
                        )
                        .await?,
                    )
                }
                (Method::Post, ["credits"]) => {
                    let body = json_body(&mut req).await?;
                    let picos = body
                        .get("amount")
                        .and_then(Value::as_f64)
                        .and_then(picos_from_usd)
                        .ok_or_else(|| {
                            Error::bad_request("`amount` must be a non-negative number of USD")
                        })?;
                    let note = str_field(&body, "note")?.unwrap_or_default();
                    data(account::call(env, &id, &Op::Grant { picos, note }).await?)
                }
                (Method::Post, ["keys"]) => {
                    let body = json_body(&mut req).await?;
                    let kind = match body.get("kind").and_then(Value::as_str) {
                        None | Some("api") => KeyKind::Api,
                        Some("provisioning") => KeyKind::Provisioning,
                        Some(_) => {
                            return Err(Error::bad_request(
                                "`kind` must be \"api\" or \"provisioning\"",
                            ))
                        }
                    };
                    let name = str_field(&body, "name")?.unwrap_or_else(|| "key".into());
                    let (raw, record) = mint_key(&id, name, kind, &body)?;
                    let created = account::call(env, &id, &Op::AddKey { key: record }).await?;
                    http::json(&json!({ "data": created, "key": raw }), 201)
                }
                _ => Err(Error::NotFound(format!("No admin route for {path}"))),
            }
        }
        _ => Err(Error::NotFound(format!("No admin route for {path}"))),
    }
}
