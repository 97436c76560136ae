//! The paths only histories recorded before [`END_FROM_DATABASE`] take:
//! compensations the workflow registered, undone as they were then. Kept
//! so those histories replay; no new order takes them.

use temporalio_sdk::{WorkflowContext, WorkflowResult};

use crate::domain::NotificationKind;
use crate::domain::{Order, Step};
use crate::workflow::activities::{NotifyInput, OrderActivities, WorkflowSettings};
use crate::workflow::retry::RetryConfig;
use crate::workflow::state::{OrderView, StepState};

use super::attempts::*;
use super::base::*;
use super::ending::*;

impl OrderWorkflow {
    /// Undoes what was done, newest first (histories recorded before
    /// [`END_FROM_DATABASE`]). Each compensation is idempotent and
    /// tolerates "nothing to undo", so it is safe whether or not the step
    /// it covers took effect.
    pub(super) async fn compensate_v1(
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

    /// Tells the customer; a notice that cannot be delivered stays recorded
    /// as failed (histories recorded before [`END_FROM_DATABASE`]).
    pub(super) async fn notify_best_effort_v1(
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
    pub(super) async fn end_v1(
        ctx: &WorkflowContext<Self>,
        order: &Order,
        compensations: &[Compensation],
        settings: &WorkflowSettings,
        intent: Intent,
    ) -> WorkflowResult<OrderView> {
        Self::compensate_v1(ctx, order, compensations).await?;
        let ending = intent.ending(None);
        let (status, failure, reason) = (
            ending.status(),
            ending
                .failure()
                .map(|(code, message)| (code, message.to_owned())),
            ending.cancel_reason().map(str::to_owned),
        );
        Self::update(ctx, |v| show_ending(v, &ending));
        let (kind, message) = notice_of(&ending);
        Self::record_outcome(ctx, order, settings, status, failure.clone(), reason).await?;
        Self::notify_best_effort_v1(ctx, order, &settings.retry, kind, message).await;
        Self::ended(ctx, status, failure)
    }
}
