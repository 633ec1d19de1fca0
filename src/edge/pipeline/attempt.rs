//! Serving with fallbacks: each planned endpoint tried in turn until one answers, one
//! attempt being the request built for the endpoint, sent, and its reply given to the
//! caller (streamed through here, whole through [`super::whole`]) and settled.

use crate::catalog::tier;
use std::cell::{Cell, RefCell};
use std::rc::Rc;

use worker::{Env, Response};

use super::admit::upstream_quota;

use super::echo::serve_echo;
use super::embed::embed;
use super::failover::{Next, Serving, Shared};
use super::settler::Settler;
use super::whole::{Healing, WholeReply};
use super::{Incoming, Parsed};
use crate::accounts::served::Served;
use crate::api::routed::Trace;
use crate::api::GenerationMeta;
use crate::edge::cache::Capture;
use crate::edge::upstream::Failover;
use crate::edge::{config, health, http, session_budget, sessions, upstream};
use crate::error::{Error, Failures, Trail};
use crate::providers::file_parser;
use crate::providers::stream::{ChatStream, Thinking, Translator};
use crate::providers::{self, Family, Target, UpstreamRequest};
use crate::routing::health::Outcome;
use crate::routing::{self, Choice};
use crate::settings::Settings;

/// What every attempt of one request shares.
pub(super) struct Run<'r> {
    pub(super) env: &'r Env,
    pub(super) cfg: &'r Settings,
    pub(super) parsed: &'r Parsed,
    pub(super) settler: &'r Settler,
    pub(super) health: &'r std::collections::HashMap<String, routing::health::Summary>,
    /// The request's session as of its admission (`usage.session` in the reply).
    pub(super) session: Option<&'r crate::accounts::session::SessionView>,
    /// The plan and its failed attempts, when the caller asked for
    /// `openrouter_metadata`.
    pub(super) trace: Option<RefCell<Trace>>,
    /// A chat stream starts with the body sent upstream (`debug.echo_upstream_body`).
    pub(super) echo: bool,
    pub(super) clock: Clock,
    /// What the request holds (picodollars): every attempt of a stream that fails
    /// over must fit in it together.
    pub(super) hold: u64,
    /// The catalogue the plan points into (where a failing stream finds its next
    /// endpoints).
    pub(super) catalog: &'r std::rc::Rc<crate::catalog::Catalog>,
    /// What keeps the reply, when the request asked the response cache for it.
    pub(super) cache: Option<crate::edge::cache::Capture>,
    /// The account's provider keys this request may use (sealed; each opened for the
    /// attempt it pins).
    pub(super) byok: &'r crate::edge::byok::Keys,
}

/// When a request's attempts ran (`Server-Timing`), in ms since the epoch: the plan's
/// index of the one under way, when it started and when its first byte came; and the
/// time spent waiting on upstreams in all.
#[derive(Debug, Default)]
pub(super) struct Clock {
    /// When the request arrived.
    pub(super) arrived: f64,
    pub(super) index: Cell<usize>,
    pub(super) started: Cell<f64>,
    pub(super) first_byte: Rc<Cell<f64>>,
    pub(super) upstream: Cell<f64>,
}

impl Clock {
    /// Adds the wait on an upstream that began at `started` to the time spent on them.
    fn waited_since(&self, started: f64) {
        self.upstream
            .set(self.upstream.get() + (config::now_ms() - started));
    }

    pub(super) fn since(arrived: f64) -> Clock {
        Clock {
            arrived,
            ..Clock::default()
        }
    }

    /// The served attempt's time to its first byte, if an upstream served it.
    pub(super) fn upstream_ms(&self) -> Option<u64> {
        let (start, first) = (self.started.get(), self.first_byte.get());
        (first > 0.0).then(|| (first - start).max(0.0) as u64)
    }
}

impl Run<'_> {
    /// Notes the pipeline stage of type `kind` of the attempt under way (none: the
    /// plugin did nothing there), when `openrouter_metadata` was asked for.
    fn trace_stage(&self, kind: &'static str, stage: Option<String>) {
        if let Some(t) = &self.trace {
            t.borrow_mut().stage(kind, stage);
        }
    }

    /// Notes attempt `i`'s failure in `openrouter_metadata`, when it was asked for.
    fn trace_failure(&self, i: usize, e: &Error) {
        if let Some(t) = &self.trace {
            t.borrow_mut().failed(i, e.status());
        }
    }

    /// `openrouter_metadata` of the attempt under way, served, as JSON.
    fn metadata(&self) -> Option<String> {
        let t = self.trace.as_ref()?.borrow();
        Some(t.served(self.clock.index.get()))
    }

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

/// Tries the planned endpoints in turn until one answers; a failure that another
/// endpoint might not have moves on (and marks the endpoint's health).
pub(super) async fn serve(
    run: &Run<'_>,
    plan: &[Choice<'_>],
    prompt_tokens: u64,
    session: Option<&str>,
) -> Result<Response, Unserved> {
    let Run {
        cfg,
        parsed,
        settler,
        ..
    } = *run;
    let mut failures = Failures::for_models(parsed.routing_view().model_candidates());
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
            let cache = run.cache.as_ref();
            let served = serve_echo(cfg, &incoming.request, (choice, &meta), settler, cache).await;
            return served.map_err(|e| (e, Trail::default()));
        }
        let target = match ready(run, choice, prompt_tokens).await {
            Ok(t) => t,
            Err(e) => {
                run.trace_failure(i, &e);
                failures.push(&provider.slug, &choice.id, e);
                continue;
            }
        };
        let started = config::now_ms();
        run.clock.index.set(i);
        settler.note_attempt(i, run.cache.is_some());
        run.clock.started.set(started);
        let result = match parsed {
            Parsed::Generate(incoming) => {
                let step = Step {
                    choice,
                    rest: plan.get(i.saturating_add(1)..).unwrap_or_default(),
                    started,
                };
                attempt(run, &target, incoming, &meta, step).await
            }
            Parsed::Embeddings { request, .. } => {
                embed(run, &target, request, &meta, choice, started).await
            }
        };
        run.clock.waited_since(started);
        match result {
            Ok(resp) => {
                if let Some(s) = session {
                    sessions::served(s, choice.key(), config::now_ms() as u64);
                }
                return Ok(resp);
            }
            Err(e) => {
                let e = byok_failure(choice, e);
                run.trace_failure(i, &e);
                report_failure(run, choice, started, &e);
                next = routing::after_failure(plan, i, moves_on(&e));
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

/// Where `choice` goes for an attempt, once the upstream's own quota lets it: with the
/// operator's key, or the account's own (BYOK), opened in memory for this attempt only.
async fn ready<'a>(
    run: &Run<'_>,
    choice: &Choice<'a>,
    prompt_tokens: u64,
) -> Result<Target<'a>, Error> {
    upstream_quota(run.env, choice, prompt_tokens).await?;
    let mut target = target_of(run.env, choice);
    if let Some(b) = &choice.byok {
        target.api_key = Some(crate::edge::byok::key_for(run.env, run.byok, b).await?);
    }
    Ok(target)
}

/// Whether a failure moves on to the next planned endpoint: one another endpoint might
/// not have, or a refused BYOK key (the next is another key, or shared capacity unless
/// an "always use" key took it out of the plan).
fn moves_on(e: &Error) -> bool {
    e.is_retryable() || matches!(e, Error::ByokRefused { .. })
}

/// A BYOK attempt's failure as the account's: its provider refusing the key (which
/// the gateway would call its own misconfiguration) is the account's to fix.
fn byok_failure(choice: &Choice<'_>, e: Error) -> Error {
    match (&choice.byok, e) {
        (Some(b), Error::Misconfigured(_)) => Error::ByokRefused {
            provider: choice.provider.name.clone(),
            message: format!(
                "Provider {} refused your BYOK key (credential {}): check it in the provider's console.",
                choice.provider.name, b.id
            ),
        },
        (_, e) => e,
    }
}

/// Why no endpoint served a request: the error reported, and what the endpoints tried
/// add to it.
pub(super) type Unserved = (Error, Trail);

/// Where `choice` is sent, with what key: a provider's `<SLUG>_BASE_URL` and
/// `<SLUG>_API_KEY`, whose names come from the catalogue.
pub(super) fn target_of<'a>(env: &Env, choice: &Choice<'a>) -> Target<'a> {
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
    // The account's own key at its own limit says nothing of the shared endpoint.
    let own_limit = choice.byok.is_some() && matches!(e, Error::RateLimited { .. });
    if e.is_retryable() && !own_limit && !matches!(e, Error::NoProvider(_) | Error::Busy { .. }) {
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

/// One attempt at `target`: the request as the endpoint takes it (its media inlined
/// where the family cannot fetch them), sent, and its reply given to the caller, whole
/// or streamed, and settled.
/// Which planned endpoint an attempt is at, what is planned after it, and when it
/// started.
struct Step<'p, 'a> {
    choice: &'p Choice<'a>,
    rest: &'p [Choice<'a>],
    started: f64,
}

async fn attempt(
    run: &Run<'_>,
    target: &Target<'_>,
    incoming: &Incoming,
    meta: &GenerationMeta,
    Step {
        choice,
        rest,
        started,
    }: Step<'_, '_>,
) -> Result<Response, Error> {
    let chat = &incoming.request.chat;
    // Each endpoint compresses the prompt to its own context.
    let context = target
        .endpoint
        .context_length
        .unwrap_or(target.model.context_length);
    let compressed = crate::api::compress::for_context(chat, context);
    run.trace_stage(
        "context_compression",
        compressed.as_ref().map(|(_, c)| c.stage()),
    );
    let chat = compressed.as_ref().map_or(chat, |(c, _)| c);
    let family = providers::family(target.provider.api);
    // The loop's web search goes as the provider's own tool where this endpoint has one.
    let has_native = target.endpoint.native_web_search;
    let searched =
        crate::api::native_search::for_endpoint(chat, has_native, family.native_search());
    let chat = searched.as_ref().unwrap_or(chat);
    let inlined = crate::edge::media::inline_for(run.cfg, run.env, target, chat).await?;
    let chat = inlined.as_ref().map_or(chat, |i| &i.chat);
    let native = native_body(incoming, family)?;
    let translator = family.translator(target, meta);
    let built = Built {
        native,
        gathered: !chat.is_stream() && translator.is_some(),
        client_headers: &incoming.client_headers,
    };
    let up = built.request(target, family, chat)?;
    let echo = (run.echo && chat.is_stream()).then(|| up.body.clone());
    // Fetched media go into the body as it is written, outside the worker's memory.
    let up: upstream::Outgoing = match &inlined {
        Some(i) => i.outgoing(up)?,
        None => up.into(),
    };
    let step = Attempt {
        run,
        target,
        incoming,
        meta,
        choice,
        rest,
        started,
        family,
        native: native.is_some(),
        prompt_estimate: providers::estimate_prompt_tokens(chat),
        chat,
    };
    let resp = if chat.is_stream() {
        step.streamed(up, translator, echo).await
    } else {
        step.whole(up, translator).await
    }?;
    if let Some((_, c)) = &compressed {
        http::set(
            resp.headers(),
            "X-Context-Compressed",
            &c.dropped.to_string(),
        );
    }
    Ok(resp)
}

/// The caller's own body where the Messages surface speaks to an Anthropic endpoint in
/// its format; a request only such an endpoint can serve is refused anywhere else.
fn native_body<'i>(
    incoming: &'i Incoming,
    family: &dyn Family,
) -> Result<Option<&'i serde_json::Value>, Error> {
    let native = incoming
        .request
        .native
        .as_ref()
        .filter(|_| family.native_passthrough());
    if let (None, Some(why)) = (native, &incoming.request.anthropic_only) {
        return Err(Error::BadRequest(why.clone()));
    }
    Ok(native)
}

/// How an attempt's upstream request is built.
struct Built<'i> {
    /// The caller's own body, sent as it is (the Messages pass-through).
    native: Option<&'i serde_json::Value>,
    /// One reply is gathered from a stream: a caller that wants one reply gets it so,
    /// where the family streams, so that an exchange cut short still shows what it
    /// generated.
    gathered: bool,
    client_headers: &'i [(String, String)],
}

impl Built<'_> {
    fn request(
        &self,
        target: &Target<'_>,
        family: &dyn Family,
        chat: &crate::api::ChatRequest,
    ) -> Result<UpstreamRequest, Error> {
        let Some(body) = self.native else {
            return if self.gathered {
                providers::build_streamed(target, chat)
            } else {
                providers::build_request(target, chat)
            };
        };
        let mut body = crate::api::messages::native_body(
            body,
            &target.endpoint.upstream_model,
            target.endpoint.output_ceiling(target.model),
        );
        // One reply is gathered from a stream for this caller too.
        if !chat.is_stream() {
            crate::api::set_field(&mut body, "stream", serde_json::Value::Bool(true));
        }
        family.build_native(target, &body, self.client_headers)
    }
}

/// One attempt's facts, shared by its steps.
struct Attempt<'a> {
    run: &'a Run<'a>,
    target: &'a Target<'a>,
    incoming: &'a Incoming,
    meta: &'a GenerationMeta,
    choice: &'a Choice<'a>,
    /// The endpoints planned after this one (where a failing stream may go on).
    rest: &'a [Choice<'a>],
    started: f64,
    family: &'static dyn Family,
    /// The Messages pass-through: the caller gets the upstream's own reply.
    native: bool,
    prompt_estimate: u64,
    /// The request as this endpoint gets it (compressed to its context).
    chat: &'a crate::api::ChatRequest,
}

impl Attempt<'_> {
    /// A caller that wants one reply: gathered from a stream where the family streams,
    /// else read whole; either way read and settled as the request's background work.
    async fn whole(
        &self,
        up: upstream::Outgoing,
        translator: Option<Translator>,
    ) -> Result<Response, Error> {
        let mut exchange = self.whole_reply();
        let report = Rc::new(RefCell::new(None));
        exchange.healing = crate::api::heal::Healer::of(self.chat).map(|healer| Healing {
            // Retried only where there is an endpoint to retry at.
            retry: healer.retry && !self.rest.is_empty(),
            healer,
            report: report.clone(),
        });
        let cfg = self.run.cfg;
        let request = &self.incoming.request;
        let note = || {
            let stage = report.borrow().as_ref().map(|r| r.stage());
            self.run.trace_stage("response_healing", stage);
        };
        if let Some(translator) = translator {
            let limits = upstream::GatherLimits::of(cfg);
            let (mut completion, own, _hold) = exchange
                .gathered(limits, up, translator, self.native)
                .await?;
            note();
            return match own {
                Some(mut own) => {
                    self.keep(&completion);
                    session_budget::stamp_native(&mut own, &completion, self.run.session);
                    self.native_reply(own)
                }
                None => {
                    file_parser::annotate(&mut completion, &self.incoming.file_annotations);
                    self.keep(&completion);
                    session_budget::stamp(&mut completion, self.run.session);
                    self.reply(&request.reply(completion))
                }
            };
        }
        let (mut completion, body, _hold) = exchange.spawn(up, upstream::Drain::of(cfg)).await?;
        note();
        if !self.native {
            file_parser::annotate(&mut completion, &self.incoming.file_annotations);
        }
        self.keep(&completion);
        if self.native {
            let slug = self.target.provider.slug.as_str();
            let mut own = self.family.native_reply(slug, &body, &self.choice.id)?;
            session_budget::stamp_native(&mut own, &completion, self.run.session);
            self.native_reply(own)
        } else {
            // Only a Messages reply from Anthropic reads the bytes: a large reply
            // is not held as bytes and as its reply at once.
            drop(body);
            session_budget::stamp(&mut completion, self.run.session);
            self.reply(&request.reply(completion))
        }
    }

    /// Keeps a whole reply in the response cache, when the request asked for it (its
    /// text for the trace span was noted before its settlement).
    fn keep(&self, completion: &crate::api::ChatCompletion) {
        if let Some(c) = &self.run.cache {
            c.chat(completion);
        }
    }

    /// A surface's reply, with `openrouter_metadata` when asked for.
    fn reply(&self, reply: &crate::api::surface::Reply) -> Result<Response, Error> {
        let mut bytes = reply.to_vec()?;
        if let Some(m) = self.run.metadata() {
            crate::api::routed::add_field(&mut bytes, "openrouter_metadata", &m);
        }
        http::json_bytes(bytes, 200)
    }

    /// The provider's own reply (the Messages pass-through), likewise.
    fn native_reply(&self, mut own: serde_json::Value) -> Result<Response, Error> {
        let meta = self.run.metadata();
        // From bytes, as every JSON the worker reads: one parser instantiation.
        if let Some(m) = meta.and_then(|m| serde_json::from_slice(m.as_bytes()).ok()) {
            crate::api::set_field(&mut own, "openrouter_metadata", m);
        }
        http::json_value(&own, 200)
    }

    /// The non-streamed exchange of this attempt.
    fn whole_reply(&self) -> WholeReply {
        let (cfg, choice) = (self.run.cfg, self.choice);
        WholeReply {
            family: self.family,
            slug: self.target.provider.slug.clone(),
            // A reasoning model may think for minutes before the first byte of a
            // non-streamed reply: it has UPSTREAM_REPLY_TIMEOUT_MS.
            timeout: cfg.upstream_reply_timeout_ms,
            started: self.started,
            meta: self.meta.clone(),
            pricing: choice.pricing(),
            prompt_estimate: self.prompt_estimate,
            key: choice.key(),
            settler: self.run.settler.clone(),
            model: choice.id.clone(),
            provider: choice.provider.name.clone(),
            max_bytes: cfg.max_reply_bytes,
            isolate_bytes: cfg.isolate_reply_bytes,
            thinking: self.run.thinking(choice),
            first_byte: self.run.clock.first_byte.clone(),
            tools: self.incoming.request.chat.tools.clone().unwrap_or_default(),
            tier_prices: tier::prices(self.target.model, self.target.endpoint),
            healing: None,
            searches_run: self.incoming.request.chat.searches_run,
            searches_billed_per_request: crate::api::native_search::sent(self.chat)
                .and(self.family.native_search())
                .is_some_and(|t| t.per_request),
            ocr: self.incoming.request.chat.ocr,
        }
    }

    /// A caller that wants a stream: the upstream's, translated as it comes, settled
    /// when it ends or the client leaves.
    async fn streamed(
        &self,
        up: upstream::Outgoing,
        translator: Option<Translator>,
        echo: Option<Vec<u8>>,
    ) -> Result<Response, Error> {
        let (run, choice) = (self.run, self.choice);
        let slug = self.target.provider.slug.as_str();
        // A stream must start within UPSTREAM_TIMEOUT_MS.
        let timeout = run.cfg.upstream_timeout_ms;
        let (mut resp, inflight) = upstream::send(&up, slug, timeout).await?;
        let status = resp.status_code();
        let first_byte = config::now_ms();
        if !(200..300).contains(&status) {
            return Err(upstream::failure(&mut resp, slug, timeout).await);
        }
        let latency_ms = (first_byte - self.started) as u64;
        let translator = translator
            .ok_or_else(|| Error::Internal("no stream translator for this provider".into()))?;
        let pricing = choice.pricing();
        let (meta, estimate) = (self.meta.clone(), self.prompt_estimate);
        let failovers = if self.native {
            0
        } else {
            self.incoming.failovers
        };
        let mut stream = ChatStream::new(translator, meta, pricing, estimate)
            .with_encoder(self.incoming.request.encoder(estimate, self.native))
            .with_tools(self.incoming.request.chat.tools.as_deref())
            .with_tier_prices(tier::prices(self.target.model, self.target.endpoint))
            .with_thinking(run.thinking(choice))
            .with_session(run.session.map(session_budget::before))
            .with_metadata(run.metadata())
            .with_healing(crate::api::heal::Healer::of(self.chat))
            .with_annotations(self.incoming.file_annotations.clone())
            .with_ocr(self.incoming.request.chat.ocr)
            .with_echo(echo.as_deref())
            .with_failover(failovers)
            .recording(run.cache.is_some() || run.settler.traced());
        run.clock.first_byte.set(first_byte);
        stream.started(first_byte);
        let serving = Rc::new(RefCell::new(Serving {
            key: choice.key(),
            latency_ms,
            first_byte,
        }));
        let on_end = stream_end(run.settler, serving.clone(), run.cache.clone());
        let failover = (failovers > 0).then(|| {
            let chat = &self.incoming.request.chat;
            Box::new(Next::new(run, chat, self.rest, self.meta, serving)) as Box<dyn Failover>
        });
        upstream::stream_through(
            &run.settler.ctx,
            run.cfg,
            resp,
            inflight,
            stream,
            slug,
            (on_end, failover),
        )
    }
}

/// What settles a stream from `choice` once it ends or is abandoned.
fn stream_end(settler: &Settler, serving: Shared, cache: Option<Capture>) -> upstream::OnEnd {
    let settle = settler.clone();
    Box::new(move |s: &mut ChatStream, cancelled: bool| {
        // A stream is kept whole only: not cut short, failed or failed over.
        let whole = !cancelled && s.failure().is_none() && s.earlier().is_none();
        if let Some(reply) = s.recorded() {
            if let (Some(c), true) = (&cache, whole) {
                c.chat(&reply);
            }
            settle.note_output(&reply);
        }
        // Until the end, a model that shows nothing may be thinking.
        s.at(config::now_ms());
        // The endpoint that served last (a stream that failed over has several).
        let Serving {
            key,
            latency_ms,
            first_byte,
        } = serving.borrow().clone();
        let (model, provider, pricing) = s.serving();
        let (model, provider, pricing) = (model.to_string(), provider.to_string(), pricing.clone());
        let served = Served {
            model,
            provider,
            earlier: s.earlier(),
            usage: s.final_usage(),
            usage_source: Some(s.usage_source()),
            delivered: s.delivered(),
            reasoning_estimated: s.reasoning_estimated(),
            finish_reasons: vec![s.finish_reason().map(str::to_string)],
            native_finish_reason: None,
            latency_ms,
            generation_ms: (config::now_ms() - first_byte) as u64,
            cancelled,
            tool_calls: s.tool_tally(),
        };
        // A stream the client left says nothing of the endpoint.
        let health = (!cancelled).then(|| (key, s.finish_reason() != Some("error")));
        settle.conclude(&served, &pricing, health);
    })
}
