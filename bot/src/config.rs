//! Configuration, read once at start-up: built-in defaults, then a TOML file (`--config FILE`,
//! else `dealwatch.toml` in the working directory if present), then environment variables
//! prefixed `DEALWATCH_` with `__` between levels (`DEALWATCH_DATABASE__URL`,
//! `DEALWATCH_AUTH__HS256_SECRETS='["…"]'`). Nothing reads the environment after this.
//! Secrets are `SecretString`s: they print as `[REDACTED]` in logs and debug output.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::Context;
use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use secrecy::SecretString;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct Settings {
    #[serde(default)]
    pub database: Database,
    #[serde(default)]
    pub server: Server,
    #[serde(default)]
    pub auth: Auth,
    #[serde(default)]
    pub limits: Limits,
    #[serde(default)]
    pub log: Log,
    #[serde(default)]
    pub alerts: Alerts,
    #[serde(default)]
    pub jobs: Jobs,
    #[serde(default)]
    pub slack: Slack,
    #[serde(default)]
    pub email: Email,
    #[serde(default)]
    pub teams: Teams,
    #[serde(default)]
    pub discord: Discord,
    #[serde(default)]
    pub salesforce: Salesforce,
    #[serde(default)]
    pub questions: Questions,
    /// Directory for the SQLite database and other local state.
    #[serde(default = "default_data_dir")]
    pub data_dir: PathBuf,
    /// Directory of prompt texts overriding the bundled ones.
    #[serde(default)]
    pub prompts_dir: Option<PathBuf>,
}

/// `[questions]`: how plain-English questions are read.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Questions {
    /// `auto` (the sentence-embedding model when its files are in `model_dir`, else the lexical
    /// similarity, said at start-up), `candle` (the model or no start), `lexical`, or
    /// `rust-bert` (a build with `--features rust-bert`).
    pub backend: crate::chat::embed::Backend,
    /// all-MiniLM-L6-v2's model.safetensors, tokenizer.json and config.json, as
    /// scripts/fetch-model.sh installs them.
    pub model_dir: PathBuf,
}

impl Default for Questions {
    fn default() -> Self {
        Questions { backend: crate::chat::embed::Backend::Auto, model_dir: crate::chat::embed::default_model_dir() }
    }
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct Database {
    /// `sqlite://path.db` or `postgres://…`; default: `dealwatch.db` in the data directory.
    pub url: Option<String>,
    /// PostgreSQL: a URL for a role owning the tables, used only to apply migrations.
    pub migration_url: Option<String>,
    /// PostgreSQL, development only: run as a role that bypasses row-level security (a
    /// superuser, `BYPASSRLS`, or the tables' owner) instead of refusing to start.
    #[serde(default)]
    pub allow_rls_bypass: bool,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct Server {
    pub listen: SocketAddr,
    /// Time a request may take before it is answered 503.
    pub request_timeout_seconds: u64,
    /// Largest request body accepted, in bytes.
    pub max_body_bytes: usize,
    /// Behind a reverse proxy: the client's address is the last one the proxy appended to
    /// `X-Forwarded-For` (the per-source limits count it). Off: the connection's address.
    pub trust_forwarded_for: bool,
}

impl Default for Server {
    fn default() -> Self {
        Server {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            request_timeout_seconds: 10,
            max_body_bytes: 1 << 20,
            trust_forwarded_for: false,
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct Auth {
    /// HS256 signing secrets (at least 32 bytes each); several allowed for rotation.
    #[serde(default, serialize_with = "redacted")]
    pub hs256_secrets: Vec<SecretString>,
    /// RS256: the JWKS URL of the identity provider.
    pub jwks_url: Option<String>,
    pub issuer: Option<String>,
    pub audience: Option<String>,
    pub leeway_seconds: u64,
    pub jwks_cache_seconds: u64,
}

impl Default for Auth {
    fn default() -> Self {
        Auth {
            hs256_secrets: Vec::new(),
            jwks_url: None,
            issuer: None,
            audience: None,
            leeway_seconds: 60,
            jwks_cache_seconds: 3600,
        }
    }
}

fn redacted<S: serde::Serializer>(secrets: &[SecretString], s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(secrets.iter().map(|_| "[REDACTED]"))
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default)]
pub struct Limits {
    /// Requests per minute per user (seed 002: 100).
    pub per_user_per_minute: u32,
    /// Requests per minute per tenant (seed 002: 1,000).
    pub per_tenant_per_minute: u32,
    /// Requests per minute from one source address, before anything is authenticated (Slack,
    /// Teams and Salesforce call from a few addresses each: keep this well above their rate).
    pub per_source_per_minute: u32,
    /// Refused authentications (bad tokens, signatures) per minute from one source address;
    /// past it the source gets 429 until a minute's allowance has come back.
    pub refused_per_source_per_minute: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            per_user_per_minute: 100,
            per_tenant_per_minute: 1000,
            per_source_per_minute: 6000,
            refused_per_source_per_minute: 60,
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct Log {
    /// `text` for people, `json` for log collectors.
    pub format: LogFormat,
    /// A tracing filter, e.g. `info` or `bot=debug,sqlx=warn`.
    pub level: String,
}

impl Default for Log {
    fn default() -> Self {
        Log { format: LogFormat::Text, level: "info".into() }
    }
}

/// Alert delivery.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct Alerts {
    /// Deliver the outbox from `dealwatch serve` (otherwise: `dealwatch alerts deliver`).
    pub deliver: bool,
    /// How often the server looks for due alerts.
    pub poll_seconds: u64,
    /// Attempts on a channel before the alert is escalated to the fallback channel.
    pub max_attempts: u32,
    /// The first retry waits this long; each further one twice as long.
    pub backoff_seconds: u64,
    /// A sender's claim on an alert lapses after this, and another may take it over.
    pub lease_seconds: u64,
    /// Where an alert goes after `max_attempts` failures (`log`, `email`, `slack`); empty: nowhere.
    pub fallback_channel: String,
    /// The log channel's file (JSON lines), relative to the data directory.
    pub log_file: PathBuf,
    /// Link to a deal in the CRM, with `{deal_id}`: `https://acme.my.salesforce.com/{deal_id}`.
    pub deal_url: Option<String>,
    /// A TrueType font for the weekly chart (default: DejaVu Sans from the system).
    pub chart_font: Option<PathBuf>,
}

impl Default for Alerts {
    fn default() -> Self {
        Alerts {
            deliver: true,
            poll_seconds: 5,
            max_attempts: 3,
            backoff_seconds: 30,
            lease_seconds: 120,
            fallback_channel: "log".into(),
            log_file: PathBuf::from("alerts.jsonl"),
            deal_url: None,
            chart_font: None,
        }
    }
}

/// The scheduler inside `dealwatch serve`.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct Jobs {
    /// Run scheduled jobs from the server (several replicas may: each run happens once).
    pub run: bool,
    /// How often the server looks for due jobs.
    pub poll_seconds: u64,
}

impl Default for Jobs {
    fn default() -> Self {
        Jobs { run: true, poll_seconds: 30 }
    }
}

/// Slack's Web API, for alerts (and, later, the bot).
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct Slack {
    /// The bot token (`xoxb-…`); without it there is no Slack channel.
    #[serde(default, serialize_with = "redacted_option")]
    pub bot_token: Option<SecretString>,
    pub api_url: String,
    /// The app's signing secrets: requests signed with any of them are accepted, so a secret
    /// can be rotated without downtime (add the new one, then remove the old). Without one,
    /// `/slack/*` answers 401 to everything.
    #[serde(default, serialize_with = "redacted")]
    pub signing_secrets: Vec<SecretString>,
    /// Slack workspace (team id, `T…`) → tenant. A workspace not listed here is refused.
    #[serde(default)]
    pub workspaces: std::collections::BTreeMap<String, String>,
    /// Slack's deadline for answering a command or click is 3 s: an answer not ready after
    /// this many milliseconds is acknowledged and finished through `response_url`.
    pub answer_within_ms: u64,
    /// The app's OAuth client id and secret, for installing it into workspaces through
    /// `/slack/install` (multi-workspace use). Without them only `workspaces` are connected.
    pub client_id: Option<String>,
    #[serde(default, serialize_with = "redacted_option")]
    pub client_secret: Option<SecretString>,
    /// Where Slack sends the installer back: this server's public
    /// `https://…/slack/oauth/callback`.
    pub redirect_url: Option<String>,
    /// The key (32 bytes, base64) that seals installed workspaces' bot tokens in the store;
    /// required with `client_id`. Generate one with `openssl rand -base64 32`.
    #[serde(default, serialize_with = "redacted_option")]
    pub token_key: Option<SecretString>,
    /// The Slack user ids (`U…`) of people, per tenant, for those whose Slack email differs
    /// from their CRM email: `[slack.users.acme] maria = "U024BE7LH"`. A link counts only in a
    /// workspace of that tenant. Others are found by email (`users.lookupByEmail`) or by the
    /// Slack id stored with the user.
    #[serde(default)]
    pub users: UserLinks,
    /// Socket Mode, for running without a public URL (a laptop, a closed network): the server
    /// opens WebSockets to Slack (`apps.connections.open`) and takes commands, clicks and events
    /// over them instead of on `/slack/*`. Needs `app_token`; turn Socket Mode on in the app's
    /// settings too.
    pub socket_mode: bool,
    /// The app-level token (`xapp-…`, scope `connections:write`) Socket Mode connects with.
    #[serde(default, serialize_with = "redacted_option")]
    pub app_token: Option<SecretString>,
}

impl Default for Slack {
    fn default() -> Self {
        Slack {
            bot_token: None,
            api_url: "https://slack.com/api".into(),
            signing_secrets: Vec::new(),
            workspaces: Default::default(),
            answer_within_ms: 2000,
            client_id: None,
            client_secret: None,
            redirect_url: None,
            token_key: None,
            users: Default::default(),
            socket_mode: false,
            app_token: None,
        }
    }
}

/// `[teams]`: the Microsoft Teams bot. Teams reaches it through the Bot Framework: activities
/// are posted to `/api/messages` with a JWT the Bot Connector signs, and the bot answers through
/// the Connector's REST API with a token from Microsoft Entra ID.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Teams {
    /// The bot's Microsoft App ID (the Entra app registration's client id). Without it there is
    /// no Teams bot, and `/api/messages` answers 403.
    pub app_id: Option<String>,
    /// The app registration's client secret, for the Connector tokens.
    #[serde(serialize_with = "redacted_option")]
    pub app_password: Option<SecretString>,
    /// The Entra tenant the app is registered in (a single-tenant bot), or `botframework.com`
    /// (a multi-tenant one): where the Connector tokens come from.
    pub app_tenant: String,
    /// Microsoft Entra ID's sign-in host.
    pub login_url: String,
    /// Where the Bot Framework publishes the keys its tokens are signed with.
    pub openid_metadata_url: String,
    /// The issuer of the Bot Connector's tokens.
    pub issuer: String,
    /// The scope of the Connector tokens.
    pub scope: String,
    /// Service URLs the bot talks to (prefixes): an activity naming another is refused, and
    /// nothing is sent anywhere else.
    pub service_urls: Vec<String>,
    /// Microsoft 365 tenant (Entra tenant id of the users) → Dealwatch tenant.
    pub tenants: std::collections::BTreeMap<String, String>,
    /// Per tenant, Dealwatch user id → Entra object id, for people whose Teams email differs
    /// from their CRM email (`[teams.users.acme] maria = "…"`). Others are found by the id stored
    /// with the user, or by email.
    pub users: UserLinks,
    /// How long the signing keys and the metadata are trusted before they are fetched again.
    pub keys_cache_seconds: u64,
    /// Seconds a call to the Connector or Entra may take.
    pub timeout_seconds: u64,
}

impl Default for Teams {
    fn default() -> Self {
        Teams {
            app_id: None,
            app_password: None,
            app_tenant: "botframework.com".into(),
            login_url: "https://login.microsoftonline.com".into(),
            openid_metadata_url: "https://login.botframework.com/v1/.well-known/openidconfiguration".into(),
            issuer: "https://api.botframework.com".into(),
            scope: "https://api.botframework.com/.default".into(),
            service_urls: vec!["https://smba.trafficmanager.net/".into()],
            tenants: Default::default(),
            users: Default::default(),
            keys_cache_seconds: 24 * 3600,
            timeout_seconds: 15,
        }
    }
}

/// `[discord]`: the Discord bot. Its gateway connection runs inside `dealwatch serve`; slash
/// commands are registered in each configured server (guild).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Discord {
    /// The bot's token (Developer Portal → Bot). Without it there is no Discord bot.
    #[serde(serialize_with = "redacted_option")]
    pub bot_token: Option<SecretString>,
    /// The application id (Developer Portal → General Information).
    pub application_id: Option<u64>,
    /// Discord's HTTP API host, `https://discord.com`.
    pub api_url: String,
    /// Run the gateway client from `dealwatch serve` (off: alerts only, through the HTTP API).
    pub gateway: bool,
    /// Discord server (guild id) → Dealwatch tenant.
    pub guilds: std::collections::BTreeMap<String, String>,
    /// Per tenant, Dealwatch user id → Discord user id, for people not linked by the id stored
    /// with them (`[discord.users.acme] maria = "1200…"`).
    pub users: UserLinks,
    /// Discord wants an interaction answered within 3 s: an answer not ready after this many
    /// milliseconds is deferred and finished by editing the reply (0: always deferred).
    pub answer_within_ms: u64,
}

impl Default for Discord {
    fn default() -> Self {
        Discord {
            bot_token: None,
            application_id: None,
            api_url: "https://discord.com".into(),
            gateway: true,
            guilds: Default::default(),
            users: Default::default(),
            answer_within_ms: 2000,
        }
    }
}

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

/// SMTP, for email alerts and digests.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct Email {
    /// `smtp://host:25`, `smtp://user:pass@host:587?tls=required`, `smtps://…:465`; without it
    /// there is no email channel. Secret: it may hold a password.
    #[serde(default, serialize_with = "redacted_option")]
    pub smtp_url: Option<SecretString>,
    /// The sender, e.g. `Dealwatch <alerts@example.com>`.
    pub from: Option<String>,
    /// A PEM file of certificate authorities to trust for the SMTP server besides the public
    /// ones: a relay whose certificate an internal CA signed.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
}

/// People's chat ids named in the config, per tenant: `[slack.users.acme] maria = "U024BE7LH"`.
/// A chat id links a person only in that tenant's workspace (server, organisation): the same
/// Dealwatch user id (`admin`) in another tenant is another person.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "std::collections::BTreeMap<String, serde_json::Value>")]
pub struct UserLinks(std::collections::BTreeMap<String, std::collections::BTreeMap<String, String>>);

impl UserLinks {
    /// `tenant`'s links: Dealwatch user id → chat id.
    pub fn of(&self, tenant: &str) -> &std::collections::BTreeMap<String, String> {
        static NONE: std::collections::BTreeMap<String, String> = std::collections::BTreeMap::new();
        self.0.get(tenant).unwrap_or(&NONE)
    }

    /// Links for `tenant` (tests and set-up code).
    pub fn with(mut self, tenant: &str, user: &str, chat_id: &str) -> Self {
        self.0.entry(tenant.to_owned()).or_default().insert(user.to_owned(), chat_id.to_owned());
        self
    }

    pub fn tenants(&self) -> impl Iterator<Item = &String> {
        self.0.keys()
    }
}

impl TryFrom<std::collections::BTreeMap<String, serde_json::Value>> for UserLinks {
    type Error = String;
    fn try_from(raw: std::collections::BTreeMap<String, serde_json::Value>) -> Result<Self, String> {
        let mut links = std::collections::BTreeMap::new();
        for (tenant, table) in raw {
            let serde_json::Value::Object(people) = table else {
                return Err(format!(
                    "users: links are per tenant: write [<platform>.users.<tenant>] {tenant} = \"…\" \
                     (found {tenant} = {table} outside a tenant's table)"
                ));
            };
            let mut map = std::collections::BTreeMap::new();
            for (user, id) in people {
                let serde_json::Value::String(id) = id else {
                    return Err(format!("users.{tenant}.{user}: a chat id must be a string, found {id}"));
                };
                map.insert(user, id);
            }
            links.insert(tenant, map);
        }
        Ok(UserLinks(links))
    }
}

fn redacted_option<S: serde::Serializer>(secret: &Option<SecretString>, s: S) -> Result<S::Ok, S::Error> {
    match secret {
        Some(_) => s.serialize_some("[REDACTED]"),
        None => s.serialize_none(),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    Text,
    Json,
}

fn default_data_dir() -> PathBuf {
    PathBuf::from("data")
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            database: Database::default(),
            server: Server::default(),
            auth: Auth::default(),
            limits: Limits::default(),
            log: Log::default(),
            alerts: Alerts::default(),
            jobs: Jobs::default(),
            slack: Slack::default(),
            email: Email::default(),
            teams: Teams::default(),
            discord: Discord::default(),
            salesforce: Salesforce::default(),
            questions: Questions::default(),
            data_dir: default_data_dir(),
            prompts_dir: None,
        }
    }
}

impl Settings {
    /// Defaults ← the TOML file ← `DEALWATCH_*` environment variables.
    pub fn load(file: Option<&Path>) -> anyhow::Result<Self> {
        let mut figment = Figment::from(Serialized::defaults(Settings::default()));
        match file {
            Some(path) => {
                anyhow::ensure!(path.is_file(), "config file {} does not exist", path.display());
                figment = figment.merge(Toml::file(path));
            }
            None if Path::new("dealwatch.toml").is_file() => figment = figment.merge(Toml::file("dealwatch.toml")),
            None => {}
        }
        figment = figment.merge(Env::prefixed("DEALWATCH_").split("__").ignore(&["log"]));
        let settings: Settings = figment.extract().context("reading the configuration")?;
        settings.check()?;
        Ok(settings)
    }

    /// What the types cannot say: links name real tenant ids, webhook secrets are secrets.
    pub fn check(&self) -> anyhow::Result<()> {
        for (section, links) in
            [("slack", &self.slack.users), ("teams", &self.teams.users), ("discord", &self.discord.users)]
        {
            for tenant in links.tenants() {
                store::TenantId::parse(tenant)
                    .map_err(|e| anyhow::anyhow!("[{section}.users.{tenant}]: not a tenant id: {e}"))?;
            }
        }
        for (tenant, org) in &self.salesforce.tenants {
            for (i, secret) in org.webhook_secrets.iter().enumerate() {
                use secrecy::ExposeSecret;
                let len = secret.expose_secret().trim().len();
                anyhow::ensure!(
                    len >= MIN_WEBHOOK_SECRET,
                    "[salesforce.tenants.{tenant}] webhook_secrets[{i}] is {len} characters long; at least \
                     {MIN_WEBHOOK_SECRET} are required (an empty or short secret lets anyone sign the webhook)"
                );
            }
        }
        Ok(())
    }

    /// The channels alerts can be delivered on here, in order of preference: Slack, Teams,
    /// Discord and email when configured, the log always.
    pub fn alert_channels(&self) -> Vec<String> {
        let mut channels = Vec::new();
        if self.slack.bot_token.is_some() {
            channels.push("slack".to_owned());
        }
        if self.teams.app_id.is_some() && self.teams.app_password.is_some() {
            channels.push("teams".to_owned());
        }
        if self.discord.bot_token.is_some() {
            channels.push("discord".to_owned());
        }
        if self.email.smtp_url.is_some() {
            channels.push("email".to_owned());
        }
        channels.push("log".to_owned());
        channels
    }

    /// The database URL: configured, or the SQLite file in the data directory.
    pub fn database_url(&self) -> String {
        self.database
            .url
            .clone()
            .unwrap_or_else(|| format!("sqlite://{}", self.data_dir.join("dealwatch.db").display()))
    }
}

#[cfg(test)]
// figment::Jail's closures must return figment's own (large) error type.
#[allow(clippy::result_large_err)]
mod tests {
    use secrecy::ExposeSecret;

    use super::*;

    #[test]
    fn file_then_environment_override_the_defaults() {
        figment::Jail::expect_with(|jail| {
            jail.create_file(
                "custom.toml",
                r#"
                data_dir = "/var/lib/dealwatch"
                [server]
                listen = "0.0.0.0:9000"
                [auth]
                hs256_secrets = ["0123456789abcdef0123456789abcdef"]
                [limits]
                per_user_per_minute = 50
                "#,
            )?;
            jail.set_env("DEALWATCH_LIMITS__PER_TENANT_PER_MINUTE", "250");
            jail.set_env("DEALWATCH_DATABASE__URL", "postgres://db/dealwatch");
            let s = Settings::load(Some(Path::new("custom.toml"))).map_err(|e| e.to_string())?;
            assert_eq!(s.server.listen.port(), 9000);
            assert_eq!((s.limits.per_user_per_minute, s.limits.per_tenant_per_minute), (50, 250));
            assert_eq!(s.database_url(), "postgres://db/dealwatch");
            assert_eq!(s.auth.hs256_secrets[0].expose_secret(), "0123456789abcdef0123456789abcdef");
            // Secrets never print.
            assert!(!format!("{s:?}").contains("0123456789abcdef"));
            assert!(!serde_json::to_string(&s).map_err(|e| e.to_string())?.contains("0123456789abcdef"));
            Ok(())
        });
    }

    #[test]
    fn defaults_use_sqlite_in_the_data_directory() {
        figment::Jail::expect_with(|_| {
            let s = Settings::load(None).map_err(|e| e.to_string())?;
            assert_eq!(s.database_url(), "sqlite://data/dealwatch.db");
            assert_eq!(s.server.listen.to_string(), "127.0.0.1:8080");
            assert_eq!(s.limits.per_user_per_minute, 100);
            Ok(())
        });
        assert!(Settings::load(Some(Path::new("/nonexistent/dealwatch.toml"))).is_err());
    }
}
