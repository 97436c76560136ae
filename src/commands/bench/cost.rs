//! What one order costs each part of a deployment, on the real path:
//! Temporal (events, actions, bytes: from the histories the run produced),
//! PostgreSQL (transactions from `pg_stat_database`, statements from
//! `pg_stat_statements` where the server has it, WAL bytes), and CPU: the
//! worker processes', and PostgreSQL's and the Temporal server's when the
//! bench started them. Meters are read before and after each throughput
//! round; a kind's cost is its rounds' sum over their orders.

use std::time::SystemTime;

use anyhow::Context as _;
use serde::Serialize;

use super::driver::{Kind, Stamps};
use crate::temporal::client::OrderClient;
use crate::temporal::cost::HistoryCost;

/// Histories read per kind for the Temporal figures.
pub const SAMPLE: u32 = 20;

/// Where the meters are.
pub struct Meters {
    pool: sqlx::PgPool,
    workers: Vec<u32>,
    postgres: Option<u32>,
    temporal: Option<u32>,
    statements: bool,
}

/// The meters at one moment.
#[derive(Debug, Default, Clone, Copy)]
pub struct Reading {
    transactions: f64,
    statements: Option<f64>,
    wal_bytes: f64,
    worker_cpu: f64,
    postgres_cpu: Option<f64>,
    temporal_cpu: Option<f64>,
}

impl Meters {
    pub async fn new(
        pool: &sqlx::PgPool,
        workers: Vec<u32>,
        postgres: Option<u32>,
        temporal: Option<u32>,
    ) -> Self {
        // Present where the server preloads the module (a PostgreSQL the
        // bench starts does, when it has it).
        let statements = sqlx::query("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
            .execute(pool)
            .await
            .is_ok()
            && sqlx::query("SELECT 1 FROM pg_stat_statements LIMIT 1")
                .execute(pool)
                .await
                .is_ok();
        Meters {
            pool: pool.clone(),
            workers,
            postgres,
            temporal,
            statements,
        }
    }

    pub async fn read(&self) -> anyhow::Result<Reading> {
        let (transactions, wal_bytes): (f64, f64) = sqlx::query_as(
            "SELECT (xact_commit + xact_rollback)::float8,
                    (pg_current_wal_lsn() - '0/0'::pg_lsn)::float8
             FROM pg_stat_database WHERE datname = current_database()",
        )
        .fetch_one(&self.pool)
        .await
        .context("reading pg_stat_database")?;
        let statements = if self.statements {
            let (calls,): (f64,) = sqlx::query_as(
                "SELECT coalesce(sum(calls), 0)::float8 FROM pg_stat_statements
                 WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())",
            )
            .fetch_one(&self.pool)
            .await
            .context("reading pg_stat_statements")?;
            Some(calls)
        } else {
            None
        };
        let mut worker_cpu = 0.0;
        for &pid in &self.workers {
            worker_cpu += crate::stack::tree_cpu_seconds(pid)?;
        }
        Ok(Reading {
            transactions,
            statements,
            wal_bytes,
            worker_cpu,
            postgres_cpu: self
                .postgres
                .and_then(|p| crate::stack::tree_cpu_seconds(p).ok()),
            temporal_cpu: self
                .temporal
                .and_then(|p| crate::stack::tree_cpu_seconds(p).ok()),
        })
    }
}

/// What a kind's rounds spent, summed; an optional meter that could not
/// be read in any round is absent.
#[derive(Debug)]
pub struct Spent {
    orders: u32,
    transactions: f64,
    wal_bytes: f64,
    worker_cpu: f64,
    statements: Option<f64>,
    postgres_cpu: Option<f64>,
    temporal_cpu: Option<f64>,
}

impl Default for Spent {
    fn default() -> Self {
        Spent {
            orders: 0,
            transactions: 0.0,
            wal_bytes: 0.0,
            worker_cpu: 0.0,
            statements: Some(0.0),
            postgres_cpu: Some(0.0),
            temporal_cpu: Some(0.0),
        }
    }
}

impl Spent {
    pub fn add(&mut self, before: Reading, after: Reading, orders: u32) {
        let plus = |sum: Option<f64>, a: Option<f64>, b: Option<f64>| Some(sum? + b? - a?);
        self.orders += orders;
        self.transactions += after.transactions - before.transactions;
        self.wal_bytes += after.wal_bytes - before.wal_bytes;
        self.worker_cpu += after.worker_cpu - before.worker_cpu;
        self.statements = plus(self.statements, before.statements, after.statements);
        self.postgres_cpu = plus(self.postgres_cpu, before.postgres_cpu, after.postgres_cpu);
        self.temporal_cpu = plus(self.temporal_cpu, before.temporal_cpu, after.temporal_cpu);
    }
}

/// One order's cost, for one kind.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Cost {
    pub kind: Kind,
    /// Orders the meters ran over.
    pub orders: u32,
    /// Histories read for the Temporal figures.
    pub histories: u32,
    pub temporal_actions: f64,
    pub history_events: f64,
    pub workflow_tasks: f64,
    pub history_bytes: f64,
    pub payload_bytes: f64,
    pub pg_transactions: f64,
    /// Without pg_stat_statements: absent.
    pub pg_statements: Option<f64>,
    pub wal_bytes: f64,
    pub worker_cpu_ms: f64,
    /// When the bench started PostgreSQL: its backends and helpers.
    pub postgres_cpu_ms: Option<f64>,
    /// When the bench started the Temporal dev server.
    pub temporal_cpu_ms: Option<f64>,
}

impl Cost {
    /// `ids`: the orders whose histories to read.
    pub async fn new(
        kind: Kind,
        spent: &Spent,
        client: &OrderClient,
        ids: &[String],
    ) -> anyhow::Result<Self> {
        let mut history = HistoryCost::default();
        for id in ids {
            history.add(
                client
                    .history_cost(id)
                    .await
                    .with_context(|| format!("reading the history of {id}"))?,
            );
        }
        let read = ids.len().max(1) as f64;
        let orders = f64::from(spent.orders.max(1));
        let t = spent;
        Ok(Cost {
            kind,
            orders: spent.orders,
            histories: ids.len() as u32,
            temporal_actions: history.actions as f64 / read,
            history_events: history.events as f64 / read,
            workflow_tasks: history.workflow_tasks as f64 / read,
            history_bytes: history.history_bytes as f64 / read,
            payload_bytes: history.payload_bytes as f64 / read,
            pg_transactions: t.transactions / orders,
            pg_statements: t.statements.map(|s| s / orders),
            wal_bytes: t.wal_bytes / orders,
            worker_cpu_ms: t.worker_cpu * 1000.0 / orders,
            postgres_cpu_ms: t.postgres_cpu.map(|c| c * 1000.0 / orders),
            temporal_cpu_ms: t.temporal_cpu.map(|c| c * 1000.0 / orders),
        })
    }
}

/// Temporal Cloud's default limit of a namespace, in actions a second.
pub const CLOUD_ACTIONS_PER_SECOND: f64 = 500.0;

/// The capacity model: orders a second one unit of each part carries, at
/// the measured cost (DOCS.md § Capacity).
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Capacity {
    pub per_worker_core: f64,
    pub per_postgres_core: Option<f64>,
    pub per_cloud_namespace: f64,
    /// The dev server here: not a Temporal cluster's figure.
    pub per_dev_server_core: Option<f64>,
}

impl Capacity {
    pub fn of(cost: &Cost) -> Self {
        let per_core = |ms: f64| if ms > 0.0 { 1000.0 / ms } else { f64::INFINITY };
        Capacity {
            per_worker_core: per_core(cost.worker_cpu_ms),
            per_postgres_core: cost.postgres_cpu_ms.map(per_core),
            per_cloud_namespace: CLOUD_ACTIONS_PER_SECOND / cost.temporal_actions,
            per_dev_server_core: cost.temporal_cpu_ms.map(per_core),
        }
    }
}

/// Where a single order's time goes, start -> result: medians over the
/// single-order run, each segment from the client's clock or the
/// history's (one machine, one clock).
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Split {
    pub kind: Kind,
    /// The start call, on the client.
    pub start_call_ms: f64,
    /// The first workflow task waiting for a worker's poll (matching).
    pub queue_ms: f64,
    /// The first workflow task on the worker, to its completion.
    pub task_ms: f64,
    /// From that completion to the close (more tasks, if any).
    pub to_close_ms: f64,
    /// From the close to the result reaching the client (its long poll).
    pub result_ms: f64,
    pub total_ms: f64,
}

impl Split {
    pub async fn new(kind: Kind, client: &OrderClient, stamps: &[Stamps]) -> anyhow::Result<Self> {
        let ms = |from: SystemTime, to: SystemTime| match to.duration_since(from) {
            Ok(d) => d.as_secs_f64() * 1000.0,
            Err(e) => -(e.duration().as_secs_f64() * 1000.0),
        };
        let mut segments: [Vec<f64>; 6] = Default::default();
        for s in stamps {
            let Some(m) = client
                .milestones(&s.id)
                .await
                .with_context(|| format!("reading the history of {}", s.id))?
            else {
                continue;
            };
            let values = [
                ms(s.before, s.start_returned),
                ms(m.task_scheduled, m.task_started),
                ms(m.task_started, m.task_completed),
                ms(m.task_completed, m.closed),
                ms(m.closed, s.after),
                ms(s.before, s.after),
            ];
            for (segment, value) in segments.iter_mut().zip(values) {
                segment.push(value);
            }
        }
        let median = |v: &mut Vec<f64>| {
            v.sort_by(f64::total_cmp);
            if v.is_empty() {
                0.0
            } else {
                super::driver::median(v)
            }
        };
        let [a, b, c, d, e, f] = &mut segments;
        Ok(Split {
            kind,
            start_call_ms: median(a),
            queue_ms: median(b),
            task_ms: median(c),
            to_close_ms: median(d),
            result_ms: median(e),
            total_ms: median(f),
        })
    }
}
