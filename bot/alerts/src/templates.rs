//! Alert messages from the Tera templates in `prompts/alerts/`: for each kind a subject line,
//! a plain-text body (log, email), an HTML body (email) and Slack Block Kit blocks. Loaded and
//! checked once at start-up (bundled, or from `--prompts DIR/alerts`); a template that does not
//! parse, or Block Kit that is not JSON, fails there and not at 3 a.m.

use std::collections::HashMap;
use std::path::Path;

use anyhow::Context as _;
use engine::alerts::AlertKind;
use tera::{Context, Tera, Value};

use super::Alert;

/// The kinds that have templates: every kind. A person gets P2 findings inside the daily digest
/// (which renders them in a line each) and P3 in the weekly summary; a shared channel they are
/// routed to gets them on their own.
pub const RENDERED: [AlertKind; 8] = AlertKind::ALL;

/// The four parts of every kind's message.
const PARTS: [&str; 4] = ["subject", "txt", "html", "slack.json"];

macro_rules! bundled {
    ($($kind:literal),*) => {
        [$(
            (concat!($kind, ".subject"), include_str!(concat!("../../../prompts/alerts/", $kind, ".subject.tera"))),
            (concat!($kind, ".txt"), include_str!(concat!("../../../prompts/alerts/", $kind, ".txt.tera"))),
            (concat!($kind, ".html"), include_str!(concat!("../../../prompts/alerts/", $kind, ".html.tera"))),
            (concat!($kind, ".slack.json"), include_str!(concat!("../../../prompts/alerts/", $kind, ".slack.json.tera"))),
        )*]
    };
}

const BUNDLED: [(&str, &str); 32] = bundled!(
    "critical_deal",
    "daily_digest",
    "segment_decline",
    "rep_performance",
    "pipeline_health",
    "high_performer",
    "data_quality",
    "weekly_summary"
);

/// A rendered alert, in every format a channel may want.
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    pub alert_id: String,
    pub subject: String,
    pub text: String,
    pub html: String,
    /// Slack Block Kit blocks (a JSON array).
    pub blocks: Value,
    /// Files that go with it (the weekly summary's chart).
    pub attachments: Vec<Attachment>,
}

impl Message {
    /// The text a Slack message carries beside its blocks (notifications show it, as mrkdwn):
    /// the subject, escaped.
    pub fn slack_text(&self) -> String {
        mrkdwn(&self.subject)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Attachment {
    pub filename: String,
    pub content_type: String,
    pub bytes: Vec<u8>,
}

#[derive(Debug)]
pub struct Templates {
    tera: Tera,
    /// `https://crm.example.com/deals/{deal_id}`: the deal's page, for "View deal" links.
    deal_url: Option<String>,
}

impl Templates {
    /// The bundled templates, or those in `prompts_dir/alerts/` where it has them.
    pub fn load(prompts_dir: Option<&Path>, deal_url: Option<String>) -> anyhow::Result<Templates> {
        let mut sources: Vec<(String, String)> =
            BUNDLED.iter().map(|(name, text)| ((*name).to_owned(), (*text).to_owned())).collect();
        if let Some(dir) = prompts_dir {
            for (name, text) in &mut sources {
                let path = dir.join("alerts").join(format!("{name}.tera"));
                if path.is_file() {
                    *text = std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
                }
            }
        }
        // Charts need a font: the configured one if the caller loaded it first, else the system's.
        super::chart::load_font(None);
        let mut tera = Tera::default();
        tera.add_raw_templates(sources).context("parsing the alert templates in prompts/alerts")?;
        register_filters(&mut tera);
        let templates = Templates { tera, deal_url };
        templates.check()?;
        Ok(templates)
    }

    /// Renders every kind once with a sample alert: a template that names a missing field or
    /// produces invalid Block Kit fails at start-up.
    fn check(&self) -> anyhow::Result<()> {
        for kind in RENDERED {
            for name in PARTS.map(|p| format!("{}.{p}", kind.as_str())) {
                anyhow::ensure!(
                    self.tera.get_template_names().any(|n| n == name),
                    "prompts/alerts has no template {name}.tera"
                );
            }
            self.render(&sample(kind)).with_context(|| format!("rendering a sample {} alert", kind.as_str()))?;
        }
        Ok(())
    }

    pub fn render(&self, alert: &Alert) -> anyhow::Result<Message> {
        let kind = alert.kind.as_str();
        let mut context = match &alert.payload {
            Value::Object(map) => Context::from_value(Value::Object(map.clone()))?,
            _ => Context::new(),
        };
        context.insert("alert_id", &alert.alert_id);
        context.insert("kind", kind);
        context.insert("priority", alert.priority.as_str());
        context.insert("nl", "\n");
        let deal_id = alert.payload.pointer("/deal/deal_id").and_then(Value::as_str);
        if let (Some(url), Some(id)) = (&self.deal_url, deal_id) {
            context.insert("deal_url", &url.replace("{deal_id}", &urlencoding(id)));
        }
        let mut attachments = Vec::new();
        if let Some(series) = alert.payload.get("series") {
            let series: Vec<engine::insights::trend::QuarterSeries> = serde_json::from_value(series.clone())?;
            match super::chart::win_rate_png(&series, "Win rate by quarter") {
                Ok(bytes) => attachments.push(Attachment {
                    filename: "win-rate-by-quarter.png".into(),
                    content_type: "image/png".into(),
                    bytes,
                }),
                Err(e) => tracing::warn!(error = %e, "no chart for this summary"),
            }
        }
        context.insert("chart_attached", &!attachments.is_empty());
        let render = |part: &str| {
            self.tera.render(&format!("{kind}.{part}"), &context).with_context(|| format!("template {kind}.{part}"))
        };
        let blocks_text = render("slack.json")?;
        let blocks: Value = serde_json::from_str(&blocks_text)
            .with_context(|| format!("template {kind}.slack.json did not produce JSON:\n{blocks_text}"))?;
        anyhow::ensure!(blocks.is_array(), "template {kind}.slack.json must produce an array of blocks");
        Ok(Message {
            alert_id: alert.alert_id.clone(),
            subject: render("subject")?.trim().to_owned(),
            text: render("txt")?,
            html: render("html")?,
            blocks,
            attachments,
        })
    }
}

/// The filters every message template may use: `money` ($45K), `slack` (mrkdwn escaping) and
/// `md` (Markdown escaping, for Teams' Adaptive Cards and Discord). Every value that comes from
/// the CRM or a person goes through the escaping of the markup it lands in, so a deal named
/// `<!channel>` or `[Log in](https://…)` shows as written and does nothing.
pub fn register_filters(tera: &mut Tera) {
    tera.register_filter("money", money_filter);
    tera.register_filter("slack", slack_escape);
    tera.register_filter("md", markdown_escape);
}

fn money_filter(value: &Value, _: &HashMap<String, Value>) -> tera::Result<Value> {
    let amount = value.as_f64().ok_or_else(|| tera::Error::msg(format!("money: {value} is not a number")))?;
    Ok(Value::String(money(amount)))
}

/// `$850`, `$45K`, `$1.2M`: amounts as the seeds write them.
pub fn money(amount: f64) -> String {
    match amount.abs() {
        a if a >= 999_500.0 => format!("${:.1}M", amount / 1e6).replace(".0M", "M"),
        a if a >= 1_000.0 => format!("${:.0}K", amount / 1e3),
        _ => format!("${amount:.0}"),
    }
}

/// A template value as text: a string as it is, anything else as JSON.
fn text_of(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Escapes the three characters Slack's mrkdwn reserves.
fn slack_escape(value: &Value, _: &HashMap<String, Value>) -> tera::Result<Value> {
    Ok(Value::String(mrkdwn(&text_of(value))))
}

/// `text` with the three characters Slack's mrkdwn reserves escaped: no mention, channel ping
/// or link can come from it.
pub fn mrkdwn(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

/// Escapes what Markdown (CommonMark, Teams' and Discord's flavours) reads as markup, with a
/// backslash: emphasis, code, links (`[…](…)`), headings, quotes, strike-through, spoilers,
/// and `<…>` (Discord's mentions and timestamps, HTML).
fn markdown_escape(value: &Value, _: &HashMap<String, Value>) -> tera::Result<Value> {
    Ok(Value::String(markdown(&text_of(value))))
}

/// `text` with Markdown's markup characters escaped.
pub fn markdown(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if matches!(c, '\\' | '*' | '_' | '~' | '`' | '|' | '>' | '<' | '#' | '[' | ']') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

pub fn urlencoding(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// A representative alert of `kind`, for checking templates.
pub fn sample(kind: AlertKind) -> Alert {
    sample_named(kind, &super::samples::same)
}

/// The payload fields of a sample alert that hold what the CRM or a person wrote: deal ids and
/// names, owners, stages, segment values, field names, reps.
const NAMED: [&str; 16] = [
    "deal_id",
    "company",
    "owner",
    "stage",
    "current_stage",
    "rep_id",
    "rep",
    "label",
    "field",
    "description",
    "action",
    "recipient_name",
    "owners",
    "subject",
    "factor",
    "segment",
];

/// [`sample`] with the names in it given by `n`.
pub fn sample_named(kind: AlertKind, n: super::samples::Names<'_>) -> Alert {
    fn rename(value: &mut Value, n: super::samples::Names<'_>, named: bool) {
        match value {
            Value::String(s) if named => *s = n(s),
            Value::Array(items) => items.iter_mut().for_each(|v| rename(v, n, named)),
            Value::Object(map) => {
                for (key, v) in map.iter_mut() {
                    rename(v, n, NAMED.contains(&key.as_str()));
                }
            }
            _ => {}
        }
    }
    let mut alert = sample_of(kind);
    rename(&mut alert.payload, n, false);
    alert.subject = n(&alert.subject);
    alert
}

fn sample_of(kind: AlertKind) -> Alert {
    let deal = serde_json::json!({
        "deal_id": "D12345", "company": "Acme <Corp> & Sons", "owner": "rep_15", "amount": 45000.0,
        "stage": "Proposal", "risk_score": 82, "risk_category": "critical", "model_version": "add-0123abcd",
        "risk_factors": [
            {"factor": "Lead source: Partner", "impact": 9.5, "description": "Partner leads win 31% vs 45%"},
            {"factor": "Deal age", "impact": 7.25, "description": "Open 95 days; similar deals close in 60"},
        ],
        "recommendations": [{"action": "Schedule an exec sponsor call within 24 hours", "priority": "high"}],
    });
    let window = serde_json::json!({ "after": "2026-03-31", "through": "2026-06-10" });
    let payload = match kind {
        AlertKind::DailyDigest => serde_json::json!({
            "date": "2026-06-10", "weekday": "Wednesday", "recipient_name": "Omar",
            "deals": [{"deal_id": "D12345", "company": "Acme <Corp> & Sons", "amount": 45000.0, "risk_score": 82,
                       "risk_category": "critical", "rep_id": "rep_15", "current_stage": "Proposal"}],
            "summary": {"total_count": 1, "total_at_risk_revenue": 45000.0, "average_risk_score": 82.0,
                        "deals_by_category": {"critical": 1}},
            "alerts": [
                {"kind": "rep_performance", "subject": "rep_15", "finding": {"rep": "rep_15", "risk_flag": true,
                 "avg_risk": 68.0, "team_avg_risk": 48.0, "trend": "declining",
                 "recent": {"won": 4, "closed": 18, "rate": 0.22, "window": window},
                 "history": {"won": 30, "closed": 88, "rate": 0.34, "window": window}}},
                {"kind": "data_quality", "subject": "amount", "finding": {"field": "amount", "recent": 0.61, "before": 0.93, "recent_deals": 120}},
                {"kind": "data_quality", "subject": "deal_volume", "finding": {"series": "deal_volume", "value": 12.0, "median": 41.0,
                 "spread": 5.9, "z": -4.9, "history_weeks": 26, "week": {"after": "2026-06-03", "through": "2026-06-10"}}},
            ],
        }),
        AlertKind::SegmentDecline => serde_json::json!({ "recipient_name": "Omar", "finding": {
            "label": "HealthTech", "comparison": "quarter_to_date",
            "current": {"won": 19, "closed": 45, "rate": 0.42, "window": window},
            "prior": {"won": 41, "closed": 76, "rate": 0.54, "window": window},
            "change": -0.12, "interval": [-0.29, -0.01], "p_value": 0.004, "q_value": 0.03,
            "losses": 26, "expected_losses": 20.7, "open_deals": 23, "open_value": 1200000.0, "owners": ["rep_3", "rep_9"],
        }}),
        AlertKind::RepPerformance => serde_json::json!({ "recipient_name": "Omar", "finding": {
            "rep": "rep_15", "open_deals": 12, "open_value": 450000.0, "avg_risk": 68.0, "team_avg_risk": 48.0,
            "risk_flag": true, "trend": "declining", "momentum": 0.65, "p_value": 0.001, "q_value": 0.02,
            "recent": {"won": 4, "closed": 18, "rate": 0.22, "window": window},
            "history": {"won": 30, "closed": 88, "rate": 0.34, "window": window},
            "low_segment_share": 0.6, "team_low_segment_share": 0.35, "velocity": -0.31,
        }}),
        AlertKind::HighPerformer => serde_json::json!({ "recipient_name": "Ada", "finding": {
            "label": "FinTech + Referral", "rate": {"won": 58, "closed": 100, "rate": 0.58, "window": window},
            "company_rate": 0.47, "lift": 0.12, "interval": [0.02, 0.21], "p_value": 0.001, "q_value": 0.01,
            "velocity": 1.5, "open_deals": 14, "open_value": 610000.0,
        }}),
        AlertKind::DataQuality => serde_json::json!({ "recipient_name": "Ada", "finding": {
            "field": "amount", "recent": 0.61, "before": 0.93, "recent_deals": 120,
        }}),
        AlertKind::PipelineHealth => serde_json::json!({ "recipient_name": "Ada", "finding": {
            "index": 58.0, "previous": 72.0, "pipeline_value": 4800000.0, "risk_adjusted_value": 2100000.0,
            "optimism_gap": 2700000.0,
            "components": [{"component": "win_rate", "value": 0.45, "baseline": 0.52, "previous": 0.5, "score": 55.0, "weight": 0.3}],
        }}),
        AlertKind::WeeklySummary => serde_json::json!({
            "week": "2026-W24", "as_of": "2026-06-08", "recipient_name": "Ada", "tested": 212,
            "health": {"index": 58.0, "previous": 72.0, "pipeline_value": 4800000.0, "risk_adjusted_value": 2100000.0,
                       "optimism_gap": 2700000.0, "components": []},
            "segment_changes": [{"label": "HealthTech", "comparison": "quarter_to_date",
                "current": {"won": 19, "closed": 45, "rate": 0.42, "window": window},
                "prior": {"won": 41, "closed": 76, "rate": 0.54, "window": window},
                "change": -0.12, "interval": [-0.29, -0.01], "q_value": 0.03, "open_deals": 23, "open_value": 1200000.0}],
            "high_performers": [{"label": "FinTech + Referral", "rate": {"won": 58, "closed": 100, "rate": 0.58, "window": window},
                "company_rate": 0.47, "velocity": 1.5}],
            "reps": [{"rep": "rep_5", "risk_flag": false, "recent": {"won": 4, "closed": 18, "rate": 0.22, "window": window},
                "history": {"won": 30, "closed": 88, "rate": 0.34, "window": window}}],
            "series": [{"label": "all deals", "points": [
                {"quarter": "2026 Q1", "won": 90, "closed": 200, "rate": 0.45},
                {"quarter": "2026 Q2", "won": 80, "closed": 190, "rate": 0.42}]}],
        }),
        _ => serde_json::json!({ "deal": deal, "previous_score": 68, "threshold": 75, "recipient_name": "Maria" }),
    };
    Alert {
        alert_id: "0190f0e2-0000-7000-8000-000000000000".into(),
        kind,
        priority: kind.priority(),
        subject: "D12345".into(),
        recipient: "maria".into(),
        channel: "log".into(),
        dedup_key: "sample".into(),
        payload,
        score: Some(82),
        state: super::AlertState::Pending,
        attempts: 0,
        created_at: chrono::DateTime::from_timestamp(1_780_000_000, 0).unwrap_or_default(),
        due_ms: 0,
        sent_at: None,
        last_error: None,
        external_id: None,
        escalated_from: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_critical_deal_alert_renders_like_the_seed_in_every_format() {
        let templates =
            Templates::load(None, Some("https://crm.example.com/deals/{deal_id}".into())).expect("bundled templates");
        let m = templates.render(&sample(AlertKind::CriticalDeal)).expect("render");
        assert_eq!(m.subject, "URGENT: High-risk deal - Acme <Corp> & Sons ($45K)");
        for needle in [
            "CRITICAL DEAL ALERT",
            "Deal: D12345 - Acme <Corp> & Sons ($45K)",
            "Risk Score: 82/100 (CRITICAL), up from 68",
            "- Partner leads win 31% vs 45% (+9.5 pts)",
            "1. Schedule an exec sponsor call within 24 hours",
            "View deal: https://crm.example.com/deals/D12345",
        ] {
            assert!(m.text.contains(needle), "text lacks {needle:?}:\n{}", m.text);
        }
        // HTML escapes the company name; Slack mrkdwn escapes it its own way.
        assert!(m.html.contains("Acme &lt;Corp&gt; &amp; Sons"), "{}", m.html);
        let blocks = m.blocks.as_array().expect("blocks");
        let text = serde_json::to_string(&m.blocks).expect("json");
        assert!(text.contains("Acme &lt;Corp&gt; &amp; Sons"), "{text}");
        assert!(text.contains("*Top risk factors*\\n• Partner leads win 31% vs 45% (+9.5 pts)"), "{text}");
        let actions = blocks.iter().find(|b| b["type"] == "actions").expect("an actions block");
        let ids: Vec<&str> =
            actions["elements"].as_array().expect("elements").iter().filter_map(|e| e["action_id"].as_str()).collect();
        assert_eq!(ids, ["open_deal", "task", "snooze", "useful", "false_alarm"]);
        assert_eq!(actions["block_id"], "alert:0190f0e2-0000-7000-8000-000000000000");
        // Every block is one Slack knows: the Slack adapter checks them with slack-morphism.
    }

    #[test]
    fn digests_and_insight_alerts_render_like_the_seeds() {
        let templates = Templates::load(None, None).expect("bundled templates");
        let digest = templates.render(&sample(AlertKind::DailyDigest)).expect("digest");
        assert_eq!(digest.subject, "Daily pipeline digest, Wednesday 2026-06-10: 1 high-risk deal, 3 findings");
        for needle in [
            "1. Acme <Corp> & Sons (D12345) $45K - 82/100 risk, Proposal, rep_15",
            "- Rep rep_15: average deal risk 68 vs team 48; recent win rate 22% vs 34% historically",
            "- Data quality: amount is filled on 61% of new deals, down from 93%",
            "- Data quality: 12 new deals in the week to 2026-06-10, against a usual 41",
        ] {
            assert!(digest.text.contains(needle), "digest lacks {needle:?}:\n{}", digest.text);
        }
        let decline = templates.render(&sample(AlertKind::SegmentDecline)).expect("decline");
        assert_eq!(decline.subject, "Win rate decline: HealthTech (42% vs 54%)");
        for needle in [
            "Current quarter: 42% win rate (19 of 45 closed)",
            "Change: -12 percentage points",
            "26 losses (vs 20.7 expected)",
            "$1.2M",
        ] {
            assert!(decline.text.contains(needle), "decline lacks {needle:?}:\n{}", decline.text);
        }
        let health = templates.render(&sample(AlertKind::PipelineHealth)).expect("health");
        assert_eq!(health.subject, "Pipeline Health Index: 58/100 (down from 72 last month)");
    }

    #[test]
    fn rep_data_quality_and_high_performer_alerts_render_like_the_seeds() {
        let templates = Templates::load(None, None).expect("bundled templates");
        // Seed 000 "Rep Performance Alert" and seed 001 "Rep Performance Shift".
        let rep = templates.render(&sample(AlertKind::RepPerformance)).expect("rep");
        assert_eq!(rep.subject, "Rep performance review needed: rep_15 (win rate 22% vs 34%)");
        for needle in [
            "Rep: rep_15",
            "Average Deal Risk: 68 (Team Avg: 48)",
            "Pipeline: 12 deals, $450K",
            "Momentum Index: 0.65 (declining)",
            "Recent Win Rate: 22% (4 of 18) vs Historical: 34% (30 of 88)",
            "- Lead qualification: 60% of open deals in low-win-rate segments (team 35%)",
            "- Slow deal progression (velocity -0.31",
        ] {
            assert!(rep.text.contains(needle), "rep alert lacks {needle:?}:\n{}", rep.text);
        }
        // Seed 001 "High-Performing Segment Identified".
        let green = templates.render(&sample(AlertKind::HighPerformer)).expect("performer");
        for needle in ["Segment: FinTech + Referral", "Win Rate: 58% (58 of 100) vs. company avg 47%", "1.5x faster"] {
            assert!(green.text.contains(needle), "performer lacks {needle:?}:\n{}", green.text);
        }
        let quality = templates.render(&sample(AlertKind::DataQuality)).expect("quality");
        assert_eq!(quality.subject, "Data quality: amount filled on 61% of new deals (was 93%)");
        // The other data-quality finding: a drop in weekly deal volume.
        let mut volume = sample(AlertKind::DataQuality);
        volume.payload["finding"] = serde_json::json!({ "series": "deal_volume", "value": 12.0, "median": 41.0,
            "spread": 5.9, "z": -4.9, "history_weeks": 26, "week": {"after": "2026-06-03", "through": "2026-06-10"} });
        let volume = templates.render(&volume).expect("volume");
        assert_eq!(volume.subject, "Data quality: 12 new deals last week, usually 41");
        assert!(volume.text.contains("broken sync"), "{}", volume.text);
        // A halted Salesforce sync: what failed and how to resume, on every channel.
        let mut halted = sample(AlertKind::DataQuality);
        halted.payload["finding"] = serde_json::json!({ "sync": "Salesforce", "halted_at": "2026-12-03 07:30 UTC",
            "error": "No such column 'Risk_Score__c' on entity 'Opportunity'", "resume": "dealwatch sync --tenant acme" });
        let halted = templates.render(&halted).expect("halted sync");
        assert_eq!(halted.subject, "Data quality: the Salesforce sync is halted");
        for text in [&halted.text, &halted.html, &halted.blocks.to_string()] {
            assert!(text.contains("Risk_Score__c") && text.contains("dealwatch sync --tenant acme"), "{text}");
        }
    }

    #[test]
    fn the_weekly_summary_carries_its_chart_as_a_png() {
        let templates = Templates::load(None, None).expect("bundled templates");
        let m = templates.render(&sample(AlertKind::WeeklySummary)).expect("weekly");
        assert_eq!(m.subject, "Weekly pipeline summary 2026-W24: health 58/100");
        for needle in [
            "- HealthTech: 42% vs 54% (-12 points; 23 open deals, $1.2M)",
            "- FinTech + Referral: 58% win rate vs 47% for the company, 1.5x faster",
            "- rep_5: recent win rate 22% vs 34%",
        ] {
            assert!(m.text.contains(needle), "summary lacks {needle:?}:\n{}", m.text);
        }
        if super::super::chart::load_font(None).is_none() {
            eprintln!("notice: no system font (fonts-dejavu-core); the chart is left out");
            assert!(m.attachments.is_empty() && m.text.contains("No chart"));
            return;
        }
        let chart = &m.attachments[0];
        assert_eq!((chart.filename.as_str(), chart.content_type.as_str()), ("win-rate-by-quarter.png", "image/png"));
        assert!(chart.bytes.starts_with(b"\x89PNG\r\n\x1a\n"), "a PNG");
        let image = image::load_from_memory(&chart.bytes).expect("decodes");
        assert_eq!((image.width(), image.height()), (800, 420));
        assert!(m.text.contains("Chart attached"));
        if let Ok(path) = std::env::var("DEALWATCH_SAVE_CHART") {
            std::fs::write(path, &chart.bytes).expect("save the chart");
        }
    }

    #[test]
    fn amounts_read_like_the_seeds() {
        let none = HashMap::new();
        for (amount, text) in [(850.0, "$850"), (45_000.0, "$45K"), (1_200_000.0, "$1.2M"), (2_000_000.0, "$2M")] {
            assert_eq!(money_filter(&Value::from(amount), &none).expect("money"), Value::String(text.into()));
        }
    }

    #[test]
    fn a_broken_template_in_the_prompts_directory_fails_at_load() {
        let dir = tempfile::tempdir().expect("dir");
        std::fs::create_dir_all(dir.path().join("alerts")).expect("mkdir");
        std::fs::write(dir.path().join("alerts/critical_deal.slack.json.tera"), "[{{ deal.company }}]").expect("write");
        let e = Templates::load(Some(dir.path()), None).expect_err("not JSON");
        assert!(format!("{e:#}").contains("did not produce JSON"), "{e:#}");
        std::fs::write(dir.path().join("alerts/critical_deal.txt.tera"), "{% if %}").expect("write");
        assert!(Templates::load(Some(dir.path()), None).is_err(), "syntax error");
    }
}
