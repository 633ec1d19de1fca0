//! Test loops the surfaces' reply writers are checked against: one search result, and
//! a loop that searched twice then answered.

use serde_json::json;

use super::Turn;
use crate::api::server_tools::{
    Citation, ServerCall, ServerTool, ToolOutput, WebSearchParams, WEB_SEARCH,
};
use crate::api::tool_loop::{Limits, Loop, Next};
use crate::api::ChatCompletion;
use crate::usage::ServerToolUse;

/// One search's output: `url` cited with `title` and `text`.
pub fn search_result(url: &str, title: &str, text: &str) -> ToolOutput {
    ToolOutput {
        content: format!("Web search results for {url}"),
        citations: vec![Citation {
            url: url.into(),
            title: title.into(),
            content: text.into(),
        }],
        usage: ServerToolUse {
            web_search_requests: 1,
            ..ServerToolUse::default()
        },
        ..ToolOutput::default()
    }
}

/// A loop that searched twice (one search per model call: "rust wasm" found Wasm at
/// b.example, "workers rust" Rust on Workers at a.example, each result's text
/// `about(title)`), then answered `answer` as `gen-1-3`.
pub fn searched_twice(answer: &str, about: fn(&str) -> String) -> (ChatCompletion, Turn) {
    let mut lp = Loop::new(
        vec![ServerTool::WebSearch(WebSearchParams::default())],
        Limits::default(),
    );
    for (n, (q, url, title)) in [
        ("rust wasm", "https://b.example/wasm", "Wasm"),
        ("workers rust", "https://a.example/rust", "Rust on Workers"),
    ]
    .into_iter()
    .enumerate()
    {
        let call = ServerCall {
            id: format!("call_{n}"),
            name: WEB_SEARCH.into(),
            arguments: json!({ "query": q }).to_string(),
        };
        assert_eq!(lp.admit(0), Ok(()));
        lp.record(
            &[(0, call)],
            vec![Ok(search_result(url, title, &about(title)))],
        );
    }
    answered(lp, answer)
}

/// `lp`'s model answering `text` (as `gen-1-3`): the reply and the loop's turn.
pub fn answered(mut lp: Loop, text: &str) -> (ChatCompletion, Turn) {
    let answer: ChatCompletion = serde_json::from_value(json!({
        "id": "gen-1-3", "object": "chat.completion", "created": 7, "model": "a/b",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}
    }))
    .unwrap();
    assert_eq!(lp.read(&answer), Next::Answer);
    let c = lp.finish(answer, false);
    let turn = lp.turn(&c);
    (c, turn)
}
