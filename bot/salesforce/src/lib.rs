//! Salesforce: Opportunities read into the store through the tenant's field mapping, rescored,
//! and the risk fields written back onto them. Only this module knows Salesforce's JSON.
//!
//! - [`client`]: one org's REST API (sign-in, SOQL paging, sObject Collections, limits, errors).
//! - [`sync`]: the SOQL a mapping needs, records flattened into the mapping's columns, the
//!   import, the rescore, the write-back of changed scores.
//!
//! An org is configured per tenant in `[salesforce.tenants.<tenant>]`.

pub mod client;
pub mod sync;
pub mod tasks;
pub mod webhook;

use std::collections::BTreeMap;
use std::sync::Arc;

use service::resources::LoadedMapping;
use store::TenantId;

/// The fields Dealwatch writes onto an Opportunity, with their Salesforce field types: the
/// package in `sfdc-package/` must define each with that type.
pub const WRITTEN_FIELDS: [(&str, &str); 5] = [
    ("Risk_Score__c", "Number"),
    ("Risk_Category__c", "Picklist"),
    ("Risk_Factors__c", "LongTextArea"),
    ("Risk_Updated__c", "DateTime"),
    ("Win_Probability__c", "Percent"),
];

/// What a scheduled (or command-line) pass did: the sync, then the queued follow-up tasks.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Pass {
    pub sync: sync::Report,
    pub tasks: tasks::TaskReport,
}

/// A sync pass for `connection`'s tenant, then its queued tasks (when it writes back).
///
/// A schema problem (a field the mapping or the write-back names is missing, the integration
/// user lacks a permission, the sign-in is refused) halts the tenant's sync: the halt is kept
/// in the store and the tenant's admins are alerted at once. Scheduled incremental passes then
/// skip; the nightly full pass and `dealwatch sync` try again, and the first pass that
/// succeeds lifts the halt.
pub async fn pass(
    store: &dyn store::Store,
    connection: &Connection,
    mode: sync::Mode,
    texts: &engine::texts::Texts,
    channels: &[String],
    now: chrono::DateTime<chrono::Utc>,
) -> anyhow::Result<Pass> {
    let tenant = &connection.tenant;
    let done = async {
        let sync = sync::run(store, connection, mode, texts, channels, now).await?;
        let tasks = if connection.settings.write_back {
            tasks::write_queued(store, connection).await?
        } else {
            Default::default()
        };
        anyhow::Ok(Pass { sync, tasks })
    }
    .await;
    match done {
        Ok(pass) => {
            if let Some(halt) = halted(store, tenant).await? {
                store.set_watermark(tenant, HALTED, "", now).await?;
                tracing::info!(tenant = %tenant, since = %halt.at, "the Salesforce sync resumed");
            }
            Ok(pass)
        }
        Err(e) if is_schema(&e) => {
            halt(store, tenant, &e, channels, now).await?;
            Err(e)
        }
        Err(e) => Err(e),
    }
}

/// Where the store keeps a tenant's halted sync (a `sync_watermarks` source): the [`Halt`] as
/// JSON, or empty while the sync runs.
pub const HALTED: &str = "salesforce:halted";

/// Why and since when a tenant's sync is halted.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Halt {
    pub reason: String,
    pub at: chrono::DateTime<chrono::Utc>,
}

/// The tenant's halt, if its sync is halted.
pub async fn halted(store: &dyn store::Store, tenant: &TenantId) -> anyhow::Result<Option<Halt>> {
    match store.watermark(tenant, HALTED).await?.filter(|v| !v.is_empty()) {
        None => Ok(None),
        Some(json) => Ok(Some(serde_json::from_str(&json)?)),
    }
}

/// A failure an admin must fix in the org (see [`client::SfError::is_schema`]).
pub fn is_schema(e: &anyhow::Error) -> bool {
    e.chain().any(|c| c.downcast_ref::<client::SfError>().is_some_and(client::SfError::is_schema))
}

/// Halts the tenant's sync for `e` and alerts its admins (and the routes for data-quality
/// alerts) at once, once a day while it stays halted.
pub(crate) async fn halt(
    store: &dyn store::Store,
    tenant: &TenantId,
    e: &anyhow::Error,
    channels: &[String],
    now: chrono::DateTime<chrono::Utc>,
) -> anyhow::Result<()> {
    let since = halted(store, tenant).await?.map_or(now, |h| h.at);
    let halt = Halt { reason: format!("{e:#}"), at: since };
    store.set_watermark(tenant, HALTED, &serde_json::to_string(&halt)?, now).await?;
    tracing::error!(tenant = %tenant, reason = %halt.reason, "the Salesforce sync is halted until an admin fixes the org");
    metrics::counter!("salesforce_sync_halted_total").increment(1);
    let finding = engine::alerts::InsightAlert {
        kind: engine::alerts::AlertKind::DataQuality,
        subject: "salesforce_sync".to_owned(),
        rep: None,
        facts: serde_json::json!({
            "sync": "Salesforce",
            "error": halt.reason,
            "halted_at": since.format("%Y-%m-%d %H:%M UTC").to_string(),
            "resume": format!("dealwatch sync --tenant {tenant}"),
        }),
    };
    let routing = alerts::routing::Routing::load(store, tenant, channels).await?;
    let alerts = alerts::digest::plan_urgent(&[finding], &routing, now);
    store.raise_alerts(tenant, &alerts).await?;
    Ok(())
}

/// One tenant's org, its settings and mapping.
#[derive(Debug)]
pub struct Connection {
    pub tenant: TenantId,
    pub org: client::Org,
    pub mapping: LoadedMapping,
    pub settings: settings::SalesforceOrg,
}

/// Every configured org, by tenant.
#[derive(Debug, Default)]
pub struct Orgs {
    by_tenant: BTreeMap<TenantId, Arc<Connection>>,
}

impl Orgs {
    /// The orgs of `[salesforce.tenants]`; a config that cannot work is refused at start-up.
    pub fn new(settings: &settings::Settings) -> anyhow::Result<Orgs> {
        let mut by_tenant = BTreeMap::new();
        for (name, cfg) in &settings.salesforce.tenants {
            let tenant = TenantId::parse(name)
                .map_err(|e| anyhow::anyhow!("[salesforce.tenants.{name}]: {name:?} is not a tenant id: {e}"))?;
            let org = client::Org::new(name, cfg)?;
            let mapping = service::resources::load_mapping(Some(&cfg.mapping))
                .map_err(|e| anyhow::anyhow!("[salesforce.tenants.{name}] mapping: {e:#}"))?;
            anyhow::ensure!(
                mapping.mapping.joins.is_empty(),
                "[salesforce.tenants.{name}] mapping {} joins lookup files; a Salesforce sync reads related \
                 objects through relationship fields (Account.Industry) instead",
                mapping.source
            );
            by_tenant.insert(tenant.clone(), Arc::new(Connection { tenant, org, mapping, settings: cfg.clone() }));
        }
        Ok(Orgs { by_tenant })
    }

    pub fn get(&self, tenant: &TenantId) -> Option<Arc<Connection>> {
        self.by_tenant.get(tenant).cloned()
    }

    pub fn is_empty(&self) -> bool {
        self.by_tenant.is_empty()
    }
}

/// The service's CRM port, answered by the tenants' orgs.
#[async_trait::async_trait]
impl service::crm::Crm for Orgs {
    fn writes_tasks(&self, tenant: &TenantId) -> bool {
        self.get(tenant).is_some_and(|c| c.settings.write_back)
    }

    async fn write_tasks(&self, store: &dyn store::Store, tenant: &TenantId) -> anyhow::Result<()> {
        match self.get(tenant) {
            Some(connection) => tasks::write_queued(store, &connection).await.map(drop),
            None => Ok(()),
        }
    }

    async fn sync(
        &self,
        store: &dyn store::Store,
        tenant: &TenantId,
        pass: service::crm::SyncPass<'_>,
    ) -> anyhow::Result<serde_json::Value> {
        let Some(connection) = self.get(tenant) else {
            return Ok(serde_json::json!({ "skipped": "no Salesforce org" }));
        };
        let mode = match pass.mode {
            service::crm::SyncMode::Full => sync::Mode::Full,
            service::crm::SyncMode::Incremental => sync::Mode::Incremental,
        };
        if mode == sync::Mode::Incremental
            && let Some(halt) = halted(store, tenant).await?
        {
            let why = format!("the sync is halted since {}: {}", halt.at, halt.reason);
            return Ok(serde_json::json!({ "skipped": why }));
        }
        if let Some(why) = sync::pace(connection.org.usage(), mode, pass.due) {
            tracing::warn!(tenant = %tenant, why, "a Salesforce sync waits");
            return Ok(serde_json::json!({ "skipped": why }));
        }
        let done = self::pass(store, &connection, mode, pass.texts, pass.channels, pass.now).await?;
        Ok(serde_json::to_value(done)?)
    }
}
