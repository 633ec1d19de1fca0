//! The `Account` Durable Object: one per account, the single source of truth for its
//! keys (hashes only), credits, holds (requests' reservations and isolates' credit
//! leases), free-model counters, settings and usage history. A model call is admitted
//! either here (`admit`: key, limits and reservation in one round trip, which may also
//! grant the isolate a lease) or, when its isolate holds a fresh lease that covers it,
//! in the isolate without coming here ([`crate::accounts::lease`]); settlements come
//! after the reply, in batches, off the hot path (`settle`).
//!
//! The worker talks to it with `{"op": ..}` JSON; answers are `{"ok": ..}` or
//! `{"err": Error}`.

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use worker::{
    durable_object, DurableObject, Env, Request, RequestInit, Response, Result, SqlStorage, State,
};

use super::config;
use super::sql::{money, parse_money, SqlCounters};
use crate::accounts::lease::{self, Grant};
use crate::accounts::ledger::{self, period_start, usd128, Ask, Funds, KeyBudget, LimitReset};
use crate::accounts::records::{
    self, ActivityRow, FreeAllowance, Generation, KeyKind, KeyRecord, KeyUsage,
};
use crate::accounts::settle_queue;
use crate::error::Error;
use crate::limits::{self, Decision, Window};
use std::cell::{Cell, RefCell};
use std::rc::Rc;

/// The counter of the account's free-model windows.
const FREE_COUNTER: &str = "free";

/// Reservations older than this are dropped: their request died without settling.
const RESERVATION_TTL_MS: u64 = 15 * 60 * 1000;
/// Leases neither renewed nor returned for this long expire (`LEASE_TTL_MS`): their
/// isolate is gone.
const LEASE_TTL_MS: u64 = 60 * 1000;
/// The most generations one listing returns.
pub const MAX_GENERATIONS_LISTED: u32 = 200;
/// Settlements one batch may carry.
pub const MAX_SETTLE_BATCH: usize = 64;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Op {
    Init {
        id: String,
        name: String,
        allow_training: bool,
        credits: u64,
        keys: Vec<KeyRecord>,
    },
    Account,
    Update {
        name: Option<String>,
        allow_training: Option<bool>,
    },
    Grant {
        picos: u64,
        note: String,
    },
    AddKey {
        key: KeyRecord,
    },
    Admit(Admission),
    /// Ends requests: each is charged and recorded once (by generation ID).
    Settle {
        items: Vec<Queued>,
    },
    /// An isolate's lease: settlements first, then a renewal (and top-up, when asked)
    /// or its return. Answers the lease's state, or that it is revoked.
    Lease {
        caller: String,
        lease_id: String,
        /// Worst cases of the requests running against it in the isolate.
        in_flight: u64,
        top_up: bool,
        release: bool,
        #[serde(default)]
        settle: Vec<Queued>,
    },
    /// Keeps the holds of requests still running from expiring.
    Renew {
        gen_ids: Vec<String>,
    },
    /// The operator's ledger: grants, operator losses, expired holds.
    Ledger,
    WhoAmI {
        caller: String,
        free_windows: Vec<Window>,
    },
    Credits {
        caller: String,
    },
    /// The account's API keys for a provisioning key; every key for the operator
    /// (`caller: None`, the admin API). Likewise in `KeyUpdate` and `KeyDelete`.
    Keys {
        caller: Option<String>,
    },
    KeyGet {
        caller: String,
        hash: String,
    },
    KeyCreate {
        caller: String,
        key: KeyRecord,
    },
    KeyUpdate {
        caller: Option<String>,
        hash: String,
        patch: KeyPatch,
    },
    KeyDelete {
        caller: Option<String>,
        hash: String,
    },
    Generation {
        caller: String,
        id: String,
    },
    /// The account's daily aggregates: of one day (days since 1970-01-01), or the last 30.
    Activity {
        caller: String,
        day: Option<i64>,
    },
    /// The latest generations, newest first: the account's for a provisioning key, the
    /// key's own for an API key.
    Generations {
        caller: String,
        limit: u32,
    },
    /// The account's privacy setting; a provisioning key may change it.
    Privacy {
        caller: String,
        allow_training: Option<bool>,
    },
}

/// What a model call asks of its account before going upstream.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Admission {
    pub caller: String,
    pub gen_id: String,
    pub free_windows: Vec<Window>,
    pub rps: Option<Window>,
    /// The plan's facts if the account allows training providers, and if not.
    pub if_training: PlanFacts,
    pub if_private: PlanFacts,
    /// The isolate would like a lease for the key's next requests.
    #[serde(default)]
    pub lease: bool,
}

/// One request's settlement: its record, and the lease it was admitted against (none:
/// it holds its own reservation).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SettleItem {
    pub caller: String,
    pub gen_id: String,
    pub generation: Generation,
    #[serde(default)]
    pub lease: Option<String>,
}

/// A settlement as the isolate sends it: the request's, and the worst case it was
/// admitted with against its lease (0 without one), which is what it still holds of a
/// lease that is closing. Flattened, so that an isolate and an object of the previous
/// version (which send and read a bare `SettleItem`) understand it during a deploy.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Queued {
    #[serde(flatten)]
    pub item: SettleItem,
    #[serde(default)]
    pub ask: u64,
}

/// Whether a plan starts with a free model, and its worst-case cost.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
pub struct PlanFacts {
    pub free: bool,
    pub ask: Ask,
}

/// `PATCH /keys/{hash}`: absent fields stay; `limit: null` removes the limit.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct KeyPatch {
    pub name: Option<String>,
    pub disabled: Option<bool>,
    pub limit: Option<Option<u64>>,
    pub limit_reset: Option<Option<LimitReset>>,
}

impl KeyPatch {
    /// Whether it may lower what the key can spend (a rename changes no money).
    pub fn restricts(&self) -> bool {
        self.disabled == Some(true) || self.limit.is_some() || self.limit_reset.is_some()
    }
}

#[derive(Deserialize)]
struct AccountRow {
    id: String,
    name: String,
    allow_training: f64,
    created_ms: f64,
    credits: Option<String>,
    usage: Option<String>,
    reserved: Option<String>,
}

/// What a batch of settlements adds up to, written once at its end.
struct Tally {
    funds: Funds,
    applied: u64,
    operator_loss: u128,
    /// Charged per (key, UTC day).
    key_days: std::collections::HashMap<(String, u64), u64>,
    /// Per (day, key, model, provider).
    daily: std::collections::HashMap<(i64, String, String, String), DailyDelta>,
    /// The limits of the batch's keys, read once and kept up to date as items settle
    /// (a batch has few keys: a list, searched).
    caps: Vec<(String, KeyCap)>,
}

/// A key's limit as a settlement batch sees it.
#[derive(Default)]
struct KeyCap {
    /// None: no limit (or no key any more).
    limit: Option<u64>,
    reset: Option<LimitReset>,
    /// What the key holds: its reservations and leases.
    held: u64,
    /// What it spent, per period row of `key_totals`, read when first needed.
    spent: Vec<(String, u64)>,
}

impl Tally {
    fn new(funds: Funds) -> Self {
        Tally {
            funds,
            applied: 0,
            operator_loss: 0,
            key_days: Default::default(),
            daily: Default::default(),
            caps: Default::default(),
        }
    }
}

/// What a batch adds to one row of the daily aggregates.
#[derive(Default)]
struct DailyDelta {
    requests: u64,
    usage: u128,
    prompt: u64,
    completion: u64,
    reasoning: u64,
    cached: u64,
}

/// A lease as stored. A closing lease (its isolate gave it back, or it was revoked,
/// while requests still ran against it) admits nothing more: it holds exactly the
/// worst cases (`in_flight`) of those requests, each released as its settlement lands.
#[derive(Debug, Clone)]
struct LeaseRow {
    id: String,
    key_hash: String,
    amount: u64,
    in_flight: u64,
    closing: bool,
}

#[derive(Deserialize)]
struct Text {
    v: Option<String>,
}

#[derive(Deserialize)]
struct RecordRow {
    record: String,
    charged: Option<String>,
}

#[durable_object]
pub struct Account {
    /// Shared, so that a transaction's callback (which must own what it uses) can hold it.
    books: Rc<Books>,
}

impl std::ops::Deref for Account {
    type Target = Books;
    fn deref(&self) -> &Books {
        &self.books
    }
}

/// The object's state and all it does with its storage.
pub struct Books {
    sql: SqlStorage,
    /// The running totals and aggregates exist (made or migrated once per instance).
    ready: Cell<bool>,
    /// The account exists (it is never deleted): asked of SQLite once, not per call.
    exists: Cell<bool>,
    /// When old generation records were last dropped (at most hourly).
    last_prune_ms: Cell<u64>,
    retention_days: u64,
    reservation_ttl_ms: u64,
    lease_ttl_ms: u64,
    lease_policy: lease::Policy,
    storage: worker::Storage,
    /// Test-only (`TEST_FAIL_SETTLES`): settles this instance refuses first.
    fail_settles: Cell<u64>,
    /// Test-only (`TEST_FAIL_SETTLE_RECORDS`): settlements whose record this instance
    /// fails to write first, after their hold was released: a storage error mid-item.
    fail_records: Cell<u64>,
    /// When this instance's expiry alarm is due, if it set one: setting an alarm is a
    /// storage write, so admissions set it only when none is pending.
    alarm_at: Cell<Option<u64>>,
}

impl DurableObject for Account {
    fn new(state: State, env: Env) -> Self {
        // Tables are made by `Init` only, so that a request naming an account that
        // does not exist leaves no storage behind.
        let books = Books {
            sql: state.storage().sql(),
            ready: Cell::new(false),
            exists: Cell::new(false),
            last_prune_ms: Cell::new(0),
            retention_days: config::u64(&env, "GENERATION_RETENTION_DAYS", 30).max(1),
            reservation_ttl_ms: config::u64(&env, "RESERVATION_TTL_MS", RESERVATION_TTL_MS)
                .max(1000),
            // Longer than twice what an isolate may go without renewing a lease it
            // uses, so that no lease in use expires.
            lease_ttl_ms: config::u64(&env, "LEASE_TTL_MS", LEASE_TTL_MS).max(
                config::u64(&env, "KEY_CACHE_MS", super::admission::DEFAULT_KEY_CACHE_MS)
                    .saturating_mul(2)
                    .saturating_add(1000),
            ),
            lease_policy: {
                let d = lease::Policy::default();
                lease::Policy {
                    max: config::u64(&env, "LEASE_MAX_PICOS", d.max),
                    min: config::u64(&env, "LEASE_MIN_PICOS", d.min),
                    divisor: d.divisor,
                }
            },
            storage: state.storage(),
            fail_settles: Cell::new(config::u64(&env, "TEST_FAIL_SETTLES", 0)),
            fail_records: Cell::new(config::u64(&env, "TEST_FAIL_SETTLE_RECORDS", 0)),
            alarm_at: Cell::new(None),
        };
        Account {
            books: Rc::new(books),
        }
    }

    async fn fetch(&self, mut req: Request) -> Result<Response> {
        // Parsed by serde_json from the text: JavaScript's JSON.parse would turn
        // picodollar amounts above 2^53 into inexact floats.
        let answer = match req.text().await {
            Ok(text) => match serde_json::from_str::<Op>(&text) {
                Ok(op) => {
                    let holds = matches!(op, Op::Admit(_) | Op::Lease { .. });
                    // Settlements change many rows: all of them land, or none.
                    let answer = if matches!(op, Op::Settle { .. } | Op::Lease { .. }) {
                        self.books.atomically(Box::new(move |b| b.handle(op)))
                    } else {
                        self.handle(op)
                    };
                    let now = self.now_ms();
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
        match answer {
            Ok(v) => Response::from_json(&json!({ "ok": v })),
            Err(e) => Response::from_json(&json!({ "err": e })),
        }
    }

    async fn alarm(&self) -> Result<Response> {
        self.alarm_at.set(None);
        if self.initialized() {
            // Each expiry (its entry, the hold's row and the totals) lands whole.
            let left = self
                .books
                .atomically(Box::new(|b| {
                    b.ensure_totals()?;
                    b.expire_reservations()?;
                    b.sum(
                        "SELECT CAST((SELECT COUNT(*) FROM reservations) + (SELECT COUNT(*) FROM leases) AS TEXT) AS v",
                        Vec::new(),
                    )
                    .map(Value::from)
                }))
                .ok()
                .and_then(|v| v.as_u64())
                .unwrap_or(0);
            if left > 0 {
                self.arm_alarm().await;
            }
        }
        Response::empty()
    }
}

const SCHEMA: [&str; 7] = [
    "CREATE TABLE IF NOT EXISTS account (id TEXT PRIMARY KEY, name TEXT NOT NULL, allow_training INTEGER NOT NULL, created_ms INTEGER NOT NULL, credits INTEGER NOT NULL, usage INTEGER NOT NULL, reserved INTEGER NOT NULL)",
    "CREATE TABLE IF NOT EXISTS grants (id INTEGER PRIMARY KEY AUTOINCREMENT, picos INTEGER NOT NULL, note TEXT NOT NULL, at_ms INTEGER NOT NULL)",
    "CREATE TABLE IF NOT EXISTS keys (hash TEXT PRIMARY KEY, record TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS reservations (gen_id TEXT PRIMARY KEY, key_hash TEXT NOT NULL, picos INTEGER NOT NULL, at_ms INTEGER NOT NULL)",
    "CREATE TABLE IF NOT EXISTS generations (id TEXT PRIMARY KEY, key_hash TEXT NOT NULL, created_ms INTEGER NOT NULL, day INTEGER NOT NULL, model TEXT NOT NULL, provider TEXT NOT NULL, charged INTEGER NOT NULL, prompt INTEGER NOT NULL, completion INTEGER NOT NULL, cached INTEGER NOT NULL, reasoning INTEGER NOT NULL, record TEXT NOT NULL)",
    "CREATE INDEX IF NOT EXISTS generations_by_key ON generations (key_hash, created_ms)",
    "CREATE INDEX IF NOT EXISTS generations_by_day ON generations (day)",
];

/// Running totals, so that no account call sums history. Money is decimal text added
/// in u128 by the object (SQLite's INTEGER stops at 9.2e18 picodollars, $9.2M, and
/// turns larger values into inexact REALs).
const TOTALS_SCHEMA: [&str; 5] = [
    "CREATE TABLE IF NOT EXISTS entries (id INTEGER PRIMARY KEY AUTOINCREMENT, kind TEXT NOT NULL, gen_id TEXT NOT NULL, key_hash TEXT NOT NULL, picos TEXT NOT NULL, note TEXT NOT NULL, at_ms INTEGER NOT NULL)",
    "CREATE TABLE IF NOT EXISTS totals (name TEXT PRIMARY KEY, value TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS key_totals (key_hash TEXT NOT NULL, period TEXT NOT NULL, value TEXT NOT NULL, PRIMARY KEY (key_hash, period))",
    "CREATE TABLE IF NOT EXISTS daily (day INTEGER NOT NULL, key_hash TEXT NOT NULL, model TEXT NOT NULL, provider TEXT NOT NULL, requests INTEGER NOT NULL, usage TEXT NOT NULL, prompt INTEGER NOT NULL, completion INTEGER NOT NULL, reasoning INTEGER NOT NULL, cached INTEGER NOT NULL, PRIMARY KEY (day, key_hash, model, provider))",
    "CREATE INDEX IF NOT EXISTS generations_by_created ON generations (created_ms)",
];

/// Credit leases held by isolates: each is a hold on the account (counted in the
/// `reserved` total and in its key's reservations) that settlements charge.
const LEASE_SCHEMA: &str = "CREATE TABLE IF NOT EXISTS leases (id TEXT PRIMARY KEY, key_hash TEXT NOT NULL, amount INTEGER NOT NULL, in_flight INTEGER NOT NULL, at_ms INTEGER NOT NULL, closing INTEGER NOT NULL DEFAULT 0)";
/// The `closing` column, for a leases table made before it existed.
const LEASE_CLOSING_COLUMN: &str =
    "ALTER TABLE leases ADD COLUMN closing INTEGER NOT NULL DEFAULT 0";

/// The period rows of `key_totals` a charge at `ms` adds to: all time, its UTC day,
/// ISO week and month.
fn key_periods(ms: u64) -> [String; 4] {
    let secs = ms / 1000;
    let day = |r: LimitReset| period_start(r, secs) / 86_400;
    [
        "all".into(),
        format!("d:{}", day(LimitReset::Daily)),
        format!("w:{}", day(LimitReset::Weekly)),
        format!("m:{}", day(LimitReset::Monthly)),
    ]
}

fn period_key(reset: Option<LimitReset>, secs: u64) -> String {
    match reset {
        None => "all".into(),
        Some(r) => {
            let prefix = match r {
                LimitReset::Daily => "d",
                LimitReset::Weekly => "w",
                LimitReset::Monthly => "m",
            };
            format!("{prefix}:{}", period_start(r, secs) / 86_400)
        }
    }
}

fn parse_u128(s: &Option<String>) -> u128 {
    s.as_deref().and_then(|v| v.parse().ok()).unwrap_or(0)
}

/// The running total of what an expired lease's late settlements have yet to match.
fn unmatched_name(lease_id: &str) -> String {
    format!("expired:{lease_id}")
}

fn db(e: worker::Error) -> Error {
    Error::Internal(format!("account storage: {e}"))
}

/// A change made by [`Books::atomically`].
type Atomic = Box<dyn FnOnce(&Books) -> std::result::Result<Value, Error>>;

impl Books {
    /// Runs `f` in one SQLite transaction (the storage's `transactionSync`): what it
    /// writes lands together or, when it fails, not at all, so that a batch retried
    /// after a storage error charges nothing twice and releases every hold once.
    /// (`f` is boxed: one copy of the JavaScript glue for every caller.)
    fn atomically(self: &Rc<Self>, f: Atomic) -> std::result::Result<Value, Error> {
        use worker::js_sys::{Function, Reflect};
        use worker::wasm_bindgen::{closure::Closure, JsCast, JsValue};
        let out: Rc<RefCell<Option<std::result::Result<Value, Error>>>> = Rc::default();
        let (books, slot) = (Rc::clone(self), Rc::clone(&out));
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

    fn now_ms(&self) -> u64 {
        config::now_ms() as u64
    }

    /// Sets the expiry alarm: it fires when the first hold could have expired.
    async fn arm_alarm(&self) {
        let after = self
            .reservation_ttl_ms
            .min(self.lease_ttl_ms)
            .saturating_add(1000);
        if self.storage.set_alarm(after as i64).await.is_ok() {
            self.alarm_at.set(Some(self.now_ms().saturating_add(after)));
        }
    }

    fn initialized(&self) -> bool {
        if !self.exists.get() && self.has_table("account").unwrap_or(false) {
            self.exists.set(true);
        }
        self.exists.get()
    }

    fn has_table(&self, name: &str) -> std::result::Result<bool, Error> {
        let found: Vec<Text> = self.rows(
            "SELECT name AS v FROM sqlite_master WHERE type = 'table' AND name = ?",
            vec![name.into()],
        )?;
        Ok(!found.is_empty())
    }

    fn handle(&self, op: Op) -> std::result::Result<Value, Error> {
        let init = matches!(op, Op::Init { .. });
        if !init && !self.initialized() {
            return Err(Error::Unauthorized("User not found.".into()));
        }
        if !init {
            self.ensure_totals()?;
        }
        match op {
            Op::Init {
                id,
                name,
                allow_training,
                credits,
                keys,
            } => {
                for ddl in SCHEMA.iter().chain(TOTALS_SCHEMA.iter()) {
                    self.sql.exec(ddl, None).map_err(db)?;
                }
                self.sql.exec(LEASE_SCHEMA, None).map_err(db)?;
                self.ready.set(true);
                SqlCounters::create_table(&self.sql);
                if self.account().is_ok() {
                    return Err(Error::BadRequest(format!("account {id} exists")));
                }
                self.sql
                    .exec(
                        "INSERT INTO account (id, name, allow_training, created_ms, credits, usage, reserved) VALUES (?, ?, ?, ?, 0, 0, 0)",
                        vec![id.into(), name.into(), i64::from(allow_training).into(), (self.now_ms() as i64).into()],
                    )
                    .map_err(db)?;
                for name in ["credits", "usage", "reserved"] {
                    self.set_total(name, 0)?;
                }
                if credits > 0 {
                    self.add_total("credits", u128::from(credits))?;
                    self.log_grant(credits, "initial credits")?;
                }
                for k in keys {
                    self.put_key(&k)?;
                }
                self.account_json()
            }
            Op::Account => self.account_json(),
            Op::Update {
                name,
                allow_training,
            } => {
                self.account()?;
                if let Some(n) = name {
                    self.sql
                        .exec("UPDATE account SET name = ?", vec![n.into()])
                        .map_err(db)?;
                }
                if let Some(t) = allow_training {
                    self.sql
                        .exec(
                            "UPDATE account SET allow_training = ?",
                            vec![i64::from(t).into()],
                        )
                        .map_err(db)?;
                }
                self.account_json()
            }
            Op::Grant { picos, note } => {
                self.account()?;
                self.add_total("credits", u128::from(picos))?;
                self.log_grant(picos, &note)?;
                self.account_json()
            }
            Op::AddKey { key } => {
                self.account()?;
                self.put_key(&key)?;
                Ok(key.to_json(&KeyUsage::default(), &self.account()?.id))
            }
            Op::Admit(a) => self.admit(a),
            Op::Renew { gen_ids } => {
                let now = self.now_ms() as i64;
                for id in gen_ids.iter().take(256) {
                    self.sql
                        .exec(
                            "UPDATE reservations SET at_ms = ? WHERE gen_id = ?",
                            vec![now.into(), id.clone().into()],
                        )
                        .map_err(db)?;
                }
                Ok(json!({ "renewed": gen_ids.len() }))
            }
            Op::Ledger => self.ledger(),
            Op::Settle { items } => self.settle_all(items),
            Op::Lease {
                caller,
                lease_id,
                in_flight,
                top_up,
                release,
                settle,
            } => {
                self.settle_all(settle)?;
                self.lease_op(&caller, &lease_id, in_flight, top_up, release)
            }
            Op::WhoAmI {
                caller,
                free_windows,
            } => {
                let key = self.caller(&caller, None)?;
                let usage = self.key_usage(&key)?;
                let free_tier = self.total("credits")? == 0;
                let day = free_windows.iter().find(|w| w.period_secs == 86_400);
                let per_minute = free_windows
                    .iter()
                    .find(|w| w.period_secs == 60)
                    .map_or(0, |w| w.limit);
                let now = self.now_ms() / 1000;
                let used = day.map_or(0, |w| {
                    limits::used(&mut SqlCounters::new(&self.sql), FREE_COUNTER, w, now)
                });
                let allowance = FreeAllowance {
                    limit: day.map_or(0, |w| w.limit),
                    used,
                };
                Ok(records::current_key(
                    &key, &usage, free_tier, allowance, per_minute,
                ))
            }
            Op::Credits { caller } => {
                self.caller(&caller, None)?;
                let f = self.funds()?;
                Ok(json!({ "total_credits": usd128(f.credits), "total_usage": usd128(f.usage) }))
            }
            Op::Keys { caller } => {
                if let Some(c) = &caller {
                    self.caller(c, Some(KeyKind::Provisioning))?;
                }
                let id = self.account()?.id;
                let keys = self.all_keys()?;
                let mut out = Vec::with_capacity(keys.len());
                for k in keys
                    .iter()
                    .filter(|k| caller.is_none() || k.kind == KeyKind::Api)
                {
                    out.push(k.to_json(&self.key_usage(k)?, &id));
                }
                Ok(Value::Array(out))
            }
            Op::KeyGet { caller, hash } => {
                let k = self.managed_key(Some(&caller), &hash, false)?;
                Ok(k.to_json(&self.key_usage(&k)?, &self.account()?.id))
            }
            Op::KeyCreate { caller, key } => {
                self.caller(&caller, Some(KeyKind::Provisioning))?;
                self.put_key(&key)?;
                Ok(key.to_json(&KeyUsage::default(), &self.account()?.id))
            }
            Op::KeyUpdate {
                caller,
                hash,
                patch,
            } => {
                let revokes = patch.disabled == Some(true);
                let mut k = self.managed_key(caller.as_deref(), &hash, revokes)?;
                if let Some(n) = patch.name {
                    k.name = n;
                }
                if let Some(d) = patch.disabled {
                    k.disabled = d;
                }
                if let Some(l) = patch.limit {
                    k.limit_picos = l;
                }
                if let Some(r) = patch.limit_reset {
                    k.limit_reset = r;
                }
                k.updated_ms = Some(self.now_ms());
                // The key's leases and holds stay: a rename changes no money, and after
                // a disable, delete or lower limit no admission here passes the key's
                // check, nor does a renewal keep its leases open (`lease_op`), while
                // the requests already running keep their holds until they settle.
                self.put_key(&k)?;
                Ok(k.to_json(&self.key_usage(&k)?, &self.account()?.id))
            }
            Op::KeyDelete { caller, hash } => {
                self.managed_key(caller.as_deref(), &hash, true)?;
                self.sql
                    .exec("DELETE FROM keys WHERE hash = ?", vec![hash.into()])
                    .map_err(db)?;
                Ok(json!({ "deleted": true }))
            }
            Op::Generation { caller, id } => {
                // An API key sees only its own generations, as in `Generations`.
                let key = self.caller(&caller, None)?;
                let mine = key.kind != KeyKind::Provisioning;
                let rows: Vec<RecordRow> = self.rows(
                    "SELECT record, CAST(charged AS TEXT) AS charged FROM generations WHERE id = ? AND (? = 0 OR key_hash = ?)",
                    vec![id.clone().into(), i64::from(mine).into(), key.hash.clone().into()],
                )?;
                let row = rows
                    .first()
                    .ok_or_else(|| Error::NotFound(format!("Generation {id} not found")))?;
                let g: Generation = serde_json::from_str(&row.record)
                    .map_err(|e| Error::Internal(e.to_string()))?;
                Ok(records::generation_data(&g, parse_money(&row.charged)))
            }
            Op::Activity { caller, day } => {
                self.caller(&caller, Some(KeyKind::Provisioning))?;
                self.activity(day)
            }
            Op::Generations { caller, limit } => {
                let key = self.caller(&caller, None)?;
                let limit = i64::from(limit.clamp(1, MAX_GENERATIONS_LISTED));
                let rows: Vec<RecordRow> = if key.kind == KeyKind::Provisioning {
                    self.rows(
                        "SELECT record, CAST(charged AS TEXT) AS charged FROM generations ORDER BY created_ms DESC LIMIT ?",
                        vec![limit.into()],
                    )?
                } else {
                    self.rows(
                        "SELECT record, CAST(charged AS TEXT) AS charged FROM generations WHERE key_hash = ? ORDER BY created_ms DESC LIMIT ?",
                        vec![key.hash.clone().into(), limit.into()],
                    )?
                };
                let mut out = Vec::with_capacity(rows.len());
                for row in rows {
                    let g: Generation = serde_json::from_str(&row.record)
                        .map_err(|e| Error::Internal(e.to_string()))?;
                    out.push(records::generation_data(&g, parse_money(&row.charged)));
                }
                Ok(Value::Array(out))
            }
            Op::Privacy {
                caller,
                allow_training,
            } => {
                let key = self.caller(&caller, None)?;
                if let Some(t) = allow_training {
                    if key.kind != KeyKind::Provisioning {
                        return Err(Error::Forbidden(
                            "Only a provisioning key can change the privacy setting.".into(),
                        ));
                    }
                    self.sql
                        .exec(
                            "UPDATE account SET allow_training = ?",
                            vec![i64::from(t).into()],
                        )
                        .map_err(db)?;
                }
                Ok(json!({ "allow_training": self.account()?.allow_training != 0.0 }))
            }
        }
    }

    fn account(&self) -> std::result::Result<AccountRow, Error> {
        let rows: Vec<AccountRow> = self.rows("SELECT id, name, allow_training, created_ms, CAST(credits AS TEXT) AS credits, CAST(usage AS TEXT) AS usage, CAST(reserved AS TEXT) AS reserved FROM account",
                None)?;
        rows.into_iter()
            .next()
            .ok_or_else(|| Error::Unauthorized("User not found.".into()))
    }

    fn account_json(&self) -> std::result::Result<Value, Error> {
        let a = self.account()?;
        let Funds {
            credits,
            usage,
            reserved,
        } = self.funds()?;
        let leased = u128::from(self.sum(
            "SELECT CAST(COALESCE(SUM(amount), 0) AS TEXT) AS v FROM leases",
            Vec::new(),
        )?);
        Ok(json!({
            "id": a.id,
            "name": a.name,
            "allow_training": a.allow_training != 0.0,
            "created_at": ledger::iso8601(a.created_ms as u64),
            "total_credits": usd128(credits),
            "total_usage": usd128(usage),
            // Holds of running requests, and credit leased to isolates (held alike).
            "reserved": usd128(reserved.saturating_sub(leased)),
            "leased": usd128(leased),
            "operator_loss": usd128(self.total("operator_loss")?),
            "expired_holds": usd128(self.total("expired_holds")?),
            "balance": usd128(credits.saturating_sub(usage)),
        }))
    }

    fn funds(&self) -> std::result::Result<Funds, Error> {
        Ok(Funds {
            credits: self.total("credits")?,
            usage: self.total("usage")?,
            reserved: self.total("reserved")?,
        })
    }

    /// A running total (0 if never set).
    fn total(&self, name: &str) -> std::result::Result<u128, Error> {
        let rows: Vec<Text> = self.rows(
            "SELECT value AS v FROM totals WHERE name = ?",
            vec![name.into()],
        )?;
        Ok(rows.first().map_or(0, |r| parse_u128(&r.v)))
    }

    fn set_total(&self, name: &str, value: u128) -> std::result::Result<(), Error> {
        self.sql
            .exec(
                "INSERT INTO totals (name, value) VALUES (?, ?) ON CONFLICT(name) DO UPDATE SET value = excluded.value",
                vec![name.into(), value.to_string().into()],
            )
            .map_err(db)?;
        Ok(())
    }

    fn add_total(&self, name: &str, delta: u128) -> std::result::Result<(), Error> {
        if delta == 0 {
            return Ok(());
        }
        self.set_total(name, self.total(name)?.saturating_add(delta))
    }

    fn sub_total(&self, name: &str, delta: u128) -> std::result::Result<(), Error> {
        if delta == 0 {
            return Ok(());
        }
        self.set_total(name, self.total(name)?.saturating_sub(delta))
    }

    /// Makes the running totals and daily aggregates of an account created before
    /// they existed, from its columns and history (once per object instance).
    fn ensure_totals(&self) -> std::result::Result<(), Error> {
        if self.ready.get() {
            return Ok(());
        }
        self.sql.exec(LEASE_SCHEMA, None).map_err(db)?;
        let leases: Vec<Text> = self.rows(
            "SELECT sql AS v FROM sqlite_master WHERE type = 'table' AND name = 'leases'",
            None,
        )?;
        if leases
            .first()
            .and_then(|t| t.v.as_deref())
            .is_some_and(|ddl| !ddl.contains("closing"))
        {
            self.sql.exec(LEASE_CLOSING_COLUMN, None).map_err(db)?;
        }
        if !self.has_table("totals")? {
            for ddl in TOTALS_SCHEMA {
                self.sql.exec(ddl, None).map_err(db)?;
            }
            let a = self.account()?;
            self.set_total("credits", u128::from(parse_money(&a.credits)))?;
            self.set_total("usage", u128::from(parse_money(&a.usage)))?;
            self.set_total("reserved", u128::from(parse_money(&a.reserved)))?;
            #[derive(Deserialize)]
            struct Row {
                key_hash: String,
                created_ms: f64,
                day: f64,
                model: String,
                provider: String,
                charged: Option<String>,
                prompt: f64,
                completion: f64,
                reasoning: f64,
                cached: f64,
            }
            let rows: Vec<Row> = self.rows("SELECT key_hash, created_ms, day, model, provider, CAST(charged AS TEXT) AS charged, prompt, completion, reasoning, cached FROM generations", None)?;
            for r in rows {
                let charged = parse_money(&r.charged);
                self.add_key_totals(&r.key_hash, r.created_ms as u64, charged)?;
                self.add_daily(
                    r.day as i64,
                    &r.key_hash,
                    &r.model,
                    &r.provider,
                    &DailyDelta {
                        requests: 1,
                        usage: u128::from(charged),
                        prompt: r.prompt as u64,
                        completion: r.completion as u64,
                        reasoning: r.reasoning as u64,
                        cached: r.cached as u64,
                    },
                )?;
            }
        }
        self.ready.set(true);
        Ok(())
    }

    fn add_key_totals(&self, key: &str, ms: u64, charged: u64) -> std::result::Result<(), Error> {
        if charged == 0 {
            return Ok(());
        }
        for period in key_periods(ms) {
            let rows: Vec<Text> = self.rows(
                "SELECT value AS v FROM key_totals WHERE key_hash = ? AND period = ?",
                vec![key.into(), period.clone().into()],
            )?;
            let value = rows
                .first()
                .map_or(0, |r| parse_u128(&r.v))
                .saturating_add(u128::from(charged));
            self.sql
                .exec(
                    "INSERT INTO key_totals (key_hash, period, value) VALUES (?, ?, ?) ON CONFLICT(key_hash, period) DO UPDATE SET value = excluded.value",
                    vec![key.into(), period.into(), value.to_string().into()],
                )
                .map_err(db)?;
        }
        Ok(())
    }

    /// Adds one request to its day's aggregate: [prompt, completion, reasoning, cached].
    fn add_daily(
        &self,
        day: i64,
        key: &str,
        model: &str,
        provider: &str,
        d: &DailyDelta,
    ) -> std::result::Result<(), Error> {
        let rows: Vec<Text> = self.rows(
            "SELECT usage AS v FROM daily WHERE day = ? AND key_hash = ? AND model = ? AND provider = ?",
            vec![day.into(), key.into(), model.into(), provider.into()],
        )?;
        let usage = rows
            .first()
            .map_or(0, |r| parse_u128(&r.v))
            .saturating_add(d.usage);
        let [n, p, c, r, k] = [d.requests, d.prompt, d.completion, d.reasoning, d.cached]
            .map(|t| i64::try_from(t).unwrap_or(i64::MAX));
        self.sql
            .exec(
                "INSERT INTO daily (day, key_hash, model, provider, requests, usage, prompt, completion, reasoning, cached) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(day, key_hash, model, provider) DO UPDATE SET requests = requests + excluded.requests, usage = excluded.usage, prompt = prompt + excluded.prompt, completion = completion + excluded.completion, reasoning = reasoning + excluded.reasoning, cached = cached + excluded.cached",
                vec![day.into(), key.into(), model.into(), provider.into(), n.into(), usage.to_string().into(), p.into(), c.into(), r.into(), k.into()],
            )
            .map_err(db)?;
        Ok(())
    }

    /// Drops generation records older than the retention (their totals and daily
    /// aggregates stay), a bounded batch at a time, at most hourly.
    fn prune(&self) -> std::result::Result<(), Error> {
        let now = self.now_ms();
        if now.saturating_sub(self.last_prune_ms.get()) < 3_600_000 {
            return Ok(());
        }
        self.last_prune_ms.set(now);
        let cutoff = now.saturating_sub(self.retention_days.saturating_mul(86_400_000));
        self.sql
            .exec(
                "DELETE FROM generations WHERE id IN (SELECT id FROM generations WHERE created_ms < ? LIMIT 1000)",
                vec![(cutoff as i64).into()],
            )
            .map_err(db)?;
        Ok(())
    }

    fn log_grant(&self, picos: u64, note: &str) -> std::result::Result<(), Error> {
        self.sql
            .exec(
                "INSERT INTO grants (picos, note, at_ms) VALUES (CAST(? AS INTEGER), ?, ?)",
                vec![money(picos), note.into(), (self.now_ms() as i64).into()],
            )
            .map_err(db)?;
        Ok(())
    }

    fn put_key(&self, k: &KeyRecord) -> std::result::Result<(), Error> {
        let json = serde_json::to_string(k).map_err(|e| Error::Internal(e.to_string()))?;
        self.sql
            .exec(
                "INSERT INTO keys (hash, record) VALUES (?, ?) ON CONFLICT(hash) DO UPDATE SET record = excluded.record",
                vec![k.hash.clone().into(), json.into()],
            )
            .map_err(db)?;
        Ok(())
    }

    fn key(&self, hash: &str) -> std::result::Result<Option<KeyRecord>, Error> {
        let rows: Vec<Text> = self.rows(
            "SELECT record AS v FROM keys WHERE hash = ?",
            vec![hash.into()],
        )?;
        rows.into_iter()
            .next()
            .and_then(|r| r.v)
            .map(|s| serde_json::from_str(&s).map_err(|e| Error::Internal(e.to_string())))
            .transpose()
    }

    fn all_keys(&self) -> std::result::Result<Vec<KeyRecord>, Error> {
        let rows: Vec<Text> = self.rows("SELECT record AS v FROM keys ORDER BY hash", None)?;
        Ok(rows
            .into_iter()
            .filter_map(|r| r.v.and_then(|s| serde_json::from_str(&s).ok()))
            .collect())
    }

    /// The calling key, which must exist, be enabled and (if given) be of `kind`.
    fn caller(&self, hash: &str, kind: Option<KeyKind>) -> std::result::Result<KeyRecord, Error> {
        let k = self
            .key(hash)?
            .ok_or_else(|| Error::Unauthorized("User not found.".into()))?;
        if k.disabled {
            return Err(Error::Unauthorized("This API key is disabled.".into()));
        }
        match kind {
            Some(KeyKind::Api) if k.kind != KeyKind::Api => Err(Error::Forbidden(
                "Provisioning keys manage keys; they cannot call models.".into(),
            )),
            Some(KeyKind::Provisioning) if k.kind != KeyKind::Provisioning => Err(
                Error::Forbidden("Only a provisioning key can do this.".into()),
            ),
            _ => Ok(k),
        }
    }

    /// Key `hash` of this account, which `caller` may manage: the operator (None) any
    /// key; a provisioning key the API keys and the other provisioning keys, so that a
    /// leaked one can be revoked, but never disable or delete itself (`revokes`): the
    /// account keeps a key that manages it.
    fn managed_key(
        &self,
        caller: Option<&str>,
        hash: &str,
        revokes: bool,
    ) -> std::result::Result<KeyRecord, Error> {
        if let Some(c) = caller {
            self.caller(c, Some(KeyKind::Provisioning))?;
            if revokes && c == hash {
                return Err(Error::Forbidden(
                    "A provisioning key cannot disable or delete itself.".into(),
                ));
            }
        }
        self.key(hash)?
            .ok_or_else(|| Error::NotFound(format!("Key {hash} not found")))
    }

    /// The rows `query` answers, as `T`.
    fn rows<T: serde::de::DeserializeOwned>(
        &self,
        query: &str,
        args: impl Into<Option<Vec<worker::SqlStorageValue>>>,
    ) -> std::result::Result<Vec<T>, Error> {
        self.sql
            .exec(query, args)
            .and_then(|c| c.to_array())
            .map_err(db)
    }

    fn sum(
        &self,
        query: &str,
        args: Vec<worker::SqlStorageValue>,
    ) -> std::result::Result<u64, Error> {
        let rows: Vec<Text> = self.rows(query, args)?;
        Ok(rows.first().map_or(0, |r| parse_money(&r.v)))
    }

    /// A key's spending in one period row of `key_totals`.
    fn key_total(&self, key: &str, period: &str) -> std::result::Result<u64, Error> {
        let rows: Vec<Text> = self.rows(
            "SELECT value AS v FROM key_totals WHERE key_hash = ? AND period = ?",
            vec![key.into(), period.into()],
        )?;
        Ok(rows
            .first()
            .map_or(0, |r| u64::try_from(parse_u128(&r.v)).unwrap_or(u64::MAX)))
    }

    /// What a key's running requests hold.
    fn key_reserved(&self, key: &str) -> std::result::Result<u64, Error> {
        self.sum(
            "SELECT CAST(COALESCE(SUM(picos), 0) AS TEXT) AS v FROM reservations WHERE key_hash = ?",
            vec![key.into()],
        )
    }

    /// What a key holds in all: its requests' reservations and its isolates' leases
    /// (what its limit must leave room for; callers see only the first).
    fn key_held(&self, key: &str) -> std::result::Result<u64, Error> {
        self.sum(
            "SELECT CAST((SELECT COALESCE(SUM(picos), 0) FROM reservations WHERE key_hash = ?) + (SELECT COALESCE(SUM(amount), 0) FROM leases WHERE key_hash = ?) AS TEXT) AS v",
            vec![key.into(), key.into()],
        )
    }

    /// A key's usage: running totals per period (O(1) in its history).
    fn key_usage(&self, k: &KeyRecord) -> std::result::Result<KeyUsage, Error> {
        let now = self.now_ms() / 1000;
        let t = |r: Option<LimitReset>| self.key_total(&k.hash, &period_key(r, now));
        Ok(KeyUsage {
            all: t(None)?,
            daily: t(Some(LimitReset::Daily))?,
            weekly: t(Some(LimitReset::Weekly))?,
            monthly: t(Some(LimitReset::Monthly))?,
            period: t(k.limit_reset)?,
            reserved: self.key_reserved(&k.hash)?,
        })
    }

    /// What a key with a limit has spent in its period and holds; nothing to read without one.
    fn key_budget(&self, k: &KeyRecord) -> std::result::Result<KeyBudget, Error> {
        let Some(limit) = k.limit_picos else {
            return Ok(KeyBudget::default());
        };
        Ok(KeyBudget {
            limit: Some(limit),
            spent: self.key_total(&k.hash, &period_key(k.limit_reset, self.now_ms() / 1000))?,
            reserved: self.key_held(&k.hash)?,
        })
    }

    /// Expires the holds of requests that neither settled nor renewed within the TTL
    /// (their worker died): each is released from the balance but recorded as an
    /// `expired_hold` entry for the operator to reconcile, never dropped silently; a
    /// settle that still comes later is charged as usual.
    fn expire_reservations(&self) -> std::result::Result<(), Error> {
        #[derive(Deserialize)]
        struct Row {
            gen_id: String,
            key_hash: String,
            picos: Option<String>,
        }
        let cutoff = (self.now_ms().saturating_sub(self.reservation_ttl_ms)) as i64;
        let stale: Vec<Row> = self.rows("SELECT gen_id, key_hash, CAST(picos AS TEXT) AS picos FROM reservations WHERE at_ms < ?",
                vec![cutoff.into()])?;
        for r in &stale {
            let picos = parse_money(&r.picos);
            self.entry(
                "expired_hold",
                &r.gen_id,
                &r.key_hash,
                u128::from(picos),
                "no settlement or renewal within the reservation TTL",
            )?;
            self.sql
                .exec(
                    "DELETE FROM reservations WHERE gen_id = ?",
                    vec![r.gen_id.clone().into()],
                )
                .map_err(db)?;
            self.sub_total("reserved", u128::from(picos))?;
            self.add_total("expired_holds", u128::from(picos))?;
        }
        self.expire_leases()
    }

    /// Expires the leases that were neither renewed nor returned within `LEASE_TTL_MS`
    /// (their isolate is gone): the hold is released; the part that requests were
    /// running against at the last renewal is recorded as an `expired_hold` for the
    /// operator (those requests' settlements never came), the unused rest is simply
    /// the account's again.
    fn expire_leases(&self) -> std::result::Result<(), Error> {
        let cutoff = (self.now_ms().saturating_sub(self.lease_ttl_ms)) as i64;
        for l in self.leases("WHERE at_ms < ?", vec![cutoff.into()])? {
            let running = l.in_flight.min(l.amount);
            if running > 0 {
                self.entry(
                    "expired_hold",
                    &l.id,
                    &l.key_hash,
                    u128::from(running),
                    "requests running against a lease whose isolate stopped renewing it",
                )?;
                self.add_total("expired_holds", u128::from(running))?;
                // What its late settlements have yet to account for (see `late`).
                self.add_total(&unmatched_name(&l.id), u128::from(running))?;
            }
            self.drop_lease(&l)?;
        }
        Ok(())
    }

    /// A settlement whose hold had expired (its isolate went quiet) lands: it is matched
    /// to the `expired_hold` entry of its reservation, or of its lease (by the lease's
    /// ID), noted as `late_settle` (what it was charged), and what it held comes off
    /// `expired_holds`: its whole reservation, or its worst case of what its lease's
    /// entry still has unmatched ([`settle_queue::late_match`]).
    fn late(
        &self,
        caller: &str,
        gen_id: &str,
        lease: Option<&str>,
        ask: u64,
        cost: u64,
        charged: u64,
    ) -> std::result::Result<(), Error> {
        let id = lease.unwrap_or(gen_id);
        let expired = self.sum(
            "SELECT CAST(COUNT(*) AS TEXT) AS v FROM entries WHERE kind = 'expired_hold' AND gen_id = ?",
            vec![id.into()],
        )?;
        if expired == 0 {
            return Ok(());
        }
        let matched = match lease {
            Some(id) => {
                let name = unmatched_name(id);
                let unmatched = u64::try_from(self.total(&name)?).unwrap_or(u64::MAX);
                let m = settle_queue::late_match(unmatched, ask, cost);
                if m >= unmatched {
                    self.sql
                        .exec("DELETE FROM totals WHERE name = ?", vec![name.into()])
                        .map_err(db)?;
                } else {
                    self.sub_total(&name, u128::from(m))?;
                }
                m
            }
            None => self.sum(
                "SELECT CAST(COALESCE(SUM(CAST(picos AS INTEGER)), 0) AS TEXT) AS v FROM entries WHERE kind = 'expired_hold' AND gen_id = ?",
                vec![gen_id.into()],
            )?,
        };
        self.sub_total("expired_holds", u128::from(matched))?;
        self.entry(
            "late_settle",
            gen_id,
            caller,
            u128::from(charged),
            match lease {
                Some(_) => "settled after its lease expired",
                None => "settled after its hold expired",
            },
        )
    }

    fn leases(
        &self,
        filter: &str,
        args: Vec<worker::SqlStorageValue>,
    ) -> std::result::Result<Vec<LeaseRow>, Error> {
        #[derive(Deserialize)]
        struct Row {
            id: String,
            key_hash: String,
            amount: Option<String>,
            in_flight: Option<String>,
            closing: f64,
        }
        let rows: Vec<Row> = self.rows(&format!("SELECT id, key_hash, CAST(amount AS TEXT) AS amount, CAST(in_flight AS TEXT) AS in_flight, closing FROM leases {filter}"),
                args)?;
        Ok(rows
            .into_iter()
            .map(|r| LeaseRow {
                id: r.id,
                key_hash: r.key_hash,
                amount: parse_money(&r.amount),
                in_flight: parse_money(&r.in_flight),
                closing: r.closing != 0.0,
            })
            .collect())
    }

    fn lease(&self, id: &str) -> std::result::Result<Option<LeaseRow>, Error> {
        Ok(self
            .leases("WHERE id = ?", vec![id.into()])?
            .into_iter()
            .next())
    }

    /// Ends a lease: its hold is the account's again.
    fn drop_lease(&self, l: &LeaseRow) -> std::result::Result<(), Error> {
        self.sql
            .exec("DELETE FROM leases WHERE id = ?", vec![l.id.clone().into()])
            .map_err(db)?;
        self.sub_total("reserved", u128::from(l.amount))
    }

    /// Sets a lease's hold to `amount` (the `reserved` total follows) and its renewal
    /// facts.
    fn put_lease(&self, l: &LeaseRow, amount: u64) -> std::result::Result<(), Error> {
        self.put_lease_row(l, amount)?;
        if amount >= l.amount {
            self.add_total("reserved", u128::from(amount.saturating_sub(l.amount)))
        } else {
            self.sub_total("reserved", u128::from(l.amount.saturating_sub(amount)))
        }
    }

    /// Writes a lease's row only (a settlement batch keeps the totals itself).
    fn put_lease_row(&self, l: &LeaseRow, amount: u64) -> std::result::Result<(), Error> {
        self.sql
            .exec(
                "INSERT INTO leases (id, key_hash, amount, in_flight, at_ms, closing) VALUES (?, ?, CAST(? AS INTEGER), CAST(? AS INTEGER), ?, ?) ON CONFLICT(id) DO UPDATE SET amount = excluded.amount, in_flight = excluded.in_flight, at_ms = excluded.at_ms, closing = excluded.closing",
                vec![l.id.clone().into(), l.key_hash.clone().into(), money(amount), money(l.in_flight), (self.now_ms() as i64).into(), i64::from(l.closing).into()],
            )
            .map_err(db)?;
        Ok(())
    }

    /// Grows lease `l` of `key` towards the policy's size for the account and key as
    /// they are now (a new lease has amount 0); what was added, and the size.
    fn top_up(
        &self,
        key: &KeyRecord,
        l: &LeaseRow,
        need: u64,
    ) -> std::result::Result<(u64, u64), Error> {
        let funds = self.funds()?;
        let budget = self.key_budget(key)?;
        let size = lease::size(&self.lease_policy, &funds, &budget, l.amount, need);
        let added = size.saturating_sub(l.amount).min(funds.available());
        if added > 0 || l.amount > 0 {
            self.put_lease(l, l.amount.saturating_add(added))?;
        }
        Ok((added, size))
    }

    /// Renews, tops up or takes back an isolate's lease. Revoked (the isolate drops it
    /// and admits exactly again) when the key is gone or disabled, the lease expired,
    /// or the key's limit no longer covers what it holds; then the lease is closing:
    /// only the worst cases of the requests still running against it stay held, each
    /// until its settlement lands.
    fn lease_op(
        &self,
        caller: &str,
        id: &str,
        in_flight: u64,
        top_up: bool,
        release: bool,
    ) -> std::result::Result<Value, Error> {
        let Some(mut l) = self.lease(id)? else {
            return Ok(json!({ "revoked": true }));
        };
        if l.key_hash != caller {
            return Err(Error::Forbidden(
                "This lease belongs to another key.".into(),
            ));
        }
        if l.closing {
            return Ok(json!({ "revoked": true }));
        }
        l.in_flight = in_flight;
        // The lease stays only for an enabled API key whose limit still covers what it
        // holds, and only if the isolate keeps it.
        let kept = match self.caller(caller, Some(KeyKind::Api)) {
            Ok(k) if !release => {
                let b = self.key_budget(&k)?;
                let over = b
                    .limit
                    .is_some_and(|limit| b.spent.saturating_add(b.reserved) > limit);
                (!over).then_some(k)
            }
            _ => None,
        };
        let Some(key) = kept else {
            let keep = in_flight.min(l.amount);
            l.closing = true;
            if keep == 0 {
                self.drop_lease(&l)?;
            } else {
                self.put_lease(&l, keep)?;
            }
            return Ok(json!({ "revoked": true }));
        };
        let allow_training = self.account()?.allow_training != 0.0;
        let (added, size) = if top_up {
            self.top_up(&key, &l, 0)?
        } else {
            self.put_lease(&l, l.amount)?;
            (0, l.amount)
        };
        Ok(json!({ "lease": Grant { id: l.id, added, size: size.max(l.amount), allow_training } }))
    }

    fn entry(
        &self,
        kind: &str,
        gen_id: &str,
        key: &str,
        picos: u128,
        note: &str,
    ) -> std::result::Result<(), Error> {
        self.sql
            .exec(
                "INSERT INTO entries (kind, gen_id, key_hash, picos, note, at_ms) VALUES (?, ?, ?, ?, ?, ?)",
                vec![kind.into(), gen_id.into(), key.into(), picos.to_string().into(), note.into(), (self.now_ms() as i64).into()],
            )
            .map_err(db)?;
        Ok(())
    }

    /// The operator's view: grants, operator losses and expired holds, newest first.
    fn ledger(&self) -> std::result::Result<Value, Error> {
        #[derive(Deserialize)]
        struct Entry {
            kind: String,
            gen_id: String,
            key_hash: String,
            picos: String,
            note: String,
            at_ms: f64,
        }
        // Both lists in one (the latest 500 of each), newest first.
        let entries: Vec<Entry> = self.rows("SELECT * FROM (SELECT kind, gen_id, key_hash, picos, note, at_ms FROM entries ORDER BY id DESC LIMIT 500) UNION ALL SELECT * FROM (SELECT 'grant', '', '', CAST(picos AS TEXT), note, at_ms FROM grants ORDER BY id DESC LIMIT 500) ORDER BY at_ms DESC", None)?;
        Ok(Value::Array(
            entries
                .into_iter()
                .map(|e| {
                    json!({
                        "kind": e.kind, "generation_id": e.gen_id, "key_hash": e.key_hash,
                        "amount": usd128(e.picos.parse().unwrap_or(0)), "note": e.note,
                        "at": ledger::iso8601(e.at_ms as u64),
                    })
                })
                .collect(),
        ))
    }

    fn admit(&self, a: Admission) -> std::result::Result<Value, Error> {
        let caller = a.caller.as_str();
        let key = self.caller(caller, Some(KeyKind::Api))?;
        let acc = self.account()?;
        let allow_training = acc.allow_training != 0.0;
        let facts = if allow_training {
            a.if_training
        } else {
            a.if_private
        };
        let ask = facts.ask;
        // Money first: a request refused for it counts against no request limit (and
        // the isolate's retry after making room is not counted twice).
        if ask.reserve > 0 {
            self.expire_reservations()?;
            let budget = self.key_budget(&key)?;
            ledger::check(&self.funds()?, &budget, &ask)?;
        }
        let now = self.now_ms() / 1000;
        let mut store = SqlCounters::new(&self.sql);
        let mut decision: Option<Decision> = None;
        if facts.free {
            let d = limits::hit(&mut store, FREE_COUNTER, &a.free_windows, now);
            if !d.allowed {
                return Ok(json!({ "refused": d, "allow_training": allow_training }));
            }
            decision = Some(d);
        } else if let Some(w) = a.rps.as_ref() {
            let d = limits::hit(
                &mut store,
                &format!("rps:{}:", key.hash),
                std::slice::from_ref(w),
                now,
            );
            if !d.allowed {
                return Err(Error::RateLimited {
                    message: format!(
                        "Rate limit exceeded: {} requests per second on this key.",
                        w.limit
                    ),
                    retry_after_secs: Some(d.retry_after),
                    provider: None,
                    raw: None,
                });
            }
        }
        if let Some(e) = store.error {
            return Err(Error::Internal(format!("account counters: {e}")));
        }
        if ask.reserve > 0 {
            self.sql
                .exec(
                    "INSERT INTO reservations (gen_id, key_hash, picos, at_ms) VALUES (?, ?, CAST(? AS INTEGER), ?)",
                    vec![a.gen_id.clone().into(), key.hash.clone().into(), money(ask.reserve), (self.now_ms() as i64).into()],
                )
                .map_err(db)?;
            self.add_total("reserved", u128::from(ask.reserve))?;
        }
        // A lease for the key's next requests, when they are paid and the account and
        // key can spare one; free models and per-key request rates stay exact.
        let lease = if a.lease && !facts.free && a.rps.is_none() {
            let l = LeaseRow {
                id: format!("lease-{}", a.gen_id),
                key_hash: key.hash.clone(),
                amount: 0,
                in_flight: 0,
                closing: false,
            };
            match self.top_up(&key, &l, ask.reserve)? {
                (added, size) if added > 0 => Some(Grant {
                    id: l.id,
                    added,
                    size,
                    allow_training,
                }),
                _ => None,
            }
        } else {
            None
        };
        Ok(json!({ "allow_training": allow_training, "limit": decision, "lease": lease }))
    }

    /// Settles a batch: each item's record and hold are written as it is applied, the
    /// running totals, key totals and daily aggregates they add to once for the batch
    /// (a batch of n costs n + a few storage writes, not 20 n). A failure fails the
    /// batch, which the isolate sends again; the object runs it in one transaction
    /// ([`Books::atomically`]), so a failed batch leaves nothing applied.
    fn settle_all(&self, items: Vec<Queued>) -> std::result::Result<Value, Error> {
        if items.is_empty() {
            return Ok(json!({ "settled": 0 }));
        }
        let injected = self.fail_settles.get();
        if injected > 0 {
            self.fail_settles.set(injected.saturating_sub(1));
            return Err(Error::Internal(
                "account: injected settle failure (TEST_FAIL_SETTLES)".into(),
            ));
        }
        let mut tally = Tally::new(self.funds()?);
        let n = items.len();
        let mut result = Ok(());
        for Queued { item: it, ask } in items {
            result = self.settle(
                &mut tally,
                &it.caller,
                &it.gen_id,
                it.generation,
                it.lease.as_deref().map(|l| (l, ask)),
            );
            if result.is_err() {
                break;
            }
        }
        self.write_tally(tally)?;
        self.prune()?;
        result.map(|_| json!({ "settled": n }))
    }

    /// Writes what a batch of settlements added up to.
    fn write_tally(&self, t: Tally) -> std::result::Result<(), Error> {
        if t.applied == 0 {
            return Ok(());
        }
        self.set_total("usage", t.funds.usage)?;
        self.set_total("reserved", t.funds.reserved)?;
        self.add_total("operator_loss", t.operator_loss)?;
        for ((key, day), charged) in t.key_days {
            self.add_key_totals(&key, day.saturating_mul(86_400_000), charged)?;
        }
        for ((day, key, model, provider), d) in t.daily {
            self.add_daily(day, &key, &model, &provider, &d)?;
        }
        Ok(())
    }

    /// Ends a request: releases its hold (its reservation, its worst case of a closing
    /// lease, or what it was charged of an open lease), charges what it cost as far as
    /// the balance and the key's limit allow ([`ledger::capture`]), records any excess
    /// as the operator's loss, and keeps its record; the totals go to `t`. Settling the
    /// same ID again does nothing.
    fn settle(
        &self,
        t: &mut Tally,
        caller: &str,
        gen_id: &str,
        g: Generation,
        lease: Option<(&str, u64)>,
    ) -> std::result::Result<(), Error> {
        let exists = self.sum(
            "SELECT CAST(COUNT(*) AS TEXT) AS v FROM generations WHERE id = ?",
            vec![gen_id.into()],
        )?;
        if exists > 0 {
            return Ok(());
        }
        let ask = lease.map_or(0, |(_, ask)| ask);
        let leased = lease.map(|(id, _)| self.lease(id)).transpose()?.flatten();
        // Admitted against a lease the object no longer has: it may have expired.
        let lease_gone = lease.filter(|_| leased.is_none()).map(|(id, _)| id);
        // What the request holds: of a closing lease its own worst case, of an open
        // one the lease's whole hold, else its reservation.
        let hold = match &leased {
            Some(l) if l.closing => ask.min(l.amount),
            Some(l) => l.amount,
            None => self.sum(
                "SELECT CAST(COALESCE(SUM(picos), 0) AS TEXT) AS v FROM reservations WHERE gen_id = ?",
                vec![gen_id.into()],
            )?,
        };
        let (k, p) = self.settle_cap(t, caller, g.created_ms)?;
        let budget = match t.caps.get(k) {
            Some((_, k)) if k.limit.is_some() => KeyBudget {
                limit: k.limit,
                spent: k.spent.get(p).map_or(0, |s| s.1),
                reserved: k.held,
            },
            _ => KeyBudget::default(),
        };
        let c = ledger::capture(g.cost_picos, hold, &t.funds, &budget);
        let charged = c.charged();
        let released = match leased {
            // A closing lease's requests release their worst case whole; the lease ends
            // with the last of them.
            Some(mut l) if l.closing => {
                l.in_flight = l.in_flight.saturating_sub(ask);
                let left = l.amount.saturating_sub(hold);
                if left == 0 || l.in_flight == 0 {
                    self.sql
                        .exec("DELETE FROM leases WHERE id = ?", vec![l.id.clone().into()])
                        .map_err(db)?;
                    l.amount
                } else {
                    self.put_lease_row(&l, left)?;
                    hold
                }
            }
            // An open lease: what was charged of its hold comes off it.
            Some(l) => {
                self.put_lease_row(&l, l.amount.saturating_sub(c.from_hold))?;
                c.from_hold
            }
            None => {
                if hold > 0 {
                    self.sql
                        .exec(
                            "DELETE FROM reservations WHERE gen_id = ?",
                            vec![gen_id.into()],
                        )
                        .map_err(db)?;
                }
                hold
            }
        };
        t.funds.reserved = t.funds.reserved.saturating_sub(u128::from(released));
        t.funds.usage = t.funds.usage.saturating_add(u128::from(charged));
        if let Some((_, k)) = t.caps.get_mut(k) {
            k.held = k.held.saturating_sub(released);
            if let Some((_, spent)) = k.spent.get_mut(p) {
                *spent = spent.saturating_add(charged);
            }
        }
        if c.excess > 0 {
            // Billed upstream past what the key's limit or the balance allows: not
            // charged, but recorded for the operator with the generation.
            t.operator_loss = t.operator_loss.saturating_add(u128::from(c.excess));
            self.entry(
                "operator_loss",
                gen_id,
                caller,
                u128::from(c.excess),
                if c.by_limit {
                    "billed upstream past the key's limit"
                } else {
                    "billed upstream past the account's balance"
                },
            )?;
        }
        if hold == 0 {
            self.late(caller, gen_id, lease_gone, ask, g.cost_picos, charged)?;
        }
        if g.operator_loss_picos > 0 {
            t.operator_loss = t
                .operator_loss
                .saturating_add(u128::from(g.operator_loss_picos));
            self.entry(
                "operator_loss",
                gen_id,
                caller,
                u128::from(g.operator_loss_picos),
                g.operator_loss_reason
                    .as_deref()
                    .unwrap_or("paid upstream, not charged"),
            )?;
        }
        let injected = self.fail_records.get();
        if injected > 0 {
            self.fail_records.set(injected.saturating_sub(1));
            return Err(Error::Internal(
                "account: injected record failure (TEST_FAIL_SETTLE_RECORDS)".into(),
            ));
        }
        let record = serde_json::to_string(&g).map_err(|e| Error::Internal(e.to_string()))?;
        let day = (g.created_ms / 86_400_000) as i64;
        self.sql
            .exec(
                "INSERT INTO generations (id, key_hash, created_ms, day, model, provider, charged, prompt, completion, cached, reasoning, record) VALUES (?, ?, ?, ?, ?, ?, CAST(? AS INTEGER), ?, ?, ?, ?, ?)",
                vec![
                    gen_id.into(),
                    caller.into(),
                    (g.created_ms as i64).into(),
                    day.into(),
                    g.model.clone().into(),
                    g.provider.clone().unwrap_or_default().into(),
                    money(charged),
                    (g.prompt_tokens as i64).into(),
                    (g.completion_tokens as i64).into(),
                    (g.cached_tokens as i64).into(),
                    (g.reasoning_tokens as i64).into(),
                    record.into(),
                ],
            )
            .map_err(db)?;
        t.applied = t.applied.saturating_add(1);
        if charged > 0 {
            let k = t
                .key_days
                .entry((caller.to_string(), g.created_ms / 86_400_000))
                .or_default();
            *k = k.saturating_add(charged);
        }
        if let Some(provider) = g.provider.as_deref().filter(|p| !p.is_empty()) {
            let d = t
                .daily
                .entry((
                    day,
                    caller.to_string(),
                    g.model.clone(),
                    provider.to_string(),
                ))
                .or_default();
            d.requests = d.requests.saturating_add(1);
            d.usage = d.usage.saturating_add(u128::from(charged));
            d.prompt = d.prompt.saturating_add(g.prompt_tokens);
            d.completion = d.completion.saturating_add(g.completion_tokens);
            d.reasoning = d.reasoning.saturating_add(g.reasoning_tokens);
            d.cached = d.cached.saturating_add(g.cached_tokens);
        }
        Ok(())
    }

    /// Loads `caller`'s limit into the batch's caps (once per batch) and, if it has one,
    /// the spending of the period that a charge made at `created_ms` counts in: their
    /// places in the lists.
    fn settle_cap(
        &self,
        t: &mut Tally,
        caller: &str,
        created_ms: u64,
    ) -> std::result::Result<(usize, usize), Error> {
        let k = match t.caps.iter().position(|(h, _)| h == caller) {
            Some(k) => k,
            None => {
                let cap = match self.key(caller)?.filter(|k| k.limit_picos.is_some()) {
                    Some(k) => KeyCap {
                        limit: k.limit_picos,
                        reset: k.limit_reset,
                        held: self.key_held(caller)?,
                        spent: Vec::new(),
                    },
                    None => KeyCap::default(),
                };
                t.caps.push((caller.to_string(), cap));
                t.caps.len().saturating_sub(1)
            }
        };
        let Some((_, cap)) = t.caps.get_mut(k).filter(|(_, c)| c.limit.is_some()) else {
            return Ok((k, usize::MAX));
        };
        let period = period_key(cap.reset, created_ms / 1000);
        let p = match cap.spent.iter().position(|(q, _)| *q == period) {
            Some(p) => p,
            None => {
                let spent = self.key_total(caller, &period)?;
                cap.spent.push((period, spent));
                cap.spent.len().saturating_sub(1)
            }
        };
        Ok((k, p))
    }

    fn activity(&self, day: Option<i64>) -> std::result::Result<Value, Error> {
        #[derive(Deserialize)]
        struct Row {
            day: f64,
            model: String,
            provider: String,
            requests: f64,
            usage: Option<String>,
            prompt: f64,
            completion: f64,
            reasoning: f64,
            cached: f64,
        }
        let today = (self.now_ms() / 86_400_000) as i64;
        let (from, to) = day.map_or((today.saturating_sub(30), today), |d| (d, d));
        let rows: Vec<Row> = self.rows(
            "SELECT day, model, provider, SUM(requests) AS requests, CAST(SUM(CAST(usage AS INTEGER)) AS TEXT) AS usage, SUM(prompt) AS prompt, SUM(completion) AS completion, SUM(reasoning) AS reasoning, SUM(cached) AS cached FROM daily WHERE day >= ? AND day <= ? GROUP BY day, model, provider ORDER BY day DESC, model",
            vec![from.into(), to.into()],
        )?;
        Ok(Value::Array(
            rows.iter()
                .map(|r| {
                    records::activity_item(&ActivityRow {
                        day: r.day as i64,
                        model: r.model.clone(),
                        provider: r.provider.clone(),
                        requests: r.requests as u64,
                        usage_picos: parse_money(&r.usage),
                        prompt_tokens: r.prompt as u64,
                        completion_tokens: r.completion as u64,
                        reasoning_tokens: r.reasoning as u64,
                        cached_tokens: r.cached as u64,
                    })
                })
                .collect(),
        ))
    }
}

/// The largest answer read from an account's object (its `/activity` and history
/// replies are the biggest).
const ACCOUNT_REPLY_MAX: usize = 64 * 1024 * 1024;

/// Sends `op` to account `id`'s object.
pub async fn call(env: &worker::Env, id: &str, op: Op) -> std::result::Result<Value, Error> {
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
    let mut init = RequestInit::new();
    init.with_method(worker::Method::Post)
        .with_body(Some(body.into()));
    let req = Request::new_with_init("https://account/", &init).map_err(internal)?;
    let resp = stub.fetch_with_request(req).await.map_err(internal)?;
    let bytes = super::upstream::read_all(&resp, ACCOUNT_REPLY_MAX)
        .await
        .map_err(|e| match e {
            super::upstream::Capped::TooLarge => {
                Error::Internal(format!("account reply over {ACCOUNT_REPLY_MAX} bytes"))
            }
            super::upstream::Capped::Failed(e) => Error::Internal(format!("account: {e}")),
        })?;
    let v: Value =
        serde_json::from_slice(&bytes).map_err(|e| Error::Internal(format!("account: {e}")))?;
    if let Some(e) = v.get("err") {
        return Err(
            serde_json::from_value(e.clone()).unwrap_or_else(|_| Error::Internal(e.to_string()))
        );
    }
    Ok(v.get("ok").cloned().unwrap_or(Value::Null))
}
