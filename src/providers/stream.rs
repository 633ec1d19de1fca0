//! The client-facing side of a streamed completion: whatever the upstream family,
//! its translator turns upstream bytes into OpenAI chunks, and [`ChatStream`] stamps
//! them with our identity, holds back usage for one final usage chunk (with cost),
//! turns failures into a final error chunk and always ends with `data: [DONE]`.

use super::{anthropic, gemini, openai_compat};
use crate::api::gather::Gather;
use crate::api::heal_stream::{self, StreamHealer};
use crate::api::sse::{SseError, SseParser};
use crate::api::surface::Encoder;
use crate::api::{ChatChunk, ChatCompletion, ChunkHead, Delta, GenerationMeta, Usage};
use crate::catalog::Pricing;
use crate::error::Error;

mod build;
mod sent;
mod thinking;
mod tier;
mod tools;
pub use sent::Sent;
pub use thinking::Thinking;
pub use tools::ToolCalls;

/// Upstream stream translators, one per family.
#[derive(Debug)]
pub enum Translator {
    OpenAi(openai_compat::StreamState),
    Anthropic(anthropic::StreamState),
    Gemini(gemini::StreamState),
}

impl Translator {
    /// The stream translator for `target`'s family; `None` for families without one.
    pub fn for_target(target: &super::Target, meta: &GenerationMeta) -> Option<Translator> {
        super::family(target.provider.api).translator(target, meta)
    }

    /// One upstream event's data; the chunks it completes go to `out`.
    fn event(&mut self, data: &str, out: &mut Vec<ChatChunk>) -> Result<(), Error> {
        match self {
            Translator::OpenAi(s) => s.event(data, out),
            Translator::Anthropic(s) => s.event(data, out),
            Translator::Gemini(s) => s.event(data, out),
        }
    }

    /// Upstream EOF. Errors when the stream stopped before it said it was done.
    fn end(&mut self, out: &mut Vec<ChatChunk>) -> Result<(), Error> {
        match self {
            Translator::OpenAi(s) => s.end(out),
            Translator::Anthropic(s) => s.end(out),
            Translator::Gemini(s) => s.end(out),
        }
    }

    /// What the upstream has said of its usage before its final count: Anthropic's
    /// `message_start` (the exact prompt, cache reads and writes included) and output
    /// so far, Gemini's latest `usageMetadata`.
    fn partial_usage(&self) -> Option<Usage> {
        match self {
            Translator::OpenAi(_) => None,
            Translator::Anthropic(s) => s.usage_so_far(),
            Translator::Gemini(s) => s.usage_so_far(),
        }
    }

    fn provider(&self) -> &str {
        match self {
            Translator::OpenAi(s) => s.provider(),
            Translator::Anthropic(s) => s.provider(),
            Translator::Gemini(s) => s.provider(),
        }
    }
}

#[derive(Debug)]
pub struct ChatStream {
    sse: SseParser,
    translator: Translator,
    meta: GenerationMeta,
    pricing: Pricing,
    prompt_estimate: u64,
    usage: Option<Usage>,
    /// Content sent (after which a fallback must not happen) and what it counted.
    sent: Sent,
    closed: bool,
    /// The client's surface (chat chunks, Responses events, Anthropic events, ...).
    encoder: Encoder,
    /// What starts each chat chunk of this stream.
    head: ChunkHead,
    /// For a caller that asked for one reply: the chunks, gathered instead of encoded.
    gather: Option<Box<Gather>>,
    /// What ended the stream, if it failed.
    failure: Option<Error>,
    /// The model's hidden reasoning, estimated when the stream has no final count.
    thinking: Option<Thinking>,
    /// For the Messages pass-through's caller that asked for one reply: Anthropic's
    /// events gathered into its message.
    native: Option<Box<crate::api::messages::NativeGather>>,
    /// The request's session before it (`usage.session` of the final chunk, this
    /// stream's cost added).
    session: Option<crate::usage::SessionUsage>,
    /// `openrouter_metadata` (JSON) for the stream's last event, when asked for.
    metadata: Option<String>,
    /// The file parser's `file` annotations, a chat stream's delta before its last.
    annotations: Vec<serde_json::Value>,
    /// The file parser's OCR, billed with the stream.
    ocr: crate::usage::Ocr,
    /// What goes out before the first chunk (the `debug.echo_upstream_body` chunk).
    preface: Vec<u8>,
    /// Mid-stream failover with continuation: what was sent, the attempts so far.
    relay: Option<Box<super::continuation::Relay>>,
    /// Output reached the client in an earlier attempt (after a failover).
    delivered_before: bool,
    /// The response cache's copy of a stream that also goes to its client.
    record: Option<Box<Gather>>,
    /// The stream's tool calls: numbered apart, and checked when the request has tools.
    tool_calls: ToolCalls,
    /// The endpoint's prices at its default, flex and priority tiers, where the model
    /// has tiers: the stream is billed at the tier its upstream says served it.
    tier_prices: Option<Box<[Pricing; 3]>>,
    /// Response healing at the stream's end, and the stage it reported.
    heal: Option<Box<StreamHealer>>,
    heal_stage: Option<String>,
}

impl ChatStream {
    pub fn new(
        translator: Translator,
        meta: GenerationMeta,
        pricing: Pricing,
        prompt_estimate: u64,
    ) -> Self {
        let head = ChunkHead::new(&meta);
        ChatStream {
            head,
            sse: SseParser::new(),
            translator,
            meta,
            pricing,
            prompt_estimate,
            usage: None,
            sent: Sent::default(),
            closed: false,
            encoder: Encoder::Chat,
            gather: None,
            failure: None,
            thinking: None,
            native: None,
            session: None,
            metadata: None,
            annotations: Vec::new(),
            ocr: Default::default(),
            preface: Vec::new(),
            relay: None,
            delivered_before: false,
            record: None,
            tool_calls: ToolCalls::default(),
            tier_prices: None,
            heal: None,
            heal_stage: None,
        }
    }

    /// The failure held for a failover, if any (the stream then takes no more bytes
    /// until [`ChatStream::switch`] or [`ChatStream::give_up`]).
    pub fn pending_failover(&self) -> Option<&Error> {
        self.relay.as_ref().and_then(|r| r.pending())
    }

    /// The text sent to the client so far (what a continuation is given).
    pub fn sent_text(&self) -> &str {
        self.relay.as_ref().map_or("", |r| r.text())
    }

    /// What the attempts so far charge the caller, the current one included.
    pub fn spent_picos(&self) -> u64 {
        let current = self.final_usage();
        self.relay.as_ref().map_or(0, |r| r.spent_picos(&current))
    }

    /// No failover after all: the held failure ends the stream as it would have.
    pub fn give_up(&mut self) -> Vec<u8> {
        match self.relay.as_mut().and_then(|r| r.give_up()) {
            Some(e) => self.fail(&e),
            None => Vec::new(),
        }
    }

    /// The held failure's attempt is done with: the stream goes on with the next
    /// endpoint's `translator` (its identity `meta`, prices `pricing`), continuing the
    /// same reply; an SSE comment marks the switch.
    pub fn switch(
        &mut self,
        translator: Translator,
        meta: GenerationMeta,
        pricing: Pricing,
        prompt_estimate: u64,
    ) -> Vec<u8> {
        let usage = self.final_usage();
        let (provider, model) = (self.meta.provider.clone(), self.meta.model.clone());
        if let Some(r) = self.relay.as_mut() {
            r.switch(usage, &provider, &model);
        }
        self.delivered_before |= self.sent.content;
        self.sent = Sent::default();
        self.sse = SseParser::new();
        self.usage = None;
        self.failure = None;
        self.thinking = None;
        self.translator = translator;
        self.head = ChunkHead::new(&meta);
        self.meta = meta;
        self.pricing = pricing;
        self.tier_prices = None;
        self.prompt_estimate = prompt_estimate;
        format!(
            ": failover to {}/{}\n\n",
            self.meta.provider, self.meta.model
        )
        .into_bytes()
    }

    /// The model and provider of the attempt under way, and its prices.
    pub fn serving(&self) -> (&str, &str, &Pricing) {
        (&self.meta.model, &self.meta.provider, self.priced())
    }

    /// What the attempts before the one under way came to (for the settlement).
    pub fn earlier(&self) -> Option<crate::usage::Earlier> {
        self.relay.as_ref().and_then(|r| r.earlier())
    }

    /// Reports the request's session in the final usage ([`ChatStream::with_session`]).
    pub fn with_session(mut self, session: Option<crate::usage::SessionUsage>) -> Self {
        self.session = session;
        self
    }

    /// Also gathers the upstream's own events (Anthropic's, for the Messages
    /// pass-through) into the message they make ([`ChatStream::gathered_native`]).
    pub fn gathering_native(mut self) -> Self {
        self.native = Some(Box::default());
        self
    }

    /// The upstream's own message made so far, opaque (the Messages pass-through hands
    /// it on as the upstream made it); `None` unless [`ChatStream::gathering_native`].
    pub fn gathered_native(&mut self) -> Option<serde_json::Value> {
        self.native.take().map(|g| g.finish())
    }

    /// Estimates the hidden reasoning of a model that does not show it ([`Thinking`]).
    pub fn with_thinking(mut self, thinking: Option<Thinking>) -> Self {
        self.thinking = thinking;
        self
    }

    /// The reply started at `now_ms` (its response headers came).
    pub fn started(&mut self, now_ms: f64) {
        if let Some(t) = self.thinking.as_mut() {
            t.started_ms = now_ms;
            t.silent_until_ms = now_ms;
        }
    }

    /// The time is `now_ms`, before what arrives at it is fed: until output is shown,
    /// the model may be thinking.
    pub fn at(&mut self, now_ms: f64) {
        if let (Some(t), false) = (self.thinking.as_mut(), self.sent.content) {
            t.silent_until_ms = t.silent_until_ms.max(now_ms);
        }
    }

    /// Whether [`ChatStream::final_usage`] counts reasoning estimated from time.
    pub fn reasoning_estimated(&self) -> bool {
        self.estimated_reasoning(0) > 0
    }

    /// Hidden reasoning tokens to add to an estimate, with `shown` output tokens
    /// streamed: only without any count from the provider.
    fn estimated_reasoning(&self, shown: u64) -> u64 {
        match (&self.usage, self.translator.partial_usage(), &self.thinking) {
            (None, None, Some(t)) => t.tokens(shown),
            _ => 0,
        }
    }

    /// Gathers the stream into one reply ([`ChatStream::gathered`]) instead of encoding
    /// it for a client: an upstream is asked to stream even when its caller wants one
    /// reply, so that a reply cut short still shows what was generated. What `feed`,
    /// `finish` and `fail` return is then only the chat encoding, to be dropped.
    pub fn gathering(mut self) -> Self {
        self.gather = Some(Box::new(Gather::new(self.meta.clone())));
        self
    }

    /// The reply the stream made so far, without usage ([`ChatStream::final_usage`]
    /// says what to bill); `None` unless [`ChatStream::gathering`].
    pub fn gathered(&mut self) -> Option<ChatCompletion> {
        self.gather.take().map(|g| g.finish())
    }

    /// Also gathers the stream into one reply as it goes to the client, for the
    /// response cache ([`ChatStream::recorded`]).
    pub fn recording(mut self, on: bool) -> Self {
        self.record = on.then(|| Box::new(Gather::new(self.meta.clone())));
        self
    }

    /// The reply the stream made, with its final usage; `None` unless
    /// [`ChatStream::recording`].
    pub fn recorded(&mut self) -> Option<ChatCompletion> {
        let mut c = self.record.take()?.finish();
        c.usage = Some(self.final_usage());
        Some(c)
    }

    /// Encodes for another surface than chat completions.
    pub fn with_encoder(mut self, encoder: Encoder) -> Self {
        self.encoder = encoder;
        self
    }

    /// Upstream bytes in, client SSE bytes out.
    pub fn feed(&mut self, bytes: &[u8]) -> Vec<u8> {
        if self.closed || self.pending_failover().is_some() {
            return Vec::new();
        }
        let mut out = std::mem::take(&mut self.preface);
        out.reserve(bytes.len().saturating_add(bytes.len() / 2));
        let mut own = Vec::new();
        let mut sse = std::mem::take(&mut self.sse);
        let res = sse.feed_with(bytes, |data| self.native_event(data, &mut out, &mut own));
        self.sse = sse;
        if self.encoder.is_passthrough() {
            // The upstream's own events go out; the chunks only counted usage.
            out.clear();
            match self.session {
                Some(_) => out.extend(own),
                None => out.extend_from_slice(bytes),
            }
        }
        if let Err(e) = self.sse_result(res) {
            out.extend(self.fail(&e));
        }
        out
    }

    /// The upstream ended: flush, then the usage chunk and `[DONE]`.
    pub fn finish(&mut self) -> Vec<u8> {
        if self.closed || self.pending_failover().is_some() {
            return Vec::new();
        }
        let mut out = std::mem::take(&mut self.preface);
        let mut own = Vec::new();
        let mut sse = std::mem::take(&mut self.sse);
        let res = sse.finish_with(|data| self.native_event(data, &mut out, &mut own));
        self.sse = sse;
        if self.encoder.is_passthrough() && self.session.is_some() {
            out.extend(own);
        }
        let mut chunks = Vec::new();
        let res = self
            .sse_result(res)
            .and_then(|()| self.translator.end(&mut chunks));
        self.emit(chunks, &mut out);
        match res {
            Ok(()) => out.extend(self.close()),
            Err(e) => out.extend(self.fail(&e)),
        }
        out
    }

    /// [`Self::event`]; for the Messages pass-through of a request with a session, the
    /// upstream's event written again to `own` as it came (its `type` as the event's
    /// name), with `usage.session` added to the `message_delta`, whose usage is final.
    fn native_event(
        &mut self,
        data: &str,
        out: &mut Vec<u8>,
        own: &mut Vec<u8>,
    ) -> Result<(), Error> {
        let res = self.event(data, out);
        if !self.encoder.is_passthrough() || self.session.is_none() {
            return res;
        }
        // Read as an opaque value: its own bytes go on, but for `usage.session`.
        let mut v = serde_json::from_str::<serde_json::Value>(data).ok();
        let kind = v
            .as_ref()
            .and_then(|v| v.get("type")?.as_str().map(str::to_string));
        let mut data = std::borrow::Cow::Borrowed(data);
        if let (Some("message_delta"), Some(v)) = (kind.as_deref(), v.as_mut()) {
            let session = self.reported_usage().session.map(serde_json::to_value);
            if let (Some(u), Some(Ok(s))) = (v.get_mut("usage"), session) {
                crate::api::set_field(u, "session", s);
                data = std::borrow::Cow::Owned(v.to_string());
            }
        }
        if let Some(k) = kind {
            own.extend_from_slice(format!("event: {k}\n").as_bytes());
        }
        own.extend_from_slice(b"data: ");
        own.extend_from_slice(data.as_bytes());
        own.extend_from_slice(b"\n\n");
        res
    }

    /// One upstream event: a chat client of an OpenAI-compatible upstream gets its
    /// chunks re-stamped in place; everything else goes through typed chunks.
    fn event(&mut self, data: &str, out: &mut Vec<u8>) -> Result<(), Error> {
        if let Some(n) = self.native.as_mut() {
            n.event(data);
        }
        if let (Translator::OpenAi(t), Encoder::Chat, None, None, None, None) = (
            &mut self.translator,
            &self.encoder,
            &self.gather,
            &self.relay,
            &self.record,
            &self.heal,
        ) {
            if t.restamp(data, &self.head, &mut self.sent, &mut self.usage, out) {
                return Ok(());
            }
        }
        if let (Translator::Anthropic(t), Encoder::Chat, None, None, None, None) = (
            &mut self.translator,
            &self.encoder,
            &self.gather,
            &self.relay,
            &self.record,
            &self.heal,
        ) {
            return match t.read(data)? {
                anthropic::Made::Text(text) => {
                    let no_calls = std::iter::empty::<(Option<&str>, Option<&str>)>();
                    self.sent
                        .delta([Some(text.as_ref()), None], false, no_calls);
                    write_text(&self.head, &text, out);
                    Ok(())
                }
                anthropic::Made::Chunk(chunk) => {
                    self.emit(chunk.into_iter().collect(), out);
                    Ok(())
                }
            };
        }
        let mut chunks = Vec::new();
        let res = self.translator.event(data, &mut chunks);
        self.emit(chunks, out);
        res
    }

    fn sse_result(&self, res: Result<(), SseError<Error>>) -> Result<(), Error> {
        match res {
            Ok(()) => Ok(()),
            Err(SseError::Event(e)) => Err(e),
            Err(SseError::LineTooLong) => Err(Error::upstream(
                self.translator.provider(),
                "SSE line too long",
            )),
        }
    }

    /// The upstream failed mid-stream: a final chunk carrying the error, then `[DONE]`.
    pub fn fail(&mut self, err: &Error) -> Vec<u8> {
        if self.closed || self.pending_failover().is_some() {
            return Vec::new();
        }
        if let Some(out) = self.hold(err) {
            return out;
        }
        self.sent.finish_reason = Some("error".into());
        self.failure = Some(err.clone());
        let mut chunk = self.meta.delta_chunk(
            Delta {
                content: Some(String::new()),
                ..Default::default()
            },
            Some("error"),
        );
        self.closed = true;
        // Written as the error bodies are and read back (rather than turned into a
        // value directly): the worker carries one writer of the error types, not two.
        let written = serde_json::to_vec(&err.error_object()).unwrap_or_default();
        chunk.error = serde_json::from_slice(&written).ok();
        let last = self.meta.chunk(Vec::new());
        let usage = self.reported_usage();
        self.encoder.fail(&chunk, &last, &usage, err)
    }

    /// Holds `err` for a failover where the stream may still take one (its content
    /// has not ended): what the cut still held of the text goes out.
    fn hold(&mut self, err: &Error) -> Option<Vec<u8>> {
        if self.sent.finish_reason.is_some() {
            return None;
        }
        let relay = self.relay.as_mut()?;
        if !relay.hold(err) {
            return None;
        }
        let text = relay.flush_text();
        let mut out = Vec::new();
        if !text.is_empty() {
            let chunk = ChatChunk::bare(
                Delta {
                    content: Some(text),
                    ..Default::default()
                },
                None,
            );
            let relay = self.relay.take();
            self.emit(vec![chunk], &mut out);
            self.relay = relay;
        }
        Some(out)
    }

    fn emit(&mut self, chunks: Vec<ChatChunk>, out: &mut Vec<u8>) {
        for mut chunk in chunks {
            if let Some(u) = chunk.usage.take() {
                self.usage = Some(u);
            }
            if let Some(t) = chunk.service_tier.take() {
                self.sent.tier(&t);
            }
            if chunk.choices.is_empty() {
                continue;
            }
            if let Some(r) = self.relay.as_mut() {
                if !r.filter(&mut chunk) {
                    continue;
                }
            }
            if !self.keep_for_healing(&mut chunk) {
                continue;
            }
            for c in &mut chunk.choices {
                for t in c.delta.tool_calls.iter_mut().flatten() {
                    self.tool_calls.piece(c.index, t);
                }
                let d = &c.delta;
                let calls = d.tool_calls.iter().flatten().map(|t| {
                    let f = t.function.as_ref();
                    (
                        f.and_then(|f| f.name.as_deref()),
                        f.and_then(|f| f.arguments.as_deref()),
                    )
                });
                self.sent.delta(
                    [d.content.as_deref(), d.reasoning.as_deref()],
                    d.images.is_some(),
                    calls,
                );
                if let Some(native) = c.finish_reason.take() {
                    let norm = self.sent.finish(&native);
                    c.native_finish_reason.get_or_insert(native);
                    c.finish_reason = Some(norm.to_string());
                }
            }
            if let Some(r) = self.record.as_mut() {
                r.push(&chunk);
            }
            if let Some(g) = self.gather.as_mut() {
                g.push(&chunk);
                continue;
            }
            match self.encoder {
                Encoder::Chat => {
                    self.head.write(&chunk, out);
                    continue;
                }
                // The upstream's own bytes go out: the chunk only counted.
                Encoder::Passthrough => continue,
                _ => {}
            }
            chunk.id = self.meta.id.clone();
            chunk.created = self.meta.created;
            chunk.model = self.meta.model.clone();
            chunk.provider = Some(self.meta.provider.clone());
            out.extend(self.encoder.chunk(&chunk));
        }
    }

    /// Keeps `chunk`'s content and holds its finishes for healing, if it is on;
    /// whether anything is left of the chunk to send.
    fn keep_for_healing(&mut self, chunk: &mut ChatChunk) -> bool {
        let Some(h) = self.heal.as_mut() else {
            return true;
        };
        h.hold_finish(chunk);
        for c in &chunk.choices {
            h.push(c.index, c.delta.content.as_deref().unwrap_or_default());
        }
        !chunk.choices.is_empty()
    }

    fn close(&mut self) -> Vec<u8> {
        let mut held = Vec::new();
        if let Some(mut r) = self.relay.take() {
            let (text, calls) = (r.flush_text(), r.gate.release());
            if !text.is_empty() || !calls.is_empty() {
                let delta = Delta {
                    content: (!text.is_empty()).then_some(text),
                    tool_calls: (!calls.is_empty()).then_some(calls),
                    ..Default::default()
                };
                self.emit(vec![ChatChunk::bare(delta, None)], &mut held);
            }
            self.relay = Some(r);
        }
        if let Some(h) = self.heal.take() {
            let end = h.end();
            self.emit(end.chunks, &mut held);
            self.heal_stage = Some(end.stage);
        }
        let mut out = self.closing();
        held.append(&mut out);
        held
    }

    fn closing(&mut self) -> Vec<u8> {
        self.closed = true;
        let usage = self.reported_usage();
        let mut out = if matches!(self.encoder, Encoder::Chat) {
            let mut out = Vec::with_capacity(512);
            if !self.annotations.is_empty() {
                let annotations = serde_json::Value::Array(std::mem::take(&mut self.annotations));
                let delta = Delta {
                    annotations: Some(annotations),
                    ..Default::default()
                };
                self.head.write(&ChatChunk::bare(delta, None), &mut out);
            }
            let mut last = ChatChunk::usage_only(usage);
            last.service_tier = self.service_tier().map(str::to_string);
            self.head.write(&last, &mut out);
            out.extend_from_slice(crate::api::sse::DONE);
            out
        } else {
            let mut last = self.meta.chunk(Vec::new());
            last.service_tier = self.service_tier().map(str::to_string);
            self.encoder.close(&last, &usage)
        };
        let healed = self.heal_stage.as_deref();
        let metadata = healed.map(|st| heal_stream::with_stage(self.metadata.as_deref(), st));
        if let Some(m) = metadata.as_ref().or(self.metadata.as_ref()) {
            // A Responses event carries it in its `response`.
            let depth = if matches!(self.encoder, Encoder::Responses(_)) {
                2
            } else {
                1
            };
            crate::api::routed::add_to_last_event(&mut out, depth, "openrouter_metadata", m);
        }
        out
    }

    /// The final usage the client is told: [`ChatStream::final_usage`] with the
    /// session's figures after this stream.
    fn reported_usage(&self) -> Usage {
        let mut u = self.final_usage();
        if let Some(r) = self.relay.as_ref().filter(|r| r.switched()) {
            let outcome = self
                .failure
                .as_ref()
                .map_or_else(|| "completed".to_string(), Error::public_message);
            u = r.summed(&u, &self.meta.provider, &self.meta.model, &outcome);
        }
        u.session = self.session.as_ref().map(|s| s.after(u.cost));
        u
    }

    /// The usage to bill: the upstream's final count; else what it said of its usage
    /// so far, with the output counted from what was streamed when that is more; else
    /// our estimate (the prompt's, and a token per four bytes of output).
    pub fn final_usage(&self) -> Usage {
        let counted = (self.sent.completion_bytes as u64).div_ceil(4);
        let mut u = match (&self.usage, self.translator.partial_usage()) {
            (Some(u), _) => u.clone(),
            (None, Some(mut p)) => {
                if p.prompt_tokens == 0 {
                    p.prompt_tokens = self.prompt_estimate;
                }
                p.completion_tokens = p.completion_tokens.max(counted);
                p
            }
            (None, None) => {
                let reasoning = self.estimated_reasoning(counted);
                let mut u = Usage::new(self.prompt_estimate, counted.saturating_add(reasoning));
                if reasoning > 0 {
                    u.completion_tokens_details = Some(crate::api::CompletionTokensDetails {
                        reasoning_tokens: reasoning,
                        image_tokens: None,
                    });
                }
                u
            }
        };
        u.total_tokens = u.prompt_tokens.saturating_add(u.completion_tokens);
        self.ocr.bill(&mut u);
        // What the caller is charged: nothing for an insured stream, as the
        // settlement does.
        let insured = self.insured(&u);
        self.priced().price(&mut u, !insured);
        u
    }

    /// Whether zero-completion insurance covers this stream, given the usage it is
    /// billed by: nothing delivered, no output tokens, and no normal finish.
    pub fn insured(&self, u: &Usage) -> bool {
        // Before the provider's final count its output is what streamed: Anthropic's
        // `message_start` says a token or two of output before any is generated.
        let output = if self.usage.is_some() {
            u.completion_tokens
        } else {
            0
        };
        crate::catalog::zero_completion_insured(output, self.sent.content, [self.finish_reason()])
    }

    /// Whether any output reached the client: content, reasoning, images, tool calls.
    pub fn delivered(&self) -> bool {
        self.sent.content || self.delivered_before
    }

    /// Where [`ChatStream::final_usage`] comes from: `provider` (its final count),
    /// `partial` (its count so far) or `estimate`.
    pub fn usage_source(&self) -> &'static str {
        if self.usage.is_some() {
            "provider"
        } else if self.translator.partial_usage().is_some() {
            "partial"
        } else {
            "estimate"
        }
    }

    pub fn finish_reason(&self) -> Option<&str> {
        self.sent.finish_reason.as_deref()
    }

    /// Bytes that keep the client's connection open while the upstream is silent.
    pub fn keepalive(&self) -> Vec<u8> {
        self.encoder.keepalive()
    }

    pub fn is_closed(&self) -> bool {
        self.closed
    }

    /// What ended the stream, if it failed (upstream error event, broken or stalled
    /// stream, unreadable event).
    pub fn failure(&self) -> Option<&Error> {
        self.failure.as_ref()
    }
}

/// The chat chunk of a delta that is only `text`, as [`ChunkHead::write`] writes it
/// (without building the chunk: most of a stream from Anthropic is these).
fn write_text(head: &ChunkHead, text: &str, out: &mut Vec<u8>) {
    head.write_fields(out, |out| {
        let mut w = crate::api::chat::JsonOut::new(out);
        w.raw("{\"choices\":[{\"index\":0,\"delta\":{\"content\":");
        w.value(text);
        w.raw("},\"finish_reason\":null}]}");
        w.ok
    });
}

#[cfg(test)]
mod tests;
