//! What the client reads from other parties' drops and from its own files:
//! the tar inside a drop, the age ciphertext around it, CSV parts to merge,
//! spreadsheets to split, the journal, the config file and key files.

use std::io;
use std::path::Path;

use sha2::{Digest, Sha256};

use sealdrop::config::ConfigFile;
use sealdrop::journal::{self, Filter};
use sealdrop::merge::{Formulas, Part, merge_csv_parts};
use sealdrop::split::route::Router;
use sealdrop::split::table::{BOM, CsvSource, RowSource, XlsxSource, find_column};
use sealdrop_proto::ids::{DropId, MemberName, PartyId};
use sealdrop_proto::keys::{MemberPublicKey, MemberSecretKey, NoteSigningKey, NoteVerifierKey};

use crate::check::extract_contained;
use crate::fixtures::fixture;

/// The tar archive inside a drop, extracted by `archive::extract` as
/// `sealdrop fetch` does after decryption.
///
/// Asserts (see [`extract_contained`]): nothing is written outside the
/// destination, nothing but regular files and folders is created, and a
/// successful extraction wrote exactly what it reported.
pub fn tar_extract(data: &[u8]) -> bool {
    extract_contained(data)
}

/// A drop's ciphertext, decrypted with islington's age identity and
/// unpacked, as `sealdrop fetch` does (age's header and STREAM parsing, then
/// the archive).
///
/// Asserts: as [`tar_extract`], for whatever decrypts.
pub fn age_decrypt(data: &[u8]) -> bool {
    let Ok(decryptor) = age::Decryptor::new_buffered(data) else { return false };
    let me = fixture().member(1);
    let Ok(mut plaintext) = decryptor.decrypt(std::iter::once(me.age_identity.native().expect("native"))) else {
        return false;
    };
    let extracted = extract_contained(&mut plaintext);
    // The final chunk is authenticated only when read to the end.
    io::copy(&mut plaintext, &mut io::sink()).is_ok() && extracted
}

/// A CSV file for `send --split-by`, read by the split's `CsvSource` and
/// each row's value routed through the example directory as camden.
///
/// Asserts: the header is the file's first record; every row passed on is a
/// verbatim slice of the file, in order; the file's hash covers all of it.
pub fn split_csv(data: &[u8]) -> bool {
    let progress = indicatif::ProgressBar::hidden();
    let Ok(mut source) = CsvSource::new(data, Path::new("fuzz.csv"), progress) else { return false };
    assert_eq!(source.preamble().starts_with(BOM), data.starts_with(BOM), "the BOM was not kept as it was");
    let column = find_column(source.header(), "home_la", Path::new("fuzz.csv")).unwrap_or(0);
    let dir = &fixture().example.directory;
    let mut router = Router::new(dir, "camden".parse().expect("valid"));
    let mut cursor = 0usize;
    let mut last = 1u64;
    let read = source.rows(column, &mut |row| {
        let at = find(&data[cursor..], row.body).expect("a row passed on is not a verbatim slice of the file");
        cursor += at + row.body.len();
        assert!(row.number > last, "row numbers must grow");
        last = row.number;
        router.route(row.value);
        Ok(())
    });
    if read.is_err() {
        return false;
    }
    assert_eq!(source.input_sha256().expect("in memory"), <[u8; 32]>::from(Sha256::digest(data)));
    true
}

/// An `.xlsx` workbook for `send --split-by`, read by the split's
/// `XlsxSource` (calamine, cell by cell) from a file.
///
/// Asserts: each row is written as one CSV record at least as wide as the
/// header; the hash is the file's.
pub fn split_xlsx(data: &[u8]) -> bool {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let path = dir.path().join("fuzz.xlsx");
    std::fs::write(&path, data).expect("writable");
    let Ok(mut source) = XlsxSource::open(&path, None) else { return false };
    let width = source.header().len();
    let read = source.rows(0, &mut |row| {
        let mut r = csv::ReaderBuilder::new().has_headers(false).flexible(true).from_reader(row.body);
        let records: Vec<csv::ByteRecord> = r.byte_records().collect::<Result<_, _>>().expect("rows are valid CSV");
        assert_eq!(records.len(), 1, "a row became {} CSV records", records.len());
        assert!(records[0].len() >= width.max(1), "a row is narrower than the header");
        Ok(())
    });
    if read.is_err() {
        return false;
    }
    assert_eq!(source.input_sha256().expect("hashed at open"), <[u8; 32]>::from(Sha256::digest(data)));
    true
}

/// Up to three fetched CSV parts (separated by a line `=====`), merged with
/// `merge::merge_csv_parts` as `fetch --merge-csv` does.
///
/// Asserts: a merge writes one header with `source_party` added and as many
/// rows as it reports, each naming its part's sender, and no cell a
/// spreadsheet would run as a formula; a refused merge leaves nothing behind
/// (no output, no temporary file).
pub fn merge_csv(data: &[u8]) -> bool {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let senders = ["camden", "hackney", "islington"];
    let mut parts = Vec::new();
    for (i, part) in split_parts(data).into_iter().take(3).enumerate() {
        let path = dir.path().join(format!("part-{i}.csv"));
        std::fs::write(&path, part).expect("writable");
        let drop: DropId = format!("d-{:026}", i).parse().expect("valid");
        parts.push(Part { path, drop, from: senders[i].parse::<PartyId>().expect("valid") });
    }
    let out_dir = dir.path().join("out");
    std::fs::create_dir(&out_dir).expect("writable");
    let out = out_dir.join("merged.csv");
    match merge_csv_parts(&parts, &out, Formulas::Neutralise) {
        Ok(Some(outcome)) => {
            let bytes = std::fs::read(&out).expect("the merged file exists");
            assert_eq!(outcome.bom, bytes.starts_with(BOM));
            let body = bytes.strip_prefix(BOM).unwrap_or(&bytes);
            let mut r = csv::ReaderBuilder::new().has_headers(true).from_reader(body);
            let header = r.byte_headers().expect("the merged file has a header").clone();
            assert_eq!(header.iter().next_back(), Some(&b"source_party"[..]));
            let no_formula = |rec: &csv::ByteRecord| {
                assert!(!rec.iter().any(sealdrop::formulas::is_formula), "a formula cell was merged as sent");
            };
            no_formula(&header);
            let mut rows = 0u64;
            for rec in r.byte_records() {
                let rec = rec.expect("the merged file is valid CSV");
                no_formula(&rec);
                let from = rec.iter().next_back().expect("a source_party field");
                assert!(parts.iter().any(|p| p.from.as_str().as_bytes() == from), "a row names no part's sender");
                rows += 1;
            }
            assert_eq!(rows, outcome.rows, "the merge reported other rows than it wrote");
            true
        }
        Ok(None) => {
            assert!(parts.is_empty());
            false
        }
        Err(_) => {
            let left: Vec<_> = std::fs::read_dir(&out_dir).expect("readable").collect();
            assert!(left.is_empty(), "a refused merge left files behind");
            false
        }
    }
}

/// The local journal (`journal.jsonl`), read with `journal::parse` and shown
/// as `sealdrop journal` shows it.
///
/// Asserts: every line is counted once (entry, damaged or unknown) and an
/// entry reads back equal from the line the client would write for it.
pub fn journal(data: &[u8]) -> bool {
    let j = journal::parse(data);
    let lines = data.split(|b| *b == b'\n').count();
    assert!(j.entries.len() + j.damaged + j.unknown <= lines);
    for e in &j.entries {
        let line = serde_json::to_vec(e).expect("entries serialise");
        assert_eq!(journal::parse(&line).entries, std::slice::from_ref(e), "a journal entry changed in a round trip");
        let _ = journal::line(&j, e);
    }
    let _ = journal::select(&j, &Filter { checkpoints: true, ..Filter::default() });
    let _ = j.sent_names();
    !j.entries.is_empty()
}

/// The client's config file (TOML), as `ConfigFile::load` reads it.
///
/// Asserts: a config reads back equal from the text the client writes.
pub fn config(data: &[u8]) -> bool {
    let Ok(text) = std::str::from_utf8(data) else { return false };
    let Ok(c) = toml::from_str::<ConfigFile>(text) else { return false };
    let written = toml::to_string_pretty(&c).expect("a config serialises");
    assert_eq!(toml::from_str::<ConfigFile>(&written).ok(), Some(c), "the config changed in a round trip");
    true
}

/// Key material a person hands over or keeps in a file: a verifier key
/// (`authority.pub`, a hub's log key), a signed-note private key
/// (`authority.key`, a witness key), a member secret key file, a public key
/// card (JSON), an age identity line, and the ids inside them.
///
/// Asserts: each reads back equal from the text sealdrop writes for it; a
/// parsed member key's public card is valid; a parsed id prints as given.
pub fn keys(data: &[u8]) -> bool {
    let Ok(text) = std::str::from_utf8(data) else { return false };
    let mut accepted = false;
    if let Ok(k) = text.parse::<NoteVerifierKey>() {
        accepted = true;
        assert_eq!(k.to_string().parse::<NoteVerifierKey>().ok(), Some(k));
    }
    if let Ok(k) = NoteSigningKey::from_note_text(text) {
        accepted = true;
        let back = NoteSigningKey::from_note_text(&k.to_note_text()).expect("a key's own text parses");
        assert_eq!(back.verifier(), k.verifier());
    }
    if let Ok(k) = MemberSecretKey::from_file_text(text) {
        accepted = true;
        let card = k.public();
        card.validate().expect("the card of a parsed member key is valid");
        let back = MemberSecretKey::from_file_text(&k.to_file_text()).expect("a key file's own text parses");
        assert_eq!(back.public(), card);
    }
    if let Ok(card) = serde_json::from_str::<MemberPublicKey>(text.trim()) {
        accepted = true;
        let _ = card.validate();
        let json = serde_json::to_string(&card).expect("cards serialise");
        assert_eq!(serde_json::from_str::<MemberPublicKey>(&json).ok(), Some(card));
    }
    if let Ok(id) = text.parse::<sealdrop_proto::age_keys::AgeIdentity>() {
        use age::secrecy::ExposeSecret;
        accepted = true;
        let again: sealdrop_proto::age_keys::AgeIdentity =
            id.to_secret_string().expose_secret().parse().expect("an identity's own text");
        assert_eq!(again.to_public().map(|r| r.to_string()), id.to_public().map(|r| r.to_string()));
    }
    for (ok, shown) in [
        (text.parse::<PartyId>().map(|i| i.to_string()).ok(), "party id"),
        (text.parse::<MemberName>().map(|i| i.to_string()).ok(), "member name"),
        (text.parse::<DropId>().map(|i| i.to_string()).ok(), "drop id"),
    ] {
        if let Some(s) = ok {
            accepted = true;
            assert_eq!(s, text, "a {shown} prints otherwise than given");
        }
    }
    accepted
}

/// The parts of a merge input: split at lines `=====`.
fn split_parts(data: &[u8]) -> Vec<&[u8]> {
    const SEP: &[u8] = b"\n=====\n";
    let mut parts = Vec::new();
    let mut rest = data;
    while let Some(i) = find(rest, SEP) {
        parts.push(&rest[..i + 1]);
        rest = &rest[i + SEP.len()..];
    }
    parts.push(rest);
    parts
}

/// The first position of `needle` in `hay`.
fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() {
        return Some(0);
    }
    hay.windows(needle.len()).position(|w| w == needle)
}
