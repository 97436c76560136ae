//! The progress view of `order watch`, `order create --watch` and `demo`,
//! as pure functions of the orders' states and the terminal's size: which
//! rows show, how wide each part is, the total line and what a retrying
//! step says. `watch` draws what these return; the tests here render at a
//! fixed size.

use std::fmt::Write as _;
use std::time::Duration;

use chrono::{DateTime, Utc};
use console::{measure_text_width, truncate_str};

use crate::domain::{Delivery, OrderStatus, Step};
use crate::workflow::state::{OrderView, StepState};

/// The steps an order goes through: a full bar.
pub const STEPS: u64 = Step::ALL.len() as u64;

/// Characters of the bar between its brackets, widest first: the widest
/// that leaves the message room is drawn.
const BAR_WIDTHS: [usize; 3] = [16, 8, 4];

/// Below this much room for the message, the bar is left out.
const MIN_MESSAGE: usize = 16;

/// One order's row as the view shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    pub id: String,
    pub status: OrderStatus,
    /// Steps done, as far as the bar has got ([`advance`]).
    pub position: u64,
    /// What follows the status: the step and its state, or how it ended.
    pub detail: String,
    /// How long it has been followed, or took until it ended.
    pub elapsed: Duration,
}

impl Row {
    fn ended(&self) -> bool {
        self.status.is_terminal()
    }
}

/// How the orders stand, for the total and summary lines.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tally {
    pub total: usize,
    pub completed: usize,
    pub failed: usize,
    pub cancelled: usize,
}

impl Tally {
    pub fn of<'a>(statuses: impl IntoIterator<Item = &'a OrderStatus>) -> Self {
        let mut tally = Self::default();
        for status in statuses {
            tally.total += 1;
            match status {
                OrderStatus::Completed => tally.completed += 1,
                OrderStatus::Failed => tally.failed += 1,
                OrderStatus::Cancelled => tally.cancelled += 1,
                _ => {}
            }
        }
        tally
    }

    pub fn done(&self) -> usize {
        self.completed + self.failed + self.cancelled
    }

    fn outcomes(&self) -> String {
        format!(
            "{} completed, {} failed, {} cancelled",
            self.completed, self.failed, self.cancelled
        )
    }
}

/// The batch's total line: `12/60 done · 10 completed, 1 failed, 1 cancelled`.
pub fn total_line(tally: &Tally) -> String {
    format!(
        "{}/{} done · {}",
        tally.done(),
        tally.total,
        tally.outcomes()
    )
}

/// The line a batch ends with: `60 orders in 12 s: 57 completed, 2 failed, 1 cancelled`.
pub fn summary_line(tally: &Tally, took: Duration) -> String {
    format!(
        "{} orders in {}: {}",
        tally.total,
        elapsed(took),
        tally.outcomes()
    )
}

/// Where an order's bar stands after `view`: the steps it has done,
/// undone ones included (a compensated step does not move a bar back),
/// full for a completed order. From the order's own state, so the same
/// order draws the same bar however often it was looked at; never less
/// than `before`.
pub fn advance(before: u64, view: &OrderView) -> u64 {
    let done = view
        .steps
        .iter()
        .filter(|s| matches!(s.state, StepState::Done | StepState::Compensated))
        .count() as u64;
    let now = if view.status == OrderStatus::Completed {
        STEPS
    } else {
        done
    };
    before.max(now).min(STEPS)
}

/// What a row says after the order's status: how it ended, or its step and
/// that step's state (with [`retry_text`] while it retries or waits).
pub fn detail(view: &OrderView, max_attempts: Option<u32>, now: DateTime<Utc>) -> String {
    let text = match view.status {
        OrderStatus::Failed => view
            .failure
            .as_ref()
            .map(|f| format!("{}: {}", f.code, f.message))
            .unwrap_or_default(),
        OrderStatus::Cancelled => view
            .cancellation
            .as_ref()
            .map(|c| c.reason.clone())
            .unwrap_or_default(),
        OrderStatus::Completed if view.notification == Some(Delivery::Unknown) => {
            "confirmation may have been delivered (no answer came)".to_owned()
        }
        OrderStatus::Completed if view.notified == Some(false) => {
            "notification not delivered (recorded)".to_owned()
        }
        OrderStatus::Completed => String::new(),
        _ => match view.step {
            None => String::new(),
            Some(step) => {
                let s = view.step_view(step);
                let retry = retry_text(s.state, s.attempts, max_attempts, s.next_attempt_at, now);
                match (s.state, retry) {
                    (StepState::Retrying, Some(retry)) => {
                        let error = s.last_error.as_deref().unwrap_or("");
                        format!("{step} · {retry} · {error}")
                    }
                    (_, Some(retry)) => format!("{step} {} · {retry}", state_word(s.state)),
                    (_, None) => format!("{step} {}", state_word(s.state)),
                }
            }
        },
    };
    // Reasons and errors come from outside: nothing in them drives the terminal.
    crate::domain::escape(&text).into_owned()
}

/// A step's state in words.
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

/// `attempt 1/3 failed · retry in 1.9s` for a step that waits to try
/// again: the attempt that failed (of how many it gets, when known) and
/// when the next one runs. The number is the JSON records' `attempt`: the
/// attempts made so far. A step waiting for its database counts no
/// attempt: `retry in 1.9s`. A step running a retry: `attempt 2/3`.
/// `None` for a first attempt.
pub fn retry_text(
    state: StepState,
    attempts: u32,
    max_attempts: Option<u32>,
    next_at: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> Option<String> {
    let of = |attempt: u32| match max_attempts {
        Some(max) => format!("attempt {attempt}/{max}"),
        None => format!("attempt {attempt}"),
    };
    let next = next_at.map(|at| match (at - now).to_std() {
        Ok(wait) if !wait.is_zero() => format!("retry in {:.1}s", wait.as_secs_f64()),
        _ => "retry now".to_owned(),
    });
    match state {
        StepState::Retrying => {
            let mut text = format!("{} failed", of(attempts));
            if let Some(next) = next {
                text.push_str(" · ");
                text.push_str(&next);
            }
            Some(text)
        }
        StepState::Waiting => next,
        StepState::Running if attempts > 1 => Some(of(attempts)),
        _ => None,
    }
}

/// `0.4s`, `12s`, `1m05s`, `2h03m`.
pub fn elapsed(took: Duration) -> String {
    let secs = took.as_secs();
    match secs {
        // A batch that ends within seconds: "0.4s", not "0s".
        0..10 => format!("{:.1}s", took.as_secs_f64()),
        10..60 => format!("{secs}s"),
        60..3600 => format!("{}m{:02}s", secs / 60, secs % 60),
        _ => format!("{}h{:02}m", secs / 3600, secs % 3600 / 60),
    }
}

/// An ID cut to `width` columns in its middle, where generated IDs differ
/// least: `ORD-0192…a4f3`.
pub fn fit_middle(id: &str, width: usize) -> String {
    let chars: Vec<char> = id.chars().collect();
    if measure_text_width(id) <= width || width < 5 || chars.len() != id.len() {
        return fit(id, width);
    }
    let head = (width - 1).div_ceil(2);
    let tail = width - 1 - head;
    let mut cut: String = chars[..head].iter().collect();
    cut.push('…');
    cut.extend(&chars[chars.len() - tail..]);
    cut
}

/// `text` cut to `width` columns (an ellipsis marks the cut), by display
/// width and ignoring colour codes.
pub fn fit(text: &str, width: usize) -> String {
    // console's truncate_str cuts a text that fits exactly, and cannot fit
    // its tail into no room at all.
    match width {
        _ if measure_text_width(text) <= width => text.to_owned(),
        0 => String::new(),
        _ => truncate_str(text, width, "…").into_owned(),
    }
}

/// `text` (plain, no colour) broken at spaces into lines of at most `width`
/// columns; a word wider than that is cut.
fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines: Vec<String> = Vec::new();
    let mut line = String::new();
    for word in text.split(' ').filter(|w| !w.is_empty()) {
        let word = fit(word, width);
        if !line.is_empty() && measure_text_width(&line) + 1 + measure_text_width(&word) > width {
            lines.push(std::mem::take(&mut line));
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(&word);
    }
    if !line.is_empty() || lines.is_empty() {
        lines.push(line);
    }
    lines
}

/// Colour by outcome, as the status card has it.
fn paint(text: &str, status: OrderStatus, color: bool) -> String {
    let code = match status {
        OrderStatus::Completed => "32",
        OrderStatus::Failed => "31",
        OrderStatus::Cancelled => "33",
        _ => "36",
    };
    if color && !text.is_empty() {
        format!("\x1b[{code}m{text}\x1b[0m")
    } else {
        text.to_owned()
    }
}

fn bar(row: &Row, width: usize) -> String {
    let filled = (row.position.min(STEPS) as usize * width) / STEPS as usize;
    let head = usize::from(!row.ended() && filled < width);
    format!(
        "{}{}{}",
        "=".repeat(filled),
        ">".repeat(head),
        " ".repeat(width - filled - head)
    )
}

/// One row at `width` columns: `ORD-1  [=====>     ]   4s PAID · send_notification running`.
/// The ID column is `id_width` wide (longer IDs are cut); without room for
/// the bar and a readable message, the bar is left out.
fn row_line(row: &Row, id_width: usize, width: usize, color: bool) -> String {
    row_lines(row, id_width, width, color, false).remove(0)
}

/// [`row_line`], or with `split`, two lines when one does not hold the
/// detail: the step on the first, what follows it (a retry's attempt,
/// wait and error) indented on the second.
fn row_lines(row: &Row, id_width: usize, width: usize, color: bool, split: bool) -> Vec<String> {
    let whole = row_text(row, &row.detail, id_width, width, color);
    if !split || measure_text_width(&whole) <= width {
        return vec![fit(&whole, width)];
    }
    let Some((first, rest)) = row.detail.split_once(" · ") else {
        return vec![fit(&whole, width)];
    };
    let line = row_text(row, first, id_width, width, color);
    let indent = " ".repeat((id_width + 1).min(width / 2));
    vec![fit(&line, width), fit(&format!("{indent}{rest}"), width)]
}

fn row_text(row: &Row, detail: &str, id_width: usize, width: usize, color: bool) -> String {
    let id = format!("{:<id_width$}", fit_middle(&row.id, id_width));
    let took = format!("{:>5}", elapsed(row.elapsed));
    let status = paint(row.status.as_str(), row.status, color);
    let message = if detail.is_empty() {
        status
    } else {
        format!("{status} · {detail}")
    };
    // The ID, the brackets, the time and the spaces between.
    let fixed = id_width + 1 + 2 + 1 + took.len() + 1;
    let bar_width = BAR_WIDTHS
        .into_iter()
        .find(|bar| fixed + bar + MIN_MESSAGE <= width);
    match bar_width {
        Some(bar_width) => {
            let bar = paint(&bar(row, bar_width), row.status, color);
            format!("{id} [{bar}] {took} {message}")
        }
        None => format!("{id} {took} {message}"),
    }
}

/// The view at `width` × `height`: the orders' rows, a line for those not
/// shown, then `footer` (a batch's total line, a hint; plain text, broken
/// at spaces to fit the width). Never more than
/// `height - 1` lines (the cursor's line stays free, so the terminal never
/// scrolls under the view), none wider than `width`. When not every row
/// fits, orders still in flight come first, then those that failed or were
/// cancelled, then the completed ones; rows keep their order. On a tiny terminal the footer's last lines are all
/// there is room for.
pub fn frame(
    rows: &[Row],
    footer: &[String],
    width: usize,
    height: usize,
    color: bool,
) -> Vec<String> {
    let budget = height.saturating_sub(1).max(1);
    let footer: Vec<String> = footer.iter().flat_map(|l| wrap(l, width)).collect();
    let footer = &footer[footer.len().saturating_sub(budget)..];
    let room = budget - footer.len();

    let shown: Vec<&Row> = if rows.len() <= room {
        rows.iter().collect()
    } else {
        // One line says how many are not shown.
        let keep = room.saturating_sub(1);
        let mut picked: Vec<usize> = (0..rows.len()).collect();
        picked.sort_by_key(|&i| match rows[i].status {
            s if !s.is_terminal() => 0,
            OrderStatus::Completed => 2,
            _ => 1,
        });
        picked.truncate(keep);
        picked.sort_unstable();
        picked.iter().map(|&i| &rows[i]).collect()
    };
    let id_width = shown
        .iter()
        .map(|r| measure_text_width(&r.id))
        .max()
        .unwrap_or(0)
        .min(width / 3)
        .max(1);
    // A row whose detail does not fit gets a second line, when there is
    // room for every such line.
    let split: Vec<Vec<String>> = shown
        .iter()
        .map(|r| row_lines(r, id_width, width, color, true))
        .collect();
    let more_line = usize::from(shown.len() < rows.len());
    let mut lines: Vec<String> = if split.iter().map(Vec::len).sum::<usize>() + more_line <= room {
        split.into_iter().flatten().collect()
    } else {
        shown
            .iter()
            .map(|r| row_line(r, id_width, width, color))
            .collect()
    };
    if shown.len() < rows.len() && room > 0 {
        let hidden = rows.len() - shown.len();
        let in_flight = rows.iter().filter(|r| !r.ended()).count()
            - shown.iter().filter(|r| !r.ended()).count();
        let mut more = format!("… {hidden} more not shown");
        if in_flight > 0 {
            let _ = write!(more, " ({in_flight} in flight)");
        }
        lines.push(fit(&more, width));
    }
    lines.extend(footer.iter().cloned());
    lines
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{FailureCode, WorkflowId};
    use crate::workflow::state::FailureView;

    fn view(id: &str) -> OrderView {
        let mut view = OrderView::rejected(WorkflowId::lossy(id), String::new());
        view.status = OrderStatus::Pending;
        view.failure = None;
        for s in &mut view.steps {
            s.state = StepState::Pending;
        }
        view
    }

    fn row(i: usize, status: OrderStatus) -> Row {
        Row {
            id: format!("ORD-BATCH-{i:04}"),
            status,
            position: 2,
            detail: "process_payment retrying · attempt 2/3 · next in 1.9 s · the card network \
                     did not answer in time"
                .to_owned(),
            elapsed: Duration::from_secs(75),
        }
    }

    fn widest(lines: &[String]) -> usize {
        lines
            .iter()
            .map(|l| measure_text_width(l))
            .max()
            .unwrap_or(0)
    }

    #[test]
    fn sixty_orders_fit_a_60_by_40_terminal() {
        let rows: Vec<Row> = (0..60)
            .map(|i| {
                let status = match i % 4 {
                    0 => OrderStatus::Completed,
                    1 => OrderStatus::Failed,
                    _ => OrderStatus::Paid,
                };
                row(i, status)
            })
            .collect();
        let tally = Tally::of(rows.iter().map(|r| &r.status));
        let footer = [
            "hint: no worker seems to poll task queue orderflow in namespace default".to_owned(),
            total_line(&tally),
        ];
        for color in [false, true] {
            let lines = frame(&rows, &footer, 60, 40, color);
            assert!(lines.len() <= 40, "{} lines", lines.len());
            assert!(widest(&lines) <= 60, "{lines:#?}");
            assert!(lines.iter().all(|l| !l.contains('\n')));
            // The in-flight ones are shown, then the failed ones; the
            // completed ones are counted.
            for i in (0..60).filter(|i| i % 4 >= 1) {
                let id = format!("ORD-BATCH-{i:04}");
                let shown = lines.iter().any(|l| l.starts_with(&id));
                assert!(shown || i % 4 == 1, "{id} missing");
            }
            assert!(lines.iter().any(|l| l.contains("FAILED")));
            assert!(!lines.iter().any(|l| l.contains("COMPLETED")));
            assert!(lines.contains(&"… 25 more not shown".to_owned()));
            // The hint is broken into lines, not cut.
            assert!(
                lines.contains(&"namespace default".to_owned()),
                "{lines:#?}"
            );
            assert_eq!(
                lines.last().unwrap(),
                "30/60 done · 15 completed, 15 failed, 0 cancelled"
            );
        }
    }

    #[test]
    fn more_in_flight_than_rows_says_how_many_are_hidden() {
        let rows: Vec<Row> = (0..60).map(|i| row(i, OrderStatus::Paid)).collect();
        let footer = [
            "hint".to_owned(),
            total_line(&Tally::of(rows.iter().map(|r| &r.status))),
        ];
        let lines = frame(&rows, &footer, 60, 10, false);
        assert_eq!(lines.len(), 9);
        assert_eq!(lines[6], "… 54 more not shown (54 in flight)");
        assert_eq!(lines[8], "0/60 done · 0 completed, 0 failed, 0 cancelled");
        // A tiny terminal: the total alone.
        assert_eq!(frame(&rows, &footer, 60, 2, false), [lines[8].clone()]);
    }

    #[test]
    fn a_long_status_is_cut_with_an_ellipsis_not_wrapped() {
        let lines = frame(&[row(1, OrderStatus::Paid)], &[], 60, 40, false);
        assert_eq!(
            lines[0],
            "ORD-BATCH-0001 [========>       ] 1m15s PAID · process_paym…"
        );
        assert_eq!(measure_text_width(&lines[0]), 60);
        // Narrower: a shorter bar, then none; the words stay readable.
        let narrow = frame(&[row(1, OrderStatus::Paid)], &[], 50, 40, false);
        assert_eq!(
            narrow[0],
            "ORD-BATCH-0001 [====>   ] 1m15s PAID · process_pa…"
        );
        let narrow = frame(&[row(1, OrderStatus::Paid)], &[], 40, 40, false);
        // A long ID is cut in its middle, where generated IDs differ least.
        assert_eq!(narrow[0], "ORD-BA…H-0001 1m15s PAID · process_paym…");
        assert_eq!(fit_middle("ORD-0192b3c4d5e6f7a8", 11), "ORD-0…6f7a8");
    }

    #[test]
    fn fitting_cuts_only_what_is_too_wide() {
        assert_eq!(fit("ORD-1", 5), "ORD-1");
        assert_eq!(fit("ORD-12", 5), "ORD-…");
        assert_eq!(fit("ORD-12", 0), "");
        // Display width, not bytes: a wide character takes two columns.
        assert_eq!(fit("注文注文", 5), "注文…");
        assert_eq!(
            wrap("no worker seems to poll", 10),
            ["no worker", "seems to", "poll"]
        );
        assert_eq!(wrap("averyveryverylongword x", 8), ["averyve…", "x"]);
    }

    #[test]
    fn bars_are_coloured_by_outcome_only_when_asked() {
        let failed = frame(&[row(1, OrderStatus::Failed)], &[], 80, 10, true);
        assert!(failed[0].contains("\x1b[31mFAILED\x1b[0m"), "{failed:?}");
        let completed = frame(&[row(1, OrderStatus::Completed)], &[], 80, 10, true);
        assert!(completed[0].contains("\x1b[32m"), "{completed:?}");
        let cancelled = frame(&[row(1, OrderStatus::Cancelled)], &[], 80, 10, true);
        assert!(cancelled[0].contains("\x1b[33m"), "{cancelled:?}");
        let plain = frame(&[row(1, OrderStatus::Failed)], &[], 80, 10, false);
        assert!(!plain[0].contains('\x1b'), "{plain:?}");
    }

    #[test]
    fn a_retrying_step_says_which_attempt_when_and_why() {
        let now = Utc::now();
        let mut v = view("ORD-R");
        v.status = OrderStatus::InventoryReserved;
        v.step = Some(Step::ProcessPayment);
        let s = v.step_mut(Step::ProcessPayment);
        s.state = StepState::Retrying;
        s.attempts = 1;
        s.last_error = Some("gateway timed out".into());
        s.next_attempt_at = Some(now + chrono::Duration::milliseconds(1900));
        assert_eq!(
            detail(&v, Some(3), now),
            "process_payment · attempt 1/3 failed · retry in 1.9s · gateway timed out"
        );
        assert_eq!(
            detail(&v, None, now),
            "process_payment · attempt 1 failed · retry in 1.9s · gateway timed out"
        );
        // Past its time: it is about to run.
        let late = now + chrono::Duration::seconds(5);
        assert!(detail(&v, Some(3), late).contains("attempt 1/3 failed · retry now ·"));
        // Running the retry; a first attempt says nothing of attempts.
        assert_eq!(
            retry_text(StepState::Running, 2, Some(3), None, now).as_deref(),
            Some("attempt 2/3")
        );
        assert_eq!(retry_text(StepState::Running, 1, Some(3), None, now), None);
        // Waiting for the database is not an attempt.
        assert_eq!(
            retry_text(
                StepState::Waiting,
                1,
                Some(3),
                Some(now + chrono::Duration::seconds(2)),
                now
            )
            .as_deref(),
            Some("retry in 2.0s")
        );
    }

    #[test]
    fn a_retrying_order_that_does_not_fit_gets_a_second_line() {
        let mut retrying = row(1, OrderStatus::InventoryReserved);
        retrying.detail =
            "process_payment · attempt 1/3 failed · retry in 1.9s · the card network did not answer"
                .to_owned();
        let mut done = row(2, OrderStatus::Completed);
        done.detail = String::new();
        let lines = frame(&[retrying.clone(), done], &[], 100, 40, false);
        assert_eq!(lines.len(), 3, "{lines:#?}");
        assert!(
            lines[0].ends_with("INVENTORY_RESERVED · process_payment"),
            "{lines:#?}"
        );
        assert_eq!(
            lines[1].trim_start(),
            "attempt 1/3 failed · retry in 1.9s · the card network did not answer"
        );
        assert!(widest(&lines) <= 100);
        // No room for a second line: one line, cut.
        let lines = frame(&[retrying], &[], 100, 2, false);
        assert_eq!(lines.len(), 1);
    }

    #[test]
    fn a_bar_never_moves_back() {
        let mut v = view("ORD-B");
        let mut position = 0;
        v.status = OrderStatus::InventoryReserved;
        v.steps[0].state = StepState::Done;
        v.steps[1].state = StepState::Done;
        position = advance(position, &v);
        assert_eq!(position, 2);
        // The payment fails; the reservation is undone: the bar stays.
        v.status = OrderStatus::Failed;
        v.steps[1].state = StepState::Compensated;
        v.steps[2].state = StepState::Failed;
        v.failure = Some(FailureView {
            code: FailureCode::PaymentDeclined,
            message: "card was declined".into(),
        });
        position = advance(position, &v);
        assert_eq!(position, 2);
        assert_eq!(
            detail(&v, None, Utc::now()),
            "PAYMENT_DECLINED: card was declined"
        );
        // A final state from history with fewer steps seen: still no step back.
        assert_eq!(advance(position, &view("ORD-B")), 2);
        // Completed: full.
        v.status = OrderStatus::Completed;
        assert_eq!(advance(position, &v), STEPS);
    }

    #[test]
    fn totals_and_summaries_count_outcomes() {
        use OrderStatus::*;
        let tally = Tally::of(&[Completed, Failed, Cancelled, Paid, Completed]);
        assert_eq!(
            total_line(&tally),
            "4/5 done · 2 completed, 1 failed, 1 cancelled"
        );
        assert_eq!(
            summary_line(&tally, Duration::from_secs(65)),
            "5 orders in 1m05s: 2 completed, 1 failed, 1 cancelled"
        );
        assert_eq!(elapsed(Duration::from_millis(420)), "0.4s");
        assert_eq!(elapsed(Duration::from_millis(12_900)), "12s");
    }
}
