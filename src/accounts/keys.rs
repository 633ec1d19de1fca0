//! API keys: `sk-mm-v1-` + 64 hex characters, the first 16 naming the account (so a
//! request finds its account's Durable Object without a lookup) and the other 48
//! random. Only SHA-256 hashes of keys are stored; a key's hash is its public name.

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::error::{Error, Result};

pub const PREFIX: &str = "sk-mm-v1-";
/// Hex characters of the account ID at the start of a key's body.
pub const ACCOUNT_ID_LEN: usize = 16;
const BODY_LEN: usize = 64;

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Lowercase hex SHA-256 of a key: how keys are stored and named.
pub fn hash_key(key: &str) -> String {
    hex(&Sha256::digest(key.as_bytes()))
}

/// A new account ID from 8 random bytes.
pub fn new_account_id(random: &[u8; 8]) -> String {
    hex(random)
}

/// A new key for `account_id` from 24 random bytes.
pub fn new_key(account_id: &str, random: &[u8; 24]) -> String {
    format!("{PREFIX}{account_id}{}", hex(random))
}

/// The account a well-formed key belongs to.
pub fn account_of(key: &str) -> Option<&str> {
    let body = key.strip_prefix(PREFIX)?;
    (body.len() == BODY_LEN && body.bytes().all(|b| b.is_ascii_hexdigit()))
        .then(|| &body[..ACCOUNT_ID_LEN])
}

pub fn is_account_id(s: &str) -> bool {
    s.len() == ACCOUNT_ID_LEN && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// What a key is shown as once created: enough to recognise it, not to use it.
pub fn label(key: &str) -> String {
    let tail = &key[key.len().saturating_sub(4)..];
    let head = &key[..key.len().min(PREFIX.len() + 3)];
    format!("{head}...{tail}")
}

/// The key of an `Authorization: Bearer <key>` header value.
pub fn bearer(header: Option<&str>) -> Result<&str> {
    let h = header.ok_or_else(|| Error::Unauthorized("No auth credentials found".into()))?;
    let key = h
        .strip_prefix("Bearer ")
        .or_else(|| h.strip_prefix("bearer "))
        .map(str::trim)
        .unwrap_or("");
    if key.is_empty() {
        return Err(Error::Unauthorized(
            "Authorization header must be `Bearer <key>`".into(),
        ));
    }
    Ok(key)
}

/// Compares two secrets (or their hashes) in constant time.
pub fn same(a: &str, b: &str) -> bool {
    bool::from(hash_key(a).as_bytes().ct_eq(hash_key(b).as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_are_sha256_hex() {
        assert_eq!(
            hash_key("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn keys_carry_their_account() {
        let acc = new_account_id(&[0xab; 8]);
        assert!(is_account_id(&acc));
        let key = new_key(&acc, &[7; 24]);
        assert_eq!(key.len(), PREFIX.len() + 64);
        assert_eq!(account_of(&key), Some(acc.as_str()));
        assert_eq!(label(&key), "sk-mm-v1-aba...0707");
        for bad in [
            "sk-mm-v1-short",
            "sk-or-v1-abababababababab",
            &key[..key.len() - 1],
            &key.replace('0', "z"),
        ] {
            assert_eq!(account_of(bad), None, "{bad}");
        }
    }

    #[test]
    fn bearer_parsing() {
        assert_eq!(bearer(Some("Bearer sk-1")).unwrap(), "sk-1");
        for bad in [None, Some(""), Some("Bearer "), Some("Basic xyz")] {
            assert_eq!(bearer(bad).unwrap_err().status(), 401);
        }
    }

    #[test]
    fn constant_time_equality() {
        assert!(same("admin-secret", "admin-secret"));
        assert!(!same("admin-secret", "admin-secreT"));
    }
}
