use serde_json::{json, Value};

use super::super::{parse, StreamEncoder};
use super::*;
use crate::api::server_tools::UserLocation;
use crate::api::server_turn::Search;
use crate::api::tool_loop::stream_bytes;
use crate::api::ChatRequest;

fn to_chat(body: &Value) -> crate::error::Result<ChatRequest> {
    parse(body.to_string().as_bytes()).map(|(chat, _)| chat)
}

#[test]
fn openais_web_search_tool_becomes_the_gateways_search() {
    // The shape the official `openai` SDK sends (`WebSearchTool`).
    let body = json!({"model": "a/b", "input": "x", "tools": [
        {"type": "web_search", "search_context_size": "high",
         "user_location": {"type": "approximate", "country": "GB", "city": "London", "timezone": "Europe/London"},
         "filters": {"allowed_domains": ["rust-lang.org", "Cloudflare.com"]}},
    ]});
    let chat = to_chat(&body).unwrap();
    assert_eq!(chat.tools, None);
    assert_eq!(
        chat.server_tools,
        [ServerTool::WebSearch(WebSearchParams {
            search_context_size: ContextSize::High,
            user_location: Some(UserLocation {
                country: Some("GB".into()),
                region: None,
                city: Some("London".into()),
                timezone: Some("Europe/London".into()),
            }),
            allowed_domains: vec!["rust-lang.org".into(), "cloudflare.com".into()],
            ..WebSearchParams::default()
        })]
    );
    for kind in ["web_search_preview", "web_search_2025_08_26"] {
        let body = json!({"model": "a/b", "input": "x", "tools": [{"type": kind}]});
        let chat = to_chat(&body).unwrap();
        assert_eq!(
            chat.server_tools,
            [ServerTool::WebSearch(WebSearchParams::default())],
            "{kind}"
        );
    }
}

#[test]
fn web_search_fields_out_of_shape_are_refused_naming_them() {
    for (tool, want) in [
        (
            json!({"type": "web_search", "search_context_size": "huge"}),
            "tools[0].search_context_size: ",
        ),
        (
            json!({"type": "web_search", "filters": {"blocked_domains": ["x.com"]}}),
            "tools[0].filters.blocked_domains: is not a parameter",
        ),
        (
            json!({"type": "web_search", "filters": {"allowed_domains": ["https://x.com/a"]}}),
            "tools[0].filters.allowed_domains[0]: must be a domain",
        ),
        (
            json!({"type": "web_search", "max_uses": 3}),
            "tools[0].max_uses: is not a field of the web_search tool",
        ),
        (
            json!({"type": "file_search", "vector_store_ids": ["vs_1"]}),
            "tools[0].type: only function tools and the gateway's server tools",
        ),
    ] {
        let body = json!({"model": "a/b", "input": "x", "tools": [tool]});
        let e = to_chat(&body).unwrap_err();
        assert_eq!(e.status(), 400);
        assert!(e.to_string().contains(want), "{e} (wanted {want})");
    }
}

const TEXT: &str = "Rust runs on Workers (https://a.example/rust), see https://b.example/wasm";

/// A loop that searched twice (one search per model call), then answered.
fn searched_twice() -> (ChatCompletion, Turn) {
    crate::api::server_turn::fixtures::searched_twice(TEXT, |_| "text".into())
}

#[test]
fn the_loops_searches_are_kept_in_order_with_their_results() {
    let (_, turn) = searched_twice();
    let queries: Vec<(&str, &str, usize)> = turn
        .searches
        .iter()
        .map(|s: &Search| (s.id.as_str(), s.query.as_str(), s.results.len()))
        .collect();
    assert_eq!(
        queries,
        [("call_0", "rust wasm", 1), ("call_1", "workers rust", 1)]
    );
}

fn expected_output() -> Value {
    let a = TEXT.find("https://a.example/rust").unwrap();
    let b = TEXT.find("https://b.example/wasm").unwrap();
    json!([
        {"type": "web_search_call", "id": "ws_gen-1-3_0", "status": "completed",
         "action": {"type": "search", "query": "rust wasm"}},
        {"type": "web_search_call", "id": "ws_gen-1-3_1", "status": "completed",
         "action": {"type": "search", "query": "workers rust"}},
        {"type": "message", "id": "msg_gen-1-3", "status": "completed", "role": "assistant",
         "content": [{"type": "output_text", "text": TEXT, "annotations": [
            {"type": "url_citation", "url": "https://b.example/wasm", "title": "Wasm",
             "start_index": b, "end_index": b + 22},
            {"type": "url_citation", "url": "https://a.example/rust", "title": "Rust on Workers",
             "start_index": a, "end_index": a + 22},
         ]}]},
    ])
}

#[test]
fn searches_become_web_search_call_items_before_the_annotated_message() {
    let (c, turn) = searched_twice();
    let r = serde_json::to_value(response_with(&c, &Echo::default(), &turn)).unwrap();
    assert_eq!(r["output"], expected_output());
    assert_eq!(r["output_text"], json!(TEXT));
    // Without a loop the message's annotations stay empty.
    let plain = serde_json::to_value(response(&c, &Echo::default())).unwrap();
    assert_eq!(plain["output"][0]["content"][0]["annotations"], json!([]));
}

#[test]
fn a_streamed_answer_has_the_search_events_before_the_text() {
    let (c, turn) = searched_twice();
    let mut enc =
        crate::api::surface::Encoder::Responses(Box::new(StreamEncoder::new(Echo::default())));
    let events = super::super::tests::events(&stream_bytes(&c, &turn, &mut enc));
    let kinds: Vec<&str> = events.iter().filter_map(|e| e["type"].as_str()).collect();
    let search = [
        "response.output_item.added",
        "response.web_search_call.in_progress",
        "response.web_search_call.searching",
        "response.web_search_call.completed",
        "response.output_item.done",
    ];
    let mut want = vec!["response.created", "response.in_progress"];
    want.extend(search);
    want.extend(search);
    want.extend([
        "response.output_item.added",
        "response.content_part.added",
        "response.output_text.delta",
        "response.output_text.annotation.added",
        "response.output_text.annotation.added",
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]);
    assert_eq!(kinds, want);
    let seq: Vec<u64> = events
        .iter()
        .filter_map(|e| e["sequence_number"].as_u64())
        .collect();
    assert_eq!(seq, (0..want.len() as u64).collect::<Vec<_>>());
    assert_eq!(
        (
            events[2]["item"].clone(),
            events[3]["item_id"].clone(),
            events[3]["output_index"].clone()
        ),
        (
            json!({"type": "web_search_call", "id": "ws_gen-1-3_0", "status": "in_progress",
                   "action": {"type": "search", "query": "rust wasm"}}),
            json!("ws_gen-1-3_0"),
            json!(0)
        )
    );
    assert_eq!(events[15]["annotation_index"], json!(0));
    assert_eq!(
        events[15]["annotation"],
        expected_output()[2]["content"][0]["annotations"][0]
    );
    let done = events.last().unwrap();
    assert_eq!(done["response"]["output"], expected_output());
}

#[test]
fn a_reply_sent_back_as_input_reads_its_web_search_calls_as_past() {
    let (c, turn) = searched_twice();
    let r = serde_json::to_value(response_with(&c, &Echo::default(), &turn)).unwrap();
    let mut input = vec![json!({"role": "user", "content": "Does Rust run on Workers?"})];
    input.extend(r["output"].as_array().unwrap().iter().cloned());
    input.push(json!({"role": "user", "content": "thanks"}));
    let chat = to_chat(&json!({"model": "a/b", "input": input, "tools": [{"type": "web_search"}]}))
        .unwrap();
    let turns: Vec<(&str, String)> = chat
        .messages
        .iter()
        .map(|m| (m.role.as_str(), m.text()))
        .collect();
    assert_eq!(
        turns,
        [
            ("user", "Does Rust run on Workers?".to_string()),
            ("assistant", TEXT.to_string()),
            ("user", "thanks".to_string()),
        ]
    );
}
