//! Who leads among several instances on one database (issue #12). Every instance sends from
//! the shared outbox; only the leader watches the mailbox and runs the scheduler and cron jobs,
//! through a store whose transactions are fenced on its lease
//! ([`crate::store::leadership`]). Timing, for `runtime.failover_seconds` = F: the lease runs
//! for 0.6 F and is renewed every 0.2 F; a standby tries to take it every 0.1 F. A leader that
//! dies is replaced within 0.7 F; one that cannot renew (paused, cut off) stops itself when its
//! lease has run out, so that it is restarted as a standby.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::watch;

use super::Context;
use crate::store::Store;
use crate::store::leadership::{Fence, LEADER, Leadership};

/// This process, as `klachtd status` lists it.
#[derive(Debug, Clone)]
pub struct Instance {
    pub id: String,
    pub host: String,
    pub pid: i64,
}

impl Instance {
    pub fn current() -> Instance {
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_string())
            .ok()
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "unknown-host".to_string());
        let pid = i64::from(std::process::id());
        // Random, so a restarted process (same pid in a container) is a new instance and a
        // lease it held before is not mistaken for its own.
        let id = format!("{host}/{pid}/{:08x}", rand::random::<u32>());
        Instance { id, host, pid }
    }
}

/// The lease timings for `runtime.failover_seconds`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Timings {
    pub ttl: Duration,
    pub renew_every: Duration,
    pub campaign_every: Duration,
}

impl Timings {
    pub fn for_failover(failover: Duration) -> Timings {
        Timings {
            ttl: failover.mul_f64(0.6),
            renew_every: failover.mul_f64(0.2),
            campaign_every: failover.mul_f64(0.1),
        }
    }
}

/// Where the leader's tasks wait for the lease. Without a shared database there is nobody to
/// share with: the gate is open from the start, with the plain store.
#[derive(Clone)]
pub struct Gate {
    store: watch::Receiver<Option<Arc<dyn Store>>>,
}

impl Gate {
    /// A gate that is open already (SQLite: one process owns the database).
    pub fn open(store: Arc<dyn Store>) -> Gate {
        let (_, rx) = watch::channel(Some(store));
        Gate { store: rx }
    }

    /// The context for a leader's task once this instance leads (its store fenced on the
    /// lease); None when the daemon stops first.
    pub async fn leader_context(
        &self,
        ctx: &Arc<Context>,
        stop: &mut watch::Receiver<bool>,
    ) -> Option<Arc<Context>> {
        let mut rx = self.store.clone();
        loop {
            if *stop.borrow() {
                return None;
            }
            let current = rx.borrow_and_update().clone();
            if let Some(store) = current {
                // The plain store as it is (SQLite), or a copy of the context with the fenced one.
                if Arc::ptr_eq(&store, &ctx.store) {
                    return Some(ctx.clone());
                }
                let mut leader = Context::clone(ctx);
                leader.store = store;
                return Some(Arc::new(leader));
            }
            tokio::select! {
                changed = rx.changed() => {
                    if changed.is_err() {
                        return None;
                    }
                }
                _ = stop.changed() => {}
            }
        }
    }
}

/// What a campaign round changed, for the status line and the health checks.
pub trait RoleListener: Send + Sync {
    fn leading(&self, leading: bool);
}

/// The lease keeper of one instance: heartbeats, campaigns until it leads, then renews. It
/// returns Ok at the stop (the lease is released by [`release`] once the leader's tasks have
/// finished), and Err when the lease was lost: the daemon then stops with that error.
pub struct Keeper {
    pub leadership: Arc<dyn Leadership>,
    pub fence: Arc<Fence>,
    pub instance: Instance,
    pub timings: Timings,
    pub gate: watch::Sender<Option<Arc<dyn Store>>>,
}

impl Keeper {
    pub fn new(
        leadership: Arc<dyn Leadership>,
        instance: Instance,
        failover: Duration,
    ) -> (Keeper, Gate) {
        let fence = Fence::new(LEADER, &instance.id);
        let (tx, rx) = watch::channel(None);
        (
            Keeper {
                leadership,
                fence,
                instance,
                timings: Timings::for_failover(failover),
                gate: tx,
            },
            Gate { store: rx },
        )
    }

    pub async fn run(
        &self,
        roles: &dyn RoleListener,
        mut stop: watch::Receiver<bool>,
    ) -> Result<(), String> {
        let t = self.timings;
        let version = env!("CARGO_PKG_VERSION");
        let mut leading_since_renewal: Option<Instant> = None;
        let mut announced = None;
        let mut last_seen = Instant::now() - t.renew_every * 2;
        loop {
            if *stop.borrow() {
                return Ok(());
            }
            if last_seen.elapsed() >= t.renew_every {
                last_seen = Instant::now();
                if let Err(e) = self
                    .leadership
                    .instance_seen(
                        &self.instance.id,
                        &self.instance.host,
                        self.instance.pid,
                        version,
                    )
                    .await
                {
                    tracing::warn!(error = %e, "cannot record this instance's heartbeat");
                }
            }
            let wait = match leading_since_renewal {
                Some(renewed) => {
                    match self
                        .leadership
                        .renew(LEADER, &self.instance.id, self.fence.token(), t.ttl)
                        .await
                    {
                        Ok(true) => leading_since_renewal = Some(Instant::now()),
                        Ok(false) => {
                            self.fence.set_token(0);
                            return Err("the leader lease was taken over (it ran out: this instance was paused or cut off from the database); klachtd stops so that it restarts as a standby".into());
                        }
                        Err(e) if renewed.elapsed() >= t.ttl => {
                            self.fence.set_token(0);
                            return Err(format!(
                                "the leader lease could not be renewed before it ran out: {e}"
                            ));
                        }
                        Err(e) => {
                            tracing::warn!(error = %e, "cannot renew the leader lease; trying again")
                        }
                    }
                    t.renew_every
                }
                None => {
                    match self
                        .leadership
                        .try_acquire(LEADER, &self.instance.id, t.ttl)
                        .await
                    {
                        Ok(Some(token)) => {
                            self.fence.set_token(token);
                            leading_since_renewal = Some(Instant::now());
                            tracing::info!(token, instance = %self.instance.id, "this instance leads: it watches the mailbox and runs the scheduler");
                            let fenced = self.leadership.fenced(self.fence.clone());
                            // Nobody listening only means the tasks stopped already.
                            let _ = self.gate.send(Some(fenced));
                            roles.leading(true);
                            announced = Some(true);
                            t.renew_every
                        }
                        Ok(None) => {
                            if announced != Some(false) {
                                announced = Some(false);
                                tracing::info!("standby: another instance leads");
                                roles.leading(false);
                            }
                            t.campaign_every
                        }
                        Err(e) => {
                            tracing::warn!(error = %e, "cannot reach the leader lease; trying again");
                            t.campaign_every
                        }
                    }
                }
            };
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = stop.changed() => {}
            }
        }
    }

    /// After a clean stop, once the leader's tasks have finished: the lease is given up so
    /// a standby takes over at once, and this instance leaves the list.
    pub async fn release(&self) {
        let token = self.fence.token();
        if token != 0 {
            self.fence.set_token(0);
            if let Err(e) = self
                .leadership
                .release(LEADER, &self.instance.id, token)
                .await
            {
                tracing::warn!(error = %e, "cannot release the leader lease; it runs out by itself");
            }
        }
        if let Err(e) = self.leadership.instance_stopped(&self.instance.id).await {
            tracing::warn!(error = %e, "cannot remove this instance from the list");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dead_leader_is_replaced_within_the_failover_time() {
        for secs in [3u64, 10, 60] {
            let f = Duration::from_secs(secs);
            let t = Timings::for_failover(f);
            // Worst case: killed right after a renewal, found by a standby one round late.
            assert!(t.ttl + t.campaign_every < f, "{t:?} for {f:?}");
            // At least two renewals fit in a lease, so one slow round does not lose it.
            assert!(t.renew_every * 2 < t.ttl, "{t:?}");
        }
    }
}
