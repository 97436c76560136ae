//! `orderflow bench`: orders per second, latency and memory of the real
//! workflow on the path users run — `orderflow worker` in its own
//! process(es), orders started by a client without eager start — each
//! measured side by side with the no-op baseline of the same shape on the
//! same server, so every figure comes with its ceiling. The in-process
//! figure (worker and client in one process, eager start) follows as a
//! secondary row, and a hot-product run shows what contention on one
//! product's stock costs.

mod api;
mod cost;
mod driver;
mod tables;
mod workers;

use anyhow::Context as _;
use comfy_table::{Cell, CellAlignment};
use serde::Serialize;

use super::Context;
use crate::cli::{BenchArgs, RateSpec};
use crate::db::pool::Connections;
use crate::exit::{Exit, Fail};
use crate::stack::local::StackOptions;
use crate::temporal::client::OrderClient;
use crate::worker::{self, WorkerSettings};
use cost::{Capacity, Cost, Meters, Spent, Split};
use driver::{Batch, Driver, Kind, Paced, Products, Run, SPREAD};
use workers::Workers;

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Report {
    machine: String,
    server: String,
    /// Every payload encrypted (`--encrypt`).
    encrypted: bool,
    /// Worker processes of the real path.
    workers: u32,
    metrics: bool,
    rounds: u32,
    /// The real path: baseline, then orderflow.
    throughput: Vec<Run>,
    throughput_ratio: f64,
    /// Per order, over the real path's throughput rounds: baseline, then
    /// orderflow.
    cost: Vec<Cost>,
    /// Orders a second per unit, from orderflow's cost.
    capacity: Capacity,
    /// With `--rate`: open-loop runs on the real path.
    rates: Vec<Paced>,
    in_process: InProcess,
    /// Absent with `--hot 0`.
    hot_product: Option<HotProduct>,
    /// Single-order latency on the real path.
    single: Vec<Run>,
    /// Where a single order's time goes: baseline, then orderflow.
    single_split: Vec<Split>,
    in_flight: u32,
    in_flight_seconds: f64,
    /// The largest peak memory of a worker process.
    peak_rss_mib: f64,
    /// With `--big-tables N`.
    big_tables: Option<tables::BigTables>,
    /// Absent with `--api-orders 0`.
    api: Option<api::ApiReport>,
}

/// Worker and client in one process, with or without eager start.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct InProcess {
    eager_start: bool,
    throughput: Vec<Run>,
    throughput_ratio: f64,
}

/// Many orders for one product with too little stock for all of them.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct HotProduct {
    stock: u32,
    completed: u32,
    run: Run,
    /// Its throughput over the real path's spread-product throughput.
    ratio_to_spread: f64,
}

pub async fn run(cx: &Context, args: BenchArgs) -> anyhow::Result<Exit> {
    cx.printer.note("orderflow bench: starting the stack…");
    let stack = cx
        .local_stack(&StackOptions {
            role: "bench",
            encrypt: args.encrypt,
            ..StackOptions::default()
        })
        .await?;
    if args.big_tables > 0 && !stack.info.started.contains(&"postgres") {
        stack.stop().await;
        return Err(Fail::usage(
            "--big-tables writes fake orders with the database's triggers off, so it runs only \
             on a PostgreSQL that bench starts itself: unset DATABASE_URL and --database-url",
        )
        .into());
    }
    let run_id = uuid::Uuid::now_v7().simple().to_string()[..12].to_owned();
    let hot = format!("BENCH-HOT-{run_id}");
    let stock = args.hot / 2;
    add_products(&stack.pool, &hot, stock).await?;
    let client = OrderClient::connect(&stack.temporal).await?;
    let server = if stack.info.started.contains(&"temporal") {
        "Temporal dev server (in memory), started by bench".to_owned()
    } else {
        format!("Temporal at {}", stack.info.temporal_address)
    };
    let queue = format!("{}-bench-{run_id}", stack.temporal.task_queue);

    let workers = Workers::start(&stack, &client, &queue, args.workers, args.metrics).await;
    let real = match workers {
        Ok(workers) => {
            let driver = Driver {
                client: &client,
                task_queue: &queue,
                run_id: &run_id,
                eager: false,
            };
            let meters = Meters::new(
                &stack.pool,
                workers.pids(),
                stack.postgres_pid(),
                stack.temporal_pid(),
            )
            .await;
            let real = real_path(cx, &driver, &args, &hot, &meters).await;
            let rss = workers.peak_rss_mib();
            workers.stop();
            real.and_then(|real| Ok((real, rss.context("reading the workers' peak memory")?)))
        }
        Err(e) => Err(e),
    };
    let api = match (&real, args.api_orders) {
        (Ok(_), n) if n > 0 => Some(
            api::measure(
                &stack,
                &client,
                &run_id,
                api::Plan {
                    orders: n,
                    rounds: args.rounds,
                    concurrency: args.concurrency,
                    streams: args.streams,
                },
                |text| cx.printer.note(text),
            )
            .await,
        ),
        _ => None,
    };
    let in_process = match (&real, &api) {
        (Ok(_), None | Some(Ok(_))) => in_process(cx, &client, &stack, &args, &run_id).await,
        _ => Ok(None),
    };
    let big_tables = match (&in_process, args.big_tables) {
        (Ok(Some(_)), n) if n > 0 => {
            cx.printer.note(format!(
                "big tables: {n} orders in the database, then each reading command {} times…",
                tables::RUNS
            ));
            let finished = format!("BENCH-{run_id}-one-o-0");
            Some(tables::measure(&stack, n, &run_id, &finished).await)
        }
        _ => None,
    };
    stack.stop().await;
    let big_tables = big_tables.transpose()?;
    let (real, peak_rss_mib) = real?;
    let api = api.transpose()?;
    let in_process = in_process?.context("the in-process run did not run")?;
    let RealPath {
        throughput,
        split,
        cost,
        rates,
        hot: hot_run,
        single,
        in_flight,
    } = real;
    let spread = throughput[1].orders_per_second;
    let report = Report {
        machine: machine(),
        server,
        encrypted: args.encrypt,
        workers: args.workers,
        metrics: args.metrics,
        rounds: args.rounds,
        throughput_ratio: spread / throughput[0].orders_per_second,
        throughput,
        capacity: Capacity::of(&cost[1]),
        cost,
        rates,
        in_process,
        hot_product: hot_run.map(|hot| HotProduct {
            stock,
            completed: hot.completed,
            ratio_to_spread: hot.run.orders_per_second / spread,
            run: hot.run,
        }),
        single,
        single_split: split,
        in_flight: args.in_flight,
        in_flight_seconds: in_flight,
        peak_rss_mib,
        big_tables,
        api,
    };
    print(cx, &report)?;
    if let Some(hot) = &report.hot_product
        && hot.completed != stock
    {
        return Err(Fail::new(
            Exit::Failure,
            format!(
                "the hot product sold {} with a stock of {stock}: an oversell or an undersell",
                hot.completed
            ),
        )
        .into());
    }
    Ok(Exit::Success)
}

/// The spread products, with stock to spare, and the hot one with `stock`.
async fn add_products(pool: &sqlx::PgPool, hot: &str, stock: u32) -> anyhow::Result<()> {
    sqlx::query(
        "INSERT INTO products (product_id, name, unit_price, stock)
         SELECT 'BENCH-' || i, 'Benchmark item', 1.00, 2000000000 FROM generate_series(0, $1 - 1) AS i
         UNION ALL SELECT $2, 'Benchmark hot item', 1.00, $3
         ON CONFLICT (product_id) DO UPDATE SET unit_price = 1.00, stock = EXCLUDED.stock",
    )
    .bind(SPREAD as i32)
    .bind(hot)
    .bind(stock as i32)
    .execute(pool)
    .await
    .context("adding the benchmark products")?;
    Ok(())
}

struct Measured {
    completed: u32,
    run: Run,
}

struct RealPath {
    throughput: Vec<Run>,
    split: Vec<Split>,
    cost: Vec<Cost>,
    rates: Vec<Paced>,
    hot: Option<Measured>,
    single: Vec<Run>,
    in_flight: f64,
}

async fn real_path(
    cx: &Context,
    driver: &Driver<'_>,
    args: &BenchArgs,
    hot: &str,
    meters: &Meters,
) -> anyhow::Result<RealPath> {
    let note = |text: String| cx.printer.note(text);
    note(format!(
        "real path: {} worker process(es), orders started by a client",
        args.workers
    ));
    let (throughput, spent) = throughput(cx, driver, args, "real path", "rp", Some(meters)).await?;
    note(format!(
        "real path: reading {} histories of each kind for their cost…",
        cost::SAMPLE
    ));
    let mut cost = Vec::new();
    for ((kind, phase), spent) in [(Kind::Baseline, "tp-b"), (Kind::Orderflow, "tp-o")]
        .into_iter()
        .zip(&spent)
    {
        let last = args.rounds - 1;
        let per_round = (args.orders / args.rounds).max(1);
        let ids: Vec<String> = (0..cost::SAMPLE.min(per_round))
            .map(|i| format!("BENCH-{}-rp-{phase}{last}-{i}", driver.run_id))
            .collect();
        cost.push(Cost::new(kind, spent, driver.client, &ids).await?);
    }
    let max = throughput[1].orders_per_second;
    let mut rates = Vec::new();
    for (n, spec) in args.rate.iter().enumerate() {
        let per_second = match *spec {
            RateSpec::PerSecond(r) => r,
            RateSpec::PercentOfMax(p) => max * p / 100.0,
        };
        // A share of a throughput run too short to measure a rate.
        if !(per_second.is_finite() && per_second > 0.0) {
            anyhow::bail!(
                "--rate: the throughput run measured no orders/s to take a share of; give \
                 the rate in orders a second (e.g. 40/s) or raise --orders"
            );
        }
        let orders = (per_second * args.rate_duration.as_secs_f64())
            .round()
            .max(1.0) as u32;
        note(format!(
            "real path: {orders} orders at {per_second:.1}/s, open loop…"
        ));
        rates.push(
            driver
                .paced(Kind::Orderflow, &format!("rate{n}"), per_second, orders)
                .await?,
        );
    }
    let hot = if args.hot == 0 {
        None
    } else {
        note(format!(
            "real path: {} orders for one product with a stock of {}…",
            args.hot,
            args.hot / 2
        ));
        let batch = driver
            .batch(
                Kind::Orderflow,
                Products::Hot(hot),
                "hot",
                args.hot,
                args.concurrency,
            )
            .await?;
        Some(batch)
    };
    let mut single = Vec::new();
    let mut split = Vec::new();
    for (kind, phase) in [(Kind::Baseline, "one-b"), (Kind::Orderflow, "one-o")] {
        note(format!(
            "real path: single-order latency, {} × {kind:?}, one at a time…",
            args.single
        ));
        let batch = driver
            .batch(kind, Products::Spread, phase, args.single, 1)
            .await?;
        split.push(Split::new(kind, driver.client, &batch.stamps).await?);
        single.push(Run::new(kind, 1, batch));
    }
    note(format!(
        "real path: {} orders in flight at once, for the workers' memory…",
        args.in_flight
    ));
    let in_flight = driver
        .batch(
            Kind::Orderflow,
            Products::Spread,
            "mem",
            args.in_flight,
            args.in_flight,
        )
        .await?;
    let hot = hot.map(|batch| Measured {
        completed: batch.completed,
        run: Run::new(Kind::Orderflow, args.concurrency, batch),
    });
    Ok(RealPath {
        throughput,
        split,
        cost,
        rates,
        hot,
        single,
        in_flight: in_flight.seconds,
    })
}

/// The in-process figure: a worker in this process, eager start unless
/// `--no-eager`.
async fn in_process(
    cx: &Context,
    client: &OrderClient,
    stack: &crate::stack::local::LocalStack,
    args: &BenchArgs,
    run_id: &str,
) -> anyhow::Result<Option<InProcess>> {
    let queue = format!("{}-bench-{run_id}-in-process", stack.temporal.task_queue);
    let mut settings = WorkerSettings::new(queue.clone());
    settings.with_baseline = true;
    if args.metrics {
        settings.metrics = std::sync::Arc::new(
            crate::workflow::metrics::Metrics::start().context("starting the metrics registry")?,
        );
    }
    let driver = Driver {
        client,
        task_queue: &queue,
        run_id,
        eager: !args.no_eager,
    };
    let label = if driver.eager {
        "in-process, eager start"
    } else {
        "in-process"
    };
    let (throughput, _) = worker::alongside(
        client.clone(),
        Connections::like(&stack.pool),
        settings,
        throughput(cx, &driver, args, label, "ip", None),
    )
    .await??;
    Ok(Some(InProcess {
        eager_start: driver.eager,
        throughput_ratio: throughput[1].orders_per_second / throughput[0].orders_per_second,
        throughput,
    }))
}

/// Baseline and orderflow, warmed up, then alternating over the rounds
/// and swapping places every round (B O, O B, B O, …), so that the
/// server's slow drift as its in-memory store fills does not favour
/// whichever always goes first.
async fn throughput(
    cx: &Context,
    driver: &Driver<'_>,
    args: &BenchArgs,
    label: &str,
    tag: &str,
    meters: Option<&Meters>,
) -> anyhow::Result<(Vec<Run>, [Spent; 2])> {
    let note = |text: String| cx.printer.note(text);
    note(format!("{label}: warming up…"));
    for (kind, phase) in [(Kind::Baseline, "warm-b"), (Kind::Orderflow, "warm-o")] {
        let phase = format!("{tag}-{phase}");
        driver.batch(kind, Products::Spread, &phase, 20, 10).await?;
    }
    let per_round = (args.orders / args.rounds).max(1);
    let mut totals: [Batch; 2] = Default::default();
    let mut spent: [Spent; 2] = Default::default();
    for round in 0..args.rounds {
        let mut order = [(0, Kind::Baseline, "tp-b"), (1, Kind::Orderflow, "tp-o")];
        if round % 2 == 1 {
            order.reverse();
        }
        for (slot, kind, phase) in order {
            note(format!(
                "{label}, round {}/{}: {per_round} × {kind:?} at concurrency {}…",
                round + 1,
                args.rounds,
                args.concurrency
            ));
            let before = match meters {
                Some(m) => Some(m.read().await?),
                None => None,
            };
            let batch = driver
                .batch(
                    kind,
                    Products::Spread,
                    &format!("{tag}-{phase}{round}"),
                    per_round,
                    args.concurrency,
                )
                .await?;
            if let (Some(m), Some(before)) = (meters, before) {
                spent[slot].add(before, m.read().await?, per_round);
            }
            totals[slot].add(batch);
        }
    }
    let [baseline, real] = totals;
    Ok((
        vec![
            Run::new(Kind::Baseline, args.concurrency, baseline),
            Run::new(Kind::Orderflow, args.concurrency, real),
        ],
        spent,
    ))
}

fn machine() -> String {
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let memory = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .map(|v| v.trim().to_owned())
        })
        .and_then(|v| v.trim_end_matches("kB").trim().parse::<f64>().ok())
        .map(|kib| format!("{:.0} GiB", kib / 1024.0 / 1024.0))
        .unwrap_or_else(|| "? GiB".into());
    format!("{cores} cores, {memory}")
}

fn print(cx: &Context, report: &Report) -> anyhow::Result<()> {
    let p = &cx.printer;
    if p.is_json() {
        p.json(report)?;
        return Ok(());
    }
    let mut table = p.table();
    table.set_header([
        "RUN",
        "WORKFLOW",
        "ORDERS",
        "CONCURRENCY",
        "ORDERS/S",
        "RANGE",
        "P50 MS",
        "P95 MS",
        "P99 MS",
    ]);
    let in_process = if report.in_process.eager_start {
        "in-process, eager start"
    } else {
        "in-process"
    };
    let rows = report
        .throughput
        .iter()
        .map(|r| ("real path", r))
        .chain(
            report
                .hot_product
                .iter()
                .map(|h| ("real path, one product", &h.run)),
        )
        .chain(report.in_process.throughput.iter().map(|r| (in_process, r)))
        .chain(report.single.iter().map(|r| ("single order, real path", r)));
    for (name, r) in rows {
        let num = |v: f64, places: usize| {
            Cell::new(format!("{v:.places$}")).set_alignment(CellAlignment::Right)
        };
        let [low, high] = r.orders_per_second_range;
        table.add_row(vec![
            Cell::new(name),
            Cell::new(match r.kind {
                Kind::Baseline => "baseline (no-op)",
                Kind::Orderflow => "orderflow",
            }),
            Cell::new(r.orders).set_alignment(CellAlignment::Right),
            Cell::new(r.concurrency).set_alignment(CellAlignment::Right),
            num(r.orders_per_second, 1),
            Cell::new(format!("{low:.1}–{high:.1}")).set_alignment(CellAlignment::Right),
            num(r.p50_ms, 1),
            num(r.p95_ms, 1),
            num(r.p99_ms, 1),
        ]);
    }
    let hot = match &report.hot_product {
        Some(h) => format!(
            "\none product: {} of {} orders completed on a stock of {}, the rest OUT_OF_STOCK; \
             {:.2} × the spread-product throughput",
            h.completed, h.run.orders, h.stock, h.ratio_to_spread
        ),
        None => String::new(),
    };
    p.line(format!(
        "orderflow bench — {}; {}; {} worker process(es); metrics {}; payloads {}; {} alternating round(s)\n\n{table}\n\
         real path: `orderflow worker` in its own process(es), orders started by a client without eager start\n\
         orders/s: the median over the rounds of each one's steady part, without its start and drain \
         (see --help); range: the slowest and fastest round; latencies: every order\n\n\
         throughput ratio orderflow / baseline: {:.2} on the real path; {:.2} {in_process}{hot}\n\
         peak RSS of a worker process with {} orders in flight: {:.0} MiB",
        report.machine,
        report.server,
        report.workers,
        if report.metrics { "on" } else { "off" },
        if report.encrypted {
            "encrypted"
        } else {
            "in clear"
        },
        report.rounds,
        report.throughput_ratio,
        report.in_process.throughput_ratio,
        report.in_flight,
        report.peak_rss_mib
    ))?;
    print_cost(cx, report)?;
    if let Some(api) = &report.api {
        let mut table = p.table();
        table.set_header([
            "ORDERS STARTED BY",
            "ORDERS",
            "CONCURRENCY",
            "ORDERS/S",
            "RANGE",
            "P50 MS",
            "P99 MS",
        ]);
        for s in &api.starts {
            let [low, high] = s.orders_per_second_range;
            table.add_row(vec![
                Cell::new(match s.via {
                    "client" => "the client's start call",
                    _ => "POST /api/orders (serve)",
                }),
                Cell::new(s.orders).set_alignment(CellAlignment::Right),
                Cell::new(s.concurrency).set_alignment(CellAlignment::Right),
                Cell::new(format!("{:.1}", s.orders_per_second))
                    .set_alignment(CellAlignment::Right),
                Cell::new(format!("{low:.1}–{high:.1}")).set_alignment(CellAlignment::Right),
                Cell::new(format!("{:.2}", s.p50_ms)).set_alignment(CellAlignment::Right),
                Cell::new(format!("{:.2}", s.p99_ms)).set_alignment(CellAlignment::Right),
            ]);
        }
        let streams = match &api.streams {
            Some(s) => format!(
                "\n{} events streams held {:.0} s by one serve process: RSS {:.0} MiB (idle {:.0} MiB), CPU {:.1} % of a core",
                s.count, s.held_seconds, s.rss_held_mib, s.rss_before_mib, s.cpu_percent
            ),
            None => String::new(),
        };
        p.line(format!(
            "\nthe API (orders started, not run: no worker polls their queue):\n{table}\n\
             accepted orders/s through the API / the client's: {:.2} (rounds {:.2}–{:.2})\n\
             one call at a time: p50 {:.2} ms start, {:.2} ms POST; the API's own cost {:.2} ms{streams}",
            api.ratio, api.ratio_range[0], api.ratio_range[1], api.sequential_p50_ms[0], api.sequential_p50_ms[1], api.own_cost_ms
        ))?;
    }
    if let Some(big) = &report.big_tables {
        let mut table = p.table();
        table.set_header(["COMMAND", "P50 MS", "MAX MS"]);
        for t in &big.commands {
            table.add_row(vec![
                Cell::new(&t.command),
                Cell::new(format!("{:.1}", t.p50_ms)).set_alignment(CellAlignment::Right),
                Cell::new(format!("{:.1}", t.max_ms)).set_alignment(CellAlignment::Right),
            ]);
        }
        p.line(format!(
            "\nwith {} orders in the database (filled in {:.1} s), each command {} times \
             (audit, which reads them all, {}), as a whole process:\n{table}",
            big.orders,
            big.fill_seconds,
            tables::RUNS,
            tables::AUDIT_RUNS
        ))?;
    }
    Ok(())
}

/// Per-order cost, the capacity model it gives, and the open-loop runs.
fn print_cost(cx: &Context, report: &Report) -> anyhow::Result<()> {
    let p = &cx.printer;
    let mut table = p.table();
    table.set_header(["PER ORDER", "BASELINE (NO-OP)", "ORDERFLOW"]);
    let [baseline, real] = [&report.cost[0], &report.cost[1]];
    let optional = |v: Option<f64>, places: usize| match v {
        Some(v) => format!("{:.places$}", v.max(0.0)),
        None => "—".to_owned(),
    };
    type Row = (&'static str, fn(&Cost) -> Option<f64>, usize);
    let rows: [Row; 12] = [
        (
            "Temporal actions (Cloud's count)",
            |c| Some(c.temporal_actions),
            1,
        ),
        ("history events", |c| Some(c.history_events), 1),
        ("workflow tasks", |c| Some(c.workflow_tasks), 2),
        ("history bytes", |c| Some(c.history_bytes), 0),
        ("payload bytes", |c| Some(c.payload_bytes), 0),
        ("PostgreSQL transactions", |c| Some(c.pg_transactions), 2),
        ("PostgreSQL statements", |c| c.pg_statements, 2),
        ("WAL bytes", |c| Some(c.wal_bytes), 0),
        ("worker CPU ms", |c| Some(c.worker_cpu_ms), 3),
        ("PostgreSQL CPU ms", |c| c.postgres_cpu_ms, 3),
        ("Temporal dev server CPU ms", |c| c.temporal_cpu_ms, 3),
        (
            "orders measured (histories read)",
            |c| Some(f64::from(c.orders)),
            0,
        ),
    ];
    for (name, value, places) in rows {
        table.add_row(vec![
            Cell::new(name),
            Cell::new(optional(value(baseline), places)).set_alignment(CellAlignment::Right),
            Cell::new(optional(value(real), places)).set_alignment(CellAlignment::Right),
        ]);
    }
    let c = &report.capacity;
    p.line(format!(
        "\nper-order cost on the real path (meters over the throughput rounds; Temporal figures \
         from {} histories of each kind's last round):\n{table}\n\
         capacity at this cost (orders/s): {:.0} per worker core; {} per PostgreSQL core; \
         {:.0} per Temporal Cloud namespace at its default {:.0} actions/s; {} per core of this \
         dev server (DOCS.md § Capacity)",
        real.histories,
        c.per_worker_core,
        optional(c.per_postgres_core, 0),
        c.per_cloud_namespace,
        cost::CLOUD_ACTIONS_PER_SECOND,
        optional(c.per_dev_server_core, 0),
    ))?;
    let mut table = p.table();
    table.set_header([
        "SINGLE ORDER, MEDIAN MS",
        "START CALL",
        "QUEUE",
        "TASK",
        "TO CLOSE",
        "RESULT",
        "TOTAL",
    ]);
    for s in &report.single_split {
        let num = |v: f64| Cell::new(format!("{v:.1}")).set_alignment(CellAlignment::Right);
        table.add_row(vec![
            Cell::new(match s.kind {
                Kind::Baseline => "baseline (no-op)",
                Kind::Orderflow => "orderflow",
            }),
            num(s.start_call_ms),
            num(s.queue_ms),
            num(s.task_ms),
            num(s.to_close_ms),
            num(s.result_ms),
            num(s.total_ms),
        ]);
    }
    p.line(format!(
        "\nwhere a single order's time goes (client clock and history, one machine): the start \
         call; the first workflow task waiting for a poll; that task on the worker; on to the \
         close; the close reaching the client's result long poll:\n{table}"
    ))?;
    if report.rates.is_empty() {
        return Ok(());
    }
    let mut table = p.table();
    table.set_header([
        "RATE/S",
        "% OF MAX",
        "ORDERS",
        "STARTED/S",
        "PEAK IN FLIGHT",
        "P50 MS",
        "P95 MS",
        "P99 MS",
        "MAX MS",
    ]);
    let max = report.throughput[1].orders_per_second;
    for r in &report.rates {
        let num = |v: f64, places: usize| {
            Cell::new(format!("{v:.places$}")).set_alignment(CellAlignment::Right)
        };
        table.add_row(vec![
            num(r.per_second, 1),
            num(r.per_second / max * 100.0, 0),
            num(f64::from(r.orders), 0),
            num(r.started_per_second, 1),
            num(f64::from(r.peak_in_flight), 0),
            num(r.p50_ms, 1),
            num(r.p95_ms, 1),
            num(r.p99_ms, 1),
            num(r.max_ms, 1),
        ]);
    }
    p.line(format!(
        "\nopen loop on the real path: orderflow orders started at a steady rate \
         (max: the throughput run's {max:.1} orders/s), start -> COMPLETED:\n{table}"
    ))?;
    Ok(())
}
