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
/// differ only in case, spacing or punctuation are the same value; the first spelling is shown.
#[derive(Debug, Clone, Default)]
pub struct Vocab {
    values: Vec<String>,
    index: HashMap<String, Sym>,
    /// Raw spellings seen, so a repeated value is found without normalising it again.
    raw: HashMap<String, Sym>,
}

impl Vocab {
    pub fn intern(&mut self, value: &str) -> Sym {
        let value = value.trim();
        if value.is_empty() {
            return MISSING;
        }
        if let Some(&sym) = self.raw.get(value) {
            return sym;
        }
        let key = normalize_key(value);
        let key = if key.is_empty() { value.to_owned() } else { key };
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

    pub fn lookup(&self, value: &str) -> Option<Sym> {
        let key = normalize_key(value);
        let key = if key.is_empty() { value.trim().to_owned() } else { key };
        self.index.get(&key).copied()
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
