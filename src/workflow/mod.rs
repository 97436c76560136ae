//! What a replay needs: the order workflow (`order_workflow/`), its
//! activities, the state it shows, its input and signals, and the reader
//! that rebuilds a state from history. The client that drives it is in
//! `temporal/`, the worker that hosts it in `worker/`.
//!
//! The names other tools see — the workflow type `OrderWorkflow`, the
//! signal `cancel` (`{"reason": "…"}`) and the query `status` — are the
//! workflow's own (`order_workflow/mod.rs`, tested there).

pub mod activities;
pub mod baseline;
pub mod history;
pub mod input;
pub mod metrics;
mod order_workflow;
pub mod retry;
pub mod sealed;
pub mod search;
pub mod signals;
pub mod state;
pub mod timeline;

pub use order_workflow::OrderWorkflow;
