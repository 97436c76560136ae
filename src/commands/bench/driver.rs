//! What the bench drives: batches of orders through a client, each timed
//! from its start to its end, and the figures drawn from them.

use std::time::{Duration, Instant, SystemTime};

use futures::StreamExt as _;
use serde::Serialize;

use crate::domain::{
    Currency, CustomerId, FailureCode, Money, Order, OrderId, OrderLine, OrderStatus,
    PaymentMethod, ProductId, Quantity,
};
use crate::temporal::client::OrderClient;

/// How many products the spread-SKU orders cycle over.
pub const SPREAD: u32 = 50;

/// How long one order may take before the bench gives up (a worker died).
const ORDER_TIMEOUT: Duration = Duration::from_secs(300);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Baseline,
    Orderflow,
}

/// Which products an order takes.
#[derive(Debug, Clone, Copy)]
pub enum Products<'a> {
    /// One of [`SPREAD`] products with stock to spare, in turn.
    Spread,
    /// This one product, whose stock runs out: an order ends COMPLETED or
    /// FAILED `OUT_OF_STOCK`.
    Hot(&'a str),
}

pub struct Driver<'a> {
    pub client: &'a OrderClient,
    pub task_queue: &'a str,
    pub run_id: &'a str,
    pub eager: bool,
}

/// One order's end: its latency, when it ended, and whether it completed.
type Ended = (Duration, Instant, bool, Stamps);

/// One order's moments on the client's wall clock, to set beside its
/// history's.
#[derive(Debug, Clone)]
pub struct Stamps {
    pub id: String,
    /// Before the start call.
    pub before: SystemTime,
    /// When the start call returned.
    pub start_returned: SystemTime,
    /// When the result came.
    pub after: SystemTime,
}

impl Driver<'_> {
    fn order(&self, products: Products, phase: &str, i: u32) -> Order {
        let product = match products {
            Products::Spread => format!("BENCH-{}", i % SPREAD),
            Products::Hot(id) => id.to_owned(),
        };
        let line = OrderLine {
            product_id: ProductId::parse(&product).expect("bench product IDs are valid"),
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

    async fn one(
        &self,
        kind: Kind,
        products: Products<'_>,
        phase: &str,
        i: u32,
    ) -> anyhow::Result<Ended> {
        let order = self.order(products, phase, i);
        let started = Instant::now();
        let before = SystemTime::now();
        let ended = tokio::time::timeout(ORDER_TIMEOUT, self.run(kind, products, &order)).await;
        let completed = ended.map_err(|_| {
            anyhow::anyhow!(
                "benchmark order {} did not end within {}: is a worker still running?",
                order.id(),
                humantime::format_duration(ORDER_TIMEOUT)
            )
        })??;
        let (completed, start_returned) = completed;
        let stamps = Stamps {
            id: order.id().to_string(),
            before,
            start_returned,
            after: SystemTime::now(),
        };
        Ok((started.elapsed(), Instant::now(), completed, stamps))
    }

    /// Runs one order to its end; whether it completed, and when its
    /// start call returned.
    async fn run(
        &self,
        kind: Kind,
        products: Products<'_>,
        order: &Order,
    ) -> anyhow::Result<(bool, SystemTime)> {
        Ok(match kind {
            Kind::Baseline => (
                true,
                self.client
                    .run_baseline(self.task_queue, order, self.eager)
                    .await?,
            ),
            Kind::Orderflow => {
                let (view, start_returned) = self
                    .client
                    .run_order(self.task_queue, order, self.eager)
                    .await?;
                let out_of_stock = view.status == OrderStatus::Failed
                    && view.failure.as_ref().map(|f| f.code) == Some(FailureCode::OutOfStock);
                let completed = match (view.status, products) {
                    (OrderStatus::Completed, _) => true,
                    (_, Products::Hot(_)) if out_of_stock => false,
                    (status, _) => {
                        anyhow::bail!("benchmark order {} ended {status}", order.id())
                    }
                };
                (completed, start_returned)
            }
        })
    }

    /// `orders` orders with at most `concurrency` in flight.
    pub async fn batch(
        &self,
        kind: Kind,
        products: Products<'_>,
        phase: &str,
        orders: u32,
        concurrency: u32,
    ) -> anyhow::Result<Batch> {
        let started = Instant::now();
        let ended: Vec<Ended> = futures::stream::iter(0..orders)
            .map(|i| self.one(kind, products, phase, i))
            .buffer_unordered(concurrency as usize)
            .collect::<Vec<_>>()
            .await
            .into_iter()
            .collect::<anyhow::Result<_>>()?;
        let seconds = started.elapsed().as_secs_f64();
        let completed = ended.iter().filter(|e| e.2).count() as u32;
        let mut latencies = Vec::with_capacity(ended.len());
        let mut offsets = Vec::with_capacity(ended.len());
        let mut stamps = Vec::with_capacity(ended.len());
        for (latency, at, _, stamp) in ended {
            latencies.push(latency);
            offsets.push(at.duration_since(started).as_secs_f64());
            stamps.push(stamp);
        }
        offsets.sort_by(f64::total_cmp);
        let (steady_orders, steady_seconds) = Batch::steady(&offsets, concurrency, seconds);
        Ok(Batch {
            latencies,
            stamps,
            completed,
            seconds,
            rates: vec![f64::from(steady_orders) / steady_seconds],
        })
    }

    /// Open loop: starts `orders` orders `per_second` apart on the clock,
    /// whether or not earlier ones have ended (a steady arrival rate, as
    /// customers arrive), and waits for all of them.
    pub async fn paced(
        &self,
        kind: Kind,
        phase: &str,
        per_second: f64,
        orders: u32,
    ) -> anyhow::Result<Paced> {
        let mut ticker = tokio::time::interval(Duration::from_secs_f64(1.0 / per_second));
        // Behind schedule, catch up: arrivals do not wait for the system.
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
        let mut pending = futures::stream::FuturesUnordered::new();
        let mut latencies = Vec::with_capacity(orders as usize);
        let (mut next, mut peak) = (0, 0);
        let started = Instant::now();
        let mut last_start = started;
        while next < orders || !pending.is_empty() {
            tokio::select! {
                _ = ticker.tick(), if next < orders => {
                    pending.push(self.one(kind, Products::Spread, phase, next));
                    next += 1;
                    last_start = Instant::now();
                    peak = peak.max(pending.len());
                }
                Some(ended) = pending.next(), if !pending.is_empty() => {
                    latencies.push(ended?.0);
                }
            }
        }
        let starting = last_start.duration_since(started).as_secs_f64();
        latencies.sort();
        let pct = |p: f64| percentile(&latencies, p);
        Ok(Paced {
            per_second,
            orders,
            started_per_second: if starting > 0.0 {
                f64::from(orders - 1) / starting
            } else {
                f64::from(orders)
            },
            peak_in_flight: peak as u32,
            p50_ms: pct(0.50),
            p95_ms: pct(0.95),
            p99_ms: pct(0.99),
            max_ms: pct(1.0),
        })
    }
}

/// One open-loop run: orders started at a steady rate.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Paced {
    /// The arrival rate asked for.
    pub per_second: f64,
    pub orders: u32,
    /// The arrival rate achieved, first start to last.
    pub started_per_second: f64,
    pub peak_in_flight: u32,
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

/// The `p`-th quantile of sorted latencies, in ms (nearest rank).
pub fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let index = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[index].as_secs_f64() * 1000.0
}

/// What one or more batches of a kind measured.
#[derive(Debug, Default)]
pub struct Batch {
    pub latencies: Vec<Duration>,
    pub stamps: Vec<Stamps>,
    pub completed: u32,
    pub seconds: f64,
    /// Each batch's orders per second over its steady part.
    pub rates: Vec<f64>,
}

impl Batch {
    /// The steady part of a batch whose orders ended at `done` (seconds
    /// since it started, in order): from the `concurrency`-th end to the
    /// last end with `concurrency` orders still in flight. Before it, the
    /// first orders all start at once; after it, fewer than `concurrency`
    /// remain and the batch drains, which measures the latency of its last
    /// orders rather than throughput. Too short a batch to have one counts
    /// whole.
    pub fn steady(done: &[f64], concurrency: u32, seconds: f64) -> (u32, f64) {
        let (n, c) = (done.len(), concurrency as usize);
        if c == 0 || n <= 2 * c + 1 || done[n - c - 1] <= done[c - 1] {
            return (n as u32, seconds);
        }
        ((n - 2 * c) as u32, done[n - c - 1] - done[c - 1])
    }

    pub fn add(&mut self, other: Batch) {
        self.latencies.extend(other.latencies);
        self.stamps.extend(other.stamps);
        self.completed += other.completed;
        self.seconds += other.seconds;
        self.rates.extend(other.rates);
    }
}

/// The figures of one kind of workflow in one setting.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Run {
    pub kind: Kind,
    pub orders: u32,
    pub concurrency: u32,
    /// Wall time of all its batches.
    pub seconds: f64,
    /// The median over its batches (rounds) of each one's steady rate.
    pub orders_per_second: f64,
    /// The slowest and fastest batch.
    pub orders_per_second_range: [f64; 2],
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
}

impl Run {
    pub fn new(kind: Kind, concurrency: u32, batch: Batch) -> Self {
        let Batch {
            mut latencies,
            seconds,
            mut rates,
            ..
        } = batch;
        let orders = latencies.len() as u32;
        latencies.sort();
        let pct = |p: f64| percentile(&latencies, p);
        rates.sort_by(f64::total_cmp);
        Run {
            kind,
            orders,
            concurrency,
            seconds,
            orders_per_second: median(&rates),
            orders_per_second_range: [rates[0], rates[rates.len() - 1]],
            p50_ms: pct(0.50),
            p95_ms: pct(0.95),
            p99_ms: pct(0.99),
        }
    }
}

/// The median of sorted, non-empty `values`.
pub fn median(values: &[f64]) -> f64 {
    let n = values.len();
    if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2.0
    }
}

#[cfg(test)]
mod tests {
    use super::{Batch, median};

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

    #[test]
    fn the_median_of_odd_and_even_counts() {
        assert_eq!(median(&[1.0, 2.0, 9.0]), 2.0);
        assert_eq!(median(&[1.0, 2.0, 4.0, 9.0]), 3.0);
        assert_eq!(median(&[5.0]), 5.0);
    }
}
