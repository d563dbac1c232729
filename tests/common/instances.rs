//! What several-instance tests compare (tests/instances.rs, tests/mail_stack/instances.rs):
//! the register and the outbox of an installation keyed by complainant, so a disturbed run and
//! an undisturbed reference compare whatever order they registered in.

#![allow(dead_code)]

use std::collections::BTreeMap;

use serde_json::Value;

/// Keyed by the complainant (one per mail).
#[derive(Debug, PartialEq)]
pub struct Outcome {
    /// complainant -> the sorted (template, recipients) of every outbox mail about their
    /// complaint.
    pub mails: BTreeMap<String, Vec<(String, String)>>,
    /// Mails about no complaint (alerts to the admin), by template.
    pub other: BTreeMap<String, usize>,
}

/// From `list --format json` and `outbox list --format json`: the outcome, the references.
pub fn outcome_of(list: &[Value], outbox: &[Value]) -> (Outcome, Vec<String>) {
    let by_reference: BTreeMap<String, String> = list
        .iter()
        .map(|c| {
            (
                c["reference"].as_str().unwrap_or_default().to_string(),
                c["complainant"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    let mut mails: BTreeMap<String, Vec<(String, String)>> = BTreeMap::new();
    let mut other = BTreeMap::new();
    for o in outbox {
        let template = o["template"].as_str().unwrap_or_default().to_string();
        match o["reference"].as_str() {
            Some(r) => mails
                .entry(
                    by_reference
                        .get(r)
                        .cloned()
                        .unwrap_or_else(|| r.to_string()),
                )
                .or_default()
                .push((
                    template,
                    o["recipients"].as_str().unwrap_or_default().to_string(),
                )),
            None => *other.entry(template).or_insert(0) += 1,
        }
    }
    for v in mails.values_mut() {
        v.sort();
    }
    let references = list
        .iter()
        .map(|c| c["reference"].as_str().unwrap_or_default().to_string())
        .collect();
    (Outcome { mails, other }, references)
}

/// The references are KL-2026-0001 up to `n`, each once, none missing.
pub fn assert_gapless(references: &[String], n: usize) {
    let expected: Vec<String> = (1..=n).map(|i| format!("KL-2026-{i:04}")).collect();
    let mut got = references.to_vec();
    got.sort();
    assert_eq!(got.len(), n, "{n} mails, {} complaints", got.len());
    assert_eq!(got, expected, "references are not 1..={n} without gaps");
}
