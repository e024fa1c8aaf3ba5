//! A user's alert settings, changed from the REST API or a chat form: validated, merged into
//! what is stored, saved and logged.

use chrono::{DateTime, Utc};

use crate::Services;
use crate::alerts::settings::AlertSettings;
use crate::audit::change_log;
use crate::error::{ServiceError, ServiceResult};

/// Validates `update` and merges it into `user`'s stored alert settings (sections not sent keep
/// their stored values), stores them and logs the change: the REST API and the chat settings
/// (modal, mute, unmute) change settings through here. Returns the settings now in force.
pub async fn update_settings(
    state: &Services,
    tenant: &store::TenantId,
    user: &str,
    update: AlertSettings,
) -> ServiceResult<(AlertSettings, DateTime<Utc>)> {
    update.validate().map_err(ServiceError::setting)?;
    let mut settings = AlertSettings::from_stored(state.store.alert_settings(tenant, user).await?);
    settings.critical_deals = update.critical_deals.or(settings.critical_deals);
    settings.daily_digest = update.daily_digest.or(settings.daily_digest);
    settings.quiet_hours = update.quiet_hours.or(settings.quiet_hours);
    settings.muted = update.muted.or(settings.muted);
    let now = state.now();
    let value = serde_json::to_value(&settings)?;
    state.store.save_alert_settings(tenant, user, &value, now).await?;
    change_log(state, tenant, user, "settings.update", Some(user), Some(value)).await?;
    Ok((settings, now))
}
