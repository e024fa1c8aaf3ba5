//! The Slack adapter's unit tests: names from the CRM stay text, replies render as Block Kit.

use super::*;

fn state() -> SlackState {
    let mut settings = settings::Settings::default();
    settings.alerts.deal_url = Some("https://crm.example.com/deals/{deal_id}".into());
    let questions = service::chat::ask::Questions::load(None, None).expect("the bundled questions load");
    SlackState::new(&settings, Arc::new(questions)).expect("the bundled Slack templates load")
}

#[test]
fn names_from_the_crm_stay_text_in_slack() {
    use service::chat::samples::{hostile, inert, sample_card_named, samples_named};
    let slack = state();
    inert::slack(&slack.render_card(&sample_card_named(&hostile)).expect("card")).expect("the risk card");
    for reply in samples_named(&hostile) {
        let m = slack.render(&reply).expect("render");
        inert::slack(&m).unwrap_or_else(|e| panic!("{reply:?}: {e}"));
    }
    let alerts = alerts::templates::Templates::load(None, Some("https://crm.example.com/{deal_id}".into()))
        .expect("alert templates");
    for kind in alerts::templates::RENDERED {
        let m = alerts.render(&alerts::templates::sample_named(kind, &hostile)).expect("render");
        // What the Slack channel posts: the subject as the notification text, and the blocks.
        let posted = serde_json::json!({ "text": m.slack_text(), "blocks": m.blocks });
        inert::slack(&posted).unwrap_or_else(|e| panic!("{}: {e}", kind.as_str()));
    }
}

#[test]
fn every_reply_renders_as_valid_block_kit_within_slacks_limits() {
    let slack = state();
    let card = slack.render_card(&sample_card()).expect("card");
    check_blocks(&card["blocks"]).expect("card blocks");
    let text = card["blocks"].to_string();
    for needle in [
        "🔴 Acme <Corp> & Sons: risk 82/100",
        "*CRITICAL risk* · 18% chance to win",
        "Acme &lt;Corp&gt; &amp; Sons",
        "• Partner leads win 31% vs 45% (+9.5 pts)",
        "1. Schedule an exec sponsor call within 24 hours",
        "• Bluepeak Logistics (D00042), won in 48 days",
        "https://crm.example.com/deals/D12345",
        "Model add-0123abcd · data as of 2026-06-10",
    ] {
        assert!(text.contains(needle), "the card lacks {needle:?}: {text}");
    }
    // The notification text is mrkdwn too: escaped like the blocks.
    assert_eq!(card["text"], "Acme &lt;Corp&gt; &amp; Sons: risk 82/100");
    for reply in samples() {
        let m = slack.render(&reply).expect("render");
        check_blocks(&m["blocks"]).unwrap_or_else(|e| panic!("{reply:?}: {e}"));
        assert!(m["text"].as_str().is_some_and(|t| !t.is_empty()), "{reply:?} has a fallback text");
    }
}

#[test]
fn the_block_checker_catches_what_slack_would_refuse() {
    let button = |id: &str, text: &str| json!({ "type": "button", "action_id": id, "text": { "type": "plain_text", "text": text } });
    let ok = json!([{ "type": "actions", "elements": [button("a", "Yes"), button("b", "No")] }]);
    assert_eq!(check_blocks(&ok), Ok(()));
    let twice = json!([{ "type": "actions", "elements": [button("a", "Yes"), button("a", "No")] }]);
    assert!(check_blocks(&twice).is_err_and(|e| e.contains("twice")));
    let long = json!([{ "type": "actions", "elements": [button("a", &"x".repeat(76))] }]);
    assert!(check_blocks(&long).is_err_and(|e| e.contains("75")));
    let many = Value::Array(vec![json!({ "type": "divider" }); 51]);
    assert!(check_blocks(&many).is_err_and(|e| e.contains("50")));
}

#[test]
fn every_view_renders_as_a_view_slack_takes() {
    let slack = state();
    let views = slack.sample_views().expect("views");
    assert_eq!(views.len(), 4);
    for (name, view) in &views {
        check_view(view).unwrap_or_else(|e| panic!("{name}: {e:#}"));
    }
    let settings = views[0].1.to_string();
    for needle in
        ["\"block_id\":\"threshold\"", "\"initial_value\":\"75\"", "\"initial_time\":\"20:00\"", "Europe/Berlin"]
    {
        assert!(settings.contains(needle), "the settings modal lacks {needle}: {settings}");
    }
    let why = views[1].1.to_string();
    assert!(why.contains("Acme &lt;Corp&gt; &amp; Sons"), "{why}");
    let home = views[2].1.to_string();
    for needle in [
        "🔴 *82* · <https://crm.example.com/deals/D1|D1> Acme &lt;Corp&gt;",
        "the riskiest 1 of 3",
        "Muted: segment decline",
        "open_settings",
    ] {
        assert!(home.contains(needle), "the home tab lacks {needle}: {home}");
    }
    let long_title =
        json!({ "type": "modal", "title": { "type": "plain_text", "text": "x".repeat(25) }, "blocks": [] });
    assert!(check_view(&long_title).is_err_and(|e| e.to_string().contains("24")));
}

#[test]
fn the_pipeline_reply_shows_its_figures() {
    let slack = state();
    let m = slack.render(&Reply::Pipeline { view: Box::new(sample_pipeline()) }).expect("render");
    let text = m["blocks"].to_string();
    for needle in [
        "📊 Pipeline: region:APAC rep:rep_15",
        "$2.4M in 42 open deals",
        "$1.1M (46% of it)",
        "68.4/100, 71.6 a month ago",
        "🔴 3 critical · 🟠 10 high · 🟡 19 medium · 🟢 10 low",
        "1. *91* D1 Acme &lt;Corp&gt; · rep_15 · $45K",
        "pick:D5",
    ] {
        assert!(text.contains(needle), "the pipeline lacks {needle:?}: {text}");
    }
    assert_eq!(m["text"], "Pipeline: 42 open deals, $1.1M risk-adjusted");
}
