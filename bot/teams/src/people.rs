//! Who is writing: a Teams sender's Dealwatch tenant, user and scope (linked by the config, the
//! id stored with them, or their email in the conversation's roster), and the conversation
//! references the Connector needs to write to them later.

use std::time::Instant;

use super::{Activity, MISS_TTL, PLATFORM, TeamsState};
use service::tenants::Scope;
use store::{Conversation, TenantId, User};

/// Why a sender is not answered with data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Unknown {
    Organisation,
    User,
    Store,
}

impl Unknown {
    pub(super) fn message(&self) -> &'static str {
        match self {
            Unknown::Organisation => {
                "This Microsoft 365 organisation is not connected to Dealwatch yet: an admin adds its tenant id under [teams] tenants."
            }
            Unknown::User => {
                "I don't know you yet: ask a Dealwatch admin to link your Teams account to your CRM user (same email, or [teams] users)."
            }
            Unknown::Store => "Something went wrong on our side; please try again in a minute.",
        }
    }
}

/// Who sent `activity`: their tenant, Dealwatch user and scope.
pub(super) async fn identify(teams: &TeamsState, activity: &Activity) -> Result<(TenantId, User, Scope), Unknown> {
    let org = activity.tenant().unwrap_or_default();
    let tenant = teams.tenants.get(org).cloned().ok_or_else(|| {
        tracing::warn!(org, "a Teams activity from an organisation that is not connected");
        Unknown::Organisation
    })?;
    let store_failed = |e: store::StoreError| {
        tracing::error!(error = %e, "reading users");
        Unknown::Store
    };
    let users = teams.store.users(&tenant).await.map_err(store_failed)?;
    let aad = activity.sender();
    let found = service::chat::transport::person(&users, teams.users.of(tenant.as_str()), PLATFORM, aad).cloned();
    let user = match found {
        Some(u) => u,
        None => by_email(teams, &users, activity).await.ok_or(Unknown::User)?,
    };
    let user = service::chat::transport::remember_link(teams.store.as_ref(), &tenant, &user, PLATFORM, aad).await;
    let scope = Scope::for_user(&users, &user.user_id, user.role);
    Ok((tenant, user, scope))
}

/// The user whose email Teams has for the sender (the conversation's roster); the caller links
/// them for good by storing their Entra object id with them, so alerts can find them too.
async fn by_email(teams: &TeamsState, users: &[User], activity: &Activity) -> Option<User> {
    let aad = activity.sender().to_owned();
    if teams.misses.lock().await.get(&aad).is_some_and(|at| at.elapsed() < MISS_TTL) {
        return None;
    }
    let member = match teams.connector.member(&activity.service_url, &activity.conversation.id, &activity.from.id).await
    {
        Ok(m) => m,
        Err(e) => {
            // Busy or refused: unknown for now, asked again next time.
            tracing::warn!(error = %e, "reading a Teams member's profile");
            return None;
        }
    };
    let emails: Vec<String> = member
        .iter()
        .flat_map(|m| [m.email.clone(), m.user_principal_name.clone()])
        .flatten()
        .map(|e| e.to_ascii_lowercase())
        .collect();
    let found = users
        .iter()
        .filter(|u| u.chat_id(PLATFORM).is_none())
        .find(|u| u.email.as_deref().is_some_and(|e| emails.contains(&e.to_ascii_lowercase())));
    if found.is_none() {
        teams.misses.lock().await.insert(aad, Instant::now());
    }
    found.cloned()
}

/// Stores the conversation references the Connector needs to write to the sender later (their
/// personal chat, or the channel), once per process.
pub(super) async fn remember(teams: &TeamsState, tenant: &TenantId, activity: &Activity) {
    let org = activity.tenant().unwrap_or_default().to_owned();
    let bot = activity.recipient.as_ref().map(|r| r.id.clone());
    let mut rows = Vec::new();
    let person = activity.sender();
    if !person.is_empty() {
        let conversation = if activity.personal() { activity.conversation.id.clone() } else { String::new() };
        rows.push(Conversation {
            platform: PLATFORM.into(),
            key: format!("user:{person}"),
            conversation_id: conversation,
            service_url: activity.service_url.clone(),
            org_id: org.clone(),
            bot_id: bot.clone(),
            user_id: Some(activity.from.id.clone()),
            updated_at: teams.clock.now(),
        });
    }
    if !activity.personal() {
        // A reply thread's id ends in `;messageid=…`; the channel is what alerts go to.
        let channel = activity.conversation.id.split(';').next().unwrap_or_default().to_owned();
        rows.push(Conversation {
            platform: PLATFORM.into(),
            key: format!("conversation:{channel}"),
            conversation_id: channel,
            service_url: activity.service_url.clone(),
            org_id: org,
            bot_id: bot,
            user_id: None,
            updated_at: teams.clock.now(),
        });
    }
    for row in rows {
        let seen = (tenant.to_string(), row.key.clone(), row.conversation_id.clone(), row.service_url.clone());
        if teams.remembered.lock().await.contains(&seen) {
            continue;
        }
        // A person's chat seen in a channel only does not overwrite their personal chat.
        if row.conversation_id.is_empty() {
            let known = teams.store.conversation(tenant, PLATFORM, &row.key).await.ok().flatten();
            if known.is_some_and(|c| !c.conversation_id.is_empty()) {
                teams.remembered.lock().await.insert(seen);
                continue;
            }
        }
        match teams.store.save_conversation(tenant, &row).await {
            Ok(()) => {
                teams.remembered.lock().await.insert(seen);
            }
            Err(e) => tracing::warn!(error = %e, "storing a Teams conversation reference"),
        }
    }
}
