//! A [`Store`] in maps, for tests: a settable clock, transactions (a snapshot put
//! back when the change fails) and fault injection (fail the Nth storage call).
#![allow(clippy::arithmetic_side_effects)] // test-only sums of small amounts

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;

use super::records::{ActivityRow, Generation, KeyRecord};
use super::store::{AccountRow, Charged, DailyDelta, Entry, LeaseRow, Reservation, Result, Store};
use crate::error::Error;
use crate::limits::{self, Decision, MemoryCounters, Window};

#[derive(Debug, Clone, Default, PartialEq)]
pub struct State {
    pub account: Option<AccountRow>,
    pub totals: BTreeMap<String, u128>,
    pub grants: Vec<(u64, String, u64)>,
    pub keys: BTreeMap<String, KeyRecord>,
    /// gen_id → (key, picos, at_ms).
    pub reservations: BTreeMap<String, (String, u64, u64)>,
    /// id → (lease, at_ms).
    pub leases: BTreeMap<String, (LeaseRow, u64)>,
    pub key_totals: BTreeMap<(String, String), u128>,
    pub daily: BTreeMap<(i64, String, String, String), DailyDelta>,
    pub entries: Vec<Entry>,
    /// id → (key, record, charged).
    pub generations: BTreeMap<String, (String, Generation, u64)>,
    pub counters: BTreeMap<String, limits::WindowState>,
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

fn newest(s: &State, key: Option<&str>) -> Vec<Charged> {
    let mut all: Vec<Charged> = s
        .generations
        .values()
        .filter(|(k, _, _)| key.is_none_or(|key| key == k))
        .map(|(_, g, c)| Charged {
            generation: g.clone(),
            charged: *c,
        })
        .collect();
    all.sort_by_key(|c| std::cmp::Reverse(c.generation.created_ms));
    all
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
    fn add_daily(
        &self,
        day: i64,
        key: &str,
        model: &str,
        provider: &str,
        d: &DailyDelta,
    ) -> Result<()> {
        self.write(|s| {
            let k = (day, key.into(), model.into(), provider.into());
            let row = s.daily.entry(k).or_default();
            row.requests += d.requests;
            row.usage += d.usage;
            row.prompt += d.prompt;
            row.completion += d.completion;
            row.reasoning += d.reasoning;
            row.cached += d.cached;
        })
    }
    fn activity(&self, from: i64, to: i64) -> Result<Vec<ActivityRow>> {
        self.read(|s| {
            let mut by: BTreeMap<(i64, String, String), DailyDelta> = BTreeMap::new();
            for ((day, _, model, provider), d) in &s.daily {
                if (from..=to).contains(day) {
                    let row = by
                        .entry((*day, model.clone(), provider.clone()))
                        .or_default();
                    row.requests += d.requests;
                    row.usage += d.usage;
                }
            }
            by.into_iter()
                .rev()
                .map(|((day, model, provider), d)| ActivityRow {
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
    fn add_entry(&self, e: &Entry) -> Result<()> {
        self.write(|s| s.entries.push(e.clone()))
    }
    fn expired_hold(&self, gen_id: &str) -> Result<Option<u64>> {
        self.read(|s| {
            let mine = s
                .entries
                .iter()
                .filter(|e| e.kind == "expired_hold" && e.gen_id == gen_id);
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
    fn has_generation(&self, id: &str) -> Result<bool> {
        self.read(|s| s.generations.contains_key(id))
    }
    fn put_generation(&self, key_hash: &str, g: &Generation, charged: u64) -> Result<()> {
        self.write(|s| {
            let row = (key_hash.to_string(), g.clone(), charged);
            s.generations.insert(g.id.clone(), row);
        })
    }
    fn generation(&self, id: &str, key: Option<&str>) -> Result<Option<Charged>> {
        self.read(|s| {
            s.generations
                .get(id)
                .filter(|(k, _, _)| key.is_none_or(|key| key == k))
                .map(|(_, g, c)| Charged {
                    generation: g.clone(),
                    charged: *c,
                })
        })
    }
    fn generations(&self, key: Option<&str>, limit: u32) -> Result<Vec<Charged>> {
        self.read(|s| newest(s, key).into_iter().take(limit as usize).collect())
    }
    fn prune_generations(&self, before_ms: u64) -> Result<()> {
        self.write(|s| {
            s.generations
                .retain(|_, (_, g, _)| g.created_ms >= before_ms)
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
