//! The `Records` Durable Object: one per account per UTC day (`records:<account>:<day>`),
//! a thin adapter over [`crate::accounts::shard`]: it decodes a [`ShardOp`], runs it
//! over its SQLite (a `Put` in one transaction), answers a [`ShardReply`], and when its
//! day leaves `GENERATION_RETENTION_DAYS` its alarm deletes everything at once.

use std::cell::Cell;
use std::rc::Rc;

use serde::Deserialize;
use serde_json::{json, Value};
use worker::{
    durable_object, DurableObject, Env, Request, Response, Result, SqlStorage, SqlStorageValue,
    State,
};

use super::config;
use super::sql::{activity_row, money, parse_money, SEP};
use crate::accounts::records::ActivityRow;
use crate::accounts::shard::{self, Record, Shard, ShardOp, ShardStore};
use crate::accounts::store::{self, DailyDelta};
use crate::error::Error;

const SCHEMA: [&str; 5] = [
    "CREATE TABLE IF NOT EXISTS records (id TEXT PRIMARY KEY, key_hash TEXT NOT NULL, created_ms INTEGER NOT NULL, charged INTEGER NOT NULL, generation TEXT)",
    "CREATE INDEX IF NOT EXISTS records_by_key ON records (key_hash, created_ms)",
    "CREATE INDEX IF NOT EXISTS records_by_created ON records (created_ms)",
    // `/generations?session_id=` (a shard made before it has none, and is scanned).
    "CREATE INDEX IF NOT EXISTS records_by_session ON records (json_extract(generation, '$.session_id'), created_ms)",
    "CREATE TABLE IF NOT EXISTS daily (key_hash TEXT NOT NULL, model TEXT NOT NULL, provider TEXT NOT NULL, requests INTEGER NOT NULL, usage TEXT NOT NULL, prompt INTEGER NOT NULL, completion INTEGER NOT NULL, reasoning INTEGER NOT NULL, cached INTEGER NOT NULL, PRIMARY KEY (key_hash, model, provider))",
];

/// What joins the columns of a row read as one text (as in the account's store).

#[derive(Deserialize)]
struct Text {
    v: Option<String>,
}

fn db(e: worker::Error) -> Error {
    Error::Internal(format!("records storage: {e}"))
}

fn int(v: u64) -> SqlStorageValue {
    (v.min(i64::MAX as u64) as i64).into()
}

/// A shard's SQLite.
pub struct SqlShard {
    sql: SqlStorage,
    exists: Cell<bool>,
}

impl SqlShard {
    fn exec(&self, q: &str, args: Vec<SqlStorageValue>) -> store::Result<()> {
        self.sql.exec(q, args).map(|_| ()).map_err(db)
    }

    fn joined(&self, q: &str, args: Vec<SqlStorageValue>) -> store::Result<Vec<String>> {
        let rows: Vec<Text> = self
            .sql
            .exec(q, args)
            .and_then(|c| c.to_array())
            .map_err(db)?;
        Ok(rows.into_iter().filter_map(|r| r.v).collect())
    }

    fn count_of(&self, q: &str, args: Vec<SqlStorageValue>) -> store::Result<u64> {
        Ok(parse_money(&self.joined(q, args)?.into_iter().next()))
    }

    /// Records read as `key || SEP || charged || SEP || generation`.
    fn records(&self, q: &str, args: Vec<SqlStorageValue>) -> store::Result<Vec<Record>> {
        Ok(self
            .joined(q, args)?
            .iter()
            .filter_map(|v| {
                let mut f = v.splitn(3, SEP);
                let key_hash = f.next()?.to_string();
                let charged = f.next()?.parse().ok()?;
                let generation = serde_json::from_str(f.next()?).ok()?;
                Some(Record {
                    key_hash,
                    charged,
                    generation,
                })
            })
            .collect())
    }
}

const RECORD_COLUMNS: &str =
    "key_hash || char(31) || CAST(charged AS TEXT) || char(31) || generation AS v";

impl ShardStore for SqlShard {
    fn exists(&self) -> store::Result<bool> {
        if !self.exists.get() {
            let q = "SELECT name AS v FROM sqlite_master WHERE type = 'table' AND name = 'records'";
            self.exists.set(!self.joined(q, Vec::new())?.is_empty());
        }
        Ok(self.exists.get())
    }

    fn create(&self) -> store::Result<()> {
        for ddl in SCHEMA {
            self.exec(ddl, Vec::new())?;
        }
        self.exists.set(true);
        Ok(())
    }

    fn count(&self) -> store::Result<u64> {
        self.count_of(
            "SELECT CAST(COUNT(*) AS TEXT) AS v FROM records",
            Vec::new(),
        )
    }

    fn has(&self, id: &str) -> store::Result<bool> {
        let q = "SELECT CAST(COUNT(*) AS TEXT) AS v FROM records WHERE id = ?";
        Ok(self.count_of(q, vec![id.into()])? > 0)
    }

    fn insert(&self, r: &Record, whole: bool) -> store::Result<()> {
        let g = &r.generation;
        let json = match whole {
            true => SqlStorageValue::String(
                serde_json::to_string(g).map_err(|e| Error::Internal(e.to_string()))?,
            ),
            false => SqlStorageValue::Null,
        };
        self.exec(
            "INSERT INTO records (id, key_hash, created_ms, charged, generation) VALUES (?, ?, ?, CAST(? AS INTEGER), ?) ON CONFLICT(id) DO NOTHING",
            vec![g.id.as_str().into(), r.key_hash.as_str().into(), int(g.created_ms), money(r.charged), json],
        )
    }

    fn add_daily(
        &self,
        key: &str,
        model: &str,
        provider: &str,
        d: &DailyDelta,
    ) -> store::Result<()> {
        let q = "SELECT usage AS v FROM daily WHERE key_hash = ? AND model = ? AND provider = ?";
        let before = self.joined(q, vec![key.into(), model.into(), provider.into()])?;
        let usage = before
            .first()
            .and_then(|u| u.parse::<u128>().ok())
            .unwrap_or(0)
            .saturating_add(d.usage);
        let [n, p, c, r, k] = [d.requests, d.prompt, d.completion, d.reasoning, d.cached].map(int);
        self.exec(
            "INSERT INTO daily (key_hash, model, provider, requests, usage, prompt, completion, reasoning, cached) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(key_hash, model, provider) DO UPDATE SET requests = requests + excluded.requests, usage = excluded.usage, prompt = prompt + excluded.prompt, completion = completion + excluded.completion, reasoning = reasoning + excluded.reasoning, cached = cached + excluded.cached",
            vec![key.into(), model.into(), provider.into(), n, usage.to_string().into(), p, c, r, k],
        )
    }

    fn get(&self, id: &str, key: Option<&str>) -> store::Result<Option<Record>> {
        let q = format!("SELECT {RECORD_COLUMNS} FROM records WHERE id = ? AND generation IS NOT NULL AND (? = 0 OR key_hash = ?)");
        let args = vec![
            id.into(),
            i64::from(key.is_some()).into(),
            key.unwrap_or("").into(),
        ];
        Ok(self.records(&q, args)?.into_iter().next())
    }

    fn newest(
        &self,
        key: Option<&str>,
        session: Option<&str>,
        limit: u32,
    ) -> store::Result<Vec<Record>> {
        let limit = i64::from(limit);
        if let Some(s) = session {
            let q = format!("SELECT {RECORD_COLUMNS} FROM records WHERE json_extract(generation, '$.session_id') = ? AND (? = 0 OR key_hash = ?) ORDER BY created_ms DESC LIMIT ?");
            let args = vec![
                s.into(),
                i64::from(key.is_some()).into(),
                key.unwrap_or("").into(),
                limit.into(),
            ];
            return self.records(&q, args);
        }
        match key {
            None => self.records(
                &format!("SELECT {RECORD_COLUMNS} FROM records WHERE generation IS NOT NULL ORDER BY created_ms DESC LIMIT ?"),
                vec![limit.into()],
            ),
            Some(k) => self.records(
                &format!("SELECT {RECORD_COLUMNS} FROM records WHERE key_hash = ? AND generation IS NOT NULL ORDER BY created_ms DESC LIMIT ?"),
                vec![k.into(), limit.into()],
            ),
        }
    }

    fn activity(&self, day: i64) -> store::Result<Vec<ActivityRow>> {
        let q = "SELECT SUM(requests) || char(31) || SUM(CAST(usage AS INTEGER)) || char(31) || SUM(prompt) || char(31) || SUM(completion) || char(31) || SUM(reasoning) || char(31) || SUM(cached) || char(31) || provider || char(31) || model AS v FROM daily GROUP BY model, provider ORDER BY model";
        Ok(self
            .joined(q, Vec::new())?
            .iter()
            .map(|v| activity_row(Some(day), v))
            .collect())
    }
}

#[durable_object]
pub struct Records {
    shard: Rc<Shard<SqlShard>>,
    storage: worker::Storage,
    /// This instance set the retention alarm (one storage write per instance).
    alarm_set: Cell<bool>,
}

impl DurableObject for Records {
    fn new(state: State, _env: Env) -> Self {
        let store = SqlShard {
            sql: state.storage().sql(),
            exists: Cell::new(false),
        };
        Records {
            shard: Rc::new(Shard { store }),
            storage: state.storage(),
            alarm_set: Cell::new(false),
        }
    }

    async fn fetch(&self, mut req: Request) -> Result<Response> {
        let now = config::now_ms() as u64;
        let answer = match req
            .text()
            .await
            .map(|t| serde_json::from_str::<ShardOp>(&t))
        {
            Ok(Ok(op @ ShardOp::Put { .. })) => self.put(op, now).await,
            Ok(Ok(op)) => self.shard.handle(op, now),
            Ok(Err(e)) => Err(Error::Internal(format!("records: bad op: {e}"))),
            Err(e) => Err(Error::Internal(format!("records: unreadable op: {e}"))),
        };
        // As the account's object answers: one reader for both.
        match answer {
            Ok(v) => Response::from_json(&json!({ "ok": v })),
            Err(e) => Response::from_json(&json!({ "err": e })),
        }
    }

    async fn alarm(&self) -> Result<Response> {
        // The day left the retention: the whole shard goes at once.
        self.storage.delete_all().await?;
        self.shard.store.exists.set(false);
        self.alarm_set.set(false);
        Response::empty()
    }
}

impl Records {
    /// A `Put` in one transaction, then the retention alarm (once per instance).
    async fn put(&self, op: ShardOp, now: u64) -> store::Result<Value> {
        let expires = match &op {
            ShardOp::Put {
                day,
                retention_days,
                ..
            } => shard::expires_ms(*day, *retention_days),
            _ => 0,
        };
        let shard = Rc::clone(&self.shard);
        let reply = super::sql::transaction(&self.storage, Box::new(move || shard.handle(op, now)))
            .inspect_err(|_| {
                // Rolled back: the tables it may have made are gone too.
                self.shard.store.exists.set(false);
            })?;
        if !self.alarm_set.get() && expires > now {
            let after = expires.saturating_sub(now).min(i64::MAX as u64) as i64;
            if self.storage.set_alarm(after).await.is_ok() {
                self.alarm_set.set(true);
            }
        }
        Ok(reply)
    }
}

/// Sends `op` to the shard of `account`'s `day`: what it answers, in the API's shapes.
pub async fn call(env: &Env, account: &str, day: i64, op: &ShardOp) -> store::Result<Value> {
    let name = shard::shard_name(account, day);
    let body = serde_json::to_string(op).map_err(|e| Error::Internal(e.to_string()))?;
    super::account::call_object(env, "RECORDS", &name, body).await
}
