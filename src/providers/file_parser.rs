//! The `file-parser` plugin's `pdf-text` engine, the pure part: which requests have
//! their PDFs read at the edge, where each PDF's bytes are, the text part that takes
//! its place (`<file name="...">...</file>`), and the `file` annotation the reply
//! carries (OpenRouter's `{type: "file", file: {hash, name, content: [{type: "text",
//! text}]}}`), which the client may send back on its assistant message so that the
//! same file (by the SHA-256 of its bytes) is not read again. The edge fetches what a
//! URL names (the edge's `files` module) and calls these.

use std::collections::HashMap;

use base64::Engine as _;
use serde::Deserialize;
use serde_json::{json, Value};
use sha2::Digest;

use super::media::{Kind, Media, Source};
use super::pdf;
use crate::api::plugins::{PdfEngine, Plugin};
use crate::api::{ChatCompletion, ChatRequest, Content, ContentPart, Role};
use crate::catalog::Catalog;
use crate::error::{Error, Result};

/// Whether the request's PDFs are read to text here: `pdf-text` (or `cloudflare-ai`)
/// asked for, or no engine named and one of its models without `file` input (so
/// that every model it may be served by can take it); `native`, never; `mistral-ocr`
/// always (by OCR, see [`ocr_plugin`]).
pub fn parses(chat: &ChatRequest, cat: &Catalog) -> Result<bool> {
    match chat.plugins.file_parser().and_then(|f| f.engine) {
        Some(PdfEngine::Native) => Ok(false),
        Some(PdfEngine::PdfText | PdfEngine::MistralOcr) => Ok(true),
        None => Ok(chat.model_candidates().iter().any(|id| {
            let model = cat
                .model(id)
                .or_else(|| cat.model(id.split_once(':').map_or(id.as_str(), |(m, _)| m)));
            model.is_some_and(|m| !m.input_modalities.iter().any(|i| i == "file"))
        })),
    }
}

/// The index in `plugins` of the file parser when it asks for `mistral-ocr`.
pub fn ocr_plugin(chat: &ChatRequest) -> Option<usize> {
    chat.plugins.0.iter().position(|p| {
        matches!(p, Plugin::FileParser(f) if f.enabled && f.engine == Some(PdfEngine::MistralOcr))
    })
}

/// A 400 naming the engine when `provider.zdr` rules the OCR out: it shows the file
/// to a third party (as the server tools' search engines are ruled out).
pub fn ocr_allowed(chat: &ChatRequest, at: usize) -> Result<()> {
    if chat.provider.as_ref().and_then(|p| p.zdr) == Some(true) {
        return Err(Error::bad_request(format!(
            "plugins[{at}].pdf.engine: mistral-ocr shows the file to Mistral, which provider.zdr rules out; use pdf-text"
        )));
    }
    Ok(())
}

/// Where a PDF part's bytes are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Bytes {
    /// A data URL's base64.
    Base64(String),
    /// A URL, fetched by the media fetcher's rules.
    Url(String),
}

/// A PDF part of a user message: where it is (`messages[i].content[j]`), its name,
/// where its bytes are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PdfPart {
    pub message: usize,
    pub part: usize,
    pub name: String,
    pub bytes: Bytes,
}

impl PdfPart {
    /// The part's field, for a 400's message.
    pub fn path(&self) -> String {
        format!("messages[{}].content[{}]", self.message, self.part)
    }
}

/// The request's PDF parts: `file` parts (and `image_url` parts of a PDF) of user
/// messages whose data is a data URL or a URL; a file ID is left as it is.
pub fn pdf_parts(chat: &ChatRequest) -> Vec<PdfPart> {
    let mut out = Vec::new();
    for (i, m) in chat.messages.iter().enumerate() {
        let Some(Content::Parts(parts)) = m.content.as_ref().filter(|_| m.role == Role::User)
        else {
            continue;
        };
        for (j, p) in parts.iter().enumerate() {
            let Some(media) = Media::of(p) else { continue };
            if media.kind != Kind::File || media.mime != "application/pdf" {
                continue;
            }
            let bytes = match media.source {
                Source::Inline(b) => Bytes::Base64(b.to_string()),
                Source::Url(u) => Bytes::Url(u.to_string()),
            };
            let name = media.filename.unwrap_or("document.pdf").to_string();
            out.push(PdfPart {
                message: i,
                part: j,
                name,
                bytes,
            });
        }
    }
    out
}

/// A data URL's bytes, or a 400 naming the part.
pub fn decode(part: &PdfPart, b64: &str) -> Result<Vec<u8>> {
    base64::engine::general_purpose::STANDARD
        .decode(b64.trim())
        .map_err(|_| {
            Error::bad_request(format!(
                "{}: the file's data is not valid base64",
                part.path()
            ))
        })
}

/// A 400 naming the part unless `bytes` are a PDF the gateway sends on (the OCR
/// engine's check: a `%PDF-` header in the first KiB, at most 32 MiB).
pub fn check_pdf(part: &PdfPart, bytes: &[u8]) -> Result<()> {
    let head = bytes.get(..bytes.len().min(1024)).unwrap_or_default();
    let why = if bytes.len() > pdf::MAX_PDF_BYTES {
        pdf::PdfError::TooLarge
    } else if memchr::memmem::find(head, b"%PDF-").is_none() {
        pdf::PdfError::NotPdf
    } else {
        return Ok(());
    };
    Err(Error::bad_request(format!(
        "{}: the file {}",
        part.path(),
        why.message()
    )))
}

/// A PDF's key in annotations: the SHA-256 of its bytes, in hex.
pub fn hash(bytes: &[u8]) -> String {
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// One `file` annotation as a client sends it back (what else it holds is ignored).
#[derive(Deserialize)]
struct SentAnnotation {
    #[serde(rename = "type")]
    kind: String,
    file: Option<SentFile>,
}

#[derive(Deserialize)]
struct SentFile {
    hash: String,
    #[serde(default)]
    content: Vec<SentContent>,
}

#[derive(Deserialize)]
struct SentContent {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    text: Option<String>,
}

/// The texts of files read before, sent back on the request's assistant messages'
/// `annotations`, by hash, taken out of those messages (they are the gateway's, and
/// the model gets the text in the file's place); a malformed one is passed over.
pub fn take_sent_back(chat: &mut ChatRequest) -> HashMap<String, String> {
    let mut out = HashMap::new();
    for m in chat
        .messages
        .iter_mut()
        .filter(|m| m.role == Role::Assistant)
    {
        let Some(Value::Array(list)) = m.extra.get_mut("annotations") else {
            continue;
        };
        list.retain(|a| {
            let Ok(a) = SentAnnotation::deserialize(a) else {
                return true;
            };
            let Some(file) = a.file.filter(|_| a.kind == "file") else {
                return true;
            };
            let text: Vec<&str> = file
                .content
                .iter()
                .filter(|c| c.kind == "text")
                .filter_map(|c| c.text.as_deref())
                .collect();
            out.insert(file.hash, text.join("\n"));
            false
        });
        if list.is_empty() {
            m.extra.remove("annotations");
        }
    }
    out
}

/// A PDF read: its hash, name and text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parsed {
    pub hash: String,
    pub name: String,
    pub text: String,
}

/// The text of `part`'s `bytes`: sent back already (by hash), else extracted; a PDF
/// the reader cannot read is a 400 naming the part.
pub fn read(part: &PdfPart, bytes: &[u8], known: &HashMap<String, String>) -> Result<Parsed> {
    let hash = hash(bytes);
    let text = match known.get(&hash) {
        Some(t) => t.clone(),
        None => {
            pdf::extract(bytes)
                .map_err(|e| {
                    Error::bad_request(format!("{}: the file {}", part.path(), e.message()))
                })?
                .text
        }
    };
    Ok(Parsed {
        hash,
        name: part.name.clone(),
        text,
    })
}

/// The part replaced by its text, as `<file name="...">\n...\n</file>`.
pub fn replace(chat: &mut ChatRequest, part: &PdfPart, parsed: &Parsed) {
    let Some(Content::Parts(parts)) = chat
        .messages
        .get_mut(part.message)
        .and_then(|m| m.content.as_mut())
    else {
        return;
    };
    if let Some(p) = parts.get_mut(part.part) {
        *p = text_part(parsed);
    }
}

/// The text part that takes a file's place: `<file name="...">\n...\n</file>`.
pub fn text_part(parsed: &Parsed) -> ContentPart {
    let name = parsed.name.replace(['"', '<', '>'], "_");
    ContentPart::text(&format!("<file name=\"{name}\">\n{}\n</file>", parsed.text))
}

/// The reply's annotation for a file read.
pub fn annotation(parsed: &Parsed) -> Value {
    json!({"type": "file", "file": {
        "hash": parsed.hash,
        "name": parsed.name,
        "content": [{"type": "text", "text": parsed.text}],
    }})
}

/// The annotations of the files read added to each choice's message.
pub fn annotate(completion: &mut ChatCompletion, annotations: &[Value]) {
    if annotations.is_empty() {
        return;
    }
    for c in &mut completion.choices {
        match &mut c.message.annotations {
            Some(Value::Array(list)) => list.extend(annotations.iter().cloned()),
            other => *other = Some(Value::Array(annotations.to_vec())),
        }
    }
}

/// What reading a request's inline PDFs left: the reply's annotations, the parts
/// still to fetch (URLs), and the texts sent back (for those).
#[derive(Debug, Default)]
pub struct Inline {
    pub annotations: Vec<Value>,
    pub remote: Vec<PdfPart>,
    pub known: HashMap<String, String>,
}

/// Every PDF given inline (data URLs) read and replaced by its text; URLs are left
/// to the caller, who reads them with [`read`] and [`replace`].
pub fn parse_inline(chat: &mut ChatRequest) -> Result<Inline> {
    let mut out = Inline {
        known: take_sent_back(chat),
        ..Inline::default()
    };
    for part in pdf_parts(chat) {
        let b64 = match &part.bytes {
            Bytes::Base64(b) => b.clone(),
            Bytes::Url(_) => {
                out.remote.push(part);
                continue;
            }
        };
        let parsed = read(&part, &decode(&part, &b64)?, &out.known)?;
        replace(chat, &part, &parsed);
        out.annotations.push(annotation(&parsed));
    }
    Ok(out)
}

#[cfg(test)]
#[path = "file_parser_tests.rs"]
mod tests;
