//! Callers: API keys, how they are checked, and what identifies a caller for limits;
//! and the account's books, pure over a storage trait.

pub mod books;
pub mod byok;
mod byok_books;
pub mod destinations;
pub mod holds;
pub mod keys;
pub mod lease;
pub mod ledger;
pub mod left;
#[cfg(test)]
pub mod memory;
#[cfg(test)]
mod model_tests;
#[cfg(test)]
mod ocr_hold_tests;
pub mod ops;
pub mod presets;
pub mod records;
#[cfg(test)]
mod scale_tests;
pub mod served;
pub mod session;
pub mod settle;
pub mod settle_queue;
pub mod shard;
pub mod store;
pub mod trace_batch;
pub mod traces;
