//! Response helpers: JSON bodies, OpenRouter error bodies, CORS.

use serde::Serialize;
use worker::{Headers, Response};

use super::request::ClientRequest;

use crate::api::surface::{ErrorReply, Surface};
use crate::error::Error;

/// Seconds the public catalogue may be cached by clients and CDNs.
const CATALOG_MAX_AGE: u32 = 60;

pub fn json<T: Serialize>(value: &T, status: u16) -> Result<Response, Error> {
    let body = serde_json::to_vec(value).map_err(|e| Error::Internal(e.to_string()))?;
    json_bytes(body, status)
}

pub fn json_bytes(body: Vec<u8>, status: u16) -> Result<Response, Error> {
    let headers = Headers::new();
    set(&headers, "Content-Type", "application/json");
    Ok(Response::from_bytes(body)
        .map_err(internal)?
        .with_status(status)
        .with_headers(headers))
}

/// A reply built as a `Value`, its tagged USD amounts written as exact numbers, into
/// a buffer of about its size ([`crate::json::size_hint`]).
pub fn json_value(value: &serde_json::Value, status: u16) -> Result<Response, Error> {
    let body = crate::json::to_vec_sized(value, crate::money::Exact(value))
        .map_err(|e| Error::Internal(e.to_string()))?;
    json_bytes(body, status)
}

/// A surface's reply, written by its own type into a buffer of about its size.
pub fn reply(reply: &crate::api::surface::Reply) -> Result<Response, Error> {
    json_bytes(reply.to_vec()?, 200)
}

/// JSON that clients may cache briefly (the public catalogue).
pub fn json_cached<T: Serialize>(value: &T, status: u16) -> Result<Response, Error> {
    let resp = json(value, status)?;
    set(
        resp.headers(),
        "Cache-Control",
        &format!("public, max-age={CATALOG_MAX_AGE}"),
    );
    Ok(resp)
}

/// An error in the body shape of `surface`'s clients (Anthropic's for Messages).
pub fn error_response_in(e: &Error, surface: Surface) -> Response {
    error_response_with(e, &surface.error_body(e))
}

/// The answer for `e` with `body`: its status and headers (`Retry-After`).
pub fn error_response_with(e: &Error, body: &crate::api::surface::ErrorReply) -> Response {
    let resp = match json(body, e.status()) {
        Ok(r) => r,
        Err(_) => plain_500(),
    };
    for (k, v) in e.headers() {
        set(resp.headers(), k, &v);
    }
    resp
}

/// An error answer that names the request: an internal error says which request (the
/// detail is in the logs under the same ID), and the ID goes in `X-Generation-Id`.
pub fn error_response_for(e: &Error, request_id: &str, surface: Surface) -> Response {
    let resp = if let Error::Internal(_) = e {
        let message = format!("Internal error (reference {request_id})");
        let mut body = surface.error_body(e);
        match &mut body {
            ErrorReply::Messages(b) => b.error.message = message,
            ErrorReply::OpenRouter(b) => b.error.message = message,
        }
        let r = json(&body, 500).unwrap_or_else(|_| plain_500());
        set(r.headers(), "X-Generation-Id", request_id);
        r
    } else {
        error_response_in(e, surface)
    };
    resp
}

fn plain_500() -> Response {
    worker::ResponseBuilder::new()
        .with_status(500)
        .fixed(b"Internal error".to_vec())
}

/// The body length a request declares (`Content-Length`), if it does.
fn declared_length(req: &ClientRequest) -> Option<u64> {
    req.headers()
        .get("Content-Length")
        .ok()
        .flatten()
        .and_then(|v| v.trim().parse::<u64>().ok())
}

/// The most a refused request's body is read and dropped, so that the client's
/// kept-alive connection stays usable for its next request. A body left unread makes the
/// runtime close the connection, which clients that reuse it see as a failed request;
/// past this bound, closing it is the cheaper outcome.
const DRAIN_LIMIT: u64 = 1024 * 1024;

/// Reads and drops what is left of a body that an early refusal (a bad key, a body over
/// the cap) leaves unread, up to [`DRAIN_LIMIT`] bytes.
async fn drain(req: &mut ClientRequest) {
    if declared_length(req).is_some_and(|n| n > DRAIN_LIMIT) {
        return;
    }
    if let Some(mut stream) = req.stream() {
        drain_stream(&mut stream, 0).await;
    }
}

async fn drain_stream(stream: &mut worker::ByteStream, already: u64) {
    use futures_util::StreamExt;
    let mut seen = already;
    while seen <= DRAIN_LIMIT {
        match stream.next().await {
            Some(Ok(chunk)) => seen = seen.saturating_add(chunk.len() as u64),
            _ => return,
        }
    }
}

/// Drops the unread body of a request refused before its body mattered.
pub async fn discard_body(req: &mut ClientRequest) {
    if declared_length(req) != Some(0) {
        drain(req).await;
    }
}

/// Reads a request body of at most `max` bytes: a declared `Content-Length` over it is
/// refused without keeping it, and a body without one (chunked) is counted as it arrives
/// and refused as soon as it passes the cap. Either way the rest is drained (up to
/// [`DRAIN_LIMIT`]) before the refusal is answered.
pub async fn read_body(req: &mut ClientRequest, max: usize) -> Result<Vec<u8>, Error> {
    use futures_util::StreamExt;
    let too_large = || Error::PayloadTooLarge { limit: max };
    let declared = declared_length(req);
    if declared.is_some_and(|n| n > max as u64) {
        drain(req).await;
        return Err(too_large());
    }
    if declared.is_some() {
        // The runtime holds a body to its declared length: read in one piece (a
        // stream read chunk by chunk through wasm costs more than the parse).
        return req
            .bytes()
            .await
            .map_err(|e| Error::bad_request(format!("Could not read the body: {e}")));
    }
    let mut body = Vec::new();
    let mut stream = match req.stream() {
        Some(s) => s,
        // No body at all.
        None => return Ok(Vec::new()),
    };
    while let Some(chunk) = stream.next().await {
        let chunk =
            chunk.map_err(|e| Error::bad_request(format!("Could not read the body: {e}")))?;
        if body.len().saturating_add(chunk.len()) > max {
            drain_stream(&mut stream, body.len().saturating_add(chunk.len()) as u64).await;
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

pub fn set(headers: &Headers, name: &str, value: &str) {
    // Only fails on invalid header names/values, which ours never are.
    let _ = headers.set(name, value);
}

pub fn internal(e: worker::Error) -> Error {
    Error::Internal(e.to_string())
}

/// CORS for browser callers: any origin, since every call carries its own key.
pub fn cors_headers(req: &ClientRequest) -> Vec<(&'static str, String)> {
    let asked = req
        .headers()
        .get("Access-Control-Request-Headers")
        .ok()
        .flatten()
        .map(|h| crate::error::truncate(&h, 1024).to_string())
        .unwrap_or_else(|| "Authorization, Content-Type, HTTP-Referer, X-Title".into());
    vec![
        ("Access-Control-Allow-Origin", "*".into()),
        ("Access-Control-Allow-Methods", "GET, POST, PATCH, DELETE, OPTIONS".into()),
        ("Access-Control-Allow-Headers", asked),
        ("Access-Control-Expose-Headers", "X-RateLimit-Limit, X-RateLimit-Remaining, X-RateLimit-Reset, X-RateLimit-Limit-Requests, X-RateLimit-Remaining-Requests, X-RateLimit-Reset-Requests, X-Credits-Remaining, X-Key-Limit-Remaining, Server-Timing, Retry-After, X-Generation-Id, X-OpenRouter-Cache-Status, X-OpenRouter-Cache-Age, X-OpenRouter-Cache-TTL, X-OpenRouter-Cache-Source-Id".into()),
        ("Access-Control-Max-Age", "86400".into()),
    ]
}

pub fn preflight(headers: Vec<(&'static str, String)>) -> worker::Result<Response> {
    Ok(with_headers(Response::empty()?.with_status(204), &headers))
}

pub fn with_headers(resp: Response, headers: &[(&'static str, String)]) -> Response {
    for (k, v) in headers {
        set(resp.headers(), k, v);
    }
    resp
}

/// The headers `public/_headers` gives the static pages, for a page the worker serves.
const PAGE_HEADERS: [(&str, &str); 4] = [
    (
        "Content-Security-Policy",
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob: https:; connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
    ),
    ("X-Content-Type-Options", "nosniff"),
    ("X-Frame-Options", "DENY"),
    ("Referrer-Policy", "no-referrer"),
];

/// A static page at another path than its own (`/models/{author}/{slug}` is the
/// `model.html` page): read from the assets binding, served with the pages' headers.
pub async fn page(env: &worker::Env, asset: &str) -> Result<Response, Error> {
    let assets = env.assets("ASSETS").map_err(internal)?;
    let mut found = assets
        .fetch(format!("https://assets.invalid{asset}"), None)
        .await
        .map_err(internal)?;
    if found.status_code() != 200 {
        return Err(Error::Internal(format!(
            "page asset {asset}: HTTP {}",
            found.status_code()
        )));
    }
    let body = found.bytes().await.map_err(internal)?;
    let headers = Headers::new();
    set(&headers, "Content-Type", "text/html; charset=utf-8");
    for (k, v) in PAGE_HEADERS {
        set(&headers, k, v);
    }
    Ok(Response::from_bytes(body)
        .map_err(internal)?
        .with_headers(headers))
}
