//! Logs: tracing-subscriber on stderr, text or JSON, level from `-v`/`-q`
//! unless `RUST_LOG` says otherwise.

use clap::ValueEnum;
use tracing_subscriber::EnvFilter;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

/// The default filter for a verbosity: `-q` errors only, none warnings,
/// `-v` our info, `-vv` our debug, `-vvv` everything at trace.
///
/// A one-shot command (`order`, `db`, …) keeps the SDK's own warnings
/// (each retry of a call to a server that went away, with its raw error)
/// to `-v`: the command says what failed in one line of its own.
pub fn default_filter(verbose: u8, quiet: bool, serves: bool) -> &'static str {
    match (quiet, verbose, serves) {
        (true, _, _) => "error",
        // A worker logs its steps at info without `-v`.
        (false, 0, true) => "warn,orderflow=info",
        (false, 0, false) => {
            "warn,temporalio_client=error,temporalio_sdk_core=error,temporalio_sdk=error,\
             temporalio_common=error"
        }
        (false, 1, _) => "warn,orderflow=info",
        (false, 2, _) => "info,orderflow=debug",
        _ => "trace",
    }
}

/// Installs the global subscriber. `serves`: a long-running command (a
/// worker), whose default is louder.
pub fn init(verbose: u8, quiet: bool, format: LogFormat, color: bool, serves: bool) {
    let default = default_filter(verbose, quiet, serves);
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false);
    // A second init (tests run commands in one process) keeps the first.
    let _ = match format {
        LogFormat::Text => builder.with_ansi(color).try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
}
