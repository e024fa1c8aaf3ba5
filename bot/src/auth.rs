//! REST API authentication: JWT bearer tokens, verified before a request is parsed.
//!
//! The policy, and why:
//!
//! - **Two algorithms, each with its own keys.** HS256 tokens are checked against the configured
//!   shared secrets, RS256 tokens against RSA keys fetched from the identity provider's JWKS
//!   endpoint; every other `alg` (`none`, HS384, PS256, …) is refused. The algorithm is read from
//!   the token, so an allow-list with a fixed key set per algorithm is what stops the classic
//!   attacks: `alg: none`, and "algorithm confusion", where an attacker signs an HS256 token with
//!   the server's *public* RSA key as the HMAC secret. An HMAC secret never verifies an RS256
//!   token and a JWKS key never verifies an HS256 one.
//! - **Several HS256 secrets.** A token verifies if any of them signed it, so a secret can be
//!   rotated without a flag day: add the new one, move minting to it, remove the old one once
//!   its tokens have expired. Secrets shorter than 32 bytes are refused at start-up (HS256 is
//!   only as strong as its key).
//! - **The clock is injected.** `verify` takes `now` (unix seconds) and checks `exp` and `nbf`
//!   itself, with the configured leeway; jsonwebtoken's own clock is never consulted, so tests
//!   are exact to the second. The same `now` drives the JWKS cache.
//! - **JWKS keys are fetched lazily and cached.** The first RS256 token fetches the key set; it is
//!   trusted for `jwks_cache_seconds`. A token naming an unknown `kid` may mean the provider has
//!   rotated its keys, so it triggers a refetch, but at most one fetch attempt per minute: a flood
//!   of forged `kid`s must not turn this service into a load generator against the provider. When
//!   a fetch fails the keys already cached stay in use; only with none at all does verification
//!   fail with [`AuthError::KeysUnavailable`].
//! - **Our own tokens say who they are for, and not for long.** HS256 tokens (minted by
//!   `dealwatch token` and the demo) carry `iss` [`HS256_ISSUER`] and `aud` [`HS256_AUDIENCE`],
//!   and must; no token of either kind may be valid for more than [`MAX_TOKEN_HOURS`] (an HS256
//!   token must say when it was issued). What a token may do is further limited by the caller's
//!   role in the users table when it is used, and tokens a user was issued before a revocation
//!   are refused (the server checks both; see `server::authenticate`).
//! - **Errors name the failure, never the evidence.** No [`AuthError`] message contains the token,
//!   a part of it, or a secret, so errors can be logged and returned to clients as they are.

use std::fmt;
use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use tokio::sync::{Mutex, RwLock};

/// HS256 keys shorter than the hash output (32 bytes) weaken the MAC; RFC 7518 §3.2 requires at least this.
const MIN_HS256_SECRET_BYTES: usize = 32;
/// At most one JWKS fetch attempt per this many seconds, whatever the tokens say.
const MIN_SECONDS_BETWEEN_FETCHES: i64 = 60;
/// Real tokens are well under a kilobyte; refusing huge ones bounds the work an anonymous caller can cause.
const MAX_TOKEN_BYTES: usize = 16 * 1024;
/// RSA moduli below 2048 bits are factorable in practice; such JWKS keys are ignored.
const MIN_RSA_MODULUS_BYTES: usize = 256;
/// The `iss` of the HS256 tokens Dealwatch mints.
pub const HS256_ISSUER: &str = "dealwatch";
/// The `aud` of the HS256 tokens Dealwatch mints: its REST API.
pub const HS256_AUDIENCE: &str = "dealwatch-api";
/// The longest a token may be valid: a week.
pub const MAX_TOKEN_HOURS: i64 = 7 * 24;

/// Installs rustls's ring provider as the process default, once; later calls do nothing.
/// reqwest is built without a default TLS provider, so this must run before any
/// `reqwest::Client` is built (the one given to [`Authenticator::new`] included).
pub use crate::alerts::channels::install_crypto_provider;

pub use store::Role;

/// The verified claims of a token: who is calling, for which tenant, with which role.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Claims {
    pub sub: String,
    pub tenant_id: String,
    pub role: Role,
    /// Expiry, unix seconds.
    pub exp: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub iat: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub iss: Option<String>,
    /// The audience the token was accepted for. A token may list several audiences; when an
    /// audience is configured this is that one, otherwise the token's only audience (or `None`
    /// when it lists none or several).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub aud: Option<String>,
}

/// How REST API tokens are verified. Read once at start-up.
#[derive(Debug, Clone)]
pub struct AuthConfig {
    /// HS256 secrets (their UTF-8 bytes are the key). Several are allowed for rotation: a token
    /// verifies if any of them signed it.
    pub hs256_secrets: Vec<SecretString>,
    /// Where RS256 keys come from (a JWKS document).
    pub jwks_url: Option<String>,
    /// When set, tokens must carry exactly this `iss`.
    pub issuer: Option<String>,
    /// When set, tokens must list this `aud`.
    pub audience: Option<String>,
    /// Clock skew tolerated on `exp` and `nbf`.
    pub leeway_seconds: u64,
    /// How long fetched JWKS keys are trusted before they are fetched again.
    pub jwks_cache_seconds: u64,
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            hs256_secrets: Vec::new(),
            jwks_url: None,
            issuer: None,
            audience: None,
            leeway_seconds: 60,
            jwks_cache_seconds: 3600,
        }
    }
}

/// An [`AuthConfig`] that cannot work; reported at start-up.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("REST API authentication needs at least one HS256 secret or a JWKS URL")]
    NoKeys,
    #[error("HS256 secret number {position} is {len} bytes long; at least 32 are required")]
    SecretTooShort { position: usize, len: usize },
    #[error("the JWKS URL is not an absolute http or https URL")]
    BadJwksUrl,
}

/// Why a request's token was refused. Messages name the failure only: never the token or a secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("no bearer token was given")]
    Missing,
    #[error("the bearer token is not a well-formed JWT")]
    Malformed,
    #[error("the token has expired")]
    Expired,
    /// Also the answer for algorithms other than HS256 and RS256, and for an algorithm this
    /// service has no keys for: in each case no key we trust signed the token.
    #[error("the token is not signed by a trusted key with an accepted algorithm")]
    BadSignature,
    #[error("the token names a signing key that the identity provider does not publish")]
    UnknownKey,
    #[error("the token was issued by an unexpected issuer")]
    WrongIssuer,
    #[error("the token is not meant for this service (audience)")]
    WrongAudience,
    #[error("the token's claims are not valid: {0}")]
    BadClaims(String),
    /// A server-side failure (the identity provider is unreachable), not the caller's fault.
    #[error("signing keys are unavailable: {0}")]
    KeysUnavailable(String),
}

/// Verifies bearer tokens. Cheap to clone: clones share the JWKS cache.
#[derive(Clone)]
pub struct Authenticator {
    inner: Arc<Inner>,
}

struct Inner {
    hs256_keys: Vec<DecodingKey>,
    jwks: Option<JwksCache>,
    issuer: Option<String>,
    audience: Option<String>,
    leeway: i64,
}

impl fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Counts only: the keys themselves stay out of logs.
        f.debug_struct("Authenticator")
            .field("hs256_secrets", &self.inner.hs256_keys.len())
            .field("jwks_url", &self.inner.jwks.as_ref().map(|jwks| &jwks.source))
            .field("issuer", &self.inner.issuer)
            .field("audience", &self.inner.audience)
            .field("leeway_seconds", &self.inner.leeway)
            .finish()
    }
}

impl Authenticator {
    /// Checks the configuration and builds the verifier. `http` is used for JWKS fetches only;
    /// give it timeouts, since a fetch holds up the RS256 requests that wait for it.
    pub fn new(config: AuthConfig, http: reqwest::Client) -> Result<Self, ConfigError> {
        if config.hs256_secrets.is_empty() && config.jwks_url.is_none() {
            return Err(ConfigError::NoKeys);
        }
        let mut hs256_keys = Vec::with_capacity(config.hs256_secrets.len());
        for (index, secret) in config.hs256_secrets.iter().enumerate() {
            let bytes = secret.expose_secret().as_bytes();
            if bytes.len() < MIN_HS256_SECRET_BYTES {
                return Err(ConfigError::SecretTooShort { position: index + 1, len: bytes.len() });
            }
            hs256_keys.push(DecodingKey::from_secret(bytes));
        }
        let jwks = match config.jwks_url {
            Some(url) => {
                let parsed = reqwest::Url::parse(&url).map_err(|_| ConfigError::BadJwksUrl)?;
                if !matches!(parsed.scheme(), "http" | "https") {
                    return Err(ConfigError::BadJwksUrl);
                }
                Some(JwksCache::new(KeySource::Jwks(url), http, config.jwks_cache_seconds))
            }
            None => None,
        };
        let inner = Inner {
            hs256_keys,
            jwks,
            issuer: config.issuer,
            audience: config.audience,
            leeway: seconds(config.leeway_seconds),
        };
        Ok(Authenticator { inner: Arc::new(inner) })
    }

    /// Verifies `token` at time `now` (unix seconds) and returns its claims.
    pub async fn verify(&self, token: &str, now: i64) -> Result<Claims, AuthError> {
        let (parts, alg, kid) = Parts::read(token)?;
        // The allow-list: each accepted algorithm is checked with its own keys only.
        match alg.as_str() {
            "HS256" => self.check_hs256(&parts)?,
            "RS256" => self.check_rs256(&parts, kid.as_deref(), now).await?,
            _ => return Err(AuthError::BadSignature),
        }
        let payload = decode_object(parts.payload)?;
        self.check_claims(&payload, &alg, now)
    }

    /// Verifies the token in an `Authorization` header value: `Bearer <token>`, with the scheme
    /// in any case. No header (or an empty one) is [`AuthError::Missing`]; any other scheme, or
    /// a bearer header without a token, is [`AuthError::Malformed`].
    pub async fn verify_header(&self, authorization: Option<&str>, now: i64) -> Result<Claims, AuthError> {
        self.verify(bearer(authorization)?, now).await
    }

    fn check_hs256(&self, parts: &Parts<'_>) -> Result<(), AuthError> {
        for key in &self.inner.hs256_keys {
            if signature_matches(parts, key, Algorithm::HS256)? {
                return Ok(());
            }
        }
        Err(AuthError::BadSignature)
    }

    async fn check_rs256(&self, parts: &Parts<'_>, kid: Option<&str>, now: i64) -> Result<(), AuthError> {
        let Some(jwks) = &self.inner.jwks else {
            return Err(AuthError::BadSignature);
        };
        let key = jwks.key(kid, now).await?;
        if signature_matches(parts, &key.key, Algorithm::RS256)? { Ok(()) } else { Err(AuthError::BadSignature) }
    }

    /// Checks the payload of a token whose signature is valid, in order: times, issuer,
    /// audience, then the claims Dealwatch needs.
    fn check_claims(&self, payload: &Map<String, Value>, alg: &str, now: i64) -> Result<Claims, AuthError> {
        let inner = &self.inner;
        let ours = alg == "HS256";
        let exp = number(payload, "exp")?.ok_or_else(|| bad_claims("exp is missing"))?;
        // RFC 7519: the token is valid only *before* exp; the leeway extends that for clock skew.
        if now >= exp.saturating_add(inner.leeway) {
            return Err(AuthError::Expired);
        }
        if let Some(nbf) = number(payload, "nbf")?
            && now.saturating_add(inner.leeway) < nbf
        {
            return Err(bad_claims("the token is not valid yet (nbf)"));
        }
        let iat = number(payload, "iat")?;
        let max = MAX_TOKEN_HOURS * 3600;
        match iat {
            Some(iat) if iat > now.saturating_add(inner.leeway) => {
                return Err(bad_claims("the token was issued in the future (iat)"));
            }
            Some(iat) if exp.saturating_sub(iat) > max => {
                return Err(bad_claims("the token is valid for longer than a week"));
            }
            None if ours => return Err(bad_claims("iat is missing")),
            _ if exp.saturating_sub(now) > max => return Err(bad_claims("the token is valid for longer than a week")),
            _ => {}
        }

        let iss = match payload.get("iss") {
            None | Some(Value::Null) => None,
            Some(Value::String(iss)) => Some(iss.clone()),
            Some(_) => return Err(bad_claims("iss must be a string")),
        };
        // Our own tokens name us; an identity provider's, the configured issuer.
        let expected_issuer = if ours { Some(HS256_ISSUER) } else { inner.issuer.as_deref() };
        if let Some(expected) = expected_issuer
            && iss.as_deref() != Some(expected)
        {
            return Err(AuthError::WrongIssuer);
        }

        // `aud` is a string or an array of strings (RFC 7519 §4.1.3).
        let audiences: Vec<&str> = match payload.get("aud") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::String(aud)) => vec![aud.as_str()],
            Some(Value::Array(items)) => items
                .iter()
                .map(Value::as_str)
                .collect::<Option<_>>()
                .ok_or_else(|| bad_claims("aud must hold strings"))?,
            Some(_) => return Err(bad_claims("aud must be a string or an array of strings")),
        };
        let expected_audience = if ours { Some(HS256_AUDIENCE) } else { inner.audience.as_deref() };
        let aud = match expected_audience {
            Some(expected) if audiences.contains(&expected) => Some(expected.to_owned()),
            Some(_) => return Err(AuthError::WrongAudience),
            None => match audiences.as_slice() {
                [only] => Some((*only).to_owned()),
                _ => None,
            },
        };

        let sub = required_text(payload, "sub")?;
        let tenant_id = required_text(payload, "tenant_id")?;
        let role = match payload.get("role") {
            Some(Value::String(role)) => {
                Role::parse(role).ok_or_else(|| bad_claims("role must be rep, manager or admin"))?
            }
            None | Some(Value::Null) => return Err(bad_claims("role is missing")),
            Some(_) => return Err(bad_claims("role must be a string")),
        };
        Ok(Claims { sub, tenant_id, role, exp, iat, iss, aud })
    }
}

/// Mints an HS256 token (for `dealwatch token`, `dealwatch demo --serve` and tests), stamped
/// with our issuer and audience (whatever `claims` say of them). The secret should be one the
/// [`Authenticator`] accepts: at least 32 bytes.
pub fn mint_hs256(secret: &SecretString, claims: &Claims) -> Result<String, AuthError> {
    let key = EncodingKey::from_secret(secret.expose_secret().as_bytes());
    let claims = Claims { iss: Some(HS256_ISSUER.to_owned()), aud: Some(HS256_AUDIENCE.to_owned()), ..claims.clone() };
    // Serialising `Claims` and HMAC signing cannot fail in practice; the error text is not
    // passed on in case it ever quoted its input.
    jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &key)
        .map_err(|_| AuthError::BadClaims("the claims could not be signed".to_owned()))
}

/// Checks that `token` is signed RS256 by a key `jwks` publishes, and returns its payload with
/// the key's endorsements (the channels the Bot Framework endorses a key for). The caller checks
/// the claims it needs. Every other algorithm is refused, as in [`Authenticator::verify`].
pub(crate) async fn verified_rs256(
    jwks: &JwksCache,
    token: &str,
    now: i64,
) -> Result<(Map<String, Value>, Vec<String>), AuthError> {
    let (parts, alg, kid) = Parts::read(token)?;
    if alg != "RS256" {
        return Err(AuthError::BadSignature);
    }
    let key = jwks.key(kid.as_deref(), now).await?;
    if !signature_matches(&parts, &key.key, Algorithm::RS256)? {
        return Err(AuthError::BadSignature);
    }
    Ok((decode_object(parts.payload)?, key.endorsements))
}

/// The token in an `Authorization` header value: `Bearer <token>`, with the scheme in any case.
/// No header (or an empty one) is [`AuthError::Missing`]; any other scheme, or a bearer header
/// without a token, is [`AuthError::Malformed`].
pub(crate) fn bearer(authorization: Option<&str>) -> Result<&str, AuthError> {
    let value = authorization.map(str::trim).unwrap_or_default();
    if value.is_empty() {
        return Err(AuthError::Missing);
    }
    let (scheme, token) = value.split_once(char::is_whitespace).ok_or(AuthError::Malformed)?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(AuthError::Malformed);
    }
    let token = token.trim();
    if token.is_empty() {
        return Err(AuthError::Malformed);
    }
    Ok(token)
}

/// A NumericDate claim of a verified payload (`exp`, `nbf`), whole seconds.
pub(crate) fn time_claim(payload: &Map<String, Value>, name: &str) -> Result<Option<i64>, AuthError> {
    number(payload, name)
}

/// The three base64url parts of a compact JWS, and the signed message (`header.payload`).
struct Parts<'a> {
    header: &'a str,
    payload: &'a str,
    signature: &'a str,
    message: &'a str,
}

impl<'a> Parts<'a> {
    /// A token's parts, its `alg` and its `kid`, refusing what no key should be asked about: an
    /// empty or oversized token, a header we cannot read or with `crit` extensions (RFC 7515
    /// §4.1.11; we understand none), a signature that is not even base64url (which keeps such
    /// tokens from reaching the JWKS endpoint through an unknown kid).
    fn read(token: &'a str) -> Result<(Self, String, Option<String>), AuthError> {
        if token.is_empty() {
            return Err(AuthError::Missing);
        }
        if token.len() > MAX_TOKEN_BYTES {
            return Err(AuthError::Malformed);
        }
        let parts = Parts::split(token)?;
        let header = decode_object(parts.header)?;
        if header.contains_key("crit") {
            return Err(AuthError::Malformed);
        }
        let alg = header.get("alg").and_then(Value::as_str).ok_or(AuthError::Malformed)?.to_owned();
        let kid = match header.get("kid") {
            None | Some(Value::Null) => None,
            Some(Value::String(kid)) => Some(kid.clone()),
            Some(_) => return Err(AuthError::Malformed),
        };
        URL_SAFE_NO_PAD.decode(parts.signature).map_err(|_| AuthError::Malformed)?;
        Ok((parts, alg, kid))
    }

    fn split(token: &'a str) -> Result<Self, AuthError> {
        let (message, signature) = token.rsplit_once('.').ok_or(AuthError::Malformed)?;
        let (header, payload) = message.split_once('.').ok_or(AuthError::Malformed)?;
        if header.is_empty() || payload.is_empty() || payload.contains('.') {
            return Err(AuthError::Malformed);
        }
        Ok(Parts { header, payload, signature, message })
    }
}

/// Whether `key` signed the token with `alg`. jsonwebtoken also refuses a key of the wrong
/// family for `alg`, a second guard against algorithm confusion.
fn signature_matches(parts: &Parts<'_>, key: &DecodingKey, alg: Algorithm) -> Result<bool, AuthError> {
    match jsonwebtoken::crypto::verify(parts.signature, parts.message.as_bytes(), key, alg) {
        Ok(matches) => Ok(matches),
        Err(error) if matches!(error.kind(), ErrorKind::Base64(_)) => Err(AuthError::Malformed),
        Err(_) => Err(AuthError::BadSignature),
    }
}

fn decode_object(part: &str) -> Result<Map<String, Value>, AuthError> {
    let bytes = URL_SAFE_NO_PAD.decode(part).map_err(|_| AuthError::Malformed)?;
    match serde_json::from_slice(&bytes) {
        Ok(Value::Object(object)) => Ok(object),
        _ => Err(AuthError::Malformed),
    }
}

fn bad_claims(reason: &str) -> AuthError {
    AuthError::BadClaims(reason.to_owned())
}

/// A NumericDate claim. RFC 7519 allows fractions; they are dropped (rounded down).
fn number(payload: &Map<String, Value>, name: &str) -> Result<Option<i64>, AuthError> {
    match payload.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(number)) => match number.as_i64() {
            Some(whole) => Ok(Some(whole)),
            // `as` saturates, so absurd values become i64::MIN/MAX rather than wrapping.
            None => number
                .as_f64()
                .filter(|f| f.is_finite())
                .map(|f| Some(f.floor() as i64))
                .ok_or_else(|| AuthError::BadClaims(format!("{name} must be a number of seconds"))),
        },
        Some(_) => Err(AuthError::BadClaims(format!("{name} must be a number of seconds"))),
    }
}

fn required_text(payload: &Map<String, Value>, name: &str) -> Result<String, AuthError> {
    match payload.get(name) {
        Some(Value::String(text)) if !text.trim().is_empty() => Ok(text.clone()),
        Some(Value::String(_)) => Err(AuthError::BadClaims(format!("{name} is empty"))),
        None | Some(Value::Null) => Err(AuthError::BadClaims(format!("{name} is missing"))),
        Some(_) => Err(AuthError::BadClaims(format!("{name} must be a string"))),
    }
}

fn seconds(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

/// Where a key set comes from: a JWKS URL, or an OpenID Connect metadata document whose
/// `jwks_uri` names it (the Bot Framework's way).
#[derive(Debug, Clone)]
pub(crate) enum KeySource {
    Jwks(String),
    OpenId(String),
}

/// RS256 keys from a JWKS endpoint, fetched lazily and cached.
pub(crate) struct JwksCache {
    source: KeySource,
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
pub(crate) struct JwksKey {
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
    pub(crate) fn new(source: KeySource, http: reqwest::Client, ttl_seconds: u64) -> JwksCache {
        JwksCache {
            source,
            http,
            ttl: seconds(ttl_seconds),
            keys: RwLock::new(KeySet::default()),
            refresh: Mutex::new(()),
        }
    }

    pub(crate) async fn key(&self, kid: Option<&str>, now: i64) -> Result<JwksKey, AuthError> {
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

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use std::time::Duration;

    use axum::Router;
    use axum::extract::State;
    use axum::http::StatusCode;
    use axum::response::{IntoResponse, Response};
    use axum::routing::get;
    use jsonwebtoken::jwk::{AlgorithmParameters, Jwk};
    use serde_json::json;

    use super::*;

    /// A 2048-bit key generated with `openssl genrsa -traditional 2048` for these tests only.
    const TEST_RSA_PRIVATE_PEM: &str = "-----BEGIN RSA PRIVATE KEY-----
MIIEowIBAAKCAQEA5mKcPce67RhNBt6L3aCFbHFbA+ZH1Yq2zUYQl2jvW2cCRGwU
6OvQdBHzFsplza/5f8vpCz0vPvbbo2M0CGJF68M5wRcrPPRyTAxLbaRMothKoAl2
zQCIoylGxOMyIelazlvwBn8uR/D/GQo4lL3/Idr85wGjGRr/NGFqPx8+MraeJBcq
OxvKnhJdbXN2+HGVKZ38I+u+g8LFwZ2yWz1jCzYOTh0+8j6f6mT6wM0VZvW3DV1c
0PJhk/mSB35v/RPqgSGvi5+yGNnDKNdD/VyGBu+jJ0+l9MwoxXMSMzz+zzgBFK0g
M5ASpaD3RjAcfBdlsXq1vGRR7RiZWMBmfZcuzQIDAQABAoIBACPjJPzvraPMtwT0
qjtkC5ycnMWi+7odIUQhH6kCQNTPWzhO0MQGpcJK4H/Cl/CeMqKQYDUuuvsXJ5gQ
NjT/H+6tisPUCNl2J47GlIJYB1MPl7JNvxqIdIBcB+jYDkFfkRRXmHBeo9YziX08
TRuIbCN5Mg+G/wHEZZAig5MhGgZ6hcXF0cPsBJ2kexRXqz34kfZ/Re8/pu7Ft1PV
II6Bq7eSaRkWcr3wGUK+hZ+9k3A16gB+Ozyx/JfoYV9XEYglIDHu3MrwKdN9BohD
FjM1qrnJGAUx8TjqNygWGbqzoZyq7WNOSvzWB8k4VEQsrv7hgVx+c/U0MfeWyAfY
I+pQqakCgYEA9dB1JoFmzl4rFgwRPKmsrH6Qh3cXsoEUjARoga+p6mIFAdcEX5ul
iMBKBnRBa+QcRb6YyxNNw3Xu7dCyOEqrhqRuMASVQSYAdwWwu9wJT6oSc4TzPKMi
9thM+lKMZdb+SlS2ckdCnFSB7ZBfWougjJ2nIS2Kqc0oX4SegtpK89kCgYEA7+58
APxsF9xyj5LqiQ6YxpzQ0orShnYHY48rHLS5KXnGYz+1TddB01FOK44IvuNQ87bX
lYXeArVNyHm3Ro4/7uDub1Oo+x3SOBM8iZCMjscK5JXhTN3yZEDvgZyPdq0eyVto
kDd4EgX2yL/XT5HmkGfbN6IMee7VEj+bKLfz3hUCgYAK1QzUjY9CONQdPJrl2XRK
halIzu60ZwvIv8j7LgqG0Zr24crHi8xXomGgty7K2lqEmEmTaV5b5q6IvFGeOWwl
mslgRFNvc4VBuXZ4UNH4OL5naMxvN6Eqz41U2p5lPnwmOmVv08QTr4WqOlp5Wv3Q
NIJQ6/jYUrocu3NgwM3cwQKBgAgGYf9mcfcaWHqU32NWKaX6+MESA5ibugOKdlav
dMH+YLRRHS9NU9ZNkd/DEGfSEpMUOoG1yIcuqTtbVtX1TA4hV9hBZBWCGdXmTtAL
Fahw39xlZvO7OLBBu8EKC4Jcp/r0I7svH8T6jhaI1BrFNoD9+EcUFHa/lkDV/8qM
3ItBAoGBAKhCSOE5tzcRREMvDnLuSf5wARTzY4pQcoqI1gQ+9Rut+Q3QLe1JOuLc
F5n4WAQ8Dp3nNMr4JBB01XXW1478S5Tz4hg8FpJEo0Kioy8ZMKnnzFLxE9nQKChB
3DAJZoCh2U9gx9WPmCttbc1uV+nZbFJVI28gax1JFlClBU4XBNVp
-----END RSA PRIVATE KEY-----
";

    /// The public half of the key above (`openssl rsa -pubout`): what an attacker would use as
    /// an HMAC secret in an algorithm-confusion attack.
    const TEST_RSA_PUBLIC_PEM: &str = "-----BEGIN PUBLIC KEY-----
MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA5mKcPce67RhNBt6L3aCF
bHFbA+ZH1Yq2zUYQl2jvW2cCRGwU6OvQdBHzFsplza/5f8vpCz0vPvbbo2M0CGJF
68M5wRcrPPRyTAxLbaRMothKoAl2zQCIoylGxOMyIelazlvwBn8uR/D/GQo4lL3/
Idr85wGjGRr/NGFqPx8+MraeJBcqOxvKnhJdbXN2+HGVKZ38I+u+g8LFwZ2yWz1j
CzYOTh0+8j6f6mT6wM0VZvW3DV1c0PJhk/mSB35v/RPqgSGvi5+yGNnDKNdD/VyG
Bu+jJ0+l9MwoxXMSMzz+zzgBFK0gM5ASpaD3RjAcfBdlsXq1vGRR7RiZWMBmfZcu
zQIDAQAB
-----END PUBLIC KEY-----
";

    const SECRET: &str = "first-secret-for-tests-0123456789abcdef";
    const SECOND_SECRET: &str = "second-secret-for-tests-0123456789abcdef";
    const KID: &str = "test-key";
    const NOW: i64 = 1_750_000_000;

    fn secret(text: &str) -> SecretString {
        SecretString::from(text.to_owned())
    }

    fn http() -> reqwest::Client {
        install_crypto_provider();
        reqwest::Client::builder().timeout(Duration::from_secs(5)).build().expect("test HTTP client")
    }

    fn claims() -> Claims {
        Claims {
            sub: "rep_15".to_owned(),
            tenant_id: "acme".to_owned(),
            role: Role::Manager,
            exp: NOW + 600,
            iat: Some(NOW),
            iss: Some(HS256_ISSUER.to_owned()),
            aud: Some(HS256_AUDIENCE.to_owned()),
        }
    }

    /// `payload` as our own HS256 tokens carry it: issued now, by us, for the API (where it
    /// does not say otherwise).
    fn ours(mut payload: Value) -> Value {
        for (key, value) in [("iat", json!(NOW)), ("iss", json!(HS256_ISSUER)), ("aud", json!(HS256_AUDIENCE))] {
            payload.as_object_mut().expect("an object").entry(key).or_insert(value);
        }
        payload
    }

    fn hs256_config() -> AuthConfig {
        AuthConfig { hs256_secrets: vec![secret(SECRET)], ..AuthConfig::default() }
    }

    fn authenticator(config: AuthConfig) -> Authenticator {
        Authenticator::new(config, http()).expect("valid test config")
    }

    fn jwks_config(jwks: &FakeJwks) -> AuthConfig {
        AuthConfig { jwks_url: Some(jwks.url.clone()), ..AuthConfig::default() }
    }

    /// Signs any JSON payload, for claims `Claims` cannot express.
    fn sign_hs256_json(key: &str, payload: &Value) -> String {
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), payload, &EncodingKey::from_secret(key.as_bytes()))
            .expect("HS256 signing")
    }

    fn sign_rs256(kid: Option<&str>, payload: &impl Serialize) -> String {
        let mut header = Header::new(Algorithm::RS256);
        header.kid = kid.map(str::to_owned);
        let key = EncodingKey::from_rsa_pem(TEST_RSA_PRIVATE_PEM.as_bytes()).expect("test RSA key");
        jsonwebtoken::encode(&header, payload, &key).expect("RS256 signing")
    }

    /// A token with any header and payload and a junk signature.
    fn forge(header: &Value, payload: &Value) -> String {
        let encode = |value: &Value| URL_SAFE_NO_PAD.encode(serde_json::to_vec(value).expect("JSON"));
        format!("{}.{}.{}", encode(header), encode(payload), URL_SAFE_NO_PAD.encode(b"not a signature"))
    }

    fn test_jwk(kid: &str) -> Value {
        let key = EncodingKey::from_rsa_pem(TEST_RSA_PRIVATE_PEM.as_bytes()).expect("test RSA key");
        let jwk = Jwk::from_encoding_key(&key, Algorithm::RS256).expect("JWK from the test key");
        let AlgorithmParameters::RSA(rsa) = jwk.algorithm else { panic!("an RSA JWK") };
        json!({ "kty": "RSA", "kid": kid, "use": "sig", "alg": "RS256", "n": rsa.n, "e": rsa.e })
    }

    /// The test RSA key, plus an EC key that must be ignored.
    fn test_jwks(kid: &str) -> Value {
        json!({ "keys": [
            test_jwk(kid),
            { "kty": "EC", "kid": "ec-key", "crv": "P-256", "x": "AAAA", "y": "AAAA" },
        ] })
    }

    /// A JWKS endpoint on 127.0.0.1 that counts its requests and can be told to fail.
    struct FakeJwks {
        url: String,
        hits: Arc<AtomicUsize>,
        failing: Arc<AtomicBool>,
        document: Arc<std::sync::Mutex<Value>>,
    }

    #[derive(Clone)]
    struct FakeState {
        hits: Arc<AtomicUsize>,
        failing: Arc<AtomicBool>,
        document: Arc<std::sync::Mutex<Value>>,
    }

    impl FakeJwks {
        async fn start(document: Value) -> FakeJwks {
            let state = FakeState {
                hits: Arc::new(AtomicUsize::new(0)),
                failing: Arc::new(AtomicBool::new(false)),
                document: Arc::new(std::sync::Mutex::new(document)),
            };
            let app = Router::new().route("/.well-known/jwks.json", get(serve_jwks)).with_state(state.clone());
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind the fake JWKS server");
            let address = listener.local_addr().expect("fake JWKS address");
            tokio::spawn(async move { axum::serve(listener, app).await });
            FakeJwks {
                url: format!("http://{address}/.well-known/jwks.json"),
                hits: state.hits,
                failing: state.failing,
                document: state.document,
            }
        }

        fn hits(&self) -> usize {
            self.hits.load(Ordering::SeqCst)
        }

        fn fail(&self, failing: bool) {
            self.failing.store(failing, Ordering::SeqCst);
        }

        fn publish(&self, document: Value) {
            *self.document.lock().expect("fake JWKS document") = document;
        }
    }

    async fn serve_jwks(State(state): State<FakeState>) -> Response {
        state.hits.fetch_add(1, Ordering::SeqCst);
        if state.failing.load(Ordering::SeqCst) {
            return (StatusCode::INTERNAL_SERVER_ERROR, "down").into_response();
        }
        let document = state.document.lock().expect("fake JWKS document").clone();
        axum::Json(document).into_response()
    }

    #[test]
    fn roles_are_ordered_and_serialised_in_lowercase() {
        assert!(Role::Admin > Role::Manager && Role::Manager > Role::Rep);
        assert_eq!(serde_json::to_value(Role::Manager).expect("JSON"), json!("manager"));
        assert_eq!(serde_json::from_value::<Role>(json!("admin")).expect("JSON"), Role::Admin);
        assert_eq!(Role::Rep.as_str(), "rep");
    }

    #[test]
    fn a_config_without_secrets_or_jwks_is_refused() {
        let error = Authenticator::new(AuthConfig::default(), http()).expect_err("no keys");
        assert_eq!(error, ConfigError::NoKeys);
    }

    #[test]
    fn a_secret_shorter_than_32_bytes_is_refused() {
        let config = AuthConfig { hs256_secrets: vec![secret(SECRET), secret("too-short")], ..AuthConfig::default() };
        let error = Authenticator::new(config, http()).expect_err("short secret");
        assert_eq!(error, ConfigError::SecretTooShort { position: 2, len: 9 });
    }

    #[test]
    fn a_jwks_url_that_is_not_http_is_refused() {
        for url in ["not a url", "file:///etc/jwks.json"] {
            let config = AuthConfig { jwks_url: Some(url.to_owned()), ..AuthConfig::default() };
            assert_eq!(Authenticator::new(config, http()).expect_err(url), ConfigError::BadJwksUrl);
        }
    }

    #[tokio::test]
    async fn a_minted_hs256_token_verifies_and_returns_its_claims() {
        let token = mint_hs256(&secret(SECRET), &claims()).expect("mint");
        let verified = authenticator(hs256_config()).verify(&token, NOW).await.expect("valid token");
        assert_eq!(verified, claims());
    }

    #[tokio::test]
    async fn a_token_signed_with_the_second_rotation_secret_verifies() {
        let config = AuthConfig { hs256_secrets: vec![secret(SECRET), secret(SECOND_SECRET)], ..AuthConfig::default() };
        let token = mint_hs256(&secret(SECOND_SECRET), &claims()).expect("mint");
        assert_eq!(authenticator(config).verify(&token, NOW).await, Ok(claims()));
    }

    #[tokio::test]
    async fn a_token_signed_with_an_unconfigured_secret_is_refused() {
        let token = mint_hs256(&secret(SECOND_SECRET), &claims()).expect("mint");
        assert_eq!(authenticator(hs256_config()).verify(&token, NOW).await, Err(AuthError::BadSignature));
    }

    #[tokio::test]
    async fn a_token_with_a_tampered_payload_is_refused() {
        let token = mint_hs256(&secret(SECRET), &claims()).expect("mint");
        let admin = Claims { role: Role::Admin, ..claims() };
        let forged_payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&admin).expect("JSON"));
        let parts: Vec<&str> = token.split('.').collect();
        let tampered = format!("{}.{}.{}", parts[0], forged_payload, parts[2]);
        assert_eq!(authenticator(hs256_config()).verify(&tampered, NOW).await, Err(AuthError::BadSignature));
    }

    #[tokio::test]
    async fn an_expired_token_is_refused_but_one_within_the_leeway_passes() {
        let auth = authenticator(AuthConfig { leeway_seconds: 60, ..hs256_config() });
        let token = |exp| mint_hs256(&secret(SECRET), &Claims { exp, ..claims() }).expect("mint");
        // Valid while now < exp + leeway, to the second.
        assert!(auth.verify(&token(NOW - 59), NOW).await.is_ok());
        assert_eq!(auth.verify(&token(NOW - 60), NOW).await, Err(AuthError::Expired));
        assert_eq!(auth.verify(&token(NOW - 86_400), NOW).await, Err(AuthError::Expired));

        let strict = authenticator(AuthConfig { leeway_seconds: 0, ..hs256_config() });
        assert!(strict.verify(&token(NOW + 1), NOW).await.is_ok());
        assert_eq!(strict.verify(&token(NOW), NOW).await, Err(AuthError::Expired));
    }

    #[tokio::test]
    async fn a_token_not_valid_yet_is_refused_beyond_the_leeway() {
        let auth = authenticator(hs256_config());
        let token = |nbf: i64| {
            sign_hs256_json(
                SECRET,
                &ours(json!({ "sub": "u", "tenant_id": "t", "role": "rep", "exp": NOW + 600, "nbf": nbf })),
            )
        };
        assert!(auth.verify(&token(NOW + 60), NOW).await.is_ok());
        assert!(matches!(auth.verify(&token(NOW + 61), NOW).await, Err(AuthError::BadClaims(_))));
    }

    #[tokio::test]
    async fn an_alg_none_token_is_refused() {
        let auth = authenticator(hs256_config());
        let payload = serde_json::to_value(claims()).expect("JSON");
        let encode = |value: &Value| URL_SAFE_NO_PAD.encode(serde_json::to_vec(value).expect("JSON"));
        let unsigned = format!("{}.{}.", encode(&json!({ "alg": "none", "typ": "JWT" })), encode(&payload));
        assert_eq!(auth.verify(&unsigned, NOW).await, Err(AuthError::BadSignature));
        let forged_none = forge(&json!({ "alg": "none" }), &payload);
        assert_eq!(auth.verify(&forged_none, NOW).await, Err(AuthError::BadSignature));
    }

    #[tokio::test]
    async fn an_hs384_token_signed_with_a_configured_secret_is_refused() {
        let key = EncodingKey::from_secret(SECRET.as_bytes());
        let token = jsonwebtoken::encode(&Header::new(Algorithm::HS384), &claims(), &key).expect("HS384 signing");
        assert_eq!(authenticator(hs256_config()).verify(&token, NOW).await, Err(AuthError::BadSignature));
    }

    #[tokio::test]
    async fn an_rs256_token_verifies_with_a_key_from_the_jwks() {
        let jwks = FakeJwks::start(test_jwks(KID)).await;
        let auth = authenticator(jwks_config(&jwks));
        let token = sign_rs256(Some(KID), &claims());
        assert_eq!(auth.verify(&token, NOW).await, Ok(claims()));
        assert_eq!(jwks.hits(), 1);
    }

    #[tokio::test]
    async fn an_rs256_token_without_kid_uses_the_only_rsa_key_in_the_jwks() {
        let jwks = FakeJwks::start(test_jwks(KID)).await;
        let token = sign_rs256(None, &claims());
        assert_eq!(authenticator(jwks_config(&jwks)).verify(&token, NOW).await, Ok(claims()));
    }

    #[tokio::test]
    async fn an_rs256_token_with_a_tampered_signature_is_refused() {
        let jwks = FakeJwks::start(test_jwks(KID)).await;
        let token = sign_rs256(Some(KID), &claims());
        let (message, signature) = token.rsplit_once('.').expect("three parts");
        let mut bytes = URL_SAFE_NO_PAD.decode(signature).expect("base64url signature");
        bytes[10] ^= 1;
        let tampered = format!("{message}.{}", URL_SAFE_NO_PAD.encode(bytes));
        assert_eq!(authenticator(jwks_config(&jwks)).verify(&tampered, NOW).await, Err(AuthError::BadSignature));
    }

    #[tokio::test]
    async fn keys_are_cached_and_fetched_again_when_the_cache_expires() {
        let jwks = FakeJwks::start(test_jwks(KID)).await;
        let auth = authenticator(AuthConfig { jwks_cache_seconds: 3600, ..jwks_config(&jwks) });
        let token = sign_rs256(Some(KID), &Claims { exp: NOW + 7200, ..claims() });
        assert!(auth.verify(&token, NOW).await.is_ok());
        assert!(auth.clone().verify(&token, NOW + 100).await.is_ok());
        assert!(auth.verify(&token, NOW + 3599).await.is_ok());
        assert_eq!(jwks.hits(), 1, "fresh keys are not fetched again");
        assert!(auth.verify(&token, NOW + 3600).await.is_ok());
        assert_eq!(jwks.hits(), 2, "expired keys are fetched again");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_first_requests_share_one_jwks_fetch() {
        let jwks = FakeJwks::start(test_jwks(KID)).await;
        let auth = authenticator(jwks_config(&jwks));
        let token = sign_rs256(Some(KID), &claims());
        let tasks: Vec<_> = (0..20)
            .map(|_| {
                let (auth, token) = (auth.clone(), token.clone());
                tokio::spawn(async move { auth.verify(&token, NOW).await })
            })
            .collect();
        for task in tasks {
            assert_eq!(task.await.expect("verification task"), Ok(claims()));
        }
        assert_eq!(jwks.hits(), 1);
    }

    #[tokio::test]
    async fn forged_kids_are_refused_and_refetch_the_jwks_at_most_once_a_minute() {
        let jwks = FakeJwks::start(test_jwks(KID)).await;
        let auth = authenticator(jwks_config(&jwks));
        let payload = serde_json::to_value(claims()).expect("JSON");
        for i in 0..20 {
            let forged = forge(&json!({ "alg": "RS256", "kid": format!("forged-{i}") }), &payload);
            assert_eq!(auth.verify(&forged, NOW + i).await, Err(AuthError::UnknownKey));
        }
        assert!(jwks.hits() <= 2, "{} fetches for 20 forged kids in a minute", jwks.hits());
        // The genuine key still works without another fetch.
        assert!(auth.verify(&sign_rs256(Some(KID), &claims()), NOW + 30).await.is_ok());
        assert!(jwks.hits() <= 2);
    }

    #[tokio::test]
    async fn a_rotated_key_is_picked_up_once_the_refetch_throttle_allows() {
        let jwks = FakeJwks::start(test_jwks("old-key")).await;
        let auth = authenticator(jwks_config(&jwks));
        let token = sign_rs256(Some("new-key"), &Claims { exp: NOW + 600, ..claims() });
        assert_eq!(auth.verify(&token, NOW).await, Err(AuthError::UnknownKey));
        jwks.publish(test_jwks("new-key"));
        assert_eq!(auth.verify(&token, NOW + 59).await, Err(AuthError::UnknownKey));
        assert_eq!(jwks.hits(), 1);
        assert!(auth.verify(&token, NOW + 60).await.is_ok());
        assert_eq!(jwks.hits(), 2);
    }

    #[tokio::test]
    async fn an_unreachable_jwks_without_cached_keys_makes_keys_unavailable() {
        let jwks = FakeJwks::start(test_jwks(KID)).await;
        jwks.fail(true);
        let auth = authenticator(jwks_config(&jwks));
        let token = sign_rs256(Some(KID), &claims());
        assert!(matches!(auth.verify(&token, NOW).await, Err(AuthError::KeysUnavailable(_))));
        // Within the throttle the failure is remembered rather than retried.
        assert!(matches!(auth.verify(&token, NOW + 1).await, Err(AuthError::KeysUnavailable(_))));
        assert_eq!(jwks.hits(), 1);
        // Once the endpoint is back and a minute has passed, keys are fetched.
        jwks.fail(false);
        assert!(auth.verify(&token, NOW + 60).await.is_ok());
    }

    #[tokio::test]
    async fn a_closed_jwks_port_makes_keys_unavailable() {
        // Bind then drop a listener: the port is (almost certainly) closed afterwards.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let address = listener.local_addr().expect("address");
        drop(listener);
        let config = AuthConfig { jwks_url: Some(format!("http://{address}/jwks")), ..AuthConfig::default() };
        let token = sign_rs256(Some(KID), &claims());
        assert!(matches!(authenticator(config).verify(&token, NOW).await, Err(AuthError::KeysUnavailable(_))));
    }

    #[tokio::test]
    async fn an_unreachable_jwks_with_cached_keys_still_verifies() {
        let jwks = FakeJwks::start(test_jwks(KID)).await;
        let auth = authenticator(jwks_config(&jwks));
        let token = sign_rs256(Some(KID), &Claims { exp: NOW + 7200, ..claims() });
        assert!(auth.verify(&token, NOW).await.is_ok());
        jwks.fail(true);
        // The cache has expired, the refetch fails, the stale keys are still used.
        assert!(auth.verify(&token, NOW + 3601).await.is_ok());
        assert_eq!(jwks.hits(), 2);
        // A JWKS that answers with no usable keys is treated the same way.
        jwks.fail(false);
        jwks.publish(json!({ "keys": [] }));
        assert!(auth.verify(&token, NOW + 3700).await.is_ok());
        assert_eq!(jwks.hits(), 3);
    }

    #[tokio::test]
    async fn an_hs256_token_signed_with_the_rsa_public_key_is_refused() {
        // Algorithm confusion: a verifier that picked the key by `kid` alone would check this
        // HMAC against the public key's bytes, which the attacker knows.
        let jwks = FakeJwks::start(test_jwks(KID)).await;
        let auth = authenticator(AuthConfig { hs256_secrets: vec![secret(SECRET)], ..jwks_config(&jwks) });
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some(KID.to_owned());
        assert!(auth.verify(&sign_rs256(Some(KID), &claims()), NOW).await.is_ok(), "the JWKS key is loaded");
        for public_key in [TEST_RSA_PUBLIC_PEM.as_bytes(), TEST_RSA_PUBLIC_PEM.trim_end().as_bytes()] {
            let key = EncodingKey::from_secret(public_key);
            let token = jsonwebtoken::encode(&header, &claims(), &key).expect("HS256 signing");
            assert_eq!(auth.verify(&token, NOW).await, Err(AuthError::BadSignature));
        }
    }

    #[tokio::test]
    async fn an_rs256_token_is_refused_when_no_jwks_is_configured() {
        let token = sign_rs256(Some(KID), &claims());
        assert_eq!(authenticator(hs256_config()).verify(&token, NOW).await, Err(AuthError::BadSignature));
    }

    #[tokio::test]
    async fn the_issuer_must_match_when_one_is_configured() {
        let jwks = FakeJwks::start(test_jwks(KID)).await;
        let auth =
            authenticator(AuthConfig { issuer: Some("https://id.example.com/".to_owned()), ..jwks_config(&jwks) });
        let token = |iss: Option<&str>| sign_rs256(Some(KID), &Claims { iss: iss.map(str::to_owned), ..claims() });
        assert!(auth.verify(&token(Some("https://id.example.com/")), NOW).await.is_ok());
        assert_eq!(auth.verify(&token(Some("https://evil.example.com/")), NOW).await, Err(AuthError::WrongIssuer));
        assert_eq!(auth.verify(&token(None), NOW).await, Err(AuthError::WrongIssuer));
    }

    #[tokio::test]
    async fn the_audience_must_be_listed_when_one_is_configured() {
        let jwks = FakeJwks::start(test_jwks(KID)).await;
        let auth = authenticator(AuthConfig { audience: Some("dealwatch".to_owned()), ..jwks_config(&jwks) });
        let token = |aud: Value| {
            sign_rs256(Some(KID), &json!({ "sub": "u", "tenant_id": "t", "role": "rep", "exp": NOW + 600, "aud": aud }))
        };
        let accepted = auth.verify(&token(json!(["crm", "dealwatch"])), NOW).await.expect("listed audience");
        assert_eq!(accepted.aud.as_deref(), Some("dealwatch"));
        assert!(auth.verify(&token(json!("dealwatch")), NOW).await.is_ok());
        assert_eq!(auth.verify(&token(json!("crm")), NOW).await, Err(AuthError::WrongAudience));
        assert_eq!(auth.verify(&token(json!([])), NOW).await, Err(AuthError::WrongAudience));
        assert_eq!(auth.verify(&token(Value::Null), NOW).await, Err(AuthError::WrongAudience));
    }

    #[tokio::test]
    async fn our_own_tokens_name_us_say_when_they_were_issued_and_last_a_week_at_most() {
        // Whatever an identity provider is configured with, an HS256 token must be ours.
        let auth = authenticator(AuthConfig {
            issuer: Some("https://id.example.com/".to_owned()),
            audience: Some("dealwatch".to_owned()),
            ..hs256_config()
        });
        let base = || json!({ "sub": "u", "tenant_id": "t", "role": "rep", "exp": NOW + 600 });
        let signed = |payload: Value| sign_hs256_json(SECRET, &payload);
        assert!(auth.verify(&signed(ours(base())), NOW).await.is_ok());
        let with = |key: &str, value: Value| {
            let mut payload = ours(base());
            payload[key] = value;
            signed(payload)
        };
        assert_eq!(auth.verify(&with("iss", json!("https://id.example.com/")), NOW).await, Err(AuthError::WrongIssuer));
        assert_eq!(auth.verify(&with("aud", json!("dealwatch")), NOW).await, Err(AuthError::WrongAudience));
        let mut no_iat = ours(base());
        no_iat.as_object_mut().expect("object").remove("iat");
        assert!(matches!(auth.verify(&signed(no_iat), NOW).await, Err(AuthError::BadClaims(_))), "no iat");
        let week = MAX_TOKEN_HOURS * 3600;
        assert!(auth.verify(&with("exp", json!(NOW + week)), NOW).await.is_ok(), "a week exactly");
        let year = with("exp", json!(NOW + 365 * 24 * 3600));
        assert!(matches!(auth.verify(&year, NOW).await, Err(AuthError::BadClaims(_))), "a year");
        let future = with("iat", json!(NOW + 3600));
        assert!(matches!(auth.verify(&future, NOW).await, Err(AuthError::BadClaims(_))), "issued later");
        // An identity provider's token without iat is held to the same week from now.
        let jwks = FakeJwks::start(test_jwks(KID)).await;
        let rs = authenticator(jwks_config(&jwks));
        let far = sign_rs256(Some(KID), &json!({ "sub": "u", "tenant_id": "t", "role": "rep", "exp": NOW + week + 1 }));
        assert!(matches!(rs.verify(&far, NOW).await, Err(AuthError::BadClaims(_))));
    }

    #[tokio::test]
    async fn the_authorization_header_must_hold_a_bearer_token() {
        let auth = authenticator(hs256_config());
        let token = mint_hs256(&secret(SECRET), &claims()).expect("mint");
        assert_eq!(auth.verify_header(None, NOW).await, Err(AuthError::Missing));
        assert_eq!(auth.verify_header(Some("  "), NOW).await, Err(AuthError::Missing));
        assert_eq!(auth.verify_header(Some(&format!("Basic {token}")), NOW).await, Err(AuthError::Malformed));
        assert_eq!(auth.verify_header(Some("Bearer"), NOW).await, Err(AuthError::Malformed));
        assert_eq!(auth.verify_header(Some("Bearer    "), NOW).await, Err(AuthError::Malformed));
        assert_eq!(auth.verify_header(Some(&token), NOW).await, Err(AuthError::Malformed));
        assert_eq!(auth.verify_header(Some("Bearer garbage"), NOW).await, Err(AuthError::Malformed));
        for scheme in ["Bearer", "bearer", "BEARER"] {
            let header = format!("{scheme}  {token}");
            assert_eq!(auth.verify_header(Some(&header), NOW).await, Ok(claims()), "{scheme}");
        }
    }

    #[tokio::test]
    async fn garbage_tokens_are_malformed() {
        let auth = authenticator(hs256_config());
        let token = mint_hs256(&secret(SECRET), &claims()).expect("mint");
        let (header, rest) = token.split_once('.').expect("three parts");
        let not_json = URL_SAFE_NO_PAD.encode(b"not json");
        let cases = [
            "garbage".to_owned(),
            "a.b".to_owned(),
            format!("{token}.extra"),
            format!("!!!.{rest}"),
            format!("{not_json}.{rest}"),
            format!("{}.{rest}", URL_SAFE_NO_PAD.encode(b"[1,2]")),
            format!("{token}!"),
            format!("{header}..sig"),
            "x".repeat(MAX_TOKEN_BYTES + 1),
        ];
        for case in &cases {
            assert_eq!(auth.verify(case, NOW).await, Err(AuthError::Malformed), "{case:.40}");
        }
        assert_eq!(auth.verify("", NOW).await, Err(AuthError::Missing));
        // A validly signed payload that is not JSON is malformed too.
        let message = format!("{header}.{not_json}");
        let signature = jsonwebtoken::crypto::sign(
            message.as_bytes(),
            &EncodingKey::from_secret(SECRET.as_bytes()),
            Algorithm::HS256,
        )
        .expect("HS256 signing");
        assert_eq!(auth.verify(&format!("{message}.{signature}"), NOW).await, Err(AuthError::Malformed));
    }

    #[tokio::test]
    async fn claims_without_a_tenant_or_with_an_unknown_role_are_refused() {
        let auth = authenticator(hs256_config());
        let valid = ours(json!({ "sub": "rep_15", "tenant_id": "acme", "role": "rep", "exp": NOW + 600 }));
        let with = |field: &str, value: Value| {
            let mut payload = valid.clone();
            payload[field] = value;
            sign_hs256_json(SECRET, &payload)
        };
        let without = |field: &str| {
            let mut payload = valid.clone();
            payload.as_object_mut().expect("object").remove(field);
            sign_hs256_json(SECRET, &payload)
        };
        assert!(auth.verify(&sign_hs256_json(SECRET, &valid), NOW).await.is_ok());
        let refused = [
            without("tenant_id"),
            with("tenant_id", json!("")),
            with("tenant_id", json!(42)),
            without("sub"),
            with("sub", json!("  ")),
            with("role", json!("owner")),
            with("role", json!("Admin")),
            without("role"),
            without("exp"),
            with("exp", json!("tomorrow")),
            with("iss", json!(7)),
        ];
        for token in &refused {
            assert!(matches!(auth.verify(token, NOW).await, Err(AuthError::BadClaims(_))));
        }
    }

    #[tokio::test]
    async fn no_error_message_contains_the_token_or_a_secret() {
        let jwks = FakeJwks::start(test_jwks(KID)).await;
        jwks.fail(true);
        let auth = authenticator(AuthConfig {
            hs256_secrets: vec![secret(SECRET)],
            issuer: Some("issuer".to_owned()),
            audience: Some("dealwatch".to_owned()),
            ..jwks_config(&jwks)
        });
        let good = Claims { iss: Some("issuer".to_owned()), aud: Some("dealwatch".to_owned()), ..claims() };
        let tokens = [
            mint_hs256(&secret(SECRET), &Claims { exp: NOW - 3600, ..good.clone() }).expect("mint"),
            mint_hs256(&secret(SECOND_SECRET), &good).expect("mint"),
            sign_hs256_json(
                SECRET,
                &ours(json!({ "sub": "u", "tenant_id": "t", "role": "rep", "exp": NOW + 60, "iss": null })),
            ),
            sign_hs256_json(
                SECRET,
                &ours(json!({ "sub": "u", "tenant_id": "t", "role": "rep", "exp": NOW + 60, "aud": null })),
            ),
            mint_hs256(&secret(SECRET), &Claims { tenant_id: String::new(), ..good.clone() }).expect("mint"),
            sign_hs256_json(SECRET, &ours(json!({ "sub": SECRET, "tenant_id": "t", "role": SECRET, "exp": NOW + 60 }))),
            sign_rs256(Some(KID), &good),
            "garbage.token.value".to_owned(),
        ];
        let mut messages = Vec::new();
        for token in &tokens {
            let error = auth.verify(token, NOW).await.expect_err("every token here is refused");
            messages.push((token.clone(), error.to_string()));
        }
        let constructed = [
            AuthError::Missing,
            AuthError::Malformed,
            AuthError::Expired,
            AuthError::BadSignature,
            AuthError::UnknownKey,
            AuthError::WrongIssuer,
            AuthError::WrongAudience,
        ];
        messages.extend(constructed.iter().map(|error| (tokens[0].clone(), error.to_string())));
        for (token, message) in &messages {
            assert!(!message.contains(token.as_str()), "{message}");
            for part in token.split('.').filter(|part| part.len() > 8) {
                assert!(!message.contains(part), "{message} quotes part of the token");
            }
            assert!(!message.contains(SECRET) && !message.contains(SECOND_SECRET), "{message} quotes a secret");
        }
    }
}
