//! Reading the `orders` table for `order list`.

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::Serialize;
use sqlx::{PgPool, Row};

use crate::domain::{CustomerId, OrderId, OrderStatus};

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

/// When order `id` was created, if it exists: where `list` resumes.
pub async fn created_at(pool: &PgPool, id: &OrderId) -> Result<Option<DateTime<Utc>>, sqlx::Error> {
    sqlx::query_scalar("SELECT created_at FROM orders WHERE order_id = $1")
        .bind(id.as_str())
        .fetch_optional(pool)
        .await
}

/// Orders, newest first (ties: the greater order ID first), optionally of
/// one status or customer, and only those after `after` — the creation
/// time and ID of the last order of the previous page — in that order
/// (keyset paging: one index range scan at any depth).
pub async fn list(
    pool: &PgPool,
    status: Option<OrderStatus>,
    customer: Option<&CustomerId>,
    after: Option<(DateTime<Utc>, &OrderId)>,
    limit: u32,
) -> Result<Vec<OrderSummary>, sqlx::Error> {
    // One statement per shape, so that each is planned for its index.
    let mut sql = String::from(
        "SELECT order_id, status, step, customer_id, total_amount, currency, payment_method,
                failure_code, created_at, updated_at
           FROM orders WHERE true",
    );
    if status.is_some() {
        sql.push_str(" AND status = $1");
    }
    if customer.is_some() {
        sql.push_str(" AND customer_id = $2");
    }
    if after.is_some() {
        sql.push_str(" AND (created_at, order_id) < ($3, $4)");
    }
    sql.push_str(" ORDER BY created_at DESC, order_id DESC LIMIT $5");
    let rows = sqlx::query(&sql)
        .bind(status.map(OrderStatus::as_str))
        .bind(customer.map(CustomerId::as_str))
        .bind(after.map(|(at, _)| at))
        .bind(after.map(|(_, id)| id.as_str()))
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
