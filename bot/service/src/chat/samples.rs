//! Sample replies, cards and users: every adapter renders them at start-up, so a template that
//! breaks fails there and not in front of a user, and the tests render them too.

use serde_json::{Value, json};

use super::Reply;
use store::User;

/// A user for the sample views.
pub fn sample_user() -> User {
    User {
        user_id: "maria".into(),
        email: Some("maria@example.com".into()),
        name: "Maria <Ops>".into(),
        crm_owner: Some("rep_15".into()),
        role: store::Role::Rep,
        manager_id: None,
        time_zone: "Europe/Berlin".into(),
        chat_ids: [("slack".to_owned(), "U1".to_owned())].into(),
    }
}

pub use crate::alerts::samples::{HOSTILE, Names, hostile, same};

/// A risk card as the engine writes it (`RiskScore` as JSON), for the start-up check and tests.
pub fn sample_card() -> Value {
    sample_card_named(&same)
}

/// [`sample_card`] with its names given by `n`.
pub fn sample_card_named(n: Names<'_>) -> Value {
    json!({
        "deal_id": n("D12345"), "company": n("Acme <Corp> & Sons"), "owner": n("rep_15"), "amount": 45000.0,
        "stage": n("Proposal"), "age_days": 95, "risk_score": 82, "risk_category": "critical", "win_probability": 0.18,
        "confidence": 0.8, "base_risk": 55.0,
        "risk_factors": [
            {"factor": n("Lead source: Partner"), "key": "segment:lead_source", "variant": "segment", "impact": 9.5,
             "description": n("Partner leads win 31% vs 45%")},
            {"factor": "Deal age", "key": "age", "variant": "age_old", "impact": 7.25,
             "description": "Open 95 days; similar deals close in 60"}],
        "positive_factors": [], "contributions": [],
        "recommendations": [{"rule": "exec", "priority": "high", "action": n("Schedule an exec sponsor call within 24 hours"),
                             "rationale": "Stalled deals recover with exec attention"}],
        "similar_deals": [{"deal_id": n("D00042"), "company": n("Bluepeak Logistics"), "outcome": "won", "amount": 41000.0,
                           "owner": n("rep_3"), "closed": "2026-03-02", "cycle_days": 48, "similarity": 0.91, "shared": [n("SaaS")]}],
        "as_of": "2026-06-10", "model_version": "add-0123abcd", "warnings": []
    })
}

/// One of every reply but the risk card, for the start-up check and the tests.
pub fn samples() -> Vec<Reply> {
    samples_named(&same)
}

/// [`samples`] with their names given by `n`.
pub fn samples_named(n: Names<'_>) -> Vec<Reply> {
    let candidate = |id: &str, company: &str| crate::chat::Candidate {
        deal_id: n(id),
        company: n(company),
        owner: Some(n("rep_15")),
        amount: Some(45_000.0),
    };
    vec![
        Reply::PickList {
            query: n("Acme"),
            candidates: vec![candidate("D1", "Acme Corp"), candidate("D2", "Acme Robotics")],
        },
        Reply::NotFound { query: n("Acmee"), suggestions: vec![candidate("D1", "Acme Corp")] },
        Reply::NotFound { query: n("Zzz"), suggestions: vec![] },
        Reply::Closed { deal_id: n("D1"), company: n("Acme"), won: true },
        Reply::Refused { query: n("D9") },
        Reply::NoModel,
        Reply::Unreadable { message: "which deal?".into() },
        Reply::Help,
        Reply::Done {
            text: "🔕 Muted segment decline alerts.".into(),
            hint: Some("Muted now: segment decline.".into()),
        },
        Reply::Answer {
            answered: Box::new(crate::chat::ask::Answered {
                template: "help.txt".into(),
                values: Value::Null,
                understood: "Understood: help".into(),
                card: None,
            }),
        },
        Reply::Answer {
            answered: Box::new(crate::chat::ask::Answered {
                template: "pipeline_summary.txt".into(),
                values: json!({ "v": sample_pipeline_named(n) }),
                understood: format!("Understood: pipeline summary · region = {}", n("APAC")),
                card: Some(Box::new(Reply::Pipeline { view: Box::new(sample_pipeline_named(n)) })),
            }),
        },
        Reply::AskBack {
            question: n("how are we <doing> & why"),
            text: "I'm not sure what you mean. Did you mean one of these?".into(),
            options: vec![
                crate::chat::ask::AskOption { intent: engine::question::Intent::WinRate, label: "Win rate".into() },
                crate::chat::ask::AskOption {
                    intent: engine::question::Intent::PipelineSummary,
                    label: "Pipeline summary".into(),
                },
            ],
        },
        Reply::Pipeline { view: Box::new(sample_pipeline_named(n)) },
        Reply::Pipeline {
            view: Box::new(crate::chat::pipeline::PipelineView {
                filters: vec![format!("region:{}", n("Nowhere"))],
                open_deals: 0,
                pipeline_value: 0.0,
                risk_adjusted_value: 0.0,
                riskiest: vec![],
                health: None,
                health_before: None,
                ..sample_pipeline_named(n)
            }),
        },
    ]
}

pub fn sample_pipeline() -> crate::chat::pipeline::PipelineView {
    sample_pipeline_named(&same)
}

/// [`sample_pipeline`] with its names given by `n`.
pub fn sample_pipeline_named(n: Names<'_>) -> crate::chat::pipeline::PipelineView {
    use engine::domain::RiskCategory;
    let line = |id: &str, score: u8| crate::chat::pipeline::RiskyLine {
        deal_id: n(id),
        company: n("Acme <Corp>"),
        owner: Some(n("rep_15")),
        amount: Some(45_000.0),
        risk_score: score,
        risk_category: RiskCategory::from_score(score),
    };
    crate::chat::pipeline::PipelineView {
        filters: vec![format!("region:{}", n("APAC")), format!("rep:{}", n("rep_15"))],
        open_deals: 42,
        pipeline_value: 2_400_000.0,
        risk_adjusted_value: 1_100_000.0,
        distribution: vec![
            (RiskCategory::Critical, 3),
            (RiskCategory::High, 10),
            (RiskCategory::Medium, 19),
            (RiskCategory::Low, 10),
        ],
        riskiest: vec![line("D1", 91), line("D2", 88), line("D3", 80), line("D4", 77), line("D5", 76)],
        health: Some(68.4),
        health_before: Some(71.6),
        model_version: "add-0123abcd".into(),
        as_of: chrono::NaiveDate::from_ymd_opt(2026, 6, 10).expect("a date"),
    }
}

/// Checks, for the tests, that what a template drew from [`hostile`] names left their markup
/// inert on each platform. (Compiled always: the adapters' tests, in other crates, call it.)
pub mod inert {
    use serde_json::{Map, Value};

    /// Every string of every object of `value` that `pick` selects.
    fn strings<'a>(value: &'a Value, pick: fn(&'a Map<String, Value>) -> Vec<&'a str>, out: &mut Vec<&'a str>) {
        match value {
            Value::Object(map) => {
                out.extend(pick(map));
                map.values().for_each(|v| strings(v, pick, out));
            }
            Value::Array(items) => items.iter().for_each(|v| strings(v, pick, out)),
            _ => {}
        }
    }

    fn text<'a>(map: &'a Map<String, Value>, key: &str) -> Option<&'a str> {
        map.get(key).and_then(Value::as_str)
    }

    fn refuse(what: &str, drawn: &[&str], live: &[&str]) -> anyhow::Result<()> {
        for s in drawn {
            if let Some(found) = live.iter().find(|l| s.contains(*l)) {
                anyhow::bail!("{what}: {found:?} is live markup in {s:?}");
            }
        }
        Ok(())
    }

    /// The texts Slack reads as mrkdwn.
    fn mrkdwn(m: &Map<String, Value>) -> Vec<&str> {
        if text(m, "type") == Some("mrkdwn") { text(m, "text").into_iter().collect() } else { Vec::new() }
    }

    /// Slack: no mention or link from a name in any mrkdwn text, nor in a message's fallback
    /// text (which notifications read as mrkdwn too).
    pub fn slack(message: &Value) -> anyhow::Result<()> {
        let mut drawn: Vec<&str> = message.get("text").and_then(Value::as_str).into_iter().collect();
        strings(message, mrkdwn, &mut drawn);
        refuse("Slack mrkdwn", &drawn, &["<!channel>", "<@U0BOSS>", "<https://evil.example", "<@&42>"])
    }

    const MARKDOWN: [&str; 3] = ["[Log in](https://evil.example)", "**now**", "<@&42>"];

    /// The texts an Adaptive Card reads as Markdown: TextBlocks, and facts (a title and a value,
    /// no type).
    fn card_markdown(m: &Map<String, Value>) -> Vec<&str> {
        match text(m, "type") {
            Some("TextBlock") => text(m, "text").into_iter().collect(),
            None if m.contains_key("title") && m.contains_key("value") => {
                [text(m, "title"), text(m, "value")].into_iter().flatten().collect()
            }
            _ => Vec::new(),
        }
    }

    /// Teams: no link or emphasis from a name in a TextBlock or a fact (both read Markdown).
    pub fn teams(card: &Value) -> anyhow::Result<()> {
        let mut drawn = Vec::new();
        strings(card, card_markdown, &mut drawn);
        refuse("Teams Markdown", &drawn, &MARKDOWN)
    }

    /// The texts Discord reads as Markdown: content, an embed's description, a field's value.
    fn discord_markdown(m: &Map<String, Value>) -> Vec<&str> {
        let mut out: Vec<&str> = ["content", "description"].into_iter().filter_map(|k| text(m, k)).collect();
        if m.contains_key("name") && m.contains_key("value") {
            out.extend(text(m, "value"));
        }
        out
    }

    /// Discord: no link, emphasis or mention from a name in a message's content, an embed's
    /// description or a field; and the message allows no mention to ping.
    pub fn discord(message: &Value) -> anyhow::Result<()> {
        let mut drawn = Vec::new();
        strings(message, discord_markdown, &mut drawn);
        refuse("Discord Markdown", &drawn, &MARKDOWN)?;
        if message.get("content").is_some() || message.get("embeds").is_some() {
            anyhow::ensure!(
                message.pointer("/allowed_mentions/parse") == Some(&Value::Array(Vec::new())),
                "a Discord message that may ping: {message}"
            );
        }
        Ok(())
    }
}
