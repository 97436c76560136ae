//! Payload encryption (SPEC §7, "Encryption") against the real dev server
//! and PostgreSQL: what Temporal holds is read through its API without the
//! codec, and must hold no customer data, in clear or inside base64.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use predicates::prelude::*;
use predicates::str::contains;
use serde_json::Value;

use orderflow::domain::{OrderId, PaymentMethod};
use orderflow::temporal::TemporalConfig;
use orderflow::temporal::client::OrderClient;
use orderflow::temporal::codec::{CodecError, ENCRYPTED, Keyring};

use crate::support::stack::{Harness, eventually, order};
use crate::support::{closed_port, command, orderflow, stdout_json, write_temp};

pub const KEY_A: &str = "key-a:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
pub const KEY_B: &str = "key-b:H+/fz7+vn49/b19PPy8fDw/v38+/r5+Pf29fT08vHw8=";

const CUSTOMER: &str = "CUST-SECRET-4711";
const EMAIL: &str = "hidden.person@example.org";

/// A key file readable by its owner only, holding `lines`.
pub fn key_file(dir: &Path, name: &str, lines: &[&str]) -> PathBuf {
    use std::os::unix::fs::PermissionsExt as _;
    let path = dir.join(name);
    std::fs::write(&path, lines.join("\n")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    path
}

pub async fn client_with(address: &str, keys: &Path) -> OrderClient {
    let ring = Arc::new(Keyring::load(keys).expect("the test key file"));
    let config = TemporalConfig::plain(address, "orderflow").encrypted(Some(ring));
    OrderClient::connect(&config).await.unwrap()
}

fn order_file(id: &str, method: &str) -> String {
    serde_json::json!({"id": id, "customerID": CUSTOMER, "customerEmail": EMAIL,
        "paymentMethod": method, "totalAmount": "5.00",
        "items": [{"productID": "P-1", "quantity": 1, "unitPrice": "5.00"}]})
    .to_string()
}

/// Every place in `value` where `needle` shows: in a string, or in the
/// bytes a base64 string decodes to.
fn leaks(value: &Value, needle: &str, path: &str, found: &mut Vec<String>) {
    match value {
        Value::String(s) => {
            let decoded = STANDARD.decode(s).unwrap_or_default();
            if s.contains(needle)
                || decoded
                    .windows(needle.len())
                    .any(|w| w == needle.as_bytes())
            {
                found.push(path.to_owned());
            }
        }
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                leaks(v, needle, &format!("{path}[{i}]"), found);
            }
        }
        Value::Object(map) => {
            for (k, v) in map {
                if k.contains(needle) {
                    found.push(format!("{path}.{k} (key)"));
                }
                leaks(v, needle, &format!("{path}.{k}"), found);
            }
        }
        _ => {}
    }
}

/// The order's history as Temporal's API gives it (no codec), as JSON.
async fn raw_history(h: &Harness, id: &str) -> Value {
    let events = h
        .client
        .raw_history(&OrderId::parse(id).unwrap())
        .await
        .unwrap();
    assert!(events.len() > 5, "a whole history: {} events", events.len());
    serde_json::to_value(&events).unwrap()
}

/// Fails unless no `needle` shows anywhere in `history` (JSON), in clear
/// or inside base64, and its payloads are marked encrypted.
pub fn assert_hidden(what: &str, history: &Value, needles: &[&str]) {
    for needle in needles {
        let mut found = Vec::new();
        leaks(history, needle, "events", &mut found);
        assert!(found.is_empty(), "{what} shows {needle} at {found:?}");
    }
    // And the proof it is the codec that hides them: payloads are sealed.
    let text = history.to_string();
    assert!(
        text.contains(&STANDARD.encode(ENCRYPTED)),
        "{what}'s payloads are marked {ENCRYPTED}"
    );
}

#[tokio::test]
async fn the_cli_works_with_keys_and_history_holds_no_customer_data() {
    let h = Harness::new().await;
    h.add_product("P-1", "5.00", 10).await;
    let dir = tempfile::tempdir().unwrap();
    let keys = key_file(dir.path(), "keys.txt", &[KEY_A]);
    let keys_arg = keys.to_str().unwrap();
    let worker = h.spawn_worker(&[
        "--encryption-key-file",
        keys_arg,
        "--retry-max-attempts",
        "100",
        "--retry-initial-interval",
        "200ms",
        "--retry-max-interval",
        "500ms",
    ]);
    let cli = || {
        let mut cmd = h.cli();
        cmd.env("ORDERFLOW_ENCRYPTION_KEY_FILE", &keys);
        cmd
    };
    for (id, method) in [
        ("ORD-E0", "card"),
        ("ORD-E4", "card_declined"),
        ("ORD-E5", "card_unavailable"),
    ] {
        let (_d, file) = write_temp("o.json", &order_file(id, method));
        cli()
            .args(["order", "create", "--file"])
            .arg(&file)
            .assert()
            .success();
    }
    cli()
        .args(["order", "watch", "ORD-E0"])
        .assert()
        .code(0)
        .stdout(contains("ORD-E0 COMPLETED"));
    let status = stdout_json(
        &cli()
            .args(["-o", "json", "order", "status", "ORD-E0"])
            .output()
            .unwrap(),
    );
    assert_eq!(status["customerID"], CUSTOMER, "{status}");
    assert_eq!(status["status"], "COMPLETED", "{status}");
    let listed = eventually("ORD-E5 in order list", Duration::from_secs(20), || async {
        let out = cli()
            .args(["-o", "json", "order", "list"])
            .output()
            .unwrap();
        let list = stdout_json(&out);
        let ids: Vec<&str> = list
            .as_array()?
            .iter()
            .filter_map(|o| o["orderId"].as_str())
            .collect();
        (ids.contains(&"ORD-E0") && ids.contains(&"ORD-E5")).then_some(list)
    })
    .await;
    // From the database: the customer is there, as before.
    assert!(
        listed
            .as_array()
            .unwrap()
            .iter()
            .all(|o| o["customerID"] == CUSTOMER),
        "{listed}"
    );
    cli()
        .args(["order", "cancel", "ORD-E5", "--reason", "test"])
        .assert()
        .code(0)
        .stdout(contains("ORD-E5 CANCELLED (test)"));
    cli().args(["order", "watch", "ORD-E5"]).assert().code(5);
    // A failed order's state travels in its failure's details.
    cli()
        .args(["order", "watch", "ORD-E4"])
        .assert()
        .code(4)
        .stdout(contains("PAYMENT_DECLINED"));

    for id in ["ORD-E0", "ORD-E4", "ORD-E5"] {
        assert_hidden(id, &raw_history(&h, id).await, &[CUSTOMER, EMAIL]);
    }
    // With no worker to answer, status reads the (decrypted) history.
    drop(worker);
    let (_d, file) = write_temp("o.json", &order_file("ORD-E6", "card"));
    cli()
        .args(["order", "create", "--file"])
        .arg(&file)
        .assert()
        .success();
    let status = stdout_json(
        &cli()
            .args(["-o", "json", "order", "status", "ORD-E6"])
            .output()
            .unwrap(),
    );
    assert_eq!(status["customerID"], CUSTOMER, "{status}");
    assert_eq!(status["source"], "history", "{status}");
    // doctor says which key encrypts, never the key.
    cli()
        .args(["doctor"])
        .assert()
        .stdout(contains("payloads encrypted with key key-a of 1").and(contains("AAECAw").not()));
    // Without keys, or without the right one: a clear refusal, no data.
    // A setup the command cannot use: exit 2, as for a missing key file.
    h.cli()
        .args(["order", "status", "ORD-E0"])
        .assert()
        .code(2)
        .stderr(contains(
            "encrypted with key key-a, and no encryption key file is configured",
        ));
    let wrong = key_file(dir.path(), "other.txt", &[KEY_B]);
    h.cli()
        .env("ORDERFLOW_ENCRYPTION_KEY_FILE", &wrong)
        .args(["order", "status", "ORD-E0"])
        .assert()
        .code(2)
        .stderr(contains("key key-a").and(contains(CUSTOMER).not()));
}

#[tokio::test]
async fn orders_under_key_a_stay_readable_after_key_b_is_put_first() {
    let mut h = Harness::new().await;
    h.add_product("P-1", "5.00", 10).await;
    let dir = tempfile::tempdir().unwrap();
    let only_a = key_file(dir.path(), "a.txt", &[KEY_A]);
    let rotated = key_file(dir.path(), "ba.txt", &[KEY_B, KEY_A]);
    let mut old = order("ORD-ROT-A", PaymentMethod::Card, &[("P-1", 1, "5.00")]);
    let new = order("ORD-ROT-B", PaymentMethod::Card, &[("P-1", 1, "5.00")]);

    let plain = std::mem::replace(&mut h.client, client_with(&h.address, &only_a).await);
    h.with_worker(async {
        h.submit(&old).await;
        h.client.outcome(old.id()).await.unwrap()
    })
    .await;

    h.client = client_with(&h.address, &rotated).await;
    let view = h
        .with_worker(async {
            h.submit(&new).await;
            h.client.outcome(new.id()).await.unwrap();
            h.client.outcome(old.id()).await.unwrap()
        })
        .await;
    assert_eq!(view.order_id.as_str(), "ORD-ROT-A");
    // Read from history too, decrypted with the key it names.
    old = h.client.recorded_order(old.id()).await.unwrap();
    assert_eq!(old.customer_id().as_str(), "CUST-001");

    // What each history names: key A for the old order, B for the new.
    h.client = plain;
    let key_of = |history: &Value| {
        let text = history.to_string();
        (
            text.contains(&STANDARD.encode("key-a")),
            text.contains(&STANDARD.encode("key-b")),
        )
    };
    assert_eq!(key_of(&raw_history(&h, "ORD-ROT-A").await), (true, false));
    assert_eq!(key_of(&raw_history(&h, "ORD-ROT-B").await), (false, true));
    // Key A alone cannot read the new order, and says which key it lacks.
    let a = client_with(&h.address, &only_a).await;
    let error = format!(
        "{:#}",
        anyhow::Error::from(a.recorded_order(new.id()).await.unwrap_err())
    );
    assert!(
        error.contains(&CodecError::MissingKey("key-b".into()).to_string()),
        "{error}"
    );
}

#[tokio::test]
async fn the_codec_server_decodes_history_payloads_to_the_original_json() {
    let mut h = Harness::new().await;
    h.add_product("P-1", "5.00", 10).await;
    let dir = tempfile::tempdir().unwrap();
    let keys = key_file(dir.path(), "keys.txt", &[KEY_A]);
    let token = dir.path().join("token");
    std::fs::write(&token, "s3cret-token\n").unwrap();
    // A token others can read is refused, as a key file is.
    let refused = orderflow()
        .args(["codec-server", "--listen", "127.0.0.1:0"])
        .arg("--encryption-key-file")
        .arg(&keys)
        .arg("--auth-token-file")
        .arg(&token)
        .output()
        .unwrap();
    assert_eq!(refused.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("chmod 600"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
    std::fs::set_permissions(&token, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    // Reachable from other machines only with a token.
    let open = orderflow()
        .args(["codec-server", "--listen", "0.0.0.0:0"])
        .arg("--encryption-key-file")
        .arg(&keys)
        .output()
        .unwrap();
    assert_eq!(open.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&open.stderr).contains("--auth-token-file"),
        "{}",
        String::from_utf8_lossy(&open.stderr)
    );
    let placed = order("ORD-CODEC", PaymentMethod::Card, &[("P-1", 1, "5.00")]);
    let plain = std::mem::replace(&mut h.client, client_with(&h.address, &keys).await);
    h.with_worker(async {
        h.submit(&placed).await;
        h.client.outcome(placed.id()).await.unwrap()
    })
    .await;
    h.client = plain;
    let history = raw_history(&h, "ORD-CODEC").await;
    let input = history
        .as_array()
        .unwrap()
        .iter()
        .find_map(|e| {
            e.pointer("/attributes/WorkflowExecutionStartedEventAttributes/input/payloads")
        })
        .unwrap_or_else(|| panic!("the started event's input: {}", history[0]))
        .clone();

    let port = closed_port();
    let base = format!("http://127.0.0.1:{port}");
    let mut server = command()
        .args(["codec-server", "--listen", &format!("127.0.0.1:{port}")])
        .arg("--encryption-key-file")
        .arg(&keys)
        .arg("--auth-token-file")
        .arg(&token)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let http = reqwest::Client::new();
    // The history's JSON carries payloads as the protocol does: base64
    // data and metadata values.
    let body = serde_json::json!({ "payloads": input });
    let decode = |auth: Option<&'static str>| {
        let mut request = http
            .post(format!("{base}/decode"))
            .header("Origin", "http://localhost:8233")
            .header("X-Namespace", "default")
            .json(&body);
        if let Some(token) = auth {
            request = request.bearer_auth(token);
        }
        request.send()
    };
    let answer = eventually(
        "the codec server answers",
        Duration::from_secs(30),
        || async { decode(Some("s3cret-token")).await.ok() },
    )
    .await;
    assert_eq!(answer.status(), 200);
    assert_eq!(
        answer.headers()["access-control-allow-origin"],
        "http://localhost:8233"
    );
    let decoded: Value = answer.json().await.unwrap();
    let payload = &decoded["payloads"][0];
    let data = STANDARD.decode(payload["data"].as_str().unwrap()).unwrap();
    let json: Value = serde_json::from_slice(&data).unwrap();
    assert_eq!(json["customerID"], "CUST-001", "{json}");
    assert_eq!(json["id"], "ORD-CODEC", "{json}");
    assert_eq!(
        STANDARD
            .decode(payload["metadata"]["encoding"].as_str().unwrap())
            .unwrap(),
        b"json/plain"
    );
    // Without the token: refused. Encode then decode round-trips.
    assert_eq!(decode(None).await.unwrap().status(), 401);
    // A request addressed to another name (a page that pointed its own
    // domain here: DNS rebinding) is refused, token or not.
    let rebound = http
        .post(format!("{base}/decode"))
        .header("Host", format!("evil.example:{port}"))
        .bearer_auth("s3cret-token")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(rebound.status(), 421);
    // A probe (Kubernetes names the pod's address) needs neither.
    for path in ["healthz", "readyz"] {
        let probe = http
            .get(format!("{base}/{path}"))
            .header("Host", format!("10.1.2.3:{port}"))
            .send()
            .await
            .unwrap();
        assert_eq!(probe.status(), 200, "/{path}");
    }
    let by_name = http
        .post(format!("http://localhost:{port}/decode"))
        .bearer_auth("s3cret-token")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(by_name.status(), 200, "localhost is this machine");
    let encoded: Value = http
        .post(format!("{base}/encode"))
        .bearer_auth("s3cret-token")
        .json(&decoded)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_ne!(encoded, decoded);
    let preflight = http
        .request(reqwest::Method::OPTIONS, format!("{base}/decode"))
        .header("Origin", "http://elsewhere.example")
        .send()
        .await
        .unwrap();
    assert!(
        preflight
            .headers()
            .get("access-control-allow-origin")
            .is_none()
    );
    // The Temporal CLI, as a person would use it: history shown decoded.
    let shown = std::process::Command::new("temporal")
        .args([
            "workflow",
            "show",
            "-w",
            "ORD-CODEC",
            "-o",
            "json",
            "--address",
        ])
        .arg(&h.address)
        .args([
            "--codec-endpoint",
            &base,
            "--codec-auth",
            "Bearer s3cret-token",
        ])
        .output()
        .unwrap();
    assert!(
        shown.status.success(),
        "{}",
        String::from_utf8_lossy(&shown.stderr)
    );
    let shown: Value = serde_json::from_slice(&shown.stdout).unwrap();
    let mut found = Vec::new();
    leaks(&shown, "CUST-001", "shown", &mut found);
    assert!(!found.is_empty(), "decoded by the codec server: {shown}");
    let _ = server.kill();
    let _ = server.wait();
}

#[test]
fn a_bad_key_file_is_refused_with_exit_2_and_no_key_material() {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = tempfile::tempdir().unwrap();
    let shared = key_file(dir.path(), "shared.txt", &[KEY_A]);
    std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o644)).unwrap();
    let short = key_file(dir.path(), "short.txt", &[KEY_A, "short:AAECAwQ="]);
    let twice = key_file(dir.path(), "twice.txt", &[KEY_A, KEY_A]);
    for (file, says) in [
        (&shared, "is open to group or others (mode 644)"),
        (
            &short,
            "line 2: key short is 5 bytes; AES-256 needs exactly 32",
        ),
        (&twice, "line 2: key ID key-a is listed twice"),
    ] {
        crate::support::orderflow()
            .args(["order", "status", "ORD-1"])
            .arg("--encryption-key-file")
            .arg(file)
            .assert()
            .code(2)
            .stderr(contains(says).and(contains("AAECAwQ").not()));
    }
    crate::support::orderflow()
        .args(["codec-server"])
        .assert()
        .code(2)
        .stderr(contains("codec-server needs the encryption keys"));
}

/// A worker that encrypts runs no order sent in clear; a client without
/// the key is told which key and what to set (exit 2), sends no
/// cancellation it could not follow, and `doctor` says why.
#[tokio::test]
async fn encryption_cannot_be_half_on() {
    let h = Harness::new().await;
    h.add_product("P-1", "5.00", 10).await;
    let dir = tempfile::tempdir().unwrap();
    let keys = key_file(dir.path(), "keys.txt", &[KEY_A]);
    // card_flaky's first attempt fails; its retry waits ten minutes.
    let _worker = h.spawn_worker(&[
        "--encryption-key-file",
        keys.to_str().unwrap(),
        "--retry-initial-interval",
        "10m",
        "--retry-max-interval",
        "10m",
    ]);
    let keyed = || {
        let mut cmd = h.cli();
        cmd.env("ORDERFLOW_ENCRYPTION_KEY_FILE", &keys);
        cmd
    };

    // In clear, from a client without the key file: refused, nothing taken.
    let (_d, clear) = write_temp("o.json", &order_file("ORD-CLEAR-IN", "card"));
    h.cli()
        .args(["order", "create", "--file"])
        .arg(&clear)
        .assert()
        .success();
    keyed()
        .args(["order", "watch", "ORD-CLEAR-IN"])
        .assert()
        .code(4)
        .stdout(contains("ORD-CLEAR-IN FAILED INVALID_ORDER"));
    let status = stdout_json(
        &keyed()
            .args(["-o", "json", "order", "status", "ORD-CLEAR-IN"])
            .output()
            .unwrap(),
    );
    assert_eq!(status["failure"]["code"], "INVALID_ORDER", "{status}");
    assert!(
        status["failure"]["message"]
            .as_str()
            .unwrap()
            .contains("arrived unencrypted"),
        "{status}"
    );
    assert_eq!(h.stock("P-1").await, 10, "nothing reserved");
    assert!(
        h.payments(&OrderId::parse("ORD-CLEAR-IN").unwrap())
            .await
            .is_empty()
    );

    // An encrypted order, still running, meets a client without the key.
    let (_d, sealed) = write_temp("o.json", &order_file("ORD-SEALED-RUN", "card_flaky"));
    keyed()
        .args(["order", "create", "--file"])
        .arg(&sealed)
        .assert()
        .success();
    eventually(
        "the order to wait for its retry",
        Duration::from_secs(60),
        || async {
            let status = stdout_json(
                &keyed()
                    .args(["-o", "json", "order", "status", "ORD-SEALED-RUN"])
                    .output()
                    .unwrap(),
            );
            (status["status"] == "INVENTORY_RESERVED").then_some(())
        },
    )
    .await;
    let told = "encrypted with key key-a, and no encryption key file is configured; pass \
                --encryption-key-file or set ORDERFLOW_ENCRYPTION_KEY_FILE";
    for args in [
        &["order", "watch", "ORD-SEALED-RUN"][..],
        &["order", "status", "ORD-SEALED-RUN"],
        &["order", "watch", "ORD-CLEAR-IN"],
    ] {
        h.cli()
            .args(args)
            .timeout(Duration::from_secs(60))
            .assert()
            .code(2)
            .stderr(contains(told).and(contains(CUSTOMER).not()));
    }
    h.cli()
        .args(["order", "cancel", "ORD-SEALED-RUN"])
        .timeout(Duration::from_secs(60))
        .assert()
        .code(2)
        .stderr(contains("nothing was sent").and(contains(told)));
    // Nothing was sent: the order still runs, with its stock held.
    let status = stdout_json(
        &keyed()
            .args(["-o", "json", "order", "status", "ORD-SEALED-RUN"])
            .output()
            .unwrap(),
    );
    assert_eq!(status["status"], "INVENTORY_RESERVED", "{status}");
    assert!(status["cancelReason"].is_null(), "{status}");

    // doctor, without the key: says the worker encrypts and this client cannot.
    h.cli().args(["doctor"]).assert().stdout(contains(
        "is encrypted with key key-a, and this client has no key file",
    ));
    keyed()
        .args(["doctor"])
        .assert()
        .stdout(contains("decodes with this client's keys"));
}
