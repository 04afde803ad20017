//! Vumi's message timestamps ("2014-05-14 09:44:05.123456", UTC).

/// Milliseconds since the Unix epoch for a Vumi timestamp (a `T` separator and
/// a trailing `Z` are accepted too); `None` when it does not parse, because a
/// message without a time is better than a message refused.
pub fn parse_ms(text: &str) -> Option<i64> {
    let text = text.trim().trim_end_matches('Z');
    let (date, time) = text.split_once([' ', 'T'])?;
    let mut d = date.splitn(3, '-').map(|p| p.parse::<i64>().ok());
    let (year, month, day) = (d.next()??, d.next()??, d.next()??);
    let (hms, fraction) = time.split_once('.').unwrap_or((time, ""));
    let mut t = hms.splitn(3, ':').map(|p| p.parse::<i64>().ok());
    let (hour, minute, second) = (t.next()??, t.next()??, t.next()??);
    let valid = (1..=12).contains(&month) && (1..=31).contains(&day) && hour < 24 && minute < 60 && second < 61;
    if !valid || hour < 0 || minute < 0 || second < 0 {
        return None;
    }
    let millis = fraction_ms(fraction)?;
    let seconds = days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second;
    Some(seconds * 1000 + millis)
}

/// The first three digits of a fraction of a second, as milliseconds.
fn fraction_ms(fraction: &str) -> Option<i64> {
    if !fraction.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let digits: String = fraction.chars().chain("000".chars()).take(3).collect();
    digits.parse().ok()
}

/// Days since 1970-01-01 in the proleptic Gregorian calendar (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::parse_ms;

    #[test]
    fn parses_vumi_and_iso_forms() {
        assert_eq!(parse_ms("1970-01-01 00:00:00"), Some(0));
        assert_eq!(parse_ms("2014-05-14 09:44:05.123456"), Some(1_400_060_645_123));
        assert_eq!(parse_ms("2014-05-14T09:44:05Z"), Some(1_400_060_645_000));
        assert_eq!(parse_ms("2000-02-29 12:00:00.5"), Some(951_825_600_500));
    }

    #[test]
    fn refuses_nonsense() {
        for text in ["", "yesterday", "2014-13-01 00:00:00", "2014-05-14", "2014-05-14 25:00:00", "2014-05-14 1:2:3.x"]
        {
            assert_eq!(parse_ms(text), None, "{text:?}");
        }
    }
}
