//! `orderflow serve`: the order API and the order page over HTTP, on the
//! CLI's rules (`order create`, `status`, `list`, `cancel`, `watch -o
//! jsonl` and `product list`, through the same code), until SIGINT or
//! SIGTERM. It starts no worker.
//!
//! | file | what |
//! |---|---|
//! | `api.rs` | the order and product handlers |
//! | `events.rs` | an order's changes as Server-Sent Events |
//! | `front.rs` | what every request passes: `Host`, token, CORS, headers, metrics, access log |
//! | `openapi.rs` | the OpenAPI document, generated from the handlers |
//! | `page.rs` | the order page (`page/`, embedded) |
//! | `problem.rs` | errors as the CLI's JSON errors, with their HTTP status |

mod api;
mod events;
mod front;
mod openapi;
mod page;
mod problem;

pub use openapi::document;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::routing::{get, post};
use sqlx::PgPool;
use tokio::net::TcpListener;

use super::Context;
use crate::cli::ServeArgs;
use crate::exit::{Exit, Fail};
use crate::temporal::TemporalConfig;
use crate::temporal::client::OrderClient;
use crate::web::guard::{Guard, read_tokens};
use crate::web::listen::{self, Limits};
use crate::worker::shutdown_signal;

/// After SIGTERM, requests in flight get this long to finish.
const DRAIN: Duration = Duration::from_secs(30);

/// What the handlers share.
#[derive(Clone)]
pub struct App {
    client: OrderClient,
    config: TemporalConfig,
    pool: PgPool,
    guard: Arc<Guard>,
    /// Ask for the `Host` to be ours: no token is asked, and --no-auth was
    /// not given (a page elsewhere must not reach a loopback API through a
    /// name of its own).
    check_host: bool,
    max_body: usize,
    request_timeout: Duration,
    metrics: Option<Arc<front::Metrics>>,
    pacer: Arc<events::Pacer>,
    /// Set when the server stops: the events streams end.
    stop: tokio::sync::watch::Receiver<bool>,
}

/// How a server is set up, from `serve`'s flags or `dev`'s defaults.
pub struct Settings {
    pub listen: SocketAddr,
    pub tokens: Vec<secrecy::SecretString>,
    pub no_auth: bool,
    pub max_body: usize,
    pub request_timeout: Duration,
    pub header_timeout: Duration,
    pub max_connections: usize,
    pub allow_origins: Vec<String>,
    pub allow_hosts: Vec<String>,
    pub metrics_address: Option<SocketAddr>,
}

impl Settings {
    /// The defaults of `serve` on `listen` (`dev` and `demo`).
    pub fn local(listen: SocketAddr) -> Self {
        Self {
            listen,
            tokens: Vec::new(),
            no_auth: false,
            max_body: 1024 * 1024,
            request_timeout: Duration::from_secs(30),
            header_timeout: Duration::from_secs(10),
            max_connections: 1024,
            allow_origins: Vec::new(),
            allow_hosts: Vec::new(),
            metrics_address: None,
        }
    }
}

pub async fn run(cx: &Context, args: ServeArgs) -> anyhow::Result<Exit> {
    if args.openapi {
        cx.printer.line(document())?;
        return Ok(Exit::Success);
    }
    let tokens = match &args.api_token_file {
        Some(path) => read_tokens(path, "--api-token-file")?,
        None => Vec::new(),
    };
    let settings = Settings {
        listen: args.listen,
        tokens,
        no_auth: args.no_auth,
        max_body: args.max_body,
        request_timeout: args.request_timeout,
        header_timeout: args.header_timeout,
        max_connections: args.max_connections as usize,
        allow_origins: args.allow_origin,
        allow_hosts: args.allow_host,
        metrics_address: args.metrics_address,
    };
    let config = cx.temporal()?;
    let client = OrderClient::connect(&config).await?;
    let pool = cx.pool().await?;
    let server = Server::bind(settings, config, client, pool).await?;
    cx.printer.note(format!(
        "orderflow serve: {} ({})",
        server.url(),
        server.auth_note()
    ));
    server.run(shutdown_signal()).await;
    cx.printer.note("orderflow serve: stopped");
    Ok(Exit::Success)
}

/// The server of `dev` and `demo`, with `serve`'s defaults: on `listen`,
/// else on 127.0.0.1:8080, or a free loopback port when that is taken.
pub async fn local(
    listen: Option<SocketAddr>,
    config: TemporalConfig,
    client: OrderClient,
    pool: PgPool,
) -> anyhow::Result<Server> {
    let preferred = listen.unwrap_or(SocketAddr::from(([127, 0, 0, 1], 8080)));
    let bound = Server::bind(
        Settings::local(preferred),
        config.clone(),
        client.clone(),
        pool.clone(),
    )
    .await;
    match bound {
        Err(_) if listen.is_none() => {
            let any = SocketAddr::from(([127, 0, 0, 1], 0));
            Server::bind(Settings::local(any), config, client, pool).await
        }
        bound => bound,
    }
}

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
        let listener = bind(settings.listen, "--listen").await?;
        let metrics_listener = match settings.metrics_address {
            Some(address) => Some(bind(address, "--metrics-address").await?),
            None => None,
        };
        let address = listener.local_addr()?;
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let app = App {
            client,
            config,
            pool,
            check_host: settings.tokens.is_empty() && !settings.no_auth,
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
                .then(|| Arc::new(front::Metrics::new())),
            pacer: Arc::default(),
            stop: stopped,
        };
        Ok(Self {
            app,
            listener,
            metrics_listener,
            limits: Limits {
                max_connections: settings.max_connections,
                header_timeout: settings.header_timeout,
                drain: DRAIN,
            },
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
        let tokens = self.app.guard.tokens.len();
        match (tokens, self.app.check_host) {
            (0, true) => "no token: it answers this machine only".to_owned(),
            (0, false) => "no token (--no-auth): it answers anyone who reaches it".to_owned(),
            (1, _) => "a bearer token is required".to_owned(),
            (n, _) => format!("a bearer token is required, one of {n}"),
        }
    }

    /// Answers until `stop` resolves, then stops gracefully: no new
    /// connections, events streams ended, requests in flight finished.
    pub async fn run(self, stop: impl Future<Output = ()>) {
        if let (Some(listener), Some(metrics)) = (self.metrics_listener, self.app.metrics.clone()) {
            tokio::spawn(front::serve_metrics(listener, metrics));
        }
        let router = router(self.app);
        let stopping = self.stop;
        let stop = async move {
            stop.await;
            stopping.send_replace(true);
        };
        listen::serve(self.listener, router, self.limits, stop).await;
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
        .route_layer(axum::middleware::from_fn_with_state(
            app.clone(),
            front::authorize,
        ));
    Router::new()
        .merge(protected)
        .route("/api/openapi.json", get(openapi::serve))
        .route("/healthz", get(front::healthz))
        .route("/readyz", get(front::readyz))
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
