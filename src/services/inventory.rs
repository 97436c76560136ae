//! Inventory: all lines of an order reserved at once or none, never
//! overselling (row locks on the products, in a fixed order), and releases
//! that put exactly what was taken back.

use async_trait::async_trait;
use rust_decimal::Decimal;
use sqlx::{PgPool, Row};

use super::ServiceError;
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
        let existing = sqlx::query("SELECT status FROM inventory_reservations WHERE order_id = $1")
            .bind(order.id.as_str())
            .fetch_all(&mut *tx)
            .await?;
        if !existing.is_empty() {
            if existing
                .iter()
                .all(|r| r.get::<String, _>("status") == "RESERVED")
            {
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
        // Lock in product order so concurrent orders cannot deadlock.
        let mut lines: Vec<(usize, &crate::domain::OrderLine)> =
            order.items.iter().enumerate().collect();
        lines.sort_by(|a, b| a.1.product_id.cmp(&b.1.product_id));
        for (line_no, line) in lines {
            let product = sqlx::query(
                "SELECT unit_price, stock FROM products WHERE product_id = $1 FOR UPDATE",
            )
            .bind(line.product_id.as_str())
            .fetch_optional(&mut *tx)
            .await?;
            let Some(product) = product else {
                return Err(ServiceError::business(
                    FailureCode::UnknownProduct,
                    format!("product {} is not in the catalog", line.product_id),
                ));
            };
            let price: Decimal = product.try_get("unit_price")?;
            let stock: i32 = product.try_get("stock")?;
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
            sqlx::query("UPDATE products SET stock = stock - $2 WHERE product_id = $1")
                .bind(line.product_id.as_str())
                .bind(wanted)
                .execute(&mut *tx)
                .await?;
            sqlx::query(
                "INSERT INTO inventory_reservations (order_id, line_no, product_id, quantity) VALUES ($1, $2, $3, $4)",
            )
            .bind(order.id.as_str())
            .bind(line_no as i16)
            .bind(line.product_id.as_str())
            .bind(wanted)
            .execute(&mut *tx)
            .await?;
        }
        sqlx::query("UPDATE orders SET status = 'INVENTORY_RESERVED', step = 'reserve_inventory' WHERE order_id = $1")
            .bind(order.id.as_str())
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
