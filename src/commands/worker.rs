//! `orderflow worker`: hosts the order workflow and its activities until
//! SIGINT or SIGTERM, then stops polling and drains what is in flight.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;

use super::Context;
use crate::cli::WorkerArgs;
use crate::db::pool::Connections;
use crate::exit::{Exit, Fail};
use crate::temporal::client::OrderClient;
use crate::worker::ops::Ops;
use crate::worker::shutdown_signal;
use crate::worker::{self, WorkerSettings};
use crate::workflow::metrics::Metrics;
use crate::workflow::retry::RetryConfig;

pub async fn run(cx: &Context, args: WorkerArgs) -> anyhow::Result<Exit> {
    // Handled from the start; heard by the wait for dependencies and the worker.
    let (stop, stopping) = tokio::sync::watch::channel(false);
    let signal = shutdown_signal();
    tokio::spawn(async move {
        signal.await;
        let _ = stop.send(true);
    });
    let shutdown = move || {
        let mut stopping = stopping.clone();
        async move {
            let _ = stopping.wait_for(|stop| *stop).await;
        }
    };
    let database = cx.database()?;
    let temporal = cx.temporal()?;
    let metrics = Arc::new(match args.metrics_address {
        Some(_) => Metrics::start().context("starting the metrics registry")?,
        None => Metrics::off(),
    });
    let running = Arc::<std::sync::atomic::AtomicBool>::default();
    // Up before anything else: alive and not ready while it waits.
    let ops = Ops::new(metrics.clone(), running.clone());
    if let Some(address) = args.metrics_address {
        let listener = tokio::net::TcpListener::bind(address).await.map_err(|e| {
            Fail::usage(format!(
                "cannot listen on --metrics-address {address}: {e}; choose a free port"
            ))
        })?;
        let serving = ops.clone();
        tokio::spawn(async move {
            if let Err(e) = crate::worker::ops::serve(listener, serving).await {
                tracing::error!("the metrics endpoint stopped: {e}");
            }
        });
        cx.printer.note(format!(
            "metrics on http://{address}/metrics, health on /healthz and /readyz"
        ));
    }
    // Both must answer before it polls. One that is down or not up yet is
    // waited for (a worker started with its database must not die of the
    // order they came up in); a wrong URL, password or credential is not.
    let connected = async {
        let pool = until_up(
            &ops,
            &format!("PostgreSQL at {}", database.redacted()),
            || async { Ok(crate::db::connect(&database, args.db_max_connections).await?) },
        )
        .await?;
        super::require_schema(&pool, &database).await?;
        // Proven; the services open their own connections, up to the same number.
        let db = Connections::like(&pool);
        pool.close().await;
        let client = until_up(
            &ops,
            &format!("Temporal at {}", temporal.address),
            || async { Ok(OrderClient::connect(&temporal).await?) },
        )
        .await?;
        anyhow::Ok((db, client))
    };
    let (db, client) = tokio::select! {
        connected = connected => connected?,
        _ = shutdown() => {
            cx.printer.note("stopped before it could start: it was still waiting");
            return Ok(Exit::Success);
        }
    };
    let _ = ops.deps.set((db.clone(), client.clone()));
    ops.wait_for(None);
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
        accept_unencrypted: args.accept_unencrypted,
        metrics,
        running,
    };
    cx.printer.note(format!(
        "orderflow worker: task queue {} on {} (namespace {}), database {}. Ctrl-C to stop.",
        settings.task_queue,
        temporal.address,
        temporal.namespace,
        database.redacted()
    ));
    worker::run(client, db, settings, shutdown()).await?;
    Ok(Exit::Success)
}

/// How long a starting worker waits between tries at a dependency, at most.
const RETRY_CAP: Duration = Duration::from_secs(30);

/// `connect` until it succeeds, or fails for a reason that waiting cannot
/// fix (a wrong URL, password or credential: returned at once). While the
/// dependency is down it says so once in the log, and in `/readyz`.
async fn until_up<T, F, Fut>(ops: &Ops, what: &str, mut connect: F) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = anyhow::Result<T>>,
{
    let mut wait = Duration::from_secs(1);
    let mut said = false;
    loop {
        ops.wait_for(Some(format!("connecting to {what}")));
        let error = match connect().await {
            Ok(connected) => {
                if said {
                    tracing::info!("{what} answers; starting");
                }
                return Ok(connected);
            }
            Err(e) if is_outage(&e) => e,
            Err(e) => return Err(e),
        };
        let reason = crate::errors::text(error.as_ref());
        ops.wait_for(Some(format!("waiting for {what}: {reason}")));
        if !said {
            tracing::warn!("{reason}; waiting for it (Ctrl-C to stop)");
            said = true;
        }
        tokio::time::sleep(wait).await;
        wait = (wait * 2).min(RETRY_CAP);
    }
}

/// Whether a connection failed because the server is down or not up yet.
fn is_outage(error: &anyhow::Error) -> bool {
    error.chain().any(|c| {
        c.downcast_ref::<crate::db::ConnectError>()
            .is_some_and(|e| e.outage)
            || c.downcast_ref::<crate::temporal::TemporalError>()
                .is_some_and(|e| !e.settled())
    })
}
