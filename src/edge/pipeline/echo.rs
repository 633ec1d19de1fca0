//! The demo model that answers in the isolate, without any upstream: its reply, whole
//! or as a stream, and its settlement.

use worker::Response;

use super::settler::Settler;
use crate::accounts::served::{self, Served};
use crate::api::surface;
use crate::api::GenerationMeta;
use crate::edge::{config, http, upstream};
use crate::error::Error;
use crate::providers::echo;
use crate::routing::Choice;
use crate::settings::Settings;

/// Answers with the echo model, settled at once (it costs what its pricing says).
pub(super) async fn serve_echo(
    cfg: &Settings,
    incoming: &surface::Incoming,
    (choice, meta): (&Choice<'_>, &GenerationMeta),
    settler: &Settler,
    cache: Option<&crate::edge::cache::Capture>,
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
    settler.note_output(&reply);
    settler.conclude(&served, pricing, None);
    if let Some(c) = cache {
        c.chat(&reply);
    }
    if !chat.is_stream() {
        return http::reply(&incoming.reply(reply));
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
