//! `order status ID --timeline`: an order's life from its history and the
//! database, on the real stack.

use orderflow::domain::{OrderStatus, PaymentMethod};

use crate::support::stack::{Harness, order};
use crate::support::stdout_json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_timeline_shows_retries_compensation_and_money() {
    let h = Harness::new().await;
    h.add_product("P-1", "5.00", 100).await;
    let _worker = h.spawn_worker(&[
        "--retry-initial-interval",
        "100ms",
        "--retry-max-attempts",
        "5",
    ]);
    let flaky = order(
        "ORD-TL-FLAKY",
        PaymentMethod::CardFlaky,
        &[("P-1", 2, "5.00")],
    );
    let declined = order(
        "ORD-TL-DECLINED",
        PaymentMethod::CardDeclined,
        &[("P-1", 1, "5.00")],
    );
    for o in [&flaky, &declined] {
        h.submit(o).await;
    }
    assert_eq!(
        h.client.outcome(flaky.id()).await.unwrap().status,
        OrderStatus::Completed
    );
    assert_eq!(
        h.client.outcome(declined.id()).await.unwrap().status,
        OrderStatus::Failed
    );

    let out = h
        .cli()
        .args([
            "order",
            "status",
            "ORD-TL-FLAKY",
            "--timeline",
            "-o",
            "json",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let doc = stdout_json(&out);
    assert_eq!(doc["status"], "COMPLETED");
    assert_eq!(doc["closed"], "completed");
    let steps = doc["steps"].as_array().unwrap();
    let names: Vec<&str> = steps
        .iter()
        .map(|s| s["activity"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "settings",
            "create_order",
            "reserve_inventory",
            "process_payment",
            "send_notification"
        ],
        "{doc:#}"
    );
    let payment = &steps[3];
    assert_eq!(payment["attempts"], 3, "{doc:#}");
    assert_eq!(payment["outcome"], "done");
    assert!(payment["retryWaitMs"].as_u64().unwrap() >= 100, "{doc:#}");
    assert_eq!(payment["databaseWaitMs"], 0);
    let effects = &doc["effects"];
    assert_eq!(effects["payments"][0]["status"], "CAPTURED");
    assert_eq!(effects["payments"][0]["amount"], "10.00");
    assert_eq!(effects["reservations"][0]["status"], "RESERVED");
    assert_eq!(effects["notifications"][0]["kind"], "CONFIRMATION");

    // In text: a table, the waits, and what it did to the money.
    let text = h
        .cli()
        .args(["order", "status", "ORD-TL-DECLINED", "--timeline"])
        .output()
        .unwrap();
    assert_eq!(text.status.code(), Some(0), "{text:?}");
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(text.starts_with("ORD-TL-DECLINED · FAILED · "), "{text}");
    assert!(text.contains("process_payment"), "{text}");
    assert!(text.contains("failed: "), "{text}");
    assert!(text.contains("(compensation)"), "{text}");
    assert!(text.contains("Waits: "), "{text}");
    assert!(text.contains("Money: declined 5.00 USD at +"), "{text}");
    assert!(text.contains("Stock: P-1 ×1 reserved at +"), "{text}");
    assert!(text.contains(", released at +"), "{text}");
    assert!(text.contains("Notices: FAILURE SENT at +"), "{text}");

    // Without a database: the history alone, and a note on what is missing.
    let bare = h
        .cli()
        .env_remove("DATABASE_URL")
        .args([
            "order",
            "status",
            "ORD-TL-DECLINED",
            "--timeline",
            "-o",
            "json",
        ])
        .output()
        .unwrap();
    assert_eq!(bare.status.code(), Some(0), "{bare:?}");
    assert_eq!(stdout_json(&bare)["effects"], serde_json::Value::Null);

    h.cli()
        .args(["order", "status", "ORD-TL-NONE", "--timeline"])
        .assert()
        .code(3);
}
