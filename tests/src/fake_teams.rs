//! A fake of the Microsoft services a Teams bot talks to, on 127.0.0.1, for tests. One server,
//! one base URL, three services:
//!
//! - The Bot Framework's OpenID metadata (`/v1/.well-known/openidconfiguration`) and signing keys
//!   (`/v1/.well-known/keys`): what a bot checks the Bot Connector's inbound tokens with. The
//!   fake signs such tokens ([`FakeTeams::token`], [`FakeTeams::sign`]) with the key it
//!   publishes, and with a key it does not publish ([`FakeTeams::sign_rogue`]).
//! - The Microsoft Entra ID token endpoint (`/login/{tenant}/oauth2/v2.0/token`, client
//!   credentials): what a bot gets its own tokens for the Bot Connector from, answering Entra's
//!   `AADSTS` errors for a wrong tenant, client id, secret, scope or grant.
//! - The Bot Connector REST API v3 under [`FakeTeams::service_url`]: create a conversation, send,
//!   reply to and update activities, get a member. Every call needs a token the token endpoint
//!   issued and that has not expired; errors are Teams' `{"error": {"code", "message"}}` bodies.
//!
//! Faults are scripted as in the fake Slack: each send, reply, update and create-conversation
//! call that passes authentication and validation takes the next [`Fault`] from
//! [`FakeTeams::script`], then [`FakeTeams::default_fault`]. A `ServerErrorAfterPost` keeps the
//! activity (creates the conversation) and still answers 500, so only a sender that avoids
//! resending a delivered activity avoids a duplicate. Every Bot Connector call is recorded, with
//! the token it carried.
//!
//! The inbound side (what the Bot Connector posts to a bot's messaging endpoint) is plain JSON
//! built by [`FakeTeams::message_activity`], [`FakeTeams::invoke_action`],
//! [`FakeTeams::submit_activity`] and [`FakeTeams::conversation_update`], in the shapes Teams
//! documents for a personal (one-to-one) chat.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chrono::{DateTime, SecondsFormat};
use jsonwebtoken::jwk::{AlgorithmParameters, Jwk};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Map, Value, json};

/// The private key whose public half the fake publishes (PKCS#1 PEM, 2048 bits).
pub const BOT_KEY_PEM: &str = include_str!("../fixtures/teams/bot_key.pem");
/// A private key the fake does not publish, for tokens signed by an unknown key.
pub const ROGUE_KEY_PEM: &str = include_str!("../fixtures/teams/rogue_key.pem");
/// The key id (`kid`, and `x5t`) of the published key.
pub const KEY_ID: &str = "teams-test-key";
/// The key id of the unpublished key.
pub const ROGUE_KEY_ID: &str = "rogue-key";
/// The issuer of the Bot Connector's tokens, as in the real OpenID metadata.
pub const ISSUER: &str = "https://api.botframework.com";
/// The scope a bot asks Entra ID for to call the Bot Connector.
pub const SCOPE: &str = "https://api.botframework.com/.default";
/// The display name the inbound activities give the bot.
pub const BOT_NAME: &str = "Dealwatch";

/// The tenant multi-tenant bots get their tokens from, and its id (the issuer of those tokens).
const BOTFRAMEWORK_TENANT: &str = "botframework.com";
const BOTFRAMEWORK_TENANT_ID: &str = "d6d49420-f39b-4df7-a1dc-d59a935871db";
/// The channels the published key is endorsed for.
const ENDORSEMENTS: [&str; 3] = ["msteams", "emulator", "webchat"];
/// The access tokens' lifetime unless [`FakeTeams::set_token_lifetime`] changes it.
const DEFAULT_TOKEN_LIFETIME: u64 = 3599;

/// What the fake does with one send, reply, update or create-conversation call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Does it and answers as Teams does.
    None,
    /// Answers HTTP 500 (`ServiceError`) without doing it.
    ServerError,
    /// Does it (keeps the activity, creates the conversation), then answers HTTP 500.
    ServerErrorAfterPost,
    /// Answers HTTP 429 (`Throttled`) with `Retry-After: n` seconds, without doing it.
    RateLimited(u64),
    /// Waits this many milliseconds, then does it and answers.
    Slow(u64),
    /// Answers HTTP 403 `BotNotInConversationRoster` (the app was uninstalled), without doing it.
    Forbidden,
}

/// An activity the Bot Connector accepted: posted (sent or a reply) or put (an update).
#[derive(Debug, Clone, PartialEq)]
pub struct Sent {
    /// The conversation, percent-decoded from the path.
    pub conversation_id: String,
    /// The id the fake gave the new activity, or the id of the activity updated.
    pub activity_id: String,
    /// For a reply, the activity replied to (from the path).
    pub reply_to: Option<String>,
    /// The activity as received.
    pub activity: Value,
    /// The bearer token the call carried.
    pub token: String,
}

/// A Teams user in the tenant.
#[derive(Debug, Clone)]
struct User {
    /// The bot-specific user id, `29:…`.
    id: String,
    aad_object_id: String,
    email: String,
    name: String,
}

#[derive(Debug, Default)]
struct Conversation {
    /// The user of a one-to-one chat created through the API; `None` for a conversation the test
    /// registered, which has every known user as a member.
    member: Option<String>,
    /// The activities the bot posted into it.
    activities: HashSet<String>,
}

#[derive(Debug, Default)]
struct Inner {
    app_id: String,
    app_password: String,
    tenant_id: String,
    /// `http://127.0.0.1:PORT`.
    base: String,
    /// The published key as a JWK.
    jwk: Value,
    metadata_hits: usize,
    keys_hits: usize,
    keys_failing: bool,
    /// Access tokens issued and when each expires.
    tokens: HashMap<String, Instant>,
    tokens_issued: usize,
    token_lifetime: u64,
    /// The form fields of every token request, in order.
    token_requests: Vec<Value>,
    users: Vec<User>,
    conversations: HashMap<String, Conversation>,
    /// One-to-one chats created through the API: user id to conversation id.
    personal: HashMap<String, String>,
    activities: Vec<Sent>,
    updates: Vec<Sent>,
    created: Vec<Value>,
    calls: Vec<String>,
    script: VecDeque<Fault>,
    default_fault: Option<Fault>,
    /// Activity ids are milliseconds since the epoch, as Teams' are: the start time plus a count.
    epoch_ms: u64,
    seq: u64,
}

type Shared = Arc<Mutex<Inner>>;

fn lock(inner: &Shared) -> std::sync::MutexGuard<'_, Inner> {
    inner.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The running fake; clones share it, and it stops when the last one is dropped.
#[derive(Debug, Clone)]
pub struct FakeTeams {
    inner: Shared,
    /// `http://127.0.0.1:PORT`.
    base: String,
    task: Arc<tokio::task::JoinHandle<()>>,
}

impl Drop for FakeTeams {
    fn drop(&mut self) {
        if Arc::strong_count(&self.task) == 1 {
            self.task.abort();
        }
    }
}

impl FakeTeams {
    /// Starts the fake on a free port for the bot `app_id` with client secret `app_password`,
    /// registered in tenant `tenant_id`.
    pub async fn start(app_id: &str, app_password: &str, tenant_id: &str) -> FakeTeams {
        let inner = Arc::new(Mutex::new(Inner {
            app_id: app_id.to_owned(),
            app_password: app_password.to_owned(),
            tenant_id: tenant_id.to_owned(),
            jwk: published_jwk(),
            token_lifetime: DEFAULT_TOKEN_LIFETIME,
            epoch_ms: now_ms(),
            ..Inner::default()
        }));
        let app = Router::new()
            .route("/v1/.well-known/openidconfiguration", get(openid_metadata))
            .route("/v1/.well-known/keys", get(keys))
            .route("/login/{tenant}/oauth2/v2.0/token", post(token_endpoint))
            .route("/teams/v3/conversations", post(create_conversation))
            .route("/teams/v3/conversations/{conversation_id}/activities", post(send_activity))
            .route(
                "/teams/v3/conversations/{conversation_id}/activities/{activity_id}",
                post(reply_to_activity).put(update_activity),
            )
            .route("/teams/v3/conversations/{conversation_id}/members/{member_id}", get(get_member))
            .with_state(inner.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind the fake Teams");
        let addr = listener.local_addr().expect("address");
        let base = format!("http://{addr}");
        lock(&inner).base = base.clone();
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        FakeTeams { inner, base, task: Arc::new(task) }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        lock(&self.inner)
    }

    /// `http://127.0.0.1:PORT`, the root of all three services.
    pub fn base_url(&self) -> String {
        self.base.clone()
    }

    /// The Bot Framework OpenID metadata URL (`https://login.botframework.com/v1/.well-known/openidconfiguration`).
    pub fn openid_metadata_url(&self) -> String {
        format!("{}/v1/.well-known/openidconfiguration", self.base)
    }

    /// The signing keys URL, as the metadata's `jwks_uri` gives it.
    pub fn keys_url(&self) -> String {
        format!("{}/v1/.well-known/keys", self.base)
    }

    /// What stands for `https://login.microsoftonline.com`: the token endpoint is
    /// `{login_url}/{tenant}/oauth2/v2.0/token`.
    pub fn login_url(&self) -> String {
        format!("{}/login", self.base)
    }

    /// The Bot Connector's service URL, with its trailing slash, as activities carry it.
    pub fn service_url(&self) -> String {
        format!("{}/teams/", self.base)
    }

    /// Points `settings` at this fake: the bot's app id and secret, its Entra tenant, the
    /// sign-in, metadata and Connector URLs, and this tenant connected to Dealwatch's `tenant`.
    pub fn configure(&self, settings: &mut bot::config::Settings, tenant: &str) {
        let inner = self.lock();
        let t = &mut settings.teams;
        t.app_id = Some(inner.app_id.clone());
        t.app_password = Some(inner.app_password.clone().into());
        t.app_tenant = inner.tenant_id.clone();
        t.login_url = self.login_url();
        t.openid_metadata_url = self.openid_metadata_url();
        t.service_urls = vec![self.service_url()];
        t.tenants = [(inner.tenant_id.clone(), tenant.to_owned())].into();
    }

    /// The bot's id in Teams conversations, `28:<app id>`.
    pub fn bot_id(&self) -> String {
        format!("28:{}", self.lock().app_id)
    }

    /// The claims of a valid inbound token for an activity from `service_url`, for a test to
    /// change one field of.
    pub fn claims(&self, service_url: &str) -> Value {
        let now = now_ms() / 1000;
        json!({
            "iss": ISSUER,
            "aud": self.lock().app_id,
            "exp": now + 3600,
            "nbf": now - 60,
            "iat": now - 60,
            "serviceurl": service_url,
        })
    }

    /// A valid inbound token (the `Authorization: Bearer` value the Bot Connector posts
    /// activities from `service_url` with), signed by the published key.
    pub fn token(&self, service_url: &str) -> String {
        self.sign(&self.claims(service_url))
    }

    /// `claims` as an RS256 token signed by the published key (`kid` "teams-test-key").
    pub fn sign(&self, claims: &Value) -> String {
        sign_with(BOT_KEY_PEM, KEY_ID, claims).expect("sign with the published test key")
    }

    /// `claims` as an RS256 token signed by a key the fake does not publish (`kid` "rogue-key").
    pub fn sign_rogue(&self, claims: &Value) -> String {
        sign_with(ROGUE_KEY_PEM, ROGUE_KEY_ID, claims).expect("sign with the rogue test key")
    }

    /// How many times the OpenID metadata was fetched.
    pub fn metadata_hits(&self) -> usize {
        self.lock().metadata_hits
    }

    /// How many times the signing keys were fetched (failed fetches too).
    pub fn keys_hits(&self) -> usize {
        self.lock().keys_hits
    }

    /// While `failing`, the signing keys endpoint answers HTTP 500.
    pub fn fail_keys(&self, failing: bool) {
        self.lock().keys_failing = failing;
    }

    /// How many access tokens the token endpoint issued.
    pub fn tokens_issued(&self) -> usize {
        self.lock().tokens_issued
    }

    /// The form fields of every token request, in order, refused ones too (the client secret of
    /// HTTP Basic auth included as `client_secret`).
    pub fn token_requests(&self) -> Vec<Value> {
        self.lock().token_requests.clone()
    }

    /// Expires every access token issued so far: the Bot Connector answers 401 to them.
    pub fn expire_tokens(&self) {
        self.lock().tokens.clear();
    }

    /// The `expires_in` of tokens issued from now on, which also expire after that many seconds.
    pub fn set_token_lifetime(&self, secs: u64) {
        self.lock().token_lifetime = secs;
    }

    /// Registers a user of the tenant: `user_id_29` is the bot-specific `29:…` id.
    pub fn add_user(&self, user_id_29: &str, aad_object_id: &str, email: &str, name: &str) {
        let user = User {
            id: user_id_29.to_owned(),
            aad_object_id: aad_object_id.to_owned(),
            email: email.to_owned(),
            name: name.to_owned(),
        };
        let mut inner = self.lock();
        inner.users.retain(|u| u.id != user.id);
        inner.users.push(user);
    }

    /// Registers a conversation the bot is in (every registered user is a member of it).
    pub fn add_conversation(&self, id: &str) {
        self.lock().conversations.entry(id.to_owned()).or_default();
    }

    /// The one-to-one conversation created for user `user_id_29` through the API, if any.
    pub fn conversation_of(&self, user_id_29: &str) -> Option<String> {
        self.lock().personal.get(user_id_29).cloned()
    }

    /// The faults for the next send, reply, update and create-conversation calls, in order.
    pub fn script(&self, faults: &[Fault]) {
        self.lock().script.extend(faults.iter().copied());
    }

    /// The fault once the script is used up (default: none).
    pub fn default_fault(&self, fault: Fault) {
        self.lock().default_fault = Some(fault);
    }

    /// Every activity posted (sent or replied) and accepted, in order.
    pub fn activities(&self) -> Vec<Sent> {
        self.lock().activities.clone()
    }

    /// Every activity update accepted, in order.
    pub fn updates(&self) -> Vec<Sent> {
        self.lock().updates.clone()
    }

    /// The body of every create-conversation call that created (or found) a conversation, in order.
    pub fn created(&self) -> Vec<Value> {
        self.lock().created.clone()
    }

    /// Every Bot Connector call, as `METHOD /v3/…` with the ids percent-decoded, in order,
    /// refused and faulted ones too.
    pub fn calls(&self) -> Vec<String> {
        self.lock().calls.clone()
    }

    /// Waits until at least `n` activities were accepted, or `timeout` passed; then the activities.
    pub async fn wait_for_activities(&self, n: usize, timeout: Duration) -> Vec<Sent> {
        let deadline = Instant::now() + timeout;
        loop {
            let sent = self.activities();
            if sent.len() >= n || Instant::now() >= deadline {
                return sent;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// A user's text message in a personal chat, as the Bot Connector posts it to the bot.
    pub fn message_activity(&self, conversation_id: &str, from_id: &str, aad_object_id: &str, text: &str) -> Value {
        let id = self.next_id();
        let mut activity = self.inbound("message", &id, conversation_id, from_id, aad_object_id);
        activity.insert("text".into(), json!(text));
        activity.insert("textFormat".into(), json!("plain"));
        Value::Object(activity)
    }

    /// A click on an Adaptive Card's `Action.Execute` (a Universal Action) with `verb` and
    /// `data`, on the card activity `reply_to_id`: an `adaptiveCard/action` invoke, which the bot
    /// answers in the HTTP response.
    pub fn invoke_action(
        &self,
        conversation_id: &str,
        from_id: &str,
        aad_object_id: &str,
        reply_to_id: &str,
        verb: &str,
        data: &Value,
    ) -> Value {
        let id = format!("f:{}", uuid::Uuid::new_v4());
        let mut activity = self.inbound("invoke", &id, conversation_id, from_id, aad_object_id);
        activity.insert("name".into(), json!("adaptiveCard/action"));
        activity.insert(
            "value".into(),
            json!({ "action": { "type": "Action.Execute", "verb": verb, "data": data }, "trigger": "manual" }),
        );
        activity.insert("replyToId".into(), json!(reply_to_id));
        Value::Object(activity)
    }

    /// A click on an `Action.Submit` (the fallback of `Action.Execute` on older clients) on the
    /// card activity `reply_to_id`: a message without text whose `value` is the action's data.
    pub fn submit_activity(
        &self,
        conversation_id: &str,
        from_id: &str,
        aad_object_id: &str,
        reply_to_id: &str,
        data: &Value,
    ) -> Value {
        let id = self.next_id();
        let mut activity = self.inbound("message", &id, conversation_id, from_id, aad_object_id);
        activity.insert("value".into(), data.clone());
        activity.insert("replyToId".into(), json!(reply_to_id));
        Value::Object(activity)
    }

    /// The `conversationUpdate` a bot gets when a user installs it in a personal chat: the bot and
    /// the user are the members added.
    pub fn conversation_update(&self, conversation_id: &str, from_id: &str, aad_object_id: &str) -> Value {
        let id = format!("f:{}", uuid::Uuid::new_v4());
        let mut activity = self.inbound("conversationUpdate", &id, conversation_id, from_id, aad_object_id);
        activity.insert(
            "membersAdded".into(),
            json!([{ "id": self.bot_id() }, { "id": from_id, "aadObjectId": aad_object_id }]),
        );
        Value::Object(activity)
    }

    fn next_id(&self) -> String {
        next_activity_id(&mut self.lock())
    }

    /// The fields every inbound activity of a personal chat has.
    fn inbound(
        &self,
        kind: &str,
        id: &str,
        conversation_id: &str,
        from_id: &str,
        aad_object_id: &str,
    ) -> Map<String, Value> {
        let inner = self.lock();
        let name = inner
            .users
            .iter()
            .find(|u| u.id == from_id || u.aad_object_id == aad_object_id)
            .map_or("Test User", |u| u.name.as_str());
        let activity = json!({
            "type": kind,
            "id": id,
            "timestamp": timestamp(),
            "serviceUrl": format!("{}/teams/", inner.base),
            "channelId": "msteams",
            "from": { "id": from_id, "name": name, "aadObjectId": aad_object_id },
            "conversation": { "conversationType": "personal", "tenantId": inner.tenant_id, "id": conversation_id },
            "recipient": { "id": format!("28:{}", inner.app_id), "name": BOT_NAME },
            "entities": [{
                "locale": "en-US",
                "country": "US",
                "platform": "Web",
                "timezone": "America/Los_Angeles",
                "type": "clientInfo",
            }],
            "channelData": { "tenant": { "id": inner.tenant_id } },
            "locale": "en-US",
            "localTimezone": "America/Los_Angeles",
        });
        match activity {
            Value::Object(fields) => fields,
            _ => Map::new(),
        }
    }
}

/// Milliseconds since the Unix epoch.
fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// Now as Teams writes timestamps: `2024-05-01T12:34:56.789Z`.
fn timestamp() -> String {
    let ms = i64::try_from(now_ms()).unwrap_or_default();
    DateTime::from_timestamp_millis(ms).map(|t| t.to_rfc3339_opts(SecondsFormat::Millis, true)).unwrap_or_default()
}

/// A new activity id: milliseconds since the epoch, unique within the fake.
fn next_activity_id(inner: &mut Inner) -> String {
    inner.seq += 1;
    (inner.epoch_ms + inner.seq).to_string()
}

/// `claims` as an RS256 token signed by the PEM key `pem`, with `kid` and `x5t` set to `kid` as
/// the Bot Connector's tokens have them.
fn sign_with(pem: &str, kid: &str, claims: &Value) -> jsonwebtoken::errors::Result<String> {
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some(kid.to_owned());
    header.x5t = Some(kid.to_owned());
    let key = EncodingKey::from_rsa_pem(pem.as_bytes())?;
    jsonwebtoken::encode(&header, claims, &key)
}

/// The published key as the Bot Framework's JWKS lists its keys (with their `endorsements`).
fn published_jwk() -> Value {
    let key = EncodingKey::from_rsa_pem(BOT_KEY_PEM.as_bytes()).expect("the published test key");
    let jwk = Jwk::from_encoding_key(&key, Algorithm::RS256).expect("a JWK from the published test key");
    let AlgorithmParameters::RSA(rsa) = jwk.algorithm else { panic!("the published test key is RSA") };
    json!({
        "kty": "RSA",
        "use": "sig",
        "kid": KEY_ID,
        "x5t": KEY_ID,
        "n": rsa.n,
        "e": rsa.e,
        "endorsements": ENDORSEMENTS,
    })
}

/// GET /v1/.well-known/openidconfiguration: the document at
/// `https://login.botframework.com/v1/.well-known/openidconfiguration`, pointing at this fake's keys.
async fn openid_metadata(State(inner): State<Shared>) -> Response {
    let base = {
        let mut inner = lock(&inner);
        inner.metadata_hits += 1;
        inner.base.clone()
    };
    Json(json!({
        "issuer": ISSUER,
        "authorization_endpoint": "https://invalid.botframework.com",
        "jwks_uri": format!("{base}/v1/.well-known/keys"),
        "id_token_signing_alg_values_supported": ["RS256"],
        "token_endpoint_auth_methods_supported": ["private_key_jwt"],
    }))
    .into_response()
}

/// GET /v1/.well-known/keys: the JWKS with the published key, or 500 while failing.
async fn keys(State(inner): State<Shared>) -> Response {
    let (failing, jwk) = {
        let mut inner = lock(&inner);
        inner.keys_hits += 1;
        (inner.keys_failing, inner.jwk.clone())
    };
    if failing {
        return (StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error").into_response();
    }
    Json(json!({ "keys": [jwk] })).into_response()
}

/// An Entra ID error: the OAuth `error`, and the `AADSTS` code and text Entra adds.
fn entra_error(status: StatusCode, error: &str, code: u32, description: &str) -> Response {
    let trace_id = uuid::Uuid::new_v4().to_string();
    let correlation_id = uuid::Uuid::new_v4().to_string();
    let ms = i64::try_from(now_ms()).unwrap_or_default();
    let at =
        DateTime::from_timestamp_millis(ms).map(|t| t.format("%Y-%m-%d %H:%M:%SZ").to_string()).unwrap_or_default();
    let body = json!({
        "error": error,
        "error_description": format!(
            "AADSTS{code}: {description} Trace ID: {trace_id} Correlation ID: {correlation_id} Timestamp: {at}"
        ),
        "error_codes": [code],
        "timestamp": at,
        "trace_id": trace_id,
        "correlation_id": correlation_id,
        "error_uri": format!("https://login.microsoftonline.com/error?code={code}"),
    });
    (status, Json(body)).into_response()
}

/// Entra's answer to a request without a required field.
fn missing_parameter(name: &str) -> Response {
    let description = format!("The request body must contain the following parameter: '{name}'.");
    entra_error(StatusCode::BAD_REQUEST, "invalid_request", 900_144, &description)
}

/// The (client id, client secret) of an `Authorization: Basic` header (`client_secret_basic`).
fn basic_auth(headers: &HeaderMap) -> Option<(String, String)> {
    let encoded = headers.get(header::AUTHORIZATION)?.to_str().ok()?.strip_prefix("Basic ")?;
    let decoded = String::from_utf8(STANDARD.decode(encoded.trim()).ok()?).ok()?;
    let (id, secret) = decoded.split_once(':')?;
    Some((id.to_owned(), secret.to_owned()))
}

/// POST /login/{tenant}/oauth2/v2.0/token: the client credentials grant, the form fields in the
/// body (the client id and secret there or in HTTP Basic auth). Checks the tenant, the grant, the
/// client id, the secret and the scope, in that order, and answers Entra's error for the first
/// that is wrong; else issues an access token for the Bot Connector.
async fn token_endpoint(
    State(inner): State<Shared>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
    body: String,
) -> Response {
    let mut form: HashMap<String, String> = url::form_urlencoded::parse(body.as_bytes()).into_owned().collect();
    if let Some((id, secret)) = basic_auth(&headers) {
        form.entry("client_id".into()).or_insert(id);
        form.entry("client_secret".into()).or_insert(secret);
    }
    let (app_id, app_password, tenant_id, lifetime) = {
        let mut inner = lock(&inner);
        let fields = form.iter().map(|(k, v)| (k.clone(), json!(v))).collect::<Map<String, Value>>();
        inner.token_requests.push(Value::Object(fields));
        (inner.app_id.clone(), inner.app_password.clone(), inner.tenant_id.clone(), inner.token_lifetime)
    };
    let field = |name: &str| form.get(name).map(String::as_str).filter(|v| !v.is_empty());

    if tenant != tenant_id && tenant != BOTFRAMEWORK_TENANT {
        let description = format!(
            "Tenant '{tenant}' not found. Check to make sure you have the correct tenant ID and are signing into the \
             correct cloud. Check with your subscription administrator, this may happen if there are no active \
             subscriptions for the tenant."
        );
        return entra_error(StatusCode::BAD_REQUEST, "invalid_request", 90_002, &description);
    }
    match field("grant_type") {
        None => return missing_parameter("grant_type"),
        Some("client_credentials") => {}
        Some(grant) => {
            let description = format!("The app requested an unsupported grant type '{grant}'.");
            return entra_error(StatusCode::BAD_REQUEST, "unsupported_grant_type", 70_003, &description);
        }
    }
    match field("client_id") {
        None => return missing_parameter("client_id"),
        Some(id) if id == app_id => {}
        Some(id) => {
            let description = format!(
                "Application with identifier '{id}' was not found in the directory '{tenant}'. This can happen if the \
                 application has not been installed by the administrator of the tenant or consented to by any user in \
                 the tenant. You may have sent your authentication request to the wrong tenant."
            );
            return entra_error(StatusCode::BAD_REQUEST, "unauthorized_client", 700_016, &description);
        }
    }
    match field("client_secret") {
        None => {
            let description = "The request body must contain the following parameter: 'client_assertion' or \
                               'client_secret'.";
            return entra_error(StatusCode::UNAUTHORIZED, "invalid_client", 7_000_218, description);
        }
        Some(secret) if secret == app_password => {}
        Some(_) => {
            let description = format!(
                "Invalid client secret provided. Ensure the secret being sent in the request is the client secret \
                 value, not the client secret ID, for a secret added to app '{app_id}'."
            );
            return entra_error(StatusCode::UNAUTHORIZED, "invalid_client", 7_000_215, &description);
        }
    }
    match field("scope") {
        None => return missing_parameter("scope"),
        Some(SCOPE) => {}
        Some(scope) if !scope.ends_with("/.default") => {
            let description = format!(
                "The provided value for scope {scope} is not valid. Client credential flows must have a scope value \
                 with /.default suffixed to the resource identifier (application ID URI)."
            );
            return entra_error(StatusCode::BAD_REQUEST, "invalid_scope", 1_002_012, &description);
        }
        Some(scope) => {
            let resource = scope.trim_end_matches("/.default");
            let description = format!(
                "The resource principal named {resource} was not found in the tenant named {tenant}. This can happen \
                 if the application has not been installed by the administrator of the tenant or consented to by any \
                 user in the tenant. You might have sent your authentication request to the wrong tenant."
            );
            return entra_error(StatusCode::BAD_REQUEST, "invalid_resource", 500_011, &description);
        }
    }

    // The access token is a JWT for the Bot Connector, as Entra's are; the Connector only looks it up.
    let now = now_ms() / 1000;
    let tid = if tenant == BOTFRAMEWORK_TENANT { BOTFRAMEWORK_TENANT_ID } else { tenant_id.as_str() };
    let claims = json!({
        "aud": ISSUER,
        "iss": format!("https://sts.windows.net/{tid}/"),
        "iat": now,
        "nbf": now,
        "exp": now + lifetime,
        "appid": app_id,
        "tid": tid,
        "jti": uuid::Uuid::new_v4().to_string(),
    });
    let Ok(access_token) = sign_with(BOT_KEY_PEM, KEY_ID, &claims) else {
        return entra_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "server_error",
            50_000,
            "The token could not be signed.",
        );
    };
    {
        let mut inner = lock(&inner);
        inner.tokens.insert(access_token.clone(), Instant::now() + Duration::from_secs(lifetime));
        inner.tokens_issued += 1;
    }
    Json(json!({
        "token_type": "Bearer",
        "expires_in": lifetime,
        "ext_expires_in": lifetime,
        "access_token": access_token,
    }))
    .into_response()
}

/// A Bot Connector error: `{"error": {"code", "message"}}`.
fn connector_error(status: StatusCode, code: &str, message: &str) -> Response {
    (status, Json(json!({ "error": { "code": code, "message": message } }))).into_response()
}

fn bad_argument(message: &str) -> Response {
    connector_error(StatusCode::BAD_REQUEST, "BadArgument", message)
}

fn conversation_not_found() -> Response {
    connector_error(StatusCode::NOT_FOUND, "ConversationNotFound", "Conversation not found.")
}

/// The token of an `Authorization: Bearer` header.
fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers.get(header::AUTHORIZATION)?.to_str().ok()?.strip_prefix("Bearer ")
}

/// Records a Bot Connector call and checks its token: the token, or `None` for one the token
/// endpoint did not issue or that expired.
fn connector_call(inner: &Shared, call: String, headers: &HeaderMap) -> Option<String> {
    let token = bearer(headers).unwrap_or_default().to_owned();
    let mut inner = lock(inner);
    inner.calls.push(call);
    inner.tokens.get(&token).is_some_and(|expiry| Instant::now() < *expiry).then_some(token)
}

/// The Bot Connector's 401.
fn denied() -> Response {
    let body = json!({ "message": "Authorization has been denied for this request." });
    (StatusCode::UNAUTHORIZED, Json(body)).into_response()
}

/// An activity body (a JSON object with a `type`), or the `BadArgument` message.
fn parse_activity(body: &str) -> Result<Value, &'static str> {
    match serde_json::from_str::<Value>(body) {
        Ok(activity) if activity.is_object() => {
            if activity.get("type").and_then(Value::as_str).is_none_or(str::is_empty) {
                Err("The activity has no type.")
            } else {
                Ok(activity)
            }
        }
        _ => Err("The request body is not a valid activity."),
    }
}

fn next_fault(inner: &Shared) -> Fault {
    let mut inner = lock(inner);
    let scripted = inner.script.pop_front();
    scripted.or(inner.default_fault).unwrap_or(Fault::None)
}

/// The answer a fault gives instead of doing the call, if any; a `Slow` one waits here.
async fn fault_answer(fault: Fault) -> Option<Response> {
    match fault {
        Fault::ServerError => {
            Some(connector_error(StatusCode::INTERNAL_SERVER_ERROR, "ServiceError", "An internal error occurred."))
        }
        Fault::RateLimited(secs) => {
            let body = json!({ "error": { "code": "Throttled", "message": "Too many requests." } });
            Some((StatusCode::TOO_MANY_REQUESTS, [(header::RETRY_AFTER, secs.to_string())], Json(body)).into_response())
        }
        Fault::Forbidden => Some(connector_error(
            StatusCode::FORBIDDEN,
            "BotNotInConversationRoster",
            "The bot is not part of the conversation roster.",
        )),
        Fault::Slow(ms) => {
            tokio::time::sleep(Duration::from_millis(ms)).await;
            None
        }
        Fault::None | Fault::ServerErrorAfterPost => None,
    }
}

/// The 500 a `ServerErrorAfterPost` answers once the call is done.
fn after_post() -> Response {
    connector_error(StatusCode::INTERNAL_SERVER_ERROR, "ServiceError", "The operation timed out.")
}

/// POST /v3/conversations: opens (or finds) the one-to-one chat of the bot with one user.
async fn create_conversation(State(inner): State<Shared>, headers: HeaderMap, body: String) -> Response {
    if connector_call(&inner, "POST /v3/conversations".to_owned(), &headers).is_none() {
        return denied();
    }
    let Ok(request) = serde_json::from_str::<Value>(&body) else {
        return bad_argument("The request body is not valid conversation parameters.");
    };
    let (app_id, tenant_id) = {
        let inner = lock(&inner);
        (inner.app_id.clone(), inner.tenant_id.clone())
    };
    let tenant =
        request["tenantId"].as_str().or_else(|| request.pointer("/channelData/tenant/id").and_then(Value::as_str));
    match tenant {
        None | Some("") => return bad_argument("A tenant id is required to create a conversation."),
        Some(tenant) if tenant != tenant_id => {
            return connector_error(
                StatusCode::FORBIDDEN,
                "Forbidden",
                "The bot is not allowed to create conversations in this tenant.",
            );
        }
        Some(_) => {}
    }
    if let Some(bot) = request.pointer("/bot/id").and_then(Value::as_str)
        && bot != format!("28:{app_id}")
        && bot != app_id
    {
        return bad_argument("The bot id does not match the bot of the token.");
    }
    if request["isGroup"].as_bool() == Some(true) {
        return bad_argument("Creating a group conversation is not supported.");
    }
    let member = match request["members"].as_array().map(Vec::as_slice) {
        Some([member]) => member["id"].as_str().unwrap_or_default().to_owned(),
        Some([]) | None => return bad_argument("The conversation needs a member."),
        Some(_) => return bad_argument("A one-to-one conversation has exactly one member."),
    };
    if !lock(&inner).users.iter().any(|u| u.id == member) {
        return connector_error(StatusCode::NOT_FOUND, "NotFound", "User not found");
    }
    let fault = next_fault(&inner);
    if let Some(answer) = fault_answer(fault).await {
        return answer;
    }
    let id = {
        let mut inner = lock(&inner);
        let id = inner
            .personal
            .entry(member.clone())
            .or_insert_with(|| format!("a:1{}", uuid::Uuid::new_v4().simple()))
            .clone();
        inner
            .conversations
            .entry(id.clone())
            .or_insert_with(|| Conversation { member: Some(member), ..Conversation::default() });
        inner.created.push(request);
        id
    };
    if fault == Fault::ServerErrorAfterPost {
        return after_post();
    }
    (StatusCode::CREATED, Json(json!({ "id": id }))).into_response()
}

/// POST /v3/conversations/{conversationId}/activities: sends an activity.
async fn send_activity(
    State(inner): State<Shared>,
    Path(conversation_id): Path<String>,
    headers: HeaderMap,
    body: String,
) -> Response {
    post_activity(&inner, conversation_id, None, &headers, &body).await
}

/// POST /v3/conversations/{conversationId}/activities/{activityId}: replies to an activity.
async fn reply_to_activity(
    State(inner): State<Shared>,
    Path((conversation_id, activity_id)): Path<(String, String)>,
    headers: HeaderMap,
    body: String,
) -> Response {
    post_activity(&inner, conversation_id, Some(activity_id), &headers, &body).await
}

/// Sends (or replies with) an activity into a known conversation; answers 201 with its new id.
async fn post_activity(
    inner: &Shared,
    conversation_id: String,
    reply_to: Option<String>,
    headers: &HeaderMap,
    body: &str,
) -> Response {
    let call = match &reply_to {
        None => format!("POST /v3/conversations/{conversation_id}/activities"),
        Some(activity_id) => format!("POST /v3/conversations/{conversation_id}/activities/{activity_id}"),
    };
    let Some(token) = connector_call(inner, call, headers) else { return denied() };
    let activity = match parse_activity(body) {
        Ok(activity) => activity,
        Err(message) => return bad_argument(message),
    };
    if !lock(inner).conversations.contains_key(&conversation_id) {
        return conversation_not_found();
    }
    let fault = next_fault(inner);
    if let Some(answer) = fault_answer(fault).await {
        return answer;
    }
    let activity_id = {
        let mut inner = lock(inner);
        let activity_id = next_activity_id(&mut inner);
        if let Some(conversation) = inner.conversations.get_mut(&conversation_id) {
            conversation.activities.insert(activity_id.clone());
        }
        inner.activities.push(Sent { conversation_id, activity_id: activity_id.clone(), reply_to, activity, token });
        activity_id
    };
    if fault == Fault::ServerErrorAfterPost {
        return after_post();
    }
    (StatusCode::CREATED, Json(json!({ "id": activity_id }))).into_response()
}

/// PUT /v3/conversations/{conversationId}/activities/{activityId}: updates an activity the bot
/// posted (a card, after a click).
async fn update_activity(
    State(inner): State<Shared>,
    Path((conversation_id, activity_id)): Path<(String, String)>,
    headers: HeaderMap,
    body: String,
) -> Response {
    let call = format!("PUT /v3/conversations/{conversation_id}/activities/{activity_id}");
    let Some(token) = connector_call(&inner, call, &headers) else { return denied() };
    let activity = match parse_activity(&body) {
        Ok(activity) => activity,
        Err(message) => return bad_argument(message),
    };
    match lock(&inner).conversations.get(&conversation_id) {
        None => return conversation_not_found(),
        Some(conversation) if !conversation.activities.contains(&activity_id) => {
            return connector_error(StatusCode::NOT_FOUND, "ActivityNotFoundInConversation", "Conversation not found.");
        }
        Some(_) => {}
    }
    let fault = next_fault(&inner);
    if let Some(answer) = fault_answer(fault).await {
        return answer;
    }
    lock(&inner).updates.push(Sent {
        conversation_id,
        activity_id: activity_id.clone(),
        reply_to: None,
        activity,
        token,
    });
    if fault == Fault::ServerErrorAfterPost {
        return after_post();
    }
    Json(json!({ "id": activity_id })).into_response()
}

/// GET /v3/conversations/{conversationId}/members/{memberId}: a member's TeamsChannelAccount, the
/// member named by its `29:` id, its Entra object id or its UPN.
async fn get_member(
    State(inner): State<Shared>,
    Path((conversation_id, member_id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let call = format!("GET /v3/conversations/{conversation_id}/members/{member_id}");
    if connector_call(&inner, call, &headers).is_none() {
        return denied();
    }
    let inner = lock(&inner);
    let Some(conversation) = inner.conversations.get(&conversation_id) else { return conversation_not_found() };
    let user = inner.users.iter().find(|u| {
        u.id == member_id
            || u.aad_object_id.eq_ignore_ascii_case(&member_id)
            || u.email.eq_ignore_ascii_case(&member_id)
    });
    let Some(user) = user.filter(|u| conversation.member.as_ref().is_none_or(|m| *m == u.id)) else {
        return connector_error(
            StatusCode::NOT_FOUND,
            "MemberNotFoundInConversation",
            "The member is not found in the conversation.",
        );
    };
    let (given_name, surname) = user.name.split_once(' ').unwrap_or((user.name.as_str(), ""));
    Json(json!({
        "id": user.id,
        "name": user.name,
        "aadObjectId": user.aad_object_id,
        "objectId": user.aad_object_id,
        "givenName": given_name,
        "surname": surname,
        "email": user.email,
        "userPrincipalName": user.email,
        "tenantId": inner.tenant_id,
        "userRole": "user",
    }))
    .into_response()
}
