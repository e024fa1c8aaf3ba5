//! PostgreSQL: for many tenants and replicas. Every transaction first sets the transaction-local
//! `app.tenant_id`, which the row-level security policies check (see
//! `migrations/postgres/0001_init.sql`). Connect as a role that does not own the tables (a member
//! of `dealwatch_app`); migrations can run as the owner through a separate URL.

use std::time::Duration;

use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::types::Json;
use sqlx::{Postgres, Transaction};

use super::sql::{self, implement_store};
use super::*;

#[derive(Debug, Clone)]
pub struct PgStore {
    pool: PgPool,
}

impl PgStore {
    /// Appended to the query that claims due alerts: concurrent senders skip each other's rows.
    const SKIP_LOCKED: &'static str = " FOR UPDATE SKIP LOCKED";
    const BACKEND: &'static str = "postgres";

    /// Connects to `url`, applying the migrations first through `migration_url` when given (a
    /// role owning the tables) or through `url`.
    pub async fn open(url: &str, migration_url: Option<&str>) -> Result<Self, StoreError> {
        match migration_url {
            Some(owner) => {
                let admin = PgPoolOptions::new().max_connections(1).connect(owner).await?;
                sqlx::migrate!("../migrations/postgres").run(&admin).await?;
                admin.close().await;
            }
            None => {
                let pool = PgPoolOptions::new().max_connections(1).connect(url).await?;
                sqlx::migrate!("../migrations/postgres").run(&pool).await?;
                pool.close().await;
            }
        }
        let pool =
            PgPoolOptions::new().max_connections(16).acquire_timeout(Duration::from_secs(10)).connect(url).await?;
        Ok(Self { pool })
    }

    async fn begin(&self, tenant: &TenantId) -> Result<Transaction<'static, Postgres>, StoreError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("SELECT set_config('app.tenant_id', $1, true)").bind(tenant.as_str()).execute(&mut *tx).await?;
        Ok(tx)
    }

    /// A transaction that may list the tenants (the `tenant_directory` policy) and see no
    /// tenant's data.
    async fn begin_directory(&self) -> Result<Transaction<'static, Postgres>, StoreError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("SELECT set_config('app.tenant_id', '*', true)").execute(&mut *tx).await?;
        Ok(tx)
    }

    async fn begin_write(&self, tenant: &TenantId) -> Result<Transaction<'static, Postgres>, StoreError> {
        self.begin(tenant).await
    }
}

implement_store!(PgStore, Postgres);
