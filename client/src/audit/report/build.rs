//! Building the report in one pass over a verified log's entries.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use jiff::Timestamp;
use sealdrop_log::entry::{HubStatement, LogEntry};
use sealdrop_proto::drop::{Manifest, Receipt};
use sealdrop_proto::ids::{PartyId, key_name};
use sealdrop_proto::note::peek_doc;

use super::directory_diff::{directory_versions, revocations};
use super::model::{
    AckTimes, AgreementTotals, DropOutcome, DropSummary, Encryption, Flow, HistogramBin, Recall, RecipientState,
    Report, ReportInput, Totals, UndeliveredDrop, WaitingDrop, hours_between,
};
use crate::audit::signers::{KeyIx, Signers, key_uses};

fn drop_key(id: &str) -> Option<[u8; 28]> {
    id.as_bytes().try_into().ok()
}

/// Interns ids so each drop holds 4-byte indexes instead of strings.
struct Interner<T: std::hash::Hash + Eq + Clone> {
    items: Vec<T>,
    index: HashMap<T, u32>,
}

impl<T: std::hash::Hash + Eq + Clone> Default for Interner<T> {
    fn default() -> Self {
        Self { items: Vec::new(), index: HashMap::new() }
    }
}

impl<T: std::hash::Hash + Eq + Clone> Interner<T> {
    fn get(&mut self, item: &T) -> u32 {
        if let Some(i) = self.index.get(item) {
            return *i;
        }
        let i = u32::try_from(self.items.len()).expect("fewer than 4 billion distinct ids");
        self.items.push(item.clone());
        self.index.insert(item.clone(), i);
        i
    }
}

#[derive(Default)]
struct Builder {
    parties: Interner<PartyId>,
    agreements: Interner<String>,
    /// Member keys that recalled drops.
    recall_keys: Interner<String>,
    drops: Vec<DropSummary>,
    /// Drops not yet deleted: deleted ones leave the index, so it only
    /// holds the drops on the hub at any one time.
    live: HashMap<[u8; 28], u32>,
    published: BTreeMap<u64, (Timestamp, String)>,
    signers: Signers,
    entries_read: u64,
    unreadable: u64,
    span: Option<(Timestamp, Timestamp)>,
}

impl Builder {
    fn saw_time(&mut self, t: Timestamp) {
        self.span = Some(match self.span {
            None => (t, t),
            Some((a, b)) => (a.min(t), b.max(t)),
        });
    }

    fn live_drop(&mut self, id: &str) -> Option<&mut DropSummary> {
        let ix = *self.live.get(&drop_key(id)?)?;
        self.drops.get_mut(ix as usize)
    }

    fn entry(&mut self, index: u64, entry: LogEntry, agreement: Option<&str>, period: Period) {
        let Period(since, until) = period;
        self.entries_read += 1;
        match entry {
            LogEntry::Hub { statement } => match peek_doc::<HubStatement>(&statement) {
                Ok(HubStatement::DirectoryPublished { time, serial, sha256 }) => {
                    self.saw_time(time);
                    self.published.entry(serial).or_insert((time, sha256));
                    self.signers.published(serial);
                }
                Ok(HubStatement::DropDeleted { time, drop, reason }) => {
                    self.saw_time(time);
                    if let Some(ix) = drop_key(drop.as_str()).and_then(|k| self.live.remove(&k))
                        && let Some(d) = self.drops.get_mut(ix as usize)
                    {
                        d.deleted = Some((time, reason));
                    }
                }
                Err(_) => self.unreadable += 1,
            },
            LogEntry::DropCommitted { committed, manifest } => {
                self.saw_time(committed);
                let Ok(m) = peek_doc::<Manifest>(&manifest) else {
                    self.unreadable += 1;
                    return;
                };
                if agreement.is_some_and(|a| a != m.agreement)
                    || since.is_some_and(|s| committed < s)
                    || until.is_some_and(|u| committed >= u)
                {
                    return;
                }
                let Some(id) = drop_key(m.drop.as_str()) else { return };
                let mut seen = BTreeSet::new();
                let recipients: Box<[RecipientState]> = m
                    .recipients
                    .iter()
                    .filter(|p| seen.insert(*p))
                    .map(|p| RecipientState {
                        party: self.parties.get(p),
                        fetched: None,
                        acknowledged: None,
                        receipt_key: KeyIx::NONE,
                    })
                    .collect();
                let manifest_key = KeyIx::of(self.signers.signer(&manifest, &key_name(&m.sender, &m.sender_member)));
                let summary = DropSummary {
                    id,
                    log_index: index,
                    sender: self.parties.get(&m.sender),
                    agreement: self.agreements.get(&m.agreement),
                    bytes: m.ciphertext_len,
                    committed,
                    expires: m.expires,
                    deleted: None,
                    recalled: None,
                    manifest_key,
                    encryption: Encryption::of(&m.encrypted_to),
                    recipients,
                };
                let ix = u32::try_from(self.drops.len()).expect("fewer than 4 billion drops");
                self.drops.push(summary);
                self.live.insert(id, ix);
            }
            LogEntry::DropFetched { drop, party, fetched, .. } => {
                self.saw_time(fetched);
                let Some(&p) = self.parties.index.get(&party) else { return };
                if let Some(d) = self.live_drop(drop.as_str())
                    && let Some(r) = d.recipients.iter_mut().find(|r| r.party == p)
                {
                    r.fetched.get_or_insert(fetched);
                }
            }
            LogEntry::DropAcknowledged { acknowledged, receipt } => {
                self.saw_time(acknowledged);
                let Ok(rc) = peek_doc::<Receipt>(&receipt) else {
                    self.unreadable += 1;
                    return;
                };
                let Some(&p) = self.parties.index.get(&rc.recipient) else { return };
                let key = self.signers.signer(&receipt, &key_name(&rc.recipient, &rc.member));
                if let Some(d) = self.live_drop(rc.drop.as_str())
                    && let Some(r) = d.recipients.iter_mut().find(|r| r.party == p)
                    && r.acknowledged.is_none()
                {
                    r.acknowledged = Some(acknowledged);
                    r.receipt_key = KeyIx::of(key);
                }
            }
            LogEntry::DropRecalled { drop, recalled, request, .. } => {
                self.saw_time(recalled);
                // Only drops the filters selected are live here.
                let Some(ix) = drop_key(drop.as_str()).and_then(|k| self.live.get(&k).copied()) else { return };
                let by = self.recall_keys.get(&request.key);
                if let Some(d) = self.drops.get_mut(ix as usize) {
                    d.recalled.get_or_insert((recalled, by));
                }
            }
        }
    }
}

/// Percentile `p` (0..=1) of sorted values, interpolating linearly.
fn percentile(sorted: &[f64], p: f64) -> f64 {
    match sorted.len() {
        0 => 0.0,
        1 => sorted[0],
        n => {
            let pos = p.clamp(0.0, 1.0) * (n - 1) as f64;
            let lo = pos.floor() as usize;
            let hi = pos.ceil() as usize;
            sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo as f64)
        }
    }
}

fn ack_times(mut hours: Vec<f64>) -> Option<AckTimes> {
    if hours.is_empty() {
        return None;
    }
    hours.sort_by(f64::total_cmp);
    Some(AckTimes {
        count: hours.len() as u64,
        median_hours: percentile(&hours, 0.5),
        p90_hours: percentile(&hours, 0.9),
        max_hours: *hours.last().unwrap_or(&0.0),
    })
}

const BINS: [(&str, f64, Option<f64>); 9] = [
    ("< 1 h", 0.0, Some(1.0)),
    ("1–4 h", 1.0, Some(4.0)),
    ("4–12 h", 4.0, Some(12.0)),
    ("12–24 h", 12.0, Some(24.0)),
    ("1–2 d", 24.0, Some(48.0)),
    ("2–3 d", 48.0, Some(72.0)),
    ("3–7 d", 72.0, Some(168.0)),
    ("1–2 wk", 168.0, Some(336.0)),
    ("≥ 2 wk", 336.0, None),
];

pub(super) fn bin_of(hours: f64) -> usize {
    BINS.iter().position(|(_, _, hi)| hi.is_some_and(|hi| hours < hi)).unwrap_or(BINS.len() - 1)
}

#[derive(Default)]
struct Tally {
    totals: Totals,
    senders: BTreeSet<u32>,
    recipients: BTreeSet<u32>,
}

impl Tally {
    fn add(&mut self, d: &DropSummary) {
        let t = &mut self.totals;
        t.drops += 1;
        t.bytes += d.bytes;
        t.deliveries += d.recipients.len() as u64;
        t.acknowledged_deliveries += d.recipients.iter().filter(|r| r.acknowledged.is_some()).count() as u64;
        match d.outcome() {
            DropOutcome::Acknowledged => t.acknowledged += 1,
            DropOutcome::Waiting => t.waiting += 1,
            DropOutcome::ExpiredUndelivered => t.expired_undelivered += 1,
            DropOutcome::AgreementEndedUndelivered => t.agreement_ended_undelivered += 1,
            DropOutcome::Recalled => t.recalled += 1,
            DropOutcome::Other => {}
        }
        if d.encryption == Encryption::PostQuantum {
            t.post_quantum += 1;
        }
        self.senders.insert(d.sender);
        self.recipients.extend(d.recipients.iter().map(|r| r.party));
    }

    fn finish(mut self) -> Totals {
        self.totals.senders = self.senders.len() as u64;
        self.totals.recipients = self.recipients.len() as u64;
        self.totals.parties = self.senders.union(&self.recipients).count() as u64;
        self.totals
    }
}

/// The time filter: drops committed at or after the first time, before the second.
#[derive(Clone, Copy, Debug)]
struct Period(Option<Timestamp>, Option<Timestamp>);

/// Builds the report in one pass over the entries.
pub fn build(input: ReportInput) -> Report {
    let ReportInput { entries, mut directories, origin, checkpoint_size, agreement, since, until, generated_at } =
        input;
    directories.sort_by_key(|d| d.directory.serial);
    directories.dedup_by_key(|d| d.directory.serial);

    let mut b = Builder { signers: Signers::new(&directories), ..Builder::default() };
    for (index, entry) in entries {
        b.entry(index, entry, agreement.as_deref(), Period(since, until));
    }
    let Builder { parties, agreements, recall_keys, drops, published, signers, entries_read, unreadable, span, .. } = b;
    let signer_keys = signers.into_keys();
    let signer = |ix: Option<u32>| ix.map(|i| signer_keys[i as usize].clone());
    let party_ids = parties.items;
    let agreement_ids = agreements.items;
    let recall_keys = recall_keys.items;

    // Names and titles: the newest directory that lists each one wins.
    let mut party_names = BTreeMap::new();
    let mut agreement_titles = BTreeMap::new();
    for d in &directories {
        for p in &d.directory.parties {
            party_names.insert(p.id.clone(), p.name.clone());
        }
        for a in &d.directory.agreements {
            agreement_titles.insert(a.id.clone(), a.title.clone());
        }
    }
    for p in &party_ids {
        party_names.entry(p.clone()).or_insert_with(|| p.to_string());
    }

    // Totals, the matrix and acknowledgement times, in one pass over drops.
    let mut all = Tally::default();
    let mut per_agreement: Vec<Tally> = agreement_ids.iter().map(|_| Tally::default()).collect();
    let mut flows: HashMap<(u32, u32), Flow> = HashMap::new();
    let mut ack_hours: Vec<Vec<f64>> = vec![Vec::new(); party_ids.len()];
    let mut histogram = [0u64; BINS.len()];
    let (mut expired, mut agreement_ended, mut recalled, mut waiting) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let names = |ixs: Vec<u32>| -> Vec<PartyId> { ixs.into_iter().map(|i| party_ids[i as usize].clone()).collect() };
    for d in &drops {
        all.add(d);
        per_agreement[d.agreement as usize].add(d);
        for r in d.recipients.iter() {
            let f = flows.entry((d.sender, r.party)).or_default();
            f.drops += 1;
            f.bytes += d.bytes;
            if let Some(at) = r.acknowledged {
                let h = hours_between(d.committed, at);
                ack_hours[r.party as usize].push(h);
                histogram[bin_of(h)] += 1;
            }
        }
        let unacked = || d.recipients.iter().filter(|r| r.acknowledged.is_none()).map(|r| r.party).collect();
        let undelivered = |deleted| UndeliveredDrop {
            drop: d.id().to_owned(),
            log_index: d.log_index,
            agreement: agreement_ids[d.agreement as usize].clone(),
            sender: party_ids[d.sender as usize].clone(),
            unacknowledged: names(unacked()),
            bytes: d.bytes,
            committed: d.committed,
            expires: d.expires,
            deleted,
            recall: d.recalled.map(|(at, by)| Recall { at, by: recall_keys[by as usize].clone() }),
            manifest_key: signer(d.manifest_key.get()),
            encryption: d.encryption,
        };
        match (d.outcome(), d.deleted) {
            (DropOutcome::ExpiredUndelivered, Some((t, _))) => expired.push(undelivered(t)),
            (DropOutcome::AgreementEndedUndelivered, Some((t, _))) => agreement_ended.push(undelivered(t)),
            (DropOutcome::Recalled, Some((t, _))) => recalled.push(undelivered(t)),
            (DropOutcome::Waiting, _) => waiting.push(WaitingDrop {
                drop: d.id().to_owned(),
                log_index: d.log_index,
                agreement: agreement_ids[d.agreement as usize].clone(),
                sender: party_ids[d.sender as usize].clone(),
                waiting_for: names(unacked()),
                bytes: d.bytes,
                committed: d.committed,
                expires: d.expires,
                manifest_key: signer(d.manifest_key.get()),
                encryption: d.encryption,
            }),
            _ => {}
        }
    }

    let name_key = |p: &PartyId| (party_names.get(p).map(|n| n.to_lowercase()).unwrap_or_default(), p.clone());

    // The matrix's axes: every party with traffic, plus the parties that
    // could have taken part (the filtered agreement's, or the directory's).
    let mut axis: BTreeSet<PartyId> = BTreeSet::new();
    for (s, r) in flows.keys() {
        axis.insert(party_ids[*s as usize].clone());
        axis.insert(party_ids[*r as usize].clone());
    }
    if let Some(latest) = directories.last() {
        match &agreement {
            Some(a) => {
                if let Some(ag) = directories.iter().rev().find_map(|d| d.directory.agreement(a)) {
                    axis.extend(ag.parties.iter().cloned());
                }
            }
            None => axis.extend(latest.directory.parties.iter().map(|p| p.id.clone())),
        }
    }
    let mut parties: Vec<PartyId> = axis.into_iter().collect();
    parties.sort_by_key(|p| name_key(p));

    let matrix = flows
        .into_iter()
        .map(|((s, r), f)| ((party_ids[s as usize].clone(), party_ids[r as usize].clone()), f))
        .collect();

    let mut agreements: Vec<AgreementTotals> = per_agreement
        .into_iter()
        .zip(&agreement_ids)
        .map(|(t, id)| AgreementTotals {
            id: id.clone(),
            title: agreement_titles.get(id).cloned(),
            totals: t.finish(),
            ended: crate::audit::ended::ended(&directories, &published, id, generated_at),
        })
        .collect();
    agreements.sort_by(|a, b| b.totals.drops.cmp(&a.totals.drops).then_with(|| a.id.cmp(&b.id)));

    let ack_overall = ack_times(ack_hours.iter().flatten().copied().collect());
    let mut ack_by_recipient: Vec<(PartyId, AckTimes)> =
        ack_hours.into_iter().enumerate().filter_map(|(i, h)| Some((party_ids[i].clone(), ack_times(h)?))).collect();
    ack_by_recipient.sort_by_key(|(p, _)| name_key(p));
    let ack_histogram = BINS
        .iter()
        .zip(histogram)
        .map(|((label, lower_hours, upper_hours), count)| HistogramBin {
            label,
            lower_hours: *lower_hours,
            upper_hours: *upper_hours,
            count,
        })
        .collect();

    let directory_versions = directory_versions(&directories, &published, since, until);
    let shown: BTreeSet<u64> = directory_versions.iter().map(|v| v.serial).collect();
    let revocations = revocations(&directories).into_iter().filter(|r| shown.contains(&r.serial)).collect();
    let uses = drops.iter().flat_map(|d| {
        let manifest = d.manifest_key.get().map(|k| (k, false, d.committed));
        let receipts = d.recipients.iter().filter_map(|r| Some((r.receipt_key.get()?, true, r.acknowledged?)));
        manifest.into_iter().chain(receipts)
    });
    let signing_keys = key_uses(&signer_keys, uses, &directories);

    Report {
        used_after_revocation: Vec::new(),
        signing_keys,
        signer_keys,
        origin,
        checkpoint_size,
        entries_read,
        unreadable_entries: unreadable,
        agreement_filter: agreement,
        since,
        until,
        generated_at,
        log_span: span,
        current_directory_serial: directories.last().map(|d| d.directory.serial),
        party_names,
        agreement_titles,
        parties,
        matrix,
        totals: all.finish(),
        agreements,
        ack_overall,
        ack_by_recipient,
        ack_histogram,
        expired,
        agreement_ended,
        recalled,
        waiting,
        directory_versions,
        revocations,
        drops,
        party_ids,
        agreement_ids,
        recall_keys,
    }
}

#[cfg(test)]
mod tests {
    use super::super::fixture::*;
    use super::super::{DeliveryRow, render_html, write_csv};
    use super::*;
    use sealdrop_log::entry::DeletionReason;
    use sealdrop_proto::ids::DropId;

    #[test]
    fn matrix_totals_and_outcomes() {
        let (f, ids) = fixture();
        let r = build(f.input(None, None));
        assert_eq!(r.entries_read, f.entries.len() as u64);
        assert_eq!(r.unreadable_entries, 0);
        assert_eq!(flow(&r, "camden", "islington"), Flow { drops: 3, bytes: 5700 });
        assert_eq!(flow(&r, "camden", "hackney"), Flow { drops: 1, bytes: 1000 });
        assert_eq!(flow(&r, "islington", "camden"), Flow { drops: 2, bytes: 2300 });
        assert_eq!(flow(&r, "hackney", "camden"), Flow { drops: 1, bytes: 500 });
        assert_eq!(r.matrix.len(), 4);
        // Axes ordered by display name.
        assert_eq!(r.parties, vec![pid("camden"), pid("hackney"), pid("islington")]);

        let fsm = agreement_totals(&r, "inner-fsm");
        assert_eq!(
            *fsm,
            Totals {
                drops: 5,
                bytes: 4500,
                parties: 3,
                senders: 3,
                recipients: 3,
                deliveries: 6,
                acknowledged_deliveries: 3,
                acknowledged: 2,
                expired_undelivered: 1,
                agreement_ended_undelivered: 0,
                recalled: 1,
                waiting: 1,
                post_quantum: 3,
            }
        );
        let sen = agreement_totals(&r, "sen-transfer");
        assert_eq!((sen.drops, sen.bytes, sen.senders, sen.recipients, sen.acknowledged), (1, 4000, 1, 1, 1));
        assert_eq!(r.agreements[0].id, "inner-fsm", "most drops first");
        assert_eq!(r.agreements[1].title.as_deref(), Some("Title of sen-transfer"));
        assert_eq!((r.totals.drops, r.totals.bytes, r.totals.acknowledged), (6, 8500, 3));
        // D2, D3, D5 (to Camden) and D4 (to Islington's new key) are post-quantum.
        assert_eq!((r.totals.post_quantum, sen.post_quantum), (4, 1));
        let kinds: Vec<(&str, Encryption)> = r.rows().map(|row| (row.drop, row.encryption)).collect();
        let kind_of = |id: &DropId| kinds.iter().find(|(d, _)| *d == id.as_str()).unwrap().1;
        assert_eq!(
            ids.iter().map(kind_of).collect::<Vec<_>>(),
            [
                Encryption::Classic,
                Encryption::PostQuantum,
                Encryption::PostQuantum,
                Encryption::PostQuantum,
                Encryption::PostQuantum,
                Encryption::Classic,
            ]
        );
        // Every row of a drop says the same.
        assert_eq!(kinds.iter().filter(|(d, _)| *d == ids[0].as_str()).count(), 2);
        assert_eq!(r.expired[0].encryption, Encryption::PostQuantum);
        assert_eq!(
            (r.recalled[0].encryption, r.waiting[0].encryption),
            (Encryption::PostQuantum, Encryption::PostQuantum)
        );

        // Expired and recalled lists.
        assert_eq!(r.expired.len(), 1);
        let e = &r.expired[0];
        assert_eq!(e.drop, ids[1].as_str());
        assert_eq!(e.sender, pid("islington"));
        assert_eq!(e.unacknowledged, vec![pid("camden")]);
        assert_eq!(e.committed, ts("2026-01-10T08:00:00Z"));
        assert_eq!(e.expires, ts("2026-01-24T08:00:00Z"));
        assert_eq!(e.deleted, ts("2026-01-24T08:00:00Z"));
        assert_eq!(e.recall, None);
        assert_eq!(r.recalled.len(), 1);
        assert_eq!((r.recalled[0].drop.as_str(), &r.recalled[0].sender), (ids[2].as_str(), &pid("hackney")));
        assert_eq!(r.recalled[0].unacknowledged, vec![pid("camden")]);
        // When, and by which of the sender's members.
        assert_eq!(
            r.recalled[0].recall,
            Some(Recall { at: ts("2026-01-12T10:00:00Z"), by: "hackney/data-team".into() })
        );
        assert!(r.agreement_ended.is_empty());
        // Waiting at the end.
        assert_eq!(r.waiting.len(), 1);
        assert_eq!(r.waiting[0].drop, ids[4].as_str());
        assert_eq!(r.waiting[0].waiting_for, vec![pid("camden")]);
        assert_eq!(r.log_span, Some((ts("2026-01-01T09:00:00Z"), ts("2026-02-10T10:00:00Z"))));
    }

    #[test]
    fn acknowledgement_times() {
        let (f, _) = fixture();
        let r = build(f.input(None, None));
        let by: BTreeMap<&str, AckTimes> = r.ack_by_recipient.iter().map(|(p, a)| (p.as_str(), *a)).collect();
        assert_eq!(by.len(), 2, "camden never acknowledged anything");
        let isl = by["islington"];
        // 2 h, 24 h and 6 h: median 6, p90 = 6 + 0.8 * 18.
        assert_eq!(isl.count, 3);
        assert!((isl.median_hours - 6.0).abs() < 1e-9, "{isl:?}");
        assert!((isl.p90_hours - 20.4).abs() < 1e-9, "{isl:?}");
        assert!((isl.max_hours - 24.0).abs() < 1e-9, "{isl:?}");
        let hk = by["hackney"];
        assert_eq!(hk.count, 1);
        assert!((hk.median_hours - 28.0).abs() < 1e-9);
        let all = r.ack_overall.unwrap();
        assert_eq!(all.count, 4);
        assert!((all.median_hours - 15.0).abs() < 1e-9, "{all:?}");
        let counts: Vec<u64> = r.ack_histogram.iter().map(|b| b.count).collect();
        assert_eq!(counts, vec![0, 1, 1, 0, 2, 0, 0, 0, 0]);
        assert_eq!(percentile(&[1.0, 2.0, 3.0, 4.0], 0.5), 2.5);
    }

    #[test]
    fn filters_select_drops() {
        let (f, ids) = fixture();
        let r = build(f.input(None, Some("2026-02-01T00:00:00Z")));
        assert_eq!(r.totals.drops, 2);
        assert_eq!(flow(&r, "camden", "islington"), Flow { drops: 1, bytes: 4000 });
        assert_eq!(flow(&r, "islington", "camden"), Flow { drops: 1, bytes: 300 });
        assert!(r.expired.is_empty() && r.recalled.is_empty());
        assert_eq!(r.waiting.len(), 1);
        assert_eq!(r.directory_versions.iter().map(|v| v.serial).collect::<Vec<_>>(), vec![2]);
        assert_eq!(r.revocations.len(), 1, "revoked by serial 2, in the period");
        assert!(r.directory_versions[0].changes.is_some(), "still compared with the version before the period");

        let r = build(f.input(Some("sen-transfer"), None));
        assert_eq!(r.totals.drops, 1);
        assert_eq!(r.matrix.len(), 1);
        assert_eq!(flow(&r, "camden", "islington"), Flow { drops: 1, bytes: 4000 });
        assert_eq!(r.agreements.len(), 1);
        // The agreement's parties only, even those without traffic.
        assert_eq!(r.parties, vec![pid("camden"), pid("islington")]);
        let rows: Vec<_> = r.rows().collect();
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].drop, ids[3].as_str());

        let r = build(f.input(Some("inner-fsm"), Some("2026-01-10T08:00:00Z")));
        assert_eq!(r.totals.drops, 4, "D2 committed exactly at `since` counts");
        assert_eq!(flow(&r, "camden", "hackney"), Flow::default());

        let r = build(f.input(None, Some("2026-03-01T00:00:00Z")));
        assert!(r.directory_versions.is_empty() && r.revocations.is_empty());

        let r = build(f.input(Some("no-such-agreement"), None));
        assert_eq!(r.totals, Totals::default());
        assert!(r.matrix.is_empty() && r.ack_overall.is_none());
        let html = render_html(&r);
        assert!(html.contains("No drops in the selected period."));
    }

    /// A drop whose agreement ended before one of its two recipients
    /// acknowledged: that recipient is NOT DELIVERED, the other delivered.
    /// It is encrypted to Islington's new post-quantum key and Hackney's
    /// classic one, which a sender refuses to mix: a log that claims such a
    /// drop shows it as mixed, never as post-quantum.
    #[test]
    fn agreement_ended_drops_show_who_was_not_delivered() {
        let (mut f, _) = fixture();
        let d7 = f.commit("camden", &["islington", "hackney"], "inner-fsm", 900, "2026-02-12T09:00:00Z");
        f.fetch(&d7, "islington", "2026-02-12T10:00:00Z");
        f.ack(&d7, "islington", "2026-02-12T11:00:00Z");
        f.delete(&d7, DeletionReason::AgreementEnded, "2026-02-20T00:00:00Z");
        let r = build(f.input(None, None));
        assert_eq!((r.totals.agreement_ended_undelivered, r.totals.expired_undelivered), (1, 1));
        assert_eq!(agreement_totals(&r, "inner-fsm").agreement_ended_undelivered, 1);
        assert_eq!(
            (agreement_totals(&r, "inner-fsm").post_quantum, r.totals.post_quantum),
            (3, 4),
            "D7 is not counted"
        );
        assert_eq!(r.agreement_ended[0].encryption, Encryption::Mixed);
        assert_eq!(r.agreement_ended.len(), 1);
        let e = &r.agreement_ended[0];
        assert_eq!((e.drop.as_str(), &e.sender, e.deleted), (d7.as_str(), &pid("camden"), ts("2026-02-20T00:00:00Z")));
        assert_eq!(e.unacknowledged, vec![pid("hackney")]);
        assert_eq!(e.recall, None);
        assert_eq!(r.waiting.len(), 1, "D5 only");

        let rows: Vec<DeliveryRow> = r.rows().filter(|row| row.drop == d7.as_str()).collect();
        let outcomes: Vec<(&str, &str, &str)> =
            rows.iter().map(|row| (row.recipient.as_str(), row.outcome.as_str(), row.outcome.delivery())).collect();
        assert_eq!(
            outcomes,
            vec![
                ("islington", "acknowledged", "delivered"),
                ("hackney", "agreement_ended_undelivered", "NOT DELIVERED"),
            ]
        );
        assert!(
            rows.iter().all(|row| row.deleted == Some((ts("2026-02-20T00:00:00Z"), DeletionReason::AgreementEnded)))
        );

        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("report.csv");
        write_csv(&r, &path).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let hackney = text.lines().find(|l| l.starts_with(d7.as_str()) && l.contains(",hackney,")).unwrap();
        let camden_key = f.keys["camden"].signing.verifier().fingerprint();
        assert!(
            hackney.ends_with(&format!(
                ",agreement_ended_undelivered,2026-02-20T00:00:00Z,agreement_ended,,NOT DELIVERED,camden/data-team,{camden_key},,,mixed"
            )),
            "{hackney}"
        );

        let html = render_html(&r);
        assert!(html.contains("Deleted as their agreement ended</h3>"));
        let section = &html[html.find("Deleted as their agreement ended</h3>").unwrap()..];
        let table = &section[..section.find("</table>").unwrap()];
        assert!(table.contains(d7.as_str()));
        assert!(table.contains(
            "<li><span title=\"hackney\">Hackney &lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;</span> \
             <span class=\"pill bad\">NOT DELIVERED</span></li>"
        ));
        assert!(!table.contains("title=\"islington\""), "islington acknowledged: {table}");
        assert!(
            table.contains(
                "<span class=\"pill classic\" title=\"the kind of keys it was encrypted to\">mixed keys</span>"
            )
        );
        assert!(html.contains("<th scope=\"col\" class=\"num\">Agreement ended</th>"));
    }

    #[test]
    fn summaries_stay_compact() {
        // One summary per drop, not per entry: deleted drops leave the index.
        let (f, _) = fixture();
        let mut b = Builder::default();
        for (i, e) in f.entries.iter().cloned().enumerate() {
            b.entry(i as u64, e, None, Period(None, None));
        }
        assert_eq!(b.drops.len(), 6);
        assert_eq!(b.live.len(), 1, "only the waiting drop stays indexed");
        // 168 bytes: 160 and the encryption kind's byte, padded to a word.
        assert!(std::mem::size_of::<DropSummary>() <= 168, "{}", std::mem::size_of::<DropSummary>());
    }
}
