//! Modals and the App Home tab: what they show (rendered from `prompts/slack/`), and reading a
//! submitted settings form back into [`AlertSettings`].

use engine::alerts::AlertKind;
use serde::Serialize;
use serde_json::Value;

use crate::alerts::settings::{AlertSettings, CriticalDeals, DailyDigest, QuietHours, SettingsError};
use crate::store::User;

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

fn channel_label(c: &str) -> String {
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

/// A submitted view's input values: `state.values[block][action]`.
pub struct Submitted<'a>(&'a Value);

impl<'a> Submitted<'a> {
    pub fn new(view: &'a Value) -> Self {
        Submitted(&view["state"]["values"])
    }

    fn value(&self, block: &str) -> &'a Value {
        &self.0[block]["value"]
    }

    pub fn text(&self, block: &str) -> Option<String> {
        self.value(block)["value"].as_str().map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned)
    }

    pub fn time(&self, block: &str) -> Option<String> {
        self.value(block)["selected_time"].as_str().map(str::to_owned)
    }

    pub fn radio(&self, block: &str) -> Option<String> {
        self.value(block)["selected_option"]["value"].as_str().map(str::to_owned)
    }

    /// The values of the checked boxes.
    pub fn checked(&self, block: &str) -> Vec<String> {
        self.value(block)["selected_options"]
            .as_array()
            .map(|o| o.iter().filter_map(|o| o["value"].as_str().map(str::to_owned)).collect())
            .unwrap_or_default()
    }

    pub fn on(&self, block: &str) -> bool {
        self.checked(block).iter().any(|v| v == "on")
    }
}

/// Slack shows a submission's errors under the input blocks they name.
pub fn block_of(field: &str) -> &'static str {
    match field {
        "critical_deals.threshold" => "threshold",
        "critical_deals.channels" => "channels",
        "daily_digest.time" => "digest_time",
        "daily_digest.timezone" => "timezone",
        "quiet_hours.start" => "quiet_start",
        "quiet_hours.end" => "quiet_end",
        "muted" => "muted",
        _ => "timezone",
    }
}

/// The settings a submitted form asks for, keeping what the form does not show (the digest's
/// size and floor) from `current`. Errors name the form's block.
pub fn settings_from(view: &Value, current: &AlertSettings, user: &User) -> Result<AlertSettings, SettingsError> {
    let form = Submitted::new(view);
    let threshold = match form.text("threshold") {
        None => current.critical().threshold,
        Some(t) => t.parse::<u8>().ok().filter(|t| *t <= 100).ok_or_else(|| {
            SettingsError::new("critical_deals.threshold", "range", "the threshold is a whole number from 0 to 100")
        })?,
    };
    let digest_now = current.digest_for(user.role, &user.time_zone);
    let keep = current.daily_digest.as_ref().or(digest_now.as_ref());
    let timezone = form.text("timezone").unwrap_or_else(|| user.time_zone.clone());
    let mut muted = Vec::new();
    for value in form.checked("muted") {
        let kind = AlertKind::ALL
            .into_iter()
            .find(|k| k.as_str() == value)
            .ok_or_else(|| SettingsError::new("muted", "enum", format!("{value:?} is not an alert type")))?;
        muted.push(kind);
    }
    Ok(AlertSettings {
        critical_deals: Some(CriticalDeals {
            enabled: form.on("critical"),
            channels: form.checked("channels"),
            threshold,
        }),
        daily_digest: Some(DailyDigest {
            enabled: form.on("digest"),
            time: form.time("digest_time").unwrap_or_else(|| "08:00".into()),
            timezone,
            max_deals: keep.map_or(10, |d| d.max_deals),
            min_risk_score: keep.map_or(51, |d| d.min_risk_score),
        }),
        quiet_hours: Some(QuietHours {
            enabled: form.on("quiet"),
            start: form.time("quiet_start").unwrap_or_else(|| "20:00".into()),
            end: form.time("quiet_end").unwrap_or_else(|| "08:00".into()),
        }),
        muted: Some(muted),
    })
}

/// One deal on the home tab.
#[derive(Debug, Clone, Serialize)]
pub struct HomeDeal {
    pub deal_id: String,
    pub company: String,
    pub risk_score: u8,
    pub risk_category: String,
    pub amount: Option<f64>,
    pub url: Option<String>,
}

/// One alert or snooze on the home tab.
#[derive(Debug, Clone, Serialize)]
pub struct HomeLine {
    pub kind: String,
    pub subject: String,
    pub score: Option<u8>,
    pub when: String,
    pub until: String,
}

pub use crate::chat::actions::local;

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn user() -> User {
        super::super::sample_user()
    }

    fn submitted(values: &Value) -> Value {
        json!({ "state": { "values": values } })
    }

    #[test]
    fn a_submitted_form_becomes_settings() {
        let view = submitted(&json!({
            "critical": { "value": { "type": "checkboxes", "selected_options": [{ "value": "on" }] } },
            "threshold": { "value": { "type": "number_input", "value": "80" } },
            "channels": { "value": { "type": "checkboxes", "selected_options": [{ "value": "email" }] } },
            "digest": { "value": { "type": "checkboxes", "selected_options": [] } },
            "digest_time": { "value": { "type": "timepicker", "selected_time": "07:30" } },
            "timezone": { "value": { "type": "plain_text_input", "value": " America/New_York " } },
            "quiet": { "value": { "type": "checkboxes", "selected_options": [{ "value": "on" }] } },
            "quiet_start": { "value": { "type": "timepicker", "selected_time": "21:00" } },
            "quiet_end": { "value": { "type": "timepicker", "selected_time": "07:00" } },
            "muted": { "value": { "type": "checkboxes", "selected_options": [{ "value": "segment_decline" }] } }
        }));
        let s = settings_from(&view, &AlertSettings::default(), &user()).expect("valid");
        let c = s.critical_deals.as_ref().expect("critical");
        assert_eq!((c.enabled, c.threshold, c.channels.clone()), (true, 80, vec!["email".to_owned()]));
        let d = s.daily_digest.as_ref().expect("digest");
        assert_eq!((d.enabled, d.time.as_str(), d.timezone.as_str()), (false, "07:30", "America/New_York"));
        let q = s.quiet_hours.as_ref().expect("quiet");
        assert_eq!((q.enabled, q.start.as_str(), q.end.as_str()), (true, "21:00", "07:00"));
        assert_eq!(s.muted, Some(vec![AlertKind::SegmentDecline]));
        assert!(s.validate().is_ok());
        // And the form opens again with what was saved.
        let form = SettingsForm::new(&s, &user(), &["slack".into(), "email".into(), "log".into()], "home");
        assert_eq!((form.critical, form.threshold, form.digest, form.quiet), (true, 80, false, true));
        assert_eq!(
            form.channels.iter().map(|c| (c.value.as_str(), c.on)).collect::<Vec<_>>(),
            [("slack", false), ("email", true)]
        );
        assert!(form.kinds.iter().any(|k| k.value == "segment_decline" && k.on));
    }

    #[test]
    fn a_bad_value_is_reported_under_its_block() {
        let view = submitted(&json!({ "threshold": { "value": { "value": "300" } } }));
        let e = settings_from(&view, &AlertSettings::default(), &user()).expect_err("out of range");
        assert_eq!(block_of(&e.field), "threshold");
        let view = submitted(&json!({ "timezone": { "value": { "value": "Mars/Olympus" } } }));
        let s = settings_from(&view, &AlertSettings::default(), &user()).expect("read");
        let e = s.validate().expect_err("unknown zone");
        assert_eq!((block_of(&e.field), e.constraint), ("timezone", "timezone"));
    }
}
