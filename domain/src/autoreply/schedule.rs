//! When the offline and scheduled rules apply, in the rule's time zone.
//!
//! A rule's `schedule` is `{"days":[1..7], "start":"HH:MM", "end":"HH:MM",
//! "timezone":"Europe/Rome", "businessHoursId": 3}` (every key optional;
//! days are ISO weekdays, Monday = 1). A window whose end is before its start
//! runs over midnight.
//! - **scheduled**: inside `start`–`end` (required) on `days` (default every day).
//! - **offline**: outside the business-hours calendar `businessHoursId` (its
//!   own time zone and holidays) when one is given; otherwise inside
//!   `start`–`end`, by default 22:00–08:00.

use chrono::{DateTime, Datelike, NaiveTime, Timelike, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

use crate::{DomainError, Result};

pub const DEFAULT_OFFLINE_START: &str = "22:00";
pub const DEFAULT_OFFLINE_END: &str = "08:00";

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Schedule {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub days: Vec<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timezone: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub business_hours_id: Option<i64>,
}

pub fn parse_time(field: &str, value: &str) -> Result<NaiveTime> {
    NaiveTime::parse_from_str(value.trim(), "%H:%M")
        .map_err(|_| DomainError::invalid(field, "a time as HH:MM, e.g. 11:30"))
}

pub fn parse_timezone(value: &str) -> Result<Tz> {
    value.trim().parse::<Tz>().map_err(|_| {
        DomainError::invalid("schedule.timezone", "an IANA time zone, e.g. Europe/Paris")
    })
}

impl Schedule {
    /// Checks every field; `needs_window` for scheduled rules.
    pub fn validate(&self, needs_window: bool) -> Result<()> {
        if self.days.iter().any(|d| !(1..=7).contains(d)) {
            return Err(DomainError::invalid(
                "schedule.days",
                "ISO weekdays, 1 (Monday) to 7 (Sunday)",
            ));
        }
        match (&self.start, &self.end) {
            (Some(s), Some(e)) => {
                let (s, e) = (
                    parse_time("schedule.start", s)?,
                    parse_time("schedule.end", e)?,
                );
                if s == e {
                    return Err(DomainError::invalid(
                        "schedule.end",
                        "must differ from the start",
                    ));
                }
            }
            (None, None) if !needs_window => {}
            (None, _) => {
                return Err(DomainError::invalid(
                    "schedule.start",
                    "required with an end",
                ));
            }
            (_, None) => {
                return Err(DomainError::invalid(
                    "schedule.end",
                    "required with a start",
                ));
            }
        }
        if let Some(tz) = &self.timezone {
            parse_timezone(tz)?;
        }
        Ok(())
    }

    fn tz(&self) -> Tz {
        self.timezone
            .as_deref()
            .and_then(|t| t.parse().ok())
            .unwrap_or(Tz::UTC)
    }

    fn window(&self, default: Option<(&str, &str)>) -> Option<(NaiveTime, NaiveTime)> {
        let (s, e) = match (&self.start, &self.end, default) {
            (Some(s), Some(e), _) => (s.as_str(), e.as_str()),
            (_, _, Some(d)) => d,
            _ => return None,
        };
        Some((parse_time("", s).ok()?, parse_time("", e).ok()?))
    }

    /// A scheduled rule's window holds at `now`.
    pub fn is_within(&self, now: DateTime<Utc>) -> bool {
        let local = now.with_timezone(&self.tz());
        let Some((start, end)) = self.window(None) else {
            return false;
        };
        let day = local.weekday().number_from_monday();
        if !self.days.is_empty() && !self.days.contains(&day) {
            return false;
        }
        in_window(local.time(), start, end)
    }

    /// The default offline window (or this rule's `start`–`end`) holds at `now`.
    pub fn is_offline_by_window(&self, now: DateTime<Utc>) -> bool {
        let local = now.with_timezone(&self.tz());
        let Some((start, end)) = self.window(Some((DEFAULT_OFFLINE_START, DEFAULT_OFFLINE_END)))
        else {
            return false;
        };
        in_window(local.time(), start, end)
    }
}

pub fn in_window(t: NaiveTime, start: NaiveTime, end: NaiveTime) -> bool {
    let t = NaiveTime::from_hms_opt(t.hour(), t.minute(), t.second()).unwrap_or(t);
    if start < end {
        start <= t && t < end
    } else {
        t >= start || t < end
    }
}

const DAY_KEYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

/// Whether `now` is inside a business-hours calendar (`{"mon":[["09:00","18:00"]],…}`
/// in `timezone`), holidays (local dates) excluded.
pub fn is_open(
    timezone: &str,
    schedule: &serde_json::Value,
    holidays: &[chrono::NaiveDate],
    now: DateTime<Utc>,
) -> bool {
    let tz: Tz = timezone.parse().unwrap_or(Tz::UTC);
    let local = now.with_timezone(&tz);
    if holidays.contains(&local.date_naive()) {
        return false;
    }
    let key = DAY_KEYS[local.weekday().num_days_from_monday() as usize];
    let Some(ranges) = schedule.get(key).and_then(|v| v.as_array()) else {
        return false;
    };
    ranges.iter().any(|r| {
        let pair = r.as_array().map(|a| {
            (
                a.first().and_then(|v| v.as_str()),
                a.get(1).and_then(|v| v.as_str()),
            )
        });
        match pair {
            Some((Some(s), Some(e))) => match (parse_time("", s), parse_time("", e)) {
                (Ok(s), Ok(e)) => in_window(local.time(), s, e),
                _ => false,
            },
            _ => false,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn utc(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    #[test]
    fn the_default_offline_window_is_22_to_8_in_the_rule_time_zone() {
        let paris = Schedule {
            timezone: Some("Europe/Paris".into()),
            ..Default::default()
        };
        // 21:30 UTC is 22:30 in Paris in winter.
        assert!(paris.is_offline_by_window(utc("2026-12-02T21:30:00Z")));
        assert!(!Schedule::default().is_offline_by_window(utc("2026-12-02T21:30:00Z")));
        assert!(paris.is_offline_by_window(utc("2026-12-02T06:59:00Z")));
        assert!(!paris.is_offline_by_window(utc("2026-12-02T07:00:00Z")));
    }

    #[test]
    fn a_scheduled_window_holds_on_its_days_only() {
        let lunch = Schedule {
            days: vec![1, 2, 3, 4, 5],
            start: Some("11:30".into()),
            end: Some("13:00".into()),
            timezone: Some("Europe/Rome".into()),
            business_hours_id: None,
        };
        // Wednesday 2 December 2026, 12:00 in Rome = 11:00 UTC.
        assert!(lunch.is_within(utc("2026-12-02T11:00:00Z")));
        assert!(!lunch.is_within(utc("2026-12-02T12:00:00Z")));
        // Saturday.
        assert!(!lunch.is_within(utc("2026-12-05T11:00:00Z")));
        assert!(lunch.validate(true).is_ok());
        assert!(Schedule::default().validate(true).is_err());
    }

    #[test]
    fn business_hours_are_read_in_their_time_zone_with_holidays() {
        let day = json!([["09:00", "18:00"]]);
        let cal = json!({"mon": day, "tue": day, "wed": day, "thu": day, "fri": day});
        assert!(is_open(
            "Europe/Rome",
            &cal,
            &[],
            utc("2026-12-02T08:30:00Z")
        ));
        assert!(!is_open(
            "Europe/Rome",
            &cal,
            &[],
            utc("2026-12-02T07:30:00Z")
        ));
        assert!(!is_open(
            "Europe/Rome",
            &cal,
            &[],
            utc("2026-12-05T10:00:00Z")
        ));
        let holiday = chrono::NaiveDate::from_ymd_opt(2026, 12, 2).unwrap();
        assert!(!is_open(
            "Europe/Rome",
            &cal,
            &[holiday],
            utc("2026-12-02T10:00:00Z")
        ));
    }
}
