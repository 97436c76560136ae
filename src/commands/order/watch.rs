//! `orderflow order watch ID…`: follows orders until each ends. A live view
//! on a terminal (`progress`), one plain line per change otherwise, JSON
//! Lines with `-o json`/`-o jsonl`. The orders themselves are never touched.

use std::collections::{HashMap, HashSet};
use std::convert::Infallible;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use chrono::Utc;
use console::Term;

use super::progress::{self, Row, Tally};
use super::render::{Mark, WatchRecord, change_key, change_line, records_after};
use anyhow::Context as _;

use crate::cli::{IdArg, WatchArgs};
use crate::commands::Context;
use crate::db::orders;
use crate::domain::{OrderStatus, WorkflowId};
use crate::exit::{Exit, Fail};
use crate::output::Printer;
use crate::temporal::TemporalError;
use crate::temporal::client::{Execution, OrderCallError, OrderClient};
use crate::temporal::codec::CodecError;
use crate::workflow::state::{OrderView, StepState};
use futures::StreamExt as _;

/// How often a running order is asked for its state, when few are followed.
const POLL: Duration = Duration::from_millis(250);

/// At most this many live-state queries per [`POLL`], however many orders
/// are followed: each query is a workflow task on a worker, and a batch
/// must not slow down the orders it watches. Endings do not wait for a
/// query: each order's result is long-polled and arrives as it happens.
const QUERIES_PER_POLL: usize = 4;

/// How often the live view is redrawn (changes are shown at the next one).
const FRAME: Duration = Duration::from_millis(100);

/// An order still `PENDING` this long gets a hint when no worker polls its
/// task queue; the pollers are looked at again as often while it stays so.
const PENDING_HINT: Duration = Duration::from_secs(5);

/// Without `--timeout`, how long Temporal may stay silent before `watch`
/// gives up on it (exit 8); with one, it is tried until the timeout.
const LOST_GRACE: Duration = Duration::from_secs(60);

/// How often a silent Temporal is tried again.
const RECONNECT: Duration = Duration::from_secs(1);

/// How often each of `count` followed orders is queried, within the budget.
fn query_interval(count: usize) -> Duration {
    POLL * count.div_ceil(QUERIES_PER_POLL).max(1) as u32
}

pub async fn run(cx: &Context, args: WatchArgs) -> anyhow::Result<Exit> {
    let (config, client) = super::connect(cx).await?;
    let chosen = choose(cx, &args, &client, &config.task_queue).await?;
    if chosen.ids.is_empty() {
        cx.printer.note("No orders match.");
        return Ok(Exit::Success);
    }
    // Looked up 16 at a time, in the order named.
    let client_ref = &client;
    let described: Vec<_> = futures::stream::iter(&chosen.ids)
        .map(|id| async move { (id, client_ref.describe(id).await) })
        .buffered(16)
        .collect()
        .await;
    let mut missing = Vec::new();
    for (id, found) in described {
        if found?.is_none() {
            missing.push(id);
        }
    }
    match missing.as_slice() {
        [] => {}
        [one] if args.files.is_empty() => {
            return Err(OrderCallError::NotFound(one.to_string()).into());
        }
        some => {
            let from_files = if args.files.is_empty() {
                String::new()
            } else {
                format!(
                    "; submit them with `{}`",
                    command_line(&["order", "create"], &file_args(&args.files))
                )
            };
            return Err(Fail::new(
                Exit::NotFound,
                format!(
                    "{} of {} orders were not found in Temporal (first: {}){from_files}",
                    some.len(),
                    chosen.ids.len(),
                    crate::domain::quote(some[0].as_str())
                ),
            )
            .into());
        }
    }
    Follow {
        printer: &cx.printer,
        client: &client,
        task_queue: &config.task_queue,
        timeout: args.timeout,
        show: true,
        on_interrupt: OnInterrupt::Resume(chosen.resume),
        interrupt: cx.interrupt(),
    }
    .run(&chosen.ids)
    .await
}

/// The orders `order watch` was asked to follow, each once, in the order
/// named; and how to name them again.
struct Chosen {
    ids: Vec<WorkflowId>,
    resume: Resume,
}

/// Orders selected from the database: at most this many.
const MAX_SELECTED: u32 = 10_000;

async fn choose(
    cx: &Context,
    args: &WatchArgs,
    client: &OrderClient,
    task_queue: &str,
) -> anyhow::Result<Chosen> {
    let mut listed = Vec::new();
    for arg in &args.ids {
        match arg {
            IdArg::Id(id) => listed.push(id.clone()),
            IdArg::Stdin => listed.extend(read_ids(std::io::stdin().lock(), "<stdin>")?),
        }
    }
    let mut ids: Vec<WorkflowId> = listed.clone();
    if !args.files.is_empty() {
        let parsed = crate::input::read_orders(&args.files, None)?;
        ids.extend(parsed.into_iter().map(|o| o.order.id().clone().into()));
    }
    if args.select.is_set() {
        let pool = cx.pool().await?;
        let statuses = args.select.statuses();
        let filter = orders::Filter {
            statuses: &statuses,
            customer: args.select.customer.as_ref(),
            after: None,
        };
        let rows = orders::list(&pool, &filter, MAX_SELECTED + 1)
            .await
            .context("selecting the orders to follow")?;
        if rows.len() > MAX_SELECTED as usize {
            return Err(Fail::new(
                Exit::Usage,
                format!(
                    "more than {MAX_SELECTED} orders match `{}`; narrow the selection",
                    args.select.to_args().join(" ")
                ),
            )
            .into());
        }
        // Oldest first, as they were submitted.
        for row in rows.into_iter().rev() {
            ids.push(WorkflowId::parse(&row.order_id).context("an order ID in the database")?);
        }
        // PENDING orders have no row yet (no worker took them): they are
        // the running orders of this task queue that the database lacks.
        // An order no worker took has no customer in Temporal either: by
        // customer, PENDING orders cannot be found (said so).
        let pending = statuses.is_empty() || statuses.contains(&OrderStatus::Pending);
        if pending && args.select.customer.is_some() {
            cx.printer.note(
                "note: orders still PENDING (no worker took them yet) cannot be found by \
                 customer; they are left out",
            );
        }
        if pending && args.select.customer.is_none() {
            let quoted = task_queue.replace('\\', "\\\\").replace('\'', "\\'");
            let query = format!("ExecutionStatus = 'Running' AND TaskQueue = '{quoted}'");
            let running = match client.list(&query, MAX_SELECTED).await {
                Ok(running) => running,
                Err(e) => {
                    cx.printer.note(format!(
                        "warning: PENDING orders are left out: Temporal's visibility did not \
                         list them ({})",
                        crate::errors::text(e.as_ref())
                    ));
                    Vec::new()
                }
            };
            let names: Vec<String> = running.iter().map(|r| r.order_id.clone()).collect();
            let recorded: HashSet<String> =
                sqlx::query_scalar("SELECT order_id FROM orders WHERE order_id = ANY($1)")
                    .bind(&names)
                    .fetch_all(&pool)
                    .await
                    .context("looking up the running orders")?
                    .into_iter()
                    .collect();
            for name in names
                .iter()
                .rev()
                .filter(|n| !recorded.contains(n.as_str()))
            {
                if let Ok(id) = WorkflowId::parse(name) {
                    ids.push(id);
                }
            }
        }
    }
    let mut seen = HashSet::new();
    ids.retain(|id| seen.insert(id.clone()));
    let mut fixed = file_args(&args.files);
    fixed.extend(args.select.to_args());
    Ok(Chosen {
        ids,
        resume: Resume { fixed, listed },
    })
}

/// Order IDs, one a line (blank lines and `#` comments skipped): every bad
/// line reported at once (exit 2).
pub(super) fn read_ids(
    input: impl std::io::BufRead,
    source: &str,
) -> anyhow::Result<Vec<WorkflowId>> {
    let mut ids = Vec::new();
    let mut problems = Vec::new();
    for (n, line) in input.lines().enumerate() {
        let line = line.with_context(|| format!("reading order IDs from {source}"))?;
        let text = line.trim();
        if text.is_empty() || text.starts_with('#') {
            continue;
        }
        match WorkflowId::parse(text) {
            Ok(id) => ids.push(id),
            Err(e) => problems.push(format!("{source}: line {}: {e}", n + 1)),
        }
    }
    if !problems.is_empty() {
        return Err(Fail::new(Exit::Usage, problems.join("\n")).into());
    }
    if ids.is_empty() {
        return Err(Fail::new(
            Exit::Usage,
            format!("{source} holds no order IDs; give one a line ('#' starts a comment)"),
        )
        .into());
    }
    Ok(ids)
}

pub(crate) fn file_args(files: &[std::path::PathBuf]) -> Vec<String> {
    files
        .iter()
        .flat_map(|f| ["--file".to_owned(), f.display().to_string()])
        .collect()
}

/// `orderflow <words> <args>`, quoted for a POSIX shell.
pub(crate) fn command_line(words: &[&str], args: &[String]) -> String {
    let mut all: Vec<&str> = vec![crate::commands::program()];
    all.extend_from_slice(words);
    all.extend(args.iter().map(String::as_str));
    shell_words::join(all)
}

/// How to follow the same orders again after Ctrl-C.
pub(crate) struct Resume {
    /// Options that select them again (`--file F`, `--status open`).
    pub fixed: Vec<String>,
    /// IDs that were named one by one: those still in flight are listed.
    pub listed: Vec<WorkflowId>,
}

impl Resume {
    /// The command, given the orders still in flight; `None` when the
    /// orders it would follow have all ended.
    fn command(&self, in_flight: &HashSet<&str>) -> Option<String> {
        let mut args = self.fixed.clone();
        args.extend(
            self.listed
                .iter()
                .filter(|id| in_flight.contains(id.as_str()))
                .map(|id| id.as_str().to_owned()),
        );
        (!args.is_empty()).then(|| command_line(&["order", "watch"], &args))
    }
}

/// What Ctrl-C says when it stops the following.
pub(crate) enum OnInterrupt {
    /// The orders go on: how to follow them again.
    Resume(Resume),
    /// The caller stops them or their stack: this.
    Say(&'static str),
}

/// Following orders to their ends.
pub(crate) struct Follow<'a> {
    pub printer: &'a Printer,
    pub client: &'a OrderClient,
    /// Where the orders wait for a worker (for the hint when none polls).
    pub task_queue: &'a str,
    /// Give up after this long (exit 7).
    pub timeout: Option<Duration>,
    /// Report changes (view, lines or JSON Lines as the printer says).
    pub show: bool,
    pub on_interrupt: OnInterrupt,
    /// What stops the following: Ctrl-C, told or heard.
    pub interrupt: crate::commands::Interrupt,
}

impl Follow<'_> {
    /// Follows `ids` to their ends; the exit code of the worst outcome
    /// (FAILED, then CANCELLED), 7 when the timeout passes first, 130 on
    /// Ctrl-C (the view is left finished and says what to do).
    pub async fn run(&self, ids: &[WorkflowId]) -> anyhow::Result<Exit> {
        let reporter = Reporter::new(self.printer, ids, self.show);
        let every = query_interval(ids.len());
        // The queries are spread evenly over the interval, not sent in bursts,
        // and none comes at once: a query that reaches an order during its
        // first workflow task makes the worker end that task early to answer
        // it, which costs the order a second task — and an order usually ends
        // within its first, well before a query could show anything.
        let grace = match self.timeout {
            Some(_) => Duration::MAX,
            None => LOST_GRACE,
        };
        let all = futures::future::try_join_all(ids.iter().enumerate().map(|(i, id)| {
            let first = every.mul_f64((i + 1) as f64 / ids.len() as f64);
            track(self.client, id, &reporter, first, every, grace)
        }));
        let work = async {
            tokio::select! {
                finals = all => finals,
                never = self.tick(&reporter) => match never {},
            }
        };
        let limited = async {
            match self.timeout {
                None => Ok(work.await),
                Some(limit) => tokio::time::timeout(limit, work).await,
            }
        };
        let finals = tokio::select! {
            biased;
            () = self.interrupt.wait() => {
                reporter.stop();
                self.printer.interrupted(&self.interrupted(&reporter));
                return Ok(Exit::Interrupted);
            }
            finals = limited => match finals {
                Ok(finals) => finals?,
                Err(_) => {
                    reporter.stop();
                    // Not answered at the end: that, not the time, is why.
                    if let Some(lost) = reporter.lost() {
                        return Err(lost.into());
                    }
                    let limit = self.timeout.unwrap_or_default();
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

    /// Redraws the view, and looks for a worker while an order stays
    /// `PENDING`: forever (the caller stops it).
    async fn tick(&self, reporter: &Reporter<'_>) -> Infallible {
        let mut looked: Option<Instant> = None;
        loop {
            tokio::time::sleep(FRAME).await;
            reporter.draw();
            if reporter.waits_for_a_worker() && looked.is_none_or(|t| t.elapsed() >= PENDING_HINT) {
                looked = Some(Instant::now());
                // Only a queue nobody polls is worth a hint; an error here
                // is not the order's and is left to the calls that follow it.
                let idle =
                    matches!(self.client.pollers(self.task_queue).await, Ok(p) if p.is_empty());
                reporter.hint(idle.then(|| no_worker(self.task_queue, self.client.namespace())));
            }
        }
    }

    fn interrupted(&self, reporter: &Reporter<'_>) -> String {
        match &self.on_interrupt {
            OnInterrupt::Say(text) => format!("interrupted: {text}"),
            OnInterrupt::Resume(resume) => {
                let running = reporter.in_flight();
                let in_flight: HashSet<&str> = running.iter().map(String::as_str).collect();
                match resume.command(&in_flight) {
                    Some(command) if running.len() == 1 => format!(
                        "interrupted: 1 order keeps running; follow it again with:\n  {command}"
                    ),
                    Some(command) if !running.is_empty() => format!(
                        "interrupted: {} orders keep running; follow them again with:\n  {command}",
                        running.len()
                    ),
                    _ => "interrupted: every order had ended".to_owned(),
                }
            }
        }
    }
}

/// How long the order has run by its own clock: from its creation to its
/// last change once it ended, else to `now`.
fn own_elapsed(view: &OrderView, now: chrono::DateTime<Utc>) -> Option<Duration> {
    let start = view.created_at?;
    let end = if view.status.is_terminal() {
        view.updated_at?
    } else {
        now
    };
    (end - start).to_std().ok()
}

/// The hint for orders that wait on a task queue no worker polls.
pub(crate) fn no_worker(task_queue: &str, namespace: &str) -> String {
    let start = command_line(&["worker", "--task-queue"], &[task_queue.to_owned()]);
    format!(
        "no worker polls task queue {task_queue} in namespace {namespace}; start one with `{start}`"
    )
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

/// Whether a view's current step has attempts to count.
pub(crate) fn retrying(view: &OrderView) -> bool {
    view.step.is_some_and(|step| {
        let s = view.step_view(step);
        s.attempts > 1 || matches!(s.state, StepState::Retrying | StepState::Waiting)
    })
}

/// Follows one order to its end, through moments when Temporal does not
/// answer (a restart, a network blip): tried again every [`RECONNECT`]
/// until it has been silent for `grace`, then its [`TemporalError`] (exit 8).
async fn track(
    client: &OrderClient,
    id: &WorkflowId,
    reporter: &Reporter<'_>,
    first: Duration,
    every: Duration,
    grace: Duration,
) -> anyhow::Result<OrderView> {
    let mut first = first;
    loop {
        match follow(client, id, reporter, first, every).await {
            Ok(view) => return Ok(view),
            Err(OrderCallError::Unreachable(lost)) => {
                if reporter.lost_since(&lost).elapsed() >= grace {
                    return Err((*lost).into());
                }
                tokio::time::sleep(RECONNECT).await;
                first = Duration::ZERO;
            }
            Err(other) => return Err(other.into()),
        }
    }
}

/// Follows one order: its live state while it runs (first after `first`,
/// then `every`), its result the moment it ends.
async fn follow(
    client: &OrderClient,
    id: &WorkflowId,
    reporter: &Reporter<'_>,
    first: Duration,
    every: Duration,
) -> Result<OrderView, OrderCallError> {
    let outcome = client.outcome(id);
    tokio::pin!(outcome);
    let mut last = None;
    let mut wait = first;
    // How many attempts a step gets: read once from the order's history,
    // when it first retries.
    let mut max_attempts: Option<Option<u32>> = None;
    loop {
        tokio::select! {
            result = &mut outcome => {
                let view = match result {
                    Ok(view) => view,
                    Err(lost @ (OrderCallError::Unreachable(_) | OrderCallError::Temporal(_))) => return Err(lost),
                    // Still running: the wait broke off; wait again.
                    Err(e) if client.describe(id).await? == Some(Execution::Running) => {
                        tracing::debug!(order_id = %id, "waiting for the result again: {e:#}");
                        tokio::time::sleep(RECONNECT).await;
                        outcome.set(client.outcome(id));
                        continue;
                    }
                    // Terminated from outside: show what was recorded.
                    Err(_) => client.fetch(id).await?.0,
                };
                reporter.answered();
                reporter.update(&view, max_attempts.flatten()).map_err(anyhow::Error::from)?;
                return Ok(view);
            }
            _ = tokio::time::sleep(wait) => {
                wait = every;
                match client.live_status(id, Duration::from_secs(2)).await {
                    Err(lost @ OrderCallError::Unreachable(_)) => return Err(lost),
                    // An answer this client cannot decrypt: no later one will
                    // be readable either (exit 2, naming the key).
                    Err(OrderCallError::Other(e)) if e.chain().any(|c| c.is::<CodecError>()) => {
                        return Err(OrderCallError::Other(
                            e.context(format!("following order {id}")),
                        ));
                    }
                    Ok(Some(view)) => {
                        reporter.answered();
                        if !view.status.is_terminal() && last != Some(change_key(&view)) {
                            last = Some(change_key(&view));
                            if max_attempts.is_none() && reporter.shows() && retrying(&view) {
                                max_attempts = Some(client.max_attempts(id).await.ok().flatten());
                            }
                            reporter
                                .update(&view, max_attempts.flatten())
                                .map_err(anyhow::Error::from)?;
                        }
                    }
                    _ => {}
                }
            }
        }
    }
}

/// How changes are reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Silent,
    /// A live view on stderr (a terminal), coloured or not.
    View {
        color: bool,
    },
    Lines,
    Json,
}

/// One followed order, as last seen.
struct Tracked {
    id: WorkflowId,
    view: Option<OrderView>,
    /// Where its bar stands ([`progress::advance`]).
    position: u64,
    max_attempts: Option<u32>,
    /// How long it took, once it ended.
    took: Option<Duration>,
    /// The last JSON record written for it.
    mark: Option<Mark>,
}

impl Tracked {
    fn status(&self) -> OrderStatus {
        self.view
            .as_ref()
            .map_or(OrderStatus::Pending, |v| v.status)
    }
}

struct State {
    orders: Vec<Tracked>,
    index: HashMap<WorkflowId, usize>,
    /// Why orders may stay `PENDING`, when it seems no worker polls.
    hint: Option<String>,
    /// Whether the hint went out as a note (lines: once).
    hinted: bool,
    /// The live view's lines on the terminal.
    screen: Option<Screen>,
    /// Since when Temporal has not answered, and how it said so.
    lost: Option<(Instant, TemporalError)>,
}

struct Reporter<'a> {
    printer: &'a Printer,
    mode: Mode,
    started: Instant,
    state: Mutex<State>,
}

impl<'a> Reporter<'a> {
    fn new(printer: &'a Printer, ids: &[WorkflowId], show: bool) -> Self {
        let mode = if !show {
            Mode::Silent
        } else if printer.is_json() {
            Mode::Json
        } else if printer.progress_enabled() {
            Mode::View {
                color: printer.color_stderr(),
            }
        } else {
            Mode::Lines
        };
        let orders = ids
            .iter()
            .map(|id| Tracked {
                id: id.clone(),
                view: None,
                position: 0,
                max_attempts: None,
                took: None,
                mark: None,
            })
            .collect();
        let index = ids
            .iter()
            .enumerate()
            .map(|(i, id)| (id.clone(), i))
            .collect();
        let screen = matches!(mode, Mode::View { .. }).then(Screen::new);
        Self {
            printer,
            mode,
            started: Instant::now(),
            state: Mutex::new(State {
                orders,
                index,
                hint: None,
                hinted: false,
                screen,
                lost: None,
            }),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Temporal did not answer: since when (the first of this silence),
    /// said once (in the view's footer, or as a note).
    fn lost_since(&self, lost: &TemporalError) -> Instant {
        let mut state = self.state();
        if let Some((since, _)) = &state.lost {
            return *since;
        }
        let now = Instant::now();
        state.lost = Some((now, lost.clone()));
        let text = format!(
            "{}; trying again (the orders go on running)",
            lost.headline()
        );
        match self.mode {
            Mode::Lines | Mode::Silent => self.printer.note(format!("warning: {text}")),
            Mode::View { .. } | Mode::Json => {}
        }
        now
    }

    /// Temporal answered: a silence is over.
    fn answered(&self) {
        let mut state = self.state();
        if state.lost.take().is_some() && self.mode == Mode::Lines {
            self.printer.note("Temporal answers again");
        }
    }

    /// Temporal's silence, while it lasts.
    fn lost(&self) -> Option<TemporalError> {
        self.state().lost.as_ref().map(|(_, lost)| lost.clone())
    }

    /// Whether changes are shown at all.
    fn shows(&self) -> bool {
        self.mode != Mode::Silent
    }

    fn update(&self, view: &OrderView, max_attempts: Option<u32>) -> std::io::Result<()> {
        let mut records = Vec::new();
        {
            let mut state = self.state();
            if let Some(&i) = state.index.get(&view.order_id) {
                let took = own_elapsed(view, Utc::now()).unwrap_or(self.started.elapsed());
                let order = &mut state.orders[i];
                order.position = progress::advance(order.position, view);
                order.max_attempts = max_attempts.or(order.max_attempts);
                if view.status.is_terminal() {
                    order.took.get_or_insert(took);
                }
                order.view = Some(view.clone());
                if self.mode == Mode::Json {
                    // Every status the order passed since the last record,
                    // not only those a look happened to catch.
                    records = records_after(view, order.mark.as_ref());
                    let now = WatchRecord::new(view, max_attempts);
                    if let Some(last) = records.last_mut()
                        && last.mark() == now.mark()
                    {
                        *last = now;
                    }
                    if let Some(last) = records.last() {
                        order.mark = Some(Mark {
                            status: last.status,
                            id: last.mark(),
                        });
                    }
                }
            }
        }
        match self.mode {
            Mode::Silent | Mode::View { .. } => Ok(()),
            Mode::Json => records.iter().try_for_each(|r| self.printer.json_line(r)),
            Mode::Lines => self.printer.line(change_line(view, max_attempts)),
        }
    }

    /// The view's rows as they stand now.
    fn rows(&self, state: &State) -> Vec<Row> {
        let now = Utc::now();
        let elapsed = self.started.elapsed();
        state
            .orders
            .iter()
            .map(|o| Row {
                id: o.id.to_string(),
                status: o.status(),
                position: o.position,
                detail: match &o.view {
                    Some(view) => progress::detail(view, o.max_attempts, now),
                    None if state.hint.is_some() => "waiting for a worker".to_owned(),
                    None => String::new(),
                },
                elapsed: o
                    .took
                    .or_else(|| o.view.as_ref().and_then(|v| own_elapsed(v, now)))
                    .unwrap_or(elapsed),
            })
            .collect()
    }

    /// Draws the live view with `footer` under the rows (or the batch's
    /// total line and the hint when `None`).
    fn draw_with(&self, footer: Option<Vec<String>>) {
        let Mode::View { color } = self.mode else {
            return;
        };
        let mut state = self.state();
        let rows = self.rows(&state);
        let footer = footer.unwrap_or_else(|| {
            let mut footer: Vec<String> = state.hint.iter().map(|h| format!("hint: {h}")).collect();
            if let Some((_, lost)) = &state.lost {
                footer.push(format!("warning: {lost}; trying again"));
            }
            if rows.len() > 1 {
                footer.push(progress::total_line(&Tally::of(
                    rows.iter().map(|r| &r.status),
                )));
            }
            footer
        });
        if let Some(screen) = state.screen.as_mut() {
            let (width, height) = screen.size();
            screen.draw(progress::frame(&rows, &footer, width, height, color));
        }
    }

    fn draw(&self) {
        self.draw_with(None);
    }

    /// Whether an order has stayed `PENDING` (as far as we know) long
    /// enough for a hint, where a hint can be shown (the view, or lines
    /// with notes on stderr).
    fn waits_for_a_worker(&self) -> bool {
        matches!(self.mode, Mode::View { .. } | Mode::Lines)
            && self.started.elapsed() >= PENDING_HINT
            && self
                .state()
                .orders
                .iter()
                .any(|o| o.status() == OrderStatus::Pending)
    }

    /// Shows (or, with `None`, withdraws) the hint: in the view, or once
    /// as a note.
    fn hint(&self, hint: Option<String>) {
        let mut state = self.state();
        if self.mode == Mode::Lines
            && let Some(hint) = &hint
            && !state.hinted
        {
            state.hinted = true;
            self.printer.note(format!(
                "hint: an order is still PENDING after {}s: {hint}",
                PENDING_HINT.as_secs()
            ));
        }
        state.hint = hint;
    }

    /// The IDs of the orders that have not ended.
    fn in_flight(&self) -> Vec<String> {
        self.state()
            .orders
            .iter()
            .filter(|o| !o.status().is_terminal())
            .map(|o| o.id.to_string())
            .collect()
    }

    /// Stops the view where it stands (timeout, Ctrl-C): the last frame
    /// stays, the cursor is back. The orders go on.
    fn stop(&self) {
        self.draw();
        self.state().screen.take();
    }

    /// The view's last frame with the batch's summary, then the outcome as
    /// data on stdout too. Without a view, a batch's summary as a note.
    fn finish(&self, finals: &[OrderView]) -> std::io::Result<()> {
        let summary = (finals.len() > 1).then(|| {
            progress::summary_line(
                &Tally::of(finals.iter().map(|v| &v.status)),
                self.started.elapsed(),
            )
        });
        match self.mode {
            Mode::View { .. } => {
                self.draw_with(Some(summary.into_iter().collect()));
                self.state().screen.take();
                for view in finals {
                    self.printer.line(change_line(view, None))?;
                }
            }
            Mode::Lines => {
                if let Some(summary) = summary {
                    self.printer.note(summary);
                }
            }
            Mode::Silent | Mode::Json => {}
        }
        Ok(())
    }
}

/// The live view's lines on stderr: each frame is drawn over the last one,
/// in one write, with the cursor hidden while it runs.
struct Screen {
    term: Term,
    /// The last frame (the cursor is on the line below it).
    drawn: Vec<String>,
}

impl Screen {
    fn new() -> Self {
        let term = Term::stderr();
        let _ = term.hide_cursor();
        Self {
            term,
            drawn: Vec::new(),
        }
    }

    /// (columns, rows)
    fn size(&self) -> (usize, usize) {
        let (rows, columns) = self.term.size();
        (usize::from(columns), usize::from(rows))
    }

    fn draw(&mut self, lines: Vec<String>) {
        if lines == self.drawn {
            return;
        }
        let mut out = String::new();
        if !self.drawn.is_empty() {
            let _ = write!(out, "\x1b[{}A", self.drawn.len());
        }
        for line in &lines {
            // Cleared before it is written, so a full-width line is never
            // followed by a clear that would take its last column.
            let _ = writeln!(out, "\r\x1b[2K{line}");
        }
        out.push_str("\x1b[J");
        let _ = self.term.write_str(&out);
        let _ = self.term.flush();
        self.drawn = lines;
    }
}

impl Drop for Screen {
    /// However the view ends (done, stopped, an error), the cursor is back.
    fn drop(&mut self) {
        let _ = self.term.show_cursor();
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
