//! OpenRouter's `provider` preferences object and the model-ID variants.

use serde_json::Value;

use crate::error::{Error, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sort {
    Price,
    Throughput,
    Latency,
}

/// Ceilings, asked for in USD as OpenRouter takes them and held in picodollars: per
/// million tokens for the token prices (prompt, completion, reasoning, cache read and
/// write, audio), per unit for the others (request, image, web search).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MaxPrice {
    pub prompt: Option<u128>,
    pub completion: Option<u128>,
    pub request: Option<u128>,
    pub image: Option<u128>,
    pub web_search: Option<u128>,
    pub internal_reasoning: Option<u128>,
    pub input_cache_read: Option<u128>,
    pub input_cache_write: Option<u128>,
    /// Accepted; no endpoint in the catalogue prices audio apart.
    pub audio: Option<u128>,
}

/// How far a sort reaches with fallback models (`sort: {by, partition}`): within each
/// model, in the order the models were asked for (`model`, the default), or across
/// every model's endpoints (`none`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Partition {
    #[default]
    Model,
    None,
}

/// Percentile cutoffs of `preferred_min_throughput` (tokens/s) or
/// `preferred_max_latency` (seconds); a plain number is a p50 cutoff.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Cutoffs {
    pub p50: Option<f64>,
    pub p75: Option<f64>,
    pub p90: Option<f64>,
    pub p99: Option<f64>,
}

impl Cutoffs {
    fn parse(v: &Value, field: &str) -> Result<Option<Cutoffs>> {
        let bad = || {
            Error::bad_request(format!(
                "provider.{field} must be a non-negative number or an object of p50, p75, p90 and p99 cutoffs"
            ))
        };
        let num = |v: &Value| v.as_f64().filter(|n| *n >= 0.0 && n.is_finite());
        match v {
            Value::Null => Ok(None),
            Value::Number(_) => Ok(Some(Cutoffs {
                p50: Some(num(v).ok_or_else(bad)?),
                ..Default::default()
            })),
            Value::Object(o) => {
                let mut c = Cutoffs::default();
                for (k, v) in o {
                    let n = match v {
                        Value::Null => None,
                        v => Some(num(v).ok_or_else(bad)?),
                    };
                    match k.as_str() {
                        "p50" => c.p50 = n,
                        "p75" => c.p75 = n,
                        "p90" => c.p90 = n,
                        "p99" => c.p99 = n,
                        other => {
                            return Err(Error::bad_request(format!(
                            "provider.{field}.{other}: unknown percentile (p50, p75, p90 or p99)"
                        )))
                        }
                    }
                }
                Ok(Some(c))
            }
            _ => Err(bad()),
        }
    }

    /// Whether figures `[p50, p75, p90, p99]` meet every cutoff, each compared by
    /// `meets(figure, cutoff)`; an endpoint without figures yet is not held back.
    pub fn met_by(&self, figures: Option<[f64; 4]>, meets: fn(f64, f64) -> bool) -> bool {
        let Some(f) = figures else {
            return true;
        };
        [self.p50, self.p75, self.p90, self.p99]
            .iter()
            .zip(f)
            .all(|(cut, fig)| cut.is_none_or(|c| meets(fig, c)))
    }
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
    pub partition: Partition,
    pub max_price: MaxPrice,
    /// Only zero-data-retention endpoints (no training, no retained prompts).
    pub zdr: bool,
    /// Only models whose authors allow distilling their text.
    pub enforce_distillable_text: bool,
    /// Endpoints that miss these are tried after those that meet them.
    pub preferred_min_throughput: Option<Cutoffs>,
    pub preferred_max_latency: Option<Cutoffs>,
}

/// The preferences OpenRouter defines; any other key is refused.
const KNOWN: [&str; 13] = [
    "order",
    "only",
    "ignore",
    "allow_fallbacks",
    "require_parameters",
    "data_collection",
    "zdr",
    "enforce_distillable_text",
    "quantizations",
    "sort",
    "max_price",
    "preferred_min_throughput",
    "preferred_max_latency",
];

/// Accepted and without effect here: there is one deployment and no BYOK.
const WITHOUT_EFFECT: [&str; 2] = ["experimental", "allow_byok"];

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
            partition: Partition::Model,
            max_price: MaxPrice::default(),
            zdr: false,
            enforce_distillable_text: false,
            preferred_min_throughput: None,
            preferred_max_latency: None,
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
        if let Some(k) = obj
            .keys()
            .find(|k| !KNOWN.contains(&k.as_str()) && !WITHOUT_EFFECT.contains(&k.as_str()))
        {
            return Err(Error::bad_request(format!(
                "provider.{}: unknown preference (known: {})",
                crate::error::truncate(k, 64),
                KNOWN.join(", ")
            )));
        }
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
        p.zdr = flag("zdr")?.unwrap_or(false);
        p.enforce_distillable_text = flag("enforce_distillable_text")?.unwrap_or(false);
        p.sort = match obj.get("sort") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(parse_sort(Some(s))?),
            Some(Value::Object(o)) => {
                if let Some(k) = o.keys().find(|k| !matches!(k.as_str(), "by" | "partition")) {
                    return Err(Error::bad_request(format!(
                        "provider.sort.{}: unknown field (by, partition)",
                        crate::error::truncate(k, 64)
                    )));
                }
                p.partition = match o.get("partition") {
                    None | Some(Value::Null) => Partition::Model,
                    Some(v) => match v.as_str() {
                        Some("model") => Partition::Model,
                        Some("none") => Partition::None,
                        _ => {
                            return Err(Error::bad_request(
                                "provider.sort.partition must be \"model\" or \"none\"",
                            ))
                        }
                    },
                };
                match o.get("by") {
                    None | Some(Value::Null) => None,
                    Some(by) => Some(parse_sort(by.as_str())?),
                }
            }
            Some(_) => {
                return Err(Error::bad_request(
                    "provider.sort must be a string or an object {by, partition}",
                ))
            }
        };
        if let Some(v) = obj.get("preferred_min_throughput") {
            p.preferred_min_throughput = Cutoffs::parse(v, "preferred_min_throughput")?;
        }
        if let Some(v) = obj.get("preferred_max_latency") {
            p.preferred_max_latency = Cutoffs::parse(v, "preferred_max_latency")?;
        }
        if let Some(mp) = obj.get("max_price").filter(|v| !v.is_null()) {
            let kinds = [
                "prompt",
                "completion",
                "request",
                "image",
                "web_search",
                "internal_reasoning",
                "input_cache_read",
                "input_cache_write",
                "audio",
            ];
            let fields = mp
                .as_object()
                .ok_or_else(|| Error::bad_request("provider.max_price must be an object"))?;
            if let Some(k) = fields.keys().find(|k| !kinds.contains(&k.as_str())) {
                return Err(Error::bad_request(format!(
                    "provider.max_price.{}: unknown price (known: {})",
                    crate::error::truncate(k, 64),
                    kinds.join(", ")
                )));
            }
            // USD as the caller wrote it (a number's shortest decimal text, or a
            // string), to picodollars without a float: per million tokens for token
            // prices, per unit for the others.
            let num = |k: &str| -> Result<Option<u128>> {
                match mp.get(k) {
                    None | Some(Value::Null) => Ok(None),
                    Some(v) => match v {
                        Value::Number(n) => crate::money::picos_from_usd_text(&n.to_string()),
                        Value::String(s) => crate::money::picos_from_usd_text(s),
                        _ => None,
                    }
                    .map(|p| Some(u128::from(p)))
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
                web_search: num("web_search")?,
                internal_reasoning: num("internal_reasoning")?,
                input_cache_read: num("input_cache_read")?,
                input_cache_write: num("input_cache_write")?,
                audio: num("audio")?,
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
        assert_eq!(p.max_price.completion, Some(2_500_000_000_000));
        assert_eq!(p.max_price.prompt, Some(1_000_000_000_000));
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
            json!({"max_price": {"tokens": 1}}),
            json!({"sorting": "price"}),
            json!({"sort": {"by": "price", "partition": "provider"}}),
            json!({"sort": {"by": "price", "order": "asc"}}),
            json!({"sort": 1}),
            json!({"zdr": "yes"}),
            json!({"preferred_min_throughput": -5}),
            json!({"preferred_max_latency": {"p95": 1}}),
            json!({"preferred_max_latency": "fast"}),
        ] {
            assert_eq!(
                ProviderPrefs::parse(Some(&bad)).unwrap_err().status(),
                400,
                "{bad}"
            );
        }
    }

    #[test]
    fn parses_openrouters_newer_preferences() {
        let p = ProviderPrefs::parse(Some(&json!({
            "zdr": true, "enforce_distillable_text": true,
            "sort": {"by": "latency", "partition": "none"},
            "preferred_min_throughput": 50, "preferred_max_latency": {"p90": 2.5, "p99": null},
            "max_price": {"input_cache_read": 0.1, "web_search": 0.02, "audio": 1}
        })))
        .unwrap();
        assert!(p.zdr && p.enforce_distillable_text);
        assert_eq!(
            (p.sort, p.partition),
            (Some(Sort::Latency), Partition::None)
        );
        assert_eq!(p.preferred_min_throughput.unwrap().p50, Some(50.0));
        let lat = p.preferred_max_latency.unwrap();
        assert_eq!((lat.p50, lat.p90, lat.p99), (None, Some(2.5), None));
        assert_eq!(p.max_price.input_cache_read, Some(100_000_000_000));
        let e = ProviderPrefs::parse(Some(&json!({"sorting": "price"}))).unwrap_err();
        assert!(
            e.to_string()
                .contains("provider.sorting: unknown preference"),
            "{e}"
        );
        // The cutoffs: every one given must be met; no figures yet is not held back.
        let at_least = |fig: f64, cut: f64| fig >= cut;
        let c = p.preferred_min_throughput.unwrap();
        assert!(c.met_by(Some([60.0, 0.0, 0.0, 0.0]), at_least));
        assert!(!c.met_by(Some([40.0, 99.0, 99.0, 99.0]), at_least));
        assert!(c.met_by(None, at_least));
    }

    #[test]
    fn variants() {
        assert_eq!(split_variant("a/b:free"), ("a/b", Some(Variant::Free)));
        assert_eq!(split_variant("a/b:nitro"), ("a/b", Some(Variant::Nitro)));
        assert_eq!(split_variant("a/b"), ("a/b", None));
        assert_eq!(split_variant("a/b:beta"), ("a/b:beta", None));
    }
}
