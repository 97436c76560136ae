//! Rebuilding an order's state from its workflow's history, for when no
//! worker answers a query: the recorded input, and the steps whose
//! local-activity markers are in the history, up to the order's ending.
//!
//! The markers are the SDK's own payloads (`{"activity_type": …}`): the
//! tests below read the committed histories in `tests/histories/`, so an
//! SDK upgrade that changes them fails here first.

use temporalio_common::protos::temporal::api::failure::v1::failure::FailureInfo;
use temporalio_common::protos::temporal::api::history::v1::HistoryEvent;
use temporalio_common::protos::temporal::api::history::v1::history_event::Attributes;

use super::activities::WorkflowSettings;
use super::input::WorkflowInput;
use super::state::{OrderView, StepState};
use crate::domain::{Step, WorkflowId};

/// The workflow's recorded input, as it was sent.
pub fn input(events: &[HistoryEvent]) -> WorkflowInput {
    events
        .iter()
        .find_map(|e| match &e.attributes {
            Some(Attributes::WorkflowExecutionStartedEventAttributes(a)) => a.input.as_ref(),
            _ => None,
        })
        .map(|p| WorkflowInput::from(p.payloads.clone()))
        .unwrap_or_default()
}

/// A local-activity marker's activity, and its failure's message and
/// whether that failure was final (a business failure) when it failed.
fn marker(event: &HistoryEvent) -> Option<(String, Option<(String, bool)>)> {
    let Some(Attributes::MarkerRecordedEventAttributes(marker)) = &event.attributes else {
        return None;
    };
    let data = marker.details.get("data")?.payloads.first()?;
    let data = serde_json::from_slice::<serde_json::Value>(&data.data).ok()?;
    let failure = marker.failure.as_ref().map(|f| {
        let info = &f.failure_info;
        let fin = matches!(info, Some(FailureInfo::ApplicationFailureInfo(a)) if a.non_retryable);
        (f.message.clone(), fin)
    });
    Some((data.get("activity_type")?.as_str()?.to_owned(), failure))
}

/// The settings the workflow took from its worker when it started (the
/// result of its `settings` local activity): among them the retry policy
/// its steps follow. `None` before that result is recorded.
pub fn settings(events: &[HistoryEvent]) -> Option<WorkflowSettings> {
    events.iter().find_map(|event| {
        let Some(Attributes::MarkerRecordedEventAttributes(marker)) = &event.attributes else {
            return None;
        };
        let (activity, None) = self::marker(event)? else {
            return None;
        };
        if activity != "settings" {
            return None;
        }
        let result = marker.details.get("result")?.payloads.first()?;
        serde_json::from_slice(&result.data).ok()
    })
}

/// Why the workflow's tasks fail, when the last workflow task in the
/// history failed and none completed after it: the failure's first line.
/// Such an order makes no progress until the cause is fixed (a worker
/// whose code cannot run it), and no worker answers its queries.
pub fn failing_task(events: &[HistoryEvent]) -> Option<String> {
    events
        .iter()
        .rev()
        .find_map(|event| match &event.attributes {
            Some(Attributes::WorkflowTaskCompletedEventAttributes(_)) => Some(None),
            Some(Attributes::WorkflowTaskFailedEventAttributes(failed)) => Some(Some(
                failed
                    .failure
                    .as_ref()
                    .and_then(|f| f.message.lines().next().map(str::to_owned))
                    .unwrap_or_else(|| "the workflow task failed".to_owned()),
            )),
            _ => None,
        })?
}

/// The order's state as far as the history tells: its input, and each
/// step's attempts and last result, up to where the order began to end.
pub fn rebuild(workflow_id: &str, events: &[HistoryEvent]) -> OrderView {
    let order = match input(events).order(workflow_id) {
        Ok(order) => order,
        Err(message) => return OrderView::rejected(WorkflowId::lossy(workflow_id), message),
    };
    let mut view = OrderView::new(&order);
    let time = |e: Option<&HistoryEvent>| {
        e.and_then(|e| e.event_time)
            .and_then(|t| chrono::DateTime::from_timestamp(t.seconds, t.nanos as u32))
    };
    view.created_at = time(events.first());
    view.updated_at = time(events.last());
    for (activity, failure) in events.iter().filter_map(marker) {
        // The order's ending begins: what follows is not a step.
        if [
            "end_order",
            "record_outcome",
            "refund_payment",
            "release_inventory",
        ]
        .contains(&activity.as_str())
        {
            break;
        }
        let Ok(step) = activity.parse::<Step>() else {
            continue;
        };
        view.step = Some(step);
        let s = view.step_mut(step);
        s.attempts += 1;
        match failure {
            None => {
                s.state = StepState::Done;
                view.status = step.reaches();
            }
            Some((message, fin)) => {
                s.state = if fin {
                    StepState::Failed
                } else {
                    StepState::Retrying
                };
                s.last_error = Some(message);
            }
        }
    }
    view
}

#[cfg(test)]
mod tests {
    use temporalio_client::WorkflowHistory;

    use super::*;
    use crate::domain::OrderStatus;

    async fn events(json: &str) -> Vec<HistoryEvent> {
        WorkflowHistory::from_json(json.as_bytes())
            .expect("a committed history parses")
            .into_events()
            .await
            .expect("its events")
    }

    fn states(view: &OrderView) -> Vec<(StepState, u32)> {
        view.steps.iter().map(|s| (s.state, s.attempts)).collect()
    }

    #[tokio::test]
    async fn a_completed_order_shows_every_step_done() {
        let events = events(include_str!("../../tests/histories/completed.json")).await;
        let view = rebuild("ORD-REPLAY-COMPLETED", &events);
        assert_eq!(view.order_id.as_str(), "ORD-REPLAY-COMPLETED");
        assert_eq!(view.total_amount.unwrap().to_string(), "1299.99");
        assert_eq!(view.status, OrderStatus::Paid);
        assert_eq!(view.step, Some(Step::SendNotification));
        assert_eq!(states(&view), [(StepState::Done, 1); 4]);
        assert!(view.created_at.is_some() && view.updated_at >= view.created_at);
    }

    #[tokio::test]
    async fn a_declined_payment_is_read_as_its_failed_marker() {
        for history in [
            include_str!("../../tests/histories/failed-declined.json"),
            include_str!("../../tests/histories/failed-declined-end-from-database.json"),
        ] {
            let view = rebuild("ORD-REPLAY-DECLINED", &events(history).await);
            // Declined: final, and what followed is the order's ending.
            let payment = view.step_view(Step::ProcessPayment);
            assert_eq!((payment.state, payment.attempts), (StepState::Failed, 1));
            assert!(
                payment
                    .last_error
                    .as_deref()
                    .is_some_and(|e| e.contains("declined")),
                "{payment:?}"
            );
            assert_eq!(view.status, OrderStatus::InventoryReserved);
            assert_eq!(view.step, Some(Step::ProcessPayment));
            assert_eq!(view.step_view(Step::SendNotification).attempts, 0);
        }
    }

    #[tokio::test]
    async fn retried_attempts_are_counted() {
        for history in [
            include_str!("../../tests/histories/cancelled-while-retrying.json"),
            include_str!("../../tests/histories/cancelled-while-retrying-end-from-database.json"),
        ] {
            let view = rebuild("ORD-REPLAY-CANCELLED", &events(history).await);
            let payment = view.step_view(Step::ProcessPayment);
            assert_eq!(payment.state, StepState::Retrying);
            assert!(payment.attempts >= 1, "{payment:?}");
            assert_eq!(
                states(&view)[..2],
                [(StepState::Done, 1), (StepState::Done, 1)]
            );
        }
    }

    #[tokio::test]
    async fn the_retry_policy_is_read_from_the_recorded_settings() {
        let events = events(include_str!(
            "../../tests/histories/cancelled-while-retrying-v3.json"
        ))
        .await;
        let settings = settings(&events).expect("the settings marker");
        assert_eq!(settings.retry.max_attempts, 50);
        // Before the settings result is recorded there is nothing to read.
        assert_eq!(super::settings(&events[..3]), None);
    }

    #[tokio::test]
    async fn a_failing_workflow_task_is_named() {
        let poisoned = events(include_str!(
            "../../tests/histories/poisoned-by-a-malformed-cancel.json"
        ))
        .await;
        assert_eq!(
            failing_task(&poisoned).as_deref(),
            Some("Encoding error: invalid type: integer `12345`, expected a string")
        );
        let completed = events(include_str!("../../tests/histories/completed.json")).await;
        assert_eq!(failing_task(&completed), None);
    }

    #[tokio::test]
    async fn another_workflow_id_is_refused_as_the_workflow_would() {
        let events = events(include_str!("../../tests/histories/completed.json")).await;
        let view = rebuild("SOMEONE-ELSE", &events);
        assert_eq!(view.status, OrderStatus::Failed);
        assert!(
            view.failure
                .unwrap()
                .message
                .starts_with("id: is ORD-REPLAY-COMPLETED")
        );
    }
}
