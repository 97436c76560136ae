//! Applying, listing and resetting the embedded migrations.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::{PgPool, Row};

use super::MIGRATOR;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    Applied,
    Pending,
}

/// One migration and whether this database has it (`db status`).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MigrationStatus {
    pub version: i64,
    pub description: String,
    pub state: State,
    pub applied_at: Option<DateTime<Utc>>,
}

/// Every embedded migration with its state, oldest first.
pub async fn status(pool: &PgPool) -> Result<Vec<MigrationStatus>, sqlx::Error> {
    let exists: bool = sqlx::query_scalar("SELECT to_regclass('_sqlx_migrations') IS NOT NULL")
        .fetch_one(pool)
        .await?;
    let applied: Vec<(i64, DateTime<Utc>)> = if exists {
        sqlx::query(
            "SELECT version, installed_on FROM _sqlx_migrations WHERE success ORDER BY version",
        )
        .fetch_all(pool)
        .await?
        .iter()
        .map(|r| Ok((r.try_get("version")?, r.try_get("installed_on")?)))
        .collect::<Result<_, sqlx::Error>>()?
    } else {
        Vec::new()
    };
    Ok(MIGRATOR
        .iter()
        .filter(|m| !m.migration_type.is_down_migration())
        .map(|m| {
            let applied_at = applied
                .iter()
                .find(|(v, _)| *v == m.version)
                .map(|(_, at)| *at);
            MigrationStatus {
                version: m.version,
                description: m.description.to_string(),
                state: if applied_at.is_some() {
                    State::Applied
                } else {
                    State::Pending
                },
                applied_at,
            }
        })
        .collect())
}

/// Applies what is pending; returns what this call applied (empty: up to date).
pub async fn migrate(pool: &PgPool) -> Result<Vec<MigrationStatus>, sqlx::migrate::MigrateError> {
    let before = status(pool).await?;
    MIGRATOR.run(pool).await?;
    let after = status(pool).await?;
    Ok(after
        .into_iter()
        .filter(|m| {
            before
                .iter()
                .any(|b| b.version == m.version && b.state == State::Pending)
        })
        .collect())
}

/// Drops everything in the `public` schema — orderflow expects a database of
/// its own — and re-applies every migration.
pub async fn reset(pool: &PgPool) -> Result<Vec<MigrationStatus>, sqlx::migrate::MigrateError> {
    let mut tx = pool.begin().await?;
    sqlx::query("DROP SCHEMA public CASCADE")
        .execute(&mut *tx)
        .await?;
    sqlx::query("CREATE SCHEMA public")
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    migrate(pool).await
}
