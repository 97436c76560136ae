//! Replay: committed histories of real orders are replayed against today's
//! workflow code, so a change that would break running workflows fails CI.
//!
//! Re-record (after a deliberate, versioned change) with
//! `cargo test --test it replay::record_histories -- --ignored`.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use orderflow::temporal::codec::Keyring;
use orderflow::temporal::replay;
use temporalio_common::data_converters::DataConverter;

use orderflow::domain::{OrderStatus, PaymentMethod};
use orderflow::workflow::state::StepState;
use temporalio_client::WorkflowHistory;
use temporalio_sdk::workflow_replayer::{WorkflowReplayer, WorkflowReplayerOptions};
use temporalio_sdk::workflows::{workflow, workflow_methods};
use temporalio_sdk::{WorkflowContext, WorkflowContextView, WorkflowResult};

use crate::support::stack::{Harness, eventually, fast_retry, order};

/// Every committed history, by the patch it was recorded under: none (the
/// workflow's old ending path), `end-from-database`, `search-attributes`
/// (`-indexed`: an upsert per status change), `order-workflow-3` and
/// `order-workflow-4`.
/// (`search-attributes` histories whose first workflow task a query cut
/// short do not replay: that patch is checked after the first local
/// activity. `order-workflow-3` is checked before it, and the `-v3`
/// cancelled history has such a cut.)
const HISTORIES: [&str; 10] = [
    "completed",
    "failed-declined",
    "cancelled-while-retrying",
    "failed-declined-end-from-database",
    "cancelled-while-retrying-end-from-database",
    "failed-declined-indexed",
    "failed-declined-v3",
    "cancelled-while-retrying-v3",
    "failed-declined-v4",
    "cancelled-while-retrying-v4",
];

/// Orders that the code before `order-workflow-4` wedged, recorded on the
/// dev server with that code: every workflow task failed from one point on,
/// forever (issue #24, cases 1 and 2).
///
/// - `wedged-cancel-meets-timer`: a `card_flaky` order's payment waits to
///   retry; its worker is killed; `temporal workflow cancel` is sent; the
///   retry's timer fires with no worker; the next worker's SDK panics
///   ("resolution must have a registered unblocker").
/// - `poisoned-by-a-malformed-cancel`: `temporal workflow signal --name
///   cancel --input '{"reason": 12345}'`; the SDK cannot decode the signal
///   into the typed argument and fails the task.
const WEDGED: [&str; 2] = [
    "wedged-cancel-meets-timer",
    "poisoned-by-a-malformed-cancel",
];

/// What `record_histories` writes: the endings of today's code.
const RECORDED: [&str; 2] = ["failed-declined-v4", "cancelled-while-retrying-v4"];

fn history_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/histories")
        .join(format!("{name}.json"))
}

/// The replayer `orderflow replay` uses, without keys.
fn replayer() -> WorkflowReplayer {
    replayer_with(replay::worker_converter(None))
}

fn replayer_with(data_converter: DataConverter) -> WorkflowReplayer {
    replay::replayer(data_converter).unwrap()
}

/// The data converter of a worker with `keys`: the test key file.
fn encrypting(keys: &str) -> DataConverter {
    replay::worker_converter(Some(Arc::new(Keyring::parse(keys, "test keys").unwrap())))
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
    let json = h.client.history_json(&placed.id()).await.unwrap();
    let value: serde_json::Value = serde_json::from_slice(&json).unwrap();
    std::fs::write(
        history_path(ENCRYPTED),
        serde_json::to_string_pretty(&value).unwrap() + "\n",
    )
    .unwrap();
}

fn recorded(name: &str) -> replay::Recorded {
    let bytes = std::fs::read(history_path(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
    replay::Recorded {
        name: name.to_owned(),
        history: WorkflowHistory::from_json(&bytes).unwrap(),
    }
}

#[tokio::test]
async fn committed_histories_replay_against_the_current_workflow() {
    let histories = HISTORIES.iter().map(|name| recorded(name)).collect();
    let replayed = replay::replay(&replayer(), None, histories).await.unwrap();
    assert_eq!(replayed.len(), HISTORIES.len());
    let diverged: Vec<String> = replayed
        .iter()
        .filter_map(|r| Some(format!("{}: {}", r.name, r.divergence.as_ref()?)))
        .collect();
    assert!(
        diverged.is_empty(),
        "no longer replay:\n{}",
        diverged.join("\n")
    );
}

/// The history with its first failed workflow task completed instead, and
/// nothing after: the replayer runs a history's workflow tasks up to its
/// last completed one, so this makes it run the task that failed.
fn with_the_failed_task_completed(name: &str) -> WorkflowHistory {
    let mut json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(history_path(name)).unwrap()).unwrap();
    let events = json["events"].as_array_mut().unwrap();
    let failed = events
        .iter()
        .position(|e| e["attributes"]["WorkflowTaskFailedEventAttributes"].is_object())
        .unwrap_or_else(|| panic!("{name} has a failed workflow task"));
    events.truncate(failed + 1);
    let event = &mut events[failed];
    let failure = event["attributes"]["WorkflowTaskFailedEventAttributes"].take();
    event["event_type"] = serde_json::json!(7); // WORKFLOW_TASK_COMPLETED
    event["attributes"] = serde_json::json!({
        "WorkflowTaskCompletedEventAttributes": {
            "scheduled_event_id": failure["scheduled_event_id"],
            "started_event_id": failure["started_event_id"],
            "identity": failure["identity"],
            "binary_checksum": "",
            "worker_version": null,
            "sdk_metadata": null,
            "metering_metadata": null,
            "deployment": null,
            "versioning_behavior": 0,
            "worker_deployment_version": "",
            "worker_deployment_name": "",
            "deployment_version": null
        }
    });
    WorkflowHistory::from_json(&serde_json::to_vec(&json).unwrap()).unwrap()
}

#[tokio::test]
async fn orders_that_old_code_wedged_run_on_with_todays() {
    let mut stuck = Vec::new();
    for name in WEDGED {
        if let Err(e) = replayer()
            .replay_workflow(with_the_failed_task_completed(name))
            .await
        {
            stuck.push(format!(
                "{name}: the stuck workflow task still fails: {e:?}"
            ));
        }
    }
    assert!(stuck.is_empty(), "{}", stuck.join("\n"));
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
            let json = h.client.history_json(&o.id()).await.unwrap();
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

/// Writes the history of workflow `$ORDERFLOW_EXPORT_ID` on the server at
/// `$TEMPORAL_ADDRESS` to `tests/histories/$ORDERFLOW_EXPORT_NAME.json`:
/// how a history that only old code could produce (a wedged order) is kept.
#[tokio::test]
#[ignore = "writes tests/histories; run by hand against a server holding the workflow"]
async fn export_history() {
    let var = |name: &str| std::env::var(name).unwrap_or_else(|_| panic!("set {name}"));
    let client = crate::support::stack::temporal_client(&var("TEMPORAL_ADDRESS")).await;
    let json = client
        .history_json(&var("ORDERFLOW_EXPORT_ID"))
        .await
        .unwrap();
    let value: serde_json::Value = serde_json::from_slice(&json).unwrap();
    std::fs::write(
        history_path(&var("ORDERFLOW_EXPORT_NAME")),
        serde_json::to_string_pretty(&value).unwrap() + "\n",
    )
    .unwrap();
}

/// Workflow code changed in a way that breaks the orders in flight: under
/// the same workflow type, it waits on a timer where `OrderWorkflow` first
/// runs a local activity (its settings read).
#[workflow]
pub struct ChangedOrderWorkflow;

#[workflow_methods]
impl ChangedOrderWorkflow {
    #[init]
    pub fn new(_ctx: &WorkflowContextView, _input: serde_json::Value) -> Self {
        Self
    }

    #[run(name = "OrderWorkflow")]
    pub async fn run(ctx: &mut WorkflowContext<Self>) -> WorkflowResult<String> {
        ctx.timer(Duration::from_secs(1)).await;
        Ok("COMPLETED".to_owned())
    }
}

#[tokio::test]
async fn changed_workflow_code_fails_to_replay_naming_the_order_and_event() {
    let changed = replay::replayer_with(
        WorkflowReplayerOptions::new()
            .register_workflow::<ChangedOrderWorkflow>()
            .unwrap()
            .data_converter(replay::worker_converter(None))
            .build(),
    )
    .unwrap();
    let replayed = replay::replay(&changed, None, vec![recorded("completed")])
        .await
        .unwrap();
    let divergence = replayed[0]
        .divergence
        .as_ref()
        .expect("changed code must not replay the history");
    assert_eq!(replayed[0].name, "completed");
    assert_eq!(divergence.kind, "nondeterminism", "{divergence}");
    // The first event of the workflow task whose commands it no longer
    // makes: the settings read's marker.
    assert_eq!(divergence.event_id, Some(5), "{divergence}");
    assert_eq!(divergence.event_type.as_deref(), Some("MarkerRecorded"));
    assert!(
        divergence.message.contains("Nondeterminism"),
        "{divergence}"
    );
}

/// Copies the named committed histories into a directory of their own.
fn histories_dir(names: &[&str]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for name in names {
        std::fs::copy(history_path(name), dir.path().join(format!("{name}.json"))).unwrap();
    }
    dir
}

#[tokio::test]
async fn orderflow_replay_reads_exported_histories() {
    use crate::support::orderflow;
    let dir = histories_dir(&HISTORIES);
    let out = orderflow()
        .args(["replay", "--dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert!(
        text.contains("every one of 10 histories replays on this build"),
        "{text}"
    );
    assert!(text.contains("completed.json  replays  "), "{text}");

    // Encrypted: replays with its key; without one, says which key is missing.
    let sealed = histories_dir(&[ENCRYPTED]);
    let keys = crate::crypto::key_file(sealed.path(), "keys.txt", &[crate::crypto::KEY_A]);
    orderflow()
        .args(["replay", "--dir"])
        .arg(sealed.path())
        .arg("--encryption-key-file")
        .arg(&keys)
        .assert()
        .code(0);
    let keyless = orderflow()
        .args(["replay", "--dir"])
        .arg(sealed.path())
        .output()
        .unwrap();
    assert_eq!(keyless.status.code(), Some(2), "{keyless:?}");
    assert!(
        String::from_utf8_lossy(&keyless.stderr).contains("no encryption key file is configured"),
        "{keyless:?}"
    );

    // A history the code no longer matches: exit 9, the file and the event named.
    let mut history: serde_json::Value =
        serde_json::from_slice(&std::fs::read(history_path("completed")).unwrap()).unwrap();
    rewrite_payloads(
        &mut history,
        "\"activity_type\":\"process_payment\"",
        "\"activity_type\":\"refund_payment\"",
    );
    std::fs::write(
        dir.path().join("tampered.json"),
        serde_json::to_vec(&history).unwrap(),
    )
    .unwrap();
    let out = orderflow()
        .args(["replay", "-o", "json", "--dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(9), "{out:?}");
    let report = crate::support::stdout_json(&out);
    assert_eq!(report["replayed"], 11);
    assert_eq!(report["diverged"], 1);
    let failed: Vec<&serde_json::Value> = report["histories"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|h| h.get("divergence").is_some())
        .collect();
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0]["name"], "tampered.json");
    assert_eq!(
        failed[0]["divergence"]["message"],
        "[TMPRL1100] Nondeterminism error: Activity type of recorded marker 'refund_payment' \
         does not match activity type of local activity command 'process_payment'",
        "{report:#}"
    );
    assert_eq!(failed[0]["divergence"]["eventId"], 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orderflow_replay_replays_live_histories() {
    let h = Harness::new().await;
    h.add_product("PROD-001", "1299.99", 10).await;
    let _worker = h.spawn_worker(&[]);
    let orders = [
        order(
            "ORD-LIVE-1",
            PaymentMethod::Card,
            &[("PROD-001", 1, "1299.99")],
        ),
        order(
            "ORD-LIVE-2",
            PaymentMethod::CardDeclined,
            &[("PROD-001", 1, "1299.99")],
        ),
    ];
    for o in &orders {
        h.submit(o).await;
    }
    for o in &orders {
        h.client.outcome(o.id()).await.unwrap();
    }
    let out = h.cli().args(["replay", "-o", "json"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let report = crate::support::stdout_json(&out);
    assert_eq!(report["replayed"], 2, "{report:#}");
    assert_eq!(report["diverged"], 0);

    let one = h
        .cli()
        .args(["replay", "--sample", "1", "-o", "jsonl"])
        .output()
        .unwrap();
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&one.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert!(lines[0]["name"].as_str().unwrap().starts_with("ORD-LIVE-"));
    assert_eq!(lines[1]["replayed"], 1);

    h.cli()
        .args(["replay", "--id", "ORD-LIVE-2"])
        .assert()
        .code(0)
        .stdout(predicates::str::contains("ORD-LIVE-2  replays  "));
}
