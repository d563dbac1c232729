//! `klachtd report` and the reports mailed on a schedule (`[[reports.mail]]`): read the
//! register into [`ComplaintFacts`], let the pure core count ([`crate::domain::report`]), and
//! render the result through the admin's templates (`report`, `public_report`) with charts.

use chrono::{DateTime, Datelike, Duration, NaiveDate, Utc};
use serde_json::{Value, json};

use super::register_export::{ComplaintRecord, RegisterFilter, for_each_complaint};
use super::{Context, ServiceError};
use crate::config::{ReportMailing, ReportSpan};
use crate::domain::calendar::local_date;
use crate::domain::report::{
    Analysis, ComplaintFacts, MilestoneFact, Period, PublicReport, analyse, public_report,
};
use crate::mail::compose::{AutoKind, FileAttachment, InlineImage, Parts};
use crate::mail::report::{
    ChartImage, ImageLinks, ViewSettings, analysis_charts, analysis_csv, analysis_view, content_id,
    public_view,
};
use crate::mail::templates::Rendered;

/// The template of the analysis report; `public_report` is the public one (its text part is
/// Markdown).
pub const ANALYSIS_TEMPLATE: &str = "report";
pub const PUBLIC_TEMPLATE: &str = "public_report";

/// The facts of one complaint as the reports count them.
fn facts_of(r: ComplaintRecord) -> ComplaintFacts {
    let c = r.complaint;
    ComplaintFacts {
        reference: c.reference,
        received: r.received,
        kind: c.kind,
        category: c.category,
        severity: c.severity,
        // Complaints that came in by mail carry no channel.
        channel: c.channel.unwrap_or_else(|| "email".into()),
        nature: c.incident_kind,
        status: c.status,
        handler: c.handler,
        cause: c.cause,
        measure: c.measure,
        measure_recorded: r.extras.measure_recorded,
        agreement: match c.agreement.as_deref() {
            Some("yes") => Some(true),
            Some("no") => Some(false),
            _ => None,
        },
        satisfaction: c.satisfaction.as_deref().and_then(|s| s.parse().ok()),
        escalations: u32::try_from(r.extras.escalations).unwrap_or(0),
        appeal_pointed: r.extras.appeal_pointed,
        milestones: r.deadlines.iter().map(MilestoneFact::from).collect(),
    }
}

/// Every complaint a report of `period` needs: those received in it and in the period before
/// it, and older ones with a measure (for the causes that came back after a measure).
/// `progress` hears the number of complaints read so far.
pub async fn load_facts(
    ctx: &Context,
    period: &Period,
    mut progress: impl FnMut(usize),
) -> Result<Vec<ComplaintFacts>, ServiceError> {
    let (_, end) = period.dates();
    let (previous_start, _) = period.previous().dates();
    let tz = ctx.procedure.tz;
    let filter = RegisterFilter {
        from: Some(previous_start),
        to: end.pred_opt(),
        status: None,
        older_with_measure: true,
    };
    let mut facts = Vec::new();
    let mut read = 0usize;
    for_each_complaint(ctx, &filter, |r| {
        read += 1;
        if read.is_multiple_of(1000) {
            progress(read);
        }
        if local_date(r.received, tz) >= previous_start || r.complaint.measure.is_some() {
            facts.push(facts_of(r));
        }
        Ok(())
    })
    .await?;
    progress(read);
    Ok(facts)
}

/// The public report shows a category only when it is one of `procedure.categories`: a
/// category typed freely by staff may name a person or a case.
fn public_facts(ctx: &Context, facts: Vec<ComplaintFacts>) -> Vec<ComplaintFacts> {
    let listed = &ctx.settings.procedure.categories;
    facts
        .into_iter()
        .map(|mut f| {
            f.category = f.category.as_deref().and_then(|c| {
                listed
                    .iter()
                    .find(|l| l.trim().eq_ignore_ascii_case(c.trim()))
                    .cloned()
            });
            // Nothing of the person or the case is needed for counts.
            f.handler = None;
            f.cause = None;
            f.measure = None;
            f
        })
        .collect()
}

pub fn analysis(ctx: &Context, facts: &[ComplaintFacts], period: &Period) -> Analysis {
    analyse(
        facts,
        period,
        &ctx.procedure.calendar,
        ctx.procedure.tz,
        ctx.clock.now(),
    )
}

/// Takes the facts: they are changed in place (no second copy of a large register).
pub fn public(ctx: &Context, facts: Vec<ComplaintFacts>, period: &Period) -> PublicReport {
    let a = analysis(ctx, &public_facts(ctx, facts), period);
    public_report(&a, ctx.settings.reports.public_threshold)
}

fn view_settings<'a>(ctx: &'a Context, lang: &'a str) -> ViewSettings<'a> {
    ViewSettings {
        organisation: &ctx.settings.organisation.name,
        lang,
        generated: local_date(ctx.clock.now(), ctx.procedure.tz),
        procedure_title: &ctx.procedure.current().title,
        public_body: ctx
            .settings
            .reports
            .public_body
            .unwrap_or_else(|| ctx.procedure.name() == "awb"),
    }
}

/// The analysis report, rendered.
pub struct AnalysisOutput {
    pub analysis: Analysis,
    pub subject: String,
    /// For a mail: the charts by `cid:`.
    pub html_mail: String,
    /// For `report.html`: the charts embedded.
    pub html_file: String,
    pub text: String,
    pub csv: Vec<u8>,
    pub charts: Vec<ChartImage>,
}

fn template_context(ctx: &Context, key: &str, view: Value) -> Value {
    json!({
        "organisation": { "name": ctx.settings.organisation.name },
        key: view,
    })
}

pub fn render_analysis(
    ctx: &Context,
    facts: &[ComplaintFacts],
    period: &Period,
    lang: &str,
) -> Result<AnalysisOutput, ServiceError> {
    let a = analysis(ctx, facts, period);
    let settings = view_settings(ctx, lang);
    let charts = analysis_charts(&a, lang).map_err(|e| ServiceError::Invalid(e.to_string()))?;
    let render = |links| {
        let view = analysis_view(&a, &settings, &charts, links);
        ctx.templates.render(
            lang,
            ANALYSIS_TEMPLATE,
            &template_context(ctx, "report", view),
        )
    };
    let mail = render(ImageLinks::ContentId)?;
    let file = render(ImageLinks::DataUri)?;
    let csv = analysis_csv(&a, lang, ctx.settings.register.csv_separator)
        .map_err(|e| ServiceError::Invalid(format!("cannot write the report's CSV: {e}")))?;
    Ok(AnalysisOutput {
        analysis: a,
        subject: mail.subject,
        html_mail: mail.html,
        html_file: file.html,
        text: mail.text,
        csv,
        charts,
    })
}

/// The public annual report, rendered: HTML for the website, and Markdown.
pub struct PublicOutput {
    pub report: PublicReport,
    pub subject: String,
    pub html: String,
    pub markdown: String,
}

pub fn render_public(
    ctx: &Context,
    facts: Vec<ComplaintFacts>,
    period: &Period,
    lang: &str,
) -> Result<PublicOutput, ServiceError> {
    let p = public(ctx, facts, period);
    let view = public_view(&p, &view_settings(ctx, lang));
    let Rendered {
        subject,
        text,
        html,
    } = ctx.templates.render(
        lang,
        PUBLIC_TEMPLATE,
        &template_context(ctx, "public", view),
    )?;
    Ok(PublicOutput {
        report: p,
        subject,
        html,
        markdown: text,
    })
}

/// The last full year, quarter or month before the local day `day`.
pub fn last_full(span: ReportSpan, day: NaiveDate) -> Period {
    let (y, m) = (day.year(), day.month());
    match span {
        ReportSpan::Year => Period::Year(y - 1),
        ReportSpan::Quarter => {
            let q = ((m - 1) / 3 + 1) as u8;
            if q == 1 {
                Period::Quarter(y - 1, 4)
            } else {
                Period::Quarter(y, q - 1)
            }
        }
        ReportSpan::Month => {
            if m == 1 {
                Period::Month(y - 1, 12)
            } else {
                Period::Month(y, m - 1)
            }
        }
    }
}

/// A fire missed by more than this (the daemon was down) is not sent any more: a yearly
/// report does not arrive months late, nor on the day klachtd is installed.
const CATCH_UP_DAYS: i64 = 7;

fn job_name(m: &ReportMailing) -> String {
    format!("report-{}", m.index)
}

/// The next moment a scheduled report goes out, after `after`: for the daemon's sleep.
pub fn next_fire(ctx: &Context, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
    ctx.settings
        .typed
        .report_mailings
        .iter()
        .filter_map(|m| {
            m.schedule
                .after(&after.with_timezone(&ctx.procedure.tz))
                .next()
                .map(|t| super::scheduler::next_working_moment(ctx, t.with_timezone(&Utc)))
        })
        .min()
}

/// Send every scheduled report whose time has come, once (like the digest: a fire outside
/// working hours goes out at the next working moment). Returns what was sent. A report that
/// cannot be made (a template the admin broke) is logged and tried again at the next tick;
/// the others still go.
pub async fn run_scheduled(ctx: &Context, now: DateTime<Utc>) -> Vec<String> {
    let mut sent = Vec::new();
    if ctx.settings.typed.report_mailings.is_empty()
        || !super::scheduler::in_working_hours(ctx, now)
    {
        return sent;
    }
    for m in &ctx.settings.typed.report_mailings {
        match run_mailing(ctx, m, now).await {
            Ok(Some(done)) => sent.push(done),
            Ok(None) => {}
            Err(e) => tracing::error!(
                report = %job_name(m),
                error = %e,
                "scheduled report not sent; tried again at the next tick"
            ),
        }
    }
    sent
}

async fn run_mailing(
    ctx: &Context,
    m: &ReportMailing,
    now: DateTime<Utc>,
) -> Result<Option<String>, ServiceError> {
    let tz = ctx.procedure.tz;
    let from = (now - Duration::days(CATCH_UP_DAYS)).with_timezone(&tz);
    let Some(fire) = m
        .schedule
        .after(&from)
        .take_while(|t| t.with_timezone(&Utc) <= now)
        .map(|t| super::scheduler::next_working_moment(ctx, t.with_timezone(&Utc)))
        .filter(|t| *t <= now)
        .last()
    else {
        return Ok(None);
    };
    let job = job_name(m);
    if ctx.store.job_done(&job, fire).await? {
        return Ok(None);
    }
    let period = last_full(m.span, local_date(fire, tz));
    // Read and render before the write transaction, so intake is not held up.
    let facts = load_facts(ctx, &period, |_| {}).await?;
    let mail = report_mail(ctx, facts, &period, &m.lang, m.public)?;
    let mut tx = ctx.store.begin().await?;
    if !tx.mark_job_done(&job, fire, now).await? {
        return Ok(None);
    }
    let n = queue_report(ctx, tx.as_mut(), &m.role, &mail, now).await?;
    tx.history(
        None,
        now,
        super::scheduler::SCHEDULER,
        "report",
        &format!(
            "{} report {period} for {} sent to {} ({n})",
            if m.public { "public" } else { "analysis" },
            crate::store::ts(fire),
            m.role,
        ),
    )
    .await?;
    tx.commit().await?;
    Ok(Some(format!("report {period} to {}", m.role)))
}

/// A report as a mail: rendered, with its images and attachments.
pub struct ReportMail {
    pub template: &'static str,
    pub lang: String,
    pub rendered: Rendered,
    pub parts: Parts,
}

/// The report of `period` as a mail: the analysis with its charts inline and the figures as a
/// CSV attachment, or the public report with its HTML and Markdown attached.
pub fn report_mail(
    ctx: &Context,
    facts: Vec<ComplaintFacts>,
    period: &Period,
    lang: &str,
    public: bool,
) -> Result<ReportMail, ServiceError> {
    if public {
        let out = render_public(ctx, facts, period, lang)?;
        let stem = if lang == "en" {
            "annual-report"
        } else {
            "jaarverslag"
        };
        let parts = Parts {
            inline: vec![],
            attachments: vec![
                FileAttachment {
                    filename: format!("{stem}-{period}.html"),
                    content_type: "text/html; charset=utf-8".into(),
                    body: out.html.clone().into_bytes(),
                },
                FileAttachment {
                    filename: format!("{stem}-{period}.md"),
                    content_type: "text/markdown; charset=utf-8".into(),
                    body: out.markdown.clone().into_bytes(),
                },
            ],
        };
        Ok(ReportMail {
            template: PUBLIC_TEMPLATE,
            lang: lang.to_string(),
            rendered: Rendered {
                subject: out.subject,
                text: out.markdown,
                html: out.html,
            },
            parts,
        })
    } else {
        let out = render_analysis(ctx, &facts, period, lang)?;
        let parts = mail_parts(&out, period);
        Ok(ReportMail {
            template: ANALYSIS_TEMPLATE,
            lang: lang.to_string(),
            rendered: Rendered {
                subject: out.subject,
                text: out.text,
                html: out.html_mail,
            },
            parts,
        })
    }
}

/// Queue `mail` to every address of `role`, one mail each. Returns how many.
pub async fn queue_report(
    ctx: &Context,
    tx: &mut dyn crate::store::StoreTx,
    role: &str,
    mail: &ReportMail,
    now: DateTime<Utc>,
) -> Result<usize, ServiceError> {
    let to = ctx.settings.typed.staff(role).to_vec();
    if to.is_empty() {
        tracing::warn!(role, "no address for the report's role: not sent");
    }
    for recipient in &to {
        super::outbound::queue_rendered(
            ctx,
            tx,
            super::outbound::MailSpec {
                template: mail.template,
                lang: &mail.lang,
                context: &Value::Null,
                complaint_id: None,
                to: vec![(None, recipient.clone())],
                role: Some(role),
                in_reply_to: None,
                references: vec![],
                auto: AutoKind::Generated,
                now,
                not_before: None,
                recipient_key: None,
            },
            mail.rendered.clone(),
            &mail.parts,
        )
        .await?;
    }
    Ok(to.len())
}

/// The charts inline and the figures as a CSV attachment.
pub fn mail_parts(out: &AnalysisOutput, period: &Period) -> Parts {
    Parts {
        inline: out
            .charts
            .iter()
            .map(|c| InlineImage {
                content_id: content_id(c),
                png: c.png.clone(),
            })
            .collect(),
        attachments: vec![FileAttachment {
            filename: format!("klachten-{period}.csv"),
            content_type: "text/csv; charset=utf-8".into(),
            body: with_bom(&out.csv),
        }],
    }
}

/// UTF-8 with a byte-order mark: what makes Excel read `é` as `é` (see `klachtd register`).
pub fn with_bom(csv: &[u8]) -> Vec<u8> {
    let mut out = "\u{feff}".as_bytes().to_vec();
    out.extend_from_slice(csv);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    #[test]
    fn the_last_full_period_before_a_day() {
        assert_eq!(
            last_full(ReportSpan::Year, day("2027-01-15")),
            Period::Year(2026)
        );
        assert_eq!(
            last_full(ReportSpan::Quarter, day("2027-01-02")),
            Period::Quarter(2026, 4)
        );
        assert_eq!(
            last_full(ReportSpan::Quarter, day("2026-10-01")),
            Period::Quarter(2026, 3)
        );
        assert_eq!(
            last_full(ReportSpan::Quarter, day("2026-06-30")),
            Period::Quarter(2026, 1)
        );
        assert_eq!(
            last_full(ReportSpan::Month, day("2027-01-01")),
            Period::Month(2026, 12)
        );
        assert_eq!(
            last_full(ReportSpan::Month, day("2026-12-03")),
            Period::Month(2026, 11)
        );
    }
}
