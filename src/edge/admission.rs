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
//!   and go to the object together, retried with capped backoff until they land; each
//!   is applied once (by generation ID), so a retried batch charges nothing twice. A
//!   batch stays queued until it lands ([`SettleQueue`]): a task the runtime cuts off
//!   mid-retry leaves it to the next sender.

use std::cell::RefCell;
use std::collections::{HashMap, HashSet};

use worker::Env;

use serde::de::IgnoredAny;

use super::account::{self, LeaseState, Op, Queued, SettleItem, MAX_SETTLE_BATCH};
use super::config;
use crate::accounts::lease::{Grant, LeaseBook, Renewal, Surrender, Ticket};
use crate::accounts::settle_queue::{retry_pause_ms, SettleQueue};

/// Default of `KEY_CACHE_MS`: how stale what the isolate knows of a key may be.
pub use crate::settings::DEFAULT_KEY_CACHE_MS;
/// How long a surrender waits for a renewal on its way, and how often it looks.
const SURRENDER_WAIT_MS: u64 = 2_000;
const SURRENDER_POLL_MS: u64 = 5;
/// The longest one call to the object is expected to take: a sender's claim on its
/// batch lasts its pause plus this, after which another sender may take the batch.
const CALL_MS: u64 = 30_000;
/// How late a queue's timer may fire before the next arrival takes it for gone.
const TIMER_GRACE_MS: u64 = 1_000;
/// Attempts at returning a lease that a request waits on ([`surrender`]); past them its
/// settlements go back to the account's timer.
const GIVE_BACK_ATTEMPTS: u32 = 5;

/// A settlement waiting to be sent.
type Pending = Queued;
type Queue = SettleQueue<Pending>;

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
    config::settings(env).key_cache_ms
}

/// The privacy setting `caller`'s fresh lease was granted under, if it holds one.
pub fn usable(env: &Env, caller: &str) -> Option<bool> {
    BOOK.with(|b| b.borrow().usable(caller, now(), key_cache_ms(env)))
}

/// Admits a request with worst case `ask` against `caller`'s lease, if it covers it.
pub fn admit(env: &Env, caller: &str, ask: u64) -> Option<Ticket> {
    BOOK.with(|b| b.borrow_mut().admit(caller, ask, now(), key_cache_ms(env)))
}

/// What `caller`'s account and key have left after a hold of `ask` against its lease,
/// as far as this isolate knows ([`LeaseBook::left`]).
pub fn left(caller: &str, ask: u64) -> Option<crate::accounts::ledger::Left> {
    BOOK.with(|b| b.borrow().left(caller, ask))
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
    let queued = QUEUES.with(|q| q.borrow().get(account).is_some_and(|q| q.has_free(now())));
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
    give_back(env, caller, s, Some(GIVE_BACK_ATTEMPTS)).await
}

/// Returns a lease this isolate has dropped from its book to the object, with all of
/// the account's queued settlements first (they may charge it), keeping the part
/// `in_flight_picos` that requests still running against it may spend; tried at most
/// `attempts` times if given. Whether it landed.
async fn give_back(env: &Env, caller: &str, s: Surrender, attempts: Option<u32>) -> bool {
    let account = s.account.as_str();
    let items = take(account, usize::MAX, true);
    deliver(env, account, items, attempts, |settle| Op::Lease {
        caller: caller.to_string(),
        lease_id: s.lease_id,
        in_flight: s.in_flight_picos,
        admitted: Some(s.admitted),
        top_up: false,
        release: true,
        settle,
    })
    .await
}

/// Takes in a lease the object granted with an admission, and watches it go idle (a
/// lease no request of this isolate uses goes back after `LEASE_IDLE_MS`, rather than
/// expiring in the object into an `expired_hold` of what the isolate could have
/// admitted). If the key already holds one (two admissions raced), the new one is
/// given back at once.
pub async fn granted(env: Env, account: String, caller: String, g: Grant) {
    BOOK.with(|b| b.borrow_mut().granted(&caller, &account, &g, now()));
    if BOOK.with(|b| b.borrow().holds(&caller, &g.id)) {
        watch_idle(&env, &caller).await;
    } else {
        let unused = Surrender {
            account,
            lease_id: g.id,
            in_flight_picos: 0,
            admitted: 0,
        };
        give_back(&env, &caller, unused, Some(1)).await;
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

/// A renewal carries the settlements of the lease's own requests that are still
/// queued (a flush may have them on their way): those requests are no longer counted
/// in `in_flight`, so should the renewal find the key revoked and close the lease down
/// to what still runs, they must have charged it first; landing after, each would
/// release the worst case of a request still running.
async fn renew(env: &Env, caller: &str, r: Renewal) {
    let t = now();
    let own = |q: &Pending| q.item.lease.as_deref() == Some(r.lease_id.as_str());
    let mut ids = Vec::new();
    let mut settle = Vec::new();
    with_queue(&r.account, |q| {
        (ids, settle) = q
            .take_all_of(t, t.saturating_add(CALL_MS), &own)
            .into_iter()
            .unzip()
    });
    let op = Op::Lease {
        caller: caller.to_string(),
        lease_id: r.lease_id.clone(),
        in_flight: r.in_flight_picos,
        admitted: Some(r.admitted),
        top_up: r.top_up,
        release: false,
        settle,
    };
    match account::call::<LeaseState>(env, &r.account, op).await {
        Ok(v) => {
            with_queue(&r.account, |q| q.landed(&ids));
            answered(caller, &r.account, &r.lease_id, v);
        }
        Err(e) => {
            worker::console_error!("renewing a lease of account {}: {e}", r.account);
            with_queue(&r.account, |q| q.release(&ids));
            orphan_timer(env, &r.account);
            BOOK.with(|b| b.borrow_mut().renewal_failed(caller, &r.lease_id));
        }
    }
}

/// Applies the object's answer about a lease: renewed (maybe topped up) or revoked.
fn answered(caller: &str, account: &str, id: &str, v: LeaseState) {
    match v.lease {
        Some(g) if !v.revoked => BOOK.with(|b| b.borrow_mut().granted(caller, account, &g, now())),
        _ => BOOK.with(|b| b.borrow_mut().revoke(caller, id)),
    }
}

/// Settles one request: gives back to its lease what it did not spend, queues its
/// settlement and sends the queue when it is full or its timer ends. The returned
/// future is what keeps the isolate working until the batch has landed: run it in
/// `wait_until`. A request admitted against a lease then watches the lease go idle.
pub async fn settle(env: Env, account: String, item: SettleItem, ticket: Option<Ticket>) {
    let caller = item.caller.clone();
    let cost = item.generation.cost_picos;
    BOOK.with(|b| {
        let mut b = b.borrow_mut();
        if let Some(t) = &ticket {
            b.finish(&caller, t, cost, now());
        }
        b.spent(&caller, cost);
    });
    let ask = ticket.as_ref().map_or(0, |t| t.ask);
    let flush_ms = config::settings(&env).settle_flush_ms;
    let (full, schedule) = QUEUES.with(|q| {
        let mut q = q.borrow_mut();
        let queue = q.entry(account.clone()).or_default();
        let (t, id) = (now(), item.gen_id.clone());
        let schedule = queue.push(id, Pending { item, ask }, t, flush_ms, TIMER_GRACE_MS);
        (queue.free_count(t) >= MAX_SETTLE_BATCH, schedule)
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

/// Claims up to `max` of `account`'s queued settlements (`all`: those other senders
/// have too) for the next call; they stay queued until they land.
fn take(account: &str, max: usize, all: bool) -> Vec<(String, Pending)> {
    let t = now();
    QUEUES.with(|q| {
        q.borrow_mut()
            .get_mut(account)
            .map_or_else(Vec::new, |queue| {
                queue.take(max, t, t.saturating_add(CALL_MS), all)
            })
    })
}

fn with_queue(account: &str, f: impl FnOnce(&mut Queue)) {
    QUEUES.with(|q| {
        let mut q = q.borrow_mut();
        if let Some(queue) = q.get_mut(account) {
            f(queue);
            if queue.is_empty() {
                q.remove(account);
            }
        }
    });
}

/// Sends all of `account`'s queued settlements that no other sender has, a batch at a
/// time, each retried until it lands ([`deliver`]).
async fn flush(env: &Env, account: &str) {
    loop {
        let batch = take(account, MAX_SETTLE_BATCH, false);
        // What is left after a full batch (a burst) goes next; when the queue was
        // emptied, what arrives while this batch is on its way starts a queue of its own
        // with its own timer, so that it gathers company instead of following at once
        // in a batch of its own (many small batches cost the object more than a few
        // big ones, most of all when each call takes long).
        let more = QUEUES.with(|q| q.borrow().get(account).is_some_and(|q| q.has_free(now())));
        if batch.is_empty() {
            return;
        }
        if !deliver(env, account, batch, None, |items| Op::Settle { items }).await || !more {
            return;
        }
    }
}

/// Sends `batch` in the op `with` makes of its items until it lands, pausing between
/// attempts as [`retry_pause_ms`] says (backoff, capped): the batch's own timer. The
/// batch stays queued, claimed by this sender, so a task the runtime cuts off loses
/// none of it. A sender a request waits on stops after `attempts`, and one whose timer
/// the runtime refuses stops at once: the batch is freed for the account's timer,
/// started here when none is alive. Whether it landed.
async fn deliver(
    env: &Env,
    account: &str,
    batch: Vec<(String, Pending)>,
    attempts: Option<u32>,
    with: impl FnOnce(Vec<Queued>) -> Op,
) -> bool {
    let (ids, items): (Vec<String>, Vec<Pending>) = batch.into_iter().unzip();
    let op = with(items);
    let base = config::settings(env).settle_retry_ms;
    let mut failures = 0u32;
    loop {
        let pause = retry_pause_ms(failures, base);
        let until = now().saturating_add(pause).saturating_add(CALL_MS);
        with_queue(account, |q| q.hold(&ids, until));
        if pause > 0 && !config::sleep(pause).await {
            with_queue(account, |q| q.release(&ids));
            return false;
        }
        match account::call::<IgnoredAny>(env, account, op.clone()).await {
            Ok(_) => {
                with_queue(account, |q| q.landed(&ids));
                return true;
            }
            Err(e) => {
                failures = failures.saturating_add(1);
                worker::console_error!(
                    "settling requests of account {account} (attempt {failures}): {e}"
                );
            }
        }
        if attempts.is_some_and(|n| failures >= n) {
            with_queue(account, |q| q.release(&ids));
            orphan_timer(env, account);
            return false;
        }
    }
}

/// Starts a timer for `account`'s settlements when what is queued has none: it runs
/// detached, as long as the runtime lets it; if it is cut off, the next arrival sees
/// its timer gone and starts another.
fn orphan_timer(env: &Env, account: &str) {
    let t = now();
    let orphaned = QUEUES.with(|q| {
        let mut q = q.borrow_mut();
        match q.get_mut(account) {
            // The task below takes the queue at once: if the runtime never runs it,
            // the next arrival soon finds its timer gone.
            Some(queue) if queue.orphaned(t) => {
                queue.timer(t.saturating_add(TIMER_GRACE_MS));
                true
            }
            _ => false,
        }
    });
    if orphaned {
        let (env, account) = (env.clone(), account.to_string());
        worker::wasm_bindgen_futures::spawn_local(async move { flush(&env, &account).await });
    }
}

/// Watches `caller`'s lease (one task per key) and returns it, with the account's
/// queued settlements, once nothing has used it for `LEASE_IDLE_MS`. A task cut off
/// before that leaves the lease to expire in the object (`LEASE_TTL_MS`).
async fn watch_idle(env: &Env, caller: &str) {
    if !WATCHED.with(|w| w.borrow_mut().insert(caller.to_string())) {
        return;
    }
    let idle_ms = config::settings(env).lease_idle_ms;
    loop {
        if !config::sleep(idle_ms).await {
            break;
        }
        let taken = BOOK.with(|b| b.borrow_mut().take_idle(caller, now(), idle_ms));
        match taken {
            Some(idle) => {
                give_back(env, caller, idle, None).await;
                break;
            }
            None if BOOK.with(|b| b.borrow().get(caller).is_none()) => break,
            None => {}
        }
    }
    WATCHED.with(|w| w.borrow_mut().remove(caller));
}
