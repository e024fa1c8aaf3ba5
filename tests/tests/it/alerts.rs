//! Alerts end to end: raised with their scores in one transaction, only on the crossing, at most
//! once a day and again only when materially worse; held by quiet hours; claimed once by
//! concurrent senders; delivered to a fake Slack exactly once through 500s, 429s and a
//! cut-off attempt; escalated to the fallback channel after three failures. Injected clocks.

use std::sync::Arc;

use bot::alerts::channels::{Address, Channel, LogChannel};
use bot::alerts::deliver::{Report, Sender, SenderConfig};
use bot::alerts::templates::Templates;
use bot::alerts::{Alert, AlertQuery, AlertState};
use bot::slack::channel::SlackChannel;
use bot::store::{Role, ScoreUpdate, Store, TenantId, User};
use chrono::{DateTime, Duration, Utc};
use engine::alerts::AlertKind;
use engine::domain::RiskCategory;
use engine::score::RiskScore;
use secrecy::SecretString;
use tests::fake_slack::{FakeSlack, Fault};
use tests::{TestStore, each_store};

const TOKEN: &str = "xoxb-test-token";

/// A tenant with a few hundred generated deals, a rep (Maria, in New York), her manager (Omar)
/// and an admin; and a real risk card of one of Maria's open deals.
struct Fixture {
    store: TestStore,
    tenant: TenantId,
    card: RiskScore,
    /// Another open deal, never scored in the store.
    other: RiskScore,
}

fn user(id: &str, role: Role, owner: Option<&str>, manager: Option<&str>, slack: &str, tz: &str) -> User {
    User {
        user_id: id.to_owned(),
        email: Some(format!("{id}@acme.test")),
        name: id.to_owned(),
        crm_owner: owner.map(str::to_owned),
        role,
        manager_id: manager.map(str::to_owned),
        time_zone: tz.to_owned(),
        chat_ids: [("slack".to_owned(), slack.to_owned())].into(),
    }
}

async fn fixture(store: TestStore) -> Fixture {
    let today = Utc::now().date_naive();
    let dataset = tests::generated_dataset(600, 11, today);
    let tenant = TenantId::parse("acme").expect("tenant");
    store.store.import(&tenant, &tests::import_batch("alerts-test", &dataset)).await.expect("import");
    let (_, cards) = tests::score_open(&dataset, today, engine::model::ModelKind::SegmentRates);
    let mut owned = cards.into_iter().filter(|c| c.owner.is_some());
    let card = owned.next().expect("an open deal with an owner");
    let other = owned.next().expect("a second open deal with an owner");
    let owner = card.owner.clone().expect("owner");
    let s = store.store.as_ref();
    s.upsert_user(&tenant, &user("maria", Role::Rep, Some(&owner), Some("omar"), "U100", "America/New_York"))
        .await
        .expect("user");
    s.upsert_user(&tenant, &user("omar", Role::Manager, None, None, "U200", "Europe/Berlin")).await.expect("user");
    s.upsert_user(&tenant, &user("admin", Role::Admin, None, None, "U300", "UTC")).await.expect("user");
    Fixture { store, tenant, card, other }
}

impl Fixture {
    fn update(&self, score: u8) -> ScoreUpdate {
        let mut card = self.card.clone();
        card.risk_score = score;
        card.risk_category = RiskCategory::from_score(score);
        bot::workflow::score_update(&card).expect("score update")
    }

    /// Saves the deal's new score at `at` the way `dealwatch score` does; returns alerts raised.
    async fn score(&self, score: u8, at: DateTime<Utc>) -> usize {
        self.save(self.update(score), at).await
    }

    /// Saves a score update at `at` with the alerts it raises; returns how many.
    async fn save(&self, update: ScoreUpdate, at: DateTime<Utc>) -> usize {
        let channels = ["slack".to_owned(), "log".to_owned()];
        bot::workflow::save_scores_alerting(self.store.store.as_ref(), &self.tenant, at, None, &[update], &channels)
            .await
            .expect("save scores")
            .alerts
    }

    async fn critical_alerts(&self) -> Vec<Alert> {
        let query = AlertQuery { kinds: vec![AlertKind::CriticalDeal], ..AlertQuery::default() };
        self.store.store.alerts(&self.tenant, &query).await.expect("alerts")
    }
}

fn utc(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).expect("RFC 3339").with_timezone(&Utc)
}

#[tokio::test]
async fn critical_alerts_fire_on_the_crossing_at_most_daily_and_again_only_when_worse() {
    for store in each_store().await {
        let b = store.store.backend();
        let f = fixture(store).await;
        // 15:00 UTC in June: 11:00 in New York, 17:00 in Berlin, outside the default quiet hours.
        let t0 = utc("2026-06-10T15:00:00Z");
        let hours = |h: i64| t0 + Duration::hours(h);
        // The first score of an established deal is a baseline, however high.
        let mut old_deal = f.update(90);
        old_deal.card["age_days"] = 200.into();
        assert_eq!(f.save(old_deal, t0 - Duration::days(1)).await, 0, "{b}: onboarding raises nothing");
        // A deal created three days ago that arrives critical is news.
        let mut young = f.other.clone();
        young.risk_score = 88;
        young.risk_category = RiskCategory::Critical;
        young.age_days = Some(3);
        let fresh = f.save(bot::workflow::score_update(&young).expect("update"), t0 - Duration::days(1)).await;
        assert!(fresh >= 1, "{b}: a new deal that starts critical is alerted");
        let young_alerts = f
            .store
            .store
            .alerts(&f.tenant, &AlertQuery { subject: Some(f.other.deal_id.clone()), ..AlertQuery::default() })
            .await
            .expect("alerts");
        assert_eq!(young_alerts.len(), fresh, "{b}");
        assert_eq!(f.score(60, t0).await, 0, "{b}: below the threshold");
        assert_eq!(f.score(82, hours(1)).await, 2, "{b}: 60 -> 82 crosses: the rep and her manager");
        assert_eq!(f.score(85, hours(2)).await, 0, "{b}: staying critical is not news");
        assert_eq!(f.score(70, hours(3)).await, 0);
        assert_eq!(f.score(80, hours(4)).await, 0, "{b}: crossing again within the day is throttled");
        assert_eq!(f.score(70, hours(30)).await, 0);
        assert_eq!(f.score(84, hours(31)).await, 0, "{b}: after a day, 84 is not materially worse than 82");
        assert_eq!(f.score(70, hours(32)).await, 0);
        assert_eq!(f.score(95, hours(33)).await, 2, "{b}: 95 is 13 points worse: alerted again");

        let alerts: Vec<_> = f.critical_alerts().await.into_iter().filter(|a| a.subject == f.card.deal_id).collect();
        assert_eq!(alerts.len(), 4, "{b}");
        let first = alerts.iter().filter(|a| a.score == Some(82)).collect::<Vec<_>>();
        assert_eq!(
            first.iter().map(|a| a.recipient.as_str()).collect::<std::collections::BTreeSet<_>>(),
            ["maria", "omar"].into()
        );
        for a in &first {
            assert_eq!((a.channel.as_str(), a.state, a.attempts), ("slack", AlertState::Pending, 0), "{b}");
            assert_eq!(a.payload["previous_score"], 60, "{b}");
            assert_eq!(a.payload["deal"]["risk_score"], 82, "{b}: the card as scored");
            assert_eq!(a.created_at, hours(1));
            assert_eq!(a.due_ms, hours(1).timestamp_millis(), "{b}: not in quiet hours: due at once");
        }
        // The score was stored with its alert.
        let stored = f.store.store.deal(&f.tenant, &f.card.deal_id).await.expect("read").expect("deal");
        assert_eq!(stored.score.map(|s| s.risk_score), Some(95), "{b}");
    }
}

#[tokio::test]
async fn quiet_hours_and_settings_shape_who_gets_what_and_when() {
    for store in each_store().await {
        let b = store.store.backend();
        let f = fixture(store).await;
        let s = f.store.store.as_ref();
        // Maria keeps quiet 09:00-17:00 New York time; Omar turned critical alerts off.
        let maria = serde_json::json!({ "quiet_hours": { "start": "09:00", "end": "17:00" } });
        s.save_alert_settings(&f.tenant, "maria", &maria, Utc::now()).await.expect("settings");
        let omar = serde_json::json!({ "critical_deals": { "enabled": false } });
        s.save_alert_settings(&f.tenant, "omar", &omar, Utc::now()).await.expect("settings");
        let t0 = utc("2026-06-10T15:00:00Z"); // 11:00 in New York (EDT)
        f.score(50, t0).await;
        assert_eq!(f.score(90, t0 + Duration::minutes(5)).await, 1, "{b}: Omar opted out");
        let alerts = f.critical_alerts().await;
        assert_eq!(alerts[0].recipient, "maria");
        assert_eq!(alerts[0].due_ms, utc("2026-06-10T21:00:00Z").timestamp_millis(), "{b}: held until 17:00 EDT");
    }
}

#[tokio::test]
async fn concurrent_senders_never_claim_the_same_alert_and_a_lapsed_lease_passes_on() {
    for store in each_store().await {
        let b = store.store.backend();
        let f = fixture(store).await;
        let s = f.store.store.clone();
        let now = Utc::now();
        let alerts = test_alerts("test", "maria", "log", 12, now, &serde_json::json!({}));
        assert_eq!(s.raise_alerts(&f.tenant, &alerts).await.expect("raise"), 12);
        assert_eq!(s.raise_alerts(&f.tenant, &alerts[..3]).await.expect("raise again"), 0, "{b}: dedup keys");
        let at = now.timestamp_millis();
        let (a, c) = tokio::join!(s.claim_alerts(&f.tenant, at, 60_000, 8), s.claim_alerts(&f.tenant, at, 60_000, 8));
        let (a, c) = (a.expect("claim"), c.expect("claim"));
        let mut ids: Vec<&str> = a.iter().chain(&c).map(|x| x.alert_id.as_str()).collect();
        ids.sort_unstable();
        let claimed = ids.len();
        ids.dedup();
        assert_eq!(ids.len(), claimed, "{b}: a row claimed twice");
        assert_eq!(claimed, 12, "{b}: between them every due alert, none twice");
        assert!(a.iter().chain(&c).all(|x| x.state == AlertState::Sending && x.attempts == 1));
        // Nothing more is claimable until the leases lapse.
        assert!(s.claim_alerts(&f.tenant, at + 59_000, 60_000, 50).await.expect("claim").is_empty(), "{b}");
        let taken = s.claim_alerts(&f.tenant, at + 60_000, 60_000, 1).await.expect("take over");
        assert_eq!((taken.len(), taken[0].attempts), (1, 2), "{b}: taken over after the lease");
        let outcome = bot::alerts::Outcome::Sent { at: now, external_id: None };
        let id = &taken[0].alert_id;
        assert!(!s.finish_alert(&f.tenant, id, 1, &outcome).await.expect("finish"), "{b}: the first sender lost it");
        assert!(s.finish_alert(&f.tenant, id, 2, &outcome).await.expect("finish"), "{b}");
        let sent = s
            .alerts(&f.tenant, &AlertQuery { states: vec![AlertState::Sent], ..AlertQuery::default() })
            .await
            .expect("alerts");
        assert_eq!(sent.len(), 1, "{b}");
    }
}

fn sender(store: Arc<dyn Store>, slack: &FakeSlack, log: &std::path::Path) -> Sender {
    let channels: Vec<Arc<dyn Channel>> = vec![
        Arc::new(SlackChannel::new(&slack.api_url, &SecretString::from(TOKEN.to_owned())).expect("slack channel")),
        Arc::new(LogChannel::new(log.to_path_buf()).expect("log channel")),
    ];
    let config = SenderConfig {
        max_attempts: 3,
        backoff: std::time::Duration::from_secs(30),
        lease: std::time::Duration::from_secs(60),
        batch: 50,
        fallback: Some("log".into()),
    };
    Sender::new(store, channels, Arc::new(Templates::load(None, None).expect("templates")), config)
}

/// Raises `n` critical alerts for Maria on Slack, created now.
async fn raise(f: &Fixture, n: usize, now: DateTime<Utc>) -> Vec<String> {
    let mut card = serde_json::to_value(&f.card).expect("card");
    card["risk_score"] = 88.into();
    let payload = serde_json::json!({ "deal": card, "previous_score": 60, "threshold": 75 });
    let alerts = test_alerts(&f.card.deal_id, "maria", "slack", n, now, &payload);
    f.store.store.raise_alerts(&f.tenant, &alerts).await.expect("raise");
    alerts.into_iter().map(|a| a.alert_id).collect()
}

#[tokio::test]
async fn slack_gets_every_alert_exactly_once_through_500s_and_429s() {
    for store in each_store().await {
        let b = store.store.backend();
        let f = fixture(store).await;
        let slack = FakeSlack::start(TOKEN).await;
        let dir = tests::scratch();
        let log = dir.path().join("alerts.jsonl");
        let sender = sender(f.store.store.clone(), &slack, &log);
        let now = Utc::now();
        let ids = raise(&f, 3, now).await;
        // First: posted but answered 500; second: rate limited for 45 s; third: fine.
        slack.script(&[Fault::ServerErrorAfterPost, Fault::RateLimited(45), Fault::None]);
        let r = sender.deliver_due(now).await.expect("pass 1");
        assert_eq!(r, Report { sent: 1, failed: 2, ..Report::default() }, "{b}");
        assert_eq!(slack.posted().len(), 2, "{b}: the 500 hid a posted message");
        let r = sender.deliver_due(now + Duration::seconds(31)).await.expect("pass 2");
        assert_eq!(
            r,
            Report { recovered: 1, ..Report::default() },
            "{b}: the first is found, not re-sent; the 429 waits 45 s"
        );
        let r = sender.deliver_due(now + Duration::seconds(46)).await.expect("pass 3");
        assert_eq!(r, Report { sent: 1, ..Report::default() }, "{b}");
        let posted = slack.posted();
        let mut delivered: Vec<&str> = posted.iter().filter_map(|p| p.alert_id()).collect();
        delivered.sort_unstable();
        let mut expected: Vec<&str> = ids.iter().map(String::as_str).collect();
        expected.sort_unstable();
        assert_eq!(delivered, expected, "{b}: each alert exactly once");
        assert!(posted.iter().all(|p| p.channel == "D100" && p.blocks.is_some()), "{b}: DMs with Block Kit");
        let sent = f.store.store.alerts(&f.tenant, &AlertQuery::default()).await.expect("alerts");
        assert!(
            sent.iter().all(
                |a| a.state == AlertState::Sent && a.external_id.as_deref().is_some_and(|e| e.starts_with("D100:"))
            ),
            "{b}: {sent:?}"
        );
        assert!(sender.deliver_due(now + Duration::hours(1)).await.expect("idle") == Report::default());
    }
}

#[tokio::test]
async fn three_failures_escalate_to_the_fallback_channel_with_backoff() {
    for store in each_store().await {
        let b = store.store.backend();
        let f = fixture(store).await;
        let slack = FakeSlack::start(TOKEN).await;
        slack.default_fault(Fault::ServerError);
        let dir = tests::scratch();
        let log = dir.path().join("alerts.jsonl");
        let sender = sender(f.store.store.clone(), &slack, &log);
        let now = Utc::now();
        let id = raise(&f, 1, now).await.remove(0);
        let at = |s: i64| now + Duration::seconds(s);
        assert_eq!(sender.deliver_due(at(0)).await.expect("1").failed, 1);
        assert_eq!(sender.deliver_due(at(29)).await.expect("too early"), Report::default(), "{b}: backoff 30 s");
        assert_eq!(sender.deliver_due(at(30)).await.expect("2").failed, 1);
        assert_eq!(sender.deliver_due(at(89)).await.expect("too early"), Report::default(), "{b}: then 60 s");
        let r = sender.deliver_due(at(90)).await.expect("3");
        assert_eq!((r.escalated, r.sent), (1, 1), "{b}: escalated, and the fallback delivered in the same pass");
        let all = f.store.store.alerts(&f.tenant, &AlertQuery::default()).await.expect("alerts");
        let original = all.iter().find(|a| a.alert_id == id).expect("original");
        assert_eq!((original.state, original.attempts), (AlertState::Escalated, 3), "{b}");
        assert!(original.last_error.as_deref().is_some_and(|e| e.contains("500")), "{:?}", original.last_error);
        let fallback = all.iter().find(|a| a.escalated_from.as_deref() == Some(id.as_str())).expect("fallback");
        assert_eq!((fallback.channel.as_str(), fallback.state), ("log", AlertState::Sent), "{b}");
        let lines = std::fs::read_to_string(&log).expect("log file");
        assert_eq!(lines.lines().count(), 1, "{b}");
        assert!(lines.contains(&fallback.alert_id) && lines.contains("URGENT: High-risk deal"), "{lines}");
        assert_eq!(slack.posted().len(), 0);
    }
}

#[tokio::test]
async fn a_revoked_token_is_not_retried_but_escalated_at_once() {
    for store in each_store().await {
        let f = fixture(store).await;
        let slack = FakeSlack::start("xoxb-another-token").await;
        let dir = tests::scratch();
        let sender = sender(f.store.store.clone(), &slack, &dir.path().join("alerts.jsonl"));
        let now = Utc::now();
        raise(&f, 1, now).await;
        let r = sender.deliver_due(now).await.expect("pass");
        assert_eq!((r.failed, r.escalated, r.sent), (0, 1, 1), "invalid_auth is permanent; the log takes it");
        let all = f.store.store.alerts(&f.tenant, &AlertQuery::default()).await.expect("alerts");
        assert!(all.iter().any(|a| a.last_error.as_deref() == Some("Slack error invalid_auth")), "{all:?}");
    }
}

#[tokio::test]
async fn alerts_survive_a_killed_server_and_reach_a_flaky_slack_exactly_once() {
    for store in each_store().await {
        let b = store.store.backend();
        let f = fixture(store).await;
        let slack = FakeSlack::start(TOKEN).await;
        // Slow (120 ms a message), and of the calls not slowed: 10% answered 500 after posting,
        // 10% answered 500, 10% rate limited. Seeded, so every run sees the same weather.
        slack.chaos(7, 100, 120);
        let n = 30;
        let ids = raise(&f, n, Utc::now()).await;
        let dir = tests::scratch();
        let server = |f: &Fixture| {
            let mut cmd = crate::service_cli::cli(&f.store);
            cmd.env("DEALWATCH_DATA_DIR", dir.path())
                .env("DEALWATCH_SLACK__BOT_TOKEN", TOKEN)
                .env("DEALWATCH_SLACK__API_URL", &slack.api_url)
                .env("DEALWATCH_ALERTS__POLL_SECONDS", "1")
                .env("DEALWATCH_ALERTS__BACKOFF_SECONDS", "1")
                .env("DEALWATCH_ALERTS__LEASE_SECONDS", "2")
                .env("DEALWATCH_ALERTS__MAX_ATTEMPTS", "8");
            crate::service_cli::spawn_server(&mut cmd).0
        };
        let mut first = server(&f);
        let started = std::time::Instant::now();
        while slack.posted().len() < n / 3 {
            assert!(started.elapsed() < std::time::Duration::from_secs(60), "{b}: delivery started");
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        first.kill().expect("SIGKILL");
        let _ = first.wait();
        let at_kill = slack.posted().len();
        assert!(at_kill < n, "{b}: killed mid-delivery");
        let leased = AlertQuery { states: vec![AlertState::Sending], ..AlertQuery::default() };
        let orphaned = f.store.store.alerts(&f.tenant, &leased).await.expect("alerts").len();
        assert!(orphaned > 0, "{b}: the kill left claimed alerts for the next server to take over");

        let mut second = server(&f);
        let sent = AlertQuery { states: vec![AlertState::Sent], ..AlertQuery::default() };
        let started = std::time::Instant::now();
        loop {
            let done = f.store.store.alerts(&f.tenant, &sent).await.expect("alerts").len();
            if done == n {
                break;
            }
            assert!(started.elapsed() < std::time::Duration::from_secs(120), "{b}: only {done} of {n} sent");
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        second.kill().expect("stop");
        let _ = second.wait();

        let posted = slack.posted();
        let mut delivered: Vec<&str> = posted.iter().filter_map(|p| p.alert_id()).collect();
        delivered.sort_unstable();
        let mut expected: Vec<&str> = ids.iter().map(String::as_str).collect();
        expected.sort_unstable();
        assert_eq!(delivered, expected, "{b}: every alert delivered exactly once (posted {} messages)", posted.len());
        let calls = slack.calls();
        let faults = calls.iter().filter(|c| c.as_str() == "conversations.history").count();
        assert!(faults > 0, "{b}: some deliveries were retried and checked first: {calls:?}");
        eprintln!(
            "{b}: {n} alerts, {at_kill} posted before the kill, {orphaned} left claimed, {} chat.postMessage calls, {faults} look-ups before a retry",
            calls.iter().filter(|c| c.as_str() == "chat.postMessage").count()
        );
    }
}

/// Counts runs per job; fails a job's first run when asked.
struct Counting {
    runs: std::sync::Mutex<Vec<(String, bot::jobs::Job, DateTime<Utc>)>>,
    fail_first: Option<bot::jobs::Job>,
}

#[async_trait::async_trait]
impl bot::jobs::JobWork for Counting {
    async fn run(
        &self,
        tenant: &TenantId,
        job: bot::jobs::Job,
        due: DateTime<Utc>,
        _now: DateTime<Utc>,
    ) -> anyhow::Result<serde_json::Value> {
        let first = {
            let mut runs = self.runs.lock().expect("lock");
            runs.push((tenant.to_string(), job, due));
            runs.iter().filter(|r| r.1 == job).count() == 1
        };
        // Long enough for a concurrent scheduler to try the same run.
        tokio::time::sleep(std::time::Duration::from_millis(30)).await;
        if first && self.fail_first == Some(job) {
            anyhow::bail!("the CRM did not answer");
        }
        Ok(serde_json::json!({ "ok": true }))
    }
}

#[tokio::test]
async fn each_scheduled_run_happens_once_however_many_schedulers_see_it() {
    use bot::jobs::{Job, Scheduler};
    for store in each_store().await {
        let b = store.store.backend();
        let f = fixture(store).await;
        let work = Arc::new(Counting { runs: Default::default(), fail_first: Some(Job::NightlyScore) });
        let one = Scheduler::new(f.store.store.clone(), work.clone());
        let two = Scheduler::new(f.store.store.clone(), work.clone());
        // 02:05 on the 2nd: the nightly run (02:00) and the 02:00 digest pass are due; the
        // insight scan's last time (04:00 yesterday) is 22 hours old, past its catch-up; the
        // retrain (the 1st, 03:00) is 23 hours late and still caught up; the Salesforce passes
        // (full at 01:30, incremental at 02:05) are due too.
        let t = utc("2026-06-02T02:05:00Z");
        let (a, c) = tokio::join!(one.run_due(t), two.run_due(t));
        let ran: Vec<_> = a.expect("one").into_iter().chain(c.expect("two")).collect();
        let mut jobs: Vec<&str> = ran.iter().map(|r| r.job.as_str()).collect();
        jobs.sort_unstable();
        assert_eq!(
            jobs,
            ["daily_digest", "monthly_retrain", "nightly_score", "salesforce_full_sync", "salesforce_sync"],
            "{b}: each once, the failed one not retried by the other scheduler at once: {ran:?}"
        );
        assert!(!ran.iter().find(|r| r.job == "nightly_score").expect("nightly").ok, "{b}: its first attempt failed");
        // The next pass retries the failed run, and only it.
        let again = one.run_due(t + Duration::minutes(1)).await.expect("again");
        assert_eq!(again.iter().map(|r| (r.job.as_str(), r.ok)).collect::<Vec<_>>(), [("nightly_score", true)], "{b}");
        assert!(two.run_due(t + Duration::minutes(2)).await.expect("idle").is_empty(), "{b}: nothing twice");
        // The next night runs again.
        let next = one.run_due(t + Duration::days(1)).await.expect("next night");
        assert!(next.iter().any(|r| r.job == "nightly_score" && r.ok), "{b}");
        let runs = work.runs.lock().expect("lock").len();
        assert_eq!(runs, 5 + 1 + next.len(), "{b}: no run executed without being recorded");
        let listed = f.store.store.job_runs(&f.tenant, 20).await.expect("runs");
        assert!(listed.iter().all(|r| r.state == "done"), "{b}: {listed:?}");
    }
}

#[tokio::test]
async fn the_daily_digest_comes_at_eight_local_time_with_the_findings_that_waited_for_it() {
    use bot::alerts::routing::Routing;
    for store in each_store().await {
        let b = store.store.backend();
        let f = fixture(store).await;
        let s = f.store.store.clone();
        // One of Maria's deals is high risk (stored score 68).
        s.save_scores(&f.tenant, Utc::now(), None, &[f.update(68)]).await.expect("score");
        // A P2 finding about Maria waits for Omar's digest.
        let channels = ["slack".to_owned(), "log".to_owned()];
        let routing = Routing::load(s.as_ref(), &f.tenant, &channels).await.expect("routing");
        let owner = f.card.owner.clone().expect("owner");
        let finding = engine::alerts::InsightAlert {
            kind: AlertKind::RepPerformance,
            subject: owner.clone(),
            rep: Some(owner.clone()),
            facts: serde_json::json!({ "rep": owner, "risk_flag": true, "avg_risk": 70.0, "team_avg_risk": 45.0 }),
        };
        let t = utc("2026-06-10T05:00:00Z"); // 07:00 in Berlin, 01:00 in New York
        let planned = bot::alerts::digest::plan_insights(&[finding], &routing, t);
        assert_eq!(
            planned.iter().map(|a| (a.recipient.as_str(), a.channel.as_str())).collect::<Vec<_>>(),
            [("omar", "digest")]
        );
        s.raise_alerts(&f.tenant, &planned).await.expect("raise");
        let work = service_jobs(&s, &channels);
        use bot::jobs::JobWork;
        let digest = |at: DateTime<Utc>| work.run(&f.tenant, bot::jobs::Job::DailyDigest, at, at);
        assert_eq!(digest(t).await.expect("07:00")["digests"], 0, "{b}: not yet 08:00 anywhere relevant");
        assert_eq!(digest(utc("2026-06-10T06:05:00Z")).await.expect("08:05 Berlin")["digests"], 1, "{b}: Omar's");
        assert_eq!(digest(utc("2026-06-10T06:20:00Z")).await.expect("again")["digests"], 0, "{b}: once a day");
        assert_eq!(digest(utc("2026-06-10T08:10:00Z")).await.expect("08:10 UTC")["digests"], 1, "{b}: the admin's");
        let query = AlertQuery { kinds: vec![AlertKind::DailyDigest], ..AlertQuery::default() };
        let digests = s.alerts(&f.tenant, &query).await.expect("digests");
        let omar = digests.iter().find(|d| d.recipient == "omar").expect("Omar's digest");
        assert_eq!(omar.channel, "slack", "{b}: no email here, so the first channel that reaches him");
        assert_eq!(
            omar.payload["deals"][0]["deal_id"],
            serde_json::json!(f.card.deal_id),
            "{b}: his team's high-risk deal"
        );
        assert_eq!(omar.payload["alerts"][0]["kind"], "rep_performance", "{b}");
        let admin = digests.iter().find(|d| d.recipient == "admin").expect("admin's digest");
        assert_eq!(admin.payload["alerts"].as_array().map(Vec::len), Some(0), "{b}: the finding was Omar's");
        assert!(!digests.iter().any(|d| d.recipient == "maria"), "{b}: reps get no digest unless they ask");
        let waited = s
            .alerts(&f.tenant, &AlertQuery { kinds: vec![AlertKind::RepPerformance], ..AlertQuery::default() })
            .await
            .expect("p2");
        assert_eq!(
            (waited[0].state, waited[0].external_id.as_deref()),
            (AlertState::Sent, Some(omar.alert_id.as_str())),
            "{b}"
        );
        // The digest renders in every format.
        let templates = Templates::load(None, None).expect("templates");
        let message = templates.render(omar).expect("render the digest");
        assert!(
            message.text.contains(&f.card.deal_id) && message.text.contains("average deal risk 70 vs team 45"),
            "{}",
            message.text
        );
    }
}

#[tokio::test]
async fn jobs_run_due_runs_the_nightly_scoring_once_from_the_command_line() {
    let store = tests::sqlite_store().await;
    let dir = tests::scratch();
    let csv = dir.path().join("deals.csv").to_string_lossy().into_owned();
    tests::run_ok(&["generate", "--deals", "1500", "--seed", "5", "--out", &csv]);
    let run = |args: &[&str]| {
        let mut cmd = crate::service_cli::cli(&store);
        cmd.env("DEALWATCH_DATA_DIR", dir.path()).args(args);
        let out = cmd.output().expect("run");
        assert!(out.status.success(), "{args:?}: {}", tests::text(&out.stderr));
        tests::text(&out.stdout)
    };
    run(&["import", "--tenant", "acme", "--input", &csv]);
    run(&["train", "--tenant", "acme"]);
    let at = format!("{}T02:10:00Z", Utc::now().date_naive());
    let first: serde_json::Value =
        serde_json::from_str(&run(&["jobs", "run-due", "--as-of", &at, "--format", "json"])).expect("json");
    let nightly = first.as_array().expect("runs").iter().find(|r| r["job"] == "nightly_score").expect("nightly ran");
    assert_eq!(nightly["ok"], true, "{nightly}");
    assert!(nightly["result"]["scored"].as_u64().is_some_and(|n| n > 100), "{nightly}");
    let second = run(&["jobs", "run-due", "--as-of", &at]);
    assert!(second.contains("nothing due"), "a second process does not repeat it: {second}");
    let listed = run(&["jobs", "list", "--tenant", "acme"]);
    assert!(listed.contains("nightly_score") && listed.contains("done"), "{listed}");
    let schedule = run(&["jobs", "schedule"]);
    assert!(schedule.contains("0 0 2 * * * *"), "{schedule}");
}

#[tokio::test]
async fn feedback_snoozes_demotes_and_tunes_and_an_admin_can_see_and_undo_it() {
    for store in each_store().await {
        let b = store.store.backend();
        let f = fixture(store).await;
        let server = tests::TestServer::start(f.store.sharing(), |_| {}).await;
        let s = f.store.store.clone();
        let maria = tests::token("acme", "maria", Role::Rep, 600);
        let omar = tests::token("acme", "omar", Role::Manager, 600);
        let admin = tests::token("acme", "admin", Role::Admin, 600);
        // Day 0: the deal turns critical; Maria and Omar are alerted.
        let t0 = Utc::now() - Duration::days(10);
        f.score(60, t0).await;
        assert_eq!(f.score(82, t0 + Duration::hours(1)).await, 2);
        let (status, mine) = server.get("/v1/alerts", &maria).await;
        assert_eq!(status, 200, "{b}: {mine}");
        let alert_id = mine["alerts"][0]["alert_id"].as_str().expect("Maria's alert").to_owned();
        // Maria snoozes it for a week; the same click arriving twice is one snooze.
        let path = format!("/v1/alerts/{alert_id}/feedback");
        let snooze = serde_json::json!({ "action": "snooze", "snooze": "1w" });
        let (status, first) = server.post(&path, &maria, &snooze).await;
        assert_eq!((status, first["recorded"].clone()), (200, true.into()), "{b}: {first}");
        assert!(first["snoozed_until"].is_string());
        let (_, again) = server.post(&path, &maria, &snooze).await;
        assert_eq!(again["recorded"], false, "{b}: a retried click changes nothing");
        // Omar may not touch Maria's alert: it does not exist for him.
        let (status, _) = server.post(&path, &omar, &serde_json::json!({ "action": "useful" })).await;
        assert_eq!(status, 404, "{b}");
        let (status, bad) = server.post(&path, &maria, &serde_json::json!({ "action": "ignore" })).await;
        assert_eq!((status, bad["details"]["field"].as_str()), (422, Some("action")), "{b}: {bad}");
        // Two days later the deal dips and comes back 13 points worse: Omar is alerted, Maria
        // is snoozed.
        f.score(70, t0 + Duration::days(2)).await;
        assert_eq!(f.score(95, t0 + Duration::days(2) + Duration::hours(1)).await, 1, "{b}: only Omar");
        let latest = f.critical_alerts().await;
        assert_eq!(latest[0].recipient, "omar", "{b}");

        // Omar marks his alerts false alarms: one for now, then four more alerts of other deals.
        let mut ids = vec![latest[0].alert_id.clone()];
        ids.extend(raise_for(&f, "omar", 4, t0).await);
        for (i, id) in ids.iter().enumerate() {
            let body = serde_json::json!({ "action": "false_alarm", "reason": format!("deal {i} is fine: the customer signed") });
            let (status, r) = server.post(&format!("/v1/alerts/{id}/feedback"), &omar, &body).await;
            assert_eq!(status, 200, "{b}: {r}");
            if i == 4 {
                assert_eq!(r["tuning"]["threshold"], 85, "{b}: five of five dismissed: 75 -> 85: {r}");
            }
        }
        let (status, tuning) = server.get("/v1/alerts/tuning", &admin).await;
        assert_eq!((status, tuning["tunings"][0]["threshold"].as_u64()), (200, Some(85)), "{b}: {tuning}");
        assert!(tuning["tunings"][0]["reason"].as_str().is_some_and(|r| r.contains("5 of the last 5")), "{tuning}");
        assert_eq!(server.get("/v1/alerts/tuning", &maria).await.0, 403, "{b}: admins only");
        let log = s.audit_log(&f.tenant, 50).await.expect("audit");
        assert!(log.iter().any(|e| e.action == "alerts.tuning" && e.actor == "omar"), "{b}: the change is logged");
        // Three dismissals in a row demote critical alerts to Omar's digest; at 85, an 84 no
        // longer crosses for anyone.
        let later = t0 + Duration::days(5);
        f.score(60, later).await;
        assert_eq!(f.score(84, later + Duration::hours(1)).await, 0, "{b}: 84 is under the tuned 85");
        let channels = ["slack".to_owned(), "log".to_owned()];
        let routing = bot::alerts::routing::Routing::load(s.as_ref(), &f.tenant, &channels).await.expect("routing");
        assert_eq!(routing.critical_threshold("maria"), 85, "{b}: the tenant's tuned threshold applies to everyone");
        let omar_user = routing.user("omar").expect("omar").clone();
        assert_eq!(
            routing.immediate(&omar_user, AlertKind::CriticalDeal, later),
            (vec!["digest".to_owned()], i64::MAX),
            "{b}: demoted"
        );
        let maria_user = routing.user("maria").expect("maria").clone();
        assert_eq!(routing.immediate(&maria_user, AlertKind::CriticalDeal, later).0, ["slack"], "{b}: Maria was not");
        // The admin pins 80, then resets to the default.
        let (status, pinned) = server
            .post("/v1/alerts/tuning", &admin, &serde_json::json!({ "kind": "critical_deal", "threshold": 80 }))
            .await;
        assert_eq!((status, pinned["tunings"][0]["source"].as_str()), (200, Some("admin")), "{b}: {pinned}");
        let (status, reset) = server
            .post("/v1/alerts/tuning", &admin, &serde_json::json!({ "kind": "critical_deal", "reset": true }))
            .await;
        assert_eq!((status, reset["tunings"].as_array().map(Vec::len)), (200, Some(0)), "{b}: {reset}");
        let (status, bad) = server
            .post("/v1/alerts/tuning", &admin, &serde_json::json!({ "kind": "critical_deal", "threshold": 20 }))
            .await;
        assert_eq!((status, bad["details"]["field"].as_str()), (422, Some("threshold")), "{b}");
        // Effectiveness: managers and admins; the counts are the tenant's.
        let (status, e) = server.get("/v1/alerts/effectiveness", &omar).await;
        assert_eq!(status, 200, "{b}: {e}");
        assert_eq!(e["feedback"]["critical_deal"]["false_alarm"], 5, "{b}: {e}");
        assert_eq!(e["feedback"]["critical_deal"]["snooze"], 1, "{b}");
        assert_eq!(server.get("/v1/alerts/effectiveness", &maria).await.0, 403, "{b}");
    }
}

/// Raises `n` critical alerts for `recipient` about other (made-up) deals.
async fn raise_for(f: &Fixture, recipient: &str, n: usize, at: DateTime<Utc>) -> Vec<String> {
    let alerts = test_alerts("OTHER", recipient, "log", n, at, &serde_json::json!({}));
    f.store.store.raise_alerts(&f.tenant, &alerts).await.expect("raise");
    alerts.into_iter().map(|a| a.alert_id).collect()
}

#[tokio::test]
async fn email_alerts_go_out_over_smtp_as_html_and_text_and_smtp_refusals_are_sorted() {
    use bot::alerts::channels::{EmailChannel, SendError};
    let smtp = tests::fake_smtp::FakeSmtp::start().await;
    let channel = EmailChannel::new(&SecretString::from(smtp.url.clone()), "Dealwatch <alerts@acme.test>", None)
        .expect("email channel");
    let templates = Templates::load(None, None).expect("templates");
    let alert = bot::alerts::templates::sample(AlertKind::CriticalDeal);
    let message = templates.render(&alert).expect("render");
    let maria_user = user("maria", Role::Rep, Some("rep_15"), None, "U100", "UTC");
    let maria = Address::from(&maria_user);
    let sent = channel.send(&maria, &alert, &message).await.expect("sent");
    assert_eq!(sent.external_id.as_deref(), Some("<0190f0e2-0000-7000-8000-000000000000@dealwatch>"));
    let mails = smtp.mails();
    assert_eq!(mails.len(), 1);
    let mail = &mails[0];
    assert_eq!((mail.from.as_str(), mail.to.as_slice()), ("alerts@acme.test", &["maria@acme.test".to_owned()][..]));
    for needle in [
        "Message-ID: <0190f0e2-0000-7000-8000-000000000000@dealwatch>",
        "Subject: URGENT: High-risk deal",
        "multipart/alternative",
        "text/plain",
        "text/html",
    ] {
        assert!(mail.data.contains(needle), "the mail lacks {needle:?}:\n{}", mail.data);
    }
    // A 4xx is worth retrying; a 5xx is not; a user without an address is not.
    smtp.refuse(Some("451 4.3.0 mailbox busy, try again later"));
    assert!(matches!(channel.send(&maria, &alert, &message).await, Err(SendError::Transient { .. })));
    smtp.refuse(Some("550 5.1.1 no such user"));
    assert!(matches!(channel.send(&maria, &alert, &message).await, Err(SendError::Permanent(_))));
    let nobody = Address::from(&User { email: None, ..maria_user.clone() });
    assert!(matches!(channel.send(&nobody, &alert, &message).await, Err(SendError::Permanent(_))));
    assert_eq!(smtp.mails().len(), 1, "nothing more was delivered");
}

/// Email through a submission server: STARTTLS (port 587's way) and TLS from the first byte
/// (465's), the server's certificate checked against the CA of `[email] ca_file`, the login
/// sent over TLS only. A wrong password is a permanent failure that does not show the password;
/// an untrusted certificate or a server without STARTTLS gets nothing; a password in clear to
/// another machine is refused when the channel is made.
#[tokio::test]
async fn email_goes_over_tls_with_a_login_and_nothing_goes_out_unprotected() {
    use bot::alerts::channels::{EmailChannel, SendError};
    use tests::fake_smtp::{FakeSmtp, Security};
    const FROM: &str = "Dealwatch <alerts@acme.test>";
    const PASSWORD: &str = "s3cret pass/word";
    let templates = Templates::load(None, None).expect("templates");
    let alert = bot::alerts::templates::sample(AlertKind::CriticalDeal);
    let message = templates.render(&alert).expect("render");
    let maria = Address::from(&user("maria", Role::Rep, Some("rep_15"), None, "U100", "UTC"));
    let dir = tempfile::tempdir().expect("scratch");
    for security in [Security::StartTls, Security::Implicit] {
        let smtp = FakeSmtp::start_secure(security, Some(("dealwatch", PASSWORD))).await;
        let ca = dir.path().join(format!("{security:?}-ca.pem"));
        std::fs::write(&ca, smtp.ca_pem.as_deref().expect("a CA")).expect("write the CA");
        let url = SecretString::from(smtp.url_with_login("dealwatch", PASSWORD));
        let channel = EmailChannel::new(&url, FROM, Some(&ca)).expect("email channel");
        channel.send(&maria, &alert, &message).await.expect("sent over TLS");
        let mails = smtp.mails();
        assert_eq!(mails.len(), 1, "{security:?}");
        assert!(mails[0].secure, "{security:?}: over TLS");
        assert_eq!(mails[0].user.as_deref(), Some("dealwatch"), "{security:?}: signed in");
        assert_eq!(mails[0].to, ["maria@acme.test"], "{security:?}");
        // A wrong password: refused by the server (535), not worth retrying, and not shown.
        let wrong = SecretString::from(smtp.url_with_login("dealwatch", "a-wrong-guess"));
        let channel = EmailChannel::new(&wrong, FROM, Some(&ca)).expect("email channel");
        match channel.send(&maria, &alert, &message).await {
            Err(SendError::Permanent(e)) => assert!(!e.contains("a-wrong-guess"), "{security:?}: {e}"),
            other => panic!("{security:?}: a wrong password is permanent: {other:?}"),
        }
        assert_eq!(smtp.refused_logins(), 1, "{security:?}");
        // No login at all: the server wants one before MAIL (530).
        let anonymous = SecretString::from(smtp.url.clone());
        let channel = EmailChannel::new(&anonymous, FROM, Some(&ca)).expect("email channel");
        let e = channel.send(&maria, &alert, &message).await.expect_err("a login is required");
        assert!(matches!(e, SendError::Permanent(_)), "{security:?}: {e:?}");
        // The public roots only: the run's CA is not among them, so nothing is sent.
        let channel = EmailChannel::new(&url, FROM, None).expect("email channel");
        let e = channel.send(&maria, &alert, &message).await.expect_err("an unknown CA");
        assert!(!format!("{e:?}").contains(PASSWORD), "{security:?}: {e:?}");
        assert_eq!(smtp.mails().len(), 1, "{security:?}: nothing more was delivered");
    }
    // TLS required of a server that does not offer STARTTLS: nothing goes out in clear.
    let plain = FakeSmtp::start().await;
    let required = SecretString::from(format!("{}?tls=required", plain.url));
    let channel = EmailChannel::new(&required, FROM, None).expect("email channel");
    channel.send(&maria, &alert, &message).await.expect_err("no STARTTLS, no mail");
    assert!(plain.mails().is_empty(), "nothing was sent in clear");
    // Refused when the channel is made: a password in clear to another machine; a CA for a URL
    // without TLS; a CA file that holds no certificate. A relay on this machine may take one.
    let refused = |url: &str, ca: Option<&std::path::Path>| {
        let e = EmailChannel::new(&SecretString::from(url.to_owned()), FROM, ca).expect_err(url);
        let text = format!("{e:#}");
        assert!(!text.contains(PASSWORD), "{text}");
        text
    };
    let clear = refused(&format!("smtp://dealwatch:{}@smtp.example.com:25", "s3cret%20pass"), None);
    assert!(clear.contains("without TLS") && clear.contains("smtp.example.com"), "{clear}");
    let ca = dir.path().join("StartTls-ca.pem");
    assert!(refused("smtp://smtp.example.com:25", Some(&ca)).contains("does not use TLS"));
    let not_pem = dir.path().join("not-a-certificate.pem");
    std::fs::write(&not_pem, "hello").expect("write");
    let text = refused("smtps://smtp.example.com:465", Some(&not_pem));
    assert!(text.contains("not-a-certificate.pem") && text.contains("no PEM certificate"), "{text}");
    EmailChannel::new(&SecretString::from("smtp://relay:pw@127.0.0.1:25".to_owned()), FROM, None)
        .expect("a local relay may take a password without TLS");
}

/// `n` critical-deal alerts for `recipient` on `channel`, about subjects `prefix-0`, `prefix-1`, …
fn test_alerts(
    prefix: &str,
    recipient: &str,
    channel: &str,
    n: usize,
    at: DateTime<Utc>,
    payload: &serde_json::Value,
) -> Vec<Alert> {
    (0..n)
        .map(|i| Alert {
            alert_id: Alert::new_id(),
            kind: AlertKind::CriticalDeal,
            priority: AlertKind::CriticalDeal.priority(),
            subject: format!("{prefix}-{i}"),
            recipient: recipient.into(),
            channel: channel.into(),
            dedup_key: format!("test:{prefix}:{recipient}:{i}"),
            payload: payload.clone(),
            score: Some(88),
            created_at: at,
            due_ms: at.timestamp_millis(),
            escalated_from: None,
            state: AlertState::Pending,
            attempts: 0,
            sent_at: None,
            last_error: None,
            external_id: None,
        })
        .collect()
}

#[tokio::test]
async fn the_weekly_summary_reaches_leaders_on_monday_at_eight_with_its_chart() {
    use bot::jobs::JobWork;
    for store in each_store().await {
        let b = store.store.backend();
        let f = fixture(store).await;
        let s = f.store.store.clone();
        let channels = ["slack".to_owned(), "log".to_owned()];
        let work = service_jobs(&s, &channels);
        let weekly = |at: DateTime<Utc>| work.run(&f.tenant, bot::jobs::Job::WeeklySummary, at, at);
        // Monday 2026-06-08: 08:05 UTC is the admin's 08:05 and Omar's 10:05 in Berlin.
        assert_eq!(weekly(utc("2026-06-08T05:00:00Z")).await.expect("early")["summaries"], 0, "{b}");
        assert_eq!(weekly(utc("2026-06-08T08:05:00Z")).await.expect("08:05")["summaries"], 1, "{b}: the admin's");
        assert_eq!(weekly(utc("2026-06-08T08:35:00Z")).await.expect("again")["summaries"], 0, "{b}: once a week");
        assert_eq!(weekly(utc("2026-06-09T08:05:00Z")).await.expect("Tuesday")["summaries"], 0, "{b}: Mondays only");
        let query = AlertQuery { kinds: vec![AlertKind::WeeklySummary], ..AlertQuery::default() };
        let summaries = s.alerts(&f.tenant, &query).await.expect("summaries");
        assert_eq!(summaries.iter().map(|a| a.recipient.as_str()).collect::<Vec<_>>(), ["admin"], "{b}");
        let summary = &summaries[0];
        assert_eq!((summary.priority, summary.subject.as_str()), (engine::alerts::Priority::P3, "2026-W24"), "{b}");
        let series = summary.payload["series"].as_array().expect("series");
        assert_eq!(series[0]["label"], "all deals");
        assert_eq!(series[0]["points"].as_array().map(Vec::len), Some(6), "{b}: six quarters");
        // By email, with the chart attached.
        let smtp = tests::fake_smtp::FakeSmtp::start().await;
        let email =
            bot::alerts::channels::EmailChannel::new(&SecretString::from(smtp.url.clone()), "alerts@acme.test", None)
                .expect("email");
        let message = Templates::load(None, None).expect("templates").render(summary).expect("render");
        let admin = Address::from(&user("admin", Role::Admin, None, None, "U300", "UTC"));
        email.send(&admin, summary, &message).await.expect("sent");
        let mail = &smtp.mails()[0];
        // The chart needs a system font (.ci/run installs DejaVu Sans). Whether there is one is
        // asked of the machine, not of the output under test: with one, a missing chart fails.
        let font = bot::alerts::chart::SYSTEM_FONTS.iter().any(|p| std::path::Path::new(p).is_file());
        if !font {
            assert!(message.attachments.is_empty(), "{b}: a chart without a font?");
            eprintln!("notice: skipping the chart checks, no system font (apt-get install fonts-dejavu-core)");
            continue;
        }
        assert!(!message.attachments.is_empty(), "{b}: a font is installed, so the summary has its chart");
        assert!(mail.data.contains("multipart/mixed") && mail.data.contains("image/png"), "{b}");
        assert!(mail.data.contains("win-rate-by-quarter.png"), "{b}: the chart is attached");
        // On Slack, the chart follows the message into the same conversation.
        let slack = FakeSlack::start(TOKEN).await;
        let channel = SlackChannel::new(&slack.api_url, &SecretString::from(TOKEN.to_owned())).expect("slack");
        channel.send(&admin, summary, &message).await.expect("posted");
        let files = slack.files();
        assert_eq!(files.len(), 1, "{b}");
        assert_eq!(
            (files[0].filename.as_str(), files[0].channel.as_deref()),
            ("win-rate-by-quarter.png", Some("D300")),
            "{b}"
        );
        assert_eq!(files[0].bytes, message.attachments[0].bytes, "{b}: the PNG arrived whole");
    }
}

#[tokio::test]
async fn an_admin_routes_alert_kinds_to_shared_channels_which_get_them_at_once() {
    use bot::alerts::routing::Routing;
    use bot::jobs::JobWork;
    for store in each_store().await {
        let b = store.store.backend();
        let f = fixture(store).await;
        let s = f.store.store.clone();
        // Alerts are posted with the bot token of the fake's workspace, which is acme's.
        let slack = FakeSlack::start(TOKEN).await;
        let api_url = slack.api_url.clone();
        let server = tests::TestServer::start(f.store.sharing(), move |c| {
            c.slack.bot_token = Some(TOKEN.to_owned().into());
            c.slack.api_url = api_url;
            c.slack.workspaces = [("T00000001".to_owned(), "acme".to_owned())].into();
        })
        .await;
        let admin = tests::token("acme", "admin", Role::Admin, 600);
        let omar = tests::token("acme", "omar", Role::Manager, 600);
        let maria = tests::token("acme", "maria", Role::Rep, 600);

        // Bad routes are refused naming the field; only admins see or set them.
        let bad = serde_json::json!({ "routes": { "segment_decline": { "targets": [{ "channel": "slack", "to": "#leadership" }] } } });
        let (status, body) = server.put("/v1/alerts/routes", &admin, &bad).await;
        assert_eq!(
            (status, body["details"]["field"].as_str()),
            (422, Some("routes.segment_decline.targets[0].to")),
            "{b}: {body}"
        );
        let (status, body) = server
            .put("/v1/alerts/routes", &admin, &serde_json::json!({ "routes": { "daily_digest": { "targets": [] } } }))
            .await;
        assert_eq!((status, body["details"]["field"].as_str()), (422, Some("routes.daily_digest")), "{b}: {body}");
        assert_eq!(server.put("/v1/alerts/routes", &omar, &serde_json::json!({ "routes": {} })).await.0, 403, "{b}");
        assert_eq!(server.get("/v1/alerts/routes", &omar).await.0, 403, "{b}");
        let routes = serde_json::json!({ "routes": {
            "critical_deal": { "targets": [{ "channel": "slack", "to": "C0DEALDESK", "name": "#deal-desk" }], "personal": true },
            "segment_decline": { "targets": [{ "channel": "slack", "to": "C0LEADERS1", "name": "#leadership" }], "personal": false },
            "weekly_summary": { "targets": [{ "channel": "slack", "to": "C0LEADERS1", "timezone": "America/New_York" }], "personal": true },
        }});
        let (status, saved) = server.put("/v1/alerts/routes", &admin, &routes).await;
        assert_eq!(status, 200, "{b}: {saved}");
        assert_eq!(server.get("/v1/alerts/routes", &admin).await.1, routes, "{b}: read back as saved");
        let log = s.audit_log(&f.tenant, 20).await.expect("audit");
        assert!(log.iter().any(|e| e.action == "alerts.routes" && e.actor == "admin"), "{b}: the change is logged");

        // A deal turns critical at 03:00 UTC: 23:00 for Maria in New York, 05:00 for Omar in
        // Berlin, both in quiet hours; the deal desk channel has none and gets it at once.
        let t0 = (Utc::now().date_naive() - Duration::days(10)).and_hms_opt(2, 0, 0).expect("time").and_utc();
        let t1 = t0 + Duration::hours(1);
        f.score(60, t0).await;
        assert_eq!(f.score(82, t1).await, 3, "{b}: Maria, Omar and #deal-desk");
        let desk = "shared:slack:C0DEALDESK";
        let critical = f.critical_alerts().await;
        let to_desk = critical.iter().find(|a| a.recipient == desk).expect("the channel's alert");
        assert_eq!((to_desk.channel.as_str(), to_desk.due_ms), ("slack", t1.timestamp_millis()), "{b}: at once");
        assert!(critical.iter().filter(|a| a.recipient != desk).all(|a| a.due_ms > t1.timestamp_millis()), "{b}");
        assert_eq!(f.score(70, t1 + Duration::hours(1)).await, 0);
        assert_eq!(f.score(81, t1 + Duration::hours(2)).await, 0, "{b}: throttled for the channel like for people");

        // The bot was never invited to #deal-desk: Slack says not_in_channel, which no retry
        // fixes, so the alert goes to the fallback (the log) at once.
        let dir = tests::scratch();
        let log_file = dir.path().join("alerts.jsonl");
        let sender = sender(s.clone(), &slack, &log_file);
        let r = sender.deliver_due(t1 + Duration::seconds(1)).await.expect("deliver");
        assert_eq!((r.escalated, r.sent), (1, 1), "{b}: escalated, then written to the log: {r:?}");
        let logged = std::fs::read_to_string(&log_file).expect("log");
        assert!(logged.contains(desk), "{b}: the log names the channel: {logged}");
        let escalated =
            s.alerts(&f.tenant, &AlertQuery { recipient: Some(desk.into()), ..AlertQuery::default() }).await;
        let escalated = escalated.expect("alerts");
        let first = escalated.iter().find(|a| a.state == AlertState::Escalated).expect("escalated");
        assert!(first.last_error.as_deref().is_some_and(|e| e.contains("not_in_channel")), "{b}: {first:?}");

        // Segment declines go to #leadership only (personal: false); rep findings still to Omar.
        let channels = ["slack".to_owned(), "log".to_owned()];
        let routing = Routing::load(s.as_ref(), &f.tenant, &channels).await.expect("routing");
        let decline = engine::alerts::InsightAlert {
            kind: AlertKind::SegmentDecline,
            subject: "HealthTech|rolling".into(),
            rep: None,
            facts: bot::alerts::templates::sample(AlertKind::SegmentDecline).payload["finding"].clone(),
        };
        let owner = f.card.owner.clone().expect("owner");
        let rep = engine::alerts::InsightAlert {
            kind: AlertKind::RepPerformance,
            subject: owner.clone(),
            rep: Some(owner.clone()),
            facts: serde_json::json!({ "rep": owner, "risk_flag": true }),
        };
        let planned = bot::alerts::digest::plan_insights(&[decline, rep], &routing, t1);
        let mut to: Vec<(&str, &str, &str)> =
            planned.iter().map(|a| (a.kind.as_str(), a.recipient.as_str(), a.channel.as_str())).collect();
        to.sort_unstable();
        assert_eq!(
            to,
            [("rep_performance", "omar", "digest"), ("segment_decline", "shared:slack:C0LEADERS1", "slack")],
            "{b}"
        );
        s.raise_alerts(&f.tenant, &planned).await.expect("raise");
        slack.join("C0LEADERS1");
        let r = sender.deliver_due(t1 + Duration::seconds(2)).await.expect("deliver");
        assert_eq!(r.sent, 1, "{b}: {r:?}");
        let posted = slack.posted();
        assert_eq!(
            posted.iter().map(|p| p.channel.as_str()).collect::<Vec<_>>(),
            ["C0LEADERS1"],
            "{b}: in the channel"
        );
        assert!(!slack.calls().iter().any(|c| c == "conversations.open"), "{b}: no DM opened for a channel");

        // A manager snoozes the channel's critical alert for a week: it speaks for the channel.
        // A rep cannot judge a channel's alert.
        let path = format!("/v1/alerts/{}/feedback", to_desk.alert_id);
        let snooze = serde_json::json!({ "action": "snooze", "snooze": "1w" });
        assert_eq!(server.post(&path, &maria, &snooze).await.0, 404, "{b}");
        let (status, body) = server.post(&path, &omar, &snooze).await;
        assert_eq!((status, body["recorded"].clone()), (200, true.into()), "{b}: {body}");
        let stored = s.feedback(&f.tenant, t0 - Duration::days(1)).await.expect("feedback");
        assert_eq!(stored.iter().map(|f| f.user_id.as_str()).collect::<Vec<_>>(), [desk], "{b}");
        // Two days later the deal comes back 13 points worse: Maria and Omar hear, the channel
        // is snoozed.
        let t2 = t1 + Duration::days(2) + Duration::hours(10);
        f.score(70, t2).await;
        assert_eq!(f.score(95, t2 + Duration::hours(1)).await, 2, "{b}: not #deal-desk");

        // The weekly summary reaches #leadership at 08:00 New York time on Monday.
        let work = service_jobs(&s, &channels);
        let weekly = |at: DateTime<Utc>| work.run(&f.tenant, bot::jobs::Job::WeeklySummary, at, at);
        assert_eq!(weekly(utc("2026-06-08T11:00:00Z")).await.expect("07:00 NY")["summaries"], 0, "{b}");
        assert_eq!(weekly(utc("2026-06-08T12:05:00Z")).await.expect("08:05 NY")["summaries"], 1, "{b}");
        let query = AlertQuery { kinds: vec![AlertKind::WeeklySummary], ..AlertQuery::default() };
        let summaries = s.alerts(&f.tenant, &query).await.expect("summaries");
        assert_eq!(summaries.iter().map(|a| a.recipient.as_str()).collect::<Vec<_>>(), ["shared:slack:C0LEADERS1"]);
    }
}

/// The service's jobs on `store`, delivering on `channels`, without Salesforce orgs.
fn service_jobs(store: &Arc<dyn Store>, channels: &[String]) -> bot::jobs::ServiceJobs {
    bot::jobs::ServiceJobs {
        store: store.clone(),
        texts: tests::texts(),
        channels: channels.to_vec(),
        threads: 1,
        crm: Arc::new(bot::salesforce::Orgs::default()),
    }
}

/// A pipeline that went bad in the last weeks, as the nightly insight scan finds it (the real
/// job, on both stores): half the recent wins turned to losses and new deals half their size
/// (health under 65), the amount left blank on most new deals (a data-quality drop), and one
/// deal in ten of the last week's (far fewer new deals than usual).
#[tokio::test]
async fn the_nightly_insight_scan_raises_health_quality_and_volume_alerts() {
    use bot::jobs::JobWork;
    let today = Utc::now().date_naive();
    let mut data = tests::generated_dataset(20_000, 17, today);
    let mut flip = 0;
    let mut kept = 0;
    for deal in &mut data.deals {
        let closed_recently = deal.closed.is_some_and(|c| c > today - Duration::days(90) && c <= today);
        if deal.outcome == engine::domain::Outcome::Won && closed_recently {
            flip += 1;
            if flip % 2 == 0 {
                deal.outcome = engine::domain::Outcome::Lost;
            }
        }
        let created = deal.created.unwrap_or(today);
        if created > today - Duration::days(90) && created <= today {
            deal.amount = deal.amount.and_then(|a| engine::domain::Amount::new(a.get() / 2.0).ok());
        }
        if created > today - Duration::days(30)
            && created <= today
            && deal.id.as_str().ends_with(['1', '2', '3', '4', '5', '6'])
        {
            deal.amount = None;
        }
    }
    data.deals.retain(|d| {
        let last_week = d.created.is_some_and(|c| c > today - Duration::days(7) && c <= today);
        kept += usize::from(last_week);
        !last_week || kept % 10 == 0
    });
    for store in each_store().await {
        let b = store.store.backend();
        tests::seed_dataset(store.store.as_ref(), "acme", &data, today).await;
        let tenant = TenantId::parse("acme").expect("tenant");
        let channels = ["log".to_owned()];
        let work = service_jobs(&store.store, &channels);
        let now = Utc::now();
        let ran = work.run(&tenant, bot::jobs::Job::InsightScan, now, now).await.expect("the insight scan");
        assert!(ran["alerts"].as_u64().is_some_and(|n| n > 0), "{b}: {ran}");
        let alerts = store.store.alerts(&tenant, &AlertQuery::default()).await.expect("alerts");
        let subjects = |kind: AlertKind| -> Vec<String> {
            let mut s: Vec<String> = alerts.iter().filter(|a| a.kind == kind).map(|a| a.subject.clone()).collect();
            s.dedup();
            s
        };
        assert!(!subjects(AlertKind::PipelineHealth).is_empty(), "{b}: health under 65: {ran}");
        let health = alerts.iter().find(|a| a.kind == AlertKind::PipelineHealth).expect("health");
        assert!(health.payload["finding"]["index"].as_f64().is_some_and(|i| i < 65.0), "{b}: {}", health.payload);
        let quality = subjects(AlertKind::DataQuality);
        assert!(quality.iter().any(|s| s == "amount"), "{b}: the amount filled less often: {quality:?}");
        assert!(quality.iter().any(|s| s == "deal_volume"), "{b}: far fewer new deals: {quality:?}");
        // Every alert is for admins (health, quality) or the people of a finding: none is lost.
        assert!(alerts.iter().all(|a| !a.recipient.is_empty()), "{b}");
    }
}

/// The monthly retraining job trains on the tenant's deals and stores the model, promoted only
/// when at least as good as the champion.
#[tokio::test]
async fn the_monthly_retraining_job_trains_and_keeps_the_better_model() {
    use bot::jobs::JobWork;
    let today = Utc::now().date_naive();
    for store in each_store().await {
        let b = store.store.backend();
        let tenant = TenantId::parse("acme").expect("tenant");
        // Deals, but no model yet: the job's first model is the champion.
        let data = tests::generated_dataset(3_000, 23, today);
        store.store.import(&tenant, &tests::import_batch("retrain", &data)).await.expect("import");
        let work = service_jobs(&store.store, &["log".to_owned()]);
        let now = Utc::now();
        let first = work.run(&tenant, bot::jobs::Job::MonthlyRetrain, now, now).await.expect("retrain");
        assert_eq!(first["status"], "champion", "{b}: {first}");
        let champion = store.store.champion(&tenant).await.expect("read").expect("a champion");
        assert_eq!(first["version"].as_str(), Some(champion.0.version.as_str()), "{b}");
        // The same deals again: the same model (its version is a content hash), kept as it is.
        let again = work.run(&tenant, bot::jobs::Job::MonthlyRetrain, now, now).await.expect("retrain");
        assert_eq!(again["version"], first["version"], "{b}: same deals, same model");
        let models = store.store.models(&tenant).await.expect("models");
        assert_eq!(models.iter().filter(|m| m.status.as_str() == "champion").count(), 1, "{b}: {models:?}");
    }
}
