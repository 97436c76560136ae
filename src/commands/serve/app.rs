//! What the handlers share, and how a server is set up.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sqlx::PgPool;

use crate::temporal::TemporalConfig;
use crate::temporal::client::OrderClient;
use crate::web::guard::Guard;

/// The state every handler gets.
#[derive(Clone)]
pub struct App {
    pub client: OrderClient,
    pub config: TemporalConfig,
    pub pool: PgPool,
    pub guard: Arc<Guard>,
    pub max_body: usize,
    pub request_timeout: Duration,
    pub metrics: Option<Arc<super::metrics::Metrics>>,
    pub pacer: Arc<Pacer>,
    /// Set when the server stops: the events streams end.
    pub stop: tokio::sync::watch::Receiver<bool>,
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

/// Live-state queries per second for all streams together: each is a
/// workflow task on a worker, and a thousand watchers must not slow the
/// orders they watch. Endings do not wait for a query: each stream
/// long-polls its order's result.
const QUERIES_PER_SECOND: u32 = 64;

/// Spaces the queries of every stream of one server evenly.
pub struct Pacer {
    next: Mutex<Instant>,
    spacing: Duration,
}

impl Default for Pacer {
    fn default() -> Self {
        Self {
            next: Mutex::new(Instant::now()),
            spacing: Duration::from_secs(1) / QUERIES_PER_SECOND,
        }
    }
}

impl Pacer {
    /// Waits for this caller's turn.
    pub async fn turn(&self) {
        let at = {
            let mut next = self.next.lock().unwrap_or_else(|e| e.into_inner());
            let at = (*next).max(Instant::now());
            *next = at + self.spacing;
            at
        };
        tokio::time::sleep_until(at.into()).await;
    }
}
