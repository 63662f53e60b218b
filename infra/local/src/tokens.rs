//! Development tokens: JWTs for any user name and groups, signed (ES256) with a P-256 key kept
//! in the data directory and validated by `hearth-auth` against the stack's JWKS document — the
//! same code and checks as for Cognito's tokens in AWS (signature by `kid`, the algorithm pinned
//! to the key's, issuer, audience, `token_use`, expiry) — then handed to the API as the same
//! string claims API Gateway passes (`cognito:groups` as `"[makers admins]"`).
//!
//! Get one with `POST /dev/tokens` on the running stack or `hearth-local token <user>`; the
//! public key is served at `GET /.well-known/jwks.json`, its `kid` the key's RFC 7638
//! thumbprint. They are for the local stack only: the private key (PKCS#8 PEM, owner-only file)
//! never leaves `<data dir>/dev-token-es256.pem`.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use hearth_auth::{AuthError, Jwk, Jwks, PublicKey, TokenUse, Validator, ValidatorConfig};
use hearth_domain::device::UserId;
use hearth_ports::Clock;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::stack::StackError;

/// The `iss` of development tokens.
pub const ISSUER: &str = "hearth-local";
/// The `aud` of development tokens (the apps' client id, locally).
pub const AUDIENCE: &str = "hearth-local-apps";
/// How long a token is valid unless asked otherwise.
pub const DEFAULT_TTL: Duration = Duration::from_secs(3600);
/// The longest validity a token may ask for.
pub const MAX_TTL: Duration = Duration::from_secs(7 * 24 * 3600);
/// Where the local stack serves the development tokens' public key.
pub const JWKS_PATH: &str = "/.well-known/jwks.json";

/// The signing key, PKCS#8 PEM. (`dev-token.key`, the HS256 secret of earlier versions, is
/// no longer read.)
const KEY_FILE: &str = "dev-token-es256.pem";

/// Why a token was not issued or not accepted.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TokenError {
    /// The user name is not a valid user id.
    #[error("user {0:?} is not a valid user name (letters, digits, '_', '-', '.', '@', '+')")]
    User(String),
    /// A group name is empty or contains a space or a bracket.
    #[error("group {0:?} is not a valid group name")]
    Group(String),
    /// The token failed validation (which check says the inner error).
    #[error("invalid token: {0}")]
    Invalid(#[from] AuthError),
    /// The token could not be signed.
    #[error("could not sign the token: {0}")]
    Signing(String),
}

#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    sub: String,
    iss: String,
    aud: String,
    iat: u64,
    exp: u64,
    token_use: String,
    #[serde(rename = "cognito:username")]
    username: String,
    #[serde(
        rename = "cognito:groups",
        default,
        skip_serializing_if = "Vec::is_empty"
    )]
    groups: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    email_verified: Option<bool>,
}

/// The signing key, the JWKS document of its public half, and the validator of what it signs.
pub struct DevTokens {
    key: EncodingKey,
    kid: String,
    jwks: Value,
    validator: Validator,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for DevTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DevTokens")
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

impl DevTokens {
    /// The key in `data_dir`, created on first use (owner-only file); tokens are issued and
    /// checked at `clock`'s time.
    pub fn open(data_dir: &Path, clock: Arc<dyn Clock>) -> Result<DevTokens, StackError> {
        let path = data_dir.join(KEY_FILE);
        let error = |e: &dyn std::fmt::Display| StackError::Storage {
            path: path.display().to_string(),
            detail: format!("development token key: {e}"),
        };
        let pem = match std::fs::read_to_string(&path) {
            Ok(pem) => pem,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                std::fs::create_dir_all(data_dir).map_err(|e| error(&e))?;
                let pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)
                    .map_err(|e| error(&e))?;
                let pem = pair.serialize_pem();
                match crate::provisioner::write_private(&path, &pem) {
                    Ok(()) => pem,
                    // Another process created it first: use that one.
                    Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                        return Self::open(data_dir, clock);
                    }
                    Err(e) => return Err(error(&e)),
                }
            }
            Err(e) => return Err(error(&e)),
        };
        let pair = rcgen::KeyPair::from_pem(&pem).map_err(|e| error(&e))?;
        if pair.algorithm() != &rcgen::PKCS_ECDSA_P256_SHA256 {
            return Err(error(&"not a P-256 key"));
        }
        let public = PublicKey::p256_from_sec1(pair.public_key_raw()).map_err(|e| error(&e))?;
        let jwk = Jwk::with_thumbprint_kid(public);
        let kid = jwk.kid().to_owned();
        let jwks = Jwks::new(vec![jwk]).map_err(|e| error(&e))?.to_json();
        // The validator reads the very document the stack serves, as a validator in AWS reads
        // Cognito's.
        let served = Jwks::from_json(jwks.to_string().as_bytes()).map_err(|e| error(&e))?;
        let config = ValidatorConfig::new(ISSUER, [AUDIENCE], TokenUse::Id);
        Ok(DevTokens {
            key: EncodingKey::from_ec_der(&pair.serialize_der()),
            kid,
            jwks,
            validator: Validator::new(config, served, clock.clone()),
            clock,
        })
    }

    /// The key's id (its RFC 7638 thumbprint), the `kid` of every token it signs.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The public key as a JWKS document (what `GET /.well-known/jwks.json` serves).
    pub fn jwks(&self) -> &Value {
        &self.jwks
    }

    /// The `GET /.well-known/jwks.json` response.
    pub fn jwks_response(&self) -> Response {
        let mut response = Json(self.jwks.clone()).into_response();
        response.headers_mut().insert(
            header::CACHE_CONTROL,
            HeaderValue::from_static("public, max-age=300"),
        );
        response
    }

    /// A token for `user` in `groups`, with a verified `email` if given, valid for `ttl`
    /// (at most [`MAX_TTL`]). Returns the token and its expiry (seconds since the epoch).
    pub fn issue(
        &self,
        user: &str,
        groups: &[String],
        email: Option<&str>,
        ttl: Duration,
    ) -> Result<(String, u64), TokenError> {
        UserId::parse(user).map_err(|_| TokenError::User(user.to_owned()))?;
        if let Some(bad) = groups
            .iter()
            .find(|g| g.is_empty() || g.len() > 128 || g.contains([' ', '[', ']', ',']))
        {
            return Err(TokenError::Group(bad.clone()));
        }
        let now = self.clock.now_ms() / 1000;
        let exp = now + ttl.min(MAX_TTL).as_secs().max(1);
        let claims = Claims {
            sub: user.to_owned(),
            iss: ISSUER.to_owned(),
            aud: AUDIENCE.to_owned(),
            iat: now,
            exp,
            token_use: "id".to_owned(),
            username: user.to_owned(),
            groups: groups.to_vec(),
            email: email.map(str::to_owned),
            email_verified: email.map(|_| true),
        };
        Ok((self.sign(&claims)?, exp))
    }

    fn sign(&self, claims: &Claims) -> Result<String, TokenError> {
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, claims, &self.key)
            .map_err(|e| TokenError::Signing(e.to_string()))
    }

    /// Validates `token` with `hearth-auth` against the JWKS (ES256 signature by `kid`,
    /// issuer, audience, `token_use: id`, expiry with no leeway) and returns its claims as API
    /// Gateway passes them to a function: every value a string, arrays as `"[a b]"`.
    pub fn verify(&self, token: &str) -> Result<HashMap<String, String>, TokenError> {
        let claims = self.validator.validate(token)?;
        Ok(claims
            .raw
            .into_iter()
            .map(|(name, value)| (name, as_gateway_string(value)))
            .collect())
    }
}

/// A claim value the way API Gateway's HTTP API renders it for a function.
fn as_gateway_string(value: Value) -> String {
    match value {
        Value::String(s) => s,
        Value::Array(items) => {
            let items: Vec<String> = items.into_iter().map(as_gateway_string).collect();
            format!("[{}]", items.join(" "))
        }
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use hearth_ports::{ManualClock, SystemClock};

    use super::*;

    fn now_secs() -> u64 {
        SystemClock.now_ms() / 1000
    }

    fn open(dir: &Path) -> DevTokens {
        DevTokens::open(dir, Arc::new(SystemClock)).unwrap_or_else(|e| panic!("{e}"))
    }

    fn tokens() -> (tempfile::TempDir, DevTokens) {
        let dir = match tempfile::tempdir() {
            Ok(dir) => dir,
            Err(e) => panic!("{e}"),
        };
        let tokens = open(dir.path());
        (dir, tokens)
    }

    #[test]
    fn tokens_carry_claims_shaped_like_api_gateways() {
        let (_dir, tokens) = tokens();
        let groups = vec!["makers".to_owned(), "admins".to_owned()];
        let (token, exp) = tokens
            .issue("alice", &groups, Some("alice@example.com"), DEFAULT_TTL)
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(exp > now_secs());
        let claims = tokens.verify(&token).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(claims["sub"], "alice");
        assert_eq!(claims["cognito:groups"], "[makers admins]");
        assert_eq!(claims["email_verified"], "true");
        assert_eq!(claims["iss"], ISSUER);
        assert_eq!(claims["exp"], exp.to_string());
        let caller = hearth_api::Caller::from_claims(&claims).unwrap_or_else(|| panic!("caller"));
        assert!(caller.is_maker());
        assert_eq!(caller.email.as_deref(), Some("alice@example.com"));
    }

    #[test]
    fn forged_expired_and_foreign_tokens_are_refused() {
        let (_dir, tokens) = tokens();
        let (_other_dir, other) = self::tokens();
        let (token, _) = tokens
            .issue("alice", &[], None, DEFAULT_TTL)
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(other.verify(&token).is_err(), "signed with another key");
        let mut tampered = token;
        tampered.insert(tampered.len() - 2, 'A');
        assert!(tokens.verify(&tampered).is_err());
        assert!(tokens.verify("not.a.token").is_err());
        // Expired: issued by hand one minute in the past.
        let claims = Claims {
            sub: "alice".to_owned(),
            iss: ISSUER.to_owned(),
            aud: AUDIENCE.to_owned(),
            iat: now_secs() - 120,
            exp: now_secs() - 60,
            token_use: "id".to_owned(),
            username: "alice".to_owned(),
            groups: Vec::new(),
            email: None,
            email_verified: None,
        };
        let sign = |claims: &Claims| tokens.sign(claims).unwrap_or_else(|e| panic!("{e}"));
        assert!(matches!(
            tokens.verify(&sign(&claims)),
            Err(TokenError::Invalid(AuthError::Expired))
        ));
        let foreign = Claims {
            exp: now_secs() + 60,
            aud: "someone-else".to_owned(),
            ..claims
        };
        assert!(tokens.verify(&sign(&foreign)).is_err(), "wrong audience");
        // Another algorithm under the key's kid (an HMAC keyed with the public key): refused.
        let mut unsigned = Header::new(Algorithm::HS384);
        unsigned.kid = Some(tokens.kid().to_owned());
        let other_alg = jsonwebtoken::encode(
            &unsigned,
            &Claims {
                aud: AUDIENCE.to_owned(),
                ..foreign
            },
            &EncodingKey::from_secret(tokens.jwks().to_string().as_bytes()),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert!(tokens.verify(&other_alg).is_err(), "only ES256");
    }

    #[test]
    fn tokens_expire_on_the_stacks_clock() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let clock = Arc::new(ManualClock::new(1_767_225_600_000));
        let tokens = DevTokens::open(dir.path(), clock.clone()).unwrap_or_else(|e| panic!("{e}"));
        let (token, exp) = tokens
            .issue("alice", &[], None, Duration::from_secs(60))
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(exp, 1_767_225_660, "issued at the clock's time");
        assert!(tokens.verify(&token).is_ok());
        clock.advance(Duration::from_secs(60));
        assert!(matches!(
            tokens.verify(&token),
            Err(TokenError::Invalid(AuthError::Expired))
        ));
    }

    #[test]
    fn the_key_is_a_private_p256_pem_named_by_its_thumbprint() {
        let (dir, tokens) = tokens();
        let path = dir.path().join(KEY_FILE);
        let pem = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{e}"));
        assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----"), "PKCS#8");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&path)
                .unwrap_or_else(|e| panic!("{e}"))
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let jwks =
            Jwks::from_json(tokens.jwks().to_string().as_bytes()).unwrap_or_else(|e| panic!("{e}"));
        let [key] = jwks.keys() else {
            panic!("one key")
        };
        assert_eq!(key.kid(), tokens.kid());
        assert_eq!(key.key().thumbprint(), tokens.kid());
        assert_eq!(key.algorithm(), Algorithm::ES256);
        assert!(
            tokens.jwks()["keys"][0].get("d").is_none(),
            "no private part"
        );
        let (token, _) = tokens
            .issue("alice", &[], None, DEFAULT_TTL)
            .unwrap_or_else(|e| panic!("{e}"));
        let header = jsonwebtoken::decode_header(&token).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(header.alg, Algorithm::ES256);
        assert_eq!(header.kid.as_deref(), Some(tokens.kid()));
    }

    #[test]
    fn bad_names_get_no_token_and_the_key_is_kept() {
        let (dir, tokens) = tokens();
        assert!(matches!(
            tokens.issue("a b", &[], None, DEFAULT_TTL),
            Err(TokenError::User(_))
        ));
        assert!(matches!(
            tokens.issue("a", &["x y".to_owned()], None, DEFAULT_TTL),
            Err(TokenError::Group(_))
        ));
        let (token, _) = tokens
            .issue("bob", &[], None, DEFAULT_TTL)
            .unwrap_or_else(|e| panic!("{e}"));
        let reopened = open(dir.path());
        assert!(reopened.verify(&token).is_ok(), "same key after a restart");
    }
}
