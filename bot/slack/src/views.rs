//! Modals and the App Home tab: what they show (rendered from `prompts/slack/`), and reading a
//! submitted settings form back into [`AlertSettings`].

use serde::Serialize;
use serde_json::Value;

use alerts::settings::{AlertSettings, SettingsError};
use store::User;

pub use service::chat::form::{Choice, SettingsForm, kind_label};

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

/// The settings a submitted modal asks for (see [`service::chat::form::settings_from`]). Errors
/// name the field; [`block_of`] says under which block Slack shows them.
pub fn settings_from(view: &Value, current: &AlertSettings, user: &User) -> Result<AlertSettings, SettingsError> {
    let form = Submitted::new(view);
    let submission = service::chat::form::Submission {
        critical: Some(form.on("critical")),
        threshold: form.text("threshold"),
        channels: Some(form.checked("channels")),
        digest: Some(form.on("digest")),
        digest_time: form.time("digest_time"),
        timezone: form.text("timezone"),
        quiet: Some(form.on("quiet")),
        quiet_start: form.time("quiet_start"),
        quiet_end: form.time("quiet_end"),
        muted: Some(form.checked("muted")),
    };
    service::chat::form::settings_from(&submission, current, user)
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

pub use service::chat::actions::local;

#[cfg(test)]
mod tests {
    use super::*;
    use engine::alerts::AlertKind;
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
