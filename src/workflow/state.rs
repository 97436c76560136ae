//! The order's live state: what the `status` query returns and `order
//! status -o json` prints (SPEC §6). Field names are part of the contract.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::domain::{
    Currency, CustomerEmail, CustomerId, FailureCode, Money, Order, OrderId, OrderLine,
    OrderStatus, PaymentMethod, Step,
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

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OrderView {
    pub order_id: OrderId,
    pub status: OrderStatus,
    /// The step running now, or the last one that ran.
    pub step: Option<Step>,
    #[serde(rename = "customerID")]
    pub customer_id: CustomerId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customer_email: Option<CustomerEmail>,
    pub payment_method: PaymentMethod,
    pub total_amount: Money,
    pub currency: Currency,
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
            order_id: order.id.clone(),
            status: OrderStatus::Pending,
            step: None,
            customer_id: order.customer_id.clone(),
            customer_email: order.customer_email.clone(),
            payment_method: order.payment_method,
            total_amount: order.total_amount,
            currency: order.currency,
            items: order.items.clone(),
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
