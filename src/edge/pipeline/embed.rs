//! The embeddings exchange: one request to one endpoint, its reply priced and settled.

use worker::Response;

use super::attempt::Run;
use crate::accounts::served::Served;
use crate::api::embeddings::EmbeddingsRequest;
use crate::api::GenerationMeta;
use crate::edge::{config, http, upstream};
use crate::error::Error;
use crate::providers::{self, Target};
use crate::routing::Choice;

/// One embeddings exchange with one endpoint; settles when it answers.
pub(super) async fn embed(
    run: &Run<'_>,
    target: &Target<'_>,
    request: &EmbeddingsRequest,
    meta: &GenerationMeta,
    choice: &Choice<'_>,
    started: f64,
) -> Result<Response, Error> {
    let (cfg, settler) = (run.cfg, run.settler);
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
    let pricing = &choice.pricing();
    // The reply keeps its own counts; the amounts are ours.
    reply.usage.price(&served.priced_usage(pricing));
    settler.conclude(&served, pricing, Some((choice.key(), true)));
    if let Some(c) = &run.cache {
        c.embeddings(&reply);
    }
    http::json(&reply, 200)
}
