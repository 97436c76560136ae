//! `orderflow order status ID`.

use super::render::{StatusDoc, status_card};
use crate::cli::StatusArgs;
use crate::commands::Context;
use crate::exit::Exit;

pub async fn run(cx: &Context, args: StatusArgs) -> anyhow::Result<Exit> {
    let (config, client) = super::connect(cx).await?;
    let (view, source) = client.fetch(&args.id).await?;
    if args.timeline {
        return super::timeline::run(cx, &client, &args.id, &view).await;
    }
    let ui_url = config.ui_link(args.id.as_str());
    if cx.printer.is_json() {
        cx.printer.json(&StatusDoc {
            view: &view,
            ui_url,
            source,
        })?;
    } else {
        cx.printer
            .line(status_card(&cx.printer, &view, &ui_url, source))?;
    }
    Ok(Exit::Success)
}
