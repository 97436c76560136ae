//! PostgreSQL: the pool, the embedded migrations, and one file per table group.

pub mod migrations;
pub mod orders;
pub mod pool;
pub mod products;

use sqlx::PgPool;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

use crate::config::DatabaseConfig;

/// The schema, embedded in the binary from `migrations/`.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// PostgreSQL could not be reached or refused us (exit 8).
#[derive(Debug, thiserror::Error)]
#[error("cannot connect to PostgreSQL at {target}: {reason}\nhint: {hint}")]
pub struct ConnectError {
    pub target: String,
    pub reason: String,
    /// What to do about it.
    pub hint: &'static str,
    /// The server did not answer or is not up (refused, no answer, shutting
    /// down): waiting may help. Not for a bad URL, password or database name.
    pub outage: bool,
}

/// The database lacks orderflow's schema, or some of it (exit 2: a setup
/// the command cannot use, like a missing `--database-url`).
#[derive(Debug, thiserror::Error)]
#[error("the database {target} {state}: run `orderflow db migrate` (with the same database URL)")]
pub struct SchemaError {
    pub target: String,
    pub state: String,
}

/// `None` when every migration this binary knows is applied; else what is
/// missing, as a [`SchemaError`] for the database named `target`.
pub async fn check_schema(pool: &PgPool, target: &str) -> Result<Option<SchemaError>, sqlx::Error> {
    let all = migrations::status(pool).await?;
    let pending = all
        .iter()
        .filter(|m| m.state == migrations::State::Pending)
        .count();
    let state = match pending {
        0 => return Ok(None),
        n if n == all.len() => "has no orderflow schema".to_owned(),
        n => format!(
            "is behind: {}",
            crate::errors::count(n, "pending migration")
        ),
    };
    Ok(Some(SchemaError {
        target: target.to_owned(),
        state,
    }))
}

/// Opens a pool and proves it with one connection, within the connect timeout.
pub async fn connect(
    config: &DatabaseConfig,
    max_connections: u32,
) -> Result<PgPool, ConnectError> {
    let fail = |reason: String| ConnectError {
        target: config.redacted(),
        reason,
        hint: "is the server running and the URL right? Set --database-url or DATABASE_URL, \
               or run `orderflow dev` for a local one",
        outage: false,
    };
    let down = |reason: String| ConnectError {
        outage: true,
        ..fail(reason)
    };
    let options: PgConnectOptions = config
        .url()
        .parse()
        .map_err(|e: sqlx::Error| fail(format!("invalid database URL: {}", redact_error(&e))))?;
    let options = options.application_name("orderflow");
    tracing::info!(
        "connecting to PostgreSQL at {} (connect timeout {})",
        config.redacted(),
        humantime::format_duration(config.connect_timeout)
    );
    let deadline = tokio::time::Instant::now() + config.connect_timeout;
    let no_answer = || {
        down(format!(
            "no answer within {}",
            humantime::format_duration(config.connect_timeout)
        ))
    };
    // sqlx's pool takes a refused connection for a server starting up and
    // retries it until the timeout, then says only "timed out": one plain
    // TCP connection first tells a refusal at once.
    match tokio::time::timeout_at(deadline, refused(&options)).await {
        Err(_) => return Err(no_answer()),
        Ok(Some(why)) => return Err(down(why)),
        Ok(None) => {}
    }
    // No ping before each checkout: it is a round trip per statement for
    // PostgreSQL to wake for. A connection that died fails its statement,
    // and every caller retries (activities) or reports it.
    let pool = PgPoolOptions::new()
        .max_connections(max_connections)
        .test_before_acquire(false)
        .acquire_timeout(config.connect_timeout)
        .connect_with(options);
    match tokio::time::timeout_at(deadline, pool).await {
        Ok(Ok(pool)) => Ok(pool),
        Ok(Err(e)) if is_outage(&e) => Err(down(redact_error(&e))),
        Ok(Err(e)) => Err(fail(redact_error(&e))),
        Err(_) => Err(no_answer()),
    }
}

/// Why nothing can answer, said at once: a TCP connection refused at
/// `host:port` (nothing listens), or a Unix socket that does not exist
/// (named: `localhost:5432 … No such file or directory` told nobody which
/// file). `None` when something may answer.
async fn refused(options: &PgConnectOptions) -> Option<String> {
    let host = options.get_host();
    let port = options.get_port();
    let socket_dir = match options.get_socket() {
        Some(dir) => Some(dir.to_path_buf()),
        None if host.starts_with('/') => Some(std::path::PathBuf::from(host)),
        None => None,
    };
    if let Some(dir) = socket_dir {
        let socket = dir.join(format!(".s.PGSQL.{port}"));
        return (!socket.exists()).then(|| {
            format!(
                "its Unix socket {} does not exist: no PostgreSQL runs there",
                socket.display()
            )
        });
    }
    match tokio::net::TcpStream::connect((host, port)).await {
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
            Some(format!("connection refused at {host}:{port}"))
        }
        _ => None,
    }
}

/// True when a statement failed because PostgreSQL could not serve it, not
/// because of what it asked: the server is unreachable or shutting down, the
/// connection died, the pool had none to give, a transaction lost a
/// deadlock or a lock wait, or the schema changed under a prepared
/// statement. Such errors pass once the database is back; callers wait for
/// them instead of counting them against an order.
pub fn is_outage(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::Database(e) => {
            e.code().is_some_and(|code| {
                // 08 connection, 40 rollback (deadlock, serialization), 53
                // resources, 57 operator intervention (shutdown, terminated),
                // 58 system error; 55P03: lock not available.
                matches!(code.get(..2), Some("08" | "40" | "53" | "57" | "58")) || code == "55P03"
            }) || is_stale_schema(error)
        }
        sqlx::Error::Protocol(_) => true,
        other => is_unreachable(other),
    }
}

/// True when PostgreSQL could not be reached at all: no connection, a
/// dropped one, TLS that failed, no connection free in time. The one
/// place that decides it (exit 8 for a command; an outage for a step).
pub fn is_unreachable(error: &sqlx::Error) -> bool {
    matches!(
        error,
        sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
            | sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::WorkerCrashed
    )
}

/// True when a statement failed because the schema changed since its
/// connection prepared it (`db migrate`, `db reset`): a cached plan whose
/// result type changed, or a table, column, type or function it named that
/// is gone or not yet back. A fresh connection prepares it anew.
pub fn is_stale_schema(error: &sqlx::Error) -> bool {
    let sqlx::Error::Database(e) = error else {
        return false;
    };
    match e.code().as_deref() {
        // undefined table, column, object (type); prepared statement gone.
        Some("42P01" | "42703" | "42704" | "26000") => true,
        // undefined function (not an operator: that is a bug in the SQL).
        Some("42883") => e.message().contains("function"),
        // feature_not_supported: "cached plan must not change result type".
        Some("0A000") => e.message().contains("cached plan"),
        _ => false,
    }
}

/// sqlx errors never contain the password, but keep only the useful part.
fn redact_error(error: &sqlx::Error) -> String {
    match error {
        sqlx::Error::Database(db) => db.message().to_owned(),
        sqlx::Error::PoolTimedOut => "timed out waiting for a connection".into(),
        other => other.to_string(),
    }
}
