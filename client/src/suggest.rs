//! "Did you mean ...?" for a party or agreement the directory does not
//! know: a typo such as `--to islingon` names the party it was meant to.

use crate::error::ErrorCode;
use sealdrop_proto::directory::Directory;

/// How alike (Jaro-Winkler, 0 to 1, case-insensitive) a name must be to a
/// known one to be suggested: close enough for a typo or two in a borough's
/// name, not so loose that an unrelated party is offered.
const ALIKE: f64 = 0.85;

/// The candidate whose key is most like `wanted`, if any is alike enough.
/// Each candidate is (what to suggest, a key to compare with).
pub fn closest<'a>(wanted: &str, candidates: impl IntoIterator<Item = (&'a str, &'a str)>) -> Option<&'a str> {
    let wanted = wanted.trim().to_lowercase();
    let mut best: Option<(f64, &str)> = None;
    for (shown, key) in candidates {
        let score = strsim::jaro_winkler(&wanted, &key.trim().to_lowercase());
        if score >= ALIKE && best.is_none_or(|(b, _)| score > b) {
            best = Some((score, shown));
        }
    }
    best.map(|(_, shown)| shown)
}

/// The party id most like `wanted`, compared with every party's id, name
/// and aliases.
pub fn party<'a>(dir: &'a Directory, wanted: &str) -> Option<&'a str> {
    closest(
        wanted,
        dir.parties.iter().flat_map(|p| {
            let id = p.id.as_str();
            [(id, id), (id, p.name.as_str())].into_iter().chain(p.aliases.iter().map(move |a| (id, a.as_str())))
        }),
    )
}

/// The agreement id most like `wanted`, compared with every id and title.
pub fn agreement<'a>(dir: &'a Directory, wanted: &str) -> Option<&'a str> {
    closest(
        wanted,
        dir.agreements.iter().flat_map(|a| [(a.id.as_str(), a.id.as_str()), (a.id.as_str(), a.title.as_str())]),
    )
}

/// `sealdrop journal --party TEXT`: the party id to filter by. A party the
/// journal names is taken as it is (a party since removed from the
/// directory still has its history); otherwise `TEXT` is resolved through
/// the directory this client last verified (so a name or GSS code works
/// too). A party in neither used to match nothing, silently, which reads
/// as "nothing was exchanged with them": it is refused, with the party it
/// most likely meant.
pub fn journal_party(settings: &crate::context::Settings, text: &str) -> crate::error::Result<String> {
    use crate::journal::Event;
    let journal = crate::journal::read(&settings.state_dir)?;
    let mut known: Vec<&str> = journal
        .entries
        .iter()
        .flat_map(|e| match &e.event {
            Event::Sent(s) => s.recipients.iter().map(|p| p.as_str()).collect(),
            Event::Received(r) => vec![r.from.as_str()],
            Event::Recalled(_) | Event::Checkpoint(_) => Vec::new(),
        })
        .collect();
    known.sort_unstable();
    known.dedup();
    if let Some(id) = known.iter().find(|id| id.eq_ignore_ascii_case(text.trim())) {
        return Ok((*id).to_owned());
    }
    // Offline: the directory last verified here, if an authority is pinned.
    let dir = settings
        .authority()
        .ok()
        .and_then(|a| crate::trust::remembered(&settings.state_dir, &a).ok().flatten())
        .map(|d| d.directory);
    if let Some(p) = dir.as_ref().and_then(|d| d.resolve_party(text)) {
        return Ok(p.id.as_str().to_owned());
    }
    let suggestion = dir
        .as_ref()
        .and_then(|d| party(d, text))
        .map(str::to_owned)
        .or_else(|| closest(text, known.iter().map(|id| (*id, *id))).map(str::to_owned));
    let what_to_do = match suggestion {
        Some(id) => format!("did you mean {id}?"),
        None => "give a party id, name, GSS code or LA number (see `sealdrop directory show`)".to_owned(),
    };
    Err(crate::error::Error::new(
        ErrorCode::UnknownParty,
        format!("no party {text:?} in the directory or in this client's journal; {what_to_do}"),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_typo_finds_the_party_and_nonsense_finds_nothing() {
        let parties = [("islington", "islington"), ("islington", "Islington"), ("hackney", "hackney")];
        assert_eq!(closest("islingon", parties), Some("islington"));
        assert_eq!(closest("ISLINGTN", parties), Some("islington"));
        assert_eq!(closest("hakney", parties), Some("hackney"));
        assert_eq!(closest("westminster", parties), None);
        assert_eq!(closest("", parties), None);
    }
}
