//! A server: bound, routed, answering until it is told to stop.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::routing::{get, post};
use sqlx::PgPool;
use tokio::net::TcpListener;

use super::app::{App, Settings};
use super::{api, events, front, health, metrics, openapi, page};
use crate::exit::Fail;
use crate::temporal::TemporalConfig;
use crate::temporal::client::OrderClient;
use crate::web::guard::Guard;
use crate::web::listen::{self, Limits};

/// After the stop, requests in flight get this long beyond
/// --request-timeout to finish.
const DRAIN_MARGIN: Duration = Duration::from_secs(5);

/// A server bound to its address, not yet answering.
pub struct Server {
    app: App,
    listener: TcpListener,
    metrics_listener: Option<TcpListener>,
    limits: Limits,
    address: SocketAddr,
    stop: tokio::sync::watch::Sender<bool>,
}

impl Server {
    /// Binds `settings.listen` (and the metrics address); refuses an
    /// address other machines reach without a token or --no-auth.
    pub async fn bind(
        settings: Settings,
        config: TemporalConfig,
        client: OrderClient,
        pool: PgPool,
    ) -> anyhow::Result<Self> {
        if settings.tokens.is_empty() && !settings.no_auth && !settings.listen.ip().is_loopback() {
            return Err(Fail::usage(format!(
                "--listen {} is reachable from other machines, and anyone who reaches it could \
                 create and cancel orders; pass --api-token-file with the tokens clients send, \
                 --no-auth if a proxy in front authenticates, or listen on 127.0.0.1",
                settings.listen
            ))
            .into());
        }
        if settings.tokens.is_empty() && settings.allow_origins.iter().any(|o| o == "*") {
            return Err(Fail::usage(
                "--allow-origin '*' without --api-token-file would let any web page create and \
                 cancel orders here; name the origins that may (--allow-origin https://shop.example), \
                 or require tokens",
            )
            .into());
        }
        let listener = bind(settings.listen, "--listen").await?;
        let metrics_listener = match settings.metrics_address {
            Some(address) => Some(bind(address, "--metrics-address").await?),
            None => None,
        };
        let address = listener.local_addr()?;
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let limits = Limits {
            max_connections: settings.max_connections,
            header_timeout: settings.header_timeout,
            drain: settings.request_timeout + DRAIN_MARGIN,
        };
        let app = App {
            client,
            config,
            pool,
            guard: Arc::new(Guard {
                tokens: settings.tokens,
                allow_hosts: settings.allow_hosts,
                listen: Some(address),
                allow_origins: settings.allow_origins,
            }),
            max_body: settings.max_body,
            request_timeout: settings.request_timeout,
            metrics: metrics_listener
                .is_some()
                .then(|| Arc::new(metrics::Metrics::new())),
            pacer: Arc::default(),
            stop: stopped,
        };
        Ok(Self {
            app,
            listener,
            metrics_listener,
            limits,
            address,
            stop,
        })
    }

    /// Where the page is.
    pub fn url(&self) -> String {
        format!("http://{}", self.address)
    }

    /// Who may call it, in words.
    pub fn auth_note(&self) -> String {
        match self.app.guard.tokens.len() {
            0 => "no token: it answers requests addressed to this machine's loopback, \
                  the listening address or --allow-host"
                .to_owned(),
            1 => "a bearer token is required".to_owned(),
            n => format!("a bearer token is required, one of {n}"),
        }
    }

    /// Answers until `stop` resolves, then stops gracefully: no new
    /// connections, events streams ended, requests in flight finished —
    /// unless `force` resolves first.
    pub async fn run(self, stop: impl Future<Output = ()>, force: impl Future<Output = ()>) {
        if let (Some(listener), Some(metrics)) = (self.metrics_listener, self.app.metrics.clone()) {
            let limits = self.limits;
            tokio::spawn(async move {
                let never = std::future::pending::<()>;
                listen::serve(listener, metrics::router(metrics), limits, never(), never()).await;
            });
        }
        let router = router(self.app);
        let stopping = self.stop;
        let stop = async move {
            stop.await;
            stopping.send_replace(true);
        };
        listen::serve(self.listener, router, self.limits, stop, force).await;
    }
}

/// Every route.
fn router(app: App) -> Router {
    let timed = Router::new()
        .route("/api/orders", post(api::create).get(api::list))
        .route("/api/orders/{id}", get(api::status))
        .route("/api/orders/{id}/cancel", post(api::cancel_order))
        .route("/api/products", get(api::products))
        .route_layer(axum::middleware::from_fn_with_state(
            app.clone(),
            front::deadline,
        ));
    let protected = timed
        .route("/api/orders/{id}/events", get(events::stream))
        .route("/api/events", get(events::many))
        .route_layer(axum::middleware::from_fn_with_state(
            app.clone(),
            front::authorize,
        ));
    Router::new()
        .merge(protected)
        .route("/api/openapi.json", get(openapi::serve))
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/", get(page::index))
        .route("/assets/{file}", get(page::asset))
        .fallback(front::not_found)
        .method_not_allowed_fallback(front::method_not_allowed)
        .layer(axum::middleware::from_fn_with_state(
            app.clone(),
            front::front,
        ))
        .with_state(app)
}

async fn bind(address: SocketAddr, flag: &str) -> anyhow::Result<TcpListener> {
    TcpListener::bind(address).await.map_err(|e| {
        Fail::usage(format!(
            "cannot listen on {flag} {address}: {e}; choose a free port"
        ))
        .into()
    })
}
