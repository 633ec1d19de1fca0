use super::*;
use crate::providers::stream::Translator;
use crate::providers::testutil::*;

const MODEL: &str = "google/gemini-2.5-flash";

#[test]
fn request_shape() {
    let (up, body) = built(
        MODEL,
        json!({
            "model": MODEL,
            "messages": [
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": [
                    {"type": "text", "text": "Weather where this photo was taken?"},
                    {"type": "image_url", "image_url": {"url": "data:image/jpeg;base64,/9j/4AAQ"}}
                ]},
                {"role": "assistant", "tool_calls": [{"id": "call_a", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}}]},
                {"role": "tool", "tool_call_id": "call_a", "content": "{\"temp\": 18}"},
                {"role": "tool", "tool_call_id": "call_a", "content": "plain text"}
            ],
            "tools": [{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}],
            "tool_choice": {"type": "function", "function": {"name": "get_weather"}},
            "temperature": 0.3, "top_p": 0.9, "top_k": 40, "max_tokens": 500, "stop": ["END"], "seed": 5,
            "presence_penalty": 0.1,
            "response_format": {"type": "json_schema", "json_schema": {"name": "w", "schema": {"type": "object"}}}
        }),
    );
    assert_eq!(
        up.url,
        "http://up/v1/models/gemini-2.5-flash:generateContent"
    );
    assert_eq!(up.header("x-goog-api-key"), Some("sk-test"));
    assert_eq!(
        body["systemInstruction"],
        json!({"parts": [{"text": "Be brief."}]})
    );
    let c = body["contents"].as_array().unwrap();
    assert_eq!(c.len(), 3);
    assert_eq!(
        c[0]["parts"][1],
        json!({"inlineData": {"mimeType": "image/jpeg", "data": "/9j/4AAQ"}})
    );
    assert_eq!(
        c[1],
        json!({"role": "model", "parts": [{"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}}]})
    );
    assert_eq!(
        c[2]["parts"][0]["functionResponse"],
        json!({"name": "get_weather", "response": {"temp": 18}})
    );
    assert_eq!(
        c[2]["parts"][1]["functionResponse"]["response"],
        json!({"content": "plain text"})
    );
    let g = &body["generationConfig"];
    assert_eq!(
        (
            g["temperature"].as_f64(),
            g["topP"].as_f64(),
            g["topK"].as_u64()
        ),
        (Some(0.3), Some(0.9), Some(40))
    );
    assert_eq!(
        (g["maxOutputTokens"].as_u64(), g["seed"].as_u64()),
        (Some(500), Some(5))
    );
    assert_eq!(g["stopSequences"], json!(["END"]));
    assert_eq!(g["presencePenalty"], 0.1);
    assert_eq!(g["responseMimeType"], "application/json");
    assert_eq!(g["responseJsonSchema"], json!({"type": "object"}));
    assert_eq!(
        body["tools"][0]["functionDeclarations"][0]["name"],
        "get_weather"
    );
    assert_eq!(
        body["toolConfig"]["functionCallingConfig"],
        json!({"mode": "ANY", "allowedFunctionNames": ["get_weather"]})
    );
}

#[test]
fn stream_url_and_thinking() {
    let (up, body) = built(
        MODEL,
        json!({"model": MODEL, "stream": true, "max_tokens": 4000,
        "reasoning": {"effort": "low"}, "messages": [{"role": "user", "content": "hi"}]}),
    );
    assert_eq!(
        up.url,
        "http://up/v1/models/gemini-2.5-flash:streamGenerateContent?alt=sse"
    );
    assert_eq!(
        body["generationConfig"]["thinkingConfig"],
        json!({"thinkingBudget": 1024, "includeThoughts": true})
    );
}

#[test]
fn orphan_tool_result_is_a_400() {
    // Validation refuses it first; the translator must still not pass it on.
    let req: ChatRequest = serde_json::from_value(json!({"model": MODEL, "messages": [
        {"role": "user", "content": "x"}, {"role": "tool", "tool_call_id": "nope", "content": "y"}]})).unwrap();
    let e = with_target(MODEL, |t| build_request(t, &req, false)).unwrap_err();
    assert_eq!(e.status(), 400);
}

#[test]
fn parses_function_call_reply() {
    let body = include_bytes!("../../../tests/fixtures/gemini/function_call/reply.json");
    let c = parse_response("google-ai-studio", &meta(MODEL), body).unwrap();
    let m = &c.choices[0].message;
    assert_eq!(
        m.reasoning.as_deref(),
        Some("Let me think about which tool fits.")
    );
    assert!(m.content.is_none());
    let call = &m.tool_calls.as_ref().unwrap()[0];
    assert_eq!(call.id, "call_abc_0");
    assert_eq!(
        serde_json::from_str::<Value>(&call.function.arguments).unwrap(),
        json!({"city": "Paris", "unit": "celsius"})
    );
    assert_eq!(c.choices[0].finish_reason.as_deref(), Some("tool_calls"));
    assert_eq!(c.choices[0].native_finish_reason.as_deref(), Some("STOP"));
    let u = c.usage.unwrap();
    assert_eq!((u.prompt_tokens, u.completion_tokens), (72, 68));
    assert_eq!(u.completion_tokens_details.unwrap().reasoning_tokens, 50);
}

#[test]
fn thought_signatures_come_back_as_reasoning_details() {
    let body = include_bytes!("../../../tests/fixtures/gemini/function_call/reply.json");
    let c = parse_response("google-ai-studio", &meta(MODEL), body).unwrap();
    let d = c.choices[0].message.reasoning_details.clone().unwrap();
    assert_eq!(
        d,
        json!([
            {"type": "reasoning.text", "text": "Let me think about which tool fits.",
             "format": "google-gemini-v1", "index": 0},
            {"type": "reasoning.encrypted", "data": "CiQB0e2Kb0Zx5HRJ", "id": "call_abc_0",
             "format": "google-gemini-v1", "index": 1}
        ])
    );
}

#[test]
fn signatures_go_back_on_their_calls() {
    let turn = |model: &str, details: Value| {
        built(
            model,
            json!({"model": model, "messages": [
                {"role": "user", "content": "Weather in Paris and Lyon?"},
                {"role": "assistant", "content": "Checking.", "tool_calls": [
                    {"id": "call_a", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}},
                    {"id": "call_b", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Lyon\"}"}}],
                 "reasoning_details": details},
                {"role": "tool", "tool_call_id": "call_a", "content": "18C"},
                {"role": "tool", "tool_call_id": "call_b", "content": "21C"}
            ]}),
        )
        .1["contents"][1]["parts"]
            .clone()
    };
    let g3 = "google/gemini-3-pro-preview";
    // As this gateway (or OpenRouter) returned them: the signature is the first call's.
    let parts = turn(
        g3,
        json!([
            {"type": "reasoning.text", "text": "plan", "format": "google-gemini-v1", "index": 0},
            {"type": "reasoning.encrypted", "data": "SIG_A", "id": "call_a", "format": "google-gemini-v1", "index": 1},
            {"type": "reasoning.encrypted", "data": "ANTHROPIC", "format": "anthropic-claude-v1", "index": 2}
        ]),
    );
    assert_eq!(parts[0], json!({"text": "Checking."}));
    assert_eq!(parts[1]["thoughtSignature"], "SIG_A");
    assert_eq!(parts[2].get("thoughtSignature"), None);
    // A turn without signatures (another model wrote it): Gemini 3 gets the
    // documented placeholder on the first call; Gemini 2.5 needs none.
    let parts = turn(g3, json!(null));
    assert_eq!(
        parts[1]["thoughtSignature"],
        "skip_thought_signature_validator"
    );
    assert_eq!(parts[2].get("thoughtSignature"), None);
    let parts = turn(MODEL, json!(null));
    assert!(parts
        .as_array()
        .unwrap()
        .iter()
        .all(|p| p.get("thoughtSignature").is_none()));
    // A signature without a call goes on the turn's last part.
    let parts = turn(
        g3,
        json!([{"type": "reasoning.encrypted", "data": "SIG_T", "format": "google-gemini-v1", "index": 0}]),
    );
    assert_eq!(parts[0]["thoughtSignature"], "SIG_T");
    assert_eq!(
        parts[1]["thoughtSignature"],
        "skip_thought_signature_validator"
    );
}

#[test]
fn files_audio_and_video_parts() {
    let (_, body) = built(
        "google/gemini-3-pro-preview",
        json!({"model": "google/gemini-3-pro-preview", "messages": [{"role": "user", "content": [
            {"type": "file", "file": {"filename": "paper.pdf", "file_data": "data:application/pdf;base64,JVBERi0x"}},
            {"type": "input_audio", "input_audio": {"data": "UklGRg==", "format": "wav"}},
            {"type": "video_url", "video_url": {"url": "https://www.youtube.com/watch?v=9hE5-98ZeCg"}},
            {"type": "video_url", "video_url": {"url": "data:video/mp4;base64,AAAAIGZ0eXA="}},
            {"type": "file", "file": {"filename": "f.pdf", "file_data": "https://generativelanguage.googleapis.com/v1beta/files/abc-123"}},
            {"type": "text", "text": "Summarise all of it."}
        ]}]}),
    );
    let parts = &body["contents"][0]["parts"];
    assert_eq!(
        parts,
        &json!([
            {"inlineData": {"mimeType": "application/pdf", "data": "JVBERi0x"}},
            {"inlineData": {"mimeType": "audio/wav", "data": "UklGRg=="}},
            {"fileData": {"fileUri": "https://www.youtube.com/watch?v=9hE5-98ZeCg"}},
            {"inlineData": {"mimeType": "video/mp4", "data": "AAAAIGZ0eXA="}},
            {"fileData": {"mimeType": "application/pdf", "fileUri": "https://generativelanguage.googleapis.com/v1beta/files/abc-123"}},
            {"text": "Summarise all of it."}
        ])
    );
}

#[test]
fn image_output() {
    let model = "google/gemini-2.5-flash-image";
    let (_, body) = built(
        model,
        json!({"model": model, "modalities": ["image", "text"],
               "image_config": {"aspect_ratio": "16:9"},
               "messages": [{"role": "user", "content": "A banana"}]}),
    );
    assert_eq!(
        body["generationConfig"]["responseModalities"],
        json!(["IMAGE", "TEXT"])
    );
    assert_eq!(
        body["generationConfig"]["imageConfig"],
        json!({"aspectRatio": "16:9"})
    );
    let c = parse_response(
        "google-ai-studio",
        &meta(model),
        include_bytes!("../../../tests/fixtures/gemini/image/reply.json"),
    )
    .unwrap();
    let m = &c.choices[0].message;
    assert_eq!(
        m.content.as_deref(),
        Some("Here is a nano banana on a plate.")
    );
    let images = m.images.as_ref().unwrap();
    assert_eq!(images[0]["type"], "image_url");
    assert!(images[0]["image_url"]["url"]
        .as_str()
        .unwrap()
        .starts_with("data:image/png;base64,iVBOR"));
    let u = c.usage.clone().unwrap();
    assert_eq!(u.completion_tokens, 1299);
    assert_eq!(
        u.completion_tokens_details.unwrap().image_tokens,
        Some(1290)
    );
    // Priced at the image output price: 9 text tokens and 1290 image tokens.
    let cat = catalog();
    let pricing = &cat.model(model).unwrap().endpoints[0].pricing;
    let u = c.usage.clone().unwrap();
    assert_eq!(
        pricing.cost_picos(&u),
        9 * 300_000 + 9 * 2_500_000 + 1290 * 30_000_000
    );
}

#[test]
fn stream_images() {
    let events = translate_everywhere(
        &make,
        "google/gemini-2.5-flash-image",
        include_bytes!("../../../tests/fixtures/gemini/image_stream/stream.sse"),
    );
    let images = delta_items(&events, "images");
    assert_eq!(images.len(), 1);
    assert!(images[0]["image_url"]["url"]
        .as_str()
        .unwrap()
        .starts_with("data:image/png;base64,"));
    assert_eq!(content(&events), "A banana, coming up.");
    let u = &events.last().unwrap()["usage"];
    assert_eq!(u["completion_tokens_details"]["image_tokens"], 1290);
}

#[test]
fn stream_thought_signatures() {
    let events = translate_everywhere(
        &make,
        "google/gemini-3-pro-preview",
        include_bytes!("../../../tests/fixtures/gemini/thought_signature_stream/stream.sse"),
    );
    let details = delta_items(&events, "reasoning_details");
    // The thought text's pieces share one index; the signature has its own and
    // names the first call.
    let texts: Vec<_> = details
        .iter()
        .filter(|d| d["type"] == "reasoning.text")
        .collect();
    assert_eq!(texts.len(), 2);
    assert!(texts
        .iter()
        .all(|d| d["index"] == 0 && d["format"] == "google-gemini-v1"));
    let sig: Vec<_> = details
        .iter()
        .filter(|d| d["type"] == "reasoning.encrypted")
        .collect();
    assert_eq!(sig.len(), 1);
    assert_eq!(
        (
            sig[0]["data"].as_str(),
            sig[0]["id"].as_str(),
            sig[0]["index"].as_u64()
        ),
        (
            Some("EjQKMgG+Pvb7sigPart1Paris"),
            Some("call_abc_0"),
            Some(1)
        )
    );
    assert_eq!(arguments(&events, 1), r#"{"city":"Lyon"}"#);
}

#[test]
fn nulls_where_gemini_may_leave_them() {
    let body = br#"{"candidates":[{"content":{"parts":null},"finishReason":"MAX_TOKENS"}],
        "usageMetadata":{"promptTokenCount":null,"candidatesTokenCount":3,"candidatesTokensDetails":null}}"#;
    let c = parse_response("google-ai-studio", &meta(MODEL), body).unwrap();
    assert_eq!(c.choices[0].finish_reason.as_deref(), Some("length"));
    assert_eq!(c.usage.unwrap().completion_tokens, 3);
    let e = parse_response("google-ai-studio", &meta(MODEL), br#"{"candidates":null}"#);
    assert_eq!(e.unwrap_err().status(), 502);
}

#[test]
fn blocked_prompt_is_content_filter() {
    let body = include_bytes!("../../../tests/fixtures/gemini/safety/reply.json");
    let c = parse_response("google-ai-studio", &meta(MODEL), body).unwrap();
    assert_eq!(
        c.choices[0].finish_reason.as_deref(),
        Some("content_filter")
    );
    assert_eq!(c.choices[0].message.content.as_deref(), Some(""));
    assert_eq!(
        parse_response("google-ai-studio", &meta(MODEL), b"{}")
            .unwrap_err()
            .status(),
        502
    );
}

fn make() -> Translator {
    Translator::Gemini(StreamState::new("google-ai-studio", "gen-1-abc"))
}

#[test]
fn stream_text_at_every_split() {
    let events = translate_everywhere(
        &make,
        MODEL,
        include_bytes!("../../../tests/fixtures/gemini/text_stream/stream.sse"),
    );
    assert_eq!(events[0]["choices"][0]["delta"]["role"], "assistant");
    assert_eq!(
        content(&events),
        "The capital of France is Paris — «Paris» ✓.\n"
    );
    let fin = events
        .iter()
        .find(|e| e["choices"][0]["finish_reason"].is_string())
        .unwrap();
    assert_eq!(fin["choices"][0]["finish_reason"], "stop");
    assert_eq!(fin["choices"][0]["native_finish_reason"], "STOP");
    let u = &events.last().unwrap()["usage"];
    assert_eq!(
        (u["prompt_tokens"].as_u64(), u["completion_tokens"].as_u64()),
        (Some(8), Some(12))
    );
}

#[test]
fn stream_function_call() {
    let events = translate_everywhere(
        &make,
        MODEL,
        include_bytes!("../../../tests/fixtures/gemini/function_call_stream/stream.sse"),
    );
    let call = events
        .iter()
        .find_map(|e| e["choices"][0]["delta"]["tool_calls"].get(0).cloned())
        .unwrap();
    assert_eq!(call["id"], "call_abc_0");
    assert_eq!(call["function"]["name"], "get_weather");
    assert_eq!(arguments(&events, 0), r#"{"city":"Paris"}"#);
    assert!(events
        .iter()
        .any(|e| e["choices"][0]["finish_reason"] == "tool_calls"));
}

#[test]
fn stream_safety_stop() {
    let events = translate_everywhere(
        &make,
        MODEL,
        include_bytes!("../../../tests/fixtures/gemini/safety_stream/stream.sse"),
    );
    assert!(events
        .iter()
        .any(|e| e["choices"][0]["finish_reason"] == "content_filter"));
    assert_eq!(content(&events), "Here is how");
}

#[test]
fn stream_without_finish_is_an_error() {
    let fixture = include_bytes!("../../../tests/fixtures/gemini/text_stream/stream.sse");
    let cut = &fixture[..fixture.len() - 300];
    let text = translate(&make, MODEL, cut, 0);
    assert!(text.contains(r#""finish_reason":"error""#), "{text}");
}
