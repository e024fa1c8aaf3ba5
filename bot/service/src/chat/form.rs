//! The alert-settings form, whatever the platform draws it with (a Slack modal, a Teams card, a
//! Discord form): the values it opens with ([`SettingsForm`]) and what a submission asks for
//! ([`Submission`] read into [`AlertSettings`] by [`settings_from`], checked field by field like
//! `POST /v1/alerts/configure`).

use engine::alerts::AlertKind;
use serde::Serialize;

use crate::alerts::settings::{AlertSettings, CriticalDeals, DailyDigest, QuietHours, SettingsError};
use store::User;

/// One checkbox of a group.
#[derive(Debug, Clone, Serialize)]
pub struct Choice {
    pub value: String,
    pub label: String,
    pub on: bool,
}

/// The values the settings modal opens with.
#[derive(Debug, Clone, Serialize)]
pub struct SettingsForm {
    pub critical: bool,
    pub threshold: u8,
    pub channels: Vec<Choice>,
    pub digest: bool,
    pub digest_time: String,
    pub timezone: String,
    pub quiet: bool,
    pub quiet_start: String,
    pub quiet_end: String,
    pub kinds: Vec<Choice>,
    /// Where the modal was opened from (`command`, `home`): the home tab is refreshed after a
    /// save from it.
    pub metadata: String,
}

/// A kind's name as people read it: "segment decline".
pub fn kind_label(kind: AlertKind) -> String {
    kind.as_str().replace('_', " ")
}

impl SettingsForm {
    /// The form for `settings` in force for `user`, offering the deployment's `channels`.
    pub fn new(settings: &AlertSettings, user: &User, channels: &[String], opened_from: &str) -> SettingsForm {
        let critical = settings.critical();
        let digest = settings.digest_for(user.role, &user.time_zone);
        let hhmm = |t: chrono::NaiveTime| t.format("%H:%M").to_string();
        let (quiet, quiet_start, quiet_end) = match settings.quiet_window() {
            Some((start, end)) => (true, hhmm(start), hhmm(end)),
            None => {
                let q = settings.quiet_hours.as_ref();
                (false, q.map_or("20:00".into(), |q| q.start.clone()), q.map_or("08:00".into(), |q| q.end.clone()))
            }
        };
        let stored_digest = settings.daily_digest.as_ref();
        SettingsForm {
            critical: critical.enabled,
            threshold: critical.threshold,
            channels: channels
                .iter()
                .filter(|c| c.as_str() != "log")
                .map(|c| Choice { value: c.clone(), label: channel_label(c), on: critical.channels.contains(c) })
                .collect(),
            digest: digest.is_some(),
            digest_time: digest.as_ref().or(stored_digest).map_or("08:00".into(), |d| d.time.clone()),
            timezone: digest.as_ref().or(stored_digest).map_or(user.time_zone.clone(), |d| d.timezone.clone()),
            quiet,
            quiet_start,
            quiet_end,
            kinds: AlertKind::ALL
                .into_iter()
                .map(|k| Choice {
                    value: k.as_str().to_owned(),
                    label: capitalised(&kind_label(k)),
                    on: settings.mutes(k),
                })
                .collect(),
            metadata: opened_from.to_owned(),
        }
    }
}

pub fn channel_label(c: &str) -> String {
    match c {
        "slack" => "Slack".into(),
        "email" => "Email".into(),
        "teams" => "Microsoft Teams".into(),
        "discord" => "Discord".into(),
        other => other.to_owned(),
    }
}

fn capitalised(s: &str) -> String {
    let mut c = s.chars();
    c.next().map(|f| f.to_uppercase().chain(c).collect()).unwrap_or_default()
}

/// A submitted settings form, each field as the form gave it; `None` keeps what is stored.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Submission {
    pub critical: Option<bool>,
    pub threshold: Option<String>,
    /// The channels ticked (none: wherever the user can be reached).
    pub channels: Option<Vec<String>>,
    pub digest: Option<bool>,
    pub digest_time: Option<String>,
    pub timezone: Option<String>,
    pub quiet: Option<bool>,
    pub quiet_start: Option<String>,
    pub quiet_end: Option<String>,
    /// Alert kinds by name (`segment_decline`).
    pub muted: Option<Vec<String>>,
}

/// The settings a submitted form asks for, keeping from `current` what the form did not send
/// (and what no form shows: the digest's size and floor). Errors name the field
/// (`critical_deals.threshold`), as the REST API's do.
pub fn settings_from(form: &Submission, current: &AlertSettings, user: &User) -> Result<AlertSettings, SettingsError> {
    let critical = current.critical();
    let threshold = match form.threshold.as_deref().map(str::trim).filter(|t| !t.is_empty()) {
        None => critical.threshold,
        Some(t) => t.parse::<u8>().ok().filter(|t| *t <= 100).ok_or_else(|| {
            SettingsError::new("critical_deals.threshold", "range", "the threshold is a whole number from 0 to 100")
        })?,
    };
    let digest_now = current.digest_for(user.role, &user.time_zone);
    let keep = current.daily_digest.as_ref().or(digest_now.as_ref());
    let quiet_now = current.quiet_window();
    let hhmm = |t: chrono::NaiveTime| t.format("%H:%M").to_string();
    let muted = match &form.muted {
        None => current.muted.clone(),
        Some(names) => Some(
            names
                .iter()
                .map(|value| {
                    AlertKind::ALL
                        .into_iter()
                        .find(|k| k.as_str() == value)
                        .ok_or_else(|| SettingsError::new("muted", "enum", format!("{value:?} is not an alert type")))
                })
                .collect::<Result<Vec<_>, _>>()?,
        ),
    };
    Ok(AlertSettings {
        critical_deals: Some(CriticalDeals {
            enabled: form.critical.unwrap_or(critical.enabled),
            channels: form.channels.clone().unwrap_or(critical.channels),
            threshold,
        }),
        daily_digest: Some(DailyDigest {
            enabled: form.digest.unwrap_or(digest_now.is_some()),
            time: form.digest_time.clone().or_else(|| keep.map(|d| d.time.clone())).unwrap_or_else(|| "08:00".into()),
            timezone: form
                .timezone
                .clone()
                .filter(|z| !z.trim().is_empty())
                .map(|z| z.trim().to_owned())
                .or_else(|| keep.map(|d| d.timezone.clone()))
                .unwrap_or_else(|| user.time_zone.clone()),
            max_deals: keep.map_or(10, |d| d.max_deals),
            min_risk_score: keep.map_or(51, |d| d.min_risk_score),
        }),
        quiet_hours: Some(QuietHours {
            enabled: form.quiet.unwrap_or(quiet_now.is_some()),
            start: form.quiet_start.clone().or_else(|| quiet_now.map(|q| hhmm(q.0))).unwrap_or_else(|| "20:00".into()),
            end: form.quiet_end.clone().or_else(|| quiet_now.map(|q| hhmm(q.1))).unwrap_or_else(|| "08:00".into()),
        }),
        muted,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_submission_changes_what_it_sends_and_keeps_the_rest() {
        let user = crate::chat::samples::sample_user();
        let current = AlertSettings::default();
        let only_threshold = Submission { threshold: Some("80".into()), ..Submission::default() };
        let s = settings_from(&only_threshold, &current, &user).expect("valid");
        let critical = s.critical_deals.clone().expect("critical");
        assert_eq!((critical.enabled, critical.threshold), (true, 80));
        assert_eq!(s.quiet_window(), current.quiet_window(), "quiet hours kept");
        assert_eq!(s.muted, None, "muted kept");
        let everything = Submission {
            critical: Some(false),
            threshold: Some("70".into()),
            channels: Some(vec!["teams".into()]),
            digest: Some(true),
            digest_time: Some("09:30".into()),
            timezone: Some(" America/New_York ".into()),
            quiet: Some(false),
            quiet_start: None,
            quiet_end: None,
            muted: Some(vec!["segment_decline".into()]),
        };
        let s = settings_from(&everything, &current, &user).expect("valid");
        let digest = s.daily_digest.clone().expect("digest");
        assert_eq!(
            (digest.enabled, digest.time.as_str(), digest.timezone.as_str()),
            (true, "09:30", "America/New_York")
        );
        assert_eq!(s.quiet_window(), None);
        assert_eq!(s.muted, Some(vec![AlertKind::SegmentDecline]));
        let bad = Submission { threshold: Some("lots".into()), ..Submission::default() };
        assert_eq!(settings_from(&bad, &current, &user).expect_err("bad").field, "critical_deals.threshold");
        let bad = Submission { muted: Some(vec!["everything".into()]), ..Submission::default() };
        assert_eq!(settings_from(&bad, &current, &user).expect_err("bad").field, "muted");
    }
}
