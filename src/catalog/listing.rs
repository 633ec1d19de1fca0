//! The catalogue as OpenRouter publishes it: `GET /models`, `GET /models/{id}/endpoints`
//! and `GET /providers`, with every key the official SDK requires.

use serde_json::{json, Value};

use super::{Catalog, Endpoint, Model, Pricing, Provider};
use crate::error::{Error, Result};
use crate::routing::health::Percentiles;

/// Filters of `GET /models`, read from its query string.
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
    pub min_context_length: Option<u64>,
    /// USD per million tokens, at the model's first endpoint.
    pub max_prompt_price: Option<f64>,
    pub max_completion_price: Option<f64>,
    pub order: Option<Order>,
    /// Only the models the caller's account may use (`/models/user`).
    pub allow_training: Option<bool>,
}

/// `order` of `/models`: the catalogue's own order by default.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Order {
    Newest,
    Price,
    ContextLength,
    Name,
}

impl ModelFilter {
    pub fn from_query(query: &str) -> Self {
        let mut f = ModelFilter::default();
        for pair in query.split('&') {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let list = || -> Vec<String> {
                percent_decode(v)
                    .split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(str::to_string)
                    .collect()
            };
            match k {
                "supported_parameters" => f.supported_parameters = list(),
                "input_modalities" => f.input_modalities = list(),
                "q" | "search" => {
                    f.q = Some(percent_decode(v).trim().to_lowercase()).filter(|q| !q.is_empty())
                }
                "category" => f.category = Some(percent_decode(v).trim().to_lowercase()),
                "min_context_length" | "context_length" => {
                    f.min_context_length = percent_decode(v).trim().parse().ok()
                }
                "max_prompt_price" | "max_price" => {
                    f.max_prompt_price = percent_decode(v).trim().parse().ok()
                }
                "max_completion_price" => {
                    f.max_completion_price = percent_decode(v).trim().parse().ok()
                }
                "order" => {
                    f.order = match percent_decode(v).trim() {
                        "newest" => Some(Order::Newest),
                        "price" | "pricing-low-to-high" => Some(Order::Price),
                        "context_length" | "context-high-to-low" => Some(Order::ContextLength),
                        "name" => Some(Order::Name),
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

    fn keeps(&self, m: &Model) -> bool {
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
        use crate::routing::per_million;
        let top = m.endpoints.first();
        let text = |s: &str| s.to_lowercase();
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
            && self.max_prompt_price.is_none_or(|max| {
                top.map_or(0.0, |e| per_million(&e.pricing.prompt)) <= max + 1e-12
            })
            && self.max_completion_price.is_none_or(|max| {
                top.map_or(0.0, |e| per_million(&e.pricing.completion)) <= max + 1e-12
            })
    }

    /// Whether the account (by its privacy setting) may use one of `m`'s endpoints.
    fn usable(&self, cat: &Catalog, m: &Model) -> bool {
        let Some(allow_training) = self.allow_training else {
            return true;
        };
        m.endpoints.iter().any(|e| {
            cat.provider(&e.provider)
                .is_some_and(|p| allow_training || !crate::routing::data_policy(p, e).training)
        })
    }

    /// The models of `cat` this filter keeps, in its order.
    pub fn apply<'a>(&self, cat: &'a Catalog) -> Vec<&'a Model> {
        let mut out: Vec<&Model> = cat
            .models
            .iter()
            .filter(|m| self.keeps(m) && self.usable(cat, m))
            .collect();
        let price = |m: &Model| m.endpoints.first().map_or(0.0, crate::routing::price_of);
        match self.order {
            Some(Order::Newest) => out.sort_by_key(|m| std::cmp::Reverse(m.created)),
            Some(Order::Price) => out.sort_by(|a, b| price(a).total_cmp(&price(b))),
            Some(Order::ContextLength) => out.sort_by_key(|m| std::cmp::Reverse(m.context_length)),
            Some(Order::Name) => out.sort_by(|a, b| a.name.cmp(&b.name)),
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
    let zero = || "0".to_string();
    let mut v = json!({
        "prompt": p.prompt,
        "completion": p.completion,
        "request": p.request.clone().unwrap_or_else(zero),
        "image": p.image.clone().unwrap_or_else(zero),
        "web_search": p.web_search.clone().unwrap_or_else(zero),
        "internal_reasoning": p.internal_reasoning.clone().unwrap_or_else(zero),
    });
    if let Some(r) = &p.input_cache_read {
        crate::api::set_field(&mut v, "input_cache_read", json!(r));
    }
    if let Some(o) = &p.image_output {
        crate::api::set_field(&mut v, "image_output", json!(o));
    }
    if let Some(w) = &p.input_cache_write {
        crate::api::set_field(&mut v, "input_cache_write", json!(w));
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

/// `GET /models`
pub fn models(cat: &Catalog, filter: &ModelFilter) -> Value {
    let data: Vec<Value> = filter.apply(cat).into_iter().map(model_entry).collect();
    // The whole list fits one page, so there is never a next one.
    json!({ "data": data, "total_count": data.len(), "links": { "next": null } })
}

/// `GET /models/count`: how many models `/models` lists with the same filters.
pub fn count(cat: &Catalog, filter: &ModelFilter) -> Value {
    json!({ "data": { "count": filter.apply(cat).len() } })
}

/// `GET /embeddings/models`: the embedding models, in the shape of `/models`.
pub fn embedding_models(cat: &Catalog) -> Value {
    models(
        cat,
        &ModelFilter {
            output_modalities: Some(vec!["embeddings".into()]),
            ..Default::default()
        },
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
    /// Failed just now: routing tries it last.
    pub down: bool,
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
        "tag": e.provider,
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
        "service_tier": null,
        "native_tools": {},
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
        let ids = |q: &str| -> Vec<String> {
            ModelFilter::from_query(q)
                .apply(&c)
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
        let cheap = ids("max_prompt_price=0.5");
        assert!(!cheap.is_empty() && cheap.len() < all.len());
        let newest = ids("order=newest");
        let created: Vec<u64> = newest
            .iter()
            .map(|id| c.model(id).unwrap().created)
            .collect();
        assert!(created.windows(2).all(|w| w[0] >= w[1]));
        assert_eq!(
            count(&c, &ModelFilter::from_query("q=gpt"))["data"]["count"],
            ids("q=gpt").len()
        );
        // An account that does not allow training sees no model only trainers serve.
        let private = ModelFilter {
            allow_training: Some(false),
            ..Default::default()
        };
        let open = ModelFilter {
            allow_training: Some(true),
            ..Default::default()
        };
        assert!(private.apply(&c).len() < open.apply(&c).len());
        assert_eq!(open.apply(&c).len(), all.len());
    }

    #[test]
    fn models_have_every_required_key() {
        let v = models(&cat(), &ModelFilter::default());
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
        let all = models(&c, &ModelFilter::default())["data"]
            .as_array()
            .unwrap()
            .len();
        let tools = ModelFilter::from_query("supported_parameters=tools%2Ctemperature");
        assert_eq!(tools.supported_parameters, vec!["tools", "temperature"]);
        let n = models(&c, &tools)["data"].as_array().unwrap().len();
        assert!(n > 0 && n < all);
        let none = ModelFilter::from_query("output_modalities=audio");
        assert_eq!(models(&c, &none)["data"].as_array().unwrap().len(), 0);
        let every = ModelFilter::from_query("output_modalities=all");
        let embeddings = embedding_models(&c)["data"].as_array().unwrap().len();
        assert!(embeddings >= 4);
        assert_eq!(
            models(&c, &every)["data"].as_array().unwrap().len(),
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
