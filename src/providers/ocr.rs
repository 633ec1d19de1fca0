//! The `file-parser` plugin's `mistral-ocr` engine, the pure part: Mistral's OCR API
//! (`POST /v1/ocr` with `{model: "mistral-ocr-latest", document: {type:
//! "document_url", document_url}}`, the PDF as a data URL) and its reply read
//! (`pages[].markdown` in page order, `usage_info.pages_processed`, what is billed).
//! The edge sends it with `MISTRAL_API_KEY` to `MISTRAL_BASE_URL` (tests) or Mistral.

use base64::Engine as _;
use serde::Deserialize;

use super::file_parser::{self, Parsed, PdfPart};
use super::UpstreamRequest;
use crate::api::{ChatRequest, Content, ContentPart};
use crate::error::{Error, Result};

pub const DEFAULT_BASE_URL: &str = "https://api.mistral.ai";
pub const MODEL: &str = "mistral-ocr-latest";
/// What a page costs when the deployment sets no `MISTRAL_OCR_PAGE_PICOS`: Mistral's
/// list price, $1 per 1,000 pages.
pub const PAGE_PICOS: u64 = 1_000_000_000;
/// The most characters of text kept from one document (as `pdf-text` keeps).
pub const MAX_TEXT_CHARS: usize = 400_000;
/// The most pages Mistral's OCR reads of one document (its documented limit, beside
/// 50 MB): what a PDF whose pages cannot be counted is held at.
pub const MAX_PAGES: u64 = 1_000;

/// The most pages the OCR of `pdf` can be billed for, held before Mistral is called:
/// its pages as [`pdf::pages::count`] counts them (never fewer than a reader finds),
/// at most [`MAX_PAGES`]; [`MAX_PAGES`] when they cannot be counted.
pub fn worst_pages(pdf: &[u8]) -> u64 {
    super::pdf::pages::count(pdf).map_or(MAX_PAGES, |n| n.clamp(1, MAX_PAGES))
}

/// The OCR request for one PDF.
pub fn build(base_url: &str, key: &str, pdf: &[u8]) -> UpstreamRequest {
    let b64 = base64::engine::general_purpose::STANDARD.encode(pdf);
    let body = serde_json::json!({
        "model": MODEL,
        "document": {"type": "document_url", "document_url": format!("data:application/pdf;base64,{b64}")},
        "include_image_base64": false,
    });
    UpstreamRequest {
        method: "POST",
        url: format!("{}/v1/ocr", base_url.trim_end_matches('/')),
        headers: vec![
            ("authorization".into(), format!("Bearer {key}")),
            ("content-type".into(), "application/json".into()),
        ],
        body: body.to_string().into_bytes(),
    }
}

/// The text that holds the place of the request's `n`th PDF until the OCR has read
/// it (once the request is admitted), named by a nonce the client cannot know: only
/// the gateway's own placeholder is ever filled.
pub fn placeholder(nonce: u64, n: usize) -> String {
    format!("<file ocr=\"pending\" ref=\"{nonce:016x}-{n}\"/>")
}

/// The PDF `part` replaced by its `placeholder`.
pub fn hold_place(chat: &mut ChatRequest, part: &PdfPart, placeholder: &str) {
    let parts = chat
        .messages
        .get_mut(part.message)
        .and_then(|m| m.content.as_mut());
    if let Some(Content::Parts(parts)) = parts {
        if let Some(p) = parts.get_mut(part.part) {
            *p = ContentPart::text(placeholder);
        }
    }
}

/// The part that is `placeholder`, wherever the request's messages now have it,
/// replaced by the file's text (`false`: it is nowhere).
pub fn fill(chat: &mut ChatRequest, placeholder: &str, parsed: &Parsed) -> bool {
    let parts = chat
        .messages
        .iter_mut()
        .filter_map(|m| match &mut m.content {
            Some(Content::Parts(parts)) => Some(parts),
            _ => None,
        });
    for p in parts.flatten() {
        if matches!(p, ContentPart::Text(t) if t.text == placeholder) {
            *p = file_parser::text_part(parsed);
            return true;
        }
    }
    false
}

#[derive(Deserialize)]
struct Reply {
    pages: Vec<Page>,
    usage_info: UsageInfo,
}

#[derive(Deserialize)]
struct Page {
    index: u64,
    markdown: String,
}

#[derive(Deserialize)]
struct UsageInfo {
    pages_processed: u64,
}

/// One document read: its text and the pages billed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Read {
    pub text: String,
    pub pages: u64,
}

/// The reply's pages' Markdown in page order, a blank line between pages, cut at
/// [`MAX_TEXT_CHARS`]; billed by `usage_info.pages_processed` (at least the pages
/// returned).
pub fn parse(body: &[u8]) -> Result<Read> {
    let mut reply: Reply = serde_json::from_slice(body)
        .map_err(|e| Error::upstream("mistral", format!("unreadable OCR reply: {e}")))?;
    reply.pages.sort_by_key(|p| p.index);
    let mut text = String::new();
    for p in &reply.pages {
        if !text.is_empty() {
            text.push_str("\n\n");
        }
        text.push_str(p.markdown.trim_end());
    }
    if let Some((cut, _)) = text.char_indices().nth(MAX_TEXT_CHARS) {
        text.truncate(cut);
    }
    let returned = reply.pages.len() as u64;
    Ok(Read {
        text,
        pages: reply.usage_info.pages_processed.max(returned),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_worst_case_is_the_counted_pages_up_to_mistrals_limit() {
        let pages = |n: usize| {
            let mut pdf = b"%PDF-1.4\n<< /Type /Pages /Count 1 >>\n".to_vec();
            for _ in 0..n {
                pdf.extend(b"<< /Type /Page >>\n");
            }
            pdf
        };
        assert_eq!(worst_pages(&pages(1)), 1);
        assert_eq!(worst_pages(&pages(12)), 12);
        assert_eq!(worst_pages(&pages(1_001)), MAX_PAGES);
        assert_eq!(worst_pages(b"%PDF-1.7\n5 0 obj\n<< /Type /ObjStm /Filter /DCTDecode >>\nstream\nx\nendstream\nendobj"), MAX_PAGES);
        assert_eq!(worst_pages(b"%PDF-1.4 nothing"), MAX_PAGES);
    }

    #[test]
    fn a_placeholder_holds_the_pdfs_place_until_its_text_fills_it() {
        let mut chat = ChatRequest::parse(br#"{"model":"m","messages":[{"role":"user","content":[
            {"type":"text","text":"<file ocr=\"pending\" ref=\"00000000000000ff-0\"/>"},
            {"type":"file","file":{"filename":"a.pdf","file_data":"data:application/pdf;base64,JVBERi0="}}]}]}"#).unwrap();
        let part = file_parser::pdf_parts(&chat).remove(0);
        let held = placeholder(7, 1);
        assert_eq!(held, "<file ocr=\"pending\" ref=\"0000000000000007-1\"/>");
        hold_place(&mut chat, &part, &held);
        // Messages put before it (a server-tool replay) do not lose it.
        let mut before = chat.messages[0].clone();
        before.content = Some(Content::Text("earlier".into()));
        chat.messages.insert(0, before);
        let parsed = Parsed {
            hash: "h".into(),
            name: "a.pdf".into(),
            text: "# Read".into(),
        };
        assert!(fill(&mut chat, &held, &parsed));
        // Filled once; the client's look-alike (another nonce) is its own text.
        assert!(!fill(&mut chat, &held, &parsed));
        let texts: Vec<String> = chat.messages.iter().map(|m| m.text()).collect();
        assert_eq!(
            texts,
            [
                "earlier",
                "<file ocr=\"pending\" ref=\"00000000000000ff-0\"/>\n<file name=\"a.pdf\">\n# Read\n</file>"
            ]
        );
    }

    #[test]
    fn builds_mistrals_request() {
        let r = build("http://m/", "sk-m", b"%PDF-1.4");
        assert_eq!((r.method, r.url.as_str()), ("POST", "http://m/v1/ocr"));
        assert_eq!(r.headers[0], ("authorization".into(), "Bearer sk-m".into()));
        let body: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(
            body,
            serde_json::json!({"model": "mistral-ocr-latest", "include_image_base64": false,
                "document": {"type": "document_url", "document_url": "data:application/pdf;base64,JVBERi0xLjQ="}})
        );
    }

    #[test]
    fn reads_pages_in_order_and_bills_pages_processed() {
        let body = br##"{"id":"x","model":"mistral-ocr-latest","pages":[
            {"index":1,"markdown":"# Two\n","images":[],"dimensions":{"dpi":200,"height":1,"width":1}},
            {"index":0,"markdown":"One","images":[],"dimensions":null}],
            "usage_info":{"pages_processed":3,"doc_size_bytes":100}}"##;
        assert_eq!(
            parse(body).unwrap(),
            Read {
                text: "One\n\n# Two".into(),
                pages: 3
            }
        );
        let short = br#"{"pages":[{"index":0,"markdown":"a"},{"index":1,"markdown":"b"}],"usage_info":{"pages_processed":1}}"#;
        assert_eq!(parse(short).unwrap().pages, 2);
        let e = parse(br#"{"pages":[]}"#).unwrap_err();
        assert!(e.public_message().contains("unreadable OCR reply"), "{e:?}");
    }
}
