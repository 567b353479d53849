//! Forward keyset pagination for Relay connections: `first` and an opaque
//! `after` cursor. Keyset, not offset, so deep pages stay fast and stable
//! while new rows arrive.

use chrono::{DateTime, Utc};

use crate::{DomainError, Result};

pub const DEFAULT_PAGE: u64 = 20;
pub const MAX_PAGE: u64 = 100;

#[derive(Debug, Clone, Default)]
pub struct PageRequest {
    pub first: Option<i32>,
    pub after: Option<String>,
}

impl PageRequest {
    pub fn new(first: Option<i32>, after: Option<String>) -> Self {
        Self { first, after }
    }

    pub fn limit(&self) -> u64 {
        match self.first {
            Some(n) if n > 0 => (n as u64).min(MAX_PAGE),
            _ => DEFAULT_PAGE,
        }
    }

    /// Checks `first` before any query runs.
    pub fn validate(&self) -> Result<()> {
        match self.first {
            Some(n) if n < 0 => Err(DomainError::invalid("first", "must not be negative")),
            Some(n) if n as u64 > MAX_PAGE => Err(DomainError::invalid(
                "first",
                format!("at most {MAX_PAGE} per page"),
            )),
            _ => Ok(()),
        }
    }

    /// A cursor that is just a row id.
    pub fn after_id(&self) -> Result<Option<i64>> {
        self.after
            .as_deref()
            .map(|c| decode(c)?.parse().map_err(|_| bad_cursor()))
            .transpose()
    }

    /// A cursor made of a timestamp and a row id, for lists sorted by time.
    pub fn after_time_id(&self) -> Result<Option<(DateTime<Utc>, i64)>> {
        let Some(cursor) = self.after.as_deref() else {
            return Ok(None);
        };
        let raw = decode(cursor)?;
        let (micros, id) = raw.split_once(':').ok_or_else(bad_cursor)?;
        let micros: i64 = micros.parse().map_err(|_| bad_cursor())?;
        let id: i64 = id.parse().map_err(|_| bad_cursor())?;
        let at = DateTime::from_timestamp_micros(micros).ok_or_else(bad_cursor)?;
        Ok(Some((at, id)))
    }
}

pub fn id_cursor(id: i64) -> String {
    encode(&id.to_string())
}

pub fn time_id_cursor(at: DateTime<Utc>, id: i64) -> String {
    encode(&format!("{}:{id}", at.timestamp_micros()))
}

fn encode(raw: &str) -> String {
    hex::encode(raw)
}

fn decode(cursor: &str) -> Result<String> {
    hex::decode(cursor)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .ok_or_else(bad_cursor)
}

fn bad_cursor() -> DomainError {
    DomainError::invalid("after", "not a cursor from this list")
}

#[derive(Debug, Clone)]
pub struct Page<T> {
    pub items: Vec<(String, T)>,
    pub has_next_page: bool,
    pub has_previous_page: bool,
}

impl<T> Page<T> {
    /// `rows` was fetched with `limit + 1` to learn whether a next page exists;
    /// `cursor` makes each row's cursor with [`id_cursor`] or [`time_id_cursor`].
    pub fn from_rows(mut rows: Vec<T>, req: &PageRequest, cursor: impl Fn(&T) -> String) -> Self {
        let limit = req.limit() as usize;
        let has_next_page = rows.len() > limit;
        rows.truncate(limit);
        Self {
            items: rows.into_iter().map(|r| (cursor(&r), r)).collect(),
            has_next_page,
            has_previous_page: req.after.is_some(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_time_cursor_round_trips() {
        let at = DateTime::from_timestamp_micros(1_700_000_000_123_456).unwrap();
        let req = PageRequest::new(Some(5), Some(time_id_cursor(at, 42)));
        assert_eq!(req.after_time_id().unwrap(), Some((at, 42)));
    }

    #[test]
    fn a_foreign_cursor_is_bad_input() {
        let req = PageRequest::new(None, Some("zz".into()));
        assert!(matches!(
            req.after_id(),
            Err(DomainError::InvalidInput { field, .. }) if field == "after"
        ));
    }

    #[test]
    fn more_than_the_maximum_page_is_refused() {
        assert!(PageRequest::new(Some(101), None).validate().is_err());
        assert_eq!(PageRequest::new(Some(500), None).limit(), MAX_PAGE);
    }
}
