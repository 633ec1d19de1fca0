//! A `ReadableStream` read from JavaScript in bursts: one call returns every chunk that
//! is already there (a whole short reply, usually), waiting only for the first, with its
//! silence timer, the byte cap and cancellation handled on the JavaScript side. Reading
//! chunk by chunk through wasm (a reader lock, a Rust timer and a task wake-up per
//! chunk) cost the isolate about a tenth of its time under load.

use worker::wasm_bindgen::{self, prelude::wasm_bindgen, JsCast, JsValue};
use worker::{js_sys, wasm_bindgen_futures::JsFuture, web_sys::AbortController};

#[wasm_bindgen(inline_js = r#"
export function burstReader(stream) {
  return { reader: stream.getReader(), pending: null };
}
// Resolves [bytes or null, end, message]: end 0 = more may come, 1 = the stream ended,
// 2 = nothing came for idleMs, 3 = signal aborted, 4 = the stream failed (message).
// After the first chunk it takes only those that are ready (they resolve before a 0 ms
// timer), up to max bytes; a read still pending is kept for the next call.
export async function burst(st, idleMs, max, signal) {
  const parts = [];
  let n = 0, end = 0, message = "";
  let abort = null;
  const aborted = signal ? new Promise((res) => {
    if (signal.aborted) return res({ a: true });
    abort = () => res({ a: true });
    signal.addEventListener("abort", abort, { once: true });
  }) : null;
  for (let first = true; ; first = false) {
    if (!st.pending) st.pending = st.reader.read().then((r) => ({ r }), (e) => ({ e }));
    let timer;
    const waits = [st.pending, new Promise((res) => { timer = setTimeout(() => res({ t: true }), first ? idleMs : 0); })];
    if (aborted) waits.push(aborted);
    const got = await Promise.race(waits);
    clearTimeout(timer);
    if (got.t) { end = first ? 2 : 0; break; }
    if (got.a) { end = 3; break; }
    st.pending = null;
    if (got.e) { end = 4; message = String(got.e?.message ?? got.e); break; }
    if (got.r.done) { end = 1; break; }
    parts.push(got.r.value);
    n += got.r.value.byteLength;
    if (n > max) break;
  }
  if (abort) signal.removeEventListener("abort", abort);
  let bytes = null;
  if (parts.length === 1) bytes = parts[0];
  else if (parts.length > 1) {
    bytes = new Uint8Array(n);
    let at = 0;
    for (const p of parts) { bytes.set(p, at); at += p.byteLength; }
  }
  return [bytes, end, message];
}
"#)]
extern "C" {
    #[wasm_bindgen(js_name = burstReader)]
    fn burst_reader(stream: &JsValue) -> JsValue;
    #[wasm_bindgen(js_name = burst)]
    fn burst_js(state: &JsValue, idle_ms: f64, max: f64, signal: &JsValue) -> js_sys::Promise;
}

/// How a burst ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum End {
    /// More may come.
    More,
    /// The stream ended.
    Done,
    /// Nothing came for the time allowed.
    Quiet,
    /// The reader's signal aborted (the caller stopped waiting).
    Stopped,
    /// The stream failed.
    Failed(String),
}

/// A stream being read in bursts; its signal ends the burst under way.
pub struct BurstReader {
    state: JsValue,
    /// None where the runtime could not make one: the burst then ends by its timer.
    stop: Option<AbortController>,
    stopped: bool,
}

impl BurstReader {
    /// `stream` is a `ReadableStream` of bytes.
    pub fn new(stream: &JsValue) -> Self {
        BurstReader {
            state: burst_reader(stream),
            stop: AbortController::new().ok(),
            stopped: false,
        }
    }

    /// Ends the burst under way (and makes later ones wait only for the time given).
    pub fn stop(&mut self) {
        if !self.stopped {
            self.stopped = true;
            if let Some(c) = &self.stop {
                c.abort();
            }
        }
    }

    /// What is there within `idle_ms` (at most about `max` bytes), and how it ended.
    pub fn next(
        &self,
        idle_ms: u64,
        max: usize,
    ) -> impl std::future::Future<Output = (Vec<u8>, End)> {
        let signal: JsValue = match &self.stop {
            Some(c) if !self.stopped => c.signal().into(),
            _ => JsValue::UNDEFINED,
        };
        let promise = burst_js(&self.state, idle_ms as f64, max as f64, &signal);
        async move {
            match JsFuture::from(promise).await {
                Ok(v) => read_burst(&v),
                Err(e) => (
                    Vec::new(),
                    End::Failed(
                        js_sys::Error::from(e)
                            .message()
                            .as_string()
                            .unwrap_or_default(),
                    ),
                ),
            }
        }
    }
}

fn read_burst(v: &JsValue) -> (Vec<u8>, End) {
    let Some(arr) = v.dyn_ref::<js_sys::Array>() else {
        return (Vec::new(), End::Failed("unreadable stream".into()));
    };
    let bytes = arr.get(0);
    let bytes = if bytes.is_null() || bytes.is_undefined() {
        Vec::new()
    } else {
        js_sys::Uint8Array::new(&bytes).to_vec()
    };
    let end = match arr.get(1).as_f64() {
        Some(1.0) => End::Done,
        Some(2.0) => End::Quiet,
        Some(3.0) => End::Stopped,
        Some(4.0) => End::Failed(arr.get(2).as_string().unwrap_or_default()),
        _ => End::More,
    };
    (bytes, end)
}
