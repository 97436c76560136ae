//! Nothing from outside is trusted (SPEC §7): orders started by hand with
//! input that breaks a rule, charges from the catalog, the database's own
//! checks, signed webhooks, and credentials through a real TLS front.

use std::time::Duration;

use orderflow::domain::{FailureCode, OrderStatus, PaymentMethod, WorkflowId};
use orderflow::workflow::state::OrderView;
use serde_json::json;
use temporalio_common::protos::temporal::api::enums::v1::EventType;

use crate::support::stack::{Harness, order};
use crate::support::stdout_json;
use crate::support::webhook::Webhook;

const WAIT: Duration = Duration::from_secs(60);

/// `temporal workflow start` of an `OrderWorkflow` on the harness's queue.
fn start_by_hand(h: &Harness, workflow_id: &str, input: &[&str]) {
    let out = std::process::Command::new("temporal")
        .args(["workflow", "start", "--type", "OrderWorkflow"])
        .args(["--task-queue", &h.settings.task_queue])
        .args(["--workflow-id", workflow_id])
        .args(input)
        .args(["--address", &h.address, "--namespace", "default"])
        .output()
        .expect("running the temporal CLI");
    assert!(
        out.status.success(),
        "{workflow_id}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn laptops(id: &str, quantity: i64, total: &str) -> serde_json::Value {
    json!({"id": id, "customerID": "CUST-1", "totalAmount": total,
           "items": [{"productID": "LAPTOP", "quantity": quantity, "unitPrice": "1299.99"}]})
}

async fn outcome(h: &Harness, id: &WorkflowId) -> OrderView {
    tokio::time::timeout(WAIT, h.client.outcome(id))
        .await
        .unwrap_or_else(|_| panic!("{id} did not end"))
        .unwrap_or_else(|e| panic!("{id}: {e:#}"))
}

/// Workflow tasks the run took: (completed, failed).
async fn workflow_tasks(h: &Harness, id: &WorkflowId) -> (usize, usize) {
    let events = h.client.raw_history(id).await.unwrap();
    let count = |t: EventType| events.iter().filter(|e| e.event_type() == t).count();
    (
        count(EventType::WorkflowTaskCompleted),
        count(EventType::WorkflowTaskFailed),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hand_started_orders_that_break_a_rule_fail_at_once_and_touch_nothing() {
    let h = Harness::new().await;
    h.add_product("LAPTOP", "1299.99", 10).await;
    let _worker = h.spawn_worker(&[]);
    let long_id = "W".repeat(200);
    let json_input = |v: serde_json::Value| vec!["--input".to_owned(), v.to_string()];
    let mut duplicate = laptops("W-DUP", 1, "2599.98");
    duplicate["items"] = json!([
        {"productID": "LAPTOP", "quantity": 1, "unitPrice": "1299.99"},
        {"productID": "LAPTOP", "quantity": 1, "unitPrice": "1299.99"}]);
    let mut token = laptops("W-TOKEN", 1, "1299.99");
    token["paymentMethod"] = "bitcoin".into();
    let mut empty = laptops("W-EMPTY", 1, "10.00");
    empty["items"] = json!([]);
    let mut price = laptops("W-PRICE", 1, "1299.99");
    price["items"][0]["unitPrice"] = "1299.999".into();
    let cases: Vec<(String, Vec<String>, &str)> = vec![
        (
            "W-TOTAL".into(),
            json_input(laptops("W-TOTAL", 2, "0.01")),
            "totalAmount: is 0.01 but the items add up to 2599.98",
        ),
        (
            "W-EMPTY".into(),
            json_input(empty),
            "items: must hold at least one item",
        ),
        (
            "W-NEGATIVE".into(),
            json_input(laptops("W-NEGATIVE", -2, "1299.99")),
            "items[0].quantity: must be at least 1",
        ),
        (
            "W-ZERO".into(),
            json_input(laptops("W-ZERO", 0, "1299.99")),
            "items[0].quantity: must be at least 1",
        ),
        (
            "W-PRICE".into(),
            json_input(price),
            "items[0].unitPrice: 1299.999 has more than 2 decimal places",
        ),
        ("W-TOKEN".into(), json_input(token), "paymentMethod:"),
        (
            "W-DUP".into(),
            json_input(duplicate),
            "items[1].productID: LAPTOP appears twice",
        ),
        (
            "W-NULL".into(),
            vec!["--input".into(), "null".into()],
            "must hold a JSON object",
        ),
        (
            "W-BINARY".into(),
            [
                "--input-meta",
                "encoding=binary/plain",
                "--input-base64",
                "--input",
                "AJ+Slg==",
            ]
            .map(str::to_owned)
            .to_vec(),
            "encoded \"binary/plain\", not as JSON",
        ),
        (
            long_id.clone(),
            json_input(laptops(&long_id, 1, "1299.99")),
            "id: must be at most 64 characters (got 200)",
        ),
        (
            "W7-DECOY".into(),
            json_input(laptops("W7-VICTIM", 2, "2599.98")),
            "id: is W7-VICTIM but the workflow ID is W7-DECOY; an order's ID is its workflow ID",
        ),
    ];
    for (id, input, _) in &cases {
        let input: Vec<&str> = input.iter().map(String::as_str).collect();
        start_by_hand(&h, id, &input);
    }
    for (id, _, expected) in &cases {
        let id = WorkflowId::parse(id).unwrap();
        let view = outcome(&h, &id).await;
        assert_eq!(view.status, OrderStatus::Failed, "{id}");
        let failure = view.failure.expect("a failure");
        assert_eq!(failure.code, FailureCode::InvalidOrder, "{id}");
        assert!(
            failure.message.contains(expected),
            "{id}: {}\n  expected: {expected}",
            failure.message
        );
        // Ended in its first workflow task, never stuck retrying it.
        assert_eq!(workflow_tasks(&h, &id).await, (1, 0), "{id}");
        // `order status` reads it, whatever its ID.
        let status = h
            .cli()
            .args(["order", "status", id.as_str(), "-o", "json"])
            .output()
            .unwrap();
        assert_eq!(
            status.status.code(),
            Some(0),
            "{id}: {}",
            String::from_utf8_lossy(&status.stderr)
        );
        let doc = stdout_json(&status);
        assert_eq!(doc["status"], "FAILED");
        assert_eq!(doc["failure"]["code"], "INVALID_ORDER");
    }
    // `order cancel` reads an ID outside the rule too: it has ended.
    let cancel = h
        .cli()
        .args(["order", "cancel", &long_id])
        .output()
        .unwrap();
    assert_eq!(
        cancel.status.code(),
        Some(6),
        "{}",
        String::from_utf8_lossy(&cancel.stderr)
    );

    // Nothing was recorded, reserved or charged, under any ID.
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM orders")
        .fetch_one(&h.db.pool)
        .await
        .unwrap();
    assert_eq!(rows, 0);
    assert_eq!(h.stock("LAPTOP").await, 10);

    // The victim's own order then goes through as any other.
    let victim = order(
        "W7-VICTIM",
        PaymentMethod::Card,
        &[("LAPTOP", 2, "1299.99")],
    );
    h.submit(&victim).await;
    let view = outcome(&h, &WorkflowId::from(victim.id().clone())).await;
    assert_eq!(view.status, OrderStatus::Completed, "{:?}", view.failure);
    assert_eq!(
        h.payments(victim.id()).await,
        [("CAPTURED".to_owned(), "2599.98".to_owned())]
    );
    assert_eq!(h.stock("LAPTOP").await, 8);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_order_whose_id_is_taken_by_another_recorded_order_touches_nothing_of_it() {
    let h = Harness::new().await;
    h.add_product("LAPTOP", "1299.99", 10).await;
    let _worker = h.spawn_worker(&[]);
    // Recorded and paid, as by an earlier run whose history is gone.
    let first = order(
        "ORD-TAKEN",
        PaymentMethod::Card,
        &[("LAPTOP", 1, "1299.99")],
    );
    h.submit(&first).await;
    assert_eq!(
        outcome(&h, &first.id().clone().into()).await.status,
        OrderStatus::Completed
    );
    // Its history deleted, another order under the same ID.
    let other = order(
        "ORD-TAKEN",
        PaymentMethod::Card,
        &[("LAPTOP", 3, "1299.99")],
    );
    let delete = std::process::Command::new("temporal")
        .args(["workflow", "delete", "--yes", "--workflow-id", "ORD-TAKEN"])
        .args(["--address", &h.address, "--namespace", "default"])
        .output()
        .unwrap();
    assert!(
        delete.status.success(),
        "{}",
        String::from_utf8_lossy(&delete.stderr)
    );
    crate::support::stack::eventually("the history to be gone", WAIT, || async {
        h.client
            .describe(other.id())
            .await
            .unwrap()
            .is_none()
            .then_some(())
    })
    .await;
    h.submit(&other).await;
    let view = outcome(&h, &other.id().clone().into()).await;
    assert_eq!(view.status, OrderStatus::Failed);
    assert_eq!(view.failure.unwrap().code, FailureCode::InvalidOrder);
    // The recorded order is as it was: completed, paid, its stock taken.
    assert_eq!(
        h.recorded_status(first.id()).await,
        ("COMPLETED".to_owned(), None)
    );
    assert_eq!(
        h.payments(first.id()).await,
        [("CAPTURED".to_owned(), "1299.99".to_owned())]
    );
    assert_eq!(
        h.reservations(first.id()).await,
        [(0, "RESERVED".to_owned())]
    );
    assert_eq!(h.stock("LAPTOP").await, 9);
    assert_eq!(h.notifications(first.id()).await.len(), 1);
}

#[tokio::test]
async fn the_database_refuses_totals_that_do_not_add_up() {
    let h = Harness::new().await;
    let insert_order = |total: &'static str| {
        sqlx::query(
            "INSERT INTO orders (order_id, customer_id, payment_method, total_amount, currency, status)
             VALUES ($1, 'C', 'card', $2::numeric, 'USD', 'CREATED')",
        )
        .bind(format!("ORD-{total}"))
        .bind(total)
    };
    let line = |id: &str| {
        sqlx::query(
            "INSERT INTO order_items (order_id, line_no, product_id, quantity, unit_price)
             VALUES ($1, 0, 'P', 2, 5.00)",
        )
        .bind(id.to_owned())
    };
    // The lines say 10.00; an order of 0.01 is refused when it commits.
    let mut tx = h.db.pool.begin().await.unwrap();
    insert_order("0.01").execute(&mut *tx).await.unwrap();
    line("ORD-0.01").execute(&mut *tx).await.unwrap();
    let err = tx.commit().await.unwrap_err().to_string();
    assert!(err.contains("is not the sum of its lines"), "{err}");
    // An order with no lines at all, likewise.
    let err = insert_order("3.00").execute(&h.db.pool).await.unwrap_err();
    assert!(err.to_string().contains("it has none"), "{err}");
    // The same order with a matching total is accepted.
    let mut tx = h.db.pool.begin().await.unwrap();
    insert_order("10.00").execute(&mut *tx).await.unwrap();
    line("ORD-10.00").execute(&mut *tx).await.unwrap();
    tx.commit().await.unwrap();
    // A capture that is not the order's total is refused.
    let capture = |amount: &'static str| {
        sqlx::query(
            "INSERT INTO payments (order_id, idempotency_key, amount, currency, payment_method, status, gateway_ref)
             VALUES ('ORD-10.00', $1, $2::numeric, 'USD', 'card', 'CAPTURED', 'ref')",
        )
        .bind(format!("key-{amount}"))
        .bind(amount)
    };
    let err = capture("0.01").execute(&h.db.pool).await.unwrap_err();
    assert!(err.to_string().contains("is not its total"), "{err}");
    capture("10.00").execute(&h.db.pool).await.unwrap();
}

/// HMAC-SHA256 as a receiver would compute it, by another implementation
/// than orderflow's: Python's standard library.
fn python_hmac(secret: &str, timestamp: &str, body: &[u8]) -> String {
    use std::io::Write as _;
    let mut child = std::process::Command::new("python3")
        .args([
            "-c",
            "import hashlib, hmac, sys; \
             print(hmac.new(sys.argv[1].encode(), sys.argv[2].encode() + b'.' + sys.stdin.buffer.read(), \
             hashlib.sha256).hexdigest())",
            secret,
            timestamp,
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("python3");
    child.stdin.take().unwrap().write_all(body).unwrap();
    let out = child.wait_with_output().unwrap();
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_deliveries_are_signed_and_the_secret_is_never_logged() {
    let hook = Webhook::start(200).await;
    let h = Harness::new().await;
    h.add_product("P-1", "5.00", 10).await;
    let secret = "whsec_test_3e9a1c";
    let worker = h.spawn_worker(&[
        "--notify-webhook",
        hook.url.as_str(),
        "--notify-webhook-secret",
        secret,
        "-v",
    ]);
    let o = order("ORD-SIGNED", PaymentMethod::Card, &[("P-1", 1, "5.00")]);
    h.submit(&o).await;
    assert_eq!(
        outcome(&h, &o.id().clone().into()).await.status,
        OrderStatus::Completed
    );
    let received = hook.received().await;
    assert_eq!(received.len(), 1);
    let header = received[0]
        .header("orderflow-signature")
        .expect("an Orderflow-Signature header");
    let (t, v1) = header
        .split_once(",v1=")
        .and_then(|(t, v1)| Some((t.strip_prefix("t=")?, v1)))
        .unwrap_or_else(|| panic!("t=…,v1=…: {header}"));
    assert_eq!(v1, python_hmac(secret, t, &received[0].raw));
    let age = chrono::Utc::now().timestamp() - t.parse::<i64>().unwrap();
    assert!((0..300).contains(&age), "a fresh timestamp: {age} s");
    assert!(!worker.log().contains(secret), "the secret is not logged");
}

#[test]
fn input_errors_are_bounded_and_files_have_a_size_limit() {
    // A 5 MB e-mail address is not echoed back.
    let email = format!("{}@example", "a".repeat(5_000_000));
    let text = json!({"id": "ORD-BIG", "customerID": "C", "customerEmail": email,
        "totalAmount": 1, "items": [{"productID": "A", "quantity": 1, "unitPrice": 1}]})
    .to_string();
    let (_dir, file) = crate::support::write_temp("big.json", &text);
    let out = crate::support::orderflow()
        .args(["order", "create", "--dry-run", "--file"])
        .arg(&file)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.len() < 400, "{} bytes: {stderr:.300}", stderr.len());
    assert!(stderr.contains("customerEmail: \"aaaa"), "{stderr}");
    assert!(stderr.contains("(5000008 characters)"), "{stderr}");

    // Past 32 MiB a file is refused, saying what to do.
    let dir = tempfile::tempdir().unwrap();
    let huge = dir.path().join("huge.json");
    std::fs::File::create(&huge)
        .unwrap()
        .set_len(33 * 1024 * 1024)
        .unwrap();
    let out = crate::support::orderflow()
        .args(["order", "create", "--dry-run", "--file"])
        .arg(&huge)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("is larger than 32 MiB"), "{stderr}");
    assert!(stderr.contains("split it"), "{stderr}");
}

mod credentials {
    //! TLS, mTLS and API keys through nginx in front of the dev server
    //! (`support::tls`), with the real binary.

    use crate::support::tls::front;

    fn cli(port: u16, args: &[&str]) -> std::process::Output {
        crate::support::orderflow()
            .args(["--address", &format!("127.0.0.1:{port}")])
            .args(args)
            .args(["order", "status", "ORD-NOBODY"])
            .output()
            .unwrap()
    }

    fn tls(ca: &std::path::Path, server_name: &str) -> Vec<String> {
        vec![
            "--tls-ca-path".into(),
            ca.display().to_string(),
            "--tls-server-name".into(),
            server_name.into(),
        ]
    }

    fn args(v: &[String]) -> Vec<&str> {
        v.iter().map(String::as_str).collect()
    }

    /// Exit 8 with one error line that says `cause`, names what to check,
    /// and neither dumps metadata nor asks whether a server runs.
    fn assert_refused(out: &std::process::Output, cause: &str, check: &str) {
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(8), "{stderr}");
        let error: Vec<&str> = stderr.lines().filter(|l| l.starts_with("error:")).collect();
        assert_eq!(error.len(), 1, "{stderr}");
        assert!(error[0].contains(cause), "expected {cause:?}:\n{stderr}");
        assert!(
            stderr.contains(check),
            "expected a pointer to {check}:\n{stderr}"
        );
        for noise in [
            "MetadataMap",
            "metadata",
            "is the server running",
            "headers",
        ] {
            assert!(!stderr.contains(noise), "no {noise:?}:\n{stderr}");
        }
    }

    #[test]
    fn an_api_key_with_the_servers_ca_gets_through() {
        let f = front();
        let mut a = tls(&f.ca, "localhost");
        a.extend(["--api-key".into(), f.api_key.clone()]);
        let out = cli(f.api_key_port, &args(&a));
        // Not found: the request reached Temporal and was answered.
        assert_eq!(
            out.status.code(),
            Some(3),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    #[test]
    fn a_client_certificate_gets_through() {
        let f = front();
        let mut a = tls(&f.ca, "localhost");
        a.extend([
            "--tls-cert-path".into(),
            f.client_cert.display().to_string(),
            "--tls-key-path".into(),
            f.client_key.display().to_string(),
        ]);
        let out = cli(f.mtls_port, &args(&a));
        assert_eq!(
            out.status.code(),
            Some(3),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    #[test]
    fn a_missing_or_wrong_api_key_is_named() {
        let f = front();
        let a = tls(&f.ca, "localhost");
        assert_refused(
            &cli(f.api_key_port, &args(&a)),
            "API key",
            "TEMPORAL_API_KEY",
        );
        let mut wrong = a.clone();
        wrong.extend(["--api-key".into(), "not-the-key".into()]);
        let out = cli(f.api_key_port, &args(&wrong));
        assert_refused(&out, "API key rejected", "TEMPORAL_API_KEY");
        assert!(!String::from_utf8_lossy(&out.stderr).contains("not-the-key"));
    }

    #[test]
    fn a_missing_client_certificate_is_named() {
        let f = front();
        let out = cli(f.mtls_port, &args(&tls(&f.ca, "localhost")));
        assert_refused(&out, "client certificate required", "--tls-cert-path");
    }

    #[test]
    fn an_unknown_ca_is_named() {
        let f = front();
        let mut a = tls(&f.other_ca, "localhost");
        a.extend(["--api-key".into(), f.api_key.clone()]);
        let out = cli(f.api_key_port, &args(&a));
        assert_refused(&out, "certificate not trusted", "--tls-ca-path");
    }

    #[test]
    fn a_wrong_server_name_is_named() {
        let f = front();
        let mut a = tls(&f.ca, "orders.example.com");
        a.extend(["--api-key".into(), f.api_key.clone()]);
        let out = cli(f.api_key_port, &args(&a));
        assert_refused(
            &out,
            "not valid for orders.example.com",
            "--tls-server-name",
        );
    }
}
