//! Dealwatch's command-line interface (`dealwatch`) and the one module that wires the adapters.
//!
//! The layers live in the crates below this one: the pure work in `engine`; the records and
//! their database in `store`, the configuration in `settings`, sentence embeddings in `embed`,
//! the alert outbox in `alerts`; the shared state, use-cases, chat core and scheduler in
//! `service`; the adapters in `slack`, `teams`, `discord` and `salesforce`; the REST API in
//! `server`. This crate adds the commands, the reports they print, telemetry, and [`wiring`],
//! the only code that names every adapter. The other crates are re-exported under their names.

pub use ::alerts;
pub use ::discord;
pub use ::salesforce;
pub use ::server;
pub use ::service;
pub use ::slack;
pub use ::teams;
pub use service::{auth, chat, jobs, report, resources, workflow};
pub use settings as config;
pub use store;
pub mod cli;
pub mod commands;
pub mod telemetry;
pub mod wiring;
