//! What every request passes through: its `Host` (on a server that asks
//! no token), CORS, the bearer token on /api, a time limit, the security
//! headers, the metrics and the access log; and the answers that are no
//! handler's (health, readiness, unknown routes).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, MatchedPath, Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use prometheus::{Encoder as _, HistogramOpts, HistogramVec, IntCounterVec, Opts, Registry};

use super::App;
use super::problem::ApiError;
use crate::exit::Exit;
use crate::output::ErrorReport;

/// The page's Content-Security-Policy: nothing from outside the binary.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; \
                   img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// How long a readiness check waits for each dependency.
const CHECK_TIMEOUT: Duration = Duration::from_secs(2);

/// The longest path an access log line carries.
const MAX_LOGGED_PATH: usize = 200;

/// The outermost layer.
pub async fn front(State(app): State<App>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().clone();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let path: String = request.uri().path().chars().take(MAX_LOGGED_PATH).collect();
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.to_string())
        .unwrap_or_default();
    let headers = request.headers().clone();
    let mut response = if app.check_host && !app.guard.addressed_to_us(&headers) {
        ApiError::http(
            StatusCode::MISDIRECTED_REQUEST,
            "MISDIRECTED",
            "this server does not answer for that Host; see --allow-host",
        )
        .into_response()
    } else if method == Method::OPTIONS && headers.contains_key(header::ORIGIN) {
        // A CORS preflight: answered here, before the token is asked for.
        StatusCode::NO_CONTENT.into_response()
    } else {
        next.run(request).await
    };
    app.guard.cors(
        &headers,
        response.headers_mut(),
        "GET, POST, OPTIONS",
        "Authorization, Content-Type, Idempotency-Key, Last-Event-ID",
    );
    secure(&route, response.headers_mut());
    let status = response.status();
    let elapsed = started.elapsed();
    if let Some(metrics) = &app.metrics {
        metrics.observe(&route, method.as_str(), status.as_u16(), elapsed);
    }
    tracing::info!(
        target: "orderflow::serve",
        %method,
        path,
        route,
        status = status.as_u16(),
        ms = elapsed.as_secs_f64() * 1000.0,
        peer,
        "request"
    );
    response
}

/// The headers every answer carries; the page gets its CSP.
fn secure(route: &str, headers: &mut axum::http::HeaderMap) {
    let set = |headers: &mut axum::http::HeaderMap, name, value: &'static str| {
        headers
            .entry(name)
            .or_insert_with(|| HeaderValue::from_static(value));
    };
    set(headers, header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    set(headers, header::REFERRER_POLICY, "no-referrer");
    set(headers, header::X_FRAME_OPTIONS, "DENY");
    set(
        headers,
        header::CONTENT_SECURITY_POLICY,
        if route == "/" {
            CSP
        } else {
            "default-src 'none'; frame-ancestors 'none'"
        },
    );
    if route.starts_with("/api/") {
        set(headers, header::CACHE_CONTROL, "no-store");
    }
}

/// /api asks for a bearer token when the server has tokens.
pub async fn authorize(State(app): State<App>, request: Request, next: Next) -> Response {
    if app.guard.authorized(request.headers()) {
        return next.run(request).await;
    }
    let message = if request.headers().contains_key(header::AUTHORIZATION) {
        "the bearer token is not one this server accepts"
    } else {
        "a bearer token is required: send `Authorization: Bearer <token>`"
    };
    ApiError::http(StatusCode::UNAUTHORIZED, "UNAUTHORIZED", message).into_response()
}

/// A request that takes longer than --request-timeout is answered 504.
pub async fn deadline(State(app): State<App>, request: Request, next: Next) -> Response {
    match tokio::time::timeout(app.request_timeout, next.run(request)).await {
        Ok(response) => response,
        Err(_) => ApiError::from_report(
            ErrorReport::new(
                Exit::Timeout,
                format!(
                    "the request took longer than {} (--request-timeout); what it started goes on: \
                     look the order up before sending it again",
                    humantime::format_duration(app.request_timeout)
                ),
            ),
            None,
        )
        .into_response(),
    }
}

pub async fn not_found(request: Request) -> Response {
    let path: String = request.uri().path().chars().take(MAX_LOGGED_PATH).collect();
    ApiError::http(
        StatusCode::NOT_FOUND,
        Exit::NotFound.error_code(),
        format!("no route {path}; see /api/openapi.json"),
    )
    .into_response()
}

pub async fn method_not_allowed(request: Request) -> Response {
    ApiError::http(
        StatusCode::METHOD_NOT_ALLOWED,
        "METHOD_NOT_ALLOWED",
        format!(
            "{} is not answered here; see /api/openapi.json",
            request.method()
        ),
    )
    .into_response()
}

/// Alive: it answers.
pub async fn healthz() -> &'static str {
    "ok\n"
}

/// Ready: Temporal and PostgreSQL answer.
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

/// Requests by route, method and status, and how long they took.
pub struct Metrics {
    registry: Registry,
    requests: IntCounterVec,
    latency: HistogramVec,
}

impl Metrics {
    pub fn new() -> Self {
        let registry = Registry::new();
        let requests = IntCounterVec::new(
            Opts::new("orderflow_http_requests_total", "HTTP requests answered"),
            &["route", "method", "status"],
        )
        .expect("a valid metric");
        let latency = HistogramVec::new(
            HistogramOpts::new(
                "orderflow_http_request_duration_seconds",
                "Time to answer an HTTP request (to the start of the body for events streams)",
            )
            .buckets(vec![
                0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
            ]),
            &["route", "method", "status"],
        )
        .expect("a valid metric");
        registry
            .register(Box::new(requests.clone()))
            .expect("registered once");
        registry
            .register(Box::new(latency.clone()))
            .expect("registered once");
        Self {
            registry,
            requests,
            latency,
        }
    }

    fn observe(&self, route: &str, method: &str, status: u16, elapsed: Duration) {
        let status = status.to_string();
        let labels = [route, method, status.as_str()];
        self.requests.with_label_values(&labels).inc();
        self.latency
            .with_label_values(&labels)
            .observe(elapsed.as_secs_f64());
    }

    fn text(&self) -> String {
        let mut out = Vec::new();
        let _ = prometheus::TextEncoder::new().encode(&self.registry.gather(), &mut out);
        String::from_utf8(out).unwrap_or_default()
    }
}

/// `/metrics` on --metrics-address, until the process ends.
pub async fn serve_metrics(listener: tokio::net::TcpListener, metrics: Arc<Metrics>) {
    let app = axum::Router::new().route(
        "/metrics",
        axum::routing::get(move || {
            let metrics = metrics.clone();
            async move {
                (
                    [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
                    metrics.text(),
                )
            }
        }),
    );
    if let Err(e) = axum::serve(listener, app).await {
        tracing::warn!("the metrics listener stopped: {e}");
    }
}
