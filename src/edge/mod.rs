//! The Workers glue: the only module that touches `worker::`. It reads the request,
//! asks the pure core what to do, and does the I/O (fetch, KV, Durable Objects).

mod account;
mod account_api;
mod admission;
mod background;
mod budget;
mod byok;
mod cache;
mod catalog;
mod config;
mod counters;
mod health;
mod history;
mod http;
mod media;
mod objects;
mod pipeline;
mod preset_api;
mod reader;
mod records;
mod request;
mod session_api;
mod session_budget;
mod sessions;
mod sql;
mod stored;
mod tools;
mod traces;
mod upstream;

use worker::{event, web_sys, Context, Env, Method, Response, Result};

use crate::api::route::{self, Method as RouteMethod, Route};
use crate::api::surface::Surface;
use crate::catalog::listing;
use crate::error::Error;
use background::Background;
use pipeline::Job;
use request::ClientRequest;

#[event(start)]
fn start() {
    // A panic aborts the instance: say so first, with its message, in the Worker's logs.
    std::panic::set_hook(Box::new(|info| worker::console_error!("panic: {info}")));
}

/// The trace queue's consumer (`TRACE_QUEUE`, README "Trace export").
#[event(queue)]
async fn trace_queue(
    batch: worker::MessageBatch<crate::accounts::trace_batch::Queued>,
    env: Env,
    _ctx: Context,
) -> Result<()> {
    traces::consume(batch, &env).await;
    Ok(())
}

/// Takes the runtime's request as it is ([`ClientRequest`]: `worker::Request` would read its
/// `cf` object on every request).
#[event(fetch)]
async fn fetch(req: web_sys::Request, env: Env, ctx: Context) -> Result<Response> {
    let req = ClientRequest::from(req);
    let origin_headers = http::cors_headers(&req);
    if req.method() == Method::Options {
        return http::preflight(origin_headers);
    }
    let ctx = std::rc::Rc::new(Background::new(ctx));
    // Every request gets an ID: a model call's generation ID, and the reference an
    // internal error names (its detail goes to the logs only).
    let request_id = crate::api::generation_id(config::now_secs(), &config::random_bytes(20));
    // Anthropic's clients read Anthropic's error shape, also for a path that is wrong.
    let surface = if req.path().starts_with("/api/v1/messages") {
        Surface::Messages
    } else {
        Surface::Chat
    };
    let resp = match route(req, &env, &ctx, &request_id).await {
        Ok(r) => r,
        Err(e) => {
            if let Error::Internal(detail) = &e {
                worker::console_error!("internal error {request_id}: {detail}");
            }
            http::error_response_for(&e, &request_id, surface)
        }
    };
    Ok(http::with_headers(resp, &origin_headers))
}

/// The health figures of every endpoint, when the `/models` sort asks for throughput
/// or latency.
async fn models_health(
    env: &Env,
    ctx: &std::rc::Rc<Background>,
    cat: &crate::catalog::Catalog,
    filter: &listing::ModelFilter,
) -> std::collections::HashMap<String, crate::routing::health::Summary> {
    if !filter.needs_health() {
        return Default::default();
    }
    let mut keys = Vec::new();
    for m in &cat.models {
        crate::routing::health::push_keys(m, &mut keys);
    }
    health::snapshot(env, ctx, &keys).await
}

async fn route(
    req: ClientRequest,
    env: &Env,
    ctx: &std::rc::Rc<Background>,
    request_id: &str,
) -> std::result::Result<Response, Error> {
    let path = req.path().to_string();
    let method = RouteMethod::parse(req.method().as_ref());
    if path.starts_with("/admin/v1") {
        // The operator's key is checked before the path says anything.
        if let Err(e) = account_api::authorize_admin(&req, env) {
            let mut req = req;
            http::discard_body(&mut req).await;
            return Err(e);
        }
    }
    match route::route(method, &path)? {
        Route::Responses => stored::create(req, env, ctx, request_id).await,
        r @ (Route::StoredResponse(..) | Route::StoredInputItems(_)) => {
            stored::read(req, env, r).await
        }
        r @ (Route::Destinations(_) | Route::Destination(..)) => {
            traces::destinations(req, env, r).await
        }
        r @ (Route::ChatCompletions | Route::Completions | Route::Messages) => {
            pipeline::handle(req, env, ctx, request_id, Job::from(r.surface())).await
        }
        Route::Count(surface) => pipeline::count(req, env, surface).await,
        Route::Embeddings => pipeline::handle(req, env, ctx, request_id, Job::Embeddings).await,
        Route::EmbeddingModels => {
            let cat = catalog::load(env).await?;
            http::json_cached(&listing::embedding_models(&cat), 200)
        }
        r @ (Route::Models | Route::ModelsCount) => {
            let cat = catalog::load(env).await?;
            let filter = listing::ModelFilter::from_query(req.query());
            let health = models_health(env, ctx, &cat, &filter).await;
            let now = config::now_secs();
            if r == Route::ModelsCount {
                http::json_cached(&listing::count(&cat, &filter, &health, now), 200)
            } else {
                http::json_cached(&listing::models(&cat, &filter, &health, now), 200)
            }
        }
        Route::ModelsUser => {
            let mut filter = listing::ModelFilter::from_query(req.query());
            let mut req = req;
            filter.allow_training = Some(account_api::allow_training(&mut req, env).await?);
            let cat = catalog::load(env).await?;
            let health = models_health(env, ctx, &cat, &filter).await;
            http::json(
                &listing::models(&cat, &filter, &health, config::now_secs()),
                200,
            )
        }
        Route::Providers => {
            let cat = catalog::load(env).await?;
            http::json_cached(&listing::providers(&cat), 200)
        }
        Route::ModelEndpoints(id) => model_endpoints(env, ctx, &id).await,
        Route::Admin(r) => account_api::admin(req, env, r).await,
        Route::ModelPage => http::page(env, "/model").await,
        r => account_routes(req, env, r).await,
    }
}

/// The routes of the caller's account: presets, and the others (keys, credits, ...).
async fn account_routes(
    req: ClientRequest,
    env: &Env,
    r: Route,
) -> std::result::Result<Response, Error> {
    match r {
        Route::Presets(p) => preset_api::route(req, env, p).await,
        r => account_api::route(req, env, r).await,
    }
}

/// `GET /models/{author}/{slug}/endpoints`, with each endpoint's health figures.
async fn model_endpoints(
    env: &Env,
    ctx: &std::rc::Rc<Background>,
    id: &str,
) -> std::result::Result<Response, Error> {
    let cat = catalog::load(env).await?;
    let mut keys = Vec::new();
    if let Some(m) = cat.model(id) {
        crate::routing::health::push_keys(m, &mut keys);
    }
    let snap = health::snapshot(env, ctx, &keys).await;
    let body = listing::endpoints(&cat, id, |e| {
        let s = snap
            .get(&crate::routing::endpoint_key(e))
            .copied()
            .unwrap_or_default();
        listing::EndpointHealth::of(&s, config::now_ms() as u64)
    })?;
    http::json_cached(&body, 200)
}
