//! Where the adapters meet the layers below them, the one module that names every adapter: the
//! chat platforms the configuration asks for, and the alert sender with each platform's channel.

use std::sync::Arc;

use crate::alerts::channels::Channel;
use crate::alerts::deliver::Sender;
use crate::chat::transport::Transport;
use crate::config::Settings;
use store::Store;

/// The adapters `settings` configure, each built once (an adapter not configured is absent).
/// A new platform is one line here, beside its module, its templates and its config section.
pub fn transports(settings: &Settings, store: &Arc<dyn Store>) -> anyhow::Result<Vec<Arc<dyn Transport>>> {
    let mut transports: Vec<Arc<dyn Transport>> = Vec::new();
    if let Some(teams) = crate::teams::Teams::configured(settings, store.clone())? {
        transports.push(Arc::new(teams));
    }
    if let Some(discord) = crate::discord::Discord::configured(settings)? {
        transports.push(Arc::new(discord));
    }
    Ok(transports)
}

/// The alert sender the configuration describes, with the chat platforms' clients made for it.
pub fn sender(settings: &Settings, store: Arc<dyn Store>) -> anyhow::Result<Sender> {
    let transports = transports(settings, &store)?;
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
