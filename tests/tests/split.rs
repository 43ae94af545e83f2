//! `sealdrop send --split-by`: one spreadsheet, one drop per home borough,
//! each readable only by its borough, nothing sent that must not go.

use std::path::{Path, PathBuf};

use sha2::Digest as _;

use sealdrop_e2e::{Hub, Party, authority_key_copy, example_directory_json, read_text, sign_directory, tree};

const BOM: &str = "\u{feff}";
const HEADER: &str = "pupil_ref,name,notes,home_la,school";

/// Rows (as raw CSV, verbatim) and the party each must reach; `None` rows
/// are the sender's own (camden) and `Some("-")` rows cannot be routed.
fn rows() -> Vec<(&'static str, Option<&'static str>)> {
    vec![
        ("SYN001,Zoë Ándre,plain,Islington,Brecknock Primary", Some("islington")),
        ("SYN002,\"Smith, Jo\",\"line one\r\nline two\",London Borough of Hackney,Torriano", Some("hackney")),
        ("SYN003,\"O\"\"Neil\",,E09000019,Torriano", Some("islington")),
        ("SYN004,José,,206,Gospel Oak", Some("islington")),
        ("SYN005,Chloé,\"a \"\"quoted\"\" note, with comma\",hackney,Gospel Oak", Some("hackney")),
        ("SYN006,Łucja,,  HACKNEY  ,Gospel Oak", Some("hackney")),
        ("SYN007,Own Pupil,,Camden,Gospel Oak", None),
        ("SYN008,Own Too,,202,Torriano", None),
        ("SYN009,Siobhán,,Hertfordshire,Torriano", Some("-")),
        ("SYN010,Öykü,,,Torriano", Some("-")),
        ("SYN011,Kensington Kid,,The Royal Borough of Kensington and Chelsea,Torriano", Some("kensington-and-chelsea")),
        ("SYN012,H and F,,Hammersmith & Fulham,Torriano", Some("hammersmith-and-fulham")),
        ("SYN013,West,,E09000033,Torriano", Some("westminster")),
        ("SYN014,Islington Again,,ISLINGTON,Brecknock Primary", Some("islington")),
    ]
}

/// The input: a BOM, CRLF line ends, blank lines and a row of empty fields
/// (as Excel leaves at the end of a sheet).
fn write_input(camden: &Party) -> PathBuf {
    let mut text = format!("{BOM}{HEADER}\r\n");
    for (i, (row, _)) in rows().iter().enumerate() {
        text.push_str(row);
        text.push_str("\r\n");
        if i == 3 {
            text.push_str("\r\n\r\n");
        }
    }
    text.push_str(",,,,\r\n");
    camden.file("pupils.csv", text)
}

/// What `party` must receive: the header, then its rows in order.
fn expected_part(party: &str) -> String {
    let mut text = format!("{BOM}{HEADER}\r\n");
    for (row, to) in rows() {
        if to == Some(party) {
            text.push_str(row);
            text.push_str("\r\n");
        }
    }
    text
}

fn split(party: &Party, file: &Path, extra: &[&str]) -> std::process::Output {
    let mut args = vec!["send", "--split-by", "home_la"];
    args.extend_from_slice(extra);
    args.push(file.to_str().unwrap());
    party.run(args)
}

fn drops_sent_by(hub: &Hub, party: &str) -> i64 {
    hub.query_text("SELECT CAST(COUNT(*) AS TEXT) FROM drops WHERE sender = ?1", &[&party]).parse().unwrap()
}

/// Fetches everything waiting for `party` into a fresh folder and returns its files.
fn fetch_all(party: &Party) -> std::collections::BTreeMap<String, Vec<u8>> {
    let out = party.work().join(format!("in-{}", party.id));
    std::fs::create_dir_all(&out).unwrap();
    party.ok(["fetch", "--all", "-o", out.to_str().unwrap()]);
    tree(&out)
}

#[test]
fn each_home_borough_gets_exactly_its_rows_and_nothing_that_must_not_go_leaves() {
    let hub = Hub::start();
    let camden = Party::new(&hub, "camden");
    let input = write_input(&camden);

    // Unroutable rows stop everything until the analyst decides.
    let out = split(&camden, &input, &["--yes"]);
    assert_eq!(out.status.code(), Some(3), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("error[unroutable_rows]"), "{stderr}");
    assert_eq!(drops_sent_by(&hub, "camden"), 0, "something was sent despite unroutable rows");
    let unroutable = camden.work().join("pupils-unroutable.csv");
    assert_eq!(
        read_text(&unroutable),
        format!("{BOM}{HEADER}\r\nSYN009,Siobhán,,Hertfordshire,Torriano\r\nSYN010,Öykü,,,Torriano\r\n"),
    );

    // The summary names every recipient from the signed directory, with counts.
    let summary = String::from_utf8_lossy(&out.stdout).into_owned();
    for (name, rows) in [("Islington", 4), ("Hackney", 3), ("Kensington and Chelsea", 1), ("Westminster", 1)] {
        let line = summary.lines().find(|l| l.trim_start().starts_with(name)).unwrap_or_else(|| panic!("{summary}"));
        assert!(line.contains(&format!(" {rows} rows")), "{line}");
    }
    assert!(summary.contains("2 rows for Camden (your own party) stay here"), "{summary}");
    assert!(summary.contains("2 rows could not be routed"), "{summary}");
    assert!(summary.contains("\"Hertfordshire\" 1") && summary.contains("(empty) 1"), "{summary}");
    assert!(summary.contains(": 14 rows"), "total rows read: {summary}");

    // Allowed: the routable rows go, one drop per borough.
    let sent = camden.ok(["send", "--split-by", "home_la", "--yes", "--allow-unroutable", input.to_str().unwrap()]);
    let recipients = ["islington", "hackney", "kensington-and-chelsea", "hammersmith-and-fulham", "westminster"];
    for r in recipients {
        assert!(sent.lines().any(|l| l.starts_with("sent d-") && l.contains(&format!("({r})"))), "{r}: {sent}");
    }
    assert_eq!(drops_sent_by(&hub, "camden"), recipients.len() as i64);
    // Each drop is addressed to one party only.
    for r in recipients {
        let n: i64 = hub
            .query_text(
                "SELECT CAST(COUNT(*) AS TEXT) FROM drop_recipients dr JOIN drops d ON d.id = dr.drop_id WHERE d.sender = 'camden' AND dr.party = ?1",
                &[&r],
            )
            .parse()
            .unwrap();
        assert_eq!(n, 1, "{r}");
    }

    for r in recipients {
        let party = Party::new(&hub, r);
        let got = fetch_all(&party);
        let name = format!("pupils-{r}.csv");
        assert_eq!(got.keys().collect::<Vec<_>>(), [&name], "{r} got other files");
        assert_eq!(String::from_utf8(got[&name].clone()).unwrap(), expected_part(r), "{r} got other rows");
    }
    // A borough with no pupils here gets nothing; the sender gets nothing from itself.
    assert!(Party::new(&hub, "barnet").inbox_ids().is_empty());
    assert!(camden.inbox_ids().is_empty());

    // Each part is readable only by its borough: islington's key cannot open hackney's drop.
    let hackney_drop: String = hub.query_text(
        "SELECT d.id FROM drops d JOIN drop_recipients r ON r.drop_id = d.id WHERE r.party = 'hackney'",
        &[],
    );
    let islington = Party::new(&hub, "islington");
    let (code, stderr) = islington.fail(["fetch", &hackney_drop, "-o", "."]);
    assert_ne!(code, 0, "{stderr}");
}

#[test]
fn dry_run_and_missing_confirmation_send_nothing() {
    let hub = Hub::start();
    let camden = Party::new(&hub, "camden");
    let input = write_input(&camden);

    let out = camden.ok(["send", "--split-by", "Home LA", "--dry-run", "--allow-unroutable", input.to_str().unwrap()]);
    assert!(out.contains("Islington") && out.contains("pupils-islington.csv"), "{out}");
    assert_eq!(drops_sent_by(&hub, "camden"), 0, "a dry run sent something");

    // No terminal to confirm on and no --yes: refused after the summary.
    let stderr = camden.fail_with(
        ["send", "--split-by", "home_la", "--allow-unroutable", input.to_str().unwrap()],
        3,
        "confirmation_required",
    );
    assert!(stderr.contains("--yes"), "{stderr}");
    assert_eq!(drops_sent_by(&hub, "camden"), 0);

    // A column that is not there lists the ones that are.
    let stderr =
        camden.fail_with(["send", "--split-by", "borough", "--yes", input.to_str().unwrap()], 3, "no_such_column");
    assert!(stderr.contains("\"home_la\""), "{stderr}");
    // --split-by takes one file.
    camden.fail_with(
        ["send", "--split-by", "home_la", "--yes", input.to_str().unwrap(), input.to_str().unwrap()],
        3,
        "split_one_file",
    );
}

#[test]
fn a_party_outside_the_agreement_stops_the_whole_split() {
    let hub = Hub::start();
    let coordinator = tempfile::tempdir().unwrap();
    let mut d = example_directory_json();
    d["serial"] = 2.into();
    d.as_object_mut().unwrap().remove("issued_at");
    let parties = d["agreements"][0]["parties"].as_array_mut().unwrap();
    parties.retain(|p| p != "westminster");
    hub.publish(&sign_directory(coordinator.path(), "no-westminster", &d, &authority_key_copy(coordinator.path())));

    let camden = Party::new(&hub, "camden");
    let input = write_input(&camden);
    let stderr = camden.fail_with(
        ["send", "--split-by", "home_la", "--yes", "--allow-unroutable", input.to_str().unwrap()],
        3,
        "not_in_agreement",
    );
    assert!(stderr.contains("westminster") && stderr.contains("london-fsm-ehc"), "{stderr}");
    assert_eq!(drops_sent_by(&hub, "camden"), 0, "parts went although one party is outside the agreement");
}

#[test]
fn a_rerun_after_a_failure_part_way_sends_only_what_is_missing() {
    let mut hub = Hub::start();
    let mut camden = Party::new(&hub, "camden");
    let input = camden.work().join("fsm.csv");
    camden.ok(["sample", "fsm", "--rows", "3000", "--seed", "7", "--home-las", "6", "-o", input.to_str().unwrap()]);

    // The hub refuses uploads over 40 KB, so the parts bigger than the
    // smallest size class (32 KiB of padded plaintext) fail.
    hub.restart_with(&["--max-upload-bytes", "40000"]);
    camden.point_at(&hub);
    let out = split(&camden, &input, &["--yes"]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let first = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("error[split_incomplete]") && stderr.contains("again"), "{stderr}");
    let sent_first: Vec<&str> = first.lines().filter(|l| l.starts_with("sent d-")).collect();
    let failed_first: Vec<&str> = first.lines().filter(|l| l.starts_with("NOT SENT")).collect();
    assert!(!sent_first.is_empty() && !failed_first.is_empty(), "the test needs some parts each way:\n{first}");
    assert_eq!(sent_first.len() + failed_first.len(), 6, "{first}");

    hub.restart();
    camden.point_at(&hub);
    let second = String::from_utf8_lossy(&split(&camden, &input, &["--yes"]).stdout).into_owned();
    let already: Vec<&str> = second.lines().filter(|l| l.starts_with("already sent d-")).collect();
    let sent_now: Vec<&str> = second.lines().filter(|l| l.starts_with("sent d-")).collect();
    assert_eq!(already.len(), sent_first.len(), "{second}");
    assert_eq!(sent_now.len(), failed_first.len(), "{second}");
    // The summary said so before sending, and whose re-runs it recognises.
    assert_eq!(second.matches("; skipped").count(), sent_first.len(), "{second}");
    assert!(
        second.contains("recognised only if your key camden/data-team sent them")
            && second.contains("another member of camden would send them again"),
        "{second}"
    );

    // What the hub holds as each part's key is an HMAC under a secret
    // only camden's member key gives: not the SHA-256 of the input's hash
    // and the part's fields, which the hub could compute from a guess of
    // the file.
    let input_sha256 = sealdrop_e2e::sha256_hex(&sealdrop_e2e::read_bytes(&input));
    let secret = sealdrop::split::rerun::RerunSecret::of(&camden.secret_key());
    let keys = hub.query_text(
        "SELECT group_concat(r.party || ' ' || d.idempotency_key, ',') FROM drops d JOIN drop_recipients r ON r.drop_id = d.id WHERE d.sender = 'camden' AND d.committed IS NOT NULL",
        &[],
    );
    let mut checked = 0;
    for pair in keys.split(',') {
        let (party, key) = pair.split_once(' ').unwrap();
        let party: sealdrop_proto::ids::PartyId = party.parse().unwrap();
        assert_eq!(key, secret.key(&input_sha256, None, "home_la", &party), "{party}");
        let mut plain = sha2::Sha256::new();
        for field in ["sealdrop-split-v1", input_sha256.as_str(), "", "home_la", party.as_str()] {
            plain.update((field.len() as u64).to_be_bytes());
            plain.update(field.as_bytes());
        }
        assert_ne!(key, hex::encode(plain.finalize()), "{party}: a key the hub can test a guess against");
        checked += 1;
    }
    assert_eq!(checked, 6, "{keys}");

    // Exactly one committed drop per home borough, each fetched once, rows all there.
    let committed: i64 = hub
        .query_text("SELECT CAST(COUNT(*) AS TEXT) FROM drops WHERE sender = 'camden' AND committed IS NOT NULL", &[])
        .parse()
        .unwrap();
    assert_eq!(committed, 6, "duplicates or gaps after the re-run");
    let third = String::from_utf8_lossy(&split(&camden, &input, &["--yes"]).stderr).into_owned();
    assert!(third.contains("every part was already sent"), "{third}");

    let mut rows_received = 0;
    let header = read_text(&input).lines().next().unwrap().to_owned();
    for line in sent_first.iter().chain(&sent_now) {
        let party = line.rsplit_once('(').unwrap().1.split(')').next().unwrap();
        let p = Party::new(&hub, party);
        let got = fetch_all(&p);
        assert_eq!(got.len(), 1, "{party} got {} files", got.len());
        let text = String::from_utf8(got.into_values().next().unwrap()).unwrap();
        assert_eq!(text.lines().next().unwrap(), header);
        rows_received += text.lines().count() - 1;
    }
    let out_of_borough = read_text(&input).lines().skip(1).filter(|l| !l.contains(",Camden,Camden,")).count();
    assert_eq!(rows_received, out_of_borough);
}

/// An attacker (or a spreadsheet that reformatted a column) writes LA
/// numbers with punctuation: `20.1`, `2.01`, `2/01` once all became 201 and
/// went to City of London. Codes now match only as written.
#[test]
fn reformatted_codes_are_unroutable_and_nothing_goes_to_city_of_london() {
    let hub = Hub::start();
    let camden = Party::new(&hub, "camden");
    let bad = ["SYN1,20.1", "SYN2,2.01", "SYN3,2/01", "SYN4,201.0", "SYN5,e09000001", "SYN6,0201", "SYN7,2 01"];
    let good = ["SYN8, 201 ", "SYN9,E09000001", "SYN10,City of London"];
    let mut text = String::from("pupil_ref,home_la\n");
    for row in bad.iter().chain(&good) {
        text.push_str(row);
        text.push('\n');
    }
    let input = camden.file("codes.csv", &text);

    let out = split(&camden, &input, &["--yes"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{out:?}");
    assert!(stderr.contains("error[unroutable_rows]") && stderr.contains("written exactly"), "{stderr}");
    assert_eq!(drops_sent_by(&hub, "camden"), 0);
    let unroutable: Vec<String> =
        read_text(&camden.work().join("codes-unroutable.csv")).lines().map(str::to_owned).collect();
    assert_eq!(unroutable[1..], bad.map(str::to_owned), "the unroutable file");
    let summary = String::from_utf8_lossy(&out.stdout);
    let line =
        summary.lines().find(|l| l.trim_start().starts_with("City of London")).unwrap_or_else(|| panic!("{summary}"));
    assert!(line.contains(" 3 rows"), "{line}");

    camden.ok(["send", "--split-by", "home_la", "--yes", "--allow-unroutable", input.to_str().unwrap()]);
    let got = fetch_all(&Party::new(&hub, "city-of-london"));
    let part = String::from_utf8(got.into_values().next().unwrap()).unwrap();
    assert_eq!(part, format!("pupil_ref,home_la\n{}\n", good.join("\n")));

    // The same for a recipient named on the command line.
    let file = camden.file("one.csv", "x\n");
    camden.fail_code(["send", "--to", "20.1", file.to_str().unwrap()], "unknown_party");
}

#[test]
fn a_workbook_splits_from_the_named_sheet() {
    let hub = Hub::start();
    let camden = Party::new(&hub, "camden");
    let path = camden.work().join("pupils.xlsx");
    let mut book = rust_xlsxwriter::Workbook::new();
    book.add_worksheet().set_name("Notes").unwrap().write_string(0, 0, "not this sheet").unwrap();
    let sheet = book.add_worksheet().set_name("Pupils").unwrap();
    let header = ["pupil_ref", "name", "dob", "home_la_code", "home_la"];
    for (c, h) in header.iter().enumerate() {
        sheet.write_string(0, c as u16, *h).unwrap();
    }
    let date = rust_xlsxwriter::ExcelDateTime::from_ymd(2016, 3, 9).unwrap();
    let format = rust_xlsxwriter::Format::new().set_num_format("dd/mm/yyyy");
    let data: [(&str, &str, f64, &str); 4] = [
        ("SYN1", "Zoë, \"Zo\" Ándre", 206.0, "Islington"),
        ("SYN2", "Two\nLines", 204.0, "London Borough of Hackney"),
        ("SYN3", "Own", 202.0, "Camden"),
        ("SYN4", "Łucja", 206.0, "E09000019"),
    ];
    for (i, (id, name, code, la)) in data.iter().enumerate() {
        let r = i as u32 + 1 + u32::from(i >= 2); // a blank row after the second
        sheet.write_string(r, 0, *id).unwrap();
        sheet.write_string(r, 1, *name).unwrap();
        sheet.write_datetime_with_format(r, 2, &date, &format).unwrap();
        sheet.write_number(r, 3, *code).unwrap();
        sheet.write_string(r, 4, *la).unwrap();
    }
    book.save(&path).unwrap();

    // By the numeric LA code column; the first sheet has no such column.
    camden.fail_with(["send", "--split-by", "home_la_code", "--yes", path.to_str().unwrap()], 3, "no_such_column");
    camden.fail_with(
        ["send", "--split-by", "home_la_code", "--sheet", "Nope", "--yes", path.to_str().unwrap()],
        3,
        "no_such_sheet",
    );
    camden.ok(["send", "--split-by", "home_la_code", "--sheet", "Pupils", "--yes", path.to_str().unwrap()]);

    let read = |bytes: &[u8]| -> Vec<Vec<String>> {
        let text = std::str::from_utf8(bytes).unwrap();
        let text = text.strip_prefix(BOM).expect("the part starts with a BOM so Excel reads UTF-8");
        csv::ReaderBuilder::new()
            .has_headers(false)
            .from_reader(text.as_bytes())
            .records()
            .map(|r| r.unwrap().iter().map(str::to_owned).collect())
            .collect()
    };
    let head: Vec<String> = header.iter().map(|h| (*h).to_owned()).collect();
    let row = |id: &str, name: &str, code: &str, la: &str| -> Vec<String> {
        [id, name, "2016-03-09", code, la].iter().map(|s| (*s).to_owned()).collect()
    };
    let islington = fetch_all(&Party::new(&hub, "islington"));
    assert_eq!(
        read(&islington["pupils-islington.csv"]),
        [head.clone(), row("SYN1", "Zoë, \"Zo\" Ándre", "206", "Islington"), row("SYN4", "Łucja", "206", "E09000019")]
    );
    let hackney = fetch_all(&Party::new(&hub, "hackney"));
    assert_eq!(
        read(&hackney["pupils-hackney.csv"]),
        [head, row("SYN2", "Two\nLines", "204", "London Borough of Hackney")]
    );
}

/// Runs `sealdrop GLOBALS ARGS` on a pseudo-terminal (util-linux `script`),
/// typing `answer` at the prompt.
fn on_a_terminal(party: &Party, args: &[&str], answer: &str) -> (Option<i32>, String) {
    on_a_terminal_then(party, args, || {}, answer)
}

/// [`on_a_terminal`], calling `meanwhile` while the summary is on screen
/// and before answering.
fn on_a_terminal_then(party: &Party, args: &[&str], meanwhile: impl FnOnce(), answer: &str) -> (Option<i32>, String) {
    use std::io::Write;
    let mut cmd = party.command();
    cmd.args(args);
    let quote = |s: &std::ffi::OsStr| format!("'{}'", s.to_string_lossy().replace('\'', "'\\''"));
    let line: Vec<String> = std::iter::once(quote(cmd.get_program())).chain(cmd.get_args().map(quote)).collect();
    let mut script = std::process::Command::new("script");
    script.args(["-qec", &line.join(" "), "/dev/null"]).current_dir(party.work());
    for (k, v) in cmd.get_envs() {
        match v {
            Some(v) => script.env(k, v),
            None => script.env_remove(k),
        };
    }
    let mut child = script
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("util-linux `script` runs the client on a pseudo-terminal");
    // Give the client time to print the summary and ask before answering.
    std::thread::sleep(std::time::Duration::from_millis(1500));
    meanwhile();
    child.stdin.take().unwrap().write_all(format!("{answer}\n").as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    (out.status.code(), String::from_utf8_lossy(&out.stdout).into_owned())
}

#[test]
fn on_a_terminal_the_analyst_is_asked_and_only_yes_sends() {
    let hub = Hub::start();
    let camden = Party::new(&hub, "camden");
    let input = write_input(&camden);
    let args = ["send", "--split-by", "home_la", "--allow-unroutable", input.to_str().unwrap()];

    let (code, screen) = on_a_terminal(&camden, &args, "no");
    assert!(screen.contains("Islington") && screen.contains("Type yes to send"), "{screen}");
    assert!(screen.contains("error[cancelled]"), "{screen}");
    assert_eq!(code, Some(1), "{screen}");
    assert_eq!(drops_sent_by(&hub, "camden"), 0, "a declined split sent something");

    let (code, screen) = on_a_terminal(&camden, &args, "yes");
    assert_eq!(code, Some(0), "{screen}");
    assert_eq!(screen.matches("sent d-").count(), 5, "{screen}");
    assert_eq!(drops_sent_by(&hub, "camden"), 5);
}

/// The rows sent are sliced out of the file by where the first read found
/// them, and the file is read and hashed again to do it: a file changed
/// after the summary was shown, whether edited in place (same length) or
/// cut short, is refused and nothing is sent.
#[test]
fn a_file_changed_after_the_summary_is_refused_and_nothing_is_sent() {
    let hub = Hub::start();
    let camden = Party::new(&hub, "camden");
    let args_of = |input: &Path| {
        ["send", "--split-by", "home_la", "--allow-unroutable", input.to_str().unwrap()].map(str::to_owned)
    };
    type Edit = fn(&mut Vec<u8>);
    let edits: [(&str, Edit); 2] = [
        ("edited in place", |text| {
            // A byte of the last routed row's school ("Primary"), so every length stays.
            let at = text.len() - 10;
            text[at] = if text[at] == b'7' { b'8' } else { b'7' };
        }),
        ("cut short", |text| text.truncate(text.len() / 2)),
    ];
    for (what, edit) in edits {
        let input = write_input(&camden);
        let args = args_of(&input);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let change = || {
            let mut text = std::fs::read(&input).unwrap();
            edit(&mut text);
            std::fs::write(&input, text).unwrap();
        };
        let (code, screen) = on_a_terminal_then(&camden, &args, change, "yes");
        assert!(screen.contains("Type yes to send"), "{what}: {screen}");
        assert!(screen.contains("error[input_changed]"), "{what}: {screen}");
        assert_ne!(code, Some(0), "{what}: {screen}");
        assert_eq!(drops_sent_by(&hub, "camden"), 0, "{what}: a changed file was sent");
    }
}
