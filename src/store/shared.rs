//! Trait methods whose SQL and code are the same on both backends, written once: each
//! backend's method is a call of the macro here with its pool (`&self.pool`) or its
//! transaction's connection (`&mut *self.tx`) and the method's arguments. The SQL uses
//! `$N` placeholders, which SQLite reads by number too (`?NNN`/`$NNN`, bound by sqlx by
//! that number). Names in the bodies (`ts`, `parse_ts`, row types) are the backend
//! module's, where the macro is called (`nul_free`, for one, is the identity on SQLite).
//! Macros rather than functions generic over the database: the same body compiles against
//! each backend's concrete types, without a where-clause per bound type and statement.

/// [`super::SourceKeys::last_source_key`].
macro_rules! source_keys_last_source_key {
    ($db:expr, $source:expr) => {{
        let db = $db;
        let source = $source;
        Ok(sqlx::query_scalar(
            "SELECT key FROM source_keys WHERE source = $1 ORDER BY seq DESC LIMIT 1",
        )
        .bind(source)
        .fetch_optional(db)
        .await?)
    }};
}

/// [`super::SourceKeys::unmarked_source_keys`].
macro_rules! source_keys_unmarked_source_keys {
    ($db:expr, $source:expr, $limit:expr) => {{
        let db = $db;
        let source = $source;
        let limit = $limit;
        // The partial index source_keys_unmarked holds only these rows: cheap on every poll.
        Ok(sqlx::query_scalar(
            "SELECT key FROM source_keys WHERE source = $1 AND marked = 0 ORDER BY seq LIMIT $2",
        )
        .bind(source)
        .bind(limit)
        .fetch_all(db)
        .await?)
    }};
}

/// [`super::RegisterReads::complaint`].
macro_rules! register_reads_complaint {
    ($db:expr, $reference:expr) => {{
        let db = $db;
        let reference = $reference;
        let sql = format!(
            "SELECT {COMPLAINT_COLUMNS}, {MESSAGE_COUNT} FROM complaints c LEFT JOIN complaints r ON r.id = c.related_id
             WHERE c.reference = $1"
        );
        let row = sqlx::query(&sql)
            .bind(reference.to_ascii_uppercase())
            .fetch_optional(db)
            .await?;
        row.as_ref().map(rows::from_row).transpose()
    }};
}

/// [`super::RegisterReads::messages`].
macro_rules! register_reads_messages {
    ($db:expr, $complaint_id:expr) => {{
        let db = $db;
        let complaint_id = $complaint_id;
        let mut out = Vec::new();
        let rows = sqlx::query(
            "SELECT id, message_id, received_at, from_address, to_addresses, subject,
                    classification, body_text
             FROM messages WHERE complaint_id = $1 ORDER BY received_at, id",
        )
        .bind(complaint_id)
        .fetch_all(db)
        .await?;
        for r in rows {
            let id: i64 = r.try_get("id")?;
            let atts = sqlx::query(
                "SELECT name, content_type, size, sha256, refused_reason FROM attachments
                 WHERE message_row = $1 ORDER BY id",
            )
            .bind(id)
            .fetch_all(db)
            .await?
            .iter()
            .map(|a| Ok(AttachmentRow::from_row(a)?))
            .collect::<Result<Vec<_>, StoreError>>()?;
            out.push(MessageRow {
                id,
                direction: "in".into(),
                message_id: r.try_get("message_id")?,
                at: r.try_get("received_at")?,
                from: r.try_get("from_address")?,
                to: r.try_get("to_addresses")?,
                subject: r.try_get("subject")?,
                classification: r.try_get("classification")?,
                text: r.try_get("body_text")?,
                attachments: atts,
                status: None,
            });
        }
        let rows = sqlx::query(
            "SELECT id, message_id, created_at, envelope_from, recipients, subject, template,
                    status, bounced_at, raw
             FROM outbox WHERE complaint_id = $1 ORDER BY created_at, id",
        )
        .bind(complaint_id)
        .fetch_all(db)
        .await?;
        for r in rows {
            let raw: Vec<u8> = r.try_get("raw")?;
            let text = crate::mail::parse::parse(&raw)
                .map(|p| p.text)
                .unwrap_or_default();
            let bounced: Option<String> = r.try_get("bounced_at")?;
            let status: String = r.try_get("status")?;
            out.push(MessageRow {
                id: r.try_get("id")?,
                direction: "out".into(),
                message_id: Some(r.try_get("message_id")?),
                at: r.try_get("created_at")?,
                from: r.try_get("envelope_from")?,
                to: r.try_get("recipients")?,
                subject: r.try_get("subject")?,
                classification: r.try_get("template")?,
                text,
                attachments: vec![],
                status: Some(if bounced.is_some() {
                    "bounced".into()
                } else {
                    status
                }),
            });
        }
        out.sort_by(|a, b| a.at.cmp(&b.at).then(a.direction.cmp(&b.direction)));
        Ok(out)
    }};
}

/// [`super::RegisterReads::history`].
macro_rules! register_reads_history {
    ($db:expr, $complaint_id:expr) => {{
        let db = $db;
        let complaint_id = $complaint_id;
        let rows = sqlx::query(
            "SELECT at, actor, event, detail FROM history WHERE complaint_id = $1 ORDER BY id",
        )
        .bind(complaint_id)
        .fetch_all(db)
        .await?;
        rows.iter().map(|r| Ok(HistoryRow::from_row(r)?)).collect()
    }};
}

/// [`super::RegisterReads::list_quarantine_page`].
macro_rules! register_reads_list_quarantine_page {
    ($db:expr, $all:expr, $after_id:expr, $limit:expr) => {{
        let db = $db;
        let all = $all;
        let after_id = $after_id;
        let limit = $limit;
        let rows = sqlx::query(
            "SELECT id, status, received_at, message_id, reason, source, source_key, raw_sha256,
                    raw_size
             FROM quarantine WHERE ($1 OR status = 'held') AND id > $2 ORDER BY id LIMIT $3",
        )
        .bind(all)
        .bind(after_id)
        .bind(limit)
        .fetch_all(db)
        .await?;
        rows.iter().map(rows::from_row).collect()
    }};
}

/// [`super::RegisterReads::list_unfiled_page`].
macro_rules! register_reads_list_unfiled_page {
    ($db:expr, $after_id:expr, $limit:expr) => {{
        let db = $db;
        let after_id = $after_id;
        let limit = $limit;
        let rows = sqlx::query(
            "SELECT id, received_at, message_id, from_address, subject, unfiled_reason
             FROM messages WHERE complaint_id IS NULL AND unfiled_reason IS NOT NULL AND id > $1
             ORDER BY id LIMIT $2",
        )
        .bind(after_id)
        .bind(limit)
        .fetch_all(db)
        .await?;
        rows.iter().map(rows::from_row).collect()
    }};
}

/// [`super::RegisterReads::complaint_count`].
macro_rules! register_reads_complaint_count {
    ($db:expr) => {{
        let db = $db;
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM complaints WHERE status <> 'voided'")
            .fetch_one(db)
            .await?;
        Ok(u64::try_from(n).unwrap_or(0))
    }};
}

/// [`super::OutboxQueue::next_outbox_due`].
macro_rules! outbox_queue_next_outbox_due {
    ($db:expr) => {{
        let db = $db;
        let next: Option<String> = sqlx::query_scalar(
            "SELECT MIN(next_attempt_at) FROM outbox WHERE status IN ('queued', 'sending')",
        )
        .fetch_one(db)
        .await?;
        next.map(|s| parse_ts(&s)).transpose()
    }};
}

/// [`super::SchedulerReads::open_complaint_ids`].
macro_rules! scheduler_reads_open_complaint_ids {
    ($db:expr) => {{
        let db = $db;
        Ok(
            sqlx::query_scalar("SELECT id FROM complaints WHERE status = 'open' ORDER BY id")
                .fetch_all(db)
                .await?,
        )
    }};
}

/// [`super::SchedulerReads::complaints_due`].
macro_rules! scheduler_reads_complaints_due {
    ($db:expr, $at:expr) => {{
        let db = $db;
        let at = $at;
        // '' (unknown) sorts before every time and NULL (nothing planned) matches no
        // comparison: one range of complaints_next_due, which holds the id too. Sorted here:
        // an ORDER BY id would make SQLite walk every open complaint in id order instead.
        let mut ids: Vec<i64> = sqlx::query_scalar(
            "SELECT id FROM complaints WHERE status = 'open' AND next_due_at <= $1",
        )
        .bind(ts(at))
        .fetch_all(db)
        .await?;
        ids.sort_unstable();
        Ok(ids)
    }};
}

/// [`super::SchedulerReads::earliest_next_due`].
macro_rules! scheduler_reads_earliest_next_due {
    ($db:expr) => {{
        let db = $db;
        let next: Option<String> = sqlx::query_scalar(
            "SELECT next_due_at FROM complaints
             WHERE status = 'open' AND next_due_at IS NOT NULL
             ORDER BY next_due_at LIMIT 1",
        )
        .fetch_optional(db)
        .await?;
        next.map(|s| {
            if s.is_empty() {
                Ok(NextDue::Unknown)
            } else {
                parse_ts(&s).map(NextDue::At)
            }
        })
        .transpose()
    }};
}

/// [`super::SchedulerReads::forget_next_due`].
macro_rules! scheduler_reads_forget_next_due {
    ($db:expr) => {{
        let db = $db;
        let r = sqlx::query("UPDATE complaints SET next_due_at = '' WHERE status = 'open'")
            .execute(db)
            .await?;
        Ok(r.rows_affected())
    }};
}

/// [`super::SchedulerReads::job_done`].
macro_rules! scheduler_reads_job_done {
    ($db:expr, $job:expr, $fire_at:expr) => {{
        let db = $db;
        let job = $job;
        let fire_at = $fire_at;
        let n: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM jobs_done WHERE job = $1 AND fire_at = $2")
                .bind(job)
                .bind(ts(fire_at))
                .fetch_one(db)
                .await?;
        Ok(n > 0)
    }};
}

/// [`super::SettingsStore::get_setting`].
macro_rules! settings_store_get_setting {
    ($db:expr, $key:expr) => {{
        let db = $db;
        let key = $key;
        Ok(
            sqlx::query_scalar("SELECT value FROM settings_kv WHERE key = $1")
                .bind(key)
                .fetch_optional(db)
                .await?,
        )
    }};
}

/// [`super::SettingsStore::put_setting`].
macro_rules! settings_store_put_setting {
    ($db:expr, $key:expr, $value:expr) => {{
        let db = $db;
        let key = $key;
        let value = $value;
        sqlx::query(
            "INSERT INTO settings_kv (key, value) VALUES ($1, $2)
             ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        )
        .bind(key)
        .bind(value)
        .execute(db)
        .await?;
        Ok(())
    }};
}

/// [`super::SettingsStore::setting_or_insert`].
macro_rules! settings_store_setting_or_insert {
    ($db:expr, $key:expr, $value:expr) => {{
        let db = $db;
        let key = $key;
        let value = $value;
        sqlx::query(
            "INSERT INTO settings_kv (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING",
        )
        .bind(key)
        .bind(value)
        .execute(db)
        .await?;
        Ok(
            sqlx::query_scalar("SELECT value FROM settings_kv WHERE key = $1")
                .bind(key)
                .fetch_one(db)
                .await?,
        )
    }};
}

/// [`super::IntakeTx::dedupe_key_exists`].
macro_rules! intake_tx_dedupe_key_exists {
    ($db:expr, $key:expr) => {{
        let db = $db;
        let key = $key;
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM messages WHERE dedupe_key = $1")
            .bind(key)
            .fetch_one(&mut *db)
            .await?;
        Ok(n > 0)
    }};
}

/// [`super::IntakeTx::complaint_by_reference`].
macro_rules! intake_tx_complaint_by_reference {
    ($db:expr, $reference:expr) => {{
        let db = $db;
        let reference = $reference;
        let row = sqlx::query(
            "SELECT id, complainant_address FROM complaints WHERE reference = $1 AND status <> 'voided'",
        )
        .bind(reference)
        .fetch_optional(&mut *db)
        .await?;
        row.map(|r| Ok((r.try_get("id")?, r.try_get("complainant_address")?)))
            .transpose()
    }};
}

/// [`super::IntakeTx::quarantine_entry`].
macro_rules! intake_tx_quarantine_entry {
    ($db:expr, $id:expr) => {{
        let db = $db;
        let id = $id;
        let row = sqlx::query(
            "SELECT source, source_key, raw_sha256, received_at FROM quarantine
             WHERE id = $1 AND status = 'held'",
        )
        .bind(id)
        .fetch_optional(&mut *db)
        .await?;
        row.map(|r| {
            Ok((
                r.try_get("source")?,
                r.try_get("source_key")?,
                r.try_get("raw_sha256")?,
                parse_ts(&r.try_get::<String, _>("received_at")?)?,
            ))
        })
        .transpose()
    }};
}

/// [`super::IntakeTx::set_quarantine_status`].
macro_rules! intake_tx_set_quarantine_status {
    ($db:expr, $id:expr, $status:expr, $at:expr) => {{
        let db = $db;
        let id = $id;
        let status = $status;
        let at = $at;
        sqlx::query("UPDATE quarantine SET status = $1, released_at = $2 WHERE id = $3")
            .bind(status)
            .bind(ts(at))
            .bind(id)
            .execute(&mut *db)
            .await?;
        Ok(())
    }};
}

/// [`super::IntakeTx::held_quarantine_by_sha`].
macro_rules! intake_tx_held_quarantine_by_sha {
    ($db:expr, $sha:expr) => {{
        let db = $db;
        let sha = $sha;
        Ok(sqlx::query_scalar(
            "SELECT id FROM quarantine WHERE raw_sha256 = $1 AND status = 'held' LIMIT 1",
        )
        .bind(sha)
        .fetch_optional(&mut *db)
        .await?)
    }};
}

/// [`super::IntakeTx::messages_with_message_id`].
macro_rules! intake_tx_messages_with_message_id {
    ($db:expr, $message_id:expr) => {{
        let db = $db;
        let message_id = $message_id;
        let rows = sqlx::query(
            "SELECT from_address, subject, body_text FROM messages WHERE message_id = $1 LIMIT 100",
        )
        .bind(message_id)
        .fetch_all(&mut *db)
        .await?;
        Ok(rows
            .iter()
            .map(|r| StoredContent {
                from_address: r.get(0),
                subject: r.get(1),
                body_text: r.get(2),
            })
            .collect())
    }};
}

/// [`super::IntakeTx::unfiled_message`].
macro_rules! intake_tx_unfiled_message {
    ($db:expr, $id:expr) => {{
        let db = $db;
        let id = $id;
        let row = sqlx::query(
            "SELECT id, message_id, received_at, from_address, from_name, reply_to, subject,
                    body_text, automatic
             FROM messages WHERE id = $1 AND complaint_id IS NULL AND unfiled_reason IS NOT NULL",
        )
        .bind(id)
        .fetch_optional(&mut *db)
        .await?;
        row.map(|r| {
            Ok(UnfiledMessage {
                id: r.try_get("id")?,
                message_id: r.try_get("message_id")?,
                received_at: parse_ts(&r.try_get::<String, _>("received_at")?)?,
                from_address: r.try_get("from_address")?,
                from_name: r.try_get("from_name")?,
                reply_to: r.try_get("reply_to")?,
                subject: r.try_get("subject")?,
                body_text: r.try_get("body_text")?,
                automatic: r.try_get("automatic")?,
            })
        })
        .transpose()
    }};
}

/// [`super::IntakeTx::file_message`].
macro_rules! intake_tx_file_message {
    ($db:expr, $message_row:expr, $complaint_id:expr) => {{
        let db = $db;
        let message_row = $message_row;
        let complaint_id = $complaint_id;
        sqlx::query("UPDATE messages SET complaint_id = $1, unfiled_reason = NULL WHERE id = $2")
            .bind(complaint_id)
            .bind(message_row)
            .execute(&mut *db)
            .await?;
        Ok(())
    }};
}

/// [`super::ComplaintTx::complaint_state`].
macro_rules! complaint_tx_complaint_state {
    ($db:expr, $id:expr) => {{
        let db = $db;
        let id = $id;
        let row = sqlx::query(
            "SELECT c.id, c.reference, c.received_at, c.status, c.severity, c.serious_keywords,
                    c.language, c.procedure_name, c.procedure_version, c.subject,
                    c.complainant_address, c.complainant_name, c.handler, c.solution, c.round,
                    c.extended_weeks, c.subject_person, c.extension_agreement, c.routed_roles,
                    c.category, c.cause, c.incident_kind, c.agreement,
                    CAST(c.satisfaction AS TEXT) AS satisfaction, c.reopen_reason, c.kind, c.measure,
                    (SELECT r.reference FROM complaints r WHERE r.id = c.related_id) AS related_reference,
                    (SELECT body_text FROM messages m WHERE m.complaint_id = c.id ORDER BY m.id LIMIT 1) AS text,
                    (SELECT message_id FROM messages m WHERE m.complaint_id = c.id ORDER BY m.id LIMIT 1) AS first_message_id
             FROM complaints c WHERE c.id = $1",
        )
        .bind(id)
        .fetch_optional(&mut *db)
        .await?;
        row.map(|r| {
            Ok(ComplaintState {
                id: r.try_get("id")?,
                reference: r.try_get("reference")?,
                received_at: parse_ts(&r.try_get::<String, _>("received_at")?)?,
                status: r.try_get("status")?,
                severity: r.try_get("severity")?,
                serious_keywords: r.try_get("serious_keywords")?,
                language: r.try_get("language")?,
                procedure_name: r.try_get("procedure_name")?,
                procedure_version: r.try_get("procedure_version")?,
                subject: r.try_get("subject")?,
                complainant_address: r.try_get("complainant_address")?,
                complainant_name: r.try_get("complainant_name")?,
                handler: r.try_get("handler")?,
                solution: r.try_get("solution")?,
                round: u32::try_from(r.try_get::<i64, _>("round")?).unwrap_or(0),
                extended_weeks: u32::try_from(r.try_get::<i64, _>("extended_weeks")?).unwrap_or(0),
                subject_person: r.try_get("subject_person")?,
                extension_agreement: r.try_get("extension_agreement")?,
                routed_roles: r
                    .try_get::<Option<String>, _>("routed_roles")?
                    .map(|s| {
                        s.split(',')
                            .map(str::to_string)
                            .filter(|r| !r.is_empty())
                            .collect()
                    })
                    .unwrap_or_default(),
                text: r.try_get::<Option<String>, _>("text")?.unwrap_or_default(),
                first_message_id: r.try_get("first_message_id")?,
                category: r.try_get("category")?,
                cause: r.try_get("cause")?,
                incident_kind: r.try_get("incident_kind")?,
                agreement: r.try_get("agreement")?,
                satisfaction: r.try_get("satisfaction")?,
                reopen_reason: r.try_get("reopen_reason")?,
                kind: r.try_get("kind")?,
                related_reference: r.try_get("related_reference")?,
                measure: r.try_get("measure")?,
            })
        })
        .transpose()
    }};
}

/// [`super::ComplaintTx::complaint_id_by_reference`].
macro_rules! complaint_tx_complaint_id_by_reference {
    ($db:expr, $reference:expr) => {{
        let db = $db;
        let reference = $reference;
        Ok(
            sqlx::query_scalar("SELECT id FROM complaints WHERE reference = $1")
                .bind(reference.to_ascii_uppercase())
                .fetch_optional(&mut *db)
                .await?,
        )
    }};
}

/// [`super::ComplaintTx::complaint_complainant`].
macro_rules! complaint_tx_complaint_complainant {
    ($db:expr, $id:expr) => {{
        let db = $db;
        let id = $id;
        Ok(
            sqlx::query_scalar("SELECT complainant_address FROM complaints WHERE id = $1")
                .bind(id)
                .fetch_optional(&mut *db)
                .await?,
        )
    }};
}

/// [`super::ComplaintTx::milestones`].
macro_rules! complaint_tx_milestones {
    ($db:expr, $id:expr) => {{
        let db = $db;
        let id = $id;
        let rows =
            sqlx::query("SELECT milestone, completed_at FROM milestones WHERE complaint_id = $1")
                .bind(id)
                .fetch_all(&mut *db)
                .await?;
        let mut out = std::collections::BTreeMap::new();
        for r in rows {
            out.insert(
                r.try_get("milestone")?,
                parse_ts(&r.try_get::<String, _>("completed_at")?)?,
            );
        }
        Ok(out)
    }};
}

/// [`super::OutboxTx::count_sent_to_since`].
macro_rules! outbox_tx_count_sent_to_since {
    ($db:expr, $template:expr, $recipient:expr, $since:expr) => {{
        let db = $db;
        let template = $template;
        let recipient = $recipient;
        let since = $since;
        Ok(sqlx::query_scalar(
            "SELECT COUNT(*) FROM outbox WHERE template = $1 AND recipients = $2 AND created_at >= $3",
        )
        .bind(template)
        .bind(recipient)
        .bind(ts(since))
        .fetch_one(&mut *db)
        .await?)
    }};
}

/// [`super::OutboxTx::sent_by_message_ids`].
macro_rules! outbox_tx_sent_by_message_ids {
    ($db:expr, $ids:expr) => {{
        let db = $db;
        let ids = $ids;
        for id in ids {
            let row = sqlx::query(
                "SELECT id, complaint_id, template, recipients FROM outbox WHERE message_id = $1",
            )
            .bind(id)
            .fetch_optional(&mut *db)
            .await?;
            if let Some(r) = row {
                return Ok(Some(SentRef {
                    outbox_id: r.try_get("id")?,
                    complaint_id: r.try_get("complaint_id")?,
                    template: r.try_get("template")?,
                    recipients: r.try_get("recipients")?,
                }));
            }
        }
        Ok(None)
    }};
}

/// [`super::OutboxTx::sent_by_id`].
macro_rules! outbox_tx_sent_by_id {
    ($db:expr, $outbox_id:expr) => {{
        let db = $db;
        let outbox_id = $outbox_id;
        let row =
            sqlx::query("SELECT id, complaint_id, template, recipients FROM outbox WHERE id = $1")
                .bind(outbox_id)
                .fetch_optional(&mut *db)
                .await?;
        row.map(|r| {
            Ok(SentRef {
                outbox_id: r.try_get("id")?,
                complaint_id: r.try_get("complaint_id")?,
                template: r.try_get("template")?,
                recipients: r.try_get("recipients")?,
            })
        })
        .transpose()
    }};
}

/// [`super::OutboxTx::complaint_mail_recipients`].
macro_rules! outbox_tx_complaint_mail_recipients {
    ($db:expr, $complaint_id:expr) => {{
        let db = $db;
        let complaint_id = $complaint_id;
        let rows = sqlx::query(
            "SELECT DISTINCT recipients, recipient_role, template FROM outbox
             WHERE complaint_id = $1 LIMIT 1000",
        )
        .bind(complaint_id)
        .fetch_all(&mut *db)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(SentTo {
                    recipients: r.try_get("recipients")?,
                    role: r.try_get("recipient_role")?,
                    template: r.try_get("template")?,
                })
            })
            .collect()
    }};
}

/// [`super::SchedulerTx::actions_done`].
macro_rules! scheduler_tx_actions_done {
    ($db:expr, $id:expr) => {{
        let db = $db;
        let id = $id;
        let keys: Vec<String> =
            sqlx::query_scalar("SELECT action_key FROM actions_done WHERE complaint_id = $1")
                .bind(id)
                .fetch_all(&mut *db)
                .await?;
        Ok(keys.into_iter().collect())
    }};
}

/// [`super::SchedulerTx::mark_action_done`].
macro_rules! scheduler_tx_mark_action_done {
    ($db:expr, $id:expr, $key:expr, $due_at:expr, $done_at:expr) => {{
        let db = $db;
        let id = $id;
        let key = $key;
        let due_at = $due_at;
        let done_at = $done_at;
        let r = sqlx::query(
            "INSERT INTO actions_done (complaint_id, action_key, due_at, done_at) VALUES ($1, $2, $3, $4)
             ON CONFLICT (complaint_id, action_key) DO NOTHING",
        )
        .bind(id)
        .bind(key)
        .bind(ts(due_at))
        .bind(ts(done_at))
        .execute(&mut *db)
        .await?;
        Ok(r.rows_affected() == 1)
    }};
}

/// [`super::SchedulerTx::mark_job_done`].
macro_rules! scheduler_tx_mark_job_done {
    ($db:expr, $job:expr, $fire_at:expr, $done_at:expr) => {{
        let db = $db;
        let job = $job;
        let fire_at = $fire_at;
        let done_at = $done_at;
        let r = sqlx::query(
            "INSERT INTO jobs_done (job, fire_at, done_at) VALUES ($1, $2, $3) ON CONFLICT (job, fire_at) DO NOTHING",
        )
        .bind(job)
        .bind(ts(fire_at))
        .bind(ts(done_at))
        .execute(&mut *db)
        .await?;
        Ok(r.rows_affected() == 1)
    }};
}

/// [`super::SchedulerTx::set_next_due`].
macro_rules! scheduler_tx_set_next_due {
    ($db:expr, $complaint_id:expr, $next:expr) => {{
        let db = $db;
        let complaint_id = $complaint_id;
        let next = $next;
        sqlx::query("UPDATE complaints SET next_due_at = $1 WHERE id = $2")
            .bind(next.map(ts))
            .bind(complaint_id)
            .execute(&mut *db)
            .await?;
        Ok(())
    }};
}

/// [`super::retention::RetentionStore::complaints_of_address`].
macro_rules! retention_store_complaints_of_address {
    ($db:expr, $address:expr) => {{
        let db = $db;
        let address = $address;
        Ok(sqlx::query_as(
            "SELECT id, reference FROM complaints
             WHERE complainant_address <> '' AND lower(complainant_address) = lower($1)
             ORDER BY ref_year, ref_prefix, ref_number",
        )
        .bind(address)
        .fetch_all(db)
        .await?)
    }};
}

/// [`super::retention::RetentionStore::complaint_mails`].
macro_rules! retention_store_complaint_mails {
    ($db:expr, $complaint_id:expr) => {{
        let db = $db;
        let complaint_id = $complaint_id;
        let mut out = Vec::new();
        for r in sqlx::query(
            "SELECT id, raw_sha256, raw_kept FROM messages WHERE complaint_id = $1
             ORDER BY received_at, id",
        )
        .bind(complaint_id)
        .fetch_all(db)
        .await?
        {
            out.push(StoredMail::Incoming {
                message_row: r.try_get("id")?,
                raw_sha256: r.try_get("raw_sha256")?,
                raw_kept: r.try_get("raw_kept")?,
            });
        }
        for r in sqlx::query(
            "SELECT id, raw FROM outbox WHERE complaint_id = $1 AND length(raw) > 0
             ORDER BY created_at, id",
        )
        .bind(complaint_id)
        .fetch_all(db)
        .await?
        {
            out.push(StoredMail::Outgoing {
                outbox_id: r.try_get("id")?,
                raw: r.try_get("raw")?,
            });
        }
        Ok(out)
    }};
}

/// [`super::retention::RetentionStore::referenced_blobs`].
macro_rules! retention_store_referenced_blobs {
    ($db:expr, $kind:expr) => {{
        let db = $db;
        let kind = $kind;
        let Some(sql) = crate::store::retention::referenced_blobs_sql(kind) else {
            return Ok(Vec::new());
        };
        Ok(sqlx::query_scalar(sql).fetch_all(db).await?)
    }};
}

/// [`super::RegisterReads::list_outbox_page`].
macro_rules! register_reads_list_outbox_page {
    ($db:expr, $status:expr, $after_id:expr, $limit:expr) => {{
        let db = $db;
        let status = $status;
        let after_id = $after_id;
        let limit = $limit;

        let rows = sqlx::query(
            "SELECT o.id, c.reference, o.template, o.message_id, o.recipients, o.subject,
                    o.status, o.attempts, o.next_attempt_at, o.last_error, o.created_at,
                    o.sent_at, o.bounced_at
             FROM outbox o LEFT JOIN complaints c ON c.id = o.complaint_id
             WHERE ($1 IS NULL OR o.status = $1) AND o.id > $2 ORDER BY o.id LIMIT $3",
        )
        .bind(status)
        .bind(after_id)
        .bind(limit)
        .fetch_all(db)
        .await?;
        rows.iter().map(rows::from_row).collect()
    }};
}

/// [`super::OutboxQueue::outbox_free_leases_of`].
macro_rules! outbox_queue_outbox_free_leases_of {
    ($db:expr, $owner:expr, $now:expr) => {{
        let db = $db;
        let owner = $owner;
        let now = $now;

        let r = sqlx::query(
            "UPDATE outbox SET status = 'queued', next_attempt_at = $1, lease_owner = NULL
             WHERE status = 'sending' AND next_attempt_at > $1 AND lease_owner = $2",
        )
        .bind(ts(now))
        .bind(owner)
        .execute(db)
        .await?;
        Ok(r.rows_affected())
    }};
}

/// [`super::OutboxQueue::outbox_retry`].
macro_rules! outbox_queue_outbox_retry {
    ($db:expr, $claim:expr, $next:expr, $error:expr) => {{
        let db = $db;
        let claim = $claim;
        let next = $next;
        let error = $error;

        let r = sqlx::query(
            "UPDATE outbox SET status = 'queued', next_attempt_at = $1, last_error = $2,
                    lease_owner = NULL
             WHERE id = $3 AND status = 'sending' AND attempts = $4",
        )
        .bind(ts(next))
        .bind(nul_free(error))
        .bind(claim.id)
        .bind(claim.attempt)
        .execute(db)
        .await?;
        Ok(r.rows_affected() == 1)
    }};
}

/// [`super::OutboxQueue::outbox_backlog`].
macro_rules! outbox_queue_outbox_backlog {
    ($db:expr, $now:expr) => {{
        let db = $db;
        let now = $now;

        let (depth, oldest): (i64, Option<String>) = sqlx::query_as(
            "SELECT COUNT(*),
                    MIN(CASE WHEN attempts > 0 OR next_attempt_at <= $1 THEN created_at END)
             FROM outbox WHERE status IN ('queued', 'sending')",
        )
        .bind(ts(now))
        .fetch_one(db)
        .await?;
        Ok(OutboxBacklog {
            depth: u64::try_from(depth).unwrap_or(0),
            oldest_waiting_since: oldest.map(|s| parse_ts(&s)).transpose()?,
        })
    }};
}

/// [`super::IntakeTx::complaint_by_message_ids`].
macro_rules! intake_tx_complaint_by_message_ids {
    ($db:expr, $ids:expr) => {{
        let db = $db;
        let ids = $ids;

        for id in ids {
            let found: Option<i64> = sqlx::query_scalar(
                "SELECT complaint_id FROM messages WHERE message_id = $1 AND complaint_id IS NOT NULL
                 UNION ALL
                 SELECT complaint_id FROM outbox WHERE message_id = $1 AND complaint_id IS NOT NULL
                 LIMIT 1",
            )
            .bind(id)
            .fetch_optional(&mut *db)
            .await?;
            if found.is_some() {
                return Ok(found);
            }
        }
        Ok(None)
    }};
}

/// [`super::IntakeTx::insert_message`].
macro_rules! intake_tx_insert_message {
    ($db:expr, $m:expr) => {{
        let db = $db;
        let m = $m;

        let id: i64 = sqlx::query_scalar(
            "INSERT INTO messages (complaint_id, dedupe_key, message_id, source, source_key,
                received_at, sent_date, from_address, from_name, reply_to, to_addresses, subject,
                in_reply_to, references_ids, body_text, raw_sha256, raw_size, raw_kept,
                classification, automatic, unfiled_reason, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22) RETURNING id",
        )
        .bind(m.complaint_id)
        .bind(&m.dedupe_key)
        .bind(nul_free_opt(&m.message_id))
        .bind(&m.source)
        .bind(nul_free(&m.source_key))
        .bind(ts(m.received_at))
        .bind(m.sent_date.map(ts))
        .bind(nul_free(&m.from_address))
        .bind(nul_free_opt(&m.from_name))
        .bind(nul_free_opt(&m.reply_to))
        .bind(nul_free(&m.to_addresses))
        .bind(nul_free(&m.subject))
        .bind(nul_free_opt(&m.in_reply_to))
        .bind(nul_free_opt(&m.references_ids))
        .bind(nul_free(&m.body_text))
        .bind(&m.raw_sha256)
        .bind(m.raw_size)
        .bind(&m.raw_kept)
        .bind(&m.classification)
        .bind(nul_free_opt(&m.automatic))
        .bind(nul_free_opt(&m.unfiled_reason))
        .bind(ts(m.created_at))
        .fetch_one(&mut *db)
        .await?;
        Ok(id)
    }};
}

/// [`super::IntakeTx::insert_attachment`].
macro_rules! intake_tx_insert_attachment {
    ($db:expr, $message_row:expr, $a:expr) => {{
        let db = $db;
        let message_row = $message_row;
        let a = $a;

        sqlx::query(
            "INSERT INTO attachments (message_row, name, content_type, size, sha256, refused_reason)
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(message_row)
        .bind(nul_free(&a.name))
        .bind(nul_free(&a.content_type))
        .bind(a.size)
        .bind(&a.sha256)
        .bind(nul_free_opt(&a.refused_reason))
        .execute(&mut *db)
        .await?;
        Ok(())
    }};
}

/// [`super::IntakeTx::insert_quarantine`].
macro_rules! intake_tx_insert_quarantine {
    ($db:expr, $q:expr) => {{
        let db = $db;
        let q = $q;

        Ok(sqlx::query_scalar(
            "INSERT INTO quarantine (source, source_key, message_id, received_at, reason,
                raw_sha256, raw_size, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id",
        )
        .bind(&q.source)
        .bind(nul_free(&q.source_key))
        .bind(nul_free_opt(&q.message_id))
        .bind(ts(q.received_at))
        .bind(nul_free(&q.reason))
        .bind(&q.raw_sha256)
        .bind(q.raw_size)
        .bind(ts(q.created_at))
        .fetch_one(&mut *db)
        .await?)
    }};
}

/// [`super::ComplaintTx::void_complaint`].
macro_rules! complaint_tx_void_complaint {
    ($db:expr, $id:expr, $reason:expr, $at:expr) => {{
        let db = $db;
        let id = $id;
        let reason = $reason;
        let at = $at;

        sqlx::query(
            "UPDATE complaints SET status = 'voided', void_reason = $1, voided_at = $2 WHERE id = $3",
        )
        .bind(reason)
        .bind(ts(at))
        .bind(id)
        .execute(&mut *db)
        .await?;
        Ok(())
    }};
}

/// [`super::ComplaintTx::set_field`].
macro_rules! complaint_tx_set_field {
    ($db:expr, $id:expr, $field:expr, $value:expr) => {{
        let db = $db;
        let id = $id;
        let field = $field;
        let value = $value;

        if !SETTABLE_FIELDS.contains(&field) {
            return Err(StoreError::Conflict(format!("field {field} cannot be set")));
        }
        // The column name comes from the fixed list above, never from input.
        let sql = format!("UPDATE complaints SET {field} = $1 WHERE id = $2");
        sqlx::query(&sql)
            .bind(value.map(nul_free))
            .bind(id)
            .execute(&mut *db)
            .await?;
        Ok(())
    }};
}

/// [`super::ComplaintTx::link_complaint`].
macro_rules! complaint_tx_link_complaint {
    ($db:expr, $id:expr, $related_id:expr) => {{
        let db = $db;
        let id = $id;
        let related_id = $related_id;
        sqlx::query("UPDATE complaints SET related_id = $1 WHERE id = $2")
            .bind(related_id)
            .bind(id)
            .execute(&mut *db)
            .await?;
        Ok(())
    }};
}

/// [`super::ComplaintTx::set_progress`].
macro_rules! complaint_tx_set_progress {
    ($db:expr, $id:expr, $round:expr, $extended_weeks:expr) => {{
        let db = $db;
        let id = $id;
        let round = $round;
        let extended_weeks = $extended_weeks;

        sqlx::query("UPDATE complaints SET round = $1, extended_weeks = $2 WHERE id = $3")
            .bind(i64::from(round))
            .bind(i64::from(extended_weeks))
            .bind(id)
            .execute(&mut *db)
            .await?;
        Ok(())
    }};
}

/// [`super::ComplaintTx::reset_milestone`].
macro_rules! complaint_tx_reset_milestone {
    ($db:expr, $id:expr, $milestone:expr, $at:expr, $actor:expr) => {{
        let db = $db;
        let id = $id;
        let milestone = $milestone;
        let at = $at;
        let actor = $actor;

        sqlx::query("DELETE FROM milestones WHERE complaint_id = $1 AND milestone = $2")
            .bind(id)
            .bind(milestone)
            .execute(&mut *db)
            .await?;
        if let Some(at) = at {
            sqlx::query("INSERT INTO milestones (complaint_id, milestone, completed_at, actor) VALUES ($1, $2, $3, $4)")
                .bind(id)
                .bind(milestone)
                .bind(ts(at))
                .bind(actor)
                .execute(&mut *db)
                .await?;
        }
        Ok(())
    }};
}

/// [`super::ComplaintTx::complete_milestone`].
macro_rules! complaint_tx_complete_milestone {
    ($db:expr, $complaint_id:expr, $milestone:expr, $at:expr, $actor:expr) => {{
        let db = $db;
        let complaint_id = $complaint_id;
        let milestone = $milestone;
        let at = $at;
        let actor = $actor;

        let r = sqlx::query(
            "INSERT INTO milestones (complaint_id, milestone, completed_at, actor) VALUES ($1, $2, $3, $4)
             ON CONFLICT (complaint_id, milestone) DO NOTHING",
        )
        .bind(complaint_id)
        .bind(milestone)
        .bind(ts(at))
        .bind(actor)
        .execute(&mut *db)
        .await?;
        Ok(r.rows_affected() == 1)
    }};
}

/// [`super::OutboxTx::mark_bounced`].
macro_rules! outbox_tx_mark_bounced {
    ($db:expr, $outbox_id:expr, $at:expr, $reason:expr) => {{
        let db = $db;
        let outbox_id = $outbox_id;
        let at = $at;
        let reason = $reason;

        let r = sqlx::query(
            "UPDATE outbox SET bounced_at = $1, bounce_reason = $2 WHERE id = $3 AND bounced_at IS NULL",
        )
        .bind(ts(at))
        .bind(nul_free(reason))
        .bind(outbox_id)
        .execute(&mut *db)
        .await?;
        Ok(r.rows_affected() == 1)
    }};
}

/// [`super::OutboxTx::mark_outbox_failed`].
macro_rules! outbox_tx_mark_outbox_failed {
    ($db:expr, $outbox_id:expr, $error:expr) => {{
        let db = $db;
        let outbox_id = $outbox_id;
        let error = $error;

        sqlx::query("UPDATE outbox SET status = 'failed', last_error = $1 WHERE id = $2")
            .bind(nul_free(error))
            .bind(outbox_id)
            .execute(&mut *db)
            .await?;
        Ok(())
    }};
}

/// [`super::OutboxTx::nth_latest_acknowledgement_release`].
macro_rules! outbox_tx_nth_latest_acknowledgement_release {
    ($db:expr, $after:expr, $n:expr) => {{
        let db = $db;
        let after = $after;
        let n = $n;

        let t: Option<String> = sqlx::query_scalar(
            "SELECT release_at FROM ack_releases
             WHERE seq = (SELECT MAX(seq) FROM ack_releases) - $1 + 1 AND release_at > $2",
        )
        .bind(n.max(1))
        .bind(ts(after))
        .fetch_optional(&mut *db)
        .await?;
        t.as_deref().map(parse_ts).transpose()
    }};
}

pub(crate) use {
    complaint_tx_complaint_complainant, complaint_tx_complaint_id_by_reference,
    complaint_tx_complaint_state, complaint_tx_complete_milestone, complaint_tx_link_complaint,
    complaint_tx_milestones, complaint_tx_reset_milestone, complaint_tx_set_field,
    complaint_tx_set_progress, complaint_tx_void_complaint, intake_tx_complaint_by_message_ids,
    intake_tx_complaint_by_reference, intake_tx_dedupe_key_exists, intake_tx_file_message,
    intake_tx_held_quarantine_by_sha, intake_tx_insert_attachment, intake_tx_insert_message,
    intake_tx_insert_quarantine, intake_tx_messages_with_message_id, intake_tx_quarantine_entry,
    intake_tx_set_quarantine_status, intake_tx_unfiled_message, outbox_queue_next_outbox_due,
    outbox_queue_outbox_backlog, outbox_queue_outbox_free_leases_of, outbox_queue_outbox_retry,
    outbox_tx_complaint_mail_recipients, outbox_tx_count_sent_to_since, outbox_tx_mark_bounced,
    outbox_tx_mark_outbox_failed, outbox_tx_nth_latest_acknowledgement_release,
    outbox_tx_sent_by_id, outbox_tx_sent_by_message_ids, register_reads_complaint,
    register_reads_complaint_count, register_reads_history, register_reads_list_outbox_page,
    register_reads_list_quarantine_page, register_reads_list_unfiled_page, register_reads_messages,
    retention_store_complaint_mails, retention_store_complaints_of_address,
    retention_store_referenced_blobs, scheduler_reads_complaints_due,
    scheduler_reads_earliest_next_due, scheduler_reads_forget_next_due, scheduler_reads_job_done,
    scheduler_reads_open_complaint_ids, scheduler_tx_actions_done, scheduler_tx_mark_action_done,
    scheduler_tx_mark_job_done, scheduler_tx_set_next_due, settings_store_get_setting,
    settings_store_put_setting, settings_store_setting_or_insert, source_keys_last_source_key,
    source_keys_unmarked_source_keys,
};
