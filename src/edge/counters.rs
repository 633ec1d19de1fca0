//! The `Counters` Durable Object: exact fixed-window request counters (free-model
//! limits), one object per caller, stored in its SQLite database.

use serde::{Deserialize, Serialize};
use worker::{durable_object, DurableObject, Env, Request, Response, Result, SqlStorage, State};

use super::config;
use crate::error::Error;
use crate::limits::{self, CounterStore, Decision, Window, WindowState};

#[derive(Debug, Serialize, Deserialize)]
pub struct HitRequest {
    pub key: String,
    pub windows: Vec<Window>,
}

#[durable_object]
pub struct Counters {
    sql: SqlStorage,
}

impl DurableObject for Counters {
    fn new(state: State, _env: Env) -> Self {
        let sql = state.storage().sql();
        // Creating an existing table is a no-op; failure shows on first use.
        let _ = sql.exec(
            "CREATE TABLE IF NOT EXISTS windows (key TEXT PRIMARY KEY, start INTEGER NOT NULL, count INTEGER NOT NULL)",
            None,
        );
        Counters { sql }
    }

    async fn fetch(&self, mut req: Request) -> Result<Response> {
        let hit: HitRequest = req.json().await?;
        let mut store = SqlCounters {
            sql: &self.sql,
            error: None,
        };
        let decision = limits::hit(&mut store, &hit.key, &hit.windows, config::now_secs());
        if let Some(e) = store.error {
            return Response::error(e, 500);
        }
        Response::from_json(&decision)
    }
}

struct SqlCounters<'a> {
    sql: &'a SqlStorage,
    error: Option<String>,
}

#[derive(Deserialize)]
struct Row {
    start: f64,
    count: f64,
}

impl CounterStore for SqlCounters<'_> {
    fn load(&mut self, key: &str) -> Option<WindowState> {
        let rows = self
            .sql
            .exec(
                "SELECT start, count FROM windows WHERE key = ?",
                vec![key.into()],
            )
            .and_then(|c| c.to_array::<Row>());
        match rows {
            Ok(rows) => rows.first().map(|r| WindowState {
                start: r.start as u64,
                count: r.count as u64,
            }),
            Err(e) => {
                self.error = Some(e.to_string());
                None
            }
        }
    }

    fn save(&mut self, key: &str, st: WindowState) {
        let res = self.sql.exec(
            "INSERT INTO windows (key, start, count) VALUES (?, ?, ?) ON CONFLICT(key) DO UPDATE SET start = excluded.start, count = excluded.count",
            vec![key.into(), (st.start as i64).into(), (st.count as i64).into()],
        );
        if let Err(e) = res {
            self.error = Some(e.to_string());
        }
    }
}

/// Counts one free-model request for `caller` (20/min and 200/day unless configured).
pub async fn free_model_hit(env: &Env, caller: &str) -> std::result::Result<Decision, Error> {
    let windows = vec![
        Window::requests(config::u64(env, "FREE_REQUESTS_PER_MINUTE", 20), 60),
        Window::requests(config::u64(env, "FREE_REQUESTS_PER_DAY", 200), 86_400),
    ];
    hit(env, &format!("free:{caller}"), windows).await
}

pub async fn hit(
    env: &Env,
    key: &str,
    windows: Vec<Window>,
) -> std::result::Result<Decision, Error> {
    let internal = |e: worker::Error| Error::Internal(format!("counters: {e}"));
    let stub = env
        .durable_object("COUNTERS")
        .and_then(|ns| ns.get_by_name(key))
        .map_err(internal)?;
    let body = serde_json::to_string(&HitRequest {
        key: key.to_string(),
        windows,
    })
    .map_err(|e| Error::Internal(e.to_string()))?;
    let mut init = worker::RequestInit::new();
    init.with_method(worker::Method::Post)
        .with_body(Some(body.into()));
    let req = Request::new_with_init("https://counters/hit", &init).map_err(internal)?;
    let mut resp = stub.fetch_with_request(req).await.map_err(internal)?;
    if resp.status_code() != 200 {
        let text = resp.text().await.unwrap_or_default();
        return Err(Error::Internal(format!("counters: {text}")));
    }
    resp.json().await.map_err(internal)
}
