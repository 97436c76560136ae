//! Client calls on orders: start, query, signal, cancel, await the outcome.

use temporalio_client::errors::{WorkflowGetResultError, WorkflowQueryError, WorkflowStartError};
use temporalio_client::{
    Client, WorkflowCancelOptions, WorkflowGetResultOptions, WorkflowIdConflictPolicy,
    WorkflowIdReusePolicy, WorkflowQueryOptions, WorkflowSignalOptions, WorkflowStartOptions,
};
use temporalio_common::error::IncomingError;

use super::OrderWorkflow;
use super::order_workflow::CancelRequest;
use super::state::OrderView;
use crate::domain::{Order, OrderId};

/// What submitting an order did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Submitted {
    Started {
        run_id: String,
    },
    /// A workflow with this order ID exists (running or closed): nothing new started.
    Exists {
        run_id: String,
    },
}

/// Starts the order's workflow (workflow ID = order ID). An ID that was
/// ever used is never started again.
pub async fn start(client: &Client, task_queue: &str, order: &Order) -> anyhow::Result<Submitted> {
    let options = WorkflowStartOptions::new(task_queue.to_owned(), order.id.as_str().to_owned())
        .id_conflict_policy(WorkflowIdConflictPolicy::Fail)
        .id_reuse_policy(WorkflowIdReusePolicy::RejectDuplicate)
        .build();
    match client
        .start_workflow(OrderWorkflow::run, order.clone(), options)
        .await
    {
        Ok(handle) => Ok(Submitted::Started {
            run_id: handle.run_id().unwrap_or_default().to_owned(),
        }),
        Err(WorkflowStartError::AlreadyStarted { run_id, .. }) => Ok(Submitted::Exists {
            run_id: run_id.unwrap_or_default(),
        }),
        Err(e) => Err(anyhow::Error::new(e).context(format!("starting order {}", order.id))),
    }
}

/// Errors of the calls below that a caller tells apart.
#[derive(Debug, thiserror::Error)]
pub enum OrderCallError {
    #[error("order {0} was not found")]
    NotFound(OrderId),
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

/// The order's live state from its workflow (needs a worker).
pub async fn status(client: &Client, id: &OrderId) -> Result<OrderView, OrderCallError> {
    let handle = client.get_workflow_handle::<OrderWorkflow>(id.as_str());
    handle
        .query(OrderWorkflow::status, (), WorkflowQueryOptions::default())
        .await
        .map_err(|e| match e {
            WorkflowQueryError::NotFound(_) => OrderCallError::NotFound(id.clone()),
            other => OrderCallError::Other(
                anyhow::Error::new(other).context(format!("querying order {id}")),
            ),
        })
}

/// Sends the `cancel` signal.
pub async fn signal_cancel(
    client: &Client,
    id: &OrderId,
    reason: &str,
) -> Result<(), OrderCallError> {
    let handle = client.get_workflow_handle::<OrderWorkflow>(id.as_str());
    let request = CancelRequest {
        reason: reason.to_owned(),
    };
    handle
        .signal(
            OrderWorkflow::cancel,
            request,
            WorkflowSignalOptions::default(),
        )
        .await
        .map_err(|e| match e {
            temporalio_client::errors::WorkflowInteractionError::NotFound(_) => {
                OrderCallError::NotFound(id.clone())
            }
            other => OrderCallError::Other(
                anyhow::Error::new(other).context(format!("signalling order {id}")),
            ),
        })
}

/// Requests cancellation through Temporal itself (as `temporal workflow cancel` does).
pub async fn request_cancellation(
    client: &Client,
    id: &OrderId,
    reason: &str,
) -> anyhow::Result<()> {
    let handle = client.get_workflow_handle::<OrderWorkflow>(id.as_str());
    handle
        .cancel(
            WorkflowCancelOptions::builder()
                .reason(reason.to_owned())
                .build(),
        )
        .await?;
    Ok(())
}

/// Waits for the order to end and returns its final state, from the
/// workflow's result, failure details or cancellation details.
pub async fn outcome(client: &Client, id: &OrderId) -> Result<OrderView, OrderCallError> {
    let handle = client.get_workflow_handle::<OrderWorkflow>(id.as_str());
    match handle.get_result(WorkflowGetResultOptions::default()).await {
        Ok(view) => Ok(view),
        Err(WorkflowGetResultError::Failed(error)) => failure_view(&error).ok_or_else(|| {
            OrderCallError::Other(anyhow::anyhow!(
                "order {id} failed without its state: {error}"
            ))
        }),
        Err(WorkflowGetResultError::Cancelled { details }) => {
            details.deserialize::<OrderView>().map_err(|e| {
                OrderCallError::Other(anyhow::anyhow!(
                    "order {id} was cancelled; its state is unreadable: {e}"
                ))
            })
        }
        Err(WorkflowGetResultError::NotFound(_)) => Err(OrderCallError::NotFound(id.clone())),
        Err(other) => Err(OrderCallError::Other(
            anyhow::Error::new(other).context(format!("waiting for order {id}")),
        )),
    }
}

/// The order state carried in a failed workflow's application failure.
fn failure_view(error: &IncomingError) -> Option<OrderView> {
    match error {
        IncomingError::Application(failure) => failure.details::<OrderView>().ok().flatten(),
        other => other.cause().and_then(failure_view),
    }
}
