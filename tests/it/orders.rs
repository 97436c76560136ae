//! `orderflow order …` on the real binary, against a real dev server, a
//! real worker binary and PostgreSQL.

use orderflow::domain::OrderId;
use predicates::prelude::*;
use predicates::str::contains;
use serde_json::Value;

use crate::support::stack::Harness;
use crate::support::{closed_port, stdout_json, write_temp};

/// The SPEC §2 example body, as it stands.
const SEED_ORDER: &str = r#"{
  "id": "ORD-1001",
  "customerID": "CUST-001",
  "customerEmail": "ann@example.com",
  "paymentMethod": "card",
  "totalAmount": 1299.99,
  "currency": "USD",
  "items": [{ "productID": "PROD-001", "quantity": 1, "unitPrice": 1299.99 }]
}"#;

fn order_json(id: &str, method: &str, lines: &[(&str, u32, &str)], total: &str) -> String {
    let items: Vec<Value> = lines
        .iter()
        .map(|(p, q, price)| serde_json::json!({"productID": p, "quantity": q, "unitPrice": serde_json::from_str::<Value>(price).unwrap()}))
        .collect();
    serde_json::json!({"id": id, "customerID": "CUST-9", "paymentMethod": method,
                       "totalAmount": serde_json::from_str::<Value>(total).unwrap(), "items": items})
    .to_string()
}

async fn exists(h: &Harness, id: &str) -> bool {
    h.client
        .describe(&OrderId::parse(id).unwrap())
        .await
        .unwrap()
        .is_some()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_seed_example_is_created_watched_and_completes() {
    let h = Harness::new().await;
    h.add_product("PROD-001", "1299.99", 3).await;
    let _worker = h.spawn_worker(&[]);
    let (_dir, file) = write_temp("order.json", SEED_ORDER);
    h.cli()
        .args(["order", "create", "--watch", "--file"])
        .arg(&file)
        .assert()
        .success()
        .stdout(
            contains("ORD-1001 submitted")
                .and(contains("ORD-1001 COMPLETED"))
                .and(contains("\u{1b}[").not()),
        );
    assert_eq!(h.stock("PROD-001").await, 2);
    // The same order again: nothing new, exit 0, says so.
    h.cli()
        .args(["order", "create", "--file"])
        .arg(&file)
        .assert()
        .success()
        .stdout(contains("already exists (COMPLETED)"));
    assert_eq!(
        h.payments(&OrderId::parse("ORD-1001").unwrap()).await.len(),
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn money_is_exact_to_the_cent() {
    let h = Harness::new().await;
    h.add_product("P-TENTH", "0.10", 10).await;
    h.add_product("P-FIFTH", "0.20", 10).await;
    let _worker = h.spawn_worker(&[]);
    let exact = order_json(
        "ORD-CENTS",
        "card",
        &[("P-TENTH", 1, "0.10"), ("P-FIFTH", 1, "0.20")],
        "0.3",
    );
    let (_dir, file) = write_temp("cents.json", &exact);
    h.cli()
        .args(["order", "create", "--watch", "--file"])
        .arg(&file)
        .assert()
        .success();
    assert_eq!(
        h.payments(&OrderId::parse("ORD-CENTS").unwrap()).await,
        [("CAPTURED".into(), "0.30".into())]
    );

    let too_fine = order_json("ORD-MILLS", "card", &[("P-TENTH", 1, "0.105")], "0.105");
    let (_dir, file) = write_temp("mills.json", &too_fine);
    h.cli()
        .args(["order", "create", "--file"])
        .arg(&file)
        .assert()
        .code(2)
        .stderr(contains(
            "order 1 (ORD-MILLS): items[0].unitPrice: 0.105 has more than 2 decimal places",
        ));
    assert!(!exists(&h, "ORD-MILLS").await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_input_exits_2_naming_the_field_and_starts_nothing() {
    let h = Harness::new().await;
    let good = |id: &str| order_json(id, "card", &[("P-1", 1, "1.00")], "1.00");
    let cases = [
        (
            "ORD-BAD-JSON",
            r#"{"id": "ORD-BAD-JSON", "customerID": "C", "#.to_owned(),
            "malformed JSON at line 1",
        ),
        (
            "ORD-BAD-FIELD",
            good("ORD-BAD-FIELD").replace("\"paymentMethod\"", "\"colour\":1,\"paymentMethod\""),
            "colour: unknown field",
        ),
        (
            "ORD-BAD-ZERO",
            order_json("ORD-BAD-ZERO", "card", &[("P-1", 0, "1.00")], "1.00"),
            "items[0].quantity: must be at least 1",
        ),
        (
            "ORD-BAD-NEG",
            order_json("ORD-BAD-NEG", "card", &[("P-1", 1, "1.00")], "1.00")
                .replace("\"quantity\":1", "\"quantity\":-5"),
            "items[0].quantity: must be at least 1",
        ),
        (
            "ORD-BAD-HUGE",
            order_json("ORD-BAD-HUGE", "card", &[("P-1", 10001, "1.00")], "10001"),
            "items[0].quantity: must be at most 10000",
        ),
        (
            "ORD-BAD-CENTS",
            order_json("ORD-BAD-CENTS", "card", &[("P-1", 1, "1.001")], "1.001"),
            "more than 2 decimal places",
        ),
        (
            "ORD-BAD-TOTAL",
            order_json("ORD-BAD-TOTAL", "card", &[("P-1", 2, "1.00")], "1.00"),
            "totalAmount: is 1.00 but the items add up to 2.00",
        ),
        (
            "ORD-BAD-EMPTY",
            order_json("ORD-BAD-EMPTY", "card", &[], "1.00"),
            "items: must hold at least one item",
        ),
        (
            "ORD-BAD-DUP",
            order_json(
                "ORD-BAD-DUP",
                "card",
                &[("P-1", 1, "1.00"), ("P-1", 1, "1.00")],
                "2.00",
            ),
            "items[1].productID: P-1 appears twice",
        ),
        (
            "ORD-BAD-ID",
            order_json("ORD-BAD-ID", "card", &[("P 1", 1, "1.00")], "1.00"),
            "items[0].productID: ' ' is not allowed",
        ),
        (
            "ORD-BAD-TOKEN",
            order_json("ORD-BAD-TOKEN", "paypal", &[("P-1", 1, "1.00")], "1.00"),
            "paymentMethod: \"paypal\" is not one of: card",
        ),
    ];
    for (id, body, says) in &cases {
        let (_dir, file) = write_temp("bad.json", body);
        h.cli()
            .args(["order", "create", "--file"])
            .arg(&file)
            .assert()
            .code(2)
            .stderr(contains(*says).and(contains("bad.json")));
        assert!(!exists(&h, id).await, "{id} must not start");
    }
    // One bad order in a batch: none starts.
    let batch = format!("[{}, {}]", good("ORD-BATCH-OK"), cases[2].1);
    let (_dir, file) = write_temp("batch.json", &batch);
    h.cli()
        .args(["-o", "json", "order", "create", "--file"])
        .arg(&file)
        .assert()
        .code(2)
        .stderr(contains("order 2 (ORD-BAD-ZERO)").and(contains("\"exitCode\":2")));
    assert!(!exists(&h, "ORD-BATCH-OK").await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exit_codes_come_from_real_situations() {
    let h = Harness::new().await;
    h.add_product("P-1", "5.00", 10).await;
    let _worker = h.spawn_worker(&[
        "--retry-max-attempts",
        "100",
        "--retry-initial-interval",
        "200ms",
        "--retry-max-interval",
        "500ms",
    ]);
    let create = |id: &str, method: &str| {
        let (dir, file) = write_temp(
            "o.json",
            &order_json(id, method, &[("P-1", 1, "5.00")], "5.00"),
        );
        h.cli()
            .args(["order", "create", "--file"])
            .arg(&file)
            .assert()
            .success();
        drop(dir);
    };
    // 0: completed.
    create("ORD-X0", "card");
    h.cli()
        .args(["order", "watch", "ORD-X0"])
        .assert()
        .code(0)
        .stdout(contains("ORD-X0 COMPLETED"));
    // 3: not found.
    h.cli()
        .args(["order", "status", "ORD-NOWHERE"])
        .assert()
        .code(3)
        .stderr(contains("order \"ORD-NOWHERE\" was not found"));
    h.cli()
        .args(["order", "watch", "ORD-X0", "ORD-NOWHERE"])
        .assert()
        .code(3);
    // 4: failed (worst outcome wins over the completed one).
    create("ORD-X4", "card_declined");
    h.cli()
        .args(["order", "watch", "ORD-X0", "ORD-X4"])
        .assert()
        .code(4)
        .stdout(contains("PAYMENT_DECLINED"));
    // 7: the gateway keeps failing; watch gives up, the order goes on.
    create("ORD-X5", "card_unavailable");
    h.cli()
        .args(["order", "watch", "ORD-X5", "--timeout", "1s"])
        .assert()
        .code(7)
        .stderr(contains("--timeout 1s elapsed"));
    // 5: cancelled while retrying.
    h.cli()
        .args(["order", "cancel", "ORD-X5", "--reason", "test"])
        .assert()
        .code(0)
        .stdout(contains("ORD-X5 CANCELLED (test)"));
    h.cli().args(["order", "watch", "ORD-X5"]).assert().code(5);
    h.cli()
        .args(["order", "cancel", "ORD-X5"])
        .assert()
        .code(0)
        .stdout(contains("already cancelled"));
    // 6: cancel refused after completion; resubmitted with different content.
    h.cli()
        .args(["order", "cancel", "ORD-X0"])
        .assert()
        .code(6)
        .stderr(contains("refused"));
    let (_dir, file) = write_temp(
        "o.json",
        &order_json("ORD-X0", "card", &[("P-1", 2, "5.00")], "10.00"),
    );
    h.cli()
        .args(["order", "create", "--file"])
        .arg(&file)
        .assert()
        .code(6)
        .stderr(contains("different content"));
    // 8: Temporal unreachable.
    h.cli()
        .args([
            "order",
            "status",
            "ORD-X0",
            "--address",
            &format!("127.0.0.1:{}", closed_port()),
        ])
        .assert()
        .code(8);
    assert_eq!(h.stock("P-1").await, 9, "only ORD-X0 took stock");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_json_lines_parse_and_end_terminal() {
    let h = Harness::new().await;
    h.add_product("P-1", "5.00", 10).await;
    let _worker = h.spawn_worker(&["--retry-initial-interval", "300ms"]);
    let (_dir, file) = write_temp(
        "o.json",
        &order_json("ORD-FLAKY-W", "card_flaky", &[("P-1", 1, "5.00")], "5.00"),
    );
    let out = h
        .cli()
        .args(["-o", "json", "order", "create", "--watch", "--file"])
        .arg(&file)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).expect("every line is JSON"))
        .collect();
    assert_eq!(lines[0]["orderId"], "ORD-FLAKY-W");
    assert_eq!(lines[0]["status"], "PENDING");
    assert_eq!(lines.last().unwrap()["status"], "COMPLETED");
    assert!(
        lines.iter().any(|l| l["stepState"] == "retrying"),
        "the retries show: {text}"
    );
    assert!(!text.contains('\u{1b}'));

    // Plain lines when piped, no escape codes, even with --color auto.
    let plain = h
        .cli()
        .args(["order", "watch", "ORD-FLAKY-W"])
        .output()
        .unwrap();
    let plain = String::from_utf8(plain.stdout).unwrap();
    assert_eq!(plain.trim(), "ORD-FLAKY-W COMPLETED");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_works_live_finished_and_without_a_worker() {
    let h = Harness::new().await;
    h.add_product("P-1", "5.00", 10).await;
    let worker = h.spawn_worker(&[
        "--retry-max-attempts",
        "100",
        "--retry-initial-interval",
        "200ms",
        "--retry-max-interval",
        "500ms",
    ]);
    for (id, method) in [("ORD-S-DONE", "card"), ("ORD-S-RUN", "card_unavailable")] {
        let (_dir, file) = write_temp(
            "o.json",
            &order_json(id, method, &[("P-1", 1, "5.00")], "5.00"),
        );
        h.cli()
            .args(["order", "create", "--file"])
            .arg(&file)
            .assert()
            .success();
    }
    h.cli()
        .args(["order", "watch", "ORD-S-DONE"])
        .assert()
        .success();
    let live = stdout_json(
        &h.cli()
            .args(["order", "status", "ORD-S-RUN", "-o", "json"])
            .output()
            .unwrap(),
    );
    assert_eq!(live["source"], "query");
    assert_eq!(live["status"], "INVENTORY_RESERVED");
    assert_eq!(live["step"], "process_payment");
    assert!(
        live["uiUrl"]
            .as_str()
            .unwrap()
            .ends_with("/namespaces/default/workflows/ORD-S-RUN")
    );
    drop(worker);

    // No worker: the finished order from its result, the running one from history.
    let done = stdout_json(
        &h.cli()
            .args(["order", "status", "ORD-S-DONE", "-o", "json"])
            .output()
            .unwrap(),
    );
    assert_eq!(
        (done["status"].as_str(), done["source"].as_str()),
        (Some("COMPLETED"), Some("result"))
    );
    assert_eq!(done["totalAmount"], "5.00");
    assert_eq!(done["items"][0]["unitPrice"], "5.00");
    assert_eq!(done["steps"][2]["name"], "process_payment");
    let running = stdout_json(
        &h.cli()
            .args(["order", "status", "ORD-S-RUN", "-o", "json"])
            .output()
            .unwrap(),
    );
    assert_eq!(
        (running["status"].as_str(), running["source"].as_str()),
        (Some("INVENTORY_RESERVED"), Some("history"))
    );
    h.cli()
        .args(["order", "status", "ORD-S-RUN"])
        .assert()
        .success()
        .stdout(contains("no worker answered"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_shows_newest_first_and_filters() {
    let h = Harness::new().await;
    h.add_product("P-1", "5.00", 10).await;
    let _worker = h.spawn_worker(&[]);
    for (id, method) in [
        ("ORD-L1", "card"),
        ("ORD-L2", "card_declined"),
        ("ORD-L3", "card"),
    ] {
        let (_dir, file) = write_temp(
            "o.json",
            &order_json(id, method, &[("P-1", 1, "5.00")], "5.00"),
        );
        let expected = if method == "card" { 0 } else { 4 };
        h.cli()
            .args(["order", "create", "--watch", "--file"])
            .arg(&file)
            .assert()
            .code(expected);
    }
    let all = stdout_json(
        &h.cli()
            .args(["order", "list", "-o", "json"])
            .output()
            .unwrap(),
    );
    let ids: Vec<&str> = all
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["orderId"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["ORD-L3", "ORD-L2", "ORD-L1"]);
    assert_eq!(all[1]["failureCode"], "PAYMENT_DECLINED");
    assert_eq!(all[0]["totalAmount"], "5.00");
    let failed = stdout_json(
        &h.cli()
            .args(["order", "list", "--status", "failed", "-o", "json"])
            .output()
            .unwrap(),
    );
    assert_eq!(failed.as_array().unwrap().len(), 1);
    let one = stdout_json(
        &h.cli()
            .args([
                "order",
                "list",
                "--limit",
                "1",
                "--customer",
                "CUST-9",
                "-o",
                "json",
            ])
            .output()
            .unwrap(),
    );
    assert_eq!(one.as_array().unwrap().len(), 1);
    h.cli()
        .args(["order", "list"])
        .assert()
        .success()
        .stdout(contains("ORDER").and(contains("ORD-L2")));

    // Pages: a full page says where the next starts; --after resumes there,
    // ties in creation time broken by order ID, with the same filters.
    let ids = |args: &[&str]| -> Vec<String> {
        let out = h
            .cli()
            .args(["order", "list", "-o", "json"])
            .args(args)
            .output()
            .unwrap();
        stdout_json(&out)
            .as_array()
            .unwrap()
            .iter()
            .map(|o| o["orderId"].as_str().unwrap().to_owned())
            .collect()
    };
    h.cli()
        .args(["order", "list", "--limit", "2"])
        .assert()
        .success()
        .stderr(contains(
            "showing 2 of 3; use --limit for more at once, or --after ORD-L2 for the next page",
        ));
    h.cli()
        .args(["order", "list", "--limit", "1", "--after", "ORD-L3"])
        .assert()
        .success()
        .stderr(contains("showing 1 of 2 after ORD-L3;"));
    h.cli()
        .args(["order", "list", "--limit", "3"])
        .assert()
        .success()
        .stderr(contains("showing").not());
    assert_eq!(ids(&["--after", "ORD-L2"]), ["ORD-L1"]);
    assert_eq!(ids(&["--after", "ORD-L1"]), Vec::<String>::new());
    assert_eq!(
        ids(&["--after", "ORD-L3", "--status", "COMPLETED"]),
        ["ORD-L1"]
    );
    sqlx::query("UPDATE orders SET created_at = '2026-01-01T00:00:00Z'")
        .execute(&h.db.pool)
        .await
        .unwrap();
    assert_eq!(ids(&["--limit", "1"]), ["ORD-L3"]);
    assert_eq!(ids(&["--after", "ORD-L3", "--limit", "1"]), ["ORD-L2"]);
    assert_eq!(ids(&["--after", "ORD-L2"]), ["ORD-L1"]);
    h.cli()
        .args(["order", "list", "--after", "ORD-NONE"])
        .assert()
        .code(3)
        .stderr(contains("no such order"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dry_run_validates_and_submits_nothing() {
    let h = Harness::new().await;
    let (_dir, file) = write_temp(
        "o.json",
        &order_json("ORD-DRY", "card", &[("P-1", 1, "5.00")], "5"),
    );
    let out = h
        .cli()
        .args(["order", "create", "--dry-run", "-o", "json", "--file"])
        .arg(&file)
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_eq!(stdout_json(&out)["totalAmount"], "5.00");
    assert!(!exists(&h, "ORD-DRY").await);
}

/// Snapshots of what people read: help texts and a finished order's card.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshots_of_help_and_the_status_card() {
    for command in ["create", "status", "watch", "cancel", "list"] {
        let out = crate::support::orderflow()
            .args(["order", command, "--help"])
            .output()
            .unwrap();
        insta::assert_snapshot!(
            format!("help_order_{command}"),
            String::from_utf8(out.stdout).unwrap()
        );
    }
    let h = Harness::new().await;
    h.add_product("PROD-001", "1299.99", 3).await;
    h.add_product("PROD-002", "24.50", 3).await;
    let _worker = h.spawn_worker(&[]);
    let body = order_json(
        "ORD-CARD",
        "card_declined",
        &[("PROD-001", 1, "1299.99"), ("PROD-002", 2, "24.50")],
        "1348.99",
    );
    let (_dir, file) = write_temp("o.json", &body);
    h.cli()
        .args(["order", "create", "--watch", "--file"])
        .arg(&file)
        .assert()
        .code(4);
    let card = h
        .cli()
        .args(["order", "status", "ORD-CARD"])
        .output()
        .unwrap();
    let card = String::from_utf8(card.stdout).unwrap();
    insta::with_settings!({filters => vec![
        (r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2} UTC", "[TIME]"),
        (r"http://127\.0\.0\.1:8233", "[UI]"),
    ]}, {
        insta::assert_snapshot!("status_card_failed_order", card);
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctrl_c_stops_watching_with_130_and_leaves_the_order_alone() {
    let h = Harness::new().await;
    h.add_product("P-1", "5.00", 10).await;
    let _worker = h.spawn_worker(&[
        "--retry-max-attempts",
        "100",
        "--retry-initial-interval",
        "200ms",
        "--retry-max-interval",
        "500ms",
    ]);
    let (_dir, file) = write_temp(
        "o.json",
        &order_json("ORD-INT", "card_unavailable", &[("P-1", 1, "5.00")], "5.00"),
    );
    h.cli()
        .args(["order", "create", "--file"])
        .arg(&file)
        .assert()
        .success();
    let mut watch = crate::support::command()
        .env("TEMPORAL_ADDRESS", crate::support::temporal_address())
        .args(["order", "watch", "ORD-INT"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until it has reported the order, then interrupt it.
    let mut first = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(watch.stdout.as_mut().unwrap()),
        &mut first,
    )
    .unwrap();
    assert!(first.starts_with("ORD-INT "), "{first}");
    assert!(
        std::process::Command::new("kill")
            .args(["-INT", &watch.id().to_string()])
            .status()
            .unwrap()
            .success()
    );
    let status = crate::support::stack::eventually(
        "watch to exit",
        std::time::Duration::from_secs(30),
        || {
            let status = watch.try_wait().unwrap();
            async move { status }
        },
    )
    .await;
    assert_eq!(status.code(), Some(130));
    let live = stdout_json(
        &h.cli()
            .args(["order", "status", "ORD-INT", "-o", "json"])
            .output()
            .unwrap(),
    );
    assert_eq!(live["status"], "INVENTORY_RESERVED", "the order goes on");
}

#[tokio::test]
async fn create_with_max_in_flight_never_runs_more_than_that_many_at_once() {
    let h = Harness::new().await;
    h.add_product("P-1", "5.00", 100).await;
    let orders: Vec<Value> = (0..24)
        .map(|i| {
            serde_json::from_str(&order_json(
                &format!("ORD-MIF-{i:02}"),
                "card",
                &[("P-1", 1, "5.00")],
                "5.00",
            ))
            .unwrap()
        })
        .collect();
    let (_dir, file) = write_temp("orders.json", &Value::Array(orders).to_string());
    let _worker = h.spawn_worker(&[]);
    h.cli()
        .args([
            "order",
            "create",
            "--max-in-flight",
            "3",
            "--rate",
            "200/s",
            "--file",
        ])
        .arg(&file)
        .assert()
        .success()
        .stderr(contains("24 submitted"));
    // Each order's life, from its start to its ending as the database
    // recorded it: the next order starts only after one has ended.
    let listed = h
        .cli()
        .args(["order", "list", "--limit", "100", "-o", "json"])
        .output()
        .unwrap();
    let mut events: Vec<(chrono::DateTime<chrono::Utc>, i32)> = Vec::new();
    let mut ended = 0;
    for o in stdout_json(&listed).as_array().unwrap() {
        let at = |field: &str| {
            o[field]
                .as_str()
                .unwrap()
                .parse::<chrono::DateTime<chrono::Utc>>()
                .unwrap()
        };
        events.push((at("createdAt"), 1));
        if o["status"] == "COMPLETED" {
            ended += 1;
            events.push((at("updatedAt"), -1));
        }
    }
    // All but the last three have certainly ended (each made room for one).
    assert!(ended >= 21, "{ended} ended");
    events.sort();
    let (mut running, mut most) = (0, 0);
    for (_, change) in events {
        running += change;
        most = most.max(running);
    }
    assert!(most <= 3, "{most} orders ran at once");
    assert!(
        most >= 2,
        "the orders never overlapped: the check would prove nothing"
    );
}
