//! Hidden reasoning billed by the time a reply showed nothing.

/// A model that thinks before it answers without streaming its thoughts (OpenAI's
/// reasoning models), its usage only in a stream's last chunk. A stream that ends
/// without that count (a client that left, a broken upstream) is billed reasoning
/// estimated from the time the reply showed nothing: from its start to its first
/// visible output, or to its end, at `tokens_per_second`, at most the request's
/// output budget less what streamed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Thinking {
    /// What the endpoint generates per second (its measured throughput, or the
    /// catalogue's figure).
    pub tokens_per_second: f64,
    /// The most output tokens the request may generate.
    pub max_tokens: u64,
    /// When the reply started (ms: the upstream's response headers), and the last
    /// time it was seen with nothing shown yet.
    pub(super) started_ms: f64,
    pub(super) silent_until_ms: f64,
}

impl Thinking {
    pub fn new(tokens_per_second: f64, max_tokens: u64) -> Thinking {
        Thinking {
            tokens_per_second,
            max_tokens,
            started_ms: 0.0,
            silent_until_ms: 0.0,
        }
    }

    /// How an endpoint's hidden reasoning is estimated, if its model hides it: at the
    /// throughput health `measured` there, else at the catalogue's figure.
    pub fn of(
        endpoint: &crate::catalog::Endpoint,
        measured: Option<f64>,
        max_tokens: u64,
    ) -> Option<Thinking> {
        let stated = endpoint.hidden_reasoning_tps?;
        let tps = measured.filter(|t| *t > 0.0).unwrap_or(stated as f64);
        Some(Thinking::new(tps, max_tokens))
    }

    /// The reasoning tokens of the silence, with `shown` output tokens streamed.
    pub(super) fn tokens(&self, shown: u64) -> u64 {
        let secs = ((self.silent_until_ms - self.started_ms) / 1000.0).max(0.0);
        let tokens = (secs * self.tokens_per_second.max(0.0)).ceil() as u64;
        tokens.min(self.max_tokens.saturating_sub(shown))
    }
}
