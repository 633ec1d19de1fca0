//! The ledger's [`Store`] over the object's SQLite: the tables, their migrations, and
//! one statement per accessor. Money is decimal text: SQLite's INTEGER stops at 9.2e18
//! picodollars ($9.2M) and turns larger values into inexact REALs, so running totals
//! are text added in u128 by the ledger, and per-row amounts go in as text cast to
//! INTEGER and come back cast to TEXT.

use std::cell::Cell;

use serde::Deserialize;
use worker::{SqlStorage, SqlStorageValue};

use super::super::config;
use super::super::sql::{activity_row, money, num, parse_money, SqlCounters, SEP};
use super::sql_byok::BYOK_SCHEMA;
use super::sql_presets::PRESET_SCHEMA;
use super::sql_schema::{
    LEASE_CLOSING_COLUMN, LEASE_REPORT_COLUMNS, LEASE_SCHEMA, LEGACY_DAILY, RECORDS_SCHEMA, SCHEMA,
    TOTALS_SCHEMA, UPKEEP_SCHEMA,
};
use super::sql_sessions::{RESERVATION_SESSION_COLUMN, SESSION_SCHEMA};
use crate::accounts::books::Books;
use crate::accounts::presets::PresetRecord;
use crate::accounts::records::{ActivityRow, KeyRecord};
use crate::accounts::session::SessionRow;
use crate::accounts::shard::Record;
use crate::accounts::store::{
    AccountRow, Charged, DailyDelta, Entry, LeaseRow, Reservation, Result, Store, UNBOUNDED,
};
use crate::error::Error;
use crate::limits::{self, Decision, Window};

#[derive(Deserialize)]
struct Text {
    v: Option<String>,
}

#[derive(Deserialize)]
struct RecordRow {
    record: String,
    charged: Option<String>,
}

fn db(e: worker::Error) -> Error {
    Error::Internal(format!("account storage: {e}"))
}

fn parse_u128(s: &Option<String>) -> u128 {
    s.as_deref().and_then(|v| v.parse().ok()).unwrap_or(0)
}

pub(super) fn ms(v: u64) -> SqlStorageValue {
    (v.min(i64::MAX as u64) as i64).into()
}

fn json_err(e: serde_json::Error) -> Error {
    Error::Internal(e.to_string())
}

/// The object's SQLite, as the ledger's store.
pub struct SqlStore {
    sql: SqlStorage,
    /// The account exists (it is never deleted): asked of SQLite once, not per call.
    exists: Cell<bool>,
    /// The running totals and aggregates exist (made or migrated once per instance).
    pub ready: Cell<bool>,
    /// Whether the legacy `generations` table exists (asked once per instance).
    legacy: Cell<Option<bool>>,
    /// Test-only (`TEST_FAIL_SETTLE_RECORDS`): settlements whose record this instance
    /// fails to write first, after their hold was released: a storage error mid-item.
    pub fail_records: Cell<u64>,
}

impl SqlStore {
    pub fn new(sql: SqlStorage, fail_records: u64) -> Self {
        SqlStore {
            sql,
            exists: Cell::new(false),
            ready: Cell::new(false),
            legacy: Cell::new(None),
            fail_records: Cell::new(fail_records),
        }
    }

    pub(super) fn exec(&self, query: &str, args: Vec<SqlStorageValue>) -> Result<()> {
        self.sql.exec(query, args).map(|_| ()).map_err(db)
    }

    /// The rows `query` answers, as `T`.
    fn rows<T: serde::de::DeserializeOwned>(
        &self,
        query: &str,
        args: Vec<SqlStorageValue>,
    ) -> Result<Vec<T>> {
        self.sql
            .exec(query, args)
            .and_then(|c| c.to_array())
            .map_err(db)
    }

    /// The first row's `v` of `query`, as text.
    fn text(&self, query: &str, args: Vec<SqlStorageValue>) -> Result<Option<String>> {
        let rows: Vec<Text> = self.rows(query, args)?;
        Ok(rows.into_iter().next().and_then(|r| r.v))
    }

    /// Rows whose columns `query` joins with [`SEP`] into one text `v`: every row shape
    /// is read through the one [`Text`] type (a serde visitor per shape costs the wasm
    /// a kilobyte or two each).
    pub(super) fn joined(&self, query: &str, args: Vec<SqlStorageValue>) -> Result<Vec<String>> {
        let rows: Vec<Text> = self.rows(query, args)?;
        Ok(rows.into_iter().filter_map(|r| r.v).collect())
    }

    /// Adds `d` to the legacy aggregate of (day, key, model, provider).
    fn add_legacy_daily(
        &self,
        day: i64,
        key: &str,
        model: &str,
        provider: &str,
        d: &DailyDelta,
    ) -> Result<()> {
        let q = "SELECT usage AS v FROM daily WHERE day = ? AND key_hash = ? AND model = ? AND provider = ?";
        let usage = parse_u128(&self.text(
            q,
            vec![day.into(), key.into(), model.into(), provider.into()],
        )?)
        .saturating_add(d.usage);
        let [n, p, c, r, k] = [d.requests, d.prompt, d.completion, d.reasoning, d.cached]
            .map(|t| i64::try_from(t).unwrap_or(i64::MAX));
        self.exec(
            "INSERT INTO daily (day, key_hash, model, provider, requests, usage, prompt, completion, reasoning, cached) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(day, key_hash, model, provider) DO UPDATE SET requests = requests + excluded.requests, usage = excluded.usage, prompt = prompt + excluded.prompt, completion = completion + excluded.completion, reasoning = reasoning + excluded.reasoning, cached = cached + excluded.cached",
            vec![day.into(), key.into(), model.into(), provider.into(), n.into(), usage.to_string().into(), p.into(), c.into(), r.into(), k.into()],
        )
    }

    fn sum(&self, query: &str, args: Vec<SqlStorageValue>) -> Result<u64> {
        Ok(parse_money(&self.text(query, args)?))
    }

    /// Whether any settled generation or kept total is remembered (the alarm's upkeep
    /// has work).
    pub fn has_upkeep(&self) -> Result<bool> {
        let q = "SELECT CAST(EXISTS (SELECT 1 FROM settled) OR EXISTS (SELECT 1 FROM expiring) AS TEXT) AS v";
        Ok(self.sum(q, Vec::new())? > 0)
    }

    fn has_table(&self, name: &str) -> Result<bool> {
        let q = "SELECT name AS v FROM sqlite_master WHERE type = 'table' AND name = ?";
        Ok(self.text(q, vec![name.into()])?.is_some())
    }

    fn leases(&self, filter: &str, args: Vec<SqlStorageValue>) -> Result<Vec<LeaseRow>> {
        let q = format!("SELECT id || char(31) || key_hash || char(31) || amount || char(31) || in_flight || char(31) || closing || char(31) || admit_until || char(31) || settled AS v FROM leases {filter}");
        Ok(self
            .joined(&q, args)?
            .iter()
            .filter_map(|v| {
                let mut f = v.split(SEP);
                Some(LeaseRow {
                    id: f.next()?.into(),
                    key_hash: f.next()?.into(),
                    amount: num(f.next()?),
                    in_flight: num(f.next()?),
                    closing: num(f.next()?) != 0,
                    admit_until: num(f.next()?),
                    settled: num(f.next()?),
                })
            })
            .collect())
    }

    fn charged(&self, query: &str, args: Vec<SqlStorageValue>) -> Result<Vec<Charged>> {
        let rows: Vec<RecordRow> = self.rows(query, args)?;
        rows.into_iter()
            .map(|r| {
                Ok(Charged {
                    generation: serde_json::from_str(&r.record).map_err(json_err)?,
                    charged: parse_money(&r.charged),
                })
            })
            .collect()
    }
}

/// Makes the running totals and daily aggregates of an account created before they
/// existed, from its columns and history, and the leases' newer columns (once per
/// object instance).
pub fn ensure_totals(b: &Books<SqlStore>) -> Result<()> {
    let s = &b.store;
    if s.ready.get() {
        return Ok(());
    }
    s.exec(LEASE_SCHEMA, Vec::new())?;
    let q = "SELECT sql AS v FROM sqlite_master WHERE type = 'table' AND name = 'leases'";
    let ddl = s.text(q, Vec::new())?.unwrap_or_default();
    if !ddl.contains("closing") {
        s.exec(LEASE_CLOSING_COLUMN, Vec::new())?;
    }
    if !ddl.contains("admit_until") {
        for alter in LEASE_REPORT_COLUMNS {
            s.exec(alter, Vec::new())?;
        }
    }
    for ddl in RECORDS_SCHEMA
        .iter()
        .chain(SESSION_SCHEMA.iter())
        .chain(PRESET_SCHEMA.iter())
    {
        s.exec(ddl, Vec::new())?;
    }
    s.exec(BYOK_SCHEMA, Vec::new())?;
    let q = "SELECT sql AS v FROM sqlite_master WHERE type = 'table' AND name = 'reservations'";
    if !s
        .text(q, Vec::new())?
        .unwrap_or_default()
        .contains("session_id")
    {
        s.exec(RESERVATION_SESSION_COLUMN, Vec::new())?;
    }
    if !s.has_table("totals")? {
        for ddl in TOTALS_SCHEMA {
            s.exec(ddl, Vec::new())?;
        }
        if s.legacy()? {
            s.exec(LEGACY_DAILY, Vec::new())?;
        }
        migrate_history(b)?;
    }
    if !s.has_table("expiring")? {
        for ddl in UPKEEP_SCHEMA {
            s.exec(ddl, Vec::new())?;
        }
        // The kept totals of before: they go once a late settlement made now could not
        // use them either.
        let cfg = &b.cfg;
        let until = s
            .now_ms()
            .saturating_add(cfg.settled_retention_ms.saturating_add(cfg.lease_ttl_ms));
        s.exec(
            "INSERT OR IGNORE INTO expiring (name, until_ms) SELECT name, ? FROM totals WHERE name LIKE 'deleted-limit:%' OR name LIKE 'expired:%'",
            vec![ms(until)],
        )?;
    }
    s.ready.set(true);
    Ok(())
}

/// The totals, key totals and daily aggregates of an account made before they existed.
fn migrate_history(b: &Books<SqlStore>) -> Result<()> {
    let s = &b.store;
    for name in ["credits", "usage", "reserved"] {
        // The column of the same name, from before the running totals.
        let q = format!("SELECT CAST({name} AS TEXT) AS v FROM account");
        let v = parse_money(&s.text(&q, Vec::new())?);
        s.set_total(name, u128::from(v))?;
    }
    if !s.legacy()? {
        return Ok(());
    }
    let q = "SELECT created_ms || char(31) || day || char(31) || charged || char(31) || prompt || char(31) || completion || char(31) || reasoning || char(31) || cached || char(31) || key_hash || char(31) || provider || char(31) || model AS v FROM generations";
    for v in s.joined(q, Vec::new())? {
        let mut f = v.splitn(10, SEP);
        let mut n = || f.next().map_or(0, num);
        let (created_ms, day, charged) = (n(), n(), n());
        let d = DailyDelta {
            requests: 1,
            usage: u128::from(charged),
            prompt: n(),
            completion: n(),
            reasoning: n(),
            cached: n(),
        };
        let (key, provider, model) = (
            f.next().unwrap_or_default(),
            f.next().unwrap_or_default(),
            f.next().unwrap_or_default(),
        );
        b.add_key_totals(key, created_ms, charged)?;
        s.add_legacy_daily(day as i64, key, model, provider, &d)?;
    }
    Ok(())
}

impl Store for SqlStore {
    fn now_ms(&self) -> u64 {
        config::now_ms() as u64
    }

    fn exists(&self) -> Result<bool> {
        if !self.exists.get() && self.has_table("account")? {
            self.exists.set(true);
        }
        Ok(self.exists.get())
    }

    fn create_schema(&self) -> Result<()> {
        for ddl in SCHEMA
            .iter()
            .chain(TOTALS_SCHEMA.iter())
            .chain(RECORDS_SCHEMA.iter())
            .chain(UPKEEP_SCHEMA.iter())
            .chain(SESSION_SCHEMA.iter())
            .chain(PRESET_SCHEMA.iter())
        {
            self.exec(ddl, Vec::new())?;
        }
        self.exec(LEASE_SCHEMA, Vec::new())?;
        self.exec(BYOK_SCHEMA, Vec::new())?;
        self.ready.set(true);
        self.legacy.set(Some(false));
        SqlCounters::create_table(&self.sql);
        Ok(())
    }

    fn account(&self) -> Result<Option<AccountRow>> {
        let q = "SELECT allow_training || char(31) || created_ms || char(31) || id || char(31) || name AS v FROM account";
        Ok(self.joined(q, Vec::new())?.first().and_then(|v| {
            let mut f = v.splitn(4, SEP);
            Some(AccountRow {
                allow_training: num(f.next()?) != 0,
                created_ms: num(f.next()?),
                id: f.next()?.into(),
                name: f.next()?.into(),
            })
        }))
    }

    fn insert_account(&self, a: &AccountRow) -> Result<()> {
        self.exec(
            "INSERT INTO account (id, name, allow_training, created_ms, credits, usage, reserved) VALUES (?, ?, ?, ?, 0, 0, 0)",
            vec![a.id.clone().into(), a.name.clone().into(), i64::from(a.allow_training).into(), ms(a.created_ms)],
        )
    }

    fn set_name(&self, name: &str) -> Result<()> {
        self.exec("UPDATE account SET name = ?", vec![name.into()])
    }

    fn set_allow_training(&self, allow: bool) -> Result<()> {
        let q = "UPDATE account SET allow_training = ?";
        self.exec(q, vec![i64::from(allow).into()])
    }

    fn total(&self, name: &str) -> Result<u128> {
        let q = "SELECT value AS v FROM totals WHERE name = ?";
        Ok(parse_u128(&self.text(q, vec![name.into()])?))
    }

    fn set_total(&self, name: &str, value: u128) -> Result<()> {
        self.exec(
            "INSERT INTO totals (name, value) VALUES (?, ?) ON CONFLICT(name) DO UPDATE SET value = excluded.value",
            vec![name.into(), value.to_string().into()],
        )
    }

    fn delete_total(&self, name: &str) -> Result<()> {
        self.exec("DELETE FROM totals WHERE name = ?", vec![name.into()])?;
        self.exec("DELETE FROM expiring WHERE name = ?", vec![name.into()])
    }

    fn expire_total(&self, name: &str, at_ms: u64) -> Result<()> {
        self.exec(
            "INSERT INTO expiring (name, until_ms) VALUES (?, ?) ON CONFLICT(name) DO UPDATE SET until_ms = excluded.until_ms",
            vec![name.into(), ms(at_ms)],
        )
    }

    fn due_totals(&self, before_ms: u64, limit: u64) -> Result<Vec<String>> {
        let q = "SELECT name AS v FROM expiring WHERE until_ms < ? ORDER BY until_ms LIMIT ?";
        self.joined(q, vec![ms(before_ms), ms(limit)])
    }

    fn log_grant(&self, picos: u64, note: &str, at_ms: u64) -> Result<()> {
        self.exec(
            "INSERT INTO grants (picos, note, at_ms) VALUES (CAST(? AS INTEGER), ?, ?)",
            vec![money(picos), note.into(), ms(at_ms)],
        )
    }

    fn key(&self, hash: &str) -> Result<Option<KeyRecord>> {
        let q = "SELECT record AS v FROM keys WHERE hash = ?";
        self.text(q, vec![hash.into()])?
            .map(|s| serde_json::from_str(&s).map_err(json_err))
            .transpose()
    }

    fn keys(&self) -> Result<Vec<KeyRecord>> {
        let rows: Vec<Text> =
            self.rows("SELECT record AS v FROM keys ORDER BY hash", Vec::new())?;
        Ok(rows
            .into_iter()
            .filter_map(|r| r.v.and_then(|s| serde_json::from_str(&s).ok()))
            .collect())
    }

    fn put_key(&self, k: &KeyRecord) -> Result<()> {
        let json = serde_json::to_string(k).map_err(json_err)?;
        self.exec(
            "INSERT INTO keys (hash, record) VALUES (?, ?) ON CONFLICT(hash) DO UPDATE SET record = excluded.record",
            vec![k.hash.clone().into(), json.into()],
        )
    }

    fn delete_key(&self, hash: &str) -> Result<()> {
        self.exec("DELETE FROM keys WHERE hash = ?", vec![hash.into()])
    }

    fn reservation(&self, gen_id: &str) -> Result<u64> {
        self.sum(
            "SELECT CAST(COALESCE(SUM(picos), 0) AS TEXT) AS v FROM reservations WHERE gen_id = ?",
            vec![gen_id.into()],
        )
    }

    fn put_reservation(&self, r: &Reservation, at_ms: u64) -> Result<()> {
        self.exec(
            "INSERT INTO reservations (gen_id, key_hash, picos, at_ms, session_id) VALUES (?, ?, CAST(? AS INTEGER), ?, ?)",
            vec![r.gen_id.clone().into(), r.key_hash.clone().into(), money(r.picos), ms(at_ms), r.session.clone().map_or(SqlStorageValue::Null, Into::into)],
        )
    }

    fn touch_reservation(&self, gen_id: &str, at_ms: u64) -> Result<()> {
        let q = "UPDATE reservations SET at_ms = ? WHERE gen_id = ?";
        self.exec(q, vec![ms(at_ms), gen_id.into()])
    }

    fn delete_reservation(&self, gen_id: &str) -> Result<()> {
        let q = "DELETE FROM reservations WHERE gen_id = ?";
        self.exec(q, vec![gen_id.into()])
    }

    fn stale_reservations(&self, before_ms: u64) -> Result<Vec<Reservation>> {
        let q = "SELECT picos || char(31) || gen_id || char(31) || key_hash || char(31) || COALESCE(session_id, '') AS v FROM reservations WHERE at_ms < ?";
        Ok(self
            .joined(q, vec![ms(before_ms)])?
            .iter()
            .filter_map(|v| {
                let mut f = v.splitn(4, SEP);
                Some(Reservation {
                    picos: num(f.next()?),
                    gen_id: f.next()?.into(),
                    key_hash: f.next()?.into(),
                    session: f.next().filter(|s| !s.is_empty()).map(Into::into),
                })
            })
            .collect())
    }

    fn lease(&self, id: &str) -> Result<Option<LeaseRow>> {
        Ok(self
            .leases("WHERE id = ?", vec![id.into()])?
            .into_iter()
            .next())
    }

    fn stale_leases(&self, open_before: u64, closing_before: u64) -> Result<Vec<LeaseRow>> {
        self.leases(
            "WHERE at_ms < (CASE closing WHEN 0 THEN ? ELSE ? END)",
            vec![ms(open_before), ms(closing_before)],
        )
    }

    fn put_lease(&self, l: &LeaseRow, at_ms: u64) -> Result<()> {
        self.exec(
            "INSERT INTO leases (id, key_hash, amount, in_flight, at_ms, closing, admit_until, settled) VALUES (?, ?, CAST(? AS INTEGER), CAST(? AS INTEGER), ?, ?, CAST(? AS INTEGER), CAST(? AS INTEGER)) ON CONFLICT(id) DO UPDATE SET amount = excluded.amount, in_flight = excluded.in_flight, at_ms = excluded.at_ms, closing = excluded.closing, admit_until = excluded.admit_until, settled = excluded.settled",
            vec![l.id.clone().into(), l.key_hash.clone().into(), money(l.amount), money(l.in_flight), ms(at_ms), i64::from(l.closing).into(), money(l.admit_until.min(UNBOUNDED)), money(l.settled)],
        )
    }

    fn delete_lease(&self, id: &str) -> Result<()> {
        self.exec("DELETE FROM leases WHERE id = ?", vec![id.into()])
    }

    fn leased(&self) -> Result<u64> {
        let q = "SELECT CAST(COALESCE(SUM(amount), 0) AS TEXT) AS v FROM leases";
        self.sum(q, Vec::new())
    }

    fn hold_count(&self) -> Result<u64> {
        let q = "SELECT CAST((SELECT COUNT(*) FROM reservations) + (SELECT COUNT(*) FROM leases) AS TEXT) AS v";
        self.sum(q, Vec::new())
    }

    fn key_reserved(&self, key: &str) -> Result<u64> {
        self.sum(
            "SELECT CAST(COALESCE(SUM(picos), 0) AS TEXT) AS v FROM reservations WHERE key_hash = ?",
            vec![key.into()],
        )
    }

    fn key_held(&self, key: &str) -> Result<u64> {
        self.sum(
            "SELECT CAST((SELECT COALESCE(SUM(picos), 0) FROM reservations WHERE key_hash = ?) + (SELECT COALESCE(SUM(amount), 0) FROM leases WHERE key_hash = ?) AS TEXT) AS v",
            vec![key.into(), key.into()],
        )
    }

    fn key_total(&self, key: &str, period: &str) -> Result<u128> {
        let q = "SELECT value AS v FROM key_totals WHERE key_hash = ? AND period = ?";
        Ok(parse_u128(&self.text(q, vec![key.into(), period.into()])?))
    }

    fn set_key_total(&self, key: &str, period: &str, value: u128) -> Result<()> {
        self.exec(
            "INSERT INTO key_totals (key_hash, period, value) VALUES (?, ?, ?) ON CONFLICT(key_hash, period) DO UPDATE SET value = excluded.value",
            vec![key.into(), period.into(), value.to_string().into()],
        )
    }

    fn delete_key_totals(&self, key: &str) -> Result<()> {
        self.exec(
            "DELETE FROM key_totals WHERE key_hash = ?",
            vec![key.into()],
        )
    }

    fn prune_key_totals(&self, day: i64, week: i64, month: i64) -> Result<()> {
        self.exec(
            "DELETE FROM key_totals WHERE (period LIKE 'd:%' AND CAST(substr(period, 3) AS INTEGER) < ?) OR (period LIKE 'w:%' AND CAST(substr(period, 3) AS INTEGER) < ?) OR (period LIKE 'm:%' AND CAST(substr(period, 3) AS INTEGER) < ?)",
            vec![day.into(), week.into(), month.into()],
        )
    }

    fn key_count(&self) -> Result<u64> {
        self.sum("SELECT CAST(COUNT(*) AS TEXT) AS v FROM keys", Vec::new())
    }

    fn activity(&self, from: i64, to: i64) -> Result<Vec<ActivityRow>> {
        if !self.has_table("daily")? {
            return Ok(Vec::new());
        }
        let q = "SELECT day || char(31) || SUM(requests) || char(31) || SUM(CAST(usage AS INTEGER)) || char(31) || SUM(prompt) || char(31) || SUM(completion) || char(31) || SUM(reasoning) || char(31) || SUM(cached) || char(31) || provider || char(31) || model AS v FROM daily WHERE day >= ? AND day <= ? GROUP BY day, model, provider ORDER BY day DESC, model";
        let rows = self.joined(q, vec![from.into(), to.into()])?;
        Ok(rows.iter().map(|v| activity_row(None, v)).collect())
    }

    fn add_entry(&self, e: &Entry) -> Result<()> {
        self.exec(
            "INSERT INTO entries (kind, gen_id, key_hash, picos, note, at_ms) VALUES (?, ?, ?, ?, ?, ?)",
            vec![e.kind.as_str().into(), e.gen_id.as_str().into(), e.key_hash.as_str().into(), e.picos.to_string().into(), e.note.as_str().into(), ms(e.at_ms)],
        )
    }

    fn entry_sum(&self, kind: &str, gen_id: &str) -> Result<Option<u64>> {
        // NULL without an entry, else the entries' sum.
        let sum = self.text(
            "SELECT CASE WHEN COUNT(*) = 0 THEN NULL ELSE CAST(COALESCE(SUM(CAST(picos AS INTEGER)), 0) AS TEXT) END AS v FROM entries WHERE gen_id = ? AND kind = ?",
            vec![gen_id.into(), kind.into()],
        )?;
        Ok(sum.map(|v| parse_money(&Some(v))))
    }

    fn ledger(&self, limit: u32) -> Result<Vec<Entry>> {
        // Both lists in one (the latest `limit` of each), newest first.
        let q = "SELECT at_ms || char(31) || picos || char(31) || kind || char(31) || gen_id || char(31) || key_hash || char(31) || note AS v FROM (SELECT * FROM (SELECT kind, gen_id, key_hash, picos, note, at_ms FROM entries ORDER BY id DESC LIMIT ?) UNION ALL SELECT * FROM (SELECT 'grant', '', '', picos, note, at_ms FROM grants ORDER BY id DESC LIMIT ?)) ORDER BY at_ms DESC";
        let limit = i64::from(limit);
        let rows = self.joined(q, vec![limit.into(), limit.into()])?;
        Ok(rows
            .iter()
            .filter_map(|v| {
                let mut f = v.splitn(6, SEP);
                Some(Entry {
                    at_ms: num(f.next()?),
                    picos: f.next()?.parse().unwrap_or(0),
                    kind: f.next()?.into(),
                    gen_id: f.next()?.into(),
                    key_hash: f.next()?.into(),
                    note: f.next()?.into(),
                })
            })
            .collect())
    }

    fn settled(&self, id: &str) -> Result<bool> {
        let q = "SELECT CAST(COUNT(*) AS TEXT) AS v FROM settled WHERE gen_id = ?";
        if self.sum(q, vec![id.into()])? > 0 {
            return Ok(true);
        }
        if !self.legacy()? {
            return Ok(false);
        }
        let q = "SELECT CAST(COUNT(*) AS TEXT) AS v FROM generations WHERE id = ?";
        Ok(self.sum(q, vec![id.into()])? > 0)
    }

    fn put_settled(&self, id: &str, created_ms: u64) -> Result<()> {
        let q = "INSERT INTO settled (gen_id, created_ms) VALUES (?, ?)";
        self.exec(q, vec![id.into(), ms(created_ms)])
    }

    fn prune_settled(&self, before_ms: u64, limit: u64) -> Result<u64> {
        let q = "DELETE FROM settled WHERE gen_id IN (SELECT gen_id FROM settled WHERE created_ms < ? LIMIT ?)";
        let c = self
            .sql
            .exec(q, vec![ms(before_ms), ms(limit)])
            .map_err(db)?;
        Ok(c.rows_written() as u64)
    }

    fn put_outbox(&self, day: i64, r: &Record) -> Result<()> {
        let injected = self.fail_records.get();
        if injected > 0 {
            self.fail_records.set(injected.saturating_sub(1));
            return Err(Error::Internal(
                "account: injected record failure (TEST_FAIL_SETTLE_RECORDS)".into(),
            ));
        }
        let record = serde_json::to_string(r).map_err(json_err)?;
        self.exec(
            "INSERT INTO outbox (gen_id, day, record) VALUES (?, ?, ?)",
            vec![r.generation.id.clone().into(), day.into(), record.into()],
        )
    }

    fn outbox(&self, limit: u64) -> Result<Vec<(i64, Record)>> {
        let q = "SELECT day || char(31) || record AS v FROM outbox ORDER BY rowid LIMIT ?";
        Ok(self
            .joined(q, vec![ms(limit)])?
            .iter()
            .filter_map(|v| {
                let (day, record) = v.split_once(SEP)?;
                Some((day.parse().ok()?, serde_json::from_str(record).ok()?))
            })
            .collect())
    }

    fn outbox_len(&self) -> Result<u64> {
        self.sum("SELECT CAST(COUNT(*) AS TEXT) AS v FROM outbox", Vec::new())
    }

    fn delete_outbox(&self, ids: &[String]) -> Result<()> {
        for chunk in ids.chunks(64) {
            let marks = vec!["?"; chunk.len()].join(", ");
            let q = format!("DELETE FROM outbox WHERE gen_id IN ({marks})");
            self.exec(&q, chunk.iter().map(|id| id.as_str().into()).collect())?;
        }
        Ok(())
    }

    fn prune_entries(&self, before_ms: u64, keep: u64, keep_grants: u64, limit: u64) -> Result<()> {
        // Past the retention, or past the newest `keep`: entries are in `id` order.
        self.exec(
            "DELETE FROM entries WHERE id IN (SELECT id FROM entries WHERE at_ms < ? OR id <= (SELECT COALESCE(MAX(id), 0) FROM entries) - ? ORDER BY id LIMIT ?)",
            vec![ms(before_ms), ms(keep), ms(limit)],
        )?;
        self.exec(
            "DELETE FROM grants WHERE id <= (SELECT COALESCE(MAX(id), 0) FROM grants) - ?",
            vec![ms(keep_grants)],
        )
    }

    fn legacy(&self) -> Result<bool> {
        if let Some(l) = self.legacy.get() {
            return Ok(l);
        }
        let l = self.has_table("generations")?;
        self.legacy.set(Some(l));
        Ok(l)
    }

    fn generation(&self, id: &str, key: Option<&str>) -> Result<Option<Charged>> {
        if !self.legacy()? {
            return Ok(None);
        }
        let q = "SELECT record, CAST(charged AS TEXT) AS charged FROM generations WHERE id = ? AND (? = 0 OR key_hash = ?)";
        let args = vec![
            id.into(),
            i64::from(key.is_some()).into(),
            key.unwrap_or("").into(),
        ];
        Ok(self.charged(q, args)?.into_iter().next())
    }

    fn generations(&self, key: Option<&str>, limit: u32) -> Result<Vec<Charged>> {
        if !self.legacy()? {
            return Ok(Vec::new());
        }
        let limit = i64::from(limit);
        match key {
            None => self.charged(
                "SELECT record, CAST(charged AS TEXT) AS charged FROM generations ORDER BY created_ms DESC LIMIT ?",
                vec![limit.into()],
            ),
            Some(k) => self.charged(
                "SELECT record, CAST(charged AS TEXT) AS charged FROM generations WHERE key_hash = ? ORDER BY created_ms DESC LIMIT ?",
                vec![k.into(), limit.into()],
            ),
        }
    }

    fn prune_generations(&self, before_ms: u64) -> Result<()> {
        if !self.legacy()? {
            return Ok(());
        }
        self.exec(
            "DELETE FROM generations WHERE id IN (SELECT id FROM generations WHERE created_ms < ? LIMIT 10000)",
            vec![ms(before_ms)],
        )?;
        let day = (before_ms / 86_400_000) as i64;
        if self.has_table("daily")? {
            self.exec("DELETE FROM daily WHERE day < ?", vec![day.into()])?;
        }
        let q = "SELECT CAST((SELECT COUNT(*) FROM generations) AS TEXT) AS v";
        if self.sum(q, Vec::new())? == 0 {
            // The transition is over: every legacy record left the retention.
            self.exec("DROP TABLE IF EXISTS generations", Vec::new())?;
            self.exec("DROP TABLE IF EXISTS daily", Vec::new())?;
            self.legacy.set(Some(false));
        }
        Ok(())
    }

    fn preset(&self, slug: &str) -> Result<Option<PresetRecord>> {
        self.preset_row(slug)
    }
    fn put_preset(&self, p: &PresetRecord) -> Result<()> {
        self.put_preset_row(p)
    }
    fn delete_preset(&self, slug: &str) -> Result<()> {
        self.delete_preset_row(slug)
    }
    fn presets(&self, limit: u32, offset: u32) -> Result<Vec<PresetRecord>> {
        self.preset_rows(limit, offset)
    }
    fn preset_count(&self) -> Result<u64> {
        self.preset_rows_count()
    }

    fn session(&self, id: &str) -> Result<Option<SessionRow>> {
        self.session_row(id)
    }

    fn put_session(&self, r: &SessionRow) -> Result<()> {
        self.put_session_row(r)
    }

    fn sessions(&self, key: Option<&str>, limit: u32) -> Result<Vec<SessionRow>> {
        self.session_rows(key, limit)
    }

    fn byok_keys(&self) -> Result<Vec<crate::accounts::byok::ByokRecord>> {
        self.byok_rows()
    }

    fn put_byok(&self, r: &crate::accounts::byok::ByokRecord) -> Result<()> {
        self.put_byok_row(r)
    }

    fn delete_byok(&self, id: &str) -> Result<()> {
        self.delete_byok_row(id)
    }

    fn prune_sessions(&self, before_ms: u64, keep: u64, limit: u64) -> Result<()> {
        self.prune_session_rows(before_ms, keep, limit)
    }

    fn hit(&self, counter: &str, windows: &[Window], now_secs: u64) -> Result<Decision> {
        let mut c = SqlCounters::new(&self.sql);
        let d = limits::hit(&mut c, counter, windows, now_secs);
        match c.error {
            Some(e) => Err(Error::Internal(format!("account counters: {e}"))),
            None => Ok(d),
        }
    }

    fn used(&self, counter: &str, w: &Window, now_secs: u64) -> u64 {
        limits::used(&mut SqlCounters::new(&self.sql), counter, w, now_secs)
    }
}
