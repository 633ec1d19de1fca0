//! The one pipeline behind every model-calling surface (chat completions, completions,
//! Responses, Anthropic Messages): authenticate, validate, plan, admit (one Durable
//! Object round trip: key, limits, credit reservation), try each planned endpoint until
//! one answers, and settle the cost and usage record once the reply is done. Surfaces
//! differ only in how the request is read and the reply and stream are written.

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use worker::{Context, Env, Request, Response};

use super::account::{self, Admission, Op, PlanFacts, SettleItem};
use super::account_api::{caller_of, free_windows};
use super::budget::Hold;
use super::{
    admission, catalog, config, counters, health, http, session_budget, sessions, upstream,
};
use crate::accounts::lease::Ticket;
use crate::accounts::ledger::{worst_case, worst_case_embeddings, Ask};
use crate::accounts::records::Generation;
use crate::accounts::served::{self, Served};
use crate::accounts::session::SessionView;
use crate::api::embeddings::EmbeddingsRequest;
use crate::api::session::SessionAsk;
use crate::api::surface::{self, Surface};
use crate::api::ChatRequest;
use crate::api::{GenerationMeta, Usage};
use crate::catalog::Pricing;
use crate::error::{Error, Failures};
use crate::limits::{Decision, Window};
use crate::providers::stream::{ChatStream, Thinking, Translator};
use crate::providers::{self, echo, Target};
use crate::routing::health::Outcome;
use crate::routing::{self, Choice, RouteContext};
use crate::settings::Settings;
use serde::de::IgnoredAny;

/// Settles one request with its account, exactly once. The settlement is registered
/// with the runtime (`wait_until`) right after admission, while the request is alive,
/// so that it happens even when the client leaves first: the first [`Settler::settle`]
/// sends its record; if every holder of the settler is dropped before that (the client
/// disconnected during a non-streamed call, which aborts the upstream), the request is
/// settled as cancelled with nothing delivered, so it costs the caller nothing.
#[derive(Clone)]
struct Settler {
    env: Env,
    ctx: Rc<Context>,
    gen_id: String,
    base: Generation,
    /// The sender of the one settlement; taken by the first settle.
    slot: Rc<RefCell<Option<futures_channel::oneshot::Sender<Generation>>>>,
    /// Paid upstream and not charged: garbage replies before a fallback.
    loss: Rc<Cell<u64>>,
    /// Aborts when the client disconnects (`request.signal`).
    client: Option<worker::web_sys::AbortSignal>,
    /// The account's pseudonym in health reports.
    tenant: u32,
}

/// What the settlement task and the hold's renewal need: none of it keeps the
/// settlement's sender alive.
#[derive(Clone)]
struct AccountLink {
    env: Env,
    account: String,
    caller: String,
    gen_id: String,
    /// The lease the request was admitted against; none: it holds a reservation.
    ticket: Option<Ticket>,
    /// The session it is charged to.
    session: Option<String>,
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
    fn register(ctx: &Rc<Context>, link: AccountLink, base: Generation, ttl_ms: u64) -> Settler {
        let (tx, rx) = futures_channel::oneshot::channel::<Generation>();
        let loss = Rc::new(Cell::new(0u64));
        let cancelled = Generation {
            cancelled: true,
            usage_source: Some("estimate".into()),
            ..base.clone()
        };
        let settle_link = link.clone();
        ctx.wait_until(async move {
            let g = settle_link.await_settlement(rx, cancelled, ttl_ms).await;
            settle_link.send(g).await;
        });
        Settler {
            env: link.env,
            ctx: ctx.clone(),
            gen_id: link.gen_id,
            base,
            slot: Rc::new(RefCell::new(Some(tx))),
            loss,
            client: None,
            tenant: crate::routing::health::account_tag(&link.account),
        }
    }

    /// Settles with `g` (the first call only: a request is settled exactly once).
    fn settle(&self, mut g: Generation) {
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

    /// Records what an attempt cost upstream without being charged.
    fn lose(&self, picos: u64) {
        self.loss.set(self.loss.get().saturating_add(picos));
    }

    /// Concludes an attempt that answered, whatever kind of reply it was: its
    /// endpoint's health (`health`: the endpoint's key and whether it went well; none
    /// when the attempt says nothing of the endpoint), its record with zero-completion
    /// insurance applied, and the request's settlement.
    fn conclude(&self, served: &Served, pricing: &Pricing, health: Option<(String, bool)>) {
        if let Some((key, ok)) = health {
            let outcome = Outcome {
                ok,
                latency_ms: served.latency_ms,
                tokens: served.usage.completion_tokens,
                generation_ms: served.generation_ms,
                at_ms: config::now_ms() as u64,
            };
            health::report(&self.env, &self.ctx, key, self.tenant, outcome);
        }
        self.settle(served.record(&self.base, pricing));
    }
}

/// Client-supplied header values kept in usage records are cut to this many bytes.
const MAX_HEADER_BYTES: usize = 512;

/// Headers of the caller that an Anthropic endpoint gets as they are.
const ANTHROPIC_HEADERS: [&str; 2] = ["anthropic-version", "anthropic-beta"];

/// What a model call asks for: a generation through one of the chat-like surfaces, or
/// embeddings. Both take the same steps; only parsing, the worst case and the upstream
/// exchange differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Job {
    Generate(Surface),
    Embeddings,
}

impl From<Surface> for Job {
    fn from(s: Surface) -> Self {
        Job::Generate(s)
    }
}

/// A parsed request of either kind.
enum Parsed {
    Generate(Incoming),
    Embeddings {
        request: EmbeddingsRequest,
        /// What routing reads (models, preferences, the longest input).
        view: ChatRequest,
    },
}

impl Parsed {
    fn routing_view(&self) -> &ChatRequest {
        match self {
            Parsed::Generate(i) => &i.request.chat,
            Parsed::Embeddings { view, .. } => view,
        }
    }

    fn worst_case(&self, c: &Choice) -> Ask {
        match self {
            Parsed::Generate(i) => {
                let chat = &i.request.chat;
                let asked =
                    providers::family(c.provider.api).output_tokens(chat, c.model, c.endpoint);
                worst_case(chat, c.model, c.endpoint, asked)
            }
            Parsed::Embeddings { request, .. } => {
                worst_case_embeddings(&request.input.bytes(), c.endpoint)
            }
        }
    }

    fn api_type(&self) -> &'static str {
        match self {
            Parsed::Generate(i) => i.request.surface.api_type(),
            Parsed::Embeddings { .. } => "embeddings",
        }
    }

    /// The request's session (a generation's; embeddings have none).
    fn session(&self, req: &Request) -> Result<Option<SessionAsk>, Error> {
        match self {
            Parsed::Generate(i) => session_budget::read(req, &i.request),
            Parsed::Embeddings { .. } => Ok(None),
        }
    }

    fn surface(&self) -> Surface {
        match self {
            Parsed::Generate(i) => i.request.surface,
            Parsed::Embeddings { .. } => Surface::Chat,
        }
    }
}

pub async fn handle(
    mut req: Request,
    env: &Env,
    ctx: &Rc<Context>,
    gen_id: &str,
    job: Job,
) -> Result<Response, Error> {
    let (account, caller) = caller_of(&mut req, env).await?;
    let cfg = config::settings(env);
    let body = http::read_body(&mut req, cfg.max_body_bytes).await?;
    let parsed = parse(&req, &body, job, &cfg, &account)?;
    let chat = parsed.routing_view();
    let cat = catalog::load(env).await?;
    let health = health::snapshot(env, ctx, &routing::health::keys_for(&cat, chat)).await;
    let now_ms = config::now_ms() as u64;
    let session = session_key(chat, &account);
    let sticky = session.as_deref().and_then(|k| sessions::last(k, now_ms));
    let route = RouteContext {
        // Both settings are kept: the account's may be known only after admission.
        allow_training: false,
        health: &health,
        now_ms,
        embeddings: job == Job::Embeddings,
        sticky: sticky.as_deref(),
    };
    let mut plans = Plans::new(routing::Candidates::gather(&cat, chat, &route)?);
    let who = Who {
        account,
        caller,
        gen_id: gen_id.to_string(),
        session: parsed.session(&req)?,
    };
    let admitted = admit(env, ctx, &cfg, &who, &parsed, &mut plans).await?;
    if let Some(refused) = refusal(&admitted.answer, parsed.surface()) {
        return Ok(refused);
    }
    let session_view = admitted.answer.session.as_deref().cloned();
    let (limit, allow_training) = (admitted.answer.limit, admitted.answer.allow_training);
    let leased = admitted.ticket.is_some();
    let base = record_of(&req, &who.gen_id, &parsed, now_ms);
    let link = AccountLink {
        env: env.clone(),
        account: who.account,
        caller: who.caller,
        gen_id: who.gen_id,
        ticket: admitted.ticket,
        session: who.session.map(|s| s.id),
    };
    let settler = Settler {
        client: Some(req.inner().signal()),
        ..Settler::register(ctx, link, base, cfg.reservation_ttl_ms)
    };
    let run = Run {
        env,
        cfg: &cfg,
        parsed: &parsed,
        settler: &settler,
        health: &health,
        session: session_view.as_ref(),
    };
    let prompt_tokens = plans.candidates.prompt_tokens;
    let result = match plans.take(allow_training) {
        Ok(plan) => serve(&run, &plan, prompt_tokens, session.as_deref()).await,
        Err(e) => Err((e, None)),
    };
    let resp = match result {
        Ok(resp) => resp,
        Err(unserved) => return failed(&settler, unserved, parsed.surface()),
    };
    stamp(&resp, &settler.gen_id, leased, session_view.as_ref());
    Ok(match limit {
        Some(d) => with_limit(resp, &d),
        None => resp,
    })
}

/// The request's body read for its surface (or as embeddings), with the end user's ID
/// replaced by a stable keyed hash of it, and the media it names checked.
fn parse(
    req: &Request,
    body: &[u8],
    job: Job,
    cfg: &Settings,
    account: &str,
) -> Result<Parsed, Error> {
    let mut parsed = match job {
        Job::Generate(surface) => Parsed::Generate(Incoming {
            client_headers: ANTHROPIC_HEADERS
                .iter()
                .filter_map(|h| {
                    let v = req.headers().get(h).ok().flatten()?;
                    Some((
                        h.to_string(),
                        crate::error::truncate(&v, MAX_HEADER_BYTES).to_string(),
                    ))
                })
                .collect(),
            ..Incoming::from(surface.parse(body)?)
        }),
        Job::Embeddings => {
            let request = EmbeddingsRequest::parse(body)?;
            let view = request.routing_view();
            Parsed::Embeddings { request, view }
        }
    };
    // The end user's ID goes upstream as a stable keyed hash, never as sent.
    let secret = super::account_api::key_secret(cfg)?;
    let pseudonym = |u: &str| crate::accounts::keys::user_pseudonym(secret, account, u);
    match &mut parsed {
        Parsed::Generate(i) => i.request.map_user(pseudonym),
        Parsed::Embeddings { request, .. } => {
            if let Some(u) = request.user.as_mut() {
                *u = pseudonym(u);
            }
        }
    }
    // A Files API URI is read with the operator's Google key: another tenant's upload,
    // or the operator's own files, unless the operator says its tenants may use them.
    if !cfg.media_allow_gemini_files {
        if let Some(field) = providers::media::gemini_file_field(parsed.routing_view()) {
            return Err(Error::bad_request(format!(
                "{field}: Gemini Files API URIs are not accepted by this gateway"
            )));
        }
    }
    Ok(parsed)
}

/// Settles a request no endpoint served (its reservation released, its record kept)
/// and answers it: the error reported, with every failed endpoint's error in
/// `metadata.provider_errors` where there were several (an internal error goes back
/// for the entry point to log and name).
fn failed(
    settler: &Settler,
    (e, provider_errors): Unserved,
    surface: Surface,
) -> Result<Response, Error> {
    settler.settle(Generation {
        finish_reason: Some("error".into()),
        native_finish_reason: Some(e.public_message()),
        ..settler.base.clone()
    });
    match provider_errors {
        Some(list) if !matches!(e, Error::Internal(_)) => {
            let body = surface.error_body_with(&e, list);
            Ok(http::error_response_with(&e, &body))
        }
        _ => Err(e),
    }
}

/// The sticky-session key of the request: the account's session with its first model.
fn session_key(chat: &ChatRequest, account: &str) -> Option<String> {
    let session = routing::session_of(chat)?;
    let model = chat.model_candidates().into_iter().next();
    Some(sessions::key(account, &model.unwrap_or_default(), session))
}

/// The request's record before any endpoint serves it.
fn record_of(req: &Request, gen_id: &str, parsed: &Parsed, now_ms: u64) -> Generation {
    let header = |name: &str| {
        req.headers()
            .get(name)
            .ok()
            .flatten()
            .map(|v| crate::error::truncate(&v, MAX_HEADER_BYTES).to_string())
    };
    let chat = parsed.routing_view();
    Generation {
        id: gen_id.to_string(),
        model: chat.model_candidates().first().cloned().unwrap_or_default(),
        streamed: chat.is_stream(),
        http_referer: header("HTTP-Referer"),
        app_title: header("X-Title"),
        user_agent: header("User-Agent"),
        created_ms: now_ms,
        api_type: Some(parsed.api_type().to_string()),
        ..Default::default()
    }
}

/// What every served reply says: its generation ID, how it was admitted (for callers
/// measuring the gateway's overhead) and where its session stands.
fn stamp(resp: &Response, gen_id: &str, leased: bool, session: Option<&SessionView>) {
    http::set(resp.headers(), "X-Generation-Id", gen_id);
    let timing = if leased { "lease" } else { "exact" };
    http::set(
        resp.headers(),
        "Server-Timing",
        &format!("admission;desc={timing}"),
    );
    if let Some(v) = session {
        session_budget::headers(resp.headers(), v);
    }
}

/// The answer to a request the account's object refused: a free-model budget spent
/// (429), or the request's session past a limit (403).
fn refusal(answer: &account::Admitted, surface: Surface) -> Option<Response> {
    if let Some(e) = &answer.session_refused {
        return Some(http::error_response_in(e, surface));
    }
    Some(rate_refusal(answer.refused.as_ref()?, surface))
}

/// The 429 of a free-model budget the account's object found spent.
fn rate_refusal(d: &Decision, surface: Surface) -> Response {
    let per = if d.period_secs == 60 { "min" } else { "day" };
    let e = Error::RateLimited {
        message: format!(
            "Rate limit exceeded: free-models-per-{per}. Retry in {} s.",
            d.retry_after
        ),
        retry_after_secs: Some(d.retry_after),
        provider: None,
        raw: None,
    };
    with_limit(http::error_response_in(&e, surface), d)
}

/// Who a request is from, and its generation ID.
struct Who {
    account: String,
    caller: String,
    gen_id: String,
    /// The session it names: admitted by the account's object (never from a lease),
    /// against the session's limits.
    session: Option<SessionAsk>,
}

/// The request's endpoints in order under each privacy setting, each ordered when it
/// is first needed, from candidates gathered once.
struct Plans<'a, 'h> {
    candidates: routing::Candidates<'a, 'h>,
    private: Option<Result<Vec<Choice<'a>>, Error>>,
    training: Option<Result<Vec<Choice<'a>>, Error>>,
}

impl<'a, 'h> Plans<'a, 'h> {
    fn new(candidates: routing::Candidates<'a, 'h>) -> Self {
        Plans {
            candidates,
            private: None,
            training: None,
        }
    }

    /// The plan for an account that allows providers that train on prompts, or not.
    fn get(&mut self, allow_training: bool) -> &Result<Vec<Choice<'a>>, Error> {
        let c = &self.candidates;
        let slot = if allow_training {
            &mut self.training
        } else {
            &mut self.private
        };
        slot.get_or_insert_with(|| c.plan(allow_training, &mut || worker::js_sys::Math::random()))
    }

    fn take(mut self, allow_training: bool) -> Result<Vec<Choice<'a>>, Error> {
        self.get(allow_training);
        let slot = if allow_training {
            self.training
        } else {
            self.private
        };
        slot.unwrap_or_else(|| Err(Error::Internal("no plan".into())))
    }

    /// What the account's object needs to admit the request under `allow_training`:
    /// whether it is free, and its worst case over every endpoint it may fall back to.
    fn facts(&mut self, allow_training: bool, parsed: &Parsed) -> Option<PlanFacts> {
        let plan = self.get(allow_training).as_ref().ok()?;
        Some(PlanFacts {
            free: plan.first().is_some_and(Choice::is_free),
            ask: Ask::max(plan.iter().map(|c| parsed.worst_case(c))),
        })
    }
}

/// How a request was admitted: the object's answer (the privacy setting, a refusal, the
/// key's limit), or the isolate's, with the lease's ticket.
struct Admitted {
    answer: account::Admitted,
    ticket: Option<Ticket>,
}

/// Admits the request: in the isolate when the key's lease is fresh and covers the
/// worst case of a paid request; otherwise by the account's object (always with
/// a per-key rate).
async fn admit(
    env: &Env,
    ctx: &Rc<Context>,
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
            },
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
    ctx: &Rc<Context>,
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

/// `POST /messages/count_tokens`: an estimate of the prompt's tokens, for a live key.
pub async fn count_tokens(mut req: Request, env: &Env) -> Result<Response, Error> {
    let (account_id, caller) = caller_of(&mut req, env).await?;
    super::account_api::live_key(&mut req, env, &account_id, &caller).await?;
    let body = http::read_body(&mut req, config::settings(env).max_body_bytes).await?;
    http::json(&crate::api::messages::count_tokens(&body)?, 200)
}

fn with_limit(resp: Response, d: &Decision) -> Response {
    http::set(resp.headers(), "X-RateLimit-Limit", &d.limit.to_string());
    http::set(
        resp.headers(),
        "X-RateLimit-Remaining",
        &d.remaining.to_string(),
    );
    // Milliseconds since the epoch, as OpenRouter sends it.
    http::set(
        resp.headers(),
        "X-RateLimit-Reset",
        &d.reset.saturating_mul(1000).to_string(),
    );
    resp
}

/// Counts the request against the upstream's own declared limits (free tiers);
/// `Err` with the wait when one is spent.
async fn upstream_quota(env: &Env, choice: &Choice<'_>, prompt_tokens: u64) -> Result<(), Error> {
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

/// A parsed request and the caller's headers that go upstream as they are.
struct Incoming {
    request: surface::Incoming,
    client_headers: Vec<(String, String)>,
}

impl From<surface::Incoming> for Incoming {
    fn from(request: surface::Incoming) -> Self {
        Incoming {
            request,
            client_headers: Vec::new(),
        }
    }
}

/// Tries the planned endpoints in turn until one answers; a failure that another
/// endpoint might not have moves on (and marks the endpoint's health).
/// What every attempt of one request shares.
struct Run<'r> {
    env: &'r Env,
    cfg: &'r Settings,
    parsed: &'r Parsed,
    settler: &'r Settler,
    health: &'r std::collections::HashMap<String, routing::health::Summary>,
    /// The request's session as of its admission (`usage.session` in the reply).
    session: Option<&'r SessionView>,
}

impl Run<'_> {
    /// How `choice`'s hidden reasoning is estimated, if its model hides it: at the
    /// endpoint's measured throughput, at most the request's output budget there.
    fn thinking(&self, choice: &Choice<'_>) -> Option<Thinking> {
        let measured = self
            .health
            .get(&choice.key())
            .and_then(|s| s.throughput_30m);
        let budget = self.parsed.worst_case(choice).max_completion;
        Thinking::of(choice.endpoint, measured, budget)
    }
}

async fn serve(
    run: &Run<'_>,
    plan: &[Choice<'_>],
    prompt_tokens: u64,
    session: Option<&str>,
) -> Result<Response, Unserved> {
    let Run {
        env,
        cfg,
        parsed,
        settler,
        ..
    } = *run;
    let mut failures = Failures::default();
    let mut next = Some(0);
    while let Some(i) = next {
        let Some(choice) = plan.get(i) else {
            break;
        };
        next = i.checked_add(1);
        let provider = choice.provider;
        let meta = GenerationMeta {
            id: settler.gen_id.clone(),
            created: settler.base.created_ms / 1000,
            model: choice.id.clone(),
            provider: provider.name.clone(),
        };
        let in_isolate = providers::family(provider.api).in_isolate();
        if let (true, Parsed::Generate(incoming)) = (in_isolate, parsed) {
            let served = serve_echo(cfg, &incoming.request, choice, &meta, settler).await;
            return served.map_err(|e| (e, None));
        }
        if let Err(e) = upstream_quota(env, choice, prompt_tokens).await {
            failures.push(&provider.slug, &choice.id, e);
            continue;
        }
        let target = target_of(env, choice);
        let started = config::now_ms();
        let result = match parsed {
            Parsed::Generate(incoming) => {
                attempt(run, &target, incoming, &meta, choice, started).await
            }
            Parsed::Embeddings { request, .. } => {
                embed(cfg, &target, request, &meta, choice, started, settler).await
            }
        };
        match result {
            Ok(resp) => {
                if let Some(s) = session {
                    sessions::served(s, choice.key(), config::now_ms() as u64);
                }
                return Ok(resp);
            }
            Err(e) => {
                report_failure(run, choice, started, &e);
                next = routing::after_failure(plan, i, e.is_retryable());
                if next.is_none() && !e.is_retryable() {
                    failures.end_with(&provider.slug, &choice.id, e);
                    return Err(failures.into_error());
                }
                failures.push(&provider.slug, &choice.id, e);
            }
        }
    }
    Err(failures.into_error())
}

/// Why no endpoint served a request: the error reported, and every endpoint's when
/// several failed.
type Unserved = (Error, Option<Vec<serde_json::Value>>);

/// Where `choice` is sent, with what key: a provider's `<SLUG>_BASE_URL` and
/// `<SLUG>_API_KEY`, whose names come from the catalogue.
fn target_of<'a>(env: &Env, choice: &Choice<'a>) -> Target<'a> {
    let provider = choice.provider;
    Target {
        provider,
        model: choice.model,
        endpoint: choice.endpoint,
        base_url: config::string(env, &provider.base_url_var())
            .or_else(|| provider.base_url.clone())
            .unwrap_or_default()
            .trim_end_matches('/')
            .to_string(),
        api_key: config::string(env, &provider.key_secret()),
    }
}

/// Marks the endpoint of a failed attempt down, unless the failure says nothing of its
/// health (a missing key, a bad request, this isolate's own budget).
fn report_failure(run: &Run<'_>, choice: &Choice<'_>, started: f64, e: &Error) {
    if e.is_retryable() && !matches!(e, Error::NoProvider(_) | Error::Busy { .. }) {
        let now = config::now_ms();
        let outcome = Outcome {
            ok: false,
            latency_ms: (now - started) as u64,
            at_ms: now as u64,
            ..Default::default()
        };
        health::report(
            run.env,
            &run.settler.ctx,
            choice.key(),
            run.settler.tenant,
            outcome,
        );
    }
}

async fn attempt(
    run: &Run<'_>,
    target: &Target<'_>,
    incoming: &Incoming,
    meta: &GenerationMeta,
    choice: &Choice<'_>,
    started: f64,
) -> Result<Response, Error> {
    let (cfg, settler) = (run.cfg, run.settler);
    let inlined = super::media::inline_for(cfg, run.env, target, &incoming.request.chat).await?;
    let chat = inlined.as_ref().map_or(&incoming.request.chat, |i| &i.chat);
    let family = providers::family(target.provider.api);
    // The Messages surface speaks to Anthropic endpoints in their own format.
    let native = incoming
        .request
        .native
        .as_ref()
        .filter(|_| family.native_passthrough());
    if let (None, Some(why)) = (native, &incoming.request.anthropic_only) {
        return Err(Error::BadRequest(why.clone()));
    }
    let translator = family.translator(target, meta);
    let up = match native {
        Some(body) => {
            let mut body = crate::api::messages::native_body(
                body,
                &target.endpoint.upstream_model,
                target.endpoint.output_ceiling(target.model),
            );
            // One reply is gathered from a stream for this caller too (below).
            if !chat.is_stream() {
                crate::api::set_field(&mut body, "stream", serde_json::Value::Bool(true));
            }
            family.build_native(target, &body, &incoming.client_headers)?
        }
        // A caller that wants one reply gets it gathered from a stream, where the family
        // streams, so that an exchange cut short still shows what it generated.
        None if !chat.is_stream() && translator.is_some() => {
            providers::build_streamed(target, chat)?
        }
        None => providers::build_request(target, chat)?,
    };
    // Fetched media go into the body as it is written, outside the worker's memory.
    let up: upstream::Outgoing = match &inlined {
        Some(i) => i.outgoing(up)?,
        None => up.into(),
    };
    let slug = target.provider.slug.as_str();
    // A stream must start within UPSTREAM_TIMEOUT_MS; a non-streamed reply (a reasoning
    // model may think for minutes before its first byte) within UPSTREAM_REPLY_TIMEOUT_MS.
    let timeout = if chat.is_stream() {
        cfg.upstream_timeout_ms
    } else {
        cfg.upstream_reply_timeout_ms
    };
    let pricing = target.endpoint.pricing.clone();
    let prompt_estimate = providers::estimate_prompt_tokens(chat);
    if !chat.is_stream() {
        let exchange = WholeReply {
            family,
            slug: slug.to_string(),
            timeout,
            started,
            meta: meta.clone(),
            pricing,
            prompt_estimate,
            key: choice.key(),
            settler: settler.clone(),
            model: choice.id.clone(),
            provider: choice.provider.name.clone(),
            max_bytes: cfg.max_reply_bytes,
            isolate_bytes: cfg.isolate_reply_bytes,
            thinking: run.thinking(choice),
        };
        if let Some(translator) = translator {
            let limits = upstream::GatherLimits::of(cfg);
            let (completion, own, _hold) = exchange
                .gathered(limits, up, translator, native.is_some())
                .await?;
            let cost = session_budget::cost_of(&completion);
            let mut reply = match own {
                Some(own) => own,
                None => incoming.request.reply(completion)?,
            };
            session_budget::usage(&mut reply, run.session, cost);
            return http::json_value(&reply, 200);
        }
        let (completion, body, _hold) = exchange.spawn(up, upstream::Drain::of(cfg)).await?;
        let cost = session_budget::cost_of(&completion);
        let mut reply = match native {
            Some(_) => family.native_reply(slug, &body, &choice.id)?,
            None => {
                // Only a Messages reply from Anthropic reads the bytes: a large reply
                // is not held as bytes and as its reply at once.
                drop(body);
                incoming.request.reply(completion)?
            }
        };
        session_budget::usage(&mut reply, run.session, cost);
        return http::json_value(&reply, 200);
    }
    let (mut resp, inflight) = upstream::send(&up, slug, timeout).await?;
    let status = resp.status_code();
    let first_byte = config::now_ms();
    if !(200..300).contains(&status) {
        return Err(upstream::failure(&mut resp, slug, timeout).await);
    }
    let latency_ms = (first_byte - started) as u64;
    let translator = translator
        .ok_or_else(|| Error::Internal("no stream translator for this provider".into()))?;
    let mut stream = ChatStream::new(translator, meta.clone(), pricing.clone(), prompt_estimate)
        .with_encoder(incoming.request.encoder(prompt_estimate, native.is_some()))
        .with_thinking(run.thinking(choice));
    stream.started(first_byte);
    let on_end = stream_end(settler, choice, pricing, latency_ms, first_byte);
    upstream::stream_through(&settler.ctx, cfg, resp, inflight, stream, slug, on_end)
}

/// What settles a stream from `choice` once it ends or is abandoned.
fn stream_end(
    settler: &Settler,
    choice: &Choice<'_>,
    pricing: crate::catalog::Pricing,
    latency_ms: u64,
    first_byte: f64,
) -> upstream::OnEnd {
    let settle = settler.clone();
    let (model, provider, key) = (
        choice.id.clone(),
        choice.provider.name.clone(),
        choice.key(),
    );
    Box::new(move |s: &mut ChatStream, cancelled: bool| {
        // Until the end, a model that shows nothing may be thinking.
        s.at(config::now_ms());
        let served = Served {
            model,
            provider,
            usage: s.final_usage(),
            usage_source: Some(s.usage_source()),
            delivered: s.delivered(),
            reasoning_estimated: s.reasoning_estimated(),
            finish_reasons: vec![s.finish_reason().map(str::to_string)],
            native_finish_reason: None,
            latency_ms,
            generation_ms: (config::now_ms() - first_byte) as u64,
            cancelled,
        };
        // A stream the client left says nothing of the endpoint.
        let health = (!cancelled).then(|| (key, s.finish_reason() != Some("error")));
        settle.conclude(&served, &pricing, health);
    })
}

/// A non-streamed exchange with one endpoint: sent, read, parsed and settled as the
/// request's background work (`wait_until`), so that it outlives a client that leaves
/// while the model is still working. The provider bills the whole reply either way, so
/// it is read on for at most [`upstream::Drain`]'s time once the client has gone, and
/// charged from the provider's usage, marked `cancelled`.
struct WholeReply {
    family: &'static dyn providers::Family,
    slug: String,
    timeout: u64,
    started: f64,
    meta: GenerationMeta,
    pricing: crate::catalog::Pricing,
    prompt_estimate: u64,
    key: String,
    settler: Settler,
    model: String,
    provider: String,
    max_bytes: usize,
    /// `ISOLATE_REPLY_BYTES`.
    isolate_bytes: u64,
    thinking: Option<Thinking>,
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
    async fn spawn(self, up: upstream::Outgoing, drain: upstream::Drain) -> Result<Whole, Error> {
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
    async fn gathered(
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
        let billed = (usage, s.usage_source(), s.delivered());
        let served = Served {
            reasoning_estimated: s.reasoning_estimated(),
            ..self.served(&completion, billed, first_byte, left)
        };
        completion.usage = Some(served.priced_usage(&self.pricing));
        let health = (!left).then(|| (self.key.clone(), true));
        self.settler.conclude(&served, &self.pricing, health);
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
        let billed = (usage, usage_source, served::delivered(&completion));
        let served = self.served(&completion, billed, first_byte, left);
        completion.usage = Some(served.priced_usage(&self.pricing));
        self.settler
            .conclude(&served, &self.pricing, Some((self.key.clone(), true)));
        Ok(completion)
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
        }
    }
}

/// One embeddings exchange with one endpoint; settles when it answers.
async fn embed(
    cfg: &Settings,
    target: &Target<'_>,
    request: &EmbeddingsRequest,
    meta: &GenerationMeta,
    choice: &Choice<'_>,
    started: f64,
    settler: &Settler,
) -> Result<Response, Error> {
    let up = providers::embeddings::build_request(target, request)?;
    let slug = target.provider.slug.as_str();
    let (first_byte, body, _hold) = upstream::exchange(
        &up.into(),
        slug,
        cfg.upstream_timeout_ms,
        (cfg.max_reply_bytes, cfg.isolate_reply_bytes),
    )
    .await?;
    let (mut reply, usage) = providers::embeddings::parse_response(target, request, meta, &body)?;
    let served = Served {
        model: choice.id.clone(),
        provider: choice.provider.name.clone(),
        usage,
        delivered: true,
        finish_reasons: vec![Some("stop".into())],
        latency_ms: (first_byte - started) as u64,
        generation_ms: (config::now_ms() - first_byte) as u64,
        ..Default::default()
    };
    let pricing = &target.endpoint.pricing;
    if let Some(u) = reply.get_mut("usage") {
        // The reply keeps its own usage fields; the amounts are ours, written exactly.
        let priced = crate::api::usage_value(&served.priced_usage(pricing));
        for k in ["cost", "cost_details"] {
            if let Some(v) = priced.get(k) {
                crate::api::set_field(u, k, v.clone());
            }
        }
    }
    settler.conclude(&served, pricing, Some((choice.key(), true)));
    http::json_value(&reply, 200)
}

async fn serve_echo(
    cfg: &Settings,
    incoming: &surface::Incoming,
    choice: &Choice<'_>,
    meta: &GenerationMeta,
    settler: &Settler,
) -> Result<Response, Error> {
    let chat = &incoming.chat;
    let pricing = &choice.endpoint.pricing;
    let reply = echo::reply(chat, meta, pricing);
    let usage = reply.usage.clone().unwrap_or_default();
    let served = Served {
        model: choice.id.clone(),
        provider: choice.provider.name.clone(),
        usage: usage.clone(),
        delivered: served::delivered(&reply),
        finish_reasons: reply
            .choices
            .iter()
            .map(|c| c.finish_reason.clone())
            .collect(),
        native_finish_reason: reply
            .choices
            .first()
            .and_then(|c| c.native_finish_reason.clone()),
        ..Default::default()
    };
    // The demo model runs in the isolate: it says nothing of any endpoint's health.
    settler.conclude(&served, pricing, None);
    if !chat.is_stream() {
        return http::json_value(&incoming.reply(reply)?, 200);
    }
    let delay = cfg.echo_stream_delay_ms;
    let mut encoder = incoming.encoder(usage.prompt_tokens, false);
    let pieces: Vec<Vec<u8>> = echo::chunks(chat, meta, pricing)
        .iter()
        .map(|c| match &c.usage {
            Some(u) if c.choices.is_empty() => encoder.close(&meta.chunk(Vec::new()), u),
            _ => encoder.chunk(c),
        })
        .collect();
    let stream = futures_util::stream::unfold(pieces.into_iter(), move |mut it| async move {
        let piece = it.next()?;
        if delay > 0 {
            config::sleep(delay).await;
        }
        Some((Ok::<Vec<u8>, worker::Error>(piece), it))
    });
    let resp = Response::from_stream(stream).map_err(http::internal)?;
    Ok(resp.with_headers(upstream::sse_headers()))
}
