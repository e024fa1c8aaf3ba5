//! Dealwatch's engine: the pure core.
//!
//! Deals in, scores and explanations out. No I/O, no clock, no environment: callers pass data,
//! the as-of date and configuration, and get values plus warnings back. Every number the engine
//! produces is therefore reproducible from its inputs alone (see ARCHITECTURE.md).

pub mod alerts;
pub mod asof;
pub mod dataset;
pub mod domain;
pub mod eval;
pub mod features;
pub mod generate;
pub mod ingest;
pub mod insights;
pub mod mapping;
pub mod metrics;
pub mod model;
pub mod question;
pub mod record;
pub mod score;
pub mod similar;
pub mod stats;
pub mod texts;
