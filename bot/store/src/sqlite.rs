//! SQLite: the embedded default. One file under the data directory, WAL mode so readers never
//! wait for the writer, and write transactions that take the lock up front (`BEGIN IMMEDIATE`,
//! see [`Pool::begin_write`](crate::db::Pool::begin_write)), so concurrent writers queue on the
//! busy timeout instead of failing half-way.

use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};

use crate::StoreError;
use crate::db::Pool;

/// Opens (creating if needed) the database at `url` (`sqlite://path/file.db`) and migrates it.
pub(crate) async fn open(url: &str) -> Result<Pool, StoreError> {
    let options = SqliteConnectOptions::from_str(url)?
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        // In WAL mode NORMAL loses no committed transaction when the process dies; only a
        // power cut can drop the last ones.
        .synchronous(SqliteSynchronous::Normal)
        .busy_timeout(Duration::from_secs(10))
        .foreign_keys(true);
    if let Some(parent) = options.get_filename().parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)
            .map_err(|e| StoreError::Invalid(format!("creating the data directory {}: {e}", parent.display())))?;
    }
    let pool = SqlitePoolOptions::new().max_connections(8).connect_with(options).await?;
    sqlx::migrate!("../../migrations/sqlite").run(&pool).await?;
    Ok(Pool::Sqlite(pool))
}
