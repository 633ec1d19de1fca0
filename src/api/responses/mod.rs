//! The OpenAI Responses surface (`POST /responses`), stateless as on OpenRouter: the
//! whole conversation comes in `input` every time. A request is read into its wire
//! types and converted to a chat request (one pipeline: routing, admission,
//! translation, billing), and the chat reply or chunks are converted back into a
//! `response` object or the Responses event sequence (`response.created` ...
//! `response.completed`), each event numbered.
//!
//! `request` holds the request's wire types and their conversion into the chat
//! request, `reply` the `response` object and its output items, `stream` the events.

mod mcp_items;
mod reply;
mod request;
mod search;
pub mod stored;
mod stream;

use serde_json::{Map, Value};

pub use reply::{
    response, Annotation, Incomplete, InputDetails, OutputDetails, OutputItem, Part, Response,
    ResponseError, ResponseUsage, SearchAction, Status,
};
pub use request::{check_input, FunctionTool, Input, InputItem, ResponsesRequest};
pub use search::{response_with, WEB_SEARCH_TYPES};
pub use stream::StreamEncoder;

use super::ChatRequest;
use crate::error::Result;

/// Request fields echoed in the `response` object, as OpenAI does.
const ECHOED: &[&str] = &[
    "instructions",
    "max_output_tokens",
    "metadata",
    "parallel_tool_calls",
    "temperature",
    "tool_choice",
    "tools",
    "top_p",
    "text",
    "reasoning",
    "user",
];

/// What a reply needs of its request: the fields it echoes.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Echo(pub Map<String, Value>);

impl Echo {
    fn of(body: &Map<String, Value>) -> Echo {
        let mut m = Map::new();
        for k in ECHOED {
            if let Some(v) = body.get(*k).filter(|v| !v.is_null()) {
                m.insert((*k).to_string(), v.clone());
            }
        }
        Echo(m)
    }
}

/// A Responses body as the chat request it asks for, and what its replies echo.
pub fn parse(body: &[u8]) -> Result<(ChatRequest, Echo)> {
    let mut req = ResponsesRequest::parse(body)?;
    let echo = std::mem::take(&mut req.echo);
    Ok((ChatRequest::try_from(req)?, echo))
}

#[cfg(test)]
mod tests;
