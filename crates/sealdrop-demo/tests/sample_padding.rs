//! The sample generator's pupil lists against the client's padding: every
//! list of 1 to 120 rows is one size to the hub (docs/threat-model.md). Here
//! rather than beside the padding, because the generator is in this crate.

use sealdrop_demo::sample;
use sealdrop_proto::age_keys::{AgeIdentity, AgeRecipient};
use sealdrop_proto::padding::{MIN_PADDED, padded_len};

/// The length of the age payload (after the header) of `plan`'s padded
/// archive, encrypted to one key. The header's length varies at random:
/// the age library adds a "grease" stanza of random size to every
/// header; the hub can parse the header, so the payload is what it learns.
fn payload_len(plan: &sealdrop::archive::Plan, to: &AgeRecipient) -> u64 {
    let encryptor = age::Encryptor::with_recipients(std::iter::once(to.native().unwrap())).unwrap();
    let sink = encryptor.wrap_output(Vec::new()).unwrap();
    let ciphertext = sealdrop::padding::write_padded(plan, sink, |_| {}).unwrap().finish().unwrap();
    let mac = ciphertext.windows(5).position(|w| w == b"\n--- ").unwrap();
    let header = mac + 1 + ciphertext[mac + 1..].iter().position(|&b| b == b'\n').unwrap() + 1;
    (ciphertext.len() - header) as u64
}

#[test]
fn every_sample_list_of_1_to_120_rows_has_the_same_encrypted_length() {
    let d = tempfile::tempdir().unwrap();
    let to = AgeIdentity::generate().to_public().unwrap();
    let mut lengths = std::collections::BTreeMap::<u64, Vec<String>>::new();
    let mut list = |opts: sample::FsmOptions| {
        let f = d.path().join(format!("fsm-{}-{}-{}.csv", opts.school_la, opts.seed, opts.rows));
        sample::write_fsm(&opts, &f).unwrap();
        let plan = sealdrop::archive::plan(&[f]).unwrap();
        assert!(padded_len(sealdrop::padding::archive_len(&plan)) == MIN_PADDED, "{opts:?} is over the floor");
        let label = format!("{} {} {}", opts.school_la, opts.seed, opts.rows);
        lengths.entry(payload_len(&plan, &to)).or_default().push(label);
    };
    for rows in 1..=120 {
        list(sample::FsmOptions { rows, ..Default::default() });
    }
    // Other seeds and the boroughs with the longest names give the
    // longest rows.
    for school_la in ["kensington-and-chelsea", "barking-and-dagenham", "hammersmith-and-fulham"] {
        for seed in 1..=5 {
            list(sample::FsmOptions { rows: 120, seed, school_la: school_la.into(), ..Default::default() });
        }
    }
    assert_eq!(lengths.len(), 1, "payload lengths: {lengths:?}");
    // 32 KiB in age's 64 KiB chunks: the nonce and one tag.
    assert_eq!(lengths.keys().next(), Some(&(MIN_PADDED + 16 + 16)));
}
