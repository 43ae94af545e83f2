//! docs/threat-model.md points every claim at tests: each test it names
//! must exist in the workspace (as a `#[test]` or `#[tokio::test]`
//! function, or a `fn name(backend: Backend)` that
//! `sealdrop_e2e::on_both_backends!` runs as a test on each back end), so
//! the page cannot cite a test that was renamed or removed.
//! The tests themselves run with the rest of `cargo test --workspace`.

use std::collections::BTreeSet;
use std::path::Path;

use sealdrop_e2e::repo_root;

/// Names of the test functions in every `.rs` file under `dir`.
fn test_functions(dir: &Path, out: &mut BTreeSet<String>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if path.is_dir() {
            if !["target", ".git", "fuzz", "node_modules"].contains(&name.as_str()) {
                test_functions(&path, out);
            }
        } else if name.ends_with(".rs") {
            let text = std::fs::read_to_string(&path).unwrap();
            let mut after_attribute = false;
            for line in text.lines().map(str::trim) {
                if let Some(name) = line.strip_prefix("fn ").and_then(|l| l.strip_suffix("(backend: Backend) {")) {
                    out.insert(name.to_owned());
                    after_attribute = false;
                } else if line.starts_with("#[test]") || line.starts_with("#[tokio::test") {
                    after_attribute = true;
                } else if after_attribute && (line.starts_with("fn ") || line.starts_with("async fn ")) {
                    let rest = line.trim_start_matches("async ").trim_start_matches("fn ");
                    out.insert(rest.split('(').next().unwrap().to_owned());
                    after_attribute = false;
                }
            }
        }
    }
}

#[test]
fn every_test_the_threat_model_names_exists() {
    let root = repo_root();
    let doc = std::fs::read_to_string(root.join("docs/threat-model.md")).unwrap();
    let mut tests = BTreeSet::new();
    test_functions(&root, &mut tests);
    assert!(tests.len() > 300, "found only {} tests: is the scan right?", tests.len());

    let mut cited = Vec::new();
    let mut claims = 0;
    for row in doc.lines().filter(|l| l.starts_with("| ") && !l.starts_with("| ---")) {
        let cells: Vec<&str> = row.trim_matches('|').split(" | ").collect();
        let Some(last) = cells.last() else { continue };
        let names: Vec<&str> = last.split('`').skip(1).step_by(2).collect();
        if names.iter().any(|n| n.contains("_is_") || n.contains("_are_") || n.matches('_').count() >= 3) {
            claims += 1;
            cited.extend(names);
        }
    }
    assert!(claims >= 30, "the threat model cites tests for only {claims} claims");
    let missing: Vec<&&str> = cited.iter().filter(|n| !tests.contains(**n)).collect();
    assert!(missing.is_empty(), "docs/threat-model.md names tests that do not exist: {missing:?}");
}
