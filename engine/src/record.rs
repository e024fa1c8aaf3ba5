//! Deals as owned, named values: how they are stored and sent over the API.
//!
//! A [`Dataset`] interns values per column for speed; a [`DealRecord`] names them
//! (`segments["industry"] = "EdTech"`) so it can live in a database row or a JSON payload.
//! [`SchemaSpec`] is the matching description of a tenant's columns. Converting a dataset to
//! records and back gives the same deals.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use crate::dataset::{CatColumn, CatKind, Dataset, Deal, MISSING, Schema, Vocab};
use crate::domain::{Amount, DealId, DealIdError, Outcome};

/// The columns a tenant's deals have, by name.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SchemaSpec {
    /// Segment dimensions in order; the first is primary.
    pub segments: Vec<String>,
    pub categorical: Vec<String>,
    pub numeric: Vec<String>,
    /// Open stages in pipeline order.
    pub stages: Vec<String>,
    pub has_owner: bool,
    pub has_created: bool,
    pub has_closed: bool,
    pub has_amount: bool,
    pub has_stage_history: bool,
}

impl SchemaSpec {
    pub fn of(schema: &Schema) -> Self {
        let names = |kind| schema.categorical.iter().filter(|c| c.kind == kind).map(|c| c.name.clone()).collect();
        SchemaSpec {
            segments: names(CatKind::Segment),
            categorical: names(CatKind::Extra),
            numeric: schema.numeric.clone(),
            stages: schema.stages.values().to_vec(),
            has_owner: schema.owner_column().is_some(),
            has_created: schema.has_created,
            has_closed: schema.has_closed,
            has_amount: schema.has_amount,
            has_stage_history: schema.has_stage_history,
        }
    }

    /// An empty schema with these columns, ready to intern values into.
    pub fn schema(&self) -> Schema {
        let column = |name: &String, kind| CatColumn { name: name.clone(), kind, vocab: Vocab::for_kind(kind) };
        let mut categorical: Vec<CatColumn> = self.segments.iter().map(|n| column(n, CatKind::Segment)).collect();
        if self.has_owner {
            categorical.push(column(&crate::features::OWNER.to_owned(), CatKind::Owner));
        }
        categorical.extend(self.categorical.iter().map(|n| column(n, CatKind::Extra)));
        let mut stages = Vocab::default();
        for stage in &self.stages {
            stages.intern(stage);
        }
        Schema {
            categorical,
            numeric: self.numeric.clone(),
            stages,
            has_created: self.has_created,
            has_closed: self.has_closed,
            has_amount: self.has_amount,
            has_stage_history: self.has_stage_history,
        }
    }
}

/// One deal with its values by name.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DealRecord {
    pub id: String,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub owner: Option<String>,
    #[serde(default)]
    pub created: Option<NaiveDate>,
    #[serde(default)]
    pub closed: Option<NaiveDate>,
    #[serde(default)]
    pub stage: Option<String>,
    #[serde(default)]
    pub amount: Option<f64>,
    pub outcome: Outcome,
    /// Segment and extra categorical values by column name (blank values absent).
    #[serde(default)]
    pub segments: BTreeMap<String, String>,
    #[serde(default)]
    pub numeric: BTreeMap<String, f64>,
    #[serde(default)]
    pub stage_entered: BTreeMap<String, NaiveDate>,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RecordError {
    #[error("deal id: {0}")]
    Id(#[from] DealIdError),
    #[error("deal {id}: amount {amount} must be a number greater than 0")]
    Amount { id: String, amount: f64 },
}

impl DealRecord {
    pub fn of(dataset: &Dataset, deal: &Deal) -> Self {
        let schema = &dataset.schema;
        let mut segments = BTreeMap::new();
        let mut owner = None;
        for (c, column) in schema.categorical.iter().enumerate() {
            let Some(value) = column.vocab.name(deal.cats[c]) else { continue };
            if column.kind == CatKind::Owner {
                owner = Some(value.to_owned());
            } else {
                segments.insert(column.name.clone(), value.to_owned());
            }
        }
        let numeric = schema
            .numeric
            .iter()
            .zip(deal.nums.iter())
            .filter(|(_, v)| v.is_finite())
            .map(|(n, v)| (n.clone(), *v))
            .collect();
        let stage_entered = deal
            .stage_entered
            .iter()
            .enumerate()
            .filter_map(|(s, d)| Some((schema.stages.name(s as u32)?.to_owned(), (*d)?)))
            .collect();
        DealRecord {
            id: deal.id.to_string(),
            name: deal.name.clone(),
            owner,
            created: deal.created,
            closed: deal.closed,
            stage: schema.stages.name(deal.stage).map(str::to_owned),
            amount: deal.amount.map(Amount::get),
            outcome: deal.outcome,
            segments,
            numeric,
            stage_entered,
        }
    }
}

impl Dataset {
    /// An empty dataset with `spec`'s columns.
    pub fn with_schema(spec: &SchemaSpec) -> Self {
        Dataset { schema: spec.schema(), deals: Vec::new() }
    }

    /// Builds a dataset from records (in their order).
    pub fn from_records<'r>(
        spec: &SchemaSpec,
        records: impl IntoIterator<Item = &'r DealRecord>,
    ) -> Result<Self, RecordError> {
        let mut dataset = Dataset::with_schema(spec);
        for record in records {
            dataset.push_record(record)?;
        }
        Ok(dataset)
    }

    /// Appends a record, interning its values (values new to a column extend its vocabulary;
    /// existing symbols keep their meaning). Returns the deal's index.
    pub fn push_record(&mut self, record: &DealRecord) -> Result<usize, RecordError> {
        let id = DealId::parse(&record.id)?;
        let amount = match record.amount {
            None => None,
            Some(a) => Some(Amount::new(a).map_err(|_| RecordError::Amount { id: record.id.clone(), amount: a })?),
        };
        let schema = &mut self.schema;
        let cats = schema
            .categorical
            .iter_mut()
            .map(|column| {
                let value = match column.kind {
                    CatKind::Owner => record.owner.as_deref(),
                    _ => record.segments.get(&column.name).map(String::as_str),
                };
                value.map_or(MISSING, |v| column.vocab.intern(v))
            })
            .collect();
        let nums = schema.numeric.iter().map(|n| record.numeric.get(n).copied().unwrap_or(f64::NAN)).collect();
        let stages_before = schema.stages.len();
        let stage = record.stage.as_deref().map_or(MISSING, |s| schema.stages.intern(s));
        let stage_entered = if schema.has_stage_history {
            for name in record.stage_entered.keys() {
                schema.stages.intern(name);
            }
            let entered: Vec<Option<NaiveDate>> =
                schema.stages.values().iter().map(|name| record.stage_entered.get(name).copied()).collect();
            entered.into_boxed_slice()
        } else {
            Box::default()
        };
        let row = self.deals.len() as u32 + 1;
        self.deals.push(Deal {
            id,
            name: record.name.clone(),
            created: record.created,
            closed: record.closed,
            stage,
            stage_entered,
            amount,
            outcome: record.outcome,
            cats,
            nums,
            row,
        });
        // A new stage makes earlier histories one slot short; pad them (only then: checking
        // every deal on every push would make loading quadratic).
        let n_stages = self.schema.stages.len();
        if self.schema.has_stage_history && n_stages > stages_before {
            for deal in &mut self.deals {
                if deal.stage_entered.len() < n_stages {
                    let mut v = deal.stage_entered.to_vec();
                    v.resize(n_stages, None);
                    deal.stage_entered = v.into_boxed_slice();
                }
            }
        }
        Ok(self.deals.len() - 1)
    }

    pub fn records(&self) -> impl Iterator<Item = DealRecord> + '_ {
        self.deals.iter().map(|d| DealRecord::of(self, d))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_through_a_dataset() {
        let text = "deal_id,account,owner,created_date,closed_date,stage,amount,outcome,industry,region,product,lead_source,contacts,discount_pct,entered_qualified,entered_demo,entered_proposal,entered_negotiation\n\
                    D1,Acme,rep_1,2024-01-01,2024-02-01,Closed Won,1000,Won,SaaS,APAC,Core,Inbound,3,,2024-01-01,2024-01-10,,\n\
                    D2,Beta,,2024-02-01,,Demo,2000,Open,,APAC,Pro,,,5.5,2024-02-01,2024-02-20,,\n";
        let mapping = crate::mapping::Mapping::from_toml(include_str!("../../bot/mappings/generated.toml")).unwrap();
        let today = NaiveDate::from_ymd_opt(2024, 6, 1).unwrap();
        let dataset = crate::ingest::ingest(text.as_bytes(), &mapping, Vec::new(), crate::ingest::Context { today })
            .unwrap()
            .dataset;
        let spec = SchemaSpec::of(&dataset.schema);
        assert_eq!(spec.segments, ["industry", "region", "product", "lead_source"]);
        assert!(spec.has_owner && spec.has_stage_history);
        let records: Vec<DealRecord> = dataset.records().collect();
        assert_eq!(records[0].segments["industry"], "SaaS");
        assert_eq!(records[1].owner, None);
        assert!(!records[1].segments.contains_key("industry"));
        assert_eq!(records[1].numeric["discount_pct"], 5.5);
        assert_eq!(records[0].stage_entered.len(), 2);
        let again = Dataset::from_records(&spec, &records).unwrap();
        let back: Vec<DealRecord> = again.records().collect();
        assert_eq!(back, records);
        // JSON round trip too (how records travel over the API and sit in the store).
        let json = serde_json::to_string(&records).unwrap();
        assert_eq!(serde_json::from_str::<Vec<DealRecord>>(&json).unwrap(), records);
    }

    #[test]
    fn bad_records_are_refused_with_the_reason() {
        let spec = SchemaSpec::default();
        let mut record = DealRecord {
            id: " ".into(),
            name: String::new(),
            owner: None,
            created: None,
            closed: None,
            stage: None,
            amount: Some(5.0),
            outcome: Outcome::Open,
            segments: BTreeMap::new(),
            numeric: BTreeMap::new(),
            stage_entered: BTreeMap::new(),
        };
        assert!(matches!(Dataset::from_records(&spec, [&record]), Err(RecordError::Id(_))));
        record.id = "D1".into();
        record.amount = Some(-1.0);
        let err = Dataset::from_records(&spec, [&record]).unwrap_err();
        assert_eq!(err.to_string(), "deal D1: amount -1 must be a number greater than 0");
    }
}
