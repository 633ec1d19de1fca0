//! A reply read whole: the non-streamed exchange with one endpoint, run and settled as
//! the request's background work.

use std::cell::Cell;
use std::rc::Rc;

use super::settler::Settler;
use crate::accounts::served::{self, Served};
use crate::api::tool_check::ToolTally;
use crate::api::{GenerationMeta, Usage};
use crate::edge::budget::Hold;
use crate::edge::{config, upstream};
use crate::error::Error;
use crate::providers;
use crate::providers::stream::{ChatStream, Thinking, Translator};

/// A non-streamed exchange with one endpoint: sent, read, parsed and settled as the
/// request's background work (`wait_until`), so that it outlives a client that leaves
/// while the model is still working. The provider bills the whole reply either way, so
/// it is read on for at most [`upstream::Drain`]'s time once the client has gone, and
/// charged from the provider's usage, marked `cancelled`.
pub(super) struct WholeReply {
    pub(super) family: &'static dyn providers::Family,
    pub(super) slug: String,
    pub(super) timeout: u64,
    pub(super) started: f64,
    pub(super) meta: GenerationMeta,
    pub(super) pricing: crate::catalog::Pricing,
    pub(super) prompt_estimate: u64,
    pub(super) key: String,
    pub(super) settler: Settler,
    pub(super) model: String,
    pub(super) provider: String,
    pub(super) max_bytes: usize,
    /// `ISOLATE_REPLY_BYTES`.
    pub(super) isolate_bytes: u64,
    pub(super) thinking: Option<Thinking>,
    /// Where the time of its first byte goes (`Server-Timing`).
    pub(super) first_byte: Rc<Cell<f64>>,
    /// The request's tools, which the reply's tool calls are checked against.
    pub(super) tools: Vec<crate::api::request::Tool>,
    /// The endpoint's prices by service tier, where the model has tiers.
    pub(super) tier_prices: Option<Box<[crate::catalog::Pricing; 3]>>,
    /// Response healing, if asked for, and where its report goes.
    pub(super) healing: Option<Healing>,
    /// Searches the server-tool loop ran before this call, billed with it.
    pub(super) searches_run: u64,
    /// The provider's own search went with this call and bills one per request.
    pub(super) searches_billed_per_request: bool,
    pub(super) ocr: crate::usage::Ocr,
}

/// The healing of a whole reply: what is asked, whether a reply whose JSON still fails
/// is tried at the next endpoint (there is one), and the report of what was done.
pub(super) struct Healing {
    pub(super) healer: crate::api::heal::Healer,
    pub(super) retry: bool,
    pub(super) report: Rc<std::cell::RefCell<Option<crate::api::heal::HealReport>>>,
}

impl WholeReply {
    /// Heals `completion`; the error that moves on to the next endpoint when its JSON
    /// still fails and `retry` asks for it (what the provider billed, `usage`, is then
    /// the operator's loss, as for any invalid reply before a fallback).
    fn heal(
        &self,
        completion: &mut crate::api::ChatCompletion,
        usage: &Usage,
    ) -> Result<(), Error> {
        let Some(h) = &self.healing else {
            return Ok(());
        };
        let report = h.healer.apply(completion);
        let failed = report.invalid.clone().filter(|_| h.retry);
        *h.report.borrow_mut() = Some(report);
        match failed {
            Some(why) => {
                self.settler.lose(self.pricing.cost_picos(usage));
                Err(Error::upstream(
                    &self.slug,
                    format!("the reply's JSON does not fit response_format: {why}"),
                ))
            }
            None => Ok(()),
        }
    }
}

/// A reply read whole: the chat reply, its bytes, and what it holds of the isolate's
/// reply budget until it is written.
type Whole = (crate::api::ChatCompletion, Vec<u8>, Hold);

/// A gathered reply: the chat reply that bills it, and for the Messages pass-through
/// the upstream's own message; and what it holds of the isolate's reply budget.
type GatheredReply = (crate::api::ChatCompletion, Option<serde_json::Value>, Hold);

impl WholeReply {
    /// Runs the exchange in the background; resolves with its outcome while the client
    /// waits for it.
    pub(super) async fn spawn(
        self,
        up: upstream::Outgoing,
        drain: upstream::Drain,
    ) -> Result<Whole, Error> {
        use futures_util::future::{select, Either};
        let (mut tx, rx) = futures_channel::oneshot::channel::<Result<Whole, Error>>();
        self.settler.ctx.clone().wait_until(async move {
            let left = Rc::new(Cell::new(false));
            let outcome = {
                let run = std::pin::pin!(self.run(&up, left.clone()));
                let gone = std::pin::pin!(async {
                    tx.cancellation().await;
                    left.set(true);
                    config::sleep(drain.ms).await;
                });
                match select(run, gone).await {
                    Either::Left((outcome, _)) => Some(outcome),
                    // The client left and the reply did not come in time: the upstream
                    // is aborted and the request settles as cancelled.
                    Either::Right(_) => None,
                }
            };
            if let Some(outcome) = outcome {
                let _ = tx.send(outcome);
            }
        });
        rx.await
            .unwrap_or_else(|_| Err(Error::Internal("the upstream exchange was dropped".into())))
    }

    /// The exchange read as a stream and gathered into one reply, in the background:
    /// resolves with the reply while the client waits for it; settles however it ends.
    /// `native`: the caller (of the Messages pass-through) gets the upstream's own
    /// message, gathered from its events, beside the chat reply that bills it.
    pub(super) async fn gathered(
        self,
        limits: upstream::GatherLimits,
        up: upstream::Outgoing,
        translator: Translator,
        native: bool,
    ) -> Result<GatheredReply, Error> {
        let (mut tx, rx) = futures_channel::oneshot::channel();
        self.settler.ctx.clone().wait_until(async move {
            let stream = ChatStream::new(
                translator,
                self.meta.clone(),
                self.pricing.clone(),
                self.prompt_estimate,
            )
            .with_thinking(self.thinking)
            .with_tier_prices(self.tier_prices.clone())
            .gathering();
            let stream = if native {
                stream.gathering_native()
            } else {
                stream
            };
            // The client is gone when its request's signal aborts, or when it stops
            // waiting for this exchange's answer, whichever is noticed first.
            let gone = async {
                let signal = self.settler.client.as_ref().map(config::client_gone);
                let signal = async move {
                    match signal {
                        Some(s) => drop(s.await),
                        None => std::future::pending().await,
                    }
                };
                let signal = std::pin::pin!(signal);
                futures_util::future::select(tx.cancellation(), signal).await;
            };
            let read = upstream::gather(&up, &self.slug, limits, stream, gone).await;
            if let Some(outcome) = self.settle_gathered(read, native) {
                let _ = tx.send(outcome);
            }
        });
        rx.await
            .unwrap_or_else(|_| Err(Error::Internal("the upstream exchange was dropped".into())))
    }

    /// Settles a gathered exchange; the reply for a client that is still there. A
    /// failure before the end falls back to the next endpoint (nothing reached the
    /// client): what the provider billed for it is the operator's loss. A client that
    /// left is charged what was generated by then.
    fn settle_gathered(
        &self,
        read: Result<upstream::Gathered, Error>,
        native: bool,
    ) -> Option<Result<GatheredReply, Error>> {
        let (mut stream, first_byte, left, hold) = match read {
            Ok(upstream::Gathered::Stream {
                stream,
                first_byte,
                left,
                hold,
            }) => (stream, first_byte, left, hold),
            Ok(upstream::Gathered::Whole {
                first_byte,
                body,
                hold,
            }) => {
                let reply = self.whole(first_byte, &body, false).and_then(|c| {
                    let own = native
                        .then(|| self.family.native_reply(&self.slug, &body, &self.model))
                        .transpose()?;
                    Ok((c, own, hold))
                });
                return Some(reply);
            }
            Err(e) => return Some(Err(e)),
        };
        let s = &mut stream;
        s.at(config::now_ms());
        let usage = s.final_usage();
        if let (Some(e), false) = (s.failure(), left) {
            self.settler.lose(self.pricing.cost_picos(&usage));
            return Some(Err(e.clone()));
        }
        let own = s.gathered_native().map(|mut own| {
            crate::api::set_field(&mut own, "model", serde_json::json!(self.model));
            own
        });
        let mut completion = s
            .gathered()
            .unwrap_or_else(|| self.meta.completion(Vec::new(), None));
        completion.service_tier = s.service_tier().map(str::to_string);
        // Billed at the tier that served it.
        let pricing = s.serving().2.clone();
        if !left && !native {
            if let Err(e) = self.heal(&mut completion, &usage) {
                return Some(Err(e));
            }
        }
        let billed = (usage, s.usage_source(), s.delivered());
        let served = Served {
            reasoning_estimated: s.reasoning_estimated(),
            ..self.served(&completion, billed, first_byte, left)
        };
        completion.usage = Some(served.priced_usage(&pricing));
        let health = (!left).then(|| (self.key.clone(), true));
        self.settler.note_output(&completion);
        self.settler.conclude(&served, &pricing, health);
        (!left).then_some(Ok((completion, own, hold)))
    }

    async fn run(&self, up: &upstream::Outgoing, left: Rc<Cell<bool>>) -> Result<Whole, Error> {
        let slug = self.slug.as_str();
        let limits = (self.max_bytes, self.isolate_bytes);
        let (first_byte, body, hold) = upstream::exchange(up, slug, self.timeout, limits).await?;
        self.whole(first_byte, &body, left.get())
            .map(|completion| (completion, body, hold))
    }

    /// Parses and settles one upstream reply read whole.
    fn whole(
        &self,
        first_byte: f64,
        body: &[u8],
        left: bool,
    ) -> Result<crate::api::ChatCompletion, Error> {
        let slug = self.slug.as_str();
        let mut completion = match self.family.parse_response(slug, &self.meta, body) {
            Ok(c) => c,
            Err(e) => {
                // A 2xx the gateway could not read was likely billed upstream for its prompt.
                let prompt = Usage::new(self.prompt_estimate, 0);
                self.settler.lose(self.pricing.cost_picos(&prompt));
                return Err(e);
            }
        };
        // A reply without usage is billed from what it returned: content, reasoning and
        // tool calls, at a token per four bytes.
        let (usage, usage_source) = match completion.usage.take() {
            Some(u) => (u, "provider"),
            None => (
                Usage::new(
                    self.prompt_estimate,
                    providers::estimate_completion_tokens(&completion),
                ),
                "estimate",
            ),
        };
        // Billed at the tier the upstream says served it.
        let tier = crate::catalog::Tier::served(completion.service_tier.as_deref());
        completion.service_tier = tier.map(|t| crate::catalog::tier::reply_name(t).to_string());
        let pricing = crate::catalog::tier::pick(self.tier_prices.as_deref(), tier, &self.pricing);
        if !left {
            self.heal(&mut completion, &usage)?;
        }
        let billed = (usage, usage_source, served::delivered(&completion));
        let served = self.served(&completion, billed, first_byte, left);
        completion.usage = Some(served.priced_usage(pricing));
        // Before the settlement, which the span is made after.
        self.settler.note_output(&completion);
        self.settler
            .conclude(&served, pricing, Some((self.key.clone(), true)));
        Ok(completion)
    }

    /// The reply's tool calls checked against the request's tools (none counted for a
    /// request without tools).
    fn tool_calls(&self, completion: &crate::api::ChatCompletion) -> ToolTally {
        if self.tools.is_empty() {
            return ToolTally::default();
        }
        let calls = completion
            .choices
            .iter()
            .flat_map(|c| c.message.tool_calls.iter().flatten())
            .map(|t| (t.function.name.as_str(), t.function.arguments.as_str()));
        crate::api::tool_check::tally(&self.tools, calls)
    }

    /// What this exchange served as `completion`: billed by `usage` (from `source`),
    /// having `delivered` output or not, its first byte at `first_byte`.
    fn served(
        &self,
        completion: &crate::api::ChatCompletion,
        (usage, source, delivered): (Usage, &'static str, bool),
        first_byte: f64,
        left: bool,
    ) -> Served {
        self.first_byte.set(first_byte);
        let mut usage = usage;
        // The provider's own searches (native) show in `usage.server_tool_use`; the
        // loop's, run before this call, are billed with it and counted by the loop.
        let native = usage
            .web_searches
            .max(u64::from(self.searches_billed_per_request));
        if native > 0 {
            let shown = usage.server_tool_use.get_or_insert_with(Default::default);
            shown.web_search_requests = native;
        }
        usage.web_searches = native.saturating_add(self.searches_run);
        self.ocr.bill(&mut usage);
        Served {
            model: self.model.clone(),
            provider: self.provider.clone(),
            usage,
            usage_source: Some(source),
            delivered,
            finish_reasons: completion
                .choices
                .iter()
                .map(|c| c.finish_reason.clone())
                .collect(),
            native_finish_reason: completion
                .choices
                .first()
                .and_then(|c| c.native_finish_reason.clone()),
            latency_ms: (first_byte - self.started) as u64,
            generation_ms: (config::now_ms() - first_byte) as u64,
            cancelled: left,
            reasoning_estimated: false,
            earlier: None,
            tool_calls: self.tool_calls(completion),
        }
    }
}
