//! The layering ARCHITECTURE.md promises, checked on the sources and on Cargo's metadata: no
//! crate's top-level modules import each other in a loop, dependencies point down (no adapter
//! knows another, the service and the server name no adapter), sqlx, axum and each platform's
//! SDK stay in their crates, and no source file outside `tests/` is over 700 lines.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Top-level module → the crate's other top-level modules its files name (`crate::x`, or
/// `super::x` reaching the crate root), comments left out.
fn module_imports(src: &Path) -> BTreeMap<String, BTreeSet<String>> {
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for file in rust_files(src) {
        let rel = file.strip_prefix(src).expect("under src");
        let mut parts: Vec<String> = rel.with_extension("").iter().map(|p| p.to_string_lossy().into_owned()).collect();
        if parts.last().is_some_and(|p| p == "mod") {
            parts.pop();
        }
        if matches!(parts.as_slice(), [one] if one == "lib" || one == "main") || parts[0] == "bin" {
            continue;
        }
        let top = parts[0].clone();
        let text = std::fs::read_to_string(&file).expect("read a source file");
        let code: String = text.lines().filter(|l| !l.trim_start().starts_with("//")).collect::<Vec<_>>().join("\n");
        let mut named = Vec::new();
        for (i, _) in code.match_indices("crate::") {
            named.push(ident(&code[i + "crate::".len()..]));
        }
        for (i, _) in code.match_indices("super::") {
            // Only the first `super::` of a run; count how far up the run goes.
            if code[..i].ends_with("super::") {
                continue;
            }
            let mut rest = &code[i..];
            let mut up = 0;
            while let Some(r) = rest.strip_prefix("super::") {
                rest = r;
                up += 1;
            }
            if up >= parts.len() {
                named.push(ident(rest));
            }
        }
        for name in named.into_iter().filter(|n| !n.is_empty() && *n != top) {
            edges.entry(top.clone()).or_default().insert(name);
        }
    }
    edges
}

fn ident(s: &str) -> String {
    s.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect()
}

fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).expect("read a source directory").flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(rust_files(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
    out
}

/// The loops of `edges` (strongly connected components of more than one module).
fn cycles(edges: &BTreeMap<String, BTreeSet<String>>) -> Vec<BTreeSet<String>> {
    let nodes: BTreeSet<&String> = edges.keys().chain(edges.values().flatten()).collect();
    let reach = |from: &String| {
        let mut seen = BTreeSet::new();
        let mut todo = vec![from.clone()];
        while let Some(n) = todo.pop() {
            for m in edges.get(&n).into_iter().flatten() {
                if seen.insert(m.clone()) {
                    todo.push(m.clone());
                }
            }
        }
        seen
    };
    let reachable: BTreeMap<&String, BTreeSet<String>> = nodes.iter().map(|n| (*n, reach(n))).collect();
    let mut loops: Vec<BTreeSet<String>> = Vec::new();
    for n in &nodes {
        let group: BTreeSet<String> = nodes
            .iter()
            .filter(|m| reachable[*n].contains(**m) && reachable[*m].contains(*n))
            .map(|m| (*m).clone())
            .collect();
        if group.len() > 1 && !loops.contains(&group) {
            loops.push(group);
        }
    }
    loops
}

/// Every crate's `src/` in the workspace but the tests'.
fn crate_sources() -> Vec<PathBuf> {
    let root = tests::repo_root();
    let mut dirs = vec![root.join("engine/src"), root.join("bot/src")];
    for entry in std::fs::read_dir(root.join("bot")).expect("bot/").flatten() {
        if entry.path().join("Cargo.toml").is_file() {
            dirs.push(entry.path().join("src"));
        }
    }
    dirs
}

#[test]
fn the_cycle_finder_finds_a_loop_through_three_modules_and_none_in_a_tree() {
    let dir = tempfile::tempdir().expect("temp dir");
    let write = |path: &str, text: &str| {
        let path = dir.path().join(path);
        std::fs::create_dir_all(path.parent().expect("a parent")).expect("mkdir");
        std::fs::write(path, text).expect("write");
    };
    write("lib.rs", "pub mod a;\npub mod b;\npub mod c;\npub mod d;\n");
    write("a.rs", "use crate::b::B;\n// crate::d is only named in a comment\n");
    write("b/mod.rs", "mod inner;\n");
    write("b/inner.rs", "use super::super::c::C;\nuse super::Local;\n");
    write("d.rs", "use crate::a::A;\n");
    assert!(cycles(&module_imports(dir.path())).is_empty(), "a tree has no loop");
    write("c.rs", "pub fn f() { crate::a::g(); }\n");
    let found = cycles(&module_imports(dir.path()));
    let expected: BTreeSet<String> = ["a", "b", "c"].map(String::from).into();
    assert_eq!(found, vec![expected]);
}

#[test]
fn no_crates_top_level_modules_import_each_other_in_a_loop() {
    for src in crate_sources() {
        let loops = cycles(&module_imports(&src));
        assert!(loops.is_empty(), "{}: modules in an import loop: {loops:?}", src.display());
    }
}

#[test]
fn no_source_file_outside_the_tests_is_over_700_lines() {
    let mut long = Vec::new();
    for src in crate_sources() {
        for file in rust_files(&src) {
            let lines = std::fs::read_to_string(&file).expect("read").lines().count();
            if lines > 700 {
                long.push(format!("{} ({lines} lines)", file.display()));
            }
        }
    }
    assert!(long.is_empty(), "split these: {long:?}");
}

#[test]
fn dependencies_point_down_and_each_sdk_stays_in_its_crate() {
    let output = std::process::Command::new(env!("CARGO"))
        .args(["metadata", "--format-version", "1", "--no-deps", "--offline"])
        .current_dir(tests::repo_root())
        .output()
        .expect("cargo metadata");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let metadata: serde_json::Value = serde_json::from_slice(&output.stdout).expect("metadata JSON");
    // Each crate's normal (not dev) dependencies.
    let mut deps: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for package in metadata["packages"].as_array().expect("packages") {
        let name = package["name"].as_str().expect("name").to_owned();
        let normal = package["dependencies"].as_array().expect("dependencies").iter().filter(|d| d["kind"].is_null());
        deps.insert(name, normal.map(|d| d["name"].as_str().expect("dependency name").to_owned()).collect());
    }
    let adapters = ["slack", "teams", "discord", "salesforce"];
    let uses = |krate: &str, dep: &str| deps.get(krate).is_some_and(|d| d.contains(dep));
    let mut wrong = Vec::new();
    for krate in adapters.iter().chain(&["service", "server"]) {
        for other in adapters.iter().chain(&["server", "bot"]).filter(|o| *o != krate) {
            if uses(krate, other) {
                wrong.push(format!("{krate} depends on {other}"));
            }
        }
    }
    for (sdk, owner) in [("sqlx", "store"), ("slack-morphism", "slack"), ("serenity", "discord")] {
        for krate in deps.keys().filter(|k| *k != owner && *k != "tests") {
            if uses(krate, sdk) {
                wrong.push(format!("{krate} uses {sdk}, which belongs to {owner}"));
            }
        }
    }
    for krate in ["engine", "store", "settings", "embed", "alerts"] {
        if uses(krate, "axum") {
            wrong.push(format!("{krate} uses axum, which starts at the service"));
        }
    }
    assert!(deps.contains_key("service") && deps.contains_key("slack"), "the metadata lists the crates: {deps:?}");
    assert!(wrong.is_empty(), "{wrong:?}");
}
