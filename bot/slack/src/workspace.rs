//! Which workspace a request comes from, and who sent it.
//!
//! A workspace is connected by the config (`[slack] workspaces`, with the one `bot_token`) or by
//! installing the app through OAuth (its own bot token, sealed in the store; see
//! [`super::install`]). A Slack user is the Dealwatch user mapped to them explicitly
//! (`[slack] users`, or the Slack id stored with the user), or else the user whose email
//! Slack knows for them (`users.lookupByEmail`, remembered for an hour, misses too).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use slack_morphism::prelude::*;
use tokio::sync::RwLock;

use crate::SlackApp;
use crate::channel::SlackWebClient;
use alerts::channels::SendError;
use service::tenants::Scope;
use store::{TenantId, User};

/// How long a `users.lookupByEmail` answer (found or not) is remembered.
const LOOKUP_TTL: Duration = Duration::from_secs(3600);

/// A connected workspace: its tenant and, when it has a bot token, its Web API session.
#[derive(Clone)]
pub struct Workspace {
    pub team_id: String,
    pub tenant: TenantId,
    pub web: Option<Web>,
}

/// The Web API with one workspace's bot token.
#[derive(Clone)]
pub struct Web {
    pub client: Arc<SlackWebClient>,
    pub token: SlackApiToken,
}

impl std::fmt::Debug for Web {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Web { token: [REDACTED] }")
    }
}

/// A `users.lookupByEmail` answer: the Slack user id (none: not in the workspace), and when.
type Looked = (Option<String>, Instant);

/// Workspaces installed through OAuth, as read from the store (the config's are in
/// [`super::SlackState`]); and what `users.lookupByEmail` answered.
#[derive(Default)]
pub struct Directory {
    installed: RwLock<HashMap<String, Workspace>>,
    /// (team, email) → (Slack user id or none, when asked).
    emails: RwLock<HashMap<(String, String), Looked>>,
    /// Messages waiting for a modal's answer, by response URL (see `interact`).
    waiting: RwLock<HashMap<String, (serde_json::Value, Instant)>>,
}

/// Messages kept for modal answers: at most this many, for at most an hour.
const WAITING: usize = 1000;

impl std::fmt::Debug for Directory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Directory").finish_non_exhaustive()
    }
}

impl Directory {
    pub async fn remember(&self, workspace: Workspace) {
        self.installed.write().await.insert(workspace.team_id.clone(), workspace);
    }

    /// Keeps `message` until its modal is answered.
    pub async fn keep_message(&self, url: &str, message: serde_json::Value) {
        let mut waiting = self.waiting.write().await;
        waiting.retain(|_, (_, at)| at.elapsed() < LOOKUP_TTL);
        if waiting.len() < WAITING {
            waiting.insert(url.to_owned(), (message, Instant::now()));
        }
    }

    pub async fn take_message(&self, url: &str) -> Option<serde_json::Value> {
        self.waiting.write().await.remove(url).filter(|(_, at)| at.elapsed() < LOOKUP_TTL).map(|(m, _)| m)
    }

    async fn installed(&self, team: &str) -> Option<Workspace> {
        self.installed.read().await.get(team).cloned()
    }
}

/// Why a request's sender is not answered with data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unknown {
    Workspace,
    User,
    Store,
}

impl Unknown {
    pub fn message(&self) -> &'static str {
        match self {
            Unknown::Workspace => {
                "This Slack workspace is not connected to Dealwatch yet: an admin installs the app (/slack/install) or adds it under [slack] workspaces."
            }
            Unknown::User => {
                "I don't know you yet: ask a Dealwatch admin to link your Slack account to your CRM user (same email, or [slack] users)."
            }
            Unknown::Store => "Something went wrong on our side; please try again in a minute.",
        }
    }
}

/// The workspace `team` is, if connected.
pub async fn workspace(state: &SlackApp, team: &str) -> Result<Workspace, Unknown> {
    let slack = &state.slack;
    if let Some(tenant) = slack.configured(team) {
        return Ok(Workspace { team_id: team.to_owned(), tenant: tenant.clone(), web: slack.config_web() });
    }
    if let Some(w) = slack.directory.installed(team).await {
        return Ok(w);
    }
    let installed = state.store.slack_installation(team).await.map_err(|e| {
        tracing::error!(error = %e, "reading a Slack installation");
        Unknown::Store
    })?;
    let Some(installed) = installed else {
        tracing::warn!(team, "a Slack workspace that is not connected");
        return Err(Unknown::Workspace);
    };
    let token = slack.unseal(&installed).map_err(|e| {
        tracing::error!(error = ?e, team, "a Slack installation's token cannot be unsealed");
        Unknown::Store
    })?;
    let web = slack.client().map(|client| Web { client, token });
    let w = Workspace { team_id: team.to_owned(), tenant: installed.tenant, web };
    slack.directory.remember(w.clone()).await;
    Ok(w)
}

/// Who is asking: the workspace, the Dealwatch user behind `slack_user`, and whose deals they
/// may see (from the same read of the users).
pub async fn identify(state: &SlackApp, team: &str, slack_user: &str) -> Result<(Workspace, User, Scope), Unknown> {
    identify_in(state, workspace(state, team).await?, slack_user).await
}

/// [`identify`] in a workspace already known.
pub async fn identify_in(
    state: &SlackApp,
    ws: Workspace,
    slack_user: &str,
) -> Result<(Workspace, User, Scope), Unknown> {
    let users = state.store.users(&ws.tenant).await.map_err(|e| {
        tracing::error!(error = %e, "reading users");
        Unknown::Store
    })?;
    let user = match explicit(state, &ws.tenant, &users, slack_user) {
        Some(u) => u.clone(),
        None => by_email(state, &ws, &users, slack_user).await.ok_or(Unknown::User)?.clone(),
    };
    let scope = Scope::for_user(&users, &user.user_id, user.role);
    Ok((ws, user, scope))
}

/// The user mapped to `slack_user` in the workspace's tenant, by the config or the store.
fn explicit<'a>(state: &SlackApp, tenant: &TenantId, users: &'a [User], slack_user: &str) -> Option<&'a User> {
    let configured = state.slack.users.of(tenant.as_str());
    service::chat::transport::person(users, configured, "slack", slack_user)
}

/// The user whose email Slack has for `slack_user`: each unmapped user's email is looked up
/// once an hour (`users.lookupByEmail`), until one matches.
async fn by_email<'a>(state: &SlackApp, ws: &Workspace, users: &'a [User], slack_user: &str) -> Option<&'a User> {
    let web = ws.web.as_ref()?;
    let directory = &state.slack.directory;
    for user in users.iter().filter(|u| u.chat_id("slack").is_none()) {
        let Some(email) = user.email.as_deref().map(str::to_ascii_lowercase) else { continue };
        let key = (ws.team_id.clone(), email.clone());
        let known = directory.emails.read().await.get(&key).filter(|(_, at)| at.elapsed() < LOOKUP_TTL).cloned();
        let found = match known {
            Some((found, _)) => found,
            None => {
                let request = SlackApiUsersLookupByEmailRequest::new(EmailAddress(email.clone()));
                match web.client.open_session(&web.token).users_lookup_by_email(&request).await {
                    Ok(r) => {
                        directory.emails.write().await.insert(key, (Some(r.user.id.to_string()), Instant::now()));
                        Some(r.user.id.to_string())
                    }
                    Err(e) => match crate::channel::slack_error(e) {
                        // Not in this workspace: remembered, like a hit.
                        SendError::Permanent(reason) => {
                            tracing::debug!(%reason, "users.lookupByEmail found nobody");
                            directory.emails.write().await.insert(key, (None, Instant::now()));
                            None
                        }
                        // Slack is busy or down: not remembered, and no more lookups now.
                        SendError::Transient { reason, .. } => {
                            tracing::warn!(%reason, "users.lookupByEmail failed; the sender stays unknown for now");
                            return None;
                        }
                    },
                }
            }
        };
        if found.as_deref() == Some(slack_user) {
            return Some(user);
        }
    }
    None
}
