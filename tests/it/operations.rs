//! Operating a worker (SPEC §7, "Operations"): its metrics, health and
//! readiness, the orders' search attributes, and `orderflow doctor`.

use std::time::Duration;

use orderflow::domain::{
    Currency, CustomerId, Money, Order, OrderId, OrderLine, OrderStatus, PaymentMethod, ProductId,
    Quantity, Step,
};
use orderflow::stack::postgres::PostgresCluster;
use orderflow::workflow::state::StepState;

use crate::support::stack::{Harness, eventually, order};
use crate::support::{TestDb, closed_port, stdout_json, temporal_address};

const WAIT: Duration = Duration::from_secs(60);

/// An order of one product for `customer`.
fn order_for(id: &str, customer: &str, method: PaymentMethod) -> Order {
    let line = OrderLine {
        product_id: ProductId::parse("P-1").unwrap(),
        quantity: Quantity::parse(1).unwrap(),
        unit_price: Money::parse("5.00").unwrap(),
    };
    Order::new(
        OrderId::parse(id).unwrap(),
        CustomerId::parse(customer).unwrap(),
        None,
        method,
        line.unit_price,
        Currency::USD,
        vec![line],
    )
    .unwrap()
}

async fn get(url: &str) -> Option<(u16, String)> {
    let response = reqwest::get(url).await.ok()?;
    let status = response.status().as_u16();
    Some((status, response.text().await.ok()?))
}

/// The value of the first sample of `metric` whose labels include all of `labels`.
fn sample(text: &str, metric: &str, labels: &[&str]) -> Option<f64> {
    text.lines()
        .filter(|l| l.starts_with(metric) && labels.iter().all(|want| l.contains(want)))
        .find_map(|l| l.rsplit_once(' ')?.1.parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_what_the_orders_did() {
    let h = Harness::new().await;
    h.add_product("P-1", "5.00", 100).await;
    let port = closed_port();
    let base = format!("http://127.0.0.1:{port}");
    let _worker = h.spawn_worker(&[
        "--metrics-address",
        &format!("127.0.0.1:{port}"),
        "--retry-max-attempts",
        "50",
        "--retry-initial-interval",
        "200ms",
    ]);
    let completes = order("ORD-MET-OK", PaymentMethod::Card, &[("P-1", 1, "5.00")]);
    let declined = order(
        "ORD-MET-NO",
        PaymentMethod::CardDeclined,
        &[("P-1", 1, "5.00")],
    );
    let cancelled = order(
        "ORD-MET-CANCEL",
        PaymentMethod::CardUnavailable,
        &[("P-1", 1, "5.00")],
    );
    for o in [&completes, &declined, &cancelled] {
        h.submit(o).await;
    }
    eventually("the payment to retry", WAIT, || async {
        h.client
            .status(cancelled.id())
            .await
            .ok()
            .filter(|v| v.step_view(Step::ProcessPayment).state == StepState::Retrying)
    })
    .await;
    h.client
        .signal_cancel(cancelled.id(), "metrics test")
        .await
        .unwrap();
    for (o, status) in [
        (&completes, OrderStatus::Completed),
        (&declined, OrderStatus::Failed),
        (&cancelled, OrderStatus::Cancelled),
    ] {
        assert_eq!(h.client.outcome(o.id()).await.unwrap().status, status);
    }

    let (status, text) = get(&format!("{base}/metrics"))
        .await
        .expect("/metrics answers");
    assert_eq!(status, 200);
    let orders = |labels: &[&str]| sample(&text, "orderflow_orders_total", labels);
    assert_eq!(orders(&[r#"outcome="completed""#]), Some(1.0), "{text}");
    assert_eq!(
        orders(&[r#"outcome="failed""#, r#"code="PAYMENT_DECLINED""#]),
        Some(1.0),
        "{text}"
    );
    assert_eq!(orders(&[r#"outcome="cancelled""#]), Some(1.0), "{text}");
    assert_eq!(
        sample(
            &text,
            "orderflow_captured_cents_total",
            &[r#"currency="USD""#]
        ),
        Some(500.0)
    );
    assert!(
        sample(
            &text,
            "orderflow_step_attempts_total",
            &[r#"step="process_payment""#, r#"result="transient""#]
        )
        .is_some_and(|n| n >= 1.0),
        "{text}"
    );
    assert!(
        text.contains("orderflow_step_duration_seconds_bucket"),
        "{text}"
    );
    assert!(
        text.lines().any(|l| l.starts_with("temporal_")),
        "the SDK's own worker metrics are there too"
    );
    assert_eq!(get(&format!("{base}/healthz")).await.unwrap().0, 200);
    assert_eq!(get(&format!("{base}/readyz")).await.unwrap().0, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_follows_postgres_down_and_back() {
    let dir = tempfile::tempdir().unwrap();
    let cluster = PostgresCluster::start(dir.path(), false).await.unwrap();
    let pg_port = cluster.port;
    let url = cluster.create_database("orderflow").await.unwrap();
    crate::support::orderflow()
        .args(["db", "migrate", "--database-url", &url])
        .assert()
        .success();
    let pool = sqlx::PgPool::connect(&url).await.unwrap();
    let h = Harness::on(TestDb { url, pool }, &temporal_address()).await;
    let port = closed_port();
    let readyz = format!("http://127.0.0.1:{port}/readyz");
    let _worker = h.spawn_worker(&["--metrics-address", &format!("127.0.0.1:{port}")]);
    let ready = |want: u16| {
        let readyz = readyz.clone();
        move || {
            let readyz = readyz.clone();
            async move { get(&readyz).await.filter(|(status, _)| *status == want) }
        }
    };
    eventually("/readyz 200", WAIT, ready(200)).await;

    cluster.stop();
    let (_, reason) = eventually("/readyz 503", WAIT, ready(503)).await;
    assert!(reason.contains("PostgreSQL"), "{reason}");
    // Still alive: only readiness follows the database.
    assert_eq!(
        get(&format!("http://127.0.0.1:{port}/healthz"))
            .await
            .unwrap()
            .0,
        200
    );

    let cluster = PostgresCluster::start_at(dir.path(), Some(pg_port), false)
        .await
        .unwrap();
    eventually("/readyz 200 again", WAIT, ready(200)).await;
    cluster.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orders_are_found_by_status_and_customer_in_visibility() {
    // The shared dev server was started without any --search-attribute:
    // the worker registers them.
    let h = Harness::new().await;
    h.add_product("P-1", "5.00", 100).await;
    let _worker = h.spawn_worker(&[]);
    let orders = [
        order_for("ORD-VIS-A1", "CUST-VIS-A", PaymentMethod::Card),
        order_for("ORD-VIS-A2", "CUST-VIS-A", PaymentMethod::CardDeclined),
        order_for("ORD-VIS-B1", "CUST-VIS-B", PaymentMethod::CardDeclined),
    ];
    for o in &orders {
        h.submit(o).await;
    }
    for o in &orders {
        h.client.outcome(o.id()).await.unwrap();
    }
    let list = |query: &'static str| {
        let h = &h;
        move || async move {
            let out = h
                .cli()
                .args(["order", "list", "-o", "json", "--query", query])
                .output()
                .unwrap();
            assert_eq!(
                out.status.code(),
                Some(0),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            let mut ids: Vec<String> = stdout_json(&out)
                .as_array()
                .unwrap()
                .iter()
                .map(|o| o["orderId"].as_str().unwrap().to_owned())
                .collect();
            ids.sort();
            Some(ids)
        }
    };
    let by = |query, want: &'static [&'static str]| {
        let list = list(query);
        async move {
            eventually(query, WAIT, || {
                let listed = list();
                async move { listed.await.filter(|ids| ids == want) }
            })
            .await
        }
    };
    by(r#"CustomerId="CUST-VIS-A""#, &["ORD-VIS-A1", "ORD-VIS-A2"]).await;
    by(
        r#"OrderStatus="FAILED" AND CustomerId="CUST-VIS-A""#,
        &["ORD-VIS-A2"],
    )
    .await;
    by(
        r#"OrderStatus="COMPLETED" AND CustomerId IN ("CUST-VIS-A", "CUST-VIS-B")"#,
        &["ORD-VIS-A1"],
    )
    .await;
    by(
        r#"FailureCode="PAYMENT_DECLINED" AND CustomerId="CUST-VIS-B""#,
        &["ORD-VIS-B1"],
    )
    .await;
}

/// `orderflow doctor -o json` for this harness: its exit code and failing checks.
fn doctor(h: &Harness, extra: &[&str]) -> (Option<i32>, Vec<String>) {
    let out = h
        .cli()
        .args(["doctor", "-o", "json"])
        .args(extra)
        .output()
        .unwrap();
    let doc = stdout_json(&out);
    let failed = doc["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["ok"] == false)
        .map(|c| c["name"].as_str().unwrap().to_owned())
        .collect();
    (out.status.code(), failed)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn doctor_passes_on_a_working_setup() {
    let h = Harness::new().await;
    h.add_product("P-1", "5.00", 100).await;
    let _worker = h.spawn_worker(&[]);
    // Passing once the worker has polled and registered the attributes.
    let failing = eventually("doctor to pass", WAIT, || async {
        let (code, failed) = doctor(&h, &[]);
        (code == Some(0)).then_some(failed)
    })
    .await;
    assert!(failing.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn doctor_says_what_fails_and_exits_1() {
    // No worker on this queue, and no catalog.
    let h = Harness::new().await;
    let (code, failed) = doctor(&h, &[]);
    assert_eq!(code, Some(1));
    assert!(failed.contains(&"worker".to_owned()), "{failed:?}");
    assert!(failed.contains(&"catalog".to_owned()), "{failed:?}");
    assert!(!failed.contains(&"temporal".to_owned()), "{failed:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn doctor_exits_8_when_temporal_is_unreachable() {
    let h = Harness::new().await;
    let nowhere = format!("127.0.0.1:{}", closed_port());
    let (code, failed) = doctor(&h, &["--address", &nowhere, "--connect-timeout", "2s"]);
    assert_eq!(code, Some(8));
    assert!(failed.contains(&"temporal".to_owned()), "{failed:?}");
}
