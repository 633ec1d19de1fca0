//! Property fuzzing of every function that reads bytes from outside: the router, chat
//! request parsing and validation (and, for what passes, routing, reservation and
//! every provider's request builder), each provider's reply parser and stream
//! translator (arbitrary bytes, arbitrary splits, mutated real fixtures), the SSE
//! parser, key parsing, the catalogue, query strings and USD amounts.
//!
//! The property is always the same: no panic (a panic in the Worker aborts the wasm
//! instance and every request in it), and errors are 4xx/5xx of the one error enum.
//! `make test` runs a short campaign (`PROPTEST_CASES`, 256 by default); `make fuzz`
//! a long one and prints how many inputs each target ran. Inputs that ever failed are
//! kept in [`regressions`] below.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    clippy::panic
)]

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};

use modelmux::accounts::{keys, ledger};
use modelmux::api::route::{self, Method};
use modelmux::api::sse::SseParser;
use modelmux::api::{ChatRequest, GenerationMeta};
use modelmux::catalog::listing::{percent_decode, ModelFilter};
use modelmux::catalog::{parse_picos, Catalog};
use modelmux::providers::stream::{ChatStream, Translator};
use modelmux::providers::{self, Target};
use modelmux::routing::{self, RouteContext};
use proptest::prelude::*;
use serde_json::{json, Map, Value};

static SHIPPED: &[u8] = include_bytes!("../catalog/catalog.json");
/// One model per provider family of the shipped catalogue.
const MODELS: &[&str] = &[
    "openai/gpt-5",
    "anthropic/claude-sonnet-4.5",
    "google/gemini-2.5-pro",
    "modelmux/echo",
];

fn catalog() -> &'static Catalog {
    use std::sync::OnceLock;
    static CAT: OnceLock<Catalog> = OnceLock::new();
    CAT.get_or_init(|| Catalog::from_json(SHIPPED).unwrap())
}

/// Runs `f` on `cases` inputs from `strategy` (env `PROPTEST_CASES`, 256 by default),
/// shrinking any failure to a minimal input, and prints how many inputs ran.
fn fuzz<S: Strategy>(name: &str, strategy: S, f: impl Fn(S::Value))
where
    S::Value: std::fmt::Debug,
{
    use proptest::test_runner::{Config, TestRunner};
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(256);
    let mut runner = TestRunner::new(Config {
        cases,
        failure_persistence: None,
        max_shrink_iters: 2048,
        ..Config::default()
    });
    let ran = AtomicU64::new(0);
    let result = runner.run(&strategy, |v| {
        ran.fetch_add(1, Ordering::Relaxed);
        f(v);
        Ok(())
    });
    println!("fuzz {name}: {} inputs", ran.load(Ordering::Relaxed));
    if let Err(e) = result {
        panic!("fuzz {name} failed: {e}");
    }
}

fn with_target<R>(model: &str, f: impl FnOnce(&Target) -> R) -> R {
    let cat = catalog();
    let m = cat.model(model).unwrap();
    let e = &m.endpoints[0];
    let t = Target {
        provider: cat.provider(&e.provider).unwrap(),
        model: m,
        endpoint: e,
        base_url: "http://up/v1".into(),
        api_key: Some("sk-up".into()),
    };
    f(&t)
}

fn meta(model: &str) -> GenerationMeta {
    GenerationMeta {
        id: "gen-1-x".into(),
        created: 1,
        model: model.into(),
        provider: "P".into(),
    }
}

fn assert_status(e: &modelmux::error::Error) {
    let s = e.status();
    assert!((400..600).contains(&s), "{e:?}");
    // The body must always serialize.
    let _ = serde_json::to_string(&e.body());
}

// ------------------------------------------------------------ generators

/// Field names and values that chat requests and provider replies use, so that
/// generated JSON reaches deep into the parsers instead of failing at the top.
const KEYS: &[&str] = &[
    "model",
    "models",
    "messages",
    "role",
    "content",
    "type",
    "text",
    "image_url",
    "url",
    "tool_calls",
    "tool_call_id",
    "id",
    "function",
    "name",
    "arguments",
    "tools",
    "tool_choice",
    "parameters",
    "max_tokens",
    "max_completion_tokens",
    "n",
    "stop",
    "temperature",
    "top_p",
    "stream",
    "provider",
    "order",
    "only",
    "sort",
    "max_price",
    "response_format",
    "json_schema",
    "schema",
    "reasoning",
    "effort",
    "choices",
    "delta",
    "message",
    "finish_reason",
    "usage",
    "prompt_tokens",
    "completion_tokens",
    "index",
    "candidates",
    "parts",
    "functionCall",
    "args",
    "usageMetadata",
    "finishReason",
    "content_block",
    "stop_reason",
    "input",
    "thinking",
    "signature",
    "error",
    "data",
    "file",
    "file_data",
    "input_audio",
    "format",
    "detail",
    "cache_control",
    "seed",
    "logit_bias",
    "reasoning_effort",
    "modalities",
    "index",
    "promptFeedback",
];

const STRINGS: &[&str] = &[
    "",
    "user",
    "assistant",
    "system",
    "tool",
    "developer",
    "wizard",
    "text",
    "image_url",
    "function",
    "json_schema",
    "json_object",
    "auto",
    "required",
    "none",
    "openai/gpt-5",
    "anthropic/claude-sonnet-4.5",
    "google/gemini-2.5-pro",
    "modelmux/echo",
    "modelmux/echo:free",
    "a/b:nitro",
    "price",
    "https://x/y.png",
    "data:image/png;base64,AA",
    "stop",
    "length",
    "tool_use",
    "end_turn",
    "STOP",
    "SAFETY",
    "message_start",
    "content_block_delta",
    "input_json_delta",
    "text_delta",
    "{\"a\":",
    "é",
    "\u{0}",
];

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<u64>().prop_map(|n| json!(n)),
        any::<f64>().prop_map(|f| json!(f)),
        proptest::sample::select(STRINGS).prop_map(|s| json!(s)),
        ".{0,12}".prop_map(Value::String),
    ];
    leaf.prop_recursive(6, 64, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec(
                (
                    prop_oneof![
                        4 => proptest::sample::select(KEYS).prop_map(str::to_string),
                        1 => "[a-z_]{1,8}",
                    ],
                    inner
                ),
                0..6
            )
            .prop_map(|kv| Value::Object(kv.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

/// A request body: a valid base with some fields replaced by generated values.
fn chat_body() -> impl Strategy<Value = Value> {
    (
        proptest::sample::select(MODELS),
        prop::collection::vec(
            (
                proptest::sample::select(KEYS).prop_map(str::to_string),
                json_value(),
            ),
            0..5,
        ),
        prop::collection::vec(json_value(), 0..4),
    )
        .prop_map(|(model, fields, extra_messages)| {
            let mut body = json!({
                "model": model,
                "messages": [{"role": "user", "content": "hello"}],
            });
            let obj = body.as_object_mut().unwrap();
            for (k, v) in fields {
                obj.insert(k, v);
            }
            if let Some(Value::Array(ms)) = obj.get_mut("messages") {
                ms.extend(extra_messages);
            }
            body
        })
}

/// Bytes of a real fixture with a few bytes changed, or a prefix of it.
fn mutated(fixture: &'static [u8]) -> impl Strategy<Value = Vec<u8>> {
    (
        prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..6),
        any::<prop::sample::Index>(),
        any::<bool>(),
    )
        .prop_map(move |(edits, cut, truncate)| {
            let mut b = fixture.to_vec();
            for (i, v) in edits {
                if !b.is_empty() {
                    let at = i.index(b.len());
                    b[at] = v;
                }
            }
            if truncate && !b.is_empty() {
                b.truncate(cut.index(b.len()));
            }
            b
        })
}

// ------------------------------------------------------------ the targets

fn route_target(method: &str, path: &str, query: &str) {
    match route::route(Method::parse(method), path) {
        Ok(_) => {}
        Err(e) => assert_status(&e),
    }
    let _ = route::query_param(query, "id");
    let filter = ModelFilter::from_query(query);
    let none = std::collections::HashMap::new();
    for now in [0, u64::MAX] {
        let _ = modelmux::catalog::listing::models(catalog(), &filter, &none, now);
    }
    let _ = percent_decode(path);
}

fn chat_target(body: &[u8]) {
    let req = match ChatRequest::parse(body) {
        Ok(r) => r,
        Err(e) => {
            assert_eq!(e.status(), 400, "{e:?}");
            return;
        }
    };
    // What passes validation goes through routing, reservation and every family's
    // request builder without a panic.
    let cat = catalog();
    let health = HashMap::new();
    for allow_training in [true, false] {
        let ctx = RouteContext {
            allow_training,
            health: &health,
            now_ms: 1_000_000,
            embeddings: false,
            sticky: None,
        };
        let mut r = || 0.5;
        match routing::plan(cat, &req, &ctx, &mut r) {
            Ok(plan) => {
                for c in &plan {
                    let family = providers::family(c.provider.api);
                    let asked = family.output_tokens(&req, c.model, c.endpoint);
                    let _ = ledger::worst_case(&req, c.model, c.endpoint, asked);
                }
            }
            Err(e) => assert_status(&e),
        }
    }
    for m in MODELS {
        with_target(m, |t| match providers::build_request(t, &req) {
            Ok(up) => assert!(!up.url.is_empty()),
            Err(e) => assert_status(&e),
        });
    }
    let _ = providers::estimate_prompt_tokens(&req);
}

fn reply_target(model: &str, body: &[u8]) {
    with_target(model, |t| {
        if let Err(e) =
            providers::parse_response(t.provider.api, &t.provider.slug, &meta(model), body)
        {
            assert_status(&e);
        }
        let _ = providers::upstream_error(&t.provider.slug, 500, body, Some("x"));
    });
}

fn stream_target(model: &str, body: &[u8], splits: &[prop::sample::Index]) {
    with_target(model, |t| {
        let Some(tr) = Translator::for_target(t, &meta(model)) else {
            return;
        };
        let mut s = ChatStream::new(tr, meta(model), t.endpoint.pricing.clone(), 10);
        let mut cuts: Vec<usize> = splits.iter().map(|i| i.index(body.len() + 1)).collect();
        cuts.sort_unstable();
        let mut at = 0;
        let mut out = Vec::new();
        for c in cuts {
            out.extend(s.feed(&body[at..c]));
            at = c;
        }
        out.extend(s.feed(&body[at..]));
        out.extend(s.finish());
        // Whatever came in, what goes out is SSE text.
        assert!(std::str::from_utf8(&out).is_ok());
        let _ = s.final_usage();
    });
}

fn sse_target(body: &[u8], split: usize) {
    let mut p = SseParser::new();
    let (a, b) = body.split_at(split.min(body.len()));
    let _ = p.feed(a);
    let _ = p.feed(b);
    let _ = p.finish();
}

fn key_target(s: &str) {
    let _ = keys::verify(s, b"secret");
    let _ = keys::bearer(Some(s));
    let _ = keys::label(s);
    let _ = keys::is_account_id(s);
    let _ = ledger::picos_from_usd_text(s);
    let _ = parse_picos(s);
}

fn catalog_target(body: &[u8]) {
    if let Ok(c) = Catalog::from_json(body) {
        let none = std::collections::HashMap::new();
        let _ = modelmux::catalog::listing::models(&c, &ModelFilter::default(), &none, 0);
        let _ = modelmux::catalog::listing::providers(&c);
    }
}

#[test]
fn router_never_panics() {
    let method = prop_oneof![
        Just("GET".to_string()),
        Just("POST".to_string()),
        "[A-Za-z]{0,8}"
    ];
    let path = prop_oneof![
        "\\PC{0,40}",
        "/api/v1/[a-z/%.:0-9é]{0,40}",
        "/api/v1/models/\\PC{0,20}/endpoints",
        "/api/v1/keys/\\PC{0,20}",
        "/admin/v1/accounts/[0-9a-f/]{0,40}",
    ];
    fuzz("router", (method, path, "\\PC{0,40}"), |(m, p, q)| {
        route_target(&m, &p, &q)
    });
}

#[test]
fn chat_requests_from_arbitrary_bytes() {
    fuzz(
        "chat request bytes",
        prop::collection::vec(any::<u8>(), 0..256),
        |b| chat_target(&b),
    );
}

#[test]
fn chat_requests_from_generated_json() {
    fuzz("chat request json", chat_body(), |b| {
        chat_target(b.to_string().as_bytes())
    });
}

#[test]
fn replies_from_generated_json() {
    fuzz(
        "provider reply json",
        (proptest::sample::select(MODELS), json_value()),
        |(m, b)| reply_target(m, b.to_string().as_bytes()),
    );
}

#[test]
fn replies_from_mutated_fixtures() {
    let s = prop_oneof![
        (
            Just("openai/gpt-5"),
            mutated(include_bytes!("fixtures/openai/tool_call/reply.json"))
        ),
        (
            Just("anthropic/claude-sonnet-4.5"),
            mutated(include_bytes!("fixtures/anthropic/tool_use/reply.json"))
        ),
        (
            Just("google/gemini-2.5-pro"),
            mutated(include_bytes!("fixtures/gemini/function_call/reply.json"))
        ),
        (
            Just("google/gemini-2.5-pro"),
            mutated(include_bytes!("fixtures/gemini/safety/reply.json"))
        ),
    ];
    fuzz("provider reply fixtures", s, |(m, b)| reply_target(m, &b));
}

fn splits() -> impl Strategy<Value = Vec<prop::sample::Index>> {
    prop::collection::vec(any::<prop::sample::Index>(), 0..6)
}

#[test]
fn streams_from_arbitrary_bytes() {
    let s = (
        proptest::sample::select(MODELS),
        prop::collection::vec(any::<u8>(), 0..512),
        splits(),
    );
    fuzz("stream bytes", s, |(m, b, cuts)| {
        stream_target(m, &b, &cuts)
    });
}

#[test]
fn streams_from_mutated_fixtures() {
    let s = (
        prop_oneof![
            (
                Just("openai/gpt-5"),
                mutated(include_bytes!(
                    "fixtures/openai/tool_call_stream/stream.sse"
                ))
            ),
            (
                Just("anthropic/claude-sonnet-4.5"),
                mutated(include_bytes!(
                    "fixtures/anthropic/tool_use_stream/stream.sse"
                ))
            ),
            (
                Just("anthropic/claude-sonnet-4.5"),
                mutated(include_bytes!(
                    "fixtures/anthropic/thinking_stream/stream.sse"
                ))
            ),
            (
                Just("anthropic/claude-sonnet-4.5"),
                mutated(include_bytes!(
                    "fixtures/anthropic/overloaded_stream/stream.sse"
                ))
            ),
            (
                Just("google/gemini-2.5-pro"),
                mutated(include_bytes!("fixtures/gemini/text_stream/stream.sse"))
            ),
        ],
        splits(),
    );
    fuzz("stream fixtures", s, |((m, b), cuts)| {
        stream_target(m, &b, &cuts)
    });
}

#[test]
fn streams_of_generated_events() {
    let s = (
        proptest::sample::select(MODELS),
        prop::collection::vec(json_value(), 0..8),
        splits(),
    );
    fuzz("stream events", s, |(m, events, cuts)| {
        let body: String = events.iter().map(|e| format!("data: {e}\n\n")).collect();
        stream_target(m, body.as_bytes(), &cuts);
    });
}

#[test]
fn sse_parser_never_panics() {
    let s = (prop::collection::vec(any::<u8>(), 0..512), any::<usize>());
    fuzz("sse parser", s, |(b, split)| sse_target(&b, split));
}

#[test]
fn keys_and_amounts_never_panic() {
    let s = prop_oneof!["\\PC{0,80}", "sk-mm-v1-[0-9a-f]{60,68}", "[0-9.eE+-]{0,24}"];
    fuzz("keys and amounts", s, |k| key_target(&k));
}

#[test]
fn catalogues_never_panic() {
    let s = prop_oneof![
        prop::collection::vec(any::<u8>(), 0..256),
        json_value().prop_map(|v| v.to_string().into_bytes()),
        mutated(SHIPPED),
    ];
    fuzz("catalogue", s, |b| catalog_target(&b));
}

/// Inputs that once broke something, kept so they never do again.
#[test]
fn regressions() {
    for (m, p) in [
        ("GET", "/api/v1/models/endpoints"),
        ("GET", "/api/v1/models//endpoints"),
        ("GET", "/api/v1/models/é/endpoints"),
        ("GET", "/api/v1/models/endpoints/endpoints"),
    ] {
        route_target(m, p, "%");
    }
    for body in [
        &br#"{"model":"openai/gpt-5","messages":[{"role":"user","content":[{"type":"image_url"}]}]}"#[..],
        br#"{"model":"openai/gpt-5","messages":[{"role":"user","content":"x"}],"max_tokens":1000000000000000}"#,
        br#"{"model":"openai/gpt-5","messages":[{"role":"user","content":"x"}],"n":100000}"#,
    ] {
        chat_target(body);
    }
    key_target("sk-mm-v1-é");
    sse_target(b"data: x\r", 7);
}
