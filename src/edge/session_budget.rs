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

/// `usage.session` before the request: the session's figures as of its admission (it
/// counted), what is left of `max_cost` less the holds of the others still running.
/// [`SessionUsage::after`] adds what the request was charged (its hold given back).
pub fn before(v: &SessionView) -> SessionUsage {
    SessionUsage {
        id: v.id.clone(),
        cost: Usd::from_picos(v.cost),
        requests: v.requests,
        tokens: v.tokens,
        remaining_cost: v
            .max_cost
            .map(|m| Usd::from_picos(m.saturating_sub(v.cost).saturating_sub(v.others_held))),
        remaining_requests: v.remaining_requests,
    }
}

/// What a reply was charged, from its usage.
fn cost_of(c: &ChatCompletion) -> Option<Usd> {
    c.usage.as_ref().and_then(|u| u.cost)
}

/// Puts `usage.session` on a reply before it is written in its surface's shape.
pub fn stamp(c: &mut ChatCompletion, v: Option<&SessionView>) {
    if let (Some(v), Some(u)) = (v, c.usage.as_mut()) {
        u.session = Some(before(v).after(u.cost));
    }
}

/// Adds `usage.session` to a provider's own reply passed through as it came (the
/// Messages pass-through), charged what `c` was.
pub fn stamp_native(reply: &mut Value, c: &ChatCompletion, v: Option<&SessionView>) {
    let Some(v) = v else { return };
    if let (Some(u), Ok(s)) = (
        reply.get_mut("usage"),
        serde_json::to_value(before(v).after(cost_of(c))),
    ) {
        crate::api::set_field(u, "session", s);
    }
}
