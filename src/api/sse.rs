//! Server-sent events: an incremental parser for upstream streams (bytes may arrive
//! split anywhere, even inside a UTF-8 character) and the encoder for our own.

use serde::Serialize;

/// One parsed event: its `event:` name (if any) and its `data:` lines joined by `\n`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SseEvent {
    pub event: Option<String>,
    pub data: String,
}

/// Feeds on raw bytes, yields whole events. Comments and `id:`/`retry:` are skipped.
#[derive(Debug, Default)]
pub struct SseParser {
    buf: Vec<u8>,
    event: Option<String>,
    data: Option<String>,
}

/// An upstream that sends a single line longer than this is broken or hostile.
const MAX_LINE: usize = 8 * 1024 * 1024;

impl SseParser {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds bytes; returns the events they complete. Errors on absurdly long lines.
    /// Whole lines are read where they lie (in `bytes`, or after what an earlier call
    /// left unfinished); only an unfinished last line is kept.
    pub fn feed(&mut self, bytes: &[u8]) -> Result<Vec<SseEvent>, String> {
        let mut out = Vec::new();
        let mut rest = bytes;
        if !self.buf.is_empty() {
            // Finish the line an earlier call left unfinished.
            let Some(pos) = rest.iter().position(|&b| b == b'\n') else {
                self.buf.extend_from_slice(rest);
                return self.check_len().map(|()| out);
            };
            let (head, tail) = rest.split_at(pos);
            let mut line = std::mem::take(&mut self.buf);
            line.extend_from_slice(head);
            self.take_line(&line, &mut out);
            rest = tail.get(1..).unwrap_or_default();
        }
        while let Some(pos) = rest.iter().position(|&b| b == b'\n') {
            let (line, tail) = rest.split_at(pos);
            self.take_line(line, &mut out);
            rest = tail.get(1..).unwrap_or_default();
        }
        self.buf.extend_from_slice(rest);
        self.check_len().map(|()| out)
    }

    fn check_len(&self) -> Result<(), String> {
        if self.buf.len() > MAX_LINE {
            return Err("SSE line too long".into());
        }
        Ok(())
    }

    /// One whole line (without its `\n`; a `\r` before it is dropped).
    fn take_line(&mut self, line: &[u8], out: &mut Vec<SseEvent>) {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        // The fast check first: the lossy one walks the bytes in slower steps.
        let text = match std::str::from_utf8(line) {
            Ok(t) => std::borrow::Cow::Borrowed(t),
            Err(_) => String::from_utf8_lossy(line),
        };
        if let Some(ev) = self.line(&text) {
            out.push(ev);
        }
    }

    /// Ends the stream: an event not yet closed by a blank line is still delivered
    /// (many servers omit the final blank line).
    pub fn finish(&mut self) -> Option<SseEvent> {
        if !self.buf.is_empty() {
            let rest = std::mem::take(&mut self.buf);
            let line = String::from_utf8_lossy(&rest)
                .trim_end_matches('\r')
                .to_string();
            if let Some(ev) = self.line(&line) {
                return Some(ev);
            }
        }
        self.dispatch()
    }

    fn line(&mut self, line: &str) -> Option<SseEvent> {
        if line.is_empty() {
            return self.dispatch();
        }
        if line.starts_with(':') {
            return None;
        }
        let (field, value) = match line.split_once(':') {
            Some((f, v)) => (f, v.strip_prefix(' ').unwrap_or(v)),
            None => (line, ""),
        };
        match field {
            "data" => match &mut self.data {
                Some(d) => {
                    d.push('\n');
                    d.push_str(value);
                }
                None => self.data = Some(value.to_string()),
            },
            "event" => self.event = Some(value.to_string()),
            _ => {}
        }
        None
    }

    fn dispatch(&mut self) -> Option<SseEvent> {
        let event = self.event.take();
        self.data.take().map(|data| SseEvent { event, data })
    }

    /// Whether bytes of an unfinished event are buffered.
    pub fn has_partial(&self) -> bool {
        !self.buf.is_empty() || self.data.is_some()
    }
}

/// `data: <json>\n\n`
pub fn encode_data<T: Serialize>(value: &T) -> Vec<u8> {
    let mut out = Vec::new();
    write_data(&mut out, value);
    out
}

/// `data: <json>\n\n`, appended to `out`.
pub fn write_data<T: Serialize>(out: &mut Vec<u8>, value: &T) {
    out.extend_from_slice(b"data: ");
    let mark = out.len();
    // Serializing our own types cannot fail; fall back to an empty object if it did.
    if serde_json::to_writer(&mut *out, value).is_err() {
        out.truncate(mark);
        out.extend_from_slice(b"{}");
    }
    out.extend_from_slice(b"\n\n");
}

pub const DONE: &[u8] = b"data: [DONE]\n\n";

/// A comment line that keeps idle connections open; clients ignore it.
pub const KEEPALIVE: &[u8] = b": OPENROUTER PROCESSING\n\n";

#[cfg(test)]
mod tests {
    use super::*;

    const STREAM: &str = "event: message_start\r\ndata: {\"a\":\"é\"}\r\n\r\n: ping\n\ndata: line1\ndata: line2\n\nid: 7\ndata: [DONE]\n\n";

    fn parse_split_at(split: usize) -> Vec<SseEvent> {
        let bytes = STREAM.as_bytes();
        let mut p = SseParser::new();
        let mut out = p.feed(&bytes[..split]).unwrap();
        out.extend(p.feed(&bytes[split..]).unwrap());
        out.extend(p.finish());
        out
    }

    #[test]
    fn same_events_at_every_split() {
        let whole = parse_split_at(0);
        assert_eq!(
            whole,
            vec![
                SseEvent {
                    event: Some("message_start".into()),
                    data: "{\"a\":\"é\"}".into()
                },
                SseEvent {
                    event: None,
                    data: "line1\nline2".into()
                },
                SseEvent {
                    event: None,
                    data: "[DONE]".into()
                },
            ]
        );
        for i in 0..=STREAM.len() {
            assert_eq!(parse_split_at(i), whole, "split at {i}");
        }
    }

    #[test]
    fn byte_by_byte() {
        let mut p = SseParser::new();
        let mut out = Vec::new();
        for b in STREAM.as_bytes() {
            out.extend(p.feed(&[*b]).unwrap());
        }
        assert_eq!(out.len(), 3);
        assert!(!p.has_partial());
    }

    #[test]
    fn unterminated_last_event_is_delivered() {
        let mut p = SseParser::new();
        assert!(p.feed(b"data: {\"x\":1}").unwrap().is_empty());
        assert!(p.has_partial());
        assert_eq!(p.finish().unwrap().data, "{\"x\":1}");
    }

    #[test]
    fn encodes() {
        assert_eq!(
            encode_data(&serde_json::json!({"a": 1})),
            b"data: {\"a\":1}\n\n"
        );
    }
}
