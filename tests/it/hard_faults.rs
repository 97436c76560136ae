//! The harder faults (issue #24): each once wedged an order for good or
//! told a customer two stories. Each runs through the real binary against
//! real services and ends with the invariant checker, for which "every
//! order ends" is a promise with a deadline (`support::invariants`).

use std::time::Duration;

use serde_json::Value;

use orderflow::domain::{FailureCode, Order, OrderId, PaymentMethod, Step};
use orderflow::stack::postgres::PostgresCluster;
use orderflow::stack::temporal_server::{DevServerOptions, TemporalDevServer};
use orderflow::workflow::retry::RetryConfig;
use orderflow::workflow::state::StepState;

use crate::support::invariants::{Expectation, assert_kept};
use crate::support::stack::{Harness, eventually, order};
use crate::support::webhook::Webhook;
use crate::support::{TestDb, stdout_json, temporal_cli, write_temp};

const WAIT: Duration = Duration::from_secs(60);

fn orders(prefix: &str, n: usize, method: PaymentMethod) -> Vec<Order> {
    (0..n)
        .map(|i| order(&format!("{prefix}-{i}"), method, &[("P-1", 1, "5.00")]))
        .collect()
}

fn ids(orders: &[Order]) -> Vec<OrderId> {
    orders.iter().map(|o| o.id().clone()).collect()
}

async fn keep_promises(h: &Harness, orders: &[Order]) {
    assert_kept(
        &h.db.pool,
        &h.client,
        &Expectation {
            orders: &ids(orders),
            stock_before: &[("P-1", 1000)],
        },
    )
    .await;
    h.assert_audit_clean().await;
}

/// Waits until the order's `step` is in `state` (as its live state says).
async fn step_is(h: &Harness, id: &OrderId, step: Step, state: StepState) {
    eventually(&format!("{id}: {step} {state:?}"), WAIT, || async {
        let view = h.client.status(id).await.ok()?;
        (view.step_view(step).state == state).then_some(())
    })
    .await;
}

/// The order's history as JSON: one object per event, its attributes
/// under their type's name (`TimerFiredEventAttributes`, …).
async fn history(h: &Harness, id: &OrderId) -> Vec<Value> {
    let events = h.client.raw_history(id).await.unwrap();
    serde_json::from_value(serde_json::to_value(&events).unwrap()).unwrap()
}

fn kind(event: &Value) -> &str {
    event["attributes"]
        .as_object()
        .and_then(|a| a.keys().next())
        .map(|k| k.trim_end_matches("EventAttributes"))
        .unwrap_or("")
}

/// `temporal workflow …` against the harness's server.
fn temporal(h: &Harness, args: &[&str]) -> std::process::Output {
    let output = temporal_cli(&h.address, args);
    assert!(
        output.status.success(),
        "temporal {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// Case 1: Temporal's own cancellation arrives while a step waits to retry
/// and no worker holds the order; the retry's timer fires; a worker comes
/// back. The SDK used to panic on that workflow task forever.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_temporal_cancel_that_meets_a_retry_timer_ends_the_order() {
    let h = Harness::new().await;
    h.add_product("P-1", "5.00", 1000).await;
    let args = ["--retry-initial-interval", "4s"];
    let mut worker = h.spawn_worker(&args);
    let all = orders("ORD-TIMER", 3, PaymentMethod::CardFlaky);
    for o in &all {
        h.submit(o).await;
    }
    for o in &all {
        step_is(&h, o.id(), Step::ProcessPayment, StepState::Retrying).await;
    }
    worker.child.kill().expect("SIGKILL the worker");
    worker.child.wait().unwrap();
    for o in &all {
        temporal(
            &h,
            &["workflow", "cancel", "--workflow-id", o.id().as_str()],
        );
    }
    // The timers fire with no worker: their firing and the cancellation
    // reach the next worker in one workflow task.
    for o in &all {
        eventually(&format!("{}'s timer to fire", o.id()), WAIT, || async {
            let events = history(&h, o.id()).await;
            let cancel = events
                .iter()
                .position(|e| kind(e) == "WorkflowExecutionCancelRequested")?;
            events[cancel..]
                .iter()
                .any(|e| kind(e) == "TimerFired")
                .then_some(())
        })
        .await;
    }
    let _worker = h.spawn_worker(&args);
    keep_promises(&h, &all).await;
    for o in &all {
        let view = h.client.outcome(o.id()).await.unwrap();
        assert_eq!(view.status.as_str(), "CANCELLED", "{}", o.id());
    }
}

/// Case 2: a `cancel` signal whose payload is not `{"reason": "…"}`, from
/// any client of the namespace, used to fail every later workflow task.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_cancel_signal_is_rejected_and_the_order_goes_on() {
    let h = Harness::new().await;
    h.add_product("P-1", "5.00", 1000).await;
    let _worker = h.spawn_worker(&["--retry-initial-interval", "2s"]);
    let all = orders("ORD-SIGNAL", 7, PaymentMethod::CardFlaky);
    for o in &all {
        h.submit(o).await;
    }
    for o in &all {
        step_is(&h, o.id(), Step::ProcessPayment, StepState::Retrying).await;
    }
    let malformed = [
        r#"{"reason": 12345}"#,
        "null",
        r#""changed my mind""#,
        "[1, 2]",
    ];
    for (o, input) in all.iter().zip(malformed) {
        temporal(
            &h,
            &[
                "workflow",
                "signal",
                "--workflow-id",
                o.id().as_str(),
                "--name",
                "cancel",
                "--input",
                input,
            ],
        );
    }
    // The fifth is poisoned too, then cancelled the usual way.
    let poisoned = all[4].id();
    temporal(
        &h,
        &[
            "workflow",
            "signal",
            "--workflow-id",
            poisoned.as_str(),
            "--name",
            "cancel",
            "--input",
            r#"{"reason": ["a"]}"#,
        ],
    );
    h.cli()
        .args(["order", "cancel", poisoned.as_str(), "--timeout", "60s"])
        .assert()
        .success();
    // The sixth: a reason of 1.5 MB, kept to its limit.
    let huge = all[5].id();
    let (_dir, file) = write_temp(
        "reason.json",
        &serde_json::json!({ "reason": "x".repeat(1_500_000) }).to_string(),
    );
    temporal(
        &h,
        &[
            "workflow",
            "signal",
            "--workflow-id",
            huge.as_str(),
            "--name",
            "cancel",
            "--input-file",
            file.to_str().unwrap(),
        ],
    );

    // The seventh: marked encrypted under a made-up key of 100,000
    // characters, which no worker can decrypt (the SDK decodes a task's
    // payloads before any workflow code runs).
    let made_up = format!("encryption-key-id={}", "k".repeat(100_000));
    temporal(
        &h,
        &[
            "workflow",
            "signal",
            "--workflow-id",
            all[6].id().as_str(),
            "--name",
            "cancel",
            "--input",
            "{}",
            "--input-meta",
            "encoding=binary/encrypted",
            "--input-meta",
            &made_up,
        ],
    );

    keep_promises(&h, &all).await;
    // `null` is a cancel without a reason; the others are rejected,
    // recorded, and their orders complete.
    let expected = [
        "COMPLETED",
        "CANCELLED",
        "COMPLETED",
        "COMPLETED",
        "CANCELLED",
        "CANCELLED",
        "COMPLETED",
    ];
    assert_eq!(expected.len(), all.len());
    for (o, status) in all.iter().zip(expected) {
        let view = h.client.outcome(o.id()).await.unwrap();
        assert_eq!(view.status.as_str(), status, "{}", o.id());
    }
    let status = stdout_json(
        &h.cli()
            .args(["-o", "json", "order", "status", all[0].id().as_str()])
            .output()
            .unwrap(),
    );
    let rejected = &status["rejectedSignals"][0];
    assert_eq!(rejected["name"], "cancel", "{status}");
    assert!(
        rejected["problem"]
            .as_str()
            .unwrap()
            .starts_with("its reason is a number, not text"),
        "{status}"
    );
    let sealed = stdout_json(
        &h.cli()
            .args(["-o", "json", "order", "status", all[6].id().as_str()])
            .output()
            .unwrap(),
    );
    let problem = sealed["rejectedSignals"][0]["problem"]
        .as_str()
        .unwrap_or_default();
    assert!(
        problem.starts_with("its payload is encrypted with key kkk") && problem.len() < 400,
        "{sealed}"
    );
    let reason: String = sqlx::query_scalar("SELECT cancel_reason FROM orders WHERE order_id = $1")
        .bind(huge.as_str())
        .fetch_one(&h.db.pool)
        .await
        .unwrap();
    assert_eq!(reason.chars().count(), orderflow::domain::MAX_REASON_CHARS);
}

/// A receiver that reads each notice and then answers too late (orders
/// whose ID ends in an even digit) or closes the connection unanswered
/// (odd): either way the notice may have arrived. Returns its URL and the
/// kinds it read, per order.
async fn receiver_that_never_confirms() -> (
    url::Url,
    std::sync::Arc<std::sync::Mutex<Vec<(String, String)>>>,
) {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url =
        url::Url::parse(&format!("http://{}/notify", listener.local_addr().unwrap())).unwrap();
    let read = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let kept = read.clone();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let kept = kept.clone();
            tokio::spawn(async move {
                let mut request = Vec::new();
                let mut buf = [0u8; 4096];
                let body = loop {
                    let Ok(n) = socket.read(&mut buf).await else {
                        return;
                    };
                    if n == 0 {
                        return;
                    }
                    request.extend_from_slice(&buf[..n]);
                    let text = String::from_utf8_lossy(&request).into_owned();
                    let Some((head, body)) = text.split_once("\r\n\r\n") else {
                        continue;
                    };
                    let length = head
                        .lines()
                        .find_map(|l| {
                            let (k, v) = l.split_once(':')?;
                            k.eq_ignore_ascii_case("content-length")
                                .then(|| v.trim().parse().ok())?
                        })
                        .unwrap_or(0usize);
                    if body.len() >= length {
                        break body.to_owned();
                    }
                };
                let notice: Value = serde_json::from_str(&body).unwrap_or_default();
                let id = notice["orderId"].as_str().unwrap_or("").to_owned();
                let kind = notice["kind"].as_str().unwrap_or("").to_owned();
                kept.lock().unwrap().push((id.clone(), kind));
                let even = id
                    .chars()
                    .last()
                    .and_then(|c| c.to_digit(10))
                    .is_some_and(|d| d % 2 == 0);
                if even {
                    tokio::time::sleep(Duration::from_secs(2)).await;
                    let _ = socket
                        .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")
                        .await;
                }
                // Odd: dropped here, unanswered.
            });
        }
    });
    (url, read)
}

/// Case 3: a confirmation whose delivery got no answer may have reached the
/// customer; a cancellation that comes next used to go through, telling
/// them "confirmed" and then "cancelled".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_confirmation_that_may_have_arrived_is_never_followed_by_a_cancellation() {
    let h = Harness::new().await;
    h.add_product("P-1", "5.00", 1000).await;
    let (url, read) = receiver_that_never_confirms().await;
    let _worker = h.spawn_worker(&[
        "--notify-webhook",
        url.as_str(),
        "--notify-timeout",
        "300ms",
        "--retry-initial-interval",
        "3s",
    ]);
    let all = orders("ORD-TOLD", 4, PaymentMethod::Card);
    for o in &all {
        h.submit(o).await;
    }
    for o in &all {
        step_is(&h, o.id(), Step::SendNotification, StepState::Retrying).await;
        // The confirmation went out unanswered: the cancel is refused.
        h.cli()
            .args(["order", "cancel", o.id().as_str(), "--timeout", "60s"])
            .assert()
            .code(6);
    }
    keep_promises(&h, &all).await;
    for o in &all {
        let status = stdout_json(
            &h.cli()
                .args(["-o", "json", "order", "status", o.id().as_str()])
                .output()
                .unwrap(),
        );
        assert_eq!(status["status"], "COMPLETED", "{status}");
        assert_eq!(status["notification"], "UNKNOWN", "{status}");
        assert_eq!(status["notified"], false, "{status}");
        assert_eq!(status["cancellation"]["outcome"], "refused", "{status}");
    }
    let told = read.lock().unwrap().clone();
    assert!(
        told.iter().all(|(_, kind)| kind == "CONFIRMATION"),
        "only confirmations reached the receiver: {told:?}"
    );
    let slow: String = sqlx::query_scalar(
        "SELECT last_error FROM notifications WHERE order_id = 'ORD-TOLD-0' AND kind = 'CONFIRMATION'",
    )
    .fetch_one(&h.db.pool)
    .await
    .unwrap();
    assert!(slow.contains("no answer within 300ms"), "{slow}");
}

/// Case 4: a lock held on `payments` used to time a healthy card's payment
/// out as a failed attempt (`PAYMENT_UNAVAILABLE`), and the customer's
/// notice carried the SDK's words.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lock_on_payments_is_waited_out_and_customers_read_no_internal_text() {
    let h = Harness::new().await;
    h.add_product("P-1", "5.00", 1000).await;
    let hook = Webhook::start(200).await;
    // One attempt per step: any attempt counted against the order fails it.
    let _worker = h.spawn_worker(&[
        "--retry-max-attempts",
        "1",
        "--notify-webhook",
        hook.url.as_str(),
    ]);
    let mut lock = h.db.pool.begin().await.unwrap();
    sqlx::query("LOCK TABLE payments IN ACCESS EXCLUSIVE MODE")
        .execute(&mut *lock)
        .await
        .unwrap();
    let cards = orders("ORD-LOCK", 3, PaymentMethod::Card);
    let unavailable = order(
        "ORD-LOCK-GW",
        PaymentMethod::CardUnavailable,
        &[("P-1", 1, "5.00")],
    );
    let all: Vec<Order> = cards.iter().cloned().chain([unavailable.clone()]).collect();
    for o in &all {
        h.submit(o).await;
    }
    for o in &all {
        step_is(&h, o.id(), Step::ProcessPayment, StepState::Waiting).await;
    }
    // Held past a step's time limit (30 s), which used to end the attempt.
    tokio::time::sleep(Duration::from_secs(35)).await;
    lock.commit().await.unwrap();

    keep_promises(&h, &all).await;
    for o in &cards {
        let view = h.client.outcome(o.id()).await.unwrap();
        assert_eq!(
            view.status.as_str(),
            "COMPLETED",
            "{}: {:?}",
            o.id(),
            view.failure
        );
        assert_eq!(
            view.step_view(Step::ProcessPayment).attempts,
            1,
            "{}",
            o.id()
        );
    }
    let failed = h.client.outcome(unavailable.id()).await.unwrap();
    assert_eq!(
        failed.failure.unwrap().code,
        FailureCode::PaymentUnavailable
    );
    let notices = hook.received().await;
    let told = notices
        .iter()
        .find(|n| n.body["orderId"] == "ORD-LOCK-GW" && n.body["kind"] == "FAILURE")
        .expect("the failure notice");
    assert_eq!(
        told.body["message"],
        FailureCode::PaymentUnavailable.customer_message(),
        "the customer reads words for them, not the worker's"
    );
}

/// A migrated database on a cluster of the test's own, which it may stop.
async fn private_database(cluster: &PostgresCluster) -> TestDb {
    let url = cluster.create_database("orderflow").await.unwrap();
    crate::support::orderflow()
        .args(["db", "migrate", "--database-url", &url])
        .assert()
        .success();
    let pool = sqlx::PgPool::connect(&url).await.unwrap();
    TestDb { url, pool }
}

/// Workflow tasks that followed a completed one with nothing in between:
/// the SDK keeping a long local activity's task alive (a heartbeat).
fn heartbeats(events: &[Value]) -> usize {
    events
        .windows(2)
        .filter(|w| {
            kind(&w[0]) == "WorkflowTaskCompleted" && kind(&w[1]) == "WorkflowTaskScheduled"
        })
        .count()
}

/// Case 5: while an order waits out a database outage, its history grows
/// by a bounded number of events: waits that grow with the outage, no
/// heartbeating workflow tasks for an ending that waits.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outage_adds_a_bounded_number_of_events_to_a_history() {
    let _heavy = crate::support::HEAVY.lock().await;
    let dir = tempfile::tempdir().unwrap();
    let cluster = PostgresCluster::start(dir.path(), false).await.unwrap();
    let port = cluster.port;
    let h = Harness::on(
        private_database(&cluster).await,
        &crate::support::temporal_address(),
    )
    .await;
    h.add_product("P-1", "5.00", 1000).await;
    let policy = RetryConfig {
        max_attempts: 100,
        initial_interval: Duration::from_millis(200),
        backoff_coefficient: 2.0,
        max_interval: Duration::from_secs(1),
    };
    let _worker = h.spawn_worker(&[
        "--retry-max-attempts",
        "100",
        "--retry-initial-interval",
        "200ms",
        "--retry-max-interval",
        "1s",
    ]);
    // Paying with a gateway that never answers: between attempts, always.
    let all = orders("ORD-LONG", 2, PaymentMethod::CardUnavailable);
    for o in &all {
        h.submit(o).await;
    }
    for o in &all {
        step_is(&h, o.id(), Step::ProcessPayment, StepState::Retrying).await;
    }
    let before: Vec<usize> = futures::future::join_all(all.iter().map(|o| history(&h, o.id())))
        .await
        .iter()
        .map(Vec::len)
        .collect();
    let started = std::time::Instant::now();
    cluster.stop();
    for o in &all {
        step_is(&h, o.id(), Step::ProcessPayment, StepState::Waiting).await;
    }
    // The second is cancelled during the outage: its ending waits too.
    h.client
        .signal_cancel(all[1].id(), "during the outage")
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_secs(40)).await;
    let cluster = PostgresCluster::start_at(dir.path(), Some(port), false)
        .await
        .unwrap();
    let outage = started.elapsed();
    h.client
        .signal_cancel(all[0].id(), "after the outage")
        .await
        .unwrap();
    keep_promises(&h, &all).await;

    // What a wait costs: a failed attempt's marker, a timer started and
    // fired, a workflow task scheduled, started and completed.
    let mut waits = 0;
    let mut elapsed = Duration::ZERO;
    while elapsed < outage {
        waits += 1;
        elapsed += policy.outage_backoff(waits, elapsed);
    }
    let bound = 6 * (waits as usize + 3);
    for (o, before) in all.iter().zip(before) {
        let events = history(&h, o.id()).await;
        assert_eq!(heartbeats(&events), 0, "{}: no heartbeating task", o.id());
        // Its ending adds a few more: markers, an upsert, the close.
        let grew = events.len() - before;
        assert!(
            grew <= bound + 12,
            "{}: {grew} events over a {outage:?} outage, more than {bound} (+12 to end)",
            o.id()
        );
    }
    cluster.stop();
}

/// Case 6: Temporal goes away under running commands: each says so in one
/// line (exit 8), nothing else reaches stderr under `-o json`, and `watch`
/// keeps trying until its `--timeout`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commands_tell_in_one_line_when_temporal_goes_away_and_watch_waits_for_it() {
    let dir = tempfile::tempdir().unwrap();
    let options = DevServerOptions {
        db_file: Some(dir.path().join("temporal.db")),
        ..DevServerOptions::default()
    };
    let server = TemporalDevServer::start(dir.path(), options.clone())
        .await
        .unwrap();
    let port = server.port;
    let h = Harness::on(crate::support::migrated_database().await, &server.address()).await;
    h.add_product("P-1", "5.00", 1000).await;
    let _worker = h.spawn_worker(&["--retry-initial-interval", "5s"]);
    let watched = order(
        "ORD-LOST-W",
        PaymentMethod::CardFlaky,
        &[("P-1", 1, "5.00")],
    );
    h.submit(&watched).await;
    // No worker polls this one's queue: a cancel of it waits.
    let stranded = order("ORD-LOST-C", PaymentMethod::Card, &[("P-1", 1, "5.00")]);
    h.client
        .start("nobody-polls-this", &stranded, false)
        .await
        .unwrap();

    let spawn = |args: &[&str]| {
        crate::support::command()
            .env("TEMPORAL_ADDRESS", &h.address)
            .env("DATABASE_URL", &h.db.url)
            .args(args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    let watch = spawn(&[
        "-o",
        "json",
        "order",
        "watch",
        "ORD-LOST-W",
        "--timeout",
        "120s",
    ]);
    let cancel = spawn(&["order", "cancel", "ORD-LOST-C"]);
    step_is(&h, watched.id(), Step::ProcessPayment, StepState::Retrying).await;
    eventually("the cancel to be sent", WAIT, || async {
        let view = h.client.recorded_status(stranded.id()).await.ok()?;
        let events = history(&h, stranded.id()).await;
        events
            .iter()
            .any(|e| kind(e) == "WorkflowExecutionSignaled")
            .then_some(view)
    })
    .await;
    server.kill();

    let cancel = tokio::task::spawn_blocking(move || cancel.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    let said = String::from_utf8_lossy(&cancel.stderr);
    assert_eq!(cancel.status.code(), Some(8), "{said}");
    // One error line (before it, the note that the cancellation went out
    // and waits, with its hint, may show): no dump.
    let errors: Vec<&str> = said
        .lines()
        .filter(|l| !l.starts_with("the cancellation of") && !l.starts_with("hint:"))
        .collect();
    assert_eq!(errors.len(), 1, "one line: {said}");
    assert!(
        said.contains("was sent") && said.contains("did not answer"),
        "{said}"
    );
    let status = crate::support::orderflow()
        .env("TEMPORAL_ADDRESS", &h.address)
        .args(["order", "status", "ORD-LOST-W"])
        .output()
        .unwrap();
    assert_eq!(status.status.code(), Some(8));
    // The error in a line, and what to check in another: no dump.
    let said = String::from_utf8_lossy(&status.stderr);
    let lines: Vec<&str> = said.trim().lines().collect();
    assert!(
        lines[0].starts_with("error: cannot reach Temporal"),
        "{said}"
    );
    assert!(lines[1..].iter().all(|l| l.starts_with("hint:")), "{said}");

    // Back within the watch's --timeout: it goes on to the order's end.
    eventually("the killed server's port to be free", WAIT, || async {
        std::net::TcpListener::bind(("127.0.0.1", port))
            .ok()
            .map(drop)
    })
    .await;
    let server = TemporalDevServer::start(
        dir.path(),
        DevServerOptions {
            preferred_port: Some(port),
            ..options
        },
    )
    .await
    .unwrap();
    let watch = tokio::task::spawn_blocking(move || watch.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    let stderr = String::from_utf8_lossy(&watch.stderr);
    assert_eq!(watch.status.code(), Some(0), "{stderr}");
    for line in stderr.lines() {
        assert!(
            serde_json::from_str::<Value>(line).is_ok(),
            "stderr under -o json is JSON: {line}"
        );
    }
    let stdout = String::from_utf8_lossy(&watch.stdout);
    let last: Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
    assert_eq!(last["status"], "COMPLETED", "{stdout}");
    h.client
        .request_cancellation(stranded.id(), "test over")
        .await
        .ok();
    server.stop();
}

/// Case 6: an order whose workflow task fails (here: its worker lacks the
/// key its payloads are encrypted with) is shown from its history, with why.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_names_why_an_orders_workflow_task_fails() {
    let mut h = Harness::new().await;
    h.add_product("P-1", "5.00", 1000).await;
    let dir = tempfile::tempdir().unwrap();
    let key_a = crate::crypto::key_file(dir.path(), "a.txt", &[crate::crypto::KEY_A]);
    let key_b = crate::crypto::key_file(dir.path(), "b.txt", &[crate::crypto::KEY_B]);
    h.client = crate::crypto::client_with(&h.address, &key_a).await;
    let mut worker = h.spawn_worker_with_env(&[], &[("ORDERFLOW_ENCRYPTION_KEY_FILE", &key_b)]);
    let stuck = order("ORD-STUCK", PaymentMethod::Card, &[("P-1", 1, "5.00")]);
    h.submit(&stuck).await;
    eventually("a failed workflow task", WAIT, || async {
        let events = history(&h, stuck.id()).await;
        events
            .iter()
            .any(|e| kind(e) == "WorkflowTaskFailed")
            .then_some(())
    })
    .await;
    let output = h
        .cli()
        .env("ORDERFLOW_ENCRYPTION_KEY_FILE", &key_a)
        .args(["-o", "json", "order", "status", "ORD-STUCK"])
        .output()
        .unwrap();
    let status = stdout_json(&output);
    assert_eq!(status["source"], "history", "{status}");
    let why = status["workflowTaskFailure"].as_str().unwrap_or_default();
    assert!(why.contains("key-a"), "{status}");
    let card = h
        .cli()
        .env("ORDERFLOW_ENCRYPTION_KEY_FILE", &key_a)
        .args(["order", "status", "ORD-STUCK"])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&card.stdout).contains("Stuck"));
    worker.child.kill().unwrap();
    worker.child.wait().unwrap();
    // A worker with the key finishes it.
    let _worker = h.spawn_worker_with_env(&[], &[("ORDERFLOW_ENCRYPTION_KEY_FILE", &key_a)]);
    keep_promises(&h, std::slice::from_ref(&stuck)).await;
}

/// Case 6: a worker started while PostgreSQL or Temporal is down waits for
/// it, alive and not ready, instead of exiting.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_started_before_its_dependencies_waits_for_them() {
    let dir = tempfile::tempdir().unwrap();
    let cluster = PostgresCluster::start(dir.path(), false).await.unwrap();
    let pg_port = cluster.port;
    let db = private_database(&cluster).await;
    let url = db.url.clone();
    cluster.stop();
    let temporal_port = crate::support::closed_port();
    let metrics = crate::support::closed_port();
    let mut worker = crate::support::command()
        .args(["worker", "--database-url", &url])
        .args(["--address", &format!("127.0.0.1:{temporal_port}")])
        .args(["--metrics-address", &format!("127.0.0.1:{metrics}")])
        .args(["--task-queue", "waits-for-its-dependencies"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let http = reqwest::Client::new();
    let probe = |path: &'static str| {
        let http = http.clone();
        async move {
            let r = http
                .get(format!("http://127.0.0.1:{metrics}{path}"))
                .send()
                .await
                .ok()?;
            Some((r.status().as_u16(), r.text().await.unwrap_or_default()))
        }
    };
    let waiting_for = |what: &'static str| {
        let probe = &probe;
        async move {
            eventually(
                &format!("/readyz to say it waits for {what}"),
                WAIT,
                || async {
                    let (code, text) = probe("/readyz").await?;
                    (code == 503 && text.contains(&format!("waiting for {what}"))).then_some(())
                },
            )
            .await;
            assert_eq!(probe("/healthz").await.map(|(c, _)| c), Some(200), "alive");
        }
    };
    waiting_for("PostgreSQL").await;
    assert!(worker.try_wait().unwrap().is_none(), "still running");
    let cluster = PostgresCluster::start_at(dir.path(), Some(pg_port), false)
        .await
        .unwrap();
    waiting_for("Temporal").await;
    let server = TemporalDevServer::start(
        dir.path(),
        DevServerOptions {
            preferred_port: Some(temporal_port),
            ..DevServerOptions::default()
        },
    )
    .await
    .unwrap();
    eventually("/readyz to say ready", WAIT, || async {
        (probe("/readyz").await?.0 == 200).then_some(())
    })
    .await;
    let _ = worker.kill();
    let _ = worker.wait();
    server.stop();
    cluster.stop();
}

/// Case 7: text from outside (workflow IDs, reasons, key IDs from payload
/// metadata, IDs in order files) never drives the terminal; `--query`
/// cannot reach workflows that are not orders; URLs keep their secrets.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn untrusted_text_reaches_the_terminal_escaped() {
    let h = Harness::new().await;
    let escape = "\u{1b}[31m";
    let queue = format!("nobody-{}", h.settings.task_queue);
    let forged = format!("ORD-ESC-{escape}red\nforged");
    temporal(
        &h,
        &[
            "workflow",
            "start",
            "--type",
            "OrderWorkflow",
            "--task-queue",
            &queue,
            "--workflow-id",
            &forged,
            "--input",
            "{}",
        ],
    );
    let listed = h
        .cli()
        .args([
            "order",
            "list",
            "--query",
            "WorkflowId STARTS_WITH 'ORD-ESC-'",
        ])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&listed.stdout);
    assert!(
        listed.status.success(),
        "{}",
        String::from_utf8_lossy(&listed.stderr)
    );
    assert!(
        text.contains("ORD-ESC-\\u{1b}[31mred\\u{a}forged"),
        "{text}"
    );
    assert!(!text.contains('\u{1b}') && !text.lines().any(|l| l.starts_with("forged")));

    // A value cannot close the query's parentheses to reach other workflows.
    let escaped = h
        .cli()
        .args([
            "order",
            "list",
            "--query",
            "WorkflowId = 'x') OR (WorkflowType != 'OrderWorkflow'",
        ])
        .output()
        .unwrap();
    assert_eq!(escaped.status.code(), Some(2));
    let invalid = h
        .cli()
        .args(["order", "list", "--query", "OrderStatus =="])
        .output()
        .unwrap();
    assert_eq!(invalid.status.code(), Some(2));
    let said = String::from_utf8_lossy(&invalid.stderr);
    assert_eq!(said.trim().lines().count(), 1, "{said}");
    assert!(said.starts_with("error: invalid --query"), "{said}");

    // A key ID in payload metadata, which anyone may write.
    let keyed = format!("ORD-KEYID-{}", h.settings.task_queue);
    temporal(
        &h,
        &[
            "workflow",
            "start",
            "--type",
            "OrderWorkflow",
            "--task-queue",
            &queue,
            "--workflow-id",
            &keyed,
            "--input",
            "\"x\"",
            "--input-meta",
            "encoding=binary/encrypted",
            "--input-meta",
            &format!("encryption-key-id={escape}evil"),
        ],
    );
    let status = h.cli().args(["order", "status", &keyed]).output().unwrap();
    let said = String::from_utf8_lossy(&status.stderr);
    assert_eq!(
        status.status.code(),
        Some(2),
        "a key this setup lacks: {said}"
    );
    assert!(
        said.contains("\\u{1b}[31mevil") && !said.contains('\u{1b}'),
        "{said}"
    );

    // An ID in an order file.
    let (_dir, file) = write_temp(
        "orders.json",
        &serde_json::json!({"id": format!("{escape}X\nerror: forged"), "customerID": "C-1",
            "totalAmount": "5.00", "items": [{"productID": "P-1", "quantity": 1, "unitPrice": "5.00"}]})
        .to_string(),
    );
    let created = h
        .cli()
        .args(["order", "create", "--file"])
        .arg(&file)
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&created.stderr);
    assert_eq!(created.status.code(), Some(2), "{said}");
    assert!(
        !said.contains('\u{1b}') && !said.contains("\nerror: forged"),
        "{said}"
    );

    // A cancel reason given by a signal.
    h.add_product("P-1", "5.00", 1000).await;
    let _worker = h.spawn_worker(&["--retry-initial-interval", "3s"]);
    let flaky = order(
        "ORD-ESC-REASON",
        PaymentMethod::CardFlaky,
        &[("P-1", 1, "5.00")],
    );
    h.submit(&flaky).await;
    step_is(&h, flaky.id(), Step::ProcessPayment, StepState::Retrying).await;
    let reason =
        serde_json::json!({ "reason": format!("{escape}wiped\nstatus: COMPLETED") }).to_string();
    temporal(
        &h,
        &[
            "workflow",
            "signal",
            "--workflow-id",
            "ORD-ESC-REASON",
            "--name",
            "cancel",
            "--input",
            &reason,
        ],
    );
    keep_promises(&h, std::slice::from_ref(&flaky)).await;
    let card = h
        .cli()
        .args(["order", "status", "ORD-ESC-REASON"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&card.stdout);
    assert!(
        !text.contains('\u{1b}') && !text.lines().any(|l| l.starts_with("status:")),
        "{text}"
    );

    // A webhook URL's path may hold a token: --help shows none of it.
    let help = crate::support::orderflow()
        .env(
            "ORDERFLOW_NOTIFY_WEBHOOK",
            "https://hooks.example/T0K3N-in-the-path",
        )
        .args(["worker", "--help"])
        .output()
        .unwrap();
    assert!(!String::from_utf8_lossy(&help.stdout).contains("T0K3N"));
    for _ in 0..2 {
        temporal_cli(
            &h.address,
            &["workflow", "terminate", "--workflow-id", &forged],
        );
        temporal_cli(
            &h.address,
            &["workflow", "terminate", "--workflow-id", &keyed],
        );
    }
}

/// Case 8: an environment variable set to nothing counts as unset.
#[tokio::test]
async fn an_empty_environment_variable_is_unset() {
    let listed = crate::support::orderflow()
        .env("DATABASE_URL", "")
        .args(["order", "list"])
        .output()
        .unwrap();
    assert_eq!(listed.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&listed.stderr).contains("no database configured"));
    let status = crate::support::orderflow()
        .env("ORDERFLOW_ENCRYPTION_KEY_FILE", "")
        .env(
            "TEMPORAL_ADDRESS",
            format!("127.0.0.1:{}", crate::support::closed_port()),
        )
        .args(["order", "status", "ORD-1"])
        .output()
        .unwrap();
    assert_eq!(
        status.status.code(),
        Some(8),
        "{}",
        String::from_utf8_lossy(&status.stderr)
    );
}
