//! The local stack of `orderflow dev` and `orderflow demo`: use what is
//! reachable, start what is not, apply the schema and load the catalog.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context as _;
use serde::Serialize;
use sqlx::PgPool;

use super::codec::LocalCodec;
use super::postgres::PostgresCluster;
use super::temporal_server::{DevServerOptions, TemporalDevServer};
use crate::config::DatabaseConfig;
use crate::exit::{Exit, Fail};
use crate::temporal::{DEFAULT_TASK_QUEUE, TemporalConfig, TemporalSettings};

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
    /// Where the stack keeps its state (`dev`); `None`: nothing is kept.
    pub data_dir: Option<PathBuf>,
    /// `--encrypt`: the key file payloads are encrypted with.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub encryption_key_file: Option<PathBuf>,
    /// `--encrypt`: the codec server the Web UI decodes payloads through.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub codec_endpoint: Option<String>,
    /// The order page and API (`orderflow serve`) the command runs, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub api_url: Option<String>,
    /// What `dev --fresh` deleted before it started.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub deleted: Vec<String>,
}

impl StackInfo {
    /// The `export` lines that point another terminal at this stack.
    pub fn exports(&self) -> String {
        let mut text = format!("  export TEMPORAL_ADDRESS={}\n", self.temporal_address);
        if self.namespace != "default" {
            text += &format!("  export TEMPORAL_NAMESPACE={}\n", self.namespace);
        }
        text += &format!("  export ORDERFLOW_TASK_QUEUE={}\n", self.task_queue);
        if self.started.contains(&"postgres") {
            text += &format!("  export DATABASE_URL={}\n", self.database_url);
        } else {
            text += "  export DATABASE_URL=…   # the same database as here\n";
        }
        if let Some(ui) = &self.ui_url {
            text += &format!("  export ORDERFLOW_UI_URL={ui}\n");
        }
        if let Some(keys) = &self.encryption_key_file {
            text += &format!(
                "  export ORDERFLOW_ENCRYPTION_KEY_FILE={}\n",
                keys.display()
            );
        }
        text
    }

    /// Says which Temporal server the stack reuses, and on which task
    /// queue, when it did not start its own.
    pub fn reuse_note(&self) -> Option<String> {
        (!self.started.contains(&"temporal")).then(|| {
            format!(
                "reusing the Temporal server already at {} (namespace {}); this stack's worker polls task queue {}",
                self.temporal_address, self.namespace, self.task_queue
            )
        })
    }
}

/// How a local stack is set up.
#[derive(Debug, Clone, Default)]
pub struct StackOptions {
    /// Who it is for ("dev", "demo", "bench"): names its own task queue.
    pub role: &'static str,
    /// Keep the state of what it starts here (`dev`): Temporal's in
    /// `temporal.db`, PostgreSQL's under `postgres/`. `None`: Temporal in
    /// memory, PostgreSQL thrown away.
    pub data_dir: Option<PathBuf>,
    /// Start a Temporal dev server on this port rather than use the one
    /// that answers at the configured or default address.
    pub port: Option<u16>,
    /// Its Web UI on this port (else 8233 when free, else any).
    pub ui_port: Option<u16>,
    /// Encrypt payloads (`--encrypt`): with the configured key file, else
    /// one kept in `data_dir`, else a throwaway one; and serve the codec
    /// protocol for the Web UI.
    pub encrypt: bool,
}

pub struct LocalStack {
    pub temporal: TemporalConfig,
    pub database: DatabaseConfig,
    pub pool: PgPool,
    pub info: StackInfo,
    /// `--encrypt`: the keys (a throwaway file lives as long as the stack).
    _codec: Option<LocalCodec>,
    // Dropped (stopped) in this order: the database after Temporal.
    temporal_server: Option<TemporalDevServer>,
    postgres: Option<PostgresCluster>,
}

impl LocalStack {
    /// The PostgreSQL this stack started (its process tree's root).
    pub fn postgres_pid(&self) -> Option<u32> {
        self.postgres.as_ref().map(PostgresCluster::pid)
    }

    /// The Temporal dev server this stack started (its process tree's root).
    pub fn temporal_pid(&self) -> Option<u32> {
        self.temporal_server.as_ref().map(TemporalDevServer::pid)
    }
}

/// Where `orderflow dev` keeps its state: `--data-dir`, else the user's
/// data directory (`~/.local/share/orderflow`).
pub fn default_data_dir() -> PathBuf {
    dirs::data_dir()
        .unwrap_or_else(std::env::temp_dir)
        .join("orderflow")
}

/// A short name for `data_dir`, stable across runs and builds (FNV-1a).
fn dir_hash(data_dir: &Path) -> String {
    let dir = data_dir
        .canonicalize()
        .unwrap_or_else(|_| data_dir.to_owned());
    let hash = dir
        .as_os_str()
        .as_encoded_bytes()
        .iter()
        .fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
            (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
        });
    format!("{:08x}", hash as u32)
}

/// The task queue of a stack that shares a server it did not start: its
/// own, so that no other stack's worker takes its orders. Stable for a
/// data directory (orders left pending across a restart are picked up
/// again), else unique to this process.
fn own_task_queue(role: &str, data_dir: Option<&Path>) -> String {
    match data_dir {
        Some(dir) => format!("{DEFAULT_TASK_QUEUE}-{role}-{}", dir_hash(dir)),
        None => format!("{DEFAULT_TASK_QUEUE}-{role}-{}", std::process::id()),
    }
}

/// Where the stack of `data_dir` keeps its PostgreSQL cluster: beside
/// Temporal's state, in `postgres/`. But PostgreSQL refuses to run as
/// root, and when we are root and its account cannot reach `data_dir`
/// (under /root, say), in /var/lib/orderflow, named after `data_dir`.
pub fn postgres_dir(data_dir: &Path) -> PathBuf {
    if super::running_as_root() && !super::postgres::service_user_reaches(data_dir) {
        Path::new("/var/lib/orderflow").join(format!("dev-{}", dir_hash(data_dir)))
    } else {
        data_dir.join("postgres")
    }
}

/// Nothing may share a data directory with a stack that runs from it: its
/// PostgreSQL holds `postmaster.pid` while it runs.
pub fn refuse_if_in_use(data_dir: &Path) -> anyhow::Result<()> {
    let pid_file = postgres_dir(data_dir).join("data").join("postmaster.pid");
    let pid = std::fs::read_to_string(&pid_file).ok().and_then(|text| {
        text.lines()
            .next()
            .and_then(|l| l.trim().parse::<u32>().ok())
    });
    if let Some(pid) = pid.filter(|pid| Path::new(&format!("/proc/{pid}")).exists()) {
        return Err(Fail::new(
            Exit::Usage,
            format!(
                "another `orderflow dev` runs from {} (its PostgreSQL is process {pid})\n\
                 hint: use that one (its settings are in its terminal), stop it with Ctrl-C, \
                 or start a second stack with --data-dir DIR",
                data_dir.display()
            ),
        )
        .into());
    }
    Ok(())
}

/// The directory of the `orderflow dev` cluster whose Unix socket
/// `database` goes through, if it is one (its `port` file and `data/`
/// there), running or not.
fn dev_cluster(database: &DatabaseConfig) -> Option<PathBuf> {
    let url = url::Url::parse(database.url()).ok()?;
    let dir = url
        .query_pairs()
        .find(|(key, _)| key == "host")
        .map(|(_, value)| PathBuf::from(value.as_ref()))?;
    (dir.join("port").exists() || dir.join("data").join("PG_VERSION").exists()).then_some(dir)
}

/// Whether `database` goes through the Unix socket of a cluster in `dir`.
fn names_cluster_in(database: &DatabaseConfig, dir: Option<&Path>) -> bool {
    let Some(dir) = dir else { return false };
    url::Url::parse(database.url()).is_ok_and(|url| {
        url.query_pairs()
            .any(|(key, value)| key == "host" && Path::new(value.as_ref()) == dir)
    })
}

impl LocalStack {
    /// Uses the Temporal server `settings` name, or the default when it
    /// answers, else starts one (always, on `options.port`); uses the
    /// database `database_url` names, else starts one.
    pub async fn start(
        settings: &TemporalSettings,
        database_url: Option<&str>,
        options: &StackOptions,
    ) -> anyhow::Result<Self> {
        let mut started = Vec::new();
        if let Some(dir) = &options.data_dir {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
            refuse_if_in_use(dir)?;
        }
        let postgres_dir = options.data_dir.as_deref().map(postgres_dir);

        let mut codec = match options.encrypt {
            true => Some(
                LocalCodec::prepare(
                    settings.encryption_key_file.as_deref(),
                    options.data_dir.as_deref(),
                )
                .await?,
            ),
            false => None,
        };

        // Temporal: the configured one, or the default when it answers, or our own.
        let mut temporal = TemporalConfig::resolve(settings)?;
        let mut probe = temporal.clone();
        probe.connect_timeout = Duration::from_secs(2);
        let mut temporal_server = None;
        if options.port.is_some() || crate::temporal::connect(&probe).await.is_err() {
            if options.port.is_none()
                && settings.names_a_server()
                && let Err(e) = crate::temporal::connect(&temporal).await
            {
                if !e.passes() {
                    return Err(e.into());
                }
                return Err(Fail::new(
                    Exit::Unavailable,
                    format!(
                        "cannot reach the Temporal server at {} to reuse: {}\n\
                         hint: a local stack uses a server that answers, or starts its own: \
                         drop --address / TEMPORAL_ADDRESS to start one on the default port, \
                         or give --port N (and --ui-port N) to start one there",
                        temporal.address, e.said
                    ),
                )
                .into());
            }
            let state = options.data_dir.as_ref().map(|d| d.join("temporal.db"));
            let logs = options.data_dir.clone().unwrap_or_else(std::env::temp_dir);
            std::fs::create_dir_all(&logs)
                .with_context(|| format!("creating {}", logs.display()))?;
            let server = TemporalDevServer::start(
                &logs,
                DevServerOptions {
                    db_file: state,
                    ui: true,
                    port: options.port,
                    ui_port: options.ui_port,
                    preferred_port: Some(7233),
                    preferred_ui_port: Some(8233),
                    ui_codec_endpoint: codec.as_ref().map(|c| c.endpoint.clone()),
                },
            )
            .await?;
            temporal.address = server.address();
            if temporal.ui_url.is_none() {
                temporal.ui_url = server.ui_url();
            }
            temporal_server = Some(server);
            started.push("temporal");
        } else if settings.task_queue.is_none() {
            temporal.task_queue = own_task_queue(options.role, options.data_dir.as_deref());
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
                // The URL a previous run printed (still exported in this
                // shell) names the cluster kept here: start it again.
                Some(database) if !names_cluster_in(&database, postgres_dir.as_deref()) => {
                    // Another dev stack's cluster (its exports still set in
                    // this shell) is not "yours": say so, and what to unset.
                    if let (Some(own), Some(other)) = (&postgres_dir, dev_cluster(&database)) {
                        return Err(crate::exit::Fail::new(
                            crate::exit::Exit::Usage,
                            format!(
                                "DATABASE_URL names the PostgreSQL of another `orderflow dev` \
                                 stack ({}), not this one's ({}): its exports are still set in \
                                 this shell. Unset them first: unset DATABASE_URL \
                                 TEMPORAL_ADDRESS TEMPORAL_NAMESPACE ORDERFLOW_TASK_QUEUE \
                                 ORDERFLOW_UI_URL ORDERFLOW_ENCRYPTION_KEY_FILE",
                                other.display(),
                                own.display()
                            ),
                        )
                        .into());
                    }
                    database
                }
                _ => {
                    let (dir, throwaway) = match &postgres_dir {
                        Some(dir) => (dir.clone(), false),
                        None => (
                            tempfile::Builder::new()
                                .prefix("orderflow-dev-pg-")
                                .tempdir()
                                .context("creating a directory for PostgreSQL")?
                                .keep(),
                            true,
                        ),
                    };
                    let cluster = PostgresCluster::start_kept(&dir, throwaway).await?;
                    let url = cluster.ensure_database("orderflow").await?;
                    postgres = Some(cluster);
                    started.push("postgres");
                    DatabaseConfig::resolve(Some(&url), settings.connect_timeout)?
                }
            };
        // PostgreSQL shares this machine with the worker and Temporal: a
        // few connections kept busy cost it less CPU per statement than
        // many waking in turn (measured by `orderflow bench`, DOCS.md).
        let pool = match crate::db::connect(&database, LOCAL_POOL_SIZE).await {
            Ok(pool) => pool,
            // The database configured (DATABASE_URL) does not answer: the
            // way out is not "run `orderflow dev`", the command running.
            Err(mut e) if postgres.is_none() => {
                e.hint = "DATABASE_URL (or --database-url) names this database; unset it to let \
                          this command start a PostgreSQL of its own, or start that server";
                return Err(e.into());
            }
            Err(e) => return Err(e.into()),
        };
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
            data_dir: options.data_dir.clone(),
            encryption_key_file: codec.as_ref().map(|c| c.key_file.clone()),
            codec_endpoint: codec.as_ref().map(|c| c.endpoint.clone()),
            api_url: None,
            deleted: Vec::new(),
        };
        if let Some(codec) = &mut codec {
            codec.serve(info.ui_url.as_deref());
            temporal = temporal.encrypted(Some(codec.keys.clone()));
        }
        Ok(Self {
            _codec: codec,
            temporal,
            database,
            pool,
            info,
            temporal_server,
            postgres,
        })
    }

    /// Stops what this stack started (and nothing else), Temporal first.
    /// The services this stack started, to supervise.
    pub fn watched(&self) -> Vec<super::Watched> {
        let mut watched = Vec::new();
        if let Some(server) = &self.temporal_server {
            watched.push(server.watched());
        }
        if let Some(cluster) = &self.postgres {
            watched.push(cluster.watched());
        }
        watched
    }

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
