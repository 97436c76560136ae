//! Integration tests: the real binary, a real PostgreSQL cluster and a real
//! Temporal dev server, all started by `support` on first use.

mod audit;
mod bulk;
mod cli;
mod compose;
mod connection;
mod crash;
mod crypto;
mod db;
mod docs;
mod errors;
mod faults;
mod generated;
mod hard_faults;
mod kubernetes;
mod layers;
mod local;
mod operations;
mod orders;
mod page;
mod polish;
mod pool;
mod product;
mod replay;
mod resume;
mod serve;
mod services;
mod spread;
mod support;
mod temporal;
mod timeline;
mod trust;
mod watch;
mod workflow;
