//! The field mapping: how any CRM export's columns become canonical deal fields.
//!
//! A mapping is a TOML document (format in README.md, examples in `bot/mappings/`). It names the
//! column behind each canonical field, the segment dimensions (the first is the *primary* segment,
//! used for "typical cycle" and "median deal size"), extra features, which labels mean won / lost /
//! open, date and number formats, lookup tables to join, value aliases, and the columns that are
//! only known after a deal closes. Those columns are never used as features: parsing refuses a
//! mapping that declares one of them as a feature, so the mistake cannot slip through.

use indexmap::IndexMap;
use serde::Deserialize;

/// A parsed, checked mapping.
#[derive(Debug, Clone)]
pub struct Mapping {
    pub name: String,
    pub fields: Fields,
    pub outcome: OutcomeLabels,
    /// Segment dimensions in the mapping's order: (dimension name, column).
    pub segments: Vec<(String, String)>,
    pub categorical: Vec<String>,
    pub numeric: Vec<String>,
    pub after_close: Vec<String>,
    pub stages: Stages,
    pub joins: Vec<Join>,
    /// Aliases per column: normalised raw value → canonical value.
    pub aliases: IndexMap<String, IndexMap<String, String>>,
    pub source: Source,
    pub validation: ValidationRules,
    /// When a segment or feature column is absent from the export: skip it (with a warning) or fail.
    pub missing_columns: MissingColumns,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fields {
    pub id: String,
    pub outcome: String,
    #[serde(default, alias = "account")]
    pub name: Option<String>,
    #[serde(default, alias = "rep")]
    pub owner: Option<String>,
    #[serde(default)]
    pub created: Option<String>,
    #[serde(default)]
    pub closed: Option<String>,
    #[serde(default)]
    pub stage: Option<String>,
    #[serde(default)]
    pub amount: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutcomeLabels {
    pub won: Vec<String>,
    pub lost: Vec<String>,
    #[serde(default)]
    pub open: Vec<String>,
    /// What a blank outcome cell means: `"open"` (the default: CRMs leave it empty until close) or
    /// `"error"`.
    #[serde(default = "default_blank_outcome")]
    pub blank: BlankOutcome,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BlankOutcome {
    Open,
    Error,
}

fn default_blank_outcome() -> BlankOutcome {
    BlankOutcome::Open
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Stages {
    /// Pipeline stages in order (closed stages excluded). Optional: without it stages are ordered
    /// by first appearance.
    #[serde(default)]
    pub order: Vec<String>,
    /// Columns holding the date each stage was entered (CRM "date entered stage" fields). With
    /// them the stage a deal was in at any past date is known, which makes stage and
    /// time-in-stage usable as leak-free features.
    #[serde(default)]
    pub entered: IndexMap<String, String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Join {
    /// The lookup table's file name; the caller resolves it (beside the input, then the mapping).
    pub file: String,
    /// The column in the main table (or an earlier join) holding the key.
    pub on: String,
    /// The key column in the lookup table; defaults to `on`.
    #[serde(default)]
    pub key: Option<String>,
}

impl Join {
    pub fn key_column(&self) -> &str {
        self.key.as_deref().unwrap_or(&self.on)
    }

    /// The table's name for qualified column references (`accounts.sector`).
    pub fn table_name(&self) -> &str {
        let base = self.file.rsplit(['/', '\\']).next().unwrap_or(&self.file);
        base.strip_suffix(".csv").unwrap_or(base)
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Source {
    #[serde(default = "default_delimiter")]
    pub delimiter: char,
    /// chrono format strings, tried in order. ISO datetimes (`2024-01-15T10:30:00Z`) always work.
    #[serde(default = "default_date_formats")]
    pub date_formats: Vec<String>,
    /// The decimal separator of numbers: `.` (thousands `,`) or `,` (thousands `.` or space).
    #[serde(default = "default_decimal")]
    pub decimal: char,
}

impl Default for Source {
    fn default() -> Self {
        Self { delimiter: default_delimiter(), date_formats: default_date_formats(), decimal: default_decimal() }
    }
}

fn default_delimiter() -> char {
    ','
}
fn default_decimal() -> char {
    '.'
}
fn default_date_formats() -> Vec<String> {
    ["%Y-%m-%d", "%Y/%m/%d", "%m/%d/%Y", "%d.%m.%Y"].map(String::from).to_vec()
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ValidationRules {
    /// Amounts at or above this are rejected (seed 002: deal_amount < $10M).
    #[serde(default = "default_max_amount")]
    pub max_amount: f64,
    /// Canonical fields that must be present on every row. `id` and `outcome` always are;
    /// `created` and `closed` are always required on won and lost deals when the mapping has dates.
    #[serde(default = "default_required")]
    pub required: Vec<String>,
    /// Amounts further than this many standard deviations (on the log scale) are flagged.
    #[serde(default = "default_outlier_sigma")]
    pub outlier_sigma: f64,
}

impl Default for ValidationRules {
    fn default() -> Self {
        Self { max_amount: default_max_amount(), required: default_required(), outlier_sigma: default_outlier_sigma() }
    }
}

fn default_max_amount() -> f64 {
    10_000_000.0
}
fn default_required() -> Vec<String> {
    vec!["amount".into()]
}
fn default_outlier_sigma() -> f64 {
    3.0
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MissingColumns {
    #[default]
    Error,
    Skip,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMapping {
    #[serde(default)]
    name: Option<String>,
    fields: Fields,
    outcome: OutcomeLabels,
    #[serde(default)]
    segments: IndexMap<String, String>,
    #[serde(default)]
    features: RawFeatures,
    #[serde(default)]
    after_close: Vec<String>,
    #[serde(default)]
    stages: Stages,
    #[serde(default, rename = "join")]
    joins: Vec<Join>,
    #[serde(default)]
    values: IndexMap<String, IndexMap<String, String>>,
    #[serde(default)]
    source: Source,
    #[serde(default)]
    validation: ValidationRules,
    #[serde(default)]
    missing_columns: MissingColumns,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFeatures {
    #[serde(default)]
    categorical: Vec<String>,
    #[serde(default)]
    numeric: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum MappingError {
    #[error("mapping is not valid TOML for a Dealwatch mapping: {0}")]
    Toml(#[from] toml::de::Error),
    #[error("mapping: {0}")]
    Invalid(String),
}

const KNOWN_FIELDS: [&str; 8] = ["id", "outcome", "name", "owner", "created", "closed", "stage", "amount"];

impl Mapping {
    pub fn from_toml(text: &str) -> Result<Self, MappingError> {
        let raw: RawMapping = toml::from_str(text)?;
        let invalid = |msg: String| Err(MappingError::Invalid(msg));

        if raw.outcome.won.is_empty() || raw.outcome.lost.is_empty() {
            return invalid("[outcome] needs at least one `won` and one `lost` label".into());
        }
        let mut seen = IndexMap::new();
        for (kind, labels) in [("won", &raw.outcome.won), ("lost", &raw.outcome.lost), ("open", &raw.outcome.open)] {
            for label in labels {
                if let Some(other) = seen.insert(normalize_key(label), kind)
                    && other != kind
                {
                    return invalid(format!("outcome label {label:?} is listed as both {other} and {kind}"));
                }
            }
        }
        for field in &raw.validation.required {
            if !KNOWN_FIELDS.contains(&field.as_str()) {
                return invalid(format!(
                    "[validation] required names unknown field {field:?}; known: {}",
                    KNOWN_FIELDS.join(", ")
                ));
            }
        }
        if raw.validation.max_amount.is_nan() || raw.validation.max_amount <= 0.0 {
            return invalid("[validation] max_amount must be greater than 0".into());
        }
        if raw.source.decimal != '.' && raw.source.decimal != ',' {
            return invalid(format!("[source] decimal must be '.' or ',', not {:?}", raw.source.decimal));
        }
        for format in &raw.source.date_formats {
            if chrono::format::StrftimeItems::new(format).any(|i| matches!(i, chrono::format::Item::Error)) {
                return invalid(format!("[source] date format {format:?} is not a valid chrono format"));
            }
        }

        // After-close columns must never become features: refuse the contradiction outright.
        let after_close: Vec<String> = raw.after_close.iter().map(|c| c.trim().to_owned()).collect();
        let feature_columns = raw
            .segments
            .values()
            .chain(&raw.features.categorical)
            .chain(&raw.features.numeric)
            .chain(raw.fields.created.iter())
            .chain(raw.fields.amount.iter())
            .chain(raw.fields.owner.iter())
            .chain(raw.stages.entered.values());
        for column in feature_columns {
            if after_close.iter().any(|a| a == column) {
                return invalid(format!(
                    "column {column:?} is declared in after_close (known only once a deal closes) but is also used as a feature or input field"
                ));
            }
        }
        let mut names = IndexMap::new();
        names.insert("owner".to_owned(), ());
        for name in raw.segments.keys().chain(&raw.features.categorical).chain(&raw.features.numeric) {
            if names.insert(name.clone(), ()).is_some() {
                return invalid(format!(
                    "feature or segment {name:?} is declared twice (\"owner\" is reserved for the owner field)"
                ));
            }
        }

        let aliases = raw
            .values
            .into_iter()
            .map(|(column, map)| {
                let map = map.into_iter().map(|(from, to)| (normalize_key(&from), to)).collect();
                (column, map)
            })
            .collect();

        Ok(Self {
            name: raw.name.unwrap_or_else(|| "unnamed mapping".into()),
            fields: raw.fields,
            outcome: raw.outcome,
            segments: raw.segments.into_iter().collect(),
            categorical: raw.features.categorical,
            numeric: raw.features.numeric,
            after_close,
            stages: raw.stages,
            joins: raw.joins,
            aliases,
            source: raw.source,
            validation: raw.validation,
            missing_columns: raw.missing_columns,
        })
    }

    pub fn has_dates(&self) -> bool {
        self.fields.created.is_some() || self.fields.closed.is_some()
    }

    pub fn requires(&self, field: &str) -> bool {
        matches!(field, "id" | "outcome") || self.validation.required.iter().any(|f| f == field)
    }
}

/// The key under which labels, aliases, join keys and categorical values are compared:
/// lower case, with whitespace and punctuation removed, so `GTXPro`, `GTX Pro` and `gtx-pro` meet.
pub fn normalize_key(value: &str) -> String {
    value.chars().filter(|c| c.is_alphanumeric()).flat_map(char::to_lowercase).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = r#"
        [fields]
        id = "id"
        outcome = "status"
        [outcome]
        won = ["Won"]
        lost = ["Lost"]
    "#;

    #[test]
    fn a_minimal_mapping_parses_with_defaults() {
        let m = Mapping::from_toml(MINIMAL).unwrap();
        assert_eq!(m.fields.id, "id");
        assert_eq!(m.outcome.blank, BlankOutcome::Open);
        assert_eq!(m.validation.max_amount, 10_000_000.0);
        assert!(!m.has_dates());
        assert!(m.requires("id") && m.requires("amount") && !m.requires("owner"));
    }

    #[test]
    fn segments_keep_their_order() {
        let text = format!("{MINIMAL}\n[segments]\nregion = \"r\"\nindustry = \"i\"\nproduct = \"p\"\n");
        let m = Mapping::from_toml(&text).unwrap();
        let names: Vec<_> = m.segments.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["region", "industry", "product"]);
    }

    #[test]
    fn after_close_columns_cannot_be_features() {
        let text = format!("{MINIMAL}\nafter_close = [\"cycle\"]\n[features]\nnumeric = [\"cycle\"]\n");
        let err = Mapping::from_toml(&text).unwrap_err().to_string();
        assert!(err.contains("\"cycle\"") && err.contains("after_close"), "{err}");
    }

    #[test]
    fn contradictory_outcome_labels_are_refused() {
        let text = MINIMAL.replace("lost = [\"Lost\"]", "lost = [\"Lost\", \"won \"]");
        let err = Mapping::from_toml(&text).unwrap_err().to_string();
        assert!(err.contains("both won and lost"), "{err}");
    }

    #[test]
    fn unknown_keys_and_bad_formats_are_named() {
        let err = Mapping::from_toml(&format!("{MINIMAL}\n[source]\ndelimeter = \";\"\n")).unwrap_err();
        assert!(err.to_string().contains("delimeter"), "{err}");
        let err = Mapping::from_toml(&format!("{MINIMAL}\n[source]\ndate_formats = [\"%Q\"]\n")).unwrap_err();
        assert!(err.to_string().contains("%Q"), "{err}");
    }

    #[test]
    fn keys_normalise_spacing_case_and_punctuation() {
        assert_eq!(normalize_key("GTX Pro"), normalize_key("GTXPro"));
        assert_eq!(normalize_key(" N. America "), "namerica");
    }
}
