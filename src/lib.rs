//! orderflow: order processing on Temporal and PostgreSQL.
//!
//! The binary is a thin shell over [`commands::run`]; everything else is a
//! library so that tests and later tools can reuse it.

pub mod audit;
pub mod cli;
pub mod commands;
pub mod config;
pub mod db;
pub mod domain;
pub mod errors;
pub mod exit;
pub mod input;
pub mod output;
pub mod services;
pub mod stack;
pub mod telemetry;
pub mod temporal;
pub mod web;
pub mod worker;
pub mod workflow;
