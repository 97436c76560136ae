//! `orderflow order status ID`.

use std::time::Duration;

use temporalio_client::Client;

use super::render::{Source, StatusDoc, status_card};
use crate::cli::StatusArgs;
use crate::commands::Context;
use crate::domain::WorkflowId;
use crate::exit::Exit;
use crate::workflow::client::{self, Execution, OrderCallError};
use crate::workflow::state::OrderView;

/// How long to wait for a worker to answer a query before reading history.
const QUERY_TIMEOUT: Duration = Duration::from_secs(3);

/// The order's state: live from its worker, final from its result, or what
/// its history recorded when no worker answers.
pub(super) async fn fetch(client: &Client, id: &WorkflowId) -> anyhow::Result<(OrderView, Source)> {
    match client::describe(client, id).await? {
        None => Err(OrderCallError::NotFound(id.to_string()).into()),
        Some(Execution::Closed) => Ok((client::outcome(client, id).await?, Source::Result)),
        Some(Execution::Ended(how)) => {
            let mut view = client::recorded_status(client, id).await?;
            view.failure = Some(crate::workflow::state::FailureView {
                code: crate::domain::FailureCode::Internal,
                message: format!("the workflow was {how} outside orderflow"),
            });
            Ok((view, Source::History))
        }
        Some(Execution::Running) => match client::live_status(client, id, QUERY_TIMEOUT).await? {
            Some(view) => Ok((view, Source::Query)),
            None => Ok((client::recorded_status(client, id).await?, Source::History)),
        },
    }
}

pub async fn run(cx: &Context, args: StatusArgs) -> anyhow::Result<Exit> {
    let (config, client) = super::connect(cx).await?;
    let (view, source) = fetch(&client, &args.id).await?;
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
