//! `orderflow worker`: hosts the order workflow and its activities until
//! SIGINT or SIGTERM, then stops polling and drains what is in flight.

use std::sync::Arc;

use anyhow::Context as _;

use super::Context;
use crate::cli::WorkerArgs;
use crate::db::pool::Connections;
use crate::exit::{Exit, Fail};
use crate::ops::Ops;
use crate::workflow::metrics::Metrics;
use crate::workflow::retry::RetryConfig;
use crate::workflow::worker::{self, WorkerSettings};

pub async fn run(cx: &Context, args: WorkerArgs) -> anyhow::Result<Exit> {
    let shutdown = shutdown_signal();
    let database = cx.database()?;
    let temporal = cx.temporal()?;
    // Both must answer now, so a misconfigured worker fails fast (exit 8).
    let pool = crate::db::connect(&database, args.db_max_connections).await?;
    super::require_schema(&pool, &database).await?;
    // Proven; the services open their own connections, up to the same number.
    let db = Connections::like(&pool);
    pool.close().await;
    let client = crate::workflow::client::OrderClient::connect(&temporal).await?;
    let settings = WorkerSettings {
        task_queue: temporal.task_queue.clone(),
        retry: RetryConfig {
            max_attempts: args.retry_max_attempts,
            initial_interval: args.retry_initial_interval,
            backoff_coefficient: args.retry_backoff,
            max_interval: args.retry_max_interval,
        },
        max_concurrent_workflow_tasks: args.max_concurrent_workflow_tasks as usize,
        max_concurrent_activities: args.max_concurrent_activities as usize,
        max_concurrent_workflow_task_polls: args.max_concurrent_workflow_task_polls as usize,
        nonsticky_to_sticky_poll_ratio: args.nonsticky_to_sticky_poll_ratio,
        max_cached_workflows: args.max_cached_workflows as usize,
        shutdown_timeout: args.shutdown_timeout,
        outage_timeout: args.outage_timeout,
        notify_webhook: args.notify_webhook,
        notify_timeout: args.notify_timeout,
        notify_webhook_secret: args.notify_webhook_secret,
        with_baseline: args.with_baseline,
        metrics: Arc::new(match args.metrics_address {
            Some(_) => Metrics::start().context("starting the metrics registry")?,
            None => Metrics::off(),
        }),
        running: Arc::default(),
    };
    if let Some(address) = args.metrics_address {
        let listener = tokio::net::TcpListener::bind(address).await.map_err(|e| {
            Fail::usage(format!(
                "cannot listen on --metrics-address {address}: {e}; choose a free port"
            ))
        })?;
        let ops = Ops {
            metrics: settings.metrics.clone(),
            db: db.clone(),
            client: client.clone(),
            running: settings.running.clone(),
        };
        tokio::spawn(async move {
            if let Err(e) = crate::ops::serve(listener, ops).await {
                tracing::error!("the metrics endpoint stopped: {e}");
            }
        });
        cx.printer.note(format!(
            "metrics on http://{address}/metrics, health on /healthz and /readyz"
        ));
    }
    cx.printer.note(format!(
        "orderflow worker: task queue {} on {} (namespace {}), database {}. Ctrl-C to stop.",
        settings.task_queue,
        temporal.address,
        temporal.namespace,
        database.redacted()
    ));
    worker::run(client, db, settings, shutdown).await?;
    Ok(Exit::Success)
}

/// Resolves on the first SIGINT or SIGTERM.
pub(crate) fn shutdown_signal() -> impl Future<Output = ()> + Send + 'static {
    use tokio::signal::unix::{SignalKind, signal};
    // Handled from now on, not from the first poll: a signal that comes
    // while the caller is still starting up is not fatal, and is seen.
    let mut interrupt = signal(SignalKind::interrupt()).expect("installing a SIGINT handler");
    let mut term = signal(SignalKind::terminate()).expect("installing a SIGTERM handler");
    async move {
        tokio::select! {
            _ = interrupt.recv() => {},
            _ = term.recv() => {},
        }
    }
}
