//! Every change of an order's status, in one place.
//!
//! | to | when | written by |
//! |---|---|---|
//! | `CREATED` | the order and its lines are recorded | `OrderStore::create`, in its insert |
//! | `INVENTORY_RESERVED` | stock is taken for every line | `reserve_inventory()` in PostgreSQL (migrations) |
//! | `PAID` | the capture is recorded | [`PAID`], in the capture's statement (`payment.rs`) |
//! | `COMPLETED` | the confirmation went out | [`COMPLETED`], in the notice's statement (`notification.rs`) |
//! | `COMPLETED` | the confirmation could not go out | [`RECORD`] (`OrderStore::set_status`) |
//! | `FAILED`, `CANCELLED` | the order ended early | `finish_order()` in PostgreSQL (migrations); [`RECORD`] for histories from before it |
//!
//! Each transition is folded into the write it belongs to — one statement,
//! one round trip (measured in DOCS.md, Benchmark) — so the SQL lives here
//! as the statements the services embed in theirs. None leaves a terminal
//! status: `PAID` applies to an order still open, `COMPLETED` to a paid one,
//! and the first ending recorded wins.

/// To `PAID`, unless the order has ended; `$1` is the order ID.
pub const PAID: &str = concat!(
    "UPDATE orders SET status = 'PAID', step = 'process_payment'
     WHERE order_id = $1 AND status NOT IN ",
    crate::terminal_statuses_sql!()
);

/// To `COMPLETED`, for a paid order; `$1` is the order ID. A caller may add
/// conditions of its own (`… AND $3`).
pub const COMPLETED: &str = "UPDATE orders SET status = 'COMPLETED', step = 'send_notification'
     WHERE order_id = $1 AND status = 'PAID'";

/// The status `$2` at step `$3`, with failure `$4`/`$5` or cancel reason
/// `$6`; `COMPLETED` only for a paid order. What the workflow records
/// itself (a completion whose confirmation failed; endings of histories
/// from before `finish_order()`).
pub const RECORD: &str = "UPDATE orders SET status = $2, step = $3, failure_code = $4,
            failure_message = $5, cancel_reason = COALESCE($6, cancel_reason)
      WHERE order_id = $1 AND ($2 <> 'COMPLETED' OR status IN ('PAID', 'COMPLETED'))";
