//! What every part of the workflow shares: the patches, the workflow's
//! struct and state, how a step ended, and the helpers that show a change
//! in the `status` query and the search attributes.

use chrono::{DateTime, Utc};
use temporalio_common::search_attributes::SearchAttributeUpdate;
use temporalio_sdk::WorkflowContext;
use temporalio_sdk::workflows::workflow;

use crate::domain::{CancelReason, FailureCode, Order, OrderStatus};
use crate::domain::{Notification, NotificationKind};
use crate::workflow::search;
use crate::workflow::state::OrderView;

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
pub(super) const SIGNALLED: &str = "cancel requested";

/// The reason recorded for Temporal's own cancellation when it gave none.
pub(super) const THROUGH_TEMPORAL: &str = "cancelled through Temporal";

/// How one step ended.
pub(super) enum StepOutcome {
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
    pub(super) order: Result<Order, String>,
    /// The key the input is sealed under, when this worker cannot decrypt
    /// it: not an invalid order, but one this worker cannot read.
    pub(super) unreadable: Option<String>,
    /// The input arrived unencrypted: refused when the worker's settings
    /// say so ([`WorkflowSettings::refuse_clear`]).
    pub(super) arrived_clear: bool,
    /// When the workflow was started (not when a worker first ran it): the
    /// order's `createdAt`, in its state and its row alike.
    pub(super) started_at: Option<DateTime<Utc>>,
    pub(super) view: OrderView,
    /// Set by the `cancel` signal; Temporal's own cancellation is read from
    /// the workflow's cancellation token.
    pub(super) cancel_reason: Option<String>,
    /// Whether this order runs [`ORDER_WORKFLOW_3`] or later.
    pub(super) current: bool,
    /// Whether this order runs today's code ([`ORDER_WORKFLOW_4`]).
    pub(super) v4: bool,
    /// Whether this order sets its search attributes.
    pub(super) indexed: bool,
    /// Search-attribute changes not yet sent: they go out together, once,
    /// before the workflow waits and at its end (see [`Self::flush_index`]).
    pub(super) unindexed: Vec<SearchAttributeUpdate>,
}

pub(super) fn now(ctx: &WorkflowContext<OrderWorkflow>) -> Option<DateTime<Utc>> {
    ctx.workflow_time().map(DateTime::<Utc>::from)
}

/// What undoes a step; registered before the step runs. Only histories
/// recorded before [`END_FROM_DATABASE`] use it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Compensation {
    ReleaseInventory,
    RefundPayment,
}

/// The notice of `kind` for `order`.
pub(super) fn notification(order: &Order, kind: NotificationKind, message: &str) -> Notification {
    Notification {
        order_id: order.id().clone(),
        kind,
        recipient: order.customer_email().cloned(),
        total_amount: order.total_amount(),
        currency: order.currency(),
        message: message.to_owned(),
    }
}

impl OrderWorkflow {
    /// Sets the order's search attributes — its status, its failure code,
    /// and `more` — when it carries them. Today's code holds the change
    /// until [`Self::flush_index`].
    pub(super) fn index(
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
    pub(super) fn flush_index(ctx: &WorkflowContext<Self>) {
        let updates = ctx.state_mut(|s| std::mem::take(&mut s.unindexed));
        if !updates.is_empty() {
            // Later changes of an attribute win: the server applies them in order.
            ctx.upsert_search_attributes(updates);
        }
    }

    pub(super) fn update(ctx: &WorkflowContext<Self>, change: impl FnOnce(&mut OrderView)) {
        let at = now(ctx);
        ctx.state_mut(|s| {
            change(&mut s.view);
            s.view.updated_at = at;
        });
    }

    /// The reason, when the `cancel` signal or Temporal's cancellation asked.
    pub(super) fn cancel_requested(ctx: &WorkflowContext<Self>) -> Option<String> {
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
}
