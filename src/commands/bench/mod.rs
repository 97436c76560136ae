//! `orderflow bench`: orders per second, latency and memory of the real
//! workflow, each measured side by side with the no-op baseline of the same
//! shape on the same server, so every figure comes with its ceiling.

use std::time::{Duration, Instant};

use anyhow::Context as _;
use comfy_table::{Cell, CellAlignment};
use futures::StreamExt as _;
use serde::Serialize;

use super::Context;
use crate::cli::BenchArgs;
use crate::db::pool::Connections;
use crate::domain::{
    Currency, CustomerId, Money, Order, OrderId, OrderLine, OrderStatus, PaymentMethod, ProductId,
    Quantity,
};
use crate::exit::{Exit, Fail};
use crate::workflow::client::OrderClient;
use crate::workflow::worker::{self, WorkerSettings};

const PRODUCT: &str = "BENCH-1";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
enum Kind {
    Baseline,
    Orderflow,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Run {
    kind: Kind,
    orders: u32,
    concurrency: u32,
    /// Wall time of the whole run.
    seconds: f64,
    /// The orders and time that `orders_per_second` counts: the steady
    /// part of the run (see [`Batch::steady`]).
    steady_orders: u32,
    steady_seconds: f64,
    orders_per_second: f64,
    p50_ms: f64,
    p95_ms: f64,
    p99_ms: f64,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Report {
    machine: String,
    server: String,
    eager_start: bool,
    metrics: bool,
    rounds: u32,
    throughput: Vec<Run>,
    throughput_ratio: f64,
    single: Vec<Run>,
    in_flight: u32,
    in_flight_seconds: f64,
    peak_rss_mib: f64,
}

pub async fn run(cx: &Context, args: BenchArgs) -> anyhow::Result<Exit> {
    cx.printer.note("orderflow bench: starting the stack…");
    let stack = cx.local_stack(None).await?;
    sqlx::query(
        "INSERT INTO products (product_id, name, unit_price, stock) VALUES ($1, 'Benchmark item', 1.00, 2000000000)
         ON CONFLICT (product_id) DO UPDATE SET unit_price = 1.00, stock = 2000000000",
    )
    .bind(PRODUCT)
    .execute(&stack.pool)
    .await
    .context("adding the benchmark product")?;
    let client = OrderClient::connect(&stack.temporal).await?;
    let mut settings = WorkerSettings::new(stack.temporal.task_queue.clone());
    settings.with_baseline = true;
    if args.metrics {
        settings.metrics = std::sync::Arc::new(
            crate::workflow::metrics::Metrics::start().context("starting the metrics registry")?,
        );
    }
    settings.max_concurrent_workflow_tasks = 500;
    settings.max_concurrent_activities = 500;
    let server = if stack.info.started.contains(&"temporal") {
        "Temporal dev server (in memory), started by bench".to_owned()
    } else {
        format!("Temporal at {}", stack.info.temporal_address)
    };

    let report = worker::alongside(
        client.clone(),
        Connections::like(&stack.pool),
        settings,
        async { measure(cx, &client, &stack.temporal.task_queue, &args, server).await },
    )
    .await;
    stack.stop().await;
    let report = report??;
    print(cx, &report)?;
    Ok(Exit::Success)
}

struct Driver<'a> {
    client: &'a OrderClient,
    task_queue: &'a str,
    run_id: String,
    eager: bool,
}

impl Driver<'_> {
    fn order(&self, phase: &str, i: u32) -> Order {
        let line = OrderLine {
            product_id: ProductId::parse(PRODUCT).expect("static ID"),
            quantity: Quantity::parse(1).expect("1 is a quantity"),
            unit_price: Money::parse("1.00").expect("static price"),
        };
        Order::new(
            OrderId::parse(&format!("BENCH-{}-{phase}-{i}", self.run_id))
                .expect("bench IDs are valid"),
            CustomerId::parse("BENCH").expect("static ID"),
            None,
            PaymentMethod::Card,
            line.unit_price,
            Currency::USD,
            vec![line],
        )
        .expect("a valid order")
    }

    /// One order start to finish; its latency and when it ended.
    async fn one(&self, kind: Kind, phase: &str, i: u32) -> anyhow::Result<(Duration, Instant)> {
        let order = self.order(phase, i);
        let started = Instant::now();
        match kind {
            Kind::Baseline => {
                self.client
                    .run_baseline(self.task_queue, &order, self.eager)
                    .await?
            }
            Kind::Orderflow => {
                let view = self
                    .client
                    .run_order(self.task_queue, &order, self.eager)
                    .await?;
                if view.status != OrderStatus::Completed {
                    anyhow::bail!("benchmark order {} ended {}", order.id(), view.status);
                }
            }
        }
        Ok((started.elapsed(), Instant::now()))
    }

    /// `orders` orders with at most `concurrency` in flight.
    async fn batch(
        &self,
        kind: Kind,
        phase: &str,
        orders: u32,
        concurrency: u32,
    ) -> anyhow::Result<Batch> {
        let started = Instant::now();
        let ended: Vec<(Duration, Instant)> = futures::stream::iter(0..orders)
            .map(|i| self.one(kind, phase, i))
            .buffer_unordered(concurrency as usize)
            .collect::<Vec<_>>()
            .await
            .into_iter()
            .collect::<anyhow::Result<_>>()?;
        let seconds = started.elapsed().as_secs_f64();
        let (latencies, mut done): (Vec<_>, Vec<_>) = ended.into_iter().unzip();
        done.sort();
        let offsets: Vec<f64> = done
            .iter()
            .map(|t| t.duration_since(started).as_secs_f64())
            .collect();
        let (steady_orders, steady_seconds) = Batch::steady(&offsets, concurrency, seconds);
        Ok(Batch {
            latencies,
            seconds,
            steady_orders,
            steady_seconds,
        })
    }

    async fn run(
        &self,
        kind: Kind,
        phase: &str,
        orders: u32,
        concurrency: u32,
    ) -> anyhow::Result<Run> {
        let batch = self.batch(kind, phase, orders, concurrency).await?;
        Ok(Run::new(kind, concurrency, batch))
    }
}

/// What one batch measured.
#[derive(Debug, Default)]
struct Batch {
    latencies: Vec<Duration>,
    seconds: f64,
    steady_orders: u32,
    steady_seconds: f64,
}

impl Batch {
    /// The steady part of a batch whose orders ended at `done` (seconds
    /// since it started, in order): from the `concurrency`-th end to the
    /// last end with `concurrency` orders still in flight. Before it, the
    /// first orders all start at once; after it, fewer than `concurrency`
    /// remain and the batch drains, which measures the latency of its last
    /// orders rather than throughput. Too short a batch to have one counts
    /// whole.
    fn steady(done: &[f64], concurrency: u32, seconds: f64) -> (u32, f64) {
        let (n, c) = (done.len(), concurrency as usize);
        if c == 0 || n <= 2 * c + 1 || done[n - c - 1] <= done[c - 1] {
            return (n as u32, seconds);
        }
        ((n - 2 * c) as u32, done[n - c - 1] - done[c - 1])
    }

    fn add(&mut self, other: Batch) {
        self.latencies.extend(other.latencies);
        self.seconds += other.seconds;
        self.steady_orders += other.steady_orders;
        self.steady_seconds += other.steady_seconds;
    }
}

impl Run {
    fn new(kind: Kind, concurrency: u32, batch: Batch) -> Self {
        let Batch {
            mut latencies,
            seconds,
            steady_orders,
            steady_seconds,
        } = batch;
        let orders = latencies.len() as u32;
        latencies.sort();
        let pct = |p: f64| {
            let index =
                ((latencies.len() as f64 * p).ceil() as usize).clamp(1, latencies.len()) - 1;
            latencies[index].as_secs_f64() * 1000.0
        };
        Run {
            kind,
            orders,
            concurrency,
            seconds,
            steady_orders,
            steady_seconds,
            orders_per_second: f64::from(steady_orders) / steady_seconds,
            p50_ms: pct(0.50),
            p95_ms: pct(0.95),
            p99_ms: pct(0.99),
        }
    }
}

async fn measure(
    cx: &Context,
    client: &OrderClient,
    task_queue: &str,
    args: &BenchArgs,
    server: String,
) -> anyhow::Result<Report> {
    let driver = Driver {
        client,
        task_queue,
        run_id: uuid::Uuid::now_v7().simple().to_string()[..12].to_owned(),
        eager: !args.no_eager,
    };
    let note = |text: String| cx.printer.note(text);
    note("warming up…".into());
    driver.run(Kind::Baseline, "warm-b", 20, 10).await?;
    driver.run(Kind::Orderflow, "warm-o", 20, 10).await?;

    // Throughput: baseline and orderflow alternate, and swap places every
    // round (B O, O B, B O, …), so that the server's slow drift as its
    // in-memory store fills does not favour whichever always goes first.
    let per_round = (args.orders / args.rounds).max(1);
    let mut totals: [Batch; 2] = Default::default();
    for round in 0..args.rounds {
        let mut order = [(0, Kind::Baseline, "tp-b"), (1, Kind::Orderflow, "tp-o")];
        if round % 2 == 1 {
            order.reverse();
        }
        for (slot, kind, phase) in order {
            note(format!(
                "throughput, round {}/{}: {per_round} × {kind:?} at concurrency {}…",
                round + 1,
                args.rounds,
                args.concurrency
            ));
            let batch = driver
                .batch(
                    kind,
                    &format!("{phase}{round}"),
                    per_round,
                    args.concurrency,
                )
                .await?;
            totals[slot].add(batch);
        }
    }
    let [baseline, real] = totals;
    let throughput = vec![
        Run::new(Kind::Baseline, args.concurrency, baseline),
        Run::new(Kind::Orderflow, args.concurrency, real),
    ];
    let mut single = Vec::new();
    for (kind, phase) in [(Kind::Baseline, "one-b"), (Kind::Orderflow, "one-o")] {
        note(format!(
            "single-order latency: {} × {kind:?}, one at a time…",
            args.single
        ));
        single.push(driver.run(kind, phase, args.single, 1).await?);
    }
    note(format!(
        "memory: {} orders in flight at once…",
        args.in_flight
    ));
    let in_flight = driver
        .run(Kind::Orderflow, "mem", args.in_flight, args.in_flight)
        .await?;
    let peak_rss_mib = peak_rss_mib().context("reading this process's peak memory")?;

    Ok(Report {
        machine: machine(),
        server,
        eager_start: driver.eager,
        metrics: args.metrics,
        rounds: args.rounds,
        throughput_ratio: throughput[1].orders_per_second / throughput[0].orders_per_second,
        throughput,
        single,
        in_flight: args.in_flight,
        in_flight_seconds: in_flight.seconds,
        peak_rss_mib,
    })
}

/// Peak resident memory of this process (worker and driver together).
fn peak_rss_mib() -> anyhow::Result<f64> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    let kib: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .ok_or_else(|| Fail::new(Exit::Failure, "no VmHWM in /proc/self/status"))?;
    Ok(kib / 1024.0)
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
        "P50 MS",
        "P95 MS",
        "P99 MS",
    ]);
    let rows = report
        .throughput
        .iter()
        .map(|r| ("throughput", r))
        .chain(report.single.iter().map(|r| ("single order", r)));
    for (name, r) in rows {
        let num = |v: f64, places: usize| {
            Cell::new(format!("{v:.places$}")).set_alignment(CellAlignment::Right)
        };
        table.add_row(vec![
            Cell::new(name),
            Cell::new(match r.kind {
                Kind::Baseline => "baseline (no-op)",
                Kind::Orderflow => "orderflow",
            }),
            Cell::new(r.orders).set_alignment(CellAlignment::Right),
            Cell::new(r.concurrency).set_alignment(CellAlignment::Right),
            num(r.orders_per_second, 1),
            num(r.p50_ms, 1),
            num(r.p95_ms, 1),
            num(r.p99_ms, 1),
        ]);
    }
    p.line(format!(
        "orderflow bench — {}; {}; eager start {}; metrics {}; {} alternating round(s)\n\n{table}\n\
         orders/s: the steady part of each run, without its start and drain (see --help); latencies: every order\n\n\
         throughput ratio orderflow / baseline: {:.2}\n\
         peak RSS (worker and driver, one process) with {} orders in flight: {:.0} MiB",
        report.machine,
        report.server,
        if report.eager_start { "on" } else { "off" },
        if report.metrics { "on" } else { "off" },
        report.rounds,
        report.throughput_ratio,
        report.in_flight,
        report.peak_rss_mib
    ))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::Batch;

    #[test]
    fn the_steady_part_leaves_out_the_start_and_the_drain() {
        // 10 orders, 2 in flight: ends 3rd..8th are steady (6 orders), timed
        // from the 2nd end to the 8th.
        let done = [0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0, 6.0, 9.0];
        assert_eq!(Batch::steady(&done, 2, 9.5), (6, 3.0));
    }

    #[test]
    fn a_batch_too_short_for_a_steady_part_counts_whole() {
        assert_eq!(Batch::steady(&[1.0, 2.0, 3.0], 1, 3.5), (3, 3.5));
        assert_eq!(Batch::steady(&[1.0, 2.0, 3.0, 4.0, 5.0], 2, 5.5), (5, 5.5));
        assert_eq!(Batch::steady(&[], 3, 0.0), (0, 0.0));
    }
}
