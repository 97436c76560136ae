//! `bench --big-tables N`: the orders table grown to N rows, and what the
//! reading commands cost a user then, each timed as a whole process
//! (start, connect, query, print), as a shell sees it.

use std::time::{Duration, Instant};

use anyhow::Context as _;
use serde::Serialize;

use super::driver::median;
use crate::stack::local::LocalStack;

/// Runs of each command; the figures are over all of them.
pub const RUNS: usize = 20;
/// Runs of `audit --all`, which reads every order.
pub const AUDIT_RUNS: usize = 3;

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BigTables {
    pub orders: u32,
    pub fill_seconds: f64,
    pub commands: Vec<Timed>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Timed {
    pub command: String,
    pub p50_ms: f64,
    pub max_ms: f64,
}

/// Adds `orders` finished orders (one line each; one in 20 FAILED, one in
/// 50 CANCELLED; 10,000 customers; a second apart), then times each
/// reading command. `finished`: an order that ran on this stack's
/// Temporal, for `order status`.
pub async fn measure(
    stack: &LocalStack,
    orders: u32,
    run_id: &str,
    finished: &str,
) -> anyhow::Result<BigTables> {
    let prefix = format!("BIG-{run_id}-");
    let started = Instant::now();
    fill(&stack.pool, orders, &prefix).await?;
    let fill_seconds = started.elapsed().as_secs_f64();
    let middle = format!("{prefix}{}", orders.div_ceil(2));
    let commands: [&[&str]; 7] = [
        &["order", "list"],
        &["order", "list", "--status", "FAILED", "--limit", "50"],
        &["order", "list", "--status", "CANCELLED", "--limit", "50"],
        // No order has it: the whole creation-time index is read.
        &["order", "list", "--status", "PENDING", "--limit", "50"],
        &["order", "list", "--customer", "CUST-42"],
        &["order", "list", "--after", &middle],
        &["order", "status", finished],
    ];
    let mut timed = Vec::new();
    for args in commands {
        timed.push(time(stack, args, RUNS).await?);
    }
    // Every order read and checked: three runs, not twenty. PostgreSQL
    // only, since the filled orders have no workflows to compare with.
    timed.push(time(stack, &["audit", "--all", "--database-only"], AUDIT_RUNS).await?);
    Ok(BigTables {
        orders,
        fill_seconds,
        commands: timed,
    })
}

/// The rows are consistent by construction (each order's one line adds up
/// to its total), so the constraint triggers, which would check two
/// million rows one by one at commit, are off for this transaction.
async fn fill(pool: &sqlx::PgPool, orders: u32, prefix: &str) -> anyhow::Result<()> {
    let mut tx = pool.begin().await?;
    sqlx::query("SET LOCAL session_replication_role = replica")
        .execute(&mut *tx)
        .await
        .context("turning triggers off to fill the table (needs a superuser)")?;
    sqlx::query(
        "INSERT INTO orders (order_id, customer_id, payment_method, total_amount, currency,
                             status, step, failure_code, failure_message, created_at, updated_at)
         SELECT $2 || i, 'CUST-' || (i % 10000), 'card', 1.00, 'USD',
                CASE WHEN i % 20 = 0 THEN 'FAILED' WHEN i % 50 = 1 THEN 'CANCELLED' ELSE 'COMPLETED' END,
                'send_notification',
                CASE WHEN i % 20 = 0 THEN 'OUT_OF_STOCK' END,
                CASE WHEN i % 20 = 0 THEN 'not enough stock' END,
                now() - make_interval(secs => $1 - i), now() - make_interval(secs => $1 - i)
           FROM generate_series(1, $1) AS i",
    )
    .bind(orders as i32)
    .bind(prefix)
    .execute(&mut *tx)
    .await
    .context("filling the orders table")?;
    sqlx::query(
        "INSERT INTO order_items (order_id, line_no, product_id, quantity, unit_price)
         SELECT $2 || i, 0, 'BENCH-0', 1, 1.00 FROM generate_series(1, $1) AS i",
    )
    .bind(orders as i32)
    .bind(prefix)
    .execute(&mut *tx)
    .await
    .context("filling the order lines")?;
    // What each ending leaves, so that `audit` finds them clean: a
    // COMPLETED order's capture and held stock, a CANCELLED one's stock
    // given back (a FAILED one ran out of stock: none taken), one notice each.
    let status =
        "CASE WHEN i % 20 = 0 THEN 'FAILED' WHEN i % 50 = 1 THEN 'CANCELLED' ELSE 'COMPLETED' END";
    for (what, statement) in [
        (
            "filling the payments",
            format!(
                "INSERT INTO payments (order_id, idempotency_key, amount, currency, payment_method,
                                       status, gateway_ref)
                 SELECT $2 || i, $2 || i || '/pay', 1.00, 'USD', 'card', 'CAPTURED', 'bench'
                   FROM generate_series(1, $1) AS i WHERE {status} = 'COMPLETED'"
            ),
        ),
        (
            "filling the reservations",
            format!(
                "INSERT INTO inventory_reservations (order_id, line_no, product_id, quantity,
                                                     unit_price, status, released_at)
                 SELECT $2 || i, 0, 'BENCH-0', 1, 1.00,
                        CASE {status} WHEN 'COMPLETED' THEN 'RESERVED' ELSE 'RELEASED' END,
                        CASE {status} WHEN 'COMPLETED' THEN NULL ELSE now() END
                   FROM generate_series(1, $1) AS i WHERE {status} <> 'FAILED'"
            ),
        ),
        (
            "filling the notifications",
            format!(
                "INSERT INTO notifications (order_id, kind, status, attempts, sent_at)
                 SELECT $2 || i,
                        CASE {status} WHEN 'COMPLETED' THEN 'CONFIRMATION'
                                      WHEN 'FAILED' THEN 'FAILURE' ELSE 'CANCELLATION' END,
                        'SENT', 1, now()
                   FROM generate_series(1, $1) AS i"
            ),
        ),
    ] {
        sqlx::query(&statement)
            .bind(orders as i32)
            .bind(prefix)
            .execute(&mut *tx)
            .await
            .context(what)?;
    }
    tx.commit().await?;
    sqlx::query("ANALYZE orders, order_items, payments, inventory_reservations, notifications")
        .execute(pool)
        .await?;
    Ok(())
}

/// Runs `orderflow ARGS` `runs` times against the stack.
async fn time(stack: &LocalStack, args: &[&str], runs: usize) -> anyhow::Result<Timed> {
    let exe = std::env::current_exe().context("finding this program")?;
    let mut took = Vec::with_capacity(runs);
    for _ in 0..runs {
        let started = Instant::now();
        let mut command = tokio::process::Command::new(&exe);
        command
            .args(args)
            .args(["-o", "json", "--address", &stack.temporal.address])
            .args(["--namespace", &stack.temporal.namespace])
            .env("DATABASE_URL", stack.database.url());
        if let Some(keys) = &stack.info.encryption_key_file {
            command.arg("--encryption-key-file").arg(keys);
        }
        let out = command
            .output()
            .await
            .with_context(|| format!("running orderflow {}", args.join(" ")))?;
        took.push(started.elapsed());
        if !out.status.success() {
            anyhow::bail!(
                "orderflow {} failed: {}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
    }
    let mut ms: Vec<f64> = took
        .iter()
        .map(|d: &Duration| d.as_secs_f64() * 1000.0)
        .collect();
    ms.sort_by(f64::total_cmp);
    Ok(Timed {
        command: format!("orderflow {}", args.join(" ")),
        p50_ms: median(&ms),
        max_ms: ms[ms.len() - 1],
    })
}
