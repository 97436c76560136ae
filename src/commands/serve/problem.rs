//! Errors as the API answers them: the CLI's JSON error (`{"error":
//! {"code", "message", "exitCode"?, "problems"?}}`) with the HTTP status
//! its exit code stands for.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

use crate::exit::Exit;
use crate::input::InputError;
use crate::output::ErrorReport;

/// The longest message an error carries: nothing from a request is
/// echoed unbounded.
const MAX_MESSAGE_CHARS: usize = 1000;

/// The most problems an answer lists; `problemCount` says how many there were.
const MAX_PROBLEMS: usize = 100;

/// The name input problems of a request carry as their file.
pub const REQUEST: &str = "request";

/// Every error the API answers with.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ErrorDetail {
    /// `INVALID_INPUT`, `NOT_FOUND`, `CONFLICT`, `UNAVAILABLE`, `TIMEOUT`,
    /// `INTERNAL` (as the CLI's), or the HTTP layer's own:
    /// `UNAUTHORIZED`, `PAYLOAD_TOO_LARGE`, `UNSUPPORTED_MEDIA_TYPE`,
    /// `METHOD_NOT_ALLOWED`, `MISDIRECTED`.
    pub code: String,
    pub message: String,
    /// The CLI's exit code for the same error, when the CLI has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<u8>,
    /// Every problem of every order, when the input was invalid (the
    /// first 100).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub problems: Option<Vec<InputError>>,
    /// How many problems there were in all, when there were more than listed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub problem_count: Option<usize>,
    /// On a conflict in a batch: every order's record, those started too.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub orders: Option<Vec<crate::commands::order::Submission>>,
    /// The status the order had, when a cancellation was refused.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<crate::domain::OrderStatus>,
}

/// An error response.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    /// Boxed: an error travels in every handler's `Result`.
    pub body: Box<ErrorBody>,
}

impl ApiError {
    /// An error of the HTTP layer itself.
    pub fn http(status: StatusCode, code: &str, message: impl Into<String>) -> Self {
        Self {
            status,
            body: Box::new(ErrorBody {
                error: ErrorDetail {
                    code: code.to_owned(),
                    message: bounded(message.into()),
                    exit_code: None,
                    problems: None,
                    problem_count: None,
                    orders: None,
                    status: None,
                },
            }),
        }
    }

    /// An error as the CLI reports it, with the status its exit code
    /// stands for.
    pub fn from_report(report: ErrorReport, problems: Option<Vec<InputError>>) -> Self {
        let status = status_of(report.exit);
        let problem_count = problems
            .as_ref()
            .map(Vec::len)
            .filter(|n| *n > MAX_PROBLEMS);
        let problems = problems.map(|mut p| {
            p.truncate(MAX_PROBLEMS);
            p
        });
        Self {
            status,
            body: Box::new(ErrorBody {
                error: ErrorDetail {
                    code: report.exit.error_code().to_owned(),
                    message: bounded(report.message),
                    exit_code: Some(report.exit.code()),
                    problems,
                    problem_count,
                    orders: None,
                    status: None,
                },
            }),
        }
    }

    /// A request's own field breaks its rule (422, as a bad order's would).
    pub fn field(field: &str, message: impl Into<String>) -> Self {
        Self::from(anyhow::Error::from(crate::input::InvalidInput::from(
            InputError {
                source_name: REQUEST.to_owned(),
                item: None,
                field: Some(field.to_owned()),
                message: message.into(),
            },
        )))
    }

    pub fn with_status(mut self, status: crate::domain::OrderStatus) -> Self {
        self.body.error.status = Some(status);
        self
    }
}

impl From<anyhow::Error> for ApiError {
    fn from(error: anyhow::Error) -> Self {
        let report = crate::commands::report(&error);
        if report.exit == Exit::Failure {
            tracing::error!("answering 500: {}", report.message);
        }
        let problems = error
            .chain()
            .find_map(|c| c.downcast_ref::<crate::input::InvalidInput>())
            .map(|invalid| invalid.problems().to_vec());
        Self::from_report(report, problems)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (self.status, Json(*self.body)).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

/// The HTTP status an exit code stands for.
pub fn status_of(exit: Exit) -> StatusCode {
    match exit {
        Exit::Success => StatusCode::OK,
        Exit::Usage => StatusCode::UNPROCESSABLE_ENTITY,
        Exit::NotFound => StatusCode::NOT_FOUND,
        Exit::Conflict => StatusCode::CONFLICT,
        Exit::Timeout => StatusCode::GATEWAY_TIMEOUT,
        Exit::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        Exit::Interrupted => StatusCode::SERVICE_UNAVAILABLE,
        Exit::Failure | Exit::OrderFailed | Exit::OrderCancelled | Exit::ProblemsFound => {
            StatusCode::INTERNAL_SERVER_ERROR
        }
    }
}

/// `message`, cut at [`MAX_MESSAGE_CHARS`].
fn bounded(message: String) -> String {
    match message.char_indices().nth(MAX_MESSAGE_CHARS) {
        None => message,
        Some((at, _)) => format!("{}…", &message[..at]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_map_to_statuses() {
        assert_eq!(status_of(Exit::Usage), StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(status_of(Exit::NotFound), StatusCode::NOT_FOUND);
        assert_eq!(status_of(Exit::Conflict), StatusCode::CONFLICT);
        assert_eq!(
            status_of(Exit::Unavailable),
            StatusCode::SERVICE_UNAVAILABLE
        );
    }

    #[test]
    fn long_messages_are_cut() {
        let long = "x".repeat(5000);
        let e = ApiError::http(StatusCode::BAD_REQUEST, "BAD", long);
        assert_eq!(e.body.error.message.chars().count(), MAX_MESSAGE_CHARS + 1);
    }
}
