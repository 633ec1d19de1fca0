use base64::Engine;
use serde_json::{json, Value};

use super::*;

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// The first bytes of a PNG of `w` by `h` (all the size reader needs).
fn png(w: u32, h: u32) -> String {
    let mut b = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR".to_vec();
    b.extend(w.to_be_bytes());
    b.extend(h.to_be_bytes());
    b.extend([8, 6, 0, 0, 0]);
    b64(&b)
}

fn messages(body: Value) -> ChatRequest {
    CountSurface::Messages
        .parse(body.to_string().as_bytes())
        .unwrap()
        .chat
}

fn user(content: Value) -> ChatRequest {
    messages(json!({"model": "a/b", "messages": [{"role": "user", "content": content}]}))
}

#[test]
fn a_known_prompt_is_estimated_exactly_with_its_margin() {
    let req = messages(json!({"model": "a/b", "system": "You are terse.",
        "messages": [{"role": "user", "content": "hello world"}]}));
    // 14 bytes (4 tokens) and 11 (3 tokens), 4 a message: 15, and 10% (rounded up): 17.
    assert_eq!(counted(&req, PromptFormula::OpenAi), 15);
    assert_eq!(estimate(&req, PromptFormula::OpenAi), 17);
    assert_eq!(estimate(&req, PromptFormula::Anthropic), 17);
    // Never nothing.
    assert_eq!(estimate(&ChatRequest::default(), PromptFormula::OpenAi), 1);
}

#[test]
fn every_block_counts() {
    let f = PromptFormula::Anthropic;
    let base = counted(&user(json!([{"type": "text", "text": "hi"}])), f);
    assert_eq!(base, MESSAGE_TOKENS + 1);
    let with = |blocks: Value| counted(&user(blocks), f);
    // An image by its size (800 x 600 / 750), one by URL at the most Anthropic bills.
    let img = json!({"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": png(800, 600)}});
    assert_eq!(
        with(json!([{"type": "text", "text": "hi"}, img])),
        base + 640
    );
    let url = json!({"type": "image", "source": {"type": "url", "url": "https://x.test/a.png"}});
    assert_eq!(
        with(json!([{"type": "text", "text": "hi"}, url])),
        base + ANTHROPIC_IMAGE_MAX
    );
    // A PDF with two pages in the clear; a plain text document as text.
    let pdf = b64(b"%PDF-1.4\n1 0 obj <</Type /Pages /Count 2>>\n2 0 obj <</Type /Page>>\n3 0 obj <</Type/Page>>\n");
    let doc = json!({"type": "document", "source": {"type": "base64", "media_type": "application/pdf", "data": pdf}});
    assert_eq!(
        with(json!([{"type": "text", "text": "hi"}, doc])),
        base + 2 * PDF_PAGE_TOKENS
    );
    let txt = json!({"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": "abcdefgh"}});
    assert_eq!(with(json!([{"type": "text", "text": "hi"}, txt])), base + 2);
    // Tool definitions (their JSON, and Anthropic's tool-use system prompt), a call's
    // input, its result and thinking.
    let tool = json!({"name": "get_weather", "description": "Weather", "input_schema": {"type": "object"}});
    let tools = messages(json!({"model": "a/b", "tools": [tool],
        "messages": [{"role": "user", "content": "hi"}]}));
    let tool_json = serde_json::to_string(tools.tools.as_ref().unwrap()).unwrap();
    assert_eq!(
        counted(&tools, f),
        base + estimate_tokens(&tool_json) + ANTHROPIC_TOOLS_TOKENS
    );
    assert_eq!(
        counted(&tools, PromptFormula::Gemini),
        base + estimate_tokens(&tool_json)
    );
    let turns = messages(json!({"model": "a/b", "messages": [
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": [
            {"type": "thinking", "thinking": "Let me look it up.", "signature": "sig"},
            {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Paris"}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": "18 degrees and sunny"}]}]}));
    let expected = base
        // The assistant turn: thinking (18 bytes), the call (name 11, input 15, id 7).
        + MESSAGE_TOKENS + 5 + 3 + 4 + 2
        // The tool result: a message, its text (20 bytes) and the call's ID.
        + MESSAGE_TOKENS + 5 + 2;
    assert_eq!(counted(&turns, f), expected);
}

#[test]
fn images_by_each_providers_formula() {
    use PromptFormula::*;
    let cases = [
        (Anthropic, Some((1000, 1000)), 1334),
        (Anthropic, Some((4000, 3000)), ANTHROPIC_IMAGE_MAX),
        (Anthropic, None, ANTHROPIC_IMAGE_MAX),
        (Gemini, Some((300, 300)), 258),
        (Gemini, Some((1536, 1536)), 4 * 258),
        (Gemini, None, IMAGE_TOKENS),
        // 1024 x 1024: its short side to 768, four tiles.
        (OpenAi, Some((1024, 1024)), 85 + 4 * 170),
        // 2048 x 4096: into 1024 x 2048, then 768 x 1536, six tiles.
        (OpenAi, Some((2048, 4096)), 85 + 6 * 170),
        (OpenAi, Some((100, 100)), 85 + 170),
        (OpenAi, None, IMAGE_TOKENS),
    ];
    for (formula, size, want) in cases {
        assert_eq!(formula.image_tokens(size), want, "{formula:?} {size:?}");
    }
}

#[test]
fn responses_bodies_and_replies() {
    let c = CountSurface::Responses
        .parse(br#"{"model": "a/b", "input": "hello world", "instructions": "Be terse."}"#)
        .unwrap();
    assert!(c.native.is_none());
    assert_eq!(c.chat.messages.len(), 2);
    let reply = serde_json::to_value(CountSurface::Responses.reply(42)).unwrap();
    assert_eq!(
        reply,
        json!({"object": "response.input_tokens", "input_tokens": 42})
    );
    let reply = serde_json::to_value(CountSurface::Messages.reply(42)).unwrap();
    assert_eq!(reply, json!({"input_tokens": 42}));
    assert_eq!(CountSource::Provider.as_str(), "provider");
    assert_eq!(CountSource::Estimate.as_str(), "estimate");
}

#[test]
fn bad_bodies_name_the_field() {
    for (surface, body, want) in [
        (
            CountSurface::Messages,
            json!({"model": "a/b"}),
            "messages: is required",
        ),
        (
            CountSurface::Messages,
            json!({"model": "a/b", "messages": [{"role": "user", "content": [{"type": "hologram"}]}]}),
            "messages[0].content[0].type",
        ),
        (
            CountSurface::Responses,
            json!({"input": "x"}),
            "model: is required",
        ),
        (
            CountSurface::Responses,
            json!({"model": "a/b", "input": 5}),
            "input",
        ),
    ] {
        let e = surface.parse(body.to_string().as_bytes()).unwrap_err();
        assert_eq!(e.status(), 400, "{body}");
        assert!(e.to_string().contains(want), "{body}: {e}");
    }
}

#[test]
fn pdf_pages_are_the_page_objects() {
    assert_eq!(
        pdf_pages(b"/Type /Pages /Type /Page /Type/Page /Type\n/Page"),
        3
    );
    assert_eq!(pdf_pages(b"no pages here"), 0);
}
