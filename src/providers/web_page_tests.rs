use super::*;

fn text(html: &str) -> String {
    html_to_text(html, None).text
}

#[test]
fn a_page_reads_as_its_text_without_scripts_styles_or_navigation() {
    let html = r#"<!DOCTYPE html>
<html><head><title> The  Article &amp; More </title>
<style>body { color: red } p > a { x: "</p>" }</style>
<script>var s = "<p>not text</p>"; if (a < b) { alert(1) }</script></head>
<body>
<nav><ul><li><a href="/">Home</a></li><li><a href="/about">About</a></li></ul></nav>
<header><h1>Main   heading</h1></header>
<!-- a comment with <p>markup</p> -->
<p>First paragraph with a <a href="/docs/intro?x=1&amp;y=2">relative link</a>
   and <b>bold</b> text.</p>
<script type="module">import x from "y";</script>
<h2>Lists</h2>
<ul><li>one</li><li>two <i>items</i></li></ul>
<p>Caf&eacute; &#233;t&#xE9; &lt;tag&gt;&nbsp;done</p>
<div hidden><p>hidden text</p></div>
<span aria-hidden="true">decor</span>
<aside>Related stuff</aside>
<footer><p>Copyright</p></footer>
</body></html>"#;
    let base = url::Url::parse("https://site.example.com/blog/post").unwrap();
    let page = html_to_text(html, Some(&base));
    assert_eq!(page.title.as_deref(), Some("The Article & More"));
    assert_eq!(
        page.text,
        "# Main heading\n\nFirst paragraph with a [relative link](https://site.example.com/docs/intro?x=1&y=2) and bold text.\n\n## Lists\n\n- one\n- two items\n\nCafé été <tag> done"
    );
}

#[test]
fn pre_keeps_its_whitespace_and_br_breaks_lines() {
    assert_eq!(
        text("<p>a<br>b<br/>c</p><pre>  x\n    y</pre><p>z</p>"),
        "a\nb\nc\n\n  x\n    y\n\nz"
    );
}

#[test]
fn links_without_a_usable_target_keep_only_their_text() {
    assert_eq!(
        text(
            r##"<a href="#top">Top</a> <a href="javascript:void(0)">Run</a> <a>Plain</a> <a href="https://x.example/"><img src="i.png"></a> <a href='https://y.example/a b'>Y</a>"##
        ),
        "Top Run Plain [Y](https://y.example/a%20b)"
    );
}

#[test]
fn nested_skipped_elements_end_at_their_own_close() {
    assert_eq!(
        text("<nav>a<nav>b</nav>c</nav>kept<svg><g><text>icon</text></g></svg> too"),
        "kept too"
    );
}

#[test]
fn broken_markup_never_panics_and_keeps_what_reads_as_text() {
    assert_eq!(text("1 < 2 and 3 > 2"), "1 < 2 and 3 > 2");
    assert_eq!(text("<p>open <b>tags"), "open tags");
    assert_eq!(text("<script>never closed"), "");
    assert_eq!(text("<!-- never closed"), "");
    assert_eq!(text("<a href=\"x"), "");
    assert_eq!(
        text("&#xFFFFFFFF; &#0; &bogus; & &;"),
        "&#xFFFFFFFF; &#0; &bogus; & &;"
    );
    assert_eq!(decode("&Aacute;&yuml;&copy;&frac12;"), "Áÿ©½");
    assert_eq!(text("é<p>ü</p>"), "é\n\nü");
    for html in [
        "<", "</", "<a", "<a ", "<a b='", "&", "&#", "<scr", "</scr>",
    ] {
        let _ = text(html);
    }
}

#[test]
fn uppercase_tags_and_attributes_are_read_alike() {
    assert_eq!(
        text("<SCRIPT>x</SCRIPT><H3>T</H3><A HREF=\"https://a.example/\">l</A>"),
        "### T\n\n[l](https://a.example/)"
    );
}

#[test]
fn domains_cover_their_subdomains() {
    let list = |d: &[&str]| d.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    assert!(domain_allowed(
        "docs.example.com",
        &list(&["example.com"]),
        &[]
    ));
    assert!(domain_allowed("example.com", &list(&["example.com"]), &[]));
    assert!(!domain_allowed(
        "badexample.com",
        &list(&["example.com"]),
        &[]
    ));
    assert!(!domain_allowed("other.org", &list(&["example.com"]), &[]));
    assert!(domain_allowed("other.org", &[], &list(&["example.com"])));
    assert!(!domain_allowed(
        "A.Example.COM.",
        &[],
        &list(&["example.com"])
    ));
}

#[test]
fn text_is_cut_to_its_token_budget() {
    let (t, cut) = within_tokens("abcdefgh".into(), 2);
    assert_eq!((t.as_str(), cut), ("abcdefgh", false));
    let (t, cut) = within_tokens("abcdefghi".into(), 2);
    assert_eq!((t.as_str(), cut), ("abcdefgh", true));
}

#[test]
fn media_types_choose_how_a_body_is_read() {
    assert_eq!(Kind::of(Some("text/html")), Some(Kind::Html));
    assert_eq!(Kind::of(None), Some(Kind::Html));
    assert_eq!(Kind::of(Some("text/markdown")), Some(Kind::Text));
    assert_eq!(Kind::of(Some("application/vnd.api+json")), Some(Kind::Text));
    assert_eq!(Kind::of(Some("application/pdf")), Some(Kind::Pdf));
    assert_eq!(Kind::of(Some("image/png")), None);
}

#[test]
fn results_are_what_openrouter_returns() {
    let r = FetchResult::read(
        "https://a.example/p",
        Kind::Html,
        "<title>T</title><p>Hello</p>",
        100,
        "2026-01-01T00:00:00Z".into(),
    );
    assert_eq!(
        r.to_json(),
        r#"{"url":"https://a.example/p","title":"T","content":"Hello","status":"completed","retrieved_at":"2026-01-01T00:00:00Z"}"#
    );
    let f = FetchResult::failed("https://a.example/404", "HTTP 404");
    assert_eq!(
        f.to_json(),
        r#"{"url":"https://a.example/404","status":"failed","error":"HTTP 404"}"#
    );
    let long = FetchResult::read(
        "https://a.example/",
        Kind::Text,
        "abcdefghij",
        1,
        "t".into(),
    );
    assert_eq!(long.content.as_deref(), Some("abcd"));
    assert!(long.to_json().ends_with(r#""truncated":true}"#));
}

proptest::proptest! {
    /// Whatever a page holds, reading it never panics.
    #[test]
    fn any_markup_reads_without_panicking(s in "[<>/!&;#x0-9a-e'\"= \n-]{0,64}|(<(p|a|nav|script|pre|li)( href='[a-z/#]{0,6}')?>[a-z &<]{0,8}){0,8}") {
        let page = html_to_text(&s, url::Url::parse("https://a.example/").ok().as_ref());
        let _ = page.title;
        let _ = decode(&s);
    }
}

#[test]
fn the_fixture_article_reads_as_its_text() {
    // The same files the integration tests serve and expect (tests/fixtures/web_fetch).
    let html = include_str!("../../tests/fixtures/web_fetch/article.html");
    let want = include_str!("../../tests/fixtures/web_fetch/article.txt")
        .replace("BASE", "http://127.0.0.1:9");
    let base = url::Url::parse("http://127.0.0.1:9/article").unwrap();
    let page = html_to_text(html, Some(&base));
    assert_eq!(page.title.as_deref(), Some("Tide Tables & Moons"));
    assert_eq!(page.text, want);
}
