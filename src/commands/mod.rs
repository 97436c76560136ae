//! One file per subcommand; this module dispatches and holds what they share.

mod bench;
mod completions;
mod db;
mod demo;
mod dev;
mod man;
pub(crate) mod order;
mod product;
pub(crate) mod worker;

pub use completions::completion_script;
pub use man::man_pages;

use sqlx::PgPool;

use crate::cli::{Cli, Command, GlobalArgs};
use crate::config::{DatabaseConfig, TemporalConfig};
use crate::exit::Exit;
use crate::output::Printer;

/// What every command gets: the global options and the printer.
pub struct Context {
    pub global: GlobalArgs,
    pub printer: Printer,
}

impl Context {
    pub fn database(&self) -> anyhow::Result<DatabaseConfig> {
        Ok(DatabaseConfig::resolve(
            self.global.database_url.as_deref(),
            self.global.connect_timeout,
        )?)
    }

    /// A small pool for a one-shot command.
    pub async fn pool(&self) -> anyhow::Result<PgPool> {
        Ok(crate::db::connect(&self.database()?, 4).await?)
    }

    pub fn temporal(&self) -> anyhow::Result<TemporalConfig> {
        Ok(TemporalConfig::resolve(&self.global)?)
    }
}

/// Runs the parsed command line. The long-running commands handle signals
/// themselves (a worker drains); the others end with 130 on Ctrl-C.
pub async fn run(cli: Cli, printer: Printer) -> anyhow::Result<Exit> {
    let cx = Context {
        global: cli.global,
        printer,
    };
    let result = match cli.command {
        Command::Worker(args) => worker::run(&cx, args).await,
        Command::Dev(args) => dev::run(&cx, args).await,
        Command::Demo(args) => demo::run(&cx, args).await,
        Command::Bench(args) => bench::run(&cx, args).await,
        Command::Order(cmd) => interruptible(order::run(&cx, cmd)).await,
        Command::Db(cmd) => interruptible(db::run(&cx, cmd)).await,
        Command::Product(cmd) => interruptible(product::run(&cx, cmd)).await,
        Command::Completions(args) => completions::run(&cx, args),
        Command::Man(args) => man::run(&cx, args),
    };
    // A refused credential surfaces on the first call after connecting.
    result.map_err(|e| match cx.temporal() {
        Ok(config) => crate::temporal::explain(e, &config),
        Err(_) => e,
    })
}

/// Ends with 130 when Ctrl-C comes first.
async fn interruptible(
    command: impl Future<Output = anyhow::Result<Exit>>,
) -> anyhow::Result<Exit> {
    tokio::select! {
        result = command => result,
        _ = tokio::signal::ctrl_c() => Ok(Exit::Interrupted),
    }
}
