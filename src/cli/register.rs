//! `klachtd register`: the register as a table, CSV (for Excel and LibreOffice with a Dutch
//! locale: UTF-8 with a byte-order mark, `;` between fields), JSON or an Excel workbook.

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use klachtd::service::Context;
use klachtd::service::register_export::{COLUMNS, RegisterFilter, RegisterRow, for_each_row};

use super::UsageError;
use super::args::RegisterFormat;
use super::progress::CliProgress;
use klachtd::service::retention::Progress;

/// The fixed columns, then four per milestone.
fn header(lang: &str) -> Vec<String> {
    let en = lang == "en";
    let fixed: &[(&str, &str)] = &[
        ("reference", "nummer"),
        ("received", "ontvangen"),
        ("kind", "soort"),
        ("channel", "kanaal"),
        ("category", "categorie"),
        ("severity", "ernst"),
        ("nature", "aard"),
        ("status", "status"),
        ("handler", "behandelaar"),
        ("cause", "oorzaak"),
        ("solution", "oplossing"),
        ("agreement", "overeenstemming"),
        ("handled", "afgehandeld op"),
        ("escalations", "escalaties"),
        ("verdict", "oordeel klager"),
        ("satisfaction", "tevredenheid"),
        ("measures", "maatregelen"),
        ("received by", "ingevoerd door"),
    ];
    let mut out: Vec<String> = fixed
        .iter()
        .map(|(e, n)| if en { e } else { n }.to_string())
        .collect();
    for m in COLUMNS {
        let label = m.label(lang);
        let (due, done, met, days) = if en {
            ("due", "done", "on time", "working days")
        } else {
            ("uiterlijk", "gedaan", "op tijd", "werkdagen")
        };
        for what in [due, done, met, days] {
            out.push(format!("{label}: {what}"));
        }
    }
    out
}

/// One cell: what it is decides how a workbook stores it (a number sorts as a number, a date
/// as a date); CSV and JSON write its text.
enum Cell {
    Text(String),
    Number(i64),
    Date(chrono::NaiveDate),
    Empty,
}

impl Cell {
    fn text(v: &Option<String>) -> Cell {
        v.clone().map_or(Cell::Empty, Cell::Text)
    }
    fn date(d: Option<chrono::NaiveDate>) -> Cell {
        d.map_or(Cell::Empty, Cell::Date)
    }
    fn as_text(&self) -> String {
        match self {
            Cell::Text(t) => t.clone(),
            Cell::Number(n) => n.to_string(),
            Cell::Date(d) => d.to_string(),
            Cell::Empty => String::new(),
        }
    }
}

/// A row's cells, in the order of [`header`].
fn cells(r: &RegisterRow, lang: &str) -> Vec<Cell> {
    let en = lang == "en";
    let yes_no = |b: bool| {
        Cell::Text(
            match (b, en) {
                (true, true) => "yes",
                (false, true) => "no",
                (true, false) => "ja",
                (false, false) => "nee",
            }
            .to_string(),
        )
    };
    let mut out = vec![
        Cell::Text(r.reference.clone()),
        Cell::Date(r.received_date),
        Cell::Text(r.kind.clone()),
        Cell::text(&r.channel),
        Cell::text(&r.category),
        Cell::Text(r.severity.clone()),
        Cell::text(&r.nature),
        Cell::Text(r.status.clone()),
        Cell::text(&r.handler),
        Cell::text(&r.cause),
        Cell::text(&r.solution),
        r.agreement
            .as_deref()
            .map_or(Cell::Empty, |a| yes_no(a == "yes")),
        Cell::date(r.handled),
        Cell::Number(r.escalations),
        Cell::text(&r.verdict),
        r.satisfaction
            .map_or(Cell::Empty, |s| Cell::Number(i64::from(s))),
        Cell::text(&r.measure),
        Cell::text(&r.received_by),
    ];
    for m in COLUMNS {
        match r.milestones.iter().find(|c| c.milestone == m) {
            Some(c) => {
                out.push(Cell::date(c.due));
                out.push(Cell::date(c.done));
                out.push(c.met.map_or(Cell::Empty, yes_no));
                out.push(c.working_days.map_or(Cell::Empty, Cell::Number));
            }
            None => out.extend(std::iter::repeat_with(|| Cell::Empty).take(4)),
        }
    }
    out
}

/// `klachtd register [--from DATE] [--to DATE] [--status S] [--format ...] [--output FILE]`.
pub async fn register(
    ctx: &Context,
    filter: RegisterFilter,
    format: RegisterFormat,
    output: Option<&Path>,
) -> anyhow::Result<ExitCode> {
    // Only to a file: on standard output the rows are the output, and a bar on stderr would
    // mix with them on a terminal.
    let progress = output.map(|_| CliProgress::new());
    if let Some(p) = &progress {
        p.begin("register", ctx.store.complaint_count().await?);
    }
    let result = write_register(ctx, filter, format, output, progress.as_ref()).await;
    if let Some(p) = &progress {
        p.finish();
    }
    result
}

async fn write_register(
    ctx: &Context,
    filter: RegisterFilter,
    format: RegisterFormat,
    output: Option<&Path>,
    progress: Option<&CliProgress>,
) -> anyhow::Result<ExitCode> {
    let tick = || {
        if let Some(p) = progress {
            p.advance();
        }
    };
    let lang = ctx.settings.organisation.language.clone();
    let mut sink: Box<dyn Write> = match output {
        Some(path) if format != RegisterFormat::Xlsx => Box::new(std::io::BufWriter::new(
            std::fs::File::create(path)
                .map_err(|e| UsageError(format!("cannot write {}: {e}", path.display())))?,
        )),
        _ => Box::new(std::io::BufWriter::new(std::io::stdout().lock())),
    };
    match format {
        RegisterFormat::Table => {
            writeln!(
                sink,
                "{:<14} {:<10} {:<11} {:<24} {:<30} {:<10} HANDLED",
                "REFERENCE", "RECEIVED", "STATUS", "CATEGORY", "HANDLER", "AGREEMENT"
            )?;
            let n = for_each_row(ctx, &filter, |r| {
                tick();
                writeln!(
                    sink,
                    "{:<14} {:<10} {:<11} {:<24} {:<30} {:<10} {}",
                    r.reference,
                    r.received_date,
                    r.status,
                    klachtd::domain::display::escape(&super::truncate(
                        r.category.as_deref().unwrap_or(""),
                        24
                    )),
                    r.handler.as_deref().unwrap_or(""),
                    r.agreement.as_deref().unwrap_or(""),
                    r.handled.map(|d| d.to_string()).unwrap_or_default()
                )
                .map_err(io_error)
            })
            .await?;
            writeln!(sink, "{n} complaint(s)")?;
        }
        RegisterFormat::Csv => {
            let separator = ctx.settings.register.csv_separator;
            // The byte-order mark makes Excel read UTF-8 (Dutch é, ë, ï) instead of its
            // locale's code page.
            sink.write_all("\u{feff}".as_bytes())?;
            let mut csv = csv::WriterBuilder::new()
                .delimiter(separator as u8)
                .from_writer(sink);
            csv.write_record(header(&lang))?;
            for_each_row(ctx, &filter, |r| {
                tick();
                csv.write_record(cells(&r, &lang).iter().map(Cell::as_text))
                    .map_err(|e| io_error(e.into()))
            })
            .await?;
            csv.flush()?;
            return Ok(ExitCode::SUCCESS);
        }
        RegisterFormat::Json => {
            // One array, written as the rows come.
            sink.write_all(b"[")?;
            let mut first = true;
            let n = for_each_row(ctx, &filter, |r| {
                tick();
                if !first {
                    sink.write_all(b",").map_err(io_error)?;
                }
                first = false;
                sink.write_all(b"\n  ").map_err(io_error)?;
                serde_json::to_writer(&mut sink, &r).map_err(|e| io_error(e.into()))
            })
            .await?;
            sink.write_all(if n == 0 { b"]\n" } else { b"\n]\n" })?;
        }
        RegisterFormat::Xlsx => {
            let Some(path) = output else {
                return Err(UsageError("--format xlsx needs --output FILE.xlsx".into()).into());
            };
            let n = write_xlsx(ctx, &filter, &lang, path, &tick).await?;
            eprintln!("{n} complaint(s) written to {}", path.display());
            return Ok(ExitCode::SUCCESS);
        }
    }
    sink.flush()?;
    Ok(ExitCode::SUCCESS)
}

fn io_error(e: std::io::Error) -> klachtd::service::ServiceError {
    klachtd::service::ServiceError::Disk {
        path: "output".into(),
        reason: e.to_string(),
    }
}

/// The register as a workbook: a bold, frozen header with filters; numbers as numbers and
/// dates as dates, so a coordinator can sort and count.
async fn write_xlsx(
    ctx: &Context,
    filter: &RegisterFilter,
    lang: &str,
    path: &Path,
    tick: &dyn Fn(),
) -> anyhow::Result<usize> {
    use rust_xlsxwriter::{Format, Workbook};
    let mut book = Workbook::new();
    let sheet = book.add_worksheet();
    sheet.set_name(if lang == "en" {
        "Register"
    } else {
        "Klachtenregister"
    })?;
    let bold = Format::new().set_bold();
    let date_format = Format::new().set_num_format("yyyy-mm-dd");
    let head = header(lang);
    for (col, h) in head.iter().enumerate() {
        sheet.write_string_with_format(0, col as u16, h, &bold)?;
    }
    let mut row_index: u32 = 0;
    let mut failure: Option<String> = None;
    let n = for_each_row(ctx, filter, |r| {
        tick();
        row_index += 1;
        for (col, cell) in cells(&r, lang).iter().enumerate() {
            let col = col as u16;
            let written = match cell {
                Cell::Empty => Ok(()),
                Cell::Text(t) => sheet.write_string(row_index, col, t).map(|_| ()),
                Cell::Number(n) => sheet.write_number(row_index, col, *n as f64).map(|_| ()),
                Cell::Date(d) => excel_date(*d).and_then(|x| {
                    sheet
                        .write_datetime_with_format(row_index, col, &x, &date_format)
                        .map(|_| ())
                }),
            };
            if let Err(e) = written {
                failure.get_or_insert(e.to_string());
            }
        }
        Ok(())
    })
    .await?;
    if let Some(e) = failure {
        anyhow::bail!("cannot write the workbook: {e}");
    }
    sheet.set_freeze_panes(1, 0)?;
    sheet.autofilter(0, 0, row_index, (head.len() - 1) as u16)?;
    book.save(path)
        .map_err(|e| UsageError(format!("cannot write {}: {e}", path.display())))?;
    Ok(n)
}

fn excel_date(
    d: chrono::NaiveDate,
) -> Result<rust_xlsxwriter::ExcelDateTime, rust_xlsxwriter::XlsxError> {
    use chrono::Datelike;
    // Excel's dates start in 1900; a register's do too.
    let year = u16::try_from(d.year()).map_err(|_| {
        rust_xlsxwriter::XlsxError::ParameterError(format!("year of {d} out of range"))
    })?;
    rust_xlsxwriter::ExcelDateTime::from_ymd(year, d.month() as u8, d.day() as u8)
}
