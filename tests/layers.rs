//! The crate's import rule, checked on its own sources: `edge` → `accounts`, `routing`,
//! `providers` → `api` (the wire types and the internal chat request they convert to)
//! → `catalog` → the core (`error`, `ids`, `money`, `limits`, `json`,
//! `settings`, `usage`). A module uses its own code and
//! what is below it; `accounts`, `routing` and `providers` do not use each other. Test
//! code is left out (it may reach anywhere).
//!
//! `DEBT` lists the imports that break the rule today (issue 21); a new one fails this
//! test, and so does an entry that no longer occurs, so the list only shrinks.

#![allow(
    clippy::string_slice,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    clippy::unwrap_used,
    clippy::panic
)] // test code: a panic fails the test

use std::collections::BTreeSet;
use std::fs;
use std::path::Path;

/// (from, to): the imports against the rule that the code still has.
const DEBT: &[(&str, &str)] = &[];

fn layer(module: &str) -> Option<u8> {
    match module {
        "error" | "ids" | "money" | "limits" | "json" | "settings" | "usage" => Some(0),
        "catalog" => Some(1),
        "api" => Some(2),
        "providers" | "routing" | "accounts" => Some(3),
        "edge" => Some(4),
        _ => None,
    }
}

fn allowed(from: &str, to: &str) -> bool {
    if from == to {
        return true;
    }
    match (layer(from), layer(to)) {
        // accounts, routing and providers are peers: none uses another.
        (Some(3), Some(3)) => false,
        (Some(a), Some(b)) => b < a || (a == 0 && b == 0),
        _ => false,
    }
}

/// The source without its test code: everything from the first `#[cfg(test)]` on (the
/// crate keeps its tests at the end of each file).
fn non_test(src: &str) -> &str {
    src.find("#[cfg(test)]").map_or(src, |i| &src[..i])
}

/// The top-level modules `src` names through `crate::`.
fn uses(src: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut rest = src;
    while let Some(i) = rest.find("crate::") {
        rest = &rest[i + "crate::".len()..];
        let names: Vec<&str> = if let Some(group) = rest.strip_prefix('{') {
            // `crate::{a::X, b}`: the first segment of each item.
            let end = group.find('}').unwrap_or(group.len());
            group[..end]
                .split(',')
                .map(|item| item.trim().split("::").next().unwrap_or(""))
                .collect()
        } else {
            vec![rest
                .split(|c: char| !c.is_alphanumeric() && c != '_')
                .next()
                .unwrap_or("")]
        };
        out.extend(
            names
                .into_iter()
                .filter(|n| !n.is_empty())
                .map(String::from),
        );
    }
    out
}

fn files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in fs::read_dir(dir).unwrap() {
        let p = entry.unwrap().path();
        if p.is_dir() {
            files(&p, out);
        } else if p.extension().is_some_and(|e| e == "rs") {
            out.push(p);
        }
    }
}

#[test]
fn imports_follow_the_layers() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut all = Vec::new();
    files(&root, &mut all);
    let mut broken = BTreeSet::new();
    let mut seen_debt = BTreeSet::new();
    for path in all {
        let rel = path.strip_prefix(&root).unwrap();
        let from = rel
            .iter()
            .next()
            .and_then(|c| c.to_str())
            .map(|c| c.trim_end_matches(".rs"))
            .unwrap();
        // lib.rs declares the modules; test helpers and test modules kept in their own
        // files (`tests.rs`, `model_tests.rs`) are test code.
        let name = rel.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if from == "lib" || name == "testutil.rs" || name.ends_with("tests.rs") {
            continue;
        }
        let src = fs::read_to_string(&path).unwrap();
        for to in uses(non_test(&src)) {
            if allowed(from, &to) || layer(&to).is_none() {
                continue;
            }
            if DEBT.contains(&(from, to.as_str())) {
                seen_debt.insert((from.to_string(), to.clone()));
            } else {
                broken.insert(format!("{} uses crate::{to}", rel.display()));
            }
        }
    }
    assert!(
        broken.is_empty(),
        "imports against the layers (edge → accounts/routing/providers/api → catalog → core):\n{}",
        broken.into_iter().collect::<Vec<_>>().join("\n")
    );
    let gone: Vec<_> = DEBT
        .iter()
        .filter(|(f, t)| !seen_debt.contains(&(f.to_string(), t.to_string())))
        .collect();
    assert!(
        gone.is_empty(),
        "these imports are gone: take them off DEBT: {gone:?}"
    );
}

#[test]
fn the_reader_sees_grouped_and_inline_paths() {
    let src = "use crate::{api::X, money};\nfn f() { crate::routing::plan(); }\n#[cfg(test)]\nuse crate::edge;";
    let got: Vec<String> = uses(non_test(src)).into_iter().collect();
    assert_eq!(got, ["api", "money", "routing"]);
    assert!(allowed("edge", "api") && allowed("api", "catalog") && allowed("catalog", "money"));
    assert!(allowed("providers", "api") && allowed("money", "limits"));
    assert!(!allowed("api", "routing") && !allowed("catalog", "api") && !allowed("error", "api"));
    assert!(!allowed("routing", "providers") && !allowed("accounts", "edge"));
}
