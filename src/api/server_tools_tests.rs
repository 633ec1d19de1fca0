use serde_json::json;

use super::*;
use crate::api::ChatRequest;

fn parse(tools: Value) -> crate::error::Result<ChatRequest> {
    let body =
        json!({"model": "a/b", "messages": [{"role": "user", "content": "hi"}], "tools": tools});
    ChatRequest::parse(&serde_json::to_vec(&body).unwrap_or_default())
}

fn refused(tools: Value) -> String {
    match parse(tools) {
        Err(e) => e.public_message(),
        Ok(r) => panic!("accepted: {:?}", r.server_tools),
    }
}

#[test]
fn server_tools_are_split_from_the_client_functions() {
    let r = parse(json!([
        {"type": "function", "function": {"name": "f"}},
        {"type": "openrouter:web_search", "parameters": {"engine": "exa", "max_results": 3, "allowed_domains": ["Example.com"],
            "user_location": {"type": "approximate", "approximate": {"country": "FR", "timezone": "Europe/Paris"}}, "search_context_size": "high"}},
        {"type": "openrouter:datetime", "parameters": {"timezone": "Asia/Tokyo"}},
        {"type": "openrouter:web_fetch"},
        {"type": "mcp", "server_label": "docs", "server_url": "https://mcp.example/mcp", "headers": {"Authorization": "Bearer s"},
            "allowed_tools": {"tool_names": ["search"]}, "require_approval": "never"}
    ]))
    .unwrap();
    let names: Vec<&str> = r
        .tools
        .iter()
        .flatten()
        .map(|t| t.function.name.as_str())
        .collect();
    assert_eq!(names, ["f"]);
    assert_eq!(
        r.server_tools,
        vec![
            ServerTool::WebSearch(WebSearchParams {
                engine: Engine::Exa,
                max_results: 3,
                allowed_domains: vec!["example.com".into()],
                user_location: Some(UserLocation {
                    country: Some("FR".into()),
                    timezone: Some("Europe/Paris".into()),
                    ..UserLocation::default()
                }),
                search_context_size: ContextSize::High,
                ..WebSearchParams::default()
            }),
            ServerTool::Datetime(DatetimeParams {
                timezone: Some("Asia/Tokyo".into())
            }),
            ServerTool::WebFetch(WebFetchParams {
                max_uses: DEFAULT_MAX_USES,
                max_content_tokens: None,
                allowed_domains: vec![],
                blocked_domains: vec![]
            }),
            ServerTool::Mcp(McpServer {
                server_label: "docs".into(),
                server_url: "https://mcp.example/mcp".into(),
                headers: vec![("Authorization".into(), "Bearer s".into())],
                allowed_tools: Some(vec!["search".into()]),
            }),
        ]
    );
    // Only server tools: no `tools` goes upstream.
    let only = parse(json!([{"type": "openrouter:web_search"}])).unwrap();
    assert_eq!(only.tools, None);
    assert_eq!(
        only.server_tools,
        vec![ServerTool::WebSearch(WebSearchParams::default())]
    );
}

#[test]
fn bad_parameters_name_their_field() {
    let cases = [
        (json!([{"type": "openrouter:web_search", "parameters": {"max_results": 0}}]),
            "tools[0].parameters.max_results: must be between 1 and 25, not 0"),
        (json!([{"type": "function", "function": {"name": "f"}}, {"type": "openrouter:web_search", "parameters": {"max_uses": 31}}]),
            "tools[1].parameters.max_uses: must be between 1 and 30, not 31"),
        (json!([{"type": "openrouter:web_search", "parameters": {"engine": "bing"}}]),
            "tools[0].parameters.engine: must be one of auto, native, exa, brave, tavily, not \"bing\""),
        (json!([{"type": "openrouter:web_search", "parameters": {"allowed_domains": ["https://x.com/a"]}}]),
            "tools[0].parameters.allowed_domains[0]: must be a domain such as \"example.com\", not \"https://x.com/a\""),
        (json!([{"type": "openrouter:web_search", "parameters": {"allowed_domains": ["a.com"], "excluded_domains": ["b.com"]}}]),
            "tools[0].parameters.excluded_domains: cannot be given with allowed_domains"),
        (json!([{"type": "openrouter:web_search", "parameters": {"max_result": 3}}]),
            "tools[0].parameters.max_result: is not a parameter of this tool"),
        (json!([{"type": "openrouter:web_fetch", "parameters": {"max_content_tokens": 100001}}]),
            "tools[0].parameters.max_content_tokens: must be between 1 and 100000, not 100001"),
        (json!([{"type": "openrouter:datetime", "parameters": {"timezone": "Mars/Base"}}]),
            "tools[0].parameters.timezone: unknown time zone \"Mars/Base\""),
        (json!([{"type": "mcp", "server_label": "d", "server_url": "https://m.example", "require_approval": "always"}]),
            "tools[0].require_approval: only \"never\" is supported"),
        (json!([{"type": "mcp", "server_label": "a__b", "server_url": "https://m.example"}]),
            "tools[0].server_label: must be 1 to 64 letters"),
        (json!([{"type": "mcp", "server_label": "d", "server_url": "ftp://m.example"}]),
            "tools[0].server_url: must be an http(s) URL"),
        (json!([{"type": "mcp", "server_url": "https://m.example"}]),
            "tools[0].server_label: is required"),
        (json!([{"type": "code_interpreter"}]),
            "tools[0].type: must be \"function\" or a server tool (openrouter:web_search, openrouter:web_fetch, openrouter:datetime, mcp), not \"code_interpreter\""),
    ];
    for (tools, want) in cases {
        let got = refused(tools);
        assert!(got.starts_with(want), "{got} does not start with {want}");
    }
}

#[test]
fn each_tool_is_offered_as_a_function_and_answers_its_calls() {
    let search = ServerTool::WebSearch(WebSearchParams::default());
    let f = search.functions();
    assert_eq!(f.len(), 1);
    assert_eq!(f[0].name, "web_search");
    assert_eq!(
        f[0].parameters.as_ref().unwrap()["required"],
        json!(["query"])
    );
    assert!(search.answers("web_search") && !search.answers("web_fetch"));
    let mcp = ServerTool::Mcp(McpServer {
        server_label: "docs".into(),
        server_url: "https://m.example".into(),
        headers: vec![],
        allowed_tools: None,
    });
    assert_eq!(mcp_function("docs", "find"), "mcp__docs__find");
    assert!(
        mcp.answers("mcp__docs__find")
            && !mcp.answers("mcp__doc__find")
            && !mcp.answers("mcp__docs__")
    );
    assert_eq!(mcp_tool_of("mcp__docs__find", "docs"), Some("find"));
    let call = ServerCall {
        id: "c".into(),
        name: "web_search".into(),
        arguments: r#"{"query": "rust wasm"}"#.into(),
    };
    assert_eq!(call.string_arg("query").as_deref(), Some("rust wasm"));
    assert_eq!(call.string_arg("url"), None);
}

#[test]
fn server_tool_use_adds_up() {
    let mut u = ServerToolUse::default();
    u.add(ServerToolUse {
        web_search_requests: 2,
        web_fetch_requests: 1,
        mcp_tool_calls: 0,
    });
    u.add(ServerToolUse {
        web_search_requests: 1,
        web_fetch_requests: 0,
        mcp_tool_calls: 4,
    });
    assert_eq!(
        u,
        ServerToolUse {
            web_search_requests: 3,
            web_fetch_requests: 1,
            mcp_tool_calls: 4
        }
    );
    assert_eq!(u.total(), 8);
    assert_eq!(
        serde_json::to_value(u).unwrap(),
        json!({"web_search_requests": 3, "web_fetch_requests": 1, "mcp_tool_calls": 4})
    );
}
