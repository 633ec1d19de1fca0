//! The presets table of the account's SQLite ([`crate::accounts::presets`]): one row
//! per preset, its versions as one JSON text (bounded: at most 20 versions of a config
//! of at most 16 KiB), beside what listing orders by.

use super::sql_store::{ms, SqlStore};
use crate::accounts::presets::PresetRecord;
use crate::accounts::store::Result;
use crate::error::Error;

pub(super) const PRESET_SCHEMA: [&str; 1] = [
    "CREATE TABLE IF NOT EXISTS presets (slug TEXT PRIMARY KEY, updated_ms INTEGER NOT NULL, row TEXT NOT NULL)",
];

fn read(text: &str) -> Option<PresetRecord> {
    serde_json::from_str(text).ok()
}

impl SqlStore {
    pub(super) fn preset_row(&self, slug: &str) -> Result<Option<PresetRecord>> {
        let q = "SELECT row AS v FROM presets WHERE slug = ?";
        Ok(self
            .joined(q, vec![slug.into()])?
            .first()
            .and_then(|t| read(t)))
    }

    pub(super) fn put_preset_row(&self, p: &PresetRecord) -> Result<()> {
        let row = serde_json::to_string(p).map_err(|e| Error::Internal(e.to_string()))?;
        self.exec(
            "INSERT INTO presets (slug, updated_ms, row) VALUES (?, ?, ?) ON CONFLICT(slug) DO UPDATE SET updated_ms = excluded.updated_ms, row = excluded.row",
            vec![p.slug.as_str().into(), ms(p.updated_ms), row.into()],
        )
    }

    pub(super) fn delete_preset_row(&self, slug: &str) -> Result<()> {
        self.exec("DELETE FROM presets WHERE slug = ?", vec![slug.into()])
    }

    pub(super) fn preset_rows(&self, limit: u32, offset: u32) -> Result<Vec<PresetRecord>> {
        let q = "SELECT row AS v FROM presets ORDER BY updated_ms DESC, slug LIMIT ? OFFSET ?";
        let args = vec![i64::from(limit).into(), i64::from(offset).into()];
        Ok(self
            .joined(q, args)?
            .iter()
            .filter_map(|t| read(t))
            .collect())
    }

    pub(super) fn preset_rows_count(&self) -> Result<u64> {
        let q = "SELECT CAST(COUNT(*) AS TEXT) AS v FROM presets";
        Ok(self
            .joined(q, Vec::new())?
            .first()
            .and_then(|n| n.parse().ok())
            .unwrap_or(0))
    }
}
