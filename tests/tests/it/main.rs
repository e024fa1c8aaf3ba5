//! Dealwatch's end-to-end tests, in one test binary (one link, shared helpers in `tests/src`).
//!
//! - `alerts`: the outbox, its rules, routing and delivery to a fake Slack, on both stores.
//! - `attack`: a running server with hostile tenants attacked as an outsider, a rep and an
//!   admin; every request counted per category as tried and handled.
//! - `cli`: the real `dealwatch` binary, as a user runs it.
//! - `replay`: as-of replay leaks nothing from the future; same input, same output.
//! - `salesforce`: sync, write-back, faults and the webhook against the fake org.
//! - `scores`: exact explanations, honest cold start, exports without dates, after-close columns.
//! - `questions`: plain-English questions read right (our labelled set, per backend).
//! - `quality`: model quality on generated data against boosted trees and hidden outcomes.
//! - `insights`: planted changes are found; shuffled outcomes raise (almost) no false alarm.
//! - `data_sets`: the third-party data sets in `../shared/data`.
//! - `layout`: the crates' layering: no module import loops, dependencies pointing down, each
//!   SDK in its adapter, no source file over 700 lines.
//! - `store`: the store conformance suite, on SQLite and PostgreSQL.
//! - `teams`, `discord`: the same bot on Microsoft Teams (fake Bot Framework) and Discord (fake
//!   HTTP API and gateway, recorded interactions), on both stores.
//! - `server`: the HTTP service on both stores, driven over HTTP.
//! - `service_cli`: import, train, score and serve through the real binary, and a killed import.
//! - `sfdc_package`: the Salesforce package holds the fields the service writes; its checks pass.

mod alerts;
mod attack;
mod cli;
mod data_sets;
mod discord;
mod insights;
mod layout;
mod quality;
mod questions;
mod replay;
mod salesforce;
mod scores;
mod server;
mod service_cli;
mod sfdc_package;
mod slack;
mod store;
mod teams;
