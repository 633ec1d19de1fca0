//! Which endpoints serve a request, in the order to try them.

use crate::api::ChatRequest;
use crate::catalog::{ApiFamily, Catalog, Endpoint, Model};
use crate::error::{Error, Result};
use crate::providers::estimate_prompt_tokens;

/// One place to send the request: a model and one of its endpoints.
#[derive(Debug, Clone, Copy)]
pub struct Choice<'a> {
    pub model: &'a Model,
    pub endpoint: &'a Endpoint,
}

impl Choice<'_> {
    /// Free models share the per-account free-model limits.
    pub fn is_free(&self) -> bool {
        self.model.id.ends_with(":free") || self.endpoint.pricing.is_free()
    }
}

/// The endpoints to try for `req`, in order: each requested model (`model`, then the
/// `models` fallbacks) with its endpoints in catalogue order. Unknown models are
/// skipped when another candidate exists; a prompt that fits no endpoint is a 400.
pub fn plan<'a>(cat: &'a Catalog, req: &ChatRequest) -> Result<Vec<Choice<'a>>> {
    let candidates = req.model_candidates();
    let prompt = estimate_prompt_tokens(req);
    let mut out = Vec::new();
    let mut too_long = None;
    for id in &candidates {
        let Some(model) = cat.model(id) else { continue };
        for endpoint in &model.endpoints {
            let family = cat.provider(&endpoint.provider).map(|p| p.api);
            if matches!(family, None | Some(ApiFamily::Unknown)) {
                continue;
            }
            let ctx = endpoint.context_length.unwrap_or(model.context_length);
            if prompt > ctx {
                too_long = Some((model.id.clone(), ctx));
                continue;
            }
            out.push(Choice { model, endpoint });
        }
    }
    if out.is_empty() {
        if let Some((id, ctx)) = too_long {
            return Err(Error::bad_request(format!(
                "This endpoint's maximum context length is {ctx} tokens. However, you requested about {prompt} tokens. Please reduce the length of the messages ({id})."
            )));
        }
        let names = candidates.join(", ");
        return Err(Error::NotFound(format!("{names} is not a valid model ID")));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn cat() -> Catalog {
        Catalog::from_json(include_bytes!("../../catalog/catalog.json")).unwrap()
    }

    fn req(v: serde_json::Value) -> ChatRequest {
        ChatRequest::parse(v.to_string().as_bytes()).unwrap()
    }

    #[test]
    fn model_then_fallbacks_in_order() {
        let c = cat();
        let r = req(
            json!({"model": "meta-llama/llama-3.3-70b-instruct", "models": ["nope/x", "openai/gpt-4o"],
            "messages": [{"role": "user", "content": "hi"}]}),
        );
        let p = plan(&c, &r).unwrap();
        let got: Vec<_> = p
            .iter()
            .map(|c| (c.model.id.as_str(), c.endpoint.provider.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                ("meta-llama/llama-3.3-70b-instruct", "groq"),
                ("meta-llama/llama-3.3-70b-instruct", "together"),
                ("openai/gpt-4o", "openai"),
            ]
        );
    }

    #[test]
    fn unknown_model_is_404_and_long_prompt_400() {
        let c = cat();
        let e = plan(
            &c,
            &req(json!({"model": "no/such", "messages": [{"role": "user", "content": "x"}]})),
        )
        .unwrap_err();
        assert_eq!(e.status(), 404);
        let long = "x".repeat(4 * 40_000);
        let e = plan(
            &c,
            &req(
                json!({"model": "modelmux/echo", "messages": [{"role": "user", "content": long}]}),
            ),
        )
        .unwrap_err();
        assert_eq!(e.status(), 400);
        assert!(e.to_string().contains("maximum context length is 32768"));
    }

    #[test]
    fn free_detection() {
        let c = cat();
        for (id, free) in [
            ("modelmux/echo", true),
            ("google/gemini-2.5-flash:free", true),
            ("openai/gpt-4o", false),
        ] {
            let r = req(json!({"model": id, "messages": [{"role": "user", "content": "x"}]}));
            assert_eq!(plan(&c, &r).unwrap()[0].is_free(), free, "{id}");
        }
    }
}
