//! `orderflow order resubmit ID | selection`: FAILED orders started again
//! as new orders, with the same content and an ID made from the old one,
//! linked both ways in the database (`resubmissions`). The link is written
//! before the new order starts, so a second run starts nothing new.

use sqlx::PgPool;

use super::bulk::Record;
use crate::cli::{ResubmitArgs, StatusSet};
use crate::commands::Context;
use crate::db::orders;
use crate::domain::{OrderId, OrderStatus, WorkflowId};
use crate::exit::Exit;
use crate::temporal::client::{OrderClient, Submitted};

pub async fn run(cx: &Context, mut args: ResubmitArgs) -> anyhow::Result<Exit> {
    let (config, client) = super::connect(cx).await?;
    let pool = cx.pool().await?;
    let ids = match args.id.take() {
        Some(id) => vec![id],
        None => {
            // What is resubmitted is what FAILED, unless told otherwise.
            if args.pick.select.status.is_empty()
                && args.pick.query.is_none()
                && args.pick.ids_file.is_none()
            {
                args.pick.select.status = vec![StatusSet(vec![OrderStatus::Failed], "FAILED")];
            }
            let ids = super::bulk::chosen(cx, &args.pick, &client, &config.task_queue).await?;
            if ids.is_empty() && !args.dry_run && !cx.printer.is_json() {
                cx.printer
                    .note("no order matches the selection; nothing was resubmitted");
                return Ok(Exit::Success);
            }
            if args.dry_run {
                return super::bulk::dry_run(cx, "be resubmitted", &ids);
            }
            if !super::bulk::confirmed(cx, "resubmit", ids.len(), args.yes)? {
                cx.printer
                    .note("Not confirmed; nothing was resubmitted. (`--yes` skips the question.)");
                return Ok(Exit::Usage);
            }
            ids
        }
    };
    let task_queue = config.task_queue.as_str();
    let (client, pool) = (&client, &pool);
    super::bulk::act_on_all(cx, "resubmitting", ids, args.rate, |id| async move {
        match resubmit(client, pool, task_queue, &id).await {
            Ok(record) => record,
            Err(e) => {
                let exit = crate::commands::exit_code(&e);
                record(
                    &id,
                    if exit == Exit::NotFound {
                        "not found"
                    } else {
                        "error"
                    },
                    None,
                    Some(crate::errors::text(e.as_ref())),
                    exit,
                )
            }
        }
    })
    .await
}

fn record(
    id: &WorkflowId,
    outcome: &'static str,
    status: Option<OrderStatus>,
    detail: Option<String>,
    exit: Exit,
) -> Record {
    Record {
        order_id: id.as_str().to_owned(),
        outcome,
        status,
        detail,
        resubmitted_as: None,
        exit,
    }
}

/// The ID a resubmission of `id` gets: `ORD-7` → `ORD-7-R`, `ORD-7-R` →
/// `ORD-7-R2`, `ORD-7-R2` → `ORD-7-R3`; a digest of it when that would be
/// too long.
pub(crate) fn next_id(id: &str) -> OrderId {
    let next = match id.rsplit_once("-R") {
        Some((base, "")) => format!("{base}-R2"),
        Some((base, n)) if n.bytes().all(|b| b.is_ascii_digit()) && !n.starts_with('0') => {
            match n.parse::<u64>() {
                Ok(n) => format!("{base}-R{}", n + 1),
                Err(_) => format!("{id}-R"),
            }
        }
        _ => format!("{id}-R"),
    };
    OrderId::parse(&next).unwrap_or_else(|_| OrderId::derive(&format!("resubmit {id}")))
}

/// The next ID after `id` that no order has, in the database or in
/// Temporal: another order may already be named `ORD-7-R`.
async fn free_id(client: &OrderClient, pool: &PgPool, id: &WorkflowId) -> anyhow::Result<OrderId> {
    let mut candidate = next_id(id.as_str());
    for _ in 0..20 {
        let taken: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM orders WHERE order_id = $1)
                 OR EXISTS (SELECT 1 FROM resubmissions WHERE resubmitted_as = $1)",
        )
        .bind(candidate.as_str())
        .fetch_one(pool)
        .await?;
        if !taken && client.describe(&candidate.as_str()).await?.is_none() {
            return Ok(candidate);
        }
        candidate = next_id(candidate.as_str());
    }
    anyhow::bail!("no free ID to resubmit {id} as: {candidate} and the 19 before it are taken")
}

async fn resubmit(
    client: &OrderClient,
    pool: &PgPool,
    task_queue: &str,
    id: &WorkflowId,
) -> anyhow::Result<Record> {
    let status: Option<String> =
        sqlx::query_scalar("SELECT status FROM orders WHERE order_id = $1")
            .bind(id.as_str())
            .fetch_optional(pool)
            .await?;
    let Some(status) = status else {
        return Ok(record(
            id,
            "not found",
            None,
            Some(format!("order {id} is not in the database")),
            Exit::NotFound,
        ));
    };
    let status: OrderStatus = status
        .parse()
        .map_err(|_| anyhow::anyhow!("unknown status {status}"))?;
    if status != OrderStatus::Failed {
        return Ok(record(
            id,
            "refused",
            Some(status),
            Some(format!(
                "only FAILED orders are resubmitted; {id} is {status}"
            )),
            Exit::Conflict,
        ));
    }
    let linked = orders::links(pool, id.as_str()).await?.resubmitted_as;
    let order = client.recorded_order(id).await?;
    let new_id = match &linked {
        Some(new) => OrderId::parse(new)?,
        None => free_id(client, pool, id).await?,
    };
    // Only what the catalog still sells at that price, with the stock.
    if linked.is_none() {
        let products: Vec<&str> = order
            .items()
            .iter()
            .map(|l| l.product_id.as_str())
            .collect();
        let catalog = orders::catalog(pool, &products).await?;
        let mut problems = Vec::new();
        for line in order.items() {
            let product = line.product_id.as_str();
            match catalog.get(product) {
                None => problems.push(format!("{product} is no longer in the catalog")),
                Some((price, _)) if *price != line.unit_price.as_decimal() => problems.push(
                    format!("{product} now costs {price}, not {}", line.unit_price),
                ),
                Some((_, stock)) if i64::from(*stock) < i64::from(line.quantity.get()) => problems
                    .push(format!(
                        "{product} has {stock} in stock, not the {} it needs",
                        line.quantity.get()
                    )),
                Some(_) => {}
            }
        }
        if !problems.is_empty() {
            return Ok(record(
                id,
                "not valid",
                Some(status),
                Some(format!("not resubmitted: {}", problems.join("; "))),
                Exit::Conflict,
            ));
        }
    }
    let new_id = orders::link_resubmission(pool, id.as_str(), new_id.as_str()).await?;
    let new_id = OrderId::parse(&new_id)?;
    let started = client
        .start(task_queue, &order.with_id(new_id.clone()), false)
        .await?;
    let mut done = record(
        id,
        match started {
            Submitted::Started { .. } => "resubmitted",
            Submitted::Exists { .. } => "already resubmitted",
        },
        Some(status),
        None,
        Exit::Success,
    );
    done.resubmitted_as = Some(new_id.as_str().to_owned());
    Ok(done)
}

#[cfg(test)]
mod tests {
    use super::next_id;

    #[test]
    fn a_resubmission_is_named_after_its_order() {
        assert_eq!(next_id("ORD-7").as_str(), "ORD-7-R");
        assert_eq!(next_id("ORD-7-R").as_str(), "ORD-7-R2");
        assert_eq!(next_id("ORD-7-R2").as_str(), "ORD-7-R3");
        assert_eq!(next_id("ORD-R-A").as_str(), "ORD-R-A-R");
        let long = "X".repeat(63);
        assert!(next_id(&long).as_str().starts_with("ORD-"));
    }
}
