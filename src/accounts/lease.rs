//! Credit leases: how an isolate admits paid requests without a round trip to the
//! account's Durable Object.
//!
//! The account's object grants an isolate a *lease*: a slice of the account's balance
//! (and of the key's limit) that it holds in reserve exactly like a request's hold, so
//! that no other admission can spend it. The isolate then admits requests whose worst
//! case fits in what is left of the lease, from memory, and gives back what each
//! request did not spend when it settles. Settlements reach the object in batches and
//! charge the lease's hold there. The account can never spend more than its balance:
//! every picodollar an isolate admits against is held by the object, and what is
//! admitted locally is at most what is held.
//!
//! What the object knows of what an isolate admitted is at most one report old: each
//! renewal says how much the isolate has admitted against the lease in all, and the
//! object answers up to how much it may admit in all before its next report lands
//! ([`admit_until`]: what it reported and half the lease's size). An isolate that dies
//! can therefore have admitted, unknown to the object, at most that: when the lease
//! expires, the object records as an expired hold the worst cases that requests
//! admitted against it could still owe, up to that bound less what settled, never
//! more than the lease held ([`Policy`], `books::holds`).
//!
//! What the isolate knows about the key (enabled, its limit, the account's privacy
//! setting) is at most `fresh_ms` old: renewals refresh it in the background, and an
//! isolate whose last contact is older admits exactly (through the object) again. So
//! a disabled key or a lowered limit takes effect within `fresh_ms`.
//!
//! [`LeaseBook`] is the isolate's side; [`size`] is the object's sizing rule.

use std::collections::HashMap;

use super::ledger::{Funds, KeyBudget, Left};

/// How large the leases of an account may be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// No lease is larger than this (`LEASE_MAX_PICOS`).
    pub max: u64,
    /// Nor smaller: an account or key that cannot spare this much admits exactly.
    pub min: u64,
    /// A lease takes at most this fraction (1/`divisor`) of what the account has left
    /// and of what the key has left of its limit, so that several isolates can hold
    /// one each and the balance near zero is always admitted exactly.
    pub divisor: u64,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            max: 1_000_000_000_000, // $1
            min: 10_000_000_000,    // $0.01
            divisor: 8,
        }
    }
}

/// The most an isolate may have admitted against a lease in all (the sum of the worst
/// cases it admitted) before its next report lands, when it reported `admitted` and
/// the lease's size is `size`: the object's bound of what the isolate could have
/// admitted unreported is half a lease.
pub fn admit_until(admitted: u64, size: u64) -> u64 {
    admitted.saturating_add(size / 2)
}

/// The size of a lease for an account with `funds` and a key with `key` (whose
/// `reserved` already counts this isolate's current lease, if any, and `held` is that
/// lease's amount); 0 when the account or key cannot spare [`Policy::min`], or not
/// `need` (the request asking for it: a lease must serve more than that one request).
pub fn size(policy: &Policy, funds: &Funds, key: &KeyBudget, held: u64, need: u64) -> u64 {
    let available = funds.available().saturating_add(held);
    let mut size = policy
        .max
        .min(available.checked_div(policy.divisor).unwrap_or(0));
    if let Some(limit) = key.limit {
        let key_left = limit
            .saturating_sub(key.spent)
            .saturating_sub(key.reserved.saturating_sub(held));
        size = size.min(key_left.checked_div(policy.divisor).unwrap_or(0));
    }
    if size < policy.min || size < need.saturating_mul(4) {
        return 0;
    }
    size
}

/// What an isolate says of its lease when it renews or returns it.
#[derive(Debug, Clone, Copy)]
pub struct Report {
    /// The worst cases of its requests running against it.
    pub in_flight: u64,
    /// The worst cases of all it admitted against it, summed (none: it does not say).
    pub admitted: Option<u64>,
    pub top_up: bool,
    /// It gives the lease back.
    pub release: bool,
}

/// What the object answered to a grant or a renewal.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct Grant {
    pub id: String,
    /// Picodollars added to the lease's hold (0 when it could not grow).
    pub added: u64,
    /// The lease's size now (what the isolate tops it up towards).
    pub size: u64,
    pub allow_training: bool,
    /// Up to how much the isolate may admit against the lease in all until its next
    /// report lands ([`admit_until`]); absent from an object of the previous version,
    /// which sets no bound.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub admit_until: Option<u64>,
    /// What the account and the key's limit had left as of this answer (before any
    /// hold; [`Left`]), for the replies of requests admitted against the lease.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credits_left: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_left: Option<u64>,
}

impl Grant {
    pub fn with_left(self, left: Left) -> Self {
        Grant {
            credits_left: Some(left.credits),
            key_left: left.key,
            ..self
        }
    }

    fn left(&self) -> Option<Left> {
        Some(Left {
            credits: self.credits_left?,
            key: self.key_left,
        })
    }
}

/// One lease, as the isolate holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    pub id: String,
    pub account: String,
    pub allow_training: bool,
    pub size: u64,
    /// What may still be admitted against it.
    pub remaining: u64,
    /// Requests admitted against it and not yet finished, and their worst cases.
    pub in_flight: u64,
    pub in_flight_picos: u64,
    /// The worst cases of every request admitted against it, summed (what renewals
    /// report), and the bound on that sum the object last answered.
    pub admitted: u64,
    pub admit_until: Option<u64>,
    /// Last contact with the object (grant or renewal): what the isolate knows of the
    /// key is this old.
    pub synced_ms: u64,
    pub used_ms: u64,
    /// A renewal or return is on its way.
    pub busy: bool,
    /// What the object last said the account and key had left, what the key's
    /// requests finished in this isolate have cost since, and the part of that the
    /// renewal on its way accounts for.
    pub left: Option<Left>,
    pub spent_since: u64,
    pub spent_reported: u64,
}

/// A request admitted against a lease.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Ticket {
    pub lease_id: String,
    pub ask: u64,
}

/// What the isolate should send to keep a lease fresh or full.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Renewal {
    pub account: String,
    pub lease_id: String,
    pub in_flight_picos: u64,
    pub admitted: u64,
    pub top_up: bool,
}

/// The leases an isolate holds, one per API key (key limits are per key).
#[derive(Debug, Default)]
pub struct LeaseBook {
    by_key: HashMap<String, Lease>,
}

impl LeaseBook {
    /// The privacy setting under which `key` may be admitted from its lease, if it
    /// holds one that is fresh (last contact under `fresh_ms` ago).
    pub fn usable(&self, key: &str, now: u64, fresh_ms: u64) -> Option<bool> {
        let l = self.by_key.get(key)?;
        (now.saturating_sub(l.synced_ms) < fresh_ms).then_some(l.allow_training)
    }

    /// Admits a request with worst case `ask` against `key`'s lease, if it is fresh, has
    /// that much left, and the object's bound on what it admits unreported allows it.
    pub fn admit(&mut self, key: &str, ask: u64, now: u64, fresh_ms: u64) -> Option<Ticket> {
        let l = self.by_key.get_mut(key)?;
        let admitted = l.admitted.checked_add(ask)?;
        if now.saturating_sub(l.synced_ms) >= fresh_ms
            || ask > l.remaining
            || l.admit_until.is_some_and(|cap| admitted > cap)
        {
            return None;
        }
        l.admitted = admitted;
        l.remaining = l.remaining.saturating_sub(ask);
        l.in_flight = l.in_flight.saturating_add(1);
        l.in_flight_picos = l.in_flight_picos.saturating_add(ask);
        l.used_ms = now;
        Some(Ticket {
            lease_id: l.id.clone(),
            ask,
        })
    }

    /// A request admitted by `t` ended costing `cost`: what it did not spend of its
    /// worst case goes back to the lease (if the lease is still held), and what it
    /// spent beyond it (which the worst case should never allow) comes off.
    pub fn finish(&mut self, key: &str, t: &Ticket, cost: u64, now: u64) {
        let Some(l) = self.by_key.get_mut(key).filter(|l| l.id == t.lease_id) else {
            return;
        };
        l.in_flight = l.in_flight.saturating_sub(1);
        l.in_flight_picos = l.in_flight_picos.saturating_sub(t.ask);
        l.remaining = l
            .remaining
            .saturating_add(t.ask.saturating_sub(cost))
            .saturating_sub(cost.saturating_sub(t.ask));
        l.used_ms = now;
    }

    /// Takes in a grant or renewal of `key`'s lease from the object.
    pub fn granted(&mut self, key: &str, account: &str, g: &Grant, now: u64) {
        match self.by_key.get_mut(key) {
            Some(l) if l.id == g.id => {
                l.remaining = l.remaining.saturating_add(g.added);
                l.size = g.size;
                l.allow_training = g.allow_training;
                l.admit_until = g.admit_until;
                l.synced_ms = now;
                l.busy = false;
                l.left = g.left();
                l.spent_since = l.spent_since.saturating_sub(l.spent_reported);
                l.spent_reported = 0;
            }
            // A second lease for a key that holds one (two grants raced): keep the
            // first; the second is returned by the caller.
            Some(_) => {}
            None => {
                self.by_key.insert(
                    key.to_string(),
                    Lease {
                        id: g.id.clone(),
                        account: account.to_string(),
                        allow_training: g.allow_training,
                        size: g.size,
                        remaining: g.added,
                        in_flight: 0,
                        in_flight_picos: 0,
                        admitted: 0,
                        admit_until: g.admit_until,
                        synced_ms: now,
                        used_ms: now,
                        busy: false,
                        left: g.left(),
                        spent_since: 0,
                        spent_reported: 0,
                    },
                );
            }
        }
    }

    /// A request of `key` finished in this isolate costing `cost` (admitted against
    /// its lease or not).
    pub fn spent(&mut self, key: &str, cost: u64) {
        if let Some(l) = self.by_key.get_mut(key) {
            l.spent_since = l.spent_since.saturating_add(cost);
        }
    }

    /// What the account and key have left after a hold of `ask` against `key`'s lease,
    /// as of the object's last answer less what the key's requests cost since.
    pub fn left(&self, key: &str, ask: u64) -> Option<Left> {
        let l = self.by_key.get(key)?;
        Some(l.left?.less(l.spent_since.saturating_add(ask)))
    }

    /// Whether `key` holds lease `id`.
    pub fn holds(&self, key: &str, id: &str) -> bool {
        self.by_key.get(key).is_some_and(|l| l.id == id)
    }

    /// A renewal that `key`'s lease needs now (and marks it on its way): when what the
    /// isolate knows is past half its freshness, the lease is below half its size, or
    /// what it admitted since its last report is past half the bound on that.
    pub fn renewal_due(&mut self, key: &str, now: u64, fresh_ms: u64) -> Option<Renewal> {
        let l = self.by_key.get_mut(key)?;
        let stale = now.saturating_sub(l.synced_ms) >= fresh_ms / 2;
        let low = l.remaining < l.size / 2;
        let unreported = l
            .admit_until
            .is_some_and(|cap| cap.saturating_sub(l.admitted) < l.size / 4);
        if l.busy || !(stale || low || unreported) {
            return None;
        }
        l.busy = true;
        l.spent_reported = l.spent_since;
        Some(Renewal {
            account: l.account.clone(),
            lease_id: l.id.clone(),
            in_flight_picos: l.in_flight_picos,
            admitted: l.admitted,
            top_up: low,
        })
    }

    /// A renewal did not get through: the next request tries again.
    pub fn renewal_failed(&mut self, key: &str, id: &str) {
        if let Some(l) = self.by_key.get_mut(key).filter(|l| l.id == id) {
            l.busy = false;
            l.spent_reported = 0;
        }
    }

    /// The object revoked the lease (key disabled or deleted, limit lowered, lease
    /// expired): it is dropped and the key's next request is admitted exactly.
    pub fn revoke(&mut self, key: &str, id: &str) {
        if self.holds(key, id) {
            self.by_key.remove(key);
        }
    }

    /// Removes `key`'s lease if nothing ran against it for `idle_ms` and nothing runs
    /// now, to be returned to the object.
    pub fn take_idle(&mut self, key: &str, now: u64, idle_ms: u64) -> Option<Surrender> {
        let l = self.by_key.get(key)?;
        if l.in_flight > 0 || l.busy || now.saturating_sub(l.used_ms) < idle_ms {
            return None;
        }
        self.by_key.remove(key).map(Surrender::of)
    }

    pub fn get(&self, key: &str) -> Option<&Lease> {
        self.by_key.get(key)
    }

    /// Gives up `key`'s lease for an exact admission that its hold is in the way of (a
    /// stale lease, or one too small for the request, holding credit the object would
    /// otherwise grant): removed here at once, so nothing more is admitted against it,
    /// it is to be returned keeping only what its running requests may still spend.
    /// Not while a renewal is on its way (its answer would bring the lease back).
    pub fn surrender(&mut self, key: &str) -> Option<Surrender> {
        if self.by_key.get(key)?.busy {
            return None;
        }
        self.by_key.remove(key).map(Surrender::of)
    }
}

/// A lease given up by [`LeaseBook::surrender`], to be returned to the object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Surrender {
    pub account: String,
    pub lease_id: String,
    pub in_flight_picos: u64,
    pub admitted: u64,
}

impl Surrender {
    fn of(l: Lease) -> Self {
        Surrender {
            account: l.account,
            lease_id: l.id,
            in_flight_picos: l.in_flight_picos,
            admitted: l.admitted,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const USD: u64 = 1_000_000_000_000;

    /// A book holding lease `l1` of 100 picodollars for key `k`, granted at `at`.
    fn book(allow_training: bool, at: u64) -> (LeaseBook, Grant) {
        let mut b = LeaseBook::default();
        let g = Grant {
            id: "l1".into(),
            added: 100,
            size: 100,
            allow_training,
            admit_until: None,
            ..Grant::default()
        };
        b.granted("k", "acc", &g, at);
        (b, g)
    }

    fn funds(credits: u128, usage: u128, reserved: u128) -> Funds {
        Funds {
            credits,
            usage,
            reserved,
        }
    }

    #[test]
    fn sizing_takes_a_fraction_within_bounds() {
        let p = Policy::default();
        let none = KeyBudget::default();
        // $10 left: 1/8 would be $1.25, capped at $1.
        assert_eq!(
            size(&p, &funds(10 * 1_000_000_000_000, 0, 0), &none, 0, 1),
            USD
        );
        // $0.40 left: $0.05.
        let f = funds(400_000_000_000, 0, 0);
        assert_eq!(size(&p, &f, &none, 0, 1), 50_000_000_000);
        // Too little left for the minimum: exact admission.
        assert_eq!(size(&p, &funds(50_000_000_000, 0, 0), &none, 0, 1), 0);
        // A request as large as a quarter of the lease: exact admission.
        assert_eq!(size(&p, &f, &none, 0, 20_000_000_000), 0);
        // The key's limit bounds it too: $0.16 left of the limit → $0.02.
        let key = KeyBudget {
            limit: Some(200_000_000_000),
            spent: 40_000_000_000,
            reserved: 0,
        };
        assert_eq!(
            size(&p, &funds(100 * u128::from(USD), 0, 0), &key, 0, 1),
            20_000_000_000
        );
        // The lease being renewed counts as available again, not as taken.
        let held = 50_000_000_000;
        let f = funds(400_000_000_000, 0, u128::from(held));
        assert_eq!(size(&p, &f, &none, held, 1), 50_000_000_000);
    }

    #[test]
    fn admitting_spends_and_finishing_gives_back() {
        let (mut b, _) = book(false, 0);
        assert_eq!(b.usable("k", 10, 5_000), Some(false));
        let t1 = b.admit("k", 60, 10, 5_000).unwrap();
        assert!(b.admit("k", 50, 10, 5_000).is_none(), "more than is left");
        let t2 = b.admit("k", 40, 10, 5_000).unwrap();
        assert_eq!(b.get("k").unwrap().remaining, 0);
        b.finish("k", &t1, 15, 20);
        assert_eq!(b.get("k").unwrap().remaining, 45);
        // A cost above the ask takes the difference from what is left.
        b.finish("k", &t2, 70, 20);
        assert_eq!(b.get("k").unwrap().remaining, 15);
        assert_eq!(b.get("k").unwrap().in_flight, 0);
    }

    #[test]
    fn what_is_left_follows_the_keys_costs_since_the_last_answer() {
        let left = |credits, key| Some(Left { credits, key });
        let mut b = LeaseBook::default();
        let g = Grant {
            id: "l1".into(),
            added: 100,
            size: 100,
            allow_training: true,
            admit_until: None,
            credits_left: Some(1_000),
            key_left: Some(500),
        };
        b.granted("k", "acc", &g, 0);
        assert_eq!(b.left("k", 30), left(970, Some(470)), "less the hold");
        b.spent("k", 20);
        assert_eq!(b.left("k", 0), left(980, Some(480)));
        b.renewal_due("k", 10_000, 5_000).unwrap();
        // Finished while the renewal is on its way: not in its answer.
        b.spent("k", 5);
        let renewed = Grant {
            credits_left: Some(980),
            key_left: Some(480),
            ..g.clone()
        };
        b.granted("k", "acc", &renewed, 10_001);
        assert_eq!(b.left("k", 0), left(975, Some(475)));
        assert_eq!(b.left("k", 10_000), left(0, Some(0)), "never below zero");
        assert_eq!(b.left("other", 0), None);
        b.renewal_due("k", 20_000, 5_000).unwrap();
        b.renewal_failed("k", "l1");
        b.granted("k", "acc", &renewed, 20_001);
        assert_eq!(
            b.left("k", 0),
            left(975, Some(475)),
            "a failed renewal reports nothing"
        );
    }

    #[test]
    fn stale_leases_are_not_used() {
        let (mut b, _) = book(true, 1_000);
        assert!(b.admit("k", 1, 5_999, 5_000).is_some());
        assert_eq!(b.usable("k", 6_000, 5_000), None);
        assert!(b.admit("k", 1, 6_000, 5_000).is_none());
    }

    #[test]
    fn renewals_when_stale_or_low_once_at_a_time() {
        let (mut b, g) = book(true, 0);
        assert_eq!(b.renewal_due("k", 1_000, 5_000), None);
        let t = b.admit("k", 60, 1_000, 5_000).unwrap();
        let r = b.renewal_due("k", 1_000, 5_000).unwrap();
        assert!(r.top_up);
        assert_eq!(r.in_flight_picos, 60);
        assert_eq!(b.renewal_due("k", 1_000, 5_000), None, "one on its way");
        b.granted(
            "k",
            "acc",
            &Grant {
                added: 60,
                ..g.clone()
            },
            1_500,
        );
        assert_eq!(b.get("k").unwrap().remaining, 100);
        b.finish("k", &t, 60, 1_600);
        // Half the freshness later: a refresh without top-up.
        let r = b.renewal_due("k", 4_000, 5_000).unwrap();
        assert!(!r.top_up);
        b.renewal_failed("k", "l1");
        assert!(b.renewal_due("k", 4_000, 5_000).is_some());
    }

    #[test]
    fn idle_leases_are_returned_revoked_ones_dropped() {
        let (mut b, g) = book(true, 0);
        let t = b.admit("k", 10, 100, 5_000).unwrap();
        assert_eq!(b.take_idle("k", 60_000, 1_000), None, "a request runs");
        b.finish("k", &t, 1, 200);
        assert_eq!(b.take_idle("k", 1_000, 1_000), None, "used recently");
        let back = b.take_idle("k", 1_200, 1_000).unwrap();
        assert_eq!((back.lease_id.as_str(), back.admitted), ("l1", 10));
        assert!(b.get("k").is_none());
        b.granted("k", "acc", &g, 0);
        b.revoke("k", "other");
        assert!(b.get("k").is_some());
        b.revoke("k", "l1");
        assert!(b.get("k").is_none());
        // A late finish of a dropped lease's request changes nothing.
        b.finish("k", &t, 1, 300);
    }

    #[test]
    fn a_lease_in_the_way_is_surrendered_with_what_runs_against_it() {
        let (mut b, _) = book(true, 0);
        let t = b.admit("k", 30, 100, 5_000).unwrap();
        b.renewal_due("k", 6_000, 5_000).unwrap();
        assert_eq!(b.surrender("k"), None, "not while a renewal is on its way");
        b.renewal_failed("k", "l1");
        assert_eq!(
            b.surrender("k"),
            Some(Surrender {
                account: "acc".into(),
                lease_id: "l1".into(),
                in_flight_picos: 30,
                admitted: 30,
            })
        );
        assert!(b.get("k").is_none());
        assert_eq!(b.admit("k", 1, 6_100, 5_000), None);
        // Its running request still finishes without harm.
        b.finish("k", &t, 20, 6_200);
        assert_eq!(b.surrender("k"), None);
    }

    #[test]
    fn a_racing_second_grant_keeps_the_first() {
        let (mut b, g) = book(true, 0);
        b.granted(
            "k",
            "acc",
            &Grant {
                id: "l2".into(),
                ..g.clone()
            },
            0,
        );
        assert!(b.holds("k", "l1"));
        assert!(!b.holds("k", "l2"));
    }
}

#[cfg(test)]
mod reporting {
    use super::*;

    /// Admissions unknown to the object stay within the bound it answered, and a
    /// renewal falls due before they reach it.
    #[test]
    fn unreported_admissions_stop_at_the_objects_bound() {
        let mut b = LeaseBook::default();
        let g = Grant {
            id: "l1".into(),
            added: 1_000,
            size: 1_000,
            allow_training: true,
            admit_until: Some(admit_until(0, 1_000)),
            ..Grant::default()
        };
        b.granted("k", "acc", &g, 0);
        let admit = |b: &mut LeaseBook, n| {
            for _ in 0..n {
                let t = b.admit("k", 100, 1, 5_000).unwrap();
                b.finish("k", &t, 10, 1);
            }
        };
        admit(&mut b, 2);
        assert_eq!(b.renewal_due("k", 1, 5_000), None, "300 of room left");
        admit(&mut b, 3);
        assert!(
            b.admit("k", 1, 1, 5_000).is_none(),
            "500 admitted unreported"
        );
        let r = b.renewal_due("k", 1, 5_000).unwrap();
        assert_eq!((r.admitted, r.top_up), (500, false));
        let renewed = Grant {
            added: 0,
            admit_until: Some(admit_until(r.admitted, 1_000)),
            ..g
        };
        b.granted("k", "acc", &renewed, 2);
        assert!(
            b.admit("k", 100, 3, 5_000).is_some(),
            "reported: room again"
        );
    }
}
