//! Delivery channels behind one trait: the log (the embedded default: a JSON-lines file under
//! the data directory) and email (SMTP through lettre). Slack, Teams and Discord plug in the same
//! way, from their adapters.
//!
//! Every message carries its alert id (Slack message metadata, an email's Message-ID, a log
//! line's field), and a channel that can look messages up ([`Channel::find`]) lets a sender that
//! takes over a crashed sender's alert tell whether it already arrived.

use std::collections::BTreeMap;
use std::io::{BufRead, Write};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use secrecy::{ExposeSecret, SecretString};

use super::Alert;
use super::templates::Message;
use store::User;

/// Makes rustls use the ring provider, once per process (reqwest and lettre are built without a
/// default one): every TLS client of the service calls it before it is built.
pub fn install_crypto_provider() {
    // An Err means a provider is already installed, which is all we need.
    let _ = rustls::crypto::ring::default_provider().install_default();
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SendError {
    /// Worth retrying: a 5xx, a 429, a timeout, a refused connection.
    #[error("{reason}")]
    Transient { reason: String, retry_after: Option<Duration> },
    /// Retrying will not help: a revoked token, an unknown user, no address on this channel.
    #[error("{0}")]
    Permanent(String),
}

impl SendError {
    pub fn transient(reason: impl Into<String>) -> Self {
        SendError::Transient { reason: reason.into(), retry_after: None }
    }
}

/// Where a channel put a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivered {
    pub external_id: Option<String>,
}

/// Where a message goes: a person (their ids on each platform) or a shared destination (a
/// team's Slack channel, a mailing list; see [`super::routes`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Address {
    /// The recipient id alerts carry: a user id, or `shared:<channel>:<to>`.
    pub id: String,
    /// Where on each channel: channel (`slack`, `email`, `teams`, `discord`, …) → the person's
    /// id or address there, or the shared destination.
    pub places: BTreeMap<String, String>,
    /// A shared destination: post into it rather than message a person.
    pub shared: bool,
    /// The tenant the recipient belongs to, for channels that keep per-tenant state (Teams'
    /// conversation references); set by the sender.
    pub tenant: Option<store::TenantId>,
}

impl Address {
    /// A shared destination `to` on `channel`.
    pub fn shared(id: &str, channel: &str, to: &str) -> Address {
        Address {
            id: id.to_owned(),
            places: BTreeMap::from([(channel.to_owned(), to.to_owned())]),
            shared: true,
            tenant: None,
        }
    }

    /// Where `channel` reaches this recipient, or a permanent error naming what is missing.
    pub fn on(&self, channel: &str, what: &str) -> Result<&str, SendError> {
        self.places
            .get(channel)
            .map(String::as_str)
            .ok_or_else(|| SendError::Permanent(format!("recipient {} has no {what}", self.id)))
    }
}

impl From<&User> for Address {
    fn from(u: &User) -> Address {
        let mut places = u.chat_ids.clone();
        if let Some(email) = &u.email {
            places.insert("email".to_owned(), email.clone());
        }
        Address { id: u.user_id.clone(), places, shared: false, tenant: None }
    }
}

#[async_trait::async_trait]
pub trait Channel: Send + Sync + std::fmt::Debug {
    fn name(&self) -> &'static str;
    /// Delivers `message` (rendered from `alert`) to `to`.
    async fn send(&self, to: &Address, alert: &Alert, message: &Message) -> Result<Delivered, SendError>;
    /// Whether `alert`'s message already reached `to` (asked before sending an alert whose
    /// earlier attempt was cut off). `Ok(None)`: not found, or the channel cannot tell.
    async fn find(&self, to: &Address, alert: &Alert) -> Result<Option<Delivered>, SendError>;
}

// ---------------------------------------------------------------------------------------------
// Log

/// One JSON line per alert in a file, written and synced before the alert counts as sent.
#[derive(Debug)]
pub struct LogChannel {
    path: PathBuf,
    lock: tokio::sync::Mutex<()>,
}

impl LogChannel {
    pub fn new(path: PathBuf) -> anyhow::Result<Self> {
        if let Some(dir) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        Ok(Self { path, lock: tokio::sync::Mutex::new(()) })
    }
}

#[async_trait::async_trait]
impl Channel for LogChannel {
    fn name(&self) -> &'static str {
        "log"
    }

    async fn send(&self, to: &Address, alert: &Alert, message: &Message) -> Result<Delivered, SendError> {
        let line = serde_json::json!({
            "alert_id": alert.alert_id,
            "at": chrono::Utc::now(),
            "kind": alert.kind,
            "priority": alert.priority,
            "recipient": to.id,
            "subject": message.subject,
            "text": message.text,
        });
        tracing::info!(alert_id = %alert.alert_id, kind = alert.kind.as_str(), recipient = %to.id, subject = %message.subject, "alert");
        let _guard = self.lock.lock().await;
        let path = self.path.clone();
        tokio::task::spawn_blocking(move || -> std::io::Result<()> {
            let mut file = std::fs::OpenOptions::new().create(true).append(true).open(&path)?;
            writeln!(file, "{line}")?;
            file.sync_data()
        })
        .await
        .map_err(|e| SendError::transient(e.to_string()))?
        .map_err(|e| SendError::transient(format!("writing {}: {e}", self.path.display())))?;
        Ok(Delivered { external_id: None })
    }

    async fn find(&self, _to: &Address, alert: &Alert) -> Result<Option<Delivered>, SendError> {
        let _guard = self.lock.lock().await;
        let (path, id) = (self.path.clone(), alert.alert_id.clone());
        let found = tokio::task::spawn_blocking(move || -> std::io::Result<bool> {
            let file = match std::fs::File::open(&path) {
                Ok(f) => f,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
                Err(e) => return Err(e),
            };
            for line in std::io::BufReader::new(file).lines() {
                let line = line?;
                let value: serde_json::Value = serde_json::from_str(&line).unwrap_or_default();
                if value["alert_id"] == id.as_str() {
                    return Ok(true);
                }
            }
            Ok(false)
        })
        .await
        .map_err(|e| SendError::transient(e.to_string()))?
        .map_err(|e| SendError::transient(format!("reading {}: {e}", self.path.display())))?;
        Ok(found.then_some(Delivered { external_id: None }))
    }
}

// ---------------------------------------------------------------------------------------------
// Email

/// Email over SMTP: HTML with a plain-text alternative.
#[derive(Debug)]
pub struct EmailChannel {
    transport: lettre::AsyncSmtpTransport<lettre::Tokio1Executor>,
    from: lettre::message::Mailbox,
}

impl EmailChannel {
    /// `smtp_url`: `smtp://host:25` (plain), `smtp://user:pass@host:587?tls=required`
    /// (STARTTLS) or `smtps://user:pass@host:465` (TLS from the start). `ca_file`: authorities
    /// to trust besides the public ones (PEM). A password is never sent in clear, except to a
    /// relay on this machine.
    pub fn new(smtp_url: &SecretString, from: &str, ca_file: Option<&std::path::Path>) -> anyhow::Result<Self> {
        use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
        install_crypto_provider();
        let raw = smtp_url.expose_secret();
        // The URL is secret (it may hold a password): errors name its parts, never print it.
        let url = url::Url::parse(raw).map_err(|e| anyhow::anyhow!("[email] smtp_url is not a URL: {e}"))?;
        let tls = url.query_pairs().find(|(k, _)| k == "tls").map(|(_, v)| v.into_owned());
        let encrypted = url.scheme() == "smtps" || tls.as_deref() == Some("required");
        let host = url.host_str().unwrap_or_default().to_owned();
        let loopback = host == "localhost"
            || host.trim_matches(['[', ']']).parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback());
        if url.password().is_some() && !encrypted && !loopback {
            anyhow::bail!(
                "[email] smtp_url sends a password to {host} without TLS: use smtp://…:587?tls=required (STARTTLS) or smtps://…:465"
            );
        }
        let mut builder = lettre::AsyncSmtpTransport::<lettre::Tokio1Executor>::from_url(raw)
            .map_err(|e| anyhow::anyhow!("[email] smtp_url is not a valid SMTP URL: {e}"))?
            .timeout(Some(Duration::from_secs(20)));
        if let Some(path) = ca_file {
            if !encrypted && tls.as_deref() != Some("opportunistic") {
                anyhow::bail!(
                    "[email] ca_file is set but smtp_url does not use TLS (add ?tls=required, or use smtps://)"
                );
            }
            let pem = std::fs::read(path).with_context(|| format!("[email] ca_file {}", path.display()))?;
            let no_certificate =
                |why: &str| anyhow::anyhow!("[email] ca_file {} holds no PEM certificate: {why}", path.display());
            let certificates = {
                use rustls::pki_types::{CertificateDer, pem::PemObject};
                CertificateDer::pem_slice_iter(&pem)
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|e| no_certificate(&e.to_string()))?
            };
            if certificates.is_empty() {
                return Err(no_certificate("no BEGIN CERTIFICATE block"));
            }
            let ca = Certificate::from_pem(&pem).map_err(|e| no_certificate(&e.to_string()))?;
            let params = TlsParameters::builder(host)
                .add_root_certificate(ca)
                .build_rustls()
                .map_err(|e| anyhow::anyhow!("[email] TLS settings: {e}"))?;
            builder = builder.tls(match (url.scheme(), tls.as_deref()) {
                ("smtps", _) => Tls::Wrapper(params),
                (_, Some("required")) => Tls::Required(params),
                _ => Tls::Opportunistic(params),
            });
        }
        let from = from.parse().with_context(|| format!("[email] from {from:?} is not an email address"))?;
        Ok(Self { transport: builder.build(), from })
    }
}

/// HTML with a plain-text alternative, and the attachments (a chart) beside them.
fn with_attachments(message: &Message) -> lettre::message::MultiPart {
    use lettre::message::{Attachment, MultiPart, header::ContentType};
    let body = MultiPart::alternative_plain_html(message.text.clone(), message.html.clone());
    if message.attachments.is_empty() {
        return body;
    }
    message.attachments.iter().fold(MultiPart::mixed().multipart(body), |mixed, a| {
        let content_type = ContentType::parse(&a.content_type).unwrap_or(ContentType::TEXT_PLAIN);
        mixed.singlepart(Attachment::new(a.filename.clone()).body(a.bytes.clone(), content_type))
    })
}

#[async_trait::async_trait]
impl Channel for EmailChannel {
    fn name(&self) -> &'static str {
        "email"
    }

    async fn send(&self, to: &Address, alert: &Alert, message: &Message) -> Result<Delivered, SendError> {
        use lettre::AsyncTransport;
        let address = to.on("email", "email")?;
        let mailbox: lettre::message::Mailbox = address
            .parse()
            .map_err(|e| SendError::Permanent(format!("recipient {}'s email {address:?} is not valid: {e}", to.id)))?;
        // The Message-ID is the alert's: a resend after a crash is recognisably the same mail.
        let message_id = format!("<{}@dealwatch>", alert.alert_id);
        let email = lettre::Message::builder()
            .from(self.from.clone())
            .to(mailbox)
            .subject(message.subject.clone())
            .message_id(Some(message_id.clone()))
            .multipart(with_attachments(message))
            .map_err(|e| SendError::Permanent(format!("building the email: {e}")))?;
        match self.transport.send(email).await {
            Ok(_) => Ok(Delivered { external_id: Some(message_id) }),
            // 4xx replies and network trouble are temporary; 5xx replies are permanent.
            Err(e) if e.is_permanent() => Err(SendError::Permanent(format!("SMTP: {e}"))),
            Err(e) => Err(SendError::transient(format!("SMTP: {e}"))),
        }
    }

    async fn find(&self, _to: &Address, _alert: &Alert) -> Result<Option<Delivered>, SendError> {
        // SMTP cannot be asked what it delivered; the Message-ID lets mail systems fold a
        // resend into the first copy.
        Ok(None)
    }
}
