//! OpenAI/OpenRouter wire types: chat requests, replies, stream chunks and usage.

pub mod cache_key;
pub mod chat;
pub mod completions;
pub mod compress;
pub mod content;
pub mod count;
pub mod datetime;
pub mod embeddings;
pub mod gather;
mod gauge;
pub mod heal;
pub mod heal_stream;
mod image_size;
pub mod messages;
pub mod native_search;
pub mod plugins;
pub mod preset;
pub mod provider;
pub mod read;
pub mod request;
pub mod responses;
pub mod route;
pub mod routed;
pub mod schema;
pub mod server_tools;
pub mod server_turn;
pub mod service_tier;
pub mod session;
pub mod sse;
pub mod surface;
pub mod tool_check;
pub mod tool_loop;
pub mod validate;

pub use chat::*;
pub use gauge::{
    estimate_prompt_tokens, estimate_tokens, parse_data_url, strip_gateway_fields, CacheWrite,
    PromptSize, IMAGE_TOKENS, MEDIA_BYTES_PER_TOKEN,
};
pub(crate) use read::parse_json;

pub use crate::json::set_field;

/// The prefix of reasoning carried opaquely through a surface that has no place for
/// OpenRouter's `reasoning_details` (a Responses reasoning item's `encrypted_content`):
/// the items as JSON, base64url, so that they come back exactly as they went out.
const PACKED: &str = "mmx1.";

/// `reasoning_details` packed into one opaque string.
pub fn pack_reasoning(details: &[serde_json::Value]) -> String {
    use base64::Engine;
    let json = serde_json::to_vec(details).unwrap_or_default();
    format!(
        "{PACKED}{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(json)
    )
}

/// The `reasoning_details` a string made by [`pack_reasoning`] holds; `None` for
/// anything else (another gateway's or a provider's own opaque reasoning).
pub fn unpack_reasoning(s: &str) -> Option<Vec<serde_json::Value>> {
    use base64::Engine;
    let data = s.strip_prefix(PACKED)?;
    let json = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(data)
        .ok()?;
    serde_json::from_slice(&json).ok()
}

/// A stream's `reasoning_details` (streamed pieces joined), for a surface that carries
/// them in one opaque field per block it closes: each block takes what came since the
/// one before.
#[derive(Debug, Default)]
pub struct ReasoningLog {
    items: Vec<serde_json::Value>,
    taken: usize,
}

impl ReasoningLog {
    /// Adds a delta's items.
    pub fn add(&mut self, items: Option<&Vec<serde_json::Value>>) {
        for item in items.into_iter().flatten() {
            join_reasoning_detail(&mut self.items, item);
        }
    }

    /// The items no block has taken yet, now taken.
    pub fn take_fresh(&mut self) -> &[serde_json::Value] {
        let from = std::mem::replace(&mut self.taken, self.items.len());
        self.items.get(from..).unwrap_or_default()
    }
}

/// Adds a streamed reasoning item to `acc`, joined onto the last one when it continues
/// it (same type, format and index): text appended, signature and data taken.
fn join_reasoning_detail(acc: &mut Vec<serde_json::Value>, item: &serde_json::Value) {
    let key = |v: &serde_json::Value| {
        (
            v.get("type").cloned(),
            v.get("format").cloned(),
            v.get("index").cloned(),
        )
    };
    let Some(last) = acc
        .last_mut()
        .filter(|l| item.get("index").is_some() && key(l) == key(item))
    else {
        acc.push(item.clone());
        return;
    };
    for (k, v) in item.as_object().into_iter().flatten() {
        match (
            k.as_str(),
            last.get(k).and_then(serde_json::Value::as_str),
            v.as_str(),
        ) {
            ("text" | "summary", Some(so_far), Some(more)) => {
                let joined = format!("{so_far}{more}");
                set_field(last, k, serde_json::Value::String(joined));
            }
            _ => set_field(last, k, v.clone()),
        }
    }
}
