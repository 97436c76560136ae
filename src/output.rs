//! Output for people and for scripts: data on stdout, everything else on
//! stderr; `-o json` puts only JSON on stdout; no colour or progress bars
//! where the stream is not a terminal.

use std::fmt::Display;
use std::io::{self, IsTerminal, Write};

use clap::ValueEnum;
use comfy_table::{ContentArrangement, Table, presets};
use serde::Serialize;

use crate::exit::Exit;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum OutputFormat {
    /// Tables and sentences for people.
    #[default]
    Text,
    /// Stable JSON on stdout (JSON Lines for `order watch` and `order create
    /// --watch`); errors as JSON on stderr.
    Json,
    /// JSON Lines: one record per line for `order watch` and `order create`
    /// (with or without --watch); commands that print one document print it
    /// as with json.
    Jsonl,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum ColorChoice {
    /// Colour when writing to a terminal and `NO_COLOR` is not set.
    #[default]
    Auto,
    Always,
    Never,
}

impl ColorChoice {
    /// Whether to colour a stream, following <https://no-color.org>.
    pub fn enabled_for(self, stream_is_terminal: bool) -> bool {
        match self {
            Self::Always => true,
            Self::Never => false,
            Self::Auto => {
                stream_is_terminal
                    && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
                    && std::env::var_os("TERM").is_none_or(|t| t != "dumb")
            }
        }
    }
}

/// Writes a command's results. Every write to stdout goes through here so that
/// a closed pipe ends the program quietly instead of panicking.
#[derive(Debug, Clone)]
pub struct Printer {
    format: OutputFormat,
    stdout_terminal: bool,
    stderr_terminal: bool,
    color_stdout: bool,
    color_stderr: bool,
    quiet: bool,
}

impl Printer {
    pub fn new(format: OutputFormat, color: ColorChoice, quiet: bool) -> Self {
        let stdout_terminal = io::stdout().is_terminal();
        let stderr_terminal = io::stderr().is_terminal();
        Self {
            format,
            stdout_terminal,
            stderr_terminal,
            color_stdout: color.enabled_for(stdout_terminal),
            color_stderr: color.enabled_for(stderr_terminal),
            quiet,
        }
    }

    /// JSON on stdout and stderr: `-o json` or `-o jsonl`.
    pub fn is_json(&self) -> bool {
        matches!(self.format, OutputFormat::Json | OutputFormat::Jsonl)
    }

    /// `-o jsonl`: records one per line where a command has several.
    pub fn is_json_lines(&self) -> bool {
        self.format == OutputFormat::Jsonl
    }

    pub fn color_stderr(&self) -> bool {
        self.color_stderr
    }

    /// Progress bars and spinners: only for a person watching stderr.
    pub fn progress_enabled(&self) -> bool {
        self.stderr_terminal && !self.quiet && !self.is_json()
    }

    /// One JSON document on stdout.
    pub fn json<T: Serialize + ?Sized>(&self, value: &T) -> io::Result<()> {
        let mut out = io::stdout().lock();
        serde_json::to_writer_pretty(&mut out, value)?;
        writeln!(out)?;
        out.flush()
    }

    /// One JSON Lines record on stdout, flushed at once so pipes see it live.
    pub fn json_line<T: Serialize + ?Sized>(&self, value: &T) -> io::Result<()> {
        let mut out = io::stdout().lock();
        serde_json::to_writer(&mut out, value)?;
        writeln!(out)?;
        out.flush()
    }

    /// A line of data on stdout.
    pub fn line(&self, text: impl Display) -> io::Result<()> {
        let mut out = io::stdout().lock();
        writeln!(out, "{text}")?;
        out.flush()
    }

    /// Bytes on stdout as they are (completion scripts, man pages).
    pub fn raw(&self, bytes: &[u8]) -> io::Result<()> {
        let mut out = io::stdout().lock();
        out.write_all(bytes)?;
        out.flush()
    }

    /// A message for the person at the terminal (stderr), not data; silent
    /// under `-q` and `-o json`.
    pub fn note(&self, text: impl Display) {
        if !self.quiet && !self.is_json() {
            eprintln!("{text}");
        }
    }

    /// A table styled for where stdout goes: boxed on a terminal, plain
    /// aligned columns for pipes (easy for `awk`/`cut`).
    /// The width of the terminal stdout is, if it is one.
    pub fn stdout_width(&self) -> Option<usize> {
        self.stdout_terminal
            .then(|| console::Term::stdout().size_checked())
            .flatten()
            .map(|(_, columns)| usize::from(columns))
    }

    /// Whether stdout is a terminal (a person reads it, not a script).
    pub fn stdout_is_terminal(&self) -> bool {
        self.stdout_terminal
    }

    /// Colours a status on stdout as the status card and the bars do.
    pub fn stdout_colored(&self) -> bool {
        self.color_stdout
    }

    pub fn table(&self) -> TextTable {
        let mut table = Table::new();
        if self.stdout_terminal {
            table.load_preset(presets::UTF8_FULL_CONDENSED);
            table.set_content_arrangement(ContentArrangement::Dynamic);
        } else {
            table.load_preset(presets::NOTHING);
            table.force_no_tty();
        }
        if self.color_stdout {
            table.enforce_styling();
        }
        TextTable {
            table,
            piped: !self.stdout_terminal,
        }
    }

    /// Reports an error on stderr: `error: …` with its causes, or a JSON
    /// object under `-o json` (with the report's details as extra fields).
    pub fn error(&self, report: &ErrorReport) {
        self.report(&report.message, report.exit, "error:", &report.details);
    }

    /// Says the command was interrupted and what to do next: a sentence on
    /// stderr (even under `-q`), or the JSON error object under `-o json`.
    pub fn interrupted(&self, message: &str) {
        self.report(message, Exit::Interrupted, "", &Default::default());
    }

    fn report(
        &self,
        message: &str,
        exit: Exit,
        label: &str,
        details: &serde_json::Map<String, serde_json::Value>,
    ) {
        if self.is_json() {
            let mut error = serde_json::json!({
                "code": exit.error_code(), "message": message, "exitCode": exit.code()
            });
            if let serde_json::Value::Object(fields) = &mut error {
                fields.extend(details.clone());
            }
            eprintln!("{}", serde_json::json!({ "error": error }));
            return;
        }
        // Its lines are the message's own; nothing in them drives the terminal.
        let message: Vec<_> = message.lines().map(crate::domain::escape).collect();
        let message = message.join("\n");
        if label.is_empty() {
            eprintln!("{message}");
        } else if self.color_stderr {
            eprintln!("\x1b[1;31m{label}\x1b[0m {message}");
        } else {
            eprintln!("{label} {message}");
        }
    }
}

/// A table as [`Printer::table`] makes it: boxed at a terminal; piped, as
/// `gh` and `kubectl` print theirs: columns two spaces apart, no leading
/// space, no trailing blanks.
pub struct TextTable {
    table: Table,
    piped: bool,
}

impl std::ops::Deref for TextTable {
    type Target = Table;

    fn deref(&self) -> &Table {
        &self.table
    }
}

impl std::ops::DerefMut for TextTable {
    fn deref_mut(&mut self) -> &mut Table {
        &mut self.table
    }
}

impl Display for TextTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if !self.piped {
            return write!(f, "{}", self.table);
        }
        let mut table = self.table.clone();
        for column in table.column_iter_mut() {
            column.set_padding((0, 2));
        }
        let text = table.to_string();
        let lines: Vec<&str> = text.lines().map(str::trim_end).collect();
        write!(f, "{}", lines.join("\n"))
    }
}

/// A table cell of text that may come from outside (an ID, a reason, an
/// error's message), escaped so it cannot drive the terminal
/// ([`crate::domain::escape`]).
pub fn cell(text: impl AsRef<str>) -> comfy_table::Cell {
    comfy_table::Cell::new(crate::domain::escape(text.as_ref()))
}

/// An error as the user sees it: its message, its exit code, and for
/// `-o json` any details beyond the message (e.g. `problems`).
#[derive(Debug, Clone)]
pub struct ErrorReport {
    pub exit: Exit,
    pub message: String,
    pub details: serde_json::Map<String, serde_json::Value>,
}

impl ErrorReport {
    pub fn new(exit: Exit, message: impl Into<String>) -> Self {
        Self {
            exit,
            message: message.into(),
            details: serde_json::Map::new(),
        }
    }
}

/// True when the error is only stdout being closed early (`orderflow … | head`).
pub fn is_broken_pipe(error: &anyhow::Error) -> bool {
    error
        .chain()
        .filter_map(|c| c.downcast_ref::<io::Error>())
        .any(|e| e.kind() == io::ErrorKind::BrokenPipe)
}
