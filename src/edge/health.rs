//! The `Health` Durable Objects, one per provider (named `provider:<slug>`, see
//! [`shard_of`]): each records the attempts at its provider's endpoints and serves their
//! summaries. An isolate keeps each shard's summaries for `HEALTH_CACHE_SECS` and
//! refreshes them in the background, reading only the shards of the endpoints a request
//! could use, so routing never waits on them; reports go per shard with `wait_until`.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;

use futures_util::future::select;
use worker::{
    durable_object, DurableObject, Env, Method, Request, Response, Result, SqlStorage, State,
};

use super::background::Background;
use super::config;
use super::objects::{self, Shape};
use crate::error::Error;
use crate::routing::health::{apply, shard_of, Batch, EndpointStats, Outcome, Report, Summary};

#[derive(serde::Deserialize)]
struct Row {
    key: String,
    stats: String,
}

/// A shard writes changed statistics to its storage at most this often: what it holds
/// in memory serves the reads, and an eviction loses at most this much of it.
const SAVE_MS: f64 = 5000.0;

#[durable_object]
pub struct Health {
    sql: SqlStorage,
    stats: RefCell<HashMap<String, EndpointStats>>,
    /// Keys changed since the last save, and when that was.
    dirty: RefCell<Vec<String>>,
    saved: Cell<f64>,
}

impl DurableObject for Health {
    fn new(state: State, _env: Env) -> Self {
        let sql = state.storage().sql();
        let _ = sql.exec(
            "CREATE TABLE IF NOT EXISTS stats (key TEXT PRIMARY KEY, stats TEXT NOT NULL)",
            None,
        );
        let rows: Vec<Row> = sql
            .exec("SELECT key, stats FROM stats", None)
            .and_then(|c| c.to_array())
            .unwrap_or_default();
        let stats = rows
            .into_iter()
            .filter_map(|r| serde_json::from_str(&r.stats).ok().map(|s| (r.key, s)))
            .collect();
        Health {
            sql,
            stats: RefCell::new(stats),
            dirty: RefCell::default(),
            saved: Cell::new(0.0),
        }
    }

    async fn fetch(&self, mut req: Request) -> Result<Response> {
        if req.method() == Method::Post {
            let reports = match serde_json::from_slice::<Vec<Report>>(&req.bytes().await?) {
                Ok(r) => r,
                Err(e) => {
                    let bad = Error::Internal(format!("health: bad reports: {e}"));
                    return objects::answer::<serde_json::Value>(Err(bad), Shape::Bare);
                }
            };
            let changed = apply(&mut self.stats.borrow_mut(), reports);
            let mut dirty = self.dirty.borrow_mut();
            for key in changed {
                if !dirty.contains(&key) {
                    dirty.push(key);
                }
            }
            drop(dirty);
            let now = config::now_ms();
            if now - self.saved.get() >= SAVE_MS {
                self.saved.set(now);
                let keys = std::mem::take(&mut *self.dirty.borrow_mut());
                let all = self.stats.borrow();
                for key in keys {
                    let Some(json) = all.get(&key).and_then(|s| serde_json::to_string(s).ok())
                    else {
                        continue;
                    };
                    let saved = self.sql.exec(
                        "INSERT INTO stats (key, stats) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET stats = excluded.stats",
                        vec![key.into(), json.into()],
                    );
                    if let Err(e) = saved {
                        let failed = Error::Internal(format!("health: {e}"));
                        return objects::answer::<serde_json::Value>(Err(failed), Shape::Bare);
                    }
                }
            }
            return objects::answer(Ok(serde_json::Value::Null), Shape::Bare);
        }
        let now = config::now_ms() as u64;
        let snapshot: HashMap<String, Summary> = self
            .stats
            .borrow()
            .iter()
            .map(|(k, s)| (k.clone(), s.summary(now)))
            .collect();
        objects::answer(Ok(snapshot), Shape::Bare)
    }
}

/// An isolate sends each shard its reports at most this often (`HEALTH_FLUSH_MS`).
const DEFAULT_FLUSH_MS: u64 = 1000;

/// What an isolate holds of one shard: its summaries as last read, when (`f64::MIN`:
/// never) and whether a read is under way; the outcomes not yet sent, when its last
/// batch went, and whether a timer will send them.
struct Shard {
    read_at: f64,
    summaries: HashMap<String, Summary>,
    reading: bool,
    batch: Batch,
    last_flush: f64,
    scheduled: bool,
}

impl Default for Shard {
    fn default() -> Self {
        Shard {
            read_at: f64::MIN,
            summaries: HashMap::new(),
            reading: false,
            batch: Batch::default(),
            last_flush: 0.0,
            scheduled: false,
        }
    }
}

/// The first request that needs a shard waits at most this long for it, then routes
/// without it (prices only) while the read finishes in the background.
const FIRST_READ_MS: u64 = 100;

thread_local! {
    static SHARDS: RefCell<HashMap<String, Shard>> = RefCell::default();
}

/// Runs `f` on this isolate's state of `shard`.
fn with_shard<T>(shard: &str, f: impl FnOnce(&mut Shard) -> T) -> T {
    SHARDS.with(|s| f(s.borrow_mut().entry(shard.to_string()).or_default()))
}

/// The largest answer read from a shard (a provider's summaries).
const REPLY_MAX: usize = 8 * 1024 * 1024;

/// Sends `body` (reports; none: a read) to `shard`'s object.
async fn call<T: serde::de::DeserializeOwned>(
    env: &Env,
    shard: &str,
    body: Option<String>,
) -> std::result::Result<T, Error> {
    let stub = env
        .durable_object("HEALTH")
        .and_then(|ns| ns.get_by_name(&format!("provider:{shard}")))
        .map_err(|e| Error::Internal(format!("health: {e}")))?;
    let url = "https://health/";
    objects::call(&stub, "health", url, body, REPLY_MAX, Shape::Bare).await
}

/// Reads a shard; a shard that cannot be read keeps what this isolate had (or nothing)
/// until the next try, a cache time later.
async fn refresh(env: Env, shard: String) {
    let read = call::<HashMap<String, Summary>>(&env, &shard, None)
        .await
        .ok();
    with_shard(&shard, |c| {
        c.read_at = config::now_ms();
        c.reading = false;
        if let Some(map) = read {
            c.summaries = map;
        }
    });
}

/// The summaries this isolate has of the endpoints `keys` (health keys); the shards
/// they are in are read concurrently when stale, in the background. A shard this
/// isolate never read holds the request up at most [`FIRST_READ_MS`]; with every shard
/// fresh, no object is called. An endpoint without figures is simply absent.
pub async fn snapshot(env: &Env, ctx: &Background, keys: &[String]) -> HashMap<String, Summary> {
    let ttl = config::u64(env, "HEALTH_CACHE_SECS", 10) as f64 * 1000.0;
    let now = config::now_ms();
    let mut shards: Vec<&str> = Vec::new();
    let mut first = Vec::new();
    for shard in keys.iter().map(|k| shard_of(k)) {
        if shards.contains(&shard) {
            continue;
        }
        shards.push(shard);
        let never = with_shard(shard, |c| {
            let due = c.read_at == f64::MIN || now - c.read_at >= ttl;
            if !due || c.reading {
                return None;
            }
            c.reading = true;
            Some(c.read_at == f64::MIN)
        });
        let Some(never) = never else {
            continue;
        };
        let read = refresh(env.clone(), shard.to_string());
        if never {
            let (tx, rx) = futures_channel::oneshot::channel::<()>();
            ctx.wait_until(async move {
                read.await;
                let _ = tx.send(());
            });
            first.push(rx);
        } else {
            ctx.wait_until(read);
        }
    }
    if !first.is_empty() {
        // The reads run side by side (in `wait_until`); this waits for the slowest.
        let all = std::pin::pin!(async {
            for rx in first {
                let _ = rx.await;
            }
        });
        let wait = std::pin::pin!(config::sleep(FIRST_READ_MS));
        let _ = select(all, wait).await;
    }
    SHARDS.with(|s| {
        let s = s.borrow();
        keys.iter()
            .filter_map(|k| {
                let sum = s.get(shard_of(k))?.summaries.get(k)?;
                Some((k.clone(), *sum))
            })
            .collect()
    })
}

/// Records an attempt's outcome at endpoint `key` for the account tagged `account`
/// ([`crate::routing::health::account_tag`]). Outcomes are batched per isolate and
/// shard, and each shard's batch is sent off the hot path at most once per
/// `HEALTH_FLUSH_MS` (default 1 s), by a timer that the request which started it keeps
/// alive (`wait_until`): a shard takes at most one write per isolate per flush, however
/// busy the isolate. A batch holds at most 64 reports, 8 of one account; the rest of a
/// busy window is left out, as is a batch lost with its isolate: that only thins the
/// statistics.
pub fn report(env: &Env, ctx: &Background, key: String, account: u32, outcome: Outcome) {
    let now = config::now_ms();
    let flush_ms = config::u64(env, "HEALTH_FLUSH_MS", DEFAULT_FLUSH_MS) as f64;
    let shard = shard_of(&key).to_string();
    let (batch, schedule) = with_shard(&shard, |p| {
        p.batch.push(Report {
            key,
            account,
            outcome,
        });
        if p.scheduled {
            (None, false)
        } else if now - p.last_flush >= flush_ms {
            p.last_flush = now;
            (Some(std::mem::take(&mut p.batch)), false)
        } else {
            p.scheduled = true;
            (None, true)
        }
    });
    let env = env.clone();
    if let Some(batch) = batch {
        ctx.wait_until(send(env, shard, batch));
    } else if schedule {
        ctx.wait_until(async move {
            config::sleep(flush_ms as u64).await;
            let batch = with_shard(&shard, |p| {
                p.scheduled = false;
                p.last_flush = config::now_ms();
                std::mem::take(&mut p.batch)
            });
            send(env, shard, batch).await;
        });
    }
}

async fn send(env: Env, shard: String, batch: Batch) {
    if batch.reports.is_empty() {
        return;
    }
    let body = serde_json::to_string(&batch.reports).ok();
    let _ = call::<serde::de::IgnoredAny>(&env, &shard, body).await;
}
