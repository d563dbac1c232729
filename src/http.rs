//! The health and metrics listener (`[http] listen`, off by default): `/healthz`, `/readyz`
//! and `/metrics` in Prometheus text format. The rules are [`crate::service::health`]; this
//! module only binds, routes and renders. It serves nothing else and reads no request body.

use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Json, Response};
use axum::routing::get;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use tokio::sync::watch;

use crate::service::Context;
use crate::service::health::{Health, LATENCY_BUCKETS, Thresholds, describe_metrics, names};

#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    /// Startup: the port is taken or the address is not ours. Named as the key is written.
    #[error("http.listen {addr}: {reason}")]
    Bind { addr: SocketAddr, reason: String },
    #[error("cannot set up the metrics recorder: {0}")]
    Recorder(String),
    #[error("the HTTP listener on {addr} failed: {reason}")]
    Serve { addr: SocketAddr, reason: String },
}

/// Bind at startup, before the other tasks run, so a taken port stops the daemon at once with
/// a clear message instead of later.
pub async fn bind(addr: SocketAddr) -> Result<tokio::net::TcpListener, HttpError> {
    tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| HttpError::Bind {
            addr,
            reason: match e.kind() {
                std::io::ErrorKind::AddrInUse => "address in use".to_string(),
                std::io::ErrorKind::AddrNotAvailable => {
                    "address not available on this host".to_string()
                }
                std::io::ErrorKind::PermissionDenied => {
                    "permission denied (ports below 1024 need privileges)".to_string()
                }
                _ => e.to_string(),
            },
        })
}

/// The process-wide Prometheus recorder: the `metrics` macros in ingest, outbox and scheduler
/// report to it. Installed once, the first time the listener starts; no listener of its own.
pub fn recorder() -> Result<PrometheusHandle, HttpError> {
    static HANDLE: OnceLock<Result<PrometheusHandle, String>> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new()
                .set_buckets(LATENCY_BUCKETS)
                .map_err(|e| e.to_string())?
                .build_recorder();
            let handle = recorder.handle();
            metrics::set_global_recorder(recorder).map_err(|e| e.to_string())?;
            describe_metrics();
            Ok(handle)
        })
        .clone()
        .map_err(HttpError::Recorder)
}

struct Shared {
    ctx: Arc<Context>,
    health: Arc<Health>,
    metrics: PrometheusHandle,
    limits: Thresholds,
}

/// The routes, for [`serve`] and for tests that drive them without a socket.
pub fn router(ctx: Arc<Context>, health: Arc<Health>, metrics: PrometheusHandle) -> Router {
    let limits = Thresholds::from_settings(&ctx.settings.http);
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics_text))
        .with_state(Arc::new(Shared {
            ctx,
            health,
            metrics,
            limits,
        }))
}

/// Serve until `stop` turns true. Open connections get a moment to finish their request.
pub async fn serve(
    listener: tokio::net::TcpListener,
    router: Router,
    mut stop: watch::Receiver<bool>,
) -> Result<(), HttpError> {
    let addr = listener.local_addr().map_err(|e| HttpError::Serve {
        addr: SocketAddr::from(([0, 0, 0, 0], 0)),
        reason: e.to_string(),
    })?;
    tracing::info!(%addr, "health and metrics listener started");
    let shutdown = async move {
        while !*stop.borrow() {
            if stop.changed().await.is_err() {
                break;
            }
        }
    };
    axum::serve(listener, router)
        .with_graceful_shutdown(shutdown)
        .await
        .map_err(|e| HttpError::Serve {
            addr,
            reason: e.to_string(),
        })
}

async fn healthz(State(s): State<Arc<Shared>>) -> Response {
    let now = s.ctx.clock.now();
    let backlog = s
        .ctx
        .store
        .outbox_backlog(now)
        .await
        .map_err(|e| e.to_string());
    let report = s.health.check(now, backlog, s.limits);
    let code = if report.healthy() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (code, Json(report)).into_response()
}

async fn readyz(State(s): State<Arc<Shared>>) -> Response {
    if s.health.ready() {
        (
            StatusCode::OK,
            Json(serde_json::json!({ "status": "ready" })),
        )
            .into_response()
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(serde_json::json!({
                "status": "starting",
                "reason": "the first mailbox pass has not finished"
            })),
        )
            .into_response()
    }
}

async fn metrics_text(State(s): State<Arc<Shared>>) -> Response {
    let now = s.ctx.clock.now();
    // Read at scrape time from the store, so they are right also after another process (a
    // `klachtd run --once`, a restart) changed the outbox.
    match s.ctx.store.outbox_backlog(now).await {
        Ok(b) => {
            metrics::gauge!(names::OUTBOX_DEPTH).set(b.depth as f64);
            let oldest = b
                .oldest_waiting_since
                .map_or(0.0, |t| (now - t).num_milliseconds().max(0) as f64 / 1000.0);
            metrics::gauge!(names::OUTBOX_OLDEST).set(oldest);
        }
        Err(e) => tracing::warn!(error = %e, "metrics: cannot read the outbox backlog"),
    }
    metrics::gauge!(names::SCHEDULER_LAG).set(s.health.scheduler_lag(now).num_seconds() as f64);
    s.metrics.run_upkeep();
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        s.metrics.render(),
    )
        .into_response()
}
