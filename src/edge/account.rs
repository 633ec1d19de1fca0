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

mod sql_store;

use serde::de::DeserializeOwned;
use serde_json::Value;
use worker::{durable_object, DurableObject, Env, Request, Response, Result, State};

use super::config;
use crate::accounts::books::{Books, Config};
use crate::accounts::lease;
pub use crate::accounts::ops::{
    Admission, Admitted, KeyPatch, LeaseState, Op, PlanFacts, Privacy, Queued, Reply, SettleItem,
    MAX_GENERATIONS_LISTED, MAX_SETTLE_BATCH,
};
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
}

fn settings(env: &Env) -> Config {
    let d = lease::Policy::default();
    Config {
        retention_days: config::u64(env, "GENERATION_RETENTION_DAYS", 30).max(1),
        reservation_ttl_ms: config::u64(env, "RESERVATION_TTL_MS", RESERVATION_TTL_MS).max(1000),
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
            config::u64(&env, "TEST_FAIL_SETTLE_RECORDS", 0),
        );
        Account {
            books: Rc::new(Books::new(store, settings(&env))),
            storage: state.storage(),
            fail_settles: Cell::new(config::u64(&env, "TEST_FAIL_SETTLES", 0)),
            alarm_at: Cell::new(None),
        }
    }

    async fn fetch(&self, mut req: Request) -> Result<Response> {
        // Parsed by serde_json from the text: JavaScript's JSON.parse would turn
        // picodollar amounts above 2^53 into inexact floats.
        let answer = match req.text().await {
            Ok(text) => match serde_json::from_str::<Op>(&text) {
                Ok(op) => {
                    let holds = matches!(op, Op::Admit(_) | Op::Lease { .. });
                    let answer = self.run(op);
                    let now = self.books.store.now_ms();
                    let pending = self.alarm_at.get().is_some_and(|at| at > now);
                    if holds && answer.is_ok() && !pending {
                        // Holds that are never settled, renewed or returned expire by
                        // this alarm even when no other request comes; it re-arms
                        // while holds remain.
                        self.arm_alarm().await;
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
        let left = Rc::new(Cell::new(0));
        let count = Rc::clone(&left);
        let _ = self.atomically(Box::new(move |b| {
            if b.store.exists()? {
                sql_store::ensure_totals(b)?;
                // Each expiry (its entry, the hold's row and the totals) lands whole.
                b.expire_reservations()?;
                count.set(b.store.hold_count()?);
            }
            Ok(Reply::View(Value::Null))
        }));
        if left.get() > 0 {
            self.arm_alarm().await;
        }
        Response::empty()
    }
}

/// A change made by [`Account::atomically`].
type Atomic = Box<dyn FnOnce(&Ledger) -> std::result::Result<Reply, Error>>;

impl Account {
    /// Answers one message, all of whose writes land together or not at all.
    fn run(&self, op: Op) -> std::result::Result<Reply, Error> {
        let settles = match &op {
            Op::Settle { items } => !items.is_empty(),
            Op::Lease { settle, .. } => !settle.is_empty(),
            _ => false,
        };
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
        use worker::js_sys::{Function, Reflect};
        use worker::wasm_bindgen::{closure::Closure, JsCast, JsValue};
        let out: Rc<RefCell<Option<std::result::Result<Reply, Error>>>> = Rc::default();
        let (books, slot) = (Rc::clone(&self.books), Rc::clone(&out));
        let body = Closure::once(move || -> std::result::Result<(), JsValue> {
            let r = f(&books);
            let failed = r.is_err();
            *slot.borrow_mut() = Some(r);
            // Thrown, so that the transaction rolls back.
            if failed {
                Err(JsValue::from_str("rolled back"))
            } else {
                Ok(())
            }
        });
        let storage: &JsValue = self.storage.as_raw().as_ref();
        let run = Reflect::get(storage, &JsValue::from_str("transactionSync"))
            .ok()
            .and_then(|t| t.dyn_into::<Function>().ok())
            .ok_or_else(|| Error::Internal("account storage: no transactionSync".into()))?;
        let thrown = run.call1(storage, body.as_ref()).is_err();
        let answered = out.borrow_mut().take();
        match answered {
            Some(Err(e)) => Err(e),
            // Committed: what `f` answered.
            Some(Ok(v)) if !thrown => Ok(v),
            // The transaction failed around `f` (a commit that did not land).
            _ => Err(Error::Internal(
                "account storage: transaction failed".into(),
            )),
        }
    }

    /// Sets the expiry alarm: it fires when the first hold could have expired.
    async fn arm_alarm(&self) {
        let cfg = &self.books.cfg;
        let after = cfg
            .reservation_ttl_ms
            .min(cfg.lease_ttl_ms)
            .saturating_add(1000);
        if self.storage.set_alarm(after as i64).await.is_ok() {
            let now = self.books.store.now_ms();
            self.alarm_at.set(Some(now.saturating_add(after)));
        }
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
    let internal = |e: worker::Error| Error::Internal(format!("account: {e}"));
    // Test and benchmark only: what a caller far from the account's object pays.
    let delay = config::u64(env, "TEST_ACCOUNT_DELAY_MS", 0);
    if delay > 0 {
        config::sleep(delay).await;
    }
    let stub = env
        .durable_object("ACCOUNTS")
        .and_then(|ns| ns.get_by_name(id))
        .map_err(internal)?;
    let body = serde_json::to_string(&op).map_err(|e| Error::Internal(e.to_string()))?;
    let (url, max) = ("https://account/", ACCOUNT_REPLY_MAX);
    let shape = super::objects::Shape::Answer;
    super::objects::exchange(&stub, "account", url, Some(body), max, shape).await
}
