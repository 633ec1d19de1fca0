//! The `Counters` Durable Object: exact fixed-window counters for the upstreams' own
//! quotas (requests and tokens per minute, requests per day), one object per endpoint.

use serde::{Deserialize, Serialize};
use worker::{durable_object, DurableObject, Env, Request, Response, Result, SqlStorage, State};

use super::config;
use super::objects::{self, Shape};
use super::sql::SqlCounters;
use crate::error::Error;
use crate::limits::{self, Decision, Window};

#[derive(Debug, Serialize, Deserialize)]
pub struct HitRequest {
    pub key: String,
    pub windows: Vec<Window>,
}

/// The largest answer read from a counter (a decision is a few dozen bytes).
const REPLY_MAX: usize = 64 * 1024;

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
        let decided = match serde_json::from_slice::<HitRequest>(&req.bytes().await?) {
            Ok(hit) => {
                let mut store = SqlCounters::new(&self.sql);
                let d = limits::hit(&mut store, &hit.key, &hit.windows, config::now_secs());
                match store.error {
                    Some(e) => Err(Error::Internal(format!("counters: {e}"))),
                    None => Ok(d),
                }
            }
            Err(e) => Err(Error::Internal(format!("counters: bad request: {e}"))),
        };
        objects::answer(decided, Shape::Bare)
    }
}

pub async fn hit(
    env: &Env,
    key: &str,
    windows: Vec<Window>,
) -> std::result::Result<Decision, Error> {
    let stub = env
        .durable_object("COUNTERS")
        .and_then(|ns| ns.get_by_name(key))
        .map_err(|e| Error::Internal(format!("counters: {e}")))?;
    let body = serde_json::to_string(&HitRequest {
        key: key.to_string(),
        windows,
    })
    .map_err(|e| Error::Internal(e.to_string()))?;
    let url = "https://counters/hit";
    objects::call(&stub, "counters", url, Some(body), REPLY_MAX, Shape::Bare).await
}
