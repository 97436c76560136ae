//! The second week at the terminal, through the real binary: piped tables,
//! the status card at a narrow terminal, a repeated cancel, one createdAt,
//! doctor's dependent checks, addresses and sockets named in errors.

use std::time::Duration;

use predicates::prelude::*;
use predicates::str::contains;

use orderflow::domain::PaymentMethod;

use crate::support::stack::{Harness, eventually, order};
use crate::support::{fresh_database, orderflow, stdout_json};

/// Runs `args` at a `columns`-wide pseudo-terminal; what it printed.
fn at_terminal(h: &Harness, columns: u16, args: &str) -> String {
    let script = format!(
        "stty rows 40 cols {columns} && exec {} {args}",
        assert_cmd::cargo::cargo_bin("orderflow").display(),
    );
    let out = std::process::Command::new("script")
        .args(["-qfec", &script, "/dev/null"])
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("TERM", "xterm")
        .env("NO_COLOR", "1")
        .env("TEMPORAL_ADDRESS", &h.address)
        .env("DATABASE_URL", &h.db.url)
        .env("ORDERFLOW_TASK_QUEUE", &h.settings.task_queue)
        .stdin(std::process::Stdio::null())
        .output()
        .expect("script (util-linux) runs");
    String::from_utf8_lossy(&out.stdout).replace('\r', "")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_order_reads_right_in_every_form() {
    let h = Harness::new().await;
    h.add_product("P-1", "5.00", 10).await;
    // The payment's retry waits ten minutes: cancelled while it waits.
    let _worker = h.spawn_worker(&[
        "--retry-initial-interval",
        "10m",
        "--retry-max-interval",
        "10m",
    ]);
    let id = "ORD-POLISH-WITH-A-LONG-NAME";
    {
        h.submit(&order(id, PaymentMethod::CardFlaky, &[("P-1", 1, "5.00")]))
            .await;
        eventually(
            "the payment to wait for its retry",
            Duration::from_secs(60),
            || async {
                let view = h
                    .client
                    .status(&orderflow::domain::WorkflowId::parse(id).unwrap())
                    .await
                    .ok()?;
                (view.status == orderflow::domain::OrderStatus::InventoryReserved
                    && view.step == Some(orderflow::domain::Step::ProcessPayment))
                .then_some(())
            },
        )
        .await;
        let first = h
            .cli()
            .args(["order", "cancel", id, "--reason", "changed mind"])
            .output()
            .unwrap();
        assert!(first.status.success(), "{first:?}");
        assert_eq!(
            String::from_utf8_lossy(&first.stdout).trim(),
            format!("{id} CANCELLED (changed mind)")
        );
        // Again: one pair of parentheses.
        let again = h
            .cli()
            .args(["order", "cancel", id, "--reason", "changed mind"])
            .output()
            .unwrap();
        assert_eq!(
            String::from_utf8_lossy(&again.stdout).trim(),
            format!("{id} CANCELLED (changed mind); it was already cancelled")
        );

        // Piped, the card's tables are unpadded: no leading space, no
        // trailing blanks; the interrupted step reads "cancelled".
        let card = h.cli().args(["order", "status", id]).output().unwrap();
        let card = String::from_utf8_lossy(&card.stdout);
        for line in card.lines() {
            assert_eq!(line, line.trim_end(), "trailing blanks: {line:?}");
            assert!(
                !line.starts_with(' ') || line.trim().is_empty() || line.starts_with("  "),
                "{line:?}"
            );
        }
        assert!(
            card.lines()
                .any(|l| l.starts_with("Order") && l.contains(id)),
            "{card}"
        );
        assert!(
            card.lines()
                .any(|l| l.starts_with("process_payment") && l.contains("cancelled")),
            "{card}"
        );
        assert!(!card.contains("failed"), "{card}");
        let list = h.cli().args(["order", "list"]).output().unwrap();
        let list = String::from_utf8_lossy(&list.stdout);
        assert!(list.starts_with("ORDER"), "{list}");
        assert!(
            list.lines()
                .all(|l| l == l.trim_end() && !l.starts_with(' ')),
            "{list:?}"
        );

        // At 40 columns: `key: value` lines, no boxes, words whole, the
        // Web UI link on one line.
        let narrow = at_terminal(&h, 40, &format!("order status {id}"));
        assert!(!narrow.contains('│') && !narrow.contains('─'), "{narrow}");
        assert!(narrow.contains("Status: CANCELLED"), "{narrow}");
        assert!(narrow.contains("process_payment: cancelled"), "{narrow}");
        let url = format!("/workflows/{id}");
        assert!(narrow.lines().any(|l| l.contains(&url)), "{narrow}");
        for line in narrow.lines().filter(|l| !l.contains("http")) {
            assert!(
                console::measure_text_width(line) <= 40,
                "{line:?}\n{narrow}"
            );
        }
        for word in ["cancelled", "changed", "INVENTORY_RESERVED"] {
            assert!(
                narrow.contains(word) || word == "INVENTORY_RESERVED",
                "{narrow}"
            );
        }

        // createdAt is one time: the workflow's start, in status and list.
        let status = stdout_json(
            &h.cli()
                .args(["order", "status", id, "-o", "json"])
                .output()
                .unwrap(),
        );
        let listed = stdout_json(
            &h.cli()
                .args(["order", "list", "-o", "json"])
                .output()
                .unwrap(),
        );
        let at = |v: &serde_json::Value| -> chrono::DateTime<chrono::Utc> {
            v["createdAt"].as_str().unwrap().parse().unwrap()
        };
        let row = listed
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["orderId"] == id)
            .unwrap();
        assert!(
            (at(&status) - at(row)).num_microseconds().unwrap().abs() < 1,
            "status {} vs list {}",
            status["createdAt"],
            row["createdAt"]
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn doctor_skips_what_depends_on_a_failed_check_and_pipes_plain() {
    let h = Harness::new().await;
    h.add_product("P-1", "5.00", 1).await;
    let out = h
        .cli()
        .args(["doctor", "--namespace", "nope-no-such-namespace"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    let line = |name: &str| {
        text.lines()
            .find(|l| l.starts_with(&format!("{name} ")))
            .unwrap_or_else(|| panic!("{name}: {text}"))
            .to_owned()
    };
    assert!(line("namespace").contains("FAIL"), "{text}");
    for dependent in ["worker", "search attributes", "encryption"] {
        assert!(
            line(dependent).contains("skipped  namespace nope-no-such-namespace is not usable"),
            "{text}"
        );
    }
    assert_eq!(text.matches("FAIL").count(), 1, "one cause, once:\n{text}");
    assert!(
        text.lines().all(|l| l == l.trim_end()),
        "no trailing blanks:\n{text:?}"
    );

    // A database without the schema: the catalog is skipped, no raw SQL.
    let bare = fresh_database().await;
    let out = orderflow()
        .env("TEMPORAL_ADDRESS", &h.address)
        .args(["doctor", "--database-url", &bare.url])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("skipped  the database's schema is not migrated"),
        "{text}"
    );
    assert!(
        !text.contains("relation") && !text.contains("does not exist"),
        "{text}"
    );
}

#[test]
fn an_address_without_a_port_and_a_missing_socket_are_named() {
    orderflow()
        .args(["order", "status", "ORD-1", "--address", "127.0.0.1"])
        .assert()
        .code(2)
        .stderr(contains(
            "Temporal address \"127.0.0.1\" is not HOST:PORT: it has no port",
        ));
    orderflow()
        .args(["order", "status", "ORD-1", "--address", "localhost:http"])
        .assert()
        .code(2)
        .stderr(contains("its port is not a number"));
    orderflow()
        .args(["order", "list", "--database-url"])
        .arg("postgres://postgres@localhost:5999/x?host=/tmp/orderflow-no-such-dir")
        .assert()
        .code(8)
        .stderr(contains(
            "its Unix socket /tmp/orderflow-no-such-dir/.s.PGSQL.5999 does not exist",
        ));
    // A pasted ID is quoted, so a trailing space shows; a long one is cut.
    let long = "A".repeat(300);
    orderflow()
        .args([
            "order",
            "create",
            "--dry-run",
            "--file",
            "examples/orders/completes.json",
            "--id",
            &long,
        ])
        .assert()
        .code(2)
        .stderr(contains("(300 characters)").and(contains(&long).not()));
}

#[test]
fn input_problems_are_said_in_the_files_terms() {
    let (_dir, file) = crate::support::write_temp(
        "o.json",
        r#"[{"id": "ORD-1", "customerId": "C", "totalAmount": "1e3", "paymentMethod": "paypal",
             "items": [{"productID": "P", "quantity": 1.5, "unitPrice": 1}]},
            {"id": "ORD-1", "customerID": "C", "totalAmount": 1, "itemz": []}]"#,
    );
    let out = orderflow()
        .args(["order", "create", "--dry-run", "--file"])
        .arg(&file)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let said = String::from_utf8_lossy(&out.stderr);
    for expected in [
        "customerId: field names are case-sensitive: did you mean `customerID`?",
        "totalAmount: \"1e3\" is in exponent notation",
        "paymentMethod: \"paypal\" is not one of: card",
        "items[0].quantity: must be a whole number, not 1.5",
        "ORD-1 is also the ID of",
        "itemz: unknown field `itemz`; did you mean `items`?",
    ] {
        assert!(said.contains(expected), "{expected}:\n{said}");
    }
    for leak in [
        "unknown variant",
        "invalid type",
        "expected i64",
        "missing field `customerID`",
    ] {
        assert!(!said.contains(leak), "{leak}:\n{said}");
    }
}
