//! Sending a built [`UpstreamRequest`] with `fetch`: timeouts, cancellation (an
//! `AbortController` that fires when the request is dropped, e.g. because the client
//! went away), and streaming the translated reply through as it arrives.

use std::pin::pin;

use futures_util::future::{select, Either};
use futures_util::StreamExt;
use worker::{
    js_sys, AbortController, ByteStream, Fetch, Headers, Method, Request, RequestInit, Response,
};

use super::config;
use super::http::{internal, set};
use crate::error::Error;
use crate::providers::stream::ChatStream;
use crate::providers::UpstreamRequest;

/// Aborts the upstream fetch when dropped, unless it completed.
pub struct InFlight {
    controller: Option<AbortController>,
}

impl InFlight {
    pub fn completed(&mut self) {
        self.controller = None;
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        if let Some(c) = self.controller.take() {
            c.abort();
        }
    }
}

/// Sends the request; waits at most `timeout_ms` for the response headers.
pub async fn send(
    up: &UpstreamRequest,
    provider: &str,
    timeout_ms: u64,
) -> Result<(Response, InFlight), Error> {
    let headers = Headers::new();
    for (k, v) in &up.headers {
        set(&headers, k, v);
    }
    let mut init = RequestInit::new();
    init.with_method(Method::from(up.method.to_string()))
        .with_headers(headers)
        .with_body(Some(js_sys::Uint8Array::from(&up.body[..]).into()));
    let req = Request::new_with_init(&up.url, &init)
        .map_err(|e| Error::Internal(format!("bad upstream URL for {provider}: {e}")))?;
    let controller = AbortController::default();
    let signal = controller.signal();
    let fetch = Fetch::Request(req);
    let timeout = pin!(config::sleep(timeout_ms));
    let sent = pin!(fetch.send_with_signal(&signal));
    let outcome = match select(sent, timeout).await {
        Either::Left((r, _)) => Some(r),
        Either::Right(_) => None,
    };
    match outcome {
        Some(Ok(resp)) => Ok((
            resp,
            InFlight {
                controller: Some(controller),
            },
        )),
        Some(Err(e)) => Err(Error::upstream(
            provider,
            format!("Could not reach provider {provider}: {e}"),
        )),
        None => {
            controller.abort();
            Err(Error::Timeout {
                provider: provider.to_string(),
            })
        }
    }
}

/// Reads a whole (non-streamed) body within `timeout_ms`.
pub async fn body(resp: &mut Response, provider: &str, timeout_ms: u64) -> Result<Vec<u8>, Error> {
    let timeout = pin!(config::sleep(timeout_ms));
    let read = pin!(resp.bytes());
    let outcome = match select(read, timeout).await {
        Either::Left((r, _)) => Some(r),
        Either::Right(_) => None,
    };
    match outcome {
        Some(Ok(b)) => Ok(b),
        Some(Err(e)) => Err(Error::upstream(
            provider,
            format!("Provider connection failed while reading its reply: {e}"),
        )),
        None => Err(Error::Timeout {
            provider: provider.to_string(),
        }),
    }
}

/// The error of an upstream's non-2xx reply, from its status, body (read within
/// `timeout_ms`) and `Retry-After`.
pub async fn failure(resp: &mut Response, provider: &str, timeout_ms: u64) -> Error {
    let status = resp.status_code();
    let retry_after = resp.headers().get("Retry-After").ok().flatten();
    let body = body(resp, provider, timeout_ms).await.unwrap_or_default();
    crate::providers::upstream_error(provider, status, &body, retry_after.as_deref())
}

pub fn sse_headers() -> Headers {
    let h = Headers::new();
    set(&h, "Content-Type", "text/event-stream");
    set(&h, "Cache-Control", "no-cache");
    set(&h, "X-Accel-Buffering", "no");
    h
}

/// Called once with the finished stream and whether the client went away first.
pub type OnEnd = Box<dyn FnOnce(&ChatStream, bool)>;

struct Pump {
    body: ByteStream,
    chat: ChatStream,
    inflight: InFlight,
    provider: String,
    keepalive_ms: u64,
    idle_timeout_ms: u64,
    idle_ms: u64,
    on_end: Option<OnEnd>,
}

/// Streams the upstream reply through `chat` to the client, chunk by chunk. While the
/// upstream is silent a keep-alive comment goes out every `keepalive_ms`; after
/// `idle_timeout_ms` of silence the stream ends with an error chunk. If the client
/// disconnects, the runtime drops this stream and [`InFlight`] aborts the upstream.
/// `on_end` sees the stream (usage, finish reason) once it ends or is abandoned.
pub fn stream_through(
    mut resp: Response,
    inflight: InFlight,
    chat: ChatStream,
    provider: &str,
    keepalive_ms: u64,
    idle_timeout_ms: u64,
    on_end: OnEnd,
) -> Result<Response, Error> {
    let pump = Pump {
        body: resp.stream().map_err(internal)?,
        chat,
        inflight,
        provider: provider.to_string(),
        keepalive_ms: keepalive_ms.max(1),
        idle_timeout_ms,
        idle_ms: 0,
        on_end: Some(on_end),
    };
    let stream = futures_util::stream::unfold(pump, |mut p| async move {
        if p.chat.is_closed() {
            return None;
        }
        let out = p.next_piece().await;
        if p.chat.is_closed() {
            p.inflight.completed();
            if let Some(f) = p.on_end.take() {
                f(&p.chat, false);
            }
        }
        Some((Ok::<Vec<u8>, worker::Error>(out), p))
    });
    Response::from_stream(stream)
        .map(|r| r.with_headers(sse_headers()))
        .map_err(internal)
}

impl Drop for Pump {
    /// The client disconnected before the end: the upstream is aborted (by
    /// [`InFlight`]) and what was streamed so far is accounted for.
    fn drop(&mut self) {
        if let Some(f) = self.on_end.take() {
            f(&self.chat, true);
        }
    }
}

impl Pump {
    async fn next_piece(&mut self) -> Vec<u8> {
        loop {
            let tick = pin!(config::sleep(self.keepalive_ms));
            match select(self.body.next(), tick).await {
                Either::Left((Some(Ok(bytes)), _)) => {
                    self.idle_ms = 0;
                    let out = self.chat.feed(&bytes);
                    if !out.is_empty() {
                        return out;
                    }
                }
                Either::Left((Some(Err(e)), _)) => {
                    let err =
                        Error::upstream(&self.provider, format!("Provider stream broke: {e}"));
                    return self.chat.fail(&err);
                }
                Either::Left((None, _)) => return self.chat.finish(),
                Either::Right(_) => {
                    self.idle_ms = self.idle_ms.saturating_add(self.keepalive_ms);
                    if self.idle_ms >= self.idle_timeout_ms {
                        let err = Error::Timeout {
                            provider: self.provider.clone(),
                        };
                        return self.chat.fail(&err);
                    }
                    return self.chat.keepalive();
                }
            }
        }
    }
}
