//! `orderflow order status ID`.

use serde::Serialize;

use super::render::{StatusDoc, status_card};
use crate::cli::StatusArgs;
use crate::commands::Context;
use crate::db::orders::Links;
use crate::exit::Exit;

pub async fn run(cx: &Context, args: StatusArgs) -> anyhow::Result<Exit> {
    let (config, client) = super::connect(cx).await?;
    let (view, source) = client.fetch(&args.id).await?;
    if args.timeline {
        return super::timeline::run(cx, &client, &args.id, &view).await;
    }
    // A resubmission's links, from the database when one is configured
    // and answers at once: Temporal does not know them, and the status
    // itself must not wait on the database.
    let links = match cx.database() {
        Ok(_) => {
            let read = async {
                crate::db::orders::links(&cx.pool().await?, args.id.as_str())
                    .await
                    .map_err(anyhow::Error::from)
            };
            match tokio::time::timeout(std::time::Duration::from_secs(1), read).await {
                Ok(Ok(links)) => links,
                Ok(Err(e)) => {
                    tracing::debug!("resubmission links not read: {e:#}");
                    Links::default()
                }
                Err(_) => Links::default(),
            }
        }
        Err(_) => Links::default(),
    };
    let ui_url = config.ui_link(args.id.as_str());
    if cx.printer.is_json() {
        #[derive(Serialize)]
        struct Shown<'a> {
            #[serde(flatten)]
            doc: StatusDoc<'a>,
            #[serde(flatten)]
            links: &'a Links,
        }
        cx.printer.json(&Shown {
            doc: StatusDoc {
                view: &view,
                ui_url,
                source,
            },
            links: &links,
        })?;
    } else {
        cx.printer
            .line(status_card(&cx.printer, &view, &ui_url, source))?;
        if let Some(from) = &links.resubmitted_from {
            cx.printer
                .line(format!("Resubmitted from {}", crate::domain::escape(from)))?;
        }
        if let Some(to) = &links.resubmitted_as {
            cx.printer
                .line(format!("Resubmitted as {}", crate::domain::escape(to)))?;
        }
    }
    Ok(Exit::Success)
}
