//! Native web search per family: the provider's own tool in the upstream request, and
//! its searches and citations read from the reply (whole and streamed), in the
//! providers' wire shapes (Anthropic's web search tool reference, OpenAI's chat
//! `web_search_options`, Gemini's grounding with Google Search).

#![allow(clippy::indexing_slicing)] // tests: a panic fails the test

use serde_json::{json, Value};

use super::stream::Translator;
use super::testutil::{catalog, content, delta_items, meta, request, translate_everywhere};
use super::Target;
use crate::api::native_search::{for_endpoint, NativeSearch};
use crate::api::server_tools::ServerTool;
use crate::api::tool_loop::Loop;
use crate::api::ChatRequest;

/// The loop's first model call for `client` (its server tools offered as functions),
/// as an endpoint of `model` with a native search gets it.
fn native_call(model: &str, client: Value) -> (ChatRequest, Value) {
    let mut req = request(client);
    let mut lp = Loop::new(std::mem::take(&mut req.server_tools), req.tool_limits);
    let functions: Vec<_> = lp.tools.iter().flat_map(ServerTool::functions).collect();
    lp.functions.extend(functions);
    let inner = lp.request(&req);
    let cat = catalog();
    let m = cat.model(model).unwrap();
    let mut endpoint = m.endpoints[0].clone();
    endpoint.native_web_search = true;
    let t = Target {
        provider: cat.provider(&endpoint.provider).unwrap(),
        model: m,
        endpoint: &endpoint,
        base_url: "http://up/v1".into(),
        api_key: Some("sk-test".into()),
    };
    let family = super::family(t.provider.api);
    let sent = for_endpoint(&inner, true, family.native_search()).expect("sent natively");
    let up = super::build_request(&t, &sent).unwrap();
    (sent, serde_json::from_slice(&up.body).unwrap())
}

fn client(model: &str, parameters: Value) -> Value {
    json!({"model": model, "messages": [{"role": "user", "content": "Who won Euro 2024?"}],
        "tools": [{"type": "openrouter:web_search", "parameters": parameters},
                  {"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}]})
}

#[test]
fn anthropic_gets_its_web_search_tool_with_the_bounds_and_filters() {
    let m = "anthropic/claude-sonnet-4.5";
    let params = json!({"max_uses": 3, "allowed_domains": ["uefa.com"],
        "user_location": {"country": "DE", "city": "Berlin", "timezone": "Europe/Berlin"}});
    let (sent, body) = native_call(m, client(m, params));
    assert_eq!(sent.native_search.as_ref().map(|n| n.max_uses), Some(3));
    assert_eq!(
        body["tools"],
        json!([
            {"input_schema": {"type": "object"}, "name": "lookup"},
            {"type": "web_search_20250305", "name": "web_search", "max_uses": 3,
             "allowed_domains": ["uefa.com"],
             "user_location": {"type": "approximate", "country": "DE", "city": "Berlin",
                               "timezone": "Europe/Berlin"}}
        ])
    );
}

#[test]
fn gemini_gets_google_search_beside_its_functions() {
    let m = "google/gemini-3-pro-preview";
    let (_, body) = native_call(m, client(m, json!({})));
    assert_eq!(
        body["tools"],
        json!([
            {"functionDeclarations": [{"name": "lookup", "parametersJsonSchema": {"type": "object"}}]},
            {"googleSearch": {}}
        ])
    );
    // A domain list Google cannot apply: the gateway's engine searches instead.
    let mut req = request(client(m, json!({"excluded_domains": ["reddit.com"]})));
    let p = match req.server_tools.first() {
        Some(ServerTool::WebSearch(p)) => p.clone(),
        _ => panic!("no web_search"),
    };
    req.native_search = NativeSearch::offered(&p, 5, false);
    let gemini = super::family(crate::catalog::ApiFamily::Gemini).native_search();
    assert_eq!(for_endpoint(&req, true, gemini), None);
}

#[test]
fn openai_search_models_get_web_search_options() {
    let m = "openai/gpt-4o-mini";
    let params = json!({"search_context_size": "high",
        "user_location": {"type": "approximate", "approximate": {"country": "GB", "city": "London"}}});
    let (_, body) = native_call(m, client(m, params));
    assert_eq!(
        body["web_search_options"],
        json!({"search_context_size": "high",
               "user_location": {"type": "approximate", "approximate": {"country": "GB", "city": "London"}}})
    );
    let names: Vec<&str> = body["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["function"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["lookup"]);
    let openai = super::family(crate::catalog::ApiFamily::Openai).native_search();
    assert!(openai.is_some_and(|t| t.per_request));
}

/// Anthropic's reply to a request with its web search tool: the search call, its
/// results, and text blocks citing them.
fn anthropic_reply() -> Value {
    json!({"id": "msg_01", "type": "message", "role": "assistant", "model": "claude-sonnet-4-5",
        "content": [
            {"type": "text", "text": "Let me check."},
            {"type": "server_tool_use", "id": "srvtoolu_01", "name": "web_search", "input": {"query": "euro 2024 winner"}},
            {"type": "web_search_tool_result", "tool_use_id": "srvtoolu_01", "content": [
                {"type": "web_search_result", "url": "https://uefa.test/final", "title": "Final",
                 "encrypted_content": "EqgfCioIARgB", "page_age": "July 15, 2024"}]},
            {"type": "text", "text": "Spain won", "citations": [
                {"type": "web_search_result_location", "url": "https://uefa.test/final", "title": "Final",
                 "encrypted_index": "Eo8BCioIAhgB", "cited_text": "Spain beat England 2-1"}]},
            {"type": "text", "text": " the final."}
        ],
        "stop_reason": "end_turn", "stop_sequence": null,
        "usage": {"input_tokens": 2100, "output_tokens": 40, "cache_read_input_tokens": 0,
                  "cache_creation_input_tokens": 0, "server_tool_use": {"web_search_requests": 1}}})
}

const CITED: &str = "https://uefa.test/final";

#[test]
fn anthropic_citations_become_annotations_and_its_searches_are_counted() {
    let m = "anthropic/claude-sonnet-4.5";
    let body = anthropic_reply().to_string();
    let c = super::parse_response(
        crate::catalog::ApiFamily::Anthropic,
        "anthropic",
        &meta(m),
        body.as_bytes(),
    )
    .unwrap();
    let msg = &c.choices[0].message;
    assert_eq!(
        msg.content.as_deref(),
        Some("Let me check.Spain won the final.")
    );
    assert_eq!(
        msg.annotations,
        Some(
            json!([{"type": "modelmux_web_search_query", "query": "euro 2024 winner"}, {"type": "url_citation", "url_citation": {"url": CITED, "title": "Final",
            "content": "Spain beat England 2-1", "start_index": 13, "end_index": 22}}])
        )
    );
    assert_eq!(c.usage.as_ref().map(|u| u.web_searches), Some(1));
    assert!(msg.tool_calls.is_none());
}

#[test]
fn anthropic_streamed_citations_arrive_when_their_block_ends() {
    let m = "anthropic/claude-sonnet-4.5";
    let ev = |v: Value| format!("event: {}\ndata: {v}\n\n", v["type"].as_str().unwrap());
    let stream = [
        json!({"type": "message_start", "message": {"id": "msg_01", "type": "message", "role": "assistant",
            "model": "claude-sonnet-4-5", "content": [], "stop_reason": null, "stop_sequence": null,
            "usage": {"input_tokens": 2100, "output_tokens": 1}}}),
        json!({"type": "content_block_start", "index": 0, "content_block": {"type": "server_tool_use",
            "id": "srvtoolu_01", "name": "web_search", "input": {}}}),
        json!({"type": "content_block_delta", "index": 0, "delta": {"type": "input_json_delta",
            "partial_json": "{\"query\": \"euro 2024\"}"}}),
        json!({"type": "content_block_stop", "index": 0}),
        json!({"type": "content_block_start", "index": 1, "content_block": {"type": "web_search_tool_result",
            "tool_use_id": "srvtoolu_01", "content": [{"type": "web_search_result", "url": CITED,
            "title": "Final", "encrypted_content": "Eqg", "page_age": null}]}}),
        json!({"type": "content_block_stop", "index": 1}),
        json!({"type": "content_block_start", "index": 2, "content_block": {"type": "text", "text": ""}}),
        json!({"type": "content_block_delta", "index": 2, "delta": {"type": "text_delta", "text": "Olé, "}}),
        json!({"type": "content_block_stop", "index": 2}),
        json!({"type": "content_block_start", "index": 3, "content_block": {"type": "text", "text": "", "citations": []}}),
        json!({"type": "content_block_delta", "index": 3, "delta": {"type": "citations_delta", "citation": {
            "type": "web_search_result_location", "url": CITED, "title": "Final",
            "encrypted_index": "Eo8", "cited_text": "Spain beat England 2-1"}}}),
        json!({"type": "content_block_delta", "index": 3, "delta": {"type": "text_delta", "text": "Spain won"}}),
        json!({"type": "content_block_stop", "index": 3}),
        json!({"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": null},
            "usage": {"output_tokens": 40, "server_tool_use": {"web_search_requests": 1}}}),
        json!({"type": "message_stop"}),
    ]
    .map(ev)
    .concat();
    let cat = catalog();
    let model = cat.model(m).unwrap();
    let t = Target {
        provider: cat.provider("anthropic").unwrap(),
        model,
        endpoint: &model.endpoints[0],
        base_url: "http://up/v1".into(),
        api_key: None,
    };
    let make = || Translator::for_target(&t, &meta(m)).unwrap();
    let events = translate_everywhere(&make, m, stream.as_bytes());
    assert_eq!(content(&events), "Olé, Spain won");
    let annotations: Vec<&Value> = delta_items(&events, "annotations");
    assert_eq!(
        annotations,
        [
            &json!({"type": "modelmux_web_search_query", "query": "euro 2024"}),
            &json!({"type": "url_citation", "url_citation": {"url": CITED, "title": "Final",
            "content": "Spain beat England 2-1", "start_index": 5, "end_index": 14}})
        ]
    );
    // The search call is Anthropic's, not the client's.
    assert!(delta_items(&events, "tool_calls").is_empty());
}

#[test]
fn gemini_grounding_is_counted_and_cited() {
    let m = "google/gemini-3-pro-preview";
    let reply = json!({"candidates": [{"content": {"role": "model", "parts": [{"text": "Spain won Euro 2024."}]},
        "finishReason": "STOP", "index": 0,
        "groundingMetadata": {"webSearchQueries": ["euro 2024 winner", "euro 2024 final"],
            "searchEntryPoint": {"renderedContent": "<style></style>"},
            "groundingChunks": [{"web": {"uri": "https://vertexaisearch.test/grounding-api-redirect/abc", "title": "uefa.com"}}],
            "groundingSupports": [{"segment": {"startIndex": 0, "endIndex": 20, "text": "Spain won Euro 2024."},
                "groundingChunkIndices": [0], "confidenceScores": [0.97]}]}}],
        "usageMetadata": {"promptTokenCount": 12, "candidatesTokenCount": 6, "totalTokenCount": 18},
        "modelVersion": "gemini-3-pro-preview", "responseId": "r1"});
    let c = super::parse_response(
        crate::catalog::ApiFamily::Gemini,
        "google-ai-studio",
        &meta(m),
        reply.to_string().as_bytes(),
    )
    .unwrap();
    assert_eq!(c.usage.as_ref().map(|u| u.web_searches), Some(2));
    assert_eq!(
        c.choices[0].message.annotations,
        Some(
            json!([{"type": "modelmux_web_search_query", "query": "euro 2024 winner"},
            {"type": "modelmux_web_search_query", "query": "euro 2024 final"}, {"type": "url_citation", "url_citation": {
            "url": "https://vertexaisearch.test/grounding-api-redirect/abc", "title": "uefa.com",
            "content": "Spain won Euro 2024.", "start_index": 0, "end_index": 20}}])
        )
    );
}
