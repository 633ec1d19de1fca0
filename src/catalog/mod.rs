//! The model catalogue: providers, models and their endpoints (model × provider),
//! as stored in KV under [`KV_KEY`] and documented in `catalog/README.md`.

pub mod figures;
pub mod listing;
pub mod tier;

pub use tier::Tier;

use std::collections::HashSet;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::error::{Error, Result};

/// The KV key the catalogue document is stored under.
pub const KV_KEY: &str = "catalog";

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Catalog {
    #[serde(default = "one")]
    pub version: u32,
    pub providers: Vec<Provider>,
    pub models: Vec<Model>,
}

fn one() -> u32 {
    1
}

/// The wire format a provider speaks.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum ApiFamily {
    /// OpenAI's chat completions and every vendor that copies it.
    #[default]
    Openai,
    Anthropic,
    Gemini,
    /// The built-in demo: no upstream at all.
    Echo,
    /// A family this build does not know; its endpoints are never routed to.
    #[serde(other)]
    Unknown,
}

impl ApiFamily {
    /// Whether the catalogue named a family this build knows (its translator is
    /// `providers::family`; routing, which may not use providers, asks here).
    pub fn is_known(self) -> bool {
        self != ApiFamily::Unknown
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct DataPolicy {
    /// The provider may train on prompts and completions.
    #[serde(default)]
    pub training: bool,
    /// The provider keeps prompts after answering (abuse monitoring, logs).
    #[serde(default)]
    pub retains_prompts: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retention_days: Option<u32>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Provider {
    pub slug: String,
    pub name: String,
    #[serde(default)]
    pub api: ApiFamily,
    /// Root of the provider's API, e.g. `https://api.openai.com/v1`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_url: Option<String>,
    /// Extra headers sent on every upstream request (non-secret).
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub headers: Map<String, Value>,
    #[serde(default)]
    pub data_policy: DataPolicy,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub privacy_policy_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub terms_of_service_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_page_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub headquarters: Option<String>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl Provider {
    /// `OPENAI`, `GOOGLE_AI_STUDIO`, ...: the prefix of this provider's secrets and vars.
    pub fn env_prefix(&self) -> String {
        self.slug
            .chars()
            .map(|c| match c {
                'a'..='z' => c.to_ascii_uppercase(),
                'A'..='Z' | '0'..='9' => c,
                _ => '_',
            })
            .collect()
    }

    /// The secret holding this provider's API key.
    pub fn key_secret(&self) -> String {
        format!("{}_API_KEY", self.env_prefix())
    }

    /// The var that overrides this provider's base URL.
    pub fn base_url_var(&self) -> String {
        format!("{}_BASE_URL", self.env_prefix())
    }
}

/// Prices per token (or per request, image, search), published as decimal USD strings
/// as OpenRouter does, held as picodollars from the moment the catalogue is read.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Pricing {
    pub prompt: Price,
    pub completion: Price,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request: Option<Price>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<Price>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub web_search: Option<Price>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub internal_reasoning: Option<Price>,
    /// Per token of generated images (the completion price when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_output: Option<Price>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_cache_read: Option<Price>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_cache_write: Option<Price>,
    /// Prices that apply instead to a longer prompt (Google prices Gemini's Pro models
    /// higher past 200k prompt tokens), as the provider bills the whole request.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tiers: Vec<PriceTier>,
    /// A BYOK generation (the account's own provider key): it is charged this percent
    /// of what these prices come to, rounded up to the picodollar; never read from a
    /// catalogue.
    #[serde(skip)]
    pub byok_fee_percent: Option<u64>,
}

/// A price tier: for a prompt of more than `above_prompt_tokens` tokens, these prices
/// replace the base ones for every token of the request.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct PriceTier {
    pub above_prompt_tokens: u64,
    pub prompt: Price,
    pub completion: Price,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_cache_read: Option<Price>,
}

impl Pricing {
    /// The prices for a request of `prompt_tokens` prompt tokens: those of the highest
    /// tier it passes, or these.
    pub fn for_prompt(&self, prompt_tokens: u64) -> std::borrow::Cow<'_, Pricing> {
        let tier = self
            .tiers
            .iter()
            .filter(|t| prompt_tokens > t.above_prompt_tokens)
            .max_by_key(|t| t.above_prompt_tokens);
        match tier {
            None => std::borrow::Cow::Borrowed(self),
            Some(t) => std::borrow::Cow::Owned(Pricing {
                prompt: t.prompt,
                completion: t.completion,
                input_cache_read: t.input_cache_read.or(self.input_cache_read),
                tiers: Vec::new(),
                ..self.clone()
            }),
        }
    }

    /// Every price this endpoint states, its tiers' included.
    fn prices(&self) -> impl Iterator<Item = Price> + '_ {
        [
            Some(self.prompt),
            Some(self.completion),
            self.request,
            self.image,
            self.web_search,
            self.internal_reasoning,
            self.image_output,
            self.input_cache_read,
            self.input_cache_write,
        ]
        .into_iter()
        .flatten()
        .chain(
            self.tiers
                .iter()
                .flat_map(|t| [Some(t.prompt), Some(t.completion), t.input_cache_read])
                .flatten(),
        )
    }

    pub fn is_free(&self) -> bool {
        self.prices().all(|p| p == Price::ZERO)
    }
}

/// Limits the upstream itself imposes on this endpoint (e.g. a free tier).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct UpstreamLimits {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requests_per_minute: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requests_per_day: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tokens_per_minute: Option<u64>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Endpoint {
    /// Slug of the provider serving it.
    pub provider: String,
    /// The model ID the upstream knows it by.
    pub upstream_model: String,
    pub pricing: Pricing,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context_length: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_completion_tokens: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quantization: Option<String>,
    /// Parameters this endpoint accepts; the model's list when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub supported_parameters: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limits: Option<UpstreamLimits>,
    /// Overrides the provider's policy for this endpoint (e.g. a free tier that trains).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_policy: Option<DataPolicy>,
    /// The most prompt tokens one media item can be billed at here, where known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_max_tokens: Option<MediaMaxTokens>,
    /// Gemini: the model whose documented thinking settings apply (`gemini-2.5-flash`,
    /// `gemini-3-pro-preview`, ...) when the upstream name does not say it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thinking_as: Option<String>,
    /// The model thinks without streaming its thoughts, at about this many tokens a
    /// second where health has measured none: a stream cut before the provider's final
    /// count is billed the reasoning its silence stands for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hidden_reasoning_tps: Option<u64>,
    /// A service tier's endpoint (`flex`, `priority`): its own entry, at the tier's
    /// prices, eligible only when a request asks for the tier ([`tier`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_tier: Option<Tier>,
    /// The provider searches the web itself for this endpoint (Anthropic's
    /// `web_search` tool, OpenAI's search models, Gemini's `google_search`): a
    /// request's `openrouter:web_search` with `engine` `auto` or `native` is sent as
    /// that tool here, each search billed at `pricing.web_search`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub native_web_search: bool,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// What an endpoint bills one media item at most, in prompt tokens. A kind it does not
/// state is reserved at the gateway's default for images and at the whole context for
/// the others (a video's or a PDF's size is only known to the provider).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct MediaMaxTokens {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub video: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<u64>,
}

/// Names an endpoint in health and quota records (a tier's endpoint: with `@tier`).
pub fn endpoint_key(e: &Endpoint) -> String {
    match e.service_tier {
        Some(t) => format!("{}/{}@{}", e.provider, e.upstream_model, t.as_str()),
        None => format!("{}/{}", e.provider, e.upstream_model),
    }
}

/// The data policy that applies at an endpoint of provider `p`.
pub fn data_policy<'a>(p: &'a Provider, e: &'a Endpoint) -> &'a DataPolicy {
    e.data_policy.as_ref().unwrap_or(&p.data_policy)
}

/// Picodollars per million tokens of a per-token price (what `/models` filters and
/// `provider.max_price` compare against), exact in a u128.
pub fn per_million(price: Price) -> u128 {
    u128::from(price.0).saturating_mul(1_000_000)
}

impl Endpoint {
    /// What "cheaper" means: picodollars per prompt token plus per completion token,
    /// compared as integers.
    pub fn price_picos(&self) -> u64 {
        self.pricing
            .prompt
            .0
            .saturating_add(self.pricing.completion.0)
    }

    /// The most one reply from this endpoint can generate: its `max_completion_tokens`,
    /// or its context length where it states none.
    pub fn output_ceiling(&self, model: &Model) -> u64 {
        self.max_completion_tokens
            .or(self.context_length)
            .unwrap_or(model.context_length)
            .max(1)
    }

    /// The completion budget to send this endpoint for a caller who asked `asked`: a
    /// `max_tokens` above what the endpoint generates is lowered to its maximum, as
    /// OpenRouter does (the reply's usage shows what was generated).
    pub fn cap_output(&self, model: &Model, asked: Option<u64>) -> Option<u64> {
        asked.map(|a| a.min(self.output_ceiling(model)))
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Model {
    /// `author/slug`, with `:free` for free variants.
    pub id: String,
    pub name: String,
    /// Unix seconds when the model was released.
    #[serde(default)]
    pub created: u64,
    #[serde(default)]
    pub description: String,
    pub context_length: u64,
    #[serde(default = "text_only")]
    pub input_modalities: Vec<String>,
    #[serde(default = "text_only")]
    pub output_modalities: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tokenizer: Option<String>,
    #[serde(default)]
    pub supported_parameters: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_parameters: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hugging_face_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub knowledge_cutoff: Option<String>,
    /// Its author allows training other models on its output (`enforce_distillable_text`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub distillable: bool,
    /// The family the model is a version of (`anthropic/claude-sonnet`): the alias
    /// `~anthropic/claude-sonnet-latest` names its newest model ([`Catalog::latest`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub family: Option<String>,
    pub endpoints: Vec<Endpoint>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

fn text_only() -> Vec<String> {
    vec!["text".into()]
}

impl Catalog {
    /// Parses and checks a catalogue document.
    pub fn from_json(bytes: &[u8]) -> Result<Self> {
        let cat: Catalog = serde_json::from_slice(bytes)
            .map_err(|e| Error::Internal(format!("catalogue is not valid: {e}")))?;
        cat.check()
            .map_err(|e| Error::Internal(format!("catalogue is not valid: {e}")))?;
        Ok(cat)
    }

    /// Consistency checks: unique IDs, known providers (prices were checked as they were
    /// read: a price that is not decimal text fails the parse, naming where it is).
    pub fn check(&self) -> std::result::Result<(), String> {
        let mut slugs = HashSet::new();
        for p in &self.providers {
            if p.slug.is_empty() || !slugs.insert(p.slug.as_str()) {
                return Err(format!("provider slug {:?} is empty or repeated", p.slug));
            }
            if p.api != ApiFamily::Echo && p.base_url.is_none() {
                return Err(format!("provider {} has no base_url", p.slug));
            }
        }
        let mut ids = HashSet::new();
        for m in &self.models {
            if !m.id.contains('/') || !ids.insert(m.id.as_str()) {
                return Err(format!(
                    "model id {:?} is not author/slug or is repeated",
                    m.id
                ));
            }
            if m.endpoints.is_empty() {
                return Err(format!("model {} has no endpoints", m.id));
            }
            for e in &m.endpoints {
                if !slugs.contains(e.provider.as_str()) {
                    return Err(format!(
                        "model {} names unknown provider {}",
                        m.id, e.provider
                    ));
                }
            }
        }
        Ok(())
    }

    pub fn model(&self, id: &str) -> Option<&Model> {
        self.models.iter().find(|m| m.id == id)
    }

    /// The model an alias `~author/family-latest` names: the newest (by `created`,
    /// then the greatest ID) of the models whose `family` is `author/family`, free
    /// variants (`:free`) aside. `None` for an ID that is not such an alias, or a
    /// family with no model (an error, never another model).
    pub fn latest(&self, alias: &str) -> Option<&Model> {
        let family = alias.strip_prefix('~')?.strip_suffix("-latest")?;
        self.models
            .iter()
            .filter(|m| m.family.as_deref() == Some(family) && !m.id.ends_with(":free"))
            .max_by(|a, b| (a.created, &a.id).cmp(&(b.created, &b.id)))
    }

    pub fn provider(&self, slug: &str) -> Option<&Provider> {
        self.providers.iter().find(|p| p.slug == slug)
    }
}

pub use crate::money::{parse_picos, Price, PICOS_PER_USD};

/// Zero-completion insurance as OpenRouter defines it: a reply is free to the caller
/// only when it produced no output (no output tokens counted and nothing delivered)
/// *and* every finish reason is blank or `error`. An empty reply that stopped normally
/// (a stop sequence that fired at once) is a real, billable answer.
pub fn zero_completion_insured<'a>(
    completion_tokens: u64,
    delivered: bool,
    finish_reasons: impl IntoIterator<Item = Option<&'a str>>,
) -> bool {
    completion_tokens == 0
        && !delivered
        && finish_reasons
            .into_iter()
            .all(|f| matches!(f.map(str::trim), None | Some("" | "error")))
}

impl Pricing {
    /// Cost of a completion in picodollars. Prompt tokens read from the cache cost the
    /// cache-read price and those written to it the cache-write price, reasoning tokens
    /// the internal-reasoning price, where the endpoint has them; the per-request price
    /// is added once.
    pub fn cost_picos(&self, u: &crate::usage::Usage) -> u64 {
        let (prompt, completion) = self.cost_parts(u);
        self.charged_with_ocr(prompt.saturating_add(completion), u)
    }

    /// What a generation whose prices come to `total`, `u`'s OCR pages among them, is
    /// charged: [`Pricing::charged`], the OCR in full (the gateway's Mistral key read
    /// the pages, BYOK or not).
    fn charged_with_ocr(&self, total: u64, u: &crate::usage::Usage) -> u64 {
        let ocr = u.ocr_picos.min(total);
        self.charged(total.saturating_sub(ocr)).saturating_add(ocr)
    }

    /// What a generation whose prices come to `picos` is charged: that, or a BYOK
    /// generation's fee.
    pub fn charged(&self, picos: u64) -> u64 {
        match self.byok_fee_percent {
            None => picos,
            Some(pct) => crate::money::percent_up(picos, pct),
        }
    }

    /// The cost of `u` in picodollars, split: (the prompt's, with the request price;
    /// the completion's).
    pub fn cost_parts(&self, u: &crate::usage::Usage) -> (u64, u64) {
        if let std::borrow::Cow::Owned(tier) = self.for_prompt(u.prompt_tokens) {
            return tier.cost_parts(u);
        }
        let prompt = self.prompt.0;
        let or_prompt = |p: Option<Price>| p.map_or(prompt, Price::picos);
        let (read, written, hour) = u.prompt_tokens_details.as_ref().map_or((0, 0, 0), |d| {
            let w = d.cache_write_tokens.unwrap_or(0);
            (d.cached_tokens, w, d.cache_write_1h_tokens.min(w))
        });
        let read = read.min(u.prompt_tokens);
        let written = written.min(u.prompt_tokens.saturating_sub(read));
        // A 1-hour write costs 2× the prompt price (Anthropic's), the others the
        // endpoint's write price.
        let hour = hour.min(written);
        // Reasoning tokens are part of the completion; some endpoints price them apart.
        let completion = self.completion.0;
        let (reasoning, images) = u.completion_tokens_details.as_ref().map_or((0, 0), |d| {
            let reasoning = d.reasoning_tokens.min(u.completion_tokens);
            let images = d
                .image_tokens
                .unwrap_or(0)
                .min(u.completion_tokens.saturating_sub(reasoning));
            (reasoning, images)
        });
        let or_completion = |p: Option<Price>| p.map_or(completion, Price::picos);
        let prompt_cost = (u.prompt_tokens.saturating_sub(read).saturating_sub(written))
            .saturating_mul(prompt)
            .saturating_add(read.saturating_mul(or_prompt(self.input_cache_read)))
            .saturating_add(
                written
                    .saturating_sub(hour)
                    .saturating_mul(or_prompt(self.input_cache_write)),
            )
            .saturating_add(hour.saturating_mul(prompt.saturating_mul(2)))
            .saturating_add(
                u.web_searches
                    .saturating_mul(self.web_search.unwrap_or_default().0),
            )
            .saturating_add(self.request.unwrap_or_default().0)
            .saturating_add(u.ocr_picos);
        let completion_cost = u
            .completion_tokens
            .saturating_sub(reasoning)
            .saturating_sub(images)
            .saturating_mul(completion)
            .saturating_add(reasoning.saturating_mul(or_completion(self.internal_reasoning)))
            .saturating_add(images.saturating_mul(or_completion(self.image_output)));
        (prompt_cost, completion_cost)
    }

    /// Prices `u`: `usage.cost` (what the caller pays: nothing when `charged` is false,
    /// as for an insured empty reply) and `usage.cost_details` (what the upstream bills,
    /// prompt and completion apart).
    pub fn price(&self, u: &mut crate::usage::Usage, charged: bool) {
        use crate::money::Usd;
        let (prompt, completion) = self.cost_parts(u);
        let total = prompt.saturating_add(completion);
        let fee = self.charged_with_ocr(total, u);
        u.cost = Some(Usd::from_picos(if charged { fee } else { 0 }));
        if self.byok_fee_percent.is_some() {
            u.is_byok = Some(true);
        }
        u.cost_details = Some(crate::usage::CostDetails {
            upstream_inference_cost: Usd::from_picos(total),
            upstream_inference_prompt_cost: Usd::from_picos(prompt),
            upstream_inference_completions_cost: Usd::from_picos(completion),
            attempts: Vec::new(),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHIPPED: &str = include_str!("../../catalog/catalog.json");

    #[test]
    fn insurance_needs_no_output_and_a_blank_or_error_finish() {
        // Nothing produced and no normal ending: insured.
        assert!(zero_completion_insured(0, false, [None]));
        assert!(zero_completion_insured(0, false, [Some("")]));
        assert!(zero_completion_insured(0, false, [Some("error")]));
        assert!(zero_completion_insured(0, false, []));
        // An empty reply that stopped (or hit its length, or was filtered) is charged.
        for finish in ["stop", "length", "content_filter", "tool_calls"] {
            assert!(
                !zero_completion_insured(0, false, [Some(finish)]),
                "{finish}"
            );
        }
        // Any choice that ended normally makes the reply billable.
        assert!(!zero_completion_insured(0, false, [None, Some("stop")]));
        // Output tokens, or anything delivered, are never insured.
        assert!(!zero_completion_insured(5, false, [Some("error")]));
        assert!(!zero_completion_insured(0, true, [None]));
    }

    #[test]
    fn shipped_catalogue_is_valid() {
        let cat = Catalog::from_json(SHIPPED.as_bytes()).unwrap();
        for family in [
            ApiFamily::Openai,
            ApiFamily::Anthropic,
            ApiFamily::Gemini,
            ApiFamily::Echo,
        ] {
            assert!(cat.providers.iter().any(|p| p.api == family), "{family:?}");
        }
        let echo = cat.model("modelmux/echo").unwrap();
        assert!(echo.endpoints[0].pricing.is_free());
        assert!(cat.models.iter().any(|m| m.id.ends_with(":free")));
    }

    #[test]
    fn a_longer_prompt_is_priced_at_its_tier_for_every_token() {
        let cat = Catalog::from_json(include_bytes!("../../catalog/catalog.json")).unwrap();
        let pro = &cat.model("google/gemini-2.5-pro").unwrap().endpoints[0].pricing;
        let short = crate::usage::Usage::new(200_000, 1_000);
        let long = crate::usage::Usage::new(200_001, 1_000);
        // $1.25/M and $10/M up to 200k prompt tokens; $2.50/M and $15/M past them.
        assert_eq!(
            pro.cost_picos(&short),
            200_000 * 1_250_000 + 1_000 * 10_000_000
        );
        assert_eq!(
            pro.cost_picos(&long),
            200_001 * 2_500_000 + 1_000 * 15_000_000
        );
        assert_eq!(pro.for_prompt(10).prompt, pro.prompt);
        // The reservation too: a video the gateway cannot size fills the 1M context.
        let m = cat.model("google/gemini-2.5-pro").unwrap();
        let video = crate::api::ChatRequest::parse(br#"{"model":"google/gemini-2.5-pro","max_tokens":10,"messages":[{"role":"user","content":[{"type":"video_url","video_url":{"url":"https://youtu.be/x"}}]}]}"#).unwrap();
        let e = &m.endpoints[0];
        let asked = crate::providers::family(ApiFamily::Gemini).output_tokens(&video, m, e);
        let w = crate::accounts::ledger::worst_case(&video, m, e, asked);
        assert_eq!(w.prompt_cost, m.context_length * 2_500_000);
        assert_eq!(w.completion_price, 15_000_000);
    }

    #[test]
    fn server_tool_searches_are_charged_at_the_search_price() {
        let p = Pricing {
            prompt: "0.000003".into(),
            completion: "0.000015".into(),
            web_search: Some("0.01".into()),
            ..Default::default()
        };
        let mut u = crate::usage::Usage::new(1000, 100);
        let plain = p.cost_picos(&u);
        u.web_searches = 3;
        assert_eq!(p.cost_picos(&u), plain + 3 * 10_000_000_000);
    }

    #[test]
    fn ocr_pages_are_charged_with_the_generation_and_held_by_its_reservation() {
        let cat = Catalog::from_json(include_bytes!("../../catalog/catalog.json")).unwrap();
        let m = cat.model("openai/gpt-4.1").unwrap();
        let e = &m.endpoints[0];
        let mut u = crate::usage::Usage::new(1000, 100);
        let plain = e.pricing.cost_picos(&u);
        crate::usage::Ocr {
            pages: 3,
            picos: 3_000_000_000,
            pending: 0,
        }
        .bill(&mut u);
        assert_eq!(e.pricing.cost_picos(&u), plain + 3_000_000_000);
        assert_eq!(serde_json::to_value(&u).unwrap()["ocr_pages"], 3);
        let mut chat = crate::api::ChatRequest::parse(
            br#"{"model":"openai/gpt-4.1","max_tokens":10,"messages":[{"role":"user","content":"hi"}]}"#,
        )
        .unwrap();
        let before = crate::accounts::ledger::worst_case(&chat, m, e, Some(10));
        chat.ocr.picos = 3_000_000_000;
        let after = crate::accounts::ledger::worst_case(&chat, m, e, Some(10));
        assert_eq!(after.reserve, before.reserve + 3_000_000_000);
        assert_eq!(after.prompt_cost, before.prompt_cost + 3_000_000_000);
    }

    #[test]
    fn cost_prices_cache_reads_and_writes() {
        let p = Pricing {
            prompt: "0.000003".into(),
            completion: "0.000015".into(),
            input_cache_read: Some("0.0000003".into()),
            input_cache_write: Some("0.00000375".into()),
            request: Some("0.001".into()),
            ..Default::default()
        };
        let mut u = crate::usage::Usage::new(1000, 100);
        assert_eq!(p.cost_picos(&u), 5_500_000_000);
        let mut priced = u.clone();
        p.price(&mut priced, true);
        assert_eq!(priced.cost.unwrap().to_string(), "0.0055");
        let d = priced.cost_details.clone().unwrap();
        assert_eq!(
            (
                d.upstream_inference_prompt_cost.to_string(),
                d.upstream_inference_completions_cost.to_string()
            ),
            ("0.004".to_string(), "0.0015".to_string())
        );
        p.price(&mut priced, false);
        assert_eq!(priced.cost.unwrap().to_string(), "0");
        assert_eq!(
            priced
                .cost_details
                .unwrap()
                .upstream_inference_cost
                .to_string(),
            "0.0055"
        );
        u.prompt_tokens_details = Some(crate::api::PromptTokensDetails {
            cached_tokens: 600,
            cache_write_tokens: Some(300),
            ..Default::default()
        });
        // 100 fresh, 600 read, 300 written.
        assert_eq!(p.cost_picos(&u), 4_105_000_000);
        // 200 of the 300 written for an hour: 2× the prompt price, not the write price.
        if let Some(d) = u.prompt_tokens_details.as_mut() {
            d.cache_write_1h_tokens = 200;
        }
        let prompt = p.prompt.0;
        let write = p.input_cache_write.unwrap().0;
        assert_eq!(
            p.cost_picos(&u),
            4_105_000_000 - 200 * write + 200 * 2 * prompt
        );
        if let Some(d) = u.prompt_tokens_details.as_mut() {
            d.cache_write_1h_tokens = 0;
        }
        // 40 of the 100 completion tokens were reasoning, priced apart.
        let p = Pricing {
            internal_reasoning: Some("0.00001".into()),
            ..p
        };
        u.completion_tokens_details = Some(crate::api::CompletionTokensDetails {
            reasoning_tokens: 40,
            image_tokens: None,
        });
        assert_eq!(
            p.cost_picos(&u),
            4_105_000_000 - 40 * 15_000_000 + 40 * 10_000_000
        );
        // 50 more were a generated image, at the image output price.
        let p = Pricing {
            image_output: Some("0.00003".into()),
            ..p
        };
        u.completion_tokens_details = Some(crate::api::CompletionTokensDetails {
            reasoning_tokens: 40,
            image_tokens: Some(50),
        });
        assert_eq!(
            p.cost_picos(&u),
            4_105_000_000 - 90 * 15_000_000 + 40 * 10_000_000 + 50 * 30_000_000
        );
    }

    #[test]
    fn decimal_prices_parse_exactly() {
        assert_eq!(parse_picos("0.000000075"), Some(75_000));
        assert_eq!(parse_picos("2"), Some(2 * PICOS_PER_USD));
        assert_eq!(parse_picos(".5"), Some(PICOS_PER_USD / 2));
        assert_eq!(parse_picos("0.0000000000015"), Some(2));
        for bad in ["", ".", "-1", "1e-6", "abc", "1.2.3"] {
            assert_eq!(parse_picos(bad), None, "{bad}");
        }
    }

    #[test]
    fn env_names_follow_the_slug() {
        let p = Provider {
            slug: "google-ai-studio".into(),
            ..Default::default()
        };
        assert_eq!(p.key_secret(), "GOOGLE_AI_STUDIO_API_KEY");
        assert_eq!(p.base_url_var(), "GOOGLE_AI_STUDIO_BASE_URL");
    }

    #[test]
    fn bad_catalogues_are_refused() {
        let good: Catalog = serde_json::from_str(SHIPPED).unwrap();
        let mut c = good.clone();
        c.models[0].endpoints[0].provider = "nobody".into();
        assert!(c.check().unwrap_err().contains("unknown provider"));
        let cheap = SHIPPED.replacen(r#""prompt": "0"#, r#""prompt": "cheap"#, 1);
        assert_ne!(cheap, SHIPPED);
        let err = Catalog::from_json(cheap.as_bytes())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("\"cheap\" is not a decimal USD price"),
            "{err}"
        );
        let mut c = good.clone();
        c.models.push(c.models[0].clone());
        assert!(c.check().unwrap_err().contains("repeated"));
        assert!(Catalog::from_json(b"{}").is_err());
    }

    #[test]
    fn unknown_api_family_is_tolerated() {
        let p: Provider =
            serde_json::from_str(r#"{"slug":"x","name":"X","api":"cohere","base_url":"http://x"}"#)
                .unwrap();
        assert_eq!(p.api, ApiFamily::Unknown);
    }
}
