//! The outbox sender. Each attempt is recorded (claimed with a lease) before the network call,
//! and no transaction is held open across it. Transient failures retry with exponential
//! backoff; a permanent failure is kept, listed by `klachtd outbox list`, and alerted to the
//! admin, never deleted.

use chrono::{DateTime, Duration, Utc};
use futures_util::{StreamExt, stream};
use serde_json::json;
use tokio::sync::watch;
use tracing::Instrument;

use super::outbound::queue_to_role;
use super::{Context, ServiceError};
use crate::outgoing::{Envelope, SendError, Transport};
use crate::store::{Claim, OutboxItem, lease};

/// Templates that alert the admin about the outbox itself: their own failure is only logged,
/// so a broken transport cannot make alerts about alerts forever.
const ADMIN_ALERTS: &[&str] = &["delivery_failed", "operational_alert"];

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct DeliveryReport {
    pub sent: usize,
    pub retrying: usize,
    pub failed: usize,
}

/// A claimed mail whose attempt did not finish in this time is tried again.
const LEASE_SECONDS: i64 = 300;

pub fn backoff(ctx: &Context, attempts: i64) -> Duration {
    let o = &ctx.settings.outbox;
    let exp = u32::try_from(attempts.clamp(1, 30) - 1).unwrap_or(0);
    let secs = o
        .retry_initial_seconds
        .saturating_mul(2u64.saturating_pow(exp))
        .min(o.retry_max_seconds);
    Duration::seconds(i64::try_from(secs).unwrap_or(i64::MAX / 2))
}

/// Mails claimed per round. Their "sent" marks are written together after the round, so a
/// crash resends at most this many (at least once); kept small so a round finishes well
/// inside the lease even against a slow server.
const CLAIM: i64 = 25;

/// After a stop, mails already being sent get this long to finish before they are abandoned
/// (their lease, held by a process about to be gone, is free at the next start). systemd's
/// and container runtimes' stop timeouts are 10 s and more; the daemon must be out within 5.
const STOP_GRACE: std::time::Duration = std::time::Duration::from_millis(1500);

/// Deliver everything due now, `[outgoing] connections` at a time. Returns what happened.
pub async fn deliver_due(
    ctx: &Context,
    transport: &dyn Transport,
) -> Result<DeliveryReport, ServiceError> {
    let (_keep, never) = watch::channel(false);
    deliver_due_until(ctx, transport, &never).await
}

/// [`deliver_due_until`] for at most about `budget` (plus [`STOP_GRACE`]): the daemon's last
/// run before it exits, for what the final batch queued.
pub async fn deliver_for(
    ctx: &Context,
    transport: &dyn Transport,
    budget: std::time::Duration,
) -> Result<DeliveryReport, ServiceError> {
    let (timeout, stop) = watch::channel(false);
    let delivery = deliver_due_until(ctx, transport, &stop);
    tokio::pin!(delivery);
    tokio::select! {
        report = &mut delivery => report,
        () = tokio::time::sleep(budget) => {
            // Out of time: stop between mails, and let the delivery give back what it holds.
            let _ = timeout.send(true);
            delivery.await
        }
    }
}

/// [`deliver_due`] until `stop` turns true: no new mail is started after that, the mails in
/// hand are finished (within [`STOP_GRACE`]), and the claimed ones not tried are given back,
/// due at once, for the next run. While a round is sent, the next round is claimed and the
/// previous one recorded: the database's fsyncs then overlap the network instead of stalling
/// the connections.
pub async fn deliver_due_until(
    ctx: &Context,
    transport: &dyn Transport,
    stop: &watch::Receiver<bool>,
) -> Result<DeliveryReport, ServiceError> {
    let mut report = DeliveryReport::default();
    let parallel = ctx.settings.outgoing.connections.max(1);
    free_leases_of_the_gone(ctx).await;
    let stopped = || *stop.borrow();
    let mut round = if stopped() {
        Vec::new()
    } else {
        claim(ctx).await?
    };
    let mut unrecorded = Vec::new();
    while !round.is_empty() {
        let previous = std::mem::take(&mut unrecorded);
        let (sent, next, recorded) = tokio::join!(
            send_round(transport, round, parallel, stop),
            async {
                if stopped() {
                    Ok(Vec::new())
                } else {
                    claim(ctx).await
                }
            },
            record(ctx, previous, &mut report)
        );
        recorded?;
        unrecorded = sent.results;
        let mut give_back: Vec<Claim> = sent.untried.iter().map(OutboxItem::claim).collect();
        // A failed claim leaves this round's results unrecorded: they are sent, and their
        // lease runs out before anyone tries them again (at least once).
        round = match next {
            Ok(next) => next,
            Err(e) => {
                record(ctx, std::mem::take(&mut unrecorded), &mut report).await?;
                return Err(e);
            }
        };
        if stopped() {
            give_back.extend(round.drain(..).map(|i| i.claim()));
        }
        if !give_back.is_empty() {
            tracing::info!(
                mails = give_back.len(),
                "stopping: claimed mails given back for the next run"
            );
            ctx.store
                .outbox_release(&give_back, ctx.clock.now())
                .await?;
        }
    }
    record(ctx, unrecorded, &mut report).await?;
    Ok(report)
}

/// Leases held by a process that no longer runs on this host (killed, crashed, rebooted) are
/// free now, not when they run out: on the embedded default nobody else can hold them.
async fn free_leases_of_the_gone(ctx: &Context) {
    let now = ctx.clock.now();
    let holders = match ctx.store.outbox_lease_holders(now).await {
        Ok(h) => h,
        Err(e) => {
            tracing::warn!(error = %e, "cannot read the outbox leases");
            return;
        }
    };
    for holder in holders.iter().filter(|h| lease::holder_gone(h)) {
        match ctx.store.outbox_free_leases_of(holder, now).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(
                mails = n,
                holder = %holder,
                "outbox mails claimed by a process that is gone are due again"
            ),
            Err(e) => tracing::warn!(error = %e, "cannot free the outbox leases"),
        }
    }
}

async fn claim(ctx: &Context) -> Result<Vec<OutboxItem>, ServiceError> {
    let now = ctx.clock.now();
    let owner = lease::me().map(|o| o.encode());
    Ok(ctx
        .store
        .claim_outbox(
            now,
            now + Duration::seconds(LEASE_SECONDS),
            CLAIM,
            owner.as_deref(),
        )
        .await?)
}

struct RoundResult {
    results: Vec<(OutboxItem, Result<(), SendError>)>,
    /// Claimed, but not started because of a stop.
    untried: Vec<OutboxItem>,
}

/// Send one round, `parallel` at a time, starting no new mail once `stop` is set.
async fn send_round(
    transport: &dyn Transport,
    items: Vec<OutboxItem>,
    parallel: usize,
    stop: &watch::Receiver<bool>,
) -> RoundResult {
    let mut stop = stop.clone();
    let mut queue: std::collections::VecDeque<OutboxItem> = items.into();
    let mut running = stream::FuturesUnordered::new();
    let mut results = Vec::new();
    let mut grace: Option<std::pin::Pin<Box<tokio::time::Sleep>>> = None;
    loop {
        let stopped = *stop.borrow();
        while !stopped && running.len() < parallel {
            let Some(item) = queue.pop_front() else { break };
            running.push(send_one(transport, item));
        }
        if running.is_empty() {
            break;
        }
        if stopped && grace.is_none() {
            grace = Some(Box::pin(tokio::time::sleep(STOP_GRACE)));
        }
        tokio::select! {
            Some(done) = running.next() => results.push(done),
            // Wake on the stop itself, not only when a mail finishes. A closed channel can
            // never stop us: wait for the mails then.
            r = stop.changed(), if !stopped => {
                if r.is_err()
                    && let Some(done) = running.next().await
                {
                    results.push(done);
                }
            }
            () = async { if let Some(g) = grace.as_mut() { g.await } }, if grace.is_some() => {
                tracing::warn!(mails = running.len(), "stopping: mails still being sent are abandoned");
                break;
            }
        }
    }
    RoundResult {
        results,
        untried: queue.into(),
    }
}

async fn send_one(
    transport: &dyn Transport,
    item: OutboxItem,
) -> (OutboxItem, Result<(), SendError>) {
    let span = tracing::info_span!("outbox", id = item.id, message_id = %item.message_id, template = %item.template);
    let envelope = Envelope {
        mail_from: item.envelope_from.clone(),
        rcpt_to: item.recipients.clone(),
    };
    let started = std::time::Instant::now();
    let result = transport
        .send(&item.message_id, &envelope, &item.raw)
        .instrument(span)
        .await;
    metrics::histogram!(super::health::names::SEND_SECONDS).record(started.elapsed().as_secs_f64());
    (item, result)
}

/// Write down what a round did: the sent ones in one statement, retries and failures each.
async fn record(
    ctx: &Context,
    results: Vec<(OutboxItem, Result<(), SendError>)>,
    report: &mut DeliveryReport,
) -> Result<(), ServiceError> {
    let now = ctx.clock.now();
    let sent: Vec<Claim> = results
        .iter()
        .filter(|(_, r)| r.is_ok())
        .map(|(item, _)| item.claim())
        .collect();
    let marked = ctx.store.outbox_sent(&sent, now).await?;
    if marked < sent.len() as u64 {
        // Our lease ran out before the send was recorded (a pause longer than the lease) and
        // another sender claimed these again: they may go twice over SMTP (at least once),
        // and what that sender records stands.
        tracing::warn!(
            mails = sent.len() as u64 - marked,
            "sent after the claim was taken over by another sender"
        );
    }
    for (item, result) in results {
        let span = tracing::info_span!("outbox", id = item.id, message_id = %item.message_id, template = %item.template);
        match result {
            Ok(()) => {
                span.in_scope(|| tracing::info!(attempt = item.attempts, "sent"));
                report.sent += 1;
                metrics::counter!(super::health::names::SENT, "template" => item.template.clone())
                    .increment(1);
            }
            Err(SendError::Transient(e)) if !given_up(ctx, &item, now) => {
                let next = now + backoff(ctx, item.attempts);
                span.in_scope(|| tracing::warn!(error = %e, attempt = item.attempts, next = %crate::store::ts(next), "send failed; will retry"));
                if !ctx.store.outbox_retry(item.claim(), next, &e).await? {
                    span.in_scope(|| {
                        tracing::warn!("claim taken over by another sender; its result stands")
                    });
                }
                report.retrying += 1;
                metrics::counter!(super::health::names::SEND_FAILURES, "kind" => "transient")
                    .increment(1);
            }
            Err(e) => {
                let reason = e.to_string();
                span.in_scope(|| tracing::error!(error = %reason, "send failed permanently; kept in the outbox"));
                fail_permanently(ctx, &item, &reason, now).await?;
                report.failed += 1;
                // A transient failure past `give_up_after_hours` ends here too: permanent.
                metrics::counter!(super::health::names::SEND_FAILURES, "kind" => "permanent")
                    .increment(1);
            }
        }
    }
    Ok(())
}

fn given_up(ctx: &Context, item: &OutboxItem, now: DateTime<Utc>) -> bool {
    let hours = i64::try_from(ctx.settings.outbox.give_up_after_hours).unwrap_or(i64::MAX / 4000);
    now - item.created_at > Duration::hours(hours)
}

async fn fail_permanently(
    ctx: &Context,
    item: &OutboxItem,
    reason: &str,
    now: DateTime<Utc>,
) -> Result<(), ServiceError> {
    let mut tx = ctx.store.begin().await?;
    tx.mark_outbox_failed(item.id, reason).await?;
    tx.history(
        item.complaint_id,
        now,
        super::ingest::SYSTEM,
        "delivery_failed",
        &format!(
            "{} to {} failed permanently: {reason}",
            item.template,
            item.recipients.join(", ")
        ),
    )
    .await?;
    if !ADMIN_ALERTS.contains(&item.template.as_str()) {
        let reference = match item.complaint_id {
            Some(id) => tx.complaint_reference(id).await?,
            None => String::new(),
        };
        let context = json!({
            "organisation": { "name": ctx.settings.organisation.name },
            "complaint": { "reference": reference },
            "outbox": { "subject": item.subject, "recipient": item.recipients.join(", "), "error": reason },
        });
        queue_to_role(
            ctx,
            tx.as_mut(),
            "admin",
            "delivery_failed",
            &context,
            item.complaint_id,
            now,
        )
        .await?;
    }
    tx.commit().await?;
    Ok(())
}

/// Queue an operational alert to the admin (mailbox login failing, ...) outside any complaint.
pub async fn alert_admin(ctx: &Context, subject: &str, text: &str) -> Result<(), ServiceError> {
    let now = ctx.clock.now();
    let mut tx = ctx.store.begin().await?;
    let context = json!({
        "organisation": { "name": ctx.settings.organisation.name },
        "alert": { "subject": subject, "text": text },
    });
    queue_to_role(
        ctx,
        tx.as_mut(),
        "admin",
        "operational_alert",
        &context,
        None,
        now,
    )
    .await?;
    tx.history(
        None,
        now,
        super::ingest::SYSTEM,
        "alert",
        &format!("admin alerted: {subject}"),
    )
    .await?;
    tx.commit().await?;
    Ok(())
}
