//! The slots of a question, read deterministically: money ("$50k", "50,000", "over 75k"),
//! periods relative to the as-of date ("this quarter", "last qtr", "Q1 2024", "in 2023",
//! "March 2024", "last 30 days", "next quarter"), counts ("top 5"), risk categories, outcomes,
//! dimensions ("by region"), metrics, and the tenant's own names (industries, regions, products,
//! lead sources, reps, deal ids and account names) with aliases ("N. America", "NA", "fin tech",
//! "rep 15") and typos.
//!
//! Each slot found is replaced in [`Slots::masked`] by a placeholder (`<industry>`, `<money>`,
//! `<period>`, …), so the intent is judged on the question's shape, not on this tenant's names.

use std::sync::LazyLock;

use chrono::{Datelike, Duration, Months, NaiveDate};
use regex::Regex;

use super::{Metric, OutcomeFilter, Period, SlotValues, Vocabulary, name_key};
use crate::domain::RiskCategory;

/// What the parser read.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Slots {
    pub values: SlotValues,
    /// The words that named a deal by its account or name ("acme"), as the question wrote them.
    pub deal_named: Option<String>,
    /// Other deals the name could be (an account with several deals), likeliest first.
    pub deal_candidates: Vec<String>,
    /// Names that look like a rep or a deal id but match nothing of the tenant's (`rep_99`,
    /// `D99999`).
    pub unknown: Vec<String>,
    /// Whether the period is a look-back window ending on the as-of date ("past year", "last
    /// 90 days") rather than a calendar one ("this quarter", "Q1 2024", "in 2023").
    pub trailing_period: bool,
    /// The question with every slot replaced by its placeholder, lower case.
    pub masked: String,
}

/// Lower case, with punctuation that carries no meaning turned into spaces (keeping `$`, `%`,
/// `_`, and `.`/`,` inside numbers).
pub fn normalise(text: &str) -> String {
    let lower = POSSESSIVE.replace_all(&text.to_lowercase().replace('\u{2019}', "'"), "$1").replace('\'', "");
    let lower = lower.replace("# of", "number of").replace("#of", "number of");
    let chars: Vec<char> = lower.chars().collect();
    let mut out = String::with_capacity(lower.len());
    for (i, &c) in chars.iter().enumerate() {
        let digit_around = |j: Option<usize>| j.and_then(|j| chars.get(j)).is_some_and(char::is_ascii_digit);
        let keep = c.is_alphanumeric()
            || matches!(c, '$' | '%' | '_' | '<' | '>')
            || (matches!(c, '.' | ',') && digit_around(i.checked_sub(1)) && digit_around(Some(i + 1)));
        out.push(if keep { c } else { ' ' });
    }
    out.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Squeezed for comparison: letters and digits only.
fn squeeze(s: &str) -> String {
    s.chars().filter(|c| c.is_alphanumeric()).flat_map(char::to_lowercase).collect()
}

static MONEY: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?x)
        (?:(?P<op>over|above|more\ than|greater\ than|at\ least|bigger\ than|larger\ than|>|>=|under|below|less\ than|smaller\ than|at\ most|<|<=|between|from)\s+)?
        (?P<cur>\$|usd\s?)?(?P<num>\d{1,3}(?:,\d{3})+|\d+(?:\.\d+)?)\s?(?P<unit>k|m|mm|thousand|million|bn|b)?\b
        (?:\s*(?:and|to|-)\s*\$?(?P<num2>\d{1,3}(?:,\d{3})+|\d+(?:\.\d+)?)\s?(?P<unit2>k|m|mm|thousand|million)?\b)?",
    )
    .expect("money pattern")
});

/// "D01450's", "rep_7's": the possessive goes, the name stays.
static POSSESSIVE: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"(\d)'s\b").expect("possessive pattern"));

static TOP: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?x)\b(?:top|first|biggest|largest|riskiest|worst|best|strongest|weakest|highest|lowest|show(?:\ me)?|list|give\ me(?:\ the)?)\s+(?P<n>\d{1,3})\b
        |\b(?P<m>\d{1,3})\s+(?:biggest|largest|riskiest|worst|best|top|most|strongest|weakest|highest|lowest|largest)\b",
    )
    .expect("count pattern")
});

/// Shorthand people type in chat, spelt out before anything is read.
const SHORTHAND: [(&str, &str); 30] = [
    ("fcst", "forecast"),
    ("frcst", "forecast"),
    ("forcast", "forecast"),
    ("abt", "about"),
    ("r", "are"),
    ("u", "you"),
    ("ur", "your"),
    ("pls", "please"),
    ("plz", "please"),
    ("thx", "thanks"),
    ("halp", "help"),
    ("crit", "critical"),
    ("med", "medium"),
    ("avg", "average"),
    ("yr", "year"),
    ("yrs", "years"),
    ("mo", "month"),
    ("mos", "months"),
    ("pipe", "pipeline"),
    ("opp", "deal"),
    ("opps", "deals"),
    ("opportunity", "deal"),
    ("opportunities", "deals"),
    ("rev", "revenue"),
    ("perf", "performance"),
    ("vs", "versus"),
    ("v", "versus"),
    ("trnd", "trend"),
    ("cmp", "compare"),
    ("w", "with"),
];

/// The words questions are built from, for correcting typos ("quater", "pipline", "reigon").
const LEXICON: [&str; 58] = [
    "quarter",
    "quarters",
    "pipeline",
    "forecast",
    "forecasted",
    "critical",
    "medium",
    "region",
    "regions",
    "industry",
    "industries",
    "source",
    "sources",
    "product",
    "products",
    "compare",
    "comparison",
    "trend",
    "trending",
    "average",
    "cycle",
    "revenue",
    "expected",
    "expect",
    "summary",
    "summarize",
    "performance",
    "performing",
    "risky",
    "riskiest",
    "deals",
    "closing",
    "closed",
    "month",
    "months",
    "bookings",
    "winning",
    "rate",
    "rates",
    "sellers",
    "improving",
    "declining",
    "growing",
    "shrinking",
    "changed",
    "history",
    "highest",
    "lowest",
    "strongest",
    "weakest",
    "biggest",
    "largest",
    "healthy",
    "trouble",
    "worried",
    "velocity",
    "length",
    "leaderboard",
];

/// Spells out shorthand and corrects words one or two edits away from the lexicon, leaving
/// alone anything that is one of the tenant's names (an account may be called "Pineline").
fn correct(text: &str, vocab: &Vocabulary) -> String {
    let words: Vec<String> = text
        .split(' ')
        .map(|w| {
            if let Some((_, long)) = SHORTHAND.iter().find(|(short, _)| *short == w) {
                return (*long).to_owned();
            }
            let chars = w.chars().count();
            let tenants = vocab.names.contains_key(w)
                || vocab.reps.iter().any(|r| normalise(r) == w)
                || vocab.dimensions.iter().any(|(_, values)| values.iter().any(|v| squeeze(v) == w));
            if chars < 5 || LEXICON.contains(&w) || tenants || !w.chars().all(char::is_alphabetic) {
                return w.to_owned();
            }
            let allowed = if chars >= 8 { 2 } else { 1 };
            let close = LEXICON
                .iter()
                .filter(|l| l.chars().next() == w.chars().next())
                // "close" is not a misspelt "closed": inflections are words.
                .filter(|l| !l.starts_with(w) && !w.starts_with(*l))
                .map(|l| (strsim::damerau_levenshtein(w, l), *l))
                .filter(|(d, _)| *d <= allowed)
                .min();
            close.map_or_else(|| w.to_owned(), |(_, l)| l.to_owned())
        })
        .collect();
    words.join(" ")
}

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

static REP: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\brep(?:_|\s?#?\s?)(?P<n>\d{1,4})s?\b").expect("rep pattern"));

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

/// Replaces `range` of `text` by `placeholder`, padded with spaces.
fn mask(text: &mut String, range: std::ops::Range<usize>, placeholder: &str) {
    text.replace_range(range, &format!(" {placeholder} "));
}

/// `as_of` less `months` calendar months (the month's last day where the day does not exist).
fn months_before(as_of: NaiveDate, months: u32) -> NaiveDate {
    as_of.checked_sub_months(Months::new(months)).unwrap_or(as_of)
}

/// Reads the period, if any, and masks it; `true` with it when it is a look-back window. Calendar words mean calendar ranges ("last quarter" is the previous calendar
/// quarter, "this year" the whole current year); "past year", "last 12 months" and "last N
/// days" are trailing windows ending on the as-of date.
fn read_period(text: &mut String, as_of: NaiveDate) -> Option<(Period, bool)> {
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

/// Where `phrase` occurs in `text` as whole words.
pub(crate) fn find_phrase(text: &str, phrase: &str) -> Option<usize> {
    let mut from = 0;
    while let Some(i) = text[from..].find(phrase) {
        let at = from + i;
        let end = at + phrase.len();
        let word = |c: char| c.is_alphanumeric() || matches!(c, '<' | '>' | '_');
        let before = text[..at].chars().next_back().is_none_or(|c| !word(c));
        let after = text[end..].chars().next().is_none_or(|c| !word(c));
        if before && after {
            return Some(at);
        }
        from = at + phrase.len();
    }
    None
}

fn money_value(num: &str, unit: Option<&str>) -> Option<f64> {
    let n: f64 = num.replace(',', "").parse().ok()?;
    let scale = match unit {
        Some("k" | "thousand") => 1e3,
        Some("m" | "mm" | "million") => 1e6,
        Some("b" | "bn") => 1e9,
        _ => 1.0,
    };
    Some(n * scale)
}

/// Reads amounts ("over $50k", "between 10k and 50k", "under 100,000") and masks them. A bare
/// number counts as money only with a currency sign, a unit, or a comparison word.
fn read_money(text: &mut String, slots: &mut SlotValues) {
    /// Where an amount was written, its comparison word, and its one or two figures.
    type Found = (std::ops::Range<usize>, Option<String>, f64, Option<f64>);
    let found: Vec<Found> = MONEY
        .captures_iter(text)
        .filter_map(|c| {
            let op = c.name("op").map(|m| m.as_str().to_owned());
            let has_unit = c.name("cur").is_some() || c.name("unit").is_some();
            let plain = c["num"].replace(',', "");
            // Years, quarters' numbers and "top 5" are not money.
            let year_like = plain.len() == 4 && (plain.starts_with("19") || plain.starts_with("20"));
            if !has_unit && (op.is_none() || year_like) && !c["num"].contains(',') {
                return None;
            }
            if !has_unit && plain.parse::<f64>().ok()? < 100.0 {
                return None;
            }
            let first = money_value(&c["num"], c.name("unit").map(|u| u.as_str()))?;
            let second = c.name("num2").and_then(|n| {
                let unit = c.name("unit2").or(c.name("unit")).map(|u| u.as_str());
                money_value(n.as_str(), unit)
            });
            Some((c.get(0).expect("match").range(), op, first, second))
        })
        .collect();
    for (range, op, first, second) in found.into_iter().rev() {
        match (op.as_deref(), second) {
            (Some("between" | "from"), Some(second)) | (None, Some(second)) => {
                slots.amount_min = Some(first.min(second));
                slots.amount_max = Some(first.max(second));
            }
            (Some("under" | "below" | "less than" | "smaller than" | "at most" | "<" | "<="), _) => {
                slots.amount_max = Some(first);
            }
            _ => slots.amount_min = Some(first),
        }
        mask(text, range, "<money>");
    }
}

/// The ways a value of the tenant's may be written: itself, squeezed ("fintech" for "Fin
/// Tech"), its initials for several words ("na" for "North America", "n america"), and a few
/// common synonyms.
/// Typos are matched against the value's own spellings only (`true`), never against its
/// synonyms: "healthy" is not a misspelt "health".
fn aliases(value: &str) -> Vec<(String, bool)> {
    let n = normalise(value);
    let mut out = vec![n.clone()];
    let words: Vec<&str> = n.split(' ').collect();
    if words.len() > 1 {
        out.push(words.concat());
        out.push(words.iter().filter_map(|w| w.chars().next()).collect());
        let mut abbreviated: Vec<String> = vec![words[0].chars().take(1).collect()];
        abbreviated.extend(words[1..].iter().map(|w| (*w).to_owned()));
        out.push(abbreviated.join(" "));
    }
    let mut out: Vec<(String, bool)> = out.into_iter().map(|a| (a, true)).collect();
    let squeezed = squeeze(value);
    const SYNONYMS: [(&str, &[&str]); 14] = [
        ("northamerica", &["na", "north american", "usa", "americas", "n america", "noram", "nam"]),
        ("europe", &["eu", "emea", "european"]),
        ("apac", &["asia", "asia pacific", "asiapac", "asia pac"]),
        ("latam", &["latin america", "south america"]),
        ("ecommerce", &["e commerce", "ecom", "ecomm", "e comm", "online retail", "retail"]),
        ("manufacturing", &["mfg", "manuf", "industrial"]),
        ("saas", &["software"]),
        ("healthtech", &["health tech", "healthcare", "medtech"]),
        ("fintech", &["fin tech", "finance", "financial"]),
        ("edtech", &["ed tech", "education"]),
        ("referral", &["referrals", "referred"]),
        ("outbound", &["outbound prospecting", "cold outreach"]),
        ("inbound", &["inbound leads"]),
        ("partner", &["partners", "partner sourced"]),
    ];
    for (key, synonyms) in SYNONYMS {
        if squeezed == key {
            out.extend(synonyms.iter().map(|s| ((*s).to_owned(), false)));
        }
    }
    out.sort();
    out.dedup_by(|a, b| a.0 == b.0);
    out.retain(|a| !a.0.is_empty());
    out
}

/// A word-sequence of the question close to one of the tenant's values: the value, where it
/// starts and ends in `text`, and how close (1 exact).
struct Hit {
    dimension: String,
    value: String,
    start: usize,
    end: usize,
    closeness: f64,
}

/// Word spans of `text` (byte ranges), up to `max` words long, longest first.
fn spans(text: &str, max: usize) -> Vec<(usize, usize)> {
    let words: Vec<(usize, usize)> = text
        .split(' ')
        .scan(0usize, |at, w| {
            let start = *at;
            *at += w.len() + 1;
            Some((start, start + w.len()))
        })
        .filter(|(s, e)| e > s)
        .collect();
    let mut out = Vec::new();
    for len in (1..=max).rev() {
        for window in words.windows(len) {
            out.push((window[0].0, window[len - 1].1));
        }
    }
    out
}

/// Words that must never be read as one of the tenant's names.
const STOP: [&str; 52] = [
    "the", "our", "what", "whats", "which", "who", "how", "why", "is", "are", "in", "for", "of", "by", "to", "and",
    "deal", "deals", "rate", "win", "won", "lost", "risk", "risky", "show", "me", "list", "top", "best", "worst",
    "this", "last", "next", "quarter", "year", "month", "pipeline", "doing", "with", "at", "open", "closed", "all",
    "many", "much", "help", "over", "under", "more", "less", "from", "team",
];

/// Whether `word` is too common to be one of the tenant's names.
pub fn is_stop_word(word: &str) -> bool {
    STOP.contains(&word)
}

fn find_values(text: &str, vocab: &Vocabulary) -> Vec<Hit> {
    /// A dimension, one of its values, and the ways it may be written.
    type Candidate = (String, String, Vec<(String, bool)>);
    let mut candidates: Vec<Candidate> = Vec::new();
    for (dimension, values) in &vocab.dimensions {
        for value in values {
            candidates.push((dimension.clone(), value.clone(), aliases(value)));
        }
    }
    let mut hits = Vec::new();
    for (start, end) in spans(text, 3) {
        let span = &text[start..end];
        if span.contains('<') || STOP.contains(&span) {
            continue;
        }
        let squeezed = squeeze(span);
        if squeezed.len() < 2 {
            continue;
        }
        for (dimension, value, names) in &candidates {
            let mut best: f64 = 0.0;
            for (name, own) in names {
                let plural_of = squeezed.strip_suffix('s').is_some_and(|singular| singular == squeeze(name));
                if span == name || squeezed == squeeze(name) || plural_of {
                    best = 1.0;
                    break;
                }
                // Typos: only for words long enough to tell apart, more of them in longer words.
                if *own && squeezed.len() >= 5 && name.len() >= 5 {
                    let similarity = strsim::normalized_damerau_levenshtein(&squeezed, &squeeze(name));
                    let needed = if squeezed.len() >= 7 { 0.74 } else { 0.8 };
                    if similarity >= needed {
                        best = best.max(similarity);
                    }
                }
            }
            if best > 0.0 {
                hits.push(Hit { dimension: dimension.clone(), value: value.clone(), start, end, closeness: best });
            }
        }
    }
    // Longest and closest first; spans may not overlap.
    hits.sort_by(|a, b| b.closeness.total_cmp(&a.closeness).then((b.end - b.start).cmp(&(a.end - a.start))));
    let mut taken: Vec<Hit> = Vec::new();
    for hit in hits {
        let overlaps = taken.iter().any(|t| hit.start < t.end && t.start < hit.end);
        let same_value = taken.iter().any(|t| t.dimension == hit.dimension && t.value == hit.value);
        if !overlaps && !same_value {
            taken.push(hit);
        }
    }
    // In the order they occur, so the caller can replace them from the end.
    taken.sort_by_key(|h| h.start);
    taken
}

/// Dimension words: "by region", "which industry", "lead source".
const DIMENSION_WORDS: [(&str, &[&str]); 5] = [
    ("industry", &["industry", "industries", "vertical", "verticals", "sector", "sectors"]),
    ("region", &["region", "regions", "geo", "geography", "territory", "territories", "market", "markets"]),
    ("product", &["product", "products", "plan", "plans", "tier", "tiers", "sku"]),
    ("lead_source", &["lead source", "lead sources", "source", "sources", "channel", "channels", "lead type"]),
    ("rep", &["rep", "reps", "salesperson", "sales rep", "sales reps", "seller", "sellers", "owner", "owners"]),
];

/// Reads every slot of `question` as of `as_of`.
pub fn read(question: &str, vocab: &Vocabulary, as_of: NaiveDate) -> Slots {
    // Periods are computed around the date: a date far outside the supported range would
    // overflow chrono's arithmetic.
    let as_of = crate::domain::clamp_date(as_of);
    let mut slots = Slots::default();
    let mut text = correct(&normalise(question), vocab);

    read_deal_id(&mut text, vocab, &mut slots);
    read_rep(&mut text, vocab, &mut slots);
    if let Some((period, trailing)) = read_period(&mut text, as_of) {
        slots.values.period = Some(period);
        slots.trailing_period = trailing;
    }
    read_money(&mut text, &mut slots.values);
    if let Some(c) = TOP.captures(&text.clone()) {
        let count = c.name("n").or(c.name("m")).expect("one of the two counts");
        if let Ok(n) = count.as_str().parse() {
            slots.values.limit = Some(n);
            mask(&mut text, count.range(), "<n>");
        }
    }
    read_risk_category(&mut text, &mut slots.values);
    if slots.values.deal.is_none() {
        read_account(&mut text, vocab, &mut slots);
    }

    // The tenant's values (industries, regions, products, lead sources). Two values of one
    // dimension ("fintech vs healthtech", "inbound or outbound") compare that dimension.
    let hits = find_values(&text.clone(), vocab);
    for hit in hits.iter().rev() {
        let several = hits.iter().filter(|h| h.dimension == hit.dimension).count() > 1;
        if several {
            slots.values.dimension = Some(hit.dimension.clone());
            text.replace_range(hit.start..hit.end, "<dimension>");
        } else {
            slots.values.filters.insert(hit.dimension.clone(), hit.value.clone());
            text.replace_range(hit.start..hit.end, &format!("<{}>", hit.dimension));
        }
    }
    text = text.split_whitespace().collect::<Vec<_>>().join(" ");
    read_dimension(&mut text, &mut slots.values);
    slots.values.metric = read_metric(&text);
    slots.values.outcome = read_outcome(&text);
    slots.masked = text.split_whitespace().collect::<Vec<_>>().join(" ");
    slots
}

/// A deal id: one of the tenant's in any case, or a word shaped like one (a letter or two,
/// then three digits or more), kept as written upper-cased and listed as unknown.
fn read_deal_id(text: &mut String, vocab: &Vocabulary, slots: &mut Slots) {
    let words: Vec<String> = text.split(' ').map(str::to_owned).collect();
    for w in &words {
        let known = vocab.deal_ids.get(w.as_str());
        let letters = w.chars().take_while(char::is_ascii_alphabetic).count();
        let digits = w.chars().skip(letters).take_while(|c| c.is_ascii_digit() || *c == '-').count();
        let id_shaped = (1..=3).contains(&letters) && digits >= 3 && letters + digits == w.len();
        if known.is_none() && !id_shaped {
            continue;
        }
        let id = match known {
            Some(id) => id.clone(),
            None => {
                slots.unknown.push(w.to_uppercase());
                w.to_uppercase()
            }
        };
        slots.values.deal = Some(id);
        if let Some(at) = find_phrase(text, w) {
            mask(text, at..at + w.len(), "<deal>");
        }
        return;
    }
}

/// A rep: "rep_15", "rep 15", "rep15", or an owner's name as the data spells it.
fn read_rep(text: &mut String, vocab: &Vocabulary, slots: &mut Slots) {
    if let Some(c) = REP.captures(&text.clone()) {
        let wanted = format!("rep_{}", &c["n"]);
        match vocab.reps.iter().find(|r| squeeze(r) == squeeze(&wanted)) {
            Some(rep) => {
                slots.values.filters.insert("rep".into(), rep.clone());
            }
            None => {
                slots.unknown.push(wanted.clone());
                slots.values.filters.insert("rep".into(), wanted);
            }
        }
        mask(text, c.get(0).expect("match").range(), "<rep>");
        return;
    }
    for rep in &vocab.reps {
        let name = normalise(rep);
        if name.len() >= 3
            && let Some(at) = find_phrase(text, &name)
        {
            slots.values.filters.insert("rep".into(), rep.clone());
            mask(text, at..at + name.len(), "<rep>");
            return;
        }
    }
}

fn read_risk_category(text: &mut String, values: &mut SlotValues) {
    const CATEGORIES: [(&str, RiskCategory); 12] = [
        ("critical risk", RiskCategory::Critical),
        ("critically", RiskCategory::Critical),
        ("critical", RiskCategory::Critical),
        ("high risk", RiskCategory::High),
        ("highrisk", RiskCategory::High),
        ("high", RiskCategory::High),
        ("medium risk", RiskCategory::Medium),
        ("moderate risk", RiskCategory::Medium),
        ("low risk", RiskCategory::Low),
        ("lowrisk", RiskCategory::Low),
        ("medium", RiskCategory::Medium),
        ("low", RiskCategory::Low),
    ];
    for (word, category) in CATEGORIES {
        if let Some(at) = find_phrase(text, word) {
            // "high" alone is a category only next to risk words ("high and critical deals").
            if matches!(word, "high" | "medium" | "low") && !text.contains("risk") && !text.contains("critical") {
                continue;
            }
            values.risk_category = Some(category);
            mask(text, at..at + word.len(), "<category> risk");
            return;
        }
    }
}

/// An account or deal name: the longest run of the question's words that is a deal's name or
/// its leading words, open deals first. Read before the segment values, so "Harborline Energy
/// Partners" is an account and not the Partner lead source; but one word that is also a segment
/// value ("enterprise") is the value.
fn read_account(text: &mut String, vocab: &Vocabulary, slots: &mut Slots) {
    let values: Vec<String> = vocab
        .dimensions
        .iter()
        .flat_map(|(_, values)| values.iter())
        .flat_map(|v| aliases(v).into_iter().map(|(a, _)| squeeze(&a)))
        .collect();
    for (start, end) in spans(text, vocab.longest_name.min(4)) {
        let span = &text[start..end];
        if span.contains('<') || span.split(' ').all(is_stop_word) {
            continue;
        }
        if !span.contains(' ') && values.contains(&squeeze(span)) {
            continue;
        }
        if let Some(ids) = vocab.names.get(&name_key(span)) {
            slots.deal_named = Some(span.to_owned());
            slots.values.deal = ids.first().cloned();
            slots.deal_candidates = ids.iter().skip(1).cloned().collect();
            mask(text, start..end, "<deal>");
            return;
        }
    }
}

/// Dimension words: "by region", "which industry", "lead source". A rep already named is a
/// filter, not the dimension.
fn read_dimension(text: &mut String, values: &mut SlotValues) {
    if values.dimension.is_some() {
        return;
    }
    // The dimension that follows "by", "per", "which"… is the one compared ("win rate by rep
    // for the Enterprise product"); any other is a fallback.
    let marked = DIMENSION_WORDS.iter().find_map(|(dimension, words)| {
        words.iter().find_map(|w| {
            ["by", "per", "across", "which", "each", "every", "between"]
                .iter()
                .find_map(|m| find_phrase(text, &format!("{m} {w}")).map(|at| (*dimension, at + m.len() + 1, w.len())))
        })
    });
    if let Some((dimension, at, len)) = marked
        && !(dimension == "rep" && values.filters.contains_key("rep"))
    {
        values.dimension = Some(dimension.to_owned());
        mask(text, at..at + len, if dimension == "rep" { "<reps>" } else { "<dimension>" });
        return;
    }
    for (dimension, words) in DIMENSION_WORDS {
        if dimension == "rep" && values.filters.contains_key("rep") {
            continue;
        }
        for w in words {
            if let Some(at) = find_phrase(text, w) {
                values.dimension = Some(dimension.to_owned());
                // Reps compared are usually a question about rep performance: their own mark.
                mask(text, at..at + w.len(), if dimension == "rep" { "<reps>" } else { "<dimension>" });
                return;
            }
        }
    }
}

fn read_metric(text: &str) -> Option<Metric> {
    let any = |words: &[&str]| words.iter().any(|w| find_phrase(text, w).is_some());
    if any(&[
        "win rate",
        "win rates",
        "winrate",
        "conversion",
        "converts",
        "convert",
        "close rate",
        "win %",
        "win pct",
        "wr",
        "win ratio",
    ]) {
        Some(Metric::WinRate)
    } else if any(&[
        "cycle",
        "cycle time",
        "how long",
        "days to close",
        "time to close",
        "velocity",
        "sales cycle",
        "longer",
        "shorter",
        "slower",
        "faster",
        "take to close",
        "takes to close",
        "time it takes",
    ]) {
        Some(Metric::CycleTime)
    } else if any(&[
        "deal size",
        "deal sizes",
        "average deal",
        "avg deal",
        "acv",
        "ticket size",
        "bigger",
        "smaller",
        "size",
        "sizes",
        "biggest deals",
    ]) {
        Some(Metric::DealSize)
    } else if any(&["pipeline value", "pipeline", "pipe"]) {
        Some(Metric::Pipeline)
    } else if any(&[
        "how many",
        "number of",
        "count",
        "volume",
        "deal count",
        "more deals",
        "fewer deals",
        "deal volume",
    ]) {
        Some(Metric::DealCount)
    } else {
        None
    }
}

fn read_outcome(text: &str) -> Option<OutcomeFilter> {
    let any = |words: &[&str]| words.iter().any(|w| find_phrase(text, w).is_some());
    if any(&["won", "win", "wins", "closed won", "winning"]) {
        Some(OutcomeFilter::Won)
    } else if any(&["lost", "lose", "losses", "closed lost", "losing"]) {
        Some(OutcomeFilter::Lost)
    } else if any(&["open", "in flight", "active", "in progress", "in the pipeline", "in pipeline"]) {
        Some(OutcomeFilter::Open)
    } else if any(&["closed"]) {
        Some(OutcomeFilter::Closed)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn date(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    fn vocab() -> Vocabulary {
        let mut v = Vocabulary {
            dimensions: vec![
                ("industry".into(), vec!["FinTech".into(), "HealthTech".into(), "Ecommerce".into()]),
                ("region".into(), vec!["North America".into(), "Europe".into(), "APAC".into()]),
                ("lead_source".into(), vec!["Partner".into(), "Referral".into()]),
            ],
            reps: vec!["rep_15".into()],
            ..Vocabulary::default()
        };
        v.deal_ids.insert("d000042".into(), "D000042".into());
        v.names.insert("pineline".into(), vec!["D000042".into()]);
        v.names.insert("harborline energy partners".into(), vec!["D000007".into()]);
        v.longest_name = 3;
        v
    }

    fn period(q: &str, as_of: &str) -> Option<(String, String)> {
        read(q, &vocab(), date(as_of)).values.period.map(|p| (p.from.to_string(), p.to.to_string()))
    }

    fn pair(a: &str, b: &str) -> Option<(String, String)> {
        Some((a.into(), b.into()))
    }

    #[test]
    fn periods_are_calendar_ranges_or_look_back_windows_from_the_as_of_date() {
        assert_eq!(period("win rate this quarter", "2024-02-15"), pair("2024-01-01", "2024-03-31"));
        assert_eq!(period("last qtr", "2024-01-10"), pair("2023-10-01", "2023-12-31"));
        assert_eq!(period("next quarter", "2024-11-30"), pair("2025-01-01", "2025-03-31"));
        assert_eq!(period("deals in Q3", "2024-05-01"), pair("2023-07-01", "2023-09-30"));
        assert_eq!(period("march 2024", "2025-01-01"), pair("2024-03-01", "2024-03-31"));
        assert_eq!(period("in 2023", "2025-01-01"), pair("2023-01-01", "2023-12-31"));
        assert_eq!(period("last year", "2024-03-31"), pair("2023-01-01", "2023-12-31"));
        assert_eq!(period("last 30 days", "2024-03-31"), pair("2024-03-01", "2024-03-31"));
        // Six months back from the 31st of August is the 29th of February in a leap year.
        assert_eq!(period("last 6 months", "2024-08-31"), pair("2024-02-29", "2024-08-31"));
        assert_eq!(period("next month", "2024-12-15"), pair("2025-01-01", "2025-01-31"));
        assert!(read("over the past year", &vocab(), date("2024-03-31")).trailing_period);
        assert!(!read("this year", &vocab(), date("2024-03-31")).trailing_period);
        // "may" is a verb unless it is plainly the month.
        assert_eq!(period("which deals may slip", "2024-06-30"), None);
        assert_eq!(period("won in may", "2024-06-30"), pair("2024-05-01", "2024-05-31"));
    }

    #[test]
    fn money_counts_and_categories_are_read_and_years_are_not_money() {
        let s = read("top 5 critical deals over $50k in 2024", &vocab(), date("2024-06-30"));
        assert_eq!((s.values.limit, s.values.amount_min, s.values.amount_max), (Some(5), Some(50_000.0), None));
        assert_eq!(s.values.risk_category, Some(RiskCategory::Critical));
        let s = read("deals between 10k and 1.5M", &vocab(), date("2024-06-30"));
        assert_eq!((s.values.amount_min, s.values.amount_max), (Some(10_000.0), Some(1_500_000.0)));
        let s = read("under 100,000", &vocab(), date("2024-06-30"));
        assert_eq!(s.values.amount_max, Some(100_000.0));
        let s = read("list medum risk deals", &vocab(), date("2024-06-30"));
        assert_eq!(s.values.risk_category, Some(RiskCategory::Medium), "a typo of a category word");
    }

    #[test]
    fn the_tenants_names_are_found_with_aliases_and_typos_but_not_in_other_words() {
        let s = read("helthtech win rate in N. America for rep 15", &vocab(), date("2024-06-30"));
        assert_eq!(s.values.filters.get("industry").map(String::as_str), Some("HealthTech"));
        assert_eq!(s.values.filters.get("region").map(String::as_str), Some("North America"));
        assert_eq!(s.values.filters.get("rep").map(String::as_str), Some("rep_15"));
        // "healthy" is a word, not a misspelt HealthTech; "show us" is not the USA.
        let s = read("show us if the europe pipeline is healthy", &vocab(), date("2024-06-30"));
        assert_eq!(s.values.filters.len(), 1, "{:?}", s.values.filters);
        // Two values of one dimension compare it.
        let s = read("fintech vs healthtech", &vocab(), date("2024-06-30"));
        assert_eq!((s.values.dimension.as_deref(), s.values.filters.len()), (Some("industry"), 0));
        // An account whose name holds a segment value is the account.
        let s = read("how risky is Harborline Energy Partners", &vocab(), date("2024-06-30"));
        assert_eq!((s.values.deal.as_deref(), s.values.filters.len()), (Some("D000007"), 0));
        // Typos are corrected, but never a tenant's name or an inflection.
        assert_eq!(correct("pipline for pineline", &vocab()), "pipeline for pineline");
        assert_eq!(correct("how long to close", &vocab()), "how long to close");
        assert_eq!(correct("fcst nxt quater", &vocab()), "forecast nxt quarter");
        // A deal id in any case, even one the tenant lacks, and with a possessive.
        assert_eq!(
            read("why is d000042's score high", &vocab(), date("2024-06-30")).values.deal.as_deref(),
            Some("D000042")
        );
        let s = read("risk of D99999", &vocab(), date("2024-06-30"));
        assert_eq!(
            (s.values.deal.as_deref(), s.unknown.as_slice()),
            (Some("D99999"), ["D99999".to_owned()].as_slice())
        );
    }
}
