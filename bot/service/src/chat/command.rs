//! Chat commands as typed values: `/deal-risk`, `/pipeline` and `/dealwatch`, parsed from the
//! command name and its text by a pure function. Every platform's adapter (Slack slash commands,
//! Teams and Discord later) hands its text here; nothing below knows a wire format.

use engine::alerts::AlertKind;

/// A command a user typed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// `/deal-risk D12345` or `/deal-risk Acme`: a deal id, an account or a deal name.
    DealRisk {
        query: String,
    },
    /// `/pipeline region:APAC rep:rep_15`: the pipeline, optionally narrowed.
    Pipeline {
        filters: Vec<Filter>,
    },
    Help,
    Settings,
    /// Stop alerts of one kind for the user.
    Mute {
        kind: AlertKind,
    },
    /// Resume one kind, or every muted kind.
    Unmute {
        kind: Option<AlertKind>,
    },
    /// Change one alert setting: `/dealwatch set threshold 80`.
    Set {
        setting: Setting,
    },
}

/// One alert setting changed by a command, on platforms without a settings form (and on Slack).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Setting {
    /// Critical-deal alerts on or off.
    Critical(bool),
    /// The risk score critical-deal alerts start above.
    Threshold(u8),
    /// The channels critical-deal alerts go to (empty: wherever the user can be reached).
    Channels(Vec<String>),
    /// The daily digest at this time (`HH:MM`), or off.
    Digest(Option<String>),
    /// The time zone of the digest and quiet hours.
    TimeZone(String),
    /// Quiet hours from start to end (`HH:MM`), or none.
    Quiet(Option<(String, String)>),
}

/// One `key:value` of `/pipeline`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Filter {
    pub key: FilterKey,
    pub value: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FilterKey {
    Region,
    Industry,
    Product,
    LeadSource,
    Rep,
    Stage,
    /// A risk category: low, medium, high, critical.
    Risk,
    /// Amount at least / at most, in the deal currency.
    MinAmount,
    MaxAmount,
}

impl FilterKey {
    const NAMES: [(&'static str, FilterKey); 14] = [
        ("region", FilterKey::Region),
        ("industry", FilterKey::Industry),
        ("product", FilterKey::Product),
        ("lead_source", FilterKey::LeadSource),
        ("source", FilterKey::LeadSource),
        ("rep", FilterKey::Rep),
        ("owner", FilterKey::Rep),
        ("stage", FilterKey::Stage),
        ("risk", FilterKey::Risk),
        ("category", FilterKey::Risk),
        ("min", FilterKey::MinAmount),
        ("over", FilterKey::MinAmount),
        ("max", FilterKey::MaxAmount),
        ("under", FilterKey::MaxAmount),
    ];

    fn parse(s: &str) -> Option<FilterKey> {
        let s = s.to_ascii_lowercase().replace('-', "_");
        FilterKey::NAMES.iter().find(|(n, _)| *n == s).map(|(_, k)| *k)
    }

    /// The deal field the filter narrows (the segment column name for segment filters).
    pub fn field(self) -> &'static str {
        match self {
            FilterKey::Region => "region",
            FilterKey::Industry => "industry",
            FilterKey::Product => "product",
            FilterKey::LeadSource => "lead_source",
            FilterKey::Rep => "rep",
            FilterKey::Stage => "stage",
            FilterKey::Risk => "risk",
            FilterKey::MinAmount => "min",
            FilterKey::MaxAmount => "max",
        }
    }
}

/// Why a command's text could not be read: said back to the user with the usage.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("which deal? Try `/deal-risk D12345` or `/deal-risk Acme`")]
    MissingDeal,
    #[error("`{0}` is not a filter: use key:value, like `region:APAC` or `rep:rep_15`")]
    NotAFilter(String),
    #[error("unknown filter `{0}`: use region, industry, product, lead_source, rep, stage, risk, min or max")]
    UnknownFilter(String),
    #[error("`{key}:{value}`: {reason}")]
    BadValue { key: String, value: String, reason: String },
    #[error("an opening quote in `{0}` is never closed")]
    UnclosedQuote(String),
    #[error("unknown alert type `{0}`: use critical, digest, segment, rep, health, performer, data_quality or weekly")]
    UnknownAlertKind(String),
    #[error("`/dealwatch set {key}`: {reason}")]
    BadSetting { key: String, reason: String },
    #[error("`{0}` is not a /dealwatch command: try `/dealwatch help`")]
    UnknownSubcommand(String),
    #[error("`{0}` is not a Dealwatch command")]
    UnknownCommand(String),
}

/// Parses `command` (`/deal-risk`, with or without the slash) with its `text`.
pub fn parse(command: &str, text: &str) -> Result<Command, ParseError> {
    let text = text.trim();
    match command.trim().trim_start_matches('/').to_ascii_lowercase().as_str() {
        "deal-risk" | "dealrisk" | "deal_risk" | "risk" => {
            let query = text.trim_matches(|c| c == '"' || c == '“' || c == '”').trim();
            if query.is_empty() {
                return Err(ParseError::MissingDeal);
            }
            Ok(Command::DealRisk { query: query.to_owned() })
        }
        "pipeline" => Ok(Command::Pipeline { filters: filters(text)? }),
        "dealwatch" => {
            let (sub, rest) = text.split_once(char::is_whitespace).unwrap_or((text, ""));
            let rest = rest.trim();
            match sub.to_ascii_lowercase().as_str() {
                "" | "help" | "?" => Ok(Command::Help),
                "settings" | "config" | "preferences" => Ok(Command::Settings),
                "mute" if rest.is_empty() => Err(ParseError::UnknownAlertKind(String::new())),
                "mute" => Ok(Command::Mute { kind: alert_kind(rest)? }),
                "unmute" if rest.is_empty() || rest.eq_ignore_ascii_case("all") => Ok(Command::Unmute { kind: None }),
                "unmute" => Ok(Command::Unmute { kind: Some(alert_kind(rest)?) }),
                "set" => Ok(Command::Set { setting: setting(rest)? }),
                other => Err(ParseError::UnknownSubcommand(other.to_owned())),
            }
        }
        other => Err(ParseError::UnknownCommand(format!("/{other}"))),
    }
}

/// What `/dealwatch set` accepts, said back when it is used wrongly.
const SETTINGS: &str = "use critical on|off, threshold 0-100, channels slack,teams,discord,email, digest HH:MM|off, \
                        timezone Europe/Berlin, or quiet HH:MM-HH:MM|off";

/// `threshold 80`, `digest 09:00`, `quiet 21:00-07:00`, … as a [`Setting`].
fn setting(text: &str) -> Result<Setting, ParseError> {
    let (key, value) = text.split_once(char::is_whitespace).unwrap_or((text, ""));
    let (key, value) = (key.to_ascii_lowercase(), value.trim());
    let bad = |reason: &str| ParseError::BadSetting { key: key.clone(), reason: reason.to_owned() };
    let off = matches!(value.to_ascii_lowercase().as_str(), "off" | "no" | "none" | "false");
    let on = matches!(value.to_ascii_lowercase().as_str(), "on" | "yes" | "true");
    let time = |t: &str| -> Result<String, ParseError> {
        chrono::NaiveTime::parse_from_str(t.trim(), "%H:%M")
            .map(|t| t.format("%H:%M").to_string())
            .map_err(|_| bad(&format!("{t:?} is not a time as HH:MM")))
    };
    match key.as_str() {
        "" => Err(bad(SETTINGS)),
        "critical" | "alerts" if on || off => Ok(Setting::Critical(on)),
        "critical" | "alerts" => Err(bad("use on or off")),
        "threshold" => value
            .parse::<u8>()
            .ok()
            .filter(|t| *t <= 100)
            .map(Setting::Threshold)
            .ok_or_else(|| bad("the threshold is a whole number from 0 to 100")),
        "channels" | "channel" => {
            let channels: Vec<String> = value
                .split(|c: char| c == ',' || c.is_whitespace())
                .filter(|c| !c.is_empty())
                .map(str::to_ascii_lowercase)
                .filter(|c| !matches!(c.as_str(), "any" | "all" | "default"))
                .collect();
            if value.is_empty() {
                return Err(bad("name them: slack, teams, discord, email (or any)"));
            }
            Ok(Setting::Channels(channels))
        }
        "digest" if off => Ok(Setting::Digest(None)),
        "digest" if on => Ok(Setting::Digest(Some("08:00".into()))),
        "digest" => Ok(Setting::Digest(Some(time(value)?))),
        "timezone" | "tz" | "time_zone" if !value.is_empty() => Ok(Setting::TimeZone(value.to_owned())),
        "timezone" | "tz" | "time_zone" => Err(bad("name one, like Europe/Berlin")),
        "quiet" | "quiet_hours" if off => Ok(Setting::Quiet(None)),
        "quiet" | "quiet_hours" => {
            let (start, end) = value.split_once('-').ok_or_else(|| bad("use HH:MM-HH:MM, like 20:00-08:00, or off"))?;
            Ok(Setting::Quiet(Some((time(start)?, time(end)?))))
        }
        _ => Err(bad(SETTINGS)),
    }
}

/// An alert kind by its name or a short alias.
fn alert_kind(s: &str) -> Result<AlertKind, ParseError> {
    let key = s.trim().to_ascii_lowercase().replace(['-', ' '], "_");
    let kind = match key.as_str() {
        "critical" | "critical_deal" | "critical_deals" => Some(AlertKind::CriticalDeal),
        "digest" | "daily" | "daily_digest" => Some(AlertKind::DailyDigest),
        "segment" | "segments" | "segment_decline" | "win_rate" => Some(AlertKind::SegmentDecline),
        "rep" | "reps" | "rep_performance" => Some(AlertKind::RepPerformance),
        "health" | "pipeline_health" => Some(AlertKind::PipelineHealth),
        "performer" | "performers" | "high_performer" => Some(AlertKind::HighPerformer),
        "data" | "data_quality" | "quality" => Some(AlertKind::DataQuality),
        "weekly" | "summary" | "weekly_summary" => Some(AlertKind::WeeklySummary),
        _ => None,
    };
    kind.ok_or_else(|| ParseError::UnknownAlertKind(s.trim().to_owned()))
}

/// `key:value` tokens; a value with spaces in quotes (`region:"North America"`).
fn filters(text: &str) -> Result<Vec<Filter>, ParseError> {
    let mut out = Vec::new();
    for token in tokens(text)? {
        let Some((key, value)) = token.split_once(':') else { return Err(ParseError::NotAFilter(token)) };
        let key_name = key.trim();
        let key = FilterKey::parse(key_name).ok_or_else(|| ParseError::UnknownFilter(key_name.to_owned()))?;
        let value = value.trim().trim_matches('"').trim().to_owned();
        let bad = |reason: &str| ParseError::BadValue {
            key: key_name.to_owned(),
            value: value.clone(),
            reason: reason.to_owned(),
        };
        if value.is_empty() {
            return Err(bad("needs a value"));
        }
        let value = match key {
            FilterKey::MinAmount | FilterKey::MaxAmount => {
                money(&value).ok_or_else(|| bad("not an amount (try 50000 or 50k)"))?.to_string()
            }
            FilterKey::Risk => {
                let v = value.to_ascii_lowercase();
                if !["low", "medium", "high", "critical"].contains(&v.as_str()) {
                    return Err(bad("use low, medium, high or critical"));
                }
                v
            }
            _ => value,
        };
        out.push(Filter { key, value });
    }
    Ok(out)
}

/// Whitespace-separated tokens, where a double-quoted run (after `key:`) keeps its spaces.
fn tokens(text: &str) -> Result<Vec<String>, ParseError> {
    let mut out = Vec::new();
    let mut current = String::new();
    let mut quoted = false;
    for c in text.replace(['“', '”'], "\"").chars() {
        match c {
            '"' => {
                quoted = !quoted;
                current.push(c);
            }
            c if c.is_whitespace() && !quoted => {
                if !current.is_empty() {
                    out.push(std::mem::take(&mut current));
                }
            }
            c => current.push(c),
        }
    }
    if quoted {
        return Err(ParseError::UnclosedQuote(current));
    }
    if !current.is_empty() {
        out.push(current);
    }
    Ok(out)
}

/// `50000`, `50,000`, `$50k`, `1.2m` as a whole amount.
pub fn money(s: &str) -> Option<u64> {
    let s = s.trim().trim_start_matches('$').replace(',', "").to_ascii_lowercase();
    let (number, factor) = match s.strip_suffix('k') {
        Some(n) => (n.to_owned(), 1_000.0),
        None => match s.strip_suffix('m') {
            Some(n) => (n.to_owned(), 1_000_000.0),
            None => (s.clone(), 1.0),
        },
    };
    let value: f64 = number.parse().ok()?;
    (value.is_finite() && value >= 0.0).then(|| (value * factor).round() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(key: FilterKey, value: &str) -> Filter {
        Filter { key, value: value.to_owned() }
    }

    #[test]
    fn commands_parse_into_typed_values() {
        use Command::*;
        let cases: Vec<(&str, &str, Command)> = vec![
            ("/deal-risk", "D12345", DealRisk { query: "D12345".into() }),
            ("/deal-risk", "  Acme Corp ", DealRisk { query: "Acme Corp".into() }),
            ("/deal-risk", "\"Acme Corp\"", DealRisk { query: "Acme Corp".into() }),
            ("deal-risk", "acme", DealRisk { query: "acme".into() }),
            ("/pipeline", "", Pipeline { filters: vec![] }),
            (
                "/pipeline",
                "region:APAC rep:rep_15",
                Pipeline { filters: vec![f(FilterKey::Region, "APAC"), f(FilterKey::Rep, "rep_15")] },
            ),
            (
                "/pipeline",
                "region:\"North America\" risk:High",
                Pipeline { filters: vec![f(FilterKey::Region, "North America"), f(FilterKey::Risk, "high")] },
            ),
            (
                "/pipeline",
                "source:Referral over:$50k max:1.2m",
                Pipeline {
                    filters: vec![
                        f(FilterKey::LeadSource, "Referral"),
                        f(FilterKey::MinAmount, "50000"),
                        f(FilterKey::MaxAmount, "1200000"),
                    ],
                },
            ),
            (
                "/pipeline",
                "Lead-Source:Inbound  OWNER:rep_3",
                Pipeline { filters: vec![f(FilterKey::LeadSource, "Inbound"), f(FilterKey::Rep, "rep_3")] },
            ),
            ("/dealwatch", "", Help),
            ("/dealwatch", "help", Help),
            ("/dealwatch", "SETTINGS", Settings),
            ("/dealwatch", "mute critical", Mute { kind: AlertKind::CriticalDeal }),
            ("/dealwatch", "mute daily digest", Mute { kind: AlertKind::DailyDigest }),
            ("/dealwatch", "mute segment_decline", Mute { kind: AlertKind::SegmentDecline }),
            ("/dealwatch", "unmute", Unmute { kind: None }),
            ("/dealwatch", "unmute all", Unmute { kind: None }),
            ("/dealwatch", "unmute weekly", Unmute { kind: Some(AlertKind::WeeklySummary) }),
            ("/dealwatch", "set threshold 80", Set { setting: Setting::Threshold(80) }),
            ("/dealwatch", "set critical off", Set { setting: Setting::Critical(false) }),
            (
                "/dealwatch",
                "set channels Teams, email",
                Set { setting: Setting::Channels(vec!["teams".into(), "email".into()]) },
            ),
            ("/dealwatch", "set channels any", Set { setting: Setting::Channels(vec![]) }),
            ("/dealwatch", "set digest 9:30", Set { setting: Setting::Digest(Some("09:30".into())) }),
            ("/dealwatch", "set digest off", Set { setting: Setting::Digest(None) }),
            ("/dealwatch", "set tz America/New_York", Set { setting: Setting::TimeZone("America/New_York".into()) }),
            (
                "/dealwatch",
                "set quiet 21:00-07:00",
                Set { setting: Setting::Quiet(Some(("21:00".into(), "07:00".into()))) },
            ),
            ("/dealwatch", "set quiet off", Set { setting: Setting::Quiet(None) }),
        ];
        for (command, text, expected) in cases {
            assert_eq!(parse(command, text), Ok(expected), "{command} {text:?}");
        }
    }

    #[test]
    fn bad_command_text_says_what_is_wrong() {
        use ParseError::*;
        let bad = |key: &str, value: &str, reason: &str| BadValue {
            key: key.into(),
            value: value.into(),
            reason: reason.into(),
        };
        let cases: Vec<(&str, &str, ParseError)> = vec![
            ("/deal-risk", "", MissingDeal),
            ("/deal-risk", "  \"\" ", MissingDeal),
            ("/pipeline", "APAC", NotAFilter("APAC".into())),
            ("/pipeline", "territory:EMEA", UnknownFilter("territory".into())),
            ("/pipeline", "region:", bad("region", "", "needs a value")),
            ("/pipeline", "min:lots", bad("min", "lots", "not an amount (try 50000 or 50k)")),
            ("/pipeline", "risk:scary", bad("risk", "scary", "use low, medium, high or critical")),
            ("/pipeline", "region:\"North America", UnclosedQuote("region:\"North America".into())),
            ("/dealwatch", "mute", UnknownAlertKind(String::new())),
            ("/dealwatch", "mute everything", UnknownAlertKind("everything".into())),
            ("/dealwatch", "dance", UnknownSubcommand("dance".into())),
            (
                "/dealwatch",
                "set threshold 120",
                BadSetting { key: "threshold".into(), reason: "the threshold is a whole number from 0 to 100".into() },
            ),
            (
                "/dealwatch",
                "set digest noon",
                BadSetting { key: "digest".into(), reason: "\"noon\" is not a time as HH:MM".into() },
            ),
            (
                "/dealwatch",
                "set quiet 22:00",
                BadSetting { key: "quiet".into(), reason: "use HH:MM-HH:MM, like 20:00-08:00, or off".into() },
            ),
            ("/dealwatch", "set colour blue", BadSetting { key: "colour".into(), reason: SETTINGS.into() }),
            ("/forecast", "", UnknownCommand("/forecast".into())),
        ];
        for (command, text, expected) in cases {
            assert_eq!(parse(command, text), Err(expected), "{command} {text:?}");
        }
        let message = parse("/pipeline", "territory:EMEA").expect_err("bad").to_string();
        assert!(message.contains("region, industry"), "{message}");
    }

    #[test]
    fn amounts_read_the_way_people_write_them() {
        for (text, amount) in [("50000", 50_000), ("50,000", 50_000), ("$50k", 50_000), ("1.2M", 1_200_000), ("0", 0)] {
            assert_eq!(money(text), Some(amount), "{text}");
        }
        for text in ["", "k", "-5", "fifty", "1e400"] {
            assert_eq!(money(text), None, "{text}");
        }
    }
}
