//! Slack request signing: every request to `/slack/*` is checked on its raw body before
//! anything parses it (`v0` HMAC-SHA256 of `v0:{timestamp}:{body}`, constant-time compare,
//! timestamp within five minutes either way; slack-morphism's verifier does the arithmetic).
//! Several signing secrets may be configured so one can be rotated without downtime. A refused
//! request gets 401 and a log line that says why, never the signature itself. A body that is not
//! UTF-8 is refused before it is checked (Slack sends only UTF-8), and a signature already taken
//! is a replay inside its five minutes: refused too, across replicas (the store keeps the
//! signatures seen for ten minutes; Slack's own retries are signed anew).

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use secrecy::{ExposeSecret, SecretString};
use slack_morphism::prelude::SlackSigningSecret;
use slack_morphism::signature_verifier::{SlackEventSignatureVerifier, SlackEventSignatureVerifierError};

use crate::SlackApp;

/// The app's signing secrets as verifiers, newest first.
#[derive(Clone, Default)]
pub struct Verifiers(Vec<SlackEventSignatureVerifier>);

impl std::fmt::Debug for Verifiers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Verifiers({} secrets)", self.0.len())
    }
}

/// Why a request was refused (for the log line and the 401 body).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// No signing secret is configured: nothing can be verified.
    NotConfigured,
    MissingHeaders,
    /// The timestamp is not within five minutes of now (a replay, or a wrong clock).
    Stale,
    BadSignature,
    /// The same signed request again.
    Replayed,
}

impl Refusal {
    pub fn as_str(self) -> &'static str {
        match self {
            Refusal::NotConfigured => "Slack signing is not configured",
            Refusal::MissingHeaders => "missing X-Slack-Signature or X-Slack-Request-Timestamp",
            Refusal::Stale => "the request timestamp is more than 5 minutes from now",
            Refusal::BadSignature => "the signature does not match",
            Refusal::Replayed => "this signed request was received already",
        }
    }
}

impl Verifiers {
    pub fn new(secrets: &[SecretString]) -> Verifiers {
        Verifiers(
            secrets
                .iter()
                .filter(|s| !s.expose_secret().is_empty())
                .map(|s| SlackEventSignatureVerifier::new(&SlackSigningSecret::new(s.expose_secret().to_owned())))
                .collect(),
        )
    }

    /// Accepts `body` signed with any of the secrets at `timestamp`.
    pub fn check(&self, signature: Option<&str>, timestamp: Option<&str>, body: &str) -> Result<(), Refusal> {
        if self.0.is_empty() {
            return Err(Refusal::NotConfigured);
        }
        let (Some(signature), Some(timestamp)) = (signature, timestamp) else { return Err(Refusal::MissingHeaders) };
        let mut refusal = Refusal::BadSignature;
        for verifier in &self.0 {
            match verifier.verify(signature, body, timestamp) {
                Ok(()) => return Ok(()),
                // The signature matched this secret but the time is off: a replay.
                Err(SlackEventSignatureVerifierError::IncorrectOrExpiredTimestampError(_)) => {
                    refusal = Refusal::Stale;
                }
                Err(_) => {}
            }
        }
        Err(refusal)
    }
}

/// Middleware for `/slack/*`: verifies the signature over the raw body, then hands the same
/// bytes on.
pub async fn verify(State(state): State<SlackApp>, request: Request, next: Next) -> Response {
    let (parts, body) = request.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, state.settings.server.max_body_bytes).await else {
        return (StatusCode::PAYLOAD_TOO_LARGE, "request body too large").into_response();
    };
    let header = |name: &str| parts.headers.get(name).and_then(|v| v.to_str().ok());
    let Ok(body_text) = std::str::from_utf8(&bytes) else {
        tracing::warn!(path = %parts.uri.path(), body_bytes = bytes.len(), "Slack request refused: the body is not UTF-8");
        let body = serde_json::json!({ "error": "bad_request", "message": "the request body is not UTF-8" });
        return (StatusCode::BAD_REQUEST, axum::Json(body)).into_response();
    };
    let signature = header(SlackEventSignatureVerifier::SLACK_SIGNED_HASH_HEADER);
    let mut checked =
        state.slack.verifiers.check(signature, header(SlackEventSignatureVerifier::SLACK_SIGNED_TIMESTAMP), body_text);
    if let (Ok(()), Some(signature)) = (checked, signature) {
        checked = first_time(&state, signature).await;
    }
    if let Err(refusal) = checked {
        tracing::warn!(path = %parts.uri.path(), timestamp = header(SlackEventSignatureVerifier::SLACK_SIGNED_TIMESTAMP),
            body_bytes = bytes.len(), reason = refusal.as_str(), "Slack request refused");
        metrics::counter!("slack_requests_refused_total").increment(1);
        let body = serde_json::json!({ "error": "unauthorized", "message": refusal.as_str() });
        return (StatusCode::UNAUTHORIZED, axum::Json(body)).into_response();
    }
    next.run(Request::from_parts(parts, Body::from(bytes))).await
}

/// Whether a valid signature is seen for the first time (kept ten minutes: its timestamp is
/// accepted five minutes either side of now). A store that cannot say is not a reason to drop
/// Slack's request: it is let through, and logged.
async fn first_time(state: &SlackApp, signature: &str) -> Result<(), Refusal> {
    use sha2::Digest as _;
    let now = state.now();
    let digest = hex::encode(sha2::Sha256::digest(signature.as_bytes()));
    match state.store.claim_once("slack", &digest, now + chrono::Duration::minutes(10), now).await {
        Ok(true) => Ok(()),
        Ok(false) => Err(Refusal::Replayed),
        Err(e) => {
            tracing::error!(error = %e, "recording a Slack signature; taking the request without the replay check");
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hmac::{Hmac, Mac};

    fn sign(secret: &str, ts: i64, body: &str) -> String {
        let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).expect("key");
        mac.update(format!("v0:{ts}:{body}").as_bytes());
        let bytes = mac.finalize().into_bytes();
        format!("v0={}", bytes.iter().map(|b| format!("{b:02x}")).collect::<String>())
    }

    #[test]
    fn signatures_from_any_configured_secret_within_five_minutes_pass() {
        let secrets = [SecretString::from("new-secret".to_owned()), SecretString::from("old-secret".to_owned())];
        let v = Verifiers::new(&secrets);
        let now = chrono::Utc::now().timestamp();
        let body = "token=x&team_id=T1&command=%2Fdeal-risk&text=Acme";
        let ts = |t: i64| t.to_string();
        // (secret, timestamp, body signed, body sent, expected)
        type Case<'a> = (&'a str, i64, &'a str, &'a str, Result<(), Refusal>);
        let cases: Vec<Case<'_>> = vec![
            ("new-secret", now, body, body, Ok(())),
            ("old-secret", now - 200, body, body, Ok(())),
            ("new-secret", now + 200, body, body, Ok(())),
            ("new-secret", now - 400, body, body, Err(Refusal::Stale)),
            ("new-secret", now + 400, body, body, Err(Refusal::Stale)),
            ("wrong", now, body, body, Err(Refusal::BadSignature)),
            ("new-secret", now, body, "token=x&team_id=T1&command=%2Fdeal-risk&text=Bcme", Err(Refusal::BadSignature)),
        ];
        for (secret, t, signed, sent, expected) in cases {
            let signature = sign(secret, t, signed);
            assert_eq!(v.check(Some(&signature), Some(&ts(t)), sent), expected, "{secret} at {}", t - now);
        }
        assert_eq!(v.check(None, Some(&ts(now)), body), Err(Refusal::MissingHeaders));
        assert_eq!(v.check(Some("v0=00"), None, body), Err(Refusal::MissingHeaders));
        // A signature over the right body but another timestamp header is a forgery.
        assert_eq!(v.check(Some(&sign("new-secret", now, body)), Some(&ts(now - 1)), body), Err(Refusal::BadSignature));
        assert_eq!(Verifiers::new(&[]).check(Some("v0=00"), Some("1"), body), Err(Refusal::NotConfigured));
    }
}
