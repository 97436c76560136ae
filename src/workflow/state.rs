//! The order's live state: what the `status` query returns and `order
//! status -o json` prints (SPEC §6). Field names are part of the contract.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::domain::{
    Currency, CustomerEmail, CustomerId, FailureCode, Money, Order, OrderLine, OrderStatus,
    PaymentMethod, Step, WorkflowId,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
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

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailureView {
    pub code: FailureCode,
    pub message: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CancellationView {
    pub reason: String,
    /// `requested`, `cancelled` or `refused` (the order had already ended).
    pub outcome: String,
}

/// An order's state. The order's own fields are absent only for a workflow
/// whose input was not a valid order (it ended `FAILED` with
/// `INVALID_ORDER` before doing anything).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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
    /// Whether the customer's notification went out (`false` when delivery
    /// failed; the order still completes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notified: Option<bool>,
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
            created_at: None,
            updated_at: None,
        }
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
