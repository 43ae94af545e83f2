//! The EXAMPLES of every command: shown at the end of its `--help` and as
//! the EXAMPLES section of its man page.
//!
//! One table, keyed by the command's path (`"directory show"`; `""` is
//! `sealdrop` itself). A test walks the whole command tree: a command
//! without examples here, or an example that does not parse as that very
//! command, fails it. To add a subcommand, add its entry below: one to three
//! `(what it does, the command line)` pairs a council officer could run as
//! they are (the global options, such as `--hub`, come from `sealdrop init`).

/// `(what it does, the command line)`.
pub type Example = (&'static str, &'static str);

/// Every command's examples, by path.
pub const EXAMPLES: &[(&str, &[Example])] = &[
    (
        "",
        &[
            (
                "Save your hub, key and the coordinator's public key once",
                "sealdrop --hub https://hub.example.gov.uk --identity ~/.sealdrop/camden.key --authority authority.pub init",
            ),
            ("Send a file to Islington", "sealdrop send --to islington fsm-islington-residents.csv"),
            ("Fetch everything waiting for your party", "sealdrop fetch --all -o ~/incoming"),
        ],
    ),
    (
        "init",
        &[
            (
                "Save the settings every later command uses (paths are saved absolute)",
                "sealdrop --hub https://hub.example.gov.uk --identity ~/.sealdrop/camden.key --authority authority.pub init",
            ),
            (
                "Trust a hub whose certificate the council's own CA signed",
                "sealdrop --hub https://hub.example.gov.uk --hub-ca council-ca.pem init",
            ),
        ],
    ),
    (
        "keygen",
        &[(
            "Make Camden's data team's key; send the printed card to the coordinator",
            "sealdrop keygen --party camden --member data-team --out ~/.sealdrop/camden.key",
        )],
    ),
    ("key", &[("Show your public key card and its fingerprint", "sealdrop key show")]),
    (
        "key export-age",
        &[
            ("Write your age identity to a new private file (mode 0600)", "sealdrop key export-age -o id.txt"),
            (
                "Decrypt a drop's ciphertext with stock age, without sealdrop",
                "sealdrop key export-age | age -d -i - -o drop.tar drop.age",
            ),
        ],
    ),
    (
        "key passphrase",
        &[
            ("Add a passphrase to your key, or change it (asked on the terminal)", "sealdrop key passphrase"),
            (
                "Change it from a script: the current passphrase, then the new one, on two lines",
                "sealdrop --passphrase-fd 0 key passphrase --new-passphrase-fd 0 < passphrases.txt",
            ),
            ("Remove it: the key file is plain text (mode 0600) again", "sealdrop key passphrase --remove"),
        ],
    ),
    (
        "key protect",
        &[(
            "Encrypt your key file to your YubiKey (age-plugin-yubikey on PATH), then save its identity file",
            "sealdrop key protect --plugin-recipient age1yubikey1qwt50d05nh5vutpdzmlg5wn80xq5negm4uj9ghv0snvdd3yysf5yw3rhl3t --plugin-identity ~/.sealdrop/yubikey-identity.txt",
        )],
    ),
    (
        "key show",
        &[
            ("Print your card for the coordinator (fingerprint on stderr)", "sealdrop key show"),
            ("Key name, fingerprint and card as one JSON object", "sealdrop key show --json"),
        ],
    ),
    (
        "directory",
        &[("Check which parties and agreements the hub's signed directory lists", "sealdrop directory show")],
    ),
    (
        "directory keygen",
        &[(
            "The coordinator's key pair: authority.key (secret) and authority.pub",
            "sealdrop directory keygen --name london-isa-coordinator --out authority.key",
        )],
    ),
    (
        "directory sign",
        &[(
            "Sign the edited directory",
            "sealdrop directory sign --key authority.key --input directory.json --out directory.signed",
        )],
    ),
    (
        "directory add-member",
        &[(
            "Add the key card a member sent to its party (raises the serial)",
            "sealdrop directory add-member --input directory.json --card islington-card.json",
        )],
    ),
    (
        "directory revoke",
        &[
            (
                "Revoke a lost key from when it was last known safe",
                "sealdrop directory revoke --input directory.json --key islington/data-team --reason \"laptop stolen\" --at 2026-11-20T09:00:00Z",
            ),
            (
                "Replace a member's key with its new card",
                "sealdrop directory revoke --input directory.json --key camden/data-team --reason rotation --replace-with camden-new-card.json",
            ),
        ],
    ),
    (
        "directory publish",
        &[(
            "Publish the signed directory (checked against the authority key first)",
            "sealdrop --authority authority.pub directory publish directory.signed",
        )],
    ),
    (
        "directory new",
        &[
            (
                "Start a directory from the key cards the members sent (never overwrites)",
                "sealdrop directory new --cards cards/ --agreement london-fsm-ehc --purpose \"Each home borough receives its residents' FSM records\" --lawful-basis \"UK GDPR Art. 6(1)(e); Education Act 1996\" --out directory.json",
            ),
            (
                "The same for councils outside London, with their names and codes from a CSV",
                "sealdrop directory new --cards cards/ --reference councils.csv --agreement kent-sen --purpose \"SEN transfers\" --lawful-basis \"Children and Families Act 2014\" --valid-until 2028-01-01 --max-expiry-days 14 --out directory.json",
            ),
        ],
    ),
    (
        "directory set-hub",
        &[
            (
                "List the hub's log key (from `sealdrop-hub verifier-key` on the hub) in the directory",
                "sealdrop directory set-hub --input directory.json --log-key hub-log.pub",
            ),
            (
                "The same, naming the hub's origin",
                "sealdrop directory set-hub --input directory.json --origin hub.example.gov.uk --log-key hub-log.pub",
            ),
        ],
    ),
    (
        "directory fingerprint",
        &[
            (
                "The fingerprint of the coordinator's key, to read out by phone",
                "sealdrop directory fingerprint authority.pub",
            ),
            ("The fingerprint of a member's key card", "sealdrop directory fingerprint cards/camden-data-team.json"),
            ("The hub's log key, as JSON", "sealdrop directory fingerprint hub-log.pub --json"),
        ],
    ),
    (
        "directory show",
        &[
            ("Summarise the hub's verified directory", "sealdrop directory show"),
            ("The whole verified directory as JSON", "sealdrop directory show --json"),
        ],
    ),
    (
        "send",
        &[
            ("Send a file and a folder to Islington as one drop", "sealdrop send --to islington fsm.csv reports/"),
            (
                "Send to two parties under a named agreement, waiting at most 36 hours",
                "sealdrop send --to islington,hackney --agreement london-fsm-ehc --expires 36h list.csv",
            ),
            (
                "See where each row of a list would go, without sending",
                "sealdrop send --split-by home_la --dry-run fsm.csv",
            ),
        ],
    ),
    (
        "inbox",
        &[("List the drops waiting for your party", "sealdrop inbox"), ("The same as JSON", "sealdrop inbox --json")],
    ),
    (
        "fetch",
        &[
            ("Fetch everything waiting into ~/incoming", "sealdrop fetch --all -o ~/incoming"),
            ("Fetch one drop into the current folder", "sealdrop fetch d-0123456789abcdefghjkmnpqrs"),
            (
                "Fetch all and merge the CSV parts into one file",
                "sealdrop fetch --all -o ~/incoming --merge-csv ~/incoming/fsm-all-senders.csv",
            ),
        ],
    ),
    (
        "status",
        &[
            ("Every drop you sent and each recipient's outcome", "sealdrop status"),
            (
                "Drops since November under one agreement",
                "sealdrop status --since 2026-11-01 --agreement london-fsm-ehc",
            ),
            (
                "Only the drops not delivered, with jq",
                "sealdrop status --json | jq '.[] | select(.state != \"delivered\")'",
            ),
        ],
    ),
    ("recall", &[("Take back a drop no recipient has acknowledged", "sealdrop recall d-0123456789abcdefghjkmnpqrs")]),
    (
        "journal",
        &[
            ("What this machine sent and received since November", "sealdrop journal --since 2026-11-01"),
            ("Everything exchanged with Islington, as JSON", "sealdrop journal --party islington --json"),
        ],
    ),
    (
        "watch",
        &[
            (
                "Serve a watch folder: files saved in outbox/<party>/ are sent, drops arrive in inbox/",
                "sealdrop watch --dir /srv/sealdrop/data-team --status-listen 127.0.0.1:9477",
            ),
            (
                "Post each event to a Teams channel's workflow webhook",
                "sealdrop watch --dir /srv/sealdrop/data-team --notify-webhook https://example.webhook.office.com/... --notify-webhook-format teams",
            ),
            (
                "Mail the team when a drop arrives or expires undelivered",
                "sealdrop watch --dir /srv/sealdrop/data-team --notify-email fsm-team@camden.gov.uk --smtp-server smtp.camden.gov.uk:587 --smtp-from sealdrop@camden.gov.uk --notify-events arrived,undelivered",
            ),
            ("One pass for cron or Windows Task Scheduler", "sealdrop watch --dir /srv/sealdrop/data-team --once"),
        ],
    ),
    (
        "witness",
        &[
            ("Cosign the hub's checkpoint as your party's witness", "sealdrop --witness-key witness.key witness"),
            ("Make the witness key first", "sealdrop witness keygen --party camden --out witness.key"),
        ],
    ),
    (
        "witness keygen",
        &[(
            "Make a witness key; the coordinator lists the printed key under witness_keys",
            "sealdrop witness keygen --party camden --out witness.key",
        )],
    ),
    ("audit", &[("Verify the whole transfer log and every rule", "sealdrop audit verify")]),
    (
        "audit verify",
        &[
            ("Verify the hub's log", "sealdrop audit verify"),
            (
                "Fail (exit 7) when anything needs a look, e.g. a key used after its revocation",
                "sealdrop audit verify --strict",
            ),
            (
                "Verify an exported bundle offline, requiring two parties' witnesses",
                "sealdrop --authority authority.pub audit verify --bundle log.bundle --log-key hub-log.pub --witnesses 2",
            ),
        ],
    ),
    (
        "audit report",
        &[
            (
                "Who sent what to whom since September, as CSV and HTML",
                "sealdrop audit report --since 2026-09-01 --csv flows.csv --html flows.html",
            ),
            (
                "November's return (--until is exclusive)",
                "sealdrop audit report --since 2026-11-01 --until 2026-12-01 --csv november.csv --html november.html",
            ),
            ("One agreement's flows as JSON Lines", "sealdrop audit report --agreement london-fsm-ehc --json"),
        ],
    ),
    (
        "audit export",
        &[
            ("Export the whole log for an offline machine", "sealdrop audit export -o log.bundle"),
            ("Replace last month's bundle", "sealdrop audit export -o log.bundle --force"),
        ],
    ),
    ("demo", &[("Run the self-contained demonstration", "sealdrop demo")]),
    ("sample", &[("A synthetic pupil list to try --split-by on", "sealdrop sample fsm --rows 2000 -o fsm.csv")]),
    (
        "sample fsm",
        &[
            ("2,000 invented pupils at Camden's schools", "sealdrop sample fsm --rows 2000 -o fsm.csv"),
            (
                "A workbook with 5 rows no party can take",
                "sealdrop sample fsm --rows 500 --school-la hackney --unroutable 5 -o fsm.xlsx",
            ),
        ],
    ),
    (
        "completions",
        &[
            (
                "Install bash completion for your user",
                "sealdrop completions bash > ~/.local/share/bash-completion/completions/sealdrop",
            ),
            ("Install zsh completion into a folder on $fpath", "sealdrop completions zsh > ~/.zfunc/_sealdrop"),
        ],
    ),
    (
        "man",
        &[
            ("Install the manual pages for your user", "sealdrop man --out ~/.local/share/man/man1"),
            ("Read one without installing", "sealdrop man --out man1 && man -l man1/sealdrop-send.1"),
        ],
    ),
];

/// The examples of the command at `path` (`"directory show"`, `""` for the top).
pub fn examples(path: &str) -> Option<&'static [Example]> {
    EXAMPLES.iter().find(|(p, _)| *p == path).map(|(_, e)| *e)
}

/// The `Examples:` block for `--help`.
pub fn help_text(examples: &[Example]) -> String {
    let mut text = String::from("Examples:");
    for (what, command) in examples {
        text.push_str(&format!("\n  {what}:\n    {command}"));
    }
    text
}

/// The words of an example's `sealdrop ...` command line as a shell would
/// pass them, up to the first `|`, `>`, `<` or `&&` (what follows is another
/// program's or the shell's). Handles the examples' quoting: "..." and '...'.
pub fn words(command: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut quote = None;
    for c in command.chars() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), c) => word.push(c),
            (None, '"' | '\'') => {
                quote = Some(c);
                in_word = true;
            }
            (None, c) if c.is_whitespace() => {
                if in_word {
                    if matches!(word.as_str(), "|" | ">" | "<" | "&&") {
                        return words;
                    }
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            (None, c) => {
                word.push(c);
                in_word = true;
            }
        }
    }
    if in_word {
        words.push(word);
    }
    words
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory as _;

    /// Every visible command's path, `""` first.
    fn paths(cmd: &clap::Command, prefix: &str, out: &mut Vec<String>) {
        out.push(prefix.to_owned());
        for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set() && s.get_name() != "help") {
            let path =
                if prefix.is_empty() { sub.get_name().to_owned() } else { format!("{prefix} {}", sub.get_name()) };
            paths(sub, &path, out);
        }
    }

    #[test]
    fn every_command_has_examples_that_parse_as_that_command() {
        let mut all = Vec::new();
        paths(&super::super::Cli::command(), "", &mut all);
        assert!(all.len() > 20, "{all:?}");
        for path in &all {
            let examples = examples(path).unwrap_or_else(|| {
                panic!("`sealdrop {path}` has no examples: add them to EXAMPLES in client/src/cli/examples.rs")
            });
            assert!(!examples.is_empty(), "`sealdrop {path}`");
            for (what, command) in examples {
                assert!(!what.is_empty() && !what.ends_with('.') && !what.ends_with(':'), "{what:?}");
                let words = words(command);
                assert_eq!(words[0], "sealdrop", "{command}");
                let matches = super::super::command()
                    .try_get_matches_from(&words)
                    .unwrap_or_else(|e| panic!("example of `sealdrop {path}` does not parse: {command}\n{e}"));
                // The subcommand it runs: the leaf (or the command itself for a group's example).
                let mut ran = Vec::new();
                let mut m = &matches;
                while let Some((name, sub)) = m.subcommand() {
                    ran.push(name);
                    m = sub;
                }
                let ran = ran.join(" ");
                assert!(
                    ran == *path || ran.starts_with(&format!("{path} ")) || path.is_empty(),
                    "an example of `sealdrop {path}` runs `sealdrop {ran}`: {command}"
                );
            }
        }
        // No examples for commands that do not exist (a renamed or removed one).
        for (path, _) in EXAMPLES {
            assert!(all.contains(&path.to_string()), "examples for `sealdrop {path}`, which is no command");
        }
    }

    #[test]
    fn words_split_like_a_shell_up_to_a_pipe_or_redirection() {
        assert_eq!(words("sealdrop a \"b c\" 'd' e > f"), ["sealdrop", "a", "b c", "d", "e"]);
        assert_eq!(words("sealdrop x | jq '.[]'"), ["sealdrop", "x"]);
        assert_eq!(words("sealdrop y --fd 0 < lines.txt"), ["sealdrop", "y", "--fd", "0"]);
        assert_eq!(words("sealdrop man --out /tmp/m && man -l x"), ["sealdrop", "man", "--out", "/tmp/m"]);
    }
}
