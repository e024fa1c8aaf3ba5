//! Slack, Teams and Discord measured end to end in a release build, against the fakes on
//! 127.0.0.1, with `DEALS` deals in a SQLite store (default 100,000) and the tenant's engine
//! built once:
//!
//! 0. Slack: `/deal-risk <id>` commands posted to `/slack/commands`, each signed at its own
//!    second as Slack signs them (the server refuses a signature it has seen), until the card
//!    came back in the answer.
//! 1. Teams: `deal-risk <id>` activities posted to `/api/messages` with a Bot Connector token
//!    (verified every time against the cached keys) until the reply card reached the fake
//!    Connector; and `pick` card actions (Action.Execute) answered with the card.
//! 2. Discord: recorded `/deal-risk` interactions handed to the adapter until the fake received
//!    the interaction response through serenity's HTTP client; and button clicks.
//! 3. Alerts: `ALERTS` critical-deal alerts (default 200) delivered through each channel.
//!
//!   cargo bench -p tests --bench chat
//!   DEALS=10000 N=200 cargo bench -p tests --bench chat
//!
//! Sequential requests, one at a time; the fakes, the server and this client share the cores.
//! Figures are printed, not asserted: these machines are shared and noisy.

use std::time::Instant;

use bot::store::{Role, TenantId};
use serde_json::{Value, json};
use tests::fake_discord::FakeDiscord;
use tests::fake_slack::FakeSlack;
use tests::fake_teams::FakeTeams;

use tests::bench::{env_usize, percentiles};

const APP_ID: &str = "8b2d0f6e-1111-4c3a-9a55-0123456789ab";
const PASSWORD: &str = "teams-client-secret-for-benches";
const AAD: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";
const BOT: &str = "MTQwMDAwMDAwMDAwMDAwMDAwMQ.fake.bot-token-for-benches";
const APP: u64 = 1_400_000_000_000_000_001;
const GUILD: u64 = 1_100_000_000_000_000_001;
const ADMIN: u64 = 1_200_000_000_000_000_001;
const SIGNING: &str = "bench-signing-secret-0123456789abcdef";

#[tokio::main]
async fn main() {
    let deals = env_usize("DEALS", 100_000);
    let n = env_usize("N", 500);
    let alerts = env_usize("ALERTS", 200);
    let store = tests::sqlite_store().await;
    let today = chrono::Utc::now().date_naive();
    let started = Instant::now();
    let dataset = tests::seed_tenant(store.store.as_ref(), "acme", deals, 7, today).await;
    println!("seeded {deals} deals with a model in {:.1} s", started.elapsed().as_secs_f64());
    let tenant = TenantId::parse("acme").expect("tenant");
    let mut admin = store.store.user(&tenant, "admin").await.expect("user").expect("seeded");
    admin.set_chat_id("teams", "aad-admin");
    admin.set_chat_id("discord", ADMIN.to_string());
    admin.set_chat_id("slack", "U0ADMIN");
    admin.role = Role::Admin;
    store.store.upsert_user(&tenant, &admin).await.expect("link the admin");

    let teams = FakeTeams::start(APP_ID, PASSWORD, AAD).await;
    teams.add_user("29:admin", "aad-admin", "admin@acme.test", "Ada Admin");
    teams.add_conversation("a:admin");
    let discord = FakeDiscord::start(BOT, APP).await;
    discord.add_guild(GUILD, "Acme Sales");
    discord.add_user(ADMIN, "ada");
    // The fake holds 3 seconds to acknowledge from registration: fine for one at a time.
    let slack = FakeSlack::start("xoxb-bench").await;
    let (fake, base, slack_api) = (teams.clone(), discord.base.clone(), slack.api_url.clone());
    let data = tests::scratch();
    let data_dir = data.path().to_owned();
    let server = tests::TestServer::start(store, move |s| {
        fake.configure(s, "acme");
        s.discord.bot_token = Some(BOT.to_owned().into());
        s.discord.application_id = Some(APP);
        s.discord.api_url = base;
        s.discord.guilds = [(GUILD.to_string(), "acme".to_owned())].into();
        s.data_dir = data_dir;
        s.alerts.max_attempts = 1;
        s.slack.signing_secrets = vec![SIGNING.to_owned().into()];
        s.slack.bot_token = Some("xoxb-bench".to_owned().into());
        s.slack.api_url = slack_api;
        s.slack.workspaces = [("T0BENCH".to_owned(), "acme".to_owned())].into();
    })
    .await;
    let open: Vec<String> = {
        let view = engine::asof::View::new(&dataset, Some(today));
        view.open.iter().map(|&i| dataset.deals[i].id.to_string()).collect()
    };
    println!("{} open deals", open.len());

    // The tenant's engine, built before the first measured request (on Slack a command that
    // waits for it is answered "Working on it…" and finished through its response_url).
    let started = Instant::now();
    server.state.cache.get(&server.state.store, &tenant, today).await.expect("engine").expect("built");
    println!("the tenant's engine built: {:.0} ms", started.elapsed().as_secs_f64() * 1e3);

    // 0. Slack: each command a delivery of its own, signed at its own second.
    let mut slack_ms = Vec::with_capacity(n);
    for i in 0..n {
        let deal = &open[(i * 7919) % open.len()];
        let response_url = slack.response_url("bench");
        let body = tests::fake_slack::command_body("T0BENCH", "C0BENCH", "U0ADMIN", "/deal-risk", deal, &response_url);
        let (ts, signed) = tests::fake_slack::sign_fresh(SIGNING, &body);
        let request = server
            .http
            .post(server.url("/slack/commands"))
            .header("content-type", "application/x-www-form-urlencoded")
            .header("x-slack-request-timestamp", ts.to_string())
            .header("x-slack-signature", signed)
            .body(body);
        let started = Instant::now();
        let response = request.send().await.expect("POST");
        let status = response.status().as_u16();
        let card = response.text().await.expect("body");
        slack_ms.push(started.elapsed().as_secs_f64() * 1e3);
        assert!(status == 200 && card.contains("/100"), "{status}: {card}");
    }
    println!("Slack /deal-risk signed command → card in the answer: {}", percentiles(slack_ms, 2));

    // 1. Teams.
    let token = format!("Bearer {}", teams.token(&teams.service_url()));
    let post = |activity: Value| {
        let request = server.http.post(server.url("/api/messages")).header("authorization", &token).json(&activity);
        async move {
            let response = request.send().await.expect("POST");
            let status = response.status().as_u16();
            (status, response.json::<Value>().await.unwrap_or(Value::Null))
        }
    };
    let started = Instant::now();
    let (status, _) = post(teams.message_activity("a:admin", "29:admin", "aad-admin", "deal-risk D000001")).await;
    assert_eq!(status, 200);
    println!("first Teams message: {:.0} ms", started.elapsed().as_secs_f64() * 1e3);
    let mut message_ms = Vec::with_capacity(n);
    for i in 0..n {
        let deal = &open[(i * 7919) % open.len()];
        let activity = teams.message_activity("a:admin", "29:admin", "aad-admin", &format!("deal-risk {deal}"));
        let started = Instant::now();
        let (status, _) = post(activity).await;
        message_ms.push(started.elapsed().as_secs_f64() * 1e3);
        assert_eq!(status, 200);
    }
    assert_eq!(teams.activities().len(), n + 1, "every message answered");
    println!("Teams deal-risk message → reply card at the Connector: {}", percentiles(message_ms, 2));
    let mut invoke_ms = Vec::with_capacity(n);
    for i in 0..n {
        let deal = &open[(i * 104_729) % open.len()];
        let data = json!({ "verb": "pick", "value": deal });
        let invoke = teams.invoke_action("a:admin", "29:admin", "aad-admin", "card-1", "pick", &data);
        let started = Instant::now();
        let (status, answer) = post(invoke).await;
        invoke_ms.push(started.elapsed().as_secs_f64() * 1e3);
        assert_eq!((status, answer["statusCode"].as_u64()), (200, Some(200)));
    }
    println!("Teams pick (Action.Execute) → card in the invoke answer: {}", percentiles(invoke_ms, 2));

    // 2. Discord, through the transport seam and serenity's HTTP client.
    let adapter =
        bot::discord::Discord::configured(&server.state.settings).expect("config").expect("configured").state();
    let interact = async |fixture: &str, edit: &dyn Fn(&mut Value)| {
        let mut interaction = discord.fresh_interaction(fixture);
        interaction["member"]["user"]["id"] = ADMIN.to_string().into();
        edit(&mut interaction);
        discord.register_interaction(&interaction);
        let parsed: serenity::all::Interaction = serde_json::from_value(interaction).expect("serenity reads it");
        let started = Instant::now();
        bot::discord::handle(&server.state, &adapter, parsed).await;
        started.elapsed().as_secs_f64() * 1e3
    };
    let mut command_ms = Vec::with_capacity(n);
    for i in 0..n {
        let deal = open[(i * 7919) % open.len()].clone();
        command_ms
            .push(interact("deal_risk_command", &|i| i["data"]["options"][0]["value"] = deal.clone().into()).await);
    }
    let answered = discord.callbacks().iter().filter(|(_, c)| c["type"] == 4).count();
    assert_eq!(answered, n, "every command answered at once");
    println!("Discord /deal-risk → interaction response at the fake: {}", percentiles(command_ms, 2));
    let mut click_ms = Vec::with_capacity(n);
    for i in 0..n {
        let deal = open[(i * 104_729) % open.len()].clone();
        click_ms.push(interact("button_click", &|i| i["data"]["custom_id"] = format!("pick:{deal}").into()).await);
    }
    println!("Discord pick button → message updated: {}", percentiles(click_ms, 2));

    // 3. Alerts through each channel.
    let sender = bot::wiring::sender(&server.state.settings, server.store.store.clone()).expect("sender");
    // A conversation reference for the admin, as installing the app stores it.
    let install = teams.conversation_update("a:admin", "29:admin", "aad-admin");
    assert_eq!(post(install).await.0, 200);
    for channel in ["teams", "discord"] {
        let mut raised = Vec::with_capacity(alerts);
        for i in 0..alerts {
            let mut payload = bot::alerts::templates::sample(engine::alerts::AlertKind::CriticalDeal).payload;
            payload["deal"]["deal_id"] = open[i % open.len()].clone().into();
            raised.push(bot::alerts::Alert::now(
                engine::alerts::AlertKind::CriticalDeal,
                open[i % open.len()].clone(),
                "admin",
                channel,
                format!("bench:{channel}:{i}"),
                payload,
                chrono::Utc::now(),
            ));
        }
        server.store.store.raise_alerts(&tenant, &raised).await.expect("raise");
        let started = Instant::now();
        let report = sender.deliver_due(chrono::Utc::now()).await.expect("deliver");
        let seconds = started.elapsed().as_secs_f64();
        assert_eq!(report.sent, alerts, "{channel}: {report:?}");
        println!(
            "{alerts} alerts to {channel}: {seconds:.2} s, {:.0} alerts/s ({:.1} ms each)",
            alerts as f64 / seconds,
            seconds * 1e3 / alerts as f64
        );
    }
}
