//! Trace export, the pure part (README "Trace export"): the request's `trace` field
//! (OpenRouter's broadcast metadata: `trace_id`, `trace_name`, `span_name`,
//! `generation_name`, `parent_span_id`, and any other keys as custom metadata), the
//! sampling decision (deterministic per `session_id`, else per generation, so a
//! session is whole or absent at every destination), and one OTLP span per generation
//! in the OpenTelemetry GenAI semantic conventions, written as OTLP/HTTP JSON.

use serde::Serialize;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use super::records::Generation;
use crate::api::read::{object, string, Bad, Read};
use crate::money::Usd;

/// The longest `trace` string value kept (as OpenRouter bounds `user` and
/// `session_id`).
const MAX_TRACE_VALUE: usize = 128;
/// The most custom metadata keys a `trace` object carries into a span.
const MAX_TRACE_KEYS: usize = 32;
/// Sampling rates are parts per million.
pub const PPM: u32 = 1_000_000;

/// The request's `trace` object.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TraceFields {
    pub trace_id: Option<String>,
    pub trace_name: Option<String>,
    pub span_name: Option<String>,
    pub generation_name: Option<String>,
    pub parent_span_id: Option<String>,
    /// Other keys, as strings (numbers and booleans as their JSON text).
    pub metadata: Vec<(String, String)>,
}

fn bounded(v: Value) -> Read<String> {
    let s = string(v)?;
    if s.len() > MAX_TRACE_VALUE {
        return Err(Bad::new("must be at most 128 bytes"));
    }
    Ok(s)
}

/// Reads a request's `trace` (an object; each value at most 128 bytes, at most 32
/// custom keys); a refusal names its field (`trace.trace_name: ...`).
pub fn read_trace(v: Value) -> crate::error::Result<TraceFields> {
    trace_fields(v).map_err(|b| crate::error::Error::from(b.in_field("trace")))
}

fn trace_fields(v: Value) -> Read<TraceFields> {
    let mut f = object(v)?;
    let mut t = TraceFields {
        trace_id: f.read("trace_id", &bounded)?,
        trace_name: f.read("trace_name", &bounded)?,
        span_name: f.read("span_name", &bounded)?,
        generation_name: f.read("generation_name", &bounded)?,
        parent_span_id: f.read("parent_span_id", &bounded)?,
        metadata: Vec::new(),
    };
    if f.0.len() > MAX_TRACE_KEYS {
        return Err(Bad::new("must have at most 32 custom keys"));
    }
    for (k, v) in f.0 {
        let text = match v {
            Value::String(s) => s,
            Value::Number(_) | Value::Bool(_) => v.to_string(),
            Value::Null => continue,
            _ => return Err(Bad::new("must be a string, number or boolean").in_field(&k)),
        };
        if text.len() > MAX_TRACE_VALUE {
            return Err(Bad::new("must be at most 128 bytes").in_field(&k));
        }
        t.metadata.push((k, text));
    }
    t.metadata.sort();
    Ok(t)
}

/// A sampling rate (0.0 to 1.0, as destinations are configured) in parts per million;
/// `None` for a value out of range.
pub fn rate_ppm(rate: f64) -> Option<u32> {
    if !(0.0..=1.0).contains(&rate) {
        return None;
    }
    // In range, so the product is within 0..=1e6.
    let ppm = (rate * f64::from(PPM)).round() as u32;
    Some(ppm)
}

/// Whether a generation is sent to a destination sampling `ppm` in a million: decided
/// by a hash of its session (every generation of one session alike), else of its ID.
pub fn sampled(ppm: u32, session_id: Option<&str>, gen_id: &str) -> bool {
    if ppm >= PPM {
        return true;
    }
    if ppm == 0 {
        return false;
    }
    let subject = session_id.map_or_else(|| format!("g:{gen_id}"), |s| format!("s:{s}"));
    let digest = Sha256::digest(subject.as_bytes());
    let mut first = [0u8; 8];
    for (d, s) in first.iter_mut().zip(digest.iter()) {
        *d = *s;
    }
    let bucket = u64::from_be_bytes(first).checked_rem(u64::from(PPM));
    bucket.is_some_and(|b| b < u64::from(ppm))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn is_hex(s: &str, len: usize) -> bool {
    s.len() == len && s.bytes().all(|b| b.is_ascii_hexdigit()) && s.bytes().any(|b| b != b'0')
}

/// `n` hex digits naming `subject` (a W3C trace or span ID: `subject` itself when it
/// already is one).
fn otel_id(subject: &str, n: usize) -> String {
    if is_hex(subject, n) {
        return subject.to_ascii_lowercase();
    }
    let digest = Sha256::digest(subject.as_bytes());
    hex(digest.get(..n / 2).unwrap_or_default())
}

/// What one generation's span is made of, besides its record.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SpanFacts {
    /// The model the request named.
    pub requested_model: String,
    pub trace: TraceFields,
    pub session_id: Option<String>,
    /// The end user's ID as already hashed (never as sent).
    pub user: Option<String>,
    /// Time to first token (else the record's latency, which is that).
    pub time_to_first_token_ms: Option<u64>,
    /// Endpoints tried before the one that served, where known.
    pub fallback_attempts: Option<u32>,
    /// Served from a response cache, where known.
    pub cache_hit: Option<bool>,
    /// The prompt and completion as text (left out under privacy mode).
    pub input_text: Option<String>,
    pub output_text: Option<String>,
}

/// One OTLP span (`opentelemetry.proto.trace.v1.Span` in OTLP/JSON).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Span {
    pub trace_id: String,
    pub span_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parent_span_id: Option<String>,
    pub name: String,
    /// `SPAN_KIND_CLIENT`.
    pub kind: u8,
    /// Nanoseconds since the epoch, as strings (OTLP/JSON writes 64-bit integers so).
    pub start_time_unix_nano: String,
    pub end_time_unix_nano: String,
    pub attributes: Vec<KeyValue>,
    pub status: SpanStatus,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SpanStatus {
    /// 1 ok, 2 error.
    pub code: u8,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct KeyValue {
    pub key: String,
    pub value: AnyValue,
}

/// An OTLP attribute value.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub enum AnyValue {
    #[serde(rename = "stringValue")]
    String(String),
    /// OTLP/JSON writes 64-bit integers as strings.
    #[serde(rename = "intValue")]
    Int(String),
    #[serde(rename = "boolValue")]
    Bool(bool),
    #[serde(rename = "arrayValue")]
    Array(ArrayValue),
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ArrayValue {
    pub values: Vec<AnyValue>,
}

struct Attrs(Vec<KeyValue>);

impl Attrs {
    fn put(&mut self, key: &str, value: AnyValue) {
        self.0.push(KeyValue {
            key: key.to_string(),
            value,
        });
    }
    fn text(&mut self, key: &str, v: Option<&str>) {
        if let Some(v) = v.filter(|v| !v.is_empty()) {
            self.put(key, AnyValue::String(v.to_string()));
        }
    }
    fn int(&mut self, key: &str, v: u64) {
        self.put(key, AnyValue::Int(v.to_string()));
    }
}

fn nanos(ms: u64) -> String {
    u128::from(ms).saturating_mul(1_000_000).to_string()
}

/// The span of one settled generation. Under `privacy` no prompt or completion text
/// goes in it; token counts, cost, timing and metadata do.
pub fn span(g: &Generation, facts: &SpanFacts, privacy: bool) -> Span {
    let t = &facts.trace;
    let trace_subject = t
        .trace_id
        .as_deref()
        .or(facts.session_id.as_deref())
        .unwrap_or(&g.id);
    let mut a = Attrs(Vec::new());
    a.text("gen_ai.operation.name", Some("chat"));
    a.text("gen_ai.provider.name", g.provider.as_deref());
    a.text("gen_ai.request.model", Some(&facts.requested_model));
    a.text("gen_ai.response.model", Some(&g.model));
    a.text("gen_ai.response.id", Some(&g.id));
    if let Some(reason) = g.finish_reason.as_deref() {
        let values = vec![AnyValue::String(reason.to_string())];
        a.put(
            "gen_ai.response.finish_reasons",
            AnyValue::Array(ArrayValue { values }),
        );
    }
    a.int("gen_ai.usage.input_tokens", g.prompt_tokens);
    a.int("gen_ai.usage.output_tokens", g.completion_tokens);
    a.int("gen_ai.usage.cache_read.input_tokens", g.cached_tokens);
    a.int("gen_ai.usage.reasoning.output_tokens", g.reasoning_tokens);
    a.text("gen_ai.conversation.id", facts.session_id.as_deref());
    a.text("user.id", facts.user.as_deref());
    let cost = Usd::from_picos(g.cost_picos).to_string();
    a.text("modelmux.cost.usd", Some(&cost));
    a.int("modelmux.cost.picodollars", g.cost_picos);
    if let Some(ttft) = facts.time_to_first_token_ms.or(g.latency_ms) {
        a.int("modelmux.time_to_first_token_ms", ttft);
    }
    if let Some(n) = facts.fallback_attempts {
        a.int("modelmux.fallback_attempts", u64::from(n));
    }
    if let Some(hit) = facts.cache_hit {
        a.put("modelmux.cache_hit", AnyValue::Bool(hit));
    }
    a.put(
        "modelmux.prompt_cache_hit",
        AnyValue::Bool(g.cached_tokens > 0),
    );
    a.put("modelmux.streamed", AnyValue::Bool(g.streamed));
    a.text("modelmux.api_type", g.api_type.as_deref());
    a.text("modelmux.trace.name", t.trace_name.as_deref());
    a.text("modelmux.span.name", t.span_name.as_deref());
    for (k, v) in &t.metadata {
        a.text(&format!("modelmux.trace.metadata.{k}"), Some(v));
    }
    a.put("modelmux.privacy_mode", AnyValue::Bool(privacy));
    if !privacy {
        a.text("gen_ai.input.messages", facts.input_text.as_deref());
        a.text("gen_ai.output.messages", facts.output_text.as_deref());
    }
    let failed = g.finish_reason.as_deref() == Some("error");
    let took = g.latency_ms.unwrap_or(0);
    let name = t
        .generation_name
        .clone()
        .unwrap_or_else(|| format!("chat {}", facts.requested_model));
    Span {
        trace_id: otel_id(trace_subject, 32),
        span_id: otel_id(&format!("span:{}", g.id), 16),
        parent_span_id: t.parent_span_id.as_deref().map(|p| otel_id(p, 16)),
        name,
        kind: 3,
        start_time_unix_nano: nanos(g.created_ms),
        end_time_unix_nano: nanos(g.created_ms.saturating_add(took)),
        attributes: a.0,
        status: SpanStatus {
            code: if failed { 2 } else { 1 },
            message: failed.then(|| g.native_finish_reason.clone()).flatten(),
        },
    }
}

/// The longest prompt text a span carries (the rest is cut, at a character boundary).
const MAX_SPAN_TEXT: usize = 16 * 1024;

/// A request's messages as text, `role: text` a line each, for a span's
/// `gen_ai.input.messages` (at most 16 KiB).
pub fn prompt_text(chat: &crate::api::ChatRequest) -> String {
    let mut out = String::new();
    for m in &chat.messages {
        let text = m.content.as_ref().map(crate::api::Content::text);
        out.push_str(m.role.as_str());
        out.push_str(": ");
        out.push_str(text.as_deref().unwrap_or(""));
        out.push('\n');
        if out.len() >= MAX_SPAN_TEXT {
            break;
        }
    }
    crate::error::truncate(out.trim_end(), MAX_SPAN_TEXT).to_string()
}

/// A reply's completion as text for a span's `gen_ai.output.messages`: each choice's
/// content (its refusal where it has none), a line each, at most 16 KiB; `None` when
/// the reply has no text.
pub fn completion_text(c: &crate::api::ChatCompletion) -> Option<String> {
    let mut out = String::new();
    for ch in &c.choices {
        let m = &ch.message;
        if let Some(t) = m.content.as_deref().or(m.refusal.as_deref()) {
            if !out.is_empty() {
                out.push('\n');
            }
            out.push_str(t);
        }
        if out.len() >= MAX_SPAN_TEXT {
            break;
        }
    }
    let out = crate::error::truncate(&out, MAX_SPAN_TEXT);
    (!out.is_empty()).then(|| out.to_string())
}

/// An OTLP/HTTP JSON export request (`POST /v1/traces`) of `spans`.
pub fn export_body<S: Serialize>(spans: Vec<S>) -> Value {
    let spans = serde_json::to_value(spans).unwrap_or(Value::Array(Vec::new()));
    let service = serde_json::json!({"key": "service.name", "value": {"stringValue": "modelmux"}});
    let mut scope = Map::new();
    scope.insert("scope".into(), serde_json::json!({"name": "modelmux"}));
    scope.insert("spans".into(), spans);
    serde_json::json!({
        "resourceSpans": [{
            "resource": {"attributes": [service]},
            "scopeSpans": [Value::Object(scope)],
        }]
    })
}

#[cfg(test)]
#[path = "traces_tests.rs"]
mod tests;
