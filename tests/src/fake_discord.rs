//! A fake Discord on 127.0.0.1, for tests: the HTTP API (v10) and the Gateway on one port, so that
//! the real serenity client can be pointed at it.
//!
//! The HTTP side answers what a slash-command bot uses: `GET /gateway` and `/gateway/bot`, the bot
//! user (`/users/@me`) and application (`/oauth2/applications/@me`, `/applications/@me`), users,
//! guild and global command registration (bulk overwrite and list), interaction callbacks, the
//! interaction webhooks (`@original` get, edit and delete, follow-ups and their edits), DM channels,
//! channels, and messages (create as JSON or as `multipart/form-data` with `payload_json` and
//! `files[n]`, list newest first with `limit`, `before`, `after` and `around`, get, edit). It checks
//! `Authorization: Bot <token>` as Discord does (interaction callbacks and webhook-token routes are
//! authenticated by the token in their path instead) and answers with Discord's object shapes
//! (snowflakes as strings) and its JSON errors: `{"message": .., "code": ..}`, with the nested
//! `errors` object of `50035 Invalid Form Body` for the limits it checks (content 2000, nonce 25,
//! embeds 10 and their field limits, 5 action rows of 5 buttons, `custom_id` 100 and unique, 10 MiB
//! of files, else 413 `40005`), `50006` for an empty message, 401, 403 `50001`/`50007`, 404
//! `10003`/`10008`/`10013`/`10015`/`10062`, 400 `40060` and `50033`, 429 with Discord's headers,
//! and 500. `GET /gateway` needs no token, as with Discord.
//!
//! Discord's rules kept here: an interaction must be acknowledged once (a second callback answers
//! `40060`), within 3 seconds of its dispatch (later: `10062`; see
//! [`FakeDiscord::interaction_deadlines`]), and its token serves the webhook routes for 15 minutes
//! (later: 401 `50027`); the webhook routes answer `10015 Unknown Webhook` before the
//! acknowledgement; a follow-up sent while a deferred (type 5) response is still loading edits that
//! response instead of posting a new message, as Discord documents; callback types are checked
//! against the interaction type (6 and 7 for components only, 9 not for modal submits); a message
//! with `nonce` and `enforce_nonce: true` repeating a nonce used in the same channel in the last 5
//! minutes returns the earlier message instead of creating one; `GET` of a channel's messages is
//! newest first and leaves out ephemeral messages. Interaction responses that are not ephemeral
//! are messages of their channel (as in Discord), so [`FakeDiscord::messages`] shows them too.
//!
//! Faults are scripted like the fake Slack's: each message-creating call (`POST
//! /channels/{id}/messages`, a follow-up) and each interaction callback takes the next [`Fault`]
//! from its endpoint's script ([`FakeDiscord::script_endpoint`]), then from the general script
//! ([`FakeDiscord::script`]), then [`FakeDiscord::default_fault`]; the edits take faults from their
//! endpoint's script only. A call takes a fault once its target (channel, interaction, token) is
//! known and its body read, before the body is checked against Discord's limits. A
//! `ServerErrorAfterPost` does the call and still answers 500,
//! so a retried callback answers `40060` and a retried message without an enforced nonce is posted
//! twice, as with Discord.
//!
//! The Gateway is served at `ws://127.0.0.1:PORT/gateway` (JSON text frames, no compression, which
//! serenity accepts although its IDENTIFY asks for `compress: true`): HELLO on connect, heartbeats
//! acknowledged, IDENTIFY checked (token, intents: privileged ones are refused with 4014 unless
//! allowed with [`FakeDiscord::allow_privileged_intents`], shard), then READY and a GUILD_CREATE
//! per guild; RESUME replays the events the session missed and sends RESUMED, or INVALID_SESSION
//! for an unknown session. Tests dispatch events with [`FakeDiscord::dispatch`] and
//! [`FakeDiscord::dispatch_interaction`], and can close connections, ask for a reconnect, or
//! invalidate sessions. Heartbeats are not required (a silent client is not disconnected), and
//! `resume_gateway_url` is this same URL.
//!
//! Using it from serenity 0.12.5: build the `Http` with
//! `HttpBuilder::new(token).proxy(&fake.base).ratelimiter_disabled(true)` (serenity's ratelimiter
//! builds its requests without the proxy, so with it enabled every call goes to discord.com) and
//! give it to `ClientBuilder::new_with_http`. With the ratelimiter disabled a 429 reaches the
//! caller as an `UnsuccessfulRequest` whose status is 429 (Discord's rate-limit body has no `code`,
//! so serenity reports code -1).
//!
//! # Recorded interactions (`tests/fixtures/discord/*.json`)
//!
//! The payloads Discord puts in `d` of INTERACTION_CREATE: the slash commands `/deal-risk deal:D00042`
//! (`deal_risk_command`), `/pipeline filters:…` (`pipeline_command`), `/ask question:…`
//! (`ask_command`) and `/dealwatch action:mute critical` (`dealwatch_command`); a click on the
//! "Useful" button of an alert (`button_click`), a choice in its snooze menu (`select_snooze`), and
//! the submit of the "Why?" modal (`modal_submit`). All are in guild `1100000000000000001`, channel
//! `1300000000000000001` (`#deal-desk`), from user `1200000000000000001` (`priya.raman`, role
//! `1700000000000000001`), for application and bot user `1400000000000000001`; the alert message is
//! `1800000000000000001`, the commands `150000000000000000N`, the interactions
//! `160000000000000000N`, and the alert id `0190f0e2-0000-7000-8000-000000000000`.
//!
//! Tests may change: `id` and `token` (placeholders: [`FakeDiscord::fresh_interaction`] gives
//! each a new one, and the application id of the fake), `application_id`, `guild_id` with
//! `guild.id`, `channel.guild_id` and `authorizing_integration_owners["0"]`, `channel_id` with
//! `channel.id` and `message.channel_id`, `member.user` (id and names), `member.roles` and
//! `member.permissions`, `locale`, the option values in `data.options[].value`, `data.custom_id`,
//! `data.values`, the text input's `value`, and the alert id inside custom ids, and `message` (the
//! message a component was on: its id, embeds and components). A DM interaction has `user` instead
//! of `member`, no `guild_id`/`guild`, `context` 1 and `authorizing_integration_owners`
//! `{"0": "0"}`.

// The helpers of the handlers refuse with the answer itself (an axum `Response`).
#![allow(clippy::result_large_err)]

use std::collections::{HashMap, HashSet, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, RawQuery, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Map, Value, json};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, mpsc};
use tokio_tungstenite::tungstenite::Message as Frame;
use tokio_tungstenite::tungstenite::handshake::server::{Request as WsRequest, Response as WsResponse};
use tokio_tungstenite::tungstenite::protocol::CloseFrame;

/// The API version the fake serves (under `/api/v10`).
const API: &str = "/api/v10";
/// Discord's epoch (2015-01-01T00:00:00Z) in Unix milliseconds, for snowflakes.
const DISCORD_EPOCH_MS: u64 = 1_420_070_400_000;
/// The heartbeat interval HELLO gives, in milliseconds (Discord's usual value).
const HEARTBEAT_INTERVAL_MS: u64 = 41_250;
/// The most a message's files may weigh in all (a bot in a guild without boosts).
const ATTACHMENT_SIZE_LIMIT: usize = 10 * 1024 * 1024;
/// How long a nonce sent with `enforce_nonce` keeps returning the earlier message.
const NONCE_WINDOW: Duration = Duration::from_secs(5 * 60);
/// The bot user's name and discriminator (bot users keep their discriminators).
const BOT_NAME: &str = "Dealwatch";
const BOT_DISCRIMINATOR: &str = "7429";
/// Permissions of `@everyone` in the fake's guilds, and of the bot's managed role (view channel,
/// send messages, embed links, attach files, read message history, use application commands).
const EVERYONE_PERMISSIONS: &str = "2248473465835073";
const BOT_ROLE_PERMISSIONS: &str = "2147600384";
/// The privileged intents: GUILD_MEMBERS, GUILD_PRESENCES and MESSAGE_CONTENT.
const PRIVILEGED_INTENTS: u64 = (1 << 1) | (1 << 8) | (1 << 15);
/// Message flags: EPHEMERAL and LOADING (a deferred response not yet edited).
const EPHEMERAL: u64 = 1 << 6;
const LOADING: u64 = 1 << 7;
/// The message flags a bot may set when sending: SUPPRESS_EMBEDS, EPHEMERAL (interactions only),
/// SUPPRESS_NOTIFICATIONS, IS_VOICE_MESSAGE and IS_COMPONENTS_V2.
const SETTABLE_FLAGS: u64 = (1 << 2) | EPHEMERAL | (1 << 12) | (1 << 13) | (1 << 15);

/// The channel of the recorded interactions.
const FIXTURE_CHANNEL: &str = "1300000000000000001";
/// The recorded interactions in `tests/fixtures/discord`, by name.
const FIXTURES: &[(&str, &str)] = &[
    ("deal_risk_command", include_str!("../fixtures/discord/deal_risk_command.json")),
    ("pipeline_command", include_str!("../fixtures/discord/pipeline_command.json")),
    ("ask_command", include_str!("../fixtures/discord/ask_command.json")),
    ("dealwatch_command", include_str!("../fixtures/discord/dealwatch_command.json")),
    ("button_click", include_str!("../fixtures/discord/button_click.json")),
    ("select_snooze", include_str!("../fixtures/discord/select_snooze.json")),
    ("modal_submit", include_str!("../fixtures/discord/modal_submit.json")),
];

/// What the fake does with one scripted call.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Fault {
    /// Does it and answers as Discord does.
    None,
    /// Answers HTTP 500 (`{"message": "500: Internal Server Error", "code": 0}`) without doing it.
    ServerError,
    /// Does it (posts the message, acknowledges the interaction, makes the edit), then answers 500.
    ServerErrorAfterPost,
    /// Answers HTTP 429 with `retry_after` this many seconds (and Discord's rate-limit headers),
    /// without doing it.
    RateLimited(f64),
    /// Waits this many milliseconds, then does it and answers.
    Slow(u64),
}

/// The endpoints that take scripted faults.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Endpoint {
    /// `POST /channels/{channel.id}/messages` (general script too).
    CreateMessage,
    /// `POST /interactions/{interaction.id}/{interaction.token}/callback` (general script too).
    InteractionCallback,
    /// `POST /webhooks/{application.id}/{interaction.token}` (general script too).
    CreateFollowup,
    /// `PATCH /webhooks/{application.id}/{interaction.token}/messages/{@original or id}`.
    EditOriginal,
    /// `PATCH /channels/{channel.id}/messages/{message.id}`.
    EditMessage,
}

impl Endpoint {
    /// Whether the general script and the default fault apply to this endpoint.
    fn takes_general_script(self) -> bool {
        matches!(self, Endpoint::CreateMessage | Endpoint::InteractionCallback | Endpoint::CreateFollowup)
    }

    /// The `X-RateLimit-Bucket` Discord would name for this endpoint.
    fn bucket(self) -> &'static str {
        match self {
            Endpoint::CreateMessage => "80c17d2f203122d936070c88c8d10f33",
            Endpoint::InteractionCallback => "2c7b1c0e4b1e1f5b7a0d4e8f9c3a6b21",
            Endpoint::CreateFollowup => "5d3e8a1f0b2c4d6e8f0a1b3c5d7e9f11",
            Endpoint::EditOriginal => "7a1e2f3b4c5d6e7f8091a2b3c4d5e6f7",
            Endpoint::EditMessage => "d4e5f6071829304a5b6c7d8e9f0a1b2c",
        }
    }
}

/// A file sent as a `files[n]` part of a `multipart/form-data` request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upload {
    /// The call it came with, e.g. `POST /api/v10/channels/1300000000000000001/messages`.
    pub call: String,
    /// The form field, e.g. `files[0]`.
    pub field: String,
    pub filename: String,
    pub content_type: Option<String>,
    pub length: usize,
    pub bytes: Vec<u8>,
}

/// A guild added with [`FakeDiscord::add_guild`].
#[derive(Debug, Clone)]
struct Guild {
    id: String,
    name: String,
    joined_at: String,
    /// The bot's managed role.
    bot_role: String,
}

/// A channel: a guild text channel, or a DM channel with `recipient`.
#[derive(Debug, Clone)]
struct Channel {
    guild_id: Option<String>,
    name: String,
    recipient: Option<String>,
    position: usize,
}

/// A message the fake holds (sent by the bot, or an interaction's response).
#[derive(Debug, Clone)]
struct Stored {
    channel_id: String,
    message: Value,
    /// The nonce, as text, when sent with `enforce_nonce: true`.
    nonce: Option<String>,
    at: Instant,
    ephemeral: bool,
    /// The interaction token whose webhook made it, if any.
    token: Option<String>,
}

/// An interaction the test dispatched or registered.
#[derive(Debug, Clone)]
struct Interaction {
    id: String,
    token: String,
    /// The interaction type: 1 ping, 2 command, 3 component, 4 autocomplete, 5 modal submit (0:
    /// not known, for one registered by id and token only).
    kind: u64,
    channel_id: String,
    guild_id: Option<String>,
    /// The invoking user.
    user: Value,
    /// The command's name (commands only).
    name: Option<String>,
    /// The modal's or component's custom id.
    custom_id: Option<String>,
    /// The message a component (or the modal it opened) was on.
    message: Option<Value>,
    received: Instant,
    acknowledged: bool,
    /// The id of the original response message, once there is one.
    original: Option<String>,
    /// A deferred (type 5) response not edited yet.
    loading: bool,
}

/// A Gateway session, resumable while not stale.
#[derive(Debug)]
struct Session {
    shard: (u64, u64),
    seq: u64,
    /// Every dispatch sent in this session, with its sequence number, for RESUME.
    log: VecDeque<Value>,
    /// The connection it is live on.
    live: Option<u64>,
    stale: bool,
}

/// One WebSocket connection to the Gateway.
#[derive(Debug)]
struct Connection {
    n: u64,
    tx: mpsc::UnboundedSender<Frame>,
    session: Option<String>,
}

#[derive(Debug, Default)]
struct Inner {
    token: String,
    application_id: String,
    base: String,
    guilds: Vec<Guild>,
    channels: HashMap<String, Channel>,
    users: HashMap<String, Value>,
    blocked: HashSet<String>,
    /// DM channel ids by user id.
    dms: HashMap<String, String>,
    messages: Vec<Stored>,
    /// Commands by guild id ("" for the global ones).
    commands: HashMap<String, Vec<Value>>,
    interactions: HashMap<String, Interaction>,
    /// Modals opened (a type 9 callback): (user id, custom id) → the opening interaction's id.
    modals: HashMap<(String, String), String>,
    ack_deadline: Duration,
    token_lifetime: Duration,
    callbacks: Vec<(String, Value)>,
    edits: Vec<(String, Value)>,
    followups: Vec<(String, Value)>,
    message_edits: Vec<(String, Value)>,
    requests: Vec<(String, Value)>,
    uploads: Vec<Upload>,
    calls: Vec<String>,
    script: VecDeque<Fault>,
    endpoint_scripts: HashMap<Endpoint, VecDeque<Fault>>,
    default_fault: Option<Fault>,
    last_snowflake: u64,
    // The Gateway.
    connections: Vec<Connection>,
    sessions: HashMap<String, Session>,
    accepted: u64,
    identifies: Vec<Value>,
    resumes: u64,
    readies: u64,
    received: Vec<Value>,
    allowed_privileged: u64,
    /// The tasks serving connections (Gateway ones last as long as their connection).
    connection_tasks: Vec<tokio::task::AbortHandle>,
}

#[derive(Debug, Clone)]
struct Shared {
    inner: Arc<Mutex<Inner>>,
    changed: Arc<Notify>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A running fake Discord. Clones share it; dropping the last one stops it and closes its Gateway
/// connections.
#[derive(Debug, Clone)]
pub struct FakeDiscord {
    shared: Shared,
    /// `http://127.0.0.1:PORT`: what `HttpBuilder::proxy` takes.
    pub base: String,
    tasks: Arc<Vec<tokio::task::JoinHandle<()>>>,
}

impl Drop for FakeDiscord {
    fn drop(&mut self) {
        if Arc::strong_count(&self.tasks) == 1 {
            self.tasks.iter().for_each(tokio::task::JoinHandle::abort);
            self.shared.lock().connection_tasks.iter().for_each(tokio::task::AbortHandle::abort);
        }
    }
}

impl FakeDiscord {
    /// Starts the fake on a free port of 127.0.0.1; it accepts `bot_token` (with or without its
    /// `Bot ` prefix) and is application `application_id`, whose bot user has the same id.
    pub async fn start(bot_token: &str, application_id: u64) -> FakeDiscord {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind the fake Discord");
        let addr = listener.local_addr().expect("address");
        let base = format!("http://{addr}");
        let inner = Inner {
            token: bot_token.strip_prefix("Bot ").unwrap_or(bot_token).to_owned(),
            application_id: application_id.to_string(),
            base: base.clone(),
            ack_deadline: Duration::from_secs(3),
            token_lifetime: Duration::from_secs(15 * 60),
            ..Inner::default()
        };
        let shared = Shared { inner: Arc::new(Mutex::new(inner)), changed: Arc::new(Notify::new()) };
        let app = Router::new()
            .route("/api/v10/gateway", get(gateway))
            .route("/api/v10/gateway/bot", get(gateway_bot))
            .route("/api/v10/users/{user_id}", get(get_user))
            .route("/api/v10/users/{user_id}/channels", post(create_dm))
            .route("/api/v10/oauth2/applications/@me", get(application_info))
            .route("/api/v10/applications/{application_id}", get(application_info_at))
            .route("/api/v10/applications/{application_id}/commands", get(get_global_commands).put(put_global_commands))
            .route(
                "/api/v10/applications/{application_id}/guilds/{guild_id}/commands",
                get(get_guild_commands).put(put_guild_commands),
            )
            .route("/api/v10/interactions/{interaction_id}/{token}/callback", post(interaction_callback))
            .route("/api/v10/webhooks/{application_id}/{token}", post(create_followup))
            .route(
                "/api/v10/webhooks/{application_id}/{token}/messages/{message_id}",
                get(get_webhook_message).patch(edit_webhook_message).delete(delete_webhook_message),
            )
            .route("/api/v10/channels/{channel_id}", get(get_channel))
            .route("/api/v10/channels/{channel_id}/messages", get(list_messages).post(create_message))
            .route("/api/v10/channels/{channel_id}/messages/{message_id}", get(get_message).patch(edit_message))
            .fallback(not_found)
            .method_not_allowed_fallback(method_not_allowed)
            .layer(axum::middleware::from_fn_with_state(shared.clone(), record_and_authorize))
            .layer(DefaultBodyLimit::max(4 * ATTACHMENT_SIZE_LIMIT))
            .with_state(shared.clone());
        let (http_tx, http_rx) = mpsc::unbounded_channel();
        let accept = {
            let shared = shared.clone();
            tokio::spawn(async move {
                while let Ok((stream, peer)) = listener.accept().await {
                    let (connection_shared, http_tx) = (shared.clone(), http_tx.clone());
                    let task = tokio::spawn(async move {
                        if is_gateway(&stream).await {
                            serve_gateway(stream, connection_shared).await;
                        } else {
                            let _ = http_tx.send((stream, peer));
                        }
                    });
                    let mut inner = shared.lock();
                    inner.connection_tasks.retain(|t| !t.is_finished());
                    inner.connection_tasks.push(task.abort_handle());
                }
            })
        };
        let serve = tokio::spawn(async move {
            let _ = axum::serve(HttpListener { rx: http_rx, addr }, app).await;
        });
        FakeDiscord { shared, base, tasks: Arc::new(vec![accept, serve]) }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.shared.lock()
    }

    /// The Gateway's URL, as `GET /api/v10/gateway` gives it.
    pub fn gateway_url(&self) -> String {
        gateway_url(&self.base)
    }

    /// The application (and bot user) id, as text.
    pub fn application_id(&self) -> String {
        self.lock().application_id.clone()
    }

    // Setup.

    /// Adds a guild the bot is in: READY lists it, a GUILD_CREATE follows, and its commands can be
    /// registered.
    pub fn add_guild(&self, id: u64, name: &str) {
        let mut inner = self.lock();
        let bot_role = next_snowflake(&mut inner).to_string();
        let guild = Guild { id: id.to_string(), name: name.to_owned(), joined_at: timestamp_now(), bot_role };
        inner.guilds.retain(|g| g.id != guild.id);
        inner.guilds.push(guild);
    }

    /// Adds a text channel to a guild (added first or not).
    pub fn add_channel(&self, guild_id: u64, channel_id: u64, name: &str) {
        let mut inner = self.lock();
        let guild_id = guild_id.to_string();
        let position = inner.channels.values().filter(|c| c.guild_id.as_deref() == Some(guild_id.as_str())).count();
        let channel = Channel { guild_id: Some(guild_id), name: name.to_owned(), recipient: None, position };
        inner.channels.insert(channel_id.to_string(), channel);
    }

    /// Adds a user the bot shares a guild with: it can be sent DMs.
    pub fn add_user(&self, id: u64, name: &str) {
        self.lock().users.insert(id.to_string(), user_object(&id.to_string(), name));
    }

    /// Makes sending DMs to `user_id` fail with 403 `50007` (the user closed their DMs or blocked
    /// the bot); opening the DM channel still works, as with Discord.
    pub fn block_dms(&self, user_id: u64) {
        self.lock().blocked.insert(user_id.to_string());
    }

    /// Allows privileged intents (bits of GUILD_MEMBERS `1 << 1`, GUILD_PRESENCES `1 << 8`,
    /// MESSAGE_CONTENT `1 << 15`), as switching them on in the developer portal does; an IDENTIFY
    /// asking for one not allowed is closed with 4014.
    pub fn allow_privileged_intents(&self, bits: u64) {
        self.lock().allowed_privileged |= bits & PRIVILEGED_INTENTS;
    }

    /// Changes how long after its dispatch an interaction may be acknowledged (Discord: 3 s) and
    /// how long its token serves the webhook routes (Discord: 15 min).
    pub fn interaction_deadlines(&self, acknowledge: Duration, token: Duration) {
        let mut inner = self.lock();
        inner.ack_deadline = acknowledge;
        inner.token_lifetime = token;
    }

    // Faults.

    /// The faults for the next scripted calls (message creation, follow-ups, interaction
    /// callbacks), in order, after any endpoint script.
    pub fn script(&self, faults: &[Fault]) {
        self.lock().script.extend(faults.iter().copied());
    }

    /// The faults for the next calls of `endpoint`, in order, before the general script.
    pub fn script_endpoint(&self, endpoint: Endpoint, faults: &[Fault]) {
        self.lock().endpoint_scripts.entry(endpoint).or_default().extend(faults.iter().copied());
    }

    /// The fault of message creation, follow-ups and callbacks once the scripts are used up
    /// (default: none).
    pub fn default_fault(&self, fault: Fault) {
        self.lock().default_fault = Some(fault);
    }

    // Interactions.

    /// A recorded interaction payload from `tests/fixtures/discord` by name (`deal_risk_command`,
    /// `pipeline_command`, `ask_command`, `dealwatch_command`, `button_click`, `select_snooze`,
    /// `modal_submit`), as recorded.
    pub fn fixture(name: &str) -> Value {
        let (_, text) =
            FIXTURES.iter().find(|(n, _)| *n == name).unwrap_or_else(|| panic!("no Discord fixture named {name}"));
        serde_json::from_str(text).expect("the Discord fixtures are JSON")
    }

    /// A recorded interaction with a new id and token and this fake's application id, ready to be
    /// changed and given to [`FakeDiscord::dispatch_interaction`].
    pub fn fresh_interaction(&self, fixture: &str) -> Value {
        let mut interaction = FakeDiscord::fixture(fixture);
        let mut inner = self.lock();
        let id = next_snowflake(&mut inner);
        let token = interaction_token(id);
        interaction["id"] = json!(id.to_string());
        interaction["token"] = json!(token);
        interaction["application_id"] = json!(inner.application_id);
        interaction
    }

    /// Registers an interaction as dispatched now without sending it over the Gateway (for tests
    /// that hand the payload to the bot some other way): its callback and webhook routes work from
    /// now on, with the checks its payload allows (its type, channel and message). Panics without
    /// an `id` and a `token`.
    pub fn register_interaction(&self, interaction: &Value) {
        register(&mut self.lock(), interaction);
    }

    /// Registers an interaction known only by its id and token, dispatched now: any callback type
    /// is accepted for it, and its responses go to the fixtures' channel `1300000000000000001`.
    pub fn expect_interaction(&self, interaction_id: &str, token: &str) {
        let interaction = json!({ "id": interaction_id, "token": token, "type": 0, "channel_id": FIXTURE_CHANNEL });
        register(&mut self.lock(), &interaction);
    }

    /// Registers the interaction (its id and token become known; an id already known keeps its
    /// state, so dispatching it again stands for a duplicate delivery) and dispatches it as
    /// INTERACTION_CREATE. Returns how many sessions it went to.
    pub fn dispatch_interaction(&self, interaction: Value) -> usize {
        self.register_interaction(&interaction);
        self.dispatch("INTERACTION_CREATE", interaction)
    }

    // The Gateway.

    /// Sends `event_name` with `data` (op 0, the session's next sequence number) to every
    /// identified session whose shard it belongs to; a session whose connection dropped keeps it
    /// for its RESUME. Returns how many sessions it went to.
    pub fn dispatch(&self, event_name: &str, data: Value) -> usize {
        let sent = dispatch_event(&mut self.lock(), event_name, data);
        self.shared.changed.notify_waiters();
        sent
    }

    /// Closes every Gateway connection with close code 4000 (unknown error, reconnect and resume),
    /// keeping their sessions resumable.
    pub fn disconnect(&self) {
        self.disconnect_with(4000, "Unknown error.");
    }

    /// Closes every Gateway connection with `code` and `reason`; the sessions stay resumable.
    pub fn disconnect_with(&self, code: u16, reason: &str) {
        for connection in &self.lock().connections {
            let _ = connection.tx.send(close_frame(code, reason));
        }
    }

    /// Sends op 7 RECONNECT down every connection, as Discord does before moving a session.
    pub fn request_reconnect(&self) {
        for connection in &self.lock().connections {
            let _ = connection.tx.send(text_frame(&json!({ "op": 7, "d": null, "s": null, "t": null })));
        }
    }

    /// Sends op 9 INVALID_SESSION down every identified connection; unless `resumable`, their
    /// sessions are ended.
    pub fn invalidate_sessions(&self, resumable: bool) {
        let mut inner = self.lock();
        let frame = text_frame(&json!({ "op": 9, "d": resumable, "s": null, "t": null }));
        let mut ended = Vec::new();
        for connection in &inner.connections {
            if let Some(session) = &connection.session {
                let _ = connection.tx.send(frame.clone());
                ended.push(session.clone());
            }
        }
        if !resumable {
            for session in ended {
                if let Some(s) = inner.sessions.get_mut(&session) {
                    s.stale = true;
                }
            }
        }
    }

    /// WebSocket connections accepted so far.
    pub fn connections(&self) -> u64 {
        self.lock().accepted
    }

    /// The IDENTIFY payloads (`d`) received, in order, tokens included.
    pub fn identifies(&self) -> Vec<Value> {
        self.lock().identifies.clone()
    }

    /// The intents of the last IDENTIFY.
    pub fn intents(&self) -> Option<u64> {
        self.lock().identifies.last().and_then(|d| d["intents"].as_u64())
    }

    /// Sessions resumed so far.
    pub fn resumes(&self) -> u64 {
        self.lock().resumes
    }

    /// Every frame received on the Gateway, as JSON, in order (heartbeats included).
    pub fn gateway_frames(&self) -> Vec<Value> {
        self.lock().received.clone()
    }

    /// Waits until a session has been identified (READY sent), at most `timeout`.
    pub async fn wait_identified(&self, timeout: Duration) -> bool {
        self.until(timeout, |inner| inner.readies >= 1).await
    }

    /// Waits until `n` sessions in all have been resumed, at most `timeout`.
    pub async fn wait_resumed(&self, n: u64, timeout: Duration) -> bool {
        self.until(timeout, |inner| inner.resumes >= n).await
    }

    /// Waits until `n` READY have been sent in all (each IDENTIFY makes one), at most `timeout`.
    pub async fn wait_ready(&self, n: u64, timeout: Duration) -> bool {
        self.until(timeout, |inner| inner.readies >= n).await
    }

    // What was recorded.

    /// Every HTTP call, in order, faulted and refused ones too: `POST /api/v10/channels/123/messages`.
    pub fn calls(&self) -> Vec<String> {
        self.lock().calls.clone()
    }

    /// Every call that had a body, in order, with that body (for a multipart request: its
    /// `payload_json` and other text fields).
    pub fn requests(&self) -> Vec<(String, Value)> {
        self.lock().requests.clone()
    }

    /// The files sent, in order.
    pub fn uploads(&self) -> Vec<Upload> {
        self.lock().uploads.clone()
    }

    /// The messages of channel `channel_id` (a number or its text) as they stand (edits applied),
    /// oldest first: those the bot sent and the interaction responses that are not ephemeral.
    pub fn messages(&self, channel_id: impl std::fmt::Display) -> Vec<Value> {
        let channel_id = channel_id.to_string();
        let inner = self.lock();
        inner
            .messages
            .iter()
            .filter(|m| m.channel_id == channel_id && !m.ephemeral)
            .map(|m| m.message.clone())
            .collect()
    }

    /// Every message the fake holds, as they stand, oldest first, with their channel ids:
    /// ephemeral interaction responses too.
    pub fn all_messages(&self) -> Vec<(String, Value)> {
        self.lock().messages.iter().map(|m| (m.channel_id.clone(), m.message.clone())).collect()
    }

    /// The interaction callbacks accepted, in order: (interaction id, body).
    pub fn callbacks(&self) -> Vec<(String, Value)> {
        self.lock().callbacks.clone()
    }

    /// The edits of interaction responses (`PATCH /webhooks/…/messages/@original` or a follow-up's
    /// id) accepted, in order: (interaction token, body).
    pub fn edits(&self) -> Vec<(String, Value)> {
        self.lock().edits.clone()
    }

    /// The follow-ups accepted, in order: (interaction token, body).
    pub fn followups(&self) -> Vec<(String, Value)> {
        self.lock().followups.clone()
    }

    /// The channel message edits accepted, in order: (message id, body).
    pub fn message_edits(&self) -> Vec<(String, Value)> {
        self.lock().message_edits.clone()
    }

    /// The commands registered in guild `guild_id`, as the fake answers them.
    pub fn commands(&self, guild_id: impl std::fmt::Display) -> Vec<Value> {
        self.lock().commands.get(&guild_id.to_string()).cloned().unwrap_or_default()
    }

    /// The global commands registered, as the fake answers them.
    pub fn global_commands(&self) -> Vec<Value> {
        self.lock().commands.get("").cloned().unwrap_or_default()
    }

    /// The DM channel opened with `user_id`, if one was.
    pub fn dm_channel(&self, user_id: impl std::fmt::Display) -> Option<String> {
        self.lock().dms.get(&user_id.to_string()).cloned()
    }

    /// The original response of interaction `interaction_id` as it stands, once there is one.
    pub fn original_response(&self, interaction_id: impl std::fmt::Display) -> Option<Value> {
        let interaction_id = interaction_id.to_string();
        let inner = self.lock();
        let interaction = inner.interactions.get(&interaction_id)?;
        let original = interaction.original.as_deref()?;
        find_message(&inner, original).map(|m| m.message.clone()).or_else(|| interaction.message.clone())
    }

    /// Waits until `n` interaction callbacks in all have been accepted, at most `timeout`.
    pub async fn wait_for_callbacks(&self, n: usize, timeout: Duration) -> bool {
        self.until(timeout, |inner| inner.callbacks.len() >= n).await
    }

    /// Waits until channel `channel_id` holds `n` messages (as [`FakeDiscord::messages`] counts
    /// them), at most `timeout`.
    pub async fn wait_for_messages(&self, channel_id: impl std::fmt::Display, n: usize, timeout: Duration) -> bool {
        let channel_id = channel_id.to_string();
        self.until(timeout, |inner| {
            inner.messages.iter().filter(|m| m.channel_id == channel_id && !m.ephemeral).count() >= n
        })
        .await
    }

    /// Waits until `n` edits of interaction responses in all have been accepted, at most `timeout`.
    pub async fn wait_for_edits(&self, n: usize, timeout: Duration) -> bool {
        self.until(timeout, |inner| inner.edits.len() >= n).await
    }

    /// Waits until `n` follow-ups in all have been accepted, at most `timeout`.
    pub async fn wait_for_followups(&self, n: usize, timeout: Duration) -> bool {
        self.until(timeout, |inner| inner.followups.len() >= n).await
    }

    async fn until(&self, timeout: Duration, mut done: impl FnMut(&Inner) -> bool) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let notified = self.shared.changed.notified();
            if done(&self.lock()) {
                return true;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return done(&self.lock());
            }
        }
    }
}

// Snowflakes, timestamps and objects.

/// A new snowflake: the time since Discord's epoch in its top bits, always above the last one.
fn next_snowflake(inner: &mut Inner) -> u64 {
    let now_ms = u64::try_from(now().timestamp_millis()).unwrap_or(0);
    let candidate = now_ms.saturating_sub(DISCORD_EPOCH_MS) << 22;
    inner.last_snowflake = candidate.max(inner.last_snowflake + 1);
    inner.last_snowflake
}

/// The time now (from the system clock: chrono's `clock` feature may be off).
fn now() -> chrono::DateTime<chrono::Utc> {
    let since_epoch = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    let seconds = i64::try_from(since_epoch.as_secs()).unwrap_or(i64::MAX);
    chrono::DateTime::from_timestamp(seconds, since_epoch.subsec_nanos()).unwrap_or_default()
}

/// Now as Discord writes timestamps: `2025-07-14T08:00:00.412000+00:00`.
fn timestamp_now() -> String {
    now().format("%Y-%m-%dT%H:%M:%S%.6f+00:00").to_string()
}

/// An interaction token as Discord's look (base64 of `interaction:{id}:…`).
fn interaction_token(id: u64) -> String {
    let raw = format!("interaction:{id}:{}", uuid::Uuid::new_v4().simple());
    base64url(raw.as_bytes())
}

fn base64url(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [chunk[0], chunk.get(1).copied().unwrap_or(0), chunk.get(2).copied().unwrap_or(0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..=chunk.len() {
            out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
        }
    }
    out
}

fn gateway_url(base: &str) -> String {
    format!("{}/gateway", base.replacen("http://", "ws://", 1))
}

/// A user object as Discord gives it (a person: migrated name, discriminator `0`).
fn user_object(id: &str, name: &str) -> Value {
    json!({
        "id": id,
        "username": name,
        "global_name": name,
        "discriminator": "0",
        "avatar": null,
        "avatar_decoration_data": null,
        "banner": null,
        "banner_color": null,
        "accent_color": null,
        "clan": null,
        "collectibles": null,
        "primary_guild": null,
        "public_flags": 0,
        "flags": 0,
    })
}

/// The bot user.
fn bot_user(inner: &Inner) -> Value {
    json!({
        "id": inner.application_id,
        "username": BOT_NAME,
        "global_name": null,
        "discriminator": BOT_DISCRIMINATOR,
        "avatar": null,
        "avatar_decoration_data": null,
        "banner": null,
        "banner_color": null,
        "accent_color": null,
        "clan": null,
        "collectibles": null,
        "primary_guild": null,
        "public_flags": 0,
        "flags": 0,
        "bot": true,
    })
}

/// The bot user as `/users/@me` and READY give it.
fn current_user(inner: &Inner) -> Value {
    let mut user = bot_user(inner);
    let extra = json!({
        "verified": true,
        "mfa_enabled": false,
        "locale": "en-US",
        "premium_type": 0,
        "email": null,
        "bio": "",
    });
    merge(&mut user, &extra);
    user
}

fn merge(target: &mut Value, extra: &Value) {
    if let (Some(target), Some(extra)) = (target.as_object_mut(), extra.as_object()) {
        target.extend(extra.iter().map(|(k, v)| (k.clone(), v.clone())));
    }
}

/// A channel object as `GET /channels/{id}` gives it.
fn channel_object(inner: &Inner, id: &str, channel: &Channel) -> Value {
    let last = last_message_id(inner, id);
    match &channel.recipient {
        Some(user) => json!({
            "id": id,
            "type": 1,
            "last_message_id": last,
            "flags": 0,
            "recipients": [inner.users.get(user).cloned().unwrap_or_else(|| user_object(user, "unknown"))],
        }),
        None => json!({
            "id": id,
            "type": 0,
            "guild_id": channel.guild_id,
            "name": channel.name,
            "position": channel.position,
            "parent_id": null,
            "topic": null,
            "nsfw": false,
            "rate_limit_per_user": 0,
            "last_message_id": last,
            "last_pin_timestamp": null,
            "permission_overwrites": [],
            "flags": 0,
        }),
    }
}

fn last_message_id(inner: &Inner, channel_id: &str) -> Value {
    inner
        .messages
        .iter()
        .rev()
        .find(|m| m.channel_id == channel_id && !m.ephemeral)
        .map_or(Value::Null, |m| m.message["id"].clone())
}

/// The application as `/oauth2/applications/@me` gives it to its bot.
fn application_object(inner: &Inner) -> Value {
    let owner = user_object("1200000000000000099", "dealwatch.owner");
    json!({
        "id": inner.application_id,
        "name": BOT_NAME,
        "icon": null,
        "description": "Deal risk alerts for the sales team.",
        "summary": "",
        "type": null,
        "hook": true,
        "bot_public": false,
        "bot_require_code_grant": false,
        "verify_key": "5f8b1e0c2a4d6f8091a3b5c7d9e1f3a5b7c9d1e3f5a7b9c1d3e5f7a9b1c3d5e7",
        "flags": application_flags(inner),
        "owner": owner,
        "team": null,
        "bot": bot_user(inner),
        "redirect_uris": [],
        "interactions_endpoint_url": null,
        "role_connections_verification_url": null,
        "event_webhooks_url": null,
        "event_webhooks_status": 1,
        "tags": [],
        "install_params": { "scopes": ["bot", "applications.commands"], "permissions": BOT_ROLE_PERMISSIONS },
        "integration_types_config": {
            "0": { "oauth2_install_params": { "scopes": ["bot", "applications.commands"], "permissions": BOT_ROLE_PERMISSIONS } },
        },
        "approximate_guild_count": inner.guilds.len(),
        "approximate_user_install_count": 0,
        "rpc_origins": [],
        "terms_of_service_url": null,
        "privacy_policy_url": null,
        "custom_install_url": null,
    })
}

/// The application's flags: the `*_LIMITED` flag of each privileged intent it is allowed.
fn application_flags(inner: &Inner) -> u64 {
    let mut flags = 0;
    if inner.allowed_privileged & (1 << 8) != 0 {
        flags |= 1 << 13;
    }
    if inner.allowed_privileged & (1 << 1) != 0 {
        flags |= 1 << 15;
    }
    if inner.allowed_privileged & (1 << 15) != 0 {
        flags |= 1 << 19;
    }
    flags
}

/// A GUILD_CREATE payload for `guild`: the bot as its only member, its text channels, and the
/// `@everyone` and bot roles.
fn guild_create(inner: &Inner, guild: &Guild) -> Value {
    let mut channels: Vec<(&String, &Channel)> =
        inner.channels.iter().filter(|(_, c)| c.guild_id.as_deref() == Some(guild.id.as_str())).collect();
    channels.sort_by_key(|(_, c)| c.position);
    let channels: Vec<Value> = channels
        .into_iter()
        .map(|(id, c)| {
            let mut channel = channel_object(inner, id, c);
            if let Some(object) = channel.as_object_mut() {
                object.remove("guild_id");
            }
            channel
        })
        .collect();
    let system_channel = channels.first().map_or(Value::Null, |c| c["id"].clone());
    let role = |id: &str, name: &str, position: u64, permissions: &str, managed: bool| {
        let mut role = json!({
            "id": id, "name": name, "description": null, "permissions": permissions, "position": position,
            "color": 0, "colors": { "primary_color": 0, "secondary_color": null, "tertiary_color": null },
            "hoist": false, "managed": managed, "mentionable": false, "icon": null, "unicode_emoji": null,
            "flags": 0,
        });
        if managed {
            role["tags"] = json!({ "bot_id": inner.application_id });
        }
        role
    };
    let mut guild_object = json!({
        "id": guild.id,
        "name": guild.name,
        "icon": null,
        "icon_hash": null,
        "splash": null,
        "discovery_splash": null,
        "owner_id": "1200000000000000099",
        "afk_channel_id": null,
        "afk_timeout": 300,
        "widget_enabled": false,
        "widget_channel_id": null,
        "verification_level": 1,
        "default_message_notifications": 1,
        "explicit_content_filter": 2,
        "roles": [
            role(&guild.id, "@everyone", 0, EVERYONE_PERMISSIONS, false),
            role(&guild.bot_role, BOT_NAME, 1, BOT_ROLE_PERMISSIONS, true),
        ],
        "emojis": [],
        "features": [],
    });
    let settings = json!({
        "mfa_level": 0,
        "application_id": null,
        "system_channel_id": system_channel,
        "system_channel_flags": 0,
        "rules_channel_id": null,
        "max_presences": null,
        "max_members": 500_000,
        "vanity_url_code": null,
        "description": null,
        "banner": null,
        "premium_tier": 0,
        "premium_subscription_count": 0,
        "preferred_locale": "en-US",
        "public_updates_channel_id": null,
        "max_video_channel_users": 25,
        "max_stage_video_channel_users": 50,
        "nsfw_level": 0,
        "nsfw": false,
        "stickers": [],
        "premium_progress_bar_enabled": false,
        "safety_alerts_channel_id": null,
        "incidents_data": null,
        "hub_type": null,
        "latest_onboarding_question_id": null,
        "home_header": null,
        "inventory_settings": null,
        "soundboard_sounds": [],
        "embedded_activities": [],
        "activity_instances": [],
        "application_command_counts": {},
        "version": 1_700_000_000_000_u64,
    });
    // The fields GUILD_CREATE adds to a guild object (a separate `json!`: one is too deep).
    let extra = json!({
        "joined_at": guild.joined_at,
        "large": false,
        "unavailable": false,
        "lazy": true,
        "member_count": inner.users.len() + 1,
        "voice_states": [],
        "members": [{
            "user": bot_user(inner),
            "roles": [guild.bot_role],
            "joined_at": guild.joined_at,
            "nick": null,
            "avatar": null,
            "banner": null,
            "premium_since": null,
            "communication_disabled_until": null,
            "unusual_dm_activity_until": null,
            "deaf": false,
            "mute": false,
            "pending": false,
            "flags": 0,
        }],
        "channels": channels,
        "threads": [],
        "presences": [],
        "stage_instances": [],
        "guild_scheduled_events": [],
    });
    merge(&mut guild_object, &settings);
    merge(&mut guild_object, &extra);
    guild_object
}

// Errors.

/// Discord's JSON error: `{"message": .., "code": ..}` with `status`.
fn discord_error(status: StatusCode, code: u64, message: &str) -> Response {
    (status, axum::Json(json!({ "message": message, "code": code }))).into_response()
}

fn unauthorized() -> Response {
    discord_error(StatusCode::UNAUTHORIZED, 0, "401: Unauthorized")
}

fn unknown_channel() -> Response {
    discord_error(StatusCode::NOT_FOUND, 10003, "Unknown Channel")
}

fn unknown_message() -> Response {
    discord_error(StatusCode::NOT_FOUND, 10008, "Unknown Message")
}

fn unknown_webhook() -> Response {
    discord_error(StatusCode::NOT_FOUND, 10015, "Unknown Webhook")
}

fn unknown_interaction() -> Response {
    discord_error(StatusCode::NOT_FOUND, 10062, "Unknown interaction")
}

fn missing_access() -> Response {
    discord_error(StatusCode::FORBIDDEN, 50001, "Missing Access")
}

fn invalid_json() -> Response {
    discord_error(StatusCode::BAD_REQUEST, 50109, "The request body contains invalid JSON.")
}

fn empty_message() -> Response {
    discord_error(StatusCode::BAD_REQUEST, 50006, "Cannot send an empty message")
}

async fn not_found() -> Response {
    discord_error(StatusCode::NOT_FOUND, 0, "404: Not Found")
}

async fn method_not_allowed() -> Response {
    discord_error(StatusCode::METHOD_NOT_ALLOWED, 0, "405: Method Not Allowed")
}

/// The errors of an `Invalid Form Body` answer, each at its dotted path in the request body
/// (`embeds.0.description`; `""` for the body itself).
#[derive(Debug, Default)]
struct FormErrors {
    /// Where the checked object is in the body (`data.` for an interaction response's message).
    prefix: &'static str,
    errors: Vec<(String, &'static str, String)>,
}

impl FormErrors {
    fn under(prefix: &'static str) -> FormErrors {
        FormErrors { prefix, errors: Vec::new() }
    }

    fn add(&mut self, path: &str, code: &'static str, message: impl Into<String>) {
        self.errors.push((format!("{}{path}", self.prefix), code, message.into()));
    }

    fn max_length(&mut self, path: &str, text: Option<&str>, max: usize) {
        if text.is_some_and(|t| t.chars().count() > max) {
            self.add(path, "BASE_TYPE_MAX_LENGTH", format!("Must be {max} or fewer in length."));
        }
    }

    /// Nothing wrong, or Discord's 400 `50035` with the nested `errors` object.
    fn check(self) -> Result<(), Response> {
        if self.errors.is_empty() {
            return Ok(());
        }
        let mut root = Map::new();
        for (path, code, message) in self.errors {
            let mut node = &mut root;
            for key in path.split('.').filter(|k| !k.is_empty()) {
                node = match node.entry(key.to_owned()).or_insert_with(|| json!({})) {
                    Value::Object(next) => next,
                    _ => unreachable!("only objects are inserted"),
                };
            }
            if let Value::Array(errors) = node.entry("_errors").or_insert_with(|| json!([])) {
                errors.push(json!({ "code": code, "message": message }));
            }
        }
        let body = json!({ "message": "Invalid Form Body", "code": 50035, "errors": root });
        Err((StatusCode::BAD_REQUEST, axum::Json(body)).into_response())
    }
}

// Faults.

fn next_fault(shared: &Shared, endpoint: Endpoint) -> Fault {
    let mut inner = shared.lock();
    if let Some(fault) = inner.endpoint_scripts.get_mut(&endpoint).and_then(VecDeque::pop_front) {
        return fault;
    }
    if !endpoint.takes_general_script() {
        return Fault::None;
    }
    inner.script.pop_front().or(inner.default_fault).unwrap_or(Fault::None)
}

/// The answer a fault gives instead of doing the call, if any; a `Slow` one waits here.
async fn fault_answer(fault: Fault, endpoint: Endpoint) -> Option<Response> {
    match fault {
        Fault::ServerError => Some(server_error()),
        Fault::RateLimited(secs) => Some(rate_limited(secs, endpoint)),
        Fault::Slow(ms) => {
            tokio::time::sleep(Duration::from_millis(ms)).await;
            None
        }
        Fault::None | Fault::ServerErrorAfterPost => None,
    }
}

fn server_error() -> Response {
    discord_error(StatusCode::INTERNAL_SERVER_ERROR, 0, "500: Internal Server Error")
}

/// Discord's 429 for a per-route limit: the body, and the headers with the same wait.
fn rate_limited(secs: f64, endpoint: Endpoint) -> Response {
    let reset = now().timestamp_millis() as f64 / 1000.0 + secs;
    let headers = [
        ("retry-after", format!("{}", secs.ceil().max(0.0) as u64)),
        ("x-ratelimit-limit", "5".to_owned()),
        ("x-ratelimit-remaining", "0".to_owned()),
        ("x-ratelimit-reset", format!("{reset:.3}")),
        ("x-ratelimit-reset-after", format!("{secs:.3}")),
        ("x-ratelimit-bucket", endpoint.bucket().to_owned()),
        ("x-ratelimit-scope", "user".to_owned()),
    ];
    let body = json!({ "message": "You are being rate limited.", "retry_after": secs, "global": false });
    (StatusCode::TOO_MANY_REQUESTS, headers, axum::Json(body)).into_response()
}

// Requests: recording, authorization, bodies.

/// Records every call and checks the bot token, except where Discord authenticates by the
/// interaction token in the path (and on the public `GET /gateway`).
async fn record_and_authorize(State(shared): State<Shared>, request: Request, next: Next) -> Response {
    let path = request.uri().path().to_owned();
    let call = format!("{} {path}", request.method());
    let authorized = {
        let mut inner = shared.lock();
        inner.calls.push(call);
        let token_route = path.starts_with("/api/v10/interactions/")
            || path.starts_with("/api/v10/webhooks/")
            || path == "/api/v10/gateway";
        token_route || bot_token(request.headers()).is_some_and(|t| t == inner.token)
    };
    shared.changed.notify_waiters();
    if !authorized {
        return unauthorized();
    }
    next.run(request).await
}

/// The token of an `Authorization: Bot …` header.
fn bot_token(headers: &HeaderMap) -> Option<&str> {
    headers.get("authorization")?.to_str().ok()?.strip_prefix("Bot ")
}

/// A request body: its JSON (from `payload_json` and text fields in a multipart form) and files.
#[derive(Debug, Default)]
struct Body {
    json: Value,
    files: Vec<FilePart>,
}

#[derive(Debug)]
struct FilePart {
    field: String,
    filename: String,
    content_type: Option<String>,
    bytes: Vec<u8>,
}

/// Reads a body as Discord does: `multipart/form-data` (with `payload_json` and `files[n]`) or
/// JSON; an empty body is `{}`.
fn parse_body(headers: &HeaderMap, bytes: &[u8]) -> Result<Body, Response> {
    let content_type = headers.get("content-type").and_then(|v| v.to_str().ok()).unwrap_or_default();
    if content_type.starts_with("multipart/form-data") {
        let Some(boundary) = content_type.split(';').find_map(|p| p.trim().strip_prefix("boundary=")) else {
            return Err(invalid_json());
        };
        return parse_multipart(bytes, boundary.trim_matches('"')).ok_or_else(invalid_json);
    }
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(Body { json: json!({}), files: Vec::new() });
    }
    serde_json::from_slice(bytes).map(|json| Body { json, files: Vec::new() }).map_err(|_| invalid_json())
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// A `multipart/form-data` body: `payload_json` as the JSON, other text fields added to it, and
/// parts with a filename as files. `None` when it is not well formed.
fn parse_multipart(bytes: &[u8], boundary: &str) -> Option<Body> {
    let delimiter = format!("--{boundary}");
    let mut body = Body { json: json!({}), files: Vec::new() };
    let mut fields = Map::new();
    let mut rest = &bytes[find(bytes, delimiter.as_bytes())? + delimiter.len()..];
    loop {
        if rest.starts_with(b"--") {
            break;
        }
        rest = rest.strip_prefix(b"\r\n")?;
        let header_end = find(rest, b"\r\n\r\n")?;
        let head = std::str::from_utf8(&rest[..header_end]).ok()?;
        let after_head = &rest[header_end + 4..];
        let end = find(after_head, format!("\r\n{delimiter}").as_bytes())?;
        let content = &after_head[..end];
        rest = &after_head[end + 2 + delimiter.len()..];
        let mut name = None;
        let mut filename = None;
        let mut content_type = None;
        for line in head.split("\r\n") {
            let Some((key, value)) = line.split_once(':') else { continue };
            match key.trim().to_ascii_lowercase().as_str() {
                "content-disposition" => {
                    for param in value.split(';').skip(1) {
                        if let Some((k, v)) = param.trim().split_once('=') {
                            let v = v.trim().trim_matches('"').to_owned();
                            match k {
                                "name" => name = Some(v),
                                "filename" => filename = Some(v),
                                _ => {}
                            }
                        }
                    }
                }
                "content-type" => content_type = Some(value.trim().to_owned()),
                _ => {}
            }
        }
        let name = name?;
        match filename {
            Some(filename) => {
                body.files.push(FilePart { field: name, filename, content_type, bytes: content.to_vec() });
            }
            None if name == "payload_json" => body.json = serde_json::from_slice(content).ok()?,
            None => {
                fields.insert(name, Value::String(String::from_utf8_lossy(content).into_owned()));
            }
        }
    }
    if let Some(object) = body.json.as_object_mut() {
        for (k, v) in fields {
            object.entry(k).or_insert(v);
        }
    }
    Some(body)
}

/// Records a call's body and files.
fn record_body(shared: &Shared, call: &str, body: &Body) {
    let mut inner = shared.lock();
    inner.requests.push((call.to_owned(), body.json.clone()));
    for file in &body.files {
        inner.uploads.push(Upload {
            call: call.to_owned(),
            field: file.field.clone(),
            filename: file.filename.clone(),
            content_type: file.content_type.clone(),
            length: file.bytes.len(),
            bytes: file.bytes.clone(),
        });
    }
}

/// The query parameters (serenity writes `?&limit=50&after=…`).
fn query_params(query: Option<&str>) -> HashMap<String, String> {
    query
        .unwrap_or_default()
        .split('&')
        .filter_map(|pair| pair.split_once('=').or(Some((pair, ""))))
        .filter(|(k, _)| !k.is_empty())
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

// Messages.

/// Checks a message body against Discord's limits (its errors' paths under `prefix`); `creating`
/// also refuses an empty message.
fn validate_message(body: &Body, creating: bool, prefix: &'static str) -> Result<(), Response> {
    let message = &body.json;
    let mut errors = FormErrors::under(prefix);
    if !message.is_object() {
        errors.add("", "DICT_TYPE_CONVERT", "Only dictionaries may be used in a DictType");
        return errors.check();
    }
    errors.max_length("content", message["content"].as_str(), 2000);
    errors.max_length("nonce", message["nonce"].as_str(), 25);
    if let Some(embeds) = message["embeds"].as_array() {
        if embeds.len() > 10 {
            errors.add("embeds", "BASE_TYPE_MAX_LENGTH", "Must be 10 or fewer in length.");
        }
        let mut total = 0;
        for (i, embed) in embeds.iter().enumerate() {
            let text = |v: &Value| v.as_str().map_or(0, |s| s.chars().count());
            errors.max_length(&format!("embeds.{i}.title"), embed["title"].as_str(), 256);
            errors.max_length(&format!("embeds.{i}.description"), embed["description"].as_str(), 4096);
            errors.max_length(&format!("embeds.{i}.footer.text"), embed["footer"]["text"].as_str(), 2048);
            errors.max_length(&format!("embeds.{i}.author.name"), embed["author"]["name"].as_str(), 256);
            total += text(&embed["title"])
                + text(&embed["description"])
                + text(&embed["footer"]["text"])
                + text(&embed["author"]["name"]);
            let fields = embed["fields"].as_array().map(Vec::as_slice).unwrap_or_default();
            if fields.len() > 25 {
                errors.add(&format!("embeds.{i}.fields"), "BASE_TYPE_MAX_LENGTH", "Must be 25 or fewer in length.");
            }
            for (j, field) in fields.iter().enumerate() {
                for (key, max) in [("name", 256), ("value", 1024)] {
                    match field[key].as_str() {
                        None | Some("") => errors.add(
                            &format!("embeds.{i}.fields.{j}.{key}"),
                            "BASE_TYPE_REQUIRED",
                            "This field is required",
                        ),
                        text => errors.max_length(&format!("embeds.{i}.fields.{j}.{key}"), text, max),
                    }
                }
                total += text(&field["name"]) + text(&field["value"]);
            }
        }
        if total > 6000 {
            errors.add("embeds", "MAX_EMBED_SIZE_EXCEEDED", "Embed size exceeds maximum size of 6000");
        }
    }
    validate_components(&message["components"], &mut errors);
    errors.check()?;
    let size: usize = body.files.iter().map(|f| f.bytes.len()).sum();
    if size > ATTACHMENT_SIZE_LIMIT {
        return Err(discord_error(StatusCode::PAYLOAD_TOO_LARGE, 40005, "Request entity too large"));
    }
    if creating && is_empty_message(body) {
        return Err(empty_message());
    }
    Ok(())
}

/// Whether a message would show nothing: no content, embeds, components, files, stickers or poll.
fn is_empty_message(body: &Body) -> bool {
    let m = &body.json;
    let empty = |key: &str| m[key].as_array().is_none_or(Vec::is_empty);
    m["content"].as_str().is_none_or(str::is_empty)
        && empty("embeds")
        && empty("components")
        && empty("sticker_ids")
        && m["poll"].is_null()
        && body.files.is_empty()
}

/// Checks the components of a (non components-v2) message: at most 5 action rows of at most 5
/// buttons or one select, custom ids of at most 100 characters and unique in the message.
fn validate_components(components: &Value, errors: &mut FormErrors) {
    let Some(rows) = components.as_array() else { return };
    if rows.len() > 5 {
        errors.add("components", "BASE_TYPE_MAX_LENGTH", "Must be 5 or fewer in length.");
    }
    let mut seen = HashSet::new();
    for (i, row) in rows.iter().enumerate() {
        if row["type"].as_u64() != Some(1) {
            continue;
        }
        let children = row["components"].as_array().map(Vec::as_slice).unwrap_or_default();
        if children.is_empty() || children.len() > 5 {
            errors.add(
                &format!("components.{i}.components"),
                "BASE_TYPE_BAD_LENGTH",
                "Must be between 1 and 5 in length.",
            );
        }
        let selects = children.iter().filter(|c| matches!(c["type"].as_u64(), Some(3 | 5..=8))).count();
        if selects > 0 && children.len() > 1 {
            errors.add(
                &format!("components.{i}.components"),
                "COMPONENT_LAYOUT_WIDTH_EXCEEDED",
                "The specified component exceeds the maximum width",
            );
        }
        for (j, child) in children.iter().enumerate() {
            let at = |key: &str| format!("components.{i}.components.{j}.{key}");
            let custom_id = child["custom_id"].as_str();
            let link = child["type"].as_u64() == Some(2) && matches!(child["style"].as_u64(), Some(5 | 6));
            if custom_id.is_none() && !link {
                errors.add(&at("custom_id"), "BASE_TYPE_REQUIRED", "This field is required");
            }
            errors.max_length(&at("custom_id"), custom_id, 100);
            errors.max_length(&at("label"), child["label"].as_str(), 80);
            if let Some(id) = custom_id
                && !seen.insert(id.to_owned())
            {
                errors.add(
                    &at("custom_id"),
                    "COMPONENT_CUSTOM_ID_DUPLICATED",
                    "Component custom id cannot be duplicated",
                );
            }
            if child["options"].as_array().is_some_and(|options| options.len() > 25) {
                errors.add(&at("options"), "BASE_TYPE_MAX_LENGTH", "Must be 25 or fewer in length.");
            }
        }
    }
}

/// Components as Discord echoes them: each with a numeric `id`, numbered depth first.
fn number_components(components: &Value) -> Value {
    fn walk(value: &mut Value, next: &mut u64) {
        if let Some(object) = value.as_object_mut() {
            if !object.contains_key("id") {
                object.insert("id".to_owned(), json!(*next));
            }
            *next = (*next).max(object["id"].as_u64().unwrap_or(0)) + 1;
            if let Some(children) = object.get_mut("components").and_then(Value::as_array_mut) {
                children.iter_mut().for_each(|c| walk(c, next));
            }
        }
    }
    let mut components = components.clone();
    if let Some(list) = components.as_array_mut() {
        let mut next = 1;
        list.iter_mut().for_each(|c| walk(c, &mut next));
        components
    } else {
        json!([])
    }
}

/// Embeds as Discord echoes them (`type: rich`).
fn normalize_embeds(embeds: &Value) -> Value {
    let mut embeds = embeds.as_array().cloned().unwrap_or_default();
    for embed in &mut embeds {
        if let Some(object) = embed.as_object_mut() {
            object.entry("type").or_insert_with(|| json!("rich"));
        }
    }
    Value::Array(embeds)
}

/// The attachment objects for a message's files (`files[n]` is attachment `n` of the payload's
/// `attachments`, which may give its filename and description).
fn attachments_for(inner: &mut Inner, channel_id: &str, body: &Body) -> Vec<Value> {
    let declared = body.json["attachments"].as_array().cloned().unwrap_or_default();
    let mut attachments = Vec::new();
    for file in &body.files {
        let index = file.field.strip_prefix("files[").and_then(|f| f.strip_suffix(']')).unwrap_or_default();
        let declared = declared.iter().find(|a| a["id"].to_string().trim_matches('"') == index);
        let filename =
            declared.and_then(|a| a["filename"].as_str()).map_or_else(|| file.filename.clone(), str::to_owned);
        let id = next_snowflake(inner);
        let path = format!("attachments/{channel_id}/{id}/{filename}");
        let mut attachment = json!({
            "id": id.to_string(),
            "filename": filename,
            "size": file.bytes.len(),
            "url": format!("https://cdn.discordapp.com/{path}"),
            "proxy_url": format!("https://media.discordapp.net/{path}"),
            "content_type": file.content_type,
            "content_scan_version": 0,
        });
        if let Some(description) = declared.and_then(|a| a.get("description")) {
            attachment["description"] = description.clone();
        }
        attachments.push(attachment);
    }
    attachments
}

/// A new message from the bot in `channel_id`, as Discord answers it.
fn new_message(inner: &mut Inner, channel_id: &str, body: &Body, kind: u64) -> Value {
    let id = next_snowflake(inner);
    let attachments = attachments_for(inner, channel_id, body);
    let m = &body.json;
    let mut message = json!({
        "type": kind,
        "id": id.to_string(),
        "channel_id": channel_id,
        "author": bot_user(inner),
        "content": m["content"].as_str().unwrap_or_default(),
        "attachments": attachments,
        "embeds": normalize_embeds(&m["embeds"]),
        "components": number_components(&m["components"]),
        "mentions": [],
        "mention_roles": [],
        "mention_everyone": false,
        "pinned": false,
        "tts": m["tts"].as_bool().unwrap_or(false),
        "timestamp": timestamp_now(),
        "edited_timestamp": null,
        "flags": m["flags"].as_u64().unwrap_or(0) & SETTABLE_FLAGS,
    });
    if !m["nonce"].is_null() {
        message["nonce"] = m["nonce"].clone();
    }
    if !m["message_reference"].is_null() {
        message["message_reference"] = m["message_reference"].clone();
    }
    message
}

/// Applies an edit body to a message (only the fields it has; `null` clears), as Discord does;
/// files are added, and `attachments` keeps only the listed ones.
fn apply_edit(inner: &mut Inner, message: &mut Value, body: &Body) {
    let m = &body.json;
    let channel_id = message["channel_id"].as_str().unwrap_or_default().to_owned();
    let new_files = attachments_for(inner, &channel_id, body);
    if let Some(content) = m.get("content") {
        message["content"] = json!(content.as_str().unwrap_or_default());
    }
    if let Some(embeds) = m.get("embeds") {
        message["embeds"] = normalize_embeds(embeds);
    }
    if let Some(components) = m.get("components") {
        message["components"] = number_components(components);
    }
    if let Some(flags) = m.get("flags").and_then(Value::as_u64) {
        // Only SUPPRESS_EMBEDS can change on an existing message.
        let old = message["flags"].as_u64().unwrap_or(0);
        message["flags"] = json!((old & !(1 << 2)) | (flags & (1 << 2)));
    }
    if let Some(keep) = m.get("attachments").and_then(Value::as_array) {
        let keep: HashSet<String> = keep.iter().map(|a| a["id"].to_string().trim_matches('"').to_owned()).collect();
        let kept: Vec<Value> = message["attachments"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|a| a["id"].as_str().is_some_and(|id| keep.contains(id)))
            .cloned()
            .collect();
        message["attachments"] = Value::Array(kept);
    }
    if let Some(list) = message["attachments"].as_array_mut() {
        list.extend(new_files);
    }
}

fn find_message<'a>(inner: &'a Inner, id: &str) -> Option<&'a Stored> {
    inner.messages.iter().find(|m| m.message["id"] == id)
}

fn find_message_mut<'a>(inner: &'a mut Inner, id: &str) -> Option<&'a mut Stored> {
    inner.messages.iter_mut().find(|m| m.message["id"] == id)
}

/// The text form of a nonce (a string or an integer).
fn nonce_text(nonce: &Value) -> Option<String> {
    match nonce {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

// Handlers: the gateway, users and the application.

async fn gateway(State(shared): State<Shared>) -> Response {
    let base = shared.lock().base.clone();
    axum::Json(json!({ "url": gateway_url(&base) })).into_response()
}

async fn gateway_bot(State(shared): State<Shared>) -> Response {
    let base = shared.lock().base.clone();
    axum::Json(json!({
        "url": gateway_url(&base),
        "shards": 1,
        "session_start_limit": { "total": 1000, "remaining": 999, "reset_after": 14_400_000, "max_concurrency": 1 },
    }))
    .into_response()
}

/// `GET /users/@me` (the bot) or `GET /users/{id}` (a user added to the fake, or the bot).
async fn get_user(State(shared): State<Shared>, Path(user_id): Path<String>) -> Response {
    let inner = shared.lock();
    if user_id == "@me" {
        return axum::Json(current_user(&inner)).into_response();
    }
    if user_id == inner.application_id {
        return axum::Json(bot_user(&inner)).into_response();
    }
    match inner.users.get(&user_id) {
        Some(user) => axum::Json(user.clone()).into_response(),
        None => discord_error(StatusCode::NOT_FOUND, 10013, "Unknown User"),
    }
}

async fn application_info(State(shared): State<Shared>) -> Response {
    axum::Json(application_object(&shared.lock())).into_response()
}

/// `GET /applications/@me` (the newer route for the same object).
async fn application_info_at(State(shared): State<Shared>, Path(application_id): Path<String>) -> Response {
    if application_id != "@me" {
        return not_found().await;
    }
    application_info(State(shared)).await
}

/// `POST /users/@me/channels` with `recipient_id`: the DM channel with a known user, the same one
/// each time.
async fn create_dm(
    State(shared): State<Shared>,
    Path(user_id): Path<String>,
    headers: HeaderMap,
    bytes: Bytes,
) -> Response {
    if user_id != "@me" {
        return not_found().await;
    }
    let body = match parse_body(&headers, &bytes) {
        Ok(body) => body,
        Err(answer) => return answer,
    };
    record_body(&shared, &format!("POST {API}/users/@me/channels"), &body);
    let recipient = match &body.json["recipient_id"] {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        _ => {
            let mut errors = FormErrors::default();
            errors.add("recipient_id", "BASE_TYPE_REQUIRED", "This field is required");
            return errors.check().err().unwrap_or_else(server_error);
        }
    };
    let mut inner = shared.lock();
    if !inner.users.contains_key(&recipient) {
        return discord_error(StatusCode::BAD_REQUEST, 50033, "Invalid Recipient(s)");
    }
    let id = match inner.dms.get(&recipient) {
        Some(id) => id.clone(),
        None => {
            let id = next_snowflake(&mut inner).to_string();
            inner.dms.insert(recipient.clone(), id.clone());
            let channel = Channel { guild_id: None, name: String::new(), recipient: Some(recipient), position: 0 };
            inner.channels.insert(id.clone(), channel);
            id
        }
    };
    let channel = inner.channels[&id].clone();
    axum::Json(channel_object(&inner, &id, &channel)).into_response()
}

// Handlers: commands.

/// Checks and numbers a bulk overwrite: each command keeps its id (and version, if unchanged)
/// when one of the same name and type was registered.
fn overwrite_commands(inner: &mut Inner, guild_id: Option<&str>, body: &Value) -> Result<Vec<Value>, Response> {
    let Some(list) = body.as_array() else {
        let mut errors = FormErrors::default();
        errors.add("", "BASE_TYPE_ARRAY", "Must be an array.");
        return Err(errors.check().err().unwrap_or_else(server_error));
    };
    let mut errors = FormErrors::default();
    if list.len() > 100 {
        errors.add("", "BASE_TYPE_MAX_LENGTH", "Must be 100 or fewer in length.");
    }
    let mut names = HashSet::new();
    for (i, command) in list.iter().enumerate() {
        let kind = command["type"].as_u64().unwrap_or(1);
        let name = command["name"].as_str().unwrap_or_default();
        let valid_name = !name.is_empty()
            && name.chars().count() <= 32
            && (kind != 1
                || (name.chars().all(|c| c == '-' || c == '_' || c.is_alphanumeric()) && name == name.to_lowercase()));
        if !valid_name {
            errors.add(&format!("{i}.name"), "APPLICATION_COMMAND_INVALID_NAME", "Command name is invalid");
        }
        if !names.insert((kind, name.to_owned())) {
            errors.add(
                "",
                "APPLICATION_COMMANDS_DUPLICATE_NAME",
                format!("Application command names must be unique: {name}"),
            );
        }
        if kind == 1 {
            let length = command["description"].as_str().map_or(0, |d| d.chars().count());
            if !(1..=100).contains(&length) {
                errors.add(&format!("{i}.description"), "BASE_TYPE_BAD_LENGTH", "Must be between 1 and 100 in length.");
            }
        }
        let options = command["options"].as_array().map(Vec::as_slice).unwrap_or_default();
        if options.len() > 25 {
            errors.add(&format!("{i}.options"), "BASE_TYPE_MAX_LENGTH", "Must be 25 or fewer in length.");
        }
        for (j, option) in options.iter().enumerate() {
            let name = option["name"].as_str().unwrap_or_default();
            if name.is_empty() || name.chars().count() > 32 || name != name.to_lowercase() {
                errors.add(
                    &format!("{i}.options.{j}.name"),
                    "APPLICATION_COMMAND_INVALID_NAME",
                    "Command name is invalid",
                );
            }
            let length = option["description"].as_str().map_or(0, |d| d.chars().count());
            if !(1..=100).contains(&length) {
                errors.add(
                    &format!("{i}.options.{j}.description"),
                    "BASE_TYPE_BAD_LENGTH",
                    "Must be between 1 and 100 in length.",
                );
            }
        }
    }
    errors.check()?;
    let key = guild_id.unwrap_or_default().to_owned();
    let previous = inner.commands.get(&key).cloned().unwrap_or_default();
    let mut registered = Vec::new();
    for command in list {
        let kind = command["type"].as_u64().unwrap_or(1);
        let name = command["name"].as_str().unwrap_or_default();
        let old = previous.iter().find(|c| c["name"] == name && c["type"].as_u64() == Some(kind));
        let id = match old {
            Some(old) => old["id"].clone(),
            None => json!(next_snowflake(inner).to_string()),
        };
        let mut answer = json!({
            "id": id,
            "application_id": inner.application_id,
            "version": "0",
            "default_member_permissions": command.get("default_member_permissions").cloned().unwrap_or(Value::Null),
            "type": kind,
            "name": name,
            "name_localizations": command.get("name_localizations").cloned().unwrap_or(Value::Null),
            "description": command["description"].as_str().unwrap_or_default(),
            "description_localizations": command.get("description_localizations").cloned().unwrap_or(Value::Null),
            "nsfw": command["nsfw"].as_bool().unwrap_or(false),
        });
        if let Some(options) = command.get("options").filter(|o| o.as_array().is_some_and(|a| !a.is_empty())) {
            answer["options"] = options.clone();
        }
        match guild_id {
            Some(guild_id) => {
                answer["guild_id"] = json!(guild_id);
                answer["integration_types"] = json!([0]);
                answer["contexts"] = Value::Null;
            }
            None => {
                answer["integration_types"] = command.get("integration_types").cloned().unwrap_or_else(|| json!([0]));
                answer["contexts"] = command.get("contexts").cloned().unwrap_or(Value::Null);
                answer["dm_permission"] = json!(command["dm_permission"].as_bool().unwrap_or(true));
            }
        }
        let unchanged = old.is_some_and(|old| {
            let mut old = old.clone();
            old["version"] = json!("0");
            old == answer
        });
        answer["version"] = match old {
            Some(old) if unchanged => old["version"].clone(),
            _ => json!(next_snowflake(inner).to_string()),
        };
        registered.push(answer);
    }
    inner.commands.insert(key, registered.clone());
    Ok(registered)
}

/// Whether the path's application is this one (else Discord's 403).
fn check_application(inner: &Inner, application_id: &str) -> Result<(), Response> {
    if application_id == inner.application_id {
        Ok(())
    } else {
        Err(discord_error(
            StatusCode::FORBIDDEN,
            20012,
            "You are not authorized to perform this action on this application",
        ))
    }
}

async fn get_global_commands(State(shared): State<Shared>, Path(application_id): Path<String>) -> Response {
    let inner = shared.lock();
    if let Err(answer) = check_application(&inner, &application_id) {
        return answer;
    }
    axum::Json(inner.commands.get("").cloned().unwrap_or_default()).into_response()
}

async fn put_global_commands(
    State(shared): State<Shared>,
    Path(application_id): Path<String>,
    headers: HeaderMap,
    bytes: Bytes,
) -> Response {
    let body = match parse_body(&headers, &bytes) {
        Ok(body) => body,
        Err(answer) => return answer,
    };
    record_body(&shared, &format!("PUT {API}/applications/{application_id}/commands"), &body);
    let mut inner = shared.lock();
    if let Err(answer) = check_application(&inner, &application_id) {
        return answer;
    }
    match overwrite_commands(&mut inner, None, &body.json) {
        Ok(commands) => axum::Json(commands).into_response(),
        Err(answer) => answer,
    }
}

async fn get_guild_commands(
    State(shared): State<Shared>,
    Path((application_id, guild_id)): Path<(String, String)>,
) -> Response {
    let inner = shared.lock();
    if let Err(answer) = check_application(&inner, &application_id) {
        return answer;
    }
    if !inner.guilds.iter().any(|g| g.id == guild_id) {
        return missing_access();
    }
    axum::Json(inner.commands.get(&guild_id).cloned().unwrap_or_default()).into_response()
}

async fn put_guild_commands(
    State(shared): State<Shared>,
    Path((application_id, guild_id)): Path<(String, String)>,
    headers: HeaderMap,
    bytes: Bytes,
) -> Response {
    let body = match parse_body(&headers, &bytes) {
        Ok(body) => body,
        Err(answer) => return answer,
    };
    record_body(&shared, &format!("PUT {API}/applications/{application_id}/guilds/{guild_id}/commands"), &body);
    let mut inner = shared.lock();
    if let Err(answer) = check_application(&inner, &application_id) {
        return answer;
    }
    if !inner.guilds.iter().any(|g| g.id == guild_id) {
        return missing_access();
    }
    match overwrite_commands(&mut inner, Some(&guild_id), &body.json) {
        Ok(commands) => axum::Json(commands).into_response(),
        Err(answer) => answer,
    }
}

// Handlers: interactions.

/// Registers a dispatched interaction (an id already known keeps its state).
fn register(inner: &mut Inner, interaction: &Value) {
    let id = text_of(&interaction["id"]).expect("an interaction has an id");
    let token = interaction["token"].as_str().expect("an interaction has a token").to_owned();
    if inner.interactions.contains_key(&id) {
        return;
    }
    let user = if interaction["member"]["user"].is_object() {
        interaction["member"]["user"].clone()
    } else {
        interaction["user"].clone()
    };
    let registered = Interaction {
        id: id.clone(),
        token,
        kind: interaction["type"].as_u64().unwrap_or(0),
        channel_id: text_of(&interaction["channel_id"])
            .or_else(|| text_of(&interaction["channel"]["id"]))
            .unwrap_or_default(),
        guild_id: text_of(&interaction["guild_id"]),
        user,
        name: interaction["data"]["name"].as_str().map(str::to_owned),
        custom_id: interaction["data"]["custom_id"].as_str().map(str::to_owned),
        message: interaction.get("message").filter(|m| m.is_object()).cloned(),
        received: Instant::now(),
        acknowledged: false,
        original: None,
        loading: false,
    };
    inner.interactions.insert(id, registered);
}

/// A snowflake given as a string or a number, as text.
fn text_of(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// The interaction of a webhook route's token, checked as Discord does: the application must be
/// this one and the token known (else `10015`) and not expired (else 401 `50027`).
fn interaction_of_token(inner: &Inner, application_id: &str, token: &str) -> Result<Interaction, Response> {
    if application_id != inner.application_id {
        return Err(unknown_webhook());
    }
    let interaction = inner.interactions.values().find(|i| i.token == token).ok_or_else(unknown_webhook)?;
    if interaction.received.elapsed() > inner.token_lifetime {
        return Err(discord_error(StatusCode::UNAUTHORIZED, 50027, "Invalid Webhook Token"));
    }
    Ok(interaction.clone())
}

/// The `interaction_metadata` of a message made in answer to `interaction`.
fn interaction_metadata(inner: &Inner, interaction: &Interaction) -> Value {
    let owners = match &interaction.guild_id {
        Some(guild) => json!({ "0": guild }),
        None => json!({ "0": "0" }),
    };
    let mut metadata = json!({
        "id": interaction.id,
        "type": interaction.kind,
        "user": interaction.user,
        "authorizing_integration_owners": owners,
    });
    if let Some(original) = &interaction.original {
        metadata["original_response_message_id"] = json!(original);
    }
    match interaction.kind {
        2 => {
            metadata["name"] = json!(interaction.name);
            metadata["command_type"] = json!(1);
        }
        3 => metadata["interacted_message_id"] = interaction.message.as_ref().map_or(Value::Null, |m| m["id"].clone()),
        5 => {
            let opener = interaction
                .custom_id
                .as_ref()
                .and_then(|c| {
                    inner.modals.get(&(interaction.user["id"].as_str().unwrap_or_default().to_owned(), c.clone()))
                })
                .and_then(|id| inner.interactions.get(id));
            let triggering = match opener {
                Some(opener) if opener.id != interaction.id => interaction_metadata(inner, opener),
                // Opened elsewhere: a click on the message the modal came from, or else a command.
                _ => {
                    let mut stand_in = metadata.clone();
                    match &interaction.message {
                        Some(message) => {
                            stand_in["type"] = json!(3);
                            stand_in["interacted_message_id"] = message["id"].clone();
                        }
                        None => {
                            stand_in["type"] = json!(2);
                            stand_in["command_type"] = json!(1);
                        }
                    }
                    stand_in
                }
            };
            metadata["triggering_interaction_metadata"] = triggering;
        }
        _ => {}
    }
    metadata
}

/// A message made by an interaction's webhook (its original response or a follow-up).
fn interaction_message(inner: &mut Inner, interaction: &Interaction, body: &Body, flags: u64) -> Value {
    let kind = if interaction.kind == 2 { 20 } else { 0 };
    let mut message = new_message(inner, &interaction.channel_id, body, kind);
    message["flags"] = json!(flags);
    message["webhook_id"] = json!(inner.application_id);
    message["application_id"] = json!(inner.application_id);
    // An interaction known by id and token only has no user to name.
    if interaction.user.is_object() {
        message["interaction_metadata"] = interaction_metadata(inner, interaction);
        message["interaction"] = json!({
            "id": interaction.id,
            "type": interaction.kind,
            "name": interaction.name.clone().or_else(|| interaction.custom_id.clone()).unwrap_or_default(),
            "user": interaction.user,
        });
    }
    if let Some(component_message) = interaction.message.as_ref().filter(|_| interaction.kind != 2) {
        message["message_reference"] = json!({
            "type": 0,
            "channel_id": interaction.channel_id,
            "message_id": component_message["id"],
            "guild_id": interaction.guild_id,
        });
    }
    message
}

/// Keeps a message made by an interaction's webhook.
fn keep_interaction_message(inner: &mut Inner, interaction: &Interaction, message: &Value, flags: u64) {
    inner.messages.push(Stored {
        channel_id: interaction.channel_id.clone(),
        message: message.clone(),
        nonce: None,
        at: Instant::now(),
        ephemeral: flags & EPHEMERAL != 0,
        token: Some(interaction.token.clone()),
    });
}

/// The callback types Discord accepts for an interaction type (0: not known).
fn allowed_callbacks(kind: u64, has_message: bool) -> &'static [u64] {
    match kind {
        1 => &[1],
        2 => &[4, 5, 9],
        3 => &[4, 5, 6, 7, 9],
        4 => &[8],
        5 if has_message => &[4, 5, 6, 7],
        5 => &[4, 5],
        // Known by id and token only (`expect_interaction`): anything goes.
        0 => &[4, 5, 6, 7, 8, 9],
        _ => &[],
    }
}

/// `POST /interactions/{id}/{token}/callback`: the interaction must be known, its token right
/// and its deadline not passed (else `10062`), and not acknowledged yet (else `40060`).
async fn interaction_callback(
    State(shared): State<Shared>,
    Path((interaction_id, token)): Path<(String, String)>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    bytes: Bytes,
) -> Response {
    let body = parse_body(&headers, &bytes);
    let call = format!("POST {API}/interactions/{interaction_id}/{token}/callback");
    if let Ok(body) = &body {
        record_body(&shared, &call, body);
    }
    let interaction = {
        let inner = shared.lock();
        match inner.interactions.get(&interaction_id) {
            Some(i) if i.token == token && (i.acknowledged || i.received.elapsed() <= inner.ack_deadline) => i.clone(),
            _ => return unknown_interaction(),
        }
    };
    let body = match body {
        Ok(body) => body,
        Err(answer) => return answer,
    };
    let fault = next_fault(&shared, Endpoint::InteractionCallback);
    if let Some(answer) = fault_answer(fault, Endpoint::InteractionCallback).await {
        return answer;
    }
    if interaction.acknowledged || shared.lock().interactions.get(&interaction_id).is_some_and(|i| i.acknowledged) {
        return discord_error(StatusCode::BAD_REQUEST, 40060, "Interaction has already been acknowledged.");
    }
    let kind = body.json["type"].as_u64();
    let allowed = allowed_callbacks(interaction.kind, interaction.message.is_some());
    let Some(kind) = kind.filter(|k| allowed.contains(k)) else {
        let mut errors = FormErrors::default();
        let choices: Vec<String> = allowed.iter().map(ToString::to_string).collect();
        errors.add("type", "BASE_TYPE_CHOICES", format!("Value must be one of {{{}}}.", choices.join(", ")));
        return errors.check().err().unwrap_or_else(server_error);
    };
    let data = Body { json: body.json.get("data").cloned().unwrap_or_else(|| json!({})), files: body.files };
    match kind {
        4 | 7 => {
            if let Err(answer) = validate_message(&data, kind == 4, "data.") {
                return answer;
            }
        }
        9 => {
            let mut errors = FormErrors::default();
            let custom_id = data.json["custom_id"].as_str().unwrap_or_default();
            if custom_id.is_empty() {
                errors.add("data.custom_id", "BASE_TYPE_REQUIRED", "This field is required");
            }
            errors.max_length("data.custom_id", Some(custom_id), 100);
            let title = data.json["title"].as_str().unwrap_or_default();
            if title.is_empty() {
                errors.add("data.title", "BASE_TYPE_REQUIRED", "This field is required");
            }
            errors.max_length("data.title", Some(title), 45);
            let rows = data.json["components"].as_array().map_or(0, Vec::len);
            if !(1..=5).contains(&rows) {
                errors.add("data.components", "BASE_TYPE_BAD_LENGTH", "Must be between 1 and 5 in length.");
            }
            if let Err(answer) = errors.check() {
                return answer;
            }
        }
        _ => {}
    }
    let (answer_message, loading, ephemeral) = {
        let mut inner = shared.lock();
        let Some(mut current) = inner.interactions.get(&interaction_id).cloned() else { return unknown_interaction() };
        if current.acknowledged {
            return discord_error(StatusCode::BAD_REQUEST, 40060, "Interaction has already been acknowledged.");
        }
        current.acknowledged = true;
        let flags = data.json["flags"].as_u64().unwrap_or(0);
        let mut answer_message = None;
        match kind {
            4 => {
                let flags = flags & SETTABLE_FLAGS;
                let message = interaction_message(&mut inner, &current, &data, flags);
                current.original = message["id"].as_str().map(str::to_owned);
                keep_interaction_message(&mut inner, &current, &message, flags);
                answer_message = Some(message);
            }
            5 => {
                let flags = LOADING | (flags & EPHEMERAL);
                let message = interaction_message(&mut inner, &current, &Body::default(), flags);
                current.original = message["id"].as_str().map(str::to_owned);
                current.loading = true;
                keep_interaction_message(&mut inner, &current, &message, flags);
                answer_message = Some(message);
            }
            6 | 7 => {
                let message_id = current.message.as_ref().and_then(|m| m["id"].as_str()).map(str::to_owned);
                current.original = message_id.clone();
                if kind == 7 {
                    let id = message_id.unwrap_or_default();
                    let mut edited = match find_message(&inner, &id) {
                        Some(stored) => stored.message.clone(),
                        None => current.message.clone().unwrap_or_default(),
                    };
                    apply_edit(&mut inner, &mut edited, &data);
                    edited["edited_timestamp"] = json!(timestamp_now());
                    match find_message_mut(&mut inner, &id) {
                        Some(stored) => stored.message = edited.clone(),
                        None => current.message = Some(edited.clone()),
                    }
                    answer_message = Some(edited);
                }
            }
            9 => {
                let user = current.user["id"].as_str().unwrap_or_default().to_owned();
                let custom_id = data.json["custom_id"].as_str().unwrap_or_default().to_owned();
                inner.modals.insert((user, custom_id), interaction_id.clone());
            }
            _ => {}
        }
        let (loading, ephemeral) = (current.loading, flags & EPHEMERAL != 0);
        inner.interactions.insert(interaction_id.clone(), current);
        inner.callbacks.push((interaction_id.clone(), body.json.clone()));
        (answer_message, loading, ephemeral)
    };
    shared.changed.notify_waiters();
    if fault == Fault::ServerErrorAfterPost {
        return server_error();
    }
    if query_params(query.as_deref()).get("with_response").is_some_and(|v| v == "true") {
        let mut callback = json!({ "id": interaction_id, "type": interaction.kind });
        if let Some(message) = &answer_message {
            callback["response_message_id"] = message["id"].clone();
            callback["response_message_loading"] = json!(loading);
            callback["response_message_ephemeral"] = json!(ephemeral);
        }
        let mut resource = json!({ "type": kind });
        if let Some(message) = answer_message.filter(|_| matches!(kind, 4 | 7)) {
            resource["message"] = message;
        }
        return axum::Json(json!({ "interaction": callback, "resource": resource })).into_response();
    }
    StatusCode::NO_CONTENT.into_response()
}

/// The message `message_id` (`@original` or a follow-up's id) of an interaction's webhook.
fn webhook_message(inner: &Inner, interaction: &Interaction, message_id: &str) -> Result<Value, Response> {
    if !interaction.acknowledged {
        return Err(unknown_webhook());
    }
    let id = if message_id == "@original" {
        interaction.original.clone().ok_or_else(unknown_message)?
    } else {
        message_id.to_owned()
    };
    match find_message(inner, &id) {
        Some(stored) if message_id == "@original" || stored.token.as_deref() == Some(interaction.token.as_str()) => {
            Ok(stored.message.clone())
        }
        Some(_) => Err(unknown_message()),
        None if Some(&id) == interaction.original.as_ref() => interaction.message.clone().ok_or_else(unknown_message),
        None => Err(unknown_message()),
    }
}

async fn get_webhook_message(
    State(shared): State<Shared>,
    Path((application_id, token, message_id)): Path<(String, String, String)>,
) -> Response {
    let inner = shared.lock();
    let interaction = match interaction_of_token(&inner, &application_id, &token) {
        Ok(interaction) => interaction,
        Err(answer) => return answer,
    };
    match webhook_message(&inner, &interaction, &message_id) {
        Ok(message) => axum::Json(message).into_response(),
        Err(answer) => answer,
    }
}

/// `PATCH /webhooks/{application.id}/{token}/messages/{@original or id}`: edits an interaction's
/// response (a deferred one stops loading) or one of its follow-ups.
async fn edit_webhook_message(
    State(shared): State<Shared>,
    Path((application_id, token, message_id)): Path<(String, String, String)>,
    headers: HeaderMap,
    bytes: Bytes,
) -> Response {
    let body = parse_body(&headers, &bytes);
    if let Ok(body) = &body {
        record_body(&shared, &format!("PATCH {API}/webhooks/{application_id}/{token}/messages/{message_id}"), body);
    }
    let (interaction, existing) = {
        let inner = shared.lock();
        let interaction = match interaction_of_token(&inner, &application_id, &token) {
            Ok(interaction) => interaction,
            Err(answer) => return answer,
        };
        match webhook_message(&inner, &interaction, &message_id) {
            Ok(message) => (interaction, message),
            Err(answer) => return answer,
        }
    };
    let body = match body {
        Ok(body) => body,
        Err(answer) => return answer,
    };
    let fault = next_fault(&shared, Endpoint::EditOriginal);
    if let Some(answer) = fault_answer(fault, Endpoint::EditOriginal).await {
        return answer;
    }
    if let Err(answer) = validate_message(&body, false, "") {
        return answer;
    }
    let edited = {
        let mut inner = shared.lock();
        let id = existing["id"].as_str().unwrap_or_default().to_owned();
        let mut edited = existing;
        apply_edit(&mut inner, &mut edited, &body);
        let was_loading = interaction.loading && Some(&id) == interaction.original.as_ref();
        if was_loading {
            let flags = edited["flags"].as_u64().unwrap_or(0) & !LOADING;
            edited["flags"] = json!(flags);
        } else {
            edited["edited_timestamp"] = json!(timestamp_now());
        }
        match find_message_mut(&mut inner, &id) {
            Some(stored) => stored.message = edited.clone(),
            None => {
                if let Some(i) = inner.interactions.get_mut(&interaction.id) {
                    i.message = Some(edited.clone());
                }
            }
        }
        if was_loading && let Some(i) = inner.interactions.get_mut(&interaction.id) {
            i.loading = false;
        }
        inner.edits.push((token.clone(), body.json.clone()));
        edited
    };
    shared.changed.notify_waiters();
    if fault == Fault::ServerErrorAfterPost {
        return server_error();
    }
    axum::Json(edited).into_response()
}

async fn delete_webhook_message(
    State(shared): State<Shared>,
    Path((application_id, token, message_id)): Path<(String, String, String)>,
) -> Response {
    let mut inner = shared.lock();
    let interaction = match interaction_of_token(&inner, &application_id, &token) {
        Ok(interaction) => interaction,
        Err(answer) => return answer,
    };
    let message = match webhook_message(&inner, &interaction, &message_id) {
        Ok(message) => message,
        Err(answer) => return answer,
    };
    inner.messages.retain(|m| m.message["id"] != message["id"]);
    StatusCode::NO_CONTENT.into_response()
}

/// `POST /webhooks/{application.id}/{token}`: a follow-up, once the interaction is acknowledged
/// (else `10015`); while a deferred response still loads, it edits that response instead.
async fn create_followup(
    State(shared): State<Shared>,
    Path((application_id, token)): Path<(String, String)>,
    headers: HeaderMap,
    bytes: Bytes,
) -> Response {
    let body = parse_body(&headers, &bytes);
    if let Ok(body) = &body {
        record_body(&shared, &format!("POST {API}/webhooks/{application_id}/{token}"), body);
    }
    let interaction = {
        let inner = shared.lock();
        match interaction_of_token(&inner, &application_id, &token) {
            Ok(interaction) if interaction.acknowledged => interaction,
            Ok(_) => return unknown_webhook(),
            Err(answer) => return answer,
        }
    };
    let body = match body {
        Ok(body) => body,
        Err(answer) => return answer,
    };
    let fault = next_fault(&shared, Endpoint::CreateFollowup);
    if let Some(answer) = fault_answer(fault, Endpoint::CreateFollowup).await {
        return answer;
    }
    if let Err(answer) = validate_message(&body, true, "") {
        return answer;
    }
    let message = {
        let mut inner = shared.lock();
        let current = inner.interactions.get(&interaction.id).cloned().unwrap_or(interaction);
        let original = current.original.clone().filter(|_| current.loading);
        let message = match original.as_deref().and_then(|id| find_message(&inner, id)).map(|m| m.message.clone()) {
            Some(mut loading) => {
                let id = loading["id"].as_str().unwrap_or_default().to_owned();
                apply_edit(&mut inner, &mut loading, &body);
                let flags = loading["flags"].as_u64().unwrap_or(0) & !LOADING;
                loading["flags"] = json!(flags);
                if let Some(stored) = find_message_mut(&mut inner, &id) {
                    stored.message = loading.clone();
                }
                if let Some(i) = inner.interactions.get_mut(&current.id) {
                    i.loading = false;
                }
                loading
            }
            None => {
                let flags = body.json["flags"].as_u64().unwrap_or(0) & SETTABLE_FLAGS;
                let message = interaction_message(&mut inner, &current, &body, flags);
                keep_interaction_message(&mut inner, &current, &message, flags);
                message
            }
        };
        inner.followups.push((token.clone(), body.json.clone()));
        message
    };
    shared.changed.notify_waiters();
    if fault == Fault::ServerErrorAfterPost {
        return server_error();
    }
    axum::Json(message).into_response()
}

// Handlers: channels and messages.

async fn get_channel(State(shared): State<Shared>, Path(channel_id): Path<String>) -> Response {
    let inner = shared.lock();
    match inner.channels.get(&channel_id) {
        Some(channel) => axum::Json(channel_object(&inner, &channel_id, channel)).into_response(),
        None => unknown_channel(),
    }
}

/// `POST /channels/{id}/messages`: a known channel (else `10003`), not a DM with a user who
/// closed them (else `50007`); a repeated enforced nonce returns the earlier message.
async fn create_message(
    State(shared): State<Shared>,
    Path(channel_id): Path<String>,
    headers: HeaderMap,
    bytes: Bytes,
) -> Response {
    let body = parse_body(&headers, &bytes);
    if let Ok(body) = &body {
        record_body(&shared, &format!("POST {API}/channels/{channel_id}/messages"), body);
    }
    let recipient = match shared.lock().channels.get(&channel_id) {
        Some(channel) => channel.recipient.clone(),
        None => return unknown_channel(),
    };
    let body = match body {
        Ok(body) => body,
        Err(answer) => return answer,
    };
    let fault = next_fault(&shared, Endpoint::CreateMessage);
    if let Some(answer) = fault_answer(fault, Endpoint::CreateMessage).await {
        return answer;
    }
    if let Err(answer) = validate_message(&body, true, "") {
        return answer;
    }
    if recipient.is_some_and(|user| shared.lock().blocked.contains(&user)) {
        return discord_error(StatusCode::FORBIDDEN, 50007, "Cannot send messages to this user");
    }
    let message = {
        let mut inner = shared.lock();
        let enforced = body.json["enforce_nonce"].as_bool() == Some(true);
        let nonce = nonce_text(&body.json["nonce"]).filter(|_| enforced);
        let earlier = nonce.as_ref().and_then(|nonce| {
            inner.messages.iter().find(|m| {
                m.channel_id == channel_id && m.nonce.as_ref() == Some(nonce) && m.at.elapsed() < NONCE_WINDOW
            })
        });
        match earlier {
            Some(earlier) => earlier.message.clone(),
            None => {
                let mut message = new_message(&mut inner, &channel_id, &body, 0);
                if let Some(flags) = message["flags"].as_u64() {
                    message["flags"] = json!(flags & !EPHEMERAL);
                }
                inner.messages.push(Stored {
                    channel_id: channel_id.clone(),
                    message: message.clone(),
                    nonce,
                    at: Instant::now(),
                    ephemeral: false,
                    token: None,
                });
                message
            }
        }
    };
    shared.changed.notify_waiters();
    if fault == Fault::ServerErrorAfterPost {
        return server_error();
    }
    axum::Json(message).into_response()
}

/// `GET /channels/{id}/messages`: newest first; `limit` 1 to 100 (default 50), and one of
/// `before`, `after` (the messages right after it) or `around`.
async fn list_messages(
    State(shared): State<Shared>,
    Path(channel_id): Path<String>,
    RawQuery(query): RawQuery,
) -> Response {
    let params = query_params(query.as_deref());
    let inner = shared.lock();
    if !inner.channels.contains_key(&channel_id) {
        return unknown_channel();
    }
    let number = |key: &str| params.get(key).map(|v| v.parse::<u64>());
    let mut errors = FormErrors::default();
    let limit = match number("limit") {
        None => 50,
        Some(Ok(limit)) if (1..=100).contains(&limit) => limit as usize,
        Some(Ok(limit)) if limit > 100 => {
            errors.add("limit", "NUMBER_TYPE_MAX", "int value should be less than or equal to 100.");
            0
        }
        Some(_) => {
            errors.add("limit", "NUMBER_TYPE_COERCE", "Value is not int.");
            0
        }
    };
    let mut anchor = |key: &str| match number(key) {
        Some(Ok(id)) => Some(id),
        Some(Err(_)) => {
            errors.add(key, "NUMBER_TYPE_COERCE", "Value is not snowflake.");
            None
        }
        None => None,
    };
    let (before, after, around) = (anchor("before"), anchor("after"), anchor("around"));
    if let Err(answer) = errors.check() {
        return answer;
    }
    let id_of = |m: &Stored| m.message["id"].as_str().and_then(|id| id.parse::<u64>().ok()).unwrap_or(0);
    let mut all: Vec<&Stored> = inner.messages.iter().filter(|m| m.channel_id == channel_id && !m.ephemeral).collect();
    all.sort_by_key(|m| std::cmp::Reverse(id_of(m)));
    let page: Vec<&Stored> = if let Some(around) = around {
        let newer: Vec<&Stored> = all.iter().copied().filter(|m| id_of(m) > around).collect();
        let older: Vec<&Stored> = all.iter().copied().filter(|m| id_of(m) <= around).collect();
        let newer_count = (limit / 2).min(newer.len());
        let mut page: Vec<&Stored> = newer[newer.len() - newer_count..].to_vec();
        page.extend(older.into_iter().take(limit - newer_count));
        page
    } else if let Some(before) = before {
        all.into_iter().filter(|m| id_of(m) < before).take(limit).collect()
    } else if let Some(after) = after {
        let newer: Vec<&Stored> = all.into_iter().filter(|m| id_of(m) > after).collect();
        newer[newer.len().saturating_sub(limit)..].to_vec()
    } else {
        all.into_iter().take(limit).collect()
    };
    axum::Json(page.into_iter().map(|m| m.message.clone()).collect::<Vec<Value>>()).into_response()
}

async fn get_message(State(shared): State<Shared>, Path((channel_id, message_id)): Path<(String, String)>) -> Response {
    let inner = shared.lock();
    if !inner.channels.contains_key(&channel_id) {
        return unknown_channel();
    }
    match find_message(&inner, &message_id).filter(|m| m.channel_id == channel_id && !m.ephemeral) {
        Some(stored) => axum::Json(stored.message.clone()).into_response(),
        None => unknown_message(),
    }
}

/// `PATCH /channels/{id}/messages/{id}`: edits one of the bot's messages in that channel.
async fn edit_message(
    State(shared): State<Shared>,
    Path((channel_id, message_id)): Path<(String, String)>,
    headers: HeaderMap,
    bytes: Bytes,
) -> Response {
    let body = parse_body(&headers, &bytes);
    if let Ok(body) = &body {
        record_body(&shared, &format!("PATCH {API}/channels/{channel_id}/messages/{message_id}"), body);
    }
    let existing = {
        let inner = shared.lock();
        if !inner.channels.contains_key(&channel_id) {
            return unknown_channel();
        }
        match find_message(&inner, &message_id).filter(|m| m.channel_id == channel_id && !m.ephemeral) {
            Some(stored) => stored.message.clone(),
            None => return unknown_message(),
        }
    };
    let body = match body {
        Ok(body) => body,
        Err(answer) => return answer,
    };
    let fault = next_fault(&shared, Endpoint::EditMessage);
    if let Some(answer) = fault_answer(fault, Endpoint::EditMessage).await {
        return answer;
    }
    if let Err(answer) = validate_message(&body, false, "") {
        return answer;
    }
    let edited = {
        let mut inner = shared.lock();
        let mut edited = existing;
        apply_edit(&mut inner, &mut edited, &body);
        let attachments = edited["attachments"].as_array().map_or(0, Vec::len);
        let probe = Body { json: edited.clone(), files: Vec::new() };
        if attachments == 0 && is_empty_message(&probe) {
            return empty_message();
        }
        edited["edited_timestamp"] = json!(timestamp_now());
        if let Some(stored) = find_message_mut(&mut inner, &message_id) {
            stored.message = edited.clone();
        }
        inner.message_edits.push((message_id.clone(), body.json.clone()));
        edited
    };
    shared.changed.notify_waiters();
    if fault == Fault::ServerErrorAfterPost {
        return server_error();
    }
    axum::Json(edited).into_response()
}

// The Gateway.

/// The HTTP side of the shared port: the connections that are not Gateway handshakes.
struct HttpListener {
    rx: mpsc::UnboundedReceiver<(TcpStream, SocketAddr)>,
    addr: SocketAddr,
}

impl axum::serve::Listener for HttpListener {
    type Io = TcpStream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (TcpStream, SocketAddr) {
        match self.rx.recv().await {
            Some(connection) => connection,
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<SocketAddr> {
        Ok(self.addr)
    }
}

/// Whether a new connection opens with `GET /gateway` (a WebSocket handshake for the Gateway),
/// read without consuming it.
async fn is_gateway(stream: &TcpStream) -> bool {
    const PREFIX: &[u8] = b"GET /gateway";
    let mut buffer = [0u8; 16];
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let Ok(n) = stream.peek(&mut buffer).await else { return false };
        if n == 0 || !PREFIX.starts_with(&buffer[..n.min(PREFIX.len())]) {
            return false;
        }
        if n > PREFIX.len() {
            return matches!(buffer[PREFIX.len()], b' ' | b'?' | b'/');
        }
        if Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

fn text_frame(value: &Value) -> Frame {
    Frame::Text(value.to_string().into())
}

fn close_frame(code: u16, reason: &str) -> Frame {
    Frame::Close(Some(CloseFrame { code: code.into(), reason: reason.to_owned().into() }))
}

/// Sends a frame down connection `n`.
fn send_to(inner: &Inner, n: u64, frame: Frame) {
    if let Some(connection) = inner.connections.iter().find(|c| c.n == n) {
        let _ = connection.tx.send(frame);
    }
}

/// Whether an event belongs to a shard: events of a guild go to shard `(guild_id >> 22) % total`,
/// the others (DMs) to shard 0.
fn for_shard(data: &Value, shard: (u64, u64)) -> bool {
    match text_of(&data["guild_id"]).and_then(|g| g.parse::<u64>().ok()) {
        Some(guild) => (guild >> 22) % shard.1.max(1) == shard.0,
        None => shard.0 == 0,
    }
}

/// Sends a dispatch to every session of its shard (kept in each session's log for RESUME).
fn dispatch_event(inner: &mut Inner, event_name: &str, data: Value) -> usize {
    let mut sent = 0;
    let mut template = json!({ "op": 0, "t": event_name, "s": null });
    template["d"] = data;
    let mut deliveries = Vec::new();
    for session in inner.sessions.values_mut() {
        if session.stale || !for_shard(&template["d"], session.shard) {
            continue;
        }
        session.seq += 1;
        let mut frame = template.clone();
        frame["s"] = json!(session.seq);
        session.log.push_back(frame.clone());
        if session.log.len() > 1000 {
            session.log.pop_front();
        }
        if let Some(n) = session.live {
            deliveries.push((n, frame));
        }
        sent += 1;
    }
    for (n, frame) in deliveries {
        send_to(inner, n, text_frame(&frame));
    }
    sent
}

/// One Gateway connection: the handshake (`/gateway`, `v=10`), HELLO, then frames both ways; all
/// that goes out is queued on the connection's channel, so it leaves in order.
async fn serve_gateway(stream: TcpStream, shared: Shared) {
    let mut version = None;
    let check = |request: &WsRequest, response: WsResponse| {
        version =
            request.uri().query().and_then(|q| q.split('&').find_map(|kv| kv.strip_prefix("v=")).map(str::to_owned));
        if request.uri().path().trim_end_matches('/') == "/gateway" {
            Ok(response)
        } else {
            let mut refusal = tokio_tungstenite::tungstenite::handshake::server::ErrorResponse::new(None);
            *refusal.status_mut() = StatusCode::NOT_FOUND;
            Err(refusal)
        }
    };
    let Ok(mut ws) = tokio_tungstenite::accept_hdr_async(stream, check).await else { return };
    let (tx, mut rx) = mpsc::unbounded_channel();
    let n = {
        let mut inner = shared.lock();
        inner.accepted += 1;
        let n = inner.accepted;
        inner.connections.push(Connection { n, tx: tx.clone(), session: None });
        n
    };
    shared.changed.notify_waiters();
    let hello = json!({ "op": 10, "d": { "heartbeat_interval": HEARTBEAT_INTERVAL_MS, "_trace": ["[\"fake-discord-gateway\"]"] }, "s": null, "t": null });
    let _ = tx.send(text_frame(&hello));
    if version.as_deref().is_some_and(|v| v != "10") {
        let _ = tx.send(close_frame(4012, "Invalid API version"));
    }
    loop {
        tokio::select! {
            outgoing = rx.recv() => {
                let Some(frame) = outgoing else { break };
                let closing = matches!(frame, Frame::Close(_));
                if ws.send(frame).await.is_err() {
                    break;
                }
                if closing {
                    // Wait briefly for the client's close frame, then drop the connection.
                    let _ = tokio::time::timeout(Duration::from_secs(1), async {
                        while let Some(Ok(frame)) = ws.next().await {
                            if frame.is_close() {
                                break;
                            }
                        }
                    })
                    .await;
                    break;
                }
            }
            incoming = ws.next() => match incoming {
                Some(Ok(Frame::Text(text))) => on_frame(&shared, n, text.as_str()),
                Some(Ok(Frame::Binary(_))) => {
                    let _ = tx.send(close_frame(4002, "Error while decoding payload."));
                }
                Some(Ok(Frame::Close(_))) => {
                    // Sends the close frame tungstenite queued in reply, as Discord answers one.
                    let _ = ws.flush().await;
                    break;
                }
                // Pings are answered by tungstenite.
                Some(Err(_)) | None => break,
                Some(Ok(_)) => {}
            },
        }
    }
    {
        let mut inner = shared.lock();
        inner.connections.retain(|c| c.n != n);
        for session in inner.sessions.values_mut() {
            if session.live == Some(n) {
                session.live = None;
            }
        }
    }
    shared.changed.notify_waiters();
}

/// Handles one frame from a client.
fn on_frame(shared: &Shared, n: u64, text: &str) {
    {
        let mut inner = shared.lock();
        let Ok(frame) = serde_json::from_str::<Value>(text) else {
            send_to(&inner, n, close_frame(4002, "Error while decoding payload."));
            return;
        };
        inner.received.push(frame.clone());
        let identified = inner.connections.iter().any(|c| c.n == n && c.session.is_some());
        match frame["op"].as_u64() {
            Some(1) => send_to(&inner, n, text_frame(&json!({ "op": 11, "d": null, "s": null, "t": null }))),
            Some(2) if identified => send_to(&inner, n, close_frame(4005, "Already authenticated.")),
            Some(2) => identify(&mut inner, n, &frame["d"]),
            Some(6) => resume(&mut inner, n, &frame["d"]),
            Some(3 | 4 | 8 | 31 | 43) if !identified => send_to(&inner, n, close_frame(4003, "Not authenticated.")),
            Some(3 | 4 | 8 | 31 | 43) => {}
            _ => send_to(&inner, n, close_frame(4001, "Unknown opcode.")),
        }
    }
    shared.changed.notify_waiters();
}

/// Whether a Gateway payload's token is the bot's (the `Bot ` prefix is optional).
fn gateway_token_ok(inner: &Inner, d: &Value) -> bool {
    d["token"].as_str().is_some_and(|t| t.strip_prefix("Bot ").unwrap_or(t) == inner.token)
}

/// IDENTIFY: checks the token, intents and shard, starts a session, and sends READY and a
/// GUILD_CREATE per guild of the shard.
fn identify(inner: &mut Inner, n: u64, d: &Value) {
    if !gateway_token_ok(inner, d) {
        send_to(inner, n, close_frame(4004, "Authentication failed."));
        return;
    }
    let Some(intents) = d["intents"].as_u64() else {
        send_to(inner, n, close_frame(4013, "Invalid intent(s)."));
        return;
    };
    if intents >= 1 << 26 {
        send_to(inner, n, close_frame(4013, "Invalid intent(s)."));
        return;
    }
    if intents & PRIVILEGED_INTENTS & !inner.allowed_privileged != 0 {
        send_to(inner, n, close_frame(4014, "Disallowed intent(s)."));
        return;
    }
    let shard = match d["shard"].as_array().map(Vec::as_slice) {
        None => (0, 1),
        Some([id, total]) => match (id.as_u64(), total.as_u64()) {
            (Some(id), Some(total)) if id < total => (id, total),
            _ => {
                send_to(inner, n, close_frame(4010, "Invalid shard."));
                return;
            }
        },
        Some(_) => {
            send_to(inner, n, close_frame(4010, "Invalid shard."));
            return;
        }
    };
    inner.identifies.push(d.clone());
    // An earlier session of this shard that is not live any more cannot be resumed now.
    inner.sessions.retain(|_, s| s.live.is_some() || s.shard != shard);
    let session_id = uuid::Uuid::new_v4().simple().to_string();
    let base = inner.base.clone();
    let guilds: Vec<Value> = inner
        .guilds
        .iter()
        .filter(|g| for_shard(&json!({ "guild_id": g.id }), shard))
        .map(|g| json!({ "id": g.id, "unavailable": true }))
        .collect();
    let ready = json!({
        "v": 10,
        "user_settings": {},
        "user": current_user(inner),
        "guilds": guilds,
        "presences": [],
        "private_channels": [],
        "relationships": [],
        "guild_join_requests": [],
        "geo_ordered_rtc_regions": ["rotterdam", "madrid", "milan", "frankfurt", "stockholm"],
        "session_id": session_id,
        "session_type": "normal",
        "resume_gateway_url": gateway_url(&base),
        "shard": [shard.0, shard.1],
        "application": { "id": inner.application_id, "flags": application_flags(inner) },
        "auth": {},
        "_trace": ["[\"fake-discord-gateway\"]"],
    });
    let creates: Vec<Value> = inner
        .guilds
        .iter()
        .filter(|g| for_shard(&json!({ "guild_id": g.id }), shard))
        .map(|g| guild_create(inner, g))
        .collect();
    let session = Session { shard, seq: 0, log: VecDeque::new(), live: Some(n), stale: false };
    inner.sessions.insert(session_id.clone(), session);
    if let Some(connection) = inner.connections.iter_mut().find(|c| c.n == n) {
        connection.session = Some(session_id.clone());
    }
    let mut frames = Vec::new();
    if let Some(session) = inner.sessions.get_mut(&session_id) {
        for (event, data) in std::iter::once(("READY", ready)).chain(creates.into_iter().map(|c| ("GUILD_CREATE", c))) {
            session.seq += 1;
            let frame = json!({ "op": 0, "t": event, "s": session.seq, "d": data });
            session.log.push_back(frame.clone());
            frames.push(frame);
        }
    }
    for frame in frames {
        send_to(inner, n, text_frame(&frame));
    }
    inner.readies += 1;
}

/// RESUME: replays what the session missed after `seq` and sends RESUMED; an unknown or ended
/// session gets INVALID_SESSION (not resumable), a `seq` ahead of the session 4007.
fn resume(inner: &mut Inner, n: u64, d: &Value) {
    if !gateway_token_ok(inner, d) {
        send_to(inner, n, close_frame(4004, "Authentication failed."));
        return;
    }
    let session_id = d["session_id"].as_str().unwrap_or_default().to_owned();
    let Some(session) = inner.sessions.get(&session_id).filter(|s| !s.stale) else {
        send_to(inner, n, text_frame(&json!({ "op": 9, "d": false, "s": null, "t": null })));
        return;
    };
    let seq = d["seq"].as_u64().unwrap_or(0);
    if seq > session.seq {
        send_to(inner, n, close_frame(4007, "Invalid seq."));
        return;
    }
    if let Some(old) = session.live.filter(|old| *old != n) {
        send_to(inner, old, close_frame(4000, "Session resumed elsewhere."));
    }
    let mut frames: Vec<Value> =
        session.log.iter().filter(|f| f["s"].as_u64().is_some_and(|s| s > seq)).cloned().collect();
    if let Some(session) = inner.sessions.get_mut(&session_id) {
        session.seq += 1;
        session.live = Some(n);
        frames.push(
            json!({ "op": 0, "t": "RESUMED", "s": session.seq, "d": { "_trace": ["[\"fake-discord-gateway\"]"] } }),
        );
    }
    if let Some(connection) = inner.connections.iter_mut().find(|c| c.n == n) {
        connection.session = Some(session_id);
    }
    for frame in frames {
        send_to(inner, n, text_frame(&frame));
    }
    inner.resumes += 1;
}
