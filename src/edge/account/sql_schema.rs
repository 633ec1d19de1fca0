//! The account object's tables and their migrations (SQLite DDL).

pub(super) const SCHEMA: [&str; 4] = [
    "CREATE TABLE IF NOT EXISTS account (id TEXT PRIMARY KEY, name TEXT NOT NULL, allow_training INTEGER NOT NULL, created_ms INTEGER NOT NULL, credits INTEGER NOT NULL, usage INTEGER NOT NULL, reserved INTEGER NOT NULL)",
    "CREATE TABLE IF NOT EXISTS grants (id INTEGER PRIMARY KEY AUTOINCREMENT, picos INTEGER NOT NULL, note TEXT NOT NULL, at_ms INTEGER NOT NULL)",
    "CREATE TABLE IF NOT EXISTS keys (hash TEXT PRIMARY KEY, record TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS reservations (gen_id TEXT PRIMARY KEY, key_hash TEXT NOT NULL, picos INTEGER NOT NULL, at_ms INTEGER NOT NULL, session_id TEXT)",
];

/// Running totals, so that no account call sums history.
pub(super) const TOTALS_SCHEMA: [&str; 3] = [
    "CREATE TABLE IF NOT EXISTS entries (id INTEGER PRIMARY KEY AUTOINCREMENT, kind TEXT NOT NULL, gen_id TEXT NOT NULL, key_hash TEXT NOT NULL, picos TEXT NOT NULL, note TEXT NOT NULL, at_ms INTEGER NOT NULL)",
    "CREATE TABLE IF NOT EXISTS totals (name TEXT PRIMARY KEY, value TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS key_totals (key_hash TEXT NOT NULL, period TEXT NOT NULL, value TEXT NOT NULL, PRIMARY KEY (key_hash, period))",
];

/// The legacy daily aggregates: made only for an account that still has generation
/// records from before the running totals (new records go to the day shards).
pub(super) const LEGACY_DAILY: &str = "CREATE TABLE IF NOT EXISTS daily (day INTEGER NOT NULL, key_hash TEXT NOT NULL, model TEXT NOT NULL, provider TEXT NOT NULL, requests INTEGER NOT NULL, usage TEXT NOT NULL, prompt INTEGER NOT NULL, completion INTEGER NOT NULL, reasoning INTEGER NOT NULL, cached INTEGER NOT NULL, PRIMARY KEY (day, key_hash, model, provider))";

/// The settled generations' IDs (the dedupe table, pruned by age) and the outbox of
/// records on their way to the day shards.
pub(super) const RECORDS_SCHEMA: [&str; 3] = [
    "CREATE TABLE IF NOT EXISTS settled (gen_id TEXT PRIMARY KEY, created_ms INTEGER NOT NULL)",
    "CREATE INDEX IF NOT EXISTS settled_by_created ON settled (created_ms)",
    "CREATE TABLE IF NOT EXISTS outbox (gen_id TEXT PRIMARY KEY, day INTEGER NOT NULL, record TEXT NOT NULL)",
];

/// When the totals kept for late settlements (a deleted key's limit, an expired
/// lease's unmatched hold) may go, and the entries by generation (late settlements
/// look theirs up). Made after `entries`.
pub(super) const UPKEEP_SCHEMA: [&str; 3] = [
    "CREATE TABLE IF NOT EXISTS expiring (name TEXT PRIMARY KEY, until_ms INTEGER NOT NULL)",
    "CREATE INDEX IF NOT EXISTS expiring_by_until ON expiring (until_ms)",
    "CREATE INDEX IF NOT EXISTS entries_by_gen ON entries (gen_id)",
];

/// Credit leases held by isolates: each is a hold on the account (counted in the
/// `reserved` total and in its key's holds) that settlements charge.
pub(super) const LEASE_SCHEMA: &str = "CREATE TABLE IF NOT EXISTS leases (id TEXT PRIMARY KEY, key_hash TEXT NOT NULL, amount INTEGER NOT NULL, in_flight INTEGER NOT NULL, at_ms INTEGER NOT NULL, closing INTEGER NOT NULL DEFAULT 0, admit_until INTEGER NOT NULL DEFAULT 9223372036854775807, settled INTEGER NOT NULL DEFAULT 0)";
/// The `closing` column, for a leases table made before it existed.
pub(super) const LEASE_CLOSING_COLUMN: &str =
    "ALTER TABLE leases ADD COLUMN closing INTEGER NOT NULL DEFAULT 0";
/// The columns of what a lease's isolate reported, for a leases table made before
/// them: its leases are taken to be unreported (all they hold could be owed).
pub(super) const LEASE_REPORT_COLUMNS: [&str; 2] = [
    "ALTER TABLE leases ADD COLUMN admit_until INTEGER NOT NULL DEFAULT 9223372036854775807",
    "ALTER TABLE leases ADD COLUMN settled INTEGER NOT NULL DEFAULT 0",
];
