//! Session budgets (issue 24): what a session has spent, made and used, and what it
//! may, kept in the account's object beside the holds. A request of a session is
//! admitted exactly (its own reservation, never a lease): its worst case must fit in
//! what the session's `max_cost` leaves after every hold its other requests have
//! outstanding, so concurrent requests can never settle past it; its settlement charges
//! the session once (the generation dedupe) and never past `max_cost`, whatever the
//! provider bills (the excess is the operator's loss, as past a key's limit).
//!
//! Sessions are kept as long as generation records (`GENERATION_RETENTION_DAYS` after
//! their last request) and at most [`MAX_SESSIONS`] per account, the least recently used
//! going first; a session with holds outstanding is never dropped.

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::books::Books;
use super::ledger::{self, Capture, Funds, KeyBudget};
use super::ops::{Admitted, Reply};
use super::records::Generation;
use super::records::{KeyKind, KeyRecord};
use super::store::{Result, Store};
use crate::api::session::{join_numbers, split_numbers, LimitsPatch, SessionAsk, SessionLimits};
use crate::error::Error;
use crate::money::Usd;

/// The most sessions an account keeps.
pub const MAX_SESSIONS: u64 = 100_000;
/// The most sessions one listing returns (as many as generations).
pub const MAX_SESSIONS_LISTED: u32 = super::ops::MAX_GENERATIONS_LISTED;

/// Limits as the account API shows them: `max_cost` in USD as the other amounts are,
/// an unset limit null.
pub fn limits_json(l: &SessionLimits) -> Value {
    json!({
        "max_cost": l.max_cost.map(ledger::usd),
        "max_requests": l.max_requests,
        "max_tokens": l.max_tokens,
        "max_duration_s": l.max_duration_s,
    })
}

/// A call of the sessions API (`Op::Sessions`). On the wire one string (one variant
/// of `Op` for the three: each costs the wasm its own decoder): `get|ID`, `list|N`,
/// or `patch|` the limits set as text `|` the bits of those removed `|ID`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub enum SessionCall {
    /// `GET /sessions/{id}`.
    Get(String),
    /// `GET /sessions?limit=`.
    List(u32),
    /// `PATCH /sessions/{id}`.
    Update(String, LimitsPatch),
}

impl From<SessionCall> for String {
    fn from(c: SessionCall) -> String {
        match c {
            SessionCall::Get(id) => format!("get|{id}"),
            SessionCall::List(n) => format!("list|{n}"),
            SessionCall::Update(id, p) => format!("patch|{}|{}|{id}", p.set.to_text(), p.removed),
        }
    }
}

impl TryFrom<String> for SessionCall {
    type Error = &'static str;
    fn try_from(s: String) -> std::result::Result<Self, Self::Error> {
        let bad = "not a sessions call";
        let (kind, rest) = s.split_once('|').ok_or(bad)?;
        match kind {
            "get" => Ok(SessionCall::Get(rest.into())),
            "list" => rest.parse().map(SessionCall::List).map_err(|_| bad),
            "patch" => {
                let mut f = rest.splitn(3, '|');
                let (set, removed, id) = (f.next(), f.next(), f.next());
                let patch = LimitsPatch {
                    set: set.and_then(SessionLimits::from_text).ok_or(bad)?,
                    removed: removed.and_then(|r| r.parse().ok()).ok_or(bad)?,
                };
                Ok(SessionCall::Update(id.ok_or(bad)?.into(), patch))
            }
            _ => Err(bad),
        }
    }
}

/// One session as the account's object keeps it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SessionRow {
    pub id: String,
    /// The key whose request made it (it may raise its limits, as a provisioning key may).
    pub key_hash: String,
    pub limits: SessionLimits,
    /// Charged, picodollars.
    pub cost: u64,
    /// Admitted (a request counts when it is admitted).
    pub requests: u64,
    /// Prompt and completion tokens of its settled requests.
    pub tokens: u64,
    /// The worst cases of its requests not yet settled.
    pub held: u64,
    pub first_ms: u64,
    pub last_ms: u64,
}

/// What a reply says of its session (`X-Session-*` headers, `usage.session`), as of
/// the request's admission. On the wire one string: its numbers ([`join_numbers`]),
/// `|`, the ID.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub struct SessionView {
    pub id: String,
    pub cost: u64,
    pub requests: u64,
    pub tokens: u64,
    /// Of `max_cost`, what neither charges nor holds (this request's included) take.
    pub remaining_cost: Option<u64>,
    pub remaining_requests: Option<u64>,
    pub max_cost: Option<u64>,
    /// What the session's other requests under way hold.
    pub others_held: u64,
}

impl From<SessionView> for String {
    fn from(v: SessionView) -> String {
        let n = [
            Some(v.cost),
            Some(v.requests),
            Some(v.tokens),
            v.remaining_cost,
            v.remaining_requests,
            v.max_cost,
            Some(v.others_held),
        ];
        format!("{}|{}", join_numbers(&n), v.id)
    }
}

impl TryFrom<String> for SessionView {
    type Error = &'static str;
    fn try_from(s: String) -> std::result::Result<Self, Self::Error> {
        let (numbers, id) = s.split_once('|').ok_or("not a session")?;
        match split_numbers(numbers).as_deref() {
            Some(
                &[Some(cost), Some(requests), Some(tokens), remaining_cost, remaining_requests, max_cost, Some(others_held)],
            ) => Ok(SessionView {
                id: id.to_string(),
                cost,
                requests,
                tokens,
                remaining_cost,
                remaining_requests,
                max_cost,
                others_held,
            }),
            _ => Err("not a session"),
        }
    }
}

impl SessionRow {
    pub fn new(id: &str, key_hash: &str, now_ms: u64) -> Self {
        SessionRow {
            id: id.into(),
            key_hash: key_hash.into(),
            first_ms: now_ms,
            last_ms: now_ms,
            ..SessionRow::default()
        }
    }

    /// Its figures as one line of text (what storage keeps beside its ID and key):
    /// numbers joined by `,`, an unset limit empty.
    pub fn to_text(&self) -> String {
        let n = [
            self.cost,
            self.requests,
            self.tokens,
            self.held,
            self.first_ms,
            self.last_ms,
        ];
        format!("{},{}", join_numbers(&n.map(Some)), self.limits.to_text())
    }

    /// Reads [`Self::to_text`] back.
    pub fn from_text(id: &str, key_hash: &str, text: &str) -> Option<Self> {
        let mut f = text.splitn(7, ',');
        let mut n = || f.next()?.parse::<u64>().ok();
        let (cost, requests, tokens, held, first_ms, last_ms) =
            (n()?, n()?, n()?, n()?, n()?, n()?);
        Some(SessionRow {
            id: id.into(),
            key_hash: key_hash.into(),
            cost,
            requests,
            tokens,
            held,
            first_ms,
            last_ms,
            limits: SessionLimits::from_text(f.next()?)?,
        })
    }

    /// What `max_cost` leaves after charges and holds.
    pub fn remaining_cost(&self) -> Option<u64> {
        self.limits
            .max_cost
            .map(|m| m.saturating_sub(self.cost).saturating_sub(self.held))
    }

    /// The session as a budget for settling within it ([`super::ledger::capture_all`]).
    pub fn budget(&self) -> KeyBudget {
        KeyBudget {
            limit: self.limits.max_cost,
            spent: self.cost,
            reserved: self.held,
        }
    }

    /// Whether a request that may cost `reserve` may start at `now_ms`: a 403 naming
    /// the limit it would pass.
    pub fn check(&self, reserve: u64, now_ms: u64) -> std::result::Result<(), Error> {
        let l = &self.limits;
        let lived = now_ms.saturating_sub(self.first_ms) / 1000;
        let usd = |p: u64| format!("${}", Usd::from_picos(p));
        // (limit, what the session has used of it, the limit) of the first one passed.
        let passed = if let Some(m) = l.max_requests.filter(|m| self.requests >= *m) {
            ("max_requests", self.requests.to_string(), m.to_string())
        } else if let Some(m) = l.max_tokens.filter(|m| self.tokens >= *m) {
            ("max_tokens", self.tokens.to_string(), m.to_string())
        } else if let Some(m) = l.max_duration_s.filter(|m| lived >= *m) {
            ("max_duration_s", format!("{lived} s"), format!("{m} s"))
        } else if let Some(m) = l.max_cost.filter(|_| self.remaining_cost() < Some(reserve)) {
            // Spent and held by its requests under way, and what this one may cost.
            let used = self.cost.saturating_add(self.held);
            let used = format!(
                "{} (this request may cost up to {})",
                usd(used),
                usd(reserve)
            );
            ("max_cost", used, usd(m))
        } else {
            return Ok(());
        };
        let (limit, used, of) = passed;
        Err(Error::SessionLimit(format!(
            "Session limit reached ({limit}): session {} has used {used} of {of}.",
            crate::error::truncate(&self.id, 64)
        )))
    }

    /// `GET /sessions/{id}` and an entry of `GET /sessions`.
    pub fn to_json(&self) -> Value {
        json!({
            "id": self.id,
            "key_hash": self.key_hash,
            "limits": limits_json(&self.limits),
            "cost": ledger::usd(self.cost),
            "requests": self.requests,
            "tokens": self.tokens,
            "reserved": ledger::usd(self.held),
            "remaining_cost": self.remaining_cost().map(ledger::usd),
            "remaining_requests": self.limits.max_requests.map(|m| m.saturating_sub(self.requests)),
            "created_at": ledger::iso8601(self.first_ms),
            "last_used_at": ledger::iso8601(self.last_ms),
        })
    }

    /// The session as a reply of a request holding `reserve` of it shows it.
    pub fn view(&self, reserve: u64) -> SessionView {
        SessionView {
            id: self.id.clone(),
            cost: self.cost,
            requests: self.requests,
            tokens: self.tokens,
            remaining_cost: self.remaining_cost(),
            remaining_requests: self
                .limits
                .max_requests
                .map(|m| m.saturating_sub(self.requests)),
            max_cost: self.limits.max_cost,
            others_held: self.held.saturating_sub(reserve),
        }
    }
}

impl<S: Store> Books<S> {
    /// The session of a request by `key` asking `ask`, with the limits it sets or
    /// lowers, if a request that may cost `reserve` may start in it; otherwise the
    /// refusal, the limits kept all the same.
    pub(super) fn session_admit(
        &self,
        key: &KeyRecord,
        ask: &SessionAsk,
        reserve: u64,
    ) -> Result<std::result::Result<SessionRow, Error>> {
        let now = self.now_ms();
        let mut row = self
            .store
            .session(&ask.id)?
            .unwrap_or_else(|| SessionRow::new(&ask.id, &key.hash, now));
        // A key's default applies to a session that has no limits and asks for none.
        let default = key.session_limits_default.filter(|_| row.limits.is_empty());
        if let Some(l) = ask.limits.or(default) {
            row.limits = row.limits.lowered(l);
        }
        match row.check(reserve, now) {
            Ok(()) => Ok(Ok(row)),
            Err(e) => {
                if ask.limits.is_some() {
                    self.store.put_session(&row)?;
                }
                Ok(Err(e))
            }
        }
    }

    /// What admitting a request of `key` that may cost `reserve` starts with: a 400
    /// without a session when the key requires one; holds past their TTL expire; then
    /// its session (if it names one), or the answer that refuses it (the limits it set
    /// kept all the same).
    pub(super) fn admission_session(
        &self,
        key: &KeyRecord,
        ask: Option<&SessionAsk>,
        reserve: u64,
    ) -> Result<std::result::Result<Option<SessionRow>, Reply>> {
        if key.require_session_id && ask.is_none() {
            return Err(Error::bad_request(
                "session_id: this key requires a session (session_id in the body, an x-session-id header, or metadata.session_id on Messages)",
            ));
        }
        if reserve > 0 {
            self.expire_reservations()?;
        }
        let Some(ask) = ask else {
            return Ok(Ok(None));
        };
        Ok(match self.session_admit(key, ask, reserve)? {
            Ok(row) => Ok(Some(row)),
            Err(e) => Err(Reply::Admitted(Admitted::session_refused(e))),
        })
    }

    /// Counts an admitted request holding `reserve` in session `row`: the session as
    /// its reply shows it.
    pub(super) fn session_admitted(
        &self,
        mut row: SessionRow,
        reserve: u64,
    ) -> Result<SessionView> {
        row.requests = row.requests.saturating_add(1);
        row.held = row.held.saturating_add(reserve);
        row.last_ms = self.now_ms();
        self.store.put_session(&row)?;
        Ok(row.view(reserve))
    }

    /// What request `it`, holding `hold` (a reservation of its own when `own`), is
    /// charged of `g`'s cost within the balance, the key's `budget` and its session's
    /// `max_cost` ([`ledger::capture_all`]), and whether it has a session (charged
    /// that, and its tokens).
    pub(super) fn capture_in(
        &self,
        funds: &Funds,
        session: Option<&str>,
        g: &Generation,
        (hold, own): (u64, bool),
        budget: KeyBudget,
    ) -> Result<(Capture, bool)> {
        let session = session.map(|id| self.store.session(id)).transpose()?;
        let Some(mut s) = session.flatten() else {
            return Ok((ledger::capture(g.cost_picos, hold, funds, &budget), false));
        };
        let c = ledger::capture_all(g.cost_picos, hold, funds, &[budget, s.budget()]);
        let charged = c.charged();
        // A session's requests hold reservations of their own, never a lease.
        let hold = if own { hold } else { 0 };
        s.cost = s.cost.saturating_add(charged);
        let tokens = g.prompt_tokens.saturating_add(g.completion_tokens);
        s.tokens = s.tokens.saturating_add(tokens);
        s.held = s.held.saturating_sub(hold);
        s.last_ms = s.last_ms.max(self.now_ms());
        self.store.put_session(&s)?;
        Ok((c, true))
    }

    /// A call of the sessions API by `caller`.
    pub(super) fn sessions_api(&self, caller: &str, call: &SessionCall) -> Result<Value> {
        match call {
            SessionCall::Get(id) => self.session_get(caller, id),
            SessionCall::List(limit) => self.session_list(caller, *limit),
            SessionCall::Update(id, p) => self.session_update(caller, id, p),
        }
    }

    /// Session `id` of the account, for any of its keys (every key of the account may
    /// use it, and sees its figures in their replies).
    fn session_get(&self, caller: &str, id: &str) -> Result<Value> {
        self.caller(caller, None)?;
        Ok(self.known_session(id)?.to_json())
    }

    fn known_session(&self, id: &str) -> Result<SessionRow> {
        self.store.session(id)?.ok_or_else(|| {
            Error::NotFound(format!(
                "Session {} not found",
                crate::error::truncate(id, 64)
            ))
        })
    }

    /// The most recently used sessions, newest first: the account's for a provisioning
    /// key, those it made for an API key (as `/generations`).
    fn session_list(&self, caller: &str, limit: u32) -> Result<Value> {
        let key = self.caller(caller, None)?;
        let mine = (key.kind != KeyKind::Provisioning).then_some(key.hash.as_str());
        let rows = self
            .store
            .sessions(mine, limit.clamp(1, MAX_SESSIONS_LISTED))?;
        Ok(Value::Array(rows.iter().map(SessionRow::to_json).collect()))
    }

    /// `PATCH /sessions/{id}`: its limits changed by `p` (raised, lowered or removed),
    /// by a provisioning key of the account or the key that made the session.
    fn session_update(&self, caller: &str, id: &str, p: &LimitsPatch) -> Result<Value> {
        let key = self.caller(caller, None)?;
        let mut row = self.known_session(id)?;
        if key.kind != KeyKind::Provisioning && key.hash != row.key_hash {
            return Err(Error::Forbidden(
                "Only a provisioning key of the account, or the key that made the session, can change its limits.".into(),
            ));
        }
        row.limits = row.limits.patched(p);
        self.store.put_session(&row)?;
        Ok(row.to_json())
    }

    /// Releases `picos` of what session `id` holds (an expired reservation).
    pub(super) fn session_release(&self, id: &str, picos: u64) -> Result<()> {
        if let Some(mut row) = self.store.session(id)? {
            row.held = row.held.saturating_sub(picos);
            self.store.put_session(&row)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_row_reads_back_as_written() {
        let mut r = SessionRow::new("s", "k", 5);
        r.cost = 7;
        r.held = u64::MAX;
        r.limits.max_cost = Some(100);
        r.limits.max_duration_s = Some(0);
        let back = SessionRow::from_text("s", "k", &r.to_text()).unwrap();
        assert_eq!(back, r);
        assert_eq!(SessionRow::from_text("s", "k", "1,2"), None);
        assert_eq!(SessionRow::from_text("s", "k", "x,0,0,0,0,0,,,,"), None);
    }

    #[test]
    fn each_limit_refuses_by_name() {
        let mut r = SessionRow::new("s", "k", 0);
        r.limits = SessionLimits {
            max_cost: Some(100),
            max_requests: Some(3),
            max_tokens: Some(50),
            max_duration_s: Some(60),
        };
        r.cost = 40;
        r.held = 50;
        let limit = |r: &SessionRow, reserve, now| match r.check(reserve, now) {
            Err(e @ Error::SessionLimit(_)) => e
                .body()
                .error
                .metadata
                .and_then(|m| m.limit)
                .unwrap_or_default(),
            other => format!("{other:?}"),
        };
        assert!(r.check(10, 1000).is_ok());
        assert_eq!(limit(&r, 11, 1000), "max_cost");
        assert_eq!(limit(&r, 1, 60_000), "max_duration_s");
        r.tokens = 50;
        assert_eq!(limit(&r, 1, 0), "max_tokens");
        r.requests = 3;
        assert_eq!(limit(&r, 1, 0), "max_requests");
        let e = r.check(1, 0).unwrap_err();
        assert_eq!(e.status(), 403);
        assert_eq!(
            e.body().error.metadata.and_then(|m| m.error_type),
            Some(crate::error::ErrorType::SessionLimitReached)
        );
        assert_eq!(r.view(0).remaining_cost, Some(10));
        assert_eq!(r.view(0).remaining_requests, Some(0));
    }

    #[test]
    fn a_sessions_call_goes_over_the_wire_as_it_was() {
        let patch = LimitsPatch {
            set: SessionLimits {
                max_cost: Some(5),
                max_tokens: Some(0),
                ..SessionLimits::default()
            },
            removed: 2,
        };
        let calls = [
            SessionCall::Get("a|b,c".into()),
            SessionCall::List(200),
            SessionCall::Update("x|y".into(), patch),
        ];
        for c in calls {
            let wire = serde_json::to_string(&c).unwrap();
            assert_eq!(
                serde_json::from_str::<SessionCall>(&wire).unwrap(),
                c,
                "{wire}"
            );
        }
        assert_eq!(
            serde_json::to_string(&SessionCall::Update("s".into(), patch)).unwrap(),
            "\"patch|5,,0,|2|s\""
        );
        for bad in [
            "\"list|x\"",
            "\"patch|1,2|3|s\"",
            "\"patch|,,,|x\"",
            "\"drop|s\"",
            "\"get\"",
        ] {
            assert!(serde_json::from_str::<SessionCall>(bad).is_err(), "{bad}");
        }
    }
}
