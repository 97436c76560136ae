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
pub fn default_filter(verbose: u8, quiet: bool) -> &'static str {
    match (quiet, verbose) {
        (true, _) => "error",
        (false, 0) => "warn",
        (false, 1) => "warn,orderflow=info",
        (false, 2) => "info,orderflow=debug",
        _ => "trace",
    }
}

/// Installs the global subscriber. `base` raises the default (a worker logs
/// its steps at info without `-v`).
pub fn init(verbose: u8, quiet: bool, format: LogFormat, color: bool, base: Option<&str>) {
    let default = match (base, verbose, quiet) {
        (Some(base), 0, false) => base,
        _ => default_filter(verbose, quiet),
    };
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
