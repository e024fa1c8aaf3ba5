//! The sender: moves due alerts out of the outbox and through their channels.
//!
//! One pass ([`Sender::deliver_due`]) claims due alerts tenant by tenant, renders each, sends it
//! and records the outcome. The time is passed in, so tests drive retries, backoff, quiet hours
//! and lease take-overs with an injected clock; `dealwatch serve` runs a pass every few seconds.
//!
//! Retries never duplicate: before any attempt after the first, the channel is asked whether an
//! earlier attempt already got through (a 500 after the message was posted, a crash between
//! posting and recording). When the channel cannot answer, the attempt waits rather than risk
//! a second copy.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::channels::{Address, Channel, EmailChannel, LogChannel, SendError};
use super::templates::Templates;
use super::{Alert, Outcome, ms};
use ::settings::Settings;
use store::{Store, StoreError, TenantId, User};

#[derive(Debug, Clone)]
pub struct SenderConfig {
    pub max_attempts: u32,
    pub backoff: Duration,
    pub lease: Duration,
    /// Alerts claimed at a time.
    pub batch: u32,
    /// The channel an alert goes to after `max_attempts` failures.
    pub fallback: Option<String>,
}

impl SenderConfig {
    pub fn from_settings(settings: &Settings) -> Self {
        let a = &settings.alerts;
        SenderConfig {
            max_attempts: a.max_attempts.max(1),
            backoff: Duration::from_secs(a.backoff_seconds),
            lease: Duration::from_secs(a.lease_seconds.max(1)),
            batch: 50,
            fallback: Some(a.fallback_channel.trim().to_owned()).filter(|c| !c.is_empty()),
        }
    }
}

/// What one pass did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Report {
    pub sent: usize,
    /// Found already delivered by an earlier attempt, and recorded as sent.
    pub recovered: usize,
    pub failed: usize,
    pub escalated: usize,
    /// Outcomes not recorded because another sender had taken the alert over.
    pub lost_lease: usize,
}

#[derive(Debug, Clone)]
pub struct Sender {
    store: Arc<dyn Store>,
    channels: HashMap<String, Arc<dyn Channel>>,
    templates: Arc<Templates>,
    config: SenderConfig,
}

impl Sender {
    pub fn new(
        store: Arc<dyn Store>,
        channels: Vec<Arc<dyn Channel>>,
        templates: Arc<Templates>,
        config: SenderConfig,
    ) -> Self {
        let channels = channels.into_iter().map(|c| (c.name().to_owned(), c)).collect();
        Self { store, channels, templates, config }
    }

    /// The sender the configuration describes: the templates (from the prompts directory, else
    /// bundled), the retry settings, and its channels: the log always, email when configured, and
    /// `platforms` (the chat adapters' channels, which the binary's wiring builds). Fails on a
    /// bad template or channel setting.
    pub fn from_settings(
        settings: &Settings,
        store: Arc<dyn Store>,
        platforms: Vec<Arc<dyn Channel>>,
    ) -> anyhow::Result<Sender> {
        super::chart::load_font(settings.alerts.chart_font.as_deref());
        let templates = Templates::load(settings.prompts_dir.as_deref(), settings.alerts.deal_url.clone())?;
        let mut channels: Vec<Arc<dyn Channel>> =
            vec![Arc::new(LogChannel::new(settings.data_dir.join(&settings.alerts.log_file))?)];
        if let Some(url) = &settings.email.smtp_url {
            let from = settings.email.from.as_deref().unwrap_or("Dealwatch <dealwatch@localhost>");
            channels.push(Arc::new(EmailChannel::new(url, from, settings.email.ca_file.as_deref())?));
        }
        channels.extend(platforms);
        Ok(Sender::new(store, channels, Arc::new(templates), SenderConfig::from_settings(settings)))
    }

    /// Delivers everything due at `now`, for every tenant.
    pub async fn deliver_due(&self, now: DateTime<Utc>) -> Result<Report, StoreError> {
        let mut report = Report::default();
        for tenant in self.store.tenant_ids().await? {
            self.deliver_tenant(&tenant, now, &mut report).await?;
        }
        Ok(report)
    }

    async fn deliver_tenant(
        &self,
        tenant: &TenantId,
        now: DateTime<Utc>,
        report: &mut Report,
    ) -> Result<(), StoreError> {
        let lease_ms = i64::try_from(self.config.lease.as_millis()).unwrap_or(i64::MAX);
        let mut users: Option<Vec<User>> = None;
        loop {
            let claimed = self.store.claim_alerts(tenant, ms(now), lease_ms, self.config.batch).await?;
            if claimed.is_empty() {
                return Ok(());
            }
            if users.is_none() {
                users = Some(self.store.users(tenant).await?);
            }
            let known = users.as_deref().unwrap_or_default();
            for alert in &claimed {
                let to = known
                    .iter()
                    .find(|u| u.user_id == alert.recipient)
                    .map(Address::from)
                    .or_else(|| super::routes::shared_address(&alert.recipient))
                    .map(|to| Address { tenant: Some(tenant.clone()), ..to });
                let (outcome, recovered) = self.attempt(alert, to.as_ref(), now).await;
                if !self.store.finish_alert(tenant, &alert.alert_id, alert.attempts, &outcome).await? {
                    report.lost_lease += 1;
                    continue;
                }
                match &outcome {
                    Outcome::Sent { .. } if recovered => report.recovered += 1,
                    Outcome::Sent { .. } => report.sent += 1,
                    Outcome::Failed { error, .. } => {
                        report.failed += 1;
                        tracing::warn!(tenant = %tenant, alert_id = %alert.alert_id, attempt = alert.attempts, %error, "alert delivery failed; will retry");
                    }
                    Outcome::Escalated { error, fallback } => {
                        report.escalated += 1;
                        tracing::error!(tenant = %tenant, alert_id = %alert.alert_id, channel = %alert.channel, %error,
                            fallback = fallback.as_ref().map(|f| f.channel.as_str()), "alert escalated");
                    }
                }
            }
            // Claim again: more may be due (a larger backlog, fallbacks raised just now).
        }
    }

    /// One attempt at `alert`; true with a `Sent` that an earlier attempt had achieved.
    async fn attempt(&self, alert: &Alert, to: Option<&Address>, now: DateTime<Utc>) -> (Outcome, bool) {
        let Some(to) = to else {
            return (self.give_up(alert, format!("recipient {} is no longer a user", alert.recipient), now), false);
        };
        let Some(channel) = self.channels.get(&alert.channel) else {
            return (self.give_up(alert, format!("channel {} is not configured here", alert.channel), now), false);
        };
        if alert.attempts > 1 {
            match channel.find(to, alert).await {
                Ok(Some(found)) => return (Outcome::Sent { at: now, external_id: found.external_id }, true),
                Ok(None) => {}
                // Without knowing, sending again could deliver twice: wait and ask again.
                Err(e) => return (self.failure(alert, e, now), false),
            }
        }
        let message = match self.templates.render(alert) {
            Ok(m) => m,
            Err(e) => return (self.give_up(alert, format!("rendering: {e:#}"), now), false),
        };
        match channel.send(to, alert, &message).await {
            Ok(sent) => (Outcome::Sent { at: now, external_id: sent.external_id }, false),
            Err(e) => (self.failure(alert, e, now), false),
        }
    }

    fn failure(&self, alert: &Alert, error: SendError, now: DateTime<Utc>) -> Outcome {
        match error {
            SendError::Transient { reason, retry_after } if alert.attempts < self.config.max_attempts => {
                let exponent = alert.attempts.saturating_sub(1).min(16);
                let wait = (self.config.backoff * 2u32.pow(exponent)).max(retry_after.unwrap_or_default());
                let wait_ms = i64::try_from(wait.as_millis()).unwrap_or(i64::MAX / 2);
                Outcome::Failed { error: reason, retry_ms: ms(now).saturating_add(wait_ms) }
            }
            SendError::Transient { reason, .. } => {
                self.give_up(alert, format!("{reason} (after {} attempts)", alert.attempts), now)
            }
            SendError::Permanent(reason) => self.give_up(alert, reason, now),
        }
    }

    /// Escalates: the alert goes to the fallback channel, unless it is already there or is
    /// itself a fallback.
    fn give_up(&self, alert: &Alert, error: String, now: DateTime<Utc>) -> Outcome {
        let fallback = self
            .config
            .fallback
            .as_ref()
            .filter(|f| **f != alert.channel && alert.escalated_from.is_none() && self.channels.contains_key(*f))
            .map(|channel| {
                let dedup_key = format!("{}:fallback:{channel}", alert.dedup_key);
                let copy = Alert::now(
                    alert.kind,
                    alert.subject.clone(),
                    alert.recipient.clone(),
                    channel.clone(),
                    dedup_key,
                    alert.payload.clone(),
                    now,
                );
                Box::new(Alert { score: alert.score, escalated_from: Some(alert.alert_id.clone()), ..copy })
            });
        Outcome::Escalated { error, fallback }
    }

    /// Runs passes every `every` until the process stops (inside `dealwatch serve`).
    pub async fn run(self, every: Duration, wake: Arc<tokio::sync::Notify>) {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            // Every `every`, or at once when a request raised an alert (the Salesforce webhook's
            // critical crossings reach Slack in milliseconds, not at the next poll).
            tokio::select! {
                _ = tick.tick() => {}
                () = wake.notified() => {}
            }
            match self.deliver_due(Utc::now()).await {
                Ok(r) if r != Report::default() => tracing::info!(?r, "alerts delivered"),
                Ok(_) => {}
                Err(e) => tracing::error!(error = %e, "delivering alerts"),
            }
        }
    }
}
