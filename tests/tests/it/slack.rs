//! The Slack bot end to end: requests signed the way Slack signs them, sent to the real server,
//! which answers through a fake Slack Web API and response URLs on 127.0.0.1. On SQLite and
//! PostgreSQL.

use bot::store::TenantId;
use engine::asof::{Status, status};
use serde_json::{Value, json};
use tests::fake_slack::{FakeSlack, signature};
use tests::{TestServer, each_store, seed_tenant};

const SECRET: &str = "5f1e0a7c9d2b4e6f8a1c3e5d7f9b2d4c";
/// The previous signing secret, still accepted during a rotation.
const OLD_SECRET: &str = "0a1b2c3d4e5f60718293a4b5c6d7e8f9";
const TOKEN: &str = "xoxb-slack-test";
const TEAM: &str = "T0ACME";

struct Rig {
    server: TestServer,
    slack: FakeSlack,
    dataset: engine::dataset::Dataset,
    tenant: TenantId,
}

/// Tenant `acme` with 2,000 generated deals; rep_1, their manager and the admin have Slack ids.
async fn rig(store: tests::TestStore) -> Rig {
    rig_with(store, |_| {}).await
}

async fn rig_with(store: tests::TestStore, extra: impl FnOnce(&mut bot::config::Settings) + Send + 'static) -> Rig {
    let today = chrono::Utc::now().date_naive();
    let dataset = seed_tenant(store.store.as_ref(), "acme", 2_000, 4, today).await;
    let tenant = TenantId::parse("acme").expect("tenant");
    for (user, slack) in [("rep_1", "U0REP1"), ("rep_2", "U0REP2"), ("manager_1", "U0MGR1"), ("admin", "U0ADMIN")] {
        let mut u = store.store.user(&tenant, user).await.expect("user").expect("seeded");
        u.set_chat_id("slack", slack);
        store.store.upsert_user(&tenant, &u).await.expect("slack id");
    }
    let slack = FakeSlack::start(TOKEN).await;
    let api_url = slack.api_url.clone();
    let server = TestServer::start(store, move |s| {
        s.slack.signing_secrets = vec![SECRET.to_owned().into(), OLD_SECRET.to_owned().into()];
        s.slack.workspaces = [(TEAM.to_owned(), "acme".to_owned())].into_iter().collect();
        s.slack.bot_token = Some(TOKEN.to_owned().into());
        s.slack.api_url = api_url;
        s.alerts.deal_url = Some("https://acme.my.salesforce.com/{deal_id}".into());
        extra(s);
    })
    .await;
    Rig { server, slack, dataset, tenant }
}

impl Rig {
    /// POSTs `body` to `path` signed with `secret`, `age` seconds ago. Every request is a new
    /// delivery, signed at its own second (Slack signs a retry anew; the same signature twice is
    /// a replay, which the server refuses).
    async fn signed(&self, path: &str, body: &str, content_type: &str, secret: &str, age: i64) -> (u16, Value) {
        let (ts, signed) = if age == 0 {
            tests::fake_slack::sign_fresh(secret, body)
        } else {
            let ts = chrono::Utc::now().timestamp() - age;
            (ts, signature(secret, ts, body))
        };
        let response = self
            .server
            .http
            .post(self.server.url(path))
            .header("content-type", content_type)
            .header("x-slack-request-timestamp", ts.to_string())
            .header("x-slack-signature", signed)
            .body(body.to_owned())
            .send()
            .await
            .expect("POST");
        tests::json_of(response).await
    }

    async fn command(&self, user: &str, command: &str, text: &str) -> Value {
        let body = command_body(TEAM, user, command, text, &self.slack.response_url("cmd"));
        let (status, reply) = self.signed("/slack/commands", &body, FORM, SECRET, 0).await;
        assert_eq!(status, 200, "{command} {text}: {reply}");
        reply
    }

    async fn click(&self, user: &str, actions: Value, message: Value, response: &str) -> u16 {
        self.click_in(TEAM, user, actions, message, response).await
    }

    async fn click_in(&self, team: &str, user: &str, actions: Value, message: Value, response: &str) -> u16 {
        let payload = json!({
            "type": "block_actions", "team": { "id": team }, "user": { "id": user }, "api_app_id": "A0DW",
            "container": { "type": "message", "message_ts": "1.2", "channel_id": "C0GENERAL", "is_ephemeral": true }, "trigger_id": "t.1",
            "response_url": self.slack.response_url(response), "actions": actions, "message": message,
        });
        let body = serde_urlencoded::to_string([("payload", payload.to_string())]).expect("form");
        self.signed("/slack/interactions", &body, FORM, SECRET, 0).await.0
    }

    /// Submits a modal (`view_submission`) as `user`; Slack's answer body.
    async fn submit(&self, user: &str, callback: &str, metadata: &str, values: Value) -> (u16, Value) {
        let payload = json!({
            "type": "view_submission", "team": { "id": TEAM }, "user": { "id": user, "team_id": TEAM }, "api_app_id": "A0DW",
            "trigger_id": "t.2",
            "view": { "id": "V1", "type": "modal", "callback_id": callback, "private_metadata": metadata,
                      "state": { "values": values } },
        });
        let body = serde_urlencoded::to_string([("payload", payload.to_string())]).expect("form");
        self.signed("/slack/interactions", &body, FORM, SECRET, 0).await
    }

    async fn event(&self, id: &str, event: Value) -> u16 {
        let body = json!({ "type": "event_callback", "team_id": TEAM, "api_app_id": "A0DW", "event_id": id,
                           "event_time": 1_780_000_000, "event": event });
        self.signed("/slack/events", &body.to_string(), "application/json", SECRET, 0).await.0
    }

    /// The text of the last message posted to response URL `id`.
    fn answered(&self, id: &str) -> Value {
        self.slack.responses().into_iter().rev().find(|(r, _)| r == id).map(|(_, m)| m).unwrap_or(Value::Null)
    }

    /// An open deal of `owner`.
    fn open_deal(&self, owner: &str) -> &engine::dataset::Deal {
        tests::open_deal(&self.dataset, owner)
    }
}

const FORM: &str = "application/x-www-form-urlencoded";

fn command_body(team: &str, user: &str, command: &str, text: &str, response_url: &str) -> String {
    tests::fake_slack::command_body(team, "C0GENERAL", user, command, text, response_url)
}

/// Every text in a message's blocks, joined.
fn texts(message: &Value) -> String {
    let mut out = Vec::new();
    fn walk(v: &Value, out: &mut Vec<String>) {
        match v {
            Value::Object(m) => {
                if let Some(Value::String(t)) = m.get("text") {
                    out.push(t.clone());
                }
                m.values().for_each(|v| walk(v, out));
            }
            Value::Array(a) => a.iter().for_each(|v| walk(v, out)),
            _ => {}
        }
    }
    walk(&message["blocks"], &mut out);
    out.join("\n")
}

#[tokio::test]
async fn forged_stale_and_unsigned_slack_requests_are_refused_before_anything_reads_them() {
    for store in each_store().await {
        let b = store.store.backend();
        let rig = rig(store).await;
        let body = command_body(TEAM, "U0REP1", "/dealwatch", "help", &rig.slack.response_url("x"));
        for path in ["/slack/commands", "/slack/interactions", "/slack/events"] {
            // No signature at all.
            let response = rig.server.http.post(rig.server.url(path)).body(body.clone()).send().await.expect("POST");
            assert_eq!(response.status(), 401, "{b} {path}: unsigned");
            // Signed with a secret we never issued, five minutes and more in the past or the
            // future, or a body changed after signing.
            assert_eq!(rig.signed(path, &body, FORM, "not-our-secret", 0).await.0, 401, "{b} {path}: forged");
            assert_eq!(rig.signed(path, &body, FORM, SECRET, 301).await.0, 401, "{b} {path}: stale");
            assert_eq!(rig.signed(path, &body, FORM, SECRET, -301).await.0, 401, "{b} {path}: from the future");
            let ts = chrono::Utc::now().timestamp();
            let tampered = rig
                .server
                .http
                .post(rig.server.url(path))
                .header("x-slack-request-timestamp", ts.to_string())
                .header("x-slack-signature", signature(SECRET, ts, &body))
                .body(body.replace("help", "mute+critical"))
                .send()
                .await
                .expect("POST");
            assert_eq!(tampered.status(), 401, "{b} {path}: tampered");
        }
        // Within the window, and with the old secret during a rotation: accepted.
        let (status, reply) = rig.signed("/slack/commands", &body, FORM, SECRET, 240).await;
        assert_eq!(status, 200, "{b}: {reply}");
        assert!(texts(&reply).contains("/deal-risk D12345"), "{b}: help: {reply}");
        assert_eq!(rig.signed("/slack/commands", &body, FORM, OLD_SECRET, 0).await.0, 200, "{b}: rotation");
        assert!(rig.slack.calls().is_empty(), "{b}: nothing reached Slack");
    }
}

#[tokio::test]
async fn deal_risk_answers_by_id_and_name_with_pick_lists_suggestions_and_polite_refusals() {
    for store in each_store().await {
        let b = store.store.backend();
        let rig = rig(store).await;
        let mine = rig.open_deal("rep_1");
        // By id: the full card, answered directly and only to the asker.
        let card = rig.command("U0REP1", "/deal-risk", &mine.id.to_string()).await;
        assert_eq!(card["response_type"], "ephemeral", "{b}");
        let text = texts(&card);
        for needle in ["risk", "/100", "% chance to win", "*Top risk factors*", "Model ", "data as of"] {
            assert!(text.contains(needle), "{b}: the card lacks {needle:?}: {text}");
        }
        let url = format!("https://acme.my.salesforce.com/{}", mine.id);
        assert!(card.to_string().contains(&url), "{b}: Open in CRM links the deal");
        tests::assert_block_kit(&card["blocks"]);
        // Someone else's deal: refused without a word about it.
        let theirs = rig.open_deal("rep_2");
        let refused = rig.command("U0REP1", "/deal-risk", &theirs.id.to_string()).await;
        let said = texts(&refused);
        assert!(said.contains("don't have access"), "{b}: {said}");
        assert!(!said.contains(&theirs.name) && !said.contains("/100"), "{b}: no data leaks: {said}");
        // Their manager may see it.
        let managed = rig.command("U0MGR1", "/deal-risk", &mine.id.to_string()).await;
        assert!(texts(&managed).contains("/100"), "{b}: the manager sees the team's deals");

        // A name several open deals share: a pick list, biggest first, a button each.
        let today = chrono::Utc::now().date_naive();
        let open: Vec<&engine::dataset::Deal> =
            rig.dataset.deals.iter().filter(|d| status(d, Some(today)) == Status::Open).collect();
        let shared = open
            .iter()
            .find(|d| open.iter().filter(|o| o.name == d.name).count() >= 2)
            .map(|d| d.name.clone())
            .expect("an account with two open deals");
        let list = rig.command("U0ADMIN", "/deal-risk", &shared).await;
        let buttons: Vec<&str> = list["blocks"][1]["elements"]
            .as_array()
            .expect("buttons")
            .iter()
            .filter_map(|e| e["action_id"].as_str())
            .collect();
        assert!(buttons.len() >= 2 && buttons.iter().all(|a| a.starts_with("pick:")), "{b}: {list}");
        tests::assert_block_kit(&list["blocks"]);
        // A typo: said so, with the closest names.
        let typo = format!("{}x", mine.name.to_lowercase().replace(' ', ""));
        let unknown = rig.command("U0REP1", "/deal-risk", &typo).await;
        assert!(texts(&unknown).contains("found no open deal"), "{b}: {unknown}");
        // Nonsense: no suggestions, but how to ask.
        let none = rig.command("U0REP1", "/deal-risk", "qqqqqqqqqqqq").await;
        assert!(texts(&none).contains("Try a deal id"), "{b}: {none}");
        // No deal named at all, someone Dealwatch does not know, a workspace not connected.
        assert!(texts(&rig.command("U0REP1", "/deal-risk", "  ").await).contains("which deal?"), "{b}");
        assert!(texts(&rig.command("U0STRANGER", "/deal-risk", "Acme").await).contains("don't know you"), "{b}");
        let body = command_body("T0OTHER", "U0REP1", "/deal-risk", "Acme", &rig.slack.response_url("x"));
        let (status, other) = rig.signed("/slack/commands", &body, FORM, SECRET, 0).await;
        assert_eq!(status, 200, "{b}");
        assert!(texts(&other).contains("not connected"), "{b}: {other}");
        // A malformed command form is a 400, not a crash.
        assert_eq!(rig.signed("/slack/commands", "team_id=T0ACME", FORM, SECRET, 0).await.0, 400, "{b}");
        // Reads through Slack are audited like the API's.
        rig.server.state.audit.flush().await;
        let log = rig.server.store.store.audit_log(&rig.tenant, 50).await.expect("audit");
        assert!(log.iter().any(|e| e.actor == "rep_1" && e.action == "deal.score"), "{b}");
    }
}

#[tokio::test]
async fn a_pick_shows_the_card_and_alert_buttons_are_stored_once_and_update_the_message() {
    use bot::alerts::{Alert, AlertQuery};
    for store in each_store().await {
        let b = store.store.backend();
        let rig = rig(store).await;
        let mine = rig.open_deal("rep_1").id.to_string();
        // A pick-list button: that deal's card replaces the list.
        let pick =
            json!([{ "type": "button", "action_id": format!("pick:{mine}"), "block_id": "pick", "value": mine }]);
        assert_eq!(rig.click("U0REP1", pick, json!({ "ts": "1.2", "text": "list" }), "pick").await, 200, "{b}");
        let responses = rig.slack.responses();
        let (id, card) = responses.last().expect("a response");
        assert_eq!((id.as_str(), card["replace_original"].as_bool()), ("pick", Some(true)), "{b}: {card}");
        assert!(texts(card).contains("/100"), "{b}: {card}");

        // An alert of rep_1's, as the sender posted it.
        let now = chrono::Utc::now();
        let alert = Alert::now(
            engine::alerts::AlertKind::CriticalDeal,
            mine.clone(),
            "rep_1",
            "slack",
            format!("test:{mine}"),
            json!({}),
            now,
        );
        let s = rig.server.store.store.clone();
        s.raise_alerts(&rig.tenant, std::slice::from_ref(&alert)).await.expect("raise");
        let posted = json!({ "ts": "1.2", "text": "URGENT: High-risk deal", "blocks": [
            { "type": "section", "text": { "type": "mrkdwn", "text": "*Deal* risk 82/100" } },
            { "type": "actions", "block_id": format!("alert:{}", alert.alert_id), "elements": [] },
        ]});
        let snooze = json!([{ "type": "overflow", "action_id": "snooze", "block_id": format!("alert:{}", alert.alert_id),
            "selected_option": { "text": { "type": "plain_text", "text": "Snooze 1 week" }, "value": format!("{}|1w", alert.alert_id) } }]);
        assert_eq!(rig.click("U0REP1", snooze.clone(), posted.clone(), "snooze").await, 200, "{b}");
        // Slack retries the same click: one snooze.
        assert_eq!(rig.click("U0REP1", snooze, posted.clone(), "snooze-again").await, 200, "{b}");
        let feedback = s.feedback(&rig.tenant, now - chrono::Duration::hours(1)).await.expect("feedback");
        assert_eq!(feedback.len(), 1, "{b}: {feedback:?}");
        assert_eq!((feedback[0].user_id.as_str(), feedback[0].snooze_until_ms.is_some()), ("rep_1", true), "{b}");
        let responses = rig.slack.responses();
        let (_, updated) = responses.iter().find(|(id, _)| id == "snooze").expect("the update");
        assert_eq!(updated["replace_original"], true, "{b}");
        let blocks = updated["blocks"].as_array().expect("blocks");
        assert!(!blocks.iter().any(|b| b["type"] == "actions"), "{b}: the buttons are gone: {updated}");
        let line = texts(updated);
        assert!(line.contains("Snoozed until") && line.contains("by <@U0REP1>"), "{b}: {line}");
        assert!(line.contains("*Deal* risk 82/100"), "{b}: the message itself stays: {line}");
        // Someone else's alert: nothing stored, and told so.
        let useful = json!([{ "type": "button", "action_id": "useful", "value": alert.alert_id }]);
        assert_eq!(rig.click("U0REP2", useful, posted, "other").await, 200, "{b}");
        let (_, refusal) = rig.slack.responses().into_iter().find(|(id, _)| id == "other").expect("answered");
        assert!(refusal["text"].as_str().is_some_and(|t| t.contains("someone else")), "{b}: {refusal}");
        assert_eq!(s.feedback(&rig.tenant, now - chrono::Duration::hours(1)).await.expect("feedback").len(), 1, "{b}");
        let log = s.audit_log(&rig.tenant, 50).await.expect("audit");
        assert!(log.iter().any(|e| e.action == "alert.feedback" && e.actor == "rep_1"), "{b}");
        let query = AlertQuery { alert_id: Some(alert.alert_id.clone()), ..Default::default() };
        assert_eq!(s.alerts(&rig.tenant, &query).await.expect("alert").len(), 1, "{b}");
    }
}

#[tokio::test]
async fn events_answer_url_verification_ignore_retries_and_reply_to_mentions_once() {
    for store in each_store().await {
        let b = store.store.backend();
        let rig = rig(store).await;
        rig.slack.join("C0GENERAL");
        let challenge = json!({ "type": "url_verification", "token": "x", "challenge": "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P" });
        let (status, answer) = rig.signed("/slack/events", &challenge.to_string(), "application/json", SECRET, 0).await;
        assert_eq!((status, answer["challenge"].clone()), (200, challenge["challenge"].clone()), "{b}");
        let mention = json!({
            "type": "event_callback", "team_id": TEAM, "api_app_id": "A0DW", "event_id": "Ev0MENTION1",
            "event_time": 1_780_000_000,
            "event": { "type": "app_mention", "user": "U0REP1", "channel": "C0GENERAL", "ts": "1780000000.000100",
                       "text": "<@U0DW> which deals are at risk?" },
        })
        .to_string();
        // Slack retries the same event (a slow answer, a lost acknowledgement): one reply.
        for _ in 0..3 {
            let (status, _) = rig.signed("/slack/events", &mention, "application/json", SECRET, 0).await;
            assert_eq!(status, 200, "{b}");
        }
        // The answer is the asker's, from their deals: shown to them only, in the channel.
        assert!(rig.slack.posted().is_empty(), "{b}: nothing for the whole channel: {:?}", rig.slack.posted());
        let shown = rig.slack.ephemeral();
        assert_eq!(shown.len(), 1, "{b}: {shown:?}");
        assert_eq!((shown[0].0.as_str(), shown[0].1.channel.as_str()), ("U0REP1", "C0GENERAL"), "{b}");
        let blocks = shown[0].1.blocks.clone().map(|blocks| json!({ "blocks": blocks })).unwrap_or_default();
        assert!(texts(&blocks).contains("Understood: deals at risk"), "{b}: the question answered: {blocks}");
        assert!(texts(&blocks).contains("Only you can see this answer"), "{b}: {blocks}");
        // The asker may share it: the question is answered again with their access and posted.
        let share = json!([{ "type": "button", "action_id": "share_answer", "block_id": "share",
                             "value": "which deals are at risk?" }]);
        assert_eq!(rig.click("U0REP1", share, json!({ "ts": "1.2", "text": "answer" }), "shared").await, 200, "{b}");
        let posted = rig.slack.posted();
        assert_eq!(posted.len(), 1, "{b}: {posted:?}");
        assert_eq!(posted[0].channel, "C0GENERAL", "{b}");
        let blocks = posted[0].blocks.clone().map(|blocks| json!({ "blocks": blocks })).unwrap_or_default();
        assert!(texts(&blocks).contains("Shared by <@U0REP1>"), "{b}: {blocks}");
        assert!(!texts(&blocks).contains("Share in channel"), "{b}: shared once: {blocks}");
        assert_eq!(rig.answered("shared")["delete_original"], json!(true), "{b}: the private copy goes");
        // An event from a workspace that is not connected is acknowledged and dropped.
        let foreign = mention.replace(TEAM, "T0OTHER").replace("Ev0MENTION1", "Ev0MENTION2");
        assert_eq!(rig.signed("/slack/events", &foreign, "application/json", SECRET, 0).await.0, 200, "{b}");
        assert_eq!((rig.slack.posted().len(), rig.slack.ephemeral().len()), (1, 1), "{b}");
        assert_eq!(rig.signed("/slack/events", "{not json", "application/json", SECRET, 0).await.0, 400, "{b}");
    }
}

/// Mentions and DMs are plain-English questions: answered with what was understood, only from
/// the deals the asker may see; another rep's figures are refused; an unclear question is asked
/// back with buttons, and a button answers it the way picked.
#[tokio::test]
async fn mentions_and_direct_messages_are_answered_as_questions_within_the_askers_deals() {
    for store in each_store().await {
        let b = store.store.backend();
        let rig = rig(store).await;
        rig.slack.join("C0GENERAL");
        let mention = |text: &str, ts: &str| json!({ "type": "app_mention", "user": "U0REP1", "channel": "C0GENERAL", "ts": ts, "text": format!("<@U0DW> {text}") });
        // Mentions are answered to the asker only; direct messages in the conversation.
        let last = |rig: &Rig| {
            let shown: Vec<_> = rig.slack.ephemeral().into_iter().map(|(_, p)| p).collect();
            let posted = rig.slack.posted();
            let p = shown.iter().chain(&posted).max_by_key(|p| p.at).expect("a reply");
            (p.channel.clone(), json!({ "blocks": p.blocks.clone().unwrap_or_default() }))
        };
        assert_eq!(rig.event("Ev0Q1", mention("which deals are at risk?", "1780000001.000100")).await, 200, "{b}");
        let (_, answer) = last(&rig);
        let words = texts(&answer);
        assert!(words.contains("Understood: deals at risk"), "{b}: {words}");
        let listed = deals_named(&rig, &words.replace('\n', " \n "));
        assert!(!listed.is_empty(), "{b}: rep_1's risky deals are listed: {words}");
        assert!(listed.iter().all(|d| owner_of(&rig, d) == "rep_1"), "{b}: only rep_1's deals: {words}");

        // Another rep's figures: refused, not shown as empty.
        assert_eq!(rig.event("Ev0Q2", mention("how is rep_2 doing", "1780000001.000200")).await, 200, "{b}");
        let words = texts(&last(&rig).1);
        assert!(words.contains("don't have access"), "{b}: {words}");

        // A direct message is a question too.
        let dm = json!({ "type": "message", "channel_type": "im", "user": "U0REP1", "channel": "D0DM1",
                         "ts": "1780000001.000300", "text": "what's my win rate this quarter?" });
        assert_eq!(rig.event("Ev0Q3", dm).await, 200, "{b}");
        let (channel, answer) = last(&rig);
        let words = texts(&answer);
        assert_eq!(channel, "D0DM1", "{b}");
        assert!(words.contains("Understood: win rate") && words.contains('%'), "{b}: {words}");

        // Gibberish: asked back, with a button per likely reading.
        assert_eq!(rig.event("Ev0Q4", mention("flibber wobble gronk", "1780000001.000400")).await, 200, "{b}");
        let (_, asked) = last(&rig);
        let buttons: Vec<Value> = asked["blocks"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|block| block["type"] == "actions" && block["block_id"] == "ask_back")
            .flat_map(|block| block["elements"].as_array().cloned().unwrap_or_default())
            .collect();
        assert!(buttons.len() >= 2, "{b}: buttons to pick a reading: {asked}");
        assert!(buttons.iter().all(|x| x["action_id"].as_str().is_some_and(|a| a.starts_with("ask:"))), "{b}");
        let click = json!([{ "type": "button", "action_id": "ask:win_rate", "block_id": "ask_back",
                             "value": "flibber wobble gronk" }]);
        assert_eq!(rig.click("U0REP1", click, json!({ "ts": "1.2", "text": "asked" }), "askback").await, 200, "{b}");
        let replaced = rig.answered("askback");
        assert_eq!(replaced["replace_original"], json!(true), "{b}: {replaced}");
        assert!(texts(&replaced).contains("Understood: win rate"), "{b}: {replaced}");
    }
}

/// The deals a rep's reply lists (ids of the dataset that appear in `text`).
fn deals_named<'a>(rig: &'a Rig, text: &str) -> Vec<&'a engine::dataset::Deal> {
    rig.dataset.deals.iter().filter(|d| text.contains(&format!(" {} ", d.id))).collect()
}

fn owner_of(rig: &Rig, deal: &engine::dataset::Deal) -> String {
    let c = rig.dataset.schema.owner_column().expect("owner column");
    rig.dataset.cat_name(c, deal.cats[c]).unwrap_or_default().to_owned()
}

#[tokio::test]
async fn pipeline_mute_and_the_settings_modal_work_from_slack() {
    use bot::alerts::settings::AlertSettings;
    use tests::fake_slack::Fault;
    for store in each_store().await {
        let b = store.store.backend();
        let rig = rig(store).await;
        let s = rig.server.store.store.clone();
        // The whole pipeline for the admin: as many open deals as the data has.
        let today = chrono::Utc::now().date_naive();
        let open = rig.dataset.deals.iter().filter(|d| status(d, Some(today)) == Status::Open).count();
        let all = texts(&rig.command("U0ADMIN", "/pipeline", "").await);
        assert!(all.contains(&format!("in {open} open deals")), "{b}: {open} open: {all}");
        for needle in ["*Risk-adjusted*", "*Team health index*", "🔴", "*The riskiest deals*\n1. *"] {
            assert!(all.contains(needle), "{b}: the pipeline lacks {needle:?}: {all}");
        }
        // One setting changed by a command, through the same checks as the REST API.
        let saved = texts(&rig.command("U0REP1", "/dealwatch", "set threshold 80").await);
        assert!(saved.contains("Saved") && saved.contains("80"), "{b}: {saved}");
        let stored = AlertSettings::from_stored(s.alert_settings(&rig.tenant, "rep_1").await.expect("read"));
        assert_eq!(stored.critical_deals.map(|c| c.threshold), Some(80), "{b}");
        let refused = texts(&rig.command("U0REP1", "/dealwatch", "set threshold 300").await);
        assert!(refused.contains("threshold"), "{b}: the refused field is named: {refused}");
        let unchanged = AlertSettings::from_stored(s.alert_settings(&rig.tenant, "rep_1").await.expect("read"));
        assert_eq!(unchanged.critical_deals.map(|c| c.threshold), Some(80), "{b}: nothing half-saved");
        let wrong = texts(&rig.command("U0REP1", "/dealwatch", "set timezone Mars/Olympus").await);
        assert!(wrong.contains("Mars/Olympus"), "{b}: {wrong}");
        // A rep's: only their own deals are listed.
        let mine = rig.command("U0REP1", "/pipeline", "").await;
        tests::assert_block_kit(&mine["blocks"]);
        let listed = deals_named(&rig, &texts(&mine));
        assert!(!listed.is_empty(), "{b}: {mine}");
        assert!(listed.iter().all(|d| owner_of(&rig, d) == "rep_1"), "{b}: only rep_1's deals: {mine}");
        let mine_open = rig
            .dataset
            .deals
            .iter()
            .filter(|d| status(d, Some(today)) == Status::Open && owner_of(&rig, d) == "rep_1")
            .count();
        assert!(texts(&mine).contains(&format!("in {mine_open} open deals")), "{b}: {mine}");
        // Filters narrow it; another rep's pipeline is refused; a value no deal has is said so.
        let narrowed = texts(&rig.command("U0MGR1", "/pipeline", "rep:rep_1 risk:critical risk:high").await);
        assert!(narrowed.contains("Pipeline: rep:rep_1 risk:critical risk:high"), "{b}: {narrowed}");
        assert!(deals_named(&rig, &narrowed).iter().all(|d| owner_of(&rig, d) == "rep_1"), "{b}: {narrowed}");
        assert!(texts(&rig.command("U0REP1", "/pipeline", "rep:rep_2").await).contains("don't have access"), "{b}");
        let nowhere = texts(&rig.command("U0ADMIN", "/pipeline", "stage:Nowhere").await);
        assert!(nowhere.contains("no open deal has stage \"Nowhere\""), "{b}: {nowhere}");
        assert!(texts(&rig.command("U0ADMIN", "/pipeline", "colour:red").await).contains("unknown filter"), "{b}");

        // Mute a kind: stored in the settings, and routing leaves the user out.
        let muted = texts(&rig.command("U0MGR1", "/dealwatch", "mute segment").await);
        assert!(muted.contains("Muted segment decline alerts"), "{b}: {muted}");
        let settings = AlertSettings::from_stored(s.alert_settings(&rig.tenant, "manager_1").await.expect("read"));
        assert_eq!(settings.muted, Some(vec![engine::alerts::AlertKind::SegmentDecline]), "{b}");
        let routing =
            bot::alerts::routing::Routing::load(s.as_ref(), &rig.tenant, &["slack".to_owned()]).await.expect("routing");
        let manager = routing.user("manager_1").expect("manager");
        assert!(routing.with_shared(engine::alerts::AlertKind::SegmentDecline, vec![manager]).is_empty(), "{b}");
        assert_eq!(routing.with_shared(engine::alerts::AlertKind::CriticalDeal, vec![manager]).len(), 1, "{b}");
        let unmuted = texts(&rig.command("U0MGR1", "/dealwatch", "unmute").await);
        assert!(unmuted.contains("Unmuted every alert type (segment decline)"), "{b}: {unmuted}");
        assert!(
            texts(&rig.command("U0MGR1", "/dealwatch", "mute nonsense").await).contains("unknown alert type"),
            "{b}"
        );

        // Settings: the command opens the modal with the trigger and answers nothing in the channel.
        let opened = rig.command("U0REP1", "/dealwatch", "settings").await;
        assert_eq!(opened, Value::String(String::new()), "{b}: an empty acknowledgement");
        let request = rig.slack.requests("views.open").pop().expect("views.open");
        assert_eq!(request["trigger_id"], "13345224609.738474920.8088930838d88f008e0", "{b}");
        assert_eq!(request["view"]["callback_id"], "settings", "{b}");
        // Submitted: saved through the same path as the REST API, and read back by the API.
        let values = json!({
            "critical": { "value": { "type": "checkboxes", "selected_options": [{ "value": "on" }] } },
            "threshold": { "value": { "type": "number_input", "value": "85" } },
            "digest": { "value": { "type": "checkboxes", "selected_options": [{ "value": "on" }] } },
            "digest_time": { "value": { "type": "timepicker", "selected_time": "07:30" } },
            "timezone": { "value": { "type": "plain_text_input", "value": "America/New_York" } },
            "quiet": { "value": { "type": "checkboxes", "selected_options": [] } },
            "quiet_start": { "value": { "type": "timepicker", "selected_time": "20:00" } },
            "quiet_end": { "value": { "type": "timepicker", "selected_time": "08:00" } },
            "muted": { "value": { "type": "checkboxes", "selected_options": [{ "value": "weekly_summary" }] } }
        });
        let (status, answer) = rig.submit("U0REP1", "settings", "command", values.clone()).await;
        assert_eq!((status, answer.clone()), (200, Value::String(String::new())), "{b}: the modal closes");
        let saved = AlertSettings::from_stored(s.alert_settings(&rig.tenant, "rep_1").await.expect("read"));
        assert_eq!(saved.critical().threshold, 85, "{b}");
        let digest = saved.daily_digest.as_ref().expect("digest");
        assert_eq!(
            (digest.enabled, digest.time.as_str(), digest.timezone.as_str()),
            (true, "07:30", "America/New_York")
        );
        assert!(saved.quiet_window().is_none(), "{b}: quiet hours off");
        assert!(saved.mutes(engine::alerts::AlertKind::WeeklySummary), "{b}");
        // A wrong value stays in the modal, under its field; nothing changes.
        let mut bad = values.clone();
        bad["timezone"]["value"]["value"] = "Mars/Olympus".into();
        let (status, answer) = rig.submit("U0REP1", "settings", "command", bad).await;
        assert_eq!((status, answer["response_action"].as_str()), (200, Some("errors")), "{b}: {answer}");
        assert!(answer["errors"]["timezone"].as_str().is_some_and(|e| e.contains("Mars/Olympus")), "{b}: {answer}");
        let mut bad = values;
        bad["threshold"]["value"]["value"] = "300".into();
        let (_, answer) = rig.submit("U0REP1", "settings", "command", bad).await;
        assert!(answer["errors"]["threshold"].is_string(), "{b}: {answer}");
        let kept = AlertSettings::from_stored(s.alert_settings(&rig.tenant, "rep_1").await.expect("read"));
        assert_eq!(kept.daily_digest.as_ref().map(|d| d.timezone.clone()).as_deref(), Some("America/New_York"), "{b}");
        // Slack refusing or failing to open the modal is said, not swallowed.
        for fault in [Fault::SlackError("expired_trigger_id"), Fault::ServerError, Fault::RateLimited(1)] {
            rig.slack.script_method("views.open", &[fault]);
            let said = texts(&rig.command("U0REP1", "/dealwatch", "settings").await);
            assert!(said.contains("did not open the settings form"), "{b} {fault:?}: {said}");
        }
        let log = s.audit_log(&rig.tenant, 100).await.expect("audit");
        assert!(log.iter().filter(|e| e.action == "settings.update").count() >= 3, "{b}: mute, unmute, modal");
    }
}

#[tokio::test]
async fn card_buttons_create_tasks_judge_the_score_and_false_alarms_ask_why() {
    use tests::fake_slack::Fault;
    for store in each_store().await {
        let b = store.store.backend();
        let rig = rig(store).await;
        let s = rig.server.store.store.clone();
        let since = chrono::Utc::now() - chrono::Duration::hours(1);
        let deal = rig.open_deal("rep_1").id.to_string();
        let card = rig.command("U0REP1", "/deal-risk", &deal).await;
        let actions = card["blocks"]
            .as_array()
            .expect("blocks")
            .iter()
            .find(|b| b["type"] == "actions")
            .cloned()
            .expect("actions");
        let ids: Vec<&str> =
            actions["elements"].as_array().expect("elements").iter().filter_map(|e| e["action_id"].as_str()).collect();
        assert_eq!(ids, ["open_deal", "task", "card_useful", "card_false_alarm", "card_snooze"], "{b}");
        let element = |id: &str| {
            actions["elements"].as_array().expect("e").iter().find(|e| e["action_id"] == id).cloned().expect(id)
        };
        let message = json!({ "ts": "1.2", "text": card["text"], "blocks": card["blocks"] });

        // Create follow-up task: recorded once per message, for the deal's owner.
        assert_eq!(rig.click("U0REP1", json!([element("task")]), message.clone(), "task").await, 200, "{b}");
        let said = rig.answered("task")["text"].as_str().unwrap_or_default().to_owned();
        assert!(said.contains(&format!("Task created on {deal} for rep_1")) && said.contains("due"), "{b}: {said}");
        assert_eq!(rig.click("U0REP1", json!([element("task")]), message.clone(), "task-again").await, 200, "{b}");
        assert!(rig.answered("task-again")["text"].as_str().is_some_and(|t| t.contains("already created")), "{b}");
        let tasks = s.tasks(&rig.tenant, Some(&deal)).await.expect("tasks");
        assert_eq!(tasks.len(), 1, "{b}: {tasks:?}");
        assert_eq!(
            (tasks[0].owner.as_deref(), tasks[0].state.as_str(), tasks[0].created_by.as_str()),
            (Some("rep_1"), "recorded", "rep_1")
        );
        assert!(
            tasks[0].due_date.is_some_and(|d| d > chrono::Utc::now().date_naive() - chrono::Duration::days(1)),
            "{b}"
        );
        // Someone else's deal: no task.
        let theirs = rig.open_deal("rep_2").id.to_string();
        let other = json!([{ "type": "button", "action_id": "task", "value": theirs }]);
        assert_eq!(rig.click("U0REP1", other, message.clone(), "task-other").await, 200, "{b}");
        assert!(rig.answered("task-other")["text"].as_str().is_some_and(|t| t.contains("don't have access")), "{b}");
        assert!(s.tasks(&rig.tenant, Some(&theirs)).await.expect("tasks").is_empty(), "{b}");

        // Snooze from the card: alerts on the deal are snoozed for rep_1; the judgement buttons
        // give way to a line, Open in CRM and the task stay.
        let mut snooze = element("card_snooze");
        snooze["selected_option"] =
            json!({ "value": format!("{}|1w", element("card_useful")["value"].as_str().expect("v")) });
        assert_eq!(rig.click("U0REP1", json!([snooze]), message.clone(), "card-snooze").await, 200, "{b}");
        let updated = rig.answered("card-snooze");
        assert_eq!(updated["replace_original"], true, "{b}");
        assert!(texts(&updated).contains("Alerts on this deal snoozed until"), "{b}: {updated}");
        let kept: Vec<String> = updated["blocks"]
            .as_array()
            .expect("blocks")
            .iter()
            .filter(|b| b["type"] == "actions")
            .flat_map(|b| b["elements"].as_array().cloned().unwrap_or_default())
            .filter_map(|e| e["action_id"].as_str().map(str::to_owned))
            .collect();
        assert_eq!(kept, ["open_deal", "task"], "{b}");
        let feedback = s.feedback(&rig.tenant, since).await.expect("feedback");
        assert!(
            feedback.iter().any(|f| f.subject == deal && f.user_id == "rep_1" && f.snooze_until_ms.is_some()),
            "{b}: {feedback:?}"
        );

        // Mark false alarm: a modal asks why; its answer is stored with the judgement and the
        // card is updated in place.
        assert_eq!(rig.click("U0REP1", json!([element("card_false_alarm")]), message.clone(), "why").await, 200, "{b}");
        let modal = rig.slack.requests("views.open").pop().expect("views.open");
        assert_eq!(
            (modal["trigger_id"].as_str(), modal["view"]["callback_id"].as_str()),
            (Some("t.1"), Some("false_alarm")),
            "{b}"
        );
        let metadata = modal["view"]["private_metadata"].as_str().expect("metadata").to_owned();
        assert!(
            !s.feedback(&rig.tenant, since)
                .await
                .expect("f")
                .iter()
                .any(|f| f.action == bot::alerts::feedback::Action::FalseAlarm),
            "{b}: not before the answer"
        );
        let values = json!({
            "reason": { "value": { "type": "radio_buttons", "selected_option": { "value": "The CRM data is out of date" } } },
            "details": { "value": { "type": "plain_text_input", "value": "Signed last week" } }
        });
        let (code, answer) = rig.submit("U0REP1", "false_alarm", &metadata, values.clone()).await;
        assert_eq!((code, answer), (200, Value::String(String::new())), "{b}");
        let judged: Vec<_> = s
            .feedback(&rig.tenant, since)
            .await
            .expect("f")
            .into_iter()
            .filter(|f| f.action == bot::alerts::feedback::Action::FalseAlarm)
            .collect();
        assert_eq!(judged.len(), 1, "{b}");
        assert_eq!(judged[0].reason.as_deref(), Some("The CRM data is out of date: Signed last week"), "{b}");
        let line = texts(&rig.answered("why"));
        assert!(
            line.contains("Marked a false alarm (The CRM data is out of date: Signed last week) by <@U0REP1>"),
            "{b}: {line}"
        );
        assert!(line.contains("/100"), "{b}: the card itself stays: {line}");
        // The same submission again: one judgement.
        rig.submit("U0REP1", "false_alarm", &metadata, values).await;
        assert_eq!(
            s.feedback(&rig.tenant, since)
                .await
                .expect("f")
                .iter()
                .filter(|f| f.action == bot::alerts::feedback::Action::FalseAlarm)
                .count(),
            1,
            "{b}"
        );
        // Slack down when the modal should open: the false alarm is stored without a reason.
        let second = rig.open_deal("rep_1");
        let another = rig
            .dataset
            .deals
            .iter()
            .find(|d| {
                owner_of(&rig, d) == "rep_1"
                    && d.id != second.id
                    && status(d, Some(chrono::Utc::now().date_naive())) == Status::Open
            })
            .expect("another deal")
            .id
            .to_string();
        rig.slack.script_method("views.open", &[Fault::ServerError]);
        let click = json!([{ "type": "button", "action_id": "card_false_alarm", "value": format!("{another}|80") }]);
        assert_eq!(rig.click("U0REP1", click, message.clone(), "why-down").await, 200, "{b}");
        assert!(texts(&rig.answered("why-down")).contains("Marked a false alarm by <@U0REP1>"), "{b}");
        assert!(
            s.feedback(&rig.tenant, since).await.expect("f").iter().any(|f| f.subject == another && f.reason.is_none()),
            "{b}"
        );
        let log = s.audit_log(&rig.tenant, 100).await.expect("audit");
        assert!(log.iter().any(|e| e.action == "task.create" && e.target.as_deref() == Some(deal.as_str())), "{b}");
        assert!(log.iter().any(|e| e.action == "deal.feedback"), "{b}");
    }
}

#[tokio::test]
async fn the_home_tab_is_published_and_slack_failures_on_events_are_retried_by_slack() {
    use tests::fake_slack::Fault;
    for store in each_store().await {
        let b = store.store.backend();
        let rig = rig(store).await;
        rig.slack.join("C0GENERAL");
        let home = json!({ "type": "app_home_opened", "user": "U0REP1", "channel": "D0REP1", "tab": "home", "event_ts": "1780000000.1" });
        assert_eq!(rig.event("Ev0HOME1", home.clone()).await, 200, "{b}");
        let published = rig.slack.requests("views.publish").pop().expect("views.publish");
        assert_eq!(
            (published["user_id"].as_str(), published["view"]["type"].as_str()),
            (Some("U0REP1"), Some("home")),
            "{b}"
        );
        let text = texts(&published["view"]);
        assert!(text.contains("Your open deals by risk"), "{b}: {text}");
        let listed: Vec<String> = rig
            .dataset
            .deals
            .iter()
            .filter(|d| text.contains(&format!("|{}>", d.id)))
            .map(|d| owner_of(&rig, d))
            .collect();
        assert!(!listed.is_empty() && listed.iter().all(|o| o == "rep_1"), "{b}: only rep_1's deals: {listed:?}");
        assert!(published["view"].to_string().contains("open_settings"), "{b}");
        // Its settings button opens the modal, marked to refresh the tab after a save.
        let button = json!([{ "type": "button", "action_id": "open_settings" }]);
        let payload = json!({ "type": "block_actions", "team": { "id": TEAM }, "user": { "id": "U0REP1" }, "trigger_id": "t.home",
                              "view": { "type": "home", "id": "V0HOME" }, "actions": button });
        let body = serde_urlencoded::to_string([("payload", payload.to_string())]).expect("form");
        assert_eq!(rig.signed("/slack/interactions", &body, FORM, SECRET, 0).await.0, 200, "{b}");
        let modal = rig.slack.requests("views.open").pop().expect("views.open");
        assert_eq!(
            (modal["trigger_id"].as_str(), modal["view"]["private_metadata"].as_str()),
            (Some("t.home"), Some("home")),
            "{b}"
        );

        // views.publish rate-limited or failing: 500, so Slack retries; the retry is handled.
        let publishes = || rig.slack.requests("views.publish").len();
        let before = publishes();
        for fault in [Fault::RateLimited(1), Fault::ServerError] {
            rig.slack.script_method("views.publish", &[fault]);
            assert_eq!(rig.event("Ev0HOME2", home.clone()).await, 500, "{b} {fault:?}");
        }
        assert_eq!(rig.event("Ev0HOME2", home.clone()).await, 200, "{b}: Slack's retry");
        assert_eq!(rig.event("Ev0HOME2", home.clone()).await, 200, "{b}: and again: a duplicate");
        assert_eq!(publishes(), before + 3, "{b}: two failures, one success, no more");
        // ok:false is final: acknowledged, and a retry is not handled again.
        rig.slack.script_method("views.publish", &[Fault::SlackError("not_enabled")]);
        assert_eq!(rig.event("Ev0HOME3", home.clone()).await, 200, "{b}");
        assert_eq!(rig.event("Ev0HOME3", home).await, 200, "{b}");
        assert_eq!(publishes(), before + 4, "{b}");
        // The same for a mention's reply (shown to its asker: chat.postEphemeral).
        rig.slack.join("C0GENERAL");
        let mention = json!({ "type": "app_mention", "user": "U0REP1", "channel": "C0GENERAL", "ts": "1780000000.000200", "text": "<@U0DW> hi" });
        rig.slack.script_method("chat.postEphemeral", &[Fault::ServerError]);
        assert_eq!(rig.event("Ev0MENTION9", mention.clone()).await, 500, "{b}");
        assert_eq!(rig.event("Ev0MENTION9", mention).await, 200, "{b}");
        assert_eq!(rig.slack.ephemeral().len(), 1, "{b}: one reply");
    }
}

#[tokio::test]
async fn people_are_found_by_email_and_workspaces_install_through_oauth() {
    use tests::fake_slack::Fault;
    const KEY: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="; // 32 bytes
    for store in each_store().await {
        let b = store.store.backend();
        let rig = rig_with(store, |s| {
            s.slack.client_id = Some("123.456".into());
            s.slack.client_secret = Some("app-secret".to_owned().into());
            s.slack.token_key = Some(KEY.to_owned().into());
            s.slack.redirect_url = Some("https://dealwatch.example.com/slack/oauth/callback".into());
        })
        .await;
        let s = rig.server.store.store.clone();
        // rep_3 has no Slack id in the store: found by their email, once.
        rig.slack.add_user("rep_3@acme.test", "U0REP3");
        let deal = rig.open_deal("rep_3").id.to_string();
        assert!(texts(&rig.command("U0REP3", "/deal-risk", &deal).await).contains("/100"), "{b}: rep_3 is known");
        let lookups = || rig.slack.calls().iter().filter(|c| *c == "users.lookupByEmail").count();
        let first = lookups();
        assert!(first >= 1, "{b}");
        assert!(texts(&rig.command("U0REP3", "/deal-risk", &deal).await).contains("/100"), "{b}");
        assert_eq!(lookups(), first, "{b}: answers are remembered");
        // Slack failing the lookup: the sender stays unknown for now, and nothing is remembered.
        rig.slack.script_method("users.lookupByEmail", &[Fault::ServerError]);
        assert!(texts(&rig.command("U0REP9", "/deal-risk", &deal).await).contains("don't know you"), "{b}");

        // Install: an admin's link, Slack's consent screen, the callback.
        let admin = tests::token("acme", "admin", bot::store::Role::Admin, 600);
        let rep = tests::token("acme", "rep_1", bot::store::Role::Rep, 600);
        assert_eq!(rig.server.post("/v1/slack/install-link", &rep, &json!({})).await.0, 403, "{b}");
        let (status, link) = rig.server.post("/v1/slack/install-link", &admin, &json!({})).await;
        assert_eq!(status, 200, "{b}: {link}");
        let url = link["url"].as_str().expect("url");
        assert!(url.starts_with("https://dealwatch.example.com/slack/install?state="), "{b}: {url}");
        let state = url.split("state=").nth(1).expect("state").to_owned();
        let browser = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().expect("client");
        let install = browser.get(rig.server.url(&format!("/slack/install?state={state}"))).send().await.expect("GET");
        assert_eq!(install.status(), 302, "{b}");
        let location = install.headers()["location"].to_str().expect("location").to_owned();
        assert!(location.contains("/oauth/v2/authorize?client_id=123.456&scope=commands"), "{b}: {location}");
        // Slack gets a state of its own, bound to this browser by a cookie; the link is used up.
        let consent = location.split("state=").nth(1).expect("state").split('&').next().expect("state").to_owned();
        assert_ne!(consent, state, "{b}");
        let cookie = install.headers()["set-cookie"].to_str().expect("cookie").to_owned();
        assert!(
            cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax") && cookie.contains("Secure"),
            "{b}: {cookie}"
        );
        let cookie = cookie.split(';').next().expect("name=value").to_owned();
        let again = browser.get(rig.server.url(&format!("/slack/install?state={state}"))).send().await.expect("GET");
        assert_eq!(again.status(), 400, "{b}: an install link works once");
        rig.slack.oauth_app("123.456", "app-secret");
        rig.slack.oauth_code("code-1", "T0NEWCO", "New Co", "xoxb-newco");
        let callback = |code: &str, state: &str, cookie: Option<&str>| {
            let url = rig.server.url(&format!("/slack/oauth/callback?code={code}&state={state}"));
            let mut request = browser.get(url);
            if let Some(cookie) = cookie {
                request = request.header("cookie", cookie);
            }
            async move {
                let r = request.send().await.expect("GET");
                (r.status().as_u16(), r.text().await.expect("body"))
            }
        };
        // Slack's answer brought to another browser (without the cookie) installs nothing.
        let (status, page) = callback("code-1", &consent, None).await;
        assert!(status == 400 && page.contains("another browser"), "{b}: {status} {page}");
        assert!(s.slack_installation("T0NEWCO").await.expect("read").is_none(), "{b}");
        let (status, page) = callback("code-1", &consent, Some(&cookie)).await;
        assert_eq!(status, 200, "{b}: {page}");
        assert!(page.contains("Dealwatch now answers in New Co"), "{b}: {page}");
        let installed = s.slack_installation("T0NEWCO").await.expect("read").expect("stored");
        assert_eq!((installed.tenant.as_str(), installed.installed_by.as_deref()), ("acme", Some("admin")), "{b}");
        assert!(!installed.token_sealed.contains("xoxb"), "{b}: the token is sealed");
        // The code is spent; the link's own state, or a forged or damaged one, installs nothing.
        assert_eq!(callback("code-1", &consent, Some(&cookie)).await.0, 502, "{b}");
        assert_eq!(callback("code-2", &state, Some(&cookie)).await.0, 400, "{b}");
        assert_eq!(callback("code-2", &format!("{consent}x"), Some(&cookie)).await.0, 400, "{b}");
        assert_eq!(callback("code-2", "nonsense", Some(&cookie)).await.0, 400, "{b}");
        // The new workspace is answered with its own token.
        let body = command_body(
            "T0NEWCO",
            "U0REP1",
            "/deal-risk",
            &rig.open_deal("rep_1").id.to_string(),
            &rig.slack.response_url("new"),
        );
        let (status, card) = rig.signed("/slack/commands", &body, FORM, SECRET, 0).await;
        assert_eq!(status, 200, "{b}");
        assert!(texts(&card).contains("/100"), "{b}: {card}");
        let home = json!({ "type": "event_callback", "team_id": "T0NEWCO", "api_app_id": "A0DW", "event_id": "Ev0NEW1", "event_time": 1,
                           "event": { "type": "app_home_opened", "user": "U0REP1", "channel": "D1", "tab": "home", "event_ts": "1.1" } });
        assert_eq!(rig.signed("/slack/events", &home.to_string(), "application/json", SECRET, 0).await.0, 200, "{b}");
        let used = rig.slack.calls_with_tokens();
        assert_eq!(
            used.last().map(|(m, t)| (m.as_str(), t.as_str())),
            Some(("views.publish", "xoxb-newco")),
            "{b}: {used:?}"
        );
        let log = s.audit_log(&rig.tenant, 100).await.expect("audit");
        assert!(log.iter().any(|e| e.action == "slack.install" && e.target.as_deref() == Some("T0NEWCO")), "{b}");
    }
}

#[tokio::test]
async fn socket_mode_takes_commands_clicks_modals_and_events_over_slacks_websocket() {
    use std::time::Duration;
    use tests::fake_slack::Fault;
    const APP_TOKEN: &str = "xapp-1-A0DW-1-socket";
    const WAIT: Duration = Duration::from_secs(20);
    for store in each_store().await {
        let b = store.store.backend();
        // No signing secret: nothing reaches /slack/* over HTTP, all comes over the socket.
        let rig = rig_with(store, |s| {
            s.slack.signing_secrets.clear();
            s.slack.socket_mode = true;
            s.slack.app_token = Some(APP_TOKEN.to_owned().into());
        })
        .await;
        let hub = rig.slack.socket();
        rig.slack.add_app_token(APP_TOKEN);
        let state = &rig.server.state;
        let slack = state.transports.iter().find(|t| t.name() == "slack").expect("the Slack transport");
        let socket = slack.start(&state.services).await.expect("start").expect("on");
        hub.connected(1, WAIT).await;
        let opened: Vec<(String, String)> =
            rig.slack.calls_with_tokens().into_iter().filter(|(m, _)| m == "apps.connections.open").collect();
        assert!(!opened.is_empty() && opened.iter().all(|(_, t)| t == APP_TOKEN), "{b}: {opened:?}");

        // /deal-risk: the card is the acknowledgement's payload.
        let deal = rig.open_deal("rep_1").id.to_string();
        let command = |id: &str, user: &str, text: &str| {
            json!({ "type": "slash_commands", "envelope_id": id, "accepts_response_payload": true, "payload": {
                "token": "legacy", "team_id": TEAM, "team_domain": "acme", "channel_id": "C0GENERAL",
                "channel_name": "general", "user_id": user, "user_name": "someone", "command": "/deal-risk",
                "text": text, "api_app_id": "A0DW", "is_enterprise_install": "false",
                "response_url": rig.slack.response_url(id), "trigger_id": "t.socket" } })
        };
        hub.send(&command("env-card", "U0REP1", &deal));
        let ack = hub.ack("env-card", WAIT).await.expect("acknowledged");
        let card = &ack["payload"];
        assert_eq!(card["response_type"], "ephemeral", "{b}: {ack}");
        tests::assert_block_kit(&card["blocks"]);
        assert!(texts(card).contains(&deal), "{b}: {ack}");
        // Another rep's deal: refused, politely, over the socket too.
        let theirs = rig.open_deal("rep_2").id.to_string();
        hub.send(&command("env-theirs", "U0REP1", &theirs));
        let refused = hub.ack("env-theirs", WAIT).await.expect("acknowledged");
        assert!(texts(&refused["payload"]).contains("don't have access"), "{b}: {refused}");

        // A click: acknowledged without a payload (Slack takes none), stored as feedback, the
        // message updated through its response_url.
        let since = chrono::Utc::now() - chrono::Duration::hours(1);
        let useful = card["blocks"]
            .as_array()
            .expect("blocks")
            .iter()
            .filter_map(|b| b["elements"].as_array())
            .flatten()
            .find(|e| e["action_id"] == "card_useful")
            .cloned()
            .expect("a Useful button");
        let click = json!({ "type": "interactive", "envelope_id": "env-click", "accepts_response_payload": false, "payload": {
            "type": "block_actions", "team": { "id": TEAM }, "user": { "id": "U0REP1" }, "api_app_id": "A0DW",
            "container": { "type": "message", "message_ts": "1.2", "channel_id": "C0GENERAL", "is_ephemeral": true },
            "trigger_id": "t.click", "response_url": rig.slack.response_url("click"), "actions": [useful],
            "message": { "ts": "1.2", "text": card["text"], "blocks": card["blocks"] } } });
        hub.send(&click);
        assert_eq!(hub.ack("env-click", WAIT).await, Some(json!({ "envelope_id": "env-click" })), "{b}");
        let feedback = rig.server.store.store.feedback(&rig.tenant, since).await.expect("feedback");
        assert!(feedback.iter().any(|f| f.subject == deal && f.user_id == "rep_1"), "{b}: {feedback:?}");
        assert_eq!(rig.answered("click")["replace_original"], true, "{b}");

        // A modal submission with a wrong value: the errors are the payload, nothing is saved.
        let submission = json!({ "type": "interactive", "envelope_id": "env-modal", "accepts_response_payload": true, "payload": {
            "type": "view_submission", "team": { "id": TEAM }, "user": { "id": "U0REP1", "team_id": TEAM },
            "api_app_id": "A0DW", "trigger_id": "t.2",
            "view": { "id": "V1", "type": "modal", "callback_id": "settings", "private_metadata": "command", "state": { "values": {
                "critical": { "value": { "type": "checkboxes", "selected_options": [{ "value": "on" }] } },
                "threshold": { "value": { "type": "number_input", "value": "300" } },
                "digest": { "value": { "type": "checkboxes", "selected_options": [] } },
                "digest_time": { "value": { "type": "timepicker", "selected_time": "07:30" } },
                "timezone": { "value": { "type": "plain_text_input", "value": "UTC" } },
                "quiet": { "value": { "type": "checkboxes", "selected_options": [] } },
                "quiet_start": { "value": { "type": "timepicker", "selected_time": "20:00" } },
                "quiet_end": { "value": { "type": "timepicker", "selected_time": "08:00" } },
                "muted": { "value": { "type": "checkboxes", "selected_options": [] } } } } } } });
        let before = rig.server.store.store.alert_settings(&rig.tenant, "rep_1").await.expect("read");
        hub.send(&submission);
        let ack = hub.ack("env-modal", WAIT).await.expect("acknowledged");
        assert_eq!(ack["payload"]["response_action"], "errors", "{b}: {ack}");
        assert!(ack["payload"]["errors"]["threshold"].is_string(), "{b}: {ack}");
        let after = rig.server.store.store.alert_settings(&rig.tenant, "rep_1").await.expect("read");
        assert_eq!(format!("{after:?}"), format!("{before:?}"), "{b}: nothing saved");

        // An event whose Web API call fails is not acknowledged, so Slack delivers it again;
        // the second delivery is handled, once.
        let home = |attempt: u32| {
            json!({ "type": "events_api", "envelope_id": "env-home", "accepts_response_payload": false,
                "retry_attempt": attempt, "retry_reason": if attempt > 0 { "timeout" } else { "" }, "payload": {
                "type": "event_callback", "team_id": TEAM, "api_app_id": "A0DW", "event_id": "Ev0SOCKETHOME",
                "event_time": 1_780_000_000,
                "event": { "type": "app_home_opened", "user": "U0REP1", "channel": "D0REP1", "tab": "home", "event_ts": "1.1" } } })
        };
        rig.slack.script_method("views.publish", &[Fault::ServerError]);
        hub.send(&home(0));
        assert_eq!(hub.ack("env-home", Duration::from_secs(3)).await, None, "{b}: a failed event is not acknowledged");
        hub.send(&home(1));
        assert!(hub.ack("env-home", WAIT).await.is_some(), "{b}");
        let published = rig.slack.requests("views.publish");
        assert_eq!(published.len(), 2, "{b}: one failed, one published");
        assert_eq!(published[1]["user_id"], "U0REP1", "{b}");

        // Slack refreshes the connection: the app reconnects with a new ticket and goes on.
        let (before, _) = hub.connections();
        hub.disconnect("refresh_requested");
        hub.connected(before + 1, WAIT).await;
        hub.send(&command("env-after", "U0REP1", &deal));
        assert!(hub.ack("env-after", WAIT).await.is_some_and(|a| texts(&a["payload"]).contains(&deal)), "{b}");
        assert_eq!((hub.acks("env-card"), hub.acks("env-home")), (1, 1), "{b}: one acknowledgement each");
        // Over HTTP, with no signing secret, everything is refused.
        let body = command_body(TEAM, "U0REP1", "/deal-risk", &deal, &rig.slack.response_url("http"));
        assert_eq!(rig.signed("/slack/commands", &body, FORM, SECRET, 0).await.0, 401, "{b}");
        (socket.stop)().await;
    }
}
