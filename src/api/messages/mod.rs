//! The Anthropic Messages surface (`POST /messages`, `POST /messages/count_tokens`), as
//! Claude Code and the `anthropic` SDKs speak it. For an Anthropic endpoint the body
//! goes upstream as sent (cache_control, thinking signatures and betas intact) and the
//! reply comes back as Anthropic sent it; for every other family the request becomes a
//! chat request and the chat reply or chunks become Anthropic's message and events.
//! Errors have Anthropic's shape: `{"type":"error","error":{"type":..,"message":..}}`.
//!
//! `request` holds the wire types of the request, `convert` the conversion into the
//! chat request, `reply` and `stream` the reply, the error body and the stream events
//! with the conversions out of the chat reply and chunks, `gather` an Anthropic stream
//! gathered into the one message a pass-through caller asked for.

mod convert;
mod gather;
mod reply;
mod request;
mod search;
mod stream;

use serde_json::Value;

pub use convert::Converted;
pub use gather::NativeGather;
pub use reply::{
    error_type, ContentBlock, ErrorBody, ErrorDetail, Message, MessageUsage, StopReason, TokenCount,
};
pub use request::{
    ContentBlockParam, DocumentSource, ImageSource, MessageParam, MessagesRequest, Metadata, Role,
    TextBlockParam, TextOr, ThinkingBlockParam, ThinkingConfig, ToolChoice, ToolParam,
    ToolResultBlockParam, ToolUseBlockParam,
};
pub use search::{message_with, search_blocks, SearchResult, TextCitation};
pub use stream::{error_event, BlockDelta, MessageDelta, StreamEncoder, StreamEvent};

use super::ChatCompletion;
use crate::error::{Error, Result};

/// What a `web_search_*` server tool without `max_uses` may run here: the gateway sets
/// it (Anthropic's own default is unbounded, which no reservation can cover).
pub const DEFAULT_MAX_SEARCHES: u64 = 10;

/// A Messages body, read once from bytes, as the chat request (for endpoints of other
/// families) and what in it only an Anthropic endpoint can serve; and the body itself,
/// which is what an Anthropic endpoint gets ([`native_body`]): passed through opaque,
/// so it stays a JSON value.
pub fn convert(body: &[u8]) -> Result<(Converted, Value)> {
    let (req, body) = MessagesRequest::parse(body)?;
    Ok((Converted::try_from(req)?, body))
}

/// Anthropic's error body.
pub fn error_body(e: &Error) -> ErrorBody {
    ErrorBody::from(e)
}

/// Anthropic's error body with what the endpoints tried add to it.
pub fn error_body_with(e: &Error, trail: crate::error::Trail) -> ErrorBody {
    ErrorBody::with_trail(e, trail)
}

/// A chat completion as an Anthropic message.
pub fn reply(c: &ChatCompletion) -> Message {
    Message::from(c)
}

/// A `count_tokens` body, read as [`convert`] reads a Messages body: it has no
/// `max_tokens` (the conversion, which requires one, gets a placeholder, taken out
/// of the chat request again).
pub fn convert_count(body: &[u8]) -> Result<(Converted, Value)> {
    let (mut req, body) = MessagesRequest::parse(body)?;
    req.max_tokens = Some(1);
    let mut converted = Converted::try_from(req)?;
    converted.chat.max_tokens = None;
    Ok((converted, body))
}

/// The body an Anthropic endpoint gets for a Messages request: the caller's own,
/// with the upstream model ID and without the gateway's fields. A `max_tokens` above
/// `ceiling` (what the endpoint generates at most) is lowered to it, and a thinking
/// budget with it, so that the budget stays below `max_tokens` as Anthropic requires.
/// The body is passed through opaque (a JSON value, not a type: what Anthropic adds
/// goes through untouched): only these fields are touched.
pub fn native_body(body: &Value, upstream_model: &str, ceiling: u64) -> Value {
    let mut b = body.clone();
    let Some(o) = b.as_object_mut() else {
        return b;
    };
    o.insert("model".into(), Value::from(upstream_model));
    super::strip_gateway_fields(o);
    // A web search tool runs at most what was reserved for it.
    let tools = o.get_mut("tools").and_then(Value::as_array_mut);
    for t in tools.into_iter().flatten().filter_map(Value::as_object_mut) {
        let search = t
            .get("type")
            .and_then(Value::as_str)
            .is_some_and(|ty| ty.starts_with("web_search_"));
        if search && !t.contains_key("max_uses") {
            t.insert("max_uses".into(), Value::from(DEFAULT_MAX_SEARCHES));
        }
    }
    let asked = o.get("max_tokens").and_then(Value::as_u64);
    if asked.is_some_and(|a| a > ceiling) {
        o.insert("max_tokens".into(), Value::from(ceiling));
        let budget = o
            .get_mut("thinking")
            .and_then(|t| t.get_mut("budget_tokens"));
        if let Some(bt) = budget {
            if bt.as_u64().is_some_and(|b| b >= ceiling) {
                *bt = Value::from(ceiling.saturating_sub(1).max(1024));
            }
        }
    }
    b
}

#[cfg(test)]
mod tests;
