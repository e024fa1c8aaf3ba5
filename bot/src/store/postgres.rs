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
    /// role owning the tables) or through `url`. The role of `url` must not bypass row-level
    /// security (see [`PgStore::check_role`]) unless `allow_rls_bypass`.
    pub async fn open(url: &str, migration_url: Option<&str>, allow_rls_bypass: bool) -> Result<Self, StoreError> {
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
        let store = Self { pool };
        match store.check_role().await {
            Ok(()) => {}
            Err(StoreError::Invalid(why)) if allow_rls_bypass => {
                tracing::warn!("{why} (allowed by [database] allow_rls_bypass: for development only)");
            }
            Err(e) => return Err(e),
        }
        Ok(store)
    }

    /// Row-level security keeps tenants apart only for a role it applies to: not a superuser,
    /// not one with `BYPASSRLS`, and not the tables' owner (who can turn it off). Such a role is
    /// refused with what to do instead.
    async fn check_role(&self) -> Result<(), StoreError> {
        let (role, superuser, bypass, owner): (String, bool, bool, bool) = sqlx::query_as(
            "SELECT r.rolname::text, r.rolsuper, r.rolbypassrls, EXISTS ( \
                 SELECT 1 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
                 WHERE c.relname = 'deals' AND n.nspname = current_schema() \
                   AND pg_has_role(current_user, c.relowner, 'MEMBER')) \
             FROM pg_roles r WHERE r.rolname = current_user",
        )
        .fetch_one(&self.pool)
        .await?;
        let why = if superuser {
            "is a superuser"
        } else if bypass {
            "has BYPASSRLS"
        } else if owner {
            "owns the tables"
        } else {
            return Ok(());
        };
        Err(StoreError::Invalid(format!(
            "refusing to run as PostgreSQL role {role:?}: it {why}, so row-level security would not keep tenants \
             apart. Connect as a service role that owns nothing (CREATE ROLE dealwatch_svc LOGIN IN ROLE dealwatch_app) \
             and set [database] migration_url to the owner's URL; [database] allow_rls_bypass = true allows it for \
             development only"
        )))
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

    /// A write to a table of no tenant (signatures seen): no tenant is set, so no tenant's rows
    /// are visible in it.
    async fn begin_global_write(&self) -> Result<Transaction<'static, Postgres>, StoreError> {
        Ok(self.pool.begin().await?)
    }
}

implement_store!(PgStore, Postgres);
