//! Callers: API keys, how they are checked, and what identifies a caller for limits.

pub mod keys;
pub mod lease;
pub mod ledger;
pub mod records;
pub mod served;
pub mod settle_queue;
