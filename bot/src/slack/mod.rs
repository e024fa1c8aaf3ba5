//! The Slack adapter: slash commands, button clicks and events, on a signed request path. Only
//! this module knows Slack's wire format; it turns requests into [`crate::chat`] commands and
//! renders the [`Reply`] values as Block Kit from `prompts/slack/`.
//!
//! - `POST /slack/commands`: `/deal-risk`, `/pipeline`, `/dealwatch`. Slack wants an answer
//!   within 3 s: an answer ready within `[slack] answer_within_ms` goes back directly, a slower
//!   one is acknowledged and finished through the command's `response_url`.
//! - `POST /slack/interactions`: pick-list buttons (show that deal's card in place of the
//!   list) and the alert buttons (Useful, Not relevant, False alarm, Snooze), stored as feedback
//!   and answered by updating the message in place ("Snoozed by @maria until Tue 09 Jun").
//! - `POST /slack/events`: `url_verification` is answered; events are de-duplicated on their
//!   `event_id` in the store (Slack retries), mentions and direct messages get help until the
//!   question path exists.
//!
//! A workspace maps to a tenant through `[slack] workspaces`; a Slack user is the Dealwatch
//! user with that Slack id, and sees what their role lets them see.

pub mod verify;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use chrono::Utc;
use serde_json::{Value, json};
use slack_morphism::prelude::*;
use tera::Tera;

use crate::alerts::feedback::{Action, SnoozeFor};
use crate::chat::Reply;
use crate::chat::command::{self, Command};
use crate::server::AppState;
use crate::server::tenants::Scope;
use crate::store::{IdempotencyState, TenantId, User};

/// Slack's side of the server state, built once at start-up.
#[derive(Debug)]
pub struct SlackState {
    pub verifiers: verify::Verifiers,
    workspaces: BTreeMap<String, TenantId>,
    replies: Tera,
    deadline: Duration,
    deal_url: Option<String>,
    /// For `response_url` follow-ups.
    http: reqwest::Client,
    /// The Web API, for replies to events (None without a bot token).
    web: Option<(Arc<crate::alerts::channels::SlackWebClient>, SlackApiToken)>,
}

const BUNDLED: [(&str, &str); 5] = [
    ("risk_card.json", include_str!("../../../prompts/slack/risk_card.json.tera")),
    ("pick_list.json", include_str!("../../../prompts/slack/pick_list.json.tera")),
    ("not_found.json", include_str!("../../../prompts/slack/not_found.json.tera")),
    ("notice.json", include_str!("../../../prompts/slack/notice.json.tera")),
    ("help.txt", include_str!("../../../prompts/slack/help.txt.tera")),
];

impl SlackState {
    pub fn new(settings: &crate::config::Settings) -> anyhow::Result<SlackState> {
        crate::auth::install_crypto_provider();
        let s = &settings.slack;
        let mut workspaces = BTreeMap::new();
        for (team, tenant) in &s.workspaces {
            let id = TenantId::parse(tenant)
                .map_err(|e| anyhow::anyhow!("[slack] workspaces.{team}: {tenant:?} is not a tenant id: {e}"))?;
            workspaces.insert(team.clone(), id);
        }
        let mut replies = Tera::default();
        let mut sources: Vec<(String, String)> =
            BUNDLED.iter().map(|(n, t)| ((*n).to_owned(), (*t).to_owned())).collect();
        if let Some(dir) = &settings.prompts_dir {
            for (name, text) in &mut sources {
                let path = dir.join("slack").join(format!("{name}.tera"));
                if path.is_file() {
                    *text = std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
                }
            }
        }
        replies.add_raw_templates(sources).context("parsing the Slack templates in prompts/slack")?;
        crate::alerts::templates::register_filters(&mut replies);
        let web = match &s.bot_token {
            Some(token) => Some((
                crate::alerts::channels::slack_client(&s.api_url)?,
                SlackApiToken::new(SlackApiTokenValue::new(secrecy::ExposeSecret::expose_secret(token).to_owned())),
            )),
            None => None,
        };
        let state = SlackState {
            verifiers: verify::Verifiers::new(&s.signing_secrets),
            workspaces,
            replies,
            deadline: Duration::from_millis(s.answer_within_ms.clamp(100, 2500)),
            deal_url: settings.alerts.deal_url.clone(),
            http: reqwest::Client::builder().timeout(Duration::from_secs(10)).build()?,
            web,
        };
        state.check()?;
        Ok(state)
    }

    /// Renders every reply once with sample data, so a broken template fails at start-up.
    fn check(&self) -> anyhow::Result<()> {
        let card = self.render_card(&sample_card()).context("rendering a sample risk card")?;
        check_blocks(&card["blocks"]).map_err(anyhow::Error::msg)?;
        for reply in samples() {
            let message = self.render(&reply).with_context(|| format!("rendering a sample {reply:?}"))?;
            check_blocks(&message["blocks"]).map_err(anyhow::Error::msg)?;
        }
        Ok(())
    }

    /// A risk card (the engine's `RiskScore` as JSON) as a Slack message.
    pub fn render_card(&self, card: &Value) -> anyhow::Result<Value> {
        let mut context = tera::Context::new();
        context.insert("nl", "\n");
        context.insert("card", card);
        let id = card["deal_id"].as_str().unwrap_or_default();
        let url = self.deal_url.as_ref().map(|u| u.replace("{deal_id}", &crate::alerts::templates::urlencoding(id)));
        context.insert("deal_url", &url);
        let text = format!("{}: risk {}/100", card["company"].as_str().unwrap_or(id), card["risk_score"]);
        self.blocks("risk_card.json", &context, &text)
    }

    fn blocks(&self, template: &str, context: &tera::Context, text: &str) -> anyhow::Result<Value> {
        let rendered = self.replies.render(template, context)?;
        let blocks: Value = serde_json::from_str(&rendered)
            .with_context(|| format!("prompts/slack/{template}.tera did not produce JSON:\n{rendered}"))?;
        Ok(json!({ "text": text, "blocks": blocks }))
    }

    /// A reply as a Slack message: `text` (the notification fallback) and Block Kit `blocks`.
    pub fn render(&self, reply: &Reply) -> anyhow::Result<Value> {
        let mut context = tera::Context::new();
        context.insert("nl", "\n");
        let (template, text) = match reply {
            Reply::RiskCard { card } => return self.render_card(&serde_json::to_value(card)?),
            Reply::PickList { query, candidates } => {
                context.insert("query", query);
                context.insert("candidates", candidates);
                ("pick_list.json", format!("Several deals match {query}"))
            }
            Reply::NotFound { query, suggestions } => {
                context.insert("query", query);
                context.insert("suggestions", suggestions);
                ("not_found.json", format!("No open deal called {query}"))
            }
            other => {
                let (text, hint) = notice(other, &self.replies)?;
                context.insert("text", &text);
                context.insert("hint", &hint);
                ("notice.json", text)
            }
        };
        self.blocks(template, &context, &text)
    }

    fn tenant(&self, team: &str) -> Option<&TenantId> {
        self.workspaces.get(team)
    }
}

/// The words of a short reply, and a hint under them.
fn notice(reply: &Reply, replies: &Tera) -> anyhow::Result<(String, Option<String>)> {
    Ok(match reply {
        Reply::Closed { deal_id, company, won } => (
            format!(
                "{deal_id} ({company}) is already {}: risk scores are for open deals.",
                if *won { "won" } else { "lost" }
            ),
            None,
        ),
        Reply::Refused { query } => (
            format!("Sorry, *{query}* is in a pipeline you don't have access to."),
            Some("Ask your manager or a Dealwatch admin if you should see it.".into()),
        ),
        Reply::NoModel => (
            "There is no trained model for your team yet, so there are no scores.".into(),
            Some("An admin can train one with `dealwatch train` or POST /v1/models/train.".into()),
        ),
        Reply::Unreadable { message } => (message.clone(), Some("`/dealwatch help` lists what I understand.".into())),
        Reply::Help => (replies.render("help.txt", &tera::Context::new())?.trim().to_owned(), None),
        Reply::RiskCard { .. } | Reply::PickList { .. } | Reply::NotFound { .. } => (String::new(), None),
    })
}

/// A risk card as the engine writes it (`RiskScore` as JSON), for the start-up check and tests.
pub fn sample_card() -> Value {
    json!({
        "deal_id": "D12345", "company": "Acme <Corp> & Sons", "owner": "rep_15", "amount": 45000.0,
        "stage": "Proposal", "age_days": 95, "risk_score": 82, "risk_category": "critical", "win_probability": 0.18,
        "confidence": 0.8, "base_risk": 55.0,
        "risk_factors": [
            {"factor": "Lead source: Partner", "key": "segment:lead_source", "variant": "segment", "impact": 9.5,
             "description": "Partner leads win 31% vs 45%"},
            {"factor": "Deal age", "key": "age", "variant": "age_old", "impact": 7.25,
             "description": "Open 95 days; similar deals close in 60"}],
        "positive_factors": [], "contributions": [],
        "recommendations": [{"rule": "exec", "priority": "high", "action": "Schedule an exec sponsor call within 24 hours",
                             "rationale": "Stalled deals recover with exec attention"}],
        "similar_deals": [{"deal_id": "D00042", "company": "Bluepeak Logistics", "outcome": "won", "amount": 41000.0,
                           "owner": "rep_3", "closed": "2026-03-02", "cycle_days": 48, "similarity": 0.91, "shared": ["SaaS"]}],
        "as_of": "2026-06-10", "model_version": "add-0123abcd", "warnings": []
    })
}

/// One of every reply but the risk card, for the start-up check and the tests.
pub fn samples() -> Vec<Reply> {
    let candidate = |id: &str, company: &str| crate::chat::Candidate {
        deal_id: id.into(),
        company: company.into(),
        owner: Some("rep_15".into()),
        amount: Some(45_000.0),
    };
    vec![
        Reply::PickList {
            query: "Acme".into(),
            candidates: vec![candidate("D1", "Acme Corp"), candidate("D2", "Acme Robotics")],
        },
        Reply::NotFound { query: "Acmee".into(), suggestions: vec![candidate("D1", "Acme Corp")] },
        Reply::NotFound { query: "Zzz".into(), suggestions: vec![] },
        Reply::Closed { deal_id: "D1".into(), company: "Acme".into(), won: true },
        Reply::Refused { query: "D9".into() },
        Reply::NoModel,
        Reply::Unreadable { message: "which deal?".into() },
        Reply::Help,
    ]
}

/// Slack's limits on a message's blocks: at most 50, button texts at most 75 characters, action
/// ids unique within a block, and every block one slack-morphism (Slack's schema) knows.
pub fn check_blocks(blocks: &Value) -> Result<(), String> {
    let list = blocks.as_array().ok_or("blocks are not a list")?;
    if list.len() > 50 {
        return Err(format!("{} blocks; Slack takes at most 50", list.len()));
    }
    for block in list {
        let mut ids = std::collections::HashSet::new();
        for element in block["elements"].as_array().into_iter().flatten() {
            if let Some(text) = element["text"]["text"].as_str().filter(|_| element["type"] == "button")
                && text.chars().count() > 75
            {
                return Err(format!("button text {text:?} is over 75 characters"));
            }
            if let Some(id) = element["action_id"].as_str()
                && !ids.insert(id.to_owned())
            {
                return Err(format!("action id {id} twice in one block"));
            }
        }
    }
    serde_json::from_value::<Vec<SlackBlock>>(blocks.clone()).map_err(|e| format!("not Block Kit: {e}"))?;
    Ok(())
}

pub fn routes(state: AppState) -> Router<AppState> {
    Router::new()
        .route("/slack/commands", post(commands))
        .route("/slack/interactions", post(interactions))
        .route("/slack/events", post(events))
        .route_layer(axum::middleware::from_fn_with_state(state, verify::verify))
}

/// An ephemeral answer to the person who typed the command.
fn ephemeral(mut message: Value) -> Response {
    message["response_type"] = "ephemeral".into();
    axum::Json(message).into_response()
}

fn words(state: &AppState, text: impl Into<String>) -> Response {
    let reply = Reply::Unreadable { message: text.into() };
    match state.slack.render(&reply) {
        Ok(m) => ephemeral(m),
        Err(e) => internal(&e),
    }
}

fn internal(e: &anyhow::Error) -> Response {
    tracing::error!(error = ?e, "answering Slack");
    ephemeral(json!({ "text": "Something went wrong on our side; please try again in a minute." }))
}

/// Who is asking: the workspace's tenant, the Dealwatch user with this Slack id, and whose deals
/// they may see (from the same read of the users).
async fn identify(state: &AppState, team: &str, slack_user: &str) -> Result<(TenantId, User, Scope), String> {
    let tenant = state.slack.tenant(team).cloned().ok_or_else(|| {
        tracing::warn!(team, "a Slack workspace that is not connected");
        "This Slack workspace is not connected to Dealwatch yet: an admin adds it under [slack] workspaces.".to_owned()
    })?;
    let users = state.store.users(&tenant).await.map_err(|e| {
        tracing::error!(error = %e, "reading users");
        "Something went wrong on our side; please try again in a minute.".to_owned()
    })?;
    let user = users.iter().find(|u| u.slack_user_id.as_deref() == Some(slack_user)).cloned().ok_or_else(|| {
        "I don't know you yet: ask a Dealwatch admin to link your Slack account to your CRM user.".to_owned()
    })?;
    let scope = Scope::for_user(&users, &user.user_id, user.role);
    Ok((tenant, user, scope))
}

// ---------------------------------------------------------------------------------------------
// POST /slack/commands

async fn commands(State(state): State<AppState>, body: Bytes) -> Response {
    let event: SlackCommandEvent = match serde_urlencoded::from_bytes(&body) {
        Ok(e) => e,
        Err(e) => return (StatusCode::BAD_REQUEST, format!("not a Slack command: {e}")).into_response(),
    };
    let (tenant, user, scope) = match identify(&state, event.team_id.as_ref(), event.user_id.as_ref()).await {
        Ok(who) => who,
        Err(message) => return words(&state, message),
    };
    let parsed = command::parse(event.command.as_ref(), event.text.as_deref().unwrap_or_default());
    let command = match parsed {
        Ok(c) => c,
        Err(e) => return words(&state, e.to_string()),
    };
    metrics::counter!("slack_commands_total", "command" => event.command.to_string()).increment(1);
    let mut work = {
        let state = state.clone();
        tokio::spawn(async move { answer(&state, &tenant, &user, scope, command).await })
    };
    // Answer directly when it is ready in time; otherwise acknowledge and finish through the
    // response_url (the work goes on either way).
    match tokio::time::timeout(state.slack.deadline, &mut work).await {
        Ok(done) => finish(done),
        Err(_) => {
            let url = event.response_url.0.to_string();
            tokio::spawn(async move {
                let message = match work.await {
                    Ok(Ok(m)) => m,
                    Ok(Err(e)) => {
                        tracing::error!(error = ?e, "answering a Slack command");
                        json!({ "text": "Something went wrong on our side; please try again in a minute." })
                    }
                    Err(e) => json!({ "text": format!("The answer failed: {e}") }),
                };
                respond(&state, &url, message, false).await;
            });
            ephemeral(json!({ "text": "Working on it…" }))
        }
    }
}

fn finish(done: Result<anyhow::Result<Value>, tokio::task::JoinError>) -> Response {
    match done {
        Ok(Ok(message)) => ephemeral(message),
        Ok(Err(e)) => internal(&e),
        Err(e) => internal(&anyhow::anyhow!("the answer task failed: {e}")),
    }
}

/// Posts `message` to a `response_url` (replacing the message the click came from when
/// `replace` is set). Slack allows five posts per URL within 30 minutes; a failure is logged.
async fn respond(state: &AppState, url: &str, mut message: Value, replace: bool) {
    message["response_type"] = "ephemeral".into();
    if replace {
        message["replace_original"] = true.into();
    }
    match state.slack.http.post(url).json(&message).send().await {
        Ok(r) if r.status().is_success() => {}
        Ok(r) => tracing::warn!(status = %r.status(), "Slack refused a response_url post"),
        Err(e) => tracing::warn!(error = %e, "posting to a Slack response_url"),
    }
}

/// The answer to `command` from `user`, as a Slack message.
async fn answer(
    state: &AppState,
    tenant: &TenantId,
    user: &User,
    scope: Scope,
    command: Command,
) -> anyhow::Result<Value> {
    let reply = match command {
        Command::Help => Reply::Help,
        Command::DealRisk { query } => deal_risk(state, tenant, user, scope, &query).await?,
        Command::Pipeline { .. } | Command::Settings | Command::Mute { .. } | Command::Unmute { .. } => {
            Reply::Unreadable {
                message: "That command is not available in Slack yet; the REST API has it (`/v1/pipeline/metrics`, `/v1/alerts/configure`).".into(),
            }
        }
    };
    state.slack.render(&reply)
}

async fn deal_risk(
    state: &AppState,
    tenant: &TenantId,
    user: &User,
    scope: Scope,
    query: &str,
) -> anyhow::Result<Reply> {
    let engine = state.cache.get(&state.store, tenant, Utc::now().date_naive()).await;
    let Some(engine) = engine.map_err(|e| anyhow::anyhow!("loading the tenant: {e:?}"))? else {
        return Ok(Reply::NoModel);
    };
    let texts = state.texts.clone();
    let query = query.to_owned();
    let reply = tokio::task::spawn_blocking(move || crate::chat::deal_risk(&engine, &query, &scope, &texts)).await?;
    if let Reply::RiskCard { card } = &reply {
        let entry = crate::store::AuditEntry {
            at: Utc::now(),
            actor: user.user_id.clone(),
            action: "deal.score".into(),
            target: Some(card.deal_id.clone()),
            details: Some(json!({ "via": "slack" })),
            request_id: None,
        };
        state.audit.read(tenant, entry).await?;
        metrics::counter!("deals_scored_total", "path" => "slack").increment(1);
    }
    Ok(reply)
}

// ---------------------------------------------------------------------------------------------
// POST /slack/interactions

#[derive(serde::Deserialize)]
struct InteractionForm {
    payload: String,
}

async fn interactions(State(state): State<AppState>, body: Bytes) -> Response {
    let Ok(form) = serde_urlencoded::from_bytes::<InteractionForm>(&body) else {
        return (StatusCode::BAD_REQUEST, "an interaction carries a payload field").into_response();
    };
    let raw: Value = match serde_json::from_str(&form.payload) {
        Ok(v) => v,
        Err(e) => return (StatusCode::BAD_REQUEST, format!("the payload is not JSON: {e}")).into_response(),
    };
    let event: SlackInteractionEvent = match serde_json::from_value(raw.clone()) {
        Ok(e) => e,
        Err(e) => return (StatusCode::BAD_REQUEST, format!("not a Slack interaction: {e}")).into_response(),
    };
    let SlackInteractionEvent::BlockActions(actions) = event else {
        // Modal submissions and the like: acknowledged, nothing to do yet.
        return StatusCode::OK.into_response();
    };
    // Slack wants the acknowledgement within 3 s; the answer goes to the response_url.
    let work = {
        let state = state.clone();
        tokio::spawn(async move { block_actions(&state, actions, &raw).await })
    };
    if tokio::time::timeout(state.slack.deadline, work).await.is_err() {
        tracing::info!("a Slack click is still being answered after the deadline");
    }
    StatusCode::OK.into_response()
}

async fn block_actions(state: &AppState, event: SlackInteractionBlockActionsEvent, raw: &Value) {
    let Some(url) = event.response_url.as_ref().map(|u| u.0.to_string()) else { return };
    let slack_user = event.user.as_ref().map(|u| u.id.to_string()).unwrap_or_default();
    let (tenant, user, scope) = match identify(state, event.team.id.as_ref(), &slack_user).await {
        Ok(who) => who,
        Err(message) => return respond(state, &url, json!({ "text": message }), false).await,
    };
    for action in event.actions.iter().flatten() {
        let id = action.action_id.to_string();
        let result = if let Some(deal) = id.strip_prefix("pick:") {
            pick(state, &tenant, &user, scope.clone(), deal, &url).await
        } else {
            let choice = action.selected_option.as_ref().map(|o| o.value.clone());
            match click(&id, action.value.as_deref(), choice.as_deref()) {
                Some((alert_id, request)) => {
                    feedback(state, &tenant, &user, &slack_user, alert_id, request, raw, &url).await
                }
                None => Ok(()),
            }
        };
        if let Err(e) = result {
            tracing::error!(error = ?e, action = %id, "answering a Slack click");
            respond(state, &url, json!({ "text": "Something went wrong on our side; please try again." }), false).await;
        }
    }
}

/// A pick-list button: that deal's card replaces the list.
async fn pick(
    state: &AppState,
    tenant: &TenantId,
    user: &User,
    scope: Scope,
    deal: &str,
    url: &str,
) -> anyhow::Result<()> {
    let reply = deal_risk(state, tenant, user, scope, deal).await?;
    respond(state, url, state.slack.render(&reply)?, true).await;
    Ok(())
}

/// An alert button as a feedback request: (alert id, what was clicked). Snooze comes from the
/// overflow menu as `alert_id|1d`.
fn click<'a>(
    action_id: &str,
    value: Option<&'a str>,
    choice: Option<&'a str>,
) -> Option<(&'a str, crate::server::api::FeedbackRequest)> {
    let plain = |action| crate::server::api::FeedbackRequest { action, reason: None, snooze: None };
    match action_id {
        "useful" => Some((value?, plain(Action::Useful))),
        "not_relevant" => Some((value?, plain(Action::NotRelevant))),
        "false_alarm" => Some((value?, plain(Action::FalseAlarm))),
        "snooze" => {
            let (alert, length) = choice?.split_once('|')?;
            let snooze = match length {
                "1w" => SnoozeFor::Week,
                "score" => SnoozeFor::ScoreChange,
                _ => SnoozeFor::Day,
            };
            Some((
                alert,
                crate::server::api::FeedbackRequest { action: Action::Snooze, reason: None, snooze: Some(snooze) },
            ))
        }
        _ => None,
    }
}

/// Stores a click on an alert and updates the message in place: its buttons give way to a line
/// saying who did what.
#[allow(clippy::too_many_arguments)]
async fn feedback(
    state: &AppState,
    tenant: &TenantId,
    user: &User,
    slack_user: &str,
    alert_id: &str,
    request: crate::server::api::FeedbackRequest,
    raw: &Value,
    url: &str,
) -> anyhow::Result<()> {
    let judged = crate::server::api::give_feedback(state, tenant, &user.user_id, user.role, alert_id, &request)
        .await
        .map_err(|e| anyhow::anyhow!("recording feedback: {e:?}"))?;
    let Some(judged) = judged else {
        respond(
            state,
            url,
            json!({ "text": "That alert was sent to someone else, so I can't record your answer." }),
            false,
        )
        .await;
        return Ok(());
    };
    let tz: chrono_tz::Tz = user.time_zone.parse().unwrap_or(chrono_tz::Tz::UTC);
    let given = &judged.given;
    let what = match given.action {
        Action::Useful => "✅ Marked useful".to_owned(),
        Action::NotRelevant => "Marked not relevant".to_owned(),
        Action::FalseAlarm => "Marked a false alarm".to_owned(),
        Action::Snooze => {
            match (given.snooze_until_ms.and_then(chrono::DateTime::from_timestamp_millis), given.snooze_score) {
                (Some(until), _) => format!("🔕 Snoozed until {}", until.with_timezone(&tz).format("%a %d %b %H:%M")),
                (None, Some(score)) => format!("🔕 Snoozed until the score moves 10 points from {score}"),
                (None, None) => "🔕 Snoozed".to_owned(),
            }
        }
    };
    let mut line = format!("{what} by <@{slack_user}>");
    if let Some(t) = judged.tuning.as_ref().filter(|_| judged.recorded) {
        line.push_str(&format!(" · the team's critical threshold is now {}", t.threshold));
    }
    // The original message without its buttons, and the line under it.
    let mut blocks: Vec<Value> = raw["message"]["blocks"]
        .as_array()
        .map(|b| b.iter().filter(|b| b["type"] != "actions").cloned().collect())
        .unwrap_or_default();
    blocks.push(json!({ "type": "context", "elements": [{ "type": "mrkdwn", "text": line }] }));
    let text = raw["message"]["text"].as_str().unwrap_or("Dealwatch alert");
    respond(state, url, json!({ "text": text, "blocks": blocks }), true).await;
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// POST /slack/events

async fn events(State(state): State<AppState>, body: Bytes) -> Response {
    let event: SlackPushEvent = match serde_json::from_slice(&body) {
        Ok(e) => e,
        Err(e) => return (StatusCode::BAD_REQUEST, format!("not a Slack event: {e}")).into_response(),
    };
    let callback = match event {
        SlackPushEvent::UrlVerification(v) => return axum::Json(json!({ "challenge": v.challenge })).into_response(),
        SlackPushEvent::AppRateLimited(r) => {
            tracing::warn!(?r, "Slack is rate-limiting our event subscriptions");
            return StatusCode::OK.into_response();
        }
        SlackPushEvent::EventCallback(c) => c,
    };
    let Some(tenant) = state.slack.tenant(callback.team_id.as_ref()).cloned() else {
        tracing::warn!(team = %callback.team_id, "an event from a Slack workspace that is not connected");
        return StatusCode::OK.into_response();
    };
    // Slack retries an event it thinks we missed: the store remembers which ones we handled,
    // across restarts and replicas.
    let key = format!("slack-event:{}", callback.event_id);
    match state.store.idempotency_begin(&tenant, "slack", &key, "", Utc::now()).await {
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
    let handled = handle_event(&state, &tenant, callback.event).await;
    let body = json!({ "handled": handled.is_ok() });
    if let Err(e) = &handled {
        tracing::error!(error = ?e, "handling a Slack event");
    }
    if let Err(e) = state.store.idempotency_finish(&tenant, "slack", &key, 200, &body).await {
        tracing::error!(error = %e, "recording a handled Slack event");
    }
    StatusCode::OK.into_response()
}

/// Mentions and direct messages go to the question path; until it exists they get help.
async fn handle_event(state: &AppState, tenant: &TenantId, event: SlackEventCallbackBody) -> anyhow::Result<()> {
    let (channel, thread) = match event {
        SlackEventCallbackBody::AppMention(m) => (m.channel, m.origin.thread_ts.unwrap_or(m.origin.ts)),
        SlackEventCallbackBody::Message(m)
            if m.sender.bot_id.is_none()
                && m.subtype.is_none()
                && m.origin.channel_type.as_ref().is_some_and(|t| t.0 == "im") =>
        {
            let Some(channel) = m.origin.channel else { return Ok(()) };
            (channel, m.origin.thread_ts.unwrap_or(m.origin.ts))
        }
        other => {
            tracing::debug!(tenant = %tenant, event = ?std::mem::discriminant(&other), "a Slack event we do not act on");
            return Ok(());
        }
    };
    let Some((client, token)) = &state.slack.web else {
        tracing::warn!("a Slack mention, but no [slack] bot_token to answer with");
        return Ok(());
    };
    let message = state.slack.render(&Reply::Help)?;
    let blocks: Vec<SlackBlock> = serde_json::from_value(message["blocks"].clone())?;
    let content = SlackMessageContent::new()
        .with_text(message["text"].as_str().unwrap_or("Dealwatch").to_owned())
        .with_blocks(blocks);
    let request = SlackApiChatPostMessageRequest::new(channel, content).with_thread_ts(thread);
    client.open_session(token).chat_post_message(&request).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state() -> SlackState {
        let mut settings = crate::config::Settings::default();
        settings.alerts.deal_url = Some("https://crm.example.com/deals/{deal_id}".into());
        SlackState::new(&settings).expect("the bundled Slack templates load")
    }

    #[test]
    fn every_reply_renders_as_valid_block_kit_within_slacks_limits() {
        let slack = state();
        let card = slack.render_card(&sample_card()).expect("card");
        check_blocks(&card["blocks"]).expect("card blocks");
        let text = card["blocks"].to_string();
        for needle in [
            "🔴 Acme <Corp> & Sons: risk 82/100",
            "*CRITICAL risk* · 18% chance to win",
            "Acme &lt;Corp&gt; &amp; Sons",
            "• Partner leads win 31% vs 45% (+9.5 pts)",
            "1. Schedule an exec sponsor call within 24 hours",
            "• Bluepeak Logistics (D00042), won in 48 days",
            "https://crm.example.com/deals/D12345",
            "Model add-0123abcd · data as of 2026-06-10",
        ] {
            assert!(text.contains(needle), "the card lacks {needle:?}: {text}");
        }
        assert_eq!(card["text"], "Acme <Corp> & Sons: risk 82/100");
        for reply in samples() {
            let m = slack.render(&reply).expect("render");
            check_blocks(&m["blocks"]).unwrap_or_else(|e| panic!("{reply:?}: {e}"));
            assert!(m["text"].as_str().is_some_and(|t| !t.is_empty()), "{reply:?} has a fallback text");
        }
    }

    #[test]
    fn the_block_checker_catches_what_slack_would_refuse() {
        let button = |id: &str, text: &str| json!({ "type": "button", "action_id": id, "text": { "type": "plain_text", "text": text } });
        let ok = json!([{ "type": "actions", "elements": [button("a", "Yes"), button("b", "No")] }]);
        assert_eq!(check_blocks(&ok), Ok(()));
        let twice = json!([{ "type": "actions", "elements": [button("a", "Yes"), button("a", "No")] }]);
        assert!(check_blocks(&twice).is_err_and(|e| e.contains("twice")));
        let long = json!([{ "type": "actions", "elements": [button("a", &"x".repeat(76))] }]);
        assert!(check_blocks(&long).is_err_and(|e| e.contains("75")));
        let many = Value::Array(vec![json!({ "type": "divider" }); 51]);
        assert!(check_blocks(&many).is_err_and(|e| e.contains("50")));
    }

    #[test]
    fn alert_buttons_become_feedback() {
        let (id, r) = click("useful", Some("a1"), None).expect("useful");
        assert_eq!((id, r.action, r.snooze), ("a1", Action::Useful, None));
        let (id, r) = click("snooze", None, Some("a2|1w")).expect("snooze");
        assert_eq!((id, r.action, r.snooze), ("a2", Action::Snooze, Some(SnoozeFor::Week)));
        let (_, r) = click("snooze", None, Some("a2|score")).expect("snooze");
        assert_eq!(r.snooze, Some(SnoozeFor::ScoreChange));
        assert!(click("false_alarm", None, None).is_none(), "no alert id");
        assert!(click("open_deal", Some("x"), None).is_none(), "a link button needs no answer");
    }
}
