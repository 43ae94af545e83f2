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
