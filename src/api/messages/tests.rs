//! The Messages surface against the shapes Anthropic's API sends and takes.

use super::*;
use crate::api::{
    AssistantMessage, Choice, Delta, FunctionCallDelta, GenerationMeta, ToolCallDelta, Usage,
};
use serde_json::json;

/// A body converted as the surface reads it: from its bytes.
fn convert(body: &Value) -> Result<Converted> {
    super::convert(body.to_string().as_bytes()).map(|(c, _)| c)
}

#[test]
fn web_search_server_tools_are_bounded_and_counted() {
    let body = json!({"model": "a/b", "max_tokens": 5, "messages": [{"role": "user", "content": "x"}],
        "tools": [{"type": "web_search_20250305", "name": "web_search", "max_uses": 3},
                  {"type": "web_search_20250305", "name": "more"}, {"name": "f", "input_schema": {"type": "object"}}]});
    let chat = convert(&body).unwrap().chat;
    assert_eq!(chat.server_searches, 3 + DEFAULT_MAX_SEARCHES);
    let sent = native_body(&body, "up", 64000);
    assert_eq!(sent["tools"][0]["max_uses"], 3);
    assert_eq!(sent["tools"][1]["max_uses"], DEFAULT_MAX_SEARCHES);
    assert!(sent["tools"][2].get("max_uses").is_none());
}

#[test]
fn native_body_lowers_max_tokens_and_the_thinking_budget_to_the_endpoint() {
    let body = json!({"model": "a/b", "max_tokens": 32000, "messages": [],
        "thinking": {"type": "enabled", "budget_tokens": 10000}});
    let b = native_body(&body, "up", 4096);
    assert_eq!(b["model"], "up");
    assert_eq!(b["max_tokens"], 4096);
    assert_eq!(b["thinking"]["budget_tokens"], 4095);
    let within = native_body(&body, "up", 64000);
    assert_eq!(within["max_tokens"], 32000);
    assert_eq!(within["thinking"]["budget_tokens"], 10000);
}

#[test]
fn messages_become_chat() {
    let body = json!({
        "model": "a/b", "max_tokens": 100,
        "system": [{"type": "text", "text": "You are Claude Code.", "cache_control": {"type": "ephemeral"}}],
        "messages": [
            {"role": "user", "content": [{"type": "text", "text": "read a.txt"}, {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "AAAA"}}]},
            {"role": "assistant", "content": [{"type": "thinking", "thinking": "hmm", "signature": "sig"}, {"type": "text", "text": "ok"}, {"type": "tool_use", "id": "toolu_1", "name": "Read", "input": {"path": "a.txt"}}]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": [{"type": "text", "text": "hello"}]}, {"type": "text", "text": "and?"}]},
            {"role": "system", "content": "reminder"},
        ],
        "tools": [{"name": "Read", "description": "read a file", "input_schema": {"type": "object", "properties": {"path": {"type": "string"}}}}],
        "tool_choice": {"type": "auto", "disable_parallel_tool_use": true},
        "thinking": {"type": "enabled", "budget_tokens": 2000},
        "stop_sequences": ["END"],
        "metadata": {"user_id": "u1"},
        "context_management": {"edits": []},
    });
    let r = convert(&body).unwrap().chat;
    let roles: Vec<&str> = r.messages.iter().map(|m| m.role.as_str()).collect();
    assert_eq!(
        roles,
        ["system", "user", "assistant", "tool", "user", "system"]
    );
    let sys = r.messages[0].content.as_ref().unwrap().parts();
    assert_eq!(
        sys[0].cache_control().unwrap(),
        &json!({"type": "ephemeral"})
    );
    let user = r.messages[1].content.as_ref().unwrap().parts();
    assert_eq!(
        user[1].image_url().unwrap().url,
        "data:image/png;base64,AAAA"
    );
    let calls = r.messages[2].tool_calls.as_ref().unwrap();
    assert_eq!(calls[0].function.arguments, "{\"path\":\"a.txt\"}");
    assert_eq!(r.messages[2].extra["reasoning"], "hmm");
    assert_eq!(r.messages[3].text(), "hello");
    assert_eq!(r.tool_choice, Some(crate::api::ToolChoice::Auto));
    assert_eq!(r.extra["parallel_tool_calls"], json!(false));
    assert_eq!(
        serde_json::to_value(&r.reasoning).unwrap(),
        json!({"max_tokens": 2000})
    );
    assert_eq!(r.max_tokens, Some(100));
    assert!(!r.extra.contains_key("context_management"));
    let (c, native) = convert_count(
        br#"{"model": "a/b", "messages": [{"role": "user", "content": "hello world"}]}"#,
    )
    .unwrap();
    assert_eq!(c.chat.messages[0].text(), "hello world");
    assert_eq!(native["model"], "a/b");
}

#[test]
fn bad_messages_name_the_field() {
    for (body, want) in [
        (
            json!({"model": "a/b", "messages": [{"role": "user", "content": "x"}]}),
            "max_tokens: is required",
        ),
        (
            json!({"model": "a/b", "max_tokens": 5}),
            "messages: is required",
        ),
        (
            json!({"model": "a/b", "max_tokens": 5, "messages": [{"role": "user", "content": [{"type": "hologram"}]}]}),
            "messages[0].content[0].type: unknown content block type",
        ),
        (
            json!({"model": "a/b", "max_tokens": 5, "messages": [{"role": "user", "content": [{"type": "image", "source": {"type": "file"}}]}]}),
            "messages[0].content[0].source.type",
        ),
        (
            json!({"model": "a/b", "max_tokens": 5, "messages": [{"role": "wizard", "content": "x"}]}),
            "messages[0].role: unknown role",
        ),
    ] {
        let e = convert(&body).unwrap_err();
        assert_eq!(e.status(), 400);
        assert!(e.to_string().contains(want), "{e}");
    }
    let only = convert(&json!({"model": "a/b", "max_tokens": 5, "messages": [{"role": "user", "content": "x"}], "tools": [{"type": "code_execution_20250522", "name": "code_execution"}]})).unwrap().anthropic_only;
    assert!(only.unwrap().contains("tools[0].type: server tool"));
    let only = convert(&json!({"model": "a/b", "max_tokens": 5, "messages": [{"role": "assistant", "content": [{"type": "code_execution_tool_result", "tool_use_id": "s", "content": {}}]}]})).unwrap().anthropic_only;
    assert!(only.unwrap().contains("messages[0].content[0].type"));
    let e = Error::Unauthorized("User not found.".into());
    assert_eq!(
        serde_json::to_value(error_body(&e)).unwrap(),
        json!({"type": "error", "error": {"type": "authentication_error", "message": "User not found.", "error_type": "authentication"}})
    );
}

fn meta() -> GenerationMeta {
    GenerationMeta {
        id: "gen-1-x".into(),
        created: 1,
        model: "a/b".into(),
        provider: "P".into(),
    }
}

#[test]
fn replies_and_streams_in_anthropic_shape() {
    let mut msg = AssistantMessage::text("hi");
    msg.tool_calls = Some(vec![crate::api::ToolCall {
        id: "c1".into(),
        kind: "function".into(),
        function: crate::api::FunctionCall {
            name: "f".into(),
            arguments: "{\"a\":1}".into(),
        },
    }]);
    let c = meta().completion(
        vec![Choice {
            index: 0,
            message: msg,
            finish_reason: Some("tool_calls".into()),
            native_finish_reason: Some("tool_calls".into()),
            logprobs: None,
        }],
        Some(Usage::new(10, 3)),
    );
    let v = serde_json::to_value(reply(&c)).unwrap();
    assert_eq!(v["type"], "message");
    assert_eq!(
        v["content"][1],
        json!({"type": "tool_use", "id": "c1", "name": "f", "input": {"a": 1}})
    );
    assert_eq!(v["stop_reason"], "tool_use");
    assert_eq!(v["usage"]["input_tokens"], 10);

    let m = meta();
    let mut enc = StreamEncoder::new(5);
    let mut out = enc.chunk(&m.delta_chunk(
        Delta {
            content: Some("Hi".into()),
            ..Default::default()
        },
        None,
    ));
    out.extend(enc.chunk(&m.delta_chunk(
        Delta {
            tool_calls: Some(vec![ToolCallDelta {
                index: 0,
                id: Some("c1".into()),
                kind: None,
                function: Some(FunctionCallDelta {
                    name: Some("f".into()),
                    arguments: Some("{}".into()),
                }),
            }]),
            ..Default::default()
        },
        Some("tool_calls"),
    )));
    out.extend(enc.close(&m.chunk(Vec::new()), &Usage::new(5, 2)));
    let text = String::from_utf8(out).unwrap();
    let types: Vec<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("event: "))
        .collect();
    assert_eq!(
        types,
        [
            "message_start",
            "content_block_start",
            "content_block_delta",
            "content_block_stop",
            "content_block_start",
            "content_block_delta",
            "content_block_stop",
            "message_delta",
            "message_stop"
        ]
    );
    assert!(text.contains("\"stop_reason\":\"tool_use\""));
    assert!(text.contains("\"partial_json\":\"{}\""));
}

// ------------------------------------------------- against Anthropic's own shapes
// (tests/fixtures/anthropic/messages/README.md says where each shape comes from)

fn fixture(name: &str) -> Value {
    let path = format!(
        "{}/tests/fixtures/anthropic/messages/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

/// (event name, data) of an SSE text; `ping` left out (the encoder does not send it,
/// the stream's keepalive does).
fn sse_events(text: &str) -> Vec<(String, Value)> {
    let mut out = Vec::new();
    let mut name = String::new();
    for line in text.lines() {
        if let Some(n) = line.strip_prefix("event: ") {
            name = n.to_string();
        } else if let Some(d) = line.strip_prefix("data: ") {
            if name != "ping" {
                out.push((name.clone(), serde_json::from_str(d).unwrap()));
            }
        }
    }
    out
}

fn sse_fixture(name: &str) -> Vec<(String, Value)> {
    let path = format!(
        "{}/tests/fixtures/anthropic/messages/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    sse_events(&std::fs::read_to_string(path).unwrap())
}

/// Every key of `ours`, at every depth, is one Anthropic sends there too, and every
/// `type` is the same: what the SDKs parse, we send.
fn same_shape(ours: &Value, theirs: &Value, at: &str) {
    match (ours, theirs) {
        (Value::Object(o), Value::Object(t)) => {
            for (k, v) in o {
                let Some(tv) = t.get(k) else {
                    panic!("{at}.{k}: not in Anthropic's shape {theirs}")
                };
                if k == "type" {
                    assert_eq!(v, tv, "{at}.type");
                }
                same_shape(v, tv, &format!("{at}.{k}"));
            }
        }
        (Value::Array(o), Value::Array(t)) => {
            for (i, (a, b)) in o.iter().zip(t).enumerate() {
                same_shape(a, b, &format!("{at}[{i}]"));
            }
        }
        (Value::Null, _) | (_, Value::Null) => {}
        (a, b) => assert_eq!(
            std::mem::discriminant(a),
            std::mem::discriminant(b),
            "{at}: {a} against {b}"
        ),
    }
}

#[test]
fn the_sdk_reference_request_with_every_parameter_converts() {
    let body = fixture("request_full.json");
    let req = MessagesRequest::read(&body).unwrap();
    assert_eq!(req.thinking, Some(ThinkingConfig::Adaptive));
    assert_eq!(
        req.tool_choice,
        Some(ToolChoice::Auto {
            disable_parallel_tool_use: true
        })
    );
    assert!(req.tools.as_ref().unwrap()[0].is_custom());
    let Converted {
        chat,
        anthropic_only,
    } = Converted::try_from(req).unwrap();
    assert_eq!(anthropic_only, None);
    assert_eq!(chat.model.as_deref(), Some("anthropic/claude-opus-4.6"));
    assert_eq!(chat.max_tokens, Some(1024));
    assert_eq!(chat.top_k, Some(5));
    assert_eq!(chat.stop, Some(crate::api::Stop::Many(vec!["END".into()])));
    let system = chat.messages[0].content.as_ref().unwrap().parts();
    assert_eq!(chat.messages[0].role, crate::api::Role::System);
    assert_eq!(system[0].as_text(), Some("Today is a Thursday."));
    assert_eq!(system[0].cache_control().unwrap()["ttl"], "5m");
    let tool = &chat.tools.as_ref().unwrap()[0].function;
    assert_eq!(tool.name, "get_weather");
    assert_eq!(
        tool.parameters.as_ref().unwrap()["required"],
        json!(["location"])
    );
    assert_eq!(chat.tool_choice, Some(crate::api::ToolChoice::Auto));
    assert_eq!(chat.extra["parallel_tool_calls"], json!(false));
    assert_eq!(
        serde_json::to_value(&chat.reasoning).unwrap(),
        json!({"effort": "medium"})
    );
    assert_eq!(chat.extra["user"], "4f1c2b9e-user");
    // Anthropic's own parameters stay in the body an Anthropic endpoint gets, not here.
    for k in [
        "container",
        "output_config",
        "service_tier",
        "cache_control",
        "inference_geo",
    ] {
        assert!(!chat.extra.contains_key(k), "{k}");
    }
    let sent = native_body(&body, "claude-opus-4-6", 64000);
    assert_eq!(sent["output_config"], body["output_config"]);
    assert_eq!(sent["model"], "claude-opus-4-6");
}

#[test]
fn content_blocks_of_every_kind_convert() {
    let body = fixture("request_blocks.json");
    let req = MessagesRequest::read(&body).unwrap();
    let blocks = |i: usize| match &req.messages.as_ref().unwrap()[i].content {
        TextOr::Blocks(b) => b.clone(),
        TextOr::Text(_) => panic!("blocks expected"),
    };
    assert!(matches!(
        &blocks(0)[3],
        ContentBlockParam::Document(DocumentSource::Text { data }) if data == "The grass is green."
    ));
    assert_eq!(blocks(1)[1], ContentBlockParam::RedactedThinking);
    let ContentBlockParam::ToolResult(result) = &blocks(2)[0] else {
        panic!("a tool result")
    };
    assert!(result.is_error);
    let Converted {
        chat,
        anthropic_only,
    } = Converted::try_from(req).unwrap();
    assert_eq!(
        anthropic_only, None,
        "a search result inside a tool result is left out"
    );
    let roles: Vec<&str> = chat.messages.iter().map(|m| m.role.as_str()).collect();
    assert_eq!(roles, ["user", "assistant", "tool", "user"]);
    let user = chat.messages[0].content.as_ref().unwrap().parts();
    let urls: Vec<&str> = user
        .iter()
        .filter_map(|p| p.image_url().map(|u| u.url.as_str()))
        .collect();
    assert_eq!(
        urls,
        [
            "data:image/png;base64,iVBORw0KGgo=",
            "https://example.com/cat.jpg",
            "data:application/pdf;base64,JVBERi0=",
            "https://example.com/a.pdf"
        ]
    );
    assert_eq!(user[3].as_text(), Some("The grass is green."));
    let assistant = &chat.messages[1];
    assert_eq!(assistant.extra["reasoning"], "The user wants a summary.");
    assert!(assistant.content.is_none());
    let call = &assistant.tool_calls.as_ref().unwrap()[0];
    assert_eq!(
        (call.id.as_str(), call.function.arguments.as_str()),
        ("toolu_01A", "{\"location\":\"Lyon\"}")
    );
    assert_eq!(chat.messages[2].tool_call_id.as_deref(), Some("toolu_01A"));
    assert_eq!(chat.messages[2].text(), "Error: station offline");
    let image = chat.messages[3].content.as_ref().unwrap().parts();
    assert_eq!(
        image[0].image_url().unwrap().url,
        "data:image/jpeg;base64,/9j/4AAQ"
    );
    assert_eq!(
        serde_json::to_value(&chat.reasoning).unwrap(),
        json!({"max_tokens": 1024})
    );
}

/// The error of a valid request with `field` set to `v`.
fn with(field: &str, v: Value) -> String {
    let mut b =
        json!({"model": "a/b", "max_tokens": 5, "messages": [{"role": "user", "content": "x"}]});
    b[field] = v;
    convert(&b).unwrap_err().to_string()
}

/// The error of a request whose one user message has `content`.
fn user(content: Value) -> String {
    with("messages", json!([{"role": "user", "content": content}]))
}

#[test]
fn parse_errors_name_the_path() {
    let cases = [
        (with("messages", json!({})), "messages: must be an array"),
        (
            with("messages", json!([1])),
            "messages[0]: must be an object",
        ),
        (
            with("messages", json!([{"role": 5, "content": "x"}])),
            "messages[0].role: invalid type",
        ),
        (
            with("messages", json!([{"role": "user"}])),
            "messages[0].content: must be a string or an array of blocks",
        ),
        (with("messages", json!([])), "messages: must not be empty"),
    ];
    for (got, want) in cases {
        assert!(got.contains(want), "{got:?} should contain {want:?}");
    }
}

#[test]
fn parse_errors_name_the_path_into_content_blocks() {
    let cases = [
        (
            user(json!([{"type": "text"}])),
            "messages[0].content[0].text: is required",
        ),
        (
            user(json!([{"text": "x"}])),
            "messages[0].content[0].type: is required",
        ),
        (
            user(json!([{"type": "image", "source": {"type": "base64", "data": "AA"}}])),
            "messages[0].content[0].source.media_type: is required",
        ),
        (
            user(json!([{"type": "document", "source": {"type": "content", "content": []}}])),
            "messages[0].content[0].source.type: must be base64, url or text, not content",
        ),
        (
            user(
                json!([{"type": "tool_result", "tool_use_id": "t", "content": [{"type": "image"}]}]),
            ),
            "messages[0].content[0].content[0].source: is required",
        ),
        (
            user(json!([{"type": "tool_result", "tool_use_id": "nope", "content": "x"}])),
            "messages[0].tool_call_id: \"nope\" answers no tool call",
        ),
    ];
    for (got, want) in cases {
        assert!(got.contains(want), "{got:?} should contain {want:?}");
    }
}

#[test]
fn parse_errors_name_the_path_of_other_fields() {
    let cases = [
        (
            with("provider", json!({"max_price": {"prompt": "cheap"}})),
            "provider.max_price.prompt: must be a non-negative number",
        ),
        (with("max_tokens", json!("100")), "max_tokens: invalid type"),
        (
            with("max_tokens", json!(0)),
            "max_tokens: must be a whole number from 1 to 10000000, not 0",
        ),
        (
            with("temperature", json!(3)),
            "temperature: must be between 0 and 2, not 3",
        ),
        (
            with("tools", json!([{"name": "ok"}, {"name": "bad name!"}])),
            "tools[1].function.name: must be 1 to 128",
        ),
        (
            with("tools", json!([{"name": "f"}, {"name": "f"}])),
            "defined twice",
        ),
        (
            with("tools", json!([{"name": 5}])),
            "tools[0].name: invalid type",
        ),
        (
            with("tool_choice", json!({"type": "sometimes"})),
            "tool_choice.type: must be auto, any, tool or none",
        ),
        (
            with("tool_choice", json!({"type": "tool"})),
            "tool_choice.name: is required",
        ),
        (
            with("tool_choice", json!({"type": "any"})),
            "tool_choice: \"required\" needs at least one tool",
        ),
        (
            with("stop_sequences", json!(vec!["x"; 17])),
            "stop: at most 16 stop sequences",
        ),
        (with("model", json!("")), "model: must not be empty"),
        (
            with("system", json!(5)),
            "system: must be a string or an array of blocks",
        ),
        (
            with("system", json!([{"type": "text"}])),
            "system[0].text: is required",
        ),
        (
            with("thinking", json!({"type": "enabled", "budget_tokens": -1})),
            "thinking.budget_tokens: invalid value",
        ),
        (
            with("metadata", json!({"user_id": 5})),
            "metadata.user_id: invalid type",
        ),
    ];
    for (got, want) in cases {
        assert!(got.contains(want), "{got:?} should contain {want:?}");
    }
}

#[test]
fn kinds_anthropic_adds_are_tolerated_or_refused_by_name() {
    let e = convert(&json!([1])).unwrap_err();
    assert_eq!(e.to_string(), "The body must be a JSON object");
    // Kinds Anthropic adds reach the conversion: a new thinking mode or tool choice is
    // tolerated where it can be, a new block is refused by name.
    let later = json!({"model": "a/b", "max_tokens": 5, "messages": [{"role": "user", "content": "x"}],
        "thinking": {"type": "interleaved", "level": 3}, "tool_choice": {"type": "auto", "mode": "new"}});
    let chat = convert(&later).unwrap().chat;
    assert!(!chat.extra.contains_key("reasoning"));
    assert_eq!(chat.tool_choice, Some(crate::api::ToolChoice::Auto));
    assert!(user(json!([{"type": "hologram", "beam": 1}]))
        .contains("unknown content block type \"hologram\""));
}

#[test]
fn a_reply_has_the_shape_of_anthropics() {
    let c = meta().completion(
        vec![Choice {
            index: 0,
            message: AssistantMessage::text("Two teas and a coffee."),
            finish_reason: Some("stop".into()),
            native_finish_reason: None,
            logprobs: None,
        }],
        Some(Usage::new(406, 50)),
    );
    let ours = serde_json::to_value(reply(&c)).unwrap();
    let theirs = fixture("reply.json");
    same_shape(&ours, &theirs, "reply");
    assert_eq!(ours["stop_reason"], "end_turn");
    assert_eq!(ours["usage"]["cache_read_input_tokens"], 0);
    let keys = |v: &Value| v.as_object().unwrap().keys().cloned().collect::<Vec<_>>();
    let mut want = keys(&theirs);
    want.sort();
    let mut got = keys(&ours);
    got.sort();
    assert_eq!(got, want, "every top-level field of a reply");

    let e = Error::NotFound("The requested resource could not be found.".into());
    let mut body = serde_json::to_value(error_body(&e)).unwrap();
    // OpenRouter's typed `error_type` rides inside Anthropic's `error`; the rest is
    // Anthropic's own shape.
    let added = body["error"].as_object_mut().unwrap().remove("error_type");
    assert_eq!(added, Some(json!("not_found")));
    same_shape(&body, &fixture("error.json"), "error");
    assert_eq!(body["error"]["type"], "not_found_error");
}

#[test]
fn streams_have_the_events_of_anthropics() {
    let m = meta();
    let text = |t: &str| Delta {
        content: Some(t.into()),
        ..Default::default()
    };
    let mut enc = StreamEncoder::new(11);
    let mut out = enc.chunk(&m.delta_chunk(text("Hi"), None));
    out.extend(enc.chunk(&m.delta_chunk(text(" you"), Some("stop"))));
    out.extend(enc.close(&m.chunk(Vec::new()), &Usage::new(11, 6)));
    let ours = sse_events(&String::from_utf8(out).unwrap());
    let theirs = sse_fixture("stream_text.sse");
    assert_eq!(ours.len(), theirs.len());
    for ((on, od), (tn, td)) in ours.iter().zip(&theirs) {
        assert_eq!(on, tn);
        assert_eq!(
            od["type"],
            Value::String(on.clone()),
            "the event name is its type"
        );
        same_shape(od, td, on);
    }

    let mut enc = StreamEncoder::new(377);
    let call = |args: &str, id: Option<&str>| Delta {
        tool_calls: Some(vec![ToolCallDelta {
            index: 0,
            id: id.map(str::to_string),
            kind: None,
            function: Some(FunctionCallDelta {
                name: id.map(|_| "get_weather".to_string()),
                arguments: Some(args.into()),
            }),
        }]),
        ..Default::default()
    };
    let mut out = enc.chunk(&m.delta_chunk(text("Checking."), None));
    out.extend(enc.chunk(&m.delta_chunk(call("{\"location\": \"Ly", Some("toolu_1")), None)));
    out.extend(enc.chunk(&m.delta_chunk(call("on\"}", None), Some("tool_calls"))));
    out.extend(enc.close(&m.chunk(Vec::new()), &Usage::new(377, 65)));
    let ours = sse_events(&String::from_utf8(out).unwrap());
    let theirs = sse_fixture("stream_tool_use.sse");
    // Anthropic opens a tool's input with an empty delta, which carries nothing.
    let theirs: Vec<_> = theirs
        .into_iter()
        .filter(|(_, d)| d["delta"]["partial_json"] != "")
        .collect();
    let names = |e: &[(String, Value)]| e.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>();
    assert_eq!(names(&ours), names(&theirs));
    for ((on, od), (_, td)) in ours.iter().zip(&theirs) {
        same_shape(od, td, on);
    }
    let json: String = ours
        .iter()
        .filter_map(|(_, d)| d["delta"]["partial_json"].as_str())
        .collect();
    assert_eq!(
        serde_json::from_str::<Value>(&json).unwrap(),
        json!({"location": "Lyon"})
    );
}

#[test]
fn anthropics_web_fetch_becomes_the_gateways_on_other_families() {
    use crate::api::server_tools::{ServerTool, WebFetchParams};
    let body = json!({
        "model": "a/b", "max_tokens": 100,
        "messages": [{"role": "user", "content": "read https://docs.example.com/x"}],
        "tools": [{"type": "web_fetch_20250910", "name": "web_fetch", "max_uses": 3,
                   "allowed_domains": ["docs.example.com"], "max_content_tokens": 5000,
                   "citations": {"enabled": true}, "cache_control": {"type": "ephemeral"}}]
    });
    let c = convert(&body).unwrap();
    // Any family serves it: nothing Anthropic-only is left.
    assert_eq!(c.anthropic_only, None);
    assert_eq!(
        c.chat.server_tools,
        [ServerTool::WebFetch(WebFetchParams {
            max_uses: 3,
            max_content_tokens: Some(5000),
            allowed_domains: vec!["docs.example.com".into()],
            blocked_domains: vec![],
        })]
    );
    // No client functions: none sent.
    assert_eq!(c.chat.tools, None);
    let bad = json!({
        "model": "a/b", "max_tokens": 100, "messages": [{"role": "user", "content": "x"}],
        "tools": [{"type": "custom", "name": "f", "input_schema": {"type": "object"}},
                  {"type": "web_fetch_20250910", "name": "web_fetch", "max_uses": 0}]
    });
    let e = convert(&bad).unwrap_err();
    assert!(
        e.to_string()
            .starts_with("tools[1].max_uses: must be between 1 and 30"),
        "{e}"
    );
}

#[test]
fn the_served_tier_is_in_usage_in_anthropic_words() {
    let done = |tier: Option<&str>| {
        let mut c = meta().completion(
            vec![Choice {
                index: 0,
                message: AssistantMessage::text("hi"),
                finish_reason: Some("stop".into()),
                native_finish_reason: None,
                logprobs: None,
            }],
            Some(Usage::new(10, 3)),
        );
        c.service_tier = tier.map(str::to_string);
        serde_json::to_value(reply(&c)).unwrap()["usage"].clone()
    };
    assert_eq!(done(Some("priority"))["service_tier"], "priority");
    assert_eq!(done(Some("default"))["service_tier"], "standard");
    assert_eq!(done(Some("flex"))["service_tier"], "standard");
    assert!(done(None).get("service_tier").is_none());
}
