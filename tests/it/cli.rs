//! The real binary: help, usage errors, unreachable services, secrets.

use std::net::TcpListener;

use clap::CommandFactory;
use orderflow::cli::Cli;
use predicates::prelude::*;
use predicates::str::contains;

use crate::support::{closed_port, orderflow};

/// Every command path in the tree, e.g. ["order", "create"].
fn command_paths() -> Vec<Vec<String>> {
    fn walk(cmd: &clap::Command, prefix: Vec<String>, out: &mut Vec<Vec<String>>) {
        for sub in cmd.get_subcommands().filter(|s| s.get_name() != "help") {
            let mut path = prefix.clone();
            path.push(sub.get_name().to_owned());
            out.push(path.clone());
            walk(sub, path, out);
        }
    }
    let mut out = vec![vec![]];
    walk(&Cli::command(), vec![], &mut out);
    out
}

#[test]
fn every_command_has_help() {
    let paths = command_paths();
    assert!(
        paths.len() >= 19,
        "expected the whole SPEC §6 tree, got {paths:?}"
    );
    for path in paths {
        let usage = format!("Usage: orderflow {}", path.join(" "));
        for flag in ["-h", "--help"] {
            let out = orderflow().args(&path).arg(flag).output().unwrap();
            assert!(out.status.success() && out.stderr.is_empty());
            let help = String::from_utf8(out.stdout).unwrap();
            assert!(help.contains(usage.trim_end()), "{help}");
            // It ends with examples, then the exit codes.
            let examples = help
                .find("\nExamples:\n")
                .unwrap_or_else(|| panic!("{path:?}: {help}"));
            if flag == "-h" && !path.is_empty() {
                // Short: the command's own options and examples, then
                // where the rest is; no global option, no -V.
                assert!(
                    help.trim_end().ends_with("exit codes: --help"),
                    "{path:?}: {help}"
                );
                assert!(
                    !help.contains("--output") && !help.contains("-V, --version"),
                    "{path:?}: {help}"
                );
                continue;
            }
            let codes = help
                .find("\nExit codes:\n")
                .unwrap_or_else(|| panic!("{path:?}: {help}"));
            assert!(examples < codes, "{path:?}");
            assert!(
                help[codes..].lines().skip(2).all(|l| l.starts_with("  ")),
                "{path:?}: nothing after the exit codes:\n{help}"
            );
            assert!(help[codes..].contains("  0 "), "{path:?}");
            // Placeholders read as words: <N>, not <RETRY_MAX_ATTEMPTS>.
            for placeholder in help.split('<').skip(1).filter_map(|p| p.split_once('>')) {
                assert!(
                    !placeholder.0.contains('_'),
                    "{path:?}: <{}>",
                    placeholder.0
                );
            }
            assert!(!help.contains("seed"), "{path:?} speaks of the seed");
        }
    }
}

#[test]
fn each_command_shows_the_global_options_it_uses() {
    let help = |args: &[&str]| {
        let out = orderflow().args(args).output().unwrap();
        assert!(out.status.success());
        String::from_utf8(out.stdout).unwrap()
    };
    let list = help(&["order", "list", "--help"]);
    assert!(list.contains("--database-url") && list.contains("--output"));
    assert!(!list.contains("--tls") && !list.contains("--api-key") && !list.contains("--address"));
    assert!(list.contains("orderflow help options"));
    let create = help(&["order", "create", "--help"]);
    assert!(create.contains("--address") && create.contains("--tls-ca-path"));
    assert!(!create.contains("--database-url"));
    // The page with every one of them, under its heading.
    let options = help(&["help", "options"]);
    for heading in [
        "Temporal:",
        "Temporal TLS and API key:",
        "Database:",
        "Output:",
    ] {
        assert!(options.contains(heading), "{heading} in {options}");
    }
    for flag in [
        "--address",
        "--tls",
        "--api-key",
        "--database-url",
        "--log-format",
    ] {
        assert!(options.contains(flag), "{flag}");
    }
    assert_eq!(
        help(&["options"]).trim_end(),
        options.trim_end().replace("\n\n\n", "\n\n")
    );
}

#[test]
fn status_values_are_listed_and_completed() {
    orderflow()
        .args(["order", "list", "-h"])
        .assert()
        .stdout(contains("possible values:").and(contains("PENDING, CREATED")));
    orderflow()
        .args(["completions", "bash"])
        .assert()
        .stdout(contains(
            "PENDING CREATED INVENTORY_RESERVED PAID COMPLETED CANCELLED FAILED",
        ));
}

#[test]
fn every_example_in_help_parses() {
    for page in orderflow::cli::help::PAGES {
        for (example, _) in page.examples {
            // The orderflow part of a pipeline, without variables set before it.
            let first = example
                .split(['|', '>'])
                .find(|p| p.contains("orderflow"))
                .unwrap();
            let words = shell_words::split(first).unwrap();
            let words: Vec<&String> = words.iter().skip_while(|w| w.contains('=')).collect();
            if words.get(1).is_some_and(|w| *w == "help") {
                continue;
            }
            orderflow::cli::command()
                .try_get_matches_from(&words)
                .unwrap_or_else(|e| panic!("`{example}` does not parse: {e}"));
        }
    }
}

#[test]
fn man_pages_have_examples_exit_status_and_environment() {
    let pages = orderflow::commands::man_pages();
    for (name, page) in &pages {
        let page = String::from_utf8_lossy(page);
        for section in [".SH EXAMPLES", ".SH \"EXIT STATUS\"", ".SH ENVIRONMENT"] {
            assert!(page.contains(section), "{name} has no {section}");
        }
        // Every page it names is shipped.
        for named in page.split("orderflow\\-").skip(1) {
            let Some((stem, _)) = named.split_once("(1)") else {
                continue;
            };
            if !stem
                .chars()
                .all(|c| c.is_ascii_lowercase() || c == '-' || c == '\\')
            {
                continue;
            }
            let file = format!("orderflow-{}.1", stem.replace("\\-", "-"));
            assert!(pages.iter().any(|(n, _)| *n == file), "{name} names {file}");
        }
    }
    let root = String::from_utf8_lossy(&pages[0].1).into_owned();
    assert!(!root.contains("help(1)"));
    assert!(root.contains("DATABASE_URL") && root.contains("NO_COLOR"));
}

#[test]
fn the_spec_command_tree_exists() {
    let paths: Vec<String> = command_paths().iter().map(|p| p.join(" ")).collect();
    for expected in [
        "worker",
        "order create",
        "order status",
        "order watch",
        "order cancel",
        "order list",
        "db migrate",
        "db status",
        "db reset",
        "product import",
        "product list",
        "dev",
        "demo",
        "completions",
        "man",
    ] {
        assert!(
            paths.iter().any(|p| p == expected),
            "missing `{expected}` in {paths:?}"
        );
    }
}

#[test]
fn invalid_usage_exits_2() {
    for args in [
        vec!["--bogus"],
        vec!["frobnicate"],
        vec!["order", "list", "--limit", "0"],
        vec!["order", "list", "--status", "SHIPPED"],
        vec!["order", "status", "bad\tid"],
        vec!["order", "watch", "ORD-1", "--timeout", "soon"],
        vec!["db", "reset", "--yes=maybe"],
        vec!["--output", "yaml", "db", "status"],
        vec!["completions", "tcsh"],
        vec!["-v", "-q", "db", "status"],
    ] {
        orderflow()
            .args(&args)
            .assert()
            .code(2)
            .stderr(contains("error"));
    }
}

#[test]
fn usage_errors_are_json_under_output_json() {
    let out = orderflow()
        .args([
            "-o", "json", "order", "create", "--file", "-", "--id", "bad id",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err: serde_json::Value = serde_json::from_slice(&out.stderr).expect("stderr is JSON");
    assert_eq!(err["error"]["code"], "INVALID_INPUT");
    assert_eq!(err["error"]["exitCode"], 2);
    assert!(
        err["error"]["message"]
            .as_str()
            .unwrap()
            .contains("is not allowed")
    );
    assert!(out.stdout.is_empty());
}

#[test]
fn no_database_configured_is_a_usage_error_that_says_what_to_set() {
    orderflow()
        .args(["db", "status"])
        .assert()
        .code(2)
        .stderr(contains("DATABASE_URL").and(contains("--database-url")));
}

#[test]
fn unreachable_database_exits_8() {
    let url = format!(
        "postgres://orderflow:hunter2@127.0.0.1:{}/orderflow",
        closed_port()
    );
    orderflow()
        .args(["db", "status", "--database-url", &url])
        .assert()
        .code(8)
        .stderr(
            contains("cannot connect to PostgreSQL at orderflow@127.0.0.1")
                .and(contains("hunter2").not()),
        );
}

#[test]
fn a_database_that_never_answers_exits_8_after_the_connect_timeout() {
    // Accepts TCP connections (the kernel's backlog) but never speaks.
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!(
        "postgres://u@127.0.0.1:{}/db",
        silent.local_addr().unwrap().port()
    );
    orderflow()
        .args([
            "db",
            "status",
            "--connect-timeout",
            "1s",
            "--database-url",
            &url,
        ])
        .timeout(std::time::Duration::from_secs(30))
        .assert()
        .code(8)
        .stderr(contains("cannot connect to PostgreSQL"));
}

#[test]
fn seed_postgres_variables_are_used_and_the_password_stays_secret() {
    orderflow()
        .args(["db", "status", "-o", "json"])
        .env("POSTGRES_HOST", "127.0.0.1")
        .env("POSTGRES_PORT", closed_port().to_string())
        .env("POSTGRES_USER", "shop")
        .env("POSTGRES_PASSWORD", "s3cr3t-pw")
        .env("POSTGRES_DB", "orders")
        .assert()
        .code(8)
        .stderr(
            contains("shop@127.0.0.1")
                .and(contains("/orders"))
                .and(contains("s3cr3t-pw").not()),
        )
        .stderr(contains("\"exitCode\":8"));
}

#[test]
fn help_never_shows_secret_values() {
    orderflow()
        .args(["--help"])
        .env("DATABASE_URL", "postgres://u:hunter2@h/db")
        .env("TEMPORAL_API_KEY", "key-hunter2")
        .assert()
        .success()
        .stdout(contains("hunter2").not());
}

#[test]
fn version_prints() {
    orderflow()
        .arg("--version")
        .assert()
        .success()
        .stdout(contains(env!("CARGO_PKG_VERSION")));
}
