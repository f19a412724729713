//! The layering rule of ../shared/DESIGN.md, checked on the source: no two modules of a
//! crate import each other, directly or around a longer circle.
//!
//! A module's imports are the `crate::` and `super::` paths in its code (comments and
//! `#[cfg(test)]` code left out), each resolved to the deepest module it names. A module
//! may still use its own ancestors and descendants (a `mod.rs` re-exporting what its
//! children define, a child using its parent's types): that is one unit, not a circle.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

/// Modules by path ("resp::parse"), with their code.
fn modules(src: &Path) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut stack = vec![src.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            if path.extension().and_then(|e| e.to_str()) != Some("rs") {
                continue;
            }
            let name = path.file_stem().unwrap().to_string_lossy().into_owned();
            if name.contains("test") {
                continue; // test-only modules (tests.rs, keyspace_tests.rs, testing.rs)
            }
            let rel: PathBuf = path.strip_prefix(src).unwrap().with_extension("");
            let mut parts: Vec<String> = rel
                .iter()
                .map(|p| p.to_string_lossy().into_owned())
                .collect();
            if matches!(name.as_str(), "mod" | "lib" | "main") {
                parts.pop();
            }
            out.insert(
                parts.join("::"),
                code_of(&fs::read_to_string(&path).unwrap()),
            );
        }
    }
    out
}

/// The code of a file without comments and without its `#[cfg(test)]` items.
fn code_of(text: &str) -> String {
    let mut code = String::new();
    let mut skip_depth: Option<i32> = None;
    let mut depth = 0i32;
    let mut pending_cfg_test = false;
    for line in text.lines() {
        let line = match line.find("//") {
            Some(i) => &line[..i],
            None => line,
        };
        let trimmed = line.trim();
        if trimmed == "#[cfg(test)]" {
            pending_cfg_test = true;
            continue;
        }
        if pending_cfg_test && !trimmed.is_empty() && !trimmed.starts_with("#[") {
            pending_cfg_test = false;
            if skip_depth.is_none() {
                skip_depth = Some(depth);
            }
        }
        let opens = line.matches('{').count() as i32;
        let closes = line.matches('}').count() as i32;
        depth += opens - closes;
        match skip_depth {
            Some(d) => {
                // The skipped item ends when its braces close (or at its `;`).
                if depth <= d && (closes > 0 || trimmed.ends_with(';')) {
                    skip_depth = None;
                }
            }
            None => {
                code.push_str(line);
                code.push('\n');
            }
        }
    }
    code
}

/// The paths after every `prefix::` in `code`, with `use prefix::{a, b::c}` groups
/// expanded to their first segments and `use prefix::a::{b, c}` groups to `a::b` and
/// `a::c`.
fn paths_after(code: &str, prefix: &str) -> Vec<Vec<String>> {
    let needle = format!("{prefix}::");
    let mut out = Vec::new();
    let mut rest = code;
    while let Some(i) = rest.find(&needle) {
        let before = rest[..i].chars().last();
        rest = &rest[i + needle.len()..];
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':') {
            continue; // `foo_crate::` or `a::crate::`
        }
        if rest.starts_with('{') {
            let end = rest.find('}').unwrap_or(rest.len());
            for item in rest[1..end].split(',') {
                let seg: Vec<String> = item
                    .trim()
                    .trim_start_matches('{')
                    .split("::")
                    .map(|s| ident(s.trim()))
                    .take_while(|s| !s.is_empty())
                    .collect();
                if !seg.is_empty() {
                    out.push(seg);
                }
            }
            continue;
        }
        let mut seg = Vec::new();
        let mut tail = rest;
        loop {
            let id = ident(tail);
            if id.is_empty() {
                break;
            }
            tail = &tail[id.len()..];
            seg.push(id);
            match tail.strip_prefix("::") {
                Some(t) => tail = t,
                None => break,
            }
        }
        if seg.is_empty() {
            continue;
        }
        if let Some(group) = tail.strip_prefix('{') {
            // `crate::a::{b, c::D}`: each item under the common prefix.
            let end = group.find('}').unwrap_or(group.len());
            for item in group[..end].split(',') {
                let mut full = seg.clone();
                full.extend(
                    item.trim()
                        .split("::")
                        .map(|s| ident(s.trim()))
                        .take_while(|s| !s.is_empty() && s != "self"),
                );
                out.push(full);
            }
        } else {
            out.push(seg);
        }
    }
    out
}

fn ident(s: &str) -> String {
    s.chars()
        .take_while(|c| c.is_alphanumeric() || *c == '_')
        .collect()
}

/// The deepest module of `mods` that `path` (segments from the crate root) names.
fn resolve(mods: &BTreeMap<String, String>, path: &[String]) -> Option<String> {
    (1..=path.len())
        .rev()
        .map(|n| path[..n].join("::"))
        .find(|m| mods.contains_key(m))
}

fn related(a: &str, b: &str) -> bool {
    let under = |x: &str, y: &str| y.is_empty() || x == y || x.starts_with(&format!("{y}::"));
    under(a, b) || under(b, a)
}

/// Each module's imports of other modules, ancestors and descendants left out.
fn imports(mods: &BTreeMap<String, String>) -> BTreeMap<String, BTreeSet<String>> {
    let mut graph = BTreeMap::new();
    for (m, code) in mods {
        let mut to = BTreeSet::new();
        for p in paths_after(code, "crate") {
            to.extend(resolve(mods, &p));
        }
        let parent: Vec<String> = m
            .split("::")
            .filter(|s| !s.is_empty())
            .map(String::from)
            .collect();
        for p in paths_after(code, "super") {
            let mut full: Vec<String> = parent[..parent.len().saturating_sub(1)].to_vec();
            full.extend(p);
            to.extend(resolve(mods, &full));
        }
        to.retain(|t| !related(m, t));
        graph.insert(m.clone(), to);
    }
    graph
}

/// A circle of imports, if there is one.
fn find_circle(graph: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        m: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        state: &mut BTreeMap<String, u8>,
        path: &mut Vec<String>,
    ) -> Option<Vec<String>> {
        state.insert(m.to_string(), 1);
        path.push(m.to_string());
        for next in graph.get(m).into_iter().flatten() {
            match state.get(next.as_str()) {
                Some(1) => {
                    let start = path.iter().position(|p| p == next).unwrap();
                    let mut circle = path[start..].to_vec();
                    circle.push(next.clone());
                    return Some(circle);
                }
                Some(_) => {}
                None => {
                    if let Some(c) = visit(next, graph, state, path) {
                        return Some(c);
                    }
                }
            }
        }
        path.pop();
        state.insert(m.to_string(), 2);
        None
    }
    let mut state = BTreeMap::new();
    for m in graph.keys() {
        if !state.contains_key(m.as_str()) {
            if let Some(c) = visit(m, graph, &mut state, &mut Vec::new()) {
                return Some(c);
            }
        }
    }
    None
}

fn check(src: &str) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join(src);
    let mods = modules(&root);
    assert!(mods.len() > 3, "found the modules of {src}");
    let graph = imports(&mods);
    if let Some(circle) = find_circle(&graph) {
        panic!("{src}: modules import each other: {}", circle.join(" -> "));
    }
}

#[test]
fn engine_modules_import_one_way() {
    check("engine/src");
}

#[test]
fn net_modules_import_one_way() {
    check("net/src");
}

#[test]
fn replication_modules_import_one_way() {
    check("replication/src");
}

#[test]
fn ring_modules_import_one_way() {
    check("ring/src");
}

#[test]
fn the_checker_sees_a_circle() {
    let files = [
        ("", ""),
        ("a", "use crate::b::Thing;\n"),
        ("b", "fn f() { super::c::g() }\n"),
        (
            "c",
            "// crate::a in a comment\nuse crate::{a::X, d};\n#[cfg(test)]\nmod tests {\n    use crate::b;\n}\n",
        ),
        ("d", "pub use crate::d::d_child::Y;\n"),
        ("d::d_child", "use super::Z;\n"),
    ];
    let mods: BTreeMap<String, String> = files
        .iter()
        .map(|(m, text)| (m.to_string(), code_of(text)))
        .collect();
    let graph = imports(&mods);
    assert_eq!(
        graph["c"],
        ["a", "d"].iter().map(|s| s.to_string()).collect(),
        "comments and test code do not count"
    );
    assert!(graph["d"].is_empty(), "a parent and its child are one unit");
    assert_eq!(
        find_circle(&graph),
        Some(vec!["a".into(), "b".into(), "c".into(), "a".into()])
    );
}

#[test]
fn the_checker_sees_through_nested_groups() {
    // `use crate::g::{h, Y}` imports g::h (and g), so f and g::h import each other.
    let files = [
        ("", ""),
        ("f", "use crate::g::{h, Y};\nuse crate::g::{self};\n"),
        ("g", "pub struct Y;\n"),
        ("g::h", "use crate::f::X;\n"),
    ];
    let mods: BTreeMap<String, String> = files
        .iter()
        .map(|(m, text)| (m.to_string(), code_of(text)))
        .collect();
    let graph = imports(&mods);
    assert_eq!(
        graph["f"],
        ["g", "g::h"].iter().map(|s| s.to_string()).collect()
    );
    assert_eq!(
        find_circle(&graph),
        Some(vec!["f".into(), "g::h".into(), "f".into()])
    );
}
