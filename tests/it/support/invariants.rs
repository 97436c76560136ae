//! The promise every fault scenario ends by checking (SPEC §7): whatever
//! happened on the way, money and stock agree with how each order ended.
//! The checks on the database are `orderflow audit`'s own
//! ([`orderflow::audit`]); this adds the wait for every order to end and the
//! stock each scenario started from.

use std::collections::BTreeMap;

use orderflow::audit;
use orderflow::domain::OrderId;
use orderflow::temporal::client::OrderClient;
use sqlx::PgPool;

/// Every order the scenario submitted, the catalog's stock before it, and
/// the Temporal client that can read each order's outcome.
pub struct Expectation<'a> {
    pub orders: &'a [OrderId],
    pub stock_before: &'a [(&'a str, i32)],
}

/// How long every order has to end, from when the check starts: an order
/// that has not by then is a broken promise, not a test that hangs.
pub const ENDS_WITHIN: std::time::Duration = std::time::Duration::from_secs(150);

/// Checks, and returns each broken promise in words (empty: all kept):
///
/// - every order ends within [`ENDS_WITHIN`] (else: where it stands and
///   why, e.g. its workflow task failing);
/// - every order is recorded and terminal, and its workflow ended the same way;
/// - a `COMPLETED` order has exactly one capture, of its total, and holds
///   the stock of each of its lines;
/// - a `FAILED` or `CANCELLED` order has no capture left (refunded, voided
///   or none) and holds no stock; no order has a capture still pending;
/// - each product's stock moved by exactly the quantities of `COMPLETED` orders;
/// - each ended order has exactly one notice of its ending's kind, and no
///   order that did not complete was sent a confirmation;
/// - the customer is told one story: never a confirmation that went out
///   (or may have) and also a failure or cancellation notice.
pub async fn violations(
    pool: &PgPool,
    temporal: &OrderClient,
    expected: &Expectation<'_>,
) -> Vec<String> {
    let mut broken = Vec::new();
    let deadline = tokio::time::Instant::now() + ENDS_WITHIN;
    let mut outcomes = BTreeMap::new();
    for id in expected.orders {
        match tokio::time::timeout_at(deadline, temporal.outcome(id)).await {
            Ok(Ok(view)) => {
                outcomes.insert(id.clone(), view);
            }
            Ok(Err(e)) => broken.push(format!("{id}: no outcome from Temporal: {e:#}")),
            Err(_) => {
                let why = match temporal.fetch(id).await {
                    Ok((view, _)) => match view.workflow_task_failure {
                        Some(failure) => {
                            format!("{}; its workflow task fails: {failure}", view.status)
                        }
                        None => format!("{} at {:?}", view.status, view.step),
                    },
                    Err(e) => format!("unreadable: {e:#}"),
                };
                broken.push(format!(
                    "{id}: did not end within {}s ({why})",
                    ENDS_WITHIN.as_secs()
                ));
            }
        }
    }
    let ids: Vec<&str> = expected.orders.iter().map(|o| o.as_str()).collect();
    let recorded: BTreeMap<String, audit::Ledger> = audit::ledgers(pool, &ids)
        .await
        .expect("reading the orders")
        .into_iter()
        .map(|l| (l.order_id.clone(), l))
        .collect();
    for id in expected.orders {
        let Some(ledger) = recorded.get(id.as_str()) else {
            broken.push(format!("{id}: not recorded in `orders`"));
            continue;
        };
        if !ledger.is_terminal() {
            // Said above, with why, when it did not end.
            if outcomes.contains_key(id) {
                broken.push(format!("{id}: not terminal ({})", ledger.status));
            }
            continue;
        }
        broken.extend(ledger.problems().iter().map(ToString::to_string));
        if let Some(view) = outcomes.get(id) {
            broken.extend(
                audit::compare_endings(id.as_str(), &ledger.status, view.status.as_str())
                    .map(|p| p.to_string()),
            );
        }
    }
    broken.extend(
        audit::stock_moved(pool, &ids, expected.stock_before)
            .await
            .expect("reading the stock")
            .iter()
            .map(ToString::to_string),
    );
    broken
}

/// Panics with every broken promise.
pub async fn assert_kept(pool: &PgPool, temporal: &OrderClient, expected: &Expectation<'_>) {
    let broken = violations(pool, temporal, expected).await;
    assert!(
        broken.is_empty(),
        "{} promise(s) broken:\n  {}",
        broken.len(),
        broken.join("\n  ")
    );
}
