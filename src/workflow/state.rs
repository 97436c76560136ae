//! The order's live state: what the `status` query returns and `order
//! status -o json` prints (SPEC §6). Field names are part of the contract.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::domain::{
    Currency, CustomerEmail, CustomerId, Delivery, FailureCode, Money, Order, OrderLine,
    OrderStatus, PaymentMethod, Step, WorkflowId,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum StepState {
    Pending,
    Running,
    /// Failed transiently; waiting to try again.
    Retrying,
    /// The database (a dependency, not the order) did not answer; waiting
    /// for it to come back. Such waits are not attempts.
    Waiting,
    Done,
    Failed,
    /// Done, then undone by compensation.
    Compensated,
    /// Never ran: the order ended before it.
    Skipped,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct StepView {
    pub name: Step,
    pub state: StepState,
    pub attempts: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// When a retry is waiting, when it will run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_attempt_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct FailureView {
    pub code: FailureCode,
    pub message: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CancellationView {
    pub reason: String,
    /// `requested`, `cancelled` or `refused` (the order had already ended).
    pub outcome: String,
}

/// A signal the order received and did not act on: its payload was not
/// what the signal takes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RejectedSignal {
    pub name: String,
    pub problem: String,
    pub at: Option<DateTime<Utc>>,
}

/// How many rejected signals an order's state keeps (the latest).
pub const REJECTED_SIGNALS_KEPT: usize = 5;

/// An order's state. The order's own fields are absent only for a workflow
/// whose input was not a valid order (it ended `FAILED` with
/// `INVALID_ORDER` before doing anything).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OrderView {
    /// The workflow's ID: the order's ID.
    pub order_id: WorkflowId,
    pub status: OrderStatus,
    /// The step running now, or the last one that ran.
    pub step: Option<Step>,
    #[serde(
        rename = "customerID",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub customer_id: Option<CustomerId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customer_email: Option<CustomerEmail>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payment_method: Option<PaymentMethod>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total_amount: Option<Money>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub currency: Option<Currency>,
    #[serde(default)]
    pub items: Vec<OrderLine>,
    pub steps: Vec<StepView>,
    pub failure: Option<FailureView>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cancellation: Option<CancellationView>,
    /// A completed order's confirmation went out (`false` when its delivery
    /// failed or its outcome is unknown; the order completes either way).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notified: Option<bool>,
    /// A completed order's confirmation, as recorded: `SENT`, `FAILED`, or
    /// `UNKNOWN` (it may have reached the customer).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notification: Option<Delivery>,
    /// Why the order's ending is waiting to be recorded (the database does
    /// not answer); it is retried until it is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ending_error: Option<String>,
    /// Why the order's workflow task fails, when it does (read from its
    /// history): it makes no progress until that is fixed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workflow_task_failure: Option<String>,
    /// Signals the order did not act on, the latest
    /// [`REJECTED_SIGNALS_KEPT`], and how many there were in all.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rejected_signals: Vec<RejectedSignal>,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub rejected_signal_count: u32,
    pub created_at: Option<DateTime<Utc>>,
    pub updated_at: Option<DateTime<Utc>>,
}

impl OrderView {
    pub fn new(order: &Order) -> Self {
        Self {
            customer_id: Some(order.customer_id().clone()),
            customer_email: order.customer_email().cloned(),
            payment_method: Some(order.payment_method()),
            total_amount: Some(order.total_amount()),
            currency: Some(order.currency()),
            items: order.items().to_vec(),
            ..Self::empty(order.id().clone().into())
        }
    }

    /// The state of a workflow whose input was refused: `FAILED`,
    /// `INVALID_ORDER`, every step skipped.
    pub fn rejected(workflow_id: WorkflowId, message: String) -> Self {
        let mut view = Self::empty(workflow_id);
        view.status = OrderStatus::Failed;
        view.failure = Some(FailureView {
            code: FailureCode::InvalidOrder,
            message,
        });
        for s in &mut view.steps {
            s.state = StepState::Skipped;
        }
        view
    }

    fn empty(order_id: WorkflowId) -> Self {
        Self {
            order_id,
            status: OrderStatus::Pending,
            step: None,
            customer_id: None,
            customer_email: None,
            payment_method: None,
            total_amount: None,
            currency: None,
            items: Vec::new(),
            steps: Step::ALL
                .iter()
                .map(|&name| StepView {
                    name,
                    state: StepState::Pending,
                    attempts: 0,
                    last_error: None,
                    next_attempt_at: None,
                })
                .collect(),
            failure: None,
            cancellation: None,
            notified: None,
            notification: None,
            ending_error: None,
            workflow_task_failure: None,
            rejected_signals: Vec::new(),
            rejected_signal_count: 0,
            created_at: None,
            updated_at: None,
        }
    }

    /// Records a signal that was not acted on, keeping the latest few, each
    /// problem cut to 300 characters (it may quote what the signal carried).
    pub fn reject_signal(&mut self, name: &str, problem: String, at: Option<DateTime<Utc>>) {
        let problem = match problem.char_indices().nth(300) {
            Some((cut, _)) => format!("{}…", &problem[..cut]),
            None => problem,
        };
        self.rejected_signal_count = self.rejected_signal_count.saturating_add(1);
        if self.rejected_signals.len() == REJECTED_SIGNALS_KEPT {
            self.rejected_signals.remove(0);
        }
        self.rejected_signals.push(RejectedSignal {
            name: name.to_owned(),
            problem,
            at,
        });
    }

    pub fn step_mut(&mut self, step: Step) -> &mut StepView {
        let index = Step::ALL
            .iter()
            .position(|s| *s == step)
            .expect("every step has a view");
        &mut self.steps[index]
    }

    pub fn step_view(&self, step: Step) -> &StepView {
        let index = Step::ALL
            .iter()
            .position(|s| *s == step)
            .expect("every step has a view");
        &self.steps[index]
    }
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}
