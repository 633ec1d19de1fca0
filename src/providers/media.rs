//! The media parts of a prompt (`image_url`, `file`, `input_audio`, `video_url`) in one
//! shape, for the families that take them in their own forms; and the remote URLs a
//! family cannot fetch itself, which the edge fetches and inlines first (only http(s),
//! never a private or local address).

use std::collections::HashMap;

use super::parse_data_url;
use crate::api::{ChatRequest, Content, ContentPart, FileData};
#[cfg(test)]
use serde_json::Value;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Image,
    /// A document: a PDF, or a text file.
    File,
    Audio,
    Video,
}

/// Where a part's bytes are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source<'a> {
    /// Base64 data.
    Inline(&'a str),
    Url(&'a str),
}

/// One media part of a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Media<'a> {
    pub kind: Kind,
    pub mime: String,
    pub source: Source<'a>,
    /// A file part's name, if it gave one.
    pub filename: Option<&'a str>,
}

/// A media type from a file name or URL path's extension.
pub fn mime_from_name(name: &str) -> Option<&'static str> {
    let path = name.split(['?', '#']).next().unwrap_or(name);
    let ext = path.rsplit_once('.')?.1.to_ascii_lowercase();
    Some(match ext.as_str() {
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "heic" => "image/heic",
        "pdf" => "application/pdf",
        "txt" => "text/plain",
        "md" => "text/markdown",
        "csv" => "text/csv",
        "html" | "htm" => "text/html",
        "json" => "application/json",
        "wav" => "audio/wav",
        "mp3" => "audio/mp3",
        "aac" => "audio/aac",
        "ogg" => "audio/ogg",
        "flac" => "audio/flac",
        "aiff" => "audio/aiff",
        "m4a" => "audio/mp4",
        "mp4" => "video/mp4",
        "mpeg" | "mpg" => "video/mpeg",
        "mov" => "video/quicktime",
        "webm" => "video/webm",
        "avi" => "video/x-msvideo",
        "wmv" => "video/x-ms-wmv",
        "3gp" => "video/3gpp",
        _ => return None,
    })
}

/// `input_audio.format` (OpenAI's names) as a media type.
fn audio_mime(format: &str) -> String {
    match format.to_ascii_lowercase().as_str() {
        "mp3" | "mpeg" => "audio/mp3".into(),
        "m4a" => "audio/mp4".into(),
        "pcm16" | "pcm" => "audio/pcm".into(),
        other => format!("audio/{other}"),
    }
}

fn url_or_data(url: &str) -> (Option<&str>, Source<'_>) {
    match parse_data_url(url) {
        Some((mime, data)) => (Some(mime), Source::Inline(data)),
        None => (None, Source::Url(url)),
    }
}

impl<'a> Media<'a> {
    /// The media in a content part, or `None` for text, refusals and file IDs (a file
    /// uploaded elsewhere, which only that provider can resolve).
    pub fn of(part: &'a ContentPart) -> Option<Media<'a>> {
        match part {
            ContentPart::ImageUrl(p) => {
                let url = p.image_url.url.as_str();
                let (mime, source) = url_or_data(url);
                let mime = mime.or_else(|| mime_from_name(url)).unwrap_or("image/jpeg");
                let kind = if mime == "application/pdf" {
                    Kind::File
                } else {
                    Kind::Image
                };
                Some(Media {
                    kind,
                    mime: mime.to_string(),
                    source,
                    filename: None,
                })
            }
            ContentPart::File(p) => Self::file(&p.file),
            ContentPart::InputAudio(p) => Some(Media {
                kind: Kind::Audio,
                mime: audio_mime(&p.input_audio.format),
                source: Source::Inline(&p.input_audio.data),
                filename: None,
            }),
            ContentPart::VideoUrl(p) => {
                let url = p.video_url.url.as_str();
                let (mime, source) = url_or_data(url);
                let mime = mime.or_else(|| mime_from_name(url)).unwrap_or("video/mp4");
                Some(Media {
                    kind: Kind::Video,
                    mime: mime.to_string(),
                    source,
                    filename: None,
                })
            }
            ContentPart::Text(_) | ContentPart::Refusal(_) | ContentPart::Other(_) => None,
        }
    }

    /// A file part's media: its type from the data URL, else its name or URL.
    fn file(file: &'a FileData) -> Option<Media<'a>> {
        let filename = file.filename.as_deref();
        let (mime, source) = url_or_data(file.file_data.as_deref()?);
        let mime = mime
            .filter(|m| *m != "application/octet-stream")
            .or_else(|| filename.and_then(mime_from_name))
            .or_else(|| match source {
                Source::Url(u) => mime_from_name(u),
                Source::Inline(_) => None,
            })
            .unwrap_or("application/pdf");
        let kind = if mime.starts_with("image/") {
            Kind::Image
        } else {
            Kind::File
        };
        Some(Media {
            kind,
            mime: mime.to_string(),
            source,
            filename,
        })
    }
}

/// An http(s) URL as the WHATWG URL parser reads it (the parser `fetch` uses: tabs and
/// newlines dropped, `%31` decoded in hosts, numeric hosts in every base read as IPv4,
/// full-width characters mapped), or `None` for any other scheme or a bad URL.
fn parse_http(url: &str) -> Option<url::Url> {
    let u = url::Url::parse(url).ok()?;
    matches!(u.scheme(), "http" | "https").then_some(u)
}

/// A YouTube video URL, which Gemini reads itself.
pub fn is_youtube(url: &str) -> bool {
    parse_http(url)
        .as_ref()
        .and_then(url::Url::domain)
        .map(|h| h.trim_end_matches('.'))
        .is_some_and(|h| h == "youtu.be" || h == "youtube.com" || h.ends_with(".youtube.com"))
}

/// A file uploaded to Gemini's Files API, which Gemini reads itself (with the
/// operator's key: the operator's files).
pub fn is_gemini_file(url: &str) -> bool {
    parse_http(url).is_some_and(|u| {
        u.domain().map(|h| h.trim_end_matches('.')) == Some("generativelanguage.googleapis.com")
            && u.path().contains("/files/")
    })
}

/// A remote media URL in a request that the edge must fetch and inline: `path` names
/// the field (for a 400 about it), `mime` is the media type the part implies (for a
/// server that does not say).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Remote {
    pub path: String,
    pub url: String,
    pub mime: String,
}

/// Every media part of `req` given by URL (not inline data), in order.
fn url_media(req: &ChatRequest) -> Vec<Remote> {
    let mut out = Vec::new();
    for (i, m) in req.messages.iter().enumerate() {
        let Some(Content::Parts(parts)) = &m.content else {
            continue;
        };
        for (j, p) in parts.iter().enumerate() {
            let Some(Media {
                source: Source::Url(url),
                mime,
                ..
            }) = Media::of(p)
            else {
                continue;
            };
            let field = match p {
                ContentPart::File(_) => "file.file_data",
                ContentPart::VideoUrl(_) => "video_url.url",
                _ => "image_url.url",
            };
            out.push(Remote {
                path: format!("messages[{i}].content[{j}].{field}"),
                url: url.to_string(),
                mime,
            });
        }
    }
    out
}

/// The field of the first Gemini Files API URI in `req`, if any: such a URI is read
/// with the operator's Google key, so it is refused unless the operator allows it.
pub fn gemini_file_field(req: &ChatRequest) -> Option<String> {
    url_media(req)
        .into_iter()
        .find(|r| is_gemini_file(&r.url))
        .map(|r| r.path)
}

/// The http(s) media URLs in `req` that Gemini cannot read itself (anything but YouTube
/// videos and its own uploaded files), each URL once.
pub fn remote_for_gemini(req: &ChatRequest) -> Vec<Remote> {
    let mut out: Vec<Remote> = Vec::new();
    for r in url_media(req) {
        if is_youtube(&r.url) || is_gemini_file(&r.url) || out.iter().any(|o| o.url == r.url) {
            continue;
        }
        out.push(r);
    }
    out
}

/// `req` with each fetched URL replaced by a data URL: `fetched` maps a URL to (media
/// type, base64 data), the data the edge's [`marker`] until it splices the bytes in.
pub fn inline(req: &ChatRequest, fetched: &HashMap<String, (String, String)>) -> ChatRequest {
    let mut out = req.clone();
    let data_url = |url: &str| {
        fetched
            .get(url)
            .map(|(mime, data)| format!("data:{mime};base64,{data}"))
    };
    for m in &mut out.messages {
        let Some(Content::Parts(parts)) = &mut m.content else {
            continue;
        };
        for p in parts {
            let url = match p {
                ContentPart::ImageUrl(p) => Some(&mut p.image_url.url),
                ContentPart::File(p) => p.file.file_data.as_mut(),
                ContentPart::VideoUrl(p) => Some(&mut p.video_url.url),
                _ => None,
            };
            if let Some(u) = url {
                if let Some(d) = data_url(u) {
                    *u = d;
                }
            }
        }
    }
    out
}

/// What stands in a built body for the base64 of fetched media `n` until the edge
/// splices the media in: letters and digits (base64's alphabet, so that the part reads
/// as inline data), with `nonce` (random, per request) so that no text a caller sends
/// can be taken for it.
pub fn marker(nonce: u64, n: usize) -> String {
    format!("modelmuxmedia{nonce:016x}n{n}x")
}

/// One piece of an upstream body whose media are spliced in as it is written: a range
/// of the built body's bytes, or the base64 of media `n`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Piece {
    Built(std::ops::Range<usize>),
    Media(usize),
}

/// The pieces of `body`, built with `markers[n]` in place of media `n`'s base64, in
/// order: every occurrence of a marker is that media (a URL used twice is sent twice).
pub fn pieces(body: &[u8], markers: &[String]) -> Vec<Piece> {
    let mut out = Vec::new();
    let (mut from, mut at) = (0, 0);
    while let Some(rest) = body.get(at..).filter(|r| !r.is_empty()) {
        let hit = markers.iter().position(|m| rest.starts_with(m.as_bytes()));
        let Some(n) = hit else {
            at = at.saturating_add(1);
            continue;
        };
        if from < at {
            out.push(Piece::Built(from..at));
        }
        out.push(Piece::Media(n));
        at = at.saturating_add(markers.get(n).map_or(1, String::len));
        from = at;
    }
    if from < body.len() {
        out.push(Piece::Built(from..body.len()));
    }
    out
}

/// The bytes of media read at a time while its base64 is written: a multiple of 3, so
/// that the chunks' base64 joins into the whole's.
const CHUNK: usize = 3 * 64 * 1024;

/// Writes the base64 of a `len`-byte media to `write`, reading it through `read(at,
/// buf)` a chunk at a time: neither the media nor its base64 is ever whole here (the
/// edge's media and body are JavaScript arrays, outside the worker's memory).
pub fn write_base64(
    len: usize,
    mut read: impl FnMut(usize, &mut [u8]),
    mut write: impl FnMut(&[u8]),
) {
    use base64::Engine;
    let mut raw = vec![0u8; CHUNK.min(len)];
    let mut text = vec![0u8; CHUNK / 3 * 4];
    let mut at = 0;
    while at < len {
        let n = len.saturating_sub(at).min(CHUNK);
        let Some(buf) = raw.get_mut(..n) else { return };
        read(at, buf);
        let k = base64::engine::general_purpose::STANDARD
            .encode_slice(&*buf, &mut text)
            .unwrap_or(0);
        write(text.get(..k).unwrap_or_default());
        at = at.saturating_add(n);
    }
}

/// The length of the base64 of `len` bytes.
pub fn base64_len(len: usize) -> usize {
    base64::encoded_len(len, true).unwrap_or(usize::MAX)
}

/// Whether the edge may fetch `url`, and if so the URL to fetch: the parsed and
/// re-serialised form, so that what is checked is exactly what `fetch` reads. Only
/// http(s) without credentials, to a host that can be public: IP literals in any
/// spelling the parser accepts are checked as addresses, and names that only resolve
/// inside a network (one label, `localhost`, `.local`, `.internal`, ...) are refused.
/// Public names that resolve to private addresses are stopped by Cloudflare's egress
/// when deployed (README "Media"). `allow` lists hosts (as `host` or `host:port`) let
/// through anyway: an operator's own media server, or the test harness's.
pub fn fetchable(url: &str, allow: &[String]) -> Result<String, &'static str> {
    let u = parse_http(url).ok_or("must be an http(s) URL")?;
    if !u.username().is_empty() || u.password().is_some() {
        return Err("must not carry credentials");
    }
    let public = match u.host() {
        Some(url::Host::Ipv4(v4)) => public_v4(v4),
        Some(url::Host::Ipv6(v6)) => public_v6(v6),
        Some(url::Host::Domain(name)) => public_name(name),
        None => false,
    };
    if public || listed(&u, allow) {
        Ok(u.into())
    } else {
        Err("is a private or local address")
    }
}

/// Whether `url`'s host (as `host` or `host:port`) is in `allow`.
pub fn is_listed(url: &str, allow: &[String]) -> bool {
    parse_http(url).is_some_and(|u| listed(&u, allow))
}

/// Whether `u`'s host (as `host` or `host:port`) is in `allow`.
fn listed(u: &url::Url, allow: &[String]) -> bool {
    let host = u.host_str().unwrap_or_default();
    let port = u.port_or_known_default().unwrap_or_default();
    allow.iter().any(|a| {
        a.eq_ignore_ascii_case(host)
            || a.rsplit_once(':').is_some_and(|(h, p)| {
                h.eq_ignore_ascii_case(host) && p.parse::<u16>().ok() == Some(port)
            })
    })
}

/// For a `url` (as [`fetchable`] gave it) whose host is a name, which only the network
/// can tell the address of (it may resolve to a private one): whether the operator
/// listed it in `allow`. `None` for an address.
pub fn named_host(url: &str, allow: &[String]) -> Option<bool> {
    let u = parse_http(url)?;
    matches!(u.host(), Some(url::Host::Domain(_))).then(|| listed(&u, allow))
}

/// Suffixes (and names) that never resolve on the public Internet: special-use names
/// (RFC 6761, 6762, 8375, 9476), `.internal` (ICANN's private TLD) and the ones routers
/// and companies use inside their networks.
const LOCAL_SUFFIXES: &[&str] = &[
    "localhost",
    "local",
    "internal",
    "arpa",
    "test",
    "invalid",
    "example",
    "onion",
    "alt",
    "lan",
    "home",
    "corp",
    "intranet",
    "private",
    "localdomain",
    "domain",
    "workgroup",
];

/// A host name (lower case, as the parser gives it) that can be public: at least two
/// labels, a top-level label of letters (or an IDN's `xn--`), none of [`LOCAL_SUFFIXES`].
fn public_name(name: &str) -> bool {
    let name = name.trim_end_matches('.');
    let Some((rest, tld)) = name.rsplit_once('.') else {
        return false;
    };
    let tld_ok = tld.starts_with("xn--") || tld.bytes().all(|b| b.is_ascii_alphabetic());
    !rest.is_empty()
        && !tld.is_empty()
        && tld_ok
        && !LOCAL_SUFFIXES
            .iter()
            .any(|s| name == *s || name.strip_suffix(s).is_some_and(|head| head.ends_with('.')))
}

fn public_v4(ip: std::net::Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    !(ip.is_private()
        || ip.is_loopback()
        || ip.is_link_local()
        || ip.is_unspecified()
        || ip.is_broadcast()
        || ip.is_documentation()
        || ip.is_multicast()
        || a == 0
        || a >= 240
        || (a == 100 && (64..128).contains(&b))
        || (a == 192 && b == 0 && c == 0)
        || (a == 198 && (b == 18 || b == 19)))
}

fn public_v6(ip: std::net::Ipv6Addr) -> bool {
    // IPv4-mapped (`::ffff:a.b.c.d`) and IPv4-compatible (`::a.b.c.d`, which also
    // covers `::1` and `::` as 0.0.0.1 and 0.0.0.0) are their IPv4 address.
    if let Some(v4) = ip.to_ipv4() {
        return public_v4(v4);
    }
    let [s0, s1, s2, s3, ..] = ip.segments();
    if s0 == 0x2002 {
        // 6to4: the IPv4 address is the next 32 bits.
        let [a, b] = s1.to_be_bytes();
        let [c, d] = s2.to_be_bytes();
        return public_v4(std::net::Ipv4Addr::new(a, b, c, d));
    }
    !(ip.is_multicast()
        || (s0 & 0xfe00) == 0xfc00 // unique local
        || (s0 & 0xffc0) == 0xfe80 // link-local
        || (s0 & 0xffc0) == 0xfec0 // site-local (deprecated, still routed inside)
        || (s0 == 0x2001 && s1 < 0x0200) // IETF protocol assignments, Teredo
        || (s0 == 0x2001 && s1 == 0x0db8) // documentation
        || (s0 & 0xfff0) == 0x3ff0 // documentation (3fff::/20)
        || (s0 == 0x0064 && s1 == 0xff9b) // NAT64
        || (s0 == 0x0100 && s1 == 0 && s2 == 0 && s3 == 0)) // discard-only
}

#[cfg(test)]
mod tests;
