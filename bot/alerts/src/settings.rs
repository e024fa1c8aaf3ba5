//! A user's alert settings (seed 002 "Alert Configuration"), as `POST /v1/alerts/configure`
//! and the chat settings take them: critical-deal alerts, the daily digest, quiet hours.
//! Validated field by field; a user with no settings gets the seed's defaults.

use chrono::NaiveTime;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// A setting that is not valid: which field, which rule, and a sentence for the user. (Not a
/// `std::error::Error` on purpose: it must become a 422 naming the field, never a generic 500.)
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SettingsError {
    pub field: String,
    pub constraint: &'static str,
    pub message: String,
}

impl SettingsError {
    pub fn new(field: impl Into<String>, constraint: &'static str, message: impl Into<String>) -> Self {
        Self { field: field.into(), constraint, message: message.into() }
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AlertSettings {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub critical_deals: Option<CriticalDeals>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub daily_digest: Option<DailyDigest>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quiet_hours: Option<QuietHours>,
    /// Alert kinds the user stopped (`/dealwatch mute <type>`): none of them reaches the user
    /// on any channel, the digest included, until unmuted. Absent: keep the stored list.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub muted: Option<Vec<engine::alerts::AlertKind>>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CriticalDeals {
    pub enabled: bool,
    /// slack, email, teams, discord or log.
    #[serde(default)]
    pub channels: Vec<String>,
    /// Alert when the risk score rises above this (default 75).
    #[serde(default = "default_threshold")]
    pub threshold: u8,
}

fn default_threshold() -> u8 {
    75
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DailyDigest {
    pub enabled: bool,
    /// HH:MM in `timezone`.
    #[serde(default = "default_digest_time")]
    pub time: String,
    /// An IANA time zone, e.g. America/New_York.
    #[serde(default = "default_timezone")]
    pub timezone: String,
    #[serde(default = "default_max_deals")]
    pub max_deals: u8,
    #[serde(default = "default_min_risk")]
    pub min_risk_score: u8,
}

fn default_digest_time() -> String {
    "08:00".into()
}
fn default_timezone() -> String {
    "UTC".into()
}
fn default_max_deals() -> u8 {
    10
}
fn default_min_risk() -> u8 {
    51
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct QuietHours {
    #[serde(default = "yes")]
    pub enabled: bool,
    pub start: String,
    pub end: String,
}

fn yes() -> bool {
    true
}

const CHANNELS: [&str; 5] = ["slack", "email", "teams", "discord", "log"];

impl AlertSettings {
    /// Checks every value; the error names the field.
    pub fn validate(&self) -> Result<(), SettingsError> {
        let hhmm = |field: &str, value: &str| {
            NaiveTime::parse_from_str(value, "%H:%M").map(|_| ()).map_err(|_| {
                SettingsError::new(field, "time", format!("{field} must be a time as HH:MM, not {value:?}"))
            })
        };
        let percent = |field: &str, value: u8| {
            if value <= 100 {
                Ok(())
            } else {
                Err(SettingsError::new(field, "range", format!("{field} must be 0-100")))
            }
        };
        if let Some(c) = &self.critical_deals {
            percent("critical_deals.threshold", c.threshold)?;
            if let Some(bad) = c.channels.iter().find(|ch| !CHANNELS.contains(&ch.as_str())) {
                return Err(SettingsError::new(
                    "critical_deals.channels",
                    "enum",
                    format!("unknown channel {bad:?}: use {}", CHANNELS.join(", ")),
                ));
            }
        }
        if let Some(d) = &self.daily_digest {
            hhmm("daily_digest.time", &d.time)?;
            d.timezone.parse::<chrono_tz::Tz>().map_err(|_| {
                SettingsError::new(
                    "daily_digest.timezone",
                    "timezone",
                    format!("unknown time zone {:?}: use an IANA name like Europe/Berlin", d.timezone),
                )
            })?;
            percent("daily_digest.min_risk_score", d.min_risk_score)?;
            if !(1..=50).contains(&d.max_deals) {
                return Err(SettingsError::new(
                    "daily_digest.max_deals",
                    "range",
                    "daily_digest.max_deals must be 1-50",
                ));
            }
        }
        if let Some(q) = &self.quiet_hours {
            hhmm("quiet_hours.start", &q.start)?;
            hhmm("quiet_hours.end", &q.end)?;
        }
        Ok(())
    }
}

impl AlertSettings {
    /// Stored settings, or the defaults for a user who never set any (or whose stored settings
    /// no longer parse: they are then logged and replaced by the defaults, not an error).
    pub fn from_stored(stored: Option<serde_json::Value>) -> AlertSettings {
        match stored {
            None => AlertSettings::default(),
            Some(value) => serde_json::from_value(value).unwrap_or_else(|e| {
                tracing::warn!(error = %e, "stored alert settings do not parse; using the defaults");
                AlertSettings::default()
            }),
        }
    }

    /// True when the user muted alerts of `kind`.
    pub fn mutes(&self, kind: engine::alerts::AlertKind) -> bool {
        self.muted.as_ref().is_some_and(|m| m.contains(&kind))
    }

    /// Critical-deal alerts: on (seed 002: "immediate Slack + email alert to deal owner"),
    /// threshold 75, on the channels the user chose (empty: wherever the user can be reached).
    pub fn critical(&self) -> CriticalDeals {
        self.critical_deals.clone().unwrap_or(CriticalDeals { enabled: true, channels: Vec::new(), threshold: 75 })
    }

    /// The daily digest this user gets, if any: their own settings, or by default (seed 002:
    /// "daily email digest to managers") managers' and admins' at 08:00 in their time zone, 10
    /// deals of risk 51 or more. `None`: no digest. The digest's time zone is the one set with
    /// it, else the user's (`user_time_zone`).
    pub fn digest_for(&self, role: store::Role, user_time_zone: &str) -> Option<DailyDigest> {
        if self.mutes(engine::alerts::AlertKind::DailyDigest) {
            return None;
        }
        match &self.daily_digest {
            Some(d) if d.enabled => Some(d.clone()),
            Some(_) => None,
            None if role == store::Role::Rep => None,
            None => Some(DailyDigest {
                enabled: true,
                time: default_digest_time(),
                timezone: user_time_zone.to_owned(),
                max_deals: default_max_deals(),
                min_risk_score: default_min_risk(),
            }),
        }
    }

    /// Quiet hours as (start, end) local times: the user's, or seed 002's 20:00-08:00.
    /// `None` when the user turned them off.
    pub fn quiet_window(&self) -> Option<(NaiveTime, NaiveTime)> {
        let hhmm = |s: &str| NaiveTime::parse_from_str(s, "%H:%M").ok();
        match &self.quiet_hours {
            None => Some((NaiveTime::from_hms_opt(20, 0, 0)?, NaiveTime::from_hms_opt(8, 0, 0)?)),
            Some(q) if !q.enabled => None,
            Some(q) => Some((hhmm(&q.start)?, hhmm(&q.end)?)),
        }
    }
}
