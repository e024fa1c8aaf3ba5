//! A fake Slack Web API on 127.0.0.1, for tests: `chat.postMessage`, `conversations.open` and
//! `conversations.history` (with message metadata), checking the bot token as Slack does and
//! answering with Slack's shapes, its `ok: false` errors, HTTP 429 with `Retry-After`, and 5xx.
//!
//! Faults are scripted: each `chat.postMessage` takes the next [`Fault`] from the script (then
//! [`FakeSlack::default_fault`]). A `ServerErrorAfterPost` keeps the message and still answers
//! 500, as a Slack that timed out behind its load balancer might: only a sender that looks
//! before it resends avoids a duplicate. Every posted message is recorded.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};

/// What the fake does with one `chat.postMessage`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Posts it and answers `ok: true`.
    None,
    /// Answers HTTP 500 without posting.
    ServerError,
    /// Posts it, then answers HTTP 500.
    ServerErrorAfterPost,
    /// Answers HTTP 429 with `Retry-After: n` seconds, without posting.
    RateLimited(u64),
    /// Waits this many milliseconds, then posts and answers.
    Slow(u64),
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
}

impl Posted {
    /// The alert id the message carries in its metadata.
    pub fn alert_id(&self) -> Option<&str> {
        self.metadata.as_ref()?.pointer("/event_payload/alert_id")?.as_str()
    }
}

#[derive(Debug, Default)]
struct Inner {
    token: String,
    posted: Vec<Posted>,
    script: VecDeque<Fault>,
    default_fault: Option<Fault>,
    /// Every method called, in order.
    calls: Vec<String>,
    /// Files: (file id, filename, declared length, bytes received, channel shared to).
    files: Vec<Uploaded>,
    base: String,
    /// Random faults: (seed state, share of calls in 1/1000 that fail, slow ms).
    chaos: Option<(u64, u32, u64)>,
    /// Channels (C…) the bot is a member of; posting into another answers `not_in_channel`.
    joined: std::collections::HashSet<String>,
    /// Messages posted to response URLs: (the URL's id, the JSON body).
    responses: Vec<(String, Value)>,
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
    /// Starts the fake on a free port; it accepts `token` only.
    pub async fn start(token: &str) -> FakeSlack {
        let inner = Arc::new(Mutex::new(Inner { token: token.to_owned(), ..Inner::default() }));
        let app = Router::new()
            .route("/api/chat.postMessage", post(post_message))
            .route("/api/conversations.open", post(open))
            .route("/api/conversations.history", get(history))
            .route("/api/files.getUploadURLExternal", get(upload_url))
            .route("/upload/{file_id}", post(upload_bytes))
            .route("/api/files.completeUploadExternal", post(complete_upload))
            .route("/response/{id}", post(response_url))
            .with_state(inner.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind the fake Slack");
        let addr = listener.local_addr().expect("address");
        lock(&inner).base = format!("http://{addr}");
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        FakeSlack { inner, api_url: format!("http://{addr}/api"), task: Arc::new(task) }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
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

    /// The faults for the next `chat.postMessage` calls, in order.
    pub fn script(&self, faults: &[Fault]) {
        self.lock().script.extend(faults.iter().copied());
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

    pub fn calls(&self) -> Vec<String> {
        self.lock().calls.clone()
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

fn authorized(inner: &Shared, headers: &HeaderMap) -> bool {
    let expected = format!("Bearer {}", lock(inner).token);
    headers.get("authorization").and_then(|v| v.to_str().ok()) == Some(expected.as_str())
}

/// A DM channel id for a user id, as Slack's are: `D` and letters.
fn dm_of(user: &str) -> String {
    format!("D{}", user.trim_start_matches('U'))
}

fn next_fault(inner: &mut Inner) -> Fault {
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

async fn post_message(State(inner): State<Shared>, headers: HeaderMap, body: String) -> Response {
    lock(&inner).calls.push("chat.postMessage".into());
    if !authorized(&inner, &headers) {
        return slack_error("invalid_auth");
    }
    let Ok(request) = serde_json::from_str::<Value>(&body) else { return slack_error("invalid_json") };
    let Some(channel) = request["channel"].as_str().map(str::to_owned) else { return slack_error("channel_not_found") };
    if !(channel.starts_with('U') || channel.starts_with('D') || channel.starts_with('C')) {
        return slack_error("channel_not_found");
    }
    if channel.starts_with('C') && !lock(&inner).joined.contains(&channel) {
        return slack_error("not_in_channel");
    }
    let fault = next_fault(&mut lock(&inner));
    match fault {
        Fault::ServerError => return (StatusCode::INTERNAL_SERVER_ERROR, "internal error").into_response(),
        Fault::RateLimited(secs) => {
            return (
                StatusCode::TOO_MANY_REQUESTS,
                [("retry-after", secs.to_string())],
                axum::Json(json!({ "ok": false, "error": "ratelimited" })),
            )
                .into_response();
        }
        Fault::Slow(ms) => tokio::time::sleep(Duration::from_millis(ms)).await,
        Fault::None | Fault::ServerErrorAfterPost => {}
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
        };
        inner.posted.push(posted.clone());
        posted
    };
    if fault == Fault::ServerErrorAfterPost {
        return (StatusCode::INTERNAL_SERVER_ERROR, "upstream timeout").into_response();
    }
    axum::Json(json!({
        "ok": true,
        "channel": channel,
        "ts": posted.ts,
        "message": { "type": "message", "ts": posted.ts, "text": posted.text },
    }))
    .into_response()
}

async fn open(State(inner): State<Shared>, headers: HeaderMap, body: String) -> Response {
    lock(&inner).calls.push("conversations.open".into());
    if !authorized(&inner, &headers) {
        return slack_error("invalid_auth");
    }
    let request: Value = serde_json::from_str(&body).unwrap_or_default();
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

async fn history(State(inner): State<Shared>, headers: HeaderMap, Query(q): Query<HistoryQuery>) -> Response {
    lock(&inner).calls.push("conversations.history".into());
    if !authorized(&inner, &headers) {
        return slack_error("invalid_auth");
    }
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
            if metadata {
                if let Some(md) = &p.metadata {
                    m["metadata"] = md.clone();
                }
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

async fn upload_url(State(inner): State<Shared>, headers: HeaderMap, Query(q): Query<UploadUrlQuery>) -> Response {
    lock(&inner).calls.push("files.getUploadURLExternal".into());
    if !authorized(&inner, &headers) {
        return slack_error("invalid_auth");
    }
    let (Some(filename), Some(length)) = (q.filename, q.length) else { return slack_error("invalid_arguments") };
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
    body: axum::body::Bytes,
) -> Response {
    let mut inner = lock(&inner);
    inner.calls.push("upload".into());
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
    lock(&inner).calls.push("files.completeUploadExternal".into());
    if !authorized(&inner, &headers) {
        return slack_error("invalid_auth");
    }
    let request: Value = serde_json::from_str(&body).unwrap_or_default();
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
