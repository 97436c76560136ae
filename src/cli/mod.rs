//! The command line: global options and one Args struct per subcommand.
//! Every flag that a script may want from the environment has an `env`.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

use secrecy::SecretString;

use crate::config::TemporalSettings;
use crate::domain::{CustomerId, OrderId, OrderStatus, WorkflowId};
use crate::output::{ColorChoice, OutputFormat};
use crate::telemetry::LogFormat;

const EXAMPLES: &str = "\
Examples:
  orderflow dev                                  # local Temporal + PostgreSQL + worker
  orderflow db migrate                           # apply the schema
  orderflow product import --file examples/catalog.json
  orderflow order create --file order.json --watch
  orderflow order status ORD-1001 -o json
  orderflow order cancel ORD-1001 --reason 'customer asked'

Exit codes: 0 ok, 1 error, 2 invalid input, 3 not found, 4 order failed,
5 order cancelled, 6 conflict, 7 timeout, 8 Temporal or database unreachable,
130 interrupted.";

/// Order processing on Temporal and PostgreSQL.
///
/// One binary runs the order worker, submits and follows orders, manages the
/// catalog and migrates the database. Data goes to stdout (`-o json` for
/// scripts); logs, progress and prompts go to stderr.
#[derive(Debug, Parser)]
#[command(name = "orderflow", version, after_help = EXAMPLES, propagate_version = true)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Args)]
pub struct GlobalArgs {
    /// Temporal frontend address, host:port [env: TEMPORAL_ADDRESS, or the
    /// seed's TEMPORAL_HOST_PORT; default: the profile's, else localhost:7233]
    #[arg(
        long,
        global = true,
        value_name = "HOST:PORT",
        help_heading = "Temporal"
    )]
    pub address: Option<String>,

    /// Temporal namespace [env: TEMPORAL_NAMESPACE; default: the profile's, else default]
    #[arg(long, global = true, help_heading = "Temporal")]
    pub namespace: Option<String>,

    /// Task queue the worker polls and orders are sent to
    #[arg(
        long,
        global = true,
        env = "ORDERFLOW_TASK_QUEUE",
        default_value = "orderflow",
        help_heading = "Temporal"
    )]
    pub task_queue: String,

    /// API key for Temporal Cloud; turns TLS on [env: TEMPORAL_API_KEY]
    #[arg(long, global = true, value_name = "KEY", help_heading = "Temporal")]
    pub api_key: Option<String>,

    /// Connect to Temporal over TLS [env: TEMPORAL_TLS]
    #[arg(long, global = true, help_heading = "Temporal")]
    pub tls: bool,

    /// Client certificate for mTLS [env: TEMPORAL_TLS_CLIENT_CERT_PATH]
    #[arg(long, global = true, value_name = "PATH", help_heading = "Temporal")]
    pub tls_cert_path: Option<PathBuf>,

    /// Client private key for mTLS [env: TEMPORAL_TLS_CLIENT_KEY_PATH]
    #[arg(long, global = true, value_name = "PATH", help_heading = "Temporal")]
    pub tls_key_path: Option<PathBuf>,

    /// CA certificate to verify the server with [env: TEMPORAL_TLS_SERVER_CA_CERT_PATH]
    #[arg(long, global = true, value_name = "PATH", help_heading = "Temporal")]
    pub tls_ca_path: Option<PathBuf>,

    /// Server name to verify the certificate against [env: TEMPORAL_TLS_SERVER_NAME]
    #[arg(long, global = true, value_name = "NAME", help_heading = "Temporal")]
    pub tls_server_name: Option<String>,

    /// Profile to read from the Temporal CLI's config file [env: TEMPORAL_PROFILE]
    #[arg(long, global = true, value_name = "NAME", help_heading = "Temporal")]
    pub profile: Option<String>,

    /// The Temporal CLI's config file (temporal.toml) [env: TEMPORAL_CONFIG_FILE]
    #[arg(long, global = true, value_name = "PATH", help_heading = "Temporal")]
    pub config_file: Option<PathBuf>,

    /// Web UI base for order links [default: derived from the address, port 8233]
    #[arg(
        long,
        global = true,
        env = "ORDERFLOW_UI_URL",
        value_name = "URL",
        help_heading = "Temporal"
    )]
    pub ui_url: Option<String>,

    /// PostgreSQL URL, postgres://user:password@host:port/db [env: DATABASE_URL, else
    /// built from the seed's POSTGRES_HOST, POSTGRES_PORT, POSTGRES_USER,
    /// POSTGRES_PASSWORD and POSTGRES_DB]
    #[arg(long, global = true, value_name = "URL", help_heading = "Database")]
    pub database_url: Option<String>,

    /// How long to wait for Temporal or PostgreSQL to answer before giving up (exit 8)
    #[arg(long, global = true, env = "ORDERFLOW_CONNECT_TIMEOUT", default_value = "5s",
          value_parser = parse_duration, value_name = "DURATION")]
    pub connect_timeout: Duration,

    /// Output format for data on stdout
    #[arg(
        short,
        long,
        global = true,
        env = "ORDERFLOW_OUTPUT",
        value_enum,
        default_value_t,
        help_heading = "Output"
    )]
    pub output: OutputFormat,

    /// When to use colour (NO_COLOR is honoured under auto)
    #[arg(
        long,
        global = true,
        value_enum,
        default_value_t,
        value_name = "WHEN",
        help_heading = "Output"
    )]
    pub color: ColorChoice,

    /// More log detail on stderr (-v, -vv, -vvv); RUST_LOG overrides
    #[arg(short, long, global = true, action = clap::ArgAction::Count, conflicts_with = "quiet",
          help_heading = "Output")]
    pub verbose: u8,

    /// Only errors on stderr: no progress, notes or warnings
    #[arg(short, long, global = true, help_heading = "Output")]
    pub quiet: bool,

    /// Log line format on stderr
    #[arg(
        long,
        global = true,
        value_enum,
        default_value_t,
        value_name = "FORMAT",
        help_heading = "Output"
    )]
    pub log_format: LogFormat,
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
    Bench(BenchArgs),
    /// Check the setup end to end and say how to fix what fails
    #[command(after_help = "\
Checks the configuration in effect (without secrets), that Temporal answers
(its version), the namespace, the orders' search attributes, a worker polling
the task queue, that PostgreSQL answers (its version), pending migrations and
the catalog.

Examples:
  orderflow doctor
  orderflow doctor -o json | jq '.checks[] | select(.ok | not)'

Exit codes: 0 every check passed, 8 Temporal or PostgreSQL is unreachable,
1 another check failed.")]
    Doctor,
    /// Print shell completions
    Completions(CompletionsArgs),
    /// Print or write man pages
    Man(ManArgs),
}

#[derive(Debug, Clone, Args)]
pub struct WorkerArgs {
    /// Attempts per step before a transient failure fails the order
    #[arg(long, env = "ORDERFLOW_RETRY_MAX_ATTEMPTS", default_value_t = 3,
          value_parser = clap::value_parser!(u32).range(1..=100), help_heading = "Retry policy")]
    pub retry_max_attempts: u32,

    /// Wait before the first retry
    #[arg(long, env = "ORDERFLOW_RETRY_INITIAL_INTERVAL", default_value = "1s",
          value_parser = parse_duration, value_name = "DURATION", help_heading = "Retry policy")]
    pub retry_initial_interval: Duration,

    /// Factor by which each wait grows
    #[arg(
        long,
        env = "ORDERFLOW_RETRY_BACKOFF",
        default_value_t = 2.0,
        value_name = "FACTOR",
        help_heading = "Retry policy"
    )]
    pub retry_backoff: f64,

    /// Longest wait between retries
    #[arg(long, env = "ORDERFLOW_RETRY_MAX_INTERVAL", default_value = "30s",
          value_parser = parse_duration, value_name = "DURATION", help_heading = "Retry policy")]
    pub retry_max_interval: Duration,

    /// How long a step waits for PostgreSQL to come back before the order
    /// fails INTERNAL. Such waits are not attempts: an outage never uses up
    /// the retry budget or fails a payment
    #[arg(long, env = "ORDERFLOW_OUTAGE_TIMEOUT", default_value = "24h",
          value_parser = parse_duration, value_name = "DURATION", help_heading = "Retry policy")]
    pub outage_timeout: Duration,

    /// Workflow tasks processed at once
    #[arg(long, env = "ORDERFLOW_MAX_CONCURRENT_WORKFLOW_TASKS", default_value_t = 200,
          value_parser = clap::value_parser!(u32).range(1..), help_heading = "Tuning")]
    pub max_concurrent_workflow_tasks: u32,

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
    #[arg(long, env = "ORDERFLOW_MAX_CONCURRENT_ACTIVITIES", default_value_t = 200,
          value_parser = clap::value_parser!(u32).range(1..), help_heading = "Tuning")]
    pub max_concurrent_activities: u32,

    /// Largest PostgreSQL connection pool the worker opens
    #[arg(long, env = "ORDERFLOW_DB_MAX_CONNECTIONS", default_value_t = 16,
          value_parser = clap::value_parser!(u32).range(1..=1000), help_heading = "Tuning")]
    pub db_max_connections: u32,

    /// POST each customer notification as JSON here (with an Idempotency-Key
    /// header); without it, notifications are recorded and logged
    #[arg(long, env = "ORDERFLOW_NOTIFY_WEBHOOK", value_name = "URL")]
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

    /// Time limit of one webhook delivery; a delivery that takes longer
    /// counts as a failed attempt
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
    Create(CreateArgs),
    /// Show an order: status, step, attempts, failure, items and amounts
    Status(StatusArgs),
    /// Follow orders until each reaches COMPLETED, CANCELLED or FAILED
    Watch(WatchArgs),
    /// Cancel an order and wait for the outcome
    Cancel(CancelArgs),
    /// List orders, newest first
    List(ListArgs),
}

#[derive(Debug, Args)]
#[command(after_help = "\
The file holds one order object or an array of them; '-' reads stdin.
Every order is checked before any is started: one bad order submits none.
Submitting an ID that exists never creates a second order.

Examples:
  orderflow order create --file order.json
  cat orders.json | orderflow order create --file - -o json
  orderflow order create --file order.json --id ORD-42 --watch")]
pub struct CreateArgs {
    /// Order file (JSON); repeat for several; '-' for stdin
    #[arg(short, long = "file", value_name = "PATH", required = true)]
    pub files: Vec<PathBuf>,

    /// Order ID to use (one order only); overrides the file's "id"
    #[arg(long, value_name = "ID", value_parser = parse_order_id)]
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
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// The order ID (= workflow ID); any workflow ID Temporal holds
    #[arg(value_parser = parse_workflow_id)]
    pub id: WorkflowId,
}

#[derive(Debug, Args)]
#[command(after_help = "\
Exit codes: 0 every order COMPLETED, 4 one FAILED, 5 one CANCELLED,
3 not found, 7 --timeout elapsed, 130 interrupted (the orders go on).")]
pub struct WatchArgs {
    /// Order IDs to follow
    #[arg(required = true, value_parser = parse_workflow_id)]
    pub ids: Vec<WorkflowId>,

    /// Give up after this long (exit 7), e.g. 30s, 5m
    #[arg(long, value_parser = parse_duration, value_name = "DURATION")]
    pub timeout: Option<Duration>,
}

#[derive(Debug, Args)]
pub struct CancelArgs {
    /// The order ID to cancel; any workflow ID Temporal holds
    #[arg(value_parser = parse_workflow_id)]
    pub id: WorkflowId,

    /// Why the order is cancelled (recorded with the order)
    #[arg(long, value_name = "TEXT", default_value = "cancelled by operator")]
    pub reason: String,

    /// Send the cancellation and return without waiting for the outcome
    #[arg(long)]
    pub no_wait: bool,

    /// Give up waiting after this long (exit 7)
    #[arg(long, conflicts_with = "no_wait", value_parser = parse_duration, value_name = "DURATION")]
    pub timeout: Option<Duration>,
}

#[derive(Debug, Args)]
pub struct ListArgs {
    /// Only orders in this status
    #[arg(long, value_parser = parse_status, value_name = "STATUS")]
    pub status: Option<OrderStatus>,

    /// Only this customer's orders
    #[arg(long, value_parser = parse_customer_id, value_name = "ID")]
    pub customer: Option<CustomerId>,

    /// At most this many orders
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub limit: u32,

    /// The next page: only the orders listed after this one (the last
    /// order ID of the previous page), with the same filters
    #[arg(long, value_parser = parse_order_id, value_name = "ORDER_ID", conflicts_with = "query")]
    pub after: Option<OrderId>,

    /// List from Temporal's visibility instead of the database, with a
    /// visibility query on the orders' search attributes (OrderStatus,
    /// CustomerId, FailureCode, OrderTotal), e.g. 'OrderStatus="FAILED"'
    #[arg(long, value_name = "QUERY", conflicts_with_all = ["status", "customer"])]
    pub query: Option<String>,
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
    #[command(after_help = "\
The file is an array of {\"productID\", \"name\", \"unitPrice\", \"stock\"};
unitPrice is an exact decimal (number or string, at most 2 places), stock a
non-negative integer. Existing products are updated; nothing is written when
any entry is invalid.

Example:
  orderflow product import --file examples/catalog.json")]
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
pub struct DevArgs {
    /// Where the dev server keeps its state [default: the user's data directory]
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Leave the stack running after the demo
    #[arg(long)]
    pub keep: bool,
}

#[derive(Debug, Args)]
#[command(after_help = "\
Starts what is not reachable (an in-memory Temporal dev server, a throwaway
PostgreSQL) and measures, on the real path first: W `orderflow worker`
processes started from this binary with their default tuning, orders started
by a client in this process without eager start, as `order create` does:
  1. throughput: N orders at concurrency C, real workflow vs no-op baseline,
     alternating in rounds, the first of each round swapping (B O, O B, …);
     orders/s is the median over the rounds of each round's steady part,
     without its start and the drain at its end, when fewer than C orders
     are left in flight; the range is the slowest and fastest round;
  2. one product: H orders for one product with a stock of H/2; exactly H/2
     must complete (else exit 1), the rest fail OUT_OF_STOCK;
  3. single-order latency, start -> COMPLETED, over R sequential orders;
  4. a worker process's peak memory with M orders in flight at once.
Then 1. again with the worker in this process and eager start (the ceiling
of a client that hosts its own worker). Last, with --big-tables N, the
reading commands (order list, order status) with N orders in the table.
Results go to stdout (a table, or -o json); see DOCS.md for recorded runs.")]
pub struct BenchArgs {
    /// Orders per throughput run (N), split over the rounds
    #[arg(long, default_value_t = 4000, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub orders: u32,

    /// Orders in flight during the throughput runs (C)
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub concurrency: u32,

    /// Alternate baseline and orderflow over this many rounds (N/rounds each
    /// time), swapping which goes first, so drift in the machine's or the
    /// server's speed hits both alike
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..=100))]
    pub rounds: u32,

    /// Sequential orders for single-order latency (R)
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub single: u32,

    /// Orders started at once for the memory measurement (M)
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub in_flight: u32,

    /// Separate worker processes on the real path (W)
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=32))]
    pub workers: u32,

    /// Orders for the one-product run (H), on a stock of H/2; 0 skips it
    #[arg(long, default_value_t = 2000, value_parser = clap::value_parser!(u32).range(0..=1_000_000))]
    pub hot: u32,

    /// Also fill the orders table to this many rows and time `order list`
    /// (with each filter, and a deep page) and `order status`, each as a
    /// whole process; 0 skips it
    #[arg(long, default_value_t = 0, value_name = "N",
          value_parser = clap::value_parser!(u32).range(0..=50_000_000))]
    pub big_tables: u32,

    /// Start the in-process run's workflows without eager start too
    #[arg(long)]
    pub no_eager: bool,

    /// Record the worker's metrics as `worker --metrics-address` does (to
    /// measure what they cost)
    #[arg(long)]
    pub metrics: bool,
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
#[command(after_help = "\
Examples:
  orderflow completions bash > ~/.local/share/bash-completion/completions/orderflow
  orderflow completions zsh > ~/.zfunc/_orderflow")]
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

fn parse_workflow_id(text: &str) -> Result<WorkflowId, String> {
    WorkflowId::parse(text).map_err(|e| e.to_string())
}

fn parse_customer_id(text: &str) -> Result<CustomerId, String> {
    CustomerId::parse(text).map_err(|e| e.to_string())
}

fn parse_status(text: &str) -> Result<OrderStatus, String> {
    text.to_ascii_uppercase()
        .parse()
        .map_err(|e: crate::domain::RuleError| e.to_string())
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
