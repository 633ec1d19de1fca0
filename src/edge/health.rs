//! The `Health` Durable Object (one, named "global") records every upstream attempt and
//! serves summaries. Isolates keep a snapshot for `HEALTH_CACHE_SECS` and refresh it in
//! the background, so routing never waits on it; reports are sent with `wait_until`.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use futures_util::future::select;
use serde::{Deserialize, Serialize};
use worker::{
    durable_object, Context, DurableObject, Env, Method, Request, RequestInit, Response, Result,
    SqlStorage, State,
};

use super::config;
use crate::routing::health::{EndpointStats, Outcome, Summary};

const OBJECT: &str = "global";

#[derive(Serialize, Deserialize)]
struct Report {
    key: String,
    outcome: Outcome,
}

#[derive(Deserialize)]
struct Row {
    key: String,
    stats: String,
}

#[durable_object]
pub struct Health {
    sql: SqlStorage,
    stats: RefCell<HashMap<String, EndpointStats>>,
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
        }
    }

    async fn fetch(&self, mut req: Request) -> Result<Response> {
        if req.method() == Method::Post {
            let text = req.text().await?;
            let reports: Vec<Report> =
                serde_json::from_str(&text).map_err(|e| worker::Error::RustError(e.to_string()))?;
            let mut changed: HashMap<String, String> = HashMap::new();
            {
                let mut all = self.stats.borrow_mut();
                for r in reports.into_iter().take(MAX_BATCH) {
                    let s = all.entry(r.key.clone()).or_default();
                    s.record(&r.outcome);
                    if let Ok(json) = serde_json::to_string(s) {
                        changed.insert(r.key, json);
                    }
                }
            }
            for (key, json) in changed {
                self.sql.exec(
                    "INSERT INTO stats (key, stats) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET stats = excluded.stats",
                    vec![key.into(), json.into()],
                )?;
            }
            return Response::empty();
        }
        let now = config::now_ms() as u64;
        let snapshot: HashMap<String, Summary> = self
            .stats
            .borrow()
            .iter()
            .map(|(k, s)| (k.clone(), s.summary(now)))
            .collect();
        Response::from_json(&snapshot)
    }
}

/// Reports one isolate sends at once, at most; the object takes no more per call.
const MAX_BATCH: usize = 64;
/// An isolate sends its reports at least this often (`HEALTH_FLUSH_MS`).
const DEFAULT_FLUSH_MS: u64 = 1000;

/// Outcomes not yet sent, when the last batch went, and whether a timer will send them.
struct Pending {
    reports: Vec<Report>,
    last_flush: f64,
    scheduled: bool,
}
/// The first request of an isolate waits at most this long for a snapshot, then
/// routes without one (prices only) while the read finishes in the background.
const FIRST_READ_MS: u64 = 100;

thread_local! {
    static SNAPSHOT: RefCell<(f64, Rc<HashMap<String, Summary>>)> = RefCell::new((f64::MIN, Rc::default()));
    static REFRESHING: RefCell<bool> = const { RefCell::new(false) };
    static PENDING: RefCell<Pending> = const { RefCell::new(Pending { reports: Vec::new(), last_flush: 0.0, scheduled: false }) };
}

async fn call(env: &Env, method: Method, body: Option<String>) -> Result<Response> {
    let stub = env.durable_object("HEALTH")?.get_by_name(OBJECT)?;
    let mut init = RequestInit::new();
    init.with_method(method).with_body(body.map(Into::into));
    stub.fetch_with_request(Request::new_with_init("https://health/", &init)?)
        .await
}

async fn refresh(env: Env) {
    if let Ok(mut resp) = call(&env, Method::Get, None).await {
        if let Ok(map) = resp.json::<HashMap<String, Summary>>().await {
            SNAPSHOT.with(|s| *s.borrow_mut() = (config::now_ms(), Rc::new(map)));
        }
    }
    REFRESHING.with(|r| *r.borrow_mut() = false);
}

/// The latest health snapshot this isolate has; a stale one is refreshed in the
/// background. The very first request of an isolate waits for it at most
/// [`FIRST_READ_MS`], so a slow or failing Health object never holds a request up.
pub async fn snapshot(env: &Env, ctx: &Context) -> Rc<HashMap<String, Summary>> {
    let ttl = config::u64(env, "HEALTH_CACHE_SECS", 10) as f64 * 1000.0;
    let (at, snap) = SNAPSHOT.with(|s| s.borrow().clone());
    let now = config::now_ms();
    let stale = at == f64::MIN || now - at >= ttl;
    if stale && !REFRESHING.with(|r| r.replace(true)) {
        if at == f64::MIN {
            let (tx, rx) = futures_channel::oneshot::channel::<()>();
            let env = env.clone();
            ctx.wait_until(async move {
                refresh(env).await;
                let _ = tx.send(());
            });
            let wait = std::pin::pin!(config::sleep(FIRST_READ_MS));
            let _ = select(rx, wait).await;
            return SNAPSHOT.with(|s| s.borrow().1.clone());
        }
        ctx.wait_until(refresh(env.clone()));
    }
    snap
}

/// Records an attempt's outcome. Outcomes are batched per isolate and sent, off the
/// hot path, when [`MAX_BATCH`] have gathered or `HEALTH_FLUSH_MS` (default 1 s) has
/// passed since the last batch; a partial batch is sent by a timer that the request
/// which started it keeps alive (`wait_until`). One Health write per batch instead of
/// one per request; a batch lost with its isolate only thins the statistics.
pub fn report(env: &Env, ctx: &Context, key: String, outcome: Outcome) {
    let now = config::now_ms();
    let flush_ms = config::u64(env, "HEALTH_FLUSH_MS", DEFAULT_FLUSH_MS) as f64;
    let (batch, schedule) = PENDING.with(|p| {
        let mut p = p.borrow_mut();
        p.reports.push(Report { key, outcome });
        if p.reports.len() >= MAX_BATCH || now - p.last_flush >= flush_ms {
            p.last_flush = now;
            (Some(std::mem::take(&mut p.reports)), false)
        } else {
            (None, !std::mem::replace(&mut p.scheduled, true))
        }
    });
    let env = env.clone();
    if let Some(batch) = batch {
        ctx.wait_until(send(env, batch));
    } else if schedule {
        ctx.wait_until(async move {
            config::sleep(flush_ms as u64).await;
            let batch = PENDING.with(|p| {
                let mut p = p.borrow_mut();
                p.scheduled = false;
                p.last_flush = config::now_ms();
                std::mem::take(&mut p.reports)
            });
            if !batch.is_empty() {
                send(env, batch).await;
            }
        });
    }
}

async fn send(env: Env, batch: Vec<Report>) {
    let body = serde_json::to_string(&batch).ok();
    let _ = call(&env, Method::Post, body).await;
}
