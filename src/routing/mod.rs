//! Which endpoints serve a request, in the order to try them: model ID and variant
//! resolution, the caller's provider preferences, the account's data policy, context
//! length, health, and price-weighted load balancing.

pub mod auto;
pub mod byok;
pub mod health;
pub mod prefs;
pub mod tiers;
pub mod tool_quality;
mod unavailable;

use std::collections::HashMap;

use crate::api::{estimate_prompt_tokens, ChatRequest};
use crate::catalog::{Catalog, Endpoint, Model, Price, Provider};
use crate::error::{ExcludedBy, Result};
use health::Summary;
use prefs::{split_variant, Partition, ProviderPrefs, Sort, Variant};
use unavailable::{no_endpoint, Rejections};

/// One place to send the request: a model and one of its endpoints.
#[derive(Debug, Clone)]
pub struct Choice<'a> {
    /// The model ID to report back (with its variant suffix, if one was used).
    pub id: String,
    pub model: &'a Model,
    pub endpoint: &'a Endpoint,
    pub provider: &'a Provider,
    /// The account's own provider key it is pinned to (BYOK), if any.
    pub byok: Option<byok::ByokUse>,
}

impl Choice<'_> {
    /// Free models share the per-account free-model limits.
    pub fn is_free(&self) -> bool {
        self.id.ends_with(":free") || self.endpoint.pricing.is_free()
    }

    pub fn key(&self) -> String {
        endpoint_key(self.endpoint)
    }

    /// The prices its generation is charged at: the endpoint's, or for a BYOK choice
    /// the fee, a percentage of them.
    pub fn pricing(&self) -> crate::catalog::Pricing {
        let mut p = self.endpoint.pricing.clone();
        p.byok_fee_percent = self.byok.as_ref().map(|b| b.fee_percent);
        p
    }
}

pub use crate::catalog::{data_policy, endpoint_key};

/// What routing knows besides the request.
#[derive(Debug, Clone)]
pub struct RouteContext<'h> {
    /// The account allows providers that train on prompts.
    pub allow_training: bool,
    pub health: &'h HashMap<String, Summary>,
    pub now_ms: u64,
    /// An embeddings request: only embedding models serve it, and only it.
    pub embeddings: bool,
    /// The endpoint (its health key) that served the caller's session last: it goes
    /// first while it is up, so that its prompt cache stays warm.
    pub sticky: Option<&'h str>,
}

#[cfg(test)]
impl<'h> RouteContext<'h> {
    /// A chat request's context at time 0, with `health` and no sticky session.
    pub fn quiet(health: &'h HashMap<String, Summary>, allow_training: bool) -> Self {
        RouteContext {
            allow_training,
            health,
            now_ms: 0,
            embeddings: false,
            sticky: None,
        }
    }
}

/// The session a request belongs to for sticky routing: OpenRouter's `session_id`, or
/// OpenAI's `prompt_cache_key` (at most 256 bytes of it).
pub fn session_of(req: &ChatRequest) -> Option<&str> {
    ["session_id", "prompt_cache_key"]
        .iter()
        .find_map(|k| req.extra.get(*k).and_then(serde_json::Value::as_str))
        .filter(|s| !s.is_empty())
        .map(|s| crate::error::truncate(s, 256))
}

/// The input modalities a request's messages need beyond text: `image` (`image_url`
/// parts), `file` (PDFs), `audio` (`input_audio`) and `video` (`video_url`).
pub fn input_modalities(req: &ChatRequest) -> Vec<&'static str> {
    let mut out = Vec::new();
    for m in &req.messages {
        let Some(crate::api::Content::Parts(parts)) = &m.content else {
            continue;
        };
        for p in parts {
            use crate::api::ContentPart as P;
            let needs = match p {
                P::ImageUrl(_) => "image",
                P::File(_) => "file",
                P::InputAudio(_) => "audio",
                P::VideoUrl(_) => "video",
                P::Text(_) | P::Refusal(_) | P::Other(_) => continue,
            };
            if !out.contains(&needs) {
                out.push(needs);
            }
        }
    }
    out
}

/// Request parameters that an endpoint must support under `require_parameters`.
pub fn requested_parameters(req: &ChatRequest) -> Vec<&'static str> {
    let mut out = Vec::new();
    let mut want = |cond: bool, name: &'static str| {
        if cond {
            out.push(name);
        }
    };
    want(req.tools.as_ref().is_some_and(|t| !t.is_empty()), "tools");
    want(req.tool_choice.is_some(), "tool_choice");
    want(req.temperature.is_some(), "temperature");
    want(req.top_p.is_some(), "top_p");
    want(req.top_k.is_some(), "top_k");
    want(req.max_output_tokens().is_some(), "max_tokens");
    want(req.stop.is_some(), "stop");
    want(req.response_format.is_some(), "response_format");
    want(req.json_schema_format().is_some(), "structured_outputs");
    want(req.sets_reasoning(), "reasoning");
    for name in [
        "seed",
        "frequency_penalty",
        "presence_penalty",
        "repetition_penalty",
        "logit_bias",
        "logprobs",
        "top_logprobs",
        "min_p",
        "top_a",
    ] {
        want(req.extra.get(name).is_some_and(|v| !v.is_null()), name);
    }
    out
}

fn matches(list: &[String], p: &Provider) -> bool {
    let (slug, name) = (p.slug.to_ascii_lowercase(), p.name.to_ascii_lowercase());
    list.iter().any(|x| *x == slug || *x == name)
}

/// Whether `price` passes the caller's ceiling, in integers: a per-token price scaled
/// to a million tokens (`per_token`), or a price per unit.
fn over(price: Option<Price>, per_token: bool, max: Option<u128>) -> bool {
    match (price, max) {
        (Some(p), Some(m)) if per_token => crate::catalog::per_million(p) > m,
        (Some(p), Some(m)) => u128::from(p.0) > m,
        _ => false,
    }
}

fn resolve<'a>(cat: &'a Catalog, id: &str) -> Option<(&'a Model, Option<Variant>)> {
    let model = |id: &str| cat.model(id).or_else(|| cat.latest(id));
    if let Some(m) = model(id) {
        return Some((m, None));
    }
    match split_variant(id) {
        (base, Some(v)) => model(base).map(|m| (m, Some(v))),
        _ => None,
    }
}

/// The model ID a reply reports for `id` as asked: itself, or for an alias
/// (`~author/family-latest`, with its variant if any) the concrete model's.
fn reported(id: &str, model: &Model) -> String {
    if !id.starts_with('~') {
        return id.to_string();
    }
    let suffix = match split_variant(id) {
        (base, Some(_)) => id.strip_prefix(base).unwrap_or_default(),
        _ => "",
    };
    format!("{}{suffix}", model.id)
}

/// The endpoints to try for `req`, in order: each requested model (`model`, then the
/// `models` fallbacks) with its eligible endpoints ordered by the preferences.
/// `random` yields numbers in [0, 1) for the price-weighted shuffle.
pub fn plan<'a>(
    cat: &'a Catalog,
    req: &ChatRequest,
    ctx: &RouteContext,
    random: &mut dyn FnMut() -> f64,
) -> Result<Vec<Choice<'a>>> {
    Candidates::gather(cat, req, ctx)?.plan(ctx.allow_training, random)
}

/// One requested model's eligible endpoints (whether each trains on prompts), and the
/// sort its variant asks for.
#[derive(Debug, Clone)]
struct Group<'a> {
    eligible: Vec<(Choice<'a>, bool)>,
    sort: Option<Sort>,
}

/// What a request may be routed to, gathered once (preferences parsed, prompt sized,
/// every endpoint checked) for both privacy settings: the account's may be known only
/// once the request is admitted. [`Candidates::plan`] orders them for one setting.
#[derive(Debug, Clone)]
pub struct Candidates<'a, 'h> {
    ctx: RouteContext<'h>,
    prefs: ProviderPrefs,
    candidates: Vec<String>,
    /// The prompt's estimated tokens (the context check's).
    pub prompt_tokens: u64,
    /// Whether a prompt too long for an endpoint is compressed to fit it.
    compression: crate::api::plugins::Compression,
    max_output: Option<u64>,
    /// The request offers tools: the tool-quality median rule applies.
    tools: bool,
    /// Its `service_tier`.
    tier: Option<crate::api::service_tier::Asked>,
    /// Its web search as an endpoint may run it: (only such endpoints serve, they go
    /// first).
    native_search: (bool, bool),
    known: bool,
    /// Why endpoints were left out with training allowed.
    rejected: Rejections,
    /// Endpoints left out only because they train on prompts, and their providers.
    trainers: usize,
    trainer_providers: Vec<String>,
    /// The last endpoint too small for the prompt that does not train on prompts.
    context_private: Option<(String, u64)>,
    groups: Vec<Group<'a>>,
}

impl<'a, 'h> Candidates<'a, 'h> {
    /// Checks every endpoint of each requested model for `req` (`ctx.allow_training`
    /// is not read: both settings are kept).
    pub fn gather(cat: &'a Catalog, req: &ChatRequest, ctx: &RouteContext<'h>) -> Result<Self> {
        let mut c = Candidates {
            ctx: ctx.clone(),
            prefs: ProviderPrefs::from(req.provider.as_deref()),
            candidates: req.model_candidates(),
            prompt_tokens: estimate_prompt_tokens(req),
            compression: req.plugins.compression(),
            max_output: req.max_output_tokens(),
            tools: req.tools.as_ref().is_some_and(|t| !t.is_empty()),
            tier: crate::api::service_tier::asked(req),
            native_search: req
                .native_search
                .as_ref()
                .map_or((false, false), |n| (n.required, n.preferred())),
            known: false,
            rejected: Rejections::default(),
            trainers: 0,
            trainer_providers: Vec::new(),
            context_private: None,
            groups: Vec::new(),
        };
        let needs = Needs {
            params: requested_parameters(req),
            modalities: input_modalities(req),
            images: req.wants_image_output(),
        };
        for id in c.candidates.clone() {
            let Some((model, variant)) = resolve(cat, &id) else {
                continue;
            };
            c.known = true;
            if c.model_refused(model, &needs) {
                continue;
            }
            let mut eligible = Vec::new();
            for endpoint in &model.endpoints {
                let Some(provider) = cat.provider(&endpoint.provider) else {
                    continue;
                };
                let choice = Choice {
                    id: reported(&id, model),
                    model,
                    endpoint,
                    provider,
                    byok: None,
                };
                if let Some(trains) = c.check(&choice, variant, &needs.params) {
                    eligible.push((choice, trains));
                }
            }
            let sort = c.prefs.sort.or(tiers::sort(c.tier)).or(match variant {
                Some(Variant::Nitro) => Some(Sort::Throughput),
                Some(Variant::Floor) => Some(Sort::Price),
                Some(Variant::Exacto) => Some(Sort::ToolQuality),
                _ => None,
            });
            c.groups.push(Group { eligible, sort });
        }
        Ok(c)
    }

    /// Whether `model` as a whole cannot serve the request (noted in the rejections).
    fn model_refused(&mut self, model: &Model, needs: &Needs) -> bool {
        let r = &mut self.rejected;
        let embedding_model = model.output_modalities.iter().any(|m| m == "embeddings");
        if embedding_model != self.ctx.embeddings {
            r.wrong_kind = Some(model.id.clone());
            return true;
        }
        // A model that cannot take a part of the request is passed over (the next
        // model of `models` may take it).
        let takes = |m: &&str| model.input_modalities.iter().any(|i| i == *m);
        if let Some(m) = needs.modalities.iter().find(|m| !takes(m)) {
            r.modality = Some((m, model.id.clone()));
            return true;
        }
        if needs.images && !model.output_modalities.iter().any(|o| o == "image") {
            r.image_output = Some(model.id.clone());
            return true;
        }
        if self.prefs.enforce_distillable_text && !model.distillable {
            r.preferences = r.preferences.saturating_add(model.endpoints.len());
            r.exclude(
                ExcludedBy::DistillableText,
                "provider.enforce_distillable_text",
            );
            return true;
        }
        false
    }

    /// Whether `c` may serve the request: `None` (the reason noted) if not, else
    /// whether its endpoint trains on prompts (eligible only with training allowed).
    fn check(
        &mut self,
        c: &Choice,
        variant: Option<Variant>,
        params: &[&'static str],
    ) -> Option<bool> {
        let (prefs, r) = (&self.prefs, &mut self.rejected);
        let (model, endpoint, provider) = (c.model, c.endpoint, c.provider);
        let count = |n: &mut usize| *n = n.saturating_add(1);
        if !provider.api.is_known() {
            count(&mut r.family);
            return None;
        }
        // A tier's endpoint only for a request that asks for it (not a refusal).
        if !tiers::admits(endpoint, self.tier, variant, prefs) {
            return None;
        }
        if variant == Some(Variant::Free) && !endpoint.pricing.is_free() {
            count(&mut r.not_free);
            return None;
        }
        if let Some((by, field)) = refused_by_prefs(prefs, provider, endpoint) {
            count(&mut r.preferences);
            r.exclude(by, field);
            r.affect(provider);
            return None;
        }
        if prefs.require_parameters {
            let supported = endpoint
                .supported_parameters
                .as_ref()
                .unwrap_or(&model.supported_parameters);
            if let Some(p) = params.iter().find(|p| !supported.iter().any(|s| s == *p)) {
                count(&mut r.parameters);
                r.exclude(ExcludedBy::RequireParameters, "provider.require_parameters");
                r.unsupported = Some(*p);
                r.affect(provider);
                return None;
            }
        }
        let policy = data_policy(provider, endpoint);
        if (prefs.deny_data_collection || prefs.zdr) && (policy.training || policy.retains_prompts)
        {
            count(&mut r.data_policy);
            r.policy_field = Some(if prefs.zdr {
                "provider.zdr: true"
            } else {
                "provider.data_collection: \"deny\""
            });
            r.privacy(if prefs.zdr {
                ExcludedBy::DataPolicyZdr
            } else {
                ExcludedBy::DataPolicyTraining
            });
            r.affect(provider);
            return None;
        }
        // Under `zdr`, a web search only an endpoint's own search may run.
        if self.native_search.0 && !endpoint.native_web_search {
            r.no_native_search(provider);
            return None;
        }
        // Without training allowed such an endpoint is refused for its data policy,
        // before its context is looked at.
        if policy.training {
            count(&mut self.trainers);
            self.trainer_providers.push(provider.slug.clone());
        }
        let context = endpoint.context_length.unwrap_or(model.context_length);
        if self.prompt_tokens > context && !self.compression.applies(context) {
            r.context = Some((model.id.clone(), context));
            if !policy.training {
                self.context_private = Some((model.id.clone(), context));
            }
            return None;
        }
        Some(policy.training)
    }

    /// Why endpoints were left out under one privacy setting.
    fn rejections(&self, allow_training: bool) -> Rejections {
        let mut r = self.rejected.clone();
        if !allow_training {
            r.context = self.context_private.clone();
            r.data_policy = r.data_policy.saturating_add(self.trainers);
            if self.trainers > 0 {
                r.privacy(ExcludedBy::DataPolicyTraining);
            }
            for p in &self.trainer_providers {
                r.affect_slug(p);
            }
        }
        r
    }

    /// The endpoints to try, in order, for an account that allows providers that train
    /// on prompts or not.
    pub fn plan(
        &self,
        allow_training: bool,
        random: &mut dyn FnMut() -> f64,
    ) -> Result<Vec<Choice<'a>>> {
        let ctx = RouteContext {
            allow_training,
            ..self.ctx.clone()
        };
        let prefs = &self.prefs;
        let mut out = Vec::new();
        for g in &self.groups {
            let eligible = g
                .eligible
                .iter()
                .filter(|(_, trains)| allow_training || !trains);
            let eligible = eligible.map(|(c, _)| c.clone()).collect();
            let ordered = order(eligible, (prefs, g.sort, self.tools), &ctx, random);
            let mut ordered = tiers::arrange(ordered, self.tier);
            // `engine: "native"`: the endpoints that search themselves first.
            if self.native_search.1 {
                ordered.sort_by_key(|c| !c.endpoint.native_web_search);
            }
            // A `max_tokens` an endpoint cannot generate is lowered to its maximum when
            // the request goes there; a caller who requires its parameters gets the
            // endpoints that honour the whole ask first (in the order chosen).
            if let Some(asked) = self.max_output.filter(|_| prefs.require_parameters) {
                ordered.sort_by_key(|c| c.endpoint.output_ceiling(c.model) < asked);
            }
            out.extend(ordered);
        }
        if out.is_empty() {
            let r = self.rejections(allow_training);
            return Err(no_endpoint(
                &self.candidates,
                self.known,
                &r,
                &ctx,
                self.prompt_tokens,
            ));
        }
        // `sort: {partition: "none"}`: one order across every model's endpoints.
        if let (Some(sort), Partition::None) = (prefs.sort, prefs.partition) {
            sort_by(&mut out, sort, &ctx);
            out = down_last(out, &ctx);
        }
        Ok(stick(prefer(out, prefs, &ctx), prefs, &ctx))
    }
}

/// What a request needs of a model and its endpoints beyond text in and out.
struct Needs {
    params: Vec<&'static str>,
    modalities: Vec<&'static str>,
    images: bool,
}

/// Which of the caller's `only`, `ignore`, `quantizations` or `max_price` leaves out
/// `endpoint` of `provider`, if one does: the filter and the request field.
fn refused_by_prefs(
    prefs: &ProviderPrefs,
    provider: &Provider,
    endpoint: &Endpoint,
) -> Option<(ExcludedBy, &'static str)> {
    let quant = endpoint
        .quantization
        .as_deref()
        .unwrap_or("unknown")
        .to_ascii_lowercase();
    if (prefs.only.as_ref()).is_some_and(|only| !tiers::named(only, provider, endpoint)) {
        return Some((ExcludedBy::AllowedProviders, "provider.only"));
    }
    if matches(&prefs.ignore, provider) {
        return Some((ExcludedBy::AllowedProviders, "provider.ignore"));
    }
    if (prefs.quantizations.as_ref()).is_some_and(|q| !q.contains(&quant)) {
        return Some((ExcludedBy::Quantization, "provider.quantizations"));
    }
    over_max_price(prefs, endpoint).then_some((ExcludedBy::MaxPrice, "provider.max_price"))
}

/// Whether one of `endpoint`'s prices is over the caller's `max_price`.
fn over_max_price(prefs: &ProviderPrefs, endpoint: &Endpoint) -> bool {
    let (mp, p) = (&prefs.max_price, &endpoint.pricing);
    over(Some(p.prompt), true, mp.prompt)
        || over(Some(p.completion), true, mp.completion)
        || over(p.request, false, mp.request)
        || over(p.image, false, mp.image)
        || over(p.web_search, false, mp.web_search)
        || over(p.internal_reasoning, true, mp.internal_reasoning)
        || over(p.input_cache_read, true, mp.input_cache_read)
        || over(p.input_cache_write, true, mp.input_cache_write)
}

/// The session's last endpoint first, if it serves the first model and is up, unless
/// the caller ordered or sorted the providers themselves.
fn stick<'a>(
    mut out: Vec<Choice<'a>>,
    prefs: &ProviderPrefs,
    ctx: &RouteContext,
) -> Vec<Choice<'a>> {
    let Some(key) = ctx
        .sticky
        .filter(|_| prefs.order.is_empty() && prefs.sort.is_none())
    else {
        return out;
    };
    let first = out.first().map(|c| c.id.clone());
    let found = out.iter().position(|c| {
        Some(&c.id) == first.as_ref()
            && c.key() == key
            && !ctx.health.get(key).is_some_and(|s| s.is_down(ctx.now_ms))
    });
    if let Some(i) = found.filter(|i| *i > 0) {
        let c = out.remove(i);
        out.insert(0, c);
    }
    out
}

/// Where to go on after the endpoint at `i` of `plan` failed, if anywhere: a failure
/// another endpoint of the same model might not have (`retryable`: 5xx, 429, timeout,
/// no connection) moves to the next endpoint; any other (the request refused as too
/// long, moderated, or invalid for this model) to the first endpoint of the next model
/// in the `models` list, as OpenRouter's model fallbacks do.
pub fn after_failure(plan: &[Choice], i: usize, retryable: bool) -> Option<usize> {
    let next = i.saturating_add(1);
    if retryable {
        return (next < plan.len()).then_some(next);
    }
    let failed = &plan.get(i)?.id;
    plan.iter()
        .enumerate()
        .skip(next)
        .find(|(_, c)| c.id != *failed)
        .map(|(j, _)| j)
}

/// Endpoints that meet `preferred_min_throughput` and `preferred_max_latency` first
/// (across models, so a fallback model may serve before the one asked for), in the
/// order they had; the others after them.
fn prefer<'a>(out: Vec<Choice<'a>>, prefs: &ProviderPrefs, ctx: &RouteContext) -> Vec<Choice<'a>> {
    if prefs.preferred_min_throughput.is_none() && prefs.preferred_max_latency.is_none() {
        return out;
    }
    let figures = |p: Option<health::Percentiles>| p.map(|p| [p.p50, p.p75, p.p90, p.p99]);
    let (mut good, slow): (Vec<_>, Vec<_>) = out.into_iter().partition(|c| {
        let s = ctx.health.get(&c.key());
        let tps = figures(s.and_then(|s| s.throughput_pct_30m));
        let lat = figures(s.and_then(|s| s.latency_pct_30m));
        prefs
            .preferred_min_throughput
            .is_none_or(|cut| cut.met_by(tps, |fig, min| fig >= min))
            && prefs
                .preferred_max_latency
                .is_none_or(|cut| cut.met_by(lat, |ms, max_s| ms <= max_s * 1000.0))
    });
    good.extend(slow);
    good
}

/// Sorts by price (cheapest first), throughput (fastest first) or latency (lowest
/// first); endpoints without figures go last.
fn sort_by(eps: &mut [Choice], sort: Sort, ctx: &RouteContext) {
    let stat = |c: &Choice, f: fn(&Summary) -> Option<f64>| ctx.health.get(&c.key()).and_then(f);
    match sort {
        Sort::Price => eps.sort_by_key(|c| c.endpoint.price_picos()),
        Sort::Throughput => eps.sort_by(|a, b| {
            let (x, y) = (stat(a, |s| s.throughput_30m), stat(b, |s| s.throughput_30m));
            y.unwrap_or(-1.0).total_cmp(&x.unwrap_or(-1.0))
        }),
        Sort::Latency => eps.sort_by(|a, b| {
            let (x, y) = (stat(a, |s| s.latency_ms_30m), stat(b, |s| s.latency_ms_30m));
            x.unwrap_or(f64::MAX).total_cmp(&y.unwrap_or(f64::MAX))
        }),
        Sort::ToolQuality => {
            eps.sort_by_key(|c| c.endpoint.price_picos());
            tool_quality::sort(eps, ctx);
        }
    }
}

/// Endpoints that just failed go last, in the order they had.
fn down_last<'a>(eps: Vec<Choice<'a>>, ctx: &RouteContext) -> Vec<Choice<'a>> {
    let (mut up, down): (Vec<_>, Vec<_>) = eps.into_iter().partition(|c| {
        !ctx.health
            .get(&c.key())
            .is_some_and(|s| s.is_down(ctx.now_ms))
    });
    up.extend(down);
    up
}

/// One model's endpoints in the order to try them: sorted (`sort`) or shuffled by
/// price, the caller's `order` first, far worse tool callers last for a request with
/// `tools` and neither (see [`tool_quality`]), and down endpoints last.
fn order<'a>(
    mut eps: Vec<Choice<'a>>,
    (prefs, sort, tools): (&ProviderPrefs, Option<Sort>, bool),
    ctx: &RouteContext,
    random: &mut dyn FnMut() -> f64,
) -> Vec<Choice<'a>> {
    match sort {
        Some(sort) => sort_by(&mut eps, sort, ctx),
        None if tools && prefs.order.is_empty() => {
            eps = tool_quality::worse_last(weighted_shuffle(eps, random), ctx);
        }
        None => eps = weighted_shuffle(eps, random),
    }
    if !prefs.order.is_empty() {
        let pos = |c: &Choice| {
            prefs
                .order
                .iter()
                .position(|o| tiers::named(std::slice::from_ref(o), c.provider, c.endpoint))
        };
        let (mut listed, rest): (Vec<_>, Vec<_>) = eps.into_iter().partition(|c| pos(c).is_some());
        listed.sort_by_key(|c| pos(c));
        eps = listed;
        if prefs.allow_fallbacks {
            eps.extend(rest);
        }
    }
    let mut eps = down_last(eps, ctx);
    if !prefs.allow_fallbacks && prefs.order.is_empty() {
        eps.truncate(1);
    }
    eps
}

/// Cheaper is likelier: weight 1/price², as OpenRouter balances by default.
fn weighted_shuffle<'a>(
    mut eps: Vec<Choice<'a>>,
    random: &mut dyn FnMut() -> f64,
) -> Vec<Choice<'a>> {
    // Cheapest first, so that a given random number always means the same pick.
    eps.sort_by_key(|c| c.endpoint.price_picos());
    let mut out = Vec::with_capacity(eps.len());
    while !eps.is_empty() {
        let weights: Vec<f64> = eps
            .iter()
            .map(|c| 1.0 / (c.endpoint.price_picos() as f64 / 1e6 + 0.01).powi(2))
            .collect();
        let total: f64 = weights.iter().sum();
        let mut pick = random().clamp(0.0, 1.0) * total;
        let mut idx = eps.len().saturating_sub(1);
        for (i, w) in weights.iter().enumerate() {
            if pick < *w {
                idx = i;
                break;
            }
            pick -= w;
        }
        out.push(eps.remove(idx));
    }
    out
}

#[cfg(test)]
mod tests;
