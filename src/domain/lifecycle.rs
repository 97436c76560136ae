//! An order's life in one place: which status each step reaches, which
//! statuses are terminal (and the same set as SQL), how an order ends
//! early ([`Ending`]), and what its customer is sent ([`Notification`]).
//! The workflow, the history reader and the services all read it here.

use serde::{Deserialize, Serialize};

use super::{Currency, CustomerEmail, FailureCode, Money, OrderId, OrderStatus, Step};

impl Step {
    /// The status an order has once this step succeeded. A confirmation
    /// is not a status of its own: the order is `PAID` until it ends.
    pub fn reaches(self) -> OrderStatus {
        match self {
            Self::CreateOrder => OrderStatus::Created,
            Self::ReserveInventory => OrderStatus::InventoryReserved,
            Self::ProcessPayment | Self::SendNotification => OrderStatus::Paid,
        }
    }
}

impl OrderStatus {
    /// `COMPLETED`, `CANCELLED` or `FAILED`: nothing more is done for the order.
    pub fn is_terminal(self) -> bool {
        matches!(self, Self::Completed | Self::Cancelled | Self::Failed)
    }

    /// How far along an order with this status is: `PENDING` 0,
    /// `CREATED` 1, `INVENTORY_RESERVED` 2, `PAID` 3, ended 4.
    pub fn progress(self) -> u8 {
        match self {
            Self::Pending => 0,
            Self::Created => 1,
            Self::InventoryReserved => 2,
            Self::Paid => 3,
            Self::Completed | Self::Cancelled | Self::Failed => 4,
        }
    }

    /// Whether a status as the database writes it is terminal.
    pub fn is_terminal_text(status: &str) -> bool {
        status.parse::<Self>().is_ok_and(Self::is_terminal)
    }
}

/// The terminal statuses as an SQL list, for `status [NOT] IN …` in the
/// services' statements: the set [`OrderStatus::is_terminal`] names
/// (tested). A macro, so statements can be `concat!`-ed constants.
#[macro_export]
macro_rules! terminal_statuses_sql {
    () => {
        "('FAILED', 'CANCELLED', 'COMPLETED')"
    };
}

/// How an order ends early, at the step it had reached (`None`: before
/// the first). Recorded in histories as `{"status", "step", "failure":
/// [code, message], "cancelReason"}`, as it was when this was a struct.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(into = "EndingRecord", try_from = "EndingRecord")]
pub enum Ending {
    Failed {
        step: Option<Step>,
        code: FailureCode,
        message: String,
    },
    Cancelled {
        step: Option<Step>,
        /// `None`: none was recorded (the database keeps an earlier one).
        reason: Option<String>,
    },
}

impl Ending {
    pub fn status(&self) -> OrderStatus {
        match self {
            Self::Failed { .. } => OrderStatus::Failed,
            Self::Cancelled { .. } => OrderStatus::Cancelled,
        }
    }

    pub fn step(&self) -> Option<Step> {
        match self {
            Self::Failed { step, .. } | Self::Cancelled { step, .. } => *step,
        }
    }

    /// A failed order's code and message.
    pub fn failure(&self) -> Option<(FailureCode, &str)> {
        match self {
            Self::Failed { code, message, .. } => Some((*code, message)),
            Self::Cancelled { .. } => None,
        }
    }

    /// A cancelled order's reason.
    pub fn cancel_reason(&self) -> Option<&str> {
        match self {
            Self::Cancelled { reason, .. } => reason.as_deref(),
            Self::Failed { .. } => None,
        }
    }

    /// The same ending at another step.
    pub fn at(mut self, at: Option<Step>) -> Self {
        match &mut self {
            Self::Failed { step, .. } | Self::Cancelled { step, .. } => *step = at,
        }
        self
    }

    /// The ending a database row holds: `FAILED` with its code (the schema
    /// requires one), or `CANCELLED`.
    pub fn from_row(
        status: OrderStatus,
        step: Option<Step>,
        failure: Option<(FailureCode, String)>,
        cancel_reason: Option<String>,
    ) -> Result<Self, String> {
        EndingRecord {
            status,
            step,
            failure,
            cancel_reason,
        }
        .try_into()
    }
}

/// An [`Ending`] as recorded.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct EndingRecord {
    status: OrderStatus,
    step: Option<Step>,
    failure: Option<(FailureCode, String)>,
    cancel_reason: Option<String>,
}

impl From<Ending> for EndingRecord {
    fn from(ending: Ending) -> Self {
        let status = ending.status();
        match ending {
            Ending::Failed {
                step,
                code,
                message,
            } => Self {
                status,
                step,
                failure: Some((code, message)),
                cancel_reason: None,
            },
            Ending::Cancelled { step, reason } => Self {
                status,
                step,
                failure: None,
                cancel_reason: reason,
            },
        }
    }
}

impl TryFrom<EndingRecord> for Ending {
    type Error = String;

    fn try_from(r: EndingRecord) -> Result<Self, String> {
        match (r.status, r.failure) {
            (OrderStatus::Failed, Some((code, message))) => Ok(Self::Failed {
                step: r.step,
                code,
                message,
            }),
            (OrderStatus::Cancelled, None) => Ok(Self::Cancelled {
                step: r.step,
                reason: r.cancel_reason,
            }),
            (status, failure) => Err(format!(
                "an order does not end early as {status}{}",
                if failure.is_some() {
                    " with a failure"
                } else {
                    " without a failure"
                }
            )),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum NotificationKind {
    Confirmation,
    Cancellation,
    Failure,
}

impl NotificationKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Confirmation => "CONFIRMATION",
            Self::Cancellation => "CANCELLATION",
            Self::Failure => "FAILURE",
        }
    }
}

/// One message to a customer; also the webhook's JSON body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Notification {
    pub order_id: OrderId,
    pub kind: NotificationKind,
    pub recipient: Option<CustomerEmail>,
    pub total_amount: Money,
    pub currency: Currency,
    pub message: String,
}

impl Notification {
    pub fn idempotency_key(&self) -> String {
        format!(
            "{}/{}",
            self.order_id,
            self.kind.as_str().to_ascii_lowercase()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sql_terminal_set_is_the_rust_one() {
        let sql: Vec<&str> = terminal_statuses_sql!()
            .trim_matches(|c| c == '(' || c == ')')
            .split(", ")
            .map(|s| s.trim_matches('\''))
            .collect();
        let mut sql: Vec<OrderStatus> = sql.iter().map(|s| s.parse().unwrap()).collect();
        sql.sort();
        let rust: Vec<OrderStatus> = OrderStatus::ALL
            .iter()
            .copied()
            .filter(|s| s.is_terminal())
            .collect();
        assert_eq!(sql, rust);
        assert!(OrderStatus::is_terminal_text("FAILED"));
        assert!(
            !OrderStatus::is_terminal_text("PAID") && !OrderStatus::is_terminal_text("nonsense")
        );
    }

    #[test]
    fn every_step_reaches_a_status_that_is_not_terminal() {
        let reached: Vec<_> = Step::ALL.iter().map(|s| s.reaches()).collect();
        assert_eq!(
            reached,
            [
                OrderStatus::Created,
                OrderStatus::InventoryReserved,
                OrderStatus::Paid,
                OrderStatus::Paid
            ]
        );
        assert!(reached.iter().all(|s| !s.is_terminal()));
    }

    #[test]
    fn an_ending_is_recorded_as_the_struct_was() {
        let failed = Ending::Failed {
            step: Some(Step::ProcessPayment),
            code: FailureCode::PaymentDeclined,
            message: "declined".into(),
        };
        let json = serde_json::to_value(&failed).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"status": "FAILED", "step": "process_payment",
                "failure": ["PAYMENT_DECLINED", "declined"], "cancelReason": null})
        );
        assert_eq!(serde_json::from_value::<Ending>(json).unwrap(), failed);
        let cancelled = serde_json::json!({"status": "CANCELLED", "step": null,
            "failure": null, "cancelReason": "changed my mind"});
        let ending: Ending = serde_json::from_value(cancelled.clone()).unwrap();
        assert_eq!(ending.cancel_reason(), Some("changed my mind"));
        assert_eq!(serde_json::to_value(&ending).unwrap(), cancelled);
        // Combinations the schema forbids are not endings.
        let bad = serde_json::json!({"status": "FAILED", "step": null, "failure": null, "cancelReason": null});
        assert!(serde_json::from_value::<Ending>(bad).is_err());
        let bad = serde_json::json!({"status": "PAID", "step": null, "failure": null, "cancelReason": null});
        assert!(serde_json::from_value::<Ending>(bad).is_err());
    }
}
