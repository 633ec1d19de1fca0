//! SQLite helpers shared by the Durable Objects.

use serde::Deserialize;
use worker::{SqlStorage, SqlStorageValue};

use crate::limits::{CounterStore, WindowState};

/// Money is integer picodollars, which outgrow JavaScript's exact integers: it goes
/// to SQLite as text cast to INTEGER and comes back cast to TEXT.
pub fn money(picos: u64) -> SqlStorageValue {
    SqlStorageValue::String(picos.to_string())
}

pub fn parse_money(s: &Option<String>) -> u64 {
    s.as_deref()
        .and_then(|s| s.parse::<i64>().ok())
        .map_or(0, |v| v.max(0) as u64)
}

/// Fixed-window counters (see [`crate::limits`]) in a `windows` table.
pub struct SqlCounters<'a> {
    sql: &'a SqlStorage,
    pub error: Option<String>,
}

#[derive(Deserialize)]
struct Row {
    start: f64,
    count: f64,
}

impl<'a> SqlCounters<'a> {
    pub fn new(sql: &'a SqlStorage) -> Self {
        SqlCounters { sql, error: None }
    }

    pub fn create_table(sql: &SqlStorage) {
        // Creating an existing table is a no-op; a failure shows on first use.
        let _ = sql.exec(
            "CREATE TABLE IF NOT EXISTS windows (key TEXT PRIMARY KEY, start INTEGER NOT NULL, count INTEGER NOT NULL)",
            None,
        );
    }
}

impl CounterStore for SqlCounters<'_> {
    fn load(&mut self, key: &str) -> Option<WindowState> {
        let rows = self
            .sql
            .exec(
                "SELECT start, count FROM windows WHERE key = ?",
                vec![key.into()],
            )
            .and_then(|c| c.to_array::<Row>());
        match rows {
            Ok(rows) => rows.first().map(|r| WindowState {
                start: r.start as u64,
                count: r.count as u64,
            }),
            Err(e) => {
                self.error = Some(e.to_string());
                None
            }
        }
    }

    fn save(&mut self, key: &str, st: WindowState) {
        let res = self.sql.exec(
            "INSERT INTO windows (key, start, count) VALUES (?, ?, ?) ON CONFLICT(key) DO UPDATE SET start = excluded.start, count = excluded.count",
            vec![key.into(), (st.start as i64).into(), (st.count as i64).into()],
        );
        if let Err(e) = res {
            self.error = Some(e.to_string());
        }
    }
}

/// Runs `f` in one SQLite transaction of `storage` (its `transactionSync`): what it
/// writes lands together or, when it fails, not at all.
pub fn transaction<T: 'static>(
    storage: &worker::Storage,
    f: Box<dyn FnOnce() -> Result<T, crate::error::Error>>,
) -> Result<T, crate::error::Error> {
    use crate::error::Error;
    use std::{cell::RefCell, rc::Rc};
    use worker::js_sys::{Function, Reflect};
    use worker::wasm_bindgen::{closure::Closure, JsCast, JsValue};
    let out: Rc<RefCell<Option<Result<T, Error>>>> = Rc::default();
    let slot = Rc::clone(&out);
    let body = Closure::once(move || -> Result<(), JsValue> {
        let r = f();
        let failed = r.is_err();
        *slot.borrow_mut() = Some(r);
        // Thrown, so that the transaction rolls back.
        match failed {
            true => Err(JsValue::from_str("rolled back")),
            false => Ok(()),
        }
    });
    let raw: &JsValue = storage.as_raw().as_ref();
    let run = Reflect::get(raw, &JsValue::from_str("transactionSync"))
        .ok()
        .and_then(|t| t.dyn_into::<Function>().ok())
        .ok_or_else(|| Error::Internal("storage: no transactionSync".into()))?;
    let thrown = run.call1(raw, body.as_ref()).is_err();
    let answered = out.borrow_mut().take();
    match answered {
        Some(Err(e)) => Err(e),
        Some(Ok(v)) if !thrown => Ok(v),
        _ => Err(Error::Internal("storage: transaction failed".into())),
    }
}

/// What joins the columns of a row read as one text (`char(31)`, the unit separator:
/// in no ID, hash, number or name the gateway writes; free text goes last).
pub const SEP: char = '\u{1f}';

/// A whole number column of such a row (0 where it is not one, or negative).
pub fn num(s: &str) -> u64 {
    s.parse::<i64>().map_or(0, |v| v.max(0) as u64)
}

/// A daily aggregate read as `[day SEP] requests SEP usage SEP prompt SEP completion SEP
/// reasoning SEP cached SEP provider SEP model`: of `day`, or of the day it starts with.
pub fn activity_row(day: Option<i64>, joined: &str) -> crate::accounts::records::ActivityRow {
    let mut f = joined.splitn(if day.is_some() { 8 } else { 9 }, SEP);
    let mut n = || f.next().map_or(0, num);
    let day = day.unwrap_or_else(|| i64::try_from(n()).unwrap_or(0));
    let (requests, usage_picos, prompt_tokens) = (n(), n(), n());
    let (completion_tokens, reasoning_tokens, cached_tokens) = (n(), n(), n());
    crate::accounts::records::ActivityRow {
        day,
        requests,
        usage_picos,
        prompt_tokens,
        completion_tokens,
        reasoning_tokens,
        cached_tokens,
        provider: f.next().unwrap_or_default().into(),
        model: f.next().unwrap_or_default().into(),
    }
}
