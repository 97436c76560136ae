//! What one workflow costs Temporal, read from its history: events, the
//! bytes the server stores, the payload bytes among them, workflow tasks,
//! and Temporal Cloud's billable actions (`orderflow bench`).
//!
//! Actions, as Temporal Cloud counts them (docs.temporal.io/cloud/actions):
//! the start; each search-attribute upsert, except one that only sets
//! `TemporalChangeVersion` (the SDK's, for a patch); each timer; each
//! signal; each activity scheduled; and the local activities of one
//! workflow task together as one. Queries are actions too, but they leave
//! no event: a caller who queries counts its own.

use std::time::SystemTime;

use prost::Message as _;
use serde::Serialize;
use temporalio_common::protos::temporal::api::common::v1::Payloads;
use temporalio_common::protos::temporal::api::history::v1::HistoryEvent;
use temporalio_common::protos::temporal::api::history::v1::history_event::Attributes;

use super::client::{Id, OrderCallError, OrderClient};

/// The local-activity marker's name (the SDK's).
const LOCAL_ACTIVITY_MARKER: &str = "core_local_activity";
/// The search attribute the SDK upserts with a patch; not billed.
const CHANGE_VERSION: &str = "TemporalChangeVersion";

/// One history's cost; [`HistoryCost::add`] sums them.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HistoryCost {
    pub events: u64,
    pub actions: u64,
    pub workflow_tasks: u64,
    /// The events as the server stores them (protobuf).
    pub history_bytes: u64,
    /// Input, markers' details, signals' input, search attributes, the
    /// result or failure: what the codec would encrypt.
    pub payload_bytes: u64,
}

impl HistoryCost {
    pub fn of(events: &[HistoryEvent]) -> Self {
        let mut cost = HistoryCost {
            events: events.len() as u64,
            ..Self::default()
        };
        let payloads = |p: &Option<Payloads>| p.as_ref().map_or(0, |p| p.encoded_len() as u64);
        let mut billed_task = None;
        for event in events {
            cost.history_bytes += event.encoded_len() as u64;
            let Some(attributes) = &event.attributes else {
                continue;
            };
            match attributes {
                Attributes::WorkflowExecutionStartedEventAttributes(a) => {
                    cost.actions += 1;
                    cost.payload_bytes += payloads(&a.input);
                }
                Attributes::WorkflowTaskCompletedEventAttributes(_) => cost.workflow_tasks += 1,
                Attributes::MarkerRecordedEventAttributes(a) => {
                    cost.payload_bytes += a
                        .details
                        .values()
                        .map(|p| p.encoded_len() as u64)
                        .sum::<u64>();
                    if a.marker_name == LOCAL_ACTIVITY_MARKER
                        && billed_task != Some(a.workflow_task_completed_event_id)
                    {
                        billed_task = Some(a.workflow_task_completed_event_id);
                        cost.actions += 1;
                    }
                }
                Attributes::UpsertWorkflowSearchAttributesEventAttributes(a) => {
                    let fields = a.search_attributes.as_ref();
                    cost.payload_bytes += fields.map_or(0, |f| f.encoded_len() as u64);
                    if fields.is_some_and(|f| f.indexed_fields.keys().any(|k| k != CHANGE_VERSION))
                    {
                        cost.actions += 1;
                    }
                }
                Attributes::WorkflowExecutionSignaledEventAttributes(a) => {
                    cost.actions += 1;
                    cost.payload_bytes += payloads(&a.input);
                }
                Attributes::TimerStartedEventAttributes(_)
                | Attributes::ActivityTaskScheduledEventAttributes(_) => cost.actions += 1,
                Attributes::WorkflowExecutionCompletedEventAttributes(a) => {
                    cost.payload_bytes += payloads(&a.result);
                }
                Attributes::WorkflowExecutionFailedEventAttributes(a) => {
                    cost.payload_bytes += a.failure.as_ref().map_or(0, |f| f.encoded_len() as u64);
                }
                Attributes::WorkflowExecutionCanceledEventAttributes(a) => {
                    cost.payload_bytes += payloads(&a.details);
                }
                _ => {}
            }
        }
        cost
    }

    pub fn add(&mut self, other: HistoryCost) {
        self.events += other.events;
        self.actions += other.actions;
        self.workflow_tasks += other.workflow_tasks;
        self.history_bytes += other.history_bytes;
        self.payload_bytes += other.payload_bytes;
    }
}

/// When the server recorded a workflow's start, its first workflow task's
/// schedule, pickup and completion, and its close: where one order's time
/// goes on the server's side.
#[derive(Debug, Clone, Copy)]
pub struct Milestones {
    pub started: SystemTime,
    pub task_scheduled: SystemTime,
    pub task_started: SystemTime,
    pub task_completed: SystemTime,
    pub closed: SystemTime,
}

impl Milestones {
    /// `None` for a history without a completed first task.
    pub fn of(events: &[HistoryEvent]) -> Option<Self> {
        let time = |e: &HistoryEvent| e.event_time.and_then(|t| SystemTime::try_from(t).ok());
        let first = |f: fn(&Attributes) -> bool| {
            events
                .iter()
                .find(|e| e.attributes.as_ref().is_some_and(f))
                .and_then(time)
        };
        Some(Milestones {
            started: time(events.first()?)?,
            task_scheduled: first(|a| {
                matches!(a, Attributes::WorkflowTaskScheduledEventAttributes(_))
            })?,
            task_started: first(|a| {
                matches!(a, Attributes::WorkflowTaskStartedEventAttributes(_))
            })?,
            task_completed: first(|a| {
                matches!(a, Attributes::WorkflowTaskCompletedEventAttributes(_))
            })?,
            closed: time(events.last()?)?,
        })
    }
}

impl OrderClient {
    /// The cost of one workflow's history, as the server holds it.
    pub async fn history_cost(&self, id: &impl Id) -> Result<HistoryCost, OrderCallError> {
        Ok(HistoryCost::of(&self.raw_history(id).await?))
    }

    /// One workflow's [`Milestones`].
    pub async fn milestones(&self, id: &impl Id) -> Result<Option<Milestones>, OrderCallError> {
        Ok(Milestones::of(&self.raw_history(id).await?))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use temporalio_common::protos::temporal::api::common::v1::{Payload, SearchAttributes};
    use temporalio_common::protos::temporal::api::history::v1::{
        MarkerRecordedEventAttributes, UpsertWorkflowSearchAttributesEventAttributes,
        WorkflowExecutionStartedEventAttributes, WorkflowTaskCompletedEventAttributes,
    };

    use super::*;

    fn event(attributes: Attributes) -> HistoryEvent {
        HistoryEvent {
            attributes: Some(attributes),
            ..HistoryEvent::default()
        }
    }

    fn marker(name: &str, task: i64) -> HistoryEvent {
        event(Attributes::MarkerRecordedEventAttributes(
            MarkerRecordedEventAttributes {
                marker_name: name.into(),
                workflow_task_completed_event_id: task,
                ..Default::default()
            },
        ))
    }

    fn upsert(names: &[&str]) -> HistoryEvent {
        let indexed_fields: HashMap<String, Payload> = names
            .iter()
            .map(|n| ((*n).to_owned(), Payload::default()))
            .collect();
        event(Attributes::UpsertWorkflowSearchAttributesEventAttributes(
            UpsertWorkflowSearchAttributesEventAttributes {
                search_attributes: Some(SearchAttributes { indexed_fields }),
                ..Default::default()
            },
        ))
    }

    #[test]
    fn local_activities_of_one_task_are_one_action_and_the_patch_upsert_none() {
        let completed = || {
            event(Attributes::WorkflowTaskCompletedEventAttributes(
                WorkflowTaskCompletedEventAttributes::default(),
            ))
        };
        let history = [
            event(Attributes::WorkflowExecutionStartedEventAttributes(
                WorkflowExecutionStartedEventAttributes::default(),
            )),
            completed(),
            marker("core_patch", 4),
            upsert(&[CHANGE_VERSION]),
            marker(LOCAL_ACTIVITY_MARKER, 4),
            marker(LOCAL_ACTIVITY_MARKER, 4),
            upsert(&["OrderStatus", "OrderTotal"]),
            completed(),
            marker(LOCAL_ACTIVITY_MARKER, 9),
        ];
        let cost = HistoryCost::of(&history);
        // The start, two tasks' local activities, one upsert of our own.
        assert_eq!(cost.actions, 4);
        assert_eq!(cost.events, 9);
        assert_eq!(cost.workflow_tasks, 2);
        assert!(cost.history_bytes > 0);
    }
}
