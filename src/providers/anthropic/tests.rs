use super::*;
use crate::providers::stream::Translator;
use crate::providers::testutil::*;

const MODEL: &str = "anthropic/claude-sonnet-4.5";

#[test]
fn cache_control_on_parts_messages_and_the_request() {
    let (_, body) = built(
        MODEL,
        json!({"model": MODEL, "cache_control": {"type": "ephemeral", "ttl": "1h"}, "messages": [
            {"role": "system", "content": "You are a careful reader.", "cache_control": {"type": "ephemeral"}},
            {"role": "user", "content": [{"type": "text", "text": "Book:", "cache_control": {"type": "ephemeral"}}, {"type": "text", "text": "..."}]},
            {"role": "assistant", "content": "Read it."},
            {"role": "user", "content": "Summarise."}
        ]}),
    );
    assert_eq!(
        body["system"][0]["cache_control"],
        json!({"type": "ephemeral"})
    );
    let m = &body["messages"];
    assert_eq!(
        m[0]["content"][0]["cache_control"],
        json!({"type": "ephemeral"})
    );
    assert!(m[0]["content"][1].get("cache_control").is_none());
    assert!(m[1]["content"][0].get("cache_control").is_none());
    assert_eq!(
        m[2]["content"][0]["cache_control"],
        json!({"type": "ephemeral", "ttl": "1h"})
    );
    assert!(body.get("cache_control").is_none());
}

#[test]
fn files_become_documents() {
    let (_, body) = built(
        MODEL,
        json!({"model": MODEL, "messages": [{"role": "user", "content": [
            {"type": "file", "file": {"filename": "paper.pdf", "file_data": "data:application/pdf;base64,JVBERi0x"}},
            {"type": "file", "file": {"file_data": "https://arxiv.org/pdf/1706.03762"}},
            {"type": "file", "file": {"filename": "notes.txt", "file_data": "data:text/plain;base64,aGVsbG8gd29ybGQ="}},
            {"type": "file", "file": {"filename": "chart.png", "file_data": "data:image/png;base64,iVBO"},
             "cache_control": {"type": "ephemeral"}},
            {"type": "image_url", "image_url": {"url": "https://x.test/scan.pdf"}},
            {"type": "text", "text": "Compare them."}
        ]}]}),
    );
    assert_eq!(
        body["messages"][0]["content"],
        json!([
            {"type": "document", "title": "paper.pdf",
             "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBERi0x"}},
            {"type": "document", "source": {"type": "url", "url": "https://arxiv.org/pdf/1706.03762"}},
            {"type": "document", "title": "notes.txt",
             "source": {"type": "text", "media_type": "text/plain", "data": "hello world"}},
            {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBO"},
             "cache_control": {"type": "ephemeral"}},
            {"type": "document", "source": {"type": "url", "url": "https://x.test/scan.pdf"}},
            {"type": "text", "text": "Compare them."}
        ])
    );
}

#[test]
fn request_lifts_system_and_translates_tools() {
    let (up, body) = built(
        MODEL,
        json!({
            "model": MODEL,
            "messages": [
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": [
                    {"type": "text", "text": "What is in this image, and the weather?"},
                    {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
                    {"type": "image_url", "image_url": {"url": "https://example.com/cat.jpg"}}
                ]},
                {"role": "assistant", "content": null, "tool_calls": [
                    {"id": "toolu_1", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}}
                ]},
                {"role": "tool", "tool_call_id": "toolu_1", "content": "18C, sunny"},
                {"role": "user", "content": "Thanks"}
            ],
            "tools": [{"type": "function", "function": {"name": "get_weather", "description": "Weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}],
            "tool_choice": "required",
            "parallel_tool_calls": false,
            "stop": "END",
            "temperature": 1.5,
            "user": "u-42"
        }),
    );
    assert_eq!(up.url, "http://up/v1/messages");
    assert_eq!(up.header("x-api-key"), Some("sk-test"));
    assert_eq!(up.header("anthropic-version"), Some(API_VERSION));
    assert!(up.header("authorization").is_none());
    assert_eq!(body["model"], "claude-sonnet-4-5-20250929");
    assert_eq!(
        body["system"],
        json!([{"type": "text", "text": "Be brief."}])
    );
    assert_eq!(
        body["max_tokens"], 64000,
        "defaults to the endpoint's max completion"
    );
    assert_eq!(body["temperature"], 1.0, "clamped to Anthropic's range");
    assert_eq!(body["stop_sequences"], json!(["END"]));
    assert_eq!(body["metadata"]["user_id"], "u-42");
    let msgs = body["messages"].as_array().unwrap();
    assert_eq!(msgs.len(), 3, "tool result and the next user turn merge");
    assert_eq!(
        msgs[0]["content"][1]["source"],
        json!({"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="})
    );
    assert_eq!(
        msgs[0]["content"][2]["source"],
        json!({"type": "url", "url": "https://example.com/cat.jpg"})
    );
    assert_eq!(
        msgs[1]["content"][0],
        json!({"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Paris"}})
    );
    assert_eq!(msgs[2]["role"], "user");
    assert_eq!(
        msgs[2]["content"][0],
        json!({"type": "tool_result", "tool_use_id": "toolu_1", "content": "18C, sunny"})
    );
    assert_eq!(
        msgs[2]["content"][1],
        json!({"type": "text", "text": "Thanks"})
    );
    assert_eq!(
        body["tools"][0]["input_schema"]["properties"]["city"]["type"],
        "string"
    );
    assert_eq!(
        body["tool_choice"],
        json!({"type": "any", "disable_parallel_tool_use": true})
    );
    assert!(body.get("stream").is_none());
}

#[test]
fn reasoning_becomes_thinking_without_sampling_params() {
    let (_, body) = built(
        MODEL,
        json!({"model": MODEL, "max_tokens": 10000, "temperature": 0.2, "stream": true,
        "reasoning": {"effort": "medium"}, "messages": [{"role": "user", "content": "2+2?"}]}),
    );
    assert_eq!(
        body["thinking"],
        json!({"type": "enabled", "budget_tokens": 5000})
    );
    assert!(body.get("temperature").is_none());
    assert_eq!(body["stream"], true);
}

#[test]
fn structured_output_is_a_forced_tool() {
    let schema = json!({"type": "object", "properties": {"answer": {"type": "integer"}}});
    let (_, body) = built(
        MODEL,
        json!({"model": MODEL, "messages": [{"role": "user", "content": "2+2?"}],
        "response_format": {"type": "json_schema", "json_schema": {"name": "math", "schema": schema}}}),
    );
    assert_eq!(body["tools"][0]["name"], JSON_TOOL);
    assert_eq!(body["tools"][0]["input_schema"], schema);
    assert_eq!(
        body["tool_choice"],
        json!({"type": "tool", "name": JSON_TOOL})
    );
    let reply = json!({"id": "msg_1", "type": "message", "role": "assistant", "model": "m",
        "content": [{"type": "tool_use", "id": "toolu_9", "name": JSON_TOOL, "input": {"answer": 4}}],
        "stop_reason": "tool_use", "usage": {"input_tokens": 5, "output_tokens": 3}});
    let c = parse_response("anthropic", &meta(MODEL), reply.to_string().as_bytes()).unwrap();
    assert_eq!(
        c.choices[0].message.content.as_deref(),
        Some(r#"{"answer":4}"#)
    );
    assert_eq!(c.choices[0].finish_reason.as_deref(), Some("stop"));
    assert!(c.choices[0].message.tool_calls.is_none());
}

#[test]
fn json_object_is_asked_for_in_the_system_prompt() {
    let (_, body) = built(
        MODEL,
        json!({"model": MODEL, "response_format": {"type": "json_object"},
            "messages": [{"role": "user", "content": "list three colours"}]}),
    );
    assert!(body["system"][0]["text"]
        .as_str()
        .unwrap()
        .contains("JSON object"));
    assert!(body.get("tools").is_none());
}

#[test]
fn bad_tool_arguments_are_a_400() {
    let e = with_target(MODEL, |t| build_request(t, &request(json!({"model": MODEL, "messages": [
        {"role": "assistant", "tool_calls": [{"id": "x", "type": "function", "function": {"name": "f", "arguments": "{oops"}}]}
    ]})), false)).unwrap_err();
    assert_eq!(e.status(), 400);
}

#[test]
fn parses_fixture_reply() {
    let body = include_bytes!("../../../tests/fixtures/anthropic/tool_use/reply.json");
    let c = parse_response("anthropic", &meta(MODEL), body).unwrap();
    let m = &c.choices[0].message;
    assert_eq!(
        m.content.as_deref(),
        Some("I'll look up the weather in Paris.")
    );
    assert!(m
        .reasoning
        .as_deref()
        .unwrap()
        .starts_with("The user wants"));
    let call = &m.tool_calls.as_ref().unwrap()[0];
    assert_eq!(
        (call.id.as_str(), call.function.name.as_str()),
        ("toolu_01A09q90qw90lq917835lq9", "get_weather")
    );
    assert_eq!(
        serde_json::from_str::<Value>(&call.function.arguments).unwrap(),
        json!({"city": "Paris", "unit": "celsius"})
    );
    assert_eq!(c.choices[0].finish_reason.as_deref(), Some("tool_calls"));
    assert_eq!(
        c.choices[0].native_finish_reason.as_deref(),
        Some("tool_use")
    );
    let u = c.usage.unwrap();
    assert_eq!(
        (u.prompt_tokens, u.completion_tokens, u.total_tokens),
        (2572, 89, 2661)
    );
    let d = u.prompt_tokens_details.unwrap();
    assert_eq!((d.cached_tokens, d.cache_write_tokens), (2000, Some(100)));
    assert_eq!(
        d.cache_write_1h_tokens, 40,
        "the 1-hour writes, priced apart"
    );
    assert_eq!(
        parse_response("anthropic", &meta(MODEL), b"{}")
            .unwrap_err()
            .status(),
        502
    );
}

fn make() -> Translator {
    Translator::Anthropic(StreamState::new("anthropic"))
}

#[test]
fn stream_tool_use_at_every_split() {
    let events = translate_everywhere(
        &make,
        MODEL,
        include_bytes!("../../../tests/fixtures/anthropic/tool_use_stream/stream.sse"),
    );
    assert_eq!(events[0]["choices"][0]["delta"]["role"], "assistant");
    assert_eq!(content(&events), "Okay, let's check the weather — ☀️.");
    let start = events
        .iter()
        .find(|e| e["choices"][0]["delta"]["tool_calls"][0]["id"].is_string())
        .unwrap();
    assert_eq!(
        start["choices"][0]["delta"]["tool_calls"][0]["function"]["name"],
        "get_weather"
    );
    assert_eq!(arguments(&events, 0), r#"{"city": "Paris"}"#);
    let finish = events
        .iter()
        .find(|e| e["choices"][0]["finish_reason"].is_string())
        .unwrap();
    assert_eq!(finish["choices"][0]["finish_reason"], "tool_calls");
    let usage = &events.last().unwrap()["usage"];
    assert_eq!(
        (
            usage["prompt_tokens"].as_u64(),
            usage["completion_tokens"].as_u64()
        ),
        (Some(472), Some(89))
    );
    assert!(usage["cost"].as_f64().unwrap() > 0.0);
}

#[test]
fn stream_thinking_becomes_reasoning() {
    let events = translate_everywhere(
        &make,
        MODEL,
        include_bytes!("../../../tests/fixtures/anthropic/thinking_stream/stream.sse"),
    );
    let reasoning: String = events
        .iter()
        .filter_map(|e| e["choices"][0]["delta"]["reasoning"].as_str())
        .collect();
    assert_eq!(reasoning, "2 + 2 is 4.");
    assert_eq!(content(&events), "4");
    // The same thinking as typed reasoning items, its signature last.
    let details = delta_items(&events, "reasoning_details");
    let text: String = details.iter().filter_map(|d| d["text"].as_str()).collect();
    assert_eq!(text, "2 + 2 is 4.");
    assert_eq!(
        details.last().unwrap()["signature"],
        "EqQBCgIYAhIM1gbcDa9GJwZA2b3h"
    );
    assert!(details
        .iter()
        .all(|d| d["format"] == REASONING_FORMAT && d["index"] == details[0]["index"]));
    // Sent back as they streamed, they are the thinking block again.
    let back = thinking_blocks(Some(&Value::Array(details.into_iter().cloned().collect())));
    assert_eq!(
        back,
        [
            json!({"type": "thinking", "thinking": "2 + 2 is 4.", "signature": "EqQBCgIYAhIM1gbcDa9GJwZA2b3h"})
        ]
    );
}

#[test]
fn thinking_round_trips_through_reasoning_details() {
    let body = include_bytes!("../../../tests/fixtures/anthropic/tool_use/reply.json");
    let c = parse_response("anthropic", &meta(MODEL), body).unwrap();
    let m = &c.choices[0].message;
    let details = m.reasoning_details.clone().unwrap();
    assert_eq!(details[0]["type"], "reasoning.text");
    assert_eq!(
        details[0]["signature"],
        "EqQBCgIYAhIM1gbcDa9GJwZA2b3hGgxBdjrkzLoky3dl1pkiMOYds"
    );
    // The next turn carries the assistant message back, tool call and all.
    let (_, sent) = built(
        MODEL,
        json!({"model": MODEL, "reasoning": {"max_tokens": 2000}, "messages": [
            {"role": "user", "content": "Weather in Paris?"},
            {"role": "assistant", "content": m.content, "tool_calls": m.tool_calls,
             "reasoning_details": details},
            {"role": "tool", "tool_call_id": "toolu_01A09q90qw90lq917835lq9", "content": "18C"},
            {"role": "assistant", "content": "ok", "reasoning_details": [
                {"type": "reasoning.encrypted", "data": "opaque", "format": "anthropic-claude-v1"},
                {"type": "reasoning.encrypted", "data": "not for anthropic", "format": "openai-responses-v1"}]}
        ]}),
    );
    let turn = &sent["messages"][1]["content"];
    assert_eq!(turn[0]["type"], "thinking");
    assert_eq!(
        turn[0]["signature"],
        "EqQBCgIYAhIM1gbcDa9GJwZA2b3hGgxBdjrkzLoky3dl1pkiMOYds"
    );
    assert_eq!(
        (turn[1]["type"].as_str(), turn[2]["type"].as_str()),
        (Some("text"), Some("tool_use"))
    );
    assert_eq!(
        sent["messages"][3]["content"],
        json!([{"type": "redacted_thinking", "data": "opaque"}, {"type": "text", "text": "ok"}])
    );
}

#[test]
fn stream_error_event_ends_with_error_chunk() {
    let events = translate_everywhere(
        &make,
        MODEL,
        include_bytes!("../../../tests/fixtures/anthropic/overloaded_stream/stream.sse"),
    );
    let err = events.iter().find(|e| e.get("error").is_some()).unwrap();
    assert_eq!(err["choices"][0]["finish_reason"], "error");
    assert!(err["error"]["message"]
        .as_str()
        .unwrap()
        .contains("Overloaded"));
    assert_eq!(content(&events), "Hel");
}
