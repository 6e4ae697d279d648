//! Go's `k8s.io/apimachinery/pkg/util/duration.HumanDuration`: the AGE column.
//!
//! kubectl prints ages verbatim from the server's Table, so the exact spelling matters:
//! `45s`, `2m5s`, `17m`, `3h12m`, `30h`, `3d4h`, `120d`, `3y20d`, `9y`. The output keeps about two
//! significant figures, with the smaller unit dropped once the larger one is big enough.

use std::time::Duration;

use jiff::{SignedDuration, Timestamp};

const MINUTE: i64 = 60;
const HOUR: i64 = 60 * MINUTE;
const DAY_HOURS: i64 = 24;
const YEAR_DAYS: i64 = 365;

/// Formats a non-negative duration the way Go's `duration.HumanDuration` does.
///
/// Sub-second parts are truncated, like Go's integer conversion. For the negative cases (a
/// creation time in the future) use [`human_signed_duration`] or [`human_age`].
pub fn human_duration(d: Duration) -> String {
    // Durations beyond i64 seconds are far past the year bucket; clamp instead of panicking.
    let secs = i64::try_from(d.as_secs()).unwrap_or(i64::MAX);
    format_seconds(secs)
}

/// Formats a signed duration the way Go's `duration.HumanDuration` does.
///
/// Go tolerates clock skew of under two seconds: a duration of -1.999 s still prints `0s`
/// (Go truncates toward zero, giving -1), while -2 s and below print `<invalid>`.
pub fn human_signed_duration(d: SignedDuration) -> String {
    // `as_secs` truncates toward zero, as Go's `int(d.Seconds())` does.
    let secs = d.as_secs();
    if secs < -1 {
        "<invalid>".to_string()
    } else if secs < 0 {
        "0s".to_string()
    } else {
        format_seconds(secs)
    }
}

/// The age of an object created at `created` (RFC 3339, as in `metadata.creationTimestamp`),
/// seen at `now`, as kubectl's AGE column shows it.
///
/// An empty or unparsable timestamp gives `<unknown>`, which is what the Go printers show for
/// a zero `metav1.Time`.
#[doc(alias = "translateTimestampSince")]
pub fn human_age(created: &str, now: Timestamp) -> String {
    match created.parse::<Timestamp>() {
        Ok(created) => human_signed_duration(now.duration_since(created)),
        Err(_) => "<unknown>".to_string(),
    }
}

/// The buckets of `HumanDuration` for `secs >= 0`.
fn format_seconds(secs: i64) -> String {
    if secs < 2 * MINUTE {
        return format!("{secs}s");
    }
    let minutes = secs / MINUTE;
    if minutes < 10 {
        return with_remainder(minutes, "m", secs % MINUTE, "s");
    }
    if minutes < 3 * 60 {
        return format!("{minutes}m");
    }
    let hours = secs / HOUR;
    if hours < 8 {
        return with_remainder(hours, "h", minutes % 60, "m");
    }
    if hours < 48 {
        return format!("{hours}h");
    }
    let days = hours / DAY_HOURS;
    if hours < DAY_HOURS * 8 {
        return with_remainder(days, "d", hours % DAY_HOURS, "h");
    }
    if hours < DAY_HOURS * YEAR_DAYS * 2 {
        return format!("{days}d");
    }
    let years = days / YEAR_DAYS;
    if hours < DAY_HOURS * YEAR_DAYS * 8 {
        return with_remainder(years, "y", days % YEAR_DAYS, "d");
    }
    format!("{years}y")
}

/// `"<big><unit>"`, followed by `"<small><unit>"` unless the smaller part is zero.
fn with_remainder(big: i64, big_unit: &str, small: i64, small_unit: &str) -> String {
    if small == 0 {
        format!("{big}{big_unit}")
    } else {
        format!("{big}{big_unit}{small}{small_unit}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(s: u64) -> String {
        human_duration(Duration::from_secs(s))
    }

    fn signed_millis(ms: i64) -> String {
        human_signed_duration(SignedDuration::from_millis(ms))
    }

    const M: u64 = 60;
    const H: u64 = 60 * M;
    const D: u64 = 24 * H;
    const Y: u64 = 365 * D;

    #[test]
    fn under_two_minutes_prints_whole_seconds() {
        assert_eq!(secs(0), "0s");
        assert_eq!(secs(1), "1s");
        assert_eq!(secs(59), "59s");
        assert_eq!(secs(60), "60s");
        assert_eq!(secs(119), "119s");
    }

    #[test]
    fn sub_second_parts_are_truncated_not_rounded() {
        assert_eq!(human_duration(Duration::from_millis(1999)), "1s");
        assert_eq!(human_duration(Duration::from_millis(119_999)), "119s");
    }

    #[test]
    fn two_to_ten_minutes_prints_minutes_and_seconds() {
        assert_eq!(secs(2 * M), "2m");
        assert_eq!(secs(2 * M + 1), "2m1s");
        assert_eq!(secs(5 * M + 30), "5m30s");
        assert_eq!(secs(10 * M - 1), "9m59s");
    }

    #[test]
    fn ten_minutes_to_three_hours_prints_minutes_only() {
        assert_eq!(secs(10 * M), "10m");
        assert_eq!(secs(10 * M + 59), "10m");
        assert_eq!(secs(3 * H - 1), "179m");
    }

    #[test]
    fn three_to_eight_hours_prints_hours_and_minutes() {
        assert_eq!(secs(3 * H), "3h");
        assert_eq!(secs(3 * H + 59), "3h");
        assert_eq!(secs(3 * H + 60), "3h1m");
        assert_eq!(secs(8 * H - 1), "7h59m");
    }

    #[test]
    fn eight_to_forty_eight_hours_prints_hours_only() {
        assert_eq!(secs(8 * H), "8h");
        assert_eq!(secs(8 * H + 30 * M), "8h");
        assert_eq!(secs(48 * H - 1), "47h");
    }

    #[test]
    fn two_to_eight_days_prints_days_and_hours() {
        assert_eq!(secs(2 * D), "2d");
        assert_eq!(secs(2 * D + H), "2d1h");
        assert_eq!(secs(2 * D + H - 1), "2d");
        assert_eq!(secs(8 * D - 1), "7d23h");
    }

    #[test]
    fn eight_days_to_two_years_prints_days_only() {
        assert_eq!(secs(8 * D), "8d");
        assert_eq!(secs(8 * D + 23 * H), "8d");
        assert_eq!(secs(2 * Y - 1), "729d");
    }

    #[test]
    fn two_to_eight_years_prints_years_and_days() {
        assert_eq!(secs(2 * Y), "2y");
        assert_eq!(secs(2 * Y + D), "2y1d");
        assert_eq!(secs(8 * Y - 1), "7y364d");
    }

    #[test]
    fn eight_years_and_more_prints_years_only() {
        assert_eq!(secs(8 * Y), "8y");
        assert_eq!(secs(8 * Y + 200 * D), "8y");
        assert_eq!(secs(100 * Y), "100y");
    }

    #[test]
    fn small_negative_durations_print_zero_seconds() {
        assert_eq!(signed_millis(-1), "0s");
        assert_eq!(signed_millis(-999), "0s");
        assert_eq!(signed_millis(-1000), "0s");
        assert_eq!(signed_millis(-1999), "0s");
    }

    #[test]
    fn negative_two_seconds_and_beyond_prints_invalid() {
        assert_eq!(signed_millis(-2000), "<invalid>");
        assert_eq!(signed_millis(-2001), "<invalid>");
        assert_eq!(signed_millis(-86_400_000), "<invalid>");
    }

    #[test]
    fn signed_and_unsigned_agree_on_positive_durations() {
        for s in [
            0,
            1,
            119,
            120,
            599,
            600,
            10_799,
            10_800,
            28_800,
            172_800,
            691_200,
            63_072_000,
            252_288_000,
        ] {
            assert_eq!(
                human_signed_duration(SignedDuration::from_secs(s as i64)),
                secs(s),
                "{s}s"
            );
        }
    }

    fn at(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn age_of_an_object_is_now_minus_creation() {
        let now = at("2024-05-01T12:00:00Z");
        assert_eq!(human_age("2024-05-01T11:59:54Z", now), "6s");
        assert_eq!(human_age("2024-05-01T11:55:00Z", now), "5m");
        assert_eq!(human_age("2024-04-28T10:00:00Z", now), "3d2h");
    }

    #[test]
    fn age_counts_fractions_of_now_toward_zero() {
        assert_eq!(human_age("2024-05-01T12:00:00Z", at("2024-05-01T12:00:01.999Z")), "1s");
    }

    #[test]
    fn creation_up_to_one_second_in_the_future_is_zero_seconds_old() {
        let now = at("2024-05-01T12:00:00Z");
        assert_eq!(human_age("2024-05-01T12:00:01Z", now), "0s");
        assert_eq!(human_age("2024-05-01T12:00:01Z", at("2024-05-01T11:59:59.001Z")), "0s");
    }

    #[test]
    fn creation_two_or_more_seconds_in_the_future_is_invalid() {
        let now = at("2024-05-01T12:00:00Z");
        assert_eq!(human_age("2024-05-01T12:00:02Z", now), "<invalid>");
        assert_eq!(human_age("2025-05-01T12:00:00Z", now), "<invalid>");
    }

    #[test]
    fn missing_or_garbled_creation_time_is_unknown() {
        let now = at("2024-05-01T12:00:00Z");
        assert_eq!(human_age("", now), "<unknown>");
        assert_eq!(human_age("yesterday", now), "<unknown>");
    }

    #[test]
    fn creation_time_with_offset_or_micros_is_understood() {
        let now = at("2024-05-01T12:00:00Z");
        assert_eq!(human_age("2024-05-01T13:59:30+02:00", now), "30s");
        assert_eq!(human_age("2024-05-01T11:59:30.123456Z", now), "29s");
    }
}
