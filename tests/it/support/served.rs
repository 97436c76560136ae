//! `orderflow serve` as a test runs it: the real binary on a free port,
//! pointed at a harness's Temporal, database and queue; and the OpenAPI
//! document it serves, to check its answers against.

use std::time::Duration;

use serde_json::Value;

use super::stack::{Harness, eventually};

/// A running `orderflow serve`, killed when dropped.
pub struct Served {
    pub child: std::process::Child,
    pub base: String,
    pub port: u16,
    log: tempfile::NamedTempFile,
}

impl Served {
    /// Starts `serve` for `h` with `extra` flags and waits until it answers.
    pub async fn start(h: &Harness, extra: &[&str]) -> Self {
        let served = Self::spawn(h, extra);
        let http = reqwest::Client::new();
        let url = format!("{}/healthz", served.base);
        eventually("serve answers /healthz", Duration::from_secs(30), || {
            let http = http.clone();
            let url = url.clone();
            async move {
                http.get(&url)
                    .send()
                    .await
                    .ok()
                    .filter(|r| r.status() == 200)
            }
        })
        .await;
        served
    }

    /// Starts `serve` without waiting for it.
    pub fn spawn(h: &Harness, extra: &[&str]) -> Self {
        let port = super::closed_port();
        let log = tempfile::NamedTempFile::new().unwrap();
        let child = super::command()
            .env("TEMPORAL_ADDRESS", &h.address)
            .env("DATABASE_URL", &h.db.url)
            .env("ORDERFLOW_TASK_QUEUE", &h.settings.task_queue)
            .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
            .args(extra)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(log.reopen().unwrap())
            .spawn()
            .expect("starting orderflow serve");
        Self {
            child,
            base: format!("http://127.0.0.1:{port}"),
            port,
            log,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// What it wrote to stderr.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log.path()).unwrap_or_default()
    }

    /// Sends SIGTERM.
    pub fn terminate(&self) {
        let pid = self.child.id().to_string();
        let status = std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap();
        assert!(status.success());
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The OpenAPI document a server serves, to check answers against.
pub struct Contract {
    doc: Value,
}

impl Contract {
    pub async fn fetch(served: &Served) -> Self {
        let doc: Value = reqwest::get(served.url("/api/openapi.json"))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(doc["openapi"], "3.1.0");
        Self { doc }
    }

    /// Fails unless the document lists `status` for `method` `path` and
    /// `body` matches its schema (or it lists no body and there is none).
    pub fn check(&self, method: &str, path: &str, status: u16, body: &Value) {
        let response = &self.doc["paths"][path][method]["responses"][status.to_string()];
        assert!(
            response.is_object(),
            "the document has no {status} for {method} {path}"
        );
        let Some(schema) = response
            .pointer("/content/application~1json/schema")
            .or_else(|| response.pointer("/content/text~1event-stream/schema"))
        else {
            assert!(
                body.is_null(),
                "{method} {path} {status}: no body documented, got {body}"
            );
            return;
        };
        let root = serde_json::json!({
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "components": self.doc["components"],
            "allOf": [schema],
        });
        let validator = jsonschema::validator_for(&root).expect("the document's schema compiles");
        let errors: Vec<String> = validator
            .iter_errors(body)
            .map(|e| format!("{} at {}", e, e.instance_path))
            .collect();
        assert!(
            errors.is_empty(),
            "{method} {path} {status} does not match the document:\n{}\n{body:#}",
            errors.join("\n")
        );
    }
}

/// One Server-Sent Event.
#[derive(Debug, Clone)]
pub struct Sse {
    pub id: Option<String>,
    pub event: Option<String>,
    pub data: Value,
}

/// The events of a stream, read until it ends or `until` says stop.
pub async fn read_events(
    mut response: reqwest::Response,
    mut until: impl FnMut(&Sse) -> bool,
) -> Vec<Sse> {
    let mut buffer: Vec<u8> = Vec::new();
    let mut events = Vec::new();
    while let Some(chunk) = response.chunk().await.expect("reading the stream") {
        buffer.extend_from_slice(&chunk);
        while let Some(end) = buffer.windows(2).position(|w| w == b"\n\n") {
            let block: Vec<u8> = buffer.drain(..end + 2).collect();
            let block = String::from_utf8(block).expect("events are UTF-8");
            let (mut id, mut event, mut data) = (None, None, String::new());
            for line in block.lines() {
                if let Some(v) = line.strip_prefix("id:") {
                    id = Some(v.trim().to_owned());
                } else if let Some(v) = line.strip_prefix("event:") {
                    event = Some(v.trim().to_owned());
                } else if let Some(v) = line.strip_prefix("data:") {
                    data.push_str(v.trim_start());
                }
            }
            if data.is_empty() {
                continue; // a keep-alive comment
            }
            let sse = Sse {
                id,
                event,
                data: serde_json::from_str(&data).unwrap(),
            };
            let stop = until(&sse);
            events.push(sse);
            if stop {
                return events;
            }
        }
    }
    events
}
