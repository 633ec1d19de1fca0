//! What an isolate has yet to settle with one account's object, and when it tries
//! again: pure, so that whether a settlement can be lost is decided (and tested) here.
//!
//! A settlement stays in its queue until the object has applied it: a sender *claims*
//! a batch for as long as it may take (its pause and its call), and only a landed
//! batch leaves the queue. A sender that stops (the runtime cut its task off, with or
//! without telling it) therefore loses nothing: its claim runs out and the next sender
//! takes the batch again. Sending one twice costs nothing, as the object applies each
//! settlement once (by generation ID).

/// First pause before a failed batch is sent again; each next one doubles.
pub const RETRY_BASE_MS: u64 = crate::settings::DEFAULT_SETTLE_RETRY_MS;
/// The longest pause, as a multiple of the first (8 s at the default).
const RETRY_CAP_FACTOR: u64 = 32;

/// The pause before sending again a batch that failed `failures` times in a row: none
/// before the first attempt, then `base`, 2·`base`, 4·`base`… up to 32·`base`. A batch
/// is retried on this schedule until it lands.
pub fn retry_pause_ms(failures: u32, base: u64) -> u64 {
    if failures == 0 {
        return 0;
    }
    let doubling = 1u64
        .checked_shl(failures.saturating_sub(1))
        .unwrap_or(u64::MAX);
    base.saturating_mul(doubling.min(RETRY_CAP_FACTOR))
}

/// How much of an expired hold a late settlement accounts for: its own worst case (or,
/// when the sender did not say it, what it cost), never more than is still unmatched.
pub fn late_match(unmatched: u64, ask: u64, cost: u64) -> u64 {
    let own = if ask > 0 { ask } else { cost };
    own.min(unmatched)
}

struct Slot<T> {
    id: String,
    item: T,
    /// Until when a sender has it (ms); free to take when `None` or past.
    claimed_until: Option<u64>,
}

/// One account's queued settlements, by ID.
pub struct SettleQueue<T> {
    slots: Vec<Slot<T>>,
    /// Until when a timer task is due to take what is queued (ms): past it, the task is
    /// taken to be gone and the next arrival starts one.
    timer_until: Option<u64>,
}

impl<T> Default for SettleQueue<T> {
    fn default() -> Self {
        SettleQueue {
            slots: Vec::new(),
            timer_until: None,
        }
    }
}

impl<T: Clone> SettleQueue<T> {
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    fn free(s: &Slot<T>, now: u64) -> bool {
        s.claimed_until.is_none_or(|t| t <= now)
    }

    /// Whether some settlement is queued that no live sender has.
    pub fn has_free(&self, now: u64) -> bool {
        self.slots.iter().any(|s| Self::free(s, now))
    }

    /// How many settlements are queued that no live sender has.
    pub fn free_count(&self, now: u64) -> usize {
        self.slots.iter().filter(|s| Self::free(s, now)).count()
    }

    /// Queues `item` under `id` (an ID already queued is not queued twice). Whether the
    /// caller must run the timer that sends it: true when no live timer will (it then
    /// waits `timer_ms` and sends; `grace_ms` is how late it may be before another
    /// arrival takes it for gone).
    pub fn push(&mut self, id: String, item: T, now: u64, timer_ms: u64, grace_ms: u64) -> bool {
        if !self.slots.iter().any(|s| s.id == id) {
            self.slots.push(Slot {
                id,
                item,
                claimed_until: None,
            });
        }
        if self.timer_until.is_some_and(|t| t > now) {
            return false;
        }
        self.timer_until = Some(now.saturating_add(timer_ms).saturating_add(grace_ms));
        true
    }

    /// Claims up to `max` free settlements, oldest first, until `until`; `all` takes
    /// claimed ones too (a lease that goes back carries every settlement that may
    /// charge it). When nothing free is left the timer is done: what comes next
    /// starts its own.
    pub fn take(&mut self, max: usize, now: u64, until: u64, all: bool) -> Vec<(String, T)> {
        let mut out = Vec::new();
        for s in self.slots.iter_mut() {
            if out.len() >= max {
                break;
            }
            if all || Self::free(s, now) {
                s.claimed_until = Some(until);
                out.push((s.id.clone(), s.item.clone()));
            }
        }
        if !self.has_free(now) {
            self.timer_until = None;
        }
        out
    }

    /// Claims every settlement `pick` chooses, whether or not a sender has it, until
    /// `until` (a lease's renewal carries its own requests'). As with [`Self::take`],
    /// the timer is done when nothing free is left.
    pub fn take_all_of(
        &mut self,
        now: u64,
        until: u64,
        pick: &dyn Fn(&T) -> bool,
    ) -> Vec<(String, T)> {
        let mut out = Vec::new();
        for s in self.slots.iter_mut().filter(|s| pick(&s.item)) {
            s.claimed_until = Some(until);
            out.push((s.id.clone(), s.item.clone()));
        }
        if !self.has_free(now) {
            self.timer_until = None;
        }
        out
    }

    /// Extends the claim on `ids` (a sender about to wait again).
    pub fn hold(&mut self, ids: &[String], until: u64) {
        for s in self.slots.iter_mut().filter(|s| ids.contains(&s.id)) {
            s.claimed_until = Some(until);
        }
    }

    /// Frees `ids` for the next sender (one that gives up on them).
    pub fn release(&mut self, ids: &[String]) {
        for s in self.slots.iter_mut().filter(|s| ids.contains(&s.id)) {
            s.claimed_until = None;
        }
    }

    /// Drops `ids`: the object applied them.
    pub fn landed(&mut self, ids: &[String]) {
        self.slots.retain(|s| !ids.contains(&s.id));
    }

    /// Whether what is free needs a timer and none is alive (a sender that gave up
    /// must then start one, or leave it to the next arrival).
    pub fn orphaned(&self, now: u64) -> bool {
        self.has_free(now) && self.timer_until.is_none_or(|t| t <= now)
    }

    /// Marks a timer as running until `until` (for a sender that takes over).
    pub fn timer(&mut self, until: u64) {
        self.timer_until = Some(until);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(v: &[(String, u32)]) -> Vec<String> {
        v.iter().map(|(id, _)| id.clone()).collect()
    }

    #[test]
    fn retries_back_off_and_are_capped() {
        let s: Vec<u64> = (0..9).map(|f| retry_pause_ms(f, 250)).collect();
        assert_eq!(s, [0, 250, 500, 1000, 2000, 4000, 8000, 8000, 8000]);
        assert_eq!(retry_pause_ms(u32::MAX, 250), 8000);
        assert_eq!(retry_pause_ms(70, u64::MAX), u64::MAX);
    }

    #[test]
    fn a_taken_batch_stays_queued_until_it_lands() {
        let mut q = SettleQueue::default();
        assert!(
            q.push("a".into(), 1, 0, 100, 1000),
            "the first starts a timer"
        );
        assert!(!q.push("b".into(), 2, 10, 100, 1000), "the timer is alive");
        let batch = q.take(64, 100, 5_000, false);
        assert_eq!(ids(&batch), ["a", "b"]);
        assert_eq!(q.len(), 2, "taken is not removed");
        assert!(
            q.take(64, 200, 5_000, false).is_empty(),
            "claimed: nobody else sends it"
        );
        q.landed(&ids(&batch));
        assert!(q.is_empty());
    }

    #[test]
    fn a_renewal_carries_its_own_settlements_claimed_or_not() {
        let mut q = SettleQueue::default();
        q.push("a".into(), 1, 0, 100, 1000);
        q.push("b".into(), 2, 0, 100, 1000);
        q.push("c".into(), 3, 0, 100, 1000);
        // A flush has "a" on its way.
        assert_eq!(ids(&q.take(1, 100, 5_000, false)), ["a"]);
        let mine = q.take_all_of(110, 5_000, &|n| n % 2 == 1);
        assert_eq!(
            ids(&mine),
            ["a", "c"],
            "the odd ones, claimed by the flush or not"
        );
        assert!(!q.orphaned(120), "\"b\" is free, its timer alive");
        assert_eq!(ids(&q.take(64, 120, 5_000, false)), ["b"]);
        // The renewal failed: what it took is free again, with no timer to send it.
        q.release(&ids(&mine));
        assert!(q.orphaned(130));
        q.landed(&ids(&mine));
        assert_eq!(q.len(), 1);
    }

    #[test]
    fn a_sender_cut_off_mid_retry_loses_nothing() {
        let mut q = SettleQueue::default();
        q.push("a".into(), 1, 0, 100, 1000);
        let batch = q.take(64, 100, 2_000, false);
        assert_eq!(batch.len(), 1);
        // Its task is never polled again: the claim runs out, and the next arrival
        // (whose timer is due, as the old one ended with the take) sends both.
        assert!(q.push("b".into(), 2, 2_500, 100, 1000));
        assert_eq!(ids(&q.take(64, 2_600, 9_000, false)), ["a", "b"]);
    }

    #[test]
    fn a_sender_that_gives_up_leaves_a_batch_someone_must_time() {
        let mut q = SettleQueue::default();
        q.push("a".into(), 1, 0, 100, 1000);
        let batch = q.take(64, 100, 2_000, false);
        q.release(&ids(&batch));
        assert!(q.orphaned(150), "no timer has it");
        q.timer(5_000);
        assert!(!q.orphaned(150));
        assert!(
            !q.push("b".into(), 2, 200, 100, 1000),
            "the new timer takes it too"
        );
    }

    #[test]
    fn a_timer_gone_silent_is_replaced() {
        let mut q = SettleQueue::default();
        assert!(q.push("a".into(), 1, 0, 100, 1000));
        assert!(!q.push("b".into(), 2, 1_000, 100, 1000));
        assert!(
            q.push("c".into(), 3, 1_101, 100, 1000),
            "its timer never fired"
        );
    }

    #[test]
    fn batches_are_bounded_and_a_returning_lease_takes_all() {
        let mut q = SettleQueue::default();
        for i in 0..5u32 {
            q.push(format!("g{i}"), i, 0, 100, 1000);
        }
        assert!(
            !q.push("g0".into(), 9, 0, 100, 1000),
            "an ID is queued once"
        );
        assert_eq!(q.len(), 5);
        assert_eq!(ids(&q.take(2, 0, 9_000, false)), ["g0", "g1"]);
        assert!(q.has_free(0));
        assert_eq!(q.free_count(0), 3);
        assert_eq!(q.take(64, 0, 9_000, true).len(), 5);
        assert!(!q.has_free(0));
    }

    #[test]
    fn a_late_settlement_matches_at_most_what_is_unmatched() {
        assert_eq!(late_match(100, 30, 5), 30);
        assert_eq!(late_match(20, 30, 5), 20);
        assert_eq!(late_match(100, 0, 5), 5, "no worst case sent: its cost");
        assert_eq!(late_match(0, 30, 5), 0);
    }
}
