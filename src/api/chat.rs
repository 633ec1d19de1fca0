//! Chat completion replies and stream chunks, in OpenAI's shape with OpenRouter's
//! additions (the request is [`super::request`]).

use serde::{Deserialize, Serialize};
use serde_json::Value;

pub use super::request::*;

// ---------------------------------------------------------------- replies

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ChatCompletion {
    pub id: String,
    #[serde(default = "completion_object")]
    pub object: String,
    pub created: u64,
    pub model: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider: Option<String>,
    /// Always serialized (null allowed): the OpenRouter SDK requires the key.
    #[serde(default)]
    pub system_fingerprint: Option<String>,
    pub choices: Vec<Choice>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<Usage>,
    /// The service tier that served the reply, as the upstream said it (`default`,
    /// `flex`, `priority`); absent where it said none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_tier: Option<String>,
}

fn completion_object() -> String {
    "chat.completion".into()
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Choice {
    pub index: u32,
    pub message: AssistantMessage,
    /// Always serialized (null allowed).
    #[serde(default)]
    pub finish_reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub native_finish_reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logprobs: Option<Value>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct AssistantMessage {
    pub role: String,
    #[serde(default)]
    pub content: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refusal: Option<String>,
    /// DeepSeek and vLLM call it `reasoning_content`.
    #[serde(
        default,
        alias = "reasoning_content",
        skip_serializing_if = "Option::is_none"
    )]
    pub reasoning: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_calls: Option<Vec<ToolCall>>,
    /// What upstreams add that callers read as they are: generated images (data URLs),
    /// URL citations, audio, typed reasoning items.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub images: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audio: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reasoning_details: Option<Value>,
}

impl AssistantMessage {
    pub fn text(content: impl Into<String>) -> Self {
        AssistantMessage {
            role: "assistant".into(),
            content: Some(content.into()),
            ..Default::default()
        }
    }
}

pub use crate::usage::{CompletionTokensDetails, CostDetails, PromptTokensDetails, Usage};

// ---------------------------------------------------------------- stream chunks

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ChatChunk {
    pub id: String,
    #[serde(default = "chunk_object")]
    pub object: String,
    pub created: u64,
    pub model: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system_fingerprint: Option<String>,
    pub choices: Vec<ChunkChoice>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<Usage>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<Value>,
    /// As [`ChatCompletion::service_tier`] (the final usage chunk of a stream).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_tier: Option<String>,
}

fn chunk_object() -> String {
    "chat.completion.chunk".into()
}

impl ChatChunk {
    /// A chunk with one choice and no identity yet: translators make these and the
    /// stream stamps them with the generation's ID, model and provider.
    pub fn bare(delta: Delta, finish_reason: Option<String>) -> Self {
        ChatChunk {
            id: String::new(),
            object: chunk_object(),
            created: 0,
            model: String::new(),
            provider: None,
            system_fingerprint: None,
            choices: vec![ChunkChoice {
                index: 0,
                delta,
                finish_reason,
                native_finish_reason: None,
                logprobs: None,
            }],
            usage: None,
            error: None,
            service_tier: None,
        }
    }

    /// A chunk that carries only usage (OpenAI's `include_usage` final chunk).
    pub fn usage_only(usage: Usage) -> Self {
        let mut c = ChatChunk::bare(Delta::default(), None);
        c.choices.clear();
        c.usage = Some(usage);
        c
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ChunkChoice {
    pub index: u32,
    pub delta: Delta,
    /// Always serialized (null allowed).
    #[serde(default)]
    pub finish_reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub native_finish_reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logprobs: Option<Value>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Delta {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
    /// DeepSeek and vLLM call it `reasoning_content`.
    #[serde(
        default,
        alias = "reasoning_content",
        skip_serializing_if = "Option::is_none"
    )]
    pub reasoning: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_calls: Option<Vec<ToolCallDelta>>,
    /// Streamed as the upstream sends them (see [`AssistantMessage`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub images: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reasoning_details: Option<Value>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct ToolCallDelta {
    pub index: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub function: Option<FunctionCallDelta>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct FunctionCallDelta {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arguments: Option<String>,
}

/// The start every chat chunk of one stream shares, written once per stream:
/// `data: {"id":…,"object":"chat.completion.chunk","created":…,"model":…,"provider":…`.
/// A chunk is this and its own fields after it, so the identity is neither copied into
/// each chunk nor serialised again.
#[derive(Debug, Clone)]
pub struct ChunkHead(Vec<u8>);

#[derive(Serialize)]
struct Identity<'a> {
    id: &'a str,
    object: &'a str,
    created: u64,
    model: &'a str,
    provider: &'a str,
}

impl ChunkHead {
    pub fn new(meta: &GenerationMeta) -> Self {
        let mut head = b"data: ".to_vec();
        let identity = Identity {
            id: &meta.id,
            object: "chat.completion.chunk",
            created: meta.created,
            model: &meta.model,
            provider: &meta.provider,
        };
        if serde_json::to_writer(&mut head, &identity).is_ok() {
            head.pop(); // the closing brace: the chunk's own fields follow
        }
        ChunkHead(head)
    }

    /// `chunk` as an SSE event of this stream (its own identity is not read), appended
    /// to `out`. Written by hand, field names as literals: this runs once per streamed
    /// token.
    pub fn write(&self, chunk: &ChatChunk, out: &mut Vec<u8>) {
        self.write_fields(out, |out| {
            let mut w = JsonOut::new(out);
            w.raw("{");
            if let Some(fp) = &chunk.system_fingerprint {
                w.key_str("system_fingerprint", fp);
                w.raw(",");
            }
            w.raw("\"choices\":[");
            for (i, c) in chunk.choices.iter().enumerate() {
                if i > 0 {
                    w.raw(",");
                }
                w.raw("{\"index\":");
                w.value(&c.index);
                w.raw(",\"delta\":");
                c.delta.write(&mut w);
                w.raw(",\"finish_reason\":");
                match &c.finish_reason {
                    Some(r) => w.value(r),
                    None => w.raw("null"),
                }
                if let Some(n) = &c.native_finish_reason {
                    w.raw(",");
                    w.key_str("native_finish_reason", n);
                }
                if let Some(lp) = &c.logprobs {
                    w.raw(",\"logprobs\":");
                    w.value(lp);
                }
                w.raw("}");
            }
            w.raw("]");
            if let Some(u) = &chunk.usage {
                w.raw(",\"usage\":");
                w.value(u);
            }
            if let Some(e) = &chunk.error {
                w.raw(",\"error\":");
                w.value(e);
            }
            if let Some(t) = &chunk.service_tier {
                w.raw(",");
                w.key_str("service_tier", t);
            }
            w.raw("}");
            w.ok
        });
    }

    /// The head, then the object `write` appends with its opening brace made a comma,
    /// then the event's end. `write` reports whether it wrote an object.
    pub fn write_fields(&self, out: &mut Vec<u8>, write: impl FnOnce(&mut Vec<u8>) -> bool) {
        out.extend_from_slice(&self.0);
        let mark = out.len();
        if write(out) && out.get(mark) == Some(&b'{') {
            if let Some(brace) = out.get_mut(mark) {
                *brace = b',';
            }
        } else {
            out.truncate(mark);
            out.push(b'}');
        }
        out.extend_from_slice(b"\n\n");
    }
}

/// JSON written by hand into a buffer; `ok` turns false if a value failed to
/// serialise (it cannot for these types, but nothing here may panic).
pub(crate) struct JsonOut<'a> {
    out: &'a mut Vec<u8>,
    pub(crate) ok: bool,
}

impl<'a> JsonOut<'a> {
    pub(crate) fn new(out: &'a mut Vec<u8>) -> Self {
        JsonOut { out, ok: true }
    }

    pub(crate) fn raw(&mut self, s: &str) {
        self.out.extend_from_slice(s.as_bytes());
    }

    pub(crate) fn value<T: Serialize + ?Sized>(&mut self, v: &T) {
        self.ok &= serde_json::to_writer(&mut *self.out, v).is_ok();
    }

    /// `"key":"value"`; `key` is one of our own literals, which need no escaping.
    pub(crate) fn key_str(&mut self, key: &str, value: &str) {
        self.raw("\"");
        self.raw(key);
        self.raw("\":");
        self.value(value);
    }
}

impl Delta {
    /// As its derived `Serialize` writes it (absent fields left out), by hand.
    fn write(&self, w: &mut JsonOut<'_>) {
        let mut sep = "{";
        let mut field = |w: &mut JsonOut<'_>, key: &str| {
            w.raw(sep);
            sep = ",";
            w.raw("\"");
            w.raw(key);
            w.raw("\":");
        };
        for (key, text) in [
            ("role", &self.role),
            ("content", &self.content),
            ("reasoning", &self.reasoning),
        ] {
            if let Some(t) = text {
                field(w, key);
                w.value(t.as_str());
            }
        }
        if let Some(calls) = &self.tool_calls {
            field(w, "tool_calls");
            w.value(calls);
        }
        for (key, v) in [
            ("images", &self.images),
            ("annotations", &self.annotations),
            ("reasoning_details", &self.reasoning_details),
        ] {
            if let Some(v) = v {
                field(w, key);
                w.value(v);
            }
        }
        if sep == "{" {
            w.raw("{");
        }
        w.raw("}");
    }
}

/// Identity of one generation, stamped on every reply and chunk.
#[derive(Debug, Clone, PartialEq)]
pub struct GenerationMeta {
    pub id: String,
    pub created: u64,
    pub model: String,
    pub provider: String,
}

impl GenerationMeta {
    pub fn chunk(&self, choices: Vec<ChunkChoice>) -> ChatChunk {
        ChatChunk {
            id: self.id.clone(),
            object: chunk_object(),
            created: self.created,
            model: self.model.clone(),
            provider: Some(self.provider.clone()),
            system_fingerprint: None,
            choices,
            usage: None,
            error: None,
            service_tier: None,
        }
    }

    pub fn delta_chunk(&self, delta: Delta, finish_reason: Option<&str>) -> ChatChunk {
        self.chunk(vec![ChunkChoice {
            index: 0,
            delta,
            finish_reason: finish_reason.map(str::to_string),
            native_finish_reason: None,
            logprobs: None,
        }])
    }

    pub fn completion(&self, choices: Vec<Choice>, usage: Option<Usage>) -> ChatCompletion {
        ChatCompletion {
            id: self.id.clone(),
            object: completion_object(),
            created: self.created,
            model: self.model.clone(),
            provider: Some(self.provider.clone()),
            system_fingerprint: None,
            choices,
            usage,
            service_tier: None,
        }
    }
}

/// `gen-<unix secs>-<20 alphanumerics>` from caller-supplied random bytes.
pub fn generation_id(now_secs: u64, random: &[u8]) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let tail: String = random
        .iter()
        .take(20)
        .filter_map(|b| ALPHABET.get(usize::from(*b).checked_rem(ALPHABET.len())?))
        .map(|&b| char::from(b))
        .collect();
    format!("gen-{now_secs}-{tail}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_chunk_written_by_hand_is_the_chunk_serialised() {
        let meta = GenerationMeta {
            id: "gen-1".into(),
            created: 7,
            model: "a/b".into(),
            provider: "P \"quoted\"".into(),
        };
        let head = ChunkHead::new(&meta);
        let text = |t: &str| Delta {
            content: Some(t.into()),
            ..Default::default()
        };
        let full = Delta {
            role: Some("assistant".into()),
            content: Some("a\n\"b\" ☀".into()),
            reasoning: Some("\u{1}".into()),
            tool_calls: Some(vec![ToolCallDelta {
                index: 1,
                id: Some("c".into()),
                kind: Some("function".into()),
                function: Some(FunctionCallDelta {
                    name: Some("f".into()),
                    arguments: Some("{}".into()),
                }),
            }]),
            images: Some(serde_json::json!([{"type": "image_url"}])),
            annotations: Some(serde_json::json!([])),
            reasoning_details: Some(serde_json::json!([{"type": "reasoning.text"}])),
        };
        let mut chunks = vec![
            meta.delta_chunk(text("hi"), None),
            meta.delta_chunk(Delta::default(), Some("stop")),
            meta.delta_chunk(full, None),
        ];
        let mut two = meta.delta_chunk(text("x"), None);
        two.choices.push(ChunkChoice {
            index: 1,
            delta: text("y"),
            finish_reason: Some("length".into()),
            native_finish_reason: Some("max_tokens".into()),
            logprobs: Some(serde_json::json!({"content": null})),
        });
        two.system_fingerprint = Some("fp".into());
        two.usage = Some(Usage::new(1, 2));
        two.error = Some(serde_json::json!({"code": 502}));
        chunks.push(two);
        for chunk in chunks {
            let mut out = Vec::new();
            head.write(&chunk, &mut out);
            let text = String::from_utf8(out).unwrap();
            let json = text
                .strip_prefix("data: ")
                .unwrap()
                .strip_suffix("\n\n")
                .unwrap();
            assert!(!json.contains('\n'), "one line: {json}");
            let written: Value = serde_json::from_str(json).unwrap();
            assert_eq!(written, serde_json::to_value(&chunk).unwrap());
        }
    }

    use serde_json::json;

    #[test]
    fn reasoning_content_is_read_as_reasoning() {
        let d: Delta = serde_json::from_value(json!({"reasoning_content": "thinking"})).unwrap();
        assert_eq!(d.reasoning.as_deref(), Some("thinking"));
        let m: AssistantMessage = serde_json::from_value(
            json!({"role": "assistant", "content": "4", "reasoning_content": "2+2"}),
        )
        .unwrap();
        assert_eq!(serde_json::to_value(&m).unwrap()["reasoning"], "2+2");
    }

    #[test]
    fn required_null_keys_are_serialized() {
        let meta = GenerationMeta {
            id: "gen-1".into(),
            created: 1,
            model: "m".into(),
            provider: "p".into(),
        };
        let c = serde_json::to_value(meta.completion(
            vec![Choice {
                index: 0,
                message: AssistantMessage::text("hi"),
                finish_reason: None,
                native_finish_reason: None,
                logprobs: None,
            }],
            None,
        ))
        .unwrap();
        assert!(c["system_fingerprint"].is_null() && c.get("system_fingerprint").is_some());
        assert!(c["choices"][0].get("finish_reason").is_some());
        let ch = serde_json::to_value(meta.delta_chunk(Delta::default(), None)).unwrap();
        assert!(ch["choices"][0].get("finish_reason").is_some());
        assert_eq!(ch["object"], "chat.completion.chunk");
    }
}
