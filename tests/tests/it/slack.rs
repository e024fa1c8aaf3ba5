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
    let today = chrono::Utc::now().date_naive();
    let dataset = seed_tenant(store.store.as_ref(), "acme", 2_000, 4, today).await;
    let tenant = TenantId::parse("acme").expect("tenant");
    for (user, slack) in [("rep_1", "U0REP1"), ("rep_2", "U0REP2"), ("manager_1", "U0MGR1"), ("admin", "U0ADMIN")] {
        let mut u = store.store.user(&tenant, user).await.expect("user").expect("seeded");
        u.slack_user_id = Some(slack.into());
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
    })
    .await;
    Rig { server, slack, dataset, tenant }
}

impl Rig {
    /// POSTs `body` to `path` signed with `secret` at `timestamp` (now when `None`).
    async fn signed(&self, path: &str, body: &str, content_type: &str, secret: &str, age: i64) -> (u16, Value) {
        let ts = chrono::Utc::now().timestamp() - age;
        let response = self
            .server
            .http
            .post(self.server.url(path))
            .header("content-type", content_type)
            .header("x-slack-request-timestamp", ts.to_string())
            .header("x-slack-signature", signature(secret, ts, body))
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
        let payload = json!({
            "type": "block_actions", "team": { "id": TEAM }, "user": { "id": user }, "api_app_id": "A0DW",
            "container": { "type": "message", "message_ts": "1.2", "channel_id": "C0GENERAL", "is_ephemeral": true }, "trigger_id": "t.1",
            "response_url": self.slack.response_url(response), "actions": actions, "message": message,
        });
        let body = serde_urlencoded::to_string([("payload", payload.to_string())]).expect("form");
        self.signed("/slack/interactions", &body, FORM, SECRET, 0).await.0
    }

    /// An open deal of `owner`.
    fn open_deal(&self, owner: &str) -> &engine::dataset::Deal {
        let today = chrono::Utc::now().date_naive();
        let c = self.dataset.schema.owner_column().expect("owner column");
        self.dataset
            .deals
            .iter()
            .find(|d| status(d, Some(today)) == Status::Open && self.dataset.cat_name(c, d.cats[c]) == Some(owner))
            .expect("an open deal of that owner")
    }
}

const FORM: &str = "application/x-www-form-urlencoded";

fn command_body(team: &str, user: &str, command: &str, text: &str, response_url: &str) -> String {
    serde_urlencoded::to_string([
        ("token", "legacy-verification-token"),
        ("team_id", team),
        ("team_domain", "acme"),
        ("channel_id", "C0GENERAL"),
        ("channel_name", "general"),
        ("user_id", user),
        ("user_name", "someone"),
        ("command", command),
        ("text", text),
        ("response_url", response_url),
        ("trigger_id", "13345224609.738474920.8088930838d88f008e0"),
        ("api_app_id", "A0DW"),
    ])
    .expect("form")
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
    use bot::alerts::{AlertQuery, NewAlert};
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
        let alert = NewAlert::now(
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
        let posted = rig.slack.posted();
        assert_eq!(posted.len(), 1, "{b}: {posted:?}");
        assert_eq!(posted[0].channel, "C0GENERAL", "{b}");
        assert!(posted[0].blocks.as_ref().is_some_and(|v| v.to_string().contains("/deal-risk")), "{b}: help");
        // An event from a workspace that is not connected is acknowledged and dropped.
        let foreign = mention.replace(TEAM, "T0OTHER").replace("Ev0MENTION1", "Ev0MENTION2");
        assert_eq!(rig.signed("/slack/events", &foreign, "application/json", SECRET, 0).await.0, 200, "{b}");
        assert_eq!(rig.slack.posted().len(), 1, "{b}");
        assert_eq!(rig.signed("/slack/events", "{not json", "application/json", SECRET, 0).await.0, 400, "{b}");
    }
}
