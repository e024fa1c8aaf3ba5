//! A fake Salesforce org on 127.0.0.1, for tests: the OAuth 2.0 token endpoint (JWT bearer and
//! client credentials flows), SOQL queries over an in-memory Opportunity table (with paging,
//! relationship fields and the OpportunityHistories subquery), the Opportunity describe, sObject
//! Collections updates, Bulk API 2.0 ingest jobs (update only) and Task upserts by the
//! `Dealwatch_Key__c` external id.
//!
//! What is faithful to Salesforce (as its REST, Bulk API 2.0 and OAuth documentation describe
//! it): the paths (`/services/data/vNN.N/...`, any version accepted and recorded), the token
//! answer's fields (`access_token`, `instance_url`, `id`, `issued_at`, an HMAC-SHA256
//! `signature`), the OAuth errors (`{"error", "error_description"}`, HTTP 400), the REST errors
//! (a JSON array of `{"message", "errorCode"}`), HTTP 401 `INVALID_SESSION_ID` for a missing or
//! expired session, `Sforce-Limit-Info: api-usage=used/limit` on every answer to a signed-in call,
//! HTTP 403 `REQUEST_LIMIT_EXCEEDED` once the allowance is used up, query pages of at most 2000
//! records with a `nextRecordsUrl`, records with `attributes`, relationship fields as nested
//! objects (`null` when empty), a child subquery as a nested query result (`null` when empty),
//! `INVALID_FIELD` with the row and column of an unknown field, the Collections limit of 200
//! records and per-record `SaveResult`s in request order (`allOrNone` rolling back with
//! `ALL_OR_NONE_OPERATION_ROLLED_BACK`), Bulk API 2.0's job states (Open, UploadComplete,
//! InProgress, JobComplete, Aborted, Failed) and its result CSVs (`sf__Id`, `sf__Error` /
//! `sf__Created`; an empty cell leaves a field alone, `#N/A` clears it), and upsert answers 201
//! `created: true` then 200 `created: false`. Ids are 18 characters with Salesforce's
//! case-checksum suffix (a 15-character id is accepted and completed); SOQL keywords and field
//! names are case-insensitive and string comparisons too; the external id matches in any case.
//!
//! What is simplified: only the SOQL a sync client sends is understood (see [`FakeSalesforce`]'s
//! query notes; `OR`, `LIKE`, `OFFSET`, date literals such as `TODAY` answer `MALFORMED_QUERY`);
//! only the Opportunity object (and its Account and Owner relationships) and Tasks exist; stamps
//! come from the fake's clock at whole seconds (Salesforce stores no milliseconds either), which
//! [`FakeSalesforce::set_clock`] can fix; OpportunityHistory rows are only those
//! [`FakeSalesforce::add_history`] adds (Salesforce adds one per stage change); Bulk jobs
//! process on the second status poll after `UploadComplete`; the JWT check is stricter than
//! Salesforce's in refusing an `exp` more than three minutes ahead. Messages are Salesforce's
//! where known, else plain descriptions.
//!
//! Faults are scripted per [`Endpoint`]: each call takes the next [`Fault`] of its endpoint's
//! script, if any. [`FakeSalesforce::fail_records`] makes single records fail once in a
//! Collections call or a Bulk job. Every call is recorded (method, path, query string, bearer
//! token, body, API version, answered status), every SOQL string, and every record update.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, post};
use chrono::{DateTime, NaiveDate, Utc};
use serde_json::{Map, Value, json};

/// The fixture key pair: the private key (PKCS#1) a client signs assertions with.
pub const TEST_PRIVATE_KEY_PEM: &str = include_str!("../fixtures/salesforce_test_key.pem");
/// The fixture key pair: the public key (SPKI) [`FakeOrg::default`] verifies with.
pub const TEST_PUBLIC_KEY_PEM: &str = include_str!("../fixtures/salesforce_test_key.pub.pem");

const JWT_GRANT: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";
/// Salesforce takes an assertion that expires within three minutes; the fake allows this skew.
const MAX_ASSERTION_SECONDS: i64 = 180;
const ASSERTION_SKEW_SECONDS: i64 = 10;
/// The most records one sObject Collections call takes.
pub const COLLECTIONS_LIMIT: usize = 200;
const STAGES: &[&str] = &[
    "Prospecting",
    "Qualification",
    "Needs Analysis",
    "Value Proposition",
    "Id. Decision Makers",
    "Perception Analysis",
    "Proposal/Price Quote",
    "Negotiation/Review",
    "Closed Won",
    "Closed Lost",
];
const TYPES: &[&str] = &[
    "Existing Customer - Upgrade",
    "Existing Customer - Replacement",
    "Existing Customer - Downgrade",
    "New Customer",
];
const LEAD_SOURCES: &[&str] = &["Web", "Phone Inquiry", "Partner Referral", "Purchased List", "Other"];
const RISK_CATEGORIES: &[&str] = &["Low", "Medium", "High", "Critical"];
const TASK_PRIORITIES: &[&str] = &["High", "Normal", "Low"];
const TASK_STATUSES: &[&str] = &["Not Started", "In Progress", "Completed", "Waiting on someone else", "Deferred"];
const TASK_FIELDS: &[&str] =
    &["WhatId", "WhoId", "OwnerId", "Subject", "ActivityDate", "Priority", "Status", "Description", "Dealwatch_Key__c"];
const ACCOUNT_FIELDS: &[&str] =
    &["Id", "Name", "Industry", "BillingCountry", "Type", "AnnualRevenue", "NumberOfEmployees", "OwnerId"];
const USER_FIELDS: &[&str] =
    &["Id", "Name", "Email", "Username", "FirstName", "LastName", "IsActive", "ManagerId", "TimeZoneSidKey"];
const HISTORY_FIELDS: &[&str] =
    &["Id", "OpportunityId", "StageName", "CreatedDate", "Amount", "CloseDate", "Probability"];

/// The org the fake stands for: its connected app and the integration user.
#[derive(Debug, Clone)]
pub struct FakeOrg {
    /// The connected app's consumer key: a JWT assertion's `iss`.
    pub consumer_key: String,
    /// The integration user's username: a JWT assertion's `sub`.
    pub username: String,
    /// The certificate's public key (PEM, SPKI or PKCS#1) assertions are verified with.
    pub public_key_pem: String,
    /// Client credentials flow: the app's client id and secret (the secret also keys the token
    /// answer's `signature`).
    pub client_id: String,
    pub client_secret: String,
    /// The user (005…) both flows sign in as; written into `LastModifiedById` by its updates.
    pub integration_user_id: String,
    /// The org's id (00D…), in the token answer's identity URL.
    pub org_id: String,
}

impl Default for FakeOrg {
    /// An org that trusts the fixture key ([`TEST_PRIVATE_KEY_PEM`] signs for it).
    fn default() -> FakeOrg {
        FakeOrg {
            consumer_key: "3MVG9FAKE_consumer_key".into(),
            username: "integration@dealwatch.test".into(),
            public_key_pem: TEST_PUBLIC_KEY_PEM.into(),
            client_id: "3MVG9FAKE_client_id".into(),
            client_secret: "fake-client-secret".into(),
            integration_user_id: sf_id("005", 1),
            org_id: sf_id("00D", 1),
        }
    }
}

/// The kinds of call a fault can be scripted for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Endpoint {
    /// `POST /services/oauth2/token`.
    Token,
    /// `GET …/query` and `GET …/query/<locator>`.
    Query,
    /// `PATCH …/composite/sobjects`.
    Collections,
    /// `GET …/sobjects/Opportunity/describe`.
    Describe,
    /// Every `…/jobs/ingest…` call.
    Bulk,
    /// `PATCH …/sobjects/Task/Dealwatch_Key__c/<key>`.
    Task,
}

/// What the fake does instead of (or before) answering one call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Expires every session and answers 401 `INVALID_SESSION_ID` (the token endpoint: 400
    /// `invalid_grant`, "authentication failure").
    Unauthorized,
    /// Answers 403 `REQUEST_LIMIT_EXCEEDED`.
    RequestLimit,
    /// Answers 503 `SERVER_UNAVAILABLE`.
    Unavailable,
    /// Waits this many milliseconds, then answers as usual.
    Slow(u64),
}

/// One HTTP call the fake received.
#[derive(Debug, Clone, PartialEq)]
pub struct Call {
    pub method: String,
    /// The path, without the query string.
    pub path: String,
    pub query: Option<String>,
    /// The `Authorization: Bearer` token, if any.
    pub token: Option<String>,
    pub body: String,
    /// The `vNN.N` of a data call.
    pub version: Option<String>,
    /// The HTTP status answered.
    pub status: u16,
    /// When the request arrived (for the latency benchmarks).
    pub at: std::time::Instant,
}

/// A record update the fake applied.
#[derive(Debug, Clone, PartialEq)]
pub struct Update {
    pub id: String,
    /// The fields written, as stored (datetimes in Salesforce's format, `null` for cleared).
    pub fields: Map<String, Value>,
    /// The Bulk job that wrote it, or `None` for an sObject Collections call.
    pub job: Option<String>,
}

/// A Bulk API 2.0 ingest job as the fake holds it.
#[derive(Debug, Clone, PartialEq)]
pub struct BulkJob {
    pub id: String,
    pub object: String,
    pub operation: String,
    /// Open, UploadComplete, InProgress, JobComplete, Aborted or Failed.
    pub state: String,
    pub api_version: String,
    /// Each uploaded CSV, as received.
    pub uploads: Vec<String>,
    pub records_processed: usize,
    pub records_failed: usize,
    pub error_message: Option<String>,
    line_ending: String,
    delimiter: String,
    created: String,
    /// Processing results: (sf__Id, error or None, the row's cells) with the header.
    results: Vec<(String, Option<String>, Vec<String>)>,
    header: Vec<String>,
}

/// An Opportunity field as the org describes it.
#[derive(Debug, Clone)]
struct FieldDef {
    name: &'static str,
    label: &'static str,
    kind: &'static str,
    updateable: bool,
    custom: bool,
    length: usize,
    /// Precision and scale of a number.
    digits: Option<(u32, u32)>,
    picklist: &'static [&'static str],
    restricted: bool,
    /// A lookup's relationship name and target object.
    reference: Option<(&'static str, &'static str)>,
}

impl FieldDef {
    fn new(name: &'static str, label: &'static str, kind: &'static str) -> FieldDef {
        FieldDef {
            name,
            label,
            kind,
            updateable: true,
            custom: name.ends_with("__c"),
            length: 0,
            digits: None,
            picklist: &[],
            restricted: false,
            reference: None,
        }
    }
    fn read_only(mut self) -> FieldDef {
        self.updateable = false;
        self
    }
    fn length(mut self, n: usize) -> FieldDef {
        self.length = n;
        self
    }
    fn digits(mut self, precision: u32, scale: u32) -> FieldDef {
        self.digits = Some((precision, scale));
        self
    }
    fn picklist(mut self, values: &'static [&'static str], restricted: bool) -> FieldDef {
        self.picklist = values;
        self.restricted = restricted;
        self
    }
    fn refers(mut self, relationship: &'static str, target: &'static str) -> FieldDef {
        self.reference = Some((relationship, target));
        self
    }
}

/// The org's Opportunity fields: the standard ones a sync reads and Dealwatch's custom ones.
fn opportunity_fields() -> Vec<FieldDef> {
    let f = FieldDef::new;
    vec![
        f("Id", "Opportunity ID", "id").read_only(),
        f("Name", "Name", "string").length(120),
        f("AccountId", "Account ID", "reference").refers("Account", "Account"),
        f("OwnerId", "Owner ID", "reference").refers("Owner", "User"),
        f("StageName", "Stage", "picklist").picklist(STAGES, false),
        f("Amount", "Amount", "currency").digits(18, 2),
        f("Probability", "Probability (%)", "percent").digits(3, 0),
        f("CloseDate", "Close Date", "date"),
        f("Type", "Opportunity Type", "picklist").picklist(TYPES, false),
        f("LeadSource", "Lead Source", "picklist").picklist(LEAD_SOURCES, false),
        f("NextStep", "Next Step", "string").length(255),
        f("Description", "Description", "textarea").length(32000),
        f("IsClosed", "Closed", "boolean").read_only(),
        f("IsWon", "Won", "boolean").read_only(),
        f("CreatedDate", "Created Date", "datetime").read_only(),
        f("CreatedById", "Created By ID", "reference").refers("CreatedBy", "User").read_only(),
        f("LastModifiedDate", "Last Modified Date", "datetime").read_only(),
        f("LastModifiedById", "Last Modified By ID", "reference").refers("LastModifiedBy", "User").read_only(),
        f("SystemModstamp", "System Modstamp", "datetime").read_only(),
        f("Risk_Score__c", "Risk Score", "double").digits(3, 0),
        f("Risk_Category__c", "Risk Category", "picklist").picklist(RISK_CATEGORIES, true),
        f("Risk_Factors__c", "Risk Factors", "textarea").length(32768),
        f("Risk_Updated__c", "Risk Updated", "datetime"),
        f("Win_Probability__c", "Win Probability", "percent").digits(5, 1),
    ]
}

#[derive(Debug)]
struct Cursor {
    version: String,
    records: Vec<Value>,
}

#[derive(Debug)]
struct Inner {
    org: FakeOrg,
    base: String,
    tokens: HashSet<String>,
    issued: Vec<String>,
    scripts: HashMap<Endpoint, VecDeque<Fault>>,
    /// One-time per-record failures: id → status code.
    record_failures: HashMap<String, String>,
    fields: Vec<FieldDef>,
    /// Names of fields missing from the org (`Account.Industry` for a related field).
    removed: HashSet<String>,
    opportunities: BTreeMap<String, Value>,
    deleted: HashSet<String>,
    /// OpportunityHistory rows, by Opportunity id.
    history: HashMap<String, Vec<Value>>,
    page_size: usize,
    cursors: HashMap<u64, Cursor>,
    clock: Option<DateTime<Utc>>,
    api_used: u64,
    api_limit: u64,
    calls: Vec<Call>,
    soql: Vec<String>,
    updates: Vec<Update>,
    jobs: Vec<BulkJob>,
    tasks: Vec<Value>,
    /// Counts ids made, per key prefix.
    seq: HashMap<&'static str, u64>,
}

impl Inner {
    fn now(&self) -> DateTime<Utc> {
        let t = self.clock.unwrap_or_else(Utc::now);
        DateTime::from_timestamp(t.timestamp(), 0).unwrap_or(t)
    }
    fn new_id(&mut self, prefix: &'static str) -> String {
        let n = self.seq.entry(prefix).or_insert(0);
        *n += 1;
        // Far from the small numbers tests give their own records.
        sf_id(prefix, 500_000 + *n)
    }
    fn is_removed(&self, name: &str) -> bool {
        self.removed.iter().any(|r| r.eq_ignore_ascii_case(name))
    }
    /// An Opportunity field the org has, by any case.
    fn field(&self, name: &str) -> Option<&FieldDef> {
        self.fields.iter().find(|f| f.name.eq_ignore_ascii_case(name)).filter(|f| !self.is_removed(f.name))
    }
}

/// A fake Salesforce org; clones share it. The server stops when the last clone is dropped.
///
/// Queries understood: `SELECT f, Rel.Field, (SELECT … FROM OpportunityHistories [ORDER BY …])
/// FROM Opportunity [WHERE c [AND c]…] [ORDER BY f [ASC|DESC] [NULLS FIRST|LAST], …] [LIMIT n]`,
/// a condition being `field op literal` (`=`, `!=`, `<>`, `<`, `<=`, `>`, `>=`) or
/// `field [NOT] IN (…)`, literals typed as SOQL types them: quoted strings and ids, bare
/// date-times (`2026-12-02T10:00:00Z`, `…+01:00`), dates, numbers, `true`/`false`, `null`.
#[derive(Debug, Clone)]
pub struct FakeSalesforce {
    inner: Arc<Mutex<Inner>>,
    /// `http://127.0.0.1:PORT`: the login URL, the instance URL and an accepted JWT `aud`.
    pub base: String,
    task: Arc<tokio::task::JoinHandle<()>>,
}

impl Drop for FakeSalesforce {
    fn drop(&mut self) {
        if Arc::strong_count(&self.task) == 1 {
            self.task.abort();
        }
    }
}

impl FakeSalesforce {
    /// Starts the fake on a free port, with no records, an API allowance of 15000 calls a day
    /// and pages of 2000 records.
    pub async fn start(org: FakeOrg) -> FakeSalesforce {
        let inner = Arc::new(Mutex::new(Inner {
            org,
            base: String::new(),
            tokens: HashSet::new(),
            issued: Vec::new(),
            scripts: HashMap::new(),
            record_failures: HashMap::new(),
            fields: opportunity_fields(),
            removed: HashSet::new(),
            opportunities: BTreeMap::new(),
            deleted: HashSet::new(),
            history: HashMap::new(),
            page_size: 2000,
            cursors: HashMap::new(),
            clock: None,
            api_used: 0,
            api_limit: 15_000,
            calls: Vec::new(),
            soql: Vec::new(),
            updates: Vec::new(),
            jobs: Vec::new(),
            tasks: Vec::new(),
            seq: HashMap::new(),
        }));
        let app = Router::new()
            .route("/services/oauth2/token", post(token))
            .route("/services/data/{*rest}", any(data))
            // A Bulk API 2.0 upload may be up to 150 MB base64-encoded (about 100 MB of CSV).
            .layer(axum::extract::DefaultBodyLimit::max(150 * 1024 * 1024))
            .fallback(not_found)
            .with_state(inner.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind the fake Salesforce");
        let base = format!("http://{}", listener.local_addr().expect("address"));
        lock(&inner).base = base.clone();
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        FakeSalesforce { inner, base, task: Arc::new(task) }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        lock(&self.inner)
    }

    /// The faults for the next calls of `endpoint`, in order (after those already scripted).
    pub fn script(&self, endpoint: Endpoint, faults: &[Fault]) {
        self.lock().scripts.entry(endpoint).or_default().extend(faults.iter().copied());
    }

    /// Each of `ids` fails once with `status_code` (say `UNABLE_TO_LOCK_ROW`) in the next
    /// Collections call or Bulk job that updates it.
    pub fn fail_records(&self, ids: &[&str], status_code: &str) {
        let mut inner = self.lock();
        for id in ids {
            inner.record_failures.insert(complete_id(id), status_code.to_owned());
        }
    }

    /// Ends every session: calls with a token issued so far answer 401.
    pub fn expire_tokens(&self) {
        self.lock().tokens.clear();
    }

    /// Every access token issued, in order.
    pub fn tokens_issued(&self) -> Vec<String> {
        self.lock().issued.clone()
    }

    /// Sets the daily API allowance: `used` calls made of `limit` (at `limit`, calls answer 403).
    pub fn set_api_usage(&self, used: u64, limit: u64) {
        let mut inner = self.lock();
        inner.api_used = used;
        inner.api_limit = limit;
    }

    /// (used, limit), as the next `Sforce-Limit-Info` would say before counting its own call.
    pub fn api_usage(&self) -> (u64, u64) {
        let inner = self.lock();
        (inner.api_used, inner.api_limit)
    }

    /// Fixes the clock stamps are taken from (whole seconds); `None` goes back to real time.
    pub fn set_clock(&self, at: Option<DateTime<Utc>>) {
        self.lock().clock = at;
    }

    /// Moves a fixed clock on (a real-time clock is fixed at now first).
    pub fn advance_clock(&self, seconds: i64) {
        let mut inner = self.lock();
        let now = inner.now();
        inner.clock = Some(now + chrono::Duration::seconds(seconds));
    }

    /// The most records a query page holds (Salesforce: 2000).
    pub fn set_page_size(&self, n: usize) {
        self.lock().page_size = n.max(1);
    }

    /// Stores an Opportunity: flat fields plus nested relationship objects (`"Owner": {"Email":
    /// …}`, `"Account": {"Name": …, "Industry": …}`). Fills in what Salesforce would: an `Id`
    /// (returned), `SystemModstamp`, `LastModifiedDate`, `CreatedDate` (now), `LastModifiedById`
    /// (the owner), `IsClosed`/`IsWon` from the stage, and `AccountId`/`OwnerId` for nested
    /// objects that lack them. A record with an existing `Id` replaces it.
    pub fn put_opportunity(&self, record: Value) -> String {
        let mut inner = self.lock();
        let Value::Object(mut record) = record else { panic!("an Opportunity is a JSON object") };
        let id = match record.get("Id").and_then(Value::as_str) {
            Some(id) => complete_id(id),
            None => inner.new_id("006"),
        };
        record.insert("Id".into(), json!(id));
        let now = sf_datetime(inner.now());
        for stamp in ["SystemModstamp", "LastModifiedDate", "CreatedDate"] {
            record.entry(stamp).or_insert_with(|| json!(now));
        }
        for (reference, relationship, prefix) in [("AccountId", "Account", "001"), ("OwnerId", "Owner", "005")] {
            if record.get(relationship).is_some_and(Value::is_object) && !record.contains_key(reference) {
                let nested_id = record[relationship]["Id"].as_str().map(str::to_owned);
                let made = nested_id.unwrap_or_else(|| inner.new_id(prefix));
                record.insert(reference.into(), json!(made));
            }
        }
        let owner = record.get("OwnerId").cloned().unwrap_or_else(|| json!(sf_id("005", 2)));
        record.entry("LastModifiedById").or_insert(owner);
        derive_closed(&mut record, true);
        inner.deleted.remove(&id);
        inner.opportunities.insert(id.clone(), Value::Object(record));
        id
    }

    /// Changes an Opportunity as a user in Salesforce would: the fields given (top-level keys
    /// replaced), `IsClosed`/`IsWon` following a new stage, the stamps moved to now and
    /// `LastModifiedById` the owner (unless given). Panics on an unknown id.
    pub fn touch(&self, id: &str, changes: Value) {
        let mut inner = self.lock();
        let now = sf_datetime(inner.now());
        let record = inner.opportunities.get_mut(&complete_id(id)).unwrap_or_else(|| panic!("no Opportunity {id}"));
        let record = record.as_object_mut().expect("records are objects");
        let Value::Object(changes) = changes else { panic!("changes are a JSON object") };
        let stage_changed = changes.contains_key("StageName") && !changes.contains_key("IsClosed");
        let modifier = changes.get("LastModifiedById").or(record.get("OwnerId")).cloned().unwrap_or(Value::Null);
        record.extend(changes);
        derive_closed(record, stage_changed);
        record.insert("SystemModstamp".into(), json!(now));
        record.insert("LastModifiedDate".into(), json!(now));
        record.insert("LastModifiedById".into(), modifier);
    }

    /// Deletes an Opportunity: queries leave it out, updates answer `ENTITY_IS_DELETED`.
    pub fn delete_opportunity(&self, id: &str) {
        let mut inner = self.lock();
        let id = complete_id(id);
        if inner.opportunities.remove(&id).is_some() {
            inner.deleted.insert(id);
        }
    }

    /// The stored Opportunity.
    pub fn opportunity(&self, id: &str) -> Option<Value> {
        self.lock().opportunities.get(&complete_id(id)).cloned()
    }

    /// Every stored Opportunity, in Id order.
    pub fn opportunities(&self) -> Vec<Value> {
        self.lock().opportunities.values().cloned().collect()
    }

    /// An OpportunityHistory row: the Opportunity `id` entered `stage` at `created_date` (any
    /// ISO 8601 date-time).
    pub fn add_history(&self, id: &str, stage: &str, created_date: &str) {
        let mut inner = self.lock();
        let at = parse_datetime(created_date).unwrap_or_else(|| panic!("{created_date} is no date-time"));
        let row_id = inner.new_id("008");
        let row = json!({
            "Id": row_id,
            "OpportunityId": complete_id(id),
            "StageName": stage,
            "CreatedDate": sf_datetime(at),
        });
        inner.history.entry(complete_id(id)).or_default().push(row);
    }

    /// Takes a field out of the org (as if it was never created, or the integration user cannot
    /// see it): queries naming it answer `INVALID_FIELD`, writes to it fail, the describe omits
    /// it. `Account.Industry` removes a related object's field.
    pub fn remove_field(&self, name: &str) {
        self.lock().removed.insert(name.to_owned());
    }

    /// Puts a removed field back (an admin fixed the permission set).
    pub fn restore_field(&self, name: &str) {
        self.lock().removed.remove(name);
    }

    /// Makes a field read-only for the integration user: the describe says `updateable: false`
    /// and writes to it fail with `INVALID_FIELD_FOR_INSERT_UPDATE`.
    pub fn set_read_only(&self, name: &str) {
        let mut inner = self.lock();
        let field = inner.fields.iter_mut().find(|f| f.name.eq_ignore_ascii_case(name));
        field.unwrap_or_else(|| panic!("no Opportunity field {name}")).updateable = false;
    }

    /// Every call, in order.
    pub fn calls(&self) -> Vec<Call> {
        self.lock().calls.clone()
    }

    /// Every SOQL string queried, in order (failed ones too).
    pub fn soql(&self) -> Vec<String> {
        self.lock().soql.clone()
    }

    /// Every record update applied, in order (rolled-back and failed ones are not).
    pub fn updates(&self) -> Vec<Update> {
        self.lock().updates.clone()
    }

    pub fn bulk_jobs(&self) -> Vec<BulkJob> {
        self.lock().jobs.clone()
    }

    /// Every Task, as stored: `Id`, `Dealwatch_Key__c`, the fields written, the stamps.
    pub fn tasks(&self) -> Vec<Value> {
        self.lock().tasks.clone()
    }
}

impl FakeSalesforce {
    /// A tenant's `[salesforce.tenants.T]` for this org's default connected app: JWT bearer
    /// with the test key, the integration user, the package's webhook secret.
    pub fn org_settings(&self, webhook_secret: &str) -> bot::config::SalesforceOrg {
        let org = FakeOrg::default();
        bot::config::SalesforceOrg {
            login_url: self.base.clone(),
            client_id: org.consumer_key,
            username: Some(org.username),
            private_key: Some(TEST_PRIVATE_KEY_PEM.to_owned().into()),
            integration_user_id: Some(org.integration_user_id),
            webhook_secrets: vec![webhook_secret.to_owned().into()],
            ..bot::config::SalesforceOrg::default()
        }
    }
}

/// `POST {base}/sfdc/opportunity-changed` as the package sends it: `body` signed with `secret`
/// at Unix time `ts` (`v1=` HMAC-SHA256 of `"{ts}.{body}"`) for `tenant`.
pub fn package_webhook(
    http: &reqwest::Client,
    base: &str,
    tenant: &str,
    body: String,
    secret: &str,
    ts: i64,
) -> reqwest::RequestBuilder {
    use hmac::Mac as _;
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).expect("key");
    mac.update(format!("{ts}.{body}").as_bytes());
    let signature: String = mac.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect();
    http.post(format!("{base}/sfdc/opportunity-changed"))
        .header("content-type", "application/json")
        .header("x-dealwatch-tenant", tenant)
        .header("x-dealwatch-timestamp", ts.to_string())
        .header("x-dealwatch-signature", format!("v1={signature}"))
        .body(body)
}

/// Salesforce's stages for the generated ones.
fn stage(generated: &str) -> &'static str {
    match generated {
        "Qualified" => "Qualification",
        "Demo" => "Needs Analysis",
        "Proposal" => "Proposal/Price Quote",
        "Negotiation" => "Negotiation/Review",
        "Closed Won" => "Closed Won",
        _ => "Closed Lost",
    }
}

impl FakeSalesforce {
    /// `deals` generated deals (seed `seed`, as of `today`) as Opportunities with their stage
    /// history; returns each Opportunity's id and whether it is open. Open ones close 45 days
    /// after `today`.
    pub fn put_generated(&self, deals: usize, seed: u64, today: NaiveDate) -> HashMap<String, bool> {
        let (csv, _) = crate::generated_csv(deals, seed, today, false, false);
        let mut reader = csv::Reader::from_reader(&csv[..]);
        let headers = reader.headers().expect("header").clone();
        let mut open = HashMap::new();
        for (n, row) in reader.records().enumerate() {
            let row = row.expect("row");
            let get = |name: &str| headers.iter().position(|h| h == name).map_or("", |i| &row[i]);
            let closed = !get("closed_date").is_empty();
            let id = opportunity_id(n as u64 + 1);
            let close =
                if closed { get("closed_date").to_owned() } else { (today + chrono::Duration::days(45)).to_string() };
            let record = json!({
                "Id": id, "Name": format!("{} {}", get("account"), get("product")),
                "StageName": stage(get("stage")), "Amount": get("amount").parse::<f64>().ok(),
                "CloseDate": close, "CreatedDate": format!("{}T09:00:00.000+0000", get("created_date")),
                "LeadSource": get("lead_source"), "Type": get("product"),
                "Account": { "Name": get("account"), "Industry": get("industry"), "BillingCountry": get("region") },
                "Owner": { "Email": format!("{}@acme.test", get("owner")), "Name": get("owner") },
            });
            let id = self.put_opportunity(record);
            for (column, name) in [
                ("entered_qualified", "Qualification"),
                ("entered_demo", "Needs Analysis"),
                ("entered_proposal", "Proposal/Price Quote"),
                ("entered_negotiation", "Negotiation/Review"),
            ] {
                if !get(column).is_empty() {
                    self.add_history(&id, name, &format!("{}T09:00:00Z", get(column)));
                }
            }
            open.insert(id, !closed);
        }
        open
    }
}

/// A closed stage sets `IsClosed` and `IsWon`, as Salesforce's stage settings do (with
/// `only_missing` false, a changed stage overrides them).
fn derive_closed(record: &mut Map<String, Value>, stage_changed: bool) {
    let Some(stage) = record.get("StageName").and_then(Value::as_str).map(str::to_owned) else { return };
    let closed = stage.starts_with("Closed");
    if stage_changed || !record.contains_key("IsClosed") {
        record.insert("IsClosed".into(), json!(closed));
    }
    if stage_changed || !record.contains_key("IsWon") {
        record.insert("IsWon".into(), json!(stage == "Closed Won"));
    }
}

type Shared = Arc<Mutex<Inner>>;

fn lock(inner: &Shared) -> std::sync::MutexGuard<'_, Inner> {
    inner.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

// ---- ids, times, HTTP helpers ----

/// An 18-character Salesforce id: `prefix`, `n` in digits to 15 characters, the checksum.
pub fn sf_id(prefix: &str, n: u64) -> String {
    let width = 15usize.saturating_sub(prefix.len());
    with_checksum(&format!("{prefix}{n:0width$}"))
}

/// The Opportunity id tests can give their records: `006` and `n`.
pub fn opportunity_id(n: u64) -> String {
    sf_id("006", n)
}

/// Salesforce's 18-character form of a 15-character id: a letter per 5 characters saying which
/// of them are upper case.
fn with_checksum(id15: &str) -> String {
    const MAP: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ012345";
    let mut id = id15.to_owned();
    for chunk in id15.as_bytes().chunks(5) {
        let bits =
            chunk.iter().enumerate().filter(|(_, b)| b.is_ascii_uppercase()).fold(0, |acc, (i, _)| acc | (1 << i));
        id.push(char::from(MAP[bits]));
    }
    id
}

/// An id as Salesforce reads it: a 15-character one completed, anything else as given.
fn complete_id(id: &str) -> String {
    if id.len() == 15 && id.chars().all(|c| c.is_ascii_alphanumeric()) { with_checksum(id) } else { id.to_owned() }
}

/// Whether `id` is a well-formed id of the object with key `prefix`.
fn is_id_of(id: &str, prefix: &str) -> bool {
    matches!(id.len(), 15 | 18) && id.starts_with(prefix) && id.chars().all(|c| c.is_ascii_alphanumeric())
}

/// A date-time as Salesforce's REST API writes them: `2026-12-02T10:00:00.000+0000`.
pub fn sf_datetime(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%dT%H:%M:%S%.3f+0000").to_string()
}

/// ISO 8601 with `Z`, `±hh:mm` or `±hhmm`, with or without fractional seconds.
fn parse_datetime(text: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text)
        .or_else(|_| DateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f%z"))
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

fn is_date(text: &str) -> bool {
    NaiveDate::parse_from_str(text, "%Y-%m-%d").is_ok()
}

/// A REST error answer: `[{"message", "errorCode"}]`.
fn sf_error(status: StatusCode, code: &str, message: &str) -> Response {
    (status, axum::Json(json!([{ "message": message, "errorCode": code }]))).into_response()
}

fn sf_error_fields(status: StatusCode, code: &str, message: &str, fields: &[&str]) -> Response {
    (status, axum::Json(json!([{ "message": message, "errorCode": code, "fields": fields }]))).into_response()
}

fn invalid_session() -> Response {
    let mut answer = sf_error(StatusCode::UNAUTHORIZED, "INVALID_SESSION_ID", "Session expired or invalid");
    answer.headers_mut().insert("www-authenticate", HeaderValue::from_static("Token"));
    answer
}

fn limit_exceeded() -> Response {
    sf_error(StatusCode::FORBIDDEN, "REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded.")
}

fn unavailable() -> Response {
    sf_error(StatusCode::SERVICE_UNAVAILABLE, "SERVER_UNAVAILABLE", "Server temporarily unavailable")
}

fn resource_missing() -> Response {
    sf_error(StatusCode::NOT_FOUND, "NOT_FOUND", "The requested resource does not exist")
}

fn json_parser_error(message: &str) -> Response {
    sf_error(StatusCode::BAD_REQUEST, "JSON_PARSER_ERROR", message)
}

/// An OAuth error answer: `{"error", "error_description"}`.
fn oauth_error(error: &str, description: &str) -> Response {
    (StatusCode::BAD_REQUEST, axum::Json(json!({ "error": error, "error_description": description }))).into_response()
}

/// The token of an `Authorization: Bearer` (or Salesforce's older `OAuth`) header.
fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get("authorization")?.to_str().ok()?;
    value.strip_prefix("Bearer ").or_else(|| value.strip_prefix("OAuth "))
}

/// Records a call; returns its index, for [`finish`] to fill in the status.
fn record(
    inner: &Shared,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &Bytes,
    version: Option<String>,
) -> usize {
    let mut inner = lock(inner);
    inner.calls.push(Call {
        method: method.to_string(),
        path: uri.path().to_owned(),
        query: uri.query().map(str::to_owned),
        token: bearer(headers).map(str::to_owned),
        body: String::from_utf8_lossy(body).into_owned(),
        version,
        status: 0,
        at: std::time::Instant::now(),
    });
    inner.calls.len() - 1
}

fn finish(inner: &Shared, call: usize, response: Response) -> Response {
    if let Some(c) = lock(inner).calls.get_mut(call) {
        c.status = response.status().as_u16();
    }
    response
}

fn take_fault(inner: &Shared, endpoint: Endpoint) -> Option<Fault> {
    lock(inner).scripts.get_mut(&endpoint).and_then(VecDeque::pop_front)
}

/// `%41` decoded (a path segment as the client encoded it).
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes.get(i + 1..i + 3).and_then(|h| std::str::from_utf8(h).ok());
        match (bytes[i], hex.and_then(|h| u8::from_str_radix(h, 16).ok())) {
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

async fn not_found(State(inner): State<Shared>, method: Method, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    let call = record(&inner, &method, &uri, &headers, &body, None);
    finish(&inner, call, resource_missing())
}

// ---- the token endpoint ----

async fn token(State(inner): State<Shared>, method: Method, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    let call = record(&inner, &method, &uri, &headers, &body, None);
    let answer = token_answer(&inner, &headers, &String::from_utf8_lossy(&body)).await;
    finish(&inner, call, answer)
}

async fn token_answer(inner: &Shared, headers: &HeaderMap, body: &str) -> Response {
    match take_fault(inner, Endpoint::Token) {
        Some(Fault::Unauthorized) => return oauth_error("invalid_grant", "authentication failure"),
        Some(Fault::RequestLimit) => return limit_exceeded(),
        Some(Fault::Unavailable) => return unavailable(),
        Some(Fault::Slow(ms)) => tokio::time::sleep(Duration::from_millis(ms)).await,
        None => {}
    }
    let form: HashMap<String, String> = serde_urlencoded::from_str(body).unwrap_or_default();
    let (org, base) = {
        let inner = lock(inner);
        (inner.org.clone(), inner.base.clone())
    };
    let field = |name: &str| form.get(name).map(String::as_str).unwrap_or_default();
    let checked = match field("grant_type") {
        JWT_GRANT => check_assertion(&org, &base, field("assertion")),
        "client_credentials" => {
            let (id, secret) = basic_auth(headers)
                .unwrap_or_else(|| (field("client_id").to_owned(), field("client_secret").to_owned()));
            if id == org.client_id && secret == org.client_secret {
                Ok(())
            } else {
                Err(oauth_error("invalid_client", "invalid client credentials"))
            }
        }
        _ => Err(oauth_error("unsupported_grant_type", "grant type not supported")),
    };
    if let Err(refusal) = checked {
        return refusal;
    }
    let access_token = format!("00DFAKE!{}", uuid::Uuid::new_v4().simple());
    let issued_at = Utc::now().timestamp_millis().to_string();
    let id = format!("{base}/id/{}/{}", org.org_id, org.integration_user_id);
    {
        let mut inner = lock(inner);
        inner.tokens.insert(access_token.clone());
        inner.issued.push(access_token.clone());
    }
    axum::Json(json!({
        "access_token": access_token,
        "instance_url": base,
        "id": id,
        "token_type": "Bearer",
        "scope": "api",
        "issued_at": issued_at,
        "signature": token_signature(&org.client_secret, &id, &issued_at),
    }))
    .into_response()
}

/// Salesforce's `signature`: base64 HMAC-SHA256 of the identity URL and `issued_at`, keyed by the
/// client secret.
fn token_signature(secret: &str, id: &str, issued_at: &str) -> String {
    use base64::Engine as _;
    use hmac::{Hmac, Mac};
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).expect("any key length");
    mac.update(format!("{id}{issued_at}").as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

/// The (client id, client secret) of an `Authorization: Basic` header.
fn basic_auth(headers: &HeaderMap) -> Option<(String, String)> {
    use base64::Engine as _;
    let encoded = headers.get("authorization")?.to_str().ok()?.strip_prefix("Basic ")?;
    let decoded = base64::engine::general_purpose::STANDARD.decode(encoded.trim()).ok()?;
    let (id, secret) = std::str::from_utf8(&decoded).ok()?.split_once(':')?;
    Some((id.to_owned(), secret.to_owned()))
}

/// The JWT bearer flow's checks: an RS256 signature by the org's certificate, `iss` the consumer
/// key, `aud` a login URL, `sub` the username, `exp` in the next three minutes.
#[allow(clippy::result_large_err)] // the refusal is the answer itself
fn check_assertion(org: &FakeOrg, base: &str, assertion: &str) -> Result<(), Response> {
    use jsonwebtoken::{Algorithm, DecodingKey, Validation};
    let key = DecodingKey::from_rsa_pem(org.public_key_pem.as_bytes()).expect("FakeOrg.public_key_pem is an RSA key");
    let mut validation = Validation::new(Algorithm::RS256);
    validation.validate_exp = false;
    validation.validate_aud = false;
    validation.required_spec_claims.clear();
    validation.leeway = 0;
    let Ok(decoded) = jsonwebtoken::decode::<Value>(assertion, &key, &validation) else {
        return Err(oauth_error("invalid_grant", "invalid assertion"));
    };
    let claims = decoded.claims;
    if claims["iss"].as_str() != Some(org.consumer_key.as_str()) {
        return Err(oauth_error("invalid_client_id", "client identifier invalid"));
    }
    let accepted = |aud: &str| {
        let aud = aud.trim_end_matches('/');
        aud == base || aud == "https://login.salesforce.com" || aud == "https://test.salesforce.com"
    };
    let aud_ok = match &claims["aud"] {
        Value::String(aud) => accepted(aud),
        Value::Array(auds) => auds.iter().filter_map(Value::as_str).any(accepted),
        _ => false,
    };
    if !aud_ok {
        return Err(oauth_error("invalid_grant", "audience is invalid"));
    }
    if claims["sub"].as_str() != Some(org.username.as_str()) {
        return Err(oauth_error("invalid_grant", "user hasn't approved this consumer"));
    }
    let now = Utc::now().timestamp();
    match claims["exp"].as_i64().or_else(|| claims["exp"].as_f64().map(|e| e as i64)) {
        None => Err(oauth_error("invalid_grant", "invalid assertion")),
        Some(exp) if exp <= now => Err(oauth_error("invalid_grant", "expired authorization code")),
        Some(exp) if exp > now + MAX_ASSERTION_SECONDS + ASSERTION_SKEW_SECONDS => {
            Err(oauth_error("invalid_grant", "invalid assertion"))
        }
        Some(_) => Ok(()),
    }
}

// ---- data calls ----

/// The data resources the fake serves.
enum Route {
    Query,
    QueryMore(String),
    Describe,
    Collections,
    JobCreate,
    JobInfo(String),
    JobState(String),
    JobUpload(String),
    JobResults(String, bool),
    TaskUpsert(String),
}

fn route(method: &Method, segments: &[String]) -> Option<(Endpoint, Route)> {
    let s: Vec<&str> = segments.iter().map(String::as_str).collect();
    let m = method.as_str();
    Some(match (m, s.as_slice()) {
        ("GET", ["query"]) => (Endpoint::Query, Route::Query),
        ("GET", ["query", locator]) => (Endpoint::Query, Route::QueryMore((*locator).to_owned())),
        ("GET", ["sobjects", "Opportunity", "describe"]) => (Endpoint::Describe, Route::Describe),
        ("PATCH", ["composite", "sobjects"]) => (Endpoint::Collections, Route::Collections),
        ("POST", ["jobs", "ingest"]) => (Endpoint::Bulk, Route::JobCreate),
        ("GET", ["jobs", "ingest", id]) => (Endpoint::Bulk, Route::JobInfo((*id).to_owned())),
        ("PATCH", ["jobs", "ingest", id]) => (Endpoint::Bulk, Route::JobState((*id).to_owned())),
        ("PUT", ["jobs", "ingest", id, "batches"]) => (Endpoint::Bulk, Route::JobUpload((*id).to_owned())),
        ("GET", ["jobs", "ingest", id, "failedResults"]) => (Endpoint::Bulk, Route::JobResults((*id).to_owned(), true)),
        ("GET", ["jobs", "ingest", id, "successfulResults"]) => {
            (Endpoint::Bulk, Route::JobResults((*id).to_owned(), false))
        }
        ("PATCH", ["sobjects", "Task", "Dealwatch_Key__c", key]) => {
            (Endpoint::Task, Route::TaskUpsert((*key).to_owned()))
        }
        _ => return None,
    })
}

async fn data(State(inner): State<Shared>, method: Method, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    let mut segments: Vec<String> = uri
        .path()
        .trim_start_matches("/services/data/")
        .split('/')
        .filter(|s| !s.is_empty())
        .map(percent_decode)
        .collect();
    let version = (!segments.is_empty()).then(|| segments.remove(0));
    let call = record(&inner, &method, &uri, &headers, &body, version.clone());
    let valid_version = version.as_deref().is_some_and(|v| {
        v.strip_prefix('v').and_then(|n| n.split_once('.')).is_some_and(|(a, b)| {
            !a.is_empty() && !b.is_empty() && a.chars().chain(b.chars()).all(|c| c.is_ascii_digit())
        })
    });
    let version = version.unwrap_or_default();
    let answer = match admit(&inner, &method, &segments, &headers, valid_version).await {
        Err(refusal) => refusal,
        Ok(route) => {
            let body = String::from_utf8_lossy(&body);
            let mut guard = lock(&inner);
            let inner = &mut *guard;
            let mut answer = match route {
                Route::Query => run_query(inner, &version, uri.query().unwrap_or_default()),
                Route::QueryMore(locator) => query_more(inner, &locator),
                Route::Describe => describe(inner, &version),
                Route::Collections => collections(inner, &body),
                Route::JobCreate => job_create(inner, &version, &body),
                Route::JobInfo(id) => job_info(inner, &id),
                Route::JobState(id) => job_state(inner, &id, &body),
                Route::JobUpload(id) => job_upload(inner, &id, &headers, &body),
                Route::JobResults(id, failed) => job_results(inner, &id, failed),
                Route::TaskUpsert(key) => task_upsert(inner, &key, &body),
            };
            let usage = format!("api-usage={}/{}", inner.api_used, inner.api_limit);
            answer.headers_mut().insert("sforce-limit-info", HeaderValue::from_str(&usage).expect("ascii"));
            answer
        }
    };
    finish(&inner, call, answer)
}

/// The gate of every data call: the session, the endpoint's script, the allowance (counting the
/// call). Refusals after the session check carry `Sforce-Limit-Info` too, except a 503.
async fn admit(
    inner: &Shared,
    method: &Method,
    segments: &[String],
    headers: &HeaderMap,
    valid_version: bool,
) -> Result<Route, Response> {
    let signed_in = bearer(headers).is_some_and(|token| lock(inner).tokens.contains(token));
    if !signed_in {
        return Err(invalid_session());
    }
    let with_usage = |mut answer: Response| {
        let inner = lock(inner);
        let usage = format!("api-usage={}/{}", inner.api_used, inner.api_limit);
        answer.headers_mut().insert("sforce-limit-info", HeaderValue::from_str(&usage).expect("ascii"));
        answer
    };
    let Some((endpoint, route)) = route(method, segments).filter(|_| valid_version) else {
        return Err(with_usage(resource_missing()));
    };
    match take_fault(inner, endpoint) {
        Some(Fault::Unauthorized) => {
            lock(inner).tokens.clear();
            return Err(invalid_session());
        }
        Some(Fault::RequestLimit) => return Err(with_usage(limit_exceeded())),
        Some(Fault::Unavailable) => return Err(unavailable()),
        Some(Fault::Slow(ms)) => tokio::time::sleep(Duration::from_millis(ms)).await,
        None => {}
    }
    let mut guard = lock(inner);
    if guard.api_used >= guard.api_limit {
        drop(guard);
        return Err(with_usage(limit_exceeded()));
    }
    guard.api_used += 1;
    Ok(route)
}

// ---- SOQL ----

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Word(String),
    Str(String),
    /// A number, date or date-time: anything bare that starts with a digit or a sign.
    Bare(String),
    Sym(&'static str),
}

/// A token and its 1-based column.
type Token = (Tok, usize);

fn lex(soql: &str) -> Result<Vec<Token>, String> {
    let chars: Vec<char> = soql.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let col = i + 1;
        if c.is_whitespace() {
            i += 1;
        } else if c.is_ascii_alphabetic() || c == '_' {
            let start = i;
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || matches!(chars[i], '_' | '.')) {
                i += 1;
            }
            tokens.push((Tok::Word(chars[start..i].iter().collect()), col));
        } else if c.is_ascii_digit() || (matches!(c, '-' | '+') && chars.get(i + 1).is_some_and(char::is_ascii_digit)) {
            let start = i;
            i += 1;
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || matches!(chars[i], '.' | ':' | '+' | '-')) {
                i += 1;
            }
            tokens.push((Tok::Bare(chars[start..i].iter().collect()), col));
        } else if c == '\'' {
            let mut text = String::new();
            i += 1;
            loop {
                match chars.get(i) {
                    None => return Err(format!("unterminated string at column {col}")),
                    Some('\'') => break,
                    Some('\\') => {
                        let escaped = chars.get(i + 1).ok_or("a trailing backslash")?;
                        text.push(match escaped {
                            'n' => '\n',
                            't' => '\t',
                            other => *other,
                        });
                        i += 2;
                    }
                    Some(other) => {
                        text.push(*other);
                        i += 1;
                    }
                }
            }
            i += 1;
            tokens.push((Tok::Str(text), col));
        } else {
            let two: String = chars[i..(i + 2).min(chars.len())].iter().collect();
            let sym = match (two.as_str(), c) {
                ("!=", _) => "!=",
                ("<>", _) => "<>",
                ("<=", _) => "<=",
                (">=", _) => ">=",
                (_, '(') => "(",
                (_, ')') => ")",
                (_, ',') => ",",
                (_, '=') => "=",
                (_, '<') => "<",
                (_, '>') => ">",
                _ => return Err(format!("unexpected character '{c}' at column {col}")),
            };
            i += sym.len();
            tokens.push((Tok::Sym(sym), col));
        }
    }
    Ok(tokens)
}

#[derive(Debug, Clone)]
enum Selected {
    Field(String, usize),
    Related(String, String, usize),
    Histories(Vec<(String, usize)>, Vec<OrderKey>),
}

#[derive(Debug, Clone)]
enum Literal {
    Str(String),
    Bare(String),
    List(Vec<Literal>),
}

#[derive(Debug, Clone)]
struct Cond {
    field: String,
    col: usize,
    op: String,
    value: Literal,
}

#[derive(Debug, Clone)]
struct OrderKey {
    field: String,
    col: usize,
    desc: bool,
    nulls_last: bool,
}

#[derive(Debug, Clone)]
struct Query {
    select: Vec<Selected>,
    object: (String, usize),
    conditions: Vec<Cond>,
    order: Vec<OrderKey>,
    limit: Option<usize>,
}

/// A recursive-descent parser over the tokens; errors are MALFORMED_QUERY texts.
struct Parser {
    tokens: Vec<Token>,
    at: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Tok> {
        self.tokens.get(self.at).map(|(t, _)| t)
    }
    fn col(&self) -> usize {
        self.tokens.get(self.at).map_or(0, |(_, c)| *c)
    }
    fn next(&mut self) -> Result<Token, String> {
        let token = self.tokens.get(self.at).cloned().ok_or("unexpected end of query")?;
        self.at += 1;
        Ok(token)
    }
    fn keyword(&mut self, word: &str) -> bool {
        let is = matches!(self.peek(), Some(Tok::Word(w)) if w.eq_ignore_ascii_case(word));
        self.at += usize::from(is);
        is
    }
    fn expect_keyword(&mut self, word: &str) -> Result<(), String> {
        if self.keyword(word) { Ok(()) } else { Err(format!("expecting '{word}' at column {}", self.col())) }
    }
    fn sym(&mut self, sym: &'static str) -> bool {
        let is = self.peek() == Some(&Tok::Sym(sym));
        self.at += usize::from(is);
        is
    }
    fn word(&mut self) -> Result<(String, usize), String> {
        match self.next()? {
            (Tok::Word(w), col) => Ok((w, col)),
            (other, col) => Err(format!("unexpected token: {other:?} at column {col}")),
        }
    }
    fn order_by(&mut self) -> Result<Vec<OrderKey>, String> {
        let mut keys = Vec::new();
        loop {
            let (field, col) = self.word()?;
            let desc = self.keyword("DESC");
            if !desc {
                self.keyword("ASC");
            }
            let mut nulls_last = desc;
            if self.keyword("NULLS") {
                nulls_last = if self.keyword("LAST") {
                    true
                } else {
                    self.expect_keyword("FIRST")?;
                    false
                };
            }
            keys.push(OrderKey { field, col, desc, nulls_last });
            if !self.sym(",") {
                return Ok(keys);
            }
        }
    }
    fn literal(&mut self) -> Result<Literal, String> {
        match self.next()? {
            (Tok::Str(s), _) => Ok(Literal::Str(s)),
            (Tok::Bare(b), _) => Ok(Literal::Bare(b)),
            (Tok::Word(w), _) if ["true", "false", "null"].iter().any(|k| w.eq_ignore_ascii_case(k)) => {
                Ok(Literal::Bare(w.to_lowercase()))
            }
            (other, col) => Err(format!("unexpected token: {other:?} at column {col}")),
        }
    }
    fn condition(&mut self) -> Result<Cond, String> {
        let (field, col) = self.word()?;
        let negated = self.keyword("NOT");
        if self.keyword("IN") {
            if !self.sym("(") {
                return Err(format!("expecting '(' at column {}", self.col()));
            }
            let mut items = vec![self.literal()?];
            while self.sym(",") {
                items.push(self.literal()?);
            }
            if !self.sym(")") {
                return Err(format!("expecting ')' at column {}", self.col()));
            }
            let op = if negated { "NOT IN" } else { "IN" };
            return Ok(Cond { field, col, op: op.into(), value: Literal::List(items) });
        }
        if negated {
            return Err(format!("expecting 'IN' at column {}", self.col()));
        }
        let op = match self.next()? {
            (Tok::Sym(s @ ("=" | "!=" | "<>" | "<" | "<=" | ">" | ">=")), _) => s.to_owned(),
            (other, col) => return Err(format!("unexpected token: {other:?} at column {col}")),
        };
        Ok(Cond { field, col, op, value: self.literal()? })
    }
    fn query(&mut self) -> Result<Query, String> {
        self.expect_keyword("SELECT")?;
        let mut select = Vec::new();
        loop {
            if self.sym("(") {
                self.expect_keyword("SELECT")?;
                let mut fields = vec![self.word()?];
                while self.sym(",") {
                    fields.push(self.word()?);
                }
                self.expect_keyword("FROM")?;
                let (child, col) = self.word()?;
                if !child.eq_ignore_ascii_case("OpportunityHistories") {
                    return Err(format!(
                        "Didn't understand relationship '{child}' in FROM part of query (column {col})"
                    ));
                }
                let order = if self.keyword("ORDER") {
                    self.expect_keyword("BY")?;
                    self.order_by()?
                } else {
                    Vec::new()
                };
                if !self.sym(")") {
                    return Err(format!("expecting ')' at column {}", self.col()));
                }
                select.push(Selected::Histories(fields, order));
            } else {
                let (name, col) = self.word()?;
                select.push(match name.split_once('.') {
                    Some((rel, field)) => Selected::Related(rel.to_owned(), field.to_owned(), col),
                    None => Selected::Field(name, col),
                });
            }
            if !self.sym(",") {
                break;
            }
        }
        self.expect_keyword("FROM")?;
        let object = self.word()?;
        let mut conditions = Vec::new();
        if self.keyword("WHERE") {
            conditions.push(self.condition()?);
            while self.keyword("AND") {
                conditions.push(self.condition()?);
            }
        }
        let mut order = Vec::new();
        if self.keyword("ORDER") {
            self.expect_keyword("BY")?;
            order = self.order_by()?;
        }
        let mut limit = None;
        if self.keyword("LIMIT") {
            match self.next()? {
                (Tok::Bare(n), _) if n.parse::<usize>().is_ok() => limit = n.parse().ok(),
                (other, col) => return Err(format!("unexpected token: {other:?} at column {col}")),
            }
        }
        match self.tokens.get(self.at) {
            None => Ok(Query { select, object, conditions, order, limit }),
            Some((token, col)) => Err(format!("unexpected token: {token:?} at column {col}")),
        }
    }
}

/// A value as SOQL compares it.
#[derive(Debug, Clone, PartialEq, PartialOrd)]
enum Cmp {
    Null,
    Bool(bool),
    Num(f64),
    Time(DateTime<Utc>),
    Text(String),
}

/// A stored value as the comparison of a `kind` field sees it (strings in any case; ids exact).
fn cmp_of(kind: &str, value: &Value) -> Cmp {
    match (kind, value) {
        (_, Value::Null) => Cmp::Null,
        (_, Value::Bool(b)) => Cmp::Bool(*b),
        (_, Value::Number(n)) => Cmp::Num(n.as_f64().unwrap_or(0.0)),
        ("datetime", Value::String(s)) => parse_datetime(s).map_or(Cmp::Null, Cmp::Time),
        ("id" | "reference" | "date", Value::String(s)) => Cmp::Text(s.clone()),
        (_, Value::String(s)) => Cmp::Text(s.to_lowercase()),
        (_, other) => Cmp::Text(other.to_string()),
    }
}

/// A literal typed for a `kind` field, or the INVALID_FIELD text saying why it cannot be.
fn literal_cmp(field: &FieldDef, literal: &Literal) -> Result<Cmp, String> {
    let wants = match field.kind {
        "datetime" => "dateTime",
        "date" => "date",
        "boolean" => "boolean",
        "double" | "currency" | "percent" => "double",
        _ => "string",
    };
    let mistyped = |quoted: bool| {
        let quotes = if quoted { "should not be enclosed in quotes" } else { "should be enclosed in quotes" };
        format!("value of filter criterion for field '{}' must be of type {wants} and {quotes}", field.name)
    };
    match literal {
        Literal::Bare(b) if b == "null" => Ok(Cmp::Null),
        Literal::Str(s) if wants == "string" => Ok(cmp_of(field.kind, &json!(complete_if_id(field.kind, s)))),
        Literal::Str(_) => Err(mistyped(true)),
        Literal::Bare(_) if wants == "string" => Err(mistyped(false)),
        Literal::Bare(b) => match wants {
            "dateTime" if b.contains('T') => parse_datetime(b).map(Cmp::Time).ok_or_else(|| mistyped(true)),
            "date" if is_date(b) => Ok(Cmp::Text(b.clone())),
            "boolean" if b == "true" || b == "false" => Ok(Cmp::Bool(b == "true")),
            "double" => b.parse().map(Cmp::Num).map_err(|_| mistyped(true)),
            _ => Err(mistyped(true)),
        },
        Literal::List(_) => Err(format!("unexpected list for field '{}'", field.name)),
    }
}

fn complete_if_id(kind: &str, text: &str) -> String {
    if matches!(kind, "id" | "reference") { complete_id(text) } else { text.to_owned() }
}

fn matches_cond(record: &Value, field: &FieldDef, op: &str, literals: &[Cmp]) -> bool {
    let value = cmp_of(field.kind, &record[field.name]);
    let first = &literals[0];
    let ordered = |want: fn(std::cmp::Ordering) -> bool| {
        value != Cmp::Null && *first != Cmp::Null && value.partial_cmp(first).is_some_and(want)
    };
    match op {
        "=" => value == *first,
        "!=" | "<>" => value != *first,
        "<" => ordered(std::cmp::Ordering::is_lt),
        "<=" => ordered(std::cmp::Ordering::is_le),
        ">" => ordered(std::cmp::Ordering::is_gt),
        ">=" => ordered(std::cmp::Ordering::is_ge),
        "IN" => literals.contains(&value),
        _ => !literals.contains(&value),
    }
}

/// An INVALID_FIELD (or other) answer pointing at `col` of the query, as Salesforce words them.
fn soql_error(soql: &str, col: usize, code: &str, text: &str) -> Response {
    let caret = format!("{:>width$}", "^", width = col.max(1));
    let message = format!("\n{soql}\n{caret}\nERROR at Row:1:Column:{col}\n{text}");
    sf_error(StatusCode::BAD_REQUEST, code, &message)
}

fn no_such_column(name: &str, entity: &str) -> String {
    format!(
        "No such column '{name}' on entity '{entity}'. If you are attempting to use a custom field, be sure to \
         append the '__c' after the custom field name. Please reference your WSDL or the describe call for the \
         appropriate names."
    )
}

fn run_query(inner: &mut Inner, version: &str, query_string: &str) -> Response {
    let params: HashMap<String, String> = serde_urlencoded::from_str(query_string).unwrap_or_default();
    let Some(soql) = params.get("q").filter(|q| !q.trim().is_empty()).cloned() else {
        return sf_error(StatusCode::BAD_REQUEST, "MALFORMED_QUERY", "A query string has to be specified");
    };
    inner.soql.push(soql.clone());
    let query = match lex(&soql).and_then(|tokens| Parser { tokens, at: 0 }.query()) {
        Ok(query) => query,
        Err(e) => return sf_error(StatusCode::BAD_REQUEST, "MALFORMED_QUERY", &format!("\n{soql}\n{e}")),
    };
    match execute(inner, version, &query) {
        Ok(records) => page(inner, version, records, 0),
        Err((col, code, text)) => soql_error(&soql, col, code, &text),
    }
}

/// A query answer: the first page of `records` (which follow `offset` records already read),
/// keeping the rest for `query_more` under a locator.
fn page(inner: &mut Inner, version: &str, records: Vec<Value>, offset: usize) -> Response {
    let total = offset + records.len();
    if records.len() <= inner.page_size {
        return query_page(&records, total, None);
    }
    let mut rest = records;
    let rows: Vec<Value> = rest.drain(..inner.page_size).collect();
    let cursor = inner.seq.entry("01g").or_insert(0);
    *cursor += 1;
    let n = *cursor;
    let locator = format!("/services/data/{version}/query/01gFAKE{n}-{}", offset + rows.len());
    inner.cursors.insert(n, Cursor { version: version.to_owned(), records: rest });
    query_page(&rows, total, Some(locator))
}

fn query_page(records: &[Value], total: usize, next: Option<String>) -> Response {
    let mut answer = json!({ "totalSize": total, "done": next.is_none(), "records": records });
    if let Some(next) = next {
        answer["nextRecordsUrl"] = json!(next);
    }
    axum::Json(answer).into_response()
}

fn query_more(inner: &mut Inner, locator: &str) -> Response {
    let parsed = locator
        .strip_prefix("01gFAKE")
        .and_then(|rest| rest.split_once('-'))
        .and_then(|(n, offset)| Some((n.parse::<u64>().ok()?, offset.parse::<usize>().ok()?)));
    let Some((offset, cursor)) = parsed.and_then(|(n, offset)| Some((offset, inner.cursors.remove(&n)?))) else {
        return sf_error(StatusCode::BAD_REQUEST, "INVALID_QUERY_LOCATOR", "invalid query locator");
    };
    page(inner, &cursor.version, cursor.records, offset)
}

type QueryError = (usize, &'static str, String);

/// Selects, filters, orders and projects the records for `query`.
fn execute(inner: &Inner, version: &str, query: &Query) -> Result<Vec<Value>, QueryError> {
    let (object, object_col) = &query.object;
    if !object.eq_ignore_ascii_case("Opportunity") {
        return Err((*object_col, "INVALID_TYPE", format!("sObject type '{object}' is not supported.")));
    }
    let field = |name: &str, col: usize| {
        inner.field(name).ok_or_else(|| (col, "INVALID_FIELD", no_such_column(name, "Opportunity")))
    };
    // Check every name first, as Salesforce does before running anything.
    for selected in &query.select {
        match selected {
            Selected::Field(name, col) => {
                field(name, *col)?;
            }
            Selected::Related(rel, name, col) => {
                related(inner, rel, name, *col)?;
            }
            Selected::Histories(fields, order) => {
                for (name, col) in fields.iter().map(|(f, c)| (f, c)).chain(order.iter().map(|k| (&k.field, &k.col))) {
                    if !HISTORY_FIELDS.iter().any(|f| f.eq_ignore_ascii_case(name)) {
                        return Err((*col, "INVALID_FIELD", no_such_column(name, "OpportunityHistory")));
                    }
                }
            }
        }
    }
    let mut filters = Vec::new();
    for cond in &query.conditions {
        let def = field(&cond.field, cond.col)?;
        if def.kind == "textarea" {
            let text = format!("field '{}' can not be filtered in a query call", def.name);
            return Err((cond.col, "INVALID_FIELD", text));
        }
        let items = match &cond.value {
            Literal::List(items) => items.clone(),
            one => vec![one.clone()],
        };
        let literals: Vec<Cmp> = items
            .iter()
            .map(|l| literal_cmp(def, l))
            .collect::<Result<_, _>>()
            .map_err(|e| (cond.col, "INVALID_FIELD", e))?;
        filters.push((def, cond.op.as_str(), literals));
    }
    let mut order = Vec::new();
    for key in &query.order {
        order.push((field(&key.field, key.col)?, key));
    }
    let mut rows: Vec<&Value> = inner
        .opportunities
        .values()
        .filter(|r| filters.iter().all(|(def, op, literals)| matches_cond(r, def, op, literals)))
        .collect();
    rows.sort_by(|a, b| {
        order
            .iter()
            .map(|(def, key)| compare(&cmp_of(def.kind, &a[def.name]), &cmp_of(def.kind, &b[def.name]), key))
            .find(|o| o.is_ne())
            .unwrap_or(std::cmp::Ordering::Equal)
    });
    if let Some(limit) = query.limit {
        rows.truncate(limit);
    }
    Ok(rows.into_iter().map(|r| project(inner, version, r, &query.select)).collect())
}

fn compare(a: &Cmp, b: &Cmp, key: &OrderKey) -> std::cmp::Ordering {
    use std::cmp::Ordering::{Equal, Greater, Less};
    match (a == &Cmp::Null, b == &Cmp::Null) {
        (true, true) => Equal,
        (true, false) => {
            if key.nulls_last {
                Greater
            } else {
                Less
            }
        }
        (false, true) => {
            if key.nulls_last {
                Less
            } else {
                Greater
            }
        }
        (false, false) => {
            let o = a.partial_cmp(b).unwrap_or(Equal);
            if key.desc { o.reverse() } else { o }
        }
    }
}

/// The relationship `rel` (`Account`, `Owner`, …) and the target field `name` it selects, in
/// their canonical spelling, with the lookup field and target object.
fn related(
    inner: &Inner,
    rel: &str,
    name: &str,
    col: usize,
) -> Result<(&'static str, &'static str, &'static str, &'static str), QueryError> {
    let lookup =
        inner.fields.iter().filter(|f| !inner.is_removed(f.name)).find_map(|f| {
            f.reference.filter(|(r, _)| r.eq_ignore_ascii_case(rel)).map(|(r, target)| (f.name, r, target))
        });
    let Some((lookup, rel, target)) = lookup else {
        let text = format!(
            "Didn't understand relationship '{rel}' in field path. If you are attempting to use a custom relationship, \
             be sure to append the '__r' after the custom relationship name. Please reference your WSDL or the \
             describe call for the appropriate names."
        );
        return Err((col, "INVALID_FIELD", text));
    };
    let fields = if target == "Account" { ACCOUNT_FIELDS } else { USER_FIELDS };
    let canonical = fields.iter().find(|f| f.eq_ignore_ascii_case(name));
    match canonical.filter(|f| !inner.is_removed(&format!("{rel}.{f}"))) {
        Some(field) => Ok((lookup, rel, target, field)),
        None => Err((col, "INVALID_FIELD", no_such_column(name, target))),
    }
}

fn attributes(version: &str, object: &str, id: &Value) -> Value {
    let id = id.as_str().unwrap_or_default();
    json!({ "type": object, "url": format!("/services/data/{version}/sobjects/{object}/{id}") })
}

/// A record as a query answers it: `attributes` and the selected fields only.
fn project(inner: &Inner, version: &str, record: &Value, select: &[Selected]) -> Value {
    let mut out = Map::new();
    out.insert("attributes".into(), attributes(version, "Opportunity", &record["Id"]));
    for selected in select {
        match selected {
            Selected::Field(name, _) => {
                let def = inner.field(name).expect("checked");
                out.insert(def.name.into(), record[def.name].clone());
            }
            Selected::Related(rel, name, col) => {
                let (lookup, rel, target, field) = related(inner, rel, name, *col).expect("checked");
                let Some(nested) = record.get(rel).and_then(Value::as_object) else {
                    out.insert(rel.into(), Value::Null);
                    continue;
                };
                let entry = out.entry(rel).or_insert_with(|| {
                    let id = nested.get("Id").cloned().unwrap_or_else(|| record[lookup].clone());
                    json!({ "attributes": attributes(version, target, &id) })
                });
                entry[field] = nested.get(field).cloned().unwrap_or(Value::Null);
            }
            Selected::Histories(fields, order) => {
                let of = record["Id"].as_str().and_then(|id| inner.history.get(id));
                let mut rows: Vec<&Value> = of.into_iter().flatten().collect();
                for key in order.iter().rev() {
                    let name = HISTORY_FIELDS.iter().find(|f| f.eq_ignore_ascii_case(&key.field)).expect("checked");
                    let kind = if *name == "CreatedDate" { "datetime" } else { "string" };
                    rows.sort_by(|a, b| compare(&cmp_of(kind, &a[*name]), &cmp_of(kind, &b[*name]), key));
                }
                let projected: Vec<Value> = rows
                    .iter()
                    .map(|h| {
                        let mut row = Map::new();
                        row.insert("attributes".into(), attributes(version, "OpportunityHistory", &h["Id"]));
                        for (name, _) in fields {
                            let name = HISTORY_FIELDS.iter().find(|f| f.eq_ignore_ascii_case(name)).expect("checked");
                            row.insert((*name).into(), h[*name].clone());
                        }
                        Value::Object(row)
                    })
                    .collect();
                let value = if projected.is_empty() {
                    Value::Null
                } else {
                    json!({ "totalSize": projected.len(), "done": true, "records": projected })
                };
                out.insert("OpportunityHistories".into(), value);
            }
        }
    }
    Value::Object(out)
}

// ---- describe ----

fn describe(inner: &Inner, version: &str) -> Response {
    let fields: Vec<Value> = inner
        .fields
        .iter()
        .filter(|f| !inner.is_removed(f.name))
        .map(|f| {
            let (precision, scale) = f.digits.unwrap_or((0, 0));
            let picklist: Vec<Value> = f
                .picklist
                .iter()
                .map(|v| json!({ "active": true, "defaultValue": false, "label": v, "validFor": null, "value": v }))
                .collect();
            json!({
                "name": f.name,
                "label": f.label,
                "type": f.kind,
                "custom": f.custom,
                "updateable": f.updateable,
                "createable": f.updateable,
                "nillable": !matches!(f.kind, "id" | "boolean") && !matches!(f.name, "Name" | "StageName" | "CloseDate"),
                "length": f.length,
                "precision": precision,
                "scale": scale,
                "filterable": f.kind != "textarea",
                "sortable": f.kind != "textarea",
                "calculated": false,
                "externalId": false,
                "picklistValues": picklist,
                "restrictedPicklist": f.restricted,
                "relationshipName": f.reference.map(|(r, _)| r),
                "referenceTo": f.reference.map(|(_, t)| vec![t]).unwrap_or_default(),
            })
        })
        .collect();
    let base = format!("/services/data/{version}/sobjects/Opportunity");
    axum::Json(json!({
        "name": "Opportunity",
        "label": "Opportunity",
        "labelPlural": "Opportunities",
        "keyPrefix": "006",
        "custom": false,
        "createable": true,
        "updateable": true,
        "queryable": true,
        "urls": { "sobject": base, "describe": format!("{base}/describe"), "rowTemplate": format!("{base}/{{ID}}") },
        "childRelationships": [
            { "childSObject": "OpportunityHistory", "field": "OpportunityId", "relationshipName": "OpportunityHistories" },
        ],
        "fields": fields,
    }))
    .into_response()
}

// ---- record updates (Collections and Bulk) ----

/// Why one record's update failed.
#[derive(Debug, Clone)]
struct RecordError {
    code: String,
    message: String,
    fields: Vec<String>,
}

impl RecordError {
    fn new(code: &str, message: impl Into<String>, fields: &[&str]) -> RecordError {
        RecordError {
            code: code.into(),
            message: message.into(),
            fields: fields.iter().map(|f| (*f).to_owned()).collect(),
        }
    }
    fn json(&self) -> Value {
        json!({ "statusCode": self.code, "message": self.message, "fields": self.fields })
    }
    /// Bulk API's `sf__Error`: `CODE:message:fields --`.
    fn bulk(&self) -> String {
        let fields = self.fields.join(",");
        if fields.is_empty() {
            format!("{}:{}:--", self.code, self.message)
        } else {
            format!("{}:{}:{fields} --", self.code, self.message)
        }
    }
}

fn scripted_message(code: &str, id: &str) -> String {
    match code {
        "UNABLE_TO_LOCK_ROW" => "unable to obtain exclusive access to this record".into(),
        "ENTITY_IS_DELETED" => "entity is deleted".into(),
        "INVALID_CROSS_REFERENCE_KEY" => "invalid cross reference id".into(),
        "FIELD_CUSTOM_VALIDATION_EXCEPTION" => "a validation rule refused the record".into(),
        other => format!("{other} for record {id}"),
    }
}

/// A JSON value for field `def`, stored as Salesforce would keep it; `Err` is the text of the
/// JSON_PARSER_ERROR the value would meet.
fn coerce(def: &FieldDef, value: &Value) -> Result<Value, String> {
    let bad = || {
        format!(
            "Cannot deserialize instance of {} from {value} value or request may be missing a required field",
            def.kind
        )
    };
    match (def.kind, value) {
        (_, Value::Null) => Ok(Value::Null),
        ("double" | "currency" | "percent", Value::Number(_)) => Ok(value.clone()),
        ("boolean", Value::Bool(_)) => Ok(value.clone()),
        ("datetime", Value::String(s)) => parse_datetime(s).map(|t| json!(sf_datetime(t))).ok_or_else(bad),
        ("date", Value::String(s)) if is_date(s) => Ok(value.clone()),
        ("id" | "reference" | "string" | "picklist" | "textarea", Value::String(_)) => Ok(value.clone()),
        _ => Err(bad()),
    }
}

/// The value checks Salesforce makes per record: permission, picklist, range, length.
fn check_values(inner: &Inner, changes: &Map<String, Value>) -> Result<(), RecordError> {
    let defs: Vec<(&FieldDef, &Value)> = changes.iter().filter_map(|(k, v)| Some((inner.field(k)?, v))).collect();
    let read_only: Vec<&str> = defs.iter().filter(|(d, _)| !d.updateable).map(|(d, _)| d.name).collect();
    if !read_only.is_empty() {
        let message = format!(
            "Unable to create/update fields: {}. Please check the security settings of this field and verify that it \
             is read/write for your profile or permission set.",
            read_only.join(", ")
        );
        return Err(RecordError::new("INVALID_FIELD_FOR_INSERT_UPDATE", message, &read_only));
    }
    for (def, value) in defs {
        match value {
            Value::String(s) if def.restricted && !def.picklist.contains(&s.as_str()) => {
                let message = format!("{}: bad value for restricted picklist field: {s}", def.label);
                return Err(RecordError::new("INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST", message, &[def.name]));
            }
            Value::String(s) if def.length > 0 && s.chars().count() > def.length => {
                let message = format!("{}: data value too large: (max length={})", def.label, def.length);
                return Err(RecordError::new("STRING_TOO_LONG", message, &[def.name]));
            }
            Value::Number(n) => {
                let (precision, scale) = def.digits.unwrap_or((18, 0));
                let bound = 10f64.powi(i32::try_from(precision - scale).unwrap_or(18));
                if n.as_f64().is_some_and(|x| x.abs() >= bound) {
                    let message = format!("{}: value outside of valid range on numeric field: {n}", def.label);
                    return Err(RecordError::new("NUMBER_OUTSIDE_VALID_RANGE", message, &[def.name]));
                }
            }
            _ => {}
        }
    }
    Ok(())
}

/// Every per-record check of an update of `id` with `changes` (consuming a scripted failure).
fn check_record(inner: &mut Inner, id: &str, changes: &Map<String, Value>) -> Result<(), RecordError> {
    if !is_id_of(id, "006") {
        return Err(RecordError::new(
            "MALFORMED_ID",
            format!("Opportunity ID: id value of incorrect type: {id}"),
            &["Id"],
        ));
    }
    if inner.deleted.contains(id) {
        return Err(RecordError::new("ENTITY_IS_DELETED", "entity is deleted", &[]));
    }
    if !inner.opportunities.contains_key(id) {
        return Err(RecordError::new("INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id", &[]));
    }
    if let Some(code) = inner.record_failures.remove(id) {
        return Err(RecordError::new(&code, scripted_message(&code, id), &[]));
    }
    check_values(inner, changes)
}

/// Writes `changes` into record `id` as the integration user, and logs it.
fn apply(inner: &mut Inner, id: &str, changes: Map<String, Value>, job: Option<&str>) {
    let now = json!(sf_datetime(inner.now()));
    let user = json!(inner.org.integration_user_id);
    let record = inner.opportunities.get_mut(id).and_then(Value::as_object_mut).expect("checked");
    let stage_changed = changes.contains_key("StageName");
    record.extend(changes.clone());
    derive_closed(record, stage_changed);
    record.insert("SystemModstamp".into(), now.clone());
    record.insert("LastModifiedDate".into(), now);
    record.insert("LastModifiedById".into(), user);
    inner.updates.push(Update { id: id.to_owned(), fields: changes, job: job.map(str::to_owned) });
}

fn collections(inner: &mut Inner, body: &str) -> Response {
    let Ok(request) = serde_json::from_str::<Value>(body) else {
        return json_parser_error("Unexpected character: the body is not JSON");
    };
    let Some(records) = request["records"].as_array() else {
        return json_parser_error("Cannot deserialize the request: 'records' is required");
    };
    if records.len() > COLLECTIONS_LIMIT {
        return sf_error(
            StatusCode::BAD_REQUEST,
            "EXCEEDED_ID_LIMIT",
            "Record limit reached. Cannot submit more than 200 records into this call",
        );
    }
    let all_or_none = request["allOrNone"].as_bool().unwrap_or(false);
    // The whole request is refused for what Salesforce cannot even deserialize.
    let mut parsed = Vec::with_capacity(records.len());
    for record in records {
        let Some(fields) = record.as_object() else { return json_parser_error("a record is not a JSON object") };
        match record["attributes"]["type"].as_str() {
            Some("Opportunity") => {}
            Some(other) => {
                return sf_error(
                    StatusCode::BAD_REQUEST,
                    "INVALID_TYPE",
                    &format!("sObject type '{other}' is not supported."),
                );
            }
            None => return sf_error(StatusCode::BAD_REQUEST, "INVALID_TYPE", "Must send a concrete entity type."),
        }
        let id = fields.get("id").or_else(|| fields.get("Id")).and_then(Value::as_str).map(complete_id);
        let mut changes = Map::new();
        for (key, value) in fields.iter().filter(|(k, _)| !matches!(k.as_str(), "attributes" | "id" | "Id")) {
            let Some(def) = inner.field(key) else {
                let message = format!("No such column '{key}' on sobject of type Opportunity");
                return sf_error(StatusCode::BAD_REQUEST, "INVALID_FIELD", &message);
            };
            match coerce(def, value) {
                Ok(value) => changes.insert(def.name.to_owned(), value),
                Err(message) => return json_parser_error(&message),
            };
        }
        parsed.push((id, changes));
    }
    let outcomes: Vec<Result<(), RecordError>> = parsed
        .iter()
        .map(|(id, changes)| match id {
            Some(id) => check_record(inner, id, changes),
            None => Err(RecordError::new("MISSING_ARGUMENT", "Id not specified in an update call", &[])),
        })
        .collect();
    let rolled_back = all_or_none && outcomes.iter().any(Result::is_err);
    let mut results = Vec::with_capacity(parsed.len());
    for ((id, changes), outcome) in parsed.into_iter().zip(outcomes) {
        let shown_id = |e: &RecordError| e.code != "MALFORMED_ID" && e.code != "MISSING_ARGUMENT";
        let result = match outcome {
            Ok(()) if rolled_back => {
                let e = RecordError::new(
                    "ALL_OR_NONE_OPERATION_ROLLED_BACK",
                    "Record rolled back because not all records were valid and the request was using AllOrNone header",
                    &[],
                );
                json!({ "id": id, "success": false, "errors": [e.json()] })
            }
            Ok(()) => {
                let id = id.expect("checked");
                apply(inner, &id, changes, None);
                json!({ "id": id, "success": true, "errors": [] })
            }
            Err(e) if shown_id(&e) => json!({ "id": id, "success": false, "errors": [e.json()] }),
            Err(e) => json!({ "success": false, "errors": [e.json()] }),
        };
        results.push(result);
    }
    axum::Json(Value::Array(results)).into_response()
}

// ---- Bulk API 2.0 ----

fn bulk_error(status: StatusCode, code: &str, message: &str) -> Response {
    sf_error(status, code, message)
}

fn job_json(job: &BulkJob, user: &str) -> Value {
    let version = job.api_version.trim_start_matches('v');
    let mut info = json!({
        "id": job.id,
        "operation": job.operation,
        "object": job.object,
        "createdById": user,
        "createdDate": job.created,
        "systemModstamp": job.created,
        "state": job.state,
        "concurrencyMode": "Parallel",
        "contentType": "CSV",
        "apiVersion": version.parse::<f64>().unwrap_or(0.0),
        "contentUrl": format!("services/data/{}/jobs/ingest/{}/batches", job.api_version, job.id),
        "lineEnding": job.line_ending,
        "columnDelimiter": job.delimiter,
        "jobType": "V2Ingest",
        "numberRecordsProcessed": job.records_processed,
        "numberRecordsFailed": job.records_failed,
        "retries": 0,
        "totalProcessingTime": 0,
        "apiActiveProcessingTime": 0,
        "apexProcessingTime": 0,
    });
    if let Some(message) = &job.error_message {
        info["errorMessage"] = json!(message);
    }
    info
}

fn delimiter_byte(name: &str) -> Option<u8> {
    Some(match name {
        "COMMA" => b',',
        "SEMICOLON" => b';',
        "PIPE" => b'|',
        "TAB" => b'\t',
        "CARET" => b'^',
        "BACKQUOTE" => b'`',
        _ => return None,
    })
}

fn job_create(inner: &mut Inner, version: &str, body: &str) -> Response {
    let Ok(request) = serde_json::from_str::<Value>(body) else { return json_parser_error("the body is not JSON") };
    let text = |name: &str, default: &str| request[name].as_str().unwrap_or(default).to_owned();
    let (object, operation) = (text("object", ""), text("operation", ""));
    let (line_ending, delimiter) = (text("lineEnding", "LF"), text("columnDelimiter", "COMMA"));
    if object != "Opportunity" {
        return bulk_error(
            StatusCode::BAD_REQUEST,
            "INVALIDENTITY",
            &format!("Entity '{object}' is not supported by this org"),
        );
    }
    if operation != "update" {
        return bulk_error(
            StatusCode::BAD_REQUEST,
            "INVALIDJOB",
            &format!("operation '{operation}' is not supported by the fake"),
        );
    }
    if text("contentType", "CSV") != "CSV"
        || delimiter_byte(&delimiter).is_none()
        || !matches!(line_ending.as_str(), "LF" | "CRLF")
    {
        return bulk_error(
            StatusCode::BAD_REQUEST,
            "INVALIDJOB",
            "contentType, lineEnding or columnDelimiter is invalid",
        );
    }
    let job = BulkJob {
        id: inner.new_id("750"),
        object,
        operation,
        state: "Open".into(),
        api_version: version.to_owned(),
        uploads: Vec::new(),
        records_processed: 0,
        records_failed: 0,
        error_message: None,
        line_ending,
        delimiter,
        created: sf_datetime(inner.now()),
        results: Vec::new(),
        header: Vec::new(),
    };
    let info = job_json(&job, &inner.org.integration_user_id);
    inner.jobs.push(job);
    axum::Json(info).into_response()
}

fn job_mut<'a>(inner: &'a mut Inner, id: &str) -> Option<&'a mut BulkJob> {
    inner.jobs.iter_mut().find(|j| j.id == id)
}

/// The CSV one Bulk API 2.0 job takes (150 MB once base64-encoded).
const BULK_UPLOAD_LIMIT: usize = 100 * 1024 * 1024;

fn job_upload(inner: &mut Inner, id: &str, headers: &HeaderMap, body: &str) -> Response {
    let csv = headers.get("content-type").and_then(|v| v.to_str().ok()).is_some_and(|v| v.starts_with("text/csv"));
    let Some(job) = job_mut(inner, id) else { return resource_missing() };
    if !csv {
        return bulk_error(StatusCode::BAD_REQUEST, "INVALIDCONTENTTYPE", "Content-Type must be text/csv");
    }
    if job.state != "Open" {
        let message = format!("Job {id} is {}: data can only be uploaded to an Open job", job.state);
        return bulk_error(StatusCode::BAD_REQUEST, "INVALIDJOBSTATE", &message);
    }
    if body.len() > BULK_UPLOAD_LIMIT {
        let message = format!("{} bytes of CSV: a job takes at most {BULK_UPLOAD_LIMIT}", body.len());
        return bulk_error(StatusCode::BAD_REQUEST, "EXCEEDED_QUOTA", &message);
    }
    job.uploads.push(body.to_owned());
    StatusCode::CREATED.into_response()
}

fn job_state(inner: &mut Inner, id: &str, body: &str) -> Response {
    let wanted = serde_json::from_str::<Value>(body).ok().and_then(|v| v["state"].as_str().map(str::to_owned));
    let user = inner.org.integration_user_id.clone();
    let Some(job) = job_mut(inner, id) else { return resource_missing() };
    let allowed = matches!(
        (job.state.as_str(), wanted.as_deref()),
        ("Open", Some("UploadComplete")) | ("Open" | "UploadComplete" | "InProgress", Some("Aborted"))
    );
    if !allowed {
        let message =
            format!("Invalid state transition from {} to {}", job.state, wanted.as_deref().unwrap_or("nothing"));
        return bulk_error(StatusCode::BAD_REQUEST, "INVALIDJOBSTATE", &message);
    }
    job.state = wanted.expect("allowed");
    axum::Json(job_json(job, &user)).into_response()
}

fn job_info(inner: &mut Inner, id: &str) -> Response {
    let Some(state) = job_mut(inner, id).map(|j| j.state.clone()) else { return resource_missing() };
    match state.as_str() {
        "UploadComplete" => job_mut(inner, id).expect("found").state = "InProgress".into(),
        "InProgress" => process_job(inner, id),
        _ => {}
    }
    let job = inner.jobs.iter().find(|j| j.id == id).expect("found");
    axum::Json(job_json(job, &inner.org.integration_user_id)).into_response()
}

/// Applies a job's rows like Collections updates: JobComplete with per-row results, or Failed
/// when a header names no field.
fn process_job(inner: &mut Inner, id: &str) {
    let job = job_mut(inner, id).expect("found").clone();
    let delimiter = delimiter_byte(&job.delimiter).expect("checked at creation");
    let mut header: Vec<String> = Vec::new();
    let mut results = Vec::new();
    let mut failure = None;
    'uploads: for upload in &job.uploads {
        let mut reader = csv::ReaderBuilder::new().delimiter(delimiter).from_reader(upload.as_bytes());
        let columns: Vec<String> = match reader.headers() {
            Ok(h) => h.iter().map(str::to_owned).collect(),
            Err(e) => {
                failure = Some(format!("InvalidBatch : {e}"));
                break;
            }
        };
        let Some(id_column) = columns.iter().position(|c| c.eq_ignore_ascii_case("Id")) else {
            failure = Some("InvalidBatch : Field name not found : Id".into());
            break;
        };
        let mut defs = Vec::new();
        for (i, column) in columns.iter().enumerate().filter(|(i, _)| *i != id_column) {
            match inner.field(column) {
                Some(def) => defs.push((i, def.clone())),
                None => {
                    failure = Some(format!("InvalidBatch : Field name not found : {column}"));
                    break 'uploads;
                }
            }
        }
        header = columns;
        for row in reader.records() {
            let Ok(row) = row else {
                failure = Some("InvalidBatch : a row does not match the header".into());
                break 'uploads;
            };
            let cells: Vec<String> = row.iter().map(str::to_owned).collect();
            let record_id = complete_id(cells.get(id_column).map_or("", String::as_str));
            let outcome = bulk_changes(&defs, &cells).and_then(|changes| {
                check_record(inner, &record_id, &changes)?;
                Ok(changes)
            });
            match outcome {
                Ok(changes) => {
                    apply(inner, &record_id, changes, Some(id));
                    results.push((record_id, None, cells));
                }
                Err(e) => results.push((record_id, Some(e.bulk()), cells)),
            }
        }
    }
    let job = job_mut(inner, id).expect("found");
    if let Some(message) = failure {
        job.state = "Failed".into();
        job.error_message = Some(message);
        return;
    }
    job.records_processed = results.len();
    job.records_failed = results.iter().filter(|r| r.1.is_some()).count();
    job.results = results;
    job.header = header;
    job.state = "JobComplete".into();
}

/// A CSV row's changes: an empty cell leaves the field alone, `#N/A` clears it.
fn bulk_changes(defs: &[(usize, FieldDef)], cells: &[String]) -> Result<Map<String, Value>, RecordError> {
    let mut changes = Map::new();
    for (i, def) in defs {
        let cell = cells.get(*i).map_or("", String::as_str);
        let value = match cell {
            "" => continue,
            "#N/A" => Value::Null,
            text => match def.kind {
                "double" | "currency" | "percent" => match text.parse::<f64>() {
                    Ok(n) => json!(n),
                    Err(_) => Value::String(text.to_owned()),
                },
                "boolean" => match text.to_ascii_lowercase().as_str() {
                    "true" | "1" => json!(true),
                    "false" | "0" => json!(false),
                    _ => Value::String(text.to_owned()),
                },
                _ => Value::String(text.to_owned()),
            },
        };
        let value = coerce(def, &value).map_err(|_| {
            let message = format!("'{cell}' is not a valid value for the type of field {}", def.name);
            RecordError::new("INVALID_FIELD", message, &[def.name])
        })?;
        changes.insert(def.name.to_owned(), value);
    }
    Ok(changes)
}

fn job_results(inner: &mut Inner, id: &str, failed: bool) -> Response {
    let Some(job) = job_mut(inner, id) else { return resource_missing() };
    if job.state != "JobComplete" {
        let message = format!("Job {id} is {}: results are ready once it is JobComplete", job.state);
        return bulk_error(StatusCode::BAD_REQUEST, "INVALIDJOBSTATE", &message);
    }
    let terminator = if job.line_ending == "CRLF" { csv::Terminator::CRLF } else { csv::Terminator::Any(b'\n') };
    let mut writer = csv::WriterBuilder::new()
        .delimiter(delimiter_byte(&job.delimiter).expect("checked"))
        .terminator(terminator)
        .quote_style(csv::QuoteStyle::Always)
        .from_writer(Vec::new());
    let second = if failed { "sf__Error" } else { "sf__Created" };
    let head = ["sf__Id", second].into_iter().map(str::to_owned).chain(job.header.iter().cloned());
    writer.write_record(head.collect::<Vec<_>>()).expect("write to memory");
    for (record_id, error, cells) in &job.results {
        let second = match (failed, error) {
            (true, Some(e)) => e.clone(),
            (false, None) => "false".into(),
            _ => continue,
        };
        let row = [record_id.clone(), second].into_iter().chain(cells.iter().cloned());
        writer.write_record(row.collect::<Vec<_>>()).expect("write to memory");
    }
    let bytes = writer.into_inner().expect("flush to memory");
    ([("content-type", "text/csv")], bytes).into_response()
}

// ---- Tasks ----

fn task_upsert(inner: &mut Inner, key: &str, body: &str) -> Response {
    let Ok(Value::Object(fields)) = serde_json::from_str::<Value>(body) else {
        return json_parser_error("the body is not a JSON object");
    };
    let bad_request =
        |code: &str, message: &str, fields: &[&str]| sf_error_fields(StatusCode::BAD_REQUEST, code, message, fields);
    let mut changes = Map::new();
    for (name, value) in fields.into_iter().filter(|(k, _)| k != "attributes") {
        let Some(canonical) = TASK_FIELDS.iter().find(|f| f.eq_ignore_ascii_case(&name)) else {
            return sf_error(
                StatusCode::BAD_REQUEST,
                "INVALID_FIELD",
                &format!("No such column '{name}' on sobject of type Task"),
            );
        };
        if !matches!(value, Value::Null | Value::String(_)) {
            return json_parser_error(&format!(
                "Cannot deserialize instance of string from {value} value for {canonical}"
            ));
        }
        changes.insert((*canonical).to_owned(), value);
    }
    let existing =
        inner.tasks.iter().position(|t| t["Dealwatch_Key__c"].as_str().is_some_and(|k| k.eq_ignore_ascii_case(key)));
    let mut merged = existing.map(|i| inner.tasks[i].as_object().cloned().unwrap_or_default()).unwrap_or_default();
    merged.extend(changes);
    if existing.is_none() {
        merged.entry("Priority").or_insert(json!("Normal"));
        merged.entry("Status").or_insert(json!("Not Started"));
        merged.entry("OwnerId").or_insert(json!(inner.org.integration_user_id));
    }
    let text = |name: &str| merged.get(name).and_then(Value::as_str).map(str::to_owned);
    if text("Subject").is_none_or(|s| s.trim().is_empty()) {
        return bad_request("REQUIRED_FIELD_MISSING", "Required fields are missing: [Subject]", &["Subject"]);
    }
    for (name, label, allowed) in [("Priority", "Priority", TASK_PRIORITIES), ("Status", "Status", TASK_STATUSES)] {
        match text(name) {
            Some(v) if allowed.contains(&v.as_str()) => {}
            v => {
                let message = format!("{label}: bad value for restricted picklist field: {}", v.unwrap_or_default());
                return bad_request("INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST", &message, &[name]);
            }
        }
    }
    if let Some(date) = text("ActivityDate").filter(|d| !is_date(d)) {
        return json_parser_error(&format!("Cannot deserialize instance of date from VALUE_STRING value {date}"));
    }
    let what = text("WhatId").map(|w| complete_id(&w));
    if let Some(what) = &what {
        if !is_id_of(what, "006") {
            return bad_request(
                "INVALID_CROSS_REFERENCE_KEY",
                &format!("What ID: id value of incorrect type: {what}"),
                &["WhatId"],
            );
        }
        if !inner.opportunities.contains_key(what) {
            return bad_request("INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id", &["WhatId"]);
        }
    }
    if let Some(owner) = text("OwnerId").filter(|o| !is_id_of(o, "005")) {
        return bad_request(
            "INVALID_CROSS_REFERENCE_KEY",
            &format!("Assigned To ID: id value of incorrect type: {owner}"),
            &["OwnerId"],
        );
    }
    for (name, max) in [("Subject", 255), ("Description", 32000)] {
        if text(name).is_some_and(|t| t.chars().count() > max) {
            return bad_request(
                "STRING_TOO_LONG",
                &format!("{name}: data value too large: (max length={max})"),
                &[name],
            );
        }
    }
    if let Some(what) = what {
        merged.insert("WhatId".into(), json!(what));
    }
    let now = json!(sf_datetime(inner.now()));
    merged.insert("SystemModstamp".into(), now.clone());
    merged.insert("LastModifiedDate".into(), now.clone());
    let (id, created) = match existing {
        Some(i) => {
            let id = inner.tasks[i]["Id"].as_str().unwrap_or_default().to_owned();
            inner.tasks[i] = Value::Object(merged);
            (id, false)
        }
        None => {
            let id = inner.new_id("00T");
            merged.insert("Id".into(), json!(id));
            merged.insert("Dealwatch_Key__c".into(), json!(key));
            merged.insert("CreatedDate".into(), now);
            inner.tasks.push(Value::Object(merged));
            (id, true)
        }
    };
    let status = if created { StatusCode::CREATED } else { StatusCode::OK };
    (status, axum::Json(json!({ "id": id, "success": true, "errors": [], "created": created }))).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Serialize)]
    struct Claims<'a> {
        iss: &'a str,
        sub: &'a str,
        aud: &'a str,
        exp: i64,
    }

    fn assertion(iss: &str, sub: &str, aud: &str, exp_in: i64) -> String {
        let key = jsonwebtoken::EncodingKey::from_rsa_pem(TEST_PRIVATE_KEY_PEM.as_bytes()).expect("fixture key");
        let claims = Claims { iss, sub, aud, exp: Utc::now().timestamp() + exp_in };
        jsonwebtoken::encode(&jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256), &claims, &key).expect("sign")
    }

    async fn sign_in(sf: &FakeSalesforce, jwt: &str) -> (u16, Value) {
        let form = [("grant_type", JWT_GRANT), ("assertion", jwt)];
        let response =
            crate::http().post(format!("{}/services/oauth2/token", sf.base)).form(&form).send().await.expect("token");
        crate::json_of(response).await
    }

    /// A started fake with a fixed clock and a signed-in token.
    async fn started() -> (FakeSalesforce, String) {
        let sf = FakeSalesforce::start(FakeOrg::default()).await;
        sf.set_clock(parse_datetime("2026-12-02T10:00:00Z"));
        let org = FakeOrg::default();
        let (status, answer) = sign_in(&sf, &assertion(&org.consumer_key, &org.username, &sf.base, 170)).await;
        assert_eq!(status, 200, "{answer}");
        (sf, answer["access_token"].as_str().expect("token").to_owned())
    }

    fn deal(n: u64, stage: &str) -> Value {
        json!({
            "Id": opportunity_id(n), "Name": format!("Deal {n}"), "StageName": stage, "Amount": 1000.0 * n as f64,
            "CloseDate": "2026-12-01", "CreatedDate": "2026-01-05T10:00:00.000+0000", "LeadSource": "Web",
            "Type": "New Customer", "OwnerId": sf_id("005", 7),
            "Owner": { "Email": "rep@acme.test", "Name": "Rep" },
            "Account": { "Name": format!("Acme {n}"), "Industry": "Retail", "BillingCountry": "DE" },
        })
    }

    async fn get(sf: &FakeSalesforce, token: &str, path: &str) -> (u16, Value, HeaderMap) {
        let response = crate::http().get(format!("{}{path}", sf.base)).bearer_auth(token).send().await.expect("GET");
        let headers = response.headers().clone();
        let (status, body) = crate::json_of(response).await;
        (status, body, headers)
    }

    async fn query(sf: &FakeSalesforce, token: &str, soql: &str) -> (u16, Value) {
        let response = crate::http()
            .get(format!("{}/services/data/v66.0/query", sf.base))
            .query(&[("q", soql)])
            .bearer_auth(token)
            .send()
            .await
            .expect("query");
        crate::json_of(response).await
    }

    async fn send(sf: &FakeSalesforce, token: &str, method: Method, path: &str, body: &Value) -> (u16, Value) {
        let response = crate::http()
            .request(method, format!("{}{path}", sf.base))
            .bearer_auth(token)
            .json(body)
            .send()
            .await
            .expect("send");
        crate::json_of(response).await
    }

    #[tokio::test]
    async fn the_jwt_flow_takes_a_good_assertion_and_refuses_bad_ones() {
        let (sf, token) = started().await;
        let org = FakeOrg::default();
        assert!(token.starts_with("00DFAKE!"));
        let (status, answer) =
            sign_in(&sf, &assertion(&org.consumer_key, &org.username, "https://login.salesforce.com", 60)).await;
        assert_eq!(status, 200);
        assert_eq!(answer["instance_url"], json!(sf.base));
        assert_eq!(answer["token_type"], "Bearer");
        assert!(answer["id"].as_str().is_some_and(|id| id.ends_with(&format!("/{}", org.integration_user_id))));
        assert!(answer["issued_at"].as_str().is_some_and(|t| t.parse::<i64>().is_ok()));
        let expected =
            token_signature(&org.client_secret, answer["id"].as_str().unwrap(), answer["issued_at"].as_str().unwrap());
        assert_eq!(answer["signature"], json!(expected));

        let cases = [
            (assertion("someone-else", &org.username, &sf.base, 60), "invalid_client_id", "client identifier invalid"),
            (
                assertion(&org.consumer_key, &org.username, "https://evil.test", 60),
                "invalid_grant",
                "audience is invalid",
            ),
            (
                assertion(&org.consumer_key, "nobody@x.test", &sf.base, 60),
                "invalid_grant",
                "user hasn't approved this consumer",
            ),
            (assertion(&org.consumer_key, &org.username, &sf.base, -5), "invalid_grant", "expired authorization code"),
            (assertion(&org.consumer_key, &org.username, &sf.base, 3600), "invalid_grant", "invalid assertion"),
        ];
        for (jwt, error, description) in cases {
            let (status, answer) = sign_in(&sf, &jwt).await;
            assert_eq!(
                (status, answer["error"].as_str(), answer["error_description"].as_str()),
                (400, Some(error), Some(description))
            );
        }
        // A tampered signature.
        let mut jwt = assertion(&org.consumer_key, &org.username, &sf.base, 60);
        jwt.replace_range(jwt.len() - 6.., "AAAAAA");
        assert_eq!(sign_in(&sf, &jwt).await.1["error_description"], "invalid assertion");
        assert_eq!(sf.tokens_issued().len(), 2);

        // Client credentials, in the form and in HTTP Basic.
        let url = format!("{}/services/oauth2/token", sf.base);
        let good = [
            ("grant_type", "client_credentials"),
            ("client_id", &org.client_id),
            ("client_secret", &org.client_secret),
        ];
        let (status, _) = crate::json_of(crate::http().post(&url).form(&good).send().await.unwrap()).await;
        assert_eq!(status, 200);
        let response = crate::http()
            .post(&url)
            .basic_auth(&org.client_id, Some("wrong"))
            .form(&[("grant_type", "client_credentials")])
            .send()
            .await
            .unwrap();
        let (status, answer) = crate::json_of(response).await;
        assert_eq!((status, answer["error"].as_str()), (400, Some("invalid_client")));
    }

    #[tokio::test]
    async fn queries_page_and_nest_relationships() {
        let (sf, token) = started().await;
        for n in 1..=5 {
            sf.put_opportunity(deal(n, "Prospecting"));
        }
        sf.add_history(&opportunity_id(1), "Qualification", "2026-02-01T00:00:00Z");
        sf.add_history(&opportunity_id(1), "Prospecting", "2026-01-05T10:00:00Z");
        sf.set_page_size(2);
        let soql = "select Id, Name, Account.Industry, Account.Name, Owner.Email, \
                    (SELECT StageName, CreatedDate FROM OpportunityHistories ORDER BY CreatedDate) \
                    FROM Opportunity ORDER BY SystemModstamp, Id";
        let (status, first) = query(&sf, &token, soql).await;
        assert_eq!(status, 200, "{first}");
        assert_eq!((first["totalSize"].as_u64(), first["done"].as_bool()), (Some(5), Some(false)));
        let record = &first["records"][0];
        assert_eq!(record["attributes"]["type"], "Opportunity");
        assert_eq!(
            record["attributes"]["url"],
            json!(format!("/services/data/v66.0/sobjects/Opportunity/{}", opportunity_id(1)))
        );
        assert_eq!(record["Account"]["Industry"], "Retail");
        assert_eq!(record["Account"]["attributes"]["type"], "Account");
        assert_eq!(record["Owner"]["Email"], "rep@acme.test");
        assert!(record.get("StageName").is_none(), "only selected fields");
        let history = &record["OpportunityHistories"];
        assert_eq!(history["totalSize"], 2);
        assert_eq!(history["records"][0]["StageName"], "Prospecting");
        assert_eq!(history["records"][0]["attributes"]["type"], "OpportunityHistory");
        assert_eq!(first["records"][1]["OpportunityHistories"], Value::Null);

        let mut ids: Vec<Value> = first["records"].as_array().unwrap().iter().map(|r| r["Id"].clone()).collect();
        let mut next = first["nextRecordsUrl"].as_str().map(str::to_owned);
        while let Some(url) = next {
            assert!(url.starts_with("/services/data/v66.0/query/01gFAKE"), "{url}");
            let (status, page, headers) = get(&sf, &token, &url).await;
            assert_eq!(status, 200);
            assert!(headers.contains_key("sforce-limit-info"));
            assert_eq!(page["totalSize"], 5);
            ids.extend(page["records"].as_array().unwrap().iter().map(|r| r["Id"].clone()));
            next = page["nextRecordsUrl"].as_str().map(str::to_owned);
            assert_eq!(page["done"], next.is_none());
        }
        assert_eq!(ids, (1..=5).map(|n| json!(opportunity_id(n))).collect::<Vec<_>>());
        assert_eq!(sf.soql(), vec![soql.to_owned()]);
        assert!(sf.calls().iter().all(|c| c.version.as_deref() == Some("v66.0") || c.path.contains("oauth2")));
    }

    #[tokio::test]
    async fn queries_filter_and_refuse_unknown_fields() {
        let (sf, token) = started().await;
        sf.put_opportunity(deal(1, "Prospecting"));
        sf.put_opportunity(deal(2, "Closed Won"));
        sf.advance_clock(60);
        sf.put_opportunity(deal(3, "Qualification"));
        sf.advance_clock(60);
        sf.touch(&opportunity_id(1), json!({ "Amount": 5.0 }));

        let (_, answer) = query(&sf, &token, "SELECT Id FROM Opportunity WHERE SystemModstamp >= 2026-12-02T10:01:00Z AND IsClosed = false ORDER BY SystemModstamp, Id").await;
        let ids: Vec<&str> = answer["records"].as_array().unwrap().iter().map(|r| r["Id"].as_str().unwrap()).collect();
        assert_eq!(ids, [opportunity_id(3), opportunity_id(1)]);
        let (_, answer) =
            query(&sf, &token, "SELECT Id FROM Opportunity WHERE SystemModstamp > 2026-12-02T11:01:00+01:00").await;
        assert_eq!(answer["totalSize"], 1, "the offset is honoured");
        let soql = format!(
            "SELECT Id, IsWon FROM Opportunity WHERE Id IN ('{}', '{}') AND Id > '{}'",
            opportunity_id(1),
            opportunity_id(2),
            opportunity_id(1)
        );
        let (_, answer) = query(&sf, &token, &soql).await;
        assert_eq!(answer["records"][0]["IsWon"], true);
        assert_eq!(answer["totalSize"], 1);
        let (_, answer) = query(&sf, &token, "SELECT Id FROM Opportunity ORDER BY Amount DESC LIMIT 1").await;
        assert_eq!(answer["records"][0]["Id"], json!(opportunity_id(3)));

        sf.remove_field("Risk_Score__c");
        let (status, answer) = query(&sf, &token, "SELECT Id, Risk_Score__c FROM Opportunity").await;
        assert_eq!((status, answer[0]["errorCode"].as_str()), (400, Some("INVALID_FIELD")));
        let message = answer[0]["message"].as_str().unwrap();
        assert!(
            message.contains("ERROR at Row:1:Column:12") && message.contains("No such column 'Risk_Score__c'"),
            "{message}"
        );
        let (status, answer) =
            query(&sf, &token, "SELECT Id FROM Opportunity WHERE SystemModstamp > '2026-12-02T10:00:00Z'").await;
        assert_eq!((status, answer[0]["errorCode"].as_str()), (400, Some("INVALID_FIELD")));
        let (status, answer) = query(&sf, &token, "SELECT Id FROM Opportunity WHERE").await;
        assert_eq!((status, answer[0]["errorCode"].as_str()), (400, Some("MALFORMED_QUERY")));
        let (status, answer) = query(&sf, &token, "SELECT Id, Acount.Name FROM Opportunity").await;
        assert_eq!((status, answer[0]["errorCode"].as_str()), (400, Some("INVALID_FIELD")));
    }

    #[tokio::test]
    async fn collections_answer_per_record() {
        let (sf, token) = started().await;
        for n in 1..=3 {
            sf.put_opportunity(deal(n, "Prospecting"));
        }
        sf.fail_records(&[&opportunity_id(2)], "UNABLE_TO_LOCK_ROW");
        let record = |id: &str, category: &str| {
            json!({ "attributes": { "type": "Opportunity" }, "id": id, "Risk_Score__c": 72, "Risk_Category__c": category,
                    "Risk_Updated__c": "2026-12-02T10:00:00Z" })
        };
        let path = "/services/data/v66.0/composite/sobjects";
        let body = json!({ "allOrNone": false, "records": [
            record(&opportunity_id(1), "High"), record(&opportunity_id(2), "High"),
            record(&opportunity_id(3), "Severe"), record(&opportunity_id(9), "Low"),
        ]});
        let (status, results) = send(&sf, &token, Method::PATCH, path, &body).await;
        assert_eq!(status, 200, "{results}");
        let codes: Vec<Option<&str>> =
            results.as_array().unwrap().iter().map(|r| r["errors"][0]["statusCode"].as_str()).collect();
        assert_eq!(
            codes,
            [
                None,
                Some("UNABLE_TO_LOCK_ROW"),
                Some("INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST"),
                Some("INVALID_CROSS_REFERENCE_KEY")
            ]
        );
        assert_eq!(results[0], json!({ "id": opportunity_id(1), "success": true, "errors": [] }));
        assert_eq!(results[1]["id"], json!(opportunity_id(2)));
        let stored = sf.opportunity(&opportunity_id(1)).unwrap();
        assert_eq!(stored["Risk_Updated__c"], "2026-12-02T10:00:00.000+0000");
        assert_eq!(stored["LastModifiedById"], json!(FakeOrg::default().integration_user_id));
        assert_eq!(sf.updates().len(), 1);

        // The lock was one-time; all-or-none rolls the good one back when another fails.
        let body = json!({ "allOrNone": true, "records": [record(&opportunity_id(2), "Low"), record(&opportunity_id(3), "Severe")] });
        let (_, results) = send(&sf, &token, Method::PATCH, path, &body).await;
        assert_eq!(results[0]["errors"][0]["statusCode"], "ALL_OR_NONE_OPERATION_ROLLED_BACK");
        assert_eq!(sf.updates().len(), 1);

        sf.set_read_only("Risk_Score__c");
        let (_, results) =
            send(&sf, &token, Method::PATCH, path, &json!({ "records": [record(&opportunity_id(2), "Low")] })).await;
        assert_eq!(results[0]["errors"][0]["statusCode"], "INVALID_FIELD_FOR_INSERT_UPDATE");
        assert_eq!(results[0]["errors"][0]["fields"], json!(["Risk_Score__c"]));

        let many: Vec<Value> = (0..201).map(|_| record(&opportunity_id(1), "Low")).collect();
        let (status, answer) = send(&sf, &token, Method::PATCH, path, &json!({ "records": many })).await;
        assert_eq!((status, answer[0]["errorCode"].as_str()), (400, Some("EXCEEDED_ID_LIMIT")));
    }

    #[tokio::test]
    async fn sessions_expire_and_faults_are_scripted() {
        let (sf, token) = started().await;
        sf.set_api_usage(10, 100);
        let (status, _, headers) = get(&sf, &token, "/services/data/v66.0/sobjects/Opportunity/describe").await;
        assert_eq!(status, 200);
        assert_eq!(headers["sforce-limit-info"], "api-usage=11/100");

        sf.expire_tokens();
        let (status, answer, _) = get(&sf, &token, "/services/data/v66.0/sobjects/Opportunity/describe").await;
        assert_eq!((status, answer[0]["errorCode"].as_str()), (401, Some("INVALID_SESSION_ID")));
        let (status, _, _) = get(&sf, "", "/services/data/v66.0/query?q=SELECT+Id+FROM+Opportunity").await;
        assert_eq!(status, 401);

        let (sf, token) = started().await;
        sf.script(Endpoint::Query, &[Fault::RequestLimit, Fault::Unavailable, Fault::Slow(20), Fault::Unauthorized]);
        let q = "SELECT Id FROM Opportunity";
        assert_eq!(query(&sf, &token, q).await.1[0]["errorCode"], "REQUEST_LIMIT_EXCEEDED");
        assert_eq!(query(&sf, &token, q).await.0, 503);
        assert_eq!(query(&sf, &token, q).await.0, 200);
        assert_eq!(query(&sf, &token, q).await.0, 401);
        assert_eq!(query(&sf, &token, q).await.0, 401, "the session stays expired");

        let (sf, token) = started().await;
        sf.set_api_usage(5, 5);
        assert_eq!(query(&sf, &token, q).await.1[0]["errorCode"], "REQUEST_LIMIT_EXCEEDED");
        let (status, answer, _) = get(&sf, &token, "/services/data/v66.0/sobjects/Opportunity/describe").await;
        assert_eq!(status, 403, "{answer}");
        sf.set_api_usage(0, 5);
        let (_, describe, _) = get(&sf, &token, "/services/data/v66.0/sobjects/Opportunity/describe").await;
        let field = |name: &str| describe["fields"].as_array().unwrap().iter().find(|f| f["name"] == name).cloned();
        assert_eq!(field("Risk_Category__c").unwrap()["picklistValues"][3]["value"], "Critical");
        assert_eq!(field("Win_Probability__c").unwrap()["type"], "percent");
        sf.remove_field("Risk_Factors__c");
        let (_, describe, _) = get(&sf, &token, "/services/data/v66.0/sobjects/Opportunity/describe").await;
        assert!(describe["fields"].as_array().unwrap().iter().all(|f| f["name"] != "Risk_Factors__c"));
    }

    #[tokio::test]
    async fn a_bulk_job_runs_to_completion_with_a_failed_row() {
        let (sf, token) = started().await;
        for n in 1..=3 {
            sf.put_opportunity(deal(n, "Prospecting"));
        }
        sf.touch(&opportunity_id(3), json!({ "Risk_Factors__c": "old" }));
        sf.fail_records(&[&opportunity_id(2)], "UNABLE_TO_LOCK_ROW");
        let create = json!({ "object": "Opportunity", "operation": "update", "contentType": "CSV", "lineEnding": "LF", "columnDelimiter": "COMMA" });
        let (status, job) = send(&sf, &token, Method::POST, "/services/data/v66.0/jobs/ingest", &create).await;
        assert_eq!((status, job["state"].as_str()), (200, Some("Open")), "{job}");
        let id = job["id"].as_str().unwrap().to_owned();
        assert!(id.starts_with("750") && id.len() == 18);

        let csv = format!(
            "Id,Risk_Score__c,Risk_Category__c,Risk_Factors__c\n{},80,Critical,\"late, quiet\"\n{},10,Low,\n{},,,#N/A\n",
            opportunity_id(1),
            opportunity_id(2),
            opportunity_id(3)
        );
        let response = crate::http()
            .put(format!("{}/services/data/v66.0/jobs/ingest/{id}/batches", sf.base))
            .bearer_auth(&token)
            .header("content-type", "text/csv")
            .body(csv)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 201);
        let path = format!("/services/data/v66.0/jobs/ingest/{id}");
        let (_, job) = send(&sf, &token, Method::PATCH, &path, &json!({ "state": "UploadComplete" })).await;
        assert_eq!(job["state"], "UploadComplete");
        assert_eq!(get(&sf, &token, &path).await.1["state"], "InProgress");
        let (_, job, _) = get(&sf, &token, &path).await;
        assert_eq!(
            (job["state"].as_str(), job["numberRecordsProcessed"].as_u64(), job["numberRecordsFailed"].as_u64()),
            (Some("JobComplete"), Some(3), Some(1))
        );

        let failed = crate::http()
            .get(format!("{}{path}/failedResults/", sf.base))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let mut lines = failed.lines();
        assert_eq!(
            lines.next(),
            Some("\"sf__Id\",\"sf__Error\",\"Id\",\"Risk_Score__c\",\"Risk_Category__c\",\"Risk_Factors__c\"")
        );
        let row = lines.next().unwrap();
        assert!(
            row.starts_with(&format!(
                "\"{}\",\"UNABLE_TO_LOCK_ROW:unable to obtain exclusive access to this record:--\"",
                opportunity_id(2)
            )),
            "{row}"
        );
        assert_eq!(lines.next(), None);
        let ok = crate::http()
            .get(format!("{}{path}/successfulResults/", sf.base))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(ok.text().await.unwrap().lines().count(), 3);

        assert_eq!(sf.opportunity(&opportunity_id(1)).unwrap()["Risk_Factors__c"], "late, quiet");
        assert_eq!(sf.opportunity(&opportunity_id(3)).unwrap()["Risk_Factors__c"], Value::Null);
        assert_eq!(sf.opportunity(&opportunity_id(3)).unwrap()["Risk_Category__c"], Value::Null, "never set");
        let updates = sf.updates();
        assert_eq!(updates.len(), 2);
        assert_eq!(updates[1].fields, json!({ "Risk_Factors__c": null }).as_object().cloned().unwrap());
        assert_eq!(updates[0].job.as_deref(), Some(id.as_str()));
        assert_eq!(sf.bulk_jobs()[0].state, "JobComplete");
    }

    #[tokio::test]
    async fn tasks_upsert_by_key() {
        let (sf, token) = started().await;
        let deal_id = sf.put_opportunity(deal(1, "Prospecting"));
        let path = "/services/data/v66.0/sobjects/Task/Dealwatch_Key__c/alert-1";
        let task = json!({ "WhatId": deal_id, "OwnerId": sf_id("005", 7), "Subject": "Call the buyer", "ActivityDate": "2026-12-05",
                           "Priority": "High", "Status": "Not Started", "Description": "Risk rose to 80" });
        let (status, first) = send(&sf, &token, Method::PATCH, path, &task).await;
        assert_eq!(
            (status, first["created"].as_bool(), first["success"].as_bool()),
            (201, Some(true), Some(true)),
            "{first}"
        );
        assert!(first["id"].as_str().unwrap().starts_with("00T"));
        let (status, second) = send(&sf, &token, Method::PATCH, path, &json!({ "Status": "Completed" })).await;
        assert_eq!((status, second["created"].as_bool()), (200, Some(false)));
        assert_eq!(second["id"], first["id"]);
        let tasks = sf.tasks();
        assert_eq!(tasks.len(), 1);
        assert_eq!(
            (tasks[0]["Status"].as_str(), tasks[0]["Subject"].as_str()),
            (Some("Completed"), Some("Call the buyer"))
        );
        assert_eq!(tasks[0]["Dealwatch_Key__c"], "alert-1");

        let other = "/services/data/v66.0/sobjects/Task/Dealwatch_Key__c/alert-2";
        let refusals = [
            (json!({ "WhatId": deal_id }), "REQUIRED_FIELD_MISSING"),
            (
                json!({ "WhatId": deal_id, "Subject": "x", "Priority": "Urgent" }),
                "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
            ),
            (json!({ "WhatId": opportunity_id(99), "Subject": "x" }), "INVALID_CROSS_REFERENCE_KEY"),
            (json!({ "WhatId": "a0B000000000001AAA", "Subject": "x" }), "INVALID_CROSS_REFERENCE_KEY"),
        ];
        for (body, code) in refusals {
            let (status, answer) = send(&sf, &token, Method::PATCH, other, &body).await;
            assert_eq!((status, answer[0]["errorCode"].as_str()), (400, Some(code)), "{body}");
        }
        assert_eq!(sf.tasks().len(), 1);
    }

    #[test]
    fn ids_carry_salesforce_checksums() {
        assert_eq!(with_checksum("001000000000000"), "001000000000000AAA");
        // Upper case letters at positions 0 and 4 of the first chunk: bits 1 + 16 = 17 → 'R'.
        assert_eq!(with_checksum("A000B0000000000"), "A000B0000000000RAA");
        assert_eq!(opportunity_id(12).len(), 18);
        assert_eq!(complete_id("006000000000012"), opportunity_id(12));
    }
}
