use serde_json::{json, Value};

use super::super::{response_with, Echo, StreamEncoder};
use crate::api::server_tools::{McpServer, ServerCall, ServerTool, ToolOutput};
use crate::api::server_turn::Turn;
use crate::api::tool_loop::{stream_bytes, Limits, Loop};
use crate::api::{ChatCompletion, FunctionDef};

/// A loop offered `calc`'s `add` and `fail`, that called each once, then answered.
fn called_twice() -> (ChatCompletion, Turn) {
    let server = McpServer {
        server_label: "calc".into(),
        server_url: "https://mcp.example/mcp".into(),
        headers: Vec::new(),
        allowed_tools: None,
    };
    let mut lp = Loop::new(vec![ServerTool::Mcp(server)], Limits::default());
    lp.functions = vec![
        FunctionDef {
            name: "mcp__calc__add".into(),
            description: Some("Adds two numbers".into()),
            parameters: Some(json!({"type": "object", "properties": {"a": {"type": "number"}}})),
            strict: None,
        },
        FunctionDef {
            name: "mcp__calc__fail".into(),
            description: None,
            parameters: None,
            strict: None,
        },
    ];
    let out = |content: &str, is_error: bool| ToolOutput {
        content: content.into(),
        is_error,
        ..ToolOutput::default()
    };
    for (n, (name, args, result)) in [
        ("mcp__calc__add", r#"{"a":2,"b":3}"#, out("5", false)),
        ("mcp__calc__fail", "{}", out("Error: it failed", true)),
    ]
    .into_iter()
    .enumerate()
    {
        let call = ServerCall {
            id: format!("call_{n}"),
            name: name.into(),
            arguments: args.into(),
        };
        assert_eq!(lp.admit(0), Ok(()));
        lp.record(&[(0, call)], vec![Ok(result)]);
    }
    crate::api::server_turn::fixtures::answered(lp, "2 + 3 = 5")
}

fn expected_items() -> Value {
    json!([
        {"type": "mcp_list_tools", "id": "mcpl_gen-1-3_0", "server_label": "calc", "tools": [
            {"name": "add", "description": "Adds two numbers",
             "input_schema": {"type": "object", "properties": {"a": {"type": "number"}}}, "annotations": null},
            {"name": "fail", "description": null, "input_schema": {"type": "object"}, "annotations": null},
        ]},
        {"type": "mcp_call", "id": "mcp_gen-1-3_0", "server_label": "calc", "name": "add",
         "arguments": "{\"a\":2,\"b\":3}", "output": "5", "error": null, "status": "completed"},
        {"type": "mcp_call", "id": "mcp_gen-1-3_1", "server_label": "calc", "name": "fail",
         "arguments": "{}", "output": null, "error": "Error: it failed", "status": "failed"},
    ])
}

#[test]
fn mcp_listings_and_calls_become_items_before_the_message() {
    let (c, turn) = called_twice();
    let r = serde_json::to_value(response_with(&c, &Echo::default(), &turn)).unwrap();
    let mut want = expected_items();
    if let Value::Array(items) = &mut want {
        items.push(json!({"type": "message", "id": "msg_gen-1-3", "status": "completed",
            "role": "assistant", "content": [{"type": "output_text", "text": "2 + 3 = 5", "annotations": []}]}));
    }
    assert_eq!(r["output"], want);
}

#[test]
fn a_streamed_answer_has_the_mcp_events_before_the_text() {
    let (c, turn) = called_twice();
    let mut enc =
        crate::api::surface::Encoder::Responses(Box::new(StreamEncoder::new(Echo::default())));
    let events = super::super::tests::events(&stream_bytes(&c, &turn, &mut enc));
    let kinds: Vec<&str> = events.iter().filter_map(|e| e["type"].as_str()).collect();
    let call = |end: &'static str| {
        [
            "response.output_item.added",
            "response.mcp_call.in_progress",
            "response.mcp_call_arguments.delta",
            "response.mcp_call_arguments.done",
            end,
            "response.output_item.done",
        ]
    };
    let mut want = vec![
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.mcp_list_tools.in_progress",
        "response.mcp_list_tools.completed",
        "response.output_item.done",
    ];
    want.extend(call("response.mcp_call.completed"));
    want.extend(call("response.mcp_call.failed"));
    assert_eq!(kinds.get(..want.len()), Some(want.as_slice()));
    assert_eq!(
        events[2]["item"],
        json!({"type": "mcp_list_tools", "id": "mcpl_gen-1-3_0", "server_label": "calc", "tools": []})
    );
    assert_eq!(
        events[6]["item"],
        json!({"type": "mcp_call", "id": "mcp_gen-1-3_0", "server_label": "calc", "name": "add",
               "arguments": "", "output": null, "error": null, "status": "in_progress"})
    );
    assert_eq!(
        [
            &events[8]["delta"],
            &events[9]["arguments"],
            &events[9]["item_id"]
        ],
        [
            &json!("{\"a\":2,\"b\":3}"),
            &json!("{\"a\":2,\"b\":3}"),
            &json!("mcp_gen-1-3_0")
        ]
    );
    let done = events.last().unwrap();
    assert_eq!(done["type"], "response.completed");
    assert_eq!(
        done["response"]["output"].as_array().unwrap()[..3],
        expected_items().as_array().unwrap()[..]
    );
}
