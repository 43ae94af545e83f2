//! What the analyst is shown before confirming a split (step 2).

use sealdrop_proto::directory::Directory;

use super::{PartPlan, Plan};
use crate::fsutil::human_bytes;

/// The summary shown before anything is sent.
pub fn render_summary(plan: &Plan, dir: &Directory) -> String {
    use std::fmt::Write as _;
    let mut s = String::new();
    let n = |x: u64| group_digits(x);
    let _ = writeln!(
        s,
        "Splitting {} by {:?}{}: {} rows (SHA-256 {}…)",
        plan.input.display(),
        plan.column,
        plan.sheet.as_deref().map(|x| format!(" (sheet {x:?})")).unwrap_or_default(),
        n(plan.rows),
        &plan.input_sha256[..16],
    );
    let _ = writeln!(
        s,
        "Recipients from the signed directory (serial {}){}:",
        plan.directory_serial,
        plan.agreement.as_deref().map(|a| format!(", agreement `{a}`")).unwrap_or_default()
    );
    let width = plan.parts.iter().map(|p| p.name.chars().count()).max().unwrap_or(0).max(9);
    for p in &plan.parts {
        let note = match (&p.already_sent, p.in_agreement) {
            (_, false) => "  NOT IN THE AGREEMENT".to_owned(),
            (Some((id, at)), _) => format!("  already sent as {id} at {at}; skipped"),
            (None, true) => String::new(),
        };
        let _ = writeln!(
            s,
            "  {:<width$}  {:>10} rows  {:>10}  {}{}",
            p.name,
            n(p.rows),
            human_bytes(p.bytes),
            p.file_name,
            note
        );
    }
    let to_send: Vec<&PartPlan> = plan.to_send().collect();
    let _ = writeln!(
        s,
        "  {} drop(s) to send: {} rows, {}; each encrypted only to its recipient's keys",
        to_send.len(),
        n(to_send.iter().map(|p| p.rows).sum()),
        human_bytes(to_send.iter().map(|p| p.bytes).sum())
    );
    let _ = writeln!(
        s,
        "  Parts sent before are recognised only if your key {} sent them (the hub cannot match the file); a run by another member of {} would send them again",
        plan.reruns_recognised_for, plan.own_party
    );
    let _ = writeln!(s, "Kept back:");
    let own_name = dir.party(&plan.own_party).map_or(plan.own_party.as_str(), |p| p.name.as_str());
    let _ = writeln!(s, "  {} rows for {own_name} (your own party) stay here", n(plan.own_rows));
    if plan.unroutable_rows == 0 {
        let _ = writeln!(s, "  0 rows could not be routed");
    } else {
        let mut values: Vec<String> = plan
            .unroutable_values
            .iter()
            .map(|(v, c)| if v.is_empty() { format!("(empty) {c}") } else { format!("{v:?} {c}") })
            .collect();
        if plan.unroutable_unlisted_rows > 0 {
            values.push(format!("other values {}", plan.unroutable_unlisted_rows));
        }
        let _ = writeln!(
            s,
            "  {} rows could not be routed and will never be sent: {}; written to {}",
            n(plan.unroutable_rows),
            values.join(", "),
            plan.unroutable_file.as_deref().map_or_else(|| "-".into(), |p| p.display().to_string())
        );
    }
    s
}

/// 1234567 as "1,234,567".
pub fn group_digits(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}
