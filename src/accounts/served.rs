//! What an attempt that answered comes to, for every kind of reply (streamed, whole,
//! embeddings, the demo model): whether zero-completion insurance covers it, what the
//! caller is charged, what the operator loses, and the request's generation record.
//! One rule, so that a stream and a whole reply are never billed two ways.

use super::records::Generation;
use crate::api::{ChatCompletion, Usage};
use crate::catalog::{zero_completion_insured, Pricing};

/// Why an empty reply was not charged.
pub const EMPTY_REPLY: &str = "an empty or failed reply (zero-completion insurance)";

/// What the gateway saw of one attempt that answered.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Served {
    /// The model ID reported back, and the provider's name.
    pub model: String,
    pub provider: String,
    /// What the attempt is billed by: the provider's count, a partial one, or an estimate.
    pub usage: Usage,
    /// Where `usage` came from (`provider`, `partial`, `estimate`), for replies that say.
    pub usage_source: Option<&'static str>,
    /// Output reached the caller: content, reasoning, a refusal, tool calls, images or
    /// vectors.
    pub delivered: bool,
    /// Each choice's finish reason; the first is the one recorded.
    pub finish_reasons: Vec<Option<String>>,
    pub native_finish_reason: Option<String>,
    pub latency_ms: u64,
    pub generation_ms: u64,
    /// The client left before the reply ended.
    pub cancelled: bool,
    /// Its usage counts hidden reasoning estimated from the time the model showed
    /// nothing (no count from the provider).
    pub reasoning_estimated: bool,
    /// A stream that failed over: the attempts before this one, each billed its own.
    pub earlier: Option<crate::usage::Earlier>,
    /// Its tool calls checked against the request's tools (for the endpoint's health).
    pub tool_calls: crate::api::tool_check::ToolTally,
}

impl Served {
    /// Zero-completion insurance. Output counts only from a provider's final count:
    /// before it, a stream's partial count may announce output tokens (Anthropic's
    /// `message_start`) that never came, and an estimate counts what was delivered.
    /// It covers a provider's empty or failed reply, never a client that left: that one
    /// is charged what was generated, hidden reasoning estimated included, or cutting a
    /// silent reasoning model before its first content would be free work at will.
    pub fn insured(&self) -> bool {
        if self.cancelled {
            return false;
        }
        let output = match self.usage_source {
            Some("provider") => self.usage.completion_tokens,
            _ => 0,
        };
        let finishes = self.finish_reasons.iter().map(Option::as_deref);
        zero_completion_insured(output, self.delivered, finishes)
    }

    /// The usage as the reply shows it: its cost is what the caller is charged
    /// (nothing when insured), beside what it cost upstream.
    pub fn priced_usage(&self, pricing: &Pricing) -> Usage {
        let mut u = self.usage.clone();
        pricing.price(&mut u, !self.insured());
        u
    }

    /// The request's record, `base` completed with this attempt: charged at `pricing`,
    /// or, when insured, free to the caller and the operator's loss.
    pub fn record(&self, base: &Generation, pricing: &Pricing) -> Generation {
        let cost = pricing.cost_picos(&self.usage);
        let byok = pricing.byok_fee_percent.is_some();
        // An insured BYOK reply costs the operator nothing: the account's key paid.
        let (charged, loss) = match (self.insured(), byok) {
            (true, true) => (0, 0),
            (true, false) => (0, cost),
            (false, _) => (cost, 0),
        };
        let mut usage = self.usage.clone();
        let (charged, loss) = match &self.earlier {
            Some(e) => {
                usage.add(&e.usage);
                (
                    charged.saturating_add(e.charged_picos),
                    loss.saturating_add(e.loss_picos),
                )
            }
            None => (charged, loss),
        };
        Generation {
            model: self.model.clone(),
            provider: Some(self.provider.clone()),
            latency_ms: Some(self.latency_ms),
            generation_ms: Some(self.generation_ms),
            cancelled: self.cancelled,
            finish_reason: self.finish_reasons.first().cloned().flatten(),
            native_finish_reason: self.native_finish_reason.clone(),
            usage_source: self.usage_source.map(str::to_string),
            reasoning_estimated: self.reasoning_estimated,
            operator_loss_picos: loss,
            operator_loss_reason: (loss > 0).then(|| EMPTY_REPLY.to_string()),
            is_byok: byok,
            ..base.clone()
        }
        .with_usage(&usage, charged)
    }
}

/// Whether a whole reply delivered anything: content, reasoning, a refusal, tool calls
/// or images, in any choice.
pub fn delivered(c: &ChatCompletion) -> bool {
    let some = |t: &Option<String>| t.as_deref().is_some_and(|t| !t.is_empty());
    c.choices.iter().any(|c| {
        let m = &c.message;
        some(&m.content)
            || some(&m.reasoning)
            || some(&m.refusal)
            || m.tool_calls.as_ref().is_some_and(|t| !t.is_empty())
            || m.images.is_some()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pricing() -> Pricing {
        serde_json::from_value(serde_json::json!({"prompt": "0.000001", "completion": "0.000002"}))
            .unwrap()
    }

    fn served(source: &'static str, out: u64, delivered: bool, finish: Option<&str>) -> Served {
        Served {
            model: "a/m".into(),
            provider: "P".into(),
            usage: Usage::new(10, out),
            usage_source: Some(source),
            delivered,
            finish_reasons: vec![finish.map(str::to_string)],
            latency_ms: 5,
            generation_ms: 7,
            ..Default::default()
        }
    }

    #[test]
    fn a_reply_that_produced_something_is_charged_its_cost() {
        let base = Generation {
            id: "gen-1".into(),
            streamed: true,
            ..Default::default()
        };
        let s = served("provider", 3, true, Some("stop"));
        let g = s.record(&base, &pricing());
        // 10 prompt tokens at $1/M and 3 completion tokens at $2/M.
        assert_eq!(g.cost_picos, 16_000_000);
        assert_eq!(g.operator_loss_picos, 0);
        assert_eq!(g.operator_loss_reason, None);
        assert_eq!((g.id.as_str(), g.streamed), ("gen-1", true));
        assert_eq!(
            (g.model.as_str(), g.provider.as_deref()),
            ("a/m", Some("P"))
        );
        assert_eq!((g.latency_ms, g.generation_ms), (Some(5), Some(7)));
        assert_eq!(g.finish_reason.as_deref(), Some("stop"));
        assert_eq!(g.usage_source.as_deref(), Some("provider"));
        assert_eq!((g.prompt_tokens, g.completion_tokens), (10, 3));
        let u = s.priced_usage(&pricing());
        assert_eq!(u.cost.map(|c| c.0), Some(16_000_000));
    }

    #[test]
    fn a_stream_that_failed_over_is_charged_every_attempt_once() {
        let s = Served {
            earlier: Some(crate::usage::Earlier {
                usage: Usage::new(11, 4),
                charged_picos: 19_000_000,
                loss_picos: 5,
            }),
            ..served("provider", 3, true, Some("stop"))
        };
        let g = s.record(&Generation::default(), &pricing());
        // This attempt's 16,000,000 and the earlier ones' 19,000,000.
        assert_eq!(g.cost_picos, 35_000_000);
        assert_eq!(g.operator_loss_picos, 5);
        assert_eq!((g.prompt_tokens, g.completion_tokens), (21, 7));
    }

    #[test]
    fn an_empty_reply_without_a_normal_finish_is_the_operators_loss() {
        for finish in [None, Some(""), Some("error")] {
            let s = served("provider", 0, false, finish);
            assert!(s.insured(), "{finish:?}");
            let g = s.record(&Generation::default(), &pricing());
            assert_eq!(g.cost_picos, 0);
            assert_eq!(g.operator_loss_picos, 10_000_000);
            assert_eq!(g.operator_loss_reason.as_deref(), Some(EMPTY_REPLY));
            let u = s.priced_usage(&pricing());
            assert_eq!(u.cost.map(|c| c.0), Some(0));
            let upstream = u.cost_details.map(|d| d.upstream_inference_cost.0);
            assert_eq!(upstream, Some(10_000_000));
        }
    }

    #[test]
    fn an_empty_reply_that_stopped_normally_pays_for_its_prompt() {
        let s = served("provider", 0, false, Some("stop"));
        assert!(!s.insured());
        assert_eq!(
            s.record(&Generation::default(), &pricing()).cost_picos,
            10_000_000
        );
    }

    #[test]
    fn only_a_providers_final_count_says_output_was_generated() {
        // A cut stream whose partial count announced output that never reached anyone.
        assert!(served("partial", 2, false, None).insured());
        assert!(served("estimate", 2, false, None).insured());
        assert!(!served("provider", 2, false, None).insured());
        // Anything delivered is charged, whatever the count.
        assert!(!served("partial", 0, true, None).insured());
    }

    #[test]
    fn a_client_that_left_is_charged_what_was_generated_never_insured() {
        // A silent reasoning model cut before any content: the estimate of its reasoning.
        let mut s = served("estimate", 40, false, None);
        s.reasoning_estimated = true;
        assert!(s.insured(), "an empty reply nobody left");
        s.cancelled = true;
        assert!(!s.insured());
        let g = s.record(&Generation::default(), &pricing());
        // 10 prompt tokens at $1/M and 40 completion tokens at $2/M.
        assert_eq!(g.cost_picos, 90_000_000);
        assert_eq!((g.operator_loss_picos, g.operator_loss_reason), (0, None));
        assert!(g.cancelled && g.reasoning_estimated);
        assert_eq!(
            s.priced_usage(&pricing()).cost.map(|c| c.0),
            Some(90_000_000)
        );
        // Before anything was generated it still pays for the prompt the provider read.
        let mut early = served("estimate", 0, false, None);
        early.cancelled = true;
        assert_eq!(
            early.record(&Generation::default(), &pricing()).cost_picos,
            10_000_000
        );
    }

    #[test]
    fn every_choice_must_end_blank_for_insurance() {
        let mut s = served("provider", 0, false, None);
        s.finish_reasons.push(Some("length".into()));
        assert!(!s.insured());
        // The first choice's reason is the one recorded.
        let g = s.record(&Generation::default(), &pricing());
        assert_eq!(g.finish_reason, None);
    }

    #[test]
    fn what_a_whole_reply_delivered() {
        let reply = |message: serde_json::Value| -> ChatCompletion {
            serde_json::from_value(serde_json::json!({
                "id": "x", "created": 0, "model": "m",
                "choices": [{"index": 0, "message": message, "finish_reason": null}]
            }))
            .unwrap()
        };
        assert!(!delivered(&reply(serde_json::json!({"role": "assistant"}))));
        assert!(!delivered(&reply(
            serde_json::json!({"role": "assistant", "content": ""})
        )));
        assert!(!delivered(&reply(
            serde_json::json!({"role": "assistant", "tool_calls": []})
        )));
        for m in [
            serde_json::json!({"role": "assistant", "content": "hi"}),
            serde_json::json!({"role": "assistant", "reasoning": "hm"}),
            serde_json::json!({"role": "assistant", "refusal": "no"}),
            serde_json::json!({"role": "assistant", "images": []}),
            serde_json::json!({"role": "assistant", "tool_calls": [
                {"id": "c", "type": "function", "function": {"name": "f", "arguments": "{}"}}]}),
        ] {
            assert!(delivered(&reply(m.clone())), "{m}");
        }
    }
}
