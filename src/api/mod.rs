//! OpenAI/OpenRouter wire types: chat requests, replies, stream chunks and usage.

pub mod chat;
pub mod sse;

pub use chat::*;
