//! What the gateway reads off a request before any provider has seen it: a rough size in
//! tokens, the size the reservation counts ([`PromptSize`]), and the fields that are the
//! gateway's own (never sent upstream).

use serde_json::{Map, Value};

use super::{ChatRequest, Content, ContentPart};
use crate::catalog::MediaMaxTokens;

/// Removes the fields that only the gateway reads before a body goes upstream.
pub fn strip_gateway_fields(body: &mut Map<String, Value>) {
    for k in [
        "provider",
        "models",
        "route",
        "transforms",
        "plugins",
        "usage",
        "preset",
        "session_id",
        "session_limits",
        "debug",
    ] {
        body.remove(k);
    }
}

/// A rough prompt size in tokens (about four bytes a token), used before the
/// upstream has counted: for context checks, and when an upstream reports no usage.
pub fn estimate_tokens(text: &str) -> u64 {
    (text.len() as u64).div_ceil(4)
}

/// A rough size of a request's messages in tokens (at least 1).
pub fn estimate_prompt_tokens(req: &ChatRequest) -> u64 {
    req.messages
        .iter()
        .map(|m| estimate_tokens(&m.text()).saturating_add(4))
        .sum::<u64>()
        .max(1)
}

/// Tokens reserved per image: more than any provider bills for one (Anthropic's largest
/// images are about 1,600 tokens, OpenAI's high-detail tiles about 1,100).
pub const IMAGE_TOKENS: u64 = 2_000;
/// Files (PDFs) and audio are reserved at a token per this many bytes of their data,
/// and at least [`IMAGE_TOKENS`] each.
pub const MEDIA_BYTES_PER_TOKEN: u64 = 16;

/// How big a prompt is, for the worst case reserved before the call.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PromptSize {
    /// Bytes of text: contents, names, tool definitions, tool calls and results, schemas.
    pub text_bytes: u64,
    pub messages: u64,
    pub images: u64,
    /// Estimated tokens of audio and of text files sent inline.
    pub media_tokens: u64,
    /// Videos (by URL or inline), whose billed size only the provider sees.
    pub videos: u64,
    /// PDFs (inline or by URL) and files by URL or ID: billed by pages or by what the
    /// provider reads, which the gateway cannot see either.
    pub files: u64,
    /// What the request asks the provider's prompt cache to write, if anything.
    pub cache_write: CacheWrite,
}

/// A `cache_control` mark's write, by its TTL: Anthropic bills a 5-minute write at
/// 1.25× the prompt price and a 1-hour one at 2×.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord)]
pub enum CacheWrite {
    #[default]
    None,
    FiveMinutes,
    OneHour,
}

impl CacheWrite {
    fn of(mark: Option<&Value>) -> Self {
        match mark {
            None => CacheWrite::None,
            Some(m) if m.get("ttl").and_then(Value::as_str) == Some("1h") => CacheWrite::OneHour,
            Some(_) => CacheWrite::FiveMinutes,
        }
    }
}

impl PromptSize {
    /// Counts one content part: its text, or the media it carries.
    fn add_part(&mut self, part: &ContentPart) {
        let one = |n: &mut u64| *n = n.saturating_add(1);
        match part {
            ContentPart::Text(t) => {
                self.text_bytes = self.text_bytes.saturating_add(t.text.len() as u64);
            }
            ContentPart::ImageUrl(p) => match parse_data_url(&p.image_url.url).map(|(m, _)| m) {
                Some("application/pdf") => one(&mut self.files),
                Some(m) if m.starts_with("video/") => one(&mut self.videos),
                _ => one(&mut self.images),
            },
            ContentPart::VideoUrl(_) => one(&mut self.videos),
            ContentPart::File(p) => {
                // A text file inline is sized by its bytes; a PDF, or a file by URL or
                // ID, is not.
                match p.file.file_data.as_deref().and_then(parse_data_url) {
                    Some((mime, b64)) if mime != "application/pdf" => {
                        self.media_tokens =
                            self.media_tokens.saturating_add(media_tokens(b64.len()));
                    }
                    _ => one(&mut self.files),
                }
            }
            ContentPart::InputAudio(a) => {
                let data = serde_json::to_string(a).map_or(0, |t| t.len());
                self.media_tokens = self.media_tokens.saturating_add(media_tokens(data));
            }
            ContentPart::Refusal(_) | ContentPart::Other(_) => {}
        }
    }

    pub fn of(req: &ChatRequest) -> Self {
        let mut s = PromptSize::default();
        let add = |acc: &mut u64, n: usize| *acc = acc.saturating_add(n as u64);
        s.cache_write = CacheWrite::of(req.extra.get("cache_control"));
        for m in &req.messages {
            s.messages = s.messages.saturating_add(1);
            add(&mut s.text_bytes, m.role.as_str().len());
            s.cache_write = s
                .cache_write
                .max(CacheWrite::of(m.extra.get("cache_control")));
            match &m.content {
                Some(Content::Parts(parts)) => {
                    for part in parts {
                        s.cache_write = s.cache_write.max(CacheWrite::of(part.cache_control()));
                        s.add_part(part);
                    }
                }
                Some(Content::Text(text)) => add(&mut s.text_bytes, text.len()),
                None => {}
            }
            add(&mut s.text_bytes, m.name.as_deref().map_or(0, str::len));
            for call in m.tool_calls.iter().flatten() {
                add(&mut s.text_bytes, call.function.name.len());
                add(&mut s.text_bytes, call.function.arguments.len());
                add(&mut s.text_bytes, call.id.len());
            }
            if let Some(r) = m.extra.get("reasoning").and_then(Value::as_str) {
                add(&mut s.text_bytes, r.len());
            }
        }
        if let Some(tools) = &req.tools {
            add(&mut s.text_bytes, json_len(tools));
        }
        if let Some(rf) = &req.response_format {
            add(&mut s.text_bytes, json_len(rf));
        }
        s
    }

    /// The prompt's tokens, counted generously: a token per two bytes of text, eight
    /// per message, [`IMAGE_TOKENS`] per image, plus audio and inline text files, and
    /// [`IMAGE_TOKENS`] for each video and PDF (an estimate for context checks: what
    /// they may be billed at is [`PromptSize::worst_tokens`]).
    pub fn generous_tokens(&self) -> u64 {
        let media = self
            .images
            .saturating_add(self.videos)
            .saturating_add(self.files);
        self.sized_tokens()
            .saturating_add(media.saturating_mul(IMAGE_TOKENS))
    }

    /// What the gateway can count itself: a token per two bytes of text, eight per
    /// message, and audio and inline text files by their bytes.
    fn sized_tokens(&self) -> u64 {
        self.text_bytes
            .div_ceil(2)
            .saturating_add(self.messages.saturating_mul(8))
            .saturating_add(self.media_tokens)
    }

    /// The most prompt tokens the request can be billed at an endpoint with `context`
    /// tokens of context: images at the endpoint's per-image maximum (or
    /// [`IMAGE_TOKENS`]); videos and PDFs at its stated maximum per item, or else at the
    /// whole context, since a provider bills what it finds there and refuses only a
    /// prompt past its context.
    pub fn worst_tokens(&self, context: u64, max: Option<&MediaMaxTokens>) -> u64 {
        let per = |kind: Option<u64>, default: u64| kind.unwrap_or(default).min(context.max(1));
        let known = self.sized_tokens();
        let images = self
            .images
            .saturating_mul(per(max.and_then(|m| m.image), IMAGE_TOKENS));
        let videos = self
            .videos
            .saturating_mul(per(max.and_then(|m| m.video), context));
        let files = self
            .files
            .saturating_mul(per(max.and_then(|m| m.file), context));
        let unseen = videos.saturating_add(files);
        let all = known.saturating_add(images);
        if unseen == 0 {
            return all;
        }
        // Whatever the media are, the prompt the provider bills fits its context.
        all.saturating_add(unseen).min(context.max(all))
    }
}

fn media_tokens(bytes: usize) -> u64 {
    (bytes as u64)
        .div_ceil(MEDIA_BYTES_PER_TOKEN)
        .max(IMAGE_TOKENS)
}

/// `data:<mime>;base64,<data>` → (mime, data).
pub fn parse_data_url(url: &str) -> Option<(&str, &str)> {
    let rest = url.strip_prefix("data:")?;
    let (meta, data) = rest.split_once(',')?;
    let mime = meta.strip_suffix(";base64")?;
    Some((
        if mime.is_empty() {
            "application/octet-stream"
        } else {
            mime
        },
        data,
    ))
}

/// The length of `v` as JSON.
fn json_len(v: &impl serde::Serialize) -> usize {
    serde_json::to_string(v).map_or(0, |t| t.len())
}
