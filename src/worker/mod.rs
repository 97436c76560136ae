//! Hosting the workflow: one Temporal worker polling the task queue, with
//! the activities wired to the PostgreSQL services; its metrics and health
//! listener ([`ops`]); the shutdown signal the long-running commands share.

pub mod ops;
mod shutdown;

pub use shutdown::{shutdown_signal, shutdown_signals};

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Context as _;
use temporalio_common::telemetry::TelemetryOptions;
use temporalio_sdk::runtime::worker_tuner::{FixedSizeSlotSupplier, TunerHolder};
use temporalio_sdk::runtime::{PollerBehavior, RuntimeOptions};
use temporalio_sdk::{Runtime, Worker, WorkerOptions};

use crate::db::pool::Connections;
use crate::services::inventory::PgInventory;
use crate::services::notification::{LogNotifier, Notifications, Notifier, WebhookNotifier};
use crate::services::orders::OrderStore;
use crate::services::payment::{Payments, SimulatedGateway};
use crate::temporal::client::OrderClient;
use crate::workflow::OrderWorkflow;
use crate::workflow::activities::{OrderActivities, WorkflowSettings};
use crate::workflow::baseline::{BaselineActivities, BaselineWorkflow};
use crate::workflow::metrics::Metrics;
use crate::workflow::retry::RetryConfig;

/// How a worker runs.
#[derive(Debug, Clone)]
pub struct WorkerSettings {
    pub task_queue: String,
    pub retry: RetryConfig,
    pub max_concurrent_workflow_tasks: usize,
    pub max_concurrent_activities: usize,
    /// Workflow-task polls open at once, and the share of them on the task
    /// queue itself (the rest on the sticky queue).
    pub max_concurrent_workflow_task_polls: usize,
    pub nonsticky_to_sticky_poll_ratio: f32,
    pub max_cached_workflows: usize,
    pub shutdown_timeout: Duration,
    /// How long a step waits for the database to come back.
    pub outage_timeout: Duration,
    /// POST notifications here; log them when `None`.
    pub notify_webhook: Option<url::Url>,
    /// The time limit of one webhook delivery.
    pub notify_timeout: Duration,
    /// Sign webhook deliveries with this secret (`Orderflow-Signature`).
    pub notify_webhook_secret: Option<secrecy::SecretString>,
    /// Also host the no-op baseline workflow (`orderflow bench`).
    pub with_baseline: bool,
    /// With keys: still run orders that arrive unencrypted (a switch-over
    /// window); without it they fail `INVALID_ORDER`.
    pub accept_unencrypted: bool,
    /// Where the worker's and orderflow's metrics are recorded.
    pub metrics: Arc<Metrics>,
    /// Set while the worker's loop runs (for `/healthz` and `/readyz`).
    pub running: Arc<AtomicBool>,
}

impl WorkerSettings {
    pub fn new(task_queue: impl Into<String>) -> Self {
        Self {
            task_queue: task_queue.into(),
            retry: RetryConfig::default(),
            max_concurrent_workflow_tasks: 200,
            max_concurrent_activities: 200,
            max_concurrent_workflow_task_polls: 16,
            nonsticky_to_sticky_poll_ratio: 0.5,
            max_cached_workflows: 1000,
            shutdown_timeout: Duration::from_secs(30),
            outage_timeout: crate::workflow::activities::default_outage_timeout(),
            notify_webhook: None,
            notify_timeout: Duration::from_secs(10),
            notify_webhook_secret: None,
            with_baseline: false,
            accept_unencrypted: false,
            metrics: Arc::new(Metrics::off()),
            running: Arc::default(),
        }
    }
}

/// The activities with their services. `indexed`: the namespace has the
/// orders' search attributes.
/// `encrypted`: payloads are encrypted.
pub fn activities(
    db: Connections,
    settings: &WorkerSettings,
    indexed: bool,
    encrypted: bool,
) -> anyhow::Result<OrderActivities> {
    let notifier: Box<dyn Notifier> = match &settings.notify_webhook {
        Some(url) => Box::new(WebhookNotifier::new(
            url.clone(),
            settings.notify_timeout,
            settings.notify_webhook_secret.clone(),
        )?),
        None => Box::new(LogNotifier),
    };
    // Room for a webhook's whole time limit within a step's.
    let step_timeout = crate::workflow::activities::default_step_timeout()
        .max(settings.notify_timeout + Duration::from_secs(10));
    // A step makes at most three statements, each after a wait for a
    // connection: every wait must fail (as an outage) well before the
    // step's own time limit, which counts as an attempt.
    let db = db.limited(step_timeout / 8);
    Ok(OrderActivities {
        metrics: settings.metrics.clone(),
        settings: WorkflowSettings {
            retry: settings.retry,
            outage_timeout: settings.outage_timeout,
            step_timeout,
            search_attributes: indexed,
            encrypted,
            refuse_clear: encrypted && !settings.accept_unencrypted,
        },
        orders: OrderStore::new(db.clone()),
        inventory: Box::new(PgInventory::new(db.clone())),
        payments: Payments::new(db.clone(), Box::new(SimulatedGateway)),
        notifications: Notifications::new(db, notifier),
        database_down: Arc::default(),
    })
}

/// Runs a worker until `shutdown` resolves, then stops polling and lets
/// in-flight tasks finish (up to the shutdown timeout).
///
/// The returned future is not `Send` (the SDK runs workflows on a local
/// set): await it on the main task.
pub async fn run(
    client: OrderClient,
    db: Connections,
    settings: WorkerSettings,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let indexed = client.ensure_search_attributes().await;
    let telemetry = match settings.metrics.core_meter() {
        Some(meter) => TelemetryOptions::builder().metrics(meter).build(),
        None => TelemetryOptions::builder().build(),
    };
    let runtime_options = RuntimeOptions::builder()
        .telemetry_options(telemetry)
        .build()
        .map_err(|e| anyhow::anyhow!("runtime options: {e}"))?;
    let runtime =
        Runtime::from_current_tokio(runtime_options).context("starting the Temporal runtime")?;
    let tuner = TunerHolder::builder()
        .workflow_task_slot_supplier(FixedSizeSlotSupplier::new(
            settings.max_concurrent_workflow_tasks,
        ))
        .activity_task_slot_supplier(FixedSizeSlotSupplier::new(
            settings.max_concurrent_activities,
        ))
        .local_activity_task_slot_supplier(FixedSizeSlotSupplier::new(
            settings.max_concurrent_activities,
        ))
        .nexus_task_slot_supplier(FixedSizeSlotSupplier::new(1))
        .build();
    let mut options = WorkerOptions::new(settings.task_queue.clone())
        .register_workflow::<OrderWorkflow>()
        .context("registering the order workflow")?
        .register_activities(activities(db, &settings, indexed, client.encrypted())?)
        .tuner(tuner)
        .workflow_task_poller_behavior(PollerBehavior::SimpleMaximum(
            settings.max_concurrent_workflow_task_polls,
        ))
        .nonsticky_to_sticky_poll_ratio(settings.nonsticky_to_sticky_poll_ratio)
        .max_cached_workflows(settings.max_cached_workflows)
        .graceful_shutdown_period(settings.shutdown_timeout)
        .build();
    if settings.with_baseline {
        options
            .register_workflow::<BaselineWorkflow>()
            .context("registering the baseline workflow")?;
        options.register_activities(BaselineActivities);
    }
    let mut worker =
        Worker::new(&runtime, client.for_worker(), options).context("creating the worker")?;
    let stop = worker.shutdown_handle();
    tokio::spawn(async move {
        shutdown.await;
        tracing::info!("shutting down: no new tasks; finishing those in flight");
        stop();
    });
    tracing::info!(task_queue = %settings.task_queue, "worker polling");
    settings.running.store(true, Ordering::Relaxed);
    let ran = worker.run().await;
    settings.running.store(false, Ordering::Relaxed);
    ran.context("running the worker")?;
    tracing::info!("worker stopped");
    Ok(())
}

/// Runs a worker for as long as `body` runs, then stops it (draining) and
/// returns `body`'s output. For commands and tests that drive orders through
/// a worker in their own process.
pub async fn alongside<T>(
    client: OrderClient,
    db: Connections,
    settings: WorkerSettings,
    body: impl Future<Output = T>,
) -> anyhow::Result<T> {
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let worker = run(client, db, settings, async {
        let _ = stopped.await;
    });
    let body = async {
        let out = body.await;
        let _ = stop.send(());
        out
    };
    let (ran, out) = tokio::join!(worker, body);
    ran?;
    Ok(out)
}
