//! Alerts: raised into a durable outbox in the same transaction as the change that caused them,
//! then delivered by [`deliver::Sender`] through the [`channels`] (the log and email here; Slack,
//! Teams and Discord from their adapters).
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
pub mod samples;
pub mod settings;
pub mod templates;

/// How one delivery attempt of a claimed alert ended (the outbox's record).
pub use store::AlertOutcome as Outcome;
pub use store::{Alert, AlertQuery, AlertState, ms};
