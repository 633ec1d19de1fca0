//! BYOK at the edge: `/api/v1/byok` (a provisioning key's), the sealing and opening of
//! the account's provider keys with AES-256-GCM through WebCrypto (`crypto.subtle`,
//! under the `BYOK_ENCRYPTION_KEY` secret, a random 96-bit nonce per write, the
//! account and credential as additional data), and the isolate's view of which
//! credentials a key's model calls may use (envelopes only, kept `KEY_CACHE_MS`; a
//! key is opened in memory for the attempt that uses it, never stored or logged).
//! Without the secret BYOK is off: its routes answer 503 and no call uses a key.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use serde_json::Value;
use worker::wasm_bindgen::{JsCast, JsValue};
use worker::{js_sys, Env, Response};

use super::account::{self, Op};
use super::account_api::caller_of;
use super::request::ClientRequest;
use super::{catalog, config, http};
use crate::accounts::byok::{self, ByokCall, ByokFields, ByokRecord, Envelope};
use crate::api::route::{query_param, Route};
use crate::error::Error;
use crate::routing::byok::{ByokRoute, ByokUse};

/// `BYOK_FEE_PERCENT` when unset, as OpenRouter's.
const DEFAULT_FEE_PERCENT: u64 = 5;

/// A caller's usable credentials as last read: (account, when, records).
type Cached = (String, u64, Rc<Vec<ByokRecord>>);

/// The credentials a request's key may use, and their account (whose ID seals them).
#[derive(Default)]
pub struct Keys {
    pub account: String,
    pub records: Rc<Vec<ByokRecord>>,
}

thread_local! {
    static CACHE: RefCell<HashMap<String, Cached>> = RefCell::new(HashMap::new());
    /// The imported AES key (a `CryptoKey`, not extractable), once per isolate.
    static AES: RefCell<Option<JsValue>> = const { RefCell::new(None) };
}

/// What the deployment charges a BYOK generation, in percent of its price (≤ 100).
pub fn fee_percent(env: &Env) -> u64 {
    config::u64(env, "BYOK_FEE_PERCENT", DEFAULT_FEE_PERCENT).min(100)
}

fn disabled() -> Error {
    Error::Misconfigured(
        "BYOK is disabled on this gateway: the BYOK_ENCRYPTION_KEY secret is not set (32 bytes, as 64 hex characters or base64)."
            .into(),
    )
}

/// The deployment's AES key, or why BYOK is off.
fn secret(env: &Env) -> Result<[u8; 32], Error> {
    config::string(env, "BYOK_ENCRYPTION_KEY")
        .as_deref()
        .and_then(byok::secret_key)
        .ok_or_else(disabled)
}

fn js_fail(what: &'static str) -> impl Fn(JsValue) -> Error {
    move |_| Error::Internal(format!("crypto.subtle.{what} failed"))
}

/// `crypto.subtle[method](...args)`, awaited.
async fn subtle(method: &'static str, args: &js_sys::Array) -> Result<JsValue, Error> {
    let fail = js_fail(method);
    let crypto = js_sys::Reflect::get(&js_sys::global(), &"crypto".into()).map_err(&fail)?;
    let subtle = js_sys::Reflect::get(&crypto, &"subtle".into()).map_err(&fail)?;
    let f: js_sys::Function = js_sys::Reflect::get(&subtle, &method.into())
        .map_err(&fail)?
        .dyn_into()
        .map_err(&fail)?;
    let promise: js_sys::Promise = f
        .apply(&subtle, args)
        .map_err(&fail)?
        .dyn_into()
        .map_err(&fail)?;
    worker::wasm_bindgen_futures::JsFuture::from(promise)
        .await
        .map_err(fail)
}

/// The imported AES-256-GCM key of the secret.
async fn aes_key(env: &Env) -> Result<JsValue, Error> {
    if let Some(k) = AES.with(|a| a.borrow().clone()) {
        return Ok(k);
    }
    let raw = secret(env)?;
    let alg = js_sys::Object::new();
    let fail = js_fail("importKey");
    js_sys::Reflect::set(&alg, &"name".into(), &"AES-GCM".into()).map_err(&fail)?;
    let usages = js_sys::Array::of2(&"encrypt".into(), &"decrypt".into());
    let args = js_sys::Array::of5(
        &"raw".into(),
        &js_sys::Uint8Array::from(&raw[..]),
        &alg,
        &JsValue::FALSE,
        &usages,
    );
    let key = subtle("importKey", &args).await?;
    AES.with(|a| *a.borrow_mut() = Some(key.clone()));
    Ok(key)
}

/// AES-GCM's parameters for one nonce and additional data.
fn gcm(nonce: &[u8], aad: &[u8]) -> Result<js_sys::Object, Error> {
    let p = js_sys::Object::new();
    let fail = js_fail("encrypt");
    js_sys::Reflect::set(&p, &"name".into(), &"AES-GCM".into()).map_err(&fail)?;
    js_sys::Reflect::set(&p, &"iv".into(), &js_sys::Uint8Array::from(nonce)).map_err(&fail)?;
    js_sys::Reflect::set(&p, &"additionalData".into(), &js_sys::Uint8Array::from(aad))
        .map_err(&fail)?;
    Ok(p)
}

/// `key` sealed for credential `id` of `account`: an envelope's text.
async fn seal(env: &Env, account: &str, id: &str, key: &str) -> Result<String, Error> {
    let aes = aes_key(env).await?;
    let nonce = config::secure_random::<{ byok::NONCE_BYTES }>()?;
    let params = gcm(&nonce, &byok::aad(account, id))?;
    let data = js_sys::Uint8Array::from(key.trim().as_bytes());
    let out = subtle("encrypt", &js_sys::Array::of3(&params, &aes, &data)).await?;
    let sealed = js_sys::Uint8Array::new(&out).to_vec();
    Ok(Envelope { nonce, sealed }.to_text())
}

/// The provider key of `r`, opened in memory.
async fn open(env: &Env, account: &str, r: &ByokRecord) -> Result<String, Error> {
    let bad = || {
        Error::Misconfigured(format!(
            "BYOK credential {} cannot be opened with this gateway's BYOK_ENCRYPTION_KEY",
            r.id
        ))
    };
    let e = Envelope::parse(&r.envelope).ok_or_else(bad)?;
    let aes = aes_key(env).await?;
    let params = gcm(&e.nonce, &byok::aad(account, &r.id))?;
    let data = js_sys::Uint8Array::from(&e.sealed[..]);
    let out = subtle("decrypt", &js_sys::Array::of3(&params, &aes, &data))
        .await
        .map_err(|_| bad())?;
    String::from_utf8(js_sys::Uint8Array::new(&out).to_vec()).map_err(|_| bad())
}

/// The credentials a model call of `caller` (of `account`) may use: none when BYOK
/// is off or the account's object cannot say; read at most every `KEY_CACHE_MS`.
pub async fn usable(env: &Env, account: &str, caller: &str) -> Keys {
    let records = records_for(env, account, caller).await;
    Keys {
        account: account.to_string(),
        records,
    }
}

async fn records_for(env: &Env, account: &str, caller: &str) -> Rc<Vec<ByokRecord>> {
    if secret(env).is_err() {
        return Rc::default();
    }
    let now = config::now_ms() as u64;
    let ttl = config::settings(env).key_cache_ms;
    let hit = CACHE.with(|c| {
        c.borrow()
            .get(caller)
            .filter(|(_, at, _)| now.saturating_sub(*at) < ttl)
            .map(|(_, _, r)| r.clone())
    });
    if let Some(r) = hit {
        return r;
    }
    let op = Op::Byok {
        caller: caller.to_string(),
        call: ByokCall::ForKey,
    };
    let records: Rc<Vec<ByokRecord>> = Rc::new(
        account::call::<Vec<ByokRecord>>(env, account, op)
            .await
            .unwrap_or_default(),
    );
    CACHE.with(|c| {
        let mut c = c.borrow_mut();
        // Bounded: an isolate sees a bounded set of keys, but never keep more than this.
        if c.len() >= 10_000 {
            c.clear();
        }
        c.insert(
            caller.to_string(),
            (account.to_string(), now, records.clone()),
        );
    });
    records
}

/// What routing sees of `records`.
pub fn routes(records: &[ByokRecord]) -> Vec<ByokRoute> {
    records
        .iter()
        .map(|r| ByokRoute {
            id: r.id.clone(),
            provider: r.provider.clone(),
            allowed_models: r.allowed_models.clone(),
            is_fallback: r.is_fallback,
            always_use: r.always_use,
        })
        .collect()
}

/// The provider key of the credential `b` pins an attempt to, opened for it.
pub async fn key_for(env: &Env, keys: &Keys, b: &ByokUse) -> Result<String, Error> {
    let r = keys
        .records
        .iter()
        .find(|r| r.id == b.id)
        .ok_or_else(|| Error::NoProvider(format!("BYOK credential {} is gone", b.id)))?;
    open(env, &keys.account, r).await
}

/// Forgets every cached view of `account`'s credentials (they just changed here).
fn forget(account: &str) {
    CACHE.with(|c| c.borrow_mut().retain(|_, (a, _, _)| a != account));
}

/// A credential's ID: a random (version 4) UUID, as OpenRouter's.
fn new_id() -> Result<String, Error> {
    let mut b = config::secure_random::<16>()?;
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    let part = |a: usize, z: usize| h.get(a..z).unwrap_or_default().to_string();
    Ok(format!(
        "{}-{}-{}-{}-{}",
        part(0, 8),
        part(8, 12),
        part(12, 16),
        part(16, 20),
        part(20, 32)
    ))
}

/// `GET /byok` paging: `offset` (≥ 0) and `limit` (1 to 100, default 50).
fn page(query: &str) -> Result<(u32, u32), Error> {
    let offset = match query_param(query, "offset").filter(|s| !s.is_empty()) {
        None => 0,
        Some(s) => s
            .parse()
            .map_err(|_| Error::bad_request("offset: must be a non-negative integer"))?,
    };
    let limit = match query_param(query, "limit").filter(|s| !s.is_empty()) {
        None => 50,
        Some(s) => s
            .parse::<u32>()
            .ok()
            .filter(|n| (1..=100).contains(n))
            .ok_or_else(|| Error::bad_request("limit: must be a whole number from 1 to 100"))?,
    };
    Ok((offset, limit))
}

/// A provider this gateway routes to (a catalogue provider of a family it speaks).
async fn check_provider(env: &Env, slug: &str) -> Result<(), Error> {
    let cat = catalog::load(env).await?;
    let found = cat
        .provider(&slug.trim().to_ascii_lowercase())
        .is_some_and(|p| p.api.is_known() && !crate::providers::family(p.api).in_isolate());
    if found {
        return Ok(());
    }
    let known: Vec<&str> = cat
        .providers
        .iter()
        .filter(|p| p.api.is_known() && !crate::providers::family(p.api).in_isolate())
        .map(|p| p.slug.as_str())
        .collect();
    Err(Error::bad_request(format!(
        "provider: not a provider of this gateway (one of: {})",
        known.join(", ")
    )))
}

/// A `PATCH` body as the account's object reads it: without the key, which only its
/// envelope carries on.
fn without_key(body: &[u8]) -> Result<String, Error> {
    let mut v: Value =
        serde_json::from_slice(body).map_err(|e| Error::bad_request(e.to_string()))?;
    if let Value::Object(m) = &mut v {
        m.remove("key");
    }
    Ok(v.to_string())
}

/// The BYOK routes of `/api/v1`.
pub async fn route(mut req: ClientRequest, env: &Env, route: Route) -> Result<Response, Error> {
    let (acc, caller) = caller_of(&mut req, env).await?;
    let body = match route {
        Route::ByokCreate | Route::ByokUpdate(_) => http::read_body(&mut req, 64 * 1024).await?,
        _ => Vec::new(),
    };
    let (call, status) = match route {
        Route::Byok => {
            let (offset, limit) = page(req.query())?;
            let provider = query_param(req.query(), "provider").filter(|s| !s.is_empty());
            (
                ByokCall::List {
                    provider,
                    offset,
                    limit,
                },
                200,
            )
        }
        Route::ByokGet(id) => (ByokCall::Get(id), 200),
        Route::ByokDelete(id) => (ByokCall::Delete(id), 200),
        Route::ByokCreate => {
            let (f, provider, key) = ByokFields::parse_create(&body)?;
            secret(env)?;
            check_provider(env, &provider).await?;
            let id = new_id()?;
            let sealed = (seal(env, &acc, &id, &key).await?, byok::mask(&key));
            let now = config::now_ms() as u64;
            (
                ByokCall::Create(f.into_record(id, provider, sealed, now)),
                201,
            )
        }
        Route::ByokUpdate(id) => {
            let f = ByokFields::parse_update(&body)?;
            let sealed = match &f.key {
                Some(key) => Some((seal(env, &acc, &id, key).await?, byok::mask(key))),
                None => None,
            };
            (
                ByokCall::Update {
                    id,
                    body: without_key(&body)?,
                    sealed,
                },
                200,
            )
        }
        _ => return Err(Error::MethodNotAllowed),
    };
    let changes = !matches!(call, ByokCall::List { .. } | ByokCall::Get(_));
    let v: Value = account::call(env, &acc, Op::Byok { caller, call }).await?;
    if changes {
        forget(&acc);
    }
    http::json_value(&v, status)
}
