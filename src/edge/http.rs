//! Response helpers: JSON bodies, OpenRouter error bodies, CORS.

use serde::Serialize;
use worker::{Headers, Request, Response};

use crate::error::Error;

/// Seconds the public catalogue may be cached by clients and CDNs.
const CATALOG_MAX_AGE: u32 = 60;

pub fn json<T: Serialize>(value: &T, status: u16) -> Result<Response, Error> {
    let body = serde_json::to_vec(value).map_err(|e| Error::Internal(e.to_string()))?;
    let headers = Headers::new();
    set(&headers, "Content-Type", "application/json");
    Ok(Response::from_bytes(body)
        .map_err(internal)?
        .with_status(status)
        .with_headers(headers))
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

pub fn error_response(e: &Error) -> Response {
    let resp = json(&e.body(), e.status()).unwrap_or_else(|_| {
        Response::error("Internal error", 500)
            .unwrap_or_else(|_| Response::empty().expect("empty response"))
    });
    for (k, v) in e.headers() {
        set(resp.headers(), k, &v);
    }
    resp
}

pub fn set(headers: &Headers, name: &str, value: &str) {
    // Only fails on invalid header names/values, which ours never are.
    let _ = headers.set(name, value);
}

pub fn internal(e: worker::Error) -> Error {
    Error::Internal(e.to_string())
}

/// CORS for browser callers: any origin, since every call carries its own key.
pub fn cors_headers(req: &Request) -> Vec<(&'static str, String)> {
    let asked = req
        .headers()
        .get("Access-Control-Request-Headers")
        .ok()
        .flatten()
        .unwrap_or_else(|| "Authorization, Content-Type, HTTP-Referer, X-Title".into());
    vec![
        ("Access-Control-Allow-Origin", "*".into()),
        ("Access-Control-Allow-Methods", "GET, POST, PATCH, DELETE, OPTIONS".into()),
        ("Access-Control-Allow-Headers", asked),
        ("Access-Control-Expose-Headers", "X-RateLimit-Limit, X-RateLimit-Remaining, X-RateLimit-Reset, Retry-After, X-Generation-Id".into()),
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
