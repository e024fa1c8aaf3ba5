//! Deals in canonical form, with categorical values interned per column.
//!
//! Interning keeps a deal small (well under 1 KB even with many columns) and turns every segment
//! lookup on the scoring path into an array index instead of a string hash.

use std::collections::HashMap;

use chrono::NaiveDate;

use crate::domain::{Amount, DealId, Outcome};
use crate::mapping::normalize_key;

/// Index of a value in a [`Vocab`]; [`MISSING`] marks a blank cell.
pub type Sym = u32;
pub const MISSING: Sym = Sym::MAX;

/// The distinct values of one categorical column, in order of first appearance. Values that
/// differ only in case, spacing or punctuation are the same value (the first spelling is
/// shown), unless the vocabulary is [`Vocab::exact`]: owners are people, and `rep_11` and
/// `rep_1_1`, or `j.smith@…` and `jsmith@…`, are two of them.
#[derive(Debug, Clone, Default)]
pub struct Vocab {
    values: Vec<String>,
    index: HashMap<String, Sym>,
    /// Raw spellings seen, so a repeated value is found without normalising it again.
    raw: HashMap<String, Sym>,
    /// Values are kept as written (trimmed), never merged.
    exact: bool,
}

impl Vocab {
    /// A vocabulary that keeps every value as written (trimmed): the deal owner's.
    pub fn exact() -> Self {
        Vocab { exact: true, ..Vocab::default() }
    }

    /// The vocabulary a column of `kind` keeps its values in.
    pub fn for_kind(kind: CatKind) -> Self {
        if kind == CatKind::Owner { Vocab::exact() } else { Vocab::default() }
    }

    pub fn is_exact(&self) -> bool {
        self.exact
    }

    fn key(&self, value: &str) -> String {
        if self.exact {
            return value.to_owned();
        }
        let key = normalize_key(value);
        if key.is_empty() { value.to_owned() } else { key }
    }

    pub fn intern(&mut self, value: &str) -> Sym {
        let value = value.trim();
        if value.is_empty() {
            return MISSING;
        }
        if let Some(&sym) = self.raw.get(value) {
            return sym;
        }
        let key = self.key(value);
        let sym = match self.index.get(&key) {
            Some(&sym) => sym,
            None => {
                let sym = self.values.len() as Sym;
                self.values.push(value.to_owned());
                self.index.insert(key, sym);
                sym
            }
        };
        self.raw.insert(value.to_owned(), sym);
        sym
    }

    /// The value `value` names: in an exact vocabulary the value as written, else (or when
    /// none is written so) the one value it matches without case, spacing or punctuation.
    pub fn lookup(&self, value: &str) -> Option<Sym> {
        if let Some(&sym) = self.index.get(&self.key(value.trim())) {
            return Some(sym);
        }
        if !self.exact {
            return None;
        }
        let wanted = normalize_key(value);
        let mut matching = self.values.iter().enumerate().filter(|(_, v)| normalize_key(v) == wanted);
        match (matching.next(), matching.next()) {
            (Some((sym, _)), None) => Some(sym as Sym),
            _ => None,
        }
    }

    /// Groups of values kept apart that differ only in case, spacing or punctuation (an exact
    /// vocabulary's near-collisions: two people, or one person spelt two ways in the CRM).
    pub fn near_collisions(&self) -> Vec<Vec<&str>> {
        let mut groups: std::collections::BTreeMap<String, Vec<&str>> = std::collections::BTreeMap::new();
        for value in &self.values {
            groups.entry(normalize_key(value)).or_default().push(value);
        }
        groups.into_values().filter(|g| g.len() > 1).collect()
    }

    pub fn name(&self, sym: Sym) -> Option<&str> {
        self.values.get(sym as usize).map(String::as_str)
    }

    pub fn len(&self) -> usize {
        self.values.len()
    }

    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    pub fn values(&self) -> &[String] {
        &self.values
    }
}

/// What a categorical column is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CatKind {
    /// A segment dimension: a feature, and a unit of insight (industry, region, …).
    Segment,
    /// The deal owner (sales rep).
    Owner,
    /// An extra categorical feature declared by the mapping.
    Extra,
}

#[derive(Debug, Clone)]
pub struct CatColumn {
    pub name: String,
    pub kind: CatKind,
    pub vocab: Vocab,
}

#[derive(Debug, Clone, Default)]
pub struct Schema {
    /// Segments in mapping order (the first is primary), then the owner, then extra categoricals.
    pub categorical: Vec<CatColumn>,
    pub numeric: Vec<String>,
    /// Open pipeline stages in order.
    pub stages: Vocab,
    pub has_created: bool,
    pub has_closed: bool,
    pub has_amount: bool,
    /// True when the export carries the date each stage was entered.
    pub has_stage_history: bool,
}

impl Schema {
    pub fn has_dates(&self) -> bool {
        self.has_created && self.has_closed
    }

    pub fn owner_column(&self) -> Option<usize> {
        self.categorical.iter().position(|c| c.kind == CatKind::Owner)
    }

    /// The primary segment: the first segment dimension, if any.
    pub fn primary_segment(&self) -> Option<usize> {
        self.categorical.iter().position(|c| c.kind == CatKind::Segment)
    }

    pub fn segment_columns(&self) -> impl Iterator<Item = usize> + '_ {
        self.categorical.iter().enumerate().filter(|(_, c)| c.kind == CatKind::Segment).map(|(i, _)| i)
    }

    pub fn column(&self, name: &str) -> Option<usize> {
        self.categorical.iter().position(|c| c.name == name)
    }
}

/// One deal in canonical form.
#[derive(Debug, Clone)]
pub struct Deal {
    pub id: DealId,
    /// Account or deal name; empty when the export has none.
    pub name: String,
    pub created: Option<NaiveDate>,
    /// Actual close date of a won or lost deal; for an open deal, the expected close date if any.
    pub closed: Option<NaiveDate>,
    /// Current stage (for closed deals, the last stage reached).
    pub stage: Sym,
    /// Date each stage in `Schema::stages` was entered, when the export has them.
    pub stage_entered: Box<[Option<NaiveDate>]>,
    pub amount: Option<Amount>,
    pub outcome: Outcome,
    /// One value per `Schema::categorical` column.
    pub cats: Box<[Sym]>,
    /// One value per `Schema::numeric` column; NaN when blank.
    pub nums: Box<[f64]>,
    /// 1-based data row in the source (the header is row 0).
    pub row: u32,
}

impl Deal {
    /// Days from creation to close, when both are known.
    pub fn cycle_days(&self) -> Option<i64> {
        Some((self.closed? - self.created?).num_days())
    }

    /// The stage the deal was in on `date`, from its stage history.
    pub fn stage_on(&self, date: NaiveDate) -> Option<(usize, NaiveDate)> {
        self.stage_entered
            .iter()
            .enumerate()
            .filter_map(|(i, d)| d.filter(|d| *d <= date).map(|d| (i, d)))
            .max_by_key(|&(i, d)| (d, i))
    }
}

#[derive(Debug, Clone, Default)]
pub struct Dataset {
    pub schema: Schema,
    pub deals: Vec<Deal>,
}

impl Dataset {
    pub fn cat_name(&self, column: usize, sym: Sym) -> Option<&str> {
        self.schema.categorical.get(column)?.vocab.name(sym)
    }

    pub fn find(&self, id: &str) -> Option<&Deal> {
        self.deals.iter().find(|d| d.id.as_str() == id.trim())
    }

    /// The newest date anywhere in the data: a hint for a sensible as-of date.
    pub fn latest_date(&self) -> Option<NaiveDate> {
        self.deals.iter().flat_map(|d| [d.created, if d.outcome.is_closed() { d.closed } else { None }]).flatten().max()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owners_are_kept_as_written_and_near_collisions_are_named() {
        let mut v = Vocab::for_kind(CatKind::Owner);
        let (a, b) = (v.intern("rep_11"), v.intern("rep_1_1"));
        assert_ne!(a, b, "two people");
        assert_ne!(v.intern("j.smith@acme.com"), v.intern("jsmith@acme.com"));
        assert_eq!(v.intern(" rep_11 "), a, "surrounding spaces are not part of a name");
        assert_eq!(v.lookup("rep_1_1"), Some(b));
        assert_eq!(v.lookup("REP_1_1"), None, "ambiguous without its exact spelling");
        let dana = v.intern("Dana Lee");
        assert_eq!(v.lookup("dana lee"), Some(dana), "one match without case and spacing");
        assert_eq!(v.near_collisions(), vec![vec!["j.smith@acme.com", "jsmith@acme.com"], vec!["rep_11", "rep_1_1"]]);
        assert!(Vocab::for_kind(CatKind::Segment).near_collisions().is_empty());
    }

    #[test]
    fn vocab_merges_spellings_and_keeps_the_first() {
        let mut v = Vocab::default();
        let a = v.intern("GTX Pro");
        assert_eq!(v.intern("GTXPro"), a);
        assert_eq!(v.intern(" gtx-pro "), a);
        assert_eq!(v.intern(""), MISSING);
        assert_ne!(v.intern("GTX Basic"), a);
        assert_eq!(v.name(a), Some("GTX Pro"));
        assert_eq!(v.lookup("gtx pro"), Some(a));
        assert_eq!(v.len(), 2);
    }

    #[test]
    fn stage_on_a_date_uses_only_stages_entered_by_then() {
        let d = |s| NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap();
        let deal = Deal {
            id: DealId::parse("D1").unwrap(),
            name: String::new(),
            created: Some(d("2024-01-01")),
            closed: None,
            stage: 2,
            stage_entered: vec![Some(d("2024-01-01")), Some(d("2024-02-01")), Some(d("2024-03-01"))].into(),
            amount: None,
            outcome: Outcome::Open,
            cats: Box::new([]),
            nums: Box::new([]),
            row: 1,
        };
        assert_eq!(deal.stage_on(d("2023-12-31")), None);
        assert_eq!(deal.stage_on(d("2024-02-15")), Some((1, d("2024-02-01"))));
        assert_eq!(deal.stage_on(d("2024-06-01")), Some((2, d("2024-03-01"))));
    }
}
