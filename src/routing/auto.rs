//! The routers `openrouter/auto` and `openrouter/free`: a deterministic choice of
//! catalogue models for what a request needs, settled before planning (the plan then
//! routes the chosen model as if it were asked for by name).
//!
//! The rule, in order:
//! 1. Candidates: the catalogue's chat models (no embedding models, no in-gateway
//!    demo model, no router). `openrouter/free` takes only free models (a `:free` ID
//!    or every endpoint free); `openrouter/auto` takes the others.
//! 2. The `auto-router` plugin's `allowed_models` (patterns, `*` matching any run of
//!    characters: `anthropic/*`) keep only the models they match; `excluded_models`
//!    take out those they match.
//! 3. What the request needs: tool calling (`tools` sent), each input it holds
//!    (images, files, audio, video), image output (`modalities`), reasoning
//!    (`reasoning`/`reasoning_effort` sent) and room for its prompt plus its
//!    completion budget in the model's context.
//! 4. The models left are ordered by price (the cheapest endpoint's prompt plus
//!    completion price per token; then the newest; then the ID), and `cost_tier`
//!    takes its band of that order: `low` the cheapest fifth (the default), `medium`
//!    the next, then `high`, `xhigh` and `max` the dearest (a band holds one model at
//!    least). Within the band the newest model goes first; the other models follow as
//!    fallbacks in price order.
//! 5. Session stickiness: the model the caller's session was last routed to by the
//!    same router goes first while it still meets rules 1 to 3.

use crate::api::ChatRequest;
use crate::catalog::{ApiFamily, Catalog, Model};
use crate::error::{Error, Result};

/// The two router IDs.
pub const AUTO: &str = "openrouter/auto";
pub const FREE: &str = "openrouter/free";
/// The most models a choice names (the one chosen and its fallbacks).
pub const MAX_CHOSEN: usize = 3;

/// `cost_tier`: a band of the candidates ordered by price.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum CostTier {
    #[default]
    Low,
    Medium,
    High,
    Xhigh,
    Max,
}

impl CostTier {
    const ALL: [CostTier; 5] = [
        CostTier::Low,
        CostTier::Medium,
        CostTier::High,
        CostTier::Xhigh,
        CostTier::Max,
    ];

    /// The tier named `name`, if it is one.
    pub fn of(name: &str) -> Option<CostTier> {
        CostTier::ALL.into_iter().find(|t| t.as_str() == name)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            CostTier::Low => "low",
            CostTier::Medium => "medium",
            CostTier::High => "high",
            CostTier::Xhigh => "xhigh",
            CostTier::Max => "max",
        }
    }

    /// The band's percentiles of the price order.
    fn band(self) -> (usize, usize) {
        match self {
            CostTier::Low => (0, 20),
            CostTier::Medium => (20, 40),
            CostTier::High => (40, 60),
            CostTier::Xhigh => (60, 80),
            CostTier::Max => (80, 100),
        }
    }
}

/// The `auto-router` plugin's settings (OpenRouter's `AutoRouterPlugin`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AutoRouter {
    pub allowed_models: Vec<String>,
    pub excluded_models: Vec<String>,
    pub cost_tier: Option<CostTier>,
}

/// The most patterns `allowed_models` and `excluded_models` may hold together, and
/// the longest pattern.
const MAX_PATTERNS: usize = 256;
const MAX_PATTERN_BYTES: usize = 256;

/// The request's `auto-router` plugin settings (defaults without one); a plugin
/// list or an `auto-router` entry of another shape is a 400 naming `plugins`.
pub fn settings(req: &ChatRequest) -> Result<AutoRouter> {
    let Some(p) = req.plugins.auto_router() else {
        return Ok(AutoRouter::default());
    };
    let cost_tier = match p.cost_tier.as_deref() {
        None => None,
        Some(t) => Some(CostTier::of(t).ok_or_else(|| {
            Error::bad_request(format!(
                "plugins: auto-router cost_tier must be one of low, medium, high, xhigh, max, not {t:?}"
            ))
        })?),
    };
    let a = AutoRouter {
        allowed_models: p.allowed_models.clone().unwrap_or_default(),
        excluded_models: p.excluded_models.clone().unwrap_or_default(),
        cost_tier,
    };
    let patterns = a.allowed_models.iter().chain(&a.excluded_models);
    if a.allowed_models
        .len()
        .saturating_add(a.excluded_models.len())
        > MAX_PATTERNS
        || patterns.clone().any(|p| p.len() > MAX_PATTERN_BYTES)
    {
        return Err(Error::bad_request(format!(
            "plugins: auto-router takes at most {MAX_PATTERNS} model patterns of at most {MAX_PATTERN_BYTES} bytes"
        )));
    }
    Ok(a)
}

/// Whether `id` matches `pattern`, where `*` matches any run of characters.
pub fn matches_pattern(pattern: &str, id: &str) -> bool {
    let mut parts = pattern.split('*');
    let first = parts.next().unwrap_or_default();
    let Some(mut rest) = id.strip_prefix(first) else {
        return false;
    };
    let tail: Vec<&str> = parts.collect();
    let Some((last, middle)) = tail.split_last() else {
        return rest.is_empty();
    };
    for part in middle {
        match rest.find(part) {
            Some(at) => {
                rest = rest
                    .get(at.saturating_add(part.len())..)
                    .unwrap_or_default()
            }
            None => return false,
        }
    }
    rest.ends_with(last)
}

/// What a request needs of the model that serves it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Needs {
    pub tools: bool,
    pub inputs: Vec<&'static str>,
    pub image_output: bool,
    pub reasoning: bool,
    /// The prompt's estimated tokens plus the completion budget asked for.
    pub tokens: u64,
}

impl Needs {
    pub fn of(req: &ChatRequest) -> Needs {
        Needs {
            tools: req.tools.as_ref().is_some_and(|t| !t.is_empty()),
            inputs: super::input_modalities(req),
            image_output: req.wants_image_output(),
            reasoning: req.sets_reasoning(),
            tokens: crate::api::estimate_prompt_tokens(req)
                .saturating_add(req.max_output_tokens().unwrap_or(0)),
        }
    }

    /// The needs by name, for the reply's metadata (`text` when there are none).
    pub fn names(&self) -> Vec<&'static str> {
        let mut out = Vec::new();
        if self.tools {
            out.push("tools");
        }
        out.extend(self.inputs.iter().copied());
        if self.image_output {
            out.push("image_output");
        }
        if self.reasoning {
            out.push("reasoning");
        }
        if out.is_empty() {
            out.push("text");
        }
        out
    }

    fn met_by(&self, m: &Model) -> bool {
        let has = |list: &[String], x: &str| list.iter().any(|i| i == x);
        (!self.tools || has(&m.supported_parameters, "tools"))
            && self.inputs.iter().all(|i| has(&m.input_modalities, i))
            && (!self.image_output || has(&m.output_modalities, "image"))
            && (!self.reasoning || has(&m.supported_parameters, "reasoning"))
            && self.tokens <= m.context_length
    }
}

/// A router's choice: the models to ask for, the chosen one first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chosen {
    pub models: Vec<String>,
    pub tier: CostTier,
    /// How many models met the rules.
    pub eligible: usize,
    /// The first was the session's previous choice.
    pub sticky: bool,
    /// What the request needed ([`Needs::names`]).
    pub needs: Vec<&'static str>,
}

fn is_free(m: &Model) -> bool {
    m.id.ends_with(":free") || m.endpoints.iter().all(|e| e.pricing.is_free())
}

/// The cheapest endpoint's prompt plus completion price per token.
fn price(m: &Model) -> u128 {
    m.endpoints
        .iter()
        .map(|e| u128::from(e.pricing.prompt.0).saturating_add(u128::from(e.pricing.completion.0)))
        .min()
        .unwrap_or(u128::MAX)
}

/// Whether `m` may be chosen by `router` at all (rule 1).
fn candidate(cat: &Catalog, router: &str, m: &Model) -> bool {
    let served = m.endpoints.iter().any(|e| {
        cat.provider(&e.provider)
            .is_some_and(|p| p.api.is_known() && p.api != ApiFamily::Echo)
    });
    let chat = !m.output_modalities.iter().any(|o| o == "embeddings");
    served && chat && !m.id.starts_with("openrouter/") && (router == FREE) == is_free(m)
}

/// The models `router` (`openrouter/auto` or `openrouter/free`) chooses for `req`
/// by the module's rule, `sticky` being the session's previous choice.
pub fn choose(
    cat: &Catalog,
    router: &str,
    req: &ChatRequest,
    a: &AutoRouter,
    sticky: Option<&str>,
) -> Result<Chosen> {
    let needs = Needs::of(req);
    let allowed = |id: &str| {
        (a.allowed_models.is_empty() || a.allowed_models.iter().any(|p| matches_pattern(p, id)))
            && !a.excluded_models.iter().any(|p| matches_pattern(p, id))
    };
    let mut by_price: Vec<&Model> = cat
        .models
        .iter()
        .filter(|m| candidate(cat, router, m) && allowed(&m.id) && needs.met_by(m))
        .collect();
    by_price.sort_by(|x, y| {
        (price(x), std::cmp::Reverse(x.created), &x.id).cmp(&(
            price(y),
            std::cmp::Reverse(y.created),
            &y.id,
        ))
    });
    let n = by_price.len();
    if n == 0 {
        return Err(Error::bad_request(format!(
            "model: {router} found no model that takes what this request needs ({}) among the models allowed",
            needs.names().join(", ")
        )));
    }
    let tier = a.cost_tier.unwrap_or_default();
    let (lo, hi) = tier.band();
    let start = (n.saturating_mul(lo) / 100).min(n.saturating_sub(1));
    let end = n
        .saturating_mul(hi)
        .div_ceil(100)
        .clamp(start.saturating_add(1), n);
    let mut band: Vec<&Model> = by_price.get(start..end).unwrap_or_default().to_vec();
    band.sort_by(|x, y| (y.created, &x.id).cmp(&(x.created, &y.id)));
    let mut order: Vec<&str> = band.iter().map(|m| m.id.as_str()).collect();
    for m in &by_price {
        if !order.contains(&m.id.as_str()) {
            order.push(&m.id);
        }
    }
    let sticky = sticky.filter(|s| order.contains(s));
    if let Some(s) = sticky {
        order.retain(|m| m != &s);
        order.insert(0, s);
    }
    order.truncate(MAX_CHOSEN);
    Ok(Chosen {
        models: order.into_iter().map(str::to_string).collect(),
        tier,
        eligible: n,
        sticky: sticky.is_some(),
        needs: needs.names(),
    })
}

/// Whether `id` names one of the routers.
pub fn is_router(id: &str) -> bool {
    id == AUTO || id == FREE
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// Six models at rising prices, each with what it takes; a free one; the demo.
    fn cat() -> Catalog {
        let m = |id: &str, price: &str, created: u64, inputs: &[&str], params: &[&str]| {
            json!({"id": id, "name": id, "created": created, "context_length": 1000,
                   "input_modalities": inputs, "supported_parameters": params,
                   "endpoints": [{"provider": "p", "upstream_model": id,
                                  "pricing": {"prompt": price, "completion": price}}]})
        };
        serde_json::from_value(json!({
            "providers": [
                {"slug": "p", "name": "P", "api": "openai", "base_url": "http://x"},
                {"slug": "modelmux", "name": "modelmux", "api": "echo"}
            ],
            "models": [
                m("a/text", "0.000001", 10, &["text"], &["max_tokens"]),
                m("a/vision", "0.000002", 20, &["text", "image"], &["max_tokens"]),
                m("b/tools", "0.000003", 30, &["text"], &["tools"]),
                m("b/all", "0.000004", 40, &["text", "image", "file"], &["tools", "reasoning"]),
                m("c/big", "0.000005", 50, &["text", "image"], &["tools"]),
                m("c/max", "0.000009", 5, &["text"], &["tools"]),
                m("f/free:free", "0", 60, &["text"], &["tools"]),
                {"id": "modelmux/echo", "name": "echo", "context_length": 1000,
                 "endpoints": [{"provider": "modelmux", "upstream_model": "echo",
                                "pricing": {"prompt": "0", "completion": "0"}}]},
                {"id": "e/embed", "name": "e", "context_length": 1000, "output_modalities": ["embeddings"],
                 "endpoints": [{"provider": "p", "upstream_model": "e", "pricing": {"prompt": "0.0000001", "completion": "0"}}]}
            ]
        }))
        .unwrap()
    }

    fn req(body: serde_json::Value) -> ChatRequest {
        let mut v = json!({"model": AUTO, "messages": [{"role": "user", "content": "hi"}]});
        v.as_object_mut()
            .unwrap()
            .extend(body.as_object().unwrap().clone());
        ChatRequest::parse(v.to_string().as_bytes()).unwrap()
    }

    fn pick(router: &str, body: serde_json::Value, sticky: Option<&str>) -> Result<Chosen> {
        let r = req(body);
        choose(&cat(), router, &r, &settings(&r)?, sticky)
    }

    fn models(c: Chosen) -> Vec<String> {
        c.models
    }

    const IMAGE: &str = "data:image/png;base64,iVBORw0KGgo=";

    #[test]
    fn the_newest_of_the_cheapest_band_that_takes_the_request() {
        let c = pick(AUTO, json!({}), None).unwrap();
        assert_eq!(c.eligible, 6);
        assert_eq!(c.tier, CostTier::Low);
        assert_eq!(models(c), ["a/vision", "a/text", "b/tools"]);
        let image = json!({"messages": [{"role": "user", "content": [
            {"type": "text", "text": "what is this?"}, {"type": "image_url", "image_url": {"url": IMAGE}}]}]});
        assert_eq!(
            models(pick(AUTO, image, None).unwrap()),
            ["a/vision", "b/all", "c/big"]
        );
        let tools = json!({"tools": [{"type": "function", "function": {"name": "f"}}]});
        assert_eq!(
            models(pick(AUTO, tools.clone(), None).unwrap()),
            ["b/tools", "b/all", "c/big"]
        );
        let both = json!({"tools": [{"type": "function", "function": {"name": "f"}}],
            "reasoning": {"effort": "low"},
            "messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": IMAGE}}]}]});
        assert_eq!(models(pick(AUTO, both, None).unwrap()), ["b/all"]);
    }

    #[test]
    fn cost_tiers_take_their_band_newest_first() {
        let tier = |t: &str| {
            let body = json!({"plugins": [{"id": "web"}, {"id": "auto-router", "cost_tier": t}]});
            models(pick(AUTO, body, None).unwrap())
        };
        // Six by price: a/text, a/vision, b/tools, b/all, c/big, c/max.
        assert_eq!(tier("low"), ["a/vision", "a/text", "b/tools"]);
        assert_eq!(tier("medium"), ["b/tools", "a/vision", "a/text"]);
        assert_eq!(tier("high"), ["b/all", "b/tools", "a/text"]);
        assert_eq!(tier("xhigh"), ["c/big", "b/all", "a/text"]);
        assert_eq!(tier("max"), ["c/big", "c/max", "a/text"]);
        let e = pick(
            AUTO,
            json!({"plugins": [{"id": "auto-router", "cost_tier": "cheap"}]}),
            None,
        );
        assert_eq!(e.unwrap_err().status(), 400);
    }

    #[test]
    fn allowed_and_excluded_patterns() {
        let body = json!({"plugins": [{"id": "auto-router", "allowed_models": ["b/*", "c/big"], "excluded_models": ["*/all"]}]});
        let c = pick(AUTO, body, None).unwrap();
        assert_eq!(c.eligible, 2);
        assert_eq!(models(c), ["b/tools", "c/big"]);
        assert!(matches_pattern(
            "anthropic/*",
            "anthropic/claude-sonnet-4.5"
        ));
        assert!(matches_pattern("*sonnet*", "anthropic/claude-sonnet-4.5"));
        assert!(matches_pattern("a/*-4.*", "a/claude-4.5"));
        assert!(!matches_pattern("anthropic/*", "openai/gpt-4o"));
        assert!(!matches_pattern("a/b", "a/bc"));
        assert!(matches_pattern("*", "x"));
        let none = json!({"plugins": [{"id": "auto-router", "allowed_models": ["z/*"]}]});
        assert_eq!(
            pick(AUTO, none, None).unwrap_err().public_message(),
            "model: openrouter/auto found no model that takes what this request needs (text) among the models allowed"
        );
    }

    #[test]
    fn free_router_and_context_and_stickiness() {
        assert_eq!(
            models(pick(FREE, json!({}), None).unwrap()),
            ["f/free:free"]
        );
        // 1000 tokens of context: a budget past it leaves no model.
        assert_eq!(
            pick(AUTO, json!({"max_tokens": 2000}), None)
                .unwrap_err()
                .status(),
            400
        );
        // The session's model first while it still takes the request.
        let c = pick(AUTO, json!({}), Some("c/big")).unwrap();
        assert!(c.sticky);
        assert_eq!(models(c), ["c/big", "a/vision", "a/text"]);
        let tools = json!({"tools": [{"type": "function", "function": {"name": "f"}}]});
        let c = pick(AUTO, tools, Some("a/vision")).unwrap();
        assert!(!c.sticky);
        assert_eq!(models(c), ["b/tools", "b/all", "c/big"]);
    }
}

#[cfg(test)]
mod alias_tests {
    use super::super::{plan, RouteContext};
    use crate::api::ChatRequest;
    use crate::catalog::Catalog;
    use serde_json::json;

    fn cat() -> Catalog {
        let m = |id: &str, family: &str, created: u64| {
            json!({"id": id, "name": id, "created": created, "context_length": 1000, "family": family,
                   "endpoints": [{"provider": "p", "upstream_model": id, "pricing": {"prompt": "0.000001", "completion": "0.000001"}}]})
        };
        serde_json::from_value(json!({
            "providers": [{"slug": "p", "name": "P", "api": "openai", "base_url": "http://x"}],
            "models": [
                m("anthropic/claude-sonnet-4", "anthropic/claude-sonnet", 100),
                m("anthropic/claude-sonnet-4.5", "anthropic/claude-sonnet", 200),
                m("anthropic/claude-sonnet-4.5:free", "anthropic/claude-sonnet", 300),
                m("anthropic/claude-haiku-4.5", "anthropic/claude-haiku", 250),
            ]
        }))
        .unwrap()
    }

    fn routed(model: &str) -> crate::error::Result<Vec<String>> {
        let c = cat();
        let body = json!({"model": model, "messages": [{"role": "user", "content": "hi"}]});
        let req = ChatRequest::parse(body.to_string().as_bytes()).unwrap();
        let health = Default::default();
        let ctx = RouteContext::quiet(&health, true);
        let p = plan(&c, &req, &ctx, &mut || 0.0)?;
        Ok(p.iter()
            .map(|c| format!("{}={}", c.id, c.model.id))
            .collect())
    }

    #[test]
    fn an_alias_is_the_newest_of_its_family_and_reported_as_it() {
        assert_eq!(
            cat()
                .latest("~anthropic/claude-sonnet-latest")
                .map(|m| m.id.as_str()),
            Some("anthropic/claude-sonnet-4.5")
        );
        assert_eq!(
            routed("~anthropic/claude-sonnet-latest").unwrap(),
            ["anthropic/claude-sonnet-4.5=anthropic/claude-sonnet-4.5"]
        );
        assert_eq!(
            routed("~anthropic/claude-haiku-latest:nitro").unwrap(),
            ["anthropic/claude-haiku-4.5:nitro=anthropic/claude-haiku-4.5"]
        );
        // A family with no model, or no `-latest`: unknown, never another model.
        assert_eq!(
            routed("~anthropic/claude-opus-latest")
                .unwrap_err()
                .status(),
            404
        );
        assert_eq!(cat().latest("~anthropic/claude-sonnet"), None);
        assert_eq!(cat().latest("anthropic/claude-sonnet-latest"), None);
    }
}
