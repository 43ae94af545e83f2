//! The layers of every crate, checked from its source: no crate's modules
//! (the files and folders directly under its `src/`) import each other in a
//! cycle, and the client and the hub keep the layer order
//! `docs/architecture.md` describes.
//!
//! Read from the source rather than from the compiler because what is
//! checked is the shape a reader sees: `crate::name` in the code outside
//! unit tests.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// One module: its files, as (path under `src/`, code without comments and
/// unit tests).
type Files = Vec<(String, String)>;

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

/// Every crate's `src/` folder, by crate folder (`hub`, `crates/sealdrop-log`, ...).
fn crate_sources() -> BTreeMap<String, PathBuf> {
    let root = workspace();
    let mut out = BTreeMap::new();
    for dir in ["hub", "client", "tests", "bench"] {
        out.insert(dir.to_owned(), root.join(dir).join("src"));
    }
    for entry in std::fs::read_dir(root.join("crates")).unwrap().flatten() {
        let src = entry.path().join("src");
        if src.is_dir() {
            out.insert(format!("crates/{}", entry.file_name().to_string_lossy()), src);
        }
    }
    assert!(out.len() >= 8, "found the crates: {out:?}");
    out
}

/// A crate's modules without comments and without their unit tests.
/// `lib`, `main` and `bin/` are the roots that assemble the modules, and
/// `tests.rs` and `fixture.rs` files are test-only.
fn modules(src: &Path) -> BTreeMap<String, Files> {
    fn walk(dir: &Path, rel: &str, out: &mut Vec<(String, String)>) {
        for entry in std::fs::read_dir(dir).unwrap().flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let rel = if rel.is_empty() { name.clone() } else { format!("{rel}/{name}") };
            if entry.path().is_dir() {
                walk(&entry.path(), &rel, out);
            } else if name.ends_with(".rs") {
                out.push((rel, std::fs::read_to_string(entry.path()).unwrap()));
            }
        }
    }
    let mut files = Vec::new();
    walk(src, "", &mut files);
    let mut modules: BTreeMap<String, Files> = BTreeMap::new();
    for (rel, text) in files {
        let top = rel.split('/').next().unwrap().trim_end_matches(".rs").to_owned();
        if ["lib", "main", "bin"].contains(&top.as_str()) || rel.ends_with("/tests.rs") || rel.ends_with("/fixture.rs")
        {
            continue;
        }
        let code = text.split("#[cfg(test)]\nmod tests").next().unwrap_or("");
        let code: String =
            code.lines().filter(|l| !l.trim_start().starts_with("//")).map(|l| format!("{l}\n")).collect();
        modules.entry(top).or_default().push((rel, code));
    }
    modules
}

/// Which modules each module names (`crate::name`, or in `use crate::{...}`).
fn imports(modules: &BTreeMap<String, Files>) -> BTreeMap<String, BTreeSet<String>> {
    let mut graph = BTreeMap::new();
    for (module, files) in modules {
        let mut uses = BTreeSet::new();
        for (_, code) in files {
            for (i, _) in code.match_indices("crate::") {
                let rest = &code[i + "crate::".len()..];
                let names: Vec<&str> = match rest.strip_prefix('{') {
                    Some(group) => group.split('}').next().unwrap_or("").split(',').collect(),
                    None => vec![rest],
                };
                for name in names {
                    let name: String =
                        name.trim().chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
                    if modules.contains_key(&name) && name != *module {
                        uses.insert(name);
                    }
                }
            }
        }
        graph.insert(module.clone(), uses);
    }
    graph
}

/// The modules `from` reaches through its imports.
fn reach(graph: &BTreeMap<String, BTreeSet<String>>, from: &str) -> BTreeSet<String> {
    let mut seen = BTreeSet::new();
    let mut todo = vec![from.to_owned()];
    while let Some(m) = todo.pop() {
        for next in &graph[&m] {
            if seen.insert(next.clone()) {
                todo.push(next.clone());
            }
        }
    }
    seen
}

/// The graph of the crate in folder `dir`.
fn graph_of(dir: &str) -> BTreeMap<String, BTreeSet<String>> {
    imports(&modules(&crate_sources()[dir]))
}

/// `lower` modules reach none of `upper`.
fn assert_below(graph: &BTreeMap<String, BTreeSet<String>>, lower: &[&str], upper: &[&str]) {
    for module in lower {
        assert!(graph.contains_key(*module), "no module `{module}`: update this test's layer lists");
        let reached = reach(graph, module);
        let wrong: Vec<&str> = upper.iter().copied().filter(|a| reached.contains(*a)).collect();
        assert!(wrong.is_empty(), "{module} imports {wrong:?}, which sit above it");
    }
}

#[test]
fn no_crate_has_modules_that_import_each_other_in_a_cycle() {
    let mut cycles = Vec::new();
    for (dir, src) in crate_sources() {
        let graph = imports(&modules(&src));
        for module in graph.keys() {
            let reached = reach(&graph, module);
            for other in reached.iter().filter(|o| *o > module && reach(&graph, o).contains(module)) {
                cycles.push(format!("{dir}: {module} <-> {other}"));
            }
        }
    }
    assert!(cycles.is_empty(), "modules in an import cycle: {cycles:?}");
}

#[test]
fn only_the_clients_transport_names_the_hubs_paths_and_it_imports_nothing_above_it() {
    let modules = modules(&crate_sources()["client"]);
    let elsewhere: Vec<&String> = modules
        .iter()
        .filter(|(m, _)| m.as_str() != "transport")
        .flat_map(|(_, files)| files)
        .filter(|(_, code)| code.contains("\"/v1"))
        .map(|(rel, _)| rel)
        .collect();
    assert!(elsewhere.is_empty(), "hub paths written outside the transport: {elsewhere:?}");
    let graph = imports(&modules);
    let below: BTreeSet<String> = ["error", "hub_url"].map(String::from).into();
    assert_eq!(reach(&graph, "transport"), below, "the transport imports only errors and hub URL rules");
}

#[test]
fn the_clients_local_state_imports_no_session_and_no_operation() {
    let state = ["trust", "logcheck", "journal", "outgoing", "staging", "fetch_lock", "refused", "fetched_before"];
    let above = ["context", "deliver", "send", "upload", "split", "fetch", "inbox", "recall", "status", "audit", "cli"];
    assert_below(&graph_of("client"), &state, &above);
}

#[test]
fn the_hubs_storage_knows_no_service_and_its_services_know_no_http() {
    let graph = graph_of("hub");
    // Storage only stores: a PostgreSQL or object store is written against
    // its traits without the services, the hub's state or the API.
    assert_below(&graph, &["storage", "sequencer"], &["service", "quota", "hub", "api", "connections"]);
    // Services decide; the API maps their answers to HTTP.
    assert_below(&graph, &["service", "quota"], &["api", "connections"]);
}
