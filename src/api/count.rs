//! Token counting, `POST /messages/count_tokens` (Anthropic's shape) and
//! `POST /responses/input_tokens` (OpenAI's): each request read into the one prompt it
//! counts, the gateway's own estimate of that prompt where no provider counts it, and
//! the two replies. Counting generates nothing and is not billed.
//!
//! The estimate is deliberately high (a caller such as Claude Code compacts its
//! conversation by it, and a count too low overflows the context): every block is
//! counted (text, tool definitions, tool calls, tool results, thinking, images by the
//! provider's formula, documents), then [`MARGIN_PERCENT`] is added.

use serde::Serialize;
use serde_json::Value;

use super::image_size::{dimensions, HEAD_BYTES};
use super::messages::TokenCount;
use super::{estimate_tokens, parse_data_url, ChatRequest, Content, ContentPart};
use super::{IMAGE_TOKENS, MEDIA_BYTES_PER_TOKEN};
use crate::error::{Error, Result};

/// The header that says who counted: `provider` or `estimate`.
pub const SOURCE_HEADER: &str = "X-Token-Count-Source";
/// What the estimate adds to its count, in percent.
pub const MARGIN_PERCENT: u64 = 10;
/// Tokens each message's framing (role, separators) takes.
pub const MESSAGE_TOKENS: u64 = 4;
/// Tokens of the system prompt Anthropic adds when a request has tools (its
/// documented figure for `auto` and `none`, the larger of the two).
pub const ANTHROPIC_TOOLS_TOKENS: u64 = 346;
/// The most an image is billed by Anthropic (larger ones are scaled down first).
pub const ANTHROPIC_IMAGE_MAX: u64 = 1_600;
/// What Anthropic bills a PDF page at most (its text and its image).
pub const PDF_PAGE_TOKENS: u64 = 3_000;

/// Who counted a prompt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CountSource {
    Provider,
    Estimate,
}

impl CountSource {
    pub fn as_str(self) -> &'static str {
        match self {
            CountSource::Provider => "provider",
            CountSource::Estimate => "estimate",
        }
    }
}

/// How a family's models bill what the gateway estimates by formula: images by their
/// size, and the tools' own system prompt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PromptFormula {
    /// `width * height / 750`, at most [`ANTHROPIC_IMAGE_MAX`]; a tool-use system
    /// prompt of [`ANTHROPIC_TOOLS_TOKENS`].
    Anthropic,
    /// 258 tokens an image up to 384 pixels a side, else 258 a 768-pixel tile.
    Gemini,
    /// OpenAI's high detail: scaled into 2048 pixels, its short side to 768, then 85
    /// tokens and 170 a 512-pixel tile.
    OpenAi,
}

impl PromptFormula {
    /// The tokens of an image of `size` (`None`: a size the gateway cannot see, at
    /// the most one is billed).
    pub fn image_tokens(self, size: Option<(u32, u32)>) -> u64 {
        let Some((w, h)) = size.map(|(w, h)| (u64::from(w), u64::from(h))) else {
            return match self {
                PromptFormula::Anthropic => ANTHROPIC_IMAGE_MAX,
                _ => IMAGE_TOKENS,
            };
        };
        match self {
            PromptFormula::Anthropic => w
                .saturating_mul(h)
                .div_ceil(750)
                .clamp(1, ANTHROPIC_IMAGE_MAX),
            PromptFormula::Gemini if w <= 384 && h <= 384 => 258,
            PromptFormula::Gemini => w
                .div_ceil(768)
                .saturating_mul(h.div_ceil(768))
                .saturating_mul(258),
            PromptFormula::OpenAi => {
                let (w, h) = fit(w, h, 2048);
                let short = w.min(h);
                let (w, h) = if short > 768 {
                    (scale(w, 768, short), scale(h, 768, short))
                } else {
                    (w, h)
                };
                let tiles = w.div_ceil(512).saturating_mul(h.div_ceil(512));
                tiles.saturating_mul(170).saturating_add(85)
            }
        }
    }

    fn tools_tokens(self) -> u64 {
        match self {
            PromptFormula::Anthropic => ANTHROPIC_TOOLS_TOKENS,
            _ => 0,
        }
    }
}

/// `n * to / from` (0 for a `from` of 0).
fn scale(n: u64, to: u64, from: u64) -> u64 {
    n.saturating_mul(to).checked_div(from).unwrap_or(0)
}

/// `(w, h)` scaled down, proportions kept, to fit in `most` pixels a side.
fn fit(w: u64, h: u64, most: u64) -> (u64, u64) {
    let long = w.max(h);
    if long <= most {
        return (w, h);
    }
    (scale(w, most, long), scale(h, most, long))
}

/// The gateway's estimate of `req`'s prompt tokens by `formula`, margin included.
pub fn estimate(req: &ChatRequest, formula: PromptFormula) -> u64 {
    let n = counted(req, formula);
    n.saturating_add(n.saturating_mul(MARGIN_PERCENT).div_ceil(100))
        .max(1)
}

/// Every block of `req`, counted, without the margin.
fn counted(req: &ChatRequest, formula: PromptFormula) -> u64 {
    let mut n: u64 = 0;
    for m in &req.messages {
        n = n
            .saturating_add(MESSAGE_TOKENS)
            .saturating_add(estimate_tokens(m.name.as_deref().unwrap_or_default()))
            .saturating_add(estimate_tokens(
                m.tool_call_id.as_deref().unwrap_or_default(),
            ));
        match &m.content {
            Some(Content::Text(t)) => n = n.saturating_add(estimate_tokens(t)),
            Some(Content::Parts(parts)) => {
                for p in parts {
                    n = n.saturating_add(part_tokens(p, formula));
                }
            }
            None => {}
        }
        for call in m.tool_calls.iter().flatten() {
            n = n
                .saturating_add(estimate_tokens(&call.function.name))
                .saturating_add(estimate_tokens(&call.function.arguments))
                .saturating_add(estimate_tokens(&call.id));
        }
        // Thinking, as the conversions carry it.
        if let Some(r) = m.extra.get("reasoning").and_then(Value::as_str) {
            n = n.saturating_add(estimate_tokens(r));
        }
    }
    if let Some(tools) = req.tools.as_ref().filter(|t| !t.is_empty()) {
        n = n
            .saturating_add(json_tokens(tools))
            .saturating_add(formula.tools_tokens());
    }
    if let Some(rf) = &req.response_format {
        n = n.saturating_add(json_tokens(rf));
    }
    n
}

/// The tokens of a value as JSON (tools and schemas go upstream so).
fn json_tokens<T: Serialize + ?Sized>(v: &T) -> u64 {
    estimate_tokens(&serde_json::to_string(v).unwrap_or_default())
}

/// One content part's tokens.
fn part_tokens(p: &ContentPart, formula: PromptFormula) -> u64 {
    match p {
        ContentPart::Text(t) => estimate_tokens(&t.text),
        ContentPart::Refusal(r) => estimate_tokens(&r.refusal),
        ContentPart::ImageUrl(i) => match parse_data_url(&i.image_url.url) {
            Some(("application/pdf", data)) => pdf_tokens(data),
            Some((_, data)) => formula.image_tokens(dimensions(&decoded_head(data))),
            None => formula.image_tokens(None),
        },
        ContentPart::File(f) => match f.file.file_data.as_deref().and_then(parse_data_url) {
            Some(("application/pdf", data)) => pdf_tokens(data),
            Some((mime, data)) if is_text(mime) => text_file_tokens(data),
            Some((_, data)) => media_tokens(data.len()),
            // By URL or upload ID: at least a page.
            None => PDF_PAGE_TOKENS,
        },
        ContentPart::InputAudio(a) => media_tokens(a.input_audio.data.len()),
        // A video's length is not seen: billed at least as an image.
        ContentPart::VideoUrl(_) => IMAGE_TOKENS,
        ContentPart::Other(o) => json_tokens(o),
    }
}

fn is_text(mime: &str) -> bool {
    mime.starts_with("text/") || mime == "application/json"
}

/// The base64 characters of [`HEAD_BYTES`].
const HEAD_CHARS: usize = HEAD_BYTES / 3 * 4;

/// The first bytes of base64 `data`, decoded (as much of it as decodes).
fn decoded_head(data: &str) -> Vec<u8> {
    use base64::Engine;
    // Whole groups of four characters: the prefix decodes on its own.
    let take = (data.len().min(HEAD_CHARS) / 4).saturating_mul(4);
    let head = data.get(..take).unwrap_or_default();
    base64::engine::general_purpose::STANDARD
        .decode(head)
        .unwrap_or_default()
}

/// A text file inline: its bytes (three for every four base64 characters) as text.
fn text_file_tokens(data: &str) -> u64 {
    (data.len() as u64 / 4).saturating_mul(3).div_ceil(4)
}

/// Audio and other media inline: a token per [`MEDIA_BYTES_PER_TOKEN`] bytes of their
/// base64, at least [`IMAGE_TOKENS`].
fn media_tokens(base64_len: usize) -> u64 {
    (base64_len as u64)
        .div_ceil(MEDIA_BYTES_PER_TOKEN)
        .max(IMAGE_TOKENS)
}

/// A PDF: [`PDF_PAGE_TOKENS`] a page where its page objects can be seen, else by its
/// bytes.
fn pdf_tokens(data: &str) -> u64 {
    use base64::Engine;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(data)
        .unwrap_or_default();
    match pdf_pages(&bytes) {
        0 => media_tokens(data.len()),
        pages => pages.saturating_mul(PDF_PAGE_TOKENS),
    }
}

/// How many `/Type /Page` objects (not `/Pages`) a PDF has in the clear.
pub fn pdf_pages(pdf: &[u8]) -> u64 {
    let mut n: u64 = 0;
    for at in memchr::memmem::find_iter(pdf, b"/Type") {
        let rest = pdf.get(at.saturating_add(5)..).unwrap_or_default();
        let rest = rest.get(rest.iter().take_while(|b| b.is_ascii_whitespace()).count()..);
        let rest = rest.unwrap_or_default();
        if rest.starts_with(b"/Page") && !rest.get(5..).unwrap_or_default().starts_with(b"s") {
            n = n.saturating_add(1);
        }
    }
    n
}

/// A count request's surface.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CountSurface {
    /// `POST /messages/count_tokens`: a Messages body without `max_tokens`.
    Messages,
    /// `POST /responses/input_tokens`: a Responses body.
    Responses,
}

/// A count request read: the prompt as a chat request, and a Messages body as the
/// caller wrote it (what an Anthropic endpoint counts).
#[derive(Debug, Clone)]
pub struct Counting {
    pub chat: ChatRequest,
    pub native: Option<Value>,
}

/// `POST /responses/input_tokens`'s reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct InputTokens {
    pub object: &'static str,
    pub input_tokens: u64,
}

/// A count reply in its surface's shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum CountReply {
    Messages(TokenCount),
    Responses(InputTokens),
}

impl CountSurface {
    /// Reads a body of this surface; a bad field is a 400 naming it.
    pub fn parse(self, body: &[u8]) -> Result<Counting> {
        match self {
            CountSurface::Messages => {
                let (c, native) = super::messages::convert_count(body)?;
                Ok(Counting {
                    chat: c.chat,
                    native: Some(native),
                })
            }
            CountSurface::Responses => {
                let (chat, _) = super::responses::parse(body)?;
                if chat.model.is_none() && chat.models.is_none() {
                    return Err(Error::bad_request("model: is required"));
                }
                Ok(Counting { chat, native: None })
            }
        }
    }

    pub fn reply(self, input_tokens: u64) -> CountReply {
        match self {
            CountSurface::Messages => CountReply::Messages(TokenCount { input_tokens }),
            CountSurface::Responses => CountReply::Responses(InputTokens {
                object: "response.input_tokens",
                input_tokens,
            }),
        }
    }
}

#[cfg(test)]
mod tests;
