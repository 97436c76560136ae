//! The `orders` and `order_items` tables: the record of each order and its
//! status, kept current by the steps so `order list` can read it.

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use sqlx::Row;

use super::ServiceError;
use crate::db::pool::Connections;
use crate::domain::{Delivery, FailureCode, Money, Order, OrderId, OrderStatus, Step};

/// An order's lines as column arrays, for `UNNEST` in one statement.
pub(crate) struct LineArrays<'a> {
    pub line_nos: Vec<i16>,
    pub products: Vec<&'a str>,
    pub quantities: Vec<i32>,
    pub prices: Vec<Decimal>,
}

impl<'a> LineArrays<'a> {
    pub fn of(order: &'a Order) -> Self {
        Self {
            line_nos: (0..order.items().len() as i16).collect(),
            products: order
                .items()
                .iter()
                .map(|l| l.product_id.as_str())
                .collect(),
            quantities: order
                .items()
                .iter()
                .map(|l| l.quantity.get() as i32)
                .collect(),
            prices: order
                .items()
                .iter()
                .map(|l| l.unit_price.as_decimal())
                .collect(),
        }
    }
}

#[derive(Clone)]
pub struct OrderStore {
    db: Connections,
}

impl OrderStore {
    pub fn new(db: Connections) -> Self {
        Self { db }
    }

    /// Records the order and its lines (status `CREATED`). Idempotent: the
    /// same order again is a no-op; different content under the same ID is
    /// refused (`INVALID_ORDER`).
    /// Records `order` (with `created_at`, its workflow's start, when
    /// known; else now): `false` when its ID was recorded already.
    pub async fn create(
        &self,
        order: &Order,
        created_at: Option<chrono::DateTime<chrono::Utc>>,
    ) -> Result<bool, ServiceError> {
        // One statement: the order and its lines, or nothing when the ID exists.
        let lines = LineArrays::of(order);
        let inserted: i64 = sqlx::query_scalar(
            "WITH new_order AS (
                 INSERT INTO orders (order_id, customer_id, customer_email, payment_method,
                                     total_amount, currency, status, step, created_at)
                 VALUES ($1, $2, $3, $4, $5, $6, 'CREATED', 'create_order',
                         COALESCE($11, now()))
                 ON CONFLICT (order_id) DO NOTHING
                 RETURNING order_id),
             new_lines AS (
                 INSERT INTO order_items (order_id, line_no, product_id, quantity, unit_price)
                 SELECT new_order.order_id, l.*
                   FROM new_order, UNNEST($7::smallint[], $8::text[], $9::int[], $10::numeric[]) AS l
                 RETURNING 1)
             SELECT count(*) FROM new_order",
        )
        .bind(order.id().as_str())
        .bind(order.customer_id().as_str())
        .bind(order.customer_email().as_ref().map(|e| e.as_str()))
        .bind(order.payment_method().as_str())
        .bind(order.total_amount().as_decimal())
        .bind(order.currency().as_str())
        .bind(&lines.line_nos)
        .bind(&lines.products)
        .bind(&lines.quantities)
        .bind(&lines.prices)
        .bind(created_at)
        .fetch_one(&mut self.db.acquire().await?)
        .await?;
        if inserted == 1 {
            return Ok(true);
        }
        // Already there: the same order is fine, another one is not.
        match self.recorded_as(order).await? {
            Some(true) => Ok(false),
            Some(false) => Err(ServiceError::business(
                FailureCode::InvalidOrder,
                format!(
                    "an order {} with different content is already recorded",
                    order.id()
                ),
            )),
            None => Err(ServiceError::Unavailable(anyhow::anyhow!(
                "order {} was recorded but is not found",
                order.id()
            ))),
        }
    }

    /// Whether the order recorded under this order's ID is this order
    /// (same customer, payment, total and lines); `None` when none is.
    async fn recorded_as(&self, order: &Order) -> Result<Option<bool>, ServiceError> {
        let Some(row) = sqlx::query(
            "SELECT customer_id, total_amount, currency, payment_method,
                    (SELECT array_agg(product_id || ':' || quantity || ':' || unit_price ORDER BY line_no)
                       FROM order_items i WHERE i.order_id = o.order_id) AS lines
               FROM orders o WHERE order_id = $1",
        )
        .bind(order.id().as_str())
        .fetch_optional(&mut self.db.acquire().await?)
        .await?
        else {
            return Ok(None);
        };
        let lines: Vec<String> = row
            .try_get::<Option<Vec<String>>, _>("lines")?
            .unwrap_or_default();
        let expected: Vec<String> = order
            .items()
            .iter()
            .map(|l| format!("{}:{}:{}", l.product_id, l.quantity, l.unit_price))
            .collect();
        Ok(Some(
            row.try_get::<String, _>("customer_id")? == order.customer_id().as_str()
                && row.try_get::<Decimal, _>("total_amount")? == order.total_amount().as_decimal()
                && row.try_get::<String, _>("currency")? == order.currency().as_str()
                && row.try_get::<String, _>("payment_method")? == order.payment_method().as_str()
                && lines == expected,
        ))
    }

    /// Sets the order's status and step; for `FAILED` with its failure, for
    /// `CANCELLED` with the reason. Repeating it is harmless. `COMPLETED`
    /// is only recorded for a paid order: one that ended otherwise stays so,
    /// and the result is `false`.
    pub async fn set_status(
        &self,
        order_id: &OrderId,
        status: OrderStatus,
        step: Option<Step>,
        failure: Option<(FailureCode, &str)>,
        cancel_reason: Option<&str>,
    ) -> Result<bool, ServiceError> {
        let changed = sqlx::query(super::transitions::RECORD)
            .bind(order_id.as_str())
            .bind(status.as_str())
            .bind(step.map(Step::as_str))
            .bind(failure.map(|(c, _)| c.as_str()))
            .bind(failure.map(|(_, m)| m))
            .bind(cancel_reason)
            .execute(&mut self.db.acquire().await?)
            .await?;
        Ok(changed.rows_affected() == 1)
    }

    /// Ends the order `FAILED` or `CANCELLED` from what the database holds
    /// (`finish_order`): the first terminal status recorded wins, the
    /// customer's notice is recorded with it, every reservation the order
    /// still holds is put back. Says whether a capture is left to refund.
    /// An order never recorded is recorded now, ended; another order
    /// recorded under the same ID is not touched.
    pub async fn finish(&self, order: &Order, ending: &Ending) -> Result<Finished, ServiceError> {
        let mut finished = Finished::default();
        match self.recorded_as(order).await? {
            Some(true) => {}
            Some(false) => {
                finished.not_this_order = true;
                return Ok(finished);
            }
            // Ended before its record was written (a cancel that came
            // first): record it, so it is listed and its notice recorded.
            None => {
                self.create(order, None).await?;
            }
        }
        let row = sqlx::query(
            "SELECT outcome, final_status, final_code, final_message, final_reason, released,
                    refund_payment_id, ended_now, confirmation
               FROM finish_order($1, $2, $3, $4, $5, $6)",
        )
        .bind(order.id().as_str())
        .bind(ending.status().as_str())
        .bind(ending.step().map(Step::as_str))
        .bind(ending.failure().map(|(c, _)| c.as_str()))
        .bind(ending.failure().map(|(_, m)| m))
        .bind(ending.cancel_reason())
        .fetch_one(&mut self.db.acquire().await?)
        .await?;
        let text = |column: &str| row.try_get::<Option<String>, _>(column);
        let unknown = |e: crate::domain::RuleError| {
            ServiceError::Transient(anyhow::anyhow!("order {} holds {e}", order.id()))
        };
        match text("outcome")?.as_deref() {
            Some("COMPLETED") => {
                finished.completed = true;
                finished.confirmation = text("confirmation")?
                    .map(|s| s.parse())
                    .transpose()
                    .map_err(unknown)?;
            }
            Some("ENDED") => {
                let failure = match text("final_code")? {
                    Some(code) => Some((
                        code.parse::<FailureCode>().map_err(unknown)?,
                        text("final_message")?.unwrap_or_default(),
                    )),
                    None => None,
                };
                let status = text("final_status")?
                    .unwrap_or_default()
                    .parse()
                    .map_err(unknown)?;
                let recorded =
                    Ending::from_row(status, ending.step(), failure, text("final_reason")?)
                        .map_err(|e| {
                            ServiceError::Transient(anyhow::anyhow!("order {}: {e}", order.id()))
                        })?;
                finished.ending = Some(recorded);
                finished.released = row.try_get::<Option<i32>, _>("released")?.unwrap_or(0) as u64;
                finished.refund_due = row
                    .try_get::<Option<i64>, _>("refund_payment_id")?
                    .is_some();
                finished.ended_now = row.try_get::<Option<bool>, _>("ended_now")? == Some(true);
            }
            // Gone since it was recorded (`db reset`): the retry records it again.
            _ => {
                return Err(ServiceError::Unavailable(anyhow::anyhow!(
                    "order {} was recorded but is not found",
                    order.id()
                )));
            }
        }
        Ok(finished)
    }
}

pub use crate::domain::Ending;

/// What ending an order did, from what the database holds.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Finished {
    /// The order had completed (its confirmation went out, or may have):
    /// nothing changed.
    pub completed: bool,
    /// A completed order's confirmation, as recorded. (Absent from
    /// histories recorded before it.)
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confirmation: Option<Delivery>,
    /// Another order is recorded under this order's ID: nothing was
    /// touched, and no notice is recorded for it.
    #[serde(default)]
    pub not_this_order: bool,
    /// How the order ended, as recorded (an earlier ending wins).
    pub ending: Option<Ending>,
    /// Reservation lines put back now.
    pub released: u64,
    /// The amount refunded now (by the caller, when `refund_due`).
    pub refunded: Option<Money>,
    /// A capture is left to refund.
    #[serde(skip)]
    pub refund_due: bool,
    /// This call recorded the ending (an earlier one had not).
    #[serde(skip)]
    pub ended_now: bool,
}
