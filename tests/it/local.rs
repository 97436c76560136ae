//! `orderflow demo` and `orderflow dev` on a machine with nothing running:
//! they start what they need and leave nothing behind.

use std::io::{BufRead, BufReader};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::Duration;

use predicates::str::contains;
use serde_json::Value;

use crate::support::orderflow;
use crate::support::stack::eventually;

/// Both prefer the standard ports 7233/8233: one at a time.
static ONE_STACK_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn port_of(address: &str) -> u16 {
    address
        .rsplit(':')
        .next()
        .unwrap()
        .split('/')
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

fn listening(port: u16) -> bool {
    TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), Duration::from_millis(500)).is_ok()
}

fn alive(pid: u64) -> bool {
    std::path::Path::new(&format!("/proc/{pid}")).exists()
}

/// Every process it started is gone and its ports are closed.
fn nothing_left(stack: &Value) {
    for pid in stack["pids"].as_array().unwrap() {
        assert!(
            !alive(pid.as_u64().unwrap()),
            "process {pid} is still running"
        );
    }
    let temporal = port_of(stack["temporalAddress"].as_str().unwrap());
    let database = port_of(stack["databaseUrl"].as_str().unwrap());
    assert!(!listening(temporal), "Temporal still listens on {temporal}");
    assert!(
        !listening(database),
        "PostgreSQL still listens on {database}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_runs_the_samples_and_leaves_nothing_behind() {
    let _one = ONE_STACK_AT_A_TIME.lock().await;
    let out = orderflow()
        .args(["demo", "-o", "json"])
        .timeout(Duration::from_secs(300))
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc: Value = serde_json::from_slice(&out.stdout).expect("one JSON document");
    let outcomes: Vec<(String, String)> = doc["orders"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| {
            (
                o["sample"].as_str().unwrap().to_owned(),
                o["status"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        outcomes,
        [
            ("completes", "COMPLETED"),
            ("out-of-stock", "FAILED"),
            ("declined", "FAILED"),
            ("cancelled", "CANCELLED")
        ]
        .map(|(a, b)| (a.to_owned(), b.to_owned()))
    );
    assert_eq!(
        doc["stack"]["started"],
        serde_json::json!(["temporal", "postgres"])
    );
    nothing_left(&doc["stack"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dev_serves_a_second_terminal_and_stops_on_sigint() {
    let _one = ONE_STACK_AT_A_TIME.lock().await;
    let data = tempfile::tempdir().unwrap();
    let mut dev = crate::support::command()
        .env("HOME", data.path())
        .args(["dev", "-o", "json", "--data-dir"])
        .arg(data.path())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut first_line = String::new();
    BufReader::new(dev.stdout.as_mut().unwrap())
        .read_line(&mut first_line)
        .unwrap();
    let stack: Value =
        serde_json::from_str(&first_line).expect("dev -o json prints its settings first");
    let address = stack["temporalAddress"].as_str().unwrap().to_owned();
    let database = stack["databaseUrl"].as_str().unwrap().to_owned();

    // A second terminal, with only the printed settings.
    let example = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/examples/orders/completes.json"
    );
    orderflow()
        .env("TEMPORAL_ADDRESS", &address)
        .env("DATABASE_URL", &database)
        .args(["order", "create", "--watch", "--file", example])
        .assert()
        .success()
        .stdout(contains("COMPLETED"));
    orderflow()
        .env("DATABASE_URL", &database)
        .args(["order", "list"])
        .assert()
        .success()
        .stdout(contains("COMPLETED"));

    assert!(
        Command::new("kill")
            .args(["-INT", &dev.id().to_string()])
            .status()
            .unwrap()
            .success()
    );
    let status = eventually("dev to stop", Duration::from_secs(60), || {
        let status = dev.try_wait().unwrap();
        async move { status }
    })
    .await;
    assert_eq!(status.code(), Some(0));
    nothing_left(&stack);
    assert!(
        data.path().join("temporal.db").exists(),
        "the dev server's state persists"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bench_reports_every_figure_against_its_baseline() {
    let _one = ONE_STACK_AT_A_TIME.lock().await;
    let out = orderflow()
        .args([
            "bench",
            "-o",
            "json",
            "--orders",
            "20",
            "--concurrency",
            "5",
            "--rounds",
            "2",
            "--single",
            "3",
            "--in-flight",
            "10",
            "--hot",
            "12",
            "--workers",
            "2",
            "--big-tables",
            "300",
        ])
        .timeout(Duration::from_secs(300))
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_slice(&out.stdout).expect("one JSON document");
    let kinds = |runs: &Value| -> Vec<String> {
        runs.as_array()
            .unwrap()
            .iter()
            .map(|r| r["kind"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(kinds(&report["throughput"]), ["baseline", "orderflow"]);
    assert_eq!(
        kinds(&report["inProcess"]["throughput"]),
        ["baseline", "orderflow"]
    );
    assert_eq!(kinds(&report["single"]), ["baseline", "orderflow"]);
    assert_eq!(report["workers"], 2);
    assert_eq!(report["inProcess"]["eagerStart"], true);
    let hot = &report["hotProduct"];
    assert_eq!((&hot["stock"], &hot["completed"]), (&6.into(), &6.into()));
    assert_eq!(hot["run"]["orders"], 12);
    let runs = [
        &report["throughput"],
        &report["inProcess"]["throughput"],
        &report["single"],
    ];
    for run in runs
        .iter()
        .flat_map(|r| r.as_array().unwrap())
        .chain([&hot["run"]])
    {
        let rate = run["ordersPerSecond"].as_f64().unwrap();
        let [low, high] = [0, 1].map(|i| run["ordersPerSecondRange"][i].as_f64().unwrap());
        assert!(0.0 < low && low <= rate && rate <= high, "{run}");
        assert!(run["p50Ms"].as_f64().unwrap() <= run["p99Ms"].as_f64().unwrap());
    }
    assert_eq!(report["throughput"][1]["orders"], 20);
    for ratio in [
        &report["throughputRatio"],
        &report["inProcess"]["throughputRatio"],
        &hot["ratioToSpread"],
    ] {
        assert!(ratio.as_f64().unwrap() > 0.0);
    }
    assert!(report["peakRssMib"].as_f64().unwrap() > 0.0);
    let big = &report["bigTables"];
    assert_eq!(big["orders"], 300);
    let commands = big["commands"].as_array().unwrap();
    assert!(
        commands
            .iter()
            .any(|c| c["command"].as_str().unwrap().contains("--after"))
    );
    assert!(
        commands
            .iter()
            .any(|c| c["command"].as_str().unwrap().contains("order status"))
    );
    for c in commands {
        assert!(
            c["p50Ms"].as_f64().unwrap() <= c["maxMs"].as_f64().unwrap(),
            "{c}"
        );
    }
}
