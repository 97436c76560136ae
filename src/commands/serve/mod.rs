//! `orderflow serve`: the order API and the order page over HTTP, on the
//! CLI's rules (`order create`, `status`, `list`, `cancel`, `watch -o
//! jsonl` and `product list`, through the same code), until SIGINT or
//! SIGTERM. It starts no worker.
//!
//! | file | what |
//! |---|---|
//! | `app.rs` | what the handlers share; the settings |
//! | `server.rs` | binding, the routes, answering until stopped |
//! | `front.rs` | what every request passes: `Host`, Origin, token, time limit, headers, access log |
//! | `api.rs` | the order and product handlers |
//! | `events.rs` | orders' changes as Server-Sent Events |
//! | `health.rs` | `/healthz`, `/readyz` |
//! | `metrics.rs` | requests by route and status, for Prometheus |
//! | `openapi.rs` | the OpenAPI document, generated from the handlers |
//! | `page.rs` | the order page (`page/`, embedded) |
//! | `problem.rs` | errors as the CLI's JSON errors, with their HTTP status |
//! | `request.rs` | what a request says: its order ID, JSON body, idempotency key |

mod api;
mod app;
mod events;
mod front;
mod health;
mod metrics;
mod openapi;
mod page;
mod problem;
mod request;
mod server;

pub use app::Settings;
pub use openapi::document;
pub use server::Server;

use std::net::SocketAddr;

use sqlx::PgPool;

use super::Context;
use crate::cli::ServeArgs;
use crate::exit::Exit;
use crate::temporal::TemporalConfig;
use crate::temporal::client::OrderClient;
use crate::web::guard::read_tokens;
use crate::worker::shutdown_signals;

/// Connections to PostgreSQL one server keeps.
const POOL: u32 = 16;

pub async fn run(cx: &Context, args: ServeArgs) -> anyhow::Result<Exit> {
    if args.openapi {
        cx.printer.line(document())?;
        return Ok(Exit::Success);
    }
    // Heard from now on: a SIGTERM while it connects is a stop, not a kill.
    let (stop, force) = shutdown_signals();
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
    let database = cx.database()?;
    let pool = crate::db::connect(&database, POOL).await?;
    super::require_schema(&pool, &database).await?;
    let server = Server::bind(settings, config, client, pool).await?;
    cx.printer.note(format!(
        "orderflow serve: {} ({})",
        server.url(),
        server.auth_note()
    ));
    server.run(stop, force).await;
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
