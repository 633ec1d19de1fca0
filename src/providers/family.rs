//! What every provider family can do, as one sans-IO trait, and the registry that
//! names the implementation of a catalogue's [`ApiFamily`]. Each family module holds
//! its own implementation; nothing outside them (and this registry) matches on the
//! family.

use serde_json::Value;

use super::media::Remote;
use super::stream::Translator;
use super::{CountAsk, Target, UpstreamRequest};
use crate::api::count::PromptFormula;
use crate::api::embeddings::{EmbeddingItem, EmbeddingsRequest};
use crate::api::{ChatCompletion, ChatRequest, GenerationMeta};
use crate::catalog::{ApiFamily, Endpoint, Model};
use crate::error::{Error, Result};

/// A provider family: a pure translator between our OpenAI-shaped types and one
/// upstream wire format. The edge does the I/O.
pub trait Family: Sync {
    /// Whether the family answers in the isolate, without any upstream (the echo model).
    fn in_isolate(&self) -> bool {
        false
    }

    /// The upstream request for `req` at `target`, streamed or not.
    fn build_request(
        &self,
        target: &Target,
        req: &ChatRequest,
        stream: bool,
    ) -> Result<UpstreamRequest>;

    /// A successful (2xx) non-streamed upstream reply.
    fn parse_response(
        &self,
        _provider: &str,
        _meta: &GenerationMeta,
        _body: &[u8],
    ) -> Result<ChatCompletion> {
        Err(Error::Internal(
            "no response parser for this provider".into(),
        ))
    }

    /// The stream translator for `target`; `None` for a family that does not stream.
    fn translator(&self, _target: &Target, _meta: &GenerationMeta) -> Option<Translator> {
        None
    }

    /// The output tokens the upstream call will ask for (what the reservation counts):
    /// the request's ask lowered to the endpoint's maximum, else the endpoint's maximum.
    fn output_tokens(&self, req: &ChatRequest, model: &Model, endpoint: &Endpoint) -> Option<u64> {
        endpoint
            .cap_output(model, req.max_output_tokens())
            .or(endpoint.max_completion_tokens)
    }

    /// The media URLs in `req` the family cannot read itself, to fetch and send inline.
    fn remote_media(&self, _req: &ChatRequest) -> Vec<Remote> {
        Vec::new()
    }

    /// Whether the family continues a conversation that ends with a partial assistant
    /// turn (Anthropic's prefill, Gemini's `model` turn), so that a stream failing over
    /// to it needs no instruction to go on.
    fn continues_assistant_turn(&self) -> bool {
        false
    }

    /// Whether the family takes a Messages-surface request as the caller wrote it.
    fn native_passthrough(&self) -> bool {
        false
    }

    /// A native request (`body` from [`crate::api::messages::native_body`]) with the
    /// caller's headers, for a family with [`Family::native_passthrough`].
    fn build_native(
        &self,
        target: &Target,
        _body: &Value,
        _client_headers: &[(String, String)],
    ) -> Result<UpstreamRequest> {
        Err(no_native(target.provider.slug.as_str()))
    }

    /// The upstream's own reply to a native request, naming the catalogue's `model`.
    fn native_reply(&self, provider: &str, _body: &[u8], _model: &str) -> Result<Value> {
        Err(no_native(provider))
    }

    /// The upstream request for an embeddings request.
    fn build_embeddings(
        &self,
        target: &Target,
        _req: &EmbeddingsRequest,
    ) -> Result<UpstreamRequest> {
        Err(Error::NoProvider(format!(
            "Provider {} does not serve embeddings",
            target.provider.slug
        )))
    }

    /// An embeddings reply: its items and the prompt tokens it counted, if it did.
    fn parse_embeddings(
        &self,
        provider: &str,
        _req: &EmbeddingsRequest,
        body: &[u8],
    ) -> Result<(Vec<EmbeddingItem>, Option<u64>)> {
        Err(super::invalid_reply(provider, "no embeddings parser", body))
    }

    /// Whether the family's upstream counts a prompt's tokens itself (without
    /// generating, and without charge).
    fn counts_tokens(&self) -> bool {
        false
    }

    /// The upstream request that counts the prompt of `ask` at `target`, for a family
    /// that [`Family::counts_tokens`].
    fn build_count(&self, target: &Target, _ask: &CountAsk) -> Result<UpstreamRequest> {
        Err(Error::NoProvider(format!(
            "Provider {} does not count tokens",
            target.provider.slug
        )))
    }

    /// The tokens a successful (2xx) count reply counted.
    fn parse_count(&self, provider: &str, body: &[u8]) -> Result<u64> {
        Err(super::invalid_reply(
            provider,
            "no token count parser",
            body,
        ))
    }

    /// The family's own web search tool, if it has one (sent where an endpoint has
    /// `native_web_search`; [`crate::api::native_search`]).
    fn native_search(&self) -> Option<crate::api::native_search::NativeTool> {
        None
    }

    /// How the family bills what the gateway estimates by formula (images, tools).
    fn prompt_formula(&self) -> PromptFormula {
        PromptFormula::OpenAi
    }
}

fn no_native(provider: &str) -> Error {
    Error::Internal(format!("provider {provider} takes no native requests"))
}

/// A family this build does not know: never routed to.
struct Unknown;

impl Family for Unknown {
    fn build_request(&self, target: &Target, _: &ChatRequest, _: bool) -> Result<UpstreamRequest> {
        Err(Error::NoProvider(format!(
            "Provider {} speaks an API this build cannot translate",
            target.provider.slug
        )))
    }
}

/// The registry: the implementation of `api`.
pub fn family(api: ApiFamily) -> &'static dyn Family {
    match api {
        ApiFamily::Openai => &super::openai_compat::OpenAiCompat,
        ApiFamily::Anthropic => &super::anthropic::Anthropic,
        ApiFamily::Gemini => &super::gemini::Gemini,
        ApiFamily::Echo => &super::echo::Echo,
        ApiFamily::Unknown => &Unknown,
    }
}

/// Every endpoint of `model` takes the Messages surface's own body
/// ([`Family::native_passthrough`]): Anthropic's server tools in it are Anthropic's to
/// run, not the gateway's loop.
pub fn all_native(cat: &crate::catalog::Catalog, model: &str) -> bool {
    let Some(m) = cat.model(model) else {
        return false;
    };
    !m.endpoints.is_empty()
        && m.endpoints.iter().all(|e| {
            cat.provider(&e.provider)
                .is_some_and(|p| family(p.api).native_passthrough())
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::providers::testutil::{request, with_target};
    use serde_json::json;

    #[test]
    fn a_model_only_anthropic_serves_keeps_its_server_tools() {
        let cat = crate::providers::testutil::catalog();
        let asked = [
            "anthropic/claude-sonnet-4.5",
            "openai/gpt-5",
            "no/such-model",
        ];
        let native: Vec<bool> = asked.iter().map(|m| all_native(&cat, m)).collect();
        assert_eq!(native, [true, false, false]);
    }

    #[test]
    fn each_family_says_what_it_takes() {
        let all = [
            ApiFamily::Openai,
            ApiFamily::Anthropic,
            ApiFamily::Gemini,
            ApiFamily::Echo,
            ApiFamily::Unknown,
        ];
        let native: Vec<bool> = all
            .iter()
            .map(|a| family(*a).native_passthrough())
            .collect();
        assert_eq!(native, [false, true, false, false, false]);
        let local: Vec<bool> = all.iter().map(|a| family(*a).in_isolate()).collect();
        assert_eq!(local, [false, false, false, true, false]);
        // Only Gemini has remote media fetched for it (and not YouTube videos).
        let req = request(
            json!({"model": "a/b", "messages": [{"role": "user", "content": [
            {"type": "image_url", "image_url": {"url": "https://img.test/cat.png"}},
            {"type": "video_url", "video_url": {"url": "https://youtu.be/x"}}]}]}),
        );
        let remote: Vec<usize> = all
            .iter()
            .map(|a| family(*a).remote_media(&req).len())
            .collect();
        assert_eq!(remote, [0, 0, 1, 0, 0]);
    }

    #[test]
    fn families_without_an_upstream_or_a_translator_refuse_to_build() {
        let req = request(json!({"model": "a/b", "messages": [{"role": "user", "content": "hi"}]}));
        with_target("openai/gpt-4o-mini", |t| {
            let meta = crate::providers::testutil::meta("openai/gpt-4o-mini");
            assert!(family(ApiFamily::Openai)
                .build_request(t, &req, true)
                .is_ok());
            assert!(family(ApiFamily::Openai).translator(t, &meta).is_some());
            for api in [ApiFamily::Echo, ApiFamily::Unknown] {
                assert!(
                    family(api).build_request(t, &req, false).is_err(),
                    "{api:?}"
                );
                assert!(family(api).translator(t, &meta).is_none(), "{api:?}");
            }
            let unknown = family(ApiFamily::Unknown).build_request(t, &req, false);
            assert_eq!(unknown.unwrap_err().status(), 503);
            assert!(family(ApiFamily::Openai)
                .build_native(t, &json!({}), &[])
                .is_err());
        });
    }
}
