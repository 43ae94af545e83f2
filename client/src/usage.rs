//! Command lines that do not parse, reported the client's way.
//!
//! clap's own report is several paragraphs: what is wrong (with the missing
//! arguments listed on the lines below it), tips such as "a similar
//! subcommand exists: 'send'", the usage, and "For more information, try
//! '--help'". Our errors are one line, `error[usage]: ...`, so scripts and
//! people find the code and the message in the same place. This keeps all of
//! clap's content in that shape:
//!
//! ```text
//! error[usage]: the following required arguments were not provided: --to <TO>, <PATHS>...; see `sealdrop send --help`
//!   Usage: sealdrop send --to <TO> <PATHS>...
//! ```
//!
//! The first line says what is wrong (the list folded into it), clap's tips,
//! and which help to read; the usage follows, indented, so it never looks
//! like a second error.

use crate::error::ErrorCode;

/// Rewrites clap's rendered error text (without colours) as our usage error:
/// the `error[usage]:` line, then clap's usage lines indented by two spaces.
pub fn usage_error(rendered: &str) -> String {
    let mut message: Vec<String> = Vec::new();
    let mut listed: Vec<String> = Vec::new();
    let mut tips: Vec<String> = Vec::new();
    let mut usage: Vec<String> = Vec::new();
    let mut in_usage = false;
    for (i, line) in rendered.lines().enumerate() {
        let trimmed = line.trim();
        if i == 0 {
            message.push(trimmed.trim_start_matches("error:").trim().to_owned());
        } else if let Some(u) = trimmed.strip_prefix("Usage:") {
            in_usage = true;
            usage.push(format!("Usage: {}", u.trim()));
        } else if trimmed.is_empty() {
            in_usage = false;
        } else if in_usage {
            // The further forms of a multi-line usage, aligned under the first.
            usage.push(format!("       {trimmed}"));
        } else if let Some(tip) = trimmed.strip_prefix("tip:") {
            tips.push(tip.trim().to_owned());
        } else if trimmed.starts_with("For more information") {
            // Replaced by the exact help command below.
        } else {
            // Indented lines under the message: missing arguments, possible values.
            listed.push(trimmed.to_owned());
        }
    }
    let mut first = message.join(" ");
    if !listed.is_empty() {
        if first.ends_with(':') {
            first = format!("{first} {}", listed.join(", "));
        } else {
            first = format!("{first}; {}", listed.join(", "));
        }
    }
    if first.is_empty() {
        first = "invalid arguments".to_owned();
    }
    for tip in &tips {
        first = format!("{first}; {tip}");
    }
    let mut text = format!("error[{}]: {first}; see `{} --help`", ErrorCode::Usage, help_command(&usage));
    for line in &usage {
        text.push_str("\n  ");
        text.push_str(line);
    }
    text
}

/// The command whose help to read: the usage's leading words before the
/// first option or placeholder (`sealdrop send --to <TO>` gives `sealdrop send`).
fn help_command(usage: &[String]) -> String {
    let Some(first) = usage.first().and_then(|u| u.strip_prefix("Usage:")) else {
        return "sealdrop".to_owned();
    };
    let words: Vec<&str> = first
        .split_whitespace()
        .take_while(|w| !w.starts_with(['-', '[', '<', '{', '.']) && !w.contains('|'))
        .collect();
    if words.is_empty() { "sealdrop".to_owned() } else { words.join(" ") }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_arguments_are_listed_on_the_error_line_with_the_usage_below() {
        let clap = "error: the following required arguments were not provided:\n  --to <TO>\n  <PATHS>...\n\nUsage: sealdrop send --to <TO> <PATHS>...\n\nFor more information, try '--help'.\n";
        assert_eq!(
            usage_error(clap),
            "error[usage]: the following required arguments were not provided: --to <TO>, <PATHS>...; see `sealdrop send --help`\n  Usage: sealdrop send --to <TO> <PATHS>..."
        );
    }

    #[test]
    fn tips_and_multi_line_usages_are_kept() {
        let clap = "error: unrecognized subcommand 'sned'\n\n  tip: a similar subcommand exists: 'send'\n\nUsage: sealdrop [OPTIONS] <COMMAND>\n       sealdrop witness <COMMAND>\n\nFor more information, try '--help'.\n";
        assert_eq!(
            usage_error(clap),
            "error[usage]: unrecognized subcommand 'sned'; a similar subcommand exists: 'send'; see `sealdrop --help`\n  Usage: sealdrop [OPTIONS] <COMMAND>\n         sealdrop witness <COMMAND>"
        );
    }

    #[test]
    fn possible_values_follow_the_message() {
        let clap = "error: invalid value 'tcsh' for '<SHELL>'\n  [possible values: bash, zsh]\n\nFor more information, try '--help'.\n";
        assert_eq!(
            usage_error(clap),
            "error[usage]: invalid value 'tcsh' for '<SHELL>'; [possible values: bash, zsh]; see `sealdrop --help`"
        );
    }
}
