//! The Responses event sequence a stream of chat chunks becomes
//! (`response.created` ... `response.completed`), each event numbered.

use serde_json::{json, Value};

use super::reply::{call_item, message_item, reasoning_item, response, status, usage};
use super::Echo;
use crate::api::{set_field, ChatChunk, Usage};
use crate::error::Error;

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
    done: Vec<(usize, Value)>,
    finish_reason: Option<String>,
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
        }
    }

    fn event(&mut self, ty: &str, mut data: Value) -> Vec<u8> {
        set_field(&mut data, "type", json!(ty));
        set_field(&mut data, "sequence_number", json!(self.seq));
        self.seq = self.seq.saturating_add(1);
        let mut out = format!("event: {ty}\ndata: ").into_bytes();
        if serde_json::to_writer(&mut out, &crate::money::Exact(&data)).is_err() {
            out.extend_from_slice(b"{}");
        }
        out.extend_from_slice(b"\n\n");
        out
    }

    fn skeleton(&self, status: &str) -> Value {
        response(
            &self.id,
            self.created,
            &self.model,
            &self.echo,
            status,
            Vec::new(),
        )
    }

    fn start(&mut self, c: &ChatChunk) -> Vec<u8> {
        if self.started {
            return Vec::new();
        }
        self.started = true;
        self.id = c.id.clone();
        self.created = c.created;
        self.model = c.model.clone();
        let r = self.skeleton("in_progress");
        let mut out = self.event("response.created", json!({"response": r}));
        out.extend(self.event("response.in_progress", json!({"response": r})));
        out
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

    fn close_reasoning(&mut self) -> Vec<u8> {
        let Some(r) = self.reasoning.take() else {
            return Vec::new();
        };
        let item = reasoning_item(&r.id, &r.text, self.details.take_fresh());
        let mut out = self.event(
            "response.reasoning_summary_text.done",
            json!({"item_id": r.id, "output_index": r.index, "summary_index": 0, "text": r.text}),
        );
        out.extend(self.event(
            "response.reasoning_summary_part.done",
            json!({"item_id": r.id, "output_index": r.index, "summary_index": 0, "part": {"type": "summary_text", "text": r.text}}),
        ));
        out.extend(self.event(
            "response.output_item.done",
            json!({"output_index": r.index, "item": item}),
        ));
        self.done.push((r.index, item));
        out
    }

    fn close_message(&mut self) -> Vec<u8> {
        let Some(m) = self.message.take() else {
            return Vec::new();
        };
        let part = json!({"type": "output_text", "text": m.text, "annotations": []});
        let item = message_item(&m.id, &m.text, "completed");
        let mut out = self.event(
            "response.output_text.done",
            json!({"item_id": m.id, "output_index": m.index, "content_index": 0, "text": m.text, "logprobs": []}),
        );
        out.extend(self.event(
            "response.content_part.done",
            json!({"item_id": m.id, "output_index": m.index, "content_index": 0, "part": part}),
        ));
        out.extend(self.event(
            "response.output_item.done",
            json!({"output_index": m.index, "item": item}),
        ));
        self.done.push((m.index, item));
        out
    }

    fn close_calls(&mut self) -> Vec<u8> {
        let mut out = Vec::new();
        for (_, c) in std::mem::take(&mut self.calls) {
            let (call_id, name) = c.call.clone().unwrap_or_default();
            let item = call_item(&c.id, &call_id, &name, &c.text, "completed");
            out.extend(self.event(
                "response.function_call_arguments.done",
                json!({"item_id": c.id, "output_index": c.index, "arguments": c.text}),
            ));
            out.extend(self.event(
                "response.output_item.done",
                json!({"output_index": c.index, "item": item}),
            ));
            self.done.push((c.index, item));
        }
        out
    }

    /// One stamped chat chunk.
    pub fn chunk(&mut self, c: &ChatChunk) -> Vec<u8> {
        let mut out = self.start(c);
        for ch in &c.choices {
            let d = &ch.delta;
            let details = d.reasoning_details.as_ref().and_then(Value::as_array);
            self.details.add(details);
            let thinking = d.reasoning.as_deref().filter(|r| !r.is_empty());
            if self.reasoning.is_none() && (thinking.is_some() || details.is_some()) {
                let id = match self.reasonings {
                    0 => format!("rs_{}", self.id),
                    n => format!("rs_{}_{n}", self.id),
                };
                self.reasonings = self.reasonings.saturating_add(1);
                let open = self.open(id, None);
                out.extend(self.event(
                    "response.output_item.added",
                    json!({"output_index": open.index, "item": {"type": "reasoning", "id": open.id, "summary": []}}),
                ));
                out.extend(self.event(
                    "response.reasoning_summary_part.added",
                    json!({"item_id": open.id, "output_index": open.index, "summary_index": 0, "part": {"type": "summary_text", "text": ""}}),
                ));
                self.reasoning = Some(open);
            }
            if let Some(r) = thinking {
                if let Some(open) = self.reasoning.as_mut() {
                    open.text.push_str(r);
                    let (id, index) = (open.id.clone(), open.index);
                    out.extend(self.event(
                        "response.reasoning_summary_text.delta",
                        json!({"item_id": id, "output_index": index, "summary_index": 0, "delta": r}),
                    ));
                }
            }
            if let Some(t) = d.content.as_deref().filter(|t| !t.is_empty()) {
                out.extend(self.close_reasoning());
                if self.message.is_none() {
                    let open = self.open(format!("msg_{}", self.id), None);
                    out.extend(self.event(
                        "response.output_item.added",
                        json!({"output_index": open.index, "item": {"type": "message", "id": open.id, "status": "in_progress", "role": "assistant", "content": []}}),
                    ));
                    out.extend(self.event(
                        "response.content_part.added",
                        json!({"item_id": open.id, "output_index": open.index, "content_index": 0, "part": {"type": "output_text", "text": "", "annotations": []}}),
                    ));
                    self.message = Some(open);
                }
                if let Some(open) = self.message.as_mut() {
                    open.text.push_str(t);
                    let (id, index) = (open.id.clone(), open.index);
                    out.extend(self.event(
                        "response.output_text.delta",
                        json!({"item_id": id, "output_index": index, "content_index": 0, "delta": t, "logprobs": []}),
                    ));
                }
            }
            for tc in d.tool_calls.iter().flatten() {
                out.extend(self.close_reasoning());
                out.extend(self.close_message());
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
                        let open = self.open(
                            format!("fc_{}_{n}", self.id),
                            Some((call_id.clone(), name.clone())),
                        );
                        out.extend(self.event(
                            "response.output_item.added",
                            json!({"output_index": open.index, "item": call_item(&open.id, &call_id, &name, "", "in_progress")}),
                        ));
                        self.calls.push((tc.index, open));
                        n
                    }
                };
                let args = tc
                    .function
                    .as_ref()
                    .and_then(|f| f.arguments.clone())
                    .unwrap_or_default();
                if args.is_empty() {
                    continue;
                }
                let Some((_, open)) = self.calls.get_mut(pos) else {
                    continue;
                };
                open.text.push_str(&args);
                let (id, index) = (open.id.clone(), open.index);
                out.extend(self.event(
                    "response.function_call_arguments.delta",
                    json!({"item_id": id, "output_index": index, "delta": args}),
                ));
            }
            if let Some(f) = &ch.finish_reason {
                self.finish_reason = Some(f.clone());
            }
        }
        out
    }

    /// The stream ended well: close every item, then `response.completed` with usage.
    pub fn close(&mut self, last: &ChatChunk, u: &Usage) -> Vec<u8> {
        let mut out = self.start(last);
        out.extend(self.close_reasoning());
        out.extend(self.close_message());
        out.extend(self.close_calls());
        let (st, incomplete) = status(self.finish_reason.as_deref());
        let mut r = self.skeleton(st);
        self.done.sort_by_key(|(i, _)| *i);
        let text: String = self
            .done
            .iter()
            .filter(|(_, item)| item.get("type").and_then(Value::as_str) == Some("message"))
            .filter_map(|(_, item)| item.pointer("/content/0/text").and_then(Value::as_str))
            .collect();
        set_field(
            &mut r,
            "output",
            Value::Array(self.done.iter().map(|(_, v)| v.clone()).collect()),
        );
        set_field(&mut r, "incomplete_details", incomplete);
        set_field(&mut r, "output_text", json!(text));
        set_field(&mut r, "usage", usage(u));
        let ty = if st == "completed" {
            "response.completed"
        } else {
            "response.incomplete"
        };
        out.extend(self.event(ty, json!({"response": r})));
        out
    }

    /// The stream failed: `response.failed` with the error.
    pub fn fail(&mut self, last: &ChatChunk, err: &Error) -> Vec<u8> {
        let mut out = self.start(last);
        let mut r = self.skeleton("failed");
        set_field(
            &mut r,
            "error",
            json!({"code": if err.status() == 408 { "timeout" } else { "server_error" }, "message": err.public_message()}),
        );
        out.extend(self.event("response.failed", json!({"response": r})));
        out
    }
}
