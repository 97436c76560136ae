//! `order watch` and `order create --watch` on the real binary: JSON Lines
//! and their record types, when changes happened, the hint for an order no
//! worker picks up, Ctrl-C, and the live view on a real terminal (a pty).

use std::io::{BufRead, BufReader, Read};
use std::sync::mpsc;
use std::time::Duration;

use orderflow::domain::PaymentMethod;
use serde_json::Value;

use crate::support::stack::{Harness, eventually, order};
use crate::support::{stdout_json, write_temp};

fn json_lines(output: &std::process::Output) -> Vec<Value> {
    let text = String::from_utf8_lossy(&output.stdout);
    text.lines()
        .map(|l| {
            serde_json::from_str(l).unwrap_or_else(|e| {
                panic!(
                    "not a JSON line ({e}): {l}\nstderr:\n{}",
                    String::from_utf8_lossy(&output.stderr)
                )
            })
        })
        .collect()
}

fn order_file(ids_and_methods: &[(&str, &str)]) -> String {
    let orders: Vec<Value> = ids_and_methods
        .iter()
        .map(|(id, method)| {
            serde_json::json!({"id": id, "customerID": "CUST-9", "paymentMethod": method,
                "totalAmount": "5.00",
                "items": [{"productID": "P-1", "quantity": 1, "unitPrice": "5.00"}]})
        })
        .collect();
    Value::Array(orders).to_string()
}

/// `updatedAt` of `order status -o json`.
fn updated_at(h: &Harness, id: &str) -> String {
    let status = stdout_json(
        &h.cli()
            .args(["order", "status", id, "-o", "json"])
            .output()
            .unwrap(),
    );
    status["updatedAt"].as_str().expect("updatedAt").to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_lines_tell_records_apart_and_date_changes_when_they_happened() {
    let h = Harness::new().await;
    h.add_product("P-1", "5.00", 10).await;
    let _worker = h.spawn_worker(&["--retry-initial-interval", "300ms"]);
    let (_dir, file) = write_temp(
        "o.json",
        &order_file(&[("ORD-JL-FLAKY", "card_flaky"), ("ORD-JL-OK", "card")]),
    );
    let out = h
        .cli()
        .args(["-o", "jsonl", "order", "create", "--watch", "--file"])
        .arg(&file)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines = json_lines(&out);
    // The submissions first, then the changes, each saying which it is.
    assert_eq!(lines[0]["type"], "created");
    assert_eq!(lines[1]["type"], "created");
    assert_eq!(lines[0]["status"], "PENDING");
    assert!(
        lines[2..].iter().all(|l| l["type"] == "change"),
        "{lines:#?}"
    );
    // A retry says which attempt of how many, when the next one runs, why.
    let retry = lines
        .iter()
        .find(|l| l["stepState"] == "retrying")
        .unwrap_or_else(|| panic!("the retries show: {lines:#?}"));
    assert_eq!(retry["orderId"], "ORD-JL-FLAKY");
    assert_eq!(retry["maxAttempts"], 3, "the worker's default policy");
    assert!(retry["nextAttemptAt"].is_string(), "{retry}");
    assert!(retry["lastError"].is_string(), "{retry}");
    for id in ["ORD-JL-FLAKY", "ORD-JL-OK"] {
        let changes: Vec<&Value> = lines[2..].iter().filter(|l| l["orderId"] == id).collect();
        let last = changes.last().expect("changes of each order");
        assert_eq!(last["status"], "COMPLETED", "{changes:#?}");
        // Every status the order went through, in order, each once.
        let mut statuses: Vec<&str> = changes
            .iter()
            .map(|c| c["status"].as_str().unwrap())
            .collect();
        statuses.dedup();
        assert_eq!(
            statuses,
            [
                "PENDING",
                "CREATED",
                "INVENTORY_RESERVED",
                "PAID",
                "COMPLETED"
            ],
            "{changes:#?}"
        );
        // `at` is the order's own time of the change: the last one is the
        // moment the order ended, as `order status` has it.
        assert_eq!(last["at"].as_str(), Some(updated_at(&h, id).as_str()));
        let times: Vec<chrono::DateTime<chrono::Utc>> = changes
            .iter()
            .map(|c| c["at"].as_str().unwrap().parse().unwrap())
            .collect();
        assert!(times.is_sorted(), "{changes:#?}");
    }

    // Watching an order that ended before: its end, dated when it ended
    // (not when watch printed it), the same under -o json and -o jsonl.
    let ended = updated_at(&h, "ORD-JL-OK");
    let mut seen = Vec::new();
    for format in ["json", "jsonl"] {
        let out = h
            .cli()
            .args(["order", "watch", "ORD-JL-OK", "-o", format])
            .output()
            .unwrap();
        assert!(out.status.success());
        let lines = json_lines(&out);
        // Every status it went through, the end last, dated when it ended.
        let statuses: Vec<&str> = lines
            .iter()
            .map(|l| l["status"].as_str().unwrap())
            .collect();
        assert_eq!(
            statuses,
            [
                "PENDING",
                "CREATED",
                "INVENTORY_RESERVED",
                "PAID",
                "COMPLETED"
            ],
            "{lines:#?}"
        );
        assert!(lines.iter().all(|l| l["type"] == "change"));
        let last = lines.last().unwrap();
        assert_eq!(last["at"].as_str(), Some(ended.as_str()));
        seen.push(lines.clone());
    }
    assert_eq!(seen[0], seen[1]);

    // `create -o jsonl` without --watch: one record per order.
    let (_dir, file) = write_temp(
        "more.json",
        &order_file(&[("ORD-JL-2", "card"), ("ORD-JL-3", "card")]),
    );
    let out = h
        .cli()
        .args(["order", "create", "-o", "jsonl", "--file"])
        .arg(&file)
        .output()
        .unwrap();
    assert!(out.status.success());
    let created = json_lines(&out);
    assert_eq!(created.len(), 2);
    assert!(created.iter().all(|c| c["type"] == "created"));
    // A command with one document prints it as with json.
    let status = stdout_json(
        &h.cli()
            .args(["order", "status", "ORD-JL-OK", "-o", "jsonl"])
            .output()
            .unwrap(),
    );
    assert_eq!(status["status"], "COMPLETED");
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_order_no_worker_picks_up_gets_a_hint_and_ctrl_c_says_how_to_resume() {
    // No worker polls this harness's task queue.
    let h = Harness::new().await;
    let queue = h.settings.task_queue.clone();
    h.submit(&order(
        "ORD-NO-WORKER",
        PaymentMethod::Card,
        &[("P-1", 1, "5.00")],
    ))
    .await;
    let mut watch = crate::support::command()
        .env("TEMPORAL_ADDRESS", &h.address)
        .env("ORDERFLOW_TASK_QUEUE", &queue)
        .args(["order", "watch", "ORD-NO-WORKER"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = lines_of(watch.stderr.take().unwrap());
    let hint = format!("no worker polls task queue {queue} in namespace default");
    let mut said = Vec::new();
    eventually("the hint", Duration::from_secs(60), || {
        said.extend(stderr.try_iter());
        let found = said.iter().any(|l| l.contains(&hint));
        async move { found.then_some(()) }
    })
    .await;
    assert!(
        said.iter().any(|l| l.contains("still PENDING")
            && l.contains(&format!("orderflow worker --task-queue {queue}"))),
        "{said:#?}"
    );

    assert!(
        std::process::Command::new("kill")
            .args(["-INT", &watch.id().to_string()])
            .status()
            .unwrap()
            .success()
    );
    let status = eventually("watch to exit", Duration::from_secs(30), || {
        let status = watch.try_wait().unwrap();
        async move { status }
    })
    .await;
    assert_eq!(status.code(), Some(130));
    said.extend(stderr.iter());
    assert!(
        said.windows(2).any(|l| l[0]
            == "interrupted: 1 order keeps running; follow it again with:"
            && l[1].ends_with("/orderflow order watch ORD-NO-WORKER")),
        "{said:#?}"
    );
}

/// ANSI escape sequences: colours, cursor moves, clears.
fn escapes(text: &str) -> Vec<&str> {
    let mut found = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find('\x1b') {
        let tail = &rest[start..];
        let end = tail
            .char_indices()
            .skip(1)
            .find(|(_, c)| c.is_ascii_alphabetic())
            .map_or(tail.len(), |(i, c)| i + c.len_utf8());
        found.push(&tail[..end]);
        rest = &tail[end..];
    }
    found
}

/// The live view on a real 60 × 12 terminal (`script` gives the binary a
/// pty): no frame is taller than the terminal leaves room for, no line
/// wider than it, bars are coloured by outcome, a batch ends with its
/// summary and the cursor is shown again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_live_view_fits_a_small_terminal() {
    let h = Harness::new().await;
    h.add_product("P-1", "5.00", 100).await;
    let _worker = h.spawn_worker(&["--retry-initial-interval", "300ms"]);
    let ids: Vec<String> = (0..15)
        .map(|i| format!("ORD-PTY-LONG-NAME-{i:02}"))
        .collect();
    for (i, id) in ids.iter().enumerate() {
        let method = match i % 3 {
            0 => PaymentMethod::CardFlaky,
            1 => PaymentMethod::CardDeclined,
            _ => PaymentMethod::Card,
        };
        h.submit(&order(id, method, &[("P-1", 1, "5.00")])).await;
    }
    // The view is on stderr, the terminal; the data (each order's end, as
    // long as it is) on stdout, a file here.
    let data = tempfile::NamedTempFile::new().unwrap();
    let watch = format!(
        "stty rows 12 cols 60 && exec {} order watch {} > {}",
        assert_cmd::cargo::cargo_bin("orderflow").display(),
        ids.join(" "),
        data.path().display()
    );
    let out = std::process::Command::new("script")
        .args(["-qfec", &watch, "/dev/null"])
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("TERM", "xterm")
        .env("TEMPORAL_ADDRESS", &h.address)
        .env("ORDERFLOW_TASK_QUEUE", &h.settings.task_queue)
        .stdin(std::process::Stdio::null())
        .output()
        .expect("script (util-linux) runs");
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(4), "one order failed:\n{text}");

    for escape in escapes(&text) {
        // Frames move up over the last one: never more than 11 lines.
        if let Some(n) = escape
            .strip_prefix("\x1b[")
            .and_then(|e| e.strip_suffix('A'))
        {
            assert!(n.parse::<usize>().unwrap() <= 11, "a frame of {n} lines");
        }
    }
    for line in text.split(['\n', '\r']) {
        let plain = console::strip_ansi_codes(line);
        assert!(
            console::measure_text_width(&plain) <= 60,
            "wider than 60 columns: {plain:?}"
        );
    }
    assert!(text.contains("\x1b[32m"), "completed in green:\n{text}");
    assert!(text.contains("\x1b[31m"), "failed in red:\n{text}");
    assert!(text.contains("15 orders in "), "{text}");
    assert!(
        text.contains(": 10 completed, 5 failed, 0 cancelled"),
        "{text}"
    );
    assert!(text.contains("\x1b[?25h"), "the cursor is shown again");
    // The data goes to stdout whole: each order's end.
    let data = std::fs::read_to_string(data.path()).unwrap();
    assert_eq!(data.lines().count(), 15, "{data}");
    assert!(data.contains("ORD-PTY-LONG-NAME-01 FAILED PAYMENT_DECLINED: card was declined\n"));

    // NO_COLOR, at 40 columns: the same view without colour, every line
    // (rows, the total line, the summary) within the width.
    let watch = watch.replace("cols 60", "cols 40");
    let out = std::process::Command::new("script")
        .args(["-qfec", &watch, "/dev/null"])
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("TERM", "xterm")
        .env("NO_COLOR", "1")
        .env("TEMPORAL_ADDRESS", &h.address)
        .env("ORDERFLOW_TASK_QUEUE", &h.settings.task_queue)
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        escapes(&text).iter().all(|e| !e.ends_with('m')),
        "no colour under NO_COLOR:\n{text}"
    );
    for line in text.split(['\n', '\r']) {
        let plain = console::strip_ansi_codes(line);
        assert!(
            console::measure_text_width(&plain) <= 40,
            "wider than 40 columns: {plain:?}"
        );
    }
    assert!(text.contains("15 orders in "), "{text}");
}
