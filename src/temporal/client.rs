//! Orders as a Temporal client sees them: start, query, signal, cancel,
//! await the outcome. [`OrderClient`] is the only way the commands reach
//! Temporal; its errors are orderflow's ([`OrderCallError`], [`TemporalError`]).

use crate::temporal::codec::CodecError;
use std::time::{Duration, SystemTime};

use anyhow::Context as _;
use serde::Serialize;
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
use temporalio_common::data_converters::{SerializationContextData, WorkflowSerializationContext};
use temporalio_common::error::IncomingError;
use temporalio_common::payload_visitor::decode_payloads;
use temporalio_common::protos::temporal::api::history::v1::HistoryEvent;
use temporalio_common::{HasWorkflowDefinition, WorkflowDefinition as _};

use super::query::orders_only;
use super::settings::TemporalConfig;
use super::trouble::{Target, TemporalError};
use crate::domain::{FailureCode, Order};
use crate::exit::Fail;
use crate::workflow::OrderWorkflow;
use crate::workflow::baseline::BaselineWorkflow;
use crate::workflow::history;
use crate::workflow::input::WorkflowInput;
use crate::workflow::search;
use crate::workflow::signals::CancelRequest;
use crate::workflow::state::{FailureView, OrderView};

/// A workflow ID as the calls below take it: an order's ID, any workflow's
/// ID, or text.
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

/// Errors of the calls below that a caller tells apart.
#[derive(Debug, thiserror::Error)]
pub enum OrderCallError {
    #[error("order {} was not found", crate::domain::quote(.0))]
    NotFound(String),
    /// Temporal did not answer, or a proxy in front says its upstream is
    /// down: waiting may help (exit 8).
    #[error(transparent)]
    Unreachable(Box<TemporalError>),
    /// Temporal cannot be used as configured: refused credentials, TLS,
    /// something else at the address, no such namespace.
    #[error(transparent)]
    Temporal(Box<TemporalError>),
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

impl From<TemporalError> for OrderCallError {
    fn from(e: TemporalError) -> Self {
        if e.passes() {
            Self::Unreachable(Box::new(e))
        } else {
            Self::Temporal(Box::new(e))
        }
    }
}

/// The gRPC status a failed call carries, when the server (or the
/// connection to it) said no.
trait Rpc: std::error::Error + Send + Sync + 'static {
    fn status(&self) -> Option<&tonic::Status>;
}

impl Rpc for WorkflowInteractionError {
    fn status(&self) -> Option<&tonic::Status> {
        match self {
            Self::NotFound(s) | Self::Rpc(s) => Some(s),
            _ => None,
        }
    }
}

impl Rpc for WorkflowQueryError {
    fn status(&self) -> Option<&tonic::Status> {
        match self {
            Self::NotFound(s) | Self::Rpc(s) => Some(s),
            _ => None,
        }
    }
}

impl Rpc for WorkflowGetResultError {
    fn status(&self) -> Option<&tonic::Status> {
        match self {
            Self::NotFound(s) | Self::Rpc(s) => Some(s),
            _ => None,
        }
    }
}

impl Rpc for WorkflowStartError {
    fn status(&self) -> Option<&tonic::Status> {
        match self {
            Self::AlreadyStarted { source, .. } => Some(source),
            Self::Rpc(s) => Some(s),
            _ => None,
        }
    }
}

impl Rpc for tonic::Status {
    fn status(&self) -> Option<&tonic::Status> {
        Some(self)
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

/// Where a shown state came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    /// Asked the running workflow (live).
    Query,
    /// The finished workflow's result.
    Result,
    /// Read from the workflow's history: no worker answered.
    History,
}

/// An order as Temporal's visibility shows it (`order list --query`): its
/// search attributes.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ListedOrder {
    pub order_id: String,
    /// `OrderStatus`, or the workflow's own status when it carries none.
    pub status: String,
    #[serde(rename = "customerID")]
    pub customer_id: Option<String>,
    pub total_amount: Option<String>,
    pub failure_code: Option<String>,
    pub started_at: Option<chrono::DateTime<chrono::Utc>>,
    /// Always `visibility`: where this listing came from.
    pub source: &'static str,
    /// Whether the workflow runs, closed, or was ended from outside.
    #[serde(skip)]
    pub execution: Execution,
    /// Whether it carries orderflow's search attributes (`status` is then
    /// the order's).
    #[serde(skip)]
    pub indexed: bool,
}

fn execution(status: WorkflowExecutionStatus) -> Execution {
    match status {
        WorkflowExecutionStatus::Running => Execution::Running,
        WorkflowExecutionStatus::Completed
        | WorkflowExecutionStatus::Failed
        | WorkflowExecutionStatus::Canceled => Execution::Closed,
        WorkflowExecutionStatus::Terminated => Execution::Ended("terminated"),
        WorkflowExecutionStatus::TimedOut => Execution::Ended("timed out"),
        _ => Execution::Ended("ended"),
    }
}

/// How long `fetch` waits for a worker to answer a query before reading history.
const QUERY_TIMEOUT: Duration = Duration::from_secs(3);

/// A connected Temporal client, for orders.
#[derive(Clone)]
pub struct OrderClient {
    pub(super) client: Client,
    /// The settings it connected with: failures are told against them.
    config: TemporalConfig,
    target: Target,
}

fn start_options(task_queue: &str, id: &impl Id, eager: bool) -> WorkflowStartOptions {
    WorkflowStartOptions::new(task_queue.to_owned(), id.as_ref().to_owned())
        .id_conflict_policy(WorkflowIdConflictPolicy::Fail)
        .id_reuse_policy(WorkflowIdReusePolicy::RejectDuplicate)
        .enable_eager_workflow_start(eager)
        .build()
}

impl OrderClient {
    /// Connects (exit 8 when no server answers or it refuses the credentials).
    pub async fn connect(config: &TemporalConfig) -> Result<Self, TemporalError> {
        Ok(Self {
            client: super::connect(config).await?,
            config: config.clone(),
            target: config.target(),
        })
    }

    /// Why a call failed, when Temporal is why (`doing`: "looking up
    /// order X"); `None` when it answered and the answer is the caller's.
    pub(super) async fn explain(
        &self,
        doing: Option<String>,
        status: &tonic::Status,
    ) -> Option<TemporalError> {
        self.target
            .call_failed(doing, status, async || {
                super::probe::http_answer(&self.config).await
            })
            .await
    }

    /// An error Temporal answered a call with, told as it is.
    pub(super) fn answered(&self, doing: &str, status: &tonic::Status) -> TemporalError {
        self.target.answered(Some(doing.to_owned()), status)
    }

    /// The error of a call (`doing`: "looking up order X"): Temporal's
    /// trouble, or the call's own.
    async fn failed(&self, doing: String, error: impl Rpc) -> OrderCallError {
        if let Some(status) = error.status()
            && let Some(trouble) = self.explain(Some(doing.clone()), status).await
        {
            return trouble.into();
        }
        OrderCallError::Other(anyhow::Error::new(error).context(doing))
    }

    /// [`Self::failed`] for a call on order `id`, with its not-found
    /// (unless it is the namespace that was not found).
    async fn failed_on(
        &self,
        id: &impl Id,
        what: &str,
        error: WorkflowInteractionError,
    ) -> OrderCallError {
        let doing = format!("{what} order {id}");
        match error {
            WorkflowInteractionError::NotFound(status) => {
                match self.explain(Some(doing), &status).await {
                    Some(trouble) => trouble.into(),
                    None => OrderCallError::NotFound(id.to_string()),
                }
            }
            other => self.failed(doing, other).await,
        }
    }

    /// Whether this client encrypts payloads.
    pub fn encrypted(&self) -> bool {
        self.config.encryption.is_some()
    }

    /// The SDK client a worker runs on: this one, decoding with
    /// [`super::codec::WorkerCodec`], which hands on a payload it cannot
    /// decrypt instead of failing the whole workflow task.
    pub(crate) fn for_worker(&self) -> Client {
        let mut client = self.client.clone();
        client.options_mut().data_converter =
            super::codec::worker_converter(self.config.encryption.clone());
        client
    }

    /// The namespace this client is bound to.
    pub fn namespace(&self) -> &str {
        &self.client.options().namespace
    }

    fn handle(&self, id: &impl Id) -> WorkflowHandle<Client, OrderWorkflow> {
        self.client
            .get_workflow_handle::<OrderWorkflow>(id.as_ref())
    }

    /// Starts the order's workflow (workflow ID = order ID). An ID that was
    /// ever used is never started again. With `eager`, when a worker for
    /// the queue runs on this same client, the server hands it the first
    /// workflow task in the start reply (`orderflow bench`).
    pub async fn start(
        &self,
        task_queue: &str,
        order: &Order,
        eager: bool,
    ) -> anyhow::Result<Submitted> {
        let options = start_options(task_queue, order.id(), eager);
        match self
            .client
            .start_workflow(OrderWorkflow::run, WorkflowInput::from(order), options)
            .await
        {
            Ok(handle) => Ok(Submitted::Started {
                run_id: handle.run_id().unwrap_or_default().to_owned(),
            }),
            Err(WorkflowStartError::AlreadyStarted { run_id, .. }) => Ok(Submitted::Exists {
                run_id: run_id.unwrap_or_default(),
            }),
            Err(e) => Err(self
                .failed(format!("starting order {}", order.id()), e)
                .await
                .into()),
        }
    }

    /// The order's live state from its workflow (needs a worker to answer
    /// within 10 s).
    pub async fn status(&self, id: &impl Id) -> Result<OrderView, OrderCallError> {
        self.live_status(id, Duration::from_secs(10))
            .await?
            .ok_or_else(|| anyhow::anyhow!("no worker answered a query on order {id}").into())
    }

    /// The live state from a running workflow, or `None` when no worker
    /// answered within `timeout`.
    pub async fn live_status(
        &self,
        id: &impl Id,
        timeout: Duration,
    ) -> Result<Option<OrderView>, OrderCallError> {
        let options = WorkflowQueryOptions::builder()
            .rpc_options(RpcOptions::builder().timeout(timeout).build())
            .build();
        let handle = self.handle(id);
        let query = handle.query(OrderWorkflow::status, (), options);
        match tokio::time::timeout(timeout + Duration::from_secs(1), query).await {
            Err(_) => Ok(None),
            Ok(Ok(view)) => Ok(Some(view)),
            Ok(Err(WorkflowQueryError::Rpc(status)))
                if matches!(
                    status.code(),
                    tonic::Code::DeadlineExceeded | tonic::Code::Cancelled
                ) =>
            {
                Ok(None)
            }
            Ok(Err(WorkflowQueryError::NotFound(status))) => {
                Err(match self.explain(None, &status).await {
                    Some(trouble) => trouble.into(),
                    None => OrderCallError::NotFound(id.to_string()),
                })
            }
            Ok(Err(other)) => Err(self.failed(format!("querying order {id}"), other).await),
        }
    }

    /// Sends the `cancel` signal.
    pub async fn signal_cancel(&self, id: &impl Id, reason: &str) -> Result<(), OrderCallError> {
        let request = CancelRequest {
            reason: reason.to_owned(),
        };
        let sent = self
            .handle(id)
            .signal(
                OrderWorkflow::cancel,
                request.to_raw(),
                WorkflowSignalOptions::default(),
            )
            .await;
        match sent {
            Ok(()) => Ok(()),
            Err(e) => Err(self.failed_on(id, "signalling", e).await),
        }
    }

    /// Requests cancellation through Temporal itself (as `temporal workflow cancel` does).
    pub async fn request_cancellation(
        &self,
        id: &impl Id,
        reason: &str,
    ) -> Result<(), OrderCallError> {
        let options = WorkflowCancelOptions::builder()
            .reason(reason.to_owned())
            .build();
        match self.handle(id).cancel(options).await {
            Ok(()) => Ok(()),
            Err(e) => Err(self.failed_on(id, "cancelling", e).await),
        }
    }

    /// Waits for the order to end and returns its final state, from the
    /// workflow's result, failure details or cancellation details.
    pub async fn outcome(&self, id: &impl Id) -> Result<OrderView, OrderCallError> {
        match outcome_of(self, &self.handle(id), id).await {
            Ok(view) => Ok(view),
            Err(e) => Err(self.or_unreadable(id, e).await),
        }
    }

    /// `None` when no workflow has this ID.
    pub async fn describe(&self, id: &impl Id) -> Result<Option<Execution>, OrderCallError> {
        match self
            .handle(id)
            .describe(WorkflowDescribeOptions::default())
            .await
        {
            Ok(d) => Ok(Some(execution(d.status()))),
            Err(e) => match self.failed_on(id, "looking up", e).await {
                OrderCallError::NotFound(_) => Ok(None),
                other => Err(other),
            },
        }
    }

    /// The order's state however it can be had: live from its worker,
    /// final from its result, or what its history recorded when no worker
    /// answers (or it was terminated from outside).
    pub async fn fetch(&self, id: &impl Id) -> Result<(OrderView, Source), OrderCallError> {
        match self.describe(id).await? {
            None => Err(OrderCallError::NotFound(id.to_string())),
            Some(Execution::Closed) => Ok((self.outcome(id).await?, Source::Result)),
            Some(Execution::Ended(how)) => {
                let mut view = self.recorded_status(id).await?;
                view.failure = Some(FailureView {
                    code: FailureCode::Internal,
                    message: format!("the workflow was {how} outside orderflow"),
                });
                Ok((view, Source::History))
            }
            // No answer, or a query its failing workflow task cannot
            // answer: what the history holds, and why the task fails.
            Some(Execution::Running) => match self.live_status(id, QUERY_TIMEOUT).await {
                Ok(Some(view)) => Ok((view, Source::Query)),
                // A query refused (or not understood) while other calls
                // may still be answered: what the history holds.
                Ok(None) | Err(OrderCallError::Other(_) | OrderCallError::Temporal(_)) => {
                    Ok((self.recorded_status(id).await?, Source::History))
                }
                Err(e) => Err(e),
            },
        }
    }

    /// Orders matching a visibility query, at most `limit`, as the server
    /// lists them (newest first). The query is scoped to orders
    /// ([`orders_only`]), and what comes back is checked again.
    pub async fn list(&self, query: &str, limit: u32) -> anyhow::Result<Vec<ListedOrder>> {
        use futures::TryStreamExt as _;
        self.scan(query, Some(limit)).try_collect().await
    }

    /// [`list`](Self::list) as a stream, page by page as the server sends
    /// them: every match when `limit` is `None`.
    pub fn scan(
        &self,
        query: &str,
        limit: Option<u32>,
    ) -> impl futures::Stream<Item = anyhow::Result<ListedOrder>> + '_ {
        use futures::StreamExt as _;
        use temporalio_client::WorkflowListOptions;
        use temporalio_client::errors::ClientError;
        let scoped =
            orders_only(query).map_err(|e| anyhow::Error::from(Fail::usage(e.to_string())));
        let options = match limit {
            Some(limit) => WorkflowListOptions::builder().limit(limit as usize).build(),
            None => WorkflowListOptions::builder().build(),
        };
        let found = match scoped {
            Ok(scoped) => self
                .client
                .list_workflows(scoped, options)
                .then(move |w| async move {
                    match w {
                        Ok(w) => Ok(w),
                        // The server's parser said no: the query's fault,
                        // said in one line.
                        Err(ClientError::Rpc(status))
                            if status.code() == tonic::Code::InvalidArgument =>
                        {
                            let said = status.message().lines().next().unwrap_or("").to_owned();
                            Err(Fail::usage(format!(
                                "invalid --query: {}",
                                crate::domain::clip(&said)
                            ))
                            .into())
                        }
                        Err(ClientError::Rpc(status)) => {
                            Err(self.failed("listing orders".into(), status).await.into())
                        }
                        Err(e) => Err(anyhow::Error::new(e).context("listing orders")),
                    }
                })
                .left_stream(),
            Err(e) => futures::stream::once(async move { Err(e) }).right_stream(),
        };
        found
            .filter(|w| {
                let ours = w
                    .as_ref()
                    .map_or(true, |w| w.workflow_type() == OrderWorkflow::run.name());
                async move { ours }
            })
            .map(|w| {
                w.map(|w| {
                    let attrs = w.search_attributes();
                    ListedOrder {
                        order_id: w.id().to_owned(),
                        status: attrs
                            .get(&search::ORDER_STATUS)
                            .unwrap_or_else(|| format!("{:?}", w.status()).to_ascii_uppercase()),
                        customer_id: attrs.get(&search::CUSTOMER_ID),
                        total_amount: attrs.get(&search::ORDER_TOTAL).map(|t| format!("{t:.2}")),
                        failure_code: attrs.get(&search::FAILURE_CODE),
                        started_at: w.start_time().map(chrono::DateTime::from),
                        source: "visibility",
                        execution: execution(w.status()),
                        indexed: attrs.get(&search::ORDER_STATUS).is_some(),
                    }
                })
            })
    }

    /// The order as it was submitted: the workflow's recorded input.
    pub async fn recorded_order(&self, id: &impl Id) -> Result<Order, OrderCallError> {
        let events = self.history(id).await?;
        history::input(&events).order(id.as_ref()).map_err(|e| {
            OrderCallError::Other(anyhow::anyhow!(
                "workflow {id}'s input is not an orderflow order: {e}"
            ))
        })
    }

    /// The order's life as its history tells it (`order status --timeline`).
    pub async fn timeline(
        &self,
        id: &impl Id,
    ) -> Result<crate::workflow::timeline::Timeline, OrderCallError> {
        let events = self.history(id).await?;
        Ok(crate::workflow::timeline::read(&events))
    }

    /// What Temporal recorded of a running order, for when no worker
    /// answers queries: the submitted order and the steps whose results
    /// are in history.
    pub async fn recorded_status(&self, id: &impl Id) -> Result<OrderView, OrderCallError> {
        let events = self.history(id).await?;
        let mut view = history::rebuild(id.as_ref(), &events);
        view.workflow_task_failure = history::failing_task(&events);
        Ok(view)
    }

    /// How many attempts each of the order's steps gets: the retry policy
    /// its workflow recorded when it started (`None` until it has).
    pub async fn max_attempts(&self, id: &impl Id) -> Result<Option<u32>, OrderCallError> {
        let events = self.history(id).await?;
        Ok(history::settings(&events).map(|s| s.retry.max_attempts))
    }

    /// The workflow's history, its payloads decoded with the client's codec
    /// (decrypted when keys are configured).
    async fn history(&self, id: &impl Id) -> Result<Vec<HistoryEvent>, OrderCallError> {
        let mut events = self.raw_history(id).await?;
        let codec = self.client.options().data_converter.codec();
        let context = SerializationContextData::Workflow(WorkflowSerializationContext::new());
        for event in &mut events {
            decode_payloads(event, codec, &context)
                .await
                .with_context(|| format!("decoding the history of order {id}"))?;
        }
        Ok(events)
    }

    /// The key a payload of order `id` is encrypted with — its input, or
    /// what a worker that encrypts wrote (its settings, its results, even
    /// for an input sent in clear) — when this client has no keys to read
    /// it. `None` when it has keys, or the whole history is in clear.
    pub async fn unreadable_key(&self, id: &impl Id) -> Result<Option<String>, OrderCallError> {
        if self.encrypted() {
            return Ok(None);
        }
        match self.history(id).await {
            Ok(_) => Ok(None),
            Err(OrderCallError::Other(e)) => Ok(e.chain().find_map(|c| match c.downcast_ref() {
                Some(CodecError::NoKeys(key)) => Some(key.clone()),
                _ => None,
            })),
            Err(other) => Err(other),
        }
    }

    /// `error`, or, when it came of an order this client cannot decrypt,
    /// the [`CodecError`] that names the key and the setting to add (exit 2).
    async fn or_unreadable(&self, id: &impl Id, error: OrderCallError) -> OrderCallError {
        let OrderCallError::Other(e) = &error else {
            return error;
        };
        if e.chain().any(|c| c.is::<CodecError>()) {
            return error;
        }
        match self.unreadable_key(id).await {
            Ok(Some(key)) => OrderCallError::Other(
                anyhow::Error::new(CodecError::NoKeys(key)).context(format!("reading order {id}")),
            ),
            _ => error,
        }
    }

    /// The workflow's history as the server holds it: no codec applied.
    pub async fn raw_history(&self, id: &impl Id) -> Result<Vec<HistoryEvent>, OrderCallError> {
        let events = self
            .handle(id)
            .fetch_history(WorkflowFetchHistoryOptions::default())
            .into_events()
            .await;
        match events {
            Ok(events) => Ok(events),
            Err(e) => Err(self.failed_on(id, "reading the history of", e).await),
        }
    }

    /// The workflow's history as Temporal's JSON (what `temporal workflow
    /// show --output json` writes, and the replay tests read).
    pub async fn history_json(&self, id: &impl Id) -> anyhow::Result<Vec<u8>> {
        Ok(self
            .handle(id)
            .fetch_history(WorkflowFetchHistoryOptions::default())
            .to_json()
            .await?)
    }

    /// Starts the order and waits for the outcome of the run it started (no
    /// lookup of the current run by ID): `orderflow bench`. Also when the
    /// start call returned.
    pub async fn run_order(
        &self,
        task_queue: &str,
        order: &Order,
        eager: bool,
    ) -> anyhow::Result<(OrderView, SystemTime)> {
        let handle = self
            .client
            .start_workflow(
                OrderWorkflow::run,
                WorkflowInput::from(order),
                start_options(task_queue, order.id(), eager),
            )
            .await?;
        let started = SystemTime::now();
        Ok((outcome_of(self, &handle, order.id()).await?, started))
    }

    /// Starts the no-op baseline workflow for `order` and waits for it to
    /// end; when the start call returned.
    pub async fn run_baseline(
        &self,
        task_queue: &str,
        order: &Order,
        eager: bool,
    ) -> anyhow::Result<SystemTime> {
        let options = start_options(task_queue, order.id(), eager);
        let handle = self
            .client
            .start_workflow(BaselineWorkflow::run, order.clone(), options)
            .await?;
        let started = SystemTime::now();
        handle
            .get_result(WorkflowGetResultOptions::default())
            .await?;
        Ok(started)
    }
}

async fn outcome_of<W>(
    client: &OrderClient,
    handle: &WorkflowHandle<Client, W>,
    id: &impl Id,
) -> Result<OrderView, OrderCallError>
where
    W: HasWorkflowDefinition<Output = OrderView>,
{
    match handle.get_result(WorkflowGetResultOptions::default()).await {
        Ok(view) => Ok(view),
        Err(WorkflowGetResultError::Failed(error)) => match failure_view(&error) {
            Ok(Some(view)) => Ok(view),
            Ok(None) => Err(OrderCallError::Other(anyhow::anyhow!(
                "order {id} failed without its state: {error}"
            ))),
            Err(unreadable) => Err(OrderCallError::Other(
                anyhow::Error::new(unreadable)
                    .context(format!("order {id} failed; its state is unreadable")),
            )),
        },
        Err(WorkflowGetResultError::Cancelled { details }) => {
            details.deserialize::<OrderView>().map_err(|e| {
                OrderCallError::Other(anyhow::anyhow!(
                    "order {id} was cancelled; its state is unreadable: {e}"
                ))
            })
        }
        Err(WorkflowGetResultError::NotFound(status)) => {
            Err(match client.explain(None, &status).await {
                Some(trouble) => trouble.into(),
                None => OrderCallError::NotFound(id.to_string()),
            })
        }
        Err(other) => Err(client
            .failed(format!("waiting for order {id}"), other)
            .await),
    }
}

/// The order state carried in a failed workflow's application failure.
fn failure_view(
    error: &IncomingError,
) -> Result<Option<OrderView>, temporalio_common::data_converters::PayloadConversionError> {
    match error {
        IncomingError::Application(failure) => failure.details::<OrderView>(),
        other => match other.cause() {
            Some(cause) => failure_view(cause),
            None => Ok(None),
        },
    }
}
