//! The legacy completions surface (`POST /completions`): a `prompt` in, `text_completion`
//! replies and chunks out. A prompt becomes one user message of a chat request, which
//! takes the one pipeline (routing, admission, translation, billing) like any other.

use serde_json::{json, Map, Value};

use super::{ChatChunk, ChatCompletion, ChatRequest, Usage};
use crate::error::{Error, Result};

/// Fields of a completions request that mean the same in a chat request.
const SHARED: &[&str] = &[
    "model",
    "models",
    "max_tokens",
    "temperature",
    "top_p",
    "top_k",
    "n",
    "stop",
    "stream",
    "stream_options",
    "seed",
    "presence_penalty",
    "frequency_penalty",
    "repetition_penalty",
    "logit_bias",
    "user",
    "provider",
    "session_id",
    "session_limits",
    "reasoning",
    "min_p",
    "top_a",
    "metadata",
];

/// The chat request a completions body asks for.
pub fn to_chat(body: &Value) -> Result<ChatRequest> {
    let obj = body
        .as_object()
        .ok_or_else(|| Error::bad_request("The body must be a JSON object"))?;
    let prompt = match obj.get("prompt") {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(list)) => match list.as_slice() {
            [Value::String(s)] => s.clone(),
            [] => return Err(Error::bad_request("prompt: must not be empty")),
            [Value::String(_), ..] => {
                return Err(Error::bad_request(
                    "prompt: one prompt per request (send each prompt as its own request)",
                ))
            }
            _ => {
                return Err(Error::bad_request(
                    "prompt: token arrays are not supported; send the prompt as text",
                ))
            }
        },
        None | Some(Value::Null) => return Err(Error::bad_request("prompt: is required")),
        Some(_) => return Err(Error::bad_request("prompt: must be a string")),
    };
    for unsupported in ["suffix", "echo", "best_of"] {
        if obj
            .get(unsupported)
            .is_some_and(|v| !v.is_null() && v != &json!(false))
        {
            return Err(Error::bad_request(format!(
                "{unsupported}: is not supported by this gateway"
            )));
        }
    }
    let mut chat = Map::new();
    for k in SHARED {
        if let Some(v) = obj.get(*k) {
            chat.insert((*k).to_string(), v.clone());
        }
    }
    chat.insert(
        "messages".into(),
        json!([{ "role": "user", "content": prompt }]),
    );
    ChatRequest::from_value(Value::Object(chat))
}

/// A chat completion as a `text_completion`.
pub fn reply(c: &ChatCompletion) -> Value {
    let choices: Vec<Value> = c
        .choices
        .iter()
        .map(|ch| {
            json!({
                "text": ch.message.content.clone().unwrap_or_default(),
                "index": ch.index,
                "logprobs": null,
                "finish_reason": ch.finish_reason,
                "native_finish_reason": ch.native_finish_reason,
            })
        })
        .collect();
    let mut v = json!({
        "id": c.id,
        "object": "text_completion",
        "created": c.created,
        "model": c.model,
        "provider": c.provider,
        "system_fingerprint": c.system_fingerprint,
        "choices": choices,
    });
    if let Some(u) = &c.usage {
        super::set_field(&mut v, "usage", super::usage_value(u));
    }
    v
}

/// One stamped chat chunk as a `text_completion` chunk.
pub fn chunk(c: &ChatChunk) -> Value {
    let choices: Vec<Value> = c
        .choices
        .iter()
        .map(|ch| {
            json!({
                "text": ch.delta.content.clone().unwrap_or_default(),
                "index": ch.index,
                "logprobs": null,
                "finish_reason": ch.finish_reason,
            })
        })
        .collect();
    let mut v = json!({
        "id": c.id,
        "object": "text_completion",
        "created": c.created,
        "model": c.model,
        "provider": c.provider,
        "choices": choices,
    });
    if let Some(u) = &c.usage {
        super::set_field(&mut v, "usage", super::usage_value(u));
    }
    if let Some(e) = &c.error {
        super::set_field(&mut v, "error", e.clone());
    }
    v
}

/// The final usage-only chunk.
pub fn usage_chunk(c: &ChatChunk, usage: &Usage) -> Value {
    let mut v = chunk(c);
    super::set_field(&mut v, "usage", super::usage_value(usage));
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{AssistantMessage, Choice, GenerationMeta};

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
}
