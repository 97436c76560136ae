//! The `orders` and `order_items` tables: the record of each order and its
//! status, kept current by the steps so `order list` can read it.

use rust_decimal::Decimal;
use sqlx::Row;

use super::ServiceError;
use crate::db::pool::Connections;
use crate::domain::{FailureCode, Order, OrderId, OrderStatus, Step};

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
            line_nos: (0..order.items.len() as i16).collect(),
            products: order.items.iter().map(|l| l.product_id.as_str()).collect(),
            quantities: order
                .items
                .iter()
                .map(|l| l.quantity.get() as i32)
                .collect(),
            prices: order
                .items
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
    pub async fn create(&self, order: &Order) -> Result<bool, ServiceError> {
        // One statement: the order and its lines, or nothing when the ID exists.
        let lines = LineArrays::of(order);
        let mut conn = self.db.acquire().await?;
        let inserted: i64 = sqlx::query_scalar(
            "WITH new_order AS (
                 INSERT INTO orders (order_id, customer_id, customer_email, payment_method,
                                     total_amount, currency, status, step)
                 VALUES ($1, $2, $3, $4, $5, $6, 'CREATED', 'create_order')
                 ON CONFLICT (order_id) DO NOTHING
                 RETURNING order_id),
             new_lines AS (
                 INSERT INTO order_items (order_id, line_no, product_id, quantity, unit_price)
                 SELECT new_order.order_id, l.*
                   FROM new_order, UNNEST($7::smallint[], $8::text[], $9::int[], $10::numeric[]) AS l
                 RETURNING 1)
             SELECT count(*) FROM new_order",
        )
        .bind(order.id.as_str())
        .bind(order.customer_id.as_str())
        .bind(order.customer_email.as_ref().map(|e| e.as_str()))
        .bind(order.payment_method.as_str())
        .bind(order.total_amount.as_decimal())
        .bind(order.currency.as_str())
        .bind(&lines.line_nos)
        .bind(&lines.products)
        .bind(&lines.quantities)
        .bind(&lines.prices)
        .fetch_one(&mut conn)
        .await?;
        if inserted == 1 {
            return Ok(true);
        }
        // Already there: the same order is fine, another one is not.
        let row = sqlx::query(
            "SELECT customer_id, total_amount, currency, payment_method,
                    (SELECT array_agg(product_id || ':' || quantity || ':' || unit_price ORDER BY line_no)
                       FROM order_items i WHERE i.order_id = o.order_id) AS lines
               FROM orders o WHERE order_id = $1",
        )
        .bind(order.id.as_str())
        .fetch_one(&mut conn)
        .await?;
        let lines: Vec<String> = row
            .try_get::<Option<Vec<String>>, _>("lines")?
            .unwrap_or_default();
        let expected: Vec<String> = order
            .items
            .iter()
            .map(|l| format!("{}:{}:{}", l.product_id, l.quantity, l.unit_price))
            .collect();
        let same = row.try_get::<String, _>("customer_id")? == order.customer_id.as_str()
            && row.try_get::<Decimal, _>("total_amount")? == order.total_amount.as_decimal()
            && row.try_get::<String, _>("currency")? == order.currency.as_str()
            && row.try_get::<String, _>("payment_method")? == order.payment_method.as_str()
            && lines == expected;
        if !same {
            return Err(ServiceError::business(
                FailureCode::InvalidOrder,
                format!(
                    "an order {} with different content is already recorded",
                    order.id
                ),
            ));
        }
        Ok(false)
    }

    /// Sets the order's status and step; for `FAILED` with its failure, for
    /// `CANCELLED` with the reason. Repeating it is harmless.
    pub async fn set_status(
        &self,
        order_id: &OrderId,
        status: OrderStatus,
        step: Option<Step>,
        failure: Option<(FailureCode, &str)>,
        cancel_reason: Option<&str>,
    ) -> Result<(), ServiceError> {
        sqlx::query(
            "UPDATE orders SET status = $2, step = $3, failure_code = $4, failure_message = $5,
                    cancel_reason = COALESCE($6, cancel_reason)
              WHERE order_id = $1",
        )
        .bind(order_id.as_str())
        .bind(status.as_str())
        .bind(step.map(Step::as_str))
        .bind(failure.map(|(c, _)| c.as_str()))
        .bind(failure.map(|(_, m)| m))
        .bind(cancel_reason)
        .execute(&mut self.db.acquire().await?)
        .await?;
        Ok(())
    }
}
