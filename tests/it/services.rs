//! Each activity's service, run twice with the same input, has one effect.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use orderflow::domain::{FailureCode, Money, PaymentMethod};
use orderflow::services::ServiceError;
use orderflow::services::inventory::{Inventory, PgInventory, Reserved};
use orderflow::services::notification::{Notification, NotificationKind, Notifications, Notifier};
use orderflow::services::orders::OrderStore;
use orderflow::services::payment::{Payments, SimulatedGateway};

use crate::support::stack::{Harness, order};

fn business_code(result: Result<impl std::fmt::Debug, ServiceError>) -> FailureCode {
    match result {
        Err(ServiceError::Business { code, .. }) => code,
        other => panic!("expected a business failure, got {other:?}"),
    }
}

#[tokio::test]
async fn creating_an_order_twice_records_it_once() {
    let h = Harness::new().await;
    let store = OrderStore::new(h.db.pool.clone());
    let o = order("ORD-1", PaymentMethod::Card, &[("P-1", 2, "5.00")]);
    assert!(store.create(&o).await.unwrap());
    assert!(!store.create(&o).await.unwrap());
    let lines: i64 = sqlx::query_scalar("SELECT count(*) FROM order_items")
        .fetch_one(&h.db.pool)
        .await
        .unwrap();
    assert_eq!(lines, 1);
    let other = order("ORD-1", PaymentMethod::Card, &[("P-1", 3, "5.00")]);
    assert_eq!(
        business_code(store.create(&other).await),
        FailureCode::InvalidOrder
    );
}

#[tokio::test]
async fn reserving_and_releasing_twice_moves_stock_once() {
    let h = Harness::new().await;
    h.add_product("P-1", "5.00", 10).await;
    let store = OrderStore::new(h.db.pool.clone());
    let inventory = PgInventory::new(h.db.pool.clone());
    let o = order("ORD-1", PaymentMethod::Card, &[("P-1", 4, "5.00")]);
    store.create(&o).await.unwrap();

    // Twice at once, then once more: one reservation.
    let (a, b) = tokio::join!(inventory.reserve(&o), inventory.reserve(&o));
    let mut outcomes = [a.unwrap(), b.unwrap()];
    outcomes.sort_by_key(|r| matches!(r, Reserved::Already));
    assert_eq!(outcomes, [Reserved::Now { lines: 1 }, Reserved::Already]);
    assert_eq!(inventory.reserve(&o).await.unwrap(), Reserved::Already);
    assert_eq!(h.stock("P-1").await, 6);

    assert_eq!(inventory.release(&o.id).await.unwrap(), 1);
    assert_eq!(inventory.release(&o.id).await.unwrap(), 0);
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
    let h = Harness::new().await;
    let store = OrderStore::new(h.db.pool.clone());
    let payments = Payments::new(h.db.pool.clone(), Box::new(SimulatedGateway));
    let o = order("ORD-1", PaymentMethod::Card, &[("P-1", 3, "0.10")]);
    store.create(&o).await.unwrap();

    let first = payments.capture(&o, 1).await.unwrap();
    let again = payments.capture(&o, 2).await.unwrap();
    assert!(!first.already && again.already);
    assert_eq!(first.gateway_ref, again.gateway_ref);
    assert_eq!(
        h.payments(&o.id).await,
        [("CAPTURED".to_owned(), "0.30".to_owned())]
    );

    assert_eq!(
        payments.refund(&o.id).await.unwrap(),
        Some(Money::parse("0.30").unwrap())
    );
    assert_eq!(payments.refund(&o.id).await.unwrap(), None);
    assert_eq!(
        h.payments(&o.id).await,
        [("REFUNDED".to_owned(), "0.30".to_owned())]
    );

    // A refunded order is never charged again.
    assert_eq!(
        business_code(payments.capture(&o, 3).await),
        FailureCode::Internal
    );
    assert_eq!(h.payments(&o.id).await.len(), 1);
}

#[tokio::test]
async fn a_declined_card_is_recorded_and_never_captured() {
    let h = Harness::new().await;
    let store = OrderStore::new(h.db.pool.clone());
    let payments = Payments::new(h.db.pool.clone(), Box::new(SimulatedGateway));
    let o = order("ORD-1", PaymentMethod::CardDeclined, &[("P-1", 1, "9.99")]);
    store.create(&o).await.unwrap();
    assert_eq!(
        business_code(payments.capture(&o, 1).await),
        FailureCode::PaymentDeclined
    );
    assert_eq!(
        business_code(payments.capture(&o, 1).await),
        FailureCode::PaymentDeclined
    );
    assert_eq!(
        h.payments(&o.id).await,
        [("DECLINED".to_owned(), "9.99".to_owned())]
    );
    assert_eq!(payments.refund(&o.id).await.unwrap(), None);
}

struct Counting(Arc<AtomicUsize>);

#[async_trait::async_trait]
impl Notifier for Counting {
    async fn deliver(&self, _: &Notification) -> anyhow::Result<()> {
        self.0.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
}

#[tokio::test]
async fn notifying_twice_delivers_once() {
    let h = Harness::new().await;
    let store = OrderStore::new(h.db.pool.clone());
    let o = order("ORD-1", PaymentMethod::Card, &[("P-1", 1, "1.00")]);
    store.create(&o).await.unwrap();
    let delivered = Arc::new(AtomicUsize::new(0));
    let notifications =
        Notifications::new(h.db.pool.clone(), Box::new(Counting(delivered.clone())));
    let n = Notification {
        order_id: o.id.clone(),
        kind: NotificationKind::Confirmation,
        recipient: o.customer_email.clone(),
        total_amount: o.total_amount,
        currency: o.currency,
        message: "confirmed".into(),
    };
    let (a, b) = tokio::join!(notifications.send(&n, false), notifications.send(&n, false));
    assert_eq!(
        [a.unwrap(), b.unwrap()]
            .iter()
            .filter(|sent| **sent)
            .count(),
        1
    );
    assert!(!notifications.send(&n, false).await.unwrap());
    assert_eq!(delivered.load(Ordering::SeqCst), 1);
    assert_eq!(
        h.notifications(&o.id).await,
        [("CONFIRMATION".to_owned(), "SENT".to_owned(), 1)]
    );
}
