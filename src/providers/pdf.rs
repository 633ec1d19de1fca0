//! The text of a PDF, read at the edge for models that cannot read files (the
//! `file-parser` plugin's `pdf-text` engine). Pure and bounded: the file's objects are
//! found by scanning for `N G obj`, the pages' content streams (`/Contents`, in file
//! order) inflated when FlateDecode (`miniz_oxide`, capped), and their text-showing
//! operators read by [`content`]. Strings are read as single-byte WinAnsi text; the
//! two-byte strings of Identity-H fonts are not mapped (their control bytes dropped).
//! A file with no page objects (its pages in compressed object streams) has its
//! content-like streams read instead. Never panics, whatever the bytes.

mod content;
pub mod pages;

use memchr::memmem;

/// The largest PDF read, in bytes.
pub const MAX_PDF_BYTES: usize = 32 << 20;
/// The most pages read; later pages are left out (the text says it was cut).
pub const MAX_PAGES: usize = 1_000;
/// The most characters of text kept.
pub const MAX_TEXT_CHARS: usize = 400_000;
/// The most bytes one stream inflates to.
const MAX_STREAM_BYTES: usize = 16 << 20;
/// The most bytes all of a file's streams inflate to together.
const MAX_INFLATED_BYTES: usize = 64 << 20;
/// The most objects looked at.
const MAX_OBJECTS: usize = 200_000;

/// Why a PDF's text could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PdfError {
    /// The bytes do not start with `%PDF-` (within the first KiB).
    NotPdf,
    /// The file is encrypted (`/Encrypt`): its streams cannot be read without a key.
    Encrypted,
    /// Over [`MAX_PDF_BYTES`].
    TooLarge,
    /// No page content the reader could find.
    Unreadable,
}

impl PdfError {
    /// Says what is wrong, for a 400's message.
    pub fn message(self) -> &'static str {
        match self {
            PdfError::NotPdf => "is not a PDF",
            PdfError::Encrypted => "is an encrypted PDF, whose text cannot be read",
            PdfError::TooLarge => "is larger than the PDF reader reads (32 MiB)",
            PdfError::Unreadable => "is a PDF whose pages could not be read",
        }
    }
}

/// A PDF's text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PdfText {
    /// The pages' text, a blank line between pages.
    pub text: String,
    /// How many pages (or content streams) were read.
    pub pages: usize,
    /// Whether text was left out ([`MAX_PAGES`], [`MAX_TEXT_CHARS`], inflation caps).
    pub truncated: bool,
}

/// One `N G obj ... endobj`: its number, its dictionary's bytes and its stream's.
struct Object<'a> {
    num: u64,
    dict: &'a [u8],
    stream: Option<&'a [u8]>,
}

/// The text of the PDF `bytes`.
pub fn extract(bytes: &[u8]) -> Result<PdfText, PdfError> {
    if bytes.len() > MAX_PDF_BYTES {
        return Err(PdfError::TooLarge);
    }
    let head = bytes.get(..bytes.len().min(1024)).unwrap_or_default();
    if memmem::find(head, b"%PDF-").is_none() {
        return Err(PdfError::NotPdf);
    }
    if memmem::find(bytes, b"/Encrypt").is_some() {
        return Err(PdfError::Encrypted);
    }
    let objects = objects(bytes);
    // By number: a later object of a number (an incremental update) replaces the earlier.
    let by_number: std::collections::HashMap<u64, &Object> =
        objects.iter().map(|o| (o.num, o)).collect();
    let mut streams: Vec<(&[u8], &[u8])> = Vec::new();
    let latest = |o: &&Object| by_number.get(&o.num).is_some_and(|l| std::ptr::eq(*l, *o));
    for o in objects.iter().filter(latest).filter(|o| is_page(o.dict)) {
        for n in contents(o.dict) {
            let found = by_number.get(&n);
            if let Some((dict, Some(data))) = found.map(|c| (c.dict, c.stream)) {
                streams.push((dict, data));
            }
        }
    }
    if streams.is_empty() {
        streams = objects
            .iter()
            .filter(|o| looks_like_content(o.dict))
            .filter_map(|o| Some((o.dict, o.stream?)))
            .collect();
    }
    if streams.is_empty() {
        return Err(PdfError::Unreadable);
    }
    Ok(read_streams(&streams))
}

/// The text of the content streams `streams` (each with its dictionary, for its filter).
fn read_streams(streams: &[(&[u8], &[u8])]) -> PdfText {
    let mut out = content::Text::new(MAX_TEXT_CHARS);
    let mut budget = MAX_INFLATED_BYTES;
    let mut pages = 0usize;
    for (dict, s) in streams {
        if pages >= MAX_PAGES || out.full() {
            out.truncated = true;
            break;
        }
        let Some(data) = decode(dict, s, &mut budget, &mut out.truncated) else {
            continue;
        };
        if pages > 0 {
            out.page_break();
        }
        content::read(&data, &mut out);
        pages = pages.saturating_add(1);
    }
    let truncated = out.truncated;
    PdfText {
        text: out.finish(),
        pages,
        truncated,
    }
}

/// A stream's bytes with its filter undone: none, or FlateDecode (zlib, or raw
/// deflate); `None` for other filters or a stream that does not inflate.
fn decode(dict: &[u8], raw: &[u8], budget: &mut usize, truncated: &mut bool) -> Option<Vec<u8>> {
    let filters = filters(dict);
    match filters.as_slice() {
        [] => Some(raw.to_vec()),
        [f] if *f == b"FlateDecode" || *f == b"Fl" => {
            let limit = MAX_STREAM_BYTES.min(*budget);
            let data = miniz_oxide::inflate::decompress_to_vec_zlib_with_limit(raw, limit)
                .or_else(|_| miniz_oxide::inflate::decompress_to_vec_with_limit(raw, limit));
            match data {
                Ok(d) => {
                    *budget = budget.saturating_sub(d.len());
                    Some(d)
                }
                Err(e) => {
                    if e.status == miniz_oxide::inflate::TINFLStatus::HasMoreOutput {
                        *truncated = true;
                    }
                    None
                }
            }
        }
        _ => None,
    }
}

/// Every object of the file, in file order (at most [`MAX_OBJECTS`]).
fn objects(bytes: &[u8]) -> Vec<Object<'_>> {
    let mut out = Vec::new();
    let mut at = 0usize;
    while out.len() < MAX_OBJECTS {
        let Some(rest) = bytes.get(at..) else { break };
        let Some(found) = memmem::find(rest, b"obj") else {
            break;
        };
        let kw = at.saturating_add(found);
        let body = kw.saturating_add(3);
        at = body;
        let before = bytes.get(..kw).unwrap_or_default();
        let Some(num) = object_number(before) else {
            continue;
        };
        let tail = bytes.get(body..).unwrap_or_default();
        let end = memmem::find(tail, b"endobj").unwrap_or(tail.len());
        let head = tail.get(..end).unwrap_or_default();
        match find_stream_keyword(head) {
            Some(s) => {
                let dict = head.get(..s).unwrap_or_default();
                let data_start = skip_eol(tail, s.saturating_add(6));
                let data = stream_data(tail, data_start, dict);
                at = body.saturating_add(data_start).saturating_add(data.len());
                out.push(Object {
                    num,
                    dict,
                    stream: Some(data),
                });
            }
            None => {
                at = body.saturating_add(end);
                out.push(Object {
                    num,
                    dict: head,
                    stream: None,
                });
            }
        }
    }
    out
}

/// The object number of `N G obj`, read backwards from the bytes before `obj`.
fn object_number(before: &[u8]) -> Option<u64> {
    let rest = trim_end_ws(before)?;
    let (gen, rest) = split_digits_end(rest)?;
    if gen.is_empty() {
        return None;
    }
    let rest = trim_end_ws(rest)?;
    let (num, rest) = split_digits_end(rest)?;
    if num.is_empty() || rest.last().is_some_and(|b| !is_delim_or_ws(*b)) {
        return None;
    }
    std::str::from_utf8(num).ok()?.parse().ok()
}

/// `s` without the whitespace it ends with, `None` when it ends with none.
fn trim_end_ws(s: &[u8]) -> Option<&[u8]> {
    let keep = s
        .iter()
        .rposition(|b| !b.is_ascii_whitespace())
        .map_or(0, |i| i.saturating_add(1));
    (keep < s.len()).then(|| s.get(..keep)).flatten()
}

/// The digits `s` ends with, and what comes before them.
fn split_digits_end(s: &[u8]) -> Option<(&[u8], &[u8])> {
    let start = s
        .iter()
        .rposition(|b| !b.is_ascii_digit())
        .map_or(0, |i| i.saturating_add(1));
    Some((s.get(start..)?, s.get(..start)?))
}

fn is_delim_or_ws(b: u8) -> bool {
    b.is_ascii_whitespace() || b"()<>[]{}/%".contains(&b)
}

/// Where the `stream` keyword starts in an object's head (not `endstream`).
fn find_stream_keyword(head: &[u8]) -> Option<usize> {
    let mut from = 0usize;
    loop {
        let i = from.saturating_add(memmem::find(head.get(from..)?, b"stream")?);
        let prev = i.checked_sub(1).and_then(|p| head.get(p));
        if prev.is_none_or(|b| !b.is_ascii_alphabetic()) {
            return Some(i);
        }
        from = i.saturating_add(6);
    }
}

/// Past the end of line that follows `stream` (CRLF or LF; a lone CR is tolerated).
fn skip_eol(s: &[u8], at: usize) -> usize {
    match (s.get(at), s.get(at.saturating_add(1))) {
        (Some(b'\r'), Some(b'\n')) => at.saturating_add(2),
        (Some(b'\n' | b'\r'), _) => at.saturating_add(1),
        _ => at,
    }
}

/// A stream's bytes: `/Length` of them when that is a direct number followed by
/// `endstream`, else up to the next `endstream`.
fn stream_data<'a>(tail: &'a [u8], start: usize, dict: &[u8]) -> &'a [u8] {
    let rest = tail.get(start..).unwrap_or_default();
    if let Some(len) = direct_length(dict) {
        if let Some(data) = rest.get(..len) {
            let after = rest.get(len..).unwrap_or_default();
            let after = after
                .iter()
                .position(|b| !b.is_ascii_whitespace())
                .and_then(|i| after.get(i..))
                .unwrap_or_default();
            if after.starts_with(b"endstream") {
                return data;
            }
        }
    }
    let end = memmem::find(rest, b"endstream").unwrap_or(rest.len());
    let data = rest.get(..end).unwrap_or_default();
    match data {
        [d @ .., b'\r', b'\n'] | [d @ .., b'\n'] | [d @ .., b'\r'] => d,
        d => d,
    }
}

/// `/Length N` when N is a number (not `N G R`).
fn direct_length(dict: &[u8]) -> Option<usize> {
    let words = words_after(dict, b"/Length")?;
    let mut it = words
        .split(|b| b.is_ascii_whitespace())
        .filter(|w| !w.is_empty());
    let n = it.next()?;
    let next = it.next().unwrap_or_default();
    let then = it.next().unwrap_or_default();
    if next.iter().all(u8::is_ascii_digit) && !next.is_empty() && then.starts_with(b"R") {
        return None;
    }
    let digits: Vec<u8> = n.iter().copied().take_while(u8::is_ascii_digit).collect();
    std::str::from_utf8(&digits).ok()?.parse().ok()
}

/// The bytes after `key` (a name not followed by more name characters), to the dict's end.
fn words_after<'a>(dict: &'a [u8], key: &[u8]) -> Option<&'a [u8]> {
    let mut from = 0usize;
    loop {
        let i = from.saturating_add(memmem::find(dict.get(from..)?, key)?);
        let end = i.saturating_add(key.len());
        if dict.get(end).is_none_or(|b| is_delim_or_ws(*b)) {
            return dict.get(end..);
        }
        from = end;
    }
}

/// Whether a dictionary is a page's (`/Type /Page`, not `/Pages`).
fn is_page(dict: &[u8]) -> bool {
    words_after(dict, b"/Type").is_some_and(|rest| {
        let rest = rest
            .iter()
            .position(|b| !b.is_ascii_whitespace())
            .and_then(|i| rest.get(i..));
        rest.is_some_and(|r| r.starts_with(b"/Page") && r.get(5).is_none_or(|b| is_delim_or_ws(*b)))
    })
}

/// The value of `key` in `dict` that is one item or an array of them: the array's
/// inside (or the rest of the dictionary after the key), and whether it was one item.
fn one_or_array<'a>(dict: &'a [u8], key: &[u8]) -> Option<(&'a [u8], bool)> {
    let rest = words_after(dict, key)?;
    let rest = rest
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .and_then(|i| rest.get(i..))
        .unwrap_or_default();
    Some(match rest.strip_prefix(b"[") {
        Some(r) => (
            r.get(..r.iter().position(|b| *b == b']').unwrap_or(r.len()))
                .unwrap_or_default(),
            false,
        ),
        None => (rest, true),
    })
}

/// The object numbers of a page's `/Contents` (`N G R` or an array of them).
fn contents(dict: &[u8]) -> Vec<u64> {
    let Some((list, single)) = one_or_array(dict, b"/Contents") else {
        return Vec::new();
    };
    let words: Vec<&[u8]> = list
        .split(|b| b.is_ascii_whitespace() || *b == b'/' || *b == b'>')
        .filter(|w| !w.is_empty())
        .collect();
    let mut out = Vec::new();
    for w in words.windows(3) {
        if let [n, g, r] = w {
            if *r == b"R" && g.iter().all(u8::is_ascii_digit) {
                if let Some(n) = std::str::from_utf8(n).ok().and_then(|s| s.parse().ok()) {
                    out.push(n);
                    if single {
                        break;
                    }
                }
            }
        }
    }
    out
}

/// The names of a stream's `/Filter` (a name or an array of names).
fn filters(dict: &[u8]) -> Vec<&[u8]> {
    let Some((list, single)) = one_or_array(dict, b"/Filter") else {
        return Vec::new();
    };
    let names = list.split(|b| *b == b'/').skip(1).map(|n| {
        n.get(..n.iter().position(|b| is_delim_or_ws(*b)).unwrap_or(n.len()))
            .unwrap_or_default()
    });
    if single {
        names.take(1).collect()
    } else {
        names.collect()
    }
}

/// Whether a stream with no page to name it looks like page content (not a font,
/// image, XObject, object or xref stream: no `/Type`, `/Subtype` or `/Length1`).
fn looks_like_content(dict: &[u8]) -> bool {
    [&b"/Type"[..], b"/Subtype", b"/Length1", b"/Length2", b"/N "]
        .iter()
        .all(|k| memmem::find(dict, k).is_none())
}

#[cfg(test)]
mod tests;
