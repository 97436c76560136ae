//! `orderflow order list`: newest first, from the orders table, or with
//! `--query`, from Temporal's visibility.

use anyhow::Context as _;
use comfy_table::{Cell, CellAlignment};

use crate::cli::ListArgs;
use crate::commands::Context;
use crate::db::orders;
use crate::exit::{Exit, Fail};

pub async fn run(cx: &Context, args: ListArgs) -> anyhow::Result<Exit> {
    if let Some(query) = &args.query {
        return visible(cx, query, args.limit).await;
    }
    let pool = cx.pool().await?;
    let after = match &args.after {
        None => None,
        Some(id) => {
            let at = orders::created_at(&pool, id)
                .await
                .context("reading where the page starts")?
                .ok_or_else(|| {
                    Fail::new(
                        Exit::NotFound,
                        format!("--after {id}: no such order in the database; pass the last order ID of the previous page"),
                    )
                })?;
            Some((at, id))
        }
    };
    let rows = orders::list(
        &pool,
        args.status,
        args.customer.as_ref(),
        after,
        args.limit,
    )
    .await
    .context("listing orders")?;
    let p = &cx.printer;
    if p.is_json() {
        p.json(&rows)?;
        return Ok(Exit::Success);
    }
    if rows.is_empty() {
        p.note("No orders match.");
        return Ok(Exit::Success);
    }
    let mut table = p.table();
    table.set_header([
        "ORDER", "STATUS", "STEP", "CUSTOMER", "TOTAL", "FAILURE", "CREATED",
    ]);
    for r in &rows {
        table.add_row(vec![
            Cell::new(&r.order_id),
            Cell::new(&r.status),
            Cell::new(r.step.as_deref().unwrap_or("-")),
            Cell::new(&r.customer_id),
            Cell::new(format!("{} {}", r.total_amount, r.currency))
                .set_alignment(CellAlignment::Right),
            Cell::new(r.failure_code.as_deref().unwrap_or("")),
            Cell::new(r.created_at.format("%Y-%m-%d %H:%M:%S")),
        ]);
    }
    p.line(table)?;
    if rows.len() == args.limit as usize
        && let Some(last) = rows.last()
    {
        p.note(format!("more may follow: --after {}", last.order_id));
    }
    Ok(Exit::Success)
}

/// `--query`: the orders Temporal's visibility finds, by their search attributes.
async fn visible(cx: &Context, query: &str, limit: u32) -> anyhow::Result<Exit> {
    let (_, client) = super::connect(cx).await?;
    let rows = client.list(query, limit).await?;
    let p = &cx.printer;
    if p.is_json() {
        p.json(&rows)?;
        return Ok(Exit::Success);
    }
    p.note("from Temporal's visibility (--query); without it, orders are listed from the database");
    if rows.is_empty() {
        p.note("No orders match.");
        return Ok(Exit::Success);
    }
    let mut table = p.table();
    table.set_header(["ORDER", "STATUS", "CUSTOMER", "TOTAL", "FAILURE", "STARTED"]);
    for r in &rows {
        table.add_row(vec![
            Cell::new(&r.order_id),
            Cell::new(&r.status),
            Cell::new(r.customer_id.as_deref().unwrap_or("-")),
            Cell::new(r.total_amount.as_deref().unwrap_or("-")).set_alignment(CellAlignment::Right),
            Cell::new(r.failure_code.as_deref().unwrap_or("")),
            Cell::new(
                r.started_at
                    .map(|t| t.format("%Y-%m-%d %H:%M:%S").to_string())
                    .unwrap_or_default(),
            ),
        ]);
    }
    p.line(table)?;
    Ok(Exit::Success)
}
