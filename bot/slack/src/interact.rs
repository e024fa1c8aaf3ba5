//! `POST /slack/interactions`: button clicks (block actions) and modal submissions.
//!
//! - On alerts: Useful, Not relevant, Snooze (overflow: 1 day, 1 week, until the score moves),
//!   Mark false alarm (a modal asks why; the answer is stored with it), Create follow-up task.
//! - On risk cards: the same judgements about the deal's score, and the task.
//! - Pick-list buttons show that deal's card in place of the list; the home tab's button opens
//!   the settings modal.
//!
//! Every click is stored once (a click delivered twice has one effect) and the message it came
//! from is updated in place through its `response_url`: its buttons give way to a line saying
//! who did what ("🔕 Snoozed until Tue 09 Jun 09:00 by @maria").

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::workspace::{self, Workspace};
use super::{SORRY, open_modal, respond, settings_modal, views};
use crate::SlackApp;
use alerts::feedback;
use service::chat::actions::{self, Action, Clicker, Judge, Outcome, Verdict};
use service::feedback::Click;
use store::User;

#[derive(serde::Deserialize)]
struct InteractionForm {
    payload: String,
}

pub async fn interactions(State(state): State<SlackApp>, body: Bytes) -> Response {
    let Ok(form) = serde_urlencoded::from_bytes::<InteractionForm>(&body) else {
        return (StatusCode::BAD_REQUEST, "an interaction carries a payload field").into_response();
    };
    match serde_json::from_str(&form.payload) {
        Ok(raw) => interaction(&state, raw).await,
        Err(e) => (StatusCode::BAD_REQUEST, format!("the payload is not JSON: {e}")).into_response(),
    }
}

/// One interaction payload, from the HTTP path or a Socket Mode envelope: Slack's answer.
pub(super) async fn interaction(state: &SlackApp, raw: Value) -> Response {
    match raw["type"].as_str() {
        Some("block_actions") => {
            // Slack wants the acknowledgement within 3 s; answers go to the response_url.
            let work = {
                let state = state.clone();
                tokio::spawn(async move { block_actions(&state, &raw).await })
            };
            if tokio::time::timeout(state.slack.deadline, work).await.is_err() {
                tracing::info!("a Slack click is still being answered after the deadline");
            }
            StatusCode::OK.into_response()
        }
        Some("view_submission") => view_submission(state, &raw).await,
        // view_closed, shortcuts and the like: acknowledged, nothing to do.
        Some(_) => StatusCode::OK.into_response(),
        None => (StatusCode::BAD_REQUEST, "not a Slack interaction: no type").into_response(),
    }
}

/// The ids every interaction carries.
fn who(raw: &Value) -> (&str, &str) {
    let team = raw["team"]["id"].as_str().or_else(|| raw["user"]["team_id"].as_str()).unwrap_or_default();
    (team, raw["user"]["id"].as_str().unwrap_or_default())
}

/// Where a click came from: the response URL (none on the home tab) and the modal trigger.
struct Origin<'a> {
    raw: &'a Value,
    url: Option<String>,
    trigger: Option<&'a str>,
    slack_user: &'a str,
}

async fn block_actions(state: &SlackApp, raw: &Value) {
    let (team, slack_user) = who(raw);
    let url = raw["response_url"].as_str().map(str::to_owned);
    let origin = Origin { raw, url, trigger: raw["trigger_id"].as_str(), slack_user };
    let (ws, user, scope) = match workspace::identify(state, team, slack_user).await {
        Ok(who) => who,
        Err(unknown) => {
            if let Some(url) = &origin.url {
                respond(state, url, json!({ "text": unknown.message() }), false).await;
            }
            return;
        }
    };
    let clicker = Clicker { tenant: &ws.tenant, user: &user, scope, via: "slack" };
    for action in raw["actions"].as_array().into_iter().flatten() {
        let id = action["action_id"].as_str().unwrap_or_default();
        if id == "share_answer" {
            let question = action["value"].as_str().unwrap_or_default();
            if let Err(e) = share(state, &ws, &clicker, question, &origin).await {
                tracing::error!(error = ?e, "sharing an answer in a Slack channel");
                if let Some(url) = &origin.url {
                    respond(state, url, json!({ "text": SORRY }), false).await;
                }
            }
            continue;
        }
        let choice = action["selected_option"]["value"].as_str();
        let Some(click) = Action::read(id, action["value"].as_str(), choice) else { continue };
        // A modal can ask why only with a trigger and a bot token to open it with.
        let can_ask = ws.web.is_some() && origin.trigger.is_some();
        let message = raw["container"]["message_ts"].as_str().or(raw["actions"][0]["action_ts"].as_str());
        let task_key = |deal: &str| format!("slack:{}:{slack_user}:{deal}:{}", ws.team_id, message.unwrap_or_default());
        let result = match actions::act(state, &clicker, click, task_key, can_ask).await {
            Ok(outcome) => answer_click(state, &ws, &user, outcome, &origin).await,
            Err(e) => Err(e),
        };
        if let Err(e) = result {
            tracing::error!(error = ?e, action = %id, "answering a Slack click");
            if let Some(url) = &origin.url {
                respond(state, url, json!({ "text": SORRY }), false).await;
            }
        }
    }
}

/// "Share in channel" under an answer only its asker saw: the question is answered again with
/// the clicker's access (what the button says is not trusted) and posted in the channel, in the
/// thread it was asked in, naming who shared it; the private copy goes.
async fn share(
    state: &SlackApp,
    ws: &Workspace,
    clicker: &Clicker<'_>,
    question: &str,
    origin: &Origin<'_>,
) -> anyhow::Result<()> {
    let (Some(web), Some(channel)) = (ws.web.as_ref(), origin.raw["container"]["channel_id"].as_str()) else {
        return Ok(());
    };
    let today = state.now().date_naive();
    let asked = service::chat::ask::ask(
        state,
        clicker.tenant,
        clicker.user,
        clicker.scope.clone(),
        question,
        today,
        None,
        "slack",
    )
    .await?;
    let mut message = state.slack.render(&asked.reply)?;
    if let Some(blocks) = message["blocks"].as_array_mut() {
        let by = format!("Shared by <@{}> · asked: {}", origin.slack_user, alerts::templates::mrkdwn(question));
        blocks.insert(0, json!({ "type": "context", "elements": [{ "type": "mrkdwn", "text": by }] }));
    }
    let blocks: Vec<slack_morphism::prelude::SlackBlock> = serde_json::from_value(message["blocks"].clone())?;
    let content = slack_morphism::prelude::SlackMessageContent::new()
        .with_text(message["text"].as_str().unwrap_or("Dealwatch").to_owned())
        .with_blocks(blocks);
    let mut request = slack_morphism::prelude::SlackApiChatPostMessageRequest::new(channel.to_owned().into(), content);
    if let Some(thread) = origin.raw["container"]["thread_ts"].as_str() {
        request = request.with_thread_ts(thread.to_owned().into());
    }
    web.client.open_session(&web.token).chat_post_message(&request).await?;
    if let Some(url) = &origin.url {
        respond(state, url, json!({ "delete_original": true }), false).await;
    }
    Ok(())
}

/// Shows what came of a click: a card or answer in place of the message, the message judged,
/// a word to the user, or a modal.
async fn answer_click(
    state: &SlackApp,
    ws: &Workspace,
    user: &User,
    outcome: Outcome,
    origin: &Origin<'_>,
) -> anyhow::Result<()> {
    match outcome {
        Outcome::Replace(reply) => {
            if let Some(url) = &origin.url {
                respond(state, url, state.slack.render(&reply)?, true).await;
            }
        }
        Outcome::Judged(verdict) => {
            if let Some(url) = &origin.url {
                respond(state, url, judged_message(origin.raw, &verdict, user, origin.slack_user), true).await;
            }
        }
        Outcome::Say(text) => {
            if let Some(url) = &origin.url {
                respond(state, url, json!({ "text": text }), false).await;
            }
        }
        Outcome::Settings => open_settings(state, ws, user, origin).await?,
        Outcome::AskWhy { on, subject } => ask_why(state, ws, user, on, &subject, origin).await?,
    }
    Ok(())
}

async fn open_settings(state: &SlackApp, ws: &Workspace, user: &User, origin: &Origin<'_>) -> anyhow::Result<()> {
    let (Some(web), Some(trigger)) = (ws.web.as_ref(), origin.trigger) else { return Ok(()) };
    let from = if origin.raw["view"]["type"] == "home" { "home" } else { "command" };
    let view = settings_modal(state, ws, user, from).await?;
    if let Err(e) = open_modal(web, trigger, view).await {
        tracing::warn!(error = %e, "the settings modal did not open");
    }
    Ok(())
}

/// The message a click came from without its buttons, and a line saying who did what.
fn judged_message(raw: &Value, verdict: &Verdict, user: &User, slack_user: &str) -> Value {
    let line = verdict.line(&user.time_zone, &format!("<@{slack_user}>"));
    let mut blocks: Vec<Value> = raw["message"]["blocks"]
        .as_array()
        .map(|b| b.iter().filter(|b| b["type"] != "actions").cloned().collect())
        .unwrap_or_default();
    // Only the judgement buttons go; a card keeps its Open in CRM and task buttons.
    if verdict.on_card()
        && let Some(actions) =
            raw["message"]["blocks"].as_array().and_then(|b| b.iter().find(|b| b["type"] == "actions"))
    {
        let kept: Vec<Value> = actions["elements"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|e| matches!(e["action_id"].as_str(), Some("open_deal" | "task")))
            .cloned()
            .collect();
        if !kept.is_empty() {
            let mut actions = actions.clone();
            actions["elements"] = Value::Array(kept);
            blocks.push(actions);
        }
    }
    blocks.push(json!({ "type": "context", "elements": [{ "type": "mrkdwn", "text": line }] }));
    let text = raw["message"]["text"].as_str().unwrap_or("Dealwatch");
    json!({ "text": text, "blocks": blocks })
}

/// What the false-alarm modal carries to its submission.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct WhyMetadata {
    judge: Judge,
    /// The message to update once answered (its response URL).
    url: Option<String>,
}

/// Mark false alarm: a modal asks why. When it does not open (Slack refused or is down), the
/// false alarm is stored without a reason, so the click still counts.
async fn ask_why(
    state: &SlackApp,
    ws: &Workspace,
    user: &User,
    on: Judge,
    subject: &str,
    origin: &Origin<'_>,
) -> anyhow::Result<()> {
    if let (Some(web), Some(trigger)) = (ws.web.as_ref(), origin.trigger) {
        let metadata = WhyMetadata { judge: on.clone(), url: origin.url.clone() };
        let view = state.slack.false_alarm_modal(subject, &serde_json::to_string(&metadata)?)?;
        // The original message is kept for the submission, which carries only the modal.
        remember_message(state, &metadata, origin.raw).await;
        match open_modal(web, trigger, view).await {
            Ok(()) => return Ok(()),
            Err(e) => {
                if let Some(url) = &metadata.url {
                    state.slack.directory.take_message(url).await;
                }
                tracing::warn!(error = %e, "the false-alarm modal did not open; storing the click without a reason");
            }
        }
    }
    let request = Click { action: feedback::Action::FalseAlarm, reason: None, snooze: None };
    let verdict = actions::judge(state, &ws.tenant, user, &on, &request).await?;
    let outcome = verdict.map_or_else(|| Outcome::Say(actions::NOT_YOURS.into()), Outcome::Judged);
    Box::pin(answer_click(state, ws, user, outcome, origin)).await
}

/// Messages waiting for a false-alarm reason, by response URL: a submission carries only the
/// modal, so the message is kept here (in memory, an hour at most) to be rebuilt with the verdict.
async fn remember_message(state: &SlackApp, metadata: &WhyMetadata, raw: &Value) {
    if let Some(url) = &metadata.url {
        state.slack.directory.keep_message(url, raw["message"].clone()).await;
    }
}

/// A modal's Submit: the false-alarm reason, or the settings.
async fn view_submission(state: &SlackApp, raw: &Value) -> Response {
    let (team, slack_user) = who(raw);
    let (ws, user, _) = match workspace::identify(state, team, slack_user).await {
        Ok(who) => who,
        Err(unknown) => return errors("reason", unknown.message()),
    };
    let view = &raw["view"];
    let result = match view["callback_id"].as_str() {
        Some("false_alarm") => why_submitted(state, &ws, &user, slack_user, view).await,
        Some("settings") => return settings_submitted(state, &ws, &user, slack_user, view).await,
        other => {
            tracing::debug!(callback = ?other, "a modal we did not open");
            Ok(())
        }
    };
    match result {
        // An empty 200 closes the modal.
        Ok(()) => StatusCode::OK.into_response(),
        Err(e) => {
            tracing::error!(error = ?e, "a Slack modal submission");
            errors("reason", SORRY)
        }
    }
}

/// Slack shows these under the named blocks and keeps the modal open.
fn errors(block: &str, message: &str) -> Response {
    axum::Json(json!({ "response_action": "errors", "errors": { block: message } })).into_response()
}

async fn why_submitted(
    state: &SlackApp,
    ws: &Workspace,
    user: &User,
    slack_user: &str,
    view: &Value,
) -> anyhow::Result<()> {
    let metadata: WhyMetadata = serde_json::from_str(view["private_metadata"].as_str().unwrap_or_default())?;
    let form = views::Submitted::new(view);
    let reason = actions::reason(form.radio("reason"), form.text("details"));
    let request = Click { action: feedback::Action::FalseAlarm, reason, snooze: None };
    let verdict = actions::judge(state, &ws.tenant, user, &metadata.judge, &request).await?;
    let Some(url) = metadata.url.as_deref() else { return Ok(()) };
    let Some(verdict) = verdict else {
        respond(state, url, json!({ "text": actions::NOT_YOURS }), false).await;
        return Ok(());
    };
    let message = state.slack.directory.take_message(url).await.unwrap_or(Value::Null);
    let raw = json!({ "message": message });
    respond(state, url, judged_message(&raw, &verdict, user, slack_user), true).await;
    Ok(())
}

async fn settings_submitted(state: &SlackApp, ws: &Workspace, user: &User, slack_user: &str, view: &Value) -> Response {
    let current = match state.store.alert_settings(&ws.tenant, &user.user_id).await {
        Ok(s) => alerts::settings::AlertSettings::from_stored(s),
        Err(e) => {
            tracing::error!(error = %e, "reading settings");
            return errors("timezone", SORRY);
        }
    };
    let update = match views::settings_from(view, &current, user) {
        Ok(u) => u,
        Err(e) => return errors(views::block_of(&e.field), &e.message),
    };
    if let Err(e) = update.validate() {
        return errors(views::block_of(&e.field), &e.message);
    }
    if let Err(e) = service::preferences::update_settings(state, &ws.tenant, &user.user_id, update).await {
        tracing::error!(error = ?e, "saving settings from Slack");
        return errors("timezone", SORRY);
    }
    // Opened from the home tab: show the new settings there.
    if view["private_metadata"] == "home" {
        let (state, ws, slack_user) = (state.clone(), ws.clone(), slack_user.to_owned());
        tokio::spawn(async move {
            if let Err(e) = super::events::publish_home(&state, &ws, &slack_user).await {
                tracing::warn!(error = ?e, "refreshing the home tab after a settings change");
            }
        });
    }
    StatusCode::OK.into_response()
}
