//! The bench's worker processes: `orderflow worker`, started from this very
//! binary with its default tuning, as users run it.

use std::process::Command;
use std::time::Duration;

use anyhow::Context as _;

use crate::stack::local::LocalStack;
use crate::stack::{Service, free_port, poll};
use crate::temporal::client::OrderClient;

pub struct Workers {
    services: Vec<Service>,
    _logs: tempfile::TempDir,
}

impl Workers {
    /// Starts `count` workers on `task_queue` (hosting the baseline too),
    /// and returns once every one of them polls it.
    pub async fn start(
        stack: &LocalStack,
        client: &OrderClient,
        task_queue: &str,
        count: u32,
        metrics: bool,
    ) -> anyhow::Result<Self> {
        let exe = std::env::current_exe().context("finding this program, to start workers")?;
        let logs = tempfile::tempdir().context("creating a directory for the workers' logs")?;
        let mut services = Vec::new();
        for i in 0..count {
            let mut command = Command::new(&exe);
            command
                .args(["worker", "--with-baseline", "--address"])
                .arg(&stack.temporal.address)
                .args(["--namespace", &stack.temporal.namespace])
                .args(["--task-queue", task_queue])
                // The environment, not the command line, carries the URL.
                .env("DATABASE_URL", stack.database.url())
                .env("RUST_LOG", "warn");
            if let Some(keys) = &stack.info.encryption_key_file {
                command.arg("--encryption-key-file").arg(keys);
            }
            if metrics {
                command.arg("--metrics-address").arg(format!(
                    "127.0.0.1:{}",
                    free_port().context("finding a free port")?
                ));
            }
            let log = logs.path().join(format!("worker-{i}.log"));
            services.push(Service::spawn("worker", &command, None, "TERM", log, None)?);
        }
        let workers = Self {
            services,
            _logs: logs,
        };
        let polling = poll("the bench's workers", Duration::from_secs(60), || async {
            let pollers = client.pollers(task_queue).await.ok()?;
            (pollers.len() >= count as usize).then_some(())
        });
        if let Err(e) = polling.await {
            let tail = workers
                .services
                .first()
                .map(|s| s.log_tail())
                .unwrap_or_default();
            anyhow::bail!("{e}: not every worker polls; the first one's log says:\n{tail}");
        }
        Ok(workers)
    }

    /// Each worker's process (its lifeline; the worker is under it).
    pub fn pids(&self) -> Vec<u32> {
        self.services.iter().map(Service::pid).collect()
    }

    /// The largest peak memory of any of the workers, in MiB.
    pub fn peak_rss_mib(&self) -> anyhow::Result<f64> {
        self.services
            .iter()
            .map(Service::peak_rss_mib)
            .try_fold(0.0, |max, rss| rss.map(|r| f64::max(max, r)))
    }

    /// Stops every worker (SIGTERM: they drain) and waits for them.
    pub fn stop(self) {
        for service in self.services {
            service.stop();
        }
    }
}
