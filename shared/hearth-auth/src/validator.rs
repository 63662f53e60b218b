//! The validator: what API Gateway's JWT authorizer checks (`kid`, algorithm and signature,
//! `iss`, `aud` or `client_id`, `exp`, `nbf`, `iat`) plus Cognito's `token_use`, with time
//! from a [`Clock`] so that tests can step it.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hearth_ports::Clock;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, Validation};
use serde_json::{Map, Value};

use crate::jwks::Jwks;

/// The largest leeway a validator allows for clock skew.
pub const MAX_LEEWAY: Duration = Duration::from_secs(300);
/// The longest token accepted (Cognito's are a few KiB).
const MAX_TOKEN_BYTES: usize = 16 * 1024;
/// How much of an untrusted header value (kid, alg) an error repeats.
const ECHO_CHARS: usize = 64;

/// Which kind of Cognito token a validator accepts (`token_use`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TokenUse {
    /// An ID token: the audience is in `aud`.
    Id,
    /// An access token: the audience is in `client_id`.
    Access,
}

impl TokenUse {
    /// The claim's value: `id` or `access`.
    pub fn as_str(self) -> &'static str {
        match self {
            TokenUse::Id => "id",
            TokenUse::Access => "access",
        }
    }
}

impl std::fmt::Display for TokenUse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a token was refused: which check failed. Never carries the token or key material.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AuthError {
    /// Not a JWS compact serialisation with a JSON header and payload.
    #[error("malformed token: {0}")]
    Malformed(&'static str),
    /// The header names no key.
    #[error("the token's header has no kid")]
    MissingKid,
    /// No key of the set has the token's `kid` (a key rotated out, or a foreign token).
    #[error("no key with kid {0:?}")]
    UnknownKey(String),
    /// The header's `alg` is not the algorithm of the key it names (`none`, HS256 over a public
    /// key, RS256 over an EC key...).
    #[error("algorithm {found:?} is not the key's {expected:?}")]
    Algorithm {
        /// The header's `alg`.
        found: String,
        /// The key's algorithm.
        expected: Algorithm,
    },
    /// The signature does not verify with the named key.
    #[error("the signature does not verify")]
    Signature,
    /// A required claim is missing.
    #[error("claim {0} is missing")]
    MissingClaim(&'static str),
    /// A claim has the wrong JSON type.
    #[error("claim {0} has the wrong type")]
    ClaimType(&'static str),
    /// `iss` is not the configured issuer.
    #[error("issuer not accepted")]
    Issuer,
    /// `aud` (ID token) or `client_id` (access token) is none of the configured client ids.
    #[error("audience not accepted")]
    Audience,
    /// `token_use` is not the configured one.
    #[error("token_use is not {expected}")]
    TokenUse {
        /// What the validator accepts.
        expected: TokenUse,
    },
    /// `exp` has passed.
    #[error("the token has expired")]
    Expired,
    /// `nbf` has not come yet.
    #[error("the token is not valid yet (nbf)")]
    NotYetValid,
    /// `iat` is in the future.
    #[error("the token was issued in the future (iat)")]
    IssuedInFuture,
}

/// What a validator accepts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidatorConfig {
    issuer: String,
    client_ids: Vec<String>,
    token_use: TokenUse,
    leeway: Duration,
}

impl ValidatorConfig {
    /// Tokens from `issuer` (Cognito: `https://cognito-idp.<region>.amazonaws.com/<pool id>`)
    /// for one of `client_ids` (the app clients), of kind `token_use`, with no leeway.
    pub fn new(
        issuer: impl Into<String>,
        client_ids: impl IntoIterator<Item = impl Into<String>>,
        token_use: TokenUse,
    ) -> Self {
        Self {
            issuer: issuer.into(),
            client_ids: client_ids.into_iter().map(Into::into).collect(),
            token_use,
            leeway: Duration::ZERO,
        }
    }

    /// Allows `leeway` of clock skew on `exp`, `nbf` and `iat` (at most [`MAX_LEEWAY`]).
    #[must_use]
    pub fn with_leeway(mut self, leeway: Duration) -> Self {
        self.leeway = leeway.min(MAX_LEEWAY);
        self
    }

    /// The accepted issuer.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }
}

/// A validated token's claims.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Claims {
    /// The user's stable id (`sub`).
    pub sub: String,
    /// The user name: `cognito:username` (ID tokens) or `username` (access tokens).
    pub username: Option<String>,
    /// `email`, if the token has one.
    pub email: Option<String>,
    /// `email_verified` (a boolean, or Cognito's `"true"`/`"false"`).
    pub email_verified: Option<bool>,
    /// `cognito:groups`.
    pub groups: Vec<String>,
    /// `token_use`.
    pub token_use: TokenUse,
    /// The app client the token was issued to (the accepted `aud` or `client_id`).
    pub client_id: String,
    /// `scope`, split on spaces (access tokens).
    pub scope: Vec<String>,
    /// `exp`, seconds since the epoch.
    pub exp: u64,
    /// Every claim as the token has it (for mapping to API Gateway's string claims).
    pub raw: Map<String, Value>,
}

/// Validates tokens against a key set, a configuration and a clock.
pub struct Validator {
    config: ValidatorConfig,
    jwks: Jwks,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for Validator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Validator")
            .field("config", &self.config)
            .field("jwks", &self.jwks)
            .finish_non_exhaustive()
    }
}

impl Validator {
    /// A validator of tokens signed by a key of `jwks`, as `config` says, at `clock`'s time.
    pub fn new(config: ValidatorConfig, jwks: Jwks, clock: Arc<dyn Clock>) -> Self {
        Self {
            config,
            jwks,
            clock,
        }
    }

    /// The key set tokens are checked against.
    pub fn jwks(&self) -> &Jwks {
        &self.jwks
    }

    /// Checks `token` (header, key, signature, then the claims) and returns its claims.
    pub fn validate(&self, token: &str) -> Result<Claims, AuthError> {
        if token.len() > MAX_TOKEN_BYTES {
            return Err(AuthError::Malformed("longer than 16 KiB"));
        }
        let header = header(token)?;
        if header.contains_key("crit") {
            // RFC 7515 §4.1.11: extensions we do not understand must not be accepted.
            return Err(AuthError::Malformed(
                "critical header extensions are not supported",
            ));
        }
        let kid = match header.get("kid") {
            None => return Err(AuthError::MissingKid),
            Some(Value::String(kid)) => kid,
            Some(_) => return Err(AuthError::Malformed("kid is not a string")),
        };
        let key = self
            .jwks
            .get(kid)
            .ok_or_else(|| AuthError::UnknownKey(echo(kid)))?;
        let expected = key.algorithm();
        let alg = match header.get("alg") {
            Some(Value::String(alg)) => alg.as_str(),
            _ => return Err(AuthError::Malformed("no alg")),
        };
        // Pinned: the header's alg must be the key's own (never `none`, never HS256 with the
        // public key as the secret).
        if alg.parse::<Algorithm>().ok() != Some(expected) {
            return Err(AuthError::Algorithm {
                found: echo(alg),
                expected,
            });
        }

        // jsonwebtoken checks the signature only: every claim is checked below, against the
        // clock (its own exp check would read the system time).
        let mut validation = Validation::new(expected);
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.validate_aud = false;
        validation.required_spec_claims.clear();
        validation.leeway = 0;
        let data =
            jsonwebtoken::decode::<Map<String, Value>>(token, key.decoding_key(), &validation)
                .map_err(|e| match e.kind() {
                    ErrorKind::InvalidSignature
                    | ErrorKind::InvalidEcdsaKey
                    | ErrorKind::InvalidRsaKey(_)
                    | ErrorKind::InvalidKeyFormat => AuthError::Signature,
                    ErrorKind::InvalidAlgorithm | ErrorKind::InvalidAlgorithmName => {
                        AuthError::Algorithm {
                            found: echo(alg),
                            expected,
                        }
                    }
                    _ => AuthError::Malformed("the payload is not base64url JSON"),
                })?;
        self.check(data.claims)
    }

    fn check(&self, raw: Map<String, Value>) -> Result<Claims, AuthError> {
        let issuer = string(&raw, "iss")?.ok_or(AuthError::MissingClaim("iss"))?;
        if issuer != self.config.issuer {
            return Err(AuthError::Issuer);
        }
        let token_use = string(&raw, "token_use")?.ok_or(AuthError::MissingClaim("token_use"))?;
        if token_use != self.config.token_use.as_str() {
            return Err(AuthError::TokenUse {
                expected: self.config.token_use,
            });
        }
        let client_id = match self.config.token_use {
            TokenUse::Id => self.audience(&raw)?,
            TokenUse::Access => {
                let id = string(&raw, "client_id")?.ok_or(AuthError::MissingClaim("client_id"))?;
                self.client(id)?
            }
        };

        let now_ms = self.clock.now_ms();
        let leeway_ms = u64::try_from(self.config.leeway.as_millis()).unwrap_or(u64::MAX);
        let exp = seconds(&raw, "exp")?.ok_or(AuthError::MissingClaim("exp"))?;
        // RFC 7519 §4.1.4: valid only *before* exp.
        if now_ms >= millis(exp).saturating_add(leeway_ms) {
            return Err(AuthError::Expired);
        }
        if let Some(nbf) = seconds(&raw, "nbf")?
            && now_ms.saturating_add(leeway_ms) < millis(nbf)
        {
            return Err(AuthError::NotYetValid);
        }
        if let Some(iat) = seconds(&raw, "iat")?
            && millis(iat) > now_ms.saturating_add(leeway_ms)
        {
            return Err(AuthError::IssuedInFuture);
        }

        let sub = string(&raw, "sub")?.ok_or(AuthError::MissingClaim("sub"))?;
        let username = match string(&raw, "cognito:username")? {
            Some(name) => Some(name),
            None => string(&raw, "username")?,
        };
        let email_verified = match raw.get("email_verified") {
            None => None,
            Some(Value::Bool(verified)) => Some(*verified),
            Some(Value::String(s)) if s == "true" => Some(true),
            Some(Value::String(s)) if s == "false" => Some(false),
            Some(_) => return Err(AuthError::ClaimType("email_verified")),
        };
        let groups = match raw.get("cognito:groups") {
            None => Vec::new(),
            Some(Value::Array(items)) => items
                .iter()
                .map(|g| g.as_str().map(str::to_owned))
                .collect::<Option<_>>()
                .ok_or(AuthError::ClaimType("cognito:groups"))?,
            Some(_) => return Err(AuthError::ClaimType("cognito:groups")),
        };
        let scope = string(&raw, "scope")?
            .map(|s| s.split_whitespace().map(str::to_owned).collect())
            .unwrap_or_default();
        Ok(Claims {
            sub: sub.to_owned(),
            username: username.map(str::to_owned),
            email: string(&raw, "email")?.map(str::to_owned),
            email_verified,
            groups,
            token_use: self.config.token_use,
            client_id,
            scope,
            exp,
            raw,
        })
    }

    /// An ID token's `aud`: a string, or an array of which one must be accepted.
    fn audience(&self, raw: &Map<String, Value>) -> Result<String, AuthError> {
        match raw.get("aud") {
            None => Err(AuthError::MissingClaim("aud")),
            Some(Value::String(aud)) => self.client(aud),
            Some(Value::Array(auds)) => auds
                .iter()
                .filter_map(Value::as_str)
                .find_map(|aud| self.client(aud).ok())
                .ok_or(AuthError::Audience),
            Some(_) => Err(AuthError::ClaimType("aud")),
        }
    }

    fn client(&self, id: &str) -> Result<String, AuthError> {
        if self.config.client_ids.iter().any(|c| c == id) {
            Ok(id.to_owned())
        } else {
            Err(AuthError::Audience)
        }
    }
}

/// The decoded header of a compact JWS, before any key is chosen.
fn header(token: &str) -> Result<Map<String, Value>, AuthError> {
    let mut parts = token.split('.');
    let (Some(header), Some(_), Some(_), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(AuthError::Malformed("not three dot-separated parts"));
    };
    let json = URL_SAFE_NO_PAD
        .decode(header)
        .map_err(|_| AuthError::Malformed("the header is not base64url"))?;
    match serde_json::from_slice(&json) {
        Ok(Value::Object(header)) => Ok(header),
        _ => Err(AuthError::Malformed("the header is not a JSON object")),
    }
}

/// A string claim, if present.
fn string<'a>(
    raw: &'a Map<String, Value>,
    name: &'static str,
) -> Result<Option<&'a str>, AuthError> {
    match raw.get(name) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(AuthError::ClaimType(name)),
    }
}

/// A NumericDate claim (whole seconds since the epoch), if present.
fn seconds(raw: &Map<String, Value>, name: &'static str) -> Result<Option<u64>, AuthError> {
    match raw.get(name) {
        None => Ok(None),
        Some(value) => value.as_u64().map(Some).ok_or(AuthError::ClaimType(name)),
    }
}

fn millis(seconds: u64) -> u64 {
    seconds.saturating_mul(1000)
}

/// An untrusted header value, shortened for an error message.
fn echo(value: &str) -> String {
    value.chars().take(ECHO_CHARS).collect()
}
