//! The catalog table.

use rust_decimal::Decimal;
use sqlx::{PgPool, Row};

use crate::domain::{Money, Product, ProductId, ProductName, Stock};

/// How an import changed the catalog.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct UpsertCounts {
    pub inserted: u64,
    pub updated: u64,
}

/// Inserts or updates every product in one transaction: all or nothing.
pub async fn upsert_all(pool: &PgPool, products: &[Product]) -> Result<UpsertCounts, sqlx::Error> {
    let mut tx = pool.begin().await?;
    let mut counts = UpsertCounts::default();
    for p in products {
        let inserted: bool = sqlx::query_scalar(
            "INSERT INTO products (product_id, name, unit_price, stock) VALUES ($1, $2, $3, $4)
             ON CONFLICT (product_id) DO UPDATE
                SET name = EXCLUDED.name, unit_price = EXCLUDED.unit_price, stock = EXCLUDED.stock
             RETURNING (xmax = 0)",
        )
        .bind(p.id.as_str())
        .bind(p.name.as_str())
        .bind(p.unit_price.as_decimal())
        .bind(p.stock.get())
        .fetch_one(&mut *tx)
        .await?;
        if inserted {
            counts.inserted += 1;
        } else {
            counts.updated += 1;
        }
    }
    tx.commit().await?;
    Ok(counts)
}

/// The whole catalog, by product ID.
pub async fn list(pool: &PgPool) -> anyhow::Result<Vec<Product>> {
    let rows =
        sqlx::query("SELECT product_id, name, unit_price, stock FROM products ORDER BY product_id")
            .fetch_all(pool)
            .await?;
    rows.iter()
        .map(|row| {
            // The table's constraints make these hold; a failure means the
            // database was changed behind our back.
            let id: String = row.try_get("product_id")?;
            let name: String = row.try_get("name")?;
            let price: Decimal = row.try_get("unit_price")?;
            let stock: i32 = row.try_get("stock")?;
            let bad = |e: crate::domain::RuleError| {
                anyhow::anyhow!("product {id:?} in the database is invalid: {e}")
            };
            Ok(Product {
                id: ProductId::parse(&id).map_err(bad)?,
                name: ProductName::parse(&name).map_err(bad)?,
                unit_price: Money::try_from(price).map_err(bad)?,
                stock: Stock::parse(i64::from(stock)).map_err(bad)?,
            })
        })
        .collect()
}
