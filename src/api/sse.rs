//! Server-sent events: an incremental parser for upstream streams (bytes may arrive
//! split anywhere, even inside a UTF-8 character) and the encoder for our own.

use serde::Serialize;

/// Why feeding a stream stopped: a line longer than any sane upstream sends, or the
/// error the caller's handler returned for an event.
#[derive(Debug, PartialEq)]
pub enum SseError<E> {
    LineTooLong,
    Event(E),
}

/// Feeds on raw bytes and hands each whole event's data (its `data:` lines joined by
/// `\n`) to a handler. Comments and `event:`/`id:`/`retry:` lines are skipped: every
/// upstream family says in the data itself what an event is.
#[derive(Debug, Default)]
pub struct SseParser {
    /// An unfinished last line, kept until the bytes that end it arrive.
    buf: Vec<u8>,
    /// The data of the event being read (reused from event to event).
    data: String,
    has_data: bool,
}

/// An upstream that sends a single line longer than this is broken or hostile.
const MAX_LINE: usize = 8 * 1024 * 1024;

impl SseParser {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds bytes; `on_data` gets the data of each event they complete, in order. Whole
    /// lines are read where they lie; the common event, one `data:` line and the blank
    /// line after it in the same piece, is handed over without a copy.
    pub fn feed_with<E>(
        &mut self,
        bytes: &[u8],
        mut on_data: impl FnMut(&str) -> Result<(), E>,
    ) -> Result<(), SseError<E>> {
        let mut rest = bytes;
        if !self.buf.is_empty() {
            // Finish the line an earlier call left unfinished.
            let Some(pos) = memchr::memchr(b'\n', rest) else {
                self.buf.extend_from_slice(rest);
                return self.check_len();
            };
            let (head, tail) = rest.split_at(pos);
            let mut line = std::mem::take(&mut self.buf);
            line.extend_from_slice(head);
            self.line(&line, &mut on_data)?;
            line.clear();
            self.buf = line;
            rest = tail.get(1..).unwrap_or_default();
        }
        while let Some(pos) = memchr::memchr(b'\n', rest) {
            let (line, tail) = rest.split_at(pos);
            rest = tail.get(1..).unwrap_or_default();
            if !self.has_data {
                if let Some(value) = line.strip_prefix(b"data:") {
                    // A lone data line ended by a blank one: the event is this line.
                    let blank = match rest {
                        [b'\n', ..] => Some(1),
                        [b'\r', b'\n', ..] => Some(2),
                        _ => None,
                    };
                    if let Some(skip) = blank {
                        let value = value.strip_suffix(b"\r").unwrap_or(value);
                        let value = value.strip_prefix(b" ").unwrap_or(value);
                        rest = rest.get(skip..).unwrap_or_default();
                        let text = text_of(value);
                        on_data(&text).map_err(SseError::Event)?;
                        continue;
                    }
                }
            }
            self.line(line, &mut on_data)?;
        }
        self.buf.extend_from_slice(rest);
        self.check_len()
    }

    /// [`SseParser::feed_with`], collecting the events' data.
    pub fn feed(&mut self, bytes: &[u8]) -> Result<Vec<String>, String> {
        let mut out = Vec::new();
        self.feed_with(bytes, |d| {
            out.push(d.to_string());
            Ok::<(), ()>(())
        })
        .map_err(|_| "SSE line too long".to_string())?;
        Ok(out)
    }

    fn check_len<E>(&self) -> Result<(), SseError<E>> {
        if self.buf.len() > MAX_LINE || self.data.len() > MAX_LINE {
            return Err(SseError::LineTooLong);
        }
        Ok(())
    }

    /// One whole line (without its `\n`; a `\r` before it is dropped).
    fn line<E>(
        &mut self,
        line: &[u8],
        on_data: &mut impl FnMut(&str) -> Result<(), E>,
    ) -> Result<(), SseError<E>> {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            return self.dispatch(on_data);
        }
        let (field, value) = match line.iter().position(|&b| b == b':') {
            Some(0) => return Ok(()), // a comment
            Some(i) => {
                let (f, v) = line.split_at(i);
                let v = v.get(1..).unwrap_or_default();
                (f, v.strip_prefix(b" ").unwrap_or(v))
            }
            None => (line, &b""[..]),
        };
        if field == b"data" {
            if self.has_data {
                self.data.push('\n');
            }
            self.data.push_str(&text_of(value));
            self.has_data = true;
        }
        self.check_len()
    }

    fn dispatch<E>(
        &mut self,
        on_data: &mut impl FnMut(&str) -> Result<(), E>,
    ) -> Result<(), SseError<E>> {
        if !std::mem::take(&mut self.has_data) {
            return Ok(());
        }
        let res = on_data(&self.data);
        self.data.clear();
        res.map_err(SseError::Event)
    }

    /// Ends the stream: an event not yet closed by a blank line is still delivered
    /// (many servers omit the final blank line).
    pub fn finish_with<E>(
        &mut self,
        mut on_data: impl FnMut(&str) -> Result<(), E>,
    ) -> Result<(), SseError<E>> {
        if !self.buf.is_empty() {
            let rest = std::mem::take(&mut self.buf);
            self.line(&rest, &mut on_data)?;
        }
        self.dispatch(&mut on_data)
    }

    /// [`SseParser::finish_with`], returning the last event's data if there was one.
    pub fn finish(&mut self) -> Option<String> {
        let mut last = None;
        let _ = self.finish_with(|d| {
            last = Some(d.to_string());
            Ok::<(), ()>(())
        });
        last
    }

    /// Whether bytes of an unfinished event are buffered.
    pub fn has_partial(&self) -> bool {
        !self.buf.is_empty() || self.has_data
    }
}

/// A line's text; invalid UTF-8 (a broken upstream) becomes U+FFFD. The fast check
/// first: the lossy one walks the bytes in slower steps.
fn text_of(bytes: &[u8]) -> std::borrow::Cow<'_, str> {
    match std::str::from_utf8(bytes) {
        Ok(t) => std::borrow::Cow::Borrowed(t),
        Err(_) => String::from_utf8_lossy(bytes),
    }
}

/// `data: <json>\n\n`
pub fn encode_data<T: Serialize>(value: &T) -> Vec<u8> {
    let mut out = b"data: ".to_vec();
    let mark = out.len();
    // Serializing our own types cannot fail; fall back to an empty object if it did.
    if serde_json::to_writer(&mut out, value).is_err() {
        out.truncate(mark);
        out.extend_from_slice(b"{}");
    }
    out.extend_from_slice(b"\n\n");
    out
}

pub const DONE: &[u8] = b"data: [DONE]\n\n";

/// A comment line that keeps idle connections open; clients ignore it.
pub const KEEPALIVE: &[u8] = b": OPENROUTER PROCESSING\n\n";

#[cfg(test)]
mod tests {
    use super::*;

    const STREAM: &str = "event: message_start\r\ndata: {\"a\":\"é\"}\r\n\r\n: ping\n\ndata: line1\ndata: line2\n\nid: 7\ndata: [DONE]\n\n";

    fn parse_split_at(split: usize) -> Vec<String> {
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
        assert_eq!(whole, ["{\"a\":\"é\"}", "line1\nline2", "[DONE]"]);
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
    fn a_handler_error_stops_the_feed_after_the_events_before_it() {
        let mut p = SseParser::new();
        let mut seen = Vec::new();
        let res = p.feed_with(b"data: 1\n\ndata: 2\n\ndata: 3\n\n", |d| {
            seen.push(d.to_string());
            if d == "2" {
                Err("stop")
            } else {
                Ok(())
            }
        });
        assert_eq!(res, Err(SseError::Event("stop")));
        assert_eq!(seen, ["1", "2"]);
    }

    #[test]
    fn absurd_lines_are_refused() {
        let mut p = SseParser::new();
        let long = vec![b'x'; MAX_LINE + 1];
        assert!(p.feed(&long).is_err());
        let mut p = SseParser::new();
        let mut many = Vec::new();
        for _ in 0..=MAX_LINE / 1024 {
            many.extend_from_slice(b"data: ");
            many.extend_from_slice(&[b'y'; 1024]);
            many.push(b'\n');
        }
        assert!(
            p.feed(&many).is_err(),
            "nor may one event's data grow without end"
        );
    }

    #[test]
    fn unterminated_last_event_is_delivered() {
        let mut p = SseParser::new();
        assert!(p.feed(b"data: {\"x\":1}").unwrap().is_empty());
        assert!(p.has_partial());
        assert_eq!(p.finish().unwrap(), "{\"x\":1}");
    }

    #[test]
    fn encodes() {
        assert_eq!(
            encode_data(&serde_json::json!({"a": 1})),
            b"data: {\"a\":1}\n\n"
        );
    }
}
