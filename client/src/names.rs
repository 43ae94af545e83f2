//! File names from outside this machine's user (a sender's archive, a
//! journal written by an earlier fetch): which characters make a name
//! unsafe to receive, and how any such name is shown on a terminal.
//!
//! A name is text a sender chose. Printed raw, a control character can move
//! the cursor, rewrite a line or fake a `fetched ...` message; a
//! bidirectional override can show `evil\u{202e}vsc.exe` as `evilexe.csv`.
//! So `send` and `fetch` refuse names holding either ([`unsafe_char`]), and
//! every command prints names only through [`shown`], which escapes them
//! (older journals, and names that came through before this check, too).

use std::path::Path;

/// The bidirectional formatting characters: embeddings and overrides
/// (U+202A-U+202E), isolates (U+2066-U+2069), and the marks (U+200E,
/// U+200F, U+061C) that reorder text just as well.
fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{200e}' | '\u{200f}' | '\u{061c}')
}

/// Whether `c` is a C0 or C1 control character or DEL (U+0000-U+001F,
/// U+007F-U+009F).
fn is_control(c: char) -> bool {
    c.is_control()
}

/// The first character of `name` that makes it unsafe to write or print
/// as a file name: a control character (C0, C1, DEL) or a bidirectional
/// override. `None` for a safe name.
pub fn unsafe_char(name: &str) -> Option<char> {
    name.chars().find(|&c| is_control(c) || is_bidi_control(c))
}

/// What an unsafe character is, for a message: `U+001B (a control character)`.
pub fn describe_char(c: char) -> String {
    let what = if is_bidi_control(c) { "a bidirectional override" } else { "a control character" };
    format!("U+{:04X} ({what})", c as u32)
}

/// How many characters of a name are shown at most: a whole file name
/// (255 bytes) fits; a path of thousands of bytes is cut, with `...`.
const SHOWN_CHARS: usize = 255;

/// `name` as it may be printed: every control character, bidirectional
/// override and backslash escaped (`\u{1b}`, `\u{202e}`, `\\`), so the
/// terminal shows exactly the characters the name holds and cannot be made
/// to do anything else; cut after `SHOWN_CHARS` characters. The one
/// function for showing an untrusted name.
pub fn shown(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for (i, c) in name.chars().enumerate() {
        if i == SHOWN_CHARS {
            out.push_str("...");
            break;
        }
        match c {
            '\\' => out.push_str("\\\\"),
            c if is_control(c) || is_bidi_control(c) => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
            c => out.push(c),
        }
    }
    out
}

/// A path as it may be printed: [`shown`] of its text (bytes that are not
/// UTF-8 as U+FFFD).
pub fn shown_path(path: &Path) -> String {
    shown(&path.to_string_lossy())
}

/// Names joined for a message: `a.csv, b.csv`, each [`shown`].
pub fn shown_list<'a>(names: impl IntoIterator<Item = &'a String>) -> String {
    names.into_iter().map(|n| shown(n)).collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_and_bidi_overrides_are_unsafe() {
        for (name, c) in [
            ("a\u{1b}[2Jb.csv", '\u{1b}'),
            ("line\nbreak.csv", '\n'),
            ("tab\t.csv", '\t'),
            ("nul\0.csv", '\0'),
            ("del\u{7f}.csv", '\u{7f}'),
            ("c1\u{85}.csv", '\u{85}'),
            ("csi\u{9b}31m.csv", '\u{9b}'),
            ("evil\u{202e}vsc.exe", '\u{202e}'),
            ("iso\u{2066}late", '\u{2066}'),
            ("mark\u{200f}.csv", '\u{200f}'),
        ] {
            assert_eq!(unsafe_char(name), Some(c), "{name:?}");
        }
        for name in ["Zoë pupil list.csv", "fsm-islington.csv", "日本語.txt", "a b (1).csv", "émigré\u{301}.csv"]
        {
            assert_eq!(unsafe_char(name), None, "{name:?}");
        }
        assert_eq!(describe_char('\u{1b}'), "U+001B (a control character)");
        assert_eq!(describe_char('\u{202e}'), "U+202E (a bidirectional override)");
    }

    #[test]
    fn shown_names_hold_no_character_a_terminal_acts_on() {
        assert_eq!(shown("plain Zoë.csv"), "plain Zoë.csv");
        assert_eq!(shown("x\u{1b}[2J\nfetched d-fake.csv"), "x\\u{1b}[2J\\u{a}fetched d-fake.csv");
        assert_eq!(shown("evil\u{202e}vsc.exe"), "evil\\u{202e}vsc.exe");
        assert_eq!(shown("a\\u{1b}"), "a\\\\u{1b}", "a backslash is escaped, so escapes are unambiguous");
        assert_eq!(shown("\u{9b}\u{7f}"), "\\u{9b}\\u{7f}");
        let long = "n".repeat(300);
        assert_eq!(shown(&long), format!("{}...", "n".repeat(255)));
        assert_eq!(shown(&"n".repeat(255)), "n".repeat(255));
        for s in [shown("\u{1b}\u{9b}\u{202e}\n\r\t"), shown_list(&["a\nb".to_owned(), "c".to_owned()])] {
            assert!(unsafe_char(&s).is_none(), "{s:?}");
        }
        assert_eq!(shown_path(Path::new("/out/a\u{1b}b")), "/out/a\\u{1b}b");
    }
}
