//! Where the adapters meet the layers below them: the alert sender with every configured chat
//! platform's channel (Slack's here, Teams' and Discord's from their transports).

use std::sync::Arc;

use crate::alerts::channels::Channel;
use crate::alerts::deliver::Sender;
use crate::chat::transport::Transport;
use crate::config::Settings;
use store::Store;

/// The alert sender the configuration describes, with the chat platforms' clients made for it.
pub fn sender(settings: &Settings, store: Arc<dyn Store>) -> anyhow::Result<Sender> {
    let transports = crate::chat::transport::configured(settings, &store)?;
    sender_with(settings, store, &transports)
}

/// The same, delivering to the chat platforms through `transports` already built (the server's,
/// so a platform's client and its token are made once).
pub fn sender_with(
    settings: &Settings,
    store: Arc<dyn Store>,
    transports: &[Arc<dyn Transport>],
) -> anyhow::Result<Sender> {
    let mut platforms: Vec<Arc<dyn Channel>> = Vec::new();
    if let Some(token) = &settings.slack.bot_token {
        platforms.push(Arc::new(crate::slack::channel::SlackChannel::new(&settings.slack.api_url, token)?));
    }
    platforms.extend(transports.iter().map(|t| t.channel()));
    Sender::from_settings(settings, store, platforms)
}
