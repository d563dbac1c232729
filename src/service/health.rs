//! What `/healthz`, `/readyz` and `/metrics` report (issue #12; the listener is
//! [`crate::http`]).
//!
//! The daemon's tasks tell [`Health`] when the mailbox was reached or failed and when the
//! scheduler ran; [`Health::check`] judges that, with the outbox backlog read from the store,
//! against the `[http]` thresholds at a time it is given. It reads no clock itself, so its
//! rules are tested here without a daemon. The counters and histograms are recorded where the
//! events happen (ingest, outbox, scheduler) through the `metrics` facade: while no recorder
//! is installed (`[http]` off, the one-shot commands) every call is a no-op.

use std::sync::Mutex;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::config::HttpSettings;
use crate::store::OutboxBacklog;

/// Metric names (Prometheus conventions: `_total` counters, `_seconds` durations).
pub mod names {
    pub const INGESTED: &str = "klachtd_mails_ingested_total";
    pub const SENT: &str = "klachtd_mails_sent_total";
    pub const SEND_FAILURES: &str = "klachtd_send_failures_total";
    pub const OUTBOX_DEPTH: &str = "klachtd_outbox_depth";
    pub const OUTBOX_OLDEST: &str = "klachtd_outbox_oldest_seconds";
    pub const DEADLINES: &str = "klachtd_deadlines_total";
    pub const ESCALATIONS: &str = "klachtd_escalations_total";
    pub const INGEST_SECONDS: &str = "klachtd_ingest_batch_duration_seconds";
    pub const SEND_SECONDS: &str = "klachtd_send_duration_seconds";
    pub const SCHEDULER_LAG: &str = "klachtd_scheduler_lag_seconds";
    pub const LEADER: &str = "klachtd_leader";
}

/// Buckets of both latency histograms, in seconds: a file write takes milliseconds, an SMTP
/// round trip or a batch of 50 mails up to seconds.
pub const LATENCY_BUCKETS: &[f64] = &[
    0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// Describe every metric and create the labelled counters at 0, so a scrape shows them
/// before the first event (and a rate over the first one is not lost).
pub fn describe_metrics() {
    use metrics::{Unit, counter, describe_counter, describe_gauge, describe_histogram};
    describe_counter!(
        names::INGESTED,
        "Mails taken from the mailbox, by result (registered, threaded, unfiled, quarantined, bounce, duplicate)"
    );
    for result in [
        "registered",
        "threaded",
        "unfiled",
        "quarantined",
        "bounce",
        "duplicate",
    ] {
        counter!(names::INGESTED, "result" => result).absolute(0);
    }
    describe_counter!(
        names::SENT,
        "Mails delivered by the transport, by template (acknowledgement, notices, escalations, ...)"
    );
    counter!(names::SENT, "template" => "acknowledgement").absolute(0);
    describe_counter!(
        names::SEND_FAILURES,
        "Failed send attempts, by kind (transient: retried; permanent: kept and alerted)"
    );
    for kind in ["transient", "permanent"] {
        counter!(names::SEND_FAILURES, "kind" => kind).absolute(0);
    }
    describe_gauge!(names::OUTBOX_DEPTH, "Mails queued or being sent");
    describe_gauge!(
        names::OUTBOX_OLDEST,
        Unit::Seconds,
        "How long the oldest due mail has waited in the outbox (0: none waits)"
    );
    describe_counter!(
        names::DEADLINES,
        "Milestones completed in this process (acknowledgements at intake, staff mail, scheduler steps), by result: met (by the end of the due day) or missed"
    );
    for result in ["met", "missed"] {
        counter!(names::DEADLINES, "result" => result).absolute(0);
    }
    describe_counter!(
        names::ESCALATIONS,
        "Escalations the scheduler queued: a term of the procedure passed without its milestone"
    );
    counter!(names::ESCALATIONS).absolute(0);
    describe_histogram!(
        names::INGEST_SECONDS,
        Unit::Seconds,
        "One batch from the mailbox: parse, write, commit"
    );
    describe_histogram!(
        names::SEND_SECONDS,
        Unit::Seconds,
        "One send attempt by the transport"
    );
    describe_gauge!(
        names::SCHEDULER_LAG,
        Unit::Seconds,
        "How far the scheduler is behind its earliest due action"
    );
    describe_gauge!(
        names::LEADER,
        "1 while this process watches the mailbox and sends the outbox"
    );
}

/// Count what a committed batch of mails came to, and how long the batch took.
pub fn record_ingested(outcomes: &[crate::service::ingest::Outcome], took: Duration) {
    use crate::service::ingest::Outcome;
    for o in outcomes {
        let result = match o {
            Outcome::Registered { .. } => "registered",
            Outcome::Threaded { .. } => "threaded",
            Outcome::Unfiled { .. } => "unfiled",
            Outcome::Quarantined { .. } => "quarantined",
            Outcome::Bounce { .. } => "bounce",
            // Seen before (delivered twice, or a restart after a crash): no new mail.
            Outcome::Duplicate | Outcome::AlreadyProcessed => "duplicate",
        };
        metrics::counter!(names::INGESTED, "result" => result).increment(1);
        // Acknowledged at intake: the acknowledgement term is met (it ends days later).
        if let Outcome::Registered {
            acknowledged: true, ..
        } = o
        {
            metrics::counter!(names::DEADLINES, "result" => "met").increment(1);
        }
    }
    metrics::histogram!(names::INGEST_SECONDS).record(took.as_secs_f64());
}

/// Milestones that became decided (completed) between `before` and `after`: met or missed.
pub fn record_deadlines(
    before: &[crate::domain::procedure::Deadline],
    after: &[crate::domain::procedure::Deadline],
) {
    for d in after {
        let was = before
            .iter()
            .find(|b| b.milestone == d.milestone)
            .and_then(|b| b.met);
        if let (None, Some(met)) = (was, d.met) {
            let result = if met { "met" } else { "missed" };
            metrics::counter!(names::DEADLINES, "result" => result).increment(1);
        }
    }
}

/// A milestone completed at `at` outside [`crate::service::scheduler::apply_event`] (the
/// scheduler's own step, a staff answer): met or missed by the same rule as the register.
pub fn record_completion(
    ctx: &crate::service::Context,
    procedure: &crate::domain::procedure::Procedure,
    progress: &crate::domain::procedure::Progress,
    milestone: &str,
    at: DateTime<Utc>,
) {
    let (cal, tz) = (&ctx.procedure.calendar, ctx.procedure.tz);
    let mut after = progress.clone();
    after.completed.entry(milestone.to_string()).or_insert(at);
    record_deadlines(
        &procedure.deadlines(cal, tz, progress),
        &procedure.deadlines(cal, tz, &after),
    );
}

/// The `[http]` thresholds of [`Health::check`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Thresholds {
    pub mailbox: chrono::Duration,
    pub outbox: chrono::Duration,
    pub scheduler: chrono::Duration,
}

impl Thresholds {
    pub fn from_settings(h: &HttpSettings) -> Self {
        let secs = |s: u64| chrono::Duration::seconds(i64::try_from(s).unwrap_or(i64::MAX / 2000));
        Self {
            mailbox: secs(h.mailbox_stale_seconds),
            outbox: secs(h.outbox_stale_seconds),
            scheduler: secs(h.scheduler_lag_seconds),
        }
    }
}

/// What the daemon's tasks last said.
#[derive(Debug, Clone, Default)]
struct State {
    started_at: DateTime<Utc>,
    mailbox_reached_at: Option<DateTime<Utc>>,
    /// The first failure since the last success.
    mailbox_failing_since: Option<DateTime<Utc>>,
    mailbox_error: Option<String>,
    scheduler_ran_at: Option<DateTime<Utc>>,
    /// The scheduler's earliest due action after its last run (None: nothing planned).
    scheduler_next_due: Option<DateTime<Utc>>,
    /// Another instance leads: the mailbox and the scheduler are not this one's.
    standby: bool,
}

/// The daemon's health, shared by its tasks and the HTTP listener.
#[derive(Debug)]
pub struct Health {
    state: Mutex<State>,
}

/// The body of `/healthz`, on 200 and on 503 alike.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HealthReport {
    /// `ok` or `unhealthy`.
    pub status: &'static str,
    pub reasons: Vec<String>,
    pub mailbox_reached_at: Option<String>,
    pub mailbox_unreachable_since: Option<String>,
    pub outbox_depth: Option<u64>,
    /// Age of the oldest mail that should have gone by now; null when none waits.
    pub oldest_queued_seconds: Option<i64>,
    pub scheduler_ran_at: Option<String>,
    pub scheduler_lag_seconds: i64,
}

impl HealthReport {
    pub fn healthy(&self) -> bool {
        self.reasons.is_empty()
    }
}

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

impl Health {
    pub fn new(started_at: DateTime<Utc>) -> Self {
        Self {
            state: Mutex::new(State {
                started_at,
                ..State::default()
            }),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic elsewhere while holding the lock leaves plain values that are still valid.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A mailbox pass finished.
    pub fn mailbox_reached(&self, at: DateTime<Utc>) {
        let mut s = self.state();
        s.mailbox_reached_at = Some(at);
        s.mailbox_failing_since = None;
        s.mailbox_error = None;
    }

    /// A mailbox pass failed.
    pub fn mailbox_failed(&self, at: DateTime<Utc>, error: &str) {
        let mut s = self.state();
        s.mailbox_failing_since.get_or_insert(at);
        s.mailbox_error = Some(error.to_string());
    }

    /// Another instance leads (`true`), or this one does now.
    pub fn set_standby(&self, standby: bool) {
        self.state().standby = standby;
    }

    /// The scheduler ran at `at`; `next_due` is its earliest due action now.
    pub fn scheduler_ran(&self, at: DateTime<Utc>, next_due: Option<DateTime<Utc>>) {
        let mut s = self.state();
        s.scheduler_ran_at = Some(at);
        s.scheduler_next_due = next_due;
    }

    /// `/readyz`: the store is open (there is no `Health` before it) and the first mailbox
    /// pass has been made.
    pub fn ready(&self) -> bool {
        let s = self.state();
        s.mailbox_reached_at.is_some() || s.standby
    }

    /// How far the scheduler is behind at `now`: past its earliest due action, or, before its
    /// first run, since the start (it runs at once).
    pub fn scheduler_lag(&self, now: DateTime<Utc>) -> chrono::Duration {
        let s = self.state();
        if s.standby {
            return chrono::Duration::zero();
        }
        let due = match s.scheduler_ran_at {
            None => Some(s.started_at),
            Some(_) => s.scheduler_next_due,
        };
        due.map_or(chrono::Duration::zero(), |d| {
            (now - d).max(chrono::Duration::zero())
        })
    }

    /// `/healthz` at `now`. `backlog` is the store's answer ([`crate::store::Store::outbox_backlog`]),
    /// an error text when it could not be read.
    pub fn check(
        &self,
        now: DateTime<Utc>,
        backlog: Result<OutboxBacklog, String>,
        limits: Thresholds,
    ) -> HealthReport {
        let lag = self.scheduler_lag(now);
        let s = self.state().clone();
        let mut reasons = Vec::new();
        if let Some(since) = s.mailbox_failing_since
            && now - since >= limits.mailbox
        {
            reasons.push(format!(
                "mailbox unreachable since {}: {}",
                rfc3339(since),
                s.mailbox_error.as_deref().unwrap_or("unknown error")
            ));
        }
        let (depth, oldest) = match &backlog {
            Ok(b) => (
                Some(b.depth),
                b.oldest_waiting_since
                    .map(|t| (now - t).max(chrono::Duration::zero())),
            ),
            Err(e) => {
                reasons.push(format!("cannot read the outbox: {e}"));
                (None, None)
            }
        };
        if let Some(age) = oldest
            && age >= limits.outbox
        {
            reasons.push(format!(
                "the oldest queued mail has waited {} s (outbox not drained; limit {} s)",
                age.num_seconds(),
                limits.outbox.num_seconds()
            ));
        }
        if lag >= limits.scheduler {
            reasons.push(format!(
                "the scheduler is {} s behind its earliest due action (limit {} s)",
                lag.num_seconds(),
                limits.scheduler.num_seconds()
            ));
        }
        HealthReport {
            status: if reasons.is_empty() {
                "ok"
            } else {
                "unhealthy"
            },
            reasons,
            mailbox_reached_at: s.mailbox_reached_at.map(rfc3339),
            mailbox_unreachable_since: s.mailbox_failing_since.map(rfc3339),
            outbox_depth: depth,
            oldest_queued_seconds: oldest.map(|a| a.num_seconds()),
            scheduler_ran_at: s.scheduler_ran_at.map(rfc3339),
            scheduler_lag_seconds: lag.num_seconds(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Duration as D;

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn limits() -> Thresholds {
        Thresholds {
            mailbox: D::seconds(300),
            outbox: D::seconds(900),
            scheduler: D::seconds(300),
        }
    }

    fn empty() -> Result<OutboxBacklog, String> {
        Ok(OutboxBacklog::default())
    }

    const START: &str = "2026-12-03T10:00:00Z";

    #[test]
    fn ready_after_the_first_mailbox_pass_only() {
        let h = Health::new(t(START));
        assert!(!h.ready());
        h.mailbox_failed(t(START) + D::seconds(1), "connection refused");
        assert!(!h.ready(), "a failed pass is no first pass");
        h.mailbox_reached(t(START) + D::seconds(5));
        assert!(h.ready());
    }

    #[test]
    fn a_mailbox_failing_past_the_limit_is_unhealthy_with_since_and_error() {
        let h = Health::new(t(START));
        h.mailbox_reached(t(START));
        h.scheduler_ran(t(START), None);
        let first = t(START) + D::seconds(10);
        h.mailbox_failed(first, "cannot connect: refused");
        h.mailbox_failed(first + D::seconds(60), "cannot connect: timed out");
        // The first failure counts, not the last: 299 s after it still healthy.
        let r = h.check(first + D::seconds(299), empty(), limits());
        assert!(r.healthy(), "{r:?}");
        assert_eq!(
            r.mailbox_unreachable_since.as_deref(),
            Some("2026-12-03T10:00:10Z")
        );
        let r = h.check(first + D::seconds(300), empty(), limits());
        assert_eq!(r.status, "unhealthy");
        assert_eq!(
            r.reasons,
            vec!["mailbox unreachable since 2026-12-03T10:00:10Z: cannot connect: timed out"]
        );
        assert_eq!(
            r.mailbox_reached_at.as_deref(),
            Some("2026-12-03T10:00:00Z")
        );
        // One success clears it.
        h.mailbox_reached(first + D::seconds(301));
        let r = h.check(first + D::seconds(302), empty(), limits());
        assert!(r.healthy(), "{r:?}");
        assert_eq!(r.mailbox_unreachable_since, None);
    }

    #[test]
    fn an_old_queued_mail_is_unhealthy_and_a_new_one_is_not() {
        let h = Health::new(t(START));
        h.mailbox_reached(t(START));
        h.scheduler_ran(t(START), None);
        let now = t(START) + D::hours(2);
        let backlog = |age: i64| {
            Ok(OutboxBacklog {
                depth: 3,
                oldest_waiting_since: Some(now - D::seconds(age)),
            })
        };
        let r = h.check(now, backlog(899), limits());
        assert!(r.healthy(), "{r:?}");
        assert_eq!(r.oldest_queued_seconds, Some(899));
        assert_eq!(r.outbox_depth, Some(3));
        let r = h.check(now, backlog(900), limits());
        assert_eq!(r.status, "unhealthy");
        assert!(
            r.reasons[0].starts_with("the oldest queued mail has waited 900 s"),
            "{r:?}"
        );
        // Queued but none waiting (held back by the hourly cap): fine.
        let held = Ok(OutboxBacklog {
            depth: 40,
            oldest_waiting_since: None,
        });
        let r = h.check(now, held, limits());
        assert!(r.healthy(), "{r:?}");
        assert_eq!(r.oldest_queued_seconds, None);
        let r = h.check(now, Err("database is locked".into()), limits());
        assert_eq!(
            r.reasons,
            vec!["cannot read the outbox: database is locked"]
        );
        assert_eq!(r.outbox_depth, None);
    }

    #[test]
    fn scheduler_lag_counts_from_its_earliest_due_action() {
        let h = Health::new(t(START));
        h.mailbox_reached(t(START));
        // Before its first run the scheduler is due at the start.
        assert_eq!(h.scheduler_lag(t(START) + D::seconds(20)), D::seconds(20));
        let r = h.check(t(START) + D::seconds(300), empty(), limits());
        assert!(
            r.reasons
                == vec!["the scheduler is 300 s behind its earliest due action (limit 300 s)"],
            "{r:?}"
        );
        // It ran; next due in the future: no lag.
        h.scheduler_ran(t(START) + D::seconds(301), Some(t(START) + D::hours(1)));
        assert_eq!(h.scheduler_lag(t(START) + D::seconds(400)), D::zero());
        // A step that keeps failing leaves its due time in the past: the lag grows.
        h.scheduler_ran(t(START) + D::hours(2), Some(t(START) + D::hours(1)));
        let r = h.check(t(START) + D::hours(2), empty(), limits());
        assert_eq!(r.scheduler_lag_seconds, 3600);
        assert_eq!(r.status, "unhealthy");
        // Nothing planned: never behind.
        h.scheduler_ran(t(START) + D::hours(3), None);
        assert_eq!(h.scheduler_lag(t(START) + D::hours(9)), D::zero());
    }

    /// Run `f` against a recorder of its own and return the scrape it leaves.
    fn scrape_of(f: impl FnOnce()) -> String {
        let recorder = metrics_exporter_prometheus::PrometheusBuilder::new()
            .set_buckets(LATENCY_BUCKETS)
            .unwrap()
            .build_recorder();
        let handle = recorder.handle();
        metrics::with_local_recorder(&recorder, f);
        handle.render()
    }

    fn deadline(
        m: crate::domain::procedure::Milestone,
        met: Option<bool>,
    ) -> crate::domain::procedure::Deadline {
        crate::domain::procedure::Deadline {
            milestone: m,
            due: None,
            completed_at: None,
            met,
        }
    }

    #[test]
    fn deadlines_count_once_when_decided() {
        use crate::domain::procedure::Milestone::*;
        let before = [
            deadline(Acknowledged, Some(true)),
            deadline(FirstReaction, None),
            deadline(Handled, None),
            deadline(FollowUp, None),
        ];
        let after = [
            deadline(Acknowledged, Some(true)), // decided before: not again
            deadline(FirstReaction, Some(true)),
            deadline(Handled, Some(false)),
            deadline(FollowUp, None),
        ];
        let text = scrape_of(|| {
            describe_metrics();
            record_deadlines(&before, &after);
        });
        assert!(
            text.contains("klachtd_deadlines_total{result=\"met\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("klachtd_deadlines_total{result=\"missed\"} 1"),
            "{text}"
        );
    }

    #[test]
    fn ingest_outcomes_are_counted_by_result_with_one_batch_duration() {
        use crate::service::ingest::Outcome;
        let outcomes = [
            Outcome::Registered {
                reference: "KL-2026-0001".into(),
                acknowledged: true,
            },
            Outcome::Registered {
                reference: "KL-2026-0002".into(),
                acknowledged: false,
            },
            Outcome::Quarantined {
                reason: "no header".into(),
            },
            Outcome::AlreadyProcessed,
        ];
        let text = scrape_of(|| {
            describe_metrics();
            record_ingested(&outcomes, Duration::from_millis(30));
        });
        for line in [
            "klachtd_mails_ingested_total{result=\"registered\"} 2",
            "klachtd_mails_ingested_total{result=\"quarantined\"} 1",
            "klachtd_mails_ingested_total{result=\"duplicate\"} 1",
            "klachtd_mails_ingested_total{result=\"threaded\"} 0",
            "klachtd_ingest_batch_duration_seconds_bucket{le=\"0.025\"} 0",
            "klachtd_ingest_batch_duration_seconds_bucket{le=\"0.05\"} 1",
            "klachtd_ingest_batch_duration_seconds_count 1",
            // The acknowledged one met its term; the other is not decided yet.
            "klachtd_deadlines_total{result=\"met\"} 1",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} missing:\n{text}");
        }
    }

    #[test]
    fn report_serialises_with_the_documented_fields() {
        let h = Health::new(t(START));
        h.mailbox_reached(t(START));
        h.scheduler_ran(t(START), None);
        let r = h.check(t(START), empty(), limits());
        let json = serde_json::to_value(&r).unwrap();
        assert_eq!(json["status"], "ok");
        assert_eq!(json["reasons"], serde_json::json!([]));
        for key in [
            "mailbox_reached_at",
            "oldest_queued_seconds",
            "scheduler_lag_seconds",
        ] {
            assert!(json.get(key).is_some(), "{key} missing: {json}");
        }
    }
}
