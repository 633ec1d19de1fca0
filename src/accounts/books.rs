//! The account's books, pure over a [`Store`]: keys (hashes only), credits, holds
//! (requests' reservations and isolates' credit leases), settlements, and what the
//! account API shows of them. One [`Books::handle`] per message; the caller runs it in
//! one transaction, so that an operation that fails changes nothing.
//!
//! Admission and leases are in [`super::holds`], settlement in [`super::settle`].

use std::cell::Cell;

use serde_json::{json, Value};

use super::lease;
use super::ledger::{self, period_start, usd128, Funds, KeyBudget, LimitReset};
use super::ops::{Deleted, KeyPatch, Op, Privacy, Renewed, Reply, MAX_GENERATIONS_LISTED};
use super::records::{self, FreeAllowance, KeyKind, KeyRecord, KeyUsage};
use super::store::{AccountRow, Result, Store};
use crate::error::Error;
use crate::limits::Window;

/// The counter of the account's free-model windows.
pub const FREE_COUNTER: &str = "free";

/// How long holds live and how large leases grow.
#[derive(Debug, Clone)]
pub struct Config {
    /// Generation records (their day's shard) and ledger entries are kept this long.
    pub retention_days: u64,
    /// A settled generation's ID is remembered this long, so that a retried or late
    /// settlement of it charges nothing twice; a settlement of a generation older than
    /// this is too late to charge ([`super::settle`]).
    pub settled_retention_ms: u64,
    /// Reservations neither settled nor renewed for this long expire.
    pub reservation_ttl_ms: u64,
    /// Leases neither renewed nor returned for this long expire.
    pub lease_ttl_ms: u64,
    pub lease_policy: lease::Policy,
}

/// The books of one account over store `S`.
pub struct Books<S> {
    pub store: S,
    pub cfg: Config,
    /// When old generation records were last dropped (at most hourly).
    pub(super) last_prune_ms: Cell<u64>,
}

/// The period rows of `key_totals` a charge at `ms` adds to: all time, its UTC day,
/// ISO week and month.
pub fn key_periods(ms: u64) -> [String; 4] {
    let secs = ms / 1000;
    [
        "all".into(),
        period_key(Some(LimitReset::Daily), secs),
        period_key(Some(LimitReset::Weekly), secs),
        period_key(Some(LimitReset::Monthly), secs),
    ]
}

/// The `key_totals` row of the period of `reset` that `secs` falls in.
pub fn period_key(reset: Option<LimitReset>, secs: u64) -> String {
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

/// The running total that keeps a deleted key's limit (above its low three bits: the
/// reset in two, and one that says it is set) for the requests it left running: they
/// settle within it, as they would have had the key stayed. It goes (`housekeep`) once
/// no settlement can use it: the key holds nothing any more, and the lease TTL (the
/// last admission against a lease of the key) and the dedupe retention (a settlement
/// of a generation made before that is too late to charge) have passed.
fn deleted_limit_name(hash: &str) -> String {
    format!("{DELETED_LIMIT}{hash}")
}

const DELETED_LIMIT: &str = "deleted-limit:";

/// The most keys an account may have (a provisioning key makes more).
pub const MAX_KEYS: u64 = 10_000;
/// The most ledger entries kept (the newest; the totals keep every amount), and grants.
pub const MAX_ENTRIES: u64 = 100_000;
pub const MAX_GRANTS: u64 = 1_000;
/// The most rows one housekeeping run drops per table.
pub const PRUNE_BATCH: u64 = 10_000;
/// The most kept totals (deleted keys' limits, expired leases' unmatched holds) one
/// housekeeping run looks at (each one a read and a write or two).
pub const TOTALS_BATCH: u64 = 1_000;
/// Records one forwarding of the outbox reads.
pub const OUTBOX_READ: u64 = 1_024;
/// The most records the outbox holds: past it (its shards unreachable for long) a
/// settlement is refused, and its isolate retries it until the outbox drains.
pub const MAX_OUTBOX: u64 = 100_000;

fn unauthorized() -> Error {
    Error::Unauthorized("User not found.".into())
}

impl<S: Store> Books<S> {
    pub fn new(store: S, cfg: Config) -> Self {
        Books {
            store,
            cfg,
            last_prune_ms: Cell::new(0),
        }
    }

    pub(super) fn now_ms(&self) -> u64 {
        self.store.now_ms()
    }

    /// Answers one message.
    pub fn handle(&self, op: Op) -> Result<Reply> {
        if !matches!(op, Op::Init { .. }) && !self.store.exists()? {
            return Err(unauthorized());
        }
        match op {
            Op::Init {
                id,
                name,
                allow_training,
                credits,
                keys,
            } => self
                .init(id, name, allow_training, credits, keys)
                .map(Reply::View),
            Op::Account => self.account_json().map(Reply::View),
            Op::Update {
                name,
                allow_training,
            } => self.update(name, allow_training).map(Reply::View),
            Op::Grant { picos, note } => {
                self.account()?;
                self.grant(picos, &note)?;
                self.account_json().map(Reply::View)
            }
            Op::AddKey { key } => {
                let id = self.account()?.id;
                self.store.put_key(&key)?;
                Ok(Reply::View(key.to_json(&KeyUsage::default(), &id)))
            }
            Op::Admit(a) => self.admit(a),
            Op::Renew { gen_ids } => {
                // Keeps the holds of requests still running from expiring.
                let now = self.now_ms();
                for id in gen_ids.iter().take(256) {
                    self.store.touch_reservation(id, now)?;
                }
                Ok(Reply::Renewed(Renewed {
                    renewed: gen_ids.len(),
                }))
            }
            Op::Ledger => self.ledger().map(Reply::View),
            Op::Settle { items } => self.settle_all(items),
            Op::Lease {
                caller,
                lease_id,
                in_flight,
                admitted,
                top_up,
                release,
                settle,
            } => {
                self.settle_all(settle)?;
                let report = lease::Report {
                    in_flight,
                    admitted,
                    top_up,
                    release,
                };
                self.lease_op(&caller, &lease_id, report)
            }
            Op::KeyDelete { caller, hash } => {
                self.key_delete(caller.as_deref(), &hash)?;
                Ok(Reply::Deleted(Deleted { deleted: true }))
            }
            Op::Byok { caller, call } => self.byok_api(&caller, call),
            Op::Privacy {
                caller,
                allow_training,
            } => Ok(Reply::Privacy(Privacy {
                allow_training: self.privacy(&caller, allow_training)?,
            })),
            op => self.account_api(op).map(Reply::View),
        }
    }

    /// The account API's views: a key's own, key management, history; what goes to
    /// the client as it is.
    fn account_api(&self, op: Op) -> Result<Value> {
        match op {
            Op::WhoAmI {
                caller,
                free_windows,
            } => self.who_am_i(&caller, &free_windows),
            Op::Credits { caller } => {
                self.caller(&caller, None)?;
                let f = self.funds()?;
                Ok(json!({ "total_credits": usd128(f.credits), "total_usage": usd128(f.usage) }))
            }
            Op::Keys { caller } => self.keys(caller.as_deref()),
            Op::KeyGet { caller, hash } => {
                let k = self.managed_key(Some(&caller), &hash, false)?;
                Ok(k.to_json(&self.key_usage(&k)?, &self.account()?.id))
            }
            Op::KeyCreate { caller, key } => {
                self.caller(&caller, Some(KeyKind::Provisioning))?;
                if self.store.key_count()? >= MAX_KEYS {
                    return Err(Error::Forbidden(format!(
                        "An account has at most {MAX_KEYS} keys: delete one first."
                    )));
                }
                self.store.put_key(&key)?;
                Ok(key.to_json(&KeyUsage::default(), &self.account()?.id))
            }
            Op::KeyUpdate {
                caller,
                hash,
                patch,
            } => self.key_update(caller.as_deref(), &hash, patch),
            Op::Generation { caller, id } => self.generation(&caller, &id),
            Op::Activity { caller, day } => {
                self.caller(&caller, Some(KeyKind::Provisioning))?;
                self.activity(day)
            }
            Op::Generations { caller, limit } => self.generations(&caller, limit),
            Op::Sessions { caller, call } => self.sessions_api(&caller, &call),
            Op::Presets { caller, call } => self.presets_api(&caller, call),
            Op::Scope {
                caller,
                provisioning,
            } => {
                let kind = provisioning.then_some(KeyKind::Provisioning);
                let key = self.caller(&caller, kind)?;
                let scope = super::shard::Scope {
                    key: (key.kind != KeyKind::Provisioning).then_some(key.hash),
                    legacy: self.store.legacy()?,
                };
                serde_json::to_value(scope).map_err(|e| Error::Internal(e.to_string()))
            }
            _ => Err(Error::Internal(
                "account: not an account API message".into(),
            )),
        }
    }

    fn init(
        &self,
        id: String,
        name: String,
        allow_training: bool,
        credits: u64,
        keys: Vec<KeyRecord>,
    ) -> Result<Value> {
        self.store.create_schema()?;
        if self.store.account()?.is_some() {
            return Err(Error::BadRequest(format!("account {id} exists")));
        }
        self.store.insert_account(&AccountRow {
            id,
            name,
            allow_training,
            created_ms: self.now_ms(),
        })?;
        for name in ["credits", "usage", "reserved"] {
            self.store.set_total(name, 0)?;
        }
        if credits > 0 {
            self.grant(credits, "initial credits")?;
        }
        for k in keys {
            self.store.put_key(&k)?;
        }
        self.account_json()
    }

    fn update(&self, name: Option<String>, allow_training: Option<bool>) -> Result<Value> {
        self.account()?;
        if let Some(n) = name {
            self.store.set_name(&n)?;
        }
        if let Some(t) = allow_training {
            self.store.set_allow_training(t)?;
        }
        self.account_json()
    }

    /// Adds credits, and says so in the grants.
    fn grant(&self, picos: u64, note: &str) -> Result<()> {
        self.add_total("credits", u128::from(picos))?;
        self.store.log_grant(picos, note, self.now_ms())
    }

    pub(super) fn account(&self) -> Result<AccountRow> {
        self.store.account()?.ok_or_else(unauthorized)
    }

    fn account_json(&self) -> Result<Value> {
        let a = self.account()?;
        let Funds {
            credits,
            usage,
            reserved,
        } = self.funds()?;
        let leased = u128::from(self.store.leased()?);
        Ok(json!({
            "id": a.id,
            "name": a.name,
            "allow_training": a.allow_training,
            "created_at": ledger::iso8601(a.created_ms),
            "total_credits": usd128(credits),
            "total_usage": usd128(usage),
            // Holds of running requests, and credit leased to isolates (held alike).
            "reserved": usd128(reserved.saturating_sub(leased)),
            "leased": usd128(leased),
            "operator_loss": usd128(self.store.total("operator_loss")?),
            "expired_holds": usd128(self.store.total("expired_holds")?),
            "balance": usd128(credits.saturating_sub(usage)),
        }))
    }

    pub(super) fn funds(&self) -> Result<Funds> {
        Ok(Funds {
            credits: self.store.total("credits")?,
            usage: self.store.total("usage")?,
            reserved: self.store.total("reserved")?,
        })
    }

    pub(super) fn add_total(&self, name: &str, delta: u128) -> Result<()> {
        if delta == 0 {
            return Ok(());
        }
        let v = self.store.total(name)?.saturating_add(delta);
        self.store.set_total(name, v)
    }

    pub(super) fn sub_total(&self, name: &str, delta: u128) -> Result<()> {
        if delta == 0 {
            return Ok(());
        }
        let v = self.store.total(name)?.saturating_sub(delta);
        self.store.set_total(name, v)
    }

    /// Adds a charge made at `ms` to the key's period rows.
    pub fn add_key_totals(&self, key: &str, ms: u64, charged: u64) -> Result<()> {
        if charged == 0 {
            return Ok(());
        }
        for period in key_periods(ms) {
            let v = self
                .store
                .key_total(key, &period)?
                .saturating_add(u128::from(charged));
            self.store.set_key_total(key, &period, v)?;
        }
        Ok(())
    }

    /// The calling key, which must exist, be enabled and (if given) be of `kind`.
    pub(super) fn caller(&self, hash: &str, kind: Option<KeyKind>) -> Result<KeyRecord> {
        let k = self.store.key(hash)?.ok_or_else(unauthorized)?;
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
    fn managed_key(&self, caller: Option<&str>, hash: &str, revokes: bool) -> Result<KeyRecord> {
        if let Some(c) = caller {
            self.caller(c, Some(KeyKind::Provisioning))?;
            if revokes && c == hash {
                return Err(Error::Forbidden(
                    "A provisioning key cannot disable or delete itself.".into(),
                ));
            }
        }
        self.store
            .key(hash)?
            .ok_or_else(|| Error::NotFound(format!("Key {hash} not found")))
    }

    fn key_update(&self, caller: Option<&str>, hash: &str, patch: KeyPatch) -> Result<Value> {
        let revokes = patch.disabled == Some(true);
        let mut k = self.managed_key(caller, hash, revokes)?;
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
        if let Some(d) = patch.session_limits_default {
            k.session_limits_default = d;
        }
        if let Some(b) = patch.include_byok_in_limit {
            k.include_byok_in_limit = b;
        }
        if let Some(r) = patch.require_session_id {
            k.require_session_id = r;
        }
        k.updated_ms = Some(self.now_ms());
        // The key's leases and holds stay: a rename changes no money, and after a
        // disable, delete or lower limit no admission here passes the key's check, nor
        // does a renewal keep its leases open (`lease_op`), while the requests already
        // running keep their holds until they settle.
        self.store.put_key(&k)?;
        Ok(k.to_json(&self.key_usage(&k)?, &self.account()?.id))
    }

    /// Deletes key `hash`; its limit is kept for the requests it left running.
    fn key_delete(&self, caller: Option<&str>, hash: &str) -> Result<()> {
        let k = self.managed_key(caller, hash, true)?;
        if let Some(limit) = k.limit_picos {
            let code = match k.limit_reset {
                None => 0,
                Some(LimitReset::Daily) => 1,
                Some(LimitReset::Weekly) => 2,
                Some(LimitReset::Monthly) => 3,
            };
            let kept = (u128::from(limit) << 3) | (code << 1) | 1;
            self.store.set_total(&deleted_limit_name(hash), kept)?;
        }
        // With or without a limit: its key totals go with it (`prune_kept_totals`).
        self.store
            .expire_total(&deleted_limit_name(hash), self.kept_until())?;
        self.store.delete_key(hash)
    }

    fn keys(&self, caller: Option<&str>) -> Result<Value> {
        if let Some(c) = caller {
            self.caller(c, Some(KeyKind::Provisioning))?;
        }
        let id = self.account()?.id;
        let keys = self.store.keys()?;
        let mut out = Vec::with_capacity(keys.len());
        for k in keys
            .iter()
            .filter(|k| caller.is_none() || k.kind == KeyKind::Api)
        {
            out.push(k.to_json(&self.key_usage(k)?, &id));
        }
        Ok(Value::Array(out))
    }

    /// A key's spending in one period row.
    pub(super) fn key_total(&self, key: &str, period: &str) -> Result<u64> {
        let v = self.store.key_total(key, period)?;
        Ok(u64::try_from(v).unwrap_or(u64::MAX))
    }

    /// A key's usage: running totals per period (O(1) in its history).
    pub(super) fn key_usage(&self, k: &KeyRecord) -> Result<KeyUsage> {
        let now = self.now_ms() / 1000;
        let t = |r: Option<LimitReset>| self.key_total(&k.hash, &period_key(r, now));
        Ok(KeyUsage {
            all: t(None)?,
            daily: t(Some(LimitReset::Daily))?,
            weekly: t(Some(LimitReset::Weekly))?,
            monthly: t(Some(LimitReset::Monthly))?,
            period: t(k.limit_reset)?,
            reserved: self.store.key_reserved(&k.hash)?,
        })
    }

    /// The limit and reset that key `hash` had when it was deleted, if it had a limit.
    pub(super) fn deleted_limit(&self, hash: &str) -> Result<Option<(u64, Option<LimitReset>)>> {
        let kept = self.store.total(&deleted_limit_name(hash))?;
        if kept & 1 == 0 {
            return Ok(None);
        }
        let reset = match (kept >> 1) & 3 {
            1 => Some(LimitReset::Daily),
            2 => Some(LimitReset::Weekly),
            3 => Some(LimitReset::Monthly),
            _ => None,
        };
        Ok(Some((u64::try_from(kept >> 3).unwrap_or(u64::MAX), reset)))
    }

    /// What a key with a limit has spent in its period and holds; nothing to read
    /// without one.
    pub(super) fn key_budget(&self, k: &KeyRecord) -> Result<KeyBudget> {
        let Some(limit) = k.limit_picos else {
            return Ok(KeyBudget::default());
        };
        let period = period_key(k.limit_reset, self.now_ms() / 1000);
        Ok(KeyBudget {
            limit: Some(limit),
            spent: self.key_total(&k.hash, &period)?,
            reserved: self.store.key_held(&k.hash)?,
        })
    }

    fn who_am_i(&self, caller: &str, free_windows: &[Window]) -> Result<Value> {
        let key = self.caller(caller, None)?;
        let usage = self.key_usage(&key)?;
        let free_tier = self.store.total("credits")? == 0;
        let day = free_windows.iter().find(|w| w.period_secs == 86_400);
        let per_minute = free_windows
            .iter()
            .find(|w| w.period_secs == 60)
            .map_or(0, |w| w.limit);
        let now = self.now_ms() / 1000;
        let used = day.map_or(0, |w| self.store.used(FREE_COUNTER, w, now));
        let allowance = FreeAllowance {
            limit: day.map_or(0, |w| w.limit),
            used,
        };
        Ok(records::current_key(
            &key, &usage, free_tier, allowance, per_minute,
        ))
    }

    fn privacy(&self, caller: &str, allow_training: Option<bool>) -> Result<bool> {
        let key = self.caller(caller, None)?;
        if let Some(t) = allow_training {
            if key.kind != KeyKind::Provisioning {
                return Err(Error::Forbidden(
                    "Only a provisioning key can change the privacy setting.".into(),
                ));
            }
            self.store.set_allow_training(t)?;
        }
        Ok(self.account()?.allow_training)
    }

    fn generation(&self, caller: &str, id: &str) -> Result<Value> {
        // An API key sees only its own generations, as in `Generations`.
        let key = self.caller(caller, None)?;
        let mine = (key.kind != KeyKind::Provisioning).then_some(key.hash.as_str());
        let g = self
            .store
            .generation(id, mine)?
            .ok_or_else(|| Error::NotFound(format!("Generation {id} not found")))?;
        Ok(records::generation_data(&g.generation, g.charged))
    }

    fn generations(&self, caller: &str, limit: u32) -> Result<Value> {
        let key = self.caller(caller, None)?;
        let mine = (key.kind != KeyKind::Provisioning).then_some(key.hash.as_str());
        let rows = self
            .store
            .generations(mine, limit.clamp(1, MAX_GENERATIONS_LISTED))?;
        Ok(Value::Array(
            rows.iter()
                .map(|g| records::generation_data(&g.generation, g.charged))
                .collect(),
        ))
    }

    fn activity(&self, day: Option<i64>) -> Result<Value> {
        let today = (self.now_ms() / 86_400_000) as i64;
        let (from, to) = day.map_or((today.saturating_sub(30), today), |d| (d, d));
        let rows = self.store.activity(from, to)?;
        Ok(Value::Array(
            rows.iter().map(records::activity_item).collect(),
        ))
    }

    /// The operator's view: grants, operator losses and expired holds, newest first.
    fn ledger(&self) -> Result<Value> {
        Ok(Value::Array(
            self.store
                .ledger(500)?
                .into_iter()
                .map(|e| {
                    json!({
                        "kind": e.kind, "generation_id": e.gen_id, "key_hash": e.key_hash,
                        "amount": usd128(e.picos), "note": e.note,
                        "at": ledger::iso8601(e.at_ms),
                    })
                })
                .collect(),
        ))
    }

    /// Drops legacy generation records (from before the shards) older than the
    /// retention, a bounded batch at a time, at most hourly.
    pub(super) fn prune(&self) -> Result<()> {
        let now = self.now_ms();
        if now.saturating_sub(self.last_prune_ms.get()) < 3_600_000 {
            return Ok(());
        }
        self.last_prune_ms.set(now);
        let cutoff = now.saturating_sub(self.cfg.retention_days.saturating_mul(86_400_000));
        self.store.prune_generations(cutoff)
    }

    /// Until when a total kept now for late settlements may be needed: a late
    /// settlement is of a generation admitted by then (within a lease TTL), and lands
    /// within the dedupe retention of it or is too late to use it.
    pub(super) fn kept_until(&self) -> u64 {
        let c = &self.cfg;
        let bound = c.settled_retention_ms.saturating_add(c.lease_ttl_ms);
        self.now_ms().saturating_add(bound)
    }

    /// Drops a bounded batch of the totals kept for late settlements that are due, and
    /// with a deleted key's limit its key totals (unless the key is back); the limit
    /// stays, and is looked at again a hold TTL later, while the key still holds
    /// something (a request renewed past the retention settles on time, within it).
    fn prune_kept_totals(&self, now: u64) -> Result<()> {
        let c = &self.cfg;
        let again = now.saturating_add(c.reservation_ttl_ms.max(c.lease_ttl_ms));
        for name in self.store.due_totals(now, TOTALS_BATCH)? {
            if let Some(hash) = name.strip_prefix(DELETED_LIMIT) {
                if self.store.key_held(hash)? > 0 {
                    self.store.expire_total(&name, again)?;
                    continue;
                }
                if self.store.key(hash)?.is_none() {
                    self.store.delete_key_totals(hash)?;
                }
            }
            self.store.delete_total(&name)?;
        }
        Ok(())
    }

    /// The alarm's bounded upkeep of every table that grows with use: the dedupe rows
    /// past their retention, entries and grants past theirs (or their count), key totals
    /// of periods that ended before the dedupe horizon (no settlement can add to them
    /// any more), the totals kept for late settlements once none can come, legacy
    /// records.
    pub fn housekeep(&self) -> Result<()> {
        let now = self.now_ms();
        let horizon = now.saturating_sub(self.cfg.settled_retention_ms);
        self.store.prune_settled(horizon, PRUNE_BATCH)?;
        let kept = now.saturating_sub(self.cfg.retention_days.saturating_mul(86_400_000));
        self.store
            .prune_entries(kept, MAX_ENTRIES, MAX_GRANTS, PRUNE_BATCH)?;
        let day = i64::try_from(horizon / 86_400_000).unwrap_or(i64::MAX);
        self.store
            .prune_key_totals(day, day.saturating_sub(6), day.saturating_sub(30))?;
        self.prune_kept_totals(now)?;
        self.store
            .prune_sessions(kept, super::session::MAX_SESSIONS, PRUNE_BATCH)?;
        self.prune()
    }

    /// The oldest queued records, for their shards.
    pub fn outbox(&self) -> Result<Vec<(i64, super::shard::Record)>> {
        self.store.outbox(OUTBOX_READ)
    }

    /// Drops the queued records that landed; how many are left.
    pub fn landed(&self, ids: &[String]) -> Result<u64> {
        self.store.delete_outbox(ids)?;
        self.store.outbox_len()
    }
}
