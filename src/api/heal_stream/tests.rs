#![allow(clippy::indexing_slicing, clippy::unwrap_used)] // tests: a panic fails the test

use super::*;
use crate::api::ChatRequest;
use serde_json::json;

fn healer(format: Value) -> StreamHealer {
    let req: ChatRequest = serde_json::from_value(json!({
        "model": "m", "messages": [{"role": "user", "content": "x"}],
        "response_format": format, "plugins": [{"id": "response-healing"}]
    }))
    .unwrap();
    StreamHealer::new(Healer::of(&req).unwrap())
}

fn object() -> StreamHealer {
    healer(json!({"type": "json_object"}))
}

fn finish(reason: &str) -> ChatChunk {
    ChatChunk::bare(Delta::default(), Some(reason.into()))
}

fn data(end: &StreamEnd) -> Value {
    let v: Value = serde_json::from_str(&end.stage).unwrap();
    assert_eq!(v["type"], "response_healing");
    v["data"].clone()
}

#[test]
fn closing_suffixes_close_what_is_open() {
    for (text, suffix) in [
        (r#"{"name": "Alice", "age": 30"#, Some("}")),
        (r#"{"items": [{"id": 1}, {"id": 2"#, Some("}]}")),
        (r#"{"quote": "to be or not"#, Some("\"}")),
        (r#"{"q": "say \"hi"#, Some("\"}")),
        (r#"{"brace": "}{", "list": ["#, Some("]}")),
        (r#"{"done": true}"#, None),
        (r#"{"bad": ]"#, None),
        (r#"{"esc": "a\"#, None),
    ] {
        assert_eq!(closing_suffix(text).as_deref(), suffix, "{text}");
    }
}

#[test]
fn a_cut_off_reply_is_completed_by_a_suffix_before_its_finish() {
    let mut h = object();
    h.push(0, r#"{"name": "Al"#);
    h.push(0, r#"ice", "tags": ["a""#);
    let mut last = finish("length");
    h.hold_finish(&mut last);
    assert!(last.choices.is_empty(), "the finish is held: {last:?}");
    let end = h.end();
    assert_eq!(end.chunks.len(), 2);
    assert_eq!(
        end.chunks[0].choices[0].delta.content.as_deref(),
        Some("]}")
    );
    assert_eq!(end.chunks[0].choices[0].finish_reason, None);
    assert_eq!(end.chunks[1].choices[0].delta, Delta::default());
    assert_eq!(
        end.chunks[1].choices[0].finish_reason.as_deref(),
        Some("length")
    );
    assert_eq!(
        data(&end),
        json!({"mode": "json_object", "healed": true, "original_length": 30,
               "healed_length": 32, "valid": true, "streamed": true,
               "repairs": [{"index": 0, "repair": "suffix", "appended": "]}"}]})
    );
}

#[test]
fn a_fenced_reply_is_healed_whole_in_the_stage() {
    let mut h = object();
    h.push(0, "```json\n{\"a\": 1,}\n```");
    let end = h.end();
    assert!(end.chunks.is_empty(), "{:?}", end.chunks);
    assert_eq!(
        data(&end)["repairs"],
        json!([{"index": 0, "repair": "replace", "healed_content": "{\"a\":1}"}])
    );
    assert_eq!(data(&end)["healed_length"], 7);
}

#[test]
fn valid_json_is_left_and_checked_against_the_schema() {
    let schema = json!({"type": "json_schema", "json_schema": {"name": "p",
        "schema": {"type": "object", "required": ["price"],
                   "properties": {"price": {"type": "number"}}}}});
    let mut h = healer(schema.clone());
    h.push(0, r#"{"price": 3}"#);
    let end = h.end();
    assert!(end.chunks.is_empty());
    assert_eq!(
        data(&end),
        json!({"mode": "json_schema", "healed": false, "original_length": 12,
               "healed_length": 12, "valid": true, "streamed": true})
    );
    let mut h = healer(schema);
    h.push(0, r#"{"price": "3""#);
    let end = h.end();
    assert_eq!(end.chunks[0].choices[0].delta.content.as_deref(), Some("}"));
    assert_eq!(data(&end)["valid"], false);
    let mut h = object();
    h.push(0, "no json here");
    assert_eq!(data(&h.end())["valid"], false);
}

#[test]
fn content_over_the_bound_is_not_healed() {
    let mut h = object();
    h.push(0, "{\"a\": \"");
    h.push(0, &"x".repeat(MAX_HEAL_BYTES));
    let end = h.end();
    assert!(end.chunks.is_empty());
    let d = data(&end);
    assert_eq!(
        (d["valid"].clone(), d["healed"].clone()),
        (json!(false), json!(false))
    );
    assert_eq!(d["skipped"], "content over 1048576 bytes");
}

#[test]
fn the_stage_goes_first_in_the_metadatas_pipeline() {
    let st = r#"{"type":"response_healing"}"#;
    assert_eq!(
        with_stage(None, st),
        r#"{"pipeline":[{"type":"response_healing"}]}"#
    );
    assert_eq!(
        with_stage(Some(r#"{"attempt":1,"pipeline":[]}"#), st),
        r#"{"attempt":1,"pipeline":[{"type":"response_healing"}]}"#
    );
    assert_eq!(
        with_stage(Some(r#"{"pipeline":[{"type":"x"}]}"#), st),
        r#"{"pipeline":[{"type":"response_healing"},{"type":"x"}]}"#
    );
}
