//! Ordering by tool-call quality: the share of an endpoint's checked tool calls of the
//! last day that passed ([`crate::api::tool_check`]), judged by its Wilson score
//! interval at 95 %, so that a few lucky calls do not outrank many good ones.
//!
//! - `provider.sort: "exacto"` (or `"tool_quality"`) and the `:exacto` variant sort by
//!   the interval's lower bound, best first (price breaks ties; an endpoint without
//!   checked calls has a bound of 0).
//! - A request with tools and neither `provider.order` nor a sort keeps its usual
//!   order, except that endpoints far worse than the model's median go last: among the
//!   model's endpoints with at least [`MIN_CALLS`] checked calls (two or more of them),
//!   one whose interval's upper bound is more than [`MARGIN`] below the median success
//!   rate.

use super::{Choice, RouteContext};

/// z for a two-sided 95 % interval.
const Z: f64 = 1.96;
/// Calls an endpoint needs in the day before the median rule judges it.
pub const MIN_CALLS: u32 = 5;
/// How far below the median an endpoint's upper bound must be to count as far worse.
pub const MARGIN: f64 = 0.1;

/// The Wilson score interval at 95 % of `ok` successes out of `ok + failed`; (0, 1)
/// without trials.
pub fn wilson(ok: u32, failed: u32) -> (f64, f64) {
    let n = f64::from(ok) + f64::from(failed);
    if n == 0.0 {
        return (0.0, 1.0);
    }
    let p = f64::from(ok) / n;
    let z2 = Z * Z;
    let denom = 1.0 + z2 / n;
    let centre = (p + z2 / (2.0 * n)) / denom;
    let half = Z * (p * (1.0 - p) / n + z2 / (4.0 * n * n)).sqrt() / denom;
    ((centre - half).max(0.0), (centre + half).min(1.0))
}

fn calls(c: &Choice, ctx: &RouteContext) -> (u32, u32) {
    ctx.health.get(&c.key()).map_or((0, 0), |s| s.tool_calls_1d)
}

/// Best lower bound first; ties keep their order.
pub fn sort(eps: &mut [Choice], ctx: &RouteContext) {
    eps.sort_by(|a, b| {
        let (x, y) = (calls(a, ctx), calls(b, ctx));
        wilson(y.0, y.1).0.total_cmp(&wilson(x.0, x.1).0)
    });
}

/// The median of `v` (sorted here); `None` when empty.
fn median(v: &mut [f64]) -> Option<f64> {
    v.sort_by(f64::total_cmp);
    let mid = v.len() / 2;
    match v.len() {
        0 => None,
        n if n % 2 == 1 => v.get(mid).copied(),
        _ => Some((v.get(mid.wrapping_sub(1))? + v.get(mid)?) / 2.0),
    }
}

/// Endpoints far worse than the median (see the module doc) go last, each part in the
/// order it had.
pub fn worse_last<'a>(eps: Vec<Choice<'a>>, ctx: &RouteContext) -> Vec<Choice<'a>> {
    let judged = |c: &Choice| {
        let (ok, failed) = calls(c, ctx);
        (ok.saturating_add(failed) >= MIN_CALLS).then_some((ok, failed))
    };
    let mut rates: Vec<f64> = eps
        .iter()
        .filter_map(judged)
        .map(|(ok, failed)| f64::from(ok) / (f64::from(ok) + f64::from(failed)))
        .collect();
    if rates.len() < 2 {
        return eps;
    }
    let Some(m) = median(&mut rates) else {
        return eps;
    };
    let (mut fine, worse): (Vec<_>, Vec<_>) = eps
        .into_iter()
        .partition(|c| judged(c).is_none_or(|(ok, failed)| wilson(ok, failed).1 >= m - MARGIN));
    fine.extend(worse);
    fine
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wilson_bounds() {
        let (lo, hi) = wilson(4, 4);
        assert!(
            (lo - 0.2152).abs() < 1e-3 && (hi - 0.7848).abs() < 1e-3,
            "{lo} {hi}"
        );
        let (lo, hi) = wilson(10, 0);
        assert!((lo - 0.7225).abs() < 1e-3 && hi == 1.0, "{lo} {hi}");
        assert_eq!(wilson(0, 0), (0.0, 1.0));
        // Many good calls outrank a few perfect ones.
        assert!(wilson(95, 5).0 > wilson(3, 0).0);
    }

    use crate::catalog::Catalog;
    use crate::routing::health::Summary;
    use serde_json::json;
    use std::collections::HashMap;

    /// One model at four providers, cheapest first: a, b, c, d.
    fn cat() -> Catalog {
        let p = |slug: &str| json!({"slug": slug, "name": slug, "api": "openai", "base_url": "http://x"});
        let e = |provider: &str, prompt: &str| {
            json!({"provider": provider, "upstream_model": "m",
            "pricing": {"prompt": prompt, "completion": prompt}})
        };
        serde_json::from_value(json!({
            "providers": [p("a"), p("b"), p("c"), p("d")],
            "models": [{"id": "x/m", "name": "M", "context_length": 1000,
                "endpoints": [e("a", "0.000001"), e("b", "0.000002"), e("c", "0.000003"), e("d", "0.000004")]}]
        }))
        .unwrap()
    }

    fn plan(body: serde_json::Value, tools: &[(&str, u32, u32)]) -> Vec<String> {
        let c = cat();
        let mut req = json!({"model": "x/m", "messages": [{"role": "user", "content": "hi"}]});
        req.as_object_mut()
            .unwrap()
            .extend(body.as_object().unwrap().clone());
        let req: crate::api::ChatRequest = serde_json::from_value(req).unwrap();
        let health: HashMap<String, Summary> = tools
            .iter()
            .map(|(p, ok, failed)| {
                let s = Summary {
                    tool_calls_1d: (*ok, *failed),
                    ..Default::default()
                };
                (format!("{p}/m"), s)
            })
            .collect();
        let ctx = RouteContext::quiet(&health, true);
        // Always the cheapest of what is left: the price order a, b, c, d.
        let mut rnd = || 0.0;
        let got = crate::routing::plan(&c, &req, &ctx, &mut rnd).unwrap();
        got.iter()
            .map(|c| format!("{}@{}", c.id, c.endpoint.provider))
            .collect()
    }

    const TOOLS: &str = r#"[{"type": "function", "function": {"name": "f"}}]"#;

    #[test]
    fn exacto_and_sort_order_by_the_lower_bound() {
        // a: 4 of 8; b: none; c: 3 of 3; d: 95 of 100.
        let h = [("a", 4, 4), ("c", 3, 0), ("d", 95, 5)];
        assert_eq!(
            plan(json!({"model": "x/m:exacto"}), &h),
            [
                "x/m:exacto@d",
                "x/m:exacto@c",
                "x/m:exacto@a",
                "x/m:exacto@b"
            ]
        );
        assert_eq!(
            plan(json!({"provider": {"sort": "tool_quality"}}), &h),
            ["x/m@d", "x/m@c", "x/m@a", "x/m@b"]
        );
        // No figures anywhere: price order.
        assert_eq!(
            plan(json!({"provider": {"sort": "exacto"}}), &[]),
            ["x/m@a", "x/m@b", "x/m@c", "x/m@d"]
        );
    }

    #[test]
    fn with_tools_far_worse_than_the_median_goes_last() {
        let tools: serde_json::Value = serde_json::from_str(TOOLS).unwrap();
        // a fails half its calls; c and d pass theirs; b has too few to judge.
        let h = [("a", 4, 4), ("b", 0, 2), ("c", 6, 0), ("d", 10, 0)];
        assert_eq!(
            plan(json!({"tools": tools}), &h),
            ["x/m@b", "x/m@c", "x/m@d", "x/m@a"]
        );
        // Without tools, or with an order of the caller's, the price order stands.
        assert_eq!(plan(json!({}), &h), ["x/m@a", "x/m@b", "x/m@c", "x/m@d"]);
        let ordered = json!({"tools": tools, "provider": {"order": ["a", "c"]}});
        assert_eq!(plan(ordered, &h), ["x/m@a", "x/m@c", "x/m@b", "x/m@d"]);
        // Within the margin of the median (0.9 of 1.0 and 0.8) it stays.
        let close = [("a", 9, 1), ("c", 10, 0), ("d", 8, 2)];
        assert_eq!(
            plan(json!({"tools": tools}), &close),
            ["x/m@a", "x/m@b", "x/m@c", "x/m@d"]
        );
        // One judged endpoint has no median to be judged by.
        assert_eq!(
            plan(json!({"tools": tools}), &[("a", 0, 20)]),
            ["x/m@a", "x/m@b", "x/m@c", "x/m@d"]
        );
    }

    #[test]
    fn medians() {
        assert_eq!(median(&mut []), None);
        assert_eq!(median(&mut [0.5, 1.0, 0.9]), Some(0.9));
        assert_eq!(median(&mut [1.0, 0.5]), Some(0.75));
    }
}
