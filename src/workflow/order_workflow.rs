//! `OrderWorkflow`: create order → reserve inventory → process payment →
//! send notification (SPEC §3), as a saga.
//!
//! - Steps run as local activities: short database calls in the worker that
//!   hosts the workflow, without a round trip through the task queue each.
//! - The workflow drives retries itself (each activity call is one attempt),
//!   so every attempt, its error and the wait before the next are in the
//!   `status` query, and a cancellation cuts a backoff short.
//! - Activities run on a detached cancellation token: a cancellation never
//!   abandons one half-done. Cancellation is checked between steps and
//!   during backoffs, and compensation (registered before the step it
//!   undoes) then runs to the end, whatever happens to the workflow.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use temporalio_common::RetryPolicy;
use temporalio_common::protos::temporal::api::failure::v1::failure::FailureInfo;
use temporalio_sdk::workflows::{select, workflow, workflow_methods};
use temporalio_sdk::{
    ActivityExecutionError, ApplicationFailure, LocalActivityOptions, SyncWorkflowContext,
    WorkflowCancellationToken, WorkflowContext, WorkflowContextView, WorkflowResult,
    WorkflowTermination,
};

use super::activities::{
    NotifyInput, OrderActivities, OutcomeInput, PaymentInput, StepReport, WorkflowSettings,
};
use super::retry::RetryConfig;
use super::state::{CancellationView, FailureView, OrderView, StepState};
use crate::domain::{FailureCode, Order, OrderStatus, Step};
use crate::services::notification::{Notification, NotificationKind};

/// The `cancel` signal's payload.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct CancelRequest {
    pub reason: String,
}

/// What undoes a step; registered before the step runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Compensation {
    ReleaseInventory,
    RefundPayment,
}

/// How one step ended.
enum StepOutcome {
    Done,
    /// A business failure, or retries ran out.
    Failed(FailureCode, String),
    /// A cancellation arrived while the step waited to retry.
    Cancelled,
}

#[workflow]
pub struct OrderWorkflow {
    order: Order,
    view: OrderView,
    /// Set by the `cancel` signal; Temporal's own cancellation is read from
    /// the workflow's cancellation token.
    cancel_reason: Option<String>,
}

fn now(ctx: &WorkflowContext<OrderWorkflow>) -> Option<DateTime<Utc>> {
    ctx.workflow_time().map(DateTime::<Utc>::from)
}

/// One attempt per call; the workflow counts attempts and waits between them.
fn step_options() -> LocalActivityOptions {
    LocalActivityOptions::builder()
        .start_to_close_timeout(Duration::from_secs(30))
        .retry_policy(RetryPolicy::builder().maximum_attempts(1).build())
        .cancellation_token(WorkflowCancellationToken::new())
        .build()
}

/// Compensation and bookkeeping must happen: retry until they do.
fn must_complete_options() -> LocalActivityOptions {
    LocalActivityOptions::builder()
        .start_to_close_timeout(Duration::from_secs(30))
        .schedule_to_close_timeout(Duration::from_secs(7 * 24 * 3600))
        .retry_policy(
            RetryPolicy::builder()
                .maximum_attempts(0)
                .initial_interval(Duration::from_secs(1))
                .backoff_coefficient(2.0)
                .maximum_interval(Duration::from_secs(60))
                .build(),
        )
        .cancellation_token(WorkflowCancellationToken::new())
        .build()
}

/// Best effort with the order's own retry policy (failure and cancellation notices).
fn best_effort_options(retry: &RetryConfig) -> LocalActivityOptions {
    LocalActivityOptions::builder()
        .start_to_close_timeout(Duration::from_secs(30))
        .retry_policy(
            RetryPolicy::builder()
                .maximum_attempts(retry.max_attempts)
                .initial_interval(retry.initial_interval)
                .backoff_coefficient(retry.backoff_coefficient)
                .maximum_interval(retry.max_interval)
                .build(),
        )
        .cancellation_token(WorkflowCancellationToken::new())
        .build()
}

/// A business failure (non-retryable, typed with a failure code), or the
/// message of a transient one. A regular activity's failure arrives wrapped
/// in an activity failure; a local activity's arrives as it is: look at the
/// first application failure in the chain either way.
fn classify(error: &ActivityExecutionError) -> Result<(FailureCode, String), String> {
    let mut next = error.failure();
    while let Some(failure) = next {
        if let Some(FailureInfo::ApplicationFailureInfo(info)) = &failure.failure_info {
            return match info.r#type.parse::<FailureCode>() {
                Ok(code) if info.non_retryable => Ok((code, failure.message.clone())),
                _ => Err(failure.message.clone()),
            };
        }
        next = failure.cause.as_deref();
    }
    Err(error.to_string())
}

#[workflow_methods]
impl OrderWorkflow {
    #[init]
    pub fn new(_ctx: &WorkflowContextView, order: Order) -> Self {
        let view = OrderView::new(&order);
        Self {
            order,
            view,
            cancel_reason: None,
        }
    }

    #[run]
    pub async fn run(ctx: &mut WorkflowContext<Self>) -> WorkflowResult<OrderView> {
        let started = now(ctx);
        ctx.state_mut(|s| {
            s.view.created_at = started;
            s.view.updated_at = started;
        });
        let settings: WorkflowSettings = ctx
            .execute_local_activity(OrderActivities::settings, (), must_complete_options())
            .await?;
        let retry = settings.retry;
        let mut compensations = Vec::new();

        for (step, reached) in [
            (Step::CreateOrder, OrderStatus::Created),
            (Step::ReserveInventory, OrderStatus::InventoryReserved),
            (Step::ProcessPayment, OrderStatus::Paid),
        ] {
            if let Some(reason) = Self::cancel_requested(ctx) {
                return Self::end_cancelled(ctx, &compensations, &retry, reason).await;
            }
            match step {
                Step::ReserveInventory => compensations.push(Compensation::ReleaseInventory),
                Step::ProcessPayment => compensations.push(Compensation::RefundPayment),
                _ => {}
            }
            match Self::run_step(ctx, step, &retry).await {
                StepOutcome::Done => Self::update(ctx, |v| v.status = reached),
                StepOutcome::Failed(code, message) => {
                    return Self::end_failed(ctx, &compensations, &retry, code, message).await;
                }
                StepOutcome::Cancelled => {
                    let reason = Self::cancel_requested(ctx).unwrap_or_default();
                    return Self::end_cancelled(ctx, &compensations, &retry, reason).await;
                }
            }
        }
        if let Some(reason) = Self::cancel_requested(ctx) {
            return Self::end_cancelled(ctx, &compensations, &retry, reason).await;
        }

        // A confirmation that cannot be delivered never undoes a paid order.
        let notified = match Self::run_step(ctx, Step::SendNotification, &retry).await {
            StepOutcome::Done => true,
            StepOutcome::Failed(..) => false,
            StepOutcome::Cancelled => {
                let reason = Self::cancel_requested(ctx).unwrap_or_default();
                return Self::end_cancelled(ctx, &compensations, &retry, reason).await;
            }
        };
        Self::update(ctx, |v| {
            v.status = OrderStatus::Completed;
            v.notified = Some(notified);
        });
        // A delivered confirmation recorded COMPLETED itself, in its own
        // transaction; otherwise record it now.
        if !notified {
            Self::record_outcome(ctx, OrderStatus::Completed, None, None).await?;
        }
        Ok(ctx.state(|s| s.view.clone()))
    }

    /// Asks the order to cancel. Before `COMPLETED` it is cancelled after
    /// compensation; afterwards the request is refused and changes nothing.
    #[signal(name = "cancel")]
    pub fn cancel(&mut self, _ctx: &mut SyncWorkflowContext<Self>, request: CancelRequest) {
        let reason = if request.reason.trim().is_empty() {
            "cancel requested".to_owned()
        } else {
            request.reason
        };
        if self.view.status.is_terminal() {
            if self.view.cancellation.is_none() {
                self.view.cancellation = Some(CancellationView {
                    reason,
                    outcome: "refused".into(),
                });
            }
            return;
        }
        if self.cancel_reason.is_none() {
            self.view.cancellation = Some(CancellationView {
                reason: reason.clone(),
                outcome: "requested".into(),
            });
            self.cancel_reason = Some(reason);
        }
    }

    /// The order's live state.
    #[query(name = "status")]
    pub fn status(&self, _ctx: &WorkflowContextView) -> OrderView {
        self.view.clone()
    }
}

impl OrderWorkflow {
    fn update(ctx: &WorkflowContext<Self>, change: impl FnOnce(&mut OrderView)) {
        let at = now(ctx);
        ctx.state_mut(|s| {
            change(&mut s.view);
            s.view.updated_at = at;
        });
    }

    /// The reason, when the `cancel` signal or Temporal's cancellation asked.
    fn cancel_requested(ctx: &WorkflowContext<Self>) -> Option<String> {
        if let Some(reason) = ctx.state(|s| s.cancel_reason.clone()) {
            return Some(reason);
        }
        let token = ctx.cancellation_token();
        token.is_cancelled().then(|| {
            token
                .reason()
                .filter(|r| !r.is_empty())
                .unwrap_or_else(|| "cancelled through Temporal".to_owned())
        })
    }

    /// Runs one attempt of a step.
    async fn attempt(
        ctx: &WorkflowContext<Self>,
        step: Step,
        attempt: u32,
    ) -> Result<StepReport, ActivityExecutionError> {
        let order = ctx.state(|s| s.order.clone());
        match step {
            Step::CreateOrder => {
                ctx.execute_local_activity(OrderActivities::create_order, order, step_options())
                    .await
            }
            Step::ReserveInventory => {
                ctx.execute_local_activity(
                    OrderActivities::reserve_inventory,
                    order,
                    step_options(),
                )
                .await
            }
            Step::ProcessPayment => {
                let input = PaymentInput { order, attempt };
                ctx.execute_local_activity(OrderActivities::process_payment, input, step_options())
                    .await
            }
            Step::SendNotification => {
                let notice = NotifyInput {
                    notification: notification(
                        &order,
                        NotificationKind::Confirmation,
                        "Your order is confirmed.",
                    ),
                    completes_order: true,
                };
                ctx.execute_local_activity(
                    OrderActivities::send_notification,
                    notice,
                    step_options(),
                )
                .await
            }
        }
    }

    /// Runs a step to success, a business failure, retries running out, or
    /// a cancellation during a backoff.
    async fn run_step(ctx: &WorkflowContext<Self>, step: Step, retry: &RetryConfig) -> StepOutcome {
        let mut attempt = 1;
        loop {
            Self::update(ctx, |v| {
                v.step = Some(step);
                let s = v.step_mut(step);
                s.state = StepState::Running;
                s.attempts = attempt;
                s.next_attempt_at = None;
            });
            let error = match Self::attempt(ctx, step, attempt).await {
                Ok(_) => {
                    Self::update(ctx, |v| v.step_mut(step).state = StepState::Done);
                    return StepOutcome::Done;
                }
                Err(error) => error,
            };
            let message = match classify(&error) {
                Ok((code, message)) => {
                    Self::update(ctx, |v| {
                        let s = v.step_mut(step);
                        s.state = StepState::Failed;
                        s.last_error = Some(message.clone());
                    });
                    return StepOutcome::Failed(code, message);
                }
                Err(message) => message,
            };
            if attempt >= retry.max_attempts {
                Self::update(ctx, |v| {
                    let s = v.step_mut(step);
                    s.state = StepState::Failed;
                    s.last_error = Some(message.clone());
                });
                let code = match step {
                    Step::ProcessPayment => FailureCode::PaymentUnavailable,
                    _ => FailureCode::Internal,
                };
                return StepOutcome::Failed(
                    code,
                    format!("{message} (gave up after {attempt} attempts)"),
                );
            }
            let wait = retry.backoff(attempt);
            let next = ctx.workflow_time().map(|t| DateTime::<Utc>::from(t + wait));
            Self::update(ctx, |v| {
                let s = v.step_mut(step);
                s.state = StepState::Retrying;
                s.last_error = Some(message);
                s.next_attempt_at = next;
            });
            // The timer and the wait both end early on Temporal's cancellation.
            select! {
                _ = ctx.timer(wait) => {},
                _ = ctx.wait_condition(|s: &Self| s.cancel_reason.is_some()) => {},
            };
            if Self::cancel_requested(ctx).is_some() {
                Self::update(ctx, |v| {
                    let s = v.step_mut(step);
                    s.state = StepState::Failed;
                    s.next_attempt_at = None;
                });
                return StepOutcome::Cancelled;
            }
            attempt += 1;
        }
    }

    /// Undoes what was done, newest first. Each compensation is idempotent
    /// and tolerates "nothing to undo", so it is safe whether or not the
    /// step it covers took effect.
    async fn compensate(
        ctx: &WorkflowContext<Self>,
        compensations: &[Compensation],
    ) -> WorkflowResult<()> {
        let order_id = ctx.state(|s| s.order.id.clone());
        for compensation in compensations.iter().rev() {
            let (activity_step, report) = match compensation {
                Compensation::RefundPayment => (
                    Step::ProcessPayment,
                    ctx.execute_local_activity(
                        OrderActivities::refund_payment,
                        order_id.clone(),
                        must_complete_options(),
                    )
                    .await?,
                ),
                Compensation::ReleaseInventory => (
                    Step::ReserveInventory,
                    ctx.execute_local_activity(
                        OrderActivities::release_inventory,
                        order_id.clone(),
                        must_complete_options(),
                    )
                    .await?,
                ),
            };
            if !report.already {
                Self::update(ctx, |v| {
                    v.step_mut(activity_step).state = StepState::Compensated
                });
            }
        }
        Self::update(ctx, |v| {
            for s in &mut v.steps {
                if s.state == StepState::Pending {
                    s.state = StepState::Skipped;
                }
            }
        });
        Ok(())
    }

    async fn record_outcome(
        ctx: &WorkflowContext<Self>,
        status: OrderStatus,
        failure: Option<(FailureCode, String)>,
        cancel_reason: Option<String>,
    ) -> WorkflowResult<()> {
        let (order_id, step) = ctx.state(|s| (s.order.id.clone(), s.view.step));
        let input = OutcomeInput {
            order_id,
            status,
            step,
            failure,
            cancel_reason,
        };
        ctx.execute_local_activity(
            OrderActivities::record_outcome,
            input,
            must_complete_options(),
        )
        .await?;
        Ok(())
    }

    /// Tells the customer; a notice that cannot be delivered stays recorded as failed.
    async fn notify_best_effort(
        ctx: &WorkflowContext<Self>,
        retry: &RetryConfig,
        kind: NotificationKind,
        message: String,
    ) {
        let notice = NotifyInput {
            notification: ctx.state(|s| notification(&s.order, kind, &message)),
            completes_order: false,
        };
        let _ = ctx
            .execute_local_activity(
                OrderActivities::send_notification,
                notice,
                best_effort_options(retry),
            )
            .await;
    }

    async fn end_failed(
        ctx: &WorkflowContext<Self>,
        compensations: &[Compensation],
        retry: &RetryConfig,
        code: FailureCode,
        message: String,
    ) -> WorkflowResult<OrderView> {
        Self::compensate(ctx, compensations).await?;
        Self::update(ctx, |v| {
            v.status = OrderStatus::Failed;
            v.failure = Some(FailureView {
                code,
                message: message.clone(),
            });
        });
        Self::record_outcome(
            ctx,
            OrderStatus::Failed,
            Some((code, message.clone())),
            None,
        )
        .await?;
        Self::notify_best_effort(
            ctx,
            retry,
            NotificationKind::Failure,
            format!("Your order could not be completed: {message}"),
        )
        .await;
        let view = ctx.state(|s| s.view.clone());
        Err(ApplicationFailure::builder(message)
            .type_name(code.as_str().to_owned())
            .non_retryable(true)
            .details(view)
            .build()
            .into())
    }

    async fn end_cancelled(
        ctx: &WorkflowContext<Self>,
        compensations: &[Compensation],
        retry: &RetryConfig,
        reason: String,
    ) -> WorkflowResult<OrderView> {
        Self::compensate(ctx, compensations).await?;
        Self::update(ctx, |v| {
            v.status = OrderStatus::Cancelled;
            v.cancellation = Some(CancellationView {
                reason: reason.clone(),
                outcome: "cancelled".into(),
            });
        });
        Self::record_outcome(ctx, OrderStatus::Cancelled, None, Some(reason.clone())).await?;
        Self::notify_best_effort(
            ctx,
            retry,
            NotificationKind::Cancellation,
            format!("Your order was cancelled: {reason}"),
        )
        .await;
        Err(WorkflowTermination::cancelled_with_details(
            ctx.state(|s| s.view.clone()),
        ))
    }
}

fn notification(order: &Order, kind: NotificationKind, message: &str) -> Notification {
    Notification {
        order_id: order.id.clone(),
        kind,
        recipient: order.customer_email.clone(),
        total_amount: order.total_amount,
        currency: order.currency,
        message: message.to_owned(),
    }
}
