//! Storage stays bounded: one account's books and its day shards, driven for 60
//! simulated days with the account object's alarm (expiry, upkeep, forwarding the
//! outbox) and the shards' retention alarms, asserting after every step that each
//! table is within its stated bound.
//!
//! Compact by scaling the rate per simulated minute: every step is ten simulated
//! minutes carrying one batch of [`PER_STEP`] real settlements (each with its record,
//! its dedupe row and an operator-loss entry), so the bounds asserted are the real ones
//! at that rate; each bound is linear in the rate, and the README states them at 20
//! requests/s. The dedupe retention, the ledger's retention and the shards' retention
//! are the production defaults.
#![allow(clippy::arithmetic_side_effects)]

use std::collections::BTreeMap;

use super::books::{Books, Config, MAX_ENTRIES, PRUNE_BATCH};
use super::lease::Policy;
use super::ledger::Ask;
use super::memory::{MemoryShard, MemoryStore};
use super::ops::{Admission, Op, PlanFacts, Queued, Reply, SettleItem};
use super::records::{Generation, KeyKind, KeyRecord};
use super::shard::{self, Shard, ShardOp, DAY_MS};

const STEP_MS: u64 = 10 * 60_000;
const PER_STEP: u64 = 20;
const DAYS: u64 = 60;
const RETENTION_DAYS: u64 = 30;
const SETTLED_RETENTION_MS: u64 = 24 * 3_600_000;
const KEYS: usize = 3;
const HOUR_MS: u64 = 3_600_000;
const LEASE_TTL_MS: u64 = 60_000;
/// What one churned key's request costs.
const CHURN_COST: u64 = 1_000_000;

fn key(hash: &str, kind: KeyKind) -> KeyRecord {
    super::model_tests::key_record(hash, kind, None)
}

struct Sim {
    books: Books<MemoryStore>,
    shards: BTreeMap<i64, Shard<MemoryShard>>,
    dropped_shards: u64,
    seq: u64,
    churned: u64,
}

impl Sim {
    fn new(start_ms: u64) -> Self {
        let store = MemoryStore::default();
        store.now.set(start_ms);
        let cfg = Config {
            retention_days: RETENTION_DAYS,
            settled_retention_ms: SETTLED_RETENTION_MS,
            reservation_ttl_ms: 15 * 60_000,
            lease_ttl_ms: LEASE_TTL_MS,
            lease_policy: Policy::default(),
        };
        let books = Books::new(store, cfg);
        let mut keys = vec![key("prov", KeyKind::Provisioning)];
        keys.extend((0..KEYS).map(|k| key(&format!("k{k}"), KeyKind::Api)));
        let init = Op::Init {
            id: "acc".into(),
            name: "acc".into(),
            allow_training: true,
            credits: u64::MAX / 2,
            keys,
        };
        books.handle(init).unwrap();
        Sim {
            books,
            shards: BTreeMap::new(),
            dropped_shards: 0,
            seq: 0,
            churned: 0,
        }
    }

    fn now(&self) -> u64 {
        self.books.store.now.get()
    }

    /// One batch of settlements, as an isolate sends them.
    fn settle(&mut self) {
        let now = self.now();
        let items = (0..PER_STEP)
            .map(|i| {
                self.seq += 1;
                let id = format!("gen-{}-{}", now / 1000, self.seq);
                let caller = format!("k{}", i as usize % KEYS);
                Queued {
                    item: SettleItem {
                        caller,
                        gen_id: id.clone(),
                        generation: Generation {
                            id,
                            model: format!("m{}", i % 4),
                            provider: Some("p".into()),
                            cost_picos: 1_000_000,
                            // One in twenty leaves an operator-loss entry.
                            operator_loss_picos: u64::from(i == 0),
                            created_ms: now,
                            ..Generation::default()
                        },
                        lease: None,
                        session: None,
                    },
                    ask: 0,
                }
            })
            .collect();
        self.books.handle(Op::Settle { items }).unwrap();
    }

    /// Key churn, once a simulated hour: a key with a limit is made, admits a request
    /// (and gets a lease for its next ones), settles it and is deleted, its lease left
    /// to expire (its isolate gone): a deleted key's limit and key totals, and an
    /// expired lease's unmatched hold, kept for late settlements.
    fn churn(&mut self) {
        // A little earlier than the step, so that its lease is due by its alarm.
        let step = self.now();
        self.books.store.now.set(step - LEASE_TTL_MS - 1000);
        let hash = format!("churn-{}", self.now() / HOUR_MS);
        let mut k = key(&hash, KeyKind::Api);
        k.limit_picos = Some(1_000_000_000_000);
        let create = Op::KeyCreate {
            caller: "prov".into(),
            key: k,
        };
        self.books.handle(create).unwrap();
        let gen_id = format!("gen-{hash}");
        let facts = PlanFacts {
            free: false,
            ask: Ask {
                reserve: 2 * CHURN_COST,
                ..Ask::default()
            },
        };
        let admit = Op::Admit(Admission {
            caller: hash.clone(),
            gen_id: gen_id.clone(),
            free_windows: Vec::new(),
            rps: None,
            if_training: facts,
            if_private: facts,
            lease: true,
            session: None,
        });
        let Reply::Admitted(a) = self.books.handle(admit).unwrap() else {
            panic!("not admitted")
        };
        assert!(a.lease.is_some(), "a lease for its next requests");
        let item = SettleItem {
            caller: hash.clone(),
            gen_id: gen_id.clone(),
            generation: Generation {
                id: gen_id,
                cost_picos: CHURN_COST,
                created_ms: self.now(),
                ..Generation::default()
            },
            lease: None,
            session: None,
        };
        let items = vec![Queued { item, ask: 0 }];
        self.books.handle(Op::Settle { items }).unwrap();
        let delete = Op::KeyDelete {
            caller: Some("prov".into()),
            hash,
        };
        self.books.handle(delete).unwrap();
        self.churned += 1;
        self.books.store.now.set(step);
    }

    /// The account object's alarm: expiry, upkeep, and its outbox to the shards; then
    /// each shard's retention alarm, which deletes a shard whole once it is due.
    fn alarms(&mut self) {
        let now = self.now();
        self.books.expire_reservations().unwrap();
        self.books.housekeep().unwrap();
        let out = self.books.outbox().unwrap();
        let mut landed = Vec::new();
        for (day, r) in out {
            let s = self.shards.entry(day).or_insert_with(|| Shard {
                store: MemoryShard::default(),
            });
            landed.push(r.generation.id.clone());
            let op = ShardOp::Put {
                day,
                retention_days: RETENTION_DAYS,
                records: vec![r],
            };
            s.handle(op, now).unwrap();
        }
        self.books.landed(&landed).unwrap();
        let due: Vec<i64> = self
            .shards
            .keys()
            .copied()
            .filter(|d| shard::expires_ms(*d, RETENTION_DAYS) <= now)
            .collect();
        for d in due {
            self.shards.remove(&d);
            self.dropped_shards += 1;
        }
    }

    /// Every table against its bound.
    fn check(&self) {
        let s = self.books.store.state.borrow();
        let per_day = PER_STEP * (DAY_MS / STEP_MS) + DAY_MS / HOUR_MS;
        // The dedupe table: what the last `SETTLED_RETENTION_MS` settled (a batch a
        // step, a churned key's request an hour), and at most the batch the last upkeep
        // had not reached yet.
        let settled_bound = (PER_STEP * (SETTLED_RETENTION_MS / STEP_MS + 1) + PER_STEP)
            + SETTLED_RETENTION_MS / HOUR_MS
            + 1;
        assert!(
            s.settled.len() as u64 <= settled_bound,
            "settled: {} > {settled_bound}",
            s.settled.len()
        );
        assert!(s.outbox.is_empty(), "the outbox drains every alarm");
        // Entries: the retention's worth (a loss a step, an expired lease an hour), or
        // the newest MAX_ENTRIES (+ one upkeep's batch of arrivals).
        let entries_per_day = DAY_MS / STEP_MS + DAY_MS / HOUR_MS;
        let entries_bound = (entries_per_day * (RETENTION_DAYS + 1)).min(MAX_ENTRIES + PRUNE_BATCH);
        assert!(
            s.entries.len() as u64 <= entries_bound,
            "entries: {}",
            s.entries.len()
        );
        // Totals: the account's own, and what the keys deleted and the leases expired
        // within the dedupe retention and a lease TTL (+ the hour the last upkeep had
        // not reached yet) keep for late settlements: a limit and an unmatched hold.
        let churn_kept = (SETTLED_RETENTION_MS + LEASE_TTL_MS) / HOUR_MS + 2;
        let totals_bound = 5 + 2 * churn_kept;
        assert!(
            s.totals.len() as u64 <= totals_bound,
            "totals: {} > {totals_bound}",
            s.totals.len()
        );
        assert!(s.expiring.len() as u64 <= 2 * churn_kept);
        // Key totals: all-time, and the day, week and month rows a settlement can
        // still add to (the current period and the one before); a deleted key's four
        // while its limit is kept.
        let key_totals_bound = KEYS as u64 * 7 + 4 * churn_kept;
        assert!(
            s.key_totals.len() as u64 <= key_totals_bound,
            "key_totals: {} > {key_totals_bound}",
            s.key_totals.len()
        );
        assert!(s.reservations.is_empty() && s.leases.is_empty());
        // Shards: the days in the retention, today and the day before it ended.
        let live = self.shards.len() as u64;
        assert!(live <= RETENTION_DAYS + 2, "{live} shards");
        for (day, sh) in &self.shards {
            let t = sh.store.tables.borrow();
            let n = t.as_ref().map_or(0, |t| t.records.len() as u64);
            assert!(n <= per_day, "day {day}: {n} records");
            assert!(n <= shard::MAX_SHARD_RECORDS);
        }
    }
}

#[test]
fn sixty_days_of_traffic_keep_every_table_bounded() {
    let start = 20_000 * DAY_MS;
    let mut sim = Sim::new(start);
    let steps = DAYS * DAY_MS / STEP_MS;
    let mut records = 0u64;
    for step in 0..steps {
        if step % (HOUR_MS / STEP_MS) == 1 {
            sim.churn();
        }
        sim.settle();
        sim.alarms();
        sim.check();
        sim.books.store.now.set(sim.now() + STEP_MS);
        records += PER_STEP;
    }
    // Every record landed, and the days past the retention were dropped whole.
    assert_eq!(sim.dropped_shards, DAYS - RETENTION_DAYS - 1);
    let kept: u64 = sim
        .shards
        .values()
        .map(|s| s.store.tables.borrow().as_ref().unwrap().records.len() as u64)
        .sum();
    let per_day = PER_STEP * (DAY_MS / STEP_MS) + DAY_MS / HOUR_MS;
    assert_eq!(kept, per_day * (DAYS - sim.dropped_shards));
    assert!(records > kept);
    // Money is whole: usage is what every settlement was charged.
    let usage = sim.books.store.state.borrow().totals["usage"];
    assert_eq!(usage, u128::from(records + sim.churned) * 1_000_000);
    assert_eq!(sim.churned, DAYS * 24);
}

/// The batch the outbox's records were settled in, to send again.
fn batch_of(s: &super::memory::State) -> Vec<Queued> {
    s.outbox
        .iter()
        .map(|(_, r)| Queued {
            item: SettleItem {
                caller: r.key_hash.clone(),
                gen_id: r.generation.id.clone(),
                generation: r.generation.clone(),
                lease: None,
                session: None,
            },
            ask: 0,
        })
        .collect()
}

/// The settlements recorded as too late to charge (past the dedupe retention).
fn too_late(s: &super::memory::State) -> u64 {
    s.entries
        .iter()
        .filter(|e| e.note.contains("dedupe retention"))
        .count() as u64
}

impl Sim {
    /// Puts the outbox's records in their shards with the answer lost: the books do
    /// not learn that they landed.
    fn forward_unacknowledged(&mut self, now: u64) {
        for (day, r) in self.books.outbox().unwrap() {
            let s = self.shards.entry(day).or_insert_with(|| Shard {
                store: MemoryShard::default(),
            });
            let op = ShardOp::Put {
                day,
                retention_days: RETENTION_DAYS,
                records: vec![r],
            };
            s.handle(op, now).unwrap();
        }
    }
}

/// A retried batch (its answer lost) charges nothing twice, and a record forwarded
/// twice lands once; a settlement older than the dedupe retention is not charged but
/// recorded.
#[test]
fn retries_and_late_settlements_stay_exactly_once() {
    let mut sim = Sim::new(20_000 * DAY_MS);
    sim.settle();
    let s0 = sim.books.store.state.borrow().clone();
    // The same batch again: the object says it was settled.
    let items = batch_of(&s0);
    sim.books
        .handle(Op::Settle {
            items: items.clone(),
        })
        .unwrap();
    assert_eq!(sim.books.store.state.borrow().totals, s0.totals);
    assert_eq!(sim.books.store.state.borrow().outbox, s0.outbox);
    // Forwarded twice (the first answer lost): one record each in the shard.
    let now = sim.now();
    for _ in 0..2 {
        sim.forward_unacknowledged(now);
    }
    {
        let sh = sim.shards.values().next().unwrap();
        let t = sh.store.tables.borrow();
        let t = t.as_ref().unwrap();
        assert_eq!(t.records.len() as u64, PER_STEP);
        assert_eq!(t.daily.values().map(|d| d.requests).sum::<u64>(), PER_STEP);
    }
    // Two days later the dedupe rows are gone: a retry then is too late to charge.
    sim.books.store.now.set(now + 2 * DAY_MS);
    sim.books.housekeep().unwrap();
    assert!(sim.books.store.state.borrow().settled.is_empty());
    let usage = sim.books.store.state.borrow().totals["usage"];
    let loss = sim.books.store.state.borrow().totals["operator_loss"];
    sim.books
        .handle(Op::Settle {
            items: items.clone(),
        })
        .unwrap();
    let after = sim.books.store.state.borrow().clone();
    assert_eq!(after.totals["usage"], usage, "charged twice");
    // The one whose first settlement left an operator loss is known to have settled:
    // its cost is not recorded again as a loss.
    assert_eq!(
        too_late(&after),
        PER_STEP - 1,
        "a too-late settlement went unrecorded"
    );
    assert_eq!(
        after.totals["operator_loss"],
        loss + u128::from(PER_STEP - 1) * 1_000_000
    );
    // Sent again (its answer lost), a too-late settlement records its loss once.
    sim.books.handle(Op::Settle { items }).unwrap();
    let again = sim.books.store.state.borrow();
    assert_eq!(
        too_late(&again),
        PER_STEP - 1,
        "a too-late loss recorded twice"
    );
    assert_eq!(again.totals, after.totals);
    assert_eq!(again.entries.len(), after.entries.len());
}

/// A deleted key's limit is kept while the key holds anything (here a request renewed
/// for longer than the dedupe retention), and still caps its settlement; then it goes
/// with the key's totals, once no settlement can use them.
#[test]
fn a_deleted_keys_limit_stays_while_it_holds_then_goes() {
    let mut sim = Sim::new(20_000 * DAY_MS);
    let mut k = key("lim", KeyKind::Api);
    k.limit_picos = Some(5 * CHURN_COST);
    let create = Op::KeyCreate {
        caller: "prov".into(),
        key: k,
    };
    sim.books.handle(create).unwrap();
    let facts = PlanFacts {
        free: false,
        ask: Ask {
            reserve: 4 * CHURN_COST,
            ..Ask::default()
        },
    };
    let admit = Op::Admit(Admission {
        caller: "lim".into(),
        gen_id: "long".into(),
        free_windows: Vec::new(),
        rps: None,
        if_training: facts,
        if_private: facts,
        lease: false,
        session: None,
    });
    sim.books.handle(admit).unwrap();
    let delete = Op::KeyDelete {
        caller: Some("prov".into()),
        hash: "lim".into(),
    };
    sim.books.handle(delete).unwrap();
    let start = sim.now();
    // Renewed every step for two days: the limit stays.
    while sim.now() < start + 2 * DAY_MS {
        sim.books.store.now.set(sim.now() + STEP_MS);
        let renew = Op::Renew {
            gen_ids: vec!["long".into()],
        };
        sim.books.handle(renew).unwrap();
        sim.alarms();
    }
    assert!(sim
        .books
        .store
        .state
        .borrow()
        .totals
        .contains_key("deleted-limit:lim"));
    // It settles within the limit it had: the rest is the operator's loss.
    let item = SettleItem {
        caller: "lim".into(),
        gen_id: "long".into(),
        generation: Generation {
            id: "long".into(),
            cost_picos: 7 * CHURN_COST,
            created_ms: start,
            ..Generation::default()
        },
        lease: None,
        session: None,
    };
    let items = vec![Queued { item, ask: 0 }];
    sim.books.handle(Op::Settle { items }).unwrap();
    {
        let s = sim.books.store.state.borrow();
        assert_eq!(s.totals["operator_loss"], u128::from(2 * CHURN_COST));
        assert!(s.key_totals.keys().any(|(k, _)| k == "lim"));
    }
    // Nothing held: at the next look (a hold TTL later) its rows go.
    sim.books.store.now.set(sim.now() + 16 * 60_000);
    sim.alarms();
    let s = sim.books.store.state.borrow();
    assert!(!s.totals.contains_key("deleted-limit:lim"));
    assert!(s.expiring.is_empty(), "{:?}", s.expiring);
    assert!(!s.key_totals.keys().any(|(k, _)| k == "lim"));
}
