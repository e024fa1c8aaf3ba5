//! A fake SMTP server on 127.0.0.1 (RFC 5321's plain dialogue: EHLO, MAIL, RCPT, DATA, QUIT)
//! that keeps what it receives and can refuse recipients with a temporary (451) or permanent
//! (550) reply, as real servers do.

use std::sync::{Arc, Mutex};

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

/// A received message.
#[derive(Debug, Clone, PartialEq)]
pub struct Mail {
    pub from: String,
    pub to: Vec<String>,
    /// Headers and body as sent (dot-stuffing undone).
    pub data: String,
}

#[derive(Debug, Clone)]
pub struct FakeSmtp {
    mails: Arc<Mutex<Vec<Mail>>>,
    /// The reply to RCPT TO: `None` accepts.
    refuse: Arc<Mutex<Option<&'static str>>>,
    pub url: String,
    task: Arc<tokio::task::JoinHandle<()>>,
}

impl Drop for FakeSmtp {
    fn drop(&mut self) {
        if Arc::strong_count(&self.task) == 1 {
            self.task.abort();
        }
    }
}

impl FakeSmtp {
    pub async fn start() -> FakeSmtp {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind the fake SMTP server");
        let addr = listener.local_addr().expect("address");
        let mails: Arc<Mutex<Vec<Mail>>> = Arc::default();
        let refuse: Arc<Mutex<Option<&'static str>>> = Arc::default();
        let (m, r) = (mails.clone(), refuse.clone());
        let task = tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                tokio::spawn(session(socket, m.clone(), r.clone()));
            }
        });
        FakeSmtp { mails, refuse, url: format!("smtp://{addr}"), task: Arc::new(task) }
    }

    pub fn mails(&self) -> Vec<Mail> {
        self.mails.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }

    /// Refuse recipients with this reply (`"451 4.3.0 try again later"`), or accept (`None`).
    pub fn refuse(&self, reply: Option<&'static str>) {
        *self.refuse.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = reply;
    }
}

async fn session(
    socket: tokio::net::TcpStream,
    mails: Arc<Mutex<Vec<Mail>>>,
    refuse: Arc<Mutex<Option<&'static str>>>,
) {
    let (read, mut write) = socket.into_split();
    let mut lines = BufReader::new(read).lines();
    let _ = write.write_all(b"220 fake-smtp ESMTP ready\r\n").await;
    let (mut from, mut to) = (String::new(), Vec::new());
    while let Ok(Some(line)) = lines.next_line().await {
        let upper = line.to_ascii_uppercase();
        let answer = if upper.starts_with("EHLO") || upper.starts_with("HELO") {
            "250-fake-smtp\r\n250-8BITMIME\r\n250 SIZE 10485760".to_owned()
        } else if upper.starts_with("MAIL FROM:") {
            from = line[10..].trim().trim_matches(['<', '>']).to_owned();
            to.clear();
            "250 2.1.0 OK".to_owned()
        } else if upper.starts_with("RCPT TO:") {
            let refusal = *refuse.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            match refusal {
                Some(r) => r.to_owned(),
                None => {
                    to.push(line[8..].trim().trim_matches(['<', '>']).to_owned());
                    "250 2.1.5 OK".to_owned()
                }
            }
        } else if upper == "DATA" {
            let _ = write.write_all(b"354 end with <CRLF>.<CRLF>\r\n").await;
            let mut data = String::new();
            while let Ok(Some(l)) = lines.next_line().await {
                if l == "." {
                    break;
                }
                data.push_str(l.strip_prefix('.').unwrap_or(&l));
                data.push('\n');
            }
            mails.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push(Mail {
                from: from.clone(),
                to: std::mem::take(&mut to),
                data,
            });
            "250 2.0.0 queued".to_owned()
        } else if upper == "QUIT" {
            let _ = write.write_all(b"221 2.0.0 bye\r\n").await;
            return;
        } else if upper == "RSET" || upper == "NOOP" {
            "250 2.0.0 OK".to_owned()
        } else {
            "502 5.5.2 command not recognised".to_owned()
        };
        if write.write_all(format!("{answer}\r\n").as_bytes()).await.is_err() {
            return;
        }
    }
}
