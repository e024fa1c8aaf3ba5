//! PostgreSQL: for many tenants and replicas. Every transaction first sets the transaction-local
//! `app.tenant_id`, which the row-level security policies check (see
//! `migrations/postgres/0001_init.sql`). Connect as a role that does not own the tables (a member
//! of `dealwatch_app`); migrations can run as the owner through a separate URL.

use std::time::Duration;

use sqlx::postgres::{PgPool, PgPoolOptions};

use crate::StoreError;
use crate::db::{Pool, Sql, Tx};

/// Connects to `url`, applying the migrations first through `migration_url` when given (a role
/// owning the tables) or through `url`. The role of `url` must not bypass row-level security
/// (see [`check_role`]) unless `allow_rls_bypass`.
pub(crate) async fn open(url: &str, migration_url: Option<&str>, allow_rls_bypass: bool) -> Result<Pool, StoreError> {
    let migrator = PgPoolOptions::new().max_connections(1).connect(migration_url.unwrap_or(url)).await?;
    sqlx::migrate!("../../migrations/postgres").run(&migrator).await?;
    migrator.close().await;
    let pool = PgPoolOptions::new().max_connections(16).acquire_timeout(Duration::from_secs(10)).connect(url).await?;
    match check_role(&pool).await {
        Ok(()) => {}
        Err(StoreError::Invalid(why)) if allow_rls_bypass => {
            tracing::warn!("{why} (allowed by [database] allow_rls_bypass: for development only)");
        }
        Err(e) => return Err(e),
    }
    Ok(Pool::Postgres(pool))
}

/// Row-level security keeps tenants apart only for a role it applies to: not a superuser, not
/// one with `BYPASSRLS`, and not the tables' owner (who can turn it off). Such a role is refused
/// with what to do instead.
async fn check_role(pool: &PgPool) -> Result<(), StoreError> {
    let (role, superuser, bypass, owner): (String, bool, bool, bool) = sqlx::query_as(
        "SELECT r.rolname::text, r.rolsuper, r.rolbypassrls, EXISTS ( \
             SELECT 1 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE c.relname = 'deals' AND n.nspname = current_schema() \
               AND pg_has_role(current_user, c.relowner, 'MEMBER')) \
         FROM pg_roles r WHERE r.rolname = current_user",
    )
    .fetch_one(pool)
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

/// Sets the transaction-local `app.tenant_id` on PostgreSQL (`*`: the tenant directory only);
/// nothing on SQLite, which has one tenant's queries at a time by their `WHERE tenant_id`.
pub(crate) async fn set_tenant(tx: &mut Tx, tenant: &str) -> Result<(), StoreError> {
    if let Tx::Postgres(_) = tx {
        tx.execute(Sql::new("SELECT set_config('app.tenant_id', $1, true)").bind(tenant)).await?;
    }
    Ok(())
}
