//! Endpoint health: outcomes in one-minute buckets over the last 30 minutes, summarized
//! as uptime (30 and 5 minutes, and a day by hour), latency and throughput (means, and percentiles from
//! per-minute histograms with bins 1/8 of a doubling wide, so within about 5% of the
//! true value) for routing and for `/endpoints`. An endpoint
//! that just failed is "down" for a while (30 s, doubling per consecutive failure, at
//! most 5 min): routing tries it last.
//!
//! Statistics are sharded by provider ([`shard_of`]): each shard is one object fed by
//! the isolates' batches ([`Batch`], [`apply`]). One tenant weighs at most as its share:
//! per endpoint and minute each account (by a pseudonymous [`account_tag`], reduced to
//! one of [`ACCOUNT_SLOTS`]) holds one vote in uptime, split over its outcomes, adds at
//! most [`SAMPLES_PER_ACCOUNT`] latency and throughput samples, and a failure marks the
//! endpoint down only while the accounts failing since the last success are at least
//! half of those seen in the last five minutes.

use std::collections::{BTreeMap, HashMap, VecDeque};

use serde::{Deserialize, Serialize};

use crate::api::ChatRequest;
use crate::catalog::{Catalog, Model};

mod tools;
mod wire;

pub use crate::catalog::figures::{Percentiles, Summary};

const WINDOW_MINUTES: u64 = 30;
/// Hours of the day-long uptime.
const HOURS: u64 = 24;
const BASE_PENALTY_MS: u64 = 30_000;
const MAX_PENALTY_MS: u64 = 300_000;
/// Accounts are told apart per endpoint and minute by this many slots; accounts that
/// share a slot share its one vote (so past 64 accounts a flood weighs at most 1/64).
pub const ACCOUNT_SLOTS: u32 = 64;
/// Latency and throughput samples one account adds per endpoint and minute, at most.
pub const SAMPLES_PER_ACCOUNT: u32 = 4;
/// Reports one isolate sends one shard per flush, at most; the object takes no more.
pub const MAX_BATCH: usize = 64;
/// Of those, at most this many from one account.
pub const MAX_PER_ACCOUNT: usize = 8;

/// What happened at one upstream attempt.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Outcome {
    pub ok: bool,
    /// Time to the upstream's response headers (first byte).
    pub latency_ms: u64,
    /// Completion tokens produced, and the time it took after the first byte.
    pub tokens: u64,
    pub generation_ms: u64,
    pub at_ms: u64,
    /// The reply's tool calls that passed and failed their check
    /// ([`crate::api::tool_check`]).
    pub tool_ok: u32,
    pub tool_failed: u32,
}

/// One attempt's outcome as an isolate reports it to the endpoint's shard (sent as a
/// flat array, see `wire`).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(from = "wire::ReportWire")]
pub struct Report {
    pub key: String,
    /// The account's [`account_tag`], never its ID or a key.
    pub account: u32,
    pub outcome: Outcome,
}

/// A pseudonym of an account for health reports: a 32-bit FNV-1a hash of its ID,
/// which names the account without being its ID (many IDs share each tag) and is only
/// kept reduced to a slot.
pub fn account_tag(account_id: &str) -> u32 {
    account_id.bytes().fold(0x811c_9dc5, |h: u32, b| {
        (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
    })
}

/// A slot's bit in a set of slots.
fn bit(slot: u32) -> u64 {
    1u64.checked_shl(slot).unwrap_or(0)
}

fn slot(account: u32) -> u32 {
    // Both halves of the hash pick the slot.
    (account ^ (account >> 16)) % ACCOUNT_SLOTS
}

/// The shard (object name) that holds an endpoint's statistics: its provider, the part
/// of [`crate::catalog::endpoint_key`] before the first `/`.
pub fn shard_of(key: &str) -> &str {
    key.split('/').next().unwrap_or(key)
}

/// The health keys of every endpoint that could serve `req`: those of each requested
/// model (`model`, then `models`, with their variants resolved; a key may repeat).
/// Routing reads only their shards.
pub fn keys_for(cat: &Catalog, req: &ChatRequest) -> Vec<String> {
    let mut keys = Vec::new();
    for id in req.model_candidates() {
        if let Some((m, _)) = super::resolve(cat, &id) {
            push_keys(m, &mut keys);
        }
    }
    keys
}

/// Adds the health keys of `m`'s endpoints to `keys`.
pub fn push_keys(m: &Model, keys: &mut Vec<String>) {
    for e in &m.endpoints {
        keys.push(crate::catalog::endpoint_key(e));
    }
}

/// One isolate's reports for one shard in one flush window.
#[derive(Debug, Default)]
pub struct Batch {
    pub reports: Vec<Report>,
}

impl Batch {
    /// Adds `r` unless the batch is full or holds [`MAX_PER_ACCOUNT`] of its account
    /// already (then it is left out: a sample of a busy isolate's outcomes goes, and
    /// one account cannot crowd the others out of it).
    pub fn push(&mut self, r: Report) -> bool {
        let mine = self
            .reports
            .iter()
            .filter(|x| x.account == r.account)
            .count();
        if self.reports.len() >= MAX_BATCH || mine >= MAX_PER_ACCOUNT {
            return false;
        }
        self.reports.push(r);
        true
    }
}

/// Applies one batch to a shard's statistics (at most [`MAX_BATCH`] reports); returns
/// the keys that changed, each once.
pub fn apply(stats: &mut HashMap<String, EndpointStats>, reports: Vec<Report>) -> Vec<String> {
    let mut changed: Vec<String> = Vec::new();
    for r in reports.into_iter().take(MAX_BATCH) {
        stats
            .entry(r.key.clone())
            .or_default()
            .record(r.account, &r.outcome);
        if !changed.contains(&r.key) {
            changed.push(r.key);
        }
    }
    changed
}

/// One account slot's outcomes at one endpoint in one minute (stored as a tuple).
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq)]
#[serde(from = "wire::TallyWire", into = "wire::TallyWire")]
struct Tally {
    slot: u32,
    ok: u32,
    failed: u32,
    /// Time to first byte, summed over the successes.
    latency_ms: u64,
    /// Completion tokens and generation time of the successes that produced tokens.
    tokens: u64,
    generation_ms: u64,
}

/// One minute of an endpoint (stored as a tuple, see `wire`).
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(from = "wire::BucketWire")]
struct Bucket {
    minute: u64,
    /// One per account slot seen.
    accounts: Vec<Tally>,
    /// Latencies (ms) and throughputs (tokens/s) by histogram bin (see [`bin`]); sparse,
    /// at most [`SAMPLES_PER_ACCOUNT`] from each account slot.
    latency_bins: Bins,
    throughput_bins: Bins,
}

type Bins = BTreeMap<u16, u32>;
impl Bucket {
    fn add(&mut self, slot: u32, o: &Outcome) {
        let t = match self.accounts.iter().position(|t| t.slot == slot) {
            Some(i) => self.accounts.get_mut(i),
            None => {
                self.accounts.push(Tally {
                    slot,
                    ..Default::default()
                });
                self.accounts.last_mut()
            }
        };
        let Some(t) = t else {
            return;
        };
        let sample = o.ok && t.ok < SAMPLES_PER_ACCOUNT;
        let generated = o.tokens > 0 && o.generation_ms > 0;
        if o.ok {
            t.ok = t.ok.saturating_add(1);
            t.latency_ms = t.latency_ms.saturating_add(o.latency_ms);
            if generated {
                t.tokens = t.tokens.saturating_add(o.tokens);
                t.generation_ms = t.generation_ms.saturating_add(o.generation_ms);
            }
        } else {
            t.failed = t.failed.saturating_add(1);
        }
        if sample {
            let n = self
                .latency_bins
                .entry(bin(o.latency_ms as f64))
                .or_default();
            *n = n.saturating_add(1);
            if generated {
                let tps = o.tokens as f64 * 1000.0 / o.generation_ms as f64;
                let n = self.throughput_bins.entry(bin(tps)).or_default();
                *n = n.saturating_add(1);
            }
        }
    }
}

/// Sums of one value per account slot and minute, and how many there were.
#[derive(Default, Clone, Copy)]
struct Votes {
    ok: f64,
    failed: f64,
    latency_ms: f64,
    latency_n: f64,
    throughput: f64,
    throughput_n: f64,
}

impl Votes {
    /// Adds a bucket's votes: each account slot's outcomes split one vote into ok and
    /// failed, and its mean latency and throughput count once.
    fn add(&mut self, b: &Bucket) {
        for t in &b.accounts {
            let (ok, failed) = (f64::from(t.ok), f64::from(t.failed));
            let n = ok + failed;
            if n > 0.0 {
                self.ok += ok / n;
                self.failed += failed / n;
            }
            if t.ok > 0 {
                self.latency_ms += t.latency_ms as f64 / ok;
                self.latency_n += 1.0;
            }
            if t.generation_ms > 0 {
                self.throughput += t.tokens as f64 * 1000.0 / t.generation_ms as f64;
                self.throughput_n += 1.0;
            }
        }
    }

    fn uptime(&self) -> Option<f64> {
        let n = self.ok + self.failed;
        (n > 0.0).then(|| self.ok / n)
    }
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

/// What a shard knows of one endpoint (stored as a tuple, see `wire`).
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(from = "wire::StatsWire")]
pub struct EndpointStats {
    /// By minute, oldest first.
    buckets: VecDeque<Bucket>,
    /// The (ok, failed) votes of minutes that left the half hour, by hour, for a day.
    hours: VecDeque<(u64, f64, f64)>,
    consecutive_failures: u32,
    last_failure_ms: Option<u64>,
    /// The account slots that failed since the last success, one bit each.
    failing: u64,
    /// Checked tool calls by hour, for a day.
    tools: tools::ToolWindow,
}

impl EndpointStats {
    /// Records an outcome of the account tagged `account` (see [`account_tag`]).
    pub fn record(&mut self, account: u32, o: &Outcome) {
        let minute = o.at_ms / 60_000;
        self.prune(minute);
        self.tools.record(o.at_ms, o.tool_ok, o.tool_failed);
        let slot = slot(account);
        // Batches from many isolates interleave: a report may be for an earlier minute
        // than the last one seen, and goes to that minute's bucket (one too late to have
        // a bucket still counts towards the down mark, not the figures).
        if self.buckets.back().is_none_or(|b| b.minute < minute) {
            self.buckets.push_back(Bucket {
                minute,
                ..Default::default()
            });
        }
        if let Some(b) = self.buckets.iter_mut().rev().find(|b| b.minute == minute) {
            b.add(slot, o);
        }
        if o.ok {
            self.consecutive_failures = 0;
            self.last_failure_ms = None;
            self.failing = 0;
        } else {
            self.consecutive_failures = self.consecutive_failures.saturating_add(1);
            self.last_failure_ms = Some(o.at_ms);
            self.failing |= bit(slot);
        }
    }

    /// Moves minutes that left the half hour into their hour; forgets hours past a day.
    fn prune(&mut self, now_minute: u64) {
        while self
            .buckets
            .front()
            .is_some_and(|b| b.minute.saturating_add(WINDOW_MINUTES) <= now_minute)
        {
            let Some(b) = self.buckets.pop_front() else {
                break;
            };
            let hour = b.minute / 60;
            let mut v = Votes::default();
            v.add(&b);
            match self.hours.back_mut() {
                Some((h, ok, failed)) if *h == hour => {
                    *ok += v.ok;
                    *failed += v.failed;
                }
                _ => self.hours.push_back((hour, v.ok, v.failed)),
            }
        }
        let hour = now_minute / 60;
        while self
            .hours
            .front()
            .is_some_and(|(h, ..)| h.saturating_add(HOURS) <= hour)
        {
            self.hours.pop_front();
        }
    }

    pub fn summary(&self, now_ms: u64) -> Summary {
        let since = (now_ms / 60_000).saturating_sub(WINDOW_MINUTES - 1);
        let recent = (now_ms / 60_000).saturating_sub(4);
        let day_from = (now_ms / 3_600_000).saturating_sub(HOURS - 1);
        let (mut v, mut v5, mut day) = (Votes::default(), Votes::default(), Votes::default());
        let mut seen = self.failing;
        let mut latency: BTreeMap<u16, u64> = BTreeMap::new();
        let mut throughput: BTreeMap<u16, u64> = BTreeMap::new();
        for b in &self.buckets {
            if b.minute / 60 >= day_from {
                day.add(b);
            }
            if b.minute < since {
                continue;
            }
            v.add(b);
            merge(&mut latency, &b.latency_bins);
            merge(&mut throughput, &b.throughput_bins);
            if b.minute >= recent {
                v5.add(b);
                seen = b.accounts.iter().fold(seen, |seen, t| seen | bit(t.slot));
            }
        }
        for (h, ok, failed) in &self.hours {
            if *h >= day_from {
                day.ok += ok;
                day.failed += failed;
            }
        }
        // Down only while the accounts failing since the last success are at least half
        // of those seen lately: one account's failures do not take an endpoint down for
        // the others it serves.
        let shared = self.failing.count_ones().saturating_mul(2) >= seen.count_ones();
        let penalty = self.last_failure_ms.filter(|_| shared).map(|at| {
            let doublings = self.consecutive_failures.saturating_sub(1).min(10);
            at.saturating_add((BASE_PENALTY_MS << doublings).min(MAX_PENALTY_MS))
        });
        Summary {
            uptime_30m: v.uptime(),
            uptime_5m: v5.uptime(),
            uptime_1d: day.uptime(),
            latency_ms_30m: (v.latency_n > 0.0).then(|| v.latency_ms / v.latency_n),
            throughput_30m: (v.throughput_n > 0.0).then(|| v.throughput / v.throughput_n),
            latency_pct_30m: Percentiles::of(&latency),
            throughput_pct_30m: Percentiles::of(&throughput),
            down_until_ms: penalty,
            tool_calls_1d: self.tools.day(now_ms),
        }
    }
}

/// Adds a bucket's histogram to a sum of them.
fn merge(all: &mut BTreeMap<u16, u64>, bins: &Bins) {
    for (bin, n) in bins {
        let c = all.entry(*bin).or_default();
        *c = c.saturating_add(u64::from(*n));
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
            ..Default::default()
        }
    }

    /// One account's outcomes, as a single-tenant gateway sees them.
    fn record(s: &mut EndpointStats, o: &Outcome) {
        s.record(7, o);
    }

    #[test]
    fn uptime_latency_throughput() {
        let mut s = EndpointStats::default();
        for i in 0..3 {
            record(&mut s, &o(true, i * 1000));
        }
        record(&mut s, &o(false, 5000));
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
        // Latencies 1..=100 ms, one each from a hundred accounts, over two minutes.
        for ms in 1..=100u64 {
            s.record(
                ms as u32,
                &Outcome {
                    ok: true,
                    latency_ms: ms,
                    tokens: ms,
                    generation_ms: 1000,
                    at_ms: ms * 1000,
                    ..Default::default()
                },
            );
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
    fn tool_calls_of_the_day_reach_the_summary() {
        let mut s = EndpointStats::default();
        let with = |ok, failed, at_ms| Outcome {
            tool_ok: ok,
            tool_failed: failed,
            ..o(true, at_ms)
        };
        record(&mut s, &with(3, 1, 0));
        record(&mut s, &with(1, 3, 2 * 3_600_000));
        let sum = s.summary(2 * 3_600_000);
        assert_eq!(sum.tool_calls_1d, (4, 4));
        assert_eq!(sum.tool_call_error_rate_1d(), Some(0.5));
        assert_eq!(s.summary(24 * 3_600_000).tool_calls_1d, (1, 3));
        assert_eq!(
            EndpointStats::default()
                .summary(0)
                .tool_call_error_rate_1d(),
            None
        );
        let back: EndpointStats =
            serde_json::from_str(&serde_json::to_string(&s).unwrap()).unwrap();
        assert_eq!(back, s);
        let r = Report {
            key: "p/m".into(),
            account: 1,
            outcome: with(2, 1, 5),
        };
        let back: Report = serde_json::from_str(&serde_json::to_string(&r).unwrap()).unwrap();
        assert_eq!(back, r);
    }

    #[test]
    fn uptime_of_the_last_five_minutes() {
        let mut s = EndpointStats::default();
        record(&mut s, &o(false, 0));
        record(&mut s, &o(true, 10 * 60_000));
        let sum = s.summary(10 * 60_000);
        assert_eq!(sum.uptime_30m, Some(0.5));
        assert_eq!(sum.uptime_5m, Some(1.0));
    }

    #[test]
    fn penalty_doubles_and_success_clears_it() {
        let mut s = EndpointStats::default();
        record(&mut s, &o(false, 0));
        record(&mut s, &o(false, 1000));
        record(&mut s, &o(false, 2000));
        assert_eq!(s.summary(2000).down_until_ms, Some(2000 + 120_000));
        record(&mut s, &o(true, 3000));
        assert!(!s.summary(3000).is_down(3000));
    }

    #[test]
    fn old_minutes_fall_out_of_the_window() {
        let mut s = EndpointStats::default();
        record(&mut s, &o(false, 0));
        record(&mut s, &o(true, 31 * 60_000));
        assert_eq!(s.summary(31 * 60_000).uptime_30m, Some(1.0));
        // The day keeps what the half hour forgot, for 24 hours.
        assert_eq!(s.summary(31 * 60_000).uptime_1d, Some(0.5));
        record(&mut s, &o(true, 25 * 3_600_000));
        assert_eq!(s.summary(25 * 3_600_000).uptime_1d, Some(1.0));
        assert_eq!(s.buckets.len(), 1);
        assert_eq!(EndpointStats::default().summary(0), Summary::default());
    }

    #[test]
    fn a_late_report_goes_to_its_own_minute() {
        let mut s = EndpointStats::default();
        record(&mut s, &o(true, 60_000));
        record(&mut s, &o(true, 2 * 60_000));
        // Minute 1's failure comes after minute 2's success (another isolate's batch).
        record(&mut s, &o(false, 60_001));
        // One for a minute that has no bucket any more is not in the figures.
        record(&mut s, &o(false, 1));
        let minutes: Vec<u64> = s.buckets.iter().map(|b| b.minute).collect();
        assert_eq!(minutes, [1, 2]);
        // Minute 1: half a vote each way; minute 2: a success.
        assert_eq!(s.summary(2 * 60_000).uptime_30m, Some(0.75));
    }

    /// Nine accounts served well by an endpoint, one request each (accounts 1 to 9 have
    /// slots of their own).
    fn nine_served(at_ms: u64) -> EndpointStats {
        let mut s = EndpointStats::default();
        for a in 1..=9 {
            s.record(a, &o(true, at_ms));
        }
        s
    }

    #[test]
    fn a_flood_from_one_account_weighs_as_its_share() {
        let before = nine_served(1000).summary(2000);
        let mut s = nine_served(1000);
        // One account sends a thousand failing requests after the others.
        for i in 0..1000 {
            s.record(42, &o(false, 1500 + i));
        }
        let after = s.summary(2500);
        // One account in ten: uptime moves by a tenth at most, and it is not down.
        assert_eq!(before.uptime_30m, Some(1.0));
        assert_eq!(after.uptime_30m, Some(0.9));
        assert_eq!(after.uptime_5m, Some(0.9));
        assert!(!after.is_down(2500), "{after:?}");
        // A slow flood moves the mean latency by its share too.
        let mut s = nine_served(1000);
        for i in 0..1000 {
            let slow = Outcome {
                latency_ms: 10_200,
                ..o(true, 1500 + i)
            };
            s.record(42, &slow);
        }
        let slow = s.summary(2500);
        assert_eq!(slow.latency_ms_30m, Some(1200.0));
        // The percentiles take at most four of its samples: the median stays.
        let p = slow.latency_pct_30m.unwrap();
        assert!((p.p50 / 200.0 - 1.0).abs() < 0.05, "{p:?}");
    }

    #[test]
    fn many_accounts_failures_still_count() {
        let mut s = nine_served(1000);
        for a in 10..20 {
            s.record(a, &o(false, 1500));
        }
        let sum = s.summary(2000);
        assert_eq!(sum.uptime_30m, Some(9.0 / 19.0));
        assert!(sum.is_down(2000), "{sum:?}");
        // A lone account's failures take down an endpoint only it uses.
        let mut alone = EndpointStats::default();
        alone.record(42, &o(false, 0));
        assert!(alone.summary(0).is_down(0));
    }

    #[test]
    fn batches_share_out_their_room_and_apply_by_key() {
        let r = |account, key: &str| Report {
            key: key.into(),
            account,
            outcome: o(false, 0),
        };
        let mut b = Batch::default();
        let kept = (0..100).filter(|_| b.push(r(42, "p/m"))).count();
        assert_eq!(kept, MAX_PER_ACCOUNT);
        assert!(b.push(r(1, "p/m")));
        for a in 2..100 {
            b.push(r(a, "p/n"));
        }
        assert_eq!(b.reports.len(), MAX_BATCH);
        let mut stats = HashMap::new();
        let changed = apply(&mut stats, b.reports);
        assert_eq!(changed, ["p/m", "p/n"]);
        assert_eq!(stats.len(), 2);
        assert_eq!(shard_of("p/org/model"), "p");
        assert_ne!(account_tag("a1"), account_tag("a2"));
        // What a shard stores and sends reads back the same.
        let s = &stats["p/m"];
        let back: EndpointStats = serde_json::from_str(&serde_json::to_string(s).unwrap()).unwrap();
        assert_eq!(&back, s);
        let sum = nine_served(0).summary(0);
        let back: Summary = serde_json::from_str(&serde_json::to_string(&sum).unwrap()).unwrap();
        assert_eq!(back, sum);
        assert!(slot(u32::MAX) < ACCOUNT_SLOTS);
    }
}
