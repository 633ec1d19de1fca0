//! Gemini's `thinkingConfig`, per model as Google documents it: Gemini 2.5 takes a
//! token budget in a per-model range (2.5 Pro 128–32,768, 2.5 Flash 0–24,576,
//! 2.5 Flash-Lite 512–24,576), Gemini 3 takes a `thinkingLevel` (Pro: low and high;
//! Flash: minimal, low, medium and high) and keeps the budget only for compatibility.

use serde::Serialize;

use crate::api::Effort;
use crate::providers::Reasoning;

#[derive(Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct ThinkingConfig {
    include_thoughts: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    thinking_budget: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    thinking_level: Option<&'static str>,
}

/// The thinking settings of `r` for the Gemini model `model`, its budget a share of
/// `max_output` when no budget was asked for.
pub(super) fn thinking_config(model: &str, r: &Reasoning, max_output: u64) -> ThinkingConfig {
    let name = model.rsplit('/').next().unwrap_or(model);
    let level = if name.starts_with("gemini-3") && r.max_tokens.is_none() {
        Some(level(name.contains("-pro"), r.effort))
    } else {
        None
    };
    let budget = level.is_none().then(|| {
        budget_range(name).map_or(r.budget(max_output), |(lo, hi)| {
            r.budget(max_output).clamp(lo, hi)
        })
    });
    ThinkingConfig {
        include_thoughts: !r.exclude,
        thinking_budget: budget,
        thinking_level: level,
    }
}

/// The documented budget range of a Gemini 2.5 model, if it is one.
fn budget_range(name: &str) -> Option<(u64, u64)> {
    if name.starts_with("gemini-2.5-pro") {
        Some((128, 32_768))
    } else if name.starts_with("gemini-2.5-flash-lite") {
        Some((512, 24_576))
    } else if name.starts_with("gemini-2.5-flash") {
        Some((0, 24_576))
    } else {
        None
    }
}

/// The Gemini 3 thinking level of an effort: Pro knows only low and high.
fn level(pro: bool, effort: Option<Effort>) -> &'static str {
    match effort {
        Some(Effort::Minimal | Effort::Low) if pro => "low",
        Some(Effort::Minimal) => "minimal",
        Some(Effort::Low) => "low",
        Some(Effort::Medium) | None if !pro => "medium",
        _ => "high",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(effort: Option<Effort>, max_tokens: Option<u64>) -> Reasoning {
        Reasoning {
            effort,
            max_tokens,
            exclude: false,
        }
    }

    fn json(model: &str, r: &Reasoning, max_output: u64) -> String {
        serde_json::to_string(&thinking_config(model, r, max_output)).unwrap()
    }

    #[test]
    fn gemini_2_5_budgets_stay_in_their_documented_ranges() {
        let medium = with(Some(Effort::Medium), None);
        // Half of 65,535 was 32,767, past 2.5 Flash's 24,576 (issue 21).
        assert_eq!(
            json("gemini-2.5-flash", &medium, 65_535),
            r#"{"includeThoughts":true,"thinkingBudget":24576}"#
        );
        assert_eq!(
            json("models/gemini-2.5-flash-lite", &medium, 65_535),
            r#"{"includeThoughts":true,"thinkingBudget":24576}"#
        );
        let big = with(None, Some(100_000));
        assert_eq!(
            json("gemini-2.5-pro", &big, 65_535),
            r#"{"includeThoughts":true,"thinkingBudget":32768}"#
        );
        let small = with(None, Some(10));
        assert!(json("gemini-2.5-pro", &small, 8192).ends_with(r#""thinkingBudget":128}"#));
        assert!(json("gemini-2.5-flash-lite", &small, 8192).ends_with(r#""thinkingBudget":512}"#));
        assert!(json("gemini-2.5-flash", &small, 8192).ends_with(r#""thinkingBudget":10}"#));
        // Within range, as before; an unknown model keeps the share.
        assert!(json("gemini-2.5-flash", &medium, 8192).ends_with(r#""thinkingBudget":4096}"#));
        assert!(json("gemini-9-x", &medium, 65_535).ends_with(r#""thinkingBudget":32767}"#));
    }

    #[test]
    fn gemini_3_takes_a_level_for_an_effort() {
        let e = |e| with(Some(e), None);
        let level = |model, r: &Reasoning| thinking_config(model, r, 65_535).thinking_level;
        assert_eq!(
            level("gemini-3-pro-preview", &e(Effort::Minimal)),
            Some("low")
        );
        assert_eq!(
            level("gemini-3-pro-preview", &e(Effort::Medium)),
            Some("high")
        );
        assert_eq!(
            level("gemini-3-flash-preview", &e(Effort::Minimal)),
            Some("minimal")
        );
        assert_eq!(
            level("gemini-3-flash-preview", &e(Effort::Medium)),
            Some("medium")
        );
        assert_eq!(
            level("gemini-3-flash-preview", &e(Effort::Xhigh)),
            Some("high")
        );
        assert_eq!(
            json("gemini-3-flash-preview", &e(Effort::Low), 65_535),
            r#"{"includeThoughts":true,"thinkingLevel":"low"}"#
        );
        // An explicit budget is still sent as one (Gemini 3 accepts it), never both.
        assert_eq!(
            json("gemini-3-pro-preview", &with(None, Some(2048)), 65_535),
            r#"{"includeThoughts":true,"thinkingBudget":2048}"#
        );
    }
}
