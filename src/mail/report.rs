//! The reports as people read them: the template data (labels in the report's language,
//! numbers written as that language writes them, text tables for the plain-text part), the
//! charts and the CSV of the figures. The figures themselves come from
//! [`crate::domain::report`]; nothing here counts.

use base64::Engine as _;
use chrono::{Datelike, NaiveDate};
use serde_json::{Value, json};

use super::charts::{self, Bar, ChartError};
use crate::domain::calendar::month_name;
use crate::domain::command::{Channel, Kind, Nature, Severity};
use crate::domain::report::{
    Analysis, Breakdown, Cell, Counts, Period, PublicBreakdown, PublicReport,
};

/// How many causes the report lists.
pub const TOP_CAUSES: usize = 10;
/// How many missed deadlines the report lists by reference (the register has them all).
pub const MISSED_LISTED: usize = 40;
/// How many measures the report lists (the register's `measures` column has them all).
pub const MEASURES_LISTED: usize = 100;

/// What the view needs besides the figures.
#[derive(Debug, Clone)]
pub struct ViewSettings<'a> {
    pub organisation: &'a str,
    pub lang: &'a str,
    /// The day the report was made (organisation time).
    pub generated: NaiveDate,
    pub procedure_title: &'a str,
    /// A public body (Awb chapter 9): the public report cites article 9:12a.
    pub public_body: bool,
}

/// One chart: a name (its Content-ID and file stem), the PNG and a text alternative.
#[derive(Debug, Clone)]
pub struct ChartImage {
    pub name: &'static str,
    pub title: String,
    pub png: Vec<u8>,
}

/// How the HTML refers to the charts: by Content-ID in a mail (RFC 2392), embedded as data:
/// URIs in `report.html`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageLinks {
    ContentId,
    DataUri,
}

fn en(lang: &str) -> bool {
    lang.eq_ignore_ascii_case("en")
}

fn month_short(m: u32, lang: &str) -> &'static str {
    const NL: [&str; 12] = [
        "jan", "feb", "mrt", "apr", "mei", "jun", "jul", "aug", "sep", "okt", "nov", "dec",
    ];
    const EN: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let i = (m.clamp(1, 12) - 1) as usize;
    if en(lang) { EN[i] } else { NL[i] }
}

/// `3 december 2026` / `3 December 2026`.
pub fn date_text(d: NaiveDate, lang: &str) -> String {
    format!("{} {} {}", d.day(), month_name(d.month(), lang), d.year())
}

/// The period in words: `2026`, `3e kwartaal 2026`, `november 2026`, `1 januari 2026 t/m ...`.
pub fn period_text(p: &Period, lang: &str) -> String {
    match *p {
        Period::Year(y) => format!("{y}"),
        Period::Quarter(y, q) if en(lang) => format!("Q{q} {y}"),
        Period::Quarter(y, q) => format!("{q}e kwartaal {y}"),
        Period::Month(y, m) => format!("{} {y}", month_name(m, lang)),
        Period::Range(from, to) => format!(
            "{} {} {}",
            date_text(from, lang),
            if en(lang) { "to" } else { "t/m" },
            date_text(to, lang)
        ),
    }
}

/// A decimal as the language writes it: `2,5` in Dutch, `2.5` in English; whole numbers bare.
pub fn decimal(v: f64, lang: &str) -> String {
    let s = if (v - v.round()).abs() < 0.05 {
        format!("{:.0}", v.round())
    } else {
        format!("{v:.1}")
    };
    if en(lang) { s } else { s.replace('.', ",") }
}

fn percent(share: f64) -> String {
    format!("{:.0}%", (share * 100.0).round())
}

fn change(c: &Counts) -> String {
    match c.change() {
        n if n > 0 => format!("+{n}"),
        n => n.to_string(),
    }
}

/// The label of a value of one of the report's dimensions, in the report's language.
fn value_label(dimension: Dimension, value: Option<&str>, lang: &str) -> String {
    let not_set = if en(lang) {
        "(not set)"
    } else {
        "(niet ingevuld)"
    };
    let Some(v) = value else {
        return match dimension {
            Dimension::Channel => "e-mail".into(),
            _ => not_set.into(),
        };
    };
    let known = match dimension {
        Dimension::Kind => Kind::parse(v).map(|k| k.label(lang)),
        Dimension::Severity => Severity::parse(v).map(|k| k.label(lang)),
        Dimension::Channel if v.eq_ignore_ascii_case("email") => Some("e-mail"),
        Dimension::Channel => Channel::parse(v).map(|k| k.label(lang)),
        Dimension::Nature => Nature::parse(v).map(|k| k.label(lang)),
        Dimension::Category => None,
    };
    known.map_or_else(|| v.to_string(), str::to_string)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Dimension {
    Kind,
    Category,
    Severity,
    Channel,
    Nature,
}

impl Dimension {
    const ALL: [Dimension; 5] = [
        Dimension::Kind,
        Dimension::Category,
        Dimension::Severity,
        Dimension::Channel,
        Dimension::Nature,
    ];

    fn title(self, lang: &str) -> &'static str {
        match (self, en(lang)) {
            (Dimension::Kind, false) => "Soort",
            (Dimension::Kind, true) => "Kind",
            (Dimension::Category, false) => "Categorie",
            (Dimension::Category, true) => "Category",
            (Dimension::Severity, false) => "Ernst",
            (Dimension::Severity, true) => "Severity",
            (Dimension::Channel, false) => "Kanaal",
            (Dimension::Channel, true) => "Channel",
            (Dimension::Nature, false) => "Incident of structureel",
            (Dimension::Nature, true) => "Incident or structural",
        }
    }

    fn id(self) -> &'static str {
        match self {
            Dimension::Kind => "kind",
            Dimension::Category => "category",
            Dimension::Severity => "severity",
            Dimension::Channel => "channel",
            Dimension::Nature => "nature",
        }
    }

    fn of(self, a: &Analysis) -> &Breakdown {
        match self {
            Dimension::Kind => &a.by_kind,
            Dimension::Category => &a.by_category,
            Dimension::Severity => &a.by_severity,
            Dimension::Channel => &a.by_channel,
            Dimension::Nature => &a.by_nature,
        }
    }

    fn of_public(self, p: &PublicReport) -> &PublicBreakdown {
        match self {
            Dimension::Kind => &p.by_kind,
            Dimension::Category => &p.by_category,
            Dimension::Severity => &p.by_severity,
            Dimension::Channel => &p.by_channel,
            Dimension::Nature => &p.by_nature,
        }
    }
}

/// A plain-text table: the first column left-aligned, the others right-aligned, a rule under
/// the header. Widths count characters, so Dutch `ë` lines up.
pub fn text_table(header: &[String], rows: &[Vec<String>]) -> String {
    let cols = header.len();
    let mut width = vec![0usize; cols];
    for r in std::iter::once(header).chain(rows.iter().map(Vec::as_slice)) {
        for (i, c) in r.iter().enumerate().take(cols) {
            width[i] = width[i].max(c.chars().count());
        }
    }
    let line = |r: &[String]| {
        let mut out = String::new();
        for (i, w) in width.iter().enumerate() {
            let c = r.get(i).map(String::as_str).unwrap_or("");
            let pad = w.saturating_sub(c.chars().count());
            if i == 0 {
                out.push_str(c);
                out.push_str(&" ".repeat(pad));
            } else {
                out.push_str("  ");
                out.push_str(&" ".repeat(pad));
                out.push_str(c);
            }
        }
        out.trim_end().to_string()
    };
    let mut out = line(header);
    out.push('\n');
    out.push_str(&"-".repeat(width.iter().sum::<usize>() + 2 * cols.saturating_sub(1)));
    for r in rows {
        out.push('\n');
        out.push_str(&line(r));
    }
    out
}

fn headings(lang: &str, first: &str) -> Vec<String> {
    if en(lang) {
        vec![
            first.into(),
            "period".into(),
            "previous".into(),
            "change".into(),
        ]
    } else {
        vec![
            first.into(),
            "periode".into(),
            "vorige".into(),
            "verschil".into(),
        ]
    }
}

fn breakdown_view(d: Dimension, b: &Breakdown, lang: &str) -> Value {
    let rows: Vec<Value> = b
        .rows
        .iter()
        .map(|r| {
            json!({
                "label": value_label(d, r.label.as_deref(), lang),
                "current": r.counts.current,
                "previous": r.counts.previous,
                "change": change(&r.counts),
            })
        })
        .collect();
    let total_label = if en(lang) { "Total" } else { "Totaal" };
    let mut text_rows: Vec<Vec<String>> = b
        .rows
        .iter()
        .map(|r| {
            vec![
                value_label(d, r.label.as_deref(), lang),
                r.counts.current.to_string(),
                r.counts.previous.to_string(),
                change(&r.counts),
            ]
        })
        .collect();
    text_rows.push(vec![
        total_label.into(),
        b.total.current.to_string(),
        b.total.previous.to_string(),
        change(&b.total),
    ]);
    json!({
        "id": d.id(),
        "title": d.title(lang),
        "rows": rows,
        "total": { "current": b.total.current, "previous": b.total.previous, "change": change(&b.total) },
        "text": text_table(&headings(lang, d.title(lang)), &text_rows),
    })
}

/// The charts of the analysis report: complaints per month, by category, deadlines met.
pub fn analysis_charts(a: &Analysis, lang: &str) -> Result<Vec<ChartImage>, ChartError> {
    let e = en(lang);
    let months: Vec<Bar> = a
        .months
        .iter()
        .map(|m| Bar {
            label: if a.months.len() > 12 {
                format!("{} {}", month_short(m.month, lang), m.year % 100)
            } else {
                month_short(m.month, lang).to_string()
            },
            value: f64::from(m.total),
        })
        .collect();
    let mut categories: Vec<Bar> = a
        .by_category
        .rows
        .iter()
        .map(|r| Bar {
            label: value_label(Dimension::Category, r.label.as_deref(), lang),
            value: f64::from(r.counts.current),
        })
        .filter(|b| b.value > 0.0)
        .collect();
    categories.sort_by(|x, y| y.value.total_cmp(&x.value));
    if categories.len() > charts::MAX_CATEGORY_BARS {
        let rest: f64 = categories[charts::MAX_CATEGORY_BARS - 1..]
            .iter()
            .map(|b| b.value)
            .sum();
        categories.truncate(charts::MAX_CATEGORY_BARS - 1);
        categories.push(Bar {
            label: if e { "other" } else { "overig" }.into(),
            value: rest,
        });
    }
    let deadlines: Vec<Bar> = a
        .milestones
        .iter()
        .map(|s| Bar {
            label: s.milestone.label(lang).to_string(),
            value: s.share_met.unwrap_or(0.0) * 100.0,
        })
        .collect();
    let title = |nl: &str, en_: &str| if e { en_ } else { nl }.to_string();
    let months_title = title("Klachten per maand", "Complaints per month");
    let categories_title = title("Naar categorie", "By category");
    let deadlines_title = title("Binnen de termijn afgehandeld (%)", "Deadlines met (%)");
    Ok(vec![
        ChartImage {
            name: "months",
            png: charts::vertical_bars("months", &months_title, &months, false)?,
            title: months_title,
        },
        ChartImage {
            name: "categories",
            png: charts::horizontal_bars("categories", &categories_title, &categories)?,
            title: categories_title,
        },
        ChartImage {
            name: "deadlines",
            png: charts::vertical_bars("deadlines", &deadlines_title, &deadlines, true)?,
            title: deadlines_title,
        },
    ])
}

/// The Content-ID of a chart in the report mail.
pub fn content_id(chart: &ChartImage) -> String {
    format!("chart-{}@klachtd", chart.name)
}

fn chart_links(charts: &[ChartImage], links: ImageLinks) -> Value {
    let mut out = serde_json::Map::new();
    for c in charts {
        let src = match links {
            ImageLinks::ContentId => format!("cid:{}", content_id(c)),
            ImageLinks::DataUri => format!(
                "data:image/png;base64,{}",
                base64::engine::general_purpose::STANDARD.encode(&c.png)
            ),
        };
        out.insert(c.name.into(), json!({ "src": src, "alt": c.title }));
    }
    Value::Object(out)
}

fn opt_decimal(v: Option<f64>, lang: &str) -> String {
    v.map_or_else(|| "–".to_string(), |v| decimal(v, lang))
}

/// The template data of the analysis report (`report` in the templates).
pub fn analysis_view(
    a: &Analysis,
    s: &ViewSettings<'_>,
    charts: &[ChartImage],
    links: ImageLinks,
) -> Value {
    let lang = s.lang;
    let e = en(lang);
    let breakdowns: Vec<Value> = Dimension::ALL
        .iter()
        .map(|d| breakdown_view(*d, d.of(a), lang))
        .collect();
    let milestones: Vec<Value> = a
        .milestones
        .iter()
        .map(|m| {
            json!({
                "label": m.milestone.label(lang),
                "completed": m.completed,
                "median": opt_decimal(m.median_days, lang),
                "p90": m.p90_days.map_or_else(|| "–".to_string(), |d| d.to_string()),
                "met": m.met,
                "missed": m.missed,
                "pending": m.pending,
                "share": m.share_met.map_or_else(|| "–".to_string(), percent),
            })
        })
        .collect();
    let milestone_text = text_table(
        &if e {
            [
                "deadline", "reached", "median", "p90", "met", "missed", "open", "on time",
            ]
        } else {
            [
                "termijn",
                "bereikt",
                "mediaan",
                "p90",
                "op tijd",
                "te laat",
                "open",
                "% op tijd",
            ]
        }
        .map(String::from),
        &milestones
            .iter()
            .map(|m| {
                [
                    "label",
                    "completed",
                    "median",
                    "p90",
                    "met",
                    "missed",
                    "pending",
                    "share",
                ]
                .iter()
                .map(|k| match &m[k] {
                    Value::String(t) => t.clone(),
                    v => v.to_string(),
                })
                .collect()
            })
            .collect::<Vec<_>>(),
    );
    let mut missed: Vec<Value> = Vec::new();
    let missed_total: usize = a.milestones.iter().map(|m| m.missed_list.len()).sum();
    for m in &a.milestones {
        for x in m
            .missed_list
            .iter()
            .take(MISSED_LISTED.saturating_sub(missed.len()))
        {
            missed.push(json!({
                "reference": x.reference,
                "milestone": m.milestone.label(lang),
                "due": date_text(x.due, lang),
                "done": x.done.map_or_else(|| if e { "still open".to_string() } else { "nog open".to_string() }, |d| date_text(d, lang)),
                "late": x.working_days_late,
            }));
        }
    }
    let sat = &a.satisfaction;
    let distribution: Vec<Value> = sat
        .distribution
        .iter()
        .enumerate()
        .map(|(i, n)| json!({ "score": i + 1, "count": n }))
        .collect();
    let causes: Vec<Value> = a
        .causes
        .iter()
        .take(TOP_CAUSES)
        .map(|c| json!({ "cause": c.cause, "current": c.counts.current, "previous": c.counts.previous }))
        .collect();
    let causes_text = text_table(
        &if e {
            ["cause", "period", "previous"]
        } else {
            ["oorzaak", "periode", "vorige"]
        }
        .map(String::from),
        &a.causes
            .iter()
            .take(TOP_CAUSES)
            .map(|c| {
                vec![
                    c.cause.clone(),
                    c.counts.current.to_string(),
                    c.counts.previous.to_string(),
                ]
            })
            .collect::<Vec<_>>(),
    );
    let recurring: Vec<Value> = a
        .recurring_causes
        .iter()
        .map(|r| {
            json!({
                "cause": r.cause,
                "measure": r.first_measure.measure,
                "measure_reference": r.first_measure.reference,
                "measure_date": r.first_measure.recorded.map(|t| date_text(t.date_naive(), lang)).unwrap_or_default(),
                "came_back": r.came_back.join(", "),
                "count": r.came_back.len(),
            })
        })
        .collect();
    let measures: Vec<Value> = a
        .measures
        .iter()
        .take(MEASURES_LISTED)
        .map(|m| {
            json!({
                "reference": m.reference,
                "measure": m.measure,
                "cause": m.cause.clone().unwrap_or_default(),
                "recorded": m.recorded.map(|t| date_text(t.date_naive(), lang)).unwrap_or_default(),
            })
        })
        .collect();
    let months: Vec<Value> = a
        .months
        .iter()
        .map(|m| json!({ "label": format!("{} {}", month_short(m.month, lang), m.year), "total": m.total }))
        .collect();
    let months_text = text_table(
        &[
            if e { "month" } else { "maand" }.to_string(),
            if e { "complaints" } else { "aantal" }.to_string(),
        ],
        &a.months
            .iter()
            .map(|m| {
                vec![
                    format!("{} {}", month_short(m.month, lang), m.year),
                    m.total.to_string(),
                ]
            })
            .collect::<Vec<_>>(),
    );
    json!({
        "organisation": s.organisation,
        "procedure": s.procedure_title,
        "period": period_text(&a.period, lang),
        "period_id": a.period.to_string(),
        "previous_period": period_text(&a.previous_period, lang),
        "generated": date_text(s.generated, lang),
        "total": { "current": a.total.current, "previous": a.total.previous, "change": change(&a.total) },
        "voided": a.voided,
        "breakdowns": breakdowns,
        "milestones": milestones,
        "milestones_text": milestone_text,
        "missed_more": missed_total.saturating_sub(missed.len()),
        "missed": missed,
        "escalations": a.escalations,
        "escalated": a.escalated,
        "not_agreed": a.not_agreed,
        "appeals_pointed": a.appeals_pointed,
        "satisfaction": {
            "responses": sat.responses,
            "mean": opt_decimal(sat.mean, lang),
            "distribution": distribution,
        },
        "causes": causes,
        "causes_text": causes_text,
        "recurring": recurring,
        "measures_more": a.measures.len().saturating_sub(MEASURES_LISTED),
        "measures": measures,
        "months": months,
        "months_text": months_text,
        "charts": chart_links(charts, links),
    })
}

/// The figures of the analysis as CSV (`section;label;period;previous`), decimals as the
/// language writes them (Excel with a Dutch locale reads `2,5`).
pub fn analysis_csv(a: &Analysis, lang: &str, separator: char) -> Result<Vec<u8>, csv::Error> {
    let e = en(lang);
    let mut w = csv::WriterBuilder::new()
        .delimiter(separator as u8)
        .from_writer(Vec::new());
    w.write_record(if e {
        ["section", "item", "period", "previous period"]
    } else {
        ["onderdeel", "item", "periode", "vorige periode"]
    })?;
    let period = a.period.to_string();
    let previous = a.previous_period.to_string();
    w.write_record([
        if e { "period" } else { "periode" },
        "",
        period.as_str(),
        previous.as_str(),
    ])?;
    let total = if e { "total" } else { "totaal" };
    w.write_record([
        total,
        "",
        &a.total.current.to_string(),
        &a.total.previous.to_string(),
    ])?;
    for d in Dimension::ALL {
        let b = d.of(a);
        for r in &b.rows {
            w.write_record([
                d.title(lang),
                &value_label(d, r.label.as_deref(), lang),
                &r.counts.current.to_string(),
                &r.counts.previous.to_string(),
            ])?;
        }
    }
    for m in &a.milestones {
        let section = format!(
            "{}: {}",
            if e { "deadline" } else { "termijn" },
            m.milestone.label(lang)
        );
        let rows: [(&str, String); 7] = [
            (
                if e { "reached" } else { "bereikt" },
                m.completed.to_string(),
            ),
            (
                if e {
                    "median working days"
                } else {
                    "mediaan werkdagen"
                },
                m.median_days.map(|v| decimal(v, lang)).unwrap_or_default(),
            ),
            (
                if e {
                    "p90 working days"
                } else {
                    "p90 werkdagen"
                },
                m.p90_days.map(|v| v.to_string()).unwrap_or_default(),
            ),
            (if e { "met" } else { "op tijd" }, m.met.to_string()),
            (if e { "missed" } else { "te laat" }, m.missed.to_string()),
            ("open", m.pending.to_string()),
            (
                if e {
                    "share met (%)"
                } else {
                    "aandeel op tijd (%)"
                },
                m.share_met
                    .map(|v| decimal(v * 100.0, lang))
                    .unwrap_or_default(),
            ),
        ];
        for (item, value) in rows {
            w.write_record([section.as_str(), item, &value, ""])?;
        }
    }
    let counts: [(&str, u32); 4] = [
        (if e { "escalations" } else { "escalaties" }, a.escalations),
        (
            if e {
                "complaints escalated"
            } else {
                "geëscaleerde klachten"
            },
            a.escalated,
        ),
        (if e { "not agreed" } else { "niet akkoord" }, a.not_agreed),
        (
            if e {
                "pointed to appeal"
            } else {
                "gewezen op beroep"
            },
            a.appeals_pointed,
        ),
    ];
    for (item, n) in counts {
        w.write_record([
            if e { "handling" } else { "afhandeling" },
            item,
            &n.to_string(),
            "",
        ])?;
    }
    let sat = if e { "satisfaction" } else { "tevredenheid" };
    w.write_record([
        sat,
        if e { "responses" } else { "antwoorden" },
        &a.satisfaction.responses.to_string(),
        "",
    ])?;
    w.write_record([
        sat,
        if e { "mean" } else { "gemiddelde" },
        &a.satisfaction
            .mean
            .map(|v| decimal(v, lang))
            .unwrap_or_default(),
        "",
    ])?;
    for (i, n) in a.satisfaction.distribution.iter().enumerate() {
        w.write_record([sat, &format!("{}", i + 1), &n.to_string(), ""])?;
    }
    for m in &a.months {
        w.write_record([
            if e { "month" } else { "maand" },
            &format!("{:04}-{:02}", m.year, m.month),
            &m.total.to_string(),
            "",
        ])?;
    }
    for c in &a.causes {
        w.write_record([
            if e { "cause" } else { "oorzaak" },
            &c.cause,
            &c.counts.current.to_string(),
            &c.counts.previous.to_string(),
        ])?;
    }
    w.into_inner().map_err(|e| e.into_error().into())
}

fn cell_text(c: Cell) -> String {
    c.to_string()
}

fn public_breakdown_view(d: Dimension, b: &PublicBreakdown, lang: &str) -> Value {
    let total_label = if en(lang) { "Total" } else { "Totaal" };
    let rows: Vec<Value> = b
        .rows
        .iter()
        .map(|r| {
            json!({
                "label": value_label(d, r.label.as_deref(), lang),
                "current": cell_text(r.counts.current),
                "previous": cell_text(r.counts.previous),
            })
        })
        .collect();
    let mut text_rows: Vec<Vec<String>> = b
        .rows
        .iter()
        .map(|r| {
            vec![
                value_label(d, r.label.as_deref(), lang),
                cell_text(r.counts.current),
                cell_text(r.counts.previous),
            ]
        })
        .collect();
    text_rows.push(vec![
        total_label.into(),
        cell_text(b.total.current),
        cell_text(b.total.previous),
    ]);
    let mut head = headings(lang, d.title(lang));
    head.truncate(3);
    json!({
        "id": d.id(),
        "title": d.title(lang),
        "rows": rows,
        "total": { "current": cell_text(b.total.current), "previous": cell_text(b.total.previous) },
        "text": text_table(&head, &text_rows),
        "markdown": markdown_table(&head, &text_rows),
    })
}

/// A Markdown (GFM) table; `|` in a label is escaped.
pub fn markdown_table(header: &[String], rows: &[Vec<String>]) -> String {
    let esc = |c: &str| c.replace('|', "\\|");
    let mut out = format!(
        "| {} |\n|{}",
        header
            .iter()
            .map(|h| esc(h))
            .collect::<Vec<_>>()
            .join(" | "),
        header
            .iter()
            .enumerate()
            .map(|(i, _)| if i == 0 { " --- |" } else { " ---: |" })
            .collect::<String>()
    );
    for r in rows {
        out.push_str(&format!(
            "\n| {} |",
            r.iter().map(|c| esc(c)).collect::<Vec<_>>().join(" | ")
        ));
    }
    out
}

/// The template data of the public annual report (`public` in the templates): counts only.
pub fn public_view(p: &PublicReport, s: &ViewSettings<'_>) -> Value {
    let lang = s.lang;
    let e = en(lang);
    let breakdowns: Vec<Value> = Dimension::ALL
        .iter()
        .map(|d| public_breakdown_view(*d, d.of_public(p), lang))
        .collect();
    let head: Vec<String> = if e {
        [
            "deadline",
            "reached",
            "median working days",
            "met",
            "missed",
            "on time",
        ]
    } else {
        [
            "termijn",
            "bereikt",
            "mediaan werkdagen",
            "op tijd",
            "te laat",
            "% op tijd",
        ]
    }
    .map(String::from)
    .to_vec();
    let milestone_rows: Vec<Vec<String>> = p
        .milestones
        .iter()
        .map(|m| {
            vec![
                m.milestone.label(lang).to_string(),
                cell_text(m.completed),
                opt_decimal(m.median_days, lang),
                cell_text(m.met),
                cell_text(m.missed),
                m.share_met.map_or_else(|| "–".to_string(), percent),
            ]
        })
        .collect();
    let milestones: Vec<Value> = milestone_rows
        .iter()
        .map(|r| {
            json!({ "label": r[0], "completed": r[1], "median": r[2], "met": r[3], "missed": r[4], "share": r[5] })
        })
        .collect();
    let handling_rows: Vec<Vec<String>> = vec![
        vec![
            if e {
                "Escalations to the director"
            } else {
                "Escalaties naar de directie"
            }
            .into(),
            cell_text(p.escalations),
        ],
        vec![
            if e {
                "Complainant did not agree"
            } else {
                "Klager niet akkoord met de oplossing"
            }
            .into(),
            cell_text(p.not_agreed),
        ],
        vec![
            if e {
                "Pointed to the appeal body"
            } else {
                "Gewezen op de beroepsmogelijkheid"
            }
            .into(),
            cell_text(p.appeals_pointed),
        ],
    ];
    let handling_head: Vec<String> = vec![
        if e { "handling" } else { "afhandeling" }.into(),
        if e { "number" } else { "aantal" }.into(),
    ];
    let sat_rows: Vec<Vec<String>> = p
        .satisfaction
        .distribution
        .iter()
        .enumerate()
        .map(|(i, c)| vec![format!("{}", i + 1), cell_text(*c)])
        .collect();
    let sat_head: Vec<String> = vec![
        "score".into(),
        if e { "answers" } else { "antwoorden" }.into(),
    ];
    let month_head: Vec<String> = vec![
        if e { "month" } else { "maand" }.into(),
        if e { "number" } else { "aantal" }.into(),
    ];
    let month_rows: Vec<Vec<String>> = p
        .kind_by_month
        .months
        .iter()
        .map(|m| {
            vec![
                format!("{} {}", month_name(m.month, lang), m.year),
                cell_text(m.total),
            ]
        })
        .collect();
    json!({
        "organisation": s.organisation,
        "procedure": s.procedure_title,
        "period": period_text(&p.period, lang),
        "period_id": p.period.to_string(),
        "previous_period": period_text(&p.previous_period, lang),
        "generated": date_text(s.generated, lang),
        "public_body": s.public_body,
        "threshold": p.threshold,
        "legend": p.suppression_note(lang),
        "total": { "current": cell_text(p.total.current), "previous": cell_text(p.total.previous) },
        "breakdowns": breakdowns,
        "milestones": milestones,
        "milestones_text": text_table(&head, &milestone_rows),
        "milestones_markdown": markdown_table(&head, &milestone_rows),
        "handling_text": text_table(&handling_head, &handling_rows),
        "handling_markdown": markdown_table(&handling_head, &handling_rows),
        "handling": handling_rows.iter().map(|r| json!({ "label": r[0], "count": r[1] })).collect::<Vec<_>>(),
        "satisfaction": {
            "responses": cell_text(p.satisfaction.responses),
            "mean": p.satisfaction.mean.map(|v| decimal(v, lang)),
            "rows": sat_rows.iter().map(|r| json!({ "score": r[0], "count": r[1] })).collect::<Vec<_>>(),
            "markdown": markdown_table(&sat_head, &sat_rows),
        },
        "months": month_rows.iter().map(|r| json!({ "label": r[0], "total": r[1] })).collect::<Vec<_>>(),
        "months_markdown": markdown_table(&month_head, &month_rows),
    })
}

/// Template data of both reports from a few made-up complaints: what `klachtd check`
/// renders the report templates with (strict mode names every missing variable).
pub fn sample_views(lang: &str) -> (Value, Value) {
    use crate::domain::calendar::Calendar;
    use crate::domain::procedure::Milestone;
    use crate::domain::report::{ComplaintFacts, MilestoneFact, analyse, public_report};
    let at = |s: &str| {
        chrono::DateTime::parse_from_rfc3339(s)
            .map(|t| t.with_timezone(&chrono::Utc))
            .unwrap_or_default()
    };
    let day = |y, m, d| NaiveDate::from_ymd_opt(y, m, d).unwrap_or_default();
    let fact = |n: u32, received: &str, cause: &str| ComplaintFacts {
        reference: format!("KL-2026-{n:04}"),
        received: at(received),
        kind: "complaint".into(),
        category: Some("Lesrooster".into()),
        severity: "normal".into(),
        channel: "email".into(),
        nature: Some("incident".into()),
        status: "closed".into(),
        handler: Some("docent@example.nl".into()),
        cause: Some(cause.into()),
        measure: (n == 1).then(|| "Rooster een week vooruit mailen".to_string()),
        measure_recorded: (n == 1).then(|| at("2026-03-02T10:00:00Z")),
        agreement: Some(n != 2),
        satisfaction: Some(4),
        escalations: u32::from(n == 2),
        appeal_pointed: n == 2,
        milestones: vec![MilestoneFact {
            milestone: Milestone::Acknowledged,
            due: Some(day(2026, 3, 9)),
            done: Some(at(received)),
        }],
    };
    let facts = vec![
        fact(1, "2026-03-02T09:00:00Z", "Roosterwijziging niet gemeld"),
        fact(2, "2026-04-14T09:00:00Z", "Roosterwijziging niet gemeld"),
    ];
    let a = analyse(
        &facts,
        &Period::Year(2026),
        &Calendar::dutch(),
        chrono_tz::Europe::Amsterdam,
        at("2027-01-15T08:00:00Z"),
    );
    let settings = ViewSettings {
        organisation: "Muziekcentrum Zuidoost",
        lang,
        generated: day(2027, 1, 15),
        procedure_title: "Klachtenprocedure",
        public_body: true,
    };
    let charts: Vec<ChartImage> = ["months", "categories", "deadlines"]
        .into_iter()
        .map(|name| ChartImage {
            name,
            title: name.into(),
            png: Vec::new(),
        })
        .collect();
    (
        analysis_view(&a, &settings, &charts, ImageLinks::ContentId),
        public_view(&public_report(&a, 5), &settings),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_and_periods_in_words() {
        assert_eq!(decimal(2.5, "nl"), "2,5");
        assert_eq!(decimal(2.5, "en"), "2.5");
        assert_eq!(decimal(3.0, "nl"), "3");
        assert_eq!(
            period_text(&Period::Quarter(2026, 3), "nl"),
            "3e kwartaal 2026"
        );
        assert_eq!(period_text(&Period::Month(2026, 11), "en"), "November 2026");
        let (a, b) = (
            NaiveDate::from_ymd_opt(2026, 1, 1).unwrap(),
            NaiveDate::from_ymd_opt(2026, 3, 31).unwrap(),
        );
        assert_eq!(
            period_text(&Period::Range(a, b), "nl"),
            "1 januari 2026 t/m 31 maart 2026"
        );
    }

    #[test]
    fn text_tables_line_up_by_characters() {
        let t = text_table(
            &["categorie".into(), "aantal".into()],
            &[
                vec!["Privé".into(), "7".into()],
                vec!["Overig".into(), "12".into()],
            ],
        );
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines[0], "categorie  aantal");
        assert_eq!(lines[2], "Privé           7");
        assert_eq!(lines[3], "Overig         12");
        assert_eq!(
            lines.iter().map(|l| l.chars().count()).max(),
            Some("categorie  aantal".len())
        );
    }

    #[test]
    fn labels_of_known_values_follow_the_language() {
        assert_eq!(
            value_label(Dimension::Kind, Some("complaint"), "nl"),
            "klacht"
        );
        assert_eq!(value_label(Dimension::Channel, None, "nl"), "e-mail");
        assert_eq!(
            value_label(Dimension::Channel, Some("phone"), "nl"),
            "telefoon"
        );
        assert_eq!(
            value_label(Dimension::Severity, Some("serious"), "en"),
            "serious"
        );
        assert_eq!(
            value_label(Dimension::Nature, Some("structural"), "nl"),
            "structureel"
        );
        assert_eq!(value_label(Dimension::Category, None, "en"), "(not set)");
        assert_eq!(
            value_label(Dimension::Category, Some("Vervoer"), "en"),
            "Vervoer"
        );
    }

    #[test]
    fn markdown_tables_escape_pipes() {
        let t = markdown_table(
            &["a".into(), "b".into()],
            &[vec!["x|y".into(), "< 5".into()]],
        );
        assert_eq!(t, "| a | b |\n| --- | ---: |\n| x\\|y | < 5 |");
    }
}
