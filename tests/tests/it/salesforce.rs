//! Salesforce end to end against the fake org on 127.0.0.1, on SQLite and PostgreSQL: a sync
//! signs in with a JWT assertion signed by the test key, reads every page, imports through the
//! mapping, rescores and writes the risk fields back in Collections calls of at most 200;
//! failed records are written on the next pass and nothing twice; the webhook rescores what
//! the package names, refuses what it did not sign, and does not loop on our own writes.

use std::collections::HashMap;

use bot::config::SalesforceOrg;
use bot::salesforce::sync::{Mode, Report};
use bot::store::TenantId;
use chrono::Utc;
use serde_json::{Value, json};
use tests::fake_salesforce::{
    Endpoint, FakeOrg, FakeSalesforce, Fault, TEST_PRIVATE_KEY_PEM, opportunity_id, package_webhook,
};
use tests::{TestServer, each_store};

const WEBHOOK_SECRET: &str = "whsec-0123456789abcdef0123456789abcdef";
const PAGE: usize = 150;

struct Rig {
    sf: FakeSalesforce,
    server: TestServer,
    tenant: TenantId,
    /// Opportunity id → open on the fake.
    open: HashMap<String, bool>,
}

/// The fake org holding `deals` generated deals as Opportunities (with their stage history),
/// and a server whose tenant `acme` syncs with it.
async fn rig(store: tests::TestStore, deals: usize) -> Rig {
    rig_with(store, deals, |_| {}).await
}

/// [`rig`], with the org's settings changed by `change`.
async fn rig_with(store: tests::TestStore, deals: usize, change: impl FnOnce(&mut SalesforceOrg)) -> Rig {
    let sf = FakeSalesforce::start(FakeOrg::default()).await;
    sf.set_page_size(PAGE);
    // The org's clock stands still between steps (stamps are whole seconds); passes move it on.
    sf.set_clock(Some(Utc::now() - chrono::Duration::hours(2)));
    let open = sf.put_generated(deals, 11, Utc::now().date_naive());
    let tenant = TenantId::parse("acme").expect("tenant");
    store.store.ensure_tenant(&tenant, "Acme").await.expect("tenant");
    let mut cfg = sf.org_settings(WEBHOOK_SECRET);
    change(&mut cfg);
    let server = TestServer::start(store, move |s| {
        s.salesforce.tenants.insert("acme".into(), cfg);
    })
    .await;
    Rig { sf, server, tenant, open }
}

impl Rig {
    /// A pass, a minute after whatever happened in the org before.
    async fn sync(&self, mode: Mode) -> anyhow::Result<Report> {
        self.sf.advance_clock(60);
        let connection = self.server.orgs.get(&self.tenant).expect("configured");
        let store = self.server.store.store.as_ref();
        bot::salesforce::sync::run(store, &connection, mode, &tests::texts(), &["log".to_owned()], Utc::now()).await
    }

    /// Trains and promotes a model on what the sync stored.
    async fn train(&self) {
        tests::train_champion(self.server.store.store.as_ref(), &self.tenant).await;
    }

    fn open_ids(&self) -> Vec<&String> {
        let mut ids: Vec<&String> = self.open.iter().filter(|(_, o)| **o).map(|(id, _)| id).collect();
        ids.sort();
        ids
    }

    /// How many times the org's records were written, by id.
    fn writes_per_record(&self) -> HashMap<String, usize> {
        let mut times: HashMap<String, usize> = HashMap::new();
        for u in self.sf.updates() {
            *times.entry(u.id).or_default() += 1;
        }
        times
    }

    /// The records of every Collections call, per call.
    fn collection_calls(&self) -> Vec<Vec<Value>> {
        self.sf
            .calls()
            .into_iter()
            .filter(|c| c.method == "PATCH" && c.path.ends_with("/composite/sobjects") && c.status == 200)
            .map(|c| {
                let body: Value = serde_json::from_str(&c.body).expect("JSON body");
                body["records"].as_array().cloned().unwrap_or_default()
            })
            .collect()
    }

    /// POSTs a webhook body signed as the package signs it, `age` seconds ago, with `secret`.
    /// Each notice is signed at a second of its own, as the package's are (the same signature
    /// twice is a replay, which the server refuses).
    async fn webhook(&self, body: &Value, secret: &str, age: i64) -> (u16, Value) {
        let ts = if age == 0 { tests::fresh_second(secret, &body.to_string()) } else { Utc::now().timestamp() - age };
        self.webhook_at(body, secret, ts).await
    }

    /// POSTs a webhook body signed at `ts`.
    async fn webhook_at(&self, body: &Value, secret: &str, ts: i64) -> (u16, Value) {
        let request = package_webhook(&self.server.http, &self.server.base, "acme", body.to_string(), secret, ts);
        let response = request.send().await.expect("POST");
        tests::json_of(response).await
    }
}

#[tokio::test]
async fn a_sync_reads_every_page_scores_and_writes_back_only_what_changed() {
    const DEALS: usize = 700;
    for store in each_store().await {
        let b = store.store.backend();
        let rig = rig(store, DEALS).await;
        let s = rig.server.store.store.clone();

        // First pass: everything read over the pages, imported; no model yet, nothing scored.
        let first = rig.sync(Mode::Full).await.expect("first sync");
        assert_eq!(first.read, DEALS, "{b}: {first:?}");
        assert_eq!(first.inserted + first.rejected, DEALS, "{b}: {first:?}");
        assert!(first.inserted > DEALS * 9 / 10, "{b}: most records are valid: {first:?}");
        assert_eq!((first.scored, first.write_back.calls), (0, 0), "{b}");
        let queries = rig.sf.calls().into_iter().filter(|c| c.path.contains("/query")).count();
        assert_eq!(queries, DEALS.div_ceil(PAGE), "{b}: one call per page");
        assert!(rig.sf.soql()[0].contains("FROM OpportunityHistories"), "{b}");
        assert_eq!(s.count_deals(&rig.tenant).await.expect("count") as usize, first.inserted, "{b}");
        // The JWT assertion was accepted: one sign-in for the whole pass.
        assert_eq!(rig.sf.tokens_issued().len(), 1, "{b}");

        // With a model: every open deal scored and written back, at most 200 a call; one record
        // is locked this time.
        rig.train().await;
        let open = rig.open_ids();
        let locked = open[3].clone();
        rig.sf.fail_records(&[&locked], "UNABLE_TO_LOCK_ROW");
        let second = rig.sync(Mode::Full).await.expect("second sync");
        let scored_open = second.scored;
        assert!(scored_open > 0 && scored_open <= open.len(), "{b}: {second:?}");
        assert_eq!(second.write_back.written, scored_open - 1, "{b}: {second:?}");
        assert_eq!(second.write_back.failed, 1, "{b}: {second:?}");
        assert!(second.write_back.failures[0].1.contains("UNABLE_TO_LOCK_ROW"), "{b}: {second:?}");
        let calls = rig.collection_calls();
        assert_eq!(calls.len(), scored_open.div_ceil(200), "{b}");
        assert!(calls.iter().all(|c| c.len() <= 200), "{b}");
        // What was written is what the store says.
        let written = open.iter().find(|id| **id != &locked).expect("another open deal");
        let stored = s.deal(&rig.tenant, written).await.expect("read").expect("stored");
        let score = stored.score.expect("scored");
        let on_record = rig.sf.opportunity(written).expect("record");
        assert_eq!(on_record["Risk_Score__c"].as_f64(), Some(f64::from(score.risk_score)), "{b}: {on_record}");
        assert_eq!(
            on_record["Risk_Category__c"].as_str(),
            Some(bot::salesforce::sync::category_label(score.risk_category)),
            "{b}"
        );
        let factors = on_record["Risk_Factors__c"].as_str().expect("factors");
        assert!(factors.starts_with("Risk factors:\n- ") && factors.contains("Recommended actions:"), "{b}: {factors}");
        assert!(on_record["Risk_Updated__c"].is_string() && on_record["Win_Probability__c"].is_number(), "{b}");

        // Third pass: only the record that failed is written; nothing else twice.
        let third = rig.sync(Mode::Full).await.expect("third sync");
        assert_eq!((third.write_back.written, third.write_back.unchanged), (1, scored_open - 1), "{b}: {third:?}");
        let times = rig.writes_per_record();
        assert_eq!(times.len(), scored_open, "{b}: every scored deal written");
        assert!(times.values().all(|n| *n == 1), "{b}: none twice");

        // Incremental: a change made in Salesforce is read (with the few records stamped in the
        // watermark's second) and its deal stored; a pass with nothing new changes nothing.
        let watermark = third.watermark.clone().expect("watermark");
        assert_eq!(
            s.watermark(&rig.tenant, "salesforce:opportunity").await.expect("read"),
            Some(watermark.clone()),
            "{b}"
        );
        rig.sf.advance_clock(5);
        let changed = open[10].clone();
        rig.sf.touch(&changed, json!({ "Amount": 987_654.0 }));
        // What the pass must read: the records stamped at or after the watermark (the change,
        // and our own write-backs since the last read, which the import finds unchanged).
        let since = chrono::DateTime::parse_from_rfc3339(&watermark).expect("RFC 3339").with_timezone(&Utc);
        let stamped = |r: &Value| {
            let at = r["SystemModstamp"].as_str().expect("stamp");
            chrono::DateTime::parse_from_str(at, "%Y-%m-%dT%H:%M:%S%.f%z").expect("Salesforce date-time") >= since
        };
        let recent = rig.sf.opportunities().iter().filter(|r| stamped(r)).count();
        let inc = rig.sync(Mode::Incremental).await.expect("incremental");
        assert_eq!(inc.read, recent, "{b}: only recent records: {inc:?}");
        assert!(recent < DEALS / 2, "{b}: {inc:?}");
        assert_eq!(inc.updated, 1, "{b}: {inc:?}");
        let stored = s.deal(&rig.tenant, &changed).await.expect("read").expect("stored");
        assert_eq!(stored.record.amount, Some(987_654.0), "{b}");
        let idle = rig.sync(Mode::Incremental).await.expect("idle");
        assert_eq!((idle.inserted, idle.updated, idle.scored, idle.write_back.written), (0, 0, 0, 0), "{b}: {idle:?}");
        assert!(rig.sf.soql().last().expect("soql").contains("SystemModstamp >= "), "{b}");
    }
}

#[tokio::test]
async fn salesforce_faults_are_retried_or_explained_and_nothing_is_lost_or_doubled() {
    for store in each_store().await {
        let b = store.store.backend();
        let rig = rig(store, 400).await;
        rig.sync(Mode::Full).await.expect("first sync");
        rig.train().await;

        // A session that expired mid-pass: one new sign-in, one retry, the pass goes on; then
        // 503 on the first write: the pass fails for a retry and records nothing it did not write.
        rig.sf.script(Endpoint::Query, &[Fault::Unauthorized]);
        rig.sf.script(Endpoint::Collections, &[Fault::Unavailable]);
        let before = rig.sf.tokens_issued().len();
        let e = rig.sync(Mode::Full).await.expect_err("503 on the write");
        assert_eq!(rig.sf.tokens_issued().len(), before + 1, "{b}: signed in again after the 401");
        let said = format!("{e:#}");
        assert!(said.contains("unavailable") && said.contains("tries again"), "{b}: {said}");
        assert!(rig.sf.updates().is_empty(), "{b}: nothing written");
        // The retry writes every score once; the pass after it has nothing left to write.
        let retry = rig.sync(Mode::Full).await.expect("the retry");
        assert!(retry.scored > 0 && retry.write_back.written == retry.scored, "{b}: {retry:?}");
        assert_eq!(rig.sf.updates().len(), retry.scored, "{b}");
        let again = rig.sync(Mode::Full).await.expect("full after the retry");
        assert_eq!((again.write_back.written, again.write_back.unchanged), (0, retry.scored), "{b}: {again:?}");

        // 403 REQUEST_LIMIT_EXCEEDED: transient, said as such.
        rig.sf.script(Endpoint::Query, &[Fault::RequestLimit]);
        let e = rig.sync(Mode::Incremental).await.expect_err("limit");
        let sf = e.downcast_ref::<bot::salesforce::client::SfError>().expect("a Salesforce error");
        assert!(sf.is_transient() && format!("{e:#}").contains("limit"), "{b}: {e:#}");

        // A field the org lacks: every record refused, naming the field; not recorded as written.
        rig.sf.remove_field("Risk_Score__c");
        let id = rig.open_ids()[0].clone();
        rig.sf.advance_clock(2);
        rig.sf.touch(&id, json!({ "Amount": 123_456.0 }));
        match rig.sync(Mode::Incremental).await {
            Ok(r) => {
                assert!(r.write_back.written == 0 && r.write_back.failed >= 1, "{b}: {r:?}");
                assert!(r.write_back.failures.iter().all(|(_, why)| why.contains("Risk_Score__c")), "{b}: {r:?}");
            }
            Err(e) => assert!(format!("{e:#}").contains("Risk_Score__c"), "{b}: {e:#}"),
        }
    }
}

#[tokio::test]
async fn a_sign_in_the_org_refuses_is_said_with_salesforces_reason() {
    let store = tests::sqlite_store().await;
    let rig = rig(store, 50).await;
    rig.sf.script(Endpoint::Token, &[Fault::Unauthorized]);
    let e = rig.sync(Mode::Full).await.expect_err("refused");
    let sf = e.downcast_ref::<bot::salesforce::client::SfError>().expect("a Salesforce error");
    assert!(sf.is_schema() && !sf.is_transient(), "{e:#}");
    assert!(format!("{e:#}").contains("invalid_grant"), "{e:#}");
    // A key the connected app does not know is refused the same way.
    let other = SalesforceOrg {
        login_url: rig.sf.base.clone(),
        client_id: FakeOrg::default().consumer_key,
        username: Some("someone.else@dealwatch.test".into()),
        private_key: Some(TEST_PRIVATE_KEY_PEM.to_owned().into()),
        ..Default::default()
    };
    let org = bot::salesforce::client::Org::new("acme", &other).expect("config");
    let e = org.query_all("SELECT Id FROM Opportunity").await.expect_err("unknown user");
    assert!(matches!(e, bot::salesforce::client::SfError::SignIn { .. }), "{e}");
}

/// A full pass that sees over a fifth fewer Opportunities than the one before tells the admins
/// at once (seed 002's volume-drop alert); a smaller fall does not.
#[tokio::test]
async fn a_full_sync_that_sees_far_fewer_opportunities_alerts_the_admins() {
    let store = tests::sqlite_store().await;
    let rig = rig(store, 400).await;
    let admin = bot::store::User {
        user_id: "admin".into(),
        email: Some("admin@acme.test".into()),
        name: "Ada Admin".into(),
        crm_owner: None,
        role: bot::store::Role::Admin,
        manager_id: None,
        time_zone: "UTC".into(),
        chat_ids: [("slack".to_owned(), "U300".to_owned())].into(),
    };
    rig.server.store.store.upsert_user(&rig.tenant, &admin).await.expect("admin");
    let first = rig.sync(Mode::Full).await.expect("first full sync");
    assert_eq!((first.read, first.volume_drop), (400, None));
    let mut ids: Vec<&String> = rig.open.keys().collect();
    ids.sort();
    for id in &ids[..40] {
        rig.sf.delete_opportunity(id);
    }
    let ten_percent = rig.sync(Mode::Full).await.expect("second");
    assert_eq!(ten_percent.volume_drop, None, "a tenth fewer is not a fifth: {ten_percent:?}");
    for id in &ids[40..190] {
        rig.sf.delete_opportunity(id);
    }
    let dropped = rig.sync(Mode::Full).await.expect("third");
    let drop = dropped.volume_drop.expect("over a fifth fewer");
    assert!((drop - 150.0 / 360.0).abs() < 1e-9, "{dropped:?}");
    let query = bot::alerts::AlertQuery { kinds: vec![engine::alerts::AlertKind::DataQuality], ..Default::default() };
    let alerts = rig.server.store.store.alerts(&rig.tenant, &query).await.expect("alerts");
    let volume: Vec<_> = alerts.iter().filter(|a| a.subject == "salesforce_volume").collect();
    assert!(!volume.is_empty() && volume.iter().all(|a| a.recipient == "admin"), "{alerts:?}");
    let message =
        bot::alerts::templates::Templates::load(None, None).expect("templates").render(volume[0]).expect("render");
    assert!(message.subject.contains("sync sees 42% fewer records"), "{}", message.subject);
    assert!(message.text.contains("saw 210 records, 42% fewer than the 360"), "{}", message.text);
}

/// The client-credentials flow (the connected app's run-as user): signed in with the app's id
/// and secret, the org is read; a wrong secret is refused with Salesforce's reason.
#[tokio::test]
async fn the_client_credentials_flow_signs_in_and_a_wrong_secret_is_refused() {
    let store = tests::sqlite_store().await;
    let rig = rig(store, 50).await;
    let fake = FakeOrg::default();
    let settings = |secret: &str| SalesforceOrg {
        login_url: rig.sf.base.clone(),
        auth: bot::config::SalesforceAuth::ClientCredentials,
        client_id: fake.client_id.clone(),
        client_secret: Some(secret.to_owned().into()),
        ..Default::default()
    };
    let org = bot::salesforce::client::Org::new("acme", &settings(&fake.client_secret)).expect("config");
    let before = rig.sf.tokens_issued().len();
    let records = org.query_all("SELECT Id FROM Opportunity").await.expect("read with client credentials");
    assert_eq!(records.len(), 50, "every Opportunity read");
    assert_eq!(rig.sf.tokens_issued().len(), before + 1, "one sign-in");
    let wrong = bot::salesforce::client::Org::new("acme", &settings("not-the-secret")).expect("config");
    let e = wrong.query_all("SELECT Id FROM Opportunity").await.expect_err("refused");
    assert!(matches!(e, bot::salesforce::client::SfError::SignIn { .. }), "{e}");
    assert!(format!("{e:#}").contains("invalid_client"), "{e:#}");
}

#[tokio::test]
async fn the_webhook_rescores_what_the_package_names_and_refuses_what_it_did_not_sign() {
    for store in each_store().await {
        let b = store.store.backend();
        let rig = rig(store, 400).await;
        rig.sync(Mode::Full).await.expect("sync");
        rig.train().await;
        rig.sync(Mode::Full).await.expect("scored and written");
        let id = rig.open_ids()[0].clone();
        let written_before = rig.sf.updates().len();

        // A user moves the deal on: the webhook reads it, rescores it and writes it back.
        let scored_before = rig.server.store.store.deal(&rig.tenant, &id).await.expect("read").and_then(|d| d.score);
        rig.sf.advance_clock(2);
        rig.sf.touch(&id, json!({ "StageName": "Negotiation/Review", "Amount": 250_000.0 }));
        let body = json!({ "ids": [id], "org_id": FakeOrg::default().org_id, "reason": "trigger" });
        let (status, answer) = rig.webhook(&body, WEBHOOK_SECRET, 0).await;
        assert_eq!(status, 200, "{b}: {answer}");
        assert_eq!(
            (answer["read"].as_u64(), answer["changed"].as_u64(), answer["scored"].as_u64()),
            (Some(1), Some(1), Some(1)),
            "{b}: {answer}"
        );
        let stored = rig.server.store.store.deal(&rig.tenant, &id).await.expect("read").expect("stored");
        assert_eq!(stored.record.amount, Some(250_000.0), "{b}");
        let written = answer["written"].as_u64().expect("written") as usize;
        assert_eq!(rig.sf.updates().len(), written_before + written, "{b}");
        let moved = |s: &bot::store::CurrentScore| (s.risk_score, (s.win_probability * 1000.0).round() as i64);
        if scored_before.as_ref().map(moved) != stored.score.as_ref().map(moved) {
            assert_eq!(written, 1, "{b}: a changed score is written: {answer}");
        }
        if written == 1 {
            let on_record = rig.sf.opportunity(&id).expect("record");
            let score = stored.score.expect("scored");
            assert_eq!(on_record["Risk_Score__c"].as_f64(), Some(f64::from(score.risk_score)), "{b}");
        }

        // Our own write-back changed the record in Salesforce; the nudge it causes (had the
        // trigger not skipped the integration user) changes nothing and writes nothing.
        let (status, answer) = rig.webhook(&body, WEBHOOK_SECRET, 0).await;
        assert_eq!(
            (status, answer["changed"].as_u64(), answer["scored"].as_u64()),
            (200, Some(0), Some(0)),
            "{b}: {answer}"
        );
        // Refresh: rescored even unchanged; the same score is not written again.
        let refresh = json!({ "ids": [id], "reason": "refresh" });
        let (status, answer) = rig.webhook(&refresh, WEBHOOK_SECRET, 0).await;
        assert_eq!(
            (status, answer["scored"].as_u64(), answer["written"].as_u64()),
            (200, Some(1), Some(0)),
            "{b}: {answer}"
        );

        // An id Salesforce does not return is said.
        let gone = rig.open_ids()[1].clone();
        rig.sf.delete_opportunity(&gone);
        let (status, answer) = rig.webhook(&json!({ "ids": [gone] }), WEBHOOK_SECRET, 0).await;
        assert_eq!((status, answer["not_found"].clone()), (200, json!([gone])), "{b}: {answer}");

        // Forged, stale, replayed, unsigned, malformed: refused, nothing read.
        let at = Utc::now().timestamp() - 200;
        assert_eq!(rig.webhook_at(&body, WEBHOOK_SECRET, at).await.0, 200, "{b}: a notice");
        let soql_before = rig.sf.soql().len();
        let (status, answer) = rig.webhook_at(&body, WEBHOOK_SECRET, at).await;
        assert_eq!(status, 401, "{b}: the same signed request again: {answer}");
        assert_eq!(rig.webhook(&body, "not-the-secret", 0).await.0, 401, "{b}: forged");
        assert_eq!(rig.webhook(&body, WEBHOOK_SECRET, 400).await.0, 401, "{b}: stale");
        assert_eq!(rig.webhook(&body, WEBHOOK_SECRET, -400).await.0, 401, "{b}: from the future");
        let unsigned = rig
            .server
            .http
            .post(rig.server.url("/sfdc/opportunity-changed"))
            .header("x-dealwatch-tenant", "acme")
            .json(&body)
            .send()
            .await
            .expect("POST");
        assert_eq!(unsigned.status().as_u16(), 401, "{b}: unsigned");
        let many: Vec<String> = (1..=201).map(opportunity_id).collect();
        let (status, answer) = rig.webhook(&json!({ "ids": many }), WEBHOOK_SECRET, 0).await;
        assert_eq!(status, 400, "{b}: {answer}");
        let (status, answer) = rig.webhook(&json!({ "ids": ["006'; DELETE"] }), WEBHOOK_SECRET, 0).await;
        assert!(status == 400 && answer["error"].as_str().is_some_and(|e| e.contains("006'; DELETE")), "{b}: {answer}");
        assert_eq!(rig.sf.soql().len(), soql_before, "{b}: nothing read for refused requests");

        // Salesforce down while handling: 503, so the package's Queueable tries again.
        rig.sf.script(Endpoint::Query, &[Fault::Unavailable]);
        let (status, answer) = rig.webhook(&body, WEBHOOK_SECRET, 0).await;
        assert_eq!(status, 503, "{b}: {answer}");
    }
}

#[tokio::test]
async fn queued_follow_up_tasks_become_tasks_on_their_opportunities_once() {
    use bot::salesforce::tasks::write_queued;
    use bot::store::FollowUpTask;
    for store in each_store().await {
        let b = store.store.backend();
        let rig = rig(store, 120).await;
        rig.sync(Mode::Full).await.expect("sync");
        let s = rig.server.store.store.clone();
        let connection = rig.server.orgs.get(&rig.tenant).expect("configured");
        let open = rig.open_ids();
        let task = |n: usize, deal: &str| FollowUpTask {
            task_id: format!("0190a000-0000-7000-8000-{n:012}"),
            task_key: format!("slack:T0ACME:U0REP1:{deal}:{n}"),
            deal_id: deal.to_owned(),
            subject: "Book a call with the economic buyer".into(),
            due_date: Some(Utc::now().date_naive() + chrono::Duration::days(1)),
            owner: None,
            created_by: "rep_1".into(),
            created_at: Utc::now(),
            state: "queued".into(),
            crm_id: None,
            error: None,
        };
        let first = task(1, open[0]);
        s.record_task(&rig.tenant, &first).await.expect("record");
        let report = write_queued(s.as_ref(), &connection).await.expect("write");
        assert_eq!((report.written, report.failed, report.waiting), (1, 0, 0), "{b}");
        let tasks = rig.sf.tasks();
        assert_eq!(tasks.len(), 1, "{b}: {tasks:?}");
        let on_org = &tasks[0];
        let opportunity = rig.sf.opportunity(open[0]).expect("opportunity");
        assert_eq!(on_org["Dealwatch_Key__c"], first.task_id.as_str(), "{b}: {on_org}");
        assert_eq!(on_org["WhatId"], open[0].as_str(), "{b}");
        assert_eq!(on_org["OwnerId"], opportunity["OwnerId"], "{b}: the deal owner's, not the integration user's");
        assert_eq!(
            (on_org["Subject"].as_str(), on_org["Status"].as_str()),
            (Some(first.subject.as_str()), Some("Not Started"))
        );
        let stored = s.tasks(&rig.tenant, Some(open[0])).await.expect("tasks");
        assert_eq!((stored[0].state.as_str(), stored[0].crm_id.as_deref()), ("written", on_org["Id"].as_str()), "{b}");

        // Salesforce busy: the task waits, queued; the next pass writes it, once.
        s.record_task(&rig.tenant, &task(2, open[1])).await.expect("record");
        rig.sf.script(Endpoint::Task, &[Fault::Unavailable]);
        let report = write_queued(s.as_ref(), &connection).await.expect("write");
        assert_eq!((report.written, report.waiting), (0, 1), "{b}");
        assert_eq!(s.tasks_in_state(&rig.tenant, "queued").await.expect("queued").len(), 1, "{b}");
        let report = write_queued(s.as_ref(), &connection).await.expect("write");
        assert_eq!(report.written, 1, "{b}");
        assert_eq!(rig.sf.tasks().len(), 2, "{b}");
        // Nothing queued: nothing sent again.
        assert_eq!(write_queued(s.as_ref(), &connection).await.expect("idle"), Default::default(), "{b}");
        assert_eq!(rig.sf.tasks().len(), 2, "{b}");
        // The same key upserted again (a retry after a lost answer) updates the one Task.
        let again =
            connection.org.upsert_task(&first.task_id, &bot::salesforce::tasks::task_fields(&first, None)).await;
        assert_eq!(again.expect("upsert"), (on_org["Id"].as_str().map(str::to_owned), false), "{b}");
        assert_eq!(rig.sf.tasks().len(), 2, "{b}: no duplicate");

        // An Opportunity deleted in Salesforce: the task fails, saying why.
        rig.sf.delete_opportunity(open[2]);
        s.record_task(&rig.tenant, &task(3, open[2])).await.expect("record");
        let report = write_queued(s.as_ref(), &connection).await.expect("write");
        assert_eq!(report.failed, 1, "{b}");
        let failed = s.tasks(&rig.tenant, Some(open[2])).await.expect("tasks");
        assert_eq!(failed[0].state, "failed", "{b}");
        assert!(failed[0].error.as_deref().is_some_and(|e| e.contains(open[2].as_str())), "{b}: {failed:?}");
    }
}

#[tokio::test]
async fn a_large_write_back_goes_through_bulk_api_2_and_its_failed_rows_are_written_next_pass() {
    for store in each_store().await {
        let b = store.store.backend();
        let rig = rig_with(store, 400, |c| c.bulk_threshold = 20).await;
        rig.sync(Mode::Full).await.expect("sync");
        rig.train().await;
        let open = rig.open_ids();
        let locked = open[0].clone();
        rig.sf.fail_records(&[&locked], "UNABLE_TO_LOCK_ROW");
        let report = rig.sync(Mode::Full).await.expect("scored and written in bulk");
        let scored = report.scored;
        assert!(scored > 20, "{b}: more than the threshold: {report:?}");
        assert_eq!(
            (report.write_back.calls, report.write_back.written, report.write_back.failed),
            (1, scored - 1, 1),
            "{b}: {report:?}"
        );
        assert!(report.write_back.failures[0].1.contains("UNABLE_TO_LOCK_ROW"), "{b}: {report:?}");
        let jobs = rig.sf.bulk_jobs();
        assert_eq!(jobs.len(), 1, "{b}");
        assert_eq!(
            (jobs[0].state.as_str(), jobs[0].operation.as_str(), jobs[0].object.as_str()),
            ("JobComplete", "update", "Opportunity")
        );
        assert!(rig.collection_calls().is_empty(), "{b}: no Collections call");
        // The multi-line factors field survives the CSV.
        let written = rig.sf.opportunity(open[1]).expect("record");
        let stored = rig.server.store.store.deal(&rig.tenant, open[1]).await.expect("read").expect("stored");
        assert_eq!(written["Risk_Score__c"].as_f64(), stored.score.map(|s| f64::from(s.risk_score)), "{b}");
        let factors = written["Risk_Factors__c"].as_str().expect("factors");
        assert!(
            factors.starts_with("Risk factors:\n- ") && factors.contains("\nRecommended actions:\n"),
            "{b}: {factors:?}"
        );
        // The failed row alone is written next, through Collections (under the threshold); none twice.
        let next = rig.sync(Mode::Full).await.expect("next");
        assert_eq!((next.write_back.written, next.write_back.calls), (1, 1), "{b}: {next:?}");
        let times = rig.writes_per_record();
        assert_eq!(times.len(), scored, "{b}");
        assert!(times.values().all(|n| *n == 1), "{b}: none twice");
    }
}

#[tokio::test]
async fn dealwatch_sync_runs_a_pass_from_the_command_line() {
    let store = tests::sqlite_store().await;
    let url = store.url.clone();
    let rig = rig(store, 120).await;
    let org = FakeOrg::default();
    let mut sync = tests::dealwatch();
    sync.args(["--format", "json", "sync", "--tenant", "acme", "--full"])
        .env("DEALWATCH_DATABASE__URL", &url)
        .env("DEALWATCH_SALESFORCE__TENANTS__ACME__LOGIN_URL", &rig.sf.base)
        .env("DEALWATCH_SALESFORCE__TENANTS__ACME__CLIENT_ID", &org.consumer_key)
        .env("DEALWATCH_SALESFORCE__TENANTS__ACME__USERNAME", &org.username)
        .env("DEALWATCH_SALESFORCE__TENANTS__ACME__PRIVATE_KEY", TEST_PRIVATE_KEY_PEM);
    // The fake answers on this runtime: the binary runs on a blocking thread meanwhile.
    let out = tokio::task::spawn_blocking(move || sync.output().expect("run dealwatch")).await.expect("joined");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    let report: Value = serde_json::from_str(&stdout).expect("JSON");
    assert_eq!(report["sync"]["read"], 120, "{report}");
    let stored = rig.server.store.store.count_deals(&rig.tenant).await.expect("count");
    assert_eq!(stored, report["sync"]["inserted"].as_u64().expect("inserted"), "{report}");
    // A tenant without an org is told how to configure one.
    let out = tests::dealwatch()
        .args(["sync", "--tenant", "globex"])
        .env("DEALWATCH_DATABASE__URL", &url)
        .output()
        .expect("run");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("[salesforce.tenants.globex]"));
}

#[tokio::test]
async fn a_schema_problem_halts_the_tenants_sync_and_alerts_its_admin_until_a_pass_succeeds() {
    use bot::jobs::{Job, JobWork, ServiceJobs};
    use bot::store::{AlertQuery, Role, User};
    use engine::alerts::AlertKind;
    for store in each_store().await {
        let b = store.store.backend();
        let rig = rig(store, 200).await;
        let s = rig.server.store.store.clone();
        let admin = User {
            user_id: "ada".into(),
            email: Some("ada@acme.test".into()),
            name: "Ada".into(),
            crm_owner: None,
            role: Role::Admin,
            manager_id: None,
            time_zone: "UTC".into(),
            chat_ids: Default::default(),
        };
        s.upsert_user(&rig.tenant, &admin).await.expect("admin");
        let connection = rig.server.orgs.get(&rig.tenant).expect("configured");
        let channels = ["log".to_owned()];
        let texts = tests::texts();
        let pass = |mode| {
            rig.sf.advance_clock(60);
            bot::salesforce::pass(s.as_ref(), &connection, mode, &texts, &channels, Utc::now())
        };
        pass(Mode::Full).await.expect("first pass");
        rig.train().await;

        // The integration user lost access to a field the write-back needs: every record of the
        // first call is refused for it, so the pass stops and the sync halts.
        rig.sf.remove_field("Risk_Score__c");
        let e = pass(Mode::Full).await.expect_err("halted");
        assert!(bot::salesforce::is_schema(&e) && format!("{e:#}").contains("Risk_Score__c"), "{b}: {e:#}");
        assert_eq!(rig.collection_calls().len(), 0, "{b}: no record written");
        let halt = bot::salesforce::halted(s.as_ref(), &rig.tenant).await.expect("read").expect("halted");
        assert!(halt.reason.contains("Risk_Score__c") && halt.reason.contains("permission set"), "{b}: {halt:?}");
        let query = AlertQuery { kinds: vec![AlertKind::DataQuality], ..AlertQuery::default() };
        let alerts = s.alerts(&rig.tenant, &query).await.expect("alerts");
        assert_eq!(alerts.len(), 1, "{b}: one alert, to the admin: {alerts:?}");
        assert_eq!((alerts[0].recipient.as_str(), alerts[0].channel.as_str()), ("ada", "log"), "{b}");
        // At once (or when the admin's quiet hours end), not with the next digest.
        let within_a_day = (Utc::now() + chrono::Duration::days(1)).timestamp_millis();
        assert!(alerts[0].due_ms <= within_a_day, "{b}: {:?}", alerts[0]);
        assert_eq!(alerts[0].payload["finding"]["resume"], "dealwatch sync --tenant acme", "{b}");
        // Failing again the same day neither moves the halt's start nor alerts twice.
        pass(Mode::Full).await.expect_err("still halted");
        let again = bot::salesforce::halted(s.as_ref(), &rig.tenant).await.expect("read").expect("halted");
        assert_eq!(again.at, halt.at, "{b}");
        assert_eq!(s.alerts(&rig.tenant, &query).await.expect("alerts").len(), 1, "{b}");

        // While halted, scheduled incremental passes skip without calling the org, and the
        // webhook refuses with the reason.
        let jobs = ServiceJobs {
            store: s.clone(),
            texts: tests::texts(),
            channels: channels.to_vec(),
            threads: 1,
            crm: rig.server.orgs.clone(),
        };
        let calls = rig.sf.calls().len();
        let skipped = jobs.run(&rig.tenant, Job::SalesforceSync, Utc::now(), Utc::now()).await.expect("job");
        assert!(skipped["skipped"].as_str().is_some_and(|w| w.contains("halted")), "{b}: {skipped}");
        assert_eq!(rig.sf.calls().len(), calls, "{b}: the org was not called");
        let id = rig.open_ids()[0].clone();
        let (status, body) = rig.webhook(&json!({ "ids": [id] }), WEBHOOK_SECRET, 0).await;
        assert_eq!(status, 409, "{b}: {body}");
        assert!(body["error"].as_str().is_some_and(|e| e.contains("Risk_Score__c")), "{b}: {body}");

        // The admin fixes the permission set; the next full pass (nightly, or `dealwatch sync`)
        // succeeds, writes what waited and lifts the halt.
        rig.sf.restore_field("Risk_Score__c");
        let resumed = pass(Mode::Full).await.expect("resumed");
        assert!(resumed.sync.write_back.written > 0, "{b}: {resumed:?}");
        assert_eq!(bot::salesforce::halted(s.as_ref(), &rig.tenant).await.expect("read"), None, "{b}");
        let ran = jobs.run(&rig.tenant, Job::SalesforceSync, Utc::now(), Utc::now()).await.expect("job");
        assert!(ran.get("skipped").is_none(), "{b}: {ran}");
    }
}

#[tokio::test]
async fn deals_whose_risk_rises_get_their_top_action_as_a_task_once() {
    use bot::config::AutoTasks;
    use engine::domain::RiskCategory;
    for store in each_store().await {
        let b = store.store.backend();
        let rig = rig_with(store, 300, |c| c.auto_tasks = AutoTasks::High).await;
        let s = rig.server.store.store.clone();
        let connection = rig.server.orgs.get(&rig.tenant).expect("configured");
        let (texts, channels) = (tests::texts(), ["log".to_owned()]);
        let pass = || {
            rig.sf.advance_clock(60);
            bot::salesforce::pass(s.as_ref(), &connection, Mode::Full, &texts, &channels, Utc::now())
        };
        pass().await.expect("first pass");
        rig.train().await;
        // The pipeline's first scoring is a baseline: no Tasks for the deals already risky,
        // only for those created in the last 14 days (news, as for critical-deal alerts).
        let baseline = pass().await.expect("scored");
        assert!(baseline.sync.scored > baseline.sync.tasks_queued, "{b}: {baseline:?}");
        let fortnight = (Utc::now() - chrono::Duration::days(15)).format("%Y-%m-%d").to_string();
        for task in rig.sf.tasks() {
            let deal = rig.sf.opportunity(task["WhatId"].as_str().expect("WhatId")).expect("deal");
            assert!(deal["CreatedDate"].as_str().is_some_and(|c| c > fortnight.as_str()), "{b}: {deal}");
        }
        let before = rig.sf.tasks().len();
        assert_eq!(before, baseline.sync.tasks_queued, "{b}");

        // New Opportunities, a few days old: those scored High or Critical get a Task each.
        let today = Utc::now().date_naive();
        let owner = rig.sf.opportunities()[0]["Owner"].clone();
        let mut new = Vec::new();
        for n in 0..24 {
            let industries = ["EdTech", "FinTech", "HealthTech", "Retail"];
            new.push(rig.sf.put_opportunity(json!({
                "Name": format!("New Deal {n}"), "StageName": if n % 2 == 0 { "Qualification" } else { "Prospecting" },
                "Amount": 5_000.0 + 40_000.0 * f64::from(n), "CloseDate": (today + chrono::Duration::days(20)).to_string(),
                "CreatedDate": format!("{}T09:00:00.000+0000", today - chrono::Duration::days(3)),
                "LeadSource": if n % 3 == 0 { "Outbound" } else { "Web" }, "Type": "Enterprise",
                "Account": { "Name": format!("New Account {n}"), "Industry": industries[n as usize % 4], "BillingCountry": "Europe" },
                "Owner": owner,
            })));
        }
        let scored = pass().await.expect("new deals scored");
        let mut risky = Vec::new();
        for id in &new {
            let stored = s.deal(&rig.tenant, id).await.expect("read").expect("stored");
            if stored.score.expect("scored").risk_category >= RiskCategory::High {
                risky.push(id.clone());
            }
        }
        assert!(!risky.is_empty(), "{b}: some new deals are risky");
        assert_eq!(scored.sync.tasks_queued, risky.len(), "{b}: one task per risky new deal: {scored:?}");
        assert_eq!(scored.tasks.written, risky.len(), "{b}: {scored:?}");
        let tasks = rig.sf.tasks();
        assert_eq!(tasks.len(), before + risky.len(), "{b}");
        for id in &risky {
            let task = tasks.iter().find(|t| t["WhatId"] == id.as_str()).expect("a task on the deal");
            // The top recommended action, as the risk fields on the record list it.
            let record = rig.sf.opportunity(id).expect("record");
            let factors = record["Risk_Factors__c"].as_str().expect("factors");
            let top = factors.split("Recommended actions:\n- ").nth(1).and_then(|r| r.lines().next());
            assert_eq!(task["Subject"].as_str(), top, "{b}: {factors}");
            assert!(task["Description"].as_str().is_some_and(|d| d.contains("Recommended by Dealwatch")), "{b}");
        }
        // Still risky at the next pass: no second task.
        let next = pass().await.expect("next");
        assert_eq!((next.sync.tasks_queued, next.tasks.written), (0, 0), "{b}: {next:?}");
        assert_eq!(rig.sf.tasks().len(), before + risky.len(), "{b}: none twice");
    }
}
