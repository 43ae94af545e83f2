//! Fetching again a drop this machine already received: the hub answers
//! `gone` (it serves a drop to a party only until that party's receipt),
//! which alone reads as if the data were lost. This machine's journal
//! (`<state>/journal.jsonl`) knows where the files went and when, so the
//! error says that instead. Without a journal record the hub's message stands.

use sealdrop_proto::api::code;
use sealdrop_proto::ids::DropId;

use crate::error::Error;
use crate::journal::{Event, Journal};
use crate::names::{shown, shown_path};

/// `err`, or for a `gone` drop this machine received (by `journal`), the
/// same error saying where and when it was saved.
pub fn explain_gone(journal: impl FnOnce() -> Option<Journal>, id: &DropId, err: Error) -> Error {
    if err.code != code::GONE {
        return err;
    }
    let Some(journal) = journal() else { return err };
    let Some((time, r)) = journal.entries.iter().rev().find_map(|e| match &e.event {
        Event::Received(r) if &r.drop == id => Some((e.time, r)),
        _ => None,
    }) else {
        return err;
    };
    let into = match r.names.as_slice() {
        [one] => shown_path(&r.dest.join(one)),
        names => {
            let listed: Vec<String> = names.iter().map(|n| shown(n)).collect();
            format!("{} ({})", shown_path(&r.dest), listed.join(", "))
        }
    };
    Error {
        message: format!(
            "drop {id} was fetched by this machine on {} UTC into {into}; the hub does not serve a drop again after your receipt (`sealdrop journal --party {}` lists what was received)",
            time.strftime("%Y-%m-%d %H:%M"),
            r.from
        ),
        ..err
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorCode;
    use crate::journal::{Entry, Received};

    fn journal(id: &DropId, names: &[&str]) -> Journal {
        let received = Received {
            drop: id.clone(),
            from: "camden".parse().unwrap(),
            agreement: "london-fsm".into(),
            names: names.iter().map(|n| (*n).to_owned()).collect(),
            dest: "/home/ig/incoming".into(),
            files: 1,
            bytes: 10,
            log_index: 4,
            receipt: None,
            manifest_key_fingerprint: None,
            receipt_key_fingerprint: None,
        };
        Journal {
            entries: vec![Entry {
                v: 1,
                time: "2026-12-01T10:02:31Z".parse().unwrap(),
                event: Event::Received(received),
            }],
            ..Default::default()
        }
    }

    #[test]
    fn a_gone_drop_this_machine_received_says_where_it_went() {
        let id = DropId::random();
        let gone = || Error::new(ErrorCode::Gone, "the hub refused: drop deleted");
        let e = explain_gone(|| Some(journal(&id, &["fsm-camden.csv"])), &id, gone());
        assert_eq!((e.code.as_str(), e.kind), ("gone", crate::error::Kind::Refused));
        assert!(
            e.message.starts_with(&format!(
                "drop {id} was fetched by this machine on 2026-12-01 10:02 UTC into /home/ig/incoming/fsm-camden.csv; "
            )),
            "{}",
            e.message
        );
        assert!(e.message.contains("after your receipt"), "{}", e.message);
        let e = explain_gone(|| Some(journal(&id, &["a.csv", "b\u{202e}.csv"])), &id, gone());
        assert!(e.message.contains("into /home/ig/incoming (a.csv, b\\u{202e}.csv);"), "{}", e.message);

        // Another drop, no journal, or another error: unchanged.
        let other = DropId::random();
        assert_eq!(explain_gone(|| Some(journal(&id, &["a.csv"])), &other, gone()).message, gone().message);
        assert_eq!(explain_gone(|| None, &id, gone()).message, gone().message);
        let forbidden = Error::new(ErrorCode::Forbidden, "no");
        assert_eq!(explain_gone(|| panic!("not read"), &id, forbidden).message, "no");
    }
}
