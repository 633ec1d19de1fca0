//! A minimal forwarder: what any Rust worker in front of an upstream must do.

use worker::{event, Context, Env, Fetch, Headers, Method, Request, RequestInit, Response, Result};

#[event(fetch)]
async fn fetch(mut req: Request, env: Env, _ctx: Context) -> Result<Response> {
    let upstream = env.var("UPSTREAM")?.to_string();
    let body: serde_json::Value = serde_json::from_slice(&req.bytes().await?)?;
    let stream = body
        .get("stream")
        .and_then(|v| v.as_bool())
        .unwrap_or(false);
    let headers = Headers::new();
    headers.set("content-type", "application/json")?;
    let mut init = RequestInit::new();
    init.with_method(Method::Post)
        .with_headers(headers)
        .with_body(Some(serde_json::to_string(&body)?.into()));
    let path = req.path();
    let tail = path.strip_prefix("/api/v1").unwrap_or(&path);
    let url = format!("{upstream}{tail}");
    let mut reply = Fetch::Request(Request::new_with_init(&url, &init)?)
        .send()
        .await?;
    if stream {
        return Ok(reply);
    }
    let value: serde_json::Value = serde_json::from_slice(&reply.bytes().await?)?;
    Response::from_json(&value)
}
