//! `orderflow order list`: newest first, from the orders table, or with
//! `--query`, from Temporal's visibility.

use anyhow::Context as _;
use comfy_table::{Cell, CellAlignment};

use crate::cli::ListArgs;
use crate::commands::Context;
use crate::db::orders;
use sqlx::PgPool;

use crate::domain::{CustomerId, OrderId, OrderStatus};
use crate::exit::{Exit, Fail};
use crate::output::cell;

use super::render;

/// One row of `order list -o json` and of the API's list: the order as
/// the database has it, and its page in the Web UI.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct OrderRow {
    #[serde(flatten)]
    pub summary: orders::OrderSummary,
    pub ui_url: String,
}

/// A page of orders: newest first, and whether more follow it.
pub(crate) struct Page {
    pub rows: Vec<orders::OrderSummary>,
    pub more: bool,
}

/// Which orders a page shows.
pub(crate) struct Selection<'a> {
    /// Any of these (none: any status).
    pub statuses: &'a [OrderStatus],
    pub customer: Option<&'a CustomerId>,
    /// The last order ID of the previous page (`--after`, `after=`).
    pub after: Option<&'a OrderId>,
    pub limit: u32,
}

impl Selection<'_> {
    /// Where the page starts: after `after` (exit 3 when there is no
    /// such order).
    async fn filter(&self, pool: &PgPool) -> anyhow::Result<orders::Filter<'_>> {
        let after = match self.after {
            None => None,
            Some(id) => {
                let at = orders::created_at(pool, id)
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
        Ok(orders::Filter {
            statuses: self.statuses,
            customer: self.customer,
            after,
        })
    }
}

/// One page of the orders `selection` sees.
pub(crate) async fn page(pool: &PgPool, selection: &Selection<'_>) -> anyhow::Result<Page> {
    let filter = selection.filter(pool).await?;
    // One more than asked, to know whether the page ends at the limit.
    let mut rows = orders::list(pool, &filter, selection.limit + 1)
        .await
        .context("listing orders")?;
    let more = rows.len() > selection.limit as usize;
    rows.truncate(selection.limit as usize);
    Ok(Page { rows, more })
}

pub async fn run(cx: &Context, args: ListArgs) -> anyhow::Result<Exit> {
    if let Some(query) = &args.query {
        return visible(cx, query, args.limit).await;
    }
    let pool = cx.pool().await?;
    let statuses = args.select.statuses();
    let selection = Selection {
        statuses: &statuses,
        customer: args.select.customer.as_ref(),
        after: args.after.as_ref(),
        limit: args.limit,
    };
    let Page { rows, more } = page(&pool, &selection).await?;
    let p = &cx.printer;
    if p.is_json() {
        let config = cx.temporal()?;
        let rows: Vec<OrderRow> = rows
            .iter()
            .map(|r| OrderRow {
                ui_url: config.ui_link(&r.order_id),
                summary: r.clone(),
            })
            .collect();
        p.json(&rows)?;
    } else if rows.is_empty() {
        p.note("No orders match.");
    } else {
        p.line(table(p, &rows))?;
    }
    if more && let Some(last) = rows.last() {
        let filter = selection.filter(&pool).await?;
        let total = orders::count_up_to(&pool, &filter, COUNT_CAP)
            .await
            .context("counting orders")?;
        p.note(footer(
            rows.len(),
            total,
            args.after.as_ref(),
            &last.order_id,
        ));
    }
    Ok(Exit::Success)
}

/// Counting stops here: "of more than 10000".
const COUNT_CAP: u32 = 10_000;

/// Says that the list stopped at the limit, and how to see the rest.
fn footer(shown: usize, total: i64, after: Option<&OrderId>, last: &str) -> String {
    let of = if total >= i64::from(COUNT_CAP) {
        format!("more than {COUNT_CAP}")
    } else {
        total.to_string()
    };
    let which = match after {
        Some(id) => format!(" after {id}"),
        None => String::new(),
    };
    format!(
        "showing {shown} of {of}{which}; use --limit for more at once, or --after {last} for the next page"
    )
}

/// The columns, in the order a narrow terminal drops them: never ORDER or
/// STATUS.
const HEADERS: [&str; 7] = [
    "ORDER", "STATUS", "STEP", "CUSTOMER", "TOTAL", "FAILURE", "CREATED",
];
const DROP_FIRST: [usize; 5] = [2, 6, 3, 5, 4];

/// Which columns fit in `width` terminal columns, given each column's
/// widest cell: all, or without the least needed ones, so that no cell is
/// cut or wrapped. `None` (not a terminal): all.
fn fitting(widths: &[usize; 7], width: Option<usize>) -> [bool; 7] {
    let mut shown = [true; 7];
    let Some(width) = width else { return shown };
    // A bordered table: one column for the left border, then each column
    // is its text, one space either side and a border.
    let total = |shown: &[bool; 7]| {
        1 + widths
            .iter()
            .zip(shown)
            .filter(|(_, s)| **s)
            .map(|(w, _)| w + 3)
            .sum::<usize>()
    };
    for column in DROP_FIRST {
        if total(&shown) <= width {
            break;
        }
        shown[column] = false;
    }
    shown
}

fn table(p: &crate::output::Printer, rows: &[orders::OrderSummary]) -> crate::output::TextTable {
    let cells: Vec<[String; 7]> = rows
        .iter()
        .map(|r| {
            [
                r.order_id.clone(),
                r.status.clone(),
                r.step.clone().unwrap_or_else(|| "-".into()),
                r.customer_id.clone(),
                format!("{} {}", r.total_amount, r.currency),
                r.failure_code.clone().unwrap_or_default(),
                r.created_at.format("%Y-%m-%d %H:%M:%S").to_string(),
            ]
        })
        .collect();
    let mut widths = HEADERS.map(console::measure_text_width);
    for row in &cells {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(console::measure_text_width(cell));
        }
    }
    let shown = fitting(&widths, p.stdout_width());
    let pick = |row: [Cell; 7]| -> Vec<Cell> {
        row.into_iter()
            .zip(shown)
            .filter_map(|(cell, s)| s.then_some(cell))
            .collect()
    };
    let mut table = p.table();
    table.set_header(pick(HEADERS.map(Cell::new)));
    for (row, r) in cells.into_iter().zip(rows) {
        let [id, status, step, customer, total, failure, created] = row;
        let mut status = Cell::new(status);
        if p.stdout_colored()
            && let Ok(parsed) = r.status.parse::<OrderStatus>()
        {
            status = status.fg(render::status_color(parsed));
        }
        table.add_row(pick([
            Cell::new(id),
            status,
            Cell::new(step),
            Cell::new(customer),
            Cell::new(total).set_alignment(CellAlignment::Right),
            Cell::new(failure),
            Cell::new(created),
        ]));
    }
    table
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
            cell(&r.order_id),
            cell(&r.status),
            cell(r.customer_id.as_deref().unwrap_or("-")),
            cell(r.total_amount.as_deref().unwrap_or("-")).set_alignment(CellAlignment::Right),
            cell(r.failure_code.as_deref().unwrap_or("")),
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

#[cfg(test)]
mod tests {
    use super::*;

    const WIDE: [usize; 7] = [36, 9, 17, 8, 11, 16, 19];

    #[test]
    fn a_wide_terminal_shows_every_column() {
        assert_eq!(fitting(&WIDE, Some(200)), [true; 7]);
        assert_eq!(fitting(&WIDE, None), [true; 7]);
    }

    #[test]
    fn a_narrow_terminal_drops_columns_rather_than_cutting_cells() {
        let shown = fitting(&WIDE, Some(80));
        assert!(shown[0] && shown[1], "ORDER and STATUS stay");
        assert!(!shown[2], "STEP goes first");
        let total: usize = 1 + WIDE
            .iter()
            .zip(shown)
            .filter(|(_, s)| *s)
            .map(|(w, _)| w + 3)
            .sum::<usize>();
        assert!(total <= 80, "{total}");
        assert_eq!(
            fitting(&WIDE, Some(60)),
            [true, true, false, false, false, false, false]
        );
    }

    #[test]
    fn the_footer_says_how_many_and_how_to_see_the_rest() {
        assert_eq!(
            footer(50, 109, None, "ORD-9"),
            "showing 50 of 109; use --limit for more at once, or --after ORD-9 for the next page"
        );
        let after = OrderId::parse("ORD-1").unwrap();
        assert!(
            footer(50, 10_000, Some(&after), "ORD-9")
                .starts_with("showing 50 of more than 10000 after ORD-1;")
        );
    }
}
