//! The crate's import rule, checked on its own sources: `edge` → `accounts`, `routing`,
//! `providers` → `api` (the wire types and the internal chat request they convert to)
//! → `catalog` → the core (`error`, `ids`, `money`, `limits`, `json`,
//! `settings`, `usage`). A module uses its own code and
//! what is below it; `accounts`, `routing` and `providers` do not use each other. Test
//! code is left out (it may reach anywhere).
//!
//! `DEBT` lists the imports that break the rule today (issue 21); a new one fails this
//! test, and so does an entry that no longer occurs, so the list only shrinks.
//!
//! The same sources are held to their size: no file over [`MAX_FILE_LINES`] lines, no
//! function outside test code over [`MAX_FN_LINES`]; `TOO_LONG` lists what is still
//! being split, and shrinks the same way.

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

/// The longest a file in `src/` may be, in lines.
const MAX_FILE_LINES: usize = 800;

/// The longest a function outside test code may be, in lines, its signature and
/// closing brace included.
const MAX_FN_LINES: usize = 80;

/// What is still too long while it is being split (issue 21): `path` for a file's
/// length, `path: function` for a function's, paths under `src/`.
const TOO_LONG: &[&str] = &[];

/// `src` with its comments, string and character literals blanked out (newlines kept),
/// so that what is left of braces, semicolons and `fn` is code.
fn code_only(src: &str) -> String {
    let c: Vec<char> = src.chars().collect();
    let mut out = String::with_capacity(src.len());
    let blank = |out: &mut String, ch: char| out.push(if ch == '\n' { '\n' } else { ' ' });
    let ident = |i: usize| i > 0 && (c[i - 1].is_alphanumeric() || c[i - 1] == '_');
    let mut i = 0;
    while i < c.len() {
        let at = |k: usize| c.get(i + k).copied().unwrap_or('\0');
        // The end (exclusive) of a literal or comment starting at `i`, if one does.
        let end = if at(0) == '/' && at(1) == '/' {
            Some(
                c[i..]
                    .iter()
                    .position(|&x| x == '\n')
                    .map_or(c.len(), |n| i + n),
            )
        } else if at(0) == '/' && at(1) == '*' {
            let (mut j, mut depth) = (i + 2, 1);
            while j < c.len() && depth > 0 {
                if c[j] == '/' && c.get(j + 1) == Some(&'*') {
                    depth += 1;
                    j += 1;
                } else if c[j] == '*' && c.get(j + 1) == Some(&'/') {
                    depth -= 1;
                    j += 1;
                }
                j += 1;
            }
            Some(j)
        } else if at(0) == 'r' && (at(1) == '#' || at(1) == '"') && (!ident(i) || c[i - 1] == 'b') {
            let hashes = c[i + 1..].iter().take_while(|&&x| x == '#').count();
            if c.get(i + 1 + hashes) == Some(&'"') {
                let close = format!("\"{}", "#".repeat(hashes));
                let from = i + 2 + hashes;
                let rest: String = c[from..].iter().collect();
                Some(
                    rest.find(&close)
                        .map_or(c.len(), |n| from + rest[..n].chars().count() + 1 + hashes),
                )
            } else {
                None
            }
        } else if at(0) == '"' {
            let mut j = i + 1;
            while j < c.len() && c[j] != '"' {
                j += if c[j] == '\\' { 2 } else { 1 };
            }
            Some(j + 1)
        } else if at(0) == '\'' && at(1) == '\\' {
            let close = c
                .get(i + 3..)
                .unwrap_or_default()
                .iter()
                .position(|&x| x == '\'')
                .map_or(c.len(), |n| i + 3 + n);
            Some(close + 1)
        } else if at(0) == '\'' && at(2) == '\'' {
            Some(i + 3)
        } else {
            None
        };
        match end {
            Some(end) => {
                let end = end.min(c.len());
                c[i..end].iter().for_each(|&ch| blank(&mut out, ch));
                i = end;
            }
            None => {
                out.push(c[i]);
                i += 1;
            }
        }
    }
    out
}

/// The line (0-based) where the item starting on line `from` ends: its closing brace
/// at the depth it opened, or its `;` where it has no body.
fn item_end(lines: &[&str], from: usize) -> usize {
    let (mut depth, mut parens, mut opened) = (0usize, 0usize, false);
    for (n, line) in lines.iter().enumerate().skip(from) {
        for ch in line.chars() {
            match ch {
                '(' | '[' => parens += 1,
                ')' | ']' => parens = parens.saturating_sub(1),
                ';' if !opened && parens == 0 => return n,
                '{' => {
                    depth += 1;
                    opened = true;
                }
                '}' => {
                    depth = depth.saturating_sub(1);
                    if opened && depth == 0 {
                        return n;
                    }
                }
                _ => {}
            }
        }
    }
    lines.len().saturating_sub(1)
}

/// The name of the function a (code-only) line declares, if it declares one.
fn fn_name(line: &str) -> Option<&str> {
    let mut words = line.split_whitespace();
    let mut word = words.next()?;
    loop {
        if word == "fn" {
            return words.next()?.split(['(', '<']).next();
        }
        let qualifier = matches!(word, "const" | "async" | "unsafe" | "extern" | "default")
            || word.starts_with("pub");
        if !qualifier {
            return None;
        }
        word = words.next()?;
    }
}

/// Each function of `src` outside test code (items under `#[cfg(test)]`), as its name,
/// first line (1-based) and length in lines.
fn functions(src: &str) -> Vec<(String, usize, usize)> {
    let code = code_only(src);
    let lines: Vec<&str> = code.lines().collect();
    let mut out = Vec::new();
    let mut n = 0;
    while n < lines.len() {
        let line = lines[n].trim();
        if line.starts_with("#[cfg(test)]") {
            // The item the attribute is on, after any other attributes.
            let item = (n + 1..lines.len())
                .find(|&k| !lines[k].trim().starts_with("#[") && !lines[k].trim().is_empty())
                .unwrap_or(lines.len());
            n = item_end(&lines, item) + 1;
            continue;
        }
        if let Some(name) = fn_name(line) {
            let end = item_end(&lines, n);
            if lines[n..=end].iter().any(|l| l.contains('{')) {
                out.push((name.to_string(), n + 1, end - n + 1));
            }
        }
        n += 1;
    }
    out
}

#[test]
fn files_and_functions_stay_small() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut all = Vec::new();
    files(&root, &mut all);
    all.sort();
    let mut long = Vec::new();
    let mut seen = BTreeSet::new();
    for path in all {
        let rel = path
            .strip_prefix(&root)
            .unwrap()
            .to_str()
            .unwrap()
            .replace('\\', "/");
        let src = fs::read_to_string(&path).unwrap();
        let mut found = Vec::new();
        let len = src.lines().count();
        if len > MAX_FILE_LINES {
            found.push((
                rel.clone(),
                format!("{rel} is {len} lines (at most {MAX_FILE_LINES})"),
            ));
        }
        if !rel.ends_with("tests.rs") && !rel.ends_with("testutil.rs") {
            for (name, line, len) in functions(&src) {
                if len > MAX_FN_LINES {
                    let what = format!(
                        "{rel}: {name} is {len} lines, from line {line} (at most {MAX_FN_LINES})"
                    );
                    found.push((format!("{rel}: {name}"), what));
                }
            }
        }
        for (key, what) in found {
            if TOO_LONG.contains(&key.as_str()) {
                seen.insert(key);
            } else {
                long.push(what);
            }
        }
    }
    assert!(long.is_empty(), "too long:\n{}", long.join("\n"));
    let gone: Vec<_> = TOO_LONG.iter().filter(|k| !seen.contains(**k)).collect();
    assert!(
        gone.is_empty(),
        "these are short now: take them off TOO_LONG: {gone:?}"
    );
}

#[test]
fn the_scanner_measures_code_not_text() {
    let src = r##"
/// fn in_a_comment() {
pub(crate) async fn first(x: [u8; 2]) -> &'static str {
    let s = "}"; let c = '}'; let e = '\''; let r = r#"" } "#;
    /* } /* nested } */ */
    s
}
trait T {
    fn declared(&self) -> [u8; 4];
    fn provided<'a>(&'a self) -> u8 {
        b'{'
    }
}
#[cfg(test)]
#[allow(dead_code)]
mod tests {
    fn long_test() {
    }
}
fn last() {}
"##;
    let got = functions(src);
    let want = [("first", 3, 5), ("provided", 10, 3), ("last", 20, 1)];
    let want: Vec<_> = want
        .iter()
        .map(|&(n, l, k)| (n.to_string(), l, k))
        .collect();
    assert_eq!(got, want);
    assert_eq!(fn_name("pub(super) const fn f<T>() {"), Some("f"));
    assert_eq!(fn_name("let f = fn_ptr;"), None);
}
