//! Public JSON Web Keys of client installations (RFC 7517), restricted to what Letterlock
//! accepts: P-256 (`ES256`) and Ed25519 (`EdDSA`) public keys. This module checks structure
//! only (members, encodings and lengths); `letterlock-jose` checks that a P-256 point lies on
//! the curve.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::base64url;

/// Members that only a private or symmetric key has (RFC 7518 §6.2.2, §6.3.2, §6.4.1; RFC 8037).
const PRIVATE_MEMBERS: [&str; 8] = ["d", "p", "q", "dp", "dq", "qi", "oth", "k"];

/// The most keys a client may register in `jwks`. An installation needs one, two during a
/// rotation; a few more leave room without inviting abuse.
pub const MAX_KEYS: usize = 4;

/// Why a JWK was refused; each becomes `invalid_client_metadata`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum JwkError {
    /// `jwks` is not an object with a `keys` array.
    #[error("jwks must be an object with a 'keys' array")]
    NotAKeySet,
    /// More than [`MAX_KEYS`] keys, or none.
    #[error("jwks must hold between 1 and {MAX_KEYS} keys")]
    KeyCount,
    /// A key has private or symmetric members.
    #[error("a key in jwks has the private member '{0}'; register the public key only")]
    PrivateMember(&'static str),
    /// A key type or curve other than P-256 and Ed25519, including every RSA key.
    #[error("only P-256 (kty EC) and Ed25519 (kty OKP) public keys are accepted, not {0}")]
    UnsupportedKeyType(String),
    /// A coordinate is missing, not base64url, or has the wrong length.
    #[error("the key's '{0}' member is missing or not a base64url value of the right length")]
    Coordinate(&'static str),
    /// `use` is present and is not `sig`.
    #[error("the key's 'use' must be 'sig'")]
    Use,
    /// `alg` is present and does not fit the key type.
    #[error("the key's 'alg' does not fit its type (ES256 for P-256, EdDSA for Ed25519)")]
    Algorithm,
    /// `kid` is not a short printable string.
    #[error("the key's 'kid' must be a printable string of at most 128 characters")]
    KeyId,
}

/// The curve of a public key, which fixes the only algorithm it may sign with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Curve {
    /// NIST P-256, signing with `ES256`.
    #[serde(rename = "P-256")]
    P256,
    /// Ed25519, signing with `EdDSA`.
    Ed25519,
}

impl Curve {
    /// The JWS algorithm name that goes with the curve.
    pub fn algorithm(self) -> &'static str {
        match self {
            Self::P256 => "ES256",
            Self::Ed25519 => "EdDSA",
        }
    }
}

/// A public signing key of one installation, reduced to its essential members.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublicJwk {
    /// The curve.
    pub crv: Curve,
    /// The x coordinate (P-256) or the public key (Ed25519), base64url without padding.
    pub x: String,
    /// The y coordinate (P-256 only), base64url without padding.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub y: Option<String>,
    /// The key id the client gave, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kid: Option<String>,
}

impl PublicJwk {
    /// Checks one JWK object.
    pub fn from_json(value: &Value) -> Result<Self, JwkError> {
        let object = value.as_object().ok_or(JwkError::NotAKeySet)?;
        if let Some(member) = PRIVATE_MEMBERS.iter().find(|member| object.contains_key(**member)) {
            return Err(JwkError::PrivateMember(member));
        }
        let kty = text(object, "kty").unwrap_or("(no kty)");
        let crv = text(object, "crv").unwrap_or("(no crv)");
        let curve = match (kty, crv) {
            ("EC", "P-256") => Curve::P256,
            ("OKP", "Ed25519") => Curve::Ed25519,
            ("EC" | "OKP", _) => return Err(JwkError::UnsupportedKeyType(format!("{kty} {crv}"))),
            _ => return Err(JwkError::UnsupportedKeyType(format!("kty {kty}"))),
        };
        if object.get("use").is_some_and(|value| value.as_str() != Some("sig")) {
            return Err(JwkError::Use);
        }
        if object.get("alg").is_some_and(|value| value.as_str() != Some(curve.algorithm())) {
            return Err(JwkError::Algorithm);
        }
        let kid = match object.get("kid") {
            None => None,
            Some(Value::String(kid))
                if kid.len() <= 128 && !kid.is_empty() && kid.chars().all(|c| !c.is_control()) =>
            {
                Some(kid.clone())
            }
            Some(_) => return Err(JwkError::KeyId),
        };
        let x = coordinate(object, "x")?;
        let y = match curve {
            Curve::P256 => Some(coordinate(object, "y")?),
            Curve::Ed25519 => None,
        };
        Ok(Self { crv: curve, x, y, kid })
    }

    /// The key as a JWK object, with `kty`, `crv`, `alg` and `use` filled in.
    pub fn to_json(&self) -> Value {
        let mut object = Map::new();
        let kty = match self.crv {
            Curve::P256 => "EC",
            Curve::Ed25519 => "OKP",
        };
        object.insert("kty".into(), kty.into());
        object.insert("crv".into(), serde_json::to_value(self.crv).unwrap_or(Value::Null));
        object.insert("x".into(), self.x.clone().into());
        if let Some(y) = &self.y {
            object.insert("y".into(), y.clone().into());
        }
        if let Some(kid) = &self.kid {
            object.insert("kid".into(), kid.clone().into());
        }
        object.insert("use".into(), "sig".into());
        object.insert("alg".into(), self.crv.algorithm().into());
        Value::Object(object)
    }
}

/// Checks a `jwks` member: `{"keys": [...]}` with 1 to [`MAX_KEYS`] acceptable public keys.
pub fn parse_key_set(value: &Value) -> Result<Vec<PublicJwk>, JwkError> {
    let keys = value.get("keys").and_then(Value::as_array).ok_or(JwkError::NotAKeySet)?;
    if keys.is_empty() || keys.len() > MAX_KEYS {
        return Err(JwkError::KeyCount);
    }
    keys.iter().map(PublicJwk::from_json).collect()
}

fn text<'a>(object: &'a Map<String, Value>, name: &str) -> Option<&'a str> {
    object.get(name).and_then(Value::as_str)
}

/// Both curves use 32-byte coordinates (RFC 7518 §6.2.1.2, RFC 8037 §2).
fn coordinate(object: &Map<String, Value>, name: &'static str) -> Result<String, JwkError> {
    let encoded = text(object, name).ok_or(JwkError::Coordinate(name))?;
    match base64url::decode(encoded) {
        Some(bytes) if bytes.len() == 32 => Ok(encoded.to_owned()),
        _ => Err(JwkError::Coordinate(name)),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    // RFC 7515 Appendix A.3's P-256 key, public part.
    const X: &str = "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU";
    const Y: &str = "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0";

    #[test]
    fn accepts_p256_and_ed25519_public_keys() {
        let key =
            PublicJwk::from_json(&json!({"kty": "EC", "crv": "P-256", "x": X, "y": Y})).unwrap();
        assert_eq!(key.crv, Curve::P256);
        // RFC 8037 Appendix A.2's Ed25519 public key.
        let x = "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo";
        let key =
            PublicJwk::from_json(&json!({"kty": "OKP", "crv": "Ed25519", "x": x, "alg": "EdDSA"}))
                .unwrap();
        assert_eq!(key.crv, Curve::Ed25519);
    }

    #[test]
    fn refuses_private_rsa_symmetric_and_malformed_keys() {
        let private = json!({"kty": "EC", "crv": "P-256", "x": X, "y": Y, "d": "jpsQnnGQmL-YBIffH1136cspYG6-0iY7X1fCE9-E9LI"});
        assert_eq!(PublicJwk::from_json(&private), Err(JwkError::PrivateMember("d")));
        let rsa = json!({"kty": "RSA", "n": "sXch", "e": "AQAB"});
        assert!(matches!(PublicJwk::from_json(&rsa), Err(JwkError::UnsupportedKeyType(_))));
        let symmetric = json!({"kty": "oct", "k": "AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ-EstJQLr_T-1qS0gZH75aKtMN3Yj0iPS4hcgUuTwjAzZr1Z9CAow"});
        assert_eq!(PublicJwk::from_json(&symmetric), Err(JwkError::PrivateMember("k")));
        let p384 = json!({"kty": "EC", "crv": "P-384", "x": X, "y": Y});
        assert!(matches!(PublicJwk::from_json(&p384), Err(JwkError::UnsupportedKeyType(_))));
        let short = json!({"kty": "EC", "crv": "P-256", "x": "AAAA", "y": Y});
        assert_eq!(PublicJwk::from_json(&short), Err(JwkError::Coordinate("x")));
        let wrong_alg = json!({"kty": "EC", "crv": "P-256", "x": X, "y": Y, "alg": "HS256"});
        assert_eq!(PublicJwk::from_json(&wrong_alg), Err(JwkError::Algorithm));
        assert_eq!(parse_key_set(&json!({"keys": []})), Err(JwkError::KeyCount));
        assert_eq!(parse_key_set(&json!([1])), Err(JwkError::NotAKeySet));
    }
}
