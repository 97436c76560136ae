//! Acting on many orders at once: `order cancel` over a selection, on the
//! real stack, with the worker killed in the middle.

use std::io::BufRead as _;
use std::time::Duration;

use orderflow::domain::{OrderId, PaymentMethod};
use serde_json::Value;

use crate::support::invariants::{Expectation, assert_kept};
use crate::support::stack::{Harness, eventually, order};
use crate::support::stdout_json;

const WAIT: Duration = Duration::from_secs(120);
const ORDERS: usize = 500;

async fn count(h: &Harness, sql: &str) -> i64 {
    sqlx::query_scalar(sql).fetch_one(&h.db.pool).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bulk_cancel_of_500_orders_survives_a_killed_worker() {
    let _heavy = crate::support::HEAVY.lock().await;
    let h = Harness::new().await;
    h.add_product("P-1", "5.00", 10_000).await;
    // Payments that keep failing, retried slowly: the orders stay open.
    let slow = [
        "--retry-initial-interval",
        "60s",
        "--retry-max-attempts",
        "100",
    ];
    let mut worker = Some(h.spawn_worker(&slow));
    let all: Vec<_> = (0..ORDERS)
        .map(|i| {
            order(
                &format!("ORD-BULK-{i:03}"),
                PaymentMethod::CardUnavailable,
                &[("P-1", 1, "5.00")],
            )
        })
        .collect();
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), serde_json::to_vec(&all).unwrap()).unwrap();
    h.cli()
        .args(["order", "create", "--file"])
        .arg(file.path())
        .assert()
        .success();
    eventually("every order to reserve its stock", WAIT, || async {
        (count(
            &h,
            "SELECT count(*) FROM orders WHERE status = 'INVENTORY_RESERVED'",
        )
        .await
            == ORDERS as i64)
            .then_some(())
    })
    .await;

    // --dry-run lists them and changes nothing.
    let dry = h
        .cli()
        .args([
            "order",
            "cancel",
            "--status",
            "open",
            "--dry-run",
            "-o",
            "json",
        ])
        .output()
        .unwrap();
    assert_eq!(dry.status.code(), Some(0), "{dry:?}");
    let listed = stdout_json(&dry);
    assert_eq!(listed["count"], ORDERS);
    let mut dry_ids: Vec<&str> = listed["orders"]
        .as_array()
        .unwrap()
        .iter()
        .map(|id| id.as_str().unwrap())
        .collect();
    dry_ids.sort();
    assert_eq!(dry_ids.first(), Some(&"ORD-BULK-000"));
    assert_eq!(dry_ids.last(), Some(&"ORD-BULK-499"));
    // PENDING is only what no worker took: none here.
    let pending = h
        .cli()
        .args([
            "order",
            "cancel",
            "--status",
            "pending",
            "--dry-run",
            "-o",
            "json",
        ])
        .output()
        .unwrap();
    assert_eq!(stdout_json(&pending)["count"], 0, "{pending:?}");
    // --dry-run is for a selection: with an ID it is refused, not ignored.
    h.cli()
        .args(["order", "cancel", "ORD-BULK-000", "--dry-run"])
        .assert()
        .code(2);
    // Off a terminal, without --yes: refused.
    let unasked = h
        .cli()
        .args(["order", "cancel", "--status", "open"])
        .output()
        .unwrap();
    assert_eq!(unasked.status.code(), Some(2), "{unasked:?}");
    assert_eq!(
        count(&h, "SELECT count(*) FROM orders WHERE status = 'CANCELLED'").await,
        0,
        "--dry-run and a refusal change nothing"
    );

    // The bulk cancel, its worker killed after the first hundred.
    let mut bulk = crate::support::command()
        .env("TEMPORAL_ADDRESS", &h.address)
        .env("DATABASE_URL", &h.db.url)
        .env("ORDERFLOW_TASK_QUEUE", &h.settings.task_queue)
        .args([
            "order", "cancel", "--status", "open", "--yes", "--rate", "200/s",
        ])
        .args(["--reason", "gateway outage", "-o", "jsonl"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = bulk.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut lines = Vec::new();
        for line in std::io::BufReader::new(stdout).lines() {
            lines.push(line.unwrap());
        }
        lines
    });
    eventually("a hundred cancellations", WAIT, || async {
        (count(&h, "SELECT count(*) FROM orders WHERE status = 'CANCELLED'").await >= 100)
            .then_some(())
    })
    .await;
    let mut killed = worker.take().unwrap();
    killed.child.kill().unwrap();
    killed.child.wait().unwrap();
    let _worker = h.spawn_worker(&slow);
    let status = tokio::task::spawn_blocking(move || bulk.wait().unwrap())
        .await
        .unwrap();
    let lines = reader.join().unwrap();
    assert_eq!(status.code(), Some(0), "{lines:?}");

    // Every order acted on once, and the summary says so.
    let records: Vec<Value> = lines
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let (summary, orders) = records.split_last().unwrap();
    assert_eq!(summary["type"], "summary");
    assert_eq!(summary["total"], ORDERS);
    assert_eq!(summary["acted"], ORDERS);
    assert_eq!(summary["outcomes"]["cancelled"], ORDERS, "{summary}");
    let mut named: Vec<&str> = orders
        .iter()
        .map(|r| r["orderId"].as_str().unwrap())
        .collect();
    named.sort();
    named.dedup();
    assert_eq!(named.len(), ORDERS);
    assert!(
        orders
            .iter()
            .all(|r| r["type"] == "order" && r["status"] == "CANCELLED")
    );

    // Again: nothing open is left to cancel.
    h.cli()
        .args(["order", "cancel", "--status", "open", "--yes"])
        .assert()
        .success()
        .stderr(predicates::str::contains("no order matches the selection"));

    let ids: Vec<OrderId> = all.iter().map(|o| o.id().clone()).collect();
    assert_kept(
        &h.db.pool,
        &h.client,
        &Expectation {
            orders: &ids,
            stock_before: &[("P-1", 10_000)],
        },
    )
    .await;
    h.assert_audit_clean().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bulk_resubmit_of_500_failed_orders_starts_each_once() {
    let _heavy = crate::support::HEAVY.lock().await;
    let h = Harness::new().await;
    // Out of stock: every order fails, as a stock-out (or an outage) fails many.
    h.add_product("P-1", "5.00", 0).await;
    h.add_product("P-2", "7.00", 100).await;
    let mut worker = Some(h.spawn_worker(&[]));
    let mut all: Vec<_> = (0..ORDERS)
        .map(|i| {
            order(
                &format!("ORD-RE-{i:03}"),
                PaymentMethod::Card,
                &[("P-1", 1, "5.00")],
            )
        })
        .collect();
    // One whose price changes before it is resubmitted.
    all.push(order(
        "ORD-RE-PRICE",
        PaymentMethod::Card,
        &[("P-1", 1, "5.00"), ("P-2", 1, "7.00")],
    ));
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), serde_json::to_vec(&all).unwrap()).unwrap();
    h.cli()
        .args(["order", "create", "--file"])
        .arg(file.path())
        .assert()
        .success();
    eventually("every order to fail OUT_OF_STOCK", WAIT, || async {
        (count(
            &h,
            "SELECT count(*) FROM orders WHERE failure_code = 'OUT_OF_STOCK'",
        )
        .await
            == all.len() as i64)
            .then_some(())
    })
    .await;
    sqlx::query("UPDATE products SET stock = 10000 WHERE product_id = 'P-1'")
        .execute(&h.db.pool)
        .await
        .unwrap();
    sqlx::query("UPDATE products SET unit_price = 8.00 WHERE product_id = 'P-2'")
        .execute(&h.db.pool)
        .await
        .unwrap();

    // --dry-run: what FAILED, nothing started.
    let dry = h
        .cli()
        .args([
            "order",
            "resubmit",
            "--failure-code",
            "out_of_stock",
            "--dry-run",
            "-o",
            "json",
        ])
        .output()
        .unwrap();
    assert_eq!(dry.status.code(), Some(0), "{dry:?}");
    assert_eq!(stdout_json(&dry)["count"], all.len());
    assert_eq!(count(&h, "SELECT count(*) FROM resubmissions").await, 0);

    let mut bulk = crate::support::command()
        .env("TEMPORAL_ADDRESS", &h.address)
        .env("DATABASE_URL", &h.db.url)
        .env("ORDERFLOW_TASK_QUEUE", &h.settings.task_queue)
        .args([
            "order",
            "resubmit",
            "--failure-code",
            "OUT_OF_STOCK",
            "--yes",
        ])
        .args(["--rate", "300/s", "-o", "jsonl"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = bulk.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        std::io::BufReader::new(stdout)
            .lines()
            .map(|l| l.unwrap())
            .collect::<Vec<_>>()
    });
    eventually("a hundred resubmitted orders to complete", WAIT, || async {
        (count(&h, "SELECT count(*) FROM orders WHERE status = 'COMPLETED'").await >= 100)
            .then_some(())
    })
    .await;
    let mut killed = worker.take().unwrap();
    killed.child.kill().unwrap();
    killed.child.wait().unwrap();
    let _worker = h.spawn_worker(&[]);
    let status = tokio::task::spawn_blocking(move || bulk.wait().unwrap())
        .await
        .unwrap();
    let lines = reader.join().unwrap();
    // One could not be resubmitted: exit 6, the worst outcome.
    assert_eq!(status.code(), Some(6), "{lines:?}");
    let records: Vec<Value> = lines
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let (summary, orders) = records.split_last().unwrap();
    assert_eq!(summary["total"], all.len());
    assert_eq!(summary["outcomes"]["resubmitted"], ORDERS, "{summary}");
    assert_eq!(summary["outcomes"]["not valid"], 1, "{summary}");
    let price = orders
        .iter()
        .find(|r| r["orderId"] == "ORD-RE-PRICE")
        .unwrap();
    assert_eq!(
        price["detail"], "not resubmitted: P-2 now costs 8.00, not 7.00",
        "{price}"
    );
    let new_ids: Vec<OrderId> = orders
        .iter()
        .filter_map(|r| r["resubmittedAs"].as_str())
        .map(|id| OrderId::parse(id).unwrap())
        .collect();
    assert_eq!(new_ids.len(), ORDERS);
    assert!(new_ids.iter().any(|id| id.as_str() == "ORD-RE-007-R"));

    // Again: nothing new starts.
    let again = h
        .cli()
        .args([
            "order",
            "resubmit",
            "--failure-code",
            "OUT_OF_STOCK",
            "--yes",
            "-o",
            "json",
        ])
        .output()
        .unwrap();
    let again = stdout_json(&again);
    assert_eq!(again["outcomes"]["already resubmitted"], ORDERS, "{again}");
    assert!(again["outcomes"].get("resubmitted").is_none(), "{again}");

    // Linked both ways.
    let old = h
        .cli()
        .args(["order", "status", "ORD-RE-007", "-o", "json"])
        .output()
        .unwrap();
    assert_eq!(stdout_json(&old)["resubmittedAs"], "ORD-RE-007-R");
    h.cli()
        .args(["order", "status", "ORD-RE-007-R"])
        .assert()
        .success()
        .stdout(predicates::str::contains("Resubmitted from ORD-RE-007"));

    let mut ids: Vec<OrderId> = all.iter().map(|o| o.id().clone()).collect();
    ids.extend(new_ids);
    assert_kept(
        &h.db.pool,
        &h.client,
        &Expectation {
            orders: &ids,
            stock_before: &[("P-1", 10_000)],
        },
    )
    .await;
    assert_eq!(
        count(&h, "SELECT count(*) FROM orders WHERE status = 'COMPLETED'").await,
        ORDERS as i64
    );
    h.assert_audit_clean().await;
}
