//! How orders look: the status card, one line per change, JSON documents.

use std::fmt::Write as _;

use chrono::{DateTime, SecondsFormat, Utc};
use comfy_table::{Attribute, Cell, CellAlignment, Color};
use serde::Serialize;

use crate::domain::{OrderStatus, Step};
use crate::output::Printer;
use crate::workflow::client::Source;
use crate::workflow::state::{OrderView, StepState};

/// `order status -o json`: the order's state, its Web UI link and where the
/// state came from.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StatusDoc<'a> {
    #[serde(flatten)]
    pub view: &'a OrderView,
    pub ui_url: String,
    pub source: Source,
}

/// One `watch -o json` record.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WatchRecord<'a> {
    pub order_id: &'a str,
    pub status: OrderStatus,
    pub step: Option<Step>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub step_state: Option<StepState>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attempt: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure: Option<&'a crate::workflow::state::FailureView>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cancellation: Option<&'a crate::workflow::state::CancellationView>,
    pub at: String,
}

impl<'a> WatchRecord<'a> {
    pub fn new(view: &'a OrderView) -> Self {
        let current = view.step.map(|s| view.step_view(s));
        Self {
            order_id: view.order_id.as_str(),
            status: view.status,
            step: view.step,
            step_state: current.map(|s| s.state),
            attempt: current.map(|s| s.attempts),
            failure: view.failure.as_ref(),
            cancellation: view.cancellation.as_ref(),
            at: timestamp(Utc::now()),
        }
    }
}

pub fn timestamp(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// What changed between two looks at an order, for "one line per change".
pub fn change_key(view: &OrderView) -> (OrderStatus, Option<Step>, Option<StepState>, u32) {
    let current = view.step.map(|s| view.step_view(s));
    (
        view.status,
        view.step,
        current.map(|s| s.state),
        current.map_or(0, |s| s.attempts),
    )
}

/// One plain line for a change: `ORD-1001 PAID send_notification running (attempt 1)`.
pub fn change_line(view: &OrderView) -> String {
    let mut line = format!("{} {}", view.order_id, view.status);
    if view.status.is_terminal() {
        if let Some(f) = &view.failure {
            let _ = write!(line, " {}: {}", f.code, f.message);
        }
        if let (OrderStatus::Cancelled, Some(c)) = (view.status, &view.cancellation) {
            let _ = write!(line, " ({})", c.reason);
        }
        return line;
    }
    if let Some(step) = view.step {
        let s = view.step_view(step);
        let _ = write!(line, " {step} {}", state_word(s.state));
        if s.attempts > 1 || matches!(s.state, StepState::Retrying | StepState::Waiting) {
            let _ = write!(line, " (attempt {}", s.attempts);
            if let (StepState::Retrying | StepState::Waiting, Some(e)) = (s.state, &s.last_error) {
                let _ = write!(line, ": {e}");
            }
            line.push(')');
        }
    }
    line
}

pub fn state_word(state: StepState) -> &'static str {
    match state {
        StepState::Pending => "pending",
        StepState::Running => "running",
        StepState::Retrying => "retrying",
        StepState::Waiting => "waiting for the database",
        StepState::Done => "done",
        StepState::Failed => "failed",
        StepState::Compensated => "compensated",
        StepState::Skipped => "skipped",
    }
}

fn status_color(status: OrderStatus) -> Color {
    match status {
        OrderStatus::Completed => Color::Green,
        OrderStatus::Failed => Color::Red,
        OrderStatus::Cancelled => Color::Yellow,
        _ => Color::Cyan,
    }
}

fn when(at: Option<DateTime<Utc>>) -> String {
    at.map(|t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string())
        .unwrap_or_else(|| "-".into())
}

/// The readable card of `order status`.
pub fn status_card(printer: &Printer, view: &OrderView, ui_url: &str, source: Source) -> String {
    let mut summary = printer.table();
    let status = Cell::new(view.status)
        .fg(status_color(view.status))
        .add_attribute(Attribute::Bold);
    summary.add_row(vec![Cell::new("Order"), Cell::new(&view.order_id)]);
    summary.add_row(vec![Cell::new("Status"), status]);
    summary.add_row(vec![
        Cell::new("Step"),
        Cell::new(view.step.map_or("-", Step::as_str)),
    ]);
    // Absent only when the workflow's input was not a valid order.
    if let Some(customer_id) = &view.customer_id {
        let customer = match &view.customer_email {
            Some(email) => format!("{customer_id} <{email}>"),
            None => customer_id.to_string(),
        };
        summary.add_row(vec![Cell::new("Customer"), Cell::new(customer)]);
    }
    if let (Some(total), Some(currency), Some(method)) =
        (view.total_amount, view.currency, view.payment_method)
    {
        summary.add_row(vec![
            Cell::new("Total"),
            Cell::new(format!("{total} {currency} ({method})")),
        ]);
    }
    if let Some(f) = &view.failure {
        summary.add_row(vec![
            Cell::new("Failure"),
            Cell::new(format!("{}: {}", f.code, f.message)).fg(Color::Red),
        ]);
    }
    if let Some(c) = &view.cancellation {
        summary.add_row(vec![
            Cell::new("Cancellation"),
            Cell::new(format!("{} ({})", c.reason, c.outcome)),
        ]);
    }
    if let Some(notified) = view.notified {
        summary.add_row(vec![
            Cell::new("Notified"),
            Cell::new(if notified {
                "yes"
            } else {
                "no: delivery failed (recorded)"
            }),
        ]);
    }
    summary.add_row(vec![Cell::new("Created"), Cell::new(when(view.created_at))]);
    summary.add_row(vec![Cell::new("Updated"), Cell::new(when(view.updated_at))]);
    summary.add_row(vec![Cell::new("Web UI"), Cell::new(ui_url)]);
    if source == Source::History {
        summary.add_row(vec![
            Cell::new("Note"),
            Cell::new("no worker answered; showing what Temporal recorded"),
        ]);
    }

    let mut steps = printer.table();
    steps.set_header(["STEP", "STATE", "ATTEMPTS", "LAST ERROR"]);
    for s in &view.steps {
        steps.add_row(vec![
            Cell::new(s.name),
            Cell::new(state_word(s.state)),
            Cell::new(s.attempts).set_alignment(CellAlignment::Right),
            Cell::new(s.last_error.as_deref().unwrap_or("")),
        ]);
    }

    let mut items = printer.table();
    items.set_header(["PRODUCT", "QUANTITY", "UNIT PRICE", "LINE TOTAL"]);
    for line in &view.items {
        let total = line.total().map(|m| m.to_string()).unwrap_or_default();
        items.add_row(vec![
            Cell::new(&line.product_id),
            Cell::new(line.quantity).set_alignment(CellAlignment::Right),
            Cell::new(line.unit_price).set_alignment(CellAlignment::Right),
            Cell::new(total).set_alignment(CellAlignment::Right),
        ]);
    }
    if view.items.is_empty() {
        return format!("{summary}\n\n{steps}");
    }
    format!("{summary}\n\n{steps}\n\n{items}")
}
