//! Client calls on orders: start, query, signal, cancel, await the outcome.

use std::time::Duration;

use temporalio_client::errors::{
    WorkflowGetResultError, WorkflowInteractionError, WorkflowQueryError, WorkflowStartError,
};
use temporalio_client::tonic;
use temporalio_client::{
    Client, RpcOptions, WorkflowCancelOptions, WorkflowDescribeOptions, WorkflowExecutionStatus,
    WorkflowFetchHistoryOptions, WorkflowGetResultOptions, WorkflowHandle,
    WorkflowIdConflictPolicy, WorkflowIdReusePolicy, WorkflowQueryOptions, WorkflowSignalOptions,
    WorkflowStartOptions,
};
use temporalio_common::HasWorkflowDefinition;
use temporalio_common::error::IncomingError;
use temporalio_common::protos::temporal::api::history::v1::HistoryEvent;
use temporalio_common::protos::temporal::api::history::v1::history_event::Attributes;

use super::OrderWorkflow;
use super::input::WorkflowInput;
use super::order_workflow::CancelRequest;
use super::state::OrderView;
use crate::domain::{Order, OrderId, OrderStatus, Step, WorkflowId};

/// A workflow ID as the calls below take it: an [`OrderId`], a
/// [`WorkflowId`], or text.
pub trait Id: AsRef<str> + std::fmt::Display + Sync {}
impl<T: AsRef<str> + std::fmt::Display + Sync + ?Sized> Id for T {}

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
    start_with(client, task_queue, order, false).await
}

fn start_options(task_queue: &str, id: &OrderId, eager: bool) -> WorkflowStartOptions {
    WorkflowStartOptions::new(task_queue.to_owned(), id.as_str().to_owned())
        .id_conflict_policy(WorkflowIdConflictPolicy::Fail)
        .id_reuse_policy(WorkflowIdReusePolicy::RejectDuplicate)
        .enable_eager_workflow_start(eager)
        .build()
}

/// [`start`], optionally asking for eager start: when a worker for the
/// queue runs on this same client, the server hands it the first workflow
/// task in the start response, saving a round trip.
pub async fn start_with(
    client: &Client,
    task_queue: &str,
    order: &Order,
    eager: bool,
) -> anyhow::Result<Submitted> {
    let options = start_options(task_queue, order.id(), eager);
    match client
        .start_workflow(OrderWorkflow::run, WorkflowInput::from(order), options)
        .await
    {
        Ok(handle) => Ok(Submitted::Started {
            run_id: handle.run_id().unwrap_or_default().to_owned(),
        }),
        Err(WorkflowStartError::AlreadyStarted { run_id, .. }) => Ok(Submitted::Exists {
            run_id: run_id.unwrap_or_default(),
        }),
        Err(e) => Err(anyhow::Error::new(e).context(format!("starting order {}", order.id()))),
    }
}

/// Errors of the calls below that a caller tells apart.
#[derive(Debug, thiserror::Error)]
pub enum OrderCallError {
    #[error("order {0} was not found")]
    NotFound(String),
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

/// The order's live state from its workflow (needs a worker).
pub async fn status(client: &Client, id: &impl Id) -> Result<OrderView, OrderCallError> {
    let handle = client.get_workflow_handle::<OrderWorkflow>(id.as_ref());
    handle
        .query(OrderWorkflow::status, (), WorkflowQueryOptions::default())
        .await
        .map_err(|e| match e {
            WorkflowQueryError::NotFound(_) => OrderCallError::NotFound(id.to_string()),
            other => OrderCallError::Other(
                anyhow::Error::new(other).context(format!("querying order {id}")),
            ),
        })
}

/// Sends the `cancel` signal.
pub async fn signal_cancel(
    client: &Client,
    id: &impl Id,
    reason: &str,
) -> Result<(), OrderCallError> {
    let handle = client.get_workflow_handle::<OrderWorkflow>(id.as_ref());
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
            WorkflowInteractionError::NotFound(_) => OrderCallError::NotFound(id.to_string()),
            other => OrderCallError::Other(
                anyhow::Error::new(other).context(format!("signalling order {id}")),
            ),
        })
}

/// Requests cancellation through Temporal itself (as `temporal workflow cancel` does).
pub async fn request_cancellation(
    client: &Client,
    id: &impl Id,
    reason: &str,
) -> anyhow::Result<()> {
    let handle = client.get_workflow_handle::<OrderWorkflow>(id.as_ref());
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
pub async fn outcome(client: &Client, id: &impl Id) -> Result<OrderView, OrderCallError> {
    outcome_of(
        &client.get_workflow_handle::<OrderWorkflow>(id.as_ref()),
        id,
    )
    .await
}

/// Starts the order and waits for the outcome of the run it started (no
/// lookup of the current run by ID): `orderflow bench`.
pub async fn run_order(
    client: &Client,
    task_queue: &str,
    order: &Order,
    eager: bool,
) -> anyhow::Result<OrderView> {
    let handle = client
        .start_workflow(
            OrderWorkflow::run,
            WorkflowInput::from(order),
            start_options(task_queue, order.id(), eager),
        )
        .await?;
    Ok(outcome_of(&handle, order.id()).await?)
}

async fn outcome_of<W>(
    handle: &WorkflowHandle<Client, W>,
    id: &impl Id,
) -> Result<OrderView, OrderCallError>
where
    W: HasWorkflowDefinition<Output = OrderView>,
{
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
        Err(WorkflowGetResultError::NotFound(_)) => Err(OrderCallError::NotFound(id.to_string())),
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

/// Where a workflow stands, as Temporal reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Execution {
    Running,
    /// Closed: completed, failed or cancelled (the result holds the state).
    Closed,
    /// Terminated or timed out from outside orderflow: no final state.
    Ended(&'static str),
}

/// `None` when no workflow has this order ID.
pub async fn describe(client: &Client, id: &impl Id) -> anyhow::Result<Option<Execution>> {
    let handle = client.get_workflow_handle::<OrderWorkflow>(id.as_ref());
    match handle.describe(WorkflowDescribeOptions::default()).await {
        Ok(d) => Ok(Some(match d.status() {
            WorkflowExecutionStatus::Running => Execution::Running,
            WorkflowExecutionStatus::Completed
            | WorkflowExecutionStatus::Failed
            | WorkflowExecutionStatus::Canceled => Execution::Closed,
            WorkflowExecutionStatus::Terminated => Execution::Ended("terminated"),
            WorkflowExecutionStatus::TimedOut => Execution::Ended("timed out"),
            _ => Execution::Ended("ended"),
        })),
        Err(WorkflowInteractionError::NotFound(_)) => Ok(None),
        Err(e) => Err(anyhow::Error::new(e).context(format!("looking up order {id}"))),
    }
}

/// The live state from a running workflow, or `None` when no worker
/// answered within `timeout`.
pub async fn live_status(
    client: &Client,
    id: &impl Id,
    timeout: Duration,
) -> Result<Option<OrderView>, OrderCallError> {
    let handle = client.get_workflow_handle::<OrderWorkflow>(id.as_ref());
    let options = WorkflowQueryOptions::builder()
        .rpc_options(RpcOptions::builder().timeout(timeout).build())
        .build();
    match tokio::time::timeout(
        timeout + Duration::from_secs(1),
        handle.query(OrderWorkflow::status, (), options),
    )
    .await
    {
        Err(_) => Ok(None),
        Ok(Ok(view)) => Ok(Some(view)),
        Ok(Err(WorkflowQueryError::NotFound(_))) => Err(OrderCallError::NotFound(id.to_string())),
        Ok(Err(WorkflowQueryError::Rpc(status)))
            if matches!(
                status.code(),
                tonic::Code::DeadlineExceeded | tonic::Code::Cancelled
            ) =>
        {
            Ok(None)
        }
        Ok(Err(other)) => Err(OrderCallError::Other(
            anyhow::Error::new(other).context(format!("querying order {id}")),
        )),
    }
}

async fn history(client: &Client, id: &impl Id) -> Result<Vec<HistoryEvent>, OrderCallError> {
    let handle = client.get_workflow_handle::<OrderWorkflow>(id.as_ref());
    handle
        .fetch_history(WorkflowFetchHistoryOptions::default())
        .into_events()
        .await
        .map_err(|e| match e {
            WorkflowInteractionError::NotFound(_) => OrderCallError::NotFound(id.to_string()),
            other => OrderCallError::Other(
                anyhow::Error::new(other).context(format!("reading order {id}'s history")),
            ),
        })
}

/// The workflow's recorded input, as it was sent.
fn recorded_input(events: &[HistoryEvent]) -> WorkflowInput {
    events
        .iter()
        .find_map(|e| match &e.attributes {
            Some(Attributes::WorkflowExecutionStartedEventAttributes(a)) => a.input.as_ref(),
            _ => None,
        })
        .map(|p| WorkflowInput::from(p.payloads.clone()))
        .unwrap_or_default()
}

/// The order as it was submitted: the workflow's recorded input.
pub async fn recorded_order(client: &Client, id: &impl Id) -> Result<Order, OrderCallError> {
    let events = history(client, id).await?;
    recorded_input(&events).order(id.as_ref()).map_err(|e| {
        OrderCallError::Other(anyhow::anyhow!(
            "workflow {id}'s input is not an orderflow order: {e}"
        ))
    })
}

/// What Temporal recorded of a running order, for when no worker answers
/// queries: the submitted order and the steps whose results are in history.
pub async fn recorded_status(client: &Client, id: &impl Id) -> Result<OrderView, OrderCallError> {
    let events = history(client, id).await?;
    let order = match recorded_input(&events).order(id.as_ref()) {
        Ok(order) => order,
        Err(message) => return Ok(OrderView::rejected(WorkflowId::lossy(id.as_ref()), message)),
    };
    let mut view = OrderView::new(&order);
    let first_time = events
        .first()
        .and_then(|e| e.event_time)
        .and_then(|t| chrono::DateTime::from_timestamp(t.seconds, t.nanos as u32));
    let last_time = events
        .last()
        .and_then(|e| e.event_time)
        .and_then(|t| chrono::DateTime::from_timestamp(t.seconds, t.nanos as u32));
    view.created_at = first_time;
    view.updated_at = last_time;
    for event in &events {
        let Some(Attributes::MarkerRecordedEventAttributes(marker)) = &event.attributes else {
            continue;
        };
        let activity = marker
            .details
            .get("data")
            .and_then(|p| p.payloads.first())
            .and_then(|p| serde_json::from_slice::<serde_json::Value>(&p.data).ok())
            .and_then(|v| {
                v.get("activity_type")
                    .and_then(|t| t.as_str())
                    .map(str::to_owned)
            });
        let Some(step) = activity.and_then(|a| a.parse::<Step>().ok()) else {
            continue;
        };
        let done = marker.failure.is_none();
        let reached = match step {
            Step::CreateOrder => OrderStatus::Created,
            Step::ReserveInventory => OrderStatus::InventoryReserved,
            Step::ProcessPayment => OrderStatus::Paid,
            Step::SendNotification => OrderStatus::Paid,
        };
        view.step = Some(step);
        let s = view.step_mut(step);
        s.attempts += 1;
        if done {
            s.state = super::state::StepState::Done;
            view.status = reached;
        } else {
            s.state = super::state::StepState::Retrying;
            s.last_error = marker.failure.as_ref().map(|f| f.message.clone());
        }
    }
    Ok(view)
}

/// Starts the no-op baseline workflow for `order` and waits for it to end.
pub async fn run_baseline(
    client: &Client,
    task_queue: &str,
    order: &Order,
    eager: bool,
) -> anyhow::Result<()> {
    use super::baseline::BaselineWorkflow;
    let options = start_options(task_queue, order.id(), eager);
    let handle = client
        .start_workflow(BaselineWorkflow::run, order.clone(), options)
        .await?;
    handle
        .get_result(WorkflowGetResultOptions::default())
        .await?;
    Ok(())
}
