//! Logging: structured (`tracing`), to stderr, as text or JSON (`[log] format`). The filter is
//! `DEALWATCH_LOG` if set, else the level the command asks for.

use tracing_subscriber::EnvFilter;

use crate::config::{Log, LogFormat};

pub fn init(log: &Log, default_level: &str) {
    let filter = EnvFilter::try_from_env("DEALWATCH_LOG").unwrap_or_else(|_| EnvFilter::new(default_level));
    let builder = tracing_subscriber::fmt().with_writer(std::io::stderr).with_env_filter(filter);
    // A second initialisation (tests running several servers) is harmless: keep the first.
    let _ = match log.format {
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
        LogFormat::Text => builder.try_init(),
    };
}
