//! Dealwatch's service layer: what every way in (the REST API, each chat platform, the jobs)
//! shares, and nothing that speaks HTTP to the outside world.
//!
//! [`Services`] holds what a request or a job needs (the store, the settings, the texts, each
//! tenant's engine, the question reader, the audit log, the CRM port and the clock); the
//! use-cases ([`feedback`], [`preferences`]) are the business operations, returning a
//! [`ServiceError`] that each caller maps to its own answer (the HTTP layer to a status code).
//! The chat core ([`chat`]) reads commands, questions and clicks and answers them as typed
//! values; a platform's adapter implements [`chat::transport::Transport`] around it. The
//! scheduler ([`jobs`]) runs the tenants' jobs. Adapters live in the crates above this one and
//! reach the CRM through the [`crm::Crm`] port.

pub use ::alerts;
pub use settings as config;

pub mod audit;
pub mod auth;
pub mod chat;
pub mod clock;
pub mod crm;
pub mod error;
pub mod feedback;
pub mod jobs;
pub mod names;
pub mod preferences;
pub mod report;
pub mod resources;
pub mod tenants;
pub mod workflow;

use std::sync::Arc;

use engine::texts::Texts;
use settings::Settings;
use store::Store;

pub use clock::{Clock, SystemClock};
pub use error::{ServiceError, ServiceResult};

/// What requests, chat messages and jobs need, built once at start-up and cheap to clone.
#[derive(Clone, Debug)]
pub struct Services(Arc<Inner>);

#[derive(Debug)]
pub struct Inner {
    pub settings: Settings,
    pub store: Arc<dyn Store>,
    pub texts: Texts,
    pub audit: audit::AuditWriter,
    /// Each tenant's engine (dataset, model, similar deals), rebuilt when its data changes.
    pub cache: tenants::TenantCache,
    /// Wakes the alert sender when a request raised alerts.
    pub alerts_raised: Arc<tokio::sync::Notify>,
    /// Reads and answers plain-English questions.
    pub questions: Arc<chat::ask::Questions>,
    /// The tenants' CRM connections (the write-back of follow-up tasks, the sync jobs).
    pub crm: Arc<dyn crm::Crm>,
    /// Where the time comes from (the system's; a fixed one in tests).
    pub clock: Arc<dyn Clock>,
}

impl std::ops::Deref for Services {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

impl Services {
    /// Checks `settings` and builds what they describe, on the system clock. Starts the audit
    /// writer, so it runs on a tokio runtime.
    pub fn new(
        settings: Settings,
        store: Arc<dyn Store>,
        texts: Texts,
        crm: Arc<dyn crm::Crm>,
    ) -> anyhow::Result<Self> {
        Self::with_clock(settings, store, texts, crm, Arc::new(SystemClock))
    }

    /// The same, with time from `clock`.
    pub fn with_clock(
        settings: Settings,
        store: Arc<dyn Store>,
        texts: Texts,
        crm: Arc<dyn crm::Crm>,
        clock: Arc<dyn Clock>,
    ) -> anyhow::Result<Self> {
        auth::install_crypto_provider();
        settings.check()?;
        let questions = Arc::new(chat::ask::Questions::configured(&settings)?);
        Ok(Services(Arc::new(Inner {
            audit: audit::AuditWriter::start(store.clone()),
            cache: tenants::TenantCache::default(),
            alerts_raised: Arc::new(tokio::sync::Notify::new()),
            settings,
            store,
            texts,
            questions,
            crm,
            clock,
        })))
    }

    /// The time now, from the injected clock.
    pub fn now(&self) -> chrono::DateTime<chrono::Utc> {
        self.clock.now()
    }
}
