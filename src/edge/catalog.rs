//! The catalogue, read from KV and kept in the isolate for `CATALOG_CACHE_SECS`
//! (default 30 s) so that most requests never wait on KV.

use std::cell::RefCell;
use std::rc::Rc;

use worker::Env;

use super::config;
use crate::catalog::{Catalog, KV_KEY};
use crate::error::Error;

thread_local! {
    static CACHE: RefCell<Option<(f64, Rc<Catalog>)>> = const { RefCell::new(None) };
}

pub async fn load(env: &Env) -> Result<Rc<Catalog>, Error> {
    let ttl_ms = config::settings(env).catalog_cache_secs as f64 * 1000.0;
    let now = config::now_ms();
    let cached = CACHE.with(|c| {
        c.borrow()
            .as_ref()
            .filter(|(at, _)| now - at < ttl_ms)
            .map(|(_, cat)| cat.clone())
    });
    if let Some(cat) = cached {
        return Ok(cat);
    }
    let kv = env
        .kv("CATALOG")
        .map_err(|e| Error::Internal(format!("KV binding CATALOG: {e}")))?;
    let text = kv
        .get(KV_KEY)
        .text()
        .await
        .map_err(|e| Error::Internal(format!("reading the catalogue from KV: {e}")))?
        .ok_or_else(|| {
            Error::Internal(
                "the catalogue is not in KV: run `make seed` (or scripts/seed --remote)".into(),
            )
        })?;
    let cat = Rc::new(Catalog::from_json(text.as_bytes())?);
    CACHE.with(|c| *c.borrow_mut() = Some((now, cat.clone())));
    Ok(cat)
}
