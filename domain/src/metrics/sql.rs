//! A small builder for the metrics' raw statements: numbered placeholders
//! (`$n` on PostgreSQL, `?n` on SQLite) and the few expressions that differ
//! by backend. Raw SQL is kept to this module family: the aggregates need
//! window functions, `percentile_cont` and time-zone arithmetic that the
//! portable query builder does not express.

use sea_orm::{ConnectionTrait, DbBackend, QueryResult, Statement, TryGetable, Value};

use crate::{DomainError, Result};

pub struct Sql {
    pub backend: DbBackend,
    values: Vec<Value>,
}

impl Sql {
    pub fn new(backend: DbBackend) -> Self {
        Self {
            backend,
            values: vec![],
        }
    }

    /// Binds a value and returns its placeholder.
    pub fn bind(&mut self, v: impl Into<Value>) -> String {
        self.values.push(v.into());
        match self.backend {
            DbBackend::Postgres => format!("${}", self.values.len()),
            _ => format!("?{}", self.values.len()),
        }
    }

    /// Seconds since the epoch of a timestamp expression, as a double (to
    /// the millisecond on SQLite).
    pub fn epoch(&self, ts: &str) -> String {
        match self.backend {
            DbBackend::Postgres => format!("CAST(EXTRACT(EPOCH FROM {ts}) AS DOUBLE PRECISION)"),
            // julianday is a double: round away its ~50 µs noise.
            _ => format!("ROUND((julianday({ts}) - 2440587.5) * 86400.0, 3)"),
        }
    }

    /// Seconds from `a` to `b` (to the millisecond on SQLite).
    pub fn secs_between(&self, a: &str, b: &str) -> String {
        match self.backend {
            DbBackend::Postgres => {
                format!("CAST(EXTRACT(EPOCH FROM ({b} - {a})) AS DOUBLE PRECISION)")
            }
            _ => format!("ROUND((julianday({b}) - julianday({a})) * 86400.0, 3)"),
        }
    }

    /// Whole milliseconds from `a` to `b`, as a BIGINT.
    pub fn ms_between(&self, a: &str, b: &str) -> String {
        match self.backend {
            DbBackend::Postgres => {
                format!("CAST(ROUND(EXTRACT(EPOCH FROM ({b} - {a})) * 1000) AS BIGINT)")
            }
            _ => format!("CAST(ROUND((julianday({b}) - julianday({a})) * 86400000.0) AS INTEGER)"),
        }
    }

    /// Whole milliseconds since the epoch of a timestamp expression, as a
    /// BIGINT.
    pub fn epoch_ms(&self, ts: &str) -> String {
        match self.backend {
            DbBackend::Postgres => {
                format!("CAST(ROUND(EXTRACT(EPOCH FROM {ts}) * 1000) AS BIGINT)")
            }
            _ => format!("CAST(ROUND((julianday({ts}) - 2440587.5) * 86400000.0) AS INTEGER)"),
        }
    }

    /// The smaller / larger of two numbers.
    pub fn least(&self, a: &str, b: &str) -> String {
        match self.backend {
            DbBackend::Postgres => format!("LEAST({a}, {b})"),
            _ => format!("MIN({a}, {b})"),
        }
    }

    pub fn greatest(&self, a: &str, b: &str) -> String {
        match self.backend {
            DbBackend::Postgres => format!("GREATEST({a}, {b})"),
            _ => format!("MAX({a}, {b})"),
        }
    }

    /// True when `earlier` lies within `days` before `later` (inclusive).
    pub fn within_days_before(&self, earlier: &str, later: &str, days: i64) -> String {
        match self.backend {
            DbBackend::Postgres => {
                format!("{earlier} >= {later} - INTERVAL '{days} days'")
            }
            _ => format!("julianday({earlier}) >= julianday({later}) - {days}.0"),
        }
    }

    pub async fn exec(self, db: &impl ConnectionTrait, sql: &str) -> Result<u64> {
        let stmt = Statement::from_sql_and_values(self.backend, sql, self.values);
        Ok(db.execute_raw(stmt).await?.rows_affected())
    }

    pub async fn all(self, db: &impl ConnectionTrait, sql: &str) -> Result<Vec<QueryResult>> {
        let stmt = Statement::from_sql_and_values(self.backend, sql, self.values);
        Ok(db.query_all_raw(stmt).await?)
    }
}

/// Reads a column, treating a driver error as internal.
pub fn get<T: TryGetable>(row: &QueryResult, col: &str) -> Result<T> {
    row.try_get::<T>("", col).map_err(|e| {
        DomainError::internal(std::io::Error::other(format!("metrics column {col}: {e}")))
    })
}

/// A count column (NULL when no row matched).
pub fn count(row: &QueryResult, col: &str) -> Result<i64> {
    Ok(get::<Option<i64>>(row, col)?.unwrap_or(0))
}

/// `SUM(CASE WHEN cond THEN 1 ELSE 0 END)` as a BIGINT.
pub fn count_if(cond: &str) -> String {
    format!("CAST(COALESCE(SUM(CASE WHEN {cond} THEN 1 ELSE 0 END), 0) AS BIGINT)")
}

/// `AVG(CASE WHEN cond THEN x END)` as a double.
pub fn avg_if(cond: &str, x: &str) -> String {
    format!("CAST(AVG(CASE WHEN {cond} THEN {x} END) AS DOUBLE PRECISION)")
}
