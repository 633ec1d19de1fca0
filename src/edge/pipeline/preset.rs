//! A request that names a preset (`model: "@preset/slug"`, `preset: "slug"`, `model:
//! "m@preset/slug"`) gets the newest version of the caller's account's preset merged
//! in ([`crate::api::preset::apply`]) before it is planned: one round trip to the
//! account's object, for such requests only. The merged request is checked again as a
//! sent one is, so a preset can never make a request past the gateway's bounds.

use worker::Env;

use super::Parsed;
use crate::api::preset;
use crate::error::Error;

/// Merges the preset `parsed` names, if any (embeddings name none).
pub(super) async fn resolve(
    env: &Env,
    account: &str,
    caller: &str,
    parsed: &mut Parsed,
) -> Result<(), Error> {
    let Parsed::Generate(i) = parsed else {
        return Ok(());
    };
    let Some(r) = preset::reference(&i.request.chat)? else {
        return Ok(());
    };
    if let Some(why) = &i.request.anthropic_only {
        return Err(Error::bad_request(format!(
            "preset: cannot be used with a request only Anthropic serves ({why})"
        )));
    }
    let used = super::super::preset_api::used(env, account, caller, &r.slug).await?;
    let config = preset::as_request(&used.config)?;
    let chat = &mut i.request.chat;
    preset::apply(chat, config, used.system_prompt.as_deref(), &r);
    crate::api::validate::check(chat)?;
    // A new version of the preset is a new request for the response cache.
    i.preset = Some(format!("{}@{}", used.id, used.version));
    // The Messages body as sent no longer says what is asked: the merged request is
    // translated for every endpoint.
    i.request.native = None;
    Ok(())
}
