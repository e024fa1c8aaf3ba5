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

mod chat;
mod questions;
mod salesforce;

pub use chat::{Discord, Slack, Teams, UserLinks};
pub use questions::{Backend, MODEL_NAME, default_model_dir};
pub use salesforce::{AutoTasks, MIN_WEBHOOK_SECRET, Salesforce, SalesforceAuth, SalesforceOrg};

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
    pub backend: Backend,
    /// all-MiniLM-L6-v2's model.safetensors, tokenizer.json and config.json, as
    /// scripts/fetch-model.sh installs them.
    pub model_dir: PathBuf,
}

impl Default for Questions {
    fn default() -> Self {
        Questions { backend: Backend::Auto, model_dir: default_model_dir() }
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

pub(crate) fn redacted<S: serde::Serializer>(secrets: &[SecretString], s: S) -> Result<S::Ok, S::Error> {
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

pub(crate) fn redacted_option<S: serde::Serializer>(secret: &Option<SecretString>, s: S) -> Result<S::Ok, S::Error> {
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
                engine::domain::TenantId::parse(tenant)
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
