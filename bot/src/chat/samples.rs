//! Sample replies, cards and users: every adapter renders them at start-up, so a template that
//! breaks fails there and not in front of a user, and the tests render them too.

use serde_json::{Value, json};

use super::Reply;
use crate::store::User;

/// A user for the sample views.
pub fn sample_user() -> User {
    User {
        user_id: "maria".into(),
        email: Some("maria@example.com".into()),
        name: "Maria <Ops>".into(),
        crm_owner: Some("rep_15".into()),
        role: crate::store::Role::Rep,
        manager_id: None,
        time_zone: "Europe/Berlin".into(),
        slack_user_id: Some("U1".into()),
        teams_user_id: None,
        discord_user_id: None,
    }
}

/// A risk card as the engine writes it (`RiskScore` as JSON), for the start-up check and tests.
pub fn sample_card() -> Value {
    json!({
        "deal_id": "D12345", "company": "Acme <Corp> & Sons", "owner": "rep_15", "amount": 45000.0,
        "stage": "Proposal", "age_days": 95, "risk_score": 82, "risk_category": "critical", "win_probability": 0.18,
        "confidence": 0.8, "base_risk": 55.0,
        "risk_factors": [
            {"factor": "Lead source: Partner", "key": "segment:lead_source", "variant": "segment", "impact": 9.5,
             "description": "Partner leads win 31% vs 45%"},
            {"factor": "Deal age", "key": "age", "variant": "age_old", "impact": 7.25,
             "description": "Open 95 days; similar deals close in 60"}],
        "positive_factors": [], "contributions": [],
        "recommendations": [{"rule": "exec", "priority": "high", "action": "Schedule an exec sponsor call within 24 hours",
                             "rationale": "Stalled deals recover with exec attention"}],
        "similar_deals": [{"deal_id": "D00042", "company": "Bluepeak Logistics", "outcome": "won", "amount": 41000.0,
                           "owner": "rep_3", "closed": "2026-03-02", "cycle_days": 48, "similarity": 0.91, "shared": ["SaaS"]}],
        "as_of": "2026-06-10", "model_version": "add-0123abcd", "warnings": []
    })
}

/// One of every reply but the risk card, for the start-up check and the tests.
pub fn samples() -> Vec<Reply> {
    let candidate = |id: &str, company: &str| crate::chat::Candidate {
        deal_id: id.into(),
        company: company.into(),
        owner: Some("rep_15".into()),
        amount: Some(45_000.0),
    };
    vec![
        Reply::PickList {
            query: "Acme".into(),
            candidates: vec![candidate("D1", "Acme Corp"), candidate("D2", "Acme Robotics")],
        },
        Reply::NotFound { query: "Acmee".into(), suggestions: vec![candidate("D1", "Acme Corp")] },
        Reply::NotFound { query: "Zzz".into(), suggestions: vec![] },
        Reply::Closed { deal_id: "D1".into(), company: "Acme".into(), won: true },
        Reply::Refused { query: "D9".into() },
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
                values: json!({ "v": sample_pipeline() }),
                understood: "Understood: pipeline summary · region = APAC".into(),
                card: Some(Box::new(Reply::Pipeline { view: Box::new(sample_pipeline()) })),
            }),
        },
        Reply::AskBack {
            question: "how are we <doing> & why".into(),
            text: "I'm not sure what you mean. Did you mean one of these?".into(),
            options: vec![
                crate::chat::ask::AskOption { intent: engine::question::Intent::WinRate, label: "Win rate".into() },
                crate::chat::ask::AskOption {
                    intent: engine::question::Intent::PipelineSummary,
                    label: "Pipeline summary".into(),
                },
            ],
        },
        Reply::Pipeline { view: Box::new(sample_pipeline()) },
        Reply::Pipeline {
            view: Box::new(crate::chat::pipeline::PipelineView {
                filters: vec!["region:Nowhere".into()],
                open_deals: 0,
                pipeline_value: 0.0,
                risk_adjusted_value: 0.0,
                riskiest: vec![],
                health: None,
                health_before: None,
                ..sample_pipeline()
            }),
        },
    ]
}

pub fn sample_pipeline() -> crate::chat::pipeline::PipelineView {
    use engine::domain::RiskCategory;
    let line = |id: &str, score: u8| crate::chat::pipeline::RiskyLine {
        deal_id: id.into(),
        company: "Acme <Corp>".into(),
        owner: Some("rep_15".into()),
        amount: Some(45_000.0),
        risk_score: score,
        risk_category: RiskCategory::from_score(score),
    };
    crate::chat::pipeline::PipelineView {
        filters: vec!["region:APAC".into(), "rep:rep_15".into()],
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
