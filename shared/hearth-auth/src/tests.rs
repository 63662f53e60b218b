//! Each check of the validator and the key set, with keys made here (P-256 by `rcgen`) or read
//! from a fixture (an RSA key made once with `openssl genrsa -traditional 2048`).

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use hearth_ports::ManualClock;
use jsonwebtoken::{EncodingKey, Header};
use serde_json::{Value, json};

use crate::{
    Algorithm, AuthError, Jwk, Jwks, JwksError, PublicKey, TokenUse, Validator, ValidatorConfig,
};

const ISSUER: &str = "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_Example";
const CLIENT: &str = "apps-client-id";
/// 2026-01-01T00:00:00Z: the manual clock's start.
const T0: u64 = 1_767_225_600;

struct Signer {
    encoding: EncodingKey,
    public: PublicKey,
}

impl Signer {
    fn p256() -> Signer {
        let pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)
            .unwrap_or_else(|e| panic!("P-256 key: {e}"));
        Signer {
            encoding: EncodingKey::from_ec_der(&pair.serialize_der()),
            public: PublicKey::p256_from_sec1(pair.public_key_raw())
                .unwrap_or_else(|e| panic!("{e}")),
        }
    }

    fn rsa() -> &'static Signer {
        static RSA: OnceLock<Signer> = OnceLock::new();
        RSA.get_or_init(|| {
            let pem = include_str!("../tests/fixtures/rsa-2048.pem");
            let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
            let der = STANDARD
                .decode(body)
                .unwrap_or_else(|e| panic!("fixture: {e}"));
            let encoding = EncodingKey::from_rsa_der(&der);
            let jwk = jsonwebtoken::jwk::Jwk::from_encoding_key(&encoding, Algorithm::RS256)
                .unwrap_or_else(|e| panic!("fixture: {e}"));
            let jsonwebtoken::jwk::AlgorithmParameters::RSA(rsa) = jwk.algorithm else {
                panic!("not an RSA key");
            };
            let decode = |s: &str| URL_SAFE_NO_PAD.decode(s).unwrap_or_else(|e| panic!("{e}"));
            let public =
                PublicKey::rsa(&decode(&rsa.n), &decode(&rsa.e)).unwrap_or_else(|e| panic!("{e}"));
            Signer { encoding, public }
        })
    }

    fn sign(&self, alg: Algorithm, kid: Option<&str>, claims: &Value) -> String {
        let mut header = Header::new(alg);
        header.kid = kid.map(str::to_owned);
        jsonwebtoken::encode(&header, claims, &self.encoding).unwrap_or_else(|e| panic!("{e}"))
    }
}

/// A Cognito-shaped ID token's claims, valid from T0 for an hour.
fn id_claims() -> Value {
    json!({
        "sub": "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee",
        "cognito:groups": ["makers", "admins"],
        "email_verified": true,
        "iss": ISSUER,
        "cognito:username": "alice",
        "origin_jti": "x",
        "aud": CLIENT,
        "event_id": "y",
        "token_use": "id",
        "auth_time": T0,
        "exp": T0 + 3600,
        "iat": T0,
        "jti": "z",
        "email": "alice@example.com",
    })
}

/// A Cognito-shaped access token's claims.
fn access_claims() -> Value {
    json!({
        "sub": "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee",
        "cognito:groups": ["makers"],
        "iss": ISSUER,
        "client_id": CLIENT,
        "token_use": "access",
        "scope": "openid email hearth/devices.read",
        "auth_time": T0,
        "exp": T0 + 3600,
        "iat": T0,
        "jti": "z",
        "username": "alice",
    })
}

fn with(mut claims: Value, name: &str, value: Value) -> Value {
    if let Value::Object(members) = &mut claims {
        if value.is_null() {
            members.remove(name);
        } else {
            members.insert(name.to_owned(), value);
        }
    }
    claims
}

fn validator(keys: &[&Signer], token_use: TokenUse) -> (Arc<ManualClock>, Validator) {
    let jwks = Jwks::new(
        keys.iter()
            .map(|s| Jwk::with_thumbprint_kid(s.public.clone()))
            .collect(),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let clock = Arc::new(ManualClock::new(T0 * 1000));
    let config = ValidatorConfig::new(ISSUER, ["other-client", CLIENT], token_use);
    (clock.clone(), Validator::new(config, jwks, clock))
}

fn kid(signer: &Signer) -> String {
    signer.public.thumbprint()
}

#[test]
fn es256_and_rs256_id_tokens_give_typed_claims() {
    let ec = Signer::p256();
    let rsa = Signer::rsa();
    let (_clock, validator) = validator(&[&ec, rsa], TokenUse::Id);
    for (signer, alg) in [(&ec, Algorithm::ES256), (rsa, Algorithm::RS256)] {
        let token = signer.sign(alg, Some(&kid(signer)), &id_claims());
        let claims = validator
            .validate(&token)
            .unwrap_or_else(|e| panic!("{alg:?}: {e}"));
        assert_eq!(claims.sub, "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee");
        assert_eq!(claims.username.as_deref(), Some("alice"));
        assert_eq!(claims.email.as_deref(), Some("alice@example.com"));
        assert_eq!(claims.email_verified, Some(true));
        assert_eq!(claims.groups, ["makers", "admins"]);
        assert_eq!(claims.token_use, TokenUse::Id);
        assert_eq!(claims.client_id, CLIENT);
        assert!(claims.scope.is_empty());
        assert_eq!(claims.exp, T0 + 3600);
        assert_eq!(claims.raw.get("jti"), Some(&json!("z")));
    }
}

#[test]
fn access_tokens_are_checked_by_client_id_and_token_use() {
    let ec = Signer::p256();
    let (_clock, access) = validator(&[&ec], TokenUse::Access);
    let token = ec.sign(Algorithm::ES256, Some(&kid(&ec)), &access_claims());
    let claims = access.validate(&token).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(claims.client_id, CLIENT);
    assert_eq!(claims.username.as_deref(), Some("alice"));
    assert_eq!(claims.scope, ["openid", "email", "hearth/devices.read"]);
    assert_eq!(claims.token_use, TokenUse::Access);

    let foreign = with(access_claims(), "client_id", json!("someone-else"));
    let token = ec.sign(Algorithm::ES256, Some(&kid(&ec)), &foreign);
    assert_eq!(access.validate(&token), Err(AuthError::Audience));
    let no_client = with(access_claims(), "client_id", Value::Null);
    let token = ec.sign(Algorithm::ES256, Some(&kid(&ec)), &no_client);
    assert_eq!(
        access.validate(&token),
        Err(AuthError::MissingClaim("client_id"))
    );

    // An ID token is not an access token, and the other way round.
    let id_token = ec.sign(Algorithm::ES256, Some(&kid(&ec)), &id_claims());
    assert_eq!(
        access.validate(&id_token),
        Err(AuthError::TokenUse {
            expected: TokenUse::Access
        })
    );
    let (_clock, id) = validator(&[&ec], TokenUse::Id);
    let access_token = ec.sign(Algorithm::ES256, Some(&kid(&ec)), &access_claims());
    assert_eq!(
        id.validate(&access_token),
        Err(AuthError::TokenUse {
            expected: TokenUse::Id
        })
    );
    let no_use = with(id_claims(), "token_use", Value::Null);
    let token = ec.sign(Algorithm::ES256, Some(&kid(&ec)), &no_use);
    assert_eq!(
        id.validate(&token),
        Err(AuthError::MissingClaim("token_use"))
    );
}

#[test]
fn the_key_is_chosen_by_kid_and_an_unknown_or_missing_kid_is_refused() {
    let ec = Signer::p256();
    let other = Signer::p256();
    let (_clock, validator) = validator(&[&ec], TokenUse::Id);
    let token = other.sign(Algorithm::ES256, Some(&kid(&other)), &id_claims());
    assert_eq!(
        validator.validate(&token),
        Err(AuthError::UnknownKey(kid(&other)))
    );
    let token = ec.sign(Algorithm::ES256, None, &id_claims());
    assert_eq!(validator.validate(&token), Err(AuthError::MissingKid));
}

#[test]
fn a_token_signed_by_another_key_under_a_known_kid_is_refused() {
    let ec = Signer::p256();
    let impostor = Signer::p256();
    let (_clock, validator) = validator(&[&ec, Signer::rsa()], TokenUse::Id);
    let token = impostor.sign(Algorithm::ES256, Some(&kid(&ec)), &id_claims());
    assert_eq!(validator.validate(&token), Err(AuthError::Signature));

    // Tampered payload: the signature no longer matches.
    let good = ec.sign(Algorithm::ES256, Some(&kid(&ec)), &id_claims());
    let forged_claims = with(id_claims(), "cognito:groups", json!(["admins"]));
    let forged_payload = URL_SAFE_NO_PAD.encode(forged_claims.to_string());
    let parts: Vec<&str> = good.split('.').collect();
    let tampered = format!("{}.{forged_payload}.{}", parts[0], parts[2]);
    assert_eq!(validator.validate(&tampered), Err(AuthError::Signature));
}

#[test]
fn the_algorithm_is_pinned_to_the_key() {
    let ec = Signer::p256();
    let rsa = Signer::rsa();
    let (_clock, validator) = validator(&[&ec, rsa], TokenUse::Id);
    let payload = URL_SAFE_NO_PAD.encode(id_claims().to_string());

    // alg "none", with and without a signature.
    let header = URL_SAFE_NO_PAD.encode(json!({"alg": "none", "kid": kid(&ec)}).to_string());
    for token in [
        format!("{header}.{payload}."),
        format!("{header}.{payload}.c2ln"),
    ] {
        assert!(
            matches!(validator.validate(&token), Err(AuthError::Algorithm { ref found, expected: Algorithm::ES256 }) if found == "none"),
            "alg none"
        );
    }

    // HS256 with the public key as the HMAC secret (the classic confusion), for both keys.
    let PublicKey::P256 { x, y } = &ec.public else {
        panic!("P-256")
    };
    let mut point = vec![4u8];
    point.extend_from_slice(x);
    point.extend_from_slice(y);
    let hs = Signer {
        encoding: EncodingKey::from_secret(&point),
        public: ec.public.clone(),
    };
    let token = hs.sign(Algorithm::HS256, Some(&kid(&ec)), &id_claims());
    assert_eq!(
        validator.validate(&token),
        Err(AuthError::Algorithm {
            found: "HS256".to_owned(),
            expected: Algorithm::ES256
        })
    );
    let token = hs.sign(Algorithm::HS256, Some(&kid(rsa)), &id_claims());
    assert_eq!(
        validator.validate(&token),
        Err(AuthError::Algorithm {
            found: "HS256".to_owned(),
            expected: Algorithm::RS256
        })
    );

    // A real RS256 signature presented under the EC key's kid, and ES384-labelled ES256.
    let token = rsa.sign(Algorithm::RS256, Some(&kid(&ec)), &id_claims());
    assert!(matches!(
        validator.validate(&token),
        Err(AuthError::Algorithm {
            expected: Algorithm::ES256,
            ..
        })
    ));
    let token = rsa.sign(Algorithm::PS256, Some(&kid(rsa)), &id_claims());
    assert!(matches!(
        validator.validate(&token),
        Err(AuthError::Algorithm {
            expected: Algorithm::RS256,
            ..
        })
    ));
}

#[test]
fn issuer_and_audience_must_be_the_configured_ones() {
    let ec = Signer::p256();
    let (_clock, validator) = validator(&[&ec], TokenUse::Id);
    let sign = |claims: &Value| ec.sign(Algorithm::ES256, Some(&kid(&ec)), claims);

    let token = sign(&with(id_claims(), "iss", json!("https://evil.example")));
    assert_eq!(validator.validate(&token), Err(AuthError::Issuer));
    let token = sign(&with(id_claims(), "iss", Value::Null));
    assert_eq!(
        validator.validate(&token),
        Err(AuthError::MissingClaim("iss"))
    );
    let token = sign(&with(id_claims(), "aud", json!("someone-else")));
    assert_eq!(validator.validate(&token), Err(AuthError::Audience));
    let token = sign(&with(id_claims(), "aud", Value::Null));
    assert_eq!(
        validator.validate(&token),
        Err(AuthError::MissingClaim("aud"))
    );
    let token = sign(&with(id_claims(), "aud", json!(["x", "y"])));
    assert_eq!(validator.validate(&token), Err(AuthError::Audience));
    let token = sign(&with(id_claims(), "aud", json!(["x", CLIENT])));
    let claims = validator.validate(&token).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(claims.client_id, CLIENT);
    let token = sign(&with(id_claims(), "aud", json!(7)));
    assert_eq!(validator.validate(&token), Err(AuthError::ClaimType("aud")));
    let token = sign(&with(id_claims(), "sub", Value::Null));
    assert_eq!(
        validator.validate(&token),
        Err(AuthError::MissingClaim("sub"))
    );
    let token = sign(&with(id_claims(), "cognito:groups", json!("admins")));
    assert_eq!(
        validator.validate(&token),
        Err(AuthError::ClaimType("cognito:groups"))
    );
}

#[test]
fn a_token_expires_on_the_clock_not_the_system_time() {
    let ec = Signer::p256();
    let (clock, validator) = validator(&[&ec], TokenUse::Id);
    let token = ec.sign(Algorithm::ES256, Some(&kid(&ec)), &id_claims());
    assert!(validator.validate(&token).is_ok(), "at T0");
    clock.advance(Duration::from_millis(3600 * 1000 - 1));
    assert!(validator.validate(&token).is_ok(), "1 ms before exp");
    clock.advance(Duration::from_millis(1));
    assert_eq!(
        validator.validate(&token),
        Err(AuthError::Expired),
        "at exp"
    );

    let token = ec.sign(
        Algorithm::ES256,
        Some(&kid(&ec)),
        &with(id_claims(), "exp", Value::Null),
    );
    assert_eq!(
        validator.validate(&token),
        Err(AuthError::MissingClaim("exp"))
    );
    let token = ec.sign(
        Algorithm::ES256,
        Some(&kid(&ec)),
        &with(id_claims(), "exp", json!("tomorrow")),
    );
    assert_eq!(validator.validate(&token), Err(AuthError::ClaimType("exp")));
}

#[test]
fn leeway_is_small_and_applies_to_exp_nbf_and_iat() {
    let ec = Signer::p256();
    let jwks = Jwks::new(vec![Jwk::with_thumbprint_kid(ec.public.clone())])
        .unwrap_or_else(|e| panic!("{e}"));
    let clock = Arc::new(ManualClock::new(T0 * 1000));
    let config =
        ValidatorConfig::new(ISSUER, [CLIENT], TokenUse::Id).with_leeway(Duration::from_secs(30));
    let validator = Validator::new(config, jwks, clock.clone());

    // nbf and iat 20 s ahead: inside the leeway; 40 s ahead: outside.
    let sign = |claims: &Value| ec.sign(Algorithm::ES256, Some(&kid(&ec)), claims);
    let soon = sign(&with(id_claims(), "nbf", json!(T0 + 20)));
    assert!(validator.validate(&soon).is_ok());
    let later = sign(&with(id_claims(), "nbf", json!(T0 + 40)));
    assert_eq!(validator.validate(&later), Err(AuthError::NotYetValid));
    let issued_later = sign(&with(id_claims(), "iat", json!(T0 + 40)));
    assert_eq!(
        validator.validate(&issued_later),
        Err(AuthError::IssuedInFuture)
    );
    let issued_soon = sign(&with(id_claims(), "iat", json!(T0 + 20)));
    assert!(validator.validate(&issued_soon).is_ok());

    // exp: still accepted 29 s after, refused 30 s after.
    let token = sign(&id_claims());
    clock.advance(Duration::from_secs(3600 + 29));
    assert!(validator.validate(&token).is_ok());
    assert!(validator.validate(&later).is_ok(), "nbf has come");
    clock.advance(Duration::from_secs(1));
    assert_eq!(validator.validate(&token), Err(AuthError::Expired));

    // The leeway is capped.
    let capped = ValidatorConfig::new(ISSUER, [CLIENT], TokenUse::Id)
        .with_leeway(Duration::from_secs(86_400));
    assert_eq!(
        capped,
        ValidatorConfig::new(ISSUER, [CLIENT], TokenUse::Id).with_leeway(crate::MAX_LEEWAY)
    );
}

#[test]
fn malformed_tokens_are_refused_with_what_is_wrong() {
    let ec = Signer::p256();
    let (_clock, validator) = validator(&[&ec], TokenUse::Id);
    assert!(matches!(
        validator.validate("not.a"),
        Err(AuthError::Malformed(_))
    ));
    assert!(matches!(
        validator.validate("a.b.c.d"),
        Err(AuthError::Malformed(_))
    ));
    assert!(matches!(
        validator.validate("!!.b.c"),
        Err(AuthError::Malformed(_))
    ));
    let header = URL_SAFE_NO_PAD
        .encode(json!({"alg": "ES256", "kid": kid(&ec), "crit": ["exp"], "exp": 1}).to_string());
    let token = ec.sign(Algorithm::ES256, Some(&kid(&ec)), &id_claims());
    let rest = token.split_once('.').map_or("", |(_, rest)| rest);
    assert_eq!(
        validator.validate(&format!("{header}.{rest}")),
        Err(AuthError::Malformed(
            "critical header extensions are not supported"
        ))
    );
    let long = "a".repeat(17 * 1024);
    assert!(matches!(
        validator.validate(&long),
        Err(AuthError::Malformed(_))
    ));
    // No error repeats the token.
    let refused = validator.validate(&format!("{token}x")).map_or_else(
        |e| e.to_string(),
        |_| panic!("accepted a changed signature"),
    );
    assert!(!refused.contains(&token[..20]));
}

#[test]
fn a_jwks_document_round_trips_and_cognitos_shape_parses() {
    let ec = Signer::p256();
    let rsa = Signer::rsa();
    let jwks = Jwks::new(vec![
        Jwk::with_thumbprint_kid(ec.public),
        Jwk::new("cognito-kid-1", rsa.public.clone()),
    ])
    .unwrap_or_else(|e| panic!("{e}"));
    let document = jwks.to_json();
    assert_eq!(document["keys"][0]["kty"], "EC");
    assert_eq!(document["keys"][0]["crv"], "P-256");
    assert_eq!(document["keys"][0]["alg"], "ES256");
    assert_eq!(document["keys"][0]["use"], "sig");
    assert_eq!(document["keys"][1]["alg"], "RS256");
    assert_eq!(document["keys"][1]["e"], "AQAB");
    let parsed = Jwks::from_json(document.to_string().as_bytes()).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(parsed, jwks);
    assert_eq!(
        parsed.get("cognito-kid-1").map(Jwk::algorithm),
        Some(Algorithm::RS256)
    );

    // Keys Hearth does not verify with are ignored (RFC 7517 §5), the others kept.
    let mut keys = document["keys"].as_array().cloned().unwrap_or_default();
    keys.push(json!({"kty": "OKP", "crv": "Ed25519", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo", "kid": "ed"}));
    keys.push(json!({"kty": "EC", "crv": "P-384", "x": "AA", "y": "AA", "kid": "p384"}));
    keys.push(json!({"kty": "RSA", "alg": "PS256", "n": "AA", "e": "AQAB", "kid": "pss"}));
    keys.push(json!({"kty": "RSA", "use": "enc", "n": "AA", "e": "AQAB", "kid": "enc"}));
    keys.push(json!({"kty": "oct", "k": "c2VjcmV0", "kid": "hmac"}));
    let parsed = Jwks::from_json(json!({"keys": keys}).to_string().as_bytes())
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(parsed, jwks);
}

#[test]
fn bad_jwks_documents_are_errors() {
    let ec = Signer::p256();
    let good = Jwk::with_thumbprint_kid(ec.public.clone()).to_json();
    let parse = |doc: Value| Jwks::from_json(doc.to_string().as_bytes());
    assert!(matches!(Jwks::from_json(b"{"), Err(JwksError::Json(_))));
    assert!(matches!(parse(json!([])), Err(JwksError::Shape(_))));
    assert_eq!(parse(json!({"keys": []})), Err(JwksError::NoUsableKeys));
    assert_eq!(
        parse(json!({"keys": [good, good]})),
        Err(JwksError::DuplicateKid(kid(&ec)))
    );
    let private = with(good.clone(), "d", json!("AAAA"));
    assert_eq!(
        parse(json!({"keys": [private]})),
        Err(JwksError::PrivateKey { index: 0 })
    );
    let short = with(good.clone(), "x", json!("AAAA"));
    assert!(matches!(
        parse(json!({"keys": [short]})),
        Err(JwksError::InvalidKey { index: 0, .. })
    ));
    let no_kid = with(good, "kid", Value::Null);
    assert!(matches!(
        parse(json!({"keys": [no_kid]})),
        Err(JwksError::InvalidKey { index: 0, .. })
    ));
    let weak_rsa = json!({"kty": "RSA", "n": URL_SAFE_NO_PAD.encode([0xffu8; 128]), "e": "AQAB", "kid": "weak"});
    assert!(matches!(
        parse(json!({"keys": [weak_rsa]})),
        Err(JwksError::InvalidKey { index: 0, .. })
    ));
    assert!(PublicKey::p256_from_sec1(&[4u8; 33]).is_err());
}

#[test]
fn thumbprints_follow_rfc_7638() {
    // RFC 7638 §3.1's example key and thumbprint.
    let n = "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw";
    let key = PublicKey::rsa(
        &URL_SAFE_NO_PAD.decode(n).unwrap_or_else(|e| panic!("{e}")),
        &[1, 0, 1],
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        key.thumbprint(),
        "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
    );

    // An EC key's agrees with jsonwebtoken's own implementation.
    let ec = Signer::p256();
    let theirs = jsonwebtoken::jwk::Jwk::from_encoding_key(&ec.encoding, Algorithm::ES256)
        .unwrap_or_else(|e| panic!("{e}"))
        .thumbprint(jsonwebtoken::jwk::ThumbprintHash::SHA256);
    assert_eq!(ec.public.thumbprint(), theirs);
}
