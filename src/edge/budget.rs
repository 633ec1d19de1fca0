//! The isolate's byte budgets, shared by its requests: media fetched for them
//! (`ISOLATE_MEDIA_BYTES`) and replies read whole or gathered (`ISOLATE_REPLY_BYTES`),
//! so that concurrent large ones cannot take the isolate's 128 MB from the others
//! (README "Validation and limits").

use std::cell::Cell;
use std::thread::LocalKey;

use crate::error::Error;
use crate::limits::ByteBudget;

type Budget = LocalKey<Cell<ByteBudget>>;

thread_local! {
    pub static MEDIA: Cell<ByteBudget> = const { Cell::new(ByteBudget { held: 0 }) };
    pub static REPLIES: Cell<ByteBudget> = const { Cell::new(ByteBudget { held: 0 }) };
}

/// What one request holds of a budget, given back when it is dropped.
pub struct Hold {
    budget: &'static Budget,
    held: u64,
}

impl Hold {
    pub fn of(budget: &'static Budget) -> Hold {
        Hold { budget, held: 0 }
    }

    fn change(&self, f: impl FnOnce(&mut ByteBudget)) {
        self.budget.with(|c| {
            let mut b = c.get();
            f(&mut b);
            c.set(b);
        });
    }

    /// Takes as much of `want` as the isolate has left under `limit`: what it took
    /// (0: none is left).
    pub fn take_room(&mut self, want: u64, limit: u64) -> u64 {
        let room = self.budget.with(|c| c.get().room(want, limit));
        self.change(|b| b.take(room));
        self.held = self.held.saturating_add(room);
        room
    }

    /// What the isolate has left under `limit`.
    pub fn left(&self, limit: u64) -> u64 {
        self.budget.with(|c| c.get().room(u64::MAX, limit))
    }

    /// Takes `n` if all of it fits under `limit`.
    pub fn try_take(&mut self, n: u64, limit: u64) -> bool {
        let fits = self.left(limit) >= n;
        if fits {
            self.take_room(n, limit);
        }
        fits
    }

    pub fn give(&mut self, n: u64) {
        let n = n.min(self.held);
        self.change(|b| b.give(n));
        self.held = self.held.saturating_sub(n);
    }
}

impl Drop for Hold {
    fn drop(&mut self) {
        self.give(self.held);
    }
}

/// The isolate is at its budget of `limit` bytes, `doing` them for other requests
/// (another endpoint, or this one shortly, may serve): a 503 with `Retry-After: 1`.
pub fn busy(doing: &str, limit: u64) -> Error {
    Error::Busy {
        message: format!(
            "This gateway instance is {doing} {limit} bytes for other requests; retry shortly."
        ),
        retry_after_secs: 1,
    }
}
