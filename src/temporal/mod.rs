//! The boundary to Temporal: the connection and its settings, the payload
//! codec, the order client and the admin calls (system info, namespace,
//! search attributes, pollers). Everything here answers in orderflow's own
//! types ([`TemporalError`], [`client::OrderCallError`]); no `tonic` or
//! `temporalio_*` type leaves this folder, `worker/` or `workflow/`.

pub mod admin;
pub mod client;
pub mod codec;
mod connect;
pub mod cost;
mod probe;
pub mod query;
pub mod replay;
pub mod settings;
mod trouble;

pub use connect::{connect, explain};
pub use settings::{DEFAULT_ADDRESS, DEFAULT_TASK_QUEUE, TemporalConfig, TemporalSettings};
pub use trouble::{Cause, Target, TemporalError};
