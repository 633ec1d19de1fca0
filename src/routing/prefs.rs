//! OpenRouter's `provider` preferences object and the model-ID variants.

pub use crate::api::provider::{Cutoffs, MaxPrice, Partition, Sort};
use crate::api::provider::{DataCollection, ProviderPreferences};

/// The `provider` preferences with OpenRouter's defaults filled in and provider names
/// lowercased for comparison.
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

impl Default for ProviderPrefs {
    fn default() -> Self {
        ProviderPrefs::from(None)
    }
}

fn names(v: &[String]) -> Vec<String> {
    v.iter().map(|s| s.trim().to_ascii_lowercase()).collect()
}

impl From<Option<&ProviderPreferences>> for ProviderPrefs {
    fn from(p: Option<&ProviderPreferences>) -> Self {
        let none = ProviderPreferences::default();
        let p = p.unwrap_or(&none);
        let sort = p.sort.unwrap_or_default();
        ProviderPrefs {
            order: p.order.as_deref().map(names).unwrap_or_default(),
            only: p.only.as_deref().map(names),
            ignore: p.ignore.as_deref().map(names).unwrap_or_default(),
            allow_fallbacks: p.allow_fallbacks.unwrap_or(true),
            require_parameters: p.require_parameters.unwrap_or(false),
            deny_data_collection: p.data_collection == Some(DataCollection::Deny),
            quantizations: p.quantizations.as_deref().map(names),
            sort: sort.by,
            partition: sort.partition.unwrap_or_default(),
            max_price: p.max_price.clone().unwrap_or_default(),
            zdr: p.zdr.unwrap_or(false),
            enforce_distillable_text: p.enforce_distillable_text.unwrap_or(false),
            preferred_min_throughput: p.preferred_min_throughput,
            preferred_max_latency: p.preferred_max_latency,
        }
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
    /// Sorted by tool-call quality ([`crate::routing::tool_quality`]).
    Exacto,
}

/// `author/slug:variant` → (`author/slug`, variant). Unknown suffixes are kept in the ID.
pub fn split_variant(id: &str) -> (&str, Option<Variant>) {
    match id.rsplit_once(':') {
        Some((base, "free")) => (base, Some(Variant::Free)),
        Some((base, "nitro")) => (base, Some(Variant::Nitro)),
        Some((base, "floor")) => (base, Some(Variant::Floor)),
        Some((base, "exacto")) => (base, Some(Variant::Exacto)),
        _ => (id, None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn prefs(v: serde_json::Value) -> ProviderPrefs {
        let req: crate::api::ChatRequest = serde_json::from_value(
            json!({"model": "a/b", "messages": [{"role": "user", "content": "hi"}], "provider": v}),
        )
        .unwrap();
        ProviderPrefs::from(req.provider.as_deref())
    }

    #[test]
    fn fills_in_defaults_and_lowercases_names() {
        let p = prefs(json!({
            "order": ["OpenAI", " together "], "only": ["OpenAI"], "ignore": ["groq"],
            "allow_fallbacks": false, "require_parameters": true, "data_collection": "deny",
            "quantizations": ["FP8"], "sort": "throughput",
            "max_price": {"prompt": 1, "completion": "2.5"}
        }));
        assert_eq!(p.order, ["openai", "together"]);
        assert_eq!(p.only.as_deref(), Some(&["openai".to_string()][..]));
        assert_eq!(p.quantizations.as_deref(), Some(&["fp8".to_string()][..]));
        assert!(!p.allow_fallbacks && p.require_parameters && p.deny_data_collection);
        assert_eq!(
            (p.sort, p.partition),
            (Some(Sort::Throughput), Partition::Model)
        );
        assert_eq!(p.max_price.completion, Some(2_500_000_000_000));
        assert_eq!(prefs(json!({})), ProviderPrefs::default());
        assert_eq!(prefs(json!(null)), ProviderPrefs::default());
        let d = ProviderPrefs::default();
        assert!(d.allow_fallbacks && !d.require_parameters && !d.zdr && d.sort.is_none());
        let s = prefs(json!({"sort": {"by": "latency", "partition": "none"}, "zdr": true}));
        assert_eq!(
            (s.sort, s.partition),
            (Some(Sort::Latency), Partition::None)
        );
        assert!(s.zdr);
        assert_eq!(
            prefs(json!({"sort": "exacto"})).sort,
            Some(Sort::ToolQuality)
        );
        assert_eq!(
            prefs(json!({"sort": "tool_quality"})).sort,
            Some(Sort::ToolQuality)
        );
    }

    #[test]
    fn variants() {
        assert_eq!(split_variant("a/b:free"), ("a/b", Some(Variant::Free)));
        assert_eq!(split_variant("a/b:nitro"), ("a/b", Some(Variant::Nitro)));
        assert_eq!(split_variant("a/b:exacto"), ("a/b", Some(Variant::Exacto)));
        assert_eq!(split_variant("a/b"), ("a/b", None));
        assert_eq!(split_variant("a/b:beta"), ("a/b:beta", None));
    }
}
