//! What `openrouter:web_fetch` makes of a fetched page, sans-IO: HTML turned into
//! text (scripts, styles, navigation and other page furniture dropped; headings,
//! paragraphs, lists and links kept, in a light Markdown), the domain rules of the
//! tool checked, the text cut to the tool's token budget, and the reply the model
//! reads (OpenRouter's `{url, title, content, status, retrieved_at}` or
//! `{url, status: "failed", error}`).

use serde::Serialize;

use crate::api::estimate_tokens;

/// Elements whose content is never text worth reading (nested ones counted).
const SKIPPED: [&str; 11] = [
    "head", "nav", "aside", "footer", "button", "select", "dialog", "svg", "iframe", "object",
    "canvas",
];
/// Elements whose content is raw text up to their end tag: dropped, or (`title`) kept
/// aside.
const RAW: [&str; 6] = [
    "script", "style", "noscript", "template", "textarea", "title",
];
/// Elements that end a paragraph, before and after.
const BLOCKS: [&str; 21] = [
    "p",
    "div",
    "section",
    "article",
    "main",
    "header",
    "blockquote",
    "pre",
    "table",
    "tr",
    "ul",
    "ol",
    "dl",
    "dt",
    "dd",
    "figure",
    "figcaption",
    "hr",
    "form",
    "fieldset",
    "address",
];

/// A page as text: its `<title>` and body.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Page {
    pub title: Option<String>,
    pub text: String,
}

/// The text a page's HTML shows a reader. `base` resolves relative links.
pub fn html_to_text(html: &str, base: Option<&url::Url>) -> Page {
    let mut w = Writer::default();
    let mut title = None;
    let mut rest = html;
    while let Some(lt) = rest.find('<') {
        let (text, tail) = rest.split_at(lt);
        w.text(text);
        let Some((tag, after)) = read_tag(tail) else {
            // A `<` that opens nothing: text.
            w.text("<");
            rest = tail.get(1..).unwrap_or_default();
            continue;
        };
        rest = after;
        if let Tag::Open { name, .. } = &tag {
            if let Some(raw) = RAW.iter().find(|r| **r == name.as_str()) {
                let (inner, after) = raw_text(rest, raw);
                if *raw == "title" && title.is_none() {
                    title = Some(collapse(&decode(inner))).filter(|t| !t.is_empty());
                }
                rest = after;
                continue;
            }
        }
        w.tag(&tag, base);
    }
    w.text(rest);
    Page {
        title,
        text: w.finish(),
    }
}

#[derive(Debug, PartialEq, Eq)]
enum Tag {
    Open {
        name: String,
        href: Option<String>,
        hidden: bool,
        self_closing: bool,
    },
    Close(String),
    /// A comment, doctype or processing instruction.
    Other,
}

/// The tag `s` (starting at `<`) opens and what follows it; `None` where `<` is text.
fn read_tag(s: &str) -> Option<(Tag, &str)> {
    let body = s.strip_prefix('<')?;
    if let Some(c) = body.strip_prefix("!--") {
        let end = c.find("-->").map_or(c.len(), |i| i.saturating_add(3));
        return Some((Tag::Other, c.get(end..).unwrap_or_default()));
    }
    if body.starts_with('!') || body.starts_with('?') {
        let end = body.find('>').map_or(body.len(), |i| i.saturating_add(1));
        return Some((Tag::Other, body.get(end..).unwrap_or_default()));
    }
    let (close, body) = match body.strip_prefix('/') {
        Some(b) => (true, b),
        None => (false, body),
    };
    let name_len = body
        .find(|c: char| !c.is_ascii_alphanumeric() && c != '-')
        .unwrap_or(body.len());
    let name = body.get(..name_len)?.to_ascii_lowercase();
    if name.is_empty() || !name.starts_with(|c: char| c.is_ascii_alphabetic()) {
        return None;
    }
    let (attrs, after) = split_attrs(body.get(name_len..).unwrap_or_default());
    if close {
        return Some((Tag::Close(name), after));
    }
    let href = attr(attrs, "href").map(|h| decode(h.trim()));
    let hidden = attr(attrs, "hidden").is_some()
        || attr(attrs, "aria-hidden").is_some_and(|v| v.eq_ignore_ascii_case("true"));
    let self_closing = attrs.trim_end().ends_with('/');
    Some((
        Tag::Open {
            name,
            href,
            hidden,
            self_closing,
        },
        after,
    ))
}

/// A tag's attributes (up to its unquoted `>`) and what follows the tag.
fn split_attrs(s: &str) -> (&str, &str) {
    let mut quote = None;
    for (i, c) in s.char_indices() {
        match (quote, c) {
            (None, '"' | '\'') => quote = Some(c),
            (Some(q), c) if c == q => quote = None,
            (None, '>') => {
                return (
                    s.get(..i).unwrap_or_default(),
                    s.get(i.saturating_add(1)..).unwrap_or_default(),
                )
            }
            _ => {}
        }
    }
    (s, "")
}

/// The value of attribute `name` (`""` for one without a value), if present.
fn attr<'a>(attrs: &'a str, name: &str) -> Option<&'a str> {
    let mut rest = attrs;
    loop {
        rest = rest.trim_start_matches(|c: char| c.is_whitespace() || c == '/');
        if rest.is_empty() {
            return None;
        }
        let n_end = rest
            .find(|c: char| c.is_whitespace() || c == '=' || c == '/')
            .unwrap_or(rest.len());
        let key = rest.get(..n_end).unwrap_or_default();
        rest = rest.get(n_end..).unwrap_or_default().trim_start();
        let mut value = "";
        if let Some(v) = rest.strip_prefix('=') {
            let v = v.trim_start();
            let (val, after) = match v.chars().next() {
                Some(q @ ('"' | '\'')) => {
                    let inner = v.get(1..).unwrap_or_default();
                    let end = inner.find(q).unwrap_or(inner.len());
                    (
                        inner.get(..end).unwrap_or_default(),
                        inner.get(end.saturating_add(1)..).unwrap_or_default(),
                    )
                }
                _ => {
                    let end = v.find(char::is_whitespace).unwrap_or(v.len());
                    (
                        v.get(..end).unwrap_or_default(),
                        v.get(end..).unwrap_or_default(),
                    )
                }
            };
            value = val;
            rest = after;
        }
        if key.eq_ignore_ascii_case(name) {
            return Some(value);
        }
    }
}

/// The raw text of element `name` up to its end tag, and what follows that tag.
fn raw_text<'a>(s: &'a str, name: &str) -> (&'a str, &'a str) {
    let mut from = 0;
    while let Some(i) = s.get(from..).and_then(|t| t.find("</")) {
        let at = from.saturating_add(i);
        let after = s.get(at.saturating_add(2)..).unwrap_or_default();
        let named = after
            .get(..name.len())
            .is_some_and(|n| n.eq_ignore_ascii_case(name));
        if named {
            let end = after.find('>').map_or(after.len(), |j| j.saturating_add(1));
            return (
                s.get(..at).unwrap_or_default(),
                after.get(end..).unwrap_or_default(),
            );
        }
        from = at.saturating_add(2);
    }
    (s, "")
}

/// Builds the text: whitespace collapsed, paragraphs and lines where blocks end.
#[derive(Default)]
struct Writer {
    out: String,
    /// The line breaks owed before the next text (1: a line, 2: a paragraph).
    breaks: u8,
    space: bool,
    /// Inside a skipped element: its name and how deep it nests in itself.
    skip: Option<(String, usize)>,
    /// Inside `<pre>`: whitespace kept.
    pre: usize,
    /// The open links' targets (`None` for an anchor without a usable href).
    links: Vec<Option<String>>,
}

impl Writer {
    fn text(&mut self, raw: &str) {
        if self.skip.is_some() || raw.is_empty() {
            return;
        }
        let text = decode(raw);
        if self.pre > 0 {
            self.put(&text);
            return;
        }
        for (i, word) in text.split_whitespace().enumerate() {
            if i > 0 || text.starts_with(char::is_whitespace) {
                self.space = true;
            }
            self.put(word);
        }
        if text.ends_with(char::is_whitespace) {
            self.space = true;
        }
    }

    /// Writes `s` after the breaks or space owed.
    fn put(&mut self, s: &str) {
        if s.is_empty() {
            return;
        }
        if self.out.is_empty() {
            self.breaks = 0;
        } else if self.breaks > 0 {
            self.out.truncate(self.out.trim_end_matches(' ').len());
            self.out
                .push_str(if self.breaks > 1 { "\n\n" } else { "\n" });
        } else if self.space && !self.out.ends_with([' ', '\n', '[', '(']) {
            self.out.push(' ');
        }
        self.breaks = 0;
        self.space = false;
        self.out.push_str(s);
    }

    fn brk(&mut self, n: u8) {
        self.breaks = self.breaks.max(n);
    }

    fn tag(&mut self, tag: &Tag, base: Option<&url::Url>) {
        if let Some((skipped, depth)) = &mut self.skip {
            match tag {
                Tag::Open {
                    name, self_closing, ..
                } if name == skipped && !self_closing => *depth = depth.saturating_add(1),
                Tag::Close(name) if name == skipped => {
                    *depth = depth.saturating_sub(1);
                    if *depth == 0 {
                        self.skip = None;
                    }
                }
                _ => {}
            }
            return;
        }
        match tag {
            Tag::Open {
                name,
                href,
                hidden,
                self_closing,
            } => {
                let void = VOID.contains(&name.as_str()) || *self_closing;
                if (*hidden || SKIPPED.contains(&name.as_str())) && !void {
                    self.skip = Some((name.clone(), 1));
                    return;
                }
                self.open(name, href.as_deref(), base);
            }
            Tag::Close(name) => self.close(name),
            Tag::Other => {}
        }
    }

    fn open(&mut self, name: &str, href: Option<&str>, base: Option<&url::Url>) {
        match name {
            "br" => self.brk(1),
            "li" => {
                self.brk(1);
                self.put("-");
                self.space = true;
            }
            "td" | "th" => self.space = true,
            "pre" => {
                self.brk(2);
                self.pre = self.pre.saturating_add(1);
            }
            "a" => {
                let target = href.and_then(|h| link(h, base));
                if target.is_some() {
                    self.put("[");
                }
                self.links.push(target);
            }
            h if heading(h).is_some() => {
                self.brk(2);
                self.put(&"#".repeat(heading(h).unwrap_or(1)));
                self.space = true;
            }
            b if BLOCKS.contains(&b) => self.brk(2),
            _ => {}
        }
    }

    fn close(&mut self, name: &str) {
        match name {
            "pre" => {
                self.pre = self.pre.saturating_sub(1);
                self.brk(2);
            }
            "a" => {
                if let Some(Some(target)) = self.links.pop() {
                    if self.out.ends_with('[') {
                        // A link with no text (an image's): dropped.
                        self.out.pop();
                    } else {
                        self.out.truncate(self.out.trim_end().len());
                        self.out.push_str("](");
                        self.out.push_str(&target);
                        self.out.push(')');
                    }
                }
            }
            "li" => self.brk(1),
            h if heading(h).is_some() => self.brk(2),
            b if BLOCKS.contains(&b) => self.brk(2),
            _ => {}
        }
    }

    fn finish(mut self) -> String {
        self.out.truncate(self.out.trim_end().len());
        self.out
    }
}

const VOID: [&str; 12] = [
    "br", "img", "hr", "input", "meta", "link", "area", "base", "col", "embed", "source", "wbr",
];

fn heading(name: &str) -> Option<usize> {
    match name {
        "h1" => Some(1),
        "h2" => Some(2),
        "h3" => Some(3),
        "h4" => Some(4),
        "h5" => Some(5),
        "h6" => Some(6),
        _ => None,
    }
}

/// An anchor's target as the model reads it: absolute http(s), resolved against the
/// page; none for fragments, scripts and mail links.
fn link(href: &str, base: Option<&url::Url>) -> Option<String> {
    if href.is_empty() || href.starts_with('#') {
        return None;
    }
    let u = match base {
        Some(b) => b.join(href).ok()?,
        None => url::Url::parse(href).ok()?,
    };
    matches!(u.scheme(), "http" | "https").then(|| u.into())
}

/// Runs of whitespace as one space, trimmed.
fn collapse(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// `s` with its character references decoded (the named ones pages use most, and
/// every numeric one); an unknown or broken one is left as it is.
pub fn decode(s: &str) -> String {
    if !s.contains('&') {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('&') {
        let (head, tail) = rest.split_at(i);
        out.push_str(head);
        let end = tail
            .get(1..)
            .and_then(|t| t.find(';'))
            .filter(|&e| e <= 10)
            .map(|e| e.saturating_add(1));
        let decoded = end.and_then(|e| tail.get(1..e)).and_then(entity);
        match (decoded, end) {
            (Some(c), Some(e)) => {
                out.push(c);
                rest = tail.get(e.saturating_add(1)..).unwrap_or_default();
            }
            _ => {
                out.push('&');
                rest = tail.get(1..).unwrap_or_default();
            }
        }
    }
    out.push_str(rest);
    out
}

fn entity(name: &str) -> Option<char> {
    if let Some(num) = name.strip_prefix('#') {
        let n = match num.strip_prefix(['x', 'X']) {
            Some(hex) => u32::from_str_radix(hex, 16).ok()?,
            None => num.parse().ok()?,
        };
        return char::from_u32(n).filter(|c| *c != '\0');
    }
    if let Some(i) = LATIN1.iter().position(|n| *n == name) {
        return char::from_u32(0xa0_u32.saturating_add(u32::try_from(i).ok()?));
    }
    Some(match name {
        "amp" => '&',
        "lt" => '<',
        "gt" => '>',
        "quot" => '"',
        "apos" => '\'',
        "ndash" => '–',
        "mdash" => '—',
        "hellip" => '…',
        "lsquo" => '‘',
        "rsquo" => '’',
        "ldquo" => '“',
        "rdquo" => '”',
        "trade" => '™',
        "bull" => '•',
        "euro" => '€',
        _ => return None,
    })
}

/// The named references of U+00A0 to U+00FF, in order.
const LATIN1: [&str; 96] = [
    "nbsp", "iexcl", "cent", "pound", "curren", "yen", "brvbar", "sect", "uml", "copy", "ordf",
    "laquo", "not", "shy", "reg", "macr", "deg", "plusmn", "sup2", "sup3", "acute", "micro",
    "para", "middot", "cedil", "sup1", "ordm", "raquo", "frac14", "frac12", "frac34", "iquest",
    "Agrave", "Aacute", "Acirc", "Atilde", "Auml", "Aring", "AElig", "Ccedil", "Egrave", "Eacute",
    "Ecirc", "Euml", "Igrave", "Iacute", "Icirc", "Iuml", "ETH", "Ntilde", "Ograve", "Oacute",
    "Ocirc", "Otilde", "Ouml", "times", "Oslash", "Ugrave", "Uacute", "Ucirc", "Uuml", "Yacute",
    "THORN", "szlig", "agrave", "aacute", "acirc", "atilde", "auml", "aring", "aelig", "ccedil",
    "egrave", "eacute", "ecirc", "euml", "igrave", "iacute", "icirc", "iuml", "eth", "ntilde",
    "ograve", "oacute", "ocirc", "otilde", "ouml", "divide", "oslash", "ugrave", "uacute", "ucirc",
    "uuml", "yacute", "thorn", "yuml",
];

/// Whether a URL's `host` may be fetched under the tool's lists: a listed domain
/// covers its subdomains (`example.com` covers `docs.example.com`).
pub fn domain_allowed(host: &str, allowed: &[String], blocked: &[String]) -> bool {
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    let covers = |d: &String| {
        host == *d
            || host
                .strip_suffix(d.as_str())
                .is_some_and(|h| h.ends_with('.'))
    };
    (allowed.is_empty() || allowed.iter().any(covers)) && !blocked.iter().any(covers)
}

/// `text` within `max_tokens` (at the gateway's estimate of 4 bytes a token), cut at
/// a character, and whether it was cut.
pub fn within_tokens(text: String, max_tokens: u64) -> (String, bool) {
    if estimate_tokens(&text) <= max_tokens {
        return (text, false);
    }
    let max = usize::try_from(max_tokens.saturating_mul(4)).unwrap_or(usize::MAX);
    (super::mcp::cut(text, max), true)
}

/// How a fetched body is read, by its media type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Html,
    Text,
    Pdf,
}

impl Kind {
    /// The kind of a `Content-Type` (lower case, no parameters); `None` for what the
    /// tool cannot read (images, archives, ...). A server that names none serves HTML
    /// more often than not.
    pub fn of(media_type: Option<&str>) -> Option<Kind> {
        match media_type.unwrap_or("text/html") {
            "text/html" | "application/xhtml+xml" => Some(Kind::Html),
            "application/pdf" => Some(Kind::Pdf),
            "application/json" | "application/xml" | "application/ld+json" => Some(Kind::Text),
            t if t.starts_with("text/") || t.ends_with("+json") || t.ends_with("+xml") => {
                Some(Kind::Text)
            }
            _ => None,
        }
    }
}

/// What the model reads of one fetch (OpenRouter's web_fetch result).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FetchResult {
    pub url: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
    pub status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retrieved_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Set when `content` was cut to `max_content_tokens`.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub truncated: bool,
}

impl FetchResult {
    pub fn failed(url: &str, error: impl Into<String>) -> Self {
        FetchResult {
            url: url.to_string(),
            title: None,
            content: None,
            status: "failed",
            retrieved_at: None,
            error: Some(error.into()),
            truncated: false,
        }
    }

    /// A page read: its body of `kind` as text, cut to `max_tokens`.
    pub fn read(url: &str, kind: Kind, body: &str, max_tokens: u64, retrieved_at: String) -> Self {
        let base = url::Url::parse(url).ok();
        let page = match kind {
            Kind::Html => html_to_text(body, base.as_ref()),
            Kind::Text | Kind::Pdf => Page {
                title: None,
                text: body.to_string(),
            },
        };
        let (content, truncated) = within_tokens(page.text, max_tokens);
        FetchResult {
            url: url.to_string(),
            title: page.title,
            content: Some(content),
            status: "completed",
            retrieved_at: Some(retrieved_at),
            error: None,
            truncated,
        }
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

#[cfg(test)]
#[path = "web_page_tests.rs"]
mod tests;
