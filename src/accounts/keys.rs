//! API keys. Only SHA-256 hashes of keys are configured or stored; a presented key
//! is hashed and compared with each known hash in constant time.

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::error::{Error, Result};

/// Lowercase hex SHA-256 of a key: how keys are stored and named.
pub fn hash_key(key: &str) -> String {
    let digest = Sha256::digest(key.as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
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

/// Checks `key` against a comma-separated list of key hashes (the `API_KEYS` secret);
/// returns the matching hash. Every entry is compared, so timing says nothing.
pub fn check_static(key: &str, configured: &str) -> Result<String> {
    let presented = hash_key(key);
    let mut found = None;
    for h in configured
        .split(',')
        .map(str::trim)
        .filter(|h| !h.is_empty())
    {
        let h = h.to_ascii_lowercase();
        if bool::from(h.as_bytes().ct_eq(presented.as_bytes())) {
            found = Some(h);
        }
    }
    found.ok_or_else(|| Error::Unauthorized("User not found.".into()))
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
    fn bearer_parsing() {
        assert_eq!(bearer(Some("Bearer sk-1")).unwrap(), "sk-1");
        for bad in [None, Some(""), Some("Bearer "), Some("Basic xyz")] {
            assert_eq!(bearer(bad).unwrap_err().status(), 401);
        }
    }

    #[test]
    fn static_keys() {
        let list = format!(" {} ,{}", hash_key("k1"), hash_key("k2").to_uppercase());
        assert_eq!(check_static("k1", &list).unwrap(), hash_key("k1"));
        assert_eq!(check_static("k2", &list).unwrap(), hash_key("k2"));
        assert_eq!(check_static("k3", &list).unwrap_err().status(), 401);
        assert_eq!(check_static("k1", "").unwrap_err().status(), 401);
    }
}
