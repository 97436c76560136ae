//! Reading the `orders` table for `order list`.

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::Serialize;
use sqlx::{PgPool, Row};

use crate::domain::{CustomerId, OrderStatus};

/// One row of `order list -o json`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OrderSummary {
    pub order_id: String,
    pub status: String,
    pub step: Option<String>,
    #[serde(rename = "customerID")]
    pub customer_id: String,
    pub total_amount: String,
    pub currency: String,
    pub payment_method: String,
    pub failure_code: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// Orders, newest first, optionally of one status or customer.
pub async fn list(
    pool: &PgPool,
    status: Option<OrderStatus>,
    customer: Option<&CustomerId>,
    limit: u32,
) -> Result<Vec<OrderSummary>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT order_id, status, step, customer_id, total_amount, currency, payment_method,
                failure_code, created_at, updated_at
           FROM orders
          WHERE ($1::text IS NULL OR status = $1) AND ($2::text IS NULL OR customer_id = $2)
          ORDER BY created_at DESC, order_id
          LIMIT $3",
    )
    .bind(status.map(OrderStatus::as_str))
    .bind(customer.map(CustomerId::as_str))
    .bind(i64::from(limit))
    .fetch_all(pool)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(OrderSummary {
                order_id: r.try_get("order_id")?,
                status: r.try_get("status")?,
                step: r.try_get("step")?,
                customer_id: r.try_get("customer_id")?,
                total_amount: r.try_get::<Decimal, _>("total_amount")?.to_string(),
                currency: r.try_get::<String, _>("currency")?,
                payment_method: r.try_get("payment_method")?,
                failure_code: r.try_get("failure_code")?,
                created_at: r.try_get("created_at")?,
                updated_at: r.try_get("updated_at")?,
            })
        })
        .collect()
}
