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
