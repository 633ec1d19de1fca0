//! The Responses event sequence a stream of chat chunks becomes
//! (`response.created` ... `response.completed`), each event numbered: typed events,
//! written by serde.

use serde::Serialize;

use super::reply::{
    status, Annotation, OutputItem, Part, Response, ResponseError, ResponseUsage, Status,
};
use super::Echo;
use crate::api::{ChatChunk, ChunkChoice, ToolCallDelta, Usage};
use crate::error::Error;

/// The fields of one event, those of its kind set (one type for every kind: the
/// events differ only in which they carry).
#[derive(Debug, Default, Serialize)]
struct Event<'a> {
    #[serde(rename = "type")]
    kind: &'a str,
    sequence_number: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    response: Option<&'a Response>,
    #[serde(skip_serializing_if = "Option::is_none")]
    item_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    output_index: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    content_index: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    summary_index: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    item: Option<&'a OutputItem>,
    #[serde(skip_serializing_if = "Option::is_none")]
    part: Option<Part>,
    #[serde(skip_serializing_if = "Option::is_none")]
    delta: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    text: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    arguments: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    logprobs: Option<[(); 0]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    annotation_index: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    annotation: Option<&'a Annotation>,
}

impl<'a> Event<'a> {
    /// An event about the item `open`.
    fn about(kind: &'a str, open: &'a Open) -> Self {
        Event {
            kind,
            item_id: Some(&open.id),
            output_index: Some(open.index),
            ..Default::default()
        }
    }

    /// An event about a message's text (`content_index` 0).
    fn text_of(kind: &'a str, open: &'a Open) -> Self {
        Event {
            content_index: Some(0),
            ..Event::about(kind, open)
        }
    }

    /// An event about a reasoning item's summary (`summary_index` 0).
    fn summary_of(kind: &'a str, open: &'a Open) -> Self {
        Event {
            summary_index: Some(0),
            ..Event::about(kind, open)
        }
    }

    fn item(kind: &'a str, output_index: usize, item: &'a OutputItem) -> Self {
        Event {
            kind,
            output_index: Some(output_index),
            item: Some(item),
            ..Default::default()
        }
    }
}

/// An output item being streamed.
#[derive(Debug, Clone)]
struct Open {
    index: usize,
    id: String,
    text: String,
    /// For function calls: (call ID, name).
    call: Option<(String, String)>,
}

/// Turns stamped chat chunks into the Responses event sequence.
#[derive(Debug)]
pub struct StreamEncoder {
    echo: Echo,
    seq: u64,
    started: bool,
    id: String,
    created: u64,
    model: String,
    next_index: usize,
    reasoning: Option<Open>,
    /// Reasoning items opened so far (for unique IDs).
    reasonings: usize,
    /// The stream's `reasoning_details`; each reasoning item takes those since the last.
    details: crate::api::ReasoningLog,
    message: Option<Open>,
    /// Open function calls by the chat chunk's tool-call index.
    calls: Vec<(u32, Open)>,
    /// Finished items, in output order.
    done: Vec<(usize, OutputItem)>,
    finish_reason: Option<String>,
    /// The message's annotations (a server-tool loop's citations).
    annotations: Vec<Annotation>,
}

impl StreamEncoder {
    pub fn new(echo: Echo) -> Self {
        StreamEncoder {
            echo,
            seq: 0,
            started: false,
            id: String::new(),
            created: 0,
            model: String::new(),
            next_index: 0,
            reasoning: None,
            reasonings: 0,
            details: crate::api::ReasoningLog::default(),
            message: None,
            calls: Vec::new(),
            done: Vec::new(),
            finish_reason: None,
            annotations: Vec::new(),
        }
    }

    /// What a server-tool loop did before the answer streams: each search as a
    /// `web_search_call` item with its `in_progress`, `searching` and `completed`
    /// events; the citations go on the message when it closes.
    pub fn server_turn(
        &mut self,
        first: &ChatChunk,
        turn: &crate::api::server_turn::Turn,
    ) -> Vec<u8> {
        let mut out = Vec::new();
        self.start(first, &mut out);
        for item in super::mcp_items::mcp_items(turn, &self.id) {
            self.mcp_item(item, &mut out);
        }
        for item in super::search::search_items(turn, &self.id) {
            let OutputItem::WebSearchCall { id, action, .. } = &item else {
                continue;
            };
            let open = self.open(id.clone(), None);
            let started = OutputItem::WebSearchCall {
                id: id.clone(),
                status: Status::InProgress,
                action: action.clone(),
            };
            let added = Event::item("response.output_item.added", open.index, &started);
            Self::emit(&mut self.seq, &mut out, added);
            for kind in ["in_progress", "searching", "completed"] {
                let kind = format!("response.web_search_call.{kind}");
                Self::emit(&mut self.seq, &mut out, Event::about(&kind, &open));
            }
            let done = Event::item("response.output_item.done", open.index, &item);
            Self::emit(&mut self.seq, &mut out, done);
            self.done.push((open.index, item));
        }
        self.annotations = super::search::annotations(turn);
        out
    }

    /// An MCP item with its events: a listing's `in_progress` and `completed`; a
    /// call's `in_progress`, its arguments (one `delta`, then `done`) and `completed`
    /// (or `failed`).
    fn mcp_item(&mut self, item: OutputItem, out: &mut Vec<u8>) {
        let (id, kind, arguments, failed) = match &item {
            OutputItem::McpListTools { id, .. } => (id, "mcp_list_tools", None, false),
            OutputItem::McpCall {
                id,
                arguments,
                error,
                ..
            } => (id, "mcp_call", Some(arguments.as_str()), error.is_some()),
            _ => return,
        };
        let open = self.open(id.clone(), None);
        let started = super::mcp_items::started(&item);
        let added = Event::item("response.output_item.added", open.index, &started);
        Self::emit(&mut self.seq, out, added);
        let progress = format!("response.{kind}.in_progress");
        Self::emit(&mut self.seq, out, Event::about(&progress, &open));
        if let Some(args) = arguments {
            let delta = Event {
                delta: Some(args),
                ..Event::about("response.mcp_call_arguments.delta", &open)
            };
            Self::emit(&mut self.seq, out, delta);
            let done = Event {
                arguments: Some(args),
                ..Event::about("response.mcp_call_arguments.done", &open)
            };
            Self::emit(&mut self.seq, out, done);
        }
        let end = if failed { "failed" } else { "completed" };
        let end = format!("response.{kind}.{end}");
        Self::emit(&mut self.seq, out, Event::about(&end, &open));
        let done = Event::item("response.output_item.done", open.index, &item);
        Self::emit(&mut self.seq, out, done);
        self.done.push((open.index, item));
    }

    /// `e` as an SSE event appended to `out`, numbered.
    fn emit(seq: &mut u64, out: &mut Vec<u8>, mut e: Event<'_>) {
        e.sequence_number = *seq;
        *seq = seq.saturating_add(1);
        out.extend_from_slice(b"event: ");
        out.extend_from_slice(e.kind.as_bytes());
        out.extend_from_slice(b"\ndata: ");
        let mark = out.len();
        if serde_json::to_writer(&mut *out, &e).is_err() {
            out.truncate(mark);
            out.extend_from_slice(b"{}");
        }
        out.extend_from_slice(b"\n\n");
    }

    fn skeleton(&self, status: Status) -> Response {
        Response::new(&self.id, self.created, &self.model, &self.echo, status)
    }

    fn whole(&mut self, out: &mut Vec<u8>, kind: &str, r: &Response) {
        let e = Event {
            kind,
            response: Some(r),
            ..Default::default()
        };
        Self::emit(&mut self.seq, out, e);
    }

    fn start(&mut self, c: &ChatChunk, out: &mut Vec<u8>) {
        if self.started {
            return;
        }
        self.started = true;
        self.id = c.id.clone();
        self.created = c.created;
        self.model = c.model.clone();
        let r = self.skeleton(Status::InProgress);
        self.whole(out, "response.created", &r);
        self.whole(out, "response.in_progress", &r);
    }

    fn open(&mut self, id: String, call: Option<(String, String)>) -> Open {
        let index = self.next_index;
        self.next_index = self.next_index.saturating_add(1);
        Open {
            index,
            id,
            text: String::new(),
            call,
        }
    }

    fn close_reasoning(&mut self, out: &mut Vec<u8>) {
        let Some(r) = self.reasoning.take() else {
            return;
        };
        let item = OutputItem::reasoning(&r.id, &r.text, self.details.take_fresh());
        let seq = &mut self.seq;
        let text = Event {
            text: Some(&r.text),
            ..Event::summary_of("response.reasoning_summary_text.done", &r)
        };
        Self::emit(seq, out, text);
        let part = Event {
            part: Some(Part::summary_text(&r.text)),
            ..Event::summary_of("response.reasoning_summary_part.done", &r)
        };
        Self::emit(seq, out, part);
        Self::emit(
            seq,
            out,
            Event::item("response.output_item.done", r.index, &item),
        );
        self.done.push((r.index, item));
    }

    fn close_message(&mut self, out: &mut Vec<u8>) {
        let Some(m) = self.message.take() else {
            return;
        };
        let mut item = OutputItem::message(&m.id, &m.text, Status::Completed);
        let seq = &mut self.seq;
        for (i, a) in self.annotations.iter().enumerate() {
            let added = Event {
                annotation_index: Some(i),
                annotation: Some(a),
                ..Event::text_of("response.output_text.annotation.added", &m)
            };
            Self::emit(seq, out, added);
        }
        let mut part = Part::output_text(&m.text);
        part.annotations = Some(self.annotations.clone());
        if let OutputItem::Message { content, .. } = &mut item {
            *content = vec![part.clone()];
        }
        let text = Event {
            text: Some(&m.text),
            logprobs: Some([]),
            ..Event::text_of("response.output_text.done", &m)
        };
        Self::emit(seq, out, text);
        let part = Event {
            part: Some(part),
            ..Event::text_of("response.content_part.done", &m)
        };
        Self::emit(seq, out, part);
        Self::emit(
            seq,
            out,
            Event::item("response.output_item.done", m.index, &item),
        );
        self.done.push((m.index, item));
    }

    fn close_calls(&mut self, out: &mut Vec<u8>) {
        for (_, c) in std::mem::take(&mut self.calls) {
            let (call_id, name) = c.call.clone().unwrap_or_default();
            let item = OutputItem::call(&c.id, &call_id, &name, &c.text, Status::Completed);
            let args = Event {
                arguments: Some(&c.text),
                ..Event::about("response.function_call_arguments.done", &c)
            };
            Self::emit(&mut self.seq, out, args);
            let done = Event::item("response.output_item.done", c.index, &item);
            Self::emit(&mut self.seq, out, done);
            self.done.push((c.index, item));
        }
    }

    /// One stamped chat chunk.
    pub fn chunk(&mut self, c: &ChatChunk) -> Vec<u8> {
        let mut out = Vec::new();
        self.start(c, &mut out);
        for ch in &c.choices {
            self.reasoning_delta(ch, &mut out);
            if let Some(t) = ch.delta.content.as_deref().filter(|t| !t.is_empty()) {
                self.text_delta(t, &mut out);
            }
            for tc in ch.delta.tool_calls.iter().flatten() {
                self.call_delta(tc, &mut out);
            }
            if let Some(f) = &ch.finish_reason {
                self.finish_reason = Some(f.clone());
            }
        }
        out
    }

    fn reasoning_delta(&mut self, ch: &ChunkChoice, out: &mut Vec<u8>) {
        let details = ch
            .delta
            .reasoning_details
            .as_ref()
            .and_then(serde_json::Value::as_array);
        self.details.add(details);
        let thinking = ch.delta.reasoning.as_deref().filter(|r| !r.is_empty());
        if self.reasoning.is_none() && (thinking.is_some() || details.is_some()) {
            let id = match self.reasonings {
                0 => format!("rs_{}", self.id),
                n => format!("rs_{}_{n}", self.id),
            };
            self.reasonings = self.reasonings.saturating_add(1);
            let open = self.open(id, None);
            let item = OutputItem::reasoning(&open.id, "", &[]);
            let added = Event::item("response.output_item.added", open.index, &item);
            Self::emit(&mut self.seq, out, added);
            let part = Event {
                part: Some(Part::summary_text("")),
                ..Event::summary_of("response.reasoning_summary_part.added", &open)
            };
            Self::emit(&mut self.seq, out, part);
            self.reasoning = Some(open);
        }
        if let (Some(r), Some(open)) = (thinking, self.reasoning.as_mut()) {
            open.text.push_str(r);
            let delta = Event {
                delta: Some(r),
                ..Event::summary_of("response.reasoning_summary_text.delta", open)
            };
            Self::emit(&mut self.seq, out, delta);
        }
    }

    fn text_delta(&mut self, t: &str, out: &mut Vec<u8>) {
        self.close_reasoning(out);
        if self.message.is_none() {
            let open = self.open(format!("msg_{}", self.id), None);
            let item = OutputItem::Message {
                id: open.id.clone(),
                status: Status::InProgress,
                role: "assistant",
                content: Vec::new(),
            };
            let added = Event::item("response.output_item.added", open.index, &item);
            Self::emit(&mut self.seq, out, added);
            let part = Event {
                part: Some(Part::output_text("")),
                ..Event::text_of("response.content_part.added", &open)
            };
            Self::emit(&mut self.seq, out, part);
            self.message = Some(open);
        }
        if let Some(open) = self.message.as_mut() {
            open.text.push_str(t);
            let delta = Event {
                delta: Some(t),
                logprobs: Some([]),
                ..Event::text_of("response.output_text.delta", open)
            };
            Self::emit(&mut self.seq, out, delta);
        }
    }

    fn call_delta(&mut self, tc: &ToolCallDelta, out: &mut Vec<u8>) {
        self.close_reasoning(out);
        self.close_message(out);
        let known = self.calls.iter().position(|(i, _)| *i == tc.index);
        let pos = match known {
            Some(p) => p,
            None => {
                let n = self.calls.len();
                let call_id = tc
                    .id
                    .clone()
                    .unwrap_or_else(|| format!("call_{}_{n}", self.id));
                let name = tc
                    .function
                    .as_ref()
                    .and_then(|f| f.name.clone())
                    .unwrap_or_default();
                let id = format!("fc_{}_{n}", self.id);
                let item = OutputItem::call(&id, &call_id, &name, "", Status::InProgress);
                let open = self.open(id, Some((call_id, name)));
                let added = Event::item("response.output_item.added", open.index, &item);
                Self::emit(&mut self.seq, out, added);
                self.calls.push((tc.index, open));
                n
            }
        };
        let args = tc.function.as_ref().and_then(|f| f.arguments.as_deref());
        let Some(args) = args.filter(|a| !a.is_empty()) else {
            return;
        };
        let Some((_, open)) = self.calls.get_mut(pos) else {
            return;
        };
        open.text.push_str(args);
        let delta = Event {
            delta: Some(args),
            ..Event::about("response.function_call_arguments.delta", open)
        };
        Self::emit(&mut self.seq, out, delta);
    }

    /// The stream ended well: close every item, then `response.completed` with usage.
    pub fn close(&mut self, last: &ChatChunk, u: &Usage) -> Vec<u8> {
        let mut out = Vec::new();
        self.start(last, &mut out);
        self.close_reasoning(&mut out);
        self.close_message(&mut out);
        self.close_calls(&mut out);
        let (st, incomplete) = status(self.finish_reason.as_deref());
        self.done.sort_by_key(|(i, _)| *i);
        let output: Vec<OutputItem> = self.done.iter().map(|(_, item)| item.clone()).collect();
        let text: String = output.iter().filter_map(OutputItem::text).collect();
        let r = Response {
            output,
            incomplete_details: incomplete,
            output_text: Some(text),
            usage: Some(ResponseUsage::from(u)),
            service_tier: last.service_tier.clone(),
            ..self.skeleton(st)
        };
        let kind = if st == Status::Completed {
            "response.completed"
        } else {
            "response.incomplete"
        };
        self.whole(&mut out, kind, &r);
        out
    }

    /// The stream failed: `response.failed` with the error.
    pub fn fail(&mut self, last: &ChatChunk, err: &Error) -> Vec<u8> {
        let mut out = Vec::new();
        self.start(last, &mut out);
        let r = Response {
            error: Some(ResponseError {
                code: response_code(err),
                message: err.public_message(),
            }),
            error_type: Some(err.error_type()),
            ..self.skeleton(Status::Failed)
        };
        self.whole(&mut out, "response.failed", &r);
        out
    }
}

/// The code of OpenAI's Responses error set for `err`, as OpenRouter maps its types
/// onto it (the precise one is `error_type`).
fn response_code(err: &Error) -> &'static str {
    use crate::error::ErrorType as T;
    match err.error_type() {
        T::RateLimitExceeded => "rate_limit_exceeded",
        T::ContextLengthExceeded | T::InvalidRequest => "invalid_prompt",
        T::Timeout => "timeout",
        _ => "server_error",
    }
}
