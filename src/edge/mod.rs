//! The Workers glue: the only module that touches `worker::`. It reads the request,
//! asks the pure core what to do, and does the I/O (fetch, KV, Durable Objects).

mod account;
mod account_api;
mod catalog;
mod chat;
mod config;
mod counters;
mod health;
mod http;
mod sql;
mod upstream;

use worker::{event, Context, Env, Method, Request, Response, Result};

use crate::catalog::listing;
use crate::error::Error;

#[event(start)]
fn start() {
    console_error_panic_hook::set_once();
}

#[event(fetch)]
async fn fetch(req: Request, env: Env, ctx: Context) -> Result<Response> {
    let origin_headers = http::cors_headers(&req);
    if req.method() == Method::Options {
        return http::preflight(origin_headers);
    }
    let ctx = std::rc::Rc::new(ctx);
    let resp = match route(req, &env, &ctx).await {
        Ok(r) => r,
        Err(e) => http::error_response(&e),
    };
    Ok(http::with_headers(resp, &origin_headers))
}

async fn route(
    req: Request,
    env: &Env,
    ctx: &std::rc::Rc<Context>,
) -> std::result::Result<Response, Error> {
    let path = req.path();
    let method = req.method();
    if let Some(rest) = path.strip_prefix("/admin/v1") {
        let rest = rest.to_string();
        return account_api::admin(req, env, &rest).await;
    }
    let api = match path.strip_prefix("/api/v1") {
        Some(rest) => rest.trim_end_matches('/').to_string(),
        None => {
            return Err(Error::NotFound(format!("No route for {path}")));
        }
    };
    match (method, api.as_str()) {
        (Method::Post, "/chat/completions") => chat::handle(req, env, ctx).await,
        (Method::Get, "/models") => {
            let cat = catalog::load(env).await?;
            let query = req
                .url()
                .map(|u| u.query().unwrap_or("").to_string())
                .unwrap_or_default();
            let filter = listing::ModelFilter::from_query(&query);
            http::json_cached(&listing::models(&cat, &filter), 200)
        }
        (Method::Get, "/providers") => {
            let cat = catalog::load(env).await?;
            http::json_cached(&listing::providers(&cat), 200)
        }
        (Method::Get, p) if p.starts_with("/models/") && p.ends_with("/endpoints") => {
            let id = &p["/models/".len()..p.len() - "/endpoints".len()];
            let id = listing::percent_decode(id);
            let cat = catalog::load(env).await?;
            let snap = health::snapshot(env, ctx).await;
            let body = listing::endpoints(&cat, &id, |e| {
                let s = snap
                    .get(&crate::routing::endpoint_key(e))
                    .copied()
                    .unwrap_or_default();
                listing::EndpointHealth {
                    uptime_last_30m: s.uptime_30m.map(|u| u * 100.0),
                    latency_last_30m: s.latency_ms_30m,
                    throughput_last_30m: s.throughput_30m,
                    down: s.is_down(config::now_ms() as u64),
                }
            })?;
            http::json_cached(&body, 200)
        }
        (_, "/chat/completions" | "/models" | "/providers") => Err(Error::MethodNotAllowed),
        (_, p) => match account_api::route(req, env, p).await {
            Some(r) => r,
            None => Err(Error::NotFound(format!("No route for {path}"))),
        },
    }
}
