//! API keys: `sk-mm-v1-` + 64 lowercase hex characters: 16 naming the account (so a
//! request finds its account's Durable Object without a lookup), 32 random, and a
//! 16-character check tag, the first 8 bytes of HMAC-SHA256 over the account ID and
//! the random part keyed by the deployment's `KEY_SECRET`. The tag is verified at the
//! edge, so a key this deployment never issued is refused before the body is read or
//! any Durable Object is touched. Only SHA-256 hashes of keys are stored; a key's hash
//! is its public name.

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::error::{Error, Result};

pub const PREFIX: &str = "sk-mm-v1-";
use crate::ids::is_lower_hex;
pub use crate::ids::{is_account_id, ACCOUNT_ID_LEN};
const RANDOM_LEN: usize = 32;
const TAG_LEN: usize = 16;
const BODY_LEN: usize = ACCOUNT_ID_LEN + RANDOM_LEN + TAG_LEN;

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes.iter().fold(
        String::with_capacity(bytes.len().saturating_mul(2)),
        |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        },
    )
}

/// Lowercase hex SHA-256 of a key: how keys are stored and named.
pub fn hash_key(key: &str) -> String {
    hex(&Sha256::digest(key.as_bytes()))
}

/// A new account ID from 8 random bytes.
pub fn new_account_id(random: &[u8; 8]) -> String {
    hex(random)
}

/// The check tag of an account ID and random part under `secret`.
fn tag(secret: &[u8], account_id: &str, random_hex: &str) -> String {
    // HMAC takes keys of any length, so this cannot fail.
    let mut mac = match <Hmac<Sha256> as Mac>::new_from_slice(secret) {
        Ok(m) => m,
        Err(_) => return String::new(),
    };
    mac.update(account_id.as_bytes());
    mac.update(b".");
    mac.update(random_hex.as_bytes());
    let out = mac.finalize().into_bytes();
    hex(out.get(..TAG_LEN / 2).unwrap_or_default())
}

/// A new key for `account_id` from 16 random bytes, tagged under `secret`.
pub fn new_key(secret: &[u8], account_id: &str, random: &[u8; 16]) -> String {
    let random = hex(random);
    let tag = tag(secret, account_id, &random);
    format!("{PREFIX}{account_id}{random}{tag}")
}

/// The account of a well-formed key whose check tag is right under `secret`; `None`
/// for anything else (compared in constant time).
pub fn verify<'k>(key: &'k str, secret: &[u8]) -> Option<&'k str> {
    let body = key.strip_prefix(PREFIX)?;
    if body.len() != BODY_LEN || !is_lower_hex(body) {
        return None;
    }
    let account = body.get(..ACCOUNT_ID_LEN)?;
    let random = body.get(ACCOUNT_ID_LEN..ACCOUNT_ID_LEN + RANDOM_LEN)?;
    let given = body.get(ACCOUNT_ID_LEN + RANDOM_LEN..)?;
    let expected = tag(secret, account, random);
    bool::from(expected.as_bytes().ct_eq(given.as_bytes())).then_some(account)
}

/// What a key is shown as once created: enough to recognise it, not to use it.
pub fn label(key: &str) -> String {
    let chars: Vec<char> = key.chars().collect();
    let head: String = chars.iter().take(PREFIX.len().saturating_add(3)).collect();
    let tail: String = chars.iter().skip(chars.len().saturating_sub(4)).collect();
    format!("{head}...{tail}")
}

/// The key of an `Authorization: Bearer <key>` header value, or of an `x-api-key`
/// header (Anthropic's clients).
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

/// What goes upstream for an end user's `user` ID: a keyed hash of it under the
/// deployment's secret, per account, so that a provider can tell one end user from
/// another (abuse reports, caching) without learning who it is, and the same ID sent
/// by two accounts does not link them.
pub fn user_pseudonym(secret: &[u8], account_id: &str, user: &str) -> String {
    let mut mac = match <Hmac<Sha256> as Mac>::new_from_slice(secret) {
        Ok(m) => m,
        Err(_) => return String::new(),
    };
    // Length-prefixed, so that no account and user pair reads as another.
    mac.update(b"user");
    mac.update(&(account_id.len() as u64).to_le_bytes());
    mac.update(account_id.as_bytes());
    mac.update(user.as_bytes());
    let out = mac.finalize().into_bytes();
    format!("mm-user-{}", hex(out.get(..16).unwrap_or_default()))
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
    fn keys_carry_their_account_and_a_check_tag() {
        let secret = b"deployment secret";
        let acc = new_account_id(&[0xab; 8]);
        assert!(is_account_id(&acc));
        let key = new_key(secret, &acc, &[7; 16]);
        assert_eq!(key.len(), PREFIX.len() + 64);
        assert_eq!(verify(&key, secret), Some(acc.as_str()));
        assert_eq!(label(&key).len(), PREFIX.len() + 3 + 3 + 4);
        assert!(label(&key).starts_with("sk-mm-v1-aba..."));
        // Another deployment's secret, a changed random part, a changed tag.
        assert_eq!(verify(&key, b"other secret"), None);
        let flip = |i: usize| {
            let mut b = key.clone().into_bytes();
            b[i] = if b[i] == b'0' { b'1' } else { b'0' };
            String::from_utf8(b).unwrap()
        };
        assert_eq!(verify(&flip(PREFIX.len() + 20), secret), None);
        assert_eq!(verify(&flip(key.len() - 1), secret), None);
        assert_eq!(verify(&flip(PREFIX.len()), secret), None);
        for bad in [
            "sk-mm-v1-short".to_string(),
            "sk-or-v1-abababababababab".to_string(),
            key.chars().skip(1).collect(),
            key.to_uppercase(),
            format!("{PREFIX}{}", "0".repeat(64)),
            format!("{PREFIX}{}é", "0".repeat(62)),
        ] {
            assert_eq!(verify(&bad, secret), None, "{bad}");
        }
        assert_eq!(label("é"), "é...é");
    }

    #[test]
    fn user_ids_go_upstream_as_a_stable_keyed_hash_per_account() {
        let p = |secret: &[u8], acc: &str, user: &str| user_pseudonym(secret, acc, user);
        let one = p(b"s", "aaaa", "alice@example.com");
        assert_eq!(one, p(b"s", "aaaa", "alice@example.com"), "stable");
        assert!(one.starts_with("mm-user-") && one.len() == "mm-user-".len() + 32);
        assert!(!one.contains("alice"));
        assert_ne!(one, p(b"s", "bbbb", "alice@example.com"), "per account");
        assert_ne!(one, p(b"t", "aaaa", "alice@example.com"), "keyed");
        assert_ne!(one, p(b"s", "aaaa", "bob@example.com"));
        // The separator keeps the account and the user apart.
        assert_ne!(p(b"s", "aa", "a\0b"), p(b"s", "aa\0a", "b"));
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
