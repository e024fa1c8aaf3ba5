//! The Slack adapter: slash commands, button clicks and events, on a signed request path. Only
//! this module knows Slack's wire format; it turns requests into [`service::chat`] commands and
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
//!
//! [`Slack`] is the adapter as the server sees it, a [`Transport`] like Teams and Discord: its
//! routes, its alert channel, Socket Mode beside the server, the workspace check for alert
//! routes and the OAuth install link.

pub mod channel;
mod events;
pub mod install;
mod interact;
pub mod socket;
pub mod verify;
pub mod views;
pub mod workspace;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};
use slack_morphism::errors::SlackClientError;
use slack_morphism::prelude::*;
use tera::Tera;

use alerts::channels::SendError;
use alerts::templates::mrkdwn;
use service::chat::Reply;
use service::chat::command::{self, Command};

use crate::channel::{SlackWebClient, slack_error};
use store::{SlackInstallation, TenantId, User};
use workspace::{Web, Workspace};

pub use events::owns_channel;
use service::Services;
use service::chat::transport::{Running, Transport};

/// What Slack's handlers read: the services every platform shares, and Slack's own state.
#[derive(Clone, Debug)]
pub struct SlackApp {
    pub services: Services,
    pub slack: Arc<SlackState>,
}

impl std::ops::Deref for SlackApp {
    type Target = Services;
    fn deref(&self) -> &Services {
        &self.services
    }
}

/// The Slack adapter.
#[derive(Debug)]
pub struct Slack {
    app: SlackApp,
    /// Alert delivery, when `[slack] bot_token` is set.
    channel: Option<Arc<dyn alerts::channels::Channel>>,
}

impl Slack {
    /// Slack as `services.settings` configure it (unconfigured, it answers nothing: requests
    /// fail the signature check).
    pub fn new(services: &Services) -> anyhow::Result<Slack> {
        let settings = &services.settings;
        let state = SlackState::new(settings, services.questions.clone()).context("configuring Slack ([slack])")?;
        let channel = match &settings.slack.bot_token {
            Some(token) => Some(Arc::new(channel::SlackChannel::new(&settings.slack.api_url, token)?) as Arc<_>),
            None => None,
        };
        Ok(Slack { app: SlackApp { services: services.clone(), slack: Arc::new(state) }, channel })
    }

    /// What the handlers read (for tests that call them directly).
    pub fn app(&self) -> &SlackApp {
        &self.app
    }
}

#[async_trait::async_trait]
impl Transport for Slack {
    fn name(&self) -> &'static str {
        "slack"
    }

    fn routes(&self) -> Router<Services> {
        routes(self.app.clone()).with_state(self.app.clone())
    }

    fn channel(&self) -> Option<Arc<dyn alerts::channels::Channel>> {
        self.channel.clone()
    }

    async fn start(&self, _: &Services) -> anyhow::Result<Option<Running>> {
        let Some(socket) = socket::SocketMode::start(&self.app).await.context("starting Slack Socket Mode")? else {
            return Ok(None);
        };
        let stop = move || -> std::pin::Pin<Box<dyn Future<Output = ()> + Send>> {
            Box::pin(async move { socket.shutdown().await })
        };
        Ok(Some(Running { name: "slack", stop: Box::new(stop) }))
    }

    async fn owns_destination(&self, tenant: &TenantId, _to: &str) -> Result<(), String> {
        owns_channel(&self.app, tenant).await
    }

    fn install_link(&self, tenant: &TenantId, actor: &str) -> Option<(String, chrono::DateTime<chrono::Utc>)> {
        self.app
            .slack
            .installer
            .as_ref()
            .map(|installer| install::install_link(installer, tenant, actor, self.app.now()))
    }
}

/// Slack's side of the server state, built once at start-up.
#[derive(Debug)]
pub struct SlackState {
    pub verifiers: verify::Verifiers,
    /// Workspaces connected by the config (team id → tenant), answered with `bot_token`.
    workspaces: BTreeMap<String, TenantId>,
    /// Dealwatch user id → Slack user id, from the config.
    users: settings::UserLinks,
    replies: Tera,
    /// How question answers are worded (shared with the other chat platforms).
    questions: Arc<service::chat::ask::Questions>,
    deadline: Duration,
    deal_url: Option<String>,
    /// The deployment's alert channels, offered in the settings form.
    channels: Vec<String>,
    /// For `response_url` follow-ups.
    http: reqwest::Client,
    /// The Web API client (one for every workspace; the token differs).
    client: Option<Arc<SlackWebClient>>,
    /// The config's bot token, for the config's workspaces.
    config_token: Option<SlackApiToken>,
    /// OAuth installation, when configured.
    pub installer: Option<install::Installer>,
    /// The workspace of `[slack] bot_token`, once asked (`auth.test`).
    token_team: std::sync::OnceLock<String>,
    /// The app-level token Socket Mode connects with, when `[slack] socket_mode` is on.
    app_token: Option<SlackApiToken>,
    pub directory: workspace::Directory,
}

const BUNDLED: [(&str, &str); 11] = [
    ("answer.json", include_str!("../../../prompts/slack/answer.json.tera")),
    ("ask_back.json", include_str!("../../../prompts/slack/ask_back.json.tera")),
    ("risk_card.json", include_str!("../../../prompts/slack/risk_card.json.tera")),
    ("pick_list.json", include_str!("../../../prompts/slack/pick_list.json.tera")),
    ("not_found.json", include_str!("../../../prompts/slack/not_found.json.tera")),
    ("notice.json", include_str!("../../../prompts/slack/notice.json.tera")),
    ("help.txt", include_str!("../../../prompts/slack/help.txt.tera")),
    ("pipeline.json", include_str!("../../../prompts/slack/pipeline.json.tera")),
    ("settings_modal.json", include_str!("../../../prompts/slack/settings_modal.json.tera")),
    ("false_alarm_modal.json", include_str!("../../../prompts/slack/false_alarm_modal.json.tera")),
    ("home.json", include_str!("../../../prompts/slack/home.json.tera")),
];

impl SlackState {
    pub fn new(
        settings: &settings::Settings,
        questions: Arc<service::chat::ask::Questions>,
    ) -> anyhow::Result<SlackState> {
        service::auth::install_crypto_provider();
        let s = &settings.slack;
        let mut workspaces = BTreeMap::new();
        for (team, tenant) in &s.workspaces {
            let id = TenantId::parse(tenant)
                .map_err(|e| anyhow::anyhow!("[slack] workspaces.{team}: {tenant:?} is not a tenant id: {e}"))?;
            workspaces.insert(team.clone(), id);
        }
        let replies = service::resources::templates(
            &BUNDLED,
            settings.prompts_dir.as_ref().map(|d| d.join("slack")).as_deref(),
            "slack",
        )?;
        let installer = install::Installer::new(s)?;
        let app_token = socket::app_token(s)?;
        let client = if s.bot_token.is_some() || installer.is_some() || app_token.is_some() {
            Some(channel::slack_client(&s.api_url)?)
        } else {
            None
        };
        let config_token = s.bot_token.as_ref().map(|token| {
            SlackApiToken::new(SlackApiTokenValue::new(secrecy::ExposeSecret::expose_secret(token).to_owned()))
        });
        let state = SlackState {
            verifiers: verify::Verifiers::new(&s.signing_secrets),
            workspaces,
            users: s.users.clone(),
            replies,
            questions,
            deadline: Duration::from_millis(s.answer_within_ms.clamp(100, 2500)),
            deal_url: settings.alerts.deal_url.clone(),
            channels: settings.alert_channels(),
            http: reqwest::Client::builder().timeout(Duration::from_secs(10)).build()?,
            client,
            config_token,
            installer,
            app_token,
            directory: workspace::Directory::default(),
            token_team: Default::default(),
        };
        state.check()?;
        Ok(state)
    }

    /// Renders every reply and view once with sample data, so a broken template fails at
    /// start-up.
    fn check(&self) -> anyhow::Result<()> {
        let card = self.render_card(&sample_card()).context("rendering a sample risk card")?;
        check_blocks(&card["blocks"]).map_err(anyhow::Error::msg)?;
        for reply in samples() {
            let message = self.render(&reply).with_context(|| format!("rendering a sample {reply:?}"))?;
            check_blocks(&message["blocks"]).map_err(anyhow::Error::msg)?;
        }
        for (name, view) in self.sample_views()? {
            check_view(&view).with_context(|| format!("the sample {name}"))?;
        }
        Ok(())
    }

    /// The settings modal, the false-alarm modal and the home tab with sample data.
    pub fn sample_views(&self) -> anyhow::Result<Vec<(&'static str, Value)>> {
        let user = sample_user();
        let settings = alerts::settings::AlertSettings::default();
        let form = views::SettingsForm::new(&settings, &user, &self.channels, "command");
        let home = views::HomeDeal {
            deal_id: "D1".into(),
            company: "Acme <Corp>".into(),
            risk_score: 82,
            risk_category: "critical".into(),
            amount: Some(45_000.0),
            url: Some("https://crm.example.com/deals/D1".into()),
        };
        let line = views::HomeLine {
            kind: "critical deal".into(),
            subject: "Acme & Sons".into(),
            score: Some(82),
            when: "Tue 09 Jun 09:00".into(),
            until: "until Wed 10 Jun 09:00".into(),
        };
        Ok(vec![
            ("settings modal", self.settings_modal(&form)?),
            ("false-alarm modal", self.false_alarm_modal("Acme <Corp> & Sons", "{}")?),
            (
                "home tab",
                self.home(
                    &user,
                    &[home],
                    3,
                    std::slice::from_ref(&line),
                    std::slice::from_ref(&line),
                    &["segment decline".into()],
                    "2026-06-10",
                )?,
            ),
            ("empty home tab", self.home(&user, &[], 0, &[], &[], &[], "2026-06-10")?),
        ])
    }

    fn view(&self, template: &str, context: &tera::Context) -> anyhow::Result<Value> {
        let rendered = self.replies.render(template, context)?;
        serde_json::from_str(&rendered)
            .with_context(|| format!("prompts/slack/{template}.tera did not produce JSON:\n{rendered}"))
    }

    pub fn settings_modal(&self, form: &views::SettingsForm) -> anyhow::Result<Value> {
        let mut context = tera::Context::new();
        context.insert("form", form);
        self.view("settings_modal.json", &context)
    }

    pub fn false_alarm_modal(&self, subject: &str, metadata: &str) -> anyhow::Result<Value> {
        let mut context = tera::Context::new();
        context.insert("subject", subject);
        context.insert("metadata", metadata);
        self.view("false_alarm_modal.json", &context)
    }

    #[allow(clippy::too_many_arguments)]
    pub fn home(
        &self,
        user: &User,
        deals: &[views::HomeDeal],
        total: usize,
        alerts: &[views::HomeLine],
        snoozes: &[views::HomeLine],
        muted: &[String],
        as_of: &str,
    ) -> anyhow::Result<Value> {
        let mut context = tera::Context::new();
        context.insert("nl", "\n");
        context.insert("name", &user.name);
        context.insert("deals", deals);
        context.insert("total", &total);
        context.insert("alerts", alerts);
        context.insert("snoozes", snoozes);
        context.insert("muted", muted);
        context.insert("as_of", as_of);
        self.view("home.json", &context)
    }

    /// The link to a deal in the CRM, when `[alerts] deal_url` is set.
    fn deal_link(&self, deal_id: &str) -> Option<String> {
        self.deal_url.as_ref().map(|u| u.replace("{deal_id}", &alerts::templates::urlencoding(deal_id)))
    }

    /// A risk card (the engine's `RiskScore` as JSON) as a Slack message. Every text here and in
    /// the templates that a name can reach is escaped for mrkdwn (its `text` too, which
    /// notifications read).
    pub fn render_card(&self, card: &Value) -> anyhow::Result<Value> {
        let mut context = tera::Context::new();
        context.insert("nl", "\n");
        context.insert("card", card);
        let id = card["deal_id"].as_str().unwrap_or_default();
        context.insert("deal_url", &self.deal_link(id));
        let company = mrkdwn(card["company"].as_str().unwrap_or(id));
        let text = format!("{company}: risk {}/100", card["risk_score"]);
        self.blocks("risk_card.json", &context, &text)
    }

    fn blocks(&self, template: &str, context: &tera::Context, text: &str) -> anyhow::Result<Value> {
        let rendered = self.replies.render(template, context)?;
        let blocks: Value = serde_json::from_str(&rendered)
            .with_context(|| format!("prompts/slack/{template}.tera did not produce JSON:\n{rendered}"))?;
        Ok(json!({ "text": text, "blocks": blocks }))
    }

    /// A question's answer: its card (a deal's risk, the pipeline) or its words, with
    /// "Understood: …" under it.
    fn render_answer(&self, answered: &service::chat::ask::Answered) -> anyhow::Result<Value> {
        let understood =
            json!({ "type": "context", "elements": [{ "type": "mrkdwn", "text": mrkdwn(&answered.understood) }] });
        if let Some(card) = &answered.card {
            let mut message = self.render(card)?;
            if let Some(blocks) = message["blocks"].as_array_mut() {
                blocks.push(understood);
            }
            return Ok(message);
        }
        let mut text = self.questions.text(answered, service::chat::ask::Style::SLACK)?;
        // A section's text holds 3,000 characters.
        if text.chars().count() > 2900 {
            text = text.chars().take(2890).collect::<String>() + "…\n```";
        }
        let mut context = tera::Context::new();
        context.insert("text", &text);
        context.insert("understood", &mrkdwn(&answered.understood));
        let fallback = text.lines().next().unwrap_or_default().replace('*', "");
        self.blocks("answer.json", &context, &fallback)
    }

    /// A reply as a Slack message: `text` (the notification fallback) and Block Kit `blocks`.
    pub fn render(&self, reply: &Reply) -> anyhow::Result<Value> {
        let mut context = tera::Context::new();
        context.insert("nl", "\n");
        let (template, text) = match reply {
            Reply::RiskCard { card } => return self.render_card(&serde_json::to_value(card)?),
            Reply::Answer { answered } => return self.render_answer(answered),
            Reply::AskBack { question, text, options } => {
                context.insert("question", question);
                context.insert("text", text);
                context.insert("options", options);
                ("ask_back.json", mrkdwn(text))
            }
            Reply::PickList { query, candidates } => {
                context.insert("query", query);
                context.insert("candidates", candidates);
                ("pick_list.json", format!("Several deals match {}", mrkdwn(query)))
            }
            Reply::NotFound { query, suggestions } => {
                context.insert("query", query);
                context.insert("suggestions", suggestions);
                ("not_found.json", format!("No open deal called {}", mrkdwn(query)))
            }
            Reply::Pipeline { view } => {
                context.insert("view", view);
                let text = format!(
                    "Pipeline: {} open deals, {} risk-adjusted",
                    view.open_deals,
                    alerts::templates::money(view.risk_adjusted_value)
                );
                ("pipeline.json", text)
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

    /// The tenant of a workspace connected by the config.
    fn configured(&self, team: &str) -> Option<&TenantId> {
        self.workspaces.get(team)
    }

    /// The Web API with the config's bot token.
    fn config_web(&self) -> Option<Web> {
        Some(Web { client: self.client.clone()?, token: self.config_token.clone()? })
    }

    pub fn client(&self) -> Option<Arc<SlackWebClient>> {
        self.client.clone()
    }

    /// An installation's bot token, unsealed.
    fn unseal(&self, installed: &SlackInstallation) -> anyhow::Result<SlackApiToken> {
        let installer = self.installer.as_ref().context("an installed workspace, but [slack] client_id is not set")?;
        let token = installer.unseal(&installed.team_id, &installed.token_sealed)?;
        Ok(SlackApiToken::new(SlackApiTokenValue::new(token)))
    }
}

/// A view (modal or home tab) Slack would take: blocks within the limits (100 for a view), the
/// type and the blocks slack-morphism (Slack's schema) knows.
pub fn check_view(view: &Value) -> anyhow::Result<()> {
    let blocks = &view["blocks"];
    let n = blocks.as_array().map_or(0, Vec::len);
    anyhow::ensure!(n <= 100, "{n} blocks; a view takes at most 100");
    let mut limited = blocks.clone();
    if let Some(list) = limited.as_array_mut() {
        list.truncate(50);
    }
    check_blocks(&limited).map_err(anyhow::Error::msg)?;
    if view["type"] == "modal" {
        for (field, max) in [("title", 24), ("submit", 24), ("close", 24)] {
            let text = view[field]["text"].as_str().unwrap_or_default();
            anyhow::ensure!(text.chars().count() <= max, "the modal's {field} {text:?} is over {max} characters");
        }
        let metadata = view["private_metadata"].as_str().unwrap_or_default();
        anyhow::ensure!(metadata.len() <= 3000, "private_metadata is over 3000 characters");
    }
    serde_json::from_value::<SlackView>(view.clone()).map_err(|e| anyhow::anyhow!("not a Slack view: {e}"))?;
    Ok(())
}

/// The words of a short reply, and a hint under them: help from `prompts/slack/help.txt`.
fn notice(reply: &Reply, replies: &Tera) -> anyhow::Result<(String, Option<String>)> {
    if let Reply::Help = reply {
        return Ok((replies.render("help.txt", &tera::Context::new())?.trim().to_owned(), None));
    }
    Ok(service::chat::notice(reply, service::chat::ask::Style::SLACK).unwrap_or_default())
}

pub use service::chat::samples::{sample_card, sample_pipeline, sample_user, samples};

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

pub fn routes(state: SlackApp) -> Router<SlackApp> {
    let signed = Router::new()
        .route("/slack/commands", post(commands))
        .route("/slack/interactions", post(interact::interactions))
        .route("/slack/events", post(events::events))
        .route_layer(axum::middleware::from_fn_with_state(state, verify::verify));
    // The install flow is a browser's, not Slack's: it is not signed; its state is.
    signed.route("/slack/install", get(install::install)).route("/slack/oauth/callback", get(install::callback))
}

/// An ephemeral answer to the person who typed the command.
fn ephemeral(mut message: Value) -> Response {
    message["response_type"] = "ephemeral".into();
    axum::Json(message).into_response()
}

fn words(state: &SlackApp, text: impl Into<String>) -> Response {
    let reply = Reply::Unreadable { message: text.into() };
    match state.slack.render(&reply) {
        Ok(m) => ephemeral(m),
        Err(e) => internal(&e),
    }
}

const SORRY: &str = "Something went wrong on our side; please try again in a minute.";

fn internal(e: &anyhow::Error) -> Response {
    tracing::error!(error = ?e, "answering Slack");
    ephemeral(json!({ "text": SORRY }))
}

/// Logs a failed Web API call and says what it means for the user.
fn web_failed(method: &str, e: SlackClientError) -> SendError {
    let e = slack_error(e);
    metrics::counter!("slack_api_errors_total", "method" => method.to_owned()).increment(1);
    tracing::warn!(method, error = %e, "a Slack Web API call failed");
    e
}

/// Opens a modal for a click or command's `trigger_id` (valid for 3 s, so no retry).
async fn open_modal(web: &Web, trigger: &str, view: Value) -> Result<(), SendError> {
    let view: SlackView = serde_json::from_value(view).map_err(|e| SendError::Permanent(format!("not a view: {e}")))?;
    let request = SlackApiViewsOpenRequest::new(SlackTriggerId(trigger.to_owned()), view);
    web.client.open_session(&web.token).views_open(&request).await.map(|_| ()).map_err(|e| web_failed("views.open", e))
}

/// The settings modal for `user`.
async fn settings_modal(state: &SlackApp, ws: &Workspace, user: &User, from: &str) -> anyhow::Result<Value> {
    let stored = state.store.alert_settings(&ws.tenant, &user.user_id).await?;
    let settings = alerts::settings::AlertSettings::from_stored(stored);
    let form = views::SettingsForm::new(&settings, user, &state.slack.channels, from);
    state.slack.settings_modal(&form)
}

// ---------------------------------------------------------------------------------------------
// POST /slack/commands

async fn commands(State(state): State<SlackApp>, body: Bytes) -> Response {
    match serde_urlencoded::from_bytes(&body) {
        Ok(event) => command(&state, event).await,
        Err(e) => (StatusCode::BAD_REQUEST, format!("not a Slack command: {e}")).into_response(),
    }
}

/// One slash command, from the HTTP path or a Socket Mode envelope: Slack's answer.
async fn command(state: &SlackApp, event: SlackCommandEvent) -> Response {
    let state = state.clone();
    let (ws, user, scope) = match workspace::identify(&state, event.team_id.as_ref(), event.user_id.as_ref()).await {
        Ok(who) => who,
        Err(unknown) => return words(&state, unknown.message()),
    };
    let parsed = command::parse(event.command.as_ref(), event.text.as_deref().unwrap_or_default());
    let command = match parsed {
        Ok(c) => c,
        Err(e) => return words(&state, e.to_string()),
    };
    metrics::counter!("slack_commands_total", "command" => event.command.to_string()).increment(1);
    if command == Command::Settings {
        return settings_command(&state, &ws, &user, event.trigger_id.as_ref()).await;
    }
    let mut work = {
        let state = state.clone();
        let tenant = ws.tenant.clone();
        tokio::spawn(async move {
            let reply = service::chat::answer(&state, &tenant, &user, scope, command, "slack").await?;
            state.slack.render(&reply)
        })
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
                        json!({ "text": SORRY })
                    }
                    Err(e) => json!({ "text": format!("The answer failed: {e}") }),
                };
                respond(&state, &url, message, false).await;
            });
            ephemeral(json!({ "text": "Working on it…" }))
        }
    }
}

/// `/dealwatch settings`: the settings modal, or why it did not open.
async fn settings_command(state: &SlackApp, ws: &Workspace, user: &User, trigger: &str) -> Response {
    let Some(web) = ws.web.as_ref() else {
        return words(
            state,
            "I can't open forms in this workspace (no bot token); POST /v1/alerts/configure takes the same settings.",
        );
    };
    let view = match settings_modal(state, ws, user, "command").await {
        Ok(v) => v,
        Err(e) => return internal(&e),
    };
    match open_modal(web, trigger, view).await {
        // The modal is the answer: nothing is posted in the channel.
        Ok(()) => StatusCode::OK.into_response(),
        Err(e) => words(state, format!("Slack did not open the settings form ({e}); please try again.")),
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
async fn respond(state: &SlackApp, url: &str, mut message: Value, replace: bool) {
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

#[cfg(test)]
mod tests;
