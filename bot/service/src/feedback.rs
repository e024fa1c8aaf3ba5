//! Feedback on alerts and risk cards: the clicks (Useful, Not relevant, False alarm, Snooze)
//! from the REST API and every chat platform, checked, stored once, logged, and turned into the
//! tenant's tuned threshold.

use chrono::{DateTime, Utc};
use engine::asof::{Status, status};
use serde::Deserialize;
use store::{Role, Scope};

use crate::Services;
use crate::audit::change_log;
use crate::error::ServiceResult;

/// A click, as every way in delivers it: the action, why (for a false alarm), for how long (for
/// a snooze).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Click {
    pub action: alerts::feedback::Action,
    /// Why it was a false alarm (optional, at most 500 characters kept).
    pub reason: Option<String>,
    /// For snooze: 1d (default), 1w, or score (until the score moves by 10).
    pub snooze: Option<alerts::feedback::SnoozeFor>,
}

/// A click on an alert, as stored.
#[derive(Debug, Clone)]
pub struct Judged {
    pub alert: alerts::Alert,
    pub given: alerts::feedback::Feedback,
    /// False when this click was already recorded (a retry): nothing changed.
    pub recorded: bool,
    /// The tenant's threshold for the kind after the click, when feedback has tuned it.
    pub tuning: Option<alerts::feedback::Tuning>,
}

/// Records `actor`'s click on `alert_id` (from the REST API or a chat button): checks they may
/// judge it, stores it once, logs it and retunes the tenant's threshold. `None`: no such alert
/// for this actor (someone else's alert does not exist for them). An alert in a shared channel
/// belongs to the managers and admins who read the channel, and a click on it speaks for the
/// channel (a snooze silences the channel; the same alert is judged once); the audit log keeps
/// who clicked.
pub async fn give_feedback(
    state: &Services,
    tenant: &store::TenantId,
    actor: &str,
    role: Role,
    alert_id: &str,
    request: &Click,
) -> ServiceResult<Option<Judged>> {
    use crate::alerts::feedback::Action;
    use crate::alerts::routes::is_shared;
    let query = alerts::AlertQuery { alert_id: Some(alert_id.to_owned()), ..Default::default() };
    let Some(alert) =
        state.store.alerts(tenant, &query).await?.into_iter().next().filter(|a| {
            a.recipient == actor || role == Role::Admin || (is_shared(&a.recipient) && role == Role::Manager)
        })
    else {
        return Ok(None);
    };
    let now = state.now();
    let judge = if is_shared(&alert.recipient) { alert.recipient.as_str() } else { actor };
    let given = alerts::feedback::on_alert(&alert, judge, request.action, request.reason.clone(), request.snooze, now);
    let recorded = state.store.record_feedback(tenant, &given).await?;
    let mut tuning = None;
    if recorded {
        let details = serde_json::json!({ "action": given.action, "reason": given.reason });
        change_log(state, tenant, actor, "alert.feedback", Some(alert_id), Some(details)).await?;
        if alert.kind == engine::alerts::AlertKind::CriticalDeal && request.action != Action::Snooze {
            tuning = retune(state, tenant, actor, alert.kind, now).await?;
        }
    }
    Ok(Some(Judged { alert, given, recorded, tuning }))
}

/// Records `user`'s click on the risk card of `deal_id`: stored once like a click on an alert,
/// logged, and a judgement retunes the critical-deal threshold. Only a card the user could have
/// been shown counts: an open deal of theirs to see, judged at the score we give it now (a
/// button's value is the client's to change). `None`: not such a card.
pub async fn give_card_feedback(
    state: &Services,
    tenant: &store::TenantId,
    user: &store::User,
    deal_id: &str,
    request: &Click,
) -> ServiceResult<Option<(alerts::feedback::Feedback, bool, Option<alerts::feedback::Tuning>)>> {
    use crate::alerts::feedback::Action;
    let Some(engine) = state.cache.get(&state.store, tenant, state.now().date_naive()).await? else { return Ok(None) };
    let Some(&i) = engine.index.get(deal_id) else { return Ok(None) };
    let deal = &engine.dataset.deals[i];
    let owner = engine.dataset.schema.owner_column().and_then(|c| engine.dataset.cat_name(c, deal.cats[c]));
    let users = state.store.users(tenant).await?;
    let scope = Scope::for_user(&users, &user.user_id, user.role);
    if !scope.allows(owner) || status(deal, Some(engine.as_of)) != Status::Open {
        return Ok(None);
    }
    let Some(p_loss) = engine.open_risk(engine.as_of, &state.texts).map(|risk| risk[i]) else { return Ok(None) };
    let score = engine::domain::risk_score(p_loss);
    let (actor, now) = (user.user_id.as_str(), state.now());
    let given =
        alerts::feedback::on_card(deal_id, score, actor, request.action, request.reason.clone(), request.snooze, now);
    let recorded = state.store.record_feedback(tenant, &given).await?;
    let mut tuning = None;
    if recorded {
        let details =
            serde_json::json!({ "action": given.action, "reason": given.reason, "score": score, "on": "risk_card" });
        change_log(state, tenant, actor, "deal.feedback", Some(deal_id), Some(details)).await?;
        if request.action != Action::Snooze {
            tuning = retune(state, tenant, actor, engine::alerts::AlertKind::CriticalDeal, now).await?;
        }
    }
    Ok(Some((given, recorded, tuning)))
}

/// Recomputes the tenant's threshold for `kind` from its latest judgements, unless an admin
/// pinned it; a change is logged in the audit log with its reason.
pub async fn retune(
    state: &Services,
    tenant: &store::TenantId,
    actor: &str,
    kind: engine::alerts::AlertKind,
    now: DateTime<Utc>,
) -> ServiceResult<Option<alerts::feedback::Tuning>> {
    use crate::alerts::feedback::{Tuning, counts};
    let current = state.store.tunings(tenant).await?.into_iter().find(|t| t.kind == kind);
    if current.as_ref().is_some_and(|t| t.source == "admin") {
        return Ok(current);
    }
    let feedback = state.store.feedback(tenant, now - chrono::Duration::days(90)).await?;
    let base = engine::alerts::CriticalRule::default().threshold;
    let (threshold, reason) = engine::alerts::tuned_threshold(base, counts(&feedback, kind, 30));
    let before = current.as_ref().map_or(base, |t| t.threshold);
    if threshold == before {
        return Ok(current);
    }
    let tuned = (threshold != base).then(|| Tuning {
        kind,
        threshold,
        source: "feedback".into(),
        reason: reason.clone(),
        updated_at: now,
    });
    state.store.set_tuning(tenant, kind, tuned.as_ref()).await?;
    let details = serde_json::json!({ "from": before, "to": threshold, "source": "feedback", "reason": reason });
    change_log(state, tenant, actor, "alerts.tuning", Some(kind.as_str()), Some(details)).await?;
    Ok(tuned)
}
