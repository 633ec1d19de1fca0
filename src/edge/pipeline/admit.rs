//! Admission: the request's plans under either privacy setting, admitted in the
//! isolate against the key's lease or by the account's object, and the upstream's own
//! quotas counted before an endpoint is tried.

use std::rc::Rc;

use worker::Env;

use crate::edge::background::Background;

use super::{Parsed, Who};
use crate::accounts::lease::Ticket;
use crate::accounts::ledger::Ask;
use crate::edge::account::{self, Admission, Op, PlanFacts};
use crate::edge::account_api::free_windows;
use crate::edge::{admission, counters};
use crate::error::Error;
use crate::limits::Window;
use crate::routing::{self, Choice};
use crate::settings::Settings;

/// The request's endpoints in order under each privacy setting, each ordered when it
/// is first needed, from candidates gathered once, with the facts admission reads
/// (worked out once per setting: admission and the attempts use the same hold).
pub(super) struct Plans<'a, 'h> {
    pub(super) candidates: routing::Candidates<'a, 'h>,
    private: Option<Slot<'a>>,
    training: Option<Slot<'a>>,
    /// The account's own provider keys, whether the request allows them, and the fee.
    byok: (Vec<routing::byok::ByokRoute>, bool, u64),
}

/// One privacy setting's plan and, once asked for, its facts.
struct Slot<'a> {
    plan: Result<Vec<Choice<'a>>, Error>,
    facts: Option<PlanFacts>,
}

impl<'a, 'h> Plans<'a, 'h> {
    pub(super) fn new(candidates: routing::Candidates<'a, 'h>) -> Self {
        Plans {
            candidates,
            private: None,
            training: None,
            byok: (Vec::new(), true, 0),
        }
    }

    /// These plans with the account's own provider keys pinned in
    /// ([`routing::byok::apply`]), unless the request says `provider.allow_byok: false`.
    pub(super) fn with_byok(
        mut self,
        env: &Env,
        chat: &crate::api::ChatRequest,
        keys: &crate::edge::byok::Keys,
    ) -> Self {
        let allow = (chat.provider.as_deref())
            .and_then(|p| p.allow_byok)
            .unwrap_or(true);
        let fee = crate::edge::byok::fee_percent(env);
        self.byok = (crate::edge::byok::routes(&keys.records), allow, fee);
        self
    }

    fn slot(&mut self, allow_training: bool) -> &mut Slot<'a> {
        let c = &self.candidates;
        let slot = if allow_training {
            &mut self.training
        } else {
            &mut self.private
        };
        let (keys, allow, fee) = &self.byok;
        slot.get_or_insert_with(|| {
            let plan = c.plan(allow_training, &mut || worker::js_sys::Math::random());
            Slot {
                plan: plan.map(|p| routing::byok::apply(p, keys, *allow, *fee)),
                facts: None,
            }
        })
    }

    /// The plan for an account that allows providers that train on prompts, or not.
    fn get(&mut self, allow_training: bool) -> &Result<Vec<Choice<'a>>, Error> {
        &self.slot(allow_training).plan
    }

    /// The plan admission settled on, and what the request holds under it: its worst
    /// case over every endpoint it may fall back to (0 when there is no plan).
    pub(super) fn take(
        mut self,
        allow_training: bool,
        parsed: &Parsed,
    ) -> (Result<Vec<Choice<'a>>, Error>, u64) {
        let hold = self
            .facts(allow_training, parsed)
            .map_or(0, |f| f.ask.reserve);
        let slot = if allow_training {
            self.training
        } else {
            self.private
        };
        match slot {
            Some(s) => (s.plan, hold),
            None => (Err(Error::Internal("no plan".into())), 0),
        }
    }

    /// What the account's object needs to admit the request under `allow_training`:
    /// whether it is free, and its worst case over every endpoint it may fall back to.
    fn facts(&mut self, allow_training: bool, parsed: &Parsed) -> Option<PlanFacts> {
        let slot = self.slot(allow_training);
        if slot.facts.is_none() {
            let plan = slot.plan.as_ref().ok()?;
            slot.facts = Some(PlanFacts {
                free: plan.first().is_some_and(Choice::is_free),
                ask: Ask::max(plan.iter().map(|c| parsed.worst_case(c))),
            });
        }
        slot.facts
    }
}

/// How a request was admitted: the object's answer (the privacy setting, a refusal, the
/// key's limit), or the isolate's, with the lease's ticket.
pub(super) struct Admitted {
    pub(super) answer: account::Admitted,
    pub(super) ticket: Option<Ticket>,
}

/// Admits the request: in the isolate when the key's lease is fresh and covers the
/// worst case of a paid request; otherwise by the account's object (always with
/// a per-key rate).
pub(super) async fn admit(
    env: &Env,
    ctx: &Rc<Background>,
    cfg: &Settings,
    who: &Who,
    parsed: &Parsed,
    plans: &mut Plans<'_, '_>,
) -> Result<Admitted, Error> {
    let leasing = cfg.paid_requests_per_second == 0;
    // The privacy setting the key's lease was granted under, if it holds one.
    let known = (leasing && who.session.is_none())
        .then(|| admission::usable(env, &who.caller))
        .flatten();
    // A request no endpoint could serve even with training allowed is refused before
    // admission; one only a private account cannot have is refused after it.
    if known != Some(false) || plans.get(false).is_err() {
        if let Err(e) = plans.get(true) {
            return Err(e.clone());
        }
    }
    let local = known.and_then(|allow_training| {
        let f = plans.facts(allow_training, parsed)?;
        let ticket = (!f.free)
            .then(|| admission::admit(env, &who.caller, f.ask.reserve))
            .flatten()?;
        Some(Admitted {
            answer: account::Admitted {
                allow_training,
                ..account::Admitted::default()
            }
            .with_left(admission::left(&who.caller, f.ask.reserve)),
            ticket: Some(ticket),
        })
    });
    let admitted = match local {
        Some(a) => a,
        None => Admitted {
            answer: admit_exactly(env, ctx, cfg, who, parsed, plans, leasing).await?,
            ticket: None,
        },
    };
    if leasing {
        // The key's lease is renewed when due: kept fresh and full while it is used, or,
        // when it could not serve (stale, too low), renewed or found revoked so that
        // the next requests use it again.
        if let Some(renewal) = admission::renewal_if_due(env, &who.caller) {
            ctx.wait_until(renewal);
        }
    }
    Ok(admitted)
}

/// Admission by the account's object, which alone knows the account's privacy setting
/// for sure: it is given the request's facts under both.
async fn admit_exactly(
    env: &Env,
    ctx: &Rc<Background>,
    cfg: &Settings,
    who: &Who,
    parsed: &Parsed,
    plans: &mut Plans<'_, '_>,
    leasing: bool,
) -> Result<account::Admitted, Error> {
    let rps = cfg.paid_requests_per_second;
    let admit = Op::Admit(Admission {
        caller: who.caller.clone(),
        gen_id: who.gen_id.clone(),
        free_windows: free_windows(env),
        rps: (rps > 0).then(|| Window::requests(rps, 1)),
        if_training: plans.facts(true, parsed).unwrap_or_default(),
        if_private: plans.facts(false, parsed).unwrap_or_default(),
        lease: leasing && admission::wants_lease(&who.caller),
        session: who.session.clone(),
    });
    let (account, caller) = (&who.account, &who.caller);
    let admitted: account::Admitted = match account::call(env, account, admit.clone()).await {
        // This isolate may hold the credit the object refused: in the key's lease
        // (stale, or too small for this request), or in finished requests' holds whose
        // settlements wait in its batch. Those are returned and sent, then the object
        // is asked again.
        Err(Error::PaymentRequired(_) | Error::Forbidden(_))
            if admission::make_room(env, account, caller).await =>
        {
            account::call(env, account, admit).await?
        }
        answer => answer?,
    };
    if let Some(g) = admitted.lease.clone() {
        let granted = admission::granted(env.clone(), account.clone(), caller.clone(), g);
        ctx.wait_until(granted);
    }
    Ok(admitted)
}

/// Counts the request against the upstream's own declared limits (free tiers);
/// `Err` with the wait when one is spent.
pub(super) async fn upstream_quota(
    env: &Env,
    choice: &Choice<'_>,
    prompt_tokens: u64,
) -> Result<(), Error> {
    let Some(l) = choice.endpoint.limits.as_ref() else {
        return Ok(());
    };
    let mut windows = Vec::new();
    if let Some(n) = l.requests_per_minute {
        windows.push(Window::requests(n, 60));
    }
    if let Some(n) = l.requests_per_day {
        windows.push(Window::requests(n, 86_400));
    }
    if let Some(n) = l.tokens_per_minute {
        windows.push(Window {
            limit: n,
            period_secs: 60,
            cost: prompt_tokens,
            name: "tok".into(),
        });
    }
    let d = counters::hit(env, &format!("quota:{}", choice.key()), windows).await?;
    if d.allowed {
        return Ok(());
    }
    Err(Error::RateLimited {
        message: format!(
            "{} is temporarily rate-limited upstream: its quota is spent. Retry in {} s.",
            choice.id, d.retry_after
        ),
        retry_after_secs: Some(d.retry_after),
        provider: None,
        raw: None,
    })
}
