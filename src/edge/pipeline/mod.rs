//! The one pipeline behind every model-calling surface (chat completions, completions,
//! Responses, Anthropic Messages, embeddings): authenticate, validate, plan, admit (one
//! Durable Object round trip: key, limits, credit reservation), try each planned
//! endpoint until one answers, and settle the cost and usage record once the reply is
//! done. Surfaces differ only in how the request is read and the reply and stream are
//! written.
//!
//! The steps, in the order a request takes them: this module reads and parses the
//! request and plans it; `admit.rs` admits it (and counts upstream quotas);
//! `attempt.rs` tries the planned endpoints, streaming a reply through or handing a
//! whole one to `whole.rs` (`embed.rs` and `echo.rs` for embeddings and the in-isolate
//! model); every reply ends in `settler.rs`'s one settlement.

mod admit;
mod attempt;
mod auto;
mod count;
mod echo;
mod embed;
mod failover;
mod preset;
mod settler;
mod stamp;
mod tool_loop;
mod whole;

use std::rc::Rc;

use worker::{Env, Response};

use super::background::Background;

use super::account_api::caller_of;
use super::request::ClientRequest;
use super::{cache, catalog, config, health, http, session_budget, sessions};
use crate::accounts::ledger::{worst_case, worst_case_embeddings, Ask};
use crate::accounts::records::Generation;
use crate::api::embeddings::EmbeddingsRequest;
use crate::api::session::SessionAsk;
use crate::api::surface::{self, Surface};
use crate::api::ChatRequest;
use crate::error::{Error, Trail};
use crate::providers;
use crate::routing::{self, Candidates, Choice, RouteContext};
use crate::settings::Settings;
use admit::{admit, Plans};
use attempt::{serve, Run, Unserved};
pub use count::count;
use settler::{AccountLink, Settler};

/// A BYOK choice's worst case: the fee's share of it.
fn byok_ask(mut ask: Ask, c: &Choice) -> Ask {
    if c.byok.is_some() {
        ask.reserve = c.pricing().charged(ask.reserve);
    }
    ask
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
                let mut ask = worst_case(chat, c.model, c.endpoint, asked);
                // A stream that may fail over holds a worst case for each attempt; the
                // OCR runs once, and is the gateway's Mistral key's (BYOK or not).
                let ocr = chat.ocr.picos.min(ask.reserve);
                let attempts = u64::from(i.failovers).saturating_add(1);
                ask.reserve = ask.reserve.saturating_sub(ocr).saturating_mul(attempts);
                let mut ask = byok_ask(ask, c);
                ask.reserve = ask.reserve.saturating_add(ocr);
                ask
            }
            Parsed::Embeddings { request, .. } => {
                byok_ask(worst_case_embeddings(&request.input.bytes(), c.endpoint), c)
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
    fn session(&self, req: &ClientRequest) -> Result<Option<SessionAsk>, Error> {
        match self {
            Parsed::Generate(i) => session_budget::read(req, &i.request),
            Parsed::Embeddings { .. } => Ok(None),
        }
    }

    /// Whether a chat stream's first chunk is the body sent upstream
    /// (`debug.echo_upstream_body`, read on every chat request; ignored but on a
    /// stream, and on other surfaces, as on OpenRouter).
    fn echoes(&self) -> Result<bool, Error> {
        match self {
            Parsed::Generate(i) if i.request.surface == Surface::Chat => {
                let chat = &i.request.chat;
                Ok(crate::api::routed::echo_upstream_body(chat)? && chat.is_stream())
            }
            _ => Ok(false),
        }
    }

    fn trace(&self) -> Option<Rc<crate::accounts::traces::SpanFacts>> {
        match self {
            Parsed::Generate(i) => i.trace.clone(),
            Parsed::Embeddings { .. } => None,
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
    mut req: ClientRequest,
    env: &Env,
    ctx: &Rc<Background>,
    gen_id: &str,
    job: Job,
) -> Result<Response, Error> {
    let arrived = config::now_ms();
    let who = caller_of(&mut req, env).await?;
    let cfg = config::settings(env);
    let body = http::read_body(&mut req, cfg.max_body_bytes).await?;
    handle_read(req, env, ctx, gen_id, job, who, &body, arrived).await
}

/// [`handle`] for a caller already authenticated whose body was read (`edge::stored`
/// rebuilds a Responses body from a stored conversation first): the request read (its
/// preset merged in, its router's choice made), answered from the response cache when
/// it may be, else served, through its server-tool loop when it has server tools.
#[allow(clippy::too_many_arguments)]
pub async fn handle_read(
    mut req: ClientRequest,
    env: &Env,
    ctx: &Rc<Background>,
    gen_id: &str,
    job: Job,
    (account, caller): (String, String),
    body: &[u8],
    arrived: f64,
) -> Result<Response, Error> {
    let cfg = config::settings(env);
    let (mut parsed, cat, routed) =
        prepare(&req, body, job, &cfg, (&account, &caller), env).await?;
    if let Parsed::Generate(incoming) = &mut parsed {
        let chat = &mut incoming.request.chat;
        (incoming.file_annotations, incoming.ocr) =
            super::files::parse(env, &cfg, &cat, chat).await?;
    }
    let ids = (account.as_str(), caller.as_str());
    let capture = match cached(&mut req, env, ctx, &parsed, body, ids, gen_id).await? {
        Ok(capture) => capture,
        Err(hit) => return Ok(hit),
    };
    let call = Call {
        env,
        ctx,
        cfg: &cfg,
        gen_id: gen_id.to_string(),
        account,
        caller,
        arrived,
    };
    if let Parsed::Generate(incoming) = &mut parsed {
        native_server_tools(&mut incoming.request, &cat);
        crate::api::tool_loop::web_by_default(&mut incoming.request.chat)?;
        if !incoming.request.chat.server_tools.is_empty() {
            // A loop's answer depends on what its tools found: it is not cached.
            return tool_loop::run(&req, &call, incoming).await;
        }
    }
    let prepared = Prepared {
        cat,
        routed,
        capture,
    };
    serve_parsed(&req, &call, parsed, prepared).await
}

/// A Messages request to a model only Anthropic endpoints serve: its `web_search_*`
/// and `web_fetch_*` tools go upstream in its own body, run by Anthropic.
fn native_server_tools(i: &mut surface::Incoming, cat: &crate::catalog::Catalog) {
    let model = i.chat.model.as_deref().unwrap_or("");
    let fallbacks = i.chat.models.as_deref().unwrap_or(&[]);
    let native = i.native.is_some()
        && !fallbacks.iter().any(|m| !providers::all_native(cat, m))
        && providers::all_native(cat, model);
    if native {
        i.chat.server_tools.clear();
    }
}

/// Who and what one model call is: the request's own, or an inner call of its
/// server-tool loop (its generation ID then `gen-...-N`).
struct Call<'c> {
    env: &'c Env,
    ctx: &'c Rc<Background>,
    cfg: &'c Settings,
    gen_id: String,
    account: String,
    caller: String,
    arrived: f64,
}

/// What a model call is served with beside the request: the catalogue, the router's
/// choice (reported in `openrouter_metadata`), and what keeps its reply for the
/// response cache.
struct Prepared {
    cat: Rc<crate::catalog::Catalog>,
    routed: Option<auto::Routed>,
    capture: Option<cache::Capture>,
}

impl Prepared {
    /// An inner call of a server-tool loop: the catalogue only.
    async fn inner(env: &Env) -> Result<Prepared, Error> {
        Ok(Prepared {
            cat: catalog::load(env).await?,
            routed: None,
            capture: None,
        })
    }
}

/// A parsed model call planned, admitted (its own hold), served and settled.
async fn serve_parsed(
    req: &ClientRequest,
    call: &Call<'_>,
    mut parsed: Parsed,
    prepared: Prepared,
) -> Result<Response, Error> {
    let (env, ctx, cfg) = (call.env, call.ctx, call.cfg);
    let (cat, routed, capture) = (prepared.cat, prepared.routed, prepared.capture);
    let chat = parsed.routing_view();
    let echo = parsed.echoes()?;
    // The endpoints' health and the caller's BYOK credentials: each at most one round
    // trip (both cached in the isolate), taken together.
    let (health, byok) = futures_util::future::join(
        health::snapshot(env, ctx, &routing::health::keys_for(&cat, chat)),
        super::byok::usable(env, &call.account, &call.caller),
    )
    .await;
    let now_ms = config::now_ms() as u64;
    let session = session_key(chat, &call.account);
    let sticky = session.as_deref().and_then(|k| sessions::last(k, now_ms));
    let route = RouteContext {
        allow_training: false, // both kept: the account's may be known after admission
        health: &health,
        now_ms,
        embeddings: matches!(parsed, Parsed::Embeddings { .. }),
        sticky: sticky.as_deref(),
    };
    let mut plans = Plans::new(Candidates::gather(&cat, chat, &route)?).with_byok(env, chat, &byok);
    let who = Who {
        account: call.account.clone(),
        caller: call.caller.clone(),
        gen_id: call.gen_id.clone(),
        session: parsed.session(req)?,
    };
    let admitted = admit(env, ctx, cfg, &who, &parsed, &mut plans).await?;
    if let Some(refused) = refusal(&admitted.answer, parsed.surface()) {
        return Ok(refused);
    }
    let session_view = admitted.answer.session.as_deref().cloned();
    let leased = admitted.ticket.is_some();
    let base = record_of(req, &who.gen_id, &parsed, now_ms);
    let link = who.link(env, admitted.ticket, parsed.trace());
    let settler =
        Settler::register(ctx, link, base, cfg.reservation_ttl_ms).with_client(req.signal());
    let prompt_tokens = plans.candidates.prompt_tokens;
    let (plan, hold) = plans.take(admitted.answer.allow_training, &parsed);
    let trace = trace_of(req, chat, plan.as_deref().ok(), routed.as_ref());
    if let Err(e) = read_pdfs(&mut parsed, &settler, plan.is_ok()).await {
        return failed(&settler, (e, Trail::default()), parsed.surface());
    }
    let run = Run {
        env,
        cfg,
        parsed: &parsed,
        settler: &settler,
        health: &health,
        session: session_view.as_ref(),
        trace,
        echo,
        clock: attempt::Clock::since(call.arrived),
        // What the request holds: its worst case over the plan, as admitted.
        hold,
        catalog: &cat,
        cache: capture,
        byok: &byok,
    };
    let result = match &plan {
        Ok(plan) => serve(&run, plan, prompt_tokens, session.as_deref()).await,
        Err(e) => Err((e.clone(), Trail::default())),
    };
    let resp = match result {
        Ok(resp) => resp,
        Err(unserved) => return failed(&settler, unserved, parsed.surface()),
    };
    stamp::stamp(&resp, &settler.gen_id, leased, &run.clock, &admitted.answer);
    cache::stamp_miss(&resp, run.cache.as_ref());
    Ok(resp)
}

/// The request's PDFs read by the OCR, now that it is admitted for their worst case
/// (README "Plugins"), unless it has no plan to be served by: what Mistral billed is
/// incurred whatever becomes of it.
async fn read_pdfs(parsed: &mut Parsed, settler: &Settler, planned: bool) -> Result<(), Error> {
    let Parsed::Generate(i) = parsed else {
        return Ok(());
    };
    if !planned {
        return Ok(());
    }
    let Some(pending) = i.ocr.take() else {
        return Ok(());
    };
    let read = super::ocr::complete(&mut i.request.chat, &pending).await;
    settler.incur(i.request.chat.ocr.picos);
    i.file_annotations = read?;
    Ok(())
}

/// The response cache's part (README "Response cache"), when the request asks for it
/// and may have it (never under `provider.zdr`, nor after an OCR): a stored reply (or an identical
/// request's in flight) answers it (`Err`), else what keeps its reply.
async fn cached(
    req: &mut ClientRequest,
    env: &Env,
    ctx: &Rc<Background>,
    parsed: &Parsed,
    body: &[u8],
    (account, caller): (&str, &str),
    gen_id: &str,
) -> Result<Result<Option<cache::Capture>, Response>, Error> {
    let chat = parsed.routing_view();
    let Some(directive) = cache::directive(req)? else {
        return Ok(Ok(None));
    };
    // Pages the OCR reads are charged with a generation, which a (free) hit is not.
    if chat.provider.as_ref().and_then(|p| p.zdr) == Some(true) || chat.ocr.pending > 0 {
        return Ok(Ok(None));
    }
    let preset = match parsed {
        Parsed::Generate(i) => i.preset.as_deref(),
        Parsed::Embeddings { .. } => None,
    };
    let surface = (parsed.api_type(), chat.is_stream());
    let key = crate::api::cache_key::key(caller, surface, preset, body)?;
    let replay = match parsed {
        Parsed::Generate(i) => cache::Replay::Generate(&i.request),
        Parsed::Embeddings { .. } => cache::Replay::Embeddings,
    };
    let asking = cache::Asking {
        env,
        ctx,
        account,
        caller,
        key,
        directive,
        base: record_of(req, gen_id, parsed, config::now_ms() as u64),
        replay,
        trace: parsed.trace(),
    };
    Ok(match cache::begin(req, asking).await? {
        cache::Begin::Hit(resp) => Err(resp),
        cache::Begin::Miss(capture) => Ok(Some(capture)),
    })
}

/// The request read for its surface, with the preset it names merged in, the
/// catalogue, and the choice of the router it names (if any).
async fn prepare(
    req: &ClientRequest,
    body: &[u8],
    job: Job,
    cfg: &Settings,
    (account, caller): (&str, &str),
    env: &Env,
) -> Result<(Parsed, Rc<crate::catalog::Catalog>, Option<auto::Routed>), Error> {
    let mut parsed = parse(req, env, body, job, cfg, account)?;
    preset::resolve(env, account, caller, &mut parsed).await?;
    let cat = catalog::load(env).await?;
    let routed = auto::route(&mut parsed, &cat, account, config::now_ms() as u64)?;
    Ok((parsed, cat, routed))
}

/// What `openrouter_metadata` is made of, when the caller asks for it
/// (`X-OpenRouter-Metadata: enabled`, or its older name): the model it named and the
/// plan's endpoints.
fn trace_of(
    req: &ClientRequest,
    chat: &ChatRequest,
    plan: Option<&[Choice<'_>]>,
    routed: Option<&auto::Routed>,
) -> Option<std::cell::RefCell<crate::api::routed::Trace>> {
    let plan = plan?;
    let header = |name: &str| req.headers().get(name).ok().flatten();
    let asked = header("X-OpenRouter-Metadata")
        .or_else(|| header("X-OpenRouter-Experimental-Metadata"))
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("enabled"));
    if !asked {
        return None;
    }
    let models = chat.model_candidates();
    let requested = routed
        .map(|r| r.requested.clone())
        .or_else(|| chat.model.clone())
        .or_else(|| models.first().cloned());
    let endpoints = plan
        .iter()
        .map(|c| (c.provider.name.clone(), c.id.clone()))
        .collect();
    let t =
        crate::api::routed::Trace::new(&requested.unwrap_or_default(), models.len() > 1, endpoints);
    let t = t.with_stage(routed.map(|r| r.stage.clone()));
    Some(std::cell::RefCell::new(t))
}

/// The request's body read for its surface (or as embeddings), with the end user's ID
/// replaced by a stable keyed hash of it, and the media it names checked.
fn parse(
    req: &ClientRequest,
    env: &Env,
    body: &[u8],
    job: Job,
    cfg: &Settings,
    account: &str,
) -> Result<Parsed, Error> {
    let mut parsed = match job {
        Job::Generate(surface) => Parsed::Generate(
            Incoming {
                client_headers: client_headers(req),
                ..Incoming::from(surface.parse(body)?)
            }
            .with_failovers(cfg),
        ),
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
    if let Parsed::Generate(i) = &mut parsed {
        i.trace = trace_facts(env, &i.request.chat)?;
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

/// The caller's headers that an Anthropic endpoint gets as they are.
fn client_headers(req: &ClientRequest) -> Vec<(String, String)> {
    ANTHROPIC_HEADERS
        .iter()
        .filter_map(|h| {
            let v = req.headers().get(h).ok().flatten()?;
            Some((
                h.to_string(),
                crate::error::truncate(&v, MAX_HEADER_BYTES).to_string(),
            ))
        })
        .collect()
}

/// Settles a request no endpoint served (its reservation released, its record kept)
/// and answers it: the error reported, with what the endpoints tried add to it
/// (`metadata.provider_errors`, `metadata.previous_errors`, `availability`; an
/// internal error goes back for the entry point to log and name).
fn failed(settler: &Settler, (e, trail): Unserved, surface: Surface) -> Result<Response, Error> {
    settler.settle(Generation {
        finish_reason: Some("error".into()),
        native_finish_reason: Some(e.public_message()),
        ..settler.base.clone()
    });
    if matches!(e, Error::Internal(_)) || trail.is_empty() {
        return Err(e);
    }
    // Every endpoint failed: `Retry-After` is the least wait any of them asked for,
    // as `availability.retry_after` says (the error reported may have named none).
    let wait = trail.availability.as_ref().and_then(|a| a.retry_after);
    let body = surface.error_body_with(&e, trail);
    let resp = http::error_response_with(&e, &body);
    if let Some(secs) = wait {
        http::set(resp.headers(), "Retry-After", &secs.to_string());
    }
    Ok(resp)
}

/// What a generation's trace span takes from its request, when the deployment exports
/// traces (the `TRACES` bucket is bound): `trace` is read (400 naming its field)
/// before anything is reserved.
fn trace_facts(
    env: &Env,
    chat: &ChatRequest,
) -> Result<Option<Rc<crate::accounts::traces::SpanFacts>>, Error> {
    let trace = match chat.extra.get("trace").filter(|v| !v.is_null()) {
        Some(v) => crate::accounts::traces::read_trace(v.clone())?,
        None => Default::default(),
    };
    if env.bucket("TRACES").is_err() {
        return Ok(None);
    }
    let text = |k: &str| chat.extra.get(k).and_then(serde_json::Value::as_str);
    Ok(Some(Rc::new(crate::accounts::traces::SpanFacts {
        requested_model: chat.model_candidates().first().cloned().unwrap_or_default(),
        trace,
        session_id: routing::session_of(chat).map(str::to_string),
        user: text("user").map(str::to_string),
        input_text: Some(crate::accounts::traces::prompt_text(chat)),
        ..Default::default()
    })))
}

/// The sticky-session key of the request: the account's session with its first model.
fn session_key(chat: &ChatRequest, account: &str) -> Option<String> {
    let session = routing::session_of(chat)?;
    let model = chat.model_candidates().into_iter().next();
    Some(sessions::key(account, &model.unwrap_or_default(), session))
}

/// The request's record before any endpoint serves it.
fn record_of(req: &ClientRequest, gen_id: &str, parsed: &Parsed, now_ms: u64) -> Generation {
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

/// The answer to a request the account's object refused: a free-model budget spent
/// (429), or the request's session past a limit (403).
fn refusal(answer: &super::account::Admitted, surface: Surface) -> Option<Response> {
    if let Some(e) = &answer.session_refused {
        return Some(http::error_response_in(e, surface));
    }
    Some(stamp::rate_refusal(answer.refused.as_ref()?, surface))
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

impl Who {
    /// What the request's settlement needs of it, with the lease it was admitted
    /// against (if any).
    fn link(
        self,
        env: &Env,
        ticket: Option<crate::accounts::lease::Ticket>,
        trace: Option<Rc<crate::accounts::traces::SpanFacts>>,
    ) -> AccountLink {
        AccountLink {
            env: env.clone(),
            account: self.account,
            caller: self.caller,
            gen_id: self.gen_id,
            ticket,
            session: self.session.map(|s| s.id),
            trace,
        }
    }
}

/// A parsed request and the caller's headers that go upstream as they are.
#[derive(Clone)]
struct Incoming {
    request: surface::Incoming,
    client_headers: Vec<(String, String)>,
    /// How many times its stream may fail over with continuation (0: it ends with
    /// an error chunk, as without `provider.stream_failover: "continue"`).
    failovers: u8,
    /// What its trace span takes from it (when the deployment exports traces).
    trace: Option<Rc<crate::accounts::traces::SpanFacts>>,
    /// The `file` annotations of the PDFs the file parser read, for its reply.
    file_annotations: Vec<serde_json::Value>,
    /// The PDFs the OCR reads once the request is admitted (`mistral-ocr`).
    ocr: Option<Rc<super::ocr::Pending>>,
    /// The preset version merged into it (`id@version`), part of its cache key.
    preset: Option<String>,
}

impl Incoming {
    /// The failovers the request may take: a stream of one choice only.
    fn with_failovers(mut self, cfg: &Settings) -> Self {
        let chat = &self.request.chat;
        let one_choice = chat
            .extra
            .get("n")
            .and_then(serde_json::Value::as_u64)
            .is_none_or(|n| n <= 1);
        self.failovers = match chat.is_stream() && one_choice {
            true => crate::api::provider::ProviderPreferences::stream_failovers(
                chat.provider.as_deref(),
                cfg.stream_failover_continue,
            ),
            false => 0,
        };
        self
    }
}

impl From<surface::Incoming> for Incoming {
    fn from(request: surface::Incoming) -> Self {
        Incoming {
            request,
            client_headers: Vec::new(),
            failovers: 0,
            trace: None,
            file_annotations: Vec::new(),
            ocr: None,
            preset: None,
        }
    }
}
