//! `orderflow audit`: the promise the fault tests check (money, stock and
//! notices agree with how each order ended), checked on a live system, and
//! PostgreSQL compared with Temporal. Reads the orders in pages, so memory
//! stays flat however many there are; exit 9 when it found problems.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Duration;

use anyhow::Context as _;
use chrono::{DateTime, Utc};
use futures::StreamExt as _;
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;
use sqlx::{PgPool, Row};

use super::Context;
use crate::audit::{self, Check, Ledger, Problem};
use crate::cli::AuditArgs;
use crate::domain::OrderStatus;
use crate::exit::{Exit, Fail};
use crate::output::Printer;
use crate::temporal::client::{Execution, ListedOrder, OrderClient};
use crate::workflow::state::StepState;

/// Orders read, and looked up in Temporal, per round trip.
const PAGE: i64 = 1000;
/// Workflow IDs per visibility query (`WorkflowId IN (…)`).
const LOOKUP: usize = 200;
/// Stuck orders explained one by one (each costs a query to its worker);
/// the rest are listed with their status.
const EXPLAINED: usize = 100;

pub async fn run(cx: &Context, args: AuditArgs) -> anyhow::Result<Exit> {
    let pool = cx.pool().await?;
    let now = Utc::now();
    let since = match args.all {
        true => None,
        false => Some(
            chrono::Duration::from_std(args.since)
                .ok()
                .and_then(|d| now.checked_sub_signed(d))
                .ok_or_else(|| Fail::usage("--since is too long; use --all for every order"))?,
        ),
    };
    let stuck_after =
        chrono::Duration::from_std(args.stuck_after).context("--stuck-after is too long")?;
    let temporal = match args.database_only {
        true => None,
        false => Some(Temporal::connect(cx, now, stuck_after).await?),
    };
    let total: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM orders WHERE created_at >= COALESCE($1, '-infinity'::timestamptz)",
    )
    .bind(since)
    .fetch_one(&pool)
    .await
    .context("counting the orders to audit")?;
    let mut report = Report::new(&cx.printer, total as u64);

    // The orders PostgreSQL holds, oldest first, a page at a time.
    let mut after: Option<(DateTime<Utc>, String)> = None;
    let mut checked = Checked::default();
    loop {
        let page = page_after(&pool, since, after.as_ref()).await?;
        let Some(last) = page.last() else { break };
        after = Some(last.clone());
        let ids: Vec<&str> = page.iter().map(|(_, id)| id.as_str()).collect();
        let ledgers = audit::ledgers(&pool, &ids)
            .await
            .context("reading the orders' payments, reservations and notices")?;
        let workflows = match &temporal {
            Some(t) => t.lookup(&ids).await?,
            None => HashMap::new(),
        };
        for ledger in &ledgers {
            match &temporal {
                Some(t) => {
                    let found = t
                        .judge_row(&pool, ledger, workflows.get(&ledger.order_id))
                        .await?;
                    report.found(found)?;
                }
                None => report.found(ledger.problems())?,
            }
        }
        checked.orders += ledgers.len() as u64;
        report.advance(page.len() as u64);
    }

    let held = audit::stock_held(&pool)
        .await
        .context("reading the stock")?;
    checked.products = sqlx::query_scalar::<_, i64>("SELECT count(*) FROM products")
        .fetch_one(&pool)
        .await? as u64;
    report.found(held)?;

    if let Some(t) = &temporal {
        checked.workflows = t.rowless(&pool, since, &mut report).await?;
    }
    report.finish(AuditScope {
        since,
        stuck_after: humantime::format_duration(args.stuck_after).to_string(),
        temporal: temporal.is_some(),
        checked,
    })
}

/// The next page of orders in scope after `after`, as (created, ID).
async fn page_after(
    pool: &PgPool,
    since: Option<DateTime<Utc>>,
    after: Option<&(DateTime<Utc>, String)>,
) -> anyhow::Result<Vec<(DateTime<Utc>, String)>> {
    let rows = match after {
        None => {
            sqlx::query(
                "SELECT created_at, order_id FROM orders
                  WHERE created_at >= COALESCE($1, '-infinity'::timestamptz)
                  ORDER BY created_at, order_id LIMIT $2",
            )
            .bind(since)
            .bind(PAGE)
            .fetch_all(pool)
            .await
        }
        Some((at, id)) => {
            sqlx::query(
                "SELECT created_at, order_id FROM orders
                  WHERE (created_at, order_id) > ($1, $2)
                  ORDER BY created_at, order_id LIMIT $3",
            )
            .bind(at)
            .bind(id)
            .bind(PAGE)
            .fetch_all(pool)
            .await
        }
    }
    .context("reading the orders to audit")?;
    Ok(rows
        .iter()
        .map(|r| (r.get("created_at"), r.get("order_id")))
        .collect())
}

/// What was looked at.
#[derive(Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
struct Checked {
    orders: u64,
    workflows: u64,
    products: u64,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct AuditScope {
    /// Orders created since (`null`: every order).
    since: Option<DateTime<Utc>>,
    stuck_after: String,
    /// Whether Temporal was compared (`false` with `--database-only`).
    temporal: bool,
    checked: Checked,
}

/// The JSON document (`-o json`), or the last line of `-o jsonl`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Summary<'a> {
    #[serde(flatten)]
    scope: &'a AuditScope,
    /// Problems per check, every check named (0 when it found none).
    counts: BTreeMap<&'static str, u64>,
    clean: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    problems: Option<&'a [Problem]>,
}

/// Where the problems go as they are found: printed at once (text, JSON
/// Lines), or kept for the one JSON document; and the progress bar.
struct Report<'p> {
    printer: &'p Printer,
    bar: Option<ProgressBar>,
    counts: BTreeMap<Check, u64>,
    kept: Vec<Problem>,
}

impl<'p> Report<'p> {
    fn new(printer: &'p Printer, orders: u64) -> Self {
        let bar = printer.progress_enabled().then(|| {
            let bar = ProgressBar::new(orders);
            bar.set_style(
                ProgressStyle::with_template(
                    "auditing [{bar:30}] {pos}/{len} orders {elapsed} · {msg}",
                )
                .expect("static template"),
            );
            bar.set_message("0 problems");
            bar
        });
        Self {
            printer,
            bar,
            counts: BTreeMap::new(),
            kept: Vec::new(),
        }
    }

    fn found(&mut self, problems: impl IntoIterator<Item = Problem>) -> anyhow::Result<()> {
        for problem in problems {
            *self.counts.entry(problem.check).or_default() += 1;
            if self.printer.is_json_lines() {
                #[derive(Serialize)]
                struct Line<'a> {
                    r#type: &'static str,
                    #[serde(flatten)]
                    problem: &'a Problem,
                }
                self.say(|p| {
                    p.json_line(&Line {
                        r#type: "problem",
                        problem: &problem,
                    })
                })?;
            } else if self.printer.is_json() {
                self.kept.push(problem);
            } else {
                let line = format!(
                    "{}  {}  {}",
                    crate::domain::escape(problem.subject()),
                    problem.check.name(),
                    crate::domain::escape(&problem.detail)
                );
                self.say(|p| p.line(&line))?;
            }
            if let Some(bar) = &self.bar {
                bar.set_message(format!("{} problem(s)", self.total()));
            }
        }
        Ok(())
    }

    fn say(&self, print: impl FnOnce(&Printer) -> std::io::Result<()>) -> std::io::Result<()> {
        match &self.bar {
            Some(bar) => bar.suspend(|| print(self.printer)),
            None => print(self.printer),
        }
    }

    fn advance(&self, orders: u64) {
        if let Some(bar) = &self.bar {
            bar.inc(orders);
        }
    }

    fn total(&self) -> u64 {
        self.counts.values().sum()
    }

    fn finish(self, scope: AuditScope) -> anyhow::Result<Exit> {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
        let counts: BTreeMap<&'static str, u64> = Check::ALL
            .iter()
            .filter(|c| scope.temporal || !c.needs_temporal())
            .map(|c| (c.name(), self.counts.get(c).copied().unwrap_or(0)))
            .collect();
        let total = self.total();
        let summary = Summary {
            scope: &scope,
            counts,
            clean: total == 0,
            problems: (self.printer.is_json() && !self.printer.is_json_lines())
                .then_some(self.kept.as_slice()),
        };
        if self.printer.is_json_lines() {
            #[derive(Serialize)]
            struct Line<'a> {
                r#type: &'static str,
                #[serde(flatten)]
                summary: &'a Summary<'a>,
            }
            self.printer.json_line(&Line {
                r#type: "summary",
                summary: &summary,
            })?;
        } else if self.printer.is_json() {
            self.printer.json(&summary)?;
        } else {
            self.print_summary(&summary)?;
        }
        Ok(if total == 0 {
            Exit::Success
        } else {
            Exit::ProblemsFound
        })
    }

    fn print_summary(&self, summary: &Summary<'_>) -> anyhow::Result<()> {
        let scope = summary.scope;
        let p = self.printer;
        if summary.problems.is_none() && !summary.clean {
            p.line("")?;
        }
        let mut table = p.table();
        table.set_header(["CHECK", "PROBLEMS", "WHAT IT CHECKS"]);
        for check in Check::ALL {
            if let Some(count) = summary.counts.get(check.name()) {
                table.add_row([check.name(), &count.to_string(), check.meaning()]);
            }
        }
        p.line(&*table)?;
        let since = match scope.since {
            Some(at) => format!("created since {}", at.format("%Y-%m-%d %H:%M:%S UTC")),
            None => "all of them".to_owned(),
        };
        let mut checked = format!("{} orders ({since})", scope.checked.orders);
        if scope.temporal {
            checked.push_str(&format!(", {} workflows", scope.checked.workflows));
        } else {
            checked.push_str(", Temporal not compared (--database-only)");
        }
        checked.push_str(&format!(", {} products", scope.checked.products));
        let total = self.total();
        p.line(if total == 0 {
            format!("clean: checked {checked}")
        } else {
            format!("{total} problem(s); checked {checked}")
        })?;
        Ok(())
    }
}

impl Check {
    fn needs_temporal(self) -> bool {
        matches!(
            self,
            Check::NoWorkflow | Check::NoRow | Check::Disagree | Check::Stuck
        )
    }

    /// The summary's words for what the check looks at.
    fn meaning(self) -> &'static str {
        match self {
            Check::Money => "one capture of the total if COMPLETED, none left if not",
            Check::Stock => "stock held by COMPLETED orders, none by ended ones",
            Check::Notice => "one notice per ended order, one story",
            Check::NoWorkflow => "every order row has its workflow",
            Check::NoRow => "every workflow that ended as an order has a row",
            Check::Disagree => "PostgreSQL and Temporal end each order alike",
            Check::Stuck => "orders end within --stuck-after",
        }
    }
}

/// The Temporal side of the audit.
struct Temporal {
    client: OrderClient,
    namespace: String,
    task_queue: String,
    now: DateTime<Utc>,
    stuck_after: chrono::Duration,
    /// A closed workflow older than this is gone by design.
    retention: Option<chrono::Duration>,
    /// Whether any worker polls the orders' task queue.
    polled: bool,
    /// Stuck orders explained so far (at most [`EXPLAINED`]).
    explained: std::cell::Cell<usize>,
}

impl Temporal {
    async fn connect(
        cx: &Context,
        now: DateTime<Utc>,
        stuck_after: chrono::Duration,
    ) -> anyhow::Result<Self> {
        let config = cx.temporal()?;
        let client = OrderClient::connect(&config).await?;
        let retention = client
            .retention()
            .await?
            .and_then(|r| chrono::Duration::from_std(r).ok());
        let polled = !client.pollers(&config.task_queue).await?.is_empty();
        Ok(Self {
            namespace: client.namespace().to_owned(),
            client,
            task_queue: config.task_queue.clone(),
            now,
            stuck_after,
            retention,
            polled,
            explained: std::cell::Cell::new(0),
        })
    }

    /// The workflows of `ids` that visibility knows, by ID.
    async fn lookup(&self, ids: &[&str]) -> anyhow::Result<HashMap<String, ListedOrder>> {
        let mut found = HashMap::with_capacity(ids.len());
        for chunk in ids.chunks(LOOKUP) {
            // Order IDs are [A-Za-z0-9_.-] (the table's check): nothing to escape.
            let list = chunk
                .iter()
                .map(|id| format!("'{id}'"))
                .collect::<Vec<_>>()
                .join(", ");
            let query = format!("WorkflowId IN ({list})");
            let mut scan = std::pin::pin!(self.client.scan(&query, None));
            while let Some(listed) = scan.next().await {
                let listed = listed.context("looking the orders up in Temporal")?;
                found.insert(listed.order_id.clone(), listed);
            }
        }
        Ok(found)
    }

    /// A row judged: its ledger's problems, unless its workflow still runs: an ended row
    /// may be finishing its ending then (a refund retrying through a
    /// gateway outage), and is judged once the workflow closes, or told as
    /// stuck after `--stuck-after`.
    async fn judge_row(
        &self,
        pool: &PgPool,
        ledger: &Ledger,
        workflow: Option<&ListedOrder>,
    ) -> anyhow::Result<Vec<Problem>> {
        let execution = self.execution(ledger, workflow).await?;
        let mut found = match execution {
            Some(Execution::Running) => Vec::new(),
            _ => ledger.problems(),
        };
        found.extend(self.compare_row(pool, ledger, workflow, execution).await?);
        Ok(found)
    }

    /// How the row's workflow stands: from visibility, or asked directly
    /// when visibility does not list it (it lags); `None` when there is
    /// none, or it ended longer ago than the namespace keeps closed
    /// workflows (not asked: an old database would cost a call per order).
    async fn execution(
        &self,
        ledger: &Ledger,
        workflow: Option<&ListedOrder>,
    ) -> anyhow::Result<Option<Execution>> {
        Ok(match workflow {
            Some(w) => Some(w.execution),
            None if self.expired(ledger) => None,
            None => self.client.describe(&ledger.order_id.as_str()).await?,
        })
    }

    fn expired(&self, ledger: &Ledger) -> bool {
        self.retention
            .is_some_and(|r| ledger.is_terminal() && self.now - ledger.updated_at > r)
    }

    /// A row compared with its workflow.
    async fn compare_row(
        &self,
        pool: &PgPool,
        ledger: &Ledger,
        workflow: Option<&ListedOrder>,
        execution: Option<Execution>,
    ) -> anyhow::Result<Option<Problem>> {
        let id = ledger.order_id.as_str();
        let status = ledger.status.as_str();
        let old = |at: DateTime<Utc>| self.now - at > self.stuck_after;
        let expired = self.expired(ledger);
        let Some(execution) = execution else {
            return Ok((!expired).then(|| {
                Problem::order(
                    Check::NoWorkflow,
                    id,
                    Some(status),
                    format!(
                        "recorded as {status}, but namespace {} has no workflow {id}",
                        self.namespace
                    ),
                )
            }));
        };
        Ok(match execution {
            Execution::Running if ledger.is_terminal() => old(ledger.updated_at).then(|| {
                Problem::order(
                    Check::Stuck,
                    id,
                    Some(status),
                    format!(
                        "recorded as {status} {} ago, but its workflow still runs",
                        ago(self.now - ledger.updated_at)
                    ),
                )
            }),
            Execution::Running => match old(ledger.created_at) {
                true => Some(self.stuck(id, Some(status), ledger.created_at).await),
                false => None,
            },
            Execution::Closed => {
                let ended = match workflow {
                    Some(w) if w.indexed && OrderStatus::is_terminal_text(&w.status) => {
                        w.status.clone()
                    }
                    _ => self.outcome(id).await?.0,
                };
                match audit::compare_endings(id, status, &ended) {
                    // The row was read before the workflow was looked up:
                    // an order that ended in between is read again.
                    Some(_) => {
                        let now: Option<String> =
                            sqlx::query_scalar("SELECT status FROM orders WHERE order_id = $1")
                                .bind(id)
                                .fetch_optional(pool)
                                .await?;
                        audit::compare_endings(id, now.as_deref().unwrap_or(status), &ended)
                    }
                    None => None,
                }
            }
            Execution::Ended(how) => (!ledger.is_terminal()).then(|| {
                Problem::order(
                    Check::Disagree,
                    id,
                    Some(status),
                    format!(
                        "its workflow was {how} outside orderflow, and the database still says \
                         {status}: what it holds (stock, a capture) is not given back"
                    ),
                )
            }),
        })
    }

    /// How an order's workflow ended, from its result: its status and
    /// failure code.
    async fn outcome(&self, id: &str) -> anyhow::Result<(String, Option<String>)> {
        let view = self
            .client
            .outcome(&id)
            .await
            .with_context(|| format!("reading how order {id} ended"))?;
        Ok((
            view.status.as_str().to_owned(),
            view.failure.map(|f| f.code.as_str().to_owned()),
        ))
    }

    /// A stuck order, with why when it can be had.
    async fn stuck(&self, id: &str, status: Option<&str>, created: DateTime<Utc>) -> Problem {
        let age = ago(self.now - created);
        let shown = status.unwrap_or("PENDING");
        let why = if !self.polled {
            crate::commands::order::no_worker(&self.task_queue, &self.namespace)
        } else if self.explained.get() >= EXPLAINED {
            format!("not explained: more than {EXPLAINED} orders are stuck")
        } else {
            self.explained.set(self.explained.get() + 1);
            self.why(id).await
        };
        Problem::order(
            Check::Stuck,
            id,
            status,
            format!("{shown}, not ended {age} after it was created: {why}"),
        )
    }

    /// Why a running order has not ended, from its worker or its history.
    async fn why(&self, id: &str) -> String {
        let view = match self.client.fetch(&id).await {
            Ok((view, _)) => view,
            Err(e) => return format!("unreadable: {}", crate::errors::text(&e)),
        };
        if let Some(failure) = &view.workflow_task_failure {
            return format!("its workflow task fails: {failure}");
        }
        if let Some(error) = &view.ending_error {
            return format!("its ending waits for the database: {error}");
        }
        let Some(step) = view.step else {
            return "no step has started".to_owned();
        };
        let s = view.step_view(step);
        let error = s.last_error.as_deref().unwrap_or("no error recorded");
        match s.state {
            StepState::Waiting => format!("{step} waits for the database: {error}"),
            StepState::Retrying => {
                format!("{step} failed attempt {}, retrying: {error}", s.attempts)
            }
            _ if s.attempts > 1 => format!("{step} runs attempt {}: {error}", s.attempts),
            _ => format!("at {step}, attempt {}", s.attempts.max(1)),
        }
    }

    /// The workflows in scope that have no row: a problem when they ended
    /// as anything but an order refused before its row (INVALID_ORDER),
    /// or when they run past `--stuck-after`. Returns how many it read.
    async fn rowless(
        &self,
        pool: &PgPool,
        since: Option<DateTime<Utc>>,
        report: &mut Report<'_>,
    ) -> anyhow::Result<u64> {
        let from = since.unwrap_or(DateTime::UNIX_EPOCH);
        let query = format!(
            "TaskQueue = '{}' AND StartTime >= '{}'",
            self.task_queue.replace('\\', "\\\\").replace('\'', "\\'"),
            from.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        );
        let mut scan = std::pin::pin!(self.client.scan(&query, None).chunks(PAGE as usize));
        let mut read = 0u64;
        while let Some(chunk) = scan.next().await {
            let listed = chunk
                .into_iter()
                .collect::<anyhow::Result<Vec<_>>>()
                .context("listing the orders' workflows")?;
            read += listed.len() as u64;
            let ids: Vec<&str> = listed.iter().map(|w| w.order_id.as_str()).collect();
            let rows: HashSet<String> =
                sqlx::query_scalar("SELECT order_id FROM orders WHERE order_id = ANY($1)")
                    .bind(&ids)
                    .fetch_all(pool)
                    .await
                    .context("reading which workflows have a row")?
                    .into_iter()
                    .collect();
            for w in listed.iter().filter(|w| !rows.contains(&w.order_id)) {
                let id = w.order_id.as_str();
                let problem = match w.execution {
                    Execution::Running => match w.started_at {
                        Some(at) if self.now - at > self.stuck_after => {
                            Some(self.stuck(id, None, at).await)
                        }
                        _ => None,
                    },
                    Execution::Closed => {
                        let (ended, code) = self.outcome(id).await?;
                        let refused = code.as_deref() == Some("INVALID_ORDER");
                        // A row may have come since the list was read.
                        let recorded: bool = sqlx::query_scalar(
                            "SELECT EXISTS (SELECT 1 FROM orders WHERE order_id = $1)",
                        )
                        .bind(id)
                        .fetch_one(pool)
                        .await?;
                        (!refused && !recorded).then(|| {
                            Problem::order(
                                Check::NoRow,
                                id,
                                None,
                                format!(
                                    "its workflow ended {ended}, but the database has no row for it"
                                ),
                            )
                        })
                    }
                    // Ended from outside before it recorded anything: no effects.
                    Execution::Ended(_) => None,
                };
                report.found(problem)?;
            }
        }
        Ok(read)
    }
}

/// `3m`, `2h05m`: how long ago, for a problem's words.
fn ago(elapsed: chrono::Duration) -> String {
    let secs = elapsed.num_seconds().max(0) as u64;
    humantime::format_duration(Duration::from_secs(secs)).to_string()
}
