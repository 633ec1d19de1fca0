//! Vars and secrets, and the clock and randomness the core is handed.

use std::rc::Rc;

use worker::{js_sys, Env};

use crate::settings::Settings;

thread_local! {
    /// The deployment's settings, read once per isolate.
    static SETTINGS: std::cell::OnceCell<Rc<Settings>> = const { std::cell::OnceCell::new() };
    /// Vars and secrets as first read: they are fixed for the life of an isolate (a
    /// deployment's version), and each read from `env` crosses into JavaScript.
    static VARS: std::cell::RefCell<std::collections::HashMap<String, Option<String>>> =
        std::cell::RefCell::new(std::collections::HashMap::new());
}

/// The deployment's settings (every var the request path reads, with its default),
/// read from `env` the first time and kept for the isolate's life.
pub fn settings(env: &Env) -> Rc<Settings> {
    SETTINGS.with(|s| {
        s.get_or_init(|| Rc::new(Settings::from_vars(&|name| string(env, name))))
            .clone()
    })
}

/// A var or secret as a string, if set and not empty: a provider's key or base URL,
/// whose names come from the catalogue.
pub fn string(env: &Env, name: &str) -> Option<String> {
    if let Some(v) = VARS.with(|m| m.borrow().get(name).cloned()) {
        return v;
    }
    let v = env
        .var(name)
        .ok()
        .map(|v| v.to_string())
        .filter(|s| !s.is_empty());
    VARS.with(|m| m.borrow_mut().insert(name.to_string(), v.clone()));
    v
}

pub fn u64(env: &Env, name: &str, default: u64) -> u64 {
    string(env, name)
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(default)
}

/// A test hook's setting (`TEST_FAIL_SETTLES`, ...): read only when `TEST_HOOKS` is
/// set, as the test harness sets it, so that a deployment ignores every hook.
pub fn test_hook(env: &Env, name: &str) -> u64 {
    match string(env, "TEST_HOOKS") {
        Some(_) => u64(env, name, 0),
        None => 0,
    }
}

pub fn now_ms() -> f64 {
    js_sys::Date::now()
}

pub fn now_secs() -> u64 {
    (now_ms() / 1000.0) as u64
}

/// Random bytes for IDs (not for secrets): six from each `Math.random()` (which has
/// 52 random bits), so that an ID costs a few calls into JavaScript, not one per byte.
pub fn random_bytes(n: usize) -> Vec<u8> {
    const SIX_BYTES: f64 = 281_474_976_710_656.0; // 2^48
    let mut out = Vec::with_capacity(n);
    while out.len() < n {
        let draw = (js_sys::Math::random() * SIX_BYTES) as u64;
        let want = n.saturating_sub(out.len()).min(6);
        out.extend(draw.to_le_bytes().into_iter().take(want));
    }
    out
}

/// Cryptographically secure random bytes (`crypto.getRandomValues`), for keys and IDs
/// that must not be guessed.
pub fn secure_random<const N: usize>() -> Result<[u8; N], crate::error::Error> {
    use worker::wasm_bindgen::JsCast;
    let fail = |_| crate::error::Error::Internal("crypto.getRandomValues is unavailable".into());
    let crypto = js_sys::Reflect::get(&js_sys::global(), &"crypto".into()).map_err(fail)?;
    let get: js_sys::Function = js_sys::Reflect::get(&crypto, &"getRandomValues".into())
        .map_err(fail)?
        .dyn_into()
        .map_err(fail)?;
    let arr = js_sys::Uint8Array::new_with_length(N as u32);
    get.call1(&crypto, &arr).map_err(fail)?;
    let mut out = [0u8; N];
    arr.copy_to(&mut out);
    Ok(out)
}

/// Waits `ms` milliseconds; `false` when no timer could be set. Unlike
/// `worker::Delay`, which unwraps `setTimeout` (a panic that aborts the whole wasm
/// instance), this never panics: a background task that the runtime has already cut
/// off from its request gets `false` at once and must stop. A sleep dropped before it
/// ends (a timeout that lost its race) clears its timer.
pub fn sleep(ms: u64) -> Sleep {
    use worker::wasm_bindgen::JsValue;
    let timer: std::rc::Rc<std::cell::RefCell<Option<JsValue>>> = Default::default();
    let slot = timer.clone();
    let promise = js_sys::Promise::new(&mut |resolve, _reject| match set_timeout(
        &resolve, ms as f64,
    ) {
        Ok(id) => *slot.borrow_mut() = Some(id),
        Err(_) => {
            let _ = resolve.call0(&JsValue::UNDEFINED);
        }
    });
    let scheduled = timer.borrow().is_some();
    Sleep {
        inner: worker::wasm_bindgen_futures::JsFuture::from(promise),
        timer,
        scheduled,
    }
}

// The timer functions, imported directly (a lookup on the global object per call, and
// its name converted each time, cost more than the timer itself); `catch`: an error
// is a value, never a panic.
#[worker::wasm_bindgen::prelude::wasm_bindgen]
extern "C" {
    #[wasm_bindgen(js_name = setTimeout, catch)]
    fn set_timeout(
        handler: &js_sys::Function,
        ms: f64,
    ) -> Result<worker::wasm_bindgen::JsValue, worker::wasm_bindgen::JsValue>;
    #[wasm_bindgen(js_name = clearTimeout, catch)]
    fn clear_timeout(
        id: &worker::wasm_bindgen::JsValue,
    ) -> Result<(), worker::wasm_bindgen::JsValue>;
}

pub struct Sleep {
    inner: worker::wasm_bindgen_futures::JsFuture,
    timer: std::rc::Rc<std::cell::RefCell<Option<worker::wasm_bindgen::JsValue>>>,
    scheduled: bool,
}

impl std::future::Future for Sleep {
    type Output = bool;

    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<bool> {
        match std::pin::Pin::new(&mut self.inner).poll(cx) {
            std::task::Poll::Ready(_) => {
                self.timer.borrow_mut().take();
                std::task::Poll::Ready(self.scheduled)
            }
            std::task::Poll::Pending => std::task::Poll::Pending,
        }
    }
}

impl Drop for Sleep {
    fn drop(&mut self) {
        if let Some(id) = self.timer.borrow_mut().take() {
            let _ = clear_timeout(&id);
        }
    }
}

/// Resolves when a request's client disconnects: the request's `signal` aborts then
/// (the `enable_request_signal` compatibility flag). Without a signal it never resolves,
/// and a client that leaves is noticed only when a write to it fails.
pub fn client_gone(
    signal: &worker::web_sys::AbortSignal,
) -> worker::wasm_bindgen_futures::JsFuture {
    use worker::wasm_bindgen::{closure::Closure, JsCast, JsValue};
    let signal = signal.clone();
    let promise = js_sys::Promise::new(&mut |resolve, _reject| {
        if signal.aborted() {
            let _ = resolve.call0(&JsValue::UNDEFINED);
            return;
        }
        let done = Closure::once_into_js(move || {
            let _ = resolve.call0(&JsValue::UNDEFINED);
        });
        let _ = signal.add_event_listener_with_callback("abort", done.unchecked_ref());
    });
    worker::wasm_bindgen_futures::JsFuture::from(promise)
}
