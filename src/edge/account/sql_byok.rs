//! The BYOK table of the account's SQLite ([`crate::accounts::byok`]): one row per
//! credential, as its JSON (the key only as its sealed envelope).

use super::sql_store::SqlStore;
use crate::accounts::byok::ByokRecord;
use crate::accounts::store::Result;
use crate::error::Error;

pub(super) const BYOK_SCHEMA: &str =
    "CREATE TABLE IF NOT EXISTS byok (id TEXT PRIMARY KEY, row TEXT NOT NULL)";

impl SqlStore {
    pub(super) fn byok_rows(&self) -> Result<Vec<ByokRecord>> {
        let rows = self.joined("SELECT row AS v FROM byok", Vec::new())?;
        Ok(rows
            .iter()
            .filter_map(|r| serde_json::from_str(r).ok())
            .collect())
    }

    pub(super) fn put_byok_row(&self, r: &ByokRecord) -> Result<()> {
        let row = serde_json::to_string(r).map_err(|e| Error::Internal(e.to_string()))?;
        self.exec(
            "INSERT INTO byok (id, row) VALUES (?, ?) ON CONFLICT(id) DO UPDATE SET row = excluded.row",
            vec![r.id.as_str().into(), row.into()],
        )
    }

    pub(super) fn delete_byok_row(&self, id: &str) -> Result<()> {
        self.exec("DELETE FROM byok WHERE id = ?", vec![id.into()])
    }
}
