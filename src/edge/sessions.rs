//! Sticky routing: the endpoint that last served each session (`session_id` or
//! `prompt_cache_key`, per account and model), kept in the isolate so that the next
//! request of the session goes there while it is up and its prompt cache is warm.
//! Bounded: at most [`MAX_SESSIONS`] entries, each forgotten [`IDLE_MS`] after its
//! last request (the usual life of a provider's prompt cache).

use std::cell::RefCell;
use std::collections::HashMap;

const MAX_SESSIONS: usize = 10_000;
const IDLE_MS: u64 = 5 * 60 * 1000;

thread_local! {
    /// Session key → (endpoint key, last used at, ms).
    static LAST: RefCell<HashMap<String, (String, u64)>> = RefCell::new(HashMap::new());
}

/// The key a session is remembered by: its account, the model asked for and its ID.
pub fn key(account: &str, model: &str, session: &str) -> String {
    format!("{account}\u{1f}{model}\u{1f}{session}")
}

/// The endpoint that served the session last, if it did within [`IDLE_MS`].
pub fn last(key: &str, now_ms: u64) -> Option<String> {
    LAST.with(|m| {
        m.borrow()
            .get(key)
            .filter(|(_, at)| now_ms.saturating_sub(*at) < IDLE_MS)
            .map(|(endpoint, _)| endpoint.clone())
    })
}

/// Remembers that `endpoint` served the session.
pub fn served(key: &str, endpoint: String, now_ms: u64) {
    LAST.with(|m| {
        let mut m = m.borrow_mut();
        if m.len() >= MAX_SESSIONS && !m.contains_key(key) {
            m.retain(|_, (_, at)| now_ms.saturating_sub(*at) < IDLE_MS);
            if m.len() >= MAX_SESSIONS {
                // All fresh: the oldest goes.
                if let Some(oldest) = m
                    .iter()
                    .min_by_key(|(_, (_, at))| *at)
                    .map(|(k, _)| k.clone())
                {
                    m.remove(&oldest);
                }
            }
        }
        m.insert(key.to_string(), (endpoint, now_ms));
    });
}
