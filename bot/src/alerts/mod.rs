//! Alerts: raised into a durable outbox in the same transaction as the change that caused them,
//! then delivered by [`deliver::Sender`] through the [`channels`] (log, Slack, email).
//!
//! The life of an alert row: `pending` (waiting for its due time: now, or the end of the
//! recipient's quiet hours) → `sending` (claimed by one sender under a lease) → `sent`; or
//! `failed` (retried with exponential backoff) → after the third failure `escalated`, with a
//! new alert on the fallback channel. A sender that dies while `sending` leaves the row to be
//! taken over when its lease runs out; the next sender first asks the channel whether the
//! message already arrived (every message carries its alert id), so a crash delays an alert
//! but never drops or doubles it.
//!
//! What deserves an alert is decided by the engine's rules (`engine::alerts`); who gets it and
//! when by [`routing`].

pub mod channels;
pub mod chart;
pub mod deliver;
pub mod digest;
pub mod feedback;
pub mod routes;
pub mod routing;
pub mod settings;
pub mod templates;

use chrono::{DateTime, Utc};
use engine::alerts::{AlertKind, Priority};
use serde::Serialize;

/// Where an alert is in its delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertState {
    Pending,
    Sending,
    Sent,
    Failed,
    Escalated,
    /// Not delivered on purpose (a snooze, a mute); kept for the record.
    Suppressed,
}

impl AlertState {
    pub const ALL: [AlertState; 6] = [
        AlertState::Pending,
        AlertState::Sending,
        AlertState::Sent,
        AlertState::Failed,
        AlertState::Escalated,
        AlertState::Suppressed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            AlertState::Pending => "pending",
            AlertState::Sending => "sending",
            AlertState::Sent => "sent",
            AlertState::Failed => "failed",
            AlertState::Escalated => "escalated",
            AlertState::Suppressed => "suppressed",
        }
    }

    pub fn parse(s: &str) -> Option<AlertState> {
        AlertState::ALL.into_iter().find(|a| a.as_str() == s)
    }
}

/// An alert to write into the outbox.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NewAlert {
    pub alert_id: String,
    pub kind: AlertKind,
    pub priority: Priority,
    pub subject: String,
    pub recipient: String,
    pub channel: String,
    /// At most one alert per key and tenant.
    pub dedup_key: String,
    /// The facts the templates render.
    pub payload: serde_json::Value,
    /// Deal alerts: the score alerted on.
    pub score: Option<u8>,
    pub created_at: DateTime<Utc>,
    /// Not to be delivered before (epoch milliseconds).
    pub due_ms: i64,
    pub escalated_from: Option<String>,
}

impl NewAlert {
    /// A new alert id: time-ordered (UUID v7), so ids sort as alerts were raised.
    pub fn new_id() -> String {
        uuid::Uuid::now_v7().to_string()
    }

    /// An alert of `kind` raised at `now` and due at once, with a fresh id, no score and no
    /// predecessor; callers adjust the rest.
    pub fn now(
        kind: AlertKind,
        subject: impl Into<String>,
        recipient: impl Into<String>,
        channel: impl Into<String>,
        dedup_key: String,
        payload: serde_json::Value,
        now: DateTime<Utc>,
    ) -> NewAlert {
        NewAlert {
            alert_id: NewAlert::new_id(),
            kind,
            priority: kind.priority(),
            subject: subject.into(),
            recipient: recipient.into(),
            channel: channel.into(),
            dedup_key,
            payload,
            score: None,
            created_at: now,
            due_ms: ms(now),
            escalated_from: None,
        }
    }
}

/// An alert as stored.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Alert {
    pub alert_id: String,
    pub kind: AlertKind,
    pub priority: Priority,
    pub subject: String,
    pub recipient: String,
    pub channel: String,
    pub dedup_key: String,
    pub payload: serde_json::Value,
    pub score: Option<u8>,
    pub state: AlertState,
    pub attempts: u32,
    pub created_at: DateTime<Utc>,
    pub due_ms: i64,
    pub sent_at: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
    pub external_id: Option<String>,
    pub escalated_from: Option<String>,
}

/// How one delivery attempt of a claimed alert ended, as the sender records it.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Sent {
        at: DateTime<Utc>,
        external_id: Option<String>,
    },
    /// To be tried again at `retry_ms`.
    Failed {
        error: String,
        retry_ms: i64,
    },
    /// Given up on this channel; `fallback` (if any) is raised in the same transaction.
    Escalated {
        error: String,
        fallback: Option<NewAlert>,
    },
}

/// Which alerts [`crate::store::Store::alerts`] lists.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AlertQuery {
    pub alert_id: Option<String>,
    pub kinds: Vec<AlertKind>,
    pub states: Vec<AlertState>,
    pub recipient: Option<String>,
    pub subject: Option<String>,
    pub limit: Option<u32>,
}

/// Epoch milliseconds of a time.
pub fn ms(at: DateTime<Utc>) -> i64 {
    at.timestamp_millis()
}
