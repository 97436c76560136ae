//! The order workflow end to end: a real dev server, an in-process worker,
//! real activities on a real PostgreSQL.

use std::time::Duration;

use orderflow::domain::{FailureCode, OrderStatus, PaymentMethod, Step};
use orderflow::workflow::state::{OrderView, StepState};

use crate::support::stack::{Harness, eventually, fast_retry, order};
use crate::support::webhook::Webhook;

const WAIT: Duration = Duration::from_secs(60);

async fn outcome(h: &Harness, id: &orderflow::domain::OrderId) -> OrderView {
    tokio::time::timeout(WAIT, h.client.outcome(id))
        .await
        .expect("order ended in time")
        .unwrap()
}

/// Polls the live state until `pred` holds.
async fn status_until(
    h: &Harness,
    id: &orderflow::domain::OrderId,
    what: &str,
    pred: impl Fn(&OrderView) -> bool,
) -> OrderView {
    eventually(what, WAIT, || async {
        h.client.status(id).await.ok().filter(|v| pred(v))
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn happy_path_completes_with_exact_effects() {
    let h = Harness::new().await;
    h.add_product("PROD-001", "12.50", 10).await;
    h.add_product("PROD-002", "0.10", 100).await;
    let o = order(
        "ORD-HAPPY",
        PaymentMethod::Card,
        &[("PROD-001", 2, "12.50"), ("PROD-002", 3, "0.10")],
    );
    let view = h
        .with_worker(async {
            h.submit(&o).await;
            outcome(&h, o.id()).await
        })
        .await;

    assert_eq!(view.status, OrderStatus::Completed);
    assert_eq!(view.total_amount.unwrap().to_string(), "25.30");
    assert!(view.failure.is_none());
    assert_eq!(view.notified, Some(true));
    for step in &view.steps {
        assert_eq!(
            (step.state, step.attempts),
            (StepState::Done, 1),
            "{step:?}"
        );
    }
    assert_eq!(h.stock("PROD-001").await, 8);
    assert_eq!(h.stock("PROD-002").await, 97);
    assert_eq!(
        h.payments(o.id()).await,
        [("CAPTURED".to_owned(), "25.30".to_owned())]
    );
    assert_eq!(
        h.reservations(o.id()).await,
        [(0, "RESERVED".to_owned()), (1, "RESERVED".to_owned())]
    );
    assert_eq!(
        h.notifications(o.id()).await,
        [("CONFIRMATION".to_owned(), "SENT".to_owned(), 1)]
    );
    assert_eq!(
        h.recorded_status(o.id()).await,
        ("COMPLETED".to_owned(), None)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_failure_code_is_reached_through_its_real_cause() {
    let h = Harness::new().await;
    h.add_product("PROD-A", "10.00", 10).await;
    h.add_product("PROD-B", "20.00", 1).await;
    h.add_product("PROD-C", "20.00", 3).await;
    let cases = [
        // An unknown product on the second line: the first is not kept.
        (
            order(
                "ORD-UNKNOWN",
                PaymentMethod::Card,
                &[("PROD-A", 1, "10.00"), ("PROD-NOPE", 1, "1.00")],
            ),
            FailureCode::UnknownProduct,
        ),
        (
            order("ORD-PRICE", PaymentMethod::Card, &[("PROD-A", 1, "9.99")]),
            FailureCode::PriceMismatch,
        ),
        (
            order(
                "ORD-STOCK",
                PaymentMethod::Card,
                &[("PROD-A", 1, "10.00"), ("PROD-B", 2, "20.00")],
            ),
            FailureCode::OutOfStock,
        ),
        (
            order(
                "ORD-DECLINED",
                PaymentMethod::CardDeclined,
                &[("PROD-A", 2, "10.00")],
            ),
            FailureCode::PaymentDeclined,
        ),
        (
            order(
                "ORD-FUNDS",
                PaymentMethod::CardInsufficientFunds,
                &[("PROD-C", 1, "20.00")],
            ),
            FailureCode::PaymentDeclined,
        ),
        (
            order(
                "ORD-UNAVAILABLE",
                PaymentMethod::CardUnavailable,
                &[("PROD-A", 1, "10.00"), ("PROD-C", 1, "20.00")],
            ),
            FailureCode::PaymentUnavailable,
        ),
    ];
    let views = h
        .with_worker(async {
            for (o, _) in &cases {
                h.submit(o).await;
            }
            let mut views = Vec::new();
            for (o, _) in &cases {
                views.push(outcome(&h, o.id()).await);
            }
            views
        })
        .await;

    for ((o, code), view) in cases.iter().zip(&views) {
        assert_eq!(view.status, OrderStatus::Failed, "{}", o.id());
        let failure = view.failure.as_ref().unwrap();
        assert_eq!(failure.code, *code, "{}: {}", o.id(), failure.message);
        assert_eq!(
            h.recorded_status(o.id()).await,
            ("FAILED".to_owned(), Some(code.as_str().to_owned()))
        );
        assert!(
            h.payments(o.id())
                .await
                .iter()
                .all(|(status, _)| status != "CAPTURED"),
            "{}",
            o.id()
        );
        assert!(
            h.reservations(o.id())
                .await
                .iter()
                .all(|(_, status)| status == "RELEASED"),
            "{}",
            o.id()
        );
        assert_eq!(h.notifications(o.id()).await[0].0, "FAILURE");
    }
    // Stock is where it started.
    assert_eq!(h.stock("PROD-A").await, 10);
    assert_eq!(h.stock("PROD-B").await, 1);
    assert_eq!(h.stock("PROD-C").await, 3);
    // Retries ran out only for the gateway that never answers.
    let unavailable = views.last().unwrap();
    assert_eq!(unavailable.step_view(Step::ProcessPayment).attempts, 3);
    assert_eq!(
        unavailable.step_view(Step::ReserveInventory).state,
        StepState::Compensated
    );
    assert_eq!(
        views[3].step_view(Step::ProcessPayment).attempts,
        1,
        "a decline is not retried"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flaky_card_completes_on_the_third_attempt() {
    let h = Harness::new().await;
    h.add_product("PROD-A", "10.00", 5).await;
    let o = order(
        "ORD-FLAKY",
        PaymentMethod::CardFlaky,
        &[("PROD-A", 1, "10.00")],
    );
    let view = h
        .with_worker(async {
            h.submit(&o).await;
            outcome(&h, o.id()).await
        })
        .await;
    assert_eq!(view.status, OrderStatus::Completed);
    let payment = view.step_view(Step::ProcessPayment);
    assert_eq!((payment.state, payment.attempts), (StepState::Done, 3));
    assert!(
        payment.last_error.as_deref().unwrap().contains("attempt 2"),
        "{payment:?}"
    );
    assert_eq!(
        h.payments(o.id()).await,
        [("CAPTURED".to_owned(), "10.00".to_owned())]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_signal_while_payment_retries_compensates() {
    let mut h = Harness::new().await;
    h.settings.retry = fast_retry(50);
    h.add_product("PROD-A", "10.00", 5).await;
    let o = order(
        "ORD-CANCEL-SIG",
        PaymentMethod::CardUnavailable,
        &[("PROD-A", 2, "10.00")],
    );
    let view = h
        .with_worker(async {
            h.submit(&o).await;
            let live = status_until(&h, o.id(), "payment retrying", |v| {
                v.step_view(Step::ProcessPayment).state == StepState::Retrying
            })
            .await;
            assert_eq!(live.status, OrderStatus::InventoryReserved);
            assert_eq!(h.stock("PROD-A").await, 3, "reserved while payment retries");
            h.client
                .signal_cancel(&o.id(), "customer changed their mind")
                .await
                .unwrap();
            outcome(&h, o.id()).await
        })
        .await;
    assert_eq!(view.status, OrderStatus::Cancelled);
    let cancellation = view.cancellation.unwrap();
    assert_eq!(
        (cancellation.reason.as_str(), cancellation.outcome.as_str()),
        ("customer changed their mind", "cancelled")
    );
    assert_eq!(h.stock("PROD-A").await, 5);
    // The capture was asked for (PENDING) and never answered: voided.
    assert_eq!(
        h.payments(o.id()).await,
        [("VOIDED".to_owned(), "20.00".to_owned())]
    );
    assert_eq!(h.reservations(o.id()).await, [(0, "RELEASED".to_owned())]);
    assert_eq!(h.recorded_status(o.id()).await.0, "CANCELLED");
    assert_eq!(h.notifications(o.id()).await[0].0, "CANCELLATION");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn temporal_cancellation_after_capture_refunds_and_releases() {
    let hook = Webhook::start(500).await;
    let mut h = Harness::new().await;
    h.settings.retry = fast_retry(50);
    h.settings.notify_webhook = Some(hook.url.clone());
    h.add_product("PROD-A", "10.00", 5).await;
    let o = order(
        "ORD-CANCEL-TMPRL",
        PaymentMethod::Card,
        &[("PROD-A", 1, "10.00")],
    );
    let view = h
        .with_worker(async {
            h.submit(&o).await;
            // Paid, and the confirmation cannot get through: cancel now.
            status_until(&h, o.id(), "notification retrying", |v| {
                v.step_view(Step::SendNotification).state == StepState::Retrying
            })
            .await;
            assert_eq!(
                h.payments(o.id()).await,
                [("CAPTURED".to_owned(), "10.00".to_owned())]
            );
            hook.set_status(200).await;
            h.client
                .request_cancellation(&o.id(), "ops cancelled it in the UI")
                .await
                .unwrap();
            outcome(&h, o.id()).await
        })
        .await;
    assert_eq!(view.status, OrderStatus::Cancelled);
    assert_eq!(
        view.cancellation.as_ref().unwrap().reason,
        "ops cancelled it in the UI"
    );
    assert_eq!(
        view.step_view(Step::ProcessPayment).state,
        StepState::Compensated
    );
    assert_eq!(
        h.payments(o.id()).await,
        [("REFUNDED".to_owned(), "10.00".to_owned())]
    );
    assert_eq!(h.stock("PROD-A").await, 5);
    let kinds: Vec<String> = hook
        .received()
        .await
        .iter()
        .map(|r| r.body["kind"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(kinds.last().map(String::as_str), Some("CANCELLATION"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_after_completion_changes_nothing() {
    let h = Harness::new().await;
    h.add_product("PROD-A", "10.00", 5).await;
    let o = order("ORD-DONE", PaymentMethod::Card, &[("PROD-A", 1, "10.00")]);
    h.with_worker(async {
        h.submit(&o).await;
        assert_eq!(outcome(&h, o.id()).await.status, OrderStatus::Completed);
        // The workflow is closed: Temporal refuses both kinds of cancel.
        assert!(h.client.signal_cancel(&o.id(), "too late").await.is_err());
        let _ = h.client.request_cancellation(&o.id(), "too late").await;
        let after = h.client.status(&o.id()).await.unwrap();
        assert_eq!(after.status, OrderStatus::Completed);
        assert!(after.cancellation.is_none());
    })
    .await;
    assert_eq!(h.stock("PROD-A").await, 4);
    assert_eq!(
        h.payments(o.id()).await,
        [("CAPTURED".to_owned(), "10.00".to_owned())]
    );
    assert_eq!(h.recorded_status(o.id()).await.0, "COMPLETED");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_orders_for_five_in_stock_never_oversell() {
    let h = Harness::new().await;
    h.add_product("PROD-HOT", "5.00", 5).await;
    let orders: Vec<_> = (0..20)
        .map(|i| {
            order(
                &format!("ORD-RUSH-{i:02}"),
                PaymentMethod::Card,
                &[("PROD-HOT", 1, "5.00")],
            )
        })
        .collect();
    let views = h
        .with_worker(async {
            futures::future::join_all(orders.iter().map(|o| h.submit(o))).await;
            futures::future::join_all(orders.iter().map(|o| outcome(&h, o.id()))).await
        })
        .await;
    let completed = views
        .iter()
        .filter(|v| v.status == OrderStatus::Completed)
        .count();
    let out_of_stock = views
        .iter()
        .filter(|v| {
            v.status == OrderStatus::Failed
                && v.failure.as_ref().unwrap().code == FailureCode::OutOfStock
        })
        .count();
    assert_eq!((completed, out_of_stock), (5, 15));
    assert_eq!(h.stock("PROD-HOT").await, 0);
    let captured: i64 =
        sqlx::query_scalar("SELECT count(*) FROM payments WHERE status = 'CAPTURED'")
            .fetch_one(&h.db.pool)
            .await
            .unwrap();
    assert_eq!(captured, 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_undeliverable_confirmation_never_undoes_a_paid_order() {
    let hook = Webhook::start(503).await;
    let mut h = Harness::new().await;
    h.settings.notify_webhook = Some(hook.url.clone());
    h.add_product("PROD-A", "10.00", 5).await;
    let o = order(
        "ORD-NO-MAIL",
        PaymentMethod::Card,
        &[("PROD-A", 1, "10.00")],
    );
    let view = h
        .with_worker(async {
            h.submit(&o).await;
            outcome(&h, o.id()).await
        })
        .await;
    assert_eq!(view.status, OrderStatus::Completed);
    assert_eq!(view.notified, Some(false));
    assert_eq!(view.step_view(Step::SendNotification).attempts, 3);
    assert_eq!(
        h.payments(o.id()).await,
        [("CAPTURED".to_owned(), "10.00".to_owned())]
    );
    assert_eq!(
        h.notifications(o.id()).await,
        [("CONFIRMATION".to_owned(), "FAILED".to_owned(), 3)]
    );
    let received = hook.received().await;
    assert_eq!(received.len(), 3);
    assert!(
        received
            .iter()
            .all(|r| r.header("idempotency-key") == Some("ORD-NO-MAIL/confirmation"))
    );
    assert_eq!(received[0].body["orderId"], "ORD-NO-MAIL");
    assert_eq!(received[0].body["totalAmount"], "10.00");
}

/// Runs the Temporal CLI against the test server.
fn temporal_cli(args: &[&str]) -> std::process::Output {
    std::process::Command::new("temporal")
        .args(args)
        .args([
            "--address",
            &crate::support::temporal_address(),
            "--namespace",
            "default",
        ])
        .env("TEMPORAL_CLI_SHOW_STACKS", "0")
        .output()
        .expect("running the temporal CLI")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_temporal_cli_can_signal_cancel_and_cancel_orders() {
    let mut h = Harness::new().await;
    h.settings.retry = fast_retry(50);
    h.add_product("PROD-A", "10.00", 5).await;
    let by_signal = order(
        "ORD-CLI-SIGNAL",
        PaymentMethod::CardUnavailable,
        &[("PROD-A", 1, "10.00")],
    );
    let by_cancel = order(
        "ORD-CLI-CANCEL",
        PaymentMethod::CardUnavailable,
        &[("PROD-A", 1, "10.00")],
    );
    let (a, b) = h
        .with_worker(async {
            for o in [&by_signal, &by_cancel] {
                h.submit(o).await;
                status_until(&h, o.id(), "payment retrying", |v| {
                    v.step_view(Step::ProcessPayment).state == StepState::Retrying
                })
                .await;
            }
            let signal = temporal_cli(&[
                "workflow",
                "signal",
                "--workflow-id",
                "ORD-CLI-SIGNAL",
                "--name",
                "cancel",
                "--input",
                r#"{"reason": "signalled from the CLI"}"#,
            ]);
            assert!(
                signal.status.success(),
                "{}",
                String::from_utf8_lossy(&signal.stderr)
            );
            let cancel = temporal_cli(&["workflow", "cancel", "--workflow-id", "ORD-CLI-CANCEL"]);
            assert!(
                cancel.status.success(),
                "{}",
                String::from_utf8_lossy(&cancel.stderr)
            );
            (
                outcome(&h, by_signal.id()).await,
                outcome(&h, by_cancel.id()).await,
            )
        })
        .await;
    assert_eq!(
        (a.status, b.status),
        (OrderStatus::Cancelled, OrderStatus::Cancelled)
    );
    assert_eq!(a.cancellation.unwrap().reason, "signalled from the CLI");
    assert_eq!(b.cancellation.unwrap().reason, "cancelled through Temporal");
    assert_eq!(h.stock("PROD-A").await, 5);
}
