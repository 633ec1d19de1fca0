//! The request a client sent, as the runtime hands it over. `worker::Request`, which
//! `#[event(fetch)]` would build from it, reads the request's `cf` object on every
//! request (the runtime parses it into a JavaScript object on first access, ~5% of the
//! isolate's time under load); nothing here reads `cf`, so the entry point takes the
//! runtime's request and reads only what the gateway uses: method, path, headers and
//! body, each once.

use worker::wasm_bindgen::JsCast;
use worker::{js_sys, web_sys, ByteStream, Headers, Method};

use crate::api::route::path_and_query;

/// Cloned (the same runtime request) for work that outlives the handler's frame.
#[derive(Clone)]
pub struct ClientRequest {
    raw: web_sys::Request,
    method: Method,
    /// The URL as the runtime serialised it (its path and query are read from it).
    url: String,
    headers: Headers,
    body_used: bool,
}

impl From<web_sys::Request> for ClientRequest {
    fn from(raw: web_sys::Request) -> Self {
        ClientRequest {
            method: Method::from(raw.method()),
            url: raw.url(),
            headers: Headers(raw.headers()),
            raw,
            body_used: false,
        }
    }
}

impl ClientRequest {
    pub fn method(&self) -> Method {
        self.method.clone()
    }

    /// The URL's path (percent-encoded, as sent).
    pub fn path(&self) -> &str {
        path_and_query(&self.url).0
    }

    /// The query string (without `?`; empty without one).
    pub fn query(&self) -> &str {
        path_and_query(&self.url).1
    }

    pub fn headers(&self) -> &Headers {
        &self.headers
    }

    /// The signal that aborts when the client disconnects.
    pub fn signal(&self) -> web_sys::AbortSignal {
        self.raw.signal()
    }

    /// The whole body, read in one piece (the runtime holds it to its declared length).
    pub async fn bytes(&mut self) -> Result<Vec<u8>, String> {
        if std::mem::replace(&mut self.body_used, true) {
            return Err("the body was read already".into());
        }
        let promise = self.raw.array_buffer().map_err(js_message)?;
        let buffer = worker::wasm_bindgen_futures::JsFuture::from(promise)
            .await
            .map_err(js_message)?;
        Ok(js_sys::Uint8Array::new(&buffer).to_vec())
    }

    /// The body as a stream of chunks; `None` when there is none (or it was read).
    pub fn stream(&mut self) -> Option<ByteStream> {
        if std::mem::replace(&mut self.body_used, true) {
            return None;
        }
        let body = self.raw.body()?;
        Some(ByteStream::from(body))
    }
}

fn js_message(e: worker::wasm_bindgen::JsValue) -> String {
    match e.dyn_into::<js_sys::Error>() {
        Ok(e) => e.message().into(),
        Err(e) => e.as_string().unwrap_or_else(|| "a JavaScript error".into()),
    }
}
