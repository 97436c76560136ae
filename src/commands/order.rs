//! `orderflow order …`.

use super::Context;
use crate::cli::OrderCommand;
use crate::exit::Exit;

pub async fn run(_cx: &Context, command: OrderCommand) -> anyhow::Result<Exit> {
    super::not_yet_implemented(match command {
        OrderCommand::Create(_) => "order create",
        OrderCommand::Status(_) => "order status",
        OrderCommand::Watch(_) => "order watch",
        OrderCommand::Cancel(_) => "order cancel",
        OrderCommand::List(_) => "order list",
    })
}
