//! Socket Mode: Slack delivers commands, clicks and events over WebSockets the server opens
//! (`apps.connections.open` with the app-level token), so the bot runs where Slack cannot reach
//! it: a laptop, a closed network. slack-morphism keeps the connections (two, reconnected on
//! Slack's `disconnect`, pinged); each envelope's payload is what the HTTP path would have been
//! sent, and goes to the same handlers. Their answer becomes the envelope's acknowledgement:
//! a body is its payload (a command's reply, a modal's errors), a 5xx is no acknowledgement at
//! all, so Slack delivers the envelope again, as it retries an HTTP request.
//!
//! There is no request signature to check: the connection is the app's own, opened with its
//! secret token.

use std::sync::{Arc, OnceLock, Weak};

use anyhow::Context as _;
use axum::response::Response;
use serde::Deserialize;
use serde_json::{Value, json};
use slack_morphism::clients_manager::{SlackSocketModeClientsManager, SlackSocketModeClientsManagerFactory};
use slack_morphism::listener::{HttpStatusCode, SlackClientEventsListenerEnvironment, SlackClientEventsUserState};
use slack_morphism::prelude::*;

use crate::SlackApp;

type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// The largest acknowledgement payload we read back from a handler.
const MAX_ANSWER: usize = 1 << 20;

/// `[slack] app_token` when Socket Mode is on; refuses a config that cannot work.
pub(super) fn app_token(s: &settings::Slack) -> anyhow::Result<Option<SlackApiToken>> {
    if !s.socket_mode {
        return Ok(None);
    }
    let token = s.app_token.as_ref().context(
        "[slack] socket_mode needs app_token: an app-level token (xapp-…) with the connections:write scope, \
         made under Basic Information → App-Level Tokens",
    )?;
    let token = secrecy::ExposeSecret::expose_secret(token);
    anyhow::ensure!(
        token.starts_with("xapp-"),
        "[slack] app_token must be an app-level token (xapp-…); a bot token (xoxb-…) cannot open Socket Mode connections"
    );
    anyhow::ensure!(
        s.bot_token.is_some() || s.client_id.is_some(),
        "[slack] socket_mode needs bot_token (or client_id for installed workspaces) to answer with"
    );
    Ok(Some(SlackApiToken::new(SlackApiTokenValue::new(token.to_owned()))))
}

/// The running Socket Mode connections.
pub struct SocketMode {
    manager: Arc<dyn SlackSocketModeClientsManager + Send + Sync>,
}

impl std::fmt::Debug for SocketMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SocketMode").finish_non_exhaustive()
    }
}

impl SocketMode {
    /// Connects when `[slack] socket_mode` is on (`None` otherwise). A failed
    /// `apps.connections.open` is logged and retried by the connection, not fatal: Slack may
    /// be unreachable for a while.
    pub async fn start(state: &SlackApp) -> anyhow::Result<Option<SocketMode>> {
        let Some(token) = state.slack.app_token.clone() else { return Ok(None) };
        let client = state.slack.client().context("Socket Mode needs the Slack Web API client")?;
        let environment =
            Arc::new(SlackClientEventsListenerEnvironment::new(client.clone()).with_error_handler(log_error));
        let manager = client.http_api.connector.new_clients_manager(environment);
        let envelopes = Arc::new(Envelopes { state: state.clone(), manager: OnceLock::new() });
        let _ = envelopes.manager.set(Arc::downgrade(&manager));
        let config = SlackClientSocketModeConfig::new();
        manager.register_new_token(&config, token, envelopes).await.context("registering the Socket Mode token")?;
        manager.start().await;
        tracing::info!(connections = config.max_connections_count, "Slack Socket Mode started");
        Ok(Some(SocketMode { manager }))
    }

    /// Closes the connections (Slack then sends to the other replicas, if any).
    pub async fn shutdown(&self) {
        self.manager.shutdown().await;
    }
}

// The signature is slack-morphism's `ErrorHandler`.
#[allow(clippy::needless_pass_by_value)]
fn log_error(
    error: BoxError,
    _client: Arc<crate::channel::SlackWebClient>,
    _state: SlackClientEventsUserState,
) -> HttpStatusCode {
    tracing::warn!(error = %error, "Slack Socket Mode");
    metrics::counter!("slack_socket_errors_total").increment(1);
    HttpStatusCode::OK
}

/// Hands each envelope to the handlers and acknowledges it with their answer.
struct Envelopes {
    state: SlackApp,
    manager: OnceLock<Weak<dyn SlackSocketModeClientsManager + Send + Sync>>,
}

/// A Socket Mode frame from Slack.
#[derive(Debug, Deserialize)]
struct Envelope {
    #[serde(rename = "type")]
    kind: String,
    envelope_id: Option<String>,
    #[serde(default)]
    payload: Value,
    #[serde(default)]
    accepts_response_payload: bool,
    retry_attempt: Option<u32>,
    /// Why Slack is closing a connection (`disconnect`).
    reason: Option<String>,
}

#[async_trait::async_trait]
impl SlackSocketModeClientListener for Envelopes {
    async fn on_message(&self, client_id: &SlackSocketModeWssClientId, message_body: String) -> Option<String> {
        let envelope: Envelope = match serde_json::from_str(&message_body) {
            Ok(e) => e,
            Err(e) => {
                tracing::warn!(error = %e, "a Socket Mode frame that is not an envelope");
                return None;
            }
        };
        match envelope.kind.as_str() {
            "hello" => {
                tracing::info!(connection = %client_id.to_string(), "Slack Socket Mode connected");
                metrics::counter!("slack_socket_connections_total").increment(1);
                None
            }
            "disconnect" => {
                // Slack refreshes connections every few hours and warns ten seconds ahead.
                tracing::info!(connection = %client_id.to_string(), reason = ?envelope.reason, "Slack asks to reconnect");
                if let Some(manager) = self.manager.get().and_then(Weak::upgrade) {
                    manager.restart_client(client_id).await;
                }
                None
            }
            kind => {
                let Some(id) = envelope.envelope_id.clone() else {
                    tracing::warn!(kind, "a Socket Mode envelope without an envelope_id");
                    return None;
                };
                metrics::counter!("slack_socket_envelopes_total", "type" => kind.to_owned()).increment(1);
                let answer = self.dispatch(&envelope).await;
                acknowledgement(&id, kind, envelope.accepts_response_payload, answer).await
            }
        }
    }

    async fn on_error(&self, error: BoxError) {
        tracing::warn!(error = %error, "Slack Socket Mode connection");
        metrics::counter!("slack_socket_errors_total").increment(1);
    }

    async fn on_disconnect(&self, client_id: &SlackSocketModeWssClientId) {
        tracing::info!(connection = %client_id.to_string(), "Slack Socket Mode connection lost; reconnecting");
        if let Some(manager) = self.manager.get().and_then(Weak::upgrade) {
            manager.restart_client(client_id).await;
        }
    }
}

impl Envelopes {
    /// The HTTP path's handler for the envelope's payload; `None` for a payload that is not
    /// what its type says (acknowledged, as a retry would not parse better).
    async fn dispatch(&self, envelope: &Envelope) -> Option<Response> {
        let state = &self.state;
        let payload = envelope.payload.clone();
        let parsed = match envelope.kind.as_str() {
            "slash_commands" => match serde_json::from_value(payload) {
                Ok(command) => return Some(super::command(state, command).await),
                Err(e) => e,
            },
            "interactive" => return Some(super::interact::interaction(state, payload).await),
            "events_api" => {
                if envelope.retry_attempt.is_some_and(|n| n > 0) {
                    tracing::debug!(attempt = ?envelope.retry_attempt, "Slack delivers an event again");
                }
                match serde_json::from_value(payload) {
                    Ok(event) => return Some(super::events::push_event(state, event).await),
                    Err(e) => e,
                }
            }
            other => {
                tracing::debug!(kind = other, "a Socket Mode envelope type we do not take");
                return None;
            }
        };
        tracing::warn!(kind = %envelope.kind, error = %parsed, "a Socket Mode payload Slack's format does not fit");
        None
    }
}

/// The acknowledgement frame for envelope `id` from the handler's answer: none for a 5xx (Slack
/// delivers the envelope again), the answer's JSON as its payload where Slack takes one.
async fn acknowledgement(id: &str, kind: &str, accepts_payload: bool, answer: Option<Response>) -> Option<String> {
    let mut frame = json!({ "envelope_id": id });
    let Some(answer) = answer else { return Some(frame.to_string()) };
    let status = answer.status();
    if status.is_server_error() {
        tracing::warn!(kind, envelope = id, %status, "not acknowledged; Slack will deliver it again");
        return None;
    }
    let body = match axum::body::to_bytes(answer.into_body(), MAX_ANSWER).await {
        Ok(b) => b,
        Err(e) => {
            tracing::error!(error = %e, "reading a Socket Mode answer");
            return Some(frame.to_string());
        }
    };
    if !status.is_success() {
        tracing::warn!(kind, envelope = id, %status, body = %String::from_utf8_lossy(&body), "a Socket Mode envelope refused");
        return Some(frame.to_string());
    }
    match serde_json::from_slice::<Value>(&body) {
        Ok(payload @ Value::Object(_)) if accepts_payload => frame["payload"] = payload,
        Ok(Value::Object(_)) => tracing::debug!(kind, "an answer Slack takes no payload for; dropped"),
        _ => {}
    }
    Some(frame.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::response::IntoResponse;

    fn slack(socket_mode: bool, app: Option<&str>, bot: Option<&str>) -> settings::Slack {
        settings::Slack {
            socket_mode,
            app_token: app.map(|t| t.to_owned().into()),
            bot_token: bot.map(|t| t.to_owned().into()),
            ..Default::default()
        }
    }

    #[test]
    fn socket_mode_is_refused_without_an_app_level_token_or_a_bot_token() {
        assert!(app_token(&slack(false, None, None)).expect("off").is_none());
        let cases = [
            (None, Some("xoxb-1"), "needs app_token"),
            (Some("xoxb-1"), Some("xoxb-1"), "must be an app-level token"),
            (Some("xapp-1-A0-1-abc"), None, "needs bot_token"),
        ];
        for (app, bot, says) in cases {
            let e = app_token(&slack(true, app, bot)).expect_err("refused").to_string();
            assert!(e.contains(says), "{app:?}/{bot:?}: {e}");
        }
        assert!(app_token(&slack(true, Some("xapp-1-A0-1-abc"), Some("xoxb-1"))).expect("on").is_some());
    }

    #[tokio::test]
    async fn answers_become_acknowledgements_and_server_errors_none() {
        let frame = |s: Option<String>| s.map(|s| serde_json::from_str::<Value>(&s).expect("JSON"));
        let reply = || axum::Json(json!({ "text": "Acme: 72" })).into_response();
        let with = frame(acknowledgement("e1", "slash_commands", true, Some(reply())).await);
        assert_eq!(with, Some(json!({ "envelope_id": "e1", "payload": { "text": "Acme: 72" } })));
        let without = frame(acknowledgement("e2", "interactive", false, Some(reply())).await);
        assert_eq!(without, Some(json!({ "envelope_id": "e2" })));
        let empty =
            frame(acknowledgement("e3", "interactive", true, Some(axum::http::StatusCode::OK.into_response())).await);
        assert_eq!(empty, Some(json!({ "envelope_id": "e3" })));
        let refused = (axum::http::StatusCode::BAD_REQUEST, "no").into_response();
        assert_eq!(
            frame(acknowledgement("e4", "events_api", false, Some(refused)).await),
            Some(json!({ "envelope_id": "e4" }))
        );
        let failed = axum::http::StatusCode::INTERNAL_SERVER_ERROR.into_response();
        assert_eq!(acknowledgement("e5", "events_api", false, Some(failed)).await, None);
        assert_eq!(frame(acknowledgement("e6", "odd", false, None).await), Some(json!({ "envelope_id": "e6" })));
    }
}
