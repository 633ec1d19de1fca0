//! OpenRouter's `provider` preferences object (`ProviderPreferences` in its OpenAPI
//! spec) as the wire says it: each field typed, absent ones `None`. Read once by
//! [`super::read`]'s machinery, so a refused value names its field
//! (`provider.max_price.prompt: must be a non-negative number`); routing resolves the
//! defaults (`routing::prefs::ProviderPrefs`).

use serde_json::Value;

use super::read::{boolean, kind_of, list, named, object, string, whole, Bad, Read};

/// What a sort orders endpoints by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sort {
    Price,
    Throughput,
    Latency,
    /// Tool-call quality (OpenRouter's `exacto`; `tool_quality` is taken too).
    ToolQuality,
}

impl Sort {
    pub const ALL: [Sort; 4] = [
        Sort::Price,
        Sort::Throughput,
        Sort::Latency,
        Sort::ToolQuality,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Sort::Price => "price",
            Sort::Throughput => "throughput",
            Sort::Latency => "latency",
            Sort::ToolQuality => "exacto",
        }
    }
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

/// `sort`: a string (`"price"`) or an object `{by, partition}`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SortPref {
    pub by: Option<Sort>,
    pub partition: Option<Partition>,
}

/// `data_collection`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DataCollection {
    Allow,
    Deny,
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

/// The `provider` object. Provider names are kept as sent; routing compares them
/// without case.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ProviderPreferences {
    pub order: Option<Vec<String>>,
    pub only: Option<Vec<String>>,
    pub ignore: Option<Vec<String>>,
    pub allow_fallbacks: Option<bool>,
    pub require_parameters: Option<bool>,
    pub data_collection: Option<DataCollection>,
    /// Only zero-data-retention endpoints.
    pub zdr: Option<bool>,
    /// Only models whose authors allow distilling their text.
    pub enforce_distillable_text: Option<bool>,
    pub quantizations: Option<Vec<String>>,
    pub sort: Option<SortPref>,
    pub max_price: Option<MaxPrice>,
    pub preferred_min_throughput: Option<Cutoffs>,
    pub preferred_max_latency: Option<Cutoffs>,
    /// `stream_failover`: what a stream whose endpoint fails mid-way does.
    pub stream_failover: Option<StreamFailover>,
    /// `max_stream_failovers` (1 to [`MAX_STREAM_FAILOVERS`]; 1 when unset).
    pub max_stream_failovers: Option<u8>,
    /// `allow_byok: false`: the account's own provider keys are not used for this
    /// request (shared capacity only).
    pub allow_byok: Option<bool>,
}

/// `stream_failover`: a stream whose endpoint fails before its content ends goes on
/// from the next endpoint (`continue`), or ends with an error chunk (`terminate`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamFailover {
    Continue,
    Terminate,
}

/// The most failovers one stream may take.
pub const MAX_STREAM_FAILOVERS: u8 = 3;

impl ProviderPreferences {
    /// How many times a stream may fail over: none unless `stream_failover` (or, when
    /// unset, the deployment's `STREAM_FAILOVER_DEFAULT`) says `continue`.
    pub fn stream_failovers(p: Option<&ProviderPreferences>, continue_by_default: bool) -> u8 {
        let mode = p.and_then(|p| p.stream_failover);
        let on = mode.map_or(continue_by_default, |m| m == StreamFailover::Continue);
        match on {
            true => p.and_then(|p| p.max_stream_failovers).unwrap_or(1),
            false => 0,
        }
    }
}

/// The preferences OpenRouter defines that act here; any other key is refused.
const KNOWN: [&str; 16] = [
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
    "stream_failover",
    "max_stream_failovers",
    "allow_byok",
];

/// Accepted and without effect here: there is one deployment.
const WITHOUT_EFFECT: [&str; 1] = ["experimental"];

const PRICES: [&str; 9] = [
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

/// Reads the `provider` object (errors relative to it); boxed, as requests hold it,
/// so that a request without preferences does not carry their room.
pub(crate) fn read(v: Value) -> Read<Box<ProviderPreferences>> {
    let mut f = object(v)?;
    for name in WITHOUT_EFFECT {
        f.0.remove(name);
    }
    if let Some(k) = f.0.keys().find(|k| !KNOWN.contains(&k.as_str())) {
        let rule = format!("unknown preference (known: {})", KNOWN.join(", "));
        return Err(Bad::new(rule).in_field(crate::error::truncate(k, 64)));
    }
    let names = |v| list(v, &string);
    Ok(Box::new(ProviderPreferences {
        order: f.read("order", &names)?,
        only: f.read("only", &names)?,
        ignore: f.read("ignore", &names)?,
        allow_fallbacks: f.read("allow_fallbacks", &boolean)?,
        require_parameters: f.read("require_parameters", &boolean)?,
        data_collection: f.read("data_collection", &|v| {
            Ok(match named(v, &["allow", "deny"])? {
                0 => DataCollection::Allow,
                _ => DataCollection::Deny,
            })
        })?,
        zdr: f.read("zdr", &boolean)?,
        enforce_distillable_text: f.read("enforce_distillable_text", &boolean)?,
        quantizations: f.read("quantizations", &names)?,
        sort: f.read("sort", &sort)?,
        max_price: f.read("max_price", &max_price)?,
        preferred_min_throughput: f.read("preferred_min_throughput", &cutoffs)?,
        preferred_max_latency: f.read("preferred_max_latency", &cutoffs)?,
        stream_failover: f.read("stream_failover", &|v| {
            Ok(match named(v, &["continue", "terminate"])? {
                0 => StreamFailover::Continue,
                _ => StreamFailover::Terminate,
            })
        })?,
        max_stream_failovers: f.read("max_stream_failovers", &failovers)?,
        allow_byok: f.read("allow_byok", &boolean)?,
    }))
}

fn failovers(v: Value) -> Read<u8> {
    let rule = || {
        Bad::new(format!(
            "must be an integer from 1 to {MAX_STREAM_FAILOVERS}"
        ))
    };
    let n = whole(v).map_err(|_| rule())?;
    u8::try_from(n)
        .ok()
        .filter(|n| (1..=MAX_STREAM_FAILOVERS).contains(n))
        .ok_or_else(rule)
}

fn sort_by(v: Value) -> Read<Sort> {
    let [a, b, c, d] = Sort::ALL.map(Sort::as_str);
    let i = named(v, &[a, b, c, d, "tool_quality"])?;
    Ok(Sort::ALL.get(i).copied().unwrap_or(Sort::ToolQuality))
}

fn sort(v: Value) -> Read<SortPref> {
    match v {
        Value::String(_) => Ok(SortPref {
            by: Some(sort_by(v)?),
            partition: None,
        }),
        Value::Object(_) => {
            let mut f = object(v)?;
            if let Some(k) =
                f.0.keys()
                    .find(|k| !matches!(k.as_str(), "by" | "partition"))
            {
                let k = crate::error::truncate(k, 64);
                return Err(Bad::new("unknown field (by, partition)").in_field(k));
            }
            Ok(SortPref {
                by: f.read("by", &sort_by)?,
                partition: f.read("partition", &|p| {
                    Ok(match named(p, &["model", "none"])? {
                        0 => Partition::Model,
                        _ => Partition::None,
                    })
                })?,
            })
        }
        other => Err(Bad::new(format!(
            "must be a string or an object {{by, partition}}, not {}",
            kind_of(&other)
        ))),
    }
}

/// USD as the caller wrote it (a number's shortest decimal text, or a string), to
/// picodollars without a float.
fn usd(v: Value) -> Read<u128> {
    match &v {
        Value::Number(n) => crate::money::picos_from_usd_text(&n.to_string()),
        Value::String(s) => crate::money::picos_from_usd_text(s),
        _ => None,
    }
    .map(u128::from)
    .ok_or_else(|| Bad::new("must be a non-negative number"))
}

fn max_price(v: Value) -> Read<MaxPrice> {
    let mut f = object(v)?;
    if let Some(k) = f.0.keys().find(|k| !PRICES.contains(&k.as_str())) {
        let rule = format!("unknown price (known: {})", PRICES.join(", "));
        return Err(Bad::new(rule).in_field(crate::error::truncate(k, 64)));
    }
    Ok(MaxPrice {
        prompt: f.read("prompt", &usd)?,
        completion: f.read("completion", &usd)?,
        request: f.read("request", &usd)?,
        image: f.read("image", &usd)?,
        web_search: f.read("web_search", &usd)?,
        internal_reasoning: f.read("internal_reasoning", &usd)?,
        input_cache_read: f.read("input_cache_read", &usd)?,
        input_cache_write: f.read("input_cache_write", &usd)?,
        audio: f.read("audio", &usd)?,
    })
}

fn cutoff(v: Value) -> Read<f64> {
    v.as_f64()
        .filter(|n| *n >= 0.0 && n.is_finite())
        .ok_or_else(|| Bad::new("must be a non-negative number"))
}

fn cutoffs(v: Value) -> Read<Cutoffs> {
    match v {
        Value::Number(_) => Ok(Cutoffs {
            p50: Some(cutoff(v)?),
            ..Default::default()
        }),
        Value::Object(_) => {
            let mut f = object(v)?;
            if let Some(k) =
                f.0.keys()
                    .find(|k| !matches!(k.as_str(), "p50" | "p75" | "p90" | "p99"))
            {
                let k = crate::error::truncate(k, 64);
                return Err(Bad::new("unknown percentile (p50, p75, p90 or p99)").in_field(k));
            }
            Ok(Cutoffs {
                p50: f.read("p50", &cutoff)?,
                p75: f.read("p75", &cutoff)?,
                p90: f.read("p90", &cutoff)?,
                p99: f.read("p99", &cutoff)?,
            })
        }
        other => Err(Bad::new(format!(
            "must be a non-negative number or an object of p50, p75, p90 and p99 cutoffs, not {}",
            kind_of(&other)
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(v: Value) -> crate::error::Result<Box<ProviderPreferences>> {
        Ok(read(v).map_err(|b| b.in_field("provider"))?)
    }

    #[test]
    fn reads_every_field() {
        let p = parse(json!({
            "order": ["OpenAI", "together"], "only": ["openai"], "ignore": ["groq"],
            "allow_fallbacks": false, "require_parameters": true, "data_collection": "deny",
            "quantizations": ["fp8"], "sort": "throughput", "zdr": true,
            "enforce_distillable_text": true, "experimental": {"anything": 1},
            "max_price": {"prompt": 1, "completion": "2.5", "input_cache_read": 0.1},
            "preferred_min_throughput": 50, "preferred_max_latency": {"p90": 2.5, "p99": null}
        }))
        .unwrap();
        assert_eq!(p.order.unwrap(), ["OpenAI", "together"]);
        assert_eq!(p.data_collection, Some(DataCollection::Deny));
        assert_eq!((p.allow_fallbacks, p.zdr), (Some(false), Some(true)));
        assert_eq!(p.sort.unwrap().by, Some(Sort::Throughput));
        let mp = p.max_price.unwrap();
        assert_eq!(mp.prompt, Some(1_000_000_000_000));
        assert_eq!(mp.completion, Some(2_500_000_000_000));
        assert_eq!(mp.input_cache_read, Some(100_000_000_000));
        assert_eq!(p.preferred_min_throughput.unwrap().p50, Some(50.0));
        let lat = p.preferred_max_latency.unwrap();
        assert_eq!((lat.p50, lat.p90, lat.p99), (None, Some(2.5), None));
        let s = parse(json!({"sort": {"by": "latency", "partition": "none"}})).unwrap();
        assert_eq!(
            s.sort,
            Some(SortPref {
                by: Some(Sort::Latency),
                partition: Some(Partition::None)
            })
        );
    }

    #[test]
    fn refusals_name_the_field() {
        for (bad, want) in [
            (json!("openai"), "provider: must be an object, not a string"),
            (
                json!({"order": "openai"}),
                "provider.order: must be an array",
            ),
            (json!({"only": [1]}), "provider.only[0]: must be a string"),
            (
                json!({"allow_fallbacks": "no"}),
                "provider.allow_fallbacks: must be a boolean",
            ),
            (
                json!({"data_collection": "maybe"}),
                "provider.data_collection: must be one of allow, deny",
            ),
            (
                json!({"sort": "speed"}),
                "provider.sort: must be one of price, throughput, latency",
            ),
            (
                json!({"sort": 1}),
                "provider.sort: must be a string or an object",
            ),
            (
                json!({"sort": {"by": "price", "partition": "provider"}}),
                "provider.sort.partition: must be one of model, none",
            ),
            (
                json!({"sort": {"by": "price", "order": "asc"}}),
                "provider.sort.order: unknown field",
            ),
            (
                json!({"max_price": {"prompt": -1}}),
                "provider.max_price.prompt: must be a non-negative number",
            ),
            (
                json!({"max_price": {"tokens": 1}}),
                "provider.max_price.tokens: unknown price",
            ),
            (
                json!({"max_price": 3}),
                "provider.max_price: must be an object",
            ),
            (
                json!({"sorting": "price"}),
                "provider.sorting: unknown preference (known: order,",
            ),
            (json!({"zdr": "yes"}), "provider.zdr: must be a boolean"),
            (
                json!({"allow_byok": "yes"}),
                "provider.allow_byok: must be a boolean",
            ),
            (
                json!({"preferred_min_throughput": -5}),
                "provider.preferred_min_throughput: must be a non-negative number",
            ),
            (
                json!({"preferred_max_latency": {"p95": 1}}),
                "provider.preferred_max_latency.p95: unknown percentile",
            ),
            (
                json!({"preferred_max_latency": {"p50": "x"}}),
                "provider.preferred_max_latency.p50: must be a non-negative number",
            ),
            (
                json!({"preferred_max_latency": "fast"}),
                "provider.preferred_max_latency: must be a non-negative number or an object",
            ),
            (
                json!({"stream_failover": "retry"}),
                "provider.stream_failover: must be one of continue, terminate",
            ),
            (
                json!({"max_stream_failovers": 4}),
                "provider.max_stream_failovers: must be an integer from 1 to 3",
            ),
            (
                json!({"max_stream_failovers": 0}),
                "provider.max_stream_failovers: must be an integer from 1 to 3",
            ),
            (
                json!({"max_stream_failovers": 1.5}),
                "provider.max_stream_failovers: must be an integer from 1 to 3",
            ),
        ] {
            let e = parse(bad.clone()).unwrap_err();
            assert_eq!(e.status(), 400);
            assert!(
                e.to_string().contains(want),
                "{bad}\n  got:  {e}\n  want: {want}"
            );
        }
    }

    #[test]
    fn stream_failovers_are_opted_into_or_on_by_the_deployments_default() {
        let n = |v: Value, default: bool| {
            let p = parse(v).unwrap();
            ProviderPreferences::stream_failovers(Some(&p), default)
        };
        assert_eq!(n(json!({"stream_failover": "continue"}), false), 1);
        assert_eq!(
            n(
                json!({"stream_failover": "continue", "max_stream_failovers": 3}),
                false
            ),
            3
        );
        assert_eq!(n(json!({"stream_failover": "terminate"}), true), 0);
        assert_eq!(n(json!({"max_stream_failovers": 2}), true), 2);
        assert_eq!(n(json!({"max_stream_failovers": 2}), false), 0);
        assert_eq!(ProviderPreferences::stream_failovers(None, false), 0);
        assert_eq!(ProviderPreferences::stream_failovers(None, true), 1);
    }

    #[test]
    fn cutoffs_are_met_by_figures() {
        let at_least = |fig: f64, cut: f64| fig >= cut;
        let c = Cutoffs {
            p50: Some(50.0),
            ..Default::default()
        };
        assert!(c.met_by(Some([60.0, 0.0, 0.0, 0.0]), at_least));
        assert!(!c.met_by(Some([40.0, 99.0, 99.0, 99.0]), at_least));
        assert!(c.met_by(None, at_least));
    }
}
