//! A [`Store`] in maps, for tests: a settable clock, transactions (a snapshot put
//! back when the change fails) and fault injection (fail the Nth storage call).
#![allow(clippy::arithmetic_side_effects)] // test-only sums of small amounts

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;

use super::presets::PresetRecord;
use super::records::{ActivityRow, KeyRecord};
use super::session::SessionRow;
use super::shard::{Record, ShardStore};
use super::store::{AccountRow, Charged, DailyDelta, Entry, LeaseRow, Reservation, Result, Store};
use crate::error::Error;
use crate::limits::{self, Decision, MemoryCounters, Window};

#[derive(Debug, Clone, Default, PartialEq)]
pub struct State {
    pub account: Option<AccountRow>,
    pub totals: BTreeMap<String, u128>,
    /// Totals kept for late settlements: name → when they may go.
    pub expiring: BTreeMap<String, u64>,
    pub grants: Vec<(u64, String, u64)>,
    pub keys: BTreeMap<String, KeyRecord>,
    /// gen_id → (key, picos, at_ms).
    pub reservations: BTreeMap<String, (String, u64, u64)>,
    /// gen_id → the session its reservation is held against.
    pub reservation_sessions: BTreeMap<String, String>,
    /// id → (lease, at_ms).
    pub leases: BTreeMap<String, (LeaseRow, u64)>,
    pub key_totals: BTreeMap<(String, String), u128>,
    pub entries: Vec<Entry>,
    /// The dedupe table: gen_id → created_ms.
    pub settled: BTreeMap<String, u64>,
    /// The records on their way to their shards, oldest first, with their days.
    pub outbox: Vec<(i64, Record)>,
    pub counters: BTreeMap<String, limits::WindowState>,
    pub sessions: BTreeMap<String, SessionRow>,
    pub presets: BTreeMap<String, PresetRecord>,
    pub byok: BTreeMap<String, super::byok::ByokRecord>,
}

#[derive(Default)]
pub struct MemoryStore {
    pub state: RefCell<State>,
    pub now: Cell<u64>,
    /// Storage calls made so far.
    pub calls: Cell<u64>,
    /// The call (counted from 1) that fails, if any.
    pub fail_at: Cell<Option<u64>>,
}

impl MemoryStore {
    /// Runs `f` as one transaction: when it fails, the state is as before.
    pub fn atomically<T>(&self, f: impl FnOnce() -> Result<T>) -> Result<T> {
        let before = self.state.borrow().clone();
        let r = f();
        if r.is_err() {
            *self.state.borrow_mut() = before;
        }
        r
    }

    /// Counts a storage call, failing the one asked for.
    fn call(&self) -> Result<()> {
        let n = self.calls.get().saturating_add(1);
        self.calls.set(n);
        if self.fail_at.get() == Some(n) {
            return Err(Error::Internal(format!(
                "injected storage failure at call {n}"
            )));
        }
        Ok(())
    }

    fn read<T>(&self, f: impl FnOnce(&State) -> T) -> Result<T> {
        self.call()?;
        Ok(f(&self.state.borrow()))
    }

    fn write(&self, f: impl FnOnce(&mut State)) -> Result<()> {
        self.call()?;
        f(&mut self.state.borrow_mut());
        Ok(())
    }
}

fn held_by(s: &State, key: Option<&str>, leases: bool) -> u64 {
    let r: u64 = s
        .reservations
        .values()
        .filter(|(k, _, _)| key.is_none_or(|key| key == k))
        .map(|(_, p, _)| *p)
        .sum();
    let l: u64 = s
        .leases
        .values()
        .filter(|(l, _)| leases && key.is_none_or(|key| key == l.key_hash))
        .map(|(l, _)| l.amount)
        .sum();
    r + l
}

impl Store for MemoryStore {
    fn now_ms(&self) -> u64 {
        self.now.get()
    }
    fn exists(&self) -> Result<bool> {
        self.read(|s| s.account.is_some())
    }
    fn create_schema(&self) -> Result<()> {
        self.call()
    }
    fn account(&self) -> Result<Option<AccountRow>> {
        self.read(|s| s.account.clone())
    }
    fn insert_account(&self, a: &AccountRow) -> Result<()> {
        self.write(|s| s.account = Some(a.clone()))
    }
    fn set_name(&self, name: &str) -> Result<()> {
        self.write(|s| {
            if let Some(a) = s.account.as_mut() {
                a.name = name.into();
            }
        })
    }
    fn set_allow_training(&self, allow: bool) -> Result<()> {
        self.write(|s| {
            if let Some(a) = s.account.as_mut() {
                a.allow_training = allow;
            }
        })
    }
    fn total(&self, name: &str) -> Result<u128> {
        self.read(|s| s.totals.get(name).copied().unwrap_or(0))
    }
    fn set_total(&self, name: &str, value: u128) -> Result<()> {
        self.write(|s| {
            s.totals.insert(name.into(), value);
        })
    }
    fn delete_total(&self, name: &str) -> Result<()> {
        self.write(|s| {
            s.totals.remove(name);
            s.expiring.remove(name);
        })
    }
    fn expire_total(&self, name: &str, at_ms: u64) -> Result<()> {
        self.write(|s| {
            s.expiring.insert(name.into(), at_ms);
        })
    }
    fn due_totals(&self, before_ms: u64, limit: u64) -> Result<Vec<String>> {
        self.read(|s| {
            let mut due: Vec<(u64, String)> = s
                .expiring
                .iter()
                .filter(|(_, at)| **at < before_ms)
                .map(|(n, at)| (*at, n.clone()))
                .collect();
            due.sort();
            due.into_iter()
                .take(limit as usize)
                .map(|(_, n)| n)
                .collect()
        })
    }
    fn log_grant(&self, picos: u64, note: &str, at_ms: u64) -> Result<()> {
        self.write(|s| s.grants.push((picos, note.into(), at_ms)))
    }
    fn key(&self, hash: &str) -> Result<Option<KeyRecord>> {
        self.read(|s| s.keys.get(hash).cloned())
    }
    fn keys(&self) -> Result<Vec<KeyRecord>> {
        self.read(|s| s.keys.values().cloned().collect())
    }
    fn put_key(&self, k: &KeyRecord) -> Result<()> {
        self.write(|s| {
            s.keys.insert(k.hash.clone(), k.clone());
        })
    }
    fn delete_key(&self, hash: &str) -> Result<()> {
        self.write(|s| {
            s.keys.remove(hash);
        })
    }
    fn reservation(&self, gen_id: &str) -> Result<u64> {
        self.read(|s| s.reservations.get(gen_id).map_or(0, |r| r.1))
    }
    fn put_reservation(&self, r: &Reservation, at_ms: u64) -> Result<()> {
        self.write(|s| {
            let row = (r.key_hash.clone(), r.picos, at_ms);
            s.reservations.insert(r.gen_id.clone(), row);
            if let Some(session) = &r.session {
                s.reservation_sessions
                    .insert(r.gen_id.clone(), session.clone());
            }
        })
    }
    fn touch_reservation(&self, gen_id: &str, at_ms: u64) -> Result<()> {
        self.write(|s| {
            if let Some(r) = s.reservations.get_mut(gen_id) {
                r.2 = at_ms;
            }
        })
    }
    fn delete_reservation(&self, gen_id: &str) -> Result<()> {
        self.write(|s| {
            s.reservations.remove(gen_id);
            s.reservation_sessions.remove(gen_id);
        })
    }
    fn stale_reservations(&self, before_ms: u64) -> Result<Vec<Reservation>> {
        self.read(|s| {
            s.reservations
                .iter()
                .filter(|(_, r)| r.2 < before_ms)
                .map(|(id, r)| Reservation {
                    gen_id: id.clone(),
                    key_hash: r.0.clone(),
                    picos: r.1,
                    session: s.reservation_sessions.get(id).cloned(),
                })
                .collect()
        })
    }
    fn lease(&self, id: &str) -> Result<Option<LeaseRow>> {
        self.read(|s| s.leases.get(id).map(|l| l.0.clone()))
    }
    fn stale_leases(&self, open_before: u64, closing_before: u64) -> Result<Vec<LeaseRow>> {
        self.read(|s| {
            s.leases
                .values()
                .filter(|(l, at)| {
                    *at < if l.closing {
                        closing_before
                    } else {
                        open_before
                    }
                })
                .map(|l| l.0.clone())
                .collect()
        })
    }
    fn put_lease(&self, l: &LeaseRow, at_ms: u64) -> Result<()> {
        self.write(|s| {
            s.leases.insert(l.id.clone(), (l.clone(), at_ms));
        })
    }
    fn delete_lease(&self, id: &str) -> Result<()> {
        self.write(|s| {
            s.leases.remove(id);
        })
    }
    fn leased(&self) -> Result<u64> {
        self.read(|s| s.leases.values().map(|l| l.0.amount).sum())
    }
    fn hold_count(&self) -> Result<u64> {
        self.read(|s| (s.reservations.len() + s.leases.len()) as u64)
    }
    fn key_reserved(&self, key: &str) -> Result<u64> {
        self.read(|s| held_by(s, Some(key), false))
    }
    fn key_held(&self, key: &str) -> Result<u64> {
        self.read(|s| held_by(s, Some(key), true))
    }
    fn key_total(&self, key: &str, period: &str) -> Result<u128> {
        self.read(|s| {
            let k = (key.to_string(), period.to_string());
            s.key_totals.get(&k).copied().unwrap_or(0)
        })
    }
    fn set_key_total(&self, key: &str, period: &str, value: u128) -> Result<()> {
        self.write(|s| {
            s.key_totals.insert((key.into(), period.into()), value);
        })
    }
    fn delete_key_totals(&self, key: &str) -> Result<()> {
        self.write(|s| s.key_totals.retain(|(k, _), _| k != key))
    }
    fn prune_key_totals(&self, day: i64, week: i64, month: i64) -> Result<()> {
        self.write(|s| {
            s.key_totals.retain(|(_, p), _| {
                let start = |pre: &str| p.strip_prefix(pre).and_then(|d| d.parse::<i64>().ok());
                match (start("d:"), start("w:"), start("m:")) {
                    (Some(d), _, _) => d >= day,
                    (_, Some(w), _) => w >= week,
                    (_, _, Some(m)) => m >= month,
                    _ => true,
                }
            })
        })
    }
    fn key_count(&self) -> Result<u64> {
        self.read(|s| s.keys.len() as u64)
    }
    fn activity(&self, _from: i64, _to: i64) -> Result<Vec<ActivityRow>> {
        self.read(|_| Vec::new())
    }
    fn add_entry(&self, e: &Entry) -> Result<()> {
        self.write(|s| s.entries.push(e.clone()))
    }
    fn entry_sum(&self, kind: &str, gen_id: &str) -> Result<Option<u64>> {
        self.read(|s| {
            let mine = s
                .entries
                .iter()
                .filter(|e| e.kind == kind && e.gen_id == gen_id);
            mine.fold(None, |sum, e| Some(sum.unwrap_or(0) + e.picos as u64))
        })
    }
    fn ledger(&self, limit: u32) -> Result<Vec<Entry>> {
        self.read(|s| {
            s.entries
                .iter()
                .rev()
                .take(limit as usize)
                .cloned()
                .collect()
        })
    }
    fn settled(&self, id: &str) -> Result<bool> {
        self.read(|s| s.settled.contains_key(id))
    }
    fn put_settled(&self, id: &str, created_ms: u64) -> Result<()> {
        self.write(|s| {
            s.settled.insert(id.into(), created_ms);
        })
    }
    fn prune_settled(&self, before_ms: u64, limit: u64) -> Result<u64> {
        self.call()?;
        let mut s = self.state.borrow_mut();
        let old: Vec<String> = s
            .settled
            .iter()
            .filter(|(_, at)| **at < before_ms)
            .map(|(id, _)| id.clone())
            .take(limit as usize)
            .collect();
        for id in &old {
            s.settled.remove(id);
        }
        Ok(old.len() as u64)
    }
    fn put_outbox(&self, day: i64, r: &Record) -> Result<()> {
        self.write(|s| s.outbox.push((day, r.clone())))
    }
    fn outbox(&self, limit: u64) -> Result<Vec<(i64, Record)>> {
        self.read(|s| s.outbox.iter().take(limit as usize).cloned().collect())
    }
    fn outbox_len(&self) -> Result<u64> {
        self.read(|s| s.outbox.len() as u64)
    }
    fn delete_outbox(&self, ids: &[String]) -> Result<()> {
        self.write(|s| s.outbox.retain(|(_, r)| !ids.contains(&r.generation.id)))
    }
    fn prune_entries(&self, before_ms: u64, keep: u64, keep_grants: u64, limit: u64) -> Result<()> {
        self.write(|s| {
            let over = (s.entries.len() as u64).saturating_sub(keep);
            let old = s.entries.iter().take_while(|e| e.at_ms < before_ms).count() as u64;
            let n = over.max(old).min(limit) as usize;
            s.entries.drain(..n);
            let g = s.grants.len().saturating_sub(keep_grants as usize);
            s.grants.drain(..g);
        })
    }
    fn legacy(&self) -> Result<bool> {
        self.read(|_| false)
    }
    fn generation(&self, _id: &str, _key: Option<&str>) -> Result<Option<Charged>> {
        self.read(|_| None)
    }
    fn generations(&self, _key: Option<&str>, _limit: u32) -> Result<Vec<Charged>> {
        self.read(|_| Vec::new())
    }
    fn prune_generations(&self, _before_ms: u64) -> Result<()> {
        self.call()
    }
    fn preset(&self, slug: &str) -> Result<Option<PresetRecord>> {
        self.read(|s| s.presets.get(slug).cloned())
    }
    fn put_preset(&self, p: &PresetRecord) -> Result<()> {
        self.write(|s| {
            s.presets.insert(p.slug.clone(), p.clone());
        })
    }
    fn delete_preset(&self, slug: &str) -> Result<()> {
        self.write(|s| {
            s.presets.remove(slug);
        })
    }
    fn presets(&self, limit: u32, offset: u32) -> Result<Vec<PresetRecord>> {
        self.read(|s| {
            let mut all: Vec<PresetRecord> = s.presets.values().cloned().collect();
            all.sort_by_key(|p| std::cmp::Reverse(p.updated_ms));
            all.into_iter()
                .skip(offset as usize)
                .take(limit as usize)
                .collect()
        })
    }
    fn preset_count(&self) -> Result<u64> {
        self.read(|s| s.presets.len() as u64)
    }
    fn session(&self, id: &str) -> Result<Option<SessionRow>> {
        self.read(|s| s.sessions.get(id).cloned())
    }
    fn put_session(&self, row: &SessionRow) -> Result<()> {
        self.write(|s| {
            s.sessions.insert(row.id.clone(), row.clone());
        })
    }
    fn sessions(&self, key: Option<&str>, limit: u32) -> Result<Vec<SessionRow>> {
        self.read(|s| {
            let mut all: Vec<SessionRow> = s
                .sessions
                .values()
                .filter(|r| key.is_none_or(|k| k == r.key_hash))
                .cloned()
                .collect();
            all.sort_by_key(|r| std::cmp::Reverse(r.last_ms));
            all.truncate(limit as usize);
            all
        })
    }
    fn byok_keys(&self) -> Result<Vec<super::byok::ByokRecord>> {
        Ok(self.state.borrow().byok.values().cloned().collect())
    }

    fn put_byok(&self, r: &super::byok::ByokRecord) -> Result<()> {
        self.state.borrow_mut().byok.insert(r.id.clone(), r.clone());
        Ok(())
    }

    fn delete_byok(&self, id: &str) -> Result<()> {
        self.state.borrow_mut().byok.remove(id);
        Ok(())
    }

    fn prune_sessions(&self, before_ms: u64, keep: u64, limit: u64) -> Result<()> {
        self.write(|s| {
            let mut by_use: Vec<(u64, String)> = s
                .sessions
                .values()
                .map(|r| (r.last_ms, r.id.clone()))
                .collect();
            by_use.sort_by(|a, b| b.cmp(a));
            let gone: Vec<String> = by_use
                .iter()
                .enumerate()
                .filter(|(i, (at, _))| *at < before_ms || *i as u64 >= keep)
                .map(|(_, (_, id))| id.clone())
                .filter(|id| s.sessions.get(id).is_some_and(|r| r.held == 0))
                .take(limit as usize)
                .collect();
            for id in gone {
                s.sessions.remove(&id);
            }
        })
    }
    fn hit(&self, counter: &str, windows: &[Window], now_secs: u64) -> Result<Decision> {
        self.call()?;
        let mut s = self.state.borrow_mut();
        let mut c = MemoryCounters(s.counters.clone().into_iter().collect());
        let d = limits::hit(&mut c, counter, windows, now_secs);
        s.counters = c.0.into_iter().collect();
        Ok(d)
    }
    fn used(&self, counter: &str, w: &Window, now_secs: u64) -> u64 {
        let s = self.state.borrow();
        let mut c = MemoryCounters(s.counters.clone().into_iter().collect());
        limits::used(&mut c, counter, w, now_secs)
    }
}

/// A shard's tables in maps: records by ID (`None`: kept as its ID only, past the
/// shard's cap) and the aggregates.
#[derive(Default)]
pub struct MemoryShard {
    pub tables: RefCell<Option<ShardTables>>,
}

#[derive(Debug, Clone, Default)]
pub struct ShardTables {
    pub records: BTreeMap<String, (String, u64, Option<Record>)>,
    pub daily: BTreeMap<(String, String, String), DailyDelta>,
}

impl MemoryShard {
    fn with<T>(&self, f: impl FnOnce(&mut ShardTables) -> T) -> Result<T> {
        let mut t = self.tables.borrow_mut();
        t.as_mut()
            .map(f)
            .ok_or_else(|| Error::Internal("shard: no tables".into()))
    }
}

impl ShardStore for MemoryShard {
    fn exists(&self) -> Result<bool> {
        Ok(self.tables.borrow().is_some())
    }
    fn create(&self) -> Result<()> {
        *self.tables.borrow_mut() = Some(ShardTables::default());
        Ok(())
    }
    fn count(&self) -> Result<u64> {
        self.with(|t| t.records.len() as u64)
    }
    fn has(&self, id: &str) -> Result<bool> {
        self.with(|t| t.records.contains_key(id))
    }
    fn insert(&self, r: &Record, whole: bool) -> Result<()> {
        self.with(|t| {
            let row = (r.key_hash.clone(), r.charged, whole.then(|| r.clone()));
            t.records.insert(r.generation.id.clone(), row);
        })
    }
    fn add_daily(&self, key: &str, model: &str, provider: &str, d: &DailyDelta) -> Result<()> {
        self.with(|t| {
            let row = t
                .daily
                .entry((key.into(), model.into(), provider.into()))
                .or_default();
            row.requests += d.requests;
            row.usage += d.usage;
            row.prompt += d.prompt;
            row.completion += d.completion;
            row.reasoning += d.reasoning;
            row.cached += d.cached;
        })
    }
    fn get(&self, id: &str, key: Option<&str>) -> Result<Option<Record>> {
        self.with(|t| {
            t.records
                .get(id)
                .and_then(|(_, _, r)| r.clone())
                .filter(|r| key.is_none_or(|k| k == r.key_hash))
        })
    }
    fn newest(&self, key: Option<&str>, session: Option<&str>, limit: u32) -> Result<Vec<Record>> {
        self.with(|t| {
            let mut all: Vec<Record> = t
                .records
                .values()
                .filter_map(|(_, _, r)| r.clone())
                .filter(|r| key.is_none_or(|k| k == r.key_hash))
                .filter(|r| session.is_none_or(|s| r.generation.session_id.as_deref() == Some(s)))
                .collect();
            all.sort_by_key(|r| std::cmp::Reverse(r.generation.created_ms));
            all.truncate(limit as usize);
            all
        })
    }
    fn activity(&self, day: i64) -> Result<Vec<ActivityRow>> {
        self.with(|t| {
            let mut by: BTreeMap<(String, String), DailyDelta> = BTreeMap::new();
            for ((_, model, provider), d) in &t.daily {
                let row = by.entry((model.clone(), provider.clone())).or_default();
                row.requests += d.requests;
                row.usage += d.usage;
            }
            by.into_iter()
                .map(|((model, provider), d)| ActivityRow {
                    day,
                    model,
                    provider,
                    requests: d.requests,
                    usage_picos: d.usage as u64,
                    ..Default::default()
                })
                .collect()
        })
    }
}
