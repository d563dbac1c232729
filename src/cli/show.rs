//! `klachtd show REFERENCE`: one complaint with its messages and full history.

use std::process::ExitCode;

use klachtd::service::Context;
use klachtd::store::{ComplaintRow, HistoryRow, MessageRow};

use super::args::Format;
use super::{UsageError, say};

pub async fn show(ctx: &Context, reference: &str, format: Format) -> anyhow::Result<ExitCode> {
    let Some(c) = ctx.store.complaint(reference).await? else {
        return Err(UsageError(format!("no complaint {reference}")).into());
    };
    let messages = ctx.store.messages(c.id).await?;
    let history = ctx.store.history(c.id).await?;
    if format == Format::Json {
        let v = serde_json::json!({ "complaint": c, "messages": messages, "history": history });
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        print_complaint(&c);
        println!();
        print_messages(&messages);
        println!();
        print_history(&history);
    }
    Ok(ExitCode::SUCCESS)
}

fn print_complaint(c: &ComplaintRow) {
    say!(
        "{}  {}  [{}{}]",
        c.reference,
        c.subject,
        c.status,
        if c.severity == "serious" {
            ", SERIOUS"
        } else {
            ""
        }
    );
    say!("received:    {}", c.received_at);
    say!(
        "complainant: {}{}",
        c.complainant_name
            .as_deref()
            .map(|n| format!("{n} "))
            .unwrap_or_default(),
        c.complainant
    );
    say!("procedure:   {} ({})", c.procedure, c.procedure_version);
    if let Some(r) = &c.related_reference {
        say!("related:     {r}");
    }
    if let Some(r) = &c.void_reason {
        say!("voided:      {r}");
    }
}

fn print_messages(messages: &[MessageRow]) {
    say!("messages:");
    for m in messages {
        say!(
            "  {} {} {} -> {}  <{}>  {}{}",
            m.at,
            if m.direction == "in" { "IN " } else { "OUT" },
            m.from,
            m.to,
            m.message_id.clone().unwrap_or_default(),
            m.subject,
            m.status
                .as_ref()
                .map(|s| format!("  [{s}]"))
                .unwrap_or_default()
        );
        for a in &m.attachments {
            say!(
                "      attachment: {} ({}, {} bytes){}",
                a.name,
                a.content_type,
                a.size,
                a.refused_reason
                    .as_ref()
                    .map(|r| format!(" REFUSED: {r}"))
                    .unwrap_or_default()
            );
        }
    }
}

fn print_history(history: &[HistoryRow]) {
    say!("history:");
    for h in history {
        say!("  {} {:<22} {:<28} {}", h.at, h.event, h.actor, h.detail);
    }
}
