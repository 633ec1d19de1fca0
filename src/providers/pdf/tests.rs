use super::*;
use proptest::prelude::*;

/// A PDF of `pages` content streams (each `(dict extra, bytes)`), one page each.
fn pdf(pages: &[(&str, Vec<u8>)]) -> Vec<u8> {
    let mut out = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n".to_vec();
    let kids: Vec<String> = (0..pages.len())
        .map(|i| format!("{} 0 R", 3 + 2 * i))
        .collect();
    out.extend_from_slice(b"1 0 obj\n<< /Type /Catalog /Pages 2 0 R >>\nendobj\n");
    out.extend_from_slice(
        format!(
            "2 0 obj\n<< /Type /Pages /Kids [{}] /Count {} >>\nendobj\n",
            kids.join(" "),
            pages.len()
        )
        .as_bytes(),
    );
    for (i, (extra, data)) in pages.iter().enumerate() {
        let page = 3 + 2 * i;
        out.extend_from_slice(
            format!(
                "{page} 0 obj\n<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents {} 0 R >>\nendobj\n",
                page + 1
            )
            .as_bytes(),
        );
        out.extend_from_slice(
            format!(
                "{} 0 obj\n<< /Length {} {extra} >>\nstream\n",
                page + 1,
                data.len()
            )
            .as_bytes(),
        );
        out.extend_from_slice(data);
        out.extend_from_slice(b"\nendstream\nendobj\n");
    }
    out.extend_from_slice(b"trailer\n<< /Root 1 0 R >>\n%%EOF\n");
    out
}

fn text_of(pages: &[(&str, Vec<u8>)]) -> String {
    extract(&pdf(pages)).unwrap().text
}

#[test]
fn reads_tj_with_line_moves() {
    let page = b"BT /F1 12 Tf 72 720 Td (Hello, world!) Tj 0 -14 Td (Second line) Tj ET".to_vec();
    assert_eq!(text_of(&[("", page)]), "Hello, world!\nSecond line");
}

#[test]
fn reads_flate_streams_and_pages_in_order() {
    let one = miniz_oxide::deflate::compress_to_vec_zlib(b"BT (Page one) Tj ET", 6);
    let two = miniz_oxide::deflate::compress_to_vec_zlib(b"BT (Page two) Tj ET", 6);
    let got = extract(&pdf(&[
        ("/Filter /FlateDecode", one),
        ("/Filter [/FlateDecode]", two),
    ]))
    .unwrap();
    assert_eq!(got.text, "Page one\n\nPage two");
    assert_eq!(got.pages, 2);
    assert!(!got.truncated);
}

#[test]
fn reads_tj_arrays_with_kerning_and_word_gaps() {
    let page = b"BT [(Ke) 30 (rn) -20 (ing) -250 (works)] TJ ET".to_vec();
    assert_eq!(text_of(&[("", page)]), "Kerning works");
}

#[test]
fn reads_hex_strings_and_escapes() {
    let page = br"BT <48656C6C6F> Tj T* (a\(b\) \\ c\101\061 (nested)) Tj T* <4>Tj ET".to_vec();
    assert_eq!(text_of(&[("", page)]), "Hello\na(b) \\ cA1 (nested)\n@");
}

#[test]
fn reads_quote_operators_and_win_ansi() {
    let page = b"BT (first) Tj (second) ' 1 2 (third \x93q\x94 \x80 caf\xe9) \" ET".to_vec();
    assert_eq!(
        text_of(&[("", page)]),
        "first\nsecond\nthird \u{201c}q\u{201d} \u{20ac} caf\u{e9}"
    );
}

#[test]
fn reads_tm_moves_as_lines_and_skips_inline_images() {
    let page = b"BT 1 0 0 1 72 700 Tm (A) Tj 1 0 0 1 90 700 Tm (B) Tj 1 0 0 1 72 680 Tm (C) Tj ET \
        BI /W 2 /H 2 ID \x00(Tj)\xff EI BT (D) Tj ET"
        .to_vec();
    assert_eq!(text_of(&[("", page)]), "A B\nC D");
}

#[test]
fn refuses_encrypted_and_non_pdfs() {
    let mut enc = pdf(&[("", b"BT (x) Tj ET".to_vec())]);
    enc.extend_from_slice(b"trailer << /Encrypt 9 0 R >>");
    assert_eq!(extract(&enc), Err(PdfError::Encrypted));
    assert_eq!(extract(b"hello"), Err(PdfError::NotPdf));
    assert_eq!(
        extract(b"%PDF-1.4\n1 0 obj << >> endobj"),
        Err(PdfError::Unreadable)
    );
}

#[test]
fn other_filters_are_skipped_and_length_may_be_indirect() {
    let got = text_of(&[
        ("/Filter /DCTDecode", b"BT (img) Tj ET".to_vec()),
        ("", b"BT (ok) Tj ET".to_vec()),
    ]);
    assert_eq!(got, "ok");
    let doc = b"%PDF-1.4\n1 0 obj << /Type /Page /Contents [2 0 R] >> endobj\n2 0 obj << /Length 3 0 R >>\nstream\r\nBT (indirect) Tj ET\r\nendstream endobj\n3 0 obj 20 endobj";
    assert_eq!(extract(doc).unwrap().text, "indirect");
}

#[test]
fn text_is_cut_at_its_cap() {
    let mut out = content::Text::new(5);
    content::read(b"BT (abc) Tj (defgh) Tj ET", &mut out);
    assert!(out.truncated);
    assert_eq!(out.finish(), "abcde");
}

#[test]
fn deep_nesting_does_not_overflow() {
    let mut page = b"BT ".to_vec();
    page.extend(std::iter::repeat_n(b'[', 100_000));
    page.extend_from_slice(b"(x) Tj ET");
    let _ = extract(&pdf(&[("", page)]));
}

proptest! {
    #[test]
    fn never_panics_on_random_bytes(tail in proptest::collection::vec(any::<u8>(), 0..2000)) {
        let mut doc = b"%PDF-1.7\n1 0 obj << /Type /Page /Contents 2 0 R >> endobj 2 0 obj << /Length 9 /Filter /FlateDecode >> stream\n".to_vec();
        doc.extend_from_slice(&tail);
        let _ = extract(&doc);
        let mut out = content::Text::new(1000);
        content::read(&tail, &mut out);
        let _ = extract(&tail);
    }
}
