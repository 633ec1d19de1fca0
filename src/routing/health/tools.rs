//! An endpoint's checked tool calls over the last day, by hour: at most 24 counts
//! kept, the oldest dropped as hours pass.

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

const HOURS: u64 = 24;

/// (hour since the epoch, calls that passed, calls that failed), oldest first.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(transparent)]
pub(super) struct ToolWindow(VecDeque<(u64, u32, u32)>);

impl ToolWindow {
    /// Adds `ok` and `failed` calls at `at_ms`; a report for an hour older than the
    /// newest goes to its own hour if it is still kept.
    pub(super) fn record(&mut self, at_ms: u64, ok: u32, failed: u32) {
        if ok == 0 && failed == 0 {
            return;
        }
        let hour = at_ms / 3_600_000;
        if self.0.back().is_none_or(|(h, ..)| *h < hour) {
            self.0.push_back((hour, 0, 0));
        }
        if let Some((_, o, f)) = self.0.iter_mut().rev().find(|(h, ..)| *h == hour) {
            *o = o.saturating_add(ok);
            *f = f.saturating_add(failed);
        }
        while self.0.len() as u64 > HOURS
            || self
                .0
                .front()
                .is_some_and(|(h, ..)| h.saturating_add(HOURS) <= hour)
        {
            self.0.pop_front();
        }
    }

    /// The calls that passed and failed in the day up to `now_ms`.
    pub(super) fn day(&self, now_ms: u64) -> (u32, u32) {
        let from = (now_ms / 3_600_000).saturating_sub(HOURS - 1);
        self.0
            .iter()
            .filter(|(h, ..)| *h >= from)
            .fold((0u32, 0u32), |(o, f), (_, ok, failed)| {
                (o.saturating_add(*ok), f.saturating_add(*failed))
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: u64 = 3_600_000;

    #[test]
    fn a_day_by_hour_bounded() {
        let mut w = ToolWindow::default();
        w.record(0, 3, 1);
        w.record(H / 2, 1, 1);
        w.record(2 * H, 0, 2);
        // Late for hour 0, which is still kept.
        w.record(10, 1, 0);
        assert_eq!(w.day(2 * H), (5, 4));
        // Hour 0 leaves the day at hour 24.
        assert_eq!(w.day(24 * H), (0, 2));
        w.record(24 * H, 1, 0);
        assert_eq!(w.0.len(), 2);
        for h in 0..100 {
            w.record((30 + h) * H, 1, 0);
        }
        assert_eq!(w.0.len(), 24);
        assert_eq!(w.day(129 * H), (24, 0));
        w.record(129 * H, 0, 0);
        assert_eq!(w.0.len(), 24);
    }
}
