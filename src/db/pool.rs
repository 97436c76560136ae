//! The services' connections: a pool that takes a connection back the moment
//! it is dropped.
//!
//! sqlx's own pool sends a `Sync` and waits for PostgreSQL's answer every
//! time a connection goes back (sqlx-core 0.8 and 0.9, `return_to_pool`),
//! so each statement cost two round trips, and PostgreSQL woke twice for
//! it. Under `orderflow bench` that second round trip cost more CPU than
//! any statement of the workflow (DOCS.md, Benchmark). Here a connection goes
//! back as it is, and one that may not be fit for the next statement is
//! closed instead:
//!
//! - a statement failed other than with PostgreSQL's own error (I/O,
//!   protocol, …): the connection may be dead;
//! - the schema changed under its prepared statements (`db migrate`, `db
//!   reset`): they would fail again on it, a new connection prepares anew;
//! - something is still queued to be sent, such as the `ROLLBACK` of a
//!   transaction dropped without commit: closing the connection rolls it
//!   back at once, instead of leaving it open, holding its locks, until
//!   the next statement.
//!
//! A statement cancelled half-way (its future dropped) leaves the
//! connection with an answer still to read; sqlx reads it before the next
//! statement on that connection, as it does after its own ping.

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use deadpool::managed::{self, Metrics, Object, PoolError, QueueMode, RecycleResult};
use futures::future::BoxFuture;
use futures::stream::BoxStream;
use futures::{FutureExt as _, TryStreamExt as _};
use sqlx::postgres::{
    PgConnectOptions, PgConnection, PgDatabaseError, PgQueryResult, PgRow, PgSeverity, PgStatement,
    PgTypeInfo,
};
use sqlx::{Connection as _, Either, Execute, Executor, PgPool, Postgres, Transaction};

struct Manager {
    options: PgConnectOptions,
    /// Run on each new connection (`SET …` of its session settings).
    setup: Option<String>,
}

impl managed::Manager for Manager {
    type Type = PgConnection;
    type Error = sqlx::Error;

    async fn create(&self) -> Result<PgConnection, sqlx::Error> {
        let mut conn = PgConnection::connect_with(&self.options).await?;
        if let Some(setup) = self.setup.clone() {
            conn.execute(setup.as_str()).await?;
        }
        Ok(conn)
    }

    async fn recycle(&self, _: &mut PgConnection, _: &Metrics) -> RecycleResult<sqlx::Error> {
        // Checked when it came back (`Lease`'s drop).
        Ok(())
    }
}

/// Connections for the domain services; cheap to clone (one shared pool).
#[derive(Clone)]
pub struct Connections {
    pool: managed::Pool<Manager>,
}

impl Connections {
    /// As many connections, to the same database with the same settings, as
    /// `pool` may open. They are opened when needed and are not `pool`'s.
    pub fn like(pool: &PgPool) -> Self {
        let options = pool.options();
        Self::new(
            (*pool.connect_options()).clone(),
            options.get_max_connections() as usize,
            options.get_acquire_timeout(),
        )
    }

    pub fn new(
        options: PgConnectOptions,
        max_connections: usize,
        acquire_timeout: Duration,
    ) -> Self {
        Self::with_setup(options, max_connections, acquire_timeout, None)
    }

    fn with_setup(
        options: PgConnectOptions,
        max_connections: usize,
        acquire_timeout: Duration,
        setup: Option<String>,
    ) -> Self {
        let pool = managed::Pool::builder(Manager { options, setup })
            .max_size(max_connections.max(1))
            // The most recently used first: a few connections kept busy
            // cost PostgreSQL less than many waking in turn.
            .queue_mode(QueueMode::Lifo)
            .runtime(deadpool::Runtime::Tokio1)
            .wait_timeout(Some(acquire_timeout))
            .create_timeout(Some(acquire_timeout))
            .build()
            .expect("a runtime and timeouts are set");
        Self { pool }
    }

    /// The same connections, each wait limited to `limit`: for a
    /// connection from the pool, and for each statement (PostgreSQL's
    /// `statement_timeout` and `lock_timeout`, set on each session as it
    /// opens). A statement held up behind a lock, or by a server that does
    /// not answer, fails as an outage (SQLSTATE 57014, 55P03, a pool
    /// timeout; [`super::is_outage`]) well within its step's time limit,
    /// so the step waits for the database instead of timing out as if the
    /// order had failed.
    pub fn limited(&self, limit: Duration) -> Self {
        let millis = limit.as_millis().max(1);
        let setup = format!("SET statement_timeout = {millis}; SET lock_timeout = {millis}");
        let wait = self.pool.timeouts().wait.map_or(limit, |w| w.min(limit));
        Self::with_setup(
            self.pool.manager().options.clone(),
            self.pool.status().max_size,
            wait,
            Some(setup),
        )
    }

    /// A connection for one statement or transaction; it goes back when
    /// the lease is dropped.
    pub async fn acquire(&self) -> Result<Lease, sqlx::Error> {
        match self.pool.get().await {
            Ok(conn) => Ok(Lease {
                conn: Some(conn),
                broken: AtomicBool::new(false),
            }),
            Err(PoolError::Backend(e)) => Err(e),
            Err(PoolError::Timeout(_)) => Err(sqlx::Error::PoolTimedOut),
            Err(PoolError::Closed) => Err(sqlx::Error::PoolClosed),
            Err(e) => Err(sqlx::Error::Protocol(format!("connection pool: {e}"))),
        }
    }

    /// Connections open now (idle or leased).
    pub fn size(&self) -> usize {
        self.pool.status().size
    }
}

/// One connection, lent: an [`Executor`] (`.fetch_one(&mut lease)`), or
/// [`Lease::begin`] for a transaction.
pub struct Lease {
    conn: Option<Object<Manager>>,
    broken: AtomicBool,
}

impl Lease {
    pub async fn begin(&mut self) -> Result<Transaction<'_, Postgres>, sqlx::Error> {
        let conn = self.conn.as_mut().expect("a lease holds its connection");
        let begun = conn.begin().await;
        if let Err(e) = &begun {
            note(&self.broken)(e);
        }
        begun
    }

    fn parts(&mut self) -> (&mut PgConnection, &AtomicBool) {
        let Lease { conn, broken } = self;
        (conn.as_mut().expect("a lease holds its connection"), broken)
    }
}

/// True when the error may have left the connection unusable: anything but
/// PostgreSQL's own answer that the statement failed, and that answer too
/// when it ended the session (`FATAL`: terminated, shutting down, …) or
/// when the schema changed under the connection's prepared statements
/// (they would fail again; a new connection prepares them anew).
fn unfit(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::Database(e) => {
            e.try_downcast_ref::<PgDatabaseError>()
                .is_some_and(|e| matches!(e.severity(), PgSeverity::Fatal | PgSeverity::Panic))
                || super::is_stale_schema(error)
        }
        sqlx::Error::RowNotFound => false,
        _ => true,
    }
}

fn note(broken: &AtomicBool) -> impl Fn(&sqlx::Error) + Send + Sync + '_ {
    move |e| {
        if unfit(e) {
            broken.store(true, Ordering::Relaxed);
        }
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        let Some(conn) = self.conn.take() else { return };
        // `should_flush` is sqlx's own (hidden) test that bytes are queued
        // for the server; its pool's ping on return is what sends them.
        if self.broken.load(Ordering::Relaxed) || conn.should_flush() {
            // Out of the pool and closed; PostgreSQL ends its session.
            drop(Object::take(conn));
        }
    }
}

impl fmt::Debug for Lease {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Lease")
            .field("broken", &self.broken.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl<'c> Executor<'c> for &'c mut Lease {
    type Database = Postgres;

    fn fetch_many<'e, 'q: 'e, E>(
        self,
        query: E,
    ) -> BoxStream<'e, Result<Either<PgQueryResult, PgRow>, sqlx::Error>>
    where
        'c: 'e,
        E: 'q + Execute<'q, Postgres>,
    {
        let (conn, broken) = self.parts();
        Box::pin(conn.fetch_many(query).inspect_err(note(broken)))
    }

    fn fetch_optional<'e, 'q: 'e, E>(
        self,
        query: E,
    ) -> BoxFuture<'e, Result<Option<PgRow>, sqlx::Error>>
    where
        'c: 'e,
        E: 'q + Execute<'q, Postgres>,
    {
        let (conn, broken) = self.parts();
        conn.fetch_optional(query)
            .inspect(inspect_result(broken))
            .boxed()
    }

    fn prepare_with<'e, 'q: 'e>(
        self,
        sql: &'q str,
        parameters: &'e [PgTypeInfo],
    ) -> BoxFuture<'e, Result<PgStatement<'q>, sqlx::Error>>
    where
        'c: 'e,
    {
        let (conn, broken) = self.parts();
        conn.prepare_with(sql, parameters)
            .inspect(inspect_result(broken))
            .boxed()
    }

    fn describe<'e, 'q: 'e>(
        self,
        sql: &'q str,
    ) -> BoxFuture<'e, Result<sqlx::Describe<Postgres>, sqlx::Error>>
    where
        'c: 'e,
    {
        let (conn, broken) = self.parts();
        conn.describe(sql).inspect(inspect_result(broken)).boxed()
    }
}

fn inspect_result<T>(broken: &AtomicBool) -> impl FnOnce(&Result<T, sqlx::Error>) + Send + '_ {
    move |result| {
        if let Err(e) = result {
            note(broken)(e);
        }
    }
}
