//! Settlement: each admitted request is charged and recorded once (by generation ID),
//! out of its hold as far as the balance and the key's limit allow; what its provider
//! billed past them is recorded as the operator's loss, never dropped.

use std::collections::HashMap;

use super::books::{period_key, Books};
use super::holds::unmatched_name;
use super::ledger::{Funds, KeyBudget, LimitReset};
use super::ops::{Queued, Reply, Settled};
use super::records::Generation;
use super::settle_queue;
use super::shard::{self, Record};
use super::store::{LeaseRow, Result, Store};

/// What a batch of settlements adds up to, written once at its end.
struct Tally {
    funds: Funds,
    applied: u64,
    operator_loss: u128,
    /// Charged per (key, UTC day).
    key_days: HashMap<(String, u64), u64>,
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

/// One request being settled.
struct Item<'a> {
    caller: &'a str,
    gen_id: &'a str,
    /// The lease it was admitted against, and its worst case.
    lease: Option<(&'a str, u64)>,
    /// The session it is charged to.
    session: Option<&'a str>,
}

impl<S: Store> Books<S> {
    /// Settles a batch: each item's record and hold are written as it is applied, the
    /// running totals, key totals and daily aggregates they add to once for the batch
    /// (a batch of n costs n + a few storage writes, not 20 n). A failure fails the
    /// batch, which the isolate sends again; the caller runs it in one transaction, so
    /// a failed batch leaves nothing applied.
    pub(super) fn settle_all(&self, items: Vec<Queued>) -> Result<Reply> {
        if items.is_empty() {
            return Ok(Reply::Settled(Settled { settled: 0 }));
        }
        if self.store.outbox_len()? >= super::books::MAX_OUTBOX {
            // The shards have not taken records for long: the isolate retries this
            // batch (by its own timer) until the outbox drains.
            return Err(crate::error::Error::Internal(
                "account: records outbox full; settlement deferred".into(),
            ));
        }
        let mut tally = Tally {
            funds: self.funds()?,
            applied: 0,
            operator_loss: 0,
            key_days: HashMap::new(),
            caps: Vec::new(),
        };
        let n = items.len();
        for Queued { item: it, ask } in items {
            let item = Item {
                caller: &it.caller,
                gen_id: &it.gen_id,
                lease: it.lease.as_deref().map(|l| (l, ask)),
                session: it.session.as_deref(),
            };
            self.settle(&mut tally, &item, it.generation)?;
        }
        self.write_tally(tally)?;
        // Two old dedupe rows go for each new one: the table keeps up with any rate.
        let cutoff = self.now_ms().saturating_sub(self.cfg.settled_retention_ms);
        let batch = (n as u64).saturating_mul(2).saturating_add(16);
        self.store.prune_settled(cutoff, batch)?;
        self.prune()?;
        Ok(Reply::Settled(Settled { settled: n }))
    }

    /// Writes what a batch of settlements added up to.
    fn write_tally(&self, t: Tally) -> Result<()> {
        if t.applied == 0 {
            return Ok(());
        }
        self.store.set_total("usage", t.funds.usage)?;
        self.store.set_total("reserved", t.funds.reserved)?;
        self.add_total("operator_loss", t.operator_loss)?;
        for ((key, day), charged) in t.key_days {
            self.add_key_totals(&key, day.saturating_mul(86_400_000), charged)?;
        }
        Ok(())
    }

    /// What request `it` holds: of a closing lease its own worst case, of an open one
    /// the lease's whole hold, else its reservation.
    fn hold_of(&self, it: &Item, leased: &Option<LeaseRow>) -> Result<u64> {
        let ask = it.lease.map_or(0, |(_, ask)| ask);
        Ok(match leased {
            Some(l) if l.closing => ask.min(l.amount),
            Some(l) => l.amount,
            None => self.store.reservation(it.gen_id)?,
        })
    }

    /// Ends a request: releases its hold (its reservation, its worst case of a closing
    /// lease, or what it was charged of an open lease), charges what it cost as far as
    /// the balance and the key's limit allow ([`ledger::capture`]), records any excess
    /// as the operator's loss, and queues its record for its day's shard (the outbox);
    /// the totals go to `t`. Settling the same ID again does nothing: the dedupe table
    /// says so for `settled_retention_ms`, and a settlement of a generation made before
    /// that is too late to charge ([`Self::too_late`]).
    fn settle(&self, t: &mut Tally, it: &Item, mut g: Generation) -> Result<()> {
        if self.store.settled(it.gen_id)? {
            return Ok(());
        }
        let horizon = self.now_ms().saturating_sub(self.cfg.settled_retention_ms);
        if g.created_ms < horizon && self.store.reservation(it.gen_id)? == 0 {
            return self.too_late(t, it, &g);
        }
        let leased = it
            .lease
            .map(|(id, _)| self.store.lease(id))
            .transpose()?
            .flatten();
        // Admitted against a lease the object no longer has: it may have expired.
        let lease_gone = it.lease.filter(|_| leased.is_none()).map(|(id, _)| id);
        let hold = self.hold_of(it, &leased)?;
        let (k, p) = self.settle_cap(t, it.caller, g.created_ms)?;
        // A BYOK fee counts against the key's limit only if the key says so.
        let exempt = g.is_byok && !self.byok_in_limit(it.caller)?;
        let budget = key_budget(t, k, p, exempt);
        let held = (hold, leased.is_none());
        let (c, in_session) = self.capture_in(&t.funds, it.session, &g, held, budget)?;
        let charged = c.charged();
        let released = self.release(it, leased, hold, c.from_hold)?;
        t.funds.reserved = t.funds.reserved.saturating_sub(u128::from(released));
        t.funds.usage = t.funds.usage.saturating_add(u128::from(charged));
        if let Some((_, k)) = t.caps.get_mut(k) {
            k.held = k.held.saturating_sub(released);
            if let Some((_, spent)) = k.spent.get_mut(p).filter(|_| !exempt) {
                *spent = spent.saturating_add(charged);
            }
        }
        if c.excess > 0 {
            // Billed upstream past what the key's limit or the balance allows: not
            // charged, but recorded for the operator with the generation.
            let note = if c.by_limit && in_session {
                "billed upstream past the key's limit or the session's max_cost"
            } else if c.by_limit {
                "billed upstream past the key's limit"
            } else {
                "billed upstream past the account's balance"
            };
            t.operator_loss = t.operator_loss.saturating_add(u128::from(c.excess));
            self.entry("operator_loss", it.gen_id, it.caller, c.excess.into(), note)?;
        }
        if hold == 0 {
            self.late(it, lease_gone, g.cost_picos, charged)?;
        }
        if g.operator_loss_picos > 0 {
            let loss = u128::from(g.operator_loss_picos);
            t.operator_loss = t.operator_loss.saturating_add(loss);
            let note = g
                .operator_loss_reason
                .as_deref()
                .unwrap_or("paid upstream, not charged");
            self.entry("operator_loss", it.gen_id, it.caller, loss, note)?;
        }
        t.applied = t.applied.saturating_add(1);
        tally_record(t, it.caller, &g, if exempt { 0 } else { charged });
        // Its record names its session (`/generations?session_id=`).
        if let Some(s) = it.session {
            g.session_id = Some(s.to_string());
        }
        self.store.put_settled(it.gen_id, g.created_ms)?;
        let day = shard::day_of(it.gen_id, g.created_ms);
        self.store.put_outbox(
            day,
            &Record {
                key_hash: it.caller.to_string(),
                charged,
                generation: g,
            },
        )
    }

    /// A settlement of a generation made before the dedupe retention, with no hold of
    /// its own left: whether it was settled already is no longer known, so it is not
    /// charged (its hold expired long ago, and was recorded then); what it cost is
    /// recorded as the operator's loss, never dropped, once: not again while the
    /// entries keep an operator loss of that generation (sent again, or settled before
    /// with a loss).
    fn too_late(&self, t: &mut Tally, it: &Item, g: &Generation) -> Result<()> {
        if self.store.entry_sum("operator_loss", it.gen_id)?.is_some() {
            return Ok(());
        }
        let loss = u128::from(g.cost_picos);
        t.operator_loss = t.operator_loss.saturating_add(loss);
        t.applied = t.applied.saturating_add(1);
        let note = "settled after the dedupe retention: not charged";
        self.entry("operator_loss", it.gen_id, it.caller, loss, note)
    }

    /// Releases what request `it` held (`hold`, of which `from_hold` was charged):
    /// what comes off the `reserved` total.
    fn release(
        &self,
        it: &Item,
        leased: Option<LeaseRow>,
        hold: u64,
        from_hold: u64,
    ) -> Result<u64> {
        let ask = it.lease.map_or(0, |(_, ask)| ask);
        let now = self.now_ms();
        Ok(match leased {
            // A closing lease's requests release their worst case whole; the lease
            // ends with the last of them.
            Some(mut l) if l.closing => {
                l.in_flight = l.in_flight.saturating_sub(ask);
                let left = l.amount.saturating_sub(hold);
                if left == 0 || l.in_flight == 0 {
                    self.store.delete_lease(&l.id)?;
                    l.amount
                } else {
                    l.amount = left;
                    self.store.put_lease(&l, now)?;
                    hold
                }
            }
            // An open lease: what was charged of its hold comes off it, and the request
            // is no longer in flight on it (were the lease to expire, only requests
            // that never settled are recorded as expired holds).
            Some(mut l) => {
                l.amount = l.amount.saturating_sub(from_hold);
                l.in_flight = l.in_flight.saturating_sub(ask);
                l.settled = l.settled.saturating_add(ask);
                self.store.put_lease(&l, now)?;
                from_hold
            }
            None => {
                if hold > 0 {
                    self.store.delete_reservation(it.gen_id)?;
                }
                hold
            }
        })
    }

    /// A settlement whose hold had expired (its isolate went quiet) lands: it is matched
    /// to the `expired_hold` entry of its reservation, or of its lease (by the lease's
    /// ID), noted as `late_settle` (what it was charged), and what it held comes off
    /// `expired_holds`: its whole reservation, or its worst case of what its lease's
    /// entry still has unmatched ([`settle_queue::late_match`]).
    fn late(&self, it: &Item, lease: Option<&str>, cost: u64, charged: u64) -> Result<()> {
        let ask = it.lease.map_or(0, |(_, ask)| ask);
        let Some(expired) = self
            .store
            .entry_sum("expired_hold", lease.unwrap_or(it.gen_id))?
        else {
            return Ok(());
        };
        let matched = match lease {
            Some(id) => {
                let name = unmatched_name(id);
                let unmatched = u64::try_from(self.store.total(&name)?).unwrap_or(u64::MAX);
                let m = settle_queue::late_match(unmatched, ask, cost);
                if m >= unmatched {
                    self.store.delete_total(&name)?;
                } else {
                    self.sub_total(&name, u128::from(m))?;
                }
                m
            }
            None => expired,
        };
        self.sub_total("expired_holds", u128::from(matched))?;
        let note = match lease {
            Some(_) => "settled after its lease expired",
            None => "settled after its hold expired",
        };
        self.entry("late_settle", it.gen_id, it.caller, charged.into(), note)
    }

    /// Whether key `caller` counts its BYOK fees against its limit and usage
    /// (`include_byok_in_limit`; a deleted key does not).
    fn byok_in_limit(&self, caller: &str) -> Result<bool> {
        Ok(self
            .store
            .key(caller)?
            .is_some_and(|k| k.include_byok_in_limit))
    }

    /// Loads `caller`'s limit into the batch's caps (once per batch) and, if it has one,
    /// the spending of the period that a charge made at `created_ms` counts in: their
    /// places in the lists.
    fn settle_cap(&self, t: &mut Tally, caller: &str, created_ms: u64) -> Result<(usize, usize)> {
        let k = match t.caps.iter().position(|(h, _)| h == caller) {
            Some(k) => k,
            None => {
                let limit = match self.store.key(caller)? {
                    Some(k) => k.limit_picos.map(|l| (l, k.limit_reset)),
                    // Deleted while this request ran: the limit it had then.
                    None => self.deleted_limit(caller)?,
                };
                let cap = match limit {
                    Some((limit, reset)) => KeyCap {
                        limit: Some(limit),
                        reset,
                        held: self.store.key_held(caller)?,
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
}

/// What key `k` of the batch may still spend in its period `p` (no limit for an
/// `exempt` charge, a BYOK fee the key does not count).
fn key_budget(t: &Tally, k: usize, p: usize, exempt: bool) -> KeyBudget {
    match t.caps.get(k) {
        Some((_, k)) if k.limit.is_some() && !exempt => KeyBudget {
            limit: k.limit,
            spent: k.spent.get(p).map_or(0, |s| s.1),
            reserved: k.held,
        },
        _ => KeyBudget::default(),
    }
}

/// Adds a settled request to the batch's key totals.
fn tally_record(t: &mut Tally, caller: &str, g: &Generation, charged: u64) {
    if charged > 0 {
        let k = t
            .key_days
            .entry((caller.to_string(), g.created_ms / 86_400_000))
            .or_default();
        *k = k.saturating_add(charged);
    }
}
