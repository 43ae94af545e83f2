//! A member's own key: `keygen` makes it, `key show` prints its public card,
//! `key export-age` hands it to stock age.

use std::io::Write;
use std::path::PathBuf;

use clap::{Args, Subcommand};

use sealdrop_proto::ids::{MemberName, PartyId};
use sealdrop_proto::keys::MemberSecretKey;

use super::{json_text, print};
use crate::context::Settings;
use crate::error::Result;
use crate::fsutil::write_new_atomic;

// `sealdrop keygen`; its help is the command's in the table in cli/mod.rs.
#[derive(Debug, Args)]
pub(super) struct KeygenArgs {
    /// Your organisation's party id, e.g. `camden`.
    #[arg(long)]
    party: PartyId,
    /// Your member name within the party, e.g. `data-team`.
    #[arg(long)]
    member: MemberName,
    /// Where to write the secret key (created with mode 0600).
    #[arg(long)]
    out: PathBuf,
    /// Make a classic X25519 age key instead of a post-quantum one (ML-KEM-768 + X25519), for
    /// correspondents whose tools read only classic age files (Debian's age 1.1, Go age before 1.3).
    #[arg(long)]
    classic: bool,
    /// Keep the decryption key on a hardware token: FILE is the age identity file its plugin
    /// wrote (`age-plugin-yubikey --generate`, `age-plugin-tpm --generate`); the signing key is
    /// made as usual. The plugin must be on PATH: a probe is decrypted through it first.
    #[arg(long, value_name = "FILE", conflicts_with = "classic")]
    plugin_identity: Option<PathBuf>,
    /// The token's recipient (`age1yubikey1...`), when the identity file does not name it in a
    /// `# recipient:` comment.
    #[arg(long, value_name = "RECIPIENT", requires = "plugin_identity")]
    plugin_recipient: Option<String>,
}

impl KeygenArgs {
    pub(super) fn run(self, out: &mut dyn Write) -> Result<()> {
        let key = if let Some(identity_file) = &self.plugin_identity {
            crate::plugin_key::member_key(self.party, self.member, identity_file, self.plugin_recipient.as_deref())?
        } else if self.classic {
            MemberSecretKey::generate_classic(self.party, self.member)
        } else {
            MemberSecretKey::generate(self.party, self.member)
        };
        write_new_atomic(&self.out, key.to_file_text().as_bytes(), true)?;
        let card = json_text(&key.public(), false)?;
        eprintln!(
            "wrote secret key {} (mode 0600; {} age key); fingerprint {}\nsend this public key card to your coordinator:",
            self.out.display(),
            key.age_identity.kind(),
            key.public().fingerprint()
        );
        print(out, &card)
    }
}

#[derive(Debug, Subcommand)]
pub(super) enum KeyCommand {
    /// Print an age identity file that stock `age -d -i FILE` accepts.
    ///
    /// A post-quantum key (`AGE-SECRET-KEY-PQ-1...`) needs age 1.3 or later
    /// (Go) or rage 0.12 or later; a classic key works with any age.
    /// It holds your secret key. Redirected to a file (`> id.txt`), the file
    /// is made private (mode 0600) before the key is written; with -o FILE a
    /// new file is created with mode 0600 (never overwritten). It is not
    /// printed to a terminal unless --force.
    #[command(verbatim_doc_comment)]
    ExportAge {
        /// Write it to this new file (mode 0600) instead of stdout.
        #[arg(short = 'o', long = "out", value_name = "FILE")]
        out: Option<PathBuf>,
        /// Print it even when stdout is a terminal (where the screen and its scrollback show it).
        #[arg(long)]
        force: bool,
    },
    /// Print your public key card (JSON, for the coordinator); its fingerprint goes to stderr.
    Show {
        /// Print one JSON object: key_name, fingerprint and the card.
        #[arg(long)]
        json: bool,
    },
}

impl KeyCommand {
    pub(super) fn run(self, settings: &Settings, out: &mut dyn Write) -> Result<()> {
        match self {
            KeyCommand::ExportAge { out: path, force } => {
                crate::secret_out::export_age(&settings.identity()?.age_identity_file(), path.as_deref(), force, out)
            }
            KeyCommand::Show { json } => {
                let card = settings.identity()?.public();
                if json {
                    let value = serde_json::json!({
                        "key_name": card.signing_key.name(),
                        "fingerprint": card.fingerprint(),
                        "key_kind": card.key_kind().ok(),
                        "card": card,
                    });
                    return print(out, &json_text(&value, true)?);
                }
                eprintln!("fingerprint {} (compare it with the coordinator by phone)", card.fingerprint());
                print(out, &json_text(&card, false)?)
            }
        }
    }
}
