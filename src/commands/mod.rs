//! One file per subcommand; this module dispatches and holds what they share.

mod audit;
mod bench;
mod codec_server;
mod completions;
mod db;
mod demo;
mod dev;
mod doctor;
mod man;
pub(crate) mod order;
mod product;
mod replay;
pub(crate) mod serve;
pub(crate) mod worker;

pub use completions::completion_script;
pub use man::man_pages;

use anyhow::Context as _;
use sqlx::PgPool;

use crate::cli::{Cli, Command, GlobalArgs};
use crate::config::DatabaseConfig;
use crate::exit::{Exit, Fail};
use crate::output::{ErrorReport, Printer};
use crate::stack::local::{LocalStack, StackOptions};
use crate::temporal::TemporalConfig;
use crate::temporal::client::OrderCallError;

/// What every command gets: the global options and the printer.
pub struct Context {
    pub global: GlobalArgs,
    pub printer: Printer,
    /// The Temporal settings, resolved (temporal.toml and the key file
    /// read) the first time a command asks, and only then.
    temporal: std::sync::OnceLock<TemporalConfig>,
    /// Ctrl-C, told by [`interruptible`] to the commands that listen.
    interrupt: tokio::sync::watch::Sender<bool>,
}

/// Ctrl-C as a command hears it: told by the one listener in
/// [`interruptible`], so that a command that stops itself on it (`order
/// watch` says how to resume) always has its say; or Ctrl-C itself, for a
/// command that listens on its own.
#[derive(Clone)]
pub struct Interrupt(Option<tokio::sync::watch::Receiver<bool>>);

impl Interrupt {
    /// Ctrl-C itself.
    pub fn ctrl_c() -> Self {
        Self(None)
    }

    /// Resolves on Ctrl-C.
    pub async fn wait(&self) {
        match self.0.clone() {
            Some(mut told) => {
                let _ = told.wait_for(|&interrupted| interrupted).await;
            }
            None => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
}

impl Context {
    pub fn database(&self) -> anyhow::Result<DatabaseConfig> {
        Ok(DatabaseConfig::resolve(
            self.global.database_url.as_deref(),
            self.global.connect_timeout,
        )?)
    }

    /// A small pool for a one-shot command, on a database with orderflow's
    /// schema: a [`SchemaError`](crate::db::SchemaError) (run `db migrate`)
    /// rather than `relation "orders" does not exist` later.
    pub async fn pool(&self) -> anyhow::Result<PgPool> {
        let database = self.database()?;
        let pool = crate::db::connect(&database, 4).await?;
        require_schema(&pool, &database).await?;
        Ok(pool)
    }

    /// A small pool, whatever the schema (`db migrate`, `db status`).
    pub async fn pool_any_schema(&self) -> anyhow::Result<PgPool> {
        Ok(crate::db::connect(&self.database()?, 4).await?)
    }

    /// The local stack of `dev`, `demo` and `bench`; says which Temporal
    /// server it reuses, if it did not start one.
    pub async fn local_stack(&self, options: &StackOptions) -> anyhow::Result<LocalStack> {
        let database_url = self.global.database_url.as_deref();
        let stack = LocalStack::start(&self.global.temporal(), database_url, options).await?;
        // The settings this command uses from now on: a failure is told
        // against them.
        let _ = self.temporal.set(stack.temporal.clone());
        if let Some(note) = stack.info.reuse_note() {
            self.printer
                .note(format!("orderflow {}: {note}", options.role));
        }
        Ok(stack)
    }

    /// Ctrl-C, as [`interruptible`] tells it: listening from now on. Take
    /// it only where it is watched until the command ends: while one is
    /// held, Ctrl-C waits (up to 5 s) for the command to stop itself.
    pub fn interrupt(&self) -> Interrupt {
        Interrupt(Some(self.interrupt.subscribe()))
    }

    /// The Temporal settings, resolved once per command.
    pub fn temporal(&self) -> anyhow::Result<TemporalConfig> {
        if let Some(config) = self.temporal.get() {
            return Ok(config.clone());
        }
        let config = TemporalConfig::resolve(&self.global.temporal())?;
        Ok(self.temporal.get_or_init(|| config).clone())
    }
}

/// Fails with a [`SchemaError`](crate::db::SchemaError) unless every
/// migration is applied.
pub(crate) async fn require_schema(pool: &PgPool, database: &DatabaseConfig) -> anyhow::Result<()> {
    let missing = crate::db::check_schema(pool, &database.redacted())
        .await
        .context("reading which migrations the database has")?;
    match missing {
        None => Ok(()),
        Some(e) => Err(e.into()),
    }
}

/// How to run this binary again from the current directory, for the
/// commands orderflow prints: `orderflow` when that is on PATH and is this
/// binary; else its path (`./target/debug/orderflow` after `cargo run`),
/// so a pasted command runs.
pub fn program() -> &'static str {
    static PROGRAM: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    PROGRAM.get_or_init(|| {
        let Ok(exe) = std::env::current_exe().and_then(|e| e.canonicalize()) else {
            return "orderflow".to_owned();
        };
        let on_path = std::env::var_os("PATH").is_some_and(|path| {
            std::env::split_paths(&path).any(|dir| {
                dir.join("orderflow")
                    .canonicalize()
                    .is_ok_and(|found| found == exe)
            })
        });
        if on_path {
            return "orderflow".to_owned();
        }
        let cwd = std::env::current_dir().and_then(|d| d.canonicalize());
        match cwd
            .ok()
            .and_then(|cwd| exe.strip_prefix(&cwd).ok().map(|p| p.to_owned()))
        {
            Some(relative) => format!("./{}", relative.display()),
            None => exe.display().to_string(),
        }
    })
}

/// Runs the parsed command line. The long-running commands handle signals
/// themselves (a worker drains); the others end with 130 on Ctrl-C.
pub async fn run(cli: Cli, printer: Printer) -> anyhow::Result<Exit> {
    let cx = Context {
        global: cli.global,
        printer,
        temporal: std::sync::OnceLock::new(),
        interrupt: tokio::sync::watch::Sender::new(false),
    };
    let result = match cli.command {
        Command::Worker(args) => worker::run(&cx, args).await,
        Command::Dev(args) => dev::run(&cx, args).await,
        Command::Demo(args) => demo::run(&cx, args).await,
        Command::Bench(args) => bench::run(&cx, args).await,
        Command::Order(cmd) => interruptible(&cx, order::run(&cx, cmd)).await,
        Command::Db(cmd) => interruptible(&cx, db::run(&cx, cmd)).await,
        Command::Product(cmd) => interruptible(&cx, product::run(&cx, cmd)).await,
        Command::CodecServer(args) => codec_server::run(&cx, args).await,
        Command::Serve(args) => serve::run(&cx, args).await,
        Command::Doctor => interruptible(&cx, doctor::run(&cx)).await,
        Command::Audit(args) => interruptible(&cx, audit::run(&cx, args)).await,
        Command::Replay(args) => interruptible(&cx, replay::run(&cx, args)).await,
        Command::Options => options(&cx),
        Command::Completions(args) => completions::run(&cx, args),
        Command::Man(args) => man::run(&cx, args),
    };
    // A failed call the order client did not make (the worker's own),
    // told as Temporal's trouble when it is; against the settings the
    // command used, if it used any.
    match (result, cx.temporal.get()) {
        (Err(e), Some(config)) => Err(crate::temporal::explain(e, config).await),
        (result, _) => result,
    }
}

/// How an error is reported: its message (each cause once), its exit code,
/// and for `-o json` every input problem as `problems`.
pub fn report(error: &anyhow::Error) -> ErrorReport {
    let mut report = ErrorReport::new(exit_code(error), crate::errors::text(error.as_ref()));
    if let Some(invalid) = error
        .chain()
        .find_map(|c| c.downcast_ref::<crate::input::InvalidInput>())
    {
        report.details.insert(
            "problems".into(),
            serde_json::to_value(invalid.problems()).expect("problems serialize"),
        );
    }
    report
}

/// The exit code for an error: the first cause in its chain that knows one.
pub fn exit_code(error: &anyhow::Error) -> Exit {
    for cause in error.chain() {
        if let Some(fail) = cause.downcast_ref::<Fail>() {
            return fail.exit;
        }
        match cause.downcast_ref() {
            Some(OrderCallError::NotFound(_)) => return Exit::NotFound,
            Some(OrderCallError::Unreachable(e) | OrderCallError::Temporal(e)) => return e.exit(),
            _ => {}
        }
        if let Some(e) = cause.downcast_ref::<crate::temporal::TemporalError>() {
            return e.exit();
        }
        if cause.is::<crate::input::InputError>()
            || cause.is::<crate::input::InvalidInput>()
            || cause.is::<crate::db::SchemaError>()
        {
            return Exit::Usage;
        }
        // A payload under a key this setup lacks (or none configured): the
        // setup is the command's problem, as a missing key file is.
        if let Some(codec) = cause.downcast_ref::<crate::temporal::codec::CodecError>()
            && !matches!(codec, crate::temporal::codec::CodecError::Encrypt(_))
        {
            return Exit::Usage;
        }
        if cause.is::<crate::db::ConnectError>() {
            return Exit::Unavailable;
        }
        if let Some(db) = cause.downcast_ref::<sqlx::Error>()
            && crate::db::is_unreachable(db)
        {
            return Exit::Unavailable;
        }
    }
    Exit::Failure
}

/// `orderflow options`: the page `orderflow help options` shows.
fn options(cx: &Context) -> anyhow::Result<Exit> {
    let mut command = crate::cli::command();
    let page = command
        .find_subcommand_mut("options")
        .expect("the options command")
        .render_long_help();
    cx.printer.line(page.to_string().trim_end())?;
    Ok(Exit::Success)
}

/// Ends with 130 when Ctrl-C comes first. A command that listens for it
/// ([`Context::interrupt`]: `order watch` stops its view and says how to
/// resume) is told, and has its say. One listener tells it: two listeners
/// on the signal raced, and the command's sometimes lost.
async fn interruptible(
    cx: &Context,
    command: impl Future<Output = anyhow::Result<Exit>>,
) -> anyhow::Result<Exit> {
    tokio::pin!(command);
    tokio::select! {
        biased;
        result = &mut command => result,
        _ = tokio::signal::ctrl_c() => {
            if cx.interrupt.receiver_count() == 0 {
                return Ok(Exit::Interrupted);
            }
            cx.interrupt.send_replace(true);
            // It stops at once; should it not, 5 s or a second Ctrl-C end it.
            tokio::select! {
                result = command => result,
                _ = tokio::signal::ctrl_c() => Ok(Exit::Interrupted),
                () = tokio::time::sleep(std::time::Duration::from_secs(5)) => Ok(Exit::Interrupted),
            }
        }
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
