//! Installing the app into a Slack workspace (OAuth v2), for multi-workspace use.
//!
//! 1. An admin asks for an install link (`POST /v1/slack/install-link`): a `/slack/install`
//!    URL whose `state` names their tenant, expires in an hour, and is signed with the
//!    deployment's token key.
//! 2. `GET /slack/install?state=…` checks the state, uses the link up (it works once), and sends
//!    the browser to Slack's consent screen with a state of ten minutes bound to that browser:
//!    a random value in the state and in an HttpOnly cookie.
//! 3. Slack sends the browser back to `GET /slack/oauth/callback?code=…&state=…`; the state is
//!    checked again and must match the browser's cookie, the code is exchanged
//!    (`oauth.v2.access`), and the workspace's bot token is sealed (XChaCha20-Poly1305, bound to
//!    the workspace id) and stored with its tenant.
//!
//! Requests from that workspace then resolve to the tenant and are answered with its own token.
//! A workspace installed for one tenant is never moved to another by a later install.

use anyhow::Context as _;
use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chacha20poly1305::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use hmac::{Hmac, Mac};
use secrecy::ExposeSecret;
use sha2::Digest as _;
use slack_morphism::prelude::*;

use crate::SlackApp;
use store::{SlackInstallation, TenantId};

/// The bot scopes the app asks for.
pub const SCOPES: &str = "commands,chat:write,im:write,im:history,app_mentions:read,users:read,users:read.email";
/// How long an install link works.
const LINK_HOURS: i64 = 1;
/// How long the browser has at Slack's consent screen.
const CONSENT_MINUTES: i64 = 10;
/// The cookie that binds an install to the browser that opened the link.
const COOKIE: &str = "dealwatch_slack_install";

/// What a verified state names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstallState {
    pub tenant: TenantId,
    /// The admin who asked for the link.
    pub by: String,
    /// The browser's random value (in its cookie); none in a link not yet opened.
    pub browser: Option<String>,
}

/// The deployment's sealing key and OAuth client, when installing is configured.
pub struct Installer {
    key: [u8; 32],
    client_id: String,
    client_secret: secrecy::SecretString,
    redirect_url: url::Url,
    authorize_url: String,
}

impl std::fmt::Debug for Installer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Installer").field("client_id", &self.client_id).finish_non_exhaustive()
    }
}

impl Installer {
    /// From `[slack]`: `None` without a client id; an error when the rest is missing or wrong.
    pub fn new(s: &settings::Slack) -> anyhow::Result<Option<Installer>> {
        let Some(client_id) = s.client_id.clone() else { return Ok(None) };
        let client_secret =
            s.client_secret.clone().context("[slack] client_id is set, so client_secret is needed too")?;
        let key = s
            .token_key
            .as_ref()
            .context("[slack] client_id is set, so token_key (32 bytes, base64) is needed to seal bot tokens")?;
        let key = base64::engine::general_purpose::STANDARD
            .decode(key.expose_secret().trim())
            .context("[slack] token_key is not base64")?;
        let key: [u8; 32] = key
            .try_into()
            .map_err(|k: Vec<u8>| anyhow::anyhow!("[slack] token_key is {} bytes; it must be 32", k.len()))?;
        let redirect = s.redirect_url.as_deref().context("[slack] client_id is set, so redirect_url is needed")?;
        let redirect_url = url::Url::parse(redirect).with_context(|| format!("[slack] redirect_url {redirect:?}"))?;
        // Slack's consent screen is beside its Web API: https://slack.com/oauth/v2/authorize.
        let authorize_url = format!("{}/oauth/v2/authorize", s.api_url.trim_end_matches('/').trim_end_matches("/api"));
        Ok(Some(Installer { key, client_id, client_secret, redirect_url, authorize_url }))
    }

    /// Seals a bot token for `team`: `v1.` + base64(nonce ‖ ciphertext).
    pub fn seal(&self, team: &str, token: &str) -> anyhow::Result<String> {
        let cipher = XChaCha20Poly1305::new((&self.key).into());
        let nonce = XChaCha20Poly1305::generate_nonce(&mut OsRng);
        let sealed = cipher
            .encrypt(&nonce, Payload { msg: token.as_bytes(), aad: team.as_bytes() })
            .map_err(|_| anyhow::anyhow!("sealing a bot token failed"))?;
        let mut bytes = nonce.to_vec();
        bytes.extend(sealed);
        Ok(format!("v1.{}", URL_SAFE_NO_PAD.encode(bytes)))
    }

    /// Opens a sealed token; fails when it was sealed with another key or for another team.
    pub fn unseal(&self, team: &str, sealed: &str) -> anyhow::Result<String> {
        let bytes = URL_SAFE_NO_PAD
            .decode(sealed.strip_prefix("v1.").context("not a sealed token")?)
            .context("a sealed token is not base64")?;
        anyhow::ensure!(bytes.len() > 24, "a sealed token is too short");
        let (nonce, ciphertext) = bytes.split_at(24);
        let nonce: [u8; 24] = nonce.try_into().context("a sealed token's nonce")?;
        let cipher = XChaCha20Poly1305::new((&self.key).into());
        let token = cipher
            .decrypt(&XNonce::from(nonce), Payload { msg: ciphertext, aad: team.as_bytes() })
            .map_err(|_| anyhow::anyhow!("the token was sealed with another key or for another workspace"))?;
        String::from_utf8(token).context("a sealed token is not text")
    }

    fn mac(&self) -> Hmac<sha2::Sha256> {
        // The state is signed with a key derived from the sealing key, never the key itself.
        let mut derive = <Hmac<sha2::Sha256> as Mac>::new_from_slice(&self.key).expect("any key length");
        derive.update(b"dealwatch slack oauth state");
        <Hmac<sha2::Sha256> as Mac>::new_from_slice(&derive.finalize().into_bytes()).expect("any key length")
    }

    /// A state for `tenant`, installed by `by`, valid until `expires` (epoch seconds), for the
    /// browser holding `browser` in its cookie (none: an install link).
    pub fn state(&self, tenant: &TenantId, by: &str, expires: i64, browser: Option<&str>) -> String {
        let body = format!("{tenant}|{expires}|{}|{by}", browser.unwrap_or_default());
        let mut mac = self.mac();
        mac.update(body.as_bytes());
        let sig = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
        format!("{}.{sig}", URL_SAFE_NO_PAD.encode(body))
    }

    /// What a state names, if its signature holds and it has not expired.
    pub fn check_state(&self, state: &str, now: i64) -> Result<InstallState, &'static str> {
        let (body, sig) = state.split_once('.').ok_or("the link is damaged")?;
        let body = URL_SAFE_NO_PAD.decode(body).map_err(|_| "the link is damaged")?;
        let sig = URL_SAFE_NO_PAD.decode(sig).map_err(|_| "the link is damaged")?;
        let mut mac = self.mac();
        mac.update(&body);
        mac.verify_slice(&sig).map_err(|_| "the link was not issued by this Dealwatch")?;
        let body = String::from_utf8(body).map_err(|_| "the link is damaged")?;
        let mut parts = body.splitn(4, '|');
        let (Some(tenant), Some(expires), Some(browser), Some(by)) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err("the link is damaged");
        };
        let expires: i64 = expires.parse().map_err(|_| "the link is damaged")?;
        if now > expires {
            return Err("the link has expired: ask for a new one");
        }
        let tenant = TenantId::parse(tenant).map_err(|_| "the link is damaged")?;
        let browser = (!browser.is_empty()).then(|| browser.to_owned());
        Ok(InstallState { tenant, by: by.to_owned(), browser })
    }

    /// Slack's consent screen for `state`.
    pub fn authorize(&self, state: &str) -> String {
        let mut url = url::Url::parse(&self.authorize_url).expect("built from a valid URL");
        url.query_pairs_mut()
            .append_pair("client_id", &self.client_id)
            .append_pair("scope", SCOPES)
            .append_pair("redirect_uri", self.redirect_url.as_str())
            .append_pair("state", state);
        url.to_string()
    }
}

/// The `/slack/install` link for `tenant`, issued to admin `by`, valid for an hour.
pub fn install_link(
    installer: &Installer,
    tenant: &TenantId,
    by: &str,
    now: chrono::DateTime<chrono::Utc>,
) -> (String, chrono::DateTime<chrono::Utc>) {
    let expires = now + chrono::Duration::hours(LINK_HOURS);
    let state = installer.state(tenant, by, expires.timestamp(), None);
    let mut link = installer.redirect_url.clone();
    link.set_path(&installer.redirect_url.path().replace("/slack/oauth/callback", "/slack/install"));
    link.set_query(None);
    link.query_pairs_mut().append_pair("state", &state);
    (link.to_string(), expires)
}

#[derive(Debug, serde::Deserialize)]
pub struct InstallQuery {
    state: Option<String>,
}

fn page(status: StatusCode, title: &str, text: &str) -> Response {
    let escape = |s: &str| s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;");
    let body = format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>{t}</title></head>\
         <body style=\"font-family:sans-serif;max-width:40em;margin:3em auto\"><h1>{t}</h1><p>{x}</p></body></html>",
        t = escape(title),
        x = escape(text)
    );
    (status, Html(body)).into_response()
}

/// `GET /slack/install?state=…`: the link is used up, and the browser goes on to Slack's
/// consent screen with a state only it can bring back (its cookie holds the other half).
pub async fn install(State(state): State<SlackApp>, Query(q): Query<InstallQuery>) -> Response {
    let Some(installer) = state.slack.installer.as_ref() else {
        return page(StatusCode::NOT_FOUND, "Not available", "Installing through Slack is not configured here.");
    };
    let Some(link_state) = q.state else {
        return page(StatusCode::BAD_REQUEST, "Install link needed", "Ask a Dealwatch admin for an install link.");
    };
    let now = state.now();
    let link = match installer.check_state(&link_state, now.timestamp()) {
        Ok(link) if link.browser.is_none() => link,
        Ok(_) => return page(StatusCode::BAD_REQUEST, "This install link does not work", "the link is damaged"),
        Err(why) => return page(StatusCode::BAD_REQUEST, "This install link does not work", why),
    };
    let digest = hex::encode(sha2::Sha256::digest(link_state.as_bytes()));
    let kept = now + chrono::Duration::hours(LINK_HOURS + 1);
    match state.store.claim_once("slack-install-link", &digest, kept, now).await {
        Ok(true) => {}
        Ok(false) => {
            return page(
                StatusCode::BAD_REQUEST,
                "This install link was used already",
                "An install link works once. Ask a Dealwatch admin for a new one.",
            );
        }
        Err(e) => {
            tracing::error!(error = %e, "recording an install link's use");
            return page(
                StatusCode::SERVICE_UNAVAILABLE,
                "Try again",
                "Something went wrong on our side; try the link again in a minute.",
            );
        }
    }
    let browser = uuid::Uuid::new_v4().simple().to_string();
    let expires = now + chrono::Duration::minutes(CONSENT_MINUTES);
    let consent = installer.state(&link.tenant, &link.by, expires.timestamp(), Some(&browser));
    let secure = if installer.redirect_url.scheme() == "https" { "; Secure" } else { "" };
    let cookie =
        format!("{COOKIE}={browser}; Path=/slack; Max-Age={}; HttpOnly; SameSite=Lax{secure}", CONSENT_MINUTES * 60);
    (StatusCode::FOUND, [(header::LOCATION, installer.authorize(&consent)), (header::SET_COOKIE, cookie)])
        .into_response()
}

#[derive(Debug, serde::Deserialize)]
pub struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
}

/// The install cookie's value in a request's `Cookie` headers.
fn cookie(headers: &axum::http::HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value.trim().to_owned())
}

/// `GET /slack/oauth/callback`: exchanges the code and stores the workspace's sealed token.
pub async fn callback(
    State(state): State<SlackApp>,
    headers: axum::http::HeaderMap,
    Query(q): Query<CallbackQuery>,
) -> Response {
    let Some(installer) = state.slack.installer.as_ref() else {
        return page(StatusCode::NOT_FOUND, "Not available", "Installing through Slack is not configured here.");
    };
    if let Some(error) = q.error {
        // The installer pressed Cancel, or Slack refused.
        return page(StatusCode::BAD_REQUEST, "Not installed", &format!("Slack said: {error}. Nothing was changed."));
    }
    let (Some(code), Some(link_state)) = (q.code, q.state) else {
        return page(StatusCode::BAD_REQUEST, "Not installed", "Slack's answer lacks its code or state.");
    };
    let consent = match installer.check_state(&link_state, state.now().timestamp()) {
        Ok(t) => t,
        Err(why) => return page(StatusCode::BAD_REQUEST, "Not installed", why),
    };
    // The browser that opened the install link, and only it, may finish the install (the
    // state is in the URL for anyone to see; the cookie is not).
    let same_browser = consent.browser.as_deref().is_some_and(|b| cookie(&headers).as_deref() == Some(b));
    if !same_browser {
        tracing::warn!(tenant = %consent.tenant, "a Slack install finished in another browser than the one that opened the link");
        return page(
            StatusCode::BAD_REQUEST,
            "Not installed",
            "This install was started in another browser. Open the install link again in this one.",
        );
    }
    let (tenant, by) = (consent.tenant, consent.by);
    match finish(&state, installer, &tenant, &by, &code).await {
        Ok(team_name) => page(
            StatusCode::OK,
            "Dealwatch is installed",
            &format!("Dealwatch now answers in {team_name}. Try /deal-risk in any channel."),
        ),
        Err(e) if matches!(e.downcast_ref::<store::StoreError>(), Some(store::StoreError::Taken(_))) => page(
            StatusCode::CONFLICT,
            "Not installed",
            "This Slack workspace is already connected to another Dealwatch tenant. Nothing was changed.",
        ),
        Err(e) => {
            tracing::error!(error = ?e, tenant = %tenant, "finishing a Slack install");
            page(StatusCode::BAD_GATEWAY, "Not installed", &format!("{e:#}. Nothing was changed; try the link again."))
        }
    }
}

async fn finish(
    state: &SlackApp,
    installer: &Installer,
    tenant: &TenantId,
    by: &str,
    code: &str,
) -> anyhow::Result<String> {
    let client = state.slack.client().context("the Slack client is not available")?;
    let request = SlackOAuthV2AccessTokenRequest::new(
        installer.client_id.clone().into(),
        installer.client_secret.expose_secret().to_owned().into(),
        code.to_owned().into(),
    )
    .with_redirect_uri(installer.redirect_url.clone());
    let answer = client.oauth2_access(&request).await.map_err(|e| anyhow::anyhow!("Slack refused the code ({e})"))?;
    let team = answer.team.id.to_string();
    let team_name = answer.team.name.clone().unwrap_or_else(|| team.clone());
    let installation = SlackInstallation {
        team_id: team.clone(),
        tenant: tenant.clone(),
        team_name: team_name.clone(),
        bot_user_id: answer.bot_user_id.as_ref().map(ToString::to_string),
        scopes: answer.scope.to_string(),
        token_sealed: installer.seal(&team, answer.access_token.value())?,
        installed_by: Some(by.to_owned()),
        installed_at: state.now(),
    };
    state.store.save_slack_installation(&installation).await?;
    let entry = store::AuditEntry {
        at: state.now(),
        actor: by.to_owned(),
        action: "slack.install".into(),
        target: Some(team.clone()),
        details: Some(serde_json::json!({ "team_name": team_name, "scopes": installation.scopes })),
        request_id: None,
    };
    state.audit.now(tenant, entry).await.context("logging the installation")?;
    let web = super::workspace::Web { client, token: SlackApiToken::new(answer.access_token.clone()) };
    state
        .slack
        .directory
        .remember(super::workspace::Workspace { team_id: team, tenant: tenant.clone(), web: Some(web) })
        .await;
    Ok(team_name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn installer() -> Installer {
        let s = settings::Slack {
            client_id: Some("123.456".into()),
            client_secret: Some("shh".to_owned().into()),
            redirect_url: Some("https://dw.example.com/slack/oauth/callback".into()),
            token_key: Some(base64::engine::general_purpose::STANDARD.encode([7u8; 32]).into()),
            ..Default::default()
        };
        Installer::new(&s).expect("valid").expect("configured")
    }

    #[test]
    fn a_sealed_token_opens_only_with_its_key_and_workspace() {
        let i = installer();
        let sealed = i.seal("T1", "xoxb-secret").expect("seal");
        assert!(!sealed.contains("xoxb"), "{sealed}");
        assert_ne!(sealed, i.seal("T1", "xoxb-secret").expect("seal"), "a fresh nonce each time");
        assert_eq!(i.unseal("T1", &sealed).expect("unseal"), "xoxb-secret");
        assert!(i.unseal("T2", &sealed).is_err(), "bound to its workspace");
        let mut other = installer();
        other.key = [8u8; 32];
        assert!(other.unseal("T1", &sealed).is_err(), "another key");
        assert!(i.unseal("T1", "v1.AAAA").is_err());
    }

    #[test]
    fn an_install_state_is_signed_and_expires() {
        let i = installer();
        let tenant = TenantId::parse("acme").expect("tenant");
        let state = i.state(&tenant, "admin", 1_000, None);
        let named = InstallState { tenant: tenant.clone(), by: "admin".to_owned(), browser: None };
        assert_eq!(i.check_state(&state, 999), Ok(named.clone()));
        assert!(i.check_state(&state, 1_001).is_err_and(|e| e.contains("expired")));
        let bound = i.state(&tenant, "ad|min", 1_000, Some("b123"));
        let browser = InstallState { by: "ad|min".to_owned(), browser: Some("b123".to_owned()), ..named };
        assert_eq!(i.check_state(&bound, 999), Ok(browser));
        let forged = i.state(&TenantId::parse("other").expect("tenant"), "admin", 1_000, None);
        let (body, _) = forged.split_once('.').expect("dot");
        let (_, sig) = state.split_once('.').expect("dot");
        assert!(i.check_state(&format!("{body}.{sig}"), 0).is_err_and(|e| e.contains("not issued")));
        let url = i.authorize(&state);
        assert!(url.starts_with("https://slack.com/oauth/v2/authorize?client_id=123.456&scope=commands"), "{url}");
        let (link, _) = install_link(&i, &tenant, "admin", chrono::Utc::now());
        assert!(link.starts_with("https://dw.example.com/slack/install?state="), "{link}");
    }

    #[test]
    fn installing_needs_a_secret_a_key_of_32_bytes_and_a_redirect() {
        let base = settings::Slack { client_id: Some("1".into()), ..Default::default() };
        assert!(Installer::new(&base).is_err_and(|e| e.to_string().contains("client_secret")));
        let short = settings::Slack {
            client_secret: Some("s".to_owned().into()),
            token_key: Some(base64::engine::general_purpose::STANDARD.encode([1u8; 16]).into()),
            redirect_url: Some("https://x/slack/oauth/callback".into()),
            ..base
        };
        assert!(Installer::new(&short).is_err_and(|e| e.to_string().contains("16 bytes")));
        assert!(Installer::new(&settings::Slack::default()).expect("ok").is_none());
    }
}
