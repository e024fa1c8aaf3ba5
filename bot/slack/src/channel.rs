//! Alerts as direct messages from the bot or posts to a routed channel, through Slack's Web API
//! (`chat.postMessage` through slack-morphism); a message carries its alert id in its metadata,
//! so a sender that takes over a crashed one asks `conversations.history` before it resends.

use std::sync::Arc;

use anyhow::Context;
use secrecy::{ExposeSecret, SecretString};
use slack_morphism::errors::SlackClientError;
use slack_morphism::prelude::*;

use alerts::Alert;
use alerts::channels::{Address, Channel, Delivered, SendError};
use alerts::templates::Message;

type Connector = hyper_rustls::HttpsConnector<hyper_util::client::legacy::connect::HttpConnector>;

/// Direct messages from the bot, through Slack's Web API.
#[derive(Debug)]
pub struct SlackChannel {
    client: Arc<SlackWebClient>,
    token: SlackApiToken,
}

/// A Slack Web API client for `api_url` (`https://slack.com/api`; a fake's in tests).
pub fn slack_client(api_url: &str) -> anyhow::Result<Arc<SlackWebClient>> {
    let parsed = url::Url::parse(api_url).with_context(|| format!("[slack] api_url {api_url:?} is not a URL"))?;
    let loopback = parsed.host_str().is_some_and(|h| h == "127.0.0.1" || h == "localhost" || h == "[::1]");
    anyhow::ensure!(
        parsed.scheme() == "https" || loopback,
        "[slack] api_url must be https:// (plain http only to a local test server)"
    );
    alerts::channels::install_crypto_provider();
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_native_roots()
        .context("loading the system's root certificates for Slack")?
        .https_or_http()
        .enable_http1()
        .enable_http2()
        .build();
    let connector = SlackClientHyperConnector::with_connector(https).with_slack_api_url(api_url.trim_end_matches('/'));
    Ok(Arc::new(SlackClient::new(connector)))
}

/// The Web API client type both the channel and the bot use.
pub type SlackWebClient = SlackClient<SlackClientHyperConnector<Connector>>;

/// The metadata event type our messages carry.
const EVENT_TYPE: &str = "dealwatch_alert";

impl SlackChannel {
    /// A client for the Web API at `api_url` (`https://slack.com/api`; a fake's in tests).
    pub fn new(api_url: &str, token: &SecretString) -> anyhow::Result<Self> {
        Ok(Self {
            client: slack_client(api_url)?,
            token: SlackApiToken::new(SlackApiTokenValue::new(token.expose_secret().to_owned())),
        })
    }

    /// The Slack id to post to: a user's (Slack delivers to the app's direct message with
    /// them) or a shared channel's.
    fn slack_id(to: &Address) -> Result<String, SendError> {
        to.on("slack", "Slack id").map(str::to_owned)
    }

    /// The conversation our messages to `to` are in: the channel itself, or the direct message.
    async fn conversation(
        session: &SlackClientSession<'_, SlackClientHyperConnector<Connector>>,
        to: &Address,
    ) -> Result<SlackChannelId, SendError> {
        let id = Self::slack_id(to)?;
        if to.shared {
            return Ok(SlackChannelId::new(id));
        }
        let request = SlackApiConversationsOpenRequest::new().with_users(vec![SlackUserId::new(id)]);
        Ok(session.conversations_open(&request).await.map_err(slack_error)?.channel.id)
    }
}

/// Uploads a file to a conversation the way Slack asks (files.getUploadURLExternal, the
/// upload itself, files.completeUploadExternal).
async fn upload(
    session: &SlackClientSession<'_, SlackClientHyperConnector<Connector>>,
    channel: &SlackChannelId,
    file: &alerts::templates::Attachment,
) -> Result<(), SlackClientError> {
    let target = session
        .get_upload_url_external(&SlackApiFilesGetUploadUrlExternalRequest::new(
            file.filename.clone(),
            file.bytes.len(),
        ))
        .await?;
    session
        .files_upload_via_url(&SlackApiFilesUploadViaUrlRequest::new(
            target.upload_url,
            file.bytes.clone(),
            file.content_type.clone(),
        ))
        .await?;
    let complete = SlackApiFilesComplete::new(target.file_id).with_title(file.filename.clone());
    session
        .files_complete_upload_external(
            &SlackApiFilesCompleteUploadExternalRequest::new(vec![complete]).with_channel_id(channel.clone()),
        )
        .await?;
    Ok(())
}

/// Slack's answers as retry decisions: HTTP 5xx, 429 and network trouble are worth another
/// try; an API error (`invalid_auth`, `channel_not_found`, …) is not, except Slack's own
/// transient codes.
pub(crate) fn slack_error(e: SlackClientError) -> SendError {
    match e {
        SlackClientError::RateLimitError(r) => {
            SendError::Transient { reason: "Slack rate limit (429)".into(), retry_after: r.retry_after }
        }
        SlackClientError::HttpError(h) if h.status_code.is_server_error() => {
            SendError::transient(format!("Slack answered {}", h.status_code))
        }
        SlackClientError::HttpError(h) => SendError::Permanent(format!("Slack answered {}", h.status_code)),
        SlackClientError::ApiError(a)
            if matches!(
                a.code.as_str(),
                "internal_error" | "fatal_error" | "service_unavailable" | "request_timeout" | "ratelimited"
            ) =>
        {
            SendError::transient(format!("Slack error {}", a.code))
        }
        SlackClientError::ApiError(a) => SendError::Permanent(format!("Slack error {}", a.code)),
        other => SendError::transient(format!("calling Slack: {other}")),
    }
}

#[async_trait::async_trait]
impl Channel for SlackChannel {
    fn name(&self) -> &'static str {
        "slack"
    }

    async fn send(&self, to: &Address, alert: &Alert, message: &Message) -> Result<Delivered, SendError> {
        let target = Self::slack_id(to)?;
        let blocks: Vec<SlackBlock> = serde_json::from_value(message.blocks.clone())
            .map_err(|e| SendError::Permanent(format!("the Block Kit template gave blocks Slack cannot take: {e}")))?;
        let metadata = SlackMessageMetadata {
            event_type: EVENT_TYPE.into(),
            event_payload: Some([("alert_id".to_owned(), alert.alert_id.clone())].into_iter().collect()),
        };
        let content =
            SlackMessageContent::new().with_text(message.slack_text()).with_blocks(blocks).with_metadata(metadata);
        let request = SlackApiChatPostMessageRequest::new(SlackChannelId::new(target), content);
        let session = self.client.open_session(&self.token);
        let response = session.chat_post_message(&request).await.map_err(slack_error)?;
        // Files (the weekly chart) follow the message into the same conversation. The message
        // is what counts: a failed upload is logged, not retried (a retry would find the
        // message delivered and stop there anyway).
        for file in &message.attachments {
            if let Err(e) = upload(&session, &response.channel, file).await {
                tracing::warn!(alert_id = %alert.alert_id, file = %file.filename, error = %e, "uploading to Slack failed");
            }
        }
        Ok(Delivered { external_id: Some(format!("{}:{}", response.channel, response.ts)) })
    }

    async fn find(&self, to: &Address, alert: &Alert) -> Result<Option<Delivered>, SendError> {
        let session = self.client.open_session(&self.token);
        let dm = Self::conversation(&session, to).await?;
        // Messages since the alert was raised (less a minute of clock skew), with metadata.
        let oldest = (alert.created_at - chrono::Duration::minutes(1)).timestamp();
        let mut cursor: Option<SlackCursorId> = None;
        loop {
            let mut request = SlackApiConversationsHistoryRequest::new()
                .with_channel(dm.clone())
                .with_oldest(SlackTs::new(format!("{oldest}.000000")))
                .with_include_all_metadata(true)
                .with_limit(200);
            if let Some(c) = cursor.take() {
                request = request.with_cursor(c);
            }
            let page = session.conversations_history(&request).await.map_err(slack_error)?;
            for m in &page.messages {
                let ours = m.content.metadata.as_ref().is_some_and(|md| {
                    md.event_type == EVENT_TYPE
                        && md.event_payload.as_ref().and_then(|p| p.get("alert_id")) == Some(&alert.alert_id)
                });
                if ours {
                    return Ok(Some(Delivered { external_id: Some(format!("{dm}:{}", m.origin.ts)) }));
                }
            }
            match page.response_metadata.and_then(|r| r.next_cursor).filter(|c| !c.to_string().is_empty()) {
                Some(next) => cursor = Some(next),
                None => return Ok(None),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use alerts::templates::{RENDERED, Templates, sample};

    #[test]
    fn every_alert_kind_renders_blocks_slack_morphism_reads() {
        let templates = Templates::load(None, None).expect("bundled templates");
        for kind in RENDERED {
            let m = templates.render(&sample(kind)).expect("render");
            let blocks = m.blocks.as_array().map_or(0, Vec::len);
            let parsed: Vec<slack_morphism::prelude::SlackBlock> =
                serde_json::from_value(m.blocks).unwrap_or_else(|e| panic!("{} blocks: {e}", kind.as_str()));
            assert!(blocks > 0 && parsed.len() == blocks, "{}: {blocks} blocks, {} read", kind.as_str(), parsed.len());
        }
    }
}
