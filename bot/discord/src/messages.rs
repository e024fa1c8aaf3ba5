//! Discord's wire format for what the bot says: message bodies (content, embeds, components),
//! the false-alarm form and the slash commands, from the templates in `prompts/discord/`.
//! Loaded and checked once at start-up against Discord's limits: every reply and every alert
//! kind is rendered with sample data.

use anyhow::Context as _;
use serde_json::{Value, json};

use alerts::Alert;
use alerts::templates::Message;
use service::chat::Reply;
use service::chat::ask::{Questions, Style};
use service::chat::transport::PlatformTemplates;

const BUNDLED: [(&str, &str); 13] = [
    ("settings_modal.json", include_str!("../../../prompts/discord/settings_modal.json.tera")),
    ("macros.json", include_str!("../../../prompts/discord/macros.json.tera")),
    ("risk_card.json", include_str!("../../../prompts/discord/risk_card.json.tera")),
    ("alert.json", include_str!("../../../prompts/discord/alert.json.tera")),
    ("pick_list.json", include_str!("../../../prompts/discord/pick_list.json.tera")),
    ("not_found.json", include_str!("../../../prompts/discord/not_found.json.tera")),
    ("pipeline.json", include_str!("../../../prompts/discord/pipeline.json.tera")),
    ("answer.json", include_str!("../../../prompts/discord/answer.json.tera")),
    ("ask_back.json", include_str!("../../../prompts/discord/ask_back.json.tera")),
    ("notice.json", include_str!("../../../prompts/discord/notice.json.tera")),
    ("help.txt", include_str!("../../../prompts/discord/help.txt.tera")),
    ("why_modal.json", include_str!("../../../prompts/discord/why_modal.json.tera")),
    ("commands.json", include_str!("../../../prompts/discord/commands.json.tera")),
];

/// The message templates, parsed once.
#[derive(Debug)]
pub struct Messages {
    templates: PlatformTemplates,
}

impl Messages {
    pub fn load(settings: &settings::Settings) -> anyhow::Result<Messages> {
        let templates = PlatformTemplates::load(settings, "discord", &BUNDLED)?;
        let messages = Messages { templates };
        messages.commands().context("prompts/discord/commands.json")?;
        Ok(messages)
    }

    /// Draws every reply and alert kind with sample data: a broken template fails here.
    pub fn check(&self, questions: &Questions, alerts: &alerts::templates::Templates) -> anyhow::Result<()> {
        service::chat::transport::check_samples(
            alerts,
            &service::chat::samples::same,
            |card| self.risk_card(card),
            |reply| self.reply(reply, questions),
            |alert, message| self.alert(alert, message),
            check_message,
        )?;
        let judge = service::chat::actions::Judge::Alert("0190f0e2-0000-7000-8000-000000000000".into());
        check_modal(&self.why_modal(&judge, "Acme <Corp> & Sons")?)?;
        let user = service::chat::samples::sample_user();
        let settings = alerts::settings::AlertSettings::default();
        let channels = ["discord".to_owned(), "email".to_owned(), "log".to_owned()];
        let form = service::chat::form::SettingsForm::new(&settings, &user, &channels, "command");
        check_modal(&self.settings_modal(&form)?).context("the settings form")
    }

    /// The settings form, opened with the values in force.
    pub fn settings_modal(&self, form: &service::chat::form::SettingsForm) -> anyhow::Result<Value> {
        let mut context = PlatformTemplates::context();
        context.insert("form", form);
        self.templates.json("settings_modal.json", &context)
    }

    /// The slash commands, as registered in each server.
    pub fn commands(&self) -> anyhow::Result<Value> {
        let commands = self.templates.json("commands.json", &tera::Context::new())?;
        let list = commands.as_array().context("the commands must be a list")?;
        for command in list {
            let name = command["name"].as_str().unwrap_or_default();
            anyhow::ensure!(
                !name.is_empty()
                    && name.len() <= 32
                    && name.chars().all(|c| c.is_ascii_lowercase() || c == '-' || c == '_'),
                "command name {name:?}: 1-32 lower-case letters, - or _"
            );
            let description = command["description"].as_str().unwrap_or_default();
            anyhow::ensure!(
                (1..=100).contains(&description.chars().count()),
                "/{name}'s description: 1-100 characters"
            );
        }
        Ok(commands)
    }

    /// A risk card (the engine's `RiskScore` as JSON).
    pub fn risk_card(&self, card: &Value) -> anyhow::Result<Value> {
        let mut context = PlatformTemplates::context();
        context.insert("card", card);
        context.insert("deal_url", &self.templates.deal_link(card["deal_id"].as_str().unwrap_or_default()));
        self.templates.json("risk_card.json", &context)
    }

    /// An alert, as its message was rendered for every channel.
    pub fn alert(&self, alert: &Alert, message: &Message) -> anyhow::Result<Value> {
        self.templates.json("alert.json", &self.templates.alert_context(alert, message)?)
    }

    /// The form asking why something is a false alarm.
    pub fn why_modal(&self, judge: &service::chat::actions::Judge, subject: &str) -> anyhow::Result<Value> {
        let mut context = PlatformTemplates::context();
        context.insert("judge", &judge.pack());
        context.insert("subject", subject);
        self.templates.json("why_modal.json", &context)
    }

    pub fn help(&self) -> anyhow::Result<String> {
        self.templates.text("help.txt")
    }

    /// A reply as a message body.
    pub fn reply(&self, reply: &Reply, questions: &Questions) -> anyhow::Result<Value> {
        let mut context = PlatformTemplates::context();
        if let Some(template) =
            service::chat::transport::reply_template(reply, Style::MARKDOWN, questions, || self.help(), &mut context)?
        {
            return self.templates.json(template, &context);
        }
        match reply {
            Reply::RiskCard { card } => self.risk_card(&serde_json::to_value(card)?),
            // An answer shown as its card (a deal's risk, the pipeline), with what was understood.
            Reply::Answer { answered } if answered.card.is_some() => {
                let mut message = self.reply(answered.card.as_deref().context("the answer's card")?, questions)?;
                if let Some(embed) = message["embeds"].as_array_mut().and_then(|e| e.first_mut()) {
                    embed["footer"] = json!({ "text": answered.understood });
                }
                Ok(message)
            }
            other => anyhow::bail!("no Discord message for {other:?}"),
        }
    }

    /// A short message in words.
    pub fn words(&self, text: &str) -> anyhow::Result<Value> {
        let mut context = PlatformTemplates::context();
        context.insert("text", text);
        context.insert("hint", &Option::<String>::None);
        self.templates.json("notice.json", &context)
    }
}

/// Discord's limits on a message: what the templates could get wrong.
pub fn check_message(message: &Value) -> anyhow::Result<()> {
    let content = message["content"].as_str().unwrap_or_default();
    anyhow::ensure!(content.chars().count() <= 2000, "content over 2,000 characters");
    let embeds = message["embeds"].as_array().map(Vec::as_slice).unwrap_or_default();
    anyhow::ensure!(embeds.len() <= 10, "{} embeds; Discord takes at most 10", embeds.len());
    let mut total = 0;
    for embed in embeds {
        let count = |v: &Value| v.as_str().map_or(0, |s| s.chars().count());
        let (title, description) = (count(&embed["title"]), count(&embed["description"]));
        anyhow::ensure!(title <= 256, "an embed title over 256 characters");
        anyhow::ensure!(description <= 4096, "an embed description over 4,096 characters");
        let fields = embed["fields"].as_array().map(Vec::as_slice).unwrap_or_default();
        anyhow::ensure!(fields.len() <= 25, "{} fields; an embed takes at most 25", fields.len());
        total += title + description + count(&embed["footer"]["text"]);
        for field in fields {
            let (name, value) = (count(&field["name"]), count(&field["value"]));
            anyhow::ensure!((1..=256).contains(&name), "a field name of {name} characters (1-256)");
            anyhow::ensure!(
                (1..=1024).contains(&value),
                "field {:?}: a value of {value} characters (1-1,024)",
                field["name"]
            );
            total += name + value;
        }
        if let Some(colour) = embed.get("color") {
            anyhow::ensure!(
                colour.as_u64().is_some_and(|c| c <= 0xFF_FFFF),
                "an embed colour that is not an RGB number"
            );
        }
    }
    anyhow::ensure!(total <= 6000, "the embeds hold {total} characters; Discord takes at most 6,000");
    check_components(message["components"].as_array().map(Vec::as_slice).unwrap_or_default())
}

fn check_components(rows: &[Value]) -> anyhow::Result<()> {
    anyhow::ensure!(rows.len() <= 5, "{} action rows; a message takes at most 5", rows.len());
    let mut ids = std::collections::HashSet::new();
    for row in rows {
        anyhow::ensure!(row["type"] == 1, "a top-level component that is not an action row");
        let items = row["components"].as_array().context("an action row without components")?;
        anyhow::ensure!((1..=5).contains(&items.len()), "an action row of {} components (1-5)", items.len());
        for item in items {
            match item["type"].as_u64() {
                Some(2) => {
                    let label = item["label"].as_str().unwrap_or_default();
                    anyhow::ensure!(label.chars().count() <= 80, "button label {label:?} over 80 characters");
                    if item["style"] == 5 {
                        anyhow::ensure!(item["url"].is_string(), "a link button without a URL");
                        continue;
                    }
                }
                Some(3) => {
                    let options = item["options"].as_array().map_or(0, Vec::len);
                    anyhow::ensure!((1..=25).contains(&options), "a select menu of {options} options (1-25)");
                    anyhow::ensure!(items.len() == 1, "a select menu shares its row");
                }
                Some(4) => {}
                other => anyhow::bail!("unknown component type {other:?}"),
            }
            let id = item["custom_id"].as_str().unwrap_or_default();
            anyhow::ensure!((1..=100).contains(&id.len()), "custom id {id:?}: 1-100 characters");
            anyhow::ensure!(ids.insert(id.to_owned()), "custom id {id} twice in one message");
        }
    }
    Ok(())
}

/// A modal Discord takes: a title of at most 45 characters, up to five text inputs.
pub fn check_modal(modal: &Value) -> anyhow::Result<()> {
    let title = modal["title"].as_str().unwrap_or_default();
    anyhow::ensure!((1..=45).contains(&title.chars().count()), "the modal title {title:?}: 1-45 characters");
    let id = modal["custom_id"].as_str().unwrap_or_default();
    anyhow::ensure!((1..=100).contains(&id.len()), "the modal's custom id {id:?}: 1-100 characters");
    let rows = modal["components"].as_array().map(Vec::as_slice).unwrap_or_default();
    anyhow::ensure!((1..=5).contains(&rows.len()), "a modal of {} rows (1-5)", rows.len());
    for row in rows {
        for input in row["components"].as_array().into_iter().flatten() {
            anyhow::ensure!(input["type"] == 4, "a modal holds text inputs only");
            let label = input["label"].as_str().unwrap_or_default();
            anyhow::ensure!((1..=45).contains(&label.chars().count()), "the input label {label:?}: 1-45 characters");
        }
    }
    check_components(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn messages() -> Messages {
        let mut settings = settings::Settings::default();
        settings.alerts.deal_url = Some("https://crm.example.com/deals/{deal_id}".into());
        Messages::load(&settings).expect("the bundled Discord templates load")
    }

    fn ids(message: &Value) -> Vec<String> {
        let mut out = Vec::new();
        for row in message["components"].as_array().into_iter().flatten() {
            for item in row["components"].as_array().into_iter().flatten() {
                if let Some(id) = item["custom_id"].as_str() {
                    out.push(id.to_owned());
                }
            }
        }
        out
    }

    #[test]
    fn every_reply_and_alert_renders_within_discords_limits() {
        let questions = Questions::load(None, None).expect("questions");
        let alerts = alerts::templates::Templates::load(None, None).expect("alert templates");
        messages().check(&questions, &alerts).expect("every sample renders and passes the checks");
    }

    #[test]
    fn names_from_the_crm_stay_text_on_discord() {
        let questions = Questions::load(None, None).expect("questions");
        let alerts = alerts::templates::Templates::load(None, None).expect("alert templates");
        let m = messages();
        service::chat::transport::check_samples(
            &alerts,
            &service::chat::samples::hostile,
            |card| m.risk_card(card),
            |reply| m.reply(reply, &questions),
            |alert, message| m.alert(alert, message),
            service::chat::samples::inert::discord,
        )
        .expect("no markup from a name comes alive, and nobody is pinged");
    }

    #[test]
    fn the_risk_card_carries_its_reasons_and_buttons_that_read_back_as_clicks() {
        let m = messages().risk_card(&service::chat::samples::sample_card()).expect("card");
        let text = m.to_string();
        for needle in [
            "🔴 Acme <Corp> & Sons: risk 82/100",
            "**CRITICAL risk** · 18% chance to win",
            "• Partner leads win 31% vs 45% (+9.5 pts)",
            "1. Schedule an exec sponsor call within 24 hours",
            "https://crm.example.com/deals/D12345",
        ] {
            assert!(text.contains(needle), "the card lacks {needle:?}: {text}");
        }
        assert_eq!(m["embeds"][0]["color"], 14687834, "critical is red");
        assert_eq!(ids(&m), ["task:D12345", "card_useful:D12345|82", "card_false_alarm:D12345|82", "card_snooze"]);
        for id in ids(&m) {
            let choice = (id == "card_snooze").then_some("D12345|82|1w");
            assert!(service::chat::actions::Action::unpack(&id, choice).is_some(), "{id} reads back");
        }
    }

    #[test]
    fn names_with_markdown_show_as_written() {
        let mut card = service::chat::samples::sample_card();
        card["company"] = "*Star* _Corp_".into();
        let m = messages().risk_card(&card).expect("card");
        assert!(m["embeds"][0]["description"].as_str().expect("text").contains(r"\*Star\* \_Corp\_"), "{m}");
    }

    #[test]
    fn alerts_carry_their_id_in_the_footer_and_judgement_buttons() {
        let alerts = alerts::templates::Templates::load(None, None).expect("alert templates");
        let critical = alerts::templates::sample(engine::alerts::AlertKind::CriticalDeal);
        let m = messages().alert(&critical, &alerts.render(&critical).expect("render")).expect("alert");
        let footer = m["embeds"][0]["footer"]["text"].as_str().expect("footer");
        assert!(footer.contains(&critical.alert_id), "{footer}");
        let id = &critical.alert_id;
        assert_eq!(
            ids(&m),
            ["task:D12345".to_owned(), format!("useful:{id}"), format!("false_alarm:{id}"), "snooze".into()]
        );
        let weekly = alerts::templates::sample(engine::alerts::AlertKind::WeeklySummary);
        let m = messages().alert(&weekly, &alerts.render(&weekly).expect("render")).expect("weekly");
        assert!(ids(&m).is_empty(), "a summary is not judged");
    }

    #[test]
    fn the_limit_checker_catches_what_discord_would_refuse() {
        let button = |id: &str| json!({ "type": 2, "style": 1, "label": "Go", "custom_id": id });
        let ok = json!({ "content": "hi", "embeds": [], "components": [{ "type": 1, "components": [button("a")] }] });
        assert!(check_message(&ok).is_ok());
        let twice = json!({ "components": [{ "type": 1, "components": [button("a"), button("a")] }] });
        assert!(check_message(&twice).unwrap_err().to_string().contains("twice"));
        let long = json!({ "components": [{ "type": 1, "components": [button(&"x".repeat(101))] }] });
        assert!(check_message(&long).is_err());
        let six = json!({ "components": [{ "type": 1, "components": vec![button("a"); 6] }] });
        assert!(check_message(&six).is_err());
        let field = json!({ "embeds": [{ "fields": [{ "name": "n", "value": "v".repeat(1025) }] }] });
        assert!(check_message(&field).is_err());
        let big = json!({ "content": "x".repeat(2001) });
        assert!(check_message(&big).is_err());
    }
}
