//! OpenAI/OpenRouter wire types: chat requests, replies, stream chunks and usage.

pub mod chat;
pub mod completions;
pub mod embeddings;
pub mod messages;
pub mod responses;
pub mod route;
pub mod sse;
pub mod surface;
pub mod validate;

pub use chat::*;

/// Sets `key` on a JSON object (nothing happens on any other value): the panic-free
/// form of `value[key] = v`.
pub fn set_field(value: &mut serde_json::Value, key: &str, v: serde_json::Value) {
    if let Some(o) = value.as_object_mut() {
        o.insert(key.to_string(), v);
    }
}

/// `usage` as a reply built as a `Value` carries it: its `cost` a tagged amount, written
/// exactly by [`crate::money::Exact`].
pub fn usage_value(u: &Usage) -> serde_json::Value {
    let mut v = serde_json::to_value(u).unwrap_or_default();
    if let Some(cost) = u.cost {
        set_field(&mut v, "cost", crate::money::tagged(cost.0));
    }
    v
}
