//! A page content stream's text: its tokens read one by one (numbers, names, literal
//! and hex strings, arrays, dictionaries, operators; inline images skipped), and the
//! text-showing operators `Tj`, `TJ`, `'` and `"` written out, with line breaks where
//! `Td`/`TD`/`T*`/`Tm` move to another line and a space where a `TJ` gap is a word's.

/// The deepest nesting of arrays and dictionaries read in a content stream.
const MAX_NESTING: usize = 32;
/// A `TJ` gap (thousandths of an em, negative to the right) wider than this is a space.
const SPACE_GAP: f64 = 200.0;

/// Text being written: at most `max` characters, line and page breaks folded.
pub(super) struct Text {
    s: String,
    chars: usize,
    max: usize,
    pub truncated: bool,
    /// A break owed before the next character: 0 none, 1 space, 2 line, 3 page.
    owed: u8,
}

impl Text {
    pub fn new(max: usize) -> Self {
        Text {
            s: String::new(),
            chars: 0,
            max,
            truncated: false,
            owed: 0,
        }
    }

    pub fn full(&self) -> bool {
        self.chars >= self.max
    }

    fn owe(&mut self, level: u8) {
        if !self.s.is_empty() {
            self.owed = self.owed.max(level);
        }
    }

    pub fn page_break(&mut self) {
        self.owe(3);
    }

    fn push(&mut self, c: char) {
        if c.is_whitespace() {
            self.owe(1);
            return;
        }
        if c.is_control() {
            return;
        }
        let sep = match self.owed {
            1 => " ",
            2 => "\n",
            3 => "\n\n",
            _ => "",
        };
        let need = sep.len().saturating_add(1);
        if self.chars.saturating_add(need) > self.max {
            self.truncated = true;
            self.chars = self.max;
            return;
        }
        self.s.push_str(sep);
        self.s.push(c);
        self.chars = self.chars.saturating_add(need);
        self.owed = 0;
    }

    fn show(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.push(win_ansi(*b));
        }
    }

    pub fn finish(self) -> String {
        self.s
    }
}

/// One token of a content stream.
#[derive(Debug, Clone, PartialEq)]
enum Token {
    Number(f64),
    Str(Vec<u8>),
    Array(Vec<Token>),
    /// A name, a dictionary, `true`/`false`/`null`: operands the text does not use.
    Other,
    Op(Vec<u8>),
}

/// Writes the text of the content stream `data` to `out`.
pub(super) fn read(data: &[u8], out: &mut Text) {
    let mut lexer = Lexer { b: data, at: 0 };
    let mut operands: Vec<Token> = Vec::new();
    let mut last_y: Option<f64> = None;
    while !out.full() {
        let Some(token) = lexer.token(0) else { break };
        let Token::Op(op) = token else {
            if operands.len() < 64 {
                operands.push(token);
            }
            continue;
        };
        apply(&op, &operands, out, &mut last_y);
        if op == b"ID" {
            lexer.skip_inline_image();
        }
        operands.clear();
    }
}

/// One operator's effect on the text.
fn apply(op: &[u8], operands: &[Token], out: &mut Text, last_y: &mut Option<f64>) {
    let number = |i: usize| match operands.get(i) {
        Some(Token::Number(n)) => Some(*n),
        _ => None,
    };
    match op {
        b"Tj" | b"'" | b"\"" => {
            if op != b"Tj" {
                out.owe(2);
            }
            if let Some(Token::Str(s)) = operands.last() {
                out.show(s);
            }
        }
        b"TJ" => {
            if let Some(Token::Array(items)) = operands.last() {
                for item in items {
                    match item {
                        Token::Str(s) => out.show(s),
                        Token::Number(n) if *n < -SPACE_GAP => out.owe(1),
                        _ => {}
                    }
                }
            }
        }
        b"Td" | b"TD" => match number(1) {
            Some(ty) if ty != 0.0 => out.owe(2),
            _ => {
                if number(0).is_some_and(|tx| tx > 0.0) {
                    out.owe(1);
                }
            }
        },
        b"T*" => out.owe(2),
        b"Tm" => {
            let y = number(5);
            if y.is_some() && *last_y != y {
                if last_y.is_some() {
                    out.owe(2);
                }
                *last_y = y;
            } else {
                out.owe(1);
            }
        }
        b"ET" => out.owe(1),
        _ => {}
    }
}

/// A cursor over a content stream's bytes.
struct Lexer<'a> {
    b: &'a [u8],
    at: usize,
}

impl Lexer<'_> {
    fn peek(&self) -> Option<u8> {
        self.b.get(self.at).copied()
    }

    fn bump(&mut self) -> Option<u8> {
        let c = self.peek()?;
        self.at = self.at.saturating_add(1);
        Some(c)
    }

    /// Past whitespace and `%` comments.
    fn skip_space(&mut self) {
        while let Some(c) = self.peek() {
            if c == b'%' {
                while self.peek().is_some_and(|c| c != b'\n' && c != b'\r') {
                    self.bump();
                }
            } else if is_space(c) {
                self.bump();
            } else {
                break;
            }
        }
    }

    /// The next token, `None` at the end (or at an array's `]` when `depth > 0`).
    fn token(&mut self, depth: usize) -> Option<Token> {
        loop {
            self.skip_space();
            let c = self.peek()?;
            return Some(match c {
                b'(' => {
                    self.bump();
                    Token::Str(self.literal())
                }
                b'<' if self.b.get(self.at.saturating_add(1)) == Some(&b'<') => {
                    self.at = self.at.saturating_add(2);
                    self.dict(depth);
                    Token::Other
                }
                b'<' => {
                    self.bump();
                    Token::Str(self.hex())
                }
                b'[' => {
                    self.bump();
                    Token::Array(self.array(depth))
                }
                b']' | b'>' | b')' | b'{' | b'}' => {
                    self.bump();
                    if depth > 0 && c == b']' {
                        return None;
                    }
                    continue;
                }
                b'/' => {
                    self.bump();
                    self.word();
                    Token::Other
                }
                _ => {
                    let w = self.word();
                    if w.is_empty() {
                        self.bump();
                        continue;
                    }
                    word_token(w)
                }
            });
        }
    }

    /// A run of regular characters.
    fn word(&mut self) -> Vec<u8> {
        let mut w = Vec::new();
        while let Some(c) = self.peek().filter(|c| !is_space(*c) && !is_delim(*c)) {
            w.push(c);
            self.bump();
        }
        w
    }

    /// An array's items, after its `[`.
    fn array(&mut self, depth: usize) -> Vec<Token> {
        let mut items = Vec::new();
        if depth >= MAX_NESTING {
            self.skip_to(b']');
            return items;
        }
        while let Some(t) = self.token(depth.saturating_add(1)) {
            if items.len() < 4096 {
                items.push(t);
            }
        }
        items
    }

    /// A dictionary, skipped, after its `<<`.
    fn dict(&mut self, depth: usize) {
        let mut level = depth.saturating_add(1);
        while let Some(c) = self.bump() {
            let next = self.peek();
            match (c, next) {
                (b'<', Some(b'<')) => {
                    self.bump();
                    level = level.saturating_add(1);
                }
                (b'>', Some(b'>')) => {
                    self.bump();
                    level = level.saturating_sub(1);
                    if level <= depth {
                        return;
                    }
                }
                (b'(', _) => {
                    self.literal();
                }
                _ => {}
            }
        }
    }

    fn skip_to(&mut self, end: u8) {
        while self.bump().is_some_and(|c| c != end) {}
    }

    /// A literal string's bytes, after its `(`: nested parentheses kept, escapes read.
    fn literal(&mut self) -> Vec<u8> {
        let mut out = Vec::new();
        let mut level = 0usize;
        while let Some(c) = self.bump() {
            match c {
                b'(' => {
                    level = level.saturating_add(1);
                    out.push(c);
                }
                b')' if level == 0 => break,
                b')' => {
                    level = level.saturating_sub(1);
                    out.push(c);
                }
                b'\\' => {
                    if let Some(e) = self.escape() {
                        out.push(e);
                    }
                }
                _ => out.push(c),
            }
        }
        out
    }

    /// The byte an escape after `\` stands for (`None` for a line continuation).
    fn escape(&mut self) -> Option<u8> {
        let c = self.bump()?;
        Some(match c {
            b'n' => b'\n',
            b'r' => b'\r',
            b't' => b'\t',
            b'b' => 0x08,
            b'f' => 0x0c,
            b'0'..=b'7' => {
                let mut v = u32::from(c.wrapping_sub(b'0'));
                for _ in 0..2 {
                    match self.peek() {
                        Some(d @ b'0'..=b'7') => {
                            self.bump();
                            v = v
                                .wrapping_mul(8)
                                .wrapping_add(u32::from(d.wrapping_sub(b'0')));
                        }
                        _ => break,
                    }
                }
                (v & 0xff) as u8
            }
            b'\r' => {
                if self.peek() == Some(b'\n') {
                    self.bump();
                }
                return None;
            }
            b'\n' => return None,
            other => other,
        })
    }

    /// A hex string's bytes, after its `<`: whitespace ignored, an odd last digit
    /// taken as followed by 0.
    fn hex(&mut self) -> Vec<u8> {
        let mut out = Vec::new();
        let mut high: Option<u8> = None;
        while let Some(c) = self.bump() {
            if c == b'>' {
                break;
            }
            let Some(v) = (c as char).to_digit(16) else {
                continue;
            };
            let v = (v & 0xf) as u8;
            match high.take() {
                Some(h) => out.push(h.wrapping_shl(4) | v),
                None => high = Some(v),
            }
        }
        if let Some(h) = high {
            out.push(h.wrapping_shl(4));
        }
        out
    }

    /// Past an inline image's data, after `ID`: to whitespace, `EI`, whitespace or the end.
    fn skip_inline_image(&mut self) {
        self.bump();
        while self.peek().is_some() {
            let rest = self.b.get(self.at..).unwrap_or_default();
            if let [s, b'E', b'I', e, ..] = rest {
                if is_space(*s) && (is_space(*e) || is_delim(*e)) {
                    self.at = self.at.saturating_add(3);
                    return;
                }
            }
            if let [s, b'E', b'I'] = rest {
                if is_space(*s) {
                    self.at = self.b.len();
                    return;
                }
            }
            self.bump();
        }
    }
}

/// A word's token: a number, or an operator (`true`, `false` and `null` are operands).
fn word_token(w: Vec<u8>) -> Token {
    let numeric = w.iter().all(|c| c.is_ascii_digit() || b"+-.".contains(c));
    if numeric {
        let n = std::str::from_utf8(&w)
            .ok()
            .and_then(|s| s.parse::<f64>().ok());
        return Token::Number(n.filter(|n| n.is_finite()).unwrap_or(0.0));
    }
    if matches!(w.as_slice(), b"true" | b"false" | b"null") {
        return Token::Other;
    }
    Token::Op(w)
}

fn is_space(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\r' | b'\n' | 0x0c | 0)
}

fn is_delim(c: u8) -> bool {
    b"()<>[]{}/%".contains(&c)
}

/// The character a single byte stands for in WinAnsiEncoding (Latin-1 with the
/// typographic characters of 0x80-0x9F).
pub(super) fn win_ansi(b: u8) -> char {
    const HIGH: [char; 32] = [
        '€', '\u{81}', '‚', 'ƒ', '„', '…', '†', '‡', 'ˆ', '‰', 'Š', '‹', 'Œ', '\u{8d}', 'Ž',
        '\u{8f}', '\u{90}', '‘', '’', '“', '”', '•', '–', '—', '˜', '™', 'š', '›', 'œ', '\u{9d}',
        'ž', 'Ÿ',
    ];
    match b {
        0x80..=0x9f => HIGH
            .get(usize::from(b.wrapping_sub(0x80)))
            .copied()
            .unwrap_or('\u{fffd}'),
        _ => char::from(b),
    }
}
