//! The chat platforms' sections: `[slack]`, `[teams]`, `[discord]`, and the per-tenant links
//! of people to their chat ids they share.

use secrecy::SecretString;
use serde::{Deserialize, Serialize};

use crate::{redacted, redacted_option};

/// Slack's Web API, for alerts (and, later, the bot).
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct Slack {
    /// The bot token (`xoxb-…`); without it there is no Slack channel.
    #[serde(default, serialize_with = "redacted_option")]
    pub bot_token: Option<SecretString>,
    pub api_url: String,
    /// The app's signing secrets: requests signed with any of them are accepted, so a secret
    /// can be rotated without downtime (add the new one, then remove the old). Without one,
    /// `/slack/*` answers 401 to everything.
    #[serde(default, serialize_with = "redacted")]
    pub signing_secrets: Vec<SecretString>,
    /// Slack workspace (team id, `T…`) → tenant. A workspace not listed here is refused.
    #[serde(default)]
    pub workspaces: std::collections::BTreeMap<String, String>,
    /// Slack's deadline for answering a command or click is 3 s: an answer not ready after
    /// this many milliseconds is acknowledged and finished through `response_url`.
    pub answer_within_ms: u64,
    /// The app's OAuth client id and secret, for installing it into workspaces through
    /// `/slack/install` (multi-workspace use). Without them only `workspaces` are connected.
    pub client_id: Option<String>,
    #[serde(default, serialize_with = "redacted_option")]
    pub client_secret: Option<SecretString>,
    /// Where Slack sends the installer back: this server's public
    /// `https://…/slack/oauth/callback`.
    pub redirect_url: Option<String>,
    /// The key (32 bytes, base64) that seals installed workspaces' bot tokens in the store;
    /// required with `client_id`. Generate one with `openssl rand -base64 32`.
    #[serde(default, serialize_with = "redacted_option")]
    pub token_key: Option<SecretString>,
    /// The Slack user ids (`U…`) of people, per tenant, for those whose Slack email differs
    /// from their CRM email: `[slack.users.acme] maria = "U024BE7LH"`. A link counts only in a
    /// workspace of that tenant. Others are found by email (`users.lookupByEmail`) or by the
    /// Slack id stored with the user.
    #[serde(default)]
    pub users: UserLinks,
    /// Socket Mode, for running without a public URL (a laptop, a closed network): the server
    /// opens WebSockets to Slack (`apps.connections.open`) and takes commands, clicks and events
    /// over them instead of on `/slack/*`. Needs `app_token`; turn Socket Mode on in the app's
    /// settings too.
    pub socket_mode: bool,
    /// The app-level token (`xapp-…`, scope `connections:write`) Socket Mode connects with.
    #[serde(default, serialize_with = "redacted_option")]
    pub app_token: Option<SecretString>,
}

impl Default for Slack {
    fn default() -> Self {
        Slack {
            bot_token: None,
            api_url: "https://slack.com/api".into(),
            signing_secrets: Vec::new(),
            workspaces: Default::default(),
            answer_within_ms: 2000,
            client_id: None,
            client_secret: None,
            redirect_url: None,
            token_key: None,
            users: Default::default(),
            socket_mode: false,
            app_token: None,
        }
    }
}

/// `[teams]`: the Microsoft Teams bot. Teams reaches it through the Bot Framework: activities
/// are posted to `/api/messages` with a JWT the Bot Connector signs, and the bot answers through
/// the Connector's REST API with a token from Microsoft Entra ID.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Teams {
    /// The bot's Microsoft App ID (the Entra app registration's client id). Without it there is
    /// no Teams bot, and `/api/messages` answers 403.
    pub app_id: Option<String>,
    /// The app registration's client secret, for the Connector tokens.
    #[serde(serialize_with = "redacted_option")]
    pub app_password: Option<SecretString>,
    /// The Entra tenant the app is registered in (a single-tenant bot), or `botframework.com`
    /// (a multi-tenant one): where the Connector tokens come from.
    pub app_tenant: String,
    /// Microsoft Entra ID's sign-in host.
    pub login_url: String,
    /// Where the Bot Framework publishes the keys its tokens are signed with.
    pub openid_metadata_url: String,
    /// The issuer of the Bot Connector's tokens.
    pub issuer: String,
    /// The scope of the Connector tokens.
    pub scope: String,
    /// Service URLs the bot talks to (prefixes): an activity naming another is refused, and
    /// nothing is sent anywhere else.
    pub service_urls: Vec<String>,
    /// Microsoft 365 tenant (Entra tenant id of the users) → Dealwatch tenant.
    pub tenants: std::collections::BTreeMap<String, String>,
    /// Per tenant, Dealwatch user id → Entra object id, for people whose Teams email differs
    /// from their CRM email (`[teams.users.acme] maria = "…"`). Others are found by the id stored
    /// with the user, or by email.
    pub users: UserLinks,
    /// How long the signing keys and the metadata are trusted before they are fetched again.
    pub keys_cache_seconds: u64,
    /// Seconds a call to the Connector or Entra may take.
    pub timeout_seconds: u64,
}

impl Default for Teams {
    fn default() -> Self {
        Teams {
            app_id: None,
            app_password: None,
            app_tenant: "botframework.com".into(),
            login_url: "https://login.microsoftonline.com".into(),
            openid_metadata_url: "https://login.botframework.com/v1/.well-known/openidconfiguration".into(),
            issuer: "https://api.botframework.com".into(),
            scope: "https://api.botframework.com/.default".into(),
            service_urls: vec!["https://smba.trafficmanager.net/".into()],
            tenants: Default::default(),
            users: Default::default(),
            keys_cache_seconds: 24 * 3600,
            timeout_seconds: 15,
        }
    }
}

/// `[discord]`: the Discord bot. Its gateway connection runs inside `dealwatch serve`; slash
/// commands are registered in each configured server (guild).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Discord {
    /// The bot's token (Developer Portal → Bot). Without it there is no Discord bot.
    #[serde(serialize_with = "redacted_option")]
    pub bot_token: Option<SecretString>,
    /// The application id (Developer Portal → General Information).
    pub application_id: Option<u64>,
    /// Discord's HTTP API host, `https://discord.com`.
    pub api_url: String,
    /// Run the gateway client from `dealwatch serve` (off: alerts only, through the HTTP API).
    pub gateway: bool,
    /// Discord server (guild id) → Dealwatch tenant.
    pub guilds: std::collections::BTreeMap<String, String>,
    /// Per tenant, Dealwatch user id → Discord user id, for people not linked by the id stored
    /// with them (`[discord.users.acme] maria = "1200…"`).
    pub users: UserLinks,
    /// Discord wants an interaction answered within 3 s: an answer not ready after this many
    /// milliseconds is deferred and finished by editing the reply (0: always deferred).
    pub answer_within_ms: u64,
}

impl Default for Discord {
    fn default() -> Self {
        Discord {
            bot_token: None,
            application_id: None,
            api_url: "https://discord.com".into(),
            gateway: true,
            guilds: Default::default(),
            users: Default::default(),
            answer_within_ms: 2000,
        }
    }
}

/// People's chat ids named in the config, per tenant: `[slack.users.acme] maria = "U024BE7LH"`.
/// A chat id links a person only in that tenant's workspace (server, organisation): the same
/// Dealwatch user id (`admin`) in another tenant is another person.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "std::collections::BTreeMap<String, serde_json::Value>")]
pub struct UserLinks(std::collections::BTreeMap<String, std::collections::BTreeMap<String, String>>);

impl UserLinks {
    /// `tenant`'s links: Dealwatch user id → chat id.
    pub fn of(&self, tenant: &str) -> &std::collections::BTreeMap<String, String> {
        static NONE: std::collections::BTreeMap<String, String> = std::collections::BTreeMap::new();
        self.0.get(tenant).unwrap_or(&NONE)
    }

    /// Links for `tenant` (tests and set-up code).
    pub fn with(mut self, tenant: &str, user: &str, chat_id: &str) -> Self {
        self.0.entry(tenant.to_owned()).or_default().insert(user.to_owned(), chat_id.to_owned());
        self
    }

    pub fn tenants(&self) -> impl Iterator<Item = &String> {
        self.0.keys()
    }
}

impl TryFrom<std::collections::BTreeMap<String, serde_json::Value>> for UserLinks {
    type Error = String;
    fn try_from(raw: std::collections::BTreeMap<String, serde_json::Value>) -> Result<Self, String> {
        let mut links = std::collections::BTreeMap::new();
        for (tenant, table) in raw {
            let serde_json::Value::Object(people) = table else {
                return Err(format!(
                    "users: links are per tenant: write [<platform>.users.<tenant>] {tenant} = \"…\" \
                     (found {tenant} = {table} outside a tenant's table)"
                ));
            };
            let mut map = std::collections::BTreeMap::new();
            for (user, id) in people {
                let serde_json::Value::String(id) = id else {
                    return Err(format!("users.{tenant}.{user}: a chat id must be a string, found {id}"));
                };
                map.insert(user, id);
            }
            links.insert(tenant, map);
        }
        Ok(UserLinks(links))
    }
}
