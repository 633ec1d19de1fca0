use serde_json::json;

use super::*;
use crate::api::server_tools::{DatetimeParams, WebSearchParams};

fn completion(message: Value, cost_picos: u64) -> ChatCompletion {
    serde_json::from_value(json!({
        "id": "gen-1", "object": "chat.completion", "created": 1, "model": "a/b",
        "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15, "cost": cost_picos as f64 / 1e12}
    }))
    .unwrap()
}

fn call(id: &str, name: &str, args: &str) -> Value {
    json!({"id": id, "type": "function", "function": {"name": name, "arguments": args}})
}

fn search_loop(limits: Limits) -> Loop {
    let tools = vec![
        ServerTool::WebSearch(WebSearchParams {
            max_uses: 2,
            ..WebSearchParams::default()
        }),
        ServerTool::Datetime(DatetimeParams::default()),
    ];
    let mut l = Loop::new(tools.clone(), limits);
    l.functions = tools.iter().flat_map(ServerTool::functions).collect();
    l
}

fn found(url: &str) -> ToolOutput {
    ToolOutput {
        content: format!("[1] {url}"),
        citations: vec![Citation {
            url: url.into(),
            title: "T".into(),
            content: "C".into(),
        }],
        usage: ServerToolUse {
            web_search_requests: 1,
            ..Default::default()
        },
        cost: 0,
        is_error: false,
    }
}

fn base() -> ChatRequest {
    serde_json::from_value(json!({"model": "a/b", "stream": true, "messages": [{"role": "user", "content": "q"}],
        "tools": [{"type": "function", "function": {"name": "client_fn"}}, {"type": "openrouter:web_search"}]})).unwrap()
}

#[test]
fn a_model_that_searches_twice_then_answers_gets_its_citations() {
    let mut l = search_loop(Limits::default());
    let req = l.request(&base());
    let names: Vec<&str> = req
        .tools
        .iter()
        .flatten()
        .map(|t| t.function.name.as_str())
        .collect();
    assert_eq!(names, ["client_fn", "web_search", "datetime"]);
    assert_eq!(
        (req.stream, req.server_tools.len(), req.messages.len()),
        (None, 0, 1)
    );

    for (n, url) in ["https://a.example/", "https://b.example/"]
        .into_iter()
        .enumerate()
    {
        let reply = completion(
            json!({"role": "assistant", "content": null, "tool_calls": [call(&format!("c{n}"), "web_search", r#"{"query":"x"}"#)]}),
            1_000,
        );
        let Next::Run { calls, client } = l.read(&reply) else {
            panic!("no run")
        };
        assert!(!client);
        assert_eq!(calls[0].0, 0);
        assert_eq!(l.admit(calls[0].0), Ok(()));
        l.record(&calls, vec![Ok(found(url))]);
        l.add_cost(10_000_000_000);
    }
    let req = l.request(&base());
    assert_eq!(req.messages.len(), 5);
    assert_eq!(req.messages[2].role, Role::Tool);
    assert_eq!(req.messages[2].tool_call_id.as_deref(), Some("c0"));
    assert_eq!(req.messages[2].text(), "[1] https://a.example/");
    let answer = completion(
        json!({"role": "assistant", "content": "See https://b.example/ and more."}),
        2_000,
    );
    assert_eq!(l.read(&answer), Next::Answer);
    let out = l.finish(answer, false);
    let m = &out.choices[0].message;
    assert_eq!(
        m.annotations,
        Some(json!([
            {"type": "url_citation", "url_citation": {"url": "https://a.example/", "title": "T", "content": "C", "start_index": 0, "end_index": 32}},
            {"type": "url_citation", "url_citation": {"url": "https://b.example/", "title": "T", "content": "C", "start_index": 4, "end_index": 22}},
        ]))
    );
    let u = out.usage.unwrap();
    assert_eq!(
        (u.prompt_tokens, u.completion_tokens, u.total_tokens),
        (30, 15, 45)
    );
    assert_eq!(
        u.server_tool_use,
        Some(ServerToolUse {
            web_search_requests: 2,
            web_fetch_requests: 0,
            mcp_tool_calls: 0
        })
    );
    // What the three model calls were charged (1000 + 1000 + 2000).
    assert_eq!(u.cost, Some(crate::money::Usd(4_000)));
    assert_eq!(l.cost, 20_000_004_000, "max_cost sees the searches too");
}

#[test]
fn bounds_stop_the_tools_and_say_why() {
    let mut l = search_loop(Limits {
        max_tool_calls: 1,
        ..Limits::default()
    });
    let reply = completion(
        json!({"role": "assistant", "tool_calls": [call("a", "web_search", "{}"), call("b", "datetime", "{}")]}),
        0,
    );
    let Next::Run { calls, .. } = l.read(&reply) else {
        panic!()
    };
    assert_eq!(l.admit(calls[0].0), Ok(()));
    assert!(l.admit(calls[1].0).unwrap_err().contains("max_tool_calls"));
    l.record(
        &calls,
        vec![Ok(found("https://a/")), Err("error: no".into())],
    );
    assert_eq!(l.stopped, Some("max_tool_calls"));
    // No server function is offered once the tools are closed.
    let names: Vec<String> = l
        .request(&base())
        .tools
        .into_iter()
        .flatten()
        .map(|t| t.function.name)
        .collect();
    assert_eq!(names, ["client_fn"]);

    let mut l = search_loop(Limits::default());
    for n in 0..2 {
        assert_eq!(l.admit(0), Ok(()), "use {n}");
    }
    assert!(l.admit(0).unwrap_err().contains("max_uses (2)"));

    let mut l = search_loop(Limits {
        max_cost: Some(5_000),
        ..Limits::default()
    });
    let reply = completion(
        json!({"role": "assistant", "tool_calls": [call("a", "datetime", "{}")]}),
        6_000,
    );
    let Next::Run { calls, .. } = l.read(&reply) else {
        panic!()
    };
    l.record(&calls, vec![Ok(ToolOutput::default())]);
    assert_eq!(l.stopped, Some("max_cost"));

    let mut l = search_loop(Limits {
        max_steps: 1,
        ..Limits::default()
    });
    let Next::Run { calls, .. } = l.read(&reply) else {
        panic!()
    };
    l.record(&calls, vec![Ok(ToolOutput::default())]);
    assert_eq!(l.stopped, Some("max_steps"));
}

#[test]
fn client_calls_go_back_with_the_server_part_replayed_next_turn() {
    let mut l = search_loop(Limits::default());
    let reply = completion(
        json!({"role": "assistant", "content": null,
        "tool_calls": [call("s1", "web_search", r#"{"query":"q"}"#), call("k1", "client_fn", "{}")]}),
        0,
    );
    let Next::Run { calls, client } = l.read(&reply) else {
        panic!()
    };
    assert!(client);
    assert_eq!(calls.len(), 1);
    l.admit(0).unwrap();
    l.record(&calls, vec![Ok(found("https://a/"))]);
    let out = l.finish(reply, true);
    let m = out.choices[0].message.clone();
    let ids: Vec<&str> = m
        .tool_calls
        .iter()
        .flatten()
        .map(|t| t.id.as_str())
        .collect();
    assert_eq!(ids, ["k1"]);
    let details = m.reasoning_details.clone().unwrap();
    assert_eq!(details[0]["format"], REPLAY_FORMAT);

    // The next turn: the client sends the message back with its tool's result.
    let sent: ChatRequest = serde_json::from_value(json!({"model": "a/b", "messages": [
        {"role": "user", "content": "q"},
        {"role": "assistant", "content": null, "tool_calls": m.tool_calls, "reasoning_details": [{"type": "reasoning.text", "text": "hm"}, details[0]]},
        {"role": "tool", "tool_call_id": "k1", "content": "42"}]})).unwrap();
    let msgs = replay(sent.messages);
    let shape: Vec<(Role, Option<&str>)> = msgs
        .iter()
        .map(|m| (m.role, m.tool_call_id.as_deref()))
        .collect();
    assert_eq!(
        shape,
        [
            (Role::User, None),
            (Role::Assistant, None),
            (Role::Tool, Some("s1")),
            (Role::Assistant, None),
            (Role::Tool, Some("k1"))
        ]
    );
    assert_eq!(msgs[1].tool_calls.as_ref().unwrap()[0].id, "s1");
    assert_eq!(msgs[2].text(), "[1] https://a/");
    // Only the provider's own reasoning stays on the message.
    assert_eq!(
        msgs[3].extra.get("reasoning_details"),
        Some(&json!([{"type": "reasoning.text", "text": "hm"}]))
    );
}

#[test]
fn a_citation_not_named_spans_the_whole_answer_once() {
    let c = Citation {
        url: "https://x/".into(),
        title: "X".into(),
        content: "".into(),
    };
    let a = annotations("héllo", &[c.clone(), c]);
    assert_eq!(a.len(), 1);
    assert_eq!(
        (
            a[0]["url_citation"]["start_index"].clone(),
            a[0]["url_citation"]["end_index"].clone()
        ),
        (json!(0), json!(5))
    );
}

#[test]
fn online_and_the_web_plugin_mean_a_web_search_tool() {
    let mut chat: ChatRequest = serde_json::from_value(
        json!({"model": "a/b:online", "messages": [{"role": "user", "content": "q"}]}),
    )
    .unwrap();
    web_by_default(&mut chat).unwrap();
    assert_eq!(chat.model.as_deref(), Some("a/b"));
    assert_eq!(
        chat.server_tools,
        vec![ServerTool::WebSearch(WebSearchParams::default())]
    );
    let mut chat = crate::api::read::chat(json!({"model": "a/b", "messages": [{"role": "user", "content": "q"}],
        "plugins": [{"id": "response-healing"}, {"id": "web", "max_results": 3, "engine": "brave"}]})).unwrap();
    web_by_default(&mut chat).unwrap();
    assert_eq!(
        chat.server_tools,
        vec![ServerTool::WebSearch(WebSearchParams {
            max_results: 3,
            engine: crate::api::server_tools::Engine::Brave,
            ..Default::default()
        })]
    );
    // The plugin's bounds are checked as the request is read.
    let e = crate::api::read::chat(
        json!({"model": "a/b", "messages": [{"role": "user", "content": "q"}],
        "plugins": [{"id": "web", "max_results": 99}]}),
    )
    .unwrap_err();
    assert_eq!(
        e.public_message(),
        "plugins[0].max_results: must be from 1 to 10, not 99"
    );
    let mut plain: ChatRequest = serde_json::from_value(
        json!({"model": "a/b", "messages": [{"role": "user", "content": "q"}]}),
    )
    .unwrap();
    web_by_default(&mut plain).unwrap();
    assert!(plain.server_tools.is_empty());
}

#[test]
fn limits_are_read_only_beside_server_tools() {
    let with: ChatRequest = serde_json::from_value(json!({"model": "a/b", "messages": [{"role": "user", "content": "q"}],
        "tools": [{"type": "openrouter:web_search"}], "max_tool_calls": 4, "stop_server_tools_when": {"max_steps": 2, "max_cost": 0.05}})).unwrap();
    assert_eq!(
        with.tool_limits,
        Limits {
            max_tool_calls: 4,
            max_steps: 2,
            max_cost: Some(50_000_000_000)
        }
    );
    assert!(!with.extra.contains_key("max_tool_calls"));
    let without: ChatRequest = serde_json::from_value(json!({"model": "a/b", "messages": [{"role": "user", "content": "q"}], "max_tool_calls": 4})).unwrap();
    assert_eq!(without.tool_limits, Limits::default());
    assert_eq!(without.extra.get("max_tool_calls"), Some(&json!(4)));
    let bad = ChatRequest::parse(br#"{"model": "a/b", "messages": [{"role": "user", "content": "q"}], "tools": [{"type": "openrouter:datetime"}], "max_tool_calls": 31}"#).unwrap_err();
    assert_eq!(
        bad.public_message(),
        "max_tool_calls: must be between 1 and 30, not 31"
    );
}

#[test]
fn the_answer_streams_as_one_chunk_then_the_close() {
    let mut l = search_loop(Limits::default());
    let reply = completion(
        json!({"role": "assistant", "tool_calls": [call("a", "web_search", r#"{"query":"x"}"#)]}),
        0,
    );
    let Next::Run { calls, .. } = l.read(&reply) else {
        panic!()
    };
    l.admit(0).unwrap();
    l.record(&calls, vec![Ok(found("https://a/"))]);
    let out = l.finish(
        completion(
            json!({"role": "assistant", "content": "https://a/ says so"}),
            0,
        ),
        false,
    );
    let bytes = stream_bytes(
        &out,
        &Default::default(),
        &mut crate::api::surface::Encoder::Chat,
    );
    let text = String::from_utf8(bytes).unwrap();
    let events: Vec<Value> = text
        .split("\n\n")
        .filter_map(|e| e.strip_prefix("data: "))
        .filter(|d| *d != "[DONE]")
        .map(|d| serde_json::from_str(d).unwrap())
        .collect();
    assert_eq!(events.len(), 2);
    assert_eq!(
        events[0]["choices"][0]["delta"]["content"],
        "https://a/ says so"
    );
    assert_eq!(
        events[0]["choices"][0]["delta"]["annotations"][0]["url_citation"]["end_index"],
        10
    );
    assert_eq!(
        events[1]["usage"]["server_tool_use"]["web_search_requests"],
        1
    );
    assert!(text.ends_with("data: [DONE]\n\n"));
}

#[test]
fn each_model_call_reserves_the_searches_the_loop_may_still_run() {
    let mut l = search_loop(Limits {
        max_tool_calls: 3,
        ..Limits::default()
    });
    // max_uses 2 of the one web_search tool; the datetime tool is not a search.
    assert_eq!(l.request(&base()).searches_ahead, 2);
    let reply = completion(
        json!({"role": "assistant", "content": null, "tool_calls": [call("c0", "web_search", r#"{"query":"x"}"#)]}),
        0,
    );
    let Next::Run { calls, .. } = l.read(&reply) else {
        panic!("no run")
    };
    assert_eq!(l.admit(calls[0].0), Ok(()));
    l.record(&calls, vec![Ok(found("https://a.example/"))]);
    assert_eq!(l.request(&base()).searches_ahead, 1);
    // Two datetime calls use up max_tool_calls (3): no search may run after them.
    assert_eq!(l.admit(1), Ok(()));
    assert_eq!(l.searches_left(), 1);
    assert_eq!(l.admit(1), Ok(()));
    assert_eq!(l.searches_left(), 0);
    assert_eq!(l.request(&base()).searches_ahead, 0);
}

#[test]
fn an_endpoints_own_searches_count_against_the_bounds_and_are_not_billed_again() {
    let mut l = search_loop(Limits::default());
    // The first call offers the endpoint a native search bounded by max_uses.
    let first = l.request(&base());
    assert_eq!(first.native_search.as_ref().map(|n| n.max_uses), Some(2));
    assert_eq!(l.unbilled_searches(), 0);
    // The endpoint searched once itself, citing one source, and called the gateway's.
    let mut reply = completion(
        json!({"role": "assistant", "content": null,
            "annotations": [{"type": "url_citation", "url_citation": {"url": "https://n.test/a",
                "title": "N", "content": "native", "start_index": 0, "end_index": 0}},
                {"type": "file", "file": {"hash": "x"}}],
            "tool_calls": [call("c1", "web_search", r#"{"query":"q"}"#)]}),
        1_000,
    );
    reply.usage.as_mut().unwrap().server_tool_use = Some(ServerToolUse {
        web_search_requests: 1,
        ..Default::default()
    });
    let Next::Run { calls, .. } = l.read(&reply) else {
        panic!("no calls to run")
    };
    assert_eq!((l.calls, l.searches_left()), (1, 1));
    assert_eq!(l.admit(calls[0].0), Ok(()));
    l.record(&calls, vec![Ok(found("https://g.test/b"))]);
    // The gateway's one search is billed with the next call; the native one was
    // billed with the call that ran it.
    assert_eq!(l.unbilled_searches(), 1);
    assert_eq!(l.unbilled_searches(), 0);
    // Both tools' bounds are spent: no more native search is offered.
    assert_eq!(l.request(&base()).native_search, None);
    let c = l.finish(
        completion(json!({"role": "assistant", "content": "done"}), 0),
        false,
    );
    let u = c.usage.unwrap().server_tool_use.unwrap();
    assert_eq!(u.web_search_requests, 2);
    let urls: Vec<String> = l.citations.iter().map(|c| c.url.clone()).collect();
    assert_eq!(urls, ["https://n.test/a", "https://g.test/b"]);
    assert_eq!(l.searches.len(), 2);
}
