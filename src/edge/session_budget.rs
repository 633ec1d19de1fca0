//! A request's session budget at the edge: read from the body or the headers
//! (`x-session-id`, `X-Session-Limits`), and what a reply says of it (`X-Session-*`
//! headers, `usage.session`). The budget itself is kept and enforced by the account's
//! object ([`crate::accounts::session`]).

use serde_json::{json, Value};
use worker::{Headers, Request};

use super::http;
use crate::accounts::session::SessionView;
use crate::api::session::{self, SessionAsk};
use crate::api::surface::Incoming;
use crate::error::Error;
use crate::money::{tagged, Usd};

/// The request's session, if it names one.
pub fn read(req: &Request, incoming: &Incoming) -> Result<Option<SessionAsk>, Error> {
    let header = |name: &str| req.headers().get(name).ok().flatten();
    let (id, limits) = (header("x-session-id"), header("x-session-limits"));
    session::read(incoming, id.as_deref(), limits.as_deref())
}

/// `X-Session-Cost`, `X-Session-Remaining-Cost` (with a `max_cost`) and
/// `X-Session-Requests`, as of the request's admission (it counted, its worst case held).
pub fn headers(h: &Headers, v: &SessionView) {
    http::set(h, "X-Session-Cost", &Usd::from_picos(v.cost).to_string());
    if let Some(left) = v.remaining_cost {
        http::set(
            h,
            "X-Session-Remaining-Cost",
            &Usd::from_picos(left).to_string(),
        );
    }
    http::set(h, "X-Session-Requests", &v.requests.to_string());
}

/// What a reply was charged (picodollars), from its usage.
pub fn cost_of(c: &crate::api::ChatCompletion) -> u64 {
    c.usage
        .as_ref()
        .and_then(|u| u.cost)
        .map_or(0, |c| u64::try_from(c.0).unwrap_or(u64::MAX))
}

/// `usage.session` of a reply charged `cost`: the session's figures as of admission,
/// with this request's cost added (its hold given back: what is left of `max_cost`
/// after it and the holds of the requests still running).
pub fn value(v: &SessionView, cost: u64) -> Value {
    let spent = v.cost.saturating_add(cost);
    let remaining = v.max_cost.map(|m| {
        tagged(u128::from(
            m.saturating_sub(spent).saturating_sub(v.others_held),
        ))
    });
    json!({
        "id": v.id,
        "cost": tagged(u128::from(spent)),
        "requests": v.requests,
        "tokens": v.tokens,
        "remaining_cost": remaining,
        "remaining_requests": v.remaining_requests,
    })
}

/// Adds `usage.session` to a reply built as a `Value`.
pub fn usage(reply: &mut Value, v: Option<&SessionView>, cost: u64) {
    if let (Some(v), Some(u)) = (v, reply.get_mut("usage")) {
        crate::api::set_field(u, "session", value(v, cost));
    }
}
