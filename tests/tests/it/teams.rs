//! The Teams bot end to end: activities posted to the real server with tokens signed the way the
//! Bot Connector signs them, answered through a fake Bot Connector, Entra ID token endpoint and
//! Bot Framework OpenID metadata on 127.0.0.1. On SQLite and PostgreSQL.

use bot::store::TenantId;
use chrono::{Duration, Utc};
use serde_json::{Value, json};
use tests::fake_teams::{FakeTeams, Fault};
use tests::{TestServer, each_store, seed_tenant};

const APP_ID: &str = "8b2d0f6e-1111-4c3a-9a55-0123456789ab";
const PASSWORD: &str = "teams-client-secret-for-tests";
/// The customer's Microsoft 365 tenant.
const AAD: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";

struct Rig {
    server: TestServer,
    teams: FakeTeams,
    dataset: engine::dataset::Dataset,
    tenant: TenantId,
}

/// Tenant `acme` with 2,000 generated deals. rep_1 is linked by the Entra id stored with them,
/// admin by the config, manager_1 only by email; a stranger is in Teams but not in Dealwatch.
async fn rig(store: tests::TestStore) -> Rig {
    let today = Utc::now().date_naive();
    let dataset = seed_tenant(store.store.as_ref(), "acme", 2_000, 4, today).await;
    let tenant = TenantId::parse("acme").expect("tenant");
    let mut rep = store.store.user(&tenant, "rep_1").await.expect("user").expect("seeded");
    rep.set_chat_id("teams", "aad-rep1");
    rep.time_zone = "Europe/Berlin".into();
    store.store.upsert_user(&tenant, &rep).await.expect("link rep_1");
    let teams = FakeTeams::start(APP_ID, PASSWORD, AAD).await;
    for (id, aad, email, name, conversation) in [
        ("29:rep1", "aad-rep1", "rep_1@acme.test", "Rita Rep", "a:rep1"),
        ("29:rep2", "aad-rep2", "rep_2@acme.test", "Raj Rep", "a:rep2"),
        ("29:mgr1", "aad-mgr1", "MANAGER_1@acme.test", "Maria Manager", "a:mgr1"),
        ("29:admin", "aad-admin", "ada@elsewhere.test", "Ada Admin", "a:admin"),
        ("29:x", "aad-x", "x@nowhere.test", "Xavier Stranger", "a:x"),
    ] {
        teams.add_user(id, aad, email, name);
        teams.add_conversation(conversation);
    }
    let fake = teams.clone();
    let server = TestServer::start(store, move |s| {
        fake.configure(s, "acme");
        s.teams.users = bot::config::UserLinks::default().with("acme", "admin", "aad-admin");
        s.alerts.deal_url = Some("https://acme.my.salesforce.com/{deal_id}".into());
        s.alerts.fallback_channel = "log".into();
        s.data_dir = std::env::temp_dir().join(format!("dealwatch-teams-{}", uuid::Uuid::new_v4().simple()));
    })
    .await;
    Rig { server, teams, dataset, tenant }
}

impl Rig {
    /// POSTs `activity` to `/api/messages` with `authorization` (a bearer token, or none).
    async fn post_with(&self, activity: &Value, authorization: Option<&str>) -> (u16, Value) {
        let mut request = self.server.http.post(self.server.url("/api/messages")).json(activity);
        if let Some(a) = authorization {
            request = request.header("authorization", a);
        }
        tests::json_of(request.send().await.expect("POST")).await
    }

    /// POSTs `activity` as the Bot Connector would.
    async fn post(&self, activity: &Value) -> (u16, Value) {
        let token = self.teams.token(activity["serviceUrl"].as_str().expect("serviceUrl"));
        self.post_with(activity, Some(&format!("Bearer {token}"))).await
    }

    /// `text` from `who` (one of the fake's users) in their personal chat; the card answered.
    async fn say(&self, who: &str, text: &str) -> Value {
        let (id, aad, conversation) = person(who);
        let before = self.teams.activities().len();
        let (status, body) = self.post(&self.teams.message_activity(conversation, id, aad, text)).await;
        assert_eq!(status, 200, "{text}: {body}");
        let sent = self.teams.activities();
        assert_eq!(sent.len(), before + 1, "{text}: one reply");
        let reply = sent.last().expect("a reply");
        assert_eq!(reply.conversation_id, conversation);
        assert_eq!(reply.activity["attachments"][0]["contentType"], "application/vnd.microsoft.card.adaptive");
        reply.activity["attachments"][0]["content"].clone()
    }

    /// A card button clicked by `who` (Action.Execute): the invoke's answer.
    async fn click(&self, who: &str, card_id: &str, verb: &str, data: Value) -> Value {
        let (id, aad, conversation) = person(who);
        let mut data = data;
        data["verb"] = verb.into();
        let invoke = self.teams.invoke_action(conversation, id, aad, card_id, verb, &data);
        let (status, body) = self.post(&invoke).await;
        assert_eq!(status, 200, "{verb}: {body}");
        body
    }

    fn open_deal(&self, owner: &str) -> &engine::dataset::Deal {
        tests::open_deal(&self.dataset, owner)
    }

    /// A critical-deal alert on `deal` for `recipient` on `channel`, raised now.
    async fn raise(&self, deal: &engine::dataset::Deal, recipient: &str, channel: &str) -> bot::alerts::Alert {
        let mut payload = bot::alerts::templates::sample(engine::alerts::AlertKind::CriticalDeal).payload;
        payload["deal"]["deal_id"] = deal.id.to_string().into();
        payload["deal"]["company"] = deal.name.clone().into();
        let alert = bot::alerts::Alert::now(
            engine::alerts::AlertKind::CriticalDeal,
            deal.id.to_string(),
            recipient,
            channel,
            format!("test:{}:{recipient}:{}", deal.id, uuid::Uuid::new_v4()),
            payload,
            Utc::now(),
        );
        self.server.store.store.raise_alerts(&self.tenant, std::slice::from_ref(&alert)).await.expect("raise");
        alert
    }
}

/// The fake's users: (Teams id, Entra object id, personal conversation).
fn person(who: &str) -> (&'static str, &'static str, &'static str) {
    match who {
        "rep_1" => ("29:rep1", "aad-rep1", "a:rep1"),
        "rep_2" => ("29:rep2", "aad-rep2", "a:rep2"),
        "manager_1" => ("29:mgr1", "aad-mgr1", "a:mgr1"),
        "admin" => ("29:admin", "aad-admin", "a:admin"),
        _ => ("29:x", "aad-x", "a:x"),
    }
}

/// Every text a card shows (text blocks, facts, button titles), joined.
fn texts(card: &Value) -> String {
    fn walk(v: &Value, out: &mut Vec<String>) {
        match v {
            Value::Object(m) => {
                for key in ["text", "title", "value"] {
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

/// The verbs of a card's Action.Execute buttons.
fn verbs(card: &Value) -> Vec<String> {
    fn walk(v: &Value, out: &mut Vec<String>) {
        match v {
            Value::Object(m) => {
                if m.get("type") == Some(&json!("Action.Execute"))
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

#[tokio::test]
async fn every_kind_of_bad_bot_framework_token_is_refused_before_the_activity_is_read() {
    let rig = rig(tests::sqlite_store().await).await;
    let teams = &rig.teams;
    let service = teams.service_url();
    let activity = teams.message_activity("a:rep1", "29:rep1", "aad-rep1", "help");
    let now = Utc::now().timestamp();
    let bearer = |t: String| format!("Bearer {t}");
    let with = |key: &str, value: Value| {
        let mut claims = teams.claims(&service);
        claims[key] = value;
        bearer(teams.sign(&claims))
    };
    let forged_hs256 = {
        let key = jsonwebtoken::EncodingKey::from_secret(PASSWORD.as_bytes());
        jsonwebtoken::encode(&jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256), &teams.claims(&service), &key)
            .expect("HS256")
    };
    let refused = [
        ("no token", None),
        ("not a JWT", Some("Bearer not.a.jwt".to_owned())),
        ("another scheme", Some(format!("Basic {}", teams.token(&service)))),
        ("wrong audience", Some(with("aud", json!("another-bot")))),
        ("wrong issuer", Some(with("iss", json!("https://sts.windows.net/evil/")))),
        ("expired beyond the leeway", Some(with("exp", json!(now - 301)))),
        ("not valid yet", Some(with("nbf", json!(now + 600)))),
        ("an unpublished key", Some(bearer(teams.sign_rogue(&teams.claims(&service))))),
        ("serviceurl of another activity", Some(with("serviceurl", json!("https://smba.trafficmanager.net/emea/")))),
        (
            "no serviceurl",
            Some({
                let mut claims = teams.claims(&service);
                claims.as_object_mut().expect("claims").remove("serviceurl");
                bearer(teams.sign(&claims))
            }),
        ),
        ("HS256 with the app's secret", Some(bearer(forged_hs256))),
    ];
    for (why, authorization) in &refused {
        let (status, body) = rig.post_with(&activity, authorization.as_deref()).await;
        assert_eq!(status, 403, "{why}: {body}");
        assert!(!body.to_string().contains("exp"), "{why}: the answer names no evidence: {body}");
    }
    // A service URL outside the allow-list, even with a token naming it, is never talked to.
    let mut elsewhere = activity.clone();
    elsewhere["serviceUrl"] = "https://evil.example/teams/".into();
    let token = bearer(teams.sign(&teams.claims("https://evil.example/teams/")));
    assert_eq!(rig.post_with(&elsewhere, Some(&token)).await.0, 403, "not allow-listed");
    // A key not endorsed for the activity's channel.
    let mut skype = activity.clone();
    skype["channelId"] = "skype".into();
    assert_eq!(rig.post(&skype).await.0, 403, "the key is not endorsed for skype");
    assert!(teams.activities().is_empty(), "nothing refused reached the Connector: {:?}", teams.calls());
    // Five minutes' leeway: a token expired four minutes ago still passes.
    let (status, _) = rig.post_with(&activity, Some(&with("exp", json!(now - 240)))).await;
    assert_eq!(status, 200, "within the leeway");
    assert_eq!(teams.activities().len(), 1, "help was answered");
    // A valid token with a body that is not an activity: a clear 400, nothing sent.
    let token = bearer(teams.token(&service));
    let response = rig
        .server
        .http
        .post(rig.server.url("/api/messages"))
        .header("authorization", &token)
        .header("content-type", "application/json")
        .body("{\"type\": \"message\"")
        .send()
        .await
        .expect("POST");
    assert_eq!(response.status(), 400);
    assert!(response.text().await.expect("body").contains("not a Bot Framework activity"));
    // The metadata and keys were fetched once, and again (at most) for the unknown key.
    assert_eq!(teams.metadata_hits(), teams.keys_hits());
    assert!((1..=2).contains(&teams.keys_hits()), "keys fetched {} times", teams.keys_hits());

    // Keys that cannot be fetched are our problem: 503, so the Bot Connector tries again.
    teams.fail_keys(true);
    let fake = teams.clone();
    let fresh = TestServer::start(tests::sqlite_store().await, move |s| fake.configure(s, "acme")).await;
    let response = fresh
        .http
        .post(fresh.url("/api/messages"))
        .header("authorization", rig.teams.token(&rig.teams.service_url()))
        .json(&activity)
        .send()
        .await
        .expect("POST");
    assert_eq!(response.status(), 403, "no bearer scheme");
    let response = fresh
        .http
        .post(fresh.url("/api/messages"))
        .bearer_auth(rig.teams.token(&rig.teams.service_url()))
        .json(&activity)
        .send()
        .await
        .expect("POST");
    assert_eq!(response.status(), 503);
}

#[tokio::test]
async fn commands_and_questions_in_teams_are_answered_with_adaptive_cards() {
    for store in each_store().await {
        let b = store.store.backend();
        let rig = rig(store).await;
        let s = rig.server.store.store.clone();
        let mine = rig.open_deal("rep_1");
        let card = rig.say("rep_1", &format!("deal-risk {}", mine.id)).await;
        let text = texts(&card);
        assert!(text.contains(&format!("{}: risk", mine.name)), "{b}: {text}");
        assert!(text.contains("chance to win") && text.contains("Top risk factors"), "{b}: {text}");
        assert!(card.to_string().contains(&format!("https://acme.my.salesforce.com/{}", mine.id)), "{b}: {card}");
        for verb in ["task", "card_useful", "card_false_alarm", "card_snooze"] {
            assert!(verbs(&card).iter().any(|v| v == verb), "{b}: no {verb}: {card}");
        }
        let reply = rig.teams.activities().last().cloned().expect("reply");
        assert!(reply.reply_to.is_some(), "{b}: answered as a reply to the message");
        assert!(reply.token.len() > 20, "{b}: with an Entra token");
        // Another rep's deal: refused, and nothing about it shown.
        let theirs = rig.open_deal("rep_2");
        let refusal = texts(&rig.say("rep_1", &format!("/deal-risk {}", theirs.id)).await);
        assert!(refusal.contains("pipeline you don't have access to"), "{b}: {refusal}");
        assert!(!refusal.contains(&theirs.name), "{b}: {refusal}");
        // The pipeline, with filters; a filter that is not one is explained.
        let pipeline = texts(&rig.say("rep_1", "pipeline risk:critical").await);
        assert!(
            pipeline.contains("📊 Pipeline: risk:critical") && pipeline.contains("Risk-adjusted"),
            "{b}: {pipeline}"
        );
        let bad = texts(&rig.say("rep_1", "pipeline territory:EMEA").await);
        assert!(bad.contains("unknown filter `territory`"), "{b}: {bad}");
        // A manager found by their email (in the conversation's roster), mentioning the bot with
        // a question: linked for good, answered with what was understood.
        let answer = texts(&rig.say("manager_1", "<at>Dealwatch</at> how many deals did we win last quarter?").await);
        assert!(answer.contains("Understood: deal count"), "{b}: {answer}");
        let manager = s.user(&rig.tenant, "manager_1").await.expect("user").expect("exists");
        assert_eq!(manager.chat_id("teams"), Some("aad-mgr1"), "{b}: linked by email");
        // The admin, linked by the config.
        let help = texts(&rig.say("admin", "help").await);
        assert!(help.contains("deal-risk D12345"), "{b}: {help}");
        let admin = s.user(&rig.tenant, "admin").await.expect("user").expect("exists");
        assert_eq!(admin.chat_id("teams"), Some("aad-admin"), "{b}: stored, so alerts reach them");
        // Someone Dealwatch does not know, and an organisation that is not connected.
        let stranger = texts(&rig.say("xavier", "deal-risk Acme").await);
        assert!(stranger.contains("I don't know you yet"), "{b}: {stranger}");
        let mut foreign = rig.teams.message_activity("a:rep1", "29:rep1", "aad-rep1", "help");
        foreign["conversation"]["tenantId"] = "00000000-0000-0000-0000-000000000000".into();
        if foreign["channelData"]["tenant"]["id"].is_string() {
            foreign["channelData"]["tenant"]["id"] = "00000000-0000-0000-0000-000000000000".into();
        }
        assert_eq!(rig.post(&foreign).await.0, 200, "{b}");
        let last = rig.teams.activities().last().cloned().expect("answered");
        assert!(texts(&last.activity).contains("not connected to Dealwatch"), "{b}: {}", last.activity);
        // A setting changed by a command, through the same checks as the REST API.
        let saved = texts(&rig.say("rep_1", "dealwatch set threshold 80").await);
        assert!(saved.contains("✅ Saved") && saved.contains("above 80"), "{b}: {saved}");
        let wrong = texts(&rig.say("rep_1", "dealwatch set timezone Mars/Olympus").await);
        assert!(wrong.contains("unknown time zone \"Mars/Olympus\""), "{b}: {wrong}");
        // The settings open in a form on a card, with the values in force; Save stores them.
        let form = rig.say("rep_1", "settings").await;
        let input = |card: &Value, id: &str| {
            card["body"].as_array().and_then(|b| b.iter().find(|e| e["id"] == id)).map(|e| e["value"].clone())
        };
        assert_eq!(input(&form, "threshold"), Some(json!(80)), "{b}: {form}");
        assert_eq!(input(&form, "critical"), Some(json!("true")), "{b}");
        let save = json!({ "value": "", "choice": "", "critical": "true", "threshold": "85", "channels": "teams",
            "digest": "true", "digest_time": "09:15", "timezone": "Europe/Berlin", "quiet": "false",
            "quiet_start": "20:00", "quiet_end": "08:00", "muted": "segment_decline,high_performer" });
        let answer = rig.click("rep_1", "settings-card", "save_settings", save.clone()).await;
        let text = texts(&answer["value"]);
        assert!(text.contains("✅ Saved. Critical-deal alerts above 85, on teams. Daily digest at 09:15 (Europe/Berlin). No quiet hours. Muted: segment decline, high performer."), "{b}: {text}");
        assert_eq!(input(&answer["value"], "threshold"), Some(json!(85)), "{b}: the form shows what is stored now");
        let stored = s.alert_settings(&rig.tenant, "rep_1").await.expect("settings").expect("stored");
        assert_eq!(
            (stored["critical_deals"]["threshold"].as_u64(), stored["quiet_hours"]["enabled"].as_bool()),
            (Some(85), Some(false)),
            "{b}"
        );
        // A value the settings refuse: nothing stored, the form says which and why.
        let mut wrong = save;
        wrong["timezone"] = "Mars/Olympus".into();
        wrong["threshold"] = "60".into();
        let refused = rig.click("rep_1", "settings-card", "save_settings", wrong).await;
        assert!(texts(&refused["value"]).contains("Not saved: unknown time zone \"Mars/Olympus\""), "{b}: {refused}");
        let stored = s.alert_settings(&rig.tenant, "rep_1").await.expect("settings").expect("stored");
        assert_eq!(stored["critical_deals"]["threshold"], 85, "{b}: nothing half-written");
        // The people who wrote are remembered for proactive alerts, with their chats.
        let conversations = s.conversations(&rig.tenant, "teams").await.expect("conversations");
        let rep = conversations.iter().find(|c| c.key == "user:aad-rep1").expect("rep_1's chat");
        assert_eq!((rep.conversation_id.as_str(), rep.org_id.as_str()), ("a:rep1", AAD), "{b}");
        assert_eq!(rep.service_url, rig.teams.service_url(), "{b}");
        // One sign-in served every reply.
        assert_eq!(rig.teams.tokens_issued(), 1, "{b}: the Connector token is cached");
        // A busy Connector (429 asking for a second): the reply is sent again once, after the wait.
        rig.teams.script(&[Fault::RateLimited(1)]);
        let retried = texts(&rig.say("rep_1", "help").await);
        assert!(retried.contains("deal-risk D12345"), "{b}: {retried}");
        let replies =
            rig.teams.calls().iter().filter(|c| c.starts_with("POST /v3/conversations/a:rep1/activities")).count();
        // Down twice over (500, 500): the reply is lost and logged; Teams gets its 200 anyway,
        // so it does not deliver the message again.
        rig.teams.script(&[Fault::ServerError, Fault::ServerError]);
        let before = rig.teams.activities().len();
        let lost = rig.teams.message_activity("a:rep1", "29:rep1", "aad-rep1", "help");
        assert_eq!(rig.post(&lost).await.0, 200, "{b}");
        assert_eq!(rig.teams.activities().len(), before, "{b}: nothing delivered");
        let after =
            rig.teams.calls().iter().filter(|c| c.starts_with("POST /v3/conversations/a:rep1/activities")).count();
        assert_eq!(after, replies + 2, "{b}: tried twice, no more");
    }
}

#[tokio::test]
async fn card_buttons_are_stored_once_and_their_answer_replaces_the_card() {
    for store in each_store().await {
        let b = store.store.backend();
        let rig = rig(store).await;
        let s = rig.server.store.store.clone();
        let since = Utc::now() - Duration::hours(1);
        let mine = rig.open_deal("rep_1");
        let alert = rig.raise(mine, "rep_1", "teams").await;
        // Snooze a week (Action.Execute): the answer is the alert's card, judged.
        let snooze = json!({ "value": "", "choice": format!("{}|1w", alert.alert_id) });
        let answer = rig.click("rep_1", "card-1", "snooze", snooze.clone()).await;
        assert_eq!(
            (answer["statusCode"].as_u64(), answer["type"].as_str()),
            (Some(200), Some("application/vnd.microsoft.card.adaptive")),
            "{b}: {answer}"
        );
        let card = &answer["value"];
        let text = texts(card);
        assert!(text.contains("🔕 Snoozed until") && text.contains("by Rita Rep"), "{b}: {text}");
        assert!(text.contains(&format!("🚨 Critical deal: {}", mine.name)), "{b}: the alert itself stays: {text}");
        assert_eq!(verbs(card), ["task"], "{b}: the judgement buttons are gone");
        // Teams delivers the same click again: one snooze.
        rig.click("rep_1", "card-1", "snooze", snooze).await;
        let feedback = s.feedback(&rig.tenant, since).await.expect("feedback");
        assert_eq!(feedback.len(), 1, "{b}: {feedback:?}");
        assert!(feedback[0].snooze_until_ms.is_some(), "{b}");
        // The snooze is a week in rep_1's time zone (Berlin), said in it.
        let until = chrono::DateTime::from_timestamp_millis(feedback[0].snooze_until_ms.expect("until")).expect("time");
        assert!(text.contains(&bot::chat::actions::local(until, "Europe/Berlin")), "{b}: {text}");
        // A false alarm with its reason typed into the card.
        let other = rig.raise(rig.open_deal("rep_1"), "rep_1", "teams").await;
        let why = json!({ "value": other.alert_id, "choice": "", "reason": "already handled", "details": "signed on Friday" });
        let card = rig.click("rep_1", "card-2", "false_alarm", why).await;
        assert!(
            texts(&card["value"]).contains("Marked a false alarm (already handled: signed on Friday) by Rita Rep"),
            "{b}: {card}"
        );
        let feedback = s.feedback(&rig.tenant, since).await.expect("feedback");
        let stored = feedback.iter().find(|f| f.alert_id == other.alert_id).expect("stored");
        assert_eq!(stored.reason.as_deref(), Some("already handled: signed on Friday"), "{b}");
        // Someone else's alert: nothing stored, said so, the card left alone.
        let refused = rig.click("rep_2", "card-1", "useful", json!({ "value": alert.alert_id })).await;
        assert_eq!(refused["type"], "application/vnd.microsoft.activity.message", "{b}: {refused}");
        assert!(refused["value"].as_str().is_some_and(|t| t.contains("someone else")), "{b}: {refused}");
        assert_eq!(s.feedback(&rig.tenant, since).await.expect("feedback").len(), 2, "{b}");
        // A risk card's Useful: the card is drawn again from the deal's score, judged.
        let card = rig.say("rep_1", &format!("deal-risk {}", mine.id)).await;
        let value = card
            .pointer("/actions")
            .and_then(Value::as_array)
            .and_then(|a| a.iter().find(|x| x["verb"] == "card_useful").map(|x| x["data"]["value"].clone()));
        let value = value.expect("a Useful button with its value");
        let judged = rig.click("rep_1", "card-3", "card_useful", json!({ "value": value })).await;
        let text = texts(&judged["value"]);
        assert!(text.contains("✅ Marked useful by Rita Rep") && text.contains(&mine.name), "{b}: {text}");
        assert_eq!(verbs(&judged["value"]), ["task"], "{b}");
        // Create follow-up task: once per card and person, said in a message.
        let task = rig.click("rep_1", "card-3", "task", json!({ "value": mine.id.to_string() })).await;
        assert!(task["value"].as_str().is_some_and(|t| t.starts_with("📝 Task created on")), "{b}: {task}");
        let again = rig.click("rep_1", "card-3", "task", json!({ "value": mine.id.to_string() })).await;
        assert!(again["value"].as_str().is_some_and(|t| t.contains("already created")), "{b}: {again}");
        let tasks = s.tasks(&rig.tenant, Some(&mine.id.to_string())).await.expect("tasks");
        assert_eq!(tasks.len(), 1, "{b}: {tasks:?}");
        // A pick: that deal's card in place of the list.
        let picked = rig.click("rep_1", "card-4", "pick", json!({ "value": mine.id.to_string() })).await;
        assert!(texts(&picked["value"]).contains(&format!("{}: risk", mine.name)), "{b}: {picked}");
        // A button we never made: said so.
        let unknown = rig.click("rep_1", "card-4", "dance", json!({})).await;
        assert!(unknown["value"].as_str().is_some_and(|t| t.contains("not one of mine")), "{b}: {unknown}");
        let log = s.audit_log(&rig.tenant, 50).await.expect("audit");
        assert!(log.iter().any(|e| e.action == "alert.feedback" && e.actor == "rep_1"), "{b}");
        assert!(
            log.iter().any(|e| e.action == "task.create" && e.details.as_ref().is_some_and(|d| d["via"] == "teams")),
            "{b}"
        );
    }
}

#[tokio::test]
async fn alerts_reach_teams_proactively_and_busy_connectors_delay_them_without_duplicates() {
    for store in each_store().await {
        let b = store.store.backend();
        let rig = rig(store).await;
        let s = rig.server.store.store.clone();
        let sender = bot::wiring::sender(&rig.server.state.settings, s.clone()).expect("sender");
        // Installing the app in a personal chat stores the reference and says hello.
        let install = rig.teams.conversation_update("a:rep1", "29:rep1", "aad-rep1");
        assert_eq!(rig.post(&install).await.0, 200, "{b}");
        let hello = rig.teams.activities().last().cloned().expect("a welcome");
        assert!(texts(&hello.activity).contains("Dealwatch"), "{b}: {}", hello.activity);
        let mine = rig.open_deal("rep_1");
        let alert = rig.raise(mine, "rep_1", "teams").await;
        let now = Utc::now();
        let report = sender.deliver_due(now).await.expect("deliver");
        assert_eq!(report.sent, 1, "{b}: {report:?}");
        let posted = rig.teams.activities().last().cloned().expect("the alert");
        assert_eq!(posted.conversation_id, "a:rep1", "{b}");
        assert_eq!(posted.reply_to, None, "{b}: a new message, not a reply");
        assert_eq!(posted.activity["channelData"]["dealwatch"]["alert_id"], alert.alert_id.as_str(), "{b}");
        let card = &posted.activity["attachments"][0]["content"];
        assert!(texts(card).contains(&format!("🚨 Critical deal: {}", mine.name)), "{b}: {card}");
        let query = bot::alerts::AlertQuery { alert_id: Some(alert.alert_id.clone()), ..Default::default() };
        let sent = s.alerts(&rig.tenant, &query).await.expect("alert").remove(0);
        assert_eq!(sent.external_id, Some(format!("a:rep1:{}", posted.activity_id)), "{b}");

        // The Connector is busy (429 asking for a second, then a 500): the alert waits and
        // goes out once, on the third attempt.
        let busy = rig.raise(rig.open_deal("rep_1"), "rep_1", "teams").await;
        let now = Utc::now();
        rig.teams.script(&[Fault::RateLimited(1), Fault::ServerError]);
        let before = rig.teams.activities().len();
        assert_eq!(sender.deliver_due(now).await.expect("1").failed, 1, "{b}");
        assert_eq!(
            sender.deliver_due(now + Duration::seconds(29)).await.expect("early"),
            Default::default(),
            "{b}: backoff"
        );
        assert_eq!(sender.deliver_due(now + Duration::seconds(31)).await.expect("2").failed, 1, "{b}");
        let third = sender.deliver_due(now + Duration::seconds(95)).await.expect("3");
        assert_eq!(third.sent, 1, "{b}: {third:?}");
        let carrying = |id: &str| {
            rig.teams.activities().iter().filter(|a| a.activity["channelData"]["dealwatch"]["alert_id"] == id).count()
        };
        assert_eq!(carrying(&busy.alert_id), 1, "{b}: delivered once");
        assert_eq!(rig.teams.activities().len(), before + 1, "{b}");

        // manager_1 wrote only in a channel: their one-to-one chat is opened for the alert, and kept.
        let mut in_channel = rig.teams.message_activity(
            "19:deals@thread.tacv2;messageid=1",
            "29:mgr1",
            "aad-mgr1",
            "<at>Dealwatch</at> help",
        );
        in_channel["conversation"]["conversationType"] = "channel".into();
        rig.teams.add_conversation("19:deals@thread.tacv2;messageid=1");
        assert_eq!(rig.post(&in_channel).await.0, 200, "{b}");
        let for_manager = rig.raise(mine, "manager_1", "teams").await;
        let report = sender.deliver_due(now + Duration::seconds(100)).await.expect("manager");
        assert_eq!(report.sent, 1, "{b}: {report:?}");
        assert_eq!(rig.teams.created().len(), 1, "{b}: one conversation opened");
        let opened = rig.teams.conversation_of("29:mgr1").expect("opened");
        assert_eq!(carrying(&for_manager.alert_id), 1, "{b}");
        let conversations = s.conversations(&rig.tenant, "teams").await.expect("conversations");
        let manager = conversations.iter().find(|c| c.key == "user:aad-mgr1").expect("kept");
        assert_eq!(manager.conversation_id, opened, "{b}");
        // ...and the channel itself can take shared alerts.
        assert!(conversations.iter().any(|c| c.key == "conversation:19:deals@thread.tacv2"), "{b}: {conversations:?}");
        rig.teams.add_conversation("19:deals@thread.tacv2");
        let shared = rig.raise(mine, "shared:teams:19:deals@thread.tacv2", "teams").await;
        assert_eq!(sender.deliver_due(now + Duration::seconds(101)).await.expect("shared").sent, 1, "{b}");
        let into_channel = rig.teams.activities().last().cloned().expect("posted");
        assert_eq!(
            (into_channel.conversation_id.as_str(), carrying(&shared.alert_id)),
            ("19:deals@thread.tacv2", 1),
            "{b}"
        );

        // rep_2 never used Dealwatch in Teams: there is no chat to write to, and the alert goes
        // to the fallback channel at once, saying why.
        let mut rep2 = s.user(&rig.tenant, "rep_2").await.expect("user").expect("exists");
        rep2.set_chat_id("teams", "aad-rep2");
        s.upsert_user(&rig.tenant, &rep2).await.expect("link");
        let lost = rig.raise(rig.open_deal("rep_2"), "rep_2", "teams").await;
        let report = sender.deliver_due(now + Duration::seconds(102)).await.expect("rep_2");
        assert_eq!(report.escalated, 1, "{b}: {report:?}");
        let query = bot::alerts::AlertQuery { alert_id: Some(lost.alert_id.clone()), ..Default::default() };
        let escalated = s.alerts(&rig.tenant, &query).await.expect("alert").remove(0);
        assert!(
            escalated.last_error.as_deref().is_some_and(|e| e.contains("has not used Dealwatch in Teams")),
            "{b}: {escalated:?}"
        );
        assert_eq!(carrying(&lost.alert_id), 0, "{b}");

        // A revoked secret: Entra refuses the sign-in, and says why without the secret.
        rig.teams.expire_tokens();
        let after = rig.raise(mine, "rep_1", "teams").await;
        assert_eq!(
            sender.deliver_due(now + Duration::seconds(103)).await.expect("renewed").sent,
            1,
            "{b}: a 401 renews the token"
        );
        assert_eq!(carrying(&after.alert_id), 1, "{b}");
    }
}
