//! The keys the model tests make.

use super::*;

/// A key as the tests make them (the 60-day simulation's too).
pub(in crate::accounts) fn key_record(hash: &str, kind: KeyKind, limit: Option<u64>) -> KeyRecord {
    KeyRecord {
        hash: hash.into(),
        name: hash.into(),
        label: hash.into(),
        kind,
        disabled: false,
        limit_picos: limit,
        limit_reset: None,
        created_ms: START_MS,
        updated_ms: None,
        session_limits_default: None,
        require_session_id: false,
        include_byok_in_limit: false,
    }
}
