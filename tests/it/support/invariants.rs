//! The promise every fault scenario ends by checking (SPEC §7): whatever
//! happened on the way, money and stock agree with how each order ended.

use std::collections::BTreeMap;

use orderflow::domain::OrderId;
use orderflow::temporal::client::OrderClient;
use sqlx::{PgPool, Row};

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
    let rows = sqlx::query(
        "SELECT o.order_id, o.status, o.total_amount::text AS total,
                (SELECT count(*) FROM order_items i WHERE i.order_id = o.order_id) AS lines,
                (SELECT count(*) FROM payments p
                  WHERE p.order_id = o.order_id AND p.status = 'CAPTURED') AS captures,
                (SELECT count(*) FROM payments p
                  WHERE p.order_id = o.order_id AND p.status = 'PENDING') AS pending,
                (SELECT string_agg(p.amount::text, ',') FROM payments p
                  WHERE p.order_id = o.order_id AND p.status = 'CAPTURED') AS captured,
                (SELECT count(*) FROM inventory_reservations r
                  WHERE r.order_id = o.order_id AND r.status = 'RESERVED') AS held,
                (SELECT count(*) FROM inventory_reservations r
                  WHERE r.order_id = o.order_id AND r.status = 'RESERVED'
                    AND r.quantity = (SELECT i.quantity FROM order_items i
                                       WHERE i.order_id = r.order_id AND i.line_no = r.line_no)) AS held_right,
                (SELECT count(*) FROM notifications n
                  WHERE n.order_id = o.order_id
                    AND n.kind = CASE o.status WHEN 'COMPLETED' THEN 'CONFIRMATION'
                                               WHEN 'FAILED' THEN 'FAILURE'
                                               ELSE 'CANCELLATION' END) AS notices,
                (SELECT count(*) FROM notifications n
                  WHERE n.order_id = o.order_id AND n.kind = 'CONFIRMATION'
                    AND (n.status IN ('SENT', 'SENDING', 'UNKNOWN') OR n.maybe_delivered))
                    AS confirmations_sent,
                (SELECT count(*) FROM notifications n
                  WHERE n.order_id = o.order_id AND n.kind <> 'CONFIRMATION')
                    AS endings_told
           FROM orders o WHERE o.order_id = ANY($1)",
    )
    .bind(&ids)
    .fetch_all(pool)
    .await
    .expect("reading the orders");
    let recorded: BTreeMap<String, &sqlx::postgres::PgRow> = rows
        .iter()
        .map(|r| (r.get::<String, _>("order_id"), r))
        .collect();

    for id in expected.orders {
        let Some(row) = recorded.get(id.as_str()) else {
            broken.push(format!("{id}: not recorded in `orders`"));
            continue;
        };
        let status: String = row.get("status");
        let count = |c: &str| row.get::<i64, _>(c);
        if count("pending") != 0 {
            broken.push(format!(
                "{id}: {status} with a capture still pending at the gateway"
            ));
        }
        match status.as_str() {
            "COMPLETED" => {
                let total: String = row.get("total");
                let captured: Option<String> = row.get("captured");
                if count("captures") != 1 || captured.as_deref() != Some(total.as_str()) {
                    broken.push(format!(
                        "{id}: COMPLETED with captures [{}], expected one of {total}",
                        captured.unwrap_or_default()
                    ));
                }
                if count("held") != count("lines") || count("held_right") != count("lines") {
                    broken.push(format!(
                        "{id}: COMPLETED holding {} of its {} lines' stock",
                        count("held_right"),
                        count("lines")
                    ));
                }
                if count("endings_told") != 0 {
                    broken.push(format!(
                        "{id}: COMPLETED, and the customer was also sent a failure or cancellation notice"
                    ));
                }
            }
            "FAILED" | "CANCELLED" => {
                if count("captures") != 0 {
                    broken.push(format!("{id}: {status} but its payment is still captured"));
                }
                if count("held") != 0 {
                    broken.push(format!(
                        "{id}: {status} but still holds {} reservation(s)",
                        count("held")
                    ));
                }
                if count("confirmations_sent") != 0 {
                    broken.push(format!(
                        "{id}: {status}, but a confirmation was sent (or may have been): \
                         the customer was told two stories"
                    ));
                }
            }
            // Said above, with why.
            _ if !outcomes.contains_key(id) => continue,
            other => broken.push(format!("{id}: not terminal ({other})")),
        }
        if count("notices") != 1 {
            broken.push(format!(
                "{id}: {} notice(s) of its ending ({status}), expected one",
                count("notices")
            ));
        }
        match outcomes.get(id) {
            Some(view) if view.status.as_str() == status => {}
            Some(view) => broken.push(format!(
                "{id}: the workflow ended {} but the database says {status}",
                view.status
            )),
            None => {}
        }
    }

    let moved: BTreeMap<String, (i64, i64)> = sqlx::query(
        "SELECT p.product_id, p.stock::bigint AS stock,
                COALESCE((SELECT sum(i.quantity) FROM order_items i JOIN orders o USING (order_id)
                           WHERE i.product_id = p.product_id AND o.status = 'COMPLETED'
                             AND o.order_id = ANY($1)), 0)::bigint AS sold
           FROM products p",
    )
    .bind(&ids)
    .fetch_all(pool)
    .await
    .expect("reading the stock")
    .iter()
    .map(|r| (r.get("product_id"), (r.get("stock"), r.get("sold"))))
    .collect();
    for (product, before) in expected.stock_before {
        match moved.get(*product) {
            Some((now, sold)) if i64::from(*before) - now == *sold => {}
            Some((now, sold)) => broken.push(format!(
                "{product}: stock went from {before} to {now}, but COMPLETED orders took {sold}"
            )),
            None => broken.push(format!("{product}: not in the catalog any more")),
        }
    }
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
