//! The domain services the workflow's activities call: real, on PostgreSQL.
//!
//! Each effect is idempotent — keyed by the order (and kind) in the
//! database — so a retried, replayed or re-executed activity never reserves,
//! charges, refunds or notifies twice.

pub mod inventory;
pub mod notification;
pub mod orders;
pub mod payment;
pub mod transitions;

use crate::domain::FailureCode;

/// What a service call can end in besides success.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// A business outcome that retrying cannot change (out of stock, declined…).
    #[error("{message}")]
    Business { code: FailureCode, message: String },
    /// Trouble that may pass and counts as an attempt: the payment gateway
    /// did not answer, a webhook refused the notice, the database refused a
    /// statement.
    #[error("{}", crate::errors::text(.0.as_ref()))]
    Transient(anyhow::Error),
    /// A dependency is down (the database cannot be reached, a connection
    /// died, the schema changed under us): not the order's fault, so it is
    /// retried until the dependency answers and never counts as an attempt.
    #[error("{}", crate::errors::text(.0.as_ref()))]
    Unavailable(anyhow::Error),
}

impl ServiceError {
    pub fn business(code: FailureCode, message: impl Into<String>) -> Self {
        Self::Business {
            code,
            message: message.into(),
        }
    }
}

impl From<sqlx::Error> for ServiceError {
    fn from(error: sqlx::Error) -> Self {
        let unavailable = crate::db::is_outage(&error);
        let error = anyhow::Error::new(error).context("database");
        if unavailable {
            Self::Unavailable(error)
        } else {
            Self::Transient(error)
        }
    }
}
