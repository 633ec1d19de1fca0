//! Shared helpers for the provider fixture tests.

#![allow(clippy::indexing_slicing, clippy::string_slice)] // test helpers: a panic fails the test

use serde_json::Value;

use super::stream::{ChatStream, Translator};
use super::Target;
use crate::api::{ChatRequest, GenerationMeta};
use crate::catalog::Catalog;

pub fn catalog() -> Catalog {
    Catalog::from_json(include_bytes!("../../catalog/catalog.json")).unwrap()
}

pub fn meta(model: &str) -> GenerationMeta {
    GenerationMeta {
        id: "gen-1-abc".into(),
        created: 1700000000,
        model: model.into(),
        provider: "Test".into(),
    }
}

pub fn request(v: Value) -> ChatRequest {
    ChatRequest::parse(v.to_string().as_bytes()).unwrap()
}

/// Runs `f` with a target for the first endpoint of `model` in the shipped catalogue.
pub fn with_target<R>(model: &str, f: impl FnOnce(&Target) -> R) -> R {
    let cat = catalog();
    let m = cat.model(model).unwrap();
    let t = Target {
        provider: cat.provider(&m.endpoints[0].provider).unwrap(),
        model: m,
        endpoint: &m.endpoints[0],
        base_url: "http://up/v1".into(),
        api_key: Some("sk-test".into()),
    };
    f(&t)
}

/// The upstream request built for `body` at `model`'s first endpoint, and its JSON body.
pub fn built(model: &str, body: Value) -> (super::UpstreamRequest, Value) {
    let up = with_target(model, |t| super::build_request(t, &request(body))).unwrap();
    let json = serde_json::from_slice(&up.body).unwrap();
    (up, json)
}

/// Feeds `bytes` split at `split` through a fresh translator; returns the client SSE.
pub fn translate(make: &dyn Fn() -> Translator, model: &str, bytes: &[u8], split: usize) -> String {
    let pricing = catalog().model(model).unwrap().endpoints[0].pricing.clone();
    let mut s = ChatStream::new(make(), meta(model), pricing, 10);
    let mut out = s.feed(&bytes[..split]);
    out.extend(s.feed(&bytes[split..]));
    out.extend(s.finish());
    String::from_utf8(out).unwrap()
}

/// Translates at every split point, checks all agree, returns the data events.
pub fn translate_everywhere(
    make: &dyn Fn() -> Translator,
    model: &str,
    bytes: &[u8],
) -> Vec<Value> {
    let whole = translate(make, model, bytes, 0);
    for i in 1..bytes.len() {
        assert_eq!(translate(make, model, bytes, i), whole, "split at {i}");
    }
    assert!(whole.ends_with("data: [DONE]\n\n"));
    whole
        .split("\n\n")
        .filter(|e| e.starts_with("data: {"))
        .map(|e| serde_json::from_str(&e[6..]).unwrap())
        .collect()
}

/// Concatenates the content deltas of translated chunks.
pub fn content(events: &[Value]) -> String {
    events
        .iter()
        .filter_map(|e| e["choices"][0]["delta"]["content"].as_str())
        .collect()
}

/// Concatenates the tool-call argument deltas for tool call `index`.
pub fn arguments(events: &[Value], index: u64) -> String {
    events
        .iter()
        .flat_map(|e| {
            e["choices"][0]["delta"]["tool_calls"]
                .as_array()
                .cloned()
                .unwrap_or_default()
        })
        .filter(|t| t["index"] == index)
        .filter_map(|t| t["function"]["arguments"].as_str().map(str::to_string))
        .collect()
}

/// Every item of the array `field` in the first choice's delta, across `events`.
pub fn delta_items<'a>(events: &'a [Value], field: &str) -> Vec<&'a Value> {
    events
        .iter()
        .filter_map(|e| e["choices"][0]["delta"][field].as_array())
        .flatten()
        .collect()
}
