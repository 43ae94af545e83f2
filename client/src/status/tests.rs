//! Tests of `status`: outcomes, the text report and `--json`.

use super::text::deletion;
use super::*;
use crate::status_log::Backed;
use sealdrop_proto::api::{DropState, RecipientStatus};

fn t(s: &str) -> Timestamp {
    s.parse().unwrap()
}

fn r(party: &str, fetched: Option<&str>, acknowledged: Option<&str>) -> RecipientStatus {
    RecipientStatus {
        party: party.parse().unwrap(),
        fetched: fetched.map(t),
        acknowledged: acknowledged.map(t),
        acknowledged_by: acknowledged.map(|_| "data-team".to_owned()),
        fetched_log_index: fetched.map(|_| 2),
        acknowledged_log_index: acknowledged.map(|_| 3),
    }
}

fn drop(state: DropState, recipients: Vec<RecipientStatus>, deleted: Option<&str>) -> SentDrop {
    SentDrop {
        id: DropId::random(),
        state,
        agreement: "london-fsm".into(),
        size: 12_500,
        created: t("2026-11-15T09:59:00Z"),
        committed: (state != DropState::Open).then(|| t("2026-11-15T10:00:00Z")),
        expires: t("2026-11-20T10:00:00Z"),
        recipients,
        idempotency_key: None,
        deleted: deleted.map(t),
        committed_log_index: (state != DropState::Open).then_some(1),
        deleted_log_index: deleted.map(|_| 4),
    }
}

/// `d` with everything the hub says backed by the log.
fn backed(d: &SentDrop) -> View {
    let backed = Backed {
        committed: d.committed,
        manifest_key: None,
        deleted: d.deleted.map(|at| {
            let reason = match d.state {
                DropState::Recalled => sealdrop_log::entry::DeletionReason::Recalled,
                DropState::Delivered => sealdrop_log::entry::DeletionReason::Delivered,
                _ => sealdrop_log::entry::DeletionReason::Expired,
            };
            (reason, at)
        }),
        recipients: d
            .recipients
            .iter()
            .map(|r| crate::status_log::BackedRecipient {
                fetched: r.fetched,
                acknowledged: r.acknowledged.map(|at| (at, "data-team".to_owned())),
                acknowledged_key: None,
                problem: None,
                revoked_key: None,
            })
            .collect(),
        problems: vec![],
    };
    View { claimed: d.clone(), backed, stranded: HashMap::new() }
}

fn views(drops: &[SentDrop]) -> Vec<View> {
    drops.iter().map(backed).collect()
}

const F: Option<&str> = Some("2026-11-16T08:00:00Z");
const A: Option<&str> = Some("2026-11-16T08:01:00Z");

#[test]
fn status_outcome_for_every_state_and_recipient_progress() {
    use DropState::*;
    use Outcome as O;
    let nothing = r("islington", None, None);
    let fetched = r("islington", F, None);
    let acked = r("islington", F, A);
    let cases = [
        (Open, &nothing, O::Waiting),
        (Committed, &nothing, O::Waiting),
        (Committed, &fetched, O::Fetched),
        (Committed, &acked, O::Acknowledged),
        (Delivered, &acked, O::Acknowledged),
        (Delivered, &nothing, O::NotDelivered),
        (Expired, &nothing, O::NotDelivered),
        (Expired, &fetched, O::NotDelivered),
        (Expired, &acked, O::Acknowledged),
        (Recalled, &nothing, O::Recalled),
        (Recalled, &fetched, O::Recalled),
    ];
    for (state, rec, want) in cases {
        assert_eq!(outcome(state, rec), want, "{state:?} {rec:?}");
    }
}

#[test]
fn status_expired_with_partial_acknowledgement_says_who_did_not_get_it() {
    let d = drop(
        DropState::Expired,
        vec![r("hackney", F, A), r("islington", None, None), r("camden", F, None)],
        Some("2026-11-20T10:00:03Z"),
    );
    assert_eq!(
        recipient_line(&d, &d.recipients[0], None),
        "acknowledged 2026-11-16T08:01:00Z by data-team (fetched 2026-11-16T08:00:00Z)"
    );
    assert_eq!(
        recipient_line(&d, &d.recipients[1], None),
        "NOT DELIVERED: expired 2026-11-20T10:00:00Z before islington acknowledged"
    );
    let camden = recipient_line(&d, &d.recipients[2], None);
    assert!(camden.starts_with("NOT DELIVERED: expired 2026-11-20T10:00:00Z before camden acknowledged"));
    assert!(camden.contains("downloaded the ciphertext at 2026-11-16T08:00:00Z"), "{camden}");
    assert_eq!(
        deletion(&d),
        "ciphertext deleted 2026-11-20T10:00:03Z: it expired at 2026-11-20T10:00:00Z before every recipient acknowledged"
    );

    let text = render(&views(std::slice::from_ref(&d)), &[], &HashMap::new());
    assert!(text.contains(&format!("{}  expired  london-fsm  12.2 KiB  committed 2026-11-15T10:00:00Z", d.id)));
    assert!(text.lines().any(|l| l.trim_start().starts_with("islington") && l.contains("NOT DELIVERED")));
    assert_eq!(text.lines().last().unwrap(), "1 drop: 1 expired; 2 non-deliveries");

    let json = to_json(&views(std::slice::from_ref(&d)), &[], &HashMap::new());
    let outcomes: Vec<&str> =
        json[0]["recipients"].as_array().unwrap().iter().map(|r| r["outcome"].as_str().unwrap()).collect();
    assert_eq!(outcomes, ["acknowledged", "not_delivered", "not_delivered"]);
    assert_eq!(json[0]["state"], "expired");
    assert_eq!(json[0]["deleted"], "2026-11-20T10:00:03Z");
    assert!(json[0]["files"].is_null());
    let mut keys: Vec<&str> = json[0].as_object().unwrap().keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "agreement",
            "claimed_state",
            "committed",
            "created",
            "deleted",
            "expires",
            "files",
            "id",
            "idempotency_key",
            "manifest_key_fingerprint",
            "problems",
            "recipients",
            "size",
            "state",
            "verified"
        ]
    );
    let mut keys: Vec<&str> = json[0]["recipients"][0].as_object().unwrap().keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "acknowledged",
            "acknowledged_by",
            "claimed_outcome",
            "fetched",
            "outcome",
            "party",
            "problem",
            "reason",
            "receipt_key_fingerprint",
            "revoked_key_warning"
        ]
    );
}

#[test]
fn status_expired_early_blames_the_agreement() {
    let d = drop(DropState::Expired, vec![r("islington", None, None)], Some("2026-11-18T00:00:00Z"));
    assert!(deletion(&d).contains("the agreement ended"), "{}", deletion(&d));
    assert_eq!(
        recipient_line(&d, &d.recipients[0], None),
        "NOT DELIVERED: deleted 2026-11-18T00:00:00Z when the agreement ended, before islington acknowledged"
    );
}

#[test]
fn status_recall_after_a_fetch_warns_of_a_copy() {
    let d = drop(
        DropState::Recalled,
        vec![r("islington", F, None), r("hackney", None, None)],
        Some("2026-11-17T12:00:00Z"),
    );
    let line = recipient_line(&d, &d.recipients[0], None);
    assert!(line.contains("downloaded it at 2026-11-16T08:00:00Z before the recall and may hold a copy"), "{line}");
    assert_eq!(recipient_line(&d, &d.recipients[1], None), "recalled before hackney fetched it");
    assert_eq!(deletion(&d), "ciphertext deleted 2026-11-17T12:00:00Z: you recalled it");
    assert_eq!(summary(&views(std::slice::from_ref(&d)), 0), "1 drop: 1 recalled; 0 non-deliveries");
    let json = to_json(&views(std::slice::from_ref(&d)), &[], &HashMap::new());
    assert_eq!(json[0]["recipients"][0]["outcome"], "recalled");
    assert_eq!(json[0]["recipients"][0]["fetched"], "2026-11-16T08:00:00Z");
}

#[test]
fn status_shows_waiting_fetched_open_and_journal_names() {
    let committed = drop(DropState::Committed, vec![r("islington", F, None), r("hackney", None, None)], None);
    let open = drop(DropState::Open, vec![r("islington", None, None)], None);
    let delivered = drop(DropState::Delivered, vec![r("islington", F, A)], Some("2026-11-16T08:01:00Z"));
    let drops = vec![committed.clone(), open.clone(), delivered.clone()];
    let names = HashMap::from([(committed.id.clone(), vec!["fsm.csv".to_owned(), "notes".to_owned()])]);
    let text = render(&views(&drops), &[], &names);
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines[0].ends_with("expires 2026-11-20T10:00:00Z  files: fsm.csv, notes"), "{}", lines[0]);
    assert!(lines[1].contains("islington") && lines[1].ends_with("fetched 2026-11-16T08:00:00Z, not yet acknowledged"));
    assert!(lines[2].contains("hackney") && lines[2].ends_with("  waiting"), "{}", lines[2]);
    assert!(lines[3].contains("  open  ") && lines[3].contains("not committed"), "{}", lines[3]);
    assert!(lines[4].ends_with("waiting (the drop is not committed yet)"));
    assert!(lines[5].contains("  delivered  "));
    assert_eq!(lines[6], "    ciphertext deleted 2026-11-16T08:01:00Z: every recipient acknowledged");
    assert_eq!(lines.last().unwrap(), &"3 drops: 1 open, 1 committed, 1 delivered; 0 non-deliveries");

    let json = to_json(&views(&drops), &[], &names);
    assert_eq!(json[0]["files"], serde_json::json!(["fsm.csv", "notes"]));
    assert_eq!(json[0]["recipients"][0]["outcome"], "fetched");
    assert_eq!(json[0]["recipients"][1]["outcome"], "waiting");
    assert_eq!(json[1]["recipients"][0]["outcome"], "waiting");
    assert!(json[1]["committed"].is_null());
    assert_eq!(json[2]["recipients"][0]["outcome"], "acknowledged");
    assert_eq!(json[2]["recipients"][0]["acknowledged_by"], "data-team");
    assert_eq!(json[2]["verified"], true);
    assert_eq!(render(&[], &[], &names), "no drops sent");
}

#[test]
fn status_names_the_key_each_receipt_and_the_manifest_verified_with() {
    // islington/data-team's key replaced (a lost laptop): the same
    // member name acknowledged one drop with the old key, one with the new.
    const OLD: &str = "SHA256:00112233445566778899aabbccddeeff";
    const NEW: &str = "SHA256:ffeeddccbbaa99887766554433221100";
    const MINE: &str = "SHA256:0123456789abcdef0123456789abcdef";
    let before = drop(DropState::Delivered, vec![r("islington", F, A)], Some("2026-11-16T08:01:00Z"));
    let after = drop(DropState::Committed, vec![r("islington", F, A), r("hackney", None, None)], None);
    let mut views = views(&[before, after]);
    for (v, key) in views.iter_mut().zip([OLD, NEW]) {
        v.backed.manifest_key = Some(MINE.into());
        v.backed.recipients[0].acknowledged_key = Some(key.into());
    }
    let json = to_json(&views, &[], &HashMap::new());
    for (d, key) in json.as_array().unwrap().iter().zip([OLD, NEW]) {
        assert_eq!(d["manifest_key_fingerprint"], MINE, "{d}");
        assert_eq!(d["recipients"][0]["acknowledged_by"], "data-team");
        assert_eq!(d["recipients"][0]["receipt_key_fingerprint"], key, "{d}");
    }
    assert!(json[1]["recipients"][1]["receipt_key_fingerprint"].is_null(), "no receipt, no key");
    let text = render(&views, &[], &HashMap::new());
    let acks: Vec<&str> = text.lines().filter(|l| l.trim_start().starts_with("islington")).collect();
    assert!(acks[0].ends_with(&format!("by data-team (key {OLD}) (fetched 2026-11-16T08:00:00Z)")), "{text}");
    assert!(acks[1].contains(&format!("by data-team (key {NEW})")), "{text}");
    assert!(text.lines().next().unwrap().ends_with(&format!("  signed with key {MINE}")), "{text}");
}

#[test]
fn status_filters_by_creation_time_and_agreement() {
    let d = drop(DropState::Committed, vec![], None);
    let req = |since: Option<&str>, agreement: Option<&str>| StatusRequest {
        id: None,
        since: since.map(t),
        agreement: agreement.map(str::to_owned),
    };
    assert!(keep(&req(None, None), &d));
    assert!(keep(&req(Some("2026-11-15T09:59:00Z"), None), &d));
    assert!(!keep(&req(Some("2026-11-15T09:59:01Z"), None), &d));
    assert!(keep(&req(None, Some("london-fsm")), &d));
    assert!(!keep(&req(None, Some("london-sen")), &d));
}

#[test]
fn status_shows_a_claim_the_log_does_not_back_as_the_hubs_word() {
    let d = drop(DropState::Delivered, vec![r("islington", F, A), r("hackney", F, A)], Some("2026-11-16T08:01:00Z"));
    let mut v = backed(&d);
    // The log holds islington's download but no receipt, and no deletion.
    v.backed.recipients[0].acknowledged = None;
    v.backed.recipients[0].problem =
        Some("the hub says acknowledged at 2026-11-16T08:01:00Z by data-team; no receipt in the log".into());
    v.backed.deleted = None;
    v.backed.problems.push("the hub says delivered; no deletion in the log (no entry)".into());
    assert!(!v.backed.is_backed());
    let text = render(std::slice::from_ref(&v), &[], &HashMap::new());
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines[0].contains("  UNBACKED (the hub says delivered)  "), "{text}");
    assert_eq!(lines[1], "    the hub says delivered; no deletion in the log (no entry)");
    assert!(lines[2].trim_start().starts_with("islington") && lines[2].contains("no receipt in the log"), "{text}");
    assert!(lines[3].contains("acknowledged 2026-11-16T08:01:00Z by data-team"), "{text}");
    assert!(lines.last().unwrap().ends_with("; 2 claims NOT BACKED BY THE HUB'S SIGNED LOG"), "{text}");
    let json = to_json(std::slice::from_ref(&v), &[], &HashMap::new());
    assert_eq!((json[0]["state"].as_str(), json[0]["claimed_state"].as_str()), (Some("unbacked"), Some("delivered")));
    assert_eq!(json[0]["verified"], false);
    assert_eq!(json[0]["problems"].as_array().unwrap().len(), 2);
    assert!(json[0]["deleted"].is_null(), "no deletion is shown that the log does not hold");
    let isl = &json[0]["recipients"][0];
    assert_eq!((isl["outcome"].as_str(), isl["claimed_outcome"].as_str()), (Some("unbacked"), Some("acknowledged")));
    assert!(isl["acknowledged"].is_null() && isl["acknowledged_by"].is_null());
    assert!(isl["problem"].as_str().unwrap().contains("no receipt in the log"));
    assert_eq!(isl["fetched"], "2026-11-16T08:00:00Z", "the download the log holds is shown");
    assert_eq!(json[0]["recipients"][1]["outcome"], "acknowledged");
}

#[test]
fn status_reports_a_committed_drop_the_hub_no_longer_lists() {
    let id = DropId::random();
    let sent = crate::journal::Sent {
        drop: id.clone(),
        recipients: vec!["islington".parse().unwrap()],
        agreement: "london-fsm".into(),
        names: vec!["fsm.csv".into()],
        plaintext_bytes: None,
        ciphertext_sha256: "ab".repeat(32),
        ciphertext_len: 900,
        created: t("2026-11-15T09:59:00Z"),
        committed: t("2026-11-15T10:00:00Z"),
        expires: t("2026-11-20T10:00:00Z"),
        log_index: 7,
        receipt: None,
        manifest_key_fingerprint: None,
    };
    let journal = crate::journal::Journal {
        entries: vec![crate::journal::Entry {
            v: 1,
            time: t("2026-11-15T10:00:01Z"),
            event: crate::journal::Event::Sent(sent),
        }],
        ..Default::default()
    };
    assert!(crate::status_log::missing(&journal, std::slice::from_ref(&id), |_| true).is_empty());
    let missing = crate::status_log::missing(&journal, &[], |_| true);
    assert_eq!(missing.len(), 1);
    let text = render(&[], &missing, &HashMap::new());
    assert!(text.starts_with(&format!("{id}  MISSING  london-fsm")), "{text}");
    assert!(text.contains("(log entry 7)") && text.contains("the hub no longer lists it"), "{text}");
    assert_eq!(
        text.lines().last().unwrap(),
        "1 drop: 1 missing; 0 non-deliveries; 1 claim NOT BACKED BY THE HUB'S SIGNED LOG"
    );
    let json = to_json(&[], &missing, &HashMap::new());
    assert_eq!((json[0]["state"].as_str(), json[0]["verified"].as_bool()), (Some("missing"), Some(false)));
    assert!(json[0]["claimed_state"].is_null());
    assert_eq!(json[0]["recipients"][0]["outcome"], "unbacked");
}

#[test]
fn status_marks_a_recipient_that_can_never_fetch_as_undeliverable_with_why() {
    let d = drop(DropState::Committed, vec![r("islington", None, None), r("hackney", F, A)], None);
    let mut v = backed(&d);
    let why = "encrypted only to islington/data-team's revoked key (revoked 2026-11-20: laptop stolen), so islington can never fetch it";
    v.stranded.insert("islington".parse().unwrap(), why.to_owned());
    // An acknowledged recipient is never stranded, whatever became of its keys since.
    v.stranded.insert("hackney".parse().unwrap(), "stale".to_owned());
    let json = to_json(std::slice::from_ref(&v), &[], &HashMap::new());
    let isl = &json[0]["recipients"][0];
    assert_eq!((isl["outcome"].as_str(), isl["claimed_outcome"].as_str()), (Some("undeliverable"), Some("waiting")));
    assert_eq!(isl["reason"], why);
    assert_eq!(json[0]["recipients"][1]["outcome"], "acknowledged");
    assert!(json[0]["recipients"][1]["reason"].is_null());
    let text = render(std::slice::from_ref(&v), &[], &HashMap::new());
    let line = text.lines().find(|l| l.trim_start().starts_with("islington")).unwrap();
    assert!(line.ends_with(&format!("UNDELIVERABLE: {why}")), "{text}");
    assert!(!text.contains("stale"), "{text}");
    assert_eq!(
        text.lines().last().unwrap(),
        "1 drop: 1 committed; 0 non-deliveries; 1 UNDELIVERABLE (recall and send again)"
    );
}
