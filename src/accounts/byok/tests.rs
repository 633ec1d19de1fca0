use super::*;
use crate::accounts::books::Books;
use crate::accounts::memory::MemoryStore;
use crate::accounts::model_tests::key_record;
use crate::accounts::ops::Op;
use crate::accounts::records::KeyKind;

#[test]
fn a_key_is_shown_only_as_its_prefix_and_last_four() {
    assert_eq!(mask("sk-proj-abcdefghijklmnopAbCd"), "sk-...AbCd");
    assert_eq!(mask("sk-ant-api03-0123456789wxyz"), "sk-...wxyz");
    // No dash early on: two characters only.
    assert_eq!(mask("AIzaSyD0123456789abcdefQRST"), "AI...QRST");
    // A dash past the eighth character is not a prefix.
    assert_eq!(mask("abcdefghij-0123456789"), "ab...6789");
    // Too short to hide anything: nothing of it.
    assert_eq!(mask("short-key-12345"), "...");
    assert_eq!(mask(""), "...");
    // Never more than 8 + 4 characters of the key.
    let long = "x".repeat(3000);
    assert_eq!(mask(&long), "xx...xxxx");
}

#[test]
fn the_fee_is_a_percentage_rounded_up_to_the_picodollar() {
    assert_eq!(crate::money::percent_up(16_000_000, 5), 800_000);
    assert_eq!(crate::money::percent_up(0, 5), 0);
    assert_eq!(crate::money::percent_up(1, 5), 1);
    assert_eq!(crate::money::percent_up(19, 5), 1);
    assert_eq!(crate::money::percent_up(21, 5), 2);
    assert_eq!(
        crate::money::percent_up(1_000_000_000_001, 5),
        50_000_000_001
    );
    assert_eq!(crate::money::percent_up(u64::MAX, 100), u64::MAX);
    assert_eq!(crate::money::percent_up(12_345, 0), 0);
    // What a BYOK choice's prices charge: the same share of the whole.
    let p = crate::catalog::Pricing {
        prompt: "0.0001".into(),
        completion: "0.001".into(),
        byok_fee_percent: Some(5),
        ..Default::default()
    };
    let mut u = crate::usage::Usage::new(11, 7);
    assert_eq!(p.cost_picos(&u), 405_000_000);
    p.price(&mut u, true);
    assert_eq!(
        (u.cost.map(|c| c.0), u.is_byok),
        (Some(405_000_000), Some(true))
    );
    assert_eq!(
        u.cost_details.map(|d| d.upstream_inference_cost.0),
        Some(8_100_000_000)
    );
}

#[test]
fn an_envelope_reads_back_what_it_wrote_and_nothing_else() {
    let e = Envelope {
        nonce: [7; NONCE_BYTES],
        sealed: (0u8..40).collect(),
    };
    let text = e.to_text();
    assert!(text.starts_with("v1:"));
    assert_eq!(Envelope::parse(&text), Some(e));
    assert_eq!(Envelope::parse("v2:AAAA"), None);
    assert_eq!(Envelope::parse("v1:not base64!"), None);
    // A nonce and a tag at least: 12 + 17 bytes.
    use base64::Engine;
    let short = base64::engine::general_purpose::STANDARD.encode([0u8; 28]);
    assert_eq!(Envelope::parse(&format!("v1:{short}")), None);
    assert_ne!(aad("a", "b"), aad("a", "c"));
    assert_ne!(aad("ab", "c"), aad("a", "bc"));
}

#[test]
fn the_secret_is_32_bytes_of_hex_or_base64() {
    let hex = "00".repeat(31) + "ff";
    assert_eq!(secret_key(&hex).map(|k| k[31]), Some(255));
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD.encode([9u8; 32]);
    assert_eq!(secret_key(&b64), Some([9u8; 32]));
    assert_eq!(secret_key("too short"), None);
    assert_eq!(secret_key(&"00".repeat(16)), None);
    assert_eq!(secret_key(""), None);
}

#[test]
fn a_create_body_is_checked_field_by_field() {
    let (_, provider, key) = ByokFields::parse_create(br#"{"provider":"OpenAI","key":"sk-abcdefghijklmnop1234","name":"prod","is_fallback":false,"allowed_models":["openai/gpt-4o"]}"#).unwrap();
    assert_eq!(
        (provider.as_str(), key.as_str()),
        ("openai", "sk-abcdefghijklmnop1234")
    );
    let err = |b: &[u8]| ByokFields::parse_create(b).unwrap_err().to_string();
    assert!(
        err(br#"{"provider":"openai"}"#).starts_with("key: "),
        "{}",
        err(br#"{"provider":"openai"}"#)
    );
    assert_eq!(
        err(br#"{"provider":"openai","key":"  "}"#),
        "key: must be a non-empty string"
    );
    assert!(
        err(br#"{"provider":"openai","key":"k","allowed_api_key_hashes":[]}"#)
            .starts_with("allowed_api_key_hashes: must hold 1 to 100")
    );
    assert_eq!(
        err(br#"{"provider":"openai","key":"k","allowed_api_key_hashes":["ABC"]}"#),
        "allowed_api_key_hashes: each must be 64 lowercase hexadecimal characters"
    );
    assert!(err(br#"{"provider":"openai","key":"k","colour":1}"#).starts_with("colour: "));
    assert!(err(br#"{"provider":"","key":"k"}"#).starts_with("provider: "));
    let long = format!(
        r#"{{"provider":"p","key":"k","name":"{}"}}"#,
        "n".repeat(256)
    );
    assert_eq!(err(long.as_bytes()), "name: must be at most 255 bytes");
    // A fallback key cannot also be "always use".
    let r = record_of(br#"{"provider":"OpenAI","key":"sk-abcdefghijklmnop1234","is_fallback":true,"always_use":true}"#, "id-1", 5);
    assert_eq!(
        (r.provider.as_str(), r.always_use, r.label.as_str()),
        ("openai", false, "sk-...1234")
    );
    assert_eq!((r.created_ms, r.updated_ms), (5, None));
    assert!(ByokFields::parse_update(br#"{"provider":"x"}"#).is_err());
}

#[test]
fn a_patch_keeps_what_it_does_not_name_and_null_clears() {
    let r = record_of(br#"{"provider":"openai","key":"sk-abcdefghijklmnop1234","allowed_models":["a/b"],"always_use":true}"#, "id-1", 5);
    let p = ByokFields::parse_update(br#"{"name":"n2"}"#).unwrap();
    let r2 = p.apply(r.clone(), 9);
    assert_eq!(r2.allowed_models, r.allowed_models);
    assert_eq!(
        (r2.name.as_deref(), r2.updated_ms, r2.always_use),
        (Some("n2"), Some(9), true)
    );
    let r3 = ByokFields::parse_update(br#"{"allowed_models":null,"is_fallback":true}"#)
        .unwrap()
        .apply(r2, 10);
    assert_eq!(
        (r3.allowed_models, r3.is_fallback, r3.always_use),
        (None, true, false)
    );
    assert!(ByokFields::parse_update(br#"{"envelope":"v1:x"}"#).is_err());
    assert!(ByokFields::parse_update(br#"{"allowed_api_key_hashes":[]}"#).is_err());
}

fn books() -> Books<MemoryStore> {
    let cfg = crate::accounts::books::Config {
        retention_days: 30,
        settled_retention_ms: 86_400_000,
        reservation_ttl_ms: 900_000,
        lease_ttl_ms: 60_000,
        lease_policy: crate::accounts::lease::Policy::default(),
    };
    let b = Books::new(MemoryStore::default(), cfg);
    b.handle(Op::Init {
        id: "0123456789abcdef".into(),
        name: "t".into(),
        allow_training: false,
        credits: 1_000_000_000_000,
        keys: vec![
            key_record(&"a".repeat(64), KeyKind::Api, None),
            key_record(&"b".repeat(64), KeyKind::Api, None),
            key_record(&"p".repeat(64), KeyKind::Provisioning, None),
        ],
    })
    .unwrap();
    b
}

fn for_key(b: &Books<MemoryStore>, caller: &str) -> Vec<ByokRecord> {
    let op = Op::Byok {
        caller: caller.repeat(64),
        call: ByokCall::ForKey,
    };
    match b.handle(op).unwrap() {
        crate::accounts::ops::Reply::Byok(r) => r,
        _ => panic!("not the credentials"),
    }
}

fn call(b: &Books<MemoryStore>, caller: &str, call: ByokCall) -> Result<Value> {
    match b.handle(Op::Byok {
        caller: caller.repeat(64),
        call,
    })? {
        crate::accounts::ops::Reply::View(v) => Ok(v),
        _ => panic!("not a view"),
    }
}

fn record(id: &str, provider: &str, created: u64) -> ByokRecord {
    let body = format!(r#"{{"provider":"{provider}","key":"sk-abcdefghijklmnop{id}"}}"#);
    let mut r = record_of(body.as_bytes(), id, created);
    r.envelope = format!("v1:sealed-{id}");
    r
}

fn record_of(body: &[u8], id: &str, created: u64) -> ByokRecord {
    let (f, provider, key) = ByokFields::parse_create(body).unwrap();
    f.into_record(id.into(), provider, ("v1:x".into(), mask(&key)), created)
}

#[test]
fn the_object_keeps_credentials_for_provisioning_keys_and_never_lists_the_envelope() {
    let b = books();
    let list = || ByokCall::List {
        provider: None,
        offset: 0,
        limit: 50,
    };
    // An API key manages nothing.
    let e = call(&b, "a", ByokCall::Create(record("k1", "openai", 1))).unwrap_err();
    assert_eq!(e.status(), 403);
    assert_eq!(call(&b, "a", list()).unwrap_err().status(), 403);
    let made = call(&b, "p", ByokCall::Create(record("k1", "openai", 1))).unwrap();
    assert_eq!(made["data"]["label"], "sk-...opk1");
    assert_eq!(made["data"]["sort_order"], 0);
    call(&b, "p", ByokCall::Create(record("k2", "openai", 2))).unwrap();
    call(&b, "p", ByokCall::Create(record("k3", "anthropic", 3))).unwrap();
    let all = call(&b, "p", list()).unwrap();
    assert_eq!(all["total_count"], 3);
    assert!(!all.to_string().contains("sealed"), "{all}");
    assert_eq!(all["data"][0]["provider"], "anthropic");
    assert_eq!(
        (
            all["data"][2]["id"].as_str(),
            all["data"][2]["sort_order"].as_u64()
        ),
        (Some("k2"), Some(1))
    );
    let only = ByokCall::List {
        provider: Some("anthropic".into()),
        offset: 0,
        limit: 50,
    };
    assert_eq!(call(&b, "p", only).unwrap()["total_count"], 1);
    // An allowlist names keys of the account only.
    let mut foreign = record("k4", "openai", 4);
    foreign.allowed_api_key_hashes = Some(vec!["c".repeat(64)]);
    assert_eq!(
        call(&b, "p", ByokCall::Create(foreign))
            .unwrap_err()
            .status(),
        400
    );
    // The model call's view: envelopes, only the credentials the key may use.
    let body = format!(r#"{{"allowed_api_key_hashes":["{}"]}}"#, "b".repeat(64));
    let update = ByokCall::Update {
        id: "k2".into(),
        body,
        sealed: Some(("v1:sealed-k2b".into(), "sk-...k2bb".into())),
    };
    let changed = call(&b, "p", update).unwrap();
    assert_eq!(changed["data"]["label"], "sk-...k2bb");
    let for_a = for_key(&b, "a");
    let ids: Vec<&str> = for_a.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(ids, ["k3", "k1"]);
    assert_eq!(for_a[1].envelope, "v1:sealed-k1");
    let for_b = for_key(&b, "b");
    assert_eq!(for_b.len(), 3);
    assert_eq!(for_b[2].envelope, "v1:sealed-k2b");
    assert_eq!(
        call(&b, "p", ByokCall::Delete("k1".into())).unwrap()["deleted"],
        true
    );
    assert_eq!(
        call(&b, "p", ByokCall::Delete("k1".into()))
            .unwrap_err()
            .status(),
        404
    );
    assert_eq!(
        call(&b, "p", ByokCall::Get("k1".into()))
            .unwrap_err()
            .status(),
        404
    );
    assert_eq!(call(&b, "p", list()).unwrap()["total_count"], 2);
}

/// Admits and settles one generation of `caller` that cost `cost`, BYOK or not.
fn charge(b: &Books<MemoryStore>, caller: &str, gen: &str, cost: u64, is_byok: bool) {
    use crate::accounts::ledger::Ask;
    use crate::accounts::ops::{Admission, PlanFacts, Queued, SettleItem};
    use crate::accounts::records::Generation;
    let facts = PlanFacts {
        free: false,
        ask: Ask {
            reserve: 1_000_000,
            ..Default::default()
        },
    };
    b.handle(Op::Admit(Admission {
        caller: caller.into(),
        gen_id: gen.into(),
        free_windows: Vec::new(),
        rps: None,
        if_training: facts,
        if_private: facts,
        lease: false,
        session: None,
    }))
    .unwrap();
    let generation = Generation {
        id: gen.into(),
        cost_picos: cost,
        created_ms: b.store.now.get(),
        is_byok,
        ..Default::default()
    };
    let item = SettleItem {
        caller: caller.into(),
        gen_id: gen.into(),
        generation,
        lease: None,
        session: None,
    };
    b.handle(Op::Settle {
        items: vec![Queued { item, ask: 0 }],
    })
    .unwrap();
}

fn key_usage(b: &Books<MemoryStore>, hash: &str) -> Value {
    match b
        .handle(Op::KeyGet {
            caller: "p".repeat(64),
            hash: hash.into(),
        })
        .unwrap()
    {
        crate::accounts::ops::Reply::View(v) => v["usage"].clone(),
        _ => panic!("not a view"),
    }
}

#[test]
fn a_byok_fee_counts_in_a_keys_limit_only_with_include_byok_in_limit() {
    let b = books();
    let (a, k) = ("a".repeat(64), "b".repeat(64));
    b.store.now.set(1_800_000_000_000);
    for (hash, include) in [(&a, false), (&k, true)] {
        let patch = crate::accounts::ops::KeyPatch {
            limit: Some(Some(1_000_000_000)),
            include_byok_in_limit: Some(include),
            ..Default::default()
        };
        b.handle(Op::KeyUpdate {
            caller: None,
            hash: hash.clone(),
            patch,
        })
        .unwrap();
    }
    charge(&b, &a, "gen-1800000000-aaaaaaaaaaaaaaaaaaaa", 500_000, true);
    charge(&b, &k, "gen-1800000000-bbbbbbbbbbbbbbbbbbbb", 500_000, true);
    charge(
        &b,
        &a,
        "gen-1800000000-cccccccccccccccccccc",
        300_000,
        false,
    );
    // Key a: only its non-BYOK charge; key b: its BYOK fee.
    assert_eq!(key_usage(&b, &a), crate::accounts::ledger::usd(300_000));
    assert_eq!(key_usage(&b, &k), crate::accounts::ledger::usd(500_000));
    // The account pays all three.
    let funds = b.funds().unwrap();
    assert_eq!(funds.usage, 1_300_000);
    assert_eq!(funds.reserved, 0);
}
