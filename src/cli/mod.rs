//! The command line: global options and one Args struct per subcommand.
//! Every flag that a script may want from the environment has an `env`.
//! What help shows beyond the flags is in [`help`].

pub mod help;

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

use secrecy::SecretString;

use chrono::{DateTime, Utc};

use crate::domain::{CancelReason, CustomerId, FailureCode, OrderId, OrderStatus, WorkflowId};
use crate::output::{ColorChoice, OutputFormat};
use crate::telemetry::LogFormat;
use crate::temporal::TemporalSettings;
use crate::workflow::retry::RetryConfig;

/// Order processing on Temporal and PostgreSQL.
///
/// One binary runs the order worker, submits and follows orders, manages the
/// catalog and migrates the database. Data goes to stdout (`-o json` for
/// scripts); logs, progress and prompts go to stderr.
#[derive(Debug, Parser)]
#[command(name = "orderflow", version, propagate_version = true)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Args)]
pub struct GlobalArgs {
    /// Temporal frontend address; TEMPORAL_HOST_PORT is read too
    /// [default: the profile's, else localhost:7233]
    #[arg(long, global = true, env = "TEMPORAL_ADDRESS", value_name = "HOST:PORT",
          help_heading = help::TEMPORAL)]
    pub address: Option<String>,

    /// Temporal namespace [default: the profile's, else default]
    #[arg(long, global = true, env = "TEMPORAL_NAMESPACE", value_name = "NAME",
          help_heading = help::TEMPORAL)]
    pub namespace: Option<String>,

    /// Task queue the worker polls and orders are sent to [default: orderflow]
    #[arg(long, global = true, env = "ORDERFLOW_TASK_QUEUE", value_name = "NAME",
          help_heading = help::TEMPORAL)]
    pub task_queue: Option<String>,

    /// Profile to read from the Temporal CLI's config file
    #[arg(long, global = true, env = "TEMPORAL_PROFILE", value_name = "NAME",
          help_heading = help::TEMPORAL)]
    pub profile: Option<String>,

    /// The Temporal CLI's config file [default: its own, temporal.toml]
    #[arg(long, global = true, env = "TEMPORAL_CONFIG_FILE", value_name = "PATH",
          help_heading = help::TEMPORAL)]
    pub config_file: Option<PathBuf>,

    /// Web UI base for order links [default: the address's host, port 8233]
    #[arg(long, global = true, env = "ORDERFLOW_UI_URL", value_name = "URL",
          help_heading = help::TEMPORAL)]
    pub ui_url: Option<String>,

    /// How long to wait for Temporal or PostgreSQL to answer before giving up (exit 8)
    #[arg(long, global = true, env = "ORDERFLOW_CONNECT_TIMEOUT", default_value = "5s",
          value_parser = parse_duration, value_name = "DURATION", help_heading = help::TEMPORAL)]
    pub connect_timeout: Duration,

    /// Encrypt every payload sent to Temporal with the keys in this file:
    /// one KEY_ID:BASE64_OF_32_BYTES per line, the first encrypts, all
    /// decrypt; it must be readable by its owner only
    #[arg(long, global = true, env = "ORDERFLOW_ENCRYPTION_KEY_FILE", value_name = "PATH",
          help_heading = help::TEMPORAL)]
    pub encryption_key_file: Option<PathBuf>,

    /// API key for Temporal Cloud; turns TLS on. Never printed
    #[arg(long, global = true, env = "TEMPORAL_API_KEY", value_name = "KEY",
          hide_env_values = true, help_heading = help::TLS)]
    pub api_key: Option<String>,

    /// Connect to Temporal over TLS
    #[arg(long, global = true, env = "TEMPORAL_TLS",
          value_parser = clap::builder::FalseyValueParser::new(), help_heading = help::TLS)]
    pub tls: bool,

    /// Client certificate for mTLS
    #[arg(long, global = true, env = "TEMPORAL_TLS_CLIENT_CERT_PATH", value_name = "PATH",
          help_heading = help::TLS)]
    pub tls_cert_path: Option<PathBuf>,

    /// Client private key for mTLS
    #[arg(long, global = true, env = "TEMPORAL_TLS_CLIENT_KEY_PATH", value_name = "PATH",
          help_heading = help::TLS)]
    pub tls_key_path: Option<PathBuf>,

    /// CA certificate to verify the server with
    #[arg(long, global = true, env = "TEMPORAL_TLS_SERVER_CA_CERT_PATH", value_name = "PATH",
          help_heading = help::TLS)]
    pub tls_ca_path: Option<PathBuf>,

    /// Server name to verify the certificate against
    #[arg(long, global = true, env = "TEMPORAL_TLS_SERVER_NAME", value_name = "NAME",
          help_heading = help::TLS)]
    pub tls_server_name: Option<String>,

    /// PostgreSQL URL, postgres://USER:PASSWORD@HOST:PORT/DB; when unset,
    /// built from POSTGRES_HOST, POSTGRES_PORT, POSTGRES_USER,
    /// POSTGRES_PASSWORD and POSTGRES_DB. Its password is never printed
    #[arg(long, global = true, env = "DATABASE_URL", value_name = "URL",
          hide_env_values = true, help_heading = help::DATABASE)]
    pub database_url: Option<String>,

    /// Output format for data on stdout: text for people, json for scripts,
    /// jsonl (JSON Lines) for the changes `order watch` follows
    #[arg(short, long, global = true, env = "ORDERFLOW_OUTPUT", value_enum, default_value_t,
          value_name = "FORMAT", help_heading = help::OUTPUT)]
    pub output: OutputFormat,

    /// When to use colour; NO_COLOR turns it off under auto
    #[arg(long, global = true, value_enum, default_value_t, value_name = "WHEN",
          help_heading = help::OUTPUT)]
    pub color: ColorChoice,

    /// More log detail on stderr (-v, -vv, -vvv); RUST_LOG overrides
    #[arg(short, long, global = true, action = clap::ArgAction::Count, conflicts_with = "quiet",
          help_heading = help::OUTPUT)]
    pub verbose: u8,

    /// Only errors on stderr: no progress, notes or warnings
    #[arg(short, long, global = true, help_heading = help::OUTPUT)]
    pub quiet: bool,

    /// Log line format on stderr [default: json with -o json or jsonl, else text]
    #[arg(long, global = true, value_enum, value_name = "FORMAT",
          help_heading = help::OUTPUT)]
    pub log_format: Option<LogFormat>,
}

/// The command line as it is parsed, shown in `--help` and in the man
/// pages: [`Cli`] with each command's examples and exit codes.
pub fn command() -> clap::Command {
    help::decorate(<Cli as clap::CommandFactory>::command())
}

/// Parses the process's arguments.
pub fn parse() -> Result<Cli, clap::Error> {
    use clap::FromArgMatches as _;
    let mut matches = without_empty_env(command()).try_get_matches()?;
    Cli::from_arg_matches_mut(&mut matches)
}

/// An environment variable set to nothing (`DATABASE_URL=`) counts as not
/// set, as a shell user means it, rather than as an empty value.
fn without_empty_env(command: clap::Command) -> clap::Command {
    let command = command.mut_args(|arg| match arg.get_env() {
        Some(name) if std::env::var_os(name).is_some_and(|v| v.is_empty()) => arg.env(None),
        _ => arg,
    });
    let names: Vec<String> = command
        .get_subcommands()
        .map(|c| c.get_name().to_owned())
        .collect();
    names.into_iter().fold(command, |command, name| {
        command.mut_subcommand(name, without_empty_env)
    })
}

impl GlobalArgs {
    /// The Temporal settings the flags give, as plain values for `config`.
    pub fn temporal(&self) -> TemporalSettings {
        TemporalSettings {
            address: self.address.clone(),
            namespace: self.namespace.clone(),
            task_queue: self.task_queue.clone(),
            api_key: self.api_key.clone().map(SecretString::from),
            tls: self.tls,
            tls_cert_path: self.tls_cert_path.clone(),
            tls_key_path: self.tls_key_path.clone(),
            tls_ca_path: self.tls_ca_path.clone(),
            tls_server_name: self.tls_server_name.clone(),
            profile: self.profile.clone(),
            config_file: self.config_file.clone(),
            connect_timeout: self.connect_timeout,
            ui_url: self.ui_url.clone(),
            encryption_key_file: self.encryption_key_file.clone(),
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the order workflow and its activities until SIGINT/SIGTERM, then drain
    Worker(WorkerArgs),
    /// Submit, inspect, follow and cancel orders
    #[command(subcommand)]
    Order(OrderCommand),
    /// Apply, inspect and reset the PostgreSQL schema
    #[command(subcommand)]
    Db(DbCommand),
    /// Manage the catalog and the stock orders draw on
    #[command(subcommand)]
    Product(ProductCommand),
    /// Start a local stack (Temporal dev server, PostgreSQL, worker) for development
    Dev(DevArgs),
    /// Run the sample orders on a local stack and show how each one ends
    Demo(DemoArgs),
    /// Measure throughput, latency and memory against an orchestration-only baseline
    ///
    /// Starts what is not reachable (an in-memory Temporal dev server, a throwaway
    /// PostgreSQL) and measures, on the real path first: W `orderflow worker`
    /// processes started from this binary with their default tuning, orders started
    /// by a client in this process without eager start, as `order create` does:
    ///   1. throughput: N orders at concurrency C, real workflow vs no-op baseline,
    ///      alternating in rounds, the first of each round swapping (B O, O B, …);
    ///      orders/s is the median over the rounds of each round's steady part,
    ///      without its start and the drain at its end, when fewer than C orders
    ///      are left in flight; the range is the slowest and fastest round;
    ///   2. one product: H orders for one product with a stock of H/2; exactly H/2
    ///      must complete (else exit 1), the rest fail OUT_OF_STOCK;
    ///   3. single-order latency, start -> COMPLETED, over R sequential orders;
    ///   4. a worker process's peak memory with M orders in flight at once.
    ///
    /// With 1. it measures what an order costs: Temporal actions, events and
    /// bytes from the histories, PostgreSQL transactions, statements and WAL,
    /// and CPU (workers, PostgreSQL and the dev server when it started them),
    /// and the orders/s a worker core, a PostgreSQL core (when it started
    /// PostgreSQL) and a Temporal Cloud namespace carry at that cost; with 3., where a single order's time
    /// goes; with --rate, latency at steady arrival rates (open loop).
    ///
    /// Then 1. again with the worker in this process and eager start (the ceiling
    /// of a client that hosts its own worker). Last, with --big-tables N, the
    /// reading commands (order list, order status, audit --all --database-only)
    /// with N orders in the table.
    /// Results go to stdout (a table, or -o json); see DOCS.md for recorded runs.
    #[command(verbatim_doc_comment)]
    Bench(BenchArgs),
    /// Serve the Temporal remote codec protocol, so the Web UI and `temporal
    /// --codec-endpoint` show encrypted orders decrypted
    ///
    /// POST /encode and POST /decode with {"payloads": [...]}, using the keys
    /// of --encryption-key-file. Run it next to the person who reads the
    /// orders (their machine, or behind their access control); never expose
    /// it publicly: whoever reaches it can decrypt.
    CodecServer(CodecServerArgs),
    /// Serve the order API and the order page over HTTP
    ///
    /// The REST API (POST /api/orders, GET /api/orders/{id}, its events,
    /// cancel, the product list, /api/openapi.json) and the order page at /,
    /// on the CLI's rules: the same validation, idempotency, JSON and errors.
    /// It starts no worker: run `orderflow worker` too. On loopback by
    /// default; any other address needs --api-token-file (or --no-auth).
    /// SIGTERM stops it gracefully: no new connections, requests in flight
    /// finished, then exit 0.
    Serve(ServeArgs),
    /// Check the setup end to end and say how to fix what fails
    ///
    /// Checks the configuration in effect (without secrets), that Temporal
    /// answers (its version), the namespace, the orders' search attributes, a
    /// worker polling the task queue, that PostgreSQL answers (its version),
    /// pending migrations and the catalog.
    Doctor,
    /// Check money, stock and notices against how each order ended
    ///
    /// Reads every order in scope from PostgreSQL and says, order by order,
    /// what breaks orderflow's promise: a COMPLETED order without exactly one
    /// capture of its total or without its stock; a FAILED or CANCELLED one
    /// still captured or holding stock (and, per product, what ended orders
    /// hold); an ended order without exactly one notice of its ending. Then compares with Temporal: a row without a workflow, a
    /// workflow without a row, an ending the two disagree on, and orders not
    /// ended after --stuck-after, each with why. Exit 0 when clean, 9 when
    /// it found problems.
    Audit(AuditArgs),
    /// Replay order histories against this binary's workflow code
    ///
    /// Whether this build can run the orders already in flight: fetches the
    /// histories of the orders started in the last --since (or those given
    /// with --id, or the exported files of --dir) and replays each against
    /// this binary's OrderWorkflow, decrypting with the encryption key file
    /// when one is set. Prints each history that does not replay with the
    /// event where it diverged and why. Exit 0 when every one replays, 9
    /// when any does not. Run the new build's replay before deploying it.
    Replay(ReplayArgs),
    /// Print shell completions
    Completions(CompletionsArgs),
    /// Print or write man pages
    Man(ManArgs),
    /// The options every command takes: Temporal, TLS, database, output
    /// (also `orderflow help options`)
    #[command(hide = true)]
    Options,
}

#[derive(Debug, Clone, Args)]
pub struct WorkerArgs {
    /// Attempts per step before a transient failure fails the order
    #[arg(long, value_name = "N", env = "ORDERFLOW_RETRY_MAX_ATTEMPTS", default_value_t = RetryConfig::DEFAULT.max_attempts,
          value_parser = clap::value_parser!(u32).range(1..=100), help_heading = "Retry policy")]
    pub retry_max_attempts: u32,

    /// Wait before the first retry
    #[arg(long, env = "ORDERFLOW_RETRY_INITIAL_INTERVAL",
          default_value = humantime::format_duration(RetryConfig::DEFAULT.initial_interval).to_string(),
          value_parser = parse_duration, value_name = "DURATION", help_heading = "Retry policy")]
    pub retry_initial_interval: Duration,

    /// Factor by which each wait grows
    #[arg(
        long,
        env = "ORDERFLOW_RETRY_BACKOFF",
        default_value_t = RetryConfig::DEFAULT.backoff_coefficient,
        value_name = "FACTOR",
        help_heading = "Retry policy"
    )]
    pub retry_backoff: f64,

    /// Longest wait between retries
    #[arg(long, env = "ORDERFLOW_RETRY_MAX_INTERVAL",
          default_value = humantime::format_duration(RetryConfig::DEFAULT.max_interval).to_string(),
          value_parser = parse_duration, value_name = "DURATION", help_heading = "Retry policy")]
    pub retry_max_interval: Duration,

    /// How long a step waits for PostgreSQL to come back before the order
    /// fails INTERNAL. Such waits are not attempts: an outage never uses up
    /// the retry budget or fails a payment
    #[arg(long, env = "ORDERFLOW_OUTAGE_TIMEOUT", default_value = "24h",
          value_parser = parse_duration, value_name = "DURATION", help_heading = "Retry policy")]
    pub outage_timeout: Duration,

    /// Workflow tasks processed at once
    #[arg(long, value_name = "N", env = "ORDERFLOW_MAX_CONCURRENT_WORKFLOW_TASKS", default_value_t = 200,
          value_parser = clap::value_parser!(u32).range(1..), help_heading = "Tuning")]
    pub max_concurrent_workflow_tasks: u32,

    /// With --encryption-key-file: still run orders that arrive unencrypted
    /// (from clients without the key file), for a switch-over window.
    /// Without it they fail INVALID_ORDER before any step
    #[arg(long, env = "ORDERFLOW_ACCEPT_UNENCRYPTED")]
    pub accept_unencrypted: bool,

    /// Also host the no-op baseline workflow (for `orderflow bench`)
    #[arg(long, hide = true)]
    pub with_baseline: bool,

    /// Workflow-task polls kept open at once, sticky and not (the Temporal
    /// SDKs' max concurrent workflow task polls)
    #[arg(long, env = "ORDERFLOW_MAX_CONCURRENT_WORKFLOW_TASK_POLLS", default_value_t = 16,
          value_parser = clap::value_parser!(u32).range(2..=1000), value_name = "N",
          help_heading = "Tuning")]
    pub max_concurrent_workflow_task_polls: u32,

    /// The share of those polls on the task queue itself rather than on this
    /// worker's sticky queue: new orders' first tasks come from the former
    #[arg(long, env = "ORDERFLOW_NONSTICKY_TO_STICKY_POLL_RATIO", default_value_t = 0.5,
          value_parser = parse_ratio, value_name = "RATIO", help_heading = "Tuning")]
    pub nonsticky_to_sticky_poll_ratio: f32,

    /// Workflows kept in memory between their tasks (the sticky cache)
    #[arg(long, env = "ORDERFLOW_MAX_CACHED_WORKFLOWS", default_value_t = 1000,
          value_parser = clap::value_parser!(u32).range(1..=1_000_000), value_name = "N",
          help_heading = "Tuning")]
    pub max_cached_workflows: u32,

    /// Activities (local and remote) running at once
    #[arg(long, value_name = "N", env = "ORDERFLOW_MAX_CONCURRENT_ACTIVITIES", default_value_t = 200,
          value_parser = clap::value_parser!(u32).range(1..), help_heading = "Tuning")]
    pub max_concurrent_activities: u32,

    /// Largest PostgreSQL connection pool the worker opens
    #[arg(long, value_name = "N", env = "ORDERFLOW_DB_MAX_CONNECTIONS", default_value_t = 16,
          value_parser = clap::value_parser!(u32).range(1..=1000), help_heading = "Tuning")]
    pub db_max_connections: u32,

    /// POST each customer notification as JSON here (with an Idempotency-Key
    /// header); without it, notifications are recorded and logged. Only its
    /// scheme, host and port are ever printed (a path may hold a token)
    #[arg(
        long,
        env = "ORDERFLOW_NOTIFY_WEBHOOK",
        value_name = "URL",
        hide_env_values = true
    )]
    pub notify_webhook: Option<url::Url>,

    /// Sign each webhook delivery with this secret: an Orderflow-Signature
    /// header, t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>
    /// (see DOCS.md for how a receiver checks it). Never logged
    #[arg(long, env = "ORDERFLOW_NOTIFY_WEBHOOK_SECRET", value_name = "SECRET",
          hide_env_values = true, requires = "notify_webhook", value_parser = parse_secret)]
    pub notify_webhook_secret: Option<secrecy::SecretString>,

    /// Serve /metrics (Prometheus), /healthz and /readyz on this address
    /// (off by default)
    #[arg(long, env = "ORDERFLOW_METRICS_ADDRESS", value_name = "HOST:PORT")]
    pub metrics_address: Option<std::net::SocketAddr>,

    /// Time limit of one webhook delivery. A delivery that gets no answer in
    /// time counts as an attempt that may have arrived: it is tried again
    /// (the receiver drops a repeat by its Idempotency-Key), and an order
    /// whose confirmation may have arrived is never cancelled
    #[arg(long, env = "ORDERFLOW_NOTIFY_TIMEOUT", default_value = "10s",
          value_parser = parse_duration, value_name = "DURATION")]
    pub notify_timeout: Duration,

    /// How long to let in-flight tasks finish after SIGINT/SIGTERM
    #[arg(long, env = "ORDERFLOW_SHUTDOWN_TIMEOUT", default_value = "30s",
          value_parser = parse_duration, value_name = "DURATION", help_heading = "Tuning")]
    pub shutdown_timeout: Duration,
}

#[derive(Debug, Subcommand)]
pub enum OrderCommand {
    /// Validate order files, then start one workflow per order
    ///
    /// The file holds one order object or an array of them; '-' reads stdin.
    /// Every order is checked before any is started: one bad order submits
    /// none, and every problem is reported. Submitting an ID that exists
    /// never creates a second order.
    Create(CreateArgs),
    /// Show an order: status, step, attempts, failure, items and amounts
    Status(StatusArgs),
    /// Follow orders until each reaches COMPLETED, CANCELLED or FAILED
    ///
    /// Name the orders by ID ('-' reads IDs from stdin, one a line), by the
    /// files they were submitted from (--file), or as `order list` selects
    /// them (--status, --customer); these add up.
    Watch(WatchArgs),
    /// Cancel an order and wait for the outcome, or many (a selection)
    Cancel(CancelArgs),
    /// Start FAILED orders again as new orders (e.g. after a gateway outage)
    ///
    /// Each becomes a new order with the same content and an ID made from
    /// the old one (ORD-7 → ORD-7-R, then ORD-7-R2), linked both ways
    /// (`order status` of either shows the link). It starts only when each
    /// line's product is still in the catalog at the same price with the
    /// stock; running it again starts nothing new. Name one order, or a
    /// selection as `order cancel` takes it (FAILED orders when no --status).
    Resubmit(ResubmitArgs),
    /// List orders, newest first
    List(ListArgs),
}

#[derive(Debug, Args)]
pub struct ResubmitArgs {
    /// The FAILED order to resubmit. Without one, a selection (--status,
    /// --customer, --failure-code, --created-after/--created-before,
    /// --query or --ids-file) names many
    #[arg(value_name = "ID", value_parser = clipped(parse_workflow_id),
          required_unless_present_any = ["status", "customer", "failure_code", "created_after", "created_before", "query", "ids_file"],
          conflicts_with_all = ["status", "customer", "failure_code", "created_after", "created_before", "query", "ids_file"])]
    pub id: Option<WorkflowId>,

    #[command(flatten)]
    pub pick: PickArgs,

    /// With a selection: list the orders it would resubmit, and change nothing
    #[arg(long, conflicts_with = "id")]
    pub dry_run: bool,

    /// With a selection: do not ask; required when stdin is not a terminal
    #[arg(long, conflicts_with = "id")]
    pub yes: bool,

    /// With a selection: at most this many orders a second (e.g. 20 or 20/s)
    #[arg(long, value_parser = parse_rate, value_name = "N/s", conflicts_with = "id")]
    pub rate: Option<f64>,
}

#[derive(Debug, Args)]
pub struct CreateArgs {
    /// Order file (JSON); repeat for several; '-' for stdin
    #[arg(short, long = "file", value_name = "PATH", required = true)]
    pub files: Vec<PathBuf>,

    /// Order ID to use (one order only); overrides the file's "id"
    #[arg(long, value_name = "ID", value_parser = clipped(parse_order_id))]
    pub id: Option<OrderId>,

    /// Follow the orders after submitting; exit codes as for `order watch`
    #[arg(short, long)]
    pub watch: bool,

    /// Only validate and print what would be submitted
    #[arg(long, conflicts_with = "watch")]
    pub dry_run: bool,

    /// With --watch: give up after this long (exit 7), e.g. 30s, 5m
    #[arg(long, requires = "watch", value_parser = parse_duration, value_name = "DURATION")]
    pub timeout: Option<Duration>,

    /// Keep at most N of the orders this command starts running at once: the
    /// next one starts when one has ended. For a large file, pick N as the
    /// orders/s you want times the latency you accept (DOCS.md § Capacity)
    #[arg(long, value_name = "N", conflicts_with = "dry_run",
          value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub max_in_flight: Option<u32>,

    /// Start at most this many orders a second (e.g. 50 or 50/s)
    #[arg(long, value_parser = parse_rate, value_name = "N/s", conflicts_with = "dry_run")]
    pub rate: Option<f64>,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// The order ID (= workflow ID); any workflow ID Temporal holds
    #[arg(value_name = "ID", value_parser = clipped(parse_workflow_id))]
    pub id: WorkflowId,

    /// The order's life as one table: each step's start, duration, attempts
    /// and waits (for a worker, retry back-off, the database), the signals,
    /// the compensation, and what it did to money, stock and notices (from
    /// the database, when one is configured)
    #[arg(long)]
    pub timeline: bool,
}

#[derive(Debug, Args)]
pub struct WatchArgs {
    /// Order IDs to follow; '-' reads them from stdin (one a line)
    #[arg(value_name = "ID", value_parser = clipped(parse_id_arg),
          required_unless_present_any = ["files", "status", "customer"])]
    pub ids: Vec<IdArg>,

    /// Follow the orders of this order file (as `order create` read it;
    /// repeat for several)
    #[arg(short, long = "file", value_name = "PATH")]
    pub files: Vec<PathBuf>,

    #[command(flatten)]
    pub select: SelectArgs,

    /// Give up after this long (exit 7), e.g. 30s, 5m
    #[arg(long, value_parser = parse_duration, value_name = "DURATION")]
    pub timeout: Option<Duration>,
}

/// An order ID on the command line, or `-` for the IDs on stdin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdArg {
    Stdin,
    Id(WorkflowId),
}

fn parse_id_arg(text: &str) -> Result<IdArg, String> {
    match text {
        "-" => Ok(IdArg::Stdin),
        _ => parse_workflow_id(text).map(IdArg::Id),
    }
}

/// Which orders, as the database has them: `order list` and `order watch`.
#[derive(Debug, Args, Default)]
pub struct SelectArgs {
    /// Only orders in this status (any case); repeat or separate with
    /// commas for several; 'open' is every status that has not ended
    #[arg(long, value_parser = status_set_parser(), value_delimiter = ',',
          ignore_case = true, value_name = "STATUS")]
    pub status: Vec<StatusSet>,

    /// Only this customer's orders
    #[arg(long, value_parser = clipped(parse_customer_id), value_name = "ID")]
    pub customer: Option<CustomerId>,
}

impl SelectArgs {
    /// The statuses asked for, each once (empty: any).
    pub fn statuses(&self) -> Vec<OrderStatus> {
        let mut all: Vec<OrderStatus> = Vec::new();
        for status in self.status.iter().flat_map(|s| s.0.iter()) {
            if !all.contains(status) {
                all.push(*status);
            }
        }
        all
    }

    /// Whether any filter is set.
    pub fn is_set(&self) -> bool {
        !self.status.is_empty() || self.customer.is_some()
    }

    /// The options as they were given, for a command to run again.
    pub fn to_args(&self) -> Vec<String> {
        let mut args = Vec::new();
        if !self.status.is_empty() {
            let names: Vec<&str> = self.status.iter().map(|s| s.1).collect();
            args.extend(["--status".to_owned(), names.join(",")]);
        }
        if let Some(customer) = &self.customer {
            args.extend(["--customer".to_owned(), customer.as_str().to_owned()]);
        }
        args
    }
}

/// One `--status` value: the statuses it stands for, and its name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusSet(pub Vec<OrderStatus>, pub &'static str);

/// Many orders at once (`order cancel` without an ID): by the database's
/// filters, a visibility query, or a file of IDs.
#[derive(Debug, Args, Default)]
pub struct PickArgs {
    #[command(flatten)]
    pub select: SelectArgs,

    /// Only orders that FAILED with this code (repeatable)
    #[arg(long, value_parser = parse_failure_code, value_name = "CODE", value_delimiter = ',')]
    pub failure_code: Vec<FailureCode>,

    /// Only orders created after this time: RFC 3339 (2026-12-04T10:00:00Z)
    /// or a duration ago (2h)
    #[arg(long, value_parser = parse_moment, value_name = "TIME")]
    pub created_after: Option<DateTime<Utc>>,

    /// Only orders created before this time: RFC 3339 or a duration ago
    #[arg(long, value_parser = parse_moment, value_name = "TIME")]
    pub created_before: Option<DateTime<Utc>>,

    /// The orders a visibility query finds instead (on OrderStatus,
    /// CustomerId, FailureCode, OrderTotal), e.g. 'OrderStatus="PAID"'
    #[arg(long, value_name = "QUERY",
          conflicts_with_all = ["status", "customer", "failure_code", "created_after", "created_before", "ids_file"])]
    pub query: Option<String>,

    /// The orders named in this file, one ID a line ('#' comments); '-'
    /// reads stdin
    #[arg(long, value_name = "PATH",
          conflicts_with_all = ["status", "customer", "failure_code", "created_after", "created_before"])]
    pub ids_file: Option<PathBuf>,
}

impl PickArgs {
    /// Whether any selection is given.
    pub fn is_set(&self) -> bool {
        self.select.is_set()
            || !self.failure_code.is_empty()
            || self.created_after.is_some()
            || self.created_before.is_some()
            || self.query.is_some()
            || self.ids_file.is_some()
    }
}

/// `2026-12-04T10:00:00Z`, or a duration ago: `2h`.
fn parse_moment(text: &str) -> Result<DateTime<Utc>, String> {
    if let Ok(at) = DateTime::parse_from_rfc3339(text) {
        return Ok(at.with_timezone(&Utc));
    }
    match humantime::parse_duration(text) {
        Ok(ago) => chrono::Duration::from_std(ago)
            .ok()
            .and_then(|ago| Utc::now().checked_sub_signed(ago))
            .ok_or_else(|| "is too long ago".to_owned()),
        Err(_) => Err("use a time like 2026-12-04T10:00:00Z, or a duration ago like 2h".to_owned()),
    }
}

fn parse_failure_code(text: &str) -> Result<FailureCode, String> {
    text.to_ascii_uppercase()
        .parse::<FailureCode>()
        .map_err(|_| {
            format!(
                "not a failure code; one of: {}",
                FailureCode::ALL
                    .iter()
                    .map(|c| c.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        })
}

/// `--rate 20` or `--rate 20/s`: orders per second.
fn parse_rate(text: &str) -> Result<f64, String> {
    let number = text.trim().strip_suffix("/s").unwrap_or(text.trim());
    match number.parse::<f64>() {
        Ok(rate) if (0.01..=100_000.0).contains(&rate) => Ok(rate),
        _ => Err("use orders per second from 0.01 to 100000, e.g. 20 or 20/s".to_owned()),
    }
}

/// An arrival rate for `bench --rate`: orders a second, or a share of the
/// maximum the run measured.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum RateSpec {
    PerSecond(f64),
    PercentOfMax(f64),
}

fn parse_rate_spec(text: &str) -> Result<RateSpec, String> {
    match text.trim().strip_suffix('%') {
        Some(percent) => match percent.trim().parse::<f64>() {
            Ok(p) if (1.0..=200.0).contains(&p) => Ok(RateSpec::PercentOfMax(p)),
            _ => Err("a share of the maximum from 1% to 200%, e.g. 80%".to_owned()),
        },
        None => parse_rate(text).map(RateSpec::PerSecond),
    }
}

#[derive(Debug, Args)]
pub struct CancelArgs {
    /// The order ID to cancel; any workflow ID Temporal holds. Without
    /// one, a selection (--status, --customer, --failure-code,
    /// --created-after/--created-before, --query or --ids-file) names many
    #[arg(value_name = "ID", value_parser = clipped(parse_workflow_id),
          required_unless_present_any = ["status", "customer", "failure_code", "created_after", "created_before", "query", "ids_file"],
          conflicts_with_all = ["status", "customer", "failure_code", "created_after", "created_before", "query", "ids_file"])]
    pub id: Option<WorkflowId>,

    #[command(flatten)]
    pub pick: PickArgs,

    /// With a selection: list the orders it would cancel, and change nothing
    #[arg(long, conflicts_with = "id")]
    pub dry_run: bool,

    /// With a selection: do not ask; required when stdin is not a terminal
    #[arg(long, conflicts_with = "id")]
    pub yes: bool,

    /// With a selection: at most this many orders a second (e.g. 20 or 20/s)
    #[arg(long, value_parser = parse_rate, value_name = "N/s", conflicts_with = "id")]
    pub rate: Option<f64>,

    /// Why the order is cancelled: one line, at most 500 characters,
    /// recorded with the order and told to the customer
    #[arg(long, value_name = "TEXT", default_value = "cancelled by operator", value_parser = clipped(parse_reason))]
    pub reason: CancelReason,

    /// Send the cancellation and return without waiting for the outcome
    #[arg(long)]
    pub no_wait: bool,

    /// Give up waiting after this long (exit 7)
    #[arg(long, conflicts_with = "no_wait", value_parser = parse_duration, value_name = "DURATION")]
    pub timeout: Option<Duration>,
}

#[derive(Debug, Args)]
pub struct ListArgs {
    #[command(flatten)]
    pub select: SelectArgs,

    /// At most this many orders
    #[arg(long, value_name = "N", default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub limit: u32,

    /// The next page: only the orders listed after this one (the last
    /// order ID of the previous page), with the same filters
    #[arg(long, value_parser = clipped(parse_order_id), value_name = "ID", conflicts_with = "query")]
    pub after: Option<OrderId>,

    /// List from Temporal's visibility instead of the database, with a
    /// visibility query on the orders' search attributes (OrderStatus,
    /// CustomerId, FailureCode, OrderTotal), e.g. 'OrderStatus="FAILED"'
    #[arg(long, value_name = "QUERY", conflicts_with_all = ["status", "customer"])]
    pub query: Option<String>,
}

#[derive(Debug, Args)]
pub struct AuditArgs {
    /// Only the orders created in the last DURATION (e.g. 1h, 7d)
    #[arg(long, value_parser = parse_duration, value_name = "DURATION", default_value = "24h",
          conflicts_with = "all")]
    pub since: Duration,

    /// Every order, however old
    #[arg(long)]
    pub all: bool,

    /// An order not ended this long after it was created is stuck
    #[arg(long, value_parser = parse_duration, value_name = "DURATION", default_value = "10m")]
    pub stuck_after: Duration,

    /// Check only what PostgreSQL holds (money, stock, notices), without
    /// Temporal
    #[arg(long)]
    pub database_only: bool,
}

#[derive(Debug, Args)]
pub struct ReplayArgs {
    /// The orders of the task queue started in the last DURATION
    #[arg(long, value_parser = parse_duration, value_name = "DURATION", default_value = "24h")]
    pub since: Duration,

    /// At most N of those orders, picked at random
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..),
          conflicts_with_all = ["ids", "dir"])]
    pub sample: Option<u32>,

    /// This order's history (repeatable), instead of the recent ones
    #[arg(long = "id", value_name = "ID", conflicts_with_all = ["since", "dir"])]
    pub ids: Vec<String>,

    /// The exported histories in DIR (every .json file, as `temporal
    /// workflow show -o json` writes them), instead of the server's
    #[arg(long, value_name = "DIR", conflicts_with = "since")]
    pub dir: Option<std::path::PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum DbCommand {
    /// Apply pending migrations (safe to repeat)
    Migrate,
    /// List applied and pending migrations
    Status,
    /// Drop everything orderflow stored and re-apply the migrations
    Reset(ResetArgs),
}

#[derive(Debug, Args)]
pub struct ResetArgs {
    /// Do not ask; required when stdin is not a terminal
    #[arg(long)]
    pub yes: bool,
}

#[derive(Debug, Subcommand)]
pub enum ProductCommand {
    /// Insert or update products from a JSON file
    ///
    /// The file is an array of {"productID", "name", "unitPrice", "stock"};
    /// unitPrice is an exact decimal (number or string, at most 2 places),
    /// stock a non-negative integer. Existing products are updated; nothing
    /// is written when any entry is invalid.
    Import(ImportArgs),
    /// Show the catalog with prices and stock
    List,
}

#[derive(Debug, Args)]
pub struct ImportArgs {
    /// Catalog file (JSON); '-' for stdin
    #[arg(short, long, value_name = "PATH")]
    pub file: PathBuf,
}

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct DevArgs {
    #[command(subcommand)]
    pub command: Option<DevCommand>,

    /// Where the stack keeps its state, Temporal's and PostgreSQL's together
    /// [default: ~/.local/share/orderflow]
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,

    /// Start a Temporal dev server on this port (127.0.0.1), rather than use
    /// the one that answers at --address or localhost:7233
    #[arg(long, value_name = "PORT")]
    pub port: Option<u16>,

    /// The Web UI's port of the server it starts [default: 8233 when free]
    #[arg(long, value_name = "PORT")]
    pub ui_port: Option<u16>,

    /// Delete the kept state (orders in Temporal and in PostgreSQL) first
    #[arg(long)]
    pub fresh: bool,

    /// Encrypt every payload: with --encryption-key-file's keys, else a key
    /// generated into the data directory (mode 0600); the Web UI decodes
    /// through a codec server this command runs on 127.0.0.1
    #[arg(long)]
    pub encrypt: bool,

    /// Serve the order API and page (`orderflow serve`) here
    /// [default: 127.0.0.1:8080, or a free loopback port when it is taken]
    #[arg(long, value_name = "HOST:PORT")]
    pub listen: Option<std::net::SocketAddr>,
}

#[derive(Debug, Subcommand)]
pub enum DevCommand {
    /// Print the running stack's `export` lines again (`-o json`: its settings)
    ///
    /// For another terminal, or after the first ones scrolled away:
    /// `eval "$(orderflow dev env)"`. Exit 3 when no `orderflow dev` runs
    /// from the data directory.
    Env(DevEnvArgs),
}

#[derive(Debug, Args)]
pub struct DevEnvArgs {
    /// The data directory of the stack [default: ~/.local/share/orderflow]
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct CodecServerArgs {
    /// Address to listen on
    #[arg(
        long,
        env = "ORDERFLOW_CODEC_LISTEN",
        value_name = "HOST:PORT",
        default_value = "127.0.0.1:8081"
    )]
    pub listen: std::net::SocketAddr,

    /// An origin a browser may call from (the Web UI's, e.g.
    /// http://localhost:8233); repeat for several, `*` for any
    #[arg(long, value_name = "ORIGIN", default_value = "http://localhost:8233")]
    pub allow_origin: Vec<String>,

    /// Require `Authorization: Bearer <token>` with the token in this file
    /// (mode 0600); needed to listen on an address other machines reach
    #[arg(long, env = "ORDERFLOW_CODEC_AUTH_TOKEN_FILE", value_name = "PATH")]
    pub auth_token_file: Option<PathBuf>,

    /// A host name requests may be addressed to (their `Host` header),
    /// besides localhost, loopback addresses and --listen's; repeat for
    /// several. Others are refused, so a web page cannot reach the server
    /// through a name of its own that points here
    #[arg(long, value_name = "HOST")]
    pub allow_host: Vec<String>,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on; one other machines reach needs --api-token-file
    /// or --no-auth
    #[arg(
        long,
        env = "ORDERFLOW_LISTEN",
        value_name = "HOST:PORT",
        default_value = "127.0.0.1:8080"
    )]
    pub listen: std::net::SocketAddr,

    /// Require `Authorization: Bearer <token>` on /api with one of the
    /// tokens in this file, one a line (mode 0600); the page asks for one
    #[arg(long, env = "ORDERFLOW_API_TOKEN_FILE", value_name = "PATH")]
    pub api_token_file: Option<PathBuf>,

    /// Listen beyond loopback without a token (behind a proxy that
    /// authenticates); requests must still be addressed to a loopback name,
    /// the listening address or an --allow-host
    #[arg(long, conflicts_with = "api_token_file")]
    pub no_auth: bool,

    /// The largest request body accepted (e.g. 1MiB, 256KiB, 65536)
    #[arg(long, value_name = "SIZE", default_value = "1MiB", value_parser = parse_size)]
    pub max_body: usize,

    /// Time a request may take to be answered, its body included (not the
    /// events stream, which lasts until its order ends)
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = parse_duration)]
    pub request_timeout: Duration,

    /// Time a client has to send a request's headers: a slow or silent
    /// client does not hold a connection open
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = parse_duration)]
    pub header_timeout: Duration,

    /// At most this many connections at once; more wait to be accepted
    #[arg(long, value_name = "N", default_value_t = 1024, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub max_connections: u32,

    /// An origin a browser may call the API from (CORS), e.g.
    /// https://shop.example; repeat for several, `*` for any [default: none]
    #[arg(long, value_name = "ORIGIN")]
    pub allow_origin: Vec<String>,

    /// A host name requests may be addressed to without a token (their
    /// `Host` header), besides localhost, loopback addresses and --listen's;
    /// repeat for several
    #[arg(long, value_name = "HOST")]
    pub allow_host: Vec<String>,

    /// Serve /metrics (Prometheus: requests by route and status, latency)
    /// on this address (off by default)
    #[arg(
        long,
        env = "ORDERFLOW_SERVE_METRICS_ADDRESS",
        value_name = "HOST:PORT"
    )]
    pub metrics_address: Option<std::net::SocketAddr>,

    /// Print the OpenAPI document and exit
    #[arg(long)]
    pub openapi: bool,
}

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Leave the stack running after the demo
    #[arg(long)]
    pub keep: bool,

    /// Encrypt every payload: with --encryption-key-file's keys, else a
    /// throwaway key; the Web UI decodes through a codec server this
    /// command runs on 127.0.0.1
    #[arg(long)]
    pub encrypt: bool,

    /// Serve the order API and page (`orderflow serve`) here
    /// [default: 127.0.0.1:8080, or a free loopback port when it is taken]
    #[arg(long, value_name = "HOST:PORT")]
    pub listen: Option<std::net::SocketAddr>,
}

#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Orders per throughput run (N), split over the rounds
    #[arg(long, value_name = "N", default_value_t = 4000, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub orders: u32,

    /// Orders in flight during the throughput runs (C)
    #[arg(long, value_name = "N", default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub concurrency: u32,

    /// Alternate baseline and orderflow over this many rounds (N/rounds each
    /// time), swapping which goes first, so drift in the machine's or the
    /// server's speed hits both alike
    #[arg(long, value_name = "N", default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..=100))]
    pub rounds: u32,

    /// Sequential orders for single-order latency (R)
    #[arg(long, value_name = "N", default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub single: u32,

    /// Orders started at once for the memory measurement (M)
    #[arg(long, value_name = "N", default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub in_flight: u32,

    /// Separate worker processes on the real path (W)
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=32))]
    pub workers: u32,

    /// Orders for the one-product run (H), on a stock of H/2; 0 skips it
    #[arg(long, value_name = "N", default_value_t = 2000, value_parser = clap::value_parser!(u32).range(0..=1_000_000))]
    pub hot: u32,

    /// Also fill the orders table to this many rows and time `order list`
    /// (with each filter, and a deep page), `order status` and `audit --all
    /// --database-only`, each as a whole process; 0 skips it
    #[arg(long, default_value_t = 0, value_name = "N",
          value_parser = clap::value_parser!(u32).range(0..=50_000_000))]
    pub big_tables: u32,

    /// Start the in-process run's workflows without eager start too
    #[arg(long)]
    pub no_eager: bool,

    /// Orders per round and way for the API run: started through `POST
    /// /api/orders` of an `orderflow serve` process, and by this process's
    /// client, alternating (0: no API run)
    #[arg(long, value_name = "N", default_value_t = 500, value_parser = clap::value_parser!(u32).range(0..=100_000))]
    pub api_orders: u32,

    /// Events streams one `serve` process holds open at once in the API
    /// run, for its memory and CPU (at most the orders it started:
    /// --api-orders × --rounds; 0: none)
    #[arg(long, value_name = "N", default_value_t = 1000, value_parser = clap::value_parser!(u32).range(0..=100_000))]
    pub streams: u32,

    /// Record the worker's metrics as `worker --metrics-address` does (to
    /// measure what they cost)
    #[arg(long)]
    pub metrics: bool,

    /// Encrypt every payload, as with --encryption-key-file (a throwaway key
    /// unless one is given), to measure what encryption costs
    #[arg(long)]
    pub encrypt: bool,

    /// Open loop on the real path: start orders at this steady rate for
    /// --rate-duration, whether or not earlier ones have ended, and report
    /// latency start -> COMPLETED. Orders a second (40, 40/s) or a share of
    /// the maximum the throughput run measured (80%); a list for a curve:
    /// 25%,50%,80%,100%
    #[arg(long, value_name = "R", value_delimiter = ',', value_parser = parse_rate_spec)]
    pub rate: Vec<RateSpec>,

    /// How long each --rate starts orders
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = parse_duration)]
    pub rate_duration: Duration,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Shell {
    Bash,
    Zsh,
    Fish,
    Elvish,
    Powershell,
}

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell to complete for
    #[arg(value_enum)]
    pub shell: Shell,
}

#[derive(Debug, Args)]
pub struct ManArgs {
    /// Write every page (orderflow.1, orderflow-order-create.1, …) into DIR
    /// instead of printing orderflow.1
    #[arg(long, value_name = "DIR")]
    pub out_dir: Option<PathBuf>,
}

/// Parses durations like `30s`, `5m`, `1h 30m` (humantime).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text).map_err(|e| format!("{e}; use e.g. 30s, 5m, 1h"))
}

/// Parses sizes like `1MiB`, `256KiB`, `65536` (bytes).
fn parse_size(text: &str) -> Result<usize, String> {
    let size: bytesize::ByteSize = text
        .trim()
        .parse()
        .map_err(|e| format!("{e}; use e.g. 1MiB, 256KiB or a number of bytes"))?;
    match usize::try_from(size.as_u64()) {
        Ok(n) if n > 0 => Ok(n),
        _ => Err("must be more than 0 bytes".into()),
    }
}

fn parse_order_id(text: &str) -> Result<OrderId, String> {
    OrderId::parse(text).map_err(|e| e.to_string())
}

/// A secret, kept out of `Debug` output and wiped when dropped.
fn parse_secret(text: &str) -> Result<secrecy::SecretString, String> {
    if text.is_empty() {
        return Err("must not be empty".into());
    }
    Ok(secrecy::SecretString::from(text))
}

fn parse_ratio(text: &str) -> Result<f32, String> {
    match text.parse::<f32>() {
        Ok(r) if r > 0.0 && r <= 1.0 => Ok(r),
        _ => Err("must be a number above 0 and at most 1, e.g. 0.5".into()),
    }
}

/// A value parser whose error quotes at most 100 characters of the value
/// (clap's own quotes all of it: a pasted 300-character ID came back whole).
fn clipped<T: Clone + Send + Sync + 'static>(parse: fn(&str) -> Result<T, String>) -> Clipped<T> {
    Clipped(parse)
}

#[derive(Clone)]
struct Clipped<T>(fn(&str) -> Result<T, String>);

impl<T: Clone + Send + Sync + 'static> clap::builder::TypedValueParser for Clipped<T> {
    type Value = T;

    fn parse_ref(
        &self,
        cmd: &clap::Command,
        arg: Option<&clap::Arg>,
        value: &std::ffi::OsStr,
    ) -> Result<T, clap::Error> {
        let text = value.to_string_lossy();
        (self.0)(&text).map_err(|e| {
            let arg = arg.map_or_else(|| "the value".to_owned(), |a| format!("'{a}'"));
            clap::Error::raw(
                clap::error::ErrorKind::ValueValidation,
                format!(
                    "invalid value {} for {arg}: {e}\n",
                    crate::domain::quote(&text)
                ),
            )
            .with_cmd(cmd)
        })
    }
}

fn parse_workflow_id(text: &str) -> Result<WorkflowId, String> {
    WorkflowId::parse(text).map_err(|e| e.to_string())
}

fn parse_reason(text: &str) -> Result<CancelReason, String> {
    CancelReason::parse(text).map_err(|e| e.to_string())
}

fn parse_customer_id(text: &str) -> Result<CustomerId, String> {
    CustomerId::parse(text).map_err(|e| e.to_string())
}

/// `--status` of `order list` and `order watch`: a status, or `open`.
fn status_set_parser() -> impl clap::builder::TypedValueParser<Value = StatusSet> {
    use clap::builder::TypedValueParser as _;
    let names = OrderStatus::ALL
        .iter()
        .map(|s| s.as_str())
        .chain(std::iter::once("open"));
    clap::builder::PossibleValuesParser::new(names).map(|name| {
        if name == "open" {
            let open = OrderStatus::ALL
                .iter()
                .copied()
                .filter(|s| !s.is_terminal());
            return StatusSet(open.collect(), "open");
        }
        let status: OrderStatus = name.to_ascii_uppercase().parse().expect("a listed status");
        StatusSet(vec![status], status.as_str())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_tree_is_consistent() {
        Cli::command().debug_assert();
    }
}
