//! The response cache's pure parts (OpenRouter's `X-OpenRouter-Cache` protocol): the
//! request headers read into a directive, the key of a request (the caller's key, the
//! surface, the stream flag and a hash of the body's canonical JSON), and the stored
//! entry, surface-neutral (the gathered chat reply, or the embeddings), replayed on a
//! hit with a new identity and nothing billed, whole or as the chunks of a stream.

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::{ChatChunk, ChatCompletion, ChunkChoice, Delta, GenerationMeta, ToolCallDelta, Usage};
use crate::error::Error;

/// The TTL of an entry when the request names none (seconds).
pub const DEFAULT_TTL_SECS: u32 = 300;
/// The longest TTL a request may ask for (a day).
pub const MAX_TTL_SECS: u32 = 86_400;
/// The largest entry stored, as JSON: a larger reply is served, not cached.
pub const MAX_ENTRY_BYTES: usize = 2 * 1024 * 1024;

/// What a request asks of the cache, when it asks for it (`X-OpenRouter-Cache: true`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Directive {
    /// `X-OpenRouter-Cache-TTL`: how long the reply it stores is served.
    pub ttl_secs: u32,
    /// `X-OpenRouter-Cache-Clear: true`: the stored reply is not served; the new one
    /// replaces it.
    pub clear: bool,
}

/// Reads the request's cache headers (`enabled`, `ttl`, `clear`: their values, if
/// sent): `None` without `X-OpenRouter-Cache: true`. A value out of its shape is a 400
/// naming its header.
pub fn directive(
    enabled: Option<&str>,
    ttl: Option<&str>,
    clear: Option<&str>,
) -> Result<Option<Directive>, Error> {
    let on = boolean("X-OpenRouter-Cache", enabled)?.unwrap_or(false);
    let clear = boolean("X-OpenRouter-Cache-Clear", clear)?.unwrap_or(false);
    let ttl_secs = match ttl.map(str::trim) {
        None => DEFAULT_TTL_SECS,
        Some(t) => t
            .parse::<u32>()
            .ok()
            .filter(|n| (1..=MAX_TTL_SECS).contains(n))
            .ok_or_else(|| {
                Error::bad_request(format!(
                    "X-OpenRouter-Cache-TTL: must be a whole number of seconds from 1 to {MAX_TTL_SECS}"
                ))
            })?,
    };
    Ok(on.then_some(Directive { ttl_secs, clear }))
}

fn boolean(header: &str, v: Option<&str>) -> Result<Option<bool>, Error> {
    let Some(v) = v.map(str::trim) else {
        return Ok(None);
    };
    if v.eq_ignore_ascii_case("true") {
        Ok(Some(true))
    } else if v.eq_ignore_ascii_case("false") {
        Ok(Some(false))
    } else {
        Err(Error::bad_request(format!(
            "{header}: must be true or false"
        )))
    }
}

/// `value` as canonical JSON: object keys sorted (by their bytes), no whitespace,
/// strings escaped as serde_json writes them, numbers as they were read. Two bodies
/// that differ only in key order or spacing have one canonical form.
pub fn canonical(value: &Value, out: &mut Vec<u8>) {
    match value {
        Value::Object(o) => {
            let mut keys: Vec<&String> = o.keys().collect();
            keys.sort_unstable();
            out.push(b'{');
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                scalar(&Value::String(k.clone()), out);
                out.push(b':');
                if let Some(v) = o.get(k) {
                    canonical(v, out);
                }
            }
            out.push(b'}');
        }
        Value::Array(a) => {
            out.push(b'[');
            for (i, v) in a.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                canonical(v, out);
            }
            out.push(b']');
        }
        v => scalar(v, out),
    }
}

fn scalar(v: &Value, out: &mut Vec<u8>) {
    // Writing a string, number, bool or null to a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, v);
}

/// The key of a request: a SHA-256 over the caller's key hash, the surface (its API
/// type) and stream flag, the preset version merged into it (`id@version`: an edited
/// preset makes a new key) and the body's canonical JSON, in hex. The body was read
/// and checked by the surface already; one that is not JSON has no key.
pub fn key(
    caller: &str,
    (surface, stream): (&str, bool),
    preset: Option<&str>,
    body: &[u8],
) -> Result<String, Error> {
    let value: Value = serde_json::from_slice(body)?;
    let mut canon = Vec::with_capacity(body.len());
    canonical(&value, &mut canon);
    let mut h = Sha256::new();
    for part in [
        b"modelmux-response-cache-v1".as_slice(),
        caller.as_bytes(),
        surface.as_bytes(),
        if stream { b"stream" } else { b"whole" },
        preset.unwrap_or_default().as_bytes(),
        &canon,
    ] {
        h.update((part.len() as u64).to_be_bytes());
        h.update(part);
    }
    Ok(h.finalize().iter().map(|b| format!("{b:02x}")).collect())
}

/// A stored reply: what served it first, when, for how long, and the reply.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Entry {
    /// The generation that made it (`X-OpenRouter-Cache-Source-Id`,
    /// `response_cache_source_id`).
    pub source_id: String,
    pub stored_ms: u64,
    pub ttl_secs: u32,
    pub reply: Stored,
}

/// A reply kept for any surface: the chat reply every generating surface is written
/// from, or an embeddings reply.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stored {
    Chat(Box<ChatCompletion>),
    Embeddings(StoredEmbeddings),
}

/// An embeddings reply as kept: its items as they were written (opaque), its model
/// and provider.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StoredEmbeddings {
    pub data: Box<RawValue>,
    pub model: String,
    pub provider: String,
}

impl Entry {
    /// Seconds since it was stored (`X-OpenRouter-Cache-Age`).
    pub fn age_secs(&self, now_ms: u64) -> u64 {
        now_ms.saturating_sub(self.stored_ms) / 1000
    }

    /// Whether it is still served at `now_ms`.
    pub fn fresh(&self, now_ms: u64) -> bool {
        let ttl_ms = u64::from(self.ttl_secs).saturating_mul(1000);
        now_ms >= self.stored_ms && now_ms < self.stored_ms.saturating_add(ttl_ms)
    }

    /// Seconds left to serve it.
    pub fn ttl_left(&self, now_ms: u64) -> u64 {
        let end = self
            .stored_ms
            .saturating_add(u64::from(self.ttl_secs).saturating_mul(1000));
        end.saturating_sub(now_ms).div_ceil(1000)
    }

    /// The entry as stored, if it is small enough to be.
    pub fn to_bytes(&self) -> Option<Vec<u8>> {
        serde_json::to_vec(self)
            .ok()
            .filter(|b| b.len() <= MAX_ENTRY_BYTES)
    }

    pub fn from_bytes(b: &[u8]) -> Option<Entry> {
        serde_json::from_slice(b).ok()
    }
}

/// What a hit bills: nothing (every count 0, cost 0), as OpenRouter reports it.
pub fn free_usage() -> Usage {
    Usage {
        cost: Some(crate::money::Usd(0)),
        ..Usage::default()
    }
}

/// Whether a chat reply may be stored: every choice ended, none of them in error.
pub fn storable(c: &ChatCompletion) -> bool {
    !c.choices.is_empty()
        && c.choices
            .iter()
            .all(|ch| ch.finish_reason.as_deref().is_some_and(|f| f != "error"))
}

/// The stored chat reply as a hit's: its identity `meta`'s (a new generation ID and
/// time), nothing billed.
pub fn hit_completion(c: &ChatCompletion, meta: &GenerationMeta) -> ChatCompletion {
    ChatCompletion {
        id: meta.id.clone(),
        created: meta.created,
        usage: Some(free_usage()),
        ..c.clone()
    }
}

/// The stored chat reply as the chunks of a stream stamped with `meta`: for each
/// choice, its message in one delta, its tool calls whole, then its finish. The
/// surface's stream encoder writes them as it writes a live stream's.
pub fn replay_chunks(c: &ChatCompletion, meta: &GenerationMeta) -> Vec<ChatChunk> {
    let mut out = Vec::with_capacity(c.choices.len().saturating_mul(2));
    for ch in &c.choices {
        let m = &ch.message;
        let tool_calls = m.tool_calls.as_ref().map(|calls| {
            let deltas = calls.iter().enumerate().map(|(i, t)| ToolCallDelta {
                index: u32::try_from(i).unwrap_or(u32::MAX),
                id: Some(t.id.clone()),
                kind: Some(t.kind.clone()),
                function: Some(super::FunctionCallDelta {
                    name: Some(t.function.name.clone()),
                    arguments: Some(t.function.arguments.clone()),
                }),
            });
            deltas.collect::<Vec<_>>()
        });
        let delta = Delta {
            role: Some("assistant".into()),
            content: Some(m.content.clone().unwrap_or_default()),
            reasoning: m.reasoning.clone(),
            tool_calls,
            images: m.images.clone(),
            annotations: m.annotations.clone(),
            reasoning_details: m.reasoning_details.clone(),
        };
        let choice = |delta, finish: Option<String>, native: Option<String>| ChunkChoice {
            index: ch.index,
            delta,
            finish_reason: finish,
            native_finish_reason: native,
            logprobs: None,
        };
        out.push(meta.chunk(vec![choice(delta, None, None)]));
        let (finish, native) = (ch.finish_reason.clone(), ch.native_finish_reason.clone());
        out.push(meta.chunk(vec![choice(Delta::default(), finish, native)]));
    }
    out
}

#[cfg(test)]
mod tests;
