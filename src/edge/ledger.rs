//! The `Ledger` Durable Object: one per account, the source of truth for its credits.
//! Amounts are integer micro-dollars so sums stay exact. The accounts work builds
//! reservations and settlement on top of this table.

use serde::{Deserialize, Serialize};
use worker::{
    durable_object, DurableObject, Env, Method, Request, Response, Result, SqlStorage, State,
};

#[durable_object]
pub struct Ledger {
    sql: SqlStorage,
}

#[derive(Serialize)]
struct Totals {
    total_credits: f64,
    total_usage: f64,
}

#[derive(Deserialize)]
struct Sums {
    credits: Option<f64>,
    usage: Option<f64>,
}

#[derive(Deserialize)]
struct Entry {
    /// `grant` adds credits, `charge` records usage.
    kind: String,
    micros: i64,
    #[serde(default)]
    note: String,
}

impl DurableObject for Ledger {
    fn new(state: State, _env: Env) -> Self {
        let sql = state.storage().sql();
        let _ = sql.exec(
            "CREATE TABLE IF NOT EXISTS entries (id INTEGER PRIMARY KEY AUTOINCREMENT, kind TEXT NOT NULL, micros INTEGER NOT NULL, note TEXT NOT NULL DEFAULT '', at INTEGER NOT NULL)",
            None,
        );
        Ledger { sql }
    }

    async fn fetch(&self, mut req: Request) -> Result<Response> {
        if req.method() == Method::Post {
            let e: Entry = req.json().await?;
            if !matches!(e.kind.as_str(), "grant" | "charge") || e.micros < 0 {
                return Response::error("kind must be grant or charge, micros >= 0", 400);
            }
            self.sql.exec(
                "INSERT INTO entries (kind, micros, note, at) VALUES (?, ?, ?, ?)",
                vec![
                    e.kind.into(),
                    e.micros.into(),
                    e.note.into(),
                    (super::config::now_ms() as i64).into(),
                ],
            )?;
        }
        let sums: Sums = self
            .sql
            .exec(
                "SELECT SUM(CASE WHEN kind = 'grant' THEN micros END) AS credits, SUM(CASE WHEN kind = 'charge' THEN micros END) AS usage FROM entries",
                None,
            )?
            .one()?;
        Response::from_json(&Totals {
            total_credits: sums.credits.unwrap_or(0.0) / 1e6,
            total_usage: sums.usage.unwrap_or(0.0) / 1e6,
        })
    }
}
