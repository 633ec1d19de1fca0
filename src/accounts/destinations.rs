//! Trace export destinations (`/observability/destinations`): what an account
//! configures (an OTLP/HTTP collector, a webhook or its R2 bucket), read and checked
//! from the provisioning key's body, changed field by field, and shown without the
//! secrets its headers carry. Pure; `edge::traces` keeps the list and sends the spans.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::traces::{rate_ppm, PPM};
use crate::api::read::{boolean, list, number, object, string, Bad, Fields, Read};
use crate::error::{Error, Result};

/// The most destinations one account has.
pub const MAX_DESTINATIONS: usize = 10;
const MAX_HEADERS: usize = 16;
const MAX_TEXT: usize = 2048;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// OTLP over HTTP, JSON encoding: `POST {endpoint}` (ending in `/v1/traces`).
    Otlp,
    /// A JSON `POST` of the same export body.
    Webhook,
    /// One object per batch in the deployment's `TRACES` R2 bucket, under `prefix`.
    Bucket,
}

/// One destination as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Destination {
    pub id: String,
    pub name: String,
    #[serde(rename = "type")]
    pub kind: Kind,
    #[serde(default)]
    pub endpoint: Option<String>,
    /// Sent with each export (credentials: never shown back).
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    #[serde(default)]
    pub prefix: Option<String>,
    /// The API keys (hashes) whose generations go here; empty: every key's.
    #[serde(default)]
    pub api_key_hashes: Vec<String>,
    pub sampling_ppm: u32,
    pub privacy_mode: bool,
    pub enabled: bool,
    pub created_at: u64,
}

impl Destination {
    /// Whether a generation of `key_hash` goes here (before sampling).
    pub fn takes(&self, key_hash: &str) -> bool {
        self.enabled
            && (self.api_key_hashes.is_empty() || self.api_key_hashes.iter().any(|k| k == key_hash))
    }

    /// The destination as the API shows it: header names only.
    pub fn view(&self) -> Value {
        let rate = f64::from(self.sampling_ppm) / f64::from(PPM);
        serde_json::json!({
            "id": self.id,
            "name": self.name,
            "type": self.kind,
            "endpoint": self.endpoint,
            "header_names": self.headers.keys().collect::<Vec<_>>(),
            "prefix": self.prefix,
            "api_key_hashes": self.api_key_hashes,
            "sampling_rate": rate,
            "privacy_mode": self.privacy_mode,
            "enabled": self.enabled,
            "created_at": self.created_at,
        })
    }

    /// A new destination from a `POST` body.
    pub fn create(body: Value, id: String, now: u64) -> Result<Destination> {
        let mut f = object(body)?;
        let kind = f.required("type", &kind)?;
        let mut d = Destination {
            id,
            name: String::new(),
            kind,
            endpoint: None,
            headers: BTreeMap::new(),
            prefix: None,
            api_key_hashes: Vec::new(),
            sampling_ppm: PPM,
            privacy_mode: false,
            enabled: true,
            created_at: now,
        };
        d.apply(f)?;
        Ok(d)
    }

    /// A `PATCH` body applied field by field (`type` cannot change).
    pub fn patch(&mut self, body: Value) -> Result<()> {
        let mut f = object(body)?;
        if f.take("type").is_some() {
            return Err(Error::bad_request("type: cannot be changed"));
        }
        self.apply(f)
    }

    fn apply(&mut self, mut f: Fields) -> Result<()> {
        if let Some(n) = f.read("name", &text)? {
            self.name = n;
        }
        if let Some(e) = f.read("endpoint", &url)? {
            self.endpoint = Some(e);
        }
        if let Some(h) = f.read("headers", &headers)? {
            self.headers = h;
        }
        if let Some(p) = f.read("prefix", &text)? {
            self.prefix = Some(p);
        }
        if let Some(k) = f.read("api_key_hashes", &|v| list(v, &text))? {
            self.api_key_hashes = k;
        }
        if let Some(r) = f.read("sampling_rate", &sampling)? {
            self.sampling_ppm = r;
        }
        if let Some(p) = f.read("privacy_mode", &boolean)? {
            self.privacy_mode = p;
        }
        if let Some(e) = f.read("enabled", &boolean)? {
            self.enabled = e;
        }
        if let Some(k) = f.0.keys().next() {
            return Err(Error::bad_request(format!("{k}: unknown field")));
        }
        if self.kind != Kind::Bucket && self.endpoint.is_none() {
            return Err(Error::bad_request("endpoint: is required"));
        }
        Ok(())
    }
}

fn kind(v: Value) -> Read<Kind> {
    match string(v)?.as_str() {
        "otlp" => Ok(Kind::Otlp),
        "webhook" => Ok(Kind::Webhook),
        "bucket" => Ok(Kind::Bucket),
        other => Err(Bad::new(format!(
            "must be otlp, webhook or bucket, not {other:?}"
        ))),
    }
}

fn text(v: Value) -> Read<String> {
    let s = string(v)?;
    match s.len() <= MAX_TEXT {
        true => Ok(s),
        false => Err(Bad::new("must be at most 2048 bytes")),
    }
}

fn url(v: Value) -> Read<String> {
    let s = text(v)?;
    let ok = url::Url::parse(&s).is_ok_and(|u| matches!(u.scheme(), "https" | "http"));
    match ok {
        true => Ok(s),
        false => Err(Bad::new("must be an http(s) URL")),
    }
}

fn headers(v: Value) -> Read<BTreeMap<String, String>> {
    let Fields(m): Fields = object(v)?;
    if m.len() > MAX_HEADERS {
        return Err(Bad::new("must have at most 16 headers"));
    }
    let token = |k: &str| {
        !k.is_empty()
            && k.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_".contains(&b))
    };
    let mut out = BTreeMap::new();
    for (k, v) in m {
        if !token(&k) {
            return Err(Bad::new("is not a header name").in_field(&k));
        }
        let v = text(v).map_err(|b| b.in_field(&k))?;
        if v.bytes().any(|b| b == b'\r' || b == b'\n') {
            return Err(Bad::new("must be one line").in_field(&k));
        }
        out.insert(k, v);
    }
    Ok(out)
}

fn sampling(v: Value) -> Read<u32> {
    rate_ppm(number(v)?).ok_or_else(|| Bad::new("must be from 0 to 1"))
}

/// A list body: `{"data": [...]}` of the views.
pub fn list_view(all: &[Destination]) -> Value {
    let data: Vec<Value> = all.iter().map(Destination::view).collect();
    let mut m = Map::new();
    m.insert("data".into(), Value::Array(data));
    Value::Object(m)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn created_checked_patched_and_shown_without_secrets() {
        let body = json!({"type": "otlp", "name": "tempo", "endpoint": "https://otel.example/v1/traces",
            "headers": {"Authorization": "Bearer s3cret"}, "sampling_rate": 0.25, "privacy_mode": true});
        let mut d = Destination::create(body, "dst_1".into(), 7).unwrap();
        assert_eq!(
            (d.sampling_ppm, d.privacy_mode, d.enabled),
            (250_000, true, true)
        );
        let v = d.view();
        assert_eq!(v["header_names"], json!(["Authorization"]));
        assert_eq!(v["sampling_rate"], json!(0.25));
        assert!(!v.to_string().contains("s3cret"));
        d.patch(json!({"sampling_rate": 0, "api_key_hashes": ["kh1"]}))
            .unwrap();
        assert_eq!(d.sampling_ppm, 0);
        assert!(d.takes("kh1") && !d.takes("kh2"));
        d.patch(json!({"enabled": false})).unwrap();
        assert!(!d.takes("kh1"));
        let err = |b| {
            Destination::create(b, "x".into(), 0)
                .unwrap_err()
                .to_string()
        };
        assert_eq!(err(json!({"type": "otlp"})), "endpoint: is required");
        assert_eq!(
            err(json!({"type": "kafka"})),
            "type: must be otlp, webhook or bucket, not \"kafka\""
        );
        assert_eq!(
            err(json!({"type": "webhook", "endpoint": "ftp://x"})),
            "endpoint: must be an http(s) URL"
        );
        assert_eq!(
            err(json!({"type": "bucket", "sampling_rate": 2})),
            "sampling_rate: must be from 0 to 1"
        );
        assert_eq!(
            err(json!({"type": "bucket", "colour": 1})),
            "colour: unknown field"
        );
        assert_eq!(
            err(json!({"type": "webhook", "endpoint": "https://x", "headers": {"X-A": "a\nb"}})),
            "headers.X-A: must be one line"
        );
        assert_eq!(
            d.patch(json!({"type": "bucket"})).unwrap_err().to_string(),
            "type: cannot be changed"
        );
    }
}
