//! Which key signed (issue 18, the IG point): islington/data-team's key is
//! replaced after a lost laptop (`directory revoke --replace-with`), so one
//! member name acknowledged drops with two keys. `status`, `journal` and the
//! IG report (CSV, JSON, HTML) each show the fingerprint of the key that
//! signed each manifest and receipt, the same that `sealdrop directory
//! fingerprint` prints for each key.

use std::ffi::OsStr;
use std::path::Path;

use sealdrop_e2e::{Coordinator, Hub, Party, json, keys_example, new_member, read_text, recipient_status};

/// What `sealdrop directory fingerprint FILE` prints: the `SHA256:...` word.
fn fingerprint_of(p: &Party, file: &Path) -> String {
    let out = p.ok([OsStr::new("directory"), "fingerprint".as_ref(), file.as_os_str()]);
    let fp = out.split_whitespace().next().unwrap_or_else(|| panic!("no fingerprint printed: {out}")).to_owned();
    assert!(fp.starts_with("SHA256:") && fp.len() == "SHA256:".len() + 32, "{out}");
    fp
}

#[test]
fn a_replaced_key_under_the_same_member_name_is_told_apart_everywhere() {
    let hub = Hub::start();
    let camden = Party::new(&hub, "camden");
    let islington = Party::new(&hub, "islington");
    let camden_fp = fingerprint_of(&camden, &keys_example().join("parties/camden.key"));
    let old_fp = fingerprint_of(&camden, &keys_example().join("parties/islington.key"));

    // Acknowledged with the old key.
    let before = camden.send("islington", &[&camden.file("fsm-1.csv", "upn\nA1\n")]);
    islington.fetch(&before, &islington.work().join("in"));

    // The laptop is lost: the coordinator revokes the key and lists the new
    // one under the same member name.
    let keys = tempfile::tempdir().unwrap();
    let (new_key, new_card) = new_member(keys.path(), "islington", "data-team");
    let new_fp = fingerprint_of(&camden, &new_card);
    assert_ne!(old_fp, new_fp);
    let coordinator = Coordinator::new();
    let card = new_card.to_str().unwrap();
    coordinator.run(&[
        "directory",
        "revoke",
        "--key",
        "islington/data-team",
        "--reason",
        "laptop lost",
        "--replace-with",
        card,
    ]);
    coordinator.publish(&camden);
    let mut replaced = Party::new(&hub, "islington");
    replaced.key = replaced.dir.path().join("new.key");
    std::fs::copy(&new_key, &replaced.key).unwrap();

    // Acknowledged with the new key, by the same member name.
    let after = camden.send("islington", &[&camden.file("fsm-2.csv", "upn\nB2\n")]);
    replaced.fetch(&after, &replaced.work().join("in"));

    // status --json: each receipt's key, and the manifest's.
    for (drop, fp) in [(&before, &old_fp), (&after, &new_fp)] {
        let d = camden.status_of(drop);
        let isl = recipient_status(&d, "islington");
        assert_eq!(isl["outcome"], "acknowledged", "{d}");
        assert_eq!(isl["acknowledged_by"], "data-team", "{d}");
        assert_eq!(isl["receipt_key_fingerprint"], fp.as_str(), "{d}");
        assert_eq!(d["manifest_key_fingerprint"], camden_fp.as_str(), "{d}");
    }
    // status (text): `acknowledged ... by data-team (key SHA256:...)`.
    for (drop, fp) in [(&before, &old_fp), (&after, &new_fp)] {
        let text = camden.ok(["status", drop]);
        let line = text.lines().find(|l| l.trim_start().starts_with("islington")).unwrap();
        assert!(line.contains(&format!("by data-team (key {fp})")), "{text}");
        assert!(text.lines().next().unwrap().contains(&format!("signed with key {camden_fp}")), "{text}");
    }

    // journal --json: the sender's manifests; each recipient machine's
    // received drops with the manifest's and its own receipt's key.
    let sent: Vec<serde_json::Value> = camden.journal().into_iter().filter(|e| e["event"] == "sent").collect();
    assert_eq!(sent.len(), 2, "{sent:?}");
    assert!(sent.iter().all(|e| e["manifest_key_fingerprint"] == camden_fp.as_str()), "{sent:?}");
    for (party, drop, fp) in [(&islington, &before, &old_fp), (&replaced, &after, &new_fp)] {
        let journal = party.journal();
        let e = journal.iter().find(|e| e["event"] == "received" && e["drop"] == drop.as_str()).unwrap();
        assert_eq!(e["receipt_key_fingerprint"], fp.as_str(), "{e}");
        assert_eq!(e["manifest_key_fingerprint"], camden_fp.as_str(), "{e}");
        let text = party.ok(["journal"]);
        let line = text.lines().find(|l| l.contains(drop.as_str())).unwrap();
        assert!(line.contains(&format!("manifest key {camden_fp}  receipt key {fp}")), "{text}");
    }
    let text = camden.ok(["journal"]);
    assert!(text.lines().filter(|l| l.contains(&format!("signed with key {camden_fp}"))).count() == 2, "{text}");

    // audit report: CSV, JSON rows and the HTML.
    let csv = camden.work().join("flows.csv");
    let html = camden.work().join("flows.html");
    camden.ok([
        OsStr::new("audit"),
        "report".as_ref(),
        "--csv".as_ref(),
        csv.as_os_str(),
        "--html".as_ref(),
        html.as_os_str(),
    ]);
    let mut reader = csv::Reader::from_path(&csv).unwrap();
    let header: Vec<String> = reader.headers().unwrap().iter().map(str::to_owned).collect();
    let col = |name: &str| header.iter().position(|h| h == name).unwrap_or_else(|| panic!("no {name}: {header:?}"));
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    for (drop, fp) in [(&before, &old_fp), (&after, &new_fp)] {
        let row = rows.iter().find(|r| &r[col("drop_id")] == drop.as_str()).unwrap();
        assert_eq!(&row[col("receipt_signer")], "islington/data-team");
        assert_eq!(&row[col("receipt_key_fingerprint")], fp.as_str(), "{row:?}");
        assert_eq!(&row[col("manifest_signer")], "camden/data-team");
        assert_eq!(&row[col("manifest_key_fingerprint")], camden_fp.as_str(), "{row:?}");
    }
    let out = camden.ok(["audit", "report", "--json"]);
    let lines: Vec<serde_json::Value> = out.lines().map(json).collect();
    for (drop, fp) in [(&before, &old_fp), (&after, &new_fp)] {
        let row = lines.iter().find(|r| r["drop_id"] == drop.as_str()).unwrap_or_else(|| panic!("{out}"));
        assert_eq!(row["receipt_key_fingerprint"], fp.as_str(), "{row}");
        assert_eq!(row["manifest_key_fingerprint"], camden_fp.as_str(), "{row}");
    }
    let page = read_text(&html);
    let keys = &page[page.find("<h2 id=\"k-h\">Signing keys</h2>").expect("a Signing keys section")..];
    let keys = &keys[..keys.find("</section>").unwrap()];
    let row_of = |fp: &str| {
        let at = keys.find(fp).unwrap_or_else(|| panic!("{fp} is not in the key table: {keys}"));
        let start = keys[..at].rfind("<tr>").unwrap();
        keys[start..start + keys[start..].find("</tr>").unwrap()].to_owned()
    };
    assert!(row_of(&old_fp).contains("islington/data-team") && row_of(&old_fp).contains("revoked"), "{keys}");
    assert!(row_of(&new_fp).contains("islington/data-team") && row_of(&new_fp).contains("current"), "{keys}");
    assert!(row_of(&camden_fp).contains("camden/data-team"), "{keys}");
    // Still one self-contained page.
    assert!(!page.contains("<script") && !page.contains("src=\"http") && !page.contains("href=\"http"));
}
