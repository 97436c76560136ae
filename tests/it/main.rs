//! Integration tests: the real binary, a real PostgreSQL cluster and a real
//! Temporal dev server, all started by `support` on first use.

mod cli;
mod db;
mod generated;
mod product;
mod support;
mod temporal;
mod workflow;
