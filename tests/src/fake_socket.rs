//! Slack's Socket Mode side, for the fake Slack: `apps.connections.open` (with an app-level
//! token) hands out a one-use `ws://127.0.0.1:PORT/link/?ticket=…` URL; a connection made with
//! it is greeted with `hello`; the test sends envelopes down the newest connection as Slack
//! would and reads the acknowledgements the app sends back. `disconnect` asks the app to
//! reconnect, as Slack does every few hours.
//!
//! Slack's rules kept here: a ticket is good for one connection, an unknown one is refused at
//! the handshake (HTTP 401); a bot token cannot open connections (`not_allowed_token_type`).

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::sync::{Notify, mpsc};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};

#[derive(Debug, Default)]
struct State {
    app_tokens: HashSet<String>,
    /// Tickets handed out and not yet used.
    tickets: HashSet<String>,
    /// Live connections, oldest first: (number, frames to send).
    live: Vec<(u64, mpsc::UnboundedSender<Message>)>,
    /// Connections accepted so far (each was sent `hello`).
    accepted: u64,
    /// Handshakes refused (an unknown or used ticket).
    refused: u64,
    /// Every frame the app sent, as JSON, in order.
    received: Vec<Value>,
}

#[derive(Debug, Clone)]
pub struct SocketHub {
    state: Arc<Mutex<State>>,
    changed: Arc<Notify>,
    addr: SocketAddr,
    task: Arc<tokio::task::JoinHandle<()>>,
}

impl Drop for SocketHub {
    fn drop(&mut self) {
        if Arc::strong_count(&self.task) == 1 {
            self.task.abort();
        }
    }
}

fn lock(state: &Mutex<State>) -> std::sync::MutexGuard<'_, State> {
    state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl SocketHub {
    pub(crate) async fn start() -> SocketHub {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind the fake Socket Mode");
        let addr = listener.local_addr().expect("address");
        let state = Arc::new(Mutex::new(State::default()));
        let changed = Arc::new(Notify::new());
        let task = {
            let (state, changed) = (state.clone(), changed.clone());
            tokio::spawn(async move {
                while let Ok((stream, _)) = listener.accept().await {
                    tokio::spawn(serve(stream, state.clone(), changed.clone()));
                }
            })
        };
        SocketHub { state, changed, addr, task: Arc::new(task) }
    }

    pub(crate) fn add_app_token(&self, token: &str) {
        lock(&self.state).app_tokens.insert(token.to_owned());
    }

    /// `apps.connections.open` for `token`: Slack's answer.
    pub(crate) fn open(&self, token: Option<&str>) -> Value {
        let mut state = lock(&self.state);
        match token {
            Some(t) if state.app_tokens.contains(t) => {
                let ticket = uuid::Uuid::new_v4().to_string();
                state.tickets.insert(ticket.clone());
                json!({ "ok": true, "url": format!("ws://{}/link/?ticket={ticket}&app_id=A0DW", self.addr) })
            }
            Some(t) if t.starts_with("xoxb-") || t.starts_with("xoxp-") => {
                json!({ "ok": false, "error": "not_allowed_token_type" })
            }
            _ => json!({ "ok": false, "error": "invalid_auth" }),
        }
    }

    /// Waits until `n` connections in all have been accepted; panics after `wait`.
    pub async fn connected(&self, n: u64, wait: Duration) {
        self.until(wait, |s| (s.accepted >= n).then_some(())).await.unwrap_or_else(|| {
            let s = lock(&self.state);
            panic!("{} Socket Mode connections accepted ({} refused), expected {n}", s.accepted, s.refused)
        });
    }

    /// Connections accepted so far, and handshakes refused.
    pub fn connections(&self) -> (u64, u64) {
        let s = lock(&self.state);
        (s.accepted, s.refused)
    }

    /// Sends `frame` down the newest live connection, as Slack sends each envelope down one.
    pub fn send(&self, frame: &Value) {
        let mut state = lock(&self.state);
        state.live.retain(|(_, tx)| !tx.is_closed());
        let (_, tx) = state.live.last().expect("a live Socket Mode connection");
        tx.send(Message::Text(frame.to_string().into())).expect("the connection takes a frame");
    }

    /// Sends `disconnect` (`refresh_requested`, `warning`, `link_disabled`) down every live
    /// connection.
    pub fn disconnect(&self, reason: &str) {
        let frame = json!({ "type": "disconnect", "reason": reason, "debug_info": { "host": "fake-slack" } });
        for (_, tx) in &lock(&self.state).live {
            let _ = tx.send(Message::Text(frame.to_string().into()));
        }
    }

    /// The acknowledgement of envelope `id`, if it comes within `wait`.
    pub async fn ack(&self, id: &str, wait: Duration) -> Option<Value> {
        self.until(wait, |s| s.received.iter().find(|f| f["envelope_id"] == id).cloned()).await
    }

    /// How many acknowledgements of envelope `id` came.
    pub fn acks(&self, id: &str) -> usize {
        lock(&self.state).received.iter().filter(|f| f["envelope_id"] == id).count()
    }

    async fn until<T>(&self, wait: Duration, mut found: impl FnMut(&State) -> Option<T>) -> Option<T> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let notified = self.changed.notified();
            if let Some(t) = found(&lock(&self.state)) {
                return Some(t);
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return found(&lock(&self.state));
            }
        }
    }
}

/// One connection: the handshake checks the ticket, then `hello`, then frames both ways.
async fn serve(stream: tokio::net::TcpStream, state: Arc<Mutex<State>>, changed: Arc<Notify>) {
    // The callback's type is tungstenite's.
    #[allow(clippy::result_large_err)]
    let check = |request: &Request, response: Response| -> Result<Response, ErrorResponse> {
        let ticket = request
            .uri()
            .query()
            .and_then(|q| q.split('&').find_map(|kv| kv.strip_prefix("ticket=")).map(str::to_owned));
        let mut s = lock(&state);
        if request.uri().path() == "/link/" && ticket.is_some_and(|t| s.tickets.remove(&t)) {
            Ok(response)
        } else {
            s.refused += 1;
            let mut refusal = ErrorResponse::new(Some("invalid or used ticket".into()));
            *refusal.status_mut() = tokio_tungstenite::tungstenite::http::StatusCode::UNAUTHORIZED;
            Err(refusal)
        }
    };
    let Ok(mut ws) = tokio_tungstenite::accept_hdr_async(stream, check).await else {
        changed.notify_waiters();
        return;
    };
    let (tx, mut rx) = mpsc::unbounded_channel();
    let n = {
        let mut s = lock(&state);
        s.accepted += 1;
        let n = s.accepted;
        s.live.push((n, tx));
        n
    };
    let hello = json!({
        "type": "hello", "num_connections": n,
        "debug_info": { "host": "fake-slack", "build_number": 1, "approximate_connection_time": 18060 },
        "connection_info": { "app_id": "A0DW" },
    });
    if ws.send(Message::Text(hello.to_string().into())).await.is_err() {
        return;
    }
    changed.notify_waiters();
    loop {
        tokio::select! {
            outgoing = rx.recv() => match outgoing {
                Some(frame) => if ws.send(frame).await.is_err() { break },
                None => break,
            },
            incoming = ws.next() => match incoming {
                Some(Ok(Message::Text(text))) => {
                    let frame = serde_json::from_str(text.as_str()).unwrap_or_else(|_| Value::String(text.to_string()));
                    lock(&state).received.push(frame);
                    changed.notify_waiters();
                }
                // Pings are answered by tungstenite; other frames are not Slack's.
                Some(Ok(Message::Close(_))) | Some(Err(_)) | None => break,
                Some(Ok(_)) => {}
            },
        }
    }
    lock(&state).live.retain(|(m, _)| *m != n);
    changed.notify_waiters();
}
