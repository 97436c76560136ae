//! The fault suite (SPEC §7): races, outages, a hung webhook, schema changes
//! under a running worker and crashes, each against real services and each
//! ending with the invariant checker (`support::invariants`).

use std::time::Duration;

use orderflow::domain::{Delivery, Order, OrderId, OrderStatus, PaymentMethod, Step};
use orderflow::stack::postgres::PostgresCluster;
use orderflow::stack::temporal_server::{DevServerOptions, TemporalDevServer};
use orderflow::workflow::state::{OrderView, StepState};

use crate::support::invariants::{Expectation, assert_kept};
use crate::support::stack::{Harness, WorkerProcess, eventually, order};
use crate::support::{TestDb, migrated_database, stdout_json, temporal_cli, write_temp};

const WAIT: Duration = Duration::from_secs(180);

async fn outcomes(h: &Harness, orders: &[Order]) -> Vec<OrderView> {
    futures::future::join_all(orders.iter().map(|o| async {
        tokio::time::timeout(WAIT, h.client.outcome(&o.id()))
            .await
            .unwrap_or_else(|_| panic!("{} did not end in time", o.id()))
            .unwrap_or_else(|e| panic!("{}: {e:#}", o.id()))
    }))
    .await
}

fn ids(orders: &[Order]) -> Vec<OrderId> {
    orders.iter().map(|o| o.id().clone()).collect()
}

async fn count(h: &Harness, sql: &str) -> i64 {
    sqlx::query_scalar(sql).fetch_one(&h.db.pool).await.unwrap()
}

/// Waits until at least `n` payments are captured.
async fn captured_at_least(h: &Harness, n: i64) {
    eventually(&format!("{n} captured payments"), WAIT, || async {
        (count(h, "SELECT count(*) FROM payments WHERE status = 'CAPTURED'").await >= n)
            .then_some(())
    })
    .await;
}

/// Orders of `prefix`-00… for one product at 5.00, cards alternating
/// between `card` and `card_flaky` when `flaky`.
fn orders(prefix: &str, n: usize, flaky: bool) -> Vec<Order> {
    (0..n)
        .map(|i| {
            let method = if flaky && i % 2 == 1 {
                PaymentMethod::CardFlaky
            } else {
                PaymentMethod::Card
            };
            order(
                &format!("{prefix}-{i:02}"),
                method,
                &[("P-1", 1 + (i as i64) % 3, "5.00")],
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancel_right_after_create_never_keeps_money_or_stock() {
    let h = Harness::new().await;
    h.add_product("P-1", "5.00", 1000).await;
    // Flaky cards are still paying (a reservation held) when some cancels land.
    let all = orders("ORD-RACE", 36, true);
    let _worker = h.spawn_worker(&[]);

    // The tightest race: the signal right behind the start, from a client.
    for o in &all[..20] {
        h.submit(o).await;
        let _ = h.client.signal_cancel(&o.id(), "changed my mind").await;
    }
    // The real binary, as a user would: `order create`, then `order cancel`.
    for o in &all[20..28] {
        let (_dir, file) = write_temp("order.json", &serde_json::to_string(o).unwrap());
        h.cli()
            .args(["order", "create", "--file"])
            .arg(&file)
            .assert()
            .success();
        // Exit 0 (cancelled) or 6 (it completed first): either is a kept promise.
        let cancel = h
            .cli()
            .args(["order", "cancel", o.id().as_str(), "--no-wait"])
            .output()
            .unwrap();
        assert!(
            matches!(cancel.status.code(), Some(0 | 6)),
            "{}",
            String::from_utf8_lossy(&cancel.stderr)
        );
    }
    // Temporal's own cancellation, from the Temporal CLI.
    for o in &all[28..] {
        h.submit(o).await;
        temporal_cli(
            &h.address,
            &["workflow", "cancel", "--workflow-id", o.id().as_str()],
        );
    }

    let views = outcomes(&h, &all).await;
    let cancelled = views
        .iter()
        .filter(|v| v.status == OrderStatus::Cancelled)
        .count();
    assert!(cancelled > 0, "some cancels must win the race");
    assert_kept(
        &h.db.pool,
        &h.client,
        &Expectation {
            orders: &ids(&all),
            stock_before: &[("P-1", 1000)],
        },
    )
    .await;
    h.assert_audit_clean().await;
}

/// A migrated database on a cluster of the test's own, which it may stop.
async fn private_database(cluster: &PostgresCluster) -> TestDb {
    let url = cluster.create_database("orderflow").await.unwrap();
    crate::support::orderflow()
        .args(["db", "migrate", "--database-url", &url])
        .assert()
        .success();
    let pool = sqlx::PgPool::connect(&url).await.unwrap();
    TestDb { url, pool }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orders_wait_out_a_postgres_outage_and_complete() {
    let dir = tempfile::tempdir().unwrap();
    let cluster = PostgresCluster::start(dir.path(), false).await.unwrap();
    let port = cluster.port;
    let h = Harness::on(
        private_database(&cluster).await,
        &crate::support::temporal_address(),
    )
    .await;
    h.add_product("P-1", "5.00", 1000).await;
    let worker = h.spawn_worker(&[
        "--retry-initial-interval",
        "300ms",
        "--retry-max-interval",
        "1s",
    ]);

    // Flaky cards are between attempts when the database goes away.
    let before = orders("ORD-OUT-A", 12, true);
    for o in &before {
        h.submit(o).await;
    }
    captured_at_least(&h, 2).await;
    cluster.stop();

    // Submitted while the database is down.
    let during = orders("ORD-OUT-B", 8, true);
    for o in &during {
        h.submit(o).await;
    }
    let waiting = eventually("a step waiting for the database", WAIT, || async {
        for o in &during {
            if let Ok(view) = h.client.status(&o.id()).await
                && view.steps.iter().any(|s| s.state == StepState::Waiting)
            {
                return Some(o.id().clone());
            }
        }
        None
    })
    .await;
    let status = h
        .cli()
        .args(["order", "status", waiting.as_str()])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&status.stdout);
    assert!(
        text.contains("waiting for the database"),
        "order status says what it waits for:\n{text}"
    );

    // The worker said so, once, at its default level.
    let log = worker.log();
    assert_eq!(
        log.matches("the database is unreachable").count(),
        1,
        "{log}"
    );

    let cluster = PostgresCluster::start_at(dir.path(), Some(port), false)
        .await
        .unwrap();
    let all: Vec<Order> = before.iter().chain(&during).cloned().collect();
    for view in outcomes(&h, &all).await {
        assert_eq!(
            view.status,
            OrderStatus::Completed,
            "{}: {:?}",
            view.order_id,
            view.failure
        );
        assert!(
            view.step_view(Step::ProcessPayment).attempts <= 3,
            "{}: an outage is not a payment attempt",
            view.order_id
        );
    }
    // Listed like any other order.
    let listed = h
        .cli()
        .args(["order", "list", "--limit", "100", "-o", "json"])
        .output()
        .unwrap();
    let listed = crate::support::stdout_json(&listed);
    for o in &all {
        assert!(
            listed
                .as_array()
                .unwrap()
                .iter()
                .any(|l| l["orderId"] == o.id().as_str()),
            "{} is listed",
            o.id()
        );
    }
    assert_kept(
        &h.db.pool,
        &h.client,
        &Expectation {
            orders: &ids(&all),
            stock_before: &[("P-1", 1000)],
        },
    )
    .await;
    h.assert_audit_clean().await;
    let log = worker.log();
    assert!(log.contains("the database answers again"), "{log}");
    cluster.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webhook_that_never_answers_costs_time_not_connections() {
    // Accepts every connection and never answers.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/notify", listener.local_addr().unwrap());
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    let h = Harness::new().await;
    h.add_product("P-1", "5.00", 1000).await;
    let _worker = h.spawn_worker(&[
        "--notify-webhook",
        &url,
        "--notify-timeout",
        "300ms",
        "--db-max-connections",
        "2",
        "--retry-initial-interval",
        "100ms",
        "--retry-max-interval",
        "300ms",
    ]);
    let all = orders("ORD-HUNG", 64, false);
    for o in &all {
        h.submit(o).await;
    }
    for view in outcomes(&h, &all).await {
        // The requests went out and no answer came: the customer may have
        // the confirmation, and the order says so.
        assert_eq!(
            (view.status, view.notified, view.notification),
            (OrderStatus::Completed, Some(false), Some(Delivery::Unknown)),
            "{}: {:?}",
            view.order_id,
            view.failure
        );
    }
    let unknown_notices = count(
        &h,
        "SELECT count(*) FROM notifications WHERE kind = 'CONFIRMATION' AND status = 'UNKNOWN'
            AND attempts = 3 AND last_error LIKE '%no answer within 300ms; it may have reached the receiver'",
    )
    .await;
    assert_eq!(unknown_notices, 64);
    assert_kept(
        &h.db.pool,
        &h.client,
        &Expectation {
            orders: &ids(&all),
            stock_before: &[("P-1", 1000)],
        },
    )
    .await;
    h.assert_audit_clean().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_running_worker_survives_db_reset_and_migrations() {
    let h = Harness::new().await;
    h.add_product("P-1", "5.00", 1000).await;
    let _worker = h.spawn_worker(&["--retry-initial-interval", "200ms"]);
    // The worker's connections prepare their statements.
    let first = orders("ORD-SCHEMA-A", 4, false);
    for o in &first {
        h.submit(o).await;
    }
    for view in outcomes(&h, &first).await {
        assert_eq!(view.status, OrderStatus::Completed);
    }

    // Every table, type and function dropped and made anew.
    h.cli().args(["db", "reset", "--yes"]).assert().success();
    h.add_product("P-1", "5.00", 1000).await;
    let second = orders("ORD-SCHEMA-B", 4, true);
    for o in &second {
        h.submit(o).await;
    }
    for view in outcomes(&h, &second).await {
        assert_eq!(view.status, OrderStatus::Completed, "{:?}", view.failure);
    }

    // A migration that changes what a prepared statement returns.
    sqlx::query("ALTER TABLE payments ALTER COLUMN gateway_ref TYPE VARCHAR(200)")
        .execute(&h.db.pool)
        .await
        .unwrap();
    h.cli().args(["db", "migrate"]).assert().success();
    let third = orders("ORD-SCHEMA-C", 4, true);
    for o in &third {
        h.submit(o).await;
    }
    for view in outcomes(&h, &third).await {
        assert_eq!(view.status, OrderStatus::Completed, "{:?}", view.failure);
    }
    let since_reset: Vec<Order> = second.iter().chain(&third).cloned().collect();
    assert_kept(
        &h.db.pool,
        &h.client,
        &Expectation {
            orders: &ids(&since_reset),
            stock_before: &[("P-1", 1000)],
        },
    )
    .await;
    // `db reset` dropped the first orders' rows; their workflows remain.
    let audit = h
        .cli()
        .args(["audit", "--all", "-o", "json"])
        .output()
        .unwrap();
    assert_eq!(audit.status.code(), Some(9), "{audit:?}");
    let report = stdout_json(&audit);
    let mut rowless: Vec<(String, String)> = report["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["check"].as_str().unwrap().to_owned(),
                p["orderID"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    rowless.sort();
    let expected: Vec<(String, String)> = first
        .iter()
        .map(|o| ("no-row".to_owned(), o.id().to_string()))
        .collect();
    assert_eq!(rowless, expected, "{report:#}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_workers_killed_in_turn_finish_every_order_once() {
    let h = Harness::new().await;
    h.add_product("P-1", "5.00", 1000).await;
    let args = ["--retry-initial-interval", "300ms"];
    let mut workers: Vec<WorkerProcess> = (0..3).map(|_| h.spawn_worker(&args)).collect();
    let all = orders("ORD-KILL", 30, true);
    for o in &all {
        h.submit(o).await;
    }
    for round in 0..5 {
        captured_at_least(&h, 4 * (round as i64 + 1)).await;
        let victim = round % 3;
        workers[victim].child.kill().expect("SIGKILL a worker");
        workers[victim].child.wait().unwrap();
        workers[victim] = h.spawn_worker(&args);
    }
    for view in outcomes(&h, &all).await {
        assert_eq!(view.status, OrderStatus::Completed, "{:?}", view.failure);
    }
    assert_kept(
        &h.db.pool,
        &h.client,
        &Expectation {
            orders: &ids(&all),
            stock_before: &[("P-1", 1000)],
        },
    )
    .await;
    h.assert_audit_clean().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orders_finish_after_the_temporal_server_is_killed_and_restarted() {
    let dir = tempfile::tempdir().unwrap();
    let options = DevServerOptions {
        db_file: Some(dir.path().join("temporal.db")),
        ..DevServerOptions::default()
    };
    let server = TemporalDevServer::start(dir.path(), options.clone())
        .await
        .unwrap();
    let port = server.port;
    let h = Harness::on(migrated_database().await, &server.address()).await;
    h.add_product("P-1", "5.00", 1000).await;
    let _worker = h.spawn_worker(&["--retry-initial-interval", "1s"]);
    let all = orders("ORD-TMPRL", 20, true);
    for o in &all {
        h.submit(o).await;
    }
    captured_at_least(&h, 5).await;
    server.kill();
    eventually("the killed server's port to be free", WAIT, || async {
        std::net::TcpListener::bind(("127.0.0.1", port))
            .ok()
            .map(drop)
    })
    .await;
    let server = TemporalDevServer::start(
        dir.path(),
        DevServerOptions {
            preferred_port: Some(port),
            ..options
        },
    )
    .await
    .unwrap();
    assert_eq!(server.port, port, "the server came back where it was");
    for view in outcomes(&h, &all).await {
        assert_eq!(view.status, OrderStatus::Completed, "{:?}", view.failure);
    }
    assert_kept(
        &h.db.pool,
        &h.client,
        &Expectation {
            orders: &ids(&all),
            stock_before: &[("P-1", 1000)],
        },
    )
    .await;
    h.assert_audit_clean().await;
    server.stop();
}
