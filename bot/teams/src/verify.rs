//! Who may post activities: the Bot Connector, proven by the JWT it sends with each one.
//!
//! Checked as the Bot Framework documents it, before the activity is read: an RS256 signature by a
//! key the Bot Framework's OpenID metadata publishes (fetched and cached; an unknown `kid`
//! fetches again, at most once a minute), the issuer `https://api.botframework.com`, the
//! audience our app id, the validity period with five minutes' leeway. Once the activity is
//! parsed, its `serviceUrl` must be the one the token names (`serviceurl`), and the signing key
//! must be endorsed for the activity's channel: a token for one conversation service cannot be
//! replayed to make us talk to another. The clock is passed in, so the tests are exact.

use serde_json::{Map, Value};

use service::auth::{AuthError, JwksCache, KeySource, bearer, time_claim, verified_rs256};

/// The clock skew the Bot Framework allows on a token's times.
const LEEWAY: i64 = 5 * 60;

/// Verifies the Bot Connector's tokens for one app.
pub struct Verifier {
    keys: JwksCache,
    issuer: String,
    app_id: String,
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verifier").field("issuer", &self.issuer).field("app_id", &self.app_id).finish()
    }
}

/// A token that passed: the service URL it was issued for, and what its key is endorsed for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    pub service_url: String,
    pub endorsements: Vec<String>,
}

impl Verified {
    /// Whether the activity parsed after the token may be acted on: it names the token's service
    /// URL, and the key is endorsed for its channel (a key endorsed for none is taken as the
    /// metadata's only key).
    pub fn admits(&self, service_url: &str, channel_id: &str) -> Result<(), AuthError> {
        let same = |a: &str, b: &str| a.trim_end_matches('/').eq_ignore_ascii_case(b.trim_end_matches('/'));
        if !same(&self.service_url, service_url) {
            return Err(AuthError::BadClaims("the activity's serviceUrl is not the token's serviceurl".into()));
        }
        if !self.endorsements.is_empty() && !self.endorsements.iter().any(|e| e == channel_id) {
            return Err(AuthError::BadClaims(format!("the signing key is not endorsed for channel {channel_id:?}")));
        }
        Ok(())
    }
}

impl Verifier {
    pub fn new(settings: &settings::Teams, app_id: &str) -> anyhow::Result<Verifier> {
        let metadata = &settings.openid_metadata_url;
        let parsed = url::Url::parse(metadata)
            .map_err(|_| anyhow::anyhow!("[teams] openid_metadata_url {metadata:?} is not a URL"))?;
        anyhow::ensure!(
            matches!(parsed.scheme(), "http" | "https"),
            "[teams] openid_metadata_url must be an http(s) URL"
        );
        service::auth::install_crypto_provider();
        let http = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(settings.timeout_seconds.max(1)))
            .connect_timeout(std::time::Duration::from_secs(5))
            .build()?;
        Ok(Verifier {
            keys: JwksCache::new(KeySource::OpenId(metadata.clone()), http, settings.keys_cache_seconds),
            issuer: settings.issuer.clone(),
            app_id: app_id.to_owned(),
        })
    }

    /// Verifies the `Authorization` header of an activity at `now` (unix seconds).
    pub async fn verify(&self, authorization: Option<&str>, now: i64) -> Result<Verified, AuthError> {
        let (claims, endorsements) = verified_rs256(&self.keys, bearer(authorization)?, now).await?;
        self.check(&claims, now)?;
        let service_url = claims
            .get("serviceurl")
            .or_else(|| claims.get("serviceUrl"))
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .ok_or_else(|| AuthError::BadClaims("serviceurl is missing".into()))?;
        Ok(Verified { service_url: service_url.to_owned(), endorsements })
    }

    /// The times, the issuer and the audience of a signed token.
    fn check(&self, claims: &Map<String, Value>, now: i64) -> Result<(), AuthError> {
        let exp = time_claim(claims, "exp")?.ok_or_else(|| AuthError::BadClaims("exp is missing".into()))?;
        if now >= exp.saturating_add(LEEWAY) {
            return Err(AuthError::Expired);
        }
        if let Some(nbf) = time_claim(claims, "nbf")?
            && now.saturating_add(LEEWAY) < nbf
        {
            return Err(AuthError::BadClaims("the token is not valid yet (nbf)".into()));
        }
        if claims.get("iss").and_then(Value::as_str) != Some(self.issuer.as_str()) {
            return Err(AuthError::WrongIssuer);
        }
        let audience_ok = match claims.get("aud") {
            Some(Value::String(aud)) => *aud == self.app_id,
            Some(Value::Array(list)) => list.iter().any(|a| a.as_str() == Some(self.app_id.as_str())),
            _ => false,
        };
        if !audience_ok {
            return Err(AuthError::WrongAudience);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_activity_must_name_the_service_url_its_token_was_issued_for() {
        let v = Verified {
            service_url: "https://smba.trafficmanager.net/emea/".into(),
            endorsements: vec!["msteams".into()],
        };
        assert_eq!(v.admits("https://smba.trafficmanager.net/emea", "msteams"), Ok(()));
        assert!(v.admits("https://smba.trafficmanager.net/amer/", "msteams").is_err());
        assert!(v.admits("https://smba.trafficmanager.net/emea/", "webchat").is_err(), "not endorsed");
        let any = Verified { endorsements: vec![], ..v };
        assert_eq!(any.admits("https://smba.trafficmanager.net/emea/", "webchat"), Ok(()));
    }
}
