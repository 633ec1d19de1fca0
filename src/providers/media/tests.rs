use super::*;

#[test]
fn names_are_told_from_addresses_and_listed_ones_known() {
    let allow = ["media.corp:8080".to_string()];
    assert_eq!(
        named_host("https://cdn.example.com/a.png", &allow),
        Some(false)
    );
    assert_eq!(
        named_host("http://127.0.0.1.nip.io/a.png", &allow),
        Some(false)
    );
    assert_eq!(
        named_host("http://media.corp:8080/a.png", &allow),
        Some(true)
    );
    assert_eq!(
        named_host("http://media.corp:9090/a.png", &allow),
        Some(false)
    );
    assert_eq!(named_host("http://93.184.216.34/a.png", &allow), None);
    assert_eq!(named_host("http://[2606:4700::1]/a.png", &allow), None);
}
use serde_json::json;

fn part(v: Value) -> ContentPart {
    serde_json::from_value(v).unwrap()
}

#[test]
fn parts_as_media() {
    let p = part(json!({"type": "image_url", "image_url": {"url": "data:image/png;base64,AAA"}}));
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
    let p = part(json!({"type": "input_audio", "input_audio": {"data": "UklG", "format": "mp3"}}));
    let m = Media::of(&p).unwrap();
    assert_eq!(
        (m.kind, m.mime.as_str(), m.source),
        (Kind::Audio, "audio/mp3", Source::Inline("UklG"))
    );
    let p = part(json!({"type": "video_url", "video_url": {"url": "https://x.test/clip.webm"}}));
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
    assert_eq!(gemini_file_field(&req), None);
    let files: ChatRequest = serde_json::from_value(json!({"model": "m", "messages": [
        {"role": "user", "content": "hi"},
        {"role": "user", "content": [
            {"type": "text", "text": "read"},
            {"type": "file", "file": {"file_data": "https://generativelanguage.googleapis.com/v1beta/files/abc"}}
        ]}]}))
    .unwrap();
    assert_eq!(
        gemini_file_field(&files).as_deref(),
        Some("messages[1].content[1].file.file_data")
    );
}

#[test]
fn media_are_spliced_in_where_their_markers_stand() {
    use base64::Engine;
    let markers = [marker(0xabc, 0), marker(0xabc, 1)];
    assert!(markers[0].bytes().all(|b| b.is_ascii_alphanumeric()));
    let body = format!(
        r#"{{"a":"{0}","b":"x","c":"{1}","d":"{0}"}}"#,
        markers[0], markers[1]
    );
    let media: [Vec<u8>; 2] = [
        (0..=255u8).cycle().take(CHUNK * 2 + 7).collect(),
        b"hi".to_vec(),
    ];
    let mut out = Vec::new();
    for p in pieces(body.as_bytes(), &markers) {
        match p {
            Piece::Built(r) => out.extend_from_slice(&body.as_bytes()[r]),
            Piece::Media(n) => {
                let m = &media[n];
                let before = out.len();
                write_base64(
                    m.len(),
                    |at, buf| buf.copy_from_slice(&m[at..at + buf.len()]),
                    |chunk| out.extend_from_slice(chunk),
                );
                assert_eq!(out.len() - before, base64_len(m.len()));
            }
        }
    }
    let b64 = |m: &[u8]| base64::engine::general_purpose::STANDARD.encode(m);
    let want = format!(
        r#"{{"a":"{0}","b":"x","c":"{1}","d":"{0}"}}"#,
        b64(&media[0]),
        b64(&media[1])
    );
    assert_eq!(String::from_utf8(out).unwrap(), want);
    assert_eq!(
        pieces(b"plain", &markers),
        vec![Piece::Built(0..5)],
        "a body without markers is itself"
    );
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
    assert!(fetchable("http://127.0.0.%31:9000/cat.png", &allow).is_ok());
    assert!(fetchable("http://127.0.0.1:9001/cat.png", &allow).is_err());
    assert!(is_youtube("https://youtu.be/abc") && !is_youtube("https://notyoutube.com/x"));
    assert!(is_youtube("https://WWW.YOUTUBE.COM/watch?v=x"));
    assert!(is_gemini_file(
        "https://generativelanguage.googleapis.com/v1beta/files/abc"
    ));
    assert!(is_gemini_file(
        "https://GenerativeLanguage.googleapis.com./v1beta/files/abc"
    ));
}

#[test]
fn every_spelling_of_an_inside_address_is_refused() {
    // Each is a loopback, private, link-local or otherwise internal address once the
    // WHATWG parser (the one fetch uses) has read it.
    for bad in [
        // Percent-encoded, tab and newline inside the host.
        "http://127.0.0.%31/x",
        "http://127.0.0.%31:8787/x",
        "http://127.0.0.\t1/x",
        "http://127.0.0.\t1:8787/x",
        "http://169.254.169.\n254/latest/meta-data",
        "http://[::\t1]/x",
        "http://\r127.0.0.1/x",
        // Full-width digits and dots, and a full-width name.
        "http://\u{ff11}\u{ff12}\u{ff17}.0.0.1/x",
        "http://127\u{ff0e}0\u{ff0e}0\u{ff0e}1/x",
        "http://\u{ff4c}\u{ff4f}\u{ff43}\u{ff41}\u{ff4c}\u{ff48}\u{ff4f}\u{ff53}\u{ff54}/x",
        // Decimal, octal, hex and short forms; a trailing dot.
        "http://2130706433/x",
        "http://017700000001/x",
        "http://0177.0.0.1/x",
        "http://0x7f000001/x",
        "http://0x7f.0x0.0x0.0x1/x",
        "http://0x7f.1/x",
        "http://127.1/x",
        "http://127.0.0.1./x",
        "http://0/x",
        "http://3232235777/x",
        // Special IPv4 ranges.
        "http://10.0.0.1/x",
        "http://172.31.255.255/x",
        "http://192.168.0.1/x",
        "http://169.254.0.1/x",
        "http://100.64.0.1/x",
        "http://100.127.255.254/x",
        "http://0.0.0.0/x",
        "http://255.255.255.255/x",
        "http://224.0.0.1/x",
        "http://239.255.255.250/x",
        "http://192.0.2.1/x",
        "http://198.51.100.1/x",
        "http://203.0.113.1/x",
        "http://198.18.0.1/x",
        "http://192.0.0.1/x",
        "http://240.0.0.1/x",
        // IPv6: loopback, unspecified, mapped and compatible IPv4, 6to4, ULA,
        // link-local, site-local, multicast, documentation, NAT64.
        "http://[::1]/x",
        "http://[0:0:0:0:0:0:0:1]/x",
        "http://[::]/x",
        "http://[::ffff:127.0.0.1]/x",
        "http://[::ffff:7f00:1]/x",
        "http://[::ffff:169.254.169.254]/x",
        "http://[::ffff:10.0.0.1]/x",
        "http://[::127.0.0.1]/x",
        "http://[::a9fe:a9fe]/x",
        "http://[2002:7f00:1::]/x",
        "http://[fc00::1]/x",
        "http://[fd12:3456::1]/x",
        "http://[fe80::1]/x",
        "http://[febf::1]/x",
        "http://[fec0::1]/x",
        "http://[ff02::1]/x",
        "http://[2001:db8::1]/x",
        "http://[64:ff9b::7f00:1]/x",
        "http://[2001::1]/x",
        // Names that cannot be public.
        "http://intranet/x",
        "http://LOCALHOST/x",
        "http://localhost./x",
        "http://app.localhost/x",
        "http://printer.local/x",
        "http://metadata.google.internal/x",
        "http://router.home.arpa/x",
        "http://1.0.0.127.in-addr.arpa/x",
        "http://nas.lan/x",
        "http://files.corp/x",
        "http://svc.test/x",
        "http://x.invalid/x",
        "http://www.example/x",
        "http://host.localdomain/x",
        "http://abc.onion/x",
        "http://.com/x",
        // Not http(s), or not a URL.
        "javascript:alert(1)",
        "gopher://example.com/x",
        "ws://example.com/x",
        "data:image/png;base64,AAAA",
        "//example.com/x",
        "example.com/x",
        "http://",
        "",
    ] {
        assert!(fetchable(bad, &[]).is_err(), "{bad:?} should be refused");
    }
    for good in [
        "https://example.com/x",
        "HTTPS://Example.COM:8443/x",
        "http://example.com:80/x",
        "https://xn--bcher-kva.example.de/x",
        "https://b\u{fc}cher.de/x",
        "http://1.1.1.1/x",
        "http://[2606:4700:4700::1111]/x",
        "http://[::ffff:1.1.1.1]/x",
        "https://cdn.example.com./x",
    ] {
        assert!(fetchable(good, &[]).is_ok(), "{good:?} should be allowed");
    }
    // What is fetched is the parsed URL, not the text that was checked.
    assert_eq!(
        fetchable("https://ex\tample.com/a b", &[]).unwrap(),
        "https://example.com/a%20b"
    );
}
