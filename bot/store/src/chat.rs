//! Chat platforms' installations and conversations: Slack workspaces installed through OAuth
//! (their sealed bot tokens), and the conversations the bot may write into unprompted (a Teams
//! conversation reference, a Discord channel).

use chrono::{DateTime, Utc};

use crate::db::Sql;
use crate::tenants::stored_tenant;
use crate::{SqlStore, StoreError, TenantId};

/// A Slack workspace installed through OAuth: its tenant and its sealed bot token.
#[derive(Debug, Clone, PartialEq)]
pub struct SlackInstallation {
    pub team_id: String,
    pub tenant: TenantId,
    pub team_name: String,
    pub bot_user_id: Option<String>,
    pub scopes: String,
    /// The bot token, encrypted by the service; the store never sees it in clear.
    pub token_sealed: String,
    pub installed_by: Option<String>,
    pub installed_at: DateTime<Utc>,
}

/// Where the bot can write to someone unprompted on a chat platform (a Teams conversation
/// reference), stored when the app is installed or first messaged.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Conversation {
    pub platform: String,
    /// `user:<platform user>` for a person's chat with the bot, `conversation:<id>` for a
    /// channel or group chat.
    pub key: String,
    pub conversation_id: String,
    pub service_url: String,
    /// The platform's organisation: the Entra tenant (Teams), the guild (Discord).
    pub org_id: String,
    pub bot_id: Option<String>,
    /// The person's id on the platform (Teams `29:…`), for a person's chat.
    pub user_id: Option<String>,
    pub updated_at: DateTime<Utc>,
}

#[async_trait::async_trait]
pub trait Chats {
    /// Stores a workspace's installation, or refreshes the tenant's own. A workspace installed
    /// for another tenant stays theirs: [`StoreError::Taken`].
    async fn save_slack_installation(&self, installation: &SlackInstallation) -> Result<(), StoreError>;
    /// The installation of a Slack workspace, whichever tenant it belongs to.
    async fn slack_installation(&self, team_id: &str) -> Result<Option<SlackInstallation>, StoreError>;

    /// Stores (or refreshes) a chat conversation the bot may write into later.
    async fn save_conversation(&self, tenant: &TenantId, conversation: &Conversation) -> Result<(), StoreError>;
    /// A tenant's conversations on `platform`, the most recently seen first.
    async fn conversations(&self, tenant: &TenantId, platform: &str) -> Result<Vec<Conversation>, StoreError>;
    /// One conversation by its key (`user:…`, `conversation:…`).
    async fn conversation(
        &self,
        tenant: &TenantId,
        platform: &str,
        key: &str,
    ) -> Result<Option<Conversation>, StoreError>;
}

/// A `slack_installations` row as selected.
#[derive(Debug, sqlx::FromRow)]
struct InstallationRow {
    team_id: String,
    tenant_id: String,
    team_name: String,
    bot_user_id: Option<String>,
    scopes: String,
    token_sealed: String,
    installed_by: Option<String>,
    installed_at: DateTime<Utc>,
}

const CONVERSATION_COLUMNS: &str =
    "SELECT platform, key, conversation_id, service_url, org_id, bot_id, user_id, updated_at FROM chat_conversations ";

fn taken(team_id: &str) -> StoreError {
    StoreError::Taken(format!("Slack workspace {team_id} is already connected to another Dealwatch tenant"))
}

#[async_trait::async_trait]
impl Chats for SqlStore {
    async fn save_slack_installation(&self, i: &SlackInstallation) -> Result<(), StoreError> {
        // Installing again refreshes the token; it never moves a workspace to another tenant
        // (its people would be answered from that tenant's deals).
        if let Some(existing) = self.slack_installation(&i.team_id).await?
            && existing.tenant != i.tenant
        {
            return Err(taken(&i.team_id));
        }
        let mut tx = self.begin_write(&i.tenant).await?;
        let saved = tx
            .execute(
                Sql::new(
                    "INSERT INTO slack_installations (team_id, tenant_id, team_name, bot_user_id, scopes, \
                     token_sealed, installed_by, installed_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
                     ON CONFLICT (team_id) DO UPDATE SET team_name = excluded.team_name, \
                     bot_user_id = excluded.bot_user_id, scopes = excluded.scopes, token_sealed = excluded.token_sealed, \
                     installed_by = excluded.installed_by, installed_at = excluded.installed_at \
                     WHERE slack_installations.tenant_id = excluded.tenant_id",
                )
                .bind(i.team_id.as_str())
                .bind(i.tenant.as_str())
                .bind(i.team_name.as_str())
                .bind(i.bot_user_id.as_deref())
                .bind(i.scopes.as_str())
                .bind(i.token_sealed.as_str())
                .bind(i.installed_by.as_deref())
                .bind(i.installed_at),
            )
            .await?;
        if saved == 0 {
            return Err(taken(&i.team_id));
        }
        tx.commit().await
    }

    async fn slack_installation(&self, team_id: &str) -> Result<Option<SlackInstallation>, StoreError> {
        let mut tx = self.begin_directory().await?;
        let row: Option<InstallationRow> = tx
            .optional(
                Sql::new(
                    "SELECT team_id, tenant_id, team_name, bot_user_id, scopes, token_sealed, installed_by, \
                     installed_at FROM slack_installations WHERE team_id = $1",
                )
                .bind(team_id),
            )
            .await?;
        tx.commit().await?;
        row.map(|r| {
            Ok(SlackInstallation {
                tenant: stored_tenant(&r.tenant_id)?,
                team_id: r.team_id,
                team_name: r.team_name,
                bot_user_id: r.bot_user_id,
                scopes: r.scopes,
                token_sealed: r.token_sealed,
                installed_by: r.installed_by,
                installed_at: r.installed_at,
            })
        })
        .transpose()
    }

    async fn save_conversation(&self, tenant: &TenantId, c: &Conversation) -> Result<(), StoreError> {
        let mut tx = self.begin_write(tenant).await?;
        tx.execute(
            Sql::new(
                "INSERT INTO chat_conversations (tenant_id, platform, key, conversation_id, service_url, org_id, \
                 bot_id, user_id, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
                 ON CONFLICT (tenant_id, platform, key) DO UPDATE SET conversation_id = excluded.conversation_id, \
                 service_url = excluded.service_url, org_id = excluded.org_id, bot_id = excluded.bot_id, \
                 user_id = excluded.user_id, updated_at = excluded.updated_at",
            )
            .bind(tenant.as_str())
            .bind(c.platform.as_str())
            .bind(c.key.as_str())
            .bind(c.conversation_id.as_str())
            .bind(c.service_url.as_str())
            .bind(c.org_id.as_str())
            .bind(c.bot_id.as_deref())
            .bind(c.user_id.as_deref())
            .bind(c.updated_at),
        )
        .await?;
        tx.commit().await
    }

    async fn conversations(&self, tenant: &TenantId, platform: &str) -> Result<Vec<Conversation>, StoreError> {
        let mut tx = self.begin(tenant).await?;
        let mut q = Sql::new(CONVERSATION_COLUMNS);
        q.push("WHERE tenant_id = $1 AND platform = $2 ORDER BY updated_at DESC, key");
        let rows = tx.all(q.bind(tenant.as_str()).bind(platform)).await?;
        tx.commit().await?;
        Ok(rows)
    }

    async fn conversation(
        &self,
        tenant: &TenantId,
        platform: &str,
        key: &str,
    ) -> Result<Option<Conversation>, StoreError> {
        let mut tx = self.begin(tenant).await?;
        let mut q = Sql::new(CONVERSATION_COLUMNS);
        q.push("WHERE tenant_id = $1 AND platform = $2 AND key = $3");
        let row = tx.optional(q.bind(tenant.as_str()).bind(platform).bind(key)).await?;
        tx.commit().await?;
        Ok(row)
    }
}
