//! The legacy completions surface (`POST /completions`): a `prompt` in, `text_completion`
//! replies and chunks out. The body is read once, from bytes, into [`CompletionsRequest`]
//! (the chat reader's combinators, so a refused value is named by its field), which
//! becomes a chat request of one user message ([`TryFrom`]) and takes the one pipeline
//! (routing, admission, translation, billing) like any other. A chat reply or chunk
//! becomes a [`TextCompletion`] or [`TextCompletionChunk`] ([`From`]).

use serde::Serialize;
use serde_json::{Map, Value};

use super::provider::ProviderPreferences;
use super::read::{boolean, list, number, string, whole, Bad, Fields, Read};
use super::{ChatChunk, ChatCompletion, ChatRequest, Content, Message, Role, Usage};
use super::{ReasoningConfig, Stop, StreamOptions};
use crate::error::{Error, Result};

/// Fields OpenAI defines that this gateway cannot serve: refused by name when set
/// (`false` and `null` are "not set").
const UNSUPPORTED: &[&str] = &["suffix", "echo", "best_of", "logprobs", "top_logprobs"];

/// Fields that mean the same in a chat request and are passed on as chat passes them
/// (its `extra`, checked there: penalties, seed, `n`, `user`, ...), with the gateway's
/// own fields that chat accepts too (`usage`, `transforms`, ...; never sent upstream).
const PASSED_ON: &[&str] = &[
    "n",
    "seed",
    "presence_penalty",
    "frequency_penalty",
    "repetition_penalty",
    "logit_bias",
    "user",
    "session_limits",
    "min_p",
    "top_a",
    "metadata",
    "session_id",
    "usage",
    "route",
    "transforms",
    "plugins",
    "preset",
];

/// `POST /completions`, as OpenAI defines it with OpenRouter's additions. Any other
/// field is refused by name: a completions request has no place for chat's fields.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CompletionsRequest {
    /// One prompt (a string, or a list of one string).
    pub prompt: String,
    pub model: Option<String>,
    /// OpenRouter: ordered fallback models.
    pub models: Option<Vec<String>>,
    pub max_tokens: Option<u64>,
    pub temperature: Option<f64>,
    pub top_p: Option<f64>,
    pub top_k: Option<u64>,
    pub stop: Option<Stop>,
    pub stream: Option<bool>,
    pub stream_options: Option<StreamOptions>,
    pub reasoning: Option<ReasoningConfig>,
    pub provider: Option<Box<ProviderPreferences>>,
    /// The [`PASSED_ON`] fields, as sent.
    pub extra: Map<String, Value>,
}

impl CompletionsRequest {
    /// Reads a body once, from bytes: nesting depth, then the typed request, each
    /// refused value named by its field (`prompt: must not be empty`).
    pub fn parse(body: &[u8]) -> Result<Self> {
        let Value::Object(m) = super::parse_json(body)? else {
            return Err(Error::bad_request("The body must be a JSON object"));
        };
        Ok(request(Fields(m))?)
    }
}

fn request(mut f: Fields) -> Read<CompletionsRequest> {
    let prompt = f.required("prompt", &prompt)?;
    for name in UNSUPPORTED {
        if f.take(name).is_some_and(|v| v != Value::Bool(false)) {
            return Err(Bad::new("is not supported by this gateway").in_field(name));
        }
    }
    let req = CompletionsRequest {
        prompt,
        model: f.read("model", &string)?,
        models: f.read("models", &|v| list(v, &string))?,
        max_tokens: f.read("max_tokens", &whole)?,
        temperature: f.read("temperature", &number)?,
        top_p: f.read("top_p", &number)?,
        top_k: f.read("top_k", &whole)?,
        stop: f.read("stop", &super::read::stop)?,
        stream: f.read("stream", &boolean)?,
        stream_options: f.read("stream_options", &super::read::stream_options)?,
        reasoning: f.read("reasoning", &super::read::reasoning)?,
        provider: f.read("provider", &super::provider::read)?,
        extra: Map::new(),
    };
    let mut extra = Map::new();
    for name in PASSED_ON {
        if let Some(v) = f.take(name) {
            extra.insert((*name).to_string(), v);
        }
    }
    if let Some(name) = f.0.iter().find(|(_, v)| !v.is_null()).map(|(k, _)| k) {
        let rule = "is not a field of a completions request (chat's fields: /chat/completions)";
        return Err(Bad::new(rule).in_field(name));
    }
    Ok(CompletionsRequest { extra, ..req })
}

/// `prompt`: a string, or a list of one string.
fn prompt(v: Value) -> Read<String> {
    let items = match v {
        Value::Array(items) => items,
        other => return string(other),
    };
    let mut items = items.into_iter();
    match (items.next(), items.next()) {
        (Some(Value::String(s)), None) => Ok(s),
        (None, _) => Err(Bad::new("must not be empty")),
        (Some(Value::String(_)), Some(_)) => Err(Bad::new(
            "one prompt per request (send each prompt as its own request)",
        )),
        _ => Err(Bad::new(
            "token arrays are not supported; send the prompt as text",
        )),
    }
}

/// The chat request a completions request asks for: its prompt as one user message,
/// checked by the rules every chat request is.
impl TryFrom<CompletionsRequest> for ChatRequest {
    type Error = Error;

    fn try_from(r: CompletionsRequest) -> Result<Self> {
        let chat = ChatRequest {
            model: r.model,
            models: r.models,
            messages: vec![Message {
                role: Role::User,
                content: Some(Content::Text(r.prompt)),
                ..Default::default()
            }],
            stream: r.stream,
            stream_options: r.stream_options,
            max_tokens: r.max_tokens,
            temperature: r.temperature,
            top_p: r.top_p,
            top_k: r.top_k,
            stop: r.stop,
            reasoning: r.reasoning,
            provider: r.provider,
            extra: r.extra,
            ..Default::default()
        };
        super::validate::check(&chat)?;
        Ok(chat)
    }
}

// ---------------------------------------------------------------- replies

const OBJECT: &str = "text_completion";

/// A `text_completion` reply.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TextCompletion {
    pub id: String,
    pub object: &'static str,
    pub created: u64,
    pub model: String,
    /// Always written (null allowed), as is `system_fingerprint`.
    pub provider: Option<String>,
    pub system_fingerprint: Option<String>,
    pub choices: Vec<TextChoice>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub usage: Option<Usage>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TextChoice {
    pub text: String,
    pub index: u32,
    /// Always null: this surface carries no log probabilities.
    pub logprobs: (),
    /// Always written (null allowed), as is `native_finish_reason`.
    pub finish_reason: Option<String>,
    pub native_finish_reason: Option<String>,
}

impl From<&ChatCompletion> for TextCompletion {
    fn from(c: &ChatCompletion) -> Self {
        let choices = c
            .choices
            .iter()
            .map(|ch| TextChoice {
                text: ch.message.content.clone().unwrap_or_default(),
                index: ch.index,
                logprobs: (),
                finish_reason: ch.finish_reason.clone(),
                native_finish_reason: ch.native_finish_reason.clone(),
            })
            .collect();
        TextCompletion {
            id: c.id.clone(),
            object: OBJECT,
            created: c.created,
            model: c.model.clone(),
            provider: c.provider.clone(),
            system_fingerprint: c.system_fingerprint.clone(),
            choices,
            usage: c.usage.clone(),
        }
    }
}

/// A `text_completion` stream chunk, borrowed from the chat chunk it stands for (one
/// is written per streamed token).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TextCompletionChunk<'a> {
    pub id: &'a str,
    pub object: &'static str,
    pub created: u64,
    pub model: &'a str,
    /// Always written (null allowed).
    pub provider: Option<&'a str>,
    pub choices: Vec<TextChunkChoice<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub usage: Option<&'a Usage>,
    /// A stream's failure, in OpenRouter's error shape (passed on as the chunk has it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<&'a Value>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TextChunkChoice<'a> {
    pub text: &'a str,
    pub index: u32,
    /// Always null.
    pub logprobs: (),
    /// Always written (null allowed).
    pub finish_reason: Option<&'a str>,
}

impl<'a> From<&'a ChatChunk> for TextCompletionChunk<'a> {
    fn from(c: &'a ChatChunk) -> Self {
        let choices = c
            .choices
            .iter()
            .map(|ch| TextChunkChoice {
                text: ch.delta.content.as_deref().unwrap_or_default(),
                index: ch.index,
                logprobs: (),
                finish_reason: ch.finish_reason.as_deref(),
            })
            .collect();
        TextCompletionChunk {
            id: &c.id,
            object: OBJECT,
            created: c.created,
            model: &c.model,
            provider: c.provider.as_deref(),
            choices,
            usage: c.usage.as_ref(),
            error: c.error.as_ref(),
        }
    }
}

impl<'a> TextCompletionChunk<'a> {
    /// The final usage-only chunk of a stream: `last`'s identity with `usage`.
    pub fn usage(last: &'a ChatChunk, usage: &'a Usage) -> Self {
        TextCompletionChunk {
            usage: Some(usage),
            ..Self::from(last)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{AssistantMessage, Choice, GenerationMeta};
    use serde_json::json;

    /// The conversion from a body, as the surface does it.
    fn to_chat(body: &Value) -> Result<ChatRequest> {
        ChatRequest::try_from(CompletionsRequest::parse(body.to_string().as_bytes())?)
    }

    fn reply(c: &ChatCompletion) -> Value {
        serde_json::to_value(TextCompletion::from(c)).unwrap()
    }

    fn chunk(c: &ChatChunk) -> Value {
        serde_json::to_value(TextCompletionChunk::from(c)).unwrap()
    }

    #[test]
    fn prompt_becomes_one_user_message() {
        let r = to_chat(&json!({"model": "a/b", "prompt": "Once upon", "max_tokens": 5, "stop": ["\n"], "provider": {"sort": "price"}})).unwrap();
        assert_eq!(r.messages.len(), 1);
        assert_eq!(r.messages[0].role, crate::api::Role::User);
        assert_eq!(r.messages[0].text(), "Once upon");
        assert_eq!(r.max_tokens, Some(5));
        assert!(r.provider.is_some());
        let r = to_chat(&json!({"model": "a/b", "prompt": ["x"]})).unwrap();
        assert_eq!(r.messages[0].text(), "x");
    }

    #[test]
    fn bad_prompts_name_the_field() {
        for (body, want) in [
            (json!({"model": "a/b"}), "prompt: is required"),
            (
                json!({"model": "a/b", "prompt": 5}),
                "prompt: must be a string",
            ),
            (
                json!({"model": "a/b", "prompt": [1, 2]}),
                "prompt: token arrays",
            ),
            (
                json!({"model": "a/b", "prompt": ["a", "b"]}),
                "prompt: one prompt",
            ),
            (
                json!({"model": "a/b", "prompt": []}),
                "prompt: must not be empty",
            ),
            (
                json!({"model": "a/b", "prompt": "x", "echo": true}),
                "echo: is not supported",
            ),
            (
                json!({"model": "a/b", "prompt": "x", "temperature": 9}),
                "temperature",
            ),
        ] {
            let e = to_chat(&body).unwrap_err();
            assert_eq!(e.status(), 400);
            assert!(e.to_string().contains(want), "{e}");
        }
    }

    #[test]
    fn every_field_is_typed_passed_on_or_refused_by_name() {
        let r = to_chat(&json!({
            "model": "a/b", "prompt": "x", "models": ["c/d"], "temperature": 0.5, "top_p": 0.9,
            "top_k": 3, "stop": "\n", "stream": true, "stream_options": {"include_usage": true},
            "reasoning": {"effort": "low"}, "seed": 7, "user": "u", "n": 2, "echo": false,
            "suffix": null, "usage": {"include": true}, "logit_bias": {"50256": -100},
        }))
        .unwrap();
        assert_eq!(r.models.as_deref(), Some(&["c/d".to_string()][..]));
        assert_eq!(
            (r.temperature, r.top_p, r.top_k),
            (Some(0.5), Some(0.9), Some(3))
        );
        assert_eq!(r.stop, Some(Stop::One("\n".into())));
        assert!(r.is_stream());
        assert_eq!(r.stream_options.and_then(|o| o.include_usage), Some(true));
        assert_eq!(
            r.reasoning.and_then(|c| c.effort),
            Some(crate::api::Effort::Low)
        );
        assert_eq!(r.extra["seed"], 7);
        assert_eq!(r.extra["user"], "u");
        assert_eq!(r.extra["n"], 2);
        assert!(r.extra.get("echo").is_none() && r.extra.get("suffix").is_none());
        for (body, want) in [
            (
                json!({"model": "a/b", "prompt": "x", "messages": []}),
                "messages: is not a field of a completions request",
            ),
            (
                json!({"model": "a/b", "prompt": "x", "tools": [{"type": "function"}]}),
                "tools: is not a field of a completions request",
            ),
            (
                json!({"model": "a/b", "prompt": "x", "logprobs": 2}),
                "logprobs: is not supported by this gateway",
            ),
            (
                json!({"model": "a/b", "prompt": "x", "best_of": 2}),
                "best_of: is not supported by this gateway",
            ),
            (
                json!({"model": "a/b", "prompt": "x", "max_tokens": -1}),
                "max_tokens: must be a whole number, not -1",
            ),
            (
                json!({"model": "a/b", "prompt": "x", "stop": 4}),
                "stop: must be a string or an array of strings, not a number",
            ),
            (
                json!({"model": "a/b", "prompt": "x", "stream": "yes"}),
                "stream: must be a boolean, not a string",
            ),
            (
                json!({"model": "a/b", "prompt": "x", "seed": "s"}),
                "seed: must be an integer",
            ),
            (
                json!({"model": "a/b", "prompt": "x", "provider": {"sort": "fast"}}),
                "provider.sort: must be one of",
            ),
            (json!(["a/b"]), "The body must be a JSON object"),
        ] {
            let e = to_chat(&body).unwrap_err();
            assert_eq!(e.status(), 400, "{body}");
            assert!(e.to_string().contains(want), "{body}: {e}");
        }
        // A field sent as null is a field not sent.
        assert!(to_chat(&json!({"model": "a/b", "prompt": "x", "messages": null})).is_ok());
    }

    #[test]
    fn replies_are_text_completions() {
        let meta = GenerationMeta {
            id: "gen-1".into(),
            created: 1,
            model: "a/b".into(),
            provider: "P".into(),
        };
        let c = meta.completion(
            vec![Choice {
                index: 0,
                message: AssistantMessage::text(" there was"),
                finish_reason: Some("length".into()),
                native_finish_reason: Some("max_tokens".into()),
                logprobs: None,
            }],
            Some(Usage::new(3, 2)),
        );
        let v = reply(&c);
        assert_eq!(v["object"], "text_completion");
        assert_eq!(v["choices"][0]["text"], " there was");
        assert_eq!(v["choices"][0]["finish_reason"], "length");
        assert_eq!(v["usage"]["total_tokens"], 5);
        let ch = chunk(&meta.delta_chunk(
            crate::api::Delta {
                content: Some("hi".into()),
                ..Default::default()
            },
            None,
        ));
        assert_eq!(ch["choices"][0]["text"], "hi");
        assert_eq!(ch["object"], "text_completion");
    }

    #[test]
    fn replies_and_chunks_are_written_in_full_with_exact_amounts() {
        let meta = GenerationMeta {
            id: "gen-1".into(),
            created: 1,
            model: "a/b".into(),
            provider: "P".into(),
        };
        let mut usage = Usage::new(3, 2);
        usage.cost = Some(crate::money::Usd(123_456_789_012_345_678));
        let c = meta.completion(
            vec![Choice {
                index: 0,
                message: AssistantMessage::text("hi"),
                finish_reason: None,
                native_finish_reason: None,
                logprobs: None,
            }],
            Some(usage.clone()),
        );
        let text = serde_json::to_string(&TextCompletion::from(&c)).unwrap();
        assert_eq!(
            text,
            r#"{"id":"gen-1","object":"text_completion","created":1,"model":"a/b","provider":"P","system_fingerprint":null,"choices":[{"text":"hi","index":0,"logprobs":null,"finish_reason":null,"native_finish_reason":null}],"usage":{"prompt_tokens":3,"completion_tokens":2,"total_tokens":5,"cost":123456.789012345678}}"#
        );
        let last = meta.chunk(Vec::new());
        let text = serde_json::to_string(&TextCompletionChunk::usage(&last, &usage)).unwrap();
        assert_eq!(
            text,
            r#"{"id":"gen-1","object":"text_completion","created":1,"model":"a/b","provider":"P","choices":[],"usage":{"prompt_tokens":3,"completion_tokens":2,"total_tokens":5,"cost":123456.789012345678}}"#
        );
        let mut failed = meta.delta_chunk(Default::default(), Some("error"));
        failed.error = Some(json!({"code": 502, "message": "boom"}));
        let v = chunk(&failed);
        assert_eq!(v["error"]["code"], 502);
        assert_eq!(v["choices"][0]["finish_reason"], "error");
        assert_eq!(v["choices"][0]["text"], "");
        assert!(v["choices"][0]["logprobs"].is_null());
    }
}
