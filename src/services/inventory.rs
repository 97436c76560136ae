//! Inventory: all lines of an order reserved at once or none, never
//! overselling (row locks on the products, in a fixed order), and releases
//! that put exactly what was taken back.

use std::collections::HashMap;

use async_trait::async_trait;
use rust_decimal::Decimal;
use sqlx::{PgPool, Row};

use super::ServiceError;
use super::orders::LineArrays;
use crate::domain::{FailureCode, Order, OrderId};

/// What reserving did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reserved {
    /// Stock was taken for every line now.
    Now { lines: usize },
    /// This order's reservation already existed (a retry or replay).
    Already,
}

#[async_trait]
pub trait Inventory: Send + Sync {
    /// Takes stock for every line of the order, or for none: checks that each
    /// product exists, that its catalog price is the order's unit price, and
    /// that enough is in stock.
    async fn reserve(&self, order: &Order) -> Result<Reserved, ServiceError>;

    /// Puts back whatever this order still holds; returns how many lines it
    /// released (0 when there was nothing, or it was already released).
    async fn release(&self, order_id: &OrderId) -> Result<u64, ServiceError>;
}

pub struct PgInventory {
    pool: PgPool,
}

impl PgInventory {
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }
}

#[async_trait]
impl Inventory for PgInventory {
    async fn reserve(&self, order: &Order) -> Result<Reserved, ServiceError> {
        let mut tx = self.pool.begin().await?;
        // The order row serialises this order's reserve and release.
        sqlx::query("SELECT 1 FROM orders WHERE order_id = $1 FOR UPDATE")
            .bind(order.id.as_str())
            .fetch_optional(&mut *tx)
            .await?
            .ok_or_else(|| {
                ServiceError::Transient(anyhow::anyhow!("order {} is not recorded yet", order.id))
            })?;
        // A separate statement, so that its snapshot is taken after the lock
        // and sees what a concurrent reserve committed while we waited.
        let held: Option<Vec<String>> = sqlx::query_scalar(
            "SELECT array_agg(status) FROM inventory_reservations WHERE order_id = $1",
        )
        .bind(order.id.as_str())
        .fetch_one(&mut *tx)
        .await?;
        if let Some(held) = held {
            if held.iter().all(|s| s == "RESERVED") {
                return Ok(Reserved::Already);
            }
            return Err(ServiceError::business(
                FailureCode::Internal,
                format!(
                    "order {}'s reservation was already released; it cannot be reserved again",
                    order.id
                ),
            ));
        }
        // Lock every product of the order at once, in ID order, so
        // concurrent orders cannot deadlock or oversell.
        let lines = LineArrays::of(order);
        let products: HashMap<String, (Decimal, i32)> = sqlx::query(
            "SELECT product_id, unit_price, stock FROM products
              WHERE product_id = ANY($1) ORDER BY product_id FOR UPDATE",
        )
        .bind(&lines.products)
        .fetch_all(&mut *tx)
        .await?
        .iter()
        .map(|r| {
            Ok((
                r.try_get("product_id")?,
                (r.try_get("unit_price")?, r.try_get("stock")?),
            ))
        })
        .collect::<Result<_, sqlx::Error>>()?;
        let mut by_product: Vec<&crate::domain::OrderLine> = order.items.iter().collect();
        by_product.sort_by(|a, b| a.product_id.cmp(&b.product_id));
        for line in by_product {
            let Some(&(price, stock)) = products.get(line.product_id.as_str()) else {
                return Err(ServiceError::business(
                    FailureCode::UnknownProduct,
                    format!("product {} is not in the catalog", line.product_id),
                ));
            };
            if price != line.unit_price.as_decimal() {
                return Err(ServiceError::business(
                    FailureCode::PriceMismatch,
                    format!(
                        "{} costs {price} in the catalog, but the order says {}",
                        line.product_id, line.unit_price
                    ),
                ));
            }
            let wanted = line.quantity.get() as i32;
            if stock < wanted {
                return Err(ServiceError::business(
                    FailureCode::OutOfStock,
                    format!("{}: {wanted} requested, {stock} in stock", line.product_id),
                ));
            }
        }
        // Take the stock, record a reservation per line and the order's
        // new status: one statement.
        sqlx::query(
            "WITH lines AS (
                 SELECT * FROM UNNEST($2::smallint[], $3::text[], $4::int[]) AS l(line_no, product_id, quantity)),
             taken AS (
                 UPDATE products p SET stock = p.stock - l.quantity
                   FROM lines l WHERE p.product_id = l.product_id
                 RETURNING 1),
             held AS (
                 INSERT INTO inventory_reservations (order_id, line_no, product_id, quantity)
                 SELECT $1, line_no, product_id, quantity FROM lines
                 RETURNING 1)
             UPDATE orders SET status = 'INVENTORY_RESERVED', step = 'reserve_inventory' WHERE order_id = $1",
        )
        .bind(order.id.as_str())
        .bind(&lines.line_nos)
        .bind(&lines.products)
        .bind(&lines.quantities)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(Reserved::Now {
            lines: order.items.len(),
        })
    }

    async fn release(&self, order_id: &OrderId) -> Result<u64, ServiceError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("SELECT 1 FROM orders WHERE order_id = $1 FOR UPDATE")
            .bind(order_id.as_str())
            .execute(&mut *tx)
            .await?;
        // Same lock order as reserve: products by ID.
        sqlx::query(
            "SELECT 1 FROM products WHERE product_id IN
                 (SELECT product_id FROM inventory_reservations WHERE order_id = $1 AND status = 'RESERVED')
              ORDER BY product_id FOR UPDATE",
        )
        .bind(order_id.as_str())
        .execute(&mut *tx)
        .await?;
        let released = sqlx::query(
            "WITH released AS (
                 UPDATE inventory_reservations SET status = 'RELEASED', released_at = now()
                  WHERE order_id = $1 AND status = 'RESERVED'
              RETURNING product_id, quantity)
             UPDATE products p SET stock = p.stock + r.quantity FROM released r
              WHERE p.product_id = r.product_id",
        )
        .bind(order_id.as_str())
        .execute(&mut *tx)
        .await?
        .rows_affected();
        tx.commit().await?;
        Ok(released)
    }
}
