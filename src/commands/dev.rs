//! `orderflow dev`: a local stack for development. Uses the Temporal server
//! and database that are configured and reachable, starts what is not
//! (a Temporal dev server with the Web UI, a throwaway PostgreSQL cluster),
//! applies the schema, loads the sample catalog and runs a worker until
//! Ctrl-C, then stops what it started and nothing else.

use super::Context;
use super::worker::shutdown_signal;
use crate::cli::DevArgs;
use crate::db::pool::Connections;
use crate::exit::Exit;
use crate::stack::local::{StackInfo, default_data_dir};
use crate::workflow::worker::{self, WorkerSettings};

pub async fn run(cx: &Context, args: DevArgs) -> anyhow::Result<Exit> {
    let data_dir = args.data_dir.unwrap_or_else(default_data_dir);
    let temporal_state = data_dir.join("temporal.db");
    cx.printer
        .note("orderflow dev: starting what is not already running…");
    let stack = cx.local_stack(Some(&temporal_state)).await?;
    if cx.printer.is_json() {
        cx.printer.json_line(&stack.info)?;
    } else {
        cx.printer
            .line(instructions(&stack.info, &temporal_state))?;
    }
    let result = async {
        let client = crate::workflow::client::OrderClient::connect(&stack.temporal).await?;
        let settings = WorkerSettings::new(stack.temporal.task_queue.clone());
        worker::run(
            client,
            Connections::like(&stack.pool),
            settings,
            shutdown_signal(),
        )
        .await
    }
    .await;
    stack.stop().await;
    result?;
    cx.printer.note("orderflow dev: stopped.");
    Ok(Exit::Success)
}

fn instructions(info: &StackInfo, temporal_state: &std::path::Path) -> String {
    let started = |what| info.started.contains(&what);
    let mut text = String::from("orderflow dev is running.\n\n");
    text += &format!(
        "  Temporal    {}  ({})\n",
        info.temporal_address,
        if started("temporal") {
            format!("started here; state in {}", temporal_state.display())
        } else {
            "already running".into()
        }
    );
    if let Some(ui) = &info.ui_url {
        text += &format!("  Web UI      {ui}\n");
    }
    text += &format!(
        "  PostgreSQL  {}  ({})\n",
        info.database_url,
        if started("postgres") {
            "started here; thrown away on exit"
        } else {
            "yours"
        }
    );
    text += &format!(
        "  Worker      task queue {}, namespace {}\n\n",
        info.task_queue, info.namespace
    );
    text += "Use it from another terminal:\n\n";
    text += &format!("  export TEMPORAL_ADDRESS={}\n", info.temporal_address);
    if started("postgres") {
        text += &format!("  export DATABASE_URL={}\n", info.database_url);
    } else {
        text += "  export DATABASE_URL=…   # the same database as here\n";
    }
    if let Some(ui) = &info.ui_url {
        text += &format!("  export ORDERFLOW_UI_URL={ui}\n");
    }
    text += "  orderflow product list\n";
    text += "  orderflow order create --file examples/orders/completes.json --watch\n";
    text += "  orderflow order list\n\n";
    text += "Ctrl-C stops the worker and everything orderflow dev started.";
    text
}
