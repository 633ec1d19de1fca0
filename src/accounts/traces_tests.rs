use serde_json::{json, Value};

use super::*;

fn generation() -> Generation {
    Generation {
        id: "gen-1700000000-abc".into(),
        model: "anthropic/claude-sonnet-4.5".into(),
        provider: Some("anthropic".into()),
        prompt_tokens: 12,
        completion_tokens: 34,
        cached_tokens: 5,
        reasoning_tokens: 7,
        cost_picos: 2_500_000,
        latency_ms: Some(1_500),
        finish_reason: Some("stop".into()),
        created_ms: 1_700_000_000_000,
        api_type: Some("chat".into()),
        streamed: true,
        ..Default::default()
    }
}

fn facts() -> SpanFacts {
    SpanFacts {
        requested_model: "~anthropic/claude-sonnet-latest".into(),
        trace: read_trace(json!({
            "trace_id": "run-42", "trace_name": "nightly", "span_name": "step",
            "generation_name": "summarise", "parent_span_id": "00f067aa0ba902b7",
            "team": "infra", "attempt": 2
        }))
        .unwrap(),
        session_id: Some("sess-1".into()),
        user: Some("mm-user-0123".into()),
        time_to_first_token_ms: Some(320),
        fallback_attempts: Some(1),
        cache_hit: Some(false),
        input_text: Some("hello there".into()),
        output_text: Some("general kenobi".into()),
    }
}

fn attrs(s: &Span) -> Value {
    let v = serde_json::to_value(&s.attributes).unwrap();
    let mut m = serde_json::Map::new();
    for kv in v.as_array().unwrap() {
        m.insert(kv["key"].as_str().unwrap().into(), kv["value"].clone());
    }
    Value::Object(m)
}

#[test]
fn a_span_has_the_genai_attributes() {
    let s = span(&generation(), &facts(), false);
    let a = attrs(&s);
    let text = |k: &str| a[k]["stringValue"].clone();
    let int = |k: &str| a[k]["intValue"].clone();
    assert_eq!(
        text("gen_ai.request.model"),
        json!("~anthropic/claude-sonnet-latest")
    );
    assert_eq!(
        text("gen_ai.response.model"),
        json!("anthropic/claude-sonnet-4.5")
    );
    assert_eq!(text("gen_ai.provider.name"), json!("anthropic"));
    assert_eq!(text("gen_ai.operation.name"), json!("chat"));
    assert_eq!(int("gen_ai.usage.input_tokens"), json!("12"));
    assert_eq!(int("gen_ai.usage.output_tokens"), json!("34"));
    assert_eq!(int("gen_ai.usage.cache_read.input_tokens"), json!("5"));
    assert_eq!(text("modelmux.cost.usd"), json!("0.0000025"));
    assert_eq!(int("modelmux.time_to_first_token_ms"), json!("320"));
    assert_eq!(int("modelmux.fallback_attempts"), json!("1"));
    assert_eq!(a["modelmux.cache_hit"], json!({"boolValue": false}));
    assert_eq!(a["modelmux.prompt_cache_hit"], json!({"boolValue": true}));
    assert_eq!(text("gen_ai.conversation.id"), json!("sess-1"));
    assert_eq!(text("user.id"), json!("mm-user-0123"));
    assert_eq!(text("modelmux.trace.metadata.team"), json!("infra"));
    assert_eq!(text("modelmux.trace.metadata.attempt"), json!("2"));
    assert_eq!(
        a["gen_ai.response.finish_reasons"],
        json!({"arrayValue": {"values": [{"stringValue": "stop"}]}})
    );
    assert_eq!(text("gen_ai.input.messages"), json!("hello there"));
    assert_eq!(text("gen_ai.output.messages"), json!("general kenobi"));
    assert_eq!(s.name, "summarise");
    assert_eq!(s.kind, 3);
    assert_eq!(s.parent_span_id.as_deref(), Some("00f067aa0ba902b7"));
    assert_eq!(s.start_time_unix_nano, "1700000000000000000");
    assert_eq!(s.end_time_unix_nano, "1700000001500000000");
    assert_eq!(s.trace_id.len(), 32);
    assert_eq!(s.span_id.len(), 16);
    assert_eq!(
        s.status,
        SpanStatus {
            code: 1,
            message: None
        }
    );
}

#[test]
fn privacy_mode_keeps_no_text() {
    let s = span(&generation(), &facts(), true);
    let json = serde_json::to_string(&s).unwrap();
    assert!(!json.contains("hello there") && !json.contains("general kenobi"));
    let a = attrs(&s);
    assert_eq!(a["gen_ai.input.messages"], Value::Null);
    assert_eq!(a["modelmux.privacy_mode"], json!({"boolValue": true}));
    assert_eq!(a["gen_ai.usage.output_tokens"], json!({"intValue": "34"}));
}

#[test]
fn one_trace_id_per_trace_and_session() {
    let g = generation();
    let mut f = facts();
    let a = span(&g, &f, false).trace_id;
    let other = Generation {
        id: "gen-2".into(),
        ..generation()
    };
    assert_eq!(span(&other, &f, false).trace_id, a, "same trace_id");
    f.trace.trace_id = None;
    let by_session = span(&g, &f, false).trace_id;
    assert_eq!(span(&other, &f, false).trace_id, by_session);
    assert_ne!(by_session, a);
    f.session_id = None;
    assert_ne!(
        span(&other, &f, false).trace_id,
        span(&g, &f, false).trace_id
    );
    // A W3C trace ID is kept as it is.
    f.trace.trace_id = Some("4BF92F3577B34DA6A3CE929D0E0E4736".into());
    assert_eq!(
        span(&g, &f, false).trace_id,
        "4bf92f3577b34da6a3ce929d0e0e4736"
    );
}

#[test]
fn a_failed_generation_is_an_error_span() {
    let g = Generation {
        finish_reason: Some("error".into()),
        native_finish_reason: Some("upstream 502".into()),
        ..generation()
    };
    let s = span(&g, &SpanFacts::default(), false);
    assert_eq!(
        s.status,
        SpanStatus {
            code: 2,
            message: Some("upstream 502".into())
        }
    );
    assert_eq!(s.name, "chat ");
    assert_eq!(s.parent_span_id, None);
    // Unknown facts are left out; the latency stands for the time to first token.
    let a = attrs(&s);
    assert_eq!(a["modelmux.fallback_attempts"], Value::Null);
    assert_eq!(a["modelmux.cache_hit"], Value::Null);
    assert_eq!(
        a["modelmux.time_to_first_token_ms"],
        json!({"intValue": "1500"})
    );
}

#[test]
fn sampling_is_deterministic_per_session_and_proportional() {
    assert!(!sampled(0, Some("s"), "g"));
    assert!(sampled(PPM, None, "g"));
    for s in ["a", "b", "c", "sess-9"] {
        let first = sampled(500_000, Some(s), "g1");
        for g in ["g2", "g3", "g4"] {
            assert_eq!(sampled(500_000, Some(s), g), first, "session {s}");
        }
    }
    let n = (0..10_000)
        .filter(|i| sampled(250_000, None, &format!("gen-{i}")))
        .count();
    assert!((2_300..2_700).contains(&n), "{n} of 10000 at 25%");
    // A lower rate samples a subset of what a higher one does.
    for i in 0..1_000 {
        let g = format!("gen-{i}");
        if sampled(100_000, None, &g) {
            assert!(sampled(300_000, None, &g));
        }
    }
}

#[test]
fn rates_and_trace_fields_are_checked() {
    assert_eq!(rate_ppm(0.25), Some(250_000));
    assert_eq!(rate_ppm(1.0), Some(PPM));
    assert_eq!(rate_ppm(1.5), None);
    assert_eq!(rate_ppm(-0.1), None);
    let err = |v| read_trace(v).unwrap_err().to_string();
    assert_eq!(err(json!("x")), "trace: must be an object, not a string");
    assert_eq!(
        err(json!({"trace_id": 3})),
        "trace.trace_id: must be a string, not a number"
    );
    assert_eq!(
        err(json!({"trace_name": "x".repeat(129)})),
        "trace.trace_name: must be at most 128 bytes"
    );
    assert_eq!(
        err(json!({"deep": {"a": 1}})),
        "trace.deep: must be a string, number or boolean"
    );
}

#[test]
fn the_export_body_is_otlp_json() {
    let body = export_body(vec![span(&generation(), &facts(), true)]);
    let rs = &body["resourceSpans"][0];
    assert_eq!(
        rs["resource"]["attributes"][0],
        json!({"key": "service.name", "value": {"stringValue": "modelmux"}})
    );
    let spans = &rs["scopeSpans"][0]["spans"];
    assert_eq!(spans.as_array().unwrap().len(), 1);
    assert_eq!(spans[0]["name"], json!("summarise"));
    assert_eq!(spans[0]["kind"], json!(3));
    assert!(spans[0]["traceId"].is_string() && spans[0]["startTimeUnixNano"].is_string());
}

#[test]
fn prompt_text_is_each_message_a_line_and_bounded() {
    let chat = crate::api::ChatRequest::parse(
        br#"{"model": "m", "messages": [{"role": "system", "content": "be brief"}, {"role": "user", "content": [{"type": "text", "text": "hi"}]}]}"#,
    )
    .unwrap();
    assert_eq!(prompt_text(&chat), "system: be brief\nuser: hi");
    let long = format!(
        r#"{{"model": "m", "messages": [{{"role": "user", "content": "{}"}}]}}"#,
        "é".repeat(20_000)
    );
    let chat = crate::api::ChatRequest::parse(long.as_bytes()).unwrap();
    assert!(prompt_text(&chat).len() <= 16 * 1024);
}

#[test]
fn completion_text_is_each_choice_a_line_and_bounded() {
    let reply = |choices: Value| -> crate::api::ChatCompletion {
        serde_json::from_value(json!({
            "id": "gen-1", "created": 1, "model": "m", "choices": choices
        }))
        .unwrap()
    };
    let two = reply(json!([
        {"index": 0, "message": {"role": "assistant", "content": "Paris"}, "finish_reason": "stop"},
        {"index": 1, "message": {"role": "assistant", "content": null, "refusal": "no"}, "finish_reason": "stop"}
    ]));
    assert_eq!(completion_text(&two).as_deref(), Some("Paris\nno"));
    let none = reply(json!([
        {"index": 0, "message": {"role": "assistant", "content": null}, "finish_reason": "tool_calls"}
    ]));
    assert_eq!(completion_text(&none), None);
    let long = reply(json!([
        {"index": 0, "message": {"role": "assistant", "content": "é".repeat(20_000)}, "finish_reason": "stop"}
    ]));
    let text = completion_text(&long).unwrap();
    assert_eq!(text.len(), 16 * 1024);
    assert!(text.chars().all(|c| c == 'é'));
}
