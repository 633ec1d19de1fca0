//! Service tiers, as OpenRouter has them: a tier's endpoint (`flex`, `priority`) is an
//! entry of its own beside the provider's default one (same provider and upstream
//! model), priced at the tier's prices, and tagged `provider/tier` in the listing, in
//! `provider.order` and in `provider.only`. What serves a request is billed at the tier
//! the upstream says served it: a priority request the provider sheds to its default
//! tier is billed at the default endpoint's prices ([`Model::served_pricing`]).

use serde::{Deserialize, Serialize};

use super::{Endpoint, Model, Pricing};

/// A non-default service tier.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Tier {
    Flex,
    Priority,
}

impl Tier {
    pub fn as_str(self) -> &'static str {
        match self {
            Tier::Flex => "flex",
            Tier::Priority => "priority",
        }
    }

    /// The tier an upstream's reply names: `None` for its default one (`default`,
    /// Google's and Anthropic's `standard`, OpenAI's `auto` or `scale`), `Some(None)`
    /// when it names none.
    pub fn served(name: Option<&str>) -> Option<Option<Tier>> {
        match name? {
            "flex" => Some(Some(Tier::Flex)),
            "priority" | "fast" => Some(Some(Tier::Priority)),
            _ => Some(None),
        }
    }
}

/// The tier's name as a chat or Responses reply says it (`default` for the default
/// tier).
pub fn reply_name(t: Option<Tier>) -> &'static str {
    t.map_or("default", Tier::as_str)
}

impl Endpoint {
    /// The listing's and the preferences' name of this endpoint: the provider's slug,
    /// with `/tier` for a tier's endpoint.
    pub fn tag(&self) -> String {
        match self.service_tier {
            Some(t) => format!("{}/{}", self.provider, t.as_str()),
            None => self.provider.clone(),
        }
    }
}

impl Model {
    /// The prices of what `e` served at tier `served` (as its reply says; `None` when
    /// it says nothing: `e`'s own tier): those of the endpoint of that tier with `e`'s
    /// provider and upstream model, or `e`'s own where there is none.
    pub fn served_pricing<'a>(
        &'a self,
        e: &'a Endpoint,
        served: Option<Option<Tier>>,
    ) -> &'a Pricing {
        let Some(tier) = served.filter(|t| *t != e.service_tier) else {
            return &e.pricing;
        };
        self.endpoints
            .iter()
            .find(|x| {
                x.service_tier == tier
                    && x.provider == e.provider
                    && x.upstream_model == e.upstream_model
            })
            .map_or(&e.pricing, |x| &x.pricing)
    }
}

/// `e`'s prices at the default, flex and priority tiers, for billing at the tier that
/// served; `None` where `m` has no tier's endpoint (then `e`'s own prices bill).
pub fn prices(m: &Model, e: &Endpoint) -> Option<Box<[Pricing; 3]>> {
    if m.endpoints.iter().all(|x| x.service_tier.is_none()) {
        return None;
    }
    let at = |t: Option<Tier>| m.served_pricing(e, Some(t)).clone();
    Some(Box::new([
        at(None),
        at(Some(Tier::Flex)),
        at(Some(Tier::Priority)),
    ]))
}

/// Of `prices` (see [`prices`]), those of the tier `served` names; `own` when it
/// names none or there are no tiers.
pub fn pick<'a>(
    prices: Option<&'a [Pricing; 3]>,
    served: Option<Option<Tier>>,
    own: &'a Pricing,
) -> &'a Pricing {
    let (Some(p), Some(t)) = (prices, served) else {
        return own;
    };
    let i = match t {
        None => 0,
        Some(Tier::Flex) => 1,
        Some(Tier::Priority) => 2,
    };
    p.get(i).unwrap_or(own)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::Price;
    use serde_json::json;

    #[test]
    fn a_shed_request_is_billed_at_the_tier_that_served() {
        let m: Model = serde_json::from_value(json!({
            "id": "o/m", "name": "M", "context_length": 1000,
            "endpoints": [
                {"provider": "openai", "upstream_model": "m", "pricing": {"prompt": "0.000001", "completion": "0.000002"}},
                {"provider": "openai", "upstream_model": "m", "service_tier": "priority",
                 "pricing": {"prompt": "0.000002", "completion": "0.000004"}},
                {"provider": "openai", "upstream_model": "m", "service_tier": "flex",
                 "pricing": {"prompt": "0.0000005", "completion": "0.000001"}}
            ]
        }))
        .unwrap();
        let [default, priority, flex] = [0, 1, 2].map(|i| &m.endpoints[i]);
        assert_eq!(priority.tag(), "openai/priority");
        assert_eq!(crate::catalog::endpoint_key(flex), "openai/m@flex");
        let prompt = |p: &Pricing| p.prompt;
        assert_eq!(prompt(m.served_pricing(priority, None)), Price(2_000_000));
        assert_eq!(
            prompt(m.served_pricing(priority, Tier::served(Some("priority")))),
            Price(2_000_000)
        );
        assert_eq!(
            prompt(m.served_pricing(priority, Tier::served(Some("default")))),
            Price(1_000_000)
        );
        assert_eq!(
            prompt(m.served_pricing(default, Tier::served(Some("flex")))),
            Price(500_000)
        );
        assert_eq!(Tier::served(Some("standard")), Some(None));
        assert_eq!(Tier::served(None), None);
        assert_eq!(reply_name(flex.service_tier), "flex");
        let all = prices(&m, priority).unwrap();
        let pick = |name| pick(Some(&all), Tier::served(name), &priority.pricing).prompt;
        assert_eq!(
            [
                pick(Some("default")),
                pick(Some("flex")),
                pick(Some("priority")),
                pick(None)
            ],
            [
                Price(1_000_000),
                Price(500_000),
                Price(2_000_000),
                Price(2_000_000)
            ]
        );
    }
}
