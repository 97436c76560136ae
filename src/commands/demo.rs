//! `orderflow demo`: the local stack, then the sample orders — one that
//! completes, one out of stock, one declined, one cancelled mid-flight —
//! followed with progress bars, and a table of how each ended.

use std::time::Duration;

use comfy_table::Cell;
use serde::Serialize;

use super::Context;
use crate::cli::DemoArgs;
use crate::db::pool::Connections;
use crate::domain::{Order, OrderStatus, Step, WorkflowId};
use crate::exit::{Exit, Fail};
use crate::input::{Source, parse_orders};
use crate::stack::local::{LocalStack, StackInfo, StackOptions};
use crate::temporal::client::OrderClient;
use crate::worker::shutdown_signal;
use crate::worker::{self, WorkerSettings};
use crate::workflow::retry::RetryConfig;
use crate::workflow::state::StepState;

/// The sample orders (also in `examples/orders/`), what each should end as.
const SAMPLES: [(&str, &str, OrderStatus); 4] = [
    (
        "completes",
        include_str!("../../examples/orders/completes.json"),
        OrderStatus::Completed,
    ),
    (
        "out-of-stock",
        include_str!("../../examples/orders/out-of-stock.json"),
        OrderStatus::Failed,
    ),
    (
        "declined",
        include_str!("../../examples/orders/declined.json"),
        OrderStatus::Failed,
    ),
    (
        "cancelled",
        include_str!("../../examples/orders/cancelled.json"),
        OrderStatus::Cancelled,
    ),
];

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Outcome {
    sample: &'static str,
    order_id: String,
    expected: OrderStatus,
    status: OrderStatus,
    failure: Option<String>,
    ui_url: String,
}

#[derive(Debug, Serialize)]
struct DemoDoc<'a> {
    stack: &'a StackInfo,
    orders: &'a [Outcome],
}

pub async fn run(cx: &Context, args: DemoArgs) -> anyhow::Result<Exit> {
    let orders: Vec<Order> = SAMPLES
        .iter()
        .map(|(name, text, _)| {
            let source = Source::new(format!("examples/orders/{name}.json"), *text);
            parse_orders(std::slice::from_ref(&source), None).map(|mut o| o.remove(0).order)
        })
        .collect::<Result<_, _>>()?;

    cx.printer.note("orderflow demo: starting the stack…");
    let stack = cx
        .local_stack(&StackOptions {
            role: "demo",
            encrypt: args.encrypt,
            ..StackOptions::default()
        })
        .await?;
    if let (Some(keys), Some(codec)) = (&stack.info.encryption_key_file, &stack.info.codec_endpoint)
    {
        cx.printer.note(format!(
            "orderflow demo: payloads encrypted with the keys in {}; codec endpoint for the Web UI: {codec}",
            keys.display()
        ));
    }
    let client = OrderClient::connect(&stack.temporal).await?;
    let api = super::serve::local(
        args.listen,
        stack.temporal.clone(),
        client.clone(),
        stack.pool.clone(),
    )
    .await?;
    cx.printer.note(format!(
        "orderflow demo: the order page and API: {} (while the demo runs)",
        api.url()
    ));
    let (stop_api, api_stopped) = tokio::sync::oneshot::channel::<()>();
    let api = tokio::spawn(api.run(
        async {
            let _ = api_stopped.await;
        },
        std::future::pending(),
    ));
    let mut settings = WorkerSettings::new(stack.temporal.task_queue.clone());
    // Room to cancel the sample whose gateway never answers before retries run out.
    settings.retry = RetryConfig {
        max_attempts: 20,
        ..RetryConfig::default()
    };

    let outcomes = worker::alongside(
        client.clone(),
        Connections::like(&stack.pool),
        settings,
        async {
            let result = run_samples(cx, &stack, &client, &orders, args.keep).await;
            if args.keep && matches!(result, Ok(Some(_))) {
                cx.printer
                    .note("--keep: the stack and worker stay up; Ctrl-C stops them.");
                cx.printer.note(stack.info.exports());
                shutdown_signal().await;
            }
            // The API first, while the worker still runs what its
            // requests wait for.
            let _ = stop_api.send(());
            let _ = api.await;
            result
        },
    )
    .await;
    stack.stop().await;
    // Interrupted (Ctrl-C): the following said so.
    let Some(outcomes) = outcomes?? else {
        return Ok(Exit::Interrupted);
    };

    let unexpected: Vec<&str> = outcomes
        .iter()
        .filter(|o| o.status != o.expected)
        .map(|o| o.sample)
        .collect();
    if !unexpected.is_empty() {
        return Err(Fail::new(
            Exit::Failure,
            format!(
                "sample(s) {} did not end as expected; is the catalog the sample one?",
                unexpected.join(", ")
            ),
        )
        .into());
    }
    Ok(Exit::Success)
}

async fn run_samples(
    cx: &Context,
    stack: &LocalStack,
    client: &OrderClient,
    orders: &[Order],
    keep: bool,
) -> anyhow::Result<Option<Vec<Outcome>>> {
    for order in orders {
        client
            .start(&stack.temporal.task_queue, order, false)
            .await?;
    }
    let ids: Vec<WorkflowId> = orders.iter().map(|o| o.id().clone().into()).collect();
    // The sample named "cancelled" is the one to cancel.
    let cancelled = SAMPLES
        .iter()
        .zip(orders)
        .find(|((name, ..), _)| *name == "cancelled")
        .map(|(_, order)| order.id())
        .expect("a sample named cancelled");
    // Cancel the last sample once its payment is retrying: mid-flight.
    let canceller = async {
        loop {
            if let Ok(Some(view)) = client.live_status(cancelled, Duration::from_secs(2)).await
                && view.step_view(Step::ProcessPayment).state == StepState::Retrying
            {
                return client
                    .signal_cancel(cancelled, "cancelled by the demo while the payment retried")
                    .await
                    .map_err(anyhow::Error::from);
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    };
    // Under -o json, stdout is one document at the end: follow silently.
    let show = !cx.printer.is_json();
    let follow = super::order::Follow {
        printer: &cx.printer,
        client,
        task_queue: &stack.temporal.task_queue,
        timeout: Some(Duration::from_secs(120)),
        show,
        on_interrupt: super::order::OnInterrupt::Say("stopping the demo and the stack it started"),
        // Not under `interruptible`: it hears Ctrl-C itself.
        interrupt: super::Interrupt::ctrl_c(),
    };
    let following = follow.run(&ids);
    tokio::pin!(following);
    // Ctrl-C ends the following before the cancel is sent: it is not.
    let followed = tokio::select! {
        followed = &mut following => followed?,
        cancel = canceller => {
            cancel?;
            following.await?
        }
    };
    if followed == Exit::Interrupted {
        return Ok(None);
    }

    let mut outcomes = Vec::new();
    for (order, (sample, _, expected)) in orders.iter().zip(SAMPLES) {
        let view = client.outcome(order.id()).await?;
        outcomes.push(Outcome {
            sample,
            order_id: order.id().to_string(),
            expected,
            status: view.status,
            failure: view
                .failure
                .map(|f| format!("{}: {}", f.code, f.message))
                .or_else(|| {
                    view.cancellation
                        .filter(|_| view.status == OrderStatus::Cancelled)
                        .map(|c| c.reason)
                }),
            ui_url: stack.temporal.ui_link(order.id().as_str()),
        });
    }
    let p = &cx.printer;
    if p.is_json() {
        p.json(&DemoDoc {
            stack: &stack.info,
            orders: &outcomes,
        })?;
    } else {
        let mut table = p.table();
        table.set_header(["SAMPLE", "ORDER", "STATUS", "AS EXPECTED", "WHY"]);
        for o in &outcomes {
            table.add_row(vec![
                Cell::new(o.sample),
                Cell::new(&o.order_id),
                Cell::new(o.status),
                Cell::new(if o.status == o.expected { "yes" } else { "NO" }),
                Cell::new(o.failure.as_deref().unwrap_or("")),
            ]);
        }
        p.line(format!("\n{table}\n\nIn the Temporal Web UI:"))?;
        for o in &outcomes {
            p.line(format!("  {:<13} {}", o.sample, o.ui_url))?;
        }
        if !keep && !stack.info.started.is_empty() {
            p.note("(The demo stops the stack it started when it ends; run `orderflow demo --keep` to browse them.)");
        }
    }
    Ok(Some(outcomes))
}
