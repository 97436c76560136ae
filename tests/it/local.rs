//! `orderflow demo` and `orderflow dev` on a machine with nothing running:
//! they start what they need and leave nothing behind.

use std::io::{BufRead, BufReader};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::Duration;

use predicates::prelude::*;
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
    let started = |what: &str| {
        stack["started"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s == what)
    };
    let temporal = port_of(stack["temporalAddress"].as_str().unwrap());
    let database = port_of(stack["databaseUrl"].as_str().unwrap());
    if started("temporal") {
        assert!(!listening(temporal), "Temporal still listens on {temporal}");
    } else {
        assert!(listening(temporal), "the reused server is left running");
    }
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
    let data = data_dir();
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
    let api = stack["apiUrl"]
        .as_str()
        .expect("dev serves the API and says where")
        .to_owned();

    // A second terminal, with only the printed settings.
    let example = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/examples/orders/completes.json"
    );
    orderflow()
        .env("TEMPORAL_ADDRESS", &address)
        .env("ORDERFLOW_TASK_QUEUE", stack["taskQueue"].as_str().unwrap())
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
    // The page and the API, served by dev.
    let listed: Value = reqwest::get(format!("{api}/api/orders"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(listed[0]["status"], "COMPLETED", "{listed}");
    let page = reqwest::get(&api).await.unwrap();
    assert!(page.text().await.unwrap().contains("orderflow"));

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
    assert!(
        data.path().join("postgres/data/PG_VERSION").exists(),
        "the database persists beside it"
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
            "--api-orders",
            "10",
            "--streams",
            "5",
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
    // The API against the client it wraps, and the streams one serve holds.
    let api = &report["api"];
    let via: Vec<&str> = api["starts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["via"].as_str().unwrap())
        .collect();
    assert_eq!(via, ["client", "api"]);
    assert_eq!(api["starts"][1]["orders"], 20);
    assert!(api["ratio"].as_f64().unwrap() > 0.0);
    assert!(api["sequentialP50Ms"][1].as_f64().unwrap() > 0.0);
    assert_eq!(api["streams"]["count"], 5);
    assert!(api["streams"]["rssHeldMib"].as_f64().unwrap() > 0.0);
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

/// `orderflow dev` in the background, once it has printed its settings.
struct Dev {
    child: std::process::Child,
    stack: Value,
    log: tempfile::NamedTempFile,
}

impl Dev {
    fn start(args: &[&str]) -> Self {
        let log = tempfile::NamedTempFile::new().unwrap();
        let mut child = crate::support::command()
            .args(["dev", "-o", "json"])
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log.reopen().unwrap())
            .spawn()
            .unwrap();
        let mut first_line = String::new();
        BufReader::new(child.stdout.as_mut().unwrap())
            .read_line(&mut first_line)
            .unwrap();
        let stack: Value = serde_json::from_str(&first_line)
            .unwrap_or_else(|_| panic!("dev -o json prints its settings first: {first_line:?}"));
        Self { child, stack, log }
    }

    /// `orderflow` as another terminal would run it, with the exports.
    fn cli(&self) -> assert_cmd::Command {
        let mut cmd = orderflow();
        cmd.env(
            "TEMPORAL_ADDRESS",
            self.stack["temporalAddress"].as_str().unwrap(),
        )
        .env(
            "ORDERFLOW_TASK_QUEUE",
            self.stack["taskQueue"].as_str().unwrap(),
        )
        .env("DATABASE_URL", self.stack["databaseUrl"].as_str().unwrap());
        cmd
    }

    fn order_ids(&self) -> Vec<String> {
        let out = self
            .cli()
            .args(["order", "list", "-o", "json"])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let list: Value = serde_json::from_slice(&out.stdout).unwrap();
        list.as_array()
            .unwrap()
            .iter()
            .map(|o| o["orderId"].as_str().unwrap().to_owned())
            .collect()
    }

    async fn stop(mut self) {
        assert!(
            Command::new("kill")
                .args(["-INT", &self.child.id().to_string()])
                .status()
                .unwrap()
                .success()
        );
        let status = eventually("dev to stop", Duration::from_secs(60), || {
            let status = self.child.try_wait().unwrap();
            async move { status }
        })
        .await;
        let log = std::fs::read_to_string(self.log.path()).unwrap();
        assert_eq!(status.code(), Some(0), "{status:?}; its log:\n{log}");
        nothing_left(&self.stack);
    }
}

/// A data directory that PostgreSQL's account can reach when we are root
/// (a temporary directory is the creator's alone).
fn data_dir() -> tempfile::TempDir {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    dir
}

fn completes(id: &str) -> Vec<String> {
    let example = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/examples/orders/completes.json"
    );
    ["order", "create", "--watch", "--file", example, "--id", id]
        .map(str::to_owned)
        .to_vec()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_dev_stacks_on_one_server_stay_apart() {
    let server = crate::support::temporal_address();
    let (a_dir, b_dir) = (data_dir(), data_dir());
    let a = Dev::start(&[
        "--address",
        &server,
        "--data-dir",
        a_dir.path().to_str().unwrap(),
    ]);
    let b = Dev::start(&[
        "--address",
        &server,
        "--data-dir",
        b_dir.path().to_str().unwrap(),
    ]);
    for stack in [&a.stack, &b.stack] {
        assert_eq!(
            stack["started"],
            serde_json::json!(["postgres"]),
            "the server is reused"
        );
        assert_ne!(stack["taskQueue"], "orderflow");
    }
    assert_ne!(
        a.stack["taskQueue"], b.stack["taskQueue"],
        "each stack has its own queue"
    );

    // Orders sent to each stack are processed by its own worker, into its
    // own database, however many of them there are.
    for i in 0..3 {
        a.cli()
            .args(completes(&format!("ORD-STACK-A{i}")))
            .assert()
            .success();
        b.cli()
            .args(completes(&format!("ORD-STACK-B{i}")))
            .assert()
            .success();
    }
    let (mut in_a, mut in_b) = (a.order_ids(), b.order_ids());
    in_a.sort();
    in_b.sort();
    assert_eq!(in_a, ["ORD-STACK-A0", "ORD-STACK-A1", "ORD-STACK-A2"]);
    assert_eq!(in_b, ["ORD-STACK-B0", "ORD-STACK-B1", "ORD-STACK-B2"]);

    // A second stack on a data directory in use is refused.
    orderflow()
        .args(["dev", "--address", &server, "--data-dir"])
        .arg(a_dir.path())
        .assert()
        .code(2)
        .stderr(contains("another `orderflow dev` runs from"));

    a.stop().await;
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dev_keeps_both_stores_across_a_restart_and_fresh_forgets_both() {
    let data = data_dir();
    let port = orderflow::stack::free_port().unwrap().to_string();
    let ui_port = orderflow::stack::free_port().unwrap().to_string();
    let args = [
        "--port",
        &port,
        "--ui-port",
        &ui_port,
        "--data-dir",
        data.path().to_str().unwrap(),
    ];
    let dev = Dev::start(&args);
    assert_eq!(dev.stack["temporalAddress"], format!("127.0.0.1:{port}"));
    assert_eq!(dev.stack["uiUrl"], format!("http://127.0.0.1:{ui_port}"));
    dev.cli().args(completes("ORD-KEPT")).assert().success();
    // `dev env` prints the running stack's exports again, and its settings.
    let database_url = dev.stack["databaseUrl"].as_str().unwrap().to_owned();
    let env = orderflow()
        .args(["dev", "env", "--data-dir", data.path().to_str().unwrap()])
        .output()
        .unwrap();
    assert!(env.status.success(), "{env:?}");
    let exports = String::from_utf8_lossy(&env.stdout);
    assert!(
        exports.contains(&format!("export DATABASE_URL={database_url}\n"))
            && exports.contains(&format!("export TEMPORAL_ADDRESS=127.0.0.1:{port}")),
        "{exports}"
    );
    let json = orderflow()
        .args([
            "dev",
            "env",
            "-o",
            "json",
            "--data-dir",
            data.path().to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert_eq!(
        crate::support::stdout_json(&json)["databaseUrl"],
        database_url.as_str()
    );
    dev.stop().await;
    orderflow()
        .args(["dev", "env", "--data-dir", data.path().to_str().unwrap()])
        .assert()
        .code(3)
        .stderr(contains("no `orderflow dev` runs from"));
    // Another stack, started with this one's exports still set: told, not
    // handed this one's database as if it were the user's.
    let other = data_dir();
    orderflow()
        .env("DATABASE_URL", &database_url)
        .args(["dev", "--port", &port, "--ui-port", &ui_port, "--data-dir"])
        .arg(other.path())
        .assert()
        .code(2)
        .stderr(
            contains("names the PostgreSQL of another `orderflow dev` stack")
                .and(contains("unset DATABASE_URL")),
        );

    let dev = Dev::start(&args);
    assert_eq!(dev.order_ids(), ["ORD-KEPT"], "the database was kept");
    dev.cli()
        .args(["order", "status", "ORD-KEPT"])
        .assert()
        .success()
        .stdout(contains("COMPLETED"));
    // Its ID is taken, in both stores alike.
    dev.cli().args(completes("ORD-KEPT")).assert().success();
    assert_eq!(dev.order_ids(), ["ORD-KEPT"]);
    dev.stop().await;

    let mut dev = Dev::start(&[&args[..], &["--fresh"]].concat());
    assert!(dev.order_ids().is_empty(), "--fresh empties the database");
    assert_eq!(
        dev.stack["databaseUrl"],
        database_url.as_str(),
        "the same port: the exports stay right"
    );
    // What it deleted, said (in its JSON here).
    let deleted = dev.stack["deleted"].to_string();
    assert!(
        deleted.contains("temporal.db") && deleted.contains("data"),
        "{deleted}"
    );
    dev.cli()
        .args(["order", "status", "ORD-KEPT"])
        .assert()
        .code(3);

    // Its PostgreSQL dies: dev says so, with the log, and stops the rest.
    let pid_file = orderflow::stack::local::postgres_dir(data.path()).join("data/postmaster.pid");
    let pid = std::fs::read_to_string(pid_file).unwrap();
    let pid = pid.lines().next().unwrap().trim().to_owned();
    assert!(
        Command::new("kill")
            .args(["-KILL", &pid])
            .status()
            .unwrap()
            .success()
    );
    let status = eventually("dev to stop", Duration::from_secs(90), || {
        let status = dev.child.try_wait().unwrap();
        async move { status }
    })
    .await;
    let said = std::fs::read_to_string(dev.log.path()).unwrap();
    assert_eq!(status.code(), Some(8), "{said}");
    assert!(
        said.contains("PostgreSQL, started by this stack, exited on its own (its log: ")
            && said.contains("postgres.log"),
        "{said}"
    );
    nothing_left(&dev.stack);
}

#[test]
fn dev_says_how_to_start_a_server_where_none_answers() {
    let port = orderflow::stack::free_port().unwrap();
    orderflow()
        .args(["dev", "--connect-timeout", "2s", "--address"])
        .arg(format!("127.0.0.1:{port}"))
        .assert()
        .code(8)
        .stderr(contains("give --port N"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dev_encrypt_keeps_a_private_key_and_serves_the_codec_for_the_ui() {
    use std::os::unix::fs::PermissionsExt as _;
    let server = crate::support::temporal_address();
    let dir = data_dir();
    let dev = Dev::start(&[
        "--encrypt",
        "--address",
        &server,
        "--data-dir",
        dir.path().to_str().unwrap(),
    ]);
    let keys = std::path::PathBuf::from(dev.stack["encryptionKeyFile"].as_str().unwrap());
    assert!(
        keys.starts_with(dir.path()),
        "kept with the stack: {keys:?}"
    );
    let mode = std::fs::metadata(&keys).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "the generated key file is its owner's only");
    let endpoint = dev.stack["codecEndpoint"].as_str().unwrap().to_owned();

    // Another terminal, with the printed exports (the key file among them).
    dev.cli()
        .env("ORDERFLOW_ENCRYPTION_KEY_FILE", &keys)
        .args(completes("ORD-DEV-SEALED"))
        .assert()
        .success()
        .stdout(contains("COMPLETED"));
    let plain = crate::support::stack::temporal_client(&server).await;
    let events = plain
        .raw_history(&orderflow::domain::OrderId::parse("ORD-DEV-SEALED").unwrap())
        .await
        .unwrap();
    let history = serde_json::to_value(&events).unwrap();
    crate::crypto::assert_hidden("ORD-DEV-SEALED", &history, &["CUST-001", "ann@example.com"]);

    // The codec server dev runs decodes them for the Web UI's origin.
    let input = events[0].clone();
    let input = serde_json::to_value(&input).unwrap();
    let payloads =
        &input["attributes"]["WorkflowExecutionStartedEventAttributes"]["input"]["payloads"];
    let answer = reqwest::Client::new()
        .post(format!("{endpoint}/decode"))
        .header("Origin", dev.stack["uiUrl"].as_str().unwrap())
        .json(&serde_json::json!({ "payloads": payloads }))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
    assert!(answer.headers().contains_key("access-control-allow-origin"));
    let decoded: Value = answer.json().await.unwrap();
    use base64::Engine as _;
    let data = base64::engine::general_purpose::STANDARD
        .decode(decoded["payloads"][0]["data"].as_str().unwrap())
        .unwrap();
    let order: Value = serde_json::from_slice(&data).unwrap();
    assert_eq!(order["customerID"], "CUST-001");
    dev.stop().await;
}

/// `dev` given a `DATABASE_URL` that does not answer says to unset it,
/// not to "run `orderflow dev`", the command already running.
#[test]
fn dev_with_a_dead_database_url_says_to_unset_it() {
    let data = data_dir();
    let port = crate::support::closed_port();
    orderflow()
        .env(
            "DATABASE_URL",
            format!("postgres://postgres@127.0.0.1:{port}/orderflow"),
        )
        .args(["dev", "--connect-timeout", "2s", "--address"])
        .arg(crate::support::temporal_address())
        .arg("--data-dir")
        .arg(data.path())
        .assert()
        .code(8)
        .stderr(
            contains("unset it to let this command start a PostgreSQL of its own")
                .and(contains("run `orderflow dev`").not()),
        );
}
