//! `orderflow dev`: a local stack for development. Uses the Temporal server
//! and database that are configured and reachable, starts what is not
//! (a Temporal dev server with the Web UI, a PostgreSQL cluster, both keeping
//! their state in one data directory), applies the schema, loads the sample
//! catalog and runs a worker until Ctrl-C, then stops what it started and
//! nothing else.

use std::path::Path;

use anyhow::Context as _;

use super::Context;
use crate::cli::{DevArgs, DevCommand, DevEnvArgs};
use crate::db::pool::Connections;
use crate::exit::{Exit, Fail};
use crate::stack::Watched;
use crate::stack::local::{
    StackInfo, StackOptions, default_data_dir, postgres_dir, refuse_if_in_use,
};
use crate::worker::shutdown_signal;
use crate::worker::{self, WorkerSettings};

/// Where a running `dev` writes what `dev env` prints.
fn running_file(data_dir: &Path) -> std::path::PathBuf {
    data_dir.join("running.json")
}

/// `orderflow dev env`: the running stack's exports (or settings, as JSON).
fn env(cx: &Context, args: DevEnvArgs) -> anyhow::Result<Exit> {
    let data_dir = args.data_dir.unwrap_or_else(default_data_dir);
    let not_running = || {
        Fail::new(
            Exit::NotFound,
            format!(
                "no `orderflow dev` runs from {}; start one with `orderflow dev{}`",
                data_dir.display(),
                if data_dir == default_data_dir() {
                    String::new()
                } else {
                    format!(" --data-dir {}", data_dir.display())
                }
            ),
        )
    };
    let Ok(text) = std::fs::read_to_string(running_file(&data_dir)) else {
        return Err(not_running().into());
    };
    let running: serde_json::Value = serde_json::from_str(&text)
        .with_context(|| format!("reading {}", running_file(&data_dir).display()))?;
    // That process, still an orderflow (a process ID is reused).
    let alive = running["pid"].as_u64().is_some_and(|pid| {
        std::fs::read(format!("/proc/{pid}/cmdline"))
            .is_ok_and(|cmdline| String::from_utf8_lossy(&cmdline).contains("orderflow"))
    });
    if !alive {
        return Err(not_running().into());
    }
    if cx.printer.is_json() {
        cx.printer.json(&running["stack"])?;
    } else {
        cx.printer
            .line(running["exports"].as_str().unwrap_or_default().trim_end())?;
    }
    Ok(Exit::Success)
}

pub async fn run(cx: &Context, args: DevArgs) -> anyhow::Result<Exit> {
    if let Some(DevCommand::Env(env_args)) = args.command {
        return env(cx, env_args);
    }
    let shutdown = shutdown_signal();
    let data_dir = args.data_dir.unwrap_or_else(default_data_dir);
    let deleted = if args.fresh {
        forget(cx, &data_dir)?
    } else {
        Vec::new()
    };
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
    let exited = std::sync::Arc::new(std::sync::Mutex::new(None::<Watched>));
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
        info.deleted = deleted;
        // For `orderflow dev env`, while this runs.
        let running = serde_json::json!({
            "pid": std::process::id(),
            "stack": &info,
            // Only what can be evaluated: not the "…" of a database that is not ours.
            "exports": info
                .exports()
                .lines()
                .map(str::trim_start)
                .filter(|l| !l.contains('…'))
                .collect::<Vec<_>>()
                .join("\n"),
        });
        std::fs::write(running_file(&data_dir), running.to_string())
            .with_context(|| format!("writing {}", running_file(&data_dir).display()))?;
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
        // orders its requests wait for; then the worker. So does a
        // service this stack started that exits on its own.
        let watched = stack.watched();
        let gone = exited.clone();
        let shutdown = async move {
            tokio::select! {
                () = shutdown => {}
                service = supervise(watched) => {
                    *gone.lock().unwrap_or_else(|e| e.into_inner()) = Some(service);
                }
            }
            let _ = stop_api.send(());
            let _ = api.await;
        };
        let settings = WorkerSettings::new(stack.temporal.task_queue.clone());
        worker::run(client, Connections::like(&stack.pool), settings, shutdown).await
    }
    .await;
    stack.stop().await;
    let _ = std::fs::remove_file(running_file(&data_dir));
    let gone = exited.lock().unwrap_or_else(|e| e.into_inner()).take();
    if let Some(service) = gone {
        let what = match service.name {
            "postgres" => "PostgreSQL",
            "temporal" => "the Temporal dev server",
            other => other,
        };
        return Err(Fail::new(
            Exit::Unavailable,
            format!(
                "{what}, started by this stack, exited on its own (its log: {}); everything \
                 else was stopped. Run `orderflow dev` again to restart the stack",
                service.log.display()
            ),
        )
        .into());
    }
    result?;
    cx.printer.note("orderflow dev: stopped.");
    Ok(Exit::Success)
}

/// Resolves with the first of `services` that is no longer running.
async fn supervise(services: Vec<Watched>) -> Watched {
    loop {
        if let Some(gone) = services.iter().find(|s| !s.alive()) {
            return gone.clone();
        }
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    }
}

/// `--fresh`: deletes both kept stores, so that neither outlives the
/// other, and the key their orders were encrypted with; keeps the port
/// PostgreSQL had (its exported `DATABASE_URL` stays right). Says what it
/// deleted.
fn forget(cx: &Context, data_dir: &Path) -> anyhow::Result<Vec<String>> {
    refuse_if_in_use(data_dir)?;
    let mut deleted = Vec::new();
    let mut delete = |path: std::path::PathBuf, dir: bool| -> anyhow::Result<()> {
        if !path.exists() {
            return Ok(());
        }
        let done = if dir {
            std::fs::remove_dir_all(&path)
        } else {
            std::fs::remove_file(&path)
        };
        done.with_context(|| format!("deleting {}", path.display()))?;
        deleted.push(path.display().to_string());
        Ok(())
    };
    // The orders it encrypted go too: a fresh stack gets a fresh key.
    delete(crate::stack::codec::key_file_in(data_dir), false)?;
    let postgres = postgres_dir(data_dir);
    let keeps_port = postgres.join("port").exists();
    delete(postgres.join("data"), true)?;
    delete(postgres.join("postgres.log"), false)?;
    // The SQLite file and its journal files.
    let mut journal: Vec<_> = std::fs::read_dir(data_dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("temporal.db"))
        })
        .collect();
    journal.sort();
    for path in journal {
        delete(path, false)?;
    }
    if deleted.is_empty() {
        cx.printer.note(format!(
            "orderflow dev --fresh: nothing to delete in {}",
            data_dir.display()
        ));
    } else {
        cx.printer.note(format!(
            "orderflow dev --fresh: deleted {}{}",
            deleted.join(", "),
            if keeps_port {
                " (PostgreSQL keeps its port)"
            } else {
                ""
            }
        ));
    }
    Ok(deleted)
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
    let program = super::program();
    text += &format!("  {program} product list\n");
    text += &format!("  {program} order create --file examples/orders/completes.json --watch\n");
    text += &format!("  {program} order list\n\n");
    text += &format!("(`{program} dev env` prints the exports again.)\n\n");
    text += "Ctrl-C stops the worker and everything orderflow dev started; its state stays\n";
    text +=
        &format!("in the data directory for the next run (`{program} dev --fresh` starts empty).");
    text
}
