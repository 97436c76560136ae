//! Order histories replayed against this build's workflow code: whether a
//! deploy can run the orders already in flight. `orderflow replay` and the
//! committed-history tests (`tests/it/replay.rs`) both use this.

use std::sync::Arc;

use serde::Serialize;
use temporalio_client::WorkflowHistory;
use temporalio_common::data_converters::DataConverter;
use temporalio_common::protos::temporal::api::enums::v1::EventType;
use temporalio_common::protos::temporal::api::history::v1::{History, HistoryEvent};
use temporalio_sdk::workflow_replayer::{
    WorkflowReplayError, WorkflowReplayFailure, WorkflowReplayer, WorkflowReplayerOptions,
};

use super::codec::Keyring;
pub use super::codec::worker_converter;
use crate::workflow::OrderWorkflow;

/// Histories replayed by one replay worker at a time: bounds memory.
pub const BATCH: usize = 50;

/// A replayer of this build's `OrderWorkflow`.
pub fn replayer(converter: DataConverter) -> anyhow::Result<WorkflowReplayer> {
    replayer_with(
        WorkflowReplayerOptions::new()
            .register_workflow::<OrderWorkflow>()?
            .data_converter(converter)
            .build(),
    )
}

/// A replayer of whatever `options` register (a test's other workflow code).
pub fn replayer_with(options: WorkflowReplayerOptions) -> anyhow::Result<WorkflowReplayer> {
    Ok(WorkflowReplayer::new(options)?)
}

/// One history to replay: what to call it (the order's ID, or its file)
/// and its events.
pub struct Recorded {
    pub name: String,
    pub history: WorkflowHistory,
}

impl Recorded {
    /// A history as Temporal's JSON holds it (`temporal workflow show
    /// --output json`, [`OrderClient::history_json`](super::client::OrderClient::history_json)).
    pub fn from_json(name: impl Into<String>, json: &[u8]) -> anyhow::Result<Self> {
        Ok(Self {
            name: name.into(),
            history: WorkflowHistory::from_json(json)?,
        })
    }
}

/// How one history replayed.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Replayed {
    /// The order's ID, or the file it was read from.
    pub name: String,
    pub events: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub divergence: Option<Divergence>,
}

/// Where and why a history did not replay.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Divergence {
    /// `nondeterminism`, `invalid-history`, `task-failure` or `internal`.
    pub kind: &'static str,
    /// The event the workflow code no longer matches, when the SDK names it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event_id: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event_type: Option<String>,
    pub message: String,
}

impl std::fmt::Display for Divergence {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (self.event_id, &self.event_type) {
            (Some(id), Some(kind)) => write!(f, "at event {id} ({kind}): ")?,
            (Some(id), None) => write!(f, "at event {id}: ")?,
            _ => {}
        }
        write!(f, "{}: {}", self.kind, self.message)
    }
}

impl Divergence {
    fn from_failure(failure: &WorkflowReplayFailure) -> Self {
        let (kind, message) = match failure {
            WorkflowReplayFailure::Nondeterminism { message } => ("nondeterminism", message),
            WorkflowReplayFailure::InvalidHistory { message } => ("invalid-history", message),
            WorkflowReplayFailure::WorkflowTaskFailure { message } => ("task-failure", message),
            WorkflowReplayFailure::Internal { message, .. } => ("internal", message),
            // A kind a later SDK adds.
            other => ("internal", &other.to_string()),
        };
        let (event_id, event_type) = named_event(message);
        Self {
            kind,
            event_id,
            event_type,
            message: plain(message),
        }
    }
}

/// The SDK's own words out of the Debug dump of a failure it wraps them in
/// (`… Failure { message: "[TMPRL1100] Nondeterminism error: …", source: …`).
fn plain(message: &str) -> String {
    const AT: &str = "message: \"";
    let Some(at) = message.find(AT) else {
        return message.trim().to_owned();
    };
    let rest = &message[at + AT.len()..];
    match rest.find("\", ") {
        Some(end) => rest[..end].replace("\\\"", "\"").replace("\\'", "'"),
        None => message.trim().to_owned(),
    }
}

/// The first event a message names as `HistoryEvent(id: 5, ActivityTaskScheduled)`,
/// as the SDK's nondeterminism errors do.
fn named_event(message: &str) -> (Option<i64>, Option<String>) {
    let Some(at) = message.find("HistoryEvent(id: ") else {
        return (None, None);
    };
    let rest = &message[at + "HistoryEvent(id: ".len()..];
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    let kind = rest[digits.len()..]
        .strip_prefix(", ")
        .and_then(|r| r.split(')').next())
        .filter(|k| !k.is_empty())
        .map(str::to_owned);
    (digits.parse().ok(), kind)
}

/// Replays `histories` (at most [`BATCH`] is sensible) and says how each
/// went, in their order. `Err` only when the replay worker itself could
/// not run.
///
/// A history that diverged is decoded once more with `keys`: when a payload
/// is sealed under a key they lack, that is the error (exit 2, naming the
/// key), not a divergence of the code.
pub async fn replay(
    replayer: &WorkflowReplayer,
    keys: Option<Arc<Keyring>>,
    histories: Vec<Recorded>,
) -> anyhow::Result<Vec<Replayed>> {
    let names: Vec<String> = histories.iter().map(|h| h.name.clone()).collect();
    let results = match replayer
        .replay_workflows(histories.into_iter().map(|h| h.history))
        .await
    {
        Ok(results) => results,
        Err(WorkflowReplayError::Replay(failure)) => {
            anyhow::bail!("replaying {}: {failure}", names.join(", "))
        }
        Err(e) => return Err(anyhow::Error::new(e).context("running the replay worker")),
    };
    let mut replayed = Vec::with_capacity(results.len());
    for (name, result) in names.into_iter().zip(results) {
        let events = result.history.events();
        let mut divergence = result.replay_failure.as_ref().map(Divergence::from_failure);
        if let Some(d) = &mut divergence {
            readable(events, keys.clone())
                .await
                .map_err(|e| e.context(format!("replaying {name}")))?;
            if d.event_id.is_none()
                && let Some(event) = locate(replayer, events).await
            {
                d.event_id = Some(event.event_id);
                d.event_type = Some(event_type(event));
            }
        }
        replayed.push(Replayed {
            name,
            events: events.len(),
            divergence,
        });
    }
    Ok(replayed)
}

/// The event where a history stops replaying, when the SDK's message does
/// not name it (a local activity's does not): the history is replayed cut
/// after each completed workflow task in turn; the first cut that fails
/// holds the task whose commands the code no longer makes, and its first
/// event is the one named.
async fn locate<'e>(
    replayer: &WorkflowReplayer,
    events: &'e [HistoryEvent],
) -> Option<&'e HistoryEvent> {
    let completed: Vec<usize> = events
        .iter()
        .enumerate()
        .filter(|(_, e)| e.event_type == EventType::WorkflowTaskCompleted as i32)
        .map(|(i, _)| i)
        .collect();
    for pair in completed.windows(2) {
        let cut = WorkflowHistory::from(History {
            events: events[..=pair[1]].to_vec(),
        });
        match replayer.replay_workflows([cut]).await {
            Ok(results) if results.iter().all(|r| r.replay_failure.is_none()) => {}
            // The commands of the task completed at pair[0].
            _ => return events.get(pair[0] + 1),
        }
    }
    // The last task's commands, or the first task's input.
    completed
        .last()
        .and_then(|last| events.get(last + 1))
        .or(events.first())
}

fn event_type(event: &HistoryEvent) -> String {
    format!(
        "{:?}",
        EventType::try_from(event.event_type).unwrap_or_default()
    )
}

/// `Err` with the [`CodecError`](crate::temporal::codec::CodecError) when
/// a payload of `events` is sealed under a key `keys` lack.
async fn readable(events: &[HistoryEvent], keys: Option<Arc<Keyring>>) -> anyhow::Result<()> {
    use temporalio_common::data_converters::{
        SerializationContextData, WorkflowSerializationContext,
    };
    let codec = super::codec::Codec(keys);
    let context = SerializationContextData::Workflow(WorkflowSerializationContext::new());
    for event in events {
        let mut event = event.clone();
        temporalio_common::payload_visitor::decode_payloads(&mut event, &codec, &context).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_event_is_read_from_the_sdks_words() {
        assert_eq!(
            named_event(
                "Nondeterminism error: No command scheduled for event HistoryEvent(id: 5, ActivityTaskScheduled)"
            ),
            (Some(5), Some("ActivityTaskScheduled".to_owned()))
        );
        assert_eq!(named_event("something else"), (None, None));
    }

    #[test]
    fn the_sdks_message_is_taken_out_of_its_wrapping() {
        assert_eq!(
            plain(
                r#"Workflow activation completion failed: Failure { failure: Some(Failure { message: "[TMPRL1100] Nondeterminism error: Missing associated machine for LocalActivity(1)", source: "", stack_trace: "" }) }"#
            ),
            "[TMPRL1100] Nondeterminism error: Missing associated machine for LocalActivity(1)"
        );
        assert_eq!(plain(" as it is "), "as it is");
    }
}
