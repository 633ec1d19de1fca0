//! A JSON Schema validator for the subset structured outputs allow (OpenAI's and
//! OpenRouter's `response_format.json_schema`): `type`, `properties`, `required`,
//! `additionalProperties`, `items`, `enum`, `const`, `anyOf`/`oneOf`/`allOf`,
//! `$ref` into `$defs`/`definitions`, and the bounds (`minimum`, `maximum`, their
//! exclusive forms, `minLength`, `maxLength`, `minItems`, `maxItems`). Keywords
//! outside it (`pattern`, `format`, ...) are not checked. Written here rather than
//! taken from a crate: `jsonschema` and `boon` both depend on a regex engine (for
//! `pattern`), tens of KB gzipped on their own, where the worker had under 12 KB left of
//! its size budget (judged by their dependency trees; neither was built for wasm32).

use serde_json::{Map, Value};

/// `$ref`s followed deeper than this fail (a schema that refers to itself forever).
const MAX_DEPTH: usize = 64;

/// Checks `value` against `schema`: the first place it fails and why, as
/// `$.items[2].price: must be at least 0`.
pub fn validate(schema: &Value, value: &Value) -> Result<(), String> {
    let v = Validator { root: schema };
    v.check(schema, value, "$", 0)
}

struct Validator<'a> {
    root: &'a Value,
}

fn num(s: &Map<String, Value>, k: &str) -> Option<f64> {
    s.get(k).and_then(Value::as_f64)
}

impl Validator<'_> {
    fn check(&self, schema: &Value, v: &Value, at: &str, depth: usize) -> Result<(), String> {
        if depth > MAX_DEPTH {
            return Err(format!("{at}: the schema nests too deep"));
        }
        let s = match schema {
            Value::Bool(true) => return Ok(()),
            Value::Bool(false) => return Err(format!("{at}: is not allowed")),
            Value::Object(s) => s,
            _ => return Ok(()),
        };
        if let Some(r) = s.get("$ref").and_then(Value::as_str) {
            let target = self
                .resolve(r)
                .ok_or_else(|| format!("{at}: $ref {r:?} is not in the schema"))?;
            self.check(target, v, at, depth.saturating_add(1))?;
        }
        if let Some(t) = s.get("type") {
            if !type_matches(t, v) {
                return Err(format!(
                    "{at}: must be of type {}, not {}",
                    show_type(t),
                    super::read::kind_of(v)
                ));
            }
        }
        if let Some(allowed) = s.get("enum").and_then(Value::as_array) {
            if !allowed.contains(v) {
                return Err(format!(
                    "{at}: must be one of {}",
                    Value::Array(allowed.clone())
                ));
            }
        }
        if let Some(c) = s.get("const") {
            if c != v {
                return Err(format!("{at}: must be {c}"));
            }
        }
        self.combinators(s, v, at, depth)?;
        match v {
            Value::Object(o) => self.object(s, o, at, depth),
            Value::Array(a) => self.array(s, a, at, depth),
            Value::String(t) => bounds(
                s,
                t.chars().count() as f64,
                "minLength",
                "maxLength",
                at,
                "characters",
            ),
            Value::Number(n) => number(s, n.as_f64().unwrap_or_default(), at),
            _ => Ok(()),
        }
    }

    /// `#`, `#/$defs/x`, `#/definitions/x` (a JSON pointer into the root schema).
    fn resolve(&self, r: &str) -> Option<&Value> {
        let pointer = r.strip_prefix('#')?;
        self.root.pointer(pointer)
    }

    fn combinators(
        &self,
        s: &Map<String, Value>,
        v: &Value,
        at: &str,
        depth: usize,
    ) -> Result<(), String> {
        let deeper = depth.saturating_add(1);
        for sub in s
            .get("allOf")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            self.check(sub, v, at, deeper)?;
        }
        for (key, exactly_one) in [("anyOf", false), ("oneOf", true)] {
            let Some(subs) = s.get(key).and_then(Value::as_array) else {
                continue;
            };
            let passing = subs
                .iter()
                .filter(|sub| self.check(sub, v, at, deeper).is_ok())
                .count();
            if passing == 0 || (exactly_one && passing > 1) {
                let which = if exactly_one { "exactly one" } else { "any" };
                return Err(format!(
                    "{at}: matches {passing} of the {key} schemas, not {which}"
                ));
            }
        }
        Ok(())
    }

    fn object(
        &self,
        s: &Map<String, Value>,
        o: &Map<String, Value>,
        at: &str,
        depth: usize,
    ) -> Result<(), String> {
        for r in s
            .get("required")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if let Some(k) = r.as_str().filter(|k| !o.contains_key(*k)) {
                return Err(format!("{at}: is missing the required property {k:?}"));
            }
        }
        let props = s.get("properties").and_then(Value::as_object);
        let extra = s.get("additionalProperties");
        for (k, val) in o {
            let here = format!("{at}.{k}");
            match props.and_then(|p| p.get(k)) {
                Some(sub) => self.check(sub, val, &here, depth.saturating_add(1))?,
                None => match extra {
                    Some(Value::Bool(false)) => {
                        return Err(format!(
                            "{at}: has the property {k:?}, which the schema does not allow"
                        ))
                    }
                    Some(sub @ Value::Object(_)) => {
                        self.check(sub, val, &here, depth.saturating_add(1))?
                    }
                    _ => {}
                },
            }
        }
        Ok(())
    }

    fn array(
        &self,
        s: &Map<String, Value>,
        a: &[Value],
        at: &str,
        depth: usize,
    ) -> Result<(), String> {
        bounds(s, a.len() as f64, "minItems", "maxItems", at, "items")?;
        if let Some(items) = s.get("items") {
            for (i, item) in a.iter().enumerate() {
                self.check(items, item, &format!("{at}[{i}]"), depth.saturating_add(1))?;
            }
        }
        Ok(())
    }
}

fn bounds(
    s: &Map<String, Value>,
    n: f64,
    min: &str,
    max: &str,
    at: &str,
    what: &str,
) -> Result<(), String> {
    if let Some(m) = num(s, min).filter(|m| n < *m) {
        return Err(format!("{at}: must have at least {m} {what}"));
    }
    if let Some(m) = num(s, max).filter(|m| n > *m) {
        return Err(format!("{at}: must have at most {m} {what}"));
    }
    Ok(())
}

fn number(s: &Map<String, Value>, n: f64, at: &str) -> Result<(), String> {
    let fails = [
        (
            "minimum",
            "at least",
            n < num(s, "minimum").unwrap_or(f64::NEG_INFINITY),
        ),
        (
            "maximum",
            "at most",
            n > num(s, "maximum").unwrap_or(f64::INFINITY),
        ),
        (
            "exclusiveMinimum",
            "more than",
            n <= num(s, "exclusiveMinimum").unwrap_or(f64::NEG_INFINITY),
        ),
        (
            "exclusiveMaximum",
            "less than",
            n >= num(s, "exclusiveMaximum").unwrap_or(f64::INFINITY),
        ),
    ];
    match fails.iter().find(|f| f.2) {
        Some((k, says, _)) => Err(format!(
            "{at}: must be {says} {}",
            s.get(*k).cloned().unwrap_or_default()
        )),
        None => Ok(()),
    }
}

fn type_matches(t: &Value, v: &Value) -> bool {
    match t {
        Value::String(name) => is_type(name, v),
        Value::Array(names) => names
            .iter()
            .filter_map(Value::as_str)
            .any(|n| is_type(n, v)),
        _ => true,
    }
}

pub(super) fn is_type(name: &str, v: &Value) -> bool {
    match (name, v) {
        ("object", Value::Object(_))
        | ("array", Value::Array(_))
        | ("string", Value::String(_))
        | ("number", Value::Number(_))
        | ("boolean", Value::Bool(_))
        | ("null", Value::Null) => true,
        ("integer", Value::Number(n)) => {
            n.is_i64() || n.is_u64() || n.as_f64().is_some_and(|f| f.fract() == 0.0)
        }
        _ => false,
    }
}

fn show_type(t: &Value) -> String {
    match t {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn product() -> Value {
        json!({
            "type": "object",
            "properties": {
                "name": {"type": "string", "minLength": 1},
                "price": {"type": "number", "minimum": 0},
                "tags": {"type": "array", "items": {"$ref": "#/$defs/tag"}, "maxItems": 2},
                "kind": {"enum": ["book", "toy"]},
                "v": {"const": 1},
                "note": {"anyOf": [{"type": "string"}, {"type": "null"}]},
                "qty": {"type": "integer", "exclusiveMaximum": 10}
            },
            "required": ["name", "price"],
            "additionalProperties": false,
            "$defs": {"tag": {"type": "string", "maxLength": 3}}
        })
    }

    #[test]
    fn values_that_fit_pass() {
        let s = product();
        for v in [
            json!({"name": "x", "price": 0}),
            json!({"name": "x", "price": 2.5, "tags": ["a", "bcd"], "kind": "toy", "v": 1, "note": null, "qty": 9}),
            json!({"name": "x", "price": 1, "note": "hi", "qty": 3.0}),
        ] {
            assert_eq!(validate(&s, &v), Ok(()), "{v}");
        }
        assert_eq!(validate(&json!(true), &json!([1])), Ok(()));
    }

    #[test]
    fn each_rule_names_the_place_that_fails() {
        let s = product();
        for (v, says) in [
            (json!([]), "$: must be of type object, not an array"),
            (
                json!({"name": "x"}),
                "$: is missing the required property \"price\"",
            ),
            (
                json!({"name": "x", "price": "1"}),
                "$.price: must be of type number, not a string",
            ),
            (
                json!({"name": "x", "price": -1}),
                "$.price: must be at least 0",
            ),
            (
                json!({"name": "", "price": 1}),
                "$.name: must have at least 1 characters",
            ),
            (
                json!({"name": "x", "price": 1, "color": "red"}),
                "$: has the property \"color\", which the schema does not allow",
            ),
            (
                json!({"name": "x", "price": 1, "tags": ["a", "toolong"]}),
                "$.tags[1]: must have at most 3 characters",
            ),
            (
                json!({"name": "x", "price": 1, "tags": ["a", "b", "c"]}),
                "$.tags: must have at most 2 items",
            ),
            (
                json!({"name": "x", "price": 1, "kind": "car"}),
                "$.kind: must be one of [\"book\",\"toy\"]",
            ),
            (json!({"name": "x", "price": 1, "v": 2}), "$.v: must be 1"),
            (
                json!({"name": "x", "price": 1, "note": 5}),
                "$.note: matches 0 of the anyOf schemas, not any",
            ),
            (
                json!({"name": "x", "price": 1, "qty": 10}),
                "$.qty: must be less than 10",
            ),
            (
                json!({"name": "x", "price": 1, "qty": 1.5}),
                "$.qty: must be of type integer, not a number",
            ),
        ] {
            assert_eq!(validate(&s, &v), Err(says.to_string()), "{v}");
        }
    }

    #[test]
    fn refs_that_loop_or_dangle_fail_cleanly() {
        let looped = json!({"$ref": "#"});
        assert_eq!(
            validate(&looped, &json!(1)),
            Err("$: the schema nests too deep".into())
        );
        let dangling = json!({"$ref": "#/$defs/missing"});
        assert_eq!(
            validate(&dangling, &json!(1)),
            Err("$: $ref \"#/$defs/missing\" is not in the schema".into())
        );
        let one_of = json!({"oneOf": [{"type": "number"}, {"type": "integer"}]});
        assert_eq!(validate(&one_of, &json!(1.5)), Ok(()));
        assert_eq!(
            validate(&one_of, &json!(2)),
            Err("$: matches 2 of the oneOf schemas, not exactly one".into())
        );
    }
}
