//! Teams' wire format for what the bot says: Adaptive Cards (schema 1.5, with Universal
//! Actions) from the templates in `prompts/teams/`, and the Bot Framework activities that carry
//! them. Loaded and checked once at start-up: every reply and every alert kind is rendered with
//! sample data and must be a card Teams takes (known element and action types, unique input
//! ids, at most six actions in a row, under Teams' 28 KB message limit).

use anyhow::Context as _;
use serde_json::{Value, json};

use alerts::Alert;
use alerts::templates::Message;
use service::chat::Reply;
use service::chat::ask::{Questions, Style};
use service::chat::transport::PlatformTemplates;

const BUNDLED: [(&str, &str); 11] = [
    ("settings.json", include_str!("../../../prompts/teams/settings.json.tera")),
    ("macros.json", include_str!("../../../prompts/teams/macros.json.tera")),
    ("risk_card.json", include_str!("../../../prompts/teams/risk_card.json.tera")),
    ("alert.json", include_str!("../../../prompts/teams/alert.json.tera")),
    ("pick_list.json", include_str!("../../../prompts/teams/pick_list.json.tera")),
    ("not_found.json", include_str!("../../../prompts/teams/not_found.json.tera")),
    ("pipeline.json", include_str!("../../../prompts/teams/pipeline.json.tera")),
    ("answer.json", include_str!("../../../prompts/teams/answer.json.tera")),
    ("ask_back.json", include_str!("../../../prompts/teams/ask_back.json.tera")),
    ("notice.json", include_str!("../../../prompts/teams/notice.json.tera")),
    ("help.txt", include_str!("../../../prompts/teams/help.txt.tera")),
];

/// Markdown as Adaptive Cards render it: bold, but no code fences (a table is lines of text).
pub const STYLE: Style = Style { bold: "**", fence: "", markup: service::chat::ask::Markup::Markdown };

/// The media type of an Adaptive Card attachment.
pub const CARD: &str = "application/vnd.microsoft.card.adaptive";

/// Teams refuses a message over about 28 KB.
const MAX_MESSAGE_BYTES: usize = 28 * 1024;

/// The card templates, parsed once.
#[derive(Debug)]
pub struct Cards {
    templates: PlatformTemplates,
}

impl Cards {
    pub fn load(settings: &settings::Settings) -> anyhow::Result<Cards> {
        Ok(Cards { templates: PlatformTemplates::load(settings, "teams", &BUNDLED)? })
    }

    /// Draws every reply and alert kind with sample data, judged and not: a broken template
    /// fails here.
    pub fn check(&self, questions: &Questions, alerts: &alerts::templates::Templates) -> anyhow::Result<()> {
        for judged in [None, Some("🔕 Snoozed until Tue 09 Jun 09:00 by Maria")] {
            service::chat::transport::check_samples(
                alerts,
                &service::chat::samples::same,
                |card| self.risk_card(card, judged),
                |reply| self.reply(reply, questions),
                |alert, message| self.alert(alert, message, judged),
                check_card,
            )?;
        }
        let user = service::chat::samples::sample_user();
        let settings = alerts::settings::AlertSettings::default();
        let channels = ["teams".to_owned(), "email".to_owned(), "log".to_owned()];
        let form = service::chat::form::SettingsForm::new(&settings, &user, &channels, "command");
        for (notice, failed) in [(None, false), (Some("✅ Saved."), false), (Some("Not saved: no such zone"), true)] {
            check_card(&self.settings(&form, notice, failed)?).context("the sample settings card")?;
        }
        Ok(())
    }

    /// The settings form on a card; `notice` says what the last save did (`failed`: it did not).
    pub fn settings(
        &self,
        form: &service::chat::form::SettingsForm,
        notice: Option<&str>,
        failed: bool,
    ) -> anyhow::Result<Value> {
        let mut context = Cards::context(None);
        context.insert("form", form);
        context.insert("notice", &notice);
        context.insert("failed", &failed);
        self.templates.json("settings.json", &context)
    }

    fn context(judged: Option<&str>) -> tera::Context {
        let mut context = PlatformTemplates::context();
        context.insert("judged", &judged);
        context
    }

    /// A risk card (the engine's `RiskScore` as JSON); `judged` takes the judgement buttons'
    /// place once one was clicked.
    pub fn risk_card(&self, card: &Value, judged: Option<&str>) -> anyhow::Result<Value> {
        let mut context = Cards::context(judged);
        context.insert("card", card);
        context.insert("deal_url", &self.templates.deal_link(card["deal_id"].as_str().unwrap_or_default()));
        self.templates.json("risk_card.json", &context)
    }

    /// An alert, as its message was rendered for every channel; `judged` as on a risk card.
    pub fn alert(&self, alert: &Alert, message: &Message, judged: Option<&str>) -> anyhow::Result<Value> {
        let mut context = self.templates.alert_context(alert, message)?;
        context.insert("judged", &judged);
        self.templates.json("alert.json", &context)
    }

    /// The help text, in Teams' markdown.
    pub fn help(&self) -> anyhow::Result<String> {
        self.templates.text("help.txt")
    }

    /// A reply as an Adaptive Card.
    pub fn reply(&self, reply: &Reply, questions: &Questions) -> anyhow::Result<Value> {
        let mut context = Cards::context(None);
        if let Some(template) =
            service::chat::transport::reply_template(reply, STYLE, questions, || self.help(), &mut context)?
        {
            return self.templates.json(template, &context);
        }
        match reply {
            Reply::RiskCard { card } => self.risk_card(&serde_json::to_value(card)?, None),
            // An answer shown as its card (a deal's risk, the pipeline), with what was understood.
            Reply::Answer { answered } if answered.card.is_some() => {
                let mut card = self.reply(answered.card.as_deref().context("the answer's card")?, questions)?;
                if let Some(body) = card["body"].as_array_mut() {
                    body.push(json!({ "type": "TextBlock", "text": alerts::templates::markdown(&answered.understood), "isSubtle": true,
                                      "size": "Small", "wrap": true }));
                }
                Ok(card)
            }
            other => anyhow::bail!("no Teams card for {other:?}"),
        }
    }

    /// A short card in words.
    pub fn words(&self, text: &str) -> anyhow::Result<Value> {
        let mut context = Cards::context(None);
        context.insert("text", text);
        context.insert("hint", &Option::<String>::None);
        self.templates.json("notice.json", &context)
    }
}

/// A message activity carrying `card`, with `summary` as its notification text.
pub fn activity(card: Value, summary: &str) -> Value {
    let mut activity = json!({ "type": "message", "summary": summary, "attachments": [{ "contentType": CARD }] });
    activity["attachments"][0]["content"] = card;
    activity
}

/// The answer to an Adaptive Card Universal Action that replaces the card.
pub fn invoke_card(card: Value) -> Value {
    let mut answer = json!({ "statusCode": 200, "type": CARD });
    answer["value"] = card;
    answer
}

/// The answer to a Universal Action that leaves the card and shows a message.
pub fn invoke_message(text: &str) -> Value {
    json!({ "statusCode": 200, "type": "application/vnd.microsoft.activity.message", "value": text })
}

const ELEMENTS: [&str; 13] = [
    "TextBlock",
    "FactSet",
    "Image",
    "ImageSet",
    "Container",
    "ColumnSet",
    "Column",
    "ActionSet",
    "Input.Text",
    "Input.ChoiceSet",
    "Input.Toggle",
    "Input.Number",
    "Input.Time",
];
const ACTIONS: [&str; 4] = ["Action.Execute", "Action.Submit", "Action.OpenUrl", "Action.ShowCard"];

/// Whether `card` is an Adaptive Card Teams takes: what the templates could get wrong.
pub fn check_card(card: &Value) -> anyhow::Result<()> {
    anyhow::ensure!(card["type"] == "AdaptiveCard", "not an AdaptiveCard");
    let version = card["version"].as_str().unwrap_or_default();
    anyhow::ensure!(
        matches!(version, "1.4" | "1.5"),
        "version {version:?}: Action.Execute needs 1.4, and Teams renders up to 1.5"
    );
    let size = serde_json::to_vec(card)?.len();
    anyhow::ensure!(size <= MAX_MESSAGE_BYTES, "{size} bytes; Teams takes a message of at most 28 KB");
    let mut ids = std::collections::HashSet::new();
    check_level(card, &mut ids)
}

fn check_level(card: &Value, ids: &mut std::collections::HashSet<String>) -> anyhow::Result<()> {
    let body = card["body"].as_array().context("a card needs a body list")?;
    for element in body {
        check_element(element, ids)?;
    }
    let actions = card.get("actions").map(|a| a.as_array().context("actions must be a list")).transpose()?;
    let actions = actions.map(Vec::as_slice).unwrap_or_default();
    anyhow::ensure!(actions.len() <= 6, "{} actions; Teams shows at most 6 in a row", actions.len());
    for action in actions {
        check_action(action, ids)?;
    }
    Ok(())
}

fn check_element(element: &Value, ids: &mut std::collections::HashSet<String>) -> anyhow::Result<()> {
    let kind = element["type"].as_str().unwrap_or_default();
    anyhow::ensure!(ELEMENTS.contains(&kind), "unknown element type {kind:?}");
    if kind == "TextBlock" {
        anyhow::ensure!(element["text"].is_string(), "a TextBlock without text");
    }
    if kind == "FactSet" {
        for fact in element["facts"].as_array().context("a FactSet without facts")? {
            anyhow::ensure!(fact["title"].is_string() && fact["value"].is_string(), "a fact needs a title and a value");
        }
    }
    if kind.starts_with("Input.") {
        let id = element["id"].as_str().filter(|id| !id.is_empty()).context("an input without an id")?;
        anyhow::ensure!(ids.insert(id.to_owned()), "input id {id} twice in one card");
    }
    for nested in ["items", "columns"] {
        for child in element[nested].as_array().into_iter().flatten() {
            check_element(child, ids)?;
        }
    }
    for action in element["actions"].as_array().into_iter().flatten() {
        check_action(action, ids)?;
    }
    Ok(())
}

fn check_action(action: &Value, ids: &mut std::collections::HashSet<String>) -> anyhow::Result<()> {
    let kind = action["type"].as_str().unwrap_or_default();
    anyhow::ensure!(ACTIONS.contains(&kind), "unknown action type {kind:?}");
    let title = action["title"].as_str().unwrap_or_default();
    anyhow::ensure!(!title.is_empty(), "a {kind} without a title");
    match kind {
        "Action.Execute" => {
            let verb = action["verb"].as_str().unwrap_or_default();
            anyhow::ensure!(!verb.is_empty(), "Action.Execute {title:?} has no verb");
            anyhow::ensure!(action["data"]["verb"] == verb, "Action.Execute {title:?}: its data must carry the verb");
            let fallback = &action["fallback"];
            anyhow::ensure!(
                fallback["type"] == "Action.Submit" && fallback["data"]["verb"] == verb,
                "Action.Execute {title:?} needs an Action.Submit fallback with the same verb"
            );
        }
        "Action.OpenUrl" => {
            let url = action["url"].as_str().unwrap_or_default();
            anyhow::ensure!(
                url.starts_with("https://") || url.starts_with("http://"),
                "Action.OpenUrl {title:?}: no URL"
            );
        }
        "Action.ShowCard" => check_level(&action["card"], ids)?,
        _ => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cards() -> Cards {
        let mut settings = settings::Settings::default();
        settings.alerts.deal_url = Some("https://crm.example.com/deals/{deal_id}".into());
        Cards::load(&settings).expect("the bundled Teams templates load")
    }

    /// Every text a card shows, joined.
    fn texts(card: &Value) -> String {
        fn walk(v: &Value, out: &mut Vec<String>) {
            match v {
                Value::Object(m) => {
                    for key in ["text", "title", "value", "url"] {
                        if let Some(Value::String(t)) = m.get(key) {
                            out.push(t.clone());
                        }
                    }
                    m.values().for_each(|v| walk(v, out));
                }
                Value::Array(a) => a.iter().for_each(|v| walk(v, out)),
                _ => {}
            }
        }
        let mut out = Vec::new();
        walk(card, &mut out);
        out.join("\n")
    }

    fn verbs(card: &Value) -> Vec<String> {
        fn walk(v: &Value, out: &mut Vec<String>) {
            match v {
                Value::Object(m) => {
                    if m.get("type") == Some(&Value::from("Action.Execute"))
                        && let Some(Value::String(verb)) = m.get("verb")
                    {
                        out.push(verb.clone());
                    }
                    m.values().for_each(|v| walk(v, out));
                }
                Value::Array(a) => a.iter().for_each(|v| walk(v, out)),
                _ => {}
            }
        }
        let mut out = Vec::new();
        walk(card, &mut out);
        out
    }

    #[test]
    fn every_reply_and_alert_renders_as_a_card_teams_takes() {
        let questions = Questions::load(None, None).expect("questions");
        let alerts = alerts::templates::Templates::load(None, None).expect("alert templates");
        cards().check(&questions, &alerts).expect("every sample renders and passes the checks");
    }

    #[test]
    fn names_from_the_crm_stay_text_on_teams_cards() {
        let questions = Questions::load(None, None).expect("questions");
        let alerts = alerts::templates::Templates::load(None, None).expect("alert templates");
        let c = cards();
        for judged in [None, Some("🔕 Snoozed until Tue 09 Jun 09:00 by Maria")] {
            service::chat::transport::check_samples(
                &alerts,
                &service::chat::samples::hostile,
                |card| c.risk_card(card, judged),
                |reply| c.reply(reply, &questions),
                |alert, message| c.alert(alert, message, judged),
                service::chat::samples::inert::teams,
            )
            .expect("no markup from a name comes alive");
        }
    }

    #[test]
    fn the_risk_card_shows_the_score_its_reasons_and_the_feedback_buttons() {
        let card = cards().risk_card(&service::chat::samples::sample_card(), None).expect("card");
        let text = texts(&card);
        for needle in [
            // Names are Markdown-escaped: Teams shows "Acme <Corp> & Sons".
            r"🔴 Acme \<Corp\> & Sons: risk 82/100",
            "**CRITICAL risk** · 18% chance to win",
            "- Partner leads win 31% vs 45% (+9.5 pts)",
            "1. Schedule an exec sponsor call within 24 hours",
            "- Bluepeak Logistics (D00042), won in 48 days",
            "Model add-0123abcd · data as of 2026-06-10",
            "https://crm.example.com/deals/D12345",
        ] {
            assert!(text.contains(needle), "the card lacks {needle:?}:\n{text}");
        }
        let verbs = verbs(&card);
        for verb in ["task", "card_useful", "card_false_alarm", "card_snooze"] {
            assert!(verbs.iter().any(|v| v == verb), "no {verb} button: {verbs:?}");
        }
        // Each button's value reads back as the action chat::actions expects.
        let snooze = card.pointer("/actions/4/card/actions/1/data").expect("the snooze card's 1 week button");
        let action =
            service::chat::actions::Action::read("card_snooze", snooze["value"].as_str(), snooze["choice"].as_str());
        assert!(
            matches!(action, Some(service::chat::actions::Action::Card(ref d, 82, ref r))
                if d == "D12345" && r.snooze == Some(alerts::feedback::SnoozeFor::Week)),
            "{snooze}"
        );
    }

    #[test]
    fn a_judged_card_keeps_its_content_and_loses_its_judgement_buttons() {
        let card =
            cards().risk_card(&service::chat::samples::sample_card(), Some("✅ Marked useful by Maria")).expect("card");
        assert!(texts(&card).contains("✅ Marked useful by Maria"));
        assert!(texts(&card).contains("Partner leads win 31% vs 45%"));
        assert_eq!(verbs(&card), ["task"], "only the task button stays");
    }

    #[test]
    fn alerts_render_with_their_words_and_buttons() {
        let alerts = alerts::templates::Templates::load(None, None).expect("alert templates");
        let cards = cards();
        let critical = alerts::templates::sample(engine::alerts::AlertKind::CriticalDeal);
        let card = cards.alert(&critical, &alerts.render(&critical).expect("render"), None).expect("card");
        let text = texts(&card);
        assert!(text.contains(r"🚨 Critical deal: Acme \<Corp\> & Sons"), "{text}");
        assert!(text.contains("82/100 (critical), up from 68"), "{text}");
        assert_eq!(verbs(&card), ["task", "snooze", "snooze", "snooze", "useful", "false_alarm"]);
        let decline = alerts::templates::sample(engine::alerts::AlertKind::SegmentDecline);
        let message = alerts.render(&decline).expect("render");
        let card = cards.alert(&decline, &message, None).expect("card");
        let text = texts(&card);
        assert!(text.contains("Win rate decline: HealthTech (42% vs 54%)"), "{text}");
        assert!(text.contains("26 losses (vs 20.7 expected)"), "{text}");
        assert!(!text.contains("WIN RATE DECLINE: HealthTech"), "the header line is the title: {text}");
        assert_eq!(verbs(&card), ["useful", "not_relevant"]);
        let digest = alerts::templates::sample(engine::alerts::AlertKind::DailyDigest);
        let card = cards.alert(&digest, &alerts.render(&digest).expect("render"), None).expect("card");
        assert!(verbs(&card).is_empty(), "a digest is not judged");
        assert!(texts(&card).contains(r"Acme \<Corp\> & Sons (D12345) $45K - 82/100 risk"), "{}", texts(&card));
    }

    #[test]
    fn the_card_checker_catches_what_teams_would_refuse() {
        let ok = json!({ "type": "AdaptiveCard", "version": "1.5", "body": [{ "type": "TextBlock", "text": "hi" }] });
        assert!(check_card(&ok).is_ok());
        let old = json!({ "type": "AdaptiveCard", "version": "1.2", "body": [] });
        assert!(check_card(&old).is_err());
        let unknown = json!({ "type": "AdaptiveCard", "version": "1.5", "body": [{ "type": "Carousel" }] });
        assert!(check_card(&unknown).is_err());
        let no_fallback = json!({ "type": "AdaptiveCard", "version": "1.5", "body": [],
            "actions": [{ "type": "Action.Execute", "title": "Go", "verb": "go", "data": { "verb": "go" } }] });
        assert!(check_card(&no_fallback).unwrap_err().to_string().contains("fallback"));
        let twice = json!({ "type": "AdaptiveCard", "version": "1.5", "body": [
            { "type": "Input.Text", "id": "a" }, { "type": "Input.Text", "id": "a" }] });
        assert!(check_card(&twice).unwrap_err().to_string().contains("twice"));
        let huge = json!({ "type": "AdaptiveCard", "version": "1.5", "body": [{ "type": "TextBlock", "text": "x".repeat(30_000) }] });
        assert!(check_card(&huge).unwrap_err().to_string().contains("28 KB"));
    }
}
