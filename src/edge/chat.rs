//! `POST /api/v1/chat/completions`: authenticate, parse, plan, then try each planned
//! endpoint until one answers (falling back on retryable failures).

use std::time::Duration;

use worker::{Context, Delay, Env, Request, Response};

use super::{catalog, config, counters, http, upstream};
use crate::accounts::keys;
use crate::api::sse::{encode_data, DONE};
use crate::api::{generation_id, ChatRequest, GenerationMeta};
use crate::catalog::{ApiFamily, Catalog};
use crate::error::Error;
use crate::limits::Decision;
use crate::providers::stream::{ChatStream, Translator};
use crate::providers::{self, echo, Target};
use crate::routing::{self, Choice};

const DEFAULT_MAX_BODY: u64 = 8 * 1024 * 1024;

pub async fn handle(mut req: Request, env: &Env, _ctx: &Context) -> Result<Response, Error> {
    let auth = req.headers().get("Authorization").ok().flatten();
    let key = keys::bearer(auth.as_deref())?;
    let caller = keys::check_static(key, &config::string(env, "API_KEYS").unwrap_or_default())?;

    let max_body = config::u64(env, "MAX_BODY_BYTES", DEFAULT_MAX_BODY);
    let declared = req
        .headers()
        .get("Content-Length")
        .ok()
        .flatten()
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > max_body) {
        return Err(Error::PayloadTooLarge {
            limit: max_body as usize,
        });
    }
    let body = req
        .bytes()
        .await
        .map_err(|e| Error::bad_request(format!("Could not read the body: {e}")))?;
    if body.len() as u64 > max_body {
        return Err(Error::PayloadTooLarge {
            limit: max_body as usize,
        });
    }
    let chat = ChatRequest::parse(&body)?;
    let cat = catalog::load(env).await?;
    let plan = routing::plan(&cat, &chat)?;

    let limit = if plan[0].is_free() {
        let d = counters::free_model_hit(env, &caller).await?;
        if !d.allowed {
            let e = Error::RateLimited {
                message: format!(
                    "Rate limit exceeded: free-models-per-{}. Retry in {} s.",
                    if d.limit == config::u64(env, "FREE_REQUESTS_PER_MINUTE", 20) {
                        "min"
                    } else {
                        "day"
                    },
                    d.retry_after
                ),
                retry_after_secs: Some(d.retry_after),
                provider: None,
                raw: None,
            };
            return Ok(with_limit(http::error_response(&e), &d));
        }
        Some(d)
    } else {
        None
    };

    let resp = serve(env, &cat, &chat, &plan).await?;
    Ok(match limit {
        Some(d) => with_limit(resp, &d),
        None => resp,
    })
}

fn with_limit(resp: Response, d: &Decision) -> Response {
    http::set(resp.headers(), "X-RateLimit-Limit", &d.limit.to_string());
    http::set(
        resp.headers(),
        "X-RateLimit-Remaining",
        &d.remaining.to_string(),
    );
    // Milliseconds since the epoch, as OpenRouter sends it.
    http::set(
        resp.headers(),
        "X-RateLimit-Reset",
        &(d.reset * 1000).to_string(),
    );
    resp
}

async fn serve(
    env: &Env,
    cat: &Catalog,
    chat: &ChatRequest,
    plan: &[Choice<'_>],
) -> Result<Response, Error> {
    let mut last_err = None;
    for choice in plan {
        let Some(provider) = cat.provider(&choice.endpoint.provider) else {
            continue;
        };
        let meta = GenerationMeta {
            id: generation_id(config::now_secs(), &config::random_bytes(20)),
            created: config::now_secs(),
            model: choice.model.id.clone(),
            provider: provider.name.clone(),
        };
        if provider.api == ApiFamily::Echo {
            return serve_echo(env, chat, choice, &meta).await;
        }
        let target = Target {
            provider,
            model: choice.model,
            endpoint: choice.endpoint,
            base_url: config::string(env, &provider.base_url_var())
                .or_else(|| provider.base_url.clone())
                .unwrap_or_default()
                .trim_end_matches('/')
                .to_string(),
            api_key: config::string(env, &provider.key_secret()),
        };
        match attempt(env, &target, chat, &meta).await {
            Ok(resp) => return Ok(resp),
            Err(e) if e.is_retryable() => last_err = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(last_err
        .unwrap_or_else(|| Error::NoProvider("No provider could serve this request".into())))
}

async fn attempt(
    env: &Env,
    target: &Target<'_>,
    chat: &ChatRequest,
    meta: &GenerationMeta,
) -> Result<Response, Error> {
    let up = providers::build_request(target, chat)?;
    let slug = target.provider.slug.as_str();
    let timeout = config::u64(env, "UPSTREAM_TIMEOUT_MS", 60_000);
    let (mut resp, inflight) = upstream::send(&up, slug, timeout).await?;
    let status = resp.status_code();
    if !(200..300).contains(&status) {
        let retry_after = resp.headers().get("Retry-After").ok().flatten();
        let body = upstream::body(&mut resp, slug, timeout)
            .await
            .unwrap_or_default();
        return Err(providers::upstream_error(
            slug,
            status,
            &body,
            retry_after.as_deref(),
        ));
    }
    if chat.is_stream() {
        let translator = Translator::for_target(target, meta)
            .ok_or_else(|| Error::Internal("no stream translator for this provider".into()))?;
        let stream = ChatStream::new(
            translator,
            meta.clone(),
            target.endpoint.pricing.clone(),
            providers::estimate_prompt_tokens(chat),
        );
        return upstream::stream_through(
            resp,
            inflight,
            stream,
            slug,
            config::u64(env, "STREAM_KEEPALIVE_MS", 15_000),
            config::u64(env, "STREAM_IDLE_TIMEOUT_MS", 120_000),
            Box::new(|_| {}),
        );
    }
    let body = upstream::body(&mut resp, slug, timeout).await?;
    drop(inflight);
    let mut completion = providers::parse_response(target, meta, &body)?;
    if let Some(u) = completion.usage.as_mut() {
        u.cost = Some(target.endpoint.pricing.cost(u));
    }
    http::json(&completion, 200)
}

async fn serve_echo(
    env: &Env,
    chat: &ChatRequest,
    choice: &Choice<'_>,
    meta: &GenerationMeta,
) -> Result<Response, Error> {
    let pricing = &choice.endpoint.pricing;
    if !chat.is_stream() {
        return http::json(&echo::reply(chat, meta, pricing), 200);
    }
    let delay = config::u64(env, "ECHO_STREAM_DELAY_MS", 0);
    let mut pieces: Vec<Vec<u8>> = echo::chunks(chat, meta, pricing)
        .iter()
        .map(encode_data)
        .collect();
    pieces.push(DONE.to_vec());
    let stream = futures_util::stream::unfold(pieces.into_iter(), move |mut it| async move {
        let piece = it.next()?;
        if delay > 0 {
            Delay::from(Duration::from_millis(delay)).await;
        }
        Some((Ok::<Vec<u8>, worker::Error>(piece), it))
    });
    let resp = Response::from_stream(stream).map_err(http::internal)?;
    Ok(resp.with_headers(upstream::sse_headers()))
}
