//! modelmux: an OpenRouter-compatible LLM gateway for Cloudflare Workers.
//!
//! Everything but `edge` is a pure core that compiles and is tested natively;
//! `edge` is the wasm32-only glue to the Workers runtime (fetch, KV, Durable Objects).

// Test code may panic: a panic there fails the test, not a Worker.
#![cfg_attr(test, allow(clippy::arithmetic_side_effects))]

pub mod accounts;
pub mod api;
pub mod catalog;
pub mod error;
pub mod ids;
pub mod json;
pub mod limits;
pub mod money;
pub mod providers;
pub mod routing;
pub mod settings;
pub mod usage;

#[cfg(target_arch = "wasm32")]
mod edge;
