//! Periods in a question, relative to the as-of date: "this quarter", "last qtr", "Q1 2024",
//! "in 2023", "March 2024", "last 30 days", "next quarter"; and the quarters answers compare.

use std::sync::LazyLock;

use chrono::{Datelike, Duration, Months, NaiveDate};
use regex::Regex;

use super::Period;
use super::words::{find_phrase, mask};

static QUARTER: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\b(?:q(?P<q>[1-4])|(?P<ord>first|second|third|fourth|1st|2nd|3rd|4th)\s+quarter)(?:\s+(?:of\s+)?(?:fy\s?)?(?P<y>(?:19|20)\d{2}))?\b")
        .expect("quarter pattern")
});

static LAST_N: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"\b(?:last|past|previous|trailing)\s+(?P<n>\d{1,3})\s+(?P<unit>days?|weeks?|months?|quarters?|years?)\b",
    )
    .expect("last-n pattern")
});

static MONTH: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\b(?P<m>january|february|march|april|may|june|july|august|september|october|november|december|jan|feb|mar|apr|jun|jul|aug|sep|sept|oct|nov|dec)(?:\s+(?P<y>(?:19|20)\d{2}))?\b")
        .expect("month pattern")
});

static YEAR: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\b(?:in|during|for|of|fy|year)\s+(?P<y>(?:19|20)\d{2})\b|\b(?P<z>(?:19|20)\d{2})\b")
        .expect("year pattern")
});

fn quarter_of(date: NaiveDate) -> (i32, u32) {
    (date.year(), (date.month() - 1) / 3 + 1)
}

fn quarter_period(year: i32, q: u32) -> Period {
    let from = NaiveDate::from_ymd_opt(year, 3 * (q - 1) + 1, 1).expect("quarter start");
    let next =
        if q == 4 { NaiveDate::from_ymd_opt(year + 1, 1, 1) } else { NaiveDate::from_ymd_opt(year, 3 * q + 1, 1) };
    Period { from, to: next.expect("next quarter") - Duration::days(1) }
}

fn month_period(year: i32, month: u32) -> Period {
    let from = NaiveDate::from_ymd_opt(year, month, 1).expect("month start");
    let next =
        if month == 12 { NaiveDate::from_ymd_opt(year + 1, 1, 1) } else { NaiveDate::from_ymd_opt(year, month + 1, 1) };
    Period { from, to: next.expect("next month") - Duration::days(1) }
}

/// The calendar quarter `date` is in.
pub fn quarter_containing(date: NaiveDate) -> Period {
    let (y, q) = quarter_of(date);
    quarter_period(y, q)
}

/// The `count` calendar quarters up to and including the one `as_of` is in, oldest first, each
/// with its label ("2024 Q1").
pub fn quarters_before(as_of: NaiveDate, count: i32) -> Vec<(String, Period)> {
    let (y, q) = quarter_of(as_of);
    (0..count)
        .rev()
        .map(|back| {
            let (y, q) = shift_quarter(y, q, -back);
            (format!("{y} Q{q}"), quarter_period(y, q))
        })
        .collect()
}

/// The calendar quarters that overlap `from`..=`to`, oldest first (at least one).
pub fn quarters_within(from: NaiveDate, to: NaiveDate) -> Vec<(String, Period)> {
    let (mut y, mut q) = quarter_of(from);
    let mut out = Vec::new();
    loop {
        let p = quarter_period(y, q);
        out.push((format!("{y} Q{q}"), Period { from: p.from.max(from), to: p.to.min(to.max(from)) }));
        if p.to >= to || out.len() >= 40 {
            return out;
        }
        (y, q) = shift_quarter(y, q, 1);
    }
}

fn year_period(year: i32) -> Period {
    Period {
        from: NaiveDate::from_ymd_opt(year, 1, 1).expect("year start"),
        to: NaiveDate::from_ymd_opt(year, 12, 31).expect("year end"),
    }
}

fn shift_quarter(year: i32, q: u32, by: i32) -> (i32, u32) {
    let index = year * 4 + q as i32 - 1 + by;
    (index.div_euclid(4), index.rem_euclid(4) as u32 + 1)
}

fn month_number(name: &str) -> Option<u32> {
    const NAMES: [&str; 12] = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"];
    NAMES.iter().position(|m| name.starts_with(m)).map(|i| i as u32 + 1)
}

/// `as_of` less `months` calendar months (the month's last day where the day does not exist).
fn months_before(as_of: NaiveDate, months: u32) -> NaiveDate {
    as_of.checked_sub_months(Months::new(months)).unwrap_or(as_of)
}

/// Reads the period, if any, and masks it; `true` with it when it is a look-back window. Calendar words mean calendar ranges ("last quarter" is the previous calendar
/// quarter, "this year" the whole current year); "past year", "last 12 months" and "last N
/// days" are trailing windows ending on the as-of date.
pub(super) fn read_period(text: &mut String, as_of: NaiveDate) -> Option<(Period, bool)> {
    let (year, q) = quarter_of(as_of);
    let shifted = |by: i32| {
        let (y, q) = shift_quarter(year, q, by);
        quarter_period(y, q)
    };
    let trailing_year = Period { from: months_before(as_of, 12), to: as_of };
    let first_of_month = NaiveDate::from_ymd_opt(as_of.year(), as_of.month(), 1).expect("month");
    let previous_month = first_of_month - Duration::days(1);
    let next_month = first_of_month.checked_add_months(Months::new(1)).expect("next month");
    let monday = as_of - Duration::days(i64::from(as_of.weekday().num_days_from_monday()));
    let phrases: [(&[&str], Period); 12] = [
        (
            &["so far this quarter", "this quarter", "current quarter", "this qtr", "qtd", "quarter to date", "this q"],
            quarter_period(year, q),
        ),
        (&["last quarter", "last qtr", "previous quarter", "prior quarter", "past quarter", "last q"], shifted(-1)),
        (&["next quarter", "next qtr", "coming quarter", "following quarter", "next q"], shifted(1)),
        (
            &[
                "over the last year",
                "over the past year",
                "in the last year",
                "in the past year",
                "past year",
                "last 12 months",
                "past 12 months",
                "trailing 12 months",
                "ttm",
            ],
            trailing_year,
        ),
        (&["so far this year", "this year", "current year", "this yr", "ytd", "year to date"], year_period(year)),
        (&["last year", "previous year", "prior year", "last yr"], year_period(year - 1)),
        (&["next year"], year_period(year + 1)),
        (&["this month", "current month", "mtd", "month to date"], month_period(as_of.year(), as_of.month())),
        (&["last month", "previous month", "past month"], month_period(previous_month.year(), previous_month.month())),
        (&["next month", "coming month"], month_period(next_month.year(), next_month.month())),
        (&["this week", "current week"], Period { from: monday, to: monday + Duration::days(6) }),
        (&["last week", "past week", "previous week"], Period { from: as_of - Duration::days(7), to: as_of }),
    ];
    for (words, period) in &phrases {
        for w in *words {
            if let Some(at) = find_phrase(text, w) {
                mask(text, at..at + w.len(), "<period>");
                let trailing = period.to == as_of && (words.contains(&"past year") || words.contains(&"past week"));
                return Some((*period, trailing));
            }
        }
    }
    if let Some(c) = LAST_N.captures(text) {
        let n: u32 = c["n"].parse().ok()?;
        let from = match c["unit"].trim_end_matches('s') {
            "day" => as_of - Duration::days(i64::from(n)),
            "week" => as_of - Duration::days(7 * i64::from(n)),
            "month" => months_before(as_of, n),
            "quarter" => months_before(as_of, 3 * n),
            _ => months_before(as_of, 12 * n),
        };
        let range = c.get(0).expect("match").range();
        mask(text, range, "<period>");
        return Some((Period { from, to: as_of }, true));
    }
    if let Some(c) = QUARTER.captures(text) {
        let q: u32 = match (c.name("q"), c.name("ord")) {
            (Some(q), _) => q.as_str().parse().ok()?,
            (_, Some(o)) => match o.as_str() {
                "first" | "1st" => 1,
                "second" | "2nd" => 2,
                "third" | "3rd" => 3,
                _ => 4,
            },
            _ => return None,
        };
        // A quarter without a year: the latest one that has started by the as-of date.
        let y = match c.name("y") {
            Some(y) => y.as_str().parse().ok()?,
            None if q <= quarter_of(as_of).1 => as_of.year(),
            None => as_of.year() - 1,
        };
        let range = c.get(0).expect("match").range();
        mask(text, range, "<period>");
        return Some((quarter_period(y, q), false));
    }
    if let Some(c) = MONTH.captures(text) {
        let name = c["m"].to_owned();
        // "may" and "mar" are also words: only with a year or after "in", "for", "during".
        let before = text[..c.get(0).expect("match").start()].trim_end();
        let after_preposition =
            ["in", "for", "during", "since", "of"].iter().any(|p| before.ends_with(&format!(" {p}")));
        if !matches!(name.as_str(), "may" | "mar") || c.name("y").is_some() || after_preposition {
            let m = month_number(&name)?;
            let y = match c.name("y") {
                Some(y) => y.as_str().parse().ok()?,
                None if m <= as_of.month() => as_of.year(),
                None => as_of.year() - 1,
            };
            let range = c.get(0).expect("match").range();
            mask(text, range, "<period>");
            return Some((month_period(y, m), false));
        }
    }
    if let Some(c) = YEAR.captures(text) {
        let y: i32 = c.name("y").or(c.name("z"))?.as_str().parse().ok()?;
        let range = c.get(0).expect("match").range();
        mask(text, range, "<period>");
        return Some((year_period(y), false));
    }
    None
}
