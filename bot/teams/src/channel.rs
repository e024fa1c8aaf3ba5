//! Alerts on Teams: proactive messages through the Bot Connector. A person's alert goes into
//! their one-to-one chat with the bot (opened through the Connector when only their Teams id is
//! known, and remembered), a shared destination's into the channel it names; both need the
//! conversation reference stored when the app was installed there or first used.
//!
//! The Connector cannot be asked what it delivered, so [`Channel::find`] cannot tell: a send
//! cut off by a crash between Teams' answer and our record of it is sent again on the retry, as
//! an email is. Busy answers (429 with its `Retry-After`, 5xx) are retried by the sender with
//! backoff; a conversation Teams no longer knows is a permanent failure, and the alert goes to
//! the fallback channel.

use std::sync::Arc;

use serde_json::json;

use super::{PLATFORM, TeamsState, cards};
use alerts::Alert;
use alerts::channels::{Address, Channel, Delivered, SendError};
use alerts::templates::Message;
use store::{Conversation, TenantId};

#[derive(Debug)]
pub struct TeamsChannel {
    teams: Arc<TeamsState>,
}

impl TeamsChannel {
    pub fn new(teams: Arc<TeamsState>) -> TeamsChannel {
        TeamsChannel { teams }
    }

    /// The conversation `to` is reached in: a shared destination's channel, or the person's
    /// chat with the bot (opened now if it never was).
    async fn conversation(&self, tenant: &TenantId, to: &Address) -> Result<Conversation, SendError> {
        let id = to.on("teams", "Teams id")?;
        let read = |key: String| async move {
            self.teams.store.conversation(tenant, PLATFORM, &key).await.map_err(|e| SendError::Transient {
                reason: format!("reading Teams conversations: {e}"),
                retry_after: None,
            })
        };
        if to.shared {
            let channel = id.split(';').next().unwrap_or(id);
            return read(format!("conversation:{channel}")).await?.ok_or_else(|| {
                SendError::Permanent(format!(
                    "Dealwatch has not been added to the Teams conversation {channel}: add the app to that team or chat first"
                ))
            });
        }
        personal_chat(&self.teams, tenant, id, &to.id).await
    }
}

/// The one-to-one chat of the person with Entra object id `aad` (`who` in errors) with the bot:
/// opened through the Connector when they were only seen in a channel, and remembered.
pub(super) async fn personal_chat(
    teams: &TeamsState,
    tenant: &TenantId,
    aad: &str,
    who: &str,
) -> Result<Conversation, SendError> {
    let stored = teams
        .store
        .conversation(tenant, PLATFORM, &format!("user:{aad}"))
        .await
        .map_err(|e| SendError::Transient { reason: format!("reading Teams conversations: {e}"), retry_after: None })?;
    let Some(mut person) = stored else {
        return Err(SendError::Permanent(format!(
            "{who} has not used Dealwatch in Teams yet, so there is no chat to write to: they open the app once"
        )));
    };
    if person.conversation_id.is_empty() {
        let user = person.user_id.clone().unwrap_or_default();
        person.conversation_id =
            teams.connector.create_conversation(&person.service_url, &person.org_id, &user).await?;
        person.updated_at = teams.clock.now();
        if let Err(e) = teams.store.save_conversation(tenant, &person).await {
            tracing::warn!(error = %e, "storing a Teams chat opened with a person");
        }
    }
    Ok(person)
}

#[async_trait::async_trait]
impl Channel for TeamsChannel {
    fn name(&self) -> &'static str {
        PLATFORM
    }

    async fn send(&self, to: &Address, alert: &Alert, message: &Message) -> Result<Delivered, SendError> {
        let tenant =
            to.tenant.as_ref().ok_or_else(|| SendError::Permanent(format!("recipient {} has no tenant", to.id)))?;
        let conversation = self.conversation(tenant, to).await?;
        let card = self
            .teams
            .cards
            .alert(alert, message, None)
            .map_err(|e| SendError::Permanent(format!("the Teams alert card did not render: {e:#}")))?;
        let mut activity = cards::activity(card, &message.subject);
        activity["from"] = json!({ "id": self.teams.connector.bot_id() });
        activity["conversation"] = json!({ "id": conversation.conversation_id });
        // The alert id travels with the message, for whoever reads the conversation's history.
        activity["channelData"] = json!({ "dealwatch": { "alert_id": alert.alert_id } });
        let posted = self
            .teams
            .connector
            .send(&conversation.service_url, &conversation.conversation_id, None, &activity)
            .await?;
        metrics::counter!("teams_alerts_sent_total", "kind" => alert.kind.as_str()).increment(1);
        Ok(Delivered { external_id: Some(format!("{}:{}", conversation.conversation_id, posted.activity_id)) })
    }

    async fn find(&self, _to: &Address, _alert: &Alert) -> Result<Option<Delivered>, SendError> {
        // The Connector has no read of a conversation's history for bots: it cannot tell.
        Ok(None)
    }
}
