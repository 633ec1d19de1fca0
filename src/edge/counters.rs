//! The `Counters` Durable Object: exact fixed-window counters for the upstreams' own
//! quotas (requests and tokens per minute, requests per day), one object per endpoint.

use serde::{Deserialize, Serialize};
use worker::{durable_object, DurableObject, Env, Request, Response, Result, SqlStorage, State};

use super::config;
use super::sql::SqlCounters;
use crate::error::Error;
use crate::limits::{self, Decision, Window};

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
        SqlCounters::create_table(&sql);
        Counters { sql }
    }

    async fn fetch(&self, mut req: Request) -> Result<Response> {
        // From bytes, as every JSON the worker reads: one parser instantiation per type.
        let hit: HitRequest = serde_json::from_slice(&req.bytes().await?)?;
        let mut store = SqlCounters::new(&self.sql);
        let decision = limits::hit(&mut store, &hit.key, &hit.windows, config::now_secs());
        if let Some(e) = store.error {
            return Response::error(e, 500);
        }
        Response::from_json(&decision)
    }
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
    let bytes = resp.bytes().await.map_err(internal)?;
    serde_json::from_slice(&bytes).map_err(|e| Error::Internal(format!("counters: {e}")))
}
