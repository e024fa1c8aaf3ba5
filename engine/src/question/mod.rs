//! Plain-English pipeline questions as a typed [`Query`]: slots (filters, period, amounts, risk
//! category, limit, deal, dimension, metric, outcome) read by a deterministic parser that knows
//! the tenant's own vocabulary ([`slots`]), the intent chosen by similarity to example questions
//! ([`intent`]). The query is answered by the engine and the store, never by generated SQL.
//!
//! Pure like the rest of the engine: the caller passes the question, the tenant's
//! [`Vocabulary`], the as-of date and the examples, and gets the reading with its confidence.

pub mod answer;
pub mod intent;
mod periods;
pub mod slots;
mod words;

use std::collections::{BTreeMap, HashMap};

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use crate::dataset::{CatKind, Dataset};
use crate::domain::RiskCategory;

/// How the question was read: the query, how sure the reading is, and what else it could be.
#[derive(Debug, Clone, PartialEq)]
pub struct Reading {
    pub query: Query,
    /// 0–1: the winning intent's similarity, lowered when the runner-up is close.
    pub confidence: f32,
    /// The intents ranked, most similar first (the first is `query.intent`).
    pub ranked: Vec<intent::Ranked>,
    /// The words that named a deal by its account or name, when it was not named by its id.
    pub deal_named: Option<String>,
    /// Other deals the name could be.
    pub deal_candidates: Vec<String>,
    /// Names that match nothing of the tenant's.
    pub unknown: Vec<String>,
    /// The question as the classifier saw it.
    pub masked: String,
}

/// Below this confidence the bot asks back instead of answering.
pub const UNSURE: f32 = 0.30;

impl Reading {
    /// Whether the reading is too doubtful to answer without asking.
    pub fn unsure(&self) -> bool {
        self.confidence < UNSURE
    }

    /// The likeliest intents to offer when asking back: the `most` most similar, help aside
    /// (the answer to a doubtful question says how to ask anyway).
    pub fn likely(&self, most: usize) -> Vec<Intent> {
        self.ranked.iter().filter(|r| r.intent != Intent::Help).take(most).map(|r| r.intent).collect()
    }
}

/// Reads `question` as of `as_of`: the slots by the deterministic parser, the intent by the
/// classifier, then each intent keeps the slots it uses (a trend's metric, a comparison's
/// dimension, a count's outcome).
pub fn understand(
    question: &str,
    vocab: &Vocabulary,
    as_of: NaiveDate,
    classifier: &intent::Classifier,
) -> Result<Reading, String> {
    let slots = slots::read(question, vocab, as_of);
    let masked = slots.masked.clone();
    let ranked = if masked.trim().is_empty() {
        // Nothing but punctuation, or nothing at all: help.
        vec![intent::Ranked { intent: Intent::Help, similarity: 1.0 }]
    } else {
        classifier.rank(&masked)?
    };
    let (best, second) = (ranked[0], ranked.get(1).map_or(0.0, |r| r.similarity));
    let mut chosen = best.intent;
    // A deal named (by its id or its account) makes a question about that deal, whatever else
    // it says: "is D02718 likely to slip" is not a list of deals.
    if slots.values.deal.is_some() && chosen != Intent::Help {
        chosen = Intent::DealRisk;
    }
    let margin = (best.similarity - second).max(0.0);
    let confidence =
        if chosen != best.intent { 0.9 } else { (best.similarity * (0.6 + 4.0 * margin).min(1.0)).clamp(0.0, 1.0) };
    let query = Query { intent: chosen, slots: settle(chosen, slots.values, slots.trailing_period) };
    Ok(Reading {
        query,
        confidence,
        ranked,
        deal_named: slots.deal_named,
        deal_candidates: slots.deal_candidates,
        unknown: slots.unknown,
        masked,
    })
}

/// Keeps the slots `intent` uses. A trend spans time by itself: a look-back window ("over the
/// last year") is its span, not a filter; a calendar period ("this year", "2023") stays.
pub fn settle(intent: Intent, mut v: SlotValues, trailing_period: bool) -> SlotValues {
    if intent != Intent::Trend {
        v.metric = None;
    } else {
        v.metric = v.metric.or(Some(Metric::WinRate));
        if trailing_period {
            v.period = None;
        }
    }
    if intent != Intent::CompareSegments {
        v.dimension = None;
    }
    if intent != Intent::DealCount {
        v.outcome = None;
    }
    if intent != Intent::DealRisk {
        v.deal = None;
    }
    if intent == Intent::Help {
        v = SlotValues::default();
    }
    v
}

/// What a question asks for.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Intent {
    DealRisk,
    WinRate,
    AtRiskDeals,
    PipelineSummary,
    CompareSegments,
    Trend,
    RepPerformance,
    CycleTime,
    DealCount,
    Forecast,
    Help,
}

impl Intent {
    pub const ALL: [Intent; 11] = [
        Intent::DealRisk,
        Intent::WinRate,
        Intent::AtRiskDeals,
        Intent::PipelineSummary,
        Intent::CompareSegments,
        Intent::Trend,
        Intent::RepPerformance,
        Intent::CycleTime,
        Intent::DealCount,
        Intent::Forecast,
        Intent::Help,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Intent::DealRisk => "deal_risk",
            Intent::WinRate => "win_rate",
            Intent::AtRiskDeals => "at_risk_deals",
            Intent::PipelineSummary => "pipeline_summary",
            Intent::CompareSegments => "compare_segments",
            Intent::Trend => "trend",
            Intent::RepPerformance => "rep_performance",
            Intent::CycleTime => "cycle_time",
            Intent::DealCount => "deal_count",
            Intent::Forecast => "forecast",
            Intent::Help => "help",
        }
    }

    pub fn parse(s: &str) -> Option<Intent> {
        Intent::ALL.into_iter().find(|i| i.as_str() == s)
    }
}

/// A figure a trend or comparison follows.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    WinRate,
    CycleTime,
    DealSize,
    DealCount,
    Pipeline,
}

impl Metric {
    pub fn as_str(self) -> &'static str {
        match self {
            Metric::WinRate => "win_rate",
            Metric::CycleTime => "cycle_time",
            Metric::DealSize => "deal_size",
            Metric::DealCount => "deal_count",
            Metric::Pipeline => "pipeline",
        }
    }
}

/// Which deals a count is of.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OutcomeFilter {
    Won,
    Lost,
    Open,
    Closed,
}

/// An inclusive date range.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Period {
    pub from: NaiveDate,
    pub to: NaiveDate,
}

/// The slots of a question, whatever its intent. `filters` is keyed by the tenant's dimension
/// names (`industry`, `region`, `product`, `lead_source` in the bundled mappings) and `rep`.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SlotValues {
    pub filters: BTreeMap<String, String>,
    pub period: Option<Period>,
    pub amount_min: Option<f64>,
    pub amount_max: Option<f64>,
    pub risk_category: Option<RiskCategory>,
    pub limit: Option<u32>,
    pub deal: Option<String>,
    pub dimension: Option<String>,
    pub metric: Option<Metric>,
    pub outcome: Option<OutcomeFilter>,
}

/// A question, typed: what it asks for and of which deals.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Query {
    pub intent: Intent,
    #[serde(flatten)]
    pub slots: SlotValues,
}

impl Query {
    pub fn new(intent: Intent) -> Query {
        Query { intent, slots: SlotValues::default() }
    }
}

/// The names a tenant's questions may use: each segment dimension's values, the reps, the deal
/// ids, and the deals' names by every leading run of their words ("acme", "acme robotics" for
/// "Acme Robotics Inc"), open deals first. Built once per tenant engine from its dataset.
#[derive(Debug, Clone, Default)]
pub struct Vocabulary {
    /// Dimension name → its values as the data spells them.
    pub dimensions: Vec<(String, Vec<String>)>,
    pub reps: Vec<String>,
    /// Lower-case deal id → the id as the data spells it.
    pub deal_ids: HashMap<String, String>,
    /// A normalised name or its leading words → the deal ids so named, open deals first.
    pub names: HashMap<String, Vec<String>>,
    /// Most words a name key has.
    pub longest_name: usize,
}

/// Words a deal's name often ends with that people leave out.
const LEGAL_SUFFIXES: [&str; 10] = ["inc", "corp", "corporation", "llc", "ltd", "gmbh", "co", "plc", "ag", "sa"];

/// A deal name as questions are matched against it: normalised, legal suffixes dropped.
pub fn name_key(name: &str) -> String {
    let n = slots::normalise(name);
    n.split(' ').filter(|w| !LEGAL_SUFFIXES.contains(w)).collect::<Vec<_>>().join(" ")
}

impl Vocabulary {
    /// The vocabulary of `dataset`: its segment dimensions, owners and deals.
    pub fn of(dataset: &Dataset) -> Vocabulary {
        let mut v = Vocabulary::default();
        for column in &dataset.schema.categorical {
            let values: Vec<String> = column.vocab.values().iter().filter(|v| !v.is_empty()).cloned().collect();
            match column.kind {
                CatKind::Segment => v.dimensions.push((column.name.clone(), values)),
                CatKind::Owner => v.reps = values,
                CatKind::Extra => {}
            }
        }
        let mut order: Vec<usize> = (0..dataset.deals.len()).collect();
        order.sort_by_key(|&i| dataset.deals[i].outcome.is_closed());
        for i in order {
            let deal = &dataset.deals[i];
            let id = deal.id.as_str().to_owned();
            v.deal_ids.insert(id.to_lowercase(), id.clone());
            let key = name_key(&deal.name);
            let words: Vec<&str> = key.split(' ').filter(|w| !w.is_empty()).collect();
            for n in 1..=words.len() {
                let prefix = words[..n].join(" ");
                // One short common word ("the", "blue") names nothing.
                if prefix.len() < 4 || (n == 1 && slots::is_stop_word(&prefix)) {
                    continue;
                }
                v.names.entry(prefix).or_default().push(id.clone());
                v.longest_name = v.longest_name.max(n);
            }
        }
        v
    }
}
