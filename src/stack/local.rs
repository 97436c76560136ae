//! The local stack of `orderflow dev` and `orderflow demo`: use what is
//! reachable, start what is not, apply the schema and load the catalog.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context as _;
use serde::Serialize;
use sqlx::PgPool;

use super::postgres::PostgresCluster;
use super::temporal_server::{DevServerOptions, TemporalDevServer};
use crate::config::{DatabaseConfig, TemporalConfig, TemporalSettings};

/// Connections in the local stack's pool (its in-process worker's too).
const LOCAL_POOL_SIZE: u32 = 8;

/// The sample catalog, shipped in the binary (also `examples/catalog.json`).
pub const SAMPLE_CATALOG: &str = include_str!("../../examples/catalog.json");

/// What the stack is, for the person (and for scripts: `dev -o json`).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StackInfo {
    pub temporal_address: String,
    pub namespace: String,
    pub task_queue: String,
    pub ui_url: Option<String>,
    /// The full URL when started here; `user@host:port/db` otherwise.
    pub database_url: String,
    /// What this process started (and will stop): "temporal", "postgres".
    pub started: Vec<&'static str>,
    /// Process IDs of what it started (their supervising shells).
    pub pids: Vec<u32>,
}

pub struct LocalStack {
    pub temporal: TemporalConfig,
    pub database: DatabaseConfig,
    pub pool: PgPool,
    pub info: StackInfo,
    // Dropped (stopped) in this order: the database after Temporal.
    temporal_server: Option<TemporalDevServer>,
    postgres: Option<PostgresCluster>,
}

/// Where `orderflow dev` keeps the dev server's state: `--data-dir`, else
/// the user's data directory (`~/.local/share/orderflow`).
pub fn default_data_dir() -> PathBuf {
    dirs::data_dir()
        .unwrap_or_else(std::env::temp_dir)
        .join("orderflow")
}

impl LocalStack {
    /// Uses the Temporal server `settings` name, or the default when it
    /// answers, else starts one; uses the database `database_url` names,
    /// else starts one. `temporal_state`: persist the dev server's state in
    /// this file (in memory when `None`).
    pub async fn start(
        settings: &TemporalSettings,
        database_url: Option<&str>,
        temporal_state: Option<&Path>,
    ) -> anyhow::Result<Self> {
        let mut started = Vec::new();

        // Temporal: the configured one, or the default when it answers, or our own.
        let mut temporal = TemporalConfig::resolve(settings)?;
        let mut probe = temporal.clone();
        probe.connect_timeout = Duration::from_secs(2);
        let mut temporal_server = None;
        if crate::temporal::connect(&probe).await.is_err() {
            if settings.names_a_server() {
                crate::temporal::connect(&temporal).await?;
            }
            if let Some(file) = temporal_state {
                std::fs::create_dir_all(file.parent().unwrap_or(Path::new(".")))
                    .with_context(|| format!("creating {}", file.display()))?;
            }
            let logs = temporal_state
                .and_then(Path::parent)
                .map(Path::to_path_buf)
                .unwrap_or_else(std::env::temp_dir);
            let server = TemporalDevServer::start(
                &logs,
                DevServerOptions {
                    db_file: temporal_state.map(Path::to_path_buf),
                    ui: true,
                    preferred_port: Some(7233),
                    preferred_ui_port: Some(8233),
                },
            )
            .await?;
            temporal.address = server.address();
            if temporal.ui_url.is_none() {
                temporal.ui_url = server.ui_url();
            }
            temporal_server = Some(server);
            started.push("temporal");
        }
        crate::stack::poll(
            "the Temporal namespace",
            Duration::from_secs(30),
            || async { crate::temporal::connect(&temporal).await.ok().map(drop) },
        )
        .await?;

        // PostgreSQL: the configured one (it must answer), or a throwaway cluster.
        let mut postgres = None;
        let database =
            match DatabaseConfig::resolve_optional(database_url, settings.connect_timeout)? {
                Some(database) => database,
                None => {
                    let dir = tempfile::Builder::new()
                        .prefix("orderflow-dev-pg-")
                        .tempdir()
                        .context("creating a directory for PostgreSQL")?
                        .keep();
                    let cluster = PostgresCluster::start(&dir, true).await?;
                    let url = cluster.create_database("orderflow").await?;
                    postgres = Some(cluster);
                    started.push("postgres");
                    DatabaseConfig::resolve(Some(&url), settings.connect_timeout)?
                }
            };
        // PostgreSQL shares this machine with the worker and Temporal: a
        // few connections kept busy cost it less CPU per statement than
        // many waking in turn (measured by `orderflow bench`, DOCS.md).
        let pool = crate::db::connect(&database, LOCAL_POOL_SIZE).await?;
        crate::db::MIGRATOR
            .run(&pool)
            .await
            .context("applying migrations")?;
        let empty: bool = sqlx::query_scalar("SELECT NOT EXISTS (SELECT 1 FROM products)")
            .fetch_one(&pool)
            .await?;
        if empty {
            let source = crate::input::Source::new("examples/catalog.json", SAMPLE_CATALOG);
            let catalog = crate::input::parse_catalog(&source)?;
            crate::db::products::upsert_all(&pool, &catalog)
                .await
                .context("loading the sample catalog")?;
        }

        let info = StackInfo {
            temporal_address: temporal.address.clone(),
            namespace: temporal.namespace.clone(),
            task_queue: temporal.task_queue.clone(),
            ui_url: Some(temporal.ui_base()),
            // Our own cluster has no password; never print the user's.
            database_url: if postgres.is_some() {
                database.url().to_owned()
            } else {
                database.redacted()
            },
            started,
            pids: temporal_server
                .iter()
                .map(|s| s.pid())
                .chain(postgres.iter().map(|p| p.pid()))
                .collect(),
        };
        Ok(Self {
            temporal,
            database,
            pool,
            info,
            temporal_server,
            postgres,
        })
    }

    /// Stops what this stack started (and nothing else), Temporal first.
    pub async fn stop(mut self) {
        self.pool.close().await;
        if let Some(server) = self.temporal_server.take() {
            server.stop();
        }
        if let Some(cluster) = self.postgres.take() {
            cluster.stop();
        }
    }
}
