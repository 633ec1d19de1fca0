//! Fixed-window request limits (e.g. free models: 20 a minute, 200 a day), counted
//! exactly: the logic is pure, the counts live behind [`CounterStore`] (SQLite in a
//! Durable Object at the edge, a map in tests) and time comes from the caller.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

/// `limit` units per `period_secs`, windows aligned to the Unix epoch. A hit costs
/// `cost` units (1 for request counts, the token estimate for token budgets).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Window {
    pub limit: u64,
    pub period_secs: u64,
    #[serde(default = "one")]
    pub cost: u64,
    /// Tells apart windows of the same period (`req`, `tok`).
    #[serde(default)]
    pub name: String,
}

fn one() -> u64 {
    1
}

impl Window {
    pub fn requests(limit: u64, period_secs: u64) -> Self {
        Window {
            limit,
            period_secs,
            cost: 1,
            name: "req".into(),
        }
    }
}

#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct WindowState {
    /// Start of the window the count belongs to (Unix seconds).
    pub start: u64,
    pub count: u64,
}

/// The answer to one hit, with what the `X-RateLimit-*` headers need.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub struct Decision {
    pub allowed: bool,
    /// Of the tightest window.
    pub limit: u64,
    pub remaining: u64,
    /// Unix seconds at which the tightest window resets.
    pub reset: u64,
    /// Seconds to wait when refused.
    pub retry_after: u64,
    /// The period of the window this decision describes (the full one when refused).
    #[serde(default)]
    pub period_secs: u64,
}

pub trait CounterStore {
    fn load(&mut self, key: &str) -> Option<WindowState>;
    fn save(&mut self, key: &str, state: WindowState);
}

#[derive(Debug, Default)]
pub struct MemoryCounters(pub HashMap<String, WindowState>);

impl CounterStore for MemoryCounters {
    fn load(&mut self, key: &str) -> Option<WindowState> {
        self.0.get(key).copied()
    }
    fn save(&mut self, key: &str, state: WindowState) {
        self.0.insert(key.to_string(), state);
    }
}

/// The stored key and state of `key`'s current window `w` (zero if it has not started).
fn current(
    store: &mut impl CounterStore,
    key: &str,
    w: &Window,
    now_secs: u64,
) -> (String, WindowState) {
    let period = w.period_secs.max(1);
    let start = now_secs.saturating_sub(now_secs.checked_rem(period).unwrap_or(0));
    let skey = format!("{key}:{}{period}", w.name);
    let st = store
        .load(&skey)
        .filter(|s| s.start == start)
        .unwrap_or(WindowState { start, count: 0 });
    (skey, st)
}

/// Year, month, day of a day count since 1970-01-01 (proleptic Gregorian, UTC).
// Calendar arithmetic on day counts of a clock (never of request data), far inside
// i64 for any date within billions of years.
#[allow(clippy::arithmetic_side_effects)]
pub fn civil(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// How much of window `w` the current period of `key` has used, without counting.
pub fn used(store: &mut impl CounterStore, key: &str, w: &Window, now_secs: u64) -> u64 {
    current(store, key, w, now_secs).1.count
}

/// Counts one hit for `key` against every window, or refuses it without counting
/// when any window is full. Callers must serialize calls per key (a Durable Object does).
pub fn hit(
    store: &mut impl CounterStore,
    key: &str,
    windows: &[Window],
    now_secs: u64,
) -> Decision {
    let mut states = Vec::with_capacity(windows.len());
    for w in windows {
        let (skey, st) = current(store, key, w, now_secs);
        let end = st.start.saturating_add(w.period_secs.max(1));
        states.push((skey, w, st, end));
    }
    let fullest = states
        .iter()
        .filter(|(_, w, s, _)| s.count.saturating_add(w.cost) > w.limit)
        .max_by_key(|(.., reset)| *reset);
    if let Some((_, w, _, reset)) = fullest {
        return Decision {
            allowed: false,
            limit: w.limit,
            remaining: 0,
            reset: *reset,
            retry_after: reset.saturating_sub(now_secs).max(1),
            period_secs: w.period_secs,
        };
    }
    let mut tightest: Option<Decision> = None;
    for (skey, w, mut st, reset) in states {
        st.count = st.count.saturating_add(w.cost);
        store.save(&skey, st);
        let d = Decision {
            allowed: true,
            limit: w.limit,
            remaining: w.limit.saturating_sub(st.count),
            reset,
            retry_after: 0,
            period_secs: w.period_secs,
        };
        if tightest.is_none_or(|t| d.remaining < t.remaining) {
            tightest = Some(d);
        }
    }
    tightest.unwrap_or(Decision {
        allowed: true,
        limit: 0,
        remaining: 0,
        reset: now_secs,
        retry_after: 0,
        period_secs: 0,
    })
}

/// Bytes a process shares among the requests it holds in flight (media fetched to be
/// sent inline): a request takes what it may need before it reads, and gives back
/// what it did not use and, when it ends, the rest.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ByteBudget {
    pub held: u64,
}

impl ByteBudget {
    /// How much of `want` can be taken under `limit` now (0: none is left).
    pub fn room(&self, want: u64, limit: u64) -> u64 {
        want.min(limit.saturating_sub(self.held))
    }

    pub fn take(&mut self, n: u64) {
        self.held = self.held.saturating_add(n);
    }

    pub fn give(&mut self, n: u64) {
        self.held = self.held.saturating_sub(n);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_byte_budget_never_lends_past_its_limit() {
        let limit = 100;
        let mut b = ByteBudget::default();
        assert_eq!(b.room(60, limit), 60);
        b.take(60);
        assert_eq!(b.room(60, limit), 40, "only what is left");
        b.take(40);
        assert_eq!(b.room(1, limit), 0);
        b.give(30); // a read that used 30 of its 60 hands back the rest
        assert_eq!(b.room(50, limit), 30);
        b.give(1_000);
        assert_eq!(b.held, 0, "never below zero");
    }

    fn minute() -> Window {
        Window::requests(3, 60)
    }
    fn day() -> Window {
        Window::requests(5, 86_400)
    }

    #[test]
    fn exact_at_the_boundary() {
        let mut s = MemoryCounters::default();
        let t = 86_400 * 100 + 10;
        let got: Vec<bool> = (0..4)
            .map(|_| hit(&mut s, "k", &[minute(), day()], t).allowed)
            .collect();
        assert_eq!(got, [true, true, true, false]);
        let refused = hit(&mut s, "k", &[minute(), day()], t);
        assert_eq!(
            (refused.remaining, refused.retry_after, refused.limit),
            (0, 50, 3)
        );
        // The refusal did not count: the next minute has room, the day has 2 left.
        let d = hit(&mut s, "k", &[minute(), day()], t + 60);
        assert!(d.allowed);
        assert_eq!((d.remaining, d.limit), (1, 5));
        assert!(hit(&mut s, "k", &[minute(), day()], t + 61).allowed);
        let d = hit(&mut s, "k", &[minute(), day()], t + 62);
        assert!(!d.allowed);
        assert_eq!(d.limit, 5, "the day window is the one that is full");
        assert_eq!(d.period_secs, 86_400);
        assert_eq!(d.retry_after, 86_400 - 72);
    }

    #[test]
    fn token_budgets_weigh_each_hit() {
        let mut s = MemoryCounters::default();
        let tokens = |cost| Window {
            limit: 1000,
            period_secs: 60,
            cost,
            name: "tok".into(),
        };
        let rpm = Window::requests(100, 60);
        assert!(hit(&mut s, "q", &[rpm.clone(), tokens(600)], 0).allowed);
        let d = hit(&mut s, "q", &[rpm.clone(), tokens(600)], 1);
        assert!(!d.allowed, "600 + 600 tokens exceed 1000");
        let d = hit(&mut s, "q", &[rpm, tokens(400)], 2);
        assert!(d.allowed);
        assert_eq!(d.remaining, 0);
    }

    #[test]
    fn used_reads_without_counting() {
        let mut s = MemoryCounters::default();
        assert_eq!(used(&mut s, "k", &day(), 100), 0);
        hit(&mut s, "k", &[minute(), day()], 100);
        hit(&mut s, "k", &[minute(), day()], 100);
        assert_eq!(used(&mut s, "k", &day(), 100), 2);
        assert_eq!(used(&mut s, "k", &minute(), 100), 2);
        assert_eq!(used(&mut s, "k", &minute(), 160), 0, "a new minute");
        assert_eq!(used(&mut s, "k", &day(), 160), 2);
    }

    #[test]
    fn keys_are_independent() {
        let mut s = MemoryCounters::default();
        for _ in 0..3 {
            assert!(hit(&mut s, "a", &[minute()], 0).allowed);
        }
        assert!(!hit(&mut s, "a", &[minute()], 0).allowed);
        assert!(hit(&mut s, "b", &[minute()], 0).allowed);
    }
}
