//! File names are text a sender chose, and a terminal acts on some
//! characters: control characters (C0, C1, DEL) can clear the screen,
//! rewrite a line or print a fake `fetched ...` report; a bidirectional
//! override shows `invoice-\u{202e}vsc.exe` as `invoice-exe.csv`. `send`
//! refuses such names (and `fetch` refuses them in a drop: see
//! `malicious_sender.rs`); every name a command prints is escaped, including
//! names a journal holds from before these checks.

use sealdrop_e2e::{Hub, Party, read_text};

/// Whether `text` holds a character a terminal could act on or reorder
/// text by, other than the line feeds that end its lines.
fn acts_on_a_terminal(text: &str) -> bool {
    text.chars().any(|c| {
        (c.is_control() && c != '\n')
            || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{200e}' | '\u{200f}')
    })
}

const HOSTILE: [&str; 3] = [
    "report\u{1b}[2J\u{1b}[H.csv",
    "a.csv\nfetched d-aaaaaaaaaaaaaaaaaaaaaaaaaa from camden: 1 file(s)",
    "invoice-\u{202e}vsc.exe",
];

#[test]
fn send_refuses_names_with_control_characters_or_bidi_overrides() {
    let hub = Hub::start();
    let camden = Party::new(&hub, "camden");
    let islington = Party::new(&hub, "islington");
    for name in HOSTILE.iter().chain(&["c1\u{9b}31m.csv", "del\u{7f}.csv"]) {
        let file = camden.file(&format!("out/{}", name.replace('/', "_")), "upn\nA1\n");
        let (exit, stderr) = camden
            .fail_code(["send".as_ref(), "--to".as_ref(), "islington".as_ref(), file.as_os_str()], "unsupported_file");
        assert_eq!(exit, 3, "{stderr}");
        assert!(stderr.contains("rename it"), "{stderr}");
        assert!(!acts_on_a_terminal(&stderr), "the refusal printed the name raw: {stderr:?}");
        std::fs::remove_file(&file).unwrap();
    }
    // Nor does `send --split-by` name its parts after such a file.
    let table = camden.file("out/fsm\u{1b}[2J.csv", "upn,home_la\nA1,Islington\n");
    let (exit, stderr) = camden.fail_code(
        ["send".as_ref(), "--split-by".as_ref(), "home_la".as_ref(), "--yes".as_ref(), table.as_os_str()],
        "unsupported_file",
    );
    assert_eq!(exit, 3, "{stderr}");
    assert!(!acts_on_a_terminal(&stderr), "the refusal printed the name raw: {stderr:?}");
    assert!(islington.inbox_ids().is_empty(), "a drop was sent");
}

/// Appends to `party`'s journal a copy of its last `event` entry with
/// `names` in place of its names, as a journal written by an older release
/// (which took such names) would hold.
fn journal_entry_with_names(party: &Party, event: &str, names: &[&str]) {
    let path = party.state.join("journal.jsonl");
    let text = read_text(&path);
    let line = text.lines().rev().find(|l| l.contains(&format!("\"event\":\"{event}\""))).expect("an entry");
    let mut entry: serde_json::Value = serde_json::from_str(line).unwrap();
    entry["names"] = serde_json::json!(names);
    let mut text = text.clone();
    text.push_str(&format!("{entry}\n"));
    std::fs::write(&path, text).unwrap();
}

#[test]
fn names_a_journal_holds_are_printed_escaped_by_journal_and_status() {
    let hub = Hub::start();
    let camden = Party::new(&hub, "camden");
    let islington = Party::new(&hub, "islington");
    let id = camden.send("islington", &[&camden.file("fsm.csv", "upn\nA1\n")]);
    islington.fetch(&id, &islington.work().join("in"));
    journal_entry_with_names(&islington, "received", &HOSTILE);
    journal_entry_with_names(&camden, "sent", &HOSTILE);

    let journal = islington.ok(["journal"]);
    assert!(!acts_on_a_terminal(&journal), "journal printed a name raw: {journal:?}");
    assert_eq!(journal.lines().count(), 2, "a name made its own line: {journal}");
    assert!(journal.contains("report\\u{1b}[2J\\u{1b}[H.csv"), "{journal}");
    assert!(journal.contains("invoice-\\u{202e}vsc.exe"), "{journal}");
    assert!(!journal.lines().any(|l| l.starts_with("fetched")), "{journal}");

    let journal = camden.ok(["journal"]);
    assert!(!acts_on_a_terminal(&journal), "journal printed a name raw: {journal:?}");
    let status = camden.ok(["status", id.as_str()]);
    assert!(!acts_on_a_terminal(&status), "status printed a name raw: {status:?}");
    assert!(status.contains("a.csv\\u{a}fetched d-"), "{status}");
}
