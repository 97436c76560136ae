//! A test's order stack: a fresh migrated database, a Temporal client on the
//! shared dev server, a task queue of its own, and an in-process worker.

use std::future::Future;
use std::time::{Duration, Instant};

use orderflow::domain::{
    Currency, CustomerId, Money, Order, OrderId, OrderLine, PaymentMethod, ProductId, Quantity,
};
use orderflow::workflow::retry::RetryConfig;
use orderflow::workflow::worker::{self, WorkerSettings};
use sqlx::Row;
use temporalio_client::Client;

use super::{TestDb, migrated_database, temporal_address};

pub struct Harness {
    pub db: TestDb,
    /// The Temporal server's address, and a client on it.
    pub address: String,
    pub client: Client,
    pub settings: WorkerSettings,
}

/// Retries fast enough for tests, same shape as the default.
pub fn fast_retry(max_attempts: u32) -> RetryConfig {
    RetryConfig {
        max_attempts,
        initial_interval: Duration::from_millis(100),
        backoff_coefficient: 2.0,
        max_interval: Duration::from_secs(1),
    }
}

pub async fn temporal_client(address: &str) -> Client {
    use clap::Parser;
    let global =
        orderflow::cli::Cli::parse_from(["orderflow", "--address", address, "db", "status"]).global;
    let config = orderflow::config::TemporalConfig::resolve(&global).unwrap();
    orderflow::temporal::connect(&config)
        .await
        .expect("connecting to the test dev server")
}

impl Harness {
    /// A fresh database on the shared cluster, the shared dev server.
    pub async fn new() -> Self {
        Self::on(migrated_database().await, &temporal_address()).await
    }

    /// A harness on a migrated database and a Temporal server of the
    /// caller's (a scenario that stops or kills them has its own).
    pub async fn on(db: TestDb, address: &str) -> Self {
        let client = temporal_client(address).await;
        let mut settings = WorkerSettings::new(format!("test-{}", uuid::Uuid::now_v7().simple()));
        settings.retry = fast_retry(3);
        settings.shutdown_timeout = Duration::from_secs(5);
        Self {
            db,
            address: address.to_owned(),
            client,
            settings,
        }
    }

    /// Runs `body` while an in-process worker serves this harness's queue.
    pub async fn with_worker<T>(&self, body: impl Future<Output = T>) -> T {
        worker::alongside(
            self.client.clone(),
            self.db.connections(),
            self.settings.clone(),
            body,
        )
        .await
        .expect("the worker ran and stopped cleanly")
    }

    pub async fn add_product(&self, id: &str, price: &str, stock: i32) {
        sqlx::query("INSERT INTO products (product_id, name, unit_price, stock) VALUES ($1, $1, $2::numeric, $3)")
            .bind(id)
            .bind(price)
            .bind(stock)
            .execute(&self.db.pool)
            .await
            .unwrap();
    }

    pub async fn stock(&self, id: &str) -> i32 {
        sqlx::query_scalar("SELECT stock FROM products WHERE product_id = $1")
            .bind(id)
            .fetch_one(&self.db.pool)
            .await
            .unwrap()
    }

    /// Payments of an order by status, e.g. [("CAPTURED", "25.00")].
    pub async fn payments(&self, order_id: &OrderId) -> Vec<(String, String)> {
        sqlx::query("SELECT status, amount::text AS amount FROM payments WHERE order_id = $1 ORDER BY payment_id")
            .bind(order_id.as_str())
            .fetch_all(&self.db.pool)
            .await
            .unwrap()
            .iter()
            .map(|r| (r.get("status"), r.get("amount")))
            .collect()
    }

    /// Reservations of an order: (line, status).
    pub async fn reservations(&self, order_id: &OrderId) -> Vec<(i16, String)> {
        sqlx::query("SELECT line_no, status FROM inventory_reservations WHERE order_id = $1 ORDER BY line_no")
            .bind(order_id.as_str())
            .fetch_all(&self.db.pool)
            .await
            .unwrap()
            .iter()
            .map(|r| (r.get("line_no"), r.get("status")))
            .collect()
    }

    /// Notifications of an order: (kind, status, attempts).
    pub async fn notifications(&self, order_id: &OrderId) -> Vec<(String, String, i32)> {
        sqlx::query("SELECT kind, status, attempts FROM notifications WHERE order_id = $1 ORDER BY notification_id")
            .bind(order_id.as_str())
            .fetch_all(&self.db.pool)
            .await
            .unwrap()
            .iter()
            .map(|r| (r.get("kind"), r.get("status"), r.get("attempts")))
            .collect()
    }

    /// The order row's status and failure code.
    pub async fn recorded_status(&self, order_id: &OrderId) -> (String, Option<String>) {
        let row = sqlx::query("SELECT status, failure_code FROM orders WHERE order_id = $1")
            .bind(order_id.as_str())
            .fetch_one(&self.db.pool)
            .await
            .unwrap();
        (row.get("status"), row.get("failure_code"))
    }

    /// The real binary, pointed at this harness's Temporal, database and queue.
    pub fn cli(&self) -> assert_cmd::Command {
        let mut cmd = super::orderflow();
        cmd.env("TEMPORAL_ADDRESS", &self.address)
            .env("DATABASE_URL", &self.db.url)
            .env("ORDERFLOW_TASK_QUEUE", &self.settings.task_queue);
        cmd
    }

    /// `orderflow worker` for this harness, stopped on drop.
    pub fn spawn_worker(&self, extra: &[&str]) -> WorkerProcess {
        let log = tempfile::NamedTempFile::new().unwrap();
        let child = std::process::Command::new(assert_cmd::cargo::cargo_bin("orderflow"))
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .args([
                "worker",
                "--database-url",
                &self.db.url,
                "--address",
                &self.address,
            ])
            .args([
                "--task-queue",
                &self.settings.task_queue,
                "--shutdown-timeout",
                "5s",
            ])
            .args(extra)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(log.reopen().unwrap())
            .spawn()
            .expect("starting the worker binary");
        WorkerProcess { child, log }
    }

    pub async fn submit(&self, order: &Order) {
        let submitted =
            orderflow::workflow::client::start(&self.client, &self.settings.task_queue, order)
                .await
                .unwrap();
        assert!(
            matches!(
                submitted,
                orderflow::workflow::client::Submitted::Started { .. }
            ),
            "{submitted:?}"
        );
    }
}

/// An order whose total is computed from its lines.
pub fn order(id: &str, method: PaymentMethod, lines: &[(&str, i64, &str)]) -> Order {
    let items: Vec<OrderLine> = lines
        .iter()
        .map(|(p, q, price)| OrderLine {
            product_id: ProductId::parse(p).unwrap(),
            quantity: Quantity::parse(*q).unwrap(),
            unit_price: Money::parse(price).unwrap(),
        })
        .collect();
    let total = items
        .iter()
        .map(|l| l.total().unwrap())
        .reduce(|a, b| a.plus(b).unwrap())
        .unwrap();
    Order::new(
        OrderId::parse(id).unwrap(),
        CustomerId::parse("CUST-001").unwrap(),
        Some(orderflow::domain::CustomerEmail::parse("ann@example.com").unwrap()),
        method,
        total,
        Currency::USD,
        items,
    )
    .unwrap()
}

/// Polls `probe` until it yields a value or `timeout` passes.
pub async fn eventually<T, F, Fut>(what: &str, timeout: Duration, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = probe().await {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A worker binary that is killed when dropped.
pub struct WorkerProcess {
    pub child: std::process::Child,
    pub log: tempfile::NamedTempFile,
}

impl WorkerProcess {
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log.path()).unwrap_or_default()
    }
}

impl Drop for WorkerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
