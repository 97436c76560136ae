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
#[error(
    "cannot connect to PostgreSQL at {target}: {reason}\n\
     hint: is the server running and the URL right? Set --database-url or DATABASE_URL, \
     or run `orderflow dev` for a local one"
)]
pub struct ConnectError {
    pub target: String,
    pub reason: String,
}

/// Opens a pool and proves it with one connection, within the connect timeout.
pub async fn connect(
    config: &DatabaseConfig,
    max_connections: u32,
) -> Result<PgPool, ConnectError> {
    let fail = |reason: String| ConnectError {
        target: config.redacted(),
        reason,
    };
    let options: PgConnectOptions = config
        .url()
        .parse()
        .map_err(|e: sqlx::Error| fail(format!("invalid database URL: {}", redact_error(&e))))?;
    let options = options.application_name("orderflow");
    // No ping before each checkout: it is a round trip per statement for
    // PostgreSQL to wake for. A connection that died fails its statement,
    // and every caller retries (activities) or reports it.
    let pool = PgPoolOptions::new()
        .max_connections(max_connections)
        .test_before_acquire(false)
        .acquire_timeout(config.connect_timeout)
        .connect_with(options);
    match tokio::time::timeout(config.connect_timeout, pool).await {
        Ok(Ok(pool)) => Ok(pool),
        Ok(Err(e)) => Err(fail(redact_error(&e))),
        Err(_) => Err(fail(format!(
            "no answer within {}",
            humantime::format_duration(config.connect_timeout)
        ))),
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
