//! RS256 keys from the identity provider: a JWKS document (or the OpenID metadata that names
//! it), fetched lazily, cached for the configured time, refetched for an unknown `kid` at most
//! once a minute, and kept when a fetch fails.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::DecodingKey;
use serde::Deserialize;
use serde_json::Value;
use tokio::sync::{Mutex, RwLock};

use super::{AuthError, seconds};

/// At most one JWKS fetch attempt per this many seconds, whatever the tokens say.
const MIN_SECONDS_BETWEEN_FETCHES: i64 = 60;
/// RSA moduli below 2048 bits are factorable in practice; such JWKS keys are ignored.
const MIN_RSA_MODULUS_BYTES: usize = 256;

/// Where a key set comes from: a JWKS URL, or an OpenID Connect metadata document whose
/// `jwks_uri` names it (the Bot Framework's way).
#[derive(Debug, Clone)]
pub enum KeySource {
    Jwks(String),
    OpenId(String),
}

/// RS256 keys from a JWKS endpoint, fetched lazily and cached.
pub struct JwksCache {
    pub(super) source: KeySource,
    http: reqwest::Client,
    ttl: i64,
    keys: RwLock<KeySet>,
    /// Held while fetching, so that concurrent requests needing keys wait for one fetch instead
    /// of each starting their own. Verifications with cached keys never take it.
    refresh: Mutex<()>,
}

#[derive(Default)]
struct KeySet {
    keys: Vec<JwksKey>,
    /// When the keys above were fetched (the injected clock).
    fetched_at: Option<i64>,
    /// When a fetch was last tried, successful or not: the throttle.
    last_attempt: Option<i64>,
    /// Why the last fetch failed, for [`AuthError::KeysUnavailable`].
    last_error: Option<String>,
}

#[derive(Clone)]
pub struct JwksKey {
    kid: Option<String>,
    pub key: DecodingKey,
    /// The channels a Bot Framework key is endorsed for (`msteams`); empty elsewhere.
    pub endorsements: Vec<String>,
}

impl KeySet {
    /// The key for `kid`; a token without a kid may use the only key there is.
    fn find(&self, kid: Option<&str>) -> Option<JwksKey> {
        match kid {
            Some(kid) => self.keys.iter().find(|key| key.kid.as_deref() == Some(kid)).cloned(),
            None => match self.keys.as_slice() {
                [only] => Some(only.clone()),
                _ => None,
            },
        }
    }

    fn is_fresh(&self, now: i64, ttl: i64) -> bool {
        self.fetched_at.is_some_and(|at| now >= at && now - at < ttl)
    }

    fn may_fetch(&self, now: i64) -> bool {
        // A clock that went backwards (now < last attempt) does not block fetching forever.
        self.last_attempt.is_none_or(|at| now < at || now - at >= MIN_SECONDS_BETWEEN_FETCHES)
    }

    /// The answer from what is cached, fresh or stale, when no (further) fetch will happen.
    fn answer(&self, kid: Option<&str>) -> Result<JwksKey, AuthError> {
        if self.keys.is_empty() {
            let reason = self.last_error.clone().unwrap_or_else(|| "no keys have been fetched".to_owned());
            return Err(AuthError::KeysUnavailable(reason));
        }
        self.find(kid).ok_or(AuthError::UnknownKey)
    }
}

impl JwksCache {
    pub fn new(source: KeySource, http: reqwest::Client, ttl_seconds: u64) -> JwksCache {
        JwksCache {
            source,
            http,
            ttl: seconds(ttl_seconds),
            keys: RwLock::new(KeySet::default()),
            refresh: Mutex::new(()),
        }
    }

    pub async fn key(&self, kid: Option<&str>, now: i64) -> Result<JwksKey, AuthError> {
        // The common case: fresh keys, known kid, a shared read lock and nothing else.
        {
            let set = self.keys.read().await;
            if set.is_fresh(now, self.ttl)
                && let Some(key) = set.find(kid)
            {
                return Ok(key);
            }
            if !set.may_fetch(now) {
                return set.answer(kid);
            }
        }

        let _refresh = self.refresh.lock().await;
        // Another request may have fetched while this one waited for the lock.
        {
            let set = self.keys.read().await;
            if set.is_fresh(now, self.ttl)
                && let Some(key) = set.find(kid)
            {
                return Ok(key);
            }
            if !set.may_fetch(now) {
                return set.answer(kid);
            }
        }

        // The fetch runs without the key-set lock, so requests with cached keys are not held up.
        let fetched = self.fetch().await;
        let mut set = self.keys.write().await;
        set.last_attempt = Some(now);
        match fetched {
            Ok(keys) => {
                tracing::info!(keys = keys.len(), "fetched JWKS signing keys");
                set.keys = keys;
                set.fetched_at = Some(now);
                set.last_error = None;
            }
            Err(reason) => {
                tracing::warn!(%reason, cached_keys = set.keys.len(), "JWKS fetch failed; keeping any cached keys");
                set.last_error = Some(reason);
            }
        }
        set.answer(kid)
    }

    /// Fetches and parses the key set (after the metadata naming it, for an OpenID source).
    /// The error is a short reason without the URL, since it may end up in a response.
    async fn fetch(&self) -> Result<Vec<JwksKey>, String> {
        let url = match &self.source {
            KeySource::Jwks(url) => url.clone(),
            KeySource::OpenId(metadata) => {
                let response = self.http.get(metadata).send().await.map_err(|error| {
                    format!("the OpenID metadata request failed: {}", error_chain(&error.without_url()))
                })?;
                let status = response.status();
                if !status.is_success() {
                    return Err(format!("the OpenID metadata endpoint answered {status}"));
                }
                let document: Value = response.json().await.map_err(|error| {
                    format!("the OpenID metadata is unreadable: {}", error_chain(&error.without_url()))
                })?;
                let uri = document["jwks_uri"].as_str().ok_or("the OpenID metadata names no jwks_uri")?;
                let parsed = reqwest::Url::parse(uri).map_err(|_| "the OpenID metadata's jwks_uri is not a URL")?;
                if !matches!(parsed.scheme(), "http" | "https") {
                    return Err("the OpenID metadata's jwks_uri is not an http(s) URL".to_owned());
                }
                uri.to_owned()
            }
        };
        let response = self
            .http
            .get(&url)
            .send()
            .await
            .map_err(|error| format!("the JWKS request failed: {}", error_chain(&error.without_url())))?;
        let status = response.status();
        if !status.is_success() {
            return Err(format!("the JWKS endpoint answered {status}"));
        }
        let document: JwksDocument = response
            .json()
            .await
            .map_err(|error| format!("the JWKS document is unreadable: {}", error_chain(&error.without_url())))?;
        let keys: Vec<JwksKey> = document.keys.iter().filter_map(JwksEntry::rsa_key).collect();
        if keys.is_empty() {
            // Treated as a failed fetch so that cached keys stay in use: an empty key set is far
            // more likely a provider mishap than a deliberate revocation of every key.
            return Err("the JWKS document holds no usable RS256 keys".to_owned());
        }
        Ok(keys)
    }
}

/// A JWKS document, read leniently: entries this service cannot use (EC keys, encryption keys,
/// unknown types) are skipped rather than failing the whole set.
#[derive(Deserialize)]
struct JwksDocument {
    keys: Vec<JwksEntry>,
}

#[derive(Deserialize)]
struct JwksEntry {
    kty: Option<String>,
    kid: Option<String>,
    alg: Option<String>,
    #[serde(rename = "use")]
    usage: Option<String>,
    n: Option<String>,
    e: Option<String>,
    #[serde(default)]
    endorsements: Vec<String>,
}

impl JwksEntry {
    fn rsa_key(&self) -> Option<JwksKey> {
        let usable = self.kty.as_deref() == Some("RSA")
            && self.usage.as_deref().is_none_or(|usage| usage == "sig")
            && self.alg.as_deref().is_none_or(|alg| alg == "RS256");
        if !usable {
            return None;
        }
        let n = URL_SAFE_NO_PAD.decode(self.n.as_deref()?).ok()?;
        let e = URL_SAFE_NO_PAD.decode(self.e.as_deref()?).ok()?;
        // Leading zero bytes do not count towards the modulus size.
        let modulus_bytes = n.iter().skip_while(|byte| **byte == 0).count();
        if modulus_bytes < MIN_RSA_MODULUS_BYTES {
            tracing::warn!(kid = ?self.kid, "ignoring a JWKS RSA key shorter than 2048 bits");
            return None;
        }
        Some(JwksKey {
            kid: self.kid.clone(),
            key: DecodingKey::from_rsa_raw_components(&n, &e),
            endorsements: self.endorsements.clone(),
        })
    }
}

/// An error and its sources, joined with ": " (reqwest's own message hides the cause).
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
