//! Inventory: all lines of an order reserved at once or none, never
//! overselling (row locks on the products, in a fixed order), and releases
//! that put exactly what was taken back.

use async_trait::async_trait;
use rust_decimal::Decimal;
use sqlx::Row;

use super::ServiceError;
use crate::db::pool::Connections;
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
    db: Connections,
}

impl PgInventory {
    pub fn new(db: Connections) -> Self {
        Self { db }
    }
}

#[async_trait]
impl Inventory for PgInventory {
    async fn reserve(&self, order: &Order) -> Result<Reserved, ServiceError> {
        // One call: the locks, the checks and the writes run inside
        // PostgreSQL (migrations/…_stock_functions.sql), reading the lines
        // the create step recorded.
        let row = sqlx::query(
            "SELECT outcome, lines, line_product, line_quantity, line_price, catalog_price, catalog_stock
               FROM reserve_inventory($1)",
        )
        .bind(order.id().as_str())
        .fetch_one(&mut self.db.acquire().await?)
        .await?;
        let outcome: String = row.try_get("outcome")?;
        let product = || row.try_get::<Option<String>, _>("line_product");
        match outcome.as_str() {
            "RESERVED" => Ok(Reserved::Now {
                lines: row.try_get::<Option<i32>, _>("lines")?.unwrap_or(0) as usize,
            }),
            "ALREADY" => Ok(Reserved::Already),
            "RELEASED" => Err(ServiceError::business(
                FailureCode::Internal,
                format!(
                    "order {}'s reservation was already released; it cannot be reserved again",
                    order.id()
                ),
            )),
            "ENDED" => Err(super::payment::ended(order.id(), "ended")),
            "NOT_RECORDED" => Err(ServiceError::Transient(anyhow::anyhow!(
                "order {} is not recorded yet",
                order.id()
            ))),
            "UNKNOWN_PRODUCT" => Err(ServiceError::business(
                FailureCode::UnknownProduct,
                format!(
                    "product {} is not in the catalog",
                    product()?.unwrap_or_default()
                ),
            )),
            "PRICE_MISMATCH" => Err(ServiceError::business(
                FailureCode::PriceMismatch,
                format!(
                    "{} costs {} in the catalog, but the order says {}",
                    product()?.unwrap_or_default(),
                    row.try_get::<Option<Decimal>, _>("catalog_price")?
                        .unwrap_or_default(),
                    row.try_get::<Option<Decimal>, _>("line_price")?
                        .unwrap_or_default(),
                ),
            )),
            "OUT_OF_STOCK" => Err(ServiceError::business(
                FailureCode::OutOfStock,
                format!(
                    "{}: {} requested, {} in stock",
                    product()?.unwrap_or_default(),
                    row.try_get::<Option<i32>, _>("line_quantity")?
                        .unwrap_or_default(),
                    row.try_get::<Option<i32>, _>("catalog_stock")?
                        .unwrap_or_default(),
                ),
            )),
            other => Err(ServiceError::Transient(anyhow::anyhow!(
                "reserve_inventory answered {other:?} for order {}",
                order.id()
            ))),
        }
    }

    async fn release(&self, order_id: &OrderId) -> Result<u64, ServiceError> {
        let released: i32 = sqlx::query_scalar("SELECT release_inventory($1)")
            .bind(order_id.as_str())
            .fetch_one(&mut self.db.acquire().await?)
            .await?;
        Ok(released as u64)
    }
}
