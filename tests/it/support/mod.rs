//! Shared test support: services started once per test binary, a fresh
//! database per test, and the real binary with a scrubbed environment.

pub mod invariants;
pub mod served;
pub mod stack;
pub mod tls;
pub mod webhook;

use std::path::PathBuf;

use orderflow::domain::OrderId;
use sqlx::Row;
use std::sync::OnceLock;

use orderflow::stack::postgres::PostgresCluster;
use orderflow::stack::temporal_server::{DevServerOptions, TemporalDevServer};

/// Starts `make` on a dedicated thread with its own runtime, so the service
/// outlives any one test's runtime. The handle is leaked on purpose: the
/// service's lifeline stops it when this test process exits.
fn start_on_own_runtime<T: Send + 'static>(
    make: impl FnOnce() -> std::pin::Pin<Box<dyn std::future::Future<Output = anyhow::Result<T>>>>
    + Send
    + 'static,
) -> T {
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(make())
            .unwrap_or_else(|e| panic!("starting a test service: {e:#}"))
    })
    .join()
    .expect("service start thread")
}

fn postgres() -> &'static PostgresCluster {
    static PG: OnceLock<PostgresCluster> = OnceLock::new();
    PG.get_or_init(|| {
        start_on_own_runtime(|| {
            Box::pin(async {
                let dir = tempfile::Builder::new()
                    .prefix("orderflow-test-pg-")
                    .tempdir()?
                    .keep();
                PostgresCluster::start(&dir, true).await
            })
        })
    })
}

/// Held by the tests that load both cores for a while (500-order bulk
/// actions, the Kubernetes checks' kustomize and schema validation, the
/// processes of the spread-out and Deployment runs), and by the one that
/// counts the events an outage adds to a history: starved of CPU, a worker
/// heartbeats its workflow tasks, and that count is what it checks.
pub static HEAVY: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The test process's Temporal dev server (in memory, headless).
pub fn temporal_address() -> String {
    static TEMPORAL: OnceLock<TemporalDevServer> = OnceLock::new();
    TEMPORAL
        .get_or_init(|| {
            start_on_own_runtime(|| {
                Box::pin(async {
                    let dir = std::env::temp_dir().join("orderflow-test-logs");
                    TemporalDevServer::start(&dir, DevServerOptions::default()).await
                })
            })
        })
        .address()
}

/// A new, empty database on the shared cluster.
pub struct TestDb {
    pub url: String,
    pub pool: sqlx::PgPool,
}

pub async fn fresh_database() -> TestDb {
    let name = format!("t_{}", uuid_like());
    let url = postgres()
        .create_database(&name)
        .await
        .expect("creating a test database");
    let pool = sqlx::PgPool::connect(&url)
        .await
        .expect("connecting to the test database");
    TestDb { url, pool }
}

impl TestDb {
    /// Connections for the services, as the worker makes them.
    pub fn connections(&self) -> orderflow::db::pool::Connections {
        orderflow::db::pool::Connections::like(&self.pool)
    }

    pub async fn add_product(&self, id: &str, price: &str, stock: i32) {
        sqlx::query("INSERT INTO products (product_id, name, unit_price, stock) VALUES ($1, $1, $2::numeric, $3)")
            .bind(id)
            .bind(price)
            .bind(stock)
            .execute(&self.pool)
            .await
            .unwrap();
    }

    pub async fn stock(&self, id: &str) -> i32 {
        sqlx::query_scalar("SELECT stock FROM products WHERE product_id = $1")
            .bind(id)
            .fetch_one(&self.pool)
            .await
            .unwrap()
    }

    /// Payments of an order by status, e.g. [("CAPTURED", "25.00")].
    pub async fn payments(&self, order_id: &OrderId) -> Vec<(String, String)> {
        sqlx::query("SELECT status, amount::text AS amount FROM payments WHERE order_id = $1 ORDER BY payment_id")
            .bind(order_id.as_str())
            .fetch_all(&self.pool)
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
            .fetch_all(&self.pool)
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
            .fetch_all(&self.pool)
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
            .fetch_one(&self.pool)
            .await
            .unwrap();
        (row.get("status"), row.get("failure_code"))
    }
}

/// A fresh database with the schema applied by the real binary.
pub async fn migrated_database() -> TestDb {
    let db = fresh_database().await;
    orderflow()
        .args(["db", "migrate", "--database-url", &db.url])
        .assert()
        .success();
    db
}

fn uuid_like() -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "{}_{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// The real binary with a scrubbed environment, so the caller's
/// DATABASE_URL, TEMPORAL_* or NO_COLOR cannot leak in: for a process the
/// test runs in the background (spawn, signal, read as it goes).
pub fn command() -> std::process::Command {
    let mut cmd = std::process::Command::new(assert_cmd::cargo::cargo_bin("orderflow"));
    cmd.env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", scratch_home());
    cmd
}

/// [`command`], to run to its end and assert on (a hang is a failure,
/// not a stuck CI job).
pub fn orderflow() -> assert_cmd::Command {
    let mut cmd = assert_cmd::Command::from_std(command());
    cmd.timeout(std::time::Duration::from_secs(120));
    cmd
}

fn scratch_home() -> PathBuf {
    static HOME: OnceLock<PathBuf> = OnceLock::new();
    HOME.get_or_init(|| tempfile::tempdir().expect("temp home").keep())
        .clone()
}

/// Runs the Temporal CLI against `address`.
pub fn temporal_cli(address: &str, args: &[&str]) -> std::process::Output {
    std::process::Command::new("temporal")
        .args(args)
        .args(["--address", address, "--namespace", "default"])
        .env("TEMPORAL_CLI_SHOW_STACKS", "0")
        .output()
        .expect("running the temporal CLI")
}

/// A TCP port on 127.0.0.1 where nothing listens.
pub fn closed_port() -> u16 {
    orderflow::stack::free_port().unwrap()
}

/// A file in a fresh temp directory with `contents`; the directory lives as
/// long as the returned guard.
pub fn write_temp(name: &str, contents: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(name);
    std::fs::write(&path, contents).unwrap();
    (dir, path)
}

/// Parses stdout as JSON, failing with the output when it is not.
pub fn stdout_json(output: &std::process::Output) -> serde_json::Value {
    serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not JSON ({e}):\n{}\nstderr:\n{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        )
    })
}
