//! Several machines, simulated on one: three workers and the API, each a
//! process of its own under a user ID of its own (when the tests run as
//! root, as CI does: `setpriv`, no account needed), reaching PostgreSQL
//! over TCP as a remote machine would, against one Temporal server and one
//! PostgreSQL. Workers are SIGKILLed in turn and come back; the fault
//! suite's invariants and `audit` must hold.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use orderflow::domain::{Order, OrderStatus, PaymentMethod};

use crate::support::closed_port;
use crate::support::invariants::{Expectation, assert_kept};
use crate::support::stack::{Harness, eventually, order};

/// The user IDs of the three workers and of the API (no account needed).
const WORKER_UIDS: [u32; 3] = [61001, 61002, 61003];
const API_UID: u32 = 61004;

fn root() -> bool {
    std::fs::read_to_string("/proc/self/status").is_ok_and(|s| {
        s.lines()
            .find_map(|l| l.strip_prefix("Uid:"))
            .and_then(|ids| ids.split_whitespace().next().map(|id| id == "0"))
            .unwrap_or(false)
    })
}

/// The process's real user ID.
fn uid_of(pid: u32) -> Option<u32> {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// The binary under `uid` when the tests run as root; else as this user.
struct Machine {
    uid: Option<u32>,
    home: tempfile::TempDir,
}

impl Machine {
    fn new(uid: u32) -> Self {
        // A home it may read, as an account's would be.
        let home = tempfile::tempdir().unwrap();
        std::fs::set_permissions(
            home.path(),
            std::os::unix::fs::PermissionsExt::from_mode(0o755),
        )
        .unwrap();
        Machine {
            uid: root().then_some(uid),
            home,
        }
    }

    fn spawn(&self, h: &Harness, database_url: &str, args: &[&str]) -> Child {
        let binary = assert_cmd::cargo::cargo_bin("orderflow");
        let mut command = match self.uid {
            Some(uid) => {
                let mut c = Command::new("setpriv");
                c.arg(format!("--reuid={uid}"))
                    .arg(format!("--regid={uid}"))
                    .args(["--clear-groups", "--"])
                    .arg(binary);
                c
            }
            None => Command::new(binary),
        };
        command
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", self.home.path())
            .env("TEMPORAL_ADDRESS", &h.address)
            .env("DATABASE_URL", database_url)
            .env("ORDERFLOW_TASK_QUEUE", &h.settings.task_queue)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting orderflow (setpriv is util-linux's)")
    }
}

/// The harness's database over TCP, as another machine reaches it (the
/// harness uses the cluster's Unix socket, which only its user may reach).
fn over_tcp(url: &str) -> String {
    let mut url = url::Url::parse(url).unwrap();
    let query: Vec<(String, String)> = url
        .query_pairs()
        .filter(|(k, _)| k != "host")
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    url.set_host(Some("127.0.0.1")).unwrap();
    url.query_pairs_mut().clear().extend_pairs(query);
    let text = url.to_string();
    text.trim_end_matches('?').to_owned()
}

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workers_and_the_api_on_machines_of_their_own_keep_every_promise() {
    let _heavy = crate::support::HEAVY.lock().await;
    let h = Harness::new().await;
    h.add_product("P-1", "5.00", 1000).await;
    let url = over_tcp(&h.db.url);
    let worker_args = [
        "worker",
        "--retry-initial-interval",
        "300ms",
        "--shutdown-timeout",
        "5s",
    ];
    let machines: Vec<Machine> = WORKER_UIDS.iter().map(|&uid| Machine::new(uid)).collect();
    let mut workers: Vec<Killed> = machines
        .iter()
        .map(|m| Killed(m.spawn(&h, &url, &worker_args)))
        .collect();
    let port = closed_port();
    let api_machine = Machine::new(API_UID);
    let _api = Killed(api_machine.spawn(
        &h,
        &url,
        &["serve", "--listen", &format!("127.0.0.1:{port}")],
    ));
    let http = reqwest::Client::new();
    let base = format!("http://127.0.0.1:{port}");
    eventually(
        "the API and three workers answer",
        Duration::from_secs(60),
        || {
            let (http, base) = (http.clone(), base.clone());
            let client = h.client.clone();
            let queue = h.settings.task_queue.clone();
            async move {
                let ready = http.get(format!("{base}/readyz")).send().await.ok()?;
                let pollers = client.pollers(&queue).await.ok()?;
                (ready.status() == 200 && pollers.len() >= 3).then_some(())
            }
        },
    )
    .await;
    if root() {
        for (worker, uid) in workers.iter().zip(WORKER_UIDS) {
            assert_eq!(
                uid_of(worker.0.id()),
                Some(uid),
                "a worker runs as its own user"
            );
        }
        assert_eq!(uid_of(_api.0.id()), Some(API_UID));
    }

    // Orders through the API, flaky cards among them (retries cross workers).
    let all: Vec<Order> = (0..30)
        .map(|i| {
            let method = if i % 2 == 1 {
                PaymentMethod::CardFlaky
            } else {
                PaymentMethod::Card
            };
            order(
                &format!("ORD-SPREAD-{i:02}"),
                method,
                &[("P-1", 1 + i % 3, "5.00")],
            )
        })
        .collect();
    for o in &all {
        let answer = http
            .post(format!("{base}/api/orders"))
            .json(o)
            .send()
            .await
            .unwrap();
        assert_eq!(
            answer.status(),
            202,
            "{}",
            answer.text().await.unwrap_or_default()
        );
    }
    // Each machine in turn dies (SIGKILL) mid-way and comes back.
    for round in 0..3 {
        let captured = 6 * (round + 1);
        eventually(
            &format!("{captured} captures"),
            Duration::from_secs(180),
            || async {
                let n: i64 =
                    sqlx::query_scalar("SELECT count(*) FROM payments WHERE status = 'CAPTURED'")
                        .fetch_one(&h.db.pool)
                        .await
                        .ok()?;
                (n >= captured).then_some(())
            },
        )
        .await;
        let victim = round as usize;
        workers[victim].0.kill().unwrap();
        workers[victim].0.wait().unwrap();
        workers[victim] = Killed(machines[victim].spawn(&h, &url, &worker_args));
    }
    for o in &all {
        let view = tokio::time::timeout(Duration::from_secs(180), h.client.outcome(&o.id()))
            .await
            .unwrap_or_else(|_| panic!("{} did not end in time", o.id()))
            .unwrap();
        assert_eq!(
            view.status,
            OrderStatus::Completed,
            "{}: {:?}",
            o.id(),
            view.failure
        );
    }
    let ids: Vec<_> = all.iter().map(|o| o.id().clone()).collect();
    assert_kept(
        &h.db.pool,
        &h.client,
        &Expectation {
            orders: &ids,
            stock_before: &[("P-1", 1000)],
        },
    )
    .await;
    h.assert_audit_clean().await;
}
