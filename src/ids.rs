//! The shapes of the identifiers the gateway issues and reads back from paths and keys.

/// Hex characters of an account's ID (also the start of each of its keys' bodies).
pub const ACCOUNT_ID_LEN: usize = 16;

pub fn is_lower_hex(s: &str) -> bool {
    s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// Whether `s` has the shape of an account ID: 16 lowercase hex characters.
pub fn is_account_id(s: &str) -> bool {
    s.len() == ACCOUNT_ID_LEN && is_lower_hex(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn account_ids() {
        assert!(is_account_id("0123456789abcdef"));
        assert!(!is_account_id("0123456789ABCDEF"));
        assert!(!is_account_id("0123456789abcde"));
        assert!(!is_account_id("0123456789abcdefa"));
        assert!(!is_account_id("0123456789abcdeg"));
    }
}
