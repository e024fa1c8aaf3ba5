//! The Salesforce bars of issue 6, measured in a release build against the fake org and the
//! fake Slack on 127.0.0.1, with the real server (router, webhook, store, alert sender):
//!
//! 1. From a signed `POST /sfdc/opportunity-changed` leaving the package to the sObject
//!    Collections PATCH reaching the org, and to the critical-deal alert reaching Slack:
//!    p50/p95/p99 over sequential webhooks on a tenant of `DEALS` deals (default 10,000) in
//!    SQLite. Changed deals (stage and amount) measure the PATCH; new deals, which a rep's
//!    threshold makes critical, measure the PATCH and the Slack post.
//! 2. A full rescore of `BULK` deals (default 100,000) written back through Bulk API 2.0: the
//!    nightly full pass (read every Opportunity, import, score, save, one Bulk job), timed.
//!
//!   cargo bench -p tests --bench salesforce              # both
//!   DEALS=100000 ONLY=webhook cargo bench -p tests --bench salesforce
//!
//! Figures are printed, not asserted: these machines are shared and noisy.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use bot::salesforce::sync::Mode;
use bot::store::{Role, TenantId, User};
use chrono::Utc;
use serde_json::{Value, json};
use tests::fake_salesforce::{FakeOrg, FakeSalesforce, package_webhook};
use tests::fake_slack::FakeSlack;

const SECRET: &str = "whsec-bench-0123456789abcdef0123456789";
const SLACK_TOKEN: &str = "xoxb-bench-token";

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn percentiles(mut ms: Vec<f64>) -> String {
    if ms.is_empty() {
        return "no samples".into();
    }
    ms.sort_by(f64::total_cmp);
    let at = |p: f64| ms[((ms.len() as f64 * p).ceil() as usize).clamp(1, ms.len()) - 1];
    format!(
        "n={} p50 {:.1} ms, p95 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        ms.len(),
        at(0.50),
        at(0.95),
        at(0.99),
        ms[ms.len() - 1]
    )
}

/// A fake org holding `deals` generated Opportunities, a SQLite store and a server whose tenant
/// `acme` syncs with it; the first full pass imports them and trains a model, the second
/// scores and writes the pipeline back.
struct Rig {
    sf: FakeSalesforce,
    slack: FakeSlack,
    server: tests::TestServer,
    tenant: TenantId,
    open: Vec<String>,
}

async fn rig(deals: usize) -> Rig {
    let sf = FakeSalesforce::start(FakeOrg::default()).await;
    sf.set_page_size(2_000);
    sf.set_clock(Some(Utc::now() - chrono::Duration::hours(2)));
    let open = sf.put_generated(deals, 7, Utc::now().date_naive());
    let mut open: Vec<String> = open.into_iter().filter(|(_, o)| *o).map(|(id, _)| id).collect();
    open.sort();
    let slack = FakeSlack::start(SLACK_TOKEN).await;
    let store = tests::sqlite_store().await;
    let tenant = TenantId::parse("acme").expect("tenant");
    store.store.ensure_tenant(&tenant, "Acme").await.expect("tenant");
    let (org, api_url) = (sf.org_settings(SECRET), slack.api_url.clone());
    let server = tests::TestServer::start(store, move |s| {
        s.salesforce.tenants.insert("acme".into(), org);
        s.slack.bot_token = Some(SLACK_TOKEN.to_owned().into());
        s.slack.api_url = api_url;
        s.alerts.poll_seconds = 60;
    })
    .await;
    // The alert sender, woken by the webhook when it raises alerts (as `dealwatch serve` runs it).
    let sender = bot::wiring::sender(&server.state.settings, server.store.store.clone()).expect("alert sender");
    tokio::spawn(sender.run(Duration::from_secs(60), server.state.alerts_raised.clone()));
    Rig { sf, slack, server, tenant, open }
}

impl Rig {
    async fn pass(&self) -> bot::salesforce::sync::Report {
        self.sf.advance_clock(60);
        let connection = self.server.orgs.get(&self.tenant).expect("configured");
        let store = self.server.store.store.as_ref();
        bot::salesforce::sync::run(store, &connection, Mode::Full, &tests::texts(), &["slack".into()], Utc::now())
            .await
            .unwrap_or_else(|e| panic!("full pass: {e:?}"))
    }

    async fn train(&self) {
        tests::train_champion(self.server.store.store.as_ref(), &self.tenant).await;
    }

    /// Every owner a Dealwatch rep on Slack, alerted on any new deal scored above 5 at any hour.
    async fn reps_on_slack(&self) {
        let store = self.server.store.store.as_ref();
        let owners: BTreeSet<String> =
            self.sf.opportunities().iter().filter_map(|o| o["Owner"]["Email"].as_str().map(str::to_owned)).collect();
        for (n, owner) in owners.iter().enumerate() {
            let user_id = owner.trim_end_matches("@acme.test").to_owned();
            let user = User {
                user_id: user_id.clone(),
                email: Some(owner.clone()),
                name: user_id.clone(),
                crm_owner: Some(owner.clone()),
                role: Role::Rep,
                manager_id: None,
                time_zone: "UTC".into(),
                chat_ids: [("slack".to_owned(), format!("U{n:08}"))].into(),
            };
            store.upsert_user(&self.tenant, &user).await.expect("user");
            let settings = json!({
                "critical_deals": { "enabled": true, "channels": ["slack"], "threshold": 5 },
                "quiet_hours": { "enabled": false, "start": "22:00", "end": "07:00" },
            });
            store.save_alert_settings(&self.tenant, &user_id, &settings, Utc::now()).await.expect("settings");
        }
    }

    /// Sends one signed webhook naming `id`; the time it left, the answer.
    async fn webhook(&self, id: &str) -> (Instant, u16, Value) {
        let body = json!({ "ids": [id] }).to_string();
        let server = &self.server;
        let ts = tests::fresh_second(SECRET, &body);
        let request = package_webhook(&server.http, &server.base, "acme", body, SECRET, ts);
        let sent = Instant::now();
        let response = request.send().await.expect("POST");
        let (status, body) = tests::json_of(response).await;
        (sent, status, body)
    }

    /// When the first Collections PATCH after `since` reached the org.
    fn patched_after(&self, since: Instant) -> Option<Instant> {
        let calls = self.sf.calls();
        calls
            .iter()
            .rev()
            .take_while(|c| c.at >= since)
            .filter(|c| c.method == "PATCH" && c.path.ends_with("/composite/sobjects"))
            .map(|c| c.at)
            .min()
    }
}

async fn webhook_latency(deals: usize, rounds: usize) {
    let started = Instant::now();
    let rig = rig(deals).await;
    rig.pass().await;
    rig.train().await;
    let scored = rig.pass().await;
    rig.reps_on_slack().await;
    println!(
        "webhook rig: {deals} deals, {} open, {} scored and written back, set up in {:.1} s",
        rig.open.len(),
        scored.write_back.written,
        started.elapsed().as_secs_f64()
    );
    // Warm-up: the first webhook builds the tenant's engine.
    let first = rig.open[0].clone();
    rig.sf.advance_clock(1);
    rig.sf.touch(&first, json!({ "Amount": 1_000.0 }));
    let (_, status, body) = rig.webhook(&first).await;
    assert_eq!(status, 200, "{body}");

    // Changed deals: a new stage and amount, as a rep edits an Opportunity.
    let stages = ["Qualification", "Needs Analysis", "Proposal/Price Quote", "Negotiation/Review"];
    let (mut answered, mut patched, mut unpatched) = (Vec::new(), Vec::new(), 0);
    for (n, id) in rig.open.iter().skip(1).take(rounds).enumerate() {
        rig.sf.advance_clock(1);
        let amount = 2_000.0 + (n as f64 * 7_919.0) % 240_000.0;
        rig.sf.touch(id, json!({ "StageName": stages[n % stages.len()], "Amount": amount }));
        let (sent, status, body) = rig.webhook(id).await;
        let done = Instant::now();
        assert_eq!(status, 200, "{body}");
        answered.push((done - sent).as_secs_f64() * 1e3);
        match rig.patched_after(sent) {
            Some(at) => patched.push((at - sent).as_secs_f64() * 1e3),
            None => unpatched += 1,
        }
    }
    println!("changed deal: webhook answered        {}", percentiles(answered));
    println!(
        "changed deal: webhook -> PATCH at org {} ({unpatched} changes left the score as it was)",
        percentiles(patched)
    );

    // New deals: scored for the first time above the reps' threshold, so each raises an alert.
    let owners: Vec<String> =
        rig.sf.opportunities().iter().filter_map(|o| o["Owner"]["Email"].as_str().map(str::to_owned)).collect();
    let (mut to_patch, mut to_slack, mut no_alert) = (Vec::new(), Vec::new(), 0);
    let today = Utc::now().date_naive();
    for n in 0..rounds {
        rig.sf.advance_clock(1);
        let owner = &owners[n % owners.len()];
        let id = rig.sf.put_opportunity(json!({
            "Name": format!("Bench New {n}"), "StageName": "Qualification", "Amount": 45_000.0 + n as f64,
            "CloseDate": (today + chrono::Duration::days(60)).to_string(),
            "CreatedDate": format!("{}T09:00:00.000+0000", today - chrono::Duration::days(2)),
            "LeadSource": "Web", "Type": "Pro",
            "Account": { "Name": format!("Bench Account {n}"), "Industry": "EdTech", "BillingCountry": "Europe" },
            "Owner": { "Email": owner, "Name": owner.trim_end_matches("@acme.test") },
        }));
        let posted_before = rig.slack.posted().len();
        let (sent, status, body) = rig.webhook(&id).await;
        assert_eq!(status, 200, "{body}");
        if let Some(at) = rig.patched_after(sent) {
            to_patch.push((at - sent).as_secs_f64() * 1e3);
        }
        if body["alerts"].as_u64().unwrap_or(0) == 0 {
            no_alert += 1;
            continue;
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        let posted = loop {
            let posted = rig.slack.posted();
            if let Some(p) = posted.iter().skip(posted_before).find(|p| p.at >= sent) {
                break Some(p.at);
            }
            if Instant::now() > deadline {
                break None;
            }
            tokio::time::sleep(Duration::from_micros(200)).await;
        };
        match posted {
            Some(at) => to_slack.push((at - sent).as_secs_f64() * 1e3),
            None => println!("new deal {id}: no Slack post within 5 s"),
        }
    }
    println!("new deal:     webhook -> PATCH at org {}", percentiles(to_patch));
    println!("new deal:     webhook -> Slack alert  {} ({no_alert} raised no alert)", percentiles(to_slack));
}

async fn bulk_rescore(deals: usize) {
    let started = Instant::now();
    let rig = rig(deals).await;
    rig.pass().await;
    rig.train().await;
    println!(
        "bulk rig: {deals} deals, {} open, synced and trained in {:.1} s",
        rig.open.len(),
        started.elapsed().as_secs_f64()
    );
    let pass = Instant::now();
    let report = rig.pass().await;
    let took = pass.elapsed().as_secs_f64();
    let jobs = rig.sf.bulk_jobs();
    let rows: usize = jobs.iter().map(|j| j.records_processed).sum();
    println!(
        "full pass of {deals} deals (read {}, scored {}, written {} through {} Bulk API 2.0 job(s), {rows} rows processed): {took:.1} s",
        report.read,
        report.scored,
        report.write_back.written,
        jobs.len(),
    );
    println!("  steps (s): {:?}", report.seconds);
    let again = Instant::now();
    let idle = rig.pass().await;
    println!(
        "the next full pass (nothing changed, {} unchanged, {} written): {:.1} s",
        idle.write_back.unchanged,
        idle.write_back.written,
        again.elapsed().as_secs_f64()
    );
    // Every deal open: the closed ones reopened in the org (the model stays), so the nightly
    // pass rescores and writes back all of them.
    let close = (Utc::now().date_naive() + chrono::Duration::days(30)).to_string();
    rig.sf.advance_clock(1);
    for o in rig.sf.opportunities() {
        if o["IsClosed"].as_bool() == Some(true) {
            let id = o["Id"].as_str().expect("id");
            rig.sf.touch(id, json!({ "StageName": "Negotiation/Review", "CloseDate": close }));
        }
    }
    let jobs_before = rig.sf.bulk_jobs().len();
    let all = Instant::now();
    let report = rig.pass().await;
    let took = all.elapsed().as_secs_f64();
    let jobs = &rig.sf.bulk_jobs()[jobs_before..];
    println!(
        "full pass with all {deals} deals open (read {}, updated {}, scored {}, written {} through {} Bulk job(s), {} rows processed): {took:.1} s",
        report.read,
        report.updated,
        report.scored,
        report.write_back.written,
        jobs.len(),
        jobs.iter().map(|j| j.records_processed).sum::<usize>(),
    );
    println!("  steps (s): {:?}", report.seconds);
}

fn main() {
    // `cargo bench` passes `--bench`; nothing else is read from the command line.
    let only = std::env::var("ONLY").unwrap_or_default();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    runtime.block_on(async {
        if only.is_empty() || only == "webhook" {
            webhook_latency(env_usize("DEALS", 10_000), env_usize("ROUNDS", 200)).await;
        }
        if only.is_empty() || only == "bulk" {
            bulk_rescore(env_usize("BULK", 100_000)).await;
        }
    });
}
