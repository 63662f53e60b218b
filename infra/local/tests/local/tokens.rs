//! Development tokens on the running stack: the JWKS it serves verifies them with `hearth-auth`
//! (the code that validates Cognito's tokens in AWS), and a token signed by any other key is a
//! 401.

use std::sync::Arc;

use hearth_auth::{Jwk, Jwks, PublicKey, TokenUse, Validator, ValidatorConfig};
use hearth_local::tokens::{AUDIENCE, DEFAULT_TTL, DevTokens, ISSUER};
use hearth_ports::SystemClock;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

use crate::support::{http, start, tempdir, token};

/// The stack's JWKS document, parsed.
async fn served_jwks(api: std::net::SocketAddr) -> (Value, Jwks) {
    let (status, document) = http(api, "GET", "/.well-known/jwks.json", None, None).await;
    assert_eq!(status, 200, "{document}");
    let jwks = Jwks::from_json(document.to_string().as_bytes())
        .unwrap_or_else(|e| panic!("the served JWKS: {e}"));
    (document, jwks)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_served_jwks_verifies_tokens_from_dev_tokens() {
    let dir = tempdir();
    let stack = start(dir.path()).await;
    let api = stack.http_addr();
    let (document, jwks) = served_jwks(api).await;
    assert_eq!(document["keys"][0]["kty"], "EC");
    assert_eq!(document["keys"][0]["alg"], "ES256");
    assert!(document["keys"][0].get("d").is_none(), "no private part");

    let request = json!({"user": "alice", "groups": ["makers"], "email": "alice@example.com"});
    let (status, body) = http(api, "POST", "/dev/tokens", None, Some(&request)).await;
    assert_eq!(status, 201, "{body}");
    let token = body["token"].as_str().unwrap_or_default();
    let validator = Validator::new(
        ValidatorConfig::new(ISSUER, [AUDIENCE], TokenUse::Id),
        jwks,
        Arc::new(SystemClock),
    );
    let claims = validator
        .validate(token)
        .unwrap_or_else(|e| panic!("the stack's token against its JWKS: {e}"));
    assert_eq!(claims.sub, "alice");
    assert_eq!(claims.username.as_deref(), Some("alice"));
    assert_eq!(claims.groups, ["makers"]);
    assert_eq!(claims.email.as_deref(), Some("alice@example.com"));
    assert_eq!(claims.email_verified, Some(true));
    assert_eq!(claims.client_id, AUDIENCE);
    assert_eq!(Some(claims.exp), body["expiresAt"].as_u64());

    // The stack accepts it too, and the key (so the JWKS) survives a restart.
    let (status, body) = http(api, "GET", "/v1/devices", Some(token), None).await;
    assert_eq!(status, 200, "{body}");
    stack.stop().await;
    let stack = start(dir.path()).await;
    let (again, _) = served_jwks(stack.http_addr()).await;
    assert_eq!(again, document);
    let (status, body) = http(stack.http_addr(), "GET", "/v1/devices", Some(token), None).await;
    assert_eq!(status, 200, "{body}");
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_signed_by_another_key_is_a_401() {
    let dir = tempdir();
    let stack = start(dir.path()).await;
    let api = stack.http_addr();
    let (_, jwks) = served_jwks(api).await;
    let stack_kid = jwks.keys()[0].kid().to_owned();
    let good = token(api, "alice", &[]).await;
    let (status, body) = http(api, "GET", "/v1/devices", Some(&good), None).await;
    assert_eq!(status, 200, "{body}");

    // Claims the stack would accept from its own key.
    let claims = json!({
        "sub": "alice", "cognito:username": "alice", "iss": ISSUER, "aud": AUDIENCE,
        "token_use": "id", "iat": now_secs(), "exp": now_secs() + 600,
    });
    let other = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)
        .unwrap_or_else(|e| panic!("{e}"));
    let other_key = EncodingKey::from_ec_der(&other.serialize_der());
    let other_kid = Jwk::with_thumbprint_kid(
        PublicKey::p256_from_sec1(other.public_key_raw()).unwrap_or_else(|e| panic!("{e}")),
    )
    .kid()
    .to_owned();
    let sign = |alg: Algorithm, kid: &str, key: &EncodingKey| {
        let mut header = Header::new(alg);
        header.kid = Some(kid.to_owned());
        jsonwebtoken::encode(&header, &claims, key).unwrap_or_else(|e| panic!("{e}"))
    };
    // Another stack's development token (another data directory, so another key and kid).
    let elsewhere = tempdir();
    let (foreign, _) = DevTokens::open(elsewhere.path(), Arc::new(SystemClock))
        .unwrap_or_else(|e| panic!("{e}"))
        .issue("alice", &[], None, DEFAULT_TTL)
        .unwrap_or_else(|e| panic!("{e}"));
    let hmac = EncodingKey::from_secret(stack_kid.as_bytes());
    for (what, forged) in [
        (
            "another key, the stack's kid",
            sign(Algorithm::ES256, &stack_kid, &other_key),
        ),
        (
            "another key, its own kid",
            sign(Algorithm::ES256, &other_kid, &other_key),
        ),
        ("another stack's token", foreign),
        (
            "HS256 under the stack's kid",
            sign(Algorithm::HS256, &stack_kid, &hmac),
        ),
    ] {
        let (status, body) = http(api, "GET", "/v1/devices", Some(&forged), None).await;
        assert_eq!(status, 401, "{what}: {body}");
        assert_eq!(body["type"], "urn:hearth:problem:unauthenticated", "{what}");
    }
    stack.stop().await;
}

/// Seconds since the epoch on the system clock (what the stack runs on in these tests).
fn now_secs() -> u64 {
    use hearth_ports::Clock as _;
    SystemClock.now_ms() / 1000
}
