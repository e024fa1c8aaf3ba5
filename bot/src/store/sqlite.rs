//! SQLite: the embedded default. One file under the data directory, WAL mode so readers never
//! wait for the writer, and write transactions that take the lock up front (`BEGIN IMMEDIATE`),
//! so concurrent writers queue on the busy timeout instead of failing half-way.

use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous};
use sqlx::types::Json;
use sqlx::{Sqlite, Transaction};

use super::sql::{self, implement_store};
use super::*;

#[derive(Debug, Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
}

impl SqliteStore {
    /// Appended to the query that claims due alerts: concurrent senders skip each other's rows.
    const SKIP_LOCKED: &'static str = "";
    const BACKEND: &'static str = "sqlite";

    /// Opens (creating if needed) the database at `url` (`sqlite://path/file.db`) and migrates it.
    pub async fn open(url: &str) -> Result<Self, StoreError> {
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
        sqlx::migrate!("../migrations/sqlite").run(&pool).await?;
        Ok(Self { pool })
    }

    async fn begin(&self, _tenant: &TenantId) -> Result<Transaction<'static, Sqlite>, StoreError> {
        Ok(self.pool.begin().await?)
    }

    /// A transaction for reading across tenants (the tenant list).
    async fn begin_directory(&self) -> Result<Transaction<'static, Sqlite>, StoreError> {
        Ok(self.pool.begin().await?)
    }

    async fn begin_write(&self, _tenant: &TenantId) -> Result<Transaction<'static, Sqlite>, StoreError> {
        Ok(self.pool.begin_with("BEGIN IMMEDIATE").await?)
    }

    /// A write to a table of no tenant (signatures seen).
    async fn begin_global_write(&self) -> Result<Transaction<'static, Sqlite>, StoreError> {
        Ok(self.pool.begin_with("BEGIN IMMEDIATE").await?)
    }
}

implement_store!(SqliteStore, Sqlite);
