//! Stored Responses at the edge (README "Stored Responses"): `POST /responses` with
//! `store: true` or `previous_response_id` (the conversation rebuilt from the stored
//! record before the one pipeline sees it; the reply kept once it is complete, a
//! stream's as it ends), and `GET`/`DELETE /responses/{id}`,
//! `GET /responses/{id}/input_items`. Records live in the `RESPONSES` R2 bucket, one
//! object per response under its account and key (`api::responses::stored`).

use std::rc::Rc;

use futures_util::StreamExt;
use serde_json::Value;
use worker::{Bucket, ByteStream, Env, Response, ResponseBody};

use super::account_api::caller_of;
use super::background::Background;
use super::pipeline::{self, Job};
use super::request::ClientRequest;
use super::{config, http};
use crate::api::responses::stored::{self, Ask, Capture, Deleted, ListQuery, Record};
use crate::api::route::Route;
use crate::api::surface::Surface;
use crate::error::Error;

const BINDING: &str = "RESPONSES";

fn bucket(env: &Env) -> Result<Bucket, Error> {
    env.bucket(BINDING).map_err(|_| {
        Error::Misconfigured(
            "Stored Responses are not configured: the RESPONSES R2 bucket is not bound.".into(),
        )
    })
}

fn retention_days(env: &Env) -> u64 {
    config::u64(env, "RESPONSES_RETENTION_DAYS", 30).clamp(1, 3650)
}

/// Whether a body may name `store` or `previous_response_id` (most do not: they go to
/// the pipeline unread here).
fn mentions_storage(body: &[u8]) -> bool {
    let has = |k: &[u8]| memchr::memmem::find(body, k).is_some();
    has(b"\"store\"") || has(b"\"previous_response_id\"")
}

/// `POST /responses`.
pub async fn create(
    mut req: ClientRequest,
    env: &Env,
    ctx: &Rc<Background>,
    gen_id: &str,
) -> Result<Response, Error> {
    let arrived = config::now_ms();
    let who = caller_of(&mut req, env).await?;
    let cfg = config::settings(env);
    let body = http::read_body(&mut req, cfg.max_body_bytes).await?;
    let job = Job::Generate(Surface::Responses);
    if !mentions_storage(&body) {
        return pipeline::handle_read(req, env, ctx, gen_id, job, who, &body, arrived).await;
    }
    let (body, keep) = prepare(env, &who, &body, gen_id, cfg.max_body_bytes).await?;
    let resp = pipeline::handle_read(req, env, ctx, gen_id, job, who, &body, arrived).await?;
    match keep {
        Some(keep) if resp.status_code() == 200 => keep.reply(resp).await,
        _ => Ok(resp),
    }
}

/// The body the pipeline reads (the stored conversation before the new input), and
/// what keeps the reply when it is to be stored.
async fn prepare(
    env: &Env,
    (account, key): &(String, String),
    body: &[u8],
    gen_id: &str,
    max_body: usize,
) -> Result<(Vec<u8>, Option<Keep>), Error> {
    let Value::Object(mut map) = crate::api::parse_json(body)? else {
        return Err(Error::bad_request("The body must be a JSON object"));
    };
    let ask = Ask::take(&mut map)?;
    if !ask.store && ask.previous.is_none() {
        return Ok((body.to_vec(), None));
    }
    let bucket = bucket(env)?;
    let input = map
        .remove("input")
        .ok_or_else(|| Error::bad_request("input: is required"))?;
    let mut items = stored::input_items(input, gen_id)?;
    if let Some(prev) = &ask.previous {
        // The new items read alone first, so that a refusal names its own index.
        crate::api::responses::check_input(Value::Array(items.clone()))?;
        let record = load(&bucket, &stored::object_key(account, key, prev)).await?;
        let record = record.ok_or_else(|| stored::previous_not_found(prev))?;
        items = record.next_input(items);
    }
    map.insert("input".into(), Value::Array(items.clone()));
    let body = serde_json::to_vec(&map)?;
    if body.len() > max_body {
        return Err(Error::PayloadTooLarge { limit: max_body });
    }
    let keep = ask.store.then(|| Keep {
        bucket,
        prefix: stored::object_key(account, key, ""),
        input: items,
        previous: ask.previous,
        retention_days: retention_days(env),
        max_bytes: max_body,
    });
    Ok((body, keep))
}

/// The record under `key`, unless it expired (then it is deleted).
async fn load(bucket: &Bucket, key: &str) -> Result<Option<Record>, Error> {
    let Some(object) = bucket.get(key).execute().await.map_err(http::internal)? else {
        return Ok(None);
    };
    let Some(body) = object.body() else {
        return Ok(None);
    };
    let bytes = body.bytes().await.map_err(http::internal)?;
    let record: Record = serde_json::from_slice(&bytes)
        .map_err(|e| Error::Internal(format!("stored response {key}: {e}")))?;
    if record.expired(config::now_secs()) {
        bucket.delete(key).await.map_err(http::internal)?;
        return Ok(None);
    }
    Ok(Some(record))
}

/// What keeps a reply: where, the input it answered, and for how long.
struct Keep {
    bucket: Bucket,
    /// `responses/{account}/{key}/`: the response's ID follows.
    prefix: String,
    input: Vec<Value>,
    previous: Option<String>,
    retention_days: u64,
    /// A record larger than the largest body a next turn could send is not kept.
    max_bytes: usize,
}

impl Keep {
    /// The reply, passed on as it is; kept before it is (whole) or as it ends (a
    /// stream), so that the next turn finds it.
    async fn reply(self, mut resp: Response) -> Result<Response, Error> {
        if let ResponseBody::Body(bytes) = resp.body() {
            if let Ok(r) = serde_json::from_slice(bytes) {
                self.put(r).await;
            }
            return Ok(resp);
        }
        let Ok(upstream) = resp.stream() else {
            return Ok(resp);
        };
        let (builder, _) = resp.into_parts();
        let state = (upstream, Capture::default(), Some(self));
        let tee = futures_util::stream::unfold(state, tee_step);
        builder.from_stream(tee).map_err(http::internal)
    }

    async fn put(self, response: stored::StoredResponse) {
        if !response.keeps() || !stored::valid_id(&response.id) {
            return;
        }
        let key = format!("{}{}", self.prefix, response.id);
        let now = config::now_secs();
        let prev = self.previous.as_deref();
        let record = Record::new(response, self.input, prev, now, self.retention_days);
        let Ok(bytes) = serde_json::to_vec(&record) else {
            return;
        };
        if bytes.len() > self.max_bytes {
            worker::console_warn!("response {} not stored: {} bytes", record.id, bytes.len());
            return;
        }
        let expires = [("expires_at".to_string(), record.expires_at.to_string())];
        let put = self.bucket.put(&key, bytes).custom_metadata(expires);
        if let Err(e) = put.execute().await {
            worker::console_error!("response {} not stored: {e}", record.id);
        }
    }
}

type TeeState = (ByteStream, Capture, Option<Keep>);

/// One piece of a stored stream: passed on and watched for the final response, which
/// is kept when the stream ends (before the client sees it end).
async fn tee_step(
    (mut up, mut capture, keep): TeeState,
) -> Option<(worker::Result<Vec<u8>>, TeeState)> {
    match up.next().await {
        Some(Ok(piece)) => {
            capture.feed(&piece);
            Some((Ok(piece), (up, capture, keep)))
        }
        Some(Err(e)) => Some((Err(e), (up, capture, None))),
        None => {
            if let (Some(keep), Some(r)) = (keep, capture.finish()) {
                keep.put(r).await;
            }
            None
        }
    }
}

/// `GET`/`DELETE /responses/{id}` and `GET /responses/{id}/input_items`: the caller's
/// own (another key's, or an expired one, is 404).
pub async fn read(mut req: ClientRequest, env: &Env, route: Route) -> Result<Response, Error> {
    let (account, key) = caller_of(&mut req, env).await?;
    // The key's account says it is live (a revoked key reads nothing).
    super::history::scope(env, &account, &key, false).await?;
    let (id, items, delete) = match route {
        Route::StoredResponse(m, id) => (id, false, m == crate::api::route::Method::Delete),
        Route::StoredInputItems(id) => (id, true, false),
        _ => return Err(Error::Internal("not a stored response route".into())),
    };
    let query = if items {
        Some(ListQuery::parse(req.query())?)
    } else {
        None
    };
    let bucket = bucket(env)?;
    let object = stored::object_key(&account, &key, &id);
    let record = load(&bucket, &object)
        .await?
        .ok_or_else(|| stored::not_found(&id))?;
    if delete {
        bucket.delete(&object).await.map_err(http::internal)?;
        return http::json(&Deleted::of(&id), 200);
    }
    match query {
        Some(q) => http::json(&stored::list(&record, &q), 200),
        None => http::json(&record.response, 200),
    }
}
