//! `orderflow order cancel ID`: sends the `cancel` signal and, unless
//! `--no-wait`, waits for the outcome.

use serde::Serialize;

use super::render::change_line;
use crate::cli::CancelArgs;
use crate::commands::Context;
use crate::domain::OrderStatus;
use crate::exit::{Exit, Fail};
use crate::temporal::client::{Execution, OrderCallError};
use crate::workflow::state::OrderView;

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct CancelDoc<'a> {
    order_id: &'a str,
    /// `requested` (with --no-wait), `cancelled` or `already cancelled`. A
    /// refused cancel is an error (exit 6), reported on stderr only.
    outcome: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    status: Option<OrderStatus>,
    #[serde(skip_serializing_if = "Option::is_none")]
    order: Option<&'a OrderView>,
}

pub async fn run(cx: &Context, args: CancelArgs) -> anyhow::Result<Exit> {
    let (_, client) = super::connect(cx).await?;
    let id = &args.id;
    let running = match client.describe(id).await? {
        None => return Err(OrderCallError::NotFound(id.to_string()).into()),
        Some(Execution::Running) => match client.signal_cancel(id, args.reason.as_str()).await {
            Ok(()) => true,
            // It ended between the look and the signal.
            Err(OrderCallError::NotFound(_)) if client.describe(id).await?.is_some() => false,
            Err(e) => return Err(e.into()),
        },
        Some(_) => false,
    };
    if running && args.no_wait {
        report(
            cx,
            &CancelDoc {
                order_id: id.as_str(),
                outcome: "requested",
                status: None,
                order: None,
            },
            None,
        )?;
        return Ok(Exit::Success);
    }
    let view = if running {
        // Sent: whatever happens to the wait, say so.
        let sent = |e: OrderCallError| -> anyhow::Error {
            match e {
                OrderCallError::Unreachable(lost) | OrderCallError::Temporal(lost) => Fail::new(
                    lost.exit(),
                    format!(
                        "the cancellation of {id} was sent, then {}; it takes effect \
                         without you: see `orderflow order status {id}` once Temporal answers",
                        lost.headline()
                    ),
                )
                .into(),
                other => other.into(),
            }
        };
        let outcome = async { client.outcome(id).await.map_err(sent) };
        match args.timeout {
            None => outcome.await?,
            Some(limit) => tokio::time::timeout(limit, outcome).await.map_err(|_| {
                Fail::new(
                    Exit::Timeout,
                    format!(
                        "cancellation of {id} was requested, but it had not ended after {}",
                        humantime::format_duration(limit)
                    ),
                )
            })??,
        }
    } else {
        client.fetch(id).await?.0
    };
    let outcome = match (running, view.status) {
        (true, OrderStatus::Cancelled) => "cancelled",
        (false, OrderStatus::Cancelled) => "already cancelled",
        // Said once, as the error: not also as a result on stdout.
        _ => {
            return Err(Fail::new(
                Exit::Conflict,
                format!(
                    "order {id} already ended {}; the cancellation was refused and nothing changed",
                    view.status
                ),
            )
            .into());
        }
    };
    report(
        cx,
        &CancelDoc {
            order_id: id.as_str(),
            outcome,
            status: Some(view.status),
            order: Some(&view),
        },
        Some(&view),
    )?;
    Ok(Exit::Success)
}

fn report(cx: &Context, doc: &CancelDoc<'_>, view: Option<&OrderView>) -> std::io::Result<()> {
    if cx.printer.is_json() {
        return cx.printer.json(doc);
    }
    match view {
        Some(view) => cx.printer.line(match doc.outcome {
            "already cancelled" => {
                format!("{} (it was already cancelled)", change_line(view, None))
            }
            _ => change_line(view, None),
        }),
        None => cx.printer.line(format!(
            "{} cancellation requested; follow it with `orderflow order watch {}`",
            doc.order_id, doc.order_id
        )),
    }
}
