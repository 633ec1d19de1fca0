//! What is known of an endpoint's health, as routing weighs it and the listing shows it:
//! uptime, latency and throughput. `routing::health` measures these; the catalogue's
//! listing sorts and prints them.

use serde::{Deserialize, Serialize};

/// p50, p75, p90 and p99 of a distribution, as OpenRouter reports latency (ms) and
/// throughput (tokens/s).
#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq)]
pub struct Percentiles {
    pub p50: f64,
    pub p75: f64,
    pub p90: f64,
    pub p99: f64,
}

/// What routing and the listing need to know of an endpoint; sent from a health shard to
/// the isolates as a flat array ([`SummaryWire`]).
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq)]
#[serde(from = "SummaryWire", into = "SummaryWire")]
pub struct Summary {
    /// Share of successful attempts, 0 to 1 (one vote per account and minute); `None`
    /// without attempts.
    pub uptime_30m: Option<f64>,
    /// The same over the last 5 minutes.
    pub uptime_5m: Option<f64>,
    /// The same over the last day (by hour).
    pub uptime_1d: Option<f64>,
    pub latency_ms_30m: Option<f64>,
    /// Completion tokens per second of generation.
    pub throughput_30m: Option<f64>,
    /// Percentiles of time to first byte (ms) and of throughput (tokens/s).
    pub latency_pct_30m: Option<Percentiles>,
    pub throughput_pct_30m: Option<Percentiles>,
    /// Until when the endpoint counts as down (Unix ms).
    pub down_until_ms: Option<u64>,
    /// Tool calls of the last day (by hour) that passed and failed their check.
    pub tool_calls_1d: (u32, u32),
}

impl Summary {
    pub fn is_down(&self, now_ms: u64) -> bool {
        self.down_until_ms.is_some_and(|t| t > now_ms)
    }

    /// Share of the last day's checked tool calls that failed; `None` without any.
    pub fn tool_call_error_rate_1d(&self) -> Option<f64> {
        let (ok, failed) = self.tool_calls_1d;
        let n = f64::from(ok) + f64::from(failed);
        (n > 0.0).then(|| f64::from(failed) / n)
    }
}

type Figures = Option<[f64; 4]>;
/// A [`Summary`] as shards store and send it: a flat array, which costs the wasm far
/// less than named fields.
pub type SummaryWire = (
    Option<f64>,
    Option<f64>,
    Option<f64>,
    Option<f64>,
    Option<f64>,
    Figures,
    Figures,
    Option<u64>,
    (u32, u32),
);

impl From<Percentiles> for [f64; 4] {
    fn from(p: Percentiles) -> Self {
        [p.p50, p.p75, p.p90, p.p99]
    }
}

impl From<[f64; 4]> for Percentiles {
    fn from([p50, p75, p90, p99]: [f64; 4]) -> Self {
        Percentiles { p50, p75, p90, p99 }
    }
}

impl From<SummaryWire> for Summary {
    fn from((u30, u5, u1d, lat, tps, lat_pct, tps_pct, down, tools): SummaryWire) -> Self {
        Summary {
            uptime_30m: u30,
            uptime_5m: u5,
            uptime_1d: u1d,
            latency_ms_30m: lat,
            throughput_30m: tps,
            latency_pct_30m: lat_pct.map(Into::into),
            throughput_pct_30m: tps_pct.map(Into::into),
            down_until_ms: down,
            tool_calls_1d: tools,
        }
    }
}

impl From<Summary> for SummaryWire {
    fn from(s: Summary) -> Self {
        (
            s.uptime_30m,
            s.uptime_5m,
            s.uptime_1d,
            s.latency_ms_30m,
            s.throughput_30m,
            s.latency_pct_30m.map(Into::into),
            s.throughput_pct_30m.map(Into::into),
            s.down_until_ms,
            s.tool_calls_1d,
        )
    }
}
