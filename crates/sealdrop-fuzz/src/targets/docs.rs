//! Signed documents from other parties: the coordinator's directory, a
//! sender's manifest, a recipient's receipt. Each is checked the way the
//! client and the hub check it, against the fixture's keys.

use sealdrop::fetch::verify_manifest;
use sealdrop_hub::service::ack::check_receipt;
use sealdrop_hub::service::commit::check_manifest;
use sealdrop_hub::storage::meta::{ContentDigest, DropRecord, RecipientRecord};
use sealdrop_proto::api::DropState;
use sealdrop_proto::directory::{Directory, SignedDirectory};
use sealdrop_proto::drop::{Manifest, Receipt};
use sealdrop_proto::note::{SignedDoc, open_doc, peek_doc, sign_doc};

use crate::check::{assert_genuine, assert_tamper_refused};
use crate::fixtures::fixture;

/// A signed directory (`sealdrop/directory/v1`) verified against the
/// example authority key, as a client or the hub does before trusting it.
///
/// Asserts: a directory that verifies carries the authority's own
/// signature, fails with any byte of its text changed, reads back the same
/// after serialising and after signing again, resolves every party by its
/// own name and aliases, and can be compared with the example directory as
/// its successor or predecessor without panicking.
pub fn directory(data: &[u8]) -> bool {
    let Ok(note) = std::str::from_utf8(data) else { return false };
    let f = fixture();
    let authority = f.log.keys.authority.verifier();
    let _ = peek_doc::<Directory>(note);
    let Ok(signed) = SignedDirectory::verify(note, &authority) else { return false };
    assert_genuine(note, &f.log.keys.authority);
    assert_tamper_refused(note, data.len(), |n| SignedDirectory::verify(n, &authority).is_ok());
    let d = &signed.directory;
    round_trips(d);
    let again = SignedDirectory::sign(d.clone(), &f.log.keys.authority).expect("a directory that verified is valid");
    assert_eq!(&SignedDirectory::verify(&again.note, &authority).expect("re-signed").directory, d);
    for p in &d.parties {
        for name in std::iter::once(&p.name).chain(&p.aliases) {
            let found = d.resolve_party(name).map(|q| &q.id);
            assert_eq!(found, Some(&p.id), "{name:?} does not resolve to its own party");
        }
    }
    let _ = f.example.directory.check_successor(d);
    let _ = d.check_successor(&f.example.directory);
    true
}

/// A sender's signed manifest (`sealdrop/manifest/v1`), checked by the
/// recipient client (`fetch::verify_manifest`, as islington) and by the hub
/// at commit (`service::commit::check_manifest`, for a drop created by camden
/// with the fields the manifest claims).
///
/// Asserts: a manifest either accepts is camden's own signature over that
/// exact text, fails with any byte changed, and survives a round trip.
pub fn manifest(data: &[u8]) -> bool {
    let Ok(note) = std::str::from_utf8(data) else { return false };
    let f = fixture();
    let dir = &f.example.directory;
    let Ok(claimed) = peek_doc::<Manifest>(note) else {
        assert!(open_doc::<Manifest>(note, &[f.member(0).signing.verifier()]).is_err());
        return false;
    };
    let client = verify_manifest(dir, f.member(1), &claimed.drop, note, || Ok(None));
    let rec = DropRecord {
        id: claimed.drop.clone(),
        sender: claimed.sender.clone(),
        sender_member: claimed.sender_member.clone(),
        agreement: claimed.agreement.clone(),
        created: claimed.created.as_second(),
        expires: claimed.expires.as_second(),
        state: DropState::Open,
        upload: None,
        content: None,
        committed: None,
        manifest: None,
        deleted: None,
        commit_index: None,
        end_index: None,
        recipients: claimed.recipients.iter().cloned().map(RecipientRecord::waiting).collect(),
    };
    let hub = check_manifest(dir, &f.caller(0), &rec, note);
    let accepted = client.is_ok() || hub.is_ok();
    if let Ok(m) = &client {
        let signer = f.member_named(&format!("{}/{}", m.sender, m.sender_member));
        let signer = signer.expect("only the fixture's members' manifests can verify");
        assert_genuine(note, &signer.signing);
        assert_tamper_refused(note, data.len(), |n| verify_manifest(dir, f.member(1), &m.drop, n, || Ok(None)).is_ok());
    }
    if let Ok(m) = &hub {
        assert_genuine(note, &f.member(0).signing);
        assert_tamper_refused(note, data.len(), |n| check_manifest(dir, &f.caller(0), &rec, n).is_ok());
        round_trips(m);
        let again = sign_doc(m, &f.member(0).signing);
        assert_eq!(&open_doc::<Manifest>(&again, &[f.member(0).signing.verifier()]).expect("re-signed").doc, m);
    }
    accepted
}

/// A recipient's signed receipt (`sealdrop/receipt/v1`), checked by the hub
/// at acknowledgement (`api::ack::check_receipt`, from islington, for a drop
/// whose stored digest is the one the receipt claims).
///
/// Asserts: a receipt that passes is islington's own signature over that
/// exact text, fails with any byte changed, and survives a round trip.
pub fn receipt(data: &[u8]) -> bool {
    let Ok(note) = std::str::from_utf8(data) else { return false };
    let f = fixture();
    let Ok(claimed) = peek_doc::<Receipt>(note) else {
        assert!(open_doc::<Receipt>(note, &[f.member(1).signing.verifier()]).is_err());
        return false;
    };
    let caller = f.caller(1);
    let rec = DropRecord {
        id: claimed.drop.clone(),
        sender: f.member(0).party.clone(),
        sender_member: f.member(0).member.clone(),
        agreement: "london-fsm-ehc".into(),
        created: 0,
        expires: 0,
        state: DropState::Committed,
        upload: None,
        content: Some(ContentDigest { sha256: claimed.ciphertext_sha256.clone(), len: claimed.ciphertext_len }),
        committed: Some(0),
        manifest: None,
        deleted: None,
        commit_index: None,
        end_index: None,
        recipients: vec![],
    };
    let Ok(r) = check_receipt(&caller, &rec, note) else { return false };
    assert_genuine(note, &f.member(1).signing);
    assert_tamper_refused(note, data.len(), |n| check_receipt(&caller, &rec, n).is_ok());
    round_trips(&r);
    let again = sign_doc(&r, &f.member(1).signing);
    assert_eq!(open_doc::<Receipt>(&again, &[f.member(1).signing.verifier()]).expect("re-signed").doc, r);
    true
}

/// Asserts that a document reads back equal from its own JSON.
fn round_trips<T: SignedDoc + PartialEq + std::fmt::Debug>(doc: &T) {
    let json = serde_json::to_string_pretty(doc).expect("documents serialise");
    let back: T = serde_json::from_str(&json).expect("a document's own JSON parses");
    assert_eq!(&back, doc, "the {} changed in a JSON round trip", T::WHAT);
}
