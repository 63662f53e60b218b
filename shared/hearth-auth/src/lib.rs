//! Token validation for Hearth: one piece of code that checks a JWT the way API Gateway's JWT
//! authorizer and AWS's guidance for Cognito tokens do, wherever a token arrives (the local
//! stack's owner API, the voice assistants' entry points in AWS).
//!
//! [`Jwks`] is a JSON Web Key Set (RFC 7517) with the keys Hearth can verify: EC P-256 keys for
//! ES256 and RSA keys for RS256 (Cognito's). [`Validator`] checks a token against it — signature
//! by `kid`, the algorithm pinned to the key's, `iss`, `aud` or `client_id`, `token_use`, `exp`,
//! `nbf` and `iat` against a [`hearth_ports::Clock`] — and returns typed [`Claims`].
//!
//! This crate never fetches anything: no HTTP client, no AWS SDK. Whoever builds a validator
//! passes the JWKS document in (an adapter fetches and caches it). Errors say which check failed
//! and never carry the token or key material.

mod jwks;
mod validator;

pub use jwks::{Jwk, Jwks, JwksError, PublicKey};
pub use validator::{AuthError, Claims, MAX_LEEWAY, TokenUse, Validator, ValidatorConfig};

/// The signature algorithms a key of a [`Jwks`] verifies (re-exported from `jsonwebtoken`).
pub use jsonwebtoken::Algorithm;

#[cfg(test)]
mod tests;
