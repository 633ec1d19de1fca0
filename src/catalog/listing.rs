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
        params_ok && mods_ok
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
    let data: Vec<Value> = cat
        .models
        .iter()
        .filter(|m| filter.keeps(m))
        .map(model_entry)
        .collect();
    // The whole list fits one page, so there is never a next one.
    json!({ "data": data, "total_count": data.len(), "links": { "next": null } })
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
        "uptime_last_1d": null,
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
