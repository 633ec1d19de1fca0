//! Stored Responses (`store: true`, `previous_response_id`, `GET`/`DELETE
//! /responses/{id}`, `GET /responses/{id}/input_items`), as OpenAI keeps them: what one
//! stored response holds (the input the model saw and the response with its output
//! items, reasoning included with its packed signatures), the next turn's input
//! rebuilt from it, and the list and deletion shapes. Pure: `edge::stored` reads and
//! writes the records (in R2, one object per response under its account and key).

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::api::read::{boolean, string, Bad, Fields};
use crate::api::sse::SseParser;
use crate::error::{Error, Result};

/// The longest response ID accepted in a path or `previous_response_id`.
const MAX_ID_BYTES: usize = 128;

/// `input_items`: the page size when `limit` is not given, and its bounds.
const DEFAULT_LIMIT: usize = 20;
const MAX_LIMIT: usize = 100;

/// What a Responses body asks of storage, taken out of it before the surface reads it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Ask {
    /// `store: true` (the gateway is stateless unless asked: off by default).
    pub store: bool,
    pub previous: Option<String>,
}

impl Ask {
    /// Takes `store` and `previous_response_id` out of `body`; a `store: true` under
    /// zero data retention (`provider.zdr`) is refused, naming `store`.
    pub fn take(body: &mut Map<String, Value>) -> Result<Ask> {
        let mut f = Fields(std::mem::take(body));
        let store = f.read("store", &boolean)?.unwrap_or(false);
        let previous = f.read("previous_response_id", &|v| {
            let id = string(v)?;
            match valid_id(&id) {
                true => Ok(id),
                false => Err(Bad::new("is not a response ID")),
            }
        })?;
        *body = f.0;
        if store && zdr(body) {
            return Err(Error::bad_request(
                "store: responses cannot be stored under zero data retention (provider.zdr)",
            ));
        }
        Ok(Ask { store, previous })
    }
}

/// Whether the body asks for zero data retention (`provider.zdr: true`).
fn zdr(body: &Map<String, Value>) -> bool {
    body.get("provider")
        .cloned()
        .and_then(|p| crate::api::provider::read(p).ok())
        .is_some_and(|p| p.zdr == Some(true))
}

/// Whether `id` can name a stored response: 1 to 128 letters, digits, `-`, `_`, `.`.
pub fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_ID_BYTES
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// Where a response is kept: under its account and key, so another key's lookup of
/// the same ID finds nothing.
pub fn object_key(account: &str, key_hash: &str, id: &str) -> String {
    format!("responses/{account}/{key_hash}/{id}")
}

/// The `response` object as replied, with the fields storage reads typed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredResponse {
    pub id: String,
    pub status: String,
    #[serde(default)]
    pub output: Vec<Value>,
    #[serde(flatten)]
    pub rest: Map<String, Value>,
}

impl StoredResponse {
    /// Whether a response in this state is kept (a failed one has nothing to go on
    /// from).
    pub fn keeps(&self) -> bool {
        matches!(self.status.as_str(), "completed" | "incomplete")
    }
}

/// One stored response: the input the model saw (earlier turns included) and the
/// response, with when it was made and when it expires (seconds).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    pub id: String,
    pub created_at: u64,
    pub expires_at: u64,
    pub input: Vec<Value>,
    pub response: StoredResponse,
}

impl Record {
    /// The record of `response`, made at `now` (seconds) and kept `retention_days`.
    pub fn new(
        mut response: StoredResponse,
        input: Vec<Value>,
        previous: Option<&str>,
        now: u64,
        retention_days: u64,
    ) -> Record {
        let r = &mut response.rest;
        r.insert("store".into(), Value::Bool(true));
        r.insert(
            "previous_response_id".into(),
            previous.map_or(Value::Null, Value::from),
        );
        Record {
            id: response.id.clone(),
            created_at: now,
            expires_at: now.saturating_add(retention_days.saturating_mul(86_400)),
            input,
            response,
        }
    }

    pub fn expired(&self, now: u64) -> bool {
        now >= self.expires_at
    }

    /// The next turn's input: this response's input and output, then `input` (its
    /// items named, as `input_items` lists them).
    pub fn next_input(&self, input: Vec<Value>) -> Vec<Value> {
        let mut out = self.input.clone();
        out.extend(self.response.output.iter().cloned());
        out.extend(input);
        out
    }
}

/// A request's `input` as items, each with an ID (`{prefix}_{response}_{n}` where it
/// has none): a string is one user message of one `input_text` part.
pub fn input_items(input: Value, response_id: &str) -> Result<Vec<Value>> {
    let items = match input {
        Value::String(text) => vec![serde_json::json!({
            "type": "message",
            "role": "user",
            "content": [{"type": "input_text", "text": text}],
        })],
        Value::Array(items) => items,
        _ => {
            return Err(Error::bad_request(
                "input: must be a string or an array of items",
            ))
        }
    };
    Ok(items
        .into_iter()
        .enumerate()
        .map(|(i, item)| named(item, response_id, i))
        .collect())
}

fn named(item: Value, response_id: &str, i: usize) -> Value {
    let Value::Object(mut o) = item else {
        return item;
    };
    if !o.contains_key("id") {
        let prefix = match o.get("type").and_then(Value::as_str) {
            Some("function_call_output") => "fco",
            Some("function_call") => "fc",
            Some("reasoning") => "rs",
            _ => "msg",
        };
        o.insert("id".into(), format!("{prefix}_{response_id}_{i}").into());
    }
    Value::Object(o)
}

/// The query of `GET /responses/{id}/input_items`.
#[derive(Debug, Clone, PartialEq)]
pub struct ListQuery {
    pub limit: usize,
    /// `order=asc` (default `desc`, newest first, as OpenAI lists).
    pub ascending: bool,
    pub after: Option<String>,
}

impl ListQuery {
    pub fn parse(query: &str) -> Result<ListQuery> {
        let param = |n| crate::api::route::query_param(query, n);
        let limit = match param("limit") {
            None => DEFAULT_LIMIT,
            Some(l) => l
                .parse::<usize>()
                .ok()
                .filter(|n| (1..=MAX_LIMIT).contains(n))
                .ok_or_else(|| Error::bad_request("limit: must be an integer from 1 to 100"))?,
        };
        let ascending = match param("order").as_deref() {
            None | Some("desc") => false,
            Some("asc") => true,
            Some(_) => return Err(Error::bad_request("order: must be asc or desc")),
        };
        Ok(ListQuery {
            limit,
            ascending,
            after: param("after").filter(|a| !a.is_empty()),
        })
    }
}

/// A page of input items, in OpenAI's list shape.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ItemList {
    pub object: &'static str,
    pub data: Vec<Value>,
    pub first_id: Option<String>,
    pub last_id: Option<String>,
    pub has_more: bool,
}

fn id_of(item: &Value) -> Option<&str> {
    item.get("id").and_then(Value::as_str)
}

/// The page of `record`'s input items that `q` asks for (after the item `after`,
/// when it names one).
pub fn list(record: &Record, q: &ListQuery) -> ItemList {
    let mut items: Vec<&Value> = record.input.iter().collect();
    if !q.ascending {
        items.reverse();
    }
    let start = q.after.as_deref().map_or(0, |after| {
        items
            .iter()
            .position(|i| id_of(i) == Some(after))
            .map_or(items.len(), |p| p.saturating_add(1))
    });
    let rest = items.get(start..).unwrap_or_default();
    let data: Vec<Value> = rest.iter().take(q.limit).map(|v| (*v).clone()).collect();
    ItemList {
        object: "list",
        first_id: data.first().and_then(id_of).map(str::to_string),
        last_id: data.last().and_then(id_of).map(str::to_string),
        has_more: rest.len() > data.len(),
        data,
    }
}

/// `DELETE /responses/{id}`'s reply.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Deleted {
    pub id: String,
    pub object: &'static str,
    pub deleted: bool,
}

impl Deleted {
    pub fn of(id: &str) -> Deleted {
        Deleted {
            id: id.to_string(),
            object: "response",
            deleted: true,
        }
    }
}

/// The error for a response this caller has not stored (or that expired).
pub fn not_found(id: &str) -> Error {
    Error::NotFound(format!(
        "No response found with id '{}'.",
        crate::error::truncate(id, MAX_ID_BYTES)
    ))
}

/// The error for a `previous_response_id` this caller has not stored.
pub fn previous_not_found(id: &str) -> Error {
    Error::bad_request(format!(
        "previous_response_id: previous response with id '{}' not found",
        crate::error::truncate(id, MAX_ID_BYTES)
    ))
}

/// Finds the final `response` of a Responses event stream as it passes (the
/// `response.completed` or `response.incomplete` event), holding no more than one
/// event at a time.
#[derive(Debug, Default)]
pub struct Capture {
    parser: SseParser,
    done: Option<StoredResponse>,
    broken: bool,
}

#[derive(Deserialize)]
struct Event {
    #[serde(rename = "type")]
    kind: String,
    response: Option<StoredResponse>,
}

impl Capture {
    pub fn feed(&mut self, bytes: &[u8]) {
        if self.broken {
            return;
        }
        let done = &mut self.done;
        let fed = self.parser.feed_with(bytes, |data| {
            // Only the last events carry a whole response; others are skipped unread.
            if !data.contains("\"response.completed\"") && !data.contains("\"response.incomplete\"")
            {
                return Ok::<(), ()>(());
            }
            if let Ok(Event {
                kind,
                response: Some(r),
            }) = serde_json::from_str::<Event>(data)
            {
                if kind == "response.completed" || kind == "response.incomplete" {
                    *done = Some(r);
                }
            }
            Ok(())
        });
        self.broken = fed.is_err();
    }

    /// The final response, when the stream had one.
    pub fn finish(self) -> Option<StoredResponse> {
        self.done.filter(StoredResponse::keeps)
    }
}

#[cfg(test)]
#[path = "stored_tests.rs"]
mod tests;
