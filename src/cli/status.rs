//! `klachtd status`: the instances on this database, who leads and how fresh its lease is,
//! and the outbox queue (issue #12).

use std::process::ExitCode;

use klachtd::service::Context;
use klachtd::store::leadership::LEADER;
use serde::Serialize;

use super::args::Format;
use super::say;

#[derive(Debug, Serialize)]
struct Status {
    /// `sqlite` or `postgresql`.
    backend: &'static str,
    /// The database URL without its password.
    database: String,
    /// Every instance seen in the last day (PostgreSQL); empty on SQLite.
    instances: Vec<InstanceStatus>,
    /// The leader lease (PostgreSQL); null on SQLite, where one process owns the file.
    leader: Option<LeaderStatus>,
    outbox: OutboxStatus,
}

#[derive(Debug, Serialize)]
struct InstanceStatus {
    id: String,
    host: String,
    pid: i64,
    version: String,
    started_at: String,
    seen_seconds_ago: f64,
    /// Its heartbeat is younger than half of `runtime.failover_seconds`.
    alive: bool,
    leader: bool,
}

#[derive(Debug, Serialize)]
struct LeaderStatus {
    instance: String,
    token: i64,
    /// Seconds since the leader last renewed its lease.
    lease_age_seconds: f64,
    expires_at: String,
    /// The lease ran out: nobody leads until a standby takes it.
    expired: bool,
}

#[derive(Debug, Serialize)]
struct OutboxStatus {
    /// Mails queued or being sent.
    depth: u64,
    /// The oldest mail that should have gone by now, and its age; null when none waits.
    oldest_queued_at: Option<String>,
    oldest_queued_seconds: Option<i64>,
}

fn rfc3339(t: chrono::DateTime<chrono::Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

pub async fn status(ctx: &Context, format: Format) -> anyhow::Result<ExitCode> {
    let backend = ctx
        .settings
        .database()
        .map_err(|p| anyhow::anyhow!("{}: {}", p.key, p.message))?;
    let now = ctx.clock.now();
    let backlog = ctx.store.outbox_backlog(now).await?;
    let outbox = OutboxStatus {
        depth: backlog.depth,
        oldest_queued_at: backlog.oldest_waiting_since.map(rfc3339),
        oldest_queued_seconds: backlog
            .oldest_waiting_since
            .map(|t| (now - t).num_seconds().max(0)),
    };
    let mut status = Status {
        backend: if backend.is_postgres() {
            "postgresql"
        } else {
            "sqlite"
        },
        database: backend.shown(),
        instances: Vec::new(),
        leader: None,
        outbox,
    };
    if let Some(shared) = ctx.store.leadership() {
        let lease = shared.lease(LEADER).await?;
        // Heartbeats come every 0.2 x failover_seconds (service::leader): two and a half
        // missed ones and it is taken for gone.
        let alive_within = ctx.settings.runtime.failover_seconds as f64 * 0.5;
        let leader_id = lease
            .as_ref()
            .filter(|l| !l.expired)
            .map(|l| l.holder.clone());
        status.instances = shared
            .instances()
            .await?
            .into_iter()
            .map(|i| InstanceStatus {
                leader: leader_id.as_deref() == Some(i.id.as_str()),
                alive: i.seen_seconds_ago <= alive_within,
                id: i.id,
                host: i.host,
                pid: i.pid,
                version: i.version,
                started_at: rfc3339(i.started_at),
                seen_seconds_ago: (i.seen_seconds_ago * 10.0).round() / 10.0,
            })
            .collect();
        status.leader = lease.map(|l| LeaderStatus {
            instance: l.holder,
            token: l.token,
            lease_age_seconds: (l.age_seconds * 10.0).round() / 10.0,
            expires_at: rfc3339(l.expires_at),
            expired: l.expired,
        });
    }
    if format == Format::Json {
        println!("{}", serde_json::to_string_pretty(&status)?);
        return Ok(ExitCode::SUCCESS);
    }
    say!("backend   {} ({})", status.backend, status.database);
    match &status.leader {
        None if status.backend == "sqlite" => {
            say!("leader    one process owns the SQLite database (no election)")
        }
        None => say!("leader    none yet (no instance has run)"),
        Some(l) if l.expired => say!(
            "leader    none: the lease of {} ran out {} s ago",
            l.instance,
            l.lease_age_seconds
        ),
        Some(l) => say!(
            "leader    {} (lease renewed {} s ago, token {})",
            l.instance,
            l.lease_age_seconds,
            l.token
        ),
    }
    for i in &status.instances {
        let role = match (i.leader, i.alive) {
            (true, _) => "leader",
            (false, true) => "standby",
            (false, false) => "gone",
        };
        say!(
            "instance  {:<40} {:<8} {} pid {} seen {} s ago, up since {}",
            i.id,
            role,
            i.version,
            i.pid,
            i.seen_seconds_ago,
            i.started_at
        );
    }
    match (
        &status.outbox.oldest_queued_at,
        status.outbox.oldest_queued_seconds,
    ) {
        (Some(at), Some(age)) => say!(
            "outbox    {} queued, the oldest waiting since {at} ({age} s)",
            status.outbox.depth
        ),
        _ => say!("outbox    {} queued, none waiting", status.outbox.depth),
    }
    Ok(ExitCode::SUCCESS)
}
