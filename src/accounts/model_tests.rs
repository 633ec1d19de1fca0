//! Model-based tests of the books: random interleavings, over several simulated
//! isolates (each with the real [`LeaseBook`]), of admissions, lease grants, renewals,
//! returns and expiries, settlements costing below, at and above their holds, key
//! changes, grants, storage errors injected at any call, and isolates that die; after
//! every step the books' invariants are checked against the store's rows.
#![allow(clippy::arithmetic_side_effects)]

use proptest::prelude::*;

use super::books::{Books, Config};
use super::lease::{LeaseBook, Policy, Ticket};
use super::ledger::Ask;
use super::memory::{MemoryShard, MemoryStore, State};
use super::ops::{Admission, KeyPatch, Op, PlanFacts, Queued, Reply, SettleItem};
use super::records::{Generation, KeyKind, KeyRecord};
use super::session::SessionRow;
use super::shard::{self, Shard, ShardOp};
use super::store::Result;
use crate::api::session::{SessionAsk, SessionLimits};

const ISOLATES: usize = 3;
const KEYS: usize = 3;
/// What an isolate's knowledge of a key may be old (`KEY_CACHE_MS`).
const FRESH_MS: u64 = 10_000;
const RESERVATION_TTL_MS: u64 = 60_000;
const LEASE_TTL_MS: u64 = 2 * FRESH_MS + 1000;
/// A minute before a UTC midnight, so that daily limits reset mid-run.
const START_MS: u64 = 20_783 * 86_400_000 - 60_000;

fn config() -> Config {
    Config {
        retention_days: 30,
        settled_retention_ms: 86_400_000,
        reservation_ttl_ms: RESERVATION_TTL_MS,
        lease_ttl_ms: LEASE_TTL_MS,
        lease_policy: Policy {
            max: 100_000_000_000,
            min: 100_000_000,
            divisor: 8,
        },
    }
}

fn key_hash(k: usize) -> String {
    format!("k{k}")
}

/// What a finished request cost, against its worst case.
#[derive(Debug, Clone, Copy)]
pub enum Cost {
    /// A share (per 256) of it.
    Below(u8),
    At,
    /// Its worst case and this many 256ths more.
    Above(u16),
}

#[derive(Debug, Clone)]
pub enum KeyChange {
    Rename,
    Disable,
    Enable,
    Delete,
    Restore,
    Limit(Option<u64>),
}

#[derive(Debug, Clone)]
pub enum Step {
    Admit {
        iso: usize,
        key: usize,
        ask: u64,
        lease: bool,
    },
    /// A request of session `session`, asking for a `max_cost` (which can only lower
    /// the session's).
    Session {
        iso: usize,
        key: usize,
        ask: u64,
        session: usize,
        max_cost: Option<u64>,
    },
    Finish {
        iso: usize,
        pick: usize,
        cost: Cost,
    },
    Deliver {
        iso: usize,
    },
    Renew {
        iso: usize,
        key: usize,
        top_up: bool,
        release: bool,
    },
    Touch {
        iso: usize,
    },
    Advance {
        ms: u64,
    },
    Key {
        key: usize,
        change: KeyChange,
        by_operator: bool,
    },
    Grant {
        picos: u64,
    },
    /// The next operation's `nth` storage call fails.
    Fail {
        nth: u64,
    },
    Crash {
        iso: usize,
    },
    /// Sends the isolate's last delivered batch again.
    Resend {
        iso: usize,
    },
    /// The object forwards its outbox to the day shards; `lost_ack`: they take the
    /// records, but the object fails to drop them from the outbox (they go again).
    Forward {
        lost_ack: bool,
    },
}

/// A request running in an isolate.
#[derive(Debug, Clone)]
struct Running {
    key: String,
    gen_id: String,
    ask: u64,
    ticket: Option<Ticket>,
    session: Option<String>,
}

#[derive(Default)]
struct Isolate {
    book: LeaseBook,
    running: Vec<Running>,
    queue: Vec<Queued>,
    last_batch: Vec<Queued>,
}

struct Model {
    books: Books<MemoryStore>,
    /// The account's day shards.
    shards: std::collections::BTreeMap<i64, Shard<MemoryShard>>,
    isolates: Vec<Isolate>,
    next_gen: u64,
    /// Per key: the least its spending may be held to (what it had spent when its
    /// limit was lowered under that).
    floor: Vec<u128>,
    /// Requests admitted with a reservation of their own.
    reserved_gens: Vec<String>,
    /// The limits the keys were made with, to restore them.
    made: Vec<KeyRecord>,
    /// Each key's limit as last set (kept when the key is deleted).
    limits: Vec<Option<u64>>,
    /// Requests admitted against a lease: (lease, generation, worst case).
    leased_gens: Vec<(String, String, u64)>,
    /// Per session: the requests admitted in it, and the least its spending may be
    /// held to (what it had spent when a request lowered its `max_cost` under that).
    session_admits: std::collections::BTreeMap<String, (Vec<String>, u128)>,
}

fn store_state(b: &Books<MemoryStore>) -> State {
    b.store.state.borrow().clone()
}

impl Model {
    fn new(credits: u64, limits: [Option<u64>; KEYS]) -> Self {
        let store = MemoryStore::default();
        store.now.set(START_MS);
        let books = Books::new(store, config());
        let mut keys = vec![key_record("prov", KeyKind::Provisioning, None)];
        keys.extend((0..KEYS).map(|k| key_record(&key_hash(k), KeyKind::Api, limits[k])));
        // The last key's limit is daily.
        keys[KEYS].limit_reset = Some(super::ledger::LimitReset::Daily);
        let made = keys.clone();
        let init = Op::Init {
            id: "acc".into(),
            name: "acc".into(),
            allow_training: true,
            credits,
            keys,
        };
        books.handle(init).unwrap();
        Model {
            books,
            shards: Default::default(),
            isolates: (0..ISOLATES).map(|_| Isolate::default()).collect(),
            next_gen: 0,
            floor: vec![0; KEYS],
            reserved_gens: Vec::new(),
            made,
            limits: limits.to_vec(),
            leased_gens: Vec::new(),
            session_admits: Default::default(),
        }
    }

    fn now(&self) -> u64 {
        self.books.store.now.get()
    }

    /// Runs `op` in a transaction; a failed one must have changed nothing.
    fn run(&mut self, op: Op) -> Result<Reply> {
        let before = store_state(&self.books);
        let books = &self.books;
        let r = books.store.atomically(|| books.handle(op));
        self.books.store.fail_at.set(None);
        if r.is_err() {
            assert!(
                store_state(&self.books) == before,
                "a failed operation changed the books"
            );
        }
        r
    }

    fn step(&mut self, s: Step) {
        match s {
            Step::Admit {
                iso,
                key,
                ask,
                lease,
            } => self.admit(iso, key, ask, lease),
            Step::Session {
                iso,
                key,
                ask,
                session,
                max_cost,
            } => self.admit_in_session(iso, key, ask, session, max_cost),
            Step::Finish { iso, pick, cost } => self.finish(iso, pick, cost),
            Step::Deliver { iso } => self.deliver(iso),
            Step::Renew {
                iso,
                key,
                top_up,
                release,
            } => self.renew(iso, key, top_up, release),
            Step::Touch { iso } => {
                let gen_ids = self.isolates[iso]
                    .running
                    .iter()
                    .filter(|r| r.ticket.is_none())
                    .map(|r| r.gen_id.clone())
                    .collect();
                let _ = self.run(Op::Renew { gen_ids });
            }
            Step::Advance { ms } => self.advance(ms),
            Step::Key {
                key,
                change,
                by_operator,
            } => self.key_change(key, change, by_operator),
            Step::Grant { picos } => {
                let _ = self.run(Op::Grant {
                    picos,
                    note: "top-up".into(),
                });
            }
            Step::Fail { nth } => {
                let calls = self.books.store.calls.get();
                self.books.store.fail_at.set(Some(calls + nth));
            }
            Step::Crash { iso } => self.isolates[iso] = Isolate::default(),
            Step::Resend { iso } => self.resend(iso),
            Step::Forward { lost_ack } => self.forward(lost_ack),
        }
    }

    /// What the object's adapter does after a settlement and on its alarm: each day's
    /// records to its shard, then drops what landed from the outbox.
    fn forward(&mut self, lost_ack: bool) {
        let books = &self.books;
        let Ok(out) = books.store.atomically(|| books.outbox()) else {
            self.books.store.fail_at.set(None);
            return;
        };
        let mut landed = Vec::new();
        for (day, r) in out {
            let s = self.shards.entry(day).or_insert_with(|| Shard {
                store: MemoryShard::default(),
            });
            let op = ShardOp::Put {
                day,
                retention_days: 30,
                records: vec![r.clone()],
            };
            let reply = s.handle(op, self.books.store.now.get()).unwrap();
            assert_eq!(reply["landed"], 1);
            landed.push(r.generation.id);
        }
        if !lost_ack {
            let books = &self.books;
            let _ = books.store.atomically(|| books.landed(&landed));
            self.books.store.fail_at.set(None);
        }
    }

    /// Every settled generation's record, by ID: landed in its shard, or still in the
    /// outbox; each in the shard of its ID's day, once.
    fn records(&self) -> Records {
        let mut all = std::collections::BTreeMap::new();
        for (day, s) in &self.shards {
            let t = s.store.tables.borrow();
            let t = t.as_ref().unwrap();
            let with_provider = t.records.len() as u64;
            let counted: u64 = t.daily.values().map(|d| d.requests).sum();
            assert_eq!(counted, with_provider, "day {day}: a record counted twice");
            for (id, (_, _, r)) in &t.records {
                let r = r.clone().unwrap();
                assert_eq!(shard::day_of_id(id), Some(*day), "{id} in the wrong shard");
                all.insert(id.clone(), (r.key_hash, r.generation, r.charged));
            }
        }
        let s = store_state(&self.books);
        let mut queued = std::collections::BTreeSet::new();
        for (_, r) in &s.outbox {
            assert!(queued.insert(r.generation.id.clone()), "queued twice");
            let id = r.generation.id.clone();
            if let Some(landed) = all.get(&id) {
                assert_eq!(landed.2, r.charged, "{id}: landed differs from queued");
            }
            all.insert(id, (r.key_hash.clone(), r.generation.clone(), r.charged));
        }
        for id in all.keys() {
            assert!(s.settled.contains_key(id), "{id}: recorded, not settled");
        }
        all
    }

    fn admit(&mut self, iso: usize, key: usize, ask: u64, lease: bool) {
        let hash = key_hash(key);
        self.next_gen += 1;
        let gen_id = format!("gen-{}-{}", self.now() / 1000, self.next_gen);
        let now = self.now();
        let i = &mut self.isolates[iso];
        if let Some(t) = i.book.admit(&hash, ask, now, FRESH_MS) {
            let admitted = (t.lease_id.clone(), gen_id.clone(), ask);
            self.leased_gens.push(admitted);
            i.running.push(Running {
                key: hash,
                gen_id,
                ask,
                ticket: Some(t),
                session: None,
            });
            return;
        }
        let facts = PlanFacts {
            free: false,
            ask: Ask {
                reserve: ask,
                ..Ask::default()
            },
        };
        let wants_lease = lease && i.book.get(&hash).is_none();
        let op = Op::Admit(Admission {
            caller: hash.clone(),
            gen_id: gen_id.clone(),
            free_windows: Vec::new(),
            rps: None,
            if_training: facts,
            if_private: facts,
            lease: wants_lease,
            session: None,
        });
        let Ok(Reply::Admitted(a)) = self.run(op) else {
            return;
        };
        assert!(a.refused.is_none());
        if let Some(g) = &a.lease {
            self.isolates[iso].book.granted(&hash, "acc", g, now);
        }
        self.reserved_gens.push(gen_id.clone());
        self.isolates[iso].running.push(Running {
            key: hash,
            gen_id,
            ask,
            ticket: None,
            session: None,
        });
    }

    fn finish(&mut self, iso: usize, pick: usize, cost: Cost) {
        let now = self.now();
        let i = &mut self.isolates[iso];
        if i.running.is_empty() {
            return;
        }
        let r = i.running.remove(pick % i.running.len());
        let cost = match cost {
            Cost::Below(share) => r.ask / 256 * u64::from(share),
            Cost::At => r.ask,
            Cost::Above(more) => r.ask + r.ask / 256 * u64::from(more),
        };
        if let Some(t) = &r.ticket {
            i.book.finish(&r.key, t, cost, now);
        }
        let generation = Generation {
            id: r.gen_id.clone(),
            model: "m".into(),
            provider: Some("p".into()),
            cost_picos: cost,
            created_ms: now,
            ..Generation::default()
        };
        i.queue.push(Queued {
            item: SettleItem {
                caller: r.key,
                gen_id: r.gen_id,
                generation,
                lease: r.ticket.as_ref().map(|t| t.lease_id.clone()),
                session: r.session.clone(),
            },
            ask: r.ticket.map_or(0, |t| t.ask),
        });
    }

    fn deliver(&mut self, iso: usize) {
        let items = self.isolates[iso].queue.clone();
        if items.is_empty() {
            return;
        }
        if self
            .run(Op::Settle {
                items: items.clone(),
            })
            .is_ok()
        {
            let i = &mut self.isolates[iso];
            i.queue.clear();
            i.last_batch = items;
        }
    }

    fn resend(&mut self, iso: usize) {
        let items = self.isolates[iso].last_batch.clone();
        if items.is_empty() {
            return;
        }
        let before = store_state(&self.books);
        if self.run(Op::Settle { items }).is_ok() {
            let after = store_state(&self.books);
            assert_eq!(
                after.totals, before.totals,
                "a repeated settlement changed totals"
            );
            assert_eq!(after.entries, before.entries);
            assert!(after.outbox == before.outbox && after.settled == before.settled);
            assert_eq!(after.leases, before.leases);
        }
    }

    fn renew(&mut self, iso: usize, key: usize, top_up: bool, release: bool) {
        let hash = key_hash(key);
        let now = self.now();
        let i = &mut self.isolates[iso];
        let Some(l) = i.book.get(&hash).cloned() else {
            return;
        };
        if release {
            i.book.surrender(&hash);
        }
        let settle = i.queue.clone();
        let op = Op::Lease {
            caller: hash.clone(),
            lease_id: l.id.clone(),
            in_flight: l.in_flight_picos,
            admitted: Some(l.admitted),
            top_up,
            release,
            settle,
        };
        match self.run(op) {
            Ok(reply) => {
                let i = &mut self.isolates[iso];
                i.last_batch = std::mem::take(&mut i.queue);
                let Reply::Lease(state) = reply else {
                    panic!("a lease answered {reply:?}")
                };
                match state.lease {
                    Some(g) if !state.revoked => i.book.granted(&hash, "acc", &g, now),
                    _ => i.book.revoke(&hash, &l.id),
                }
            }
            Err(_) => self.isolates[iso].book.renewal_failed(&hash, &l.id),
        }
    }

    fn advance(&mut self, ms: u64) {
        let now = self.now() + ms;
        self.books.store.now.set(now);
        // The object's alarm.
        let before = store_state(&self.books);
        let books = &self.books;
        let r = books.store.atomically(|| books.expire_reservations());
        self.books.store.fail_at.set(None);
        if r.is_ok() {
            let s = store_state(&self.books);
            self.check_expired_leases(&before, &s);
            for (id, (_, _, at)) in &s.reservations {
                assert!(
                    *at >= now - RESERVATION_TTL_MS,
                    "reservation {id} outlived its TTL"
                );
            }
            for (id, (l, at)) in &s.leases {
                let ttl = if l.closing {
                    RESERVATION_TTL_MS
                } else {
                    LEASE_TTL_MS
                };
                assert!(*at >= now - ttl, "lease {id} outlived its TTL");
            }
        }
    }

    /// Each lease the alarm expired recorded what the requests admitted against it and
    /// never settled could still owe (their worst cases, as far as it held them),
    /// whether or not its isolate had reported them: none was released silently.
    fn check_expired_leases(&self, before: &State, after: &State) {
        for (id, (l, _)) in before.leases.iter() {
            if after.leases.contains_key(id) {
                continue;
            }
            let unsettled: u64 = self
                .leased_gens
                .iter()
                .filter(|(lease, g, _)| lease == id && !after.settled.contains_key(g))
                .map(|(_, _, ask)| ask)
                .sum();
            let recorded: u128 = after
                .entries
                .iter()
                .filter(|e| e.kind == "expired_hold" && e.gen_id == *id)
                .map(|e| e.picos)
                .sum();
            assert!(
                recorded >= u128::from(unsettled.min(l.amount)),
                "lease {id} expired recording {recorded} of the {unsettled} its requests could owe"
            );
        }
    }

    fn key_change(&mut self, key: usize, change: KeyChange, by_operator: bool) {
        let hash = key_hash(key);
        let caller = (!by_operator).then(|| "prov".to_string());
        let patch = |p: KeyPatch| Op::KeyUpdate {
            caller: caller.clone(),
            hash: hash.clone(),
            patch: p,
        };
        let spent = self.spent(&hash);
        let op = match change {
            KeyChange::Rename => patch(KeyPatch {
                name: Some("renamed".into()),
                ..KeyPatch::default()
            }),
            KeyChange::Disable | KeyChange::Enable => patch(KeyPatch {
                disabled: Some(matches!(change, KeyChange::Disable)),
                ..KeyPatch::default()
            }),
            KeyChange::Delete => Op::KeyDelete {
                caller: caller.clone(),
                hash: hash.clone(),
            },
            KeyChange::Restore => {
                if store_state(&self.books).keys.contains_key(&hash) {
                    return;
                }
                Op::AddKey {
                    key: self.made[key + 1].clone(),
                }
            }
            KeyChange::Limit(l) => patch(KeyPatch {
                limit: Some(l),
                ..KeyPatch::default()
            }),
        };
        let limit = match change {
            KeyChange::Limit(l) => Some(l),
            KeyChange::Restore => Some(self.made[key + 1].limit_picos),
            _ => None,
        };
        if self.run(op).is_ok() {
            if let Some(l) = limit {
                self.floor[key] = self.floor[key].max(spent);
                self.limits[key] = l;
            }
        }
    }

    fn spent(&self, hash: &str) -> u128 {
        let s = store_state(&self.books);
        let k = (hash.to_string(), "all".to_string());
        s.key_totals.get(&k).copied().unwrap_or(0)
    }

    /// The books' invariants, from the store's rows.
    fn check(&self) {
        let s = store_state(&self.books);
        let records = self.records();
        check_totals(&s, &records);
        check_charges(&s, &records);
        self.check_limits(&s);
        self.check_sessions(&s, &records);
        let expired: u128 = s
            .entries
            .iter()
            .filter(|e| e.kind == "expired_hold")
            .map(|e| e.picos)
            .sum();
        assert!(s.totals.get("expired_holds").copied().unwrap_or(0) <= expired);
        for id in &self.reserved_gens {
            let recorded = s
                .entries
                .iter()
                .any(|e| e.kind == "expired_hold" && e.gen_id == *id);
            let held = s.reservations.contains_key(id) || records.contains_key(id);
            assert!(held || recorded, "{id}: its hold was released silently");
        }
    }

    /// No key spent past its limit (the last key's is daily), nor a deleted key's past
    /// the limit it had.
    fn check_limits(&self, s: &State) {
        for k in 0..KEYS {
            let hash = key_hash(k);
            // A deleted key's requests still settle within the limit it had.
            let limit = s.keys.get(&hash).map_or(self.limits[k], |r| r.limit_picos);
            assert_eq!(limit, self.limits[k]);
            if let (Some(limit), true) = (limit, k == KEYS - 1) {
                for ((h, p), v) in &s.key_totals {
                    if h == &hash && p.starts_with("d:") {
                        assert!(
                            *v <= u128::from(limit).max(self.floor[k]),
                            "{hash} past its daily limit in {p}"
                        );
                    }
                }
            } else if let Some(limit) = limit {
                let spent = self.spent(&hash);
                assert!(
                    spent <= u128::from(limit).max(self.floor[k]),
                    "{hash} past its limit"
                );
            }
        }
    }
}

/// The generations' records, by ID: (key, record, charged).
type Records = std::collections::BTreeMap<String, (String, Generation, u64)>;

/// The account's totals against its rows: credits granted, holds reserved, usage
/// charged, and never more spent and held than granted.
fn check_totals(s: &State, records: &Records) {
    let total = |n: &str| s.totals.get(n).copied().unwrap_or(0);
    let (credits, usage, reserved) = (total("credits"), total("usage"), total("reserved"));
    let granted: u128 = s.grants.iter().map(|g| u128::from(g.0)).sum();
    assert_eq!(credits, granted, "credits are what was granted");
    let holds: u128 = s
        .reservations
        .values()
        .map(|r| u128::from(r.1))
        .sum::<u128>()
        + s.leases
            .values()
            .map(|l| u128::from(l.0.amount))
            .sum::<u128>();
    assert_eq!(reserved, holds, "reserved is what the holds hold");
    assert_eq!(
        records.len(),
        s.settled.len(),
        "a settlement without its record"
    );
    let charged: u128 = records.values().map(|g| u128::from(g.2)).sum();
    assert_eq!(usage, charged, "usage is what the generations were charged");
    assert!(
        usage + reserved <= credits,
        "spent and held past the credits"
    );
}

/// Every generation's cost is what it was charged plus the operator's recorded loss.
fn check_charges(s: &State, records: &Records) {
    let losses = |gen: &str| -> u128 {
        s.entries
            .iter()
            .filter(|e| e.kind == "operator_loss" && (gen.is_empty() || e.gen_id == gen))
            .map(|e| e.picos)
            .sum()
    };
    assert_eq!(
        s.totals.get("operator_loss").copied().unwrap_or(0),
        losses("")
    );
    for (id, (_, g, charged)) in records {
        let billed = u128::from(*charged) + losses(id);
        assert_eq!(
            billed,
            u128::from(g.cost_picos),
            "{id}: an excess went unrecorded"
        );
    }
}

fn cost() -> impl Strategy<Value = Cost> {
    prop_oneof![
        any::<u8>().prop_map(Cost::Below),
        Just(Cost::At),
        (1u16..=512).prop_map(Cost::Above),
    ]
}

fn key_change() -> impl Strategy<Value = KeyChange> {
    prop_oneof![
        Just(KeyChange::Rename),
        Just(KeyChange::Disable),
        Just(KeyChange::Enable),
        Just(KeyChange::Delete),
        Just(KeyChange::Restore),
        proptest::option::of(0u64..=200_000_000_000).prop_map(KeyChange::Limit),
    ]
}

fn step() -> impl Strategy<Value = Step> {
    let iso = 0..ISOLATES;
    prop_oneof![
        6 => (iso.clone(), 0..KEYS, 1_000_000u64..=20_000_000_000, any::<bool>())
            .prop_map(|(iso, key, ask, lease)| Step::Admit { iso, key, ask, lease }),
        8 => (iso.clone(), any::<usize>(), cost()).prop_map(|(iso, pick, cost)| Step::Finish { iso, pick, cost }),
        5 => iso.clone().prop_map(|iso| Step::Deliver { iso }),
        3 => (iso.clone(), 0..KEYS, any::<bool>(), proptest::bool::weighted(0.2))
            .prop_map(|(iso, key, top_up, release)| Step::Renew { iso, key, top_up, release }),
        1 => iso.clone().prop_map(|iso| Step::Touch { iso }),
        3 => prop_oneof![3 => 0u64..=5_000, 1 => 5_000u64..=90_000].prop_map(|ms| Step::Advance { ms }),
        1 => (0..KEYS, key_change(), any::<bool>())
            .prop_map(|(key, change, by_operator)| Step::Key { key, change, by_operator }),
        1 => (1u64..=100_000_000_000).prop_map(|picos| Step::Grant { picos }),
        2 => (1u64..=40).prop_map(|nth| Step::Fail { nth }),
        1 => iso.clone().prop_map(|iso| Step::Crash { iso }),
        1 => iso.clone().prop_map(|iso| Step::Resend { iso }),
        4 => (iso, 0..KEYS, 1_000_000u64..=20_000_000_000, 0..2usize, proptest::option::weighted(0.3, 1_000_000_000u64..=60_000_000_000))
            .prop_map(|(iso, key, ask, session, max_cost)| Step::Session { iso, key, ask, session, max_cost }),
        3 => proptest::bool::weighted(0.2).prop_map(|lost_ack| Step::Forward { lost_ack }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(384))]

    #[test]
    fn the_books_balance_under_any_interleaving(
        credits in 1_000_000_000u64..=1_000_000_000_000,
        limits in proptest::array::uniform3(proptest::option::of(1_000_000_000u64..=300_000_000_000)),
        steps in proptest::collection::vec(step(), 1..200),
    ) {
        let mut m = Model::new(credits, limits);
        m.check();
        for s in steps {
            m.step(s);
            m.check();
        }
        // Every record lands, once, in its day's shard.
        m.books.store.fail_at.set(None);
        m.forward(false);
        m.check();
        assert!(store_state(&m.books).outbox.is_empty(), "the outbox did not drain");
    }
}

/// Chosen scenarios, and the session steps, on the same model.
mod keys;
mod scenario_tests;
mod session_steps;
pub(super) use keys::key_record;
