//! The provider fixture cases (`tests/fixtures/<family>/<case>/`, README there), run
//! against each family's translator: the client's request (`client.json`) must build
//! exactly the upstream request of the case (`request.json`), and the provider's reply
//! (`reply.json`), stream (`stream.sse`, fed split at every byte) or error
//! (`error-<status>.json`) must give the gateway's output of the case
//! (`expected.json`). The JavaScript mock upstream serves the same files.
//!
//! `FIXTURES_BLESS=1 cargo test providers::fixtures` writes `request.json` and
//! `expected.json` from what the code does instead of comparing: for a new case, to
//! be read before it is committed.

#![allow(clippy::indexing_slicing, clippy::string_slice)] // tests: a panic fails the test

use std::path::{Path, PathBuf};

use serde_json::{json, Map, Value};

use super::stream::Translator;
use super::testutil::{meta, translate_everywhere, with_target};
use super::{CountAsk, Target, UpstreamRequest};
use crate::api::count::CountSurface;
use crate::api::embeddings::EmbeddingsRequest;
use crate::api::ChatRequest;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// The cases of `family`: its folders that hold a `client.json`.
fn cases(family: &str) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(root().join(family))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("client.json").is_file())
        .collect();
    out.sort();
    out
}

fn read_json(path: &Path) -> Value {
    let text = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_slice(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn blessing() -> bool {
    std::env::var_os("FIXTURES_BLESS").is_some()
}

/// Compares `got` with the case's `file`, or writes it there when blessing.
fn check(case: &Path, file: &str, got: &Value) {
    let path = case.join(file);
    if blessing() {
        let text = serde_json::to_string_pretty(got).unwrap();
        std::fs::write(&path, format!("{text}\n")).unwrap();
        return;
    }
    let want = read_json(&path);
    assert!(
        *got == want,
        "{}: got\n{}\nwant\n{}",
        path.display(),
        serde_json::to_string_pretty(got).unwrap(),
        serde_json::to_string_pretty(&want).unwrap()
    );
}

/// An upstream request as `request.json` holds it: method, URL, headers, JSON body.
fn request_json(up: &UpstreamRequest) -> Value {
    let headers: Map<String, Value> = up
        .headers
        .iter()
        .map(|(k, v)| (k.clone(), json!(v)))
        .collect();
    let body: Value = serde_json::from_slice(&up.body).unwrap();
    json!({"method": up.method, "url": up.url, "headers": headers, "body": body})
}

/// The provider's error body of the case and its status, if it has one.
fn error_body(case: &Path) -> Option<(u16, Vec<u8>)> {
    std::fs::read_dir(case).unwrap().find_map(|e| {
        let name = e.unwrap().file_name().into_string().unwrap();
        let status = name.strip_prefix("error-")?.strip_suffix(".json")?;
        Some((
            status.parse().unwrap(),
            std::fs::read(case.join(&name)).unwrap(),
        ))
    })
}

/// What the gateway answers for a provider's error: the status and the client's body.
fn error_json(slug: &str, status: u16, body: &[u8]) -> Value {
    let e = super::upstream_error(slug, status, body, None);
    json!({"status": e.status(), "body": e.body()})
}

fn run_chat(case: &Path, client: &[u8], t: &Target) {
    let req = ChatRequest::parse(client).unwrap();
    let up = super::build_request(t, &req).unwrap();
    check(case, "request.json", &request_json(&up));
    let model = t.model.id.as_str();
    let slug = t.provider.slug.as_str();
    let expected = if let Some((status, body)) = error_body(case) {
        error_json(slug, status, &body)
    } else if req.is_stream() {
        let bytes = std::fs::read(case.join("stream.sse")).unwrap();
        let make = || Translator::for_target(t, &meta(model)).unwrap();
        Value::Array(translate_everywhere(&make, model, &bytes))
    } else {
        let body = std::fs::read(case.join("reply.json")).unwrap();
        let c = super::parse_response(t.provider.api, slug, &meta(model), &body).unwrap();
        serde_json::to_value(&c).unwrap()
    };
    check(case, "expected.json", &expected);
}

fn run_embeddings(case: &Path, client: Value, t: &Target) {
    let req = EmbeddingsRequest::parse(client.to_string().as_bytes()).unwrap();
    let up = super::embeddings::build_request(t, &req).unwrap();
    check(case, "request.json", &request_json(&up));
    let body = std::fs::read(case.join("reply.json")).unwrap();
    let model = t.model.id.as_str();
    let (reply, usage) = super::embeddings::parse_response(t, &req, &meta(model), &body).unwrap();
    check(
        case,
        "expected.json",
        &json!({"reply": reply, "usage": serde_json::to_value(&usage).unwrap()}),
    );
}

/// Runs every case of `family`; returns their names.
fn run(family: &str) -> Vec<String> {
    let mut names = Vec::new();
    for case in cases(family) {
        let client = std::fs::read(case.join("client.json")).unwrap();
        let v: Value = serde_json::from_slice(&client).unwrap();
        let model = v["model"].as_str().unwrap().to_string();
        with_target(&model, |t| {
            if v.get("input").is_some() {
                run_embeddings(&case, v.clone(), t);
            } else {
                run_chat(&case, &client, t);
            }
        });
        names.push(case.file_name().unwrap().to_string_lossy().into_owned());
    }
    names
}

#[test]
fn openai_compatible_cases() {
    let names = run("openai");
    assert_eq!(
        names,
        [
            "embeddings",
            "error",
            "error_stream",
            "reasoning_stream",
            "text",
            "text_stream",
            "tool_call",
            "tool_call_stream"
        ]
    );
}

#[test]
fn anthropic_cases() {
    let names = run("anthropic");
    assert_eq!(
        names,
        [
            "cumulative_usage_stream",
            "error",
            "overloaded_stream",
            "text",
            "thinking_stream",
            "tool_use",
            "tool_use_stream"
        ]
    );
}

#[test]
fn gemini_cases() {
    let names = run("gemini");
    assert_eq!(
        names,
        [
            "embed",
            "error",
            "function_call",
            "function_call_stream",
            "image",
            "image_stream",
            "safety",
            "safety_stream",
            "text",
            "text_stream",
            "thought_signature_stream"
        ]
    );
}

/// Each case's provider family is the folder it is in: a case filed under the wrong
/// family would test the wrong translator.
#[test]
fn every_case_is_its_folders_family() {
    let cat = super::testutil::catalog();
    for (dir, api) in [
        ("openai", crate::catalog::ApiFamily::Openai),
        ("anthropic", crate::catalog::ApiFamily::Anthropic),
        ("gemini", crate::catalog::ApiFamily::Gemini),
    ] {
        for case in cases(dir) {
            let v = read_json(&case.join("client.json"));
            let m = cat.model(v["model"].as_str().unwrap()).unwrap();
            let p = cat.provider(&m.endpoints[0].provider).unwrap();
            assert_eq!(p.api, api, "{}", case.display());
        }
    }
}

/// The token-count cases of `family` (README there): folders with the client's count
/// request, `messages.json` (`POST /messages/count_tokens`) or `responses.json`
/// (`POST /responses/input_tokens`), the count request the family builds for it
/// (`request.json`), the provider's reply (`reply.json`) and what the gateway reads
/// in it (`expected.json`).
fn count_cases(family: &str) -> Vec<(PathBuf, CountSurface, Vec<u8>)> {
    let mut out = Vec::new();
    for case in std::fs::read_dir(root().join(family)).unwrap() {
        let case = case.unwrap().path();
        for (file, surface) in [
            ("messages.json", CountSurface::Messages),
            ("responses.json", CountSurface::Responses),
        ] {
            if let Ok(client) = std::fs::read(case.join(file)) {
                out.push((case.clone(), surface, client));
            }
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

/// Runs every token-count case of `family`; returns their names.
fn run_count(family: &str) -> Vec<String> {
    let mut names = Vec::new();
    for (case, surface, client) in count_cases(family) {
        let counting = surface.parse(&client).unwrap();
        let model = counting.chat.model.clone().unwrap();
        with_target(&model, |t| {
            let fam = super::family(t.provider.api);
            assert!(fam.counts_tokens(), "{}", case.display());
            let native = counting
                .native
                .as_ref()
                .filter(|_| fam.native_passthrough())
                .map(|b| {
                    let ceiling = t.endpoint.output_ceiling(t.model);
                    crate::api::messages::native_body(b, &t.endpoint.upstream_model, ceiling)
                });
            let ask = CountAsk {
                chat: &counting.chat,
                native: native.as_ref(),
                client_headers: &[],
            };
            let up = fam.build_count(t, &ask).unwrap();
            check(&case, "request.json", &request_json(&up));
            let reply = std::fs::read(case.join("reply.json")).unwrap();
            let n = fam.parse_count(&t.provider.slug, &reply).unwrap();
            check(&case, "expected.json", &json!({"input_tokens": n}));
        });
        names.push(case.file_name().unwrap().to_string_lossy().into_owned());
    }
    names
}

#[test]
fn token_count_cases() {
    assert_eq!(run_count("anthropic"), ["count_tokens", "input_tokens"]);
    assert_eq!(run_count("gemini"), ["count_tokens"]);
    assert!(run_count("openai").is_empty());
    // OpenAI-compatible hosts have no count endpoint: the gateway estimates.
    let openai = super::family(crate::catalog::ApiFamily::Openai);
    assert!(!openai.counts_tokens());
    with_target("openai/gpt-4o-mini", |t| {
        let chat = ChatRequest::default();
        let ask = CountAsk {
            chat: &chat,
            native: None,
            client_headers: &[],
        };
        assert_eq!(openai.build_count(t, &ask).unwrap_err().status(), 503);
    });
}

#[test]
fn a_count_reply_that_is_not_one_is_an_invalid_reply() {
    for api in [
        crate::catalog::ApiFamily::Anthropic,
        crate::catalog::ApiFamily::Gemini,
    ] {
        let e = super::family(api)
            .parse_count("p", b"<html>no</html>")
            .unwrap_err();
        assert_eq!(e.status(), 502, "{api:?}");
    }
    let anthropic = super::family(crate::catalog::ApiFamily::Anthropic);
    assert!(anthropic.parse_count("p", br#"{"tokens": 3}"#).is_err());
    let gemini = super::family(crate::catalog::ApiFamily::Gemini);
    assert_eq!(gemini.parse_count("p", b"{}").unwrap(), 0);
}
