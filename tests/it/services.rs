//! Each activity's service, run twice with the same input, has one effect.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use orderflow::domain::{FailureCode, Money, PaymentMethod};
use orderflow::services::ServiceError;
use orderflow::services::inventory::{Inventory, PgInventory, Reserved};
use orderflow::services::notification::{
    Notification, NotificationKind, Notifications, Notifier, Undelivered,
};
use orderflow::services::orders::Ending;
use orderflow::services::orders::OrderStore;
use orderflow::services::payment::{
    CaptureRequest, GatewayError, PaymentGateway, Payments, SimulatedGateway,
};

use crate::support::migrated_database;
use crate::support::stack::order;

fn business_code(result: Result<impl std::fmt::Debug, ServiceError>) -> FailureCode {
    match result {
        Err(ServiceError::Business { code, .. }) => code,
        other => panic!("expected a business failure, got {other:?}"),
    }
}

#[tokio::test]
async fn creating_an_order_twice_records_it_once() {
    let h = migrated_database().await;
    let store = OrderStore::new(h.connections());
    let o = order("ORD-1", PaymentMethod::Card, &[("P-1", 2, "5.00")]);
    assert!(store.create(&o, None).await.unwrap());
    assert!(!store.create(&o, None).await.unwrap());
    let lines: i64 = sqlx::query_scalar("SELECT count(*) FROM order_items")
        .fetch_one(&h.pool)
        .await
        .unwrap();
    assert_eq!(lines, 1);
    let other = order("ORD-1", PaymentMethod::Card, &[("P-1", 3, "5.00")]);
    assert_eq!(
        business_code(store.create(&other, None).await),
        FailureCode::InvalidOrder
    );
}

#[tokio::test]
async fn reserving_and_releasing_twice_moves_stock_once() {
    let h = migrated_database().await;
    h.add_product("P-1", "5.00", 10).await;
    let store = OrderStore::new(h.connections());
    let inventory = PgInventory::new(h.connections());
    let o = order("ORD-1", PaymentMethod::Card, &[("P-1", 4, "5.00")]);
    store.create(&o, None).await.unwrap();

    // Twice at once, then once more: one reservation.
    let (a, b) = tokio::join!(inventory.reserve(&o), inventory.reserve(&o));
    let mut outcomes = [a.unwrap(), b.unwrap()];
    outcomes.sort_by_key(|r| matches!(r, Reserved::Already));
    assert_eq!(outcomes, [Reserved::Now { lines: 1 }, Reserved::Already]);
    assert_eq!(inventory.reserve(&o).await.unwrap(), Reserved::Already);
    assert_eq!(h.stock("P-1").await, 6);

    assert_eq!(inventory.release(o.id()).await.unwrap(), 1);
    assert_eq!(inventory.release(o.id()).await.unwrap(), 0);
    assert_eq!(h.stock("P-1").await, 10);

    // A released order is not reserved again by a late retry.
    assert_eq!(
        business_code(inventory.reserve(&o).await),
        FailureCode::Internal
    );
    assert_eq!(h.stock("P-1").await, 10);
}

#[tokio::test]
async fn capturing_and_refunding_twice_moves_money_once() {
    let h = migrated_database().await;
    let store = OrderStore::new(h.connections());
    let payments = Payments::new(h.connections(), Box::new(SimulatedGateway));
    h.add_product("P-1", "0.10", 10).await;
    let o = order("ORD-1", PaymentMethod::Card, &[("P-1", 3, "0.10")]);
    store.create(&o, None).await.unwrap();
    // Nothing reserved: nothing is charged.
    assert_eq!(
        business_code(payments.capture(&o, 1).await),
        FailureCode::Internal
    );
    assert!(h.payments(o.id()).await.is_empty());
    PgInventory::new(h.connections()).reserve(&o).await.unwrap();

    let first = payments.capture(&o, 1).await.unwrap();
    let again = payments.capture(&o, 2).await.unwrap();
    assert!(!first.already && again.already);
    assert_eq!(first.gateway_ref, again.gateway_ref);
    assert_eq!(
        h.payments(o.id()).await,
        [("CAPTURED".to_owned(), "0.30".to_owned())]
    );

    assert_eq!(
        payments.refund(o.id()).await.unwrap(),
        Some(Money::parse("0.30").unwrap())
    );
    assert_eq!(payments.refund(o.id()).await.unwrap(), None);
    assert_eq!(
        h.payments(o.id()).await,
        [("REFUNDED".to_owned(), "0.30".to_owned())]
    );

    // A refunded order is never charged again.
    assert_eq!(
        business_code(payments.capture(&o, 3).await),
        FailureCode::Internal
    );
    assert_eq!(h.payments(o.id()).await.len(), 1);
}

/// A gateway whose capture waits until the test lets it answer, and that
/// counts refunds.
#[derive(Default)]
struct Slow {
    answer: tokio::sync::Notify,
    asked: tokio::sync::Notify,
    refunds: AtomicUsize,
}

struct SlowGateway(Arc<Slow>);

#[async_trait::async_trait]
impl PaymentGateway for SlowGateway {
    async fn capture(&self, request: &CaptureRequest) -> Result<String, GatewayError> {
        self.0.asked.notify_one();
        self.0.answer.notified().await;
        Ok(format!("slow_{}", request.idempotency_key))
    }

    async fn refund(&self, _: &str, _: &str) -> Result<String, GatewayError> {
        self.0.refunds.fetch_add(1, Ordering::SeqCst);
        Ok("refunded".into())
    }

    async fn void(&self, _: &str) -> Result<Option<String>, GatewayError> {
        Ok(None)
    }
}

#[tokio::test]
async fn an_order_that_ends_while_the_gateway_charges_gets_its_money_back() {
    let h = migrated_database().await;
    h.add_product("P-1", "5.00", 10).await;
    let store = OrderStore::new(h.connections());
    let o = order("ORD-1", PaymentMethod::Card, &[("P-1", 2, "5.00")]);
    store.create(&o, None).await.unwrap();
    PgInventory::new(h.connections()).reserve(&o).await.unwrap();
    let gateway = Arc::new(Slow::default());
    let payments = Payments::new(h.connections(), Box::new(SlowGateway(gateway.clone())));

    // The capture is recorded before the gateway answers…
    let capture = payments.capture(&o, 1);
    let end = async {
        gateway.asked.notified().await;
        assert_eq!(
            h.payments(o.id()).await,
            [("PENDING".to_owned(), "10.00".to_owned())]
        );
        // …so the order's ending sees it, and voids it.
        let ending = Ending::Cancelled {
            step: None,
            reason: Some("changed my mind".into()),
        };
        let finished = store.finish(&o, &ending).await.unwrap();
        assert!(finished.refund_due);
        assert_eq!(payments.refund(o.id()).await.unwrap(), None);
        gateway.answer.notify_one();
    };
    let (captured, ()) = tokio::join!(capture, end);
    // The gateway charged after all: that charge is given back at once.
    assert_eq!(business_code(captured), FailureCode::Internal);
    assert_eq!(gateway.refunds.load(Ordering::SeqCst), 1);
    assert_eq!(
        h.payments(o.id()).await,
        [("VOIDED".to_owned(), "10.00".to_owned())]
    );
    assert_eq!(h.recorded_status(o.id()).await.0, "CANCELLED");
    assert_eq!(h.stock("P-1").await, 10);
    // And it is never charged again.
    assert_eq!(
        business_code(payments.capture(&o, 2).await),
        FailureCode::Internal
    );
}

#[tokio::test]
async fn a_declined_card_is_recorded_and_never_captured() {
    let h = migrated_database().await;
    let store = OrderStore::new(h.connections());
    let payments = Payments::new(h.connections(), Box::new(SimulatedGateway));
    h.add_product("P-1", "9.99", 10).await;
    let o = order("ORD-1", PaymentMethod::CardDeclined, &[("P-1", 1, "9.99")]);
    store.create(&o, None).await.unwrap();
    PgInventory::new(h.connections()).reserve(&o).await.unwrap();
    assert_eq!(
        business_code(payments.capture(&o, 1).await),
        FailureCode::PaymentDeclined
    );
    assert_eq!(
        business_code(payments.capture(&o, 1).await),
        FailureCode::PaymentDeclined
    );
    assert_eq!(
        h.payments(o.id()).await,
        [("DECLINED".to_owned(), "9.99".to_owned())]
    );
    assert_eq!(payments.refund(o.id()).await.unwrap(), None);
}

/// Counts deliveries; `local` says whether it stays in the process (like
/// the log) or leaves it (like a webhook: the outbox path).
struct Counting {
    delivered: Arc<AtomicUsize>,
    local: bool,
}

#[async_trait::async_trait]
impl Notifier for Counting {
    async fn deliver(&self, _: &Notification) -> Result<(), Undelivered> {
        self.delivered.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }

    fn is_local(&self) -> bool {
        self.local
    }
}

#[tokio::test]
async fn a_confirmation_sent_twice_at_once_is_delivered_once_and_completes_the_order() {
    // Ten races each way. With the order's row locked shared before it was
    // completed, the local ones deadlocked (in each of two runs).
    for (local, round) in [false, true]
        .into_iter()
        .flat_map(|l| (0..10).map(move |r| (l, r)))
    {
        let h = migrated_database().await;
        let store = OrderStore::new(h.connections());
        let o = order(
            &format!("ORD-{round}"),
            PaymentMethod::Card,
            &[("P-1", 1, "1.00")],
        );
        store.create(&o, None).await.unwrap();
        // A confirmation completes a paid order.
        sqlx::query("UPDATE orders SET status = 'PAID' WHERE order_id = $1")
            .bind(o.id().as_str())
            .execute(&h.pool)
            .await
            .unwrap();
        let delivered = Arc::new(AtomicUsize::new(0));
        let notifications = Notifications::new(
            h.connections(),
            Box::new(Counting {
                delivered: delivered.clone(),
                local,
            }),
        );
        let n = Notification {
            order_id: o.id().clone(),
            kind: NotificationKind::Confirmation,
            recipient: o.customer_email().cloned(),
            total_amount: o.total_amount(),
            currency: o.currency(),
            message: "confirmed".into(),
        };
        // Two executions at once: one delivers; the other finds the notice
        // sent, or claimed by the first (and waits, not as an attempt).
        let (a, b) = tokio::join!(notifications.send(&n, true), notifications.send(&n, true));
        let sent: Vec<bool> = [a, b]
            .into_iter()
            .map(|r| match r {
                Ok(sent) => sent,
                Err(ServiceError::Unavailable(e)) => {
                    assert!(e.to_string().contains("being delivered"), "{e:#}");
                    false
                }
                Err(e) => panic!("local {local}: {e:#}"),
            })
            .collect();
        assert_eq!(sent.iter().filter(|s| **s).count(), 1, "local {local}");
        assert!(!notifications.send(&n, true).await.unwrap());
        assert_eq!(delivered.load(Ordering::SeqCst), 1, "local {local}");
        assert_eq!(
            h.notifications(o.id()).await,
            [("CONFIRMATION".to_owned(), "SENT".to_owned(), 1)],
            "local {local}"
        );
        assert_eq!(
            h.recorded_status(o.id()).await,
            ("COMPLETED".to_owned(), None),
            "local {local}"
        );
    }
}

#[tokio::test]
async fn reserving_says_which_line_fails_and_takes_nothing() {
    let h = migrated_database().await;
    h.add_product("P-1", "5.00", 10).await;
    h.add_product("P-2", "2.50", 1).await;
    let store = OrderStore::new(h.connections());
    let inventory = PgInventory::new(h.connections());

    let not_recorded = order("ORD-0", PaymentMethod::Card, &[("P-1", 1, "5.00")]);
    assert!(matches!(
        inventory.reserve(&not_recorded).await,
        Err(ServiceError::Transient(_))
    ));

    for (id, lines, code, message) in [
        (
            "ORD-1",
            &[("P-1", 1, "5.00"), ("P-9", 1, "1.00")][..],
            FailureCode::UnknownProduct,
            "product P-9 is not in the catalog",
        ),
        (
            "ORD-2",
            &[("P-1", 1, "5.00"), ("P-2", 1, "2.00")][..],
            FailureCode::PriceMismatch,
            "P-2 costs 2.50 in the catalog, but the order says 2.00",
        ),
        (
            "ORD-3",
            &[("P-1", 4, "5.00"), ("P-2", 2, "2.50")][..],
            FailureCode::OutOfStock,
            "P-2: 2 requested, 1 in stock",
        ),
    ] {
        let o = order(id, PaymentMethod::Card, lines);
        store.create(&o, None).await.unwrap();
        match inventory.reserve(&o).await {
            Err(ServiceError::Business {
                code: c,
                message: m,
            }) => {
                assert_eq!((c, m.as_str()), (code, message), "{id}");
            }
            other => panic!("{id}: expected {code}, got {other:?}"),
        }
    }
    assert_eq!((h.stock("P-1").await, h.stock("P-2").await), (10, 1));
    let reservations: i64 = sqlx::query_scalar("SELECT count(*) FROM inventory_reservations")
        .fetch_one(&h.pool)
        .await
        .unwrap();
    assert_eq!(reservations, 0);
}

/// How a webhook's answer is recorded: a gateway's 502 or 504 may hide a
/// delivery (UNKNOWN, and it stays so through a later outright failure);
/// a receiver's own refusal is FAILED.
#[tokio::test]
async fn a_gateways_502_or_504_may_have_delivered_a_receivers_refusal_did_not() {
    use orderflow::services::notification::WebhookNotifier;
    let hook = crate::support::webhook::Webhook::start(502).await;
    for (round, (status, recorded)) in [
        (502, "UNKNOWN"),
        (504, "UNKNOWN"),
        (500, "FAILED"),
        (409, "FAILED"),
    ]
    .into_iter()
    .enumerate()
    {
        hook.set_status(status).await;
        let h = migrated_database().await;
        let store = OrderStore::new(h.connections());
        let o = order(
            &format!("ORD-GW-{round}"),
            PaymentMethod::Card,
            &[("P-1", 1, "1.00")],
        );
        store.create(&o, None).await.unwrap();
        sqlx::query("UPDATE orders SET status = 'PAID' WHERE order_id = $1")
            .bind(o.id().as_str())
            .execute(&h.pool)
            .await
            .unwrap();
        let webhook =
            WebhookNotifier::new(hook.url.clone(), std::time::Duration::from_secs(5), None)
                .unwrap();
        let notifications = Notifications::new(h.connections(), Box::new(webhook));
        let n = Notification {
            order_id: o.id().clone(),
            kind: NotificationKind::Confirmation,
            recipient: o.customer_email().cloned(),
            total_amount: o.total_amount(),
            currency: o.currency(),
            message: "confirmed".into(),
        };
        assert!(matches!(
            notifications.send(&n, true).await,
            Err(ServiceError::Transient(_))
        ));
        assert_eq!(
            h.notifications(o.id()).await,
            [("CONFIRMATION".to_owned(), recorded.to_owned(), 1)],
            "{status}"
        );
        if recorded == "UNKNOWN" {
            // A later refusal does not make it FAILED: it may have arrived.
            hook.set_status(500).await;
            let _ = notifications.send(&n, true).await;
            assert_eq!(
                h.notifications(o.id()).await,
                [("CONFIRMATION".to_owned(), "UNKNOWN".to_owned(), 2)]
            );
            assert_eq!(
                notifications.confirmation(o.id()).await.unwrap(),
                Some(orderflow::domain::Delivery::Unknown)
            );
        }
    }
}

/// The worker's connections carry a time limit on every statement and
/// lock wait, set on each session as it opens.
#[tokio::test]
async fn limited_connections_time_out_their_statements() {
    let h = migrated_database().await;
    let limited = h
        .connections()
        .limited(std::time::Duration::from_millis(1500));
    let mut conn = limited.acquire().await.unwrap();
    let statement: String = sqlx::query_scalar("SHOW statement_timeout")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    let lock: String = sqlx::query_scalar("SHOW lock_timeout")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!((statement.as_str(), lock.as_str()), ("1500ms", "1500ms"));
    let slow = sqlx::query("SELECT pg_sleep(5)")
        .execute(&mut conn)
        .await
        .unwrap_err();
    assert!(
        orderflow::db::is_outage(&slow),
        "a statement timeout is an outage: {slow}"
    );
}
