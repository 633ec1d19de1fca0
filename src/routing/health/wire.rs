//! How shards store and send their figures: as flat arrays, not named fields. The
//! isolates and the objects are one build, and a tuple costs the wasm far less than a
//! named struct (no field names to match, one visitor).

use std::collections::VecDeque;

use serde::Serialize;

use super::tools::ToolWindow;
use super::{Bins, Bucket, EndpointStats, Outcome, Report, Tally};

/// key, account, ok, latency_ms, tokens, generation_ms, at_ms, tool_ok, tool_failed.
pub(super) type ReportWire = (String, u32, bool, u64, u64, u64, u64, u32, u32);

impl From<ReportWire> for Report {
    fn from(
        (key, account, ok, latency_ms, tokens, generation_ms, at_ms, tool_ok, tool_failed): ReportWire,
    ) -> Self {
        Report {
            key,
            account,
            outcome: Outcome {
                ok,
                latency_ms,
                tokens,
                generation_ms,
                at_ms,
                tool_ok,
                tool_failed,
            },
        }
    }
}

impl Serialize for Report {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let o = &self.outcome;
        (
            &self.key,
            self.account,
            o.ok,
            o.latency_ms,
            o.tokens,
            o.generation_ms,
            o.at_ms,
            o.tool_ok,
            o.tool_failed,
        )
            .serialize(s)
    }
}

pub(super) type TallyWire = (u32, u32, u32, u64, u64, u64);

impl From<TallyWire> for Tally {
    fn from((slot, ok, failed, latency_ms, tokens, generation_ms): TallyWire) -> Self {
        Tally {
            slot,
            ok,
            failed,
            latency_ms,
            tokens,
            generation_ms,
        }
    }
}

impl From<Tally> for TallyWire {
    fn from(t: Tally) -> Self {
        (
            t.slot,
            t.ok,
            t.failed,
            t.latency_ms,
            t.tokens,
            t.generation_ms,
        )
    }
}

pub(super) type BucketWire = (u64, Vec<Tally>, Bins, Bins);

impl From<BucketWire> for Bucket {
    fn from((minute, accounts, latency_bins, throughput_bins): BucketWire) -> Self {
        Bucket {
            minute,
            accounts,
            latency_bins,
            throughput_bins,
        }
    }
}

impl Serialize for Bucket {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let b = self;
        (b.minute, &b.accounts, &b.latency_bins, &b.throughput_bins).serialize(s)
    }
}

pub(super) type StatsWire = (
    VecDeque<Bucket>,
    VecDeque<(u64, f64, f64)>,
    u32,
    Option<u64>,
    u64,
    ToolWindow,
);

impl From<StatsWire> for EndpointStats {
    fn from(
        (buckets, hours, consecutive_failures, last_failure_ms, failing, tools): StatsWire,
    ) -> Self {
        EndpointStats {
            buckets,
            hours,
            consecutive_failures,
            last_failure_ms,
            failing,
            tools,
        }
    }
}

impl Serialize for EndpointStats {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let e = self;
        let down = (e.consecutive_failures, e.last_failure_ms);
        (&e.buckets, &e.hours, down.0, down.1, e.failing, &e.tools).serialize(s)
    }
}
