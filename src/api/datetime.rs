//! `openrouter:datetime`: the current time in a time zone. The zones are a table of
//! the most used IANA names with their standard offset and daylight-saving rule (EU,
//! US, or none), plus `UTC` and fixed offsets (`+05:30`): `chrono-tz` would add its
//! whole database to the wasm for a tool that answers one question.
//!
//! Arithmetic here is on the clock's seconds and offsets of at most 14 hours: far from
//! any `i64` bound, so it is left unchecked.
#![allow(clippy::arithmetic_side_effects)]

use crate::limits::civil;

/// A zone's daylight-saving rule.
#[derive(Clone, Copy)]
enum Dst {
    None,
    /// Last Sunday of March 01:00 UTC to last Sunday of October 01:00 UTC, +1h.
    Eu,
    /// Second Sunday of March 02:00 local to first Sunday of November 02:00 local, +1h.
    Us,
}

/// IANA name, standard offset in minutes, rule.
const ZONES: &[(&str, i32, Dst)] = &[
    ("Etc/UTC", 0, Dst::None),
    ("Europe/London", 0, Dst::Eu),
    ("Europe/Dublin", 0, Dst::Eu),
    ("Europe/Lisbon", 0, Dst::Eu),
    ("Europe/Paris", 60, Dst::Eu),
    ("Europe/Berlin", 60, Dst::Eu),
    ("Europe/Madrid", 60, Dst::Eu),
    ("Europe/Rome", 60, Dst::Eu),
    ("Europe/Amsterdam", 60, Dst::Eu),
    ("Europe/Brussels", 60, Dst::Eu),
    ("Europe/Vienna", 60, Dst::Eu),
    ("Europe/Zurich", 60, Dst::Eu),
    ("Europe/Stockholm", 60, Dst::Eu),
    ("Europe/Oslo", 60, Dst::Eu),
    ("Europe/Copenhagen", 60, Dst::Eu),
    ("Europe/Warsaw", 60, Dst::Eu),
    ("Europe/Prague", 60, Dst::Eu),
    ("Europe/Budapest", 60, Dst::Eu),
    ("Europe/Athens", 120, Dst::Eu),
    ("Europe/Helsinki", 120, Dst::Eu),
    ("Europe/Kiev", 120, Dst::Eu),
    ("Europe/Kyiv", 120, Dst::Eu),
    ("Europe/Bucharest", 120, Dst::Eu),
    ("Europe/Istanbul", 180, Dst::None),
    ("Europe/Moscow", 180, Dst::None),
    ("America/New_York", -300, Dst::Us),
    ("America/Toronto", -300, Dst::Us),
    ("America/Chicago", -360, Dst::Us),
    ("America/Denver", -420, Dst::Us),
    ("America/Phoenix", -420, Dst::None),
    ("America/Los_Angeles", -480, Dst::Us),
    ("America/Vancouver", -480, Dst::Us),
    ("America/Anchorage", -540, Dst::Us),
    ("Pacific/Honolulu", -600, Dst::None),
    ("America/Mexico_City", -360, Dst::None),
    ("America/Bogota", -300, Dst::None),
    ("America/Lima", -300, Dst::None),
    ("America/Sao_Paulo", -180, Dst::None),
    ("America/Argentina/Buenos_Aires", -180, Dst::None),
    ("Africa/Lagos", 60, Dst::None),
    ("Africa/Cairo", 120, Dst::None),
    ("Africa/Johannesburg", 120, Dst::None),
    ("Africa/Nairobi", 180, Dst::None),
    ("Asia/Dubai", 240, Dst::None),
    ("Asia/Karachi", 300, Dst::None),
    ("Asia/Kolkata", 330, Dst::None),
    ("Asia/Calcutta", 330, Dst::None),
    ("Asia/Dhaka", 360, Dst::None),
    ("Asia/Bangkok", 420, Dst::None),
    ("Asia/Jakarta", 420, Dst::None),
    ("Asia/Shanghai", 480, Dst::None),
    ("Asia/Hong_Kong", 480, Dst::None),
    ("Asia/Singapore", 480, Dst::None),
    ("Asia/Taipei", 480, Dst::None),
    ("Asia/Manila", 480, Dst::None),
    ("Asia/Seoul", 540, Dst::None),
    ("Asia/Tokyo", 540, Dst::None),
    ("Australia/Perth", 480, Dst::None),
    ("Australia/Brisbane", 600, Dst::None),
];

/// Days from 1970-01-01 to a civil date.
fn days_of(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// 0 = Sunday.
fn weekday(days: i64) -> i64 {
    (days + 4).rem_euclid(7)
}

/// The day (from 1970) of the `n`th Sunday of a month (`n` = 0: the last).
fn sunday(y: i64, m: u32, n: i64) -> i64 {
    if n == 0 {
        let next = if m == 12 {
            days_of(y + 1, 1, 1)
        } else {
            days_of(y, m + 1, 1)
        };
        let last = next - 1;
        last - weekday(last)
    } else {
        let first = days_of(y, m, 1);
        first + (7 - weekday(first)) % 7 + 7 * (n - 1)
    }
}

fn in_dst(rule: Dst, std_min: i32, secs: i64) -> bool {
    let (y, _, _) = civil(secs.div_euclid(86_400));
    let (start, end) = match rule {
        Dst::None => return false,
        Dst::Eu => (
            sunday(y, 3, 0) * 86_400 + 3600,
            sunday(y, 10, 0) * 86_400 + 3600,
        ),
        Dst::Us => {
            let std = i64::from(std_min) * 60;
            // 02:00 local standard time, and 02:00 local daylight time (01:00 standard).
            (
                sunday(y, 3, 2) * 86_400 + 7200 - std,
                sunday(y, 11, 1) * 86_400 + 3600 - std,
            )
        }
    };
    (start..end).contains(&secs)
}

/// A fixed offset `+05:30`, `-08`, `UTC+2`: in minutes.
fn fixed(tz: &str) -> Option<i32> {
    let s = tz
        .strip_prefix("UTC")
        .or_else(|| tz.strip_prefix("GMT"))
        .unwrap_or(tz);
    if s.is_empty() {
        return Some(0);
    }
    let (sign, rest) = match s.strip_prefix('+') {
        Some(r) => (1, r),
        None => (-1, s.strip_prefix('-')?),
    };
    let (h, m) = rest.split_once(':').unwrap_or((rest, "0"));
    let (h, m): (i32, i32) = (h.parse().ok()?, m.parse().ok()?);
    (h <= 14 && m < 60 && !rest.is_empty()).then_some(sign * (h * 60 + m))
}

/// The offset from UTC in minutes of the zone `tz` at `secs` since the epoch, if the
/// zone is known.
pub fn offset_minutes(tz: &str, secs: i64) -> Option<i32> {
    if let Some(&(_, std, rule)) = ZONES.iter().find(|(n, _, _)| *n == tz) {
        return Some(if in_dst(rule, std, secs) {
            std + 60
        } else {
            std
        });
    }
    if tz.contains('/') {
        return None;
    }
    fixed(tz)
}

/// The tool's answer: the time at `secs` in `tz` (UTC when `None`), as the model reads
/// it: ISO 8601 with the offset, the weekday and the zone.
pub fn render(tz: Option<&str>, secs: i64) -> Option<String> {
    const DAYS: [&str; 7] = [
        "Sunday",
        "Monday",
        "Tuesday",
        "Wednesday",
        "Thursday",
        "Friday",
        "Saturday",
    ];
    let name = tz.unwrap_or("UTC");
    let off = offset_minutes(name, secs)?;
    let local = secs + i64::from(off) * 60;
    let days = local.div_euclid(86_400);
    let t = local.rem_euclid(86_400);
    let (y, m, d) = civil(days);
    let sign = if off < 0 { '-' } else { '+' };
    let a = off.unsigned_abs();
    let day = DAYS.get(weekday(days) as usize).copied().unwrap_or("");
    Some(format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}{sign}{:02}:{:02} ({day}, {name})",
        t / 3600,
        t % 3600 / 60,
        t % 60,
        a / 60,
        a % 60
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_round_trip_and_weekdays() {
        assert_eq!(civil(0), (1970, 1, 1));
        assert_eq!(days_of(2024, 2, 29), 19_782);
        assert_eq!(civil(19_782), (2024, 2, 29));
        assert_eq!(weekday(0), 4); // a Thursday
        assert_eq!(civil(sunday(2026, 3, 0)), (2026, 3, 29));
        assert_eq!(civil(sunday(2026, 3, 2)), (2026, 3, 8));
        assert_eq!(civil(sunday(2026, 11, 1)), (2026, 11, 1));
    }

    #[test]
    fn zones_follow_their_daylight_saving_rules() {
        // 2026-07-01T12:00:00Z and 2026-12-07T01:00:00Z
        let (summer, winter) = (1_782_907_200, 1_796_605_200);
        assert_eq!(offset_minutes("Europe/Paris", summer), Some(120));
        assert_eq!(offset_minutes("Europe/Paris", winter), Some(60));
        assert_eq!(offset_minutes("America/New_York", summer), Some(-240));
        assert_eq!(offset_minutes("America/New_York", winter), Some(-300));
        assert_eq!(offset_minutes("Asia/Kolkata", summer), Some(330));
        assert_eq!(offset_minutes("+05:30", 0), Some(330));
        assert_eq!(offset_minutes("UTC-8", 0), Some(-480));
        assert_eq!(offset_minutes("UTC", 0), Some(0));
        assert_eq!(offset_minutes("Mars/Olympus", 0), None);
        assert_eq!(offset_minutes("+99", 0), None);
        // The EU switch happens at 01:00 UTC exactly.
        let switch = sunday(2026, 3, 0) * 86_400 + 3600;
        assert_eq!(offset_minutes("Europe/London", switch - 1), Some(0));
        assert_eq!(offset_minutes("Europe/London", switch), Some(60));
    }

    #[test]
    fn the_answer_names_the_day_and_the_zone() {
        assert_eq!(
            render(Some("Europe/Paris"), 1_796_605_200).as_deref(),
            Some("2026-12-07T02:00:00+01:00 (Monday, Europe/Paris)")
        );
        assert_eq!(
            render(None, 0).as_deref(),
            Some("1970-01-01T00:00:00+00:00 (Thursday, UTC)")
        );
        assert_eq!(
            render(Some("America/Los_Angeles"), 1_796_605_200).as_deref(),
            Some("2026-12-06T17:00:00-08:00 (Sunday, America/Los_Angeles)")
        );
    }
}
