//! A fake SMTP server on 127.0.0.1 (RFC 5321's dialogue: EHLO, MAIL, RCPT, DATA, QUIT) that
//! keeps what it receives and can refuse recipients with a temporary (451) or permanent (550)
//! reply, as real servers do. [`FakeSmtp::start_secure`] adds what a submission server has:
//! TLS (STARTTLS, RFC 3207, or TLS from the first byte, RFC 8314) with a certificate signed by
//! a CA made for the run, and a login (AUTH PLAIN and LOGIN, RFC 4954) offered only over TLS
//! and required before MAIL, with 530 and 535 replies as Postfix gives them.

use std::sync::{Arc, Mutex};

use base64::Engine as _;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};

/// A received message.
#[derive(Debug, Clone, PartialEq)]
pub struct Mail {
    pub from: String,
    pub to: Vec<String>,
    /// Headers and body as sent (dot-stuffing undone).
    pub data: String,
    /// Whether the message came over TLS.
    pub secure: bool,
    /// Who signed in to send it.
    pub user: Option<String>,
}

/// How the server offers TLS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Security {
    /// None: `smtp://`.
    Plain,
    /// STARTTLS after EHLO: `smtp://…?tls=required`, port 587's way.
    StartTls,
    /// TLS from the first byte: `smtps://`, port 465's way.
    Implicit,
}

#[derive(Default)]
struct Shared {
    mails: Mutex<Vec<Mail>>,
    /// The reply to RCPT TO: `None` accepts.
    refuse: Mutex<Option<&'static str>>,
    /// Failed sign-ins (535 answers).
    refused_logins: Mutex<usize>,
}

struct Config {
    security: Security,
    tls: Option<tokio_rustls::TlsAcceptor>,
    /// The one user and password accepted, when a login is required.
    login: Option<(String, String)>,
}

#[derive(Clone)]
pub struct FakeSmtp {
    shared: Arc<Shared>,
    /// `smtp://127.0.0.1:port`, with `?tls=required` for STARTTLS, or `smtps://127.0.0.1:port`;
    /// no credentials (add them with [`FakeSmtp::url_with_login`]).
    pub url: String,
    /// The CA that signed the server's certificate (PEM), for TLS servers.
    pub ca_pem: Option<String>,
    task: Arc<tokio::task::JoinHandle<()>>,
}

impl std::fmt::Debug for FakeSmtp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeSmtp").field("url", &self.url).finish_non_exhaustive()
    }
}

impl Drop for FakeSmtp {
    fn drop(&mut self) {
        if Arc::strong_count(&self.task) == 1 {
            self.task.abort();
        }
    }
}

impl FakeSmtp {
    /// A plain server that accepts anyone.
    pub async fn start() -> FakeSmtp {
        Self::listen(Security::Plain, None, None).await
    }

    /// A server with TLS (`security`) and, if given, one user and password it requires.
    pub async fn start_secure(security: Security, login: Option<(&str, &str)>) -> FakeSmtp {
        let (acceptor, ca_pem) = test_certificates();
        let login = login.map(|(u, p)| (u.to_owned(), p.to_owned()));
        let mut fake = Self::listen(security, Some(acceptor), login).await;
        fake.ca_pem = Some(ca_pem);
        fake
    }

    async fn listen(
        security: Security,
        tls: Option<tokio_rustls::TlsAcceptor>,
        login: Option<(String, String)>,
    ) -> FakeSmtp {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind the fake SMTP server");
        let addr = listener.local_addr().expect("address");
        let shared: Arc<Shared> = Arc::default();
        let config = Arc::new(Config { security, tls, login });
        let s = shared.clone();
        let task = tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                tokio::spawn(session(socket, s.clone(), config.clone()));
            }
        });
        let url = match security {
            Security::Plain => format!("smtp://{addr}"),
            Security::StartTls => format!("smtp://{addr}?tls=required"),
            Security::Implicit => format!("smtps://{addr}"),
        };
        FakeSmtp { shared, url, ca_pem: None, task: Arc::new(task) }
    }

    /// [`FakeSmtp::url`] with a user and password in it (percent-encoded).
    pub fn url_with_login(&self, user: &str, password: &str) -> String {
        let mut url = url::Url::parse(&self.url).expect("the fake's URL");
        url.set_username(user).expect("a user");
        url.set_password(Some(password)).expect("a password");
        url.to_string()
    }

    pub fn mails(&self) -> Vec<Mail> {
        self.shared.mails.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }

    /// How many sign-ins were refused.
    pub fn refused_logins(&self) -> usize {
        *self.shared.refused_logins.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Refuse recipients with this reply (`"451 4.3.0 try again later"`), or accept (`None`).
    pub fn refuse(&self, reply: Option<&'static str>) {
        *self.shared.refuse.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = reply;
    }
}

/// A CA made for this run and a certificate it signed for 127.0.0.1 and localhost: the server's
/// TLS acceptor, and the CA's certificate (PEM) a client must be told to trust.
fn test_certificates() -> (tokio_rustls::TlsAcceptor, String) {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("CA parameters");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.distinguished_name.push(DnType::CommonName, "Dealwatch test CA");
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca_key = KeyPair::generate().expect("CA key");
    let ca_cert = ca_params.self_signed(&ca_key).expect("CA certificate");
    let issuer = Issuer::new(ca_params, ca_key);
    let mut params =
        CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()]).expect("server parameters");
    params.distinguished_name.push(DnType::CommonName, "fake-smtp");
    let key = KeyPair::generate().expect("server key");
    let cert = params.signed_by(&key, &issuer).expect("server certificate");
    bot::auth::install_crypto_provider();
    let private = rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into());
    let config = rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(vec![cert.der().clone()], private)
        .expect("server TLS configuration");
    (tokio_rustls::TlsAcceptor::from(Arc::new(config)), ca_cert.pem())
}

async fn session(socket: tokio::net::TcpStream, shared: Arc<Shared>, config: Arc<Config>) {
    let acceptor = config.tls.clone();
    match (config.security, acceptor) {
        (Security::Implicit, Some(acceptor)) => {
            if let Ok(tls) = acceptor.accept(socket).await {
                dialogue(tls, &shared, &config, true, true).await;
            }
        }
        (_, acceptor) => {
            if let Some(plain) = dialogue(socket, &shared, &config, false, true).await
                && let Some(acceptor) = acceptor
                && let Ok(tls) = acceptor.accept(plain).await
            {
                // RFC 3207: after STARTTLS the client starts again with EHLO; no greeting.
                dialogue(tls, &shared, &config, true, false).await;
            }
        }
    }
}

/// One SMTP dialogue over `stream`. Returns the stream when the client asked for STARTTLS (and
/// the server offered it), for the TLS handshake.
async fn dialogue<S: AsyncRead + AsyncWrite + Unpin>(
    stream: S,
    shared: &Shared,
    config: &Config,
    secure: bool,
    greet: bool,
) -> Option<S> {
    let mut lines = BufReader::new(stream);
    if greet {
        lines.get_mut().write_all(b"220 fake-smtp ESMTP ready\r\n").await.ok()?;
    }
    let offers_starttls = config.security == Security::StartTls && !secure;
    let (mut from, mut to) = (String::new(), Vec::new());
    let mut user: Option<String> = None;
    let mut line = String::new();
    loop {
        line.clear();
        if lines.read_line(&mut line).await.ok()? == 0 {
            return None;
        }
        let line = line.trim_end_matches(['\r', '\n']).to_owned();
        let upper = line.to_ascii_uppercase();
        let answer = if upper.starts_with("EHLO") || upper.starts_with("HELO") {
            let mut ehlo = vec!["250-fake-smtp", "250-8BITMIME"];
            if offers_starttls {
                ehlo.push("250-STARTTLS");
            }
            // Submission servers offer a login over TLS only (Postfix's smtpd_tls_auth_only).
            if config.login.is_some() && secure {
                ehlo.push("250-AUTH PLAIN LOGIN");
            }
            ehlo.push("250 SIZE 10485760");
            ehlo.join("\r\n")
        } else if upper == "STARTTLS" {
            if !offers_starttls {
                "502 5.5.1 STARTTLS not offered".to_owned()
            } else {
                lines.get_mut().write_all(b"220 2.0.0 ready to start TLS\r\n").await.ok()?;
                return Some(lines.into_inner());
            }
        } else if upper.starts_with("AUTH ") {
            match &config.login {
                None => "503 5.5.1 AUTH not offered".to_owned(),
                Some(_) if !secure => "530 5.7.0 Must issue a STARTTLS command first".to_owned(),
                Some(expected) => {
                    let given = read_login(&mut lines, &line[5..]).await?;
                    if given.as_ref() == Some(expected) {
                        user = given.map(|(u, _)| u);
                        "235 2.7.0 Authentication successful".to_owned()
                    } else {
                        *shared.refused_logins.lock().unwrap_or_else(std::sync::PoisonError::into_inner) += 1;
                        "535 5.7.8 Error: authentication failed".to_owned()
                    }
                }
            }
        } else if upper.starts_with("MAIL FROM:") {
            if config.login.is_some() && user.is_none() {
                "530 5.7.0 Authentication required".to_owned()
            } else {
                from = line[10..].trim().trim_matches(['<', '>']).to_owned();
                to.clear();
                "250 2.1.0 OK".to_owned()
            }
        } else if upper.starts_with("RCPT TO:") {
            let refusal = *shared.refuse.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            match refusal {
                Some(r) => r.to_owned(),
                None => {
                    to.push(line[8..].trim().trim_matches(['<', '>']).to_owned());
                    "250 2.1.5 OK".to_owned()
                }
            }
        } else if upper == "DATA" {
            lines.get_mut().write_all(b"354 end with <CRLF>.<CRLF>\r\n").await.ok()?;
            let mut data = String::new();
            let mut l = String::new();
            loop {
                l.clear();
                if lines.read_line(&mut l).await.ok()? == 0 {
                    return None;
                }
                let l = l.trim_end_matches(['\r', '\n']);
                if l == "." {
                    break;
                }
                data.push_str(l.strip_prefix('.').unwrap_or(l));
                data.push('\n');
            }
            shared.mails.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push(Mail {
                from: from.clone(),
                to: std::mem::take(&mut to),
                data,
                secure,
                user: user.clone(),
            });
            "250 2.0.0 queued".to_owned()
        } else if upper == "QUIT" {
            let _ = lines.get_mut().write_all(b"221 2.0.0 bye\r\n").await;
            return None;
        } else if upper == "RSET" || upper == "NOOP" {
            "250 2.0.0 OK".to_owned()
        } else {
            "502 5.5.2 command not recognised".to_owned()
        };
        lines.get_mut().write_all(format!("{answer}\r\n").as_bytes()).await.ok()?;
    }
}

/// Reads the rest of an AUTH command (`PLAIN <initial response>`, `PLAIN` then the response, or
/// `LOGIN` with its two challenges): the user and password given, or `None` inside when they
/// could not be read. `None` outside: the connection ended.
async fn read_login<S: AsyncRead + AsyncWrite + Unpin>(
    lines: &mut BufReader<S>,
    rest: &str,
) -> Option<Option<(String, String)>> {
    let decode = |s: &str| {
        base64::engine::general_purpose::STANDARD.decode(s.trim()).ok().and_then(|b| String::from_utf8(b).ok())
    };
    let mut words = rest.split_whitespace();
    let mechanism = words.next().unwrap_or_default().to_ascii_uppercase();
    let initial = words.next().map(str::to_owned);
    let mut ask = async |challenge: &str| -> Option<String> {
        lines.get_mut().write_all(format!("334 {challenge}\r\n").as_bytes()).await.ok()?;
        let mut answer = String::new();
        (lines.read_line(&mut answer).await.ok()? > 0).then_some(answer)
    };
    match mechanism.as_str() {
        "PLAIN" => {
            let response = match initial {
                Some(r) => r,
                None => ask("").await?,
            };
            // authzid NUL authcid NUL password
            let plain = decode(&response);
            let parts: Vec<&str> = plain.as_deref().map(|p| p.split('\0').collect()).unwrap_or_default();
            Some(match parts.as_slice() {
                [_, user, password] => Some(((*user).to_owned(), (*password).to_owned())),
                _ => None,
            })
        }
        "LOGIN" => {
            let user = match initial {
                Some(u) => u,
                None => ask("VXNlcm5hbWU6").await?,
            };
            let password = ask("UGFzc3dvcmQ6").await?;
            Some(decode(&user).zip(decode(&password)))
        }
        _ => Some(None),
    }
}
