//! Trace export at the edge (README "Trace export"): the account's destinations
//! (`/observability/destinations`, provisioning key; kept in the `TRACES` R2 bucket),
//! and each settled generation's span sent to those that take its key and sample it,
//! as the request's background work after its settlement (never before its reply),
//! batched per destination in the isolate (`accounts::trace_batch`), retried. The spans themselves are `accounts::traces`'.

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
use crate::accounts::trace_batch::{self, Added, Outbox, Queued, BATCH_MS};
use crate::accounts::traces::{self, Span, SpanFacts};
use crate::api::route::{Method, Route};
use crate::error::Error;
use crate::providers::UpstreamRequest;

const BINDING: &str = "TRACES";
/// The queue spans go through when it is bound (its consumer is this worker).
const QUEUE: &str = "TRACE_QUEUE";
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

/// Spans waiting in this isolate, by account and destination.
type Batches = Outbox<(String, String), (Destination, String, Span)>;

thread_local! {
    static OUTBOX: RefCell<Batches> = RefCell::new(Outbox::default());
}

/// Queues a settled generation's span for every destination of the account that
/// takes its key and samples it, in the isolate's batch of that destination: the span
/// that opens a batch waits `BATCH_MS` for others (in its request's background work)
/// and sends them all in one export; one that fills a batch sends it at once. Nothing
/// here fails the request: a batch that does not land after its tries is logged
/// (without its headers) and dropped.
pub async fn export(env: &Env, account: &str, key: &str, g: &Generation, facts: &SpanFacts) {
    let Ok(bucket) = env.bucket(BINDING) else {
        return;
    };
    let all = cached(&bucket, account).await;
    let session = facts.session_id.as_deref();
    let queue = env.queue(QUEUE).ok();
    let mut opened = Vec::new();
    for d in all.iter().filter(|d| d.takes(key)) {
        if !traces::sampled(d.sampling_ppm, session, &g.id) {
            continue;
        }
        let span = traces::span(g, facts, d.privacy_mode);
        if let Some(q) = &queue {
            enqueue(q, account, d, &g.id, &span).await;
            continue;
        }
        let at = (account.to_string(), d.id.clone());
        match OUTBOX.with(|o| o.borrow_mut().add(&at, (d.clone(), g.id.clone(), span))) {
            Added::Opened => opened.push(at),
            Added::Full(batch) => deliver(&bucket, account, batch).await,
            Added::Joined => {}
            Added::Dropped => worker::console_warn!("trace export to {}: too many waiting", d.id),
        }
    }
    if opened.is_empty() {
        return;
    }
    config::sleep(BATCH_MS).await;
    for at in opened {
        let batch = OUTBOX.with(|o| o.borrow_mut().take(&at));
        deliver(&bucket, account, batch).await;
    }
}

/// Puts a span on the trace queue (its consumer, [`consume`], sends it); one that the
/// queue refuses is logged and dropped.
async fn enqueue(q: &worker::Queue, account: &str, d: &Destination, gen_id: &str, span: &Span) {
    let Ok(span) = serde_json::to_string(span) else {
        return;
    };
    let message = Queued {
        account: account.to_string(),
        destination: d.id.clone(),
        generation: gen_id.to_string(),
        span,
    };
    if let Err(e) = q.send(message).await {
        worker::console_warn!("trace export to {}: not queued: {e}", d.id);
    }
}

/// The trace queue's consumer: a delivered batch grouped by destination, one export
/// each ([`deliver_once`]); a group's messages are acknowledged when it lands and
/// retried (by the queue, with its `max_retries` and dead-letter queue) when it does
/// not. A message for a destination since deleted, or that cannot be read, is
/// acknowledged: no retry could send it.
pub async fn consume(batch: worker::MessageBatch<Queued>, env: &Env) {
    use worker::MessageExt;
    let Ok(messages) = batch.messages() else {
        worker::console_warn!("trace queue: an unreadable batch, dropped");
        batch.ack_all();
        return;
    };
    let Ok(bucket) = env.bucket(BINDING) else {
        batch.retry_all();
        return;
    };
    let bodies: Vec<Queued> = messages.iter().map(|m| m.body().clone()).collect();
    for group in trace_batch::groups(&bodies) {
        let picked: Vec<&worker::Message<Queued>> =
            group.iter().filter_map(|&i| messages.get(i)).collect();
        let Some(first) = picked.first().map(|m| m.body()) else {
            continue;
        };
        let all = cached(&bucket, &first.account).await;
        let Some(d) = all.iter().find(|d| d.id == first.destination) else {
            picked.iter().for_each(|m| m.ack());
            continue;
        };
        let spans: Vec<(String, String)> = picked
            .iter()
            .map(|m| (m.body().generation.clone(), m.body().span.clone()))
            .collect();
        match deliver_once(&bucket, &first.account, d, spans).await {
            Ok(()) => picked.iter().for_each(|m| m.ack()),
            Err(e) => {
                worker::console_warn!(
                    "trace export to {} failed (retried by the queue): {e}",
                    d.id
                );
                picked.iter().for_each(|m| m.retry());
            }
        }
    }
}

/// Sends queued spans (generation ID, span JSON) to `d` once: one OTLP request, or an
/// object per span in the bucket.
async fn deliver_once(
    bucket: &Bucket,
    account: &str,
    d: &Destination,
    spans: Vec<(String, String)>,
) -> Result<(), String> {
    let raw = |s: String| serde_json::value::RawValue::from_string(s).map_err(|e| e.to_string());
    if d.kind == Kind::Bucket {
        for (gen_id, span) in spans {
            let body = serde_json::to_vec(&traces::export_body(vec![raw(span)?]))
                .map_err(|e| e.to_string())?;
            send(bucket, account, d, &gen_id, &body).await?;
        }
        return Ok(());
    }
    let first = spans.first().map(|(id, _)| id.clone()).unwrap_or_default();
    let all = spans
        .into_iter()
        .map(|(_, s)| raw(s))
        .collect::<Result<Vec<_>, String>>()?;
    let body = serde_json::to_vec(&traces::export_body(all)).map_err(|e| e.to_string())?;
    send(bucket, account, d, &first, &body).await
}

/// Sends one destination's batch (one OTLP request; a bucket gets an object per
/// span), retried.
async fn deliver(bucket: &Bucket, account: &str, batch: Vec<(Destination, String, Span)>) {
    let Some(d) = batch.first().map(|(d, _, _)| d.clone()) else {
        return;
    };
    let bodies: Vec<(String, Vec<u8>)> = match d.kind {
        Kind::Bucket => batch
            .into_iter()
            .filter_map(|(_, id, s)| {
                Some((id, serde_json::to_vec(&traces::export_body(vec![s])).ok()?))
            })
            .collect(),
        _ => {
            let id = batch
                .first()
                .map(|(_, id, _)| id.clone())
                .unwrap_or_default();
            let spans = batch.into_iter().map(|(_, _, s)| s).collect();
            serde_json::to_vec(&traces::export_body(spans))
                .map(|b| vec![(id, b)])
                .unwrap_or_default()
        }
    };
    for (gen_id, bytes) in bodies {
        let mut pause = RETRY_MS;
        for attempt in 1..=TRIES {
            match send(bucket, account, &d, &gen_id, &bytes).await {
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
