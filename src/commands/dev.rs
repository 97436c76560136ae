//! `orderflow dev`: a local stack for development. Uses the Temporal server
//! and database that are configured and reachable, starts what is not
//! (a Temporal dev server with the Web UI, a PostgreSQL cluster, both keeping
//! their state in one data directory), applies the schema, loads the sample
//! catalog and runs a worker until Ctrl-C, then stops what it started and
//! nothing else.

use std::path::Path;

use anyhow::Context as _;

use super::Context;
use crate::cli::DevArgs;
use crate::db::pool::Connections;
use crate::exit::Exit;
use crate::stack::local::{
    StackInfo, StackOptions, default_data_dir, postgres_dir, refuse_if_in_use,
};
use crate::worker::shutdown_signal;
use crate::worker::{self, WorkerSettings};

pub async fn run(cx: &Context, args: DevArgs) -> anyhow::Result<Exit> {
    let shutdown = shutdown_signal();
    let data_dir = args.data_dir.unwrap_or_else(default_data_dir);
    if args.fresh {
        forget(&data_dir)?;
    }
    cx.printer
        .note("orderflow dev: starting what is not already running…");
    // A data directory whose orders were encrypted stays encrypted: its
    // orders cannot be read, nor new ones mixed in, in clear.
    let kept_key = crate::stack::codec::key_file_in(&data_dir);
    let encrypt = args.encrypt || kept_key.exists();
    if encrypt && !args.encrypt {
        cx.printer.note(format!(
            "orderflow dev: encrypting payloads, as before: {} holds this stack's key \
             (`orderflow dev --fresh` starts over in clear)",
            kept_key.display()
        ));
    }
    let stack = cx
        .local_stack(&StackOptions {
            role: "dev",
            data_dir: Some(data_dir.clone()),
            port: args.port,
            ui_port: args.ui_port,
            encrypt,
        })
        .await?;
    let result = async {
        let client = crate::temporal::client::OrderClient::connect(&stack.temporal).await?;
        let api = super::serve::local(
            args.listen,
            stack.temporal.clone(),
            client.clone(),
            stack.pool.clone(),
        )
        .await?;
        let mut info = stack.info.clone();
        info.api_url = Some(api.url());
        if cx.printer.is_json() {
            cx.printer.json_line(&info)?;
        } else {
            cx.printer.line(instructions(&info, &data_dir))?;
        }
        let (stop_api, api_stopped) = tokio::sync::oneshot::channel::<()>();
        let api = tokio::spawn(api.run(
            async {
                let _ = api_stopped.await;
            },
            std::future::pending(),
        ));
        // Ctrl-C stops the API first, while the worker still runs the
        // orders its requests wait for; then the worker.
        let shutdown = async {
            shutdown.await;
            let _ = stop_api.send(());
            let _ = api.await;
        };
        let settings = WorkerSettings::new(stack.temporal.task_queue.clone());
        worker::run(client, Connections::like(&stack.pool), settings, shutdown).await
    }
    .await;
    stack.stop().await;
    result?;
    cx.printer.note("orderflow dev: stopped.");
    Ok(Exit::Success)
}

/// `--fresh`: deletes both kept stores, so that neither outlives the other.
fn forget(data_dir: &Path) -> anyhow::Result<()> {
    refuse_if_in_use(data_dir)?;
    // The orders it encrypted go too: a fresh stack gets a fresh key.
    let keys = crate::stack::codec::key_file_in(data_dir);
    if keys.exists() {
        std::fs::remove_file(&keys).with_context(|| format!("deleting {}", keys.display()))?;
    }
    let postgres = postgres_dir(data_dir);
    if postgres.exists() {
        std::fs::remove_dir_all(&postgres)
            .with_context(|| format!("deleting {}", postgres.display()))?;
    }
    // The SQLite file and its journal files.
    for entry in std::fs::read_dir(data_dir).into_iter().flatten().flatten() {
        if entry
            .file_name()
            .to_string_lossy()
            .starts_with("temporal.db")
        {
            std::fs::remove_file(entry.path())
                .with_context(|| format!("deleting {}", entry.path().display()))?;
        }
    }
    Ok(())
}

fn instructions(info: &StackInfo, data_dir: &Path) -> String {
    let started = |what| info.started.contains(&what);
    let mut text = String::from("orderflow dev is running.\n\n");
    text += &format!(
        "  Temporal    {}  ({})\n",
        info.temporal_address,
        if started("temporal") {
            format!(
                "started here; state in {}",
                data_dir.join("temporal.db").display()
            )
        } else {
            "reused: it was already running; not started or stopped by this stack".into()
        }
    );
    if let Some(ui) = &info.ui_url {
        text += &format!("  Web UI      {ui}\n");
    }
    if let Some(api) = &info.api_url {
        text += &format!("  Order page  {api}  (the API: {api}/api/orders)\n");
    }
    if let (Some(keys), Some(codec)) = (&info.encryption_key_file, &info.codec_endpoint) {
        text += &format!(
            "  Encryption  payloads encrypted with the keys in {}\n",
            keys.display()
        );
        text += &format!(
            "  Codec       {codec}  ({})\n",
            if started("temporal") {
                "the Web UI decodes through it"
            } else {
                "set it as the Web UI's codec endpoint (Data Encoder settings)"
            }
        );
    }
    text += &format!(
        "  PostgreSQL  {}  ({})\n",
        info.database_url,
        if started("postgres") {
            format!("started here; data in {}", postgres_dir(data_dir).display())
        } else {
            "yours".into()
        }
    );
    text += &format!(
        "  Worker      task queue {}, namespace {}{}\n\n",
        info.task_queue,
        info.namespace,
        if started("temporal") {
            ""
        } else {
            " (this stack's own: no other stack's worker takes its orders)"
        }
    );
    text += "Use it from another terminal:\n\n";
    text += &info.exports();
    text += "  orderflow product list\n";
    text += "  orderflow order create --file examples/orders/completes.json --watch\n";
    text += "  orderflow order list\n\n";
    text += "Ctrl-C stops the worker and everything orderflow dev started; its state stays\n";
    text += "in the data directory for the next run (`orderflow dev --fresh` starts empty).";
    text
}
