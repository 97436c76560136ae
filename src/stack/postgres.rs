//! A throwaway PostgreSQL cluster: `initdb` into a directory, `postgres` on
//! a free port on 127.0.0.1 and a Unix socket in that directory, trust
//! authentication, no durability (it is thrown away).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{Context as _, bail};

use super::{Service, find_program, free_port, running_as_root};

/// The unprivileged account to run the server as when we are root.
const SERVICE_USER: &str = "postgres";

pub const INSTALL_HINT: &str = "install the PostgreSQL server (Debian/Ubuntu: `apt-get install postgresql`), \
     or point --database-url / DATABASE_URL at a running server";

/// Whether the account PostgreSQL runs as when we are root can reach
/// `dir` (every directory on its way must let it through).
pub fn service_user_reaches(dir: &Path) -> bool {
    Command::new("runuser")
        .args(["-u", SERVICE_USER, "--", "test", "-x"])
        .arg(dir)
        .status()
        .is_ok_and(|s| s.success())
}

#[derive(Debug)]
pub struct PostgresCluster {
    service: Service,
    pub port: u16,
    pub dir: PathBuf,
}

/// A URL through the server's Unix socket in `dir` (psql and sqlx both
/// read `host=` as the socket directory). The cluster runs on this machine,
/// and a local socket spares both ends the TCP stack: about a fifth of
/// PostgreSQL's CPU under `orderflow bench`. TCP on 127.0.0.1 stays open.
fn socket_url(port: u16, dir: &Path, database: &str) -> String {
    let mut url = url::Url::parse(&format!("postgres://postgres@localhost:{port}/{database}"))
        .expect("a well-formed URL");
    url.query_pairs_mut()
        .append_pair("host", &dir.display().to_string());
    url.into()
}

/// The directories where Debian installs each major version's server.
fn debian_bin_dirs() -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|entries| {
            entries
                .filter_map(|e| e.ok())
                .map(|e| e.path().join("bin"))
                .collect()
        })
        .unwrap_or_default();
    // Newest major version first.
    dirs.sort_by_key(|d| {
        std::cmp::Reverse(
            d.parent()
                .and_then(|p| p.file_name())
                .and_then(|n| n.to_str())
                .and_then(|n| n.parse::<u32>().ok())
                .unwrap_or(0),
        )
    });
    dirs
}

/// `initdb` and `postgres` from the same installation.
pub fn find_binaries() -> anyhow::Result<(PathBuf, PathBuf)> {
    let fallbacks = debian_bin_dirs();
    let initdb = find_program("initdb", &fallbacks)
        .with_context(|| format!("PostgreSQL's initdb was not found on PATH or in /usr/lib/postgresql/*/bin; {INSTALL_HINT}"))?;
    let postgres = initdb.with_file_name("postgres");
    if !postgres.exists() {
        bail!(
            "found {} but no postgres beside it; {INSTALL_HINT}",
            initdb.display()
        );
    }
    Ok((initdb, postgres))
}

impl PostgresCluster {
    pub fn watched(&self) -> super::Watched {
        self.service.watched()
    }

    /// Creates a cluster under `dir` (made if missing) and starts it. With
    /// `throwaway`, `dir` is deleted when the server stops.
    pub async fn start(dir: &Path, throwaway: bool) -> anyhow::Result<Self> {
        Self::start_at(dir, None, throwaway).await
    }

    /// [`start`](Self::start) for a cluster that may be kept: on the port
    /// it had last time when that is free, so that its URL stays the same
    /// across restarts.
    pub async fn start_kept(dir: &Path, throwaway: bool) -> anyhow::Result<Self> {
        let port_file = dir.join("port");
        let last = std::fs::read_to_string(&port_file)
            .ok()
            .and_then(|p| p.trim().parse::<u16>().ok())
            .filter(|p| std::net::TcpListener::bind(("127.0.0.1", *p)).is_ok());
        let cluster = Self::start_at(dir, last, throwaway).await?;
        if !throwaway {
            std::fs::write(&port_file, cluster.port.to_string())
                .with_context(|| format!("writing {}", port_file.display()))?;
        }
        Ok(cluster)
    }

    /// [`start`](Self::start), on `port` when given.
    pub async fn start_at(dir: &Path, port: Option<u16>, throwaway: bool) -> anyhow::Result<Self> {
        let (initdb, postgres) = find_binaries()?;
        let user = running_as_root().then_some(SERVICE_USER);
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        if let Some(user) = user {
            let status = Command::new("chown")
                .arg("-R")
                .arg(format!("{user}:"))
                .arg(dir)
                .status()?;
            if !status.success() {
                bail!(
                    "cannot hand {} to the {user} account (PostgreSQL refuses to run as root)",
                    dir.display()
                );
            }
            if !service_user_reaches(dir) {
                bail!(
                    "PostgreSQL runs as the `{user}` account (it refuses to run as root), \
                     which cannot reach {}\nhint: choose a directory it can reach, \
                     e.g. --data-dir /var/tmp/orderflow",
                    dir.display()
                );
            }
        }
        let data = dir.join("data");
        if !data.join("PG_VERSION").exists() {
            let mut command = match user {
                Some(user) => {
                    let mut c = Command::new("runuser");
                    c.args(["-u", user, "--"]).arg(&initdb);
                    c
                }
                None => Command::new(&initdb),
            };
            let out = command
                .arg("-D")
                .arg(&data)
                .args([
                    "-U",
                    "postgres",
                    "-A",
                    "trust",
                    "-E",
                    "UTF8",
                    "--locale=C",
                    "--no-sync",
                ])
                .output()
                .with_context(|| format!("running {}", initdb.display()))?;
            if !out.status.success() {
                bail!(
                    "initdb failed: {}",
                    String::from_utf8_lossy(&out.stderr).trim()
                );
            }
        }
        let port = match port {
            Some(port) => port,
            None => free_port()?,
        };
        let mut args: Vec<String> = [
            "-D",
            &data.display().to_string(),
            "-p",
            &port.to_string(),
            "-k",
            &dir.display().to_string(),
            "-c",
            "listen_addresses=127.0.0.1",
            "-c",
            "fsync=off",
            "-c",
            "synchronous_commit=off",
            "-c",
            "full_page_writes=off",
            "-c",
            "max_connections=300",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        // Statement counts for `orderflow bench` (and anyone who looks),
        // where the build has the module.
        // (PATH may hold a link to the binary: its library is beside the target.)
        let real = std::fs::canonicalize(&postgres).unwrap_or_else(|_| postgres.clone());
        if real
            .parent()
            .is_some_and(|bin| bin.join("../lib/pg_stat_statements.so").exists())
        {
            args.extend([
                "-c".into(),
                "shared_preload_libraries=pg_stat_statements".into(),
            ]);
        }
        let mut service = Service::spawn(
            "postgres",
            Command::new(&postgres).args(&args),
            user,
            "INT",
            dir.join("postgres.log"),
            throwaway.then_some(dir),
        )?;
        let url = socket_url(port, dir, "postgres");
        service
            .wait_ready("PostgreSQL", Duration::from_secs(30), || async {
                sqlx::PgPool::connect(&url).await.map(drop).is_ok()
            })
            .await?;
        Ok(Self {
            service,
            port,
            dir: dir.to_owned(),
        })
    }

    /// A URL for `database` on this cluster (user `postgres`, no password).
    pub fn url(&self, database: &str) -> String {
        socket_url(self.port, &self.dir, database)
    }

    /// A URL for `name`, creating the database when it does not exist yet.
    pub async fn ensure_database(&self, name: &str) -> anyhow::Result<String> {
        let pool = sqlx::PgPool::connect(&self.url("postgres")).await?;
        let exists: bool =
            sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
                .bind(name)
                .fetch_one(&pool)
                .await?;
        pool.close().await;
        if exists {
            Ok(self.url(name))
        } else {
            self.create_database(name).await
        }
    }

    /// Creates a new, empty database.
    pub async fn create_database(&self, name: &str) -> anyhow::Result<String> {
        let pool = sqlx::PgPool::connect(&self.url("postgres")).await?;
        sqlx::query(&format!("CREATE DATABASE \"{name}\""))
            .execute(&pool)
            .await?;
        pool.close().await;
        Ok(self.url(name))
    }

    pub fn pid(&self) -> u32 {
        self.service.pid()
    }

    pub fn stop(self) {
        self.service.stop();
    }
}
