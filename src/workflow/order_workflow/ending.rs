//! The ending: an order that ends early is ended from what the database
//! holds (`end_order`), shown in its state, and its customer told once;
//! the outcome is recorded.

use temporalio_sdk::{ApplicationFailure, WorkflowContext, WorkflowResult, WorkflowTermination};

use crate::domain::{CancelReason, Delivery, FailureCode, Order, OrderStatus, Step};
use crate::domain::{Ending, NotificationKind};
use crate::workflow::activities::{
    EndInput, EndReport, NotifyInput, OrderActivities, OutcomeInput, StepReport, WorkflowSettings,
};
use crate::workflow::state::{CancellationView, FailureView, OrderView, StepState};

use super::attempts::*;
use super::base::*;

/// Why an order ends early.
#[derive(Debug, Clone)]
pub(super) enum Intent {
    Fail(FailureCode, String),
    Cancel(String),
}

impl Intent {
    /// The ending asked for, at the step the order had reached.
    pub(super) fn ending(&self, step: Option<Step>) -> Ending {
        match self {
            Self::Fail(code, message) => Ending::Failed {
                step,
                code: *code,
                message: message.clone(),
            },
            Self::Cancel(reason) => Ending::Cancelled {
                step,
                reason: Some(reason.clone()),
            },
        }
    }
}

/// Shows an ending in the order's state; a cancel still pending did not
/// take effect, so it was refused.
pub(super) fn show_ending(v: &mut OrderView, ending: &Ending) {
    refuse_pending_cancel(v);
    v.status = ending.status();
    v.failure = ending.failure().map(|(code, message)| FailureView {
        code,
        message: message.to_owned(),
    });
    if let (OrderStatus::Cancelled, Some(reason)) = (ending.status(), ending.cancel_reason()) {
        v.cancellation = Some(CancellationView {
            reason: reason.to_owned(),
            outcome: "cancelled".into(),
        });
    }
}

/// A cancel that was requested but did not take effect: refused.
pub(super) fn refuse_pending_cancel(v: &mut OrderView) {
    if let Some(c) = v.cancellation.as_mut().filter(|c| c.outcome == "requested") {
        c.outcome = "refused".into();
    }
}

/// What to tell the customer of an ending: words chosen by the failure's
/// code, never its message (which may carry a database's or a gateway's
/// words), and for a cancellation the reason a person gave, if any.
pub(super) fn notice_of(ending: &Ending) -> (NotificationKind, String) {
    match (ending.failure(), ending.cancel_reason()) {
        (Some((code, _)), _) => (
            NotificationKind::Failure,
            code.customer_message().to_owned(),
        ),
        (None, reason) => (
            NotificationKind::Cancellation,
            match reason
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
    /// Ends the order early, `FAILED` or `CANCELLED`, from what the
    /// database holds (`end_order`).
    pub(super) async fn end_from_database(
        ctx: &WorkflowContext<Self>,
        order: &Order,
        settings: &WorkflowSettings,
        intent: Intent,
    ) -> WorkflowResult<OrderView> {
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
                    reason: reason.to_owned(),
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
        let code = ending.failure().map(|(code, _)| code);
        Self::index(ctx, ending.status(), code, []);
        let (kind, message) = notice_of(&ending);
        if !report.not_this_order {
            Self::deliver_notice(ctx, order, settings, kind, message).await;
        }
        let failure = ending
            .failure()
            .map(|(code, message)| (code, message.to_owned()));
        Self::ended(ctx, ending.status(), failure)
    }

    /// Delivers the ending's notice, recorded with the ending: retried like
    /// a step (outages wait, other failures count), then left recorded as
    /// failed. The order has ended, so no cancellation cuts a wait short.
    pub(super) async fn deliver_notice(
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
    pub(super) fn ended(
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

    pub(super) async fn record_outcome(
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
}
