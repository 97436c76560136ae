//! `orderflow order create --file PATH…`: validates every order, then
//! starts one workflow per order (workflow ID = order ID).

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt as _;
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;
use tokio::sync::Semaphore;

use super::watch::Resume;
use crate::cli::CreateArgs;
use crate::commands::Context;
use crate::domain::{Order, OrderStatus, WorkflowId};
use crate::exit::{Exit, Fail};
use crate::input::{ParsedOrder, read_orders};
use crate::temporal::TemporalConfig;
use crate::temporal::client::{Execution, Id, OrderClient, Submitted};

/// Orders submitted at once.
const CONCURRENCY: usize = 32;

/// One line of `order create -o json`, and the API's answer to a new order.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Submission {
    /// Always `created`: tells these records from `watch`'s `change` ones
    /// in the stream of `create --watch`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub order_id: String,
    pub workflow_id: String,
    pub run_id: String,
    pub status: OrderStatus,
    /// True when the order already existed with the same content: nothing new started.
    pub existing: bool,
    /// Set when the ID exists with different content (exit 6).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub conflict: Option<String>,
    pub ui_url: String,
}

pub async fn run(cx: &Context, args: CreateArgs) -> anyhow::Result<Exit> {
    let parsed = read_orders(&args.files, args.id.as_ref())?;
    let p = &cx.printer;
    if args.dry_run {
        let orders: Vec<&Order> = parsed.iter().map(|o| &o.order).collect();
        match (p.is_json(), orders.as_slice()) {
            (true, [one]) => p.json(one)?,
            (true, _) => p.json(&orders)?,
            (false, _) => {
                for o in &parsed {
                    p.line(describe(o))?;
                }
                p.note(format!(
                    "{} order(s) valid; nothing submitted (--dry-run).",
                    parsed.len()
                ));
            }
        }
        return Ok(Exit::Success);
    }

    let (config, client) = super::connect(cx).await?;
    let progress = (p.progress_enabled() && parsed.len() > 1).then(|| {
        let bar = ProgressBar::new(parsed.len() as u64);
        bar.set_style(
            ProgressStyle::with_template("submitting [{bar:30}] {pos}/{len} {elapsed}")
                .expect("static template"),
        );
        bar
    });
    let orders = parsed.iter().map(|o| o.order.clone());
    let interrupt = cx.interrupt();
    let submissions = submit_all(
        &client,
        &config,
        orders,
        Pace {
            max_in_flight: args.max_in_flight,
            per_second: args.rate,
        },
        || {
            if let Some(bar) = &progress {
                bar.inc(1);
            }
        },
        interrupt.wait(),
    )
    .await?;
    if let Some(bar) = progress {
        bar.finish_and_clear();
    }
    let batch = parsed.len() > 1;
    // At a terminal, a batch that is followed is one summary line, not a
    // line per order above the view.
    let summary_only = args.watch && batch && p.stdout_is_terminal();

    if p.is_json() && (args.watch || p.is_json_lines()) {
        // JSON Lines: the submissions, then (with --watch) the changes.
        for s in &submissions {
            p.json_line(s)?;
        }
    } else if p.is_json() {
        match submissions.as_slice() {
            [one] if !batch => p.json(one)?,
            all => p.json(all)?,
        }
    } else if !summary_only {
        for s in &submissions {
            let what = match (&s.conflict, s.existing) {
                (Some(c), _) => format!("conflict: {c}"),
                (None, true) => format!("already exists ({}); nothing new started", s.status),
                (None, false) => "submitted".to_owned(),
            };
            p.line(format!("{} {what}  {}", s.order_id, s.ui_url))?;
        }
    }
    if batch || submissions.len() < parsed.len() {
        p.note(tally(&submissions));
    }
    if submissions.len() < parsed.len() {
        p.interrupted(&format!(
            "interrupted: {} of {} orders started, {} not. Run the same command again to \
             submit the rest: orders already started are recognised by their IDs (derived \
             from the file for orders without an \"id\") and not submitted twice",
            submissions.len(),
            parsed.len(),
            parsed.len() - submissions.len()
        ));
        return Ok(Exit::Interrupted);
    }

    if let Some(conflict) = conflict(&submissions) {
        return Err(conflict.into());
    }
    if args.watch {
        let ids: Vec<WorkflowId> = parsed
            .into_iter()
            .map(|o| o.order.id().clone().into())
            .collect();
        // The files name the orders again, unless stdin or --id named them.
        let resume = if args.id.is_some() || args.files.iter().any(|f| f.as_os_str() == "-") {
            Resume {
                fixed: Vec::new(),
                listed: ids.clone(),
            }
        } else {
            Resume {
                fixed: super::watch::file_args(&args.files),
                listed: Vec::new(),
            }
        };
        return super::watch::Follow {
            printer: p,
            client: &client,
            task_queue: &config.task_queue,
            timeout: args.timeout,
            show: true,
            on_interrupt: super::watch::OnInterrupt::Resume(resume),
            interrupt,
        }
        .run(&ids)
        .await;
    }
    Ok(Exit::Success)
}

/// `175 submitted, 125 already existed`.
fn tally(submissions: &[Submission]) -> String {
    let conflicting = submissions.iter().filter(|s| s.conflict.is_some()).count();
    let existing = submissions
        .iter()
        .filter(|s| s.existing && s.conflict.is_none())
        .count();
    let new = submissions.len() - conflicting - existing;
    let mut parts = vec![format!("{new} submitted")];
    if existing > 0 {
        parts.push(format!("{existing} already existed"));
    }
    if conflicting > 0 {
        parts.push(format!("{conflicting} conflicting"));
    }
    parts.join(", ")
}

fn describe(o: &ParsedOrder) -> String {
    let generated = if o.generated_id {
        " (ID derived from the file and content)"
    } else {
        ""
    };
    format!(
        "would submit {}{generated}: {} {} {}, {} line(s), customer {}  [{}]",
        o.order.id(),
        o.order.total_amount(),
        o.order.currency(),
        o.order.payment_method(),
        o.order.items().len(),
        o.order.customer_id(),
        o.origin
    )
}

/// How fast [`submit_all`] may start orders.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Pace {
    /// Start the next order only while fewer than this many of those it
    /// started are still running.
    pub max_in_flight: Option<u32>,
    /// At most this many starts a second.
    pub per_second: Option<f64>,
}

/// Starts every order, [`CONCURRENCY`] at a time and at `pace`; the
/// records in the orders' order. `each` is told as each one is done. Once
/// `stop` resolves, no more are started, even those waiting for a place or
/// a tick: those under way finish, and the records are of the orders
/// started (or found) before it.
pub(crate) async fn submit_all(
    client: &OrderClient,
    config: &TemporalConfig,
    orders: impl IntoIterator<Item = Order>,
    pace: Pace,
    each: impl Fn(),
    stop: impl Future<Output = ()>,
) -> anyhow::Result<Vec<Submission>> {
    let (stopped_tx, stopped) = tokio::sync::watch::channel(false);
    let running = pace
        .max_in_flight
        .map(|n| Arc::new(Semaphore::new(n as usize)));
    let ticker = pace.per_second.map(|rate| {
        let mut ticker = tokio::time::interval(Duration::from_secs_f64(1.0 / rate));
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tokio::sync::Mutex::new(ticker)
    });
    let ticker = ticker.as_ref();
    let work = futures::stream::iter(orders)
        .take_while(|_| std::future::ready(!*stopped.borrow()))
        .map(|order| {
            let running = running.clone();
            let mut stopped = stopped.clone();
            async move {
                // Semaphores and the ticker's lock are fair: places go in
                // the orders' order.
                let place = async {
                    let permit = match running {
                        Some(r) => Some(r.acquire_owned().await.expect("never closed")),
                        None => None,
                    };
                    if let Some(ticker) = ticker {
                        ticker.lock().await.tick().await;
                    }
                    permit
                };
                // A stop while waiting for a place or a tick (or before)
                // wins: with no worker, a place may never come.
                let permit = tokio::select! {
                    biased;
                    _ = stopped.wait_for(|stopped| *stopped) => return None,
                    permit = place => permit,
                };
                let submission = submit(client, config, &order).await;
                // The place is given back when the order it started ends.
                if let (Some(permit), Ok(s)) = (permit, &submission)
                    && !s.existing
                {
                    let client = client.clone();
                    let id = order.id().clone();
                    tokio::spawn(async move {
                        until_ended(&client, &id).await;
                        drop(permit);
                    });
                }
                Some(submission)
            }
        })
        .buffered(CONCURRENCY)
        .filter_map(std::future::ready)
        .inspect(|_| each())
        .collect::<Vec<_>>();
    let watch = async {
        stop.await;
        stopped_tx.send_replace(true);
        std::future::pending::<()>().await;
    };
    // The stop is looked at first: once it came, no order starts.
    let results = tokio::select! {
        biased;
        () = watch => unreachable!("pending forever"),
        results = work => results,
    };
    results.into_iter().collect()
}

/// Returns once the order has ended. An error from the result's long poll
/// (Temporal restarting, a network blip) is not the order's end: it is
/// looked up, and waited for again while it runs.
async fn until_ended(client: &OrderClient, id: &impl Id) {
    loop {
        if client.outcome(id).await.is_ok() {
            return;
        }
        if !matches!(
            client.describe(id).await,
            Ok(Some(Execution::Running)) | Err(_)
        ) {
            return;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// The error of IDs that exist with other content (exit 6), if any.
pub(crate) fn conflict(submissions: &[Submission]) -> Option<Fail> {
    let conflicts: Vec<&str> = submissions
        .iter()
        .filter(|s| s.conflict.is_some())
        .map(|s| s.order_id.as_str())
        .collect();
    (!conflicts.is_empty()).then(|| {
        Fail::new(
            Exit::Conflict,
            format!(
                "{} already exist(s) with different content; nothing was started for {}. Give \
                 them new IDs",
                conflicts.join(", "),
                if conflicts.len() == 1 { "it" } else { "them" }
            ),
        )
    })
}

/// Starts one order; an existing ID is compared with what it was started with.
pub(crate) async fn submit(
    client: &OrderClient,
    config: &TemporalConfig,
    order: &Order,
) -> anyhow::Result<Submission> {
    let id = order.id().as_str().to_owned();
    let mut submission = Submission {
        kind: "created",
        order_id: id.clone(),
        workflow_id: id.clone(),
        run_id: String::new(),
        status: OrderStatus::Pending,
        existing: false,
        conflict: None,
        ui_url: config.ui_link(&id),
    };
    match client.start(&config.task_queue, order, false).await? {
        Submitted::Started { run_id } => submission.run_id = run_id,
        Submitted::Exists { run_id } => {
            submission.run_id = run_id;
            submission.existing = true;
            let recorded = client.recorded_order(order.id()).await?;
            if recorded == *order {
                submission.status = client.fetch(order.id()).await?.0.status;
            } else {
                submission.conflict = Some(format!("order {id} exists with different content"));
            }
        }
    }
    Ok(submission)
}
