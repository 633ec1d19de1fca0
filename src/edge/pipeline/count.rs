//! Token counting (`POST /messages/count_tokens`, `POST /responses/input_tokens`): the
//! model routed as a generation of it would be, the first planned endpoint of a family
//! that counts asked to count it, and the gateway's own estimate where no endpoint can
//! or the one asked fails. For a live key; nothing is reserved, charged or recorded.

use worker::{Env, Response};

use super::attempt::target_of;
use crate::api::count::{self, CountSource, CountSurface, Counting, PromptFormula};
use crate::api::ChatRequest;
use crate::edge::account_api::{caller_of, live_key};
use crate::edge::request::ClientRequest;
use crate::edge::{catalog, config, http, upstream};
use crate::error::Error;
use crate::providers::{self, CountAsk};
use crate::routing::{self, Choice, RouteContext};
use crate::settings::Settings;

/// Counts the prompt of a count request of `surface`; the reply says who counted it
/// (`X-Token-Count-Source: provider | estimate`).
pub async fn count(
    mut req: ClientRequest,
    env: &Env,
    surface: CountSurface,
) -> Result<Response, Error> {
    let (account, caller) = caller_of(&mut req, env).await?;
    let allow_training = live_key(&mut req, env, &account, &caller).await?;
    let cfg = config::settings(env);
    let body = http::read_body(&mut req, cfg.max_body_bytes).await?;
    let counting = surface.parse(&body)?;
    let chat = &counting.chat;
    let cat = catalog::load(env).await?;
    // Health is not read: any endpoint of a family counts alike, and one that fails
    // leaves the estimate.
    let health = Default::default();
    let route = RouteContext {
        // The prompt goes to a provider: the account's data policy applies.
        allow_training,
        health: &health,
        now_ms: config::now_ms() as u64,
        embeddings: false,
        sticky: None,
    };
    let plan = match routing::plan(&cat, chat, &route, &mut || worker::js_sys::Math::random()) {
        Ok(plan) => plan,
        // A model that does not exist (or that no endpoint may serve) is refused as a
        // generation would be; a prompt that fits no endpoint is still counted.
        Err(e) if e.status() == 404 => return Err(e),
        Err(_) => Vec::new(),
    };
    let counter = plan
        .iter()
        .find(|c| providers::family(c.provider.api).counts_tokens());
    let asked = match counter {
        Some(choice) => ask(env, &cfg, choice, &counting, &super::client_headers(&req))
            .await
            .ok(),
        None => None,
    };
    let (n, source) = match asked {
        Some(n) => (n, CountSource::Provider),
        None => (
            estimate(chat, counter.or(plan.first())),
            CountSource::Estimate,
        ),
    };
    let resp = http::json(&surface.reply(n), 200)?;
    http::set(resp.headers(), count::SOURCE_HEADER, source.as_str());
    Ok(resp)
}

/// The estimate by the formula of `choice`'s family (OpenAI's where none was planned).
fn estimate(chat: &ChatRequest, choice: Option<&Choice<'_>>) -> u64 {
    let formula = choice.map_or(PromptFormula::OpenAi, |c| {
        providers::family(c.provider.api).prompt_formula()
    });
    count::estimate(chat, formula)
}

/// The count of `choice`'s upstream: the Messages body as the caller wrote it where
/// the family takes it so, else the prompt built for the family.
async fn ask(
    env: &Env,
    cfg: &Settings,
    choice: &Choice<'_>,
    counting: &Counting,
    client_headers: &[(String, String)],
) -> Result<u64, Error> {
    let family = providers::family(choice.provider.api);
    // Media the family would fetch through the gateway are not fetched for a count.
    if !family.remote_media(&counting.chat).is_empty() {
        return Err(Error::bad_request("remote media are not fetched to count"));
    }
    let target = target_of(env, choice);
    let native = counting
        .native
        .as_ref()
        .filter(|_| family.native_passthrough())
        .map(|b| {
            let e = target.endpoint;
            crate::api::messages::native_body(b, &e.upstream_model, e.output_ceiling(target.model))
        });
    let ask = CountAsk {
        chat: &counting.chat,
        native: native.as_ref(),
        client_headers,
    };
    let up = family.build_count(&target, &ask)?;
    let slug = target.provider.slug.as_str();
    let limits = (cfg.max_reply_bytes, cfg.isolate_reply_bytes);
    let (_, body, _hold) =
        upstream::exchange(&up.into(), slug, cfg.upstream_timeout_ms, limits).await?;
    family.parse_count(slug, &body)
}
