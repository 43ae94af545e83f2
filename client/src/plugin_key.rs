//! A member key whose decryption key a hardware token holds, through an age
//! plugin (`age-plugin-yubikey`, `age-plugin-tpm`): `keygen
//! --plugin-identity` reads the identity file the plugin wrote, takes its
//! recipient, and proves the two belong together before any key is written.
//!
//! A plugin identity is only a reference to the key on the token, so its
//! recipient cannot be derived from it; a wrong one would put a key in the
//! directory that nobody can decrypt for. The proof is a probe encrypted to
//! the recipient and decrypted through the plugin, as every fetch will be
//! (the token asks for its PIN or a touch).

use std::io::{Read as _, Write as _};
use std::path::Path;

use sealdrop_proto::age_keys::{AgeIdentity, AgeRecipient, abbreviated};
use sealdrop_proto::ids::{MemberName, PartyId};
use sealdrop_proto::keys::MemberSecretKey;

use crate::error::{Error, ErrorCode, Result};

/// What the probe carries; age authenticates it, so getting it back proves the key.
const PROBE: &[u8] = b"sealdrop: does this token hold the key for this recipient?";

/// A new member key (a fresh signing key) whose age key is the plugin
/// identity in `identity_file`, with `recipient` or else the recipient the
/// file names in a comment (`# recipient: age1...`, as age plugins write).
pub fn member_key(
    party: PartyId,
    member: MemberName,
    identity_file: &Path,
    recipient: Option<&str>,
) -> Result<MemberSecretKey> {
    let text = std::fs::read_to_string(identity_file).map_err(|e| {
        Error::new(
            ErrorCode::KeyUnreadable,
            format!("cannot read the plugin identity file {}: {e}; check the path", identity_file.display()),
        )
    })?;
    let identity = plugin_identity(&text, identity_file)?;
    let recipient = match recipient {
        Some(given) => given.to_owned(),
        None => recipient_comment(&text).ok_or_else(|| {
            Error::new(
                ErrorCode::KeyInvalid,
                format!(
                    "{} names no recipient (no `# recipient: age1...` comment); give the token's recipient with --plugin-recipient",
                    identity_file.display()
                ),
            )
        })?,
    };
    let recipient: AgeRecipient = recipient.parse().map_err(|e| {
        Error::new(
            ErrorCode::KeyInvalid,
            format!("--plugin-recipient: {e}; give the recipient the token's plugin printed"),
        )
    })?;
    prove_pair(&identity, &recipient)?;
    Ok(MemberSecretKey::with_age_key(party, member, identity, recipient))
}

/// The one `AGE-PLUGIN-...` line of an age identity file.
fn plugin_identity(text: &str, file: &Path) -> Result<AgeIdentity> {
    let lines: Vec<&str> = text.lines().map(str::trim).filter(|l| l.starts_with("AGE-PLUGIN-")).collect();
    let [line] = lines[..] else {
        return Err(Error::new(
            ErrorCode::KeyInvalid,
            format!(
                "{} holds {} plugin identities (`AGE-PLUGIN-...` lines); give a file with exactly one, as the token's plugin wrote it",
                file.display(),
                lines.len()
            ),
        ));
    };
    match line.parse::<AgeIdentity>() {
        Ok(identity @ AgeIdentity::Plugin(_)) => Ok(identity),
        _ => Err(Error::new(
            ErrorCode::KeyInvalid,
            format!("{}: its `AGE-PLUGIN-...` line is not a valid age plugin identity", file.display()),
        )),
    }
}

/// The recipient an age plugin's identity file names in a comment:
/// `# recipient: age1...` (the age-plugin crate, age-plugin-tpm) or
/// `#    Recipient: age1...` (age-plugin-yubikey).
fn recipient_comment(text: &str) -> Option<String> {
    text.lines().find_map(|line| {
        let comment = line.trim().strip_prefix('#')?.trim();
        let (field, value) = comment.split_once(':')?;
        field.trim().eq_ignore_ascii_case("recipient").then(|| value.trim().to_owned())
    })
}

/// Encrypts a probe to `recipient` and decrypts it through `identity`'s
/// plugin: they belong together only if the probe comes back.
fn prove_pair(identity: &AgeIdentity, recipient: &AgeRecipient) -> Result<()> {
    let shown = abbreviated(&recipient.to_string());
    eprintln!("checking that {shown} is the token's key: its plugin may ask for the PIN or a touch");
    let (encryptor, _) = crate::age_keys::encryptor(&[(format!("the recipient {shown}"), recipient.clone())])?;
    let mut sealed = Vec::new();
    let failed = |e: std::io::Error| {
        Error::new(ErrorCode::EncryptFailed, format!("could not encrypt the probe to {shown}: {e}"))
    };
    let mut writer = encryptor.wrap_output(&mut sealed).map_err(failed)?;
    writer.write_all(PROBE).and_then(|()| writer.finish().map(drop)).map_err(failed)?;

    let decrypting = crate::age_keys::decrypting_identity(identity)?;
    let mismatch = |why: String| {
        Error::new(
            ErrorCode::PluginKeyMismatch,
            format!(
                "{shown} is not the key of the token this identity names ({why}); give the recipient the plugin printed with this identity"
            ),
        )
    };
    let decryptor = age::Decryptor::new_buffered(&sealed[..]).map_err(|e| mismatch(e.to_string()))?;
    let mut opened = Vec::new();
    match decryptor.decrypt(std::iter::once(decrypting.as_identity())) {
        Ok(mut reader) => reader.read_to_end(&mut opened).map_err(|e| mismatch(e.to_string()))?,
        Err(e) => return Err(decrypting.plugin_failure(&e).unwrap_or_else(|| mismatch(e.to_string()))),
    };
    if opened != PROBE {
        return Err(mismatch("the probe came back changed".to_owned()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_recipient_comment_is_found_in_each_plugins_style() {
        let age_plugin = "# created: 2026-12-07T12:57:47Z\n# recipient: age1abc\nAGE-PLUGIN-X-1Q\n";
        assert_eq!(recipient_comment(age_plugin).as_deref(), Some("age1abc"));
        let yubikey = "#       Serial: 123, Slot: 1\n#    Recipient: age1yubikey1xyz\nAGE-PLUGIN-YUBIKEY-1Q\n";
        assert_eq!(recipient_comment(yubikey).as_deref(), Some("age1yubikey1xyz"));
        assert_eq!(recipient_comment("AGE-PLUGIN-X-1Q\n"), None);
    }

    #[test]
    fn a_file_must_hold_exactly_one_plugin_identity() {
        let file = Path::new("id.txt");
        let none = plugin_identity("# nothing here\n", file).unwrap_err();
        assert_eq!(none.code, "key_invalid");
        assert!(none.message.contains("holds 0 plugin identities"), "{}", none.message);
        let native = plugin_identity("AGE-PLUGIN-\n", file).unwrap_err();
        assert!(native.message.contains("not a valid age plugin identity"), "{}", native.message);
    }
}
