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
//!   during backoffs.
//! - A step whose database is down waits for it (capped backoff, up to the
//!   worker's outage timeout) without counting an attempt.
//! - An order that ends early is ended from what the database holds
//!   (`end_order`): what it still holds is released and refunded whatever
//!   the workflow remembers doing, since a local activity can take effect in
//!   a workflow task whose result is lost. The first ending recorded wins,
//!   and an order whose confirmation already went out stays `COMPLETED`.
//!   Histories recorded before this ([`END_FROM_DATABASE`]) undo what the
//!   workflow registered, as they did.

use std::time::Duration;

use chrono::{DateTime, Utc};
use temporalio_common::RetryPolicy;
use temporalio_common::data_converters::RawValue;
use temporalio_common::protos::temporal::api::failure::v1::failure::FailureInfo;
use temporalio_common::search_attributes::SearchAttributeUpdate;
use temporalio_sdk::workflows::{select, workflow, workflow_methods};
use temporalio_sdk::{
    ActivityExecutionError, ApplicationFailure, LocalActivityOptions, SyncWorkflowContext,
    TimerOptions, WorkflowCancellationToken, WorkflowContext, WorkflowContextView, WorkflowResult,
    WorkflowTermination,
};

use super::activities::{
    EndInput, EndReport, NotifyInput, OrderActivities, OutcomeInput, PaymentInput, StepReport,
    UNAVAILABLE, WorkflowSettings,
};
use super::input::WorkflowInput;
use super::retry::RetryConfig;
use super::search;
use super::signals::{self, CancelSignal};
use super::state::{CancellationView, FailureView, OrderView, StepState};
use crate::domain::{CancelReason, Delivery, FailureCode, Order, OrderStatus, Step, WorkflowId};
use crate::services::notification::{Notification, NotificationKind};
use crate::services::orders::Ending;

/// The patch under which orders carry search attributes (`search.rs`),
/// upserted at each status change.
pub const SEARCH_ATTRIBUTES: &str = "search-attributes";

/// The patch of today's workflow. It implies every earlier one and drives
/// the bookkeeping that must happen (an ending, a record) with durable
/// timers whose waits grow with an outage, instead of the SDK's local
/// retries, which heartbeat the workflow task every few seconds: an ending
/// waiting out a long outage then adds a bounded number of events to the
/// history, not some twenty a minute. A step's wait that a cancellation
/// cuts short also cancels its timer. The next change adds
/// `order-workflow-5`, checked first.
pub const ORDER_WORKFLOW_4: &str = "order-workflow-4";

/// The patch that sends the search attributes once per workflow task
/// rather than once per status change; it implies every earlier one
/// ([`END_FROM_DATABASE`], [`SEARCH_ATTRIBUTES`]). One patch for all: each
/// costs every order a marker and an upsert of `TemporalChangeVersion`, a
/// visibility write on the server.
pub const ORDER_WORKFLOW_3: &str = "order-workflow-3";

/// The patch under which an early ending is decided by the database
/// (`end_order`) rather than by the compensations the workflow registered.
pub const END_FROM_DATABASE: &str = "end-from-database";

/// The reason recorded for a `cancel` signal that gave none.
const SIGNALLED: &str = "cancel requested";

/// The reason recorded for Temporal's own cancellation when it gave none.
const THROUGH_TEMPORAL: &str = "cancelled through Temporal";

/// What undoes a step; registered before the step runs. Only histories
/// recorded before [`END_FROM_DATABASE`] use it.
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
    /// The step was refused for a business reason (a confirmation refused
    /// because the order has ended; the other steps end the order either way).
    Refused(FailureCode, String),
    /// A cancellation arrived while the step waited to retry.
    Cancelled,
}

#[workflow]
pub struct OrderWorkflow {
    /// The order, or why the input is not one (`INVALID_ORDER`).
    order: Result<Order, String>,
    /// The key the input is sealed under, when this worker cannot decrypt
    /// it: not an invalid order, but one this worker cannot read.
    unreadable: Option<String>,
    view: OrderView,
    /// Set by the `cancel` signal; Temporal's own cancellation is read from
    /// the workflow's cancellation token.
    cancel_reason: Option<String>,
    /// Whether this order runs [`ORDER_WORKFLOW_3`] or later.
    current: bool,
    /// Whether this order runs today's code ([`ORDER_WORKFLOW_4`]).
    v4: bool,
    /// Whether this order sets its search attributes.
    indexed: bool,
    /// Search-attribute changes not yet sent: they go out together, once,
    /// before the workflow waits and at its end (see [`Self::flush_index`]).
    unindexed: Vec<SearchAttributeUpdate>,
}

fn now(ctx: &WorkflowContext<OrderWorkflow>) -> Option<DateTime<Utc>> {
    ctx.workflow_time().map(DateTime::<Utc>::from)
}

/// One attempt per call; the workflow counts attempts and waits between them.
fn step_options(settings: &WorkflowSettings) -> LocalActivityOptions {
    LocalActivityOptions::builder()
        .start_to_close_timeout(settings.step_timeout)
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

/// Bookkeeping in today's code: a few quick tries inside the local
/// activity (well within a workflow task's timeout, so without heartbeats),
/// then the workflow waits on a durable timer ([`OrderWorkflow::must_complete`]).
fn short_local_retries() -> LocalActivityOptions {
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
fn detached(wait: Duration) -> TimerOptions {
    TimerOptions::builder(wait)
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

/// A local activity's result as the workflow can use it. One the worker
/// cannot read (sealed under a key its key file lacks, or written by other
/// code) is not the activity's failure: the workflow task fails, and is
/// retried until a worker that can read it runs the order, as when a
/// worker cannot decode a task at all.
// The SDK's own error type, passed through as it came.
#[allow(clippy::result_large_err)]
fn readable<T>(result: Result<T, ActivityExecutionError>) -> Result<T, ActivityExecutionError> {
    match result {
        Err(ActivityExecutionError::Serialization(e)) => {
            panic!("this worker cannot read a step's recorded result: {e}")
        }
        other => other,
    }
}

/// How one attempt of a step failed.
#[derive(Debug, Clone, PartialEq, Eq)]
enum AttemptError {
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
fn classify(error: &ActivityExecutionError) -> AttemptError {
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
enum Retry {
    Wait(Duration, StepState, String),
    Stop(StepOutcome, String),
}

/// The backoff of a dependency outage: the retry policy's waits, counted
/// per wait rather than per attempt.
struct Outage {
    since: DateTime<Utc>,
    waits: u32,
}

#[workflow_methods]
impl OrderWorkflow {
    /// Checks the input: every rule of SPEC §2, and that the order's ID is
    /// the workflow's. An input that fails is kept as the reason; `run`
    /// then ends the order at once.
    #[init]
    pub fn new(ctx: &WorkflowContextView, input: WorkflowInput) -> Self {
        let workflow_id = ctx.workflow_id();
        let order = input.order(workflow_id);
        let view = match &order {
            Ok(order) => OrderView::new(order),
            Err(message) => OrderView::rejected(WorkflowId::lossy(workflow_id), message.clone()),
        };
        Self {
            unreadable: input.sealed_key(),
            order,
            view,
            cancel_reason: None,
            current: false,
            v4: false,
            indexed: false,
            unindexed: Vec::new(),
        }
    }

    #[run]
    pub async fn run(ctx: &mut WorkflowContext<Self>) -> WorkflowResult<OrderView> {
        // The workflow task fails (a panic here is the SDK's way to fail
        // one), and is retried, until a worker with the key runs the order.
        if let Some(key) = ctx.state(|s| s.unreadable.clone()) {
            panic!(
                "this worker cannot decrypt the order's input (key {key}): its \
                 --encryption-key-file lacks that key, or it has none"
            );
        }
        let started = now(ctx);
        ctx.state_mut(|s| {
            s.view.created_at = started;
            s.view.updated_at = started;
        });
        // An input that is not a valid order ends here, before any effect.
        let order = match ctx.state(|s| s.order.clone()) {
            Ok(order) => order,
            Err(message) => {
                return Self::ended(
                    ctx,
                    OrderStatus::Failed,
                    Some((FailureCode::InvalidOrder, message)),
                );
            }
        };
        let order = &order;
        // Before anything awaits: on replay a patch is seen only in the
        // workflow task that recorded it, and a query can end the first task
        // right after its first local activity.
        let v4 = ctx.patched(ORDER_WORKFLOW_4);
        let current = v4 || ctx.patched(ORDER_WORKFLOW_3);
        let settings: WorkflowSettings = readable(
            ctx.execute_local_activity(OrderActivities::settings, (), must_complete_options())
                .await,
        )?;
        // Histories from before have neither the setting nor the patch.
        let indexed = settings.search_attributes && (current || ctx.patched(SEARCH_ATTRIBUTES));
        ctx.state_mut(|s| {
            s.current = current;
            s.v4 = v4;
            s.indexed = indexed;
        });
        Self::index(
            ctx,
            OrderStatus::Pending,
            None,
            // Search attributes are stored in clear: with encryption on,
            // the customer stays out of them.
            (!settings.encrypted)
                .then(|| search::CUSTOMER_ID.value_set(order.customer_id().to_string()))
                .into_iter()
                .chain([search::ORDER_TOTAL.value_set(order.total_amount().as_f64())]),
        );
        let mut compensations = Vec::new();
        let notified = match Self::steps(ctx, order, &settings, &mut compensations).await {
            Ok(notified) => notified,
            Err(intent) => return Self::end(ctx, order, &compensations, &settings, intent).await,
        };
        Self::update(ctx, |v| {
            v.status = OrderStatus::Completed;
            v.notified = Some(notified);
            v.notification = notified.then_some(Delivery::Sent);
        });
        Self::index(ctx, OrderStatus::Completed, None, []);
        // A delivered confirmation recorded COMPLETED itself, in its own
        // transaction; otherwise record it now, unless the order ended
        // otherwise meanwhile (then that ending is the order's).
        if !notified {
            let report =
                Self::record_outcome(ctx, order, &settings, OrderStatus::Completed, None, None)
                    .await?;
            if report.already {
                let intent = Intent::Fail(FailureCode::Internal, report.detail);
                return Self::end(ctx, order, &compensations, &settings, intent).await;
            }
            Self::update(ctx, |v| v.notification = report.notification);
        }
        Self::flush_index(ctx);
        Ok(ctx.state(|s| s.view.clone()))
    }

    /// Asks the order to cancel. Before `COMPLETED` it is cancelled after
    /// compensation; afterwards the request is refused and changes nothing.
    /// The payload is read leniently ([`signals::read_cancel`]): one that is
    /// not a cancel request is recorded as rejected, and the order goes on.
    #[signal(name = "cancel")]
    pub fn cancel(&mut self, ctx: &mut SyncWorkflowContext<Self>, request: RawValue) {
        let reason = match signals::read_cancel(&request.payloads) {
            CancelSignal::Cancel(reason) => reason
                .map(|r| r.as_str().to_owned())
                .unwrap_or_else(|| SIGNALLED.to_owned()),
            CancelSignal::Rejected(problem) => {
                let at = ctx.workflow_time().map(DateTime::<Utc>::from);
                self.view.reject_signal("cancel", problem, at);
                return;
            }
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

/// Why an order ends early.
#[derive(Debug, Clone)]
enum Intent {
    Fail(FailureCode, String),
    Cancel(String),
}

impl Intent {
    /// The ending asked for, at the step the order had reached.
    fn ending(&self, step: Option<Step>) -> Ending {
        let (status, failure, cancel_reason) = match self {
            Self::Fail(code, message) => {
                (OrderStatus::Failed, Some((*code, message.clone())), None)
            }
            Self::Cancel(reason) => (OrderStatus::Cancelled, None, Some(reason.clone())),
        };
        Ending {
            status,
            step,
            failure,
            cancel_reason,
        }
    }
}

/// Shows an ending in the order's state; a cancel still pending did not
/// take effect, so it was refused.
fn show_ending(v: &mut OrderView, ending: &Ending) {
    refuse_pending_cancel(v);
    v.status = ending.status;
    v.failure = ending.failure.as_ref().map(|(code, message)| FailureView {
        code: *code,
        message: message.clone(),
    });
    if let (OrderStatus::Cancelled, Some(reason)) = (ending.status, &ending.cancel_reason) {
        v.cancellation = Some(CancellationView {
            reason: reason.clone(),
            outcome: "cancelled".into(),
        });
    }
}

/// A cancel that was requested but did not take effect: refused.
fn refuse_pending_cancel(v: &mut OrderView) {
    if let Some(c) = v.cancellation.as_mut().filter(|c| c.outcome == "requested") {
        c.outcome = "refused".into();
    }
}

/// What to tell the customer of an ending: words chosen by the failure's
/// code, never its message (which may carry a database's or a gateway's
/// words), and for a cancellation the reason a person gave, if any.
fn notice_of(ending: &Ending) -> (NotificationKind, String) {
    match (&ending.failure, &ending.cancel_reason) {
        (Some((code, _)), _) => (
            NotificationKind::Failure,
            code.customer_message().to_owned(),
        ),
        (None, reason) => (
            NotificationKind::Cancellation,
            match reason
                .as_deref()
                .filter(|r| ![SIGNALLED, THROUGH_TEMPORAL].contains(r))
                .and_then(CancelReason::lenient)
            {
                Some(reason) => format!("Your order was cancelled: {reason}"),
                None => "Your order was cancelled.".to_owned(),
            },
        ),
    }
}

impl OrderWorkflow {
    /// The four steps, each after a look for a cancellation. `Ok`: the
    /// order is paid and its confirmation went out (`true`) or could not
    /// (`false`, which never undoes a paid order). `Err`: why it ends early.
    async fn steps(
        ctx: &WorkflowContext<Self>,
        order: &Order,
        settings: &WorkflowSettings,
        compensations: &mut Vec<Compensation>,
    ) -> Result<bool, Intent> {
        for &step in Step::ALL {
            if let Some(reason) = Self::cancel_requested(ctx) {
                return Err(Intent::Cancel(reason));
            }
            match step {
                Step::ReserveInventory => compensations.push(Compensation::ReleaseInventory),
                Step::ProcessPayment => compensations.push(Compensation::RefundPayment),
                _ => {}
            }
            let reached = match step {
                Step::CreateOrder => OrderStatus::Created,
                Step::ReserveInventory => OrderStatus::InventoryReserved,
                Step::ProcessPayment => OrderStatus::Paid,
                Step::SendNotification => OrderStatus::Paid,
            };
            match (step, Self::run_step(ctx, order, step, settings).await) {
                (Step::SendNotification, StepOutcome::Done) => return Ok(true),
                (Step::SendNotification, StepOutcome::Failed(..)) => return Ok(false),
                (_, StepOutcome::Done) => {
                    Self::update(ctx, |v| v.status = reached);
                    Self::index(ctx, reached, None, []);
                }
                // A refused confirmation: the order has already ended otherwise
                // (recorded by an execution whose result this one never saw).
                (_, StepOutcome::Failed(code, message) | StepOutcome::Refused(code, message)) => {
                    return Err(Intent::Fail(code, message));
                }
                (_, StepOutcome::Cancelled) => {
                    return Err(Intent::Cancel(
                        Self::cancel_requested(ctx).unwrap_or_default(),
                    ));
                }
            }
        }
        Ok(false)
    }

    /// Sets the order's search attributes — its status, its failure code,
    /// and `more` — when it carries them. Today's code holds the change
    /// until [`Self::flush_index`].
    fn index(
        ctx: &WorkflowContext<Self>,
        status: OrderStatus,
        code: Option<FailureCode>,
        more: impl IntoIterator<Item = SearchAttributeUpdate>,
    ) {
        if !ctx.state(|s| s.indexed) {
            return;
        }
        let mut updates = vec![search::ORDER_STATUS.value_set(status.as_str().to_owned())];
        updates.extend(code.map(|c| search::FAILURE_CODE.value_set(c.as_str().to_owned())));
        updates.extend(more);
        if ctx.state(|s| s.current) {
            ctx.state_mut(|s| s.unindexed.extend(updates));
        } else {
            ctx.upsert_search_attributes(updates);
        }
    }

    /// Sends the held search-attribute changes as one upsert. Called before
    /// every wait and at the end: visibility only sees a workflow task's
    /// result, so one upsert per task shows the same as one per status
    /// change, at a fifth of the history events (each is a visibility write).
    fn flush_index(ctx: &WorkflowContext<Self>) {
        let updates = ctx.state_mut(|s| std::mem::take(&mut s.unindexed));
        if !updates.is_empty() {
            // Later changes of an attribute win: the server applies them in order.
            ctx.upsert_search_attributes(updates);
        }
    }

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
                .and_then(|r| CancelReason::lenient(&r))
                .map(|r| r.as_str().to_owned())
                .unwrap_or_else(|| THROUGH_TEMPORAL.to_owned())
        })
    }

    /// Runs one attempt of a step.
    async fn attempt(
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
                ctx.execute_local_activity(OrderActivities::create_order, order, options)
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
    async fn run_step(
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
    async fn backoff(ctx: &WorkflowContext<Self>, wait: Duration) {
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
    fn after_failure(
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

    /// Ends the order early, `FAILED` or `CANCELLED`.
    async fn end(
        ctx: &WorkflowContext<Self>,
        order: &Order,
        compensations: &[Compensation],
        settings: &WorkflowSettings,
        intent: Intent,
    ) -> WorkflowResult<OrderView> {
        if !ctx.state(|s| s.current) && !ctx.patched(END_FROM_DATABASE) {
            return Self::end_v1(ctx, order, compensations, settings, intent).await;
        }
        let asked = intent.ending(ctx.state(|s| s.view.step));
        let input = EndInput {
            order: order.clone(),
            ending: asked.clone(),
        };
        let report: EndReport = Self::must_complete(ctx, settings, |options| {
            ctx.execute_local_activity(OrderActivities::end_order, input.clone(), options)
        })
        .await?;
        let refused = |v: &mut OrderView| {
            if let Intent::Cancel(reason) = &intent {
                v.cancellation = Some(CancellationView {
                    reason: reason.clone(),
                    outcome: "refused".into(),
                });
            }
        };
        if report.completed {
            // Its confirmation went out before this ending could take
            // effect (in a workflow task whose result was lost): it stays
            // completed, and a cancel is refused.
            Self::update(ctx, |v| {
                v.status = OrderStatus::Completed;
                v.step = Some(Step::SendNotification);
                v.notification = report.confirmation;
                v.notified = report.confirmation.map(|c| c == Delivery::Sent);
                for s in &mut v.steps {
                    s.state = StepState::Done;
                    s.attempts = s.attempts.max(1);
                    s.next_attempt_at = None;
                }
                refuse_pending_cancel(v);
                refused(v);
            });
            Self::index(ctx, OrderStatus::Completed, None, []);
            Self::flush_index(ctx);
            return Ok(ctx.state(|s| s.view.clone()));
        }
        let ending = report.ending.unwrap_or(asked);
        Self::update(ctx, |v| {
            if report.released > 0 {
                v.step_mut(Step::ReserveInventory).state = StepState::Compensated;
            }
            if report.refunded.is_some() {
                v.step_mut(Step::ProcessPayment).state = StepState::Compensated;
            }
            for s in &mut v.steps {
                if s.state == StepState::Pending {
                    s.state = StepState::Skipped;
                }
            }
            // A cancel that came after the order had ended otherwise is refused.
            refused(v);
            show_ending(v, &ending);
        });
        let code = ending.failure.as_ref().map(|(code, _)| *code);
        Self::index(ctx, ending.status, code, []);
        let (kind, message) = notice_of(&ending);
        if !report.not_this_order {
            Self::deliver_notice(ctx, order, settings, kind, message).await;
        }
        Self::ended(ctx, ending.status, ending.failure)
    }

    /// Delivers the ending's notice, recorded with the ending: retried like
    /// a step (outages wait, other failures count), then left recorded as
    /// failed. The order has ended, so no cancellation cuts a wait short.
    async fn deliver_notice(
        ctx: &WorkflowContext<Self>,
        order: &Order,
        settings: &WorkflowSettings,
        kind: NotificationKind,
        message: String,
    ) {
        let notice = NotifyInput {
            notification: notification(order, kind, &message),
            completes_order: false,
        };
        let mut attempt = 1;
        let mut outage: Option<Outage> = None;
        loop {
            let error = match readable(
                ctx.execute_local_activity(
                    OrderActivities::send_notification,
                    notice.clone(),
                    step_options(settings),
                )
                .await,
            ) {
                Ok(_) => return,
                Err(error) => error,
            };
            let wait =
                match Self::after_failure(ctx, None, &error, &mut attempt, &mut outage, settings) {
                    Retry::Wait(wait, ..) => wait,
                    Retry::Stop(..) => return,
                };
            Self::flush_index(ctx);
            ctx.timer(detached(wait)).await;
        }
    }

    /// The workflow's end for an order that ended early: a failure carrying
    /// the order's state, or a cancellation carrying it.
    fn ended(
        ctx: &WorkflowContext<Self>,
        status: OrderStatus,
        failure: Option<(FailureCode, String)>,
    ) -> WorkflowResult<OrderView> {
        Self::flush_index(ctx);
        let view = ctx.state(|s| s.view.clone());
        match (status, failure) {
            (OrderStatus::Failed, Some((code, message))) => {
                Err(ApplicationFailure::builder(message)
                    .type_name(code.as_str().to_owned())
                    .non_retryable(true)
                    .details(view)
                    .build()
                    .into())
            }
            _ => Err(WorkflowTermination::cancelled_with_details(view)),
        }
    }

    /// Undoes what was done, newest first (histories recorded before
    /// [`END_FROM_DATABASE`]). Each compensation is idempotent and
    /// tolerates "nothing to undo", so it is safe whether or not the step
    /// it covers took effect.
    async fn compensate_v1(
        ctx: &WorkflowContext<Self>,
        order: &Order,
        compensations: &[Compensation],
    ) -> WorkflowResult<()> {
        let order_id = order.id().clone();
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
        order: &Order,
        settings: &WorkflowSettings,
        status: OrderStatus,
        failure: Option<(FailureCode, String)>,
        cancel_reason: Option<String>,
    ) -> WorkflowResult<StepReport> {
        let (order_id, step) = (order.id().clone(), ctx.state(|s| s.view.step));
        let input = OutcomeInput {
            order_id,
            status,
            step,
            failure,
            cancel_reason,
        };
        Self::must_complete(ctx, settings, |options| {
            ctx.execute_local_activity(OrderActivities::record_outcome, input.clone(), options)
        })
        .await
    }

    /// Runs bookkeeping that must happen (an ending, a record) until it
    /// does. Today's code ([`ORDER_WORKFLOW_4`]) tries it with a short
    /// local back-off, then waits on durable timers that grow with the
    /// outage ([`RetryConfig::outage_backoff`]), so however long the
    /// database is away the history gains a bounded number of events.
    /// Older histories let the SDK retry the local activity, as they did
    /// (it heartbeats the workflow task while it retries).
    async fn must_complete<T, F, Fut>(
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

    /// Tells the customer; a notice that cannot be delivered stays recorded
    /// as failed (histories recorded before [`END_FROM_DATABASE`]).
    async fn notify_best_effort_v1(
        ctx: &WorkflowContext<Self>,
        order: &Order,
        retry: &RetryConfig,
        kind: NotificationKind,
        message: String,
    ) {
        let notice = NotifyInput {
            notification: notification(order, kind, &message),
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

    /// An early ending in a history from before [`END_FROM_DATABASE`]:
    /// undo what was registered, record the ending, tell the customer.
    async fn end_v1(
        ctx: &WorkflowContext<Self>,
        order: &Order,
        compensations: &[Compensation],
        settings: &WorkflowSettings,
        intent: Intent,
    ) -> WorkflowResult<OrderView> {
        Self::compensate_v1(ctx, order, compensations).await?;
        let ending = intent.ending(None);
        let (status, failure, reason) = (
            ending.status,
            ending.failure.clone(),
            ending.cancel_reason.clone(),
        );
        Self::update(ctx, |v| show_ending(v, &ending));
        let (kind, message) = notice_of(&ending);
        Self::record_outcome(ctx, order, settings, status, failure.clone(), reason).await?;
        Self::notify_best_effort_v1(ctx, order, &settings.retry, kind, message).await;
        Self::ended(ctx, status, failure)
    }
}

fn notification(order: &Order, kind: NotificationKind, message: &str) -> Notification {
    Notification {
        order_id: order.id().clone(),
        kind,
        recipient: order.customer_email().cloned(),
        total_amount: order.total_amount(),
        currency: order.currency(),
        message: message.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use temporalio_common::{QueryDefinition, SignalDefinition, WorkflowDefinition};

    use super::*;

    #[test]
    fn the_names_other_tools_use_are_the_specs() {
        assert_eq!(OrderWorkflow::run.name(), "OrderWorkflow");
        assert_eq!(OrderWorkflow::cancel.name(), "cancel");
        assert_eq!(OrderWorkflow::status.name(), "status");
    }
}
