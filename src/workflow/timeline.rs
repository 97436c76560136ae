//! An order's life read from its workflow's history, for `order status ID
//! --timeline`: each step (a run of one local activity's markers) with its
//! start, end and attempts; the waits between attempts (retry back-off, an
//! outage of the database) from the timers that followed a failed
//! attempt; the waits for a worker to pick each workflow task up; and the
//! signals the order received.

use chrono::{DateTime, Utc};
use serde::Serialize;
use temporalio_common::protos::temporal::api::failure::v1::Failure;
use temporalio_common::protos::temporal::api::failure::v1::failure::FailureInfo;
use temporalio_common::protos::temporal::api::history::v1::HistoryEvent;
use temporalio_common::protos::temporal::api::history::v1::history_event::Attributes;

use super::activities::UNAVAILABLE;

/// What a step is to the order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Phase {
    /// The settings read when the workflow starts.
    Setup,
    /// One of the four steps of SPEC §3.
    Step,
    /// Ending the order early and putting back what it took (release,
    /// refund, the recorded ending).
    Compensation,
    /// The customer's notice.
    Notice,
}

/// One step: consecutive attempts of one activity.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Span {
    pub activity: String,
    pub phase: Phase,
    /// When its first attempt began.
    pub start: Option<DateTime<Utc>>,
    /// When its last attempt completed.
    pub end: Option<DateTime<Utc>>,
    pub attempts: u32,
    /// Waits between attempts on retry back-off timers, in ms.
    pub retry_wait_ms: u64,
    /// Waits between attempts while the database did not answer, in ms.
    pub database_wait_ms: u64,
    /// `done`, `failed` (a business refusal), `retrying` (its last
    /// attempt failed and another may follow), or `interrupted` (it was
    /// retrying when the order began to end).
    pub outcome: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
}

/// A signal the order received.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Signal {
    pub name: String,
    pub at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Timeline {
    pub started_at: Option<DateTime<Utc>>,
    /// When the workflow closed (`None` while it runs).
    pub ended_at: Option<DateTime<Utc>>,
    /// How it closed: `completed`, `canceled`, `failed`, `terminated`,
    /// `timed-out`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub closed: Option<&'static str>,
    pub steps: Vec<Span>,
    pub signals: Vec<Signal>,
    /// Workflow tasks waiting for a worker to pick them up, in all, in ms.
    pub queue_wait_ms: u64,
    /// The longest of those waits, in ms.
    pub longest_queue_wait_ms: u64,
    pub workflow_tasks: u32,
}

fn time(event: &HistoryEvent) -> Option<DateTime<Utc>> {
    event
        .event_time
        .and_then(|t| DateTime::from_timestamp(t.seconds, t.nanos as u32))
}

fn ms(from: Option<DateTime<Utc>>, to: Option<DateTime<Utc>>) -> u64 {
    match (from, to) {
        (Some(from), Some(to)) => (to - from).num_milliseconds().max(0) as u64,
        _ => 0,
    }
}

/// A marker's `{"seconds", "nanos"}` time.
fn stamp(value: Option<&serde_json::Value>) -> Option<DateTime<Utc>> {
    let value = value?;
    DateTime::from_timestamp(
        value.get("seconds")?.as_i64()?,
        value.get("nanos")?.as_u64()? as u32,
    )
}

/// The first application failure's type and whether it is final.
fn application(failure: &Failure) -> (String, bool) {
    let mut next = Some(failure);
    while let Some(f) = next {
        if let Some(FailureInfo::ApplicationFailureInfo(info)) = &f.failure_info {
            return (info.r#type.clone(), info.non_retryable);
        }
        next = f.cause.as_deref();
    }
    (String::new(), false)
}

fn phase(activity: &str) -> Phase {
    match activity {
        "settings" => Phase::Setup,
        "send_notification" => Phase::Notice,
        "create_order" | "reserve_inventory" | "process_payment" => Phase::Step,
        _ => Phase::Compensation,
    }
}

/// Reads the timeline out of a (decoded) history.
pub fn read(events: &[HistoryEvent]) -> Timeline {
    let mut timeline = Timeline {
        started_at: events.first().and_then(time),
        ended_at: None,
        closed: None,
        steps: Vec::new(),
        signals: Vec::new(),
        queue_wait_ms: 0,
        longest_queue_wait_ms: 0,
        workflow_tasks: 0,
    };
    let mut scheduled: Option<DateTime<Utc>> = None;
    // The timer that followed a failed attempt: its start, and whether the
    // attempt failed because the database did not answer.
    let mut timers: std::collections::HashMap<i64, (Option<DateTime<Utc>>, bool)> =
        std::collections::HashMap::new();
    let mut last_failed: Option<bool> = None;
    // When the workflow could begin its next step: the start of the
    // workflow task running it, or the end of the step before it in the
    // same task (a step's local activities run one after another). A
    // marker's own `original_schedule_time` is stamped when the marker is
    // made, not when the activity was scheduled.
    let mut cursor: Option<DateTime<Utc>> = None;
    for event in events {
        let at = time(event);
        match &event.attributes {
            Some(Attributes::WorkflowTaskScheduledEventAttributes(_)) => scheduled = at,
            Some(Attributes::WorkflowTaskStartedEventAttributes(_)) => {
                cursor = at;
                let waited = ms(scheduled.take(), at);
                timeline.workflow_tasks += 1;
                timeline.queue_wait_ms += waited;
                timeline.longest_queue_wait_ms = timeline.longest_queue_wait_ms.max(waited);
            }
            Some(Attributes::MarkerRecordedEventAttributes(marker)) => {
                let Some(data) = marker
                    .details
                    .get("data")
                    .and_then(|d| d.payloads.first())
                    .and_then(|p| serde_json::from_slice::<serde_json::Value>(&p.data).ok())
                else {
                    continue;
                };
                let Some(activity) = data.get("activity_type").and_then(|a| a.as_str()) else {
                    continue;
                };
                let failure = marker
                    .failure
                    .as_ref()
                    .map(|f| (f.message.clone(), application(f)));
                let completed_at = stamp(data.get("complete_time")).or(at);
                let continues = timeline
                    .steps
                    .last()
                    .is_some_and(|s| s.activity == activity && s.outcome == "retrying");
                if !continues {
                    // A step left retrying for another: the order's ending cut it short.
                    if let Some(before) = timeline.steps.last_mut()
                        && before.outcome == "retrying"
                    {
                        before.outcome = "interrupted";
                    }
                    timeline.steps.push(Span {
                        activity: activity.to_owned(),
                        phase: phase(activity),
                        start: cursor.or(at),
                        end: None,
                        attempts: 0,
                        retry_wait_ms: 0,
                        database_wait_ms: 0,
                        outcome: "done",
                        last_error: None,
                    });
                }
                let span = timeline.steps.last_mut().expect("pushed above");
                span.attempts += 1;
                span.end = completed_at;
                cursor = completed_at;
                match failure {
                    None => {
                        span.outcome = "done";
                        last_failed = None;
                    }
                    Some((message, (kind, fin))) => {
                        span.outcome = if fin { "failed" } else { "retrying" };
                        span.last_error = Some(message);
                        last_failed = (!fin).then_some(kind == UNAVAILABLE);
                    }
                }
            }
            Some(Attributes::TimerStartedEventAttributes(_)) => {
                if let Some(outage) = last_failed {
                    timers.insert(event.event_id, (at, outage));
                }
            }
            Some(Attributes::TimerFiredEventAttributes(a)) => {
                credit(&mut timeline, timers.remove(&a.started_event_id), at);
            }
            Some(Attributes::TimerCanceledEventAttributes(a)) => {
                credit(&mut timeline, timers.remove(&a.started_event_id), at);
            }
            Some(Attributes::WorkflowExecutionSignaledEventAttributes(a)) => {
                timeline.signals.push(Signal {
                    name: a.signal_name.clone(),
                    at,
                });
            }
            Some(Attributes::WorkflowExecutionCompletedEventAttributes(_)) => {
                close(&mut timeline, "completed", at);
            }
            Some(Attributes::WorkflowExecutionCanceledEventAttributes(_)) => {
                close(&mut timeline, "canceled", at);
            }
            Some(Attributes::WorkflowExecutionFailedEventAttributes(_)) => {
                close(&mut timeline, "failed", at);
            }
            Some(Attributes::WorkflowExecutionTerminatedEventAttributes(_)) => {
                close(&mut timeline, "terminated", at);
            }
            Some(Attributes::WorkflowExecutionTimedOutEventAttributes(_)) => {
                close(&mut timeline, "timed-out", at);
            }
            _ => {}
        }
    }
    timeline
}

/// A wait between attempts, told to the step it held up.
fn credit(
    timeline: &mut Timeline,
    timer: Option<(Option<DateTime<Utc>>, bool)>,
    at: Option<DateTime<Utc>>,
) {
    let (Some((started, outage)), Some(span)) = (timer, timeline.steps.last_mut()) else {
        return;
    };
    let waited = ms(started, at);
    // A wait the order's ending cut short still held the step up.
    span.end = span.end.max(at);
    if outage {
        span.database_wait_ms += waited;
    } else {
        span.retry_wait_ms += waited;
    }
}

fn close(timeline: &mut Timeline, how: &'static str, at: Option<DateTime<Utc>>) {
    timeline.closed = Some(how);
    timeline.ended_at = at;
}

#[cfg(test)]
mod tests {
    use temporalio_client::WorkflowHistory;

    use super::*;

    async fn events(name: &str) -> Vec<HistoryEvent> {
        let path = format!("{}/tests/histories/{name}.json", env!("CARGO_MANIFEST_DIR"));
        WorkflowHistory::from_json(&std::fs::read(path).unwrap())
            .unwrap()
            .into_events()
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn a_cancelled_order_shows_its_retry_its_signal_and_its_compensation() {
        let t = read(&events("cancelled-while-retrying-v4").await);
        let steps: Vec<(&str, Phase, u32, &str)> = t
            .steps
            .iter()
            .map(|s| (s.activity.as_str(), s.phase, s.attempts, s.outcome))
            .collect();
        assert_eq!(
            steps,
            [
                ("settings", Phase::Setup, 1, "done"),
                ("create_order", Phase::Step, 1, "done"),
                ("reserve_inventory", Phase::Step, 1, "done"),
                ("process_payment", Phase::Step, 1, "interrupted"),
                ("end_order", Phase::Compensation, 1, "done"),
                ("send_notification", Phase::Notice, 1, "done"),
            ]
        );
        let payment = &t.steps[3];
        assert_eq!(
            payment.last_error.as_deref(),
            Some("payment gateway unavailable")
        );
        // Its retry timer (100 ms) was cancelled by the signal after 28 ms.
        assert!(
            payment.retry_wait_ms > 0 && payment.retry_wait_ms <= 100,
            "{payment:?}"
        );
        assert_eq!(payment.database_wait_ms, 0);
        assert_eq!(t.signals.len(), 1);
        assert_eq!(t.signals[0].name, "cancel");
        assert_eq!(t.closed, Some("canceled"));
        assert_eq!(t.workflow_tasks, 3);
        // The first task waited 1.09 s for a worker.
        assert!(t.longest_queue_wait_ms >= 1000, "{t:?}");
    }

    #[tokio::test]
    async fn a_completed_order_is_its_four_steps() {
        let t = read(&events("completed").await);
        let steps: Vec<&str> = t.steps.iter().map(|s| s.activity.as_str()).collect();
        assert_eq!(
            steps,
            [
                "settings",
                "create_order",
                "reserve_inventory",
                "process_payment",
                "send_notification"
            ]
        );
        assert!(
            t.steps
                .iter()
                .all(|s| s.outcome == "done" && s.attempts == 1)
        );
        assert_eq!(t.closed, Some("completed"));
        assert!(t.ended_at >= t.started_at);
    }
}
