//! How many pages a PDF may have, counted before anything reads it (what the
//! `mistral-ocr` engine holds for a file before Mistral is called). A safe count, never
//! less than what a reader following the page tree finds: the larger of the largest
//! `/Count` in the file and the number of `/Type /Page` dictionaries, both read in the
//! file's bytes and in its object streams (`/Type /ObjStm`, inflated as the text
//! reader inflates). A decoy `/Count` that says fewer pages than the file's page
//! objects is outnumbered by them; pages hidden in an object stream that cannot be read
//! (another filter, encrypted, past the inflation caps), or a file with no page
//! dictionary nor `/Count` at all, cannot be counted: `None`.

use memchr::memmem;

use super::{decode, is_delim_or_ws, objects, words_after, MAX_INFLATED_BYTES, MAX_OBJECTS};

/// What one scan of bytes found: `/Type /Page` dictionaries, and the largest `/Count`.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Found {
    pages: u64,
    count: u64,
}

impl Found {
    fn add(self, o: Found) -> Found {
        Found {
            pages: self.pages.saturating_add(o.pages),
            count: self.count.max(o.count),
        }
    }
}

/// The most pages the PDF `bytes` may have, or `None` when they cannot be counted.
pub fn count(bytes: &[u8]) -> Option<u64> {
    let mut found = scan(bytes);
    let streams = typed(bytes, b"/ObjStm");
    if streams > 0 {
        // Encrypted object streams cannot be read: what they hold is unknown.
        if memmem::find(bytes, b"/Encrypt").is_some() {
            return None;
        }
        let objects = objects(bytes);
        if objects.len() >= MAX_OBJECTS {
            return None;
        }
        let mut budget = MAX_INFLATED_BYTES;
        let mut read = 0u64;
        for o in objects.iter().filter(|o| typed(o.dict, b"/ObjStm") > 0) {
            let data = decode(o.dict, o.stream?, &mut budget, &mut false)?;
            found = found.add(scan(&data));
            read = read.saturating_add(1);
        }
        // An object stream the object scan did not find as one: unread.
        if read < streams {
            return None;
        }
    }
    Some(found.pages.max(found.count)).filter(|n| *n > 0)
}

/// The page dictionaries and the largest `/Count` in `bytes`.
fn scan(bytes: &[u8]) -> Found {
    Found {
        pages: typed(bytes, b"/Page"),
        count: counts(bytes).max().unwrap_or(0),
    }
}

/// How many times `/Type <name>` occurs in `bytes` (a name ending there: `/Page`, not
/// `/Pages`).
fn typed(bytes: &[u8], name: &[u8]) -> u64 {
    let mut n = 0u64;
    let mut rest = bytes;
    while let Some(after) = words_after(rest, b"/Type") {
        let value = skip_ws(after);
        if value.starts_with(name) && value.get(name.len()).is_none_or(|b| is_delim_or_ws(*b)) {
            n = n.saturating_add(1);
        }
        rest = after;
    }
    n
}

/// Every non-negative number that follows a `/Count` key in `bytes`.
fn counts(bytes: &[u8]) -> impl Iterator<Item = u64> + '_ {
    let mut rest = bytes;
    std::iter::from_fn(move || loop {
        let after = words_after(rest, b"/Count")?;
        rest = after;
        let value = skip_ws(after);
        let digits = value.iter().take_while(|b| b.is_ascii_digit()).count();
        let Some(number) = value.get(..digits).filter(|d| !d.is_empty()) else {
            continue;
        };
        // A count too long for u64 is as many pages as there can be.
        return Some(
            std::str::from_utf8(number)
                .ok()
                .and_then(|s| s.parse().ok())
                .unwrap_or(u64::MAX),
        );
    })
}

fn skip_ws(s: &[u8]) -> &[u8] {
    let start = s
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(s.len());
    s.get(start..).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A PDF whose page tree says `/Count count` over `pages` page objects.
    fn pdf(count: usize, pages: usize) -> Vec<u8> {
        let mut out = b"%PDF-1.4\n1 0 obj\n<< /Type /Catalog /Pages 2 0 R >>\nendobj\n".to_vec();
        let kids: Vec<String> = (0..pages).map(|i| format!("{} 0 R", 3 + i)).collect();
        out.extend(
            format!(
                "2 0 obj\n<< /Type /Pages /Kids [{}] /Count {count} >>\nendobj\n",
                kids.join(" ")
            )
            .bytes(),
        );
        for i in 0..pages {
            out.extend(format!("{} 0 obj\n<</Type/Page/Parent 2 0 R>>\nendobj\n", 3 + i).bytes());
        }
        out.extend(b"trailer\n<< /Root 1 0 R >>\n%%EOF\n");
        out
    }

    /// A PDF 1.5 whose page objects are in an object stream, deflated (`zlib`) or
    /// under a filter the reader does not undo.
    fn compressed(pages: usize, zlib: bool) -> Vec<u8> {
        let mut inner = String::from("<< /Type /Pages /Count 1 >>\n");
        for _ in 0..pages {
            inner.push_str("<< /Type /Page /Parent 2 0 R >>\n");
        }
        let (filter, data) = match zlib {
            true => (
                " /Filter /FlateDecode",
                miniz_oxide::deflate::compress_to_vec_zlib(inner.as_bytes(), 6),
            ),
            false => (" /Filter /LZWDecode", inner.into_bytes()),
        };
        let mut out = b"%PDF-1.5\n1 0 obj\n<< /Type /Catalog /Pages 2 0 R >>\nendobj\n".to_vec();
        out.extend(
            format!(
                "5 0 obj\n<< /Type /ObjStm /N {} /First 0 /Length {}{filter} >>\nstream\n",
                pages + 1,
                data.len()
            )
            .bytes(),
        );
        out.extend(data);
        out.extend(b"\nendstream\nendobj\n%%EOF\n");
        out
    }

    #[test]
    fn counts_the_page_tree_and_its_pages() {
        assert_eq!(count(&pdf(3, 3)), Some(3));
        assert_eq!(count(&pdf(1, 1)), Some(1));
        // The mock's PDFs (tests/support/pdf_mock.mjs) read as they are built.
        let spaced = b"%PDF-1.4\n2 0 obj\n<< /Type /Pages /Kids [3 0 R 5 0 R] /Count 2 >>\nendobj\n3 0 obj\n<< /Type /Page /Parent 2 0 R >>\nendobj\n5 0 obj\n<< /Type /Page >>\nendobj\n";
        assert_eq!(count(spaced), Some(2));
    }

    #[test]
    fn a_lying_count_is_outnumbered_by_the_page_objects_and_a_larger_one_believed() {
        assert_eq!(count(&pdf(1, 7)), Some(7));
        assert_eq!(count(&pdf(0, 4)), Some(4));
        assert_eq!(count(&pdf(40, 2)), Some(40));
        // Outline counts may be negative; `/Pages` is not a page; a count past u64 is
        // as many as there can be.
        let outline = b"%PDF-1.4\n<< /Type /Outlines /Count -9 >> << /Type /Pages /Count 2 >> << /Type /Page >>";
        assert_eq!(count(outline), Some(2));
        let huge = b"%PDF-1.4\n<< /Type /Pages /Count 99999999999999999999999 >>";
        assert_eq!(count(huge), Some(u64::MAX));
    }

    #[test]
    fn pages_in_object_streams_are_counted_and_unreadable_ones_are_not_guessed() {
        assert_eq!(count(&compressed(6, true)), Some(6));
        assert_eq!(count(&compressed(6, false)), None);
        let mut encrypted = compressed(2, true);
        encrypted.extend(b"trailer\n<< /Encrypt 9 0 R >>\n");
        assert_eq!(count(&encrypted), None);
        assert_eq!(count(b"%PDF-1.4\nno pages at all"), None);
        assert_eq!(count(b""), None);
    }
}
