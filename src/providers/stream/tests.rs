use super::*;
use crate::providers::testutil::{catalog, meta};
use serde_json::json;

fn cut_at(model: &str, make: Translator, bytes: &[u8], marker: &str) -> ChatStream {
    let pricing = catalog().model(model).unwrap().endpoints[0].pricing.clone();
    let mut s = ChatStream::new(make, meta(model), pricing, 10);
    let text = std::str::from_utf8(bytes).unwrap();
    let end = text.find(marker).unwrap();
    s.feed(&bytes[..end]);
    s
}

#[test]
fn a_stream_cut_before_its_usage_bills_what_the_provider_said_so_far() {
    let model = "anthropic/claude-sonnet-4.5";
    let bytes = include_bytes!("../../../tests/fixtures/anthropic/tool_use_stream/stream.sse");
    let s = cut_at(
        model,
        Translator::Anthropic(anthropic::StreamState::new("anthropic")),
        bytes,
        "event: message_delta",
    );
    assert_eq!(s.usage_source(), "partial");
    let u = s.final_usage();
    // The prompt is message_start's exact count, not the estimate of 10.
    assert_eq!(u.prompt_tokens, 472);
    // The output is counted from what streamed: the text and the tool call.
    let streamed = "Okay, let's check the weather — ☀️.".len()
        + "get_weather".len()
        + r#"{"city": "Paris"}"#.len();
    assert_eq!(u.completion_tokens, (streamed as u64).div_ceil(4));
    assert!(u.cost.unwrap() > crate::money::Usd(0));
}

#[test]
fn insurance_of_a_stream_that_delivered_nothing() {
    let model = "anthropic/claude-sonnet-4.5";
    let bytes = include_bytes!("../../../tests/fixtures/anthropic/tool_use_stream/stream.sse");
    let start = || {
        cut_at(
            model,
            Translator::Anthropic(anthropic::StreamState::new("anthropic")),
            bytes,
            "event: content_block_start",
        )
    };
    // Failed after message_start (which counts 2 output tokens before any): insured.
    let mut failed = start();
    failed.fail(&Error::upstream("anthropic", "Overloaded"));
    let u = failed.final_usage();
    assert_eq!(failed.finish_reason(), Some("error"));
    assert!(failed.insured(&u));
    assert_eq!(u.cost, Some(crate::money::Usd(0)));
    // Cut there (no finish): insured as far as the stream can tell; the settlement
    // charges it when the cut was the client leaving (`Served::insured`).
    let cut = start();
    assert!(cut.insured(&cut.final_usage()));
    // An empty reply that stopped normally pays for its prompt.
    let mut stopped = start();
    stopped.feed(
        b"event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"stop_sequence\"},\"usage\":{\"output_tokens\":0}}\n\n",
    );
    let u = stopped.final_usage();
    assert_eq!(stopped.finish_reason(), Some("stop"));
    assert!(!stopped.insured(&u));
    assert!(u.cost.unwrap() > crate::money::Usd(0));
}

#[test]
fn a_stream_without_any_usage_is_estimated_tool_calls_included() {
    let model = "openai/gpt-4o-mini";
    let bytes = include_bytes!("../../../tests/fixtures/openai/tool_call_stream/stream.sse");
    let s = cut_at(
        model,
        Translator::OpenAi(openai_compat::StreamState::new("openai")),
        bytes,
        "\"finish_reason\":\"tool_calls\"",
    );
    assert_eq!(s.usage_source(), "estimate");
    let u = s.final_usage();
    assert_eq!(u.prompt_tokens, 10);
    assert!(u.completion_tokens > 0, "tool-call arguments count: {u:?}");
}

/// A stream of a model that hides its reasoning: 50 tokens a second, at most
/// `budget` output tokens, its reply started at t = 1 s.
fn thinking(budget: u64) -> ChatStream {
    let model = "openai/gpt-4o-mini";
    let pricing = catalog().model(model).unwrap().endpoints[0].pricing.clone();
    let translator = Translator::OpenAi(openai_compat::StreamState::new("openai"));
    let mut s = ChatStream::new(translator, meta(model), pricing, 10)
        .with_thinking(Some(Thinking::new(50.0, budget)));
    s.started(1000.0);
    s.at(1000.0);
    s.feed(b"data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"o\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"},\"finish_reason\":null}]}\n\n");
    s
}

const HELLO: &[u8] = b"data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"o\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hello there\"},\"finish_reason\":null}]}\n\n";

fn reasoning(u: &Usage) -> u64 {
    u.completion_tokens_details
        .as_ref()
        .map_or(0, |d| d.reasoning_tokens)
}

#[test]
fn hidden_reasoning_of_a_cut_stream_is_its_silence_at_the_throughput() {
    // Silent for 2 s, then content, then cut while more was coming.
    let mut s = thinking(10_000);
    s.at(3000.0);
    s.feed(HELLO);
    s.at(9000.0);
    assert_eq!(s.usage_source(), "estimate");
    assert!(s.reasoning_estimated());
    let u = s.final_usage();
    assert_eq!(reasoning(&u), 100, "2 s at 50 tokens a second");
    // "Hello there" streamed: 3 tokens, after the thinking.
    assert_eq!(u.completion_tokens, 103);
    assert_eq!(u.total_tokens, 113);

    // Cut before it showed anything: all of it was thinking.
    let mut s = thinking(10_000);
    s.at(5000.0);
    assert_eq!(reasoning(&s.final_usage()), 200);

    // Never more than the request may generate.
    let mut s = thinking(30);
    s.at(3000.0);
    s.feed(HELLO);
    let u = s.final_usage();
    assert_eq!((reasoning(&u), u.completion_tokens), (27, 30));
}

#[test]
fn hidden_reasoning_is_the_providers_count_when_it_gives_one() {
    let mut s = thinking(10_000);
    s.at(3000.0);
    s.feed(HELLO);
    s.feed(b"data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"o\",\"choices\":[],\"usage\":{\"prompt_tokens\":9,\"completion_tokens\":40,\"total_tokens\":49,\"completion_tokens_details\":{\"reasoning_tokens\":37}}}\n\n");
    s.at(9000.0);
    assert_eq!(s.usage_source(), "provider");
    assert!(!s.reasoning_estimated());
    let u = s.final_usage();
    assert_eq!((u.completion_tokens, reasoning(&u)), (40, 37));
    // A model that shows its thinking, or says nothing of it, is not estimated.
    let model = "openai/gpt-4o-mini";
    let pricing = catalog().model(model).unwrap().endpoints[0].pricing.clone();
    let translator = Translator::OpenAi(openai_compat::StreamState::new("openai"));
    let mut plain = ChatStream::new(translator, meta(model), pricing, 10);
    plain.started(1000.0);
    plain.at(5000.0);
    assert!(!plain.reasoning_estimated());
    assert_eq!(plain.final_usage().completion_tokens, 0);
}

#[test]
fn hidden_reasoning_throughput_is_measured_else_stated() {
    let cat = catalog();
    let mut e = cat.model("openai/gpt-4o-mini").unwrap().endpoints[0].clone();
    assert_eq!(
        Thinking::of(&e, Some(80.0), 100),
        None,
        "it shows its reasoning"
    );
    e.hidden_reasoning_tps = Some(40);
    assert_eq!(
        Thinking::of(&e, Some(80.0), 100),
        Some(Thinking::new(80.0, 100))
    );
    assert_eq!(Thinking::of(&e, None, 100), Some(Thinking::new(40.0, 100)));
    assert_eq!(
        Thinking::of(&e, Some(0.0), 100),
        Some(Thinking::new(40.0, 100))
    );
}

fn gathered(model: &str, make: Translator, bytes: &[u8]) -> ChatCompletion {
    let pricing = catalog().model(model).unwrap().endpoints[0].pricing.clone();
    let mut s = ChatStream::new(make, meta(model), pricing, 10).gathering();
    let half = bytes.len() / 2;
    s.feed(&bytes[..half]);
    s.feed(&bytes[half..]);
    s.finish();
    let mut c = s.gathered().unwrap();
    c.usage = Some(s.final_usage());
    c
}

/// What matters of a reply to its caller: choices whole, and the billed counts.
fn gist(c: &ChatCompletion) -> serde_json::Value {
    let u = c.usage.as_ref().unwrap();
    json!({
        "id": c.id, "model": c.model, "choices": c.choices,
        "tokens": [u.prompt_tokens, u.completion_tokens],
    })
}

#[test]
fn a_gathered_stream_is_the_reply_the_provider_would_have_sent_whole() {
    let model = "anthropic/claude-sonnet-4.5";
    let stream = gathered(
        model,
        Translator::Anthropic(anthropic::StreamState::new("anthropic")),
        include_bytes!("../../../tests/fixtures/anthropic/thinking_stream/stream.sse"),
    );
    let whole = json!({
        "id": "msg_01", "type": "message", "role": "assistant", "model": "claude-sonnet-4-5-20250929",
        "content": [
            {"type": "thinking", "thinking": "2 + 2 is 4.", "signature": "EqQBCgIYAhIM1gbcDa9GJwZA2b3h"},
            {"type": "text", "text": "4"}],
        "stop_reason": "end_turn", "stop_sequence": null,
        "usage": {"input_tokens": 20, "output_tokens": 15}});
    let mut whole = crate::providers::parse_response(
        crate::catalog::ApiFamily::Anthropic,
        "anthropic",
        &meta(model),
        whole.to_string().as_bytes(),
    )
    .unwrap();
    whole.usage.as_mut().unwrap().total_tokens = 35;
    assert_eq!(gist(&stream), gist(&whole));

    let model = "openai/gpt-4o-mini";
    let stream = gathered(
        model,
        Translator::OpenAi(openai_compat::StreamState::new("openai")),
        include_bytes!("../../../tests/fixtures/openai/tool_call_stream/stream.sse"),
    );
    let m = &stream.choices[0].message;
    assert_eq!(m.content, None);
    let call = &m.tool_calls.as_ref().unwrap()[0];
    assert_eq!(
        (
            call.id.as_str(),
            call.function.name.as_str(),
            call.function.arguments.as_str()
        ),
        (
            "call_Zk2mW7sQ4nR9xT1bV6yH3pLd",
            "get_weather",
            r#"{"city":"Paris"}"#
        )
    );
    assert_eq!(
        stream.choices[0].finish_reason.as_deref(),
        Some("tool_calls")
    );
    assert_eq!(stream.system_fingerprint.as_deref(), Some("fp_34a54ae93c"));

    let model = "google/gemini-3-pro-preview";
    let stream = gathered(
        model,
        Translator::Gemini(gemini::StreamState::new(
            "google-ai-studio",
            &meta(model).id,
        )),
        include_bytes!("../../../tests/fixtures/gemini/thought_signature_stream/stream.sse"),
    );
    let whole = json!({"candidates": [{"content": {"role": "model", "parts": [
            {"text": "**Planning the lookup**\n\nThe user wants the weather, so I will call get_weather for Paris.", "thought": true},
            {"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}, "thoughtSignature": "EjQKMgG+Pvb7sigPart1Paris"},
            {"functionCall": {"name": "get_weather", "args": {"city": "Lyon"}}}]},
        "finishReason": "STOP", "index": 0}],
        "usageMetadata": {"promptTokenCount": 61, "candidatesTokenCount": 30, "totalTokenCount": 171, "thoughtsTokenCount": 80},
        "modelVersion": "gemini-3-pro-preview"});
    let whole = crate::providers::parse_response(
        crate::catalog::ApiFamily::Gemini,
        "google-ai-studio",
        &meta(model),
        whole.to_string().as_bytes(),
    )
    .unwrap();
    assert_eq!(gist(&stream), gist(&whole));
}

#[test]
fn anthropic_text_deltas_written_directly_are_the_typed_chunks() {
    let model = "anthropic/claude-sonnet-4.5";
    let pricing = catalog().model(model).unwrap().endpoints[0].pricing.clone();
    let make = || {
        let t = Translator::Anthropic(anthropic::StreamState::new("anthropic"));
        ChatStream::new(t, meta(model), pricing.clone(), 10)
    };
    // Text with escapes (quotes, a newline, a backslash, a control character) and
    // characters outside ASCII, besides the recorded streams.
    let delta = |text: &str| {
        format!(
            "event: content_block_delta\ndata: {}\n\n",
            serde_json::json!({"type": "content_block_delta", "index": 0,
                "delta": {"type": "text_delta", "text": text}})
        )
    };
    let escaped = [
        "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"usage\":{\"input_tokens\":3,\"output_tokens\":1}}}\n\n".to_string(),
        "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n".to_string(),
        delta("say \"hi\"\nC:\\dir \u{1} — ☀️ </script>"),
        delta(""),
        "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\"}}\n\n".to_string(),
        "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n".to_string(),
    ]
    .concat();
    let streams: [&[u8]; 4] = [
        include_bytes!("../../../tests/fixtures/anthropic/tool_use_stream/stream.sse"),
        include_bytes!("../../../tests/fixtures/anthropic/thinking_stream/stream.sse"),
        include_bytes!("../../../tests/fixtures/anthropic/overloaded_stream/stream.sse"),
        escaped.as_bytes(),
    ];
    for bytes in streams {
        let mut direct = make();
        let fast = direct.feed(bytes);
        // The typed path: every event made into chunks, then written.
        let mut typed = make();
        let mut out = Vec::new();
        let mut sse = SseParser::new();
        let _ = sse.feed_with(bytes, |data| {
            let mut chunks = Vec::new();
            let res = typed.translator.event(data, &mut chunks);
            typed.emit(chunks, &mut out);
            res
        });
        assert!(fast.windows(9).any(|w| w == b"\"content\""));
        if bytes.starts_with(
            b"event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"usage\"",
        ) {
            assert!(String::from_utf8_lossy(&fast)
                .contains(r#"say \"hi\"\nC:\\dir \u0001 — ☀️ </script>"#));
        }
        // Up to the end (or the failure, which the typed path here does not write).
        assert_eq!(fast.get(..out.len()), Some(&out[..]));
        assert_eq!(direct.sent.completion_bytes, typed.sent.completion_bytes);
        assert_eq!(direct.sent.content, typed.sent.content);
        assert_eq!(direct.final_usage(), typed.final_usage());
    }
}

#[test]
fn the_final_usage_of_a_stream_reports_its_session_on_every_surface() {
    use crate::api::{messages, responses};
    use crate::money::Usd;
    let model = "anthropic/claude-sonnet-4.5";
    let pricing = catalog().model(model).unwrap().endpoints[0].pricing.clone();
    let bytes = include_bytes!("../../../tests/fixtures/anthropic/tool_use_stream/stream.sse");
    let before = crate::usage::SessionUsage {
        id: "s-1".into(),
        cost: Usd(1_000),
        requests: 3,
        tokens: 40,
        remaining_cost: Some(Usd(9_000_000_000)),
        remaining_requests: Some(7),
    };
    let encoders = [
        (Encoder::Chat, "\"usage\""),
        (Encoder::Completions, "\"usage\""),
        (
            Encoder::Responses(Box::new(responses::StreamEncoder::new(Default::default()))),
            "response.completed",
        ),
        (
            Encoder::Messages(messages::StreamEncoder::new(10)),
            "message_delta",
        ),
    ];
    for (encoder, last) in encoders {
        let t = Translator::Anthropic(anthropic::StreamState::new("anthropic"));
        let mut s = ChatStream::new(t, meta(model), pricing.clone(), 10)
            .with_encoder(encoder)
            .with_session(Some(before.clone()));
        let mut out = s.feed(bytes);
        out.extend(s.finish());
        let cost = s.final_usage().cost.unwrap();
        assert!(cost > Usd(0));
        let text = String::from_utf8(out).unwrap();
        let event = text
            .split("\n\n")
            .filter(|e| e.contains(last) && e.contains("\"session\""))
            .last()
            .unwrap_or_else(|| panic!("no {last} with usage.session in {text}"));
        let data = event
            .lines()
            .find_map(|l| l.strip_prefix("data: "))
            .unwrap();
        let v: serde_json::Value = serde_json::from_str(data).unwrap();
        let usage = [&v["usage"], &v["response"]["usage"]]
            .into_iter()
            .find(|u| u.is_object())
            .unwrap();
        let session = &usage["session"];
        assert_eq!(session["id"], "s-1", "{event}");
        assert_eq!(session["requests"], 3);
        assert_eq!(session["tokens"], 40);
        assert_eq!(session["remaining_requests"], 7);
        let money = |v: &serde_json::Value| serde_json::from_value::<Usd>(v.clone()).unwrap();
        assert_eq!(money(&session["cost"]), Usd(1_000 + cost.0));
        assert_eq!(
            money(&session["remaining_cost"]),
            Usd(9_000_000_000 - cost.0)
        );
    }
}

/// The Messages pass-through sends Anthropic's events as they came; with a session,
/// the same events, split anywhere, with `usage.session` added to the `message_delta`
/// (whose usage is final) and nothing else changed.
#[test]
fn the_passthrough_stream_reports_its_session_in_message_delta() {
    use crate::money::Usd;
    let model = "anthropic/claude-sonnet-4.5";
    let pricing = catalog().model(model).unwrap().endpoints[0].pricing.clone();
    let bytes: &[u8] =
        include_bytes!("../../../tests/fixtures/anthropic/tool_use_stream/stream.sse");
    let before = crate::usage::SessionUsage {
        id: "s-1".into(),
        cost: Usd(1_000),
        requests: 2,
        tokens: 40,
        remaining_cost: Some(Usd(9_000_000_000)),
        remaining_requests: None,
    };
    let run = |session: Option<crate::usage::SessionUsage>, split: usize| {
        let t = Translator::Anthropic(anthropic::StreamState::new("anthropic"));
        let mut s = ChatStream::new(t, meta(model), pricing.clone(), 10)
            .with_encoder(Encoder::Passthrough)
            .with_session(session);
        let (a, b) = bytes.split_at(split);
        let mut out = s.feed(a);
        out.extend(s.feed(b));
        out.extend(s.finish());
        (out, s.final_usage().cost.unwrap())
    };
    assert_eq!(run(None, 7).0, bytes, "as Anthropic sent them");
    let (whole, cost) = run(Some(before.clone()), 0);
    let text = String::from_utf8(whole.clone()).unwrap();
    let sent = String::from_utf8(bytes.to_vec()).unwrap();
    let delta = |t: &str| {
        t.split("\n\n")
            .find(|e| e.starts_with("event: message_delta\n"))
            .unwrap()
            .to_string()
    };
    let (ours, theirs) = (delta(&text), delta(&sent));
    assert_eq!(text.replace(&ours, ""), sent.replace(&theirs, ""));
    let data = |e: &str| -> serde_json::Value {
        serde_json::from_str(e.lines().find_map(|l| l.strip_prefix("data: ")).unwrap()).unwrap()
    };
    let (mut ours, theirs) = (data(&ours), data(&theirs));
    let session = ours["usage"]
        .as_object_mut()
        .unwrap()
        .remove("session")
        .unwrap();
    assert_eq!(ours, theirs, "only usage.session is added");
    assert_eq!(session["id"], "s-1");
    assert_eq!(session["requests"], 2);
    assert_eq!(session["remaining_requests"], serde_json::Value::Null);
    let money = |v: &serde_json::Value| serde_json::from_value::<Usd>(v.clone()).unwrap();
    assert_eq!(money(&session["cost"]), Usd(1_000 + cost.0));
    assert_eq!(
        money(&session["remaining_cost"]),
        Usd(9_000_000_000 - cost.0)
    );
    for split in 1..bytes.len() {
        assert_eq!(
            run(Some(before.clone()), split).0,
            whole,
            "split at {split}"
        );
    }
}

/// `openrouter_metadata` goes on a stream's last event on every surface (a Responses
/// event's `response`), nowhere else; a chat stream may start with the body sent
/// upstream, other surfaces never.
#[test]
fn metadata_ends_a_stream_and_the_echo_starts_a_chat_one() {
    use crate::api::{messages, responses};
    let model = "anthropic/claude-sonnet-4.5";
    let pricing = catalog().model(model).unwrap().endpoints[0].pricing.clone();
    let bytes = include_bytes!("../../../tests/fixtures/anthropic/tool_use_stream/stream.sse");
    let encoders = [
        (Encoder::Chat, "usage"),
        (Encoder::Completions, "usage"),
        (
            Encoder::Responses(Box::new(responses::StreamEncoder::new(Default::default()))),
            "response.completed",
        ),
        (
            Encoder::Messages(messages::StreamEncoder::new(10)),
            "message_stop",
        ),
    ];
    for (encoder, last) in encoders {
        let chat = matches!(encoder, Encoder::Chat);
        let t = Translator::Anthropic(anthropic::StreamState::new("anthropic"));
        let mut s = ChatStream::new(t, meta(model), pricing.clone(), 10)
            .with_encoder(encoder)
            .with_metadata(Some(r#"{"attempt":1}"#.into()))
            .with_echo(Some(br#"{"model":"up","stream":true}"#));
        let mut out = s.feed(bytes);
        out.extend(s.finish());
        let text = String::from_utf8(out).unwrap();
        let data: Vec<serde_json::Value> = text
            .split("\n\n")
            .filter_map(|e| e.lines().find_map(|l| l.strip_prefix("data: ")))
            .filter(|d| *d != "[DONE]")
            .map(|d| serde_json::from_str(d).unwrap())
            .collect();
        let end = data.last().unwrap();
        let meta = [
            &end["openrouter_metadata"],
            &end["response"]["openrouter_metadata"],
        ];
        assert!(meta.contains(&&json!({"attempt": 1})), "{last}: {end}");
        assert!(end.get("usage").is_some() || end["type"] == last, "{end}");
        assert_eq!(text.matches("openrouter_metadata").count(), 1, "{text}");
        let echoed = json!({"model": "up", "stream": true});
        if chat {
            assert_eq!(data[0]["choices"], json!([]));
            assert_eq!(data[0]["debug"]["echo_upstream_body"], echoed);
            assert_eq!(data[0]["id"], data[1]["id"]);
        }
        assert_eq!(
            text.matches("echo_upstream_body").count(),
            usize::from(chat),
            "{text}"
        );
    }
}

/// The text of a chat stream's output, and how many times it says `[DONE]`.
fn chat_text(out: &[u8]) -> (String, usize, Vec<serde_json::Value>) {
    let text = String::from_utf8_lossy(out);
    let chunks: Vec<serde_json::Value> = text
        .split("\n\n")
        .filter_map(|b| b.strip_prefix("data: "))
        .filter(|d| *d != "[DONE]")
        .map(|d| serde_json::from_str(d).unwrap())
        .collect();
    let content = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
        .collect();
    (content, text.matches("data: [DONE]").count(), chunks)
}

#[test]
fn a_stream_that_fails_over_continues_the_same_reply_once() {
    let model = "anthropic/claude-sonnet-4.5";
    let pricing = catalog().model(model).unwrap().endpoints[0].pricing.clone();
    let t = Translator::Anthropic(anthropic::StreamState::new("anthropic"));
    let mut s = ChatStream::new(t, meta(model), pricing.clone(), 10).with_failover(1);
    let first = concat!(
        "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"usage\":{\"input_tokens\":3,\"output_tokens\":1}}}\n\n",
        "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n",
        "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"Hello wor\"}}\n\n",
        "event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"Overloaded\"}}\n\n",
        "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"ignored\"}}\n\n",
    );
    let mut out = s.feed(first.as_bytes());
    assert!(s.pending_failover().is_some());
    assert!(!s.is_closed());
    assert_eq!(s.sent_text(), "Hello wor");
    // Held: nothing more is read, and the failure was not sent.
    assert!(s.feed(b"data: {}\n\n").is_empty());
    let mut next = meta(model);
    next.provider = "Other".into();
    let t = Translator::OpenAi(openai_compat::StreamState::new("other"));
    let mark = s.switch(t, next, pricing, 10);
    assert_eq!(
        String::from_utf8(mark).unwrap(),
        format!(": failover to Other/{model}\n\n")
    );
    let chunk = |delta: serde_json::Value, finish: serde_json::Value| {
        format!(
            "data: {}\n\n",
            json!({"id": "x", "object": "chat.completion.chunk", "created": 1, "model": "m",
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})
        )
    };
    let second = [
        chunk(json!({"role": "assistant", "content": ""}), json!(null)),
        chunk(json!({"content": "wor"}), json!(null)),
        chunk(json!({"content": "ld!"}), json!(null)),
        chunk(json!({}), json!("stop")),
        format!(
            "data: {}\n\ndata: [DONE]\n\n",
            json!({"id": "x", "object": "chat.completion.chunk", "created": 1, "model": "m",
            "choices": [], "usage": {"prompt_tokens": 20, "completion_tokens": 5, "total_tokens": 25}})
        ),
    ]
    .concat();
    out.extend(s.feed(second.as_bytes()));
    out.extend(s.finish());
    let (text, done, chunks) = chat_text(&out);
    assert_eq!(text, "Hello world!");
    assert_eq!(done, 1);
    assert!(chunks.iter().all(|c| c.get("error").is_none()));
    let usage = &chunks.last().unwrap()["usage"];
    // 3 + 20 prompt tokens, 3 (the partial count's estimate) + 5 completion tokens.
    assert_eq!(usage["prompt_tokens"], 23);
    assert_eq!(usage["completion_tokens"], 8);
    let attempts = usage["cost_details"]["attempts"].as_array().unwrap();
    assert_eq!(attempts.len(), 2);
    assert_eq!(attempts[0]["provider"], "Test");
    assert_eq!(attempts[1]["provider"], "Other");
    assert_eq!(attempts[1]["outcome"], "completed");
    let earlier = s.earlier().unwrap();
    assert_eq!(earlier.usage.prompt_tokens, 3);
    assert!(s.delivered());
}

#[test]
fn a_recorded_stream_goes_to_its_client_and_is_kept_as_the_gathered_reply() {
    // The response cache's copy of a stream: the client gets the same bytes as without
    // it, and the copy is the reply a gathered stream makes.
    let model = "openai/gpt-4o-mini";
    let bytes = include_bytes!("../../../tests/fixtures/openai/tool_call_stream/stream.sse");
    let make = || Translator::OpenAi(openai_compat::StreamState::new("openai"));
    let pricing = catalog().model(model).unwrap().endpoints[0].pricing.clone();
    let run = |record: bool| {
        let mut s = ChatStream::new(make(), meta(model), pricing.clone(), 10).recording(record);
        let mut out = s.feed(bytes);
        out.extend(s.finish());
        (out, s.recorded())
    };
    let (plain, none) = run(false);
    let (recorded, kept) = run(true);
    assert!(none.is_none());
    let text = |b: &[u8]| String::from_utf8(b.to_vec()).unwrap();
    let events = |b: &[u8]| -> Vec<serde_json::Value> {
        text(b)
            .lines()
            .filter_map(|l| l.strip_prefix("data: "))
            .filter(|d| *d != "[DONE]")
            .map(|d| serde_json::from_str(d).unwrap())
            .collect()
    };
    assert_eq!(events(&recorded), events(&plain));
    let kept = kept.unwrap();
    assert_eq!(gist(&kept), gist(&gathered(model, make(), bytes)));
    assert_eq!(kept.choices[0].finish_reason.as_deref(), Some("tool_calls"));
}

/// An OpenAI stream event of a content delta (and finish).
fn openai_event(content: &str, finish: Option<&str>) -> String {
    let choice = json!({"index": 0, "delta": {"content": content}, "finish_reason": finish});
    let chunk = json!({"id": "c", "object": "chat.completion.chunk", "created": 1,
                       "model": "o", "choices": [choice]});
    format!("data: {chunk}\n\n")
}

#[test]
fn a_healed_stream_completes_its_json_before_the_finish() {
    let model = "openai/gpt-4o-mini";
    let pricing = catalog().model(model).unwrap().endpoints[0].pricing.clone();
    let req = crate::providers::testutil::request(json!({
        "model": model, "messages": [{"role": "user", "content": "x"}], "stream": true,
        "response_format": {"type": "json_object"}, "plugins": [{"id": "response-healing"}]}));
    let t = Translator::OpenAi(openai_compat::StreamState::new("openai"));
    let mut s = ChatStream::new(t, meta(model), pricing, 10)
        .with_healing(crate::api::heal::Healer::of(&req));
    let first = s.feed(openai_event("{\"city\": \"Par", None).as_bytes());
    assert!(String::from_utf8(first)
        .unwrap()
        .contains(r#""content":"{\"city\": \"Par""#));
    let held = s.feed(openai_event("is", Some("length")).as_bytes());
    let held = String::from_utf8(held).unwrap();
    assert!(
        held.contains(r#""content":"is""#) && !held.contains("length"),
        "{held}"
    );
    let end = String::from_utf8(s.finish()).unwrap();
    let data: Vec<serde_json::Value> = end
        .split("\n\n")
        .filter_map(|e| e.strip_prefix("data: "))
        .filter(|d| *d != "[DONE]")
        .map(|d| serde_json::from_str(d).unwrap())
        .collect();
    assert_eq!(data.len(), 3, "{end}");
    assert_eq!(data[0]["choices"][0]["delta"], json!({"content": "\"}"}));
    assert_eq!(data[0]["choices"][0]["finish_reason"], json!(null));
    assert_eq!(data[1]["choices"][0]["delta"], json!({}));
    assert_eq!(data[1]["choices"][0]["finish_reason"], "length");
    assert_eq!(
        data[2]["openrouter_metadata"],
        json!({"pipeline": [{"type": "response_healing", "name": "response-healing",
            "data": {"mode": "json_object", "healed": true, "original_length": 15,
                     "healed_length": 17, "valid": true, "streamed": true,
                     "repairs": [{"index": 0, "repair": "suffix", "appended": "\"}"}]}}]})
    );
    assert_eq!(s.finish_reason(), Some("length"));
}

/// On Responses the healing delta is an `output_text.delta` before the item is done,
/// and the stage is in `response.completed`'s `response.openrouter_metadata`.
#[test]
fn a_healed_responses_stream_gets_its_suffix_as_a_text_delta() {
    use crate::api::responses;
    let model = "openai/gpt-4o-mini";
    let pricing = catalog().model(model).unwrap().endpoints[0].pricing.clone();
    let req = crate::providers::testutil::request(json!({
        "model": model, "messages": [{"role": "user", "content": "x"}], "stream": true,
        "response_format": {"type": "json_object"}, "plugins": [{"id": "response-healing"}]}));
    let t = Translator::OpenAi(openai_compat::StreamState::new("openai"));
    let encoder = Encoder::Responses(Box::new(responses::StreamEncoder::new(Default::default())));
    let mut s = ChatStream::new(t, meta(model), pricing, 10)
        .with_encoder(encoder)
        .with_healing(crate::api::heal::Healer::of(&req));
    let mut out = s.feed(openai_event("[1, [2", Some("stop")).as_bytes());
    out.extend(s.finish());
    let text = String::from_utf8(out).unwrap();
    let data: Vec<serde_json::Value> = text
        .split("\n\n")
        .filter_map(|e| e.lines().find_map(|l| l.strip_prefix("data: ")))
        .map(|d| serde_json::from_str(d).unwrap())
        .collect();
    let deltas: Vec<&str> = data
        .iter()
        .filter(|e| e["type"] == "response.output_text.delta")
        .map(|e| e["delta"].as_str().unwrap())
        .collect();
    assert_eq!(deltas, ["[1, [2", "]]"]);
    let end = data.last().unwrap();
    assert_eq!(end["type"], "response.completed");
    assert_eq!(
        end["response"]["openrouter_metadata"]["pipeline"][0]["data"]["repairs"],
        json!([{"index": 0, "repair": "suffix", "appended": "]]"}])
    );
    let done = data
        .iter()
        .find(|e| e["type"] == "response.output_text.done");
    assert_eq!(done.unwrap()["text"], "[1, [2]]");
}

#[test]
fn the_served_tier_ends_responses_and_messages_streams() {
    use crate::api::{messages, responses};
    let model = "openai/gpt-4o-mini";
    let pricing = catalog().model(model).unwrap().endpoints[0].pricing.clone();
    let run = |encoder: Encoder, tier: &str| {
        let t = Translator::OpenAi(openai_compat::StreamState::new("openai"));
        let mut s = ChatStream::new(t, meta(model), pricing.clone(), 10).with_encoder(encoder);
        let mut out = s.feed(HELLO);
        let last = format!(
            "data: {{\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"o\",{tier}\"choices\":[{{\"index\":0,\"delta\":{{}},\"finish_reason\":\"stop\"}}],\"usage\":{{\"prompt_tokens\":5,\"completion_tokens\":3,\"total_tokens\":8}}}}\n\ndata: [DONE]\n\n"
        );
        out.extend(s.feed(last.as_bytes()));
        out.extend(s.finish());
        let text = String::from_utf8(out).unwrap();
        let data = text
            .split("\n\n")
            .filter_map(|e| e.lines().find_map(|l| l.strip_prefix("data: ")))
            .filter_map(|d| serde_json::from_str::<serde_json::Value>(d).ok())
            .filter(|v| v["type"] == "response.completed" || v["type"] == "message_delta")
            .last()
            .unwrap_or_else(|| panic!("no closing event in {text}"));
        let said = |v: &serde_json::Value| Some(v.clone()).filter(|v| !v.is_null());
        said(&data["response"]["service_tier"]).or_else(|| said(&data["usage"]["service_tier"]))
    };
    let resp = || Encoder::Responses(Box::new(responses::StreamEncoder::new(Default::default())));
    let msgs = || Encoder::Messages(messages::StreamEncoder::new(10));
    let priority = "\"service_tier\":\"priority\",";
    assert_eq!(run(resp(), priority), Some(json!("priority")));
    assert_eq!(run(msgs(), priority), Some(json!("priority")));
    let flex = "\"service_tier\":\"flex\",";
    assert_eq!(run(resp(), flex), Some(json!("flex")));
    assert_eq!(run(msgs(), flex), Some(json!("standard")));
    // The upstream said none: neither says one.
    assert_eq!(run(resp(), ""), None);
    assert_eq!(run(msgs(), ""), None);
}
