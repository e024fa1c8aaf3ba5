//! Shared destinations per alert kind and tenant (seed 002: "channel per alert type"): a
//! leadership Slack channel that gets every segment decline, a sales-ops mailing list for data
//! quality, a team channel for critical deals. An admin sets them at `/v1/alerts/routes`.
//!
//! A shared destination is a recipient of its own: its alerts are deduplicated, throttled and
//! snoozed like a person's (a snooze clicked in the channel silences the channel), but it has
//! no quiet hours and no digest, so every kind routed to it goes out when it is raised. The
//! weekly summary reaches it on Monday 08:00 in the destination's own time zone. With
//! `personal: false` the people an alert concerns no longer get their own copy of that kind.

use std::collections::BTreeMap;

use engine::alerts::AlertKind;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::channels::Address;
use super::settings::SettingsError;

/// The tenant setting the routes are stored under.
pub const SETTING: &str = "alert_routes";

/// Where recipient ids of shared destinations start: `shared:slack:C0123ABCD`.
const SHARED: &str = "shared:";

/// The kinds that can be routed to a shared destination. The daily digest is personal (a
/// recipient's own deals), and high-performing segments travel in the weekly summary.
pub const ROUTABLE: [AlertKind; 6] = [
    AlertKind::CriticalDeal,
    AlertKind::SegmentDecline,
    AlertKind::RepPerformance,
    AlertKind::PipelineHealth,
    AlertKind::DataQuality,
    AlertKind::WeeklySummary,
];

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AlertRoutes {
    /// By alert kind: critical_deal, segment_decline, rep_performance, pipeline_health,
    /// data_quality or weekly_summary.
    #[serde(default)]
    pub routes: BTreeMap<String, KindRoute>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct KindRoute {
    /// The shared destinations that get every alert of this kind (at most 5).
    pub targets: Vec<RouteTarget>,
    /// Whether the people an alert concerns (owner, manager, admins) still get their own.
    #[serde(default = "yes")]
    pub personal: bool,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RouteTarget {
    /// slack, email, teams, discord or log.
    pub channel: String,
    /// A Slack channel id (C0123ABCD; the bot must be a member), an email address, or the
    /// Teams / Discord channel id.
    pub to: String,
    /// How messages and listings name it ("#sales-leadership").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The IANA time zone whose Monday 08:00 the weekly summary follows (default UTC).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timezone: Option<String>,
}

impl RouteTarget {
    /// The recipient id alerts to this destination carry.
    pub fn recipient(&self) -> String {
        format!("{SHARED}{}:{}", self.channel, self.to)
    }

    pub fn display_name(&self) -> String {
        self.name.clone().unwrap_or_else(|| match self.channel.as_str() {
            "slack" => format!("#{}", self.to),
            _ => self.to.clone(),
        })
    }

    pub fn time_zone(&self) -> chrono_tz::Tz {
        self.timezone.as_deref().and_then(|t| t.parse().ok()).unwrap_or(chrono_tz::Tz::UTC)
    }
}

/// The address behind a shared recipient id, or `None` for a person's id.
pub fn shared_address(recipient: &str) -> Option<Address> {
    let rest = recipient.strip_prefix(SHARED)?;
    let (channel, to) = rest.split_once(':')?;
    Some(Address::shared(recipient, channel, to))
}

pub fn is_shared(recipient: &str) -> bool {
    recipient.starts_with(SHARED)
}

/// Slack's channel ids: public (C), private (G), direct (D), upper-case letters and digits.
fn slack_channel_id(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some('C' | 'G' | 'D'))
        && s.len() >= 9
        && s.len() <= 20
        && chars.all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
}

const MAX_TARGETS: usize = 5;

impl AlertRoutes {
    /// Reads the stored routes; a stored value that no longer parses is logged and dropped
    /// (alerts then go to people only, never nowhere).
    pub fn from_stored(stored: Option<serde_json::Value>) -> AlertRoutes {
        match stored {
            None => AlertRoutes::default(),
            Some(v) => serde_json::from_value(v).unwrap_or_else(|e| {
                tracing::warn!(error = %e, "stored alert routes do not parse; alerts go to people only");
                AlertRoutes::default()
            }),
        }
    }

    /// Checks every route; the error names the field (`routes.segment_decline.targets[0].to`).
    pub fn validate(&self) -> Result<(), SettingsError> {
        for (kind_name, route) in &self.routes {
            let field = format!("routes.{kind_name}");
            let kind = AlertKind::parse(kind_name)
                .ok_or_else(|| SettingsError::new(&field, "enum", format!("unknown alert kind {kind_name:?}")))?;
            if !ROUTABLE.contains(&kind) {
                let names: Vec<&str> = ROUTABLE.iter().map(|k| k.as_str()).collect();
                return Err(SettingsError::new(
                    &field,
                    "routable",
                    format!("{kind_name} is personal and cannot go to a shared channel; route {}", names.join(", ")),
                ));
            }
            if route.targets.len() > MAX_TARGETS {
                return Err(SettingsError::new(
                    format!("{field}.targets"),
                    "max_items",
                    format!("at most {MAX_TARGETS} shared destinations per kind"),
                ));
            }
            if route.targets.is_empty() && !route.personal {
                return Err(SettingsError::new(
                    format!("{field}.personal"),
                    "nowhere",
                    format!("with no targets and personal false, {kind_name} alerts would reach nobody"),
                ));
            }
            for (i, t) in route.targets.iter().enumerate() {
                let at = format!("{field}.targets[{i}]");
                let to = t.to.trim();
                let ok = match t.channel.as_str() {
                    "slack" => slack_channel_id(to),
                    "email" => to.parse::<lettre::Address>().is_ok(),
                    // A Discord channel is a snowflake; a Teams conversation id has a `19:` or
                    // similar prefix (`19:…@thread.tacv2`).
                    "discord" => !to.is_empty() && to.len() <= 20 && to.bytes().all(|b| b.is_ascii_digit()),
                    "teams" => to.contains(':') && to.len() <= 300 && !to.contains(char::is_whitespace),
                    "log" => !to.is_empty() && to.len() <= 200 && !to.contains(char::is_whitespace),
                    other => {
                        return Err(SettingsError::new(
                            format!("{at}.channel"),
                            "enum",
                            format!("unknown channel {other:?}: use slack, email, teams, discord or log"),
                        ));
                    }
                };
                if !ok || to != t.to {
                    let expected = match t.channel.as_str() {
                        "slack" => "a Slack channel id such as C0123ABCD (not a #name)",
                        "email" => "an email address",
                        "discord" => "a Discord channel id (a number, from Copy Channel ID)",
                        "teams" => "a Teams conversation id such as 19:…@thread.tacv2 (the bot must be in it)",
                        _ => "an id without spaces",
                    };
                    return Err(SettingsError::new(
                        format!("{at}.to"),
                        "format",
                        format!("{:?} is not {expected}", t.to),
                    ));
                }
                if let Some(tz) = &t.timezone
                    && tz.parse::<chrono_tz::Tz>().is_err()
                {
                    return Err(SettingsError::new(
                        format!("{at}.timezone"),
                        "timezone",
                        format!("unknown time zone {tz:?}: use an IANA name like Europe/Berlin"),
                    ));
                }
            }
        }
        Ok(())
    }

    /// The shared destinations of `kind` on channels in `available`.
    pub fn targets<'a>(&'a self, kind: AlertKind, available: &'a [String]) -> impl Iterator<Item = &'a RouteTarget> {
        self.routes
            .get(kind.as_str())
            .into_iter()
            .flat_map(|r| &r.targets)
            .filter(move |t| available.contains(&t.channel))
    }

    /// Whether people still get their own alerts of `kind`.
    pub fn personal(&self, kind: AlertKind) -> bool {
        self.routes.get(kind.as_str()).is_none_or(|r| r.personal)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn routes(json: serde_json::Value) -> Result<AlertRoutes, String> {
        let routes: AlertRoutes = serde_json::from_value(json).map_err(|e| e.to_string())?;
        routes.validate().map_err(|e| format!("{}: {}", e.field, e.message))?;
        Ok(routes)
    }

    #[test]
    fn routes_are_validated_field_by_field() {
        let ok = routes(serde_json::json!({ "routes": {
            "segment_decline": { "targets": [{ "channel": "slack", "to": "C0LEADERS1", "name": "#leadership" }] },
            "data_quality": { "targets": [{ "channel": "email", "to": "ops@example.com" }], "personal": false },
            "weekly_summary": { "targets": [{ "channel": "slack", "to": "C0LEADERS1", "timezone": "Europe/Berlin" }] },
            "pipeline_health": { "targets": [{ "channel": "discord", "to": "1300000000000000001" },
                                             { "channel": "teams", "to": "19:abc@thread.tacv2" }] },
        }}))
        .expect("valid");
        let available = vec!["log".to_owned(), "slack".to_owned()];
        assert_eq!(ok.targets(AlertKind::SegmentDecline, &available).count(), 1);
        assert_eq!(ok.targets(AlertKind::DataQuality, &available).count(), 0, "email is not available");
        assert!(!ok.personal(AlertKind::DataQuality) && ok.personal(AlertKind::SegmentDecline));
        assert!(ok.personal(AlertKind::CriticalDeal));
        let t = &ok.routes["segment_decline"].targets[0];
        assert_eq!(t.recipient(), "shared:slack:C0LEADERS1");
        assert_eq!(
            shared_address(&t.recipient()).and_then(|a| a.places.get("slack").cloned()),
            Some("C0LEADERS1".to_owned())
        );
        assert!(shared_address("u_maria").is_none());

        // (routes, the field the error names)
        let bad = [
            (serde_json::json!({ "nightly": { "targets": [] } }), "routes.nightly"),
            (serde_json::json!({ "daily_digest": { "targets": [] } }), "routes.daily_digest"),
            (
                serde_json::json!({ "critical_deal": { "targets": [], "personal": false } }),
                "routes.critical_deal.personal",
            ),
            (
                serde_json::json!({ "critical_deal": { "targets": [{ "channel": "slack", "to": "#sales" }] } }),
                "routes.critical_deal.targets[0].to",
            ),
            (
                serde_json::json!({ "critical_deal": { "targets": [{ "channel": "slack", "to": "U0MARIA123" }] } }),
                "routes.critical_deal.targets[0].to",
            ),
            (
                serde_json::json!({ "rep_performance": { "targets": [{ "channel": "email", "to": "not an address" }] } }),
                "routes.rep_performance.targets[0].to",
            ),
            (
                serde_json::json!({ "segment_decline": { "targets": [{ "channel": "discord", "to": "#deal-desk" }] } }),
                "routes.segment_decline.targets[0].to",
            ),
            (
                serde_json::json!({ "segment_decline": { "targets": [{ "channel": "teams", "to": "Sales Leaders" }] } }),
                "routes.segment_decline.targets[0].to",
            ),
            (
                serde_json::json!({ "rep_performance": { "targets": [{ "channel": "pager", "to": "x" }] } }),
                "routes.rep_performance.targets[0].channel",
            ),
            (
                serde_json::json!({ "weekly_summary": { "targets": [{ "channel": "log", "to": "x", "timezone": "Mars/Base" }] } }),
                "routes.weekly_summary.targets[0].timezone",
            ),
        ];
        for (json, field) in bad {
            let err = routes(serde_json::json!({ "routes": json })).expect_err("invalid");
            assert!(err.starts_with(&format!("{field}:")), "{err} should name {field}");
        }
    }
}
