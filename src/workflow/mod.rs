//! The order workflow, its activities, the worker that hosts them and the
//! client calls that drive them. SDK types stay inside this module.

pub mod activities;
pub mod baseline;
pub mod client;
pub mod input;
mod order_workflow;
pub mod retry;
pub mod state;
pub mod worker;

pub use order_workflow::OrderWorkflow;

/// The workflow type name other tools (the Temporal CLI, the UI) see.
pub const WORKFLOW_TYPE: &str = "OrderWorkflow";
/// The signal that asks an order to cancel: payload `{"reason": "…"}`.
pub const CANCEL_SIGNAL: &str = "cancel";
/// The query that returns an order's live [`state::OrderView`].
pub const STATUS_QUERY: &str = "status";
