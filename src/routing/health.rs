//! Endpoint health: outcomes in one-minute buckets over the last 30 minutes, summarized
//! as uptime (30 and 5 minutes, and a day by hour), latency and throughput (means, and percentiles from
//! per-minute histograms with bins 1/8 of a doubling wide, so within about 5% of the
//! true value) for routing and for `/endpoints`. An endpoint
//! that just failed is "down" for a while (30 s, doubling per consecutive failure, at
//! most 5 min): routing tries it last.

use std::collections::{BTreeMap, VecDeque};

use serde::{Deserialize, Serialize};

const WINDOW_MINUTES: u64 = 30;
/// Hours of the day-long uptime.
const HOURS: u64 = 24;
const BASE_PENALTY_MS: u64 = 30_000;
const MAX_PENALTY_MS: u64 = 300_000;

/// What happened at one upstream attempt.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq)]
pub struct Outcome {
    pub ok: bool,
    /// Time to the upstream's response headers (first byte).
    pub latency_ms: u64,
    /// Completion tokens produced, and the time it took after the first byte.
    #[serde(default)]
    pub tokens: u64,
    #[serde(default)]
    pub generation_ms: u64,
    pub at_ms: u64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
struct Bucket {
    minute: u64,
    ok: u32,
    failed: u32,
    latency_sum_ms: u64,
    latency_n: u32,
    tokens: u64,
    generation_ms: u64,
    /// Latencies (ms) and throughputs (tokens/s) by histogram bin (see [`bin`]); sparse.
    #[serde(default)]
    latency_bins: BTreeMap<u16, u32>,
    #[serde(default)]
    throughput_bins: BTreeMap<u16, u32>,
}

/// Bins per doubling of a value: a bin spans 2^(1/8), about 9%; its midpoint is within
/// about 4.5% of anything in it.
const BINS_PER_DOUBLING: f64 = 8.0;

/// The histogram bin of `v` (> 0): bin 0 holds everything up to 1.
fn bin(v: f64) -> u16 {
    // NaN and anything up to 1 go to bin 0.
    if v.is_nan() || v <= 1.0 {
        return 0;
    }
    let b = (v.log2() * BINS_PER_DOUBLING).ceil();
    if b >= f64::from(u16::MAX) {
        u16::MAX
    } else {
        b as u16
    }
}

/// The value a bin stands for: the geometric middle of its bounds.
fn bin_value(b: u16) -> f64 {
    if b == 0 {
        return 1.0;
    }
    ((f64::from(b) - 0.5) / BINS_PER_DOUBLING).exp2()
}

/// p50, p75, p90 and p99 of a distribution, as OpenRouter reports latency (ms) and
/// throughput (tokens/s).
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq)]
pub struct Percentiles {
    pub p50: f64,
    pub p75: f64,
    pub p90: f64,
    pub p99: f64,
}

impl Percentiles {
    /// From histogram counts by bin; `None` when empty.
    fn of(bins: &BTreeMap<u16, u64>) -> Option<Percentiles> {
        let total: u64 = bins.values().fold(0, |a, n| a.saturating_add(*n));
        if total == 0 {
            return None;
        }
        let at = |q: f64| {
            // The smallest value with at least q of the samples at or below it.
            let want = ((total as f64) * q).ceil().max(1.0) as u64;
            let mut seen = 0u64;
            for (b, n) in bins {
                seen = seen.saturating_add(*n);
                if seen >= want {
                    return bin_value(*b);
                }
            }
            bins.keys().next_back().map_or(0.0, |b| bin_value(*b))
        };
        Some(Percentiles {
            p50: at(0.50),
            p75: at(0.75),
            p90: at(0.90),
            p99: at(0.99),
        })
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct EndpointStats {
    buckets: VecDeque<Bucket>,
    /// Successes and failures by hour over the last day: (hour, ok, failed).
    #[serde(default)]
    hours: VecDeque<(u64, u32, u32)>,
    consecutive_failures: u32,
    last_failure_ms: Option<u64>,
}

/// What routing and the listing need to know of an endpoint.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq)]
pub struct Summary {
    /// Share of successful attempts, 0 to 1; `None` without attempts.
    pub uptime_30m: Option<f64>,
    /// The same over the last 5 minutes.
    #[serde(default)]
    pub uptime_5m: Option<f64>,
    /// The same over the last day (by hour).
    #[serde(default)]
    pub uptime_1d: Option<f64>,
    pub latency_ms_30m: Option<f64>,
    /// Completion tokens per second of generation.
    pub throughput_30m: Option<f64>,
    /// Percentiles of time to first byte (ms) and of throughput (tokens/s).
    #[serde(default)]
    pub latency_pct_30m: Option<Percentiles>,
    #[serde(default)]
    pub throughput_pct_30m: Option<Percentiles>,
    /// Until when the endpoint counts as down (Unix ms).
    pub down_until_ms: Option<u64>,
}

impl Summary {
    pub fn is_down(&self, now_ms: u64) -> bool {
        self.down_until_ms.is_some_and(|t| t > now_ms)
    }
}

impl EndpointStats {
    pub fn record(&mut self, o: &Outcome) {
        let minute = o.at_ms / 60_000;
        self.prune(minute);
        if self.buckets.back().is_none_or(|b| b.minute != minute) {
            self.buckets.push_back(Bucket {
                minute,
                ..Default::default()
            });
        }
        if let Some(b) = self.buckets.back_mut() {
            if o.ok {
                b.ok = b.ok.saturating_add(1);
                b.latency_sum_ms = b.latency_sum_ms.saturating_add(o.latency_ms);
                b.latency_n = b.latency_n.saturating_add(1);
                let n = b.latency_bins.entry(bin(o.latency_ms as f64)).or_default();
                *n = n.saturating_add(1);
                if o.tokens > 0 && o.generation_ms > 0 {
                    b.tokens = b.tokens.saturating_add(o.tokens);
                    b.generation_ms = b.generation_ms.saturating_add(o.generation_ms);
                    let tps = o.tokens as f64 * 1000.0 / o.generation_ms as f64;
                    let n = b.throughput_bins.entry(bin(tps)).or_default();
                    *n = n.saturating_add(1);
                }
            } else {
                b.failed = b.failed.saturating_add(1);
            }
        }
        let hour = o.at_ms / 3_600_000;
        while self
            .hours
            .front()
            .is_some_and(|(h, ..)| h.saturating_add(HOURS) <= hour)
        {
            self.hours.pop_front();
        }
        if self.hours.back().is_none_or(|(h, ..)| *h != hour) {
            self.hours.push_back((hour, 0, 0));
        }
        if let Some((_, ok, failed)) = self.hours.back_mut() {
            let n = if o.ok { ok } else { failed };
            *n = n.saturating_add(1);
        }
        if o.ok {
            self.consecutive_failures = 0;
            self.last_failure_ms = None;
        } else {
            self.consecutive_failures = self.consecutive_failures.saturating_add(1);
            self.last_failure_ms = Some(o.at_ms);
        }
    }

    fn prune(&mut self, now_minute: u64) {
        while self
            .buckets
            .front()
            .is_some_and(|b| b.minute.saturating_add(WINDOW_MINUTES) <= now_minute)
        {
            self.buckets.pop_front();
        }
    }

    pub fn summary(&self, now_ms: u64) -> Summary {
        let since = (now_ms / 60_000).saturating_sub(WINDOW_MINUTES - 1);
        let live = || self.buckets.iter().filter(|b| b.minute >= since);
        let sum = |f: fn(&Bucket) -> u64| live().fold(0u64, |acc, b| acc.saturating_add(f(b)));
        let (ok, failed) = (sum(|b| u64::from(b.ok)), sum(|b| u64::from(b.failed)));
        let (lat, n) = (sum(|b| b.latency_sum_ms), sum(|b| u64::from(b.latency_n)));
        let (tokens, gen_ms) = (sum(|b| b.tokens), sum(|b| b.generation_ms));
        let penalty = self.last_failure_ms.map(|at| {
            let doublings = self.consecutive_failures.saturating_sub(1).min(10);
            at.saturating_add((BASE_PENALTY_MS << doublings).min(MAX_PENALTY_MS))
        });
        let attempts = ok.saturating_add(failed);
        let merged = |f: fn(&Bucket) -> &BTreeMap<u16, u32>| {
            let mut all: BTreeMap<u16, u64> = BTreeMap::new();
            for b in live() {
                for (bin, n) in f(b) {
                    let c = all.entry(*bin).or_default();
                    *c = c.saturating_add(u64::from(*n));
                }
            }
            all
        };
        let recent = (now_ms / 60_000).saturating_sub(4);
        let (ok5, failed5) =
            live()
                .filter(|b| b.minute >= recent)
                .fold((0u64, 0u64), |(o, f), b| {
                    (
                        o.saturating_add(u64::from(b.ok)),
                        f.saturating_add(u64::from(b.failed)),
                    )
                });
        let attempts5 = ok5.saturating_add(failed5);
        let day_from = (now_ms / 3_600_000).saturating_sub(HOURS - 1);
        let (ok_d, failed_d) = self.hours.iter().filter(|(h, ..)| *h >= day_from).fold(
            (0u64, 0u64),
            |(o, f), (_, ok, failed)| {
                (
                    o.saturating_add(u64::from(*ok)),
                    f.saturating_add(u64::from(*failed)),
                )
            },
        );
        let attempts_d = ok_d.saturating_add(failed_d);
        Summary {
            uptime_30m: (attempts > 0).then(|| ok as f64 / attempts as f64),
            uptime_5m: (attempts5 > 0).then(|| ok5 as f64 / attempts5 as f64),
            uptime_1d: (attempts_d > 0).then(|| ok_d as f64 / attempts_d as f64),
            latency_ms_30m: (n > 0).then(|| lat as f64 / n as f64),
            throughput_30m: (gen_ms > 0).then(|| tokens as f64 * 1000.0 / gen_ms as f64),
            latency_pct_30m: Percentiles::of(&merged(|b| &b.latency_bins)),
            throughput_pct_30m: Percentiles::of(&merged(|b| &b.throughput_bins)),
            down_until_ms: penalty,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn o(ok: bool, at_ms: u64) -> Outcome {
        Outcome {
            ok,
            latency_ms: 200,
            tokens: 100,
            generation_ms: 2000,
            at_ms,
        }
    }

    #[test]
    fn uptime_latency_throughput() {
        let mut s = EndpointStats::default();
        for i in 0..3 {
            s.record(&o(true, i * 1000));
        }
        s.record(&o(false, 5000));
        let sum = s.summary(6000);
        assert_eq!(sum.uptime_30m, Some(0.75));
        assert_eq!(sum.latency_ms_30m, Some(200.0));
        assert_eq!(sum.throughput_30m, Some(50.0));
        assert!(sum.is_down(6000));
        assert!(!sum.is_down(5000 + 30_000));
    }

    #[test]
    fn percentiles_within_a_bin() {
        let mut s = EndpointStats::default();
        // Latencies 1..=100 ms, one each, spread over two minutes.
        for ms in 1..=100u64 {
            s.record(&Outcome {
                ok: true,
                latency_ms: ms,
                tokens: ms,
                generation_ms: 1000,
                at_ms: ms * 1000,
            });
        }
        let p = s.summary(100_000).latency_pct_30m.unwrap();
        for (got, want) in [(p.p50, 50.0), (p.p75, 75.0), (p.p90, 90.0), (p.p99, 99.0)] {
            assert!((got / want - 1.0).abs() < 0.05, "{got} vs {want}");
        }
        let t = s.summary(100_000).throughput_pct_30m.unwrap();
        assert!((t.p50 / 50.0 - 1.0).abs() < 0.05, "{t:?}");
        assert_eq!(EndpointStats::default().summary(0).latency_pct_30m, None);
        assert_eq!(bin(0.0), 0);
        assert_eq!(bin(f64::NAN), 0);
        assert_eq!(bin(f64::INFINITY), u16::MAX);
    }

    #[test]
    fn uptime_of_the_last_five_minutes() {
        let mut s = EndpointStats::default();
        s.record(&o(false, 0));
        s.record(&o(true, 10 * 60_000));
        let sum = s.summary(10 * 60_000);
        assert_eq!(sum.uptime_30m, Some(0.5));
        assert_eq!(sum.uptime_5m, Some(1.0));
    }

    #[test]
    fn penalty_doubles_and_success_clears_it() {
        let mut s = EndpointStats::default();
        s.record(&o(false, 0));
        s.record(&o(false, 1000));
        s.record(&o(false, 2000));
        assert_eq!(s.summary(2000).down_until_ms, Some(2000 + 120_000));
        s.record(&o(true, 3000));
        assert!(!s.summary(3000).is_down(3000));
    }

    #[test]
    fn old_minutes_fall_out_of_the_window() {
        let mut s = EndpointStats::default();
        s.record(&o(false, 0));
        s.record(&o(true, 31 * 60_000));
        assert_eq!(s.summary(31 * 60_000).uptime_30m, Some(1.0));
        // The day keeps what the half hour forgot, for 24 hours.
        assert_eq!(s.summary(31 * 60_000).uptime_1d, Some(0.5));
        s.record(&o(true, 25 * 3_600_000));
        assert_eq!(s.summary(25 * 3_600_000).uptime_1d, Some(1.0));
        assert_eq!(s.buckets.len(), 1);
        assert_eq!(EndpointStats::default().summary(0), Summary::default());
    }
}
