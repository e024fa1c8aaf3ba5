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

use crate::resources::LoadedMapping;
use crate::store::TenantId;

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
pub async fn pass(
    store: &dyn crate::store::Store,
    connection: &Connection,
    mode: sync::Mode,
    texts: &engine::texts::Texts,
    channels: &[String],
    now: chrono::DateTime<chrono::Utc>,
) -> anyhow::Result<Pass> {
    let sync = sync::run(store, connection, mode, texts, channels, now).await?;
    let tasks =
        if connection.settings.write_back { tasks::write_queued(store, connection).await? } else { Default::default() };
    Ok(Pass { sync, tasks })
}

/// One tenant's org, its settings and mapping.
#[derive(Debug)]
pub struct Connection {
    pub tenant: TenantId,
    pub org: client::Org,
    pub mapping: LoadedMapping,
    pub settings: crate::config::SalesforceOrg,
}

/// Every configured org, by tenant.
#[derive(Debug, Default)]
pub struct Orgs {
    by_tenant: BTreeMap<TenantId, Arc<Connection>>,
}

impl Orgs {
    /// The orgs of `[salesforce.tenants]`; a config that cannot work is refused at start-up.
    pub fn new(settings: &crate::config::Settings) -> anyhow::Result<Orgs> {
        let mut by_tenant = BTreeMap::new();
        for (name, cfg) in &settings.salesforce.tenants {
            let tenant = TenantId::parse(name)
                .map_err(|e| anyhow::anyhow!("[salesforce.tenants.{name}]: {name:?} is not a tenant id: {e}"))?;
            let org = client::Org::new(name, cfg)?;
            let mapping = crate::resources::load_mapping(Some(&cfg.mapping))
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
