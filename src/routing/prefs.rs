//! OpenRouter's `provider` preferences object and the model-ID variants.

use serde_json::Value;

use crate::error::{Error, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sort {
    Price,
    Throughput,
    Latency,
}

/// Ceilings in USD: per million tokens for prompt and completion, per unit for
/// request and image, as OpenRouter takes them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MaxPrice {
    pub prompt: Option<f64>,
    pub completion: Option<f64>,
    pub request: Option<f64>,
    pub image: Option<f64>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ProviderPrefs {
    pub order: Vec<String>,
    pub only: Option<Vec<String>>,
    pub ignore: Vec<String>,
    pub allow_fallbacks: bool,
    pub require_parameters: bool,
    /// `data_collection: "deny"`: no endpoint that trains on or keeps prompts.
    pub deny_data_collection: bool,
    pub quantizations: Option<Vec<String>>,
    pub sort: Option<Sort>,
    pub max_price: MaxPrice,
}

impl Default for ProviderPrefs {
    fn default() -> Self {
        ProviderPrefs {
            order: Vec::new(),
            only: None,
            ignore: Vec::new(),
            allow_fallbacks: true,
            require_parameters: false,
            deny_data_collection: false,
            quantizations: None,
            sort: None,
            max_price: MaxPrice::default(),
        }
    }
}

fn strings(v: &Value, field: &str) -> Result<Vec<String>> {
    let arr = v.as_array().ok_or_else(|| {
        Error::bad_request(format!("provider.{field} must be an array of strings"))
    })?;
    arr.iter()
        .map(|x| {
            x.as_str()
                .map(|s| s.trim().to_ascii_lowercase())
                .ok_or_else(|| {
                    Error::bad_request(format!("provider.{field} must be an array of strings"))
                })
        })
        .collect()
}

impl ProviderPrefs {
    pub fn parse(v: Option<&Value>) -> Result<Self> {
        let mut p = ProviderPrefs::default();
        let Some(v) = v.filter(|v| !v.is_null()) else {
            return Ok(p);
        };
        let obj = v
            .as_object()
            .ok_or_else(|| Error::bad_request("`provider` must be an object"))?;
        let flag = |k: &str| -> Result<Option<bool>> {
            match obj.get(k) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::Bool(b)) => Ok(Some(*b)),
                Some(_) => Err(Error::bad_request(format!(
                    "provider.{k} must be a boolean"
                ))),
            }
        };
        if let Some(o) = obj.get("order").filter(|v| !v.is_null()) {
            p.order = strings(o, "order")?;
        }
        if let Some(o) = obj.get("only").filter(|v| !v.is_null()) {
            p.only = Some(strings(o, "only")?);
        }
        if let Some(o) = obj.get("ignore").filter(|v| !v.is_null()) {
            p.ignore = strings(o, "ignore")?;
        }
        if let Some(o) = obj.get("quantizations").filter(|v| !v.is_null()) {
            p.quantizations = Some(strings(o, "quantizations")?);
        }
        p.allow_fallbacks = flag("allow_fallbacks")?.unwrap_or(true);
        p.require_parameters = flag("require_parameters")?.unwrap_or(false);
        p.deny_data_collection = match obj.get("data_collection").and_then(Value::as_str) {
            None | Some("allow") => false,
            Some("deny") => true,
            Some(other) => {
                return Err(Error::bad_request(format!(
                    "provider.data_collection must be \"allow\" or \"deny\", not {other:?}"
                )))
            }
        };
        p.sort = match obj.get("sort") {
            None | Some(Value::Null) => None,
            Some(s) => Some(parse_sort(
                s.as_str().or_else(|| s.get("by").and_then(Value::as_str)),
            )?),
        };
        if let Some(mp) = obj.get("max_price").filter(|v| !v.is_null()) {
            let num = |k: &str| -> Result<Option<f64>> {
                match mp.get(k) {
                    None | Some(Value::Null) => Ok(None),
                    Some(v) => v
                        .as_f64()
                        .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
                        .filter(|n| *n >= 0.0)
                        .map(Some)
                        .ok_or_else(|| {
                            Error::bad_request(format!(
                                "provider.max_price.{k} must be a non-negative number"
                            ))
                        }),
                }
            };
            p.max_price = MaxPrice {
                prompt: num("prompt")?,
                completion: num("completion")?,
                request: num("request")?,
                image: num("image")?,
            };
        }
        Ok(p)
    }
}

fn parse_sort(s: Option<&str>) -> Result<Sort> {
    match s {
        Some("price") => Ok(Sort::Price),
        Some("throughput") => Ok(Sort::Throughput),
        Some("latency") => Ok(Sort::Latency),
        other => Err(Error::bad_request(format!(
            "provider.sort must be \"price\", \"throughput\" or \"latency\", not {other:?}"
        ))),
    }
}

/// A suffix on the model ID.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Variant {
    /// Only the model's free endpoints.
    Free,
    /// Sorted by throughput.
    Nitro,
    /// Sorted by price.
    Floor,
}

/// `author/slug:variant` → (`author/slug`, variant). Unknown suffixes are kept in the ID.
pub fn split_variant(id: &str) -> (&str, Option<Variant>) {
    match id.rsplit_once(':') {
        Some((base, "free")) => (base, Some(Variant::Free)),
        Some((base, "nitro")) => (base, Some(Variant::Nitro)),
        Some((base, "floor")) => (base, Some(Variant::Floor)),
        _ => (id, None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parses_every_field() {
        let p = ProviderPrefs::parse(Some(&json!({
            "order": ["OpenAI", "together"], "only": ["openai"], "ignore": ["groq"],
            "allow_fallbacks": false, "require_parameters": true, "data_collection": "deny",
            "quantizations": ["fp8"], "sort": "throughput",
            "max_price": {"prompt": 1, "completion": "2.5"}
        })))
        .unwrap();
        assert_eq!(p.order, ["openai", "together"]);
        assert_eq!(p.only.as_deref(), Some(&["openai".to_string()][..]));
        assert!(!p.allow_fallbacks && p.require_parameters && p.deny_data_collection);
        assert_eq!(p.sort, Some(Sort::Throughput));
        assert_eq!(p.max_price.completion, Some(2.5));
        assert_eq!(
            ProviderPrefs::parse(None).unwrap(),
            ProviderPrefs::default()
        );
    }

    #[test]
    fn bad_values_are_400s() {
        for bad in [
            json!("openai"),
            json!({"order": "openai"}),
            json!({"allow_fallbacks": "no"}),
            json!({"data_collection": "maybe"}),
            json!({"sort": "speed"}),
            json!({"max_price": {"prompt": -1}}),
        ] {
            assert_eq!(
                ProviderPrefs::parse(Some(&bad)).unwrap_err().status(),
                400,
                "{bad}"
            );
        }
    }

    #[test]
    fn variants() {
        assert_eq!(split_variant("a/b:free"), ("a/b", Some(Variant::Free)));
        assert_eq!(split_variant("a/b:nitro"), ("a/b", Some(Variant::Nitro)));
        assert_eq!(split_variant("a/b"), ("a/b", None));
        assert_eq!(split_variant("a/b:beta"), ("a/b:beta", None));
    }
}
