//! `openrouter/auto` and `openrouter/free` in the pipeline: the router's choice
//! ([`crate::routing::auto::choose`]) replaces the model asked for before the request
//! is planned, sticky per session in this isolate (as the endpoints of a session are,
//! [`super::super::sessions`]), and is reported as a stage of `openrouter_metadata`'s
//! `pipeline`.

use super::super::sessions;
use super::Parsed;
use crate::catalog::Catalog;
use crate::error::Error;
use crate::routing::{self, auto};

/// A request a router chose the model of: the router's ID, and its stage of
/// `openrouter_metadata.pipeline` (JSON).
pub(super) struct Routed {
    pub requested: String,
    pub stage: String,
}

/// Chooses the models of a request that names a router; `None` for any other.
pub(super) fn route(
    parsed: &mut Parsed,
    cat: &Catalog,
    account: &str,
    now_ms: u64,
) -> Result<Option<Routed>, Error> {
    let Parsed::Generate(i) = parsed else {
        return Ok(None);
    };
    let chat = &mut i.request.chat;
    let Some(router) = chat.model.clone().filter(|m| auto::is_router(m)) else {
        return Ok(None);
    };
    let settings = auto::settings(chat)?;
    // Keyed by the router's ID: the sticky endpoint of the chosen model is keyed by it.
    let key = routing::session_of(chat).map(|s| sessions::key(account, &router, s));
    let sticky = key.as_deref().and_then(|k| sessions::last(k, now_ms));
    let chosen = auto::choose(cat, &router, chat, &settings, sticky.as_deref())?;
    let mut models = chosen.models.iter().cloned();
    chat.model = models.next();
    chat.models = Some(models.collect::<Vec<_>>()).filter(|m| !m.is_empty());
    if let (Some(k), Some(m)) = (&key, &chat.model) {
        sessions::served(k, m.clone(), now_ms);
    }
    let stage = serde_json::json!({
        "name": "auto-router",
        "data": {
            "selected": chat.model,
            "fallbacks": chat.models,
            "cost_tier": chosen.tier.as_str(),
            "needs": chosen.needs,
            "eligible": chosen.eligible,
            "sticky": chosen.sticky,
        }
    });
    Ok(Some(Routed {
        requested: router,
        stage: stage.to_string(),
    }))
}
