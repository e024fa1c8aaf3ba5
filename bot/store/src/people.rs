//! People and their settings: who is who (CRM owner name, email, chat ids, role, manager, time
//! zone), each person's alert settings, tenant-wide settings, and revoked API tokens.

use std::collections::{BTreeMap, HashMap};
use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::types::Json;

use crate::db::{Sql, Value};
use crate::{SqlStore, StoreError, TenantId, parse_stored};

/// What a caller may do. Ordered so that `Admin > Manager > Rep`: a check for "at least manager"
/// is `role >= Role::Manager`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Rep,
    Manager,
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Rep => "rep",
            Role::Manager => "manager",
            Role::Admin => "admin",
        }
    }

    pub fn parse(value: &str) -> Option<Role> {
        [Role::Rep, Role::Manager, Role::Admin].into_iter().find(|role| role.as_str() == value)
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A person: CRM owner name ↔ email ↔ chat ids, with role, manager and time zone.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct User {
    pub user_id: String,
    pub email: Option<String>,
    pub name: String,
    /// The owner value this person has on deals (e.g. `rep_15`).
    pub crm_owner: Option<String>,
    pub role: Role,
    pub manager_id: Option<String>,
    pub time_zone: String,
    /// The person's id on each chat platform they are known on: platform (`slack`, `teams`,
    /// `discord`, …) → their id there. One id names one person of the tenant.
    pub chat_ids: BTreeMap<String, String>,
}

impl User {
    /// Someone with only an id, a name and a role: no CRM owner, manager or chat identities.
    pub fn named(user_id: &str, name: &str, role: Role) -> User {
        User {
            user_id: user_id.to_owned(),
            email: None,
            name: name.to_owned(),
            crm_owner: None,
            role,
            manager_id: None,
            time_zone: "UTC".into(),
            chat_ids: BTreeMap::new(),
        }
    }

    /// Their id on `platform`, if known.
    pub fn chat_id(&self, platform: &str) -> Option<&str> {
        self.chat_ids.get(platform).map(String::as_str)
    }

    /// Records `id` as their id on `platform` (replacing the one they had there).
    pub fn set_chat_id(&mut self, platform: &str, id: impl Into<String>) {
        self.chat_ids.insert(platform.to_owned(), id.into());
    }
}

#[async_trait::async_trait]
pub trait People {
    /// Saves a person, their chat ids as given (an id another person of the tenant had is theirs
    /// now; one missing is removed).
    async fn upsert_user(&self, tenant: &TenantId, user: &User) -> Result<(), StoreError>;
    async fn user(&self, tenant: &TenantId, user_id: &str) -> Result<Option<User>, StoreError>;
    async fn users(&self, tenant: &TenantId) -> Result<Vec<User>, StoreError>;

    async fn save_alert_settings(
        &self,
        tenant: &TenantId,
        user_id: &str,
        settings: &serde_json::Value,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError>;
    async fn alert_settings(&self, tenant: &TenantId, user_id: &str) -> Result<Option<serde_json::Value>, StoreError>;
    /// Every user's stored alert settings.
    async fn all_alert_settings(&self, tenant: &TenantId) -> Result<Vec<(String, serde_json::Value)>, StoreError>;

    /// A tenant-wide setting by name (`alert_routes`), as last saved.
    async fn tenant_setting(&self, tenant: &TenantId, name: &str) -> Result<Option<serde_json::Value>, StoreError>;
    /// Saves a tenant-wide setting (validated by the caller), with who saved it.
    async fn save_tenant_setting(
        &self,
        tenant: &TenantId,
        name: &str,
        value: &serde_json::Value,
        by: &str,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError>;

    /// Refuses `user_id`'s API tokens issued before `at`.
    async fn revoke_tokens(&self, tenant: &TenantId, user_id: &str, at: DateTime<Utc>) -> Result<(), StoreError>;
    /// When `user_id`'s tokens were last revoked: those issued before are refused.
    async fn tokens_not_before(&self, tenant: &TenantId, user_id: &str) -> Result<Option<DateTime<Utc>>, StoreError>;
}

/// A `users` row as selected.
#[derive(Debug, sqlx::FromRow)]
struct UserRow {
    user_id: String,
    email: Option<String>,
    name: String,
    crm_owner: Option<String>,
    role: String,
    manager_id: Option<String>,
    time_zone: String,
}

#[async_trait::async_trait]
impl People for SqlStore {
    async fn upsert_user(&self, tenant: &TenantId, user: &User) -> Result<(), StoreError> {
        let mut tx = self.begin_write(tenant).await?;
        tx.execute(
            Sql::new(
                "INSERT INTO users (tenant_id, user_id, email, name, crm_owner, role, manager_id, time_zone, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
                 ON CONFLICT (tenant_id, user_id) DO UPDATE SET email = excluded.email, name = excluded.name, \
                 crm_owner = excluded.crm_owner, role = excluded.role, manager_id = excluded.manager_id, \
                 time_zone = excluded.time_zone",
            )
            .bind(tenant.as_str())
            .bind(user.user_id.as_str())
            .bind(user.email.as_deref())
            .bind(user.name.as_str())
            .bind(user.crm_owner.as_deref())
            .bind(user.role.as_str())
            .bind(user.manager_id.as_deref())
            .bind(user.time_zone.as_str())
            .bind(Utc::now()),
        )
        .await?;
        // Their ids as given; an id another person of the tenant had now names this one.
        tx.execute(
            Sql::new("DELETE FROM chat_identities WHERE tenant_id = $1 AND user_id = $2")
                .bind(tenant.as_str())
                .bind(user.user_id.as_str()),
        )
        .await?;
        for (platform, id) in &user.chat_ids {
            tx.execute(
                Sql::new(
                    "INSERT INTO chat_identities (tenant_id, platform, external_id, user_id) VALUES ($1, $2, $3, $4) \
                     ON CONFLICT (tenant_id, platform, external_id) DO UPDATE SET user_id = excluded.user_id",
                )
                .bind(tenant.as_str())
                .bind(platform.as_str())
                .bind(id.as_str())
                .bind(user.user_id.as_str()),
            )
            .await?;
        }
        tx.commit().await
    }

    async fn user(&self, tenant: &TenantId, user_id: &str) -> Result<Option<User>, StoreError> {
        Ok(self.users(tenant).await?.into_iter().find(|u| u.user_id == user_id))
    }

    async fn users(&self, tenant: &TenantId) -> Result<Vec<User>, StoreError> {
        let mut tx = self.begin(tenant).await?;
        let rows: Vec<UserRow> = tx
            .all(
                Sql::new(
                    "SELECT user_id, email, name, crm_owner, role, manager_id, time_zone \
                     FROM users WHERE tenant_id = $1 ORDER BY user_id",
                )
                .bind(tenant.as_str()),
            )
            .await?;
        let ids: Vec<(String, String, String)> = tx
            .all(
                Sql::new("SELECT user_id, platform, external_id FROM chat_identities WHERE tenant_id = $1")
                    .bind(tenant.as_str()),
            )
            .await?;
        tx.commit().await?;
        let mut chat_ids: HashMap<String, BTreeMap<String, String>> = HashMap::new();
        for (user, platform, id) in ids {
            chat_ids.entry(user).or_default().insert(platform, id);
        }
        rows.into_iter()
            .map(|r| {
                Ok(User {
                    role: parse_stored("role", &r.role, Role::parse)?,
                    chat_ids: chat_ids.remove(&r.user_id).unwrap_or_default(),
                    user_id: r.user_id,
                    email: r.email,
                    name: r.name,
                    crm_owner: r.crm_owner,
                    manager_id: r.manager_id,
                    time_zone: r.time_zone,
                })
            })
            .collect()
    }

    async fn save_alert_settings(
        &self,
        tenant: &TenantId,
        user_id: &str,
        settings: &serde_json::Value,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let mut tx = self.begin_write(tenant).await?;
        tx.execute(
            Sql::new(
                "INSERT INTO alert_settings (tenant_id, user_id, settings, updated_at) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (tenant_id, user_id) DO UPDATE SET settings = excluded.settings, \
                 updated_at = excluded.updated_at",
            )
            .bind(tenant.as_str())
            .bind(user_id)
            .bind(Value::json(settings))
            .bind(at),
        )
        .await?;
        tx.commit().await
    }

    async fn alert_settings(&self, tenant: &TenantId, user_id: &str) -> Result<Option<serde_json::Value>, StoreError> {
        let query = Sql::new("SELECT settings FROM alert_settings WHERE tenant_id = $1 AND user_id = $2");
        self.read_json(tenant, query.bind(tenant.as_str()).bind(user_id)).await
    }

    async fn all_alert_settings(&self, tenant: &TenantId) -> Result<Vec<(String, serde_json::Value)>, StoreError> {
        let mut tx = self.begin(tenant).await?;
        let rows: Vec<(String, Json<serde_json::Value>)> = tx
            .all(
                Sql::new("SELECT user_id, settings FROM alert_settings WHERE tenant_id = $1 ORDER BY user_id")
                    .bind(tenant.as_str()),
            )
            .await?;
        tx.commit().await?;
        Ok(rows.into_iter().map(|(user, Json(settings))| (user, settings)).collect())
    }

    async fn tenant_setting(&self, tenant: &TenantId, name: &str) -> Result<Option<serde_json::Value>, StoreError> {
        let query = Sql::new("SELECT value FROM tenant_settings WHERE tenant_id = $1 AND name = $2");
        self.read_json(tenant, query.bind(tenant.as_str()).bind(name)).await
    }

    async fn save_tenant_setting(
        &self,
        tenant: &TenantId,
        name: &str,
        value: &serde_json::Value,
        by: &str,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let mut tx = self.begin_write(tenant).await?;
        tx.execute(
            Sql::new(
                "INSERT INTO tenant_settings (tenant_id, name, value, updated_at, updated_by) VALUES ($1, $2, $3, $4, $5) \
                 ON CONFLICT (tenant_id, name) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at, \
                 updated_by = excluded.updated_by",
            )
            .bind(tenant.as_str())
            .bind(name)
            .bind(Value::json(value))
            .bind(at)
            .bind(by),
        )
        .await?;
        tx.commit().await
    }

    async fn revoke_tokens(&self, tenant: &TenantId, user_id: &str, at: DateTime<Utc>) -> Result<(), StoreError> {
        let mut tx = self.begin_write(tenant).await?;
        tx.execute(
            Sql::new(
                "INSERT INTO token_revocations (tenant_id, user_id, not_before) VALUES ($1, $2, $3) \
                 ON CONFLICT (tenant_id, user_id) DO UPDATE SET not_before = excluded.not_before",
            )
            .bind(tenant.as_str())
            .bind(user_id)
            .bind(at),
        )
        .await?;
        tx.commit().await
    }

    async fn tokens_not_before(&self, tenant: &TenantId, user_id: &str) -> Result<Option<DateTime<Utc>>, StoreError> {
        let mut tx = self.begin(tenant).await?;
        let row: Option<(DateTime<Utc>,)> = tx
            .optional(
                Sql::new("SELECT not_before FROM token_revocations WHERE tenant_id = $1 AND user_id = $2")
                    .bind(tenant.as_str())
                    .bind(user_id),
            )
            .await?;
        tx.commit().await?;
        Ok(row.map(|(at,)| at))
    }
}

impl SqlStore {
    /// The one JSON value `query` selects in the tenant's transaction (`None`: no row), for the
    /// settings kept as documents.
    async fn read_json(&self, tenant: &TenantId, query: Sql<'_>) -> Result<Option<serde_json::Value>, StoreError> {
        let mut tx = self.begin(tenant).await?;
        let row: Option<(Json<serde_json::Value>,)> = tx.optional(query).await?;
        tx.commit().await?;
        Ok(row.map(|(Json(v),)| v))
    }
}
