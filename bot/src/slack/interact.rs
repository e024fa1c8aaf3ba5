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
use chrono::Utc;
use serde_json::{Value, json};

use super::workspace::{self, Workspace};
use super::{SORRY, open_modal, respond, settings_modal, views};
use crate::alerts::feedback::{Action, Feedback, SnoozeFor};
use crate::chat::Reply;
use crate::server::AppState;
use crate::server::api::FeedbackRequest;
use crate::server::tenants::Scope;
use crate::store::{FollowUpTask, User};

#[derive(serde::Deserialize)]
struct InteractionForm {
    payload: String,
}

pub async fn interactions(State(state): State<AppState>, body: Bytes) -> Response {
    let Ok(form) = serde_urlencoded::from_bytes::<InteractionForm>(&body) else {
        return (StatusCode::BAD_REQUEST, "an interaction carries a payload field").into_response();
    };
    match serde_json::from_str(&form.payload) {
        Ok(raw) => interaction(&state, raw).await,
        Err(e) => (StatusCode::BAD_REQUEST, format!("the payload is not JSON: {e}")).into_response(),
    }
}

/// One interaction payload, from the HTTP path or a Socket Mode envelope: Slack's answer.
pub(super) async fn interaction(state: &AppState, raw: Value) -> Response {
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

/// What a click on a deal's card or alert is about: (deal, its score then).
fn card_value(value: &str) -> Option<(&str, u8)> {
    let (deal, score) = value.split_once('|')?;
    Some((deal, score.split('|').next()?.parse().ok()?))
}

fn snooze_length(s: &str) -> SnoozeFor {
    match s {
        "1w" => SnoozeFor::Week,
        "score" => SnoozeFor::ScoreChange,
        _ => SnoozeFor::Day,
    }
}

/// A click, as what it asks for.
#[derive(Debug, Clone, PartialEq)]
enum Click {
    Pick(String),
    OpenSettings,
    Task(String),
    /// A judgement of an alert; `FalseAlarm` opens the reason modal first.
    Alert(String, FeedbackRequest),
    /// A judgement of a deal's risk card (deal, score).
    Card(String, u8, FeedbackRequest),
    /// An ask-back button: answer the question (the value) with this intent.
    Ask(engine::question::Intent, String),
}

/// Reads a click: its action id, its value and the chosen option of an overflow.
fn click(action_id: &str, value: Option<&str>, choice: Option<&str>) -> Option<Click> {
    let plain = |action| FeedbackRequest { action, reason: None, snooze: None };
    let snooze =
        |length: &str| FeedbackRequest { action: Action::Snooze, reason: None, snooze: Some(snooze_length(length)) };
    if let Some(deal) = action_id.strip_prefix("pick:") {
        return Some(Click::Pick(deal.to_owned()));
    }
    if let Some(intent) = action_id.strip_prefix("ask:") {
        return Some(Click::Ask(engine::question::Intent::parse(intent)?, value?.to_owned()));
    }
    Some(match action_id {
        "open_settings" => Click::OpenSettings,
        "task" => Click::Task(value?.to_owned()),
        "useful" => Click::Alert(value?.to_owned(), plain(Action::Useful)),
        "not_relevant" => Click::Alert(value?.to_owned(), plain(Action::NotRelevant)),
        "false_alarm" => Click::Alert(value?.to_owned(), plain(Action::FalseAlarm)),
        "snooze" => {
            let (alert, length) = choice?.split_once('|')?;
            Click::Alert(alert.to_owned(), snooze(length))
        }
        "card_useful" | "card_false_alarm" => {
            let (deal, score) = card_value(value?)?;
            let action = if action_id == "card_useful" { Action::Useful } else { Action::FalseAlarm };
            Click::Card(deal.to_owned(), score, plain(action))
        }
        "card_snooze" => {
            let choice = choice?;
            let (deal, score) = card_value(choice)?;
            Click::Card(deal.to_owned(), score, snooze(choice.rsplit('|').next()?))
        }
        _ => return None,
    })
}

/// Where a click came from: the response URL (none on the home tab) and the modal trigger.
struct Origin<'a> {
    raw: &'a Value,
    url: Option<String>,
    trigger: Option<&'a str>,
    slack_user: &'a str,
}

async fn block_actions(state: &AppState, raw: &Value) {
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
    for action in raw["actions"].as_array().into_iter().flatten() {
        let id = action["action_id"].as_str().unwrap_or_default();
        let choice = action["selected_option"]["value"].as_str();
        let Some(click) = click(id, action["value"].as_str(), choice) else { continue };
        let result = match click {
            Click::Pick(deal) => pick(state, &ws, &user, scope.clone(), &deal, &origin).await,
            Click::Ask(intent, question) => {
                answer_as(state, &ws, &user, scope.clone(), intent, &question, &origin).await
            }
            Click::OpenSettings => open_settings(state, &ws, &user, &origin).await,
            Click::Task(deal) => task(state, &ws, &user, &scope, &deal, &origin).await,
            Click::Alert(alert, request) if request.action == Action::FalseAlarm => {
                ask_why(state, &ws, &user, Judge::Alert(alert), request, &origin).await
            }
            Click::Alert(alert, request) => judge(state, &ws, &user, Judge::Alert(alert), request, &origin).await,
            Click::Card(deal, score, request) if request.action == Action::FalseAlarm => {
                ask_why(state, &ws, &user, Judge::Card(deal, score), request, &origin).await
            }
            Click::Card(deal, score, request) => {
                judge(state, &ws, &user, Judge::Card(deal, score), request, &origin).await
            }
        };
        if let Err(e) = result {
            tracing::error!(error = ?e, action = %id, "answering a Slack click");
            if let Some(url) = &origin.url {
                respond(state, url, json!({ "text": SORRY }), false).await;
            }
        }
    }
}

/// A pick-list (or pipeline) button: that deal's card replaces the list.
async fn pick(
    state: &AppState,
    ws: &Workspace,
    user: &User,
    scope: Scope,
    deal: &str,
    origin: &Origin<'_>,
) -> anyhow::Result<()> {
    let Some(url) = &origin.url else { return Ok(()) };
    let command = crate::chat::command::Command::DealRisk { query: deal.to_owned() };
    let reply = crate::chat::answer(state, &ws.tenant, user, scope, command, "slack").await?;
    respond(state, url, state.slack.render(&reply)?, true).await;
    Ok(())
}

/// An ask-back button: the question answered with the reading picked, in place of the buttons.
async fn answer_as(
    state: &AppState,
    ws: &Workspace,
    user: &User,
    scope: Scope,
    intent: engine::question::Intent,
    question: &str,
    origin: &Origin<'_>,
) -> anyhow::Result<()> {
    let Some(url) = &origin.url else { return Ok(()) };
    let today = Utc::now().date_naive();
    let asked = crate::chat::ask::ask(state, &ws.tenant, user, scope, question, today, Some(intent), "slack").await?;
    respond(state, url, state.slack.render(&asked.reply)?, true).await;
    Ok(())
}

async fn open_settings(state: &AppState, ws: &Workspace, user: &User, origin: &Origin<'_>) -> anyhow::Result<()> {
    let (Some(web), Some(trigger)) = (ws.web.as_ref(), origin.trigger) else { return Ok(()) };
    let from = if origin.raw["view"]["type"] == "home" { "home" } else { "command" };
    let view = settings_modal(state, ws, user, from).await?;
    if let Err(e) = open_modal(web, trigger, view).await {
        tracing::warn!(error = %e, "the settings modal did not open");
    }
    Ok(())
}

/// What is judged: an alert (its id) or a deal's risk card (deal, score).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
enum Judge {
    Alert(String),
    Card(String, u8),
}

/// A stored judgement: what to say.
struct Verdict {
    given: Feedback,
    /// The team's critical threshold after this click, when the click (new) retuned it.
    threshold: Option<u8>,
}

/// Stores a judgement; `None` when the alert is not the user's to judge.
async fn store_judgement(
    state: &AppState,
    ws: &Workspace,
    user: &User,
    on: &Judge,
    request: &FeedbackRequest,
) -> anyhow::Result<Option<Verdict>> {
    use crate::server::api::{give_card_feedback, give_feedback};
    let failed = |e| anyhow::anyhow!("recording feedback: {e:?}");
    Ok(match on {
        Judge::Alert(alert) => {
            give_feedback(state, &ws.tenant, &user.user_id, user.role, alert, request).await.map_err(failed)?.map(|j| {
                Verdict { threshold: j.tuning.as_ref().filter(|_| j.recorded).map(|t| t.threshold), given: j.given }
            })
        }
        Judge::Card(deal, score) => {
            let (given, recorded, tuning) =
                give_card_feedback(state, &ws.tenant, &user.user_id, deal, *score, request).await.map_err(failed)?;
            Some(Verdict { given, threshold: tuning.filter(|_| recorded).map(|t| t.threshold) })
        }
    })
}

/// Stores a click and updates the message in place.
async fn judge(
    state: &AppState,
    ws: &Workspace,
    user: &User,
    on: Judge,
    request: FeedbackRequest,
    origin: &Origin<'_>,
) -> anyhow::Result<()> {
    let verdict = store_judgement(state, ws, user, &on, &request).await?;
    let Some(url) = &origin.url else { return Ok(()) };
    match verdict {
        Some(v) => respond(state, url, judged_message(origin.raw, &v, user, origin.slack_user), true).await,
        None => {
            let text = "That alert was sent to someone else, so I can't record your answer.";
            respond(state, url, json!({ "text": text }), false).await;
        }
    }
    Ok(())
}

/// The message a click came from without its buttons, and a line saying who did what.
fn judged_message(raw: &Value, verdict: &Verdict, user: &User, slack_user: &str) -> Value {
    let given = &verdict.given;
    let on_card = given.alert_id.starts_with("card:");
    let what = match given.action {
        Action::Useful => "✅ Marked useful".to_owned(),
        Action::NotRelevant => "Marked not relevant".to_owned(),
        Action::FalseAlarm => match &given.reason {
            Some(reason) => format!("Marked a false alarm ({})", reason.replace('\n', " ")),
            None => "Marked a false alarm".to_owned(),
        },
        Action::Snooze => {
            let what = if on_card { "🔕 Alerts on this deal snoozed" } else { "🔕 Snoozed" };
            match (given.snooze_until_ms.and_then(chrono::DateTime::from_timestamp_millis), given.snooze_score) {
                (Some(until), _) => format!("{what} until {}", views::local(until, &user.time_zone)),
                (None, Some(score)) => format!("{what} until the score moves 10 points from {score}"),
                (None, None) => what.to_owned(),
            }
        }
    };
    let mut line = format!("{what} by <@{slack_user}>");
    if let Some(t) = verdict.threshold {
        line.push_str(&format!(" · the team's critical threshold is now {t}"));
    }
    let mut blocks: Vec<Value> = raw["message"]["blocks"]
        .as_array()
        .map(|b| b.iter().filter(|b| b["type"] != "actions").cloned().collect())
        .unwrap_or_default();
    // Only the judgement buttons go; a card keeps its Open in CRM and task buttons.
    if on_card
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

/// Mark false alarm: a modal asks why. Without a modal (no bot token, Slack refused or is
/// down), the false alarm is stored without a reason, so the click still counts.
async fn ask_why(
    state: &AppState,
    ws: &Workspace,
    user: &User,
    on: Judge,
    request: FeedbackRequest,
    origin: &Origin<'_>,
) -> anyhow::Result<()> {
    let subject = match &on {
        Judge::Card(deal, _) => deal.clone(),
        Judge::Alert(alert) => {
            let query = crate::alerts::AlertQuery { alert_id: Some(alert.clone()), ..Default::default() };
            let found = state.store.alerts(&ws.tenant, &query).await?.into_iter().next();
            found.map_or_else(
                || alert.clone(),
                |a| a.payload.pointer("/deal/company").and_then(Value::as_str).unwrap_or(&a.subject).to_owned(),
            )
        }
    };
    if let (Some(web), Some(trigger)) = (ws.web.as_ref(), origin.trigger) {
        let metadata = WhyMetadata { judge: on.clone(), url: origin.url.clone() };
        let view = state.slack.false_alarm_modal(&subject, &serde_json::to_string(&metadata)?)?;
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
    judge(state, ws, user, on, request, origin).await
}

/// Messages waiting for a false-alarm reason, by response URL: a submission carries only the
/// modal, so the message is kept here (in memory, an hour at most) to be rebuilt with the verdict.
async fn remember_message(state: &AppState, metadata: &WhyMetadata, raw: &Value) {
    if let Some(url) = &metadata.url {
        state.slack.directory.keep_message(url, raw["message"].clone()).await;
    }
}

/// A modal's Submit: the false-alarm reason, or the settings.
async fn view_submission(state: &AppState, raw: &Value) -> Response {
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
    state: &AppState,
    ws: &Workspace,
    user: &User,
    slack_user: &str,
    view: &Value,
) -> anyhow::Result<()> {
    let metadata: WhyMetadata = serde_json::from_str(view["private_metadata"].as_str().unwrap_or_default())?;
    let form = views::Submitted::new(view);
    let reason = match (form.radio("reason"), form.text("details")) {
        (Some(r), Some(d)) => Some(format!("{r}: {d}")),
        (r, d) => r.or(d),
    };
    let request = FeedbackRequest { action: Action::FalseAlarm, reason, snooze: None };
    let verdict = store_judgement(state, ws, user, &metadata.judge, &request).await?;
    let Some(url) = metadata.url.as_deref() else { return Ok(()) };
    let Some(verdict) = verdict else {
        respond(
            state,
            url,
            json!({ "text": "That alert was sent to someone else, so I can't record your answer." }),
            false,
        )
        .await;
        return Ok(());
    };
    let message = state.slack.directory.take_message(url).await.unwrap_or(Value::Null);
    let raw = json!({ "message": message });
    respond(state, url, judged_message(&raw, &verdict, user, slack_user), true).await;
    Ok(())
}

async fn settings_submitted(state: &AppState, ws: &Workspace, user: &User, slack_user: &str, view: &Value) -> Response {
    let current = match state.store.alert_settings(&ws.tenant, &user.user_id).await {
        Ok(s) => crate::alerts::settings::AlertSettings::from_stored(s),
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
    if let Err(e) = crate::server::api::update_settings(state, &ws.tenant, &user.user_id, update).await {
        tracing::error!(error = ?e, "saving settings from Slack");
        return errors("timezone", SORRY);
    }
    // Opened from the home tab: show the new settings there.
    if view["private_metadata"] == "home" {
        let (state, ws, slack_user) = (state.clone(), ws.clone(), slack_user.to_owned());
        tokio::spawn(async move {
            if let Err(e) = super::publish_home(&state, &ws, &slack_user).await {
                tracing::warn!(error = ?e, "refreshing the home tab after a settings change");
            }
        });
    }
    StatusCode::OK.into_response()
}

/// Subjects of follow-up tasks when the deal has no recommendation.
const DEFAULT_TASK: &str = "Follow up on this deal's risk";

/// Create follow-up task: recorded once per message and person (a second click on the same
/// card says it exists), for the deal's owner, due the next working day, with the deal's top
/// recommendation as its subject. A CRM connection writes it there (the Salesforce issue);
/// without one it stays recorded in Dealwatch.
async fn task(
    state: &AppState,
    ws: &Workspace,
    user: &User,
    scope: &Scope,
    deal: &str,
    origin: &Origin<'_>,
) -> anyhow::Result<()> {
    let command = crate::chat::command::Command::DealRisk { query: deal.to_owned() };
    let reply = crate::chat::answer(state, &ws.tenant, user, scope.clone(), command, "slack").await?;
    let say = |text: String| async move {
        if let Some(url) = &origin.url {
            respond(state, url, json!({ "text": text }), false).await;
        }
    };
    let card = match reply {
        Reply::RiskCard { card } => card,
        other => {
            let why = match other {
                Reply::Refused { .. } => format!("Sorry, {deal} is in a pipeline you don't have access to."),
                Reply::Closed { .. } => format!("{deal} is closed; no task was created."),
                _ => format!("I can't find an open deal {deal}; no task was created."),
            };
            say(why).await;
            return Ok(());
        }
    };
    let now = Utc::now();
    let tz: chrono_tz::Tz = user.time_zone.parse().unwrap_or(chrono_tz::Tz::UTC);
    let due = crate::workflow::next_working_day(now.with_timezone(&tz).date_naive());
    let message = origin.raw["container"]["message_ts"].as_str().or(origin.raw["actions"][0]["action_ts"].as_str());
    let crm = state.salesforce.get(&ws.tenant).filter(|c| c.settings.write_back);
    let task = FollowUpTask {
        task_id: uuid::Uuid::now_v7().to_string(),
        task_key: format!("slack:{}:{}:{deal}:{}", ws.team_id, origin.slack_user, message.unwrap_or_default()),
        deal_id: deal.to_owned(),
        subject: card.recommendations.first().map_or(DEFAULT_TASK.to_owned(), |r| r.action.clone()),
        due_date: Some(due),
        owner: card.owner.clone(),
        created_by: user.user_id.clone(),
        created_at: now,
        state: if crm.is_some() { "queued" } else { "recorded" }.into(),
        crm_id: None,
        error: None,
    };
    let (stored, new) = state.store.record_task(&ws.tenant, &task).await?;
    if let Some(connection) = crm.filter(|_| new) {
        // Written now rather than at the next sync; a failure leaves it queued for the job.
        let store = state.store.clone();
        tokio::spawn(async move {
            if let Err(e) = crate::salesforce::tasks::write_queued(store.as_ref(), &connection).await {
                tracing::warn!(error = %format!("{e:#}"), "writing a follow-up task to Salesforce; the sync job retries");
            }
        });
    }
    if new {
        let details =
            json!({ "task_id": stored.task_id, "subject": stored.subject, "due": stored.due_date, "via": "slack" });
        let entry = crate::store::AuditEntry {
            at: now,
            actor: user.user_id.clone(),
            action: "task.create".into(),
            target: Some(deal.to_owned()),
            details: Some(details),
            request_id: None,
        };
        state.audit.now(&ws.tenant, entry).await?;
        metrics::counter!("follow_up_tasks_total", "via" => "slack").increment(1);
    }
    let due = stored.due_date.map_or_else(String::new, |d| format!(", due {}", d.format("%a %d %b")));
    let owner = stored.owner.as_deref().map_or_else(String::new, |o| format!(" for {o}"));
    let text = if new {
        let whereto = if stored.state == "queued" {
            "It goes onto the Opportunity in Salesforce as a Task."
        } else {
            "It is recorded in Dealwatch (no CRM is connected)."
        };
        format!("📝 Task created on {deal}{owner}: {}{due}. {whereto}", stored.subject)
    } else {
        format!("📝 You already created this task on {deal}: {}{due}.", stored.subject)
    };
    say(text).await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clicks_are_read_from_their_action_ids_and_values() {
        let c = click("useful", Some("a1"), None).expect("useful");
        assert!(matches!(c, Click::Alert(ref id, ref r) if id == "a1" && r.action == Action::Useful));
        let c = click("snooze", None, Some("a2|1w")).expect("snooze");
        assert!(matches!(c, Click::Alert(ref id, ref r) if id == "a2" && r.snooze == Some(SnoozeFor::Week)));
        let c = click("card_snooze", None, Some("D7|82|score")).expect("card snooze");
        assert!(matches!(c, Click::Card(ref d, 82, ref r) if d == "D7" && r.snooze == Some(SnoozeFor::ScoreChange)));
        let c = click("card_false_alarm", Some("D7|82"), None).expect("card false alarm");
        assert!(matches!(c, Click::Card(_, 82, ref r) if r.action == Action::FalseAlarm));
        assert_eq!(click("task", Some("D7"), None), Some(Click::Task("D7".into())));
        assert_eq!(click("pick:D9", None, None), Some(Click::Pick("D9".into())));
        assert_eq!(click("open_settings", None, None), Some(Click::OpenSettings));
        assert_eq!(click("false_alarm", None, None), None, "no alert id");
        assert_eq!(click("card_useful", Some("D7"), None), None, "no score");
        assert_eq!(click("open_deal", Some("x"), None), None, "a link button needs no answer");
    }

    #[test]
    fn tasks_fall_due_on_the_next_working_day() {
        let d = |s: &str| chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").expect("date");
        assert_eq!(crate::workflow::next_working_day(d("2026-12-02")), d("2026-12-03"), "Wed → Thu");
        assert_eq!(crate::workflow::next_working_day(d("2026-12-04")), d("2026-12-07"), "Fri → Mon");
        assert_eq!(crate::workflow::next_working_day(d("2026-12-05")), d("2026-12-07"), "Sat → Mon");
    }
}
