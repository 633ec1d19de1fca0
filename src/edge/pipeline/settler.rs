//! The settlement of one admitted request, exactly once, and the renewal of its hold
//! while it runs: what every kind of reply ends with.

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use serde::de::IgnoredAny;
use worker::Env;

use crate::edge::background::Background;

use crate::accounts::lease::Ticket;
use crate::accounts::records::Generation;
use crate::accounts::served::Served;
use crate::catalog::Pricing;
use crate::edge::account::{self, Op, SettleItem};
use crate::edge::{admission, config, health};
use crate::routing::health::Outcome;

/// Settles one request with its account, exactly once. The settlement is registered
/// with the runtime (`wait_until`) right after admission, while the request is alive,
/// so that it happens even when the client leaves first: the first [`Settler::settle`]
/// sends its record; if every holder of the settler is dropped before that (the client
/// disconnected during a non-streamed call, which aborts the upstream), the request is
/// settled as cancelled with nothing delivered, so it costs the caller nothing.
#[derive(Clone)]
pub(super) struct Settler {
    pub(super) env: Env,
    pub(super) ctx: Rc<Background>,
    pub(super) gen_id: String,
    pub(super) base: Generation,
    /// The sender of the one settlement; taken by the first settle.
    slot: Rc<RefCell<Option<futures_channel::oneshot::Sender<Generation>>>>,
    /// Paid upstream and not charged: garbage replies before a fallback.
    loss: Rc<Cell<u64>>,
    /// Incurred for the request whatever becomes of it (the pages the OCR read): what
    /// its settlement charges at least.
    incurred: Rc<Cell<u64>>,
    /// Aborts when the client disconnects (`request.signal`).
    pub(super) client: Option<worker::web_sys::AbortSignal>,
    /// The account's pseudonym in health reports.
    pub(super) tenant: u32,
    /// What the trace span learns while the request is served (none: not traced).
    late: Option<Rc<RefCell<Late>>>,
}

/// What a generation's span learns only while it is served.
#[derive(Debug, Default)]
struct Late {
    /// Endpoints tried before the one that served.
    fallback_attempts: Option<u32>,
    /// Whether the request asked the response cache (and missed: a hit has no settler).
    cache_miss: bool,
    output_text: Option<String>,
}

impl Late {
    fn into_facts(
        self,
        facts: &crate::accounts::traces::SpanFacts,
    ) -> crate::accounts::traces::SpanFacts {
        crate::accounts::traces::SpanFacts {
            fallback_attempts: self.fallback_attempts,
            cache_hit: self.cache_miss.then_some(false),
            output_text: self.output_text,
            ..facts.clone()
        }
    }
}

/// What the settlement task and the hold's renewal need: none of it keeps the
/// settlement's sender alive.
#[derive(Clone)]
pub(super) struct AccountLink {
    pub(super) env: Env,
    pub(super) account: String,
    pub(super) caller: String,
    pub(super) gen_id: String,
    /// The lease the request was admitted against; none: it holds a reservation.
    pub(super) ticket: Option<Ticket>,
    /// The session it is charged to.
    pub(super) session: Option<String>,
    /// What its trace span needs besides the record (trace export).
    pub(super) trace: Option<Rc<crate::accounts::traces::SpanFacts>>,
}

impl AccountLink {
    /// Hands the settlement to the isolate's batches (sent off the hot path, retried
    /// until they land; if they never do, the hold expires into the operator's
    /// reconciliation ledger).
    async fn send(self, g: Generation) {
        let item = SettleItem {
            caller: self.caller,
            gen_id: self.gen_id,
            generation: g,
            lease: self.ticket.as_ref().map(|t| t.lease_id.clone()),
            session: self.session,
        };
        admission::settle(self.env, self.account, item, self.ticket).await;
    }

    /// Waits for the request's settlement, keeping its hold alive meanwhile (a long
    /// stream, a reasoning model thinking for minutes): its reservation is renewed every
    /// third of the TTL, a lease checked for renewal every `KEY_CACHE_MS`. One task per
    /// request does both, so a request that ends within the period costs one timer.
    async fn await_settlement(
        &self,
        rx: futures_channel::oneshot::Receiver<Generation>,
        cancelled: Generation,
        ttl_ms: u64,
    ) -> Generation {
        use futures_util::future::{select, Either};
        let every = match self.ticket {
            Some(_) => admission::key_cache_ms(&self.env),
            None => (ttl_ms / 3).max(1),
        };
        let mut rx = rx;
        loop {
            let tick = std::pin::pin!(config::sleep(every));
            match select(&mut rx, tick).await {
                Either::Left((g, _)) => return g.unwrap_or(cancelled),
                // Cut off from its request, the task cannot wait: take what comes.
                Either::Right((false, _)) => return rx.await.unwrap_or(cancelled),
                Either::Right((true, _)) => {}
            }
            if self.ticket.is_some() {
                admission::maintain(self.env.clone(), self.caller.clone()).await;
            } else {
                let renew = Op::Renew {
                    gen_ids: vec![self.gen_id.clone()],
                };
                let _ = account::call::<IgnoredAny>(&self.env, &self.account, renew).await;
            }
        }
    }
}

impl Settler {
    /// Registers the settlement of an admitted request and the renewal of its hold.
    pub(super) fn register(
        ctx: &Rc<Background>,
        link: AccountLink,
        base: Generation,
        ttl_ms: u64,
    ) -> Settler {
        let (tx, rx) = futures_channel::oneshot::channel::<Generation>();
        let loss = Rc::new(Cell::new(0u64));
        let incurred = Rc::new(Cell::new(0u64));
        let owed = incurred.clone();
        let cancelled = Generation {
            cancelled: true,
            usage_source: Some("estimate".into()),
            ..base.clone()
        };
        let settle_link = link.clone();
        let late = link
            .trace
            .as_ref()
            .map(|_| Rc::new(RefCell::new(Late::default())));
        let learned = late.clone();
        ctx.wait_until(async move {
            let g = settle_link.await_settlement(rx, cancelled, ttl_ms).await;
            let g = with_incurred(g, owed.get());
            let (env, account, caller) = (
                settle_link.env.clone(),
                settle_link.account.clone(),
                settle_link.caller.clone(),
            );
            let trace = settle_link.trace.clone();
            settle_link.send(g.clone()).await;
            // After the settlement, in the same background task: never before a reply.
            if let (Some(facts), Some(late)) = (trace, learned) {
                let facts = late.take().into_facts(&facts);
                crate::edge::traces::export(&env, &account, &caller, &g, &facts).await;
            }
        });
        Settler {
            env: link.env,
            ctx: ctx.clone(),
            gen_id: link.gen_id,
            base,
            slot: Rc::new(RefCell::new(Some(tx))),
            loss,
            incurred,
            client: None,
            tenant: crate::routing::health::account_tag(&link.account),
            late,
        }
    }

    /// Notes for the trace span that the plan's endpoint `index` is being tried (the
    /// endpoints before it failed), and whether the request asked the response cache.
    pub(super) fn note_attempt(&self, index: usize, cache_asked: bool) {
        if let Some(l) = &self.late {
            let mut l = l.borrow_mut();
            l.fallback_attempts = Some(u32::try_from(index).unwrap_or(u32::MAX));
            l.cache_miss = cache_asked;
        }
    }

    /// Keeps the reply's text for the trace span (bounded; the destination's privacy
    /// mode decides whether it is sent).
    pub(super) fn note_output(&self, reply: &crate::api::ChatCompletion) {
        if let Some(l) = &self.late {
            l.borrow_mut().output_text = crate::accounts::traces::completion_text(reply);
        }
    }

    /// Whether the request's span is exported (its reply worth recording for it).
    pub(super) fn traced(&self) -> bool {
        self.late.is_some()
    }

    /// The settler of a request whose client disconnecting `client` signals.
    pub(super) fn with_client(self, client: worker::web_sys::AbortSignal) -> Settler {
        Settler {
            client: Some(client),
            ..self
        }
    }

    /// Settles with `g` (the first call only: a request is settled exactly once).
    pub(super) fn settle(&self, mut g: Generation) {
        let loss = self.loss.get();
        if loss > 0 {
            g.operator_loss_picos = g.operator_loss_picos.saturating_add(loss);
            g.operator_loss_reason
                .get_or_insert_with(|| "an invalid reply before the fallback that served".into());
        }
        if let Some(tx) = self.slot.borrow_mut().take() {
            let _ = tx.send(g);
        }
    }

    /// Records what the request incurred that is charged whatever becomes of it.
    pub(super) fn incur(&self, picos: u64) {
        self.incurred.set(self.incurred.get().saturating_add(picos));
    }

    /// Records what an attempt cost upstream without being charged.
    pub(super) fn lose(&self, picos: u64) {
        self.loss.set(self.loss.get().saturating_add(picos));
    }

    /// Concludes an attempt that answered, whatever kind of reply it was: its
    /// endpoint's health (`health`: the endpoint's key and whether it went well; none
    /// when the attempt says nothing of the endpoint), its record with zero-completion
    /// insurance applied, and the request's settlement.
    pub(super) fn conclude(
        &self,
        served: &Served,
        pricing: &Pricing,
        health: Option<(String, bool)>,
    ) {
        if let Some((key, ok)) = health {
            let outcome = Outcome {
                ok,
                latency_ms: served.latency_ms,
                tokens: served.usage.completion_tokens,
                generation_ms: served.generation_ms,
                at_ms: config::now_ms() as u64,
                tool_ok: served.tool_calls.ok,
                tool_failed: served.tool_calls.failed,
            };
            health::report(&self.env, &self.ctx, key, self.tenant, outcome);
        }
        self.settle(served.record(&self.base, pricing));
    }
}

/// `g` charged at least `incurred` (a request that failed, was cancelled or is insured
/// after the OCR read its PDFs still pays for the pages): no longer the operator's loss.
fn with_incurred(mut g: Generation, incurred: u64) -> Generation {
    let topped = incurred.saturating_sub(g.cost_picos);
    g.cost_picos = g.cost_picos.saturating_add(topped);
    g.operator_loss_picos = g.operator_loss_picos.saturating_sub(topped);
    g
}
