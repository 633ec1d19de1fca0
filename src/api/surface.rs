//! The API surfaces that lead into the one chat pipeline: chat completions, legacy
//! completions, Responses and Anthropic Messages. Each is a request conversion into a
//! [`ChatRequest`] plus conversions of the chat reply, chunks and errors back into its
//! own shapes; routing, admission, translation to providers and billing are shared.

use serde::Serialize;
use serde_json::Value;

use super::completions::{CompletionsRequest, TextCompletion, TextCompletionChunk};
use super::sse::{encode_data, DONE};
use super::{messages, responses, ChatChunk, ChatCompletion};
use super::{ChatRequest, Usage};
use crate::error::{Error, Result, Trail};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Surface {
    Chat,
    Completions,
    Responses,
    Messages,
}

/// A parsed request of any surface.
#[derive(Debug, Clone)]
pub struct Incoming {
    pub surface: Surface,
    pub chat: ChatRequest,
    /// Responses: the request fields its replies echo.
    pub echo: responses::Echo,
    /// Messages: the caller's own body, sent as it is to Anthropic endpoints.
    pub native: Option<Value>,
    /// Messages: why only an Anthropic endpoint can serve it (server tools, ...).
    pub anthropic_only: Option<String>,
}

impl Surface {
    /// How `/generation` names the surface a request came through.
    pub fn api_type(self) -> &'static str {
        match self {
            Surface::Chat => "chat",
            Surface::Completions => "completions",
            Surface::Responses => "responses",
            Surface::Messages => "messages",
        }
    }

    /// Reads a body of this surface, once, from bytes, into the chat request it asks
    /// for (and what its replies need of it).
    pub fn parse(self, body: &[u8]) -> Result<Incoming> {
        let mut incoming = Incoming {
            surface: self,
            chat: ChatRequest::default(),
            echo: Default::default(),
            native: None,
            anthropic_only: None,
        };
        match self {
            Surface::Chat => incoming.chat = ChatRequest::parse(body)?,
            Surface::Completions => {
                incoming.chat = ChatRequest::try_from(CompletionsRequest::parse(body)?)?;
            }
            Surface::Responses => (incoming.chat, incoming.echo) = responses::parse(body)?,
            Surface::Messages => {
                let (c, native) = messages::convert(body)?;
                incoming.chat = c.chat;
                // The gateway's plugins (stripped from the pass-through body too).
                for k in ["plugins", "transforms"] {
                    if let Some(v) = native.get(k) {
                        incoming.chat.extra.insert(k.into(), v.clone());
                    }
                }
                incoming.anthropic_only = c.anthropic_only;
                incoming.native = Some(native);
            }
        }
        // The other surfaces pass `plugins` and `transforms` on in `extra`.
        if self != Surface::Chat {
            incoming.chat.plugins = super::plugins::Plugins::take(&mut incoming.chat.extra)?;
        }
        Ok(incoming)
    }

    /// The error body this surface's clients read.
    pub fn error_body(self, e: &Error) -> ErrorReply {
        match self {
            Surface::Messages => ErrorReply::Messages(messages::error_body(e)),
            _ => ErrorReply::OpenRouter(e.body()),
        }
    }

    /// The error body with what the endpoints tried add to it (see
    /// [`Error::body_with`]; on Messages, `availability` and `previous_errors` only).
    pub fn error_body_with(self, e: &Error, trail: Trail) -> ErrorReply {
        match self {
            Surface::Messages => ErrorReply::Messages(messages::error_body_with(e, trail)),
            _ => ErrorReply::OpenRouter(e.body_with(trail)),
        }
    }
}

/// A reply in the shape of the surface it goes to, each written by its own type.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Reply {
    Chat(ChatCompletion),
    Completions(TextCompletion),
    Responses(responses::Response),
    Messages(messages::Message),
}

impl Reply {
    /// The reply as JSON, written into a buffer of about its size, so that a large
    /// reply (a long text, generated images) is not held twice over while a growing
    /// buffer moves.
    pub fn to_vec(&self) -> Result<Vec<u8>> {
        let mut out = Vec::with_capacity(self.size_hint());
        serde_json::to_writer(&mut out, self).map_err(|e| Error::Internal(e.to_string()))?;
        Ok(out)
    }

    /// About how many bytes the reply's text and media take, and a little for the rest.
    fn size_hint(&self) -> usize {
        let value = |v: &Option<Value>| v.as_ref().map_or(0, crate::json::size_hint);
        let text = |t: &Option<String>| t.as_ref().map_or(0, String::len);
        let own: usize = match self {
            Reply::Chat(c) => c.choices.iter().fold(0, |n: usize, ch| {
                let m = &ch.message;
                n.saturating_add(text(&m.content))
                    .saturating_add(text(&m.reasoning))
                    .saturating_add(value(&m.images))
                    .saturating_add(value(&m.reasoning_details))
            }),
            Reply::Completions(c) => c.choices.iter().map(|ch| ch.text.len()).sum(),
            // The text is in the output and again in `output_text`.
            Reply::Responses(r) => text(&r.output_text).saturating_mul(2),
            Reply::Messages(m) => m.content.iter().map(messages::ContentBlock::text_len).sum(),
        };
        own.saturating_add(own / 32).saturating_add(512)
    }
}

/// An error body in the shape of the surface it goes to.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(untagged)]
pub enum ErrorReply {
    OpenRouter(crate::error::OpenRouterError),
    Messages(messages::ErrorBody),
}

impl Incoming {
    /// Replaces the end user's ID with `f` of it everywhere it goes upstream: `user`,
    /// and `metadata.user_id` in a Messages body sent as it is.
    pub fn map_user(&mut self, f: impl Fn(&str) -> String) {
        if let Some(Value::String(u)) = self.chat.extra.get_mut("user") {
            *u = f(u);
        }
        let native = self.native.as_mut().and_then(|n| n.get_mut("metadata"));
        if let Some(Value::String(u)) = native.and_then(|m| m.get_mut("user_id")) {
            *u = f(u);
        }
    }

    /// A chat completion as this surface's reply (moved into it on chat).
    pub fn reply(&self, c: ChatCompletion) -> Reply {
        match self.surface {
            Surface::Chat => Reply::Chat(c),
            Surface::Completions => Reply::Completions(TextCompletion::from(&c)),
            Surface::Responses => Reply::Responses(responses::response(&c, &self.echo)),
            Surface::Messages => Reply::Messages(messages::reply(&c)),
        }
    }

    /// The reply to the client of a server-tool loop's answer `c`: the surface's reply
    /// with what the loop did in the turn (`turn`) where the surface says it.
    pub fn reply_turn(&self, c: ChatCompletion, turn: &super::server_turn::Turn) -> Reply {
        match self.surface {
            Surface::Responses => Reply::Responses(responses::response_with(&c, &self.echo, turn)),
            Surface::Messages => Reply::Messages(messages::message_with(&c, turn)),
            _ => self.reply(c),
        }
    }

    /// The stream encoder of this surface (`passthrough`: an Anthropic endpoint behind
    /// the Messages surface, whose own events go to the client).
    pub fn encoder(&self, prompt_estimate: u64, passthrough: bool) -> Encoder {
        match self.surface {
            Surface::Chat => Encoder::Chat,
            Surface::Completions => Encoder::Completions,
            Surface::Responses => {
                Encoder::Responses(Box::new(responses::StreamEncoder::new(self.echo.clone())))
            }
            Surface::Messages if passthrough => Encoder::Passthrough,
            Surface::Messages => Encoder::Messages(messages::StreamEncoder::new(prompt_estimate)),
        }
    }
}

/// Turns the chat chunks of a stream into the bytes of one surface's stream.
#[derive(Debug)]
pub enum Encoder {
    Chat,
    Completions,
    Responses(Box<responses::StreamEncoder>),
    Messages(messages::StreamEncoder),
    /// The upstream's bytes go to the client unchanged; chunks are only counted.
    Passthrough,
}

impl Encoder {
    pub fn is_passthrough(&self) -> bool {
        matches!(self, Encoder::Passthrough)
    }

    /// What keeps a silent stream open: Anthropic's `ping` event for its clients, an
    /// SSE comment (`: OPENROUTER PROCESSING`) for the others.
    pub fn keepalive(&self) -> Vec<u8> {
        match self {
            Encoder::Messages(_) | Encoder::Passthrough => {
                b"event: ping\ndata: {\"type\":\"ping\"}\n\n".to_vec()
            }
            _ => super::sse::KEEPALIVE.to_vec(),
        }
    }

    /// What a server-tool loop did, before its answer streams (Responses'
    /// `web_search_call` items; nothing on the other surfaces).
    pub fn server_turn(&mut self, first: &ChatChunk, turn: &super::server_turn::Turn) -> Vec<u8> {
        match self {
            Encoder::Responses(e) => e.server_turn(first, turn),
            Encoder::Messages(e) => e.server_turn(first, turn),
            _ => Vec::new(),
        }
    }

    /// One stamped chunk.
    pub fn chunk(&mut self, c: &ChatChunk) -> Vec<u8> {
        match self {
            Encoder::Chat => encode_data(c),
            Encoder::Completions => encode_data(&TextCompletionChunk::from(c)),
            Encoder::Responses(e) => e.chunk(c),
            Encoder::Messages(e) => e.chunk(c),
            Encoder::Passthrough => Vec::new(),
        }
    }

    /// The stream ended well; `last` is an empty stamped chunk, `usage` the final count.
    pub fn close(&mut self, last: &ChatChunk, usage: &Usage) -> Vec<u8> {
        let mut usage_chunk = last.clone();
        usage_chunk.usage = Some(usage.clone());
        match self {
            Encoder::Chat => [encode_data(&usage_chunk), DONE.to_vec()].concat(),
            Encoder::Completions => [
                encode_data(&TextCompletionChunk::usage(last, usage)),
                DONE.to_vec(),
            ]
            .concat(),
            Encoder::Responses(e) => e.close(last, usage),
            Encoder::Messages(e) => e.close(last, usage),
            Encoder::Passthrough => Vec::new(),
        }
    }

    /// The stream failed. `error_chunk` carries the error in OpenRouter's chunk shape
    /// (chat and completions send it, then the usage and `[DONE]`).
    pub fn fail(
        &mut self,
        error_chunk: &ChatChunk,
        last: &ChatChunk,
        usage: &Usage,
        err: &Error,
    ) -> Vec<u8> {
        match self {
            Encoder::Chat | Encoder::Completions => {
                let mut out = self.chunk(error_chunk);
                out.extend(self.close(last, usage));
                out
            }
            Encoder::Responses(e) => e.fail(last, err),
            Encoder::Messages(e) => e.fail(last, err),
            Encoder::Passthrough => messages::error_event(err),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{AssistantMessage, Choice, GenerationMeta};
    use crate::money::Usd;

    /// A reply of `text` costing a little over 123,456 USD (more digits than a float
    /// holds), as every surface gets it.
    fn completion(text: &str) -> ChatCompletion {
        let meta = GenerationMeta {
            id: "gen-1".into(),
            created: 1,
            model: "a/b".into(),
            provider: "P".into(),
        };
        let mut usage = Usage::new(3, 2);
        usage.cost = Some(Usd(123_456_789_012_345_678));
        meta.completion(
            vec![Choice {
                index: 0,
                message: AssistantMessage::text(text),
                finish_reason: Some("stop".into()),
                native_finish_reason: None,
                logprobs: None,
            }],
            Some(usage),
        )
    }

    fn incoming(surface: Surface, body: &str) -> Incoming {
        surface.parse(body.as_bytes()).unwrap()
    }

    #[test]
    fn every_surface_reads_plugins_and_none_passes_them_on() {
        let plugins =
            r#""plugins":[{"id":"response-healing","retry":true}],"transforms":["middle-out"]"#;
        for (surface, body) in [
            (
                Surface::Chat,
                r#""messages":[{"role":"user","content":"x"}]"#,
            ),
            (Surface::Completions, r#""prompt":"x""#),
            (Surface::Responses, r#""input":"x""#),
            (
                Surface::Messages,
                r#""max_tokens":5,"messages":[{"role":"user","content":"x"}]"#,
            ),
        ] {
            let i = incoming(surface, &format!(r#"{{"model":"a/b",{body},{plugins}}}"#));
            let p = &i.chat.plugins;
            assert_eq!(p.healing().map(|h| h.retry), Some(true), "{surface:?}");
            assert_eq!(p.compression(), super::super::plugins::Compression::On);
            assert!(
                !i.chat.extra.contains_key("plugins") && !i.chat.extra.contains_key("transforms")
            );
            let bad = format!(r#"{{"model":"a/b",{body},"plugins":[{{"id":"nope"}}]}}"#);
            let e = surface.parse(bad.as_bytes()).unwrap_err();
            assert!(
                e.public_message()
                    .starts_with("plugins[0].id: must be one of"),
                "{surface:?}: {e}"
            );
        }
    }

    #[test]
    fn each_surface_replies_in_its_own_type_with_exact_amounts() {
        let cases = [
            (
                Surface::Chat,
                r#"{"model":"a/b","messages":[{"role":"user","content":"x"}]}"#,
                "chat.completion",
            ),
            (
                Surface::Completions,
                r#"{"model":"a/b","prompt":"x"}"#,
                "text_completion",
            ),
            (
                Surface::Responses,
                r#"{"model":"a/b","input":"x"}"#,
                "response",
            ),
            (
                Surface::Messages,
                r#"{"model":"a/b","max_tokens":5,"messages":[{"role":"user","content":"x"}]}"#,
                "message",
            ),
        ];
        for (surface, body, kind) in cases {
            let reply = incoming(surface, body).reply(completion("hello"));
            let matches = matches!(
                (&reply, surface),
                (Reply::Chat(_), Surface::Chat)
                    | (Reply::Completions(_), Surface::Completions)
                    | (Reply::Responses(_), Surface::Responses)
                    | (Reply::Messages(_), Surface::Messages)
            );
            assert!(matches, "{surface:?}: {reply:?}");
            let bytes = reply.to_vec().unwrap();
            assert!(bytes.capacity() >= bytes.len());
            let text = String::from_utf8(bytes).unwrap();
            let v: Value = serde_json::from_str(&text).unwrap();
            let object = v.get("object").or_else(|| v.get("type"));
            assert_eq!(object.and_then(Value::as_str), Some(kind), "{text}");
            assert!(text.contains("hello"), "{text}");
            // Anthropic's usage has no cost; every other surface's is written exactly.
            if surface != Surface::Messages {
                assert!(text.contains(r#""cost":123456.789012345678"#), "{text}");
            }
        }
    }

    #[test]
    fn a_chat_reply_keeps_a_null_content_and_its_images() {
        let mut c = completion("");
        c.choices[0].message.content = None;
        c.choices[0].message.images = Some(serde_json::json!([{"type": "image_url"}]));
        let chat = incoming(
            Surface::Chat,
            r#"{"model":"a/b","messages":[{"role":"user","content":"x"}]}"#,
        );
        let v: Value = serde_json::from_slice(&chat.reply(c).to_vec().unwrap()).unwrap();
        let m = &v["choices"][0]["message"];
        assert!(m.get("content").is_some_and(Value::is_null), "{v}");
        assert_eq!(m["images"][0]["type"], "image_url");
        assert!(v.get("system_fingerprint").is_some());
    }

    #[test]
    fn a_reply_is_written_into_a_buffer_about_its_size() {
        let big = "x".repeat(300_000);
        let chat = incoming(
            Surface::Chat,
            r#"{"model":"a/b","messages":[{"role":"user","content":"x"}]}"#,
        );
        let bytes = chat.reply(completion(&big)).to_vec().unwrap();
        assert!(bytes.capacity() >= bytes.len());
        assert!(bytes.capacity() < bytes.len() + bytes.len() / 16);
    }

    #[test]
    fn failed_endpoints_are_listed_in_the_surfaces_error_body() {
        let mut f = crate::error::Failures::for_models(vec!["m/1".into()]);
        f.push("a", "m/1", Error::bad_request("too long for a"));
        f.push(
            "b",
            "m/1",
            Error::Timeout {
                provider: "b".into(),
            },
        );
        let (e, trail) = f.into_error();
        let list = trail.provider_errors.clone().unwrap();
        assert_eq!(
            list[1],
            crate::error::ProviderError {
                code: 400,
                message: "too long for a".into(),
                provider_name: "a".into(),
                raw: None,
                model: "m/1".into(),
            }
        );
        let ErrorReply::OpenRouter(body) = Surface::Chat.error_body_with(&e, trail.clone()) else {
            panic!("chat errors are OpenRouter's");
        };
        let body = serde_json::to_value(body).unwrap();
        let listed = &body["error"]["metadata"]["provider_errors"];
        assert_eq!(listed[0]["provider_name"], "b");
        assert_eq!(listed[0]["code"], 408);
        assert!(listed[1]["raw"].is_null());
        assert_eq!(body["error"]["metadata"]["error_type"], "timeout");
        let previous =
            serde_json::json!([{"provider": "a", "code": "invalid_request", "status": 400}]);
        assert_eq!(body["error"]["metadata"]["previous_errors"], previous);
        // Anthropic's clients get the type, and the attempts without their bodies.
        let messages = Surface::Messages.error_body_with(&e, trail);
        let v = serde_json::to_value(messages).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"type": "error", "error": {"type": "timeout_error",
                "message": "Request to b timed out", "error_type": "timeout",
                "metadata": {"previous_errors": previous}}})
        );
    }

    #[test]
    fn each_surface_refuses_a_bad_body_by_field() {
        let deep = format!("{}{}", "[".repeat(70), "]".repeat(70));
        for (surface, body, want) in [
            (
                Surface::Completions,
                r#"{"model":"a/b","prompt":"x","tools":[]}"#,
                "tools: is not a field",
            ),
            (
                Surface::Completions,
                r#"{"model":"a/b","prompt":"x""#,
                "Invalid JSON body",
            ),
            (
                Surface::Messages,
                r#"{"model":"a/b","max_tokens":5,"messages":[{"role":"user","content":[{"type":"image"}]}]}"#,
                "messages[0].content[0].source: is required",
            ),
            (
                Surface::Messages,
                r#"{"model":"a/b","max_tokens":5,"messages":[],"provider":{"sort":"fast"}}"#,
                "provider.sort: must be one of",
            ),
            (Surface::Messages, deep.as_str(), "nests deeper"),
        ] {
            let e = surface.parse(body.as_bytes()).unwrap_err();
            assert_eq!(e.status(), 400, "{body}");
            assert!(e.to_string().contains(want), "{body}: {e}");
        }
    }

    #[test]
    fn the_end_user_id_is_replaced_wherever_it_goes_upstream() {
        let hash = |u: &str| format!("h({u})");
        let mut chat = Surface::Chat
            .parse(br#"{"model":"a/b","user":"alice","messages":[{"role":"user","content":"hi"}]}"#)
            .unwrap();
        chat.map_user(hash);
        assert_eq!(chat.chat.extra["user"], "h(alice)");
        let mut msgs = Surface::Messages
            .parse(br#"{"model":"a/b","max_tokens":9,"metadata":{"user_id":"bob"},"messages":[{"role":"user","content":"hi"}]}"#)
            .unwrap();
        msgs.map_user(hash);
        assert_eq!(msgs.chat.extra["user"], "h(bob)");
        assert_eq!(msgs.native.unwrap()["metadata"]["user_id"], "h(bob)");
        let mut none = Surface::Chat
            .parse(br#"{"model":"a/b","messages":[{"role":"user","content":"hi"}]}"#)
            .unwrap();
        none.map_user(hash);
        assert!(none.chat.extra.get("user").is_none());
    }
}
