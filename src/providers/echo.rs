//! The built-in demo model `modelmux/echo`: answers with the last user message,
//! honouring `max_tokens` (one word a token) and `stop`. Needs no upstream, so a
//! fresh deployment answers before any provider key is set.

use crate::api::{
    AssistantMessage, ChatChunk, ChatCompletion, ChatRequest, Choice, Delta, GenerationMeta, Usage,
};
use crate::catalog::Pricing;

use super::estimate_prompt_tokens;

/// The reply's words (each but the first with the whitespace before it) and finish
/// reason.
fn words(req: &ChatRequest) -> (Vec<String>, &'static str) {
    let mut text = req
        .messages
        .iter()
        .rev()
        .find(|m| m.role == crate::api::Role::User)
        .map(|m| m.text())
        .unwrap_or_default();
    let mut finish = "stop";
    let mut stopped = false;
    for s in req.stop.iter().flat_map(|s| s.to_vec()) {
        if let Some(i) = text.find(&s).filter(|_| !s.is_empty()) {
            text.truncate(i);
            stopped = true;
        }
    }
    // Words with the whitespace before them kept as it was (new lines too), so that
    // the echo of Markdown is the same Markdown.
    let mut out: Vec<String> = Vec::new();
    let mut piece = String::new();
    let mut after_word = false;
    for c in text.trim().chars() {
        let space = c.is_whitespace();
        if space && after_word {
            out.push(std::mem::take(&mut piece));
        }
        piece.push(c);
        after_word = !space;
    }
    if !piece.is_empty() {
        out.push(piece);
    }
    if let Some(max) = req.max_output_tokens() {
        if out.len() as u64 > max && !stopped {
            out.truncate(max as usize);
            finish = "length";
        }
    }
    (out, finish)
}

fn usage(req: &ChatRequest, completion: usize, pricing: &Pricing) -> Usage {
    let mut u = Usage::new(estimate_prompt_tokens(req), completion as u64);
    pricing.price(&mut u, true);
    u
}

pub fn reply(req: &ChatRequest, meta: &GenerationMeta, pricing: &Pricing) -> ChatCompletion {
    let (words, finish) = words(req);
    let u = usage(req, words.len(), pricing);
    meta.completion(
        vec![Choice {
            index: 0,
            message: AssistantMessage::text(words.concat()),
            finish_reason: Some(finish.into()),
            native_finish_reason: Some(finish.into()),
            logprobs: None,
        }],
        Some(u),
    )
}

/// The streamed reply: a role chunk, a chunk a word, the finish chunk, the usage chunk.
pub fn chunks(req: &ChatRequest, meta: &GenerationMeta, pricing: &Pricing) -> Vec<ChatChunk> {
    let (words, finish) = words(req);
    let mut out = vec![meta.delta_chunk(
        Delta {
            role: Some("assistant".into()),
            content: Some(String::new()),
            ..Default::default()
        },
        None,
    )];
    out.extend(words.iter().map(|w| {
        meta.delta_chunk(
            Delta {
                content: Some(w.clone()),
                ..Default::default()
            },
            None,
        )
    }));
    let mut last = meta.delta_chunk(Delta::default(), Some(finish));
    if let Some(first) = last.choices.first_mut() {
        first.native_finish_reason = Some(finish.into());
    }
    out.push(last);
    let mut usage_chunk = meta.chunk(Vec::new());
    usage_chunk.usage = Some(usage(req, words.len(), pricing));
    out.push(usage_chunk);
    out
}

/// The demo model as a family: it answers in the isolate ([`reply`], [`chunks`]).
pub struct Echo;

impl super::Family for Echo {
    fn in_isolate(&self) -> bool {
        true
    }

    fn build_request(
        &self,
        _: &super::Target,
        _: &ChatRequest,
        _: bool,
    ) -> crate::error::Result<super::UpstreamRequest> {
        Err(crate::error::Error::Internal(
            "the echo model has no upstream".into(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn meta() -> GenerationMeta {
        GenerationMeta {
            id: "gen-1".into(),
            created: 1,
            model: "modelmux/echo".into(),
            provider: "modelmux".into(),
        }
    }

    fn req(v: serde_json::Value) -> ChatRequest {
        ChatRequest::parse(v.to_string().as_bytes()).unwrap()
    }

    #[test]
    fn echoes_last_user_message() {
        let r = req(json!({"model": "modelmux/echo", "messages": [
            {"role": "user", "content": "first"},
            {"role": "assistant", "content": "x"},
            {"role": "user", "content": [{"type": "text", "text": " hello   there\n\n```\nworld\n``` "}]}
        ]}));
        let c = reply(&r, &meta(), &Pricing::default());
        // Whitespace inside is kept (Markdown stays Markdown), around it trimmed.
        assert_eq!(
            c.choices[0].message.content.as_deref(),
            Some("hello   there\n\n```\nworld\n```")
        );
        assert_eq!(c.choices[0].finish_reason.as_deref(), Some("stop"));
        assert_eq!(c.usage.as_ref().unwrap().completion_tokens, 5);
    }

    #[test]
    fn honours_max_tokens_and_stop() {
        let r = req(
            json!({"model": "m", "max_tokens": 2, "messages": [{"role": "user", "content": "a b c d"}]}),
        );
        let c = reply(&r, &meta(), &Pricing::default());
        assert_eq!(c.choices[0].message.content.as_deref(), Some("a b"));
        assert_eq!(c.choices[0].finish_reason.as_deref(), Some("length"));
        let r = req(
            json!({"model": "m", "stop": ["c"], "messages": [{"role": "user", "content": "a b c d"}]}),
        );
        assert_eq!(
            reply(&r, &meta(), &Pricing::default()).choices[0]
                .message
                .content
                .as_deref(),
            Some("a b")
        );
    }

    #[test]
    fn stream_is_role_words_finish_usage() {
        let r = req(json!({"model": "m", "messages": [{"role": "user", "content": "one two"}]}));
        let cs = chunks(&r, &meta(), &Pricing::default());
        assert_eq!(cs.len(), 5);
        assert_eq!(cs[0].choices[0].delta.role.as_deref(), Some("assistant"));
        assert_eq!(cs[2].choices[0].delta.content.as_deref(), Some(" two"));
        assert_eq!(cs[3].choices[0].finish_reason.as_deref(), Some("stop"));
        assert!(cs[4].choices.is_empty() && cs[4].usage.is_some());
    }
}
