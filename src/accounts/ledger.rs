//! Credits arithmetic, all in integer picodollars: what a request may cost at worst,
//! whether the account and key can afford it, and what is charged when it ends.

use serde::{Deserialize, Serialize};

use crate::api::ChatRequest;
use crate::catalog::{Endpoint, Model};
use crate::error::{Error, Result};
use crate::money::Usd;

pub use super::left::Left;
pub use crate::money::{parse_picos, picos_from_usd_text, MAX_USD_AMOUNT, PICOS_PER_USD};
use serde_json::Value;

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum LimitReset {
    Daily,
    Weekly,
    Monthly,
}

impl LimitReset {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "daily" => Some(LimitReset::Daily),
            "weekly" => Some(LimitReset::Weekly),
            "monthly" => Some(LimitReset::Monthly),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            LimitReset::Daily => "daily",
            LimitReset::Weekly => "weekly",
            LimitReset::Monthly => "monthly",
        }
    }
}

pub use crate::limits::civil;

/// Days since 1970-01-01 of a civil date; `None` when the arithmetic would overflow
/// (checked throughout: the year may come from a request).
pub fn days_from_civil(y: i64, m: u32, d: u32) -> Option<i64> {
    let y = if m <= 2 { y.checked_sub(1)? } else { y };
    let era = y.checked_div_euclid(400)?;
    let yoe = y.checked_rem_euclid(400)?;
    let m = i64::from(m);
    let shifted = if m > 2 {
        m.checked_sub(3)?
    } else {
        m.checked_add(9)?
    };
    let doy = shifted
        .checked_mul(153)?
        .checked_add(2)?
        .checked_div(5)?
        .checked_add(i64::from(d))?
        .checked_sub(1)?;
    let doe = yoe
        .checked_mul(365)?
        .checked_add(yoe.checked_div(4)?)?
        .checked_sub(yoe.checked_div(100)?)?
        .checked_add(doy)?;
    era.checked_mul(146_097)?
        .checked_add(doe)?
        .checked_sub(719_468)
}

/// The day count of a `YYYY-MM-DD` date (years 0000 to 9999, a day its month has), as
/// `/activity?date=` takes it.
pub fn parse_day(text: &str) -> Option<i64> {
    let mut parts = text.split('-');
    let (y, m, d) = (parts.next()?, parts.next()?, parts.next()?);
    let digits = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_digit());
    if parts.next().is_some() || !digits(y, 4) || !digits(m, 2) || !digits(d, 2) {
        return None;
    }
    let (y, m, d): (i64, u32, u32) = (y.parse().ok()?, m.parse().ok()?, d.parse().ok()?);
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) {
        return None;
    }
    let day = days_from_civil(y, m, d)?;
    // 2026-02-30 and the like: the day must read back as the same date.
    (civil(day) == (y, m, d)).then_some(day)
}

/// `YYYY-MM-DD` of Unix seconds.
pub fn date(secs: u64) -> String {
    let (y, m, d) = civil((secs / 86_400) as i64);
    format!("{y:04}-{m:02}-{d:02}")
}

/// ISO 8601 UTC timestamp of Unix milliseconds.
pub fn iso8601(ms: u64) -> String {
    let secs = ms / 1000;
    let rem = secs % 86_400;
    format!(
        "{}T{:02}:{:02}:{:02}.{:03}Z",
        date(secs),
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        ms % 1000
    )
}

/// Start (Unix seconds) of the UTC day, ISO week (from Monday) or month holding `now`.
#[allow(clippy::arithmetic_side_effects)] // as `civil`: clock values only
pub fn period_start(reset: LimitReset, now_secs: u64) -> u64 {
    let days = (now_secs / 86_400) as i64;
    let start_day = match reset {
        LimitReset::Daily => days,
        // 1970-01-01 was a Thursday: three days after a Monday.
        LimitReset::Weekly => days - (days + 3).rem_euclid(7),
        LimitReset::Monthly => {
            let (y, m, _) = civil(days);
            days_from_civil(y, m, 1).unwrap_or(days)
        }
    };
    (start_day * 86_400) as u64
}

/// An amount for a reply built as a `Value` (written exactly by [`crate::money::Exact`]).
pub fn usd(picos: u64) -> Value {
    crate::money::tagged(u128::from(picos))
}

/// A lifetime total, likewise.
pub fn usd128(picos: u128) -> Value {
    crate::money::tagged(picos)
}

/// What a request may cost at most at one endpoint.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Ask {
    /// The worst case, reserved until the request ends.
    pub reserve: u64,
    /// Its prompt part, and the completion price per token, to say what is affordable.
    pub prompt_cost: u64,
    pub completion_price: u64,
    pub max_completion: u64,
}

impl Ask {
    /// The worst case over several endpoints (fallbacks may land on any of them).
    pub fn max(asks: impl IntoIterator<Item = Ask>) -> Ask {
        asks.into_iter().fold(
            Ask::default(),
            |a, b| if b.reserve > a.reserve { b } else { a },
        )
    }
}

/// The most `req` can cost at `endpoint`, whose upstream call asks for `asked` output
/// tokens (the family says: `providers::Family::output_tokens`): the prompt counted
/// generously ([`crate::api::PromptSize`]: a token per two bytes of every text,
/// tool definition, tool call and result, plus estimates for images, files and audio,
/// since the real count is only known afterwards), plus the longest completion the
/// call asks for (Anthropic's thinking bump included) or the context leaves, times
/// `n`, plus the per-request and per-image prices.
pub fn worst_case(
    req: &ChatRequest,
    model: &Model,
    endpoint: &Endpoint,
    asked: Option<u64>,
) -> Ask {
    let size = crate::api::PromptSize::of(req);
    let context = endpoint.context_length.unwrap_or(model.context_length);
    let prompt_tokens = size
        .worst_tokens(context, endpoint.media_max_tokens.as_ref())
        .max(1);
    // Search results come back as input the provider bills: up to the whole context;
    // so do the texts of PDFs the OCR reads once the request is admitted.
    let prompt_tokens = if req.server_searches > 0 || req.ocr.pending > 0 {
        prompt_tokens.max(context)
    } else {
        prompt_tokens
    };
    let room = context.saturating_sub(size.generous_tokens() / 2).max(1);
    let max_completion = asked.unwrap_or(room).min(room.max(1));
    // `n` choices each generate up to the completion budget.
    let choices = req
        .extra
        .get("n")
        .and_then(serde_json::Value::as_u64)
        .unwrap_or(1)
        .clamp(1, crate::api::validate::MAX_N);
    let priced = |p: Option<crate::money::Price>| p.map_or(0, |p| p.0);
    // A tier's prices where the worst prompt passes its threshold.
    let tiered = endpoint.pricing.for_prompt(prompt_tokens);
    let p = &*tiered;
    // Every prompt token may be a cache write where the request marks one, at the
    // endpoint's write price, or 2× the prompt price for a 1-hour write (as
    // `Pricing::cost_parts` charges it, whether or not the endpoint states a write price).
    let prompt_price = {
        let plain = p.prompt.0;
        let write = priced(p.input_cache_write);
        match size.cache_write {
            crate::api::CacheWrite::None => plain,
            crate::api::CacheWrite::FiveMinutes => plain.max(write),
            crate::api::CacheWrite::OneHour => write.max(plain.saturating_mul(2)),
        }
    };
    let prompt_cost = prompt_tokens.saturating_mul(prompt_price);
    // Every output token at the dearest price it can have: text, hidden reasoning, or
    // images for a model that draws.
    let draws = model.output_modalities.iter().any(|m| m == "image");
    let completion_price = p
        .completion
        .0
        .max(priced(p.internal_reasoning))
        .max(if draws { priced(p.image_output) } else { 0 });
    let request = priced(endpoint.pricing.request)
        .saturating_add(priced(endpoint.pricing.image).saturating_mul(size.images))
        .saturating_add(
            // The searches it may run, those the server-tool loop ran before it, and
            // those the loop may still run after it.
            req.server_searches
                .saturating_add(req.searches_run)
                .saturating_add(req.searches_ahead)
                .saturating_mul(priced(p.web_search)),
        )
        // The pages the OCR engine read for it.
        .saturating_add(req.ocr.picos);
    Ask {
        reserve: prompt_cost
            .saturating_add(
                max_completion
                    .saturating_mul(choices)
                    .saturating_mul(completion_price),
            )
            .saturating_add(request),
        prompt_cost: prompt_cost.saturating_add(request),
        completion_price,
        max_completion,
    }
}

/// The most an embeddings request of `input_bytes` (per input) can cost at `endpoint`:
/// every input counted generously (a token per two bytes), plus the per-request price.
pub fn worst_case_embeddings(input_bytes: &[u64], endpoint: &Endpoint) -> Ask {
    let tokens = input_bytes.iter().fold(0u64, |acc, b| {
        acc.saturating_add(b.div_ceil(2)).saturating_add(1)
    });
    let request = endpoint.pricing.request.unwrap_or_default().0;
    let cost = tokens
        .saturating_mul(endpoint.pricing.prompt.0)
        .saturating_add(request);
    Ask {
        reserve: cost,
        prompt_cost: cost,
        completion_price: 0,
        max_completion: 0,
    }
}

/// An account's money: granted, spent, and held by requests under way. Lifetime
/// totals are u128: an account may pass the $18.4M that u64 picodollars hold.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Funds {
    pub credits: u128,
    pub usage: u128,
    pub reserved: u128,
}

impl Funds {
    /// What may still be reserved (capped at u64: no one request needs more).
    pub fn available(&self) -> u64 {
        let left = self
            .credits
            .saturating_sub(self.usage)
            .saturating_sub(self.reserved);
        u64::try_from(left).unwrap_or(u64::MAX)
    }
}

/// A key's cap for its current period: its limit, what it spent and holds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct KeyBudget {
    pub limit: Option<u64>,
    pub spent: u64,
    pub reserved: u64,
}

impl KeyBudget {
    pub fn remaining(&self) -> Option<u64> {
        self.limit
            .map(|l| l.saturating_sub(self.spent).saturating_sub(self.reserved))
    }
}

/// Whether `ask` may be reserved: 402 when the account cannot afford it (saying how
/// many tokens it can), 403 when the key's own limit would be passed.
pub fn check(funds: &Funds, key: &KeyBudget, ask: &Ask) -> Result<()> {
    if ask.reserve > funds.available() && ask.max_completion == 0 {
        return Err(Error::PaymentRequired(format!(
            "This request requires more credits: it may cost up to ${} and your balance is ${}. Add credits to continue.",
            Usd::from_picos(ask.reserve),
            Usd::from_picos(funds.available()),
        )));
    }
    if ask.reserve > funds.available() {
        let left = funds.available().saturating_sub(ask.prompt_cost);
        let affordable = left.checked_div(ask.completion_price).unwrap_or(0);
        return Err(Error::PaymentRequired(format!(
            "This request requires more credits, or fewer max_tokens. You requested up to {} tokens, but can only afford {affordable}. Your balance is ${}: add credits to continue.",
            ask.max_completion,
            Usd::from_picos(funds.available()),
        )));
    }
    if let Some(remaining) = key.remaining() {
        if ask.reserve > remaining {
            return Err(Error::Forbidden(format!(
                "Key limit exceeded: this request may cost up to ${} and the key has ${} left of its limit. Raise the key's limit or lower max_tokens.",
                Usd::from_picos(ask.reserve),
                Usd::from_picos(remaining),
            )));
        }
    }
    Ok(())
}

/// What settling one request does to the books: of what its provider billed (`cost`),
/// what is charged out of its own hold, what beyond it, and what is not charged at all.
/// `charged() + excess` is always the billed cost: the excess is recorded, never dropped.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Capture {
    /// Charged out of the request's hold (at most the hold).
    pub from_hold: u64,
    /// Charged beyond the hold, out of what no hold covers.
    pub beyond: u64,
    /// Billed past what the key's limit and the balance allow: the operator's loss.
    pub excess: u64,
    /// The key's limit, not the balance, was the tighter bound.
    pub by_limit: bool,
}

impl Capture {
    pub fn charged(&self) -> u64 {
        self.from_hold.saturating_add(self.beyond)
    }
}

/// Settles a request that holds `hold` and ends costing `cost`, with `funds` and `key`
/// as they stand (their `reserved` still counting `hold`). Within its hold a request
/// may spend what the balance and the key's limit have left; beyond it, only what no
/// other hold covers, so that no other admitted request loses the room it was promised.
/// So the account never spends past its credits, nor a key past its limit, even when a
/// provider bills more than the worst case that was reserved.
pub fn capture(cost: u64, hold: u64, funds: &Funds, key: &KeyBudget) -> Capture {
    capture_all(cost, hold, funds, std::slice::from_ref(key))
}

/// [`capture`] within several budgets at once (the key's limit and the session's
/// `max_cost`): each bounds the charge alike.
pub fn capture_all(cost: u64, hold: u64, funds: &Funds, budgets: &[KeyBudget]) -> Capture {
    let cap64 = |v: u128| u64::try_from(v).unwrap_or(u64::MAX);
    let balance = cap64(funds.credits.saturating_sub(funds.usage));
    let balance_free = cap64(
        funds
            .credits
            .saturating_sub(funds.usage)
            .saturating_sub(funds.reserved.max(u128::from(hold))),
    );
    let (limit_left, limit_free) = budgets
        .iter()
        .filter_map(|key| {
            let left = key.limit?.saturating_sub(key.spent);
            Some((left, left.saturating_sub(key.reserved.max(hold))))
        })
        .fold((u64::MAX, u64::MAX), |(l, f), (left, free)| {
            (l.min(left), f.min(free))
        });
    let within = cost.min(hold);
    let over = cost.saturating_sub(within);
    let from_hold = within.min(balance).min(limit_left);
    let beyond = over.min(balance_free).min(limit_free);
    let charged = from_hold.saturating_add(beyond);
    let by_balance = within.min(balance).saturating_add(over.min(balance_free));
    Capture {
        from_hold,
        beyond,
        excess: cost.saturating_sub(charged),
        by_limit: charged < by_balance,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::{ApiFamily, Pricing};

    /// The worst case with the output `family` asks for, as the pipeline computes it.
    fn wc(req: &ChatRequest, m: &Model, e: &Endpoint, family: ApiFamily) -> Ask {
        let asked = crate::providers::family(family).output_tokens(req, m, e);
        worst_case(req, m, e, asked)
    }

    #[test]
    fn calendar() {
        assert_eq!(civil(0), (1970, 1, 1));
        assert_eq!(date(1_795_613_352), "2026-11-25");
        assert_eq!(days_from_civil(2026, 11, 25), Some(1_795_613_352 / 86_400));
        assert_eq!(
            days_from_civil(2024, 2, 29).map(|d| d + 1),
            days_from_civil(2024, 3, 1)
        );
        assert_eq!(iso8601(1_795_613_352_123), "2026-11-25T13:29:12.123Z");
        let now = 1_795_613_352; // Wednesday 2026-11-25
        assert_eq!(date(period_start(LimitReset::Daily, now)), "2026-11-25");
        assert_eq!(date(period_start(LimitReset::Weekly, now)), "2026-11-23");
        assert_eq!(date(period_start(LimitReset::Monthly, now)), "2026-11-01");
        assert_eq!(period_start(LimitReset::Daily, now) % 86_400, 0);
    }

    #[test]
    fn dates_from_requests_never_overflow() {
        assert_eq!(parse_day("2026-11-25"), Some(1_795_613_352 / 86_400));
        assert_eq!(parse_day("1970-01-01"), Some(0));
        assert_eq!(parse_day("2024-02-29"), days_from_civil(2024, 2, 29));
        assert_eq!(parse_day("0000-03-01"), days_from_civil(0, 3, 1));
        for bad in [
            "9223372036854775807-01-01",
            "-9223372036854775808-01-01",
            "99999999999-12-31",
            "2026-02-30",
            "2025-02-29",
            "2026-13-01",
            "2026-00-10",
            "2026-1-1",
            "+202-01-01",
            "2026-01-01-01",
            "2026-01",
            "",
            "२०२६-01-01",
        ] {
            assert_eq!(parse_day(bad), None, "{bad}");
        }
        // The extremes of the arithmetic itself: None, not a wrap or a panic.
        for y in [i64::MAX, i64::MIN, i64::MAX / 365, i64::MIN / 146_097] {
            for m in [1, 2, 3, 12] {
                let _ = days_from_civil(y, m, 31);
            }
        }
        assert_eq!(days_from_civil(i64::MAX, 3, 1), None);
        assert_eq!(days_from_civil(i64::MIN, 1, 1), None);
    }

    #[test]
    fn usd_conversions() {
        assert_eq!(picos_from_usd_text("0.000025"), Some(25_000_000));
        assert_eq!(picos_from_usd_text("10000"), Some(10_000 * PICOS_PER_USD));
        assert_eq!(picos_from_usd_text("1e4"), Some(10_000 * PICOS_PER_USD));
        assert_eq!(picos_from_usd_text("2.5E-7"), Some(250_000));
        assert_eq!(
            picos_from_usd_text("1000000"),
            Some(1_000_000 * PICOS_PER_USD)
        );
        assert_eq!(picos_from_usd_text("0.1"), Some(100_000_000_000));
        assert_eq!(picos_from_usd_text("007.50"), Some(7_500_000_000_000));
        for bad in [
            "-1",
            "1000000.01",
            "1e7",
            "0.0000000000001",
            "abc",
            "",
            ".",
            "1e99",
            "NaN",
            "1.2.3",
        ] {
            assert_eq!(picos_from_usd_text(bad), None, "{bad}");
        }
        assert_eq!(usd(25_000_000), serde_json::json!({"$usd": "0.000025"}));
    }

    fn endpoint(max_completion: Option<u64>) -> (Model, Endpoint) {
        let e = Endpoint {
            provider: "p".into(),
            upstream_model: "m".into(),
            pricing: Pricing {
                prompt: "0.000001".into(),
                completion: "0.000002".into(),
                request: Some("0.0001".into()),
                ..Default::default()
            },
            max_completion_tokens: max_completion,
            ..Default::default()
        };
        let m = Model {
            id: "a/m".into(),
            context_length: 1000,
            endpoints: vec![e.clone()],
            ..Default::default()
        };
        (m, e)
    }

    #[test]
    fn worst_case_uses_max_tokens_then_the_endpoint_then_the_context() {
        let req = ChatRequest::parse(
            br#"{"model":"a/m","max_tokens":10,"messages":[{"role":"user","content":"12345678"}]}"#,
        )
        .unwrap();
        let (m, e) = endpoint(Some(500));
        let a = wc(&req, &m, &e, ApiFamily::Openai);
        // ("user" + 8) bytes / 2 + 8 per message → 14 prompt tokens at 1 µ$, 10
        // completion at 2 µ$, 100 µ$ per request
        assert_eq!(
            (a.prompt_cost, a.max_completion, a.reserve),
            (114_000_000, 10, 134_000_000)
        );
        let req = ChatRequest::parse(
            br#"{"model":"a/m","messages":[{"role":"user","content":"12345678"}]}"#,
        )
        .unwrap();
        assert_eq!(wc(&req, &m, &e, ApiFamily::Openai).max_completion, 500);
        let (m, e) = endpoint(None);
        assert_eq!(wc(&req, &m, &e, ApiFamily::Openai).max_completion, 993);
        let asks = [
            Ask {
                reserve: 5,
                ..Default::default()
            },
            Ask {
                reserve: 9,
                ..Default::default()
            },
        ];
        assert_eq!(Ask::max(asks).reserve, 9);
    }

    #[test]
    fn worst_case_holds_the_searches_run_and_those_the_loop_may_still_run() {
        let mut req = ChatRequest::parse(
            br#"{"model":"a/m","max_tokens":10,"messages":[{"role":"user","content":"12345678"}]}"#,
        )
        .unwrap();
        let (m, mut e) = endpoint(Some(500));
        // $0.01 per search.
        e.pricing.web_search = Some(crate::money::Price(10_000_000_000));
        assert_eq!(wc(&req, &m, &e, ApiFamily::Openai).reserve, 134_000_000);
        req.searches_run = 1;
        req.searches_ahead = 3;
        let a = wc(&req, &m, &e, ApiFamily::Openai);
        // 134 µ$ as above, plus 4 searches at 10_000 µ$.
        assert_eq!((a.prompt_cost, a.reserve), (40_114_000_000, 40_134_000_000));
    }

    #[test]
    fn worst_case_counts_every_input_and_every_choice() {
        let (m, e) = endpoint(Some(100));
        let base = |extra: &str| {
            ChatRequest::parse(
                format!(r#"{{"model":"a/m","max_tokens":10,"messages":[{{"role":"user","content":"hi"}}]{extra}}}"#)
                    .as_bytes(),
            )
            .unwrap()
        };
        let plain = wc(&base(""), &m, &e, ApiFamily::Openai);
        // Tool definitions count as prompt.
        let tools = wc(
            &base(
                r#","tools":[{"type":"function","function":{"name":"f","description":"a long description of a tool that takes room"}}]"#,
            ),
            &m,
            &e,
            ApiFamily::Openai,
        );
        assert!(
            tools.prompt_cost > plain.prompt_cost + 30_000_000,
            "{tools:?}"
        );
        // Each of n choices may generate max_tokens.
        let n = wc(&base(r#","n":3"#), &m, &e, ApiFamily::Openai);
        assert_eq!(n.reserve - plain.reserve, 2 * 10 * 2_000_000);
        // The larger of max_tokens and max_completion_tokens.
        let both = wc(
            &base(r#","max_completion_tokens":40"#),
            &m,
            &e,
            ApiFamily::Openai,
        );
        assert_eq!(both.max_completion, 40);
        // Images: IMAGE_TOKENS each, and the endpoint's per-image price.
        let img = ChatRequest::parse(br#"{"model":"a/m","max_tokens":10,"messages":[{"role":"user","content":[{"type":"text","text":"hi"},{"type":"image_url","image_url":{"url":"https://x/a.png"}},{"type":"image_url","image_url":{"url":"https://x/b.png"}}]}]}"#).unwrap();
        let mut priced = e.clone();
        priced.pricing.image = Some("0.001".into());
        let mut roomy = m.clone();
        roomy.context_length = 100_000;
        let a = wc(&img, &roomy, &priced, ApiFamily::Openai);
        assert!(
            a.prompt_cost >= 2 * crate::providers::IMAGE_TOKENS * 1_000_000 + 2 * 1_000_000_000
        );
        // A video the gateway cannot size: the whole context, or the endpoint's stated
        // maximum per video.
        let video = ChatRequest::parse(br#"{"model":"a/m","max_tokens":10,"messages":[{"role":"user","content":[{"type":"video_url","video_url":{"url":"https://youtu.be/x"}}]}]}"#).unwrap();
        let v = wc(&video, &roomy, &e, ApiFamily::Gemini);
        // (plus the endpoint's per-request price, $0.0001)
        assert_eq!(v.prompt_cost, 100_000 * 1_000_000 + 100_000_000);
        let mut stated = e.clone();
        stated.media_max_tokens = Some(crate::catalog::MediaMaxTokens {
            video: Some(5_000),
            ..Default::default()
        });
        let v = wc(&video, &roomy, &stated, ApiFamily::Gemini);
        assert!(v.prompt_cost >= 5_000 * 1_000_000 + 100_000_000);
        assert!(v.prompt_cost < 6_000 * 1_000_000);
        // Output at its dearest price: images for a model that draws, hidden reasoning.
        let mut drawer = roomy.clone();
        drawer.output_modalities = vec!["text".into(), "image".into()];
        let mut images_out = e.clone();
        images_out.pricing.image_output = Some("0.000024".into());
        images_out.pricing.internal_reasoning = Some("0.000004".into());
        let d = wc(&base(""), &drawer, &images_out, ApiFamily::Gemini);
        assert_eq!(d.completion_price, 24_000_000);
        let t = wc(&base(""), &roomy, &images_out, ApiFamily::Gemini);
        assert_eq!(
            t.completion_price, 4_000_000,
            "a text model: reasoning's price"
        );
        // Cache writes: the endpoint's write price, and 2× the prompt's for one hour.
        let mut cached = e.clone();
        cached.pricing.input_cache_write = Some("0.00000125".into());
        let per_token = |extra: &str| {
            let w = wc(&base(extra), &roomy, &cached, ApiFamily::Anthropic);
            let plain = wc(&base(""), &roomy, &cached, ApiFamily::Anthropic);
            (w.prompt_cost - 100_000_000) as f64 / (plain.prompt_cost - 100_000_000) as f64
        };
        assert_eq!(per_token(r#","cache_control":{"type":"ephemeral"}"#), 1.25);
        assert_eq!(
            per_token(r#","cache_control":{"type":"ephemeral","ttl":"1h"}"#),
            2.0
        );
        // Where the endpoint states no write price, a 1-hour write is still charged at
        // 2x the prompt price, so it is reserved at that too.
        let unstated = |extra: &str| wc(&base(extra), &roomy, &e, ApiFamily::Anthropic);
        let (hour, plain) = (
            unstated(r#","cache_control":{"type":"ephemeral","ttl":"1h"}"#),
            unstated(""),
        );
        assert_eq!(
            hour.prompt_cost - 100_000_000,
            2 * (plain.prompt_cost - 100_000_000)
        );
        // Anthropic's thinking bump: the translator may send more than max_tokens.
        let think = base(r#","reasoning":{"max_tokens":5000}"#);
        let (m2, e2) = endpoint(None);
        let mut big = m2.clone();
        big.context_length = 100_000;
        let a = wc(&think, &big, &e2, ApiFamily::Anthropic);
        let sent = crate::providers::anthropic::output_limits(&think, &big, &e2).max_tokens;
        assert_eq!(a.max_completion, sent);
        assert!(sent > 5000);
        // An ask above what the endpoint generates is reserved at what it can generate.
        let (m3, e3) = endpoint(Some(4));
        for family in [ApiFamily::Openai, ApiFamily::Anthropic, ApiFamily::Gemini] {
            let w = wc(&base(""), &m3, &e3, family);
            assert_eq!(w.max_completion, 4, "{family:?}");
        }
    }

    #[test]
    fn affordability() {
        let ask = Ask {
            reserve: 1_000,
            prompt_cost: 100,
            completion_price: 10,
            max_completion: 90,
        };
        let funds = Funds {
            credits: 2_000,
            usage: 500,
            reserved: 0,
        };
        assert!(check(&funds, &KeyBudget::default(), &ask).is_ok());
        let poor = Funds {
            credits: 2_000,
            usage: 500,
            reserved: 1_000,
        };
        let e = check(&poor, &KeyBudget::default(), &ask).unwrap_err();
        assert_eq!(e.status(), 402);
        assert!(
            e.to_string()
                .contains("You requested up to 90 tokens, but can only afford 40"),
            "{e}"
        );
        let capped = KeyBudget {
            limit: Some(1_200),
            spent: 300,
            reserved: 0,
        };
        assert_eq!(check(&funds, &capped, &ask).unwrap_err().status(), 403);
        let ok = KeyBudget {
            limit: Some(1_300),
            spent: 300,
            reserved: 0,
        };
        assert!(check(&funds, &ok, &ask).is_ok());
    }

    #[test]
    fn captures_stop_at_the_balance_and_the_key_limit() {
        let funds = Funds {
            credits: 1_000,
            usage: 200,
            reserved: 300,
        };
        let free = KeyBudget::default();
        // Within the hold.
        let c = capture(50, 100, &funds, &free);
        assert_eq!((c.from_hold, c.beyond, c.excess), (50, 0, 0));
        // 800 left, 200 of it held by others: 100 from the hold, 500 beyond it.
        let c = capture(5_000, 100, &funds, &free);
        assert_eq!((c.from_hold, c.beyond, c.excess), (100, 500, 4_400));
        assert!(!c.by_limit);
        // The key's limit: 150 of 400 spent, 100 held (this request's): 150 beyond.
        let key = KeyBudget {
            limit: Some(400),
            spent: 150,
            reserved: 100,
        };
        let c = capture(5_000, 100, &funds, &key);
        assert_eq!((c.from_hold, c.beyond, c.excess), (100, 150, 4_750));
        assert!(c.by_limit);
        // A limit lowered below what the key spent while the request ran: nothing more.
        let lowered = KeyBudget {
            limit: Some(100),
            spent: 120,
            reserved: 100,
        };
        assert_eq!(capture(80, 100, &funds, &lowered).excess, 80);
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(4096))]
        /// Conservation and both bounds, for any billed cost, hold, balance and limit.
        #[test]
        fn captures_conserve_money(
            cost in 0u64..=u64::MAX / 2,
            hold in 0u64..=1u64 << 50,
            others in 0u64..=1u64 << 50,
            credits in 0u64..=1u64 << 52,
            usage_share in 0u64..=1_000,
            limit in proptest::option::of(0u64..=1u64 << 51),
            spent_share in 0u64..=1_200,
            key_others in 0u64..=1u64 << 50,
            small in proptest::bool::ANY,
        ) {
            // Small numbers too, where every bound meets the others.
            let (cost, hold, others, credits, key_others, limit) = if small {
                (cost % 64, hold % 64, others % 64, credits % 256, key_others % 64, limit.map(|l| l % 256))
            } else {
                (cost, hold, others, credits, key_others, limit)
            };
            let usage = credits / 1_000 * usage_share.min(1_000);
            let funds = Funds {
                credits: u128::from(credits),
                usage: u128::from(usage),
                reserved: u128::from(hold) + u128::from(others),
            };
            let key = KeyBudget {
                limit,
                spent: limit.map_or(0, |l| l / 1_000 * spent_share),
                reserved: hold + key_others,
            };
            let c = capture(cost, hold, &funds, &key);
            // Conservation: what is charged plus what is recorded is what was billed.
            proptest::prop_assert_eq!(u128::from(c.charged()) + u128::from(c.excess), u128::from(cost));
            // Never more than the hold plus what no hold covers.
            let free = u128::from(credits).saturating_sub(u128::from(usage)).saturating_sub(funds.reserved);
            proptest::prop_assert!(c.from_hold <= hold);
            proptest::prop_assert!(u128::from(c.beyond) <= free);
            // The account never past its credits, the key never past its limit.
            proptest::prop_assert!(u128::from(usage) + u128::from(c.charged()) <= u128::from(credits).max(u128::from(usage)));
            if let Some(l) = limit {
                proptest::prop_assert!(key.spent + c.charged() <= l.max(key.spent));
                if key.spent >= l {
                    proptest::prop_assert_eq!(c.charged(), 0);
                }
            }
            // And all of it, when the hold covers it and the bounds do.
            let fits = usage + hold <= credits && limit.is_none_or(|l| key.spent + hold <= l);
            if cost <= hold && fits {
                proptest::prop_assert_eq!(c.excess, 0);
            }
        }
    }
}
