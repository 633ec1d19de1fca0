//! An account's own provider keys (BYOK, OpenRouter's `/api/v1/byok`): the stored
//! credential (its key only as a sealed envelope, never in the clear), the API's
//! request and reply shapes, the masked label that is all a listing ever shows of a
//! key, the envelope's text format, the fee charged for a BYOK generation, and the
//! account object's handling of the calls. Sealing and opening (AES-256-GCM through
//! WebCrypto) happen in the isolate (`edge/byok.rs`); the object only keeps envelopes.

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::ledger::iso8601;
use crate::error::{Error, Result};

/// Credentials one account may keep.
pub const MAX_BYOK_KEYS: usize = 100;
/// Entries an allowlist may hold (OpenRouter's `maxItems`).
pub const MAX_ALLOWED: usize = 100;
/// The longest provider key accepted (bytes).
pub const MAX_KEY_BYTES: usize = 4096;
/// The longest name (OpenRouter's `maxLength`).
pub const MAX_NAME_BYTES: usize = 255;
/// The envelope's version prefix.
const ENVELOPE_V1: &str = "v1:";
/// AES-GCM's nonce, 96 bits.
pub const NONCE_BYTES: usize = 12;
/// AES-GCM's tag, 128 bits, at the end of the sealed bytes.
const TAG_BYTES: usize = 16;

/// One stored credential. `envelope` is the key sealed under the deployment's
/// `BYOK_ENCRYPTION_KEY` ([`Envelope`]); nothing else of the key is kept but `label`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ByokRecord {
    pub id: String,
    pub provider: String,
    #[serde(default)]
    pub name: Option<String>,
    pub label: String,
    pub envelope: String,
    #[serde(default)]
    pub disabled: bool,
    #[serde(default)]
    pub is_fallback: bool,
    /// "Always use for this provider": the provider's shared endpoints are not used
    /// for the models this key serves.
    #[serde(default)]
    pub always_use: bool,
    #[serde(default)]
    pub allowed_models: Option<Vec<String>>,
    #[serde(default)]
    pub allowed_api_key_hashes: Option<Vec<String>>,
    #[serde(default)]
    pub sort_order: u32,
    pub created_ms: u64,
    #[serde(default)]
    pub updated_ms: Option<u64>,
}

impl ByokRecord {
    /// OpenRouter's `BYOKKey` (with modelmux's `always_use`): never the key or its
    /// envelope.
    pub fn to_json(&self) -> Value {
        json!({
            "id": self.id,
            "provider": self.provider,
            "workspace_id": Value::Null,
            "label": self.label,
            "name": self.name,
            "disabled": self.disabled,
            "is_fallback": self.is_fallback,
            "always_use": self.always_use,
            "allowed_models": self.allowed_models,
            "allowed_api_key_hashes": self.allowed_api_key_hashes,
            "allowed_user_ids": Value::Null,
            "sort_order": self.sort_order,
            "created_at": iso8601(self.created_ms),
            "updated_at": self.updated_ms.map(iso8601),
        })
    }

    /// Whether API key `key_hash` may use this credential at all (its model filter is
    /// routing's to apply).
    pub fn usable_by(&self, key_hash: &str) -> bool {
        !self.disabled
            && self
                .allowed_api_key_hashes
                .as_ref()
                .is_none_or(|l| l.iter().any(|h| h == key_hash))
    }
}

/// What a provider key is shown as: its prefix up to the first `-` (at most 8
/// characters), `...`, and its last 4 characters (`sk-...AbCd`); a key too short to
/// hide anything behind that shows only `...`.
pub fn mask(key: &str) -> String {
    let chars: Vec<char> = key.trim().chars().collect();
    if chars.len() < 16 {
        return "...".into();
    }
    let head: String = match chars.iter().take(8).position(|c| *c == '-') {
        Some(dash) => chars.iter().take(dash.saturating_add(1)).collect(),
        None => chars.iter().take(2).collect(),
    };
    let tail: String = chars.iter().skip(chars.len().saturating_sub(4)).collect();
    format!("{head}...{tail}")
}

/// A key sealed with AES-256-GCM: a random 96-bit nonce per write, and the ciphertext
/// with its tag. Its text is `v1:` + base64 of the nonce followed by the sealed bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    pub nonce: [u8; NONCE_BYTES],
    pub sealed: Vec<u8>,
}

impl Envelope {
    pub fn to_text(&self) -> String {
        use base64::Engine;
        let mut raw = self.nonce.to_vec();
        raw.extend_from_slice(&self.sealed);
        format!(
            "{ENVELOPE_V1}{}",
            base64::engine::general_purpose::STANDARD.encode(raw)
        )
    }

    /// Reads an envelope's text; `None` for anything else (another version, bad
    /// base64, too short to hold a tag).
    pub fn parse(text: &str) -> Option<Envelope> {
        use base64::Engine;
        let b64 = text.strip_prefix(ENVELOPE_V1)?;
        let raw = base64::engine::general_purpose::STANDARD.decode(b64).ok()?;
        let nonce: [u8; NONCE_BYTES] = raw.get(..NONCE_BYTES)?.try_into().ok()?;
        let sealed = raw.get(NONCE_BYTES..)?.to_vec();
        (sealed.len() > TAG_BYTES).then_some(Envelope { nonce, sealed })
    }
}

/// The additional data a key is sealed with: its account and credential, so that an
/// envelope moved to another record or account does not open.
pub fn aad(account: &str, id: &str) -> Vec<u8> {
    format!("modelmux-byok-v1\u{1f}{account}\u{1f}{id}").into_bytes()
}

/// The 32-byte AES key of the `BYOK_ENCRYPTION_KEY` secret: 64 hex characters or
/// base64 of 32 bytes. Anything else disables BYOK (never a weaker key).
pub fn secret_key(secret: &str) -> Option<[u8; 32]> {
    use base64::Engine;
    let s = secret.trim();
    if s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit()) {
        let mut out = [0u8; 32];
        for (i, o) in out.iter_mut().enumerate() {
            let pair = s.get(i.saturating_mul(2)..i.saturating_mul(2).saturating_add(2))?;
            *o = u8::from_str_radix(pair, 16).ok()?;
        }
        return Some(out);
    }
    let raw = base64::engine::general_purpose::STANDARD.decode(s).ok()?;
    raw.try_into().ok()
}

/// The body of `POST /byok` and of `PATCH /byok/{id}`, read once from the client's
/// bytes (the object reads a forwarded `PATCH` body with the same code): an absent
/// field stays (on create: its default), `null` clears a `PATCH`'s allowlist.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ByokFields {
    #[serde(default)]
    pub provider: Option<String>,
    #[serde(default)]
    pub key: Option<String>,
    #[serde(default, deserialize_with = "set_or_null")]
    pub name: Option<Option<String>>,
    #[serde(default)]
    pub disabled: Option<bool>,
    #[serde(default)]
    pub is_fallback: Option<bool>,
    #[serde(default)]
    pub always_use: Option<bool>,
    #[serde(default, deserialize_with = "set_or_null")]
    pub allowed_models: Option<Option<Vec<String>>>,
    #[serde(default, deserialize_with = "set_or_null")]
    pub allowed_api_key_hashes: Option<Option<Vec<String>>>,
    #[serde(default, deserialize_with = "set_or_null")]
    pub allowed_user_ids: Option<Option<Vec<String>>>,
    #[serde(default)]
    pub workspace_id: Option<String>,
}

fn set_or_null<'de, D, T>(d: D) -> std::result::Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

fn bad(msg: String) -> Error {
    Error::BadRequest(msg)
}

fn check_name(name: Option<&str>) -> Result<()> {
    if name.is_some_and(|n| n.len() > MAX_NAME_BYTES) {
        return Err(bad(format!("name: must be at most {MAX_NAME_BYTES} bytes")));
    }
    Ok(())
}

fn check_key(key: &str) -> Result<()> {
    let k = key.trim();
    if k.is_empty() {
        return Err(bad("key: must be a non-empty string".into()));
    }
    if k.len() > MAX_KEY_BYTES || k.chars().any(char::is_control) {
        return Err(bad(format!(
            "key: must be at most {MAX_KEY_BYTES} bytes without control characters"
        )));
    }
    Ok(())
}

fn check_models(models: Option<&Vec<String>>) -> Result<()> {
    let Some(m) = models else { return Ok(()) };
    if m.len() > MAX_ALLOWED {
        return Err(bad(format!(
            "allowed_models: at most {MAX_ALLOWED} entries"
        )));
    }
    if m.iter().any(|s| s.trim().is_empty() || s.len() > 256) {
        return Err(bad("allowed_models: each must be a model ID".into()));
    }
    Ok(())
}

/// OpenRouter's rules: 1 to 100 hashes of 64 lowercase hex characters (`[]` is a 400:
/// `null` clears the restriction).
fn check_hashes(hashes: Option<&Vec<String>>) -> Result<()> {
    let Some(h) = hashes else { return Ok(()) };
    if h.is_empty() || h.len() > MAX_ALLOWED {
        return Err(bad(format!(
            "allowed_api_key_hashes: must hold 1 to {MAX_ALLOWED} key hashes (null clears the restriction)"
        )));
    }
    if h.iter()
        .any(|s| s.len() != 64 || !crate::ids::is_lower_hex(s))
    {
        return Err(bad(
            "allowed_api_key_hashes: each must be 64 lowercase hexadecimal characters".into(),
        ));
    }
    Ok(())
}

impl ByokFields {
    /// A body's fields, each checked, or a 400 naming the one that is wrong.
    pub fn parse(body: &[u8]) -> Result<Self> {
        let f: ByokFields = serde_json::from_slice(body).map_err(|e| {
            let msg = e.to_string();
            let field = msg
                .split('`')
                .nth(1)
                .map_or(String::new(), |f| format!("{f}: "));
            bad(format!(
                "{field}{}",
                msg.split(" at line").next().unwrap_or("")
            ))
        })?;
        if let Some(k) = &f.key {
            check_key(k)?;
        }
        check_name(f.name.as_ref().and_then(Option::as_deref))?;
        check_models(f.allowed_models.as_ref().and_then(Option::as_ref))?;
        check_hashes(f.allowed_api_key_hashes.as_ref().and_then(Option::as_ref))?;
        if f.allowed_user_ids
            .as_ref()
            .and_then(Option::as_ref)
            .is_some_and(|l| !l.is_empty())
        {
            return Err(bad(
                "allowed_user_ids: this gateway has no workspace members; pass null".into(),
            ));
        }
        if f.workspace_id.is_some() {
            return Err(bad(
                "workspace_id: this gateway has one workspace per account; omit it".into(),
            ));
        }
        Ok(f)
    }

    /// A create's body: `provider` and `key` are required.
    pub fn parse_create(body: &[u8]) -> Result<(Self, String, String)> {
        let f = Self::parse(body)?;
        let provider = (f.provider.as_deref().map(str::trim))
            .filter(|p| !p.is_empty())
            .ok_or_else(|| bad("provider: must be a provider slug".into()))?
            .to_ascii_lowercase();
        let key = f
            .key
            .clone()
            .ok_or_else(|| bad("key: is required".into()))?;
        Ok((f, provider, key))
    }

    /// An update's body: the provider stays what it is.
    pub fn parse_update(body: &[u8]) -> Result<Self> {
        let f = Self::parse(body)?;
        if f.provider.is_some() {
            return Err(bad(
                "provider: cannot be changed; add a new credential".into()
            ));
        }
        Ok(f)
    }

    /// The record a create stores, its key already sealed into `envelope`.
    pub fn into_record(
        self,
        id: String,
        provider: String,
        sealed: (String, String),
        now_ms: u64,
    ) -> ByokRecord {
        let (envelope, label) = sealed;
        let blank = ByokRecord {
            id,
            provider,
            name: None,
            label,
            envelope,
            disabled: false,
            is_fallback: false,
            always_use: false,
            allowed_models: None,
            allowed_api_key_hashes: None,
            sort_order: 0,
            created_ms: now_ms,
            updated_ms: None,
        };
        ByokRecord {
            updated_ms: None,
            ..self.apply(blank, now_ms)
        }
    }

    /// `r` with these fields applied (a new key's envelope and label are the caller's).
    pub fn apply(self, mut r: ByokRecord, now_ms: u64) -> ByokRecord {
        if let Some(n) = self.name {
            r.name = n;
        }
        if let Some(d) = self.disabled {
            r.disabled = d;
        }
        if let Some(f) = self.is_fallback {
            r.is_fallback = f;
        }
        if let Some(a) = self.always_use {
            r.always_use = a;
        }
        // A fallback key comes after shared capacity: it cannot also forbid it.
        r.always_use = r.always_use && !r.is_fallback;
        if let Some(m) = self.allowed_models {
            r.allowed_models = m;
        }
        if let Some(h) = self.allowed_api_key_hashes {
            r.allowed_api_key_hashes = h;
        }
        r.updated_ms = Some(now_ms);
        r
    }
}

/// A call of the BYOK API, as the account's object gets it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ByokCall {
    /// `GET /byok`: `provider` filters; `offset`/`limit` page.
    List {
        provider: Option<String>,
        offset: u32,
        limit: u32,
    },
    Get(String),
    Create(ByokRecord),
    /// `PATCH /byok/{id}`: its body as the client sent it (checked in the isolate,
    /// read again here), and a rotated key's envelope and label.
    Update {
        id: String,
        body: String,
        sealed: Option<(String, String)>,
    },
    Delete(String),
    /// The credentials a model call of the calling API key may use, envelopes
    /// included (for the isolate, never for a client).
    ForKey,
}

/// A page of `records` as `GET /byok` answers it.
pub fn list_json(records: &[ByokRecord], provider: Option<&str>, offset: u32, limit: u32) -> Value {
    let matching: Vec<&ByokRecord> = records
        .iter()
        .filter(|r| provider.is_none_or(|p| r.provider.eq_ignore_ascii_case(p)))
        .collect();
    let page: Vec<Value> = matching
        .iter()
        .skip(offset as usize)
        .take(limit as usize)
        .map(|r| r.to_json())
        .collect();
    json!({"data": page, "total_count": matching.len()})
}

/// The order credentials are listed and tried in: by provider, each provider's by
/// `sort_order`, then by creation.
pub fn sort(records: &mut [ByokRecord]) {
    let key = |r: &ByokRecord| (r.provider.clone(), r.sort_order, r.created_ms, r.id.clone());
    records.sort_by_key(key);
}

/// The next `sort_order` for a new credential of `provider`.
pub fn next_sort_order(records: &[ByokRecord], provider: &str) -> u32 {
    records
        .iter()
        .filter(|r| r.provider == provider)
        .map(|r| r.sort_order.saturating_add(1))
        .max()
        .unwrap_or(0)
}

#[cfg(test)]
mod tests;
