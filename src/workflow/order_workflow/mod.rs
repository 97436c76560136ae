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

use chrono::{DateTime, Utc};
use temporalio_common::data_converters::RawValue;
use temporalio_sdk::workflows::workflow_methods;
use temporalio_sdk::{SyncWorkflowContext, WorkflowContext, WorkflowContextView, WorkflowResult};

use super::activities::{OrderActivities, WorkflowSettings};
use super::input::WorkflowInput;
use super::search;
use super::signals::{self, CancelSignal};
use super::state::{CancellationView, OrderView};
use crate::domain::{Delivery, FailureCode, Order, OrderStatus, Step, WorkflowId};

mod attempts;
mod base;
mod ending;
mod legacy;

use attempts::*;
use base::*;
pub use base::{ORDER_WORKFLOW_3, ORDER_WORKFLOW_4, OrderWorkflow, SEARCH_ATTRIBUTES};
use ending::*;

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
            arrived_clear: input.arrived_clear(),
            started_at: ctx.start_time().map(DateTime::<Utc>::from),
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
            s.view.created_at = s.started_at.or(started);
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
        // A worker that encrypts runs no order sent in clear (a client
        // without the key file): it fails before any step, nothing reserved
        // or charged. The setting is read from the recorded marker on
        // replay, so a worker started otherwise replays it as it ran.
        if settings.refuse_clear && ctx.state(|s| s.arrived_clear) {
            let message = "the order arrived unencrypted, and the worker encrypts: submit it \
                           with the encryption key file (ORDERFLOW_ENCRYPTION_KEY_FILE), or run \
                           the worker with --accept-unencrypted while clients switch over";
            ctx.state_mut(|s| {
                let mut view = OrderView::rejected(s.view.order_id.clone(), message.to_owned());
                view.created_at = s.view.created_at;
                view.updated_at = started;
                s.view = view;
            });
            return Self::ended(
                ctx,
                OrderStatus::Failed,
                Some((FailureCode::InvalidOrder, message.to_owned())),
            );
        }
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

impl OrderWorkflow {
    /// Ends the order early, `FAILED` or `CANCELLED`: from what the
    /// database holds, or, for a history recorded before
    /// [`END_FROM_DATABASE`], by the compensations it registered.
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
        Self::end_from_database(ctx, order, settings, intent).await
    }

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
            let reached = step.reaches();
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
