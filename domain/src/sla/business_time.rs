//! Business-time arithmetic: SLA clocks count only the hours a desk is open,
//! in its own IANA time zone, skipping holidays. Pure functions, no database.
//!
//! A calendar is a weekly schedule of local opening intervals (minutes after
//! local midnight, `[open, close)`, `close` may be 24:00) plus holiday dates.
//! Local times are turned into instants day by day, so days of 23 or 25 hours
//! (DST changes) count what the wall clock shows: an interval that spans a
//! spring-forward gap is one hour shorter.

use std::collections::BTreeSet;
use std::str::FromStr;

use chrono::{
    DateTime, Datelike, Duration, LocalResult, NaiveDate, NaiveDateTime, TimeZone, Utc, Weekday,
};
use chrono_tz::Tz;
use serde_json::{Map, Value};

use crate::{DomainError, Result};

/// Longest search for open time: a calendar open at least once a year always
/// answers well within it.
const MAX_DAYS: i64 = 3 * 366;

/// Day keys of the stored schedule, Monday first.
pub const DAY_KEYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

/// One opening interval in local minutes after midnight.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Interval {
    pub open: u32,
    pub close: u32,
}

#[derive(Debug, Clone)]
pub struct Calendar {
    pub tz: Tz,
    /// Monday first.
    pub week: [Vec<Interval>; 7],
    pub holidays: BTreeSet<NaiveDate>,
}

impl Default for Calendar {
    fn default() -> Self {
        Self::always()
    }
}

/// `"09:00"` → 540; `"24:00"` → 1440.
pub fn parse_hhmm(s: &str) -> Option<u32> {
    let (h, m) = s.trim().split_once(':')?;
    if h.len() != 2 || m.len() != 2 {
        return None;
    }
    let (h, m): (u32, u32) = (h.parse().ok()?, m.parse().ok()?);
    match (h, m) {
        (24, 0) => Some(1440),
        (0..=23, 0..=59) => Some(h * 60 + m),
        _ => None,
    }
}

pub fn format_hhmm(minutes: u32) -> String {
    format!("{:02}:{:02}", minutes / 60, minutes % 60)
}

pub fn parse_time_zone(name: &str) -> Result<Tz> {
    Tz::from_str(name.trim())
        .map_err(|_| DomainError::invalid("timeZone", format!("unknown time zone {name:?}")))
}

pub fn day_index(day: Weekday) -> usize {
    day.num_days_from_monday() as usize
}

impl Calendar {
    /// Open around the clock, every day (no business hours configured).
    pub fn always() -> Self {
        let all = vec![Interval {
            open: 0,
            close: 1440,
        }];
        Self {
            tz: Tz::UTC,
            week: std::array::from_fn(|_| all.clone()),
            holidays: BTreeSet::new(),
        }
    }

    /// Reads the stored shape `{"mon":[["09:00","18:00"]], ...}`.
    pub fn from_stored(
        tz_name: &str,
        schedule: &Value,
        holidays: impl IntoIterator<Item = NaiveDate>,
    ) -> Result<Self> {
        let tz = parse_time_zone(tz_name)?;
        let mut week: [Vec<Interval>; 7] = Default::default();
        for (i, key) in DAY_KEYS.iter().enumerate() {
            let Some(list) = schedule.get(*key).and_then(Value::as_array) else {
                continue;
            };
            for pair in list {
                let bad = || DomainError::invalid("schedule", format!("bad interval on {key}"));
                let open = pair.get(0).and_then(Value::as_str).ok_or_else(bad)?;
                let close = pair.get(1).and_then(Value::as_str).ok_or_else(bad)?;
                let open = parse_hhmm(open).ok_or_else(bad)?;
                let close = parse_hhmm(close).ok_or_else(bad)?;
                week[i].push(Interval { open, close });
            }
        }
        let cal = Self {
            tz,
            week,
            holidays: holidays.into_iter().collect(),
        };
        cal.validated()
    }

    /// Sorted, non-overlapping intervals with `open < close`, and some open time.
    pub fn validated(mut self) -> Result<Self> {
        for (i, day) in self.week.iter_mut().enumerate() {
            day.sort_by_key(|iv| iv.open);
            let mut last_close = 0;
            for iv in day.iter() {
                if iv.open >= iv.close {
                    return Err(DomainError::invalid(
                        "schedule",
                        format!("{}: opening must be before closing", DAY_KEYS[i]),
                    ));
                }
                if iv.open < last_close {
                    return Err(DomainError::invalid(
                        "schedule",
                        format!("{}: intervals overlap", DAY_KEYS[i]),
                    ));
                }
                last_close = iv.close;
            }
        }
        if self.week.iter().all(Vec::is_empty) {
            return Err(DomainError::invalid(
                "schedule",
                "at least one opening interval is needed",
            ));
        }
        Ok(self)
    }

    /// The stored shape of the weekly schedule.
    pub fn schedule_json(&self) -> Value {
        let mut map = Map::new();
        for (i, day) in self.week.iter().enumerate() {
            let list: Vec<Value> = day
                .iter()
                .map(|iv| {
                    Value::from(vec![
                        Value::from(format_hhmm(iv.open)),
                        Value::from(format_hhmm(iv.close)),
                    ])
                })
                .collect();
            map.insert(DAY_KEYS[i].to_string(), Value::from(list));
        }
        Value::Object(map)
    }

    /// The instant a local wall time means; in a spring-forward gap, the first
    /// instant after it; in a fall-back overlap, the earlier one.
    fn instant(&self, local: NaiveDateTime) -> DateTime<Utc> {
        match self.tz.from_local_datetime(&local) {
            LocalResult::Single(t) => t.with_timezone(&Utc),
            LocalResult::Ambiguous(a, _) => a.with_timezone(&Utc),
            LocalResult::None => {
                // Gaps are at most a few hours; walk forward to the first valid minute.
                let mut probe = local;
                for _ in 0..(4 * 60) {
                    probe += Duration::minutes(1);
                    if let Some(t) = self.tz.from_local_datetime(&probe).earliest() {
                        return t.with_timezone(&Utc);
                    }
                }
                Utc.from_utc_datetime(&local)
            }
        }
    }

    /// The open intervals of one local date, as instants (empty on holidays).
    fn open_on(&self, date: NaiveDate) -> Vec<(DateTime<Utc>, DateTime<Utc>)> {
        if self.holidays.contains(&date) {
            return vec![];
        }
        let Some(midnight) = date.and_hms_opt(0, 0, 0) else {
            return vec![];
        };
        self.week[day_index(date.weekday())]
            .iter()
            .map(|iv| {
                let open = self.instant(midnight + Duration::minutes(iv.open.into()));
                let close = self.instant(midnight + Duration::minutes(iv.close.into()));
                (open, close)
            })
            .filter(|(o, c)| o < c)
            .collect()
    }

    fn local_date(&self, t: DateTime<Utc>) -> NaiveDate {
        t.with_timezone(&self.tz).date_naive()
    }

    /// The instant at which `amount` of business time has passed since `start`.
    /// A zero amount answers the next open instant (or `start` when open).
    pub fn add(&self, start: DateTime<Utc>, amount: Duration) -> DateTime<Utc> {
        let mut left = amount.max(Duration::zero());
        // The previous local day too: an interval closing after midnight UTC-wise.
        let first = self.local_date(start) - Duration::days(1);
        for offset in 0..MAX_DAYS {
            let date = first + Duration::days(offset);
            for (open, close) in self.open_on(date) {
                if close <= start {
                    continue;
                }
                let from = open.max(start);
                let span = close - from;
                if left < span || (left == span && left > Duration::zero()) {
                    return from + left;
                }
                if left.is_zero() {
                    return from;
                }
                left -= span;
            }
        }
        // A calendar that never opens: fall back to wall time.
        start + amount
    }

    /// Business time between `from` and `to`; negative when `to` is earlier.
    pub fn between(&self, from: DateTime<Utc>, to: DateTime<Utc>) -> Duration {
        if to < from {
            return -self.between(to, from);
        }
        let mut total = Duration::zero();
        let first = self.local_date(from) - Duration::days(1);
        let last = self.local_date(to);
        let mut date = first;
        while date <= last && (date - first).num_days() < 10 * MAX_DAYS {
            for (open, close) in self.open_on(date) {
                let a = open.max(from);
                let b = close.min(to);
                if a < b {
                    total += b - a;
                }
            }
            date += Duration::days(1);
        }
        total
    }

    /// Whether the desk is open at `t`.
    pub fn is_open(&self, t: DateTime<Utc>) -> bool {
        let d = self.local_date(t);
        [d - Duration::days(1), d]
            .into_iter()
            .flat_map(|date| self.open_on(date))
            .any(|(o, c)| o <= t && t < c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn office(tz: &str, holidays: &[&str]) -> Calendar {
        let day = json!([["09:00", "18:00"]]);
        Calendar::from_stored(
            tz,
            &json!({"mon": day, "tue": day, "wed": day, "thu": day, "fri": day}),
            holidays
                .iter()
                .map(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d").unwrap()),
        )
        .unwrap()
    }

    fn local(cal: &Calendar, s: &str) -> DateTime<Utc> {
        let naive = NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M").unwrap();
        cal.tz
            .from_local_datetime(&naive)
            .single()
            .unwrap()
            .with_timezone(&Utc)
    }

    #[test]
    fn a_message_on_friday_night_is_due_on_monday_morning() {
        let cal = office("Europe/Rome", &[]);
        // Friday 2026-11-27 21:55, ten minutes of business time.
        let due = cal.add(local(&cal, "2026-11-27 21:55"), Duration::minutes(10));
        assert_eq!(due, local(&cal, "2026-11-30 09:10"));
    }

    #[test]
    fn the_clock_runs_over_the_night_into_the_next_morning() {
        let cal = office("Europe/Rome", &[]);
        let due = cal.add(local(&cal, "2026-11-24 17:50"), Duration::minutes(30));
        assert_eq!(due, local(&cal, "2026-11-25 09:20"));
        assert_eq!(
            cal.between(local(&cal, "2026-11-24 17:50"), due),
            Duration::minutes(30)
        );
    }

    #[test]
    fn a_holiday_is_skipped_like_a_weekend() {
        // Tuesday 2026-12-08 is a holiday in Italy.
        let cal = office("Europe/Rome", &["2026-12-08"]);
        let due = cal.add(local(&cal, "2026-12-07 17:55"), Duration::minutes(10));
        assert_eq!(due, local(&cal, "2026-12-09 09:05"));
        // Friday before Christmas to after Boxing Day.
        let cal = office("Europe/Rome", &["2026-12-25"]);
        let due = cal.add(local(&cal, "2026-12-24 17:00"), Duration::hours(2));
        assert_eq!(due, local(&cal, "2026-12-28 10:00"));
    }

    #[test]
    fn inside_hours_it_is_plain_addition() {
        let cal = office("Europe/Paris", &[]);
        let start = local(&cal, "2026-11-25 10:00");
        assert_eq!(
            cal.add(start, Duration::minutes(10)),
            start + Duration::minutes(10)
        );
        assert!(cal.is_open(start));
        assert!(!cal.is_open(local(&cal, "2026-11-28 10:00")));
    }

    #[test]
    fn the_offset_change_at_the_end_of_summer_time_is_respected() {
        // Rome leaves summer time on Sunday 2026-10-25 (UTC+2 → UTC+1).
        let cal = office("Europe/Rome", &[]);
        let due = cal.add(local(&cal, "2026-10-23 17:00"), Duration::hours(2));
        assert_eq!(due, local(&cal, "2026-10-26 10:00"));
        assert_eq!(due.to_rfc3339(), "2026-10-26T09:00:00+00:00");
    }

    #[test]
    fn a_spring_forward_night_has_one_hour_less() {
        // Paris skips 02:00–03:00 on Sunday 2026-03-29; open 01:00–05:00 daily.
        let day = json!([["01:00", "05:00"]]);
        let cal = Calendar::from_stored(
            "Europe/Paris",
            &json!({"mon": day, "tue": day, "wed": day, "thu": day, "fri": day, "sat": day, "sun": day}),
            [],
        )
        .unwrap();
        let start = local(&cal, "2026-03-29 01:00");
        // 3 real hours that night, the 4th the next night.
        assert_eq!(
            cal.between(start, local(&cal, "2026-03-29 05:00")),
            Duration::hours(3)
        );
        assert_eq!(
            cal.add(start, Duration::hours(4)),
            local(&cal, "2026-03-30 02:00")
        );
    }

    #[test]
    fn business_time_between_is_negative_backwards_and_skips_closed_time() {
        let cal = office("Europe/Rome", &[]);
        let fri = local(&cal, "2026-11-27 17:00");
        let mon = local(&cal, "2026-11-30 10:00");
        assert_eq!(cal.between(fri, mon), Duration::hours(2));
        assert_eq!(cal.between(mon, fri), -Duration::hours(2));
    }

    #[test]
    fn around_the_clock_is_wall_time() {
        let cal = Calendar::always();
        let t = Utc.with_ymd_and_hms(2026, 11, 28, 23, 58, 0).unwrap();
        assert_eq!(cal.add(t, Duration::minutes(10)), t + Duration::minutes(10));
        assert_eq!(cal.between(t, t + Duration::days(3)), Duration::days(3));
    }

    #[test]
    fn schedules_are_validated() {
        assert!(parse_time_zone("Mars/Olympus").is_err());
        assert_eq!(parse_hhmm("24:00"), Some(1440));
        assert_eq!(parse_hhmm("9:00"), None);
        assert!(Calendar::from_stored("UTC", &json!({"mon": [["18:00", "09:00"]]}), []).is_err());
        assert!(Calendar::from_stored("UTC", &json!({}), []).is_err());
        assert!(
            Calendar::from_stored(
                "UTC",
                &json!({"mon": [["09:00", "13:00"], ["12:00", "18:00"]]}),
                []
            )
            .is_err()
        );
        let cal = office("UTC", &[]);
        let back = Calendar::from_stored("UTC", &cal.schedule_json(), []).unwrap();
        assert_eq!(back.week, cal.week);
    }
}
