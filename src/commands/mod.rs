//! One file per subcommand; this module dispatches and holds what they share.

mod bench;
mod completions;
mod db;
mod demo;
mod dev;
mod doctor;
mod man;
pub(crate) mod order;
mod product;
pub(crate) mod worker;

pub use completions::completion_script;
pub use man::man_pages;

use sqlx::PgPool;

use crate::cli::{Cli, Command, GlobalArgs};
use crate::config::{DatabaseConfig, TemporalConfig};
use crate::exit::{Exit, Fail};
use crate::output::Printer;
use crate::stack::local::LocalStack;
use crate::workflow::client::OrderCallError;

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

    /// The local stack of `dev`, `demo` and `bench` (`stack::local`).
    pub async fn local_stack(&self, state: Option<&std::path::Path>) -> anyhow::Result<LocalStack> {
        let database_url = self.global.database_url.as_deref();
        LocalStack::start(&self.global.temporal(), database_url, state).await
    }

    pub fn temporal(&self) -> anyhow::Result<TemporalConfig> {
        Ok(TemporalConfig::resolve(&self.global.temporal())?)
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
        Command::Doctor => interruptible(doctor::run(&cx)).await,
        Command::Completions(args) => completions::run(&cx, args),
        Command::Man(args) => man::run(&cx, args),
    };
    // A refused credential surfaces on the first call after connecting.
    result.map_err(|e| match cx.temporal() {
        Ok(config) => crate::temporal::explain(e, &config),
        Err(_) => e,
    })
}

/// The exit code for an error: the first cause in its chain that knows one.
pub fn exit_code(error: &anyhow::Error) -> Exit {
    for cause in error.chain() {
        if let Some(fail) = cause.downcast_ref::<Fail>() {
            return fail.exit;
        }
        if let Some(OrderCallError::NotFound(_)) = cause.downcast_ref() {
            return Exit::NotFound;
        }
        if cause.is::<crate::input::InputError>() {
            return Exit::Usage;
        }
        if cause.is::<crate::db::ConnectError>()
            || cause.is::<crate::temporal::ConnectError>()
            || cause.is::<crate::temporal::CredentialError>()
        {
            return Exit::Unavailable;
        }
        if let Some(db) = cause.downcast_ref::<sqlx::Error>()
            && matches!(
                db,
                sqlx::Error::Io(_) | sqlx::Error::PoolTimedOut | sqlx::Error::Tls(_)
            )
        {
            return Exit::Unavailable;
        }
    }
    Exit::Failure
}

/// Ends with 130 when Ctrl-C comes first. The command is polled first, so
/// one that handles Ctrl-C itself (`order watch` stops its view and says
/// how to resume) has its say.
async fn interruptible(
    command: impl Future<Output = anyhow::Result<Exit>>,
) -> anyhow::Result<Exit> {
    tokio::select! {
        biased;
        result = command => result,
        _ = tokio::signal::ctrl_c() => Ok(Exit::Interrupted),
    }
}

#[cfg(test)]
mod tests {
    use anyhow::Context as _;

    use super::*;

    #[test]
    fn exit_codes_see_through_context() {
        let err = Err::<(), _>(Fail::new(Exit::NotFound, "no order X"))
            .context("reading status")
            .unwrap_err();
        assert_eq!(exit_code(&err), Exit::NotFound);
        assert_eq!(exit_code(&anyhow::anyhow!("boom")), Exit::Failure);
        let io = anyhow::Error::from(sqlx::Error::PoolTimedOut).context("listing products");
        assert_eq!(exit_code(&io), Exit::Unavailable);
    }
}
