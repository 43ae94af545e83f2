//! What senders and recipients sign about a drop: the sender's manifest and
//! the recipient's receipt. Both travel as signed notes (see [`crate::note`]).

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::ids::{DropId, MemberName, PartyId};
use crate::note::SignedDoc;

/// One age recipient a drop was encrypted to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EncryptedTo {
    /// The member key's name, `<party>/<member>`.
    pub key: String,
    /// The age recipient used (`age1...`).
    pub age_recipient: String,
}

/// The sender's signed statement of what it sent, to whom and under which agreement.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// The drop, as the hub named it at creation.
    pub drop: DropId,
    /// The sending party.
    pub sender: PartyId,
    /// The member whose key signs this manifest.
    pub sender_member: MemberName,
    /// The parties that may fetch the drop.
    pub recipients: Vec<PartyId>,
    /// Every key the content was encrypted to.
    pub encrypted_to: Vec<EncryptedTo>,
    /// The sharing agreement the drop travels under.
    pub agreement: String,
    /// The serial of the directory the sender took the keys from.
    pub directory_serial: u64,
    /// SHA-256 of the ciphertext, hex.
    pub ciphertext_sha256: String,
    /// Length of the ciphertext in bytes.
    pub ciphertext_len: u64,
    /// When the hub created the drop.
    pub created: Timestamp,
    /// When the hub must delete the drop if it has not been acknowledged.
    pub expires: Timestamp,
}

impl SignedDoc for Manifest {
    const TYPE: &'static str = "sealdrop/manifest/v1";
    const WHAT: &'static str = "manifest";
}

/// A recipient's signed statement that it received and decrypted a drop intact.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Receipt {
    /// The drop received.
    pub drop: DropId,
    /// The receiving party.
    pub recipient: PartyId,
    /// The member whose key signs this receipt.
    pub member: MemberName,
    /// SHA-256 of the ciphertext received, hex (equal to the manifest's).
    pub ciphertext_sha256: String,
    /// Length of the ciphertext received.
    pub ciphertext_len: u64,
    /// When the recipient finished decrypting, by its own clock.
    pub received: Timestamp,
}

impl SignedDoc for Receipt {
    const TYPE: &'static str = "sealdrop/receipt/v1";
    const WHAT: &'static str = "receipt";
}

/// Checks that a string is a lowercase hex SHA-256.
pub fn is_sha256_hex(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::NoteSigningKey;
    use crate::note::{open_doc, sign_doc};

    #[test]
    fn manifest_round_trip_and_unknown_fields() {
        let key = NoteSigningKey::generate("camden/data-team").unwrap();
        let m = Manifest {
            drop: DropId::random(),
            sender: "camden".parse().unwrap(),
            sender_member: "data-team".parse().unwrap(),
            recipients: vec!["islington".parse().unwrap()],
            encrypted_to: vec![EncryptedTo { key: "islington/data-team".into(), age_recipient: "age1x".into() }],
            agreement: "a".into(),
            directory_serial: 3,
            ciphertext_sha256: "00".repeat(32),
            ciphertext_len: 10,
            created: Timestamp::UNIX_EPOCH,
            expires: Timestamp::UNIX_EPOCH,
        };
        let note = sign_doc(&m, &key);
        assert_eq!(open_doc::<Manifest>(&note, &[key.verifier()]).unwrap().doc, m);
        // A receipt signature cannot pass as a manifest.
        assert!(open_doc::<Receipt>(&note, &[key.verifier()]).is_err());
        assert!(is_sha256_hex(&m.ciphertext_sha256));
        assert!(!is_sha256_hex("AB"));
    }
}
