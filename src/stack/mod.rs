//! Local services for development and tests: a throwaway PostgreSQL cluster
//! and a Temporal dev server, started from the binaries on this machine.
//!
//! Each service runs under a small shell "lifeline": the service is stopped
//! when its [`Service`] is dropped *and* when this process dies for any
//! reason, because the lifeline waits on a pipe that only we hold open.

pub mod codec;
pub mod local;
pub mod postgres;
pub mod temporal_server;

use std::future::Future;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};

/// A free TCP port on 127.0.0.1 (free when asked; bind promptly).
pub fn free_port() -> std::io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// Polls `probe` until it yields a value, or fails once `timeout` has
/// passed: the one polling helper of the program and of its tests.
pub async fn poll<T, F, Fut>(what: &str, timeout: Duration, mut probe: F) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = probe().await {
            return Ok(value);
        }
        if Instant::now() >= deadline {
            bail!(
                "{what} was not ready within {}",
                humantime::format_duration(timeout)
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The CPU time a process has used, in seconds (`/proc/PID/stat`).
pub fn cpu_seconds(pid: u32) -> anyhow::Result<f64> {
    Ok(stat_ticks(pid)?.0)
}

/// The CPU time of a process and of everything under it, live or ended
/// (an ended child's time is in its parent's `cutime`), in seconds:
/// PostgreSQL's postmaster and its backends, say.
pub fn tree_cpu_seconds(root: u32) -> anyhow::Result<f64> {
    let mut parents = std::collections::HashMap::new();
    for entry in std::fs::read_dir("/proc")?.flatten() {
        if let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
            && let Ok((_, parent, _)) = stat_ticks(pid)
        {
            parents.insert(pid, parent);
        }
    }
    let under_root = |mut pid: u32| loop {
        if pid == root {
            return true;
        }
        match parents.get(&pid) {
            Some(&parent) if parent != 0 && parent != pid => pid = parent,
            _ => return false,
        }
    };
    let mut total = 0.0;
    for &pid in parents.keys() {
        if under_root(pid)
            && let Ok((own, _, children)) = stat_ticks(pid)
        {
            total += own + children;
        }
    }
    Ok(total)
}

/// A process's own CPU seconds, its parent, and its waited-for children's
/// CPU seconds.
fn stat_ticks(pid: u32) -> anyhow::Result<(f64, u32, f64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .with_context(|| format!("reading /proc/{pid}/stat"))?;
    // After the command's name (in parentheses, which may hold spaces): the
    // parent is the 2nd field; utime, stime, cutime, cstime the 12th to 15th.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or_default();
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let field = |i: usize| -> anyhow::Result<f64> {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .with_context(|| format!("/proc/{pid}/stat has no field {i}"))
    };
    // USER_HZ is 100 on Linux.
    Ok((
        (field(11)? + field(12)?) / 100.0,
        field(1)? as u32,
        (field(13)? + field(14)?) / 100.0,
    ))
}

/// The peak resident memory (VmHWM) a `/proc/PID/status` file reports, in MiB.
pub fn peak_rss_mib(status: &str) -> anyhow::Result<f64> {
    memory_mib(status, "VmHWM")
}

/// A memory figure (`VmHWM`, `VmRSS`, …) of a `/proc/PID/status` file, in MiB.
pub fn memory_mib(status: &str, key: &str) -> anyhow::Result<f64> {
    let text = std::fs::read_to_string(status).with_context(|| format!("reading {status}"))?;
    let kib: f64 = text
        .lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .with_context(|| format!("no {key} in {status}"))?;
    Ok(kib / 1024.0)
}

/// A background service tied to this process's life.
#[derive(Debug)]
pub struct Service {
    name: &'static str,
    child: Child,
    pub log: PathBuf,
}

/// A started service as its supervisor sees it (`orderflow dev`).
#[derive(Debug, Clone)]
pub struct Watched {
    pub name: &'static str,
    /// Its lifeline shell: the service is that shell's child.
    shell: u32,
    pub log: PathBuf,
}

impl Watched {
    /// Whether the service itself still runs: a process under its
    /// lifeline (and `runuser`, when it runs as another user) other than
    /// the lifeline's own, and not a zombie the lifeline has yet to reap.
    pub fn alive(&self) -> bool {
        // Where the kernel does not list a process's children, it is taken
        // to run as long as its lifeline does.
        let shell = self.shell;
        if !Path::new(&format!("/proc/{shell}/task/{shell}/children")).exists() {
            return Path::new(&format!("/proc/{shell}")).exists();
        }
        let mut pending = vec![self.shell];
        while let Some(pid) = pending.pop() {
            let Ok(children) = std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
            else {
                continue;
            };
            for child in children
                .split_whitespace()
                .filter_map(|c| c.parse::<u32>().ok())
            {
                let comm =
                    std::fs::read_to_string(format!("/proc/{child}/comm")).unwrap_or_default();
                let state = std::fs::read_to_string(format!("/proc/{child}/stat"))
                    .ok()
                    .and_then(|stat| {
                        // `pid (comm) S …`: the state follows the last ')'.
                        stat.rsplit_once(')')
                            .and_then(|(_, rest)| rest.trim_start().chars().next())
                    });
                if matches!(state, None | Some('Z' | 'X')) {
                    continue;
                }
                match comm.trim() {
                    "sh" | "runuser" => pending.push(child),
                    "cat" => {}
                    _ => return true,
                }
            }
        }
        false
    }
}

/// The lifeline: start the service in the background, wait until our end of
/// stdin closes (we dropped it, or we died), then stop it with `$SIG`.
/// With `$CLEANUP` set, that directory is removed once the service is gone.
const LIFELINE: &str = r#"sig=$1; shift; "$@" & pid=$!; cat >/dev/null; kill -s "$sig" "$pid" 2>/dev/null; wait "$pid"; [ -z "$CLEANUP" ] || rm -rf "$CLEANUP""#;

impl Service {
    /// Starts `service` — its program, arguments and added environment —
    /// (as `user` when given), logging to `log`; it is stopped with
    /// `stop_signal` (e.g. "INT"), and then `cleanup`, if given, is removed.
    pub fn spawn(
        name: &'static str,
        service: &Command,
        user: Option<&str>,
        stop_signal: &str,
        log: PathBuf,
        cleanup: Option<&Path>,
    ) -> anyhow::Result<Self> {
        use std::os::unix::process::CommandExt as _;
        let log_file =
            std::fs::File::create(&log).with_context(|| format!("creating {}", log.display()))?;
        let mut command = match user {
            Some(user) => {
                let mut c = Command::new("runuser");
                c.args(["-u", user, "--", "sh"]);
                c
            }
            None => Command::new("sh"),
        };
        command
            .arg("-c")
            .arg(LIFELINE)
            .arg("lifeline")
            .arg(stop_signal)
            .arg(service.get_program())
            .args(service.get_args())
            .envs(
                service
                    .get_envs()
                    .filter_map(|(key, value)| value.map(|v| (key, v))),
            )
            .env(
                "CLEANUP",
                cleanup.map(|p| p.as_os_str()).unwrap_or_default(),
            )
            .stdin(Stdio::piped())
            .stdout(log_file.try_clone()?)
            .stderr(log_file)
            // Its own process group: a Ctrl-C at our terminal is ours to
            // handle, and we stop the services in order.
            .process_group(0);
        let child = command.spawn().with_context(|| {
            format!(
                "starting {name} ({})",
                Path::new(service.get_program()).display()
            )
        })?;
        Ok(Self { name, child, log })
    }

    /// The process ID of the service's lifeline shell.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The process ID of the service itself (not its lifeline), while it runs.
    pub fn service_pid(&self) -> anyhow::Result<u32> {
        let shell = self.child.id();
        let children = std::fs::read_to_string(format!("/proc/{shell}/task/{shell}/children"))?;
        // The lifeline's other child is the `cat` that waits on its pipe.
        children
            .split_whitespace()
            .find(|pid| {
                std::fs::read_to_string(format!("/proc/{pid}/comm"))
                    .is_ok_and(|comm| comm.trim() != "cat")
            })
            .and_then(|pid| pid.parse().ok())
            .with_context(|| format!("{} is not running", self.name))
    }

    /// What a supervisor needs to tell whether the service still runs.
    pub fn watched(&self) -> Watched {
        Watched {
            name: self.name,
            shell: self.child.id(),
            log: self.log.clone(),
        }
    }

    /// The peak resident memory of the service itself (not its lifeline),
    /// in MiB, while it runs.
    pub fn peak_rss_mib(&self) -> anyhow::Result<f64> {
        peak_rss_mib(&format!("/proc/{}/status", self.service_pid()?))
    }

    /// Whether the service (its lifeline) is still running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Polls `check` until the service answers; on a timeout the error
    /// says whether it is still running and shows the end of its log.
    pub async fn wait_ready<F, Fut>(
        &mut self,
        what: &str,
        timeout: Duration,
        mut check: F,
    ) -> anyhow::Result<()>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = bool>,
    {
        let ready = poll(what, timeout, || {
            let checked = check();
            async move { checked.await.then_some(()) }
        });
        if let Err(e) = ready.await {
            let state = if self.is_running() {
                "running"
            } else {
                "exited"
            };
            bail!("{e} (server {state}); its log says:\n{}", self.log_tail());
        }
        Ok(())
    }

    /// The last lines of its log, for error messages.
    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(15)..].join("\n")
    }

    /// Stops the service and waits for it to exit.
    pub fn stop(mut self) {
        self.shutdown();
    }

    /// Kills the service with SIGKILL, as a crash would, and waits for it.
    /// The lifeline and the service share a process group of their own.
    pub fn kill(mut self) {
        let group = self.child.id();
        let _ = Command::new("sh")
            .args(["-c", &format!("kill -s KILL -- -{group}")])
            .status();
        self.shutdown();
    }

    fn shutdown(&mut self) {
        drop(self.child.stdin.take());
        let _ = self.child.wait();
        tracing::debug!(service = self.name, "stopped");
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// Finds an executable on PATH, then in `fallbacks` (glob-free directories).
pub fn find_program(name: &str, fallbacks: &[PathBuf]) -> Option<PathBuf> {
    let on_path = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .unwrap_or_default();
    on_path
        .iter()
        .chain(fallbacks)
        .map(|dir| dir.join(name))
        .find(|candidate| is_executable(candidate))
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt as _;
    path.metadata()
        .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// True when running as root (PostgreSQL refuses to run as root).
pub fn running_as_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}
