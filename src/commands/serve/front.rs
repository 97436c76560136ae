//! What every request passes through: its `Host` (on a server that asks
//! no token), its `Origin` (a page elsewhere cannot change orders), CORS,
//! the bearer token on /api, a time limit, the security headers, the
//! metrics and the access log; and the answers that are no route's.

use std::net::SocketAddr;
use std::time::Instant;

use axum::extract::{ConnectInfo, MatchedPath, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::app::App;
use super::metrics::method_label;
use super::problem::ApiError;
use crate::exit::Exit;
use crate::output::ErrorReport;
use crate::web::guard::Cors;

/// The page's Content-Security-Policy: nothing from outside the binary.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; \
                   img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// What other origins may do, when --allow-origin lets them.
const CORS: Cors = Cors {
    methods: "GET, POST, OPTIONS",
    headers: "Authorization, Content-Type, Idempotency-Key, Last-Event-ID",
    expose: "Location, Link",
    credentials: false,
};

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
    // Health is no one's business but a probe's, which names the pod's address.
    let health = matches!(route.as_str(), "/healthz" | "/readyz");
    let mut response =
        if !health && !app.guard.needs_token() && !app.guard.addressed_to_us(&headers) {
            // No token: a page elsewhere must not reach this server through a
            // name of its own pointed at it (DNS rebinding).
            ApiError::http(
                StatusCode::MISDIRECTED_REQUEST,
                "MISDIRECTED",
                "this server does not answer for that Host; see --allow-host",
            )
            .into_response()
        } else if method == Method::OPTIONS && headers.contains_key(header::ORIGIN) {
            // A CORS preflight: answered here, before the token is asked for.
            StatusCode::NO_CONTENT.into_response()
        } else if changes(&method) && !same_or_allowed_origin(&app, &headers) {
            ApiError::http(
                StatusCode::FORBIDDEN,
                "CROSS_ORIGIN",
                "a page of another origin may not change orders here; see --allow-origin",
            )
            .into_response()
        } else {
            next.run(request).await
        };
    app.guard.cors(&headers, response.headers_mut(), &CORS);
    secure(&route, response.headers_mut());
    let status = response.status();
    let elapsed = started.elapsed();
    if let Some(metrics) = &app.metrics {
        metrics.observe(&route, &method, status.as_u16(), elapsed);
    }
    tracing::info!(
        target: "orderflow::serve",
        method = method_label(&method),
        path,
        route,
        status = status.as_u16(),
        ms = elapsed.as_secs_f64() * 1000.0,
        peer,
        "request"
    );
    response
}

/// Whether a request of `method` may change something.
fn changes(method: &Method) -> bool {
    !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// Whether a request comes from no page (a script, curl), from this
/// server's own page, or from an origin --allow-origin names. A browser
/// says where a request comes from in `Origin` and `Sec-Fetch-Site`; a
/// form or a script elsewhere that posts here (CSRF) is refused.
fn same_or_allowed_origin(app: &App, headers: &HeaderMap) -> bool {
    let site = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok());
    // Set by the browser, not by the page: its own page, whatever the
    // Host a proxy in front passes on.
    if site == Some("same-origin") {
        return true;
    }
    let Some(origin) = headers.get(header::ORIGIN) else {
        return site != Some("cross-site");
    };
    if app.guard.origin_allowed(origin) {
        return true;
    }
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok());
    let own = host.is_some_and(|host| {
        origin
            .to_str()
            .ok()
            .and_then(|o| o.split_once("://"))
            .is_some_and(|(_, authority)| authority.eq_ignore_ascii_case(host))
    });
    own && site.is_none_or(|s| s == "same-origin" || s == "none")
}

/// The headers every answer carries; the page gets its CSP.
fn secure(route: &str, headers: &mut HeaderMap) {
    let set = |headers: &mut HeaderMap, name, value: &'static str| {
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
            method_label(request.method())
        ),
    )
    .into_response()
}
