//! A thin client for one org's REST API: sign-in (JWT bearer or client credentials) with the
//! token cached and renewed once on `INVALID_SESSION_ID`, SOQL with `nextRecordsUrl` paging,
//! sObject Collections updates read record by record, and `Sforce-Limit-Info` kept so callers
//! can slow down as the daily allowance runs low. Salesforce's errors become [`SfError`], sorted
//! into what a retry may fix and what an admin must.

use std::sync::Mutex;
use std::time::Duration;

use anyhow::Context as _;
use reqwest::{Method, StatusCode};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use settings::{SalesforceAuth, SalesforceOrg};

/// sObject Collections take at most this many records a call.
pub const COLLECTION_LIMIT: usize = 200;

/// What went wrong talking to Salesforce.
#[derive(Debug, thiserror::Error)]
pub enum SfError {
    /// The token endpoint refused the credentials: an admin must fix the connected app, the
    /// certificate or the user.
    #[error("Salesforce refused Dealwatch's sign-in ({code}): {message}")]
    SignIn { code: String, message: String },
    /// 403 `REQUEST_LIMIT_EXCEEDED`: the org's daily API allowance is used up.
    #[error("the org's API request limit is used up: {0}")]
    Limit(String),
    /// 5xx, `UNABLE_TO_LOCK_ROW` and the like, or no answer: worth retrying later.
    #[error("Salesforce is unavailable for now: {0}")]
    Unavailable(String),
    /// Salesforce answered with an error a retry will not fix (a missing field, no permission,
    /// a malformed query).
    #[error("Salesforce refused the request ({code}): {message}")]
    Refused { status: u16, code: String, message: String, fields: Vec<String> },
}

impl SfError {
    /// A retry later may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(self, SfError::Limit(_) | SfError::Unavailable(_))
    }

    /// A problem with the org's schema or the integration user's permissions: the tenant's sync
    /// halts until an admin fixes it.
    pub fn is_schema(&self) -> bool {
        match self {
            SfError::Refused { code, .. } => SCHEMA_CODES.contains(&code.as_str()),
            SfError::SignIn { .. } => true,
            _ => false,
        }
    }
}

/// Salesforce error codes that mean the org lacks a field, an object or a permission.
const SCHEMA_CODES: [&str; 8] = [
    "INVALID_FIELD",
    "INVALID_TYPE",
    "INVALID_FIELD_FOR_INSERT_UPDATE",
    "INSUFFICIENT_ACCESS",
    "INSUFFICIENT_ACCESS_OR_READONLY",
    "INSUFFICIENT_ACCESS_ON_CROSS_REFERENCE_ENTITY",
    "API_DISABLED_FOR_ORG",
    "NOT_FOUND",
];

/// Per-record codes worth another try.
const TRANSIENT_RECORD_CODES: [&str; 3] = ["UNABLE_TO_LOCK_ROW", "REQUEST_RUNNING_TOO_LONG", "SERVER_UNAVAILABLE"];

/// One entry of Salesforce's error array.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
pub struct ApiError {
    #[serde(alias = "statusCode", rename = "errorCode", default)]
    pub code: String,
    #[serde(default)]
    pub message: String,
    #[serde(default)]
    pub fields: Vec<String>,
}

/// The result of one record of a Collections call (HTTP 200 can still hold failures).
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
pub struct RecordResult {
    pub id: Option<String>,
    pub success: bool,
    #[serde(default)]
    pub errors: Vec<ApiError>,
}

impl RecordResult {
    /// The record failed for a reason a retry may fix (a locked row).
    pub fn is_transient(&self) -> bool {
        !self.success && self.errors.iter().all(|e| TRANSIENT_RECORD_CODES.contains(&e.code.as_str()))
    }

    /// The record failed because the org lacks a field or a permission (every record of the
    /// call will, too).
    pub fn is_schema(&self) -> bool {
        !self.success && !self.errors.is_empty() && self.errors.iter().all(|e| SCHEMA_CODES.contains(&e.code.as_str()))
    }

    /// The record's refusal as an error of the call.
    pub fn refusal(&self) -> SfError {
        let first = self.errors.first();
        SfError::Refused {
            status: 200,
            code: first.map_or_else(String::new, |e| e.code.clone()),
            message: self.reason(),
            fields: first.map_or_else(Vec::new, |e| e.fields.clone()),
        }
    }

    pub fn reason(&self) -> String {
        let said: Vec<String> = self.errors.iter().map(|e| format!("{}: {}", e.code, e.message)).collect();
        said.join("; ")
    }
}

/// The daily API allowance as the last answer's `Sforce-Limit-Info` said.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ApiUsage {
    pub used: u64,
    pub limit: u64,
}

impl ApiUsage {
    /// `api-usage=25/15000`.
    pub fn parse(header: &str) -> Option<ApiUsage> {
        let usage = header.split(';').find_map(|part| part.trim().strip_prefix("api-usage="))?;
        let (used, limit) = usage.split_once('/')?;
        Some(ApiUsage { used: used.trim().parse().ok()?, limit: limit.trim().parse().ok()? })
    }

    /// The share of the allowance left, 0–1.
    pub fn left(&self) -> f64 {
        if self.limit == 0 { 0.0 } else { 1.0 - (self.used as f64 / self.limit as f64).min(1.0) }
    }
}

#[derive(Clone)]
struct Session {
    token: SecretString,
    instance_url: String,
}

enum Credentials {
    Jwt { username: String, key: Box<jsonwebtoken::EncodingKey> },
    ClientCredentials { secret: SecretString },
}

/// One org, signed in lazily.
pub struct Org {
    login_url: String,
    api_version: String,
    client_id: String,
    credentials: Credentials,
    http: reqwest::Client,
    session: tokio::sync::Mutex<Option<Session>>,
    usage: Mutex<Option<ApiUsage>>,
}

impl std::fmt::Debug for Org {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Org").field("login_url", &self.login_url).field("api_version", &self.api_version).finish()
    }
}

#[derive(Serialize)]
struct Assertion<'a> {
    iss: &'a str,
    sub: &'a str,
    aud: &'a str,
    exp: i64,
}

#[derive(Deserialize)]
struct TokenAnswer {
    access_token: String,
    instance_url: String,
}

#[derive(Deserialize)]
struct TokenRefusal {
    #[serde(default)]
    error: String,
    #[serde(default)]
    error_description: String,
}

#[derive(Deserialize)]
struct QueryPage {
    #[serde(default)]
    records: Vec<Value>,
    #[serde(default)]
    done: bool,
    #[serde(rename = "nextRecordsUrl")]
    next: Option<String>,
}

impl Org {
    /// An org from `[salesforce.tenants.<tenant>]`; refuses a config that cannot sign in.
    pub fn new(tenant: &str, cfg: &SalesforceOrg) -> anyhow::Result<Org> {
        let at = format!("[salesforce.tenants.{tenant}]");
        anyhow::ensure!(
            !cfg.client_id.trim().is_empty(),
            "{at} client_id (the connected app's consumer key) is required"
        );
        let login = url::Url::parse(&cfg.login_url).with_context(|| format!("{at} login_url {:?}", cfg.login_url))?;
        let loopback = login.host_str().is_some_and(|h| h == "127.0.0.1" || h == "localhost");
        anyhow::ensure!(
            login.scheme() == "https" || loopback,
            "{at} login_url must be https:// (plain http only to a local test server)"
        );
        anyhow::ensure!(
            cfg.api_version.split_once('.').is_some_and(|(a, b)| a.parse::<u32>().is_ok() && b.parse::<u32>().is_ok()),
            "{at} api_version {:?} is not like 66.0",
            cfg.api_version
        );
        let credentials = match cfg.auth {
            SalesforceAuth::Jwt => {
                let username = cfg.username.clone().with_context(|| format!("{at} auth = \"jwt\" needs username"))?;
                let pem = match (&cfg.private_key, &cfg.private_key_file) {
                    (Some(key), _) => key.expose_secret().to_owned(),
                    (None, Some(path)) => std::fs::read_to_string(path)
                        .with_context(|| format!("{at} reading private_key_file {}", path.display()))?,
                    (None, None) => anyhow::bail!("{at} auth = \"jwt\" needs private_key or private_key_file"),
                };
                let key = jsonwebtoken::EncodingKey::from_rsa_pem(pem.as_bytes())
                    .with_context(|| format!("{at} the private key is not an RSA key in PEM"))?;
                Credentials::Jwt { username, key: Box::new(key) }
            }
            SalesforceAuth::ClientCredentials => Credentials::ClientCredentials {
                secret: cfg
                    .client_secret
                    .clone()
                    .with_context(|| format!("{at} auth = \"client_credentials\" needs client_secret"))?,
            },
        };
        service::auth::install_crypto_provider();
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(cfg.timeout_seconds.max(1)))
            .connect_timeout(Duration::from_secs(10))
            .build()?;
        Ok(Org {
            login_url: cfg.login_url.trim_end_matches('/').to_owned(),
            api_version: cfg.api_version.clone(),
            client_id: cfg.client_id.clone(),
            credentials,
            http,
            session: tokio::sync::Mutex::new(None),
            usage: Mutex::new(None),
        })
    }

    /// The allowance the last answer reported.
    pub fn usage(&self) -> Option<ApiUsage> {
        *self.usage.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// A new access token from the token endpoint.
    async fn sign_in(&self) -> Result<Session, SfError> {
        let endpoint = format!("{}/services/oauth2/token", self.login_url);
        let request = match &self.credentials {
            Credentials::Jwt { username, key } => {
                // Salesforce takes an assertion valid for at most three minutes.
                let claims = Assertion {
                    iss: &self.client_id,
                    sub: username,
                    aud: &self.login_url,
                    exp: chrono::Utc::now().timestamp() + 170,
                };
                let assertion =
                    jsonwebtoken::encode(&jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256), &claims, key)
                        .map_err(|e| SfError::SignIn { code: "assertion".into(), message: e.to_string() })?;
                self.http.post(&endpoint).form(&[
                    ("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer"),
                    ("assertion", assertion.as_str()),
                ])
            }
            Credentials::ClientCredentials { secret } => self.http.post(&endpoint).form(&[
                ("grant_type", "client_credentials"),
                ("client_id", self.client_id.as_str()),
                ("client_secret", secret.expose_secret()),
            ]),
        };
        let response = request.send().await.map_err(|e| SfError::Unavailable(format!("token endpoint: {e}")))?;
        let status = response.status();
        let body = response.bytes().await.map_err(|e| SfError::Unavailable(format!("token endpoint: {e}")))?;
        if status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS {
            return Err(SfError::Unavailable(format!("token endpoint answered {status}")));
        }
        if !status.is_success() {
            let refusal: TokenRefusal = serde_json::from_slice(&body)
                .unwrap_or(TokenRefusal { error: status.to_string(), error_description: String::new() });
            return Err(SfError::SignIn { code: refusal.error, message: refusal.error_description });
        }
        let answer: TokenAnswer = serde_json::from_slice(&body)
            .map_err(|e| SfError::SignIn { code: "answer".into(), message: format!("not a token answer: {e}") })?;
        metrics::counter!("salesforce_sign_ins_total").increment(1);
        Ok(Session {
            token: SecretString::from(answer.access_token),
            instance_url: answer.instance_url.trim_end_matches('/').to_owned(),
        })
    }

    async fn session(&self) -> Result<Session, SfError> {
        let mut cached = self.session.lock().await;
        if let Some(s) = cached.as_ref() {
            return Ok(s.clone());
        }
        let fresh = self.sign_in().await?;
        *cached = Some(fresh.clone());
        Ok(fresh)
    }

    /// Forgets `stale` (unless another call replaced it already).
    async fn forget(&self, stale: &Session) {
        let mut cached = self.session.lock().await;
        if cached.as_ref().is_some_and(|s| s.token.expose_secret() == stale.token.expose_secret()) {
            *cached = None;
        }
    }

    /// `/services/data/v66.0` + `path`.
    pub fn data_path(&self, path: &str) -> String {
        format!("/services/data/v{}{path}", self.api_version)
    }

    /// Sends a request to `path` (from the instance URL) and returns the answer's status and
    /// body; a 401 signs in again and retries once; errors are sorted.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<Body<'_>>,
    ) -> Result<(StatusCode, axum::body::Bytes), SfError> {
        for attempt in 0..2 {
            let session = self.session().await?;
            let mut request = self
                .http
                .request(method.clone(), format!("{}{path}", session.instance_url))
                .bearer_auth(session.token.expose_secret());
            request = match &body {
                Some(Body::Json(v)) => request.json(v),
                Some(Body::Csv(text)) => request.header("content-type", "text/csv").body(text.to_string()),
                None => request,
            };
            let response = request.send().await.map_err(|e| SfError::Unavailable(format!("{method} {path}: {e}")))?;
            if let Some(usage) =
                response.headers().get("sforce-limit-info").and_then(|h| h.to_str().ok()).and_then(ApiUsage::parse)
            {
                *self.usage.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(usage);
            }
            let status = response.status();
            let bytes = response.bytes().await.map_err(|e| SfError::Unavailable(format!("{method} {path}: {e}")))?;
            metrics::counter!("salesforce_calls_total", "status" => status.as_u16().to_string()).increment(1);
            if status == StatusCode::UNAUTHORIZED && attempt == 0 {
                tracing::info!(path, "Salesforce session expired; signing in again");
                self.forget(&session).await;
                continue;
            }
            return classify(status, bytes, &method, path);
        }
        unreachable!("the loop returns on its second attempt")
    }

    /// Every record a SOQL query selects, following `nextRecordsUrl`.
    pub async fn query_all(&self, soql: &str) -> Result<Vec<Value>, SfError> {
        let encoded: String = url::form_urlencoded::Serializer::new(String::new()).append_pair("q", soql).finish();
        let mut path = format!("{}?{encoded}", self.data_path("/query"));
        let mut records = Vec::new();
        loop {
            let (_, body) = self.call(Method::GET, &path, None).await?;
            let page: QueryPage = serde_json::from_slice(&body)
                .map_err(|e| SfError::Unavailable(format!("a query answer that is not a page: {e}")))?;
            records.extend(page.records);
            match page.next {
                Some(next) if !page.done => path = next,
                _ => return Ok(records),
            }
        }
    }

    /// Updates up to 200 records in one sObject Collections call (`allOrNone: false`): each
    /// record's own result, in order.
    pub async fn update_collection(&self, records: &[Value]) -> Result<Vec<RecordResult>, SfError> {
        debug_assert!(records.len() <= COLLECTION_LIMIT);
        let body = json!({ "allOrNone": false, "records": records });
        let (_, answer) =
            self.call(Method::PATCH, &self.data_path("/composite/sobjects"), Some(Body::Json(&body))).await?;
        let results: Vec<RecordResult> = serde_json::from_slice(&answer)
            .map_err(|e| SfError::Unavailable(format!("a Collections answer that is not a result list: {e}")))?;
        if results.len() != records.len() {
            return Err(SfError::Unavailable(format!(
                "Collections answered {} results for {} records",
                results.len(),
                records.len()
            )));
        }
        Ok(results)
    }
}

impl Org {
    /// Creates or updates the Task whose `Dealwatch_Key__c` is `key`: its id and whether it is new.
    /// The same key sent twice updates the first Task, so a retry never makes a second one.
    pub async fn upsert_task(&self, key: &str, fields: &Value) -> Result<(Option<String>, bool), SfError> {
        let key: String = url::form_urlencoded::byte_serialize(key.as_bytes()).collect();
        let path = self.data_path(&format!("/sobjects/Task/Dealwatch_Key__c/{key}"));
        let (status, body) = self.call(Method::PATCH, &path, Some(Body::Json(fields))).await?;
        // API 46.0 and later answer 200/201 with a result; earlier ones 204 on an update.
        let answer: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        let created = status == StatusCode::CREATED || answer["created"].as_bool() == Some(true);
        Ok((answer["id"].as_str().map(str::to_owned), created))
    }
}

/// How a Bulk API 2.0 job ended.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct BulkOutcome {
    pub job_id: String,
    pub processed: u64,
    /// Records that failed: (record id, Salesforce's error).
    pub failed: Vec<(String, String)>,
}

#[derive(Deserialize)]
struct JobInfo {
    id: String,
    state: String,
    #[serde(rename = "numberRecordsProcessed", default)]
    processed: u64,
    #[serde(rename = "errorMessage", default)]
    error: Option<String>,
}

impl Org {
    /// Updates records of `object` through a Bulk API 2.0 ingest job: create it, upload `csv`
    /// (a header row of field names with `Id`, LF line endings), close it, poll until it ends,
    /// then read its failed records. Waits at most `patience`.
    pub async fn bulk_update(&self, object: &str, csv: &str, patience: Duration) -> Result<BulkOutcome, SfError> {
        let jobs = self.data_path("/jobs/ingest");
        let spec = json!({ "object": object, "operation": "update", "contentType": "CSV", "lineEnding": "LF", "columnDelimiter": "COMMA" });
        let (_, body) = self.call(Method::POST, &jobs, Some(Body::Json(&spec))).await?;
        let job: JobInfo = serde_json::from_slice(&body)
            .map_err(|e| SfError::Unavailable(format!("a Bulk job answer that is not a job: {e}")))?;
        let path = format!("{jobs}/{}", job.id);
        let uploaded = self.call(Method::PUT, &format!("{path}/batches"), Some(Body::Csv(csv))).await;
        let closed = match uploaded {
            Ok(_) => self.call(Method::PATCH, &path, Some(Body::Json(&json!({ "state": "UploadComplete" })))).await,
            Err(e) => Err(e),
        };
        if let Err(e) = closed {
            // An open job holds nothing; abort it so it does not linger in the org's job list.
            let _ = self.call(Method::PATCH, &path, Some(Body::Json(&json!({ "state": "Aborted" })))).await;
            return Err(e);
        }
        let started = std::time::Instant::now();
        let mut wait = Duration::from_millis(200);
        let info = loop {
            tokio::time::sleep(wait).await;
            let (_, body) = self.call(Method::GET, &path, None).await?;
            let info: JobInfo = serde_json::from_slice(&body)
                .map_err(|e| SfError::Unavailable(format!("a Bulk job answer that is not a job: {e}")))?;
            match info.state.as_str() {
                "JobComplete" => break info,
                "Failed" | "Aborted" => {
                    return Err(SfError::Refused {
                        status: 200,
                        code: format!("BULK_JOB_{}", info.state.to_uppercase()),
                        message: info.error.unwrap_or_else(|| format!("Bulk job {} ended {}", info.id, info.state)),
                        fields: Vec::new(),
                    });
                }
                _ if started.elapsed() > patience => {
                    return Err(SfError::Unavailable(format!(
                        "Bulk job {} still {} after {patience:?}",
                        info.id, info.state
                    )));
                }
                _ => wait = (wait * 2).min(Duration::from_secs(5)),
            }
        };
        let (_, failed) = self.call(Method::GET, &format!("{path}/failedResults/"), None).await?;
        let mut reader = csv::Reader::from_reader(&failed[..]);
        let header = reader.headers().map_err(|e| SfError::Unavailable(format!("failedResults: {e}")))?.clone();
        let column = |name: &str| header.iter().position(|h| h == name);
        let (Some(id_at), Some(error_at)) = (column("sf__Id"), column("sf__Error")) else {
            return Err(SfError::Unavailable("failedResults without sf__Id and sf__Error".into()));
        };
        let uploaded_id = column("Id");
        let mut outcome = BulkOutcome { job_id: info.id, processed: info.processed, failed: Vec::new() };
        for row in reader.records() {
            let row = row.map_err(|e| SfError::Unavailable(format!("failedResults: {e}")))?;
            // sf__Id is blank when Salesforce could not match the row; the uploaded Id says which.
            let id = row.get(id_at).filter(|id| !id.is_empty()).or_else(|| uploaded_id.and_then(|i| row.get(i)));
            outcome.failed.push((id.unwrap_or_default().to_owned(), row.get(error_at).unwrap_or_default().to_owned()));
        }
        Ok(outcome)
    }
}

/// A request body.
#[derive(Debug, Clone, Copy)]
pub enum Body<'a> {
    Json(&'a Value),
    Csv(&'a str),
}

fn classify(
    status: StatusCode,
    body: axum::body::Bytes,
    method: &Method,
    path: &str,
) -> Result<(StatusCode, axum::body::Bytes), SfError> {
    if status.is_success() {
        return Ok((status, body));
    }
    let errors: Vec<ApiError> = serde_json::from_slice(&body).unwrap_or_default();
    let first = errors.first().cloned().unwrap_or(ApiError {
        code: status.as_str().to_owned(),
        message: String::from_utf8_lossy(&body).chars().take(300).collect(),
        fields: Vec::new(),
    });
    let where_ = path.split('?').next().unwrap_or(path);
    match (status.as_u16(), first.code.as_str()) {
        (403, "REQUEST_LIMIT_EXCEEDED") => Err(SfError::Limit(first.message)),
        (_, code) if TRANSIENT_RECORD_CODES.contains(&code) => {
            Err(SfError::Unavailable(format!("{method} {where_}: {code}: {}", first.message)))
        }
        (429 | 500..=599, _) => Err(SfError::Unavailable(format!("{method} {where_} answered {status}"))),
        (s, _) => Err(SfError::Refused { status: s, code: first.code, message: first.message, fields: first.fields }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_limit_header_is_read_and_says_what_is_left() {
        let usage = ApiUsage::parse("api-usage=13500/15000").expect("parsed");
        assert_eq!(usage, ApiUsage { used: 13_500, limit: 15_000 });
        assert!((usage.left() - 0.1).abs() < 1e-9);
        assert_eq!(ApiUsage::parse("per-app-api-usage=1/10(appName=x); api-usage=2/10").map(|u| u.used), Some(2));
        assert_eq!(ApiUsage::parse("nonsense"), None);
    }

    #[test]
    fn errors_are_sorted_into_retry_later_and_ask_an_admin() {
        let sort = |status: u16, body: &str| {
            classify(
                StatusCode::from_u16(status).expect("status"),
                axum::body::Bytes::from(body.to_owned()),
                &Method::GET,
                "/x",
            )
            .expect_err("an error")
        };
        let limit = sort(403, r#"[{"message":"TotalRequests Limit exceeded.","errorCode":"REQUEST_LIMIT_EXCEEDED"}]"#);
        assert!(matches!(limit, SfError::Limit(_)) && limit.is_transient());
        let down = sort(503, "<html>Service Unavailable</html>");
        assert!(down.is_transient() && !down.is_schema());
        let locked = sort(400, r#"[{"message":"unable to obtain exclusive access","errorCode":"UNABLE_TO_LOCK_ROW"}]"#);
        assert!(locked.is_transient());
        let field = sort(400, r#"[{"message":"No such column 'Risk_Score__c'","errorCode":"INVALID_FIELD"}]"#);
        assert!(field.is_schema() && !field.is_transient(), "{field}");
        assert!(field.to_string().contains("Risk_Score__c"));
        let denied = sort(403, r#"[{"message":"no access","errorCode":"INSUFFICIENT_ACCESS"}]"#);
        assert!(denied.is_schema());
        let malformed = sort(400, r#"[{"message":"unexpected token","errorCode":"MALFORMED_QUERY"}]"#);
        assert!(!malformed.is_schema() && !malformed.is_transient());
    }

    #[test]
    fn a_config_that_cannot_sign_in_is_refused_with_its_section() {
        let mut cfg =
            SalesforceOrg { client_id: "3MVG9".into(), username: Some("dw@acme.com".into()), ..Default::default() };
        let e = Org::new("acme", &cfg).expect_err("no key").to_string();
        assert!(e.contains("[salesforce.tenants.acme]") && e.contains("private_key"), "{e}");
        cfg.private_key = Some("not a key".to_owned().into());
        assert!(Org::new("acme", &cfg).expect_err("bad key").to_string().contains("RSA"));
        cfg.login_url = "http://login.salesforce.com".into();
        assert!(Org::new("acme", &cfg).expect_err("http").to_string().contains("https"));
        let cc = SalesforceOrg {
            client_id: "3MVG9".into(),
            auth: SalesforceAuth::ClientCredentials,
            api_version: "v66".into(),
            ..Default::default()
        };
        assert!(Org::new("acme", &cc).expect_err("version").to_string().contains("api_version"));
    }
}
