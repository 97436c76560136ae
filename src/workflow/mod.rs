//! The order workflow, its activities, the worker that hosts them and the
//! client that drives them. SDK types stay inside this module: the rest of
//! the program reaches Temporal through [`client::OrderClient`] and
//! [`worker::run`].
//!
//! The names other tools see — the workflow type `OrderWorkflow`, the
//! signal `cancel` (`{"reason": "…"}`) and the query `status` — are the
//! workflow's own (`order_workflow.rs`, tested there).

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

pub use order_workflow::OrderWorkflow;
