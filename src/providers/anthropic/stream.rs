//! Anthropic's stream events (`message_start`, `content_block_*`, `message_delta`,
//! `message_stop`, `error`) translated into chat chunks as they come.

use std::borrow::Cow;
use std::collections::HashMap;

use serde::Deserialize;
use serde_json::{json, Value};

use super::reply::{reasoning_encrypted, reasoning_text, UsageIn};
use super::JSON_TOOL;
use crate::api::{ChatChunk, Delta, FunctionCallDelta, ToolCallDelta, Usage};
use crate::error::Result;
use crate::providers::{ended_early, invalid_event, stream_error, ErrorEvent};

/// What one content block of the stream is, by its index.
#[derive(Debug, Clone)]
enum Block {
    Text,
    Thinking,
    /// A tool call, with its position among the reply's tool calls.
    Tool(u32),
    JsonAnswer,
    /// Anthropic's own search call (`server_tool_use`): its input is its query.
    Search,
    Other,
}

#[derive(Debug, Default)]
pub struct StreamState {
    provider: String,
    blocks: HashMap<u64, Block>,
    tools: u32,
    usage: Usage,
    /// The input counts as reported so far: `message_start`'s, then `message_delta`'s.
    input: UsageIn,
    stopped: bool,
    json_answer: bool,
    /// Anthropic searched the web in this reply: the text's characters are counted
    /// from then on, for its citations' spans.
    cited: Option<Box<Cited>>,
}

/// The citations of a reply whose model searched: the characters of text so far, where
/// the current text block began, and its citations, sent when it stops.
#[derive(Debug, Default)]
struct Cited {
    chars: usize,
    block_start: usize,
    pending: Vec<super::reply::CitationIn>,
    /// The input of the search call being streamed (JSON, in pieces).
    search_input: String,
}

impl StreamState {
    pub fn new(provider: &str) -> Self {
        StreamState {
            provider: provider.to_string(),
            ..Default::default()
        }
    }

    /// The stream ended: it must have reached `message_stop`.
    pub fn end(&mut self, _out: &mut Vec<ChatChunk>) -> Result<()> {
        if self.stopped {
            Ok(())
        } else {
            Err(ended_early(&self.provider))
        }
    }

    pub fn provider(&self) -> &str {
        &self.provider
    }

    /// The usage `message_start` reported (the prompt exactly, cache reads and writes
    /// included) with the output `message_delta` counted so far; none before it.
    pub fn usage_so_far(&self) -> Option<Usage> {
        (self.usage != Usage::default()).then(|| self.usage.clone())
    }

    fn chunk(&self, delta: Delta, finish: Option<String>) -> ChatChunk {
        ChatChunk::bare(delta, finish)
    }

    /// One event's data; the chunk it makes, if any, goes to `out`.
    pub fn event(&mut self, data: &str, out: &mut Vec<ChatChunk>) -> Result<()> {
        match self.read(data)? {
            Made::Text(text) => out.push(self.chunk(
                Delta {
                    content: Some(text.into_owned()),
                    ..Default::default()
                },
                None,
            )),
            Made::Chunk(chunk) => out.extend(chunk),
        }
        Ok(())
    }

    /// A `content_block_start`: the block's kind is remembered by its index; a tool
    /// call and a redacted thinking block make a chunk at once.
    fn block_start(
        &mut self,
        cb: BlockStart<'_>,
        index: u64,
        position: usize,
    ) -> Option<ChatChunk> {
        let (block, chunk) = match cb.kind.as_deref() {
            Some("text") => {
                if let Some(c) = self.cited.as_mut() {
                    c.block_start = c.chars;
                }
                (Block::Text, None)
            }
            Some("server_tool_use") => {
                self.cited
                    .get_or_insert_with(Box::default)
                    .search_input
                    .clear();
                (Block::Search, None)
            }
            Some("web_search_tool_result") => {
                self.cited.get_or_insert_with(Box::default);
                (Block::Other, None)
            }
            Some("thinking") => (Block::Thinking, None),
            Some("redacted_thinking") => {
                let details = json!([reasoning_encrypted(position, cb.data.as_ref())]);
                let delta = Delta {
                    reasoning_details: Some(details),
                    ..Default::default()
                };
                (Block::Other, Some(self.chunk(delta, None)))
            }
            Some("tool_use") if cb.name.as_deref() == Some(JSON_TOOL) => {
                self.json_answer = true;
                (Block::JsonAnswer, None)
            }
            Some("tool_use") => {
                let i = self.tools;
                self.tools = self.tools.saturating_add(1);
                let delta = Delta {
                    tool_calls: Some(vec![ToolCallDelta {
                        index: i,
                        id: Some(owned(cb.id)),
                        kind: Some("function".into()),
                        function: Some(FunctionCallDelta {
                            name: Some(owned(cb.name)),
                            arguments: Some(String::new()),
                        }),
                    }]),
                    ..Default::default()
                };
                (Block::Tool(i), Some(self.chunk(delta, None)))
            }
            _ => (Block::Other, None),
        };
        self.blocks.insert(index, block);
        chunk
    }

    /// A `content_block_delta`, read by its type and the kind of its block.
    fn block_delta(&self, d: EventDelta<'_>, index: u64, position: usize) -> Option<ChatChunk> {
        let delta = match (self.blocks.get(&index), d.kind.as_deref()) {
            (_, Some("thinking_delta")) => {
                let thinking = owned(d.text);
                Delta {
                    reasoning_details: Some(json!([reasoning_text(position, &thinking, None)])),
                    reasoning: Some(thinking),
                    ..Default::default()
                }
            }
            (_, Some("signature_delta")) => Delta {
                reasoning_details: Some(json!([reasoning_text(position, "", d.text.as_deref())])),
                ..Default::default()
            },
            (Some(Block::JsonAnswer), Some("input_json_delta")) => Delta {
                content: Some(owned(d.text)),
                ..Default::default()
            },
            (Some(Block::Tool(i)), Some("input_json_delta")) => Delta {
                tool_calls: Some(vec![ToolCallDelta {
                    index: *i,
                    function: Some(FunctionCallDelta {
                        name: None,
                        arguments: Some(owned(d.text)),
                    }),
                    ..Default::default()
                }]),
                ..Default::default()
            },
            _ => return None,
        };
        Some(self.chunk(delta, None))
    }

    /// A `message_delta`: the output counted so far, and the stop reason (a JSON
    /// answer given as a tool call ends its turn).
    fn message_delta(
        &mut self,
        usage: Option<Box<UsageIn>>,
        delta: Option<EventDelta<'_>>,
    ) -> Option<ChatChunk> {
        if let Some(mut u) = usage {
            // Its counts are cumulative, the input ones too: where it has them they are
            // the request's (a server tool's results are input read after the start).
            if u.input_tokens.is_some()
                || u.cache_read_input_tokens.is_some()
                || u.cache_creation_input_tokens.is_some()
            {
                let c = &mut self.input;
                c.input_tokens = u.input_tokens.or(c.input_tokens);
                c.cache_read_input_tokens = u.cache_read_input_tokens.or(c.cache_read_input_tokens);
                c.cache_creation_input_tokens = u
                    .cache_creation_input_tokens
                    .or(c.cache_creation_input_tokens);
                if u.cache_creation.is_some() {
                    c.cache_creation = u.cache_creation.take();
                }
                let now = c.usage();
                self.usage.prompt_tokens = now.prompt_tokens;
                self.usage.prompt_tokens_details = now.prompt_tokens_details;
                self.usage.total_tokens = self
                    .usage
                    .prompt_tokens
                    .saturating_add(self.usage.completion_tokens);
            }
            if let Some(out) = u.output_tokens {
                self.usage.completion_tokens = out;
                self.usage.total_tokens = self.usage.prompt_tokens.saturating_add(out);
            }
            // A server tool's searches, billed apart, are counted at the end.
            if let Some(tools) = &u.server_tool_use {
                self.usage.web_searches = tools.web_search_requests;
            }
        }
        let native = delta.and_then(|d| d.stop_reason).filter(|r| !r.is_empty());
        native.map(|n| {
            let n = if self.json_answer && n == "tool_use" {
                "end_turn".to_string()
            } else {
                n.into_owned()
            };
            self.chunk(Delta::default(), Some(n))
        })
    }

    /// One event's data read: a text delta's text (borrowed from the event where it has
    /// no escapes), or the chunk any other event makes, if any.
    pub fn read<'a>(&mut self, data: &'a str) -> Result<Made<'a>> {
        // From the bytes, as the whole reply is read: one copy of the usage's decoder.
        let ev: Event<'a> = serde_json::from_slice(data.as_bytes())
            .map_err(|e| invalid_event(&self.provider, e, data))?;
        let index = ev.index;
        let position = usize::try_from(index).unwrap_or(usize::MAX);
        Ok(Made::Chunk(match ev.kind.as_ref() {
            "message_start" => {
                if let Some(u) = ev.message.and_then(|m| m.usage) {
                    self.usage = u.usage();
                    self.input = u;
                }
                Some(self.chunk(
                    Delta {
                        role: Some("assistant".into()),
                        content: Some(String::new()),
                        ..Default::default()
                    },
                    None,
                ))
            }
            "content_block_start" => {
                let cb = ev.content_block.map(|b| *b).unwrap_or_default();
                self.block_start(cb, index, position)
            }
            "content_block_delta" => {
                let mut d = ev.delta.unwrap_or_default();
                // Whatever its block: most of a stream, read without building a chunk.
                if d.kind.as_deref() == Some("text_delta") {
                    let text = d.text.unwrap_or_default();
                    if let Some(c) = self.cited.as_mut() {
                        c.chars = c.chars.saturating_add(text.chars().count());
                    }
                    return Ok(Made::Text(text));
                }
                if let (Some(c), Some(cite)) = (self.cited.as_mut(), d.citation.take()) {
                    c.pending.push(*cite);
                    return Ok(Made::Chunk(None));
                }
                if let (Some(Block::Search), Some(c)) =
                    (self.blocks.get(&index), self.cited.as_mut())
                {
                    c.search_input.push_str(d.text.as_deref().unwrap_or(""));
                    return Ok(Made::Chunk(None));
                }
                self.block_delta(d, index, position)
            }
            "message_delta" => self.message_delta(ev.usage, ev.delta),
            "message_stop" => {
                self.stopped = true;
                Some(ChatChunk::usage_only(self.usage.clone()))
            }
            "error" => {
                let err = ev.error.map(|e| *e).unwrap_or_default();
                return Err(stream_error(&self.provider, &err));
            }
            "content_block_stop" => self.cited.as_mut().and_then(|c| {
                // A search call's query, or a text block's citations, as its annotations.
                let annotations = if let Some(Block::Search) = self.blocks.get(&index) {
                    let input = std::mem::take(&mut c.search_input);
                    json!([super::reply::search_query(
                        serde_json::from_str(&input).ok()
                    )?])
                } else {
                    let list = std::mem::take(&mut c.pending);
                    super::reply::annotations(list, c.block_start, c.chars)?
                };
                let delta = Delta {
                    annotations: Some(annotations),
                    ..Default::default()
                };
                Some(ChatChunk::bare(delta, None))
            }),
            // ping, and event types added later
            _ => None,
        }))
    }
}

/// What one stream event makes ([`StreamState::read`]). Returned once per event and
/// never kept, so the chunk is not boxed (that would be an allocation per event).
#[allow(clippy::large_enum_variant)]
pub enum Made<'a> {
    /// A text delta: a chunk whose delta is only this content.
    Text(Cow<'a, str>),
    Chunk(Option<ChatChunk>),
}

/// An event's string, owned (empty where absent).
fn owned(s: Option<Cow<'_, str>>) -> String {
    s.map(Cow::into_owned).unwrap_or_default()
}

/// One streamed event, every type in one shape (what a type lacks is absent), read
/// with its strings borrowed from the event where they have no escapes. Kept small,
/// the parts of rare events boxed: it is read once per streamed token.
#[derive(Debug, Deserialize)]
struct Event<'a> {
    #[serde(rename = "type", default, borrow)]
    kind: Cow<'a, str>,
    #[serde(default)]
    index: u64,
    #[serde(default, borrow)]
    delta: Option<EventDelta<'a>>,
    #[serde(default, borrow)]
    content_block: Option<Box<BlockStart<'a>>>,
    #[serde(default)]
    message: Option<Box<MessageStart>>,
    #[serde(default)]
    usage: Option<Box<UsageIn>>,
    #[serde(default)]
    error: Option<Box<ErrorEvent>>,
}

/// A `content_block_delta`'s delta, or a `message_delta`'s. A content delta carries
/// one string, named by its type (`text`, `thinking`, `partial_json`, `signature`).
#[derive(Debug, Default, Deserialize)]
struct EventDelta<'a> {
    #[serde(rename = "type", default, borrow)]
    kind: Option<Cow<'a, str>>,
    #[serde(
        default,
        borrow,
        alias = "thinking",
        alias = "partial_json",
        alias = "signature"
    )]
    text: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    stop_reason: Option<Cow<'a, str>>,
    /// A `citations_delta`'s citation (of a web search result).
    #[serde(default)]
    citation: Option<Box<super::reply::CitationIn>>,
}

#[derive(Debug, Default, Deserialize)]
struct BlockStart<'a> {
    #[serde(rename = "type", default, borrow)]
    kind: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    id: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    name: Option<Cow<'a, str>>,
    /// A redacted thinking block's opaque data.
    #[serde(default)]
    data: Option<Value>,
}

#[derive(Debug, Deserialize)]
struct MessageStart {
    #[serde(default)]
    usage: Option<UsageIn>,
}
