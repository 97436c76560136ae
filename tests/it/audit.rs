//! `orderflow audit` against a database broken on purpose, one way per
//! check, on the real stack: each problem found and named, and exit 9.
//! (A clean run after each fault scenario: `Harness::assert_audit_clean`.)

use std::time::Duration;

use orderflow::domain::{OrderStatus, PaymentMethod};
use serde_json::Value;

use crate::support::stack::{Harness, eventually, order};
use crate::support::stdout_json;

const WAIT: Duration = Duration::from_secs(60);

/// `(check, subject)` of every problem an `audit -o json` reported.
fn found(report: &Value) -> Vec<(String, String)> {
    let mut found: Vec<(String, String)> = report["problems"]
        .as_array()
        .expect("problems")
        .iter()
        .map(|p| {
            let subject = p["orderID"].as_str().or(p["productID"].as_str()).unwrap();
            (p["check"].as_str().unwrap().to_owned(), subject.to_owned())
        })
        .collect();
    found.sort();
    found
}

fn pair(check: &str, subject: &str) -> (String, String) {
    (check.to_owned(), subject.to_owned())
}

async fn sql(h: &Harness, statements: &str) {
    sqlx::raw_sql(statements)
        .execute(&h.db.pool)
        .await
        .unwrap_or_else(|e| panic!("{statements}: {e}"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_finds_each_broken_promise_and_names_it() {
    let h = Harness::new().await;
    h.add_product("P-1", "5.00", 100).await;
    // Slow retries: the order to cancel waits on its payment until it is.
    let _worker = h.spawn_worker(&[
        "--retry-initial-interval",
        "60s",
        "--retry-max-attempts",
        "100",
    ]);
    let ids = [
        "ORD-AUD-MISSING",
        "ORD-AUD-DOUBLE",
        "ORD-AUD-GONE",
        "ORD-AUD-FINE",
    ];
    let mut all: Vec<_> = ids
        .iter()
        .map(|id| order(id, PaymentMethod::Card, &[("P-1", 1, "5.00")]))
        .collect();
    all.push(order(
        "ORD-AUD-DECLINED",
        PaymentMethod::CardDeclined,
        &[("P-1", 2, "5.00")],
    ));
    let cancelled = order(
        "ORD-AUD-CANCELLED",
        PaymentMethod::CardUnavailable,
        &[("P-1", 3, "5.00")],
    );
    for o in all.iter().chain([&cancelled]) {
        h.submit(o).await;
    }
    eventually("the payment to wait for a retry", WAIT, || async {
        let view = h.client.status(cancelled.id()).await.ok()?;
        (view.status == OrderStatus::InventoryReserved).then_some(())
    })
    .await;
    h.client
        .signal_cancel(cancelled.id(), "customer asked")
        .await
        .unwrap();
    assert_eq!(
        h.client.outcome(cancelled.id()).await.unwrap().status,
        OrderStatus::Cancelled
    );
    for o in &all {
        let view = h.client.outcome(o.id()).await.unwrap();
        let expected = match o.payment_method() {
            PaymentMethod::CardDeclined => OrderStatus::Failed,
            _ => OrderStatus::Completed,
        };
        assert_eq!(view.status, expected, "{}: {:?}", o.id(), view.failure);
    }

    // Clean first: exit 0, every check named with no problem.
    let clean = h.cli().args(["audit", "--all"]).output().unwrap();
    let text = String::from_utf8_lossy(&clean.stdout);
    assert_eq!(clean.status.code(), Some(0), "{clean:?}");
    assert!(
        text.contains("clean: checked 6 orders (all of them), 6 workflows, 1 products"),
        "{text}"
    );
    for check in [
        "money",
        "stock",
        "notice",
        "no-workflow",
        "no-row",
        "disagree",
        "stuck",
    ] {
        assert!(
            text.contains(check),
            "{check} missing from the summary:\n{text}"
        );
    }

    // Broken on purpose, one way per check.
    sql(
        &h,
        "UPDATE payments SET status = 'REFUNDED', refunded_at = now()
          WHERE order_id = 'ORD-AUD-MISSING';
         DROP INDEX payments_one_capture_per_order;
         INSERT INTO payments (order_id, idempotency_key, amount, currency, payment_method, status)
              VALUES ('ORD-AUD-DOUBLE', 'again', 5.00, 'USD', 'card', 'CAPTURED');
         UPDATE inventory_reservations SET status = 'RESERVED', released_at = NULL
          WHERE order_id = 'ORD-AUD-CANCELLED';
         UPDATE products SET stock = stock - 3 WHERE product_id = 'P-1';
         DELETE FROM orders WHERE order_id = 'ORD-AUD-GONE';
         BEGIN;
         INSERT INTO orders (order_id, customer_id, payment_method, total_amount, currency,
                             status, step, created_at, updated_at)
              VALUES ('ORD-AUD-GHOST', 'C-1', 'card', 5.00, 'USD', 'PAID', 'process_payment',
                      now() - interval '1 hour', now() - interval '1 hour');
         INSERT INTO order_items VALUES ('ORD-AUD-GHOST', 0, 'P-1', 1, 5.00);
         COMMIT;",
    )
    .await;

    let broken = h
        .cli()
        .args(["audit", "--all", "-o", "json"])
        .output()
        .unwrap();
    assert_eq!(broken.status.code(), Some(9), "{broken:?}");
    let report = stdout_json(&broken);
    assert_eq!(
        found(&report),
        vec![
            pair("money", "ORD-AUD-DOUBLE"),
            pair("money", "ORD-AUD-MISSING"),
            pair("no-row", "ORD-AUD-GONE"),
            pair("no-workflow", "ORD-AUD-GHOST"),
            pair("stock", "ORD-AUD-CANCELLED"),
            pair("stock", "P-1"),
        ],
        "{report:#}"
    );
    assert_eq!(report["clean"], false);
    assert_eq!(report["counts"]["money"], 2);
    let detail = |id: &str| {
        report["problems"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["orderID"] == id)
            .map(|p| p["detail"].as_str().unwrap().to_owned())
            .unwrap()
    };
    assert_eq!(
        detail("ORD-AUD-DOUBLE"),
        "COMPLETED with captures [5.00,5.00], expected one of 5.00"
    );
    assert_eq!(
        detail("ORD-AUD-CANCELLED"),
        "CANCELLED but still holds 1 reservation(s)"
    );
    assert!(
        detail("ORD-AUD-GONE").contains("ended COMPLETED, but the database has no row"),
        "{report:#}"
    );

    // Text and JSON Lines tell the same problems, a line each.
    let text = h.cli().args(["audit", "--all"]).output().unwrap();
    assert_eq!(text.status.code(), Some(9));
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(
        text.contains("ORD-AUD-GHOST  no-workflow  recorded as PAID, but namespace default has no workflow ORD-AUD-GHOST"),
        "{text}"
    );
    assert!(text.contains("6 problem(s); checked 6 orders"), "{text}");
    let lines = h
        .cli()
        .args(["audit", "--all", "-o", "jsonl"])
        .output()
        .unwrap();
    let records: Vec<Value> = String::from_utf8_lossy(&lines.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(records.len(), 7, "{records:?}");
    assert!(records[..6].iter().all(|r| r["type"] == "problem"));
    assert_eq!(records[6]["type"], "summary");
    assert!(records[6].get("problems").is_none());

    // Without Temporal: what PostgreSQL alone shows.
    let local = h
        .cli()
        .args(["audit", "--all", "--database-only", "-o", "json"])
        .output()
        .unwrap();
    assert_eq!(local.status.code(), Some(9));
    let report = stdout_json(&local);
    assert_eq!(
        found(&report),
        vec![
            pair("money", "ORD-AUD-DOUBLE"),
            pair("money", "ORD-AUD-MISSING"),
            pair("stock", "ORD-AUD-CANCELLED"),
            pair("stock", "P-1"),
        ]
    );
    assert_eq!(report["temporal"], false);
    assert!(report["counts"].get("no-row").is_none(), "{report:#}");

    // --since leaves the older order out.
    let recent = h
        .cli()
        .args(["audit", "--since", "30m", "--database-only", "-o", "json"])
        .output()
        .unwrap();
    assert_eq!(stdout_json(&recent)["checked"]["orders"], 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_order_no_worker_takes_is_stuck_and_says_why() {
    let h = Harness::new().await;
    h.add_product("P-1", "5.00", 100).await;
    let stuck = order("ORD-AUD-STUCK", PaymentMethod::Card, &[("P-1", 1, "5.00")]);
    h.submit(&stuck).await;
    // Young, it is not stuck yet.
    h.cli().args(["audit"]).assert().success();

    let report = eventually("the order to count as stuck", WAIT, || async {
        let out = h
            .cli()
            .args(["audit", "--stuck-after", "1s", "-o", "json"])
            .output()
            .unwrap();
        (out.status.code() == Some(9)).then(|| stdout_json(&out))
    })
    .await;
    assert_eq!(found(&report), vec![pair("stuck", "ORD-AUD-STUCK")]);
    let detail = report["problems"][0]["detail"].as_str().unwrap();
    assert!(
        detail.starts_with("PENDING, not ended ")
            && detail.contains("no worker polls task queue test-"),
        "{detail}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stuck_order_with_a_worker_says_which_step_retries_and_why() {
    let h = Harness::new().await;
    h.add_product("P-1", "5.00", 100).await;
    let _worker = h.spawn_worker(&[
        "--retry-initial-interval",
        "60s",
        "--retry-max-attempts",
        "100",
    ]);
    let retrying = order(
        "ORD-AUD-RETRY",
        PaymentMethod::CardUnavailable,
        &[("P-1", 1, "5.00")],
    );
    h.submit(&retrying).await;
    let report = eventually("the order to count as stuck", WAIT, || async {
        let out = h
            .cli()
            .args(["audit", "--stuck-after", "1s", "-o", "json"])
            .output()
            .unwrap();
        (out.status.code() == Some(9)).then(|| stdout_json(&out))
    })
    .await;
    assert_eq!(found(&report), vec![pair("stuck", "ORD-AUD-RETRY")]);
    let detail = report["problems"][0]["detail"].as_str().unwrap();
    assert!(
        detail.contains("process_payment failed attempt 1, retrying: payment gateway unavailable"),
        "{detail}"
    );
}
