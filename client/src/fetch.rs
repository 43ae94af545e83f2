//! Fetching a drop: check the sender's signed manifest against the verified
//! directory, stream the ciphertext through SHA-256 and age into a hidden
//! folder beside the target, and move the files into place only when the
//! hash, the length, the decryption and the archive all check out. Then sign
//! a receipt so the hub can delete the ciphertext.

use std::io::{self, BufReader, Read};
use std::path::{Path, PathBuf};

use serde::Serialize;

use sealdrop_log::entry::LogEntry;
use sealdrop_proto::api::{Ack, Acked, DropDetails, Inbox};
use sealdrop_proto::directory::Directory;
use sealdrop_proto::drop::{Manifest, Receipt};
use sealdrop_proto::ids::{DropId, PartyId};
use sealdrop_proto::keys::MemberSecretKey;
use sealdrop_proto::note::{open_doc, peek_doc, sign_doc};

use crate::archive::{self, ExtractError};
use crate::context::{Session, Settings};
use crate::error::{Error, Kind, Result};
use crate::hub_client::HubClient;
use crate::pipe::{HashingReader, progress_bar};

/// What one fetch produced.
#[derive(Clone, Debug, Serialize)]
pub struct FetchOutcome {
    /// The drop.
    pub id: DropId,
    /// Its sender.
    pub from: PartyId,
    /// The agreement it travelled under.
    pub agreement: String,
    /// Files written.
    pub files: usize,
    /// Bytes written.
    pub bytes: u64,
    /// Top-level names written into the output folder.
    pub names: Vec<String>,
    /// The output folder.
    pub dest: PathBuf,
    /// Whether the hub deleted the ciphertext after this acknowledgement.
    pub ciphertext_deleted: bool,
    /// The offline proof (c2sp.org/tlog-proof) that the hub logged the acknowledgement.
    pub receipt: PathBuf,
}

/// Which drops to fetch.
#[derive(Clone, Debug)]
pub enum Which {
    /// These ids.
    Ids(Vec<String>),
    /// Everything in the inbox.
    All,
}

/// Prefix of the hidden folder a drop is unpacked into before it is moved into place.
pub const INCOMING_PREFIX: &str = ".sealdrop-incoming-";

/// Fetches drops into `dest`. Each drop succeeds or fails on its own.
pub fn fetch(settings: &Settings, which: &Which, dest: &Path) -> Result<Vec<Result<FetchOutcome>>> {
    let session = settings.session()?;
    std::fs::create_dir_all(dest)
        .map_err(|e| Error::io(format!("cannot create output folder {}", dest.display()), e))?;
    let ids: Vec<String> = match which {
        Which::Ids(ids) => ids.clone(),
        Which::All => session.hub.get::<Inbox>("/v1/inbox")?.drops.into_iter().map(|d| d.id.to_string()).collect(),
    };
    Ok(ids.iter().map(|id| fetch_one(settings, &session, id, dest)).collect())
}

fn fetch_one(settings: &Settings, session: &Session, id: &str, dest: &Path) -> Result<FetchOutcome> {
    let (hub, me, dir) = (&session.hub, &session.me, &session.directory.directory);
    let id: DropId =
        id.parse().map_err(|e: sealdrop_proto::ids::IdError| Error::input("bad_drop_id", e.to_string()))?;
    let details: DropDetails = hub.get(&format!("/v1/drops/{id}"))?;
    let manifest = verify_manifest(dir, me, &id, &details.manifest)?;

    let staging = dest.join(format!("{INCOMING_PREFIX}{id}"));
    if staging.exists() {
        // Left by an earlier fetch that was killed; it never held verified output.
        std::fs::remove_dir_all(&staging).map_err(|e| Error::io(format!("cannot clear {}", staging.display()), e))?;
    }
    std::fs::create_dir(&staging).map_err(|e| Error::io(format!("cannot create {}", staging.display()), e))?;
    let result = download_and_unpack(settings, hub, me, &manifest, &staging)
        .and_then(|extracted| place(&staging, dest, &extracted.top_level).map(|()| extracted));
    let _ = std::fs::remove_dir_all(&staging);
    let extracted = result?;

    let receipt = Receipt {
        drop: id.clone(),
        recipient: me.party.clone(),
        member: me.member.clone(),
        ciphertext_sha256: manifest.ciphertext_sha256.clone(),
        ciphertext_len: manifest.ciphertext_len,
        received: settings.clock.now().round(jiff::Unit::Second).unwrap_or_else(|_| settings.clock.now()),
    };
    let receipt_note = sign_doc(&receipt, &me.signing);
    let acked: Acked =
        hub.post(&format!("/v1/drops/{id}/ack"), &Ack { receipt: receipt_note.clone() }).map_err(|e| Error {
            message: format!("the files are in place but the acknowledgement failed: {}", e.message),
            ..e
        })?;
    let log_receipt = settings
        .keep_receipt(
            session,
            acked.log_index,
            &format!("{id}.acknowledged-by-{}", me.party),
            |e| matches!(e, LogEntry::DropAcknowledged { receipt, .. } if *receipt == receipt_note),
        )
        .map_err(|e| Error { message: format!("drop {id} was fetched and acknowledged, but: {}", e.message), ..e })?;
    Ok(FetchOutcome {
        id,
        from: manifest.sender,
        agreement: manifest.agreement,
        files: extracted.files,
        bytes: extracted.bytes,
        names: extracted.top_level,
        dest: dest.to_owned(),
        ciphertext_deleted: acked.ciphertext_deleted,
        receipt: log_receipt,
    })
}

/// Checks the manifest's signature against the sender's keys in the verified
/// directory, and that it is this drop and addressed to this member.
pub fn verify_manifest(dir: &Directory, me: &MemberSecretKey, id: &DropId, note: &str) -> Result<Manifest> {
    let claimed =
        peek_doc::<Manifest>(note).map_err(|e| Error::verification("bad_manifest", format!("drop {id}: {e}")))?;
    let keys = dir.signing_keys_of(&claimed.sender);
    let opened = open_doc::<Manifest>(note, &keys).map_err(|e| {
        Error::verification(
            "bad_manifest",
            format!("drop {id}: {e}; the drop was not fetched, report it to the sender"),
        )
    })?;
    let m = opened.doc;
    if opened.signer != format!("{}/{}", m.sender, m.sender_member) {
        return Err(Error::verification(
            "bad_manifest",
            format!(
                "drop {id}: the manifest names {}/{} but was signed by {}",
                m.sender, m.sender_member, opened.signer
            ),
        ));
    }
    if &m.drop != id {
        return Err(Error::verification(
            "bad_manifest",
            format!("the hub served the manifest of drop {} for drop {id}", m.drop),
        ));
    }
    if !m.recipients.contains(&me.party) {
        return Err(Error::verification("bad_manifest", format!("drop {id} is not addressed to {}", me.party)));
    }
    let mine = me.age_identity.to_public().to_string();
    if !m.encrypted_to.iter().any(|e| e.age_recipient == mine) {
        return Err(Error::input(
            "not_encrypted_to_you",
            format!(
                "drop {id} was not encrypted to your key {}; another member of {} must fetch it",
                me.signing.name(),
                me.party
            ),
        ));
    }
    Ok(m)
}

fn download_and_unpack(
    settings: &Settings,
    hub: &HubClient,
    me: &MemberSecretKey,
    manifest: &Manifest,
    staging: &Path,
) -> Result<archive::Extracted> {
    let id = &manifest.drop;
    let resp = hub.get_stream(&format!("/v1/drops/{id}/content"))?;
    let bar = progress_bar(manifest.ciphertext_len, "receiving and decrypting", settings.quiet);
    let mut hashing = HashingReader::new(resp, Some(bar.clone()));
    let unpacked = decrypt_and_extract(&mut hashing, me, staging);
    // Hash whatever is left so the verdict covers the whole ciphertext even
    // when decryption stopped early.
    let drained = io::copy(&mut hashing, &mut io::sink());
    bar.finish_and_clear();
    let digest = hashing.digest();
    let intact = digest.sha256 == manifest.ciphertext_sha256 && digest.len == manifest.ciphertext_len;
    let tampered = || {
        Error::verification(
            "tampered",
            format!(
                "drop {id} does not match its signed manifest (received {} bytes, SHA-256 {}; expected {} bytes, {}); nothing was written and it was not acknowledged",
                digest.len, digest.sha256, manifest.ciphertext_len, manifest.ciphertext_sha256
            ),
        )
    };
    match (unpacked, drained) {
        (Err(Unpack::Unsafe(e)), _) => {
            Err(Error::verification("unsafe_archive", format!("drop {id} from {}: {e}", manifest.sender)))
        }
        (_, Err(e)) => Err(Error::new(
            Kind::Unreachable,
            "download_failed",
            format!("the download of drop {id} broke off ({e}); nothing was written, fetch it again"),
        )),
        (_, Ok(_)) if !intact => Err(tampered()),
        (Err(Unpack::Decrypt(e)), Ok(_)) => Err(Error::verification(
            "undecryptable",
            format!(
                "drop {id} matches its manifest but cannot be decrypted with your key ({e}); nothing was written, ask {} to resend",
                manifest.sender
            ),
        )),
        (Err(Unpack::Io(e)), Ok(_)) => Err(Error::io(format!("cannot write drop {id} into {}", staging.display()), e)),
        (Ok(x), Ok(_)) => Ok(x),
    }
}

enum Unpack {
    Unsafe(String),
    Decrypt(String),
    Io(io::Error),
}

fn decrypt_and_extract(
    input: &mut impl Read,
    me: &MemberSecretKey,
    staging: &Path,
) -> std::result::Result<archive::Extracted, Unpack> {
    let decryptor = age::Decryptor::new_buffered(BufReader::with_capacity(64 * 1024, input))
        .map_err(|e| Unpack::Decrypt(e.to_string()))?;
    let mut plaintext = decryptor
        .decrypt(std::iter::once(&me.age_identity as &dyn age::Identity))
        .map_err(|e| Unpack::Decrypt(e.to_string()))?;
    let extracted = archive::extract(&mut plaintext, staging).map_err(|e| match e {
        ExtractError::Unsafe(..) => Unpack::Unsafe(e.to_string()),
        ExtractError::Io(e) if e.kind() == io::ErrorKind::InvalidData => Unpack::Decrypt(e.to_string()),
        ExtractError::Io(e) => Unpack::Io(e),
    })?;
    // Read to the end so age authenticates the final chunk.
    io::copy(&mut plaintext, &mut io::sink()).map_err(|e| Unpack::Decrypt(e.to_string()))?;
    Ok(extracted)
}

/// Moves the unpacked top-level entries into `dest`, never replacing anything.
fn place(staging: &Path, dest: &Path, names: &[String]) -> Result<()> {
    if let Some(existing) = names.iter().find(|n| dest.join(n).symlink_metadata().is_ok()) {
        return Err(Error::input(
            "output_exists",
            format!(
                "{} already exists; move it away or fetch into another folder with -o DIR (the drop was not acknowledged)",
                dest.join(existing).display()
            ),
        ));
    }
    for n in names {
        let from = staging.join(n);
        let to = dest.join(n);
        let is_dir = from.symlink_metadata().map(|m| m.is_dir()).unwrap_or(false);
        if is_dir {
            std::fs::rename(&from, &to)
        } else {
            // A hard link fails if the target appeared meanwhile, so nothing is ever replaced.
            std::fs::hard_link(&from, &to).and_then(|()| std::fs::remove_file(&from))
        }
        .map_err(|e| Error::io(format!("cannot move {} into place", to.display()), e))?;
    }
    Ok(())
}
