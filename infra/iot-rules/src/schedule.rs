//! EventBridge schedule expressions, as `Schedule` and `ScheduleV2` events of a function use them:
//! `rate(N unit)`, the six-field `cron(...)` and (Scheduler only) `at(...)`, with the next time
//! each one fires after an instant, in UTC. Also [`rfc3339`], the `time` of a scheduled event.
//!
//! Cron fields: minutes (0–59), hours (0–23), day of month (1–31), month (1–12 or `JAN`–`DEC`),
//! day of week (1–7 or `SUN`–`SAT`, 1 = Sunday), year (1970–2199); each `*`, a value, a range
//! `a-b`, a step `*/n`, `a/n` or `a-b/n`, or a comma-separated list of those; day of month or
//! day of week (exactly one of them) is `?`. `L`, `W` and `#` are refused.

use std::collections::BTreeSet;
use std::time::Duration;

const MINUTE_MS: u64 = 60_000;
const DAY_MS: u64 = 86_400_000;

/// A parsed schedule expression.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ScheduleExpr {
    /// `rate(N unit)`: every `N` minutes, hours or days from when the schedule starts.
    Rate(Duration),
    /// `cron(...)`, in UTC.
    Cron(Cron),
    /// `at(yyyy-mm-ddThh:mm:ss)`: once (EventBridge Scheduler), milliseconds since the epoch, UTC.
    At(u64),
}

/// The six fields of a cron expression, as the sets of values each allows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cron {
    minutes: BTreeSet<u32>,
    hours: BTreeSet<u32>,
    /// `None` for `?`.
    days_of_month: Option<BTreeSet<u32>>,
    months: BTreeSet<u32>,
    /// `None` for `?`; 1 = Sunday.
    days_of_week: Option<BTreeSet<u32>>,
    years: BTreeSet<u32>,
}

const MONTHS: [&str; 12] = [
    "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC",
];
const DAYS: [&str; 7] = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];

impl ScheduleExpr {
    /// Parses `rate(...)`, `cron(...)` or `at(...)`.
    ///
    /// # Errors
    /// The expression is malformed or uses what the local stack does not emulate; the message
    /// says which.
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        let inner = |prefix: &str| {
            text.strip_prefix(prefix)
                .and_then(|rest| rest.strip_suffix(')'))
                .map(str::trim)
        };
        if let Some(rate) = inner("rate(") {
            return parse_rate(rate).map(ScheduleExpr::Rate);
        }
        if let Some(cron) = inner("cron(") {
            return Cron::parse(cron).map(ScheduleExpr::Cron);
        }
        if let Some(at) = inner("at(") {
            return parse_at(at).map(ScheduleExpr::At);
        }
        Err(format!(
            "schedule expression `{text}` is neither rate(...), cron(...) nor at(...)"
        ))
    }

    /// The first time this schedule fires strictly after `after_ms`, for a schedule that
    /// started at `start_ms` (a rate counts from there); `None` if it never fires again.
    #[must_use]
    pub fn next_after(&self, after_ms: u64, start_ms: u64) -> Option<u64> {
        match self {
            ScheduleExpr::Rate(every) => {
                let every = u64::try_from(every.as_millis()).ok()?.max(1);
                let elapsed = after_ms.saturating_sub(start_ms);
                let periods = if after_ms < start_ms {
                    0
                } else {
                    elapsed / every + 1
                };
                start_ms.checked_add(periods.checked_mul(every)?)
            }
            ScheduleExpr::Cron(cron) => cron.next_after(after_ms),
            ScheduleExpr::At(at) => (*at > after_ms).then_some(*at),
        }
    }
}

fn parse_rate(text: &str) -> Result<Duration, String> {
    let (value, unit) = text
        .split_once(' ')
        .ok_or_else(|| format!("rate({text}): expected `rate(value unit)`"))?;
    let value: u64 = value
        .trim()
        .parse()
        .ok()
        .filter(|v| *v > 0)
        .ok_or_else(|| format!("rate({text}): the value must be a positive integer"))?;
    let seconds = match (unit.trim(), value == 1) {
        ("minute", true) | ("minutes", false) => 60,
        ("hour", true) | ("hours", false) => 3_600,
        ("day", true) | ("days", false) => 86_400,
        (unit, _) => {
            return Err(format!(
                "rate({text}): unit `{unit}` (minute, hour or day for 1; minutes, hours or days \
                 otherwise)"
            ));
        }
    };
    value
        .checked_mul(seconds)
        .map(Duration::from_secs)
        .ok_or_else(|| format!("rate({text}) is too long"))
}

fn parse_at(text: &str) -> Result<u64, String> {
    let bad = || format!("at({text}): expected yyyy-mm-ddThh:mm:ss");
    let (date, time) = text.split_once('T').ok_or_else(bad)?;
    let numbers = |s: &str, n: usize| -> Result<Vec<u32>, String> {
        let parts: Vec<u32> = s
            .split(if s.contains(':') { ':' } else { '-' })
            .map(|p| p.parse().map_err(|_| bad()))
            .collect::<Result<_, _>>()?;
        if parts.len() == n {
            Ok(parts)
        } else {
            Err(bad())
        }
    };
    let d = numbers(date, 3)?;
    let t = numbers(time, 3)?;
    if !(1..=12).contains(&d[1]) || d[2] < 1 || d[2] > days_in_month(i64::from(d[0]), d[1]) {
        return Err(bad());
    }
    if t[0] > 23 || t[1] > 59 || t[2] > 59 {
        return Err(bad());
    }
    let days = days_from_civil(i64::from(d[0]), d[1], d[2]);
    let ms = u64::try_from(days).map_err(|_| bad())? * DAY_MS
        + u64::from(t[0] * 3_600 + t[1] * 60 + t[2]) * 1_000;
    Ok(ms)
}

impl Cron {
    /// Parses the six fields inside `cron(...)`.
    ///
    /// # Errors
    /// A field is malformed or out of range, both or neither day field is `?`, or it uses `L`,
    /// `W` or `#`.
    pub fn parse(text: &str) -> Result<Self, String> {
        let fields: Vec<&str> = text.split_whitespace().collect();
        let [minutes, hours, dom, month, dow, year] = fields.as_slice() else {
            return Err(format!(
                "cron({text}): expected six fields (minutes hours day-of-month month \
                 day-of-week year)"
            ));
        };
        let field = |value: &str, what: &str, range: (u32, u32), names: &[&str]| {
            parse_field(value, range, names)
                .map_err(|m| format!("cron({text}): {what} `{value}`: {m}"))
        };
        let days_of_month = (*dom != "?")
            .then(|| field(dom, "day of month", (1, 31), &[]))
            .transpose()?;
        let days_of_week = (*dow != "?")
            .then(|| field(dow, "day of week", (1, 7), &DAYS))
            .transpose()?;
        if days_of_month.is_some() == days_of_week.is_some() {
            return Err(format!(
                "cron({text}): exactly one of day of month and day of week must be `?`"
            ));
        }
        Ok(Cron {
            minutes: field(minutes, "minutes", (0, 59), &[])?,
            hours: field(hours, "hours", (0, 23), &[])?,
            days_of_month,
            months: field(month, "month", (1, 12), &MONTHS)?,
            days_of_week,
            years: field(year, "year", (1970, 2199), &[])?,
        })
    }

    /// The first minute strictly after `after_ms` that the expression matches, in ms.
    #[must_use]
    pub fn next_after(&self, after_ms: u64) -> Option<u64> {
        let start = (after_ms / MINUTE_MS + 1) * MINUTE_MS;
        let first_day = i64::try_from(start / DAY_MS).ok()?;
        let start_minute = u32::try_from((start % DAY_MS) / MINUTE_MS).ok()?;
        let last_year = *self.years.last()?;
        let mut day = first_day;
        loop {
            let (year, month, dom) = civil_from_days(day);
            if year > i64::from(last_year) {
                return None;
            }
            if self.day_matches(day, year, month, dom) {
                let from = if day == first_day { start_minute } else { 0 };
                for &hour in self.hours.range(from / 60..) {
                    let from_minute = if hour == from / 60 { from % 60 } else { 0 };
                    if let Some(&minute) = self.minutes.range(from_minute..).next() {
                        let day_ms = u64::try_from(day).ok()? * DAY_MS;
                        return Some(day_ms + u64::from(hour * 60 + minute) * MINUTE_MS);
                    }
                }
            }
            day += 1;
        }
    }

    fn day_matches(&self, day: i64, year: i64, month: u32, dom: u32) -> bool {
        let year_ok = u32::try_from(year).is_ok_and(|y| self.years.contains(&y));
        if !year_ok || !self.months.contains(&month) {
            return false;
        }
        match (&self.days_of_month, &self.days_of_week) {
            (Some(doms), _) => doms.contains(&dom),
            (None, Some(dows)) => {
                let weekday = u32::try_from((day + 4).rem_euclid(7)).unwrap_or(0) + 1;
                dows.contains(&weekday)
            }
            (None, None) => true,
        }
    }
}

fn parse_field(
    text: &str,
    (low, high): (u32, u32),
    names: &[&str],
) -> Result<BTreeSet<u32>, String> {
    let value = |s: &str| -> Result<u32, String> {
        if let Some(i) = names.iter().position(|n| n.eq_ignore_ascii_case(s)) {
            return Ok(low + u32::try_from(i).unwrap_or(0));
        }
        let n: u32 = s.parse().map_err(|_| format!("`{s}` is not a value"))?;
        if (low..=high).contains(&n) {
            Ok(n)
        } else {
            Err(format!("{n} is out of range ({low} to {high})"))
        }
    };
    let mut set = BTreeSet::new();
    for item in text.split(',') {
        if item.contains(['L', 'W', '#']) && !names.iter().any(|n| item.contains(n)) {
            return Err("L, W and # are not supported locally".to_owned());
        }
        let (range, step) = match item.split_once('/') {
            Some((range, step)) => {
                let step: u32 = step
                    .parse()
                    .ok()
                    .filter(|s| *s > 0)
                    .ok_or_else(|| format!("step `{step}` is not a positive integer"))?;
                (range, step)
            }
            None => (item, 1),
        };
        let (from, to) = match range {
            "*" => (low, high),
            _ => match range.split_once('-') {
                Some((a, b)) => (value(a)?, value(b)?),
                // `a/n` runs from a to the end of the range.
                None if step > 1 || item.contains('/') => (value(range)?, high),
                None => {
                    let v = value(range)?;
                    (v, v)
                }
            },
        };
        if from > to {
            return Err(format!("range {from}-{to} runs backwards"));
        }
        set.extend((from..=to).step_by(usize::try_from(step).unwrap_or(1)));
    }
    Ok(set)
}

fn is_leap(year: i64) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

fn days_in_month(year: i64, month: u32) -> u32 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(month);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The date of a day since 1970-01-01: (year, month 1–12, day 1–31).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = u32::try_from(doy - (153 * mp + 2) / 5 + 1).unwrap_or(1);
    let month = u32::try_from(if mp < 10 { mp + 3 } else { mp - 9 }).unwrap_or(1);
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// A UTC date and time to the second.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Utc {
    /// The year.
    pub year: i64,
    /// 1–12.
    pub month: u32,
    /// 1–31.
    pub day: u32,
    /// 0–23.
    pub hour: u64,
    /// 0–59.
    pub minute: u64,
    /// 0–59.
    pub second: u64,
}

impl Utc {
    /// `ms` since the epoch, in UTC.
    #[must_use]
    pub fn from_ms(ms: u64) -> Self {
        let seconds = ms / 1_000;
        let (year, month, day) = civil_from_days(i64::try_from(seconds / 86_400).unwrap_or(0));
        let rest = seconds % 86_400;
        Utc {
            year,
            month,
            day,
            hour: rest / 3_600,
            minute: (rest % 3_600) / 60,
            second: rest % 60,
        }
    }

    /// The month's English abbreviation (`Jan`).
    #[must_use]
    pub fn month_abbreviation(&self) -> &'static str {
        const NAMES: [&str; 12] = [
            "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
        ];
        NAMES[usize::try_from(self.month.clamp(1, 12) - 1).unwrap_or(0)]
    }
}

/// `ms` since the epoch as RFC 3339 in UTC to the second (`2015-10-08T16:53:06Z`), as
/// EventBridge writes an event's `time`.
#[must_use]
pub fn rfc3339(ms: u64) -> String {
    let t = Utc::from_ms(ms);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        t.year, t.month, t.day, t.hour, t.minute, t.second
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(date: &str) -> u64 {
        match parse_at(date) {
            Ok(ms) => ms,
            Err(e) => panic!("{e}"),
        }
    }

    fn expr(text: &str) -> ScheduleExpr {
        ScheduleExpr::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"))
    }

    #[test]
    fn dates_round_trip_and_format_as_rfc_3339() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(
            rfc3339(ms("2024-02-29T23:59:59") + 999),
            "2024-02-29T23:59:59Z"
        );
        for days in [-1, 0, 59, 365, 11_016, 19_782, 84_000] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
    }

    #[test]
    fn rates_count_from_the_start_and_need_the_right_unit() {
        let five = expr("rate(5 minutes)");
        assert_eq!(five, ScheduleExpr::Rate(Duration::from_secs(300)));
        assert_eq!(five.next_after(1_000, 1_000), Some(301_000));
        assert_eq!(five.next_after(300_999, 1_000), Some(301_000));
        assert_eq!(five.next_after(301_000, 1_000), Some(601_000));
        assert_eq!(
            expr("rate(1 day)"),
            ScheduleExpr::Rate(Duration::from_secs(86_400))
        );
        assert_eq!(
            expr("rate(2 hours)"),
            ScheduleExpr::Rate(Duration::from_secs(7_200))
        );
        for bad in [
            "rate(1 minutes)",
            "rate(2 minute)",
            "rate(0 days)",
            "rate(5 weeks)",
            "rate(5)",
        ] {
            assert!(ScheduleExpr::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn cron_fires_on_the_next_matching_minute_in_utc() {
        // Every day at 08:15.
        let daily = expr("cron(15 8 * * ? *)");
        let after = ms("2024-03-10T08:15:00");
        assert_eq!(daily.next_after(after, 0), Some(ms("2024-03-11T08:15:00")));
        assert_eq!(
            daily.next_after(ms("2024-03-10T08:14:59"), 0),
            Some(ms("2024-03-10T08:15:00"))
        );
        // Every 10 minutes on weekdays (MON-FRI), 9 to 17.
        let office = expr("cron(0/10 9-17 ? * MON-FRI *)");
        // 2024-03-09 is a Saturday.
        assert_eq!(
            office.next_after(ms("2024-03-09T12:00:00"), 0),
            Some(ms("2024-03-11T09:00:00"))
        );
        assert_eq!(
            office.next_after(ms("2024-03-11T17:50:00"), 0),
            Some(ms("2024-03-12T09:00:00"))
        );
        // The last day of February, leap year or not, by month and day lists.
        let feb = expr("cron(0 0 29 FEB ? 2023-2025)");
        assert_eq!(feb.next_after(0, 0), Some(ms("2024-02-29T00:00:00")));
        assert_eq!(feb.next_after(ms("2024-03-01T00:00:00"), 0), None);
        // Day of week 1 is Sunday.
        let sundays = expr("cron(30 6 ? * 1 *)");
        assert_eq!(
            sundays.next_after(ms("2024-03-11T00:00:00"), 0),
            Some(ms("2024-03-17T06:30:00"))
        );
    }

    #[test]
    fn malformed_or_unsupported_cron_is_refused() {
        for bad in [
            "cron(0 8 * * * *)",
            "cron(0 8 ? * ? *)",
            "cron(0 8 * *)",
            "cron(60 8 * * ? *)",
            "cron(0 8 L * ? *)",
            "cron(0 8 ? * 2#1 *)",
            "cron(0 8 15W * ? *)",
            "cron(0 8 5-1 * ? *)",
            "weekly",
        ] {
            assert!(ScheduleExpr::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn at_fires_once() {
        let once = expr("at(2030-01-02T03:04:05)");
        let at = ms("2030-01-02T03:04:05");
        assert_eq!(once.next_after(0, 0), Some(at));
        assert_eq!(once.next_after(at, 0), None);
        assert!(ScheduleExpr::parse("at(2030-02-30T00:00:00)").is_err());
    }
}
