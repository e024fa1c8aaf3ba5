//! Scheduled work: one registry of jobs with cron schedules, run for every tenant.
//!
//! A scheduler pass ([`Scheduler::run_due`]) records, for each tenant and job, the latest
//! scheduled time at or before "now" as a row (`job_runs`, unique per job and time), then claims
//! and runs the pending rows one at a time under a lease (`FOR UPDATE SKIP LOCKED` on
//! PostgreSQL). Several replicas, or a cron-driven `dealwatch jobs run-due`, therefore never run
//! one scheduled run twice, and a missed night is caught up once, not once per missed night.
//! A run that fails is retried on later passes, three times at most.
//!
//! Schedules are the `cron` crate's, whose first field is seconds. Jobs that speak to people
//! (digests, the weekly summary) run every quarter hour and decide per recipient, in the
//! recipient's own time zone, whether their 08:00 has come.

use std::str::FromStr;
use std::sync::Arc;

use anyhow::Context;
use chrono::{DateTime, Duration, Utc};
use serde::Serialize;

use crate::alerts::ms;
use crate::crm::{Crm, SyncMode, SyncPass};
use store::{Store, TenantId};

/// A job in the registry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Job {
    /// Rescore every open deal with the champion; critical crossings raise alerts.
    NightlyScore,
    /// Evaluate every insight rule; real changes raise alerts.
    InsightScan,
    /// Each recipient's digest of high-risk deals and P2 alerts, at their local digest time.
    DailyDigest,
    /// Train a challenger on the latest closed deals; promote it if it is at least as good.
    MonthlyRetrain,
    /// Read the Opportunities changed since the last pass, rescore, write changed risk fields back.
    SalesforceSync,
    /// Read every Opportunity (catches deletions of history and missed changes), rescore, write back.
    SalesforceFullSync,
    /// The executive summary with its chart, Monday 08:00 in each recipient's time zone.
    WeeklySummary,
}

/// A job and when it runs.
#[derive(Debug, Clone, Copy)]
pub struct JobSpec {
    pub job: Job,
    /// Seconds, minutes, hours, day of month, month, day of week, year.
    pub schedule: &'static str,
    /// A scheduled time missed (the service was down) is still run this long after it, once.
    pub catch_up_hours: i64,
    pub what: &'static str,
}

/// Every job (seed 001 "Operational Cadence").
pub const REGISTRY: [JobSpec; 7] = [
    JobSpec {
        job: Job::NightlyScore,
        schedule: "0 0 2 * * * *",
        catch_up_hours: 20,
        what: "rescore the pipeline nightly at 02:00 UTC",
    },
    JobSpec {
        job: Job::InsightScan,
        schedule: "0 0 4 * * * *",
        catch_up_hours: 20,
        what: "insights and anomaly scan at 04:00 UTC",
    },
    JobSpec {
        job: Job::DailyDigest,
        schedule: "0 0/15 * * * * *",
        catch_up_hours: 1,
        what: "every 15 minutes: digests for whoever's local digest time has come",
    },
    JobSpec {
        job: Job::WeeklySummary,
        schedule: "0 0/15 * * * Mon *",
        catch_up_hours: 1,
        what: "Mondays every 15 minutes: the weekly summary for whoever's 08:00 has come",
    },
    JobSpec {
        job: Job::MonthlyRetrain,
        schedule: "0 0 3 1 * * *",
        catch_up_hours: 72,
        what: "retrain on the 1st of each month at 03:00 UTC",
    },
    JobSpec {
        job: Job::SalesforceSync,
        schedule: "0 0/5 * * * * *",
        catch_up_hours: 1,
        what: "every 5 minutes: Salesforce Opportunities changed since the last pass (tenants with an org)",
    },
    JobSpec {
        job: Job::SalesforceFullSync,
        schedule: "0 30 1 * * * *",
        catch_up_hours: 20,
        what: "every Opportunity from Salesforce nightly at 01:30 UTC, before the nightly rescore",
    },
];

impl Job {
    pub fn as_str(self) -> &'static str {
        match self {
            Job::NightlyScore => "nightly_score",
            Job::InsightScan => "insight_scan",
            Job::DailyDigest => "daily_digest",
            Job::MonthlyRetrain => "monthly_retrain",
            Job::WeeklySummary => "weekly_summary",
            Job::SalesforceSync => "salesforce_sync",
            Job::SalesforceFullSync => "salesforce_full_sync",
        }
    }

    pub fn parse(s: &str) -> Option<Job> {
        REGISTRY.iter().map(|s| s.job).find(|j| j.as_str() == s)
    }
}

impl JobSpec {
    pub fn cron(&self) -> anyhow::Result<cron::Schedule> {
        cron::Schedule::from_str(self.schedule)
            .with_context(|| format!("schedule {:?} of {}", self.schedule, self.job.as_str()))
    }

    /// The latest scheduled time at or before `now`.
    pub fn latest(&self, now: DateTime<Utc>) -> anyhow::Result<Option<DateTime<Utc>>> {
        Ok(self.cron()?.after(&(now + Duration::seconds(1))).next_back())
    }

    /// The scheduled time to run at `now`: the latest, unless it is too old to catch up.
    pub fn due(&self, now: DateTime<Utc>) -> anyhow::Result<Option<DateTime<Utc>>> {
        Ok(self.latest(now)?.filter(|t| now - *t <= Duration::hours(self.catch_up_hours)))
    }
}

pub use store::{JobOutcome, JobRun};

/// What one pass did, per run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RanJob {
    pub tenant: String,
    pub job: String,
    pub due: DateTime<Utc>,
    pub ok: bool,
    pub result: serde_json::Value,
}

/// Runs the registry's jobs; what each does is [`JobWork`]'s.
pub struct Scheduler {
    store: Arc<dyn Store>,
    work: Arc<dyn JobWork>,
    /// A claimed run may take this long before another scheduler takes it over.
    pub lease: Duration,
    pub max_attempts: u32,
}

/// The work behind each job (the service's, or a test's).
#[async_trait::async_trait]
pub trait JobWork: Send + Sync {
    async fn run(
        &self,
        tenant: &TenantId,
        job: Job,
        due: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> anyhow::Result<serde_json::Value>;
}

impl Scheduler {
    pub fn new(store: Arc<dyn Store>, work: Arc<dyn JobWork>) -> Self {
        Scheduler { store, work, lease: Duration::minutes(30), max_attempts: 3 }
    }

    /// Records what is due at `now` and runs it, for every tenant.
    pub async fn run_due(&self, now: DateTime<Utc>) -> anyhow::Result<Vec<RanJob>> {
        let mut ran = Vec::new();
        for tenant in self.store.tenant_ids().await? {
            for spec in &REGISTRY {
                if let Some(due) = spec.due(now)? {
                    self.store.schedule_job(&tenant, spec.job.as_str(), ms(due)).await?;
                }
            }
            while let Some(run) = self.store.claim_job(&tenant, ms(now), self.lease.num_milliseconds()).await? {
                let due = DateTime::<Utc>::from_timestamp_millis(run.due_ms).unwrap_or(now);
                let outcome = match Job::parse(&run.job) {
                    Some(job) => match self.work.run(&tenant, job, due, now).await {
                        Ok(result) => JobOutcome::Done(result),
                        Err(e) => JobOutcome::Failed(format!("{e:#}")),
                    },
                    None => JobOutcome::Failed(format!("no job {:?} in this version's registry", run.job)),
                };
                if let JobOutcome::Failed(e) = &outcome {
                    tracing::error!(tenant = %tenant, job = %run.job, attempt = run.attempts, error = %e, "job failed");
                }
                let recorded = self.store.finish_job(&tenant, &run, now, &outcome, self.max_attempts).await?;
                let (ok, result) = match outcome {
                    JobOutcome::Done(r) => (true, r),
                    JobOutcome::Failed(e) => (false, serde_json::Value::String(e)),
                };
                if recorded {
                    ran.push(RanJob { tenant: tenant.to_string(), job: run.job, due, ok, result });
                }
                if !ok {
                    // A failed run waits for the next pass rather than spinning here.
                    break;
                }
            }
        }
        Ok(ran)
    }

    /// Runs passes every `every` until the process stops (inside `dealwatch serve`).
    pub async fn run(self, every: std::time::Duration, clock: Arc<dyn crate::Clock>) {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            match self.run_due(clock.now()).await {
                Ok(ran) => {
                    for r in ran {
                        tracing::info!(tenant = %r.tenant, job = %r.job, due = %r.due, ok = r.ok, result = %r.result, "job ran");
                    }
                }
                Err(e) => tracing::error!(error = %format!("{e:#}"), "scheduler pass"),
            }
        }
    }
}

/// What the registry's jobs do in the service (and in `dealwatch jobs run-due`).
pub struct ServiceJobs {
    pub store: Arc<dyn Store>,
    pub texts: engine::texts::Texts,
    /// The alert channels this deployment has (see `Settings::alert_channels`).
    pub channels: Vec<String>,
    pub threads: usize,
    /// The tenants' CRM connections (none: the sync jobs skip).
    pub crm: Arc<dyn Crm>,
}

#[async_trait::async_trait]
impl JobWork for ServiceJobs {
    async fn run(
        &self,
        tenant: &TenantId,
        job: Job,
        due: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> anyhow::Result<serde_json::Value> {
        use crate::alerts::routing::Routing;
        let store = self.store.as_ref();
        let as_of = now.date_naive();
        match job {
            Job::NightlyScore => {
                let Some((version, updates)) =
                    crate::workflow::rescore(store, tenant, &self.texts, as_of, None).await?
                else {
                    return Ok(serde_json::json!({ "skipped": "no trained model" }));
                };
                let saved =
                    crate::workflow::save_scores_alerting(store, tenant, now, Some(as_of), &updates, &self.channels)
                        .await?;
                Ok(serde_json::json!({ "scored": saved.scores, "alerts": saved.alerts, "model": version }))
            }
            Job::SalesforceSync | Job::SalesforceFullSync => {
                let mode = if job == Job::SalesforceFullSync { SyncMode::Full } else { SyncMode::Incremental };
                let pass = SyncPass { mode, due, now, texts: &self.texts, channels: &self.channels };
                self.crm.sync(store, tenant, pass).await
            }
            Job::InsightScan => {
                let dataset = crate::workflow::tenant_dataset(store, tenant).await?;
                let model = crate::workflow::champion_if_any(store, tenant).await?;
                let texts = self.texts.clone();
                let found = tokio::task::spawn_blocking(move || {
                    let insights = crate::workflow::insights(
                        &dataset,
                        as_of,
                        model.as_ref(),
                        &texts,
                        &engine::insights::InsightConfig::default(),
                    );
                    engine::alerts::insight_alerts(&insights, &engine::alerts::InsightRules::default())
                })
                .await?;
                let routing = Routing::load(store, tenant, &self.channels).await?;
                let alerts = alerts::digest::plan_insights(&found, &routing, now);
                let raised = store.raise_alerts(tenant, &alerts).await?;
                Ok(serde_json::json!({ "findings": found.len(), "alerts": raised }))
            }
            Job::DailyDigest => {
                let routing = Routing::load(store, tenant, &self.channels).await?;
                let mut sent = 0;
                for digest in alerts::digest::plan_digests(store, tenant, &routing, now).await? {
                    sent += usize::from(store.raise_digest(tenant, &digest.alert, &digest.bundled).await?);
                }
                Ok(serde_json::json!({ "digests": sent }))
            }
            Job::WeeklySummary => {
                let routing = Routing::load(store, tenant, &self.channels).await?;
                let due = alerts::digest::weekly_recipients(&routing, now);
                if due.is_empty() {
                    return Ok(serde_json::json!({ "summaries": 0 }));
                }
                let dataset = crate::workflow::tenant_dataset(store, tenant).await?;
                let model = crate::workflow::champion_if_any(store, tenant).await?;
                let texts = self.texts.clone();
                let facts = tokio::task::spawn_blocking(move || {
                    crate::workflow::weekly_facts(&dataset, as_of, model.as_ref(), &texts)
                })
                .await??;
                let alerts = alerts::digest::plan_weekly(&due, &routing, &facts, now);
                let raised = store.raise_alerts(tenant, &alerts).await?;
                Ok(serde_json::json!({ "summaries": raised }))
            }
            Job::MonthlyRetrain => {
                let dataset = crate::workflow::tenant_dataset(store, tenant).await?;
                let threads = self.threads;
                let model = tokio::task::spawn_blocking(move || {
                    let view = engine::asof::View::new(&dataset, Some(as_of));
                    engine::model::TrainedModel::train(
                        &dataset,
                        &view.closed,
                        view.as_of,
                        &engine::model::TrainConfig { threads, ..engine::model::TrainConfig::default() },
                    )
                })
                .await??;
                let (status, reason) = crate::workflow::store_model(store, tenant, &model, now).await?;
                Ok(serde_json::json!({ "version": model.version, "status": status, "reason": reason }))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).expect("RFC 3339").with_timezone(&Utc)
    }

    #[test]
    fn every_schedule_parses_and_names_round_trip() {
        for spec in REGISTRY {
            spec.cron().expect("schedule parses");
            assert_eq!(Job::parse(spec.job.as_str()), Some(spec.job));
        }
        assert_eq!(Job::parse("nonsense"), None);
    }

    #[test]
    fn the_latest_run_is_the_last_scheduled_time_at_or_before_now() {
        let nightly = REGISTRY[0];
        assert_eq!(nightly.latest(utc("2026-06-10T01:59:59Z")).expect("ok"), Some(utc("2026-06-09T02:00:00Z")));
        assert_eq!(nightly.latest(utc("2026-06-10T02:00:00Z")).expect("ok"), Some(utc("2026-06-10T02:00:00Z")));
        assert_eq!(nightly.latest(utc("2026-06-10T13:30:00Z")).expect("ok"), Some(utc("2026-06-10T02:00:00Z")));
        let digest = REGISTRY[2];
        assert_eq!(digest.latest(utc("2026-06-10T08:14:59Z")).expect("ok"), Some(utc("2026-06-10T08:00:00Z")));
        let monthly = REGISTRY[4];
        assert_eq!(monthly.latest(utc("2026-06-10T00:00:00Z")).expect("ok"), Some(utc("2026-06-01T03:00:00Z")));
        // Nine days late is too late for a retrain; two days late is caught up.
        assert_eq!(monthly.due(utc("2026-06-10T00:00:00Z")).expect("ok"), None);
        assert_eq!(monthly.due(utc("2026-06-03T00:00:00Z")).expect("ok"), Some(utc("2026-06-01T03:00:00Z")));
    }
}
