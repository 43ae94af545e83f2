//! The IG officer's side with the real binaries: evidence files are never
//! replaced by accident, a stolen key's later acknowledgement is a warning
//! of `audit verify` (an error with `--strict`), and a monthly return with
//! `audit report --since ... --until ...`.

use std::ffi::OsStr;

use sealdrop_e2e::{Coordinator, Hub, Party, TestClock, error_code, json, new_member, read_text};

#[test]
fn audit_files_are_never_replaced_unless_forced() {
    let hub = Hub::start();
    let camden = Party::new(&hub, "camden");
    camden.send("islington", &[&camden.file("a.csv", "x\n1\n")]);
    let bundle = camden.work().join("log.bundle");
    camden.ok([OsStr::new("audit"), "export".as_ref(), "-o".as_ref(), bundle.as_os_str()]);
    let first = std::fs::read(&bundle).unwrap();
    camden.send("islington", &[&camden.file("b.csv", "x\n2\n")]);

    // A second export to the same name is refused and the first kept.
    let (code, stderr) = camden.fail([OsStr::new("audit"), "export".as_ref(), "-o".as_ref(), bundle.as_os_str()]);
    assert_eq!((code, error_code(&stderr).as_deref()), (3, Some("output_exists")), "{stderr}");
    assert!(stderr.contains("--force"), "{stderr}");
    assert_eq!(std::fs::read(&bundle).unwrap(), first);
    // --force replaces it, whole.
    camden.ok([OsStr::new("audit"), "export".as_ref(), "-o".as_ref(), bundle.as_os_str(), "--force".as_ref()]);
    assert_ne!(std::fs::read(&bundle).unwrap(), first);

    // The report's CSV and HTML alike.
    let csv = camden.work().join("flows.csv");
    let html = camden.work().join("flows.html");
    std::fs::write(&csv, "last month's return\n").unwrap();
    let report = |extra: &[&str]| {
        let mut args: Vec<&OsStr> = vec![
            "audit".as_ref(),
            "report".as_ref(),
            "--csv".as_ref(),
            csv.as_os_str(),
            "--html".as_ref(),
            html.as_os_str(),
        ];
        args.extend(extra.iter().map(OsStr::new));
        camden.run(args)
    };
    let out = report(&[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!((out.status.code(), error_code(&stderr).as_deref()), (Some(3), Some("output_exists")), "{stderr}");
    assert!(stderr.contains("--csv") && stderr.contains("flows.csv"), "{stderr}");
    assert_eq!(read_text(&csv), "last month's return\n");
    assert!(!html.exists(), "nothing is written when one output is taken");
    let out = report(&["--force"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(read_text(&csv).starts_with("drop_id,"), "{}", read_text(&csv));
    assert!(read_text(&html).contains("<html"));
    let left: Vec<String> = std::fs::read_dir(camden.work())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.'))
        .collect();
    assert!(left.is_empty(), "temporary files left: {left:?}");
    // Now both exist: refused again, naming the first.
    let out = report(&[]);
    assert_eq!(error_code(&String::from_utf8_lossy(&out.stderr)).as_deref(), Some("output_exists"));
}

#[test]
fn a_stolen_keys_acknowledgement_after_its_revocation_is_a_warning_and_fails_strict() {
    let clock = TestClock::new();
    let hub = Hub::start_with_clock(&clock, &["--sweep-interval", "3600"]);
    let camden = Party::new(&hub, "camden").with_clock(&clock);
    let islington = Party::new(&hub, "islington").with_clock(&clock);
    let t0 = clock.now();
    let drop = camden.send("islington", &[&camden.file("fsm.csv", "upn\nA1\n")]);
    // Two hours later someone with islington/data-team's stolen laptop
    // fetches and acknowledges it.
    clock.advance(7200);
    islington.fetch(&drop, &islington.work().join("in"));
    // The next day the coordinator revokes the key from the last time the
    // laptop was known safe, an hour after the send, and lists a new key.
    clock.advance(86_400);
    let keys = tempfile::tempdir().unwrap();
    let (_, card) = new_member(keys.path(), "islington", "data-team");
    let safe_until = sealdrop_proto::Timestamp::from_second(t0 + 3600).unwrap().to_string();
    let coordinator = Coordinator::new();
    coordinator.run(&[
        "directory",
        "revoke",
        "--key",
        "islington/data-team",
        "--reason",
        "laptop stolen",
        "--at",
        &safe_until,
        "--replace-with",
        card.to_str().unwrap(),
    ]);
    coordinator.publish(&camden);

    // The sender's status agrees with the audit: acknowledged, as the log
    // backs (the hub was right to accept it then), with a warning naming
    // the key, its revocation and whom to ask; not an unbacked claim.
    let out = camden.run(["status", "--json"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    let recipient = &json(&stdout)[0]["recipients"][0];
    assert_eq!(recipient["outcome"], "acknowledged", "{recipient}");
    let warning = recipient["revoked_key_warning"].as_str().unwrap_or_default();
    assert!(
        warning.starts_with("the acknowledgement at ")
            && warning.contains(&format!("which the directory revokes from {safe_until}: laptop stolen"))
            && warning.ends_with("ask islington whether they received it"),
        "{recipient}"
    );
    let text = camden.ok(["status"]);
    assert!(text.lines().any(|l| l.trim_start().starts_with("WARNING: the acknowledgement at ")), "{text}");

    // The log is sound: it verifies, exit 0, with a warning section naming
    // the acknowledgement (the receipt) and the download the key signed.
    let out = camden.run(["audit", "verify"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains(": VERIFIED, with 2 warnings\n"), "{stdout}");
    assert!(stdout.contains("  WARNINGS: 2 entries were signed with a key revoked from before it"), "{stdout}");
    let warnings: Vec<&str> = stdout.lines().filter(|l| l.starts_with("  AFTER REVOCATION ")).collect();
    assert_eq!(warnings.len(), 2, "{stdout}");
    let revokes = format!("islington/data-team's key, which directory 2 revokes from {safe_until}");
    assert!(warnings.iter().any(|w| w.contains("a fetch request signed at") && w.contains(&revokes)), "{warnings:?}");
    assert!(warnings.iter().any(|w| w.contains("a receipt signed at") && w.contains(&revokes)), "{warnings:?}");
    let heading = stdout.find("WARNINGS:").unwrap();
    assert!(stdout.find("AFTER REVOCATION").unwrap() > heading, "the warnings are under their heading");

    // --strict: the same output, then a distinct error and exit status.
    let out = camden.run(["audit", "verify", "--strict"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!((out.status.code(), error_code(&stderr).as_deref()), (Some(7), Some("audit_warnings")), "{stderr}");
    sealdrop_e2e::assert_one_error_line(&stderr);
    assert!(String::from_utf8_lossy(&out.stdout).contains("AFTER REVOCATION"));
    let out = camden.run(["audit", "verify", "--strict", "--json"]);
    assert_eq!(out.status.code(), Some(7));
    let v = json(&String::from_utf8_lossy(&out.stdout));
    assert_eq!((v["verified"].as_bool(), v["used_after_revocation"].as_array().map(Vec::len)), (Some(true), Some(2)));

    // A log without warnings passes --strict.
    let hub2 = Hub::start();
    let hackney = Party::new(&hub2, "hackney");
    hackney.send("camden", &[&hackney.file("a.csv", "x\n1\n")]);
    hackney.ok(["audit", "verify", "--strict"]);

    // The IG report carries them too.
    let html = camden.work().join("flows.html");
    camden.ok([OsStr::new("audit"), "report".as_ref(), "--html".as_ref(), html.as_os_str()]);
    let page = read_text(&html);
    assert!(page.contains("2 entries were signed with keys revoked from before them"), "{page}");
    assert!(page.contains("a receipt signed at"), "the acknowledgement is on the page");
}

#[test]
fn audit_report_until_ends_the_period_before_the_time_given() {
    let clock = TestClock::new();
    // 2026-11-01T00:00:00Z, then a drop on the 1st, the 30th and 1 December.
    let nov1 = 1_793_491_200;
    clock.set(nov1 + 3600);
    let hub = Hub::start_with_clock(&clock, &["--sweep-interval", "3600"]);
    let camden = Party::new(&hub, "camden").with_clock(&clock);
    let first = camden.send("islington", &[&camden.file("a.csv", "x\n1\n")]);
    clock.set(nov1 + 29 * 86_400 + 3600);
    let second = camden.send("islington", &[&camden.file("b.csv", "x\n2\n")]);
    clock.set(nov1 + 30 * 86_400);
    let december = camden.send("islington", &[&camden.file("c.csv", "x\n3\n")]);
    clock.advance(60);

    let rows = |args: &[&str]| -> Vec<String> {
        let mut all = vec!["audit", "report", "--json"];
        all.extend(args);
        let out = camden.ok(all);
        out.lines().map(|l| json(l)["drop_id"].as_str().unwrap().to_owned()).collect()
    };
    assert_eq!(rows(&[]), [first.clone(), second.clone(), december.clone()]);
    // November: --until is exclusive, so a drop committed at exactly
    // 2026-12-01T00:00:00Z belongs to December.
    assert_eq!(rows(&["--since", "2026-11-01", "--until", "2026-12-01"]), [first.clone(), second.clone()]);
    assert_eq!(rows(&["--until", "2026-12-01T00:00:00Z"]), [first.clone(), second]);
    assert_eq!(rows(&["--since", "2026-12-01"]), [december]);
    assert_eq!(rows(&["--until", "2026-11-02"]), [first]);

    // The page says so.
    let html = camden.work().join("november.html");
    let args = ["audit", "report", "--since", "2026-11-01", "--until", "2026-12-01", "--html", html.to_str().unwrap()];
    camden.ok(args);
    let page = read_text(&html);
    assert!(page.contains("drops committed from 2026-11-01 00:00 UTC until before 2026-12-01 00:00 UTC"), "{page}");
    // An empty or reversed period is a mistake.
    let (code, stderr) = camden.fail(["audit", "report", "--json", "--since", "2026-12-01", "--until", "2026-11-01"]);
    assert_eq!((code, error_code(&stderr).as_deref()), (3, Some("bad_date")), "{stderr}");
    let (_, stderr) = camden.fail(["audit", "report", "--json", "--until", "next month"]);
    assert!(stderr.starts_with("error[bad_date]: --until \"next month\""), "{stderr}");
}

#[test]
fn the_report_marks_agreements_that_ended_with_the_date() {
    let clock = TestClock::new();
    let hub = Hub::start_with_clock(&clock, &["--sweep-interval", "3600"]);
    let camden = Party::new(&hub, "camden").with_clock(&clock);
    let day = |t: i64| sealdrop_proto::Timestamp::from_second(t).unwrap().strftime("%Y-%m-%d").to_string();
    let at = |t: i64| sealdrop_proto::Timestamp::from_second(t).unwrap().to_string();
    let t0 = clock.now();

    // Two more agreements between camden and islington: a pilot that ends
    // tomorrow, and a trial the coordinator ends early.
    let coordinator = Coordinator::new();
    let mut d = json(&read_text(&coordinator.json));
    let base = d["agreements"][0].clone();
    for (id, until) in [("fsm-pilot", t0 + 86_400), ("fsm-trial", t0 + 365 * 86_400)] {
        let mut a = base.clone();
        a["id"] = id.into();
        a["title"] = format!("The {id}").into();
        a["parties"] = serde_json::json!(["camden", "islington"]);
        a["valid_until"] = at(until).into();
        d["agreements"].as_array_mut().unwrap().push(a);
    }
    d["serial"] = 2.into();
    std::fs::write(&coordinator.json, serde_json::to_string_pretty(&d).unwrap()).unwrap();
    coordinator.publish(&camden);
    for agreement in ["london-fsm-ehc", "fsm-pilot", "fsm-trial"] {
        let file = camden.file(&format!("{agreement}.csv"), "x\n1\n");
        camden.ok([
            OsStr::new("send"),
            "--agreement".as_ref(),
            agreement.as_ref(),
            "--to".as_ref(),
            "islington".as_ref(),
            file.as_os_str(),
        ]);
    }
    // Two days on, the coordinator drops the trial.
    clock.advance(2 * 86_400);
    let mut d = json(&read_text(&coordinator.json));
    d["agreements"].as_array_mut().unwrap().retain(|a| a["id"] != "fsm-trial");
    d["serial"] = 3.into();
    std::fs::write(&coordinator.json, serde_json::to_string_pretty(&d).unwrap()).unwrap();
    coordinator.publish(&camden);
    clock.advance(60);

    let html = camden.work().join("report.html");
    camden.ok([OsStr::new("audit"), "report".as_ref(), "--html".as_ref(), html.as_os_str()]);
    let page = read_text(&html);
    let row = |id: &str| -> String {
        let cell = format!("<span class=\"id\">{id}</span>");
        let start = page.find(&cell).unwrap_or_else(|| panic!("no row for {id}:\n{page}"));
        page[start..].split("</th>").next().unwrap().to_owned()
    };
    assert!(
        row("fsm-pilot")
            .contains(&format!("<span class=\"pill ended\">ended {} (its end date passed)</span>", day(t0 + 86_400))),
        "{}",
        row("fsm-pilot")
    );
    let trial = row("fsm-trial");
    assert!(trial.contains(&format!("ended {} (removed by directory serial 3)", day(clock.now() - 60))), "{trial}");
    assert!(!row("london-fsm-ehc").contains("ended"), "{}", row("london-fsm-ehc"));
}
