//! The Discord bot end to end: recorded interaction payloads (`tests/fixtures/discord`) handed
//! to the adapter through the transport seam and answered through serenity's HTTP client
//! pointed at a fake Discord on 127.0.0.1; alerts posted through it; and the gateway client that
//! `dealwatch serve` runs, connected to the fake's gateway. On SQLite and PostgreSQL.

use std::sync::Arc;
use std::time::Duration as Wait;

use bot::store::TenantId;
use chrono::{Duration, Utc};
use serde_json::{Value, json};
use tests::fake_discord::{Endpoint, FakeDiscord, Fault};
use tests::{TestServer, each_store, seed_tenant};

const TOKEN: &str = "MTQwMDAwMDAwMDAwMDAwMDAwMQ.fake.bot-token-for-tests";
const APP: u64 = 1_400_000_000_000_000_001;
const GUILD: u64 = 1_100_000_000_000_000_001;
const CHANNEL: u64 = 1_300_000_000_000_000_001;
/// The user of the recorded interactions: rep_1 here.
const PRIYA: u64 = 1_200_000_000_000_000_001;
const RAJ: u64 = 1_200_000_000_000_000_002;
const ADA: u64 = 1_200_000_000_000_000_009;

struct Rig {
    server: TestServer,
    discord: FakeDiscord,
    adapter: Arc<bot::discord::DiscordState>,
    dataset: engine::dataset::Dataset,
    tenant: TenantId,
}

/// Tenant `acme` with 2,000 generated deals in one Discord server; rep_1 and rep_2 are linked by
/// the ids stored with them, the admin by the config.
async fn rig_with(store: tests::TestStore, extra: impl FnOnce(&mut bot::config::Settings) + Send + 'static) -> Rig {
    let today = Utc::now().date_naive();
    let dataset = seed_tenant(store.store.as_ref(), "acme", 2_000, 4, today).await;
    let tenant = TenantId::parse("acme").expect("tenant");
    for (user, id) in [("rep_1", PRIYA), ("rep_2", RAJ)] {
        let mut u = store.store.user(&tenant, user).await.expect("user").expect("seeded");
        u.set_chat_id("discord", id.to_string());
        store.store.upsert_user(&tenant, &u).await.expect("link");
    }
    let discord = FakeDiscord::start(TOKEN, APP).await;
    discord.add_guild(GUILD, "Acme Sales");
    discord.add_channel(GUILD, CHANNEL, "deal-desk");
    for (id, name) in [(PRIYA, "priya.raman"), (RAJ, "raj"), (ADA, "ada")] {
        discord.add_user(id, name);
    }
    let base = discord.base.clone();
    let server = TestServer::start(store, move |s| {
        s.discord.bot_token = Some(TOKEN.to_owned().into());
        s.discord.application_id = Some(APP);
        s.discord.api_url = base;
        s.discord.guilds = [(GUILD.to_string(), "acme".to_owned())].into();
        s.discord.users = bot::config::UserLinks::default().with("acme", "admin", &ADA.to_string());
        s.alerts.deal_url = Some("https://acme.my.salesforce.com/{deal_id}".into());
        s.data_dir = std::env::temp_dir().join(format!("dealwatch-discord-{}", uuid::Uuid::new_v4().simple()));
        extra(s);
    })
    .await;
    let adapter =
        bot::discord::Discord::configured(&server.state.settings).expect("config").expect("configured").state();
    Rig { server, discord, adapter, dataset, tenant }
}

async fn rig(store: tests::TestStore) -> Rig {
    rig_with(store, |_| {}).await
}

impl Rig {
    /// Hands a recorded interaction, changed by `edit`, to the adapter; the callback it answered.
    async fn interact(&self, fixture: &str, edit: impl FnOnce(&mut Value)) -> Value {
        let mut interaction = self.discord.fresh_interaction(fixture);
        edit(&mut interaction);
        self.discord.register_interaction(&interaction);
        let id = interaction["id"].as_str().expect("id").to_owned();
        let parsed: serenity::all::Interaction = serde_json::from_value(interaction).expect("serenity reads it");
        bot::discord::handle(&self.server.state, &self.adapter, parsed).await;
        let callbacks = self.discord.callbacks();
        callbacks.into_iter().rev().find(|(i, _)| *i == id).map(|(_, body)| body).unwrap_or(Value::Null)
    }

    /// A slash command with its one option set to `value`.
    async fn command(&self, fixture: &str, value: &str) -> Value {
        self.interact(fixture, |i| i["data"]["options"][0]["value"] = value.into()).await
    }

    fn open_deal(&self, owner: &str) -> &engine::dataset::Deal {
        tests::open_deal(&self.dataset, owner)
    }

    async fn raise(&self, kind: engine::alerts::AlertKind, recipient: &str) -> bot::alerts::Alert {
        let deal = self.open_deal("rep_1");
        let mut payload = bot::alerts::templates::sample(kind).payload;
        if kind == engine::alerts::AlertKind::CriticalDeal {
            payload["deal"]["deal_id"] = deal.id.to_string().into();
            payload["deal"]["company"] = deal.name.clone().into();
        }
        let alert = bot::alerts::Alert::now(
            kind,
            deal.id.to_string(),
            recipient,
            "discord",
            format!("test:{}", uuid::Uuid::new_v4()),
            payload,
            Utc::now(),
        );
        self.server.store.store.raise_alerts(&self.tenant, std::slice::from_ref(&alert)).await.expect("raise");
        alert
    }
}

/// Every text of a message (content, embed titles, descriptions, fields, footers), joined.
fn texts(message: &Value) -> String {
    let mut out = vec![message["content"].as_str().unwrap_or_default().to_owned()];
    for embed in message["embeds"].as_array().into_iter().flatten() {
        for key in ["title", "description"] {
            out.extend(embed[key].as_str().map(str::to_owned));
        }
        for field in embed["fields"].as_array().into_iter().flatten() {
            out.push(format!("{}: {}", field["name"].as_str().unwrap_or(""), field["value"].as_str().unwrap_or("")));
        }
        out.extend(embed["footer"]["text"].as_str().map(str::to_owned));
    }
    out.join("\n")
}

fn custom_ids(message: &Value) -> Vec<String> {
    let rows = message["components"].as_array().into_iter().flatten();
    rows.flat_map(|r| r["components"].as_array().into_iter().flatten())
        .filter_map(|c| c["custom_id"].as_str().map(str::to_owned))
        .collect()
}

#[tokio::test]
async fn recorded_commands_are_answered_privately_through_the_transport_seam() {
    for store in each_store().await {
        let b = store.store.backend();
        let rig = rig(store).await;
        let s = rig.server.store.store.clone();
        let mine = rig.open_deal("rep_1");
        let answer = rig.command("deal_risk_command", &mine.id.to_string()).await;
        assert_eq!(answer["type"], 4, "{b}: answered at once: {answer}");
        let card = &answer["data"];
        assert_eq!(card["flags"], 64, "{b}: only the asker sees it");
        let text = texts(card);
        assert!(text.contains(&format!("{}: risk", mine.name)) && text.contains("Top risk factors"), "{b}: {text}");
        let ids = custom_ids(card);
        assert!(
            ids.iter().any(|i| i.starts_with("card_useful:")) && ids.contains(&"card_snooze".to_owned()),
            "{b}: {ids:?}"
        );
        // Another rep's deal: refused, and nothing about it.
        let theirs = rig.open_deal("rep_2");
        let refusal = rig.command("deal_risk_command", &theirs.id.to_string()).await;
        let said = texts(&refusal["data"]);
        assert!(said.contains("pipeline you don't have access to") && !said.contains(&theirs.name), "{b}: {said}");
        // The pipeline with the recorded filters; a question; a mute through the settings.
        let pipeline = rig.command("pipeline_command", "region:APAC risk:critical").await;
        assert!(texts(&pipeline["data"]).contains("📊 Pipeline: region:APAC risk:critical"), "{b}: {pipeline}");
        let asked = rig.command("ask_command", "how many deals did we win last quarter?").await;
        assert!(texts(&asked["data"]).contains("Understood: deal count"), "{b}: {asked}");
        let muted = rig.command("dealwatch_command", "mute critical").await;
        assert!(texts(&muted["data"]).contains("🔕 Muted critical deal alerts"), "{b}: {muted}");
        let settings = s.alert_settings(&rig.tenant, "rep_1").await.expect("settings").expect("stored");
        assert_eq!(settings["muted"], json!(["critical_deal"]), "{b}");
        let set = rig.command("dealwatch_command", "set quiet 22:00-06:30").await;
        assert!(texts(&set["data"]).contains("Quiet hours 22:00–06:30"), "{b}: {set}");
        let bad = rig.command("dealwatch_command", "set threshold 101").await;
        assert!(texts(&bad["data"]).contains("the threshold is a whole number from 0 to 100"), "{b}: {bad}");
        // The settings open in a form (a modal), filled in with the values in force.
        let form = rig.command("dealwatch_command", "settings").await;
        assert_eq!(
            (form["type"].as_u64(), form["data"]["custom_id"].as_str()),
            (Some(9), Some("settings")),
            "{b}: {form}"
        );
        let inputs: Vec<(String, String)> = form["data"]["components"]
            .as_array()
            .expect("rows")
            .iter()
            .map(|r| {
                (
                    r["components"][0]["custom_id"].as_str().unwrap_or("").to_owned(),
                    r["components"][0]["value"].as_str().unwrap_or("").to_owned(),
                )
            })
            .collect();
        assert!(inputs.contains(&("quiet".into(), "22:00-06:30".into())), "{b}: {inputs:?}");
        let submit = |fields: Vec<(&str, &str)>| {
            let rows: Vec<Value> = fields
                .into_iter()
                .map(|(id, v)| json!({ "type": 1, "components": [{ "type": 4, "custom_id": id, "value": v }] }))
                .collect();
            move |i: &mut Value| {
                i["data"] = json!({ "custom_id": "settings", "components": rows });
                i.as_object_mut().expect("object").remove("message");
            }
        };
        let saved = rig
            .interact(
                "modal_submit",
                submit(vec![
                    ("threshold", "off"),
                    ("channels", "Discord, email"),
                    ("digest", "07:30"),
                    ("timezone", "America/New_York"),
                    ("quiet", "off"),
                ]),
            )
            .await;
        assert_eq!((saved["type"].as_u64(), saved["data"]["flags"].as_u64()), (Some(4), Some(64)), "{b}: {saved}");
        assert!(
            texts(&saved["data"]).contains(
                "✅ Saved. Critical-deal alerts are off. Daily digest at 07:30 (America/New_York). No quiet hours."
            ),
            "{b}: {saved}"
        );
        let stored = s.alert_settings(&rig.tenant, "rep_1").await.expect("settings").expect("stored");
        assert_eq!(stored["critical_deals"]["channels"], json!(["discord", "email"]), "{b}");
        assert_eq!(stored["muted"], json!(["critical_deal"]), "{b}: what the form does not show is kept");
        let refused = rig.interact("modal_submit", submit(vec![("threshold", "75"), ("digest", "noon")])).await;
        assert!(
            texts(&refused["data"]).contains("Not saved: daily_digest.time must be a time as HH:MM"),
            "{b}: {refused}"
        );
        let stored = s.alert_settings(&rig.tenant, "rep_1").await.expect("settings").expect("stored");
        assert_eq!(stored["critical_deals"]["enabled"], false, "{b}: nothing half-written");
        // A stranger, and a server that is not connected.
        let stranger = rig
            .interact("deal_risk_command", |i| {
                i["member"]["user"]["id"] = "1299999999999999999".into();
            })
            .await;
        assert!(texts(&stranger["data"]).contains("I don't know you yet"), "{b}: {stranger}");
        let elsewhere = rig
            .interact("deal_risk_command", |i| {
                i["guild_id"] = "1199999999999999999".into();
                i["guild"]["id"] = "1199999999999999999".into();
            })
            .await;
        assert!(texts(&elsewhere["data"]).contains("not connected to Dealwatch"), "{b}: {elsewhere}");
        // The admin, linked by the config, sees every deal.
        let admin = rig
            .interact("deal_risk_command", |i| {
                i["member"]["user"]["id"] = ADA.to_string().into();
                i["data"]["options"][0]["value"] = theirs.id.to_string().into();
            })
            .await;
        assert!(texts(&admin["data"]).contains(&format!("{}: risk", theirs.name)), "{b}: {admin}");
        let stored = s.user(&rig.tenant, "admin").await.expect("user").expect("exists");
        assert_eq!(stored.chat_id("discord"), Some(ADA.to_string().as_str()), "{b}: stored, so alerts reach them");
    }
}

#[tokio::test]
async fn a_slow_answer_is_deferred_and_finished_by_editing_the_response() {
    let rig = rig_with(tests::sqlite_store().await, |s| s.discord.answer_within_ms = 0).await;
    let mine = rig.open_deal("rep_1");
    let mut interaction = rig.discord.fresh_interaction("deal_risk_command");
    interaction["data"]["options"][0]["value"] = mine.id.to_string().into();
    rig.discord.register_interaction(&interaction);
    let id = interaction["id"].as_str().expect("id").to_owned();
    let parsed: serenity::all::Interaction = serde_json::from_value(interaction).expect("serenity reads it");
    bot::discord::handle(&rig.server.state, &rig.adapter, parsed).await;
    let (_, deferred) = rig.discord.callbacks().into_iter().find(|(i, _)| *i == id).expect("acknowledged");
    assert_eq!((deferred["type"].as_u64(), deferred["data"]["flags"].as_u64()), (Some(5), Some(64)), "{deferred}");
    let edits = rig.discord.edits();
    let (_, card) = edits.last().expect("the answer edited in");
    assert!(texts(card).contains(&format!("{}: risk", mine.name)), "{card}");
}

#[tokio::test]
async fn recorded_clicks_are_stored_once_and_update_the_message_in_place() {
    use engine::alerts::AlertKind;
    for store in each_store().await {
        let b = store.store.backend();
        let rig = rig(store).await;
        let s = rig.server.store.store.clone();
        let since = Utc::now() - Duration::hours(1);
        let alert = rig.raise(AlertKind::CriticalDeal, "rep_1").await;
        let id = alert.alert_id.clone();
        // "Useful" on the recorded alert message: the message is updated, its buttons gone.
        let click = |custom: String| move |i: &mut Value| i["data"]["custom_id"] = custom.into();
        let useful = rig.interact("button_click", click(format!("useful:{id}"))).await;
        assert_eq!(useful["type"], 7, "{b}: updated in place: {useful}");
        let text = texts(&useful["data"]);
        assert!(text.contains(&format!("Feedback: ✅ Marked useful by <@{PRIYA}>")), "{b}: {text}");
        assert!(custom_ids(&useful["data"]).is_empty(), "{b}: an alert keeps no buttons");
        assert!(!useful["data"]["embeds"].as_array().expect("embeds").is_empty(), "{b}: the alert itself stays");
        // The same click delivered again (a new interaction): one judgement.
        rig.interact("button_click", click(format!("useful:{id}"))).await;
        let feedback = s.feedback(&rig.tenant, since).await.expect("feedback");
        assert_eq!(feedback.len(), 1, "{b}: {feedback:?}");
        // The snooze menu, recorded with its choice.
        let other = rig.raise(AlertKind::CriticalDeal, "rep_1").await;
        let snoozed =
            rig.interact("select_snooze", |i| i["data"]["values"] = json!([format!("{}|1w", other.alert_id)])).await;
        assert!(texts(&snoozed["data"]).contains("🔕 Snoozed until"), "{b}: {snoozed}");
        // Mark false alarm: a form asks why, and its answer is stored with the judgement.
        let third = rig.raise(AlertKind::CriticalDeal, "rep_1").await;
        let form = rig.interact("button_click", click(format!("false_alarm:{}", third.alert_id))).await;
        assert_eq!(form["type"], 9, "{b}: a modal: {form}");
        assert_eq!(form["data"]["custom_id"], format!("why:alert:{}", third.alert_id), "{b}");
        let submitted = rig
            .interact("modal_submit", |i| {
                i["data"]["custom_id"] = format!("why:alert:{}", third.alert_id).into();
            })
            .await;
        assert_eq!(submitted["type"], 7, "{b}: {submitted}");
        assert!(
            texts(&submitted["data"]).contains("Marked a false alarm (The customer already signed)"),
            "{b}: {submitted}"
        );
        let feedback = s.feedback(&rig.tenant, since).await.expect("feedback");
        let why = feedback.iter().find(|f| f.alert_id == third.alert_id).expect("stored");
        assert_eq!(why.reason.as_deref(), Some("The customer already signed"), "{b}");
        // Someone else's alert: nothing stored, said privately.
        let theirs = rig
            .interact("button_click", |i| {
                i["data"]["custom_id"] = format!("not_relevant:{id}").into();
                i["member"]["user"]["id"] = RAJ.to_string().into();
            })
            .await;
        assert_eq!((theirs["type"].as_u64(), theirs["data"]["flags"].as_u64()), (Some(4), Some(64)), "{b}: {theirs}");
        assert!(texts(&theirs["data"]).contains("someone else"), "{b}: {theirs}");
        assert_eq!(s.feedback(&rig.tenant, since).await.expect("feedback").len(), 3, "{b}");
        // A follow-up task, once per message and person.
        let deal = rig.open_deal("rep_1").id.to_string();
        let task = rig.interact("button_click", click(format!("task:{deal}"))).await;
        assert!(texts(&task["data"]).starts_with("📝 Task created on"), "{b}: {task}");
        let again = rig.interact("button_click", click(format!("task:{deal}"))).await;
        assert!(texts(&again["data"]).contains("already created"), "{b}: {again}");
        assert_eq!(s.tasks(&rig.tenant, Some(&deal)).await.expect("tasks").len(), 1, "{b}");
        // A risk card's buttons: Useful keeps the link and task buttons.
        let card = rig.command("deal_risk_command", &deal).await;
        let useful_id = custom_ids(&card["data"]).into_iter().find(|i| i.starts_with("card_useful:")).expect("button");
        let judged = rig
            .interact("button_click", |i| {
                i["data"]["custom_id"] = useful_id.clone().into();
                i["message"]["embeds"] = card["data"]["embeds"].clone();
                i["message"]["components"] = card["data"]["components"].clone();
            })
            .await;
        assert_eq!(custom_ids(&judged["data"]), [format!("task:{deal}")], "{b}: {judged}");
        assert!(texts(&judged["data"]).contains("✅ Marked useful by"), "{b}");
        // An ask-back button reads the question back from the message it is on.
        let ask = rig
            .interact("button_click", |i| {
                i["data"]["custom_id"] = "ask:win_rate".into();
                i["message"]["embeds"] =
                    json!([{ "title": "Your question", "description": "how are we doing in EdTech" }]);
            })
            .await;
        assert_eq!(ask["type"], 7, "{b}: {ask}");
        assert!(texts(&ask["data"]).contains("Understood: win rate"), "{b}: {ask}");
        let log = s.audit_log(&rig.tenant, 50).await.expect("audit");
        assert!(
            log.iter().any(|e| e.action == "task.create" && e.details.as_ref().is_some_and(|d| d["via"] == "discord")),
            "{b}"
        );
    }
}

#[tokio::test]
async fn alerts_reach_discord_once_even_when_it_fails_after_posting() {
    use engine::alerts::AlertKind;
    for store in each_store().await {
        let b = store.store.backend();
        let rig = rig(store).await;
        let s = rig.server.store.store.clone();
        let sender = bot::wiring::sender(&rig.server.state.settings, s.clone()).expect("sender");
        let footers = |channel: &str, id: &str| {
            rig.discord
                .messages(channel)
                .iter()
                .filter(|m| m["embeds"][0]["footer"]["text"].as_str().is_some_and(|f| f.contains(id)))
                .count()
        };
        // A person's alert goes to their direct messages.
        let alert = rig.raise(AlertKind::CriticalDeal, "rep_1").await;
        let now = Utc::now();
        assert_eq!(sender.deliver_due(now).await.expect("deliver").sent, 1, "{b}");
        let dm = rig.discord.dm_channel(PRIYA).expect("a DM channel");
        assert_eq!(footers(&dm, &alert.alert_id), 1, "{b}");
        let posted = rig.discord.messages(&dm).remove(0);
        assert!(custom_ids(&posted).contains(&format!("useful:{}", alert.alert_id)), "{b}: {posted}");
        // Discord posts the message and then answers 500: the retry finds it, no second copy.
        let cut = rig.raise(AlertKind::CriticalDeal, "rep_1").await;
        let now = Utc::now();
        rig.discord.script_endpoint(Endpoint::CreateMessage, &[Fault::ServerErrorAfterPost]);
        assert_eq!(sender.deliver_due(now).await.expect("1").failed, 1, "{b}");
        let retry = sender.deliver_due(now + Duration::seconds(31)).await.expect("2");
        assert_eq!((retry.recovered, retry.sent), (1, 0), "{b}: {retry:?}");
        assert_eq!(footers(&dm, &cut.alert_id), 1, "{b}");
        // Rate limited: delayed, then once.
        let limited = rig.raise(AlertKind::CriticalDeal, "rep_1").await;
        let now = Utc::now();
        rig.discord.script_endpoint(Endpoint::CreateMessage, &[Fault::RateLimited(0.5)]);
        assert_eq!(sender.deliver_due(now).await.expect("1").failed, 1, "{b}");
        assert_eq!(sender.deliver_due(now + Duration::seconds(31)).await.expect("2").sent, 1, "{b}");
        assert_eq!(footers(&dm, &limited.alert_id), 1, "{b}");
        // A shared channel an admin routed segment declines to.
        let shared = rig.raise(AlertKind::SegmentDecline, &format!("shared:discord:{CHANNEL}")).await;
        assert_eq!(sender.deliver_due(Utc::now()).await.expect("shared").sent, 1, "{b}");
        assert_eq!(footers(&CHANNEL.to_string(), &shared.alert_id), 1, "{b}");
        let message = rig.discord.messages(CHANNEL).into_iter().last().expect("posted");
        assert!(texts(&message).contains("Win rate decline: HealthTech"), "{b}: {message}");
        // The weekly summary carries its chart as a file (when the system has a font to draw it).
        let weekly = rig.raise(AlertKind::WeeklySummary, &format!("shared:discord:{CHANNEL}")).await;
        assert_eq!(sender.deliver_due(Utc::now()).await.expect("weekly").sent, 1, "{b}");
        assert_eq!(footers(&CHANNEL.to_string(), &weekly.alert_id), 1, "{b}");
        if bot::alerts::chart::load_font(None).is_some() {
            let uploads = rig.discord.uploads();
            let chart = uploads.iter().find(|u| u.filename == "win-rate-by-quarter.png").expect("the chart uploaded");
            assert!(chart.bytes.starts_with(b"\x89PNG"), "{b}");
        }
        // rep_2 blocks DMs from the bot: a permanent failure, escalated to the fallback at once.
        rig.discord.block_dms(RAJ);
        let blocked = rig.raise(AlertKind::CriticalDeal, "rep_2").await;
        let report = sender.deliver_due(Utc::now()).await.expect("blocked");
        assert_eq!(report.escalated, 1, "{b}: {report:?}");
        let query = bot::alerts::AlertQuery { alert_id: Some(blocked.alert_id.clone()), ..Default::default() };
        let escalated = s.alerts(&rig.tenant, &query).await.expect("alert").remove(0);
        assert!(escalated.last_error.as_deref().is_some_and(|e| e.contains("50007")), "{b}: {escalated:?}");
    }
}

#[tokio::test]
async fn the_gateway_client_in_serve_registers_the_commands_and_answers_interactions() {
    let rig = rig(tests::sqlite_store().await).await;
    let transport = rig.server.state.transports.iter().find(|t| t.name() == "discord").expect("configured").clone();
    let running = transport.start(&rig.server.state).await.expect("start").expect("a gateway client");
    assert!(rig.discord.wait_identified(Wait::from_secs(20)).await, "identified");
    assert_eq!(rig.discord.intents(), Some(1), "GUILDS only: no privileged intents");
    // READY registers the commands in the connected server.
    let deadline = tokio::time::Instant::now() + Wait::from_secs(20);
    while rig.discord.commands(GUILD).is_empty() && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Wait::from_millis(50)).await;
    }
    let names: Vec<String> =
        rig.discord.commands(GUILD).iter().filter_map(|c| c["name"].as_str().map(str::to_owned)).collect();
    assert_eq!(names, ["deal-risk", "pipeline", "ask", "dealwatch"]);
    // A /deal-risk over the gateway: answered through the HTTP API.
    let mine = rig.open_deal("rep_1");
    let mut interaction = rig.discord.fresh_interaction("deal_risk_command");
    interaction["data"]["options"][0]["value"] = mine.id.to_string().into();
    assert_eq!(rig.discord.dispatch_interaction(interaction), 1);
    assert!(rig.discord.wait_for_callbacks(1, Wait::from_secs(20)).await, "answered");
    let (_, answer) = rig.discord.callbacks().remove(0);
    assert!(texts(&answer["data"]).contains(&format!("{}: risk", mine.name)), "{answer}");
    // A dropped connection is resumed, and what was dispatched meanwhile is still answered.
    rig.discord.disconnect();
    let mut again = rig.discord.fresh_interaction("deal_risk_command");
    again["data"]["options"][0]["value"] = mine.id.to_string().into();
    rig.discord.dispatch_interaction(again);
    assert!(rig.discord.wait_for_callbacks(2, Wait::from_secs(30)).await, "answered after the resume");
    (running.stop)().await;
}

// Several threads: the fake answers the server's start-up calls while this one waits for the
// server's first line.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dealwatch_serve_runs_the_gateway_client_when_discord_is_configured() {
    let store = tests::sqlite_store().await;
    let today = Utc::now().date_naive();
    let dataset = seed_tenant(store.store.as_ref(), "acme", 2_000, 4, today).await;
    let tenant = TenantId::parse("acme").expect("tenant");
    let mut rep = store.store.user(&tenant, "rep_1").await.expect("user").expect("seeded");
    rep.set_chat_id("discord", PRIYA.to_string());
    store.store.upsert_user(&tenant, &rep).await.expect("link");
    let discord = FakeDiscord::start(TOKEN, APP).await;
    discord.add_guild(GUILD, "Acme Sales");
    discord.add_channel(GUILD, CHANNEL, "deal-desk");
    let dir = tests::scratch();
    let config = format!(
        "data_dir = {data:?}\n[discord]\nbot_token = {TOKEN:?}\napplication_id = {APP}\napi_url = {base:?}\nguilds = {{ \"{GUILD}\" = \"acme\" }}\n",
        data = dir.path().join("data").display().to_string(),
        base = discord.base,
    );
    let config = tests::write(dir.path(), "dealwatch.toml", config);
    let mut cmd = crate::service_cli::cli(&store);
    cmd.args(["--config", &config]);
    let (mut server, _) = crate::service_cli::spawn_server(&mut cmd);
    let identified = discord.wait_identified(Wait::from_secs(30)).await;
    let deadline = tokio::time::Instant::now() + Wait::from_secs(30);
    while discord.commands(GUILD).len() < 4 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Wait::from_millis(100)).await;
    }
    let mine = tests::open_deal(&dataset, "rep_1");
    let mut interaction = discord.fresh_interaction("deal_risk_command");
    interaction["data"]["options"][0]["value"] = mine.id.to_string().into();
    discord.dispatch_interaction(interaction);
    let answered = discord.wait_for_callbacks(1, Wait::from_secs(30)).await;
    server.kill().expect("stop the server");
    let _ = server.wait();
    assert!(identified, "the server connected to the gateway");
    assert_eq!(discord.commands(GUILD).len(), 4, "the commands were registered");
    assert!(answered, "the server answered the interaction");
    let (_, answer) = discord.callbacks().remove(0);
    assert!(texts(&answer["data"]).contains(&format!("{}: risk", mine.name)), "{answer}");
}
