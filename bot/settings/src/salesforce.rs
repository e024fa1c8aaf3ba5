//! `[salesforce]`: the orgs tenants sync with, how Dealwatch signs in and what it writes.

use std::path::PathBuf;

use secrecy::SecretString;
use serde::{Deserialize, Serialize};

use crate::{redacted, redacted_option};

/// The shortest Salesforce webhook secret accepted.
pub const MIN_WEBHOOK_SECRET: usize = 16;

/// Salesforce orgs, one per tenant that syncs with one: `[salesforce.tenants.acme]`.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct Salesforce {
    #[serde(default)]
    pub tenants: std::collections::BTreeMap<String, SalesforceOrg>,
}

/// How Dealwatch signs in to a tenant's Salesforce org and what it does there.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default)]
pub struct SalesforceOrg {
    /// Where tokens come from: `https://login.salesforce.com`, `https://test.salesforce.com`
    /// (sandboxes) or the org's My Domain (`https://acme.my.salesforce.com`, required for the
    /// client-credentials flow).
    pub login_url: String,
    /// The REST API version, `66.0`.
    pub api_version: String,
    /// `jwt` (OAuth 2.0 JWT bearer: the connected app's certificate signs an assertion for
    /// `username`) or `client_credentials` (the connected app's run-as user).
    pub auth: SalesforceAuth,
    /// The connected app's consumer key.
    pub client_id: String,
    /// JWT bearer: the integration user's Salesforce username.
    pub username: Option<String>,
    /// JWT bearer: the private key (PEM) matching the certificate uploaded to the connected
    /// app, inline, or in `private_key_file`.
    #[serde(serialize_with = "redacted_option")]
    pub private_key: Option<SecretString>,
    pub private_key_file: Option<PathBuf>,
    /// Client credentials: the connected app's consumer secret.
    #[serde(serialize_with = "redacted_option")]
    pub client_secret: Option<SecretString>,
    /// The field mapping the Opportunity fields go through (a bundled name or a path).
    pub mapping: String,
    /// The Salesforce user id (`005…`) Dealwatch writes as (the package's trigger does not
    /// send its changes back).
    pub integration_user_id: Option<String>,
    /// The secrets the package signs `POST /sfdc/opportunity-changed` with (its Custom Setting
    /// `Dealwatch_Settings__c.Webhook_Secret__c`); several during a rotation. None: the webhook
    /// answers 401.
    #[serde(serialize_with = "redacted")]
    pub webhook_secrets: Vec<SecretString>,
    /// Write risk fields and Tasks back onto the org.
    pub write_back: bool,
    /// More changed scores than this go through Bulk API 2.0 instead of sObject Collections.
    pub bulk_threshold: usize,
    /// Seconds a request to the org may take.
    pub timeout_seconds: u64,
    /// Deals scored at this category or above get their top recommended action as a Task
    /// (once a month per deal and action): `critical` (the default), `high`, or `off`.
    pub auto_tasks: AutoTasks,
}

/// Which deals' recommended actions become Salesforce Tasks by themselves.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AutoTasks {
    Off,
    High,
    #[default]
    Critical,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SalesforceAuth {
    #[default]
    Jwt,
    ClientCredentials,
}

impl Default for SalesforceOrg {
    fn default() -> Self {
        SalesforceOrg {
            login_url: "https://login.salesforce.com".into(),
            api_version: "66.0".into(),
            auth: SalesforceAuth::Jwt,
            client_id: String::new(),
            username: None,
            private_key: None,
            private_key_file: None,
            client_secret: None,
            mapping: "salesforce".into(),
            integration_user_id: None,
            webhook_secrets: Vec::new(),
            write_back: true,
            bulk_threshold: 2_000,
            timeout_seconds: 30,
            auto_tasks: AutoTasks::Critical,
        }
    }
}
