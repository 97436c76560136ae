//! `orderflow worker`: hosts the order workflow and its activities.

use super::Context;
use crate::cli::WorkerArgs;
use crate::exit::Exit;

pub async fn run(cx: &Context, args: WorkerArgs) -> anyhow::Result<Exit> {
    // Check both dependencies now so a misconfigured worker fails fast (exit 8).
    let database = cx.database()?;
    let temporal = cx.temporal()?;
    let _pool = crate::db::connect(&database, args.db_max_connections).await?;
    let _client = crate::temporal::connect(&temporal).await?;
    super::not_yet_implemented("worker")
}
