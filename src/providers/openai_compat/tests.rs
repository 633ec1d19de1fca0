use super::*;
use crate::providers::stream::Translator;
use crate::providers::testutil::*;

const MODEL: &str = "openai/gpt-4o-mini";

#[test]
fn messages_keep_only_what_openai_defines() {
    let (_, body) = built(
        MODEL,
        json!({"model": MODEL, "messages": [
            {"role": "system", "content": [{"type": "text", "text": "Be brief.", "cache_control": {"type": "ephemeral"}}]},
            {"role": "user", "content": "Weather?", "cache_control": {"type": "ephemeral"}},
            {"role": "assistant", "content": null, "reasoning": "hm",
             "reasoning_details": [{"type": "reasoning.text", "text": "hm", "signature": "s", "format": "anthropic-claude-v1"}],
             "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}]},
            {"role": "tool", "tool_call_id": "c1", "content": "18C"},
            {"role": "user", "content": [{"type": "image_url", "image_url": {"url": "https://x.test/a.png", "detail": "low"}}]}
        ]}),
    );
    let m = &body["messages"];
    assert_eq!(
        m[0]["content"][0],
        json!({"type": "text", "text": "Be brief."})
    );
    assert_eq!(m[1], json!({"role": "user", "content": "Weather?"}));
    assert_eq!(
        m[2].as_object().unwrap().keys().collect::<Vec<_>>(),
        ["role", "tool_calls"]
    );
    assert_eq!(
        m[3],
        json!({"role": "tool", "tool_call_id": "c1", "content": "18C"})
    );
    assert_eq!(m[4]["content"][0]["image_url"]["detail"], "low");
}

#[test]
fn what_upstreams_add_to_replies_is_kept() {
    let reply = json!({"id": "x", "object": "chat.completion", "created": 1, "model": "m",
        "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": "see",
            "images": [{"type": "image_url", "image_url": {"url": "data:image/png;base64,AA=="}}],
            "annotations": [{"type": "url_citation", "url_citation": {"url": "https://example.com"}}],
            "reasoning_details": [{"type": "reasoning.text", "text": "hm", "signature": "sig"}]}}]});
    let c = parse_response("openai", &meta(MODEL), reply.to_string().as_bytes()).unwrap();
    let out = serde_json::to_value(&c).unwrap();
    let m = &out["choices"][0]["message"];
    assert_eq!(
        m["images"][0]["image_url"]["url"],
        "data:image/png;base64,AA=="
    );
    assert_eq!(m["annotations"][0]["type"], "url_citation");
    assert_eq!(m["reasoning_details"][0]["signature"], "sig");
    let chunk = r#"data: {"id":"x","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"images":[{"type":"image_url","image_url":{"url":"data:image/png;base64,AA=="}}]},"finish_reason":null}]}"#;
    let sse = translate(
        &|| Translator::OpenAi(StreamState::new("openai")),
        MODEL,
        format!("{chunk}\n\ndata: [DONE]\n\n").as_bytes(),
        0,
    );
    let first: Value =
        serde_json::from_str(sse.lines().next().unwrap().strip_prefix("data: ").unwrap()).unwrap();
    assert_eq!(
        first["choices"][0]["delta"]["images"][0]["image_url"]["url"],
        "data:image/png;base64,AA=="
    );
}

#[test]
fn service_tier_is_not_forwarded() {
    let (_, body) = built(
        MODEL,
        json!({"model": MODEL, "messages": [{"role": "user", "content": "hi"}], "service_tier": "priority"}),
    );
    assert!(body.get("service_tier").is_none(), "{body}");
}

#[test]
fn only_what_the_endpoint_takes_goes_upstream() {
    // gpt-5 lists seed and reasoning, not temperature (it refuses it) nor top_k.
    let (_, body) = built(
        "openai/gpt-5",
        json!({"model": "openai/gpt-5", "messages": [{"role": "user", "content": "hi"}],
               "temperature": 0.2, "top_k": 5, "min_p": 0.1, "repetition_penalty": 1.1,
               "session_id": "s1", "seed": 7, "reasoning": {"effort": "low"},
               "user": "u1", "max_tokens": 50}),
    );
    let keys: Vec<&str> = body
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        [
            "max_tokens",
            "messages",
            "model",
            "reasoning_effort",
            "seed",
            "user"
        ]
    );
    // gpt-4o takes temperature, and no reasoning effort.
    let (_, body) = built(
        "openai/gpt-4o",
        json!({"model": "openai/gpt-4o", "messages": [{"role": "user", "content": "hi"}],
               "temperature": 0.2, "reasoning_effort": "high"}),
    );
    assert_eq!(body["temperature"], 0.2);
    assert!(body.get("reasoning_effort").is_none());
    assert!(keeps("top_k", &["top_k".to_string()]));
    assert!(keeps("guided_json", &["guided_json".to_string()]));
    assert!(!keeps("guided_json", &[]));
}

#[test]
fn request_passes_fields_through() {
    let req = request(
        json!({"model": MODEL, "messages": [{"role": "user", "content": "hi"}],
        "stream": true, "seed": 7, "provider": {"order": ["openai"]}, "models": ["x/y"],
        "reasoning": {"effort": "high"}, "include_reasoning": true,
        "tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}]}),
    );
    let up = with_target(MODEL, |t| build_request(t, &req, req.is_stream())).unwrap();
    assert_eq!(up.url, "http://up/v1/chat/completions");
    assert_eq!(up.header("authorization"), Some("Bearer sk-test"));
    let body: Value = serde_json::from_slice(&up.body).unwrap();
    assert_eq!(body["model"], "gpt-4o-mini");
    assert_eq!(body["seed"], 7);
    assert_eq!(body["stream_options"]["include_usage"], true);
    assert_eq!(body["tools"][0]["function"]["name"], "f");
    assert!(body.get("provider").is_none() && body.get("models").is_none());
    // gpt-4o-mini does not reason: OpenAI would refuse the effort.
    assert!(body.get("reasoning_effort").is_none());
    assert!(body.get("reasoning").is_none() && body.get("include_reasoning").is_none());
    assert!(
        !format!("{up:?}").contains("sk-test"),
        "keys never reach Debug output"
    );
}

#[test]
fn missing_key_is_503() {
    let req = request(json!({"model": "m", "messages": [{"role": "user", "content": "x"}]}));
    let e = with_target(MODEL, |t| {
        let t = Target {
            api_key: None,
            ..t.clone()
        };
        build_request(&t, &req, req.is_stream())
    })
    .unwrap_err();
    assert_eq!(e.status(), 503);
    assert!(e.to_string().contains("OPENAI_API_KEY"));
}

#[test]
fn parses_fixture_reply() {
    let body = include_bytes!("../../../tests/fixtures/openai/tool_call/reply.json");
    let c = parse_response("openai", &meta(MODEL), body).unwrap();
    assert_eq!(c.id, "gen-1-abc");
    assert_eq!(c.model, MODEL);
    assert_eq!(c.choices[0].finish_reason.as_deref(), Some("tool_calls"));
    let call = &c.choices[0].message.tool_calls.as_ref().unwrap()[0];
    assert_eq!(call.function.name, "get_weather");
    assert_eq!(c.usage.as_ref().unwrap().total_tokens, 95);
    for bad in [&b"{}"[..], b"<html>"] {
        assert_eq!(
            parse_response("openai", &meta(MODEL), bad)
                .unwrap_err()
                .status(),
            502
        );
    }
}

fn make() -> Translator {
    Translator::OpenAi(StreamState::new("openai"))
}

#[test]
fn stream_translates_at_every_split() {
    let fixture = include_bytes!("../../../tests/fixtures/openai/tool_call_stream/stream.sse");
    let events = translate_everywhere(&make, MODEL, fixture);
    let usage = &events.last().unwrap()["usage"];
    assert_eq!(usage["prompt_tokens"], 81);
    assert!(usage["cost"].as_f64().unwrap() > 0.0);
    assert_eq!(arguments(&events, 0), r#"{"city":"Paris"}"#);
    assert!(events
        .iter()
        .any(|e| e["choices"][0]["finish_reason"] == "tool_calls"));
    assert!(events.iter().all(|e| e["id"] == "gen-1-abc"));
}

/// `sse` with each JSON event pretty-printed over several `data:` lines: the same
/// stream to a client, which the fast lane leaves to the typed path.
fn spread_over_lines(sse: &str) -> String {
    let mut out = String::new();
    for event in sse.split("\n\n").filter(|e| !e.is_empty()) {
        match serde_json::from_str::<Value>(event.strip_prefix("data: ").unwrap()) {
            Ok(v) => {
                for line in serde_json::to_string_pretty(&v).unwrap().lines() {
                    out.push_str(&format!("data: {line}\n"));
                }
                out.push('\n');
            }
            Err(_) => out.push_str(&format!("{event}\n\n")),
        }
    }
    out
}

/// Null fields of deltas dropped: the fast lane keeps the upstream's, the typed
/// path leaves them out; a client reads both alike.
fn without_null_delta_fields(mut events: Vec<Value>) -> Vec<Value> {
    fn strip(v: &mut Value) {
        match v {
            Value::Object(o) => {
                o.retain(|_, x| !x.is_null());
                o.values_mut().for_each(strip);
            }
            Value::Array(a) => a.iter_mut().for_each(strip),
            _ => {}
        }
    }
    for e in &mut events {
        for c in e["choices"].as_array_mut().into_iter().flatten() {
            strip(&mut c["delta"]);
        }
    }
    events
}

#[test]
fn the_fast_lane_says_what_the_typed_path_says() {
    let chunk = |choices: &str, extra: &str| {
        format!("data: {{\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"m\",\"system_fingerprint\":\"fp_1\",\"choices\":[{choices}]{extra}}}\n\n")
    };
    let fixture = include_str!("../../../tests/fixtures/openai/tool_call_stream/stream.sse");
    let mut stream = fixture.replace("data: [DONE]\n\n", "");
    for (choices, extra) in [
        (
            r#"{"index":0,"delta":{"role":"assistant","content":"","refusal":null},"finish_reason":null}"#,
            "",
        ),
        (
            r#"{"index":0,"delta":{"content":"naïve \"quoted\"\n\\ ☀️"},"logprobs":{"content":[{"token":"n","logprob":-0.1}]},"finish_reason":null}"#,
            "",
        ),
        (
            r#"{"index":0,"delta":{"reasoning":"hm","reasoning_details":[{"type":"reasoning.text","text":"hm"}]},"finish_reason":null}"#,
            "",
        ),
        (
            r#"{"index":0,"delta":{"reasoning_content":"deepseek thinks"},"finish_reason":null}"#,
            "",
        ),
        (
            r#"{"index":0,"delta":{"content":null,"tool_calls":[{"index":1,"id":"call_2","type":"function","function":{"name":"f","arguments":""}}]},"finish_reason":null}"#,
            "",
        ),
        (
            r#"{"index":0,"delta":{"images":[{"type":"image_url","image_url":{"url":"data:image/png;base64,AA=="}}]},"finish_reason":null}"#,
            "",
        ),
        (
            r#"{"index":0,"delta":{"content":"a"},"finish_reason":null},{"index":1,"delta":{"content":"b"},"finish_reason":"length","native_finish_reason":"max_tokens"}"#,
            "",
        ),
        (
            r#"{"index":0,"delta":{"content":"x"},"finish_reason":"end_turn"}"#,
            "",
        ),
        (
            r#"{"index":0,"delta":{},"finish_reason":"stop"}"#,
            r#","usage":{"prompt_tokens":3,"completion_tokens":4,"total_tokens":7}"#,
        ),
    ] {
        stream.push_str(&chunk(choices, extra));
    }
    stream.push_str("data: [DONE]\n\n");
    let events = |sse: &str| -> Vec<Value> {
        let whole = translate(&make, MODEL, sse.as_bytes(), 0);
        for split in (1..sse.len()).step_by(97) {
            assert_eq!(translate(&make, MODEL, sse.as_bytes(), split), whole);
        }
        let data = whole
            .split("\n\n")
            .filter_map(|e| e.strip_prefix("data: {"));
        data.map(|e| serde_json::from_str(&format!("{{{e}")).unwrap())
            .collect()
    };
    let fast = events(&stream);
    let typed = events(&spread_over_lines(&stream));
    assert_eq!(
        without_null_delta_fields(fast.clone()),
        without_null_delta_fields(typed)
    );
    assert!(fast
        .iter()
        .any(|e| e["choices"][0]["finish_reason"] == "stop"
            && e["choices"][0]["native_finish_reason"] == "end_turn"));
    // What the fast lane may not copy, it does not: `reasoning_content` is renamed.
    assert!(fast
        .iter()
        .any(|e| e["choices"][0]["delta"]["reasoning"] == "deepseek thinks"));
    let last = fast.last().unwrap();
    assert_eq!(last["usage"]["completion_tokens"], 4);
    assert!(fast
        .iter()
        .all(|e| e["id"] == "gen-1-abc" && e["provider"] == "Test"));

    // And it is the fast lane that carried the plain chunks.
    let head = ChunkHead::new(&meta(MODEL));
    let plain = chunk(
        r#"{"index":0,"delta":{"content":"hi"},"finish_reason":null}"#,
        "",
    );
    let data = plain.trim().strip_prefix("data: ").unwrap();
    let (mut sent, mut usage, mut out) = (Sent::default(), None, Vec::new());
    let mut state = StreamState::new("openai");
    assert!(state.restamp(data, &head, &mut sent, &mut usage, &mut out));
    assert!(String::from_utf8(out)
        .unwrap()
        .contains(r#""delta":{"content":"hi"}"#));
    let renamed = data.replace("\"content\"", "\"reasoning_content\"");
    assert!(!state.restamp(&renamed, &head, &mut sent, &mut usage, &mut Vec::new()));
}

#[test]
fn truncated_stream_ends_with_error_chunk() {
    let fixture = include_bytes!("../../../tests/fixtures/openai/tool_call_stream/stream.sse");
    let text = translate(&make, MODEL, &fixture[..fixture.len() / 2], 0);
    assert!(text.contains(r#""finish_reason":"error""#));
    assert!(text.contains(r#""error":{"code":502"#));
    assert!(text.ends_with("data: [DONE]\n\n"));
}

#[test]
fn garbage_and_error_events_end_the_stream() {
    let text = translate(&make, MODEL, b"data: {not json}\n\n", 0);
    assert!(text.contains(r#""finish_reason":"error""#));
    let text = translate(
        &make,
        MODEL,
        b"data: {\"error\":{\"message\":\"overloaded\"}}\n\n",
        0,
    );
    assert!(text.contains("overloaded"));
}
