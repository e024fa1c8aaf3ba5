//! Where the adapters meet the layers below them, the one module that names every adapter: the
//! CRM (Salesforce) behind the service's CRM port, the chat platforms the configuration asks for
//! (Slack, Teams, Discord) as the server's transports, the CRM's webhook, and the alert sender
//! with each platform's channel.

use std::sync::Arc;

use anyhow::Context as _;
use engine::texts::Texts;
use secrecy::SecretString;
use service::Services;
use service::chat::transport::Transport;
use settings::Settings;
use store::{Store, TenantId};

use crate::alerts::channels::Channel;
use crate::alerts::deliver::Sender;

/// The tenants' Salesforce orgs, as `[salesforce.tenants]` configure them.
pub fn orgs(settings: &Settings) -> anyhow::Result<Arc<salesforce::Orgs>> {
    Ok(Arc::new(salesforce::Orgs::new(settings).context("configuring Salesforce ([salesforce])")?))
}

/// The services, with the configured CRM behind their CRM port.
pub fn services(
    settings: Settings,
    store: Arc<dyn Store>,
    texts: Texts,
) -> anyhow::Result<(Services, Arc<salesforce::Orgs>)> {
    let orgs = orgs(&settings)?;
    let services = Services::new(settings, store, texts, orgs.clone())?;
    Ok((services, orgs))
}

/// The chat platforms `services.settings` configure, each built once (a platform not configured
/// is absent; Slack is always present, answering only signed requests). A new platform is one
/// line here, beside its crate, its templates and its config section.
pub fn transports(services: &Services) -> anyhow::Result<Vec<Arc<dyn Transport>>> {
    let settings = &services.settings;
    let mut transports: Vec<Arc<dyn Transport>> = vec![Arc::new(slack::Slack::new(services)?)];
    if let Some(teams) = teams::Teams::configured(settings, services.store.clone(), services.clock.clone())? {
        transports.push(Arc::new(teams));
    }
    if let Some(discord) = discord::Discord::configured(settings)? {
        transports.push(Arc::new(discord));
    }
    Ok(transports)
}

/// The server's state with every adapter: what `dealwatch serve` runs (and the tests).
pub fn app_state(
    settings: Settings,
    store: Arc<dyn Store>,
    texts: Texts,
    ready_tenant: Option<TenantId>,
) -> anyhow::Result<server::AppState> {
    Ok(wired(settings, store, texts, ready_tenant)?.0)
}

/// The same, with the Salesforce orgs it holds (a test syncs through them).
pub fn wired(
    settings: Settings,
    store: Arc<dyn Store>,
    texts: Texts,
    ready_tenant: Option<TenantId>,
) -> anyhow::Result<(server::AppState, Arc<salesforce::Orgs>)> {
    let (services, orgs) = services(settings, store, texts)?;
    let transports = transports(&services).context("configuring the chat platforms")?;
    let doc = <salesforce::webhook::WebhookDoc as utoipa::OpenApi>::openapi();
    let webhook = (salesforce::webhook::routes(orgs.clone()), doc);
    let state = server::AppState::new(services, server::Adapters { transports, routes: vec![webhook] }, ready_tenant)?;
    Ok((state, orgs))
}

/// The alert sender the configuration describes, for the command line: each chat platform's
/// alert channel, without the rest of its adapter.
pub fn sender(settings: &Settings, store: Arc<dyn Store>) -> anyhow::Result<Sender> {
    let mut platforms: Vec<Arc<dyn Channel>> = Vec::new();
    if let Some(token) = &settings.slack.bot_token {
        platforms.push(Arc::new(slack::channel::SlackChannel::new(&settings.slack.api_url, token)?));
    }
    if let Some(teams) = teams::Teams::configured(settings, store.clone(), Arc::new(service::SystemClock))? {
        platforms.extend(teams.channel());
    }
    if let Some(discord) = discord::Discord::configured(settings)? {
        platforms.extend(discord.channel());
    }
    Sender::from_settings(settings, store, platforms)
}

/// The same, delivering to the chat platforms through `transports` already built (the server's,
/// so a platform's client and its token are made once).
pub fn sender_with(
    settings: &Settings,
    store: Arc<dyn Store>,
    transports: &[Arc<dyn Transport>],
) -> anyhow::Result<Sender> {
    let platforms = transports.iter().filter_map(|t| t.channel()).collect();
    Sender::from_settings(settings, store, platforms)
}

/// The scheduler with the service's jobs, the CRM's sync among them.
pub fn scheduler(
    settings: &Settings,
    store: Arc<dyn Store>,
    texts: Texts,
    crm: Arc<dyn service::crm::Crm>,
    threads: usize,
) -> service::jobs::Scheduler {
    let work =
        service::jobs::ServiceJobs { store: store.clone(), texts, channels: settings.alert_channels(), threads, crm };
    service::jobs::Scheduler::new(store, Arc::new(work))
}

/// `dealwatch serve` (and `demo --serve`): the server with every adapter, alert delivery and the
/// jobs as configured. For the demo, a token secret is made for this run when none is set.
pub async fn serve(
    mut settings: Settings,
    store: Arc<dyn Store>,
    texts: Texts,
    demo: Option<TenantId>,
) -> anyhow::Result<()> {
    let demo = match (demo, settings.auth.hs256_secrets.first()) {
        (Some(tenant), None) => {
            // No secret configured: the demo makes one for this run only.
            let secret =
                SecretString::from(format!("{}{}", uuid::Uuid::new_v4().simple(), uuid::Uuid::new_v4().simple()));
            settings.auth.hs256_secrets.push(secret.clone());
            Some((tenant, secret))
        }
        (Some(tenant), Some(secret)) => Some((tenant, secret.clone())),
        (None, _) => None,
    };
    let state = app_state(settings, store.clone(), texts.clone(), demo.as_ref().map(|(t, _)| t.clone()))?;
    let settings = &state.settings;
    let sender = if settings.alerts.deliver {
        Some(sender_with(settings, store.clone(), &state.transports).context("setting up alert delivery")?)
    } else {
        None
    };
    // Jobs (a retrain fits a model) leave a core to the requests being served.
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).saturating_sub(1).max(1);
    let jobs = settings.jobs.run.then(|| scheduler(settings, store, texts, state.crm.clone(), threads));
    server::serve(state.clone(), server::Background { sender, jobs }, demo).await
}
