//! What the ledger ([`super::books`]) needs of its storage, as typed accessors: the
//! Durable Object implements it over SQLite (`edge::account`), tests over maps
//! ([`super::memory`]). The store holds no rules: it reads and writes rows, and sums
//! what SQL sums. Money stays exact: u64 per row, u128 for running totals.

use super::presets::PresetRecord;
use super::records::{ActivityRow, KeyRecord};
use super::session::SessionRow;
use super::shard::Record;
use crate::error::Error;
use crate::limits::{Decision, Window};

pub type Result<T> = std::result::Result<T, Error>;

/// The account's own row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountRow {
    pub id: String,
    pub name: String,
    pub allow_training: bool,
    pub created_ms: u64,
}

/// A request's own hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reservation {
    pub gen_id: String,
    pub key_hash: String,
    pub picos: u64,
    /// The session whose `max_cost` it is held against, if any.
    pub session: Option<String>,
}

/// A lease as stored. A closing lease (its isolate gave it back, or it was revoked,
/// while requests still ran against it) admits nothing more: it holds exactly the
/// worst cases (`in_flight`) of those requests, each released as its settlement lands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseRow {
    pub id: String,
    pub key_hash: String,
    pub amount: u64,
    pub in_flight: u64,
    pub closing: bool,
    /// Of an open lease: up to how much its isolate may admit against it in all until
    /// its next report lands ([`crate::accounts::lease::admit_until`]; [`UNBOUNDED`]
    /// for a lease whose isolate does not report), and the worst cases of the
    /// settlements that landed against it, summed. What requests admitted against it
    /// could still owe is at most the difference.
    pub admit_until: u64,
    pub settled: u64,
}

/// The `admit_until` of a lease whose isolate does not say what it admits (one of the
/// previous version): all that the lease holds could be owed. SQLite's largest integer.
pub const UNBOUNDED: u64 = i64::MAX as u64;

/// One line of the operator's ledger (`entries`): an operator loss, an expired hold,
/// a late settlement; or (read back only) a grant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub kind: String,
    pub gen_id: String,
    pub key_hash: String,
    pub picos: u128,
    pub note: String,
    pub at_ms: u64,
}

/// What a batch adds to one row of the daily aggregates.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DailyDelta {
    pub requests: u64,
    pub usage: u128,
    pub prompt: u64,
    pub completion: u64,
    pub reasoning: u64,
    pub cached: u64,
}

/// A kept generation and what it was charged.
#[derive(Debug, Clone, PartialEq)]
pub struct Charged {
    pub generation: super::records::Generation,
    pub charged: u64,
}

/// The account's storage. Every method is one storage call (a test store can fail any
/// of them); changes run inside the caller's transaction.
pub trait Store {
    /// The clock, in Unix milliseconds.
    fn now_ms(&self) -> u64;
    /// Whether the account was made (`Init`).
    fn exists(&self) -> Result<bool>;
    /// Makes the tables of a new account (a no-op where there are none).
    fn create_schema(&self) -> Result<()>;
    fn account(&self) -> Result<Option<AccountRow>>;
    fn insert_account(&self, a: &AccountRow) -> Result<()>;
    fn set_name(&self, name: &str) -> Result<()>;
    fn set_allow_training(&self, allow: bool) -> Result<()>;

    /// A running total (0 if never set).
    fn total(&self, name: &str) -> Result<u128>;
    fn set_total(&self, name: &str, value: u128) -> Result<()>;
    /// Drops a running total (and when it was due to go, if it was).
    fn delete_total(&self, name: &str) -> Result<()>;
    /// Notes that running total `name` (one kept for late settlements) may go at
    /// `at_ms` ([`super::books::Books::housekeep`]).
    fn expire_total(&self, name: &str, at_ms: u64) -> Result<()>;
    /// At most `limit` of the totals due to go before `before_ms`, soonest first.
    fn due_totals(&self, before_ms: u64, limit: u64) -> Result<Vec<String>>;
    fn log_grant(&self, picos: u64, note: &str, at_ms: u64) -> Result<()>;

    fn key(&self, hash: &str) -> Result<Option<KeyRecord>>;
    /// Every key, by hash.
    fn keys(&self) -> Result<Vec<KeyRecord>>;
    fn put_key(&self, k: &KeyRecord) -> Result<()>;
    fn delete_key(&self, hash: &str) -> Result<()>;

    /// What request `gen_id` holds of its own (0 without a reservation).
    fn reservation(&self, gen_id: &str) -> Result<u64>;
    fn put_reservation(&self, r: &Reservation, at_ms: u64) -> Result<()>;
    /// Marks a running request's reservation as alive at `at_ms`.
    fn touch_reservation(&self, gen_id: &str, at_ms: u64) -> Result<()>;
    fn delete_reservation(&self, gen_id: &str) -> Result<()>;
    /// Reservations last written or touched before `before_ms`.
    fn stale_reservations(&self, before_ms: u64) -> Result<Vec<Reservation>>;

    fn lease(&self, id: &str) -> Result<Option<LeaseRow>>;
    /// Open leases last written before `open_before`, closing ones before
    /// `closing_before`.
    fn stale_leases(&self, open_before: u64, closing_before: u64) -> Result<Vec<LeaseRow>>;
    /// Writes a lease's row, renewed at `at_ms`.
    fn put_lease(&self, l: &LeaseRow, at_ms: u64) -> Result<()>;
    fn delete_lease(&self, id: &str) -> Result<()>;
    /// What all leases hold.
    fn leased(&self) -> Result<u64>;
    /// How many holds (reservations and leases) there are.
    fn hold_count(&self) -> Result<u64>;
    /// What a key's requests hold of their own.
    fn key_reserved(&self, key: &str) -> Result<u64>;
    /// What a key holds in all: its reservations and its leases.
    fn key_held(&self, key: &str) -> Result<u64>;

    /// A key's spending in one period row (`all`, `d:<day>`, `w:<day>`, `m:<day>`).
    fn key_total(&self, key: &str, period: &str) -> Result<u128>;
    fn set_key_total(&self, key: &str, period: &str, value: u128) -> Result<()>;
    /// Drops the period rows of `key_totals` whose period ended before what
    /// [`super::books::Books::housekeep`] passes: daily rows of days before `day`,
    /// weekly ones before `week`, monthly ones before `month` (all days since 1970).
    fn prune_key_totals(&self, day: i64, week: i64, month: i64) -> Result<()>;
    /// Drops every period row of a (deleted) key.
    fn delete_key_totals(&self, key: &str) -> Result<()>;
    /// How many keys the account has.
    fn key_count(&self) -> Result<u64>;

    /// Legacy (before the records shards): the aggregates of days `from..=to`, summed
    /// over keys, newest day first.
    fn activity(&self, from: i64, to: i64) -> Result<Vec<ActivityRow>>;

    fn add_entry(&self, e: &Entry) -> Result<()>;
    /// What the entries of `kind` of `gen_id` add up to; None without one.
    fn entry_sum(&self, kind: &str, gen_id: &str) -> Result<Option<u64>>;
    /// The latest entries and grants (`limit` of each), newest first.
    fn ledger(&self, limit: u32) -> Result<Vec<Entry>>;

    /// Whether generation `id` was settled (within the dedupe retention; or, legacy,
    /// is among the records kept here before the shards).
    fn settled(&self, id: &str) -> Result<bool>;
    /// Notes that generation `id`, made at `created_ms`, is settled.
    fn put_settled(&self, id: &str, created_ms: u64) -> Result<()>;
    /// Drops at most `limit` dedupe rows of generations made before `before_ms`: how
    /// many it dropped.
    fn prune_settled(&self, before_ms: u64, limit: u64) -> Result<u64>;
    /// Queues record `r` for the shard of `day`.
    fn put_outbox(&self, day: i64, r: &Record) -> Result<()>;
    /// The oldest `limit` queued records, with their days.
    fn outbox(&self, limit: u64) -> Result<Vec<(i64, Record)>>;
    fn outbox_len(&self) -> Result<u64>;
    /// Drops the queued records of these generations (they landed in their shard).
    fn delete_outbox(&self, ids: &[String]) -> Result<()>;
    /// Drops at most `limit` entries made before `before_ms`, and the oldest of those
    /// past the newest `keep`; grants past the newest `keep_grants`.
    fn prune_entries(&self, before_ms: u64, keep: u64, keep_grants: u64, limit: u64) -> Result<()>;

    /// Whether records from before the shards are still kept here.
    fn legacy(&self) -> Result<bool>;
    /// Legacy: generation `id`, if it is `key`'s (any key's with None).
    fn generation(&self, id: &str, key: Option<&str>) -> Result<Option<Charged>>;
    /// Legacy: the latest `limit` generations (of `key`, or all), newest first.
    fn generations(&self, key: Option<&str>, limit: u32) -> Result<Vec<Charged>>;
    /// Legacy: drops a bounded batch of the generations created before `before_ms`,
    /// and the aggregates of days before `before_ms`'s, and the legacy tables once
    /// they are empty.
    fn prune_generations(&self, before_ms: u64) -> Result<()>;

    fn session(&self, id: &str) -> Result<Option<SessionRow>>;
    fn put_session(&self, s: &SessionRow) -> Result<()>;
    /// The `limit` most recently used sessions (of `key`, or all), newest first.
    fn sessions(&self, key: Option<&str>, limit: u32) -> Result<Vec<SessionRow>>;
    /// Drops at most `limit` sessions that hold nothing and were last used before
    /// `before_ms` or are past the newest `keep`.
    fn prune_sessions(&self, before_ms: u64, keep: u64, limit: u64) -> Result<()>;

    /// Preset `slug` ([`super::presets`]), if the account has it.
    fn preset(&self, slug: &str) -> Result<Option<PresetRecord>>;
    fn put_preset(&self, p: &PresetRecord) -> Result<()>;
    fn delete_preset(&self, slug: &str) -> Result<()>;
    /// `limit` presets after the first `offset`, most recently updated first.
    fn presets(&self, limit: u32, offset: u32) -> Result<Vec<PresetRecord>>;
    fn preset_count(&self) -> Result<u64>;
    /// The account's BYOK credentials ([`super::byok`]), their keys sealed.
    fn byok_keys(&self) -> Result<Vec<super::byok::ByokRecord>>;
    fn put_byok(&self, r: &super::byok::ByokRecord) -> Result<()>;
    fn delete_byok(&self, id: &str) -> Result<()>;

    /// Counts a hit on the fixed windows of `counter` ([`crate::limits::hit`]).
    fn hit(&self, counter: &str, windows: &[Window], now_secs: u64) -> Result<Decision>;
    /// What window `w` of `counter` has counted ([`crate::limits::used`]).
    fn used(&self, counter: &str, w: &Window, now_secs: u64) -> u64;
}
