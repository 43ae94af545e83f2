//! The coordinator's directory tools: make the authority key, write,
//! edit, sign and publish the directory, fingerprint keys, show the hub's.

use std::io::Write;
use std::path::PathBuf;

use clap::Subcommand;

use super::{json_text, parse_date, print};
use crate::context::Settings;
use crate::error::{Error, ErrorCode, Result};

#[derive(Debug, Subcommand)]
pub(super) enum DirectoryCommand {
    /// Create the coordinator's (authority's) key pair: FILE and FILE.pub.
    Keygen {
        /// The authority's name, e.g. `london-isa-coordinator`.
        #[arg(long)]
        name: String,
        /// The secret key file to create (mode 0600); the public key goes beside it as .pub.
        #[arg(long)]
        out: PathBuf,
    },
    /// Write a first unsigned directory (serial 1) from the members' key cards.
    ///
    /// Reads every file in --cards: each member's key card (the JSON line
    /// `sealdrop keygen` printed) and each witness key (`sealdrop witness
    /// keygen`). Members are grouped into parties by the party on their card;
    /// a London party id (e.g. `camden`, `city-of-london`) gets its display name,
    /// GSS code and DfE LA number from the built-in London list, other parties
    /// from --reference, else their id as name (shown, for you to fill in). One
    /// agreement between all the parties is written. The file is never
    /// overwritten. Then `directory sign` (and, once the hub exists, `directory set-hub`).
    #[command(verbatim_doc_comment)]
    New {
        /// The folder of key cards (and witness keys), one a file.
        #[arg(long, value_name = "DIR")]
        cards: PathBuf,
        /// More parties' names and codes: CSV `name,gss_code,dfe_la_number` with a header row,
        /// the shape of keys-example/london-local-authorities.csv (the id is the name as a slug).
        #[arg(long, value_name = "CSV")]
        reference: Option<PathBuf>,
        /// The starting agreement's id, a slug such as `london-fsm-ehc`.
        #[arg(long, value_name = "ID")]
        agreement: String,
        /// Its short title (default: the id).
        #[arg(long)]
        title: Option<String>,
        /// What the data may be used for.
        #[arg(long)]
        purpose: String,
        /// The lawful basis for sharing (UK GDPR article and statute).
        #[arg(long)]
        lawful_basis: String,
        /// Sharing may start (YYYY-MM-DD or RFC 3339; default now).
        #[arg(long, value_name = "DATE")]
        valid_from: Option<String>,
        /// Sharing must stop, exclusive (YYYY-MM-DD or RFC 3339; default a year after --valid-from).
        #[arg(long, value_name = "DATE")]
        valid_until: Option<String>,
        /// The longest a drop may wait on the hub, in days.
        #[arg(long, default_value_t = 30, value_name = "DAYS")]
        max_expiry_days: u32,
        /// Require post-quantum keys (`age1pq1...`) of every member: a card with any other kind is refused.
        #[arg(long)]
        require_pq: bool,
        /// The unsigned directory to create (never overwritten).
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
    },
    /// List the hub in the unsigned directory file: its origin and log key (raises the serial).
    ///
    /// The log key exists only once the hub operator ran `sealdrop-hub init`
    /// (with a directory signed without it): the operator sends you what
    /// `sealdrop-hub verifier-key --data DIR` prints, you set it here, sign
    /// and publish. Clients then check the hub's log against this key instead
    /// of trusting it at first contact.
    #[command(verbatim_doc_comment)]
    SetHub {
        /// The unsigned directory (JSON), edited in place.
        #[arg(long)]
        input: PathBuf,
        /// The hub's origin (default: the log key's name, which must be the same).
        #[arg(long)]
        origin: Option<String>,
        /// The hub's log key: a file holding what `sealdrop-hub verifier-key` prints, or the text.
        #[arg(long, value_name = "KEY_OR_FILE")]
        log_key: String,
    },
    /// Print the fingerprint of the key in a file, to compare by phone.
    ///
    /// Any key sealdrop uses: authority.pub, a member's key card, a witness
    /// key, the hub's log key (hub-log.pub), or the public part of a secret
    /// key file. The fingerprint is the one `keygen`, `key show`, `audit
    /// verify` and the IG report show.
    #[command(verbatim_doc_comment)]
    Fingerprint {
        /// The key file.
        file: PathBuf,
        /// Print one JSON object: kind, name, fingerprint.
        #[arg(long)]
        json: bool,
    },
    /// Sign an unsigned directory (JSON) with the authority key.
    Sign {
        /// The authority's secret key file.
        #[arg(long)]
        key: PathBuf,
        /// The unsigned directory, JSON.
        #[arg(long)]
        input: PathBuf,
        /// Where to write the signed directory.
        #[arg(long)]
        out: PathBuf,
    },
    /// Add a member's public key card to its party in the unsigned directory file (raises the serial).
    AddMember {
        /// The unsigned directory (JSON), edited in place.
        #[arg(long)]
        input: PathBuf,
        /// The member's public key card (JSON, as `sealdrop keygen` prints it).
        #[arg(long)]
        card: PathBuf,
    },
    /// Revoke a member key in the unsigned directory file: it moves to the party's `revoked`
    /// list for good, optionally replaced by the member's new key card (raises the serial).
    /// Then sign and publish the file.
    Revoke {
        /// The unsigned directory (JSON), edited in place.
        #[arg(long)]
        input: PathBuf,
        /// The key to revoke, `<party>/<member>`.
        #[arg(long, value_name = "PARTY/MEMBER")]
        key: String,
        /// Why (kept in the directory, shown to whoever still tries to use the key).
        #[arg(long)]
        reason: String,
        /// From when the key is not to be trusted (default now); for a lost or stolen key,
        /// the last time it was known safe. Drops committed before this time stay readable.
        #[arg(long, value_name = "TIME")]
        at: Option<String>,
        /// The member's new public key card, to list in the old key's place.
        #[arg(long, value_name = "CARD")]
        replace_with: Option<PathBuf>,
    },
    /// Upload a signed directory to the hub (checked against --authority first).
    Publish {
        /// The signed directory file.
        file: PathBuf,
    },
    /// Fetch, verify and summarise the hub's directory.
    Show {
        /// Print the verified directory as JSON.
        #[arg(long)]
        json: bool,
    },
}

impl DirectoryCommand {
    pub(super) fn run(self, settings: &Settings, out: &mut dyn Write) -> Result<()> {
        match self {
            DirectoryCommand::Keygen { name, out: path } => {
                let (key, pub_path) = crate::directory_cmd::keygen(&name, &path)?;
                eprintln!("wrote {} (secret, mode 0600) and {}", path.display(), pub_path.display());
                print(out, &key.verifier().to_string())
            }
            DirectoryCommand::New {
                cards,
                reference,
                agreement,
                title,
                purpose,
                lawful_basis,
                valid_from,
                valid_until,
                max_expiry_days,
                require_pq,
                out: path,
            } => {
                let date = |flag: &str, t: Option<String>| t.map(|t| parse_date(flag, &t)).transpose();
                let agreement = crate::directory_setup::NewAgreement {
                    id: agreement,
                    title,
                    purpose,
                    lawful_basis,
                    valid_from: date("--valid-from", valid_from)?,
                    valid_until: date("--valid-until", valid_until)?,
                    max_expiry_days,
                    require_pq,
                };
                let created = crate::directory_setup::new_directory(
                    &cards,
                    reference.as_deref(),
                    &agreement,
                    settings.clock.now(),
                    &path,
                )?;
                let d = &created.directory;
                let members: usize = d.parties.iter().map(|p| p.members.len()).sum();
                print(
                    out,
                    &format!(
                        "wrote {} (serial 1): {} parties, {members} member keys from {} files, agreement {}",
                        path.display(),
                        d.parties.len(),
                        created.cards.len(),
                        agreement.id
                    ),
                )?;
                for p in &d.parties {
                    let fps: Vec<String> =
                        p.members.iter().map(|m| format!("{} {}", m.member, m.signing_key.fingerprint())).collect();
                    print(out, &format!("  {:<24} {:<26} {}", p.id.as_str(), p.name, fps.join(", ")))?;
                }
                if !created.unnamed.is_empty() {
                    let ids: Vec<&str> = created.unnamed.iter().map(|p| p.as_str()).collect();
                    eprintln!(
                        "note: no display name or codes known for {}: edit their `name` and `aliases` in {} (or pass --reference CSV)",
                        ids.join(", "),
                        path.display()
                    );
                }
                eprintln!(
                    "check each fingerprint with its member by phone, then: sealdrop directory sign --key authority.key --input {} --out directory.signed",
                    path.display()
                );
                Ok(())
            }
            DirectoryCommand::SetHub { input, origin, log_key } => {
                let edit = crate::directory_setup::set_hub(&input, origin.as_deref(), &log_key)?;
                print(
                    out,
                    &format!(
                        "listed the hub in {} (serial {} -> serial {}); now sign and publish it",
                        input.display(),
                        edit.old_serial,
                        edit.new_serial
                    ),
                )
            }
            DirectoryCommand::Fingerprint { file, json } => {
                let f = crate::directory_setup::fingerprint(&file)?;
                if json {
                    return print(out, &json_text(&f, true)?);
                }
                print(out, &format!("{}  {}  ({})", f.fingerprint, f.name, f.kind))
            }
            DirectoryCommand::Sign { key, input, out: path } => {
                let signed = crate::directory_cmd::sign(settings, &key, &input, &path)?;
                print(
                    out,
                    &format!(
                        "signed directory serial {} with {} parties and {} agreements: {}",
                        signed.directory.serial,
                        signed.directory.parties.len(),
                        signed.directory.agreements.len(),
                        path.display()
                    ),
                )
            }
            DirectoryCommand::AddMember { input, card } => {
                let edit = crate::directory_cmd::add_member(&input, &card)?;
                print(
                    out,
                    &format!(
                        "added {} to {} (serial {} -> serial {}); now sign and publish it",
                        edit.added.unwrap_or_default(),
                        input.display(),
                        edit.old_serial,
                        edit.new_serial
                    ),
                )
            }
            DirectoryCommand::Revoke { input, key, reason, at, replace_with } => {
                let at = match at {
                    Some(text) => sealdrop_proto::clock::parse_time(&text).ok_or_else(|| {
                        Error::new(
                            ErrorCode::BadTime,
                            format!("--at {text:?} is not an RFC 3339 time, e.g. 2026-11-20T09:00:00Z"),
                        )
                    })?,
                    None => sealdrop_proto::clock::whole_second(settings.clock.now()),
                };
                let edit = crate::directory_cmd::revoke(&input, &key, at, &reason, replace_with.as_deref())?;
                let added = edit.added.map(|k| format!(", new key {k} listed")).unwrap_or_default();
                print(
                    out,
                    &format!(
                        "revoked {key} from {at}{added} in {} (serial {} -> serial {}); now sign and publish it",
                        input.display(),
                        edit.old_serial,
                        edit.new_serial
                    ),
                )
            }
            DirectoryCommand::Publish { file } => {
                let serial = crate::directory_cmd::publish(settings, &file)?;
                print(out, &format!("the hub now enforces directory serial {serial}"))
            }
            DirectoryCommand::Show { json } => {
                let d = settings.trusted_directory(&settings.hub_as_reader()?)?.directory;
                if json {
                    return print(out, &json_text(&d, true)?);
                }
                print(
                    out,
                    &format!(
                        "directory serial {} issued {} (verified against the pinned authority key)",
                        d.serial, d.issued_at
                    ),
                )?;
                for p in &d.parties {
                    print(
                        out,
                        &format!(
                            "  {:<26} {:<28} {:<16} {} key(s)",
                            p.id,
                            p.name,
                            p.aliases.join(" "),
                            p.members.len()
                        ),
                    )?;
                }
                for a in &d.agreements {
                    print(
                        out,
                        &format!(
                            "  agreement {}: {} ({} parties, drops live at most {} days, {} to {})",
                            a.id,
                            a.title,
                            a.parties.len(),
                            a.max_expiry_days,
                            a.valid_from,
                            a.valid_until
                        ),
                    )?;
                }
                Ok(())
            }
        }
    }
}
