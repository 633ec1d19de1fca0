//! Mid-stream failover with continuation, the edge's part: when a stream's endpoint
//! fails before its content ends (`provider.stream_failover: "continue"`), the next
//! planned endpoint is sent the conversation with what the client has had as the
//! assistant's turn ([`crate::providers::continuation`]), within what the request
//! holds, and its stream is read on into the same reply.

use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;

use worker::Env;

use super::admit::upstream_quota;
use super::attempt::{target_of, Run};
use super::settler::Settler;
use crate::accounts::ledger::worst_case;
use crate::api::{ChatRequest, GenerationMeta};
use crate::catalog::Catalog;
use crate::edge::upstream::{self, Resume, Resumed};
use crate::edge::{config, health, media};
use crate::error::Error;
use crate::providers::{self, continuation};
use crate::routing::health::Outcome;
use crate::routing::Choice;

/// The endpoint serving a stream now, as its settlement and health report need it:
/// changed by each failover.
#[derive(Debug, Clone)]
pub(super) struct Serving {
    pub(super) key: String,
    pub(super) latency_ms: u64,
    pub(super) first_byte: f64,
}

pub(super) type Shared = Rc<RefCell<Serving>>;

/// A planned endpoint by where it is in the catalogue (the stream outlives the
/// request's borrow of it): its model's, its own and its provider's index.
struct Planned {
    id: String,
    at: (usize, usize, usize),
}

impl Planned {
    /// Where `c` is in `cat`; `None` for what is not in it.
    fn of(cat: &Catalog, c: &Choice<'_>) -> Option<Planned> {
        // A stream goes on through shared endpoints only: an account's own key is
        // opened for the attempt it was planned for, not mid-stream.
        if c.byok.is_some() {
            return None;
        }
        let m = cat.models.iter().position(|m| std::ptr::eq(m, c.model))?;
        let model = cat.models.get(m)?;
        let e = model
            .endpoints
            .iter()
            .position(|e| std::ptr::eq(e, c.endpoint))?;
        let p = cat
            .providers
            .iter()
            .position(|p| std::ptr::eq(p, c.provider))?;
        Some(Planned {
            id: c.id.clone(),
            at: (m, e, p),
        })
    }

    fn choice<'c>(&self, cat: &'c Catalog) -> Option<Choice<'c>> {
        let (m, e, p) = self.at;
        let model = cat.models.get(m)?;
        Some(Choice {
            id: self.id.clone(),
            model,
            endpoint: model.endpoints.get(e)?,
            provider: cat.providers.get(p)?,
            byok: None,
        })
    }
}

/// Where a stream goes on after a failure: the endpoints planned after the one that
/// serves it, tried in turn.
pub(super) struct Next {
    env: Env,
    settler: Settler,
    chat: ChatRequest,
    catalog: Rc<Catalog>,
    /// Still to try, the next last.
    rest: Vec<Planned>,
    /// The generation's ID and creation time (the same on every attempt).
    id: String,
    created: u64,
    /// What the request holds: every attempt together must fit in it.
    hold: u64,
    serving: Shared,
}

impl Next {
    pub(super) fn new(
        run: &Run<'_>,
        chat: &ChatRequest,
        rest: &[Choice<'_>],
        meta: &GenerationMeta,
        serving: Shared,
    ) -> Next {
        Next {
            env: run.env.clone(),
            settler: run.settler.clone(),
            chat: chat.clone(),
            rest: rest
                .iter()
                .rev()
                .filter_map(|c| Planned::of(run.catalog, c))
                .collect(),
            catalog: run.catalog.clone(),
            id: meta.id.clone(),
            created: meta.created,
            hold: run.hold,
            serving,
        }
    }

    /// Marks an endpoint whose attempt failed down.
    fn report_down(&self, key: String, started: f64) {
        let now = config::now_ms();
        let outcome = Outcome {
            ok: false,
            latency_ms: (now - started).max(0.0) as u64,
            at_ms: now as u64,
            ..Default::default()
        };
        let s = &self.settler;
        health::report(&self.env, &s.ctx, key, s.tenant, outcome);
    }

    /// The next endpoint that answers, in plan order; none when the plan is spent or
    /// the hold cannot cover the next attempt's worst case.
    async fn resume(&mut self, from: Resume) -> Option<Resumed> {
        let failed = self.serving.borrow().clone();
        self.report_down(failed.key, failed.first_byte);
        let cat = self.catalog.clone();
        while let Some(planned) = self.rest.pop() {
            let Some(choice) = planned.choice(&cat) else {
                continue;
            };
            let started = config::now_ms();
            match self.try_one(&choice, &from, started).await {
                Ok(next) => return next,
                Err(e) if e.is_retryable() && !matches!(e, Error::NoProvider(_)) => {
                    self.report_down(choice.key(), started);
                }
                Err(_) => {}
            }
        }
        None
    }

    /// One endpoint's continuation, sent; `Ok(None)`: it would not fit in the hold.
    async fn try_one(
        &self,
        choice: &Choice<'_>,
        from: &Resume,
        started: f64,
    ) -> Result<Option<Resumed>, Error> {
        let (model, endpoint, provider) = (choice.model, choice.endpoint, choice.provider);
        let family = providers::family(provider.api);
        if family.in_isolate() {
            return Err(Error::NoProvider("not an upstream".into()));
        }
        let prefill = family.continues_assistant_turn();
        let chat =
            continuation::continuation_request(&self.chat, &from.text, prefill, from.generated);
        let asked = family.output_tokens(&chat, model, endpoint);
        let worst = worst_case(&chat, model, endpoint, asked).reserve;
        if from.spent_picos.saturating_add(worst) > self.hold {
            return Ok(None);
        }
        let cfg = config::settings(&self.env);
        let target = target_of(&self.env, choice);
        let prompt_estimate = providers::estimate_prompt_tokens(&chat);
        upstream_quota(&self.env, choice, prompt_estimate).await?;
        let inlined = media::inline_for(&cfg, &self.env, &target, &chat).await?;
        let up = providers::build_request(&target, inlined.as_ref().map_or(&chat, |i| &i.chat))?;
        let up: upstream::Outgoing = match &inlined {
            Some(i) => i.outgoing(up)?,
            None => up.into(),
        };
        let meta = GenerationMeta {
            id: self.id.clone(),
            created: self.created,
            model: choice.id.clone(),
            provider: provider.name.clone(),
        };
        let no_stream = || Error::NoProvider("no stream translator".into());
        let translator = family.translator(&target, &meta).ok_or_else(no_stream)?;
        let slug = provider.slug.clone();
        let timeout = cfg.upstream_timeout_ms;
        let (mut resp, inflight) = upstream::send(&up, &slug, timeout).await?;
        if !(200..300).contains(&resp.status_code()) {
            return Err(upstream::failure(&mut resp, &slug, timeout).await);
        }
        let first_byte = config::now_ms();
        *self.serving.borrow_mut() = Serving {
            key: choice.key(),
            latency_ms: (first_byte - started).max(0.0) as u64,
            first_byte,
        };
        Ok(Some(Resumed {
            slug,
            resp,
            inflight,
            translator,
            meta,
            pricing: endpoint.pricing.clone(),
            prompt_estimate,
        }))
    }
}

impl upstream::Failover for Next {
    fn next(&mut self, from: Resume) -> Pin<Box<dyn Future<Output = Option<Resumed>> + '_>> {
        Box::pin(self.resume(from))
    }
}
