use std::process::ExitCode;

use orderflow::exit::Exit;
use orderflow::output::{ErrorReport, OutputFormat, Printer, is_broken_pipe};
use orderflow::{commands, telemetry};

fn main() -> ExitCode {
    let cli = match orderflow::cli::parse() {
        Ok(cli) => cli,
        Err(e) => return usage_error(e),
    };
    let g = &cli.global;
    let printer = Printer::new(g.output, g.color, g.quiet);
    let serves = matches!(
        cli.command,
        orderflow::cli::Command::Worker(_)
            | orderflow::cli::Command::Dev(_)
            | orderflow::cli::Command::Serve(_)
    );
    // Under -o json, stderr carries JSON errors: logs there are JSON too.
    let log_format = g.log_format.unwrap_or(if printer.is_json() {
        telemetry::LogFormat::Json
    } else {
        telemetry::LogFormat::Text
    });
    telemetry::init(
        g.verbose,
        g.quiet,
        log_format,
        printer.color_stderr(),
        serves,
    );

    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return Exit::Failure.into();
        }
    };
    let result = runtime.block_on(commands::run(cli, printer.clone()));
    let exit = match result {
        Ok(exit) => exit,
        Err(e) if is_broken_pipe(&e) => Exit::Success,
        Err(e) => {
            let report = commands::report(&e);
            printer.error(&report);
            report.exit
        }
    };
    // Don't wait for background tasks (e.g. a hung connection) on the way out.
    runtime.shutdown_background();
    exit.into()
}

/// clap's own errors: help and version are success; the rest is exit 2,
/// as JSON when the command line or environment asked for JSON output.
fn usage_error(error: clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    if matches!(
        error.kind(),
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion
    ) {
        let _ = error.print();
        return Exit::Success.into();
    }
    if wants_json() {
        let message = error.render().to_string();
        let message = message.trim().trim_start_matches("error: ");
        let printer = Printer::new(
            OutputFormat::Json,
            orderflow::output::ColorChoice::Never,
            false,
        );
        printer.error(&ErrorReport::new(Exit::Usage, message));
    } else {
        let _ = error.print();
    }
    Exit::Usage.into()
}

/// Whether `-o json` (or jsonl) was asked for, looking at the raw arguments since they
/// did not parse.
fn wants_json() -> bool {
    let args: Vec<String> = std::env::args().collect();
    let from_args = args
        .windows(2)
        .any(|w| matches!(w[0].as_str(), "-o" | "--output") && is_json(&w[1]))
        || args.iter().any(|a| {
            ["--output=", "-o"]
                .iter()
                .any(|p| a.strip_prefix(p).is_some_and(is_json))
        });
    from_args || std::env::var("ORDERFLOW_OUTPUT").is_ok_and(|v| is_json(&v))
}

fn is_json(format: &str) -> bool {
    matches!(format, "json" | "jsonl")
}
