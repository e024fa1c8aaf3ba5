//! The Discord adapter: the only code that knows Discord's wire format, on serenity.
//!
//! - The gateway client runs inside `dealwatch serve` ([`Transport::start`]): it registers the
//!   slash commands `/deal-risk`, `/pipeline`, `/ask` and `/dealwatch` in every connected server
//!   (guild) as the server is announced (after READY, or on joining one later), and every
//!   interaction it receives goes to [`handle`].
//! - Commands and questions are answered through [`service::chat`], privately to the person who
//!   asked (an ephemeral message: a rep's deals are not shown to the channel). An answer ready
//!   within `[discord] answer_within_ms` is the interaction's response; a slower one is deferred
//!   and finished by editing the response, inside Discord's 3 seconds.
//! - Buttons and select menus carry `id:value` custom ids that [`service::chat::actions`] reads:
//!   the click is stored once and the message is updated in place ("🔕 Snoozed until Tue 09 Jun
//!   09:00 by @maria"); Mark false alarm opens a form asking why first.
//! - A Discord server maps to a tenant (`[discord] guilds`); a Discord user is the Dealwatch user
//!   mapped to them in `[discord] users` or by the Discord id stored with the user
//!   (Discord does not tell bots anyone's email).

pub mod channel;
pub mod messages;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use axum::Router;
use secrecy::ExposeSecret;
use serde_json::{Value, json};
use serenity::all::{
    ApplicationId, CommandDataOptionValue, CommandInteraction, ComponentInteraction, ComponentInteractionDataKind,
    GatewayIntents, GuildId, Interaction, InteractionId, ModalInteraction, Ready,
};
use serenity::http::Http;

use alerts::templates::Templates;
use service::Services;
use service::chat::Reply;
use service::chat::actions::{self, Action, Clicker, Judge, Outcome};
use service::chat::transport::{Running, Transport};
use service::tenants::Scope;
use store::{TenantId, User};

/// The platform's name, as users choose it among their alert channels.
pub const PLATFORM: &str = "discord";

/// An interaction response's kinds (Discord's numbers).
const REPLY: u8 = 4;
const DEFER_REPLY: u8 = 5;
const DEFER_UPDATE: u8 = 6;
const UPDATE: u8 = 7;
const MODAL: u8 = 9;
/// The flag that shows a message to the person who asked only.
const EPHEMERAL: u64 = 1 << 6;

/// The Discord adapter, configured.
#[derive(Debug, Clone)]
pub struct Discord {
    state: Arc<DiscordState>,
}

/// What the adapter holds, built once at start-up.
pub struct DiscordState {
    pub http: Arc<Http>,
    token: secrecy::SecretString,
    pub messages: messages::Messages,
    alerts: Arc<Templates>,
    /// Discord server (guild id) → tenant.
    guilds: BTreeMap<String, TenantId>,
    /// Dealwatch user id → Discord user id.
    users: settings::UserLinks,
    deadline: Duration,
    gateway: bool,
}

impl std::fmt::Debug for DiscordState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DiscordState").field("guilds", &self.guilds).finish_non_exhaustive()
    }
}

/// Discord's HTTP client for the bot, at `[discord] api_url`.
fn http(d: &settings::Discord, token: &secrecy::SecretString, application: ApplicationId) -> Http {
    let builder = serenity::http::HttpBuilder::new(token.expose_secret()).application_id(application);
    match d.api_url.trim_end_matches('/') {
        "https://discord.com" => builder.build(),
        // serenity sends through a proxy only with its rate limiter off (the limiter builds
        // requests for discord.com itself); a 429 then reaches the sender, which backs off.
        proxy => builder.proxy(proxy).ratelimiter_disabled(true).build(),
    }
}

impl Discord {
    /// The adapter `[discord]` configures; `None` without a bot token.
    pub fn configured(settings: &settings::Settings) -> anyhow::Result<Option<Discord>> {
        let d = &settings.discord;
        let Some(token) = d.bot_token.clone() else { return Ok(None) };
        let application = d.application_id.context(
            "[discord] bot_token is set but application_id is not: it is on the Developer Portal's General Information page",
        )?;
        let api =
            url::Url::parse(&d.api_url).with_context(|| format!("[discord] api_url {:?} is not a URL", d.api_url))?;
        let loopback = api.host_str().is_some_and(|h| h == "127.0.0.1" || h == "localhost");
        anyhow::ensure!(
            api.scheme() == "https" || loopback,
            "[discord] api_url must be https:// (plain http only to a local test server)"
        );
        let state = DiscordState {
            http: Arc::new(http(d, &token, ApplicationId::new(application))),
            token,
            messages: messages::Messages::load(settings)?,
            alerts: Arc::new(Templates::load(settings.prompts_dir.as_deref(), settings.alerts.deal_url.clone())?),
            guilds: service::chat::transport::tenant_map("discord", &d.guilds)?,
            users: d.users.clone(),
            deadline: Duration::from_millis(d.answer_within_ms.min(2500)),
            gateway: d.gateway,
        };
        Ok(Some(Discord { state: Arc::new(state) }))
    }

    pub fn state(&self) -> Arc<DiscordState> {
        self.state.clone()
    }
}

#[async_trait::async_trait]
impl Transport for Discord {
    fn name(&self) -> &'static str {
        PLATFORM
    }

    /// A channel of a Discord server connected to this tenant (`[discord] guilds`), as Discord
    /// says: the shared bot could post into any server's channel it can see.
    async fn owns_destination(&self, tenant: &TenantId, to: &str) -> Result<(), String> {
        let id =
            to.parse::<u64>().ok().filter(|n| *n > 0).ok_or_else(|| format!("{to:?} is not a Discord channel id"))?;
        let channel = self.state.http.get_channel(serenity::all::ChannelId::new(id)).await.map_err(|e| {
            channel::sorted("reading the channel", &e).to_string() + ": the bot cannot see that channel"
        })?;
        let guild = match channel {
            serenity::all::Channel::Guild(c) => c.guild_id.to_string(),
            _ => return Err(format!("{to} is not a channel of a Discord server")),
        };
        match self.state.guilds.get(&guild) {
            Some(owner) if owner == tenant => Ok(()),
            _ => Err(format!("channel {to} is in a Discord server that is not connected to this tenant")),
        }
    }

    /// Discord is reached through the gateway: no HTTP endpoint.
    fn routes(&self) -> Router<Services> {
        Router::new()
    }

    fn channel(&self) -> Option<Arc<dyn alerts::channels::Channel>> {
        Some(Arc::new(channel::DiscordChannel::new(self.state.clone())))
    }

    async fn start(&self, state: &Services) -> anyhow::Result<Option<Running>> {
        self.state.messages.check(&state.questions, &self.state.alerts).context("checking prompts/discord")?;
        if !self.state.gateway {
            return Ok(None);
        }
        let handler = Gateway { app: state.clone(), discord: self.state.clone() };
        // The gateway client takes an HTTP client of its own (serenity owns it), made the same way.
        let application = self.state.http.application_id().context("the Discord application id")?;
        let http = http(&state.settings.discord, &self.state.token, application);
        let mut client = serenity::client::ClientBuilder::new_with_http(http, GatewayIntents::GUILDS)
            .event_handler(handler)
            .await
            .context("building the Discord gateway client")?;
        let shards = client.shard_manager.clone();
        let task = tokio::spawn(async move {
            // A refused token or a gateway that will not have us: logged, the rest of the
            // service goes on (alerts still go out over HTTP).
            if let Err(e) = client.start().await {
                tracing::error!(error = %e, "the Discord gateway connection ended");
            }
        });
        tracing::info!(guilds = self.state.guilds.len(), "Discord gateway client started");
        Ok(Some(Running {
            name: PLATFORM,
            stop: Box::new(move || {
                Box::pin(async move {
                    shards.shutdown_all().await;
                    task.abort();
                })
            }),
        }))
    }
}

/// The gateway's events.
struct Gateway {
    app: Services,
    discord: Arc<DiscordState>,
}

#[serenity::async_trait]
impl serenity::client::EventHandler for Gateway {
    async fn ready(&self, _: serenity::client::Context, ready: Ready) {
        tracing::info!(user = %ready.user.name, guilds = ready.guilds.len(), "connected to Discord");
    }

    /// Each server the bot is in arrives after READY, and a server it joins later arrives the
    /// same way: its commands are registered then.
    async fn guild_create(&self, _: serenity::client::Context, guild: serenity::all::Guild, _: Option<bool>) {
        register(&self.discord, guild.id).await;
    }

    async fn interaction_create(&self, _: serenity::client::Context, interaction: Interaction) {
        // Each interaction on its own task: a slow answer never holds up the gateway.
        let (app, discord) = (self.app.clone(), self.discord.clone());
        tokio::spawn(async move { handle(&app, &discord, interaction).await });
    }
}

/// Registers the slash commands in `guild` when it is connected to a tenant (a bulk overwrite:
/// commands we no longer have go away).
pub async fn register(discord: &DiscordState, guild: GuildId) {
    if !discord.guilds.contains_key(&guild.to_string()) {
        tracing::warn!(%guild, "a Discord server that is not connected: add it under [discord] guilds");
        return;
    }
    let result = match discord.messages.commands() {
        Ok(commands) => discord.http.create_guild_commands(guild, &commands).await.map_err(anyhow::Error::from),
        Err(e) => Err(e),
    };
    match result {
        Ok(registered) => tracing::info!(%guild, commands = registered.len(), "Discord commands registered"),
        Err(e) => tracing::error!(%guild, error = %e, "registering the Discord commands"),
    }
}

/// Why a sender is not answered with data.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Unknown {
    Server,
    User,
    Store,
}

impl Unknown {
    fn message(&self) -> &'static str {
        match self {
            Unknown::Server => {
                "This Discord server is not connected to Dealwatch yet: an admin adds it under [discord] guilds."
            }
            Unknown::User => {
                "I don't know you yet: ask a Dealwatch admin to link your Discord account to your CRM user ([discord] users)."
            }
            Unknown::Store => SORRY,
        }
    }
}

/// Who is asking: their tenant (the server's; in a direct message, the one tenant that knows
/// them), Dealwatch user and scope.
async fn identify(
    state: &Services,
    discord: &DiscordState,
    guild: Option<GuildId>,
    user: &serenity::model::user::User,
) -> Result<(TenantId, User, Scope), Unknown> {
    let tenants: Vec<TenantId> = match guild {
        Some(g) => vec![discord.guilds.get(&g.to_string()).cloned().ok_or(Unknown::Server)?],
        None => {
            let mut all: Vec<TenantId> = discord.guilds.values().cloned().collect();
            all.dedup();
            all
        }
    };
    let id = user.id.to_string();
    let mut found = Vec::new();
    for tenant in tenants {
        let users = state.store.users(&tenant).await.map_err(|e| {
            tracing::error!(error = %e, "reading users");
            Unknown::Store
        })?;
        let person = service::chat::transport::person(&users, discord.users.of(tenant.as_str()), PLATFORM, &id);
        if let Some(person) = person {
            let scope = Scope::for_user(&users, &person.user_id, person.role);
            found.push((tenant, person.clone(), scope));
        }
    }
    // Known in several tenants and asking in a direct message: which one is unclear.
    if found.len() != 1 {
        return Err(Unknown::User);
    }
    let (tenant, person, scope) = found.remove(0);
    let person = service::chat::transport::remember_link(state.store.as_ref(), &tenant, &person, PLATFORM, &id).await;
    Ok((tenant, person, scope))
}

/// One interaction from the gateway (or a test's recorded payload), answered through Discord's
/// HTTP API.
pub async fn handle(state: &Services, discord: &Arc<DiscordState>, interaction: Interaction) {
    let result = match interaction {
        Interaction::Command(command) => on_command(state, discord, &command).await,
        Interaction::Component(click) => on_component(state, discord, &click).await,
        Interaction::Modal(modal) => on_modal(state, discord, &modal).await,
        Interaction::Ping(_) | Interaction::Autocomplete(_) => Ok(()),
        _ => Ok(()),
    };
    if let Err(e) = result {
        tracing::error!(error = %format!("{e:#}"), "answering a Discord interaction");
    }
}

/// Sends an interaction's response.
async fn respond(
    discord: &DiscordState,
    id: InteractionId,
    token: &str,
    kind: u8,
    data: Option<Value>,
) -> anyhow::Result<()> {
    let mut body = json!({ "type": kind });
    if let Some(data) = data {
        body["data"] = data;
    }
    discord.http.create_interaction_response(id, token, &body, Vec::new()).await.context("the interaction response")
}

/// Answers with `work`'s message when it is ready within the deadline (`now` kind), else defers
/// (`later` kind) and edits the response when it is.
async fn answer_in_time(
    discord: &DiscordState,
    id: InteractionId,
    token: &str,
    (now, later): (u8, u8),
    ephemeral: bool,
    work: impl Future<Output = anyhow::Result<Value>> + Send + 'static,
) -> anyhow::Result<()> {
    let mut task = tokio::spawn(work);
    let flag = |mut message: Value| {
        if ephemeral {
            message["flags"] = json!(EPHEMERAL);
        }
        message
    };
    match tokio::time::timeout(discord.deadline, &mut task).await {
        Ok(done) => {
            let message = match done.context("the answer task")? {
                Ok(m) => m,
                Err(e) => {
                    tracing::error!(error = ?e, "answering a Discord interaction");
                    discord.messages.words(SORRY)?
                }
            };
            respond(discord, id, token, now, Some(flag(message))).await
        }
        Err(_) => {
            let deferred = ephemeral.then(|| json!({ "flags": EPHEMERAL }));
            respond(discord, id, token, later, deferred).await?;
            let message = match task.await.context("the answer task")? {
                Ok(m) => m,
                Err(e) => {
                    tracing::error!(error = ?e, "answering a Discord interaction after deferring it");
                    discord.messages.words(SORRY)?
                }
            };
            discord.http.edit_original_interaction_response(token, &message, Vec::new()).await?;
            Ok(())
        }
    }
}

/// What a person is told when answering them failed on our side (the cause is logged).
const SORRY: &str = "Something went wrong on our side; please try again in a minute.";

/// The text of a slash command's string option.
fn option<'a>(command: &'a CommandInteraction, name: &str) -> Option<&'a str> {
    command.data.options.iter().find(|o| o.name == name).and_then(|o| match &o.value {
        CommandDataOptionValue::String(s) => Some(s.as_str()),
        _ => None,
    })
}

/// `/deal-risk`, `/pipeline`, `/ask`, `/dealwatch`.
async fn on_command(state: &Services, discord: &Arc<DiscordState>, command: &CommandInteraction) -> anyhow::Result<()> {
    let (tenant, user, scope) = match identify(state, discord, command.guild_id, &command.user).await {
        Ok(who) => who,
        Err(unknown) => {
            let message = discord.messages.words(unknown.message())?;
            let message = json!({ "flags": EPHEMERAL, "content": message["content"] });
            return respond(discord, command.id, &command.token, REPLY, Some(message)).await;
        }
    };
    let name = command.data.name.clone();
    metrics::counter!("discord_commands_total", "command" => name.clone()).increment(1);
    let text = match name.as_str() {
        "deal-risk" => option(command, "deal"),
        "pipeline" => option(command, "filters"),
        "ask" => option(command, "question"),
        "dealwatch" => option(command, "action"),
        _ => None,
    }
    .unwrap_or_default()
    .to_owned();
    let parsed = (name != "ask").then(|| service::chat::command::parse(&name, &text));
    // The settings open in a form: that must be the interaction's response itself.
    if let Some(Ok(service::chat::command::Command::Settings)) = parsed {
        let form = discord.messages.settings_modal(&service::chat::settings_form(state, &tenant, &user).await?)?;
        return respond(discord, command.id, &command.token, MODAL, Some(form)).await;
    }
    let (state, owned) = (state.clone(), discord.clone());
    let work = async move {
        let reply = match parsed {
            None => {
                let today = state.now().date_naive();
                service::chat::ask::ask(&state, &tenant, &user, scope, &text, today, None, PLATFORM).await?.reply
            }
            Some(Ok(command)) => service::chat::answer(&state, &tenant, &user, scope, command, PLATFORM).await?,
            Some(Err(e)) => Reply::Unreadable { message: e.to_string() },
        };
        owned.messages.reply(&reply, &state.questions)
    };
    answer_in_time(discord, command.id, &command.token, (REPLY, DEFER_REPLY), true, work).await
}

/// A button or select menu.
async fn on_component(state: &Services, discord: &DiscordState, click: &ComponentInteraction) -> anyhow::Result<()> {
    let choice = match &click.data.kind {
        ComponentInteractionDataKind::StringSelect { values } => values.first().cloned(),
        _ => None,
    };
    let id = click.data.custom_id.clone();
    let action = match id.strip_prefix("ask:") {
        // The question is the ask-back message's embed: a custom id holds only 100 characters.
        Some(_) => {
            let question = click.message.embeds.first().and_then(|e| e.description.clone()).unwrap_or_default();
            Action::read(&id, Some(&question), None)
        }
        None => Action::unpack(&id, choice.as_deref()),
    };
    let Some(action) = action else {
        let message = json!({ "flags": EPHEMERAL, "content": "That button is not one of mine any more." });
        return respond(discord, click.id, &click.token, REPLY, Some(message)).await;
    };
    let (tenant, user, scope) = match identify(state, discord, click.guild_id, &click.user).await {
        Ok(who) => who,
        Err(unknown) => {
            let message = json!({ "flags": EPHEMERAL, "content": unknown.message() });
            return respond(discord, click.id, &click.token, REPLY, Some(message)).await;
        }
    };
    metrics::counter!("discord_clicks_total").increment(1);
    let clicker = Clicker { tenant: &tenant, user: &user, scope, via: PLATFORM };
    let guild = click.guild_id.map_or_else(|| "dm".to_owned(), |g| g.to_string());
    let message_id = click.message.id.to_string();
    let task_key = |deal: &str| format!("discord:{guild}:{}:{deal}:{message_id}", click.user.id);
    let outcome = match actions::act(state, &clicker, action, task_key, true).await {
        Ok(outcome) => outcome,
        Err(e) => {
            tracing::error!(error = ?e, "answering a Discord click");
            let message = json!({ "flags": EPHEMERAL, "content": SORRY });
            return respond(discord, click.id, &click.token, REPLY, Some(message)).await;
        }
    };
    match outcome {
        Outcome::Replace(reply) => {
            let message = discord.messages.reply(&reply, &state.questions)?;
            respond(discord, click.id, &click.token, UPDATE, Some(message)).await
        }
        Outcome::Judged(verdict) => {
            let message = judged(&serde_json::to_value(&click.message)?, &verdict, &user, &click.user.id.to_string());
            respond(discord, click.id, &click.token, UPDATE, Some(message)).await
        }
        Outcome::Say(text) => {
            let message = json!({ "flags": EPHEMERAL, "content": text, "allowed_mentions": { "parse": [] } });
            respond(discord, click.id, &click.token, REPLY, Some(message)).await
        }
        Outcome::Settings => {
            let form = discord.messages.settings_modal(&service::chat::settings_form(state, &tenant, &user).await?)?;
            respond(discord, click.id, &click.token, MODAL, Some(form)).await
        }
        Outcome::AskWhy { on, subject } => {
            let modal = discord.messages.why_modal(&on, &subject)?;
            respond(discord, click.id, &click.token, MODAL, Some(modal)).await
        }
    }
}

/// A form's field as typed (`None`: not in the form, or left empty).
fn typed(modal: &ModalInteraction, id: &str) -> Option<String> {
    modal.data.components.iter().flat_map(|row| row.components.iter()).find_map(|c| match c {
        serenity::all::ActionRowComponent::InputText(input) if input.custom_id == id => {
            input.value.as_deref().map(str::trim).filter(|v| !v.is_empty()).map(str::to_owned)
        }
        _ => None,
    })
}

/// The settings form, written the way `/dealwatch set` takes each value: what it asks for.
fn settings_submission(modal: &ModalInteraction) -> service::chat::form::Submission {
    let off = |v: &Option<String>| v.as_deref().is_some_and(|v| v.eq_ignore_ascii_case("off"));
    let (threshold, digest, quiet) = (typed(modal, "threshold"), typed(modal, "digest"), typed(modal, "quiet"));
    let window = quiet.as_deref().filter(|_| !off(&quiet)).and_then(|q| q.split_once('-'));
    let channels = typed(modal, "channels").unwrap_or_default();
    service::chat::form::Submission {
        critical: threshold.as_ref().map(|_| !off(&threshold)),
        threshold: threshold.clone().filter(|_| !off(&threshold)),
        channels: Some(
            channels
                .split(|c: char| c == ',' || c.is_whitespace())
                .filter(|c| !c.is_empty() && !c.eq_ignore_ascii_case("any"))
                .map(str::to_ascii_lowercase)
                .collect(),
        ),
        digest: digest.as_ref().map(|_| !off(&digest)),
        digest_time: digest.clone().filter(|_| !off(&digest)),
        timezone: typed(modal, "timezone"),
        quiet: quiet.as_ref().map(|_| !off(&quiet)),
        // "22:00" without an end is kept whole, so the settings' check names it.
        quiet_start: window.map(|w| w.0.trim().to_owned()).or_else(|| quiet.clone().filter(|_| !off(&quiet))),
        quiet_end: window.map(|w| w.1.trim().to_owned()),
        muted: None,
    }
}

/// A form's answer: the settings saved (or why not), or a false alarm stored with its reason
/// and the message it was about updated.
async fn on_modal(state: &Services, discord: &DiscordState, modal: &ModalInteraction) -> anyhow::Result<()> {
    let (tenant, user, _) = match identify(state, discord, modal.guild_id, &modal.user).await {
        Ok(who) => who,
        Err(unknown) => {
            let message = json!({ "flags": EPHEMERAL, "content": unknown.message() });
            return respond(discord, modal.id, &modal.token, REPLY, Some(message)).await;
        }
    };
    if modal.data.custom_id == "settings" {
        let saved = service::chat::save_form(state, &tenant, &user, &settings_submission(modal)).await?;
        let mut message = discord.messages.reply(&saved, &state.questions)?;
        message["flags"] = json!(EPHEMERAL);
        return respond(discord, modal.id, &modal.token, REPLY, Some(message)).await;
    }
    let Some(judge) = modal.data.custom_id.strip_prefix("why:").and_then(Judge::unpack) else {
        return respond(discord, modal.id, &modal.token, DEFER_UPDATE, None).await;
    };
    let request = service::feedback::Click {
        action: alerts::feedback::Action::FalseAlarm,
        reason: actions::reason(None, typed(modal, "reason")),
        snooze: None,
    };
    let Some(verdict) = actions::judge(state, &tenant, &user, &judge, &request).await? else {
        let message = json!({ "flags": EPHEMERAL, "content": actions::NOT_YOURS });
        return respond(discord, modal.id, &modal.token, REPLY, Some(message)).await;
    };
    match &modal.message {
        Some(message) => {
            let updated = judged(&serde_json::to_value(message)?, &verdict, &user, &modal.user.id.to_string());
            respond(discord, modal.id, &modal.token, UPDATE, Some(updated)).await
        }
        None => {
            let line = verdict.line(&user.time_zone, &format!("<@{}>", modal.user.id));
            let message = json!({ "flags": EPHEMERAL, "content": line, "allowed_mentions": { "parse": [] } });
            respond(discord, modal.id, &modal.token, REPLY, Some(message)).await
        }
    }
}

/// The message a judgement was made on, with who did what under its content and without its
/// judgement buttons: an alert loses them all, a risk card keeps its link and task buttons.
fn judged(message: &Value, verdict: &actions::Verdict, user: &User, discord_user: &str) -> Value {
    let line = verdict.line(&user.time_zone, &format!("<@{discord_user}>"));
    let kept: Vec<Value> = message["components"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|row| {
            let items: Vec<Value> = row["components"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|c| {
                    verdict.on_card()
                        && (c["style"] == 5 || c["custom_id"].as_str().is_some_and(|id| id.starts_with("task:")))
                })
                .cloned()
                .collect();
            (!items.is_empty()).then(|| json!({ "type": 1, "components": items }))
        })
        .collect();
    let mut embeds = message["embeds"].clone();
    if let Some(embed) = embeds.as_array_mut().and_then(|e| e.first_mut()) {
        let mut fields = embed["fields"].as_array().cloned().unwrap_or_default();
        fields.push(json!({ "name": "Feedback", "value": line }));
        embed["fields"] = Value::Array(fields);
    }
    let content = message["content"].as_str().unwrap_or_default();
    let content = if embeds.as_array().is_some_and(|e| !e.is_empty()) {
        content.to_owned()
    } else {
        format!("{content}\n{line}")
    };
    json!({ "content": content, "embeds": embeds, "components": kept, "allowed_mentions": { "parse": [] } })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn verdict(alert_id: &str) -> actions::Verdict {
        let given = alerts::feedback::Feedback {
            alert_id: alert_id.into(),
            user_id: "maria".into(),
            kind: engine::alerts::AlertKind::CriticalDeal,
            subject: "D1".into(),
            action: alerts::feedback::Action::Useful,
            reason: None,
            snooze_until_ms: None,
            snooze_score: None,
            score: Some(80),
            created_at: chrono::Utc::now(),
            dedup_key: "k".into(),
        };
        actions::Verdict { given, threshold: None }
    }

    #[test]
    fn a_judged_alert_loses_its_buttons_and_says_who_did_what() {
        let message = json!({
            "content": "", "embeds": [{ "title": "🚨 Critical deal: Acme", "fields": [] }],
            "components": [
                { "type": 1, "components": [
                    { "type": 2, "style": 5, "label": "View deal", "url": "https://crm/D1" },
                    { "type": 2, "style": 1, "label": "Task", "custom_id": "task:D1" },
                    { "type": 2, "style": 3, "label": "Useful", "custom_id": "useful:a1" }] },
                { "type": 1, "components": [{ "type": 3, "custom_id": "snooze", "options": [] }] }]
        });
        let user = service::chat::samples::sample_user();
        let alert = judged(&message, &verdict("a1"), &user, "1200");
        assert_eq!(alert["components"], json!([]), "an alert keeps no buttons");
        assert_eq!(alert["embeds"][0]["fields"][0]["value"], "✅ Marked useful by <@1200>");
        let card = judged(&message, &verdict("card:D1|82"), &user, "1200");
        let kept: Vec<&str> = card["components"][0]["components"]
            .as_array()
            .expect("row")
            .iter()
            .map(|c| c["label"].as_str().unwrap_or(""))
            .collect();
        assert_eq!(kept, ["View deal", "Task"], "a card keeps its link and task buttons");
        assert_eq!(card["components"].as_array().map(Vec::len), Some(1));
    }
}
