//! Domain newtypes: values that are valid by construction.
//!
//! Each type has private fields and a `parse`/`new` that returns a typed error, so code that holds
//! a `DealId` or an `Amount` never re-checks it.

use std::fmt;

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

/// The dates Dealwatch reasons about: 1900-01-01 to 2199-12-31. An as-of date outside them is
/// refused where it comes in (the API, the command line) and clamped by the analyses that take
/// one, so date arithmetic (a quarter back, a year ahead) can never overflow.
pub fn supported_dates() -> std::ops::RangeInclusive<NaiveDate> {
    let first = NaiveDate::from_ymd_opt(1900, 1, 1).unwrap_or(NaiveDate::MIN);
    let last = NaiveDate::from_ymd_opt(2199, 12, 31).unwrap_or(NaiveDate::MAX);
    first..=last
}

/// `date` moved into [`supported_dates`].
pub fn clamp_date(date: NaiveDate) -> NaiveDate {
    let range = supported_dates();
    date.clamp(*range.start(), *range.end())
}

/// A CRM record id: non-empty, trimmed, at most 128 bytes, no control characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct DealId(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DealIdError {
    #[error("deal id is empty")]
    Empty,
    #[error("deal id is longer than 128 bytes")]
    TooLong,
    #[error("deal id contains a control character")]
    Control,
}

impl DealId {
    pub fn parse(raw: &str) -> Result<Self, DealIdError> {
        let s = raw.trim();
        if s.is_empty() {
            return Err(DealIdError::Empty);
        }
        if s.len() > 128 {
            return Err(DealIdError::TooLong);
        }
        if s.chars().any(char::is_control) {
            return Err(DealIdError::Control);
        }
        Ok(Self(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for DealId {
    type Error = DealIdError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<DealId> for String {
    fn from(value: DealId) -> Self {
        value.0
    }
}

impl fmt::Display for DealId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A tenant id (one organisation's data): 1-64 characters of `a-z`, `0-9`, `-` and `_`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct TenantId(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("tenant id {0:?} must be 1-64 characters of lower-case letters, digits, '-' and '_'")]
pub struct TenantIdError(pub String);

impl TenantId {
    pub fn parse(raw: &str) -> Result<Self, TenantIdError> {
        let ok = !raw.is_empty()
            && raw.len() <= 64
            && raw.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
        if ok { Ok(Self(raw.to_owned())) } else { Err(TenantIdError(raw.to_owned())) }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for TenantId {
    type Error = TenantIdError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<TenantId> for String {
    fn from(value: TenantId) -> Self {
        value.0
    }
}

impl fmt::Display for TenantId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A deal amount in the export's currency: finite and strictly positive.
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd, Serialize, Deserialize)]
#[serde(try_from = "f64", into = "f64")]
pub struct Amount(f64);

#[derive(Debug, Clone, Copy, PartialEq, thiserror::Error)]
pub enum AmountError {
    #[error("amount must be greater than 0")]
    NotPositive,
    #[error("amount is not a finite number")]
    NotFinite,
}

impl Amount {
    pub fn new(value: f64) -> Result<Self, AmountError> {
        if !value.is_finite() {
            Err(AmountError::NotFinite)
        } else if value <= 0.0 {
            Err(AmountError::NotPositive)
        } else {
            Ok(Self(value))
        }
    }

    pub fn get(self) -> f64 {
        self.0
    }
}

impl TryFrom<f64> for Amount {
    type Error = AmountError;
    fn try_from(value: f64) -> Result<Self, Self::Error> {
        Self::new(value)
    }
}

impl From<Amount> for f64 {
    fn from(value: Amount) -> Self {
        value.0
    }
}

/// What happened to a deal, as the CRM records it today.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum Outcome {
    Won,
    Lost,
    Open,
}

impl Outcome {
    pub fn is_closed(self) -> bool {
        !matches!(self, Outcome::Open)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Won => "won",
            Outcome::Lost => "lost",
            Outcome::Open => "open",
        }
    }

    /// The outcome named by [`Outcome::as_str`].
    pub fn parse(s: &str) -> Option<Outcome> {
        [Outcome::Won, Outcome::Lost, Outcome::Open].into_iter().find(|o| o.as_str() == s)
    }
}

/// A probability in [0, 1].
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd, Serialize, Deserialize)]
#[serde(try_from = "f64", into = "f64")]
pub struct Probability(f64);

#[derive(Debug, Clone, Copy, PartialEq, thiserror::Error)]
#[error("probability {0} is outside [0, 1]")]
pub struct ProbabilityError(pub f64);

impl Probability {
    pub fn new(p: f64) -> Result<Self, ProbabilityError> {
        if (0.0..=1.0).contains(&p) { Ok(Self(p)) } else { Err(ProbabilityError(p)) }
    }

    /// Clamps into [0, 1]; NaN becomes 0.5, the uninformed answer.
    pub fn saturating(p: f64) -> Self {
        if p.is_nan() { Self(0.5) } else { Self(p.clamp(0.0, 1.0)) }
    }

    pub fn get(self) -> f64 {
        self.0
    }
}

impl TryFrom<f64> for Probability {
    type Error = ProbabilityError;
    fn try_from(value: f64) -> Result<Self, Self::Error> {
        Self::new(value)
    }
}

impl From<Probability> for f64 {
    fn from(value: Probability) -> Self {
        value.0
    }
}

/// The risk bands of seed 002 FR1: low 0-25, medium 26-50, high 51-75, critical 76-100.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum RiskCategory {
    Low,
    Medium,
    High,
    Critical,
}

impl RiskCategory {
    pub const ALL: [RiskCategory; 4] = [Self::Low, Self::Medium, Self::High, Self::Critical];

    pub fn from_score(score: u8) -> Self {
        match score {
            0..=25 => Self::Low,
            26..=50 => Self::Medium,
            51..=75 => Self::High,
            _ => Self::Critical,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Low => "low",
            Self::Medium => "medium",
            Self::High => "high",
            Self::Critical => "critical",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.as_str().eq_ignore_ascii_case(s.trim()))
    }
}

impl fmt::Display for RiskCategory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The loss-risk score of FR1: round(100 × P(loss)), 0-100.
pub fn risk_score(p_loss: f64) -> u8 {
    (Probability::saturating(p_loss).get() * 100.0).round() as u8
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tenant_ids_are_checked() {
        assert!(TenantId::parse("acme-corp_2").is_ok());
        for bad in ["", "Acme", "a b", "a;drop", &"x".repeat(65)] {
            assert!(TenantId::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn deal_ids_are_trimmed_and_checked() {
        assert_eq!(DealId::parse("  D12 ").unwrap().as_str(), "D12");
        assert_eq!(DealId::parse("   "), Err(DealIdError::Empty));
        assert_eq!(DealId::parse("a\u{7}b"), Err(DealIdError::Control));
        assert_eq!(DealId::parse(&"x".repeat(129)), Err(DealIdError::TooLong));
    }

    #[test]
    fn amounts_must_be_positive_and_finite() {
        assert!(Amount::new(1.0).is_ok());
        assert_eq!(Amount::new(0.0), Err(AmountError::NotPositive));
        assert_eq!(Amount::new(-3.0), Err(AmountError::NotPositive));
        assert_eq!(Amount::new(f64::NAN), Err(AmountError::NotFinite));
    }

    #[test]
    fn categories_follow_the_seed_bands() {
        let check = |score, cat| assert_eq!(RiskCategory::from_score(score), cat, "{score}");
        check(0, RiskCategory::Low);
        check(25, RiskCategory::Low);
        check(26, RiskCategory::Medium);
        check(50, RiskCategory::Medium);
        check(51, RiskCategory::High);
        check(75, RiskCategory::High);
        check(76, RiskCategory::Critical);
        check(100, RiskCategory::Critical);
        assert_eq!(risk_score(0.755), 76);
        assert_eq!(risk_score(0.2549), 25);
        assert_eq!(risk_score(f64::NAN), 50);
    }
}
