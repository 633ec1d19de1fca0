//! Anthropic's stream events, and the encoder that turns stamped chat chunks into them.

use serde::Serialize;
use serde_json::{Map, Value};

use super::reply::{ContentBlock, ErrorBody, ErrorDetail, Message, MessageUsage, StopReason};
use super::search::{search_blocks, TextCitation};
use crate::api::{ChatChunk, ReasoningLog, Usage};
use crate::error::Error;

/// One event of a Messages stream (its SSE `event:` name is its `type`).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum StreamEvent<'a> {
    MessageStart {
        message: Message,
    },
    ContentBlockStart {
        index: usize,
        content_block: ContentBlock,
    },
    ContentBlockDelta {
        index: usize,
        delta: BlockDelta<'a>,
    },
    ContentBlockStop {
        index: usize,
    },
    MessageDelta {
        delta: MessageDelta,
        usage: MessageUsage,
    },
    MessageStop,
    /// The stream failed (the data is the error body of a reply).
    Error {
        error: ErrorDetail,
    },
}

impl StreamEvent<'_> {
    fn name(&self) -> &'static str {
        match self {
            StreamEvent::MessageStart { .. } => "message_start",
            StreamEvent::ContentBlockStart { .. } => "content_block_start",
            StreamEvent::ContentBlockDelta { .. } => "content_block_delta",
            StreamEvent::ContentBlockStop { .. } => "content_block_stop",
            StreamEvent::MessageDelta { .. } => "message_delta",
            StreamEvent::MessageStop => "message_stop",
            StreamEvent::Error { .. } => "error",
        }
    }

    /// The event as SSE bytes.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = format!("event: {}\ndata: ", self.name()).into_bytes();
        if serde_json::to_writer(&mut out, self).is_err() {
            out.extend_from_slice(b"{}");
        }
        out.extend_from_slice(b"\n\n");
        out
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum BlockDelta<'a> {
    TextDelta { text: &'a str },
    InputJsonDelta { partial_json: &'a str },
    ThinkingDelta { thinking: &'a str },
    SignatureDelta { signature: String },
    CitationsDelta { citation: TextCitation },
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MessageDelta {
    pub stop_reason: Option<StopReason>,
    pub stop_sequence: Option<String>,
}

/// Anthropic's `error` stream event.
pub fn error_event(err: &Error) -> Vec<u8> {
    let error = ErrorBody::from(err).error;
    StreamEvent::Error { error }.encode()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Block {
    Thinking,
    Text,
    Tool(u32),
}

/// Turns stamped chat chunks into Anthropic's stream events.
#[derive(Debug, Default)]
pub struct StreamEncoder {
    started: bool,
    prompt_estimate: u64,
    /// The open content block and its index.
    open: Option<(Block, usize)>,
    next_index: usize,
    /// The stream's reasoning items; those since the last thinking block go out as the
    /// signature of the next when it closes.
    details: ReasoningLog,
    finish: Option<String>,
    native: Option<String>,
    /// A server-tool loop's citations, for the first text block when it closes.
    citations: Vec<TextCitation>,
}

impl StreamEncoder {
    pub fn new(prompt_estimate: u64) -> Self {
        StreamEncoder {
            prompt_estimate,
            ..Default::default()
        }
    }

    fn start(&mut self, c: &ChatChunk) -> Vec<u8> {
        if self.started {
            return Vec::new();
        }
        self.started = true;
        let mut message = Message::new(&c.id, &c.model);
        message.usage.input_tokens = self.prompt_estimate;
        StreamEvent::MessageStart { message }.encode()
    }

    fn stop_block(&mut self) -> Vec<u8> {
        let mut out = Vec::new();
        let Some((block, index)) = self.open.take() else {
            return out;
        };
        if block == Block::Text {
            for citation in std::mem::take(&mut self.citations) {
                out.extend(delta(index, BlockDelta::CitationsDelta { citation }));
            }
        }
        let fresh = match block {
            Block::Thinking => self.details.take_fresh(),
            _ => &[],
        };
        if !fresh.is_empty() {
            let signature = crate::api::pack_reasoning(fresh);
            out.extend(delta(index, BlockDelta::SignatureDelta { signature }));
        }
        out.extend(StreamEvent::ContentBlockStop { index }.encode());
        out
    }

    /// Makes `block` the open one (closing another), with its start event.
    fn ensure(&mut self, block: Block, start: impl FnOnce() -> ContentBlock) -> (Vec<u8>, usize) {
        if let Some((b, i)) = self.open {
            if b == block {
                return (Vec::new(), i);
            }
        }
        let mut out = self.stop_block();
        let index = self.next_index;
        self.next_index = self.next_index.saturating_add(1);
        let content_block = start();
        out.extend(
            StreamEvent::ContentBlockStart {
                index,
                content_block,
            }
            .encode(),
        );
        self.open = Some((block, index));
        (out, index)
    }

    /// What a server-tool loop did, before its answer: `message_start`, then each
    /// search's `server_tool_use` block (its input streamed as `input_json_delta`) and
    /// `web_search_tool_result` block; the answer's citations go out with its text.
    pub fn server_turn(
        &mut self,
        first: &ChatChunk,
        turn: &crate::api::server_turn::Turn,
    ) -> Vec<u8> {
        let mut out = self.start(first);
        out.extend(self.stop_block());
        for block in search_blocks(turn, &first.id) {
            let index = self.next_index;
            self.next_index = self.next_index.saturating_add(1);
            let (content_block, input) = match block {
                ContentBlock::ServerToolUse { id, name, input } => {
                    let empty = Value::Object(Map::new());
                    let b = ContentBlock::ServerToolUse {
                        id,
                        name,
                        input: empty,
                    };
                    (b, Some(input.to_string()))
                }
                b => (b, None),
            };
            out.extend(
                StreamEvent::ContentBlockStart {
                    index,
                    content_block,
                }
                .encode(),
            );
            if let Some(json) = &input {
                out.extend(delta(
                    index,
                    BlockDelta::InputJsonDelta { partial_json: json },
                ));
            }
            out.extend(StreamEvent::ContentBlockStop { index }.encode());
        }
        self.citations = super::search::citations(turn);
        out
    }

    pub fn chunk(&mut self, c: &ChatChunk) -> Vec<u8> {
        let mut out = self.start(c);
        for ch in &c.choices {
            let d = &ch.delta;
            let details = d.reasoning_details.as_ref().and_then(Value::as_array);
            self.details.add(details);
            let thinking = d.reasoning.as_deref().filter(|r| !r.is_empty());
            if thinking.is_some() || details.is_some_and(|d| !d.is_empty()) {
                let (o, i) = self.ensure(Block::Thinking, || ContentBlock::Thinking {
                    thinking: String::new(),
                    signature: String::new(),
                });
                out.extend(o);
                if let Some(r) = thinking {
                    out.extend(delta(i, BlockDelta::ThinkingDelta { thinking: r }));
                }
            }
            if let Some(t) = d.content.as_deref().filter(|t| !t.is_empty()) {
                let (o, i) = self.ensure(Block::Text, || ContentBlock::Text {
                    text: String::new(),
                    citations: None,
                });
                out.extend(o);
                out.extend(delta(i, BlockDelta::TextDelta { text: t }));
            }
            for tc in d.tool_calls.iter().flatten() {
                let (o, i) = self.ensure(Block::Tool(tc.index), || ContentBlock::ToolUse {
                    id: tc
                        .id
                        .clone()
                        .unwrap_or_else(|| format!("toolu_{}_{}", c.id, tc.index)),
                    name: tc
                        .function
                        .as_ref()
                        .and_then(|f| f.name.clone())
                        .unwrap_or_default(),
                    input: Value::Object(Map::new()),
                });
                out.extend(o);
                let args = tc.function.as_ref().and_then(|f| f.arguments.as_deref());
                if let Some(a) = args.filter(|a| !a.is_empty()) {
                    out.extend(delta(i, BlockDelta::InputJsonDelta { partial_json: a }));
                }
            }
            if let Some(f) = &ch.finish_reason {
                self.finish = Some(f.clone());
                self.native = ch.native_finish_reason.clone();
            }
        }
        out
    }

    pub fn close(&mut self, last: &ChatChunk, u: &Usage) -> Vec<u8> {
        let mut out = self.start(last);
        out.extend(self.stop_block());
        let stop_reason = StopReason::of(
            self.finish.as_deref().or(Some("stop")),
            self.native.as_deref(),
        );
        out.extend(
            StreamEvent::MessageDelta {
                delta: MessageDelta {
                    stop_reason,
                    stop_sequence: None,
                },
                usage: MessageUsage {
                    service_tier: super::reply::anthropic_tier(last.service_tier.as_deref()),
                    ..MessageUsage::from(u)
                },
            }
            .encode(),
        );
        out.extend(StreamEvent::MessageStop.encode());
        out
    }

    pub fn fail(&mut self, last: &ChatChunk, err: &Error) -> Vec<u8> {
        let mut out = self.start(last);
        out.extend(self.stop_block());
        out.extend(error_event(err));
        out
    }
}

fn delta(index: usize, delta: BlockDelta<'_>) -> Vec<u8> {
    StreamEvent::ContentBlockDelta { index, delta }.encode()
}
