use super::*;
use crate::api::{
    AssistantMessage, ChatCompletion, Choice, Delta, FunctionCall, FunctionCallDelta,
    GenerationMeta, ToolCall, ToolCallDelta, Usage,
};
use crate::error::Error;
use serde_json::json;

/// A completion's `response` object as JSON.
fn reply(c: &ChatCompletion, echo: &Echo) -> Result<Value> {
    Ok(serde_json::to_value(response(c, echo)).unwrap())
}

/// The chat request of a Responses body.
fn to_chat(body: &Value) -> Result<ChatRequest> {
    parse(body.to_string().as_bytes()).map(|(chat, _)| chat)
}

fn meta() -> GenerationMeta {
    GenerationMeta {
        id: "gen-1-x".into(),
        created: 7,
        model: "a/b".into(),
        provider: "P".into(),
    }
}

#[test]
fn input_items_become_chat_messages() {
    let body = json!({
        "model": "a/b",
        "instructions": "be brief",
        "input": [
            {"role": "user", "content": [{"type": "input_text", "text": "weather?"}, {"type": "input_image", "image_url": "https://x/y.png", "detail": "low"}]},
            {"type": "reasoning", "id": "rs_1", "summary": []},
            {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "checking"}]},
            {"type": "function_call", "call_id": "c1", "name": "get_weather", "arguments": "{\"city\":\"Paris\"}"},
            {"type": "function_call_output", "call_id": "c1", "output": "sunny"},
        ],
        "tools": [{"type": "function", "name": "get_weather", "parameters": {"type": "object", "properties": {}}}],
        "tool_choice": {"type": "function", "name": "get_weather"},
        "max_output_tokens": 50,
        "text": {"format": {"type": "json_schema", "name": "w", "schema": {"type": "object"}}},
        "reasoning": {"effort": "low", "summary": "auto"},
        "store": false,
    });
    let r = to_chat(&body).unwrap();
    let roles: Vec<&str> = r.messages.iter().map(|m| m.role.as_str()).collect();
    assert_eq!(roles, ["system", "user", "assistant", "tool"]);
    assert_eq!(
        r.messages[2].tool_calls.as_ref().unwrap()[0].function.name,
        "get_weather"
    );
    assert_eq!(r.messages[2].text(), "checking");
    assert_eq!(r.messages[3].tool_call_id.as_deref(), Some("c1"));
    assert_eq!(r.max_tokens, Some(50));
    assert_eq!(r.tools.as_ref().unwrap()[0].function.name, "get_weather");
    assert_eq!(
        serde_json::to_value(&r.tool_choice).unwrap()["function"]["name"],
        "get_weather"
    );
    assert_eq!(
        serde_json::to_value(&r.response_format).unwrap()["json_schema"]["name"],
        "w"
    );
    assert_eq!(
        serde_json::to_value(&r.reasoning).unwrap(),
        json!({"effort": "low"})
    );
    let p = r.messages[1].content.as_ref().unwrap().parts();
    assert_eq!(p[1].image_url().unwrap().url, "https://x/y.png");
    assert_eq!(
        to_chat(&json!({"model": "a/b", "input": "hi"}))
            .unwrap()
            .messages[0]
            .text(),
        "hi"
    );
}

#[test]
fn unsupported_input_names_the_field() {
    for (body, want) in [
        (json!({"model": "a/b"}), "input: is required"),
        (
            json!({"model": "a/b", "input": 5}),
            "input: must be a string or an array",
        ),
        (
            json!({"model": "a/b", "input": [{"type": "item_reference", "id": "x"}]}),
            "input[0].type: item type \"item_reference\"",
        ),
        (
            json!({"model": "a/b", "input": "x", "previous_response_id": "resp_1"}),
            "previous_response_id",
        ),
        (
            json!({"model": "a/b", "input": "x", "tools": [{"type": "computer_use_preview"}]}),
            "tools[0].type: only function tools",
        ),
        (
            json!({"model": "a/b", "input": [{"role": "wizard", "content": "x"}]}),
            "input[0].role: unknown role",
        ),
        (
            json!({"model": "a/b", "input": [{"role": "user", "content": [{"type": "input_image", "file_id": "f"}]}]}),
            "input[0].content[0].image_url",
        ),
        (
            json!({"model": "a/b", "input": "x", "text": {"format": {"type": "yaml"}}}),
            "text.format.type",
        ),
        (
            json!({"model": "a/b", "input": [{"type": "function_call_output", "call_id": "nope", "output": "x"}]}),
            "answers no tool call",
        ),
    ] {
        let e = to_chat(&body).unwrap_err();
        assert_eq!(e.status(), 400, "{body}");
        assert!(e.to_string().contains(want), "{e}");
    }
}

/// The call to `f` (ID `c9`) the reply tests make.
fn call_f() -> ToolCall {
    ToolCall {
        id: "c9".into(),
        kind: "function".into(),
        function: FunctionCall {
            name: "f".into(),
            arguments: "{}".into(),
        },
    }
}

/// A completion of `msg` that stopped for its tool calls.
fn stopped_for_calls(msg: AssistantMessage, usage: Option<Usage>) -> ChatCompletion {
    meta().completion(
        vec![Choice {
            index: 0,
            message: msg,
            finish_reason: Some("tool_calls".into()),
            native_finish_reason: None,
            logprobs: None,
        }],
        usage,
    )
}

#[test]
fn replies_have_output_items() {
    let mut msg = AssistantMessage::text("Paris is sunny");
    msg.reasoning = Some("think".into());
    msg.tool_calls = Some(vec![call_f()]);
    let c = stopped_for_calls(msg, Some(Usage::new(10, 5)));
    let v = reply(
        &c,
        &Echo::of(
            json!({"temperature": 0.5, "tools": [], "max_output_tokens": 9})
                .as_object()
                .unwrap(),
        ),
    )
    .unwrap();
    assert_eq!(v["object"], "response");
    assert_eq!(v["status"], "completed");
    let types: Vec<&str> = v["output"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["type"].as_str().unwrap())
        .collect();
    assert_eq!(types, ["reasoning", "message", "function_call"]);
    assert_eq!(v["output"][2]["call_id"], "c9");
    assert_eq!(v["output_text"], "Paris is sunny");
    assert_eq!(v["usage"]["input_tokens"], 10);
    assert_eq!(v["usage"]["total_tokens"], 15);
    assert_eq!(v["temperature"], 0.5);
    assert_eq!(v["max_output_tokens"], 9);
}

#[test]
fn reasoning_details_round_trip_through_reasoning_items() {
    let details = json!([
        {"type": "reasoning.text", "text": "I should call f.", "signature": "EqQBsig",
         "format": "anthropic-claude-v1", "index": 0},
        {"type": "reasoning.encrypted", "data": "c2ln", "id": "c9",
         "format": "google-gemini-v1", "index": 1}
    ]);
    let msg = AssistantMessage {
        role: "assistant".into(),
        reasoning: Some("I should call f.".into()),
        reasoning_details: Some(details.clone()),
        tool_calls: Some(vec![call_f()]),
        ..Default::default()
    };
    let c = stopped_for_calls(msg, None);
    let out = reply(&c, &Echo::default()).unwrap()["output"].clone();
    assert_eq!(out[0]["type"], "reasoning");
    assert!(out[0]["encrypted_content"]
        .as_str()
        .unwrap()
        .starts_with("mmx1."));
    // The next turn sends the output items back: the details return with the call.
    let mut input = vec![json!({"role": "user", "content": "go"})];
    input.extend(out.as_array().unwrap().iter().cloned());
    input.push(json!({"type": "function_call_output", "call_id": "c9", "output": "ok"}));
    let r = to_chat(&json!({"model": "a/b", "input": input})).unwrap();
    let roles: Vec<&str> = r.messages.iter().map(|m| m.role.as_str()).collect();
    assert_eq!(roles, ["user", "assistant", "tool"]);
    assert_eq!(r.messages[1].extra["reasoning_details"], details);
    assert_eq!(r.messages[1].tool_calls.as_ref().unwrap()[0].id, "c9");
    // OpenAI's own reasoning items and OpenRouter's signed ones are kept too; one
    // that no turn followed is dropped.
    let r = to_chat(&json!({"model": "a/b", "input": [
        {"role": "user", "content": "go"},
        {"type": "reasoning", "id": "rs_x", "summary": [], "encrypted_content": "gAAAAB-openai"},
        {"type": "reasoning", "id": "rs_y", "format": "anthropic-claude-v1", "signature": "EqSig",
         "summary": [{"type": "summary_text", "text": "hm"}]},
        {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "done"}]},
        {"role": "user", "content": "again"},
        {"type": "reasoning", "id": "rs_z", "summary": [], "encrypted_content": "gAAAAB-dangling"}
    ]}))
    .unwrap();
    assert_eq!(r.messages.len(), 3);
    assert_eq!(r.messages[1].text(), "done");
    assert_eq!(
        r.messages[1].extra["reasoning_details"],
        json!([
            {"type": "reasoning.encrypted", "data": "gAAAAB-openai", "format": "openai-responses-v1", "index": 0, "id": "rs_x"},
            {"type": "reasoning.text", "text": "hm", "signature": "EqSig", "format": "anthropic-claude-v1", "index": 0}
        ])
    );
}

#[test]
fn streamed_reasoning_items_carry_the_joined_details() {
    let m = meta();
    let mut enc = StreamEncoder::new(Echo::default());
    let mut out = Vec::new();
    for (text, sig) in [("I should ", None), ("call f.", Some("EqQBsig"))] {
        let mut d = json!({"type": "reasoning.text", "text": text, "format": "anthropic-claude-v1", "index": 0});
        if let Some(sig) = sig {
            d["signature"] = json!(sig);
        }
        out.extend(enc.chunk(&m.delta_chunk(
            Delta {
                reasoning: Some(text.into()),
                reasoning_details: Some(json!([d])),
                ..Default::default()
            },
            None,
        )));
    }
    // A signature that comes with a call, after the reasoning item closed.
    out.extend(enc.chunk(&m.delta_chunk(said("ok"), None)));
    out.extend(enc.chunk(&m.delta_chunk(
        Delta {
            reasoning_details: Some(json!([{"type": "reasoning.encrypted", "data": "c2ln", "id": "c1", "format": "google-gemini-v1", "index": 1}])),
            ..call(0, Some(("c1", "f")), "{}")
        },
        Some("tool_calls"),
    )));
    out.extend(enc.close(&m.chunk(Vec::new()), &Usage::new(3, 4)));
    let evs = events(&out);
    let output = evs.last().unwrap()["response"]["output"].clone();
    let types: Vec<&str> = output
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["type"].as_str().unwrap())
        .collect();
    assert_eq!(
        types,
        ["reasoning", "message", "reasoning", "function_call"]
    );
    let unpack = |i: usize| {
        crate::api::unpack_reasoning(output[i]["encrypted_content"].as_str().unwrap()).unwrap()
    };
    assert_eq!(
        unpack(0),
        vec![
            json!({"type": "reasoning.text", "text": "I should call f.", "signature": "EqQBsig",
                    "format": "anthropic-claude-v1", "index": 0})
        ]
    );
    assert_eq!(unpack(2)[0]["id"], "c1");
    assert_ne!(output[0]["id"], output[2]["id"]);
    assert_eq!(output[0]["summary"][0]["text"], "I should call f.");
}

/// A delta of text.
fn said(text: &str) -> Delta {
    Delta {
        content: Some(text.into()),
        ..Default::default()
    }
}

/// A delta of tool call `index`: its start (with `id` and `name`) or more arguments.
fn call(index: u32, start: Option<(&str, &str)>, args: &str) -> Delta {
    Delta {
        tool_calls: Some(vec![ToolCallDelta {
            index,
            id: start.map(|(id, _)| id.into()),
            kind: start.map(|_| "function".into()),
            function: Some(FunctionCallDelta {
                name: start.map(|(_, name)| name.into()),
                arguments: Some(args.into()),
            }),
        }]),
        ..Default::default()
    }
}

/// The JSON data of each event of a Responses stream.
pub(super) fn events(bytes: &[u8]) -> Vec<Value> {
    String::from_utf8(bytes.to_vec())
        .unwrap()
        .split("\n\n")
        .filter_map(|e| e.lines().find_map(|l| l.strip_prefix("data: ")))
        .map(|d| serde_json::from_str(d).unwrap())
        .collect()
}

#[test]
fn streams_follow_the_event_sequence() {
    let m = meta();
    let mut enc = StreamEncoder::new(Echo::default());
    let mut out = Vec::new();
    out.extend(enc.chunk(&m.delta_chunk(
        Delta {
            role: Some("assistant".into()),
            content: Some(String::new()),
            ..Default::default()
        },
        None,
    )));
    out.extend(enc.chunk(&m.delta_chunk(said("Hel"), None)));
    out.extend(enc.chunk(&m.delta_chunk(said("lo"), None)));
    out.extend(enc.chunk(&m.delta_chunk(call(0, Some(("c1", "f")), "{\"a\""), None)));
    out.extend(enc.chunk(&m.delta_chunk(call(0, None, ":1}"), Some("tool_calls"))));
    out.extend(enc.close(&m.chunk(Vec::new()), &Usage::new(3, 4)));
    let evs = events(&out);
    let types: Vec<&str> = evs.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(
        types,
        [
            "response.created",
            "response.in_progress",
            "response.output_item.added",
            "response.content_part.added",
            "response.output_text.delta",
            "response.output_text.delta",
            "response.output_text.done",
            "response.content_part.done",
            "response.output_item.done",
            "response.output_item.added",
            "response.function_call_arguments.delta",
            "response.function_call_arguments.delta",
            "response.function_call_arguments.done",
            "response.output_item.done",
            "response.completed",
        ]
    );
    for (i, e) in evs.iter().enumerate() {
        assert_eq!(e["sequence_number"], i as u64);
    }
    let done = evs.last().unwrap();
    assert_eq!(done["response"]["output"][0]["content"][0]["text"], "Hello");
    assert_eq!(done["response"]["output"][1]["arguments"], "{\"a\":1}");
    assert_eq!(done["response"]["output"][1]["call_id"], "c1");
    assert_eq!(done["response"]["usage"]["output_tokens"], 4);
    let mut enc = StreamEncoder::new(Echo::default());
    let failed = events(&enc.fail(&m.chunk(Vec::new()), &Error::upstream("p", "boom")));
    assert_eq!(failed.last().unwrap()["type"], "response.failed");
    assert_eq!(failed.last().unwrap()["response"]["status"], "failed");
}

#[test]
fn the_request_is_read_into_its_wire_types() {
    let body = json!({
        "model": "a/b",
        "input": [
            {"role": "user", "content": "hi"},
            {"type": "function_call", "call_id": "c1", "name": "f"},
            {"type": "function_call_output", "call_id": "c1", "output": [{"type": "input_text", "text": "a"}, {"type": "input_text", "text": "b"}]}
        ],
        "tools": [{"type": "function", "name": "f", "strict": true}],
        "tool_choice": "required",
        "text": {"format": {"type": "json_object"}},
        "reasoning": {"effort": "high", "summary": "auto"},
        "seed": 3,
        "store": false,
        "temperature": 0.5
    });
    let r = ResponsesRequest::parse(body.to_string().as_bytes()).unwrap();
    let Input::Items(items) = &r.input else {
        panic!("{:?}", r.input)
    };
    assert!(matches!(
        &items[0],
        InputItem::Message {
            role: crate::api::Role::User,
            ..
        }
    ));
    let InputItem::FunctionCall(call) = &items[1] else {
        panic!("{:?}", items[1])
    };
    assert_eq!(
        (call.id.as_str(), call.function.arguments.as_str()),
        ("c1", "{}")
    );
    assert_eq!(
        items[2],
        InputItem::FunctionCallOutput {
            call_id: "c1".into(),
            output: "a\nb".into()
        }
    );
    assert_eq!(r.tools.as_ref().unwrap()[0].0.strict, Some(true));
    assert_eq!(r.tool_choice, Some(crate::api::ToolChoice::Required));
    assert_eq!(r.format, Some(crate::api::ResponseFormat::JsonObject));
    assert_eq!(r.effort, Some(crate::api::Effort::High));
    // Passed on: what chat takes; dropped: what it does not (`store`).
    assert_eq!(r.extra.keys().collect::<Vec<_>>(), ["seed"]);
    assert_eq!(r.echo.0["temperature"], 0.5);
    let e = ResponsesRequest::parse(br#"{"model": "a/b", "input": "x", "temperature": "hot"}"#)
        .unwrap_err();
    assert_eq!(e.to_string(), "temperature: must be a number, not a string");
}

#[test]
fn openais_mcp_tool_becomes_a_server_tool() {
    use crate::api::server_tools::{McpServer, ServerTool};
    // The shape the official `openai` SDK sends (`Tool.Mcp`).
    let body = json!({
        "model": "a/b",
        "input": "add 2 and 3",
        "tools": [
            {"type": "mcp", "server_label": "calc", "server_url": "https://mcp.example.com/mcp",
             "server_description": "A calculator", "headers": {"X-Team": "blue"},
             "authorization": "tok-1", "allowed_tools": {"tool_names": ["add"]},
             "require_approval": "never"},
            {"type": "function", "name": "local", "parameters": {"type": "object"}}
        ],
    });
    let chat = to_chat(&body).unwrap();
    assert_eq!(
        chat.server_tools,
        [ServerTool::Mcp(McpServer {
            server_label: "calc".into(),
            server_url: "https://mcp.example.com/mcp".into(),
            headers: vec![
                ("X-Team".into(), "blue".into()),
                ("Authorization".into(), "Bearer tok-1".into())
            ],
            allowed_tools: Some(vec!["add".into()]),
        })]
    );
    let tools = chat.tools.unwrap();
    assert_eq!(tools.len(), 1);
    assert_eq!(tools[0].function.name, "local");
    // Only server tools: no client functions to send.
    let only = json!({"model": "a/b", "input": "x", "tools": [
        {"type": "mcp", "server_label": "calc", "server_url": "https://mcp.example.com/mcp"}]});
    let chat = to_chat(&only).unwrap();
    assert_eq!(chat.tools, None);
    assert_eq!(chat.server_tools.len(), 1);
}

#[test]
fn mcp_tools_this_gateway_cannot_run_are_refused_naming_the_field() {
    for (tool, want) in [
        (
            json!({"type": "mcp", "server_label": "c", "server_url": "https://m.example/mcp"}),
            None,
        ),
        (
            json!({"type": "mcp", "server_label": "c", "server_url": "https://m.example/mcp", "require_approval": "always"}),
            Some("tools[0].require_approval: only \"never\" is supported"),
        ),
        (
            json!({"type": "mcp", "server_label": "c", "server_url": "https://m.example/mcp",
                   "require_approval": {"never": {"tool_names": ["add"]}}}),
            Some("tools[0].require_approval"),
        ),
        (
            json!({"type": "mcp", "server_label": "c", "connector_id": "connector_gmail"}),
            Some("tools[0].connector_id: OpenAI's connectors are not available"),
        ),
        (
            json!({"type": "mcp", "server_label": "c"}),
            Some("tools[0].server_url"),
        ),
        (
            json!({"type": "code_interpreter", "container": {"type": "auto"}}),
            Some("tools[0].type: only function tools and the gateway's server tools"),
        ),
    ] {
        let body = json!({"model": "a/b", "input": "x", "tools": [tool]});
        match (to_chat(&body), want) {
            (Ok(_), None) => {}
            (Err(e), Some(want)) => {
                assert_eq!(e.status(), 400);
                assert!(e.to_string().contains(want), "{e}");
            }
            (got, want) => panic!("{body}: {got:?}, wanted {want:?}"),
        }
    }
}

#[test]
fn the_served_tier_is_in_the_response() {
    let mut c = stopped_for_calls(AssistantMessage::text("hi"), Some(Usage::new(10, 5)));
    c.service_tier = Some("flex".into());
    let v = reply(&c, &Echo::default()).unwrap();
    assert_eq!(v["service_tier"], "flex");
    c.service_tier = None;
    let v = reply(&c, &Echo::default()).unwrap();
    assert!(v.get("service_tier").is_none());
}

#[test]
fn the_service_tier_asked_for_reaches_routing_and_a_bad_one_is_refused() {
    use crate::api::service_tier::{asked, Asked};
    let body = br#"{"model": "a/b", "input": "x", "service_tier": "flex"}"#;
    let chat = ChatRequest::try_from(ResponsesRequest::parse(body).unwrap()).unwrap();
    assert_eq!(asked(&chat), Some(Asked::Flex));
    let body = br#"{"model": "a/b", "input": "x", "service_tier": "cheap"}"#;
    let e = ChatRequest::try_from(ResponsesRequest::parse(body).unwrap()).unwrap_err();
    assert_eq!(
        e.to_string(),
        "service_tier: must be one of auto, default, flex, priority, fast"
    );
}
