//! Attempts: the options each kind of call runs with, how a failed attempt
//! is read (a business failure, an outage, another failure), and the waits
//! between attempts, on timers no cancellation of Temporal's touches.

use std::time::Duration;

use chrono::{DateTime, Utc};
use temporalio_common::RetryPolicy;
use temporalio_common::protos::temporal::api::failure::v1::failure::FailureInfo;
use temporalio_sdk::workflows::select;
use temporalio_sdk::{
    ActivityExecutionError, LocalActivityOptions, TimerOptions, WorkflowCancellationToken,
    WorkflowContext, WorkflowResult,
};

use crate::domain::NotificationKind;
use crate::domain::{FailureCode, Order, Step};
use crate::workflow::activities::{
    CreateInput, NotifyInput, OrderActivities, PaymentInput, StepReport, UNAVAILABLE,
    WorkflowSettings,
};
use crate::workflow::retry::RetryConfig;
use crate::workflow::state::StepState;

use super::base::*;

/// One attempt per call; the workflow counts attempts and waits between them.
pub(super) fn step_options(settings: &WorkflowSettings) -> LocalActivityOptions {
    LocalActivityOptions::builder()
        .start_to_close_timeout(settings.step_timeout)
        .retry_policy(RetryPolicy::builder().maximum_attempts(1).build())
        .cancellation_token(WorkflowCancellationToken::new())
        .build()
}

/// Compensation and bookkeeping must happen: retry until they do.
pub(super) fn must_complete_options() -> LocalActivityOptions {
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

/// Bookkeeping in today's code: a few quick tries inside the local
/// activity (well within a workflow task's timeout, so without heartbeats),
/// then the workflow waits on a durable timer ([`OrderWorkflow::must_complete`]).
pub(super) fn short_local_retries() -> LocalActivityOptions {
    LocalActivityOptions::builder()
        .start_to_close_timeout(Duration::from_secs(30))
        .retry_policy(
            RetryPolicy::builder()
                .maximum_attempts(3)
                .initial_interval(Duration::from_millis(250))
                .backoff_coefficient(2.0)
                .maximum_interval(Duration::from_secs(1))
                .build(),
        )
        .cancellation_token(WorkflowCancellationToken::new())
        .build()
}

/// A timer no cancellation touches.
///
/// The SDK (temporalio-workflow 1.1) cancels a timer tied to the workflow's
/// cancellation token while it applies Temporal's cancellation, before the
/// rest of the same activation. When the timer fired while no worker held
/// the order, its firing arrives in that same activation, finds the timer
/// gone and panics ("resolution must have a registered unblocker"), in
/// every retry of the workflow task: the order never ends. Timers here are
/// tied to tokens of their own and cancelled by the workflow's code
/// (DOCS.md, "A cancellation that meets a retry's timer").
pub(super) fn detached(wait: Duration) -> TimerOptions {
    TimerOptions::builder(wait)
        .cancellation_token(WorkflowCancellationToken::new())
        .build()
}

/// Best effort with the order's own retry policy (failure and cancellation notices).
pub(super) fn best_effort_options(retry: &RetryConfig) -> LocalActivityOptions {
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

/// A local activity's result as the workflow can use it. One the worker
/// cannot read (sealed under a key its key file lacks, or written by other
/// code) is not the activity's failure: the workflow task fails, and is
/// retried until a worker that can read it runs the order, as when a
/// worker cannot decode a task at all.
// The SDK's own error type, passed through as it came.
#[allow(clippy::result_large_err)]
pub(super) fn readable<T>(
    result: Result<T, ActivityExecutionError>,
) -> Result<T, ActivityExecutionError> {
    match result {
        Err(ActivityExecutionError::Serialization(e)) => {
            panic!("this worker cannot read a step's recorded result: {e}")
        }
        other => other,
    }
}

/// How one attempt of a step failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum AttemptError {
    /// A business failure: the order ends with this code.
    Business(FailureCode, String),
    /// May pass; counts as an attempt.
    Transient(String),
    /// A dependency (the database) is down: wait for it, not an attempt.
    Unavailable(String),
}

/// Reads an activity's failure. A regular activity's failure arrives wrapped
/// in an activity failure; a local activity's arrives as it is: look at the
/// first application failure in the chain either way.
pub(super) fn classify(error: &ActivityExecutionError) -> AttemptError {
    let mut next = error.failure();
    while let Some(failure) = next {
        if let Some(FailureInfo::ApplicationFailureInfo(info)) = &failure.failure_info {
            let message = failure.message.clone();
            if info.r#type == UNAVAILABLE {
                return AttemptError::Unavailable(message);
            }
            return match info.r#type.parse::<FailureCode>() {
                Ok(code) if info.non_retryable => AttemptError::Business(code, message),
                _ => AttemptError::Transient(message),
            };
        }
        next = failure.cause.as_deref();
    }
    AttemptError::Transient(error.to_string())
}

/// After a failed attempt: wait and try again (in this state, for this
/// reason), or stop with this outcome (and message).
pub(super) enum Retry {
    Wait(Duration, StepState, String),
    Stop(StepOutcome, String),
}

/// The backoff of a dependency outage: the retry policy's waits, counted
/// per wait rather than per attempt.
pub(super) struct Outage {
    since: DateTime<Utc>,
    waits: u32,
}

impl OrderWorkflow {
    /// Runs one attempt of a step.
    pub(super) async fn attempt(
        ctx: &WorkflowContext<Self>,
        order: &Order,
        step: Step,
        attempt: u32,
        settings: &WorkflowSettings,
    ) -> Result<StepReport, ActivityExecutionError> {
        let order = order.clone();
        let options = step_options(settings);
        match step {
            Step::CreateOrder => {
                let input = CreateInput {
                    order,
                    created_at: ctx.state(|s| s.view.created_at),
                };
                ctx.execute_local_activity(OrderActivities::create_order, input, options)
                    .await
            }
            Step::ReserveInventory => {
                ctx.execute_local_activity(OrderActivities::reserve_inventory, order, options)
                    .await
            }
            Step::ProcessPayment => {
                let input = PaymentInput { order, attempt };
                ctx.execute_local_activity(OrderActivities::process_payment, input, options)
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
                ctx.execute_local_activity(OrderActivities::send_notification, notice, options)
                    .await
            }
        }
    }

    /// Runs a step to success, a business failure, retries running out, the
    /// database staying down past the outage timeout, or a cancellation
    /// during a wait.
    pub(super) async fn run_step(
        ctx: &WorkflowContext<Self>,
        order: &Order,
        step: Step,
        settings: &WorkflowSettings,
    ) -> StepOutcome {
        let mut attempt = 1;
        let mut outage: Option<Outage> = None;
        loop {
            Self::update(ctx, |v| {
                v.step = Some(step);
                let s = v.step_mut(step);
                s.state = StepState::Running;
                s.attempts = attempt;
                s.next_attempt_at = None;
            });
            let error = match readable(Self::attempt(ctx, order, step, attempt, settings).await) {
                Ok(_) => {
                    Self::update(ctx, |v| v.step_mut(step).state = StepState::Done);
                    return StepOutcome::Done;
                }
                Err(error) => error,
            };
            let (wait, state, message) = match Self::after_failure(
                ctx,
                Some(step),
                &error,
                &mut attempt,
                &mut outage,
                settings,
            ) {
                Retry::Wait(wait, state, message) => (wait, state, message),
                Retry::Stop(stop, message) => {
                    Self::update(ctx, |v| {
                        let s = v.step_mut(step);
                        s.state = StepState::Failed;
                        s.last_error = Some(message.clone());
                        s.next_attempt_at = None;
                    });
                    return stop;
                }
            };
            let next = ctx.workflow_time().map(|t| DateTime::<Utc>::from(t + wait));
            Self::update(ctx, |v| {
                let s = v.step_mut(step);
                s.state = state;
                s.last_error = Some(message);
                s.next_attempt_at = next;
            });
            Self::flush_index(ctx);
            Self::backoff(ctx, wait).await;
            if Self::cancel_requested(ctx).is_some() {
                Self::update(ctx, |v| {
                    let s = v.step_mut(step);
                    s.state = StepState::Failed;
                    s.next_attempt_at = None;
                });
                return StepOutcome::Cancelled;
            }
        }
    }

    /// Waits `wait` before a step's next attempt; a cancellation (the
    /// signal, or Temporal's) cuts the wait short. The timer is its own
    /// ([`detached`]): when Temporal's cancellation ends the wait it is
    /// cancelled here, as the SDK would have (the same command, so older
    /// histories replay), and in today's code also when the signal does.
    pub(super) async fn backoff(ctx: &WorkflowContext<Self>, wait: Duration) {
        let token = WorkflowCancellationToken::new();
        let mut timer = ctx.timer(
            TimerOptions::builder(wait)
                .cancellation_token(token.clone())
                .build(),
        );
        // `wait_condition` also ends on Temporal's cancellation.
        let fired = select! {
            _ = &mut timer => true,
            _ = ctx.wait_condition(|s: &Self| s.cancel_reason.is_some()) => false,
        };
        drop(timer);
        if !fired && (ctx.state(|s| s.v4) || ctx.cancellation_token().is_cancelled()) {
            token.cancel();
        }
    }

    /// What follows a failed attempt of `step` (or of a notice, `None`): a
    /// business failure stops at once; an outage waits, not as an attempt,
    /// until the outage timeout; another failure counts an attempt and
    /// waits, until the attempts run out.
    pub(super) fn after_failure(
        ctx: &WorkflowContext<Self>,
        step: Option<Step>,
        error: &ActivityExecutionError,
        attempt: &mut u32,
        outage: &mut Option<Outage>,
        settings: &WorkflowSettings,
    ) -> Retry {
        let retry = &settings.retry;
        match classify(error) {
            AttemptError::Business(code, message) => {
                Retry::Stop(StepOutcome::Refused(code, message.clone()), message)
            }
            AttemptError::Unavailable(message) => {
                let at = now(ctx).unwrap_or_default();
                let outage = outage.get_or_insert(Outage {
                    since: at,
                    waits: 0,
                });
                let elapsed = (at - outage.since).to_std().unwrap_or_default();
                if elapsed >= settings.outage_timeout {
                    let message = format!(
                        "{message} (the database did not answer for {})",
                        humantime::format_duration(settings.outage_timeout)
                    );
                    return Retry::Stop(
                        StepOutcome::Failed(FailureCode::Internal, message.clone()),
                        message,
                    );
                }
                outage.waits += 1;
                // Not past the outage timeout, so the order fails then, not later.
                let wait = retry
                    .outage_backoff(outage.waits, elapsed)
                    .min(settings.outage_timeout - elapsed)
                    .max(Duration::from_secs(1));
                Retry::Wait(wait, StepState::Waiting, message)
            }
            AttemptError::Transient(message) => {
                *outage = None;
                if *attempt >= retry.max_attempts {
                    let code = match step {
                        Some(Step::ProcessPayment) => FailureCode::PaymentUnavailable,
                        _ => FailureCode::Internal,
                    };
                    let message = format!("{message} (gave up after {attempt} attempts)");
                    return Retry::Stop(StepOutcome::Failed(code, message.clone()), message);
                }
                *attempt += 1;
                Retry::Wait(retry.backoff(*attempt - 1), StepState::Retrying, message)
            }
        }
    }

    /// Runs bookkeeping that must happen (an ending, a record) until it
    /// does. Today's code ([`ORDER_WORKFLOW_4`]) tries it with a short
    /// local back-off, then waits on durable timers that grow with the
    /// outage ([`RetryConfig::outage_backoff`]), so however long the
    /// database is away the history gains a bounded number of events.
    /// Older histories let the SDK retry the local activity, as they did
    /// (it heartbeats the workflow task while it retries).
    pub(super) async fn must_complete<T, F, Fut>(
        ctx: &WorkflowContext<Self>,
        settings: &WorkflowSettings,
        mut call: F,
    ) -> WorkflowResult<T>
    where
        F: FnMut(LocalActivityOptions) -> Fut,
        Fut: std::future::Future<Output = Result<T, ActivityExecutionError>>,
    {
        if !ctx.state(|s| s.v4) {
            return Ok(readable(call(must_complete_options()).await)?);
        }
        let mut since = None;
        let mut waits = 0;
        loop {
            let error = match readable(call(short_local_retries()).await) {
                Ok(done) => {
                    Self::update(ctx, |v| v.ending_error = None);
                    return Ok(done);
                }
                Err(error) => error,
            };
            let at = now(ctx).unwrap_or_default();
            let since = *since.get_or_insert(at);
            waits += 1;
            let elapsed = (at - since).to_std().unwrap_or_default();
            let wait = settings.retry.outage_backoff(waits, elapsed);
            let message = match classify(&error) {
                AttemptError::Business(_, m)
                | AttemptError::Transient(m)
                | AttemptError::Unavailable(m) => m,
            };
            Self::update(ctx, |v| v.ending_error = Some(message));
            Self::flush_index(ctx);
            ctx.timer(detached(wait)).await;
        }
    }
}
