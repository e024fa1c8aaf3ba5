//! Alerts on Discord, through its HTTP API: a person's alert as a direct message from the bot,
//! a shared destination's into the server channel an admin routed it to (`PUT
//! /v1/alerts/routes` with `"channel": "discord"`). The weekly summary's chart goes with it as a
//! file.
//!
//! Every message carries a nonce derived from its alert id, with `enforce_nonce`, so Discord
//! itself refuses a second copy sent within minutes (a retry after a timeout); and its footer
//! names the alert id, so a sender that takes over a crashed one finds the message among the
//! channel's recent ones ([`Channel::find`]) instead of sending it again.

use std::sync::Arc;

use serenity::all::{ChannelId, CreateAttachment, MessageId, MessagePagination};
use sha2::{Digest, Sha256};

use super::{DiscordState, PLATFORM};
use alerts::Alert;
use alerts::channels::{Address, Channel, Delivered, SendError};
use alerts::templates::Message;

/// Discord's epoch (2015-01-01), for snowflakes made from times.
const DISCORD_EPOCH_MS: i64 = 1_420_070_400_000;

#[derive(Debug)]
pub struct DiscordChannel {
    discord: Arc<DiscordState>,
}

impl DiscordChannel {
    pub fn new(discord: Arc<DiscordState>) -> DiscordChannel {
        DiscordChannel { discord }
    }

    /// The channel `to`'s messages go to: the shared channel, or the direct-message channel
    /// with the person (Discord answers the same one every time).
    async fn channel_of(&self, to: &Address) -> Result<ChannelId, SendError> {
        let id = to.on("discord", "Discord id")?;
        let id: u64 = id
            .parse()
            .ok()
            .filter(|n| *n > 0)
            .ok_or_else(|| SendError::Permanent(format!("{id:?} is not a Discord id (a number)")))?;
        if to.shared {
            return Ok(ChannelId::new(id));
        }
        let body = serde_json::json!({ "recipient_id": id.to_string() });
        let dm = self
            .discord
            .http
            .create_private_channel(&body)
            .await
            .map_err(|e| sorted("opening a direct message", &e))?;
        Ok(dm.id)
    }
}

/// A nonce Discord keeps for a few minutes: at most 25 characters, the same for every attempt at
/// one alert.
pub fn nonce(alert_id: &str) -> String {
    hex::encode(Sha256::digest(alert_id.as_bytes()))[..25].to_owned()
}

/// Serenity's errors as retry decisions: 429 (with Discord's `retry_after`), 5xx and network
/// trouble are worth another try; the rest (a blocked DM, an unknown or forbidden channel) not.
pub fn sorted(what: &str, e: &serenity::Error) -> SendError {
    use serenity::http::HttpError;
    match e {
        serenity::Error::Http(HttpError::UnsuccessfulRequest(response)) => {
            let status = response.status_code.as_u16();
            let reason =
                format!("{what}: Discord answered {status} ({} {})", response.error.code, response.error.message);
            metrics::counter!("discord_api_errors_total", "status" => status.to_string()).increment(1);
            if status == 429 || status >= 500 {
                SendError::Transient { reason, retry_after: None }
            } else {
                SendError::Permanent(reason)
            }
        }
        serenity::Error::Http(HttpError::Request(_)) | serenity::Error::Io(_) => {
            SendError::Transient { reason: format!("{what}: calling Discord: {e}"), retry_after: None }
        }
        other => SendError::Transient { reason: format!("{what}: {other}"), retry_after: None },
    }
}

#[async_trait::async_trait]
impl Channel for DiscordChannel {
    fn name(&self) -> &'static str {
        PLATFORM
    }

    async fn send(&self, to: &Address, alert: &Alert, message: &Message) -> Result<Delivered, SendError> {
        let channel = self.channel_of(to).await?;
        let mut body = self
            .discord
            .messages
            .alert(alert, message)
            .map_err(|e| SendError::Permanent(format!("the Discord alert did not render: {e:#}")))?;
        body["nonce"] = nonce(&alert.alert_id).into();
        body["enforce_nonce"] = true.into();
        let files: Vec<CreateAttachment> =
            message.attachments.iter().map(|a| CreateAttachment::bytes(a.bytes.clone(), a.filename.clone())).collect();
        let sent =
            self.discord.http.send_message(channel, files, &body).await.map_err(|e| sorted("posting an alert", &e))?;
        metrics::counter!("discord_alerts_sent_total", "kind" => alert.kind.as_str()).increment(1);
        Ok(Delivered { external_id: Some(format!("{channel}:{}", sent.id)) })
    }

    async fn find(&self, to: &Address, alert: &Alert) -> Result<Option<Delivered>, SendError> {
        let channel = self.channel_of(to).await?;
        // Messages since the alert was raised (less a minute of clock skew).
        let since = (alert.created_at.timestamp_millis() - 60_000 - DISCORD_EPOCH_MS).max(1);
        let after = MessageId::new(u64::try_from(since).unwrap_or(1) << 22);
        let recent = self
            .discord
            .http
            .get_messages(channel, Some(MessagePagination::After(after)), Some(100))
            .await
            .map_err(|e| sorted("reading recent messages", &e))?;
        let ours = recent.iter().find(|m| {
            m.embeds.iter().any(|e| e.footer.as_ref().is_some_and(|f| f.text.contains(alert.alert_id.as_str())))
        });
        Ok(ours.map(|m| Delivered { external_id: Some(format!("{channel}:{}", m.id)) }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_alert_keeps_one_nonce_of_at_most_25_characters() {
        let a = nonce("0190f0e2-0000-7000-8000-000000000000");
        assert_eq!(a.len(), 25);
        assert_eq!(a, nonce("0190f0e2-0000-7000-8000-000000000000"));
        assert_ne!(a, nonce("0190f0e2-0000-7000-8000-000000000001"));
    }
}
