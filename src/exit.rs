//! The exit codes of SPEC §6, in one place, and how an error maps to one.

use std::process::ExitCode;

/// What the process tells its caller. The numbers are a contract with scripts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Exit {
    /// Success; for `watch`: every order `COMPLETED`; for `cancel`: `CANCELLED`.
    Success,
    /// An unexpected error.
    Failure,
    /// Invalid usage or invalid input (bad flags, bad order file).
    Usage,
    /// The order does not exist.
    NotFound,
    /// An order ended `FAILED`.
    OrderFailed,
    /// An order ended `CANCELLED` (for `watch`).
    OrderCancelled,
    /// Refused: the order already completed or failed, or an existing ID was
    /// resubmitted with different content.
    Conflict,
    /// `--timeout` elapsed.
    Timeout,
    /// Temporal or the database is unreachable.
    Unavailable,
    /// Interrupted (Ctrl-C).
    Interrupted,
}

impl Exit {
    pub fn code(self) -> u8 {
        match self {
            Self::Success => 0,
            Self::Failure => 1,
            Self::Usage => 2,
            Self::NotFound => 3,
            Self::OrderFailed => 4,
            Self::OrderCancelled => 5,
            Self::Conflict => 6,
            Self::Timeout => 7,
            Self::Unavailable => 8,
            Self::Interrupted => 130,
        }
    }

    /// The `error.code` of a JSON error on stderr.
    pub fn error_code(self) -> &'static str {
        match self {
            Self::Success => "OK",
            Self::Failure => "INTERNAL",
            Self::Usage => "INVALID_INPUT",
            Self::NotFound => "NOT_FOUND",
            Self::OrderFailed => "ORDER_FAILED",
            Self::OrderCancelled => "ORDER_CANCELLED",
            Self::Conflict => "CONFLICT",
            Self::Timeout => "TIMEOUT",
            Self::Unavailable => "UNAVAILABLE",
            Self::Interrupted => "INTERRUPTED",
        }
    }
}

impl From<Exit> for ExitCode {
    fn from(exit: Exit) -> Self {
        ExitCode::from(exit.code())
    }
}

/// An error whose exit code is decided where it is raised, e.g. "no such
/// order" (3) or "not reachable" (8). Other layers' errors are classified by
/// [`classify`].
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct Fail {
    pub exit: Exit,
    pub message: String,
}

impl Fail {
    pub fn new(exit: Exit, message: impl Into<String>) -> Self {
        Self {
            exit,
            message: message.into(),
        }
    }

    pub fn usage(message: impl Into<String>) -> Self {
        Self::new(Exit::Usage, message)
    }

    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(Exit::Unavailable, message)
    }
}

/// The exit code for an error: the first cause in its chain that knows one.
pub fn classify(error: &anyhow::Error) -> Exit {
    for cause in error.chain() {
        if let Some(fail) = cause.downcast_ref::<Fail>() {
            return fail.exit;
        }
        if let Some(crate::workflow::client::OrderCallError::NotFound(_)) = cause.downcast_ref() {
            return Exit::NotFound;
        }
        if cause.is::<crate::input::InputError>() {
            return Exit::Usage;
        }
        if cause.is::<crate::db::ConnectError>()
            || cause.is::<crate::temporal::ConnectError>()
            || cause.is::<crate::temporal::CredentialError>()
        {
            return Exit::Unavailable;
        }
        if let Some(db) = cause.downcast_ref::<sqlx::Error>()
            && matches!(
                db,
                sqlx::Error::Io(_) | sqlx::Error::PoolTimedOut | sqlx::Error::Tls(_)
            )
        {
            return Exit::Unavailable;
        }
    }
    Exit::Failure
}

#[cfg(test)]
mod tests {
    use super::*;
    use anyhow::Context as _;

    #[test]
    fn codes_match_the_spec() {
        let codes: Vec<u8> = [
            Exit::Success,
            Exit::Failure,
            Exit::Usage,
            Exit::NotFound,
            Exit::OrderFailed,
            Exit::OrderCancelled,
            Exit::Conflict,
            Exit::Timeout,
            Exit::Unavailable,
            Exit::Interrupted,
        ]
        .iter()
        .map(|e| e.code())
        .collect();
        assert_eq!(codes, [0, 1, 2, 3, 4, 5, 6, 7, 8, 130]);
    }

    #[test]
    fn classification_sees_through_context() {
        let err = Err::<(), _>(Fail::new(Exit::NotFound, "no order X"))
            .context("reading status")
            .unwrap_err();
        assert_eq!(classify(&err), Exit::NotFound);
        assert_eq!(classify(&anyhow::anyhow!("boom")), Exit::Failure);
        let io = anyhow::Error::from(sqlx::Error::PoolTimedOut).context("listing products");
        assert_eq!(classify(&io), Exit::Unavailable);
    }
}
