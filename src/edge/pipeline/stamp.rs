//! What every served reply's headers say: its generation ID, how it was admitted and
//! where the time went (`Server-Timing`), the request limit that counted it
//! (`X-RateLimit-*`), what the account and key have left, and where its session stands.

use worker::Response;

use super::attempt::Clock;
use crate::api::routed::{reset_in, server_timing};
use crate::api::surface::Surface;
use crate::edge::account::Admitted;
use crate::edge::{config, http, session_budget};
use crate::error::Error;
use crate::limits::Decision;
use crate::money::Usd;

/// Stamps a served reply; `leased`: admitted against the isolate's lease.
pub(super) fn stamp(resp: &Response, gen_id: &str, leased: bool, clock: &Clock, answer: &Admitted) {
    let h = resp.headers();
    http::set(h, "X-Generation-Id", gen_id);
    // The gateway's own time: all of it but the waits on upstreams.
    let total = config::now_ms() - clock.arrived;
    let gateway = (total - clock.upstream.get()).max(0.0) as u64;
    let admission = if leased { "lease" } else { "exact" };
    let timing = server_timing(admission, gateway, clock.upstream_ms());
    http::set(h, "Server-Timing", &timing);
    if let Some(v) = answer.session.as_deref() {
        session_budget::headers(h, v);
    }
    if let Some(c) = answer.credits_left {
        http::set(h, "X-Credits-Remaining", &usd(c));
    }
    if let Some(k) = answer.key_left {
        http::set(h, "X-Key-Limit-Remaining", &usd(k));
    }
    if let Some(d) = &answer.limit {
        with_limit(resp, d);
    }
}

fn usd(picos: u64) -> String {
    Usd::from_picos(picos).to_string()
}

/// The 429 of a free-model budget the account's object found spent.
pub(super) fn rate_refusal(d: &Decision, surface: Surface) -> Response {
    let per = if d.period_secs == 60 { "min" } else { "day" };
    let e = Error::RateLimited {
        message: format!(
            "Rate limit exceeded: free-models-per-{per}. Retry in {} s.",
            d.retry_after
        ),
        retry_after_secs: Some(d.retry_after),
        provider: None,
        raw: None,
    };
    let resp = http::error_response_in(&e, surface);
    with_limit(&resp, d);
    resp
}

/// The tightest request limit that counted the request: OpenRouter's `X-RateLimit-*`
/// (its reset in ms since the epoch) and OpenAI's `X-RateLimit-*-Requests` (its reset
/// as a wait, `45s`).
fn with_limit(resp: &Response, d: &Decision) {
    let h = resp.headers();
    let (limit, remaining) = (d.limit.to_string(), d.remaining.to_string());
    http::set(h, "X-RateLimit-Limit", &limit);
    http::set(h, "X-RateLimit-Remaining", &remaining);
    http::set(
        h,
        "X-RateLimit-Reset",
        &d.reset.saturating_mul(1000).to_string(),
    );
    http::set(h, "X-RateLimit-Limit-Requests", &limit);
    http::set(h, "X-RateLimit-Remaining-Requests", &remaining);
    let wait = d.reset.saturating_sub(config::now_secs());
    http::set(h, "X-RateLimit-Reset-Requests", &reset_in(wait));
}
