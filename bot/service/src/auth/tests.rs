//! Tests of `auth`.

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
    let auth = authenticator(AuthConfig { issuer: Some("https://id.example.com/".to_owned()), ..jwks_config(&jwks) });
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
    let signature =
        jsonwebtoken::crypto::sign(message.as_bytes(), &EncodingKey::from_secret(SECRET.as_bytes()), Algorithm::HS256)
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
