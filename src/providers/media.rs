//! The media parts of a prompt (`image_url`, `file`, `input_audio`, `video_url`) in one
//! shape, for the families that take them in their own forms; and the remote URLs a
//! family cannot fetch itself, which the edge fetches and inlines first (only http(s),
//! never a private or local address).

use std::collections::HashMap;

use serde_json::Value;

use super::parse_data_url;
use crate::api::{ChatRequest, Content, ContentPart};

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
        let str_at =
            |obj: &str, key: &str| -> Option<&'a str> { part.extra.get(obj)?.get(key)?.as_str() };
        match part.kind.as_str() {
            "image_url" => {
                let url = part.image_url.as_ref()?.url.as_str();
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
            "file" => {
                let data = str_at("file", "file_data")?;
                let filename = str_at("file", "filename");
                let (mime, source) = url_or_data(data);
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
            "input_audio" => Some(Media {
                kind: Kind::Audio,
                mime: audio_mime(str_at("input_audio", "format").unwrap_or("wav")),
                source: Source::Inline(str_at("input_audio", "data")?),
                filename: None,
            }),
            "video_url" => {
                let url = str_at("video_url", "url")?;
                let (mime, source) = url_or_data(url);
                let mime = mime.or_else(|| mime_from_name(url)).unwrap_or("video/mp4");
                Some(Media {
                    kind: Kind::Video,
                    mime: mime.to_string(),
                    source,
                    filename: None,
                })
            }
            _ => None,
        }
    }
}

/// A YouTube video URL, which Gemini reads itself.
pub fn is_youtube(url: &str) -> bool {
    host_of(url).is_some_and(|h| {
        let h = h.to_ascii_lowercase();
        h == "youtu.be" || h == "youtube.com" || h.ends_with(".youtube.com")
    })
}

/// A file uploaded to Gemini's Files API, which Gemini reads itself.
pub fn is_gemini_file(url: &str) -> bool {
    host_of(url).is_some_and(|h| h.eq_ignore_ascii_case("generativelanguage.googleapis.com"))
        && url.contains("/files/")
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

/// The http(s) media URLs in `req` that Gemini cannot read itself (anything but YouTube
/// videos and its own uploaded files), each URL once.
pub fn remote_for_gemini(req: &ChatRequest) -> Vec<Remote> {
    let mut out: Vec<Remote> = Vec::new();
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
            if is_youtube(url) || is_gemini_file(url) || out.iter().any(|r| r.url == url) {
                continue;
            }
            let field = match p.kind.as_str() {
                "file" => "file.file_data",
                "video_url" => "video_url.url",
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

/// `req` with each fetched URL replaced by a data URL of its bytes: `fetched` maps a URL
/// to (media type, base64 data).
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
            if let Some(u) = p.image_url.as_mut() {
                if let Some(d) = data_url(&u.url) {
                    u.url = d;
                }
            }
            for (obj, key) in [("file", "file_data"), ("video_url", "url")] {
                let Some(Value::Object(o)) = p.extra.get_mut(obj) else {
                    continue;
                };
                if let Some(d) = o.get(key).and_then(Value::as_str).and_then(data_url) {
                    o.insert(key.to_string(), Value::String(d));
                }
            }
        }
    }
    out
}

/// The host of an http(s) URL (without user info, port or brackets), or `None` for
/// any other scheme.
fn host_of(url: &str) -> Option<&str> {
    let lower = url.get(..8).unwrap_or(url).to_ascii_lowercase();
    let rest = if lower.starts_with("https://") {
        url.get(8..)?
    } else if lower.starts_with("http://") {
        url.get(7..)?
    } else {
        return None;
    };
    let authority = rest.split(['/', '?', '#', '\\']).next()?;
    let host_port = authority.rsplit('@').next()?;
    let host = if let Some(v6) = host_port.strip_prefix('[') {
        v6.split(']').next()?
    } else {
        host_port.split(':').next()?
    };
    (!host.is_empty()).then_some(host)
}

/// Whether the edge may fetch `url`: http(s) to a public host. Local names, private,
/// loopback, link-local and other special addresses are refused, and so is any host
/// that is all numbers (`2130706433`, `0x7f.1`: URL parsers read those as IPv4
/// addresses). `allow` lists hosts (as `host` or `host:port`) let through anyway: an
/// operator's own media server, or the test harness's.
pub fn fetchable(url: &str, allow: &[String]) -> Result<(), &'static str> {
    let host = host_of(url).ok_or("must be an http(s) URL")?;
    let authority = url.split(['/', '?', '#', '\\']).nth(2).unwrap_or_default();
    if authority.contains('@') {
        return Err("must not carry credentials");
    }
    if allow
        .iter()
        .any(|a| a.eq_ignore_ascii_case(host) || a.eq_ignore_ascii_case(authority))
    {
        return Ok(());
    }
    let lower = host.trim_end_matches('.').to_ascii_lowercase();
    let private = "is a private or local address";
    if lower == "localhost"
        || [".localhost", ".local", ".internal", ".home.arpa", ".lan"]
            .iter()
            .any(|s| lower.ends_with(s))
        || !lower.contains('.') && !lower.contains(':')
    {
        return Err(private);
    }
    if let Ok(v6) = lower.parse::<std::net::Ipv6Addr>() {
        return match v6.to_ipv4_mapped() {
            Some(v4) if public_v4(v4) => Ok(()),
            Some(_) => Err(private),
            None if public_v6(v6) => Ok(()),
            None => Err(private),
        };
    }
    let last = lower.rsplit('.').next().unwrap_or_default();
    if last.starts_with(|c: char| c.is_ascii_digit()) || last.starts_with("0x") {
        return match lower.parse::<std::net::Ipv4Addr>() {
            Ok(v4) if public_v4(v4) => Ok(()),
            _ => Err(private),
        };
    }
    Ok(())
}

fn public_v4(ip: std::net::Ipv4Addr) -> bool {
    let [a, b, ..] = ip.octets();
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
        || (a == 198 && (b == 18 || b == 19)))
}

fn public_v6(ip: std::net::Ipv6Addr) -> bool {
    let first = ip.segments().first().copied().unwrap_or_default();
    !(ip.is_loopback()
        || ip.is_unspecified()
        || ip.is_multicast()
        || (first & 0xfe00) == 0xfc00
        || (first & 0xffc0) == 0xfe80
        || first == 0x2001 && ip.segments().get(1) == Some(&0x0db8)
        || first == 0x64 && ip.segments().get(1) == Some(&0xff9b))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn part(v: Value) -> ContentPart {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn parts_as_media() {
        let p =
            part(json!({"type": "image_url", "image_url": {"url": "data:image/png;base64,AAA"}}));
        let m = Media::of(&p).unwrap();
        assert_eq!(
            (m.kind, m.mime.as_str(), m.source),
            (Kind::Image, "image/png", Source::Inline("AAA"))
        );
        let p = part(json!({"type": "image_url", "image_url": {"url": "https://x.test/a.PDF"}}));
        assert_eq!(Media::of(&p).unwrap().kind, Kind::File);
        let p = part(
            json!({"type": "file", "file": {"filename": "notes.txt", "file_data": "data:application/octet-stream;base64,aGk="}}),
        );
        let m = Media::of(&p).unwrap();
        assert_eq!(
            (m.kind, m.mime.as_str(), m.filename),
            (Kind::File, "text/plain", Some("notes.txt"))
        );
        let p = part(json!({"type": "file", "file": {"file_data": "https://x.test/paper"}}));
        assert_eq!(Media::of(&p).unwrap().mime, "application/pdf");
        let p = part(json!({"type": "file", "file": {"file_id": "file-abc"}}));
        assert_eq!(Media::of(&p), None);
        let p =
            part(json!({"type": "input_audio", "input_audio": {"data": "UklG", "format": "mp3"}}));
        let m = Media::of(&p).unwrap();
        assert_eq!(
            (m.kind, m.mime.as_str(), m.source),
            (Kind::Audio, "audio/mp3", Source::Inline("UklG"))
        );
        let p =
            part(json!({"type": "video_url", "video_url": {"url": "https://x.test/clip.webm"}}));
        let m = Media::of(&p).unwrap();
        assert_eq!((m.kind, m.mime.as_str()), (Kind::Video, "video/webm"));
        assert_eq!(Media::of(&ContentPart::text("hi")), None);
    }

    #[test]
    fn remote_urls_for_gemini_and_their_inlining() {
        let req: ChatRequest = serde_json::from_value(json!({"model": "m", "messages": [
        {"role": "user", "content": [
            {"type": "text", "text": "look"},
            {"type": "image_url", "image_url": {"url": "https://img.test/cat.png"}},
            {"type": "video_url", "video_url": {"url": "https://www.youtube.com/watch?v=x"}},
            {"type": "file", "file": {"filename": "a.pdf", "file_data": "https://docs.test/a.pdf"}},
            {"type": "image_url", "image_url": {"url": "https://img.test/cat.png"}},
            {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAA"}}
        ]}]}))
        .unwrap();
        let remote = remote_for_gemini(&req);
        assert_eq!(
            remote,
            vec![
                Remote {
                    path: "messages[0].content[1].image_url.url".into(),
                    url: "https://img.test/cat.png".into(),
                    mime: "image/png".into()
                },
                Remote {
                    path: "messages[0].content[3].file.file_data".into(),
                    url: "https://docs.test/a.pdf".into(),
                    mime: "application/pdf".into()
                },
            ]
        );
        let fetched = HashMap::from([
            (
                "https://img.test/cat.png".to_string(),
                ("image/png".to_string(), "iVBO".to_string()),
            ),
            (
                "https://docs.test/a.pdf".to_string(),
                ("application/pdf".to_string(), "JVBE".to_string()),
            ),
        ]);
        let done = inline(&req, &fetched);
        let v = serde_json::to_value(&done).unwrap();
        let parts = &v["messages"][0]["content"];
        assert_eq!(parts[1]["image_url"]["url"], "data:image/png;base64,iVBO");
        assert_eq!(
            parts[3]["file"]["file_data"],
            "data:application/pdf;base64,JVBE"
        );
        assert_eq!(parts[3]["file"]["filename"], "a.pdf");
        assert_eq!(parts[4]["image_url"]["url"], "data:image/png;base64,iVBO");
        assert_eq!(
            parts[2]["video_url"]["url"],
            "https://www.youtube.com/watch?v=x"
        );
        assert!(remote_for_gemini(&done).is_empty());
    }

    #[test]
    fn only_public_http_hosts_are_fetched() {
        let ok = |u: &str| fetchable(u, &[]).is_ok();
        assert!(ok("https://upload.wikimedia.org/a.png"));
        assert!(ok("http://93.184.216.34/x.png"));
        assert!(ok("https://[2606:4700::1111]/x"));
        for bad in [
            "ftp://example.com/x",
            "file:///etc/passwd",
            "http://localhost:8080/x",
            "http://127.0.0.1/x",
            "http://10.1.2.3/x",
            "http://172.16.0.1/x",
            "http://192.168.1.1/x",
            "http://169.254.169.254/latest/meta-data",
            "http://100.64.0.1/x",
            "http://0.0.0.0/x",
            "http://[::1]/x",
            "http://[fd00::1]/x",
            "http://[fe80::1]/x",
            "http://[::ffff:127.0.0.1]/x",
            "http://2130706433/x",
            "http://0x7f.1/x",
            "http://127.1/x",
            "http://metadata.google.internal/x",
            "http://printer.local/x",
            "http://intranet/x",
            "http://user:pw@example.com/x",
            "https://example.com@127.0.0.1/x",
        ] {
            assert!(!ok(bad), "{bad} should be refused");
        }
        let allow = vec!["127.0.0.1:9000".to_string()];
        assert!(fetchable("http://127.0.0.1:9000/cat.png", &allow).is_ok());
        assert!(fetchable("http://127.0.0.1:9001/cat.png", &allow).is_err());
        assert!(is_youtube("https://youtu.be/abc") && !is_youtube("https://notyoutube.com/x"));
        assert!(is_gemini_file(
            "https://generativelanguage.googleapis.com/v1beta/files/abc"
        ));
    }
}
