//! `sealdrop audit`: an IG officer verifies the whole log from the hub, or
//! offline from an exported bundle; a tampered bundle fails, naming the entry.

use sealdrop_e2e::{Backend, Hub, Party};

fn log_vkey(hub: &Hub) -> String {
    hub.verifier_key()
}

/// A hub whose log holds a delivered drop, a drop waiting and a fetch.
fn busy_hub(backend: Backend) -> (Hub, Party) {
    let hub = Hub::start_on(backend, None, &[]);
    let camden = Party::new(&hub, "camden");
    let islington = Party::new(&hub, "islington");
    let hackney = Party::new(&hub, "hackney");
    let delivered = camden.send("islington,hackney", &[&camden.file("a.csv", "x\n1\n")]);
    islington.fetch(&delivered, &islington.work().join("in"));
    hackney.fetch(&delivered, &hackney.work().join("in"));
    camden.send("islington", &[&camden.file("b.csv", "x\n2\n")]);
    (hub, camden)
}

fn the_hubs_log_verifies_from_the_hub_and_from_an_exported_bundle(backend: Backend) {
    let (hub, camden) = busy_hub(backend);
    let vkey = log_vkey(&hub);
    let out = camden.ok(["audit", "verify", "--log-key", &vkey, "--json"]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["verified"], true, "{v}");
    assert_eq!(v["log_key_vouched"], true, "{v}");
    // init's directory, 2 commits, 2 fetches, 2 acks, 1 deletion.
    assert_eq!(v["entries"], 8, "{v}");
    assert_eq!(v["drops_committed"], 2, "{v}");
    assert_eq!(v["fetches"], 2, "{v}");
    assert_eq!(v["acknowledgements"], 2, "{v}");
    assert_eq!(v["deleted"]["delivered"], 1, "{v}");

    let bundle = camden.work().join("log.bundle");
    let said = camden.ok(["audit".as_ref(), "export".as_ref(), "-o".as_ref(), bundle.as_os_str()]);
    assert!(said.contains("exported 8 log entries"), "{said}");
    // Offline: no hub needed (point the client at a closed port to prove it).
    let mut offline = Party::with_url("http://127.0.0.1:9", "camden");
    offline.authority = camden.authority.clone();
    let out = offline.ok([
        "audit".as_ref(),
        "verify".as_ref(),
        "--bundle".as_ref(),
        bundle.as_os_str(),
        "--log-key".as_ref(),
        vkey.as_ref(),
    ]);
    assert!(out.contains("VERIFIED"), "{out}");
    assert!(out.contains("8 entries"), "{out}");
    // Demanding witnesses that nobody provided fails.
    let stderr = offline.fail_with(
        [
            "audit".as_ref(),
            "verify".as_ref(),
            "--bundle".as_ref(),
            bundle.as_os_str(),
            "--witnesses".as_ref(),
            "1".as_ref(),
        ],
        4,
        "audit_failed",
    );
    assert!(stderr.contains("witness"), "{stderr}");
}

fn a_tampered_bundle_fails_naming_the_entry(backend: Backend) {
    let (hub, camden) = busy_hub(backend);
    let bundle = camden.work().join("log.bundle");
    camden.ok(["audit".as_ref(), "export".as_ref(), "-o".as_ref(), bundle.as_os_str()]);
    let mut bytes = std::fs::read(&bundle).unwrap();
    // Change the recorded size of the first drop inside its signed manifest.
    let needle = b"ciphertext_len\\\": ";
    let at = bytes.windows(needle.len()).position(|w| w == needle).expect("a manifest in the bundle") + needle.len();
    bytes[at] = if bytes[at] == b'9' { b'8' } else { b'9' };
    let tampered = camden.work().join("tampered.bundle");
    std::fs::write(&tampered, &bytes).unwrap();
    let vkey = log_vkey(&hub);
    let out = camden.run([
        "audit".as_ref(),
        "verify".as_ref(),
        "--bundle".as_ref(),
        tampered.as_os_str(),
        "--log-key".as_ref(),
        vkey.as_ref(),
    ]);
    assert_eq!(out.status.code(), Some(4), "{out:?}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stdout.contains("FAILED"), "{stdout}");
    assert!(stdout.contains("FAIL entry 1:"), "the failure names the entry: {stdout}");
    assert!(stderr.contains("audit_failed"), "{stderr}");
}

fn the_ig_report_is_written_only_for_a_verified_log(backend: Backend) {
    let (hub, camden) = busy_hub(backend);
    let vkey = log_vkey(&hub);
    let (csv, html) = (camden.work().join("report.csv"), camden.work().join("report.html"));
    let out = camden.ok([
        "audit".as_ref(),
        "report".as_ref(),
        "--log-key".as_ref(),
        vkey.as_ref(),
        "--csv".as_ref(),
        csv.as_os_str(),
        "--html".as_ref(),
        html.as_os_str(),
    ]);
    assert!(out.contains("verified (8 entries)"), "{out}");
    let csv_text = std::fs::read_to_string(&csv).unwrap();
    let mut lines = csv_text.lines();
    assert_eq!(
        lines.next(),
        Some(
            "drop_id,agreement,sender,recipient,ciphertext_bytes,committed,fetched,acknowledged,hours_to_acknowledge,outcome,\
             deleted,deletion_reason,recalled_by,delivery,manifest_signer,manifest_key_fingerprint,receipt_signer,\
             receipt_key_fingerprint,encryption"
        )
    );
    let rows: Vec<&str> = lines.collect();
    assert_eq!(rows.len(), 3, "two deliveries of the first drop and one of the second: {csv_text}");
    // The outcome column, then the delivery column (before the signing keys).
    let outcome = |r: &&&str| r.split(',').nth(9).unwrap_or_default().to_owned();
    let delivery = |r: &&&str| r.split(',').nth(13).unwrap_or_default().to_owned();
    assert_eq!(
        rows.iter().filter(|r| outcome(r) == "acknowledged" && delivery(r) == "delivered").count(),
        2,
        "{csv_text}"
    );
    assert_eq!(rows.iter().filter(|r| outcome(r) == "waiting" && delivery(r) == "pending").count(), 1, "{csv_text}");
    // The example keys are post-quantum, so both drops are, on every row.
    assert!(rows.iter().all(|r| r.ends_with(",post_quantum")), "{csv_text}");
    assert!(out.contains("report covers 2 drops, 2 of them post-quantum"), "{out}");
    let page = std::fs::read_to_string(&html).unwrap();
    assert!(page.contains("Camden") && page.contains("Islington") && page.contains("Hackney"));
    for external in ["src=\"http", "href=\"http", "url(http", "<link", "<script", "@import"] {
        assert!(!page.contains(external), "the page must be self-contained, found {external}");
    }

    // A filter by a date after everything leaves no drops in the report.
    let later = camden.work().join("later.csv");
    camden.ok([
        "audit".as_ref(),
        "report".as_ref(),
        "--log-key".as_ref(),
        vkey.as_ref(),
        "--since".as_ref(),
        "2100-01-01".as_ref(),
        "--csv".as_ref(),
        later.as_os_str(),
    ]);
    assert_eq!(std::fs::read_to_string(&later).unwrap().lines().count(), 1, "header only");

    // A tampered bundle gets no report at all.
    let bundle = camden.work().join("log.bundle");
    camden.ok(["audit".as_ref(), "export".as_ref(), "-o".as_ref(), bundle.as_os_str()]);
    let mut bytes = std::fs::read(&bundle).unwrap();
    let needle = b"ciphertext_len\\\": ";
    let at = bytes.windows(needle.len()).position(|w| w == needle).unwrap() + needle.len();
    bytes[at] = if bytes[at] == b'9' { b'8' } else { b'9' };
    std::fs::write(&bundle, &bytes).unwrap();
    let refused = camden.work().join("refused.html");
    camden.fail_with(
        [
            "audit".as_ref(),
            "report".as_ref(),
            "--bundle".as_ref(),
            bundle.as_os_str(),
            "--log-key".as_ref(),
            vkey.as_ref(),
            "--html".as_ref(),
            refused.as_os_str(),
        ],
        4,
        "audit_failed",
    );
    assert!(!refused.exists(), "no report for a log that fails the audit");
}

sealdrop_e2e::on_both_backends!(
    the_hubs_log_verifies_from_the_hub_and_from_an_exported_bundle,
    a_tampered_bundle_fails_naming_the_entry,
    the_ig_report_is_written_only_for_a_verified_log,
);
