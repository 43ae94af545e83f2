//! `sealdrop fetch` when a drop's names are taken: several boroughs each split
//! a file of the same name and send the same borough a part named
//! `fsm-islington.csv`. A drop whose name is already in the output folder (or
//! came with an earlier drop of the run) goes whole into `<out>/<drop id>/`;
//! nothing is ever replaced.

use std::collections::BTreeMap;

use sealdrop_e2e::{Hub, Party, json, list_dir, read_text, tree};

const NAME: &str = "fsm-islington.csv";

/// `fetch --all -o in --json`: each drop's sender and the folder its files went into.
fn fetch_all_json(islington: &Party) -> BTreeMap<String, (String, String)> {
    let v = json(&islington.ok(["fetch", "--all", "-o", "in", "--json"]));
    let drops = v.as_array().unwrap_or_else(|| panic!("not an array: {v}"));
    drops
        .iter()
        .map(|d| {
            assert_eq!(d["ok"], true, "{v}");
            let d = &d["drop"];
            assert_eq!(d["names"], serde_json::json!([NAME]), "{v}");
            let s = |k: &str| d[k].as_str().unwrap_or_else(|| panic!("no `{k}` in {d}")).to_owned();
            (s("id"), (s("from"), s("dest")))
        })
        .collect()
}

#[test]
fn same_named_parts_from_two_boroughs_both_arrive_and_merge() {
    let hub = Hub::start();
    let camden = Party::new(&hub, "camden");
    let hackney = Party::new(&hub, "hackney");
    let islington = Party::new(&hub, "islington");
    let a = camden.file(&format!("split/{NAME}"), "from camden\n");
    let b = hackney.file(&format!("split/{NAME}"), "from hackney\n");
    let id_a = camden.send("islington", &[&a]);
    let id_b = hackney.send("islington", &[&b]);

    let got = fetch_all_json(&islington);
    assert_eq!(got.len(), 2, "{got:?}");
    assert!(islington.inbox_ids().is_empty(), "both drops must be acknowledged");
    // Whichever came first is in `in/`, the other in `in/<its drop id>/`.
    let (first, second) = if got[&id_a].1 == "in" { (&id_a, &id_b) } else { (&id_b, &id_a) };
    assert_eq!(got[first].1, "in", "{got:?}");
    assert_eq!(got[second].1, format!("in/{second}"), "{got:?}");
    let content = |id: &str| format!("from {}\n", got[id].0);
    assert_eq!(got[&id_a].0, "camden");
    assert_eq!(got[&id_b].0, "hackney");
    let inbox = islington.work().join("in");
    assert_eq!(
        tree(&inbox),
        BTreeMap::from([
            (NAME.to_owned(), content(first).into_bytes()),
            (format!("{second}/"), Vec::new()),
            (format!("{second}/{NAME}"), content(second).into_bytes()),
        ]),
        "nothing else (no staging folder) may be left"
    );

    // Two more same-named CSV parts: the name is taken, so both go into their own folders and both merge.
    let c = camden.file(&format!("autumn/{NAME}"), "upn,fsm\nA1,1\nA2,0\n");
    let d = hackney.file(&format!("autumn/{NAME}"), "upn,fsm\nB1,1\n");
    let id_c = camden.send("islington", &[&c]);
    let id_d = hackney.send("islington", &[&d]);
    let out = islington.run(["fetch", "--all", "-o", "in", "--merge-csv", "merged.csv"]);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "fetch --merge-csv failed:\n{stderr}");
    for (id, from) in [(&id_c, "camden"), (&id_d, "hackney")] {
        assert_eq!(read_text(&inbox.join(id).join(NAME)), if from == "camden" { read_text(&c) } else { read_text(&d) });
        // The per-drop line names the folder the files actually went into.
        let line = stderr
            .lines()
            .find(|l| l.starts_with(&format!("fetched {id} from {from}: 1 file(s)")))
            .unwrap_or_else(|| panic!("no line for {id}:\n{stderr}"));
        assert!(line.contains(&format!(" into in/{id} (")), "{line}");
    }
    assert_eq!(read_text(&inbox.join(NAME)), content(first), "the first file was replaced");
    assert!(islington.inbox_ids().is_empty(), "the drops were not acknowledged");
    let merged = read_text(&islington.work().join("merged.csv"));
    let mut lines: Vec<&str> = merged.lines().collect();
    assert_eq!(lines.remove(0), "upn,fsm,source_party", "{merged}");
    lines.sort_unstable();
    assert_eq!(lines, ["A1,1,camden", "A2,0,camden", "B1,1,hackney"], "{merged}");
    assert!(stderr.contains("merged 3 rows from 2 parts"), "{stderr}");
}

#[test]
fn a_taken_drop_folder_fails_that_drop_only_and_replaces_nothing() {
    let hub = Hub::start();
    let camden = Party::new(&hub, "camden");
    let hackney = Party::new(&hub, "hackney");
    let islington = Party::new(&hub, "islington");
    let a = camden.file(NAME, "from camden\n");
    let b = hackney.file(NAME, "from hackney\n");
    let id_a = camden.send("islington", &[&a]);
    let id_b = hackney.send("islington", &[&b]);
    // The name is taken, and so is the folder camden's drop would go into instead.
    islington.file(&format!("in/{NAME}"), "mine\n");
    islington.file(&format!("in/{id_a}"), "a file named like the drop\n");
    let inbox = islington.work().join("in");

    let (exit, stderr) = islington.fail_code(["fetch", "--all", "-o", "in"], "output_exists");
    assert_eq!(exit, 3, "{stderr}");
    let error = stderr.lines().find(|l| l.starts_with("error[")).expect("an error line");
    assert!(error.contains(&id_a), "{error}");
    assert_eq!(read_text(&inbox.join(NAME)), "mine\n", "an existing file was replaced");
    assert_eq!(read_text(&inbox.join(&id_a)), "a file named like the drop\n", "an existing file was replaced");
    // Hackney's drop still arrives, in its own folder.
    assert_eq!(read_text(&inbox.join(&id_b).join(NAME)), "from hackney\n");
    let mut want = vec![NAME.to_owned(), id_a.clone(), id_b.clone()];
    want.sort();
    assert_eq!(list_dir(&inbox), want, "something was left behind");
    assert_eq!(islington.inbox_ids(), std::slice::from_ref(&id_a), "only the failed drop waits");

    // Once the file is moved away, the drop arrives in its own folder.
    std::fs::rename(inbox.join(&id_a), islington.work().join("moved")).unwrap();
    islington.fetch(&id_a, &inbox);
    assert_eq!(read_text(&inbox.join(&id_a).join(NAME)), "from camden\n");
    assert_eq!(read_text(&inbox.join(NAME)), "mine\n");
    assert!(islington.inbox_ids().is_empty());
}
