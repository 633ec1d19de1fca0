//! What a generation used, in tokens, and what it cost: OpenRouter's `usage` object,
//! as providers report it and replies carry it. Below the catalogue, which prices it.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Usage {
    #[serde(default)]
    pub prompt_tokens: u64,
    #[serde(default)]
    pub completion_tokens: u64,
    #[serde(default)]
    pub total_tokens: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt_tokens_details: Option<PromptTokensDetails>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completion_tokens_details: Option<CompletionTokensDetails>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost: Option<crate::money::Usd>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_byok: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost_details: Option<CostDetails>,
    /// Web searches a provider's server tool ran (Anthropic's
    /// `server_tool_use.web_search_requests`), priced at the endpoint's `web_search`.
    #[serde(skip)]
    pub web_searches: u64,
    /// Pages the file parser's `mistral-ocr` engine read for the request
    /// (`usage.ocr_pages`); what they cost is `ocr_picos`, charged with the generation.
    #[serde(skip_deserializing, skip_serializing_if = "is_zero")]
    pub ocr_pages: u64,
    #[serde(skip)]
    pub ocr_picos: u64,
    /// The server tools the gateway ran for the request (`usage.server_tool_use`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_tool_use: Option<ServerToolUse>,
    /// Where the request's session stands after it (`usage.session`), when it names one.
    #[serde(skip_deserializing, skip_serializing_if = "Option::is_none")]
    pub session: Option<SessionUsage>,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// What the file parser's OCR engine read for a request: pages, and their cost. Until
/// the OCR has run (it runs once the request is admitted), its worst case: `pages` the
/// most the PDFs can be billed for, `picos` what they would cost, and `pending` the
/// PDFs still to read (each in the prompt as a placeholder for its text, which the
/// reservation counts at the whole context).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Ocr {
    pub pages: u64,
    pub picos: u64,
    pub pending: u64,
}

impl Ocr {
    /// `usage` billed for it too.
    pub fn bill(self, usage: &mut Usage) {
        usage.ocr_pages = self.pages;
        usage.ocr_picos = self.picos;
    }
}

/// `usage.server_tool_use`: the server-tool calls a request ran.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerToolUse {
    pub web_search_requests: u64,
    pub web_fetch_requests: u64,
    pub mcp_tool_calls: u64,
}

impl ServerToolUse {
    pub fn add(&mut self, o: ServerToolUse) {
        self.web_search_requests = self
            .web_search_requests
            .saturating_add(o.web_search_requests);
        self.web_fetch_requests = self.web_fetch_requests.saturating_add(o.web_fetch_requests);
        self.mcp_tool_calls = self.mcp_tool_calls.saturating_add(o.mcp_tool_calls);
    }

    pub fn total(&self) -> u64 {
        self.web_search_requests
            .saturating_add(self.web_fetch_requests)
            .saturating_add(self.mcp_tool_calls)
    }
}

/// `usage.session`: a session's figures after the request that reports them (its cost
/// added, its hold given back), and what is left of its limits.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SessionUsage {
    pub id: String,
    pub cost: crate::money::Usd,
    pub requests: u64,
    pub tokens: u64,
    pub remaining_cost: Option<crate::money::Usd>,
    pub remaining_requests: Option<u64>,
}

impl SessionUsage {
    /// The figures after a request charged `cost`, `self` being them before it (what
    /// is left of `max_cost` then already less the other requests' holds).
    pub fn after(&self, cost: Option<crate::money::Usd>) -> SessionUsage {
        let c = cost.map_or(0, |c| c.0);
        SessionUsage {
            cost: crate::money::Usd(self.cost.0.saturating_add(c)),
            remaining_cost: self
                .remaining_cost
                .map(|r| crate::money::Usd(r.0.saturating_sub(c))),
            ..self.clone()
        }
    }
}

/// What the upstream bills for a generation, as OpenRouter breaks it down (cached
/// prompt tokens at their cache prices, reasoning and image tokens at theirs).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct CostDetails {
    pub upstream_inference_cost: crate::money::Usd,
    pub upstream_inference_prompt_cost: crate::money::Usd,
    pub upstream_inference_completions_cost: crate::money::Usd,
    /// A stream that failed over (`provider.stream_failover: "continue"`): each
    /// attempt, in order, with what it cost the caller.
    #[serde(skip_deserializing, skip_serializing_if = "Vec::is_empty")]
    pub attempts: Vec<AttemptCost>,
}

/// One attempt of a stream that failed over: `usage.cost_details.attempts[]`.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct AttemptCost {
    pub provider: String,
    pub model: String,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    pub cost: crate::money::Usd,
    /// `completed`, or why the attempt ended (the error the next took over from).
    pub outcome: String,
}

impl Usage {
    pub fn new(prompt: u64, completion: u64) -> Self {
        Usage {
            prompt_tokens: prompt,
            completion_tokens: completion,
            total_tokens: prompt.saturating_add(completion),
            ..Default::default()
        }
    }
}

impl Usage {
    /// Adds `b`'s counts and amounts (the attempts of one stream that failed over).
    pub fn add(&mut self, b: &Usage) {
        use crate::money::Usd;
        let plus = |x: &mut Usd, y: &Usd| x.0 = x.0.saturating_add(y.0);
        self.prompt_tokens = self.prompt_tokens.saturating_add(b.prompt_tokens);
        self.completion_tokens = self.completion_tokens.saturating_add(b.completion_tokens);
        self.total_tokens = self.prompt_tokens.saturating_add(self.completion_tokens);
        self.web_searches = self.web_searches.saturating_add(b.web_searches);
        if let Some(c) = &b.cost {
            plus(self.cost.get_or_insert(Usd(0)), c);
        }
        if let Some(bd) = &b.cost_details {
            let ad = self.cost_details.get_or_insert_with(CostDetails::default);
            plus(&mut ad.upstream_inference_cost, &bd.upstream_inference_cost);
            plus(
                &mut ad.upstream_inference_prompt_cost,
                &bd.upstream_inference_prompt_cost,
            );
            plus(
                &mut ad.upstream_inference_completions_cost,
                &bd.upstream_inference_completions_cost,
            );
        }
        if let Some(bp) = &b.prompt_tokens_details {
            let ap = self
                .prompt_tokens_details
                .get_or_insert_with(Default::default);
            ap.cached_tokens = ap.cached_tokens.saturating_add(bp.cached_tokens);
            if let Some(w) = bp.cache_write_tokens {
                let sum = ap.cache_write_tokens.unwrap_or(0).saturating_add(w);
                ap.cache_write_tokens = Some(sum);
            }
            let hour = ap
                .cache_write_1h_tokens
                .saturating_add(bp.cache_write_1h_tokens);
            ap.cache_write_1h_tokens = hour;
        }
        if let Some(bc) = &b.completion_tokens_details {
            let ac = self
                .completion_tokens_details
                .get_or_insert_with(Default::default);
            ac.reasoning_tokens = ac.reasoning_tokens.saturating_add(bc.reasoning_tokens);
        }
    }
}

/// What the attempts before the last came to, for the settlement: their tokens, what
/// the caller is charged for them and what the operator lost on them (insured ones).
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Earlier {
    pub usage: Usage,
    pub charged_picos: u64,
    pub loss_picos: u64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct PromptTokensDetails {
    #[serde(default)]
    pub cached_tokens: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_write_tokens: Option<u64>,
    /// Of `cache_write_tokens`, those written for an hour (Anthropic bills them at 2×
    /// the prompt price, not the 5-minute write price). Priced here, not sent: the
    /// reply's shape is OpenRouter's.
    #[serde(skip)]
    pub cache_write_1h_tokens: u64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct CompletionTokensDetails {
    #[serde(default)]
    pub reasoning_tokens: u64,
    /// Tokens of generated images (priced at the endpoint's `image_output`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_tokens: Option<u64>,
}
