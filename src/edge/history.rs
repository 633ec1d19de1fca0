//! `/generation`, `/generations` and `/activity`, read from the account's day shards
//! ([`super::records`]): the account's object says what the caller may see
//! (`Op::Scope`), the shards answer, concurrently where several days are read. An
//! account that still keeps records from before the shards (`legacy`) adds them from
//! its object until they leave the retention.

use futures_util::future::join_all;
use serde_json::Value;
use worker::Env;

use super::account::{self, Op};
use super::{config, records};
use crate::accounts::shard::{self, Scope, ShardOp};
use crate::error::Error;

/// Shards read at once (`join_all` stays a plain list of futures up to 30).
const WAVE: usize = 16;
/// `/activity`'s days: today and the 30 before it.
const ACTIVITY_DAYS: i64 = 30;

fn today() -> i64 {
    (config::now_ms() as u64 / shard::DAY_MS) as i64
}

fn retention_days(env: &Env) -> i64 {
    config::u64(env, "GENERATION_RETENTION_DAYS", 30).clamp(1, 3650) as i64
}

pub(super) async fn scope(
    env: &Env,
    acc: &str,
    caller: &str,
    provisioning: bool,
) -> Result<Scope, Error> {
    let v = account::call(
        env,
        acc,
        Op::Scope {
            caller: caller.into(),
            provisioning,
        },
    )
    .await?;
    serde_json::from_value(v).map_err(|e| Error::Internal(format!("account scope: {e}")))
}

/// Sends each `(day, op)` to its shard, all at once: the rows they answer, in order.
async fn read(env: &Env, acc: &str, ops: &[(i64, ShardOp)]) -> Result<Vec<Value>, Error> {
    let calls = ops.iter().map(|(d, op)| records::call(env, acc, *d, op));
    let mut out = Vec::new();
    for reply in join_all(calls).await {
        if let Value::Array(rows) = reply? {
            out.extend(rows);
        }
    }
    Ok(out)
}

/// `GET /generation?id=`: straight to the shard of the ID's day.
pub async fn generation(env: &Env, acc: &str, caller: String, id: String) -> Result<Value, Error> {
    let scope = scope(env, acc, &caller, false).await?;
    let today = today();
    let kept = today.saturating_sub(retention_days(env))..=today.saturating_add(1);
    if let Some(day) = shard::day_of_id(&id).filter(|d| kept.contains(d)) {
        let op = ShardOp::Get {
            id: id.clone(),
            key: scope.key.clone(),
        };
        let found = records::call(env, acc, day, &op).await?;
        if !found.is_null() {
            return Ok(found);
        }
    }
    if scope.legacy {
        return account::call(env, acc, Op::Generation { caller, id }).await;
    }
    Err(Error::NotFound(format!("Generation {id} not found")))
}

/// `GET /generations?limit=&session_id=`: the newest first (of one session, if
/// given), day shard after day shard (a few at once) until `limit` are found or the
/// retention is read.
pub async fn generations(
    env: &Env,
    acc: &str,
    caller: String,
    limit: u32,
    session: Option<String>,
) -> Result<Value, Error> {
    let scope = scope(env, acc, &caller, false).await?;
    let (today, oldest) = (today(), today().saturating_sub(retention_days(env)));
    // Records from before the shards name no session.
    let legacy = scope.legacy && session.is_none();
    let op = ShardOp::List {
        key: scope.key.clone(),
        limit,
        session,
    };
    let days: Vec<i64> = (oldest..=today).rev().collect();
    let mut out = Vec::new();
    for wave in days.chunks(WAVE / 2) {
        if out.len() >= limit as usize {
            break;
        }
        let ops: Vec<(i64, ShardOp)> = wave.iter().map(|d| (*d, op.clone())).collect();
        out.extend(read(env, acc, &ops).await?);
    }
    if legacy && out.len() < limit as usize {
        let left = limit.saturating_sub(out.len() as u32);
        let old = account::call(
            env,
            acc,
            Op::Generations {
                caller,
                limit: left,
            },
        )
        .await?;
        if let Value::Array(old) = old {
            out.extend(old);
        }
    }
    out.truncate(limit as usize);
    Ok(Value::Array(out))
}

/// `GET /activity`: one day's shard, or the last 30 days' read at once; newest first.
pub async fn activity(
    env: &Env,
    acc: &str,
    caller: String,
    day: Option<i64>,
) -> Result<Value, Error> {
    let scope = scope(env, acc, &caller, true).await?;
    let today = today();
    let days: Vec<i64> = match day {
        Some(d) => vec![d],
        None => (0..=ACTIVITY_DAYS)
            .map(|i| today.saturating_sub(i))
            .collect(),
    };
    let oldest = today.saturating_sub(retention_days(env));
    let ops: Vec<(i64, ShardOp)> = days
        .into_iter()
        .filter(|d| (oldest..=today).contains(d))
        .map(|day| (day, ShardOp::Activity { day }))
        .collect();
    let mut out = Vec::new();
    for wave in ops.chunks(WAVE) {
        out.extend(read(env, acc, wave).await?);
    }
    if scope.legacy {
        if let Value::Array(old) = account::call(env, acc, Op::Activity { caller, day }).await? {
            out.extend(old);
        }
    }
    Ok(Value::Array(out))
}
