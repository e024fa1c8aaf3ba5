//! The seam between what the bot says and the chat platforms that carry it.
//!
//! A platform's adapter (a [`Transport`]) is the only code that knows its wire format: it
//! verifies and reads requests into typed values ([`super::command::Command`], a question,
//! an [`super::actions::Action`]), hands them to the one implementation of each
//! ([`super::answer`], [`super::ask::ask`], [`super::actions::act`]), and renders the typed
//! answers ([`super::Reply`], [`super::actions::Outcome`]) from its own templates in
//! `prompts/<platform>/`. Alerts reach it through its [`Channel`]. The server knows adapters only
//! through this trait: their routes, their alert channel, what runs beside the server (a
//! gateway or Socket Mode connection), whose destinations a tenant may route alerts to, and an
//! install link where the platform has one. Slack, Teams and Discord all implement it.

use std::sync::Arc;

use axum::Router;

use super::Reply;
use super::ask::{Questions, Style};
use crate::Services;
use crate::alerts::channels::Channel;
use crate::config::Settings;
use store::{Store, TenantId, User};

/// A chat platform's adapter.
#[async_trait::async_trait]
pub trait Transport: Send + Sync + std::fmt::Debug {
    /// The platform's name, as people choose it among their alert channels (`teams`).
    fn name(&self) -> &'static str;
    /// The HTTP endpoints the platform posts to.
    fn routes(&self) -> Router<Services>;
    /// Alert delivery on this platform (to a person, or into a shared channel), when configured.
    fn channel(&self) -> Option<Arc<dyn Channel>>;
    /// Starts what runs beside the HTTP server (a gateway connection), if anything.
    async fn start(&self, state: &Services) -> anyhow::Result<Option<Running>>;
    /// Whether `tenant` may route alerts to the shared destination `to` (a channel id): only a
    /// channel of the tenant's own organisation or server. `Err` says why not, for the admin.
    async fn owns_destination(&self, tenant: &TenantId, to: &str) -> Result<(), String>;
    /// A link an admin of `tenant` opens to install the app into their workspace, and when it
    /// expires; `None` where the platform has no such flow or it is not configured.
    fn install_link(&self, _tenant: &TenantId, _actor: &str) -> Option<(String, chrono::DateTime<chrono::Utc>)> {
        None
    }
}

/// Something a transport runs beside the server, stopped when the server stops.
pub struct Running {
    pub name: &'static str,
    pub stop: Box<dyn FnOnce() -> std::pin::Pin<Box<dyn Future<Output = ()> + Send>> + Send>,
}

impl std::fmt::Debug for Running {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Running").field("name", &self.name).finish_non_exhaustive()
    }
}

/// A platform's message templates (`prompts/<platform>/`, or the bundled ones), parsed once and
/// rendered to the JSON the platform takes.
pub struct PlatformTemplates {
    tera: tera::Tera,
    platform: &'static str,
    deal_url: Option<String>,
}

impl std::fmt::Debug for PlatformTemplates {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PlatformTemplates").field("platform", &self.platform).finish_non_exhaustive()
    }
}

impl PlatformTemplates {
    /// The bundled templates, each replaced by `prompts_dir/<platform>/<name>.tera` where present.
    pub fn load(settings: &Settings, platform: &'static str, bundled: &[(&str, &str)]) -> anyhow::Result<Self> {
        let dir = settings.prompts_dir.as_ref().map(|d| d.join(platform));
        let tera = crate::resources::templates(bundled, dir.as_deref(), platform)?;
        Ok(PlatformTemplates { tera, platform, deal_url: settings.alerts.deal_url.clone() })
    }

    /// For a platform's own filters.
    pub fn tera_mut(&mut self) -> &mut tera::Tera {
        &mut self.tera
    }

    /// A context with what every template may use (`nl`, a newline).
    pub fn context() -> tera::Context {
        let mut context = tera::Context::new();
        context.insert("nl", "\n");
        context
    }

    /// `template` rendered with `context`, which must be JSON.
    pub fn json(&self, template: &str, context: &tera::Context) -> anyhow::Result<serde_json::Value> {
        let rendered = self.tera.render(template, context)?;
        serde_json::from_str(&rendered).map_err(|e| {
            anyhow::anyhow!("prompts/{}/{template}.tera did not produce JSON ({e}):\n{rendered}", self.platform)
        })
    }

    /// `template` rendered as text, trimmed.
    pub fn text(&self, template: &str) -> anyhow::Result<String> {
        Ok(self.tera.render(template, &tera::Context::new())?.trim().to_owned())
    }

    /// The link to a deal in the CRM, when `[alerts] deal_url` is set.
    pub fn deal_link(&self, deal_id: &str) -> Option<String> {
        self.deal_url.as_ref().map(|u| u.replace("{deal_id}", &alerts::templates::urlencoding(deal_id)))
    }

    /// What an alert's template reads: its payload, kind, id, the subject and plain text its
    /// message was rendered with, whether a chart goes with it, and the deal's link.
    pub fn alert_context(
        &self,
        alert: &alerts::Alert,
        message: &alerts::templates::Message,
    ) -> anyhow::Result<tera::Context> {
        let mut context = match &alert.payload {
            serde_json::Value::Object(map) => tera::Context::from_value(serde_json::Value::Object(map.clone()))?,
            _ => tera::Context::new(),
        };
        context.extend(PlatformTemplates::context());
        context.insert("kind", alert.kind.as_str());
        context.insert("alert_id", &alert.alert_id);
        context.insert("subject", &message.subject);
        context.insert("text", &message.text);
        context.insert("chart_attached", &!message.attachments.is_empty());
        let deal_id = alert.payload.pointer("/deal/deal_id").and_then(serde_json::Value::as_str);
        context.insert("deal_url", &deal_id.and_then(|id| self.deal_link(id)));
        Ok(context)
    }
}

/// Draws the sample risk card, every sample reply and a sample of every alert kind (their names
/// given by `names`) with a platform's drawing functions, and checks each with `check` (the
/// platform's limits; or, with hostile names, that no markup from a name came alive):
/// run at start-up, so a template that breaks fails there.
pub fn check_samples(
    alerts: &alerts::templates::Templates,
    names: super::samples::Names<'_>,
    risk_card: impl Fn(&serde_json::Value) -> anyhow::Result<serde_json::Value>,
    reply: impl Fn(&Reply) -> anyhow::Result<serde_json::Value>,
    alert: impl Fn(&alerts::Alert, &alerts::templates::Message) -> anyhow::Result<serde_json::Value>,
    check: impl Fn(&serde_json::Value) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    use anyhow::Context as _;
    let card = risk_card(&super::samples::sample_card_named(names)).context("drawing the sample risk card")?;
    check(&card).context("the sample risk card")?;
    for sample in super::samples::samples_named(names) {
        let drawn = reply(&sample).with_context(|| format!("drawing a sample {sample:?}"))?;
        check(&drawn).with_context(|| format!("the sample {sample:?}"))?;
    }
    for kind in alerts::templates::RENDERED {
        let sample = alerts::templates::sample_named(kind, names);
        let drawn =
            alert(&sample, &alerts.render(&sample)?).with_context(|| format!("a sample {} alert", kind.as_str()))?;
        check(&drawn).with_context(|| format!("the sample {} alert", kind.as_str()))?;
    }
    Ok(())
}

/// How a reply is drawn where the platforms agree: the template (`pick_list.json`, `notice.json`,
/// …, each platform's own under `prompts/<platform>/`) and the values it reads, put in `context`.
/// `None` for what each platform draws its own way: a risk card, and an answer shown as a card.
/// Help is the platform's own text (`help`); answers and notices are marked up in `style`.
pub fn reply_template(
    reply: &Reply,
    style: Style,
    questions: &Questions,
    help: impl FnOnce() -> anyhow::Result<String>,
    context: &mut tera::Context,
) -> anyhow::Result<Option<&'static str>> {
    Ok(Some(match reply {
        Reply::RiskCard { .. } => return Ok(None),
        Reply::Answer { answered } if answered.card.is_some() => return Ok(None),
        Reply::Answer { answered } => {
            context.insert("text", &questions.text(answered, style)?);
            context.insert("understood", &answered.understood);
            "answer.json"
        }
        Reply::AskBack { question, text, options } => {
            context.insert("question", question);
            context.insert("text", text);
            context.insert("options", options);
            "ask_back.json"
        }
        Reply::PickList { query, candidates } => {
            context.insert("query", query);
            context.insert("candidates", candidates);
            "pick_list.json"
        }
        Reply::NotFound { query, suggestions } => {
            context.insert("query", query);
            context.insert("suggestions", suggestions);
            "not_found.json"
        }
        Reply::Pipeline { view } => {
            context.insert("view", view);
            "pipeline.json"
        }
        Reply::Help => {
            context.insert("text", &help()?);
            context.insert("hint", &Option::<String>::None);
            "notice.json"
        }
        other => {
            let (text, hint) = super::notice(other, style).unwrap_or_default();
            context.insert("text", &text);
            context.insert("hint", &hint);
            "notice.json"
        }
    }))
}

/// Who is speaking on a platform: the Dealwatch user of a platform id, found the same way
/// everywhere. First the config's map (Dealwatch user id → platform id), then the id stored with
/// the user for `platform`.
pub fn person<'a>(
    users: &'a [User],
    configured: &std::collections::BTreeMap<String, String>,
    platform: &str,
    platform_id: &str,
) -> Option<&'a User> {
    if platform_id.is_empty() {
        return None;
    }
    if let Some((id, _)) = configured.iter().find(|(_, p)| p.as_str() == platform_id) {
        return users.iter().find(|u| &u.user_id == id);
    }
    users.iter().find(|u| u.chat_id(platform) == Some(platform_id))
}

/// Stores `id` as `user`'s id on `platform` when it is not stored yet, so
/// that alerts can reach people linked by the config or found by email: the alert sender knows
/// people only by what the store holds. A failed write is logged; the person is still answered.
pub async fn remember_link(store: &dyn Store, tenant: &TenantId, user: &User, platform: &str, id: &str) -> User {
    let mut linked = user.clone();
    if linked.chat_id(platform) == Some(id) {
        return linked;
    }
    linked.set_chat_id(platform, id);
    if let Err(e) = store.upsert_user(tenant, &linked).await {
        tracing::warn!(error = %e, platform, "storing a user's chat id");
    }
    linked
}

/// A platform's organisation (a Teams tenant, a Discord server) → the Dealwatch tenant it is
/// connected to in the config; a value that is not a tenant id fails at start-up.
pub fn tenant_map(
    section: &str,
    map: &std::collections::BTreeMap<String, String>,
) -> anyhow::Result<std::collections::BTreeMap<String, TenantId>> {
    map.iter()
        .map(|(org, tenant)| {
            let id = TenantId::parse(tenant)
                .map_err(|e| anyhow::anyhow!("[{section}] {org} = {tenant:?}: not a tenant id: {e}"))?;
            Ok((org.clone(), id))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_platform_id_finds_its_user_through_the_config_then_the_store() {
        let mut maria = crate::chat::samples::sample_user();
        maria.set_chat_id("teams", "aad-maria");
        let mut omar = crate::chat::samples::sample_user();
        omar.user_id = "omar".into();
        omar.chat_ids.clear();
        let users = vec![maria, omar];
        let configured: std::collections::BTreeMap<String, String> =
            [("omar".to_owned(), "aad-omar".to_owned())].into_iter().collect();
        assert_eq!(person(&users, &configured, "teams", "aad-omar").map(|u| u.user_id.as_str()), Some("omar"));
        assert_eq!(person(&users, &configured, "teams", "aad-maria").map(|u| u.user_id.as_str()), Some("maria"));
        assert_eq!(person(&users, &configured, "teams", "aad-nobody"), None);
        assert_eq!(person(&users, &configured, "teams", ""), None);
    }

    #[test]
    fn an_organisation_mapped_to_a_bad_tenant_id_is_refused() {
        let ok: std::collections::BTreeMap<String, String> = [("g1".to_owned(), "acme".to_owned())].into();
        assert_eq!(tenant_map("discord", &ok).expect("valid")["g1"].as_str(), "acme");
        let bad: std::collections::BTreeMap<String, String> = [("g1".to_owned(), "not a tenant!".to_owned())].into();
        let e = tenant_map("discord", &bad).expect_err("invalid").to_string();
        assert!(e.contains("[discord] g1"), "{e}");
    }
}
