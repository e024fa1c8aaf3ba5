//! Dealwatch's service and command-line interface.
//!
//! Everything with side effects lives here or in the crates below it: reading files and the
//! clock, the command line, the HTTP server and the chat and CRM adapters. The pure work is
//! done by the `engine` crate; the records and their database by `store`, the configuration by
//! `settings`, sentence embeddings by `embed`, the alert outbox by `alerts`.

pub use ::alerts;
pub mod auth;
pub mod chat;
pub mod cli;
pub mod commands;
pub use settings as config;
pub mod discord;
pub mod jobs;
pub mod report;
pub mod resources;
pub mod salesforce;
pub mod server;
pub mod slack;
pub use store;
pub mod teams;
pub mod telemetry;
pub mod wiring;
pub mod workflow;
