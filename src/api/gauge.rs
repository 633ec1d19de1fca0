//! What the gateway reads off a request before any provider has seen it: a rough size in
//! tokens, and the fields that are the gateway's own (never sent upstream).

use serde_json::{Map, Value};

use super::ChatRequest;

/// Removes the fields that only the gateway reads before a body goes upstream.
pub fn strip_gateway_fields(body: &mut Map<String, Value>) {
    for k in [
        "provider",
        "models",
        "route",
        "transforms",
        "plugins",
        "usage",
        "preset",
    ] {
        body.remove(k);
    }
}

/// A rough prompt size in tokens (about four bytes a token), used before the
/// upstream has counted: for context checks, and when an upstream reports no usage.
pub fn estimate_tokens(text: &str) -> u64 {
    (text.len() as u64).div_ceil(4)
}

/// A rough size of a request's messages in tokens (at least 1).
pub fn estimate_prompt_tokens(req: &ChatRequest) -> u64 {
    req.messages
        .iter()
        .map(|m| estimate_tokens(&m.text()).saturating_add(4))
        .sum::<u64>()
        .max(1)
}
