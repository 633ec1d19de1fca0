//! An account's generation records, one shard per UTC day (the `Records` Durable
//! Object, `records:<account>:<day>`), pure over a [`ShardStore`]: the day's records,
//! kept once per generation ID, and the day's aggregates per (key, model, provider).
//! The account's object decides what is charged and hands each record over through its
//! outbox; a shard only keeps them. A generation ID carries the second it was made
//! (`gen-<unix secs>-<random>`), so a lookup goes straight to its day's shard, and a
//! whole shard is dropped at once when its day leaves the retention.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::records::{activity_item, generation_data, ActivityRow, Generation};
use super::store::{DailyDelta, Result};

pub const DAY_MS: u64 = 86_400_000;
/// The most records one shard keeps whole: one day of an account at about 58 requests/s
/// on average, some 5 GB at a kilobyte a record, half a SQLite object's 10 GB. Past it
/// a record keeps only its ID, key and charge (about 100 bytes, so that it is still
/// kept once and adds to the day's aggregates once): `/activity` stays whole, and
/// `/generation` no longer finds it.
pub const MAX_SHARD_RECORDS: u64 = 5_000_000;
/// Records one forwarding call carries.
pub const MAX_PUT_BATCH: usize = 256;

/// The UTC day (days since 1970-01-01) generation `id` was made in, if it is one of
/// this gateway's (`gen-<unix secs>-...`).
pub fn day_of_id(id: &str) -> Option<i64> {
    let secs: u64 = id.strip_prefix("gen-")?.split('-').next()?.parse().ok()?;
    i64::try_from(secs / 86_400).ok()
}

/// The shard a record goes to: its ID's day, else (an ID not made here) its creation's.
pub fn day_of(id: &str, created_ms: u64) -> i64 {
    day_of_id(id).unwrap_or_else(|| i64::try_from(created_ms / DAY_MS).unwrap_or(i64::MAX))
}

/// The name of account `account`'s shard of `day`.
pub fn shard_name(account: &str, day: i64) -> String {
    format!("records:{account}:{day}")
}

/// When the shard of `day` leaves a retention of `retention_days`: the end of its day
/// plus the retention.
pub fn expires_ms(day: i64, retention_days: u64) -> u64 {
    u64::try_from(day)
        .unwrap_or(0)
        .saturating_add(1)
        .saturating_add(retention_days)
        .saturating_mul(DAY_MS)
}

/// A settled generation and what its key was charged.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    pub key_hash: String,
    pub charged: u64,
    pub generation: Generation,
}

/// What an account's reads may see, as its object answers for the caller (`Op::Scope`):
/// one key's records (an API key), or all (a provisioning key, `key: None`); `legacy`:
/// the object still has records from before the shards.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Scope {
    pub key: Option<String>,
    pub legacy: bool,
}

/// A message to a shard (externally tagged, `{"put": {..}}`: an internally tagged enum
/// buffers what it reads, and costs the wasm several times as much).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ShardOp {
    /// Keeps each record once (by generation ID) and adds the new ones to the day's
    /// aggregates. A day already past its retention takes nothing (and says it landed:
    /// it would be dropped at once).
    Put {
        day: i64,
        retention_days: u64,
        records: Vec<Record>,
    },
    Get {
        id: String,
        key: Option<String>,
    },
    /// The newest `limit` records (of `key`, or all; of `session`, or all), newest
    /// first.
    List {
        key: Option<String>,
        limit: u32,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        session: Option<String>,
    },
    /// The day's aggregates, summed over keys.
    Activity {
        day: i64,
    },
}

/// What a shard needs of its storage (SQLite in the object, maps in tests).
pub trait ShardStore {
    /// Whether the tables exist (a shard that was never written has none).
    fn exists(&self) -> Result<bool>;
    fn create(&self) -> Result<()>;
    /// How many records the shard keeps.
    fn count(&self) -> Result<u64>;
    fn has(&self, id: &str) -> Result<bool>;
    /// Keeps `r`: whole, or (`whole: false`) its ID, key and charge only.
    fn insert(&self, r: &Record, whole: bool) -> Result<()>;
    fn add_daily(&self, key: &str, model: &str, provider: &str, d: &DailyDelta) -> Result<()>;
    fn get(&self, id: &str, key: Option<&str>) -> Result<Option<Record>>;
    fn newest(&self, key: Option<&str>, session: Option<&str>, limit: u32) -> Result<Vec<Record>>;
    /// The aggregates, summed over keys, per (model, provider).
    fn activity(&self, day: i64) -> Result<Vec<ActivityRow>>;
}

/// One shard over store `S`.
pub struct Shard<S> {
    pub store: S,
}

impl<S: ShardStore> Shard<S> {
    /// Answers one message at `now_ms`, in the API's shapes (a record as `/generation`
    /// shows it, an aggregate as `/activity` does: the reads pass them on as they are);
    /// a `Put` answers `{"landed", "expires_ms"}`. The caller runs a `Put` in one
    /// transaction.
    pub fn handle(&self, op: ShardOp, now_ms: u64) -> Result<Value> {
        let exists = self.store.exists()?;
        let shown = |r: &Record| generation_data(&r.generation, r.charged);
        Ok(match op {
            ShardOp::Put {
                day,
                retention_days,
                records,
            } => {
                let expires = expires_ms(day, retention_days);
                let n = records.len();
                if now_ms < expires {
                    if !exists {
                        self.store.create()?;
                    }
                    self.put(records)?;
                }
                json!({ "landed": n, "expires_ms": expires })
            }
            ShardOp::Get { .. } if !exists => Value::Null,
            ShardOp::List { .. } | ShardOp::Activity { .. } if !exists => Value::Array(Vec::new()),
            ShardOp::Get { id, key } => self
                .store
                .get(&id, key.as_deref())?
                .as_ref()
                .map_or(Value::Null, shown),
            ShardOp::List {
                key,
                limit,
                session,
            } => Value::Array(
                self.store
                    .newest(key.as_deref(), session.as_deref(), limit)?
                    .iter()
                    .map(shown)
                    .collect(),
            ),
            ShardOp::Activity { day } => Value::Array(
                self.store
                    .activity(day)?
                    .iter()
                    .map(activity_item)
                    .collect(),
            ),
        })
    }

    /// Keeps the records not kept yet, and adds them to the aggregates, written once
    /// per (key, model, provider).
    fn put(&self, records: Vec<Record>) -> Result<()> {
        let mut kept = self.store.count()?;
        let mut daily: HashMap<(String, String, String), DailyDelta> = HashMap::new();
        for r in records {
            if self.store.has(&r.generation.id)? {
                continue;
            }
            self.store.insert(&r, kept < MAX_SHARD_RECORDS)?;
            kept = kept.saturating_add(1);
            let g = &r.generation;
            let Some(provider) = g.provider.as_deref().filter(|p| !p.is_empty()) else {
                continue;
            };
            let d = daily
                .entry((r.key_hash.clone(), g.model.clone(), provider.to_string()))
                .or_default();
            d.requests = d.requests.saturating_add(1);
            d.usage = d.usage.saturating_add(u128::from(r.charged));
            d.prompt = d.prompt.saturating_add(g.prompt_tokens);
            d.completion = d.completion.saturating_add(g.completion_tokens);
            d.reasoning = d.reasoning.saturating_add(g.reasoning_tokens);
            d.cached = d.cached.saturating_add(g.cached_tokens);
        }
        for ((key, model, provider), d) in daily {
            self.store.add_daily(&key, &model, &provider, &d)?;
        }
        Ok(())
    }
}
