//! Errors that say what to do, from the real binary: every input problem at
//! once, an unmigrated database, a refused connection, a declined reset, a
//! refused cancel said once, and what `-v` says it connects to.

use orderflow::domain::{OrderId, OrderStatus, PaymentMethod};
use predicates::prelude::*;
use predicates::str::contains;
use serde_json::Value;

use crate::support::stack::{Harness, order};
use crate::support::{closed_port, fresh_database, migrated_database, orderflow, write_temp};

/// An order with a good shape; `edit` breaks it.
fn order_text(id: &str, edit: impl FnOnce(&mut Value)) -> Value {
    let mut order = serde_json::json!({
        "id": id, "customerID": "CUST-1", "totalAmount": "2.00",
        "items": [{"productID": "P-1", "quantity": 2, "unitPrice": "1.00"}]
    });
    edit(&mut order);
    order
}

/// Parses stderr as one JSON error object.
fn stderr_error(output: &std::process::Output) -> Value {
    let text = String::from_utf8_lossy(&output.stderr);
    let doc: Value = serde_json::from_str(text.trim())
        .unwrap_or_else(|e| panic!("stderr is not one JSON document ({e}):\n{text}"));
    doc["error"].clone()
}

#[test]
fn every_problem_of_an_order_file_is_reported_at_once() {
    let orders = Value::Array(vec![
        order_text("ORD-OK", |_| {}),
        order_text("ORD-A", |o| {
            o["customerID"] = "CUST 1".into();
            o["currency"] = "usd".into();
        }),
        order_text("ORD-B", |o| {
            o["items"][0]["quantity"] = 0.into();
            o["colour"] = "red".into();
        }),
        order_text("ORD-C", |o| o["totalAmount"] = "1.001".into()),
    ]);
    let (_dir, file) = write_temp("orders.json", &orders.to_string());
    let expected = [
        "orders.json: order 2 (ORD-A): customerID: ' ' is not allowed",
        "orders.json: order 2 (ORD-A): currency: \"usd\" is not a currency code",
        "orders.json: order 3 (ORD-B): items[0].quantity: must be at least 1",
        "orders.json: order 3 (ORD-B): colour: unknown field `colour`",
        "orders.json: order 4 (ORD-C): totalAmount: 1.001 has more than 2 decimal places",
    ];
    // No Temporal is configured: the input is refused before any connection.
    let out = orderflow()
        .args(["order", "create", "--file"])
        .arg(&file)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.starts_with("error: 5 problems in "), "{stderr}");
    for problem in expected {
        assert!(
            stderr.contains(problem),
            "missing {problem:?} in:\n{stderr}"
        );
    }
    let dir = file.parent().unwrap().display().to_string();
    insta::assert_snapshot!("five_problems", stderr.replace(&dir, "[DIR]"));

    let out = orderflow()
        .args(["-o", "json", "order", "create", "--file"])
        .arg(&file)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty());
    let error = stderr_error(&out);
    assert_eq!(error["code"], "INVALID_INPUT");
    assert_eq!(error["exitCode"], 2);
    let message = error["message"].as_str().unwrap();
    let problems = error["problems"].as_array().unwrap();
    assert_eq!(problems.len(), 5, "{error}");
    for (problem, expected) in problems.iter().zip(expected) {
        let said = format!(
            "orders.json: {}: {}: {}",
            problem["item"].as_str().unwrap(),
            problem["field"].as_str().unwrap(),
            problem["message"].as_str().unwrap()
        );
        assert!(said.starts_with(expected), "{said}\n  expected: {expected}");
        assert!(message.contains(expected), "{message}");
    }
    assert_eq!(problems[2]["file"], file.display().to_string());
    assert_eq!(problems[2]["item"], "order 3 (ORD-B)");
    assert_eq!(problems[2]["field"], "items[0].quantity");
    assert_eq!(problems[2]["message"], "must be at least 1");
}

#[test]
fn a_long_list_of_problems_is_capped_at_20() {
    let orders: Vec<Value> = (1..=25)
        .map(|n| {
            order_text(&format!("ORD-{n}"), |o| {
                o["items"][0]["quantity"] = 0.into()
            })
        })
        .collect();
    let (_dir, file) = write_temp("many.json", &Value::Array(orders).to_string());
    let out = orderflow()
        .args(["order", "create", "--file"])
        .arg(&file)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.starts_with("error: 25 problems in "), "{stderr}");
    let listed = stderr
        .lines()
        .filter(|l| l.contains("must be at least 1"))
        .count();
    assert_eq!(listed, 20, "{stderr}");
    assert!(stderr.contains("order 20 (ORD-20)") && !stderr.contains("order 21 (ORD-21)"));
    assert!(stderr.trim_end().ends_with("and 5 more"), "{stderr}");
}

#[test]
fn problems_in_several_files_and_a_catalog_are_all_reported() {
    let (_a, a) = write_temp("a.json", "[{\"id\": \"ORD-1\",\n");
    let (_b, b) = write_temp(
        "b.json",
        &order_text("ORD-2", |o| o["paymentMethod"] = "paypal".into()).to_string(),
    );
    orderflow()
        .args(["order", "create", "--file"])
        .arg(&a)
        .arg("--file")
        .arg(&b)
        .assert()
        .code(2)
        .stderr(
            contains("2 problems in 2 files:")
                // serde_json says "line 2, column 0": the end of line 1.
                .and(contains("a.json: malformed JSON at the end of line 1"))
                .and(contains("column 0").not())
                .and(contains(
                    "b.json: order 1 (ORD-2): paymentMethod: \"paypal\" is not one of: card, card_declined",
                )),
        );
    let (_c, catalog) = write_temp(
        "catalog.json",
        r#"[{"productID": "P 1", "name": "Pen", "unitPrice": 1, "stock": -1},
            {"productID": "P-2", "name": "Ink", "stock": 1}]"#,
    );
    orderflow()
        .args(["product", "import", "--file"])
        .arg(&catalog)
        .args(["--database-url", "postgres://u@127.0.0.1:1/never-reached"])
        .assert()
        .code(2)
        .stderr(
            contains("3 problems in")
                .and(contains("product 1 (P 1): productID: ' ' is not allowed"))
                .and(contains("product 1 (P 1): stock: must not be negative"))
                .and(contains("product 2 (P-2): missing field `unitPrice`")),
        );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unmigrated_database_says_to_run_db_migrate() {
    let db = fresh_database().await;
    for args in [vec!["order", "list"], vec!["product", "list"]] {
        orderflow()
            .args(&args)
            .args(["--database-url", &db.url])
            .assert()
            .code(2)
            .stderr(
                contains("has no orderflow schema")
                    .and(contains("run `orderflow db migrate`"))
                    .and(contains("does not exist").not()),
            );
    }
    // The worker checks before it polls (no Temporal is needed to tell).
    orderflow()
        .args(["worker", "--database-url", &db.url])
        .args(["--address", &format!("127.0.0.1:{}", closed_port())])
        .assert()
        .code(2)
        .stderr(contains("has no orderflow schema"));
    let out = orderflow()
        .args(["-o", "json", "order", "list", "--database-url", &db.url])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let error = stderr_error(&out);
    assert_eq!(error["code"], "INVALID_INPUT");
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains("orderflow db migrate")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_behind_says_how_many_migrations_are_pending() {
    let db = migrated_database().await;
    sqlx::query(
        "DELETE FROM _sqlx_migrations WHERE version = (SELECT max(version) FROM _sqlx_migrations)",
    )
    .execute(&db.pool)
    .await
    .unwrap();
    orderflow()
        .args(["order", "list", "--database-url", &db.url])
        .assert()
        .code(2)
        .stderr(contains(
            "is behind: 1 pending migration: run `orderflow db migrate`",
        ));
}

#[test]
fn a_refused_connection_is_reported_as_refused_not_as_a_timeout() {
    let port = closed_port();
    let url = format!("postgres://shop:pw-hunter2@127.0.0.1:{port}/orders");
    // A long timeout: the message must not be the pool's timeout.
    orderflow()
        .args([
            "product",
            "list",
            "--connect-timeout",
            "60s",
            "--database-url",
            &url,
        ])
        .assert()
        .code(8)
        .stderr(
            contains(format!("connection refused at 127.0.0.1:{port}"))
                .and(contains("timed out").not())
                .and(contains("no answer").not())
                .and(contains("hunter2").not()),
        );
}

/// Runs `orderflow ARGS` on a pseudo-terminal (util-linux `script`), with
/// `answer` typed at its prompt; the terminal's output and the exit code.
fn at_a_terminal(args: &[&str], answer: &str) -> (String, Option<i32>) {
    use std::io::Write as _;
    let binary = assert_cmd::cargo::cargo_bin("orderflow");
    let line =
        shell_words::join(std::iter::once(binary.to_str().unwrap()).chain(args.iter().copied()));
    // The scrubbed environment of every other test.
    let scrubbed = crate::support::command();
    let envs: Vec<_> = scrubbed
        .get_envs()
        .filter_map(|(k, v)| Some((k.to_owned(), v?.to_owned())))
        .collect();
    let mut child = std::process::Command::new("script")
        .args(["--quiet", "--return", "--command", &line, "/dev/null"])
        .env_clear()
        .envs(envs)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("script (util-linux) runs");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(answer.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        out.status.code(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn declining_the_reset_prompt_changes_nothing_and_exits_2() {
    let db = migrated_database().await;
    db.add_product("P-KEEP", "1.00", 1).await;
    let (output, code) = at_a_terminal(&["db", "reset", "--database-url", &db.url], "no\n");
    assert!(output.contains("Type 'yes' to continue"), "{output}");
    assert!(output.contains("nothing was changed"), "{output}");
    assert!(!output.contains("error"), "{output}");
    assert_eq!(code, Some(2), "{output}");
    assert_eq!(db.stock("P-KEEP").await, 1);
    // The same prompt, answered yes, resets: the test does drive it.
    let (output, code) = at_a_terminal(&["db", "reset", "--database-url", &db.url], "yes\n");
    assert_eq!(code, Some(0), "{output}");
    let left: i64 = sqlx::query_scalar("SELECT count(*) FROM products")
        .fetch_one(&db.pool)
        .await
        .unwrap();
    assert_eq!(left, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelling_a_completed_order_says_so_once() {
    let h = Harness::new().await;
    h.add_product("P-1", "5.00", 10).await;
    let id = OrderId::parse("ORD-CANCEL-ONCE").unwrap();
    h.with_worker(async {
        h.submit(&order(
            id.as_str(),
            PaymentMethod::Card,
            &[("P-1", 1, "5.00")],
        ))
        .await;
        let done = h.client.outcome(&id).await.unwrap();
        assert_eq!(done.status, OrderStatus::Completed);
    })
    .await;
    let out = h
        .cli()
        .args(["order", "cancel", "ORD-CANCEL-ONCE"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(6));
    assert!(
        out.stdout.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.matches("refused").count(), 1, "{stderr}");
    assert!(
        stderr.contains("ORD-CANCEL-ONCE already ended COMPLETED"),
        "{stderr}"
    );

    let out = h
        .cli()
        .args(["-o", "json", "order", "cancel", "ORD-CANCEL-ONCE"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(6));
    assert!(
        out.stdout.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let error = stderr_error(&out);
    assert_eq!(error["code"], "CONFLICT");
    assert!(error["message"].as_str().unwrap().contains("refused"));
}

#[test]
fn verbose_logs_what_it_connects_to_and_no_secret() {
    let port = closed_port();
    orderflow()
        .args(["-v", "order", "status", "ORD-1"])
        .args([
            "--address",
            &format!("127.0.0.1:{port}"),
            "--namespace",
            "shop",
        ])
        .env("TEMPORAL_API_KEY", "key-hunter2")
        .assert()
        .code(8)
        .stderr(
            contains(format!(
                "connecting to Temporal at 127.0.0.1:{port} (namespace shop, TLS on, API key set"
            ))
            .and(contains("hunter2").not()),
        );
    orderflow()
        .args(["-v", "order", "status", "ORD-1"])
        .args(["--address", &format!("127.0.0.1:{port}")])
        .assert()
        .code(8)
        .stderr(contains("(namespace default, TLS off, API key not set"));
    let url = format!("postgres://shop:pw-hunter2@127.0.0.1:{port}/orders");
    orderflow()
        .args(["-v", "product", "list", "--database-url", &url])
        .assert()
        .code(8)
        .stderr(
            contains(format!(
                "connecting to PostgreSQL at shop@127.0.0.1:{port}/orders"
            ))
            .and(contains("hunter2").not()),
        );
    // Without -v, no such log.
    orderflow()
        .args(["product", "list", "--database-url", &url])
        .assert()
        .code(8)
        .stderr(contains("connecting to PostgreSQL").not());
}
