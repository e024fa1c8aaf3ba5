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

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use chrono::TimeZone;
    use store::TenantId;

    use super::*;
    use crate::clock::FixedClock;
    use crate::crm::NoCrm;

    /// The services on a new SQLite store, stopped at `at`.
    async fn services(dir: &tempfile::TempDir, at: DateTime<Utc>) -> (Services, TenantId) {
        let url = format!("sqlite://{}", dir.path().join("t.db").display());
        let store = store::open(&url, None).await.expect("open the store");
        let tenant = TenantId::parse("acme").expect("tenant id");
        store.ensure_tenant(&tenant, "Acme").await.expect("tenant");
        let texts = crate::resources::load_texts(None).expect("the bundled texts");
        // The question reader caches its embeddings under the data directory: the test's own.
        let settings = settings::Settings { data_dir: dir.path().to_path_buf(), ..Default::default() };
        let services =
            Services::with_clock(settings, store, texts, Arc::new(NoCrm), Arc::new(FixedClock(at))).expect("services");
        (services, tenant)
    }

    #[tokio::test]
    async fn a_settings_change_takes_its_time_from_the_injected_clock_and_is_logged_then() {
        let dir = tempfile::tempdir().expect("temp dir");
        let at = Utc.with_ymd_and_hms(2026, 3, 4, 5, 6, 7).single().expect("a time");
        let (services, tenant) = services(&dir, at).await;
        let update =
            AlertSettings { muted: Some(vec![engine::alerts::AlertKind::SegmentDecline]), ..Default::default() };
        let (now_in_force, effective) = update_settings(&services, &tenant, "rep_1", update).await.expect("saved");
        assert_eq!(effective, at);
        assert_eq!(now_in_force.muted, Some(vec![engine::alerts::AlertKind::SegmentDecline]));
        let log = services.store.audit_log(&tenant, 10).await.expect("audit log");
        let entry = log.iter().find(|e| e.action == "settings.update").expect("the change is logged");
        assert_eq!((entry.at, entry.actor.as_str()), (at, "rep_1"));
    }

    #[tokio::test]
    async fn a_refused_setting_is_an_invalid_value_naming_its_field_and_nothing_is_stored() {
        let dir = tempfile::tempdir().expect("temp dir");
        let at = Utc.with_ymd_and_hms(2026, 3, 4, 5, 6, 7).single().expect("a time");
        let (services, tenant) = services(&dir, at).await;
        let update: AlertSettings =
            serde_json::from_value(serde_json::json!({ "critical_deals": { "enabled": true, "threshold": 150 } }))
                .expect("an update");
        match update_settings(&services, &tenant, "rep_1", update).await {
            Err(ServiceError::Invalid { field, .. }) => assert!(field.starts_with("critical_deals"), "{field}"),
            other => panic!("expected an invalid value, got {:?}", other.map(|(s, _)| s)),
        }
        assert!(services.store.alert_settings(&tenant, "rep_1").await.expect("read").is_none());
    }
}
