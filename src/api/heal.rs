//! Response healing: JSON as models get it wrong (in a markdown fence, after a sentence
//! of prose, with trailing commas, unquoted keys, single quotes, Python's `True`, or cut
//! off mid-string or mid-object) read by a tolerant parser and written back as JSON.
//! Pure; the edge applies it to a reply's content when the request asked for JSON and
//! for the `response-healing` plugin.

use serde_json::{Map, Value};

use super::{ChatCompletion, ChatRequest, ResponseFormat};

/// Nesting deeper than this is not healed (the parser recurses).
const MAX_DEPTH: usize = 128;

/// What healing made of a reply's text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Healed {
    /// It was JSON already: left as it came.
    Valid,
    /// Repaired into this JSON.
    Repaired(String),
    /// No JSON could be read from it.
    Failed,
}

/// Heals `text` into JSON, if it needs it and can be.
pub fn heal(text: &str) -> Healed {
    if serde_json::from_str::<serde::de::IgnoredAny>(text).is_ok() {
        return Healed::Valid;
    }
    let body = unfenced(text);
    let Some(start) = body.find(['{', '[']) else {
        return Healed::Failed;
    };
    let chars: Vec<char> = body.get(start..).unwrap_or_default().chars().collect();
    let mut p = Parser { s: &chars, at: 0 };
    match p.value(0) {
        Some(v @ (Value::Object(_) | Value::Array(_))) => {
            serde_json::to_string(&v).map_or(Healed::Failed, Healed::Repaired)
        }
        _ => Healed::Failed,
    }
}

/// What healing did to a reply (`openrouter_metadata.pipeline`'s `response_healing`
/// stage), and whether the JSON fits the schema asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealReport {
    /// `json_schema` or `json_object`.
    pub mode: &'static str,
    /// Whether a reply's content was repaired.
    pub healed: bool,
    pub original_length: usize,
    pub healed_length: usize,
    /// Where the (repaired) JSON fails the schema, or that none could be read.
    pub invalid: Option<String>,
}

impl HealReport {
    /// The pipeline stage, as JSON.
    pub fn stage(&self) -> String {
        format!(
            r#"{{"type":"response_healing","name":"response-healing","data":{{"mode":"{}","healed":{},"original_length":{},"healed_length":{},"valid":{}}}}}"#,
            self.mode,
            self.healed,
            self.original_length,
            self.healed_length,
            self.invalid.is_none()
        )
    }
}

/// What a request asks healing of: JSON of a mode, fitting a schema or not.
#[derive(Debug, Clone, PartialEq)]
pub struct Healer {
    mode: &'static str,
    schema: Option<Value>,
    /// The plugin's `retry`: a reply whose JSON still fails is tried elsewhere.
    pub retry: bool,
}

impl Healer {
    /// The healing `req` asks for: JSON (`response_format` `json_object` or
    /// `json_schema`) and the `response-healing` plugin.
    pub fn of(req: &ChatRequest) -> Option<Healer> {
        let plugin = req.plugins.healing()?;
        let mode = match req.response_format.as_ref()? {
            ResponseFormat::JsonObject => "json_object",
            ResponseFormat::JsonSchema { .. } => "json_schema",
            ResponseFormat::Text => return None,
        };
        Some(Healer {
            mode,
            schema: req.json_schema_format().map(|(_, s)| s),
            retry: plugin.retry,
        })
    }

    /// `json_schema` or `json_object`.
    pub fn mode(&self) -> &'static str {
        self.mode
    }

    /// Where `value` fails the schema asked for, if one was.
    pub fn misfit(&self, value: &Value) -> Option<String> {
        let schema = self.schema.as_ref()?;
        super::schema::validate(schema, value).err()
    }

    /// Heals the content of each choice of `reply` and checks it against the schema.
    pub fn apply(&self, reply: &mut ChatCompletion) -> HealReport {
        let mut report = HealReport {
            mode: self.mode,
            healed: false,
            original_length: 0,
            healed_length: 0,
            invalid: None,
        };
        for choice in &mut reply.choices {
            // A reply of tool calls only has no content to heal.
            let Some(text) = choice.message.content.as_mut() else {
                continue;
            };
            report.original_length = report.original_length.saturating_add(text.len());
            match heal(text) {
                Healed::Valid => {}
                Healed::Repaired(json) => {
                    *text = json;
                    report.healed = true;
                }
                Healed::Failed => {
                    report
                        .invalid
                        .get_or_insert_with(|| "no JSON could be read from the reply".into());
                }
            }
            report.healed_length = report.healed_length.saturating_add(text.len());
            let parsed = serde_json::from_str::<Value>(text).ok();
            if let (Some(schema), Some(v), None) = (&self.schema, &parsed, &report.invalid) {
                report.invalid = super::schema::validate(schema, v).err();
            }
        }
        report
    }
}

/// Heals `reply` as `req` asks, if it does.
pub fn heal_reply(req: &ChatRequest, reply: &mut ChatCompletion) -> Option<HealReport> {
    Some(Healer::of(req)?.apply(reply))
}

/// The inside of the first markdown code fence, if the text has one.
fn unfenced(text: &str) -> &str {
    let Some((_, after)) = text.split_once("```") else {
        return text;
    };
    // The fence's info string (`json`) runs to the end of its line.
    let inner = after.split_once('\n').map_or(after, |(_, rest)| rest);
    inner.split_once("```").map_or(inner, |(body, _)| body)
}

struct Parser<'a> {
    s: &'a [char],
    at: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<char> {
        self.s.get(self.at).copied()
    }

    fn bump(&mut self) {
        self.at = self.at.saturating_add(1);
    }

    fn at_end(&self) -> bool {
        self.at >= self.s.len()
    }

    /// Skips whitespace and `//` and `/* */` comments.
    fn skip(&mut self) {
        loop {
            match (self.peek(), self.s.get(self.at.saturating_add(1)).copied()) {
                (Some(c), _) if c.is_ascii_whitespace() || c == '\u{a0}' => self.bump(),
                (Some('/'), Some('/')) => {
                    while self.peek().is_some_and(|c| c != '\n') {
                        self.bump();
                    }
                }
                (Some('/'), Some('*')) => {
                    self.at = self.at.saturating_add(2);
                    while !(self.at_end() || self.peek() == Some('*') && self.next_is('/')) {
                        self.bump();
                    }
                    self.at = self.at.saturating_add(2);
                }
                _ => return,
            }
        }
    }

    fn next_is(&self, c: char) -> bool {
        self.s.get(self.at.saturating_add(1)) == Some(&c)
    }

    /// A value; `None` where there is none (at the end of a cut-off text, or where
    /// nothing JSON-like is).
    fn value(&mut self, depth: usize) -> Option<Value> {
        if depth > MAX_DEPTH {
            return None;
        }
        self.skip();
        match self.peek()? {
            '{' => self.object(depth),
            '[' => self.array(depth),
            q @ ('"' | '\'') => Some(Value::String(self.string(q))),
            c if c.is_ascii_digit() || matches!(c, '-' | '+' | '.') => self.number(),
            c if c.is_ascii_alphabetic() => self.word(),
            _ => None,
        }
    }

    fn object(&mut self, depth: usize) -> Option<Value> {
        self.bump();
        let mut m = Map::new();
        loop {
            self.skip();
            match self.peek() {
                None => break,
                Some('}') => {
                    self.bump();
                    break;
                }
                Some(',') => {
                    self.bump();
                    continue;
                }
                Some(_) => {}
            }
            let key = self.key()?;
            self.skip();
            match self.peek() {
                Some(':' | '=') => self.bump(),
                None => break,
                Some(_) => return None,
            }
            match self.value(depth.saturating_add(1)) {
                Some(v) => {
                    m.insert(key, v);
                }
                None if self.at_end() => break,
                None => return None,
            }
        }
        Some(Value::Object(m))
    }

    fn key(&mut self) -> Option<String> {
        match self.peek()? {
            q @ ('"' | '\'') => Some(self.string(q)),
            _ => {
                let from = self.at;
                while self.peek().is_some_and(|c| {
                    c.is_ascii_alphanumeric() || matches!(c, '_' | '$' | '-') || !c.is_ascii()
                }) {
                    self.bump();
                }
                let key: String = self.s.get(from..self.at)?.iter().collect();
                (!key.is_empty()).then_some(key)
            }
        }
    }

    fn array(&mut self, depth: usize) -> Option<Value> {
        self.bump();
        let mut items = Vec::new();
        loop {
            self.skip();
            match self.peek() {
                None => break,
                Some(']') => {
                    self.bump();
                    break;
                }
                Some(',') => {
                    self.bump();
                    continue;
                }
                Some(_) => {}
            }
            match self.value(depth.saturating_add(1)) {
                Some(v) => items.push(v),
                None if self.at_end() => break,
                None => return None,
            }
        }
        Some(Value::Array(items))
    }

    /// A string in `quote`s, closed at the end of a cut-off text.
    fn string(&mut self, quote: char) -> String {
        self.bump();
        let mut out = String::new();
        while let Some(c) = self.peek() {
            self.bump();
            match c {
                c if c == quote => return out,
                '\\' => {
                    let Some(e) = self.peek() else { break };
                    self.bump();
                    match e {
                        'n' => out.push('\n'),
                        't' => out.push('\t'),
                        'r' => out.push('\r'),
                        'b' => out.push('\u{8}'),
                        'f' => out.push('\u{c}'),
                        'u' => out.push(self.unicode()),
                        other => out.push(other),
                    }
                }
                c => out.push(c),
            }
        }
        out
    }

    /// The four hex digits after `\u` (a lone or bad one as U+FFFD).
    fn unicode(&mut self) -> char {
        let hex: String = self.s.iter().skip(self.at).take(4).collect();
        self.at = self.at.saturating_add(hex.chars().count());
        u32::from_str_radix(&hex, 16)
            .ok()
            .and_then(char::from_u32)
            .unwrap_or('\u{fffd}')
    }

    fn number(&mut self) -> Option<Value> {
        let from = self.at;
        while self
            .peek()
            .is_some_and(|c| c.is_ascii_digit() || matches!(c, '-' | '+' | '.' | 'e' | 'E'))
        {
            self.bump();
        }
        let raw: String = self.s.get(from..self.at)?.iter().collect();
        let mut t = raw.trim_start_matches('+').to_string();
        if t.starts_with('.') {
            t.insert(0, '0');
        }
        // A number cut off after its point or exponent sign.
        let t = t.trim_end_matches(['.', 'e', 'E', '-', '+']);
        serde_json::from_str::<Value>(t)
            .ok()
            .filter(Value::is_number)
    }

    /// `true`, `false`, `null` (and Python's spellings), or the start of one cut off.
    fn word(&mut self) -> Option<Value> {
        let from = self.at;
        while self.peek().is_some_and(|c| c.is_ascii_alphanumeric()) {
            self.bump();
        }
        let w: String = self.s.get(from..self.at)?.iter().collect();
        let cut = self.at_end();
        let is = |full: &str, alt: &str| w == full || w == alt || (cut && full.starts_with(&w));
        if is("true", "True") {
            Some(Value::Bool(true))
        } else if is("false", "False") {
            Some(Value::Bool(false))
        } else if is("null", "None") {
            Some(Value::Null)
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn healed(s: &str) -> String {
        match heal(s) {
            Healed::Repaired(j) => j,
            other => panic!("{s:?} gave {other:?}"),
        }
    }

    #[test]
    fn broken_shapes_are_healed() {
        for (broken, fixed) in [
            ("```json\n{\"name\": \"Bob\"}\n```", r#"{"name":"Bob"}"#),
            ("```\n[1, 2]\n```\nHope that helps!", "[1,2]"),
            (
                "Here's the data you requested:\n{\"name\": \"Charlie\", \"age\": 25}",
                r#"{"age":25,"name":"Charlie"}"#,
            ),
            (
                r#"{"name": "David", "age": 35,}"#,
                r#"{"age":35,"name":"David"}"#,
            ),
            (r#"{name: "Eve", age: 40}"#, r#"{"age":40,"name":"Eve"}"#),
            (
                "{'name': 'Frank', 'tags': ['a', 'b',],}",
                r#"{"name":"Frank","tags":["a","b"]}"#,
            ),
            (
                r#"{"name": "Alice", "age": 30"#,
                r#"{"age":30,"name":"Alice"}"#,
            ),
            (
                r#"{"items": [{"id": 1}, {"id": 2"#,
                r#"{"items":[{"id":1},{"id":2}]}"#,
            ),
            (r#"{"quote": "to be or not"#, r#"{"quote":"to be or not"}"#),
            (
                r#"{"ok": True, "none": None, "no": False}"#,
                r#"{"no":false,"none":null,"ok":true}"#,
            ),
            (
                "{\"a\": 1 // one\n, /* two */ \"b\": 2}",
                r#"{"a":1,"b":2}"#,
            ),
            (r#"{"a": 1 "b": 2}"#, r#"{"a":1,"b":2}"#),
            (
                r#"{"price": .5, "n": +3, "cut": 1."#,
                r#"{"cut":1,"n":3,"price":0.5}"#,
            ),
            (r#"{"done": tr"#, r#"{"done":true}"#),
            (
                r#"{"esc": 'it\'s "ok"\u00e9'}"#,
                r#"{"esc":"it's \"ok\"é"}"#,
            ),
            (r#"{"k": "v", "dangling": "#, r#"{"k":"v"}"#),
        ] {
            assert_eq!(healed(broken), fixed, "{broken:?}");
        }
    }

    #[test]
    fn the_stage_is_json() {
        let r = HealReport {
            mode: "json_object",
            healed: true,
            original_length: 9,
            healed_length: 7,
            invalid: Some("x".into()),
        };
        let v: Value = serde_json::from_str(&r.stage()).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"type": "response_healing", "name": "response-healing", "data":
                {"mode": "json_object", "healed": true, "original_length": 9, "healed_length": 7, "valid": false}})
        );
        // Keys that are not ASCII are read unquoted too.
        assert_eq!(heal("{clé: 1}"), Healed::Repaired(r#"{"clé":1}"#.into()));
    }

    #[test]
    fn valid_json_is_left_as_sent() {
        assert_eq!(heal("{\"a\":  [1, 2]}"), Healed::Valid);
        assert_eq!(heal("  [] "), Healed::Valid);
    }

    #[test]
    fn some_texts_cannot_be_healed() {
        for s in [
            "I cannot help with that.",
            "",
            r#"{"a": undefined}"#,
            "{:}",
            "{\"a\": @}",
            "Sure! ```python\nprint(1)\n```",
        ] {
            assert_eq!(heal(s), Healed::Failed, "{s:?}");
        }
    }

    fn reply_of(content: &str) -> ChatCompletion {
        serde_json::from_value(serde_json::json!({
            "id": "g", "created": 1, "model": "m",
            "choices": [{"index": 0, "finish_reason": "stop",
                         "message": {"role": "assistant", "content": content}}]
        }))
        .unwrap()
    }

    fn req_of(format: Value, plugins: Value) -> ChatRequest {
        serde_json::from_value(serde_json::json!({
            "model": "m", "messages": [{"role": "user", "content": "x"}],
            "response_format": format, "plugins": plugins
        }))
        .unwrap()
    }

    #[test]
    fn replies_are_healed_and_checked_against_the_schema() {
        let schema = serde_json::json!({"type": "json_schema", "json_schema": {"name": "p",
            "schema": {"type": "object", "required": ["name", "price"],
                       "properties": {"name": {"type": "string"}, "price": {"type": "number"}}}}});
        let on = serde_json::json!([{"id": "response-healing"}]);
        let req = req_of(schema.clone(), on.clone());
        let mut reply = reply_of("```json\n{name: 'Pen', price: 2,}\n```");
        let report = heal_reply(&req, &mut reply).unwrap();
        assert_eq!(
            reply.choices[0].message.content.as_deref(),
            Some(r#"{"name":"Pen","price":2}"#)
        );
        assert_eq!(
            report,
            HealReport {
                mode: "json_schema",
                healed: true,
                original_length: 36,
                healed_length: 24,
                invalid: None
            }
        );
        let mut short = reply_of(r#"{"name": "Pen""#);
        let report = heal_reply(&req, &mut short).unwrap();
        assert_eq!(
            report.invalid.as_deref(),
            Some("$: is missing the required property \"price\"")
        );
        let mut prose = reply_of("Sorry, no.");
        let report = heal_reply(&req, &mut prose).unwrap();
        assert_eq!(
            report.invalid.as_deref(),
            Some("no JSON could be read from the reply")
        );
        assert_eq!(
            prose.choices[0].message.content.as_deref(),
            Some("Sorry, no.")
        );
        // Without the plugin, or without a JSON format, nothing is touched.
        let mut untouched = reply_of("{a: 1}");
        let plain = req_of(schema, serde_json::json!([]));
        assert_eq!(heal_reply(&plain, &mut untouched), None);
        let text = req_of(serde_json::json!({"type": "text"}), on);
        assert_eq!(heal_reply(&text, &mut untouched), None);
        assert_eq!(
            untouched.choices[0].message.content.as_deref(),
            Some("{a: 1}")
        );
    }

    #[test]
    fn deep_nesting_fails_without_overflow() {
        let deep = "[".repeat(10_000);
        assert_eq!(heal(&deep), Healed::Failed);
        let ok = format!("{}{}", "[".repeat(50), "]".repeat(49));
        assert!(matches!(heal(&ok), Healed::Repaired(_)));
    }
}
