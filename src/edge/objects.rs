//! The worker's one client of its Durable Objects (`Account`, `Health`, `Counters`) and
//! their one error protocol: a message goes as JSON (a POST; a GET when it has no
//! body) and an error comes back as `{"err": Error}` ([`Answer`]), so that an object's
//! error reaches the caller as the error it is. The reply is decoded into the reply
//! type of the message sent ([`call`]). The `Account` object wraps every reply in
//! `{"ok": ..}` (with status 200, an error too: as it always has, so that isolates and
//! objects of this version and the previous one understand each other during a
//! deploy); `Health` and `Counters` answer the bare reply, and an error with status
//! 500 (their previous version answered its text: read as an internal error).

use serde::{de::DeserializeOwned, Serialize};
use serde_json::Value;
use worker::{Method, Request, RequestInit, Response, Stub};

use super::http::json;

use super::upstream::{read_all, Capped};
use crate::accounts::ops::{Answer, Reply};
use crate::error::Error;

/// How an object answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// `{"ok": reply}` or `{"err": Error}` (`Account`).
    Answer,
    /// The bare reply; `{"err": Error}` with status 500 (`Health`, `Counters`).
    Bare,
}

/// Sends `body` (none: a GET) to `url` of the object `stub`, named `what` in errors,
/// and decodes its answer, of at most `max` bytes, into `T`.
pub async fn call<T: DeserializeOwned>(
    stub: &Stub,
    what: &str,
    url: &str,
    body: Option<String>,
    max: usize,
    shape: Shape,
) -> Result<T, Error> {
    let reply = exchange(stub, what, url, body, max, shape).await?;
    decode(what, reply)
}

/// Decodes the reply an object answered into `T`.
pub fn decode<T: DeserializeOwned>(what: &str, reply: Value) -> Result<T, Error> {
    T::deserialize(reply).map_err(|e| Error::Internal(format!("{what}: {e}")))
}

/// What [`Answer`] is on the wire, read without knowing the reply's type (one copy of
/// this code for every reply type, which [`decode`] then reads from the tree: a
/// smaller worker than parsing the text into each type).
#[derive(serde::Deserialize)]
struct Envelope {
    #[serde(default)]
    ok: Value,
    #[serde(default)]
    err: Option<Error>,
}

/// Sends a message, as [`call`]: the reply, or the object's error.
pub async fn exchange(
    stub: &Stub,
    what: &str,
    url: &str,
    body: Option<String>,
    max: usize,
    shape: Shape,
) -> Result<Value, Error> {
    let internal = |e: String| Error::Internal(format!("{what}: {e}"));
    let method = if body.is_some() {
        Method::Post
    } else {
        Method::Get
    };
    let mut init = RequestInit::new();
    init.with_method(method).with_body(body.map(Into::into));
    let req = Request::new_with_init(url, &init).map_err(|e| internal(e.to_string()))?;
    let resp = stub
        .fetch_with_request(req)
        .await
        .map_err(|e| internal(e.to_string()))?;
    let bytes = read_all(&resp, max).await.map_err(|e| match e {
        Capped::TooLarge => internal(format!("answer over {max} bytes")),
        Capped::Failed(e) => internal(e),
    })?;
    let ok = resp.status_code() == 200;
    if shape == Shape::Bare && ok {
        return serde_json::from_slice(&bytes).map_err(|e| internal(e.to_string()));
    }
    match serde_json::from_slice::<Envelope>(&bytes) {
        Ok(Envelope { err: Some(e), .. }) => Err(e),
        Ok(Envelope { ok: reply, .. }) if ok => Ok(reply),
        // Not an answer (an error page of the runtime, or an object of the previous
        // version): its text.
        _ => Err(internal(String::from_utf8_lossy(&bytes).into_owned())),
    }
}

/// An object's answer `r` in `shape`.
pub fn answer<T: Serialize>(r: Result<T, Error>, shape: Shape) -> worker::Result<Response> {
    let written = match (shape, r) {
        (Shape::Bare, Ok(v)) => json(&v, 200),
        // (The account's answer type: its error is written by the same code.)
        (Shape::Bare, Err(e)) => json(&Answer::<Reply>::Err(e), 500),
        (Shape::Answer, r) => json(&Answer::from(r), 200),
    };
    written.map_err(|e| worker::Error::RustError(e.to_string()))
}
