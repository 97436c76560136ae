//! How orders look: the status card, one line per change, JSON documents.

use std::fmt::Write as _;

use chrono::{DateTime, Utc};
use comfy_table::{Attribute, Cell, CellAlignment, Color};
use serde::Serialize;

use super::progress::{retry_text, state_word};
use crate::domain::{Delivery, OrderStatus, Step};
use crate::output::{Printer, cell};
use crate::temporal::client::Source;
use crate::workflow::state::{OrderView, StepState};

/// `order status -o json`: the order's state, its Web UI link and where the
/// state came from.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct StatusDoc<'a> {
    #[serde(flatten)]
    #[schema(inline, value_type = OrderView)]
    pub view: &'a OrderView,
    pub ui_url: String,
    pub source: Source,
}

/// One `watch -o json`/`-o jsonl` record: a change of one order.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct WatchRecord<'a> {
    /// Always `change`; `order create --watch` writes `created` records first.
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub order_id: &'a str,
    pub status: OrderStatus,
    pub step: Option<Step>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub step_state: Option<StepState>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attempt: Option<u32>,
    /// Attempts the step gets in all, when known (the order's retry policy).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_attempts: Option<u32>,
    /// While the step waits to try again: when it will.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_attempt_at: Option<DateTime<Utc>>,
    /// While the step waits to try again: why the last attempt failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<crate::workflow::state::FailureView>)]
    pub failure: Option<&'a crate::workflow::state::FailureView>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<crate::workflow::state::CancellationView>)]
    pub cancellation: Option<&'a crate::workflow::state::CancellationView>,
    /// When the change happened: the order's own `updatedAt`.
    pub at: DateTime<Utc>,
}

impl<'a> WatchRecord<'a> {
    pub fn new(view: &'a OrderView, max_attempts: Option<u32>) -> Self {
        let current = view.step.map(|s| view.step_view(s));
        let waiting = current.filter(|s| {
            !view.status.is_terminal()
                && matches!(s.state, StepState::Retrying | StepState::Waiting)
        });
        Self {
            kind: "change",
            order_id: view.order_id.as_str(),
            status: view.status,
            step: view.step,
            step_state: current.map(|s| s.state),
            attempt: current.map(|s| s.attempts),
            max_attempts,
            next_attempt_at: waiting.and_then(|s| s.next_attempt_at),
            last_error: waiting.and_then(|s| s.last_error.as_deref()),
            failure: view.failure.as_ref(),
            cancellation: view.cancellation.as_ref(),
            at: changed_at(view),
        }
    }
}

impl WatchRecord<'_> {
    /// The record's place in the order's life, as a stream's event ID:
    /// `STATUS/step/state/attempts` (`PENDING/-/-/0` before any step).
    /// Records of a later status always come after; see [`Mark`].
    pub fn mark(&self) -> String {
        format!(
            "{}/{}/{}/{}",
            self.status,
            self.step.map_or("-", |s| s.as_str()),
            self.step_state.map_or("-", state_name),
            self.attempt.unwrap_or(0)
        )
    }
}

/// A step state as its JSON writes it.
fn state_name(state: StepState) -> &'static str {
    match state {
        StepState::Pending => "pending",
        StepState::Running => "running",
        StepState::Retrying => "retrying",
        StepState::Waiting => "waiting",
        StepState::Done => "done",
        StepState::Failed => "failed",
        StepState::Compensated => "compensated",
        StepState::Skipped => "skipped",
    }
}

/// Every step state, to read one back.
const STATES: [StepState; 8] = [
    StepState::Pending,
    StepState::Running,
    StepState::Retrying,
    StepState::Waiting,
    StepState::Done,
    StepState::Failed,
    StepState::Compensated,
    StepState::Skipped,
];

/// Where a stream of records stands: the last record it carried.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mark {
    /// The status of that record.
    pub status: OrderStatus,
    pub id: String,
}

impl Mark {
    /// A record's mark, from its ID; `None` unless it is one
    /// [`WatchRecord::mark`] makes.
    pub fn parse(id: &str) -> Option<Self> {
        let [status, step, state, attempts] = id.split('/').collect::<Vec<_>>()[..] else {
            return None;
        };
        let status: OrderStatus = status.parse().ok()?;
        let known_step = step == "-" || step.parse::<Step>().is_ok();
        let known_state = state == "-" || STATES.iter().any(|s| state_name(*s) == state);
        (known_step && known_state && attempts.parse::<u32>().is_ok()).then(|| Self {
            status,
            id: id.to_owned(),
        })
    }
}

/// The records of every status `view` shows the order went through, in
/// order, then its current state: what a follower that last saw `after`
/// has not seen (all of them after `None`). A status passed between two
/// looks is not lost: the steps that were done say it was reached; its
/// `at` is the later look's.
pub fn records_after<'a>(view: &'a OrderView, after: Option<&Mark>) -> Vec<WatchRecord<'a>> {
    let now = WatchRecord::new(view, None);
    let seen = after.map_or(-1, |m| i16::from(m.status.progress()));
    let mut records = Vec::new();
    let mut passed = |record: WatchRecord<'a>| {
        if i16::from(record.status.progress()) > seen {
            records.push(record);
        }
    };
    passed(WatchRecord {
        status: OrderStatus::Pending,
        step: None,
        step_state: None,
        attempt: None,
        at: view.created_at.unwrap_or(now.at),
        ..bare(&now)
    });
    for step in &view.steps {
        let done = matches!(step.state, StepState::Done | StepState::Compensated);
        // A confirmation is no status of its own (PAID until the end).
        if done && step.name != Step::SendNotification {
            passed(WatchRecord {
                status: step.name.reaches(),
                step: Some(step.name),
                step_state: Some(StepState::Done),
                attempt: Some(step.attempts),
                ..bare(&now)
            });
        }
    }
    let current = now.status.progress();
    let fresh = match after {
        None => true,
        Some(m) => {
            i16::from(current) > seen || current == m.status.progress() && now.mark() != m.id
        }
    };
    if fresh && records.last().is_none_or(|last| last.mark() != now.mark()) {
        records.push(now);
    }
    records
}

/// `record` with nothing of its step or ending: the base of a passed status's record.
fn bare<'a>(record: &WatchRecord<'a>) -> WatchRecord<'a> {
    WatchRecord {
        kind: record.kind,
        order_id: record.order_id,
        status: record.status,
        step: None,
        step_state: None,
        attempt: None,
        max_attempts: None,
        next_attempt_at: None,
        last_error: None,
        failure: None,
        cancellation: None,
        at: record.at,
    }
}

/// When the order last changed, as its state records it. Only a state
/// that records no time at all (none that orderflow's workflow returns)
/// falls back to now.
pub fn changed_at(view: &OrderView) -> DateTime<Utc> {
    view.updated_at.or(view.created_at).unwrap_or_else(Utc::now)
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

/// One plain line for a change: `ORD-1001 PAID send_notification running`,
/// `ORD-1001 INVENTORY_RESERVED process_payment retrying (attempt 2/3 · next
/// in 0.4 s: card network unavailable)`. `max_attempts`: how many attempts a
/// step gets, when known.
pub fn change_line(view: &OrderView, max_attempts: Option<u32>) -> String {
    let mut line = format!("{} {}", view.order_id, view.status);
    if view.status.is_terminal() {
        if let Some(f) = &view.failure {
            let _ = write!(line, " {}: {}", f.code, f.message);
        }
        if let (OrderStatus::Cancelled, Some(c)) = (view.status, &view.cancellation) {
            let _ = write!(line, " ({})", c.reason);
        }
        return crate::domain::escape(&line).into_owned();
    }
    if let Some(step) = view.step {
        let s = view.step_view(step);
        let _ = write!(line, " {step} {}", state_word(s.state));
        let retry = retry_text(
            s.state,
            s.attempts,
            max_attempts,
            s.next_attempt_at,
            Utc::now(),
        );
        if let Some(retry) = retry {
            let _ = write!(line, " ({retry}");
            if let (StepState::Retrying | StepState::Waiting, Some(e)) = (s.state, &s.last_error) {
                let _ = write!(line, ": {e}");
            }
            line.push(')');
        }
    }
    crate::domain::escape(&line).into_owned()
}

pub fn status_color(status: OrderStatus) -> Color {
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

/// Whether a completed order's customer was told, in words.
pub fn notified_text(view: &OrderView) -> Option<&'static str> {
    match (view.notification, view.notified) {
        (Some(Delivery::Sent), _) | (None, Some(true)) => Some("yes"),
        (Some(Delivery::Unknown), _) => {
            Some("unknown: no answer came, so it may have reached the customer")
        }
        (Some(Delivery::Failed), _) | (None, Some(false)) => Some("no: delivery failed (recorded)"),
        (None, None) => None,
    }
}

/// Below this many columns the card is `key: value` lines, not boxes.
const NARROW: usize = 60;

/// A step's state as the card and the live view say it: the step a
/// cancellation interrupted reads `cancelled`, not `failed`.
pub fn step_word(view: &OrderView, state: StepState) -> &'static str {
    match (view.status, state) {
        (OrderStatus::Cancelled, StepState::Failed) => "cancelled",
        _ => state_word(state),
    }
}

/// The readable card of `order status`: boxed tables, or at a terminal
/// narrower than [`NARROW`] columns, `key: value` lines that wrap at
/// spaces only.
pub fn status_card(printer: &Printer, view: &OrderView, ui_url: &str, source: Source) -> String {
    let mut rows: Vec<(&str, String, Option<Color>)> = Vec::new();
    rows.push((
        "Order",
        crate::domain::escape(view.order_id.as_str()).into_owned(),
        None,
    ));
    rows.push((
        "Status",
        view.status.to_string(),
        Some(status_color(view.status)),
    ));
    rows.push(("Step", view.step.map_or("-", Step::as_str).to_owned(), None));
    // Absent only when the workflow's input was not a valid order.
    if let Some(customer_id) = &view.customer_id {
        let customer = match &view.customer_email {
            Some(email) => format!("{customer_id} <{email}>"),
            None => customer_id.to_string(),
        };
        rows.push((
            "Customer",
            crate::domain::escape(&customer).into_owned(),
            None,
        ));
    }
    if let (Some(total), Some(currency), Some(method)) =
        (view.total_amount, view.currency, view.payment_method)
    {
        rows.push(("Total", format!("{total} {currency} ({method})"), None));
    }
    if let Some(f) = &view.failure {
        let text = format!("{}: {}", f.code, f.message);
        rows.push((
            "Failure",
            crate::domain::escape(&text).into_owned(),
            Some(Color::Red),
        ));
    }
    if let Some(c) = &view.cancellation {
        let text = format!("{}; {}", c.reason, c.outcome);
        rows.push((
            "Cancellation",
            crate::domain::escape(&text).into_owned(),
            None,
        ));
    }
    if let Some(notified) = notified_text(view) {
        rows.push(("Notified", notified.to_owned(), None));
    }
    rows.push(("Created", when(view.created_at), None));
    rows.push(("Updated", when(view.updated_at), None));
    rows.push(("Web UI", ui_url.to_owned(), None));
    if let Some(cause) = &view.workflow_task_failure {
        let text = format!("its workflow task fails, so it makes no progress: {cause}");
        rows.push((
            "Stuck",
            crate::domain::escape(&text).into_owned(),
            Some(Color::Red),
        ));
    }
    if let Some(error) = &view.ending_error {
        let text = format!("waiting to be recorded: {error}");
        rows.push((
            "Ending",
            crate::domain::escape(&text).into_owned(),
            Some(Color::Yellow),
        ));
    }
    if let Some(last) = view.rejected_signals.last() {
        let count = view.rejected_signal_count.max(1) as usize;
        let text = format!(
            "{}; the last: {} ({}): {}",
            crate::errors::count(count, "signal"),
            last.name,
            when(last.at),
            last.problem
        );
        rows.push((
            "Rejected",
            crate::domain::escape(&text).into_owned(),
            Some(Color::Yellow),
        ));
    }
    if source == Source::History {
        rows.push((
            "Note",
            "no worker answered; showing what Temporal recorded".to_owned(),
            None,
        ));
    }

    if let Some(width) = printer.stdout_width().filter(|w| *w < NARROW) {
        return narrow_card(printer, view, &rows, width);
    }

    let mut summary = printer.table();
    for (key, value, color) in &rows {
        let mut value = Cell::new(value);
        if let Some(color) = color {
            value = value.fg(*color);
        }
        if *key == "Status" {
            value = value.add_attribute(Attribute::Bold);
        }
        summary.add_row(vec![Cell::new(key), value]);
    }

    let mut steps = printer.table();
    steps.set_header(["STEP", "STATE", "ATTEMPTS", "LAST ERROR"]);
    for s in &view.steps {
        steps.add_row(vec![
            Cell::new(s.name),
            Cell::new(step_word(view, s.state)),
            Cell::new(s.attempts).set_alignment(CellAlignment::Right),
            cell(s.last_error.as_deref().unwrap_or("")),
        ]);
    }

    let mut items = printer.table();
    items.set_header(["PRODUCT", "QUANTITY", "UNIT PRICE", "LINE TOTAL"]);
    for line in &view.items {
        let total = line.total().map(|m| m.to_string()).unwrap_or_default();
        items.add_row(vec![
            cell(line.product_id.as_str()),
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

/// The card as `key: value` lines for a narrow terminal: long values wrap
/// at spaces under their key (a URL, having none, stays whole).
fn narrow_card(
    printer: &Printer,
    view: &OrderView,
    rows: &[(&str, String, Option<Color>)],
    width: usize,
) -> String {
    let paint = |text: &str, color: Option<Color>| match color {
        Some(color) if printer.stdout_colored() => {
            let code = match color {
                Color::Green => 32,
                Color::Red => 31,
                Color::Yellow => 33,
                _ => 36,
            };
            format!("\x1b[{code}m{text}\x1b[0m")
        }
        _ => text.to_owned(),
    };
    let mut out = Vec::new();
    let entry = |out: &mut Vec<String>, key: &str, value: &str, color: Option<Color>| {
        let head = format!("{key}: ");
        let options = textwrap::Options::new(width.max(20))
            .initial_indent(&head)
            .subsequent_indent("  ")
            // At spaces only: a URL or an ID stays whole.
            .word_separator(textwrap::WordSeparator::AsciiSpace)
            .word_splitter(textwrap::WordSplitter::NoHyphenation)
            .break_words(false);
        for line in textwrap::wrap(value, options) {
            let line = line.into_owned();
            match line.strip_prefix(&head) {
                Some(rest) => out.push(format!("{head}{}", paint(rest, color))),
                None => out.push(paint(&line, color)),
            }
        }
    };
    for (key, value, color) in rows {
        entry(&mut out, key, value, *color);
    }
    out.push(String::new());
    for s in &view.steps {
        let mut text = format!(
            "{}, {}",
            step_word(view, s.state),
            crate::errors::count(s.attempts as usize, "attempt")
        );
        if let Some(e) = &s.last_error {
            let _ = write!(text, "; {}", crate::domain::escape(e));
        }
        entry(&mut out, s.name.as_str(), &text, None);
    }
    if !view.items.is_empty() {
        out.push(String::new());
        for line in &view.items {
            let total = line.total().map(|m| m.to_string()).unwrap_or_default();
            let text = format!("{} × {} = {total}", line.quantity, line.unit_price);
            entry(
                &mut out,
                &crate::domain::escape(line.product_id.as_str()),
                &text,
                None,
            );
        }
    }
    out.join("\n")
}
