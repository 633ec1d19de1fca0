//! Vars and secrets, and the clock and randomness the core is handed.

use worker::{js_sys, Env};

/// A var or secret as a string, if set and not empty.
pub fn string(env: &Env, name: &str) -> Option<String> {
    env.var(name)
        .ok()
        .map(|v| v.to_string())
        .filter(|s| !s.is_empty())
}

pub fn u64(env: &Env, name: &str, default: u64) -> u64 {
    string(env, name)
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(default)
}

pub fn now_ms() -> f64 {
    js_sys::Date::now()
}

pub fn now_secs() -> u64 {
    (now_ms() / 1000.0) as u64
}

/// Random bytes for IDs (not for secrets).
pub fn random_bytes(n: usize) -> Vec<u8> {
    (0..n)
        .map(|_| (js_sys::Math::random() * 256.0) as u8)
        .collect()
}
