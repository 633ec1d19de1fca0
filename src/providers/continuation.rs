//! Mid-stream failover with continuation (`provider.stream_failover: "continue"`), the
//! pure parts: the next endpoint's request (the conversation with what was streamed so
//! far as the assistant's turn), the cut of what it repeats of that text, tool calls
//! held back until they are whole, and the accounting of each attempt for the final
//! usage and the settlement. The edge (`edge::pipeline::failover`) sends the next
//! attempt; [`super::stream::ChatStream`] carries a [`Relay`] through the switch.

use crate::api::{ChatChunk, ChatRequest, Content, Message, Role, ToolCallDelta, Usage};
use crate::error::Error;
use crate::money::Usd;
use crate::usage::{AttemptCost, Earlier};

/// What an OpenAI-compatible endpoint is told after the assistant's partial turn; the
/// families that take a prefilled assistant turn (Anthropic, Gemini) continue it as
/// it is.
pub const CONTINUE_INSTRUCTION: &str = "Your previous reply was cut off. Continue it \
exactly where it stopped, without repeating any of it and without any preamble.";

/// The most bytes of the streamed text's tail that a continuation's head is compared
/// with: a model told to go on repeats its last words, not its whole reply.
pub const OVERLAP_WINDOW: usize = 512;

/// The length in bytes of the longest head of `head` that is also a tail of `tail`:
/// what a continuation repeats of the text already sent.
pub fn overlap(tail: &str, head: &str) -> usize {
    let (t, h) = (tail.as_bytes(), head.as_bytes());
    let most = t.len().min(h.len());
    (1..=most)
        .rev()
        .find(|&k| {
            head.is_char_boundary(k)
                && h.get(..k) == t.get(t.len().saturating_sub(k)..)
                && t.len() >= k
        })
        .unwrap_or(0)
}

/// The last at most `max` bytes of `s`, from a character boundary.
fn tail_of(s: &str, max: usize) -> &str {
    let mut at = s.len().saturating_sub(max);
    while !s.is_char_boundary(at) {
        at = at.saturating_add(1);
    }
    s.get(at..).unwrap_or_default()
}

/// Cuts what a continuation repeats of the text sent before it: its text is held back
/// until the longest overlap with the sent text's tail is known (no longer overlap is
/// possible, or something other than text comes), then flows through.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Cutter {
    tail: String,
    held: String,
    decided: bool,
}

impl Cutter {
    /// A cutter for a continuation of `sent`.
    pub fn new(sent: &str) -> Cutter {
        let tail = tail_of(sent, OVERLAP_WINDOW).to_string();
        Cutter {
            decided: tail.is_empty(),
            tail,
            held: String::new(),
        }
    }

    /// The continuation's next text in; what of it goes to the client now.
    pub fn push(&mut self, text: &str) -> String {
        if self.decided || text.is_empty() {
            return text.to_string();
        }
        self.held.push_str(text);
        if self.could_grow() {
            return String::new();
        }
        self.flush()
    }

    /// Whether a longer overlap is still possible: the held text occurs in the tail
    /// somewhere that leaves tail after it.
    fn could_grow(&self) -> bool {
        let (t, h) = (self.tail.as_bytes(), self.held.as_bytes());
        if h.len() >= t.len() {
            return false;
        }
        let before_end = t.len().saturating_sub(1);
        t.get(..before_end)
            .is_some_and(|t| t.windows(h.len().max(1)).any(|w| w == h))
    }

    /// Decides with what is held (something other than text came, or the end): what
    /// of it goes out.
    pub fn flush(&mut self) -> String {
        // Nothing held yet (a continuation that starts with its reasoning): its text
        // may still repeat.
        if self.decided || self.held.is_empty() {
            return String::new();
        }
        self.decided = true;
        let cut = overlap(&self.tail, &self.held);
        let held = std::mem::take(&mut self.held);
        held.get(cut..).unwrap_or_default().to_string()
    }
}

/// One tool call being streamed: what it has said so far.
#[derive(Debug, Default, Clone, PartialEq)]
struct PendingCall {
    id: Option<String>,
    kind: Option<String>,
    name: String,
    arguments: String,
}

/// Tool calls held back until whole: a call goes to the client in one piece once its
/// arguments parse (or the stream ends well), so that one cut mid-call is never
/// half-delivered.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct ToolGate {
    /// The calls under way by their index, in the order they began.
    pending: Vec<(u32, PendingCall)>,
    /// Calls that went out whole.
    sent: usize,
}

impl ToolGate {
    /// The pieces of calls in one delta; the calls they make whole come back.
    pub fn push(&mut self, pieces: Vec<ToolCallDelta>) -> Vec<ToolCallDelta> {
        let mut whole = Vec::new();
        for p in pieces {
            let at = match self.pending.iter().position(|(i, _)| *i == p.index) {
                Some(at) => at,
                None => {
                    self.pending.push((p.index, PendingCall::default()));
                    self.pending.len().saturating_sub(1)
                }
            };
            let Some((_, call)) = self.pending.get_mut(at) else {
                continue;
            };
            call.id = call.id.take().or(p.id);
            call.kind = call.kind.take().or(p.kind);
            if let Some(f) = p.function {
                call.name.push_str(f.name.as_deref().unwrap_or_default());
                call.arguments
                    .push_str(f.arguments.as_deref().unwrap_or_default());
            }
            // Read as a `Value`, as tool arguments are elsewhere (one parser in the build).
            let parses =
                serde_json::from_slice::<serde_json::Value>(call.arguments.as_bytes()).is_ok();
            if parses && !call.name.is_empty() {
                let (i, c) = self.pending.remove(at);
                whole.push(Self::delta(i, c));
            }
        }
        self.sent = self.sent.saturating_add(whole.len());
        whole
    }

    /// The stream ended well: what is held goes out as the upstream made it.
    pub fn release(&mut self) -> Vec<ToolCallDelta> {
        let out: Vec<_> = std::mem::take(&mut self.pending)
            .into_iter()
            .map(|(i, c)| Self::delta(i, c))
            .collect();
        self.sent = self.sent.saturating_add(out.len());
        out
    }

    /// The attempt failed: the calls it left unfinished are dropped.
    pub fn drop_pending(&mut self) {
        self.pending.clear();
    }

    /// Whether a whole call has gone to the client (a stream that did so is not
    /// continued: the caller may already be running it).
    pub fn any_sent(&self) -> bool {
        self.sent > 0
    }

    fn delta(index: u32, c: PendingCall) -> ToolCallDelta {
        ToolCallDelta {
            index,
            id: c.id,
            kind: c.kind.or_else(|| Some("function".into())),
            function: Some(crate::api::FunctionCallDelta {
                name: Some(c.name),
                arguments: Some(c.arguments),
            }),
        }
    }
}

/// The request the next endpoint gets: the conversation, then the text streamed so
/// far as the assistant's turn; an endpoint that does not continue a prefilled turn
/// (`prefill` false: OpenAI-compatible) is also told to go on. Reasoning is never
/// carried over (it was not signed by the endpoint that continues). An output budget
/// the caller set is lowered by the `generated` tokens already spent on it.
pub fn continuation_request(
    chat: &ChatRequest,
    sent: &str,
    prefill: bool,
    generated: u64,
) -> ChatRequest {
    let mut next = chat.clone();
    // Anthropic refuses a prefilled turn that ends in white space; the overlap cut
    // takes the space the model then repeats.
    let text = if prefill { sent.trim_end() } else { sent };
    if !text.is_empty() {
        next.messages.push(Message {
            role: Role::Assistant,
            content: Some(Content::Text(text.to_string())),
            ..Default::default()
        });
        if !prefill {
            next.messages.push(Message {
                role: Role::User,
                content: Some(Content::Text(CONTINUE_INSTRUCTION.into())),
                ..Default::default()
            });
        }
    }
    let lower = |n: &mut Option<u64>| {
        if let Some(n) = n.as_mut() {
            *n = n.saturating_sub(generated).max(1);
        }
    };
    lower(&mut next.max_tokens);
    lower(&mut next.max_completion_tokens);
    next
}

/// One finished attempt: its priced usage (`cost` what the caller is charged) and its
/// line in `usage.cost_details.attempts`.
#[derive(Debug, Clone, PartialEq)]
struct Done {
    usage: Usage,
    line: AttemptCost,
}

/// The continuation state of one stream: how many more failovers it may take, the
/// text sent so far, the cut of the current continuation, the tool calls held, the
/// attempts finished, and the failure waiting for the edge to act on.
#[derive(Debug, Default)]
pub struct Relay {
    left: u8,
    text: String,
    cutter: Cutter,
    pub gate: ToolGate,
    done: Vec<Done>,
    pending: Option<Error>,
}

/// A stream's picodollar amount of `u.cost`.
fn picos(u: Option<&Usd>) -> u64 {
    u.map_or(0, |c| u64::try_from(c.0).unwrap_or(u64::MAX))
}

impl Relay {
    /// A stream that may fail over `failovers` times.
    pub fn new(failovers: u8) -> Relay {
        Relay {
            left: failovers,
            ..Default::default()
        }
    }

    /// The text sent so far.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// A continuation's text in (through the cut); what goes to the client, recorded
    /// as sent.
    pub fn text_out(&mut self, text: &str) -> String {
        let out = self.cutter.push(text);
        self.text.push_str(&out);
        out
    }

    /// Something other than text came (or the end): what the cut still held.
    pub fn flush_text(&mut self) -> String {
        let out = self.cutter.flush();
        self.text.push_str(&out);
        out
    }

    /// One chunk of the stream on its way to the client (one choice: a stream with
    /// several is never continued): a continuation's text through the cut, tool calls
    /// only whole, a continuation's role dropped (the turn goes on). `false`: nothing
    /// of it is left to send.
    pub fn filter(&mut self, chunk: &mut ChatChunk) -> bool {
        let continuing = self.switched();
        for c in &mut chunk.choices {
            let d = &mut c.delta;
            if continuing {
                d.role = None;
            }
            let mut text = match d.content.take() {
                Some(t) => self.text_out(&t),
                None => String::new(),
            };
            let finish = c.finish_reason.is_some();
            if finish || d.reasoning.is_some() || d.tool_calls.is_some() || d.images.is_some() {
                text.push_str(&self.flush_text());
            }
            let mut whole = d
                .tool_calls
                .take()
                .map_or_else(Vec::new, |t| self.gate.push(t));
            if finish {
                whole.extend(self.gate.release());
            }
            d.tool_calls = (!whole.is_empty()).then_some(whole);
            d.content = (!text.is_empty()).then_some(text);
        }
        chunk.usage.is_some()
            || chunk.error.is_some()
            || chunk.choices.iter().any(|c| {
                let d = &c.delta;
                c.finish_reason.is_some()
                    || d.role.is_some()
                    || d.content.is_some()
                    || d.reasoning.as_deref().is_some_and(|r| !r.is_empty())
                    || d.tool_calls.is_some()
                    || d.images.is_some()
                    || d.annotations.is_some()
                    || d.reasoning_details.is_some()
            })
    }

    /// Holds `err` for the edge to fail over on, if the stream may still do so;
    /// `false`: the stream fails as it would without failover.
    pub fn hold(&mut self, err: &Error) -> bool {
        if self.left == 0 || self.gate.any_sent() {
            return false;
        }
        self.pending = Some(err.clone());
        true
    }

    /// The failure waiting for the edge, if any.
    pub fn pending(&self) -> Option<&Error> {
        self.pending.as_ref()
    }

    /// The edge gives up on failing over: the failure it held, and no more failovers.
    pub fn give_up(&mut self) -> Option<Error> {
        self.left = 0;
        self.pending.take()
    }

    /// The attempt that failed is done with (`usage` priced as billed): the next
    /// continues the text sent so far.
    pub fn switch(&mut self, usage: Usage, provider: &str, model: &str) -> Option<Error> {
        let err = self.pending.take();
        let outcome = err.as_ref().map_or("error".into(), |e| e.public_message());
        self.finish_attempt(
            usage,
            provider,
            model,
            crate::error::truncate(&outcome, 200),
        );
        self.left = self.left.saturating_sub(1);
        self.gate.drop_pending();
        self.cutter = Cutter::new(&self.text);
        err
    }

    fn finish_attempt(&mut self, usage: Usage, provider: &str, model: &str, outcome: &str) {
        let line = AttemptCost {
            provider: provider.to_string(),
            model: model.to_string(),
            prompt_tokens: usage.prompt_tokens,
            completion_tokens: usage.completion_tokens,
            cost: usage.cost.unwrap_or(Usd(0)),
            outcome: outcome.to_string(),
        };
        self.done.push(Done { usage, line });
    }

    /// Whether the stream has failed over at least once.
    pub fn switched(&self) -> bool {
        !self.done.is_empty()
    }

    /// The final usage: `last` (the last attempt's priced usage, ending with
    /// `outcome`) with every earlier attempt's added, and each listed.
    pub fn summed(&self, last: &Usage, provider: &str, model: &str, outcome: &str) -> Usage {
        if self.done.is_empty() {
            return last.clone();
        }
        let mut sum = Usage::default();
        let mut lines = Vec::with_capacity(self.done.len().saturating_add(1));
        for d in &self.done {
            sum.add(&d.usage);
            lines.push(d.line.clone());
        }
        sum.add(last);
        lines.push(AttemptCost {
            provider: provider.to_string(),
            model: model.to_string(),
            prompt_tokens: last.prompt_tokens,
            completion_tokens: last.completion_tokens,
            cost: last.cost.unwrap_or(Usd(0)),
            outcome: outcome.to_string(),
        });
        sum.cost_details
            .get_or_insert_with(Default::default)
            .attempts = lines;
        sum
    }

    /// The attempts before the last, for the settlement.
    pub fn earlier(&self) -> Option<Earlier> {
        if self.done.is_empty() {
            return None;
        }
        let mut e = Earlier::default();
        for d in &self.done {
            e.usage.add(&d.usage);
            let charged = picos(d.usage.cost.as_ref());
            let upstream = picos(
                d.usage
                    .cost_details
                    .as_ref()
                    .map(|c| &c.upstream_inference_cost),
            );
            e.charged_picos = e.charged_picos.saturating_add(charged);
            e.loss_picos = e
                .loss_picos
                .saturating_add(upstream.saturating_sub(charged));
        }
        Some(e)
    }

    /// What the attempts so far charge the caller, `current` (the attempt under way,
    /// priced) included: what a next attempt's worst case must fit beside in the hold.
    pub fn spent_picos(&self, current: &Usage) -> u64 {
        self.done
            .iter()
            .map(|d| picos(d.usage.cost.as_ref()))
            .fold(picos(current.cost.as_ref()), u64::saturating_add)
    }
}

#[cfg(test)]
mod tests;
