//! The `response` object a chat completion becomes, and the output items it and the
//! stream's events share: typed, serialised by serde.

use serde::Serialize;
use serde_json::{Map, Value};

use super::Echo;
use crate::api::{ChatCompletion, Usage};
use crate::money::Usd;

/// A `response` object.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Response {
    pub id: String,
    pub object: &'static str,
    pub created_at: u64,
    pub status: Status,
    pub model: String,
    pub output: Vec<OutputItem>,
    /// Always written (null allowed), as are `incomplete_details`.
    pub error: Option<ResponseError>,
    pub incomplete_details: Option<Incomplete>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output_text: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub usage: Option<ResponseUsage>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub provider: Option<String>,
    /// A failed response's typed error (OpenRouter's `error_type`, which the narrower
    /// `error.code` of OpenAI's set cannot say).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_type: Option<crate::error::ErrorType>,
    /// The request fields echoed (see [`Echo`]), over the defaults of the three a
    /// response always has: `parallel_tool_calls`, `tool_choice`, `tools`.
    #[serde(flatten)]
    pub echo: Map<String, Value>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    InProgress,
    Completed,
    Incomplete,
    Failed,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Incomplete {
    pub reason: &'static str,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ResponseError {
    pub code: &'static str,
    pub message: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ResponseUsage {
    pub input_tokens: u64,
    pub input_tokens_details: InputDetails,
    pub output_tokens: u64,
    pub output_tokens_details: OutputDetails,
    pub total_tokens: u64,
    /// Always written (null when unknown).
    pub cost: Option<Usd>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session: Option<crate::usage::SessionUsage>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct InputDetails {
    pub cached_tokens: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OutputDetails {
    pub reasoning_tokens: u64,
}

impl From<&Usage> for ResponseUsage {
    fn from(u: &Usage) -> Self {
        ResponseUsage {
            session: u.session.clone(),
            input_tokens: u.prompt_tokens,
            input_tokens_details: InputDetails {
                cached_tokens: u
                    .prompt_tokens_details
                    .as_ref()
                    .map_or(0, |d| d.cached_tokens),
            },
            output_tokens: u.completion_tokens,
            output_tokens_details: OutputDetails {
                reasoning_tokens: u
                    .completion_tokens_details
                    .as_ref()
                    .map_or(0, |d| d.reasoning_tokens),
            },
            total_tokens: u.prompt_tokens.saturating_add(u.completion_tokens),
            cost: u.cost,
        }
    }
}

/// One output item.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum OutputItem {
    Message {
        id: String,
        status: Status,
        role: &'static str,
        content: Vec<Part>,
    },
    /// Its text as the summary, and the turn's `reasoning_details` packed into
    /// `encrypted_content`, to come back on the next turn.
    Reasoning {
        id: String,
        summary: Vec<Part>,
        #[serde(skip_serializing_if = "Option::is_none")]
        encrypted_content: Option<String>,
    },
    FunctionCall {
        id: String,
        call_id: String,
        name: String,
        arguments: String,
        status: Status,
    },
    /// A search the gateway's tool loop ran for the model.
    WebSearchCall {
        id: String,
        status: Status,
        action: SearchAction,
    },
    /// The tools an MCP server listed, as the gateway's tool loop offered them.
    McpListTools {
        id: String,
        server_label: String,
        tools: Vec<crate::api::server_turn::McpListed>,
    },
    /// A call the gateway's tool loop made of an MCP server's tool.
    McpCall {
        id: String,
        server_label: String,
        name: String,
        arguments: String,
        output: Option<String>,
        error: Option<String>,
        status: Status,
    },
}

/// A text part: `output_text` (with its annotations) or `summary_text`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Part {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub text: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub annotations: Option<Vec<Annotation>>,
}

/// An `output_text` part's annotation: a web result the text cites, its span in
/// characters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Annotation {
    UrlCitation {
        url: String,
        title: String,
        start_index: usize,
        end_index: usize,
    },
}

/// What a `web_search_call` item did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum SearchAction {
    Search { query: String },
}

impl Part {
    pub fn output_text(text: &str) -> Part {
        Part {
            kind: "output_text",
            text: text.to_string(),
            annotations: Some(Vec::new()),
        }
    }

    pub fn summary_text(text: &str) -> Part {
        Part {
            kind: "summary_text",
            text: text.to_string(),
            annotations: None,
        }
    }
}

impl OutputItem {
    pub fn message(id: &str, text: &str, status: Status) -> Self {
        OutputItem::Message {
            id: id.to_string(),
            status,
            role: "assistant",
            content: vec![Part::output_text(text)],
        }
    }

    pub fn reasoning(id: &str, text: &str, details: &[Value]) -> Self {
        OutputItem::Reasoning {
            id: id.to_string(),
            summary: if text.is_empty() {
                Vec::new()
            } else {
                vec![Part::summary_text(text)]
            },
            encrypted_content: (!details.is_empty()).then(|| crate::api::pack_reasoning(details)),
        }
    }

    pub fn call(id: &str, call_id: &str, name: &str, arguments: &str, status: Status) -> Self {
        OutputItem::FunctionCall {
            id: id.to_string(),
            call_id: call_id.to_string(),
            name: name.to_string(),
            arguments: arguments.to_string(),
            status,
        }
    }

    /// A message's text.
    pub fn text(&self) -> Option<&str> {
        match self {
            OutputItem::Message { content, .. } => content.first().map(|p| p.text.as_str()),
            _ => None,
        }
    }
}

/// `status` and `incomplete_details` of a finished response.
pub(super) fn status(finish_reason: Option<&str>) -> (Status, Option<Incomplete>) {
    let incomplete = |reason| (Status::Incomplete, Some(Incomplete { reason }));
    match finish_reason {
        Some("length") => incomplete("max_output_tokens"),
        Some("content_filter") => incomplete("content_filter"),
        _ => (Status::Completed, None),
    }
}

impl Response {
    /// The `response` object around `output`.
    pub fn new(id: &str, created: u64, model: &str, echo: &Echo, status: Status) -> Self {
        let mut fields = echo.0.clone();
        let defaults = [
            ("parallel_tool_calls", Value::Bool(true)),
            ("tool_choice", Value::from("auto")),
            ("tools", Value::Array(Vec::new())),
        ];
        for (k, v) in defaults {
            fields.entry(k).or_insert(v);
        }
        Response {
            id: id.to_string(),
            object: "response",
            created_at: created,
            status,
            model: model.to_string(),
            output: Vec::new(),
            error: None,
            incomplete_details: None,
            output_text: None,
            usage: None,
            provider: None,
            error_type: None,
            echo: fields,
        }
    }
}

/// A chat completion as a `response` object.
pub fn response(c: &ChatCompletion, echo: &Echo) -> Response {
    let mut output = Vec::new();
    let first = c.choices.first();
    let message = first.map(|ch| &ch.message);
    let reasoning = message.and_then(|m| m.reasoning.as_deref()).unwrap_or("");
    let details = message
        .and_then(|m| m.reasoning_details.as_ref())
        .and_then(Value::as_array)
        .map_or(&[][..], Vec::as_slice);
    if !reasoning.is_empty() || !details.is_empty() {
        output.push(OutputItem::reasoning(
            &format!("rs_{}", c.id),
            reasoning,
            details,
        ));
    }
    let text = message.and_then(|m| m.content.as_deref()).unwrap_or("");
    if !text.is_empty() {
        output.push(OutputItem::message(
            &format!("msg_{}", c.id),
            text,
            Status::Completed,
        ));
    }
    let calls = message.and_then(|m| m.tool_calls.as_ref());
    for (i, call) in calls.into_iter().flatten().enumerate() {
        output.push(OutputItem::call(
            &format!("fc_{}_{i}", c.id),
            &call.id,
            &call.function.name,
            &call.function.arguments,
            Status::Completed,
        ));
    }
    let (st, incomplete) = status(first.and_then(|ch| ch.finish_reason.as_deref()));
    Response {
        output,
        incomplete_details: incomplete,
        output_text: Some(text.to_string()),
        usage: c.usage.as_ref().map(ResponseUsage::from),
        provider: c.provider.clone(),
        ..Response::new(&c.id, c.created, &c.model, echo, st)
    }
}
