//! Admission and settlement as the isolate does them: the credit leases it holds
//! ([`crate::accounts::lease`]) and the settlements it sends to each account's object
//! in batches. Both live in the isolate's memory, shared by its requests.
//!
//! - A paid request whose key holds a fresh lease that covers its worst case is
//!   admitted here, with no round trip to the account's object; any other request is
//!   admitted by the object (which may grant a lease for the next ones).
//! - A lease is renewed in the background (refreshing what the isolate knows of the
//!   key within `KEY_CACHE_MS`, and topping it up when half spent), kept alive while
//!   requests run against it, and returned when nothing used it for `LEASE_IDLE_MS`.
//! - Settlements wait at most `SETTLE_FLUSH_MS` (or until [`MAX_SETTLE_BATCH`] gather)
//!   and go to the object together, retried with backoff; each is applied once (by
//!   generation ID), so a retried batch charges nothing twice.

use std::cell::RefCell;
use std::collections::{HashMap, HashSet};

use worker::Env;

use super::account::{self, Op, Queued, SettleItem, MAX_SETTLE_BATCH};
use super::config;
use crate::accounts::lease::{Grant, LeaseBook, Renewal, Ticket};

/// Default of `KEY_CACHE_MS`: how stale what the isolate knows of a key may be.
pub const DEFAULT_KEY_CACHE_MS: u64 = 5_000;
/// Default of `LEASE_IDLE_MS`: an unused lease goes back after this long.
const DEFAULT_LEASE_IDLE_MS: u64 = 10_000;
/// Default of `SETTLE_FLUSH_MS`: the longest a settlement waits for company.
const DEFAULT_SETTLE_FLUSH_MS: u64 = 100;
/// How long a surrender waits for a renewal on its way, and how often it looks.
const SURRENDER_WAIT_MS: u64 = 2_000;
const SURRENDER_POLL_MS: u64 = 5;
/// Settle attempts and the pause before each retry.
const SETTLE_RETRY_MS: [u64; 5] = [0, 250, 1_000, 3_000, 8_000];

/// A settlement waiting to be sent.
type Pending = Queued;

#[derive(Default)]
struct Queue {
    items: Vec<Pending>,
    /// A timer will send what gathers.
    scheduled: bool,
}

thread_local! {
    static BOOK: RefCell<LeaseBook> = RefCell::new(LeaseBook::default());
    static QUEUES: RefCell<HashMap<String, Queue>> = RefCell::new(HashMap::new());
    /// Keys whose lease has a task watching for it to go idle.
    static WATCHED: RefCell<HashSet<String>> = RefCell::new(HashSet::new());
}

fn now() -> u64 {
    config::now_ms() as u64
}

pub fn key_cache_ms(env: &Env) -> u64 {
    config::u64(env, "KEY_CACHE_MS", DEFAULT_KEY_CACHE_MS).max(1)
}

/// The privacy setting `caller`'s fresh lease was granted under, if it holds one.
pub fn usable(env: &Env, caller: &str) -> Option<bool> {
    BOOK.with(|b| b.borrow().usable(caller, now(), key_cache_ms(env)))
}

/// Admits a request with worst case `ask` against `caller`'s lease, if it covers it.
pub fn admit(env: &Env, caller: &str, ask: u64) -> Option<Ticket> {
    BOOK.with(|b| b.borrow_mut().admit(caller, ask, now(), key_cache_ms(env)))
}

/// Whether the isolate should ask the object for a lease for `caller`.
pub fn wants_lease(caller: &str) -> bool {
    BOOK.with(|b| b.borrow().get(caller).is_none())
}

/// Frees what this isolate holds of `account`'s credit for an exact admission the
/// object refused: `caller`'s lease is returned ([`surrender`]) and the account's
/// queued settlements sent (a finished request's hold is released only when its
/// settlement lands). Whether anything was freed, so that asking again may succeed.
pub async fn make_room(env: &Env, account: &str, caller: &str) -> bool {
    if surrender(env, caller).await {
        return true;
    }
    let queued = QUEUES.with(|q| q.borrow().get(account).is_some_and(|q| !q.items.is_empty()));
    if queued {
        flush(env, account).await;
    }
    queued
}

/// Returns `caller`'s lease to its account's object, with the account's queued
/// settlements, keeping only what its running requests may still spend, so that the
/// credit it held can be admitted exactly. Whether a lease was returned.
pub async fn surrender(env: &Env, caller: &str) -> bool {
    // A renewal on its way is let land first (its answer would bring the lease back);
    // if it revoked the lease, its credit is back already.
    let mut waited = 0;
    loop {
        match BOOK.with(|b| b.borrow().get(caller).map(|l| l.busy)) {
            None => return waited > 0,
            Some(true) if waited < SURRENDER_WAIT_MS => {
                if !config::sleep(SURRENDER_POLL_MS).await {
                    return false;
                }
                waited = waited.saturating_add(SURRENDER_POLL_MS);
            }
            Some(_) => break,
        }
    }
    let Some(s) = BOOK.with(|b| b.borrow_mut().surrender(caller)) else {
        return false;
    };
    give_back(env, &s.account, caller, s.lease_id, s.in_flight_picos).await
}

/// Returns a lease this isolate has dropped from its book to the object, with all of
/// the account's queued settlements first (they may charge it), keeping the part
/// `in_flight` that requests still running against it may spend. Whether it landed.
async fn give_back(
    env: &Env,
    account: &str,
    caller: &str,
    lease_id: String,
    in_flight: u64,
) -> bool {
    let items: Vec<Pending> = std::iter::from_fn(|| {
        let b = take(account);
        (!b.is_empty()).then_some(b)
    })
    .flatten()
    .collect();
    deliver(env, account, items, |settle| Op::Lease {
        caller: caller.to_string(),
        lease_id,
        in_flight,
        top_up: false,
        release: true,
        settle,
    })
    .await
}

/// Takes in a lease the object granted with an admission. If the key already holds
/// one (two admissions raced), the new one is given back at once.
pub async fn granted(env: Env, account: String, caller: String, g: Grant) {
    BOOK.with(|b| b.borrow_mut().granted(&caller, &account, &g, now()));
    if !BOOK.with(|b| b.borrow().holds(&caller, &g.id)) {
        let op = Op::Lease {
            caller,
            lease_id: g.id,
            in_flight: 0,
            top_up: false,
            release: true,
            settle: Vec::new(),
        };
        let _ = account::call(&env, &account, op).await;
    }
}

/// Renews `caller`'s lease if it is due (stale or half spent), at most one renewal at
/// a time; what the object answers updates or revokes it.
pub async fn maintain(env: Env, caller: String) {
    if let Some(renewal) = renewal_if_due(&env, &caller) {
        renewal.await;
    }
}

/// The renewal of `caller`'s lease, when one is due (decided now, so that a request
/// whose lease is fresh spawns no task for it).
pub fn renewal_if_due(env: &Env, caller: &str) -> Option<impl std::future::Future<Output = ()>> {
    let due = BOOK.with(|b| b.borrow_mut().renewal_due(caller, now(), key_cache_ms(env)))?;
    let (env, caller) = (env.clone(), caller.to_string());
    Some(async move { renew(&env, &caller, due).await })
}

async fn renew(env: &Env, caller: &str, r: Renewal) {
    let op = Op::Lease {
        caller: caller.to_string(),
        lease_id: r.lease_id.clone(),
        in_flight: r.in_flight_picos,
        top_up: r.top_up,
        release: false,
        settle: Vec::new(),
    };
    match account::call(env, &r.account, op).await {
        Ok(v) => answered(caller, &r.account, &r.lease_id, &v),
        Err(e) => {
            worker::console_error!("renewing a lease of account {}: {e}", r.account);
            BOOK.with(|b| b.borrow_mut().renewal_failed(caller, &r.lease_id));
        }
    }
}

/// Applies the object's answer about a lease: renewed (maybe topped up) or revoked.
fn answered(caller: &str, account: &str, id: &str, v: &serde_json::Value) {
    match v
        .get("lease")
        .and_then(|l| serde_json::from_value::<Grant>(l.clone()).ok())
    {
        Some(g) => BOOK.with(|b| b.borrow_mut().granted(caller, account, &g, now())),
        None => BOOK.with(|b| b.borrow_mut().revoke(caller, id)),
    }
}

/// Settles one request: gives back to its lease what it did not spend, queues its
/// settlement and sends the queue when it is full or its timer ends. The returned
/// future is what keeps the isolate working until the batch has landed: run it in
/// `wait_until`. A request admitted against a lease then watches the lease go idle.
pub async fn settle(env: Env, account: String, item: SettleItem, ticket: Option<Ticket>) {
    let caller = item.caller.clone();
    if let Some(t) = &ticket {
        let cost = item.generation.cost_picos;
        BOOK.with(|b| b.borrow_mut().finish(&caller, t, cost, now()));
    }
    let ask = ticket.as_ref().map_or(0, |t| t.ask);
    let flush_ms = config::u64(&env, "SETTLE_FLUSH_MS", DEFAULT_SETTLE_FLUSH_MS);
    let (full, schedule) = QUEUES.with(|q| {
        let mut q = q.borrow_mut();
        let queue = q.entry(account.clone()).or_default();
        queue.items.push(Pending { item, ask });
        let full = queue.items.len() >= MAX_SETTLE_BATCH;
        let schedule = !full && !std::mem::replace(&mut queue.scheduled, true);
        (full, schedule)
    });
    if full {
        flush(&env, &account).await;
    } else if schedule {
        // Cut off from its request, the task cannot wait: it sends at once.
        let _ = config::sleep(flush_ms).await;
        flush(&env, &account).await;
    }
    if ticket.is_some() {
        watch_idle(&env, &caller).await;
    }
}

/// Takes up to a batch of `account`'s queued settlements.
fn take(account: &str) -> Vec<Pending> {
    QUEUES.with(|q| {
        let mut q = q.borrow_mut();
        let Some(queue) = q.get_mut(account) else {
            return Vec::new();
        };
        let n = queue.items.len().min(MAX_SETTLE_BATCH);
        let batch: Vec<Pending> = queue.items.drain(..n).collect();
        if queue.items.is_empty() {
            queue.scheduled = false;
            q.remove(account);
        }
        batch
    })
}

/// Puts back settlements that could not be sent: the next batch carries them.
fn put_back(account: &str, batch: Vec<Pending>) {
    QUEUES.with(|q| {
        let mut q = q.borrow_mut();
        let queue = q.entry(account.to_string()).or_default();
        let later = std::mem::take(&mut queue.items);
        queue.items = batch;
        queue.items.extend(later);
    });
}

/// Sends all of `account`'s queued settlements, a batch at a time, each retried with
/// backoff. A batch that never lands is put back for the next one; its requests' holds
/// stop being renewed, so if the isolate dies first they expire into the operator's
/// reconciliation ledger (and a settle that comes later is still charged).
async fn flush(env: &Env, account: &str) {
    loop {
        let batch = take(account);
        // What is left after a full batch (a burst) goes next; when the queue was
        // emptied, what arrives while this batch is on its way starts a queue of its own
        // with its own timer, so that it gathers company instead of following at once
        // in a batch of its own (many small batches cost the object more than a few
        // big ones, most of all when each call takes long).
        let more = QUEUES.with(|q| q.borrow().contains_key(account));
        if batch.is_empty() {
            return;
        }
        if !deliver(env, account, batch, |items| Op::Settle { items }).await || !more {
            return;
        }
    }
}

/// Sends `batch` in the op `with` makes of its items (retried by [`send`]); a batch
/// that did not land is put back for the next one. Whether it landed.
async fn deliver(
    env: &Env,
    account: &str,
    batch: Vec<Pending>,
    with: impl FnOnce(Vec<Queued>) -> Op,
) -> bool {
    let op = with(batch.clone());
    let landed = send(env, account, op).await.is_some();
    if !landed && !batch.is_empty() {
        put_back(account, batch);
    }
    landed
}

/// Sends `op` (settlements), retried with backoff; the answer once it lands.
async fn send(env: &Env, account: &str, op: Op) -> Option<serde_json::Value> {
    for (attempt, pause) in SETTLE_RETRY_MS.iter().enumerate() {
        if *pause > 0 && !config::sleep(*pause).await {
            return None;
        }
        match account::call(env, account, op.clone()).await {
            Ok(v) => return Some(v),
            Err(e) => worker::console_error!(
                "settling requests of account {account} (attempt {}): {e}",
                attempt.saturating_add(1)
            ),
        }
    }
    None
}

/// Watches `caller`'s lease (one task per key) and returns it, with the account's
/// queued settlements, once nothing has used it for `LEASE_IDLE_MS`. A task cut off
/// before that leaves the lease to expire in the object (`LEASE_TTL_MS`).
async fn watch_idle(env: &Env, caller: &str) {
    if !WATCHED.with(|w| w.borrow_mut().insert(caller.to_string())) {
        return;
    }
    let idle_ms = config::u64(env, "LEASE_IDLE_MS", DEFAULT_LEASE_IDLE_MS).max(1);
    loop {
        if !config::sleep(idle_ms).await {
            break;
        }
        let taken = BOOK.with(|b| b.borrow_mut().take_idle(caller, now(), idle_ms));
        match taken {
            Some((account, id)) => {
                give_back(env, &account, caller, id, 0).await;
                break;
            }
            None if BOOK.with(|b| b.borrow().get(caller).is_none()) => break,
            None => {}
        }
    }
    WATCHED.with(|w| w.borrow_mut().remove(caller));
}
