//! The services' connection pool: a connection goes back without a round
//! trip, and one that may not be fit for the next statement is closed.

use std::time::Duration;

use orderflow::db::pool::{Connections, Lease};

use crate::support::fresh_database;
use crate::support::stack::eventually;

/// One connection at most, so that every lease gets the same one while it lives.
async fn single(db: &crate::support::TestDb) -> Connections {
    let options = db.pool.connect_options();
    Connections::new((*options).clone(), 1, Duration::from_secs(10))
}

async fn backend(lease: &mut Lease) -> i32 {
    sqlx::query_scalar("SELECT pg_backend_pid()")
        .fetch_one(lease)
        .await
        .unwrap()
}

async fn pid(connections: &Connections) -> i32 {
    backend(&mut connections.acquire().await.unwrap()).await
}

/// Waits until PostgreSQL has no session for `pid` any more.
async fn gone(db: &crate::support::TestDb, pid: i32) {
    eventually(
        &format!("backend {pid} to end"),
        Duration::from_secs(10),
        || async {
            let alive: bool =
                sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_stat_activity WHERE pid = $1)")
                    .bind(pid)
                    .fetch_one(&db.pool)
                    .await
                    .unwrap();
            (!alive).then_some(())
        },
    )
    .await;
}

#[tokio::test]
async fn a_connection_is_reused_after_a_statement_and_after_a_database_error() {
    let db = fresh_database().await;
    let connections = single(&db).await;
    let first = pid(&connections).await;
    assert_eq!(pid(&connections).await, first);

    let failed = sqlx::query("SELECT 1 / 0")
        .execute(&mut connections.acquire().await.unwrap())
        .await;
    assert!(
        matches!(failed, Err(sqlx::Error::Database(_))),
        "{failed:?}"
    );
    assert_eq!(pid(&connections).await, first);
    assert_eq!(connections.size(), 1);
}

#[tokio::test]
async fn a_transaction_dropped_without_commit_ends_with_its_connection() {
    let db = fresh_database().await;
    sqlx::query("CREATE TABLE t (x INT)")
        .execute(&db.pool)
        .await
        .unwrap();
    let connections = single(&db).await;
    let first = {
        let mut lease = connections.acquire().await.unwrap();
        let pid = backend(&mut lease).await;
        let mut tx = lease.begin().await.unwrap();
        sqlx::query("INSERT INTO t VALUES (1)")
            .execute(&mut *tx)
            .await
            .unwrap();
        pid
        // tx and lease dropped here, uncommitted
    };
    // Closed, not left idle in its transaction until the next statement.
    gone(&db, first).await;
    assert_ne!(pid(&connections).await, first);
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM t")
        .fetch_one(&db.pool)
        .await
        .unwrap();
    assert_eq!(rows, 0);

    // A committed one keeps its connection.
    let second = pid(&connections).await;
    {
        let mut lease = connections.acquire().await.unwrap();
        let mut tx = lease.begin().await.unwrap();
        sqlx::query("INSERT INTO t VALUES (2)")
            .execute(&mut *tx)
            .await
            .unwrap();
        tx.commit().await.unwrap();
    }
    assert_eq!(pid(&connections).await, second);
}

#[tokio::test]
async fn a_dead_connection_fails_one_statement_and_is_replaced() {
    let db = fresh_database().await;
    let connections = single(&db).await;
    let first = pid(&connections).await;
    sqlx::query("SELECT pg_terminate_backend($1)")
        .bind(first)
        .execute(&db.pool)
        .await
        .unwrap();
    gone(&db, first).await;

    let failed = sqlx::query("SELECT 1")
        .execute(&mut connections.acquire().await.unwrap())
        .await;
    assert!(
        failed.is_err(),
        "a statement on a terminated session: {failed:?}"
    );
    let next = pid(&connections).await;
    assert_ne!(next, first);
}

#[tokio::test]
async fn a_cancelled_statement_leaves_no_answer_behind() {
    let db = fresh_database().await;
    let connections = single(&db).await;
    let first = pid(&connections).await;
    let cancelled = tokio::time::timeout(
        Duration::from_millis(100),
        sqlx::query("SELECT pg_sleep(1)").execute(&mut connections.acquire().await.unwrap()),
    )
    .await;
    assert!(cancelled.is_err(), "pg_sleep(1) finished within 100 ms");
    // The same connection; the next statement reads its own answer.
    let mut lease = connections.acquire().await.unwrap();
    let answer: i32 = sqlx::query_scalar("SELECT 42")
        .fetch_one(&mut lease)
        .await
        .unwrap();
    assert_eq!(answer, 42);
    assert_eq!(backend(&mut lease).await, first);
}

#[tokio::test]
async fn a_session_ended_during_its_statement_is_replaced_at_once() {
    let db = fresh_database().await;
    let connections = single(&db).await;
    let first = pid(&connections).await;
    let running = {
        let connections = connections.clone();
        tokio::spawn(async move {
            sqlx::query("SELECT pg_sleep(30)")
                .execute(&mut connections.acquire().await.unwrap())
                .await
        })
    };
    eventually("pg_sleep to run", Duration::from_secs(10), || async {
        sqlx::query_scalar::<_, bool>(
            "SELECT EXISTS (SELECT 1 FROM pg_stat_activity WHERE pid = $1 AND query LIKE '%pg_sleep%')",
        )
        .bind(first)
        .fetch_one(&db.pool)
        .await
        .unwrap()
        .then_some(())
    })
    .await;
    sqlx::query("SELECT pg_terminate_backend($1)")
        .bind(first)
        .execute(&db.pool)
        .await
        .unwrap();
    // PostgreSQL's own answer (FATAL), yet the session is over: the very
    // next statement gets a new one.
    let ended = running.await.unwrap();
    assert!(ended.is_err(), "{ended:?}");
    assert_ne!(pid(&connections).await, first);
}
