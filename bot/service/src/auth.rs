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
use serde::Serialize;
use serde_json::{Map, Value};

mod jwks;

pub use jwks::{JwksCache, KeySource};

/// HS256 keys shorter than the hash output (32 bytes) weaken the MAC; RFC 7518 §3.2 requires at least this.
const MIN_HS256_SECRET_BYTES: usize = 32;
/// Real tokens are well under a kilobyte; refusing huge ones bounds the work an anonymous caller can cause.
const MAX_TOKEN_BYTES: usize = 16 * 1024;
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
pub async fn verified_rs256(
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
pub fn bearer(authorization: Option<&str>) -> Result<&str, AuthError> {
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
pub fn time_claim(payload: &Map<String, Value>, name: &str) -> Result<Option<i64>, AuthError> {
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

#[cfg(test)]
mod tests;
