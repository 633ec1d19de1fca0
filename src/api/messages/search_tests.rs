use serde_json::{json, Value};

use super::super::{convert, StreamEncoder};
use super::*;
use crate::api::server_tools::{ServerCall, ToolOutput, UserLocation, WEB_SEARCH};
use crate::api::server_turn::fixtures::search_result;
use crate::api::tool_loop::{stream_bytes, Limits, Loop};
use crate::api::{Content, ContentPart, Role};

fn chat(body: &Value) -> crate::error::Result<super::super::Converted> {
    convert(body.to_string().as_bytes()).map(|(c, _)| c)
}

fn with_tools(tools: Value) -> Value {
    json!({"model": "a/b", "max_tokens": 100,
           "messages": [{"role": "user", "content": "x"}], "tools": tools})
}

#[test]
fn anthropics_web_search_becomes_the_gateways_on_other_families() {
    // The shape the official `anthropic` SDK sends (`WebSearchTool20250305`).
    let body = with_tools(json!([
        {"type": "web_search_20250305", "name": "web_search", "max_uses": 3,
         "blocked_domains": ["Spam.example"], "cache_control": {"type": "ephemeral"},
         "user_location": {"type": "approximate", "city": "Paris", "country": "FR",
                           "region": "IDF", "timezone": "Europe/Paris"}},
        {"type": "web_search_20250305", "name": "web_search", "max_uses": 99,
         "allowed_domains": ["docs.rs"]},
    ]));
    let c = chat(&body).unwrap();
    assert_eq!(c.anthropic_only, None);
    assert_eq!(c.chat.tools, None);
    assert_eq!(
        c.chat.server_tools,
        [
            ServerTool::WebSearch(WebSearchParams {
                max_uses: 3,
                excluded_domains: vec!["spam.example".into()],
                user_location: Some(UserLocation {
                    country: Some("FR".into()),
                    region: Some("IDF".into()),
                    city: Some("Paris".into()),
                    timezone: Some("Europe/Paris".into()),
                }),
                ..WebSearchParams::default()
            }),
            // More than the loop runs is what it runs.
            ServerTool::WebSearch(WebSearchParams {
                max_uses: 30,
                allowed_domains: vec!["docs.rs".into()],
                ..WebSearchParams::default()
            }),
        ]
    );
    let bare = chat(&with_tools(
        json!([{"type": "web_search_20250305", "name": "web_search"}]),
    ));
    assert_eq!(
        bare.unwrap().chat.server_tools,
        [ServerTool::WebSearch(WebSearchParams {
            max_uses: 10,
            ..WebSearchParams::default()
        })]
    );
}

#[test]
fn web_search_fields_out_of_shape_are_refused_naming_them() {
    for (tool, want) in [
        (
            json!({"type": "web_search_20250305", "name": "web_search",
                   "allowed_domains": ["a.example"], "blocked_domains": ["b.example"]}),
            "tools[0].blocked_domains: cannot be given with allowed_domains",
        ),
        (
            json!({"type": "web_search_20250305", "name": "web_search", "max_uses": 0}),
            "tools[0].max_uses: must be at least 1",
        ),
        (
            json!({"type": "web_search_20250305", "name": "web_search", "allowed_domains": ["https://a.example"]}),
            "tools[0].allowed_domains[0]: must be a domain such as \"example.com\", not \"https://a.example\"",
        ),
        (
            json!({"type": "web_search_20250305", "name": "web_search", "engine": "exa"}),
            "tools[0].engine: is not a field of the web_search tool",
        ),
        (
            json!({"type": "web_search_20250305", "name": "web_search",
                   "user_location": {"type": "exact", "city": "Paris"}}),
            "tools[0].user_location.type: ",
        ),
    ] {
        let e = chat(&with_tools(json!([tool]))).unwrap_err();
        assert_eq!(e.status(), 400);
        assert!(e.to_string().starts_with(want), "{e} (wanted {want})");
    }
}

const TEXT: &str = "Rust runs on Workers (https://a.example/rust).";

/// A loop that searched twice, then answered citing one of its results.
fn searched_twice() -> (ChatCompletion, Turn) {
    crate::api::server_turn::fixtures::searched_twice(TEXT, |title| format!("About {title}."))
}

fn sealed(s: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s)
}

fn expected_blocks() -> Value {
    json!([
        {"type": "server_tool_use", "id": "srvtoolu_gen-1-3_0", "name": "web_search",
         "input": {"query": "rust wasm"}},
        {"type": "web_search_tool_result", "tool_use_id": "srvtoolu_gen-1-3_0", "content": [
            {"type": "web_search_result", "url": "https://b.example/wasm", "title": "Wasm",
             "encrypted_content": sealed("About Wasm."), "page_age": null}]},
        {"type": "server_tool_use", "id": "srvtoolu_gen-1-3_1", "name": "web_search",
         "input": {"query": "workers rust"}},
        {"type": "web_search_tool_result", "tool_use_id": "srvtoolu_gen-1-3_1", "content": [
            {"type": "web_search_result", "url": "https://a.example/rust", "title": "Rust on Workers",
             "encrypted_content": sealed("About Rust on Workers."), "page_age": null}]},
    ])
}

fn expected_citations() -> Value {
    // The answer names one result's URL; the other, uncited by name, spans it all.
    json!([
        {"type": "web_search_result_location", "url": "https://b.example/wasm", "title": "Wasm",
         "encrypted_index": sealed("https://b.example/wasm"), "cited_text": "About Wasm."},
        {"type": "web_search_result_location", "url": "https://a.example/rust",
         "title": "Rust on Workers", "encrypted_index": sealed("https://a.example/rust"),
         "cited_text": "About Rust on Workers."},
    ])
}

#[test]
fn searches_become_server_tool_blocks_before_the_cited_text() {
    let (c, turn) = searched_twice();
    let m = serde_json::to_value(message_with(&c, &turn)).unwrap();
    let mut want = expected_blocks();
    if let Some(a) = want.as_array_mut() {
        a.push(json!({"type": "text", "text": TEXT, "citations": expected_citations()}));
    }
    assert_eq!(m["content"], want);
    assert_eq!(
        m["usage"],
        json!({"input_tokens": 10, "output_tokens": 5, "cache_read_input_tokens": 0,
               "cache_creation_input_tokens": 0,
               "server_tool_use": {"web_search_requests": 2, "web_fetch_requests": 0}})
    );
    assert_eq!(m["stop_reason"], "end_turn");
    // Without a loop, a text block has no citations field.
    let plain = serde_json::to_value(super::super::reply(&c)).unwrap();
    assert_eq!(plain["content"], json!([{"type": "text", "text": TEXT}]));
}

#[test]
fn a_streamed_answer_has_the_search_blocks_before_the_text() {
    let (c, turn) = searched_twice();
    let mut enc = crate::api::surface::Encoder::Messages(StreamEncoder::new(0));
    let bytes = stream_bytes(&c, &turn, &mut enc);
    let events: Vec<(String, Value)> = String::from_utf8(bytes)
        .unwrap()
        .split("\n\n")
        .filter(|e| !e.is_empty())
        .map(|e| {
            let name = e.lines().find_map(|l| l.strip_prefix("event: ")).unwrap();
            let data = e.lines().find_map(|l| l.strip_prefix("data: ")).unwrap();
            (name.to_string(), serde_json::from_str(data).unwrap())
        })
        .collect();
    for (name, data) in &events {
        assert_eq!(data["type"], json!(name));
    }
    let blocks = expected_blocks();
    let block = |i: usize| blocks[i].clone();
    let mut tool_start = block(0);
    tool_start["input"] = json!({});
    let mut tool_start_2 = block(2);
    tool_start_2["input"] = json!({});
    let cites = expected_citations();
    let want = [
        json!({"type": "content_block_start", "index": 0, "content_block": tool_start}),
        json!({"type": "content_block_delta", "index": 0,
               "delta": {"type": "input_json_delta", "partial_json": "{\"query\":\"rust wasm\"}"}}),
        json!({"type": "content_block_stop", "index": 0}),
        json!({"type": "content_block_start", "index": 1, "content_block": block(1)}),
        json!({"type": "content_block_stop", "index": 1}),
        json!({"type": "content_block_start", "index": 2, "content_block": tool_start_2}),
        json!({"type": "content_block_delta", "index": 2,
               "delta": {"type": "input_json_delta", "partial_json": "{\"query\":\"workers rust\"}"}}),
        json!({"type": "content_block_stop", "index": 2}),
        json!({"type": "content_block_start", "index": 3, "content_block": block(3)}),
        json!({"type": "content_block_stop", "index": 3}),
        json!({"type": "content_block_start", "index": 4,
               "content_block": {"type": "text", "text": ""}}),
        json!({"type": "content_block_delta", "index": 4,
               "delta": {"type": "text_delta", "text": TEXT}}),
        json!({"type": "content_block_delta", "index": 4,
               "delta": {"type": "citations_delta", "citation": cites[0]}}),
        json!({"type": "content_block_delta", "index": 4,
               "delta": {"type": "citations_delta", "citation": cites[1]}}),
        json!({"type": "content_block_stop", "index": 4}),
    ];
    let (first, rest) = events.split_first().unwrap();
    assert_eq!(first.0, "message_start");
    let body: Vec<Value> = rest.iter().map(|(_, d)| d.clone()).collect();
    assert_eq!(body[..want.len()], want);
    let tail: Vec<&str> = rest[want.len()..].iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(tail, ["message_delta", "message_stop"]);
    assert_eq!(
        rest[want.len()].1["usage"]["server_tool_use"],
        json!({"web_search_requests": 2, "web_fetch_requests": 0})
    );
}

#[test]
fn a_replayed_search_turn_becomes_text_for_the_model() {
    let (c, turn) = searched_twice();
    let reply = serde_json::to_value(message_with(&c, &turn)).unwrap();
    let body = json!({"model": "a/b", "max_tokens": 100, "messages": [
        {"role": "user", "content": "rust on workers?"},
        {"role": "assistant", "content": reply["content"]},
        {"role": "assistant", "content": [
            {"type": "server_tool_use", "id": "srvtoolu_x", "name": "web_fetch",
             "input": {"url": "https://a.example/rust"}},
            {"type": "web_fetch_tool_result", "tool_use_id": "srvtoolu_x", "content": {
                "type": "web_fetch_result", "url": "https://a.example/rust",
                "content": {"type": "document", "source": {"type": "text",
                    "media_type": "text/plain", "data": "Rust page."}}}},
            {"type": "web_search_tool_result", "tool_use_id": "srvtoolu_y", "content": {
                "type": "web_search_tool_result_error", "error_code": "max_uses_exceeded"}},
        ]},
        {"role": "user", "content": "and wasm?"},
    ], "tools": [{"type": "web_search_20250305", "name": "web_search"}]});
    let c = chat(&body).unwrap();
    assert_eq!(c.anthropic_only, None);
    let texts: Vec<(Role, Vec<String>)> = c
        .chat
        .messages
        .iter()
        .map(|m| {
            let parts = match &m.content {
                Some(Content::Text(s)) => vec![s.clone()],
                Some(Content::Parts(p)) => p
                    .iter()
                    .map(|p| match p {
                        ContentPart::Text(t) => t.text.clone(),
                        _ => "other".into(),
                    })
                    .collect(),
                None => vec![],
            };
            (m.role, parts)
        })
        .collect();
    assert_eq!(
        texts,
        [
            (Role::User, vec!["rust on workers?".to_string()]),
            (
                Role::Assistant,
                vec![
                    "Web search results:\n- Wasm (https://b.example/wasm): About Wasm.".into(),
                    "Web search results:\n- Rust on Workers (https://a.example/rust): About Rust on Workers."
                        .into(),
                    TEXT.into(),
                ]
            ),
            (
                Role::Assistant,
                vec![
                    "Fetched https://a.example/rust:\nRust page.".into(),
                    "Web search results:".into(),
                ]
            ),
            (Role::User, vec!["and wasm?".to_string()]),
        ]
    );
    // Results another gateway sealed are named by title and URL only.
    let other = [super::super::request::ResultParam {
        url: "https://c.example".into(),
        title: "C".into(),
        encrypted_content: "Eq0KCioIBhgCIiQ3N2I5".into(),
    }];
    assert_eq!(
        result_text(&other),
        "Web search results:\n- C (https://c.example)"
    );
}

#[test]
fn a_fetch_becomes_web_fetch_blocks_in_the_order_it_ran() {
    use crate::api::server_tools::{WebFetchParams, WEB_FETCH};
    let mut lp = Loop::new(
        vec![
            ServerTool::WebFetch(WebFetchParams {
                max_uses: 5,
                max_content_tokens: None,
                allowed_domains: vec![],
                blocked_domains: vec![],
            }),
            ServerTool::WebSearch(WebSearchParams::default()),
        ],
        Limits::default(),
    );
    let call = |id: &str, name: &str, args: Value| ServerCall {
        id: id.into(),
        name: name.into(),
        arguments: args.to_string(),
    };
    let page = json!({"url": "https://a.example/rust", "title": "Rust", "content": "Rust page.",
                      "status": "completed", "retrieved_at": "2026-12-07T07:00:00Z"});
    let fetched = ToolOutput {
        content: page.to_string(),
        ..ToolOutput::default()
    };
    let failed = ToolOutput {
        content: json!({"url": "https://b.example/", "status": "failed", "error": "404"})
            .to_string(),
        ..ToolOutput::default()
    };
    assert_eq!(lp.admit(0), Ok(()));
    lp.record(
        &[(
            0,
            call("f1", WEB_FETCH, json!({"url": "https://a.example/rust"})),
        )],
        vec![Ok(fetched)],
    );
    lp.record(
        &[(1, call("s1", WEB_SEARCH, json!({"query": "wasm"})))],
        vec![Ok(search_result("https://c.example/", "C", "About C."))],
    );
    lp.record(
        &[(
            0,
            call("f2", WEB_FETCH, json!({"url": "https://b.example/"})),
        )],
        vec![Ok(failed)],
    );
    let answer: ChatCompletion = serde_json::from_value(json!({
        "id": "gen-2", "object": "chat.completion", "created": 7, "model": "a/b",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "Done."}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}
    }))
    .unwrap();
    let turn = lp.turn(&answer);
    let blocks = serde_json::to_value(search_blocks(&turn, "gen-2")).unwrap();
    assert_eq!(
        blocks,
        json!([
            {"type": "server_tool_use", "id": "srvtoolu_gen-2_0", "name": "web_fetch",
             "input": {"url": "https://a.example/rust"}},
            {"type": "web_fetch_tool_result", "tool_use_id": "srvtoolu_gen-2_0", "content": {
                "type": "web_fetch_result", "url": "https://a.example/rust",
                "content": {"type": "document", "title": "Rust", "source":
                    {"type": "text", "media_type": "text/plain", "data": "Rust page."}},
                "retrieved_at": "2026-12-07T07:00:00Z"}},
            {"type": "server_tool_use", "id": "srvtoolu_gen-2_1", "name": "web_search",
             "input": {"query": "wasm"}},
            {"type": "web_search_tool_result", "tool_use_id": "srvtoolu_gen-2_1", "content": [
                {"type": "web_search_result", "url": "https://c.example/", "title": "C",
                 "encrypted_content": sealed("About C."), "page_age": null}]},
            {"type": "server_tool_use", "id": "srvtoolu_gen-2_2", "name": "web_fetch",
             "input": {"url": "https://b.example/"}},
            {"type": "web_fetch_tool_result", "tool_use_id": "srvtoolu_gen-2_2", "content": {
                "type": "web_fetch_tool_error", "error_code": "url_not_accessible"}},
        ])
    );
}
