//! Database connection: SQLite (embedded default) or PostgreSQL, one code path.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use sea_orm::{ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DbBackend, DbErr};

/// Counts SQL statements, for `/metrics` and for the tests that prove a page
/// costs a constant number of queries.
#[derive(Debug, Default, Clone)]
pub struct QueryCounter(Arc<AtomicU64>);

impl QueryCounter {
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

pub async fn connect(
    url: &str,
    max_connections: u32,
) -> Result<(DatabaseConnection, QueryCounter), DbErr> {
    let sqlite = url.starts_with("sqlite:");
    let mut opts = ConnectOptions::new(url.to_string());
    opts.sqlx_logging(false)
        .connect_timeout(Duration::from_secs(10))
        .acquire_timeout(Duration::from_secs(30))
        // SQLite serialises writers anyway; one connection avoids SQLITE_BUSY
        // on read-then-write transactions (and `:memory:` is per connection).
        .max_connections(if sqlite { 1 } else { max_connections })
        .min_connections(1);
    let mut db = Database::connect(opts).await?;
    if db.get_database_backend() == DbBackend::Sqlite && !url.contains(":memory:") {
        db.execute_unprepared("PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;")
            .await?;
    }
    let counter = QueryCounter::default();
    let c = counter.0.clone();
    db.set_metric_callback(move |info| {
        tracing::debug!(target: "helpdesk::sql", us = info.elapsed.as_micros() as u64, sql = %info.statement.sql);
        c.fetch_add(1, Ordering::Relaxed);
    });
    Ok((db, counter))
}
