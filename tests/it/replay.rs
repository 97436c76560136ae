//! Replay: committed histories of real orders are replayed against today's
//! workflow code, so a change that would break running workflows fails CI.
//!
//! Re-record (after a deliberate, versioned change) with
//! `cargo test --test it replay::record_histories -- --ignored`.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use orderflow::codec::{Codec, Keyring};
use temporalio_common::data_converters::{
    DataConverter, DefaultFailureConverter, PayloadConverter,
};

use orderflow::domain::{OrderStatus, PaymentMethod};
use orderflow::workflow::OrderWorkflow;
use orderflow::workflow::state::StepState;
use temporalio_client::{WorkflowFetchHistoryOptions, WorkflowHistory};
use temporalio_sdk::workflow_replayer::{WorkflowReplayer, WorkflowReplayerOptions};

use crate::support::stack::{Harness, eventually, fast_retry, order};

/// Every committed history, by the patch it was recorded under: none (the
/// workflow's old ending path), `end-from-database`, `search-attributes`
/// (`-indexed`: an upsert per status change) and `order-workflow-3`.
/// (`search-attributes` histories whose first workflow task a query cut
/// short do not replay: that patch is checked after the first local
/// activity. `order-workflow-3` is checked before it, and the `-v3`
/// cancelled history has such a cut.)
const HISTORIES: [&str; 8] = [
    "completed",
    "failed-declined",
    "cancelled-while-retrying",
    "failed-declined-end-from-database",
    "cancelled-while-retrying-end-from-database",
    "failed-declined-indexed",
    "failed-declined-v3",
    "cancelled-while-retrying-v3",
];

/// What `record_histories` writes: the endings of today's code.
const RECORDED: [&str; 2] = ["failed-declined-v3", "cancelled-while-retrying-v3"];

fn history_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/histories")
        .join(format!("{name}.json"))
}

fn replayer() -> WorkflowReplayer {
    replayer_with(DataConverter::default())
}

fn replayer_with(data_converter: DataConverter) -> WorkflowReplayer {
    WorkflowReplayer::new(
        WorkflowReplayerOptions::new()
            .register_workflow::<OrderWorkflow>()
            .unwrap()
            .data_converter(data_converter)
            .build(),
    )
    .unwrap()
}

/// The data converter of a client with `keys`: the test key file.
fn encrypting(keys: &str) -> DataConverter {
    let keys = Keyring::parse(keys, "test keys").unwrap();
    DataConverter::new(
        PayloadConverter::default(),
        DefaultFailureConverter::default(),
        Codec(Some(Arc::new(keys))),
    )
}

/// A completed order recorded with payloads encrypted under
/// [`KEY_A`](crate::crypto::KEY_A).
const ENCRYPTED: &str = "completed-encrypted";

#[tokio::test]
async fn an_encrypted_history_replays_with_its_key_and_only_with_it() {
    let bytes = std::fs::read(history_path(ENCRYPTED)).unwrap();
    let json: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    crate::crypto::assert_hidden(ENCRYPTED, &json, &["CUST-001", "ann@example.com"]);
    let history = || WorkflowHistory::from_json(&bytes).unwrap();
    replayer_with(encrypting(crate::crypto::KEY_A))
        .replay_workflow(history())
        .await
        .unwrap_or_else(|e| panic!("{ENCRYPTED} no longer replays with its key: {e:?}"));
    // Rotated: key B first, A still listed.
    let rotated = format!("{}\n{}", crate::crypto::KEY_B, crate::crypto::KEY_A);
    replayer_with(encrypting(&rotated))
        .replay_workflow(history())
        .await
        .unwrap_or_else(|e| panic!("{ENCRYPTED} does not replay after rotation: {e:?}"));
    for without in [DataConverter::default(), encrypting(crate::crypto::KEY_B)] {
        assert!(
            replayer_with(without)
                .replay_workflow(history())
                .await
                .is_err(),
            "without key A the history cannot replay"
        );
    }
}

/// Writes [`ENCRYPTED`]: a completed order, its payloads under key A.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "writes tests/histories; run by hand after a deliberate workflow change"]
async fn record_encrypted_history() {
    let mut h = Harness::new().await;
    h.add_product("PROD-001", "1299.99", 10).await;
    let dir = tempfile::tempdir().unwrap();
    let keys = crate::crypto::key_file(dir.path(), "keys.txt", &[crate::crypto::KEY_A]);
    h.client = crate::crypto::client_with(&h.address, &keys).await;
    let placed = order(
        "ORD-REPLAY-ENCRYPTED",
        PaymentMethod::Card,
        &[("PROD-001", 1, "1299.99")],
    );
    h.with_worker(async {
        h.submit(&placed).await;
        assert_eq!(
            h.client.outcome(&placed.id()).await.unwrap().status,
            OrderStatus::Completed
        );
    })
    .await;
    let json = h
        .client
        .sdk()
        .get_workflow_handle::<OrderWorkflow>(placed.id().as_str())
        .fetch_history(WorkflowFetchHistoryOptions::default())
        .to_json()
        .await
        .unwrap();
    let value: serde_json::Value = serde_json::from_slice(&json).unwrap();
    std::fs::write(
        history_path(ENCRYPTED),
        serde_json::to_string_pretty(&value).unwrap() + "\n",
    )
    .unwrap();
}

#[tokio::test]
async fn committed_histories_replay_against_the_current_workflow() {
    for name in HISTORIES {
        let bytes = std::fs::read(history_path(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
        let history = WorkflowHistory::from_json(&bytes).unwrap();
        replayer()
            .replay_workflow(history)
            .await
            .unwrap_or_else(|e| panic!("history {name} no longer replays: {e:?}"));
    }
}

#[tokio::test]
async fn a_history_from_different_code_fails_to_replay() {
    // The same history with the payment step's activity swapped for another:
    // what reordering or renaming the workflow's steps would look like.
    let mut history: serde_json::Value =
        serde_json::from_slice(&std::fs::read(history_path("completed")).unwrap()).unwrap();
    let swapped = rewrite_payloads(
        &mut history,
        "\"activity_type\":\"process_payment\"",
        "\"activity_type\":\"refund_payment\"",
    );
    assert_eq!(swapped, 1, "the history records the payment activity once");
    let history = WorkflowHistory::from_json(&serde_json::to_vec(&history).unwrap()).unwrap();
    assert!(
        replayer().replay_workflow(history).await.is_err(),
        "a changed history must not replay"
    );
}

/// Replaces `from` with `to` inside every base64 payload; returns how many changed.
fn rewrite_payloads(value: &mut serde_json::Value, from: &str, to: &str) -> usize {
    use base64::Engine as _;
    use base64::engine::general_purpose::STANDARD;
    match value {
        serde_json::Value::Object(map) => {
            let mut changed = 0;
            for (key, child) in map.iter_mut() {
                if key == "data"
                    && let serde_json::Value::String(encoded) = child
                    && let Ok(decoded) = STANDARD.decode(encoded.as_bytes())
                    && let Ok(text) = String::from_utf8(decoded)
                    && text.contains(from)
                {
                    *encoded = STANDARD.encode(text.replace(from, to));
                    changed += 1;
                } else {
                    changed += rewrite_payloads(child, from, to);
                }
            }
            changed
        }
        serde_json::Value::Array(items) => items
            .iter_mut()
            .map(|v| rewrite_payloads(v, from, to))
            .sum(),
        _ => 0,
    }
}

/// Runs a declined and a cancelled order on the dev server and writes their
/// histories (a completed order's path has not changed since `completed`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "writes tests/histories; run by hand after a deliberate workflow change"]
async fn record_histories() {
    let mut h = Harness::new().await;
    h.settings.retry = fast_retry(50);
    h.add_product("PROD-001", "1299.99", 10).await;
    let orders = [
        order(
            "ORD-REPLAY-DECLINED",
            PaymentMethod::CardDeclined,
            &[("PROD-001", 1, "1299.99")],
        ),
        order(
            "ORD-REPLAY-CANCELLED",
            PaymentMethod::CardUnavailable,
            &[("PROD-001", 1, "1299.99")],
        ),
    ];
    h.with_worker(async {
        for o in &orders {
            h.submit(o).await;
        }
        eventually("the payment to retry", Duration::from_secs(60), || async {
            h.client
                .status(&orders[1].id())
                .await
                .ok()
                .filter(|v| v.steps.iter().any(|s| s.state == StepState::Retrying))
        })
        .await;
        h.client
            .signal_cancel(&orders[1].id(), "recorded for replay")
            .await
            .unwrap();
        let expected = [OrderStatus::Failed, OrderStatus::Cancelled];
        for ((o, name), status) in orders.iter().zip(RECORDED).zip(expected) {
            assert_eq!(h.client.outcome(&o.id()).await.unwrap().status, status);
            let handle = h
                .client
                .sdk()
                .get_workflow_handle::<OrderWorkflow>(o.id().as_str());
            let json = handle
                .fetch_history(WorkflowFetchHistoryOptions::default())
                .to_json()
                .await
                .unwrap();
            let value: serde_json::Value = serde_json::from_slice(&json).unwrap();
            std::fs::create_dir_all(history_path(name).parent().unwrap()).unwrap();
            std::fs::write(
                history_path(name),
                serde_json::to_string_pretty(&value).unwrap() + "\n",
            )
            .unwrap();
        }
    })
    .await;
}
