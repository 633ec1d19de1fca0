use super::*;
use serde_json::json;

fn canon(v: Value) -> String {
    let mut out = Vec::new();
    canonical(&v, &mut out);
    String::from_utf8(out).unwrap()
}

#[test]
fn canonical_json_sorts_keys_at_every_depth() {
    let v = json!({"b": 1, "a": {"z": [3, {"y": true, "x": null}], "c": "é\n\"q\""}});
    assert_eq!(
        canon(v),
        r#"{"a":{"c":"é\n\"q\"","z":[3,{"x":null,"y":true}]},"b":1}"#
    );
    assert_eq!(canon(json!([])), "[]");
    assert_eq!(canon(json!({})), "{}");
    assert_eq!(canon(json!(1.5)), "1.5");
}

#[test]
fn keys_ignore_order_and_spacing_but_not_content() {
    let a = br#"{"model":"m","messages":[{"role":"user","content":"hi"}]}"#;
    let b = br#"{ "messages" : [ {"content":"hi", "role":"user"} ], "model" : "m" }"#;
    let k = key("kh", ("chat", false), None, a).unwrap();
    assert_eq!(k.len(), 64);
    assert_eq!(k, key("kh", ("chat", false), None, b).unwrap());
    // Each part of the key matters.
    assert_ne!(k, key("kh2", ("chat", false), None, a).unwrap());
    assert_ne!(k, key("kh", ("responses", false), None, a).unwrap());
    assert_ne!(k, key("kh", ("chat", true), None, a).unwrap());
    let c = br#"{"model":"m","messages":[{"role":"user","content":"hi!"}]}"#;
    assert_ne!(k, key("kh", ("chat", false), None, c).unwrap());
    // Parts are length-prefixed: moving a byte between them changes the key.
    assert_ne!(
        key("ab", ("c", false), None, a).unwrap(),
        key("a", ("bc", false), None, a).unwrap()
    );
    assert!(key("kh", ("chat", false), None, b"{nope").is_err());
    // A preset's new version is a new key for the same body.
    let v1 = key("kh", ("chat", false), Some("p1@1"), a).unwrap();
    assert_ne!(v1, k);
    assert_ne!(v1, key("kh", ("chat", false), Some("p1@2"), a).unwrap());
    assert_eq!(v1, key("kh", ("chat", false), Some("p1@1"), b).unwrap());
}

#[test]
fn directive_reads_the_headers() {
    assert_eq!(directive(None, None, None).unwrap(), None);
    assert_eq!(directive(Some("false"), Some("60"), None).unwrap(), None);
    let d = directive(Some("true"), None, None).unwrap().unwrap();
    assert_eq!((d.ttl_secs, d.clear), (300, false));
    let d = directive(Some(" TRUE "), Some("86400"), Some("true"))
        .unwrap()
        .unwrap();
    assert_eq!((d.ttl_secs, d.clear), (86_400, true));
    assert_eq!(
        directive(Some("true"), Some("1"), Some("false"))
            .unwrap()
            .unwrap()
            .ttl_secs,
        1
    );
}

#[test]
fn directive_refuses_values_out_of_shape_naming_the_header() {
    let msg = |r: Result<Option<Directive>, Error>| r.unwrap_err().public_message();
    for ttl in ["0", "86401", "-5", "1.5", "soon", ""] {
        let m = msg(directive(Some("true"), Some(ttl), None));
        assert_eq!(
            m, "X-OpenRouter-Cache-TTL: must be a whole number of seconds from 1 to 86400",
            "{ttl}"
        );
    }
    assert_eq!(
        msg(directive(Some("yes"), None, None)),
        "X-OpenRouter-Cache: must be true or false"
    );
    assert_eq!(
        msg(directive(Some("true"), None, Some("1"))),
        "X-OpenRouter-Cache-Clear: must be true or false"
    );
}

fn reply() -> ChatCompletion {
    serde_json::from_value(json!({
        "id": "gen-src", "created": 5, "model": "openai/gpt-4o", "provider": "OpenAI",
        "choices": [{"index": 0, "finish_reason": "tool_calls", "native_finish_reason": "tool_calls",
            "message": {"role": "assistant", "content": "hello", "reasoning": "hm",
                "tool_calls": [{"id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{\"a\":1}"}}]}}],
        "usage": {"prompt_tokens": 10, "completion_tokens": 4, "total_tokens": 14, "cost": 0.001}
    }))
    .unwrap()
}

fn meta() -> GenerationMeta {
    GenerationMeta {
        id: "gen-hit".into(),
        created: 99,
        model: "openai/gpt-4o".into(),
        provider: "OpenAI".into(),
    }
}

#[test]
fn a_hit_is_the_stored_reply_renamed_and_free() {
    let hit = hit_completion(&reply(), &meta());
    let v = serde_json::to_value(&hit).unwrap();
    assert_eq!(
        (v["id"].as_str(), v["created"].as_u64()),
        (Some("gen-hit"), Some(99))
    );
    assert_eq!(
        v["usage"],
        json!({"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0, "cost": 0})
    );
    assert_eq!(v["choices"][0]["message"]["content"], "hello");
    assert!(storable(&reply()));
    let mut cut = reply();
    cut.choices[0].finish_reason = Some("error".into());
    assert!(!storable(&cut));
    cut.choices[0].finish_reason = None;
    assert!(!storable(&cut));
}

#[test]
fn a_hit_replays_as_the_chunks_of_a_stream() {
    let chunks = replay_chunks(&reply(), &meta());
    assert_eq!(chunks.len(), 2);
    let first = serde_json::to_value(&chunks[0]).unwrap();
    assert_eq!(first["id"], "gen-hit");
    assert_eq!(first["choices"][0]["delta"]["content"], "hello");
    assert_eq!(first["choices"][0]["delta"]["reasoning"], "hm");
    assert_eq!(
        first["choices"][0]["delta"]["tool_calls"][0]["function"]["arguments"],
        "{\"a\":1}"
    );
    assert_eq!(first["choices"][0]["finish_reason"], Value::Null);
    let last = serde_json::to_value(&chunks[1]).unwrap();
    assert_eq!(last["choices"][0]["finish_reason"], "tool_calls");
    assert_eq!(last["choices"][0]["delta"], json!({}));
}

#[test]
fn entries_round_trip_age_and_expire() {
    let e = Entry {
        source_id: "gen-src".into(),
        stored_ms: 10_000,
        ttl_secs: 2,
        reply: Stored::Chat(Box::new(reply())),
    };
    let back = Entry::from_bytes(&e.to_bytes().unwrap()).unwrap();
    assert_eq!(back.source_id, "gen-src");
    assert!(
        matches!(&back.reply, Stored::Chat(c) if c.choices[0].message.content.as_deref() == Some("hello"))
    );
    assert!(back.fresh(10_000) && back.fresh(11_999));
    assert!(!back.fresh(12_000) && !back.fresh(9_999));
    assert_eq!((back.age_secs(11_500), back.ttl_left(11_500)), (1, 1));
    let emb = Entry {
        reply: Stored::Embeddings(StoredEmbeddings {
            data: RawValue::from_string(
                "[{\"embedding\":[0.5],\"index\":0,\"object\":\"embedding\"}]".into(),
            )
            .unwrap(),
            model: "m".into(),
            provider: "p".into(),
        }),
        ..e.clone()
    };
    let back = Entry::from_bytes(&emb.to_bytes().unwrap()).unwrap();
    assert!(matches!(&back.reply, Stored::Embeddings(s) if s.data.get().contains("0.5")));
    // Too large to keep.
    let mut big = reply();
    big.choices[0].message.content = Some("x".repeat(MAX_ENTRY_BYTES));
    assert!(Entry {
        reply: Stored::Chat(Box::new(big)),
        ..e
    }
    .to_bytes()
    .is_none());
}
