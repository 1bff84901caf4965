//! Software statements (RFC 7591 §2.3): JWTs a client vendor signs to vouch for its software's
//! name and metadata, checked against the vendors an operator trusts. A vendor makes one as a
//! [`SoftwareStatement`] and [`SoftwareStatement::sign`]s it (`letterlock vendor sign`); a
//! server checks it with [`verify`].

use aws_lc_rs::rand::SecureRandom;
use letterlock_protocol::PublicJwk;
use serde::Serialize;
use serde_json::{Map, Value};

use crate::Error;
use crate::jws::{self, UnverifiedJws};
use crate::key::{PrivateKey, VerifyingKey, thumbprint};

/// Clock skew tolerated on `exp`, `nbf` and `iat`, in seconds.
pub const CLOCK_SKEW_SECONDS: i64 = 60;

/// A vendor the operator trusts: the `iss` its statements carry, a name to show, its keys.
#[derive(Debug, Clone)]
pub struct TrustedVendor {
    /// The `iss` value of the vendor's statements.
    pub issuer: String,
    /// The publisher name shown on the consent page ("Verified: <name>").
    pub name: String,
    /// The vendor's public keys.
    pub keys: Vec<VerifyingKey>,
}

/// Why a statement was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StatementError {
    /// Not a well-formed JWS with an allowed algorithm, or without `iss`
    /// (`invalid_software_statement`).
    #[error("the software statement is not valid: {0}")]
    Invalid(String),
    /// Signed by nobody this server trusts (`unapproved_software_statement` when statements are
    /// required; otherwise the registration goes on as unverified).
    #[error("the software statement's issuer '{0}' is not a trusted vendor")]
    UnknownVendor(String),
    /// The signature does not verify under the named vendor's keys
    /// (`invalid_software_statement`).
    #[error("the software statement's signature does not verify under the keys of '{0}'")]
    Signature(String),
    /// Past its `exp` (`invalid_software_statement`).
    #[error("the software statement has expired")]
    Expired,
    /// Its `nbf` or `iat` lies in the future (`invalid_software_statement`).
    #[error("the software statement is not valid yet")]
    NotYetValid,
}

/// A statement whose signature verified under a trusted vendor's key.
#[derive(Debug, Clone)]
pub struct VerifiedStatement {
    /// The vendor's `iss`.
    pub vendor_issuer: String,
    /// The vendor's display name.
    pub vendor_name: String,
    /// The metadata the statement asserts, JWT claims removed: these override the request.
    pub metadata: Map<String, Value>,
}

/// Verifies a statement at time `now` (seconds since the epoch).
pub fn verify(
    compact: &str,
    vendors: &[TrustedVendor],
    now: i64,
) -> Result<VerifiedStatement, StatementError> {
    let jws = UnverifiedJws::parse(compact)
        .map_err(|error| StatementError::Invalid(error.to_string()))?;
    let issuer = match jws.unverified_claims().get("iss") {
        Some(Value::String(issuer)) => issuer.clone(),
        _ => return Err(StatementError::Invalid("it has no 'iss' naming the vendor".into())),
    };
    let vendor = vendors
        .iter()
        .find(|vendor| vendor.issuer == issuer)
        .ok_or_else(|| StatementError::UnknownVendor(crate::shown(&issuer)))?;
    let mut claims =
        jws.verify(&vendor.keys).map_err(|_| StatementError::Signature(vendor.issuer.clone()))?;
    let number = |name: &str| claims.get(name).map(|value| value.as_i64().ok_or(name.to_owned()));
    if let Some(exp) = number("exp") {
        let exp =
            exp.map_err(|name| StatementError::Invalid(format!("'{name}' is not a number")))?;
        if exp + CLOCK_SKEW_SECONDS < now {
            return Err(StatementError::Expired);
        }
    }
    for name in ["nbf", "iat"] {
        if let Some(time) = number(name) {
            let time =
                time.map_err(|name| StatementError::Invalid(format!("'{name}' is not a number")))?;
            if time > now + CLOCK_SKEW_SECONDS {
                return Err(StatementError::NotYetValid);
            }
        }
    }
    for claim in ["iss", "sub", "aud", "exp", "nbf", "iat", "jti"] {
        claims.remove(claim);
    }
    Ok(VerifiedStatement {
        vendor_issuer: vendor.issuer.clone(),
        vendor_name: vendor.name.clone(),
        metadata: claims,
    })
}

/// The claims a vendor signs: RFC 7591 §2.3 (a statement is a JWT whose claims are client
/// metadata), with the JWT's `iss`, `iat` and `exp` (RFC 7519 §4.1). Optional values left out
/// are not written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SoftwareStatement {
    /// The vendor's identifier (RFC 7519 §4.1.1); providers trust statements by it.
    pub iss: String,
    /// When it was signed (RFC 7519 §4.1.6).
    pub iat: i64,
    /// When it expires (RFC 7519 §4.1.4); `None`: never.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exp: Option<i64>,
    /// The software's identifier, the same for every installation and version (RFC 7591 §2).
    pub software_id: String,
    /// The software's name as users should see it (RFC 7591 §2).
    pub client_name: String,
    /// The software's version (RFC 7591 §2).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub software_version: Option<String>,
    /// The software's web site (RFC 7591 §2).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_uri: Option<String>,
    /// The software's logo (RFC 7591 §2).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub logo_uri: Option<String>,
    /// The redirect URIs the software uses: the statement vouches only for registrations with
    /// exactly these, so a copy of it cannot vouch for another program's redirect.
    pub redirect_uris: Vec<String>,
}

impl SoftwareStatement {
    /// Signs the statement with the vendor's key (its `kid` the key's RFC 7638 thumbprint, see
    /// [`key_id`]); the compact JWS is what a client sends as `software_statement`.
    pub fn sign(&self, key: &PrivateKey, random: &dyn SecureRandom) -> Result<String, Error> {
        let claims = match serde_json::to_value(self) {
            Ok(Value::Object(claims)) => claims,
            _ => return Err(Error::Signing),
        };
        sign(key, &claims, random)
    }
}

/// Signs a statement made of any claims (tests use it for statements no vendor should make).
/// `claims` must hold `iss`.
pub fn sign(
    key: &PrivateKey,
    claims: &Map<String, Value>,
    random: &dyn SecureRandom,
) -> Result<String, Error> {
    let kid = key_id(&key.public_jwk(None));
    jws::sign(key, Some(&kid), "JWT", claims, random)
}

/// The key id Letterlock gives a vendor key: its RFC 7638 thumbprint.
pub fn key_id(jwk: &PublicJwk) -> String {
    thumbprint(jwk)
}

#[cfg(test)]
mod tests {
    use aws_lc_rs::rand::SystemRandom;
    use serde_json::json;

    use super::*;
    use crate::key::Algorithm;

    const NOW: i64 = 1_800_000_000;

    fn vendor(key: &PrivateKey) -> TrustedVendor {
        let jwk = key.public_jwk(Some(key_id(&key.public_jwk(None))));
        TrustedVendor {
            issuer: "https://vendor.example".into(),
            name: "Example Vendor".into(),
            keys: vec![VerifyingKey::from_jwk(&jwk).unwrap()],
        }
    }

    fn claims(extra: Value) -> Map<String, Value> {
        let mut claims = json!({"iss": "https://vendor.example", "software_id": "mail", "client_name": "Mail", "iat": NOW - 10})
            .as_object()
            .cloned()
            .unwrap();
        claims.extend(extra.as_object().cloned().unwrap());
        claims
    }

    #[test]
    fn trusted_statement_verifies_and_drops_jwt_claims() {
        let random = SystemRandom::new();
        for algorithm in [Algorithm::Es256, Algorithm::EdDsa] {
            let key = PrivateKey::generate(algorithm, &random).unwrap();
            let statement = sign(&key, &claims(json!({"exp": NOW + 100})), &random).unwrap();
            let verified = verify(&statement, &[vendor(&key)], NOW).unwrap();
            assert_eq!(verified.vendor_name, "Example Vendor");
            assert_eq!(
                verified.metadata,
                json!({"software_id": "mail", "client_name": "Mail"}).as_object().cloned().unwrap()
            );
        }
    }

    #[test]
    fn a_typed_statement_signs_what_verify_reads_back() {
        let random = SystemRandom::new();
        let key = PrivateKey::generate(Algorithm::Es256, &random).unwrap();
        let statement = SoftwareStatement {
            iss: "https://vendor.example".into(),
            iat: NOW - 10,
            exp: Some(NOW + 100),
            software_id: "mail".into(),
            client_name: "Mail".into(),
            software_version: Some("1.0".into()),
            client_uri: None,
            logo_uri: None,
            redirect_uris: vec!["http://127.0.0.1/cb".into()],
        };
        let compact = statement.sign(&key, &random).unwrap();
        let verified = verify(&compact, &[vendor(&key)], NOW).unwrap();
        assert_eq!(verified.vendor_issuer, "https://vendor.example");
        assert_eq!(
            verified.metadata,
            json!({
                "software_id": "mail",
                "client_name": "Mail",
                "software_version": "1.0",
                "redirect_uris": ["http://127.0.0.1/cb"],
            })
            .as_object()
            .cloned()
            .unwrap(),
            "options left out are not written"
        );
        let expired = SoftwareStatement { exp: Some(NOW - 3600), ..statement };
        let compact = expired.sign(&key, &random).unwrap();
        assert_eq!(verify(&compact, &[vendor(&key)], NOW).unwrap_err(), StatementError::Expired);
    }

    #[test]
    fn refuses_unknown_tampered_expired_and_future_statements() {
        let random = SystemRandom::new();
        let key = PrivateKey::generate(Algorithm::Es256, &random).unwrap();
        let vendors = [vendor(&key)];
        let stranger = PrivateKey::generate(Algorithm::Es256, &random).unwrap();

        let mut unknown = claims(json!({}));
        unknown.insert("iss".into(), "https://stranger.example".into());
        let statement = sign(&stranger, &unknown, &random).unwrap();
        assert!(matches!(verify(&statement, &vendors, NOW), Err(StatementError::UnknownVendor(_))));

        let forged = sign(&stranger, &claims(json!({})), &random).unwrap();
        assert!(matches!(verify(&forged, &vendors, NOW), Err(StatementError::Signature(_))));

        let genuine = sign(&key, &claims(json!({})), &random).unwrap();
        let mut parts: Vec<&str> = genuine.split('.').collect();
        let altered = letterlock_protocol::base64url::encode(
            serde_json::to_vec(&claims(json!({"client_name": "Bank"}))).unwrap(),
        );
        parts[1] = &altered;
        assert!(matches!(
            verify(&parts.join("."), &vendors, NOW),
            Err(StatementError::Signature(_))
        ));

        let expired = sign(&key, &claims(json!({"exp": NOW - 3600})), &random).unwrap();
        assert_eq!(verify(&expired, &vendors, NOW).unwrap_err(), StatementError::Expired);

        let future = sign(&key, &claims(json!({"iat": NOW + 3600})), &random).unwrap();
        assert_eq!(verify(&future, &vendors, NOW).unwrap_err(), StatementError::NotYetValid);

        let header = letterlock_protocol::base64url::encode(b"{\"alg\":\"none\"}");
        let payload =
            letterlock_protocol::base64url::encode(serde_json::to_vec(&claims(json!({}))).unwrap());
        assert!(matches!(
            verify(&format!("{header}.{payload}."), &vendors, NOW),
            Err(StatementError::Invalid(_))
        ));
    }
}
