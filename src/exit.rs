//! The exit codes of SPEC §6, in one place: a leaf that knows no other
//! module. Which error gets which code is decided where the error is typed
//! ([`Fail`]) or by the command layer (`commands::exit_code`).

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
    /// `audit` found a broken promise, or `replay` a history this build
    /// cannot replay.
    ProblemsFound,
    /// Interrupted (Ctrl-C).
    Interrupted,
}

impl Exit {
    /// Every exit code, in order.
    pub const ALL: [Exit; 11] = [
        Exit::Success,
        Exit::Failure,
        Exit::Usage,
        Exit::NotFound,
        Exit::OrderFailed,
        Exit::OrderCancelled,
        Exit::Conflict,
        Exit::Timeout,
        Exit::Unavailable,
        Exit::ProblemsFound,
        Exit::Interrupted,
    ];

    /// The process's exit code, and the `error.code` of a JSON error on stderr.
    fn spec(self) -> (u8, &'static str) {
        match self {
            Self::Success => (0, "OK"),
            Self::Failure => (1, "INTERNAL"),
            Self::Usage => (2, "INVALID_INPUT"),
            Self::NotFound => (3, "NOT_FOUND"),
            Self::OrderFailed => (4, "ORDER_FAILED"),
            Self::OrderCancelled => (5, "ORDER_CANCELLED"),
            Self::Conflict => (6, "CONFLICT"),
            Self::Timeout => (7, "TIMEOUT"),
            Self::Unavailable => (8, "UNAVAILABLE"),
            Self::ProblemsFound => (9, "PROBLEMS_FOUND"),
            Self::Interrupted => (130, "INTERRUPTED"),
        }
    }

    pub fn code(self) -> u8 {
        self.spec().0
    }

    pub fn error_code(self) -> &'static str {
        self.spec().1
    }
}

impl From<Exit> for ExitCode {
    fn from(exit: Exit) -> Self {
        ExitCode::from(exit.code())
    }
}

/// An error whose exit code is decided where it is raised, e.g. "no such
/// order" (3) or "not reachable" (8). Other layers' errors are classified at
/// the command layer (`commands::exit_code`).
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
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_match_the_spec() {
        let codes: Vec<u8> = Exit::ALL.iter().map(|e| e.code()).collect();
        // SPEC §6, and 9 (`audit` found problems), added by issue #28.
        assert_eq!(codes, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 130]);
    }
}
