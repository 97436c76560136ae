//! The worker's operations endpoint (SPEC §7, "Operations"), one HTTP
//! listener: `/metrics` (Prometheus: the Temporal SDK's worker metrics and
//! orderflow's), `/healthz` (200 while the worker starts or runs) and
//! `/readyz` (200 while it runs and both PostgreSQL and Temporal answer;
//! else 503 with the reason, recovering by itself). It is up from the
//! moment the worker starts, so a worker waiting for its dependencies is
//! alive and not ready.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;

use crate::db::pool::Connections;
use crate::temporal::client::OrderClient;
use crate::workflow::metrics::Metrics;

/// How long a readiness check waits for each dependency.
const CHECK_TIMEOUT: Duration = Duration::from_secs(2);

/// What the endpoint looks at.
#[derive(Clone)]
pub struct Ops {
    pub metrics: Arc<Metrics>,
    /// The worker's connections, once it has them.
    pub deps: Arc<OnceLock<(Connections, OrderClient)>>,
    /// What a starting worker waits for (`None` once it has it all).
    pub waiting: Arc<Mutex<Option<String>>>,
    /// Set while the worker's loop runs (polls).
    pub running: Arc<AtomicBool>,
}

impl Ops {
    pub fn new(metrics: Arc<Metrics>, running: Arc<AtomicBool>) -> Self {
        Self {
            metrics,
            deps: Arc::default(),
            waiting: Arc::new(Mutex::new(Some("starting".to_owned()))),
            running,
        }
    }

    /// Says what the starting worker waits for now (`None`: nothing more).
    pub fn wait_for(&self, what: Option<String>) {
        *self.waiting.lock().unwrap_or_else(|e| e.into_inner()) = what;
    }

    fn waiting(&self) -> Option<String> {
        self.waiting
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

/// Serves the endpoint until the process ends.
pub async fn serve(listener: tokio::net::TcpListener, ops: Ops) -> std::io::Result<()> {
    let app = Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .with_state(ops);
    axum::serve(listener, app).await
}

async fn metrics(State(ops): State<Ops>) -> impl IntoResponse {
    let Some(addr) = ops.metrics.registry_addr else {
        return (StatusCode::NOT_FOUND, "metrics are off".to_owned()).into_response();
    };
    match reqwest::get(format!("http://{addr}/metrics")).await {
        Ok(response) => match response.text().await {
            Ok(text) => {
                ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response()
            }
            Err(e) => (
                StatusCode::BAD_GATEWAY,
                format!("reading the registry: {e}"),
            )
                .into_response(),
        },
        Err(e) => (
            StatusCode::BAD_GATEWAY,
            format!("reading the registry: {e}"),
        )
            .into_response(),
    }
}

async fn healthz(State(ops): State<Ops>) -> impl IntoResponse {
    if let Some(what) = ops.waiting() {
        (StatusCode::OK, format!("ok: the worker starts ({what})\n"))
    } else if ops.running.load(Ordering::Relaxed) {
        (StatusCode::OK, "ok: the worker runs\n".to_owned())
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "not running: the worker has stopped\n".to_owned(),
        )
    }
}

async fn readyz(State(ops): State<Ops>) -> impl IntoResponse {
    if let Some(what) = ops.waiting() {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready: {what}\n"),
        );
    }
    let Some((db, client)) = ops.deps.get() else {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "not ready: the worker has not connected\n".to_owned(),
        );
    };
    let mut problems = Vec::new();
    if !ops.running.load(Ordering::Relaxed) {
        problems.push("the worker is not polling".to_owned());
    }
    let (db, temporal) = tokio::join!(postgres(db), temporal(client));
    problems.extend(db.err().map(|e| format!("PostgreSQL: {e}")));
    problems.extend(temporal.err().map(|e| format!("Temporal: {e}")));
    if problems.is_empty() {
        (StatusCode::OK, "ready\n".to_owned())
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready: {}\n", problems.join("; ")),
        )
    }
}

async fn postgres(db: &Connections) -> Result<(), String> {
    let check = async {
        let mut conn = db.acquire().await.map_err(|e| e.to_string())?;
        sqlx::query("SELECT 1")
            .execute(&mut conn)
            .await
            .map(drop)
            .map_err(|e| e.to_string())
    };
    tokio::time::timeout(CHECK_TIMEOUT, check)
        .await
        .unwrap_or_else(|_| Err(format!("no answer within {CHECK_TIMEOUT:?}")))
}

async fn temporal(client: &OrderClient) -> Result<(), String> {
    tokio::time::timeout(CHECK_TIMEOUT, client.server_version())
        .await
        .map_err(|_| format!("no answer within {CHECK_TIMEOUT:?}"))?
        .map(drop)
        .map_err(|e| e.to_string())
}
