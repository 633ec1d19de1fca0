use super::*;
use crate::api::FunctionCallDelta;

fn piece(index: u32, id: Option<&str>, name: Option<&str>, args: &str) -> ToolCallDelta {
    ToolCallDelta {
        index,
        id: id.map(str::to_string),
        kind: id.map(|_| "function".to_string()),
        function: Some(FunctionCallDelta {
            name: name.map(str::to_string),
            arguments: Some(args.to_string()),
        }),
    }
}

#[test]
fn overlap_is_the_longest_head_that_is_a_tail() {
    assert_eq!(overlap("Hello wor", "world"), 3);
    assert_eq!(overlap("Hello wor", "wor"), 3);
    // A model that repeats all of it.
    assert_eq!(overlap("Hello wor", "Hello world"), 9);
    assert_eq!(overlap("Hello wor", "Goodbye"), 0);
    assert_eq!(overlap("abab", "ababc"), 4);
    assert_eq!(overlap("abab", "abc"), 2);
    assert_eq!(overlap("", "abc"), 0);
    assert_eq!(overlap("abc", ""), 0);
    // Whole characters only.
    assert_eq!(overlap("née", "ée!"), "ée".len());
}

/// The text of a reply cut after `at` bytes and continued by a model that repeats
/// the last `repeat` bytes of it, fed to a cutter in pieces of `step` bytes.
fn continued(full: &str, at: usize, repeat: usize, step: usize) -> String {
    let sent = full.get(..at).unwrap();
    let mut cutter = Cutter::new(sent);
    let again = full.get(at - repeat.min(at)..).unwrap();
    let mut out = sent.to_string();
    let bytes: Vec<char> = again.chars().collect();
    for chunk in bytes.chunks(step) {
        let s: String = chunk.iter().collect();
        out.push_str(&cutter.push(&s));
    }
    out.push_str(&cutter.flush());
    out
}

#[test]
fn a_continuation_that_repeats_the_tail_is_cut_at_every_cut_point() {
    let full = "The quick brown fox jumps over the lazy dog, and then it runs away.";
    for at in 1..full.len() {
        for repeat in [0, 1, 3, 8, at] {
            for step in [1, 2, 5, 100] {
                let got = continued(full, at, repeat, step);
                assert_eq!(got, full, "cut at {at}, repeating {repeat}, in {step}s");
            }
        }
    }
}

#[test]
fn text_that_repeats_nothing_flows_at_once() {
    let mut c = Cutter::new("Hello");
    // "x" occurs nowhere in the tail: no overlap can grow, it goes out now.
    assert_eq!(c.push("xyz"), "xyz");
    assert_eq!(c.push(" more"), " more");
    // Held while it could still be a repeat ("llo" occurs in "Hello").
    let mut c = Cutter::new("Hello");
    assert_eq!(c.push("l"), "");
    assert_eq!(c.push("lo there"), " there");
    // Nothing sent before: nothing to cut.
    let mut c = Cutter::new("");
    assert_eq!(c.push("Hello"), "Hello");
}

#[test]
fn tool_calls_go_out_whole_once_their_arguments_parse() {
    let mut g = ToolGate::default();
    assert!(g
        .push(vec![piece(0, Some("call_1"), Some("get_weather"), "")])
        .is_empty());
    assert!(g.push(vec![piece(0, None, None, "{\"ci")]).is_empty());
    assert!(g.push(vec![piece(0, None, None, "ty\": \"Par")]).is_empty());
    assert!(!g.any_sent());
    let whole = g.push(vec![piece(0, None, None, "is\"}")]);
    assert_eq!(
        whole,
        vec![piece(
            0,
            Some("call_1"),
            Some("get_weather"),
            "{\"city\": \"Paris\"}"
        )]
    );
    assert!(g.any_sent());
    assert!(g.release().is_empty());
}

#[test]
fn a_call_cut_mid_arguments_is_dropped_and_one_ended_well_is_released() {
    let mut g = ToolGate::default();
    g.push(vec![piece(0, Some("call_1"), Some("f"), "{\"a\": 1")]);
    g.drop_pending();
    assert!(g.release().is_empty());
    assert!(!g.any_sent());
    // A stream that ended well hands on what it made, parsed or not.
    g.push(vec![piece(1, Some("call_2"), Some("g"), "{\"b\"")]);
    assert_eq!(
        g.release(),
        vec![piece(1, Some("call_2"), Some("g"), "{\"b\"")]
    );
}

fn chat(messages: serde_json::Value) -> ChatRequest {
    let body = serde_json::json!({"model": "a/b", "messages": messages, "max_tokens": 100});
    ChatRequest::parse(body.to_string().as_bytes()).unwrap()
}

#[test]
fn a_continuation_gets_the_text_so_far_as_the_assistant_turn() {
    let req = chat(serde_json::json!([{"role": "user", "content": "Tell me"}]));
    // Anthropic and Gemini: a prefilled turn, without trailing white space.
    let next = continuation_request(&req, "Once upon a ", true, 30);
    assert_eq!(next.messages.len(), 2);
    assert_eq!(next.messages[1].role, Role::Assistant);
    assert_eq!(next.messages[1].text(), "Once upon a");
    assert_eq!(next.max_tokens, Some(70));
    // OpenAI-compatible: the turn, then the instruction to go on.
    let next = continuation_request(&req, "Once upon a ", false, 130);
    assert_eq!(next.messages.len(), 3);
    assert_eq!(next.messages[1].text(), "Once upon a ");
    assert_eq!(next.messages[2].role, Role::User);
    assert_eq!(next.messages[2].text(), CONTINUE_INSTRUCTION);
    assert_eq!(next.max_tokens, Some(1));
    // Nothing streamed yet: the request as it was.
    let next = continuation_request(&req, "", false, 0);
    assert_eq!(next.messages, req.messages);
}

fn priced(prompt: u64, completion: u64, charged: u64, upstream: u64) -> Usage {
    let mut u = Usage::new(prompt, completion);
    u.cost = Some(Usd::from_picos(charged));
    u.cost_details = Some(CostDetails {
        upstream_inference_cost: Usd::from_picos(upstream),
        ..Default::default()
    });
    u
}

use crate::usage::CostDetails;

#[test]
fn the_final_usage_sums_the_attempts_and_lists_each() {
    let mut r = Relay::new(2);
    let err = Error::upstream("A", "Provider stream broke: reset");
    assert!(r.hold(&err));
    assert_eq!(r.pending(), Some(&err));
    r.switch(priced(11, 4, 19_000_000, 19_000_000), "A", "m/1");
    assert_eq!(r.pending(), None);
    let last = priced(20, 7, 34_000_000, 34_000_000);
    let sum = r.summed(&last, "B", "m/1", "completed");
    assert_eq!((sum.prompt_tokens, sum.completion_tokens), (31, 11));
    assert_eq!(sum.total_tokens, 42);
    assert_eq!(sum.cost, Some(Usd::from_picos(53_000_000)));
    let d = sum.cost_details.unwrap();
    assert_eq!(d.upstream_inference_cost, Usd::from_picos(53_000_000));
    assert_eq!(
        d.attempts,
        vec![
            AttemptCost {
                provider: "A".into(),
                model: "m/1".into(),
                prompt_tokens: 11,
                completion_tokens: 4,
                cost: Usd::from_picos(19_000_000),
                outcome: "Provider stream broke: reset".into(),
            },
            AttemptCost {
                provider: "B".into(),
                model: "m/1".into(),
                prompt_tokens: 20,
                completion_tokens: 7,
                cost: Usd::from_picos(34_000_000),
                outcome: "completed".into(),
            },
        ]
    );
    assert_eq!(r.spent_picos(&last), 53_000_000);
    let e = r.earlier().unwrap();
    assert_eq!((e.charged_picos, e.loss_picos), (19_000_000, 0));
    assert_eq!(e.usage.prompt_tokens, 11);
}

#[test]
fn an_insured_attempt_is_the_operators_loss_and_failovers_run_out() {
    let mut r = Relay::new(1);
    let err = Error::upstream("A", "boom");
    assert!(r.hold(&err));
    r.switch(priced(11, 0, 0, 11_000_000), "A", "m/1");
    let e = r.earlier().unwrap();
    assert_eq!((e.charged_picos, e.loss_picos), (0, 11_000_000));
    // One failover allowed, one taken.
    assert!(!r.hold(&err));
    assert_eq!(r.give_up(), None);
}

#[test]
fn a_stream_that_sent_a_whole_tool_call_is_not_continued() {
    let mut r = Relay::new(3);
    r.gate.push(vec![piece(0, Some("c"), Some("f"), "{}")]);
    assert!(!r.hold(&Error::upstream("A", "boom")));
}

#[test]
fn chunks_of_a_continuation_lose_their_role_and_repeat() {
    let mut r = Relay::new(1);
    let mut first = ChatChunk::bare(
        crate::api::Delta {
            role: Some("assistant".into()),
            content: Some("Hello wor".into()),
            ..Default::default()
        },
        None,
    );
    assert!(r.filter(&mut first));
    assert_eq!(first.choices[0].delta.role.as_deref(), Some("assistant"));
    assert!(r.hold(&Error::upstream("A", "boom")));
    r.switch(Usage::default(), "A", "m");
    let mut role = ChatChunk::bare(
        crate::api::Delta {
            role: Some("assistant".into()),
            content: Some(String::new()),
            ..Default::default()
        },
        None,
    );
    assert!(!r.filter(&mut role));
    let mut again = ChatChunk::bare(
        crate::api::Delta {
            content: Some("world".into()),
            ..Default::default()
        },
        Some("stop".into()),
    );
    assert!(r.filter(&mut again));
    assert_eq!(again.choices[0].delta.content.as_deref(), Some("ld"));
    assert_eq!(r.text(), "Hello world");
}
