//! Tool-call quality: each tool call a model makes, checked against the request's
//! tools. A call fails when its arguments are not JSON ([`ToolCallError::InvalidJson`]),
//! names no tool the request offered ([`ToolCallError::UnknownName`]) or does not fit
//! the tool's `parameters` ([`ToolCallError::SchemaMismatch`]). The schema check is a
//! small validator of the subset models get wrong: `type` (one or a list), `required`,
//! `properties`, `enum`, `additionalProperties: false` and array `items`; anything
//! else in a schema is not checked (a call is never failed for what is not looked at).
//! Replies are counted as OpenRouter counts its tool call error rate: a reply with
//! tool calls fails when any of its calls does. The counts feed each endpoint's health
//! (`routing::health`).

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;

use super::request::Tool;

/// Why a tool call failed its check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ToolCallError {
    InvalidJson,
    UnknownName,
    /// Where in the arguments (a JSON pointer) and what is wrong.
    SchemaMismatch(String),
}

/// Replies whose tool calls all passed their check, and replies with one that failed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ToolTally {
    pub ok: u32,
    pub failed: u32,
}

impl ToolTally {
    pub fn add(&mut self, r: &Result<(), ToolCallError>) {
        match r {
            Ok(()) => self.ok = self.ok.saturating_add(1),
            Err(_) => self.failed = self.failed.saturating_add(1),
        }
    }
}

/// Checks one call of `name` with `arguments` (the JSON text the model wrote) against
/// `tools`. Empty arguments are a call without arguments (`{}`), as several providers
/// write one.
pub fn check(tools: &[Tool], name: &str, arguments: &str) -> Result<(), ToolCallError> {
    let args = if arguments.trim().is_empty() {
        Value::Object(serde_json::Map::new())
    } else {
        serde_json::from_str::<Value>(arguments).map_err(|_| ToolCallError::InvalidJson)?
    };
    let tool = tools
        .iter()
        .find(|t| t.function.name == name)
        .ok_or(ToolCallError::UnknownName)?;
    let Some(schema) = tool.function.parameters.as_ref() else {
        return Ok(());
    };
    // A schema outside the subset read here is not held against the model.
    let Ok(schema) = Schema::deserialize(schema) else {
        return Ok(());
    };
    schema
        .check(&args, &mut String::new())
        .map_err(ToolCallError::SchemaMismatch)
}

/// The calls `(name, arguments)` of one reply, checked: one reply that passed or
/// failed; nothing for a reply without calls.
pub fn tally<'c>(tools: &[Tool], calls: impl IntoIterator<Item = (&'c str, &'c str)>) -> ToolTally {
    let mut t = ToolTally::default();
    let mut any = false;
    for (name, args) in calls {
        any = true;
        if check(tools, name, args).is_err() {
            t.add(&Err(ToolCallError::InvalidJson));
            return t;
        }
    }
    if any {
        t.add(&Ok(()));
    }
    t
}

/// The part of a JSON Schema that is checked.
#[derive(Debug, Default, Deserialize)]
struct Schema {
    #[serde(rename = "type", default)]
    kind: Option<Types>,
    #[serde(default)]
    properties: Option<BTreeMap<String, Schema>>,
    #[serde(default)]
    required: Vec<String>,
    #[serde(rename = "enum", default)]
    allowed: Option<Vec<Value>>,
    #[serde(rename = "additionalProperties", default)]
    additional: Option<Additional>,
    #[serde(default)]
    items: Option<Box<Schema>>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Types {
    One(String),
    Any(Vec<String>),
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Additional {
    Allowed(bool),
    Schema(Box<Schema>),
}

/// Whether `v` is of the JSON Schema type `t`, as the structured-outputs validator
/// reads types; a type name outside JSON Schema's passes (not held against the model).
fn is_type(t: &str, v: &Value) -> bool {
    const NAMES: [&str; 7] = [
        "object", "array", "string", "boolean", "null", "number", "integer",
    ];
    !NAMES.contains(&t) || super::schema::is_type(t, v)
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

impl Schema {
    /// Checks `v` at `path` (a JSON pointer, grown and shrunk as the walk goes).
    fn check(&self, v: &Value, path: &mut String) -> Result<(), String> {
        let at = |p: &str| {
            if p.is_empty() {
                "/".to_string()
            } else {
                p.to_string()
            }
        };
        let typed = match &self.kind {
            None => true,
            Some(Types::One(t)) => is_type(t, v),
            Some(Types::Any(ts)) => ts.is_empty() || ts.iter().any(|t| is_type(t, v)),
        };
        if !typed {
            return Err(format!("{}: unexpected {}", at(path), type_name(v)));
        }
        if let Some(allowed) = &self.allowed {
            if !allowed.contains(v) {
                return Err(format!("{}: not one of the enum values", at(path)));
            }
        }
        match v {
            Value::Object(map) => self.check_object(map, path),
            Value::Array(items) => {
                let Some(schema) = &self.items else {
                    return Ok(());
                };
                for (i, item) in items.iter().enumerate() {
                    let len = path.len();
                    path.push_str(&format!("/{i}"));
                    schema.check(item, path)?;
                    path.truncate(len);
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }

    fn check_object(
        &self,
        map: &serde_json::Map<String, Value>,
        path: &mut String,
    ) -> Result<(), String> {
        if let Some(missing) = self.required.iter().find(|k| !map.contains_key(*k)) {
            return Err(format!("{path}/{missing}: required"));
        }
        let none = BTreeMap::new();
        let props = self.properties.as_ref().unwrap_or(&none);
        for (k, v) in map {
            let len = path.len();
            path.push('/');
            path.push_str(k);
            match (props.get(k), &self.additional) {
                (Some(s), _) => s.check(v, path)?,
                (None, Some(Additional::Schema(s))) => s.check(v, path)?,
                (None, Some(Additional::Allowed(false))) => {
                    return Err(format!("{path}: not allowed (additionalProperties: false)"));
                }
                (None, _) => {}
            }
            path.truncate(len);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn tools() -> Vec<Tool> {
        serde_json::from_value(json!([
            {"type": "function", "function": {"name": "get_weather", "parameters": {
                "type": "object",
                "properties": {
                    "city": {"type": "string"},
                    "unit": {"type": "string", "enum": ["c", "f"]},
                    "days": {"type": "integer"},
                    "tags": {"type": "array", "items": {"type": "string"}},
                    "near": {"type": ["object", "null"], "properties": {"lat": {"type": "number"}},
                             "required": ["lat"]}
                },
                "required": ["city"],
                "additionalProperties": false
            }}},
            {"type": "function", "function": {"name": "now"}}
        ]))
        .unwrap()
    }

    fn mismatch(args: &str) -> String {
        match check(&tools(), "get_weather", args) {
            Err(ToolCallError::SchemaMismatch(why)) => why,
            other => panic!("{args}: {other:?}"),
        }
    }

    #[test]
    fn each_kind_of_failure() {
        let t = tools();
        assert_eq!(check(&t, "get_weather", r#"{"city": "Oslo"}"#), Ok(()));
        assert_eq!(
            check(
                &t,
                "get_weather",
                r#"{"city": "Oslo", "unit": "c", "days": 3, "tags": ["a"], "near": {"lat": 1.5}}"#
            ),
            Ok(())
        );
        assert_eq!(
            check(&t, "get_weather", r#"{"city": "Oslo"#),
            Err(ToolCallError::InvalidJson)
        );
        assert_eq!(
            check(&t, "get_weather", "city=Oslo"),
            Err(ToolCallError::InvalidJson)
        );
        assert_eq!(
            check(&t, "get_wether", r#"{"city": "Oslo"}"#),
            Err(ToolCallError::UnknownName)
        );
        assert_eq!(mismatch("{}"), "/city: required");
        assert_eq!(mismatch(r#"{"city": 7}"#), "/city: unexpected number");
        assert_eq!(
            mismatch(r#"{"city": "Oslo", "unit": "k"}"#),
            "/unit: not one of the enum values"
        );
        assert_eq!(
            mismatch(r#"{"city": "Oslo", "days": 2.5}"#),
            "/days: unexpected number"
        );
        assert_eq!(
            mismatch(r#"{"city": "Oslo", "tags": ["a", 1]}"#),
            "/tags/1: unexpected number"
        );
        assert_eq!(
            mismatch(r#"{"city": "Oslo", "country": "NO"}"#),
            "/country: not allowed (additionalProperties: false)"
        );
        assert_eq!(
            mismatch(r#"{"city": "Oslo", "near": {}}"#),
            "/near/lat: required"
        );
        assert_eq!(mismatch(r#"["Oslo"]"#), "/: unexpected array");
        // Null is one of `near`'s types; a whole number is an integer.
        assert_eq!(
            check(
                &t,
                "get_weather",
                r#"{"city": "Oslo", "near": null, "days": 2.0}"#
            ),
            Ok(())
        );
    }

    #[test]
    fn no_schema_and_empty_arguments_pass_and_tally_counts() {
        let t = tools();
        assert_eq!(check(&t, "now", ""), Ok(()));
        assert_eq!(check(&t, "now", r#"{"anything": 1}"#), Ok(()));
        // A schema outside the subset is not held against the call.
        let odd: Vec<Tool> = serde_json::from_value(json!([
            {"type": "function", "function": {"name": "f", "parameters": {"type": 5}}}
        ]))
        .unwrap();
        assert_eq!(check(&odd, "f", "{}"), Ok(()));
        // A reply fails when one of its calls does.
        let calls = [
            ("now", ""),
            ("get_weather", "{}"),
            ("get_weather", r#"{"city":"x"}"#),
        ];
        assert_eq!(tally(&t, calls), ToolTally { ok: 0, failed: 1 });
        let calls = [("now", ""), ("get_weather", r#"{"city":"x"}"#)];
        assert_eq!(tally(&t, calls), ToolTally { ok: 1, failed: 0 });
        assert_eq!(tally(&t, []), ToolTally::default());
    }
}
