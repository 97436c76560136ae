//! `orderflow db …` and the schema's own rules, on a real PostgreSQL.

use predicates::prelude::*;
use predicates::str::contains;
use sqlx::Row;

use crate::support::{fresh_database, migrated_database, orderflow, stdout_json};

const TABLES: [&str; 6] = [
    "orders",
    "order_items",
    "products",
    "payments",
    "notifications",
    "inventory_reservations",
];

async fn tables(pool: &sqlx::PgPool) -> Vec<String> {
    sqlx::query("SELECT table_name::text FROM information_schema.tables WHERE table_schema = 'public' ORDER BY 1")
        .fetch_all(pool)
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect()
}

#[tokio::test]
async fn migrate_creates_every_table_and_is_idempotent() {
    let db = fresh_database().await;
    assert!(tables(&db.pool).await.is_empty());

    let first = orderflow()
        .args(["db", "migrate", "-o", "json", "--database-url", &db.url])
        .output()
        .unwrap();
    assert!(first.status.success(), "{first:?}");
    let applied = stdout_json(&first)["applied"].as_array().unwrap().len();
    assert!(applied >= 1);
    let present = tables(&db.pool).await;
    for table in TABLES {
        assert!(
            present.iter().any(|t| t == table),
            "{table} missing from {present:?}"
        );
    }

    let second = orderflow()
        .args(["db", "migrate", "-o", "json", "--database-url", &db.url])
        .output()
        .unwrap();
    assert!(second.status.success());
    assert_eq!(stdout_json(&second)["applied"], serde_json::json!([]));
    orderflow()
        .args(["db", "migrate", "--database-url", &db.url])
        .assert()
        .success()
        .stdout(contains("up to date"));
    assert_eq!(tables(&db.pool).await, present);
}

#[tokio::test]
async fn status_lists_pending_then_applied() {
    let db = fresh_database().await;
    let before = orderflow()
        .args(["db", "status", "-o", "json", "--database-url", &db.url])
        .output()
        .unwrap();
    let before = stdout_json(&before);
    assert!(
        before
            .as_array()
            .unwrap()
            .iter()
            .all(|m| m["state"] == "pending"),
        "{before}"
    );

    orderflow()
        .args(["db", "migrate", "--database-url", &db.url])
        .assert()
        .success();
    let after = orderflow()
        .args(["db", "status", "-o", "json", "--database-url", &db.url])
        .output()
        .unwrap();
    let after = stdout_json(&after);
    for m in after.as_array().unwrap() {
        assert_eq!(m["state"], "applied");
        assert!(m["appliedAt"].is_string());
        assert!(m["version"].is_i64());
    }
    orderflow()
        .args(["db", "status", "--database-url", &db.url])
        .assert()
        .success()
        .stdout(contains("VERSION").and(contains("applied")));
}

async fn insert_product(pool: &sqlx::PgPool, id: &str, stock: i32) {
    sqlx::query(
        "INSERT INTO products (product_id, name, unit_price, stock) VALUES ($1, 'Thing', 9.99, $2)",
    )
    .bind(id)
    .bind(stock)
    .execute(pool)
    .await
    .unwrap();
}

async fn product_count(pool: &sqlx::PgPool) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM products")
        .fetch_one(pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn reset_drops_data_and_reapplies() {
    let db = migrated_database().await;
    insert_product(&db.pool, "PROD-1", 5).await;
    orderflow()
        .args(["db", "reset", "--yes", "--database-url", &db.url])
        .assert()
        .success();
    assert_eq!(product_count(&db.pool).await, 0);
    let present = tables(&db.pool).await;
    for table in TABLES {
        assert!(
            present.iter().any(|t| t == table),
            "{table} missing after reset"
        );
    }
}

#[tokio::test]
async fn reset_without_yes_off_a_terminal_refuses_and_keeps_the_data() {
    let db = migrated_database().await;
    insert_product(&db.pool, "PROD-1", 5).await;
    orderflow()
        .args(["db", "reset", "--database-url", &db.url])
        .write_stdin("yes\n")
        .assert()
        .code(2)
        .stderr(contains("--yes"));
    assert_eq!(product_count(&db.pool).await, 1);
}

#[tokio::test]
async fn stock_cannot_go_negative_in_the_database() {
    let db = migrated_database().await;
    insert_product(&db.pool, "PROD-1", 5).await;
    let err = sqlx::query("UPDATE products SET stock = stock - 6 WHERE product_id = 'PROD-1'")
        .execute(&db.pool)
        .await
        .unwrap_err();
    let db_err = err.as_database_error().expect("a database error");
    assert_eq!(db_err.constraint(), Some("stock_never_negative"));
    let stock: i32 = sqlx::query_scalar("SELECT stock FROM products")
        .fetch_one(&db.pool)
        .await
        .unwrap();
    assert_eq!(stock, 5);
    // Exactly down to zero is fine.
    sqlx::query("UPDATE products SET stock = stock - 5")
        .execute(&db.pool)
        .await
        .unwrap();
}

#[tokio::test]
async fn the_schema_enforces_one_capture_and_one_reservation_per_line() {
    let db = migrated_database().await;
    insert_product(&db.pool, "PROD-1", 5).await;
    let exec = |sql: &'static str| {
        let pool = db.pool.clone();
        async move { sqlx::query(sql).execute(&pool).await }
    };
    // An order and its lines, in one statement (its total is checked
    // against them when the statement's transaction commits).
    exec(
        "WITH o AS (
             INSERT INTO orders (order_id, customer_id, payment_method, total_amount, currency, status)
             VALUES ('ORD-1', 'C-1', 'card', 19.98, 'USD', 'CREATED'))
         INSERT INTO order_items VALUES ('ORD-1', 0, 'PROD-1', 2, 9.99)",
    )
    .await
    .unwrap();
    exec("INSERT INTO inventory_reservations (order_id, line_no, product_id, quantity, unit_price) VALUES ('ORD-1', 0, 'PROD-1', 2, 9.99)")
        .await
        .unwrap();
    let dup = exec("INSERT INTO inventory_reservations (order_id, line_no, product_id, quantity, unit_price) VALUES ('ORD-1', 0, 'PROD-1', 2, 9.99)")
        .await
        .unwrap_err();
    assert!(dup.as_database_error().unwrap().is_unique_violation());

    exec(
        "INSERT INTO payments (order_id, idempotency_key, amount, currency, payment_method, status)
          VALUES ('ORD-1', 'ORD-1/capture', 19.98, 'USD', 'card', 'CAPTURED')",
    )
    .await
    .unwrap();
    let second = exec(
        "INSERT INTO payments (order_id, idempotency_key, amount, currency, payment_method, status)
         VALUES ('ORD-1', 'ORD-1/capture-again', 19.98, 'USD', 'card', 'CAPTURED')",
    )
    .await
    .unwrap_err();
    assert_eq!(
        second.as_database_error().unwrap().constraint(),
        Some("payments_one_capture_per_order")
    );

    // Money is exact NUMERIC and positive.
    let negative = exec("UPDATE products SET unit_price = -1")
        .await
        .unwrap_err();
    assert!(negative.as_database_error().unwrap().constraint().is_some());
    let cents: String =
        sqlx::query_scalar("SELECT (0.10::numeric(12,2) + 0.20::numeric(12,2))::text")
            .fetch_one(&db.pool)
            .await
            .unwrap();
    assert_eq!(cents, "0.30");
}

#[tokio::test]
async fn updated_at_is_maintained_by_a_trigger() {
    let db = migrated_database().await;
    insert_product(&db.pool, "PROD-1", 5).await;
    sqlx::query("UPDATE products SET updated_at = '2000-01-01' WHERE product_id = 'PROD-1'")
        .execute(&db.pool)
        .await
        .unwrap();
    let row = sqlx::query("SELECT updated_at > '2001-01-01' AS fresh FROM products")
        .fetch_one(&db.pool)
        .await
        .unwrap();
    assert!(
        row.get::<bool, _>("fresh"),
        "the trigger sets updated_at on every update"
    );
}
