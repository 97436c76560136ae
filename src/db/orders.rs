//! Reading the `orders` table for `order list`.

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::Serialize;
use sqlx::{PgPool, Row};

use crate::domain::{CustomerId, OrderId, OrderStatus};

/// One row of `order list -o json`.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
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

/// Which orders `list` and `count` see: optionally of one status or
/// customer, and only those after `after` — the creation time and ID of
/// the last order of the previous page — newest first.
#[derive(Debug, Clone, Copy, Default)]
pub struct Filter<'a> {
    /// Any of these statuses (none: any status).
    pub statuses: &'a [OrderStatus],
    pub customer: Option<&'a CustomerId>,
    pub after: Option<(DateTime<Utc>, &'a OrderId)>,
}

impl Filter<'_> {
    /// `FROM orders WHERE …` with parameters $1–$4; one statement per
    /// shape, so that each is planned for its index.
    fn tables_and_conditions(&self) -> String {
        let mut sql = String::from(" FROM orders WHERE true");
        if !self.statuses.is_empty() {
            sql.push_str(" AND status = ANY($1)");
        }
        if self.customer.is_some() {
            sql.push_str(" AND customer_id = $2");
        }
        if self.after.is_some() {
            sql.push_str(" AND (created_at, order_id) < ($3, $4)");
        }
        sql
    }

    fn bind<'q>(
        &self,
        query: sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments>,
    ) -> sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments> {
        query
            .bind(
                self.statuses
                    .iter()
                    .map(|s| s.as_str())
                    .collect::<Vec<&str>>(),
            )
            .bind(self.customer.map(|c| c.as_str().to_owned()))
            .bind(self.after.map(|(at, _)| at))
            .bind(self.after.map(|(_, id)| id.as_str().to_owned()))
    }
}

/// How many orders `filter` sees, counting no further than `cap` (a count
/// of millions of rows would cost more than the page it describes).
pub async fn count_up_to(pool: &PgPool, filter: &Filter<'_>, cap: u32) -> Result<i64, sqlx::Error> {
    let sql = format!(
        "SELECT count(*) FROM (SELECT 1{} LIMIT $5) AS page",
        filter.tables_and_conditions()
    );
    filter
        .bind(sqlx::query(&sql))
        .bind(i64::from(cap))
        .fetch_one(pool)
        .await?
        .try_get(0)
}

/// The orders `filter` sees, newest first (ties: the greater order ID
/// first), at most `limit` (keyset paging: one index range scan at any
/// depth).
pub async fn list(
    pool: &PgPool,
    filter: &Filter<'_>,
    limit: u32,
) -> Result<Vec<OrderSummary>, sqlx::Error> {
    let sql = format!(
        "SELECT order_id, status, step, customer_id, total_amount, currency, payment_method,
                failure_code, created_at, updated_at{}
          ORDER BY created_at DESC, order_id DESC LIMIT $5",
        filter.tables_and_conditions()
    );
    let rows = filter
        .bind(sqlx::query(&sql))
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

/// What an order did to money, stock and its customer, as the database
/// holds it: `order status --timeline`.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Effects {
    /// Whether the order has a row at all.
    pub recorded: bool,
    pub payments: Vec<PaymentRecord>,
    pub reservations: Vec<ReservationRecord>,
    pub notifications: Vec<NoticeRecord>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PaymentRecord {
    pub status: String,
    pub amount: String,
    pub currency: String,
    pub attempt: i32,
    pub created_at: DateTime<Utc>,
    /// When it last changed: its capture or decline, or its refund.
    pub updated_at: DateTime<Utc>,
    pub refunded_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReservationRecord {
    #[serde(rename = "productID")]
    pub product_id: String,
    pub quantity: i32,
    pub status: String,
    pub created_at: DateTime<Utc>,
    pub released_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NoticeRecord {
    pub kind: String,
    pub status: String,
    pub attempts: i32,
    pub created_at: DateTime<Utc>,
    pub sent_at: Option<DateTime<Utc>>,
}

/// Order `id`'s payments, reservations and notices, oldest first.
pub async fn effects(pool: &PgPool, id: &str) -> Result<Effects, sqlx::Error> {
    let recorded: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM orders WHERE order_id = $1)")
            .bind(id)
            .fetch_one(pool)
            .await?;
    let payments = sqlx::query(
        "SELECT status, amount::text AS amount, currency::text AS currency, attempt,
                created_at, updated_at, refunded_at
           FROM payments WHERE order_id = $1 ORDER BY payment_id",
    )
    .bind(id)
    .fetch_all(pool)
    .await?
    .iter()
    .map(|r| {
        Ok(PaymentRecord {
            status: r.try_get("status")?,
            amount: r.try_get("amount")?,
            currency: r.try_get("currency")?,
            attempt: r.try_get("attempt")?,
            created_at: r.try_get("created_at")?,
            updated_at: r.try_get("updated_at")?,
            refunded_at: r.try_get("refunded_at")?,
        })
    })
    .collect::<Result<_, sqlx::Error>>()?;
    let reservations = sqlx::query(
        "SELECT product_id, quantity, status, created_at, released_at
           FROM inventory_reservations WHERE order_id = $1 ORDER BY line_no",
    )
    .bind(id)
    .fetch_all(pool)
    .await?
    .iter()
    .map(|r| {
        Ok(ReservationRecord {
            product_id: r.try_get("product_id")?,
            quantity: r.try_get("quantity")?,
            status: r.try_get("status")?,
            created_at: r.try_get("created_at")?,
            released_at: r.try_get("released_at")?,
        })
    })
    .collect::<Result<_, sqlx::Error>>()?;
    let notifications = sqlx::query(
        "SELECT kind, status, attempts, created_at, sent_at
           FROM notifications WHERE order_id = $1 ORDER BY notification_id",
    )
    .bind(id)
    .fetch_all(pool)
    .await?
    .iter()
    .map(|r| {
        Ok(NoticeRecord {
            kind: r.try_get("kind")?,
            status: r.try_get("status")?,
            attempts: r.try_get("attempts")?,
            created_at: r.try_get("created_at")?,
            sent_at: r.try_get("sent_at")?,
        })
    })
    .collect::<Result<_, sqlx::Error>>()?;
    Ok(Effects {
        recorded,
        payments,
        reservations,
        notifications,
    })
}

/// Which orders a bulk action (`order cancel` over a selection) takes.
#[derive(Debug, Clone, Default)]
pub struct Pick<'a> {
    /// Any of these statuses (none: any).
    pub statuses: &'a [OrderStatus],
    pub customer: Option<&'a CustomerId>,
    /// Any of these failure codes (none: any).
    pub failure_codes: &'a [String],
    pub created_after: Option<DateTime<Utc>>,
    pub created_before: Option<DateTime<Utc>>,
}

/// The IDs of the orders `pick` takes, oldest first.
pub async fn picked(pool: &PgPool, pick: &Pick<'_>) -> Result<Vec<String>, sqlx::Error> {
    let statuses: Vec<&str> = pick.statuses.iter().map(|s| s.as_str()).collect();
    sqlx::query_scalar(
        "SELECT order_id FROM orders
          WHERE (cardinality($1::text[]) = 0 OR status = ANY($1))
            AND ($2::text IS NULL OR customer_id = $2)
            AND (cardinality($3::text[]) = 0 OR failure_code = ANY($3))
            AND created_at > COALESCE($4, '-infinity'::timestamptz)
            AND created_at < COALESCE($5, 'infinity'::timestamptz)
          ORDER BY created_at, order_id",
    )
    .bind(&statuses)
    .bind(pick.customer.map(|c| c.as_str()))
    .bind(pick.failure_codes)
    .bind(pick.created_after)
    .bind(pick.created_before)
    .fetch_all(pool)
    .await
}

/// Records that order `id` is resubmitted as `new_id`, unless it already
/// was; returns the ID it is resubmitted as (`new_id`, or the earlier one).
pub async fn link_resubmission(
    pool: &PgPool,
    id: &str,
    new_id: &str,
) -> Result<String, sqlx::Error> {
    sqlx::query(
        "INSERT INTO resubmissions (order_id, resubmitted_as) VALUES ($1, $2)
         ON CONFLICT (order_id) DO NOTHING",
    )
    .bind(id)
    .bind(new_id)
    .execute(pool)
    .await?;
    sqlx::query_scalar("SELECT resubmitted_as FROM resubmissions WHERE order_id = $1")
        .bind(id)
        .fetch_one(pool)
        .await
}

/// Order `id`'s resubmission links: the order it was resubmitted from,
/// and the order it was resubmitted as.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Links {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resubmitted_from: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resubmitted_as: Option<String>,
}

pub async fn links(pool: &PgPool, id: &str) -> Result<Links, sqlx::Error> {
    let row = sqlx::query(
        "SELECT (SELECT order_id FROM resubmissions WHERE resubmitted_as = $1) AS resubmitted_from,
                (SELECT resubmitted_as FROM resubmissions WHERE order_id = $1) AS resubmitted_as",
    )
    .bind(id)
    .fetch_one(pool)
    .await?;
    Ok(Links {
        resubmitted_from: row.try_get("resubmitted_from")?,
        resubmitted_as: row.try_get("resubmitted_as")?,
    })
}

/// What the catalog says of `products` now: price and stock, by ID.
pub async fn catalog(
    pool: &PgPool,
    products: &[&str],
) -> Result<std::collections::HashMap<String, (Decimal, i32)>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT product_id, unit_price, stock FROM products WHERE product_id = ANY($1)",
    )
    .bind(products)
    .fetch_all(pool)
    .await?;
    rows.iter()
        .map(|r| {
            Ok((
                r.try_get("product_id")?,
                (r.try_get("unit_price")?, r.try_get("stock")?),
            ))
        })
        .collect()
}

/// Which of `ids` have a row.
pub async fn recorded(pool: &PgPool, ids: &[String]) -> Result<Vec<String>, sqlx::Error> {
    sqlx::query_scalar("SELECT order_id FROM orders WHERE order_id = ANY($1)")
        .bind(ids)
        .fetch_all(pool)
        .await
}
