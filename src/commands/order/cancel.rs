//! `orderflow order cancel ID`: sends the `cancel` signal and, unless
//! `--no-wait`, waits for the outcome.

use serde::Serialize;

use super::render::change_line;
use crate::cli::CancelArgs;
use crate::commands::Context;
use std::sync::atomic::{AtomicU8, Ordering};

/// [`cancel`]'s progress: the signal is on its way (it may arrive).
pub(crate) const SENDING: u8 = 1;
/// [`cancel`]'s progress: the signal went out.
pub(crate) const SENT: u8 = 2;
use std::time::Duration;

use crate::domain::{OrderStatus, WorkflowId};
use crate::exit::{Exit, Fail};
use crate::temporal::client::{Execution, OrderCallError, OrderClient};
use crate::temporal::codec::CodecError;
use crate::workflow::state::OrderView;

/// `order cancel -o json`, and the API's answer to a cancellation.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct CancelDoc<'a> {
    pub order_id: &'a str,
    /// `requested` (with --no-wait; from the API, when the order had not
    /// ended within the wait), `cancelled` or `already cancelled`. A
    /// refused cancel is an error (exit 6, HTTP 409).
    pub outcome: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<OrderStatus>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<OrderView>)]
    pub order: Option<&'a OrderView>,
}

/// What came of a cancellation.
pub(crate) enum Cancellation {
    /// Sent; not waited for.
    Requested,
    /// Sent; the wait's limit passed before the order ended.
    Pending,
    /// The order ended `CANCELLED` on this request.
    Cancelled(OrderView),
    /// It had already been cancelled: nothing changed.
    Already(OrderView),
    /// It had already ended otherwise (COMPLETED or FAILED): refused,
    /// nothing changed.
    Refused(OrderView),
}

/// Cancels order `id` with `reason`, then, with `wait`, waits for its
/// outcome: up to `limit`, or until it ends. `sent` says how far it got:
/// [`SENDING`] while the signal is on its way, [`SENT`] once it went out.
pub(crate) async fn cancel(
    client: &OrderClient,
    id: &WorkflowId,
    reason: &str,
    wait: bool,
    limit: Option<Duration>,
    sent: &AtomicU8,
) -> anyhow::Result<Cancellation> {
    let running = match client.describe(id).await? {
        None => return Err(OrderCallError::NotFound(id.to_string()).into()),
        // A client without the key cannot read the outcome: say so before
        // anything is sent, not after.
        Some(Execution::Running) if wait && let Some(key) = client.unreadable_key(id).await? => {
            return Err(anyhow::Error::new(CodecError::NoKeys(key))
                .context(format!("nothing was sent: order {id} is encrypted")));
        }
        Some(Execution::Running) => {
            sent.store(SENDING, Ordering::Relaxed);
            let signalled = client.signal_cancel(id, reason).await;
            match signalled {
                Ok(()) => {
                    sent.store(SENT, Ordering::Relaxed);
                    true
                }
                // It ended between the look and the signal.
                Err(OrderCallError::NotFound(_)) if client.describe(id).await?.is_some() => false,
                // The call failed on its way: the signal may have arrived.
                Err(e) => {
                    let status =
                        super::watch::command_line(&["order", "status"], &[id.to_string()]);
                    return Err(anyhow::Error::from(e).context(format!(
                        "the cancellation of {id} may have been sent; see `{status}`"
                    )));
                }
            }
        }
        Some(_) => false,
    };
    if running && !wait {
        return Ok(Cancellation::Requested);
    }
    let view = if running {
        // Sent: whatever happens to the wait, say so.
        let sent = |e: OrderCallError| -> anyhow::Error {
            match e {
                OrderCallError::Unreachable(lost) | OrderCallError::Temporal(lost) => Fail::new(
                    lost.exit(),
                    format!(
                        "the cancellation of {id} was sent, then {}; it takes effect \
                         without you: see `{}` once Temporal answers",
                        lost.headline(),
                        super::watch::command_line(&["order", "status"], &[id.to_string()])
                    ),
                )
                .into(),
                // Whatever else keeps the outcome from being read (a key
                // this client lacks): the error, saying it was sent.
                other => anyhow::Error::from(other).context(format!(
                    "the cancellation of {id} was sent; it takes effect without you, but its \
                     outcome cannot be read here"
                )),
            }
        };
        let outcome = async { client.outcome(id).await.map_err(sent) };
        match limit {
            None => outcome.await?,
            Some(limit) => match tokio::time::timeout(limit, outcome).await {
                Ok(view) => view?,
                Err(_) => return Ok(Cancellation::Pending),
            },
        }
    } else {
        client.fetch(id).await?.0
    };
    Ok(match (running, view.status) {
        (true, OrderStatus::Cancelled) => Cancellation::Cancelled(view),
        (false, OrderStatus::Cancelled) => Cancellation::Already(view),
        _ => Cancellation::Refused(view),
    })
}

/// The sentence of a refused cancellation.
pub(crate) fn refused(id: &WorkflowId, status: OrderStatus) -> String {
    format!("order {id} already ended {status}; the cancellation was refused and nothing changed")
}

/// How long a cancellation may take before `order cancel` says it was
/// sent and what it waits for.
const SLOW: Duration = Duration::from_secs(2);

pub async fn run(cx: &Context, args: CancelArgs) -> anyhow::Result<Exit> {
    let (config, client) = super::connect(cx).await?;
    let Some(id) = &args.id else {
        return many(cx, &args, &client, &config.task_queue).await;
    };
    let sent = AtomicU8::new(0);
    let cancelled = cancel(
        &client,
        id,
        args.reason.as_str(),
        !args.no_wait,
        args.timeout,
        &sent,
    );
    tokio::pin!(cancelled);
    let interrupt = cx.interrupt();
    let mut said = false;
    let result = loop {
        tokio::select! {
            biased;
            () = interrupt.wait() => {
                let status = super::watch::command_line(&["order", "status"], &[id.to_string()]);
                cx.printer.interrupted(&match sent.load(Ordering::Relaxed) {
                    SENT => format!(
                        "interrupted: the cancellation of {id} was sent; it takes effect \
                         when a worker runs the order (see `{status}`)"
                    ),
                    SENDING => format!(
                        "interrupted while the cancellation of {id} was being sent: it may have \
                         arrived; see `{status}`"
                    ),
                    _ => format!(
                        "interrupted before the cancellation was sent: {id} was not cancelled"
                    ),
                });
                return Ok(Exit::Interrupted);
            }
            result = &mut cancelled => break result,
            () = tokio::time::sleep(SLOW), if !said => {
                if sent.load(Ordering::Relaxed) != SENT {
                    continue;
                }
                said = true;
                cx.printer.note(format!(
                    "the cancellation of {id} was sent; waiting for it to take effect"
                ));
                if matches!(client.pollers(&config.task_queue).await, Ok(p) if p.is_empty()) {
                    cx.printer.note(format!(
                        "hint: {}",
                        super::watch::no_worker(&config.task_queue, client.namespace())
                    ));
                }
            }
        }
    };
    let (outcome, view) = match result? {
        Cancellation::Requested => {
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
        Cancellation::Pending => {
            return Err(Fail::new(
                Exit::Timeout,
                format!(
                    "cancellation of {id} was requested, but it had not ended after {}",
                    humantime::format_duration(args.timeout.unwrap_or_default())
                ),
            )
            .into());
        }
        Cancellation::Cancelled(view) => ("cancelled", view),
        Cancellation::Already(view) => ("already cancelled", view),
        // Said once, as the error: not also as a result on stdout.
        Cancellation::Refused(view) => {
            return Err(Fail::new(Exit::Conflict, refused(id, view.status)).into());
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
                format!("{}; it was already cancelled", change_line(view, None))
            }
            _ => change_line(view, None),
        }),
        None => cx.printer.line(format!(
            "{} cancellation requested; follow it with `{}`",
            doc.order_id,
            super::watch::command_line(&["order", "watch"], &[doc.order_id.to_owned()])
        )),
    }
}

/// `order cancel` over a selection: each order as `order cancel ID` would,
/// [`bulk`](super::bulk) doing the rest.
async fn many(
    cx: &Context,
    args: &CancelArgs,
    client: &OrderClient,
    task_queue: &str,
) -> anyhow::Result<Exit> {
    let ids = super::bulk::chosen(cx, &args.pick, client, task_queue).await?;
    if ids.is_empty() && !args.dry_run && !cx.printer.is_json() {
        cx.printer
            .note("no order matches the selection; nothing was cancelled");
        return Ok(Exit::Success);
    }
    if args.dry_run {
        return super::bulk::dry_run(cx, "be cancelled", &ids);
    }
    if !super::bulk::confirmed(cx, "cancel", ids.len(), args.yes)? {
        cx.printer
            .note("Not confirmed; nothing was cancelled. (`--yes` skips the question.)");
        return Ok(Exit::Usage);
    }
    let reason = args.reason.as_str();
    let wait = !args.no_wait;
    if wait && matches!(client.pollers(task_queue).await, Ok(p) if p.is_empty()) {
        cx.printer.note(format!(
            "hint: {}; each cancellation waits for one (or use --no-wait, or --timeout)",
            super::watch::no_worker(task_queue, client.namespace())
        ));
    }
    super::bulk::act_on_all(cx, "cancelling", ids, args.rate, |id| async move {
        let sent = AtomicU8::new(0);
        let result = cancel(client, &id, reason, wait, args.timeout, &sent).await;
        let record = |outcome, status: Option<OrderStatus>, detail: Option<String>, exit| {
            super::bulk::Record {
                order_id: id.as_str().to_owned(),
                outcome,
                status,
                detail,
                resubmitted_as: None,
                exit,
            }
        };
        match result {
            Ok(Cancellation::Requested) => record("requested", None, None, Exit::Success),
            Ok(Cancellation::Pending) => record(
                "requested",
                None,
                Some("sent; not ended within --timeout".to_owned()),
                Exit::Timeout,
            ),
            Ok(Cancellation::Cancelled(view)) => {
                record("cancelled", Some(view.status), None, Exit::Success)
            }
            Ok(Cancellation::Already(view)) => {
                record("already cancelled", Some(view.status), None, Exit::Success)
            }
            Ok(Cancellation::Refused(view)) => record(
                "refused",
                Some(view.status),
                Some(format!("already ended {}; nothing changed", view.status)),
                Exit::Conflict,
            ),
            Err(e) => {
                let exit = crate::commands::exit_code(&e);
                let outcome = match exit {
                    Exit::NotFound => "not found",
                    _ => "error",
                };
                record(outcome, None, Some(crate::errors::text(e.as_ref())), exit)
            }
        }
    })
    .await
}
