//! Writing the file: the calendar of ISO dates formatted once, and numbers formatted without
//! per-cell allocation.

use std::io;

use chrono::{Days, NaiveDate};

/// ISO date strings for every day the file can mention, formatted once.
pub(super) struct Calendar {
    pub(super) text: String,
}

/// The calendar reaches this far before the history, for planted close-before-created dates.
pub(super) const CALENDAR_MARGIN: i64 = 64;
pub(super) const DATE_LEN: usize = 10;

impl Calendar {
    pub(super) fn new(start: NaiveDate, days: i64) -> io::Result<Self> {
        let first = start
            .checked_sub_days(Days::new(CALENDAR_MARGIN as u64))
            .ok_or_else(|| invalid("as_of − history_days is before the earliest supported date".into()))?;
        let count = (days + CALENDAR_MARGIN + 1) as usize;
        let mut text = String::with_capacity(count * DATE_LEN);
        for date in first.iter_days().take(count) {
            let iso = date.format("%Y-%m-%d").to_string();
            if iso.len() != DATE_LEN {
                return Err(invalid(format!("dates must fall within years 0000–9999, not {iso}")));
            }
            text.push_str(&iso);
        }
        Ok(Self { text })
    }

    pub(super) fn date(&self, day: i64) -> &str {
        let at = (day + CALENDAR_MARGIN) as usize * DATE_LEN;
        &self.text[at..at + DATE_LEN]
    }
}

// ---- Formatting without per-cell allocation. ----

pub(super) fn digits(mut n: u64) -> usize {
    let mut d = 1;
    while n >= 10 {
        n /= 10;
        d += 1;
    }
    d
}

pub(super) fn push_uint(s: &mut String, mut n: u64) {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    s.extend(buf[i..].iter().map(|&b| char::from(b)));
}

/// `prefix` then `n`, zero-padded to `width` digits.
pub(super) fn push_padded(s: &mut String, prefix: &str, n: u64, width: usize) {
    s.push_str(prefix);
    s.extend(std::iter::repeat_n('0', width.saturating_sub(digits(n))));
    push_uint(s, n);
}

/// `n` with comma thousands separators: 45000 → `45,000`.
pub(super) fn push_thousands(s: &mut String, n: u64) {
    let start = s.len();
    push_uint(s, n);
    let len = s.len() - start;
    for sep in (1..len).rev().filter(|i| (len - i).is_multiple_of(3)) {
        s.insert(start + sep, ',');
    }
}

pub(super) fn invalid(message: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, message)
}
