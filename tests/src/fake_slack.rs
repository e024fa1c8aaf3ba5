//! A fake Slack Web API on 127.0.0.1, for tests: `chat.postMessage`, `chat.postEphemeral`
//! (kept apart: only its user sees it), `auth.test`, `conversations.open`,
//! `conversations.history` (with message metadata), the file upload flow, `views.open`,
//! `views.publish`, `views.update`, `users.lookupByEmail`, `oauth.v2.access` and
//! `apps.connections.open` (Socket Mode, see [`crate::fake_socket`]), checking the bot
//! token as Slack does and answering with Slack's shapes, its `ok: false` errors, HTTP 429 with
//! `Retry-After`, and 5xx.
//!
//! Faults are scripted: each `chat.postMessage` takes the next [`Fault`] from its method script
//! ([`FakeSlack::script_method`]), then from the general script ([`FakeSlack::script`]), then
//! [`FakeSlack::default_fault`]. The views methods, `users.lookupByEmail` and `oauth.v2.access`
//! take faults from their method scripts only. A `ServerErrorAfterPost` keeps the message (the
//! view, the used code) and still answers 500, as a Slack that timed out behind its load balancer
//! might: only a sender that looks before it resends avoids a duplicate. Every call is recorded:
//! its method, the token it carried and its arguments.
//!
//! The requests accepted are those slack-morphism 2.31 sends: `views.*` and `chat.postMessage`
//! as a JSON POST with `Authorization: Bearer`, `users.lookupByEmail` as a GET with `email` in the
//! query string, `oauth.v2.access` as a GET with `code` (and `redirect_uri`) in the query string
//! and the app's client id and secret in HTTP Basic auth. Slack's other documented forms (a
//! form-encoded POST, the client id and secret as arguments) are accepted too.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Map, Value, json};

/// What the fake does with one call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Does it and answers `ok: true`.
    None,
    /// Answers HTTP 500 without doing it.
    ServerError,
    /// Does it (posts the message, opens the view, uses up the code), then answers HTTP 500.
    ServerErrorAfterPost,
    /// Answers HTTP 429 with `Retry-After: n` seconds, without doing it.
    RateLimited(u64),
    /// Waits this many milliseconds, then does it and answers.
    Slow(u64),
    /// Answers HTTP 200 with `{"ok": false, "error": code}`, without doing it.
    SlackError(&'static str),
}

/// A file uploaded through files.getUploadURLExternal, the upload URL, and
/// files.completeUploadExternal.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Uploaded {
    pub file_id: String,
    pub filename: String,
    pub length: usize,
    pub bytes: Vec<u8>,
    pub channel: Option<String>,
}

/// A message the fake accepted.
#[derive(Debug, Clone, PartialEq)]
pub struct Posted {
    pub channel: String,
    pub ts: String,
    pub text: Option<String>,
    pub blocks: Option<Value>,
    pub metadata: Option<Value>,
    /// When the fake accepted it (for the latency benchmarks).
    pub at: std::time::Instant,
}

impl Posted {
    /// The alert id the message carries in its metadata.
    pub fn alert_id(&self) -> Option<&str> {
        self.metadata.as_ref()?.pointer("/event_payload/alert_id")?.as_str()
    }
}

/// The workspace of the tokens given to [`FakeSlack::start`] and [`FakeSlack::add_token`].
const TEAM_ID: &str = "T00000001";
/// The app the fake's views and tokens belong to.
const APP_ID: &str = "A00000001";
/// The app's bot.
const BOT_ID: &str = "B00000001";
/// The bot scopes an oauth.v2.access grants.
const BOT_SCOPES: &str = "chat:write,commands,im:write,users:read,users:read.email,files:write,channels:history";

/// An installation waiting for its oauth.v2.access.
#[derive(Debug, Clone)]
struct OauthCode {
    team_id: String,
    team_name: String,
    bot_token: String,
}

#[derive(Debug, Default)]
struct Inner {
    /// Accepted bot tokens, each with its workspace (team id).
    tokens: HashMap<String, String>,
    posted: Vec<Posted>,
    script: VecDeque<Fault>,
    /// Faults per method, taken before anything else.
    method_scripts: HashMap<String, VecDeque<Fault>>,
    default_fault: Option<Fault>,
    /// Every method called, in order.
    calls: Vec<String>,
    /// Every method called with the bearer token it carried ("" for none), in order.
    calls_with_tokens: Vec<(String, String)>,
    /// Every API call's arguments as JSON, in order: (method, arguments).
    requests: Vec<(String, Value)>,
    /// Files: (file id, filename, declared length, bytes received, channel shared to).
    files: Vec<Uploaded>,
    base: String,
    /// Random faults: (seed state, share of calls in 1/1000 that fail, slow ms).
    chaos: Option<(u64, u32, u64)>,
    /// Channels (C…) the bot is a member of; posting into another answers `not_in_channel`.
    joined: std::collections::HashSet<String>,
    /// Messages shown to one user only (`chat.postEphemeral`): (user, the message).
    ephemeral: Vec<(String, Posted)>,
    /// Messages posted to response URLs: (the URL's id, the JSON body).
    responses: Vec<(String, Value)>,
    /// Views opened, published or updated, by view id, as last answered.
    views: HashMap<String, Value>,
    /// Counts views and view versions, for ids and hashes.
    view_seq: u64,
    /// Slack users by email (lowercased): user id.
    users: HashMap<String, String>,
    /// The app's (client id, client secret), for oauth.v2.access.
    oauth_app: Option<(String, String)>,
    /// Unused OAuth codes.
    oauth_codes: HashMap<String, OauthCode>,
    /// Socket Mode: app-level tokens and the WebSocket side.
    socket: Option<crate::fake_socket::SocketHub>,
}

#[derive(Debug, Clone)]
pub struct FakeSlack {
    inner: Arc<Mutex<Inner>>,
    /// `http://127.0.0.1:PORT/api`: what `[slack] api_url` should be.
    pub api_url: String,
    task: Arc<tokio::task::JoinHandle<()>>,
}

impl Drop for FakeSlack {
    fn drop(&mut self) {
        if Arc::strong_count(&self.task) == 1 {
            self.task.abort();
        }
    }
}

impl FakeSlack {
    /// Starts the fake on a free port; it accepts `token` only (and those added later).
    pub async fn start(token: &str) -> FakeSlack {
        let inner = Arc::new(Mutex::new(Inner::default()));
        lock(&inner).tokens.insert(token.to_owned(), TEAM_ID.to_owned());
        let app = Router::new()
            .route("/api/chat.postMessage", post(post_message))
            .route("/api/chat.postEphemeral", post(post_ephemeral))
            .route("/api/auth.test", post(auth_test).get(auth_test))
            .route("/api/conversations.open", post(open))
            .route("/api/conversations.history", get(history))
            .route("/api/files.getUploadURLExternal", get(upload_url))
            .route("/upload/{file_id}", post(upload_bytes))
            .route("/api/files.completeUploadExternal", post(complete_upload))
            .route("/api/views.open", post(views_open))
            .route("/api/views.publish", post(views_publish))
            .route("/api/views.update", post(views_update))
            .route("/api/users.lookupByEmail", get(lookup_by_email).post(lookup_by_email))
            .route("/api/oauth.v2.access", get(oauth_access).post(oauth_access))
            .route("/api/apps.connections.open", post(connections_open))
            .route("/response/{id}", post(response_url))
            .with_state(inner.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind the fake Slack");
        let addr = listener.local_addr().expect("address");
        lock(&inner).base = format!("http://{addr}");
        lock(&inner).socket = Some(crate::fake_socket::SocketHub::start().await);
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        FakeSlack { inner, api_url: format!("http://{addr}/api"), task: Arc::new(task) }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Socket Mode: the WebSocket side, to send envelopes and read acknowledgements.
    pub fn socket(&self) -> crate::fake_socket::SocketHub {
        self.lock().socket.clone().expect("started with the fake")
    }

    /// Accepts `token` as an app-level token (`xapp-…`) for `apps.connections.open`.
    pub fn add_app_token(&self, token: &str) {
        self.socket().add_app_token(token);
    }

    /// Accepts `token` as a bot token too (of the same workspace as the first).
    pub fn add_token(&self, token: &str) {
        self.lock().tokens.entry(token.to_owned()).or_insert_with(|| TEAM_ID.to_owned());
    }

    /// A `response_url` as Slack puts in commands and clicks, pointing at this fake.
    pub fn response_url(&self, id: &str) -> String {
        format!("{}/response/{id}", self.lock().base)
    }

    /// What was posted to response URLs, in order: (the URL's id, the message).
    pub fn responses(&self) -> Vec<(String, Value)> {
        self.lock().responses.clone()
    }

    /// Makes the bot a member of channel `id` (C…), as inviting it in Slack does.
    pub fn join(&self, id: &str) {
        self.lock().joined.insert(id.to_owned());
    }

    /// Registers a Slack user, for `users.lookupByEmail` (the email matches in any case).
    pub fn add_user(&self, email: &str, user_id: &str) {
        self.lock().users.insert(email.to_lowercase(), user_id.to_owned());
    }

    /// The app's credentials: `oauth.v2.access` accepts only these.
    pub fn oauth_app(&self, client_id: &str, client_secret: &str) {
        self.lock().oauth_app = Some((client_id.to_owned(), client_secret.to_owned()));
    }

    /// A one-time OAuth code, as Slack hands to the redirect URL after an install into workspace
    /// `team_id`: `oauth.v2.access` exchanges it once for `bot_token`, which is accepted from then.
    pub fn oauth_code(&self, code: &str, team_id: &str, team_name: &str, bot_token: &str) {
        let install =
            OauthCode { team_id: team_id.to_owned(), team_name: team_name.to_owned(), bot_token: bot_token.to_owned() };
        self.lock().oauth_codes.insert(code.to_owned(), install);
    }

    /// The faults for the next `chat.postMessage` calls, in order.
    pub fn script(&self, faults: &[Fault]) {
        self.lock().script.extend(faults.iter().copied());
    }

    /// The faults for the next calls of `method` (`views.open`, `views.publish`, `views.update`,
    /// `users.lookupByEmail`, `oauth.v2.access`, `chat.postMessage`), in order, before any other
    /// script. A call without a valid token (for oauth.v2.access: without the app's credentials)
    /// takes none.
    pub fn script_method(&self, method: &str, faults: &[Fault]) {
        self.lock().method_scripts.entry(method.to_owned()).or_default().extend(faults.iter().copied());
    }

    /// The fault once the script is used up (default: none).
    pub fn default_fault(&self, fault: Fault) {
        self.lock().default_fault = Some(fault);
    }

    /// Unscripted calls fail at random (seeded): `per_mille` of them with a 500 (half of those
    /// after posting) or a 429, and every call takes `slow_ms`.
    pub fn chaos(&self, seed: u64, per_mille: u32, slow_ms: u64) {
        self.lock().chaos = Some((seed.max(1), per_mille, slow_ms));
    }

    pub fn posted(&self) -> Vec<Posted> {
        self.lock().posted.clone()
    }

    /// Messages shown to one user only: (that user, the message).
    pub fn ephemeral(&self) -> Vec<(String, Posted)> {
        self.lock().ephemeral.clone()
    }

    /// Every method called, in order (`upload` for the bytes sent to an upload URL).
    pub fn calls(&self) -> Vec<String> {
        self.lock().calls.clone()
    }

    /// Every method called with the bearer token it carried ("" for none: `oauth.v2.access`
    /// authenticates with the app's credentials instead), in order.
    pub fn calls_with_tokens(&self) -> Vec<(String, String)> {
        self.lock().calls_with_tokens.clone()
    }

    /// The arguments of every call of `method`, in order, failed ones too: the JSON body, or the
    /// query string and form fields as a JSON object of strings (a form's `view` decoded). A body
    /// that is not JSON is kept as a string.
    pub fn requests(&self, method: &str) -> Vec<Value> {
        self.lock().requests.iter().filter(|(m, _)| m == method).map(|(_, r)| r.clone()).collect()
    }

    pub fn files(&self) -> Vec<Uploaded> {
        self.lock().files.clone()
    }
}

type Shared = Arc<Mutex<Inner>>;

fn lock(inner: &Shared) -> std::sync::MutexGuard<'_, Inner> {
    inner.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Slack answers HTTP 200 with `ok: false` for API errors.
fn slack_error(code: &str) -> Response {
    axum::Json(json!({ "ok": false, "error": code })).into_response()
}

/// The token of an `Authorization: Bearer` header.
fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers.get("authorization")?.to_str().ok()?.strip_prefix("Bearer ")
}

fn authorized(inner: &Shared, headers: &HeaderMap) -> bool {
    bearer(headers).is_some_and(|token| lock(inner).tokens.contains_key(token))
}

/// The workspace of the call's token.
fn team_of(inner: &Shared, headers: &HeaderMap) -> String {
    bearer(headers).and_then(|token| lock(inner).tokens.get(token).cloned()).unwrap_or_else(|| TEAM_ID.to_owned())
}

/// Records a call: its method, its token and (unless `None`) its arguments.
fn record(inner: &Shared, method: &str, headers: &HeaderMap, request: Option<Value>) {
    let token = bearer(headers).unwrap_or_default().to_owned();
    let mut inner = lock(inner);
    inner.calls.push(method.to_owned());
    inner.calls_with_tokens.push((method.to_owned(), token));
    if let Some(request) = request {
        inner.requests.push((method.to_owned(), request));
    }
}

/// `a=1&b=2` as `{"a": "1", "b": "2"}`.
fn params(encoded: &str) -> Map<String, Value> {
    serde_urlencoded::from_str::<Vec<(String, String)>>(encoded)
        .unwrap_or_default()
        .into_iter()
        .map(|(k, v)| (k, Value::String(v)))
        .collect()
}

fn is_form(headers: &HeaderMap) -> bool {
    headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"))
}

/// A POST body as Slack reads it: form fields (a `view` given as JSON text decoded) when
/// form-encoded, else JSON (empty: no arguments). `Err` holds a body that is not JSON.
fn body_args(headers: &HeaderMap, body: &str) -> Result<Value, String> {
    if is_form(headers) {
        let mut form = params(body);
        if let Some(view) = form.get("view").and_then(Value::as_str).and_then(|v| serde_json::from_str(v).ok()) {
            form.insert("view".into(), view);
        }
        return Ok(Value::Object(form));
    }
    if body.trim().is_empty() {
        return Ok(json!({}));
    }
    serde_json::from_str(body).map_err(|_| body.to_owned())
}

/// A call's arguments from its query string and its body together.
fn all_args(query: Option<&str>, headers: &HeaderMap, body: &str) -> Value {
    let mut args = params(query.unwrap_or_default());
    if let Ok(Value::Object(fields)) = body_args(headers, body) {
        args.extend(fields);
    }
    Value::Object(args)
}

/// A DM channel id for a user id, as Slack's are: `D` and letters.
fn dm_of(user: &str) -> String {
    format!("D{}", user.trim_start_matches('U'))
}

fn next_fault(inner: &mut Inner) -> Fault {
    if let Some(f) = inner.method_scripts.get_mut("chat.postMessage").and_then(VecDeque::pop_front) {
        return f;
    }
    if let Some(f) = inner.script.pop_front() {
        return f;
    }
    if let Some((state, per_mille, slow)) = inner.chaos.as_mut() {
        // xorshift64: a seeded, repeatable sequence.
        *state ^= *state << 13;
        *state ^= *state >> 7;
        *state ^= *state << 17;
        let roll = (*state % 3000) as u32;
        return match roll {
            r if r < *per_mille => Fault::ServerErrorAfterPost,
            r if r < 2 * *per_mille => Fault::ServerError,
            r if r < 3 * *per_mille => Fault::RateLimited(1),
            _ => Fault::Slow(*slow),
        };
    }
    inner.default_fault.unwrap_or(Fault::None)
}

/// The next fault of a method that only has its method script.
fn method_fault(inner: &Shared, method: &str) -> Fault {
    lock(inner).method_scripts.get_mut(method).and_then(VecDeque::pop_front).unwrap_or(Fault::None)
}

/// The answer a fault gives instead of doing the call, if any; a `Slow` one waits here.
async fn fault_answer(fault: Fault) -> Option<Response> {
    match fault {
        Fault::ServerError => Some((StatusCode::INTERNAL_SERVER_ERROR, "internal error").into_response()),
        Fault::RateLimited(secs) => Some(
            (
                StatusCode::TOO_MANY_REQUESTS,
                [("retry-after", secs.to_string())],
                axum::Json(json!({ "ok": false, "error": "ratelimited" })),
            )
                .into_response(),
        ),
        Fault::SlackError(code) => Some(slack_error(code)),
        Fault::Slow(ms) => {
            tokio::time::sleep(Duration::from_millis(ms)).await;
            None
        }
        Fault::None | Fault::ServerErrorAfterPost => None,
    }
}

/// The 500 a `ServerErrorAfterPost` answers once the call is done.
fn after_post() -> Response {
    (StatusCode::INTERNAL_SERVER_ERROR, "upstream timeout").into_response()
}

async fn post_message(State(inner): State<Shared>, headers: HeaderMap, body: String) -> Response {
    let parsed = serde_json::from_str::<Value>(&body);
    let request = parsed.as_ref().cloned().unwrap_or_else(|_| Value::String(body.clone()));
    record(&inner, "chat.postMessage", &headers, Some(request));
    if !authorized(&inner, &headers) {
        return slack_error("invalid_auth");
    }
    let Ok(request) = parsed else { return slack_error("invalid_json") };
    let Some(channel) = request["channel"].as_str().map(str::to_owned) else { return slack_error("channel_not_found") };
    if !(channel.starts_with('U') || channel.starts_with('D') || channel.starts_with('C')) {
        return slack_error("channel_not_found");
    }
    if channel.starts_with('C') && !lock(&inner).joined.contains(&channel) {
        return slack_error("not_in_channel");
    }
    let fault = next_fault(&mut lock(&inner));
    if let Some(answer) = fault_answer(fault).await {
        return answer;
    }
    // Posting to a user id lands in the bot's DM with them.
    let channel = if channel.starts_with('U') { dm_of(&channel) } else { channel };
    let posted = {
        let mut inner = lock(&inner);
        // Slack's ts is the posting time in seconds, made unique by the fraction.
        let ts = format!("{}.{:06}", chrono::Utc::now().timestamp(), inner.posted.len());
        let posted = Posted {
            channel: channel.clone(),
            ts,
            text: request["text"].as_str().map(str::to_owned),
            blocks: request.get("blocks").cloned(),
            metadata: request.get("metadata").cloned(),
            at: std::time::Instant::now(),
        };
        inner.posted.push(posted.clone());
        posted
    };
    if fault == Fault::ServerErrorAfterPost {
        return after_post();
    }
    axum::Json(json!({
        "ok": true,
        "channel": channel,
        "ts": posted.ts,
        "message": { "type": "message", "ts": posted.ts, "text": posted.text },
    }))
    .into_response()
}

/// `chat.postEphemeral`: a message only `user` sees, in a channel the bot is in. Its faults come
/// from the method's script only.
async fn post_ephemeral(State(inner): State<Shared>, headers: HeaderMap, body: String) -> Response {
    let request: Value = serde_json::from_str(&body).unwrap_or_default();
    record(&inner, "chat.postEphemeral", &headers, Some(request.clone()));
    if !authorized(&inner, &headers) {
        return slack_error("invalid_auth");
    }
    let (Some(channel), Some(user)) = (request["channel"].as_str(), request["user"].as_str()) else {
        return slack_error("invalid_arguments");
    };
    if channel.starts_with('C') && !lock(&inner).joined.contains(channel) {
        return slack_error("not_in_channel");
    }
    let fault = lock(&inner).method_scripts.get_mut("chat.postEphemeral").and_then(VecDeque::pop_front);
    if let Some(answer) = fault_answer(fault.unwrap_or(Fault::None)).await {
        return answer;
    }
    let ts = format!("{}.{:06}", chrono::Utc::now().timestamp(), lock(&inner).ephemeral.len() + 500_000);
    let posted = Posted {
        channel: channel.to_owned(),
        ts: ts.clone(),
        text: request["text"].as_str().map(str::to_owned),
        blocks: request.get("blocks").cloned(),
        metadata: None,
        at: std::time::Instant::now(),
    };
    lock(&inner).ephemeral.push((user.to_owned(), posted));
    axum::Json(json!({ "ok": true, "message_ts": ts })).into_response()
}

/// `auth.test`: the token's workspace.
async fn auth_test(State(inner): State<Shared>, headers: HeaderMap) -> Response {
    record(&inner, "auth.test", &headers, None);
    if !authorized(&inner, &headers) {
        return slack_error("invalid_auth");
    }
    let team = team_of(&inner, &headers);
    axum::Json(json!({ "ok": true, "url": "https://fake.slack.com/", "team": "Fake", "user": "dealwatch",
        "team_id": team, "user_id": "U0BOT", "bot_id": BOT_ID }))
    .into_response()
}

async fn open(State(inner): State<Shared>, headers: HeaderMap, body: String) -> Response {
    let request: Value = serde_json::from_str(&body).unwrap_or_default();
    record(&inner, "conversations.open", &headers, Some(request.clone()));
    if !authorized(&inner, &headers) {
        return slack_error("invalid_auth");
    }
    // `users` as Slack documents it (comma-separated) or as a JSON array.
    let first = match &request["users"] {
        Value::String(s) => s.split(',').next().map(str::to_owned),
        Value::Array(a) => a.first().and_then(Value::as_str).map(str::to_owned),
        _ => None,
    };
    match first {
        Some(user) if user.starts_with('U') => {
            axum::Json(json!({ "ok": true, "channel": { "id": dm_of(&user) } })).into_response()
        }
        _ => slack_error("user_not_found"),
    }
}

#[derive(Debug, serde::Deserialize)]
struct HistoryQuery {
    channel: Option<String>,
    oldest: Option<String>,
    include_all_metadata: Option<bool>,
    limit: Option<usize>,
    cursor: Option<String>,
}

async fn history(State(inner): State<Shared>, headers: HeaderMap, RawQuery(query): RawQuery) -> Response {
    let query = query.unwrap_or_default();
    record(&inner, "conversations.history", &headers, Some(Value::Object(params(&query))));
    if !authorized(&inner, &headers) {
        return slack_error("invalid_auth");
    }
    let Ok(q) = serde_urlencoded::from_str::<HistoryQuery>(&query) else { return slack_error("invalid_arguments") };
    let Some(channel) = q.channel else { return slack_error("channel_not_found") };
    let oldest: f64 = q.oldest.as_deref().and_then(|o| o.parse().ok()).unwrap_or(0.0);
    let metadata = q.include_all_metadata.unwrap_or(false);
    let limit = q.limit.unwrap_or(100).clamp(1, 999);
    let start: usize = q.cursor.as_deref().and_then(|c| c.parse().ok()).unwrap_or(0);
    let all: Vec<Posted> = lock(&inner)
        .posted
        .iter()
        .filter(|p| p.channel == channel && p.ts.parse::<f64>().unwrap_or(0.0) >= oldest)
        .cloned()
        .collect();
    let page: Vec<Value> = all
        .iter()
        .skip(start)
        .take(limit)
        .map(|p| {
            let mut m = json!({ "type": "message", "ts": p.ts, "text": p.text });
            if metadata && let Some(md) = &p.metadata {
                m["metadata"] = md.clone();
            }
            m
        })
        .collect();
    let next = if start + limit < all.len() { (start + limit).to_string() } else { String::new() };
    axum::Json(json!({
        "ok": true,
        "messages": page,
        "has_more": !next.is_empty(),
        "response_metadata": { "next_cursor": next },
    }))
    .into_response()
}

#[derive(Debug, serde::Deserialize)]
struct UploadUrlQuery {
    filename: Option<String>,
    length: Option<usize>,
}

async fn upload_url(State(inner): State<Shared>, headers: HeaderMap, RawQuery(query): RawQuery) -> Response {
    let query = query.unwrap_or_default();
    record(&inner, "files.getUploadURLExternal", &headers, Some(Value::Object(params(&query))));
    if !authorized(&inner, &headers) {
        return slack_error("invalid_auth");
    }
    let Ok(UploadUrlQuery { filename: Some(filename), length: Some(length) }) = serde_urlencoded::from_str(&query)
    else {
        return slack_error("invalid_arguments");
    };
    let mut inner = lock(&inner);
    let file_id = format!("F{:08}", inner.files.len() + 1);
    let upload_url = format!("{}/upload/{file_id}", inner.base);
    inner.files.push(Uploaded { file_id: file_id.clone(), filename, length, ..Uploaded::default() });
    axum::Json(json!({ "ok": true, "upload_url": upload_url, "file_id": file_id })).into_response()
}

/// Slack answers a response_url post with `ok` (or 404 once the URL expired: not modelled).
async fn response_url(
    State(inner): State<Shared>,
    axum::extract::Path(id): axum::extract::Path<String>,
    body: String,
) -> Response {
    let Ok(message) = serde_json::from_str::<Value>(&body) else {
        return (StatusCode::BAD_REQUEST, "invalid_payload").into_response();
    };
    lock(&inner).responses.push((id, message));
    "ok".into_response()
}

/// A slash command's form body as Slack posts it (every field slack-morphism requires), from
/// `user` of workspace `team` in channel `channel`.
pub fn command_body(team: &str, channel: &str, user: &str, command: &str, text: &str, response_url: &str) -> String {
    serde_urlencoded::to_string([
        ("token", "legacy-verification-token"),
        ("team_id", team),
        ("team_domain", "acme"),
        ("channel_id", channel),
        ("channel_name", "general"),
        ("user_id", user),
        ("user_name", "someone"),
        ("command", command),
        ("text", text),
        ("response_url", response_url),
        ("trigger_id", "13345224609.738474920.8088930838d88f008e0"),
        ("api_app_id", "A0DW"),
    ])
    .expect("form")
}

/// A second of its own for signing `body` with `secret` ([`crate::fresh_second`]), and the
/// signature: as Slack, which signs every delivery (a retry too) at its own time.
pub fn sign_fresh(secret: &str, body: &str) -> (i64, String) {
    let ts = crate::fresh_second(secret, body);
    (ts, signature(secret, ts, body))
}

/// The `X-Slack-Signature` Slack sends with `body` at `timestamp`, for a signing secret.
pub fn signature(secret: &str, timestamp: i64, body: &str) -> String {
    use hmac::{Hmac, Mac};
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).expect("any key length");
    mac.update(format!("v0:{timestamp}:{body}").as_bytes());
    let bytes = mac.finalize().into_bytes();
    format!("v0={}", bytes.iter().map(|b| format!("{b:02x}")).collect::<String>())
}

async fn upload_bytes(
    State(inner): State<Shared>,
    axum::extract::Path(file_id): axum::extract::Path<String>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    record(&inner, "upload", &headers, None);
    let mut inner = lock(&inner);
    match inner.files.iter_mut().find(|f| f.file_id == file_id) {
        // Slack answers the upload itself in plain text.
        Some(f) => {
            f.bytes = body.to_vec();
            format!("OK - {}", body.len()).into_response()
        }
        None => (StatusCode::NOT_FOUND, "no such upload").into_response(),
    }
}

async fn complete_upload(State(inner): State<Shared>, headers: HeaderMap, body: String) -> Response {
    let request: Value = serde_json::from_str(&body).unwrap_or_default();
    record(&inner, "files.completeUploadExternal", &headers, Some(request.clone()));
    if !authorized(&inner, &headers) {
        return slack_error("invalid_auth");
    }
    let mut inner = lock(&inner);
    let mut shared = Vec::new();
    for f in request["files"].as_array().into_iter().flatten() {
        let id = f["id"].as_str().unwrap_or_default();
        let Some(file) = inner.files.iter_mut().find(|u| u.file_id == id) else { return slack_error("file_not_found") };
        if file.bytes.len() != file.length {
            return slack_error("file_upload_size_mismatch");
        }
        file.channel = request["channel_id"].as_str().map(str::to_owned);
        shared.push(json!({ "id": id, "name": file.filename, "title": f["title"] }));
    }
    axum::Json(json!({ "ok": true, "files": shared })).into_response()
}

/// Records a views call and checks its token, body and fault: the arguments, or the answer.
async fn views_call(inner: &Shared, method: &str, headers: &HeaderMap, body: &str) -> Result<(Value, Fault), Response> {
    let args = body_args(headers, body);
    record(inner, method, headers, Some(args.clone().unwrap_or_else(Value::String)));
    if !authorized(inner, headers) {
        return Err(slack_error("invalid_auth"));
    }
    let fault = method_fault(inner, method);
    if let Some(answer) = fault_answer(fault).await {
        return Err(answer);
    }
    let Ok(args) = args else { return Err(slack_error("invalid_json")) };
    if !args["view"].is_object() {
        return Err(slack_error("invalid_arguments"));
    }
    Ok((args, fault))
}

/// apps.connections.open: a one-use WebSocket URL for an app-level token (faults from its
/// method script).
async fn connections_open(State(inner): State<Shared>, headers: HeaderMap) -> Response {
    record(&inner, "apps.connections.open", &headers, None);
    if let Some(answer) = fault_answer(method_fault(&inner, "apps.connections.open")).await {
        return answer;
    }
    let hub = lock(&inner).socket.clone().expect("started with the fake");
    axum::Json(hub.open(bearer(&headers))).into_response()
}

/// Keeps `view` as view `id` (a new one if `None`) of workspace `team` and gives Slack's answer
/// for it: the view as sent, with the fields Slack fills in.
fn keep_view(inner: &Shared, view: &Value, team: &str, id: Option<String>) -> Response {
    let mut inner = lock(inner);
    inner.view_seq += 1;
    let seq = inner.view_seq;
    let id = id.unwrap_or_else(|| format!("V{seq:08}"));
    let previous = inner.views.get(&id);
    let root = previous.and_then(|v| v["root_view_id"].as_str()).unwrap_or(id.as_str()).to_owned();
    let mut answer = view.as_object().cloned().unwrap_or_default();
    for field in ["private_metadata", "callback_id", "external_id"] {
        answer.entry(field).or_insert_with(|| json!(""));
    }
    if answer.get("type").and_then(Value::as_str) == Some("modal") {
        for field in ["clear_on_close", "notify_on_close"] {
            answer.entry(field).or_insert(json!(false));
        }
        for field in ["close", "submit"] {
            answer.entry(field).or_insert(Value::Null);
        }
    }
    answer.insert("id".into(), json!(id));
    answer.insert("team_id".into(), json!(team));
    answer.insert("state".into(), json!({ "values": {} }));
    answer.insert("hash".into(), json!(format!("{}.{seq:08x}", chrono::Utc::now().timestamp())));
    answer.insert("previous_view_id".into(), Value::Null);
    answer.insert("root_view_id".into(), json!(root));
    answer.insert("app_id".into(), json!(APP_ID));
    answer.insert("app_installed_team_id".into(), json!(team));
    answer.insert("bot_id".into(), json!(BOT_ID));
    let answer = Value::Object(answer);
    inner.views.insert(id, answer.clone());
    axum::Json(json!({ "ok": true, "view": answer })).into_response()
}

/// views.open: a modal for a `trigger_id` (one Slack gave within the last 3 s; `expired` stands
/// for one given earlier).
async fn views_open(State(inner): State<Shared>, headers: HeaderMap, body: String) -> Response {
    let (args, fault) = match views_call(&inner, "views.open", &headers, &body).await {
        Ok(call) => call,
        Err(answer) => return answer,
    };
    match args["trigger_id"].as_str() {
        None | Some("") => return slack_error("invalid_arguments"),
        Some("expired") => return slack_error("expired_trigger_id"),
        Some(_) => {}
    }
    if args["view"]["type"] != "modal" {
        return slack_error("invalid_arguments");
    }
    let answer = keep_view(&inner, &args["view"], &team_of(&inner, &headers), None);
    if fault == Fault::ServerErrorAfterPost { after_post() } else { answer }
}

/// views.publish: a user's Home tab.
async fn views_publish(State(inner): State<Shared>, headers: HeaderMap, body: String) -> Response {
    let (args, fault) = match views_call(&inner, "views.publish", &headers, &body).await {
        Ok(call) => call,
        Err(answer) => return answer,
    };
    if args["user_id"].as_str().is_none_or(str::is_empty) || args["view"]["type"] != "home" {
        return slack_error("invalid_arguments");
    }
    let answer = keep_view(&inner, &args["view"], &team_of(&inner, &headers), None);
    if fault == Fault::ServerErrorAfterPost { after_post() } else { answer }
}

/// views.update: a view by `view_id` or `external_id`. A view this fake did not open (a test made
/// it up) is updated as if it had; a `hash` older than the kept view's answers `hash_conflict`.
async fn views_update(State(inner): State<Shared>, headers: HeaderMap, body: String) -> Response {
    let (args, fault) = match views_call(&inner, "views.update", &headers, &body).await {
        Ok(call) => call,
        Err(answer) => return answer,
    };
    let by_id = args["view_id"].as_str().filter(|id| !id.is_empty());
    let by_external = args["external_id"].as_str().filter(|id| !id.is_empty());
    let kept = {
        let inner = lock(&inner);
        match (by_id, by_external) {
            (Some(id), _) => inner.views.get(id).cloned(),
            (None, Some(external)) => inner.views.values().find(|v| v["external_id"] == external).cloned(),
            (None, None) => return slack_error("invalid_arguments"),
        }
    };
    if kept.as_ref().zip(args["hash"].as_str()).is_some_and(|(kept, hash)| kept["hash"] != hash) {
        return slack_error("hash_conflict");
    }
    let id = by_id.map(str::to_owned).or_else(|| kept.as_ref().and_then(|v| v["id"].as_str()).map(str::to_owned));
    let answer = keep_view(&inner, &args["view"], &team_of(&inner, &headers), id);
    if fault == Fault::ServerErrorAfterPost { after_post() } else { answer }
}

/// A Slack user object as users.info and users.lookupByEmail give it.
fn user_object(user_id: &str, email: &str, team: &str) -> Value {
    let handle = email.split('@').next().unwrap_or(email);
    let names: Vec<String> = handle
        .split(['.', '_', '-', '+'])
        .filter(|part| !part.is_empty())
        .map(|part| {
            let mut chars = part.chars();
            chars.next().map(|c| c.to_uppercase().chain(chars).collect()).unwrap_or_default()
        })
        .collect();
    let real_name = names.join(" ");
    let avatar = |size: u32| format!("https://secure.gravatar.com/avatar/{user_id}.jpg?s={size}");
    json!({
        "id": user_id,
        "team_id": team,
        "name": handle,
        "deleted": false,
        "color": "9f69e7",
        "real_name": real_name,
        "tz": "Europe/London",
        "tz_label": "British Summer Time",
        "tz_offset": 3600,
        "profile": {
            "title": "",
            "phone": "",
            "skype": "",
            "real_name": real_name,
            "real_name_normalized": real_name,
            "display_name": handle,
            "display_name_normalized": handle,
            "first_name": names.first().cloned().unwrap_or_default(),
            "last_name": names.get(1..).map(|rest| rest.join(" ")).unwrap_or_default(),
            "fields": null,
            "status_text": "",
            "status_emoji": "",
            "status_emoji_display_info": [],
            "status_expiration": 0,
            "avatar_hash": "g0123456789a",
            "email": email,
            "image_24": avatar(24),
            "image_32": avatar(32),
            "image_48": avatar(48),
            "image_72": avatar(72),
            "image_192": avatar(192),
            "image_512": avatar(512),
            "team": team,
        },
        "is_admin": false,
        "is_owner": false,
        "is_primary_owner": false,
        "is_restricted": false,
        "is_ultra_restricted": false,
        "is_bot": false,
        "is_app_user": false,
        "updated": 1_700_000_000,
        "is_email_confirmed": true,
        "has_2fa": false,
        "who_can_share_contact_card": "EVERYONE",
    })
}

/// users.lookupByEmail: `email` in the query string (or a form).
async fn lookup_by_email(
    State(inner): State<Shared>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    body: String,
) -> Response {
    let args = all_args(query.as_deref(), &headers, &body);
    record(&inner, "users.lookupByEmail", &headers, Some(args.clone()));
    if !authorized(&inner, &headers) {
        return slack_error("invalid_auth");
    }
    let fault = method_fault(&inner, "users.lookupByEmail");
    if let Some(answer) = fault_answer(fault).await {
        return answer;
    }
    let Some(email) = args["email"].as_str().filter(|e| !e.is_empty()) else { return slack_error("invalid_arguments") };
    let Some(user_id) = lock(&inner).users.get(&email.to_lowercase()).cloned() else {
        return slack_error("users_not_found");
    };
    if fault == Fault::ServerErrorAfterPost {
        return after_post();
    }
    axum::Json(json!({ "ok": true, "user": user_object(&user_id, email, &team_of(&inner, &headers)) })).into_response()
}

/// Decodes standard base64 (padded or not).
fn base64_decode(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    let (mut buffer, mut bits) = (0u32, 0u32);
    for c in text.trim_end_matches('=').bytes() {
        let value = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        };
        buffer = (buffer << 6) | u32::from(value);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((buffer >> bits) as u8);
            buffer &= (1 << bits) - 1;
        }
    }
    Some(out)
}

/// The (client id, client secret) of an `Authorization: Basic` header.
fn basic_auth(headers: &HeaderMap) -> Option<(String, String)> {
    let encoded = headers.get("authorization")?.to_str().ok()?.strip_prefix("Basic ")?;
    let decoded = String::from_utf8(base64_decode(encoded.trim())?).ok()?;
    let (id, secret) = decoded.split_once(':')?;
    Some((id.to_owned(), secret.to_owned()))
}

/// oauth.v2.access: exchanges a code for the installation's bot token, once. The app's
/// credentials come in HTTP Basic auth (as slack-morphism sends them) or as `client_id` and
/// `client_secret` arguments; the code in the query string or the body.
async fn oauth_access(
    State(inner): State<Shared>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    body: String,
) -> Response {
    let args = all_args(query.as_deref(), &headers, &body);
    record(&inner, "oauth.v2.access", &headers, Some(args.clone()));
    let (client_id, client_secret) = basic_auth(&headers).unwrap_or_else(|| {
        let arg = |name: &str| args[name].as_str().unwrap_or_default().to_owned();
        (arg("client_id"), arg("client_secret"))
    });
    let app = lock(&inner).oauth_app.clone();
    match app {
        Some((id, _)) if id != client_id => return slack_error("invalid_client_id"),
        Some((_, secret)) if secret != client_secret => return slack_error("bad_client_secret"),
        Some(_) => {}
        None => return slack_error("invalid_client_id"),
    }
    let fault = method_fault(&inner, "oauth.v2.access");
    if let Some(answer) = fault_answer(fault).await {
        return answer;
    }
    let code = args["code"].as_str().unwrap_or_default();
    let install = {
        let mut inner = lock(&inner);
        let Some(install) = inner.oauth_codes.remove(code) else { return slack_error("invalid_code") };
        inner.tokens.insert(install.bot_token.clone(), install.team_id.clone());
        install
    };
    if fault == Fault::ServerErrorAfterPost {
        return after_post();
    }
    let team_digits = install.team_id.trim_start_matches('T');
    axum::Json(json!({
        "ok": true,
        "access_token": install.bot_token,
        "token_type": "bot",
        "scope": BOT_SCOPES,
        "bot_user_id": format!("UB{team_digits}"),
        "app_id": APP_ID,
        "team": { "id": install.team_id, "name": install.team_name },
        "enterprise": null,
        "is_enterprise_install": false,
        "authed_user": { "id": format!("UI{team_digits}"), "scope": "" },
    }))
    .into_response()
}
