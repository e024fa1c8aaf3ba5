//! Dealwatch's engine: the pure core.
//!
//! Deals in, scores and explanations out. No I/O, no clock, no environment: callers pass data,
//! the as-of date and configuration, and get values plus warnings back. Every number the engine
//! produces is therefore reproducible from its inputs alone (see ARCHITECTURE.md).

pub mod dataset;
pub mod generate;
pub mod domain;
pub mod ingest;
pub mod mapping;
