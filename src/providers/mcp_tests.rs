use super::*;
use serde_json::json;

fn body(p: &Post) -> Value {
    serde_json::from_slice(&p.body).unwrap()
}

fn header<'a>(p: &'a Post, name: &str) -> Option<&'a str> {
    p.headers
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, v)| v.as_str())
}

fn json_reply(v: &Value) -> Vec<u8> {
    serde_json::to_vec(v).unwrap()
}

fn ok<'a>(ct: &'a str, body: &'a [u8], session: Option<&'a str>) -> Reply<'a> {
    Reply {
        status: 200,
        content_type: Some(ct),
        session_id: session,
        body,
    }
}

/// A session through `initialize`, the server giving session id `s-1`.
fn ready() -> Session {
    let mut s = Session::new();
    let init = s.initialize();
    let b = json_reply(
        &json!({"jsonrpc":"2.0","id":1,"result":{"protocolVersion":"2025-06-18","capabilities":{"tools":{}},"serverInfo":{"name":"m","version":"1"}}}),
    );
    s.on_initialize(&init, &ok("application/json", &b, Some("s-1")))
        .unwrap();
    s
}

#[test]
fn initialize_is_encoded_as_the_spec_says() {
    let mut s = Session::new();
    let p = s.initialize();
    assert_eq!(
        body(&p),
        json!({"jsonrpc":"2.0","id":1,"method":"initialize","params":{
            "protocolVersion":"2025-06-18","capabilities":{},
            "clientInfo":{"name":"modelmux","version":env!("CARGO_PKG_VERSION")}}})
    );
    assert_eq!(
        header(&p, "accept"),
        Some("application/json, text/event-stream")
    );
    assert_eq!(header(&p, "content-type"), Some("application/json"));
    // Before the server answers there is neither a session nor a version to send.
    assert_eq!(header(&p, "mcp-session-id"), None);
    assert_eq!(header(&p, "mcp-protocol-version"), None);
    assert_eq!(p.id, Some(1));
}

#[test]
fn the_session_id_and_version_go_on_every_later_message() {
    let mut s = Session::new();
    let init = s.initialize();
    let b = json_reply(
        &json!({"jsonrpc":"2.0","id":1,"result":{"protocolVersion":"2025-03-26","capabilities":{}}}),
    );
    let note = s
        .on_initialize(&init, &ok("application/json", &b, Some("abc-123")))
        .unwrap();
    assert!(s.ready());
    assert_eq!(
        body(&note),
        json!({"jsonrpc":"2.0","method":"notifications/initialized"})
    );
    assert_eq!(note.id, None);
    assert_eq!(header(&note, "mcp-session-id"), Some("abc-123"));
    let list = s.list_tools(None);
    assert_eq!(
        body(&list),
        json!({"jsonrpc":"2.0","id":2,"method":"tools/list"})
    );
    assert_eq!(header(&list, "mcp-session-id"), Some("abc-123"));
    // The version the server chose, not the one asked for.
    assert_eq!(header(&list, "mcp-protocol-version"), Some("2025-03-26"));
}

#[test]
fn a_server_without_sessions_gets_no_session_header() {
    let mut s = Session::new();
    let init = s.initialize();
    let b = json_reply(&json!({"jsonrpc":"2.0","id":1,"result":{"protocolVersion":"2025-06-18"}}));
    s.on_initialize(&init, &ok("application/json", &b, None))
        .unwrap();
    assert_eq!(header(&s.list_tools(None), "mcp-session-id"), None);
    // A session id with a control character or space is not echoed into a header.
    let mut t = Session::new();
    let init = t.initialize();
    t.on_initialize(&init, &ok("application/json", &b, Some("a b\r\nX: y")))
        .unwrap();
    assert_eq!(header(&t.list_tools(None), "mcp-session-id"), None);
}

#[test]
fn an_unsupported_protocol_version_is_refused() {
    let mut s = Session::new();
    let init = s.initialize();
    let b = json_reply(&json!({"jsonrpc":"2.0","id":1,"result":{"protocolVersion":"2024-11-05"}}));
    let e = s
        .on_initialize(&init, &ok("application/json", &b, None))
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "the MCP server's reply is not MCP: it speaks protocol version 2024-11-05, this gateway 2025-06-18 or 2025-03-26"
    );
    assert!(!s.ready());
}

#[test]
fn tools_list_pages_by_cursor() {
    let mut s = ready();
    let first = s.list_tools(None);
    let b = json_reply(&json!({"jsonrpc":"2.0","id":2,"result":{"tools":[
        {"name":"add","description":"Adds","inputSchema":{"type":"object","properties":{"a":{"type":"number"}}}}
    ],"nextCursor":"page-2"}}));
    let page: ToolsPage = response(&first, &ok("application/json", &b, None)).unwrap();
    assert_eq!(page.next_cursor.as_deref(), Some("page-2"));
    assert_eq!(page.tools.len(), 1);
    assert_eq!(page.tools[0].name, "add");
    assert_eq!(page.tools[0].description.as_deref(), Some("Adds"));
    let second = s.list_tools(page.next_cursor.as_deref());
    assert_eq!(
        body(&second),
        json!({"jsonrpc":"2.0","id":3,"method":"tools/list","params":{"cursor":"page-2"}})
    );
    let b = json_reply(&json!({"jsonrpc":"2.0","id":3,"result":{"tools":[{"name":"echo"}]}}));
    let page: ToolsPage = response(&second, &ok("application/json", &b, None)).unwrap();
    assert_eq!(page.next_cursor, None);
    // A tool without a schema takes an empty object's.
    assert_eq!(page.tools[0].input_schema, json!({"type":"object"}));
}

#[test]
fn tools_call_sends_the_models_arguments_as_they_are() {
    let mut s = ready();
    let args = RawValue::from_string(r#"{"a":1,"b":"x"}"#.into()).unwrap();
    let p = s.call_tool("add", &args);
    assert_eq!(
        body(&p),
        json!({"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"add","arguments":{"a":1,"b":"x"}}})
    );
}

#[test]
fn a_response_carried_by_sse_is_found_among_other_messages() {
    let mut s = ready();
    let p = s.call_tool("slow", &RawValue::from_string("{}".into()).unwrap());
    // A priming event without data, a progress notification, a request of the
    // server's own, then the response (its id a string, as some servers send).
    let stream = concat!(
        "id: 0\ndata:\n\n",
        "event: message\ndata: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/progress\",\"params\":{\"progress\":1}}\n\n",
        "data: {\"jsonrpc\":\"2.0\",\"id\":7,\"method\":\"roots/list\"}\n\n",
        "event: message\ndata: {\"jsonrpc\":\"2.0\",\"id\":\"2\",\n",
        "data: \"result\":{\"content\":[{\"type\":\"text\",\"text\":\"done\"}]}}\n\n",
    );
    let r: CallResult = response(
        &p,
        &ok("text/event-stream; charset=utf-8", stream.as_bytes(), None),
    )
    .unwrap();
    assert_eq!(r.text(), "done");
    assert!(!r.is_error);
    // A stream that ends without the response says so.
    let cut_short = "data: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/progress\"}\n\n";
    let e = response::<CallResult>(&p, &ok("text/event-stream", cut_short.as_bytes(), None))
        .unwrap_err();
    assert_eq!(e, McpError::Protocol("no response to request 2".into()));
}

#[test]
fn errors_come_back_typed() {
    let mut s = ready();
    let p = s.list_tools(None);
    let b = json_reply(
        &json!({"jsonrpc":"2.0","id":2,"error":{"code":-32601,"message":"Method not found"}}),
    );
    let e = response::<ToolsPage>(&p, &ok("application/json", &b, None)).unwrap_err();
    assert_eq!(
        e,
        McpError::Rpc {
            code: -32601,
            message: "Method not found".into()
        }
    );
    let r = Reply {
        status: 404,
        content_type: None,
        session_id: None,
        body: b"",
    };
    assert_eq!(
        response::<ToolsPage>(&p, &r).unwrap_err(),
        McpError::Http(404)
    );
    let html = ok("text/html", b"<html>", None);
    assert_eq!(
        response::<ToolsPage>(&p, &html).unwrap_err().to_string(),
        "the MCP server's reply is not MCP: Content-Type \"text/html\""
    );
    // A response to some other id is not this one's.
    let other = json_reply(&json!({"jsonrpc":"2.0","id":9,"result":{"tools":[]}}));
    assert_eq!(
        response::<ToolsPage>(&p, &ok("application/json", &other, None)).unwrap_err(),
        McpError::Protocol("no response to request 2".into())
    );
    // In a batch it is found.
    let batch = json_reply(
        &json!([{"jsonrpc":"2.0","method":"x"},{"jsonrpc":"2.0","id":2,"result":{"tools":[]}}]),
    );
    let page: ToolsPage = response(&p, &ok("application/json", &batch, None)).unwrap();
    assert!(page.tools.is_empty());
}

#[test]
fn notifications_are_accepted_with_any_2xx() {
    let r = |status| Reply {
        status,
        content_type: None,
        session_id: None,
        body: b"",
    };
    assert_eq!(accepted(&r(202)), Ok(()));
    assert_eq!(accepted(&r(400)), Err(McpError::Http(400)));
}

#[test]
fn call_results_read_as_text() {
    let r: CallResult = serde_json::from_value(json!({
        "content": [
            {"type":"text","text":"line one"},
            {"type":"image","data":"aGVsbG8h","mimeType":"image/png"},
            {"type":"resource","resource":{"uri":"file:///a.txt","mimeType":"text/plain","text":"inside"}},
            {"type":"resource","resource":{"uri":"file:///b.bin","blob":"AAAA"}},
            {"type":"resource_link","uri":"https://x.example/r","name":"report"},
            {"type":"something_new","x":1}
        ],
        "isError": true
    }))
    .unwrap();
    assert!(r.is_error);
    assert_eq!(
        r.text(),
        "line one\n[image/png content of 6 bytes, not shown]\n[resource file:///a.txt]\ninside\n[resource file:///b.bin (application/octet-stream), binary, not shown]\n[resource report: https://x.example/r]"
    );
    let structured: CallResult =
        serde_json::from_value(json!({"content":[],"structuredContent":{"sum":3}})).unwrap();
    assert_eq!(structured.text(), r#"{"sum":3}"#);
}

#[test]
fn long_results_are_cut_at_a_character() {
    let long = "é".repeat(MAX_OUTPUT_BYTES);
    let r = CallResult {
        content: vec![Block::Text { text: long }],
        structured_content: None,
        is_error: false,
    };
    let t = r.text();
    assert_eq!(t.len(), MAX_OUTPUT_BYTES);
    assert_eq!(cut("aé".into(), 2), "a");
}

#[test]
fn an_sse_response_is_found_as_soon_as_its_event_ends_at_any_split() {
    let mut s = ready();
    let p = s.call_tool("slow", &RawValue::from_string("{}".into()).unwrap());
    let events = "data: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/progress\"}\n\ndata: {\"jsonrpc\":\"2.0\",\"id\":2,\"result\":{\"content\":[{\"type\":\"text\",\"text\":\"é ok\"}]}}\n\n";
    // Bytes that would follow (the server keeps its stream open): never needed.
    let stream = format!("{events}: keep-alive\n\n");
    for split in 1..events.len() {
        let mut r = Awaiting::new(&p, 200, Some("text/event-stream")).unwrap();
        let bytes = stream.as_bytes();
        let first = r.feed(&bytes[..split]).unwrap();
        assert!(first.is_none(), "found before its event ended at {split}");
        let found = r.feed(&bytes[split..events.len()]).unwrap().unwrap();
        let got: CallResult = found.result().unwrap();
        assert_eq!(got.text(), "é ok");
    }
}

#[test]
fn a_reply_over_the_cap_is_refused() {
    let mut s = ready();
    let p = s.list_tools(None);
    let mut r = Awaiting::new(&p, 200, Some("application/json")).unwrap();
    assert!(r.feed(&vec![b' '; MAX_REPLY_BYTES]).unwrap().is_none());
    assert_eq!(
        r.feed(b" ").err(),
        Some(McpError::Protocol(format!(
            "a reply larger than {MAX_REPLY_BYTES} bytes"
        )))
    );
}

#[test]
fn server_urls_follow_the_media_rules_and_want_https() {
    let allow = vec!["127.0.0.1:8123".to_string()];
    assert_eq!(
        server_url("https://mcp.example.com/mcp", &[]),
        Ok("https://mcp.example.com/mcp".into())
    );
    assert_eq!(
        server_url("http://mcp.example.com/mcp", &[]),
        Err("server_url must be an https URL".into())
    );
    assert_eq!(
        server_url("https://10.0.0.1/mcp", &[]),
        Err("server_url is a private or local address".into())
    );
    assert_eq!(
        server_url("https://localhost/mcp", &[]),
        Err("server_url is a private or local address".into())
    );
    // A listed host (the tests', an operator's own) may be plain http.
    assert_eq!(
        server_url("http://127.0.0.1:8123/mcp", &allow),
        Ok("http://127.0.0.1:8123/mcp".into())
    );
    assert!(server_url("http://127.0.0.1:8124/mcp", &allow).is_err());
}

#[test]
fn functions_are_the_allowed_tools_under_valid_names() {
    let tool = |name: &str| Tool {
        name: name.into(),
        description: Some(format!("does {name}")),
        input_schema: json!({"type":"object"}),
        annotations: None,
    };
    let tools = vec![
        tool("add"),
        tool("echo"),
        tool("has.dot"),
        tool(&"x".repeat(60)),
        tool("add"),
    ];
    let all = functions("calc", None, tools.clone());
    let names: Vec<&str> = all.iter().map(|f| f.name.as_str()).collect();
    // A name no provider takes is left off, and so is a second tool of the same name.
    assert_eq!(names, ["mcp__calc__add", "mcp__calc__echo"]);
    assert_eq!(all[0].description.as_deref(), Some("does add"));
    assert_eq!(all[0].parameters, Some(json!({"type":"object"})));
    let only = vec!["echo".to_string()];
    let some = functions("calc", Some(&only), tools);
    assert_eq!(some.len(), 1);
    assert_eq!(some[0].name, "mcp__calc__echo");
    assert!(allowed(None, "x") && allowed(Some(&only), "echo") && !allowed(Some(&only), "add"));
    let many: Vec<Tool> = (0..MAX_TOOLS + 5).map(|i| tool(&format!("t{i}"))).collect();
    assert_eq!(functions("l", None, many).len(), MAX_TOOLS);
}
