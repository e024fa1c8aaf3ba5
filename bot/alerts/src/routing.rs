//! Who gets an alert, on which channel, and when.
//!
//! Deal alerts go to the deal's owner and the owner's manager (seed 000); a deal whose owner is
//! nobody's CRM name goes to the tenant's admins rather than nowhere. Each recipient's own
//! settings decide whether they want the alert, its threshold and channels; quiet hours in
//! their own time zone hold an alert until the hours end. Channels the deployment does not have
//! (no Slack token, no SMTP server) are skipped in favour of the next one that reaches the
//! person; the log channel always does.

use std::collections::HashMap;

use chrono::{DateTime, Duration, NaiveTime, TimeZone, Utc};
use chrono_tz::Tz;
use engine::alerts::{AlertKind, CriticalDecision, CriticalRule, LastAlert};

use super::feedback::Loop;
use super::routes::{self, AlertRoutes, RouteTarget};
use super::settings::AlertSettings;
use super::{Alert, ms};
use store::{AlertPlanner, RecentAlert, Role, ScoreChange, Store, StoreError, TenantId, User};

/// Recipients and their settings for one tenant, read once per batch of changes.
#[derive(Debug, Clone)]
pub struct Routing {
    users: Vec<User>,
    settings: HashMap<String, AlertSettings>,
    /// Channels this deployment can deliver on, in order of preference.
    available: Vec<String>,
    /// Snoozes and dismissal streaks.
    pub feedback: Loop,
    /// The tenant's tuned thresholds by kind.
    tuned: HashMap<AlertKind, u8>,
    /// The tenant's shared destinations per kind.
    pub routes: AlertRoutes,
}

/// Someone (or somewhere) an alert goes to.
#[derive(Debug, Clone, Copy)]
pub enum Recipient<'a> {
    Person(&'a User),
    /// A shared destination of the tenant (a team channel, a mailing list).
    Shared(&'a RouteTarget),
}

impl Recipient<'_> {
    /// The id alerts carry.
    pub fn id(&self) -> String {
        match self {
            Recipient::Person(u) => u.user_id.clone(),
            Recipient::Shared(t) => t.recipient(),
        }
    }

    pub fn name(&self) -> String {
        match self {
            Recipient::Person(u) => u.name.clone(),
            Recipient::Shared(t) => t.display_name(),
        }
    }
}

impl Routing {
    pub async fn load(store: &dyn Store, tenant: &TenantId, available: &[String]) -> Result<Routing, StoreError> {
        let users = store.users(tenant).await?;
        let settings = store
            .all_alert_settings(tenant)
            .await?
            .into_iter()
            .map(|(user, value)| (user, AlertSettings::from_stored(Some(value))))
            .collect();
        let mut routing = Routing::new(users, settings, available);
        let since = Utc::now() - Duration::days(FEEDBACK_DAYS);
        routing.feedback = Loop::new(&store.feedback(tenant, since).await?);
        routing.tuned = store.tunings(tenant).await?.into_iter().map(|t| (t.kind, t.threshold)).collect();
        routing.routes = AlertRoutes::from_stored(store.tenant_setting(tenant, routes::SETTING).await?);
        Ok(routing)
    }

    pub fn new(users: Vec<User>, settings: HashMap<String, AlertSettings>, available: &[String]) -> Routing {
        Routing {
            users,
            settings,
            available: available.to_vec(),
            feedback: Loop::default(),
            tuned: HashMap::new(),
            routes: AlertRoutes::default(),
        }
    }

    /// Who gets an alert of `kind` about which `people` are the ones to tell: those people
    /// who did not mute the kind (none when the tenant routes the kind to shared destinations
    /// only), then the kind's shared destinations on channels this deployment has.
    pub fn with_shared<'a>(&'a self, kind: AlertKind, people: Vec<&'a User>) -> Vec<Recipient<'a>> {
        let personal = self.routes.personal(kind);
        people
            .into_iter()
            .filter(|u| personal && !self.settings.get(&u.user_id).is_some_and(|s| s.mutes(kind)))
            .map(Recipient::Person)
            .chain(self.routes.targets(kind, &self.available).map(Recipient::Shared))
            .collect()
    }

    /// The critical-deal threshold for `to`, or `None` when they turned the alerts off. A shared
    /// destination follows the tenant's (tuned) threshold.
    pub fn critical_for(&self, to: Recipient<'_>) -> Option<u8> {
        match to {
            Recipient::Person(u) => {
                self.settings(&u.user_id).critical().enabled.then(|| self.critical_threshold(&u.user_id))
            }
            Recipient::Shared(_) => {
                Some(self.tuned.get(&AlertKind::CriticalDeal).copied().unwrap_or(CriticalRule::default().threshold))
            }
        }
    }

    /// Where an alert of `kind` for `to` goes and when (epoch ms): a person's channels after
    /// their quiet hours (P1) or their digest (P2); a shared destination's channel at once,
    /// whatever the priority (a channel has no quiet hours and no digest).
    pub fn delivery(&self, to: Recipient<'_>, kind: AlertKind, now: DateTime<Utc>) -> (Vec<String>, i64) {
        match to {
            Recipient::Shared(t) => (vec![t.channel.clone()], ms(now)),
            Recipient::Person(u) if kind.priority() == engine::alerts::Priority::P1 => self.immediate(u, kind, now),
            Recipient::Person(_) => (vec![store::DIGEST_CHANNEL.to_owned()], i64::MAX),
        }
    }

    /// The threshold `user` gets critical-deal alerts above: their own, raised to the tenant's
    /// tuned one.
    pub fn critical_threshold(&self, user_id: &str) -> u8 {
        let own = self.settings(user_id).critical().threshold;
        self.tuned.get(&AlertKind::CriticalDeal).map_or(own, |&t| own.max(t))
    }

    /// Where an immediate alert of `kind` goes for `user`, and when: their channels and the end
    /// of their quiet hours, or the digest if they dismissed this kind repeatedly.
    pub fn immediate(&self, user: &User, kind: AlertKind, now: DateTime<Utc>) -> (Vec<String>, i64) {
        if self.feedback.demoted(&user.user_id, kind) {
            (vec![store::DIGEST_CHANNEL.to_owned()], i64::MAX)
        } else {
            (self.channels(user, kind), ms(self.due(user, now)))
        }
    }

    pub fn user(&self, user_id: &str) -> Option<&User> {
        self.users.iter().find(|u| u.user_id == user_id)
    }

    pub fn settings(&self, user_id: &str) -> AlertSettings {
        self.settings.get(user_id).cloned().unwrap_or_default()
    }

    /// The owner's user and their manager; the admins when no user has this CRM owner.
    pub fn deal_recipients(&self, owner: Option<&str>) -> Vec<&User> {
        let rep = owner.and_then(|o| self.users.iter().find(|u| u.crm_owner.as_deref() == Some(o)));
        match rep {
            Some(rep) => {
                let manager = rep.manager_id.as_deref().and_then(|m| self.user(m));
                std::iter::once(rep).chain(manager).collect()
            }
            None => self.users.iter().filter(|u| u.role == Role::Admin).collect(),
        }
    }

    pub fn users(&self) -> &[User] {
        &self.users
    }

    /// Who hears about an insight: segment and pipeline findings go to leadership (admins and
    /// managers; pipeline health and data quality to admins only), a rep's to the rep's
    /// manager (the admins when the rep has none).
    pub fn insight_recipients(&self, kind: AlertKind, rep: Option<&str>) -> Vec<&User> {
        let admins = || self.users.iter().filter(|u| u.role == Role::Admin).collect::<Vec<_>>();
        match kind {
            AlertKind::RepPerformance => {
                let rep_user = rep.and_then(|r| self.users.iter().find(|u| u.crm_owner.as_deref() == Some(r)));
                match rep_user.and_then(|u| u.manager_id.as_deref()).and_then(|m| self.user(m)) {
                    Some(manager) => vec![manager],
                    None => admins(),
                }
            }
            AlertKind::SegmentDecline | AlertKind::HighPerformer => {
                self.users.iter().filter(|u| matches!(u.role, Role::Admin | Role::Manager)).collect()
            }
            _ => admins(),
        }
    }

    /// The channels `user` gets `kind` on: the ones they chose that this deployment has and that
    /// reach them, else the first available channel that reaches them. Digests prefer email
    /// (seed 002: "Channel: Email").
    pub fn channels(&self, user: &User, kind: AlertKind) -> Vec<String> {
        let chosen = match kind {
            AlertKind::CriticalDeal => self.settings(&user.user_id).critical().channels,
            AlertKind::DailyDigest | AlertKind::WeeklySummary => vec!["email".to_owned()],
            _ => Vec::new(),
        };
        let usable = |c: &String| self.available.contains(c) && reaches(user, c);
        let picked: Vec<String> = chosen.into_iter().filter(usable).collect();
        if !picked.is_empty() {
            return picked;
        }
        self.available.iter().find(|c| usable(c)).cloned().into_iter().collect()
    }

    /// When an alert raised at `now` may reach `user`: now, or when their quiet hours end.
    pub fn due(&self, user: &User, now: DateTime<Utc>) -> DateTime<Utc> {
        let tz: Tz = user.time_zone.parse().unwrap_or(Tz::UTC);
        after_quiet_hours(now, tz, self.settings(&user.user_id).quiet_window())
    }
}

/// A deal this young that arrives already critical is alerted on its first score.
pub use engine::alerts::NEW_DEAL_DAYS;

/// The age in days a score's card gives its deal.
pub fn age_days(update: &store::ScoreUpdate) -> Option<i64> {
    update.card.get("age_days").and_then(serde_json::Value::as_i64)
}

/// Feedback older than this no longer shapes routing.
const FEEDBACK_DAYS: i64 = 90;

/// Whether `channel` has an address for `user`.
pub fn reaches(user: &User, channel: &str) -> bool {
    match channel {
        "email" => user.email.is_some(),
        "log" => true,
        platform => user.chat_id(platform).is_some(),
    }
}

/// `now`, or the end of the quiet window (local `start`..`end`, possibly past midnight) in `tz`
/// when `now` falls inside it.
pub fn after_quiet_hours(now: DateTime<Utc>, tz: Tz, window: Option<(NaiveTime, NaiveTime)>) -> DateTime<Utc> {
    let Some((start, end)) = window else { return now };
    if start == end {
        return now;
    }
    let local = now.with_timezone(&tz);
    let t = local.time();
    let (quiet, end_date) = if start < end {
        (t >= start && t < end, local.date_naive())
    } else if t >= start {
        (true, local.date_naive() + Duration::days(1))
    } else {
        (t < end, local.date_naive())
    };
    if !quiet {
        return now;
    }
    let wake = end_date.and_time(end);
    // A wake-up time that does not exist (clocks jump forward over it) is the first one after.
    (0..=3)
        .find_map(|h| tz.from_local_datetime(&(wake + Duration::hours(h))).earliest())
        .map_or(now, |t| t.with_timezone(&Utc))
}

/// Plans critical-deal alerts on new scores: the crossing into critical, per recipient's own
/// threshold, throttled and deduplicated by [`CriticalRule`].
#[derive(Debug)]
pub struct CriticalDeals<'a> {
    pub routing: &'a Routing,
    pub now: DateTime<Utc>,
}

impl CriticalDeals<'_> {
    /// The lowest threshold anyone in the tenant (or a shared destination) uses: below it no
    /// score can cross.
    fn floor(&self) -> u8 {
        let routing = self.routing;
        let people = routing.with_shared(AlertKind::CriticalDeal, routing.users.iter().collect());
        people.into_iter().filter_map(|r| routing.critical_for(r)).min().unwrap_or(CriticalRule::default().threshold)
    }
}

impl AlertPlanner for CriticalDeals<'_> {
    fn kind(&self) -> AlertKind {
        AlertKind::CriticalDeal
    }

    fn candidates(&self, changes: &[ScoreChange<'_>]) -> Vec<usize> {
        let floor = self.floor();
        changes
            .iter()
            .enumerate()
            .filter(|(_, c)| c.update.risk_score > floor)
            .filter(|(_, c)| match c.previous {
                Some(p) => p < c.update.risk_score,
                // Never scored: news only for a deal that is itself new. The first scoring of
                // an existing pipeline (onboarding, an import of history) is a baseline, not a
                // thousand alerts.
                None => engine::alerts::first_score_is_news(age_days(c.update)),
            })
            .map(|(i, _)| i)
            .collect()
    }

    fn plan(&self, changes: &[ScoreChange<'_>], candidates: &[usize], recent: &[RecentAlert]) -> Vec<Alert> {
        let mut alerts = Vec::new();
        for &i in candidates {
            let change = &changes[i];
            let deal = change.update.deal_id.as_str();
            let kind = AlertKind::CriticalDeal;
            let people = self.routing.deal_recipients(change.owner.as_deref());
            for to in self.routing.with_shared(kind, people) {
                let Some(threshold) = self.routing.critical_for(to) else { continue };
                let recipient = to.id();
                let rule = CriticalRule { threshold, ..CriticalRule::default() };
                let last = recent
                    .iter()
                    .filter(|r| r.subject == deal && r.recipient == recipient)
                    .max_by_key(|r| r.at)
                    .map(|r| LastAlert { score: r.score.unwrap_or(0), at: r.at });
                let decision = rule.decide(change.previous, change.update.risk_score, last.as_ref(), self.now);
                if decision != CriticalDecision::Raise {
                    tracing::debug!(deal, %recipient, ?decision, "no critical alert");
                    continue;
                }
                let score = Some(change.update.risk_score);
                if self.routing.feedback.snoozed(&recipient, kind, deal, score, self.now) {
                    tracing::debug!(deal, %recipient, "snoozed");
                    continue;
                }
                let (channels, due) = self.routing.delivery(to, kind, self.now);
                for channel in channels {
                    let dedup_key = format!("critical_deal:{deal}:{recipient}:{channel}:{}", self.now.date_naive());
                    let payload = serde_json::json!({
                        "deal": change.update.card,
                        "previous_score": change.previous,
                        "threshold": threshold,
                        "recipient_name": to.name(),
                    });
                    let alert = Alert::now(kind, deal, recipient.clone(), channel, dedup_key, payload, self.now);
                    alerts.push(Alert { score: Some(change.update.risk_score), due_ms: due, ..alert });
                }
            }
        }
        alerts
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).expect("RFC 3339").with_timezone(&Utc)
    }

    fn hm(h: u32, m: u32) -> NaiveTime {
        NaiveTime::from_hms_opt(h, m, 0).expect("a time")
    }

    #[test]
    fn quiet_hours_hold_alerts_until_they_end_in_the_recipients_time_zone() {
        let ny: Tz = "America/New_York".parse().expect("tz");
        let berlin: Tz = "Europe/Berlin".parse().expect("tz");
        let night = Some((hm(20, 0), hm(8, 0)));
        // (now, zone, window, expected delivery)
        let cases = [
            // 15:00 in New York (EST, UTC-5): not quiet.
            ("2026-01-15T20:00:00Z", ny, night, "2026-01-15T20:00:00Z"),
            // 21:00 in New York: held until 08:00 the next morning.
            ("2026-01-16T02:00:00Z", ny, night, "2026-01-16T13:00:00Z"),
            // 03:00 in New York: held until 08:00 the same day.
            ("2026-01-16T08:00:00Z", ny, night, "2026-01-16T13:00:00Z"),
            // 08:00 sharp is awake.
            ("2026-01-16T13:00:00Z", ny, night, "2026-01-16T13:00:00Z"),
            // The same instant is 03:00 in Berlin (CET): quiet until 08:00 CET, 07:00 UTC.
            ("2026-01-16T02:00:00Z", berlin, night, "2026-01-16T07:00:00Z"),
            // Summer time: 22:30 CEST (UTC+2) waits for 08:00 CEST = 06:00 UTC.
            ("2026-07-01T20:30:00Z", berlin, night, "2026-07-02T06:00:00Z"),
            // A daytime window (12:00-13:00 lunch).
            ("2026-01-15T12:30:00Z", Tz::UTC, Some((hm(12, 0), hm(13, 0))), "2026-01-15T13:00:00Z"),
            // No quiet hours.
            ("2026-01-16T02:00:00Z", ny, None, "2026-01-16T02:00:00Z"),
        ];
        for (now, tz, window, expected) in cases {
            assert_eq!(after_quiet_hours(utc(now), tz, window), utc(expected), "{now} in {tz}");
        }
    }

    #[test]
    fn a_wake_up_time_skipped_by_daylight_saving_moves_to_the_next_hour() {
        // Berlin springs forward at 02:00 on 2026-03-29: 02:30 does not exist that day.
        let berlin: Tz = "Europe/Berlin".parse().expect("tz");
        let got = after_quiet_hours(utc("2026-03-28T23:30:00Z"), berlin, Some((hm(0, 0), hm(2, 30))));
        assert_eq!(got, utc("2026-03-29T01:30:00Z"), "03:30 CEST");
    }
}
