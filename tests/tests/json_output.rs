//! `--json` on every listing command: the documented fields, with values
//! checked against the real state of a real hub and the parties' own files.

use std::collections::BTreeSet;
use std::process::Command;

use sealdrop_e2e::{AGREEMENT, Hub, Party, bins, example_directory_json, json, member_key, read_text, repo_root};

fn log_vkey(hub: &Hub) -> String {
    let out = Command::new(&bins().hub).args(["verifier-key", "--data"]).arg(hub.data.path()).output().unwrap();
    assert!(out.status.success());
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

/// The number of entries in the hub's log, from its signed checkpoint.
fn log_size(hub: &Hub) -> u64 {
    let note = hub.read("/v1/log/checkpoint").body;
    note.lines().nth(1).unwrap().parse().unwrap()
}

/// The backticked words in the docs/cli.md section whose heading contains `heading`.
fn documented(heading: &str) -> BTreeSet<String> {
    let doc = read_text(&repo_root().join("docs/cli.md"));
    let start = doc.find(heading).unwrap_or_else(|| panic!("docs/cli.md has no section `{heading}`"));
    let rest = &doc[start + heading.len()..];
    let section = &rest[..rest.find("\n### ").or_else(|| rest.find("\n## ")).unwrap_or(rest.len())];
    section.split('`').skip(1).step_by(2).map(str::to_owned).collect()
}

/// Asserts every key of `object` is documented in the section `heading`.
fn assert_documented(heading: &str, object: &serde_json::Value) {
    let fields = documented(heading);
    for key in object.as_object().unwrap_or_else(|| panic!("not an object: {object}")).keys() {
        assert!(fields.contains(key), "docs/cli.md section `{heading}` does not document `{key}` of {object}");
    }
}

fn array(v: serde_json::Value) -> Vec<serde_json::Value> {
    match v {
        serde_json::Value::Array(a) => a,
        other => panic!("expected a JSON array, got {other}"),
    }
}

#[test]
fn every_listing_command_prints_documented_json_matching_the_real_state() {
    let hub = Hub::start();
    let camden = Party::new(&hub, "camden");
    let islington = Party::new(&hub, "islington");
    let hackney = Party::new(&hub, "hackney");
    let both = json(&camden.ok([
        "send".as_ref(),
        "--to".as_ref(),
        "islington,hackney".as_ref(),
        "--json".as_ref(),
        camden.file("fsm.csv", "upn,home_la\nA1,islington\n").as_os_str(),
    ]));
    let both_id = both["id"].as_str().unwrap().to_owned();
    let one = camden.send("islington", &[&camden.file("ehc.csv", "upn\nB2\n")]);

    // inbox --json: exactly the two drops, as the hub holds them.
    let inbox = array(json(&islington.ok(["inbox", "--json"])));
    assert_eq!(inbox.len(), 2, "{inbox:?}");
    let entry = inbox.iter().find(|d| d["id"] == both_id.as_str()).unwrap();
    assert_documented("`sealdrop inbox --json`", entry);
    assert_eq!(entry["from"], "camden");
    assert_eq!(entry["agreement"], AGREEMENT);
    assert_eq!(entry["size"], hub.ciphertext(&both_id).unwrap().len() as u64);
    assert_eq!(entry["size"], both["size"]);
    assert_eq!(entry["committed"], both["committed"]);
    assert_eq!(entry["expires"], both["expires"]);
    assert!(sealdrop_e2e::timestamp(entry, "created") <= sealdrop_e2e::timestamp(entry, "committed"));
    let other = inbox.iter().find(|d| d["id"] == one.as_str()).unwrap();
    assert_eq!(other["size"], hub.ciphertext(&one).unwrap().len() as u64);

    islington.fetch(&both_id, &islington.work().join("in"));

    // status --json: per drop and per recipient, after one acknowledgement.
    let status = array(json(&camden.ok(["status", "--json"])));
    assert_eq!(status.len(), 2);
    let s = status.iter().find(|d| d["id"] == both_id.as_str()).unwrap();
    assert_documented("`sealdrop status --json`", s);
    assert_eq!(s["state"], "committed");
    assert_eq!(s["agreement"], AGREEMENT);
    assert_eq!(s["size"], both["size"]);
    assert_eq!(s["committed"], both["committed"]);
    assert_eq!(s["files"], serde_json::json!(["fsm.csv"]));
    assert!(s["deleted"].is_null() && s["idempotency_key"].is_null(), "{s}");
    let recipients = s["recipients"].as_array().unwrap();
    assert_eq!(recipients.len(), 2);
    let isl = sealdrop_e2e::recipient_status(s, "islington");
    assert_documented("`sealdrop status --json`", isl);
    assert_eq!(isl["outcome"], "acknowledged");
    assert_eq!(isl["acknowledged_by"], member_key("islington").public().member.as_str());
    assert!(sealdrop_e2e::timestamp(isl, "fetched") <= sealdrop_e2e::timestamp(isl, "acknowledged"));
    let hack = sealdrop_e2e::recipient_status(s, "hackney");
    assert_eq!(hack["outcome"], "waiting");
    assert!(hack["fetched"].is_null() && hack["acknowledged"].is_null() && hack["acknowledged_by"].is_null());

    // journal --json: what this machine did, with the checkpoints it verified.
    let journal = array(json(&camden.ok(["journal", "--json", "--checkpoints"])));
    let sent: Vec<&serde_json::Value> = journal.iter().filter(|e| e["event"] == "sent").collect();
    assert_eq!(sent.len(), 2, "{journal:?}");
    let first = sent.iter().find(|e| e["drop"] == both_id.as_str()).unwrap();
    assert_documented("`sealdrop journal --json`", first);
    assert_eq!(first["v"], 1);
    assert_eq!(first["recipients"], serde_json::json!(["islington", "hackney"]));
    assert_eq!(first["names"], serde_json::json!(["fsm.csv"]));
    assert_eq!(first["ciphertext_len"], both["size"]);
    assert_eq!(first["ciphertext_sha256"], both["sha256"]);
    assert_eq!(first["committed"], both["committed"]);
    let checkpoint = journal.iter().rfind(|e| e["event"] == "checkpoint").unwrap();
    assert_documented("`sealdrop journal --json`", checkpoint);
    assert_eq!(checkpoint["origin"], "test-hub");
    assert!(checkpoint["size"].as_u64().unwrap() <= log_size(&hub));
    let received = array(json(&islington.ok(["journal", "--json"])));
    assert_eq!(received.len(), 1, "{received:?}");
    assert_documented("`sealdrop journal --json`", &received[0]);
    assert_eq!(received[0]["event"], "received");
    assert_eq!(received[0]["from"], "camden");
    assert_eq!(received[0]["names"], serde_json::json!(["fsm.csv"]));

    // directory show --json: the verified directory, as the coordinator signed it.
    let directory = json(&camden.ok(["directory", "show", "--json"]));
    assert_documented("`sealdrop directory show --json`", &directory);
    let example = example_directory_json();
    assert_eq!(directory["serial"], example["serial"]);
    let ids = |d: &serde_json::Value, list: &str| -> Vec<String> {
        d[list].as_array().unwrap().iter().map(|p| p["id"].as_str().unwrap().to_owned()).collect()
    };
    assert_eq!(ids(&directory, "parties"), ids(&example, "parties"));
    assert_eq!(ids(&directory, "agreements"), ids(&example, "agreements"));

    // key show --json: this member's card, key name and fingerprint.
    let key = json(&camden.ok(["key", "show", "--json"]));
    assert_documented("`sealdrop key show --json`", &key);
    let public = member_key("camden").public();
    assert_eq!(key["key_name"], public.signing_key.name());
    assert_eq!(key["fingerprint"], public.fingerprint());
    assert_eq!(key["card"], serde_json::to_value(&public).unwrap());
    assert_eq!(key["card"], json(&camden.ok(["key", "show"])), "the card is the one `key show` prints");

    // audit verify --json: the counts of the hub's whole log.
    let vkey = log_vkey(&hub);
    let verdict = json(&camden.ok(["audit", "verify", "--log-key", &vkey, "--json"]));
    assert_documented("`sealdrop audit verify --json`", &verdict);
    assert_documented("`sealdrop audit verify --json`", &verdict["deleted"]);
    assert_eq!(verdict["verified"], true);
    assert_eq!(verdict["entries"], log_size(&hub));
    assert_eq!(verdict["drops_committed"], 2);
    assert_eq!(verdict["fetches"], 1);
    assert_eq!(verdict["acknowledgements"], 1);
    assert_eq!(
        verdict["deleted"],
        serde_json::json!({"delivered": 0, "expired": 0, "recalled": 0, "agreement_ended": 0})
    );

    // audit report --json: JSON Lines, one row per drop and recipient.
    let out = camden.ok(["audit", "report", "--log-key", &vkey, "--json"]);
    let rows: Vec<serde_json::Value> = out.lines().map(json).collect();
    assert_eq!(rows.len(), 3, "{out}");
    for row in &rows {
        assert_documented("`sealdrop audit report --json`", row);
    }
    let row = rows.iter().find(|r| r["drop_id"] == both_id.as_str() && r["recipient"] == "islington").unwrap();
    assert_eq!(row["sender"], "camden");
    assert_eq!(row["ciphertext_bytes"], both["size"]);
    assert_eq!(row["committed"], both["committed"]);
    assert_eq!(row["acknowledged"], isl["acknowledged"]);
    assert_eq!(row["outcome"], "acknowledged");
    assert_eq!(row["delivery"], "delivered");
    let waiting = rows.iter().find(|r| r["drop_id"] == both_id.as_str() && r["recipient"] == "hackney").unwrap();
    assert_eq!((&waiting["outcome"], &waiting["delivery"]), (&"waiting".into(), &"pending".into()));
    assert!(waiting["acknowledged"].is_null() && waiting["hours_to_acknowledge"].is_null());
    assert!(rows.iter().any(|r| r["drop_id"] == one.as_str()));

    // The one-shot commands' JSON is documented too.
    assert_documented("`sealdrop send --json`", &both);
    let fetched = array(json(&hackney.ok(["fetch", &both_id, "-o", "in", "--json"])));
    assert_documented("`sealdrop fetch --json`", &fetched[0]);
    assert_documented("`sealdrop fetch --json`", &fetched[0]["drop"]);
    let recalled = json(&camden.ok(["recall", &one, "--json"]));
    assert_documented("`sealdrop recall --json`", &recalled);
}
