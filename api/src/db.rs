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
    count_queries(&mut db, &counter);
    Ok((db, counter))
}

/// A pool for reads that need no transaction (GraphQL field loads, event
/// payloads, dashboards, routing's view of the queues). On a SQLite file
/// these get read-only connections of their own: in WAL mode readers never
/// wait for the single writer, so a long ingest batch does not hold up every
/// query behind it. PostgreSQL and `:memory:` share the main pool.
pub async fn read_pool(
    url: &str,
    db: &DatabaseConnection,
    counter: &QueryCounter,
    max_connections: u32,
) -> Result<DatabaseConnection, DbErr> {
    if db.get_database_backend() != DbBackend::Sqlite || url.contains(":memory:") {
        return Ok(db.clone());
    }
    let mut opts = ConnectOptions::new(read_only(url));
    opts.sqlx_logging(false)
        .connect_timeout(Duration::from_secs(10))
        .acquire_timeout(Duration::from_secs(30))
        .max_connections(max_connections.max(1))
        .min_connections(1);
    let mut read = Database::connect(opts).await?;
    count_queries(&mut read, counter);
    Ok(read)
}

/// `url` with `mode=ro`: a write through the read pool fails loudly.
fn read_only(url: &str) -> String {
    let (base, query) = url.split_once('?').unwrap_or((url, ""));
    let mut params: Vec<&str> = query
        .split('&')
        .filter(|p| !p.is_empty() && !p.starts_with("mode="))
        .collect();
    params.push("mode=ro");
    format!("{base}?{}", params.join("&"))
}

fn count_queries(db: &mut DatabaseConnection, counter: &QueryCounter) {
    let c = counter.0.clone();
    db.set_metric_callback(move |info| {
        tracing::debug!(target: "helpdesk::sql", us = info.elapsed.as_micros() as u64, sql = %info.statement.sql);
        c.fetch_add(1, Ordering::Relaxed);
    });
}

#[cfg(test)]
mod tests {
    use super::read_only;

    #[test]
    fn the_read_pool_opens_the_file_read_only() {
        assert_eq!(
            read_only("sqlite:///var/lib/hd.db?mode=rwc"),
            "sqlite:///var/lib/hd.db?mode=ro"
        );
        assert_eq!(read_only("sqlite://hd.db"), "sqlite://hd.db?mode=ro");
        assert_eq!(
            read_only("sqlite://hd.db?cache=shared&mode=rwc"),
            "sqlite://hd.db?cache=shared&mode=ro"
        );
    }
}
