//! What the Messages surface sends back: the message (Anthropic's `Message`), the
//! error body, and the conversions from the internal chat reply into them.

use serde::Serialize;
use serde_json::{Map, Value};

use crate::api::{ChatCompletion, Usage};
use crate::error::{Availability, Error, ErrorMeta, ErrorType, Trail};

/// A reply message (also the skeleton a stream's `message_start` carries).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Message {
    pub id: String,
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub role: &'static str,
    pub model: String,
    pub content: Vec<ContentBlock>,
    /// Always sent, null while a stream is running.
    pub stop_reason: Option<StopReason>,
    /// Always sent; this gateway does not know which stop sequence matched.
    pub stop_sequence: Option<String>,
    pub usage: MessageUsage,
}

impl Message {
    pub fn new(gen_id: &str, model: &str) -> Self {
        Message {
            id: format!("msg_{gen_id}"),
            kind: "message",
            role: "assistant",
            model: model.to_string(),
            content: Vec::new(),
            stop_reason: None,
            stop_sequence: None,
            usage: MessageUsage::default(),
        }
    }
}

/// A content block of a reply.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ContentBlock {
    Text {
        text: String,
        /// The search results the text cites (a server-tool loop's answer).
        #[serde(skip_serializing_if = "Option::is_none")]
        citations: Option<Vec<super::search::TextCitation>>,
    },
    Thinking {
        thinking: String,
        /// Another provider's reasoning items, packed to come back on the next turn.
        signature: String,
    },
    ToolUse {
        id: String,
        name: String,
        /// The call's arguments (opaque JSON).
        input: Value,
    },
    /// A search the gateway ran for the model (`srvtoolu_...`).
    ServerToolUse {
        id: String,
        name: &'static str,
        input: Value,
    },
    WebSearchToolResult {
        tool_use_id: String,
        content: Vec<super::search::SearchResult>,
    },
    /// A fetch's `web_fetch_result` (the page as a text document) or
    /// `web_fetch_tool_error`.
    WebFetchToolResult { tool_use_id: String, content: Value },
}

impl ContentBlock {
    /// About how many bytes the block's text takes (for a buffer to write it into).
    pub fn text_len(&self) -> usize {
        match self {
            ContentBlock::Text { text, .. } => text.len(),
            ContentBlock::Thinking {
                thinking,
                signature,
            } => thinking.len().saturating_add(signature.len()),
            ContentBlock::ToolUse { input, .. }
            | ContentBlock::ServerToolUse { input, .. }
            | ContentBlock::WebFetchToolResult { content: input, .. } => {
                crate::json::size_hint(input)
            }
            ContentBlock::WebSearchToolResult { content, .. } => content
                .iter()
                .map(|r| {
                    r.url
                        .len()
                        .saturating_add(r.title.len())
                        .saturating_add(r.encrypted_content.len())
                })
                .fold(0, usize::saturating_add),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StopReason {
    EndTurn,
    MaxTokens,
    StopSequence,
    ToolUse,
    PauseTurn,
    Refusal,
}

impl StopReason {
    /// Anthropic's reason: the upstream's own when it is one of Anthropic's, else the
    /// one the chat finish reason stands for; none while nothing has finished.
    pub fn of(finish: Option<&str>, native: Option<&str>) -> Option<Self> {
        let own = match native {
            Some("end_turn") => Some(StopReason::EndTurn),
            Some("max_tokens") => Some(StopReason::MaxTokens),
            Some("stop_sequence") => Some(StopReason::StopSequence),
            Some("tool_use") => Some(StopReason::ToolUse),
            Some("pause_turn") => Some(StopReason::PauseTurn),
            Some("refusal") => Some(StopReason::Refusal),
            _ => None,
        };
        own.or_else(|| {
            finish.map(|f| match f {
                "length" => StopReason::MaxTokens,
                "tool_calls" => StopReason::ToolUse,
                "content_filter" => StopReason::Refusal,
                _ => StopReason::EndTurn,
            })
        })
    }
}

/// Token counts, Anthropic's way: `input_tokens` leaves out the cached ones. The cache
/// counts are absent only from `message_start`, which knows only an estimate.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct MessageUsage {
    pub input_tokens: u64,
    pub output_tokens: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cache_read_input_tokens: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cache_creation_input_tokens: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session: Option<crate::usage::SessionUsage>,
    /// The searches and fetches the gateway ran for the request.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server_tool_use: Option<ServerToolCounts>,
    /// The tier that served in Anthropic's words (`standard`, `priority`); absent where
    /// the upstream said none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service_tier: Option<&'static str>,
}

/// Anthropic's `usage.server_tool_use`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct ServerToolCounts {
    pub web_search_requests: u64,
    pub web_fetch_requests: u64,
}

/// Anthropic's name of a served tier, from the chat reply's (`default`, `flex`,
/// `priority`): it has no flex tier, so anything but priority is `standard`.
pub fn anthropic_tier(chat: Option<&str>) -> Option<&'static str> {
    chat.map(|t| {
        if t == "priority" {
            "priority"
        } else {
            "standard"
        }
    })
}

impl From<&Usage> for MessageUsage {
    fn from(u: &Usage) -> Self {
        let (read, written) = u.prompt_tokens_details.as_ref().map_or((0, 0), |d| {
            (d.cached_tokens, d.cache_write_tokens.unwrap_or(0))
        });
        MessageUsage {
            session: u.session.clone(),
            input_tokens: u.prompt_tokens.saturating_sub(read).saturating_sub(written),
            output_tokens: u.completion_tokens,
            cache_read_input_tokens: Some(read),
            cache_creation_input_tokens: Some(written),
            server_tool_use: u.server_tool_use.map(|s| ServerToolCounts {
                web_search_requests: s.web_search_requests,
                web_fetch_requests: s.web_fetch_requests,
            }),
            service_tier: None,
        }
    }
}

/// The arguments of a chat tool call as the `input` object of a `tool_use` block.
/// Parsed from bytes, as every body is: `from_str` would be a second parser.
pub(super) fn tool_input(arguments: &str) -> Value {
    serde_json::from_slice(arguments.as_bytes()).unwrap_or_else(|_| Value::Object(Map::new()))
}

impl From<&ChatCompletion> for Message {
    fn from(c: &ChatCompletion) -> Self {
        let first = c.choices.first();
        let mut m = Message::new(&c.id, &c.model);
        if let Some(a) = first.map(|ch| &ch.message) {
            let r = a.reasoning.as_deref().unwrap_or("");
            let details = a.reasoning_details.as_ref().and_then(Value::as_array);
            let details = details.filter(|d| !d.is_empty());
            if !r.is_empty() || details.is_some() {
                // Another provider's reasoning items ride in the signature, to come back.
                m.content.push(ContentBlock::Thinking {
                    thinking: r.to_string(),
                    signature: details.map_or_else(String::new, |d| crate::api::pack_reasoning(d)),
                });
            }
            if let Some(t) = a.content.as_deref().filter(|t| !t.is_empty()) {
                m.content.push(ContentBlock::Text {
                    text: t.to_string(),
                    citations: None,
                });
            }
            for call in a.tool_calls.iter().flatten() {
                m.content.push(ContentBlock::ToolUse {
                    id: call.id.clone(),
                    name: call.function.name.clone(),
                    input: tool_input(&call.function.arguments),
                });
            }
        }
        m.stop_reason = StopReason::of(
            first.and_then(|ch| ch.finish_reason.as_deref()),
            first.and_then(|ch| ch.native_finish_reason.as_deref()),
        );
        m.usage = MessageUsage::from(&c.usage.clone().unwrap_or_default());
        m.usage.service_tier = anthropic_tier(c.service_tier.as_deref());
        m
    }
}

/// `{"type": "error", "error": {...}}`, the body of an error reply and the data of a
/// stream's `error` event.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ErrorBody {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub error: ErrorDetail,
}

/// Anthropic's `error` (`type`, `message`) with OpenRouter's additions, which its
/// clients keep as they are: the typed `error_type`, `availability`, and `metadata`
/// with the attempts before (`previous_errors`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ErrorDetail {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub message: String,
    pub error_type: ErrorType,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub availability: Option<Box<Availability>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metadata: Option<ErrorMeta>,
}

impl From<&Error> for ErrorBody {
    fn from(e: &Error) -> Self {
        ErrorBody {
            kind: "error",
            error: ErrorDetail {
                kind: error_type(e),
                message: e.public_message(),
                error_type: e.error_type(),
                availability: e.availability().cloned().map(Box::new),
                metadata: None,
            },
        }
    }
}

impl ErrorBody {
    /// The body of `e` with what the endpoints tried add to it: the `availability`
    /// their failures add up to, and `metadata.previous_errors` (not the upstreams'
    /// raw errors, which Anthropic's clients never got).
    pub fn with_trail(e: &Error, trail: Trail) -> Self {
        let mut body = ErrorBody::from(e);
        let error = &mut body.error;
        if error.availability.is_none() {
            error.availability = trail.availability;
        }
        if !trail.previous_errors.is_empty() {
            error.metadata = Some(ErrorMeta {
                previous_errors: Some(trail.previous_errors),
                ..ErrorMeta::default()
            });
        }
        body
    }
}

/// Anthropic's error type for one of our errors.
pub fn error_type(e: &Error) -> &'static str {
    match e.status() {
        400 | 413 => "invalid_request_error",
        401 => "authentication_error",
        402 => "billing_error",
        403 => "permission_error",
        404 => "not_found_error",
        408 => "timeout_error",
        429 => "rate_limit_error",
        503 | 529 => "overloaded_error",
        _ => "api_error",
    }
}

/// `POST /messages/count_tokens`'s reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct TokenCount {
    pub input_tokens: u64,
}
