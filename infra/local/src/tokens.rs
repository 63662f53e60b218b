//! Development tokens: JWTs for any user name and groups, signed with a key kept in the data
//! directory and validated the way API Gateway's JWT authorizer validates Cognito's (signature,
//! issuer, audience, expiry), then handed to the API as the same string claims API Gateway
//! passes (`cognito:groups` as `"[makers admins]"`).
//!
//! Get one with `POST /dev/tokens` on the running stack or `hearth-local token <user>`. They are
//! for the local stack only: the key (HS256, 256 bits) never leaves `<data dir>/dev-token.key`.

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use hearth_domain::device::UserId;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
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

const KEY_FILE: &str = "dev-token.key";

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
    /// The token failed validation (signature, issuer, audience, expiry, shape).
    #[error("invalid token: {0}")]
    Invalid(String),
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

/// The signing key and what it signs.
pub struct DevTokens {
    key: Vec<u8>,
}

impl std::fmt::Debug for DevTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DevTokens(..)")
    }
}

fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl DevTokens {
    /// The key in `data_dir`, created on first use (owner-only file).
    pub fn open(data_dir: &Path) -> Result<DevTokens, StackError> {
        let path = data_dir.join(KEY_FILE);
        let error = |e: &dyn std::fmt::Display| StackError::Storage {
            path: path.display().to_string(),
            detail: format!("development token key: {e}"),
        };
        match std::fs::read_to_string(&path) {
            Ok(hex) => {
                let key = decode_hex(hex.trim()).ok_or_else(|| error(&"not 64 hex digits"))?;
                Ok(DevTokens { key })
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                std::fs::create_dir_all(data_dir).map_err(|e| error(&e))?;
                let mut key = vec![0u8; 32];
                getrandom::fill(&mut key).map_err(|e| error(&e))?;
                let hex: String = key.iter().map(|b| format!("{b:02x}")).collect();
                match crate::provisioner::write_private(&path, &hex) {
                    Ok(()) => Ok(DevTokens { key }),
                    // Another process created it first: use that one.
                    Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Self::open(data_dir),
                    Err(e) => Err(error(&e)),
                }
            }
            Err(e) => Err(error(&e)),
        }
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
        let now = now_secs();
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
        let token = jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &EncodingKey::from_secret(&self.key),
        )
        .map_err(|e| TokenError::Invalid(e.to_string()))?;
        Ok((token, exp))
    }

    /// Validates `token` (HS256 signature, issuer, audience, expiry with no leeway) and returns
    /// its claims as API Gateway passes them to a function: every value a string, arrays as
    /// `"[a b]"`.
    pub fn verify(&self, token: &str) -> Result<HashMap<String, String>, TokenError> {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_issuer(&[ISSUER]);
        validation.set_audience(&[AUDIENCE]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.leeway = 0;
        let data = jsonwebtoken::decode::<HashMap<String, Value>>(
            token,
            &DecodingKey::from_secret(&self.key),
            &validation,
        )
        .map_err(|e| TokenError::Invalid(e.to_string()))?;
        Ok(data
            .claims
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

fn decode_hex(hex: &str) -> Option<Vec<u8>> {
    if hex.len() != 64 {
        return None;
    }
    (0..hex.len())
        .step_by(2)
        .map(|i| {
            hex.get(i..i + 2)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens() -> (tempfile::TempDir, DevTokens) {
        let dir = match tempfile::tempdir() {
            Ok(dir) => dir,
            Err(e) => panic!("{e}"),
        };
        match DevTokens::open(dir.path()) {
            Ok(tokens) => (dir, tokens),
            Err(e) => panic!("{e}"),
        }
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
        let sign = |claims: &Claims| {
            jsonwebtoken::encode(
                &Header::new(Algorithm::HS256),
                claims,
                &EncodingKey::from_secret(&tokens.key),
            )
            .unwrap_or_else(|e| panic!("{e}"))
        };
        assert!(tokens.verify(&sign(&claims)).is_err(), "expired");
        let foreign = Claims {
            exp: now_secs() + 60,
            aud: "someone-else".to_owned(),
            ..claims
        };
        assert!(tokens.verify(&sign(&foreign)).is_err(), "wrong audience");
        let unsigned = Header::new(Algorithm::HS384);
        let other_alg = jsonwebtoken::encode(
            &unsigned,
            &Claims {
                aud: AUDIENCE.to_owned(),
                ..foreign
            },
            &EncodingKey::from_secret(&tokens.key),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert!(tokens.verify(&other_alg).is_err(), "only HS256");
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
        let reopened = DevTokens::open(dir.path()).unwrap_or_else(|e| panic!("{e}"));
        assert!(reopened.verify(&token).is_ok(), "same key after a restart");
    }
}
