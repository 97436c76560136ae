//! The API's own cost, measured against the client it wraps: orders
//! started through `POST /api/orders` of an `orderflow serve` process, and
//! the same orders started by this process's client with the bare start
//! call, alternating rounds; then many events streams held open by that
//! one `serve` process, with its memory and CPU.
//!
//! The orders go to a task queue no worker polls: they stay `PENDING`, so
//! what is measured is starting them, not running them, and the backlog
//! does not slow the runs that follow.

use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use futures::StreamExt as _;
use serde::Serialize;

use super::driver::median;
use crate::domain::{
    Currency, CustomerId, Money, Order, OrderId, OrderLine, PaymentMethod, ProductId, Quantity,
};
use crate::stack::local::LocalStack;
use crate::stack::{Service, free_port, poll};
use crate::temporal::client::OrderClient;

/// What the API phase measured.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ApiReport {
    /// The bare start call, then `POST /api/orders`.
    pub starts: [Starts; 2],
    /// API orders/s over the client's, same run: the median over the
    /// rounds of each round's ratio.
    pub ratio: f64,
    /// The lowest and highest round's ratio.
    pub ratio_range: [f64; 2],
    /// One call at a time, alternating: p50 of a bare start, of a POST.
    pub sequential_p50_ms: [f64; 2],
    /// p50 of a POST minus p50 of a bare start, one call at a time, in ms.
    pub own_cost_ms: f64,
    /// Absent with `--streams 0`.
    pub streams: Option<Streams>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Starts {
    /// `client` or `api`.
    pub via: &'static str,
    pub orders: u32,
    pub concurrency: u32,
    /// The median over the rounds of each one's accepted orders per second.
    pub orders_per_second: f64,
    pub orders_per_second_range: [f64; 2],
    pub p50_ms: f64,
    pub p99_ms: f64,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Streams {
    pub count: u32,
    /// How long they were held once all were open.
    pub held_seconds: f64,
    /// The `serve` process's resident memory before they opened and while held.
    pub rss_before_mib: f64,
    pub rss_held_mib: f64,
    /// Its CPU while they were held, in % of one core.
    pub cpu_percent: f64,
}

/// Calls of each way, one at a time, for the API's own cost (at most
/// `--api-orders`).
const SEQUENTIAL: u32 = 200;

/// How long the streams are held open, once all are.
const HOLD: Duration = Duration::from_secs(10);

/// What the API run does.
pub struct Plan {
    /// Orders per round and way.
    pub orders: u32,
    pub rounds: u32,
    pub concurrency: u32,
    /// Events streams held at once.
    pub streams: u32,
}

/// Measures as `plan` says.
pub async fn measure(
    stack: &LocalStack,
    client: &OrderClient,
    run_id: &str,
    plan: Plan,
    note: impl Fn(String),
) -> anyhow::Result<ApiReport> {
    let Plan {
        orders,
        rounds,
        concurrency,
        streams,
    } = plan;
    let queue = format!("{}-bench-{run_id}-api-idle", stack.temporal.task_queue);
    let served = Served::start(stack, &queue).await?;
    let result = async {
        let http = reqwest::Client::new();
        let mut rates: [Vec<f64>; 2] = Default::default();
        let mut latencies: [Vec<Duration>; 2] = Default::default();
        for round in 0..rounds {
            let mut ways = [0, 1];
            if round % 2 == 1 {
                ways.reverse();
            }
            for way in ways {
                note(format!(
                    "api, round {}/{rounds}: {orders} orders started {} at concurrency {concurrency}…",
                    round + 1,
                    if way == 0 { "by the client" } else { "through POST /api/orders" }
                ));
                let started = Instant::now();
                let timed: Vec<Duration> = futures::stream::iter(0..orders)
                    .map(|i| start(client, &http, &served.base, &queue, way, order(run_id, way, round, i)))
                    .buffer_unordered(concurrency as usize)
                    .collect::<Vec<anyhow::Result<Duration>>>()
                    .await
                    .into_iter()
                    .collect::<anyhow::Result<_>>()?;
                rates[way].push(f64::from(orders) / started.elapsed().as_secs_f64());
                latencies[way].extend(timed);
            }
        }
        let mut ratios: Vec<f64> = rates[1].iter().zip(&rates[0]).map(|(api, client)| api / client).collect();
        ratios.sort_by(f64::total_cmp);
        let starts = [0, 1].map(|way| {
            starts(
                if way == 0 { "client" } else { "api" },
                orders * rounds,
                concurrency,
                std::mem::take(&mut rates[way]),
                std::mem::take(&mut latencies[way]),
            )
        });
        let one_at_a_time = orders.min(SEQUENTIAL);
        note(format!(
            "api: {one_at_a_time} orders each way, one call at a time, alternating…"
        ));
        let mut sequential: [Vec<Duration>; 2] = Default::default();
        for i in 0..one_at_a_time {
            for way in [0, 1] {
                let o = order(run_id, way, rounds, i);
                sequential[way].push(start(client, &http, &served.base, &queue, way, o).await?);
            }
        }
        let sequential_p50_ms = sequential.map(|mut l| {
            l.sort();
            l[l.len() / 2].as_secs_f64() * 1000.0
        });
        // Its idle connections would count against serve's bound.
        drop(http);
        let streams = match streams {
            0 => None,
            n => {
                note(format!("api: {n} events streams held open by one serve process…"));
                Some(hold(&served, run_id, n.min(orders * rounds), orders).await?)
            }
        };
        Ok(ApiReport {
            ratio: median(&ratios),
            ratio_range: [ratios[0], ratios[ratios.len() - 1]],
            own_cost_ms: sequential_p50_ms[1] - sequential_p50_ms[0],
            sequential_p50_ms,
            starts,
            streams,
        })
    }
    .await;
    if result.is_err() {
        note(format!(
            "the serve process's log ends:\n{}",
            served.service.log_tail()
        ));
    }
    served.service.stop();
    result
}

/// Starts `order` one `way` (0: the client's start call, 1: `POST
/// /api/orders` at `base`); how long it took.
async fn start(
    client: &OrderClient,
    http: &reqwest::Client,
    base: &str,
    queue: &str,
    way: usize,
    order: Order,
) -> anyhow::Result<Duration> {
    let at = Instant::now();
    if way == 0 {
        client.start(queue, &order, false).await?;
    } else {
        let answer = http
            .post(format!("{base}/api/orders"))
            .header("content-type", "application/json")
            .body(serde_json::to_vec(&order)?)
            .send()
            .await?;
        anyhow::ensure!(
            answer.status() == 202,
            "POST /api/orders answered {}: {}",
            answer.status(),
            answer.text().await.unwrap_or_default()
        );
    }
    Ok(at.elapsed())
}

/// The `i`th order of `way` (0: client, 1: API) in `round`.
fn order(run_id: &str, way: usize, round: u32, i: u32) -> Order {
    let line = OrderLine {
        product_id: ProductId::parse(&format!("BENCH-{}", i % super::driver::SPREAD))
            .expect("a product ID"),
        quantity: Quantity::parse(1).expect("1 is a quantity"),
        unit_price: Money::parse("1.00").expect("a price"),
    };
    Order::new(
        OrderId::parse(&format!("BENCH-{run_id}-api{way}-{round}-{i}")).expect("an order ID"),
        CustomerId::parse("BENCH").expect("a customer ID"),
        None,
        PaymentMethod::Card,
        line.unit_price,
        Currency::USD,
        vec![line],
    )
    .expect("a valid order")
}

fn starts(
    via: &'static str,
    orders: u32,
    concurrency: u32,
    mut rates: Vec<f64>,
    mut latencies: Vec<Duration>,
) -> Starts {
    rates.sort_by(f64::total_cmp);
    latencies.sort();
    let pct = |p: f64| {
        let index = ((latencies.len() as f64 * p).ceil() as usize).clamp(1, latencies.len()) - 1;
        latencies[index].as_secs_f64() * 1000.0
    };
    Starts {
        via,
        orders,
        concurrency,
        orders_per_second: median(&rates),
        orders_per_second_range: [rates[0], rates[rates.len() - 1]],
        p50_ms: pct(0.5),
        p99_ms: pct(0.99),
    }
}

/// Opens `count` events streams on the orders the API rounds started
/// (`per_round` a round; PENDING: no worker runs them), holds them, and
/// reads the serve process's memory and CPU: what held streams cost, each
/// waiting for its order's result and asking for its state in turn.
async fn hold(
    served: &Served,
    run_id: &str,
    count: u32,
    per_round: u32,
) -> anyhow::Result<Streams> {
    let pid = served.service.service_pid()?;
    let rss_before_mib = rss_mib(pid)?;
    // A client of their own: no idle connection of the rounds counts
    // against the server's connection bound.
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .context("an HTTP client")?;
    let open: Vec<reqwest::Response> = futures::stream::iter(0..count)
        .map(|i| {
            let url = format!(
                "{}/api/orders/{}/events",
                served.base,
                order(run_id, 1, i / per_round, i % per_round).id()
            );
            let http = &http;
            async move {
                let mut stream = http.get(&url).send().await?;
                anyhow::ensure!(stream.status() == 200, "{url} answered {}", stream.status());
                // Open once its first record (PENDING) has come.
                let first = stream.chunk().await?.unwrap_or_default();
                anyhow::ensure!(
                    String::from_utf8_lossy(&first).contains("PENDING"),
                    "{url}: the first event is not PENDING"
                );
                Ok(stream)
            }
        })
        .buffer_unordered(100)
        .collect::<Vec<anyhow::Result<_>>>()
        .await
        .into_iter()
        .collect::<anyhow::Result<_>>()?;
    let cpu_before = crate::stack::cpu_seconds(pid)?;
    let held = Instant::now();
    tokio::time::sleep(HOLD).await;
    let held_seconds = held.elapsed().as_secs_f64();
    let cpu_percent = (crate::stack::cpu_seconds(pid)? - cpu_before) / held_seconds * 100.0;
    let rss_held_mib = rss_mib(pid)?;
    drop(open);
    Ok(Streams {
        count,
        held_seconds,
        rss_before_mib,
        rss_held_mib,
        cpu_percent,
    })
}

/// The resident memory of process `pid` now, in MiB.
fn rss_mib(pid: u32) -> anyhow::Result<f64> {
    crate::stack::memory_mib(&format!("/proc/{pid}/status"), "VmRSS")
}

/// The CPU time process `pid` has used (user and system), in seconds.
/// `orderflow serve` in a process of its own, as users run it.
struct Served {
    service: Service,
    base: String,
    _logs: tempfile::TempDir,
}

impl Served {
    async fn start(stack: &LocalStack, queue: &str) -> anyhow::Result<Self> {
        let exe = std::env::current_exe().context("finding this program, to start serve")?;
        let logs = tempfile::tempdir().context("creating a directory for serve's log")?;
        let port = free_port().context("finding a free port")?;
        let mut command = Command::new(&exe);
        command
            .args([
                "serve",
                "--listen",
                &format!("127.0.0.1:{port}"),
                "--address",
            ])
            .arg(&stack.temporal.address)
            .args(["--namespace", &stack.temporal.namespace])
            .args(["--task-queue", queue])
            .env("DATABASE_URL", stack.database.url());
        if let Some(keys) = &stack.info.encryption_key_file {
            command.arg("--encryption-key-file").arg(keys);
        }
        let service = Service::spawn(
            "serve",
            &command,
            None,
            "TERM",
            logs.path().join("serve.log"),
            None,
        )?;
        let base = format!("http://127.0.0.1:{port}");
        let health = format!("{base}/readyz");
        let ready = poll(
            "the bench's serve process",
            Duration::from_secs(60),
            || async {
                let answer = reqwest::get(&health).await.ok()?;
                (answer.status() == 200).then_some(())
            },
        )
        .await;
        if let Err(e) = ready {
            anyhow::bail!("{e}; its log says:\n{}", service.log_tail());
        }
        Ok(Self {
            service,
            base,
            _logs: logs,
        })
    }
}
