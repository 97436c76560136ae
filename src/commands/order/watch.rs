//! `orderflow order watch ID…`: follows orders until each ends. Progress
//! bars on a terminal, one plain line per change otherwise, JSON Lines with
//! `-o json`. The orders themselves are never touched.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::render::{WatchRecord, change_key, change_line, state_word};
use crate::cli::WatchArgs;
use crate::commands::Context;
use crate::domain::{OrderStatus, WorkflowId};
use crate::exit::{Exit, Fail};
use crate::output::Printer;
use crate::workflow::client::{OrderCallError, OrderClient};
use crate::workflow::state::{OrderView, StepState};

/// How often a running order is asked for its state, when few are followed.
const POLL: Duration = Duration::from_millis(250);

/// At most this many live-state queries per [`POLL`], however many orders
/// are followed: each query is a workflow task on a worker, and a batch
/// must not slow down the orders it watches. Endings do not wait for a
/// query: each order's result is long-polled and arrives as it happens.
const QUERIES_PER_POLL: usize = 4;

/// How often each of `count` followed orders is queried, within the budget.
fn query_interval(count: usize) -> Duration {
    POLL * count.div_ceil(QUERIES_PER_POLL).max(1) as u32
}

pub async fn run(cx: &Context, args: WatchArgs) -> anyhow::Result<Exit> {
    let (_, client) = super::connect(cx).await?;
    for id in &args.ids {
        if client.describe(id).await?.is_none() {
            return Err(OrderCallError::NotFound(id.to_string()).into());
        }
    }
    follow(&cx.printer, &client, &args.ids, args.timeout, true).await
}

/// Follows `ids` to their ends; the exit code of the worst outcome
/// (FAILED, then CANCELLED), or 7 when `timeout` passes first. `show`:
/// report changes (bars, lines or JSON Lines as the printer says).
pub(crate) async fn follow(
    printer: &Printer,
    client: &OrderClient,
    ids: &[WorkflowId],
    timeout: Option<Duration>,
    show: bool,
) -> anyhow::Result<Exit> {
    let reporter = Reporter::new(printer, ids, show);
    let every = query_interval(ids.len());
    // The queries are spread evenly over the interval, not sent in bursts,
    // and none comes at once: a query that reaches an order during its
    // first workflow task makes the worker end that task early to answer
    // it, which costs the order a second task — and an order usually ends
    // within its first, well before a query could show anything.
    let all = futures::future::try_join_all(ids.iter().enumerate().map(|(i, id)| {
        let first = every.mul_f64((i + 1) as f64 / ids.len() as f64);
        track(client, id, &reporter, first, every)
    }));
    let finals = match timeout {
        None => all.await?,
        Some(limit) => match tokio::time::timeout(limit, all).await {
            Ok(finals) => finals?,
            Err(_) => {
                reporter.abandon();
                return Err(Fail::new(
                    Exit::Timeout,
                    format!(
                        "--timeout {} elapsed before every order ended; they go on running",
                        humantime::format_duration(limit)
                    ),
                )
                .into());
            }
        },
    };
    reporter.finish(&finals)?;
    Ok(worst(finals.iter().map(|v| v.status)))
}

/// FAILED beats CANCELLED beats COMPLETED.
pub(super) fn worst(statuses: impl Iterator<Item = OrderStatus>) -> Exit {
    statuses
        .map(|s| match s {
            OrderStatus::Failed => Exit::OrderFailed,
            OrderStatus::Cancelled => Exit::OrderCancelled,
            _ => Exit::Success,
        })
        .max_by_key(|e| match e {
            Exit::OrderFailed => 2,
            Exit::OrderCancelled => 1,
            _ => 0,
        })
        .unwrap_or(Exit::Success)
}

/// Follows one order: its live state while it runs (first after `first`,
/// then `every`), its result the moment it ends.
async fn track(
    client: &OrderClient,
    id: &WorkflowId,
    reporter: &Reporter<'_>,
    first: Duration,
    every: Duration,
) -> anyhow::Result<OrderView> {
    let outcome = client.outcome(id);
    tokio::pin!(outcome);
    let mut last = None;
    let mut wait = first;
    loop {
        tokio::select! {
            result = &mut outcome => {
                let view = match result {
                    Ok(view) => view,
                    // Terminated from outside: show what was recorded.
                    Err(_) => client.fetch(id).await?.0,
                };
                reporter.update(&view)?;
                return Ok(view);
            }
            _ = tokio::time::sleep(wait) => {
                wait = every;
                if let Ok(Some(view)) = client.live_status(id, Duration::from_secs(2)).await
                    && !view.status.is_terminal()
                    && last != Some(change_key(&view))
                {
                    last = Some(change_key(&view));
                    reporter.update(&view)?;
                }
            }
        }
    }
}

enum Mode {
    Silent,
    Bars {
        _multi: MultiProgress,
        bars: HashMap<WorkflowId, ProgressBar>,
    },
    Lines,
    Json,
}

struct Reporter<'a> {
    printer: &'a Printer,
    mode: Mutex<Mode>,
}

impl<'a> Reporter<'a> {
    fn new(printer: &'a Printer, ids: &[WorkflowId], show: bool) -> Self {
        let mode = if !show {
            Mode::Silent
        } else if printer.is_json() {
            Mode::Json
        } else if printer.progress_enabled() {
            let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stderr());
            let style = ProgressStyle::with_template("{prefix:<24} [{bar:16}] {msg} {elapsed:>4}")
                .expect("static template")
                .progress_chars("=> ");
            let width = ids.iter().map(|i| i.as_str().len()).max().unwrap_or(8);
            let bars = ids
                .iter()
                .map(|id| {
                    let bar = multi.add(ProgressBar::new(4).with_style(style.clone()));
                    bar.set_prefix(format!("{id:<width$}"));
                    bar.set_message("PENDING");
                    bar.enable_steady_tick(Duration::from_millis(200));
                    (id.clone(), bar)
                })
                .collect();
            Mode::Bars {
                _multi: multi,
                bars,
            }
        } else {
            Mode::Lines
        };
        Self {
            printer,
            mode: Mutex::new(mode),
        }
    }

    fn update(&self, view: &OrderView) -> std::io::Result<()> {
        let mode = self.mode.lock().unwrap_or_else(|e| e.into_inner());
        match &*mode {
            Mode::Silent => Ok(()),
            Mode::Json => self.printer.json_line(&WatchRecord::new(view)),
            Mode::Lines => self.printer.line(change_line(view)),
            Mode::Bars { bars, .. } => {
                if let Some(bar) = bars.get(&view.order_id) {
                    let done = view
                        .steps
                        .iter()
                        .filter(|s| s.state == StepState::Done)
                        .count();
                    bar.set_position(done as u64);
                    bar.set_message(bar_message(view));
                    // A full bar only for a completed order.
                    match view.status {
                        OrderStatus::Completed => bar.finish(),
                        s if s.is_terminal() => bar.abandon(),
                        _ => {}
                    }
                }
                Ok(())
            }
        }
    }

    /// Leaves bars where they are (timeout): the orders go on.
    fn abandon(&self) {
        if let Mode::Bars { bars, .. } = &*self.mode.lock().unwrap_or_else(|e| e.into_inner()) {
            bars.values().for_each(ProgressBar::abandon);
        }
    }

    /// After bars, the outcome as data on stdout too.
    fn finish(&self, finals: &[OrderView]) -> std::io::Result<()> {
        if let Mode::Bars { .. } = &*self.mode.lock().unwrap_or_else(|e| e.into_inner()) {
            for view in finals {
                self.printer.line(change_line(view))?;
            }
        }
        Ok(())
    }
}

fn bar_message(view: &OrderView) -> String {
    if view.status.is_terminal() {
        return match (&view.failure, &view.cancellation) {
            (Some(f), _) => format!("{} {}: {}", view.status, f.code, f.message),
            (None, Some(c)) if view.status == OrderStatus::Cancelled => {
                format!("{} ({})", view.status, c.reason)
            }
            _ => view.status.to_string(),
        };
    }
    match view.step {
        Some(step) => {
            let s = view.step_view(step);
            let mut msg = format!("{} · {step} {}", view.status, state_word(s.state));
            if s.attempts > 1 || matches!(s.state, StepState::Retrying | StepState::Waiting) {
                msg.push_str(&format!(" (attempt {})", s.attempts));
            }
            msg
        }
        None => view.status.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_worst_outcome_wins() {
        use OrderStatus::*;
        assert_eq!(worst([Completed, Completed].into_iter()), Exit::Success);
        assert_eq!(
            worst([Completed, Cancelled].into_iter()),
            Exit::OrderCancelled
        );
        assert_eq!(
            worst([Cancelled, Failed, Completed].into_iter()),
            Exit::OrderFailed
        );
        assert_eq!(worst(std::iter::empty()), Exit::Success);
    }

    #[test]
    fn queries_keep_to_their_budget_however_many_orders() {
        assert_eq!(query_interval(1), POLL);
        assert_eq!(query_interval(QUERIES_PER_POLL), POLL);
        assert_eq!(query_interval(QUERIES_PER_POLL + 1), POLL * 2);
        // 1500 orders: each asked every 375 ticks (94 s), 4 queries a tick in all.
        assert_eq!(query_interval(1500), POLL * 375);
    }
}
