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

use chrono::NaiveDate;
use regex::Regex;

use super::periods::read_period;
pub use super::periods::{quarter_containing, quarters_before, quarters_within};
use super::words::{find_phrase, mask};
use super::{Metric, OutcomeFilter, SlotValues, Vocabulary, name_key};
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

static REP: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\brep(?:_|\s?#?\s?)(?P<n>\d{1,4})s?\b").expect("rep pattern"));

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
mod tests;
