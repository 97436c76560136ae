//! A test's order stack: a fresh migrated database, a Temporal client on the
//! shared dev server, a task queue of its own, and an in-process worker.

use std::future::Future;
use std::time::Duration;

use orderflow::domain::{
    Currency, CustomerId, Money, Order, OrderId, OrderLine, PaymentMethod, ProductId, Quantity,
};
use orderflow::temporal::client::{OrderClient, Submitted};
use orderflow::worker::{self, WorkerSettings};
use orderflow::workflow::retry::RetryConfig;

use super::{TestDb, migrated_database, temporal_address};

pub struct Harness {
    pub db: TestDb,
    /// The Temporal server's address, and a client on it.
    pub address: String,
    pub client: OrderClient,
    pub settings: WorkerSettings,
}

/// The harness's database helpers (`h.stock(…)`) are its [`TestDb`]'s.
impl std::ops::Deref for Harness {
    type Target = TestDb;

    fn deref(&self) -> &TestDb {
        &self.db
    }
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

pub async fn temporal_client(address: &str) -> OrderClient {
    let config = orderflow::temporal::TemporalConfig::plain(address, "orderflow");
    OrderClient::connect(&config)
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
        self.spawn_worker_with_env(extra, &[])
    }

    /// [`Self::spawn_worker`] with environment variables of its own.
    pub fn spawn_worker_with_env(
        &self,
        extra: &[&str],
        env: &[(&str, &std::path::Path)],
    ) -> WorkerProcess {
        let log = tempfile::NamedTempFile::new().unwrap();
        let child = super::command()
            .envs(env.iter().map(|(k, v)| (*k, v.as_os_str())))
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

    /// `orderflow audit --all` on this harness's database and queue finds
    /// nothing wrong: the checks the fault tests make, through the command
    /// users run.
    pub async fn assert_audit_clean(&self) {
        let out = tokio::process::Command::from(super::command())
            .env("TEMPORAL_ADDRESS", &self.address)
            .env("DATABASE_URL", &self.db.url)
            .env("ORDERFLOW_TASK_QUEUE", &self.settings.task_queue)
            .args(["audit", "--all", "--stuck-after", "1h"])
            .output()
            .await
            .expect("running orderflow audit");
        assert_eq!(
            out.status.code(),
            Some(0),
            "orderflow audit found problems:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    pub async fn submit(&self, order: &Order) {
        let submitted = self
            .client
            .start(&self.settings.task_queue, order, false)
            .await
            .unwrap();
        assert!(
            matches!(submitted, Submitted::Started { .. }),
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

/// The program's polling helper ([`orderflow::stack::poll`]), failing
/// the test when `timeout` passes.
pub async fn eventually<T, F, Fut>(what: &str, timeout: Duration, probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    orderflow::stack::poll(what, timeout, probe)
        .await
        .unwrap_or_else(|e| panic!("{e}"))
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
