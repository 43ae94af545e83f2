//! `sealdrop witness`: cosign the hub's log checkpoint after checking it, and
//! `witness keygen`, the key a party witnesses with.

use std::io::Write;
use std::path::PathBuf;

use clap::{Args, Subcommand};

use sealdrop_proto::ids::PartyId;

use super::print;
use crate::context::Settings;
use crate::error::{Error, ErrorCode, Result};
use crate::fsutil::write_new_atomic;

// `sealdrop witness [keygen]`; its help is the command's in the table in cli/mod.rs.
#[derive(Debug, Args)]
pub(super) struct WitnessArgs {
    #[command(subcommand)]
    command: Option<WitnessCommand>,
}

#[derive(Debug, Subcommand)]
enum WitnessCommand {
    /// Create a witness key for your party and print its public key for the coordinator's directory.
    Keygen {
        /// Your party id.
        #[arg(long)]
        party: PartyId,
        /// Where to write the secret witness key (mode 0600).
        #[arg(long)]
        out: PathBuf,
    },
}

impl WitnessArgs {
    pub(super) fn run(self, settings: &Settings, out: &mut dyn Write) -> Result<()> {
        match self.command {
            Some(WitnessCommand::Keygen { party, out: path }) => keygen(&party, &path, out),
            None => cosign(settings, out),
        }
    }
}

/// `sealdrop witness keygen`.
fn keygen(party: &PartyId, path: &std::path::Path, out: &mut dyn Write) -> Result<()> {
    let key = sealdrop_proto::keys::NoteSigningKey::generate(&format!("{party}.witness"))
        .map_err(|e| Error::new(ErrorCode::BadKeyName, format!("{e}; give your party id as --party, e.g. camden")))?;
    write_new_atomic(path, format!("{}\n", key.to_note_text().as_str()).as_bytes(), true)?;
    eprintln!(
        "wrote witness key {} (mode 0600); ask the coordinator to list this under your party's witness_keys:",
        path.display()
    );
    print(out, &key.cosigner_verifier().to_string())
}

/// `sealdrop witness`: verify the checkpoint and cosign it.
fn cosign(settings: &Settings, out: &mut dyn Write) -> Result<()> {
    let path = settings.witness_key.clone().ok_or_else(|| {
        Error::new(
            ErrorCode::NoWitnessKey,
            "no witness key given: pass --witness-key FILE (make one with `sealdrop witness keygen`)",
        )
    })?;
    let key = crate::logcheck::load_witness_key(&path)?;
    // A member's session verifies the checkpoint (and, with a
    // witness key, cosigns it); a witness without a member key
    // verifies it the same way, signing its requests as the witness.
    let (hub, checkpoint) = if settings.identity.is_some() {
        let session = settings.session()?;
        (session.hub, session.checkpoint)
    } else {
        settings.witness_session(&key)?
    };
    crate::logcheck::witness(&hub, &key, &checkpoint, settings.clock.now())?;
    print(out, &format!("cosigned checkpoint of {} entries as {}", checkpoint.size, key.name()))
}
