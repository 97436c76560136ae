//! `GET /api/orders/{id}/events`: an order's changes as Server-Sent
//! Events — the records of `order watch -o jsonl` — ending with its
//! terminal status. Each event's ID marks where the order was
//! ([`Mark`]): a client that reconnects with `Last-Event-ID` gets every
//! status it has not seen, and nothing twice.

use std::convert::Infallible;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures::SinkExt as _;
use futures::channel::mpsc;

use super::App;
use super::problem::{ApiError, ErrorBody};
use crate::commands::order::{Mark, WatchRecord, records_after, retrying};
use crate::domain::WorkflowId;
use crate::temporal::client::{Execution, OrderCallError, OrderClient};
use crate::workflow::state::OrderView;

/// How often one stream asks its running order for its state, at most.
const POLL: Duration = Duration::from_millis(500);

/// How often a silent Temporal is tried again.
const RECONNECT: Duration = Duration::from_secs(1);

/// Live-state queries per second for all streams together: each is a
/// workflow task on a worker, and a thousand watchers must not slow the
/// orders they watch. Endings do not wait for a query: each stream
/// long-polls its order's result.
const QUERIES_PER_SECOND: u32 = 64;

/// Spaces the queries of every stream of one server evenly.
pub struct Pacer {
    next: Mutex<Instant>,
    spacing: Duration,
}

impl Default for Pacer {
    fn default() -> Self {
        Self {
            next: Mutex::new(Instant::now()),
            spacing: Duration::from_secs(1) / QUERIES_PER_SECOND,
        }
    }
}

impl Pacer {
    /// Waits for this caller's turn.
    async fn turn(&self) {
        let at = {
            let mut next = self.next.lock().unwrap_or_else(|e| e.into_inner());
            let at = (*next).max(Instant::now());
            *next = at + self.spacing;
            at
        };
        tokio::time::sleep_until(at.into()).await;
    }
}

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
        (status = 200, description = "`text/event-stream`: one `change` event per record (data: a WatchRecord, id: where the order was), the last one with a terminal status", body = WatchRecord, content_type = "text/event-stream"),
        (status = 204, description = "`Last-Event-ID` already names the order's ending: nothing more will come"),
        (status = 401, description = "A bearer token is required (serve --api-token-file)", body = ErrorBody),
        (status = 404, description = "No such order", body = ErrorBody),
        (status = 503, description = "Temporal is unreachable", body = ErrorBody),
    )
)]
pub async fn stream(
    State(app): State<App>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let id = WorkflowId::parse(&id).map_err(|e| {
        ApiError::http(
            StatusCode::UNPROCESSABLE_ENTITY,
            "INVALID_INPUT",
            format!("id: {e}"),
        )
    })?;
    let last = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(Mark::parse);
    if app
        .client
        .describe(&id)
        .await
        .map_err(anyhow::Error::from)?
        .is_none()
    {
        return Err(ApiError::from(anyhow::Error::from(
            OrderCallError::NotFound(id.to_string()),
        )));
    }
    if last
        .as_ref()
        .is_some_and(|m| m.rank == crate::commands::order::ENDED)
    {
        return Ok(StatusCode::NO_CONTENT.into_response());
    }
    let (tx, rx) = mpsc::channel::<Result<Event, Infallible>>(16);
    let follow = Follower {
        client: app.client.clone(),
        pacer: app.pacer.clone(),
        id,
        last,
        tx,
    };
    let mut stop = app.stop.clone();
    tokio::spawn(async move {
        tokio::select! {
            () = follow.run() => {}
            // The server stops: the stream ends, and the client resumes
            // from its last event elsewhere.
            _ = stop.wait_for(|&stopping| stopping) => {}
        }
    });
    Ok(Sse::new(rx)
        .keep_alive(KeepAlive::default())
        .into_response())
}

/// Sends one order's records to one client.
struct Follower {
    client: OrderClient,
    pacer: std::sync::Arc<Pacer>,
    id: WorkflowId,
    last: Option<Mark>,
    tx: mpsc::Sender<Result<Event, Infallible>>,
}

impl Follower {
    /// Until the order ends, the client goes, or Temporal stays away.
    async fn run(mut self) {
        let mut view = match self.first().await {
            Some(view) => view,
            None => return,
        };
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

    /// The order as it is now.
    async fn first(&self) -> Option<OrderView> {
        loop {
            match self.client.fetch(&self.id).await {
                Ok((view, _)) => return Some(view),
                Err(OrderCallError::Unreachable(_)) if !self.tx.is_closed() => {
                    tokio::time::sleep(RECONNECT).await;
                }
                Err(e) => {
                    tracing::debug!(order_id = %self.id, "events: {e}");
                    return None;
                }
            }
        }
    }

    /// The order's next state: its result the moment it ends, or its live
    /// state when a query's turn comes and it changed.
    async fn next(&self, max_attempts: &mut Option<Option<u32>>) -> Option<OrderView> {
        let outcome = self.client.outcome(&self.id);
        tokio::pin!(outcome);
        let mut wait = POLL;
        loop {
            tokio::select! {
                result = &mut outcome => match result {
                    Ok(view) => return Some(view),
                    Err(OrderCallError::Unreachable(_)) => {
                        tokio::time::sleep(RECONNECT).await;
                        outcome.set(self.client.outcome(&self.id));
                    }
                    // Still running: the wait broke off; wait again.
                    Err(_) if matches!(self.client.describe(&self.id).await, Ok(Some(Execution::Running))) => {
                        tokio::time::sleep(RECONNECT).await;
                        outcome.set(self.client.outcome(&self.id));
                    }
                    // Terminated from outside: what was recorded.
                    Err(_) => return self.client.fetch(&self.id).await.ok().map(|(v, _)| v),
                },
                () = async { tokio::time::sleep(wait).await; self.pacer.turn().await } => {
                    wait = POLL;
                    if self.tx.is_closed() {
                        return None;
                    }
                    if let Ok(Some(view)) = self.client.live_status(&self.id, Duration::from_secs(2)).await
                        && !view.status.is_terminal()
                        && self.changed(&view)
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

    /// Whether `view` holds a record the client has not had.
    fn changed(&self, view: &OrderView) -> bool {
        !records_after(view, self.last.as_ref()).is_empty()
    }

    /// Sends what `view` holds that the client has not had; false when the
    /// client has gone.
    async fn send(&mut self, view: &OrderView, max_attempts: Option<u32>) -> bool {
        for mut record in records_after(view, self.last.as_ref()) {
            if record.attempt.is_some() && record.step == view.step {
                record.max_attempts = max_attempts;
            }
            let mark = record.mark();
            let Ok(event) = Event::default()
                .event("change")
                .id(&mark)
                .json_data(&record)
            else {
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
