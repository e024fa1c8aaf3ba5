//! The Bot Connector REST API (v3), the way Teams hears the bot: activities sent into a
//! conversation or as a reply, cards updated in place, one-to-one conversations opened for
//! proactive messages, and a conversation member's profile (their email) read.
//!
//! Every call carries a token from Microsoft Entra ID (the client-credentials flow for the bot's
//! app registration, scope `https://api.botframework.com/.default`), cached until a minute before
//! it expires; a 401 from the Connector drops it, signs in again and retries once. Calls go
//! only to service URLs on the configured allow-list: an activity can name any URL, and the
//! token must never be sent to one we do not trust. Answers are sorted like every channel's:
//! 429 (with its `Retry-After`), 5xx and network trouble are worth another try, the rest are not.

use std::time::{Duration, Instant};

use anyhow::Context as _;
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Value, json};
use tokio::sync::Mutex;

use alerts::channels::SendError;

/// Refreshes a token this long before Entra says it expires.
const EARLY: Duration = Duration::from_secs(60);

/// A Connector client for one bot (app registration).
pub struct Connector {
    http: reqwest::Client,
    app_id: String,
    app_password: SecretString,
    /// `{login_url}/{app_tenant}/oauth2/v2.0/token`.
    token_url: String,
    scope: String,
    allowed: Vec<String>,
    token: Mutex<Option<(SecretString, Instant)>>,
}

impl std::fmt::Debug for Connector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connector").field("app_id", &self.app_id).field("allowed", &self.allowed).finish()
    }
}

/// What the Connector answered to an activity sent: its id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Posted {
    pub activity_id: String,
}

/// A conversation member's profile, as Teams knows them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Member {
    pub id: String,
    pub name: Option<String>,
    pub aad_object_id: Option<String>,
    pub email: Option<String>,
    pub user_principal_name: Option<String>,
}

impl Connector {
    pub fn new(settings: &settings::Teams, app_id: &str, app_password: &SecretString) -> anyhow::Result<Self> {
        service::auth::install_crypto_provider();
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(settings.timeout_seconds.max(1)))
            .connect_timeout(Duration::from_secs(5))
            .build()
            .context("building the Teams HTTP client")?;
        let login = settings.login_url.trim_end_matches('/');
        url::Url::parse(login).with_context(|| format!("[teams] login_url {login:?} is not a URL"))?;
        anyhow::ensure!(!settings.service_urls.is_empty(), "[teams] service_urls is empty: nothing could be sent");
        for allowed in &settings.service_urls {
            let parsed =
                url::Url::parse(allowed).with_context(|| format!("[teams] service_urls: {allowed:?} is not a URL"))?;
            anyhow::ensure!(
                parsed.scheme() == "https" || parsed.host_str().is_some_and(is_loopback),
                "[teams] service_urls: {allowed:?} must be https:// (plain http only to a local test server)"
            );
        }
        Ok(Connector {
            http,
            app_id: app_id.to_owned(),
            app_password: app_password.clone(),
            token_url: format!("{login}/{}/oauth2/v2.0/token", settings.app_tenant),
            scope: settings.scope.clone(),
            allowed: settings.service_urls.iter().map(|u| normalise(u)).collect(),
            token: Mutex::new(None),
        })
    }

    /// The bot's id in Teams conversations.
    pub fn bot_id(&self) -> String {
        format!("28:{}", self.app_id)
    }

    /// Whether the bot may talk to `service_url`.
    pub fn allows(&self, service_url: &str) -> bool {
        let url = normalise(service_url);
        url::Url::parse(&url).is_ok() && self.allowed.iter().any(|prefix| url.starts_with(prefix.as_str()))
    }

    /// Sends `activity` into a conversation (as a reply to `reply_to` when given).
    pub async fn send(
        &self,
        service_url: &str,
        conversation: &str,
        reply_to: Option<&str>,
        activity: &Value,
    ) -> Result<Posted, SendError> {
        let mut path = format!("v3/conversations/{}/activities", segment(conversation));
        if let Some(id) = reply_to {
            path.push('/');
            path.push_str(&segment(id));
        }
        let answer = self.call(reqwest::Method::POST, service_url, &path, Some(activity)).await?;
        Ok(Posted { activity_id: answer["id"].as_str().unwrap_or_default().to_owned() })
    }

    /// Replaces the activity `activity_id` (a card whose buttons were clicked) with `activity`.
    pub async fn update(
        &self,
        service_url: &str,
        conversation: &str,
        activity_id: &str,
        activity: &Value,
    ) -> Result<(), SendError> {
        let path = format!("v3/conversations/{}/activities/{}", segment(conversation), segment(activity_id));
        self.call(reqwest::Method::PUT, service_url, &path, Some(activity)).await.map(|_| ())
    }

    /// Opens (or finds: Teams answers the same id) the bot's one-to-one conversation with the
    /// member `user_id` (`29:…`) of the Microsoft 365 tenant `tenant`.
    pub async fn create_conversation(
        &self,
        service_url: &str,
        tenant: &str,
        user_id: &str,
    ) -> Result<String, SendError> {
        let body = json!({
            "bot": { "id": self.bot_id() },
            "members": [{ "id": user_id }],
            "channelData": { "tenant": { "id": tenant } },
            "isGroup": false,
            "tenantId": tenant,
        });
        let answer = self.call(reqwest::Method::POST, service_url, "v3/conversations", Some(&body)).await?;
        answer["id"]
            .as_str()
            .filter(|id| !id.is_empty())
            .map(str::to_owned)
            .ok_or_else(|| SendError::Permanent("Teams created a conversation without an id".into()))
    }

    /// A member of `conversation`: their profile, with the email Teams has for them. `None`
    /// when they are not in it.
    pub async fn member(
        &self,
        service_url: &str,
        conversation: &str,
        member: &str,
    ) -> Result<Option<Member>, SendError> {
        let path = format!("v3/conversations/{}/members/{}", segment(conversation), segment(member));
        let answer = match self.call(reqwest::Method::GET, service_url, &path, None).await {
            Ok(answer) => answer,
            Err(SendError::Permanent(reason)) if reason.contains("404") => return Ok(None),
            Err(e) => return Err(e),
        };
        let text = |key: &str| answer[key].as_str().filter(|s| !s.is_empty()).map(str::to_owned);
        Ok(Some(Member {
            id: text("id").unwrap_or_default(),
            name: text("name"),
            aad_object_id: text("aadObjectId"),
            email: text("email"),
            user_principal_name: text("userPrincipalName"),
        }))
    }

    /// One call, signed; a 401 renews the token and tries once more.
    async fn call(
        &self,
        method: reqwest::Method,
        service_url: &str,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Value, SendError> {
        if !self.allows(service_url) {
            return Err(SendError::Permanent(format!(
                "the service URL {service_url} is not in [teams] service_urls; nothing was sent"
            )));
        }
        let url = format!("{}{path}", normalise(service_url));
        for attempt in 0..2 {
            let token = self.token().await?;
            let mut request = self.http.request(method.clone(), &url).bearer_auth(token.expose_secret());
            if let Some(body) = body {
                request = request.json(body);
            }
            let response =
                request.send().await.map_err(|e| transient(format!("calling Teams: {}", e.without_url())))?;
            let status = response.status();
            if status == reqwest::StatusCode::UNAUTHORIZED && attempt == 0 {
                tracing::info!("the Teams Connector refused our token; signing in again");
                *self.token.lock().await = None;
                continue;
            }
            let retry_after = response
                .headers()
                .get(reqwest::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok())
                .map(Duration::from_secs);
            let text = response.text().await.unwrap_or_default();
            let answer: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
            if status.is_success() {
                return Ok(answer);
            }
            let code = answer["error"]["code"].as_str().unwrap_or_default();
            let reason = format!(
                "Teams answered {status}{}",
                if code.is_empty() { String::new() } else { format!(" ({code})") }
            );
            metrics::counter!("teams_api_errors_total", "status" => status.as_u16().to_string()).increment(1);
            return Err(if status == reqwest::StatusCode::TOO_MANY_REQUESTS {
                SendError::Transient { reason, retry_after }
            } else if status.is_server_error() {
                SendError::Transient { reason, retry_after: None }
            } else {
                SendError::Permanent(reason)
            });
        }
        Err(SendError::Permanent("Teams refused our token twice (401): check [teams] app_id and app_password".into()))
    }

    /// A Connector token: the cached one, or a new one from Entra ID.
    async fn token(&self) -> Result<SecretString, SendError> {
        let mut cached = self.token.lock().await;
        if let Some((token, until)) = cached.as_ref()
            && Instant::now() < *until
        {
            return Ok(token.clone());
        }
        let form = [
            ("grant_type", "client_credentials"),
            ("client_id", self.app_id.as_str()),
            ("client_secret", self.app_password.expose_secret()),
            ("scope", self.scope.as_str()),
        ];
        let response = self
            .http
            .post(&self.token_url)
            .form(&form)
            .send()
            .await
            .map_err(|e| transient(format!("signing in to Microsoft Entra ID: {}", e.without_url())))?;
        let status = response.status();
        let answer: Value = response.json().await.unwrap_or(Value::Null);
        if !status.is_success() {
            // AADSTS codes name the cause (a wrong secret, an unknown app or tenant) without the secret.
            let why = answer["error_description"].as_str().unwrap_or_default().lines().next().unwrap_or_default();
            let reason = format!("Microsoft Entra ID refused the bot's sign-in ({status}): {why}");
            return Err(if status.is_server_error() || status == reqwest::StatusCode::TOO_MANY_REQUESTS {
                transient(reason)
            } else {
                SendError::Permanent(reason)
            });
        }
        let token = answer["access_token"]
            .as_str()
            .filter(|t| !t.is_empty())
            .ok_or_else(|| transient("Microsoft Entra ID answered without an access token".to_owned()))?;
        let lifetime = Duration::from_secs(answer["expires_in"].as_u64().unwrap_or(3599));
        let token = SecretString::from(token.to_owned());
        *cached = Some((token.clone(), Instant::now() + lifetime.saturating_sub(EARLY)));
        metrics::counter!("teams_tokens_total").increment(1);
        Ok(token)
    }
}

fn transient(reason: String) -> SendError {
    SendError::Transient { reason, retry_after: None }
}

fn is_loopback(host: &str) -> bool {
    host == "127.0.0.1" || host == "localhost" || host == "[::1]"
}

/// A service URL with one trailing slash, lower-case scheme and host, so prefixes compare.
fn normalise(url: &str) -> String {
    match url::Url::parse(url.trim()) {
        Ok(parsed) => {
            let mut s = parsed.to_string();
            if !s.ends_with('/') {
                s.push('/');
            }
            s
        }
        Err(_) => url.trim().to_owned(),
    }
}

/// A conversation or activity id as one path segment (Teams ids hold `:`, `@` and `;`).
fn segment(id: &str) -> String {
    url::form_urlencoded::byte_serialize(id.as_bytes()).collect::<String>().replace('+', "%20")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn connector(allowed: &[&str]) -> Connector {
        let settings =
            settings::Teams { service_urls: allowed.iter().map(|s| (*s).to_owned()).collect(), ..Default::default() };
        Connector::new(&settings, "app", &SecretString::from("secret".to_owned())).expect("connector")
    }

    #[test]
    fn only_allow_listed_service_urls_are_talked_to() {
        let c = connector(&["https://smba.trafficmanager.net/"]);
        assert!(c.allows("https://smba.trafficmanager.net/emea/"));
        assert!(c.allows("https://SMBA.trafficmanager.net/amer"));
        assert!(!c.allows("https://smba.trafficmanager.net.evil.example/emea/"));
        assert!(!c.allows("https://evil.example/https://smba.trafficmanager.net/"));
        assert!(!c.allows("http://smba.trafficmanager.net/emea/"), "not over plain http");
        assert!(!c.allows("not a url"));
    }

    #[test]
    fn plain_http_service_urls_are_refused_unless_local() {
        let settings = settings::Teams { service_urls: vec!["http://smba.example/".into()], ..Default::default() };
        let e = Connector::new(&settings, "app", &SecretString::from("s".to_owned())).expect_err("http");
        assert!(e.to_string().contains("https"), "{e}");
        assert!(connector(&["http://127.0.0.1:9/teams/"]).allows("http://127.0.0.1:9/teams/"));
    }

    #[test]
    fn teams_ids_become_single_path_segments() {
        assert_eq!(segment("19:abc@thread.tacv2;messageid=1"), "19%3Aabc%40thread.tacv2%3Bmessageid%3D1");
        assert_eq!(segment("a:1 x"), "a%3A1%20x");
    }
}
