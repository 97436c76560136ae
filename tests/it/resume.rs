//! Interrupt and resume, through the real binary: Ctrl-C while a batch is
//! submitted, while orders are followed, while a cancellation waits; and
//! the ways `order watch` names many orders (a file, stdin, a selection).

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use orderflow::domain::WorkflowId;
use serde_json::Value;

use crate::support::stack::{Harness, eventually, fast_retry};
use crate::support::{command, stdout_json, write_temp};

/// `n` orders without an `id`, many of them with the same content.
fn unnamed_orders(customer: &str, n: usize) -> String {
    let orders: Vec<Value> = (0..n)
        .map(|i| {
            let quantity = i % 3 + 1;
            serde_json::json!({
                "customerID": customer,
                "paymentMethod": "card_flaky",
                "totalAmount": format!("{quantity}.00"),
                "items": [{"productID": "P-1", "quantity": quantity, "unitPrice": "1.00"}],
            })
        })
        .collect();
    serde_json::to_string(&orders).unwrap()
}

/// The IDs `order create --dry-run -o json` gives a file's orders.
fn ids_of(h: &Harness, file: &std::path::Path) -> Vec<String> {
    let out = h
        .cli()
        .args(["order", "create", "--dry-run", "-o", "json", "--file"])
        .arg(file)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let orders = stdout_json(&out);
    let list = match orders.as_array() {
        Some(all) => all.clone(),
        None => vec![orders],
    };
    list.iter()
        .map(|o| o["id"].as_str().unwrap().to_owned())
        .collect()
}

fn interrupt(child: &Child) {
    assert!(
        std::process::Command::new("kill")
            .args(["-INT", &child.id().to_string()])
            .status()
            .unwrap()
            .success()
    );
}

async fn exit_code(child: &mut Child) -> Option<i32> {
    eventually("the command to exit", Duration::from_secs(60), || {
        let status = child.try_wait().unwrap();
        async move { status }
    })
    .await
    .code()
}

/// Reads a child's stream line by line on a thread of its own.
fn lines_of(stream: impl Read + Send + 'static) -> mpsc::Receiver<String> {
    let (send, receive) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stream).lines().map_while(Result::ok) {
            if send.send(line).is_err() {
                break;
            }
        }
    });
    receive
}

/// The orders a `watch -o jsonl` child reports, once it has reported
/// `count` of them; then it is interrupted (exit 130).
async fn followed(mut watch: Child, count: usize) -> BTreeSet<String> {
    let stdout = lines_of(watch.stdout.take().unwrap());
    let mut seen = BTreeSet::new();
    let mut lines = Vec::new();
    eventually("the orders' records", Duration::from_secs(60), || {
        for line in stdout.try_iter() {
            let record: Value = serde_json::from_str(&line).unwrap();
            seen.insert(record["orderId"].as_str().unwrap().to_owned());
            lines.push(line);
        }
        let done = seen.len() >= count;
        async move { done.then_some(()) }
    })
    .await;
    interrupt(&watch);
    assert_eq!(exit_code(&mut watch).await, Some(130), "{lines:#?}");
    seen
}

/// The binary, for a harness, as a child with piped output.
fn spawn(h: &Harness, args: &[&str]) -> Child {
    command()
        .env("TEMPORAL_ADDRESS", &h.address)
        .env("DATABASE_URL", &h.db.url)
        .env("ORDERFLOW_TASK_QUEUE", &h.settings.task_queue)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctrl_c_during_submission_says_what_started_and_running_it_again_submits_the_rest() {
    // No worker: the orders are only started.
    let h = Harness::new().await;
    let (_dir, file) = write_temp("batch.json", &unnamed_orders("CUST-RESUME", 2000));
    let ids = ids_of(&h, &file);
    assert_eq!(ids.len(), 2000);
    assert_eq!(ids, ids_of(&h, &file), "the same IDs each time");
    let distinct: std::collections::HashSet<&String> = ids.iter().collect();
    assert_eq!(distinct.len(), 2000, "the same content gets IDs of its own");

    let path = file.to_str().unwrap();
    let mut create = spawn(&h, &["order", "create", "--file", path]);
    let first = WorkflowId::parse(&ids[0]).unwrap();
    eventually("the first order to start", Duration::from_secs(60), || {
        let client = h.client.clone();
        let first = first.clone();
        async move { client.describe(&first).await.unwrap().map(|_| ()) }
    })
    .await;
    interrupt(&create);
    let stderr = lines_of(create.stderr.take().unwrap());
    assert_eq!(exit_code(&mut create).await, Some(130));
    let said: Vec<String> = stderr.iter().collect();
    let told = said
        .iter()
        .find(|l| l.starts_with("interrupted: "))
        .unwrap_or_else(|| panic!("{said:#?}"));
    // "interrupted: S of 2000 orders started, R not. Run the same command again …"
    let started: usize = told["interrupted: ".len()..]
        .split(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(started < 2000, "{told}");
    assert!(
        told.contains(&format!(
            "{started} of 2000 orders started, {} not",
            2000 - started
        )) && told.contains("Run the same command again"),
        "{told}"
    );

    let again = h
        .cli()
        .args(["order", "create", "--file", path])
        .output()
        .unwrap();
    assert!(again.status.success(), "{again:?}");
    let stderr = String::from_utf8_lossy(&again.stderr);
    assert!(
        stderr.contains(&format!(
            "{} submitted, {started} already existed",
            2000 - started
        )),
        "{stderr}"
    );
    let stdout = String::from_utf8_lossy(&again.stdout);
    assert_eq!(stdout.lines().count(), 2000);
    assert_eq!(stdout.matches("already exists").count(), started);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctrl_c_while_max_in_flight_waits_for_a_place_starts_no_more_and_says_so() {
    // No worker: the two orders started never end, so the third waits for
    // a place that never comes, until Ctrl-C.
    let h = Harness::new().await;
    let (_dir, file) = write_temp("paced.json", &unnamed_orders("CUST-PACED", 10));
    let ids = ids_of(&h, &file);
    let path = file.to_str().unwrap();
    let mut create = spawn(
        &h,
        &["order", "create", "--max-in-flight", "2", "--file", path],
    );
    for id in &ids[..2] {
        let id = WorkflowId::parse(id).unwrap();
        eventually(
            "the first two orders to start",
            Duration::from_secs(60),
            || {
                let client = h.client.clone();
                let id = id.clone();
                async move { client.describe(&id).await.unwrap().map(|_| ()) }
            },
        )
        .await;
    }
    interrupt(&create);
    let stderr = lines_of(create.stderr.take().unwrap());
    assert_eq!(exit_code(&mut create).await, Some(130));
    let said: Vec<String> = stderr.iter().collect();
    assert!(
        said.iter()
            .any(|l| l.starts_with("interrupted: 2 of 10 orders started, 8 not")),
        "{said:#?}"
    );
    for id in &ids[2..] {
        let id = WorkflowId::parse(id).unwrap();
        assert!(
            h.client.describe(&id).await.unwrap().is_none(),
            "{id} started"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_follows_a_file_a_selection_and_stdin_and_ctrl_c_gives_a_command_that_works() {
    let mut h = Harness::new().await;
    h.add_product("P-1", "1.00", 100).await;
    // card_flaky fails its first attempt; the retry waits ten minutes: the
    // orders stay open while the test looks at them.
    h.settings.retry = fast_retry(3);
    h.settings.retry.initial_interval = Duration::from_secs(600);
    h.settings.retry.max_interval = Duration::from_secs(600);
    let customer = format!("CUST-{}", &uuid::Uuid::now_v7().simple().to_string()[20..]);
    let (dir, file) = write_temp("open.json", &unnamed_orders(&customer, 3));
    let path = file.to_str().unwrap().to_owned();
    let ids = ids_of(&h, &file);

    h.with_worker(async {
        let out = h
            .cli()
            .args(["order", "create", "--file", &path])
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("3 submitted"), "{stderr}");
        eventually("three open rows", Duration::from_secs(60), || {
            let pool = h.db.pool.clone();
            let customer = customer.clone();
            async move {
                let n: i64 = sqlx::query_scalar(
                    "SELECT count(*) FROM orders WHERE customer_id = $1 AND status = 'INVENTORY_RESERVED'",
                )
                .bind(customer)
                .fetch_one(&pool)
                .await
                .unwrap();
                (n == 3).then_some(())
            }
        })
        .await;

        // The selection `order list` makes, open orders included.
        let all: BTreeSet<String> = ids.iter().cloned().collect();
        for status in [
            &["--status", "open"][..],
            &["--status", "completed,inventory_reserved"],
            &["--status", "paid", "--status", "INVENTORY_RESERVED"],
        ] {
            let mut args = vec!["order", "watch", "--customer", &customer, "-o", "jsonl"];
            args.extend_from_slice(status);
            let watch = spawn(&h, &args);
            assert_eq!(followed(watch, 3).await, all, "{status:?}");
        }
        let listed = h
            .cli()
            .args([
                "order",
                "list",
                "--status",
                "open",
                "--customer",
                &customer,
                "-o",
                "json",
            ])
            .output()
            .unwrap();
        assert_eq!(stdout_json(&listed).as_array().unwrap().len(), 3);
        let none = h
            .cli()
            .args([
                "order",
                "watch",
                "--status",
                "cancelled",
                "--customer",
                &customer,
            ])
            .output()
            .unwrap();
        assert_eq!(none.status.code(), Some(0), "{none:?}");
        assert!(String::from_utf8_lossy(&none.stderr).contains("No orders match."));

        // IDs on stdin.
        let mut piped = command()
            .env("TEMPORAL_ADDRESS", &h.address)
            .env("ORDERFLOW_TASK_QUEUE", &h.settings.task_queue)
            .args(["order", "watch", "-", "-o", "jsonl"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        writeln!(
            piped.stdin.take().unwrap(),
            "# two of them\n{}\n\n{}",
            ids[0],
            ids[1]
        )
        .unwrap();
        assert_eq!(followed(piped, 2).await, ids[..2].iter().cloned().collect());

        // The orders of a file; Ctrl-C gives the command that follows them again.
        let mut watch = spawn(&h, &["order", "watch", "--file", &path]);
        let stdout = lines_of(watch.stdout.take().unwrap());
        let stderr = lines_of(watch.stderr.take().unwrap());
        // Waited for without blocking: the worker runs on this task.
        eventually("a change line", Duration::from_secs(60), || {
            let line = stdout.try_recv().ok();
            async move { line }
        })
        .await;
        interrupt(&watch);
        assert_eq!(exit_code(&mut watch).await, Some(130));
        let said: Vec<String> = stderr.iter().collect();
        let at = said
            .iter()
            .position(|l| l == "interrupted: 3 orders keep running; follow them again with:")
            .unwrap_or_else(|| panic!("{said:#?}"));
        let resume = said[at + 1].trim();
        assert!(!resume.contains('…'), "{resume}");
        // The binary as it can be run from here (it is not on PATH).
        let words = shell_words::split(resume).unwrap();
        assert_eq!(
            std::path::Path::new(&words[0]).canonicalize().unwrap(),
            assert_cmd::cargo::cargo_bin("orderflow").canonicalize().unwrap(),
            "{resume}"
        );
        assert_eq!(words[1..], ["order", "watch", "--file", path.as_str()]);
        let mut args: Vec<&str> = words[1..].iter().map(String::as_str).collect();
        args.extend(["-o", "jsonl"]);
        assert_eq!(followed(spawn(&h, &args), 3).await, all);

        // A file whose orders were never submitted.
        let other = dir.path().join("never.json");
        std::fs::write(&other, unnamed_orders("CUST-NEVER", 2)).unwrap();
        let out = h
            .cli()
            .args(["order", "watch", "--file"])
            .arg(&other)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(3), "{out:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("2 of 2 orders were not found")
                && stderr.contains(&format!(
                    "orderflow order create --file {}",
                    other.display()
                )),
            "{stderr}"
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_watched_at_a_terminal_prints_one_summary_line_before_the_view() {
    let h = Harness::new().await;
    h.add_product("P-1", "1.00", 100).await;
    let orders = unnamed_orders("CUST-TTY", 6).replace("card_flaky", "card");
    let (_dir, file) = write_temp("tty.json", &orders);
    let _worker = h.spawn_worker(&[]);
    let script = format!(
        "stty rows 30 cols 100 && exec {} order create --watch --file {}",
        assert_cmd::cargo::cargo_bin("orderflow").display(),
        file.display()
    );
    let out = std::process::Command::new("script")
        .args(["-qfec", &script, "/dev/null"])
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("TERM", "xterm")
        .env("TEMPORAL_ADDRESS", &h.address)
        .env("ORDERFLOW_TASK_QUEUE", &h.settings.task_queue)
        .stdin(Stdio::null())
        .output()
        .expect("script (util-linux) runs");
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(text.contains("6 submitted"), "{text}");
    assert!(
        !text.contains(" submitted  http"),
        "no line per order:\n{text}"
    );
    assert!(text.contains("6 orders in "), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancel_no_worker_takes_says_it_was_sent_and_ctrl_c_says_so_too() {
    // No worker polls this queue.
    let h = Harness::new().await;
    h.submit(&crate::support::stack::order(
        "ORD-CANCEL-IDLE",
        orderflow::domain::PaymentMethod::Card,
        &[("P-1", 1, "5.00")],
    ))
    .await;
    let queue = h.settings.task_queue.clone();
    // PENDING, it has no row yet: `--status open` finds it in Temporal.
    eventually(
        "watch --status open to follow it",
        Duration::from_secs(60),
        || {
            let out = h
                .cli()
                .args(["order", "watch", "--status", "open", "--timeout", "1s"])
                .output()
                .unwrap();
            async move { (out.status.code() == Some(7)).then_some(()) }
        },
    )
    .await;
    let mut cancel = spawn(&h, &["order", "cancel", "ORD-CANCEL-IDLE"]);
    let stderr = lines_of(cancel.stderr.take().unwrap());
    let mut said = Vec::new();
    eventually("the no-worker hint", Duration::from_secs(60), || {
        said.extend(stderr.try_iter());
        let found = said
            .iter()
            .any(|l| l.contains("no worker polls task queue"));
        async move { found.then_some(()) }
    })
    .await;
    assert!(
        said.iter()
            .any(|l| l
                == "the cancellation of ORD-CANCEL-IDLE was sent; waiting for it to take effect"),
        "{said:#?}"
    );
    assert!(
        said.iter()
            .any(|l| l.contains(&format!("orderflow worker --task-queue {queue}"))),
        "{said:#?}"
    );
    interrupt(&cancel);
    assert_eq!(exit_code(&mut cancel).await, Some(130));
    said.extend(stderr.iter());
    assert!(
        said.iter().any(|l| l.starts_with(
            "interrupted: the cancellation of ORD-CANCEL-IDLE was sent; it takes effect when a worker runs the order"
        )),
        "{said:#?}"
    );
}
