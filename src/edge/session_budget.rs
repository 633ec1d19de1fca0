//! A request's session budget at the edge: read from the body or the headers
//! (`x-session-id`, `X-Session-Limits`), and what a reply says of it (`X-Session-*`
//! headers, `usage.session`). The budget itself is kept and enforced by the account's
//! object ([`crate::accounts::session`]).

use serde_json::Value;
use worker::Headers;

use super::http;
use crate::accounts::session::SessionView;
use crate::api::session::{self, SessionAsk};
use crate::api::surface::Incoming;
use crate::api::ChatCompletion;
use crate::error::Error;
use crate::money::Usd;
use crate::usage::SessionUsage;

/// The request's session, if it names one.
pub fn read(
    req: &super::request::ClientRequest,
    incoming: &Incoming,
) -> Result<Option<SessionAsk>, Error> {
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
fn cost_of(c: &ChatCompletion) -> u64 {
    c.usage
        .as_ref()
        .and_then(|u| u.cost)
        .map_or(0, |c| u64::try_from(c.0).unwrap_or(u64::MAX))
}

/// `usage.session` of a reply charged `cost`: the session's figures as of admission,
/// with this request's cost added (its hold given back: what is left of `max_cost`
/// after it and the holds of the requests still running).
pub fn usage_of(v: &SessionView, cost: u64) -> SessionUsage {
    let spent = v.cost.saturating_add(cost);
    SessionUsage {
        id: v.id.clone(),
        cost: Usd::from_picos(spent),
        requests: v.requests,
        tokens: v.tokens,
        remaining_cost: v
            .max_cost
            .map(|m| Usd::from_picos(m.saturating_sub(spent).saturating_sub(v.others_held))),
        remaining_requests: v.remaining_requests,
    }
}

/// Puts `usage.session` on a reply before it is written in its surface's shape.
pub fn stamp(c: &mut ChatCompletion, v: Option<&SessionView>) {
    let cost = cost_of(c);
    if let (Some(v), Some(u)) = (v, c.usage.as_mut()) {
        u.session = Some(usage_of(v, cost));
    }
}

/// Adds `usage.session` to a provider's own reply passed through as it came (the
/// Messages pass-through), charged what `c` was.
pub fn stamp_native(reply: &mut Value, c: &ChatCompletion, v: Option<&SessionView>) {
    let Some(v) = v else { return };
    if let (Some(u), Ok(s)) = (
        reply.get_mut("usage"),
        serde_json::to_value(usage_of(v, cost_of(c))),
    ) {
        crate::api::set_field(u, "session", s);
    }
}
