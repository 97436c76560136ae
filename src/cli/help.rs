//! What `--help` and the man pages say beyond the flags: each command's
//! examples and exit codes, and which of the global options it shows.
//! One table serves both, so they cannot drift apart.

use clap::{Arg, Command};

use crate::exit::Exit;

/// The headings of the global options.
pub const TEMPORAL: &str = "Temporal";
pub const TLS: &str = "Temporal TLS and API key";
pub const DATABASE: &str = "Database";
pub const OUTPUT: &str = "Output";

/// The global options under each heading, by argument ID.
const GROUPS: [(&str, &[&str]); 4] = [
    (
        TEMPORAL,
        &[
            "address",
            "namespace",
            "task_queue",
            "profile",
            "config_file",
            "ui_url",
            "connect_timeout",
            "encryption_key_file",
        ],
    ),
    (
        TLS,
        &[
            "api_key",
            "tls",
            "tls_cert_path",
            "tls_key_path",
            "tls_ca_path",
            "tls_server_name",
        ],
    ),
    (DATABASE, &["database_url"]),
    (
        OUTPUT,
        &["output", "color", "verbose", "quiet", "log_format"],
    ),
];

/// Environment variables read besides the options' own.
const MORE_ENVIRONMENT: [(&str, &str); 4] = [
    (
        "TEMPORAL_HOST_PORT",
        "the Temporal address, when TEMPORAL_ADDRESS is unset",
    ),
    (
        "POSTGRES_HOST, POSTGRES_PORT, POSTGRES_USER, POSTGRES_PASSWORD, POSTGRES_DB",
        "the parts of the PostgreSQL URL, when DATABASE_URL is unset",
    ),
    ("NO_COLOR", "no colour under --color auto"),
    ("RUST_LOG", "log filter, e.g. orderflow=debug; overrides -v"),
];

/// One command's page: its path ("" for orderflow itself, "order create").
pub struct Page {
    pub path: &'static str,
    /// The global option headings it shows; every one for `orderflow` and
    /// `orderflow help options`.
    pub shows: &'static [&'static str],
    pub examples: &'static [(&'static str, &'static str)],
    pub exit_codes: &'static [(Exit, &'static str)],
}

const ALL: &[&str] = &[TEMPORAL, TLS, DATABASE, OUTPUT];
const CLIENT: &[&str] = &[TEMPORAL, TLS, OUTPUT];
const DB: &[&str] = &[DATABASE, OUTPUT];
const LOCAL: &[&str] = &[TEMPORAL, DATABASE, OUTPUT];

const UNREACHABLE: (Exit, &str) = (
    Exit::Unavailable,
    "Temporal or PostgreSQL is unreachable or refused the credentials",
);
const TEMPORAL_UNREACHABLE: (Exit, &str) = (
    Exit::Unavailable,
    "Temporal is unreachable or refused the credentials",
);
const DB_UNREACHABLE: (Exit, &str) = (Exit::Unavailable, "PostgreSQL is unreachable");
const USAGE: (Exit, &str) = (Exit::Usage, "invalid flags or input");
const DB_USAGE: (Exit, &str) = (
    Exit::Usage,
    "invalid flags or input, or a database without orderflow's schema (run `orderflow db migrate`)",
);
const ERROR: (Exit, &str) = (Exit::Failure, "another error (the message says which)");
const INTERRUPTED: (Exit, &str) = (Exit::Interrupted, "interrupted (Ctrl-C)");
const ORDERS_GO_ON: (Exit, &str) = (Exit::Interrupted, "interrupted (Ctrl-C); the orders go on");

pub const PAGES: &[Page] = &[
    Page {
        path: "",
        shows: ALL,
        examples: &[
            ("orderflow dev", "local Temporal + PostgreSQL + worker"),
            ("orderflow db migrate", "apply the schema"),
            ("orderflow product import --file examples/catalog.json", ""),
            ("orderflow order create --file order.json --watch", ""),
            ("orderflow order status ORD-1001 -o json", ""),
            (
                "orderflow order cancel ORD-1001 --reason 'customer asked'",
                "",
            ),
            ("orderflow help options", "the options every command takes"),
        ],
        exit_codes: &[
            (Exit::Success, "success"),
            ERROR,
            USAGE,
            (Exit::NotFound, "order not found"),
            (Exit::OrderFailed, "an order ended FAILED"),
            (Exit::OrderCancelled, "an order ended CANCELLED"),
            (
                Exit::Conflict,
                "conflict: an order that cannot be cancelled, or an ID reused with other content",
            ),
            (Exit::Timeout, "--timeout elapsed"),
            UNREACHABLE,
            (
                Exit::ProblemsFound,
                "audit found problems, or a history does not replay",
            ),
            (Exit::Interrupted, "interrupted (Ctrl-C)"),
        ],
    },
    Page {
        path: "options",
        shows: ALL,
        examples: &[
            (
                "orderflow --address temporal.example.com:7233 --namespace shop order list",
                "",
            ),
            (
                "TEMPORAL_API_KEY=… orderflow --address eu-west-1.aws.api.temporal.io:7233 --namespace shop.a1b2c doctor",
                "Temporal Cloud",
            ),
            (
                "orderflow --profile prod order status ORD-1001",
                "a temporal.toml profile",
            ),
            ("orderflow -o json order list | jq '.[].orderId'", ""),
        ],
        exit_codes: &[(Exit::Success, "the page was shown")],
    },
    Page {
        path: "worker",
        shows: ALL,
        examples: &[
            ("orderflow worker", "until Ctrl-C or SIGTERM, then drain"),
            (
                "orderflow worker --metrics-address 0.0.0.0:9464",
                "with /metrics, /healthz, /readyz",
            ),
            (
                "orderflow worker --notify-webhook https://hooks.example.com/orders",
                "",
            ),
        ],
        exit_codes: &[
            (Exit::Success, "stopped on SIGINT/SIGTERM after draining"),
            ERROR,
            DB_USAGE,
            UNREACHABLE,
        ],
    },
    Page {
        path: "order",
        shows: CLIENT,
        examples: &[
            ("orderflow order create --file order.json --watch", ""),
            ("orderflow order list --status failed", ""),
        ],
        exit_codes: &[
            (Exit::Success, "success"),
            ERROR,
            USAGE,
            (Exit::NotFound, "order not found"),
            (Exit::OrderFailed, "an order ended FAILED"),
            (Exit::OrderCancelled, "an order ended CANCELLED"),
            (Exit::Conflict, "conflict"),
            (Exit::Timeout, "--timeout elapsed"),
            UNREACHABLE,
            ORDERS_GO_ON,
        ],
    },
    Page {
        path: "order create",
        shows: CLIENT,
        examples: &[
            ("orderflow order create --file order.json", ""),
            (
                "cat orders.json | orderflow order create --file - -o json",
                "",
            ),
            (
                "orderflow order create --file order.json --id ORD-42 --watch",
                "",
            ),
            (
                "orderflow order create --file order.json --dry-run",
                "only check it",
            ),
            (
                "orderflow order create --file big.json --rate 40/s",
                "a large file, at a pace the setup carries",
            ),
        ],
        exit_codes: &[
            (
                Exit::Success,
                "every order submitted (with --watch: every order COMPLETED)",
            ),
            ERROR,
            (
                Exit::Usage,
                "invalid flags, or an invalid order file: every problem is listed, nothing is submitted",
            ),
            (Exit::OrderFailed, "with --watch: an order ended FAILED"),
            (
                Exit::OrderCancelled,
                "with --watch: an order ended CANCELLED",
            ),
            (Exit::Conflict, "an order ID that exists with other content"),
            (Exit::Timeout, "with --watch: --timeout elapsed"),
            TEMPORAL_UNREACHABLE,
            ORDERS_GO_ON,
        ],
    },
    Page {
        path: "order status",
        // --timeline reads the database.
        shows: ALL,
        examples: &[
            ("orderflow order status ORD-1001", ""),
            (
                "orderflow order status ORD-1001 -o json | jq -r .status",
                "",
            ),
            (
                "orderflow order status ORD-1001 --timeline",
                "why it was slow, and what it did to the money",
            ),
        ],
        exit_codes: &[
            (Exit::Success, "shown, whatever the order's status"),
            ERROR,
            DB_USAGE,
            (Exit::NotFound, "no such order"),
            UNREACHABLE,
            INTERRUPTED,
        ],
    },
    Page {
        path: "order watch",
        // --status and --customer read the database.
        shows: ALL,
        examples: &[
            ("orderflow order watch ORD-1001 ORD-1002", ""),
            (
                "orderflow order watch ORD-1001 --timeout 5m -o jsonl",
                "every status it goes through",
            ),
            (
                "orderflow order watch --file orders.json",
                "the orders of a file",
            ),
            (
                "orderflow order watch --status open --customer CUST-001",
                "as order list selects",
            ),
            (
                "cat ids.txt | orderflow order watch -",
                "IDs on stdin, one a line",
            ),
        ],
        exit_codes: &[
            (Exit::Success, "every order COMPLETED"),
            ERROR,
            USAGE,
            (Exit::NotFound, "an order does not exist"),
            (Exit::OrderFailed, "an order ended FAILED"),
            (
                Exit::OrderCancelled,
                "an order ended CANCELLED (and none FAILED)",
            ),
            (Exit::Timeout, "--timeout elapsed"),
            TEMPORAL_UNREACHABLE,
            ORDERS_GO_ON,
        ],
    },
    Page {
        path: "order cancel",
        // A selection reads the database.
        shows: ALL,
        examples: &[
            (
                "orderflow order cancel ORD-1001 --reason 'customer asked'",
                "",
            ),
            (
                "orderflow order cancel ORD-1001 --no-wait",
                "send it and return",
            ),
            (
                "orderflow order cancel --status open --customer CUST-001 --dry-run",
                "what a selection would cancel",
            ),
            (
                "orderflow order cancel --ids-file stuck.txt --yes --rate 20/s -o jsonl",
                "",
            ),
        ],
        exit_codes: &[
            (
                Exit::Success,
                "the order ended CANCELLED (with --no-wait: the request was sent); with a \
                 selection, every one of them",
            ),
            ERROR,
            (
                Exit::Usage,
                "invalid flags or input, or a selection not confirmed (--yes off a terminal)",
            ),
            (Exit::NotFound, "no such order"),
            (
                Exit::Conflict,
                "the order already COMPLETED or FAILED: nothing was changed",
            ),
            (Exit::Timeout, "--timeout elapsed"),
            UNREACHABLE,
            ORDERS_GO_ON,
        ],
    },
    Page {
        path: "order resubmit",
        shows: ALL,
        examples: &[
            ("orderflow order resubmit ORD-1001", ""),
            (
                "orderflow order resubmit --failure-code PAYMENT_UNAVAILABLE --created-after 6h --dry-run",
                "what a gateway outage failed",
            ),
            (
                "orderflow order resubmit --failure-code PAYMENT_UNAVAILABLE --yes --rate 20/s -o jsonl",
                "",
            ),
        ],
        exit_codes: &[
            (Exit::Success, "every order resubmitted (or it already was)"),
            ERROR,
            (
                Exit::Usage,
                "invalid flags or input, a database without orderflow's schema, or a selection not confirmed",
            ),
            (Exit::NotFound, "no such order"),
            (
                Exit::Conflict,
                "an order not FAILED, or whose products, prices or stock no longer allow it: not resubmitted",
            ),
            UNREACHABLE,
            (
                Exit::Interrupted,
                "interrupted (Ctrl-C); the orders started go on",
            ),
        ],
    },
    Page {
        path: "order list",
        shows: DB,
        examples: &[
            ("orderflow order list", "the newest 50"),
            (
                "orderflow order list --status failed --customer CUST-001",
                "",
            ),
            (
                "orderflow order list --limit 50 --after ORD-0950",
                "the next page",
            ),
            (
                "orderflow order list --query 'OrderStatus=\"FAILED\"'",
                "from Temporal's visibility",
            ),
        ],
        exit_codes: &[
            (Exit::Success, "listed (perhaps none)"),
            ERROR,
            DB_USAGE,
            UNREACHABLE,
            INTERRUPTED,
        ],
    },
    Page {
        path: "db",
        shows: DB,
        examples: &[("orderflow db migrate", ""), ("orderflow db status", "")],
        exit_codes: &[
            (Exit::Success, "success"),
            ERROR,
            USAGE,
            DB_UNREACHABLE,
            INTERRUPTED,
        ],
    },
    Page {
        path: "db migrate",
        shows: DB,
        examples: &[
            ("orderflow db migrate", ""),
            (
                "DATABASE_URL=postgres://orderflow@db:5432/orderflow orderflow db migrate",
                "",
            ),
        ],
        exit_codes: &[
            (Exit::Success, "up to date"),
            ERROR,
            USAGE,
            DB_UNREACHABLE,
            INTERRUPTED,
        ],
    },
    Page {
        path: "db status",
        shows: DB,
        examples: &[
            ("orderflow db status", ""),
            ("orderflow db status -o json", ""),
        ],
        exit_codes: &[
            (Exit::Success, "shown, pending migrations or not"),
            ERROR,
            USAGE,
            DB_UNREACHABLE,
            INTERRUPTED,
        ],
    },
    Page {
        path: "db reset",
        shows: DB,
        examples: &[
            ("orderflow db reset", "asks first"),
            ("orderflow db reset --yes", "in a script"),
        ],
        exit_codes: &[
            (Exit::Success, "reset"),
            ERROR,
            (
                Exit::Usage,
                "not confirmed: the question was declined, or no --yes when stdin is not a terminal; nothing was changed",
            ),
            DB_UNREACHABLE,
            INTERRUPTED,
        ],
    },
    Page {
        path: "product",
        shows: DB,
        examples: &[
            ("orderflow product import --file examples/catalog.json", ""),
            ("orderflow product list", ""),
        ],
        exit_codes: &[
            (Exit::Success, "success"),
            ERROR,
            DB_USAGE,
            DB_UNREACHABLE,
            INTERRUPTED,
        ],
    },
    Page {
        path: "product import",
        shows: DB,
        examples: &[
            ("orderflow product import --file examples/catalog.json", ""),
            ("cat catalog.json | orderflow product import --file -", ""),
        ],
        exit_codes: &[
            (Exit::Success, "every product inserted or updated"),
            ERROR,
            (
                Exit::Usage,
                "invalid flags, an invalid file (every problem is listed, nothing is written), or a database without orderflow's schema",
            ),
            DB_UNREACHABLE,
            INTERRUPTED,
        ],
    },
    Page {
        path: "product list",
        shows: DB,
        examples: &[
            ("orderflow product list", ""),
            (
                "orderflow product list -o json | jq '.[] | select(.stock == 0)'",
                "",
            ),
        ],
        exit_codes: &[
            (Exit::Success, "listed"),
            ERROR,
            DB_USAGE,
            DB_UNREACHABLE,
            INTERRUPTED,
        ],
    },
    Page {
        path: "dev",
        shows: LOCAL,
        examples: &[
            (
                "orderflow dev",
                "reuse or start Temporal; PostgreSQL kept in ~/.local/share/orderflow",
            ),
            (
                "orderflow dev --port 17233 --ui-port 18233",
                "its own server on these ports",
            ),
            (
                "orderflow dev --encrypt",
                "payloads encrypted with a key kept in the data directory; the Web UI decodes through a local codec server",
            ),
            (
                "orderflow dev --data-dir /tmp/stack-b",
                "a second stack beside the first",
            ),
            ("orderflow dev --fresh", "start with no orders"),
            (
                "orderflow dev env",
                "its exports again, for eval \"$(orderflow dev env)\"",
            ),
        ],
        exit_codes: &[
            (
                Exit::Success,
                "stopped with Ctrl-C; what it started is stopped",
            ),
            ERROR,
            (
                Exit::Usage,
                "invalid flags; another `orderflow dev` runs from the data directory; \
                 DATABASE_URL names another dev stack's PostgreSQL",
            ),
            (
                Exit::Unavailable,
                "the Temporal server or database it was told to use is unreachable, or \
                 one it started exited on its own",
            ),
        ],
    },
    Page {
        path: "dev env",
        shows: &[OUTPUT],
        examples: &[
            (
                "orderflow dev env",
                "for eval \"$(orderflow dev env)\" in another shell",
            ),
            (
                "orderflow dev env --data-dir /tmp/stack-b",
                "the second stack's",
            ),
            (
                "orderflow dev env -o json",
                "its settings, as `dev -o json` printed them",
            ),
        ],
        exit_codes: &[
            (Exit::Success, "printed"),
            (
                Exit::NotFound,
                "no `orderflow dev` runs from the data directory",
            ),
        ],
    },
    Page {
        path: "demo",
        shows: LOCAL,
        examples: &[
            ("orderflow demo", ""),
            ("orderflow demo --keep", "leave the stack up to look around"),
            (
                "orderflow demo -o json | jq '.orders[] | {sample, status}'",
                "",
            ),
        ],
        exit_codes: &[
            (Exit::Success, "every sample ended as expected"),
            (Exit::Failure, "a sample did not, or another error"),
            USAGE,
            (
                Exit::Unavailable,
                "the Temporal server or database it was told to use is unreachable",
            ),
            (Exit::Interrupted, "interrupted (Ctrl-C)"),
        ],
    },
    Page {
        path: "bench",
        shows: LOCAL,
        examples: &[
            ("orderflow bench", "the defaults of DOCS.md's recorded runs"),
            (
                "orderflow bench --orders 400 --rounds 2 --single 10 --in-flight 100 --hot 0",
                "a quick look",
            ),
            ("orderflow bench -o json > bench.json", ""),
            (
                "orderflow bench --rate 25%,50%,80%,100%",
                "latency at steady arrival rates",
            ),
        ],
        exit_codes: &[
            (Exit::Success, "measured"),
            (
                Exit::Failure,
                "a check failed (e.g. the one-product run oversold), or another error",
            ),
            USAGE,
            (
                Exit::Unavailable,
                "the Temporal server or database it was told to use is unreachable",
            ),
        ],
    },
    Page {
        path: "serve",
        shows: &[TEMPORAL, DATABASE, OUTPUT],
        examples: &[
            (
                "orderflow serve",
                "the API and the page on http://127.0.0.1:8080",
            ),
            (
                "orderflow serve --listen 0.0.0.0:8080 --api-token-file tokens.txt",
                "for other machines: each request needs `Authorization: Bearer <token>`",
            ),
            (
                "orderflow serve --allow-origin https://shop.example",
                "a storefront's page at that origin may call the API (CORS)",
            ),
            (
                "orderflow serve --openapi > openapi.json",
                "the API's OpenAPI 3.1 document",
            ),
        ],
        exit_codes: &[
            (
                Exit::Success,
                "stopped by SIGINT/SIGTERM, requests in flight finished",
            ),
            (
                Exit::Usage,
                "address in use, a non-loopback --listen without --api-token-file or --no-auth, unreadable token file",
            ),
            (
                Exit::Unavailable,
                "Temporal or PostgreSQL unreachable at start",
            ),
        ],
    },
    Page {
        path: "codec-server",
        shows: &[TEMPORAL, OUTPUT],
        examples: &[
            (
                "orderflow codec-server --encryption-key-file keys.txt",
                "on 127.0.0.1:8081, for the Web UI at http://localhost:8233",
            ),
            (
                "orderflow codec-server --listen 127.0.0.1:8081 --auth-token-file token.txt",
                "then: temporal workflow show -w ORD-1001 --codec-endpoint http://127.0.0.1:8081 --codec-auth 'Bearer <token>'",
            ),
        ],
        exit_codes: &[
            (Exit::Success, "stopped by SIGINT/SIGTERM"),
            (
                Exit::Usage,
                "no or invalid key file, unreadable token file, address in use",
            ),
        ],
    },
    Page {
        path: "doctor",
        shows: ALL,
        examples: &[
            ("orderflow doctor", ""),
            (
                "orderflow doctor -o json | jq '.checks[] | select(.ok | not)'",
                "",
            ),
        ],
        exit_codes: &[
            (Exit::Success, "every check passed"),
            (Exit::Failure, "another check failed"),
            USAGE,
            UNREACHABLE,
        ],
    },
    Page {
        path: "audit",
        shows: ALL,
        examples: &[
            ("orderflow audit", "the last 24 hours' orders"),
            ("orderflow audit --all -o jsonl > problems.jsonl", ""),
            (
                "orderflow audit --since 7d --database-only",
                "money and stock only, without Temporal",
            ),
        ],
        exit_codes: &[
            (Exit::Success, "every promise kept"),
            ERROR,
            DB_USAGE,
            UNREACHABLE,
            (Exit::ProblemsFound, "problems found (each one is listed)"),
            INTERRUPTED,
        ],
    },
    Page {
        path: "replay",
        shows: CLIENT,
        examples: &[
            ("orderflow replay", "the last 24 hours' orders"),
            ("orderflow replay --since 7d --sample 500", ""),
            ("orderflow replay --id ORD-1001 --id ORD-1002", ""),
            (
                "orderflow replay --dir tests/histories",
                "exported histories, no server needed",
            ),
        ],
        exit_codes: &[
            (Exit::Success, "every history replays"),
            ERROR,
            (
                Exit::Usage,
                "invalid flags, a file that is not a history, or a payload under a key the key file lacks",
            ),
            TEMPORAL_UNREACHABLE,
            (
                Exit::ProblemsFound,
                "a history does not replay (each one is listed)",
            ),
            INTERRUPTED,
        ],
    },
    Page {
        path: "completions",
        shows: &[],
        examples: &[
            (
                "orderflow completions bash > ~/.local/share/bash-completion/completions/orderflow",
                "",
            ),
            ("orderflow completions zsh > ~/.zfunc/_orderflow", ""),
            (
                "orderflow completions fish > ~/.config/fish/completions/orderflow.fish",
                "",
            ),
        ],
        exit_codes: &[(Exit::Success, "printed"), USAGE],
    },
    Page {
        path: "man",
        shows: &[],
        examples: &[
            ("orderflow man | man -l -", "read orderflow(1)"),
            (
                "orderflow man --out-dir ~/.local/share/man/man1",
                "every page",
            ),
        ],
        exit_codes: &[
            (Exit::Success, "printed or written"),
            (Exit::Failure, "a page could not be written"),
            USAGE,
        ],
    },
];

/// The page of the command at `path`.
pub fn page(path: &str) -> Option<&'static Page> {
    PAGES.iter().find(|p| p.path == path)
}

impl Page {
    /// The end of its `-h`: the examples, and where the rest is.
    pub fn after_short_help(&self) -> String {
        let mut text = self.examples_text();
        text += "\nShared options (Temporal, database, output) and exit codes: --help";
        text
    }

    /// The end of its `--help`: examples, then exit codes.
    pub fn after_help(&self) -> String {
        let mut text = String::new();
        if !self.shows.contains(&TLS) && !self.path.is_empty() {
            text += "Options every command takes (Temporal, TLS, database, output): \
                     `orderflow help options`\n\n";
        }
        text += &self.examples_text();
        text += "\nExit codes:\n";
        for (exit, meaning) in self.exit_codes {
            text += &format!("  {:<4} {meaning}\n", exit.code());
        }
        text.trim_end().to_owned()
    }

    fn examples_text(&self) -> String {
        let mut text = String::from("Examples:\n");
        // A note goes beside its example when the line fits in 80
        // columns, aligned with the others that do; else on a line above.
        let fits = |example: &str, note: &str| example.len() + note.len() + 6 <= 80;
        let width = self
            .examples
            .iter()
            .filter(|(example, note)| !note.is_empty() && fits(example, note))
            .map(|(example, _)| example.len())
            .max()
            .unwrap_or(0);
        for (example, note) in self.examples {
            if note.is_empty() {
                text += &format!("  {example}\n");
            } else if width + note.len() + 6 <= 80 && fits(example, note) {
                text += &format!("  {example:width$}  # {note}\n");
            } else if fits(example, note) {
                text += &format!("  {example}  # {note}\n");
            } else {
                text += &format!("  # {note}\n  {example}\n");
            }
        }
        text
    }

    /// Its EXAMPLES, EXIT STATUS and ENVIRONMENT sections, in roff, for a
    /// man page of `command`.
    pub fn man_sections(&self, command: &Command) -> String {
        let mut roff = roff::Roff::new();
        roff.control("SH", ["EXAMPLES"]);
        for (example, note) in self.examples {
            roff.control("TP", []);
            roff.text([roff::bold(*example)]);
            if !note.is_empty() {
                roff.text([roff::roman(*note)]);
            }
        }
        roff.control("SH", ["EXIT STATUS"]);
        for (exit, meaning) in self.exit_codes {
            roff.control("TP", []);
            roff.text([roff::bold(exit.code().to_string())]);
            roff.text([roff::roman(*meaning)]);
        }
        let mut environment: Vec<(String, String)> = command
            .get_arguments()
            .filter(|a| !a.is_hide_set())
            .filter_map(|a| {
                let name = a.get_env()?.to_string_lossy().into_owned();
                let help = a.get_help().map(|h| h.to_string()).unwrap_or_default();
                Some((
                    name,
                    format!("--{}: {help}", a.get_long().unwrap_or_default()),
                ))
            })
            .collect();
        environment.extend(
            MORE_ENVIRONMENT
                .iter()
                .map(|(name, what)| (name.to_string(), what.to_string())),
        );
        roff.control("SH", ["ENVIRONMENT"]);
        for (name, what) in environment {
            roff.control("TP", []);
            roff.text([roff::bold(name)]);
            roff.text([roff::roman(what)]);
        }
        roff.render()
    }

    fn hides(&self, heading: &str) -> bool {
        !self.shows.contains(&heading)
    }
}

/// The command line as `--help` and the man pages show it: each command
/// ends with its examples and exit codes, and shows only the global
/// options it uses (`orderflow help options` shows them all).
///
/// Each command gets its own copy of the global options before clap
/// builds the tree (clap then leaves them as they are), so that each can
/// hide what it does not use: a built command cannot be changed safely.
pub fn decorate(command: Command) -> Command {
    let globals: Vec<Arg> = command
        .get_arguments()
        .filter(|a| a.is_global_set())
        .cloned()
        .collect();
    let mut command = decorate_at(command, "", &globals);
    command.build();
    command
}

fn decorate_at(mut command: Command, path: &str, globals: &[Arg]) -> Command {
    let names: Vec<String> = command
        .get_subcommands()
        .map(|s| s.get_name().to_owned())
        .collect();
    for name in names {
        let sub_path = format!("{path} {name}").trim_start().to_owned();
        command = command.mut_subcommand(&name, |sub| decorate_at(sub, &sub_path, globals));
    }
    let Some(page) = page(path) else {
        return command;
    };
    if path.is_empty() {
        return command.after_help(page.after_help());
    }
    // `-h` is the command's own options and examples; `--help` adds the
    // global options it uses and the exit codes.
    command = command
        .after_help(page.after_short_help())
        .after_long_help(page.after_help())
        .disable_version_flag(true);
    for arg in globals {
        let id = arg.get_id().as_str();
        let heading = GROUPS
            .iter()
            .find(|(_, ids)| ids.contains(&id))
            .map_or(OUTPUT, |(heading, _)| *heading);
        // Its text as long help too: hidden from `-h`, an option's short
        // help is shown nowhere else (man pages included).
        let long = arg.get_long_help().or(arg.get_help()).cloned();
        let mut arg = arg.clone().hide(page.hides(heading)).hide_short_help(true);
        if let Some(long) = long {
            arg = arg.long_help(long);
        }
        // Commands that use only the database wait for it alone.
        if id == "connect_timeout" && page.hides(TEMPORAL) && !page.hides(DATABASE) {
            arg = arg.hide(false).help_heading(DATABASE);
        }
        command = command.arg(arg);
    }
    // The usage line as written, never as clap rewrites it in an error
    // when the environment provides options (`--address <HOST:PORT>
    // --task-queue <NAME>` shown as if they were required).
    if command.get_subcommands().next().is_none() {
        let usage = command.render_usage().to_string();
        let usage = usage.trim_start_matches("Usage: ");
        let rest = usage.split_once(' ').map_or("", |(_, rest)| rest);
        command = command.override_usage(format!("orderflow {path} {rest}").trim_end().to_owned());
    }
    command
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The main page lists every exit code, once, in order.
    #[test]
    fn the_main_help_lists_every_exit_code() {
        let main = PAGES.iter().find(|p| p.path.is_empty()).unwrap();
        let listed: Vec<Exit> = main.exit_codes.iter().map(|(e, _)| *e).collect();
        assert_eq!(listed, Exit::ALL);
    }

    /// Every command has a page, and every page a command.
    #[test]
    fn every_command_has_its_page() {
        let command = decorate(<super::super::Cli as clap::CommandFactory>::command());
        let mut paths = Vec::new();
        fn walk(command: &Command, path: String, paths: &mut Vec<String>) {
            paths.push(path.clone());
            for sub in command.get_subcommands().filter(|s| s.get_name() != "help") {
                let sub_path = if path.is_empty() {
                    sub.get_name().to_owned()
                } else {
                    format!("{path} {}", sub.get_name())
                };
                walk(sub, sub_path, paths);
            }
        }
        walk(&command, String::new(), &mut paths);
        for path in &paths {
            assert!(page(path).is_some(), "`orderflow {path}` has no help page");
        }
        for page in PAGES {
            assert!(
                paths.iter().any(|p| p == page.path),
                "no command {}",
                page.path
            );
        }
    }

    #[test]
    fn every_global_option_is_in_a_group() {
        let command = <super::super::Cli as clap::CommandFactory>::command();
        for arg in command.get_arguments().filter(|a| a.is_global_set()) {
            let id = arg.get_id().as_str();
            assert!(
                GROUPS.iter().any(|(_, ids)| ids.contains(&id)),
                "--{id} is in no group"
            );
        }
    }
}
