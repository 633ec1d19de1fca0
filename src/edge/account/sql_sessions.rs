//! The sessions table of the account's SQLite ([`crate::accounts::session`]): one row
//! per session, its figures as one line of text beside what pruning reads.

use super::super::sql::{money, SEP};
use super::sql_store::{ms, SqlStore};
use crate::accounts::session::SessionRow;
use crate::accounts::store::Result;

/// Sessions' budgets and totals ([`crate::accounts::session`]): the figures as one
/// line of text (`SessionRow::to_text`), beside what pruning reads.
pub(super) const SESSION_SCHEMA: [&str; 2] = [
    "CREATE TABLE IF NOT EXISTS sessions (id TEXT PRIMARY KEY, key_hash TEXT NOT NULL, last_ms INTEGER NOT NULL, held INTEGER NOT NULL, row TEXT NOT NULL)",
    "CREATE INDEX IF NOT EXISTS sessions_by_use ON sessions (last_ms)",
];
/// The session a reservation is held against, for a reservations table made before it.
pub(super) const RESERVATION_SESSION_COLUMN: &str =
    "ALTER TABLE reservations ADD COLUMN session_id TEXT";

impl SqlStore {
    pub(super) fn session_row(&self, id: &str) -> Result<Option<SessionRow>> {
        let q = "SELECT key_hash || char(31) || row AS v FROM sessions WHERE id = ?";
        Ok(self.joined(q, vec![id.into()])?.first().and_then(|v| {
            let (key, row) = v.split_once(SEP)?;
            SessionRow::from_text(id, key, row)
        }))
    }

    pub(super) fn put_session_row(&self, r: &SessionRow) -> Result<()> {
        self.exec(
            "INSERT INTO sessions (id, key_hash, last_ms, held, row) VALUES (?, ?, ?, CAST(? AS INTEGER), ?) ON CONFLICT(id) DO UPDATE SET last_ms = excluded.last_ms, held = excluded.held, row = excluded.row",
            vec![r.id.as_str().into(), r.key_hash.as_str().into(), ms(r.last_ms), money(r.held), r.to_text().into()],
        )
    }

    pub(super) fn session_rows(&self, key: Option<&str>, limit: u32) -> Result<Vec<SessionRow>> {
        let q = "SELECT key_hash || char(31) || row || char(31) || id AS v FROM sessions WHERE (? = 0 OR key_hash = ?) ORDER BY last_ms DESC LIMIT ?";
        let args = vec![
            i64::from(key.is_some()).into(),
            key.unwrap_or("").into(),
            i64::from(limit).into(),
        ];
        Ok(self
            .joined(q, args)?
            .iter()
            .filter_map(|v| {
                let mut f = v.splitn(3, SEP);
                let (key, row, id) = (f.next()?, f.next()?, f.next()?);
                SessionRow::from_text(id, key, row)
            })
            .collect())
    }

    pub(super) fn prune_session_rows(&self, before_ms: u64, keep: u64, limit: u64) -> Result<()> {
        self.exec(
            "DELETE FROM sessions WHERE id IN (SELECT id FROM sessions WHERE held = 0 AND (last_ms < ? OR last_ms < COALESCE((SELECT last_ms FROM sessions ORDER BY last_ms DESC LIMIT 1 OFFSET ?), 0)) LIMIT ?)",
            vec![ms(before_ms), ms(keep), ms(limit)],
        )
    }
}
