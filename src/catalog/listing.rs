//! The catalogue as OpenRouter publishes it: `GET /models`, `GET /models/{id}/endpoints`
//! and `GET /providers`, with every key the official SDK requires.

use std::collections::HashMap;

use serde_json::{json, Value};

use super::figures::{Percentiles, Summary};
use super::{Catalog, Endpoint, Model, Pricing, Provider};
use crate::error::{Error, Result};

/// Filters of `GET /models`, read from its query string (OpenRouter's names; the ones
/// this gateway used before stay as aliases).
#[derive(Debug, Default, Clone, PartialEq)]
pub struct ModelFilter {
    /// Every one of these must be supported.
    pub supported_parameters: Vec<String>,
    /// Any of these output modalities (`all`: every model); `None`: every model that
    /// generates, embedding models left out.
    pub output_modalities: Option<Vec<String>>,
    /// Every one of these must be taken.
    pub input_modalities: Vec<String>,
    /// In the ID, name or description (any case).
    pub q: Option<String>,
    /// One of the model's `categories` in the catalogue.
    pub category: Option<String>,
    /// `context`: the least context length.
    pub min_context_length: Option<u64>,
    /// Picodollars per million tokens (asked for in USD per million), at the model's
    /// first endpoint: `min_price`/`max_price` (prompt), `min_output_price`/
    /// `max_output_price` (completion).
    pub prompt_price: (Option<u128>, Option<u128>),
    pub completion_price: (Option<u128>, Option<u128>),
    /// `model_authors`: the part of the ID before `/`.
    pub authors: Vec<String>,
    /// `providers`: served by one of these (slugs or names).
    pub providers: Vec<String>,
    /// `arch`: the model family, as the catalogue's `tokenizer` names it.
    pub arch: Option<String>,
    pub distillable: Option<bool>,
    /// `zdr=true`: with an endpoint that neither trains on nor keeps prompts.
    pub zdr: bool,
    /// `min_age_days`/`max_age_days`, against `now_secs`.
    pub age_days: (Option<u64>, Option<u64>),
    pub sort: Option<Sort>,
    /// `offset`/`limit` pagination; the whole list when neither is given.
    pub offset: usize,
    pub limit: Option<usize>,
    /// Only the models the caller's account may use (`/models/user`).
    pub allow_training: Option<bool>,
}

/// `sort` of `/models`: the catalogue's own order when absent (or one this gateway
/// has no figures for: popularity, benchmark indices).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sort {
    PriceLowToHigh,
    PriceHighToLow,
    ContextHighToLow,
    ThroughputHighToLow,
    LatencyLowToHigh,
    Newest,
    Name,
}

/// The most models one page of `/models` holds.
pub const MAX_PAGE: usize = 1000;

impl ModelFilter {
    pub fn from_query(query: &str) -> Self {
        let mut f = ModelFilter::default();
        for pair in query.split('&') {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let value = percent_decode(v).trim().to_string();
            let list = || -> Vec<String> {
                value
                    .split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(str::to_string)
                    .collect()
            };
            let num = || crate::money::picos_from_usd_text(&value).map(u128::from);
            match k {
                "supported_parameters" => f.supported_parameters = list(),
                "input_modalities" => f.input_modalities = list(),
                "q" | "search" => f.q = Some(value.to_lowercase()).filter(|q| !q.is_empty()),
                "category" => f.category = Some(value.to_lowercase()),
                "context" | "min_context_length" | "context_length" => {
                    f.min_context_length = value.parse().ok()
                }
                "min_price" => f.prompt_price.0 = num(),
                "max_price" | "max_prompt_price" => f.prompt_price.1 = num(),
                "min_output_price" => f.completion_price.0 = num(),
                "max_output_price" | "max_completion_price" => f.completion_price.1 = num(),
                "model_authors" => f.authors = list(),
                "providers" => f.providers = list(),
                "arch" => f.arch = Some(value.to_lowercase()).filter(|a| !a.is_empty()),
                "distillable" => f.distillable = value.parse().ok(),
                "zdr" => f.zdr = value == "true",
                "min_age_days" => f.age_days.0 = value.parse().ok(),
                "max_age_days" => f.age_days.1 = value.parse().ok(),
                "offset" => f.offset = value.parse().unwrap_or(0),
                "limit" => f.limit = value.parse::<usize>().ok().map(|l| l.min(MAX_PAGE)),
                "sort" | "order" => {
                    f.sort = match value.as_str() {
                        "pricing-low-to-high" | "price" => Some(Sort::PriceLowToHigh),
                        "pricing-high-to-low" => Some(Sort::PriceHighToLow),
                        "context-high-to-low" | "context_length" => Some(Sort::ContextHighToLow),
                        "throughput-high-to-low" => Some(Sort::ThroughputHighToLow),
                        "latency-low-to-high" => Some(Sort::LatencyLowToHigh),
                        "newest" => Some(Sort::Newest),
                        "name" => Some(Sort::Name),
                        _ => None,
                    }
                }
                "output_modalities" => {
                    let mods = list();
                    if !mods.is_empty() {
                        f.output_modalities = Some(mods);
                    }
                }
                _ => {}
            }
        }
        f
    }

    /// Whether sorting needs the endpoints' health figures.
    pub fn needs_health(&self) -> bool {
        matches!(
            self.sort,
            Some(Sort::ThroughputHighToLow | Sort::LatencyLowToHigh)
        )
    }

    fn keeps(&self, cat: &Catalog, m: &Model, now_secs: u64) -> bool {
        let params_ok = self
            .supported_parameters
            .iter()
            .all(|p| m.supported_parameters.contains(p));
        // By default the models that generate (embedding models are listed on asking
        // for them, or for `all`, and at `/embeddings/models`).
        let mods_ok = match &self.output_modalities {
            None => !m.output_modalities.iter().any(|o| o == "embeddings"),
            Some(want) if want.iter().any(|w| w == "all") => true,
            Some(want) => want.iter().any(|w| m.output_modalities.contains(w)),
        };
        use super::per_million;
        let top = m.endpoints.first();
        let text = |s: &str| s.to_lowercase();
        let within = |(lo, hi): (Option<u128>, Option<u128>), v: u128| {
            lo.is_none_or(|lo| v >= lo) && hi.is_none_or(|hi| v <= hi)
        };
        let age_days = now_secs.saturating_sub(m.created) / 86_400;
        let author = m.id.split('/').next().unwrap_or_default();
        let provider_of = |e: &Endpoint| cat.provider(&e.provider);
        params_ok
            && mods_ok
            && self
                .input_modalities
                .iter()
                .all(|i| m.input_modalities.contains(i))
            && self.q.as_ref().is_none_or(|q| {
                [&m.id, &m.name, &m.description]
                    .iter()
                    .any(|s| text(s).contains(q.as_str()))
            })
            && self.category.as_ref().is_none_or(|c| {
                m.extra
                    .get("categories")
                    .and_then(Value::as_array)
                    .is_some_and(|cs| cs.iter().any(|x| x.as_str().is_some_and(|x| text(x) == *c)))
            })
            && self
                .min_context_length
                .is_none_or(|n| m.context_length >= n)
            && within(
                self.prompt_price,
                top.map_or(0, |e| per_million(e.pricing.prompt)),
            )
            && within(
                self.completion_price,
                top.map_or(0, |e| per_million(e.pricing.completion)),
            )
            && (self.authors.is_empty()
                || self.authors.iter().any(|a| a.eq_ignore_ascii_case(author)))
            && (self.providers.is_empty()
                || m.endpoints.iter().filter_map(provider_of).any(|p| {
                    self.providers.iter().any(|want| {
                        want.eq_ignore_ascii_case(&p.slug) || want.eq_ignore_ascii_case(&p.name)
                    })
                }))
            && self.arch.as_ref().is_none_or(|a| {
                m.tokenizer
                    .as_deref()
                    .is_some_and(|t| text(t).contains(a.as_str()))
            })
            && self.distillable.is_none_or(|d| m.distillable == d)
            && (!self.zdr
                || m.endpoints.iter().any(|e| {
                    provider_of(e).is_some_and(|p| {
                        let policy = super::data_policy(p, e);
                        !policy.training && !policy.retains_prompts
                    })
                }))
            && self.age_days.0.is_none_or(|min| age_days >= min)
            && self.age_days.1.is_none_or(|max| age_days <= max)
    }

    /// Whether the account (by its privacy setting) may use one of `m`'s endpoints.
    fn usable(&self, cat: &Catalog, m: &Model) -> bool {
        let Some(allow_training) = self.allow_training else {
            return true;
        };
        m.endpoints.iter().any(|e| {
            cat.provider(&e.provider)
                .is_some_and(|p| allow_training || !super::data_policy(p, e).training)
        })
    }

    /// The models of `cat` this filter keeps, in its order (the throughput and latency
    /// sorts by the best endpoint's figures in `health`; models without any go last).
    pub fn apply<'a>(
        &self,
        cat: &'a Catalog,
        health: &HashMap<String, Summary>,
        now_secs: u64,
    ) -> Vec<&'a Model> {
        let mut out: Vec<&Model> = cat
            .models
            .iter()
            .filter(|m| self.keeps(cat, m, now_secs) && self.usable(cat, m))
            .collect();
        let price = |m: &Model| m.endpoints.first().map_or(0, Endpoint::price_picos);
        let best = |m: &Model, f: fn(&Summary) -> Option<f64>, pick: fn(f64, f64) -> f64| {
            m.endpoints
                .iter()
                .filter_map(|e| health.get(&super::endpoint_key(e)).and_then(f))
                .reduce(pick)
        };
        match self.sort {
            Some(Sort::Newest) => out.sort_by_key(|m| std::cmp::Reverse(m.created)),
            Some(Sort::PriceLowToHigh) => out.sort_by_key(|m| price(m)),
            Some(Sort::PriceHighToLow) => out.sort_by_key(|m| std::cmp::Reverse(price(m))),
            Some(Sort::ContextHighToLow) => {
                out.sort_by_key(|m| std::cmp::Reverse(m.context_length))
            }
            Some(Sort::Name) => out.sort_by(|a, b| a.name.cmp(&b.name)),
            Some(Sort::ThroughputHighToLow) => out.sort_by(|a, b| {
                let tps = |m| best(m, |s| s.throughput_30m, f64::max).unwrap_or(-1.0);
                tps(b).total_cmp(&tps(a))
            }),
            Some(Sort::LatencyLowToHigh) => out.sort_by(|a, b| {
                let ms = |m| best(m, |s| s.latency_ms_30m, f64::min).unwrap_or(f64::MAX);
                ms(a).total_cmp(&ms(b))
            }),
            None => {}
        }
        out
    }
}

/// Decodes `%XX` escapes and `+` of a query-string value (or a path segment); a `%`
/// not followed by two hex digits stays as it is.
pub fn percent_decode(s: &str) -> String {
    let mut out = Vec::with_capacity(s.len());
    let mut bytes = s.bytes();
    while let Some(b) = bytes.next() {
        match b {
            b'+' => out.push(b' '),
            b'%' => {
                let mut ahead = bytes.clone();
                match (ahead.next().and_then(hex), ahead.next().and_then(hex)) {
                    (Some(h), Some(l)) => {
                        out.push(h << 4 | l);
                        bytes = ahead;
                    }
                    _ => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex(b: u8) -> Option<u8> {
    (b as char).to_digit(16).and_then(|d| u8::try_from(d).ok())
}

fn modality(m: &Model) -> String {
    format!(
        "{}->{}",
        m.input_modalities.join("+"),
        m.output_modalities.join("+")
    )
}

fn architecture(m: &Model) -> Value {
    json!({
        "modality": modality(m),
        "input_modalities": m.input_modalities,
        "output_modalities": m.output_modalities,
        "tokenizer": m.tokenizer.clone().unwrap_or_else(|| "Other".into()),
        "instruct_type": null,
    })
}

fn pricing(p: &Pricing) -> Value {
    let mut v = json!({
        "prompt": p.prompt,
        "completion": p.completion,
        "request": p.request.unwrap_or_default(),
        "image": p.image.unwrap_or_default(),
        "web_search": p.web_search.unwrap_or_default(),
        "internal_reasoning": p.internal_reasoning.unwrap_or_default(),
    });
    if let Some(r) = &p.input_cache_read {
        crate::json::set_field(&mut v, "input_cache_read", json!(r));
    }
    if let Some(o) = &p.image_output {
        crate::json::set_field(&mut v, "image_output", json!(o));
    }
    if let Some(w) = &p.input_cache_write {
        crate::json::set_field(&mut v, "input_cache_write", json!(w));
    }
    v
}

/// One model in OpenRouter's `/models` shape. Its price and limits are those of its
/// first (preferred) endpoint.
pub fn model_entry(m: &Model) -> Value {
    let top: Option<&Endpoint> = m.endpoints.first();
    json!({
        "id": m.id,
        "canonical_slug": m.id,
        "hugging_face_id": m.hugging_face_id.clone().unwrap_or_default(),
        "name": m.name,
        "created": m.created,
        "description": m.description,
        "context_length": m.context_length,
        "architecture": architecture(m),
        "pricing": top.map(|e| pricing(&e.pricing)).unwrap_or(Value::Null),
        "top_provider": {
            "context_length": top.and_then(|e| e.context_length).unwrap_or(m.context_length),
            "max_completion_tokens": top.and_then(|e| e.max_completion_tokens),
            "is_moderated": false,
        },
        "per_request_limits": null,
        "supported_parameters": m.supported_parameters,
        "default_parameters": m.default_parameters.clone().unwrap_or(Value::Null),
        "supported_voices": null,
        "knowledge_cutoff": m.knowledge_cutoff,
        "links": { "details": format!("/api/v1/models/{}/endpoints", m.id) },
    })
}

/// `GET /models`: one page of what `filter` keeps (all of it without `offset` and
/// `limit`), `total_count` of all of it, and the next page's link.
pub fn models(
    cat: &Catalog,
    filter: &ModelFilter,
    health: &HashMap<String, Summary>,
    now_secs: u64,
) -> Value {
    let all = filter.apply(cat, health, now_secs);
    let total = all.len();
    let limit = filter.limit.unwrap_or(MAX_PAGE.max(total));
    let data: Vec<Value> = all
        .into_iter()
        .skip(filter.offset)
        .take(limit)
        .map(model_entry)
        .collect();
    let end = filter.offset.saturating_add(data.len());
    let next = (end < total && !data.is_empty())
        .then(|| format!("/api/v1/models?offset={end}&limit={limit}"));
    json!({ "data": data, "total_count": total, "links": { "next": next } })
}

/// `GET /models/count`: how many models `/models` lists with the same filters.
pub fn count(
    cat: &Catalog,
    filter: &ModelFilter,
    health: &HashMap<String, Summary>,
    now_secs: u64,
) -> Value {
    json!({ "data": { "count": filter.apply(cat, health, now_secs).len() } })
}

/// `GET /embeddings/models`: the embedding models, in the shape of `/models`.
pub fn embedding_models(cat: &Catalog) -> Value {
    models(
        cat,
        &ModelFilter {
            output_modalities: Some(vec!["embeddings".into()]),
            ..Default::default()
        },
        &HashMap::new(),
        0,
    )
}

/// Per-endpoint health figures, filled by routing once it measures them.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct EndpointHealth {
    pub uptime_last_30m: Option<f64>,
    pub uptime_last_5m: Option<f64>,
    pub uptime_last_1d: Option<f64>,
    /// Percentiles of time to first byte (ms) and of tokens per second, as OpenRouter
    /// reports them (its SDKs read objects, not plain numbers).
    pub latency_last_30m: Option<Percentiles>,
    pub throughput_last_30m: Option<Percentiles>,
    /// Of the last day's replies with tool calls, the percentage with a call that
    /// failed its check (see `api::tool_check`).
    pub tool_call_error_rate_last_1d: Option<f64>,
    /// Failed just now: routing tries it last.
    pub down: bool,
}

impl EndpointHealth {
    /// As `/endpoints` shows `s` at `now_ms`: shares as percentages.
    pub fn of(s: &super::figures::Summary, now_ms: u64) -> Self {
        let pct = |v: Option<f64>| v.map(|u| u * 100.0);
        EndpointHealth {
            uptime_last_30m: pct(s.uptime_30m),
            uptime_last_5m: pct(s.uptime_5m),
            uptime_last_1d: pct(s.uptime_1d),
            latency_last_30m: s.latency_pct_30m,
            throughput_last_30m: s.throughput_pct_30m,
            tool_call_error_rate_last_1d: pct(s.tool_call_error_rate_1d()),
            down: s.is_down(now_ms),
        }
    }
}

fn endpoint_entry(m: &Model, e: &Endpoint, p: Option<&Provider>, h: &EndpointHealth) -> Value {
    let provider_name = p
        .map(|p| p.name.clone())
        .unwrap_or_else(|| e.provider.clone());
    let params = e
        .supported_parameters
        .clone()
        .unwrap_or_else(|| m.supported_parameters.clone());
    let tool_choice = params.iter().any(|p| p == "tool_choice");
    let context_length = e.context_length.unwrap_or(m.context_length);
    json!({
        "name": format!("{provider_name} | {}", m.id),
        "model_id": m.id,
        "model_name": m.name,
        "context_length": context_length,
        "pricing": pricing(&e.pricing),
        "provider_name": provider_name,
        "tag": e.tag(),
        "quantization": e.quantization,
        "max_completion_tokens": e.max_completion_tokens,
        "max_prompt_tokens": null,
        "supported_parameters": params,
        "status": if h.down { -1 } else { 0 },
        "uptime_last_30m": h.uptime_last_30m,
        "uptime_last_5m": h.uptime_last_5m,
        "uptime_last_1d": h.uptime_last_1d,
        "latency_last_30m": h.latency_last_30m,
        "throughput_last_30m": h.throughput_last_30m,
        "tool_call_error_rate_last_1d": h.tool_call_error_rate_last_1d,
        "service_tier": e.service_tier.map(super::Tier::as_str),
        "native_tools": if e.native_web_search { json!({"web_search": true}) } else { json!({}) },
        "supports_diarization": false,
        "supports_implicit_caching": e.pricing.input_cache_read.is_some(),
        "supports_tool_choice": {
            "auto": tool_choice, "none": tool_choice, "required": tool_choice, "function": tool_choice
        },
    })
}

/// `GET /models/{author}/{slug}/endpoints`
pub fn endpoints(
    cat: &Catalog,
    model_id: &str,
    health: impl Fn(&Endpoint) -> EndpointHealth,
) -> Result<Value> {
    let m = cat
        .model(model_id)
        .ok_or_else(|| Error::NotFound(format!("Model {model_id} not found")))?;
    let eps: Vec<Value> = m
        .endpoints
        .iter()
        .map(|e| endpoint_entry(m, e, cat.provider(&e.provider), &health(e)))
        .collect();
    Ok(json!({ "data": {
        "id": m.id,
        "name": m.name,
        "created": m.created,
        "description": m.description,
        "architecture": architecture(m),
        "endpoints": eps,
    }}))
}

/// `GET /providers`
pub fn providers(cat: &Catalog) -> Value {
    let data: Vec<Value> = cat
        .providers
        .iter()
        .map(|p| {
            json!({
                "name": p.name,
                "slug": p.slug,
                "privacy_policy_url": p.privacy_policy_url,
                "terms_of_service_url": p.terms_of_service_url,
                "status_page_url": p.status_page_url,
                "headquarters": p.headquarters,
            })
        })
        .collect();
    json!({ "data": data })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cat() -> Catalog {
        Catalog::from_json(include_bytes!("../../catalog/catalog.json")).unwrap()
    }

    #[test]
    fn filters_and_orders_like_openrouter() {
        let c = cat();
        let none = HashMap::new();
        let now = 1_800_000_000;
        let ids = |q: &str| -> Vec<String> {
            ModelFilter::from_query(q)
                .apply(&c, &none, now)
                .iter()
                .map(|m| m.id.clone())
                .collect()
        };
        let all = ids("");
        assert!(ids("q=CLAUDE").iter().all(|id| id.contains("claude")));
        assert!(!ids("q=claude").is_empty());
        for id in ids("input_modalities=image,file") {
            let m = c.model(&id).unwrap();
            assert!(m.input_modalities.iter().any(|i| i == "image"));
            assert!(m.input_modalities.iter().any(|i| i == "file"));
        }
        assert!(ids("min_context_length=1000000").iter().all(|id| c
            .model(id)
            .unwrap()
            .context_length
            >= 1_000_000));
        assert_eq!(ids("context=1000000"), ids("min_context_length=1000000"));
        let cheap = ids("max_price=0.5");
        assert!(!cheap.is_empty() && cheap.len() < all.len());
        assert_eq!(cheap, ids("max_prompt_price=0.5"));
        let pricey = ids("min_price=0.5&min_output_price=10");
        assert!(!pricey.is_empty() && pricey.iter().all(|id| !cheap.contains(id)));
        let by_price = ids("sort=pricing-high-to-low");
        let prices: Vec<u64> = by_price
            .iter()
            .map(|id| c.model(id).unwrap().endpoints[0].price_picos())
            .collect();
        assert!(prices.windows(2).all(|w| w[0] >= w[1]));
        assert!(ids("model_authors=anthropic,google")
            .iter()
            .all(|id| id.starts_with("anthropic/") || id.starts_with("google/")));
        assert!(ids("providers=groq").iter().all(|id| c
            .model(id)
            .unwrap()
            .endpoints
            .iter()
            .any(|e| e.provider == "groq")));
        assert!(!ids("providers=Groq").is_empty());
        assert!(ids("arch=claude")
            .iter()
            .all(|id| id.starts_with("anthropic/")));
        assert!(ids("zdr=true").len() < all.len());
        // Pages: the total counts every match; the next link follows the last one.
        let page = models(&c, &ModelFilter::from_query("offset=2&limit=3"), &none, now);
        assert_eq!(page["total_count"], all.len());
        let got: Vec<&str> = page["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["id"].as_str().unwrap())
            .collect();
        assert_eq!(
            got,
            all[2..5].iter().map(String::as_str).collect::<Vec<_>>()
        );
        assert_eq!(page["links"]["next"], "/api/v1/models?offset=5&limit=3");
        let last = models(
            &c,
            &ModelFilter::from_query(&format!("offset={}&limit=3", all.len() - 1)),
            &none,
            now,
        );
        assert_eq!(last["links"]["next"], Value::Null);
        let newest = ids("sort=newest");
        let created: Vec<u64> = newest
            .iter()
            .map(|id| c.model(id).unwrap().created)
            .collect();
        assert!(created.windows(2).all(|w| w[0] >= w[1]));
        assert_eq!(ids("order=newest"), newest);
        assert_eq!(
            count(&c, &ModelFilter::from_query("q=gpt"), &none, now)["data"]["count"],
            ids("q=gpt").len()
        );
        // Throughput and latency sorts read the endpoints' health.
        let fast = c.model("google/gemini-2.5-flash").unwrap();
        let h = HashMap::from([(
            crate::catalog::endpoint_key(&fast.endpoints[0]),
            Summary {
                throughput_30m: Some(300.0),
                latency_ms_30m: Some(90.0),
                ..Default::default()
            },
        )]);
        for q in ["sort=throughput-high-to-low", "sort=latency-low-to-high"] {
            let f = ModelFilter::from_query(q);
            assert!(f.needs_health());
            assert_eq!(f.apply(&c, &h, now)[0].id, fast.id);
        }
        // An account that does not allow training sees no model only trainers serve.
        let private = ModelFilter {
            allow_training: Some(false),
            ..Default::default()
        };
        let open = ModelFilter {
            allow_training: Some(true),
            ..Default::default()
        };
        assert!(private.apply(&c, &none, now).len() < open.apply(&c, &none, now).len());
        assert_eq!(open.apply(&c, &none, now).len(), all.len());
    }

    #[test]
    fn models_have_every_required_key() {
        let v = models(&cat(), &ModelFilter::default(), &HashMap::new(), 0);
        let required = [
            "architecture",
            "canonical_slug",
            "context_length",
            "created",
            "default_parameters",
            "id",
            "links",
            "name",
            "per_request_limits",
            "pricing",
            "supported_parameters",
            "supported_voices",
            "top_provider",
        ];
        for m in v["data"].as_array().unwrap() {
            for k in required {
                assert!(m.get(k).is_some(), "{} lacks {k}", m["id"]);
            }
            assert!(m["pricing"]["prompt"].is_string());
            assert!(m["architecture"].get("modality").is_some());
            assert!(m["top_provider"]["is_moderated"].is_boolean());
        }
    }

    #[test]
    fn filters_by_parameters_and_modality() {
        let c = cat();
        let all = models(&c, &ModelFilter::default(), &HashMap::new(), 0)["data"]
            .as_array()
            .unwrap()
            .len();
        let tools = ModelFilter::from_query("supported_parameters=tools%2Ctemperature");
        assert_eq!(tools.supported_parameters, vec!["tools", "temperature"]);
        let n = models(&c, &tools, &HashMap::new(), 0)["data"]
            .as_array()
            .unwrap()
            .len();
        assert!(n > 0 && n < all);
        let none = ModelFilter::from_query("output_modalities=audio");
        assert_eq!(
            models(&c, &none, &HashMap::new(), 0)["data"]
                .as_array()
                .unwrap()
                .len(),
            0
        );
        let every = ModelFilter::from_query("output_modalities=all");
        let embeddings = embedding_models(&c)["data"].as_array().unwrap().len();
        assert!(embeddings >= 4);
        assert_eq!(
            models(&c, &every, &HashMap::new(), 0)["data"]
                .as_array()
                .unwrap()
                .len(),
            all + embeddings
        );
    }

    #[test]
    fn endpoints_shape_and_404() {
        let c = cat();
        let v = endpoints(&c, "openai/gpt-4o-mini", |_| EndpointHealth::default()).unwrap();
        let e = &v["data"]["endpoints"][0];
        for k in [
            "context_length",
            "latency_last_30m",
            "max_completion_tokens",
            "model_id",
            "name",
            "native_tools",
            "pricing",
            "provider_name",
            "quantization",
            "tag",
            "supports_tool_choice",
            "uptime_last_30m",
            "throughput_last_30m",
        ] {
            assert!(e.get(k).is_some(), "lacks {k}");
        }
        assert_eq!(
            endpoints(&c, "nope/nope", |_| EndpointHealth::default())
                .unwrap_err()
                .status(),
            404
        );
    }

    #[test]
    fn percent_decoding() {
        assert_eq!(percent_decode("a%2Cb+c%"), "a,b c%");
        assert_eq!(percent_decode("%zz"), "%zz");
    }
}
