//! Holds: admitting a request (its reservation, or a lease for its isolate), renewing,
//! topping up and taking back leases, and expiring the holds whose request or isolate
//! went quiet. Every hold counts in the `reserved` total and in its key's holds.

use super::books::{Books, FREE_COUNTER};
use super::lease::{self, Grant, Report};
use super::ledger;
use super::ops::{Admission, Admitted, LeaseState, Reply};
use super::records::{KeyKind, KeyRecord};
use super::store::{Entry, LeaseRow, Reservation, Result, Store, UNBOUNDED};
use crate::error::Error;
use crate::limits::Decision;

/// The running total of what an expired lease's late settlements have yet to match:
/// it goes (`Books::housekeep`) once none can land any more, a dedupe retention (and a
/// lease TTL) after the lease expired.
pub fn unmatched_name(lease_id: &str) -> String {
    format!("expired:{lease_id}")
}

impl<S: Store> Books<S> {
    pub(super) fn entry(
        &self,
        kind: &str,
        gen_id: &str,
        key: &str,
        picos: u128,
        note: &str,
    ) -> Result<()> {
        self.store.add_entry(&Entry {
            kind: kind.into(),
            gen_id: gen_id.into(),
            key_hash: key.into(),
            picos,
            note: note.into(),
            at_ms: self.now_ms(),
        })
    }

    pub(super) fn admit(&self, a: Admission) -> Result<Reply> {
        let key = self.caller(&a.caller, Some(KeyKind::Api))?;
        let allow_training = self.account()?.allow_training;
        let facts = if allow_training {
            a.if_training
        } else {
            a.if_private
        };
        let ask = facts.ask;
        // Expired holds go first (a session's included), then the session's limits.
        let session = match self.admission_session(&key, a.session.as_ref(), ask.reserve)? {
            Ok(row) => row,
            Err(refused) => return Ok(refused),
        };
        // Money first: a request refused for it counts against no request limit (and
        // the isolate's retry after making room is not counted twice).
        let (funds, budget) = (self.funds()?, self.key_budget(&key)?);
        if ask.reserve > 0 {
            ledger::check(&funds, &budget, &ask)?;
        }
        let decision = match self.request_limit(&a, &key.hash, facts.free)? {
            Ok(d) => d,
            Err(d) => {
                return Ok(Reply::Admitted(Admitted {
                    allow_training,
                    refused: Some(d),
                    ..Admitted::default()
                }))
            }
        };
        if ask.reserve > 0 {
            let r = Reservation {
                gen_id: a.gen_id.clone(),
                key_hash: key.hash.clone(),
                picos: ask.reserve,
                session: session.as_ref().map(|s| s.id.clone()),
            };
            self.store.put_reservation(&r, self.now_ms())?;
            self.add_total("reserved", u128::from(ask.reserve))?;
        }
        let session = session
            .map(|row| self.session_admitted(row, ask.reserve))
            .transpose()?;
        // A lease for the key's next requests, when they are paid and the account and
        // key can spare one; free models, per-key request rates and keys whose every
        // request has a session (admitted here) stay exact.
        let lease = if a.lease && !facts.free && a.rps.is_none() && !key.require_session_id {
            self.grant_lease(&key, &a.gen_id, ask.reserve, allow_training)?
        } else {
            None
        };
        let admitted = Admitted {
            allow_training,
            limit: decision,
            lease,
            session: session.map(Box::new),
            ..Admitted::default()
        };
        let left = ledger::Left::of(&funds, &budget, ask.reserve);
        Ok(Reply::Admitted(admitted.with_left(Some(left))))
    }

    /// Counts the request against its request limits: a free model's windows (`Err`
    /// with the refusal when one is spent), or the key's per-second rate (a 429 when
    /// spent); the tightest window that counted it, if any did.
    fn request_limit(
        &self,
        a: &Admission,
        key_hash: &str,
        free: bool,
    ) -> Result<std::result::Result<Option<Decision>, Decision>> {
        let now = self.now_ms() / 1000;
        if free {
            let d = self.store.hit(FREE_COUNTER, &a.free_windows, now)?;
            return Ok(if d.allowed { Ok(Some(d)) } else { Err(d) });
        }
        let Some(w) = a.rps.as_ref() else {
            return Ok(Ok(None));
        };
        let d = self
            .store
            .hit(&format!("rps:{key_hash}:"), std::slice::from_ref(w), now)?;
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
        Ok(Ok(Some(d)))
    }

    /// A new lease of `key` for the isolate that admitted `gen_id` (asking `reserve`), if
    /// the account and the key can spare one.
    fn grant_lease(
        &self,
        key: &KeyRecord,
        gen_id: &str,
        reserve: u64,
        allow_training: bool,
    ) -> Result<Option<Grant>> {
        let mut l = LeaseRow {
            id: format!("lease-{gen_id}"),
            key_hash: key.hash.clone(),
            amount: 0,
            in_flight: 0,
            closing: false,
            admit_until: 0,
            settled: 0,
        };
        Ok(match self.top_up(key, &l, reserve)? {
            (added, size) if added > 0 => {
                l.admit_until = lease::admit_until(0, size);
                self.put_lease(&l, added)?;
                Some(self.grant_of(l, key, (added, size), allow_training)?)
            }
            _ => None,
        })
    }

    /// The grant of lease `l` of `key`, `added` to it of its `size`, with what the
    /// account and the key have left.
    fn grant_of(
        &self,
        l: LeaseRow,
        key: &KeyRecord,
        (added, size): (u64, u64),
        allow_training: bool,
    ) -> Result<Grant> {
        Ok(Grant {
            id: l.id,
            added,
            size,
            allow_training,
            admit_until: Some(l.admit_until),
            ..Grant::default()
        }
        .with_left(self.left_of(key)?))
    }

    /// What the account and `key` have left, before any hold.
    fn left_of(&self, key: &KeyRecord) -> Result<ledger::Left> {
        Ok(ledger::Left::of(&self.funds()?, &self.key_budget(key)?, 0))
    }

    /// Ends a lease: its hold is the account's again.
    pub(super) fn drop_lease(&self, l: &LeaseRow) -> Result<()> {
        self.store.delete_lease(&l.id)?;
        self.sub_total("reserved", u128::from(l.amount))
    }

    /// Sets a lease's hold to `amount` (the `reserved` total follows) and its renewal
    /// facts.
    fn put_lease(&self, l: &LeaseRow, amount: u64) -> Result<()> {
        let row = LeaseRow {
            amount,
            ..l.clone()
        };
        self.store.put_lease(&row, self.now_ms())?;
        if amount >= l.amount {
            self.add_total("reserved", u128::from(amount.saturating_sub(l.amount)))
        } else {
            self.sub_total("reserved", u128::from(l.amount.saturating_sub(amount)))
        }
    }

    /// How far lease `l` of `key` may grow towards the policy's size for the account
    /// and key as they are now (a new lease has amount 0): what may be added, and the
    /// size.
    fn top_up(&self, key: &KeyRecord, l: &LeaseRow, need: u64) -> Result<(u64, u64)> {
        let funds = self.funds()?;
        let budget = self.key_budget(key)?;
        let size = lease::size(&self.cfg.lease_policy, &funds, &budget, l.amount, need);
        Ok((size.saturating_sub(l.amount).min(funds.available()), size))
    }

    /// Renews, tops up or takes back an isolate's lease. Revoked (the isolate drops it
    /// and admits exactly again) when the key is gone or disabled, the lease expired,
    /// or the key's limit no longer covers what it holds; then the lease is closing:
    /// only the worst cases of the requests still running against it stay held, each
    /// until its settlement lands. A renewal answers, with the lease, up to how much
    /// the isolate may admit against it in all before it reports again.
    pub(super) fn lease_op(&self, caller: &str, id: &str, r: Report) -> Result<Reply> {
        let Report {
            in_flight,
            admitted,
            top_up,
            release,
        } = r;
        let revoked = || {
            Ok(Reply::Lease(LeaseState {
                lease: None,
                revoked: true,
            }))
        };
        let Some(mut l) = self.store.lease(id)? else {
            return revoked();
        };
        if l.key_hash != caller {
            return Err(Error::Forbidden(
                "This lease belongs to another key.".into(),
            ));
        }
        if l.closing {
            return revoked();
        }
        l.in_flight = in_flight;
        // The lease stays only for an enabled API key whose limit still covers what it
        // holds, and only if the isolate keeps it.
        let kept = match self.caller(caller, Some(KeyKind::Api)) {
            Ok(k) if !release && !k.require_session_id => {
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
            return revoked();
        };
        let allow_training = self.account()?.allow_training;
        let (added, size) = if top_up {
            self.top_up(&key, &l, 0)?
        } else {
            (0, l.amount)
        };
        let size = size.max(l.amount);
        // Only ever raised, so that it is never below what an isolate whose answer
        // was lost goes by.
        l.admit_until = admitted.map_or(UNBOUNDED, |a| {
            l.admit_until.max(lease::admit_until(a, size))
        });
        self.put_lease(&l, l.amount.saturating_add(added))?;
        let grant = self.grant_of(l, &key, (added, size), allow_training)?;
        Ok(Reply::Lease(LeaseState {
            lease: Some(grant),
            revoked: false,
        }))
    }

    /// Expires the holds of requests that neither settled nor renewed within the TTL
    /// (their worker died): each is released from the balance but recorded as an
    /// `expired_hold` entry for the operator to reconcile, never dropped silently; a
    /// settle that still comes later is charged as usual.
    pub fn expire_reservations(&self) -> Result<()> {
        let cutoff = self.now_ms().saturating_sub(self.cfg.reservation_ttl_ms);
        for r in self.store.stale_reservations(cutoff)? {
            let picos = u128::from(r.picos);
            self.entry(
                "expired_hold",
                &r.gen_id,
                &r.key_hash,
                picos,
                "no settlement or renewal within the reservation TTL",
            )?;
            self.store.delete_reservation(&r.gen_id)?;
            self.sub_total("reserved", picos)?;
            if let Some(id) = &r.session {
                self.session_release(id, r.picos)?;
            }
            self.add_total("expired_holds", picos)?;
        }
        self.expire_leases()
    }

    /// Expires the leases that were neither renewed nor returned within the lease TTL
    /// (their isolate is gone): the hold is released; the part that requests admitted
    /// against it could still owe is recorded as an `expired_hold` for the operator
    /// (those requests' settlements never came): what its isolate may have admitted in
    /// all by its last report's bound (`admit_until`, which counts what it admitted
    /// after that report, unknown here), less the worst cases that settled, at most what
    /// the lease held; the rest is simply the account's again. A closing lease is no longer renewed by anyone (its isolate
    /// dropped it): it holds the worst cases of requests still running, and lives as
    /// long as their own reservations would, so that a request that outlasts the lease
    /// TTL keeps its hold and leaves no false `expired_hold`.
    fn expire_leases(&self) -> Result<()> {
        let now = self.now_ms();
        let open = now.saturating_sub(self.cfg.lease_ttl_ms);
        let closing = now.saturating_sub(self.cfg.reservation_ttl_ms.max(self.cfg.lease_ttl_ms));
        for l in self.store.stale_leases(open, closing)? {
            let owed = if l.closing {
                l.in_flight
            } else {
                l.admit_until.saturating_sub(l.settled)
            };
            let running = owed.min(l.amount);
            if running > 0 {
                self.entry(
                    "expired_hold",
                    &l.id,
                    &l.key_hash,
                    u128::from(running),
                    "what requests admitted against a lease whose isolate stopped renewing it could still owe",
                )?;
                self.add_total("expired_holds", u128::from(running))?;
                // What its late settlements have yet to account for (see `late`).
                let name = unmatched_name(&l.id);
                self.add_total(&name, u128::from(running))?;
                self.store.expire_total(&name, self.kept_until())?;
            }
            self.drop_lease(&l)?;
        }
        Ok(())
    }
}
