//! The promise of SPEC §7 as checks on what the database holds: money,
//! stock and notices agree with how each order ended. `orderflow audit`
//! runs them over a live system; the fault tests run them over the orders
//! each scenario submitted (`tests/it/support/invariants.rs`). One
//! implementation, so a rule the tests keep is a rule `audit` checks.

use std::fmt;

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::{PgPool, Row};

/// Which promise a problem breaks: the `check` of a problem in JSON, and a
/// row of `audit`'s summary.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Check {
    /// Captures: one of the total for a COMPLETED order, none left for an
    /// ended one, none pending.
    Money,
    /// Stock: held for a COMPLETED order's lines, given back by an ended
    /// one; per product, no more taken than COMPLETED orders hold.
    Stock,
    /// One notice of the ending's kind per ended order, and one story.
    Notice,
    /// An order row whose workflow Temporal does not have.
    NoWorkflow,
    /// A workflow that ended as an order without a row.
    NoRow,
    /// The database and Temporal disagree on how an order ended.
    Disagree,
    /// An order not ended after `--stuck-after`.
    Stuck,
}

impl Check {
    pub const ALL: [Check; 7] = [
        Check::Money,
        Check::Stock,
        Check::Notice,
        Check::NoWorkflow,
        Check::NoRow,
        Check::Disagree,
        Check::Stuck,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Check::Money => "money",
            Check::Stock => "stock",
            Check::Notice => "notice",
            Check::NoWorkflow => "no-workflow",
            Check::NoRow => "no-row",
            Check::Disagree => "disagree",
            Check::Stuck => "stuck",
        }
    }
}

/// One broken promise: what it concerns (an order, or a product) and what
/// is wrong, in words.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Problem {
    pub check: Check,
    #[serde(rename = "orderID", skip_serializing_if = "Option::is_none")]
    pub order_id: Option<String>,
    #[serde(rename = "productID", skip_serializing_if = "Option::is_none")]
    pub product_id: Option<String>,
    /// The order's status in the database, when it has a row.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    pub detail: String,
}

impl Problem {
    pub fn order(check: Check, id: &str, status: Option<&str>, detail: impl Into<String>) -> Self {
        Self {
            check,
            order_id: Some(id.to_owned()),
            product_id: None,
            status: status.map(str::to_owned),
            detail: detail.into(),
        }
    }

    fn product(id: &str, detail: String) -> Self {
        Self {
            check: Check::Stock,
            order_id: None,
            product_id: Some(id.to_owned()),
            status: None,
            detail,
        }
    }

    /// What it concerns: the order's or the product's ID.
    pub fn subject(&self) -> &str {
        self.order_id
            .as_deref()
            .or(self.product_id.as_deref())
            .unwrap_or("")
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.subject(), self.detail)
    }
}

/// What the database holds of one order: its row, and counts over the rows
/// that hang off it.
#[derive(Debug, Clone)]
pub struct Ledger {
    pub order_id: String,
    pub status: String,
    pub total: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    lines: i64,
    captures: i64,
    pending: i64,
    /// The captured amounts, comma-separated.
    captured: Option<String>,
    held: i64,
    /// Reservations held of exactly their line's quantity.
    held_right: i64,
    confirmations: i64,
    cancellations: i64,
    failures: i64,
    /// Confirmations that went out, or may have.
    confirmations_sent: i64,
}

/// The orders among `ids` that have a row, with what hangs off each, in
/// one statement (in no particular order).
pub async fn ledgers(pool: &PgPool, ids: &[&str]) -> Result<Vec<Ledger>, sqlx::Error> {
    let rows = sqlx::query(
        "WITH o AS (SELECT order_id, status, total_amount::text AS total, created_at, updated_at
                      FROM orders WHERE order_id = ANY($1)),
              items AS (SELECT order_id, count(*) AS lines
                          FROM order_items WHERE order_id = ANY($1) GROUP BY order_id),
              pay AS (SELECT order_id,
                             count(*) FILTER (WHERE status = 'CAPTURED') AS captures,
                             count(*) FILTER (WHERE status = 'PENDING') AS pending,
                             string_agg(amount::text, ',' ORDER BY payment_id)
                               FILTER (WHERE status = 'CAPTURED') AS captured
                        FROM payments WHERE order_id = ANY($1) GROUP BY order_id),
              res AS (SELECT r.order_id,
                             count(*) FILTER (WHERE r.status = 'RESERVED') AS held,
                             count(*) FILTER (WHERE r.status = 'RESERVED'
                                                AND r.quantity = i.quantity) AS held_right
                        FROM inventory_reservations r
                        LEFT JOIN order_items i USING (order_id, line_no)
                       WHERE r.order_id = ANY($1) GROUP BY r.order_id),
              note AS (SELECT order_id,
                              count(*) FILTER (WHERE kind = 'CONFIRMATION') AS confirmations,
                              count(*) FILTER (WHERE kind = 'CANCELLATION') AS cancellations,
                              count(*) FILTER (WHERE kind = 'FAILURE') AS failures,
                              count(*) FILTER (WHERE kind = 'CONFIRMATION'
                                  AND (status IN ('SENT', 'SENDING', 'UNKNOWN') OR maybe_delivered))
                                AS confirmations_sent
                         FROM notifications WHERE order_id = ANY($1) GROUP BY order_id)
         SELECT o.*, COALESCE(items.lines, 0) AS lines,
                COALESCE(pay.captures, 0) AS captures, COALESCE(pay.pending, 0) AS pending,
                pay.captured, COALESCE(res.held, 0) AS held,
                COALESCE(res.held_right, 0) AS held_right,
                COALESCE(note.confirmations, 0) AS confirmations,
                COALESCE(note.cancellations, 0) AS cancellations,
                COALESCE(note.failures, 0) AS failures,
                COALESCE(note.confirmations_sent, 0) AS confirmations_sent
           FROM o LEFT JOIN items USING (order_id) LEFT JOIN pay USING (order_id)
                  LEFT JOIN res USING (order_id) LEFT JOIN note USING (order_id)",
    )
    .bind(ids)
    .fetch_all(pool)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(Ledger {
                order_id: r.try_get("order_id")?,
                status: r.try_get("status")?,
                total: r.try_get("total")?,
                created_at: r.try_get("created_at")?,
                updated_at: r.try_get("updated_at")?,
                lines: r.try_get("lines")?,
                captures: r.try_get("captures")?,
                pending: r.try_get("pending")?,
                captured: r.try_get("captured")?,
                held: r.try_get("held")?,
                held_right: r.try_get("held_right")?,
                confirmations: r.try_get("confirmations")?,
                cancellations: r.try_get("cancellations")?,
                failures: r.try_get("failures")?,
                confirmations_sent: r.try_get("confirmations_sent")?,
            })
        })
        .collect()
}

impl Ledger {
    pub fn is_terminal(&self) -> bool {
        crate::domain::OrderStatus::is_terminal_text(&self.status)
    }

    /// What is wrong with an ended order's money, stock and notices (none
    /// for an order still under way: it may hold anything on its path).
    pub fn problems(&self) -> Vec<Problem> {
        let id = self.order_id.as_str();
        let status = self.status.as_str();
        let mut found = Vec::new();
        let mut say = |check, detail: String| {
            found.push(Problem::order(check, id, Some(status), detail));
        };
        if !self.is_terminal() {
            return Vec::new();
        }
        if self.pending != 0 {
            say(
                Check::Money,
                format!("{status} with a capture still pending at the gateway"),
            );
        }
        let notices = match status {
            "COMPLETED" => {
                let captured = self.captured.as_deref().unwrap_or_default();
                if self.captures != 1 || captured != self.total {
                    say(
                        Check::Money,
                        format!(
                            "COMPLETED with captures [{captured}], expected one of {}",
                            self.total
                        ),
                    );
                }
                if self.held != self.lines || self.held_right != self.lines {
                    say(
                        Check::Stock,
                        format!(
                            "COMPLETED holding {} of its {} lines' stock",
                            self.held_right, self.lines
                        ),
                    );
                }
                if self.cancellations + self.failures != 0 {
                    say(
                        Check::Notice,
                        "COMPLETED, and the customer was also sent a failure or cancellation notice"
                            .to_owned(),
                    );
                }
                self.confirmations
            }
            _ => {
                if self.captures != 0 {
                    say(
                        Check::Money,
                        format!("{status} but its payment is still captured"),
                    );
                }
                if self.held != 0 {
                    say(
                        Check::Stock,
                        format!("{status} but still holds {} reservation(s)", self.held),
                    );
                }
                if self.confirmations_sent != 0 {
                    say(
                        Check::Notice,
                        format!(
                            "{status}, but a confirmation was sent (or may have been): \
                             the customer was told two stories"
                        ),
                    );
                }
                if status == "FAILED" {
                    self.failures
                } else {
                    self.cancellations
                }
            }
        };
        if notices != 1 {
            say(
                Check::Notice,
                format!("{notices} notice(s) of its ending ({status}), expected one"),
            );
        }
        found
    }
}

/// How the database and the workflow ended an order, compared: a problem
/// when both ended and differently, or the workflow ended and the row did not.
pub fn compare_endings(id: &str, recorded: &str, workflow_ended: &str) -> Option<Problem> {
    (recorded != workflow_ended).then(|| {
        Problem::order(
            Check::Disagree,
            id,
            Some(recorded),
            format!("the workflow ended {workflow_ended} but the database says {recorded}"),
        )
    })
}

/// Per product, stock taken that no order accounts for: what its `RESERVED`
/// reservations hold beyond the lines of `COMPLETED` orders and of orders
/// still under way (an ended order's hold is told per order too); and any
/// negative stock. Reads every product and reservation, so it suits a
/// catalog of any size a shop has.
pub async fn stock_held(pool: &PgPool) -> Result<Vec<Problem>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT p.product_id, p.stock::bigint AS stock,
                COALESCE(h.held, 0)::bigint AS held,
                COALESCE(h.accounted, 0)::bigint AS accounted
           FROM products p
           LEFT JOIN (SELECT r.product_id, sum(r.quantity) AS held,
                             sum(r.quantity) FILTER (WHERE o.status NOT IN ('FAILED', 'CANCELLED'))
                               AS accounted
                        FROM inventory_reservations r JOIN orders o USING (order_id)
                       WHERE r.status = 'RESERVED'
                       GROUP BY r.product_id) h USING (product_id)
          WHERE p.stock < 0 OR COALESCE(h.held, 0) <> COALESCE(h.accounted, 0)
          ORDER BY p.product_id",
    )
    .fetch_all(pool)
    .await?;
    Ok(rows
        .iter()
        .map(|r| {
            let product: String = r.get("product_id");
            let stock: i64 = r.get("stock");
            let held: i64 = r.get("held");
            let accounted: i64 = r.get("accounted");
            if stock < 0 {
                Problem::product(&product, format!("stock is negative ({stock})"))
            } else {
                Problem::product(
                    &product,
                    format!(
                        "{held} taken from stock, but COMPLETED and running orders hold only \
                         {accounted}: {} held by ended orders",
                        held - accounted
                    ),
                )
            }
        })
        .collect())
}

/// Per product of `before` (its stock before `ids` ran), a problem unless
/// its stock moved by exactly what the `COMPLETED` orders among `ids` took:
/// the stricter check a test can make, knowing where the stock started.
pub async fn stock_moved(
    pool: &PgPool,
    ids: &[&str],
    before: &[(&str, i32)],
) -> Result<Vec<Problem>, sqlx::Error> {
    let moved: std::collections::BTreeMap<String, (i64, i64)> = sqlx::query(
        "SELECT p.product_id, p.stock::bigint AS stock,
                COALESCE((SELECT sum(i.quantity) FROM order_items i JOIN orders o USING (order_id)
                           WHERE i.product_id = p.product_id AND o.status = 'COMPLETED'
                             AND o.order_id = ANY($1)), 0)::bigint AS sold
           FROM products p",
    )
    .bind(ids)
    .fetch_all(pool)
    .await?
    .iter()
    .map(|r| (r.get("product_id"), (r.get("stock"), r.get("sold"))))
    .collect();
    Ok(before
        .iter()
        .filter_map(|(product, before)| match moved.get(*product) {
            Some((now, sold)) if i64::from(*before) - now == *sold => None,
            Some((now, sold)) => Some(Problem::product(
                product,
                format!("stock went from {before} to {now}, but COMPLETED orders took {sold}"),
            )),
            None => Some(Problem::product(
                product,
                "not in the catalog any more".to_owned(),
            )),
        })
        .collect())
}
