//! The activities: thin adapters from the workflow to the domain services.
//! Business outcomes become non-retryable application failures whose type is
//! the SPEC failure code; a dependency that is down becomes a retryable
//! failure of type [`UNAVAILABLE`]; other transient errors stay retryable.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use temporalio_sdk::ApplicationFailure;
use temporalio_sdk::activities::{ActivityContext, ActivityError, activities};

use super::metrics::Metrics;
use super::retry::RetryConfig;
use crate::domain::{Delivery, FailureCode, Order, OrderId, OrderStatus, Step};
use crate::services::ServiceError;
use crate::services::inventory::{Inventory, Reserved};
use crate::services::notification::{Notification, Notifications};
use crate::services::orders::{Ending, Finished, OrderStore};

/// What ending an order did (recorded in the history).
pub type EndReport = Finished;
use crate::services::payment::Payments;

/// The application failure type of "a dependency is down": the workflow
/// waits for it instead of counting an attempt.
pub const UNAVAILABLE: &str = "DEPENDENCY_UNAVAILABLE";

/// What the workflow takes from the worker's configuration, once, at start.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WorkflowSettings {
    pub retry: RetryConfig,
    /// How long a step waits for the database to come back before the
    /// order fails `INTERNAL`. (Absent from histories recorded before it.)
    #[serde(default = "default_outage_timeout", with = "super::retry::millis")]
    pub outage_timeout: std::time::Duration,
    /// Each step's time limit per attempt. (Absent before it was recorded.)
    #[serde(default = "default_step_timeout", with = "super::retry::millis")]
    pub step_timeout: std::time::Duration,
    /// The namespace has orderflow's search attributes: set them. (Absent,
    /// so false, in histories from before.)
    #[serde(default)]
    pub search_attributes: bool,
    /// Payloads are encrypted: keep the customer ID out of the search
    /// attributes, which Temporal stores in clear. (Absent, so false, in
    /// histories from before.)
    #[serde(default)]
    pub encrypted: bool,
    /// The worker encrypts and refuses orders that arrive unencrypted: such
    /// an order fails `INVALID_ORDER` before any step. (Absent, so false,
    /// in histories from before.)
    #[serde(default)]
    pub refuse_clear: bool,
}

pub fn default_outage_timeout() -> std::time::Duration {
    std::time::Duration::from_secs(24 * 3600)
}

pub fn default_step_timeout() -> std::time::Duration {
    std::time::Duration::from_secs(30)
}

/// The result of a step, for the log and the history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StepReport {
    pub detail: String,
    /// True when the effect already existed (a retry or replay): nothing was done twice.
    pub already: bool,
    /// A completion's confirmation, as recorded (`record_outcome` of
    /// `COMPLETED`; absent before it was reported).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notification: Option<Delivery>,
}

/// `create_order`'s input: the order, and when its workflow started, which
/// the row records as its `created_at` (so `order list` and `order status`
/// give one time, however long the order waited for a worker).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CreateInput {
    pub order: Order,
    pub created_at: Option<chrono::DateTime<chrono::Utc>>,
}

/// Read from this shape, or from an order alone (the input before it).
impl<'de> Deserialize<'de> for CreateInput {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Either {
            Now {
                order: Order,
                #[serde(rename = "createdAt", default)]
                created_at: Option<chrono::DateTime<chrono::Utc>>,
            },
            Before(Order),
        }
        Ok(match Either::deserialize(d)? {
            Either::Now { order, created_at } => Self { order, created_at },
            Either::Before(order) => Self {
                order,
                created_at: None,
            },
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PaymentInput {
    pub order: Order,
    /// The step's attempt as the workflow counts it (1-based).
    pub attempt: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NotifyInput {
    pub notification: Notification,
    /// The confirmation: once sent, the order is `COMPLETED` (same transaction).
    pub completes_order: bool,
}

/// Ending an order early: the order (recorded now if it never was) and how.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EndInput {
    pub order: Order,
    pub ending: Ending,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OutcomeInput {
    pub order_id: OrderId,
    pub status: OrderStatus,
    pub step: Option<Step>,
    pub failure: Option<(FailureCode, String)>,
    pub cancel_reason: Option<String>,
}

/// The services an activity may call; shared by every activity execution.
pub struct OrderActivities {
    pub metrics: Arc<Metrics>,
    pub settings: WorkflowSettings,
    pub orders: OrderStore,
    pub inventory: Box<dyn Inventory>,
    pub payments: Payments,
    pub notifications: Notifications,
    /// When a step last found the database unreachable, while it is: the
    /// worker says so once when it goes, and once when it is back.
    pub database_down: Arc<std::sync::Mutex<Option<std::time::Instant>>>,
}

fn to_activity_error(error: ServiceError) -> ActivityError {
    match error {
        ServiceError::Business { code, message } => ActivityError::application(
            ApplicationFailure::builder(message)
                .type_name(code.as_str().to_owned())
                .non_retryable(true)
                .build(),
        ),
        ServiceError::Transient(e) => e.into(),
        ServiceError::Unavailable(e) => ActivityError::application(
            ApplicationFailure::builder(crate::errors::text(e.as_ref()))
                .type_name(UNAVAILABLE.to_owned())
                .build(),
        ),
    }
}

/// How an attempt ended, for the metrics.
fn result_of<T>(result: &Result<T, ServiceError>) -> &'static str {
    match result {
        Ok(_) => "ok",
        Err(ServiceError::Business { .. }) => "business",
        Err(ServiceError::Transient(_)) => "transient",
        Err(ServiceError::Unavailable(_)) => "unavailable",
    }
}

impl OrderActivities {
    /// Runs one attempt of a step, counting it and timing it.
    async fn attempt<T>(
        &self,
        step: Step,
        call: impl std::future::Future<Output = Result<T, ServiceError>>,
    ) -> Result<T, ServiceError> {
        let started = std::time::Instant::now();
        let result = call.await;
        self.metrics
            .attempt(step, result_of(&result), started.elapsed());
        let mut down = self.database_down.lock().unwrap_or_else(|e| e.into_inner());
        match (&result, *down) {
            (Err(ServiceError::Unavailable(e)), last) => {
                if last.is_none() {
                    tracing::warn!(
                        "the database is unreachable ({}); orders wait for it without using \
                         up their attempts",
                        crate::errors::text(e.as_ref())
                    );
                }
                *down = Some(std::time::Instant::now());
            }
            // Back: a step that began well after the last failure (a
            // database going down flickers) was answered: a result, or a
            // business refusal, both from the database.
            (Ok(_) | Err(ServiceError::Business { .. }), Some(last))
                if started > last + std::time::Duration::from_secs(1) =>
            {
                *down = None;
                tracing::warn!("the database answers again; waiting orders go on");
            }
            _ => {}
        }
        drop(down);
        result
    }
}

fn report(detail: impl Into<String>, already: bool) -> StepReport {
    StepReport {
        detail: detail.into(),
        already,
        notification: None,
    }
}

#[activities]
impl OrderActivities {
    #[activity(name = "settings")]
    pub async fn settings(
        self: Arc<Self>,
        _ctx: ActivityContext,
    ) -> Result<WorkflowSettings, ActivityError> {
        Ok(self.settings)
    }

    #[activity(name = "create_order")]
    pub async fn create_order(
        self: Arc<Self>,
        _ctx: ActivityContext,
        input: CreateInput,
    ) -> Result<StepReport, ActivityError> {
        let CreateInput { order, created_at } = input;
        let created = self
            .attempt(Step::CreateOrder, self.orders.create(&order, created_at))
            .await
            .map_err(to_activity_error)?;
        tracing::info!(order_id = %order.id(), step = "create_order", new = created, "order recorded");
        Ok(report(format!("order {} recorded", order.id()), !created))
    }

    #[activity(name = "reserve_inventory")]
    pub async fn reserve_inventory(
        self: Arc<Self>,
        _ctx: ActivityContext,
        order: Order,
    ) -> Result<StepReport, ActivityError> {
        let reserved = self
            .attempt(Step::ReserveInventory, self.inventory.reserve(&order))
            .await
            .map_err(|e| {
            tracing::info!(order_id = %order.id(), step = "reserve_inventory", "not reserved: {e}");
            to_activity_error(e)
        })?;
        let (lines, already) = match reserved {
            Reserved::Now { lines } => (lines, false),
            Reserved::Already => (0, true),
        };
        tracing::info!(order_id = %order.id(), step = "reserve_inventory", lines, already, "inventory reserved");
        Ok(match reserved {
            Reserved::Now { lines } => report(format!("reserved {lines} line(s)"), false),
            Reserved::Already => report("already reserved", true),
        })
    }

    #[activity(name = "process_payment")]
    pub async fn process_payment(
        self: Arc<Self>,
        _ctx: ActivityContext,
        input: PaymentInput,
    ) -> Result<StepReport, ActivityError> {
        let order = &input.order;
        let captured = self
            .attempt(Step::ProcessPayment, self.payments.capture(order, input.attempt))
            .await
            .map_err(|e| {
                tracing::info!(order_id = %order.id(), step = "process_payment", attempt = input.attempt, "not captured: {e}");
                to_activity_error(e)
            })?;
        if !captured.already {
            self.metrics
                .captured(order.total_amount(), order.currency());
        }
        tracing::info!(order_id = %order.id(), step = "process_payment", attempt = input.attempt,
                       amount = %order.total_amount(), already = captured.already, "payment captured");
        Ok(report(
            format!(
                "captured {} {} ({})",
                order.total_amount(),
                order.currency(),
                captured.gateway_ref
            ),
            captured.already,
        ))
    }

    #[activity(name = "send_notification")]
    pub async fn send_notification(
        self: Arc<Self>,
        _ctx: ActivityContext,
        input: NotifyInput,
    ) -> Result<StepReport, ActivityError> {
        let n = &input.notification;
        let kind = n.kind.as_str().to_ascii_lowercase();
        let sending = self.notifications.send(n, input.completes_order);
        let sent = match input.completes_order {
            true => self.attempt(Step::SendNotification, sending).await,
            false => sending.await,
        };
        if let Err(ServiceError::Transient(_)) = &sent {
            self.metrics.notification(&kind, false);
        }
        let sent = sent.map_err(|e| {
            tracing::warn!(order_id = %n.order_id, step = "send_notification", kind = n.kind.as_str(), "not delivered: {e}");
            to_activity_error(e)
        })?;
        if sent {
            self.metrics.notification(&kind, true);
            if input.completes_order {
                self.metrics.order_ended(OrderStatus::Completed, None);
            }
        }
        tracing::info!(order_id = %n.order_id, step = "send_notification", kind = n.kind.as_str(), "notification sent");
        Ok(report(
            format!("{} notification sent", n.kind.as_str().to_ascii_lowercase()),
            !sent,
        ))
    }

    #[activity(name = "release_inventory")]
    pub async fn release_inventory(
        self: Arc<Self>,
        _ctx: ActivityContext,
        order_id: OrderId,
    ) -> Result<StepReport, ActivityError> {
        let lines = self
            .inventory
            .release(&order_id)
            .await
            .map_err(to_activity_error)?;
        tracing::info!(order_id = %order_id, compensation = "release_inventory", lines, "inventory released");
        Ok(report(format!("released {lines} line(s)"), lines == 0))
    }

    #[activity(name = "refund_payment")]
    pub async fn refund_payment(
        self: Arc<Self>,
        _ctx: ActivityContext,
        order_id: OrderId,
    ) -> Result<StepReport, ActivityError> {
        let refunded = self
            .payments
            .refund(&order_id)
            .await
            .map_err(to_activity_error)?;
        let refunded_text = refunded.map_or_else(|| "nothing".to_owned(), |m| m.to_string());
        tracing::info!(order_id = %order_id, compensation = "refund_payment", refunded = %refunded_text, "refund done");
        Ok(match refunded {
            Some(amount) => report(format!("refunded {amount}"), false),
            None => report("nothing to refund", true),
        })
    }

    /// Ends the order `FAILED` or `CANCELLED` from what the database holds:
    /// records the ending and its notice (unless it ended already, or
    /// completed), releases what the order still holds and refunds what
    /// was captured, whatever the workflow remembers doing.
    #[activity(name = "end_order")]
    pub async fn end_order(
        self: Arc<Self>,
        _ctx: ActivityContext,
        input: EndInput,
    ) -> Result<EndReport, ActivityError> {
        let order_id = input.order.id();
        let mut report = self
            .orders
            .finish(&input.order, &input.ending)
            .await
            .map_err(to_activity_error)?;
        if report.refund_due {
            report.refunded = self
                .payments
                .refund(order_id)
                .await
                .map_err(to_activity_error)?;
        }
        if let Some(amount) = report.refunded {
            self.metrics.refunded(amount, input.order.currency());
        }
        if let Some(ending) = report.ending.as_ref().filter(|_| report.ended_now) {
            let code = ending.failure().map(|(code, _)| code);
            self.metrics.order_ended(ending.status(), code);
        }
        let status = report.ending.as_ref().map_or("-", |e| e.status().as_str());
        let refunded = report
            .refunded
            .map_or_else(|| "nothing".to_owned(), |m| m.to_string());
        tracing::info!(order_id = %order_id, status, completed = report.completed,
                       released = report.released, refunded = %refunded, "order ended");
        Ok(report)
    }

    #[activity(name = "record_outcome")]
    pub async fn record_outcome(
        self: Arc<Self>,
        _ctx: ActivityContext,
        input: OutcomeInput,
    ) -> Result<StepReport, ActivityError> {
        let recorded = self
            .orders
            .set_status(
                &input.order_id,
                input.status,
                input.step,
                input.failure.as_ref().map(|(c, m)| (*c, m.as_str())),
                input.cancel_reason.as_deref(),
            )
            .await
            .map_err(to_activity_error)?;
        if !recorded {
            // Only COMPLETED can be refused: the order ended otherwise.
            tracing::warn!(order_id = %input.order_id, status = %input.status, "order not completed: it ended otherwise");
            return Ok(report(
                format!("order not {}: it ended otherwise", input.status),
                true,
            ));
        }
        tracing::info!(order_id = %input.order_id, status = %input.status, "order finished");
        let code = input.failure.as_ref().map(|(code, _)| *code);
        self.metrics.order_ended(input.status, code);
        let mut done = report(format!("order {}", input.status), false);
        if input.status == OrderStatus::Completed {
            done.notification = self
                .notifications
                .confirmation(&input.order_id)
                .await
                .map_err(to_activity_error)?;
        }
        Ok(done)
    }
}
