//! An Anthropic reply read into the chat completion: text, thinking as reasoning (and
//! `reasoning_details` that carry its signature back), tool calls, a JSON answer given
//! as a forced tool call, and usage with cache reads and writes.

use std::borrow::Cow;

use serde::Deserialize;
use serde_json::{json, Value};

use super::{JSON_TOOL, REASONING_FORMAT};
use crate::api::{
    AssistantMessage, ChatCompletion, Choice, FunctionCall, GenerationMeta, PromptTokensDetails,
    ToolCall, Usage,
};
use crate::error::Result;
use crate::providers::{invalid_reply, normalize_finish_reason};

/// Anthropic's usage object; counts it leaves out (or sends as null) are 0.
#[derive(Debug, Default, Deserialize)]
pub(super) struct UsageIn {
    #[serde(default)]
    pub(super) input_tokens: Option<u64>,
    #[serde(default)]
    pub(super) output_tokens: Option<u64>,
    #[serde(default)]
    pub(super) cache_read_input_tokens: Option<u64>,
    #[serde(default)]
    pub(super) cache_creation_input_tokens: Option<u64>,
    /// The writes by TTL.
    #[serde(default)]
    pub(super) cache_creation: Option<CacheCreationIn>,
    #[serde(default)]
    pub(super) server_tool_use: Option<ServerToolUseIn>,
}

#[derive(Debug, Deserialize, Default)]
pub(super) struct ServerToolUseIn {
    #[serde(default)]
    pub(super) web_search_requests: u64,
}

#[derive(Debug, Deserialize, Default)]
pub(super) struct CacheCreationIn {
    #[serde(default)]
    ephemeral_1h_input_tokens: Option<u64>,
}

impl UsageIn {
    pub(super) fn usage(&self) -> Usage {
        let (read, written) = (
            self.cache_read_input_tokens.unwrap_or(0),
            self.cache_creation_input_tokens.unwrap_or(0),
        );
        let mut usage = Usage::new(
            self.input_tokens
                .unwrap_or(0)
                .saturating_add(read)
                .saturating_add(written),
            self.output_tokens.unwrap_or(0),
        );
        usage.web_searches = self
            .server_tool_use
            .as_ref()
            .map_or(0, |s| s.web_search_requests);
        if read > 0 || written > 0 {
            usage.prompt_tokens_details = Some(PromptTokensDetails {
                cached_tokens: read,
                cache_write_tokens: Some(written),
                cache_write_1h_tokens: self
                    .cache_creation
                    .as_ref()
                    .and_then(|c| c.ephemeral_1h_input_tokens)
                    .unwrap_or(0)
                    .min(written),
            });
        }
        usage
    }
}

/// A thinking block (or a streamed piece of one) as OpenRouter's `reasoning.text` item:
/// its text and, once known, the signature Anthropic needs to see it again.
pub(super) fn reasoning_text(index: usize, text: &str, signature: Option<&str>) -> Value {
    let mut v =
        json!({"type": "reasoning.text", "text": text, "format": REASONING_FORMAT, "index": index});
    if let Some(sig) = signature.filter(|s| !s.is_empty()) {
        crate::api::set_field(&mut v, "signature", json!(sig));
    }
    v
}

/// A redacted thinking block as a `reasoning.encrypted` item.
pub(super) fn reasoning_encrypted(index: usize, data: Option<&Value>) -> Value {
    json!({"type": "reasoning.encrypted", "data": data.cloned().unwrap_or_default(),
           "format": REASONING_FORMAT, "index": index})
}

/// A Messages API reply: only what the translation reads.
#[derive(Debug, Deserialize)]
struct Reply<'a> {
    #[serde(default, borrow)]
    content: Option<Vec<ReplyBlock<'a>>>,
    #[serde(default, borrow)]
    stop_reason: Option<Cow<'a, str>>,
    #[serde(default)]
    usage: Option<UsageIn>,
}

/// One content block of a reply, every type in one shape.
#[derive(Debug, Default, Deserialize)]
struct ReplyBlock<'a> {
    #[serde(rename = "type", default, borrow)]
    kind: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    text: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    thinking: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    signature: Option<Cow<'a, str>>,
    /// A redacted thinking block's opaque data.
    #[serde(default)]
    data: Option<Value>,
    #[serde(default, borrow)]
    id: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    name: Option<Cow<'a, str>>,
    #[serde(default)]
    input: Option<Value>,
    /// A text block's citations (of web search results).
    #[serde(default)]
    citations: Option<Vec<CitationIn>>,
}

/// A citation of a web search result (`web_search_result_location`), as Anthropic
/// writes it.
#[derive(Debug, Deserialize)]
pub(super) struct CitationIn {
    #[serde(rename = "type", default)]
    kind: String,
    /// Absent from citations of documents (`char_location`, ...), which are left out.
    #[serde(default)]
    url: String,
    #[serde(default)]
    title: Option<String>,
    #[serde(default)]
    cited_text: Option<String>,
}

/// The query annotation of Anthropic's own search call, from its `input`.
pub(super) fn search_query(input: Option<Value>) -> Option<Value> {
    #[derive(Deserialize)]
    struct Input {
        query: String,
    }
    let i: Input = serde_json::from_value(input?).ok()?;
    Some(crate::api::server_turn::query_annotation(&i.query))
}

/// A text block's citations of web search results as `url_citation` annotations
/// spanning the block (characters `start..end` of the reply's text); `None` when it
/// has none.
pub(super) fn annotations(citations: Vec<CitationIn>, start: usize, end: usize) -> Option<Value> {
    let list: Vec<Value> = citations
        .into_iter()
        .filter(|c| c.kind == "web_search_result_location")
        .map(|c| {
            let cited = crate::api::server_turn::Cited {
                url: c.url,
                title: c.title.unwrap_or_default(),
                content: c.cited_text.unwrap_or_default(),
                start_index: start,
                end_index: end,
            };
            cited.annotation()
        })
        .collect();
    (!list.is_empty()).then_some(Value::Array(list))
}

/// What a reply's blocks said, gathered.
#[derive(Debug, Default)]
struct Said {
    text: String,
    reasoning: String,
    details: Vec<Value>,
    calls: Vec<ToolCall>,
    /// The answer came as the forced [`JSON_TOOL`] call.
    json_answer: bool,
    /// The text's citations of web search results, as `url_citation` annotations.
    annotations: Vec<Value>,
    /// The characters of `text`.
    chars: usize,
}

impl Said {
    fn block(&mut self, i: usize, b: ReplyBlock<'_>) {
        match b.kind.as_deref() {
            Some("text") => {
                let text = b.text.as_deref().unwrap_or("");
                let start = self.chars;
                self.text.push_str(text);
                self.chars = start.saturating_add(text.chars().count());
                let end = self.chars;
                if let Some(Value::Array(a)) = b.citations.and_then(|c| annotations(c, start, end))
                {
                    self.annotations.extend(a);
                }
            }
            Some("thinking") => {
                let thinking = b.thinking.as_deref().unwrap_or("");
                self.reasoning.push_str(thinking);
                self.details
                    .push(reasoning_text(i, thinking, b.signature.as_deref()));
            }
            Some("redacted_thinking") => self.details.push(reasoning_encrypted(i, b.data.as_ref())),
            Some("server_tool_use") => self.annotations.extend(search_query(b.input)),
            Some("tool_use") => {
                let input = b.input.unwrap_or_else(|| json!({}));
                let name = b.name.unwrap_or_default();
                if name == JSON_TOOL {
                    self.text.push_str(&input.to_string());
                    self.json_answer = true;
                } else {
                    self.calls.push(ToolCall {
                        id: b.id.unwrap_or_default().into_owned(),
                        kind: "function".into(),
                        function: FunctionCall {
                            name: name.into_owned(),
                            arguments: input.to_string(),
                        },
                    });
                }
            }
            _ => {}
        }
    }

    fn message(self) -> AssistantMessage {
        let Said {
            text,
            reasoning,
            details,
            calls,
            annotations,
            ..
        } = self;
        AssistantMessage {
            role: "assistant".into(),
            content: (!text.is_empty() || calls.is_empty()).then_some(text),
            refusal: None,
            reasoning: (!reasoning.is_empty()).then_some(reasoning),
            tool_calls: (!calls.is_empty()).then_some(calls),
            reasoning_details: (!details.is_empty()).then_some(Value::Array(details)),
            annotations: (!annotations.is_empty()).then_some(Value::Array(annotations)),
            ..Default::default()
        }
    }
}

pub fn parse_response(
    provider: &str,
    meta: &GenerationMeta,
    body: &[u8],
) -> Result<ChatCompletion> {
    let reply: Reply =
        serde_json::from_slice(body).map_err(|e| invalid_reply(provider, e, body))?;
    let blocks = reply
        .content
        .ok_or_else(|| invalid_reply(provider, "no content", body))?;
    let mut said = Said::default();
    for (i, b) in blocks.into_iter().enumerate() {
        said.block(i, b);
    }
    let native = reply.stop_reason.as_deref().unwrap_or("end_turn");
    let finish = if said.json_answer {
        "stop"
    } else {
        normalize_finish_reason(native)
    };
    let usage = reply.usage.as_ref().map(UsageIn::usage);
    Ok(meta.completion(
        vec![Choice {
            index: 0,
            message: said.message(),
            finish_reason: Some(finish.into()),
            native_finish_reason: Some(native.into()),
            logprobs: None,
        }],
        usage,
    ))
}
