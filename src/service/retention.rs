//! Retention and privacy requests (issue #11): the daily removal of personal data whose
//! retention period has passed (`klachtd purge` does the same by hand), the export of
//! everything about one person (AVG art. 15) and its erasure (art. 17).
//!
//! What stays and what goes is listed in [`crate::store::retention`]. Cause (and measure,
//! when the register has one) stays, cleared of the names and addresses of the people in the
//! complaint: the yearly analysis of causes and measures covers complaints whose retention
//! has already ended (academie keeps complaints half a year, the report is yearly), and staff
//! write causes as a short classification ("docent ziek"), not as the complainant's story.
//! What a cleared text still holds beyond those names cannot be known; an erasure at the
//! person's request therefore empties cause and measure as well.
//!
//! Each complaint is one transaction: a crash leaves it either whole or purged. Blobs on disk
//! are deleted after the commit, and only when no remaining row names them (one attachment may
//! have been sent by several people). A Maildir source's copy of a removed mail goes too;
//! the copy in an IMAP mailbox is the mail server's to expire. After the run the WAL is
//! truncated; the first run ever also VACUUMs, for what was freed before `secure_delete` was
//! on.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use chrono::{DateTime, NaiveDate, NaiveTime, Utc};
use serde::Serialize;
use serde_json::json;

use super::{Context, ServiceError};
use crate::domain::calendar::{at_local, local_date};
use crate::domain::procedure::{Milestone, Retention};
use crate::domain::retention::{
    AnchorKind, RetentionFacts, describe, is_due, person_needles, retention_due, scrub,
};
use crate::domain::types::EmailAddress;
use crate::store::retention::{
    ATTACHMENTS, PersonMessage, RAW, Removed, RetentionCandidate, StoredMail,
};
use crate::store::{ComplaintRow, StoreTx, ts};

/// The daily job in `jobs_done`.
pub const JOB: &str = "retention";
/// Who the history says removed the data: the daily job, or an admin at the command line.
pub const DAILY_ACTOR: &str = "retention";
pub const CLI_ACTOR: &str = "admin";
/// `settings_kv`: when the database was first VACUUMed after a purge.
const VACUUMED: &str = "retention.vacuumed";

/// History events of a removal.
pub const PURGED_EVENT: &str = "personal_data_removed";
pub const ERASED_EVENT: &str = "erased";
pub const MESSAGE_ERASED_EVENT: &str = "message_erased";

/// Where long work reports how far it is (a progress bar on a terminal, lines otherwise).
pub trait Progress: Send + Sync {
    fn begin(&self, what: &str, total: u64);
    fn advance(&self);
    fn finish(&self);
}

/// No progress reports (the daemon's daily job).
pub struct Silent;

impl Progress for Silent {
    fn begin(&self, _: &str, _: u64) {}
    fn advance(&self) {}
    fn finish(&self) {}
}

/// One complaint whose data goes, and why.
#[derive(Debug, Clone, Serialize)]
pub struct PurgeItem {
    #[serde(skip)]
    pub id: i64,
    pub reference: String,
    pub procedure: String,
    /// The rule in words: `retention 6 months after handled`.
    pub rule: String,
    pub after: Milestone,
    pub months: u32,
    /// What the period counted from: the rule's milestone, or closing or voiding.
    pub counted_from: AnchorKind,
    /// When that was (RFC 3339).
    pub anchor: String,
    /// The first day the data may no longer be kept (local date, `YYYY-MM-DD`).
    pub since: String,
    /// Removed before; what came in since (a reply to an old mail) goes now.
    pub again: bool,
    /// `due` (dry run), `removed`, or why it failed.
    pub result: String,
}

/// What a purge or erasure took away.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RemovalTotals {
    pub complaints: u64,
    pub messages: u64,
    pub attachments: u64,
    pub outbox: u64,
    pub history: u64,
    /// Files under the data directory (raw mails, attachments) deleted.
    pub files_deleted: u64,
    /// Blobs kept because another row still names them.
    pub files_shared: u64,
    /// Mails deleted from a Maildir source.
    pub source_files_deleted: u64,
    /// The WAL was truncated after the removal (false: another process was reading; the
    /// next purge truncates it).
    pub wal_truncated: bool,
    pub vacuumed: bool,
}

impl RemovalTotals {
    fn add(&mut self, r: &Removed) {
        self.messages += r.messages;
        self.attachments += r.attachments;
        self.outbox += r.outbox;
        self.history += r.history;
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct PurgeReport {
    pub items: Vec<PurgeItem>,
    pub totals: RemovalTotals,
}

/// The procedure's rule for each (name, version) the complaints started with.
async fn rules(
    ctx: &Context,
    candidates: &[RetentionCandidate],
) -> Result<HashMap<(String, String), Option<Retention>>, ServiceError> {
    let mut out = HashMap::new();
    let mut rx = ctx.store.begin_read().await?;
    for c in candidates {
        let key = (c.procedure_name.clone(), c.procedure_version.clone());
        if out.contains_key(&key) {
            continue;
        }
        let p = ctx
            .procedure
            .for_complaint(rx.as_mut(), &key.0, &key.1)
            .await?;
        out.insert(key, p.retention.clone());
    }
    Ok(out)
}

/// The complaints whose data must go on local day `today`, in id order. Complaints under a
/// procedure without retention are never listed.
pub async fn due_for_purge(
    ctx: &Context,
    today: NaiveDate,
) -> Result<Vec<PurgeItem>, ServiceError> {
    let candidates = ctx.store.retention_candidates().await?;
    let rules = rules(ctx, &candidates).await?;
    let tz = ctx.procedure.tz;
    let mut out = Vec::new();
    for c in candidates {
        let Some(Some(rule)) = rules.get(&(c.procedure_name.clone(), c.procedure_version.clone()))
        else {
            continue;
        };
        let facts = RetentionFacts {
            status: c.status.clone(),
            milestones: c.milestones.clone(),
            closed_at: c.closed_at,
            voided_at: c.voided_at,
        };
        let Some(due) = retention_due(rule, &facts, tz) else {
            continue;
        };
        if !is_due(&due, today) {
            continue;
        }
        out.push(PurgeItem {
            id: c.id,
            reference: c.reference,
            procedure: c.procedure_name,
            rule: describe(rule, due.anchor_kind),
            after: rule.after,
            months: rule.months,
            counted_from: due.anchor_kind,
            anchor: ts(due.anchor),
            since: due.due.format("%Y-%m-%d").to_string(),
            again: c.purged_at.is_some(),
            result: "due".into(),
        });
    }
    Ok(out)
}

/// The needles of everyone named in a complaint, longest first.
fn needles_of(pd: &crate::store::retention::PersonalData) -> Vec<String> {
    let mut needles = Vec::new();
    for (address, name) in &pd.people {
        needles.extend(person_needles(name.as_deref(), address.as_deref()));
    }
    for other in &pd.others {
        if other.contains('@') {
            needles.extend(person_needles(None, Some(other)));
        } else {
            needles.extend(person_needles(Some(other), None));
        }
    }
    let mut seen = std::collections::HashSet::new();
    needles.retain(|n| seen.insert(n.to_lowercase()));
    needles.sort_by_key(|s| std::cmp::Reverse(s.chars().count()));
    needles
}

/// How a complaint's data is removed and recorded.
struct Removal<'a> {
    actor: &'a str,
    event: &'a str,
    detail: &'a str,
    /// Empty cause and measure too, instead of clearing them of names (an erasure).
    empty_kept_text: bool,
}

/// Remove one complaint's personal data inside `tx`. `None`: it was removed before and
/// nothing came in since.
async fn remove_complaint(
    tx: &mut dyn StoreTx,
    id: i64,
    now: DateTime<Utc>,
    how: &Removal<'_>,
) -> Result<Option<Removed>, ServiceError> {
    let Some(pd) = tx.personal_data(id).await? else {
        return Err(ServiceError::Invalid(format!("no complaint {id}")));
    };
    if pd.nothing_left {
        return Ok(None);
    }
    let needles = needles_of(&pd);
    let kept: Vec<(String, String)> = pd
        .kept_text
        .iter()
        .map(|(column, value)| {
            let v = if how.empty_kept_text {
                String::new()
            } else {
                scrub(value, &needles)
            };
            (column.clone(), v)
        })
        .collect();
    let removed = tx.remove_personal_data(id, &kept).await?;
    // Without an address nothing more can be sent: a complaint still open is closed.
    if pd.status == "open" {
        tx.set_field(id, "status", Some("closed")).await?;
        tx.history(Some(id), now, how.actor, "closed", "personal data removed")
            .await?;
    }
    tx.complete_milestone(id, Milestone::Purged.as_str(), now, how.actor)
        .await?;
    tx.set_next_due(id, None).await?;
    tx.history(Some(id), now, how.actor, how.event, how.detail)
        .await?;
    Ok(Some(removed))
}

/// Delete what the removed rows named on disk, when nothing else names it.
async fn delete_files(
    ctx: &Context,
    removed: &Removed,
    maildirs: &mut MaildirFiles,
    totals: &mut RemovalTotals,
) -> Result<(), ServiceError> {
    for (kind, shas) in [
        (RAW, &removed.raw),
        (ATTACHMENTS, &removed.attachment_blobs),
    ] {
        for sha in shas {
            if ctx.store.blob_referenced(kind, sha).await? {
                totals.files_shared += 1;
                continue;
            }
            if ctx.blobs.delete(kind, sha).await? {
                totals.files_deleted += 1;
            }
        }
    }
    for (source, key) in &removed.source_keys {
        totals.source_files_deleted += maildirs.delete(source, key)?;
    }
    Ok(())
}

/// The mail files of Maildir sources, listed once per run.
#[derive(Default)]
struct MaildirFiles {
    /// Source id -> file name -> path, for `cur/` and `new/`.
    listed: HashMap<String, HashMap<String, Vec<PathBuf>>>,
}

impl MaildirFiles {
    /// Delete the Maildir file of `key` in `source` (`maildir:/path`); other sources are left.
    fn delete(&mut self, source: &str, key: &str) -> Result<u64, ServiceError> {
        let Some(root) = source.strip_prefix("maildir:") else {
            return Ok(0);
        };
        let files = self
            .listed
            .entry(source.to_string())
            .or_insert_with(|| list_maildir(Path::new(root)));
        let mut n = 0;
        for path in files.remove(key).unwrap_or_default() {
            match std::fs::remove_file(&path) {
                Ok(()) => n += 1,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => {
                    return Err(ServiceError::Disk {
                        path: path.display().to_string(),
                        reason: e.to_string(),
                    });
                }
            }
        }
        Ok(n)
    }
}

/// The mails of a Maildir by key: the file name without the `:2,FLAGS` info (the key the
/// source gave them).
fn list_maildir(root: &Path) -> HashMap<String, Vec<PathBuf>> {
    let mut out: HashMap<String, Vec<PathBuf>> = HashMap::new();
    for sub in ["new", "cur"] {
        let Ok(entries) = std::fs::read_dir(root.join(sub)) else {
            continue;
        };
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let key = name
                .split_once(":2,")
                .map_or(name.as_str(), |(k, _)| k)
                .to_string();
            out.entry(key).or_default().push(e.path());
        }
    }
    out
}

/// After a removal: the first time VACUUM (free space from before `secure_delete`), then a
/// TRUNCATE checkpoint so the WAL holds no old page image.
async fn wipe(ctx: &Context, totals: &mut RemovalTotals) -> Result<(), ServiceError> {
    if ctx.store.get_setting(VACUUMED).await?.is_none() {
        match ctx.store.vacuum().await {
            Ok(()) => {
                ctx.store
                    .put_setting(VACUUMED, &ts(ctx.clock.now()))
                    .await?;
                totals.vacuumed = true;
            }
            // Another process in a transaction: the next purge tries again.
            Err(e) => {
                tracing::warn!(error = %e, "VACUUM after the purge failed; tried again next time")
            }
        }
    }
    totals.wal_truncated = ctx.store.checkpoint_truncate().await?.truncated;
    if !totals.wal_truncated {
        tracing::warn!(
            "WAL not truncated after the purge: another process was reading; the next purge truncates it"
        );
    }
    Ok(())
}

/// Remove the data of `items` (from [`due_for_purge`]), one transaction each. A complaint
/// that fails is reported and left whole; the others go on.
pub async fn purge(
    ctx: &Context,
    actor: &str,
    mut items: Vec<PurgeItem>,
    progress: &dyn Progress,
) -> Result<PurgeReport, ServiceError> {
    let mut totals = RemovalTotals::default();
    let mut maildirs = MaildirFiles::default();
    progress.begin("purge", items.len() as u64);
    for item in &mut items {
        let now = ctx.clock.now();
        let detail = format!("personal data removed: {}", item.rule);
        let how = Removal {
            actor,
            event: PURGED_EVENT,
            detail: &detail,
            empty_kept_text: false,
        };
        let mut tx = ctx.store.begin().await?;
        match remove_complaint(tx.as_mut(), item.id, now, &how).await {
            Ok(Some(removed)) => {
                tx.commit().await?;
                totals.complaints += 1;
                totals.add(&removed);
                delete_files(ctx, &removed, &mut maildirs, &mut totals).await?;
                item.result = "removed".into();
            }
            Ok(None) => item.result = "already removed".into(),
            Err(e) => {
                tracing::error!(complaint = %item.reference, error = %e, "purge failed; the complaint is kept whole");
                item.result = format!("failed: {e}");
            }
        }
        progress.advance();
    }
    if totals.complaints > 0 {
        wipe(ctx, &mut totals).await?;
    }
    progress.finish();
    Ok(PurgeReport { items, totals })
}

/// The daily job: once per local day (recorded in `jobs_done`, claimed before the work so two
/// processes never both do it), whatever is due goes. `None` when it already ran today or
/// removed nothing.
pub async fn run_daily(ctx: &Context, now: DateTime<Utc>) -> Result<Option<String>, ServiceError> {
    let tz = ctx.procedure.tz;
    let today = local_date(now, tz);
    let fire = at_local(today, NaiveTime::MIN, tz);
    if ctx.store.job_done(JOB, fire).await? {
        return Ok(None);
    }
    let mut tx = ctx.store.begin().await?;
    if !tx.mark_job_done(JOB, fire, now).await? {
        return Ok(None);
    }
    tx.commit().await?;
    let items = due_for_purge(ctx, today).await?;
    if items.is_empty() {
        return Ok(None);
    }
    let report = purge(ctx, DAILY_ACTOR, items, &Silent).await?;
    let n = report.totals.complaints;
    let failed = report
        .items
        .iter()
        .filter(|i| i.result.starts_with("failed"))
        .count();
    let mut tx = ctx.store.begin().await?;
    tx.history(
        None,
        now,
        DAILY_ACTOR,
        JOB,
        &format!("personal data of {n} complaint(s) removed, {failed} failed"),
    )
    .await?;
    tx.commit().await?;
    Ok((n > 0 || failed > 0).then(|| format!("retention ({n} purged, {failed} failed)")))
}

/// Everything stored about one person: the complaints they made (also those entered on their
/// behalf: the complainant address is theirs) and their mails elsewhere (in other people's
/// complaints, unfiled).
#[derive(Debug, Clone)]
pub struct PersonFound {
    pub address: EmailAddress,
    pub complaints: Vec<ComplaintRow>,
    pub messages: Vec<PersonMessage>,
}

/// Refused for a staff, service or web-form address (see below).
pub async fn find_person(
    ctx: &Context,
    address: &EmailAddress,
) -> Result<PersonFound, ServiceError> {
    // Staff and our own addresses are in nearly every complaint: their "mails elsewhere"
    // would be everybody's complaints, and their history lines everyone's audit trail.
    let typed = &ctx.settings.typed;
    if typed.is_staff(address)
        || *address == typed.service_address
        || typed.web_form_senders.contains(address)
    {
        return Err(ServiceError::Invalid(format!(
            "{address} is a staff, service or web-form address of the configuration; export and erase are for the people who complain"
        )));
    }
    let found = ctx.store.complaints_of_address(address.as_str()).await?;
    let mut complaints = Vec::with_capacity(found.len());
    for (_, reference) in &found {
        if let Some(c) = ctx.store.complaint(reference).await? {
            complaints.push(c);
        }
    }
    let ids: Vec<i64> = found.iter().map(|(id, _)| *id).collect();
    let messages = ctx
        .store
        .messages_from_address(address.as_str(), &ids)
        .await?;
    Ok(PersonFound {
        address: address.clone(),
        complaints,
        messages,
    })
}

/// Erase everything found about a person (AVG art. 17), recorded without their data. `reason`
/// is kept in the history, cleared of their name and address.
pub async fn erase(
    ctx: &Context,
    found: &PersonFound,
    reason: Option<&str>,
    progress: &dyn Progress,
) -> Result<RemovalTotals, ServiceError> {
    let mut totals = RemovalTotals::default();
    let mut maildirs = MaildirFiles::default();
    let address = found.address.as_str();
    let mut needles = person_needles(None, Some(address));
    for c in &found.complaints {
        needles.extend(person_needles(c.complainant_name.as_deref(), None));
    }
    needles.sort_by_key(|s| std::cmp::Reverse(s.chars().count()));
    let detail = match reason.map(str::trim).filter(|r| !r.is_empty()) {
        Some(r) => format!(
            "personal data removed at the person's request (AVG art. 17): {}",
            scrub(r, &needles)
        ),
        None => "personal data removed at the person's request (AVG art. 17)".to_string(),
    };
    progress.begin("erase", found.complaints.len() as u64 + 1);
    for c in &found.complaints {
        let now = ctx.clock.now();
        let how = Removal {
            actor: CLI_ACTOR,
            event: ERASED_EVENT,
            detail: &detail,
            empty_kept_text: true,
        };
        let mut tx = ctx.store.begin().await?;
        if let Some(removed) = remove_complaint(tx.as_mut(), c.id, now, &how).await? {
            tx.commit().await?;
            totals.complaints += 1;
            totals.add(&removed);
            delete_files(ctx, &removed, &mut maildirs, &mut totals).await?;
        }
        progress.advance();
    }
    // Their mails elsewhere, and every history line naming them: one transaction.
    let now = ctx.clock.now();
    let mut tx = ctx.store.begin().await?;
    let ids: Vec<i64> = found.messages.iter().map(|m| m.id).collect();
    let removed = tx.remove_messages(&ids).await?;
    let mut touched: Vec<i64> = found
        .messages
        .iter()
        .filter_map(|m| m.complaint_id)
        .collect();
    touched.sort_unstable();
    touched.dedup();
    totals.history += tx.redact_history_mentioning(address).await?;
    for id in touched {
        tx.history(
            Some(id),
            now,
            CLI_ACTOR,
            MESSAGE_ERASED_EVENT,
            "a mail removed at its sender's request (AVG art. 17)",
        )
        .await?;
    }
    tx.commit().await?;
    totals.add(&removed);
    delete_files(ctx, &removed, &mut maildirs, &mut totals).await?;
    progress.advance();
    if totals.complaints > 0 || totals.messages > 0 || totals.history > 0 {
        wipe(ctx, &mut totals).await?;
    }
    progress.finish();
    Ok(totals)
}

/// What an export wrote.
#[derive(Debug, Clone, Serialize)]
pub struct ExportReport {
    pub dir: String,
    pub complaints: usize,
    pub messages: usize,
    pub mails: usize,
    /// Raw mails that were no longer on disk.
    pub missing: Vec<String>,
}

/// Write everything stored about a person (AVG art. 15) into `dir`, which must not exist or
/// be empty: `export.json` (their complaints with messages and history, and their mails
/// elsewhere) and `mails/*.eml`, the mails as received and as we sent them.
pub async fn export(
    ctx: &Context,
    found: &PersonFound,
    dir: &Path,
    progress: &dyn Progress,
) -> Result<ExportReport, ServiceError> {
    let disk = |p: &Path, e: std::io::Error| ServiceError::Disk {
        path: p.display().to_string(),
        reason: e.to_string(),
    };
    if dir.exists()
        && std::fs::read_dir(dir)
            .map_err(|e| disk(dir, e))?
            .next()
            .is_some()
    {
        return Err(ServiceError::Invalid(format!(
            "{} exists and is not empty: choose a new directory",
            dir.display()
        )));
    }
    let mails_dir = dir.join("mails");
    std::fs::create_dir_all(&mails_dir).map_err(|e| disk(&mails_dir, e))?;
    let mut report = ExportReport {
        dir: dir.display().to_string(),
        complaints: found.complaints.len(),
        messages: 0,
        mails: 0,
        missing: Vec::new(),
    };
    let write = |name: &str, bytes: &[u8]| -> Result<(), ServiceError> {
        let path = mails_dir.join(name);
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(|e| disk(&path, e))?;
        std::io::Write::write_all(&mut f, bytes).map_err(|e| disk(&path, e))
    };
    progress.begin("export", found.complaints.len() as u64 + 1);
    let mut complaints = Vec::new();
    for c in &found.complaints {
        let messages = ctx.store.messages(c.id).await?;
        let history = ctx.store.history(c.id).await?;
        report.messages += messages.len();
        let mut files = Vec::new();
        for m in ctx.store.complaint_mails(c.id).await? {
            let (name, bytes) = match m {
                StoredMail::Incoming {
                    message_row,
                    raw_sha256,
                    raw_kept,
                } => {
                    let name = format!("{}-in-{message_row}.eml", c.reference);
                    match ctx.blobs.get(RAW, &raw_sha256).await {
                        Ok(b) => {
                            if raw_kept != "whole" {
                                report.missing.push(format!(
                                    "{name}: only the headers were kept (the mail was over the size limit)"
                                ));
                            }
                            (name, b)
                        }
                        Err(e) => {
                            report.missing.push(format!("{name}: {e}"));
                            continue;
                        }
                    }
                }
                StoredMail::Outgoing { outbox_id, raw } => {
                    (format!("{}-out-{outbox_id}.eml", c.reference), raw)
                }
            };
            write(&name, &bytes)?;
            files.push(format!("mails/{name}"));
            report.mails += 1;
        }
        complaints.push(json!({
            "complaint": c,
            "messages": messages,
            "history": history,
            "mails": files,
        }));
        progress.advance();
    }
    let mut others = Vec::new();
    for m in &found.messages {
        let name = format!(
            "{}-in-{}.eml",
            m.reference.as_deref().unwrap_or("unfiled"),
            m.id
        );
        let file = match ctx.blobs.get(RAW, &m.raw_sha256).await {
            Ok(b) => {
                write(&name, &b)?;
                report.mails += 1;
                Some(format!("mails/{name}"))
            }
            Err(e) => {
                report.missing.push(format!("{name}: {e}"));
                None
            }
        };
        report.messages += 1;
        others.push(json!({
            "reference": m.reference,
            "received_at": m.received_at,
            "from": m.from,
            "subject": m.subject,
            "text": m.text,
            "raw_kept": m.raw_kept,
            "mail": file,
        }));
    }
    progress.advance();
    let doc = json!({
        "person": found.address.as_str(),
        "organisation": ctx.settings.organisation.name,
        "exported_at": ts(ctx.clock.now()),
        "complaints": complaints,
        "other_messages": others,
        "missing": report.missing,
    });
    let path = dir.join("export.json");
    let text = serde_json::to_string_pretty(&doc)
        .map_err(|e| ServiceError::Invalid(format!("cannot write the export: {e}")))?;
    std::fs::write(&path, text).map_err(|e| disk(&path, e))?;
    progress.finish();
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::retention::PersonalData;

    #[test]
    fn needles_cover_everyone_in_the_complaint_longest_first() {
        let pd = PersonalData {
            people: vec![
                (
                    Some("m.devries@voorbeeld.nl".into()),
                    Some("Marieke de Vries".into()),
                ),
                (Some("coordinator@example.org".into()), None),
            ],
            others: vec!["behandelaar@example.org".into(), "Piet Jansen".into()],
            ..PersonalData::default()
        };
        let n = needles_of(&pd);
        for want in [
            "m.devries@voorbeeld.nl",
            "Marieke de Vries",
            "Marieke",
            "Vries",
            "devries",
            "Piet Jansen",
            "Jansen",
            "behandelaar@example.org",
        ] {
            assert!(n.iter().any(|x| x == want), "{want} missing from {n:?}");
        }
        let lens: Vec<usize> = n.iter().map(|s| s.chars().count()).collect();
        assert!(lens.windows(2).all(|w| w[0] >= w[1]), "{n:?}");
        assert_eq!(
            scrub("Gesprek met Marieke de Vries en Piet Jansen", &n),
            "Gesprek met [verwijderd] en [verwijderd]"
        );
    }

    #[test]
    fn a_maildir_key_is_its_name_without_the_info() {
        let dir = tempfile::tempdir().unwrap();
        for sub in ["new", "cur", "tmp"] {
            std::fs::create_dir_all(dir.path().join(sub)).unwrap();
        }
        std::fs::write(dir.path().join("cur/123.M1P2.host:2,S"), b"x").unwrap();
        std::fs::write(dir.path().join("new/124.M1P2.host"), b"y").unwrap();
        std::fs::write(dir.path().join("cur/125.M1P2.host:2,"), b"z").unwrap();
        let mut files = MaildirFiles::default();
        let source = format!("maildir:{}", dir.path().display());
        assert_eq!(files.delete(&source, "123.M1P2.host").unwrap(), 1);
        assert_eq!(files.delete(&source, "124.M1P2.host").unwrap(), 1);
        assert_eq!(files.delete(&source, "123.M1P2.host").unwrap(), 0);
        assert_eq!(files.delete("imap:x@y/INBOX", "1:2").unwrap(), 0);
        assert!(dir.path().join("cur/125.M1P2.host:2,").exists());
        assert!(!dir.path().join("cur/123.M1P2.host:2,S").exists());
    }
}
