//! What the sender is told before anything goes: a misspelt party or
//! agreement names the one it was meant to (`did you mean ...?`), and so
//! does `journal --party`, which used to match nothing without a word.

use sealdrop_e2e::{Hub, Party};

fn drops_on(hub: &Hub) -> String {
    hub.query_text("SELECT CAST(COUNT(*) AS TEXT) FROM drops", &[])
}

#[test]
fn a_misspelt_party_or_agreement_says_which_was_meant_and_nothing_is_sent() {
    let hub = Hub::start();
    let camden = Party::new(&hub, "camden");
    let file = camden.file("fsm.csv", "pupil_ref,name\nSYN001,Zoë\n");
    let f = file.to_str().unwrap();
    let err = camden.fail_with(["send", "--to", "islingon", f], 3, "unknown_party");
    assert!(err.trim_end().ends_with("did you mean islington?"), "{err}");
    assert!(err.contains("no party \"islingon\" in the signed directory"), "{err}");
    // By display name too, and among several recipients.
    let err = camden.fail_with(["send", "--to", "hackney,Westminstr", f], 3, "unknown_party");
    assert!(err.trim_end().ends_with("did you mean westminster?"), "{err}");
    // Nothing alike: the usual advice, no guess.
    let err = camden.fail_with(["send", "--to", "narnia", f], 3, "unknown_party");
    assert!(!err.contains("did you mean"), "{err}");
    assert!(err.contains("sealdrop directory show"), "{err}");

    let err =
        camden.fail_with(["send", "--to", "islington", "--agreement", "london-fsm-ech", f], 3, "unknown_agreement");
    assert!(err.trim_end().ends_with("did you mean london-fsm-ehc?"), "{err}");
    let err = camden.fail_with(
        ["send", "--split-by", "name", "--agreement", "londn-fsm-ehc", "--yes", f],
        3,
        "unknown_agreement",
    );
    assert!(err.trim_end().ends_with("did you mean london-fsm-ehc?"), "{err}");
    assert_eq!(drops_on(&hub), "0");
}

#[test]
fn journal_party_refuses_a_party_it_cannot_know_and_resolves_names() {
    let hub = Hub::start();
    let camden = Party::new(&hub, "camden");
    let file = camden.file("fsm.csv", "pupil_ref,name\nSYN001,Zoë\n");
    let id = camden.send("islington", &[&file]);
    let err = camden.fail_with(["journal", "--party", "islingon"], 3, "unknown_party");
    assert!(err.trim_end().ends_with("did you mean islington?"), "{err}");
    // A party in the directory with nothing in the journal: an empty answer, no error.
    assert_eq!(camden.ok(["journal", "--party", "hackney"]).trim(), "");
    // By id, by name and by GSS code alike.
    for p in ["islington", "Islington", "E09000019"] {
        let out = camden.ok(["journal", "--party", p]);
        assert!(out.contains(&id), "--party {p}: {out}");
    }
}

#[test]
fn an_empty_file_is_refused_unless_allowed_and_an_empty_file_in_a_folder_is_a_warning() {
    let hub = Hub::start();
    let camden = Party::new(&hub, "camden");
    let empty = camden.file("fsm.csv", "");
    let e = empty.to_str().unwrap();
    let err = camden.fail_with(["send", "--to", "islington", e], 3, "empty_file");
    assert!(err.contains("fsm.csv is empty (0 bytes): nothing was sent") && err.contains("--allow-empty"), "{err}");
    assert_eq!(drops_on(&hub), "0");
    let out = camden.run(["send", "--to", "islington", "--allow-empty", e]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(drops_on(&hub), "1");

    // In a folder with data: sent, with a warning naming it.
    camden.file("export/data.csv", "a\n1\n");
    camden.file("export/notes.txt", "");
    let folder = camden.work().join("export");
    let out = camden.run(["send", "--to", "islington", folder.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("warning: export/notes.txt is empty (0 bytes)"), "{err}");
    assert_eq!(drops_on(&hub), "2");
}

#[test]
fn a_secret_key_is_never_sent_whatever_its_name() {
    let hub = Hub::start();
    let camden = Party::new(&hub, "camden");
    let key = std::fs::read(&camden.key).unwrap();
    // The user's own key, in a folder as `sealdrop init` leaves it, and
    // renamed to look like data.
    camden.file("project/data.csv", "a\n1\n");
    camden.file("project/.sealdrop/camden.key", &key);
    let folder = camden.work().join("project");
    let err = camden.fail_with(["send", "--to", "islington", folder.to_str().unwrap()], 3, "secret_key_in_drop");
    assert!(err.contains("camden.key is a secret key file: nothing was sent"), "{err}");
    let disguised = camden.file("totally-a-spreadsheet.csv", &key);
    camden.fail_with(["send", "--to", "islington", disguised.to_str().unwrap()], 3, "secret_key_in_drop");
    // An age identity file, as `age-keygen` writes it.
    let age = camden.file("id.txt", "# created: 2026-01-01T00:00:00Z\n# public key: age1xyz\nAGE-SECRET-KEY-1QQQQ\n");
    camden.fail_with(["send", "--to", "islington", age.to_str().unwrap()], 3, "secret_key_in_drop");
    // No flag lets one through.
    let (code, _) = camden.fail(["send", "--to", "islington", "--allow-secret-keys", disguised.to_str().unwrap()]);
    assert_eq!(code, 2);
    assert_eq!(drops_on(&hub), "0");
}

#[test]
fn sending_to_ones_own_party_needs_the_flag() {
    let hub = Hub::start();
    let camden = Party::new(&hub, "camden");
    let file = camden.file("fsm.csv", "a\n1\n");
    let f = file.to_str().unwrap();
    let err = camden.fail_with(["send", "--to", "islington,Camden", f], 3, "to_own_party");
    assert!(err.contains("camden is your own party: nothing was sent") && err.contains("--allow-own-party"), "{err}");
    assert_eq!(drops_on(&hub), "0");
    let out = camden.run(["send", "--to", "camden", "--allow-own-party", f]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(drops_on(&hub), "1");
}

/// A CSV as Excel's plain "CSV" writes it: Windows-1252, CRLF.
const CP1252: &[u8] = b"pupil_ref,name,notes,home_la\r\nSYN001,Zo\xeb,owes \xa35,islington\r\nSYN002,Jos\xe9,,hackney\r\nSYN003,Ren\xe9e,caf\xe9,islington\r\n";

#[test]
fn a_windows_1252_csv_is_refused_unless_its_encoding_is_given_and_then_arrives_as_utf8() {
    let hub = Hub::start();
    let camden = Party::new(&hub, "camden");
    let input = camden.file("fsm.csv", CP1252);
    let i = input.to_str().unwrap();

    // Split: refused before anything is planned or sent.
    let err = camden.fail_with(["send", "--split-by", "home_la", "--yes", i], 3, "not_utf8");
    assert!(err.contains("fsm.csv line 2 is not UTF-8 (Excel's \"CSV\" is Windows-1252)"), "{err}");
    assert!(err.contains("--encoding windows-1252"), "{err}");
    // A plain send of the .csv too.
    camden.fail_with(["send", "--to", "islington", i], 3, "not_utf8");
    camden.fail_with(["send", "--to", "islington", "--encoding", "klingon", i], 3, "bad_encoding");
    assert_eq!(drops_on(&hub), "0");

    // With its encoding: split, converted, and the recipient gets UTF-8.
    let out = camden.run(["send", "--split-by", "home_la", "--yes", "--encoding", "windows-1252", i]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("as windows-1252: the parts are sent converted to UTF-8"), "{err}");
    assert_eq!(drops_on(&hub), "2");
    let islington = Party::new(&hub, "islington");
    let merged = islington.work().join("merged.csv");
    islington.ok([
        "fetch",
        "--all",
        "-o",
        islington.work().join("in").to_str().unwrap(),
        "--merge-csv",
        merged.to_str().unwrap(),
    ]);
    let text = String::from_utf8(std::fs::read(&merged).unwrap()).expect("the merged file is UTF-8");
    assert!(text.contains("SYN001,Zoë,owes £5,islington"), "{text}");
    assert!(text.contains("SYN003,Renée,café,islington"), "{text}");
    assert!(!text.contains("José"), "hackney's row went to islington: {text}");

    // A plain send with its encoding: converted too, under the same name.
    let out = camden.run(["send", "--to", "hackney", "--encoding", "cp1252", i]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("from windows-1252 to UTF-8"), "{err}");
    let id = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    let hackney = Party::new(&hub, "hackney");
    let dest = hackney.work().join("in");
    hackney.fetch(&id, &dest);
    let got = String::from_utf8(std::fs::read(dest.join("fsm.csv")).unwrap()).expect("UTF-8");
    assert!(got.starts_with("pupil_ref,name,notes,home_la\r\nSYN001,Zoë,owes £5,islington\r\n"), "{got}");
    assert!(sealdrop_e2e::list_dir(&camden.state.join("spool")).is_empty(), "the converted copy was left behind");

    // A UTF-8 file (with a BOM) is never refused, and never converted.
    let utf8 = camden.file("ok.csv", "\u{feff}pupil_ref,name,home_la\r\nSYN004,Zoë,islington\r\n");
    let out = camden.run(["send", "--to", "islington", "--encoding", "windows-1252", utf8.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(!String::from_utf8_lossy(&out.stderr).contains("converted"));
}
