//! `POST /api/v1/chat/completions`: authenticate, parse, plan, then try each planned
//! endpoint until one answers (falling back on retryable failures).

use std::rc::Rc;
use std::time::Duration;

use worker::{Context, Delay, Env, Request, Response};

use super::{catalog, config, counters, health, http, upstream};
use crate::accounts::keys;
use crate::api::sse::{encode_data, DONE};
use crate::api::{generation_id, ChatRequest, GenerationMeta};
use crate::catalog::ApiFamily;
use crate::error::Error;
use crate::limits::{Decision, Window};
use crate::providers::stream::{ChatStream, Translator};
use crate::providers::{self, echo, Target};
use crate::routing::health::Outcome;
use crate::routing::{self, Choice, RouteContext};

const DEFAULT_MAX_BODY: u64 = 8 * 1024 * 1024;

pub async fn handle(mut req: Request, env: &Env, ctx: &Rc<Context>) -> Result<Response, Error> {
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
    let health = health::snapshot(env, ctx).await;
    let route_ctx = RouteContext {
        allow_training: config::string(env, "ALLOW_TRAINING").is_some_and(|v| v == "true"),
        health: &health,
        now_ms: config::now_ms() as u64,
    };
    let mut random = || worker::js_sys::Math::random();
    let plan = routing::plan(&cat, &chat, &route_ctx, &mut random)?;

    let limit = if plan[0].is_free() {
        let d = counters::free_model_hit(env, &caller).await?;
        if !d.allowed {
            let per = if d.limit == config::u64(env, "FREE_REQUESTS_PER_MINUTE", 20) {
                "min"
            } else {
                "day"
            };
            let e = Error::RateLimited {
                message: format!(
                    "Rate limit exceeded: free-models-per-{per}. Retry in {} s.",
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

    let resp = serve(env, ctx, &chat, &plan).await?;
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

/// Counts the request against the upstream's own declared limits (free tiers);
/// `Err` with the wait when one is spent.
async fn upstream_quota(env: &Env, choice: &Choice<'_>, prompt_tokens: u64) -> Result<(), Error> {
    let Some(l) = choice.endpoint.limits.as_ref() else {
        return Ok(());
    };
    let mut windows = Vec::new();
    if let Some(n) = l.requests_per_minute {
        windows.push(Window::requests(n, 60));
    }
    if let Some(n) = l.requests_per_day {
        windows.push(Window::requests(n, 86_400));
    }
    if let Some(n) = l.tokens_per_minute {
        windows.push(Window {
            limit: n,
            period_secs: 60,
            cost: prompt_tokens,
            name: "tok".into(),
        });
    }
    let d = counters::hit(env, &format!("quota:{}", choice.key()), windows).await?;
    if d.allowed {
        return Ok(());
    }
    Err(Error::RateLimited {
        message: format!(
            "{} is temporarily rate-limited upstream: its quota is spent. Retry in {} s.",
            choice.id, d.retry_after
        ),
        retry_after_secs: Some(d.retry_after),
        provider: None,
        raw: None,
    })
}

async fn serve(
    env: &Env,
    ctx: &Rc<Context>,
    chat: &ChatRequest,
    plan: &[Choice<'_>],
) -> Result<Response, Error> {
    let mut last_err: Option<Error> = None;
    let prompt_tokens = providers::estimate_prompt_tokens(chat);
    for choice in plan {
        let provider = choice.provider;
        let meta = GenerationMeta {
            id: generation_id(config::now_secs(), &config::random_bytes(20)),
            created: config::now_secs(),
            model: choice.id.clone(),
            provider: provider.name.clone(),
        };
        if provider.api == ApiFamily::Echo {
            return serve_echo(env, chat, choice, &meta).await;
        }
        if let Err(e) = upstream_quota(env, choice, prompt_tokens).await {
            last_err = Some(pick(last_err, e));
            continue;
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
        let started = config::now_ms();
        match attempt(env, ctx, &target, chat, &meta, choice.key(), started).await {
            Ok(resp) => return Ok(resp),
            Err(e) => {
                // A missing key or a bad request says nothing of the endpoint's health.
                if e.is_retryable() && !matches!(e, Error::NoProvider(_)) {
                    let outcome = Outcome {
                        ok: false,
                        latency_ms: (config::now_ms() - started) as u64,
                        at_ms: config::now_ms() as u64,
                        ..Default::default()
                    };
                    health::report(env, ctx, choice.key(), outcome);
                }
                if !e.is_retryable() {
                    return Err(e);
                }
                last_err = Some(pick(last_err, e));
            }
        }
    }
    Err(last_err
        .unwrap_or_else(|| Error::NoProvider("No provider could serve this request".into())))
}

/// Of two failures, the one to report: a configured provider's error over a missing key.
fn pick(prev: Option<Error>, next: Error) -> Error {
    match prev {
        Some(p) if matches!(next, Error::NoProvider(_)) => p,
        _ => next,
    }
}

async fn attempt(
    env: &Env,
    ctx: &Rc<Context>,
    target: &Target<'_>,
    chat: &ChatRequest,
    meta: &GenerationMeta,
    key: String,
    started: f64,
) -> Result<Response, Error> {
    let up = providers::build_request(target, chat)?;
    let slug = target.provider.slug.as_str();
    let timeout = config::u64(env, "UPSTREAM_TIMEOUT_MS", 60_000);
    let (mut resp, inflight) = upstream::send(&up, slug, timeout).await?;
    let status = resp.status_code();
    let first_byte = config::now_ms();
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
    let latency_ms = (first_byte - started) as u64;
    if chat.is_stream() {
        let translator = Translator::for_target(target, meta)
            .ok_or_else(|| Error::Internal("no stream translator for this provider".into()))?;
        let stream = ChatStream::new(
            translator,
            meta.clone(),
            target.endpoint.pricing.clone(),
            providers::estimate_prompt_tokens(chat),
        );
        let (env2, ctx2) = (env.clone(), ctx.clone());
        let on_end = Box::new(move |s: &ChatStream| {
            let now = config::now_ms();
            let ok = s.finish_reason() != Some("error");
            let outcome = Outcome {
                ok,
                latency_ms,
                tokens: s.final_usage().completion_tokens,
                generation_ms: (now - first_byte) as u64,
                at_ms: now as u64,
            };
            health::report(&env2, &ctx2, key, outcome);
        });
        return upstream::stream_through(
            resp,
            inflight,
            stream,
            slug,
            config::u64(env, "STREAM_KEEPALIVE_MS", 15_000),
            config::u64(env, "STREAM_IDLE_TIMEOUT_MS", 120_000),
            on_end,
        );
    }
    let body = upstream::body(&mut resp, slug, timeout).await?;
    drop(inflight);
    let mut completion = providers::parse_response(target, meta, &body)?;
    let now = config::now_ms();
    let tokens = completion.usage.as_ref().map_or(0, |u| u.completion_tokens);
    health::report(
        env,
        ctx,
        key,
        Outcome {
            ok: true,
            latency_ms,
            tokens,
            generation_ms: (now - first_byte) as u64,
            at_ms: now as u64,
        },
    );
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
