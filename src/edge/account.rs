//! The `Account` Durable Object: one per account, a thin adapter over its books
//! ([`crate::accounts::books`]): it decodes the message, runs it in one SQLite
//! transaction over [`sql_store::SqlStore`], keeps the expiry alarm, and encodes the
//! reply. A model call is admitted either here (`admit`: key, limits and reservation in
//! one round trip, which may also grant the isolate a lease) or, when its isolate holds
//! a fresh lease that covers it, in the isolate without coming here
//! ([`crate::accounts::lease`]); settlements come after the reply, in batches, off the
//! hot path (`settle`).
//!
//! The worker talks to it with `{"op": ..}` JSON; it answers the op's reply
//! ([`crate::accounts::ops::Reply`]) or the error, as every object does
//! ([`super::objects`]), and [`call`] is the worker's client of it.

mod sql_byok;
mod sql_presets;
mod sql_schema;
mod sql_sessions;
mod sql_store;

use serde::de::DeserializeOwned;
use serde_json::{json, Value};
use worker::{durable_object, DurableObject, Env, Request, Response, Result, State};

use super::config;
use crate::accounts::books::{Books, Config};
use crate::accounts::lease;
pub use crate::accounts::ops::{
    Admission, Admitted, KeyPatch, LeaseState, Op, PlanFacts, Privacy, Queued, Reply, SettleItem,
    MAX_GENERATIONS_LISTED, MAX_SETTLE_BATCH,
};
use crate::accounts::shard::{Record, ShardOp, MAX_PUT_BATCH};
use crate::accounts::store::Store;
use crate::error::Error;
use sql_store::SqlStore;
use std::cell::{Cell, RefCell};
use std::rc::Rc;

/// Reservations older than this are dropped: their request died without settling.
const RESERVATION_TTL_MS: u64 = 15 * 60 * 1000;
/// Leases neither renewed nor returned for this long expire (`LEASE_TTL_MS`): their
/// isolate is gone.
const LEASE_TTL_MS: u64 = 60 * 1000;
/// A settled generation's ID is remembered this long (`SETTLED_RETENTION_MS`): far
/// longer than any hold lives (a reservation's 15 minutes, renewed while its request
/// runs; a lease's minute), so a retried or late settlement is matched; a settlement
/// of a generation older than this is not charged but recorded as the operator's loss.
const SETTLED_RETENTION_MS: u64 = 24 * 3_600_000;
/// How soon the alarm comes back for records its forwarding left in the outbox.
const OUTBOX_RETRY_MS: u64 = 10_000;
/// How often the alarm's upkeep runs while there is nothing else to do.
const UPKEEP_MS: u64 = 3_600_000;

type Ledger = Books<SqlStore>;

#[durable_object]
pub struct Account {
    /// Shared, so that a transaction's callback (which must own what it uses) can hold it.
    books: Rc<Ledger>,
    storage: worker::Storage,
    /// Test-only (`TEST_FAIL_SETTLES`): settles this instance refuses first.
    fail_settles: Cell<u64>,
    /// When this instance's expiry alarm is due, if it set one: setting an alarm is a
    /// storage write, so admissions set it only when none is pending.
    alarm_at: Cell<Option<u64>>,
    env: Env,
    /// The account's ID (it names its record shards), read once.
    account_id: RefCell<Option<String>>,
    /// A forwarding of the outbox is under way (one at a time: it reads on until the
    /// outbox is empty, so what settles meanwhile goes with it).
    forwarding: Cell<bool>,
}

fn settings(env: &Env) -> Config {
    let d = lease::Policy::default();
    let reservation_ttl_ms = config::u64(env, "RESERVATION_TTL_MS", RESERVATION_TTL_MS).max(1000);
    Config {
        retention_days: config::u64(env, "GENERATION_RETENTION_DAYS", 30).max(1),
        settled_retention_ms: config::u64(env, "SETTLED_RETENTION_MS", SETTLED_RETENTION_MS)
            .max(reservation_ttl_ms.saturating_mul(4)),
        reservation_ttl_ms,
        // Longer than twice what an isolate may go without renewing a lease it uses,
        // so that no lease in use expires.
        lease_ttl_ms: config::u64(env, "LEASE_TTL_MS", LEASE_TTL_MS).max(
            config::u64(env, "KEY_CACHE_MS", super::admission::DEFAULT_KEY_CACHE_MS)
                .saturating_mul(2)
                .saturating_add(1000),
        ),
        lease_policy: lease::Policy {
            max: config::u64(env, "LEASE_MAX_PICOS", d.max),
            min: config::u64(env, "LEASE_MIN_PICOS", d.min),
            divisor: d.divisor,
        },
    }
}

impl DurableObject for Account {
    fn new(state: State, env: Env) -> Self {
        // Tables are made by `Init` only, so that a request naming an account that
        // does not exist leaves no storage behind.
        let store = SqlStore::new(
            state.storage().sql(),
            config::test_hook(&env, "TEST_FAIL_SETTLE_RECORDS"),
        );
        Account {
            books: Rc::new(Books::new(store, settings(&env))),
            storage: state.storage(),
            fail_settles: Cell::new(config::test_hook(&env, "TEST_FAIL_SETTLES")),
            alarm_at: Cell::new(None),
            env,
            account_id: RefCell::new(None),
            forwarding: Cell::new(false),
        }
    }

    async fn fetch(&self, mut req: Request) -> Result<Response> {
        // Parsed by serde_json from the text: JavaScript's JSON.parse would turn
        // picodollar amounts above 2^53 into inexact floats.
        let answer = match req.text().await {
            Ok(text) => match Op::from_wire(&text) {
                Ok(op) => {
                    let holds = matches!(op, Op::Admit(_) | Op::Lease { .. });
                    let settles = settles(&op);
                    let answer = self.run(op);
                    if settles && answer.is_ok() {
                        // The committed records go to their day shards now; what does
                        // not land waits in the outbox for the alarm.
                        self.forward().await;
                    }
                    let now = self.books.store.now_ms();
                    let pending = self.alarm_at.get().is_some_and(|at| at > now);
                    if (holds || settles) && answer.is_ok() && !pending {
                        // Holds that are never settled, renewed or returned expire by
                        // this alarm even when no other request comes; it re-arms
                        // while holds, queued records or upkeep remain.
                        self.arm_alarm(self.hold_alarm_ms()).await;
                    }
                    answer
                }
                Err(e) => Err(Error::Internal(format!("account: bad op: {e}"))),
            },
            Err(e) => Err(Error::Internal(format!("account: unreadable op: {e}"))),
        };
        super::objects::answer(answer, super::objects::Shape::Answer)
    }

    async fn alarm(&self) -> Result<Response> {
        self.alarm_at.set(None);
        let left = self
            .atomically(Box::new(|b| {
                if !b.store.exists()? {
                    return Ok(Reply::View(Value::Null));
                }
                sql_store::ensure_totals(b)?;
                // Each expiry (its entry, the hold's row and the totals) lands whole.
                b.expire_reservations()?;
                b.housekeep()?;
                let holds = b.store.hold_count()?;
                Ok(Reply::View(json!([holds, b.store.has_upkeep()?])))
            }))
            .map_or(Value::Null, |r| match r {
                Reply::View(v) => v,
                _ => Value::Null,
            });
        if left.is_null() {
            return Response::empty();
        }
        self.forward().await;
        let holds = left.get(0).and_then(Value::as_u64).unwrap_or(0);
        let upkeep = left.get(1).and_then(Value::as_bool).unwrap_or(false);
        let queued = self.books.store.outbox_len().unwrap_or(0);
        let after = if holds > 0 {
            Some(self.hold_alarm_ms())
        } else if queued > 0 {
            Some(OUTBOX_RETRY_MS)
        } else {
            upkeep.then_some(UPKEEP_MS)
        };
        if let Some(after) = after {
            self.arm_alarm(after).await;
        }
        Response::empty()
    }
}

/// Whether `op` settles anything (its records then go to their shards).
fn settles(op: &Op) -> bool {
    match op {
        Op::Settle { items } => !items.is_empty(),
        Op::Lease { settle, .. } => !settle.is_empty(),
        _ => false,
    }
}

/// A change made by [`Account::atomically`].
type Atomic = Box<dyn FnOnce(&Ledger) -> std::result::Result<Reply, Error>>;

impl Account {
    /// Answers one message, all of whose writes land together or not at all.
    fn run(&self, op: Op) -> std::result::Result<Reply, Error> {
        let settles = settles(&op);
        let injected = self.fail_settles.get();
        if settles && injected > 0 {
            self.fail_settles.set(injected.saturating_sub(1));
            return Err(Error::Internal(
                "account: injected settle failure (TEST_FAIL_SETTLES)".into(),
            ));
        }
        if !self.books.store.ready.get() && !matches!(op, Op::Init { .. }) {
            // The migration of an older account lands on its own, whatever `op` does.
            self.atomically(Box::new(|b| {
                if b.store.exists()? {
                    sql_store::ensure_totals(b)?;
                }
                Ok(Reply::View(Value::Null))
            }))?;
        }
        self.atomically(Box::new(move |b| b.handle(op)))
    }

    /// Runs `f` in one SQLite transaction (the storage's `transactionSync`): what it
    /// writes lands together or, when it fails, not at all, so that a batch retried
    /// after a storage error charges nothing twice and releases every hold once.
    /// (`f` is boxed: one copy of the JavaScript glue for every caller.)
    fn atomically(&self, f: Atomic) -> std::result::Result<Reply, Error> {
        let books = Rc::clone(&self.books);
        super::sql::transaction(&self.storage, Box::new(move || f(&books)))
    }

    /// When the first hold could have expired.
    fn hold_alarm_ms(&self) -> u64 {
        let cfg = &self.books.cfg;
        cfg.reservation_ttl_ms
            .min(cfg.lease_ttl_ms)
            .saturating_add(1000)
    }

    /// Sets the alarm `after` ms from now.
    async fn arm_alarm(&self, after: u64) {
        if self.storage.set_alarm(after as i64).await.is_ok() {
            let now = self.books.store.now_ms();
            self.alarm_at.set(Some(now.saturating_add(after)));
        }
    }

    /// The account's ID, read once.
    fn account_id(&self) -> Option<String> {
        if self.account_id.borrow().is_none() {
            let id = self.books.store.account().ok().flatten().map(|a| a.id);
            *self.account_id.borrow_mut() = id;
        }
        self.account_id.borrow().clone()
    }

    /// Sends the outbox's records to their day shards (each keeps a record once, so a
    /// record sent twice, after a lost answer, lands once), and drops from the outbox
    /// what landed. What fails stays for the alarm.
    async fn forward(&self) {
        /// Clears the flag however the forwarding ends (a cancelled call included).
        struct Done<'a>(&'a Cell<bool>);
        impl Drop for Done<'_> {
            fn drop(&mut self) {
                self.0.set(false);
            }
        }
        if self.forwarding.replace(true) {
            return;
        }
        let _done = Done(&self.forwarding);
        if let Some(account) = self.account_id() {
            // At most a few rounds per call: the alarm takes the rest.
            for _ in 0..8 {
                if !self.forward_once(&account).await {
                    break;
                }
            }
        }
    }

    /// One round of [`Self::forward`]: whether records are left to send.
    async fn forward_once(&self, account: &str) -> bool {
        let Ok(out) = self.books.outbox() else {
            return false;
        };
        let mut by_day: std::collections::BTreeMap<i64, Vec<Record>> = Default::default();
        for (day, r) in out {
            by_day.entry(day).or_default().push(r);
        }
        let mut landed = Vec::new();
        for (day, records) in by_day {
            for chunk in records.chunks(MAX_PUT_BATCH) {
                let op = ShardOp::Put {
                    day,
                    retention_days: self.books.cfg.retention_days,
                    records: chunk.to_vec(),
                };
                if super::records::call(&self.env, account, day, &op)
                    .await
                    .is_ok()
                {
                    landed.extend(chunk.iter().map(|r| r.generation.id.clone()));
                }
            }
        }
        // Nothing landed: the shards are unreachable for now.
        !landed.is_empty() && self.books.landed(&landed).is_ok_and(|left| left > 0)
    }
}

/// The largest answer read from an account's object (its `/activity` and history
/// replies are the biggest).
const ACCOUNT_REPLY_MAX: usize = 64 * 1024 * 1024;

/// Sends `op` to account `id`'s object; its reply, of the type `op` is answered with
/// (see [`Reply`]; a view that goes to the client as it is: [`Value`]).
pub async fn call<T: DeserializeOwned>(
    env: &worker::Env,
    id: &str,
    op: Op,
) -> std::result::Result<T, Error> {
    let reply = send(env, id, op).await?;
    super::objects::decode("account", reply)
}

/// Sends `op` to account `id`'s object: its reply (one copy of this for every reply
/// type).
async fn send(env: &worker::Env, id: &str, op: Op) -> std::result::Result<Value, Error> {
    // Test and benchmark only: what a caller far from the account's object pays.
    let delay = config::test_hook(env, "TEST_ACCOUNT_DELAY_MS");
    if delay > 0 {
        config::sleep(delay).await;
    }
    let body = op.to_wire().map_err(|e| Error::Internal(e.to_string()))?;
    call_object(env, "ACCOUNTS", id, body).await
}

/// Sends `body` to object `name` of namespace `binding` (an account's, or one of its
/// record shards), which answers `{"ok": ..}` or `{"err": Error}`.
pub async fn call_object(
    env: &worker::Env,
    binding: &str,
    name: &str,
    body: String,
) -> std::result::Result<Value, Error> {
    let internal = |e: worker::Error| Error::Internal(format!("{binding}: {e}"));
    let stub = env
        .durable_object(binding)
        .and_then(|ns| ns.get_by_name(name))
        .map_err(internal)?;
    let shape = super::objects::Shape::Answer;
    super::objects::exchange(
        &stub,
        binding,
        "https://account/",
        Some(body),
        ACCOUNT_REPLY_MAX,
        shape,
    )
    .await
}
