//! Trace export at the edge (README "Trace export"): the account's destinations
//! (`/observability/destinations`, provisioning key; kept in the `TRACES` R2 bucket),
//! and each settled generation's span sent to those that take its key and sample it,
//! as the request's background work after its settlement (never before its reply),
//! retried. The spans themselves are `accounts::traces`'.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use serde_json::Value;
use worker::{Bucket, Env, Response};

use super::account_api::{caller_of, json_body};
use super::request::ClientRequest;
use super::{config, http, upstream};
use crate::accounts::destinations::{self, Destination, Kind, MAX_DESTINATIONS};
use crate::accounts::records::Generation;
use crate::accounts::traces::{self, SpanFacts};
use crate::api::route::{Method, Route};
use crate::error::Error;
use crate::providers::UpstreamRequest;

const BINDING: &str = "TRACES";
/// How stale an isolate's copy of an account's destinations may be.
const CACHE_MS: u64 = 10_000;
/// Tries per export, and the first pause between them (doubling).
const TRIES: u32 = 3;
const RETRY_MS: u64 = 250;
const EXPORT_TIMEOUT_MS: u64 = 10_000;

/// An account's destinations as read at (ms).
type Cached = (u64, Rc<Vec<Destination>>);

thread_local! {
    /// Account → its destinations, as last read.
    static CACHE: RefCell<HashMap<String, Cached>> = RefCell::new(HashMap::new());
}

fn list_key(account: &str) -> String {
    format!("observability/{account}/destinations.json")
}

async fn load(bucket: &Bucket, account: &str) -> Result<Vec<Destination>, Error> {
    let Some(object) = bucket
        .get(list_key(account))
        .execute()
        .await
        .map_err(http::internal)?
    else {
        return Ok(Vec::new());
    };
    let Some(body) = object.body() else {
        return Ok(Vec::new());
    };
    let bytes = body.bytes().await.map_err(http::internal)?;
    serde_json::from_slice(&bytes).map_err(|e| Error::Internal(format!("destinations: {e}")))
}

async fn save(bucket: &Bucket, account: &str, all: &[Destination]) -> Result<(), Error> {
    let bytes = serde_json::to_vec(all)?;
    bucket
        .put(list_key(account), bytes)
        .execute()
        .await
        .map_err(http::internal)?;
    CACHE.with(|c| c.borrow_mut().remove(account));
    Ok(())
}

/// `/observability/destinations[/{id}]`.
pub async fn destinations(
    mut req: ClientRequest,
    env: &Env,
    route: Route,
) -> Result<Response, Error> {
    let (account, key) = caller_of(&mut req, env).await?;
    let body = match req.method() {
        worker::Method::Post | worker::Method::Patch => json_body(&mut req).await?,
        _ => Value::Null,
    };
    super::history::scope(env, &account, &key, true).await?;
    let bucket = env.bucket(BINDING).map_err(|_| {
        Error::Misconfigured(
            "Trace export is not configured: the TRACES R2 bucket is not bound.".into(),
        )
    })?;
    let mut all = load(&bucket, &account).await?;
    let missing =
        |id: &str| Error::NotFound(format!("No destination {}", crate::error::truncate(id, 64)));
    let data = |v: Value| serde_json::json!({ "data": v });
    match route {
        Route::Destinations(Method::Post) => {
            if all.len() >= MAX_DESTINATIONS {
                return Err(Error::bad_request("at most 10 destinations per account"));
            }
            let id = format!("dst_{}", hex(&config::random_bytes(8)));
            let d = Destination::create(body, id, config::now_secs())?;
            let view = d.view();
            all.push(d);
            save(&bucket, &account, &all).await?;
            http::json(&data(view), 201)
        }
        Route::Destinations(_) => http::json(&destinations::list_view(&all), 200),
        Route::Destination(m, id) => {
            let at = all
                .iter()
                .position(|d| d.id == id)
                .ok_or_else(|| missing(&id))?;
            match m {
                Method::Delete => {
                    all.remove(at);
                    save(&bucket, &account, &all).await?;
                    http::json(&serde_json::json!({ "id": id, "deleted": true }), 200)
                }
                Method::Patch => {
                    let d = all.get_mut(at).ok_or_else(|| missing(&id))?;
                    d.patch(body)?;
                    let view = d.view();
                    save(&bucket, &account, &all).await?;
                    http::json(&data(view), 200)
                }
                _ => http::json(
                    &data(all.get(at).map(Destination::view).unwrap_or_default()),
                    200,
                ),
            }
        }
        _ => Err(Error::Internal("not a destinations route".into())),
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The account's destinations, from the isolate's copy while it is fresh.
async fn cached(bucket: &Bucket, account: &str) -> Rc<Vec<Destination>> {
    let now = config::now_ms() as u64;
    let hit = CACHE.with(|c| {
        c.borrow()
            .get(account)
            .filter(|(at, _)| now.saturating_sub(*at) < CACHE_MS)
            .map(|(_, d)| d.clone())
    });
    if let Some(d) = hit {
        return d;
    }
    let all = Rc::new(load(bucket, account).await.unwrap_or_default());
    CACHE.with(|c| {
        c.borrow_mut()
            .insert(account.to_string(), (now, all.clone()))
    });
    all
}

/// Sends a settled generation's span to every destination of the account that takes
/// its key and samples it. Nothing here fails the request: an export that does not
/// land after its tries is logged (without its headers) and dropped.
pub async fn export(env: &Env, account: &str, key: &str, g: &Generation, facts: &SpanFacts) {
    let Ok(bucket) = env.bucket(BINDING) else {
        return;
    };
    let all = cached(&bucket, account).await;
    let session = facts.session_id.as_deref();
    for d in all.iter().filter(|d| d.takes(key)) {
        if !traces::sampled(d.sampling_ppm, session, &g.id) {
            continue;
        }
        let body = traces::export_body(vec![traces::span(g, facts, d.privacy_mode)]);
        let Ok(bytes) = serde_json::to_vec(&body) else {
            continue;
        };
        let mut pause = RETRY_MS;
        for attempt in 1..=TRIES {
            match send(&bucket, account, d, &g.id, &bytes).await {
                Ok(()) => break,
                Err(e) if attempt == TRIES => {
                    worker::console_warn!("trace export to {} failed: {e}", d.id);
                }
                Err(_) => {
                    config::sleep(pause).await;
                    pause = pause.saturating_mul(2);
                }
            }
        }
    }
}

async fn send(
    bucket: &Bucket,
    account: &str,
    d: &Destination,
    gen_id: &str,
    bytes: &[u8],
) -> Result<(), String> {
    if d.kind == Kind::Bucket {
        let prefix = d.prefix.as_deref().unwrap_or("traces");
        let key = format!("{prefix}/{account}/{}/{gen_id}.json", d.id);
        return bucket
            .put(key, bytes.to_vec())
            .execute()
            .await
            .map(|_| ())
            .map_err(|e| e.to_string());
    }
    let url = d.endpoint.clone().ok_or("no endpoint")?;
    let mut headers = vec![("content-type".to_string(), "application/json".to_string())];
    headers.extend(d.headers.iter().map(|(k, v)| (k.clone(), v.clone())));
    let up = UpstreamRequest {
        method: "POST",
        url,
        headers,
        body: bytes.to_vec(),
    };
    let out = upstream::Outgoing::from(up);
    let (resp, _inflight) = upstream::send(&out, "trace export", EXPORT_TIMEOUT_MS)
        .await
        .map_err(|e| e.public_message())?;
    match resp.status_code() {
        200..=299 => Ok(()),
        s => Err(format!("status {s}")),
    }
}
