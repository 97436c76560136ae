//! Acting on many orders at once (`order cancel` over a selection): which
//! orders, the question before, the pace, the progress bar, one record per
//! order, and the summary with an exit code by the worst outcome.

use std::collections::{BTreeMap, HashSet};
use std::io::IsTerminal as _;
use std::path::Path;
use std::time::Duration;

use anyhow::Context as _;
use futures::StreamExt as _;
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;

use crate::cli::PickArgs;
use crate::commands::Context;
use crate::db::orders;
use crate::domain::{OrderStatus, WorkflowId};
use crate::exit::{Exit, Fail};
use crate::temporal::client::OrderClient;

/// Orders acted on at once.
const IN_FLIGHT: usize = 16;
/// After Ctrl-C, how long the orders under way get to finish before the
/// summary (the command as a whole gets 5 s).
const FINISH_AFTER_INTERRUPT: Duration = Duration::from_secs(3);

/// The orders a selection names, each once, oldest first.
pub(crate) async fn chosen(
    cx: &Context,
    pick: &PickArgs,
    client: &OrderClient,
    task_queue: &str,
) -> anyhow::Result<Vec<WorkflowId>> {
    let mut ids: Vec<String> = Vec::new();
    if let Some(path) = &pick.ids_file {
        let ids = if path == Path::new("-") {
            super::watch::read_ids(std::io::stdin().lock(), "<stdin>")?
        } else {
            let file = std::fs::File::open(path).map_err(|e| {
                Fail::usage(format!("--ids-file {}: cannot read: {e}", path.display()))
            })?;
            super::watch::read_ids(std::io::BufReader::new(file), &path.display().to_string())?
        };
        return Ok(once(ids.into_iter().map(|id| id.as_str().to_owned())));
    }
    if let Some(query) = &pick.query {
        let mut scan = std::pin::pin!(client.scan(query, None));
        while let Some(listed) = scan.next().await {
            ids.push(listed?.order_id);
        }
        // Newest first from visibility: oldest first, as the rest.
        ids.reverse();
        return Ok(once(ids.into_iter()));
    }
    let statuses = pick.select.statuses();
    let codes: Vec<String> = pick
        .failure_code
        .iter()
        .map(|c| c.as_str().to_owned())
        .collect();
    let pool = cx.pool().await?;
    ids = orders::picked(
        &pool,
        &orders::Pick {
            statuses: &statuses,
            customer: pick.select.customer.as_ref(),
            failure_codes: &codes,
            created_after: pick.created_after,
            created_before: pick.created_before,
        },
    )
    .await
    .context("selecting the orders")?;
    // PENDING orders have no row yet (no worker took them): the running
    // workflows of the task queue that the database lacks. Temporal has no
    // customer or failure code for them.
    let pending = statuses.is_empty() || statuses.contains(&OrderStatus::Pending);
    if pending && (pick.select.customer.is_some() || !codes.is_empty()) {
        cx.printer.note(
            "note: orders still PENDING (no worker took them yet) cannot be found by customer \
             or failure code; they are left out",
        );
    } else if pending {
        let mut query = format!(
            "ExecutionStatus = 'Running' AND TaskQueue = '{}'",
            task_queue.replace('\\', "\\\\").replace('\'', "\\'")
        );
        let at = |t: chrono::DateTime<chrono::Utc>| {
            t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
        };
        if let Some(after) = pick.created_after {
            query.push_str(&format!(" AND StartTime > '{}'", at(after)));
        }
        if let Some(before) = pick.created_before {
            query.push_str(&format!(" AND StartTime < '{}'", at(before)));
        }
        // Only those without any row: a row means a worker took it, and the
        // database selection above decided about it.
        let mut running = Vec::new();
        let mut scan = std::pin::pin!(client.scan(&query, None).chunks(1000));
        while let Some(page) = scan.next().await {
            let page = page
                .into_iter()
                .map(|listed| listed.map(|l| l.order_id))
                .collect::<anyhow::Result<Vec<String>>>()
                .context("listing the orders no worker took yet")?;
            let recorded: HashSet<String> = orders::recorded(&pool, &page)
                .await
                .context("reading which running orders have a row")?
                .into_iter()
                .collect();
            running.extend(page.into_iter().filter(|id| !recorded.contains(id)));
        }
        running.reverse();
        ids.extend(running);
    }
    Ok(once(ids.into_iter()))
}

/// Each ID once, in its first place.
fn once(ids: impl Iterator<Item = String>) -> Vec<WorkflowId> {
    let mut seen = HashSet::new();
    ids.filter(|id| seen.insert(id.clone()))
        .map(|id| WorkflowId::lossy(&id))
        .collect()
}

/// Asks at a terminal before acting on `count` orders; refuses off one
/// without `--yes` (exit 2). `Ok(false)`: declined.
pub(crate) fn confirmed(
    cx: &Context,
    doing: &str,
    count: usize,
    yes: bool,
) -> anyhow::Result<bool> {
    if yes || count == 0 {
        return Ok(true);
    }
    let question = format!("This will {doing} {count} order(s).");
    if !std::io::stdin().is_terminal() || cx.printer.is_json() {
        return Err(Fail::usage(format!(
            "{question} Refusing without --yes when not asking at a terminal \
             (--dry-run lists them)."
        ))
        .into());
    }
    eprint!("{question}\nType 'yes' to continue: ");
    let mut answer = String::new();
    std::io::stdin()
        .read_line(&mut answer)
        .context("reading the answer")?;
    Ok(answer.trim().eq_ignore_ascii_case("yes"))
}

/// `--dry-run`: the orders it would act on.
pub(crate) fn dry_run(cx: &Context, doing: &str, ids: &[WorkflowId]) -> anyhow::Result<Exit> {
    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    struct DryRun<'a> {
        dry_run: bool,
        count: usize,
        orders: Vec<&'a str>,
    }
    let p = &cx.printer;
    if p.is_json() {
        p.json(&DryRun {
            dry_run: true,
            count: ids.len(),
            orders: ids.iter().map(|id| id.as_str()).collect(),
        })?;
    } else {
        for id in ids {
            p.line(crate::domain::escape(id.as_str()))?;
        }
        p.note(format!(
            "{} order(s) would {doing}; nothing was changed (--dry-run).",
            ids.len()
        ));
    }
    Ok(Exit::Success)
}

/// What happened to one order.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Record {
    pub order_id: String,
    /// What the action came to for it (`cancelled`, `refused`, …).
    pub outcome: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<OrderStatus>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// `order resubmit`: the new order.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resubmitted_as: Option<String>,
    /// What this outcome alone would exit with.
    #[serde(skip)]
    pub exit: Exit,
}

/// How bad an exit is, for the worst of many: an error beats a missing
/// order, which beats a refusal, which beats a timeout.
fn severity(exit: Exit) -> u8 {
    match exit {
        Exit::Success => 0,
        Exit::Timeout => 1,
        Exit::Conflict => 2,
        Exit::NotFound => 3,
        Exit::Usage => 4,
        Exit::Unavailable => 5,
        _ => 6,
    }
}

/// Runs `act` on every order, at most [`IN_FLIGHT`] at once and `rate` a
/// second; prints a record per order (a line, or JSON Lines; at a terminal
/// a progress bar and the orders that did not go as asked), then the
/// summary. Exits by the worst outcome; on Ctrl-C, starts no more.
pub(crate) async fn act_on_all<F, Fut>(
    cx: &Context,
    verb: &str,
    ids: Vec<WorkflowId>,
    rate: Option<f64>,
    act: F,
) -> anyhow::Result<Exit>
where
    F: Fn(WorkflowId) -> Fut,
    Fut: std::future::Future<Output = Record>,
{
    let p = &cx.printer;
    let total = ids.len();
    let bar = p.progress_enabled().then(|| {
        let bar = ProgressBar::new(total as u64);
        bar.set_style(
            ProgressStyle::with_template(&format!(
                "{verb} [{{bar:30}}] {{pos}}/{{len}} {{elapsed}}"
            ))
            .expect("static template"),
        );
        bar
    });
    // Each order's start, from when the first started: `rate` a second.
    let every = rate.map(|r| Duration::from_secs_f64(1.0 / r));
    let begin = tokio::time::Instant::now();
    let interrupt = cx.interrupt();
    let interrupted = std::cell::Cell::new(false);
    let act = &act;
    let interrupted_ref = &interrupted;
    let mut results = std::pin::pin!(
        futures::stream::iter(ids.into_iter().enumerate())
            .take_while(|_| {
                let go = !interrupted_ref.get();
                async move { go }
            })
            .map(|(n, id)| async move {
                if let Some(every) = every {
                    tokio::time::sleep_until(begin + every.mul_f64(n as f64)).await;
                }
                // Ctrl-C while it waited its turn: not started.
                if interrupted_ref.get() {
                    return None;
                }
                Some(act(id).await)
            })
            .buffer_unordered(IN_FLIGHT)
    );
    let mut counts: BTreeMap<&'static str, usize> = BTreeMap::new();
    let mut worst = Exit::Success;
    let mut records = Vec::new();
    let mut done = 0usize;
    // After Ctrl-C, how long the orders under way get to finish.
    let mut stop_by: Option<tokio::time::Instant> = None;
    loop {
        let record = tokio::select! {
            biased;
            () = interrupt.wait(), if !interrupted.get() => {
                interrupted.set(true);
                stop_by = Some(tokio::time::Instant::now() + FINISH_AFTER_INTERRUPT);
                continue;
            }
            () = tokio::time::sleep_until(stop_by.unwrap_or(begin)), if stop_by.is_some() => break,
            record = results.next() => match record {
                Some(Some(record)) => record,
                Some(None) => continue,
                None => break,
            },
        };
        done += 1;
        *counts.entry(record.outcome).or_default() += 1;
        if severity(record.exit) > severity(worst) {
            worst = record.exit;
        }
        let say = |text: String| match &bar {
            Some(bar) => bar.suspend(|| p.line(text)),
            None => p.line(text),
        };
        if p.is_json_lines() {
            #[derive(Serialize)]
            struct Line<'a> {
                r#type: &'static str,
                #[serde(flatten)]
                record: &'a Record,
            }
            p.json_line(&Line {
                r#type: "order",
                record: &record,
            })?;
        } else if p.is_json() {
            records.push(record);
        } else if bar.is_none() || record.exit != Exit::Success {
            let mut line = format!(
                "{}  {}",
                crate::domain::escape(&record.order_id),
                record.outcome
            );
            if let Some(status) = record.status {
                line.push_str(&format!("  {status}"));
            }
            if let Some(new) = &record.resubmitted_as {
                line.push_str(&format!("  as {}", crate::domain::escape(new)));
            }
            if let Some(detail) = &record.detail {
                line.push_str(&format!("  {}", crate::domain::escape(detail)));
            }
            say(line)?;
        }
        if let Some(bar) = &bar {
            bar.inc(1);
        }
    }
    if let Some(bar) = &bar {
        bar.finish_and_clear();
    }

    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    struct Summary<'a> {
        total: usize,
        acted: usize,
        outcomes: &'a BTreeMap<&'static str, usize>,
        interrupted: bool,
        #[serde(skip_serializing_if = "Option::is_none")]
        orders: Option<&'a [Record]>,
    }
    let summary = Summary {
        total,
        acted: done,
        outcomes: &counts,
        interrupted: interrupted.get(),
        orders: (p.is_json() && !p.is_json_lines()).then_some(records.as_slice()),
    };
    if p.is_json_lines() {
        #[derive(Serialize)]
        struct Line<'a> {
            r#type: &'static str,
            #[serde(flatten)]
            summary: &'a Summary<'a>,
        }
        p.json_line(&Line {
            r#type: "summary",
            summary: &summary,
        })?;
    } else if p.is_json() {
        p.json(&summary)?;
    } else {
        let outcomes: Vec<String> = counts.iter().map(|(o, n)| format!("{n} {o}")).collect();
        p.line(format!(
            "{done} of {total} order(s): {}",
            outcomes.join(", ")
        ))?;
    }
    if interrupted.get() {
        p.interrupted(&format!(
            "interrupted: {done} of {total} orders acted on, {} not (those under way may have \
             been); run the same command again for the rest",
            total - done
        ));
        return Ok(Exit::Interrupted);
    }
    Ok(worst)
}
