//! `klachtd list`: the register.

use std::io::Write;
use std::process::ExitCode;

use klachtd::domain::display::escape;
use klachtd::service::Context;
use klachtd::store::{ComplaintRow, PAGE_ROWS, RegisterPosition};

use super::args::Format;
use super::truncate;

/// The register, read a page at a time (each page one short read, so a long listing never
/// keeps the daemon's WAL from being checkpointed) and written as it comes. The JSON is byte
/// for byte what `serde_json::to_string_pretty` makes of the whole array.
pub async fn list(
    ctx: &Context,
    status: Option<&str>,
    format: Format,
    limit: Option<u64>,
    offset: u64,
) -> anyhow::Result<ExitCode> {
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let mut remaining = limit.map_or(i64::MAX, |l| i64::try_from(l).unwrap_or(i64::MAX));
    let offset = i64::try_from(offset).unwrap_or(i64::MAX);
    let mut after: Option<RegisterPosition> = None;
    let mut count = 0usize;
    if format != Format::Json {
        writeln!(
            out,
            "{:<14} {:<20} {:<8} {:<8} {:<30} SUBJECT",
            "REFERENCE", "RECEIVED", "STATUS", "SEVERITY", "COMPLAINANT"
        )?;
    }
    while remaining > 0 {
        let want = remaining.min(PAGE_ROWS);
        let skip = if after.is_none() { offset } else { 0 };
        let rows = ctx
            .store
            .list_complaints_page(status, after.as_ref(), skip, want)
            .await?;
        for r in &rows {
            if format == Format::Json {
                write_json_item(&mut out, r, count == 0)?;
            } else {
                write_table_row(&mut out, r)?;
            }
            count += 1;
        }
        remaining -= rows.len() as i64;
        match rows.last() {
            Some(last) if rows.len() as i64 == want => after = Some(last.position.clone()),
            _ => break,
        }
    }
    if format == Format::Json {
        out.write_all(if count == 0 { b"[]\n" } else { b"\n]\n" })?;
    } else {
        writeln!(out, "{count} complaint(s)")?;
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

/// One element of the JSON array, indented as `to_string_pretty` indents it inside one.
fn write_json_item(out: &mut impl Write, row: &ComplaintRow, first: bool) -> anyhow::Result<()> {
    let item = serde_json::to_string_pretty(row)?;
    out.write_all(if first { b"[\n" } else { b",\n" })?;
    for (i, line) in item.lines().enumerate() {
        if i > 0 {
            out.write_all(b"\n")?;
        }
        write!(out, "  {line}")?;
    }
    Ok(())
}

/// One line of the table, escaped as a whole like every `say!` line.
fn write_table_row(out: &mut impl Write, r: &ComplaintRow) -> anyhow::Result<()> {
    let line = format!(
        "{:<14} {:<20} {:<8} {:<8} {:<30} {}",
        r.reference,
        r.received_at,
        r.status,
        r.severity,
        truncate(&r.complainant, 30),
        truncate(&r.subject, 60)
    );
    writeln!(out, "{}", escape(&line))?;
    Ok(())
}
