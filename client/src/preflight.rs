//! Checks on what a plain `sealdrop send` is about to send, before anything
//! reaches the hub: mistakes an analyst makes in a hurry, which used to go
//! out without a word.
//!
//! - A file named on the command line that is empty (0 bytes), or a drop
//!   with no content at all: refused (`empty_file`) unless `--allow-empty`.
//!   An export that wrote nothing is a mistake far more often than a
//!   message; an empty file inside a folder is only a warning (folders
//!   legitimately hold empty placeholders).
//! - A sealdrop, age or signed-note secret key anywhere in it (found by its
//!   content, not its name): always refused (`secret_key_in_drop`), with no
//!   override. A member key lets whoever holds it sign as that member and
//!   read everything sent to the party; no exchange needs one to travel,
//!   and a new member makes their own (`sealdrop keygen`).
//! - The sender's own party among the recipients: refused (`to_own_party`)
//!   unless `--allow-own-party` (moving files to a colleague's key is a
//!   real use, a typo in `--to` more often the cause).

use std::io::Read as _;

use sealdrop_proto::ids::PartyId;
use sealdrop_proto::keys::MEMBER_KEY_HEADER;

use crate::archive::Plan;
use crate::error::{Error, ErrorCode, Result};
use crate::names::shown_path;

/// What the sender allowed.
#[derive(Clone, Copy, Debug, Default)]
pub struct Allow {
    /// `--allow-empty`.
    pub empty: bool,
    /// `--allow-own-party`.
    pub own_party: bool,
}

/// How much of each file is read to look for a secret key: key files are a
/// few hundred bytes, and age's own files start with a comment or two.
const KEY_SNIFF: u64 = 4096;

/// Lines a secret key file starts with (after comments).
const KEY_MARKERS: [&str; 3] = [MEMBER_KEY_HEADER, "AGE-SECRET-KEY-1", "PRIVATE+KEY+"];

/// Whether the start of a file holds a secret key line.
pub fn looks_like_secret_key(head: &[u8]) -> bool {
    let text = String::from_utf8_lossy(head);
    text.lines().map(|l| l.trim_start_matches('\u{feff}').trim()).any(|l| KEY_MARKERS.iter().any(|m| l.starts_with(m)))
}

/// Refuses the sender's own party as a recipient unless allowed.
pub fn check_recipients(me: &PartyId, recipients: &[PartyId], allow: Allow) -> Result<()> {
    if !allow.own_party && recipients.contains(me) {
        return Err(Error::new(
            ErrorCode::ToOwnParty,
            format!(
                "{me} is your own party: nothing was sent; check --to, or pass --allow-own-party to send to your own party's keys"
            ),
        ));
    }
    Ok(())
}

/// Checks the files of `plan`; returns the warnings to print.
pub fn check_plan(plan: &Plan, allow: Allow) -> Result<Vec<String>> {
    let mut warnings = Vec::new();
    for item in plan.items.iter().filter(|i| !i.is_dir) {
        let mut head = Vec::new();
        std::fs::File::open(&item.source)
            .and_then(|f| f.take(KEY_SNIFF).read_to_end(&mut head))
            .map_err(|e| Error::io(format!("cannot read {}", shown_path(&item.source)), e))?;
        if looks_like_secret_key(&head) {
            return Err(Error::new(
                ErrorCode::SecretKeyInDrop,
                format!(
                    "{} is a secret key file: nothing was sent; take it out of what you send (a secret key never \
                     travels: whoever holds it can sign as its owner and read what is sent to them)",
                    shown_path(&item.source)
                ),
            ));
        }
        if item.size > 0 {
            continue;
        }
        let named = !item.name.contains('/');
        if named && !allow.empty {
            return Err(Error::new(
                ErrorCode::EmptyFile,
                format!(
                    "{} is empty (0 bytes): nothing was sent; check the export, or pass --allow-empty to send it anyway",
                    shown_path(&item.source)
                ),
            ));
        }
        if !named {
            warnings.push(format!("warning: {} is empty (0 bytes)", item.name));
        }
    }
    if plan.total_bytes == 0 && !allow.empty {
        return Err(Error::new(
            ErrorCode::EmptyFile,
            "what you send holds no data (every file is empty, or there are none): nothing was sent; pass --allow-empty to send it anyway",
        ));
    }
    Ok(warnings)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_keys_are_found_by_their_content() {
        assert!(looks_like_secret_key(b"SEALDROP-MEMBER-SECRET-KEY-V1\n# ..."));
        assert!(looks_like_secret_key(b"# created: 2026\n# public key: age1...\nAGE-SECRET-KEY-1QQQ\n"));
        assert!(looks_like_secret_key(b"PRIVATE+KEY+camden.witness+0123abcd+AQ==\n"));
        assert!(looks_like_secret_key("\u{feff}SEALDROP-MEMBER-SECRET-KEY-V1".as_bytes()));
        assert!(!looks_like_secret_key(b"pupil_ref,name\nSYN001,Zo\xc3\xab\n"));
        assert!(!looks_like_secret_key(b"camden/data-team+07c0f69b+AQ== is a public key"));
    }

    #[test]
    fn own_party_needs_the_flag() {
        let me: PartyId = "camden".parse().unwrap();
        let them: PartyId = "islington".parse().unwrap();
        assert!(check_recipients(&me, std::slice::from_ref(&them), Allow::default()).is_ok());
        let both = [them, me.clone()];
        assert_eq!(check_recipients(&me, &both, Allow::default()).unwrap_err().code, "to_own_party");
        assert!(check_recipients(&me, &both, Allow { own_party: true, ..Allow::default() }).is_ok());
    }
}
