//! Which service tiers' endpoints a request may use, and where they go in its plan, as
//! OpenRouter routes them (`catalog::tier`). A tier's endpoint is eligible only when
//! the request asks for it:
//! - `service_tier: "priority"` (or `"fast"`): priority endpoints, tried first (sorted
//!   by throughput), then the others;
//! - `service_tier: "flex"`: only flex endpoints (sorted by price), where the model has
//!   any; none: the default ones;
//! - `:nitro` admits priority endpoints, `:floor` flex ones, sorted with the rest by the
//!   variant's measure, unless `provider.order` is set or `service_tier` is `default`;
//! - naming its tag (`openai/priority`) in `provider.order` or `provider.only`.

use super::prefs::{ProviderPrefs, Sort, Variant};
use super::Choice;
use crate::api::service_tier::Asked;
use crate::catalog::{Endpoint, Provider, Tier};

/// Whether `list` (lowercased names) names the endpoint: its provider's slug or name,
/// or, for a tier's endpoint, its tag.
pub fn named(list: &[String], p: &Provider, e: &Endpoint) -> bool {
    let tag = e.service_tier.map(|_| e.tag().to_ascii_lowercase());
    super::matches(list, p) || tag.is_some_and(|t| list.contains(&t))
}

/// Whether endpoint `e` may serve a request that asks `asked` with `variant` and
/// `prefs`.
pub fn admits(
    e: &Endpoint,
    asked: Option<Asked>,
    variant: Option<Variant>,
    prefs: &ProviderPrefs,
) -> bool {
    let Some(tier) = e.service_tier else {
        return true;
    };
    let tag = e.tag().to_ascii_lowercase();
    let listed = |l: &[String]| l.contains(&tag);
    if listed(&prefs.order) || prefs.only.as_deref().is_some_and(listed) {
        return true;
    }
    match asked {
        Some(Asked::Priority) => tier == Tier::Priority,
        Some(Asked::Flex) => tier == Tier::Flex,
        Some(Asked::Default) => false,
        Some(Asked::Auto) | None if !prefs.order.is_empty() => false,
        Some(Asked::Auto) | None => matches!(
            (variant, tier),
            (Some(Variant::Nitro), Tier::Priority) | (Some(Variant::Floor), Tier::Flex)
        ),
    }
}

/// The sort a tier asks for where the caller set none.
pub fn sort(asked: Option<Asked>) -> Option<Sort> {
    match asked {
        Some(Asked::Priority) => Some(Sort::Throughput),
        Some(Asked::Flex) => Some(Sort::Price),
        _ => None,
    }
}

/// One model's ordered endpoints with the tier's rule applied: priority endpoints
/// first; only flex ones where there are any.
pub fn arrange<'a>(eps: Vec<Choice<'a>>, asked: Option<Asked>) -> Vec<Choice<'a>> {
    let of = |c: &Choice, t: Tier| c.endpoint.service_tier == Some(t);
    match asked {
        Some(Asked::Priority) => {
            let (mut first, rest): (Vec<_>, Vec<_>) =
                eps.into_iter().partition(|c| of(c, Tier::Priority));
            first.extend(rest);
            first
        }
        Some(Asked::Flex) if eps.iter().any(|c| of(c, Tier::Flex)) => {
            eps.into_iter().filter(|c| of(c, Tier::Flex)).collect()
        }
        _ => eps,
    }
}

#[cfg(test)]
mod tests {
    use crate::catalog::Catalog;
    use crate::routing::{plan, RouteContext};
    use serde_json::json;
    use std::collections::HashMap;

    /// OpenAI's default, priority and flex endpoints of one model, and a cheaper host.
    fn cat() -> Catalog {
        let e = |p: &str, tier: Option<&str>, prompt: &str| {
            let mut v = json!({"provider": p, "upstream_model": "m", "pricing": {"prompt": prompt, "completion": prompt}});
            if let Some(t) = tier {
                v["service_tier"] = json!(t);
            }
            v
        };
        let p = |slug: &str| json!({"slug": slug, "name": slug, "api": "openai", "base_url": "http://x"});
        serde_json::from_value(json!({
            "providers": [p("openai"), p("host")],
            "models": [{"id": "o/m", "name": "M", "context_length": 1000, "endpoints": [
                e("openai", None, "0.000002"), e("openai", Some("priority"), "0.000004"),
                e("openai", Some("flex"), "0.000001"), e("host", None, "0.0000015")]}]
        }))
        .unwrap()
    }

    fn order(body: serde_json::Value) -> Vec<String> {
        let c = cat();
        let mut req = json!({"model": "o/m", "messages": [{"role": "user", "content": "hi"}]});
        req.as_object_mut()
            .unwrap()
            .extend(body.as_object().unwrap().clone());
        let req: crate::api::ChatRequest = serde_json::from_value(req).unwrap();
        let health = HashMap::new();
        let ctx = RouteContext::quiet(&health, true);
        let mut rnd = || 0.0;
        let got = plan(&c, &req, &ctx, &mut rnd).unwrap();
        got.iter().map(|c| c.endpoint.tag()).collect()
    }

    #[test]
    fn tiers_are_opt_in() {
        // Neither tier without asking: the price-weighted default order.
        assert_eq!(order(json!({})), ["host", "openai"]);
        assert_eq!(order(json!({"service_tier": "auto"})), ["host", "openai"]);
        assert_eq!(
            order(json!({"service_tier": "priority"})),
            ["openai/priority", "openai", "host"]
        );
        assert_eq!(
            order(json!({"service_tier": "fast"})),
            ["openai/priority", "openai", "host"]
        );
        assert_eq!(order(json!({"service_tier": "flex"})), ["openai/flex"]);
        assert_eq!(
            order(json!({"model": "o/m:floor"})),
            ["openai/flex", "host", "openai"]
        );
        assert_eq!(order(json!({"model": "o/m:nitro"})).len(), 3);
        assert!(order(json!({"model": "o/m:nitro"})).contains(&"openai/priority".to_string()));
        assert_eq!(
            order(json!({"model": "o/m:floor", "service_tier": "default"})),
            ["host", "openai"]
        );
        assert_eq!(
            order(json!({"model": "o/m:floor", "provider": {"order": ["openai"]}})),
            ["openai", "host"]
        );
        assert_eq!(
            order(json!({"provider": {"only": ["openai/priority"]}})),
            ["openai/priority"]
        );
        assert_eq!(
            order(json!({"provider": {"order": ["openai/flex", "host"]}})),
            ["openai/flex", "host", "openai"]
        );
    }
}
