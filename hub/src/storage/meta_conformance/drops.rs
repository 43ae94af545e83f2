//! The metadata stores' [`DropStore`] behaviour, run on every store (see
//! the module above): the drop state machine's conditional steps and the log
//! entries they append.

use sealdrop_proto::api::DropState;
use sealdrop_proto::ids::DropId;

use super::MetaUnderTest;
use super::fixtures::*;
use crate::storage::meta::{
    AckOutcome, AckRecord, CommitRecord, CreateOutcome, EndOutcome, FetchOutcome, MetaError, NewDrop, SweepItem,
};

pub(super) async fn commit_requires_open_and_matching_upload(s: &dyn MetaUnderTest) {
    let d = new_drop(&["islington"]);
    s.create_drop(&d).await.unwrap();
    let rec = s.drop_record(&d.id).await.unwrap().unwrap();
    assert_eq!(rec.state, DropState::Open);
    assert_eq!(rec.recipients.len(), 1);
    let c = commit_record("other");
    assert_eq!(s.commit_drop(&d.id, &c, Box::new(key().clone())).await.unwrap(), None, "no upload yet");
    s.set_upload(&d.id, Some(&digest("b", 10)), 2000).await.unwrap();
    assert_eq!(s.commit_drop(&d.id, &c, Box::new(key().clone())).await.unwrap(), None, "upload changed");
    assert_eq!(s.log_size().await.unwrap(), 0, "refused commits are not logged");
    s.set_upload(&d.id, Some(&digest("a", 10)), 2000).await.unwrap();
    assert_eq!(s.commit_drop(&d.id, &c, Box::new(key().clone())).await.unwrap(), Some(0));
    let rec = s.drop_record(&d.id).await.unwrap().unwrap();
    assert_eq!(rec.state, DropState::Committed);
    assert_eq!(rec.content, Some(digest("a", 10)));
    assert_eq!(rec.upload, None);
    assert_eq!(rec.committed, Some(2000));
    assert_eq!(rec.sender_member.as_str(), "other");
    assert_eq!(s.commit_drop(&d.id, &c, Box::new(key().clone())).await.unwrap(), None, "already committed");
    assert!(!s.set_upload(&d.id, Some(&digest("c", 1)), 2000).await.unwrap(), "no upload after commit");
    assert_eq!(entries(s).await, ["{\"commit\":1}"]);
    assert_checkpointed(s).await;
}

pub(super) async fn ack_transaction_delivers_after_the_last_party(s: &dyn MetaUnderTest) {
    let d = new_drop(&["islington", "hackney"]);
    s.create_drop(&d).await.unwrap();
    assert_eq!(
        s.acknowledge(&d.id, &ack("islington"), Box::new(key().clone())).await.unwrap(),
        AckOutcome::NotCommitted
    );
    assert_eq!(commit(s, &d).await, 0);
    let not_recipient = s.acknowledge(&d.id, &ack("barnet"), Box::new(key().clone())).await.unwrap();
    assert_eq!(not_recipient, AckOutcome::NotCommitted, "not a recipient");
    let not_downloaded = s.acknowledge(&d.id, &ack("islington"), Box::new(key().clone())).await.unwrap();
    assert_eq!(not_downloaded, AckOutcome::NotDownloaded, "no download of it by islington is logged");
    assert_eq!(s.log_size().await.unwrap(), 1, "nothing logged");
    assert_eq!(
        s.record_fetch(&d.id, &fetch("islington", 2500), Box::new(key().clone())).await.unwrap(),
        FetchOutcome::Recorded { log_index: 1 }
    );
    assert_eq!(
        s.record_fetch(&d.id, &fetch("hackney", 2600), Box::new(key().clone())).await.unwrap(),
        FetchOutcome::Recorded { log_index: 2 }
    );
    let first = s.acknowledge(&d.id, &ack("islington"), Box::new(key().clone())).await.unwrap();
    assert_eq!(first, AckOutcome::Recorded { delivered: false, log_index: 3 });
    let again = s.acknowledge(&d.id, &ack("islington"), Box::new(key().clone())).await.unwrap();
    assert_eq!(again, AckOutcome::AlreadyAcknowledged);
    assert_eq!(s.drop_state(&d.id).await.unwrap(), Some(DropState::Committed));
    let last = s.acknowledge(&d.id, &ack("hackney"), Box::new(key().clone())).await.unwrap();
    assert_eq!(last, AckOutcome::Recorded { delivered: true, log_index: 4 });
    let rec = s.drop_record(&d.id).await.unwrap().unwrap();
    assert_eq!(rec.state, DropState::Delivered);
    assert_eq!((rec.commit_index, rec.end_index), (Some(0), Some(5)), "where the log records it");
    let r = rec.recipient(&party("islington")).unwrap();
    assert_eq!(r.acknowledged, Some(3000));
    assert_eq!(r.receipt.as_deref(), Some("r"));
    assert_eq!(r.ack_member.as_ref().map(|m| m.as_str()), Some("data-team"));
    assert_eq!((r.downloads, r.fetch_index, r.ack_index), (1, Some(1), Some(3)));
    let h = rec.recipient(&party("hackney")).unwrap();
    assert_eq!((h.downloads, h.fetch_index, h.ack_index), (1, Some(2), Some(4)));
    // The last acknowledgement and the deletion share one checkpoint.
    assert_eq!(
        entries(s).await,
        [
            "{\"commit\":1}",
            "{\"fetch\":\"islington\"}",
            "{\"fetch\":\"hackney\"}",
            "{\"ack\":\"islington\"}",
            "{\"ack\":\"hackney\"}",
            "{\"deleted\":1}"
        ]
    );
    assert_eq!(assert_checkpointed(s).await, 6);
    assert!(s.checkpoint(5).await.unwrap().is_none(), "no checkpoint between the two entries of one change");
    assert!(s.checkpoint(4).await.unwrap().is_some());
}

pub(super) async fn downloads_are_counted_and_bounded_per_party(s: &dyn MetaUnderTest) {
    use sealdrop_log::policy::MAX_DOWNLOADS_PER_PARTY;
    let d = new_drop(&["islington", "hackney"]);
    created(s.create_drop(&d).await.unwrap());
    commit(s, &d).await;
    for n in 0..MAX_DOWNLOADS_PER_PARTY {
        let recorded =
            s.record_fetch(&d.id, &fetch("islington", 2000 + n as i64), Box::new(key().clone())).await.unwrap();
        assert_eq!(recorded, FetchOutcome::Recorded { log_index: 1 + n });
    }
    let size = s.log_size().await.unwrap();
    let refused = s.record_fetch(&d.id, &fetch("islington", 2100), Box::new(key().clone())).await.unwrap();
    assert_eq!(refused, FetchOutcome::LimitReached { downloads: MAX_DOWNLOADS_PER_PARTY });
    assert_eq!(s.log_size().await.unwrap(), size, "nothing logged");
    let r = s.drop_record(&d.id).await.unwrap().unwrap();
    let islington = r.recipient(&party("islington")).unwrap();
    assert_eq!((islington.downloads, islington.fetch_index, islington.fetched), (10, Some(1), Some(2000)));
    // Another party has its own count.
    assert!(matches!(
        s.record_fetch(&d.id, &fetch("hackney", 2100), Box::new(key().clone())).await.unwrap(),
        FetchOutcome::Recorded { .. }
    ));
    assert_checkpointed(s).await;
}

pub(super) async fn inbox_and_sent(s: &dyn MetaUnderTest) {
    let a = new_drop(&["islington"]);
    let mut b = new_drop(&["islington", "hackney"]);
    b.created = 1500;
    let open = new_drop(&["islington"]);
    let mut expired = new_drop(&["islington"]);
    expired.expires = 2500;
    for d in [&a, &b, &open, &expired] {
        s.create_drop(d).await.unwrap();
    }
    commit(s, &b).await;
    commit(s, &a).await;
    commit(s, &expired).await;
    let inbox: Vec<DropId> = s.inbox(&party("islington"), 3000).await.unwrap().into_iter().map(|d| d.id).collect();
    assert_eq!(inbox.len(), 2);
    assert!(inbox.contains(&a.id) && inbox.contains(&b.id), "open and expired drops are not listed");
    assert_eq!(s.inbox(&party("hackney"), 3000).await.unwrap().len(), 1);
    assert_eq!(s.inbox(&party("barnet"), 3000).await.unwrap().len(), 0);
    s.record_fetch(&a.id, &fetch("islington", 2050), Box::new(key().clone())).await.unwrap();
    s.acknowledge(&a.id, &ack("islington"), Box::new(key().clone())).await.unwrap();
    assert_eq!(s.inbox(&party("islington"), 3000).await.unwrap().len(), 1, "acknowledged drops leave the inbox");

    let before = s.log_size().await.unwrap();
    assert_eq!(
        s.record_fetch(&b.id, &fetch("hackney", 2100), Box::new(key().clone())).await.unwrap(),
        FetchOutcome::Recorded { log_index: before }
    );
    assert_eq!(
        s.record_fetch(&b.id, &fetch("hackney", 2200), Box::new(key().clone())).await.unwrap(),
        FetchOutcome::Recorded { log_index: before + 1 },
        "every fetch is logged"
    );
    let sent = s.sent(&party("camden"), None).await.unwrap();
    assert_eq!(sent.len(), 4);
    assert_eq!(sent[0].drop.id, b.id, "newest first");
    assert_eq!(sent[0].idempotency_key, None);
    let one = s.sent(&party("camden"), Some(&b.id)).await.unwrap();
    assert_eq!(one.len(), 1);
    let one = &one[0].drop;
    assert_eq!(one.recipient(&party("hackney")).unwrap().fetched, Some(2100), "first fetch time kept");
    assert_eq!(one.recipients[0].party.as_str(), "islington", "recipients keep the sender's order");
    assert!(s.sent(&party("islington"), Some(&b.id)).await.unwrap().is_empty());
    assert_checkpointed(s).await;
}

/// Returns the replaced drop's id, for each store's own check that its
/// recipients' rows went too and that its unique index holds against a
/// writer that skips the lookup (`sqlite/tests.rs`, `postgres/tests.rs`).
pub(in crate::storage) async fn an_idempotency_key_keeps_one_drop_per_party(s: &dyn MetaUnderTest) -> DropId {
    let first = keyed_drop("camden", "a");
    assert_eq!(created(s.create_drop(&first).await.unwrap()), None);
    assert_eq!(s.drop_by_idempotency_key(&party("camden"), &"a".repeat(64)).await.unwrap().unwrap().id, first.id);
    assert_eq!(s.drop_by_idempotency_key(&party("hackney"), &"a".repeat(64)).await.unwrap(), None, "per party");
    assert_eq!(s.drop_by_idempotency_key(&party("camden"), &"b".repeat(64)).await.unwrap(), None);

    // Open: replaced, rows and all.
    s.set_upload(&first.id, Some(&digest("a", 10)), 2000).await.unwrap();
    let second = keyed_drop("camden", "a");
    assert_eq!(created(s.create_drop(&second).await.unwrap()), Some(first.id.clone()));
    assert_eq!(s.drop_record(&first.id).await.unwrap(), None);
    let sent = s.sent(&party("camden"), None).await.unwrap();
    assert_eq!(sent.len(), 1);
    assert_eq!((&sent[0].drop.id, sent[0].idempotency_key.as_deref()), (&second.id, Some(&*"a".repeat(64))));

    // Another party, or no key, or another key: independent.
    assert_eq!(created(s.create_drop(&keyed_drop("hackney", "a")).await.unwrap()), None);
    assert_eq!(created(s.create_drop(&keyed_drop("camden", "b")).await.unwrap()), None);
    assert_eq!(created(s.create_drop(&new_drop(&["islington"])).await.unwrap()), None);
    assert_eq!(created(s.create_drop(&new_drop(&["islington"])).await.unwrap()), None);

    // Committed (and later): returned, nothing stored, nothing logged.
    commit(s, &second).await;
    let size = s.log_size().await.unwrap();
    let third = keyed_drop("camden", "a");
    let CreateOutcome::AlreadyCommitted(rec) = s.create_drop(&third).await.unwrap() else { panic!("not returned") };
    assert_eq!((rec.id, rec.state, rec.committed), (second.id.clone(), DropState::Committed, Some(2000)));
    assert_eq!(s.drop_record(&third.id).await.unwrap(), None);
    assert_eq!(s.log_size().await.unwrap(), size);
    s.record_fetch(&second.id, &fetch("islington", 2500), Box::new(key().clone())).await.unwrap();
    s.acknowledge(&second.id, &ack("islington"), Box::new(key().clone())).await.unwrap();
    let CreateOutcome::AlreadyCommitted(rec) = s.create_drop(&third).await.unwrap() else { panic!("not returned") };
    assert_eq!((rec.id, rec.state), (second.id.clone(), DropState::Delivered));
    assert_eq!(s.sent(&party("camden"), None).await.unwrap().len(), 4);
    first.id
}

pub(super) async fn a_failed_append_rolls_back_the_state_change(s: &dyn MetaUnderTest) {
    let d = new_drop(&["islington"]);
    s.create_drop(&d).await.unwrap();
    s.set_upload(&d.id, Some(&digest("a", 10)), 2000).await.unwrap();
    let huge =
        CommitRecord { log_entry: vec![b'x'; sealdrop_log::entry::MAX_ENTRY_BYTES + 1], ..commit_record("data-team") };
    let err = s.commit_drop(&d.id, &huge, Box::new(key().clone())).await.unwrap_err();
    assert!(matches!(err, MetaError::LogEntryTooLarge(_)), "{err}");
    assert_eq!(s.drop_state(&d.id).await.unwrap(), Some(DropState::Open), "the commit rolled back");
    assert_eq!((s.log_size().await.unwrap(), s.latest_checkpoint().await.unwrap()), (0, None));
    commit(s, &d).await;

    // An ack whose deletion entry cannot be logged leaves the drop as it was.
    s.record_fetch(&d.id, &fetch("islington", 2500), Box::new(key().clone())).await.unwrap();
    let bad = AckRecord { delivered_entry: vec![b'x'; 70_000], ..ack("islington") };
    assert!(s.acknowledge(&d.id, &bad, Box::new(key().clone())).await.is_err());
    let rec = s.drop_record(&d.id).await.unwrap().unwrap();
    assert_eq!((rec.state, rec.recipients[0].acknowledged), (DropState::Committed, None));
    assert_eq!((rec.end_index, rec.recipients[0].ack_index), (None, None));
    assert_eq!(assert_checkpointed(s).await, 2);

    // A failed state change appends nothing.
    assert!(s.insert_directory(&directory(1), b"{}", Box::new(key().clone())).await.is_ok());
    assert!(s.insert_directory(&directory(1), b"{}", Box::new(key().clone())).await.is_err());
    assert_eq!(assert_checkpointed(s).await, 3);
}

pub(super) async fn upload_activity_is_recorded_for_open_drops_and_falls_back_to_creation(s: &dyn MetaUnderTest) {
    let d = new_drop(&["islington"]);
    created(s.create_drop(&d).await.unwrap());
    assert_eq!(s.upload_activity(&d.id).await.unwrap(), Some(1000), "no activity yet: the creation time");
    assert!(s.set_upload(&d.id, None, 1500).await.unwrap());
    assert_eq!(s.upload_activity(&d.id).await.unwrap(), Some(1500));
    assert!(s.set_upload(&d.id, Some(&digest("a", 10)), 1800).await.unwrap());
    assert_eq!(s.upload_activity(&d.id).await.unwrap(), Some(1800));
    assert_eq!(s.drop_record(&d.id).await.unwrap().unwrap().upload, Some(digest("a", 10)));
    commit(s, &d).await;
    assert_eq!(s.upload_activity(&d.id).await.unwrap(), None, "a committed drop has no upload to keep");
    assert_eq!(s.upload_activity(&DropId::random()).await.unwrap(), None);
}

pub(super) async fn the_sweeper_finds_expired_and_out_of_agreement_drops(s: &dyn MetaUnderTest) {
    let in_force = ["inner-fsm".to_owned()];
    let open = new_drop(&["islington"]);
    let committed = new_drop(&["islington"]);
    let later = NewDrop { expires: 9000, ..new_drop(&["islington"]) };
    let other = NewDrop { agreement: "ended".into(), expires: 9000, ..new_drop(&["islington"]) };
    for d in [&open, &committed, &later, &other] {
        created(s.create_drop(d).await.unwrap());
    }
    for d in [&committed, &later, &other] {
        commit(s, d).await;
    }
    let ids = |items: Vec<SweepItem>| items.into_iter().map(|i| (i.id, i.state)).collect::<Vec<_>>();
    // Before the expiry only the drop under an agreement not in force is due.
    assert_eq!(
        ids(s.due_for_sweep(4999, &in_force, 10).await.unwrap()),
        vec![(other.id.clone(), DropState::Committed)]
    );
    let due = ids(s.due_for_sweep(5000, &in_force, 10).await.unwrap());
    assert_eq!(due.len(), 3);
    assert!(
        due.contains(&(open.id.clone(), DropState::Open))
            && due.contains(&(committed.id.clone(), DropState::Committed))
    );
    assert_eq!(s.due_for_sweep(5000, &in_force, 1).await.unwrap().len(), 1, "the limit holds");

    // Ending a committed drop sets its state and deletion time and logs it.
    let before = s.log_size().await.unwrap();
    assert_eq!(
        s.end_drop(&committed.id, &end(DropState::Expired, 5000, false), Box::new(key().clone())).await.unwrap(),
        EndOutcome::Ended { log_index: before }
    );
    let rec = s.drop_record(&committed.id).await.unwrap().unwrap();
    assert_eq!((rec.state, rec.deleted), (DropState::Expired, Some(5000)));
    assert_eq!(s.log_size().await.unwrap(), before + 1);
    assert_checkpointed(s).await;
    // Only once; and an open drop is not ended but forgotten.
    assert_eq!(
        s.end_drop(&committed.id, &end(DropState::Expired, 5001, false), Box::new(key().clone())).await.unwrap(),
        EndOutcome::NotCommitted(Some(DropState::Expired))
    );
    assert_eq!(
        s.end_drop(&open.id, &end(DropState::Expired, 5001, false), Box::new(key().clone())).await.unwrap(),
        EndOutcome::NotCommitted(Some(DropState::Open))
    );
    assert!(s.forget_open_drop(&open.id).await.unwrap());
    assert!(!s.forget_open_drop(&open.id).await.unwrap());
    assert!(!s.forget_open_drop(&later.id).await.unwrap(), "a committed drop is never forgotten");
    assert_eq!(s.drop_record(&open.id).await.unwrap(), None);
    // An ended drop is no longer fetched (and nothing is logged).
    assert_eq!(
        s.record_fetch(&committed.id, &fetch("islington", 5002), Box::new(key().clone())).await.unwrap(),
        FetchOutcome::NotCommitted
    );
    assert_eq!(s.log_size().await.unwrap(), before + 1);
    assert_eq!(
        ids(s.due_for_sweep(5000, &in_force, 10).await.unwrap()),
        vec![(other.id.clone(), DropState::Committed)]
    );
}

pub(super) async fn a_recall_is_refused_inside_the_transaction_once_acknowledged(s: &dyn MetaUnderTest) {
    let d = new_drop(&["islington", "hackney"]);
    created(s.create_drop(&d).await.unwrap());
    commit(s, &d).await;
    s.record_fetch(&d.id, &fetch("hackney", 2500), Box::new(key().clone())).await.unwrap();
    assert!(matches!(
        s.acknowledge(&d.id, &ack("hackney"), Box::new(key().clone())).await.unwrap(),
        AckOutcome::Recorded { .. }
    ));
    let size = s.log_size().await.unwrap();
    let EndOutcome::Acknowledged(acked) =
        s.end_drop(&d.id, &end(DropState::Recalled, 3500, true), Box::new(key().clone())).await.unwrap()
    else {
        panic!("a recall after an acknowledgement must be refused")
    };
    assert_eq!(acked.iter().map(|r| r.party.as_str()).collect::<Vec<_>>(), ["hackney"]);
    assert_eq!((s.drop_state(&d.id).await.unwrap(), s.log_size().await.unwrap()), (Some(DropState::Committed), size));
    // Without that condition (expiry) it ends all the same.
    assert!(matches!(
        s.end_drop(&d.id, &end(DropState::Expired, 5000, false), Box::new(key().clone())).await.unwrap(),
        EndOutcome::Ended { .. }
    ));
    assert!(
        s.end_drop(&d.id, &end(DropState::Delivered, 5000, false), Box::new(key().clone())).await.is_err(),
        "not a way to end"
    );
}
