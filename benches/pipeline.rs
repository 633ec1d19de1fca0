//! `make bench` (native): the gateway's pure work per request, by provider family, and
//! SSE translation throughput. Everything here runs in the worker too; only the I/O
//! around it differs. Printed figures, no assertions.

// A benchmark, not request handling: a fixture that does not parse should stop it loudly.
#![allow(clippy::expect_used, clippy::arithmetic_side_effects)]

use std::collections::HashMap;
use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use modelmux::api::{ChatRequest, GenerationMeta};
use modelmux::catalog::Catalog;
use modelmux::providers::stream::{ChatStream, Translator};
use modelmux::providers::{self, Target};
use modelmux::routing::{self, RouteContext};

const CATALOG: &[u8] = include_bytes!("../catalog/catalog.json");

/// A model of each family, its recorded non-streamed reply and stream.
const FAMILIES: [(&str, &str, &[u8], &[u8]); 3] = [
    (
        "openai",
        "openai/gpt-4.1-mini",
        include_bytes!("../tests/fixtures/openai/tool_call/reply.json"),
        include_bytes!("../tests/fixtures/openai/tool_call_stream/stream.sse"),
    ),
    (
        "anthropic",
        "anthropic/claude-sonnet-4.5",
        include_bytes!("../tests/fixtures/anthropic/tool_use/reply.json"),
        include_bytes!("../tests/fixtures/anthropic/thinking_stream/stream.sse"),
    ),
    (
        "gemini",
        "google/gemini-2.5-flash",
        include_bytes!("../tests/fixtures/gemini/function_call/reply.json"),
        include_bytes!("../tests/fixtures/gemini/text_stream/stream.sse"),
    ),
];

fn body(model: &str) -> Vec<u8> {
    serde_json::json!({
        "model": model,
        "max_tokens": 512,
        "temperature": 0.2,
        "messages": [
            {"role": "system", "content": "You are a helpful assistant."},
            {"role": "user", "content": "What is the weather in Paris? Answer briefly."}
        ],
        "tools": [{"type": "function", "function": {"name": "get_weather", "description": "Weather of a city",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}]
    })
    .to_string()
    .into_bytes()
}

fn meta(model: &str) -> GenerationMeta {
    GenerationMeta {
        id: "gen-1-bench".into(),
        created: 1_700_000_000,
        model: model.into(),
        provider: "Bench".into(),
    }
}

/// Parse and validate the request, plan its route, build the upstream request, parse
/// the upstream's reply and serialise the client's: all a non-streamed call does in Rust.
fn pure_path(c: &mut Criterion) {
    let cat = Catalog::from_json(CATALOG).expect("the shipped catalogue parses");
    let health = HashMap::new();
    let ctx = RouteContext {
        allow_training: false,
        health: &health,
        now_ms: 1_700_000_000_000,
        embeddings: false,
        sticky: None,
    };
    let mut group = c.benchmark_group("pure path");
    for (family, model, reply, _) in FAMILIES {
        let body = body(model);
        let meta = meta(model);
        group.bench_function(family, |b| {
            b.iter(|| {
                let req = ChatRequest::parse(black_box(&body)).expect("valid request");
                let plan = routing::plan(&cat, &req, &ctx, &mut || 0.5).expect("a route");
                let choice = plan.first().expect("an endpoint");
                let target = Target {
                    provider: choice.provider,
                    model: choice.model,
                    endpoint: choice.endpoint,
                    base_url: "http://upstream/v1".into(),
                    api_key: Some("sk-bench".into()),
                };
                let up = providers::build_request(&target, &req).expect("upstream request");
                let parsed = providers::parse_response(
                    target.provider.api,
                    &target.provider.slug,
                    &meta,
                    black_box(reply),
                )
                .expect("reply");
                black_box((up, serde_json::to_vec(&parsed).expect("serialised")))
            })
        });
    }
    group.finish();
}

/// Upstream SSE in, the client's chat-completion chunks out, by family, in MB/s of
/// upstream bytes: the recorded streams (short: the per-stream work weighs), fed in
/// 1 KB pieces as they arrive from the network.
fn sse_translation(c: &mut Criterion) {
    let streams: Vec<(&str, &str, Vec<u8>)> = FAMILIES
        .iter()
        .map(|(family, model, _, stream)| (*family, *model, stream.to_vec()))
        .collect();
    translate_streams(c, "sse translation", &streams, 1024);
}

/// Translates each of `streams` (family, model, upstream bytes) with a translator made
/// for each pass, fed in `piece`-byte pieces.
fn translate_streams(
    c: &mut Criterion,
    group: &str,
    streams: &[(&str, &str, Vec<u8>)],
    piece: usize,
) {
    let cat = Catalog::from_json(CATALOG).expect("the shipped catalogue parses");
    let mut group = c.benchmark_group(group);
    for (family, model, stream) in streams {
        let m = cat.model(model).expect("model");
        let endpoint = m.endpoints.first().expect("endpoint");
        let target = Target {
            provider: cat.provider(&endpoint.provider).expect("provider"),
            model: m,
            endpoint,
            base_url: "http://upstream/v1".into(),
            api_key: None,
        };
        let meta = meta(model);
        group.throughput(Throughput::Bytes(stream.len() as u64));
        group.bench_function(*family, |b| {
            b.iter(|| {
                let translator = Translator::for_target(&target, &meta).expect("translator");
                let mut s = ChatStream::new(translator, meta.clone(), endpoint.pricing.clone(), 10);
                let mut out = 0usize;
                for piece in stream.chunks(piece) {
                    out += s.feed(black_box(piece)).len();
                }
                out += s.finish().len();
                black_box(out)
            })
        });
    }
    group.finish();
}

/// A long stream of `n` text deltas in each family's wire format, as a model writing a
/// long answer sends it: what SSE translation sustains once the per-stream work (the
/// translator, the final usage chunk, `[DONE]`) is spread over many events.
fn long_stream(family: &str, n: usize) -> Vec<u8> {
    let mut out = String::new();
    match family {
        "openai" => {
            let chunk = |delta: &str, finish: &str| {
                format!(
                "data: {{\"id\":\"chatcmpl-BbN2aXq\",\"object\":\"chat.completion.chunk\",\"created\":1748449440,\"model\":\"gpt-4o-mini-2024-07-18\",\"service_tier\":\"default\",\"system_fingerprint\":\"fp_34a54ae93c\",\"choices\":[{{\"index\":0,\"delta\":{delta},\"logprobs\":null,\"finish_reason\":{finish}}}]}}\n\n")
            };
            out.push_str(&chunk(
                r#"{"role":"assistant","content":"","refusal":null}"#,
                "null",
            ));
            for i in 0..n {
                out.push_str(&chunk(&format!(r#"{{"content":" word{i}"}}"#), "null"));
            }
            out.push_str(&chunk("{}", r#""stop""#));
            out.push_str("data: {\"id\":\"chatcmpl-BbN2aXq\",\"object\":\"chat.completion.chunk\",\"created\":1748449440,\"model\":\"gpt-4o-mini-2024-07-18\",\"choices\":[],\"usage\":{\"prompt_tokens\":12,\"completion_tokens\":400,\"total_tokens\":412}}\n\ndata: [DONE]\n\n");
        }
        "anthropic" => {
            out.push_str("event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_01\",\"type\":\"message\",\"role\":\"assistant\",\"model\":\"claude-sonnet-4-5\",\"content\":[],\"stop_reason\":null,\"stop_sequence\":null,\"usage\":{\"input_tokens\":12,\"output_tokens\":1}}}\n\n");
            out.push_str("event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n");
            for i in 0..n {
                out.push_str(&format!("event: content_block_delta\ndata: {{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{{\"type\":\"text_delta\",\"text\":\" word{i}\"}}}}\n\n"));
            }
            out.push_str("event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n");
            out.push_str("event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\",\"stop_sequence\":null},\"usage\":{\"output_tokens\":400}}\n\n");
            out.push_str("event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n");
        }
        _ => {
            for i in 0..n {
                out.push_str(&format!("data: {{\"candidates\": [{{\"content\": {{\"parts\": [{{\"text\": \" word{i}\"}}],\"role\": \"model\"}},\"index\": 0}}],\"usageMetadata\": {{\"promptTokenCount\": 8,\"candidatesTokenCount\": {i},\"totalTokenCount\": {}}},\"modelVersion\": \"gemini-2.5-flash\",\"responseId\": \"Zz3RaPKaBvuN\"}}\n\n", i + 8));
            }
            out.push_str("data: {\"candidates\": [{\"content\": {\"parts\": [{\"text\": \"\"}],\"role\": \"model\"},\"finishReason\": \"STOP\",\"index\": 0}],\"usageMetadata\": {\"promptTokenCount\": 8,\"candidatesTokenCount\": 400,\"totalTokenCount\": 408},\"modelVersion\": \"gemini-2.5-flash\",\"responseId\": \"Zz3RaPKaBvuN\"}\n\n");
        }
    }
    out.into_bytes()
}

/// SSE translation of a long stream (400 text deltas), in MB/s of upstream bytes.
fn sse_sustained(c: &mut Criterion) {
    let streams: Vec<(&str, &str, Vec<u8>)> = FAMILIES
        .iter()
        .map(|(family, model, _, _)| (*family, *model, long_stream(family, 400)))
        .collect();
    translate_streams(c, "sse sustained", &streams, 4096);
}

criterion_group!(benches, pure_path, sse_translation, sse_sustained);
criterion_main!(benches);
