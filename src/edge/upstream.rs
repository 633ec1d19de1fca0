//! Sending a built [`UpstreamRequest`] with `fetch`: timeouts, cancellation (an
//! `AbortController` that fires when the request is dropped, e.g. because the client
//! went away), and streaming the translated reply through as it arrives.

use std::pin::pin;

use futures_util::future::{select, Either};
use futures_util::StreamExt;
use worker::wasm_bindgen::JsValue;
use worker::{js_sys, AbortController, ByteStream, Headers, Response};

use super::budget::{self, Hold};
use super::config;
use super::http::{internal, set};
use super::reader::{BurstReader, End};
use crate::error::Error;
use crate::providers::stream::ChatStream;
use crate::providers::UpstreamRequest;
use crate::settings::Settings;

mod resume;
pub use resume::{Failover, Resume, Resumed};

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

/// A built request as it goes out: with its body already assembled in JavaScript when
/// media were spliced into it there ([`super::media::Inlined::outgoing`]), so that the
/// body is never whole in the worker's memory.
pub struct Outgoing {
    pub up: UpstreamRequest,
    pub body: Option<js_sys::Uint8Array>,
}

impl From<UpstreamRequest> for Outgoing {
    fn from(up: UpstreamRequest) -> Outgoing {
        Outgoing { up, body: None }
    }
}

/// Sends the request; waits at most `timeout_ms` for the response headers.
pub async fn send(
    up: &Outgoing,
    provider: &str,
    timeout_ms: u64,
) -> Result<(Response, InFlight), Error> {
    let timeout = pin!(config::sleep(timeout_ms));
    match select(pin!(send_untimed(up, provider)), timeout).await {
        Either::Left((r, _)) => r,
        // The fetch, dropped, aborts.
        Either::Right(_) => Err(Error::Timeout {
            provider: provider.to_string(),
        }),
    }
}

/// Sends the request, however long the answer takes (the caller bounds it). Dropped
/// before the answer, the fetch is aborted. Built and sent with the runtime's own
/// types: `worker::Request` and `worker::Response` read back the method, URL, `cf`
/// and `webSocket` of what they wrap, which nothing here uses.
async fn send_untimed(out: &Outgoing, provider: &str) -> Result<(Response, InFlight), Error> {
    use worker::wasm_bindgen::JsCast;
    use worker::web_sys;
    let up = &out.up;
    let body = match &out.body {
        Some(b) => b.clone(),
        None => js_sys::Uint8Array::from(&up.body[..]),
    };
    let headers = Headers::new();
    for (k, v) in &up.headers {
        set(&headers, k, v);
    }
    let controller = AbortController::default();
    let init = web_sys::RequestInit::new();
    init.set_method(up.method);
    init.set_headers(&headers.0);
    // A GET (a search engine's) may carry no body at all.
    if up.method != "GET" {
        init.set_body(&body);
    }
    let signal = controller.signal();
    let signal: &web_sys::AbortSignal = &signal;
    init.set_signal(Some(signal));
    let req = web_sys::Request::new_with_str_and_init(&up.url, &init).map_err(|e| {
        let e = e
            .as_string()
            .unwrap_or_else(|| "invalid URL or options for Request".to_string());
        Error::Internal(format!("bad upstream URL for {provider}: {e}"))
    })?;
    let inflight = InFlight {
        controller: Some(controller),
    };
    let sent = match fetch_request(&req) {
        Ok(promise) => worker::wasm_bindgen_futures::JsFuture::from(promise).await,
        Err(e) => Err(e),
    };
    match sent.and_then(|r| r.dyn_into::<web_sys::Response>()) {
        Ok(resp) => Ok((response_of(resp), inflight)),
        Err(e) => Err(Error::upstream(
            provider,
            format!(
                "Could not reach provider {provider}: {}",
                worker::Error::from(e)
            ),
        )),
    }
}

/// A fetched response as `worker::Response`: status, headers and body only.
fn response_of(resp: worker::web_sys::Response) -> Response {
    let builder = worker::ResponseBuilder::new()
        .with_status(resp.status())
        .with_headers(Headers(resp.headers()));
    match resp.body() {
        Some(body) => builder.stream(body),
        None => builder.empty(),
    }
}

// `fetch`, imported directly (as the timers are in `config`).
#[worker::wasm_bindgen::prelude::wasm_bindgen]
extern "C" {
    #[wasm_bindgen(js_name = fetch, catch)]
    fn fetch_request(req: &worker::web_sys::Request) -> Result<js_sys::Promise, JsValue>;
}

/// A whole non-streamed exchange within one deadline of `timeout_ms` (one timer): the
/// request sent, a failure read into its error, the reply read (at most `max_bytes`,
/// within the isolate's `limit` of reply bytes: [`read_reply`]). The time of its first
/// byte (Unix ms), the body and what it holds of the isolate's budget.
pub async fn exchange(
    up: &Outgoing,
    provider: &str,
    timeout_ms: u64,
    (max_bytes, limit): (usize, u64),
) -> Result<(f64, Vec<u8>, Hold), Error> {
    let work = async {
        let (resp, mut inflight) = send_untimed(up, provider).await?;
        let first_byte = config::now_ms();
        let status = resp.status_code();
        if !(200..300).contains(&status) {
            let body = read_all(&resp, MAX_ERROR_BODY).await.unwrap_or_default();
            return Err(failure_of(&resp, provider, &body));
        }
        let (body, hold) = read_reply(&resp, provider, (max_bytes, limit), timeout_ms).await?;
        // Read to the end: nothing left to abort.
        inflight.completed();
        Ok((first_byte, body, hold))
    };
    let timeout = pin!(config::sleep(timeout_ms));
    match select(pin!(work), timeout).await {
        Either::Left((r, _)) => r,
        Either::Right(_) => Err(Error::Timeout {
            provider: provider.to_string(),
        }),
    }
}

fn capped_error(e: Capped, provider: &str, max_bytes: usize) -> Error {
    match e {
        Capped::TooLarge => too_large(provider, max_bytes),
        Capped::Failed(e) => Error::upstream(
            provider,
            format!("Provider connection failed while reading its reply: {e}"),
        ),
    }
}

/// A whole reply of at most `max` bytes (silent at most `idle_ms` at a time), read in
/// bursts within the isolate's budget of `limit` reply bytes (`ISOLATE_REPLY_BYTES`):
/// its bytes count as they are read, so replies read at once never hold more together;
/// one that would pass what the isolate has left is a 503 (the next endpoint is tried).
/// The hold goes back when the reply is done with.
async fn read_reply(
    resp: &Response,
    provider: &str,
    (max, limit): (usize, u64),
    idle_ms: u64,
) -> Result<(Vec<u8>, Hold), Error> {
    let mut hold = Hold::of(&budget::REPLIES);
    let js_body = match resp.body() {
        worker::ResponseBody::Stream(s) => JsValue::from(s.clone()),
        worker::ResponseBody::Body(b) if b.len() > max => return Err(too_large(provider, max)),
        worker::ResponseBody::Body(b) if !hold.try_take(b.len() as u64, limit) => {
            return Err(budget::busy("reading replies of", limit))
        }
        worker::ResponseBody::Body(b) => return Ok((b.clone(), hold)),
        worker::ResponseBody::Empty => return Ok((Vec::new(), hold)),
    };
    let reader = BurstReader::new(&js_body);
    // The bursts as read, joined once at the end into a buffer of the reply's size.
    let mut parts: Vec<Vec<u8>> = Vec::new();
    let mut read = 0usize;
    loop {
        let left = usize::try_from(hold.left(limit)).unwrap_or(usize::MAX);
        let room = max.saturating_sub(read).min(left).saturating_add(1);
        let (bytes, end) = reader.next(idle_ms, room).await;
        read = read.saturating_add(bytes.len());
        if read > max {
            return Err(too_large(provider, max));
        }
        if !hold.try_take(bytes.len() as u64, limit) {
            return Err(budget::busy("reading replies of", limit));
        }
        if !bytes.is_empty() {
            parts.push(bytes);
        }
        match end {
            End::More => {}
            End::Done | End::Stopped => break,
            End::Quiet => {
                return Err(Error::Timeout {
                    provider: provider.to_string(),
                })
            }
            End::Failed(e) => return Err(capped_error(Capped::Failed(e), provider, max)),
        }
    }
    let body = match parts.len() {
        1 => parts.pop().unwrap_or_default(),
        _ => parts.concat(),
    };
    Ok((body, hold))
}

/// Reads a whole (non-streamed) body of at most `max_bytes` within `timeout_ms`.
pub async fn body(
    resp: &mut Response,
    provider: &str,
    timeout_ms: u64,
    max_bytes: usize,
) -> Result<Vec<u8>, Error> {
    let timeout = pin!(config::sleep(timeout_ms));
    match select(pin!(read_all(resp, max_bytes)), timeout).await {
        Either::Left((r, _)) => r.map_err(|e| capped_error(e, provider, max_bytes)),
        Either::Right(_) => Err(Error::Timeout {
            provider: provider.to_string(),
        }),
    }
}

pub fn too_large(provider: &str, max_bytes: usize) -> Error {
    Error::upstream(
        provider,
        format!("Provider reply is larger than {max_bytes} bytes"),
    )
}

/// Why a capped read failed.
pub enum Capped {
    TooLarge,
    Failed(String),
}

// A whole body read in JavaScript, chunks gathered there with a running count: one
// promise for Rust, where a stream read through wasm costs a round trip per chunk and
// a lock release that shows in profiles. Past `max` bytes the stream is cancelled and
// the promise rejects with a RangeError.
#[worker::wasm_bindgen::prelude::wasm_bindgen(inline_js = r#"
export async function readCapped(stream, max) {
  const reader = stream.getReader();
  const parts = [];
  let n = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    n += value.byteLength;
    if (n > max) {
      reader.cancel().catch(() => {});
      throw new RangeError("too large");
    }
    parts.push(value);
  }
  if (parts.length === 1) return parts[0];
  const out = new Uint8Array(n);
  let at = 0;
  for (const p of parts) { out.set(p, at); at += p.byteLength; }
  return out;
}
"#)]
extern "C" {
    #[wasm_bindgen(js_name = readCapped)]
    fn read_capped_js(stream: &worker::wasm_bindgen::JsValue, max: f64) -> js_sys::Promise;
}

/// The whole body of `resp` (at most `max` bytes).
pub async fn read_all(resp: &Response, max: usize) -> Result<Vec<u8>, Capped> {
    read_all_js(resp, max).await.map(|a| a.to_vec())
}

/// The whole body of `resp` (at most `max` bytes), left in JavaScript.
pub async fn read_all_js(resp: &Response, max: usize) -> Result<js_sys::Uint8Array, Capped> {
    match resp.body() {
        worker::ResponseBody::Stream(s) => read_capped(s.clone().into(), max).await,
        worker::ResponseBody::Body(b) if b.len() > max => Err(Capped::TooLarge),
        worker::ResponseBody::Body(b) => Ok(js_sys::Uint8Array::from(&b[..])),
        worker::ResponseBody::Empty => Ok(js_sys::Uint8Array::new_with_length(0)),
    }
}

/// The bytes of `stream` (a `ReadableStream`), at most `max`, as a JavaScript array.
pub async fn read_capped(
    stream: worker::wasm_bindgen::JsValue,
    max: usize,
) -> Result<js_sys::Uint8Array, Capped> {
    let promise = read_capped_js(&stream, max as f64);
    match worker::wasm_bindgen_futures::JsFuture::from(promise).await {
        Ok(v) => Ok(js_sys::Uint8Array::new(&v)),
        Err(e) if worker::wasm_bindgen::JsCast::is_instance_of::<js_sys::RangeError>(&e) => {
            Err(Capped::TooLarge)
        }
        Err(e) => Err(Capped::Failed(
            js_sys::Error::from(e)
                .message()
                .as_string()
                .unwrap_or_default(),
        )),
    }
}

/// The most of an error reply's body that is read (its message is all that is kept).
const MAX_ERROR_BODY: usize = 64 * 1024;

/// The error of an upstream's non-2xx reply, from its status, body (read within
/// `timeout_ms`) and `Retry-After`.
pub async fn failure(resp: &mut Response, provider: &str, timeout_ms: u64) -> Error {
    let body = body(resp, provider, timeout_ms, MAX_ERROR_BODY)
        .await
        .unwrap_or_default();
    failure_of(resp, provider, &body)
}

/// The error of a non-2xx reply whose body (or its start) is `body`.
fn failure_of(resp: &Response, provider: &str, body: &[u8]) -> Error {
    let retry_after = resp.headers().get("Retry-After").ok().flatten();
    crate::providers::upstream_error(provider, resp.status_code(), body, retry_after.as_deref())
}

pub fn sse_headers() -> Headers {
    let h = Headers::new();
    set(&h, "Content-Type", "text/event-stream");
    set(&h, "Cache-Control", "no-cache");
    set(&h, "X-Accel-Buffering", "no");
    h
}

/// Called once with the finished stream and whether the client went away first.
pub type OnEnd = Box<dyn FnOnce(&mut ChatStream, bool)>;

/// How much more of an upstream reply is read once its client has gone, when the
/// provider bills it anyway (a non-streamed reply; a stream whose content has ended), to
/// learn what it bills (its final usage: reasoning tokens, tool-call arguments, cache
/// reads and writes): at most `ms` more milliseconds and `bytes` more bytes. A deployed
/// Worker's background work ends 30 s after its client has, so `ms` stays below that.
#[derive(Debug, Clone, Copy)]
pub struct Drain {
    pub ms: u64,
    pub bytes: usize,
}

/// A drain under way: read on until `until` (ms) and up to `max_read` bytes read in all.
#[derive(Debug, Clone, Copy)]
struct Window {
    until: f64,
    max_read: usize,
}

impl Window {
    /// How long more to read, `read` bytes in; `None` once the drain is over.
    fn left_ms(&self, read: usize) -> Option<u64> {
        let wait = self.until - config::now_ms();
        (wait > 0.0 && read <= self.max_read).then_some(wait as u64)
    }
}

/// An upstream stream that broke off (a reset, a read error).
fn broke(provider: &str, e: impl std::fmt::Display) -> Error {
    Error::upstream(provider, format!("Provider stream broke: {e}"))
}

impl Drain {
    /// The drain that starts now, `read` bytes into the reply.
    fn start(&self, read: usize) -> Window {
        Window {
            until: config::now_ms() + self.ms as f64,
            max_read: read.saturating_add(self.bytes),
        }
    }

    pub fn of(cfg: &Settings) -> Drain {
        Drain {
            ms: cfg.drain_ms,
            bytes: cfg.drain_bytes,
        }
    }
}

struct Pump {
    body: ByteStream,
    chat: ChatStream,
    inflight: InFlight,
    provider: String,
    keepalive_ms: u64,
    idle_timeout_ms: u64,
    idle_ms: u64,
    /// Upstream bytes read so far.
    read: usize,
    on_end: Option<OnEnd>,
    failover: Option<Box<dyn Failover>>,
}

/// Streams the upstream reply through `chat` to the client, chunk by chunk. The pump
/// runs as the request's background work (`wait_until`), feeding the client's body
/// through a small channel, so that it outlives the client: a client that disconnects
/// after the content has ended (the usage still to come) has the upstream read on,
/// within `drain`, for its final usage; one that leaves mid-generation aborts it. While the upstream is silent a keep-alive comment goes out every
/// `keepalive_ms`; after `idle_timeout_ms` of silence the stream ends with an error
/// chunk (`STREAM_KEEPALIVE_MS`, `STREAM_IDLE_TIMEOUT_MS`). `on_end` sees the stream
/// (usage, finish reason) once it ends or is abandoned.
pub fn stream_through(
    ctx: &super::background::Background,
    cfg: &Settings,
    mut resp: Response,
    inflight: InFlight,
    chat: ChatStream,
    provider: &str,
    (on_end, failover): (OnEnd, Option<Box<dyn Failover>>),
) -> Result<Response, Error> {
    let drain = Drain::of(cfg);
    let pump = Pump {
        body: resp.stream().map_err(internal)?,
        chat,
        inflight,
        provider: provider.to_string(),
        keepalive_ms: cfg.stream_keepalive_ms.max(1),
        idle_timeout_ms: cfg.stream_idle_timeout_ms,
        idle_ms: 0,
        read: 0,
        on_end: Some(on_end),
        failover,
    };
    let (tx, rx) = futures_channel::mpsc::channel::<Vec<u8>>(PIPE_DEPTH);
    ctx.wait_until(pump.run(tx, drain));
    Response::from_stream(rx.map(Ok::<Vec<u8>, worker::Error>))
        .map(|r| r.with_headers(sse_headers()))
        .map_err(internal)
}

/// Pieces waiting between the pump and a client that reads slowly; past this the pump
/// waits, so a slow client slows the upstream read instead of filling memory.
const PIPE_DEPTH: usize = 8;

impl Drop for Pump {
    /// The pump was dropped before the end (the runtime ended the background work):
    /// the upstream is aborted (by [`InFlight`]) and what was streamed is accounted for.
    fn drop(&mut self) {
        if let Some(f) = self.on_end.take() {
            f(&mut self.chat, true);
        }
    }
}

impl Pump {
    async fn run(mut self, mut tx: futures_channel::mpsc::Sender<Vec<u8>>, drain: Drain) {
        use futures_util::SinkExt;
        // Once the client is gone: how much more to read.
        let mut gone: Option<Window> = None;
        let mut left = false;
        while !self.chat.is_closed() {
            let piece = match gone {
                None => self.next_piece().await,
                Some(window) => {
                    let Some(wait) = window.left_ms(self.read) else {
                        break;
                    };
                    let next = pin!(self.next_piece());
                    match select(next, pin!(config::sleep(wait))).await {
                        Either::Left((piece, _)) => piece,
                        Either::Right(_) => break,
                    }
                }
            };
            if gone.is_none() && tx.send(piece).await.is_err() {
                // The client left. While the model is still generating, stopping it
                // stops the provider's bill too: the upstream is aborted and what it
                // generated is charged from the usage seen so far. Once the content has
                // ended, only the usage is still to come: it is read on for that.
                if self.chat.finish_reason().is_none() {
                    left = true;
                    break;
                }
                gone = Some(drain.start(self.read));
            }
        }
        if self.chat.is_closed() {
            self.inflight.completed();
        }
        if let Some(f) = self.on_end.take() {
            f(&mut self.chat, left || gone.is_some());
        }
        // Dropping the pump aborts an upstream that was not read to its end.
    }

    /// The next bytes for the client; a failure held for a failover sends the next
    /// attempt, whose stream is read on from here.
    async fn next_piece(&mut self) -> Vec<u8> {
        let mut out = self.read_piece().await;
        if self.chat.pending_failover().is_some() {
            out.extend(self.fail_over().await);
        }
        out
    }

    async fn read_piece(&mut self) -> Vec<u8> {
        loop {
            let tick = pin!(config::sleep(self.keepalive_ms));
            match select(self.body.next(), tick).await {
                Either::Left((Some(Ok(bytes)), _)) => {
                    self.idle_ms = 0;
                    self.read = self.read.saturating_add(bytes.len());
                    self.chat.at(config::now_ms());
                    let out = self.chat.feed(&bytes);
                    if !out.is_empty() || self.chat.pending_failover().is_some() {
                        return out;
                    }
                }
                Either::Left((Some(Err(e)), _)) => {
                    return self.chat.fail(&broke(&self.provider, e));
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

/// The settings [`gather`] reads (see `Settings`), copied out for its background task.
#[derive(Debug, Clone, Copy)]
pub struct GatherLimits {
    pub upstream_timeout_ms: u64,
    pub upstream_reply_timeout_ms: u64,
    pub max_reply_bytes: usize,
    pub isolate_reply_bytes: u64,
    pub drain: Drain,
}

impl GatherLimits {
    pub fn of(cfg: &Settings) -> GatherLimits {
        GatherLimits {
            upstream_timeout_ms: cfg.upstream_timeout_ms,
            upstream_reply_timeout_ms: cfg.upstream_reply_timeout_ms,
            max_reply_bytes: cfg.max_reply_bytes,
            isolate_reply_bytes: cfg.isolate_reply_bytes,
            drain: Drain::of(cfg),
        }
    }
}

/// A stream read to its end for a caller that wants one reply (`stream` is
/// [`ChatStream::gathering`]), and how it ended; or the one reply an upstream sent
/// instead of the stream it was asked for (some OpenAI-compatible hosts do).
pub enum Gathered {
    Stream {
        stream: Box<ChatStream>,
        /// When the response headers came.
        first_byte: f64,
        /// The client left before the stream ended.
        left: bool,
        /// What it holds of the isolate's reply budget.
        hold: Hold,
    },
    Whole {
        first_byte: f64,
        body: Vec<u8>,
        hold: Hold,
    },
}

/// Sends `up` (built as a stream) and reads its reply into `stream` as the request's
/// background work, so that however the exchange ends the generation seen so far is
/// there to bill: the end, an upstream failure (the stream closes with it), more than
/// `max_reply_bytes` or than the isolate's reply budget has left (a 503, `Busy`), `upstream_reply_timeout_ms` of silence (a stream, unlike one
/// reply, can be timed by its pauses, so a model may think for longer), or the client
/// leaving (`left` resolves). A client that leaves mid-generation stops it at once (the
/// fetch is aborted and the provider bills only what it generated); once the content
/// has ended only the usage is still to come, read on within `Drain`.
pub async fn gather(
    up: &Outgoing,
    provider: &str,
    cfg: GatherLimits,
    mut stream: ChatStream,
    left: impl std::future::Future<Output = ()>,
) -> Result<Gathered, Error> {
    let (mut resp, mut inflight) = send(up, provider, cfg.upstream_timeout_ms).await?;
    if !(200..300).contains(&resp.status_code()) {
        return Err(failure(&mut resp, provider, cfg.upstream_timeout_ms).await);
    }
    let first_byte = config::now_ms();
    stream.started(first_byte);
    let sse = resp
        .headers()
        .get("content-type")
        .ok()
        .flatten()
        .is_some_and(|t| t.contains("event-stream"));
    if !sse {
        let caps = (cfg.max_reply_bytes, cfg.isolate_reply_bytes);
        let idle = cfg.upstream_reply_timeout_ms;
        let (body, hold) = read_reply(&resp, provider, caps, idle).await?;
        inflight.completed();
        return Ok(Gathered::Whole {
            first_byte,
            body,
            hold,
        });
    }
    let js_body = match resp.body() {
        worker::ResponseBody::Stream(s) => JsValue::from(s.clone()),
        _ => return Err(internal("a streamed reply without a body".into())),
    };
    let mut reading = Reading {
        body: BurstReader::new(&js_body),
        cfg,
        provider,
        left: false,
        gone: None,
        read: 0,
        hold: Hold::of(&budget::REPLIES),
    };
    reading.run(&mut stream, left).await;
    if stream.is_closed() {
        inflight.completed();
    }
    // Dropping `inflight` aborts an upstream that was not read to its end.
    Ok(Gathered::Stream {
        stream: Box::new(stream),
        first_byte,
        left: reading.left,
        hold: reading.hold,
    })
}

/// A streamed reply being gathered by [`gather`]: how much was read, what it holds, and
/// whether the client has gone.
struct Reading<'p> {
    body: BurstReader,
    cfg: GatherLimits,
    provider: &'p str,
    /// The client left before the stream ended.
    left: bool,
    /// Once the client has gone: how much more to read.
    gone: Option<Window>,
    read: usize,
    /// The bytes read count against the isolate's reply budget as they come.
    hold: Hold,
}

impl Reading<'_> {
    /// Reads the reply into `stream` until it closes, a cap is passed, or the client,
    /// gone (`left` resolved), has no more to wait for.
    async fn run(&mut self, stream: &mut ChatStream, left: impl std::future::Future<Output = ()>) {
        let mut left_signal = pin!(left);
        while !stream.is_closed() {
            let Some(wait) = self.wait() else {
                break;
            };
            let (bytes, end) = self.burst(wait, left_signal.as_mut()).await;
            if !self.take(stream, &bytes) || self.ended(stream, end) {
                break;
            }
            if self.left && self.gone.is_none() && !stream.is_closed() {
                // Mid-generation it stops at once; once the content has ended only the
                // usage is still to come, read on within the drain.
                if stream.finish_reason().is_none() {
                    break;
                }
                self.gone = Some(self.cfg.drain.start(self.read));
            }
        }
    }

    /// How long to wait for the next bytes: the reply's idle timeout, or what is left
    /// of the drain once the client has gone; `None` once the drain is over.
    fn wait(&self) -> Option<u64> {
        match self.gone {
            None => Some(self.cfg.upstream_reply_timeout_ms),
            Some(w) => w.left_ms(self.read),
        }
    }

    /// The next burst of the body, at most a byte past what the reply may still take.
    /// The client leaving meanwhile stops the body; what it had read still comes.
    async fn burst<F>(&mut self, wait: u64, left_signal: std::pin::Pin<&mut F>) -> (Vec<u8>, End)
    where
        F: std::future::Future<Output = ()>,
    {
        let limit = self.cfg.isolate_reply_bytes;
        let left_here = usize::try_from(self.hold.left(limit)).unwrap_or(usize::MAX);
        let room = self.cfg.max_reply_bytes.saturating_sub(self.read);
        let room = room.min(left_here).saturating_add(1);
        let burst = pin!(self.body.next(wait, room));
        if self.left {
            return burst.await;
        }
        match select(burst, left_signal).await {
            Either::Left((got, _)) => got,
            Either::Right(((), burst)) => {
                self.left = true;
                self.body.stop();
                burst.await
            }
        }
    }

    /// Counts `bytes` against the reply's caps and feeds them to `stream`; `false` when
    /// a cap is passed (the stream then fails with it).
    fn take(&mut self, stream: &mut ChatStream, bytes: &[u8]) -> bool {
        self.read = self.read.saturating_add(bytes.len());
        if self.read > self.cfg.max_reply_bytes {
            stream.fail(&too_large(self.provider, self.cfg.max_reply_bytes));
            return false;
        }
        // Past what the isolate has left: a 503, settled as a stream that broke.
        let limit = self.cfg.isolate_reply_bytes;
        if !self.hold.try_take(bytes.len() as u64, limit) {
            stream.fail(&budget::busy("reading replies of", limit));
            return false;
        }
        if !bytes.is_empty() {
            stream.at(config::now_ms());
            stream.feed(bytes);
        }
        true
    }

    /// What the end of a burst does to `stream`; `true` at the end of the drain.
    fn ended(&self, stream: &mut ChatStream, end: End) -> bool {
        match end {
            End::More | End::Stopped => {}
            End::Done => {
                stream.finish();
            }
            End::Failed(e) => {
                stream.fail(&broke(self.provider, e));
            }
            End::Quiet if self.gone.is_some() => return true,
            End::Quiet => {
                stream.fail(&Error::Timeout {
                    provider: self.provider.to_string(),
                });
            }
        }
        false
    }
}
