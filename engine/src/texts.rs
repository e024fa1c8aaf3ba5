//! The words: factor sentences and the recommendation rule table, parsed from the TOML files in
//! `prompts/` (the caller reads them; the engine keeps no text of its own).

use std::collections::HashMap;

use serde::Deserialize;

use crate::domain::RiskCategory;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum Priority {
    Immediate,
    ThisWeek,
    Ongoing,
}

impl Priority {
    pub fn as_str(self) -> &'static str {
        match self {
            Priority::Immediate => "immediate",
            Priority::ThisWeek => "this_week",
            Priority::Ongoing => "ongoing",
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    pub id: String,
    /// Factor patterns; the rule fires if any of them is among the top risk factors.
    #[serde(default, deserialize_with = "one_or_many")]
    pub factor: Vec<String>,
    /// Only for factors about one of these values (`values = ["Partner"]`), compared ignoring
    /// case and spacing.
    #[serde(default)]
    pub values: Vec<String>,
    #[serde(default)]
    pub categories: Vec<RiskCategory>,
    pub priority: Priority,
    #[serde(default)]
    pub priority_when: HashMap<RiskCategory, Priority>,
    pub action: String,
    pub rationale: String,
}

impl Rule {
    /// Whether the rule's factor pattern matches a factor with this key and sentence variant.
    pub fn matches_factor(&self, key: &str, variant: &str, value: Option<&str>) -> bool {
        let value_ok = self.values.is_empty()
            || value.is_some_and(|v| {
                self.values.iter().any(|w| crate::mapping::normalize_key(w) == crate::mapping::normalize_key(v))
            });
        value_ok
            && self.factor.iter().any(|p| match p.strip_suffix('*') {
                Some(prefix) => key.starts_with(prefix),
                None => p == key || p == variant,
            })
    }

    pub fn applies_to(&self, category: RiskCategory) -> bool {
        self.categories.is_empty() || self.categories.contains(&category)
    }

    pub fn priority_for(&self, category: RiskCategory) -> Priority {
        self.priority_when.get(&category).copied().unwrap_or(self.priority)
    }
}

#[derive(Debug, Clone)]
pub struct Texts {
    factors: HashMap<String, String>,
    pub currency: String,
    pub rules: Vec<Rule>,
}

#[derive(Debug, thiserror::Error)]
pub enum TextsError {
    #[error("{file}: {source}")]
    Toml { file: &'static str, source: toml::de::Error },
    #[error("prompts/factors.toml has no sentence for {0:?}")]
    Missing(String),
    #[error("prompts/recommendations.toml: rule {0:?} is defined twice")]
    DuplicateRule(String),
}

/// Sentence variants the engine uses; each must have a template.
pub const REQUIRED: [&str; 21] = [
    "segment",
    "owner",
    "segment_blank",
    "segment_unseen",
    "pair",
    "age_old",
    "age_young",
    "age_unknown",
    "amount_large",
    "amount_small",
    "amount_typical",
    "amount_unknown",
    "progress_stalled",
    "progress_old",
    "progress_young",
    "timing_q4",
    "timing_quarter_end",
    "timing",
    "numeric_high",
    "numeric_low",
    "numeric_missing",
];

impl Texts {
    pub fn from_toml(factors_toml: &str, rules_toml: &str) -> Result<Self, TextsError> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct FactorsFile {
            #[serde(default)]
            format: Format,
            factors: HashMap<String, String>,
        }
        #[derive(Deserialize, Default)]
        #[serde(deny_unknown_fields)]
        struct Format {
            #[serde(default)]
            currency: String,
        }
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct RulesFile {
            #[serde(default)]
            rule: Vec<Rule>,
        }
        let f: FactorsFile =
            toml::from_str(factors_toml).map_err(|source| TextsError::Toml { file: "prompts/factors.toml", source })?;
        let r: RulesFile = toml::from_str(rules_toml)
            .map_err(|source| TextsError::Toml { file: "prompts/recommendations.toml", source })?;
        for key in REQUIRED {
            if !f.factors.contains_key(key) {
                return Err(TextsError::Missing(key.into()));
            }
        }
        let mut ids = std::collections::HashSet::new();
        for rule in &r.rule {
            if !ids.insert(rule.id.clone()) {
                return Err(TextsError::DuplicateRule(rule.id.clone()));
            }
        }
        Ok(Texts { factors: f.factors, currency: f.format.currency, rules: r.rule })
    }

    /// The template for `variant`, preferring a column-specific one (`segment:lead_source`).
    pub fn template(&self, variant: &str, specific: Option<&str>) -> &str {
        specific.and_then(|s| self.factors.get(s)).or_else(|| self.factors.get(variant)).map_or("", String::as_str)
    }

    pub fn money(&self, amount: f64) -> String {
        format!("{}{}", self.currency, thousands(amount.round()))
    }
}

fn one_or_many<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(String),
        Many(Vec<String>),
    }
    Ok(match OneOrMany::deserialize(d)? {
        OneOrMany::One(s) => vec![s],
        OneOrMany::Many(v) => v,
    })
}

/// Fills `{name}` placeholders; unknown placeholders are left as written.
pub fn fill(template: &str, values: &[(&str, String)]) -> String {
    let mut out = String::with_capacity(template.len() + 16);
    let mut rest = template;
    while let Some(start) = rest.find('{') {
        out.push_str(&rest[..start]);
        let after = &rest[start + 1..];
        match after.find('}') {
            Some(end) => {
                let name = &after[..end];
                match values.iter().find(|(k, _)| *k == name) {
                    Some((_, v)) => out.push_str(v),
                    None => {
                        out.push('{');
                        out.push_str(name);
                        out.push('}');
                    }
                }
                rest = &after[end + 1..];
            }
            None => {
                out.push_str(&rest[start..]);
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}

/// `1234567.0` → `1,234,567`.
pub fn thousands(value: f64) -> String {
    let negative = value < 0.0;
    let digits = format!("{:.0}", value.abs());
    let mut out = String::with_capacity(digits.len() + digits.len() / 3 + 1);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    if negative { format!("-{out}") } else { out }
}

/// Two rates as percentages, with a decimal only when whole numbers would look equal.
pub fn two_rates(a: f64, b: f64) -> (String, String) {
    let (ra, rb) = ((a * 100.0).round(), (b * 100.0).round());
    if ra == rb && (a - b).abs() > 1e-9 {
        (format!("{:.1}", a * 100.0), format!("{:.1}", b * 100.0))
    } else {
        (format!("{ra:.0}"), format!("{rb:.0}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fill_replaces_known_placeholders_only() {
        let s = fill("{a} and {b} and {c", &[("a", "1".into()), ("b", "two".into())]);
        assert_eq!(s, "1 and two and {c");
        assert_eq!(fill("{x} stays", &[]), "{x} stays");
    }

    #[test]
    fn numbers_read_well() {
        assert_eq!(thousands(1_234_567.0), "1,234,567");
        assert_eq!(thousands(999.0), "999");
        assert_eq!(thousands(-4500.0), "-4,500");
        assert_eq!(two_rates(0.44, 0.461), ("44".into(), "46".into()));
        assert_eq!(two_rates(0.451, 0.453), ("45.1".into(), "45.3".into()));
    }

    #[test]
    fn the_shipped_prompts_parse_and_cover_every_variant() {
        let texts = Texts::from_toml(
            include_str!("../../prompts/factors.toml"),
            include_str!("../../prompts/recommendations.toml"),
        )
        .unwrap();
        assert!(texts.rules.len() >= 8);
        assert_eq!(
            texts.template("segment", Some("segment:lead_source")),
            "{value} leads win {rate}% vs {overall}% overall"
        );
        assert_eq!(
            texts.template("segment", Some("segment:industry")),
            "{value} deals win {rate}% vs {overall}% overall"
        );
        assert_eq!(texts.money(45000.0), "$45,000");
    }

    #[test]
    fn missing_sentences_and_duplicate_rules_are_refused() {
        let err = Texts::from_toml("[factors]\nsegment = \"x\"\n", "").unwrap_err();
        assert!(err.to_string().contains("owner"), "{err}");
        let factors = include_str!("../../prompts/factors.toml");
        let rules = "[[rule]]\nid='a'\npriority='ongoing'\naction='x'\nrationale='y'\n[[rule]]\nid='a'\npriority='ongoing'\naction='x'\nrationale='y'\n";
        assert!(matches!(Texts::from_toml(factors, rules), Err(TextsError::DuplicateRule(_))));
    }

    #[test]
    fn rules_match_keys_prefixes_and_variants() {
        let rule = |factor: &str| Rule {
            id: "r".into(),
            factor: vec![factor.into()],
            values: Vec::new(),
            categories: vec![RiskCategory::High],
            priority: Priority::ThisWeek,
            priority_when: HashMap::from([(RiskCategory::Critical, Priority::Immediate)]),
            action: String::new(),
            rationale: String::new(),
        };
        assert!(rule("segment:*").matches_factor("segment:industry", "segment", Some("EdTech")));
        assert!(rule("age_old").matches_factor("age", "age_old", None));
        assert!(!rule("age_old").matches_factor("age", "age_young", None));
        assert!(rule("owner").matches_factor("owner", "owner", Some("rep_1")));
        let partner = Rule { values: vec!["partner".into()], ..rule("segment:lead_source") };
        assert!(partner.matches_factor("segment:lead_source", "segment", Some("Partner")));
        assert!(!partner.matches_factor("segment:lead_source", "segment", Some("Outbound")));
        assert!(rule("x").applies_to(RiskCategory::High) && !rule("x").applies_to(RiskCategory::Low));
        assert_eq!(rule("x").priority_for(RiskCategory::Critical), Priority::Immediate);
    }
}
