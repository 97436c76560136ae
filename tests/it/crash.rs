//! The real worker binary: killed with SIGKILL mid-run and restarted, every
//! order still ends exactly once in its effects; SIGTERM drains and exits 0.

use std::process::Command;
use std::time::Duration;

use orderflow::domain::{OrderStatus, PaymentMethod};

use crate::support::stack::{Harness, eventually, order};

async fn count(h: &Harness, sql: &str) -> i64 {
    sqlx::query_scalar(sql).fetch_one(&h.db.pool).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_killed_mid_run_and_restarted_finishes_every_order_exactly_once() {
    let h = Harness::new().await;
    h.add_product("P-1", "1.00", 1000).await;
    h.add_product("P-2", "2.50", 1000).await;
    // Flaky cards sit in a retry backoff when the worker dies.
    let orders: Vec<_> = (0..20)
        .map(|i| {
            let method = if i % 2 == 0 {
                PaymentMethod::Card
            } else {
                PaymentMethod::CardFlaky
            };
            order(
                &format!("ORD-CRASH-{i:02}"),
                method,
                &[("P-1", 1 + i % 3, "1.00"), ("P-2", 2, "2.50")],
            )
        })
        .collect();

    let mut first = h.spawn_worker(&["--retry-initial-interval", "2s"]);
    for o in &orders {
        h.submit(o).await;
    }
    eventually("some orders paid", Duration::from_secs(60), || async {
        (count(
            &h,
            "SELECT count(*) FROM payments WHERE status = 'CAPTURED'",
        )
        .await
            >= 5)
            .then_some(())
    })
    .await;
    let finished_before = count(
        &h,
        "SELECT count(*) FROM orders WHERE status IN ('COMPLETED','FAILED','CANCELLED')",
    )
    .await;
    first.child.kill().expect("SIGKILL the worker");
    first.child.wait().unwrap();
    assert!(
        finished_before < 20,
        "the worker died with orders in flight"
    );

    let _second = h.spawn_worker(&["--retry-initial-interval", "200ms"]);
    for o in &orders {
        let view = tokio::time::timeout(Duration::from_secs(120), h.client.outcome(&o.id()))
            .await
            .expect("order finished after the restart")
            .unwrap();
        assert_eq!(view.status, OrderStatus::Completed, "{}", o.id());
        assert_eq!(
            h.payments(o.id()).await,
            [("CAPTURED".to_owned(), o.total_amount().to_string())],
            "{}",
            o.id()
        );
        assert_eq!(
            h.reservations(o.id()).await,
            [(0, "RESERVED".to_owned()), (1, "RESERVED".to_owned())],
            "{}",
            o.id()
        );
        assert_eq!(h.notifications(o.id()).await.len(), 1, "{}", o.id());
    }
    let p1_sold: i64 = orders
        .iter()
        .map(|o| i64::from(o.items()[0].quantity.get()))
        .sum();
    assert_eq!(i64::from(h.stock("P-1").await), 1000 - p1_sold);
    assert_eq!(h.stock("P-2").await, 1000 - 2 * 20);
    assert_eq!(count(&h, "SELECT count(*) FROM payments").await, 20);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_drains_and_exits_0() {
    let h = Harness::new().await;
    h.add_product("P-1", "1.00", 10).await;
    let mut worker = h.spawn_worker(&[]);
    let o = order("ORD-TERM", PaymentMethod::Card, &[("P-1", 1, "1.00")]);
    h.submit(&o).await;
    let view = tokio::time::timeout(Duration::from_secs(60), h.client.outcome(&o.id()))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(view.status, OrderStatus::Completed);

    let pid = worker.child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let status = eventually("the worker to exit", Duration::from_secs(30), || {
        let status = worker.child.try_wait().unwrap();
        async move { status }
    })
    .await;
    assert_eq!(status.code(), Some(0));
    let log = worker.log();
    assert!(log.contains("worker stopped"), "{log}");
    assert!(
        log.contains("ORD-TERM"),
        "the worker logs each step with the order ID:\n{log}"
    );
}
