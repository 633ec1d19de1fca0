use super::*;
use crate::providers::testutil::{catalog, request};

/// A one-page PDF showing `text`.
fn pdf_of(text: &str) -> Vec<u8> {
    let content = format!("BT /F1 12 Tf 72 720 Td ({text}) Tj ET");
    format!(
        "%PDF-1.4\n1 0 obj << /Type /Page /Contents 2 0 R >> endobj\n2 0 obj << /Length {} >>\nstream\n{content}\nendstream\nendobj\ntrailer << >>\n%%EOF",
        content.len()
    )
    .into_bytes()
}

fn data_url(bytes: &[u8]) -> String {
    format!(
        "data:application/pdf;base64,{}",
        base64::engine::general_purpose::STANDARD.encode(bytes)
    )
}

fn with_pdf(model: &str, pdf: &[u8], extra: Value) -> ChatRequest {
    let mut body = json!({"model": model, "messages": [{"role": "user", "content": [
        {"type": "text", "text": "Summarise"},
        {"type": "file", "file": {"filename": "paper.pdf", "file_data": data_url(pdf)}},
    ]}]});
    if let (Some(b), Value::Object(e)) = (body.as_object_mut(), extra) {
        b.extend(e);
    }
    request(body)
}

#[test]
fn parses_for_text_only_models_and_pdf_text_only() {
    let cat = catalog();
    let pdf = pdf_of("x");
    let text_only = with_pdf("meta-llama/llama-3.3-70b-instruct", &pdf, json!({}));
    assert!(parses(&text_only, &cat).unwrap());
    let reads = with_pdf("openai/gpt-4.1", &pdf, json!({}));
    assert!(!parses(&reads, &cat).unwrap());
    let asked = json!({"plugins": [{"id": "file-parser", "pdf": {"engine": "pdf-text"}}]});
    assert!(parses(&with_pdf("openai/gpt-4.1", &pdf, asked), &cat).unwrap());
    let native = json!({"plugins": [{"id": "file-parser", "pdf": {"engine": "native"}}]});
    let native = with_pdf("meta-llama/llama-3.3-70b-instruct", &pdf, native);
    assert!(!parses(&native, &cat).unwrap());
    assert_eq!(ocr_plugin(&native), None);
    let ocr = json!({"plugins": [{"id": "web"}, {"id": "file-parser", "pdf": {"engine": "mistral-ocr"}}]});
    let ocr = with_pdf("openai/gpt-4.1", &pdf, ocr);
    assert!(parses(&ocr, &cat).unwrap());
    assert_eq!(ocr_plugin(&ocr), Some(1));
    assert!(ocr_allowed(&ocr, 1).is_ok());
    let zdr = json!({"provider": {"zdr": true}, "plugins": [{"id": "file-parser", "pdf": {"engine": "mistral-ocr"}}]});
    assert_eq!(
        ocr_allowed(&with_pdf("openai/gpt-4.1", &pdf, zdr), 0).unwrap_err().to_string(),
        "plugins[0].pdf.engine: mistral-ocr shows the file to Mistral, which provider.zdr rules out; use pdf-text"
    );
}

#[test]
fn inline_pdfs_become_text_parts_with_annotations() {
    let pdf = pdf_of("The answer is 42.");
    let mut chat = with_pdf("meta-llama/llama-3.3-70b-instruct", &pdf, json!({}));
    let Inline {
        annotations,
        remote,
        ..
    } = parse_inline(&mut chat).unwrap();
    assert!(remote.is_empty());
    let parts = chat.messages[0].content.as_ref().unwrap().parts();
    assert_eq!(
        parts[1].as_text(),
        Some("<file name=\"paper.pdf\">\nThe answer is 42.\n</file>")
    );
    assert_eq!(parts[0].as_text(), Some("Summarise"));
    assert_eq!(
        annotations,
        vec![
            json!({"type": "file", "file": {"hash": hash(&pdf), "name": "paper.pdf",
            "content": [{"type": "text", "text": "The answer is 42."}]}})
        ]
    );
    assert_eq!(
        hash(b"abc"),
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    );
}

#[test]
fn a_sent_back_annotation_is_used_instead_of_parsing() {
    let pdf = pdf_of("fresh text");
    let mut chat = request(json!({"model": "a/b", "messages": [
        {"role": "user", "content": [{"type": "file", "file": {"filename": "p.pdf", "file_data": data_url(&pdf)}}]},
        {"role": "assistant", "content": "ok", "annotations": [
            {"type": "url_citation", "url_citation": {"url": "https://x.test"}},
            {"type": "file", "file": {"hash": hash(&pdf), "name": "p.pdf", "content": [{"type": "text", "text": "kept text"}]}}]},
        {"role": "user", "content": "more"},
    ]}));
    let annotations = parse_inline(&mut chat).unwrap().annotations;
    let parts = chat.messages[0].content.as_ref().unwrap().parts();
    assert_eq!(
        parts[0].as_text(),
        Some("<file name=\"p.pdf\">\nkept text\n</file>")
    );
    assert_eq!(annotations[0]["file"]["content"][0]["text"], "kept text");
    // The file annotation is the gateway's: it does not go upstream; the citation does.
    assert_eq!(
        chat.messages[1].extra["annotations"],
        json!([{"type": "url_citation", "url_citation": {"url": "https://x.test"}}])
    );
}

#[test]
fn unreadable_pdfs_and_urls() {
    let mut bad = with_pdf("a/b", b"not a pdf", json!({}));
    assert_eq!(
        parse_inline(&mut bad).unwrap_err().to_string(),
        "messages[0].content[1]: the file is not a PDF"
    );
    let mut chat = request(
        json!({"model": "a/b", "messages": [{"role": "user", "content": [
            {"type": "file", "file": {"file_data": "https://docs.test/a.pdf"}},
            {"type": "file", "file": {"filename": "n.txt", "file_data": "data:text/plain;base64,aGk="}},
            {"type": "file", "file": {"file_id": "file-1"}},
        ]}]}),
    );
    let before = chat.clone();
    let got = parse_inline(&mut chat).unwrap();
    assert!(got.annotations.is_empty());
    assert_eq!(chat, before);
    assert_eq!(
        got.remote,
        vec![PdfPart {
            message: 0,
            part: 0,
            name: "document.pdf".into(),
            bytes: Bytes::Url("https://docs.test/a.pdf".into())
        }]
    );
}

#[test]
fn annotations_join_the_reply_s_own() {
    let mut c: ChatCompletion =
        serde_json::from_value(json!({"id": "g", "created": 1, "model": "m",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "hi",
            "annotations": [{"type": "url_citation"}]}, "finish_reason": "stop"}]}))
        .unwrap();
    annotate(&mut c, &[json!({"type": "file"})]);
    assert_eq!(
        c.choices[0].message.annotations,
        Some(json!([{"type": "url_citation"}, {"type": "file"}]))
    );
}
