//! Numbers and dates as exports write them.

use chrono::NaiveDate;

/// Parses a number as exports write them: `1234`, `1,234.50`, `$ 1,234`, `€1.234,50` (with
/// `decimal = ','`), `(1,234)` for negatives, `12%`, `USD 900`.
pub fn parse_number(raw: &str, decimal: char) -> Result<f64, &'static str> {
    let mut s = raw.trim();
    // Most cells are plain numbers; with a decimal comma "1,5" must not parse as it stands.
    if (decimal == '.' || !s.contains(','))
        && let Ok(v) = s.parse::<f64>()
        && v.is_finite()
    {
        return Ok(v);
    }
    let mut negative = false;
    if let Some(inner) = s.strip_prefix('(').and_then(|x| x.strip_suffix(')')) {
        negative = true;
        s = inner.trim();
    }
    for code in ["USD", "EUR", "GBP", "INR", "JPY", "CAD", "AUD"] {
        s = s.strip_prefix(code).or_else(|| s.strip_suffix(code)).unwrap_or(s).trim();
    }
    let thousands: &[char] =
        if decimal == ',' { &['.', ' ', '\u{a0}', '\u{202f}', '\''] } else { &[',', ' ', '\u{a0}', '\u{202f}', '\''] };
    let mut cleaned = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '$' | '€' | '£' | '¥' | '₹' | '%' => {}
            '-' | '−' if cleaned.is_empty() => negative = !negative,
            c if thousands.contains(&c) => {}
            c if c == decimal => cleaned.push('.'),
            c if c.is_ascii_digit() || c == 'e' || c == 'E' || c == '+' || (c == '-' && !cleaned.is_empty()) => {
                cleaned.push(c);
            }
            _ => return Err("not a number"),
        }
    }
    if cleaned.is_empty() {
        return Err("not a number");
    }
    let value: f64 = cleaned.parse().map_err(|_| "not a number")?;
    if !value.is_finite() {
        return Err("not a finite number");
    }
    Ok(if negative { -value } else { value })
}

/// Parses dates with the mapping's formats, then as an ISO date-time (`2024-01-15T10:30:00Z`,
/// `2024-01-15 10:30:00`, Salesforce's `2024-01-15T10:30:00.000+0000`), keeping the date part.
/// Formats are compiled once; plain ISO dates take a fast path.
#[derive(Debug)]
pub struct DateParser {
    formats: Vec<Vec<chrono::format::Item<'static>>>,
    iso: bool,
}

impl DateParser {
    pub fn new(formats: &[String]) -> Self {
        let compiled =
            formats.iter().filter_map(|f| chrono::format::StrftimeItems::new(f).parse_to_owned().ok()).collect();
        DateParser { formats: compiled, iso: formats.iter().any(|f| f == "%Y-%m-%d") }
    }

    pub fn parse(&self, raw: &str) -> Option<NaiveDate> {
        let s = raw.trim();
        if self.iso
            && let Some(d) = iso_date(s)
        {
            return Some(d);
        }
        for items in &self.formats {
            let mut parsed = chrono::format::Parsed::new();
            if chrono::format::parse(&mut parsed, s, items.iter()).is_ok()
                && let Ok(d) = parsed.to_naive_date()
            {
                return Some(d);
            }
        }
        let bytes = s.as_bytes();
        if s.len() > 10 && matches!(bytes[10], b'T' | b' ') {
            return iso_date(&s[..10]);
        }
        None
    }
}

/// `YYYY-MM-DD` without a format engine (the common case, ten times faster).
fn iso_date(s: &str) -> Option<NaiveDate> {
    let b = s.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<u32> {
        b[r].iter().try_fold(0u32, |acc, &c| c.is_ascii_digit().then(|| acc * 10 + u32::from(c - b'0')))
    };
    NaiveDate::from_ymd_opt(num(0..4)? as i32, num(5..7)?, num(8..10)?)
}

/// One-off parse with `formats` (see [`DateParser`]).
pub fn parse_date(raw: &str, formats: &[String]) -> Option<NaiveDate> {
    DateParser::new(formats).parse(raw)
}
