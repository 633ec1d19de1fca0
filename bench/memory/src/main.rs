//! `make bench` (native, its own package: a counting allocator needs the `unsafe` the
//! gateway forbids): the most memory the worker's own heap (wasm linear memory in
//! the isolate, which grows and never shrinks) takes for the largest request and reply
//! the gateway allows: media of `MEDIA_MAX_BYTES` inlined for Gemini, and a reply of
//! `MAX_REPLY_BYTES` gathered from a stream and written for the client. A counting
//! allocator tracks the peak of what is allocated above what was before. What lives in
//! JavaScript (the fetched media, the assembled upstream body, the reply's chunks) is
//! outside it, as in the worker: here it is allocated before the count starts.

use std::alloc::{GlobalAlloc, Layout, System};
use std::collections::HashMap;
use std::hint::black_box;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

use base64::Engine;
use modelmux::api::surface::Surface;
use modelmux::api::{ChatRequest, GenerationMeta};
use modelmux::catalog::Catalog;
use modelmux::providers::media::{self, Piece};
use modelmux::providers::stream::{ChatStream, Translator};
use modelmux::providers::{self, Target};

struct Counting;

static NOW: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every call is System's, with the same arguments; only counts are added.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(l) };
        if !p.is_null() {
            let now = NOW.fetch_add(l.size(), Relaxed) + l.size();
            PEAK.fetch_max(now, Relaxed);
        }
        p
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        NOW.fetch_sub(l.size(), Relaxed);
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, size: usize) -> *mut u8 {
        // A move to a new block holds both for a moment, as dlmalloc's does.
        let q = unsafe { System.realloc(p, l, size) };
        if !q.is_null() {
            PEAK.fetch_max(NOW.load(Relaxed) + size, Relaxed);
            NOW.fetch_add(size, Relaxed);
            NOW.fetch_sub(l.size(), Relaxed);
        }
        q
    }
}

#[global_allocator]
static COUNTING: Counting = Counting;

/// The most `f` held at once above what was held before it, in bytes.
fn peak_of<T>(f: impl FnOnce() -> T) -> usize {
    let base = NOW.load(Relaxed);
    PEAK.store(base, Relaxed);
    black_box(f());
    PEAK.load(Relaxed).saturating_sub(base)
}

const MIB: f64 = 1024.0 * 1024.0;
const CATALOG: &[u8] = include_bytes!("../../../catalog/catalog.json");
/// wrangler.toml's `MEDIA_MAX_BYTES` and `MAX_REPLY_BYTES`.
const MEDIA_MAX_BYTES: usize = 20 * 1024 * 1024;
const MAX_REPLY_BYTES: usize = 32 * 1024 * 1024;
const MODEL: &str = "google/gemini-2.5-flash";

fn target(cat: &Catalog) -> Target<'_> {
    let m = cat.model(MODEL).expect("model");
    let endpoint = m.endpoints.first().expect("endpoint");
    Target {
        provider: cat.provider(&endpoint.provider).expect("provider"),
        model: m,
        endpoint,
        base_url: "http://upstream/v1beta".into(),
        api_key: Some("bench".into()),
    }
}

fn media_request() -> ChatRequest {
    let body = serde_json::json!({"model": MODEL, "messages": [{"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": "https://media.example.com/big.png"}},
        {"type": "text", "text": "describe"}]}]});
    ChatRequest::parse(body.to_string().as_bytes()).expect("request")
}

/// The media's way out as the edge takes it: the request with markers, the body built,
/// the media's base64 spliced in chunk by chunk into a body that lives in JavaScript
/// (here: counted, not kept). `media` is the JavaScript array fetch read.
fn media_now(target: &Target, req: &ChatRequest, media: &[u8]) -> usize {
    let marker = media::marker(7, 0);
    let fetched = HashMap::from([(
        "https://media.example.com/big.png".to_string(),
        ("image/png".to_string(), marker.clone()),
    )]);
    let chat = media::inline(req, &fetched);
    let up = providers::build_streamed(target, &chat).expect("built");
    let mut sent = 0;
    for p in media::pieces(&up.body, &[marker]) {
        match p {
            Piece::Built(r) => sent += r.len(),
            Piece::Media(_) => media::write_base64(
                media.len(),
                |at, buf| buf.copy_from_slice(&media[at..at + buf.len()]),
                |chunk| sent += black_box(chunk).len(),
            ),
        }
    }
    sent
}

/// The way out before (kept for comparison): bytes copied into the worker, base64, a
/// data URL in a clone of the request, a `Value` of the body, the serialised body.
fn media_before(target: &Target, req: &ChatRequest, media: &[u8]) -> usize {
    let bytes = media.to_vec();
    let data = base64::engine::general_purpose::STANDARD.encode(&bytes);
    drop(bytes);
    let fetched = HashMap::from([(
        "https://media.example.com/big.png".to_string(),
        ("image/png".to_string(), data),
    )]);
    let chat = media::inline(req, &fetched);
    drop(fetched);
    providers::build_streamed(target, &chat)
        .expect("built")
        .body
        .len()
}

/// A Gemini stream of `text_bytes` of text in 64 KiB deltas.
fn long_reply(text_bytes: usize) -> Vec<u8> {
    let delta = "x".repeat(64 * 1024);
    let mut out = Vec::with_capacity(text_bytes + text_bytes / 8);
    let event = |text: &str, end: &str| {
        format!("data: {{\"candidates\":[{{\"content\":{{\"parts\":[{{\"text\":\"{text}\"}}],\"role\":\"model\"}},{end}\"index\":0}}],\"modelVersion\":\"gemini-2.5-flash\"}}\n\n")
    };
    while out.len() + 2 * delta.len() < text_bytes {
        out.extend_from_slice(event(&delta, "").as_bytes());
    }
    out.extend_from_slice(event("", "\"finishReason\":\"STOP\",").as_bytes());
    out
}

/// A whole (not streamed) OpenAI-compatible reply of `text_bytes` of text (a host that
/// answers a stream request with one reply).
fn whole_reply(text_bytes: usize) -> Vec<u8> {
    let text = "x".repeat(text_bytes - 400);
    format!("{{\"id\":\"c1\",\"object\":\"chat.completion\",\"created\":1,\"model\":\"m\",\"choices\":[{{\"index\":0,\"message\":{{\"role\":\"assistant\",\"content\":\"{text}\"}},\"finish_reason\":\"stop\"}}]}}").into_bytes()
}

/// The client's body of `completion`, written into a JavaScript array of its size a
/// piece at a time, as the edge does (`http::json_value`).
fn written(completion: modelmux::api::ChatCompletion) -> usize {
    let incoming = Surface::Chat
        .parse(media_request_body().as_bytes())
        .expect("incoming");
    let reply = incoming.reply(completion);
    reply.to_vec().expect("written").len()
}

/// A reply read whole: copied from JavaScript into the worker, parsed, written.
fn whole_now(meta: &GenerationMeta, reply: &[u8]) -> usize {
    let body = reply.to_vec();
    let completion =
        providers::parse_response(modelmux::catalog::ApiFamily::Openai, "openai", meta, &body)
            .expect("parsed");
    // The edge drops the bytes once parsed (only a Messages reply from Anthropic reads them).
    drop(body);
    written(completion)
}

/// A non-streamed call's reply as the edge makes it: the upstream stream (64 KiB
/// pieces from JavaScript) gathered into one completion, then the client's body.
fn reply_now(target: &Target, meta: &GenerationMeta, stream: &[u8]) -> usize {
    let translator = Translator::for_target(target, meta).expect("translator");
    let mut s = ChatStream::new(
        translator,
        meta.clone(),
        target.endpoint.pricing.clone(),
        10,
    )
    .gathering();
    for piece in stream.chunks(64 * 1024) {
        // Each piece arrives from JavaScript as a Vec of its own.
        let arrived: Vec<u8> = piece.into();
        s.feed(black_box(&arrived));
    }
    s.finish();
    let completion = s.gathered().expect("gathered");
    drop(s);
    written(completion)
}

fn media_request_body() -> String {
    serde_json::json!({"model": MODEL, "messages": [{"role": "user", "content": "hi"}]}).to_string()
}

fn main() {
    let cat = Catalog::from_json(CATALOG).expect("the shipped catalogue parses");
    let target = target(&cat);
    let meta = GenerationMeta {
        id: "gen-1-bench".into(),
        created: 1_700_000_000,
        model: MODEL.into(),
        provider: "Bench".into(),
    };
    let req = media_request();
    let media: Vec<u8> = (0..MEDIA_MAX_BYTES).map(|i| (i * 131) as u8).collect();
    let now = peak_of(|| media_now(&target, &req, &media));
    let before = peak_of(|| media_before(&target, &req, &media));
    println!(
        "memory: media of {:.0} MiB inlined for Gemini: peak {:.2} MiB of wasm memory (before: {:.1} MiB)",
        MEDIA_MAX_BYTES as f64 / MIB,
        now as f64 / MIB,
        before as f64 / MIB
    );
    let stream = long_reply(MAX_REPLY_BYTES);
    let gathered = peak_of(|| reply_now(&target, &meta, &stream));
    drop(stream);
    let whole = whole_reply(MAX_REPLY_BYTES);
    let read = peak_of(|| whole_now(&meta, &whole));
    println!(
        "memory: a reply of {:.0} MiB of text: peak {:.1} MiB of wasm memory gathered from a stream, {:.1} MiB read whole",
        MAX_REPLY_BYTES as f64 / MIB,
        gathered as f64 / MIB,
        read as f64 / MIB
    );
}
