//! JSON Web Key Sets (RFC 7517) with the keys Hearth verifies: EC P-256 (ES256) and RSA
//! (RS256). Keys of other kinds are ignored, as RFC 7517 §5 asks; a key of a supported kind that
//! is malformed, or that carries private material, makes the whole document an error.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, DecodingKey};
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

/// The smallest and largest RSA moduli accepted, in bits (what `aws-lc` verifies RS256 with).
const RSA_BITS: std::ops::RangeInclusive<usize> = 2048..=8192;
/// JWK members that only a private key has (RFC 7518 §6.2.2 and §6.3.2).
const PRIVATE_MEMBERS: [&str; 6] = ["d", "p", "q", "dp", "dq", "qi"];

/// Why a JWKS document or a key was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum JwksError {
    /// The document is not JSON.
    #[error("the JWKS document is not JSON: {0}")]
    Json(String),
    /// The document is JSON but not a key set (`{"keys": [...]}`).
    #[error("the JWKS document is not a key set: {0}")]
    Shape(&'static str),
    /// Key number `index` (from 0) is of a supported kind but malformed.
    #[error("JWKS key #{index}: {reason}")]
    InvalidKey {
        /// Position of the key in `keys`.
        index: usize,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// Key number `index` carries private key members: a published set must never have them.
    #[error("JWKS key #{index} contains private key material")]
    PrivateKey {
        /// Position of the key in `keys`.
        index: usize,
    },
    /// Two keys share a `kid`, so a token could not say which one signed it.
    #[error("JWKS has more than one key with kid {0:?}")]
    DuplicateKid(String),
    /// No key in the document is one Hearth can verify with.
    #[error("the JWKS has no EC P-256 or RSA signing key")]
    NoUsableKeys,
    /// Public key material of a wrong size or form.
    #[error("invalid public key: {0}")]
    Key(&'static str),
}

/// A public key Hearth verifies signatures with.
#[derive(Clone, PartialEq, Eq)]
pub enum PublicKey {
    /// An EC key on P-256, for ES256: the point's affine coordinates, big-endian.
    P256 {
        /// The x coordinate.
        x: [u8; 32],
        /// The y coordinate.
        y: [u8; 32],
    },
    /// An RSA key, for RS256: modulus and public exponent, big-endian without leading zeros.
    Rsa {
        /// The modulus.
        n: Vec<u8>,
        /// The public exponent.
        e: Vec<u8>,
    },
}

impl std::fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "PublicKey({} {})",
            self.algorithm_name(),
            self.thumbprint()
        )
    }
}

impl PublicKey {
    /// A P-256 key from its SEC 1 uncompressed point (`0x04 || x || y`, 65 bytes), as
    /// `rcgen`'s and `aws-lc`'s `public_key()` give it.
    pub fn p256_from_sec1(point: &[u8]) -> Result<Self, JwksError> {
        match point {
            [0x04, rest @ ..] if rest.len() == 64 => {
                let (x, y) = rest.split_at(32);
                Ok(PublicKey::P256 {
                    x: x.try_into().map_err(|_| JwksError::Key("P-256 x"))?,
                    y: y.try_into().map_err(|_| JwksError::Key("P-256 y"))?,
                })
            }
            _ => Err(JwksError::Key(
                "a P-256 point must be 65 bytes, uncompressed (0x04 || x || y)",
            )),
        }
    }

    /// An RSA key from its modulus and exponent (big-endian; leading zeros are dropped). The
    /// modulus must have 2048 to 8192 bits and the exponent be odd and at least 3.
    pub fn rsa(n: &[u8], e: &[u8]) -> Result<Self, JwksError> {
        let n = strip_zeros(n);
        let e = strip_zeros(e);
        let bits = n
            .first()
            .map_or(0, |b| n.len() * 8 - b.leading_zeros() as usize);
        if !RSA_BITS.contains(&bits) {
            return Err(JwksError::Key("an RSA modulus must have 2048 to 8192 bits"));
        }
        let odd = e.last().is_some_and(|b| b & 1 == 1);
        if !odd || e.len() > 8 || e == [1] {
            return Err(JwksError::Key("an RSA exponent must be odd, at least 3"));
        }
        Ok(PublicKey::Rsa {
            n: n.to_vec(),
            e: e.to_vec(),
        })
    }

    /// The one algorithm this key verifies: ES256 for P-256, RS256 for RSA.
    pub fn algorithm(&self) -> Algorithm {
        match self {
            PublicKey::P256 { .. } => Algorithm::ES256,
            PublicKey::Rsa { .. } => Algorithm::RS256,
        }
    }

    fn algorithm_name(&self) -> &'static str {
        match self {
            PublicKey::P256 { .. } => "ES256",
            PublicKey::Rsa { .. } => "RS256",
        }
    }

    /// The key's RFC 7638 JWK thumbprint (SHA-256, base64url): a stable `kid` for it.
    pub fn thumbprint(&self) -> String {
        // RFC 7638 §3.2: the required members only, in lexicographic order, no whitespace.
        let canonical = match self {
            PublicKey::P256 { x, y } => format!(
                r#"{{"crv":"P-256","kty":"EC","x":"{}","y":"{}"}}"#,
                URL_SAFE_NO_PAD.encode(x),
                URL_SAFE_NO_PAD.encode(y)
            ),
            PublicKey::Rsa { n, e } => format!(
                r#"{{"e":"{}","kty":"RSA","n":"{}"}}"#,
                URL_SAFE_NO_PAD.encode(e),
                URL_SAFE_NO_PAD.encode(n)
            ),
        };
        URL_SAFE_NO_PAD.encode(Sha256::digest(canonical.as_bytes()))
    }

    fn decoding_key(&self) -> DecodingKey {
        match self {
            PublicKey::P256 { x, y } => {
                let mut point = Vec::with_capacity(65);
                point.push(0x04);
                point.extend_from_slice(x);
                point.extend_from_slice(y);
                DecodingKey::from_ec_der(&point)
            }
            PublicKey::Rsa { n, e } => DecodingKey::from_rsa_raw_components(n, e),
        }
    }
}

fn strip_zeros(bytes: &[u8]) -> &[u8] {
    let start = bytes.iter().position(|b| *b != 0).unwrap_or(bytes.len());
    bytes.get(start..).unwrap_or_default()
}

/// One key of a set: its `kid` and the public key.
#[derive(Clone)]
pub struct Jwk {
    kid: String,
    key: PublicKey,
    decoding: DecodingKey,
}

impl std::fmt::Debug for Jwk {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Jwk")
            .field("kid", &self.kid)
            .field("key", &self.key)
            .finish()
    }
}

impl PartialEq for Jwk {
    fn eq(&self, other: &Self) -> bool {
        self.kid == other.kid && self.key == other.key
    }
}

impl Eq for Jwk {}

impl Jwk {
    /// `key` under `kid`.
    pub fn new(kid: impl Into<String>, key: PublicKey) -> Self {
        let decoding = key.decoding_key();
        Self {
            kid: kid.into(),
            key,
            decoding,
        }
    }

    /// `key` under its RFC 7638 thumbprint as `kid`.
    pub fn with_thumbprint_kid(key: PublicKey) -> Self {
        Self::new(key.thumbprint(), key)
    }

    /// The key id tokens name in their header.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The public key.
    pub fn key(&self) -> &PublicKey {
        &self.key
    }

    /// The one algorithm this key verifies.
    pub fn algorithm(&self) -> Algorithm {
        self.key.algorithm()
    }

    pub(crate) fn decoding_key(&self) -> &DecodingKey {
        &self.decoding
    }

    /// The key as a JWK object (`kty`, the key's members, `kid`, `alg`, `use: "sig"`).
    pub fn to_json(&self) -> Value {
        let mut jwk = match &self.key {
            PublicKey::P256 { x, y } => json!({
                "kty": "EC",
                "crv": "P-256",
                "x": URL_SAFE_NO_PAD.encode(x),
                "y": URL_SAFE_NO_PAD.encode(y),
            }),
            PublicKey::Rsa { n, e } => json!({
                "kty": "RSA",
                "n": URL_SAFE_NO_PAD.encode(n),
                "e": URL_SAFE_NO_PAD.encode(e),
            }),
        };
        if let Value::Object(members) = &mut jwk {
            members.insert("kid".to_owned(), Value::from(self.kid.as_str()));
            members.insert("alg".to_owned(), Value::from(self.key.algorithm_name()));
            members.insert("use".to_owned(), Value::from("sig"));
        }
        jwk
    }

    /// Key number `index` of a document: `Ok(None)` if it is of a kind Hearth does not verify
    /// with (another `kty` or curve, another `alg`, or not for signatures).
    fn parse(index: usize, value: &Value) -> Result<Option<Jwk>, JwksError> {
        let invalid = |reason| JwksError::InvalidKey { index, reason };
        let Value::Object(members) = value else {
            return Err(invalid("not a JSON object"));
        };
        let kty = text(members, "kty").map_err(invalid)?;
        let supported = match (kty, members.get("crv")) {
            (Some("EC"), Some(Value::String(crv))) => crv == "P-256",
            (Some("EC"), _) => return Err(invalid("an EC key needs a crv")),
            (Some("RSA"), _) => true,
            (None, _) => return Err(invalid("no kty")),
            (Some(_), _) => false,
        };
        // A P-256 key verifies ES256 only and an RSA key RS256 only (RS384, PS256... are not
        // accepted): a key published for another algorithm is not one of ours.
        let algorithm = if kty == Some("EC") { "ES256" } else { "RS256" };
        if !supported
            || text(members, "use")
                .map_err(invalid)?
                .is_some_and(|u| u != "sig")
            || text(members, "alg")
                .map_err(invalid)?
                .is_some_and(|a| a != algorithm)
        {
            return Ok(None);
        }
        if PRIVATE_MEMBERS.iter().any(|m| members.contains_key(*m)) {
            return Err(JwksError::PrivateKey { index });
        }
        let key = if kty == Some("EC") {
            let x = coordinate(members, "x").map_err(invalid)?;
            let y = coordinate(members, "y").map_err(invalid)?;
            PublicKey::P256 { x, y }
        } else {
            let n = bytes(members, "n").map_err(invalid)?;
            let e = bytes(members, "e").map_err(invalid)?;
            PublicKey::rsa(&n, &e).map_err(|e| match e {
                JwksError::Key(reason) => invalid(reason),
                other => other,
            })?
        };
        let kid = text(members, "kid")
            .map_err(invalid)?
            .ok_or_else(|| invalid("no kid (tokens name their key by kid)"))?;
        Ok(Some(Jwk::new(kid, key)))
    }
}

/// A string member, if present.
fn text<'a>(members: &'a Map<String, Value>, name: &str) -> Result<Option<&'a str>, &'static str> {
    match members.get(name) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err("a member that must be a string is not"),
    }
}

/// A base64url (unpadded) member.
fn bytes(members: &Map<String, Value>, name: &str) -> Result<Vec<u8>, &'static str> {
    let value = text(members, name)?.ok_or("a required key member is missing")?;
    URL_SAFE_NO_PAD
        .decode(value)
        .map_err(|_| "a key member is not unpadded base64url")
}

/// A P-256 coordinate: exactly 32 bytes (RFC 7518 §6.2.1.2).
fn coordinate(members: &Map<String, Value>, name: &str) -> Result<[u8; 32], &'static str> {
    bytes(members, name)?
        .try_into()
        .map_err(|_| "a P-256 coordinate must be 32 bytes")
}

/// A set of keys, looked up by `kid`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Jwks {
    keys: Vec<Jwk>,
}

impl Jwks {
    /// A set of `keys`, whose kids must differ.
    pub fn new(keys: Vec<Jwk>) -> Result<Self, JwksError> {
        for (i, key) in keys.iter().enumerate() {
            if keys.iter().skip(i + 1).any(|other| other.kid == key.kid) {
                return Err(JwksError::DuplicateKid(key.kid.clone()));
            }
        }
        Ok(Self { keys })
    }

    /// Parses a JWKS document (`{"keys": [...]}`, as served at a `jwks_uri`). Keys Hearth does
    /// not verify with are left out; at least one must remain.
    pub fn from_json(document: &[u8]) -> Result<Self, JwksError> {
        let document: Value =
            serde_json::from_slice(document).map_err(|e| JwksError::Json(e.to_string()))?;
        let Some(Value::Array(entries)) = document.get("keys") else {
            return Err(JwksError::Shape("no \"keys\" array"));
        };
        let mut keys = Vec::with_capacity(entries.len());
        for (index, entry) in entries.iter().enumerate() {
            if let Some(key) = Jwk::parse(index, entry)? {
                keys.push(key);
            }
        }
        if keys.is_empty() {
            return Err(JwksError::NoUsableKeys);
        }
        Self::new(keys)
    }

    /// The set as a JWKS document.
    pub fn to_json(&self) -> Value {
        json!({ "keys": self.keys.iter().map(Jwk::to_json).collect::<Vec<_>>() })
    }

    /// The key named `kid`.
    pub fn get(&self, kid: &str) -> Option<&Jwk> {
        self.keys.iter().find(|key| key.kid == kid)
    }

    /// Every key of the set.
    pub fn keys(&self) -> &[Jwk] {
        &self.keys
    }
}
