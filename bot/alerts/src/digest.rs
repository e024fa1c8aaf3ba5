//! Alerts from insight runs, and the daily digest that batches the quieter ones.
//!
//! Priorities decide delivery (seed 001): a P1 finding (a segment's win rate falling for real
//! and by more than 10 points, pipeline health under 65) goes out at once, like a critical deal;
//! a P2 finding (a rep's performance shift, a data-quality drop) waits in the outbox on the
//! virtual channel `digest` and travels inside the recipient's next daily digest, which also
//! lists their highest-risk deals. P3 findings (high-performing segments) belong in the weekly
//! summary (Monday 08:00 in each admin's and manager's time zone), not alerts of their own. A recipient who dismissed a kind three
//! times in a row gets it in the digest too, and a snooze silences a subject for its recipient.

use chrono::{DateTime, Datelike, Duration, NaiveTime, Utc};
use chrono_tz::Tz;
use engine::alerts::{AlertKind, InsightAlert, Priority};
use engine::domain::RiskCategory;

use super::routing::{Recipient, Routing};
use super::{Alert, AlertQuery, AlertState};
use store::{HighRiskQuery, Scope, SortBy, Store, StoreError, TenantId};

/// The outbox channel of alerts that wait for the recipient's daily digest.
pub const DIGEST: &str = store::DIGEST_CHANNEL;

/// How long after a recipient's digest time a late scheduler may still send it.
const DIGEST_WINDOW_HOURS: i64 = 2;

/// The local time at `now` in `tz` when it is within two hours after `at` (on `weekday`, if
/// given): a recipient's digest or summary is due.
fn local_time_has_come(
    now: DateTime<Utc>,
    tz: Tz,
    at: NaiveTime,
    weekday: Option<chrono::Weekday>,
) -> Option<DateTime<Tz>> {
    let local = now.with_timezone(&tz);
    let since = local.time().signed_duration_since(at);
    let on_day = weekday.is_none_or(|d| local.weekday() == d);
    (on_day && since >= Duration::zero() && since < Duration::hours(DIGEST_WINDOW_HOURS)).then_some(local)
}

/// Who is due a weekly summary at `now`: admins and managers whose Monday 08:00 (in their own
/// time zone) came within the last two hours, and the summary's shared destinations whose
/// Monday 08:00 (in the destination's time zone) did.
pub fn weekly_recipients(routing: &Routing, now: DateTime<Utc>) -> Vec<Recipient<'_>> {
    let eight = NaiveTime::from_hms_opt(8, 0, 0).unwrap_or(NaiveTime::MIN);
    let due = |tz: Tz| local_time_has_come(now, tz, eight, Some(chrono::Weekday::Mon)).is_some();
    let people = routing
        .users()
        .iter()
        .filter(|u| matches!(u.role, store::Role::Admin | store::Role::Manager))
        .filter(|u| due(u.time_zone.parse().unwrap_or(Tz::UTC)))
        .collect();
    routing
        .with_shared(AlertKind::WeeklySummary, people)
        .into_iter()
        .filter(|r| match r {
            Recipient::Person(_) => true,
            Recipient::Shared(t) => due(t.time_zone()),
        })
        .collect()
}

/// The weekly summaries for `recipients`, all carrying `facts` (the week's figures).
pub fn plan_weekly(
    recipients: &[Recipient<'_>],
    routing: &Routing,
    facts: &serde_json::Value,
    now: DateTime<Utc>,
) -> Vec<Alert> {
    let week = now.iso_week();
    let week_label = format!("{}-W{:02}", week.year(), week.week());
    let kind = AlertKind::WeeklySummary;
    recipients
        .iter()
        .filter_map(|&to| {
            let channel = match to {
                Recipient::Person(user) => routing.channels(user, kind).into_iter().next()?,
                Recipient::Shared(t) => t.channel.clone(),
            };
            let recipient = to.id();
            let mut payload = facts.clone();
            payload["recipient_name"] = to.name().into();
            payload["week"] = week_label.clone().into();
            let dedup_key = format!("weekly_summary:{recipient}:{week_label}");
            Some(Alert::now(kind, week_label.clone(), recipient, channel, dedup_key, payload, now))
        })
        .collect()
}

/// The alerts an insight run raises for its recipients.
pub fn plan_insights(found: &[InsightAlert], routing: &Routing, now: DateTime<Utc>) -> Vec<Alert> {
    plan_findings(found, routing, now, false)
}

/// Findings that cannot wait for the digest (a tenant's halted Salesforce sync): sent to their
/// recipients' channels at once (after quiet hours), one per finding, recipient and channel a
/// day.
pub fn plan_urgent(found: &[InsightAlert], routing: &Routing, now: DateTime<Utc>) -> Vec<Alert> {
    plan_findings(found, routing, now, true)
}

fn plan_findings(found: &[InsightAlert], routing: &Routing, now: DateTime<Utc>, urgent: bool) -> Vec<Alert> {
    let week = now.iso_week();
    let period = if urgent { now.date_naive().to_string() } else { format!("{}-W{:02}", week.year(), week.week()) };
    let mut out = Vec::new();
    for finding in found {
        if finding.kind.priority() == Priority::P3 {
            continue;
        }
        let people = routing.insight_recipients(finding.kind, finding.rep.as_deref());
        for to in routing.with_shared(finding.kind, people) {
            let recipient = to.id();
            if routing.feedback.snoozed(&recipient, finding.kind, &finding.subject, None, now) {
                continue;
            }
            let (channels, due_ms) = match to {
                Recipient::Person(user) if urgent => routing.immediate(user, finding.kind, now),
                _ => routing.delivery(to, finding.kind, now),
            };
            for channel in channels {
                let dedup_key = format!("{}:{}:{recipient}:{channel}:{period}", finding.kind.as_str(), finding.subject);
                let payload = serde_json::json!({ "finding": finding.facts, "recipient_name": to.name() });
                let alert = Alert::now(
                    finding.kind,
                    finding.subject.clone(),
                    recipient.clone(),
                    channel,
                    dedup_key,
                    payload,
                    now,
                );
                out.push(Alert { due_ms, ..alert });
            }
        }
    }
    out
}

/// A digest to raise, and the waiting alerts it carries.
#[derive(Debug, Clone)]
pub struct Digest {
    pub alert: Alert,
    pub bundled: Vec<String>,
}

/// The digests due at `now`: for every recipient whose digest time (in their time zone) came
/// within the last two hours, their highest-risk deals and the P2 alerts waiting for them.
/// Nobody gets an empty digest.
pub async fn plan_digests(
    store: &dyn Store,
    tenant: &TenantId,
    routing: &Routing,
    now: DateTime<Utc>,
) -> Result<Vec<Digest>, StoreError> {
    let mut digests = Vec::new();
    for user in routing.users() {
        let Some(settings) = routing.settings(&user.user_id).digest_for(user.role, &user.time_zone) else { continue };
        let tz: Tz = settings.timezone.parse().unwrap_or(Tz::UTC);
        let at = NaiveTime::parse_from_str(&settings.time, "%H:%M").unwrap_or(NaiveTime::MIN);
        let Some(local) = local_time_has_come(now, tz, at, None) else { continue };
        let scope = Scope::for_user(routing.users(), &user.user_id, user.role);
        let query = HighRiskQuery {
            categories: vec![RiskCategory::High, RiskCategory::Critical],
            owners: scope.owners(),
            sort_by: SortBy::RiskScore,
            descending: true,
            limit: u32::from(settings.max_deals),
            offset: 0,
        };
        let mut page = store.high_risk(tenant, &query).await?;
        page.deals.retain(|d| d.risk_score >= settings.min_risk_score);
        let waiting = AlertQuery {
            states: vec![AlertState::Pending],
            recipient: Some(user.user_id.clone()),
            ..AlertQuery::default()
        };
        let bundled: Vec<_> =
            store.alerts(tenant, &waiting).await?.into_iter().filter(|a| a.channel == DIGEST).collect();
        if page.deals.is_empty() && bundled.is_empty() {
            continue;
        }
        let Some(channel) = routing.channels(user, AlertKind::DailyDigest).into_iter().next() else { continue };
        let kind = AlertKind::DailyDigest;
        let date = local.date_naive();
        let alerts: Vec<serde_json::Value> = bundled
            .iter()
            .map(|a| {
                serde_json::json!({ "kind": a.kind, "subject": a.subject, "finding": a.payload["finding"], "deal": a.payload["deal"] })
            })
            .collect();
        let payload = serde_json::json!({
            "date": date,
            "weekday": date.format("%A").to_string(),
            "recipient_name": user.name,
            "deals": page.deals,
            "summary": {
                "total_count": page.total_count,
                "total_at_risk_revenue": page.total_at_risk_revenue,
                "average_risk_score": page.average_risk_score,
                "deals_by_category": page.deals_by_category,
            },
            "alerts": alerts,
        });
        digests.push(Digest {
            alert: Alert::now(
                kind,
                date.to_string(),
                user.user_id.clone(),
                channel,
                format!("daily_digest:{}:{date}", user.user_id),
                payload,
                now,
            ),
            bundled: bundled.into_iter().map(|a| a.alert_id).collect(),
        });
    }
    Ok(digests)
}
