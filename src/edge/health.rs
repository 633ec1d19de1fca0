//! The `Health` Durable Object (one, named "global") records every upstream attempt and
//! serves summaries. Isolates keep a snapshot for `HEALTH_CACHE_SECS` and refresh it in
//! the background, so routing never waits on it; reports are sent with `wait_until`.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

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
            let r: Report = req.json().await?;
            let json = {
                let mut all = self.stats.borrow_mut();
                let s = all.entry(r.key.clone()).or_default();
                s.record(&r.outcome);
                serde_json::to_string(s).map_err(|e| worker::Error::RustError(e.to_string()))?
            };
            self.sql.exec(
                "INSERT INTO stats (key, stats) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET stats = excluded.stats",
                vec![r.key.into(), json.into()],
            )?;
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

thread_local! {
    static SNAPSHOT: RefCell<(f64, Rc<HashMap<String, Summary>>)> = RefCell::new((f64::MIN, Rc::default()));
    static REFRESHING: RefCell<bool> = const { RefCell::new(false) };
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
/// background (the very first request of an isolate waits for it).
pub async fn snapshot(env: &Env, ctx: &Context) -> Rc<HashMap<String, Summary>> {
    let ttl = config::u64(env, "HEALTH_CACHE_SECS", 10) as f64 * 1000.0;
    let (at, snap) = SNAPSHOT.with(|s| s.borrow().clone());
    let now = config::now_ms();
    if at == f64::MIN {
        refresh(env.clone()).await;
        return SNAPSHOT.with(|s| s.borrow().1.clone());
    }
    if now - at >= ttl && !REFRESHING.with(|r| r.replace(true)) {
        ctx.wait_until(refresh(env.clone()));
    }
    snap
}

/// Records an attempt's outcome, after the response is under way.
pub fn report(env: &Env, ctx: &Context, key: String, outcome: Outcome) {
    let env = env.clone();
    ctx.wait_until(async move {
        let body = serde_json::to_string(&Report { key, outcome }).ok();
        let _ = call(&env, Method::Post, body).await;
    });
}
