//! The response cache's glue (README "Response cache"): entries kept in the Workers
//! Cache API of the location (and in the `RESPONSE_CACHE` KV namespace, where it is
//! bound, for every location), a hit answered free with a record of its own, a miss's
//! reply stored once it is whole, and identical requests in flight together in one
//! isolate waiting for the first (a single-flight map, bounded, cleaned however the
//! first ends). What is keyed and how a hit is replayed is `crate::api::cache_key`.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use worker::{Env, Response};

use super::account::SettleItem;
use super::background::Background;
use super::request::ClientRequest;
use super::{account_api, admission, config, http, upstream};
use crate::accounts::records::Generation;
use crate::api::cache_key::{self, Directive, Entry, Stored, StoredEmbeddings};
use crate::api::embeddings::{EmbeddingsReply, EmbeddingsUsage};
use crate::api::{surface, ChatCompletion, GenerationMeta};
use crate::error::Error;

/// The KV namespace that keeps entries for every location, when bound.
const KV_BINDING: &str = "RESPONSE_CACHE";
/// Where an entry is filed in the Cache API (a URL of its own, never fetched).
const CACHE_URL: &str = "https://response-cache.modelmux.internal/v1/";
/// KV keeps nothing for less than a minute: a shorter TTL is the entry's own.
const KV_MIN_TTL_SECS: u64 = 60;
/// Keys in flight at once that later requests may wait for, and waiters on each.
const MAX_FLIGHTS: usize = 256;
const MAX_WAITERS: usize = 64;

/// The request's cache headers ([`cache_key::directive`]).
pub fn directive(req: &ClientRequest) -> Result<Option<Directive>, Error> {
    let h = |name: &str| req.headers().get(name).ok().flatten();
    cache_key::directive(
        h("X-OpenRouter-Cache").as_deref(),
        h("X-OpenRouter-Cache-TTL").as_deref(),
        h("X-OpenRouter-Cache-Clear").as_deref(),
    )
}

/// What a hit's reply is written for: a generating surface's request, or embeddings.
pub enum Replay<'a> {
    Generate(&'a surface::Incoming),
    Embeddings,
}

/// A request the cache may answer: its caller, its record as far as it is known, and
/// what its reply is written for.
pub struct Asking<'a> {
    pub env: &'a Env,
    pub ctx: &'a Rc<Background>,
    pub account: &'a str,
    pub caller: &'a str,
    pub key: String,
    pub directive: Directive,
    pub base: Generation,
    pub replay: Replay<'a>,
    /// The request's trace span facts, when the deployment exports traces: a hit
    /// has a span too (`modelmux.cache_hit`).
    pub trace: Option<Rc<crate::accounts::traces::SpanFacts>>,
}

/// The cache's answer: a hit's reply, or what stores the miss's reply.
pub enum Begin {
    Hit(Response),
    Miss(Capture),
}

/// Looks the request up (unless it clears its entry); waits for an identical request
/// in flight in this isolate; else the request goes on as a miss whose reply is kept.
pub async fn begin(req: &mut ClientRequest, a: Asking<'_>) -> Result<Begin, Error> {
    let guard = if a.directive.clear {
        STORING.with(|s| s.borrow_mut().remove(&a.key));
        forget(a.env, &a.key).await;
        None
    } else {
        if let Some(e) = load(a.env, &a.key).await {
            return hit(req, &a, &e).await.map(Begin::Hit);
        }
        match join(&a.key) {
            Flight::Lead(g) => Some(g),
            Flight::Alone => None,
            Flight::Wait(rx) => {
                let wait = config::settings(a.env).upstream_reply_timeout_ms;
                if let Some(e) = waited(rx, wait).await {
                    return hit(req, &a, &e).await.map(Begin::Hit);
                }
                None
            }
        }
    };
    Ok(Begin::Miss(Capture(Rc::new(Inner {
        env: a.env.clone(),
        ctx: a.ctx.clone(),
        key: a.key,
        ttl_secs: a.directive.ttl_secs,
        source_id: a.base.id,
        flight: RefCell::new(guard),
    }))))
}

/// A hit: the key checked live (a disabled key gets nothing), the stored reply with a
/// new identity and nothing billed, its record settled (free, naming its source), and
/// the cache's headers. No admission: it counts against no limit.
async fn hit(req: &mut ClientRequest, a: &Asking<'_>, e: &Entry) -> Result<Response, Error> {
    account_api::live_key(req, a.env, a.account, a.caller).await?;
    let now = config::now_ms() as u64;
    let base = Generation {
        latency_ms: Some(0),
        generation_ms: Some(0),
        usage_source: Some("cache".into()),
        response_cache_source_id: Some(e.source_id.clone()),
        ..a.base.clone()
    };
    let (resp, record) = match (&e.reply, &a.replay) {
        (Stored::Chat(c), Replay::Generate(incoming)) => chat_hit(c, incoming, base, now)?,
        (Stored::Embeddings(s), Replay::Embeddings) => embeddings_hit(s, base)?,
        _ => return Err(Error::Internal("a cache entry of another kind".into())),
    };
    let span = a
        .trace
        .as_deref()
        .map(|f| crate::accounts::traces::SpanFacts {
            cache_hit: Some(true),
            fallback_attempts: Some(0),
            output_text: match &e.reply {
                Stored::Chat(c) => crate::accounts::traces::completion_text(c),
                Stored::Embeddings(_) => None,
            },
            ..f.clone()
        });
    let traced = span.map(|facts| (facts, record.clone()));
    let item = SettleItem {
        caller: a.caller.to_string(),
        gen_id: record.id.clone(),
        generation: record,
        lease: None,
        session: None,
    };
    let (env, account, caller) = (a.env.clone(), a.account.to_string(), a.caller.to_string());
    a.ctx.wait_until(async move {
        admission::settle(env.clone(), account.clone(), item, None).await;
        // After the settlement, as every span: never before the reply.
        if let Some((facts, g)) = traced {
            super::traces::export(&env, &account, &caller, &g, &facts).await;
        }
    });
    let h = resp.headers();
    http::set(h, "X-Generation-Id", &a.base.id);
    http::set(h, "X-OpenRouter-Cache-Status", "HIT");
    http::set(h, "X-OpenRouter-Cache-Age", &e.age_secs(now).to_string());
    http::set(h, "X-OpenRouter-Cache-TTL", &e.ttl_left(now).to_string());
    http::set(h, "X-OpenRouter-Cache-Source-Id", &e.source_id);
    Ok(resp)
}

/// A stored chat reply for its surface, whole or replayed as its stream.
fn chat_hit(
    c: &ChatCompletion,
    incoming: &surface::Incoming,
    base: Generation,
    now: u64,
) -> Result<(Response, Generation), Error> {
    let meta = GenerationMeta {
        id: base.id.clone(),
        created: now / 1000,
        model: c.model.clone(),
        provider: c.provider.clone().unwrap_or_default(),
    };
    let first = c.choices.first();
    let record = Generation {
        model: c.model.clone(),
        provider: c.provider.clone(),
        finish_reason: first.and_then(|ch| ch.finish_reason.clone()),
        native_finish_reason: first.and_then(|ch| ch.native_finish_reason.clone()),
        ..base
    };
    if !incoming.chat.is_stream() {
        let reply = incoming.reply(cache_key::hit_completion(c, &meta));
        return Ok((http::reply(&reply)?, record));
    }
    let mut encoder = incoming.encoder(0, false);
    let mut body = Vec::new();
    for chunk in cache_key::replay_chunks(c, &meta) {
        body.extend(encoder.chunk(&chunk));
    }
    body.extend(encoder.close(&meta.chunk(Vec::new()), &cache_key::free_usage()));
    let resp = Response::from_bytes(body).map_err(http::internal)?;
    Ok((resp.with_headers(upstream::sse_headers()), record))
}

/// A stored embeddings reply, renamed and free.
fn embeddings_hit(s: &StoredEmbeddings, base: Generation) -> Result<(Response, Generation), Error> {
    #[derive(serde::Serialize)]
    struct Reply<'a> {
        id: &'a str,
        object: &'static str,
        data: &'a serde_json::value::RawValue,
        model: &'a str,
        provider: &'a str,
        usage: EmbeddingsUsage,
    }
    let usage = EmbeddingsUsage {
        cost: Some(crate::money::Usd(0)),
        ..EmbeddingsUsage::default()
    };
    let reply = Reply {
        id: &base.id,
        object: "list",
        data: &s.data,
        model: &s.model,
        provider: &s.provider,
        usage,
    };
    let resp = http::json(&reply, 200)?;
    let record = Generation {
        model: s.model.clone(),
        provider: Some(s.provider.clone()),
        finish_reason: Some("stop".into()),
        ..base
    };
    Ok((resp, record))
}

/// What keeps a miss's reply: shared by the attempts that may serve it, and (for a
/// stream) by its end; the requests waiting for it learn of it when it is kept, or
/// that there is none when the last holder goes without keeping one.
#[derive(Clone)]
pub struct Capture(Rc<Inner>);

struct Inner {
    env: Env,
    ctx: Rc<Background>,
    key: String,
    ttl_secs: u32,
    source_id: String,
    flight: RefCell<Option<FlightGuard>>,
}

/// A miss's headers, when the request asked the cache: `X-OpenRouter-Cache-Status:
/// MISS` and its TTL.
pub fn stamp_miss(resp: &Response, capture: Option<&Capture>) {
    let Some(c) = capture else {
        return;
    };
    let h = resp.headers();
    http::set(h, "X-OpenRouter-Cache-Status", "MISS");
    http::set(h, "X-OpenRouter-Cache-TTL", &c.0.ttl_secs.to_string());
}

impl Capture {
    /// Keeps a chat reply, if it ended well (every choice finished, none in error).
    pub fn chat(&self, c: &ChatCompletion) {
        if cache_key::storable(c) {
            self.keep(Stored::Chat(Box::new(c.clone())));
        }
    }

    /// Keeps an embeddings reply.
    pub fn embeddings(&self, r: &EmbeddingsReply) {
        let stored = serde_json::to_vec(r)
            .ok()
            .and_then(|b| serde_json::from_slice::<StoredEmbeddings>(&b).ok());
        if let Some(s) = stored {
            self.keep(Stored::Embeddings(s));
        }
    }

    fn keep(&self, reply: Stored) {
        let i = &self.0;
        let entry = Entry {
            source_id: i.source_id.clone(),
            stored_ms: config::now_ms() as u64,
            ttl_secs: i.ttl_secs,
            reply,
        };
        // Too large to keep: served, not stored.
        let Some(bytes) = entry.to_bytes() else {
            return;
        };
        let entry = Rc::new(entry);
        STORING.with(|s| {
            let mut s = s.borrow_mut();
            if s.len() < MAX_FLIGHTS {
                s.insert(i.key.clone(), entry.clone());
            }
        });
        if let Some(g) = i.flight.borrow_mut().take() {
            g.finish(Some(entry));
        }
        i.ctx
            .wait_until(store(i.env.clone(), i.key.clone(), bytes, i.ttl_secs));
    }
}

/// The entry of `key`, if one is stored and fresh: the location's, else the KV
/// namespace's (then kept in the location too).
async fn load(env: &Env, key: &str) -> Option<Rc<Entry>> {
    let now = config::now_ms() as u64;
    let storing = STORING.with(|s| s.borrow().get(key).cloned());
    if let Some(e) = storing.filter(|e| e.fresh(now)) {
        return Some(e);
    }
    let url = format!("{CACHE_URL}{key}");
    let cache = worker::Cache::default();
    if let Ok(Some(mut resp)) = cache.get(url.as_str(), false).await {
        let entry = resp.bytes().await.ok().and_then(|b| Entry::from_bytes(&b));
        if let Some(e) = entry.filter(|e| e.fresh(now)) {
            return Some(Rc::new(e));
        }
    }
    let kv = env.kv(KV_BINDING).ok()?;
    let bytes = kv.get(key).bytes().await.ok().flatten()?;
    let e = Entry::from_bytes(&bytes).filter(|e| e.fresh(now))?;
    let left = e.ttl_left(now);
    if let Ok(resp) = cache_response(bytes, left) {
        let _ = cache.put(url.as_str(), resp).await;
    }
    Some(Rc::new(e))
}

/// Stores an entry for `ttl_secs` in the location and, where bound, in KV.
async fn store(env: Env, key: String, bytes: Vec<u8>, ttl_secs: u32) {
    if let Ok(kv) = env.kv(KV_BINDING) {
        let ttl = u64::from(ttl_secs).max(KV_MIN_TTL_SECS);
        if let Ok(put) = kv.put_bytes(&key, &bytes) {
            let _ = put.expiration_ttl(ttl).execute().await;
        }
    }
    let url = format!("{CACHE_URL}{key}");
    if let Ok(resp) = cache_response(bytes, u64::from(ttl_secs)) {
        let _ = worker::Cache::default().put(url.as_str(), resp).await;
    }
    STORING.with(|s| s.borrow_mut().remove(&key));
}

/// Removes `key`'s entry (`X-OpenRouter-Cache-Clear`).
async fn forget(env: &Env, key: &str) {
    let url = format!("{CACHE_URL}{key}");
    let _ = worker::Cache::default().delete(url.as_str(), false).await;
    if let Ok(kv) = env.kv(KV_BINDING) {
        let _ = kv.delete(key).await;
    }
}

fn cache_response(bytes: Vec<u8>, ttl_secs: u64) -> Result<Response, Error> {
    let resp = Response::from_bytes(bytes).map_err(http::internal)?;
    let h = resp.headers();
    http::set(h, "Content-Type", "application/json");
    http::set(h, "Cache-Control", &format!("max-age={ttl_secs}"));
    Ok(resp)
}

/// Where a request stands among identical ones in flight in this isolate.
enum Flight {
    /// The first: the others wait for it.
    Lead(FlightGuard),
    /// Another is in flight: what it keeps comes here.
    Wait(Outcome),
    /// The map is full, or the key has waiters enough: on its own.
    Alone,
}

/// What the first of a flight kept: unset while it is in flight, then its entry (or
/// `None`, it kept none). Read by each waiter on its own timer: a promise of one
/// request settled from another's handler would run the waiter's I/O in the other's
/// context, which the runtime refuses.
type Outcome = Rc<RefCell<Option<Option<Rc<Entry>>>>>;

/// How often a waiter looks at its flight's outcome (ms).
const POLL_MS: u64 = 20;

thread_local! {
    static FLIGHTS: RefCell<HashMap<String, Outcome>> = RefCell::new(HashMap::new());
    /// Entries kept and still on their way into storage: found here meanwhile.
    static STORING: RefCell<HashMap<String, Rc<Entry>>> = RefCell::new(HashMap::new());
}

fn join(key: &str) -> Flight {
    FLIGHTS.with(|f| {
        let mut f = f.borrow_mut();
        if let Some(outcome) = f.get(key) {
            // The map and the first hold it too.
            return match Rc::strong_count(outcome) < MAX_WAITERS.saturating_add(2) {
                true => Flight::Wait(outcome.clone()),
                false => Flight::Alone,
            };
        }
        if f.len() >= MAX_FLIGHTS {
            return Flight::Alone;
        }
        let outcome = Outcome::default();
        f.insert(key.to_string(), outcome.clone());
        Flight::Lead(FlightGuard {
            key: key.to_string(),
            outcome,
        })
    })
}

/// What the first request kept, or `None` (it kept nothing, or the wait ran out).
async fn waited(outcome: Outcome, ms: u64) -> Option<Rc<Entry>> {
    let mut waited = 0u64;
    loop {
        let seen = outcome.borrow().clone();
        if let Some(kept) = seen {
            return kept;
        }
        if waited >= ms {
            return None;
        }
        config::sleep(POLL_MS).await;
        waited = waited.saturating_add(POLL_MS);
    }
}

/// The first request's place in the map: given up when it keeps its reply, or when it
/// is dropped without one (the waiters then go on their own).
struct FlightGuard {
    key: String,
    outcome: Outcome,
}

impl FlightGuard {
    fn finish(&self, entry: Option<Rc<Entry>>) {
        FLIGHTS.with(|f| {
            let mut f = f.borrow_mut();
            // Only its own flight: a later one of the same key may have begun.
            if f.get(&self.key)
                .is_some_and(|o| Rc::ptr_eq(o, &self.outcome))
            {
                f.remove(&self.key);
            }
        });
        let mut outcome = self.outcome.borrow_mut();
        if outcome.is_none() {
            *outcome = Some(entry);
        }
    }
}

impl Drop for FlightGuard {
    fn drop(&mut self) {
        self.finish(None);
    }
}
