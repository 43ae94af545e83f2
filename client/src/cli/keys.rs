//! A member's own key: `keygen` makes it, `key show` prints its public card,
//! `key export-age` hands it to stock age.

use std::io::Write;
use std::path::PathBuf;

use clap::{Args, Subcommand};
use zeroize::Zeroizing;

use sealdrop_proto::ids::{MemberName, PartyId};
use sealdrop_proto::keys::MemberSecretKey;

use super::{json_text, print};
use crate::context::Settings;
use crate::error::Result;
use crate::fsutil::{write_atomic, write_new_atomic};
use crate::key_protection::{protect_with_passphrase, protect_with_plugin};

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
    /// Protect the secret key file with a passphrase (age's scrypt, so
    /// stock `age -d` opens it too): asked twice on the terminal, or read
    /// from --passphrase-fd N. Every command that needs the key then asks
    /// for it once (or reads it from --passphrase-fd or the systemd
    /// credential `sealdrop-passphrase`); never from an environment variable.
    #[arg(long)]
    passphrase: bool,
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
    pub(super) fn run(self, settings: &Settings, out: &mut dyn Write) -> Result<()> {
        let key = if let Some(identity_file) = &self.plugin_identity {
            crate::plugin_key::member_key(self.party, self.member, identity_file, self.plugin_recipient.as_deref())?
        } else if self.classic {
            MemberSecretKey::generate_classic(self.party, self.member)
        } else {
            MemberSecretKey::generate(self.party, self.member)
        };
        let file = if self.passphrase {
            let passphrase = crate::passphrase::new(settings.key_unlock.passphrase_fd, "--passphrase-fd", &self.out)?;
            Zeroizing::new(protect_with_passphrase(&key.to_file_text(), passphrase)?)
        } else {
            key.to_file_text()
        };
        write_new_atomic(&self.out, file.as_bytes(), true)?;
        let card = json_text(&key.public(), false)?;
        eprintln!(
            "wrote secret key {} (mode 0600; {} age key{}); fingerprint {}\nsend this public key card to your coordinator:",
            self.out.display(),
            key.age_identity.kind(),
            if self.passphrase { "; protected by your passphrase" } else { "" },
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
    /// Add, change or remove the passphrase that protects your member key file.
    ///
    /// The current passphrase, if the key has one, comes from --passphrase-fd,
    /// the systemd credential `sealdrop-passphrase`, or the terminal; the new
    /// one from --new-passphrase-fd, or it is asked twice on the terminal.
    /// Never from an environment variable. The file is replaced (mode 0600)
    /// only after the new file decrypts back to the same key.
    #[command(verbatim_doc_comment)]
    Passphrase {
        /// Read the new passphrase from this file descriptor (one line)
        /// instead of asking twice on the terminal. It may be the same
        /// descriptor as --passphrase-fd: the current passphrase is its
        /// first line, the new one its second.
        #[arg(long, value_name = "FD", conflicts_with = "remove")]
        new_passphrase_fd: Option<u32>,
        /// Remove the passphrase: keep the key as plain text (mode 0600), as `keygen` writes it without --passphrase.
        #[arg(long)]
        remove: bool,
    },
    /// Encrypt your member key file to an age plugin's recipient (a YubiKey, a TPM).
    ///
    /// The token must then be present to use the key: every command runs the
    /// plugin (`age-plugin-NAME` on PATH) with the identity file given as
    /// `--key-plugin-identity FILE` (or `key_plugin_identity` in the config;
    /// `sealdrop --key-plugin-identity FILE init` saves it). The file is
    /// replaced (mode 0600) only after the new file decrypts back to the same
    /// key through the plugin. `key passphrase` (or --remove) undoes it.
    #[command(verbatim_doc_comment)]
    Protect {
        /// The plugin recipient to encrypt to: `age1yubikey1...`, `age1tpm1...`.
        #[arg(long, value_name = "RECIPIENT")]
        plugin_recipient: String,
        /// The plugin's identity file for that recipient (what
        /// `age-plugin-yubikey --identity` prints), used to check the new
        /// file opens; give it to later commands as --key-plugin-identity.
        #[arg(long, value_name = "FILE")]
        plugin_identity: PathBuf,
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
            KeyCommand::Passphrase { new_passphrase_fd, remove } => {
                let path = settings.identity_path()?;
                let plain = settings.key_unlock.key_text(path)?;
                // A file that is not a key is not protected (or unprotected) as one.
                settings.identity()?;
                let (file, done) = if remove {
                    (plain, "without a passphrase")
                } else {
                    let passphrase = crate::passphrase::new(new_passphrase_fd, "--new-passphrase-fd", path)?;
                    (Zeroizing::new(protect_with_passphrase(&plain, passphrase)?), "protected by the new passphrase")
                };
                write_atomic(path, file.as_bytes(), true)?;
                eprintln!("rewrote member key {} (mode 0600), {done}", path.display());
                Ok(())
            }
            KeyCommand::Protect { plugin_recipient, plugin_identity } => {
                let path = settings.identity_path()?;
                let plain = settings.key_unlock.key_text(path)?;
                settings.identity()?;
                let file = Zeroizing::new(protect_with_plugin(&plain, &plugin_recipient, &plugin_identity)?);
                write_atomic(path, file.as_bytes(), true)?;
                eprintln!(
                    "rewrote member key {} (mode 0600), encrypted to {plugin_recipient}: commands need the plugin, its token \
                     and --key-plugin-identity {} (or `sealdrop --key-plugin-identity {} init` to save it)",
                    path.display(),
                    plugin_identity.display(),
                    plugin_identity.display()
                );
                Ok(())
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
