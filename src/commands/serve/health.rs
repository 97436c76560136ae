//! `/healthz` (it answers) and `/readyz` (Temporal and PostgreSQL answer).

use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use super::app::App;

/// How long a readiness check waits for each dependency.
const CHECK_TIMEOUT: Duration = Duration::from_secs(2);

/// Alive: it answers.
pub async fn healthz() -> &'static str {
    "ok\n"
}

/// Ready: Temporal and PostgreSQL answer; else 503, naming which does not.
pub async fn readyz(State(app): State<App>) -> Response {
    let db = async {
        tokio::time::timeout(CHECK_TIMEOUT, sqlx::query("SELECT 1").execute(&app.pool))
            .await
            .map_err(|_| format!("no answer within {CHECK_TIMEOUT:?}"))?
            .map(drop)
            .map_err(|e| e.to_string())
    };
    let temporal = async {
        tokio::time::timeout(CHECK_TIMEOUT, app.client.server_version())
            .await
            .map_err(|_| format!("no answer within {CHECK_TIMEOUT:?}"))?
            .map(drop)
            .map_err(|e| e.to_string())
    };
    let (db, temporal) = tokio::join!(db, temporal);
    let problems: Vec<String> = [("PostgreSQL", db), ("Temporal", temporal)]
        .into_iter()
        .filter_map(|(what, r)| r.err().map(|e| format!("{what}: {e}")))
        .collect();
    if problems.is_empty() {
        (StatusCode::OK, "ready\n").into_response()
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready: {}\n", problems.join("; ")),
        )
            .into_response()
    }
}
