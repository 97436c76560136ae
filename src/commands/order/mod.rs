//! `orderflow order …`: one file per subcommand, and what they share.

mod bulk;
mod cancel;
mod create;
mod list;
mod progress;
mod render;
mod resubmit;
mod status;
mod timeline;
mod watch;

pub(crate) use cancel::{CancelDoc, Cancellation, cancel, refused};
pub(crate) use create::{Pace, Submission, conflict, submit_all};
pub(crate) use list::{OrderRow, Page, Selection, page};
pub(crate) use render::{Mark, StatusDoc, WatchRecord, records_after};
pub(crate) use watch::{Follow, OnInterrupt, no_worker, retrying};

use super::Context;
use crate::cli::OrderCommand;
use crate::exit::Exit;
use crate::temporal::TemporalConfig;
use crate::temporal::client::OrderClient;

pub async fn run(cx: &Context, command: OrderCommand) -> anyhow::Result<Exit> {
    match command {
        OrderCommand::Create(args) => create::run(cx, args).await,
        OrderCommand::Status(args) => status::run(cx, args).await,
        OrderCommand::Watch(args) => watch::run(cx, args).await,
        OrderCommand::Cancel(args) => cancel::run(cx, args).await,
        OrderCommand::List(args) => list::run(cx, args).await,
        OrderCommand::Resubmit(args) => resubmit::run(cx, args).await,
    }
}

/// The Temporal settings and a connected client (exit 8 when unreachable).
async fn connect(cx: &Context) -> anyhow::Result<(TemporalConfig, OrderClient)> {
    let config = cx.temporal()?;
    let client = OrderClient::connect(&config).await?;
    Ok((config, client))
}
