//! The attack suite: a real server (HTTP on 127.0.0.1) with Slack, Teams, Discord and a
//! Salesforce webhook configured and two tenants — `acme`, and `evil`, whose CRM holds hostile
//! values — attacked as an outsider, a rep and an admin. Every request is counted per category
//! as tried, and as handled when it was refused or answered without harm; the test fails naming
//! every one that got through, and prints the table README gives. Each source of attack comes
//! from an address of its own (`X-Forwarded-For`, trusted here), as the per-source limits see it.

use std::collections::BTreeMap;

use bot::store::{Role, TenantId};
use chrono::{Duration, Utc};
use reqwest::Method;
use serde_json::{Value, json};
use tests::fake_discord::FakeDiscord;
use tests::fake_slack::{FakeSlack, signature};
use tests::fake_teams::FakeTeams;
use tests::{TestServer, token};

const SIGNING: &str = "5f1e0a7c9d2b4e6f8a1c3e5d7f9b2d4c";
const BOT_TOKEN: &str = "xoxb-attack-test";
/// Slack workspaces: the bot token's own (acme's) and evil's.
const T_ACME: &str = "T00000001";
const T_EVIL: &str = "T0EVIL";
const WEBHOOK: &str = "webhook-secret-0123456789abcdef";
const TEAMS_APP: &str = "8b2d0f6e-1111-4c3a-9a55-0123456789ab";
const TEAMS_PASSWORD: &str = "teams-client-secret-for-tests";
const TEAMS_ORG: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";
const DISCORD_TOKEN: &str = "MTQwMDAwMDAwMDAwMDAwMDAwMQ.fake.bot-token-for-tests";
const DISCORD_APP: u64 = 1_400_000_000_000_000_001;
/// The recorded interactions' server and channel (evil's) and user; acme's server and channel.
const G_EVIL: u64 = 1_100_000_000_000_000_001;
const C_EVIL: u64 = 1_300_000_000_000_000_001;
const PRIYA: u64 = 1_200_000_000_000_000_001;
/// Evil's rep_1 on Discord.
const EVE: u64 = 1_200_000_000_000_000_003;
const G_ACME: u64 = 1_100_000_000_000_000_002;
const C_ACME: u64 = 1_300_000_000_000_000_002;

/// Markup each platform acts on, written into evil's CRM.
const HOSTILE: &str = "<!channel> <https://evil.example|Log in> [Log in](https://evil.example) **now** @everyone";

/// What was tried, per category, and what got through.
#[derive(Default)]
struct Tally {
    rows: BTreeMap<&'static str, (u32, u32)>,
    through: Vec<String>,
}

impl Tally {
    /// One request (or one check of what it did) of `category`: `handled` when refused or
    /// answered without harm.
    fn saw(&mut self, category: &'static str, what: impl std::fmt::Display, handled: bool) {
        let row = self.rows.entry(category).or_default();
        row.0 += 1;
        if handled {
            row.1 += 1;
        } else {
            self.through.push(format!("{category}: {what}"));
        }
    }

    fn table(&self) -> String {
        let mut out = String::from("| category | tried | handled | through |\n|---|---:|---:|---:|\n");
        let (mut tried, mut handled) = (0, 0);
        for (category, (t, h)) in &self.rows {
            out.push_str(&format!("| {category} | {t} | {h} | {} |\n", t - h));
            tried += t;
            handled += h;
        }
        out.push_str(&format!("| **all** | **{tried}** | **{handled}** | **{}** |\n", tried - handled));
        out
    }
}

struct Rig {
    server: TestServer,
    slack: FakeSlack,
    teams: FakeTeams,
    discord: FakeDiscord,
    discord_adapter: std::sync::Arc<bot::discord::DiscordState>,
    acme: engine::dataset::Dataset,
    evil: engine::dataset::Dataset,
}

/// Evil's deals: generated, and those of rep_1 (open) renamed with markup in their names and
/// ids; a stage is named with markup too.
fn hostile_dataset(today: chrono::NaiveDate) -> engine::dataset::Dataset {
    let mut data = tests::generated_dataset(600, 11, today);
    // Ids of its own, none of which acme has.
    for deal in &mut data.deals {
        deal.id = engine::domain::DealId::parse(&format!("EV-{}", deal.id)).expect("id");
    }
    let owner = data.schema.owner_column().expect("owners");
    let rep_1 = data.schema.categorical[owner].vocab.lookup("rep_1").expect("rep_1");
    let mut renamed = 0;
    for deal in data.deals.iter_mut().filter(|d| d.cats[owner] == rep_1 && !d.outcome.is_closed()) {
        renamed += 1;
        deal.name = format!("Evil {renamed} {HOSTILE}");
        deal.id = engine::domain::DealId::parse(&format!("E{renamed}<!channel>[x](https://evil.example)")).expect("id");
        if renamed == 3 {
            break;
        }
    }
    data
}

async fn rig() -> Rig {
    let today = Utc::now().date_naive();
    let store = tests::sqlite_store().await;
    let acme = tests::seed_tenant(store.store.as_ref(), "acme", 2_000, 4, today).await;
    let evil = hostile_dataset(today);
    tests::seed_dataset(store.store.as_ref(), "evil", &evil, today).await;
    let (acme_t, evil_t) = (tenant("acme"), tenant("evil"));
    for (t, user, slack, teams) in [
        (&acme_t, "rep_1", "U0ACMEREP1", None),
        (&acme_t, "rep_2", "U0ACMEREP2", None),
        (&evil_t, "rep_1", "U0EVILREP1", Some("aad-evil-rep1")),
    ] {
        let mut u = store.store.user(t, user).await.expect("user").expect("seeded");
        u.set_chat_id("slack", slack);
        if let Some(teams) = teams {
            u.set_chat_id("teams", teams);
        }
        if t == &evil_t {
            u.set_chat_id("discord", EVE.to_string());
        }
        store.store.upsert_user(t, &u).await.expect("link");
    }
    let slack = FakeSlack::start(BOT_TOKEN).await;
    slack.join("C0ACME");
    slack.join("C0EVIL");
    let teams = FakeTeams::start(TEAMS_APP, TEAMS_PASSWORD, TEAMS_ORG).await;
    teams.add_user("29:evilrep1", "aad-evil-rep1", "rep_1@evil.test", "Eve Rep");
    teams.add_conversation("a:evilrep1");
    teams.add_conversation("19:deals@thread.tacv2");
    let discord = FakeDiscord::start(DISCORD_TOKEN, DISCORD_APP).await;
    discord.add_guild(G_EVIL, "Evil Sales");
    discord.add_channel(G_EVIL, C_EVIL, "deal-desk");
    discord.add_guild(G_ACME, "Acme Sales");
    discord.add_channel(G_ACME, C_ACME, "acme-desk");
    discord.add_user(PRIYA, "priya");
    discord.add_user(EVE, "eve");
    let (api_url, fake_teams, discord_base) = (slack.api_url.clone(), teams.clone(), discord.base.clone());
    let server = TestServer::start(store, move |s| {
        // Real limits, per source (every attack comes from an address of its own).
        s.server.trust_forwarded_for = true;
        s.limits.per_source_per_minute = 6_000;
        s.limits.refused_per_source_per_minute = 60;
        s.slack.signing_secrets = vec![SIGNING.to_owned().into()];
        s.slack.bot_token = Some(BOT_TOKEN.to_owned().into());
        s.slack.api_url = api_url;
        s.slack.workspaces = [(T_ACME.to_owned(), "acme".to_owned()), (T_EVIL.to_owned(), "evil".to_owned())].into();
        // acme's admin is a Slack, Teams and Discord person of acme's only.
        s.slack.users = bot::config::UserLinks::default().with("acme", "admin", "U0ACMEADMIN");
        s.slack.client_id = Some("123.456".into());
        s.slack.client_secret = Some("app-secret".to_owned().into());
        s.slack.redirect_url = Some("https://dealwatch.example.com/slack/oauth/callback".into());
        s.slack.token_key = Some("MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=".to_owned().into());
        fake_teams.configure(s, "evil");
        s.teams.users = bot::config::UserLinks::default().with("acme", "admin", "aad-evil-rep1");
        s.discord.bot_token = Some(DISCORD_TOKEN.to_owned().into());
        s.discord.application_id = Some(DISCORD_APP);
        s.discord.api_url = discord_base;
        s.discord.gateway = false;
        s.discord.guilds = [(G_EVIL.to_string(), "evil".to_owned()), (G_ACME.to_string(), "acme".to_owned())].into();
        s.discord.users = bot::config::UserLinks::default().with("acme", "admin", &PRIYA.to_string());
        let org = bot::config::SalesforceOrg {
            client_id: "3MVG9-test".into(),
            auth: bot::config::SalesforceAuth::ClientCredentials,
            client_secret: Some("sf-client-secret".to_owned().into()),
            // Nothing listens there: a notice that gets through fails reaching the org.
            login_url: "http://127.0.0.1:9".into(),
            webhook_secrets: vec![WEBHOOK.to_owned().into()],
            ..Default::default()
        };
        s.salesforce.tenants.insert("acme".into(), org);
        s.alerts.deal_url = Some("https://crm.example.com/{deal_id}".into());
        s.data_dir = std::env::temp_dir().join(format!("dealwatch-attack-{}", uuid::Uuid::new_v4().simple()));
    })
    .await;
    let discord_adapter =
        bot::discord::Discord::configured(&server.state.settings).expect("config").expect("configured").state();
    Rig { server, slack, teams, discord, discord_adapter, acme, evil }
}

fn tenant(id: &str) -> TenantId {
    TenantId::parse(id).expect("tenant")
}

const FORM: &str = "application/x-www-form-urlencoded";

impl Rig {
    /// A request from `source` (an address of its own).
    fn req(&self, method: Method, path: &str, source: &str) -> reqwest::RequestBuilder {
        self.server.http.request(method, self.server.url(path)).header("x-forwarded-for", source)
    }

    async fn send(request: reqwest::RequestBuilder) -> (u16, Value) {
        tests::json_of(request.send().await.expect("request")).await
    }

    async fn get(&self, path: &str, token: &str, source: &str) -> (u16, Value) {
        Rig::send(self.req(Method::GET, path, source).bearer_auth(token)).await
    }

    async fn post(&self, path: &str, token: &str, body: &Value, source: &str) -> (u16, Value) {
        Rig::send(self.req(Method::POST, path, source).bearer_auth(token).json(body)).await
    }

    async fn put(&self, path: &str, token: &str, body: &Value, source: &str) -> (u16, Value) {
        Rig::send(self.req(Method::PUT, path, source).bearer_auth(token).json(body)).await
    }

    /// A Slack request signed at `ts`, or at a second of its own within the last minutes.
    async fn slack_signed(
        &self,
        path: &str,
        body: &[u8],
        content_type: &str,
        ts: Option<i64>,
        source: &str,
    ) -> (u16, Value) {
        let text = String::from_utf8_lossy(body);
        let (ts, signed) = match ts {
            Some(ts) => (ts, signature(SIGNING, ts, &text)),
            None => tests::fake_slack::sign_fresh(SIGNING, &text),
        };
        let request = self
            .req(Method::POST, path, source)
            .header("content-type", content_type)
            .header("x-slack-request-timestamp", ts.to_string())
            .header("x-slack-signature", signed)
            .body(body.to_vec());
        Rig::send(request).await
    }

    /// A slash command from `user` in workspace `team`, in channel `channel`, signed now.
    async fn command(&self, team: &str, user: &str, command: &str, text: &str, source: &str) -> Value {
        let body =
            command_body(team, user, command, text, &self.slack.response_url(&format!("r{}", uuid::Uuid::new_v4())));
        let (status, reply) = self.slack_signed("/slack/commands", body.as_bytes(), FORM, None, source).await;
        assert_eq!(status, 200, "{command} {text}: {reply}");
        reply
    }

    async fn event(&self, team: &str, id: &str, event: Value, source: &str) -> u16 {
        let body = json!({ "type": "event_callback", "team_id": team, "api_app_id": "A0DW", "event_id": id,
                           "event_time": 1_780_000_000, "event": event });
        self.slack_signed("/slack/events", body.to_string().as_bytes(), "application/json", None, source).await.0
    }

    async fn click(&self, team: &str, user: &str, actions: Value, response: &str, source: &str) -> u16 {
        let payload = json!({
            "type": "block_actions", "team": { "id": team }, "user": { "id": user }, "api_app_id": "A0DW",
            "container": { "type": "message", "message_ts": "1.2", "channel_id": "C0ACME", "is_ephemeral": true },
            "trigger_id": "t.1", "response_url": self.slack.response_url(response), "actions": actions,
            "message": { "ts": "1.2", "text": "card", "blocks": [] },
        });
        let body = serde_urlencoded::to_string([("payload", payload.to_string())]).expect("form");
        self.slack_signed("/slack/interactions", body.as_bytes(), FORM, None, source).await.0
    }

    /// The false-alarm form submitted by `user` with `metadata` (what Slack sends back as the
    /// view's private metadata: the client's to change).
    async fn submit_why(&self, user: &str, metadata: &str, source: &str) -> u16 {
        let payload = json!({
            "type": "view_submission", "team": { "id": T_ACME }, "user": { "id": user, "team_id": T_ACME }, "api_app_id": "A0DW",
            "trigger_id": "t.2",
            "view": { "id": "V1", "type": "modal", "callback_id": "false_alarm", "private_metadata": metadata,
                      "state": { "values": { "reason": { "value": { "type": "radio_buttons", "selected_option": { "value": "stale data" } } } } } },
        });
        let body = serde_urlencoded::to_string([("payload", payload.to_string())]).expect("form");
        self.slack_signed("/slack/interactions", body.as_bytes(), FORM, None, source).await.0
    }

    /// A Teams activity posted as the Bot Connector would.
    async fn teams_post(&self, activity: &Value, source: &str) -> (u16, Value) {
        let token = self.teams.token(activity["serviceUrl"].as_str().expect("serviceUrl"));
        Rig::send(self.req(Method::POST, "/api/messages", source).bearer_auth(token).json(activity)).await
    }

    /// A recorded Discord slash command with its option set to `value`, from `user` in `guild`.
    async fn discord_command(&self, fixture: &str, value: &str, guild: u64, user: u64) -> Value {
        let mut interaction = self.discord.fresh_interaction(fixture);
        interaction["data"]["options"][0]["value"] = value.into();
        for pointer in ["/guild_id", "/guild/id", "/channel/guild_id", "/data/guild_id"] {
            if let Some(v) = interaction.pointer_mut(pointer) {
                *v = guild.to_string().into();
            }
        }
        if let Some(v) = interaction.pointer_mut("/member/user/id") {
            *v = user.to_string().into();
        }
        self.discord.register_interaction(&interaction);
        let id = interaction["id"].as_str().expect("id").to_owned();
        let parsed: serenity::all::Interaction = serde_json::from_value(interaction).expect("serenity reads it");
        bot::discord::handle(&self.server.state, &self.discord_adapter, parsed).await;
        self.discord.callbacks().into_iter().rev().find(|(i, _)| *i == id).map(|(_, body)| body).unwrap_or(Value::Null)
    }

    fn open_deal(&self, data: &engine::dataset::Dataset, owner: &str) -> String {
        tests::open_deal(data, owner).id.to_string()
    }

    /// An open deal of acme's whose account name no other open deal shares, of `owner`.
    fn named_deal(&self, owner: &str) -> engine::dataset::Deal {
        let c = self.acme.schema.owner_column().expect("owners");
        let today = Utc::now().date_naive();
        let open = |d: &&engine::dataset::Deal| engine::asof::status(d, Some(today)) == engine::asof::Status::Open;
        self.acme
            .deals
            .iter()
            .filter(open)
            .filter(|d| self.acme.cat_name(c, d.cats[c]) == Some(owner))
            .find(|d| self.acme.deals.iter().filter(open).filter(|o| o.name == d.name).count() == 1)
            .expect("a deal with a name of its own")
            .clone()
    }
}

fn command_body(team: &str, user: &str, command: &str, text: &str, response_url: &str) -> String {
    tests::fake_slack::command_body(team, "C0ACME", user, command, text, response_url)
}

/// Markup from a name that a platform would act on, if any survives in `texts`.
fn live(texts: &[String], markup: &[&str]) -> Option<String> {
    texts.iter().find_map(|t| markup.iter().find(|m| t.contains(*m)).map(|m| format!("{m:?} in {t:?}")))
}

/// The texts Slack reads as mrkdwn: mrkdwn objects and a message's fallback `text`.
fn slack_mrkdwn(message: &Value) -> Vec<String> {
    fn walk(v: &Value, out: &mut Vec<String>) {
        match v {
            Value::Object(m) => {
                if m.get("type").and_then(Value::as_str) == Some("mrkdwn") {
                    out.extend(m.get("text").and_then(Value::as_str).map(str::to_owned));
                }
                m.values().for_each(|v| walk(v, out));
            }
            Value::Array(a) => a.iter().for_each(|v| walk(v, out)),
            _ => {}
        }
    }
    let mut out: Vec<String> = message.get("text").and_then(Value::as_str).map(str::to_owned).into_iter().collect();
    walk(message, &mut out);
    out
}

const SLACK_LIVE: [&str; 3] = ["<!channel>", "<https://evil.example", "<@"];
const MARKDOWN_LIVE: [&str; 3] = ["[Log in](https://evil.example)", "[x](https://evil.example)", "**now**"];

/// The texts Teams and Discord read as Markdown (TextBlocks, facts, content, descriptions,
/// field values).
fn markdown_texts(message: &Value) -> Vec<String> {
    fn walk(v: &Value, out: &mut Vec<String>) {
        match v {
            Value::Object(m) => {
                let text = |k: &str| m.get(k).and_then(Value::as_str).map(str::to_owned);
                match m.get("type").and_then(Value::as_str) {
                    Some("TextBlock") => out.extend(text("text")),
                    _ if m.contains_key("title") && m.contains_key("value") => out.extend(text("value")),
                    _ if m.contains_key("name") && m.contains_key("value") => out.extend(text("value")),
                    _ => {}
                }
                out.extend(text("content"));
                out.extend(text("description"));
                m.values().for_each(|v| walk(v, out));
            }
            Value::Array(a) => a.iter().for_each(|v| walk(v, out)),
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk(message, &mut out);
    out
}

#[tokio::test]
async fn an_outsider_a_rep_and_an_admin_attacking_a_running_server_get_nothing_through() {
    let rig = rig().await;
    let mut tally = Tally::default();
    tokens(&rig, &mut tally).await;
    other_tenants(&rig, &mut tally).await;
    hostile_bodies(&rig, &mut tally).await;
    slack_signatures(&rig, &mut tally).await;
    chat_scope(&rig, &mut tally).await;
    feedback(&rig, &mut tally).await;
    markup(&rig, &mut tally).await;
    idempotency(&rig, &mut tally).await;
    routes(&rig, &mut tally).await;
    webhooks(&rig, &mut tally).await;
    request_ids(&rig, &mut tally).await;
    installs(&rig, &mut tally).await;
    engines(&rig, &mut tally).await;
    owners(&mut tally).await;
    exports(&mut tally);
    database(&mut tally).await;
    // Last: it floods the limits of a few sources.
    limits(&rig, &mut tally).await;
    println!("{}", tally.table());
    assert!(tally.through.is_empty(), "got through:\n{}\n{}", tally.through.join("\n"), tally.table());
}

/// An outsider's tokens, and tokens that say more than their user may.
async fn tokens(rig: &Rig, tally: &mut Tally) {
    const SRC: &str = "10.0.1.1";
    let now = Utc::now().timestamp();
    let hs = |alg: jsonwebtoken::Algorithm, secret: &str, claims: &Value| {
        let key = jsonwebtoken::EncodingKey::from_secret(secret.as_bytes());
        jsonwebtoken::encode(&jsonwebtoken::Header::new(alg), claims, &key).expect("sign")
    };
    let claims = |extra: Value| {
        let mut c = json!({ "sub": "admin", "tenant_id": "acme", "role": "admin", "exp": now + 600, "iat": now,
                            "iss": bot::auth::HS256_ISSUER, "aud": bot::auth::HS256_AUDIENCE });
        for (k, v) in extra.as_object().expect("object") {
            if v.is_null() {
                c.as_object_mut().expect("object").remove(k);
            } else {
                c[k] = v.clone();
            }
        }
        c
    };
    let ours = |extra: Value| hs(jsonwebtoken::Algorithm::HS256, tests::TEST_SECRET, &claims(extra));
    let unsigned = {
        let b64 = |v: &Value| {
            use base64::Engine as _;
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
        };
        format!("{}.{}.", b64(&json!({ "alg": "none", "typ": "JWT" })), b64(&claims(json!({}))))
    };
    let cases: Vec<(&str, Option<String>)> = vec![
        ("no Authorization header", None),
        ("an empty bearer", Some("Bearer ".into())),
        ("another scheme", Some(format!("Basic {}", ours(json!({}))))),
        ("not a JWT", Some("Bearer not.a.jwt".into())),
        ("alg none", Some(format!("Bearer {unsigned}"))),
        (
            "HS512",
            Some(format!("Bearer {}", hs(jsonwebtoken::Algorithm::HS512, tests::TEST_SECRET, &claims(json!({}))))),
        ),
        (
            "another secret",
            Some(format!("Bearer {}", hs(jsonwebtoken::Algorithm::HS256, "x".repeat(40).as_str(), &claims(json!({}))))),
        ),
        ("expired", Some(format!("Bearer {}", ours(json!({ "exp": now - 600 }))))),
        ("not valid yet", Some(format!("Bearer {}", ours(json!({ "nbf": now + 3600 }))))),
        ("issued in the future", Some(format!("Bearer {}", ours(json!({ "iat": now + 3600 }))))),
        ("valid for a year", Some(format!("Bearer {}", ours(json!({ "exp": now + 365 * 86_400 }))))),
        ("valid for eight days", Some(format!("Bearer {}", ours(json!({ "exp": now + 8 * 86_400 }))))),
        ("no iat", Some(format!("Bearer {}", ours(json!({ "iat": null }))))),
        ("no issuer", Some(format!("Bearer {}", ours(json!({ "iss": null }))))),
        ("another issuer", Some(format!("Bearer {}", ours(json!({ "iss": "https://id.example.com/" }))))),
        ("no audience", Some(format!("Bearer {}", ours(json!({ "aud": null }))))),
        ("another audience", Some(format!("Bearer {}", ours(json!({ "aud": "crm" }))))),
        ("a tenant that does not exist", Some(format!("Bearer {}", ours(json!({ "tenant_id": "ghost" }))))),
        ("a tenant id that is not one", Some(format!("Bearer {}", ours(json!({ "tenant_id": "ACME!" }))))),
        ("a user not in the tenant", Some(format!("Bearer {}", ours(json!({ "sub": "mallory" }))))),
        ("an empty subject", Some(format!("Bearer {}", ours(json!({ "sub": "" }))))),
        ("an unknown role", Some(format!("Bearer {}", ours(json!({ "role": "superadmin" }))))),
        ("no role", Some(format!("Bearer {}", ours(json!({ "role": null }))))),
        ("a 20 KB token", Some(format!("Bearer {}", "a".repeat(20_000)))),
        ("RS256 without keys", Some(format!("Bearer {}.{}.{}", "eyJhbGciOiJSUzI1NiJ9", "e30", "c2ln"))),
    ];
    for (what, header) in cases {
        let mut request = rig.req(Method::GET, "/v1/pipeline/metrics", SRC);
        if let Some(h) = header {
            request = request.header("authorization", h);
        }
        let (status, _) = Rig::send(request).await;
        tally.saw("tokens", format!("{what}: {status}"), status == 401);
    }
    // A token says admin; the user is a rep today: they act as the rep they are.
    let demoted = ours(json!({ "sub": "rep_3", "role": "admin" }));
    let (status, _) = rig.get("/v1/models/performance", &demoted, SRC).await;
    tally.saw("tokens", format!("a rep's token claiming admin: {status}"), status == 403);
    let (_, page) =
        rig.get("/v1/deals/high-risk?limit=200&risk_category=low,medium,high,critical", &demoted, SRC).await;
    let owners: Vec<&str> =
        page["deals"].as_array().into_iter().flatten().filter_map(|d| d["rep_id"].as_str()).collect();
    tally.saw(
        "tokens",
        format!("a rep's admin claim listing deals of {owners:?}"),
        owners.iter().all(|o| *o == "rep_3"),
    );
    // Revoked: a token issued before the user's revocation is refused; a new one is not.
    let old = token("acme", "rep_2", Role::Rep, 600);
    let t = tenant("acme");
    rig.server.store.store.revoke_tokens(&t, "rep_2", Utc::now()).await.expect("revoke");
    let (status, _) = rig.get("/v1/pipeline/metrics", &old, SRC).await;
    tally.saw("tokens", format!("a revoked token: {status}"), status == 401);
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let fresh = token("acme", "rep_2", Role::Rep, 600);
    let (status, _) = rig.get("/v1/pipeline/metrics", &fresh, SRC).await;
    tally.saw("tokens", format!("a token issued after the revocation is refused: {status}"), status == 200);
}

/// acme's people reaching for evil's deals and the other way round, by id, by chat identity.
async fn other_tenants(rig: &Rig, tally: &mut Tally) {
    const SRC: &str = "10.0.2.1";
    let acme_admin = token("acme", "admin", Role::Admin, 600);
    let evil_admin = token("evil", "admin", Role::Admin, 600);
    let evil_deal = rig.open_deal(&rig.evil, "rep_2");
    let acme_deal = rig.open_deal(&rig.acme, "rep_2");
    let encoded = |id: &str| url::form_urlencoded::byte_serialize(id.as_bytes()).collect::<String>();
    let (status, _) = rig.get(&format!("/v1/deals/{}", encoded(&evil_deal)), &acme_admin, SRC).await;
    tally.saw("other tenants", format!("acme reads evil's deal: {status}"), status == 404);
    let (status, _) = rig.get(&format!("/v1/deals/{}", encoded(&acme_deal)), &evil_admin, SRC).await;
    tally.saw("other tenants", format!("evil reads acme's deal: {status}"), status == 404);
    let (status, _) = rig.post("/v1/deals/score", &acme_admin, &json!({ "deal_id": evil_deal }), SRC).await;
    tally.saw("other tenants", format!("acme scores evil's deal: {status}"), status == 404);
    let (_, page) =
        rig.get("/v1/deals/high-risk?limit=200&risk_category=low,medium,high,critical", &acme_admin, SRC).await;
    let evil_ids: std::collections::HashSet<String> = rig.evil.deals.iter().map(|d| d.id.to_string()).collect();
    let acme_ids: std::collections::HashSet<String> = rig.acme.deals.iter().map(|d| d.id.to_string()).collect();
    let leaked = page["deals"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|d| d["deal_id"].as_str())
        .filter(|id| evil_ids.contains(*id) && !acme_ids.contains(*id))
        .count();
    tally.saw("other tenants", format!("acme's high-risk list holds {leaked} of evil's deals"), leaked == 0);
    let question = json!({ "question": format!("why is {evil_deal} risky?") });
    let (status, asked) = rig.post("/v1/ask", &acme_admin, &question, SRC).await;
    let told = asked["data"]["deal_id"].as_str() == Some(evil_deal.as_str());
    tally.saw("other tenants", format!("acme asks about evil's deal: {status}"), status == 200 && !told);
    let fake_alert = "0190f0e2-0000-7000-8000-000000000000";
    let (status, _) = rig
        .post(&format!("/v1/alerts/{fake_alert}/feedback"), &evil_admin, &json!({ "action": "false_alarm" }), SRC)
        .await;
    tally.saw("other tenants", format!("feedback on an alert id not evil's: {status}"), status == 404);

    // acme's admin, linked by acme's config, writing from evil's Slack workspace, Teams
    // organisation and Discord server: a stranger there, never evil's admin.
    let reply = rig.command(T_EVIL, "U0ACMEADMIN", "/pipeline", "", SRC).await;
    let text = reply.to_string();
    tally.saw("other tenants", "acme's admin in evil's Slack: answered as a stranger", text.contains("don't know you"));
    let activity = rig.teams.message_activity("a:evilrep1", "29:evilrep1", "aad-evil-rep1", "pipeline");
    let before = rig.teams.activities().len();
    let (status, _) = rig.teams_post(&activity, SRC).await;
    let sent = rig.teams.activities();
    let answered = sent.get(before).map(|s| s.activity.to_string()).unwrap_or_default();
    // aad-evil-rep1 is evil's rep_1 (their stored id) and acme's admin by acme's link: in evil's
    // organisation they are evil's rep, with a rep's pipeline.
    tally.saw(
        "other tenants",
        format!("a person linked as acme's admin asking in evil's Teams: {status}"),
        status == 200 && !answered.contains("don't know") && answered.contains("Pipeline"),
    );
    let scope_ok = rig
        .server
        .store
        .store
        .user(&tenant("evil"), "admin")
        .await
        .expect("user")
        .expect("admin")
        .chat_id("teams")
        .is_none();
    tally.saw("other tenants", "evil's admin did not get acme's admin's Teams id stored", scope_ok);
    let answer = rig.discord_command("pipeline_command", "", G_EVIL, PRIYA).await;
    let words = answer.to_string();
    tally.saw(
        "other tenants",
        "acme's admin in evil's Discord: answered as a stranger",
        words.contains("don't know you"),
    );
    let evil_admin_row = rig.server.store.store.user(&tenant("evil"), "admin").await.expect("user").expect("admin");
    tally.saw(
        "other tenants",
        "evil's admin did not get acme's admin's Discord id stored",
        evil_admin_row.chat_id("discord").is_none(),
    );
}

/// Bodies no client should send: each gets a clear 4xx naming what is wrong, never a 500.
async fn hostile_bodies(rig: &Rig, tally: &mut Tally) {
    const SRC: &str = "10.0.3.1";
    let admin = token("acme", "admin", Role::Admin, 600);
    let raw = |path: &str, body: &str, content_type: &str| {
        rig.req(Method::POST, path, SRC).bearer_auth(&admin).header("content-type", content_type).body(body.to_owned())
    };
    let mut deep = String::new();
    for _ in 0..5_000 {
        deep.push('[');
    }
    let cases: Vec<(&str, reqwest::RequestBuilder, &[u16])> = vec![
        ("not JSON", raw("/v1/deals/score", "{\"deal_id\": ", "application/json"), &[400]),
        ("an array", raw("/v1/deals/score", "[1, 2]", "application/json"), &[400, 422]),
        (
            "an unknown field",
            raw("/v1/ask", "{\"question\": \"hi\", \"sql\": \"DROP TABLE deals\"}", "application/json"),
            &[422],
        ),
        (
            "a wrong type",
            raw("/v1/deals/score", "{\"deal_id\": \"N1\", \"amount\": \"lots\"}", "application/json"),
            &[400, 422],
        ),
        (
            "a negative amount",
            raw(
                "/v1/deals/score",
                "{\"deal_id\": \"N1\", \"amount\": -5, \"industry\": \"EdTech\"}",
                "application/json",
            ),
            &[422],
        ),
        ("5,000 nested arrays", raw("/v1/deals/score", &deep, "application/json"), &[400, 422]),
        (
            "2 MiB",
            raw("/v1/ask", &format!("{{\"question\": \"{}\"}}", "a".repeat(2 << 20)), "application/json"),
            &[413],
        ),
        (
            "an as_of before chrono can count",
            raw(
                "/v1/ask",
                "{\"question\": \"win rate this quarter\", \"as_of\": \"-262143-01-01\"}",
                "application/json",
            ),
            &[422, 400],
        ),
        (
            "an as_of at chrono's end",
            raw(
                "/v1/ask",
                "{\"question\": \"win rate this quarter\", \"as_of\": \"+262142-12-31\"}",
                "application/json",
            ),
            &[422, 400],
        ),
        (
            "an as_of in 1800",
            raw("/v1/ask", "{\"question\": \"win rate this quarter\", \"as_of\": \"1800-01-01\"}", "application/json"),
            &[422],
        ),
        (
            "an as_of ten years ahead",
            raw(
                "/v1/ask",
                &format!(
                    "{{\"question\": \"win rate\", \"as_of\": \"{}\"}}",
                    Utc::now().date_naive() + Duration::days(3650)
                ),
                "application/json",
            ),
            &[422],
        ),
        (
            "a question of 5,000 characters",
            raw("/v1/ask", &format!("{{\"question\": \"{}\"}}", "why ".repeat(1250)), "application/json"),
            &[422],
        ),
        ("an empty question", raw("/v1/ask", "{\"question\": \"   \"}", "application/json"), &[422]),
        (
            "a question with NUL bytes",
            raw("/v1/ask", "{\"question\": \"win\\u0000rate\"}", "application/json"),
            &[200, 422],
        ),
        (
            "a deal id of 10,000 characters",
            raw("/v1/deals/score", &format!("{{\"deal_id\": \"{}\"}}", "D".repeat(10_000)), "application/json"),
            &[404, 422],
        ),
        ("text/plain", raw("/v1/ask", "win rate", "text/plain"), &[400, 415, 422]),
        (
            "an Idempotency-Key of 500 characters",
            raw("/v1/ask", "{\"question\": \"help\"}", "application/json").header("idempotency-key", "k".repeat(500)),
            &[422],
        ),
        (
            "a time zone on Mars",
            raw(
                "/v1/alerts/configure",
                "{\"daily_digest\": {\"enabled\": true, \"time\": \"08:00\", \"timezone\": \"Mars/Olympus_Mons\"}}",
                "application/json",
            ),
            &[422],
        ),
        (
            "quiet hours at 25:00",
            raw(
                "/v1/alerts/configure",
                "{\"quiet_hours\": {\"enabled\": true, \"start\": \"25:00\", \"end\": \"07:00\"}}",
                "application/json",
            ),
            &[422],
        ),
        (
            "a threshold of 300",
            raw(
                "/v1/alerts/configure",
                "{\"critical_deals\": {\"enabled\": true, \"threshold\": 300}}",
                "application/json",
            ),
            &[422],
        ),
    ];
    for (what, request, expected) in cases {
        let (status, body) = Rig::send(request).await;
        let named = matches!(status, 200 | 413) || body["message"].as_str().is_some_and(|m| !m.is_empty());
        tally.saw("hostile bodies", format!("{what}: {status} {body}"), expected.contains(&status) && named);
    }
    let (status, _) = rig.get("/v1/deals/high-risk?limit=100000", &admin, SRC).await;
    tally.saw("hostile bodies", format!("a listing of 100,000: {status}"), status == 422);
    let many: Vec<Value> = (0..50).map(|i| json!({ "channel": "email", "to": format!("x{i}@example.com") })).collect();
    let (status, _) =
        rig.put("/v1/alerts/routes", &admin, &json!({ "routes": { "critical_deal": { "targets": many } } }), SRC).await;
    tally.saw("hostile bodies", format!("50 shared destinations: {status}"), status == 422);
}

/// Request headers, by name.
type Headers = Vec<(&'static str, String)>;

/// Slack requests that are not Slack's, or are Slack's again.
async fn slack_signatures(rig: &Rig, tally: &mut Tally) {
    const SRC: &str = "10.0.4.1";
    let body = command_body(T_ACME, "U0ACMEREP1", "/deal-risk", "Acme", &rig.slack.response_url("sig"));
    let now = Utc::now().timestamp();
    let post = |headers: Headers, body: Vec<u8>| {
        let mut request = rig.req(Method::POST, "/slack/commands", SRC).header("content-type", FORM).body(body);
        for (k, v) in headers {
            request = request.header(k, v);
        }
        Rig::send(request)
    };
    let signed = |ts: i64, secret: &str, text: &str| {
        vec![("x-slack-request-timestamp", ts.to_string()), ("x-slack-signature", signature(secret, ts, text))]
    };
    let cases: Vec<(&str, Headers, Vec<u8>)> = vec![
        ("unsigned", vec![], body.clone().into_bytes()),
        (
            "a forged signature",
            vec![
                ("x-slack-request-timestamp", now.to_string()),
                ("x-slack-signature", format!("v0={}", "ab".repeat(32))),
            ],
            body.clone().into_bytes(),
        ),
        ("another secret", signed(now, "0a1b2c3d4e5f60718293a4b5c6d7e8f9", &body), body.clone().into_bytes()),
        ("six minutes old", signed(now - 360, SIGNING, &body), body.clone().into_bytes()),
        ("six minutes ahead", signed(now + 360, SIGNING, &body), body.clone().into_bytes()),
        ("the body changed after signing", signed(now, SIGNING, &body), body.replace("Acme", "Acmf").into_bytes()),
        (
            "a signature without v0=",
            vec![
                ("x-slack-request-timestamp", now.to_string()),
                ("x-slack-signature", signature(SIGNING, now, &body).replace("v0=", "")),
            ],
            body.clone().into_bytes(),
        ),
        (
            "a timestamp that is not a number",
            vec![
                ("x-slack-request-timestamp", "yesterday".into()),
                ("x-slack-signature", signature(SIGNING, now, &body)),
            ],
            body.clone().into_bytes(),
        ),
    ];
    for (what, headers, body) in cases {
        let (status, _) = post(headers, body).await;
        tally.saw("slack signatures", format!("{what}: {status}"), status == 401);
    }
    // Not UTF-8: refused before the signature is judged, whatever it says (signed over an empty
    // body, it once passed as one).
    let bytes = vec![b't', b'e', b'x', b't', b'=', 0xff, 0xfe, b'&'];
    let refused_as_such = |status: u16, body: &Value| status == 400 && body.to_string().contains("UTF-8");
    let (status, answer) = post(signed(now, SIGNING, ""), bytes.clone()).await;
    tally.saw(
        "slack signatures",
        format!("not UTF-8, signed as an empty body: {status} {answer}"),
        refused_as_such(status, &answer),
    );
    let (status, answer) = post(signed(now, SIGNING, &String::from_utf8_lossy(&bytes)), bytes).await;
    tally.saw(
        "slack signatures",
        format!("not UTF-8, signed as read lossily: {status} {answer}"),
        refused_as_such(status, &answer),
    );
    // Replays of genuine requests inside their five minutes.
    for (what, path, body, content_type) in [
        ("a command", "/slack/commands", body.clone(), FORM),
        (
            "a click",
            "/slack/interactions",
            serde_urlencoded::to_string([(
                "payload",
                json!({ "type": "view_closed", "team": { "id": T_ACME }, "user": { "id": "U0ACMEREP1" } }).to_string(),
            )])
            .expect("form"),
            FORM,
        ),
        (
            "an event",
            "/slack/events",
            json!({ "type": "url_verification", "token": "t", "challenge": "c0ffee" }).to_string(),
            "application/json",
        ),
    ] {
        let (ts, _) = tests::fake_slack::sign_fresh(SIGNING, &body);
        let (first, _) = rig.slack_signed(path, body.as_bytes(), content_type, Some(ts), SRC).await;
        let (again, _) = rig.slack_signed(path, body.as_bytes(), content_type, Some(ts), SRC).await;
        tally.saw("slack signatures", format!("{what} replayed: {first} then {again}"), first == 200 && again == 401);
    }
}

/// A rep reaching past their scope through chat: answers stay private and theirs.
async fn chat_scope(rig: &Rig, tally: &mut Tally) {
    const SRC: &str = "10.0.5.1";
    let c = rig.acme.schema.owner_column().expect("owners");
    let owner_of: std::collections::HashMap<String, String> = rig
        .acme
        .deals
        .iter()
        .map(|d| (d.id.to_string(), rig.acme.cat_name(c, d.cats[c]).unwrap_or_default().to_owned()))
        .collect();
    // A mention in a public channel: answered to the asker only.
    let posted = rig.slack.posted().len();
    let mention = json!({ "type": "app_mention", "user": "U0ACMEREP1", "channel": "C0ACME", "ts": "1780000001.000100",
                          "text": "<@U0DW> which deals are at risk?" });
    let status = rig.event(T_ACME, "Ev0ATTACK1", mention, SRC).await;
    let shown = rig.slack.ephemeral();
    let private = shown.last().is_some_and(|(user, p)| user == "U0ACMEREP1" && p.channel == "C0ACME");
    tally.saw(
        "chat scope",
        format!("a mention in a public channel: {status}"),
        status == 200 && private && rig.slack.posted().len() == posted,
    );
    let listed: Vec<String> = shown
        .last()
        .and_then(|(_, p)| p.blocks.clone())
        .map(|b| b.to_string())
        .map(|text| owner_of.keys().filter(|id| text.contains(id.as_str())).cloned().collect())
        .unwrap_or_default();
    tally.saw(
        "chat scope",
        format!("the private answer lists {listed:?}"),
        listed.iter().all(|id| owner_of[id] == "rep_1"),
    );
    // Shared on purpose: posted for the channel, answered with the sharer's access.
    let share = json!([{ "type": "button", "action_id": "share_answer", "block_id": "share", "value": "which deals are at risk?" }]);
    let status = rig.click(T_ACME, "U0ACMEREP1", share, "share1", SRC).await;
    let shared = rig.slack.posted().last().and_then(|p| p.blocks.clone()).map(|b| b.to_string()).unwrap_or_default();
    let others = owner_of.iter().filter(|(id, o)| *o != "rep_1" && shared.contains(id.as_str())).count();
    tally.saw(
        "chat scope",
        format!("a shared answer: {status}, {others} deals of others"),
        status == 200 && shared.contains("Shared by") && others == 0,
    );
    // Someone else's account by name: as if it did not exist.
    let theirs = rig.named_deal("rep_2");
    let reply = rig.command(T_ACME, "U0ACMEREP1", "/deal-risk", &theirs.name, SRC).await.to_string();
    let leaks = reply.contains("don't have access") || reply.contains(theirs.id.as_str());
    tally.saw("chat scope", format!("/deal-risk of another rep's account name: {reply}"), !leaks);
    // Similar won deals on a rep's own card: theirs only (Slack, REST).
    let mine = rig.named_deal("rep_1");
    let card = rig.command(T_ACME, "U0ACMEREP1", "/deal-risk", mine.id.as_str(), SRC).await.to_string();
    let foreign: Vec<&String> = owner_of
        .iter()
        .filter(|(id, o)| *o != "rep_1" && card.contains(&format!("({id})")))
        .map(|(id, _)| id)
        .collect();
    tally.saw(
        "chat scope",
        format!("similar deals on a rep's Slack card: {foreign:?} of others"),
        card.contains("/100") && foreign.is_empty(),
    );
    let rep = token("acme", "rep_1", Role::Rep, 600);
    let (status, scored) = rig.post("/v1/deals/score", &rep, &json!({ "deal_id": mine.id.as_str() }), SRC).await;
    let owners: Vec<&str> =
        scored["similar_deals"].as_array().into_iter().flatten().filter_map(|s| s["owner"].as_str()).collect();
    tally.saw(
        "chat scope",
        format!("similar deals on a rep's REST card: {owners:?}"),
        status == 200 && !owners.is_empty() && owners.iter().all(|o| *o == "rep_1"),
    );
    let (status, asked) =
        rig.post("/v1/ask", &rep, &json!({ "question": format!("why is {} risky?", theirs.id) }), SRC).await;
    tally.saw(
        "chat scope",
        format!("a rep asking about another's deal: {status}"),
        status == 200 && asked["data"]["deal_id"].is_null(),
    );
    // Teams: a question in a channel is answered in the asker's one-to-one chat.
    let mut activity = rig.teams.message_activity(
        "19:deals@thread.tacv2",
        "29:evilrep1",
        "aad-evil-rep1",
        "<at>Dealwatch</at> which deals are at risk?",
    );
    activity["conversation"]["conversationType"] = "channel".into();
    activity["conversation"]["id"] = "19:deals@thread.tacv2".into();
    let before = rig.teams.activities().len();
    let (status, _) = rig.teams_post(&activity, SRC).await;
    let sent: Vec<_> = rig.teams.activities().into_iter().skip(before).collect();
    let in_channel: Vec<String> =
        sent.iter().filter(|s| s.conversation_id.starts_with("19:deals")).map(|s| s.activity.to_string()).collect();
    let elsewhere = sent
        .iter()
        .any(|s| !s.conversation_id.starts_with("19:deals") && s.activity.to_string().contains("Understood"));
    let channel_told =
        in_channel.len() == 1 && in_channel[0].contains("private chat") && !in_channel[0].contains("Understood");
    tally.saw(
        "chat scope",
        format!("a Teams mention in a channel: {status}, {} in the channel", in_channel.len()),
        status == 200 && channel_told && elsewhere,
    );
}

/// A rep trying to tune the team's threshold with clicks on cards that were never shown to them.
async fn feedback(rig: &Rig, tally: &mut Tally) {
    const SRC: &str = "10.0.6.1";
    let acme = tenant("acme");
    let store = &rig.server.store.store;
    let since = Utc::now() - Duration::days(1);
    let stored = || async { store.feedback(&acme, since).await.expect("feedback").len() };
    let before = stored().await;
    // The false-alarm form submitted for deals that do not exist (its metadata is the client's).
    for i in 0..5 {
        let metadata = json!({ "judge": { "card": [format!("NOPE-{i}"), 90] }, "url": null }).to_string();
        let status = rig.submit_why("U0ACMEREP1", &metadata, SRC).await;
        tally.saw(
            "feedback",
            format!("a false alarm on deal NOPE-{i}, which does not exist: {status}"),
            status == 200 && stored().await == before,
        );
    }
    let theirs = rig.open_deal(&rig.acme, "rep_2");
    let metadata = json!({ "judge": { "card": [theirs, 90] }, "url": null }).to_string();
    rig.submit_why("U0ACMEREP1", &metadata, SRC).await;
    tally.saw("feedback", "a false alarm on another rep's deal", stored().await == before);
    let click = json!([{ "type": "button", "action_id": "card_useful", "block_id": "card:x", "value": format!("{theirs}|90") }]);
    rig.click(T_ACME, "U0ACMEREP1", click, "useful-theirs", SRC).await;
    tally.saw("feedback", "a useful click on another rep's deal", stored().await == before);
    // Teams card values are the client's: a forged deal and score count for nothing.
    let evil_theirs = rig.open_deal(&rig.evil, "rep_2");
    let data = json!({ "verb": "card_false_alarm", "value": format!("{evil_theirs}|99"), "choice": "", "reason": "stale data" });
    let invoke =
        rig.teams.invoke_action("a:evilrep1", "29:evilrep1", "aad-evil-rep1", "1:card", "card_false_alarm", &data);
    let evil_before = store.feedback(&tenant("evil"), since).await.expect("feedback").len();
    let (status, _) = rig.teams_post(&invoke, SRC).await;
    let evil_after = store.feedback(&tenant("evil"), since).await.expect("feedback").len();
    tally.saw("feedback", format!("a Teams card click naming another rep's deal: {status}"), evil_after == evil_before);
    // The same person on their own deal, five times with five scores: one vote, at our score.
    let mine = rig.open_deal(&rig.acme, "rep_1");
    for score in [91, 92, 93, 94, 95] {
        let metadata = json!({ "judge": { "card": [mine, score] }, "url": null }).to_string();
        rig.submit_why("U0ACMEREP1", &metadata, SRC).await;
    }
    let theirs_rows: Vec<_> =
        store.feedback(&acme, since).await.expect("feedback").into_iter().filter(|f| f.subject == mine).collect();
    let scored =
        rig.server.store.store.deal(&acme, &mine).await.expect("deal").and_then(|d| d.score).map(|s| s.risk_score);
    tally.saw(
        "feedback",
        format!(
            "five clicks with forged scores on one's own deal: {} rows, scores {:?} (ours {scored:?})",
            theirs_rows.len(),
            theirs_rows.iter().map(|f| f.score).collect::<Vec<_>>()
        ),
        theirs_rows.len() == 1 && theirs_rows[0].score == scored,
    );
    // A follow-up task asked for by a deal's name is stored on the deal's id.
    let named = rig.named_deal("rep_1");
    let click = json!([{ "type": "button", "action_id": "task", "block_id": "card:x", "value": named.name }]);
    rig.click(T_ACME, "U0ACMEREP1", click, "task-by-name", SRC).await;
    let tasks = store.tasks(&acme, None).await.expect("tasks");
    let on: Vec<&str> = tasks.iter().map(|t| t.deal_id.as_str()).collect();
    tally.saw("feedback", format!("a task asked for by name is on {on:?}"), on == [named.id.as_str()]);
    let admin = token("acme", "admin", Role::Admin, 600);
    let (_, tuning) = rig.get("/v1/alerts/tuning", &admin, SRC).await;
    let moved = tuning["tunings"].as_array().is_some_and(|t| !t.is_empty());
    tally.saw("feedback", format!("the team's threshold after all that: {tuning}"), !moved);
}

/// Evil's CRM values (deal names and ids with Slack mentions, links, Markdown) shown on every
/// platform: as written, never as live markup.
async fn markup(rig: &Rig, tally: &mut Tally) {
    const SRC: &str = "10.0.7.1";
    let c = rig.evil.schema.owner_column().expect("owners");
    let hostile: Vec<&engine::dataset::Deal> = rig.evil.deals.iter().filter(|d| d.name.contains(HOSTILE)).collect();
    let owner = |d: &engine::dataset::Deal| rig.evil.cat_name(c, d.cats[c]).unwrap_or_default().to_owned();
    assert!(hostile.iter().all(|d| owner(d) == "rep_1"), "the hostile deals are rep_1's");
    let deal = hostile[0];
    // Slack: the card, the pipeline, a question's answer.
    for (what, command, text) in [
        ("/deal-risk by id", "/deal-risk", deal.id.to_string()),
        ("/deal-risk by name", "/deal-risk", "Evil 2".to_owned()),
        ("/pipeline", "/pipeline", String::new()),
    ] {
        let reply = rig.command(T_EVIL, "U0EVILREP1", command, &text, SRC).await;
        let found = live(&slack_mrkdwn(&reply), &SLACK_LIVE);
        tally.saw("markup", format!("Slack {what}: {found:?}"), found.is_none() && reply.to_string().contains("Evil"));
    }
    let mention = json!({ "type": "app_mention", "user": "U0EVILREP1", "channel": "C0EVIL", "ts": "1780000002.000100",
                          "text": "<@U0DW> which deals are at risk?" });
    rig.event(T_EVIL, "Ev0MARKUP1", mention, SRC).await;
    let answer =
        rig.slack.ephemeral().last().map(|(_, p)| json!({ "text": p.text, "blocks": p.blocks })).unwrap_or_default();
    let found = live(&slack_mrkdwn(&answer), &SLACK_LIVE);
    tally.saw(
        "markup",
        format!("a Slack question's answer: {found:?}"),
        found.is_none() && answer.to_string().contains("Evil"),
    );
    // Teams: the card and the pipeline, in the rep's chat.
    for text in ["deal-risk Evil 1".to_owned(), "pipeline".to_owned()] {
        let before = rig.teams.activities().len();
        let activity = rig.teams.message_activity("a:evilrep1", "29:evilrep1", "aad-evil-rep1", &text);
        rig.teams_post(&activity, SRC).await;
        let card = rig.teams.activities().get(before).map(|s| s.activity.clone()).unwrap_or_default();
        let found = live(&markdown_texts(&card), &MARKDOWN_LIVE);
        tally.saw("markup", format!("Teams {text}: {found:?}"), found.is_none() && card.to_string().contains("Evil"));
    }
    // Discord: the card, privately, pinging nobody.
    let message = rig.discord_command("deal_risk_command", deal.id.as_str(), G_EVIL, EVE).await;
    let found = live(&markdown_texts(&message), &MARKDOWN_LIVE);
    let pings = message.pointer("/data/allowed_mentions/parse") != Some(&json!([]));
    tally.saw(
        "markup",
        format!("Discord /deal-risk: {found:?}, pings {pings}"),
        found.is_none() && !pings && message.to_string().contains("Evil"),
    );
    // Alerts on the hostile deal, delivered to Slack, Teams and Discord.
    let evil = tenant("evil");
    let store = rig.server.store.store.clone();
    let mut payload = bot::alerts::templates::sample(engine::alerts::AlertKind::CriticalDeal).payload;
    payload["deal"]["deal_id"] = deal.id.to_string().into();
    payload["deal"]["company"] = deal.name.clone().into();
    payload["deal"]["owner"] = owner(deal).into();
    for channel in ["slack", "teams", "discord"] {
        let alert = bot::alerts::Alert::now(
            engine::alerts::AlertKind::CriticalDeal,
            deal.id.to_string(),
            "rep_1",
            channel,
            format!("attack:{channel}"),
            payload.clone(),
            Utc::now(),
        );
        store.raise_alerts(&evil, &[alert]).await.expect("raise");
    }
    let settings = &rig.server.state.settings;
    let sender = bot::wiring::sender_with(settings, store.clone(), &rig.server.state.transports).expect("sender");
    let report = sender.deliver_due(Utc::now() + Duration::seconds(1)).await.expect("deliver");
    let slack = rig.slack.posted().into_iter().rev().find(|p| p.text.as_deref().unwrap_or_default().contains("Evil"));
    let slack = slack.map(|p| json!({ "text": p.text, "blocks": p.blocks })).unwrap_or_default();
    let found = live(&slack_mrkdwn(&slack), &SLACK_LIVE);
    tally.saw(
        "markup",
        format!("a Slack alert ({report:?}): {found:?}"),
        found.is_none() && slack.to_string().contains("Evil"),
    );
    let teams = rig.teams.activities().into_iter().rev().find(|s| s.activity.to_string().contains("Critical deal"));
    let teams = teams.map(|s| s.activity).unwrap_or_default();
    let found = live(&markdown_texts(&teams), &MARKDOWN_LIVE);
    tally.saw("markup", format!("a Teams alert: {found:?}"), found.is_none() && teams.to_string().contains("Evil"));
    // What the bot asked Discord to post (the request carries allowed_mentions, the message not).
    let posts =
        rig.discord.requests().into_iter().filter(|(call, _)| call.starts_with("POST") && call.ends_with("/messages"));
    let discord = posts.rev().find(|(_, m)| m.to_string().contains("Evil")).map(|(_, m)| m);
    let discord = discord.unwrap_or_default();
    let found = live(&markdown_texts(&discord), &MARKDOWN_LIVE);
    let pings = discord.pointer("/allowed_mentions/parse") != Some(&json!([]));
    tally.saw(
        "markup",
        format!("a Discord alert: {found:?}, pings {pings}"),
        found.is_none() && !pings && discord.to_string().contains("Evil"),
    );
}

/// Idempotency keys: a request cut off by the request timeout or its client is not stuck "in
/// progress"; old keys expire.
async fn idempotency(rig: &Rig, tally: &mut Tally) {
    const SRC: &str = "10.0.8.1";
    // A tenant big enough that training it takes more than a second.
    let big = tenant("big");
    let deals = tests::generated_dataset(40_000, 5, Utc::now().date_naive());
    rig.server.store.store.import(&big, &tests::import_batch("big", &deals)).await.expect("import");
    rig.server
        .store
        .store
        .upsert_user(&big, &bot::store::User::named("admin", "Admin", Role::Admin))
        .await
        .expect("admin");
    let admin = token("big", "admin", Role::Admin, 600);
    // A replica of the same service with a one-second request timeout: training takes longer.
    let hurried = TestServer::start(rig.server.store.sharing(), |s| {
        s.server.request_timeout_seconds = 1;
        s.alerts.deliver = false;
    })
    .await;
    let train = |server: &TestServer, key: &str| {
        server
            .http
            .post(server.url("/v1/models/train"))
            .header("x-forwarded-for", SRC)
            .bearer_auth(&admin)
            .header("idempotency-key", key)
            .json(&json!({}))
    };
    let started = std::time::Instant::now();
    let (status, _) = Rig::send(train(&hurried, "train-1")).await;
    tally.saw(
        "idempotency",
        format!("a training cut off by the timeout after {:?}: {status}", started.elapsed()),
        status == 503,
    );
    let dropped = train(&hurried, "train-2").timeout(std::time::Duration::from_millis(50)).send().await;
    tally.saw("idempotency", "a training cut off by its client", dropped.is_err());
    for key in ["train-1", "train-2"] {
        let mut last = 0;
        for _ in 0..60 {
            last = Rig::send(train(&rig.server, key)).await.0;
            if last != 409 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        }
        tally.saw("idempotency", format!("{key} retried: {last}"), last == 200);
    }
    let response = train(&rig.server, "train-1").send().await.expect("replay");
    let replayed = response.headers().get("idempotent-replayed").is_some();
    tally.saw("idempotency", format!("and again: replayed {replayed}"), response.status() == 200 && replayed);
    let (status, _) = Rig::send(
        rig.req(Method::POST, "/v1/ask", SRC)
            .bearer_auth(&admin)
            .header("idempotency-key", "train-1")
            .json(&json!({ "question": "help" })),
    )
    .await;
    tally.saw("idempotency", format!("the key reused for another request: {status}"), status == 422);
    // A key from the day before yesterday: expired, a new request.
    let acme = tenant("acme");
    let admin = token("acme", "admin", Role::Admin, 600);
    let old = Utc::now() - Duration::hours(49);
    let store = &rig.server.store.store;
    store.idempotency_begin(&acme, "admin", "old-key", "x", old, Duration::minutes(10)).await.expect("begin");
    store.idempotency_finish(&acme, "admin", "old-key", 200, &json!({ "old": true })).await.expect("finish");
    let response = Rig::send(
        rig.req(Method::POST, "/v1/ask", SRC)
            .bearer_auth(&admin)
            .header("idempotency-key", "old-key")
            .json(&json!({ "question": "help" })),
    )
    .await;
    tally.saw(
        "idempotency",
        format!("a key two days old: {}", response.0),
        response.0 == 200 && response.1.get("old").is_none(),
    );
}

/// Shared destinations an admin may route alerts to: only their own tenant's.
async fn routes(rig: &Rig, tally: &mut Tally) {
    const SRC: &str = "10.0.9.1";
    let acme = token("acme", "admin", Role::Admin, 600);
    let evil = token("evil", "admin", Role::Admin, 600);
    let route = |channel: &str, to: String| json!({ "routes": { "segment_decline": { "targets": [{ "channel": channel, "to": to }] } } });
    let cases = [
        ("evil routes to acme's Discord channel", &evil, route("discord", C_ACME.to_string()), 422),
        ("acme routes to evil's Discord channel", &acme, route("discord", C_EVIL.to_string()), 422),
        ("a Discord channel that does not exist", &evil, route("discord", "1300000000000000099".into()), 422),
        ("evil routes to its own Discord channel", &evil, route("discord", C_EVIL.to_string()), 200),
        ("a Teams conversation the bot is not in", &evil, route("teams", "19:elsewhere@thread.tacv2".into()), 422),
        ("evil routes to its own Teams channel", &evil, route("teams", "19:deals@thread.tacv2".into()), 200),
        ("acme routes to evil's Teams channel", &acme, route("teams", "19:deals@thread.tacv2".into()), 422),
        ("evil routes to a channel of acme's Slack workspace", &evil, route("slack", "C0ACMEDESK".into()), 422),
        ("acme routes to its own Slack channel", &acme, route("slack", "C0ACMEDESK".into()), 200),
    ];
    for (what, token, body, expected) in cases {
        let (status, answer) = rig.put("/v1/alerts/routes", token, &body, SRC).await;
        tally.saw("routes", format!("{what}: {status} {answer}"), status == expected);
    }
}

/// The Salesforce webhook: forged, stale, for another tenant, replayed.
async fn webhooks(rig: &Rig, tally: &mut Tally) {
    const SRC: &str = "10.0.10.1";
    let body = json!({ "ids": ["006000000000001AAA"], "reason": "trigger" }).to_string();
    let now = Utc::now().timestamp();
    let send = |tenant: &str, secret: &str, ts: i64| {
        let request = tests::fake_salesforce::package_webhook(
            &rig.server.http,
            &rig.server.base,
            tenant,
            body.clone(),
            secret,
            ts,
        );
        Rig::send(request.header("x-forwarded-for", SRC))
    };
    for (what, tenant, secret, ts) in [
        ("forged", "acme", "not-the-secret-0123456789", now),
        ("six minutes old", "acme", WEBHOOK, now - 360),
        ("for a tenant without an org", "evil", WEBHOOK, now),
        ("for no tenant", "", WEBHOOK, now),
    ] {
        let (status, _) = send(tenant, secret, ts).await;
        tally.saw("webhooks", format!("{what}: {status}"), status == 401);
    }
    // A genuine notice goes on (to an org that is not there: 502/503); its replay stops at once.
    let (first, _) = send("acme", WEBHOOK, now - 5).await;
    let (again, answer) = send("acme", WEBHOOK, now - 5).await;
    tally.saw("webhooks", format!("a replayed notice: {first} then {again} {answer}"), first != 401 && again == 401);
    // An org configured with an empty (or short) webhook secret does not start.
    for secret in ["", "short"] {
        let mut settings = rig.server.state.settings.clone();
        if let Some(org) = settings.salesforce.tenants.get_mut("acme") {
            org.webhook_secrets = vec![secret.to_owned().into()];
        }
        let started = bot::wiring::app_state(settings, rig.server.store.store.clone(), tests::texts(), None);
        let refused = started.err().is_some_and(|e| format!("{e:#}").contains("webhook_secrets"));
        tally.saw("webhooks", format!("a webhook secret of {:?} refused at start-up", secret), refused);
    }
}

/// A client's request id is not ours to log.
async fn request_ids(rig: &Rig, tally: &mut Tally) {
    const SRC: &str = "10.0.11.1";
    let admin = token("acme", "admin", Role::Admin, 600);
    let deal = rig.open_deal(&rig.acme, "rep_4");
    for given in ["audit-me-42", "forged\", \"actor\": \"root", "0cb4a0d6-5fbf-4fbe-9cc6-012a544cc879"] {
        let response = rig
            .req(Method::GET, &format!("/v1/deals/{deal}"), SRC)
            .bearer_auth(&admin)
            .header("x-request-id", given)
            .send()
            .await
            .expect("GET");
        let ours = response.headers().get("x-request-id").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
        rig.server.state.audit.flush().await;
        let log = rig.server.store.store.audit_log(&tenant("acme"), 50).await.expect("audit");
        let trusted = log.iter().any(|e| e.request_id.as_deref() == Some(given));
        tally.saw(
            "request ids",
            format!("a client's id {given:?}: answered {ours}, in the audit log {trusted}"),
            ours != given && !trusted,
        );
    }
}

/// Installing the Slack app: a link works once and only in the browser that opened it; a
/// workspace installed for one tenant is never moved to another.
async fn installs(rig: &Rig, tally: &mut Tally) {
    const SRC: &str = "10.0.12.1";
    rig.slack.oauth_app("123.456", "app-secret");
    let browser = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().expect("client");
    // The install link of `admin`'s tenant, opened: (link state, consent state, cookie).
    let open = |tenant: &'static str| {
        let browser = browser.clone();
        async move {
            let admin = token(tenant, "admin", Role::Admin, 600);
            let (_, link) = rig.post("/v1/slack/install-link", &admin, &json!({}), SRC).await;
            let state = link["url"].as_str().and_then(|u| u.split("state=").nth(1)).unwrap_or_default().to_owned();
            let response = browser
                .get(rig.server.url(&format!("/slack/install?state={state}")))
                .header("x-forwarded-for", SRC)
                .send()
                .await
                .expect("GET");
            let location = response.headers().get("location").and_then(|v| v.to_str().ok()).unwrap_or_default();
            let consent =
                location.split("state=").nth(1).unwrap_or_default().split('&').next().unwrap_or_default().to_owned();
            let cookie = response.headers().get("set-cookie").and_then(|v| v.to_str().ok()).unwrap_or_default();
            (state, consent, cookie.split(';').next().unwrap_or_default().to_owned())
        }
    };
    let callback = |code: &str, state: &str, cookie: Option<&str>| {
        let mut request = browser
            .get(rig.server.url(&format!("/slack/oauth/callback?code={code}&state={state}")))
            .header("x-forwarded-for", SRC);
        if let Some(c) = cookie {
            request = request.header("cookie", c);
        }
        async move { request.send().await.expect("GET").status().as_u16() }
    };
    let (link, consent, cookie) = open("acme").await;
    let again = browser
        .get(rig.server.url(&format!("/slack/install?state={link}")))
        .header("x-forwarded-for", SRC)
        .send()
        .await
        .expect("GET");
    tally.saw("installs", format!("an install link opened twice: {}", again.status()), again.status() == 400);
    rig.slack.oauth_code("code-a", "T0SHARED", "Shared Co", "xoxb-shared-a");
    let status = callback("code-a", &consent, None).await;
    tally.saw("installs", format!("Slack's answer brought to another browser: {status}"), status == 400);
    let status = callback("code-a", &link, Some(&cookie)).await;
    tally.saw("installs", format!("the link's own state at the callback: {status}"), status == 400);
    let status = callback("code-a", &consent, Some(&cookie)).await;
    tally.saw("installs", format!("acme installs in its browser: {status}"), status == 200);
    let (_, consent, cookie) = open("evil").await;
    rig.slack.oauth_code("code-b", "T0SHARED", "Shared Co", "xoxb-shared-b");
    let status = callback("code-b", &consent, Some(&cookie)).await;
    let kept = rig.server.store.store.slack_installation("T0SHARED").await.expect("read").map(|i| i.tenant.to_string());
    tally.saw(
        "installs",
        format!("evil installs acme's workspace: {status}, now {kept:?}"),
        status == 409 && kept.as_deref() == Some("acme"),
    );
    // evil's consent state rewritten to name acme, its signature kept.
    let forged = {
        use base64::Engine as _;
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let (body, sig) = consent.split_once('.').unwrap_or_default();
        let body = String::from_utf8(b64.decode(body).unwrap_or_default()).unwrap_or_default();
        format!("{}.{sig}", b64.encode(body.replacen("evil", "acme", 1)))
    };
    rig.slack.oauth_code("code-c", "T0OTHER", "Other Co", "xoxb-other");
    let status = callback("code-c", &forged, Some(&cookie)).await;
    tally.saw("installs", format!("a state rewritten to another tenant: {status}"), status == 400);
}

/// A question about the past gets an engine of its own: today's stays for everyone else.
async fn engines(rig: &Rig, tally: &mut Tally) {
    const SRC: &str = "10.0.13.1";
    let acme = tenant("acme");
    let rep = token("acme", "rep_1", Role::Rep, 600);
    rig.get("/v1/pipeline/metrics", &rep, SRC).await;
    let today = rig.server.state.cache.current(&acme).await.expect("today's engine");
    let evil_today = {
        rig.get("/v1/pipeline/metrics", &token("evil", "rep_1", Role::Rep, 600), SRC).await;
        rig.server.state.cache.current(&tenant("evil")).await.expect("evil's engine")
    };
    for days in [30, 90, 200, 400, 30] {
        let as_of = Utc::now().date_naive() - Duration::days(days);
        let (status, asked) =
            rig.post("/v1/ask", &rep, &json!({ "question": "what's our win rate?", "as_of": as_of }), SRC).await;
        let after = rig.server.state.cache.current(&acme).await.expect("today's engine");
        let same = std::sync::Arc::ptr_eq(&today, &after);
        tally.saw(
            "engines",
            format!("a question as of {as_of}: {status}, today's engine kept {same}"),
            status == 200 && same && asked["answer"].is_string(),
        );
    }
    let evil_after = rig.server.state.cache.current(&tenant("evil")).await.expect("evil's engine");
    tally.saw("engines", "another tenant's engine untouched", std::sync::Arc::ptr_eq(&evil_today, &evil_after));
}

/// Owners who differ only in punctuation or case are different people.
async fn owners(tally: &mut Tally) {
    let csv = "id,name,owner,industry,created,closed,stage,amount,outcome\n\
               O1,Alpha,rep_11,EdTech,2026-01-05,2026-03-01,Closed,1000,won\n\
               O2,Beta,rep_1_1,EdTech,2026-01-06,,Proposal,2000,open\n\
               O3,Gamma,j.smith@acme.com,FinTech,2026-01-07,,Proposal,3000,open\n\
               O4,Delta,jsmith@acme.com,FinTech,2026-01-08,2026-03-02,Closed,4000,lost\n";
    let mapping = engine::mapping::Mapping::from_toml(
        "[fields]\nid = \"id\"\nname = \"name\"\nowner = \"owner\"\ncreated = \"created\"\nclosed = \"closed\"\n\
         amount = \"amount\"\noutcome = \"outcome\"\n[outcome]\nwon = [\"won\"]\nlost = [\"lost\"]\nopen = [\"open\"]\n\
         [segments]\nindustry = \"industry\"\n",
    );
    let Ok(mapping) = mapping else {
        tally.saw("owners", format!("the test mapping: {:?}", mapping.err()), false);
        return;
    };
    let today = tests::date("2026-06-30");
    let ingested = engine::ingest::ingest(csv.as_bytes(), &mapping, Vec::new(), engine::ingest::Context { today });
    let Ok(ingested) = ingested else {
        tally.saw("owners", format!("the import: {:?}", ingested.err()), false);
        return;
    };
    let data = &ingested.dataset;
    let c = data.schema.owner_column().expect("owners");
    let owner = |id: &str| data.find(id).and_then(|d| data.cat_name(c, d.cats[c])).map(str::to_owned);
    tally.saw(
        "owners",
        format!("rep_11 and rep_1_1: {:?} {:?}", owner("O1"), owner("O2")),
        owner("O1").as_deref() == Some("rep_11") && owner("O2").as_deref() == Some("rep_1_1"),
    );
    tally.saw(
        "owners",
        format!("j.smith@ and jsmith@: {:?} {:?}", owner("O3"), owner("O4")),
        owner("O3") != owner("O4"),
    );
    let notices = ingested.report.notices.join(" | ");
    tally.saw(
        "owners",
        format!("the near-collisions named: {notices}"),
        notices.contains("\"rep_11\" and \"rep_1_1\"") && notices.contains("jsmith@acme.com"),
    );
    // Stored and read back, they stay two people.
    let store = tests::sqlite_store().await;
    let t = tenant("owners");
    let batch = bot::workflow::import_batch(&ingested, "attack".into(), Utc::now());
    store.store.import(&t, &batch).await.expect("import");
    let back = bot::workflow::tenant_dataset(store.store.as_ref(), &t).await.expect("read back");
    let c = back.schema.owner_column().expect("owners");
    tally.saw(
        "owners",
        format!("after the store: {:?}", back.schema.categorical[c].vocab.values()),
        back.schema.categorical[c].vocab.len() == 4,
    );
}

/// CSV exports of a CRM whose cells hold spreadsheet formulas: written as text.
fn exports(tally: &mut Tally) {
    let dir = tests::scratch();
    let today = tests::date("2026-06-30");
    let (csv, _) = tests::generated_csv(400, 21, today, false, false);
    let mut reader = csv::Reader::from_reader(&csv[..]);
    let headers = reader.headers().expect("headers").clone();
    let column = |name: &str| headers.iter().position(|h| h == name).expect(name);
    let (account, owner, outcome) = (column("account"), column("owner"), column("outcome"));
    let mut out = csv::Writer::from_writer(Vec::new());
    out.write_record(&headers).expect("headers");
    let formulas = ["=HYPERLINK(\"https://evil.example\",\"Open\")", "+SUM(1+1)", "@cmd", "-2+3"];
    let mut planted = 0;
    for row in reader.records() {
        let mut row: Vec<String> = row.expect("row").iter().map(str::to_owned).collect();
        if row[outcome] == "Open" && planted < formulas.len() {
            row[account] = formulas[planted].to_owned();
            planted += 1;
        }
        if planted == 1 && row[outcome] != "Open" {
            row[owner] = "=rep_1".to_owned();
        }
        out.write_record(&row).expect("row");
    }
    let path = tests::write(dir.path(), "formulas.csv", out.into_inner().expect("csv"));
    for (what, args) in [
        ("score --format csv", vec!["--as-of", "2026-06-30", "--format", "csv", "score", "--input", &path]),
        ("validate --format csv", vec!["--as-of", "2026-06-30", "--format", "csv", "validate", "--input", &path]),
    ] {
        let output = tests::dealwatch().args(&args).output().expect("run");
        let text = tests::text(&output.stdout);
        let mut cells = csv::Reader::from_reader(text.as_bytes());
        let bad: Vec<String> = cells
            .records()
            .flatten()
            .flat_map(|r| r.iter().map(str::to_owned).collect::<Vec<_>>())
            .filter(|c| c.starts_with(['=', '+', '@', '\t', '\r']) || (c.starts_with('-') && c.parse::<f64>().is_err()))
            .collect();
        let planted_shown = text.contains("'=HYPERLINK") || what.starts_with("validate");
        tally.saw(
            "exports",
            format!("{what}: live formula cells {bad:?}"),
            output.status.success() && bad.is_empty() && planted_shown,
        );
    }
}

/// PostgreSQL roles for which row-level security would keep no tenant apart.
async fn database(tally: &mut Tally) {
    let Some(pg) = tests::pg_store().await else { return };
    let owner = pg.migration_url.clone().expect("the owner's URL");
    let refused = bot::store::open(&owner, None).await.err().map(|e| e.to_string()).unwrap_or_default();
    tally.saw(
        "database",
        format!("the service as a superuser: {refused}"),
        refused.contains("superuser") && refused.contains("allow_rls_bypass"),
    );
    let allowed = bot::store::open_with(&owner, None, true).await.is_ok();
    tally.saw("database", "a superuser allowed explicitly, for development", allowed);
    let admin_url = std::env::var("DEALWATCH_TEST_PG_URL").expect("set with pg_store");
    {
        use sqlx::Connection;
        let mut admin = sqlx::PgConnection::connect(&admin_url).await.expect("connect");
        sqlx::query("SELECT pg_advisory_lock(724207)").execute(&mut admin).await.expect("lock");
        let role = "DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'dealwatch_test_bypass') THEN \
                    CREATE ROLE dealwatch_test_bypass LOGIN NOSUPERUSER BYPASSRLS IN ROLE dealwatch_app; END IF; END $$";
        sqlx::query(role).execute(&mut admin).await.expect("bypass role");
        sqlx::query("SELECT pg_advisory_unlock(724207)").execute(&mut admin).await.expect("unlock");
    }
    let mut bypass = url::Url::parse(&pg.url).expect("url");
    bypass.set_username("dealwatch_test_bypass").expect("user");
    let refused =
        bot::store::open(bypass.as_str(), Some(&owner)).await.err().map(|e| e.to_string()).unwrap_or_default();
    tally.saw("database", format!("a BYPASSRLS role: {refused}"), refused.contains("BYPASSRLS"));
    let app = bot::store::open(&pg.url, Some(&owner)).await.is_ok();
    tally.saw("database", "the service's own role (member of dealwatch_app, owning nothing)", app);
    // A role that is no superuser but owns the tables (the service running its own migrations).
    let name = format!("dealwatch_owned_{}", uuid::Uuid::new_v4().simple());
    {
        use sqlx::Connection;
        let mut admin = sqlx::PgConnection::connect(&admin_url).await.expect("connect");
        sqlx::query("SELECT pg_advisory_lock(724207)").execute(&mut admin).await.expect("lock");
        let role = "DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'dealwatch_test_owner') THEN \
                    CREATE ROLE dealwatch_test_owner LOGIN NOSUPERUSER NOBYPASSRLS; END IF; END $$";
        sqlx::query(role).execute(&mut admin).await.expect("owner role");
        sqlx::query("SELECT pg_advisory_unlock(724207)").execute(&mut admin).await.expect("unlock");
        let create = format!("CREATE DATABASE \"{name}\" OWNER dealwatch_test_owner");
        sqlx::query(sqlx::AssertSqlSafe(create)).execute(&mut admin).await.expect("database");
    }
    let mut owned = url::Url::parse(&admin_url).expect("url");
    owned.set_username("dealwatch_test_owner").expect("user");
    owned.set_path(&name);
    let migrated = bot::store::open_with(owned.as_str(), None, true).await.map(|_| ());
    let refused = bot::store::open(owned.as_str(), None).await.err().map(|e| e.to_string()).unwrap_or_default();
    tally.saw(
        "database",
        format!("the tables' owner ({migrated:?}): {refused}"),
        migrated.is_ok() && refused.contains("owns the tables"),
    );
    {
        use sqlx::Connection;
        let mut admin = sqlx::PgConnection::connect(&admin_url).await.expect("connect");
        let drop = format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)");
        let _ = sqlx::query(sqlx::AssertSqlSafe(drop)).execute(&mut admin).await;
    }
}

/// Floods before authentication: a source is limited on its refusals, others are not; metric
/// labels do not grow with made-up methods.
async fn limits(rig: &Rig, tally: &mut Tally) {
    let bad = "Bearer not.a.token";
    let mut statuses = Vec::new();
    for _ in 0..120 {
        let (status, _) =
            Rig::send(rig.req(Method::GET, "/v1/pipeline/metrics", "10.0.14.1").header("authorization", bad)).await;
        statuses.push(status);
    }
    let limited = statuses.iter().filter(|s| **s == 429).count();
    for (i, status) in statuses.iter().enumerate() {
        tally.saw("limits", format!("bad token {i} from one source: {status}"), matches!(status, 401 | 429));
    }
    tally.saw("limits", format!("120 bad tokens from one source: {limited} limited"), limited >= 50);
    let admin = token("acme", "admin", Role::Admin, 600);
    let (status, _) = rig.get("/v1/pipeline/metrics", &admin, "10.0.14.1").await;
    tally.saw("limits", format!("that source, now with a good token: {status}"), status == 429);
    let (status, _) =
        Rig::send(rig.req(Method::GET, "/v1/pipeline/metrics", "10.0.14.9").header("authorization", bad)).await;
    tally.saw("limits", format!("another source's bad token: {status}"), status == 401);
    let (status, _) = rig.get("/v1/pipeline/metrics", &admin, "10.0.14.10").await;
    tally.saw("limits", format!("another source's good token: {status}"), status == 200);
    let body = command_body(T_ACME, "U0ACMEREP1", "/pipeline", "", &rig.slack.response_url("flood"));
    let mut limited = 0;
    for _ in 0..80 {
        let request = rig
            .req(Method::POST, "/slack/commands", "10.0.14.2")
            .header("content-type", FORM)
            .header("x-slack-request-timestamp", Utc::now().timestamp().to_string())
            .header("x-slack-signature", format!("v0={}", "00".repeat(32)))
            .body(body.clone());
        limited += usize::from(Rig::send(request).await.0 == 429);
    }
    tally.saw("limits", format!("80 forged Slack requests from one source: {limited} limited"), limited >= 10);
    let activity = rig.teams.message_activity("a:evilrep1", "29:evilrep1", "aad-evil-rep1", "help");
    let mut limited = 0;
    for _ in 0..80 {
        let request = rig
            .req(Method::POST, "/api/messages", "10.0.14.3")
            .header("authorization", "Bearer forged.token.here")
            .json(&activity);
        limited += usize::from(Rig::send(request).await.0 == 429);
    }
    tally.saw("limits", format!("80 forged Teams activities from one source: {limited} limited"), limited >= 10);
    for method in ["FOO", "BARBAZ", "QUUX"] {
        let method = Method::from_bytes(method.as_bytes()).expect("method");
        rig.req(method, "/v1/pipeline/metrics", "10.0.14.5").send().await.expect("request");
    }
    let metrics =
        rig.req(Method::GET, "/metrics", "10.0.14.6").send().await.expect("metrics").text().await.expect("text");
    let labelled = ["FOO", "BARBAZ", "QUUX"].iter().filter(|m| metrics.contains(&format!("method=\"{m}\""))).count();
    tally.saw("limits", format!("made-up methods as metric labels: {labelled}"), labelled == 0);
}
