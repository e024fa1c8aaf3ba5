//! `POST /slack/events`: mentions and direct messages answered as questions (privately, with a
//! Share button), the home tab published, and failures returned as 500s so that Slack retries.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use slack_morphism::prelude::*;

use super::workspace::{self, Workspace};
use super::{views, web_failed};
use crate::SlackApp;
use alerts::channels::SendError;
use store::{IdempotencyState, TenantId, User};

pub(super) async fn events(State(state): State<SlackApp>, body: Bytes) -> Response {
    match serde_json::from_slice(&body) {
        Ok(event) => push_event(&state, event).await,
        Err(e) => (StatusCode::BAD_REQUEST, format!("not a Slack event: {e}")).into_response(),
    }
}

/// One pushed event, from the HTTP path or a Socket Mode envelope: Slack's answer (a 500 asks
/// Slack to deliver it again).
pub(super) async fn push_event(state: &SlackApp, event: SlackPushEvent) -> Response {
    let callback = match event {
        SlackPushEvent::UrlVerification(v) => return axum::Json(json!({ "challenge": v.challenge })).into_response(),
        SlackPushEvent::AppRateLimited(r) => {
            tracing::warn!(?r, "Slack is rate-limiting our event subscriptions");
            return StatusCode::OK.into_response();
        }
        SlackPushEvent::EventCallback(c) => c,
    };
    let ws = match workspace::workspace(state, callback.team_id.as_ref()).await {
        Ok(ws) => ws,
        Err(workspace::Unknown::Store) => return StatusCode::INTERNAL_SERVER_ERROR.into_response(),
        // Not ours: acknowledged, or Slack retries it.
        Err(_) => return StatusCode::OK.into_response(),
    };
    let tenant = ws.tenant.clone();
    // Slack retries an event it thinks we missed: the store remembers which ones we handled,
    // across restarts and replicas.
    let key = format!("slack-event:{}", callback.event_id);
    // An event whose handling died with its process is handled again by Slack's next retry.
    let lapse = chrono::Duration::seconds(30);
    match state.store.idempotency_begin(&tenant, "slack", &key, "", state.now(), lapse).await {
        Ok(IdempotencyState::New) => {}
        Ok(_) => {
            tracing::debug!(event_id = %callback.event_id, "a Slack event seen before");
            metrics::counter!("slack_events_duplicate_total").increment(1);
            return StatusCode::OK.into_response();
        }
        Err(e) => {
            tracing::error!(error = %e, "recording a Slack event");
            return StatusCode::INTERNAL_SERVER_ERROR.into_response();
        }
    }
    match handle_event(state, &ws, callback.event).await {
        Ok(()) => {
            if let Err(e) =
                state.store.idempotency_finish(&tenant, "slack", &key, 200, &json!({ "handled": true })).await
            {
                tracing::error!(error = %e, "recording a handled Slack event");
            }
            StatusCode::OK.into_response()
        }
        // Slack is busy or down: forget the event and answer 500, so Slack's retry (up to three,
        // over an hour) tries again.
        Err(EventError::Transient(e)) => {
            tracing::warn!(error = %e, event_id = %callback.event_id, "a Slack event failed for now; Slack will retry it");
            if let Err(e) = state.store.idempotency_abandon(&tenant, "slack", &key).await {
                tracing::error!(error = %e, "forgetting a failed Slack event");
            }
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
        // A retry would fail the same way: handled, logged.
        Err(EventError::Permanent(e)) => {
            tracing::error!(error = ?e, event_id = %callback.event_id, "a Slack event could not be handled");
            let body = json!({ "handled": false, "error": e.to_string() });
            if let Err(e) = state.store.idempotency_finish(&tenant, "slack", &key, 200, &body).await {
                tracing::error!(error = %e, "recording a failed Slack event");
            }
            StatusCode::OK.into_response()
        }
    }
}

#[derive(Debug)]
pub(super) enum EventError {
    /// Worth Slack's retry: its Web API answered 429 or 5xx, or the store failed.
    Transient(anyhow::Error),
    Permanent(anyhow::Error),
}

impl From<SendError> for EventError {
    fn from(e: SendError) -> Self {
        match e {
            SendError::Transient { .. } => EventError::Transient(e.into()),
            SendError::Permanent(_) => EventError::Permanent(e.into()),
        }
    }
}

impl From<anyhow::Error> for EventError {
    fn from(e: anyhow::Error) -> Self {
        EventError::Permanent(e)
    }
}

/// Mentions and direct messages go to the question path; opening the app's home tab publishes
/// it. An answer is the asker's, seen with their access: in a direct message it is the reply;
/// for a mention in a channel it is shown to the asker only (`chat.postEphemeral`, in the
/// thread), with a Share button that posts it for the channel if they choose.
pub(super) async fn handle_event(
    state: &SlackApp,
    ws: &Workspace,
    event: SlackEventCallbackBody,
) -> Result<(), EventError> {
    let (channel, thread, user, text, direct) = match event {
        SlackEventCallbackBody::AppMention(m) => {
            // A direct message's channel id starts with D; a mention there is private already.
            let direct = m.channel.0.starts_with('D');
            (m.channel, m.origin.thread_ts.unwrap_or(m.origin.ts), m.user.0, m.content.text.unwrap_or_default(), direct)
        }
        SlackEventCallbackBody::Message(m)
            if m.sender.bot_id.is_none()
                && m.subtype.is_none()
                && m.origin.channel_type.as_ref().is_some_and(|t| t.0 == "im") =>
        {
            let (Some(channel), Some(user)) = (m.origin.channel, m.sender.user) else { return Ok(()) };
            let text = m.content.and_then(|c| c.text).unwrap_or_default();
            (channel, m.origin.thread_ts.unwrap_or(m.origin.ts), user.0, text, true)
        }
        SlackEventCallbackBody::AppHomeOpened(h) if h.tab.as_deref().is_none_or(|t| t == "home") => {
            return publish_home(state, ws, h.user.as_ref()).await;
        }
        other => {
            tracing::debug!(tenant = %ws.tenant, event = ?std::mem::discriminant(&other), "a Slack event we do not act on");
            return Ok(());
        }
    };
    let Some(web) = &ws.web else {
        tracing::warn!("a Slack mention, but no bot token to answer with");
        return Ok(());
    };
    let question = without_mentions(&text);
    let mut message = match workspace::identify_in(state, ws.clone(), &user).await {
        Ok((_, person, scope)) => {
            let today = state.now().date_naive();
            let asked = service::chat::ask::ask(state, &ws.tenant, &person, scope, &question, today, None, "slack")
                .await
                .map_err(EventError::Transient)?;
            state.slack.render(&asked.reply)?
        }
        Err(workspace::Unknown::Store) => return Err(EventError::Transient(anyhow::anyhow!("the store failed"))),
        Err(unknown) => json!({ "text": unknown.message(), "blocks": [
            { "type": "section", "text": { "type": "mrkdwn", "text": unknown.message() } }
        ] }),
    };
    if !direct {
        offer_share(&mut message, &question);
    }
    let blocks: Vec<SlackBlock> = serde_json::from_value(message["blocks"].clone()).map_err(anyhow::Error::from)?;
    let content = SlackMessageContent::new()
        .with_text(message["text"].as_str().unwrap_or("Dealwatch").to_owned())
        .with_blocks(blocks);
    let session = web.client.open_session(&web.token);
    if direct {
        let request = SlackApiChatPostMessageRequest::new(channel, content).with_thread_ts(thread);
        session.chat_post_message(&request).await.map_err(|e| web_failed("chat.postMessage", e))?;
    } else {
        let request = SlackApiChatPostEphemeralRequest::new(channel, user.into(), content).with_thread_ts(thread);
        session.chat_post_ephemeral(&request).await.map_err(|e| web_failed("chat.postEphemeral", e))?;
    }
    Ok(())
}

/// The longest question a Share button carries (a button's value holds 2,000 characters).
const SHARE_LIMIT: usize = 1900;

/// Whether `tenant`'s alerts may go to a Slack channel: they are posted with `[slack] bot_token`,
/// whose workspace (`auth.test`, asked once) must be one of the tenant's.
pub async fn owns_channel(state: &SlackApp, tenant: &TenantId) -> Result<(), String> {
    let Some(web) = state.slack.config_web() else {
        return Err("Slack alerts are not configured here ([slack] bot_token)".into());
    };
    let team = match state.slack.token_team.get() {
        Some(team) => team.clone(),
        None => {
            let answer = web
                .client
                .open_session(&web.token)
                .auth_test()
                .await
                .map_err(|e| format!("Slack did not say which workspace the bot is in ({e}); try again"))?;
            let team = answer.team_id.to_string();
            let _ = state.slack.token_team.set(team.clone());
            team
        }
    };
    match state.slack.configured(&team) {
        Some(owner) if owner == tenant => Ok(()),
        _ => Err(format!(
            "Slack alerts are posted in workspace {team}, which is not connected to this tenant ([slack] workspaces)"
        )),
    }
}

/// Adds "Share in channel" under an answer shown to its asker only: the button carries the
/// question, and a click answers it again with the clicker's access and posts that.
fn offer_share(message: &mut Value, question: &str) {
    if question.chars().count() > SHARE_LIMIT {
        return;
    }
    let note = json!({ "type": "context", "elements": [{ "type": "mrkdwn",
        "text": "Only you can see this answer: it is from the deals you have access to." }] });
    let share = json!({ "type": "actions", "block_id": "share", "elements": [{ "type": "button",
        "text": { "type": "plain_text", "text": "Share in channel" }, "action_id": "share_answer", "value": question }] });
    if let Some(blocks) = message["blocks"].as_array_mut() {
        // Slack takes at most 50 blocks in a message.
        if blocks.len() <= 48 {
            blocks.push(note);
            blocks.push(share);
        }
    }
}

/// A message's text without the `<@U123>` mentions Slack writes into it.
fn without_mentions(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("<@") {
        out.push_str(&rest[..start]);
        match rest[start..].find('>') {
            Some(end) => rest = &rest[start + end + 1..],
            None => {
                rest = &rest[start..];
                break;
            }
        }
    }
    out.push_str(rest);
    out.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Publishes `slack_user`'s home tab: their open deals by risk, their alerts of the last week,
/// what they snoozed, and a button to their settings.
pub(super) async fn publish_home(state: &SlackApp, ws: &Workspace, slack_user: &str) -> Result<(), EventError> {
    let Some(web) = &ws.web else { return Ok(()) };
    let view = match workspace::identify_in(state, ws.clone(), slack_user).await {
        Ok((_, user, scope)) => home_view(state, &ws.tenant, &user, &scope).await.map_err(EventError::Transient)?,
        Err(workspace::Unknown::Store) => return Err(EventError::Transient(anyhow::anyhow!("the store failed"))),
        Err(unknown) => json!({ "type": "home", "blocks": [
            { "type": "section", "text": { "type": "mrkdwn", "text": unknown.message() } }
        ] }),
    };
    let view: SlackView = serde_json::from_value(view).map_err(anyhow::Error::from)?;
    let request = SlackApiViewsPublishRequest::new(SlackUserId(slack_user.to_owned()), view);
    web.client.open_session(&web.token).views_publish(&request).await.map_err(|e| web_failed("views.publish", e))?;
    metrics::counter!("slack_home_published_total").increment(1);
    Ok(())
}

/// Open deals on the home tab.
const HOME_DEALS: usize = 10;

async fn home_view(
    state: &SlackApp,
    tenant: &TenantId,
    user: &User,
    scope: &service::tenants::Scope,
) -> anyhow::Result<Value> {
    let now = state.now();
    // The user's own deals: a rep's, or a manager's team's; an admin sees the riskiest overall.
    let board = state.cache.board(&state.store, tenant).await.map_err(|e| e.into_anyhow().context("reading scores"))?;
    let mine: Vec<_> = board.rows.iter().filter(|r| scope.allows(r.rep_id.as_deref())).collect();
    let deals: Vec<views::HomeDeal> = mine
        .iter()
        .take(HOME_DEALS)
        .map(|r| views::HomeDeal {
            deal_id: r.deal_id.clone(),
            company: r.company.clone(),
            risk_score: r.risk_score,
            risk_category: r.risk_category.as_str().to_owned(),
            amount: r.amount,
            url: state.slack.deal_link(&r.deal_id),
        })
        .collect();
    let as_of = board
        .rows
        .iter()
        .filter_map(|r| r.scored_at)
        .max()
        .map_or_else(|| "-".to_owned(), |d| views::local(d, &user.time_zone));
    let query = alerts::AlertQuery { recipient: Some(user.user_id.clone()), limit: Some(50), ..Default::default() };
    let week_ago = now - chrono::Duration::days(7);
    let alerts: Vec<views::HomeLine> = state
        .store
        .alerts(tenant, &query)
        .await?
        .into_iter()
        .filter(|a| a.created_at >= week_ago && a.kind != engine::alerts::AlertKind::DailyDigest)
        .take(10)
        .map(|a| views::HomeLine {
            kind: views::kind_label(a.kind),
            subject: a.payload.pointer("/deal/company").and_then(Value::as_str).unwrap_or(&a.subject).to_owned(),
            score: a.score,
            when: views::local(a.created_at, &user.time_zone),
            until: String::new(),
        })
        .collect();
    let snoozes: Vec<views::HomeLine> = state
        .store
        .feedback(tenant, now - chrono::Duration::days(8))
        .await?
        .into_iter()
        .filter(|f| f.user_id == user.user_id && alerts::feedback::Silences::silences(f, f.snooze_score, now))
        .map(|f| views::HomeLine {
            kind: views::kind_label(f.kind),
            subject: f.subject.clone(),
            score: f.snooze_score,
            when: views::local(f.created_at, &user.time_zone),
            until: match (f.snooze_until_ms.and_then(chrono::DateTime::from_timestamp_millis), f.snooze_score) {
                (Some(until), _) => format!("until {}", views::local(until, &user.time_zone)),
                (None, Some(score)) => format!("until the score moves 10 points from {score}"),
                (None, None) => String::new(),
            },
        })
        .collect();
    let stored = state.store.alert_settings(tenant, &user.user_id).await?;
    let settings = alerts::settings::AlertSettings::from_stored(stored);
    let muted: Vec<String> = settings.muted.iter().flatten().map(|&k| views::kind_label(k)).collect();
    state.slack.home(user, &deals, mine.len(), &alerts, &snoozes, &muted, &as_of)
}
