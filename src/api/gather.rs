//! A streamed completion gathered into the reply it stands for. The gateway asks an
//! upstream for a stream even when its caller wants one reply, so that whatever ends
//! the exchange early (a client that leaves, an upstream that stalls) leaves the
//! generation seen so far to bill; [`Gather`] turns the chunks back into the
//! [`ChatCompletion`] the caller asked for.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use super::{
    AssistantMessage, ChatChunk, ChatCompletion, Choice, FunctionCall, GenerationMeta, ToolCall,
    Usage,
};

/// One choice as its deltas arrive.
#[derive(Debug, Default)]
struct Partial {
    role: Option<String>,
    content: Option<String>,
    reasoning: Option<String>,
    /// By the delta's `index`: each call's ID, name and arguments in pieces.
    calls: BTreeMap<u32, ToolCall>,
    images: Vec<Value>,
    annotations: Vec<Value>,
    details: Vec<Value>,
    logprobs: Vec<Value>,
    finish_reason: Option<String>,
    native_finish_reason: Option<String>,
}

/// The chunks of one streamed completion, gathered under the generation's identity.
#[derive(Debug)]
pub struct Gather {
    meta: GenerationMeta,
    system_fingerprint: Option<String>,
    choices: BTreeMap<u32, Partial>,
    usage: Option<Usage>,
}

fn append(to: &mut Option<String>, piece: &str) {
    to.get_or_insert_with(String::new).push_str(piece);
}

fn extend(to: &mut Vec<Value>, items: Option<&Value>) {
    match items {
        Some(Value::Array(a)) => to.extend(a.iter().cloned()),
        Some(Value::Null) | None => {}
        Some(one) => to.push(one.clone()),
    }
}

/// A streamed `reasoning_details` item joined to the one it continues: pieces of one
/// item share its `type` and `index` (text in pieces, then its signature), as
/// OpenRouter streams them and as the translators here write them.
fn add_detail(to: &mut Vec<Value>, item: &Value) {
    let (Some(obj), Some(last)) = (
        item.as_object(),
        to.last_mut().and_then(Value::as_object_mut),
    ) else {
        to.push(item.clone());
        return;
    };
    let same = |k: &str| obj.get(k).is_some() && obj.get(k) == last.get(k);
    if !(same("type") && same("index")) {
        to.push(item.clone());
        return;
    }
    for (k, v) in obj {
        match (k.as_str(), v, last.get_mut(k)) {
            ("text" | "summary" | "data", Value::String(piece), Some(Value::String(had))) => {
                had.push_str(piece)
            }
            (_, Value::Null, Some(_)) => {}
            (_, Value::String(s), Some(_)) if s.is_empty() => {}
            _ => {
                last.insert(k.clone(), v.clone());
            }
        }
    }
}

impl Gather {
    pub fn new(meta: GenerationMeta) -> Self {
        Gather {
            meta,
            system_fingerprint: None,
            choices: BTreeMap::new(),
            usage: None,
        }
    }

    /// Adds one chunk of the stream.
    pub fn push(&mut self, chunk: &ChatChunk) {
        if let Some(u) = &chunk.usage {
            self.usage = Some(u.clone());
        }
        for c in &chunk.choices {
            let p = self.choices.entry(c.index).or_default();
            let d = &c.delta;
            if d.role.is_some() {
                p.role.clone_from(&d.role);
            }
            if let Some(t) = &d.content {
                append(&mut p.content, t);
            }
            if let Some(t) = &d.reasoning {
                append(&mut p.reasoning, t);
            }
            for call in d.tool_calls.iter().flatten() {
                let whole = p.calls.entry(call.index).or_insert_with(|| ToolCall {
                    id: String::new(),
                    kind: "function".into(),
                    function: FunctionCall::default(),
                });
                if let Some(id) = call.id.as_deref().filter(|id| !id.is_empty()) {
                    whole.id = id.to_string();
                }
                if let Some(kind) = &call.kind {
                    whole.kind.clone_from(kind);
                }
                if let Some(f) = &call.function {
                    if let Some(name) = f.name.as_deref().filter(|n| !n.is_empty()) {
                        whole.function.name = name.to_string();
                    }
                    if let Some(args) = &f.arguments {
                        whole.function.arguments.push_str(args);
                    }
                }
            }
            extend(&mut p.images, d.images.as_ref());
            extend(&mut p.annotations, d.annotations.as_ref());
            if let Some(Value::Array(items)) = &d.reasoning_details {
                for item in items {
                    add_detail(&mut p.details, item);
                }
            }
            if let Some(Value::Object(lp)) = &c.logprobs {
                extend(&mut p.logprobs, lp.get("content"));
            }
            if c.finish_reason.is_some() {
                p.finish_reason.clone_from(&c.finish_reason);
            }
            if c.native_finish_reason.is_some() {
                p.native_finish_reason.clone_from(&c.native_finish_reason);
            }
        }
        if self.system_fingerprint.is_none() {
            self.system_fingerprint
                .clone_from(&chunk.system_fingerprint);
        }
    }

    /// The usage the stream has reported so far (a provider's final count, or what it
    /// said before it, such as Anthropic's prompt count in `message_start`).
    pub fn usage(&self) -> Option<&Usage> {
        self.usage.as_ref()
    }

    /// Whether any choice has said why it stopped.
    pub fn finished(&self) -> bool {
        self.choices.values().any(|p| p.finish_reason.is_some())
    }

    /// The reply the chunks make. A choice's `content` is `null` only when it called
    /// tools and said nothing (an empty string otherwise), as non-streamed replies have it.
    pub fn finish(self) -> ChatCompletion {
        let choices = self
            .choices
            .into_iter()
            .map(|(index, p)| {
                let calls: Vec<ToolCall> = p.calls.into_values().collect();
                let content = match p.content {
                    Some(c) if !c.is_empty() => Some(c),
                    _ if !calls.is_empty() => None,
                    _ => Some(String::new()),
                };
                let list = |v: Vec<Value>| (!v.is_empty()).then_some(Value::Array(v));
                let logprobs = (!p.logprobs.is_empty()).then(|| {
                    let mut m = Map::new();
                    m.insert("content".into(), Value::Array(p.logprobs));
                    Value::Object(m)
                });
                Choice {
                    index,
                    message: AssistantMessage {
                        role: p.role.unwrap_or_else(|| "assistant".into()),
                        content,
                        refusal: None,
                        reasoning: p.reasoning,
                        tool_calls: (!calls.is_empty()).then_some(calls),
                        images: list(p.images),
                        annotations: list(p.annotations),
                        audio: None,
                        reasoning_details: list(p.details),
                    },
                    finish_reason: p.finish_reason,
                    native_finish_reason: p.native_finish_reason,
                    logprobs,
                }
            })
            .collect();
        ChatCompletion {
            system_fingerprint: self.system_fingerprint,
            ..self.meta.completion(choices, self.usage)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn meta() -> GenerationMeta {
        GenerationMeta {
            id: "gen-1".into(),
            created: 7,
            model: "a/m".into(),
            provider: "P".into(),
        }
    }

    fn chunks(lines: &[Value]) -> ChatCompletion {
        let mut g = Gather::new(meta());
        for l in lines {
            g.push(&serde_json::from_value(l.clone()).unwrap());
        }
        g.finish()
    }

    fn chunk(choices: Value) -> Value {
        json!({"id": "up-9", "created": 1, "model": "upstream-m", "system_fingerprint": "fp", "choices": choices})
    }

    #[test]
    fn text_reasoning_and_usage_are_joined() {
        let c = chunks(&[
            chunk(json!([{"index": 0, "delta": {"role": "assistant", "reasoning": "Let me "}}])),
            chunk(json!([{"index": 0, "delta": {"reasoning": "think.", "content": "Hel"}}])),
            chunk(
                json!([{"index": 0, "delta": {"content": "lo"}, "finish_reason": "stop", "native_finish_reason": "end_turn"}]),
            ),
            json!({"id": "gen-1", "created": 7, "model": "m", "choices": [],
                   "usage": {"prompt_tokens": 5, "completion_tokens": 9, "total_tokens": 14}}),
        ]);
        let v = serde_json::to_value(&c).unwrap();
        assert_eq!(v["object"], "chat.completion");
        assert_eq!(
            (
                &v["id"],
                &v["model"],
                &v["provider"],
                &v["created"],
                &v["system_fingerprint"]
            ),
            (
                &json!("gen-1"),
                &json!("a/m"),
                &json!("P"),
                &json!(7),
                &json!("fp")
            )
        );
        let m = &v["choices"][0]["message"];
        assert_eq!(
            (m["content"].as_str(), m["reasoning"].as_str()),
            (Some("Hello"), Some("Let me think."))
        );
        assert_eq!(v["choices"][0]["finish_reason"], "stop");
        assert_eq!(v["choices"][0]["native_finish_reason"], "end_turn");
        assert_eq!(v["usage"]["completion_tokens"], 9);
    }

    #[test]
    fn tool_calls_are_assembled_by_index() {
        let c = chunks(&[
            chunk(json!([{"index": 0, "delta": {"tool_calls": [
                {"index": 0, "id": "call_a", "type": "function", "function": {"name": "get", "arguments": ""}}]}}])),
            chunk(json!([{"index": 0, "delta": {"tool_calls": [
                {"index": 1, "id": "call_b", "type": "function", "function": {"name": "put", "arguments": "{\"k\""}}]}}])),
            chunk(json!([{"index": 0, "delta": {"tool_calls": [
                {"index": 0, "function": {"arguments": "{\"q\":1}"}},
                {"index": 1, "function": {"arguments": ":2}"}}]}, "finish_reason": "tool_calls"}])),
        ]);
        let m = &c.choices[0].message;
        assert_eq!(m.content, None);
        let calls = m.tool_calls.as_ref().unwrap();
        assert_eq!(
            calls
                .iter()
                .map(|t| (
                    t.id.as_str(),
                    t.function.name.as_str(),
                    t.function.arguments.as_str()
                ))
                .collect::<Vec<_>>(),
            [
                ("call_a", "get", "{\"q\":1}"),
                ("call_b", "put", "{\"k\":2}")
            ]
        );
    }

    #[test]
    fn reasoning_details_pieces_join_into_their_item() {
        let c = chunks(&[
            chunk(json!([{"index": 0, "delta": {"reasoning_details": [
                {"type": "reasoning.text", "text": "a", "index": 0, "format": "anthropic-claude-v1"}]}}])),
            chunk(json!([{"index": 0, "delta": {"reasoning_details": [
                {"type": "reasoning.text", "text": "b", "index": 0}]}}])),
            chunk(json!([{"index": 0, "delta": {"reasoning_details": [
                {"type": "reasoning.text", "text": "", "signature": "sig", "index": 0}]}}])),
            chunk(json!([{"index": 0, "delta": {"reasoning_details": [
                {"type": "reasoning.encrypted", "data": "xyz", "index": 1}]}}])),
            chunk(json!([{"index": 0, "delta": {"content": "ok"}, "finish_reason": "stop"}])),
        ]);
        assert_eq!(
            c.choices[0].message.reasoning_details,
            Some(json!([
                {"type": "reasoning.text", "text": "ab", "index": 0, "format": "anthropic-claude-v1", "signature": "sig"},
                {"type": "reasoning.encrypted", "data": "xyz", "index": 1},
            ]))
        );
    }

    #[test]
    fn several_choices_images_annotations_and_logprobs() {
        let c = chunks(&[
            chunk(json!([
                {"index": 1, "delta": {"content": "B"}, "logprobs": {"content": [{"token": "B", "logprob": -0.1}]}},
                {"index": 0, "delta": {"content": "A", "images": [{"type": "image_url", "image_url": {"url": "data:image/png;base64,AA"}}]}},
            ])),
            chunk(json!([
                {"index": 0, "delta": {"annotations": [{"type": "url_citation", "url_citation": {"url": "https://x"}}]}, "finish_reason": "stop"},
                {"index": 1, "delta": {}, "finish_reason": "length"},
            ])),
        ]);
        assert_eq!(c.choices.len(), 2);
        assert_eq!(
            (c.choices[0].index, c.choices[0].message.content.as_deref()),
            (0, Some("A"))
        );
        assert_eq!(
            c.choices[0]
                .message
                .images
                .as_ref()
                .unwrap()
                .as_array()
                .unwrap()
                .len(),
            1
        );
        assert_eq!(
            c.choices[0].message.annotations.as_ref().unwrap()[0]["type"],
            "url_citation"
        );
        assert_eq!(c.choices[1].finish_reason.as_deref(), Some("length"));
        assert_eq!(
            c.choices[1].logprobs,
            Some(json!({"content": [{"token": "B", "logprob": -0.1}]}))
        );
    }

    #[test]
    fn an_empty_stream_is_an_empty_reply() {
        let c = Gather::new(meta()).finish();
        assert!(c.choices.is_empty() && c.usage.is_none());
        let mut g = Gather::new(meta());
        g.push(
            &serde_json::from_value(chunk(json!([{"index": 0, "delta": {"role": "assistant"}}])))
                .unwrap(),
        );
        assert!(!g.finished());
        let c = g.finish();
        assert_eq!(c.choices[0].message.content.as_deref(), Some(""));
    }
}
