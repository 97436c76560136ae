//! Orders' changes as Server-Sent Events — the records of `order watch -o
//! jsonl` — each order's ending with its terminal status.
//! `GET /api/orders/{id}/events` follows one order; `GET /api/events`
//! follows many on one connection (a browser has few). Each event's ID
//! marks where its order was ([`Mark`]): a client that comes back with it
//! (`Last-Event-ID`, or `order=ID@MARK`) gets every status it has not
//! seen, and nothing twice.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures::SinkExt as _;
use futures::channel::mpsc;

use super::app::{App, Pacer};
use super::problem::{ApiError, ErrorBody};
use super::request::order_id;
use crate::commands::order::{Mark, WatchRecord, records_after, retrying};
use crate::domain::{OrderId, WorkflowId};
use crate::temporal::client::{Execution, OrderCallError, OrderClient};
use crate::workflow::state::OrderView;

/// How often one stream asks its running order for its state, at most.
const POLL: Duration = Duration::from_millis(500);

/// How often a silent Temporal is tried again.
const RECONNECT: Duration = Duration::from_secs(1);

/// A stream ends after this long; its client comes back with its marks.
/// No client holds a connection forever on an order that never ends.
const LIFETIME: Duration = Duration::from_secs(15 * 60);

/// The most orders one `GET /api/events` follows.
const MAX_ORDERS: usize = 100;

type Events = mpsc::Sender<Result<Event, Infallible>>;

/// Follow an order's changes to its end.
#[utoipa::path(
    get,
    path = "/api/orders/{id}/events",
    tag = "orders",
    params(
        ("id" = String, Path, description = "The order's ID"),
        ("Last-Event-ID" = Option<String>, Header, description = "The ID of the last event received: the stream goes on from there"),
    ),
    responses(
        (status = 200, description = "`text/event-stream`: one `change` event per record (data: a WatchRecord, id: where the order was), the last one with a terminal status; it also ends after 15 minutes or when the server stops: come back with `Last-Event-ID`", body = WatchRecord, content_type = "text/event-stream"),
        (status = 204, description = "`Last-Event-ID` already names the order's ending: nothing more will come"),
        (status = 401, description = "A bearer token is required (serve --api-token-file)", body = ErrorBody),
        (status = 404, description = "No such order", body = ErrorBody),
        (status = 422, description = "Not an order ID", body = ErrorBody),
        (status = 503, description = "Temporal is unreachable", body = ErrorBody),
    )
)]
pub async fn stream(
    State(app): State<App>,
    id: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let id = order_id(id)?;
    let last = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(Mark::parse);
    let (view, last) = start(&app, id, last).await?;
    if last
        .as_ref()
        .is_some_and(|m| m.status.is_terminal() && view.status.is_terminal())
    {
        return Ok(StatusCode::NO_CONTENT.into_response());
    }
    let (tx, rx) = mpsc::channel(16);
    spawn(&app, view, last, tx, Label::Mark);
    Ok(Sse::new(rx)
        .keep_alive(KeepAlive::default())
        .into_response())
}

/// Follow many orders' changes on one connection.
#[utoipa::path(
    get,
    path = "/api/events",
    tag = "orders",
    params(
        ("order" = Vec<String>, Query, description = "An order to follow, `ID` or `ID@MARK` to go on after the event whose ID was `ID@MARK`; repeat, at most 100"),
    ),
    responses(
        (status = 200, description = "`text/event-stream`: one `change` event per record of any of the orders (data: a WatchRecord, id: `ID@MARK`); it ends once every order has ended, after 15 minutes, or when the server stops: come back with the orders still running and their last marks (a `Last-Event-ID: ID@MARK` is taken as that order's mark)", body = WatchRecord, content_type = "text/event-stream"),
        (status = 204, description = "Every order's mark already names its ending: nothing more will come"),
        (status = 401, description = "A bearer token is required (serve --api-token-file)", body = ErrorBody),
        (status = 404, description = "One of the orders does not exist (named in the message)", body = ErrorBody),
        (status = 422, description = "No order, more than 100, or a bad ID", body = ErrorBody),
        (status = 503, description = "Temporal is unreachable", body = ErrorBody),
    )
)]
pub async fn many(
    State(app): State<App>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let mut wanted: Vec<(OrderId, Option<Mark>)> = Vec::new();
    for (name, value) in url::form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
        if name != "order" {
            let name: String = name.chars().take(40).collect();
            return Err(ApiError::field(
                &name,
                "is not a parameter here; repeat order=ID[@MARK]",
            ));
        }
        let (id, mark) = match value.split_once('@') {
            Some((id, mark)) => (id, Mark::parse(mark)),
            None => (value.as_ref(), None),
        };
        let id = OrderId::parse(id).map_err(|e| ApiError::field("order", e.to_string()))?;
        if wanted.iter().any(|(w, _)| *w == id) {
            continue;
        }
        if wanted.len() == MAX_ORDERS {
            return Err(too_many());
        }
        wanted.push((id, mark));
    }
    // A client that came back by itself (EventSource) says where it was
    // for one order: the last event's `ID@MARK`.
    let resumed = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once('@'))
        .and_then(|(id, mark)| Some((OrderId::parse(id).ok()?, Mark::parse(mark)?)));
    if let Some((id, mark)) = resumed
        && let Some(entry) = wanted.iter_mut().find(|(w, _)| *w == id)
    {
        entry.1 = Some(mark);
    }
    if wanted.is_empty() {
        return Err(too_many());
    }
    let started =
        futures::future::try_join_all(wanted.into_iter().map(|(id, mark)| start(&app, id, mark)))
            .await?;
    let going: Vec<_> = started
        .into_iter()
        .filter(|(view, last)| {
            !last
                .as_ref()
                .is_some_and(|m| m.status.is_terminal() && view.status.is_terminal())
        })
        .collect();
    // Every one already ended, as the client knows: nothing more will come.
    if going.is_empty() {
        return Ok(StatusCode::NO_CONTENT.into_response());
    }
    let (tx, rx) = mpsc::channel(64);
    for (view, last) in going {
        spawn(&app, view, last, tx.clone(), Label::OrderAndMark);
    }
    // The stream ends when the last follower drops its sender.
    drop(tx);
    Ok(Sse::new(rx)
        .keep_alive(KeepAlive::default())
        .into_response())
}

fn too_many() -> ApiError {
    ApiError::field(
        "order",
        format!("name 1 to {MAX_ORDERS} orders: order=ID[@MARK], repeated"),
    )
}

/// The order as it is now (its errors answered before the stream starts),
/// and the client's mark, unless it cannot be this order's: a mark of an
/// ending while the order still runs. Its look is a query like any
/// other: it waits for its turn.
async fn start(
    app: &App,
    id: OrderId,
    last: Option<Mark>,
) -> Result<(OrderView, Option<Mark>), ApiError> {
    app.pacer.turn().await;
    let (view, _) = app.client.fetch(&id).await.map_err(anyhow::Error::from)?;
    let last = last.filter(|m| !m.status.is_terminal() || view.status.is_terminal());
    Ok((view, last))
}

/// How an event's ID reads.
#[derive(Clone, Copy)]
enum Label {
    /// The mark: one order's stream.
    Mark,
    /// `ID@MARK`: a stream of many.
    OrderAndMark,
}

/// Follows one order into `tx` until it ends, the client goes, the
/// stream's lifetime passes or the server stops.
fn spawn(app: &App, view: OrderView, last: Option<Mark>, tx: Events, label: Label) {
    let follower = Follower {
        client: app.client.clone(),
        pacer: app.pacer.clone(),
        id: view.order_id.clone(),
        last,
        label,
        tx,
    };
    let mut stop = app.stop.clone();
    tokio::spawn(async move {
        tokio::select! {
            () = follower.run(view) => {}
            () = tokio::time::sleep(LIFETIME) => {}
            // The server stops: the stream ends, and the client resumes
            // from its last event elsewhere.
            _ = stop.wait_for(|&stopping| stopping) => {}
        }
    });
}

/// Sends one order's records to one client.
struct Follower {
    client: OrderClient,
    pacer: std::sync::Arc<Pacer>,
    id: WorkflowId,
    last: Option<Mark>,
    label: Label,
    tx: Events,
}

impl Follower {
    /// From `view` until the order ends or the client goes.
    async fn run(mut self, mut view: OrderView) {
        let mut max_attempts: Option<Option<u32>> = None;
        loop {
            if !self.send(&view, max_attempts.flatten()).await || view.status.is_terminal() {
                return;
            }
            view = match self.next(&mut max_attempts).await {
                Some(view) => view,
                None => return,
            };
        }
    }

    /// The order's next state: its result the moment it ends, or its live
    /// state when a query's turn comes and it changed.
    async fn next(&self, max_attempts: &mut Option<Option<u32>>) -> Option<OrderView> {
        let outcome = self.client.outcome(&self.id);
        tokio::pin!(outcome);
        loop {
            tokio::select! {
                result = &mut outcome => match result {
                    Ok(view) => return Some(view),
                    Err(OrderCallError::Unreachable(_)) => {
                        tokio::time::sleep(RECONNECT).await;
                        outcome.set(self.client.outcome(&self.id));
                    }
                    Err(_) => match self.client.describe(&self.id).await {
                        // Still running, or no answer: the wait broke off; wait again.
                        Ok(Some(Execution::Running)) | Err(OrderCallError::Unreachable(_)) => {
                            tokio::time::sleep(RECONNECT).await;
                            outcome.set(self.client.outcome(&self.id));
                        }
                        // Terminated from outside: what was recorded.
                        _ => return self.client.fetch(&self.id).await.ok().map(|(v, _)| v),
                    },
                },
                () = async { tokio::time::sleep(POLL).await; self.pacer.turn().await } => {
                    if self.tx.is_closed() {
                        return None;
                    }
                    if let Ok(Some(view)) = self.client.live_status(&self.id, Duration::from_secs(2)).await
                        && !view.status.is_terminal()
                        && !records_after(&view, self.last.as_ref()).is_empty()
                    {
                        if max_attempts.is_none() && retrying(&view) {
                            *max_attempts = Some(self.client.max_attempts(&self.id).await.ok().flatten());
                        }
                        return Some(view);
                    }
                }
            }
        }
    }

    /// Sends what `view` holds that the client has not had; false when the
    /// client has gone.
    async fn send(&mut self, view: &OrderView, max_attempts: Option<u32>) -> bool {
        for mut record in records_after(view, self.last.as_ref()) {
            if record.attempt.is_some() && record.step == view.step {
                record.max_attempts = max_attempts;
            }
            let mark = record.mark();
            let id = match self.label {
                Label::Mark => mark.clone(),
                Label::OrderAndMark => format!("{}@{mark}", self.id),
            };
            let Ok(event) = Event::default().event("change").id(id).json_data(&record) else {
                return false;
            };
            if self.tx.send(Ok(event)).await.is_err() {
                return false;
            }
            self.last = Mark::parse(&mark);
        }
        true
    }
}
