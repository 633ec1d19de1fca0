//! The API surfaces that lead into the one chat pipeline: chat completions, legacy
//! completions, Responses and Anthropic Messages. Each is a request conversion into a
//! [`ChatRequest`] plus conversions of the chat reply, chunks and errors back into its
//! own shapes; routing, admission, translation to providers and billing are shared.

use serde_json::Value;

use super::sse::{encode_data, DONE};
use super::{completions, messages, parse_json, responses, ChatChunk, ChatCompletion};
use super::{ChatRequest, Usage};
use crate::error::{Error, Result};
use crate::money::Exact;

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

    pub fn parse(self, body: &[u8]) -> Result<Incoming> {
        let typed = |chat, echo| Incoming {
            surface: self,
            chat,
            echo,
            native: None,
            anthropic_only: None,
        };
        match self {
            Surface::Chat => return Ok(typed(ChatRequest::parse(body)?, Default::default())),
            Surface::Responses => {
                let (chat, echo) = responses::parse(body)?;
                return Ok(typed(chat, echo));
            }
            Surface::Completions | Surface::Messages => {}
        }
        let value = parse_json(body)?;
        let mut anthropic_only = None;
        let (chat, echo, native) = match self {
            Surface::Completions => (completions::to_chat(&value)?, Default::default(), None),
            Surface::Messages | Surface::Chat | Surface::Responses => {
                let c = messages::convert(&value)?;
                anthropic_only = c.anthropic_only;
                (c.chat, Default::default(), Some(value))
            }
        };
        Ok(Incoming {
            surface: self,
            chat,
            echo,
            native,
            anthropic_only,
        })
    }

    /// The error body this surface's clients read.
    pub fn error_body(self, e: &Error) -> ErrorReply {
        match self {
            Surface::Messages => ErrorReply::Messages(messages::error_body(e)),
            _ => ErrorReply::OpenRouter(e.body()),
        }
    }

    /// The error body with every failed endpoint's error (`metadata.provider_errors`,
    /// the reported one first), where the surface's error shape has metadata.
    pub fn error_body_with(self, e: &Error, provider_errors: Vec<Value>) -> ErrorReply {
        match self {
            Surface::Messages => ErrorReply::Messages(messages::error_body(e)),
            _ => ErrorReply::OpenRouter(e.body_with(Some(provider_errors))),
        }
    }
}

/// A typed reply as JSON. Through bytes, not `to_value`: the types are written by the
/// one serializer the stream uses too (a second one costs wasm for nothing).
fn through_bytes(reply: &impl serde::Serialize) -> Result<Value> {
    serde_json::to_vec(reply)
        .and_then(|b| serde_json::from_slice(&b))
        .map_err(|e| Error::Internal(e.to_string()))
}

/// An error body in the shape of the surface it goes to.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(untagged)]
pub enum ErrorReply {
    OpenRouter(Value),
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

    /// A chat completion as this surface's reply. On chat, each choice's content and
    /// images (the bulk of a large reply) move into it instead of being copied.
    pub fn reply(&self, mut c: ChatCompletion) -> Result<Value> {
        Ok(match self.surface {
            Surface::Chat => {
                let bulk: Vec<_> = c
                    .choices
                    .iter_mut()
                    .map(|ch| (ch.message.content.take(), ch.message.images.take()))
                    .collect();
                let mut v = serde_json::to_value(&c).map_err(|e| Error::Internal(e.to_string()))?;
                if let Some(u) = &c.usage {
                    super::set_field(&mut v, "usage", super::usage_value(u));
                }
                let choices = v.get_mut("choices").and_then(Value::as_array_mut);
                for (ch, (content, images)) in choices.into_iter().flatten().zip(bulk) {
                    let Some(m) = ch.get_mut("message") else {
                        continue;
                    };
                    super::set_field(m, "content", content.map_or(Value::Null, Value::String));
                    if let Some(images) = images {
                        super::set_field(m, "images", images);
                    }
                }
                v
            }
            Surface::Completions => completions::reply(&c),
            Surface::Responses => {
                let mut v = through_bytes(&responses::response(&c, &self.echo))?;
                // Tagged, so that it is written exactly (a JSON number read back is not).
                let cost = c.usage.as_ref().and_then(|u| u.cost);
                if let (Some(cost), Some(u)) = (cost, v.get_mut("usage")) {
                    super::set_field(u, "cost", crate::money::tagged(cost.0));
                }
                v
            }
            Surface::Messages => through_bytes(&messages::reply(&c))?,
        })
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

    /// One stamped chunk.
    pub fn chunk(&mut self, c: &ChatChunk) -> Vec<u8> {
        match self {
            Encoder::Chat => encode_data(c),
            Encoder::Completions => encode_data(&Exact(&completions::chunk(c))),
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
                encode_data(&Exact(&completions::usage_chunk(last, usage))),
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
