use serde_json::{json, Value};

use super::*;
use crate::api::server_tools::{ContextSize, UserLocation};

fn fixture(name: &str) -> Vec<u8> {
    let path = format!(
        "{}/tests/fixtures/search/{name}.json",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read(path).unwrap()
}

fn params() -> WebSearchParams {
    WebSearchParams {
        allowed_domains: vec!["rust-lang.org".into()],
        user_location: Some(UserLocation {
            country: Some("FR".into()),
            ..Default::default()
        }),
        search_context_size: ContextSize::Low,
        ..WebSearchParams::default()
    }
}

fn body(r: &UpstreamRequest) -> Value {
    serde_json::from_slice(&r.body).unwrap()
}

#[test]
fn each_engine_is_asked_in_its_own_shape() {
    let p = params();
    let q = Query {
        text: "rust wasm",
        count: 3,
        params: &p,
    };
    let exa = build(SearchEngine::Exa, "https://api.exa.ai/", "k1", &q).unwrap();
    assert_eq!(
        (exa.method, exa.url.as_str(), exa.header("x-api-key")),
        ("POST", "https://api.exa.ai/search", Some("k1"))
    );
    assert_eq!(
        body(&exa),
        json!({"query": "rust wasm", "numResults": 3, "type": "auto", "includeDomains": ["rust-lang.org"],
        "userLocation": "FR", "contents": {"text": {"maxCharacters": 500}}})
    );
    let brave = build(SearchEngine::Brave, "http://127.0.0.1:9", "k2", &q).unwrap();
    assert_eq!(brave.method, "GET");
    assert_eq!(brave.url, "http://127.0.0.1:9/res/v1/web/search?q=rust%20wasm%20%28site%3Arust-lang.org%29&count=3&extra_snippets=true&country=fr");
    assert_eq!(brave.header("X-Subscription-Token"), Some("k2"));
    assert!(brave.body.is_empty());
    let tavily = build(SearchEngine::Tavily, "https://api.tavily.com", "k3", &q).unwrap();
    assert_eq!(tavily.header("Authorization"), Some("Bearer k3"));
    assert_eq!(
        body(&tavily),
        json!({"query": "rust wasm", "max_results": 3, "search_depth": "basic", "include_domains": ["rust-lang.org"]})
    );
}

#[test]
fn each_engines_reply_reads_into_the_same_hits() {
    let want = |text: &str| Hit {
        url: "https://www.rust-lang.org/what/wasm".into(),
        title: "WebAssembly - Rust Programming Language".into(),
        text: text.into(),
    };
    let (exa, cost) = parse(SearchEngine::Exa, &fixture("exa")).unwrap();
    assert_eq!(cost, 5_000_000_000); // $0.005
    assert_eq!(exa.len(), 2);
    assert_eq!(
        exa[0],
        want("Rust and WebAssembly: surgical JS speedups, and code that runs on the edge.")
    );
    let (brave, cost) = parse(SearchEngine::Brave, &fixture("brave")).unwrap();
    assert_eq!(cost, 0);
    assert_eq!(
        brave[0],
        want("Rust and WebAssembly: surgical JS speedups. Code that runs on the edge.")
    );
    assert_eq!(brave[1].text, "Support for Rust through workers-rs.");
    let (tavily, _) = parse(SearchEngine::Tavily, &fixture("tavily")).unwrap();
    assert_eq!(
        tavily[0],
        want("Rust and WebAssembly: surgical JS speedups, and code that runs on the edge.")
    );
    let e = parse(SearchEngine::Tavily, b"<html>").unwrap_err();
    assert!(
        e.public_message().starts_with("unreadable search reply"),
        "{e}"
    );
}

#[test]
fn the_model_reads_only_allowed_results_clipped_with_citations() {
    let p = WebSearchParams {
        search_context_size: ContextSize::Low,
        ..params()
    };
    let q = Query {
        text: "rust wasm",
        count: 5,
        params: &p,
    };
    let (hits, cost) = parse(SearchEngine::Exa, &fixture("exa")).unwrap();
    let out = output("rust wasm", hits, &q, cost);
    assert_eq!(out.citations.len(), 1, "cloudflare.com is not allowed");
    assert_eq!(out.citations[0].url, "https://www.rust-lang.org/what/wasm");
    assert_eq!(
        out.content,
        "Web search results for \"rust wasm\":\n\n[1] WebAssembly - Rust Programming Language\nURL: https://www.rust-lang.org/what/wasm\nRust and WebAssembly: surgical JS speedups, and code that runs on the edge.\n"
    );
    assert_eq!(out.usage.web_search_requests, 1);
    assert_eq!(out.cost, 5_000_000_000);
    let none = output("x", vec![], &q, 0);
    assert!(none.content.ends_with("No results.\n"));
    assert_eq!(clip("héllo wörld", 4), "héll…");
}

#[test]
fn domain_rules_hold_subdomains_and_refuse_lookalikes() {
    let p = WebSearchParams {
        excluded_domains: vec!["bad.com".into()],
        ..WebSearchParams::default()
    };
    assert!(allowed("https://good.com/x", &p));
    assert!(!allowed("https://bad.com", &p));
    assert!(!allowed("https://www.bad.com/a?b", &p));
    assert!(allowed("https://notbad.com/", &p));
    assert!(!allowed("ftp://x.com", &p));
    assert!(!allowed("https://user@bad.com:443/", &p));
}

#[test]
fn the_engine_follows_the_request_then_the_deployment() {
    assert_eq!(
        SearchEngine::of(Engine::Brave, Some("tavily")),
        SearchEngine::Brave
    );
    assert_eq!(
        SearchEngine::of(Engine::Auto, Some("tavily")),
        SearchEngine::Tavily
    );
    assert_eq!(SearchEngine::of(Engine::Auto, None), SearchEngine::Exa);
    assert_eq!(
        SearchEngine::of(Engine::Native, Some("bing")),
        SearchEngine::Exa
    );
    assert_eq!(SearchEngine::Tavily.key_secret(), "TAVILY_API_KEY");
    assert_eq!(SearchEngine::Brave.base_url_var(), "BRAVE_BASE_URL");
}
