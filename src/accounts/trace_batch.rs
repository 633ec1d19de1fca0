//! Trace export's batches, the pure part (README "Trace export"). Without a queue,
//! spans wait per destination in the isolate until the first one's flusher wakes (a
//! short delay) or the batch is full, and go in one OTLP request (`resourceSpans` with
//! all of them). With the `TRACE_QUEUE` bound, each span is a [`Queued`] message and the
//! consumer groups a delivered batch by destination ([`groups`]), one request each.

use std::collections::HashMap;

/// The most spans one OTLP request carries.
pub const MAX_BATCH: usize = 64;
/// How long the first span of a batch waits for others (ms).
pub const BATCH_MS: u64 = 1_000;
/// The most spans an isolate keeps waiting for all destinations together: past it a
/// span is dropped (an export that cannot keep up loses spans, never memory).
pub const MAX_WAITING: usize = 4_096;

/// One span on its way through the trace queue, to one destination. The destination
/// is named, not copied: its endpoint and headers (secrets) never go in a message and
/// are read when the message is delivered.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Queued {
    pub account: String,
    pub destination: String,
    pub generation: String,
    /// The span as OTLP/JSON.
    pub span: String,
}

/// The messages of a delivered batch grouped by account and destination, in the order
/// they came, at most [`MAX_BATCH`] a group: each group is one export, its messages
/// (their indexes in `batch`) acknowledged or retried together.
pub fn groups(batch: &[Queued]) -> Vec<Vec<usize>> {
    let mut out: Vec<Vec<usize>> = Vec::new();
    let mut open: HashMap<(&str, &str), usize> = HashMap::new();
    for (i, q) in batch.iter().enumerate() {
        let key = (q.account.as_str(), q.destination.as_str());
        match open.get(&key).and_then(|&g| out.get_mut(g)) {
            Some(g) if g.len() < MAX_BATCH => g.push(i),
            _ => {
                open.insert(key, out.len());
                out.push(vec![i]);
            }
        }
    }
    out
}

/// What adding a span to its destination's batch asks of the caller.
#[derive(Debug, PartialEq)]
pub enum Added<T> {
    /// It opened the batch: the caller flushes it after [`BATCH_MS`].
    Opened,
    /// It joined an open batch (whose opener flushes it).
    Joined,
    /// It filled the batch: the caller sends these now.
    Full(Vec<T>),
    /// Too many spans waiting in the isolate: dropped.
    Dropped,
}

/// Batches of `T` by destination key.
#[derive(Debug)]
pub struct Outbox<K, T> {
    open: HashMap<K, Vec<T>>,
    waiting: usize,
}

impl<K, T> Default for Outbox<K, T> {
    fn default() -> Self {
        Outbox {
            open: HashMap::new(),
            waiting: 0,
        }
    }
}

impl<K: std::hash::Hash + Eq + Clone, T> Outbox<K, T> {
    /// Adds `item` to `key`'s batch.
    pub fn add(&mut self, key: &K, item: T) -> Added<T> {
        if self.waiting >= MAX_WAITING {
            return Added::Dropped;
        }
        let batch = self.open.entry(key.clone()).or_default();
        batch.push(item);
        if batch.len() >= MAX_BATCH {
            let full = std::mem::take(batch);
            self.open.remove(key);
            self.waiting = self.waiting.saturating_sub(full.len().saturating_sub(1));
            return Added::Full(full);
        }
        self.waiting = self.waiting.saturating_add(1);
        match batch.len() {
            1 => Added::Opened,
            _ => Added::Joined,
        }
    }

    /// Takes `key`'s batch (empty when it was sent full meanwhile).
    pub fn take(&mut self, key: &K) -> Vec<T> {
        let batch = self.open.remove(key).unwrap_or_default();
        self.waiting = self.waiting.saturating_sub(batch.len());
        batch
    }

    /// Spans waiting in all batches.
    pub fn waiting(&self) -> usize {
        self.waiting
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_span_opens_a_batch_the_next_join_it_and_the_opener_takes_them_all() {
        let mut o: Outbox<&str, u32> = Outbox::default();
        assert_eq!(o.add(&"a", 1), Added::Opened);
        assert_eq!(o.add(&"a", 2), Added::Joined);
        assert_eq!(o.add(&"b", 3), Added::Opened);
        assert_eq!(o.waiting(), 3);
        assert_eq!(o.take(&"a"), vec![1, 2]);
        assert_eq!(o.waiting(), 1);
        assert_eq!(o.take(&"a"), Vec::<u32>::new());
        assert_eq!(o.take(&"b"), vec![3]);
        assert_eq!(o.waiting(), 0);
        // After a take, the next span opens a new batch.
        assert_eq!(o.add(&"a", 4), Added::Opened);
    }

    #[test]
    fn a_full_batch_is_handed_over_at_once_and_the_next_span_opens_another() {
        let mut o: Outbox<u8, usize> = Outbox::default();
        for i in 0..MAX_BATCH - 1 {
            assert!(matches!(o.add(&7, i), Added::Opened | Added::Joined));
        }
        assert_eq!(o.waiting(), MAX_BATCH - 1);
        match o.add(&7, 999) {
            Added::Full(v) => {
                assert_eq!(v.len(), MAX_BATCH);
                assert_eq!(v.first(), Some(&0));
                assert_eq!(v.last(), Some(&999));
            }
            other => panic!("expected a full batch, got {other:?}"),
        }
        assert_eq!(o.waiting(), 0);
        assert_eq!(o.take(&7), Vec::<usize>::new());
        assert_eq!(o.add(&7, 1), Added::Opened);
    }

    fn queued(account: &str, destination: &str, n: usize) -> Queued {
        Queued {
            account: account.into(),
            destination: destination.into(),
            generation: format!("gen-{n}"),
            span: "{}".into(),
        }
    }

    #[test]
    fn a_delivered_batch_is_one_group_per_destination_in_order() {
        let batch = vec![
            queued("acc1", "dst_a", 0),
            queued("acc1", "dst_b", 1),
            queued("acc2", "dst_a", 2),
            queued("acc1", "dst_a", 3),
        ];
        assert_eq!(groups(&batch), vec![vec![0, 3], vec![1], vec![2]]);
        assert_eq!(groups(&[]), Vec::<Vec<usize>>::new());
    }

    #[test]
    fn a_group_holds_at_most_a_batch_of_spans() {
        let batch: Vec<Queued> = (0..MAX_BATCH + 2).map(|n| queued("a", "d", n)).collect();
        let g = groups(&batch);
        assert_eq!(g.len(), 2);
        assert_eq!(g[0], (0..MAX_BATCH).collect::<Vec<_>>());
        assert_eq!(g[1], vec![MAX_BATCH, MAX_BATCH + 1]);
    }

    #[test]
    fn a_queued_span_goes_as_json_without_the_destination_itself() {
        let q = queued("acc1", "dst_a", 7);
        let v = serde_json::to_value(&q).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"account": "acc1", "destination": "dst_a", "generation": "gen-7", "span": "{}"})
        );
        assert_eq!(serde_json::from_value::<Queued>(v).unwrap(), q);
    }

    #[test]
    fn past_the_isolate_bound_spans_are_dropped_not_kept() {
        let mut o: Outbox<usize, u8> = Outbox::default();
        // One span per destination, so no batch fills.
        for k in 0..MAX_WAITING {
            assert_eq!(o.add(&k, 0), Added::Opened);
        }
        assert_eq!(o.add(&0, 1), Added::Dropped);
        assert_eq!(o.waiting(), MAX_WAITING);
        assert_eq!(o.take(&0), vec![0]);
        assert_eq!(o.add(&0, 1), Added::Opened);
    }
}
