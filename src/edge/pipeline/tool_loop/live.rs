//! A server-tool loop for a client that asked for a stream: the response (its headers)
//! goes out at once, the surface's keep-alive (`: OPENROUTER PROCESSING` on chat) every
//! `STREAM_KEEPALIVE_MS` while the loop runs its model calls and server calls (so
//! proxies and SDKs with idle timeouts keep the connection), then the answer as the
//! surface streams it, or an error event where the loop ended in one.

use std::pin::pin;

use futures_util::future::{select, Either};
use futures_util::{SinkExt, StreamExt};
use serde::Deserialize;
use worker::Response;

use super::Steps;
use crate::api::surface::Encoder;
use crate::api::tool_loop::{self, Loop};
use crate::api::{ChatRequest, Delta, GenerationMeta, Usage};
use crate::edge::pipeline::{Call, Incoming};
use crate::edge::request::ClientRequest;
use crate::edge::tools::ToolEnv;
use crate::edge::{config, http, upstream};
use crate::error::Error;

/// The most bytes of an inner call's refusal that are read for its message.
const MAX_REFUSAL: usize = 64 * 1024;

/// What the loop's work owns: all it would borrow from the handler's frame.
struct Owned {
    req: ClientRequest,
    incoming: Incoming,
    env: worker::Env,
    ctx: std::rc::Rc<crate::edge::background::Background>,
    cfg: crate::settings::Settings,
    gen_id: String,
    account: String,
    caller: String,
    arrived: f64,
    /// The tools' `now_secs`, `zdr` and `timeout_ms`.
    tools: (u64, bool, u64),
    base: ChatRequest,
    lp: Loop,
}

/// Starts the loop as background work and answers with its stream.
pub(super) fn streamed(
    req: &ClientRequest,
    call: &Call<'_>,
    incoming: &Incoming,
    (base, lp): (ChatRequest, Loop),
    tools: &ToolEnv<'_>,
) -> Result<Response, Error> {
    let owned = Owned {
        req: req.clone(),
        incoming: incoming.clone(),
        env: call.env.clone(),
        ctx: call.ctx.clone(),
        cfg: call.cfg.clone(),
        gen_id: call.gen_id.clone(),
        account: call.account.clone(),
        caller: call.caller.clone(),
        arrived: call.arrived,
        tools: (tools.now_secs, tools.zdr, tools.timeout_ms),
        base,
        lp,
    };
    let (tx, rx) = futures_channel::mpsc::channel::<Vec<u8>>(8);
    let headers = upstream::sse_headers();
    // The loop's generations are this ID's `-1` to `-N`; the answer's is the last.
    http::set(&headers, "X-Generation-Id", &call.gen_id);
    call.ctx.wait_until(work(owned, tx));
    Response::from_stream(rx.map(Ok::<Vec<u8>, worker::Error>))
        .map(|r| r.with_headers(headers))
        .map_err(http::internal)
}

/// Runs the loop, sending keep-alives until it is done, then its answer.
async fn work(mut o: Owned, mut tx: futures_channel::mpsc::Sender<Vec<u8>>) {
    let call = Call {
        env: &o.env,
        ctx: &o.ctx,
        cfg: &o.cfg,
        gen_id: o.gen_id,
        account: o.account,
        caller: o.caller,
        arrived: o.arrived,
    };
    let (now_secs, zdr, timeout_ms) = o.tools;
    let tool_env = ToolEnv {
        env: &o.env,
        settings: &o.cfg,
        now_secs,
        zdr,
        timeout_ms,
    };
    let steps = Steps {
        req: &o.req,
        call: &call,
        incoming: &o.incoming,
        base: &o.base,
        env: &tool_env,
    };
    let mut encoder = o.incoming.request.encoder(0, false);
    let keepalive = encoder.keepalive();
    let every = o.cfg.stream_keepalive_ms.max(1);
    let done = {
        let mut answer = pin!(steps.answer(&mut o.lp));
        loop {
            let tick = pin!(config::sleep(every));
            match select(answer.as_mut(), tick).await {
                Either::Left((done, _)) => break done,
                // The client left: the loop stops with it.
                Either::Right(_) if tx.send(keepalive.clone()).await.is_err() => return,
                Either::Right(_) => {}
            }
        }
    };
    let meta = GenerationMeta {
        id: call.gen_id.clone(),
        created: now_secs,
        model: o.base.model.clone().unwrap_or_default(),
        provider: "modelmux".into(),
    };
    let bytes = match done {
        Ok(Ok(c)) => tool_loop::stream_bytes(&c, &o.lp.turn(&c), &mut encoder),
        Ok(Err(resp)) => failed(&mut encoder, &meta, &refusal(resp, &o.cfg).await),
        Err(e) => failed(&mut encoder, &meta, &e),
    };
    let _ = tx.send(bytes).await;
}

/// The error event of a loop that failed after its headers went out.
fn failed(encoder: &mut Encoder, meta: &GenerationMeta, err: &Error) -> Vec<u8> {
    let empty = Delta {
        content: Some(String::new()),
        ..Default::default()
    };
    let mut chunk = meta.delta_chunk(empty, Some("error"));
    // Written as the error bodies are and read back, as a failed stream's chunk is.
    let written = serde_json::to_vec(&err.error_object()).unwrap_or_default();
    chunk.error = serde_json::from_slice(&written).ok();
    encoder.fail(&chunk, &meta.chunk(Vec::new()), &Usage::default(), err)
}

#[derive(Deserialize)]
struct Refusal {
    error: RefusalError,
}

#[derive(Deserialize)]
struct RefusalError {
    message: String,
}

/// An inner call's refusal (a key's limit reached, credits spent, no endpoint) as the
/// error it came from, by its status, with its message.
async fn refusal(mut resp: Response, cfg: &crate::settings::Settings) -> Error {
    let status = resp.status_code();
    let timeout = cfg.upstream_reply_timeout_ms;
    let body = upstream::body(&mut resp, "modelmux", timeout, MAX_REFUSAL).await;
    let message = body
        .ok()
        .and_then(|b| serde_json::from_slice::<Refusal>(&b).ok())
        .map_or_else(
            || format!("an inner call was refused ({status})"),
            |r| r.error.message,
        );
    match status {
        400 => Error::BadRequest(message),
        401 => Error::Unauthorized(message),
        402 => Error::PaymentRequired(message),
        403 => Error::Forbidden(message),
        404 => Error::NotFound(message),
        _ => Error::NoProvider(message),
    }
}
