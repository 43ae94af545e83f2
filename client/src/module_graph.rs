//! The client's layers, checked from its source: the modules (the files
//! and folders directly under `src/`) must not import each other in a
//! cycle, the hub's `/v1/...` paths are written only in [`crate::transport`],
//! and the transport imports nothing above it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Each module's source without comments and without its unit tests.
fn modules() -> BTreeMap<String, Vec<(String, String)>> {
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
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    walk(&src, "", &mut files);
    let mut modules: BTreeMap<String, Vec<(String, String)>> = BTreeMap::new();
    for (rel, text) in files {
        let top = rel.split('/').next().unwrap().trim_end_matches(".rs").to_owned();
        if ["lib", "main", "module_graph"].contains(&top.as_str()) || rel.ends_with("/tests.rs")
            // Test-only modules (`#[cfg(test)] mod fixture;`).
            || rel.ends_with("/fixture.rs")
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
fn imports(modules: &BTreeMap<String, Vec<(String, String)>>) -> BTreeMap<String, BTreeSet<String>> {
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
                    if modules.contains_key(&name) && &name != module {
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

#[test]
fn no_module_imports_another_that_imports_it_back() {
    let graph = imports(&modules());
    let mut cycles = Vec::new();
    for module in graph.keys() {
        let reached = reach(&graph, module);
        for other in reached.iter().filter(|o| *o > module && reach(&graph, o).contains(module)) {
            cycles.push(format!("{module} <-> {other}"));
        }
    }
    assert!(cycles.is_empty(), "modules in an import cycle: {cycles:?}");
}

#[test]
fn only_the_transport_names_the_hubs_paths_and_it_imports_nothing_above_it() {
    let modules = modules();
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
fn local_state_imports_no_session_and_no_operation() {
    let graph = imports(&modules());
    let state = ["trust", "logcheck", "journal", "outgoing", "staging", "fetch_lock", "refused", "fetched_before"];
    let above = ["context", "deliver", "send", "upload", "split", "fetch", "inbox", "recall", "status", "audit", "cli"];
    for module in state {
        let reached = reach(&graph, module);
        let wrong: Vec<&str> = above.into_iter().filter(|a| reached.contains(*a)).collect();
        assert!(wrong.is_empty(), "{module} (local state) imports {wrong:?}");
    }
}
