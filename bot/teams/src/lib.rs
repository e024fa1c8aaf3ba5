//! The Microsoft Teams adapter: the only code that knows the Bot Framework's wire format. There
//! is no Bot Framework SDK for Rust; this is the small part of it a bot needs.
//!
//! - `POST /api/messages` takes the Bot Connector's activities. Each one's JWT is verified
//!   before the body is read ([`verify`]), then the activity must name the token's service URL,
//!   one on the allow-list. Messages are commands (`deal-risk Acme`, `pipeline region:APAC`,
//!   `dealwatch mute critical`) or, otherwise, plain-English questions; in a channel Teams sends
//!   only the messages that mention the bot. Answers go back through the Connector as replies.
//! - Card buttons are Universal Actions (`Action.Execute`, an `invoke` named
//!   `adaptiveCard/action`): the click is done by [`service::chat::actions`] and the answer to the
//!   invoke replaces the card ("🔕 Snoozed until Tue 09 Jun 09:00 by Maria"). Clients without
//!   Universal Actions send the `Action.Submit` fallback as a message with a `value`; the card is
//!   then updated through the Connector.
//! - Installing the app (or a first message) stores the conversation reference the Connector
//!   needs for proactive alerts ([`channel`]); Teams users are linked to Dealwatch users by the
//!   config, the id stored with the user, or their email (read from the conversation's roster
//!   and then stored).

pub mod cards;
pub mod channel;
pub mod connector;
mod people;
pub mod verify;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use axum::body::Bytes;
use axum::extract::{Extension, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::Mutex;

use alerts::channels::SendError;
use alerts::templates::Templates;
use people::{Unknown, identify, remember};
use service::Services;
use service::chat::Reply;
use service::chat::actions::{self, Action, Clicker, Outcome};
use service::chat::transport::{Running, Transport};
use service::tenants::Scope;
use store::{Store, TenantId, User};

/// The platform's name, as users choose it among their alert channels.
pub const PLATFORM: &str = "teams";

/// How long a roster lookup that found nobody is remembered.
const MISS_TTL: Duration = Duration::from_secs(3600);

/// The Teams adapter, configured.
#[derive(Debug, Clone)]
pub struct Teams {
    state: Arc<TeamsState>,
}

/// What the adapter holds, built once at start-up.
pub struct TeamsState {
    verifier: verify::Verifier,
    pub connector: Arc<connector::Connector>,
    pub cards: cards::Cards,
    /// The alert templates, for redrawing an alert card after a click.
    alerts: Arc<Templates>,
    /// Microsoft 365 tenant → Dealwatch tenant.
    tenants: BTreeMap<String, TenantId>,
    /// Dealwatch user id → Entra object id.
    users: settings::UserLinks,
    store: Arc<dyn Store>,
    /// Where the time comes from (the service's clock).
    clock: Arc<dyn service::Clock>,
    /// Entra object ids the roster had no Dealwatch user for, and when asked.
    misses: Mutex<HashMap<String, Instant>>,
    /// Conversation references stored by this process, so each is written once.
    remembered: Mutex<HashSet<(String, String, String, String)>>,
}

impl std::fmt::Debug for TeamsState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TeamsState").field("connector", &self.connector).field("tenants", &self.tenants).finish()
    }
}

impl Teams {
    /// The adapter `[teams]` configures; `None` without an app id.
    pub fn configured(
        settings: &settings::Settings,
        store: Arc<dyn Store>,
        clock: Arc<dyn service::Clock>,
    ) -> anyhow::Result<Option<Teams>> {
        let t = &settings.teams;
        let Some(app_id) = t.app_id.as_deref().filter(|id| !id.is_empty()) else { return Ok(None) };
        let password = t.app_password.as_ref().context(
            "[teams] app_id is set but app_password is not: the app registration's client secret signs the bot in",
        )?;
        let connector = Arc::new(connector::Connector::new(t, app_id, password)?);
        let alerts = Arc::new(Templates::load(settings.prompts_dir.as_deref(), settings.alerts.deal_url.clone())?);
        let state = TeamsState {
            verifier: verify::Verifier::new(t, app_id)?,
            connector,
            cards: cards::Cards::load(settings)?,
            alerts,
            tenants: service::chat::transport::tenant_map("teams", &t.tenants)?,
            users: t.users.clone(),
            store,
            clock,
            misses: Mutex::new(HashMap::new()),
            remembered: Mutex::new(HashSet::new()),
        };
        Ok(Some(Teams { state: Arc::new(state) }))
    }
}

#[async_trait::async_trait]
impl Transport for Teams {
    fn name(&self) -> &'static str {
        PLATFORM
    }

    /// A Teams conversation of the tenant's: one the bot was added to from an organisation
    /// connected to this tenant (its reference is stored under the tenant).
    async fn owns_destination(&self, tenant: &TenantId, to: &str) -> Result<(), String> {
        let key = format!("conversation:{}", to.split(';').next().unwrap_or(to));
        match self.state.store.conversation(tenant, PLATFORM, &key).await {
            Ok(Some(_)) => Ok(()),
            Ok(None) => Err(format!(
                "Dealwatch has not been added to the Teams conversation {to} in your organisation: add the app to that team first"
            )),
            Err(e) => Err(format!("the Teams conversations could not be read ({e}); try again")),
        }
    }

    fn routes(&self) -> Router<Services> {
        Router::new().route("/api/messages", post(messages)).layer(Extension(self.state.clone()))
    }

    fn channel(&self) -> Option<Arc<dyn alerts::channels::Channel>> {
        Some(Arc::new(channel::TeamsChannel::new(self.state.clone())))
    }

    async fn start(&self, state: &Services) -> anyhow::Result<Option<Running>> {
        // The cards are checked against every reply and alert before the server answers anyone.
        self.state.cards.check(&state.questions, &self.state.alerts).context("checking prompts/teams")?;
        tracing::info!(tenants = self.state.tenants.len(), "Microsoft Teams bot ready on /api/messages");
        Ok(None)
    }
}

/// The parts of an activity the bot reads.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Activity {
    #[serde(rename = "type")]
    kind: String,
    id: Option<String>,
    service_url: String,
    channel_id: String,
    from: Account,
    conversation: ConversationAccount,
    recipient: Option<Account>,
    text: Option<String>,
    value: Option<Value>,
    name: Option<String>,
    reply_to_id: Option<String>,
    channel_data: Option<Value>,
    members_added: Option<Vec<Account>>,
    /// `installationUpdate`: `add`, `remove` (and `-upgrade` variants).
    action: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Account {
    #[serde(default)]
    id: String,
    name: Option<String>,
    aad_object_id: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ConversationAccount {
    id: String,
    conversation_type: Option<String>,
    tenant_id: Option<String>,
}

impl Activity {
    /// The Microsoft 365 tenant the activity comes from.
    fn tenant(&self) -> Option<&str> {
        self.channel_data
            .as_ref()
            .and_then(|d| d.pointer("/tenant/id"))
            .and_then(Value::as_str)
            .or(self.conversation.tenant_id.as_deref())
    }

    /// The sender's Entra object id (their stable id across conversations).
    fn sender(&self) -> &str {
        self.from.aad_object_id.as_deref().unwrap_or(&self.from.id)
    }

    fn personal(&self) -> bool {
        self.conversation.conversation_type.as_deref().is_none_or(|t| t == "personal")
    }
}

/// `POST /api/messages`.
async fn messages(
    State(state): State<Services>,
    Extension(teams): Extension<Arc<TeamsState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let authorization = headers.get(axum::http::header::AUTHORIZATION).and_then(|v| v.to_str().ok());
    let verified = match teams.verifier.verify(authorization, state.now().timestamp()).await {
        Ok(v) => v,
        Err(service::auth::AuthError::KeysUnavailable(reason)) => {
            tracing::warn!(%reason, "the Bot Framework's signing keys are unavailable");
            return (StatusCode::SERVICE_UNAVAILABLE, "the signing keys are unavailable; try again").into_response();
        }
        Err(e) => return refused(&e.to_string()),
    };
    let activity: Activity = match serde_json::from_slice(&body) {
        Ok(a) => a,
        Err(e) => return (StatusCode::BAD_REQUEST, format!("not a Bot Framework activity: {e}")).into_response(),
    };
    if let Err(e) = verified.admits(&activity.service_url, &activity.channel_id) {
        return refused(&e.to_string());
    }
    if !teams.connector.allows(&activity.service_url) {
        return refused("the activity's serviceUrl is not in [teams] service_urls");
    }
    metrics::counter!("teams_activities_total", "type" => activity.kind.clone()).increment(1);
    match activity.kind.as_str() {
        "message" => {
            if let Err(e) = message(&state, &teams, &activity).await {
                tracing::error!(error = ?e, "answering a Teams message");
            }
            StatusCode::OK.into_response()
        }
        "invoke" if activity.name.as_deref() == Some("adaptiveCard/action") => invoke(&state, &teams, &activity).await,
        "invoke" => (StatusCode::NOT_IMPLEMENTED, "unknown invoke").into_response(),
        "conversationUpdate" | "installationUpdate" => {
            if let Err(e) = installed(&teams, &activity).await {
                tracing::error!(error = ?e, "storing a Teams installation");
            }
            StatusCode::OK.into_response()
        }
        _ => StatusCode::OK.into_response(),
    }
}

fn refused(reason: &str) -> Response {
    tracing::info!(%reason, "a Teams activity was refused");
    metrics::counter!("teams_refused_total").increment(1);
    (StatusCode::FORBIDDEN, "forbidden").into_response()
}

/// The app was installed (or the bot added to a conversation): its reference is stored and the
/// bot says what it does.
async fn installed(teams: &TeamsState, activity: &Activity) -> anyhow::Result<()> {
    let bot_added = activity
        .members_added
        .as_ref()
        .is_some_and(|m| m.iter().any(|a| Some(&a.id) == activity.recipient.as_ref().map(|r| &r.id)));
    let installing =
        activity.kind == "installationUpdate" && activity.action.as_deref().is_some_and(|a| a.starts_with("add"));
    if !bot_added && !installing {
        return Ok(());
    }
    let Some(tenant) = teams.tenants.get(activity.tenant().unwrap_or_default()).cloned() else {
        tracing::warn!(org = ?activity.tenant(), "Dealwatch was installed in Teams by an organisation that is not connected");
        return Ok(());
    };
    remember(teams, &tenant, activity).await;
    if bot_added {
        let card = teams.cards.words(&teams.cards.help()?)?;
        send(teams, activity, cards::activity(card, "Dealwatch")).await?;
    }
    Ok(())
}

/// A message: a command, a question, or an `Action.Submit` click. A failure of ours is said to
/// the person (without our internals); a Connector that cannot take the reply is logged.
async fn message(state: &Services, teams: &TeamsState, activity: &Activity) -> anyhow::Result<()> {
    let (tenant, user, scope) = match identify(teams, activity).await {
        Ok(who) => who,
        Err(unknown) => {
            let card = teams.cards.words(unknown.message())?;
            return send(teams, activity, cards::activity(card, unknown.message())).await;
        }
    };
    remember(teams, &tenant, activity).await;
    if let Some(data) = activity.value.as_ref().filter(|v| v["verb"].is_string()) {
        return submitted(state, teams, activity, (&tenant, &user, scope), data).await;
    }
    let reply = match answer_message(state, teams, activity, (&tenant, &user, scope)).await {
        Ok(reply) => reply,
        Err(e) => {
            tracing::error!(error = ?e, "answering a Teams message");
            let sorry = Unknown::Store.message();
            cards::activity(teams.cards.words(sorry)?, sorry)
        }
    };
    if activity.personal() {
        return send(teams, activity, reply).await;
    }
    // Asked in a channel or group chat: the answer is the asker's, from the deals they may see,
    // so it goes to their one-to-one chat with the bot; the channel hears where it went.
    let said = match privately(teams, &tenant, activity, reply).await {
        Ok(()) => "I've sent you the answer in our private chat.",
        Err(e) => {
            tracing::warn!(error = %e, "a Teams answer could not go to the asker's private chat");
            "I answer privately: open a chat with Dealwatch (Apps → Dealwatch) and ask there."
        }
    };
    send(teams, activity, cards::activity(teams.cards.words(said)?, said)).await
}

/// Sends `reply` into the sender's one-to-one chat with the bot.
async fn privately(teams: &TeamsState, tenant: &TenantId, activity: &Activity, mut reply: Value) -> anyhow::Result<()> {
    let chat = channel::personal_chat(teams, tenant, activity.sender(), &activity.from.id).await?;
    reply["from"] = json!({ "id": teams.connector.bot_id() });
    reply["conversation"] = json!({ "id": chat.conversation_id });
    teams.connector.send(&chat.service_url, &chat.conversation_id, None, &reply).await?;
    Ok(())
}

/// The card answering a message's words: a command's, or a question's.
async fn answer_message(
    state: &Services,
    teams: &TeamsState,
    activity: &Activity,
    (tenant, user, scope): (&TenantId, &User, Scope),
) -> anyhow::Result<Value> {
    let text = plain_text(activity.text.as_deref().unwrap_or_default());
    let reply = match command_of(&text) {
        Some((name, rest)) => match service::chat::command::parse(name, rest) {
            Ok(command) => {
                metrics::counter!("teams_commands_total", "command" => name.to_owned()).increment(1);
                service::chat::answer(state, tenant, user, scope, command, PLATFORM).await?
            }
            Err(e) => Reply::Unreadable { message: e.to_string() },
        },
        None if text.is_empty() => Reply::Help,
        None => {
            let today = state.now().date_naive();
            service::chat::ask::ask(state, tenant, user, scope, &text, today, None, PLATFORM).await?.reply
        }
    };
    let card = match &reply {
        Reply::Settings => settings_card(state, teams, tenant, user, None).await?,
        other => teams.cards.reply(other, &state.questions)?,
    };
    Ok(cards::activity(card, &summary(&reply)))
}

/// The settings form on a card, with what the last save did (a `Done` or an `Unreadable`).
async fn settings_card(
    state: &Services,
    teams: &TeamsState,
    tenant: &TenantId,
    user: &User,
    saved: Option<&Reply>,
) -> anyhow::Result<Value> {
    let form = service::chat::settings_form(state, tenant, user).await?;
    let (notice, failed) = match saved {
        Some(Reply::Done { text, .. }) => (Some(text.as_str()), false),
        Some(Reply::Unreadable { message }) => (Some(message.as_str()), true),
        _ => (None, false),
    };
    teams.cards.settings(&form, notice, failed)
}

/// The settings form's Save: what its inputs ask for (unticked boxes and empty fields included).
fn submission(data: &Value) -> service::chat::form::Submission {
    let text = |key: &str| data[key].as_str().map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned);
    let flag = |key: &str| data[key].as_str().map(|v| v == "true");
    let list = |key: &str| {
        Some(
            data[key]
                .as_str()
                .unwrap_or_default()
                .split(',')
                .map(str::trim)
                .filter(|v| !v.is_empty())
                .map(str::to_owned)
                .collect(),
        )
    };
    service::chat::form::Submission {
        critical: flag("critical"),
        threshold: text("threshold"),
        channels: list("channels"),
        digest: flag("digest"),
        digest_time: text("digest_time"),
        timezone: text("timezone"),
        quiet: flag("quiet"),
        quiet_start: text("quiet_start"),
        quiet_end: text("quiet_end"),
        muted: list("muted"),
    }
}

/// The notification line of a reply (what Teams shows in the activity feed).
fn summary(reply: &Reply) -> String {
    match reply {
        Reply::RiskCard { card } => format!("{}: risk {}/100", card.company, card.risk_score),
        Reply::Pipeline { view } => format!("Pipeline: {} open deals", view.open_deals),
        _ => "Dealwatch".into(),
    }
}

/// Sends `reply` into the activity's conversation as a reply to it. A busy Connector (429, 5xx)
/// is tried once more after the wait it asks for, up to five seconds; then the reply is lost
/// and logged (Teams does not deliver the message again).
async fn send(teams: &TeamsState, activity: &Activity, mut reply: Value) -> anyhow::Result<()> {
    reply["from"] = json!({ "id": teams.connector.bot_id() });
    reply["conversation"] = json!({ "id": activity.conversation.id });
    reply["recipient"] = json!({ "id": activity.from.id, "name": activity.from.name });
    reply["replyToId"] = json!(activity.id);
    let conversation = &activity.conversation.id;
    let reply_to = activity.id.as_deref();
    let service = &activity.service_url;
    match teams.connector.send(service, conversation, reply_to, &reply).await {
        Ok(_) => Ok(()),
        Err(SendError::Transient { reason, retry_after }) => {
            let wait = retry_after.unwrap_or(Duration::from_secs(1));
            anyhow::ensure!(
                wait <= Duration::from_secs(5),
                "the Teams Connector is busy ({reason}); the reply is lost"
            );
            tracing::info!(%reason, ?wait, "the Teams Connector is busy; retrying the reply once");
            tokio::time::sleep(wait).await;
            teams.connector.send(service, conversation, reply_to, &reply).await.map(|_| ()).map_err(anyhow::Error::from)
        }
        Err(e) => Err(e.into()),
    }
}

/// A message's words without the `<at>Dealwatch</at>` mentions and the HTML Teams puts around
/// them.
fn plain_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find('<') {
        out.push_str(&rest[..start]);
        let tail = &rest[start..];
        let Some(end) = tail.find('>') else {
            out.push_str(tail);
            rest = "";
            break;
        };
        let tag = &tail[1..end];
        if tag.eq_ignore_ascii_case("at") || tag.to_ascii_lowercase().starts_with("at ") {
            // The mention's text goes with it.
            match tail.to_ascii_lowercase().find("</at>") {
                Some(close) => rest = &tail[close + 5..],
                None => rest = &tail[end + 1..],
            }
        } else {
            out.push(' ');
            rest = &tail[end + 1..];
        }
    }
    out.push_str(rest);
    let decoded = out
        .replace("&nbsp;", " ")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&amp;", "&");
    decoded.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// A command typed in a message (`deal-risk Acme`, `/pipeline region:APAC`, `help`): the command
/// name as the command parser takes it, and its text.
fn command_of(text: &str) -> Option<(&'static str, &str)> {
    let (first, rest) = text.split_once(char::is_whitespace).unwrap_or((text, ""));
    let word = first.trim_start_matches('/').to_ascii_lowercase();
    let name = match word.as_str() {
        "deal-risk" | "dealrisk" | "deal_risk" | "risk" => "deal-risk",
        "pipeline" => "pipeline",
        "dealwatch" => "dealwatch",
        // `/dealwatch`'s subcommands typed alone.
        "help" | "settings" | "mute" | "unmute" => return Some(("dealwatch", text.trim_start_matches('/'))),
        _ => return None,
    };
    Some((name, rest.trim()))
}

/// The click a card's data carries: its verb, value and chosen option, and a false alarm's
/// reason typed into the card.
fn click_of(data: &Value) -> Option<Action> {
    let text = |key: &str| data[key].as_str().filter(|s| !s.is_empty());
    let mut action = Action::read(text("verb")?, text("value"), text("choice"))?;
    if let Action::Alert(_, request) | Action::Card(_, _, request) = &mut action
        && request.action == alerts::feedback::Action::FalseAlarm
    {
        request.reason = actions::reason(text("reason").map(str::to_owned), text("details").map(str::to_owned));
    }
    Some(action)
}

/// An `adaptiveCard/action` invoke (Action.Execute): the answer replaces the card, or shows a
/// message and leaves it.
async fn invoke(state: &Services, teams: &TeamsState, activity: &Activity) -> Response {
    let answer = |body: Value| Json(body).into_response();
    let (tenant, user, scope) = match identify(teams, activity).await {
        Ok(who) => who,
        Err(unknown) => return answer(cards::invoke_message(unknown.message())),
    };
    remember(teams, &tenant, activity).await;
    let data = activity.value.as_ref().and_then(|v| v.pointer("/action/data")).cloned().unwrap_or(Value::Null);
    let verb = activity.value.as_ref().and_then(|v| v.pointer("/action/verb")).and_then(Value::as_str);
    let mut data = data;
    if let (Some(verb), Some(map)) = (verb, data.as_object_mut()) {
        map.insert("verb".into(), verb.into());
    }
    match clicked(state, teams, activity, (&tenant, &user, scope), &data).await {
        Ok(Shown::Card(card)) => answer(cards::invoke_card(card)),
        Ok(Shown::Words(text)) => answer(cards::invoke_message(&text)),
        Err(e) => {
            tracing::error!(error = ?e, "answering a Teams card action");
            let error =
                json!({ "code": "InternalError", "message": "Something went wrong on our side; please try again." });
            answer(json!({ "statusCode": 500, "type": "application/vnd.microsoft.error", "value": error }))
        }
    }
}

/// What a click shows: a card in place of the one clicked, or words.
enum Shown {
    Card(Value),
    Words(String),
}

/// An `Action.Submit` click (a client without Universal Actions): the card is updated through
/// the Connector, or the words are sent as a reply.
async fn submitted(
    state: &Services,
    teams: &TeamsState,
    activity: &Activity,
    who: (&TenantId, &User, Scope),
    data: &Value,
) -> anyhow::Result<()> {
    match clicked(state, teams, activity, who, data).await? {
        Shown::Card(card) => {
            let Some(card_id) = activity.reply_to_id.as_deref() else {
                return send(teams, activity, cards::activity(card, "Dealwatch")).await;
            };
            let mut update = cards::activity(card, "Dealwatch");
            update["id"] = json!(card_id);
            update["from"] = json!({ "id": teams.connector.bot_id() });
            update["conversation"] = json!({ "id": activity.conversation.id });
            teams.connector.update(&activity.service_url, &activity.conversation.id, card_id, &update).await?;
            Ok(())
        }
        Shown::Words(text) => send(teams, activity, cards::activity(teams.cards.words(&text)?, &text)).await,
    }
}

/// Does a click and draws what follows.
async fn clicked(
    state: &Services,
    teams: &TeamsState,
    activity: &Activity,
    (tenant, user, scope): (&TenantId, &User, Scope),
    data: &Value,
) -> anyhow::Result<Shown> {
    if data["verb"] == "save_settings" {
        let saved = service::chat::save_form(state, tenant, user, &submission(data)).await?;
        return Ok(Shown::Card(settings_card(state, teams, tenant, user, Some(&saved)).await?));
    }
    let Some(action) = click_of(data) else {
        return Ok(Shown::Words("That button is not one of mine any more.".into()));
    };
    metrics::counter!("teams_clicks_total").increment(1);
    let card_id = activity.reply_to_id.clone().unwrap_or_default();
    let org = activity.tenant().unwrap_or_default().to_owned();
    let task_key = |deal: &str| format!("teams:{org}:{}:{deal}:{card_id}", activity.sender());
    let clicker = Clicker { tenant, user, scope: scope.clone(), via: PLATFORM };
    // The card asks why itself, so a false alarm comes with its reason.
    let outcome = actions::act(state, &clicker, action, task_key, false).await?;
    Ok(match outcome {
        Outcome::Replace(reply) => Shown::Card(teams.cards.reply(&reply, &state.questions)?),
        Outcome::Say(text) => Shown::Words(text),
        Outcome::Settings => Shown::Card(settings_card(state, teams, tenant, user, None).await?),
        // The card asks why itself; a platform that cannot ask stores the click as it is.
        Outcome::AskWhy { subject, .. } => Shown::Words(format!("Mark {subject} a false alarm from its card.")),
        Outcome::Judged(verdict) => {
            let who_name = activity.from.name.clone().unwrap_or_else(|| user.name.clone());
            let line = verdict.line(&user.time_zone, &who_name);
            Shown::Card(judged_card(state, teams, tenant, user, scope, &verdict, &line).await?)
        }
    })
}

/// The card a judgement was made on, drawn again without its judgement buttons and with who did
/// what: an alert from the outbox, a deal's risk card from its current score.
async fn judged_card(
    state: &Services,
    teams: &TeamsState,
    tenant: &TenantId,
    user: &User,
    scope: Scope,
    verdict: &actions::Verdict,
    line: &str,
) -> anyhow::Result<Value> {
    if let Some(deal) = verdict.given.alert_id.strip_prefix("card:") {
        let deal = deal.split('|').next().unwrap_or(deal).to_owned();
        let command = service::chat::command::Command::DealRisk { query: deal };
        return match service::chat::answer(state, tenant, user, scope, command, PLATFORM).await? {
            Reply::RiskCard { card } => teams.cards.risk_card(&serde_json::to_value(card)?, Some(line)),
            _ => teams.cards.words(line),
        };
    }
    let query = alerts::AlertQuery { alert_id: Some(verdict.given.alert_id.clone()), ..Default::default() };
    let Some(alert) = state.store.alerts(tenant, &query).await?.into_iter().next() else {
        return teams.cards.words(line);
    };
    let message = teams.alerts.render(&alert)?;
    teams.cards.alert(&alert, &message, Some(line))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mentions_and_markup_are_taken_out_of_a_message() {
        assert_eq!(plain_text("<at>Dealwatch</at> what's our win rate?"), "what's our win rate?");
        assert_eq!(plain_text("<p><at>Deal watch</at>&nbsp;deal-risk Acme &amp; Sons</p>"), "deal-risk Acme & Sons");
        assert_eq!(plain_text("deal-risk D12"), "deal-risk D12");
        assert_eq!(plain_text("a < b"), "a < b");
    }

    #[test]
    fn commands_are_told_from_questions_by_their_first_word() {
        assert_eq!(command_of("deal-risk Acme Corp"), Some(("deal-risk", "Acme Corp")));
        assert_eq!(command_of("/pipeline region:APAC"), Some(("pipeline", "region:APAC")));
        assert_eq!(command_of("dealwatch mute critical"), Some(("dealwatch", "mute critical")));
        assert_eq!(command_of("help"), Some(("dealwatch", "help")));
        assert_eq!(command_of("mute segment"), Some(("dealwatch", "mute segment")));
        assert_eq!(command_of("which deals are at risk?"), None);
        assert_eq!(command_of("risky deals in EMEA?"), None);
    }

    #[test]
    fn card_data_reads_back_as_clicks_with_the_reason_typed() {
        let data =
            json!({ "verb": "false_alarm", "value": "a1", "choice": "", "reason": "on track", "details": "signed" });
        match click_of(&data) {
            Some(Action::Alert(id, r)) => {
                assert_eq!(id, "a1");
                assert_eq!(r.reason.as_deref(), Some("on track: signed"));
            }
            other => panic!("{other:?}"),
        }
        let data = json!({ "verb": "snooze", "value": "", "choice": "a1|1w" });
        assert!(matches!(click_of(&data), Some(Action::Alert(ref id, _)) if id == "a1"));
        assert_eq!(click_of(&json!({ "verb": "dance" })), None);
        assert_eq!(click_of(&json!({})), None);
    }
}
