//! `orderflow replay`: replays order histories — recent ones from the
//! server, named ones, or exported files — against this binary's workflow
//! code, and says which it could not run on, where and why. Exit 0 when
//! every one replays, 9 when any diverged: run it before a deploy.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context as _;
use futures::StreamExt as _;
use serde::Serialize;

use super::Context;
use crate::cli::ReplayArgs;
use crate::exit::{Exit, Fail};
use crate::temporal::client::OrderClient;
use crate::temporal::replay::{self, BATCH, Recorded, Replayed};

pub async fn run(cx: &Context, args: ReplayArgs) -> anyhow::Result<Exit> {
    let config = cx.temporal()?;
    let keys = config.encryption.clone();
    let replayer = replay::replayer(replay::worker_converter(keys.clone()))?;
    let mut report = Report::new(cx);
    match &args.dir {
        Some(dir) => {
            let files = histories_in(dir)?;
            for batch in files.chunks(BATCH) {
                let mut histories = Vec::with_capacity(batch.len());
                for file in batch {
                    histories.push(read(file)?);
                }
                report.add(replay::replay(&replayer, keys.clone(), histories).await?)?;
            }
        }
        None => {
            let client = OrderClient::connect(&config).await?;
            let ids = match args.ids.is_empty() {
                false => args.ids.clone(),
                true => recent(&client, &config.task_queue, args.since, args.sample).await?,
            };
            for batch in ids.chunks(BATCH) {
                let mut histories = Vec::with_capacity(batch.len());
                for id in batch {
                    let json = client
                        .history_json(id)
                        .await
                        .with_context(|| format!("fetching the history of {id}"))?;
                    histories.push(
                        Recorded::from_json(id.clone(), &json)
                            .with_context(|| format!("reading the history of {id}"))?,
                    );
                }
                report.add(replay::replay(&replayer, keys.clone(), histories).await?)?;
            }
        }
    }
    report.finish()
}

/// The IDs of the orders of `task_queue` started in the last `since`; a
/// uniform sample of `sample` of them when given (reservoir sampling, so
/// memory holds `sample` IDs however many there are).
async fn recent(
    client: &OrderClient,
    task_queue: &str,
    since: Duration,
    sample: Option<u32>,
) -> anyhow::Result<Vec<String>> {
    let from = chrono::Duration::from_std(since)
        .ok()
        .and_then(|d| chrono::Utc::now().checked_sub_signed(d))
        .ok_or_else(|| Fail::usage("--since is too long"))?;
    let query = format!(
        "TaskQueue = '{}' AND StartTime >= '{}'",
        task_queue.replace('\\', "\\\\").replace('\'', "\\'"),
        from.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    );
    let mut scan = std::pin::pin!(client.scan(&query, None));
    let mut kept = Vec::new();
    let mut seen = 0u64;
    let mut random = Random::seeded();
    while let Some(listed) = scan.next().await {
        let id = listed.context("listing the recent orders")?.order_id;
        seen += 1;
        match sample {
            Some(n) if kept.len() >= n as usize => {
                let slot = random.below(seen);
                if slot < u64::from(n) {
                    kept[slot as usize] = id;
                }
            }
            _ => kept.push(id),
        }
    }
    Ok(kept)
}

/// xorshift64*: enough to pick a sample, not for secrets.
struct Random(u64);

impl Random {
    fn seeded() -> Self {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        Self(nanos | 1)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) % n
    }
}

/// The `.json` files of `dir`, by name.
fn histories_in(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let entries = std::fs::read_dir(dir)
        .map_err(|e| Fail::usage(format!("--dir {}: cannot read it: {e}", dir.display())))?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json") && p.is_file())
        .collect();
    files.sort();
    if files.is_empty() {
        return Err(Fail::usage(format!(
            "--dir {}: no .json files in it; export histories with \
             `temporal workflow show --workflow-id ID --output json > ID.json`",
            dir.display()
        ))
        .into());
    }
    Ok(files)
}

fn read(file: &Path) -> anyhow::Result<Recorded> {
    let shown = file.display();
    let bytes =
        std::fs::read(file).map_err(|e| Fail::usage(format!("{shown}: cannot read: {e}")))?;
    let name = file
        .file_name()
        .map_or_else(|| shown.to_string(), |n| n.to_string_lossy().into_owned());
    Recorded::from_json(name, &bytes).map_err(|e| {
        Fail::usage(format!(
            "{shown}: not a workflow history as `temporal workflow show --output json` writes it: {e}"
        ))
        .into()
    })
}

/// Every history's line as it is replayed, then the summary.
struct Report<'c> {
    cx: &'c Context,
    replayed: Vec<Replayed>,
    count: usize,
    diverged: usize,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Summary<'a> {
    replayed: usize,
    diverged: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    histories: Option<&'a [Replayed]>,
}

impl<'c> Report<'c> {
    fn new(cx: &'c Context) -> Self {
        Self {
            cx,
            replayed: Vec::new(),
            count: 0,
            diverged: 0,
        }
    }

    fn add(&mut self, batch: Vec<Replayed>) -> anyhow::Result<()> {
        let p = &self.cx.printer;
        for r in batch {
            self.count += 1;
            self.diverged += usize::from(r.divergence.is_some());
            if p.is_json_lines() {
                p.json_line(&r)?;
            } else if p.is_json() {
                self.replayed.push(r);
            } else {
                let name = crate::domain::escape(&r.name);
                match &r.divergence {
                    None => p.line(format!("{name}  replays  {} events", r.events))?,
                    Some(d) => p.line(format!(
                        "{name}  DIVERGES  {}",
                        crate::domain::escape(&d.to_string())
                    ))?,
                }
            }
        }
        Ok(())
    }

    fn finish(self) -> anyhow::Result<Exit> {
        let p = &self.cx.printer;
        let summary = Summary {
            replayed: self.count,
            diverged: self.diverged,
            histories: (p.is_json() && !p.is_json_lines()).then_some(self.replayed.as_slice()),
        };
        if p.is_json_lines() {
            p.json_line(&summary)?;
        } else if p.is_json() {
            p.json(&summary)?;
        } else if self.count == 0 {
            p.line("no histories to replay: no order started in that time")?;
        } else if self.diverged == 0 {
            p.line(format!(
                "every one of {} histories replays on this build",
                self.count
            ))?;
        } else {
            p.line(format!(
                "{} of {} histories do not replay on this build: orders like them would \
                 fail their workflow tasks after a deploy",
                self.diverged, self.count
            ))?;
        }
        Ok(match self.diverged {
            0 => Exit::Success,
            _ => Exit::ProblemsFound,
        })
    }
}
