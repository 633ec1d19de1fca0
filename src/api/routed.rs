//! What a reply says of how it was routed and served, beyond its body: OpenRouter's
//! `openrouter_metadata` (asked for with `X-OpenRouter-Metadata: enabled`, written by
//! hand: a derived `Serialize` for its five shapes costs the worker more), the values
//! of the `Server-Timing` and `X-RateLimit-*-Requests` headers, and how a field is
//! added to a reply or a stream's last event already written.

use super::chat::JsonOut;
use super::read::{boolean, object, Read};

/// One endpoint tried, and the HTTP status it came to (200: it served).
#[derive(Debug, Clone, Default, PartialEq)]
struct Attempt {
    endpoint: usize,
    status: u16,
}

/// A request's routing as it is served, for `openrouter_metadata`: the model it named,
/// its planned endpoints (provider name, model) and the attempts that failed so far.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Trace {
    requested: String,
    strategy: &'static str,
    endpoints: Vec<(String, String)>,
    attempts: Vec<Attempt>,
    /// The plugin stages that changed the attempt under way (`pipeline`), by type, as
    /// JSON.
    stages: Vec<(&'static str, String)>,
}

impl Trace {
    /// `fallback`: the request names several models (`strategy: "fallback"`; else
    /// `direct`).
    pub fn new(requested: &str, fallback: bool, endpoints: Vec<(String, String)>) -> Trace {
        Trace {
            requested: requested.to_string(),
            strategy: if fallback { "fallback" } else { "direct" },
            endpoints,
            attempts: Vec::new(),
            stages: Vec::new(),
        }
    }

    /// Records the pipeline stage of type `kind` (JSON) for the attempt under way, in
    /// place of an earlier attempt's of that type; `None` clears it (a plugin that
    /// found nothing to do at this endpoint).
    pub fn stage(&mut self, kind: &'static str, json: Option<String>) {
        self.stages.retain(|(k, _)| *k != kind);
        if let Some(j) = json {
            self.stages.push((kind, j));
        }
    }

    /// The trace with `stage` (JSON) in its `pipeline`.
    pub fn with_stage(mut self, stage: Option<String>) -> Trace {
        self.stage("auto_router", stage);
        self
    }

    /// Endpoint `i` of the plan was tried and failed with `status`.
    pub fn failed(&mut self, i: usize, status: u16) {
        self.attempts.push(Attempt {
            endpoint: i,
            status,
        });
    }

    /// `openrouter_metadata` (JSON, in the shape of OpenRouter's `OpenRouterMetadata`)
    /// of the request served by endpoint `i` of the plan: `region` unknown, no BYOK,
    /// and the plugin stages that changed it.
    pub fn served(&self, i: usize) -> String {
        let (none, served) = (
            ("", ""),
            Attempt {
                endpoint: i,
                status: 200,
            },
        );
        let names = |n: usize| {
            self.endpoints
                .get(n)
                .map_or(none, |(p, m)| (p.as_str(), m.as_str()))
        };
        let mut out = Vec::with_capacity(512);
        let mut w = JsonOut::new(&mut out);
        w.raw("{");
        w.key_str("requested", &self.requested);
        w.raw(",");
        w.key_str("strategy", self.strategy);
        w.raw(",\"region\":null,");
        let summary = format!(
            "available={}, selected={}",
            self.endpoints.len(),
            names(i).0
        );
        w.key_str("summary", &summary);
        w.raw(",\"attempt\":");
        w.raw(&self.attempts.len().saturating_add(1).to_string());
        w.raw(",\"is_byok\":false,\"endpoints\":{\"total\":");
        w.raw(&self.endpoints.len().to_string());
        w.raw(",\"available\":[");
        for n in 0..self.endpoints.len() {
            let tail = if n == i {
                ",\"selected\":true}"
            } else {
                ",\"selected\":false}"
            };
            named(&mut w, n, names(n), tail);
        }
        w.raw("]},\"attempts\":[");
        for (n, a) in self.attempts.iter().chain([&served]).enumerate() {
            let status = format!(",\"status\":{}}}", a.status);
            named(&mut w, n, names(a.endpoint), &status);
        }
        w.raw("],\"pipeline\":[");
        for (n, (_, stage)) in self.stages.iter().enumerate() {
            w.raw(if n == 0 { "" } else { "," });
            w.raw(stage);
        }
        w.raw("]}");
        String::from_utf8(out).unwrap_or_default()
    }
}

/// `{"provider":..,"model":..` then `tail`, the `n`th item of a list.
fn named(w: &mut JsonOut<'_>, n: usize, (provider, model): (&str, &str), tail: &str) {
    w.raw(if n == 0 { "{" } else { ",{" });
    w.key_str("provider", provider);
    w.raw(",");
    w.key_str("model", model);
    w.raw(tail);
}

/// Whether a chat request asks for the body sent upstream (`debug.echo_upstream_body`,
/// OpenRouter's); a `debug` of another shape is a 400 naming it.
pub fn echo_upstream_body(chat: &super::ChatRequest) -> crate::error::Result<bool> {
    let Some(v) = chat.extra.get("debug").filter(|v| !v.is_null()) else {
        return Ok(false);
    };
    let read = || -> Read<bool> {
        let mut f = object(v.clone())?;
        Ok(f.read("echo_upstream_body", &boolean)?.unwrap_or(false))
    };
    Ok(read().map_err(|b| b.in_field("debug"))?)
}

/// `Server-Timing`: how the request was admitted, the gateway's own time and the
/// upstream's time to its first byte (none when no upstream was called), in ms.
pub fn server_timing(admission: &str, gateway_ms: u64, upstream_ms: Option<u64>) -> String {
    let upstream = upstream_ms.map_or(String::new(), |u| format!(", upstream;dur={u}"));
    format!("admission;desc={admission}, gateway;dur={gateway_ms}{upstream}")
}

/// A wait as OpenAI writes `x-ratelimit-reset-requests`: `45s`, `6m0s`, `23h59m0s`.
pub fn reset_in(secs: u64) -> String {
    let (h, m, s) = (secs / 3600, secs % 3600 / 60, secs % 60);
    match (h, m) {
        (0, 0) => format!("{s}s"),
        (0, _) => format!("{m}m{s}s"),
        _ => format!("{h}h{m}m{s}s"),
    }
}

/// Adds `"key":value` (`value` being JSON) to the JSON object `json` ends with,
/// `depth` 1 for the object itself, 2 for the object that is its last field's value.
/// Left as it is when it does not end so.
fn insert_before_close(json: &mut Vec<u8>, end: usize, depth: usize, key: &str, value: &str) {
    let Some(at) = end.checked_sub(depth) else {
        return;
    };
    let closes = json
        .get(at..end)
        .is_some_and(|t| t.iter().all(|&b| b == b'}'));
    if depth == 0 || !closes {
        return;
    }
    let empty = at.checked_sub(1).and_then(|p| json.get(p)) == Some(&b'{');
    let sep = if empty { "" } else { "," };
    // Not `Vec::splice`: its generic code costs the worker more than this.
    let tail = json.split_off(at);
    for piece in [sep, "\"", key, "\":", value] {
        json.extend_from_slice(piece.as_bytes());
    }
    json.extend_from_slice(&tail);
}

/// [`insert_before_close`] on a whole JSON reply (trailing whitespace allowed).
pub fn add_field(json: &mut Vec<u8>, key: &str, value: &str) {
    let end = json
        .iter()
        .rposition(|b| !b.is_ascii_whitespace())
        .map_or(0, |p| p.saturating_add(1));
    insert_before_close(json, end, 1, key, value);
}

/// Adds `"key":value` to the last `data:` event of the SSE bytes `sse` that is not
/// `[DONE]`: to its object (`depth` 1) or to the object that is its last field
/// (`depth` 2: a Responses event's `response`).
pub fn add_to_last_event(sse: &mut Vec<u8>, depth: usize, key: &str, value: &str) {
    let mut before = sse.len();
    while let Some(start) = sse
        .get(..before)
        .and_then(|s| s.windows(6).rposition(|w| w == b"data: "))
    {
        let data = start.saturating_add(6);
        let rest = sse.get(data..).unwrap_or_default();
        let end = rest
            .windows(2)
            .position(|w| w == b"\n\n")
            .map_or(sse.len(), |n| data.saturating_add(n));
        if !rest.starts_with(b"[DONE]") {
            insert_before_close(sse, end, depth, key, value);
            return;
        }
        before = start;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    fn trace() -> Trace {
        Trace::new(
            "m/a",
            true,
            vec![
                ("P1".into(), "m/a".into()),
                ("P2".into(), "m/a".into()),
                ("P3".into(), "m/b".into()),
            ],
        )
    }

    #[test]
    fn metadata_lists_the_plan_and_the_attempts_to_the_one_that_served() {
        let mut t = trace();
        t.failed(0, 502);
        let m: Value = serde_json::from_str(&t.served(1)).unwrap();
        assert_eq!(
            m,
            json!({
                "requested": "m/a", "strategy": "fallback", "region": null,
                "summary": "available=3, selected=P2", "attempt": 2, "is_byok": false,
                "endpoints": {"total": 3, "available": [
                    {"provider": "P1", "model": "m/a", "selected": false},
                    {"provider": "P2", "model": "m/a", "selected": true},
                    {"provider": "P3", "model": "m/b", "selected": false},
                ]},
                "attempts": [
                    {"provider": "P1", "model": "m/a", "status": 502},
                    {"provider": "P2", "model": "m/a", "status": 200},
                ],
                "pipeline": [],
            })
        );
        let direct = Trace::new("m/\"a", false, vec![("P1".into(), "m/a".into())]).served(0);
        let direct: Value = serde_json::from_str(&direct).unwrap();
        assert_eq!(direct["requested"], "m/\"a", "escaped");
        assert_eq!(
            (&direct["strategy"], &direct["attempt"]),
            (&json!("direct"), &json!(1))
        );
        // An index past the plan names nothing and panics nowhere.
        let past: Value = serde_json::from_str(&trace().served(9)).unwrap();
        assert_eq!(past["attempts"][0]["provider"], "");
        assert_eq!(past["endpoints"]["available"][2]["selected"], false);
    }

    #[test]
    fn debug_is_read_by_its_type() {
        let chat = |debug: &str| {
            let body = format!(
                r#"{{"model":"a/b","messages":[{{"role":"user","content":"x"}}],"debug":{debug}}}"#
            );
            crate::api::ChatRequest::parse(body.as_bytes()).unwrap()
        };
        assert!(echo_upstream_body(&chat(r#"{"echo_upstream_body":true}"#)).unwrap());
        assert!(!echo_upstream_body(&chat("{}")).unwrap());
        assert!(!echo_upstream_body(&chat("null")).unwrap());
        assert!(!echo_upstream_body(&chat(r#"{"other":1}"#)).unwrap());
        let e = echo_upstream_body(&chat(r#"{"echo_upstream_body":"yes"}"#)).unwrap_err();
        assert_eq!(e.status(), 400);
        assert_eq!(
            e.to_string(),
            "debug.echo_upstream_body: must be a boolean, not a string"
        );
        let e = echo_upstream_body(&chat("true")).unwrap_err();
        assert!(e.to_string().starts_with("debug: must be an object"), "{e}");
    }

    #[test]
    fn timing_and_reset_values() {
        assert_eq!(
            server_timing("exact", 3, Some(120)),
            "admission;desc=exact, gateway;dur=3, upstream;dur=120"
        );
        assert_eq!(
            server_timing("lease", 0, None),
            "admission;desc=lease, gateway;dur=0"
        );
        let r: Vec<String> = [0, 45, 60, 359, 3600, 86_340].map(reset_in).into();
        assert_eq!(r, ["0s", "45s", "1m0s", "5m59s", "1h0m0s", "23h59m0s"]);
    }

    #[test]
    fn a_field_goes_into_a_reply_written() {
        let mut b = br#"{"id":"x","n":{"a":1}}"#.to_vec();
        add_field(&mut b, "m", r#"{"k":true}"#);
        let v: Value = serde_json::from_slice(&b).unwrap();
        assert_eq!(v, json!({"id": "x", "n": {"a": 1}, "m": {"k": true}}));
        let mut e = b"{}\n".to_vec();
        add_field(&mut e, "m", "1");
        assert_eq!(e, b"{\"m\":1}\n");
        for bad in [&b""[..], b"[1]", b"x"] {
            let mut v = bad.to_vec();
            add_field(&mut v, "m", "1");
            assert_eq!(v, bad, "left as it was");
        }
    }

    #[test]
    fn a_field_goes_into_the_last_event_of_a_stream() {
        let mut chat = b"data: {\"a\":1}\n\ndata: {\"usage\":{}}\n\ndata: [DONE]\n\n".to_vec();
        add_to_last_event(&mut chat, 1, "m", "2");
        assert_eq!(
            chat,
            b"data: {\"a\":1}\n\ndata: {\"usage\":{},\"m\":2}\n\ndata: [DONE]\n\n"
        );
        let mut messages =
            b"event: message_delta\ndata: {\"x\":1}\n\nevent: message_stop\ndata: {\"type\":\"message_stop\"}\n\n"
                .to_vec();
        add_to_last_event(&mut messages, 1, "m", "2");
        assert!(messages.ends_with(b"data: {\"type\":\"message_stop\",\"m\":2}\n\n"));
        let mut responses =
            b"event: response.completed\ndata: {\"type\":\"response.completed\",\"sequence_number\":9,\"response\":{\"id\":\"r\"}}\n\n"
                .to_vec();
        add_to_last_event(&mut responses, 2, "m", "2");
        assert!(responses.ends_with(b"\"response\":{\"id\":\"r\",\"m\":2}}\n\n"));
        let mut none = b"data: [DONE]\n\n: comment\n\n".to_vec();
        add_to_last_event(&mut none, 1, "m", "2");
        assert_eq!(none, b"data: [DONE]\n\n: comment\n\n");
    }

    #[test]
    fn pipeline_stages_are_the_attempt_under_ways() {
        let mut t = Trace::new(
            "m/a",
            false,
            vec![("P1".into(), "m/a".into()), ("P2".into(), "m/a".into())],
        );
        t.stage(
            "context_compression",
            Some(r#"{"type":"context_compression","n":1}"#.into()),
        );
        t.failed(0, 502);
        // The next attempt's stage replaces the first's; another type is added.
        t.stage(
            "context_compression",
            Some(r#"{"type":"context_compression","n":2}"#.into()),
        );
        t.stage(
            "response_healing",
            Some(r#"{"type":"response_healing"}"#.into()),
        );
        let v: serde_json::Value = serde_json::from_str(&t.served(1)).unwrap();
        assert_eq!(
            v["pipeline"],
            serde_json::json!([{"type": "context_compression", "n": 2}, {"type": "response_healing"}])
        );
        t.stage("context_compression", None);
        let v: serde_json::Value = serde_json::from_str(&t.served(1)).unwrap();
        assert_eq!(
            v["pipeline"],
            serde_json::json!([{"type": "response_healing"}])
        );
    }
}
