//! Endpoint health: outcomes in one-minute buckets over the last 30 minutes, summarized
//! as uptime, latency and throughput for routing and for `/endpoints`. An endpoint
//! that just failed is "down" for a while (30 s, doubling per consecutive failure, at
//! most 5 min): routing tries it last.

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

const WINDOW_MINUTES: u64 = 30;
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
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct EndpointStats {
    buckets: VecDeque<Bucket>,
    consecutive_failures: u32,
    last_failure_ms: Option<u64>,
}

/// What routing and the listing need to know of an endpoint.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq)]
pub struct Summary {
    /// Share of successful attempts, 0 to 1; `None` without attempts.
    pub uptime_30m: Option<f64>,
    pub latency_ms_30m: Option<f64>,
    /// Completion tokens per second of generation.
    pub throughput_30m: Option<f64>,
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
                if o.tokens > 0 && o.generation_ms > 0 {
                    b.tokens = b.tokens.saturating_add(o.tokens);
                    b.generation_ms = b.generation_ms.saturating_add(o.generation_ms);
                }
            } else {
                b.failed = b.failed.saturating_add(1);
            }
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
        Summary {
            uptime_30m: (attempts > 0).then(|| ok as f64 / attempts as f64),
            latency_ms_30m: (n > 0).then(|| lat as f64 / n as f64),
            throughput_30m: (gen_ms > 0).then(|| tokens as f64 * 1000.0 / gen_ms as f64),
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
        assert_eq!(s.buckets.len(), 1);
        assert_eq!(EndpointStats::default().summary(0), Summary::default());
    }
}
